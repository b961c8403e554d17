/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Reading a whole file (an image, a module, an initrd) into memory. */
#ifndef VMM_FILE_H
#define VMM_FILE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Read the regular file @path (at most 4 GiB) into a malloc'ed *@data of
 * *@len bytes (one spare byte after them); 0 or -errno after one error
 * line naming the file.
 */
int file_read_all(const char *path, uint8_t **data, size_t *len);

#endif
