/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * guest.h - how the guest ends, as seen by the host.
 *
 * The exit status is the guest's only verdict a host test can read without
 * parsing the console, so each status has one meaning across all modes.
 */
#ifndef GUEST_GUEST_H
#define GUEST_GUEST_H

#include <stdnoreturn.h>

#define GUEST_EXIT_OK		0x00
#define GUEST_EXIT_FAIL		0x01	/* dirty: memory verification failed */
#define GUEST_EXIT_SMP		0x7b	/* an AP did not start */
#define GUEST_EXIT_NOFIT	0x7c	/* dirty: working set larger than RAM */
#define GUEST_EXIT_BADARG	0x7d	/* bad command line */
#define GUEST_EXIT_TRAP		0x7e	/* unexpected CPU exception */

/*
 * Report status v to the host: write it to port 0xf4 (vmm, QEMU
 * isa-debug-exit,iobase=0xf4) then to 0x501 (QEMU's default iobase); an
 * unclaimed port ignores the write.  Halts forever if neither stops us.
 */
noreturn void guest_exit(unsigned v);

/* The BSP's C entry, called by entry.S on the boot stack. */
void guest_main(void);

#endif
