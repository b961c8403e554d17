// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A vCPU's KVM state, out of a parked vCPU and back into one.
 *
 * This lives beside the vCPU because it is KVM's ABI, not migration's:
 * which ioctls, in which order, and the kernel's quirks.  The size of an
 * xsave area depends on the kernel and on the dynamic features (AMX) the
 * process enabled: KVM_CAP_XSAVE2 on the VM fd says how many bytes
 * KVM_GET_XSAVE2 writes; at most 4096 means the old KVM_GET_XSAVE is
 * enough.  MSRs are those of KVM_GET_MSR_INDEX_LIST that the vCPU can read;
 * IA32_TSC must be among them, so that the guest's TSC continues from its
 * saved value, as the KVM clock does: for the guest, no time passes while
 * it is paused.  The write order is QEMU's: REGS, XSAVE, XCRS, SREGS, MSRS,
 * MP_STATE, LAPIC (then the TSC deadline again), VCPU_EVENTS, DEBUGREGS.
 */
#include <cpuid.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <asm/kvm_para.h>

#include "vmm/log.h"
#include "vmm/vcpu.h"
#include "vmm/vcpu_state.h"
#include "vmm/vm.h"

uint32_t vcpu_state_xsave_size(struct vm *vm)
{
	int size;

	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) <= 0)
		return 0;
	size = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	return size > (int)sizeof(struct kvm_xsave) ? (uint32_t)size : sizeof(struct kvm_xsave);
}

int vcpu_state_msr_list(struct vm *vm, struct kvm_msr_list **out)
{
	uint32_t n = 256, want;

	for (;;) {
		struct kvm_msr_list *list = calloc(1, sizeof(*list) + n * sizeof(list->indices[0]));
		int err;

		if (!list)
			return error(-ENOMEM, "out of memory");
		list->nmsrs = n;
		if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) == 0) {
			*out = list;
			return 0;
		}
		err = -errno;
		/* On E2BIG the kernel wrote back how many there are. */
		want = list->nmsrs;
		free(list);
		if (err != -E2BIG || want <= n)
			return error_errno(err, "KVM_GET_MSR_INDEX_LIST");
		if (want > VCPU_STATE_MAX_MSRS)
			return error(-E2BIG, "KVM lists %u MSRs, more than vmm can save (%d)",
				     want, VCPU_STATE_MAX_MSRS);
		n = want;
	}
}

/*
 * KVM_GET_MSRS stops at the first MSR it cannot read (one the host CPU or
 * the guest's CPUID lacks) and returns how many it read: keep those, skip
 * the one that failed and go on from the next.
 */
static int vcpu_get_msrs(struct vcpu *v, const struct kvm_msr_list *list, struct cpu_state *cs)
{
	struct kvm_msrs *m;
	uint32_t i = 0, j, n;
	bool tsc = false;
	int r, ret = 0;

	m = calloc(1, sizeof(*m) + list->nmsrs * sizeof(m->entries[0]));
	cs->msrs = calloc(list->nmsrs ? list->nmsrs : 1, sizeof(*cs->msrs));
	if (!m || !cs->msrs) {
		free(m);
		return error(-ENOMEM, "out of memory");
	}
	while (i < list->nmsrs) {
		n = list->nmsrs - i;
		m->nmsrs = n;
		for (j = 0; j < n; j++)
			m->entries[j] = (struct kvm_msr_entry){ .index = list->indices[i + j] };
		r = ioctl(v->fd, KVM_GET_MSRS, m);
		if (r < 0) {
			ret = error_errno(-errno, "KVM_GET_MSRS on vCPU %d", v->id);
			goto out;
		}
		memcpy(cs->msrs + cs->nmsrs, m->entries, (size_t)r * sizeof(m->entries[0]));
		cs->nmsrs += (uint32_t)r;
		i += (uint32_t)r;
		if (i < list->nmsrs) {
			debug("vCPU %d: MSR 0x%x cannot be read, not saved", v->id, list->indices[i]);
			i++;
		}
	}
	for (j = 0; j < cs->nmsrs; j++)
		tsc |= cs->msrs[j].index == VCPU_MSR_IA32_TSC;
	if (!tsc)
		ret = error(-EIO, "vCPU %d: KVM did not read IA32_TSC (0x%x); the guest's TSC "
			    "could not continue on the destination", v->id, VCPU_MSR_IA32_TSC);
out:
	free(m);
	return ret;
}

