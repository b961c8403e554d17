// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vCPU threads and the exit loop.
 *
 * Kicks: each vCPU thread blocks SIG_KICK, and hands KVM a signal mask with
 * SIG_KICK unblocked (KVM_SET_SIGNAL_MASK), so the signal can only interrupt
 * KVM_RUN.  A kick sent while the thread is between two KVM_RUNs stays
 * pending and makes the next KVM_RUN return -EINTR at once: a kick can
 * never be lost, whatever the timing.  The signal is never delivered to a
 * handler (the mask is restored before KVM_RUN returns), so after -EINTR
 * the thread consumes it with sigtimedwait().
 *
 * Consistency: after a KVM_EXIT_IO or KVM_EXIT_MMIO the instruction is only
 * complete once KVM_RUN is entered again, so a vCPU that parks first
 * re-enters KVM_RUN with immediate_exit set (KVM completes the access, then
 * returns -EINTR without running guest code).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vmm/log.h"
#include "vmm/strbuf.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define SIG_KICK SIGUSR1

static const char *const exit_names[] = {
#define N(x) [KVM_EXIT_##x] = "KVM_EXIT_" #x
	N(UNKNOWN), N(EXCEPTION), N(IO), N(HYPERCALL), N(DEBUG), N(HLT), N(MMIO),
	N(IRQ_WINDOW_OPEN), N(SHUTDOWN), N(FAIL_ENTRY), N(INTR), N(SET_TPR),
	N(TPR_ACCESS), N(NMI), N(INTERNAL_ERROR), N(OSI), N(PAPR_HCALL), N(WATCHDOG),
	N(EPR), N(SYSTEM_EVENT), N(IOAPIC_EOI), N(HYPERV), N(X86_RDMSR), N(X86_WRMSR),
	N(DIRTY_RING_FULL), N(AP_RESET_HOLD), N(X86_BUS_LOCK), N(XEN), N(NOTIFY),
#undef N
};

const char *kvm_exit_name(uint32_t reason)
{
	static __thread char buf[32];

	if (reason < sizeof(exit_names) / sizeof(exit_names[0]) && exit_names[reason])
		return exit_names[reason];
	snprintf(buf, sizeof(buf), "KVM_EXIT_%u", reason);
	return buf;
}

static void vcpu_kick_handler(int sig)
{
	(void)sig;
}

int vcpu_init_signals(void)
{
	struct sigaction sa = { .sa_handler = vcpu_kick_handler };

	/* No SA_RESTART: the point of the signal is that KVM_RUN returns. */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIG_KICK, &sa, NULL) < 0)
		return -errno;
	return 0;
}

static int vcpu_set_cpuid(struct vcpu *vcpu, const struct kvm_cpuid2 *supported)
{
	size_t size = sizeof(*supported) + supported->nent * sizeof(supported->entries[0]);
	struct kvm_cpuid2 *cpuid = malloc(size);
	uint32_t i;
	int ret = 0;

	if (!cpuid)
		return -ENOMEM;
	memcpy(cpuid, supported, size);
	for (i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		switch (e->function) {
		case 1:
			/* Initial APIC ID, logical count, and "running on a hypervisor". */
			e->ebx = (e->ebx & 0x0000ffff) | ((uint32_t)vcpu->id << 24) |
				 ((uint32_t)vcpu->vm->ncpus << 16);
			e->ecx |= 1U << 31;
			break;
		case 0xb:
		case 0x1f:
			e->edx = (uint32_t)vcpu->id;	/* x2APIC ID */
			break;
		}
	}
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid) < 0)
		ret = -errno;
	free(cpuid);
	return ret;
}

