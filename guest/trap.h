/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * trap.h - the exception handlers: any CPU exception is reported on the
 * serial port and ends the guest with GUEST_EXIT_TRAP, so a guest bug is
 * never a silent triple fault.
 */
#ifndef GUEST_TRAP_H
#define GUEST_TRAP_H

#include <stdint.h>
#include <stdnoreturn.h>

struct trap_frame {
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;	/* pushed by the CPU */
};

/* Build the IDT and load it on the BSP; the first thing guest_main does. */
void trap_init(void);

/* Load the IDT on this CPU (each AP, once). */
void trap_load(void);

/* Load an empty IDT and raise #BP: a deliberate triple fault. */
noreturn void trap_triple_fault(void);

/* Called by vectors.S with the frame it built; reports and exits. */
noreturn void trap_handle(struct trap_frame *f);

#endif