/* Like KVM_GET_MSRS, KVM_SET_MSRS stops at the first refusal: warn, skip it, go on. */
static int vcpu_put_msrs(struct vcpu *v, const struct kvm_msr_entry *e, uint32_t n)
{
	struct kvm_msrs *m;
	uint32_t i = 0;
	int r, ret = 0;

	m = calloc(1, sizeof(*m) + (n ? n : 1) * sizeof(m->entries[0]));
	if (!m)
		return error(-ENOMEM, "out of memory");
	while (i < n) {
		m->nmsrs = n - i;
		memcpy(m->entries, e + i, (n - i) * sizeof(*e));
		r = ioctl(v->fd, KVM_SET_MSRS, m);
		if (r < 0) {
			ret = error_errno(-errno, "KVM_SET_MSRS on vCPU %d", v->id);
			break;
		}
		i += (uint32_t)r;
		if (i < n) {
			warn("vCPU %d: KVM refused MSR 0x%x = 0x%llx; it keeps its reset value",
			     v->id, e[i].index, (unsigned long long)e[i].data);
			i++;
		}
	}
	free(m);
	return ret;
}

/* KVM's paravirtual MSRs that hold a guest address, and the enable bits below it. */
static const struct {
	uint32_t index;
	uint64_t flags;			/* low bits that are not the address */
	bool always;			/* the address counts even without bit 0 (the wall clock has no enable bit) */
} pv_msrs[] = {
	{ MSR_KVM_WALL_CLOCK, 0, true },
	{ MSR_KVM_SYSTEM_TIME, 1, false },
	{ MSR_KVM_WALL_CLOCK_NEW, 0, true },
	{ MSR_KVM_SYSTEM_TIME_NEW, 1, false },
	{ MSR_KVM_ASYNC_PF_EN, 63, false },
	{ MSR_KVM_STEAL_TIME, 63, false },
	{ MSR_KVM_PV_EOI_EN, 3, false },
};

int vcpu_state_pv_pages(struct vcpu *v, uint64_t *gpa, int max)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[1];
	} m;
	size_t i;
	int n = 0;

	for (i = 0; i < sizeof(pv_msrs) / sizeof(pv_msrs[0]); i++) {
		uint64_t addr;

		memset(&m, 0, sizeof(m));
		m.hdr.nmsrs = 1;
		m.e[0].index = pv_msrs[i].index;
		/* 0: KVM does not know this MSR (or no PV clock on this host): nothing to fetch. */
		if (ioctl(v->fd, KVM_GET_MSRS, &m) != 1)
			continue;
		if (!pv_msrs[i].always && !(m.e[0].data & 1))
			continue;
		addr = m.e[0].data & ~pv_msrs[i].flags;
		if (!addr && pv_msrs[i].always)
			continue;
		if (n == max)
			return error(-E2BIG, "vCPU %d: more than %d paravirtual pages", v->id, max);
		gpa[n++] = addr;
	}
	return n;
}

