/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A vCPU: its KVM fd, its kvm_run page and its thread.  The thread runs the
 * exit loop, a plain switch on the exit reason: port I/O and MMIO go to the
 * VM's I/O buses, anything unexpected is printed by name with a register
 * dump and stops the VM.  The bootstrap processor is set up for the
 * multiboot entry; the others wait in KVM for INIT/SIPI from the guest,
 * which the in-kernel local APIC delivers.
 */
#ifndef VMM_VCPU_H
#define VMM_VCPU_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm.h>

struct vm;
struct strbuf;

struct vcpu {
	struct vm *vm;
	int id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	bool throttle_due;		/* the throttle's ticker kicked it: sleep before running on */
	uint64_t nr_exits, nr_io, nr_mmio;
	uint64_t run_since_ns;		/* in KVM_RUN since (monotonic), 0: not in it; read by info cpus */
};

/* Create vCPU @id of @vm with @cpuid (patched with its APIC ID); 0 or -errno. */
int vcpu_create(struct vcpu *vcpu, struct vm *vm, int id, const struct kvm_cpuid2 *cpuid);

/*
 * A boot loader's hand-over in flat 32-bit protected mode, paging and
 * interrupts off: the multiboot entry (EAX magic, EBX info, CS 0x08) and
 * the Linux 32-bit boot protocol (ESI zero page, CS 0x10, DS 0x18, with a
 * GDT holding them in guest memory).
 */
struct vcpu_entry32 {
	uint32_t eip, eax, ebx, esi;
	uint16_t cs, ds;		/* selectors; their hidden parts are flat 4 GiB */
	uint32_t gdt_base;		/* 0: no GDT in guest memory (the guest loads its own first) */
	uint16_t gdt_limit;
};

/* Set @e on @vcpu; 0 or -errno after one error line. */
int vcpu_set_entry32(struct vcpu *vcpu, const struct vcpu_entry32 *e);

/* Start the vCPU's thread. */
int vcpu_start(struct vcpu *vcpu);

/* Make the vCPU leave KVM_RUN soon (a signal to its thread). */
void vcpu_kick(struct vcpu *vcpu);

/* Re-enter KVM_RUN with immediate_exit so a pending I/O completes (vCPU thread only). */
void vcpu_complete_io(struct vcpu *vcpu);

/* Append the registers, segments and code bytes at RIP; the vCPU must not be running. */
void vcpu_dump(struct vcpu *vcpu, struct strbuf *sb);

/* The guest-physical address of guest-virtual @gva in the vCPU's current mode; 0, -EFAULT if unmapped, -errno. The vCPU must not be running. */
int vcpu_translate(struct vcpu *vcpu, uint64_t gva, uint64_t *gpa);

/* The multiprocessor state name ("runnable", "halted", "wait-for-sipi"...). */
const char *vcpu_mp_state_name(struct vcpu *vcpu);

/* Join the thread (if started), unmap and close. */
void vcpu_destroy(struct vcpu *vcpu);

/* The name of a KVM_EXIT_* reason ("KVM_EXIT_SHUTDOWN"), or "KVM_EXIT_<n>". */
const char *kvm_exit_name(uint32_t reason);

/* Install the signal handler used for kicks; once per process. */
int vcpu_init_signals(void);

#endif
