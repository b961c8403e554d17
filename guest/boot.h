/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * boot.h - what the loader told us, read from entry.S's private copy of
 * the multiboot information.
 */
#ifndef GUEST_BOOT_H
#define GUEST_BOOT_H

#include <stdbool.h>
#include <stdint.h>

/* The loader's command line ("" if none), image name first. */
const char *boot_cmdline(void);

/* mem_lower/mem_upper in KiB; false if the loader gave none. */
bool boot_mem(uint32_t *lower_kib, uint32_t *upper_kib);

/* Memory map entry i; false past the end or if there is no map. */
bool boot_mmap_entry(unsigned i, uint64_t *base, uint64_t *len, uint32_t *type);

/*
 * End of the usable RAM that contains gpa (adjacent usable map entries
 * merged), or 0 if gpa is not usable RAM.  Falls back to mem_upper.
 */
uint64_t boot_ram_end(uint64_t gpa);

/* First byte after the image, .bss included. */
uint64_t boot_image_end(void);

#endif