int vcpu_state_get(struct vcpu *v, const struct kvm_msr_list *list, uint32_t xsave_size,
		   struct cpu_state *cs)
{
	bool has_xcrs = ioctl(v->vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
	const char *what;

#define GET(req, arg) do { if (ioctl(v->fd, req, arg) < 0) { what = #req; goto fail; } } while (0)
	GET(KVM_GET_REGS, &cs->regs);
	GET(KVM_GET_SREGS, &cs->sregs);
	if (xsave_size > sizeof(struct kvm_xsave))
		GET(KVM_GET_XSAVE2, cs->xsave);
	else if (xsave_size)
		GET(KVM_GET_XSAVE, cs->xsave);
	else
		GET(KVM_GET_FPU, &cs->fpu);
	if (has_xcrs)
		GET(KVM_GET_XCRS, &cs->xcrs);
	GET(KVM_GET_LAPIC, &cs->lapic);
	GET(KVM_GET_VCPU_EVENTS, &cs->events);
	GET(KVM_GET_MP_STATE, &cs->mp_state);
	GET(KVM_GET_DEBUGREGS, &cs->debugregs);
#undef GET
	debug("vCPU %d saved: rip 0x%llx cs.base 0x%llx mp_state %u events flags 0x%x latched_init %u sipi %u",
	      v->id, (unsigned long long)cs->regs.rip, (unsigned long long)cs->sregs.cs.base,
	      cs->mp_state.mp_state, cs->events.flags, cs->events.smi.latched_init, cs->events.sipi_vector);
	return vcpu_get_msrs(v, list, cs);
fail:
	return error_errno(-errno, "%s on vCPU %d", what, v->id);
}

int vcpu_state_check(struct vm *vm, const struct cpu_state *cs)
{
	if (cs->xcrs.nr_xcrs && ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) <= 0)
		return error(-EINVAL, "saved state: has XCRs but this kernel lacks KVM_CAP_XCRS");
	return 0;
}

static int vcpu_read_tsc(struct vcpu *v, uint64_t *tsc)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m = { { .nmsrs = 1 }, { .index = VCPU_MSR_IA32_TSC } };

	if (ioctl(v->fd, KVM_GET_MSRS, &m) != 1)
		return error(-EIO, "vCPU %d: KVM cannot read IA32_TSC back", v->id);
	*tsc = m.e.data;
	return 0;
}

/*
 * KVM takes a host write of IA32_TSC that lands within a second of what
 * the VM's TSC reads anyway as an attempt to synchronise vCPUs, and keeps
 * the current offset (kvm_synchronize_tsc()): on a destination created
 * about as long ago as the source had been running, the saved TSC would be
 * silently ignored and the guest's TSC would jump by up to a second.  So
 * vCPU 0's TSC is read back and, if it is off by more than a millisecond,
 * moved with the KVM_VCPU_TSC_OFFSET attribute (Linux 5.16).  The other
 * vCPUs' writes are then matched to vCPU 0's offset by that same
 * heuristic, which keeps them in step as they were on the source.
 */
static int vcpu0_fix_tsc(struct vcpu *v, const struct cpu_state *cs)
{
	struct kvm_device_attr attr = { .group = KVM_VCPU_TSC_CTRL, .attr = KVM_VCPU_TSC_OFFSET };
	uint64_t saved = 0, now = 0, offset;
	int64_t delta;
	long khz;
	uint32_t i;
	int ret;

	for (i = 0; i < cs->nmsrs; i++)
		if (cs->msrs[i].index == VCPU_MSR_IA32_TSC)
			saved = cs->msrs[i].data;
	ret = vcpu_read_tsc(v, &now);
	if (ret)
		return ret;
	delta = (int64_t)(saved - now);
	khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	if (khz <= 0)
		khz = 1000000;
	if (delta > -khz && delta < khz)
		return 0;
	attr.addr = (uintptr_t)&offset;
	if (ioctl(v->fd, KVM_HAS_DEVICE_ATTR, &attr) < 0) {
		warn("the guest's TSC is %lld ms off its saved value, and this kernel lacks "
		     "KVM_VCPU_TSC_OFFSET to correct it", (long long)(delta / khz));
		return 0;
	}
	if (ioctl(v->fd, KVM_GET_DEVICE_ATTR, &attr) < 0)
		return error_errno(-errno, "vCPU 0: KVM_GET_DEVICE_ATTR KVM_VCPU_TSC_OFFSET");
	offset += (uint64_t)delta;
	if (ioctl(v->fd, KVM_SET_DEVICE_ATTR, &attr) < 0)
		return error_errno(-errno, "vCPU 0: KVM_SET_DEVICE_ATTR KVM_VCPU_TSC_OFFSET");
	debug("KVM kept vCPU 0's TSC %lld ms off the saved value; moved its offset", (long long)(delta / khz));
	return 0;
}

/*
 * A TSC deadline written while the LAPIC timer was not yet in TSC-deadline
 * mode (before KVM_SET_LAPIC) was dropped: write it again after, as QEMU
 * does, or an armed timer never fires.
 */
