/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * serial.h - console output on COM1.
 *
 * Every CPU may print; each call emits its text under one lock so lines
 * from different CPUs never interleave.  Output is byte for byte what the
 * caller formatted: "\n" is not expanded to "\r\n".
 */
#ifndef GUEST_SERIAL_H
#define GUEST_SERIAL_H

#include <stddef.h>

/* Write n bytes as one unit. */
void serial_write(const char *s, size_t n);

/* Format (see lib_vformat) and write as one unit; at most about 4 KiB. */
void serial_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
