// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * trap.c - the IDT and what happens when an exception arrives.
 *
 * Only the 32 architectural vectors have gates; interrupts stay disabled
 * everywhere, so any other vector means something is badly wrong, and
 * delivering it through a too-short IDT raises #GP, which is reported like
 * any other exception.  The handler names the vector, error code, RIP, CR2
 * and CPU (APIC ID) before exiting with GUEST_EXIT_TRAP; it runs on the
 * faulting CPU's own stack, which is enough for a one-way trip.
 */
#include "arch.h"
#include "guest.h"
#include "layout.h"
#include "serial.h"
#include "trap.h"

#define TRAP_VECTORS	32
#define GATE_INTERRUPT	0x8e	/* present, DPL 0, 64-bit interrupt gate */

struct trap_gate {
	uint16_t offset_low, selector;
	uint8_t ist, type;
	uint16_t offset_mid;
	uint32_t offset_high, reserved;
};

struct trap_idtr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

extern const uint64_t trap_stubs[TRAP_VECTORS];

static struct trap_gate trap_idt[TRAP_VECTORS] __attribute__((aligned(16)));

static const char *const trap_names[TRAP_VECTORS] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
	"#DF", "#CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "#15",
	"#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "#22", "#23",
	"#24", "#25", "#26", "#27", "#HV", "#VC", "#SX", "#31",
};

void trap_init(void)
{
	for (unsigned v = 0; v < TRAP_VECTORS; v++) {
		uint64_t addr = trap_stubs[v];

		trap_idt[v] = (struct trap_gate){
			.offset_low = addr & 0xffff,
			.selector = GDT_CODE64,
			.type = GATE_INTERRUPT,
			.offset_mid = (addr >> 16) & 0xffff,
			.offset_high = addr >> 32,
		};
	}
	trap_load();
}

void trap_load(void)
{
	struct trap_idtr idtr = { sizeof(trap_idt) - 1, (uint64_t)trap_idt };

	__asm__ volatile("lidt %0" : : "m"(idtr));
}

noreturn void trap_triple_fault(void)
{
	struct trap_idtr idtr = { 0, 0 };

	/* #BP cannot be delivered, nor the #GP that raises, nor the #DF. */
	__asm__ volatile("lidt %0; int3" : : "m"(idtr));
	for (;;)
		__asm__ volatile("cli; hlt");
}

noreturn void trap_handle(struct trap_frame *f)
{
	unsigned cpu = mmio_read32(LAPIC_GPA + 0x20) >> 24;

	serial_printf("guest: exception %s vector=%lu error=0x%lx rip=0x%016lx "
		      "cr2=0x%016lx cpu=%u\n",
		      trap_names[f->vector % TRAP_VECTORS], f->vector, f->error,
		      f->rip, read_cr2(), cpu);
	guest_exit(GUEST_EXIT_TRAP);
}