int vcpu_create(struct vcpu *vcpu, struct vm *vm, int id, const struct kvm_cpuid2 *cpuid)
{
	struct kvm_signal_mask *kmask;
	sigset_t set;
	int ret;

	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->vm = vm;
	vcpu->id = id;
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (vcpu->fd < 0) {
		vcpu->fd = -1;
		return error_errno(-errno, "KVM_CREATE_VCPU %d", id);
	}
	vcpu->run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		vcpu->run = NULL;
		return error_errno(-errno, "mmap of vCPU %d's kvm_run", id);
	}
	ret = vcpu_set_cpuid(vcpu, cpuid);
	if (ret)
		return error_errno(ret, "KVM_SET_CPUID2 on vCPU %d", id);

	/* Inside KVM_RUN, SIG_KICK is deliverable; everywhere else it is blocked. */
	kmask = calloc(1, sizeof(*kmask) + 8);
	if (!kmask)
		return -ENOMEM;
	pthread_sigmask(SIG_BLOCK, NULL, &set);
	sigdelset(&set, SIG_KICK);
	kmask->len = 8;		/* the kernel's sigset_t, not glibc's */
	memcpy(kmask->sigset, &set, 8);
	ret = ioctl(vcpu->fd, KVM_SET_SIGNAL_MASK, kmask) < 0 ? -errno : 0;
	free(kmask);
	if (ret)
		return error_errno(ret, "KVM_SET_SIGNAL_MASK on vCPU %d", id);
	return 0;
}

static void seg_flat(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	*s = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
}

int vcpu_set_entry32(struct vcpu *vcpu, const struct vcpu_entry32 *e)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { 0 };

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return error_errno(-errno, "KVM_GET_SREGS");
	seg_flat(&sregs.cs, e->cs, 0xb);	/* execute/read, accessed */
	seg_flat(&sregs.ds, e->ds, 0x3);	/* read/write, accessed */
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	if (e->gdt_base) {
		sregs.gdt.base = e->gdt_base;
		sregs.gdt.limit = e->gdt_limit;
	}
	sregs.cr0 = 0x11;			/* PE and ET; paging and caches as both protocols say */
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
		return error_errno(-errno, "KVM_SET_SREGS");
	regs.rip = e->eip;
	regs.rax = e->eax;
	regs.rbx = e->ebx;
	regs.rsi = e->esi;
	regs.rflags = 0x2;
	if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
		return error_errno(-errno, "KVM_SET_REGS");
	return 0;
}

/*
 * A kick that made KVM_RUN return -EINTR is still pending: KVM restored the
 * thread's mask (SIG_KICK blocked) before returning, so the signal was never
 * delivered.  Left pending it would end every later KVM_RUN at once; take it.
 */
static void vcpu_eat_kicks(void)
{
	struct timespec zero = { 0, 0 };
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIG_KICK);
	while (sigtimedwait(&set, NULL, &zero) > 0)
		;
}

void vcpu_kick(struct vcpu *vcpu)
{
	if (vcpu->thread_started)
		pthread_kill(vcpu->thread, SIG_KICK);
}

static void vcpu_handle_exit(struct vcpu *vcpu);

void vcpu_complete_io(struct vcpu *vcpu)
{
	/*
	 * Completing an access can itself exit again (the next chunk of a
	 * string I/O): handle that exit too, until KVM says -EINTR.
	 */
	vcpu->run->immediate_exit = 1;
	while (ioctl(vcpu->fd, KVM_RUN, 0) == 0)
		vcpu_handle_exit(vcpu);
	vcpu->run->immediate_exit = 0;
	vcpu_eat_kicks();
}

static void vcpu_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
	uint32_t i;

	vcpu->nr_io++;
	/* String I/O (rep outsb/insb) comes as count accesses back to back. */
	for (i = 0; i < run->io.count; i++, data += run->io.size) {
		if (iobus_access(&vcpu->vm->pio, run->io.port, data, run->io.size, is_write) == -ENOENT) {
			if (!is_write)
				memset(data, 0xff, run->io.size);
			debug("vcpu %d: unclaimed port %s 0x%x", vcpu->id, is_write ? "write" : "read",
			      run->io.port);
		}
	}
}

static void vcpu_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint32_t len = run->mmio.len <= 8 ? run->mmio.len : 8;

	vcpu->nr_mmio++;
	if (iobus_access(&vcpu->vm->mmio, run->mmio.phys_addr, run->mmio.data, len,
			 run->mmio.is_write) == -ENOENT) {
		if (!run->mmio.is_write)
			memset(run->mmio.data, 0xff, len);
		debug("vcpu %d: unclaimed MMIO %s 0x%llx", vcpu->id, run->mmio.is_write ? "write" : "read",
		      (unsigned long long)run->mmio.phys_addr);
	}
}