static int vcpu_put_tsc_deadline(struct vcpu *v, const struct cpu_state *cs)
{
	uint32_t i;
	int ret;

	for (i = 0; i < cs->nmsrs; i++) {
		if (cs->msrs[i].index == VCPU_MSR_TSC_DEADLINE) {
			ret = vcpu_put_msrs(v, &cs->msrs[i], 1);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* With -v -v: what KVM holds now against what was saved. */
static void vcpu_debug_loaded(struct vcpu *v, const struct cpu_state *cs)
{
	struct kvm_mp_state mp;
	struct kvm_vcpu_events ev;
	struct kvm_regs r;

	if (log_level < LOG_DEBUG)
		return;
	if (!ioctl(v->fd, KVM_GET_MP_STATE, &mp) && !ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) &&
	    !ioctl(v->fd, KVM_GET_REGS, &r))
		debug("vCPU %d loaded: rip 0x%llx (saved 0x%llx) mp_state %u (saved %u) latched_init %u",
		      v->id, (unsigned long long)r.rip, (unsigned long long)cs->regs.rip, mp.mp_state,
		      cs->mp_state.mp_state, ev.smi.latched_init);
}

/* An AMD (or Hygon) host, where KVM runs the guest with SVM. */
static bool host_is_svm(void)
{
	unsigned int a, b, c, d;

	if (!__get_cpuid(0, &a, &b, &c, &d))
		return false;
	/* "AuthenticAMD" and "HygonGenuine" in EBX, EDX, ECX */
	return (b == 0x68747541 && d == 0x69746e65 && c == 0x444d4163) ||
	       (b == 0x6f677948 && d == 0x6e65476e && c == 0x656e6975);
}

/*
 * The segment registers as SVM holds them.  KVM_GET_SREGS on SVM reports
 * TR busy (type 11) whatever the VMCB holds, and VMSAVE stores it without
 * the busy bit (type 9): a guest booted under SVM runs with 9.  Real AMD
 * CPUs ignore the difference, but QEMU's TCG, which runs KVM in
 * scripts/kvm-sandbox, checks a user-mode IN/OUT against the TSS's I/O
 * bitmap only for type 9 and raises #GP otherwise: a migrated Linux guest
 * then could not use ioperm() (vmm-exit).  So TR goes back as it was in
 * the VMCB.  (VMX needs the busy type: Intel hosts keep 11.)
 */
static void sregs_for_host(struct kvm_sregs *s)
{
	static int svm = -1;

	if (svm < 0)
		svm = host_is_svm();
	if (svm && !s->tr.unusable && s->tr.type == 11)
		s->tr.type = 9;
}

int vcpu_state_put(struct vcpu *v, const struct cpu_state *cs, uint32_t xsave_size)
{
	struct kvm_sregs sregs = cs->sregs;
	const char *what;
	int ret;

#define PUT(req, arg) do { if (ioctl(v->fd, req, arg) < 0) { what = #req; goto fail; } } while (0)
	PUT(KVM_SET_REGS, &cs->regs);
	if (xsave_size)
		PUT(KVM_SET_XSAVE, cs->xsave);
	else
		PUT(KVM_SET_FPU, &cs->fpu);
	if (cs->xcrs.nr_xcrs)
		PUT(KVM_SET_XCRS, &cs->xcrs);
	sregs_for_host(&sregs);
	PUT(KVM_SET_SREGS, &sregs);
	ret = vcpu_put_msrs(v, cs->msrs, cs->nmsrs);
	if (!ret && v->id == 0)
		ret = vcpu0_fix_tsc(v, cs);
	if (ret)
		return ret;
	PUT(KVM_SET_MP_STATE, &cs->mp_state);
	PUT(KVM_SET_LAPIC, &cs->lapic);
	ret = vcpu_put_tsc_deadline(v, cs);
	if (ret)
		return ret;
	PUT(KVM_SET_VCPU_EVENTS, &cs->events);
	PUT(KVM_SET_DEBUGREGS, &cs->debugregs);
#undef PUT
	vcpu_debug_loaded(v, cs);
	return 0;
fail:
	return error_errno(-errno, "%s on vCPU %d", what, v->id);
}
