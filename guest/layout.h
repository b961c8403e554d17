/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * layout.h - the guest's fixed addresses and sizes, shared by the assembly
 * and the C code.
 *
 * Everything here is a contract with something outside a single file: the
 * loader (image base, multiboot info copy sizes), the AP startup protocol
 * (trampoline page, GDT selectors) or the host tests (page size).  Keeping
 * them in one header that both .S and .c files include means the two halves
 * of the boot path cannot drift apart.
 */
#ifndef GUEST_LAYOUT_H
#define GUEST_LAYOUT_H

#define IMAGE_GPA		0x100000	/* link address: 1 MiB, page 0 unused */
#define TRAMPOLINE_GPA		0x8000		/* AP real-mode entry, SIPI vector 0x08 */
#define LAPIC_GPA		0xfee00000

#define PAGE_SIZE		4096
#define HUGE_PAGE_SIZE		0x200000
#define STACK_SIZE		0x4000		/* per CPU */
#define SMP_MAX_CPUS		32

#define GDT_CODE64		0x08
#define GDT_DATA		0x10

/* How much of the multiboot information the 32-bit entry copies. */
#define BOOT_MBI_SIZE		88		/* fixed part up to the VBE fields */
#define BOOT_CMDLINE_MAX	4096
#define BOOT_MMAP_MAX		2048

#endif
