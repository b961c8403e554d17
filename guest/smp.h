/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smp.h - starting the application processors and giving them work.
 *
 * CPUs are numbered 0..n-1 and CPU k has APIC ID k.  APs are started only
 * by the modes that use them; once started, an AP waits for a job posted
 * with smp_call, runs it, and waits for the next one.
 */
#ifndef GUEST_SMP_H
#define GUEST_SMP_H

typedef void smp_job_fn(unsigned cpu, void *arg);

/*
 * Start APs 1..ncpus-1 (capped at SMP_MAX_CPUS), one at a time.  An AP
 * that does not check in within 5 seconds ends the guest with
 * GUEST_EXIT_SMP.  Call once, on the BSP, after tsc_calibrate.
 */
void smp_init(unsigned ncpus);

/* CPUs running, the BSP included. */
unsigned smp_cpus(void);

/* Run fn(cpu, arg) on APs 1..ncpus-1 and return at once; the BSP is the
 * caller's to use.  One job at a time: smp_wait before the next call. */
void smp_call(unsigned ncpus, smp_job_fn *fn, void *arg);

/* Wait until every AP of the last smp_call has returned from fn. */
void smp_wait(void);

/* An AP's C entry, reached from ap_entry64. */
void ap_main(unsigned cpu);

#endif