/* Report an exit the VMM cannot handle, by name and with the registers, and stop the VM. */
static void vcpu_unexpected(struct vcpu *vcpu, const char *detail)
{
	struct kvm_run *run = vcpu->run;
	struct strbuf sb = STRBUF_INIT;

	strbuf_printf(&sb, "vmm: error: vcpu %d: unexpected exit %s (%u)%s%s\n", vcpu->id,
		      kvm_exit_name(run->exit_reason), run->exit_reason, detail ? ": " : "",
		      detail ? detail : "");
	vcpu_dump(vcpu, &sb);
	if (!strbuf_failed(&sb))
		log_write(2, sb.buf, sb.len);
	strbuf_release(&sb);
	vm_fail(vcpu->vm, "vcpu %d: unexpected exit %s", vcpu->id, kvm_exit_name(run->exit_reason));
}

static void vcpu_handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	char detail[128];

	vcpu->nr_exits++;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_io(vcpu);
		break;
	case KVM_EXIT_MMIO:
		vcpu_mmio(vcpu);
		break;
	case KVM_EXIT_INTR:
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN) {
			vm_request_exit(vcpu->vm, 0, "the guest powered off");
			break;
		}
		snprintf(detail, sizeof(detail), "system event %u", run->system_event.type);
		vcpu_unexpected(vcpu, detail);
		break;
	case KVM_EXIT_SHUTDOWN:
		vcpu_unexpected(vcpu, "triple fault");
		break;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(detail, sizeof(detail), "hardware entry failure reason 0x%llx",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		vcpu_unexpected(vcpu, detail);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(detail, sizeof(detail), "suberror %u", run->internal.suberror);
		vcpu_unexpected(vcpu, detail);
		break;
	default:
		vcpu_unexpected(vcpu, NULL);
		break;
	}
}

static uint64_t vcpu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	char name[16];
	int ret;
	sigset_t set;

	snprintf(name, sizeof(name), "vcpu%d", vcpu->id);
	pthread_setname_np(pthread_self(), name);
	sigemptyset(&set);
	sigaddset(&set, SIG_KICK);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	for (;;) {
		if (vm_vcpu_should_park(vcpu->vm)) {
			if (!vm_vcpu_park(vcpu->vm, vcpu))
				break;
			continue;
		}
		__atomic_store_n(&vcpu->run_since_ns, vcpu_now_ns(), __ATOMIC_RELAXED);
		ret = ioctl(vcpu->fd, KVM_RUN, 0);
		__atomic_store_n(&vcpu->run_since_ns, 0, __ATOMIC_RELAXED);
		if (ret < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				if (__atomic_exchange_n(&vcpu->throttle_due, false, __ATOMIC_ACQ_REL))
					vm_vcpu_throttle(vcpu->vm);
				/* After the sleep: a tick that came during it is not a new period. */
				vcpu_eat_kicks();
				continue;
			}
			error_errno(-errno, "vcpu %d: KVM_RUN", vcpu->id);
			vm_fail(vcpu->vm, "vcpu %d: KVM_RUN failed: %s", vcpu->id, strerror(errno));
			continue;
		}
		vcpu_handle_exit(vcpu);
	}
	return NULL;
}

int vcpu_start(struct vcpu *vcpu)
{
	sigset_t set, old;
	int ret;

	/* The thread must start with SIG_KICK blocked: no window before its own mask. */
	sigemptyset(&set);
	sigaddset(&set, SIG_KICK);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	ret = -pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		return error_errno(ret, "cannot start vCPU %d's thread", vcpu->id);
	vcpu->thread_started = true;
	return 0;
}

static void dump_seg(struct strbuf *sb, const char *name, const struct kvm_segment *s)
{
	strbuf_printf(sb, " %-3s %04x base=%016llx limit=%08x type=%x p=%u dpl=%u db=%u s=%u l=%u g=%u\n",
		      name, s->selector, (unsigned long long)s->base, s->limit, s->type, s->present,
		      s->dpl, s->db, s->s, s->l, s->g);
}

void vcpu_dump(struct vcpu *vcpu, struct strbuf *sb)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	struct kvm_translation tr = { 0 };
	const uint8_t *code;
	int i;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0) {
		strbuf_printf(sb, "vcpu %d: cannot read registers: %s\n", vcpu->id, strerror(errno));
		return;
	}
