// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * smp.c - AP startup with INIT-SIPI-SIPI, and the idle loop APs live in.
 *
 * APs are started one at a time so that one trampoline argument block
 * (stack, CPU number, CR3, entry point) serves them all: the BSP fills it,
 * sends INIT, waits 10 ms, sends two SIPIs 200 us apart (the second is
 * ignored by a CPU already running, as the MP spec intends), and waits for
 * the AP to check in before touching the block again.  Targeted IPIs
 * rather than a broadcast mean the guest never wakes a CPU it did not
 * count.
 *
 * The xAPIC is used through its MMIO page with interrupts off on every
 * CPU; the ICR is the only register that matters, and the spurious vector
 * register is set only because a software-disabled APIC is allowed to
 * refuse to send IPIs.  Jobs are handed over through a sequence number
 * with release/acquire ordering, so an AP sees the job's arguments once it
 * sees the new number.
 */
#include <stdint.h>

#include "arch.h"
#include "guest.h"
#include "layout.h"
#include "lib.h"
#include "serial.h"
#include "smp.h"
#include "trap.h"
#include "tsc.h"

#define APIC_SVR	0x0f0
#define APIC_ICR_LOW	0x300
#define APIC_ICR_HIGH	0x310
#define SVR_ENABLE	0x100
#define ICR_PENDING	(1u << 12)
#define ICR_INIT	0x00004500	/* INIT, level assert */
#define ICR_SIPI	0x00004600
#define START_TIMEOUT_US 5000000	/* generous: nested, oversubscribed CI */

/* Must match the block at the end of trampoline.S. */
struct trampoline_args {
	uint64_t cr3, stack, entry;
	uint32_t cpu, pad;
};

extern const char trampoline_start[], trampoline_end[], trampoline_args[];
extern const char ap_entry64[];

static char smp_stacks[SMP_MAX_CPUS][STACK_SIZE] __attribute__((aligned(16)));
static unsigned smp_online = 1;

static smp_job_fn *smp_job;
static void *smp_job_arg;
static unsigned smp_job_cpus, smp_job_seq, smp_job_done;

static void smp_ipi(unsigned apic_id, uint32_t icr)
{
	uint64_t t0 = rdtsc();

	mmio_write32(LAPIC_GPA + APIC_ICR_HIGH, apic_id << 24);
	mmio_write32(LAPIC_GPA + APIC_ICR_LOW, icr);
	/* Bounded: without a LAPIC the read may return all ones forever. */
	while (mmio_read32(LAPIC_GPA + APIC_ICR_LOW) & ICR_PENDING &&
	       rdtsc() - t0 < tsc_hz() / 10)
		cpu_relax();
}

static void smp_start(unsigned cpu, struct trampoline_args *args)
{
	uint64_t t0;

	args->stack = (uint64_t)smp_stacks[cpu] + STACK_SIZE;
	args->cpu = cpu;
	smp_ipi(cpu, ICR_INIT);
	tsc_delay_us(10000);
	for (int i = 0; i < 2; i++) {
		smp_ipi(cpu, ICR_SIPI | TRAMPOLINE_GPA >> 12);
		tsc_delay_us(200);
	}
	t0 = rdtsc();
	while (__atomic_load_n(&smp_online, __ATOMIC_ACQUIRE) == cpu) {
		if (rdtsc() - t0 > tsc_hz() / 1000000 * START_TIMEOUT_US) {
			serial_printf("smp: cpu %u did not start\n", cpu);
			guest_exit(GUEST_EXIT_SMP);
		}
		cpu_relax();
	}
}

void smp_init(unsigned ncpus)
{
	struct trampoline_args *args = (struct trampoline_args *)
		(TRAMPOLINE_GPA + (trampoline_args - trampoline_start));

	if (ncpus > SMP_MAX_CPUS) {
		serial_printf("smp: using %u of %u CPUs\n", SMP_MAX_CPUS, ncpus);
		ncpus = SMP_MAX_CPUS;
	}
	if (ncpus <= 1 || smp_online > 1)
		return;
	memcpy((void *)TRAMPOLINE_GPA, trampoline_start,
	       (size_t)(trampoline_end - trampoline_start));
	args->cr3 = read_cr3();
	args->entry = (uint64_t)ap_entry64;
	mmio_write32(LAPIC_GPA + APIC_SVR,
		     mmio_read32(LAPIC_GPA + APIC_SVR) | SVR_ENABLE | 0xff);
	for (unsigned cpu = 1; cpu < ncpus; cpu++)
		smp_start(cpu, args);
}

unsigned smp_cpus(void)
{
	return __atomic_load_n(&smp_online, __ATOMIC_ACQUIRE);
}

void smp_call(unsigned ncpus, smp_job_fn *fn, void *arg)
{
	if (ncpus > smp_cpus())
		ncpus = smp_cpus();
	smp_job = fn;
	smp_job_arg = arg;
	smp_job_cpus = ncpus;
	__atomic_store_n(&smp_job_done, 0, __ATOMIC_RELAXED);
	__atomic_add_fetch(&smp_job_seq, 1, __ATOMIC_RELEASE);
}

void smp_wait(void)
{
	while (__atomic_load_n(&smp_job_done, __ATOMIC_ACQUIRE) + 1 < smp_job_cpus)
		cpu_relax();
}

void ap_main(unsigned cpu)
{
	unsigned seen = __atomic_load_n(&smp_job_seq, __ATOMIC_ACQUIRE), seq;

	trap_load();
	__atomic_store_n(&smp_online, cpu + 1, __ATOMIC_RELEASE);
	for (;;) {
		while ((seq = __atomic_load_n(&smp_job_seq, __ATOMIC_ACQUIRE)) == seen)
			cpu_relax();
		seen = seq;
		if (cpu < smp_job_cpus) {
			smp_job(cpu, smp_job_arg);
			__atomic_add_fetch(&smp_job_done, 1, __ATOMIC_RELEASE);
		}
	}
}
