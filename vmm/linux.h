/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Linux x86 boot protocol loader (Documentation/arch/x86/boot.rst), without
 * a BIOS: a bzImage (protocol 2.06 or newer, loaded high) is placed at
 * 1 MiB, its setup header copied into a zero page with an e820 map, the
 * command line and the initrd placed where the header allows, and the
 * vCPU entered at the 32-bit entry point (code32_start) with ESI pointing
 * at the zero page, flat 4 GiB segments 0x10/0x18 and paging off.
 *
 * Everything read from the image is checked before use: a file too short
 * for its own header, a bad boot flag or "HdrS" magic, an old protocol, a
 * kernel, initrd or command line that does not fit is refused with one line
 * saying what is wrong.  The real-mode setup code is not run, so nothing
 * below 1 MiB is the kernel's except what the zero page describes.
 */
#ifndef VMM_LINUX_H
#define VMM_LINUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/ram.h"

/* Guest-physical places below 1 MiB (all inside e820 RAM that the kernel may reuse once booted). */
#define LINUX_GDT_GPA		0x6000ULL	/* the boot GDT: 0x10 code, 0x18 data */
#define LINUX_ZERO_PAGE_GPA	0x7000ULL	/* struct boot_params */
#define LINUX_CMDLINE_GPA	0x20000ULL
#define LINUX_CMDLINE_MAX	0x10000		/* bytes, with the NUL; the kernel's own limit may be less */
#define LINUX_KERNEL_GPA	0x100000ULL	/* where a bzImage's protected-mode code goes */
#define LINUX_EBDA_GPA		0x9fc00ULL	/* RAM ends here below 1 MiB (as on a PC) */
#define LINUX_BIOS_GPA		0xf0000ULL	/* reserved up to 1 MiB: the MP table lives here */

#define LINUX_DEFAULT_CMDLINE	"console=ttyS0"	/* without --append: the serial console */

#define LINUX_BOOT_CS		0x10
#define LINUX_BOOT_DS		0x18

struct linux_entry {
	uint32_t entry;		/* EIP: code32_start */
	uint32_t boot_params;	/* ESI */
	uint16_t version;	/* the boot protocol the image speaks, e.g. 0x020f */
	uint64_t kernel_end;	/* first byte the kernel may use beyond its init_size */
	uint64_t initrd_gpa;	/* 0 if none */
};

/* True if @image looks like a bzImage (boot flag and "HdrS"), whatever else is wrong with it. */
bool linux_is_bzimage(const uint8_t *image, size_t len);

/* The same for the file @path; false if it cannot be read. */
bool linux_file_is_bzimage(const char *path);

/*
 * Load the bzImage @image (@len bytes) into @ram with @cmdline (NULL: "")
 * and @initrd (may be NULL), and write the e820 map.  0 or -errno after one
 * error line naming @name.
 */
int linux_load(struct ram *ram, const char *name, const uint8_t *image, size_t len,
	       const char *cmdline, const uint8_t *initrd, size_t initrd_len,
	       struct linux_entry *out);

/* Read the files and call linux_load(); @initrd_path may be NULL. */
int linux_load_file(struct ram *ram, const char *kernel_path, const char *initrd_path,
		    const char *cmdline, struct linux_entry *out);

#endif