#define X(v) ((unsigned long long)(v))
	strbuf_printf(sb, "vcpu %d registers (%s):\n", vcpu->id, vcpu_mp_state_name(vcpu));
	strbuf_printf(sb, " rip=%016llx rsp=%016llx rflags=%016llx\n", X(r.rip), X(r.rsp), X(r.rflags));
	strbuf_printf(sb, " rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx\n", X(r.rax), X(r.rbx), X(r.rcx), X(r.rdx));
	strbuf_printf(sb, " rsi=%016llx rdi=%016llx rbp=%016llx r8 =%016llx\n", X(r.rsi), X(r.rdi), X(r.rbp), X(r.r8));
	strbuf_printf(sb, " r9 =%016llx r10=%016llx r11=%016llx r12=%016llx\n", X(r.r9), X(r.r10), X(r.r11), X(r.r12));
	strbuf_printf(sb, " r13=%016llx r14=%016llx r15=%016llx\n", X(r.r13), X(r.r14), X(r.r15));
	strbuf_printf(sb, " cr0=%016llx cr2=%016llx cr3=%016llx cr4=%016llx\n", X(s.cr0), X(s.cr2), X(s.cr3), X(s.cr4));
	strbuf_printf(sb, " cr8=%016llx efer=%016llx apic_base=%016llx\n", X(s.cr8), X(s.efer), X(s.apic_base));
	dump_seg(sb, "cs", &s.cs);
	dump_seg(sb, "ss", &s.ss);
	dump_seg(sb, "ds", &s.ds);
	dump_seg(sb, "es", &s.es);
	dump_seg(sb, "fs", &s.fs);
	dump_seg(sb, "gs", &s.gs);
	dump_seg(sb, "tr", &s.tr);
	dump_seg(sb, "ldt", &s.ldt);
	strbuf_printf(sb, " gdt base=%016llx limit=%04x  idt base=%016llx limit=%04x\n",
		      X(s.gdt.base), s.gdt.limit, X(s.idt.base), s.idt.limit);
	tr.linear_address = s.cs.base + r.rip;
	if (ioctl(vcpu->fd, KVM_TRANSLATE, &tr) == 0 && tr.valid &&
	    (code = ram_gpa_to_hva(&vcpu->vm->ram, tr.physical_address, 16))) {
		strbuf_printf(sb, " code at %016llx (gpa %llx):", X(tr.linear_address), X(tr.physical_address));
		for (i = 0; i < 16; i++)
			strbuf_printf(sb, " %02x", code[i]);
		strbuf_printf(sb, "\n");
	} else {
		strbuf_printf(sb, " code at %016llx: not mapped in guest RAM\n", X(tr.linear_address));
	}
#undef X
}

int vcpu_translate(struct vcpu *vcpu, uint64_t gva, uint64_t *gpa)
{
	struct kvm_translation tr = { .linear_address = gva };

	if (ioctl(vcpu->fd, KVM_TRANSLATE, &tr) < 0)
		return -errno;
	if (!tr.valid)
		return -EFAULT;
	*gpa = tr.physical_address;
	return 0;
}

const char *vcpu_mp_state_name(struct vcpu *vcpu)
{
	struct kvm_mp_state mp;

	if (ioctl(vcpu->fd, KVM_GET_MP_STATE, &mp) < 0)
		return "unknown";
	switch (mp.mp_state) {
	case KVM_MP_STATE_RUNNABLE: return "runnable";
	case KVM_MP_STATE_UNINITIALIZED: return "wait-for-init";
	case KVM_MP_STATE_INIT_RECEIVED: return "wait-for-sipi";
	case KVM_MP_STATE_HALTED: return "halted";
	case KVM_MP_STATE_SIPI_RECEIVED: return "sipi-received";
	default: return "other";
	}
}

void vcpu_destroy(struct vcpu *vcpu)
{
	if (vcpu->thread_started) {
		pthread_join(vcpu->thread, NULL);
		vcpu->thread_started = false;
	}
	if (vcpu->run)
		munmap(vcpu->run, (size_t)vcpu->vm->run_size);
	vcpu->run = NULL;
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->fd = -1;
}
