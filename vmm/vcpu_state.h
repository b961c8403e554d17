/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A vCPU's state as KVM keeps it, read from and written back to a parked
 * vCPU: registers, FPU/xsave, XCRs, MSRs, local APIC, pending events, MP
 * state and debug registers.  Migration saves it (migrate/state.c encodes
 * struct cpu_state); nothing here knows the encoding.
 */
#ifndef VMM_VCPU_STATE_H
#define VMM_VCPU_STATE_H

#include <stdint.h>
#include <linux/kvm.h>

struct vm;
struct vcpu;

#define VCPU_STATE_MAX_MSRS	1024		/* per vCPU; more means a corrupt state */
#define VCPU_STATE_MAX_XSAVE	(64 << 10)	/* bytes; AMX needs about 11 KiB */
#define VCPU_MSR_IA32_TSC	0x10
#define VCPU_MSR_TSC_DEADLINE	0x6e0

struct cpu_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	uint8_t *xsave;			/* the xsave area, malloc'd; NULL when fpu is used */
	struct kvm_fpu fpu;		/* only without KVM_CAP_XSAVE */
	struct kvm_xcrs xcrs;		/* nr_xcrs 0 without KVM_CAP_XCRS */
	struct kvm_msr_entry *msrs;	/* nmsrs entries, malloc'd */
	uint32_t nmsrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp_state;
	struct kvm_debugregs debugregs;
};

/* The size of this kernel's xsave area for @vm's vCPUs; 0 without KVM_CAP_XSAVE (legacy fpu instead). */
uint32_t vcpu_state_xsave_size(struct vm *vm);

/* The MSRs KVM can save (KVM_GET_MSR_INDEX_LIST), malloc'd in *list, once per save; 0 or -errno after one error line. */
int vcpu_state_msr_list(struct vm *vm, struct kvm_msr_list **list);

/*
 * Read the parked @vcpu into @cs, whose xsave area holds @xsave_size bytes
 * (from vcpu_state_xsave_size()); every MSR of @list that it can read goes
 * into cs->msrs (malloc'd).  0 or -errno after one error line.
 */
int vcpu_state_get(struct vcpu *vcpu, const struct kvm_msr_list *list, uint32_t xsave_size,
		   struct cpu_state *cs);

/*
 * The guest pages that loading @vcpu's MSRs makes KVM write or map at once:
 * the paravirtual clock, wall clock, steal time, PV EOI and async page
 * fault areas a guest such as Linux registered.  On a postcopy destination
 * those pages must be there before the state is loaded (no fault server
 * runs yet), so the source sends them at the switch.  Up to @max
 * guest-physical addresses in @gpa; their number, or -errno after one
 * error line.  The vCPU must be parked.
 */
#define VCPU_PV_PAGES_MAX	8
int vcpu_state_pv_pages(struct vcpu *vcpu, uint64_t *gpa, int max);

/* Before anything is written to any vCPU of @vm: can this kernel take @cs?  0 or -EINVAL after one error line. */
int vcpu_state_check(struct vm *vm, const struct cpu_state *cs);

/*
 * Write @cs into the parked @vcpu, in QEMU's order; the VM-level state
 * (vm_chips_put()) goes first.  On vCPU 0 the guest's TSC is moved to its
 * saved value if KVM kept its own.  0 or -errno after one error line.
 */
int vcpu_state_put(struct vcpu *vcpu, const struct cpu_state *cs, uint32_t xsave_size);

#endif
