/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Multiboot v1 loader for ELF32 images.  Finds the header in the first
 * 8 KiB, loads the PT_LOAD segments at their physical addresses, builds the
 * boot information (exact mem_lower/mem_upper, a memory map, a command line
 * that is never NULL, at most one module) and says where to enter.
 *
 * Everything read from the image is checked before use: a truncated file, a
 * header with a bad checksum, a segment outside RAM or over page 0 is
 * refused with one line saying what is wrong.  The boot information goes
 * where the image and the module are not (multiboot.c says where).
 */
#ifndef VMM_MULTIBOOT_H
#define VMM_MULTIBOOT_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/ram.h"

#define MULTIBOOT_HEADER_MAGIC		0x1badb002U
#define MULTIBOOT_BOOTLOADER_MAGIC	0x2badb002U
#define MULTIBOOT_SEARCH		8192

/* The boot information's usual place, below the EBDA, if the image leaves it free; never page 0. */
#define MULTIBOOT_INFO_GPA		0x9000ULL
#define MULTIBOOT_CMDLINE_MAX		4096

struct multiboot_entry {
	uint32_t entry;		/* EIP, physical */
	uint32_t info;		/* EBX: the boot information */
	uint64_t image_end;	/* first byte after the highest segment */
};

struct multiboot_module {
	const uint8_t *data;
	size_t len;
	const char *cmdline;	/* the module's string, e.g. its file name */
};

/*
 * Load the ELF32 multiboot @image (@len bytes) into @ram with @cmdline (may
 * be NULL: then ""), and @module if not NULL.  0 or -errno, after one error
 * line naming @name.
 */
int multiboot_load(struct ram *ram, const char *name, const uint8_t *image, size_t len,
		   const char *cmdline, const struct multiboot_module *module,
		   struct multiboot_entry *out);

/* Read the files and call multiboot_load(); the command line passed is "IMAGE APPEND". */
int multiboot_load_file(struct ram *ram, const char *image_path, const char *append,
			const char *module_path, struct multiboot_entry *out);

#endif
