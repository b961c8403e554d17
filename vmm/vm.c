// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The VM: KVM setup, RAM slots, devices, and vCPU parking.
 *
 * Parking is a counter and a condition variable under vm->lock.  A vCPU
 * thread checks pause_count (without the lock) before every KVM_RUN; the
 * pauser raises the count, kicks every vCPU and waits until each thread has
 * either parked or ended.  Because a kick can never be lost (see vcpu.c),
 * this cannot hang on a vCPU that is between two KVM_RUNs.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmm/log.h"
#include "vmm/strbuf.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

/* Below 4 GiB and above any RAM slot: the pages KVM needs for its own use on Intel. */
#define VM_TSS_GPA		0xfffbd000ULL
#define VM_IDENTITY_MAP_GPA	0xfffbc000ULL

/* "vmx" (Intel VT-x), "svm" (AMD-V), or NULL: which flag /proc/cpuinfo shows. */
static const char *vm_cpu_virt_flag(void)
{
	char line[4096];
	const char *flag = NULL;
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (!f)
		return NULL;
	while (!flag && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5))
			continue;
		if (strstr(line, " vmx"))
			flag = "vmx";
		else if (strstr(line, " svm"))
			flag = "svm";
		break;
	}
	fclose(f);
	return flag;
}

/*
 * Why /dev/kvm is missing, in the order a user on bare metal should try the
 * fixes: the module, then the firmware setting; the sandbox (a slow KVM
 * nested in QEMU TCG) comes last, for machines where neither can help.
 */
static int vm_no_kvm_device(int err)
{
	const char *flag = vm_cpu_virt_flag();
	const char *mod = flag && !strcmp(flag, "svm") ? "kvm_amd" : "kvm_intel";
	char sys[64];

	snprintf(sys, sizeof(sys), "/sys/module/%s", mod);
	if (!flag)
		return error(err, "/dev/kvm does not exist and the CPU shows no virtualization (no vmx or svm "
			     "flag in /proc/cpuinfo): enable VT-x/AMD-V in the BIOS/firmware setup, or nested "
			     "virtualization if this is a VM; without KVM, run vmm through scripts/kvm-sandbox (slow)");
	if (access(sys, F_OK))
		return error(err, "/dev/kvm does not exist: load KVM with 'modprobe %s' as root (if it says "
			     "'disabled by bios', enable virtualization in the BIOS/firmware setup); without KVM, "
			     "run vmm through scripts/kvm-sandbox (slow)", mod);
	return error(err, "/dev/kvm does not exist although %s is loaded: create it with 'mknod /dev/kvm c 10 232' "
		     "as root (or check udev); without KVM, run vmm through scripts/kvm-sandbox (slow)", mod);
}

/* EACCES: say who may open it and how to join them. */
static int vm_kvm_denied(int err)
{
	struct stat st;
	struct group *g;

	if (stat("/dev/kvm", &st))
		return error_errno(err, "cannot open /dev/kvm");
	g = getgrgid(st.st_gid);
	if ((st.st_mode & 0060) == 0060 && g)
		return error(err, "permission denied on /dev/kvm (mode %04o, group %s): add yourself to group %s "
			     "(usermod -aG %s $USER, then log in again)", (unsigned)(st.st_mode & 07777), g->gr_name,
			     g->gr_name, g->gr_name);
	return error(err, "permission denied on /dev/kvm (mode %04o, group %s): let a group in as udev does "
		     "(chgrp kvm /dev/kvm; chmod 0660 /dev/kvm, as root) and join it (usermod -aG kvm $USER)",
		     (unsigned)(st.st_mode & 07777), g ? g->gr_name : "?");
}

static int vm_open_kvm(struct vm *vm)
{
	int v;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		int err = -errno;

		if (err == -ENOENT || err == -ENXIO || err == -ENODEV)
			return vm_no_kvm_device(err);
		if (err == -EACCES || err == -EPERM)
			return vm_kvm_denied(err);
		return error_errno(err, "cannot open /dev/kvm");
	}
	v = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION)
		return error(-EINVAL, "KVM API version %d, vmm needs %d", v, KVM_API_VERSION);
	return 0;
}

static int vm_check_caps(struct vm *vm)
{
	static const struct { int cap; const char *name; } caps[] = {
		{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
		{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
		{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
		{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
		{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
		{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
	};
	size_t i;

	for (i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, caps[i].cap) <= 0)
			return error(-ENOTSUP, "KVM lacks %s", caps[i].name);
	return 0;
}

static int vm_get_cpuid(struct vm *vm)
{
	int nent = 64;

	for (;;) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + (size_t)nent * sizeof(c->entries[0]));

		if (!c)
			return -ENOMEM;
		c->nent = (uint32_t)nent;
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			vm->cpuid = c;
			return 0;
		}
		free(c);
		if (errno != E2BIG || nent >= 4096)
			return error_errno(-errno, "KVM_GET_SUPPORTED_CPUID");
		nent *= 2;
	}
}

int vm_update_slots(struct vm *vm)
{
	int i;

	for (i = 0; i < vm->ram.nslots; i++) {
		struct kvm_userspace_memory_region r = {
			.slot = (uint32_t)i,
			.guest_phys_addr = vm->ram.slot[i].gpa,
			.memory_size = vm->ram.slot[i].size,
			.userspace_addr = (uintptr_t)vm->ram.slot[i].hva,
			.flags = vm->dirty_logging ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		};

		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
			return error_errno(-errno, "KVM_SET_USER_MEMORY_REGION slot %d", i);
	}
	return 0;
}

static void vm_enable_manual_dirty(struct vm *vm)
{
	struct kvm_enable_cap cap = { .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 };
	int have = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);

	/* Both bits are wanted: without INITIALLY_SET, enabling the log would write-protect all RAM at once. */
	if (have <= 0 || (have & 3) != 3)
		return;
	cap.args[0] = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET;
	vm->dirty_manual = ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) == 0;
	debug("manual dirty log protection: %s", vm->dirty_manual ? "on" : "off");
}

static void vm_debugexit(void *opaque, int status, unsigned value)
{
	vm_request_exit(opaque, status, "the guest wrote %u to the debug-exit port", value);
}

/* The UART's interrupt line: ISA IRQ 4, to the in-kernel PIC and I/O APIC (KVM's default routing). */
static void vm_uart_irq(void *opaque, int level)
{
	struct vm *vm = opaque;
	struct kvm_irq_level irq = { .irq = UART_COM1_IRQ, .level = (uint32_t)level };

	if (vm->vm_fd >= 0 && ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		warn("KVM_IRQ_LINE %u: %s", irq.irq, strerror(errno));
}

/*
 * The one function of a PC's keyboard controller a guest without a keyboard
 * uses: command 0xfe on port 0x64 pulses the reset line (Linux's default
 * reboot without ACPI).  Reads say "no controller" (0xff), as an absent
 * port would: Linux's i8042 driver then gives up at once, and its reboot
 * waits out a busy controller before it writes the command anyway.
 */
static int vm_kbd_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	if (!is_write)
		memset(data, 0xff, len);
	else if (data[0] == 0xfe)
		vm_request_exit(opaque, 0, "the guest reset the machine (keyboard controller)");
	return 0;
}

int vm_create(struct vm *vm, const struct vm_config *cfg)
{
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = vm->notify_fd = -1;
	vm->pio.name = "pio";
	vm->mmio.name = "mmio";
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	vm->state = VM_STATE_CREATED;

	if (cfg->ncpus < 1 || cfg->ncpus > VM_MAX_CPUS)
		return error(-EINVAL, "%d vCPUs: vmm supports 1 to %d", cfg->ncpus, VM_MAX_CPUS);
	vm->ncpus = cfg->ncpus;
	vm->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->notify_fd < 0)
		return error_errno(-errno, "eventfd");
	ret = cfg->ram_memfd ? ram_create_memfd(&vm->ram, cfg->ram_size) : ram_create(&vm->ram, cfg->ram_size);
	if (ret)
		return error_errno(ret, "cannot allocate %llu MiB of guest RAM%s",
				   (unsigned long long)(cfg->ram_size >> 20), cfg->ram_memfd ? " on a memfd" : "");
	ret = bitmap_init(&vm->vmm_dirty, ram_npages(&vm->ram));
	if (ret)
		return error(ret, "out of memory");
	ret = uart_create(&vm->uart, &vm->pio, cfg->serial_fd);
	uart_set_irq(&vm->uart, vm_uart_irq, vm);
	if (!ret)
		ret = iobus_register(&vm->pio, VM_KBD_PORT, 1, vm_kbd_io, vm, "kbd-reset");
	if (!ret)
		ret = debugexit_create(&vm->debugexit, &vm->pio, cfg->debugexit_qemu, vm_debugexit, vm);
	if (!ret)
		ret = fwcfg_create(&vm->fwcfg, &vm->pio, cfg->ram_size, cfg->ncpus);
	if (!ret)
		ret = rtc_create(&vm->rtc, &vm->pio, NULL);
	if (ret)
		return error_errno(ret, "cannot register the devices");
	return 0;
}

int vm_setup_kvm(struct vm *vm)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	int ret, i;

	ret = vcpu_init_signals();
	if (ret)
		return error_errno(ret, "sigaction");
	ret = vm_open_kvm(vm);
	if (ret)
		return ret;
	ret = vm_check_caps(vm);
	if (ret)
		return ret;
	do
		vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	while (vm->vm_fd < 0 && errno == EINTR);
	if (vm->vm_fd < 0)
		return error_errno(-errno, "KVM_CREATE_VM");
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size < (int)sizeof(struct kvm_run))
		return error_errno(-errno, "KVM_GET_VCPU_MMAP_SIZE");
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)VM_TSS_GPA) < 0)
		return error_errno(-errno, "KVM_SET_TSS_ADDR");
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &(uint64_t){ VM_IDENTITY_MAP_GPA }) < 0)
		return error_errno(-errno, "KVM_SET_IDENTITY_MAP_ADDR");
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return error_errno(-errno, "KVM_CREATE_IRQCHIP");
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return error_errno(-errno, "KVM_CREATE_PIT2");
	vm_enable_manual_dirty(vm);
	ret = vm_update_slots(vm);
	if (ret)
		return ret;
	ret = vm_get_cpuid(vm);
	if (ret)
		return ret;
	vm->vcpus = calloc((size_t)vm->ncpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return -ENOMEM;
	for (i = 0; i < vm->ncpus; i++)
		vm->vcpus[i].fd = -1;
	for (i = 0; i < vm->ncpus; i++) {
		ret = vcpu_create(&vm->vcpus[i], vm, i, vm->cpuid);
		if (ret)
			return ret;
	}
	return 0;
}

static void vm_notify(struct vm *vm)
{
	uint64_t one = 1;

	if (write(vm->notify_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		warn("eventfd write: %s", strerror(errno));
}

/* Kick every vCPU out of KVM_RUN, and wake any that sleeps for the throttle (@vm->lock held). */
static void vm_kick_all(struct vm *vm)
{
	int i;

	for (i = 0; i < vm->ncpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	pthread_cond_broadcast(&vm->cond);
}

#define THROTTLE_SLICE_NS	10000000ULL	/* a throttled vCPU runs this long per period (QEMU's) */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* @ns from now on CLOCK_REALTIME (vm->cond's clock), for pthread_cond_timedwait. */
static struct timespec deadline_after(uint64_t ns)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ns += (uint64_t)ts.tv_nsec;
	ts.tv_sec += (time_t)(ns / 1000000000ULL);
	ts.tv_nsec = (long)(ns % 1000000000ULL);
	return ts;
}

/* The ticker: one period (slice + sleep) after another, it marks and kicks every vCPU. */
static void *throttle_ticker(void *arg)
{
	struct vm *vm = arg;
	unsigned pct;
	int i;

	pthread_setname_np(pthread_self(), "throttle");
	pthread_mutex_lock(&vm->lock);
	while ((pct = vm->throttle_pct) > 0 && !vm->quit) {
		struct timespec ts = deadline_after(THROTTLE_SLICE_NS * 100 / (100 - pct));

		/* vm->cond is broadcast for pauses and parks too: a period ends at its time, or a change. */
		while (vm->throttle_pct == pct && !vm->quit &&
		       pthread_cond_timedwait(&vm->cond, &vm->lock, &ts) != ETIMEDOUT)
			;
		if (!vm->throttle_pct || vm->quit || vm->pause_count > 0)
			continue;
		for (i = 0; i < vm->ncpus; i++) {
			__atomic_store_n(&vm->vcpus[i].throttle_due, true, __ATOMIC_RELEASE);
			vcpu_kick(&vm->vcpus[i]);
		}
	}
	vm->throttle_ticker = false;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	return NULL;
}

int vm_throttle_set(struct vm *vm, unsigned pct)
{
	pthread_t old = 0;
	bool join = false;
	int ret = 0;

	if (pct > 99)
		pct = 99;
	pthread_mutex_lock(&vm->lock);
	vm->throttle_pct = pct;
	/* The ticker ends when the throttle does; a new one starts with the next. */
	if (!pct && vm->throttle_ticker) {
		old = vm->throttle_thread;
		join = true;
	} else if (pct && !vm->throttle_ticker) {
		ret = -pthread_create(&vm->throttle_thread, NULL, throttle_ticker, vm);
		if (ret)
			vm->throttle_pct = 0;
		else
			vm->throttle_ticker = true;
	}
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	if (join)
		pthread_join(old, NULL);
	return ret;
}

unsigned vm_throttle_get(struct vm *vm)
{
	unsigned pct;

	pthread_mutex_lock(&vm->lock);
	pct = vm->throttle_pct;
	pthread_mutex_unlock(&vm->lock);
	return pct;
}

void vm_vcpu_throttle(struct vm *vm)
{
	uint64_t end;
	unsigned pct;

	pthread_mutex_lock(&vm->lock);
	pct = vm->throttle_pct;
	end = now_ns() + (pct ? THROTTLE_SLICE_NS * pct / (100 - pct) : 0);
	while (vm->throttle_pct && !vm->pause_count && !vm->quit && now_ns() < end) {
		struct timespec ts = deadline_after(end - now_ns());

		pthread_cond_timedwait(&vm->cond, &vm->lock, &ts);
	}
	pthread_mutex_unlock(&vm->lock);
}

/* The host's CLOCK_REALTIME in ns: what the saved clock is stamped with. */
static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int vm_chips_get(struct vm *vm, struct vm_chips *chips)
{
	struct kvm_irqchip *chip[] = { &chips->pic_master, &chips->pic_slave, &chips->ioapic };
	static const uint32_t ids[] = { KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE, KVM_IRQCHIP_IOAPIC };
	struct kvm_clock_data clock = { 0 };
	int i;

	for (i = 0; i < 3; i++) {
		chip[i]->chip_id = ids[i];
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, chip[i]) < 0)
			return error_errno(-errno, "KVM_GET_IRQCHIP %u", ids[i]);
	}
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &chips->pit) < 0)
		return error_errno(-errno, "KVM_GET_PIT2");
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock) < 0)
		return error_errno(-errno, "KVM_GET_CLOCK");
	chips->clock = clock.clock;
	chips->clock_flags = clock.flags;
	chips->clock_realtime = clock.flags & KVM_CLOCK_REALTIME ? clock.realtime : realtime_ns();
	return 0;
}

/*
 * The clock to give KVM_SET_CLOCK: the saved one advanced by the wall-clock
 * time since it was read (the downtime of a migration, or the hours a
 * snapshot spent on disk), so that a guest on kvmclock (Linux) reads the
 * host's time on, not the time it was stopped at.  KVM_CLOCK_REALTIME does
 * the same in the kernel, but only on hosts whose clocksource is the TSC
 * (not TCG's); a clock that went backwards (another host's) adds nothing.
 */
uint64_t vm_clock_resumed(const struct vm_chips *chips, uint64_t now_realtime)
{
	if (!chips->clock_realtime || now_realtime <= chips->clock_realtime)
		return chips->clock;
	return chips->clock + (now_realtime - chips->clock_realtime);
}

int vm_chips_put(struct vm *vm, const struct vm_chips *chips)
{
	const struct kvm_irqchip *chip[] = { &chips->pic_master, &chips->pic_slave, &chips->ioapic };
	struct kvm_clock_data clock = { .clock = vm_clock_resumed(chips, realtime_ns()), .flags = 0 };
	int i;

	for (i = 0; i < 3; i++)
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, chip[i]) < 0)
			return error_errno(-errno, "KVM_SET_IRQCHIP %u", chip[i]->chip_id);
	if (ioctl(vm->vm_fd, KVM_SET_PIT2, &chips->pit) < 0)
		return error_errno(-errno, "KVM_SET_PIT2");
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) < 0)
		return error_errno(-errno, "KVM_SET_CLOCK");
	return 0;
}

const struct vm_saved_device vm_saved_devices[] = {
	{ &uart_state, offsetof(struct vm, uart) },
	{ &fwcfg_state, offsetof(struct vm, fwcfg) },
	{ &debugexit_state, offsetof(struct vm, debugexit) },
	{ &rtc_state, offsetof(struct vm, rtc) },
};

void vm_devices_get(struct vm *vm, uint64_t values[][DEVICE_STATE_MAX_FIELDS])
{
	int i;

	for (i = 0; i < VM_NSAVED_DEVICES; i++)
		device_state_get(vm_saved_devices[i].state, (uint8_t *)vm + vm_saved_devices[i].offset,
				 values[i]);
}

void vm_devices_put(struct vm *vm, const uint64_t values[][DEVICE_STATE_MAX_FIELDS])
{
	int i;

	for (i = 0; i < VM_NSAVED_DEVICES; i++)
		device_state_put(vm_saved_devices[i].state, (uint8_t *)vm + vm_saved_devices[i].offset,
				 values[i]);
	/* After the chips: the UART's line into the just-loaded PIC and I/O APIC follows its registers. */
	uart_update_irq(&vm->uart);
}

/*
 * Tell a guest that uses KVM's paravirtual clock that it was stopped (the
 * PVCLOCK_GUEST_STOPPED flag), so that its soft-lockup and RCU-stall
 * watchdogs do not count a pause, a migration's downtime or a postcopy
 * page wait as a hang.  As QEMU, on every start and resume; a guest without
 * kvmclock (the test guest) gets EINVAL, which means nothing.
 */
static void vm_kvmclock_ctrl(struct vm *vm)
{
	int i;

	for (i = 0; vm->vcpus && i < vm->ncpus; i++)
		if (vm->vcpus[i].fd >= 0 && ioctl(vm->vcpus[i].fd, KVM_KVMCLOCK_CTRL, 0) < 0 && errno != EINVAL)
			debug("KVM_KVMCLOCK_CTRL on vCPU %d: %s", i, strerror(errno));
}

int vm_start(struct vm *vm)
{
	int i, ret;

	vm_kvmclock_ctrl(vm);
	pthread_mutex_lock(&vm->lock);
	vm->state = VM_STATE_RUNNING;
	pthread_mutex_unlock(&vm->lock);
	for (i = 0; i < vm->ncpus; i++) {
		ret = vcpu_start(&vm->vcpus[i]);
		if (ret) {
			vm_fail(vm, "cannot start the vCPU threads");
			return ret;
		}
		pthread_mutex_lock(&vm->lock);
		vm->nthreads++;
		pthread_mutex_unlock(&vm->lock);
	}
	return 0;
}

bool vm_vcpu_should_park(struct vm *vm)
{
	return __atomic_load_n(&vm->pause_count, __ATOMIC_ACQUIRE) > 0 ||
	       __atomic_load_n(&vm->quit, __ATOMIC_ACQUIRE);
}

bool vm_vcpu_park(struct vm *vm, struct vcpu *vcpu)
{
	bool keep_running;

	if (!__atomic_load_n(&vm->quit, __ATOMIC_ACQUIRE))
		vcpu_complete_io(vcpu);
	uart_flush(&vm->uart);
	pthread_mutex_lock(&vm->lock);
	vm->nparked++;
	pthread_cond_broadcast(&vm->cond);
	while (vm->pause_count > 0 && !vm->quit)
		pthread_cond_wait(&vm->cond, &vm->lock);
	vm->nparked--;
	keep_running = !vm->quit;
	if (!keep_running)
		vm->nexited++;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	return keep_running;
}

static void vm_wait_parked_locked(struct vm *vm)
{
	while (vm->nparked + vm->nexited < vm->nthreads)
		pthread_cond_wait(&vm->cond, &vm->lock);
}

void vm_pause(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	if (__atomic_add_fetch(&vm->pause_count, 1, __ATOMIC_ACQ_REL) == 1)
		vm_kick_all(vm);
	vm_wait_parked_locked(vm);
	pthread_mutex_unlock(&vm->lock);
}

int vm_pause_timed(struct vm *vm, int ms)
{
	struct timespec ts;
	int ret = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&vm->lock);
	if (__atomic_add_fetch(&vm->pause_count, 1, __ATOMIC_ACQ_REL) == 1)
		vm_kick_all(vm);
	while (vm->nparked + vm->nexited < vm->nthreads && !ret)
		ret = pthread_cond_timedwait(&vm->cond, &vm->lock, &ts);
	if (ret && vm->nparked + vm->nexited < vm->nthreads) {
		/* A vCPU did not come out (blocked on a page that does not come?): undo. */
		if (__atomic_sub_fetch(&vm->pause_count, 1, __ATOMIC_ACQ_REL) == 0)
			pthread_cond_broadcast(&vm->cond);
		ret = -ETIMEDOUT;
	} else {
		ret = 0;
	}
	pthread_mutex_unlock(&vm->lock);
	return ret;
}

void vm_pause_why(struct vm *vm, const char *why)
{
	vm_pause(vm);
	pthread_mutex_lock(&vm->lock);
	if (!vm->user_paused)
		snprintf(vm->pause_reason, sizeof(vm->pause_reason), "%s", why);
	pthread_mutex_unlock(&vm->lock);
}

void vm_pause_nowait(struct vm *vm, const char *why)
{
	pthread_mutex_lock(&vm->lock);
	if (__atomic_add_fetch(&vm->pause_count, 1, __ATOMIC_ACQ_REL) == 1)
		vm_kick_all(vm);
	if (!vm->user_paused)
		snprintf(vm->pause_reason, sizeof(vm->pause_reason), "%s", why);
	pthread_mutex_unlock(&vm->lock);
}

void vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->pause_count > 0 && __atomic_sub_fetch(&vm->pause_count, 1, __ATOMIC_ACQ_REL) == 0) {
		if (!vm->user_paused)
			vm->pause_reason[0] = '\0';
		/* Only when every vCPU is parked: one still in KVM_RUN (waiting for a postcopy page) holds its mutex. */
		if (vm->nparked == vm->nthreads)
			vm_kvmclock_ctrl(vm);
		pthread_cond_broadcast(&vm->cond);
	}
	pthread_mutex_unlock(&vm->lock);
}

int vm_user_stop(struct vm *vm)
{
	bool pause;
	int ret;

	pthread_mutex_lock(&vm->lock);
	pause = !vm->user_paused && vm->state == VM_STATE_RUNNING;
	pthread_mutex_unlock(&vm->lock);
	if (!pause)
		return 0;
	ret = vm_pause_timed(vm, VM_PAUSE_TIMEOUT_MS);
	if (ret)
		return ret;
	pthread_mutex_lock(&vm->lock);
	vm->user_paused = true;
	vm->state = VM_STATE_PAUSED;
	snprintf(vm->pause_reason, sizeof(vm->pause_reason), "stopped");
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

void vm_user_cont(struct vm *vm)
{
	bool resume;

	pthread_mutex_lock(&vm->lock);
	resume = vm->user_paused && vm->state == VM_STATE_PAUSED;
	if (resume) {
		vm->user_paused = false;
		vm->state = VM_STATE_RUNNING;
		vm->pause_reason[0] = '\0';
	}
	pthread_mutex_unlock(&vm->lock);
	if (resume)
		vm_resume(vm);
}

void vm_refuse_cont(struct vm *vm, const char *why)
{
	pthread_mutex_lock(&vm->lock);
	snprintf(vm->cont_refused, sizeof(vm->cont_refused), "%s", why ? why : "");
	pthread_mutex_unlock(&vm->lock);
}

bool vm_cont_refused(struct vm *vm, char *buf, size_t len)
{
	bool refused;

	pthread_mutex_lock(&vm->lock);
	refused = vm->cont_refused[0] != '\0';
	snprintf(buf, len, "%s", vm->cont_refused);
	pthread_mutex_unlock(&vm->lock);
	return refused;
}

void vm_hold_paused(struct vm *vm, const char *why)
{
	bool drop;

	pthread_mutex_lock(&vm->lock);
	snprintf(vm->pause_reason, sizeof(vm->pause_reason), "%s", why);
	drop = vm->user_paused || vm->state != VM_STATE_RUNNING;
	if (!drop) {
		vm->user_paused = true;
		vm->state = VM_STATE_PAUSED;
	}
	pthread_mutex_unlock(&vm->lock);
	/* Already paused by the user (or ended): our own pause is not needed. */
	if (drop)
		vm_resume(vm);
}

/* Park everything for good in @state; the first stop wins, later ones are ignored. */
static void vm_stop_for(struct vm *vm, enum vm_state state, int status, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

static void vm_stop_for(struct vm *vm, enum vm_state state, int status, const char *fmt, va_list ap)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->state == VM_STATE_SHUTDOWN || vm->state == VM_STATE_ERROR) {
		pthread_mutex_unlock(&vm->lock);
		return;
	}
	vm->state = state;
	vm->exit_status = status;
	vsnprintf(vm->reason, sizeof(vm->reason), fmt, ap);
	__atomic_add_fetch(&vm->pause_count, 1, __ATOMIC_ACQ_REL);
	vm_kick_all(vm);
	pthread_mutex_unlock(&vm->lock);
	vm_notify(vm);
}

void vm_request_exit(struct vm *vm, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vm_stop_for(vm, VM_STATE_SHUTDOWN, status, fmt, ap);
	va_end(ap);
}

void vm_fail(struct vm *vm, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vm_stop_for(vm, VM_STATE_ERROR, VM_STATUS_ERROR, fmt, ap);
	va_end(ap);
}

enum vm_state vm_get_state(struct vm *vm, int *exit_status, char *reason, size_t len)
{
	enum vm_state s;

	pthread_mutex_lock(&vm->lock);
	s = vm->state;
	/* A long pause with a reason (a migration finishing) shows as paused. */
	if (s == VM_STATE_RUNNING && vm->pause_count > 0 && vm->pause_reason[0])
		s = VM_STATE_PAUSED;
	if (exit_status)
		*exit_status = vm->exit_status;
	if (reason && len)
		snprintf(reason, len, "%s", s == VM_STATE_PAUSED ? vm->pause_reason : vm->reason);
	pthread_mutex_unlock(&vm->lock);
	return s;
}

const char *vm_state_name(enum vm_state state)
{
	switch (state) {
	case VM_STATE_CREATED: return "prelaunch";
	case VM_STATE_RUNNING: return "running";
	case VM_STATE_PAUSED: return "paused";
	case VM_STATE_SHUTDOWN: return "shutdown";
	case VM_STATE_ERROR: return "internal-error";
	}
	return "unknown";
}

void vm_mark_dirty(struct vm *vm, gpa_t gpa, uint64_t len)
{
	uint64_t first, last;

	if (!len || !vm->vmm_dirty.words)
		return;
	first = ram_gpa_to_index(&vm->ram, gpa);
	last = ram_gpa_to_index(&vm->ram, gpa + len - 1);
	if (first == UINT64_MAX || last == UINT64_MAX)
		return;
	for (; first <= last; first++)
		bitmap_set_atomic(&vm->vmm_dirty, first);
}

void vm_describe_cpu(struct vm *vm, int i, struct strbuf *sb)
{
	struct vcpu *v = &vm->vcpus[i];
	struct kvm_regs r;

	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0) {
		strbuf_printf(sb, "* CPU #%d: cannot read registers: %s\n", i, strerror(errno));
		return;
	}
	strbuf_printf(sb, "%c CPU #%d: rip=0x%016llx state=%s thread=%s exits=%llu io=%llu mmio=%llu\n",
		      i == 0 ? '*' : ' ', i, (unsigned long long)r.rip, vcpu_mp_state_name(v),
		      v->thread_started ? "yes" : "no", (unsigned long long)v->nr_exits,
		      (unsigned long long)v->nr_io, (unsigned long long)v->nr_mmio);
}

void vm_describe_running_cpus(struct vm *vm, struct strbuf *sb)
{
	bool missing = __atomic_load_n(&vm->ram_incomplete, __ATOMIC_ACQUIRE);
	struct timespec ts;
	uint64_t now;
	int i;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	for (i = 0; i < vm->ncpus; i++) {
		uint64_t since = __atomic_load_n(&vm->vcpus[i].run_since_ns, __ATOMIC_RELAXED);
		uint64_t ms = since && now > since ? (now - since) / 1000000 : 0;

		if (!since)
			strbuf_printf(sb, "%c CPU #%d: not in KVM_RUN (parked or handling an exit)\n", i ? ' ' : '*', i);
		else
			strbuf_printf(sb, "%c CPU #%d: in KVM_RUN for %llu ms without an exit%s\n", i ? ' ' : '*', i,
				      (unsigned long long)ms,
				      missing && ms >= 1000 ? ": waiting for a missing page (postcopy)" : "");
	}
}

void vm_destroy(struct vm *vm)
{
	int i;

	vm_throttle_set(vm, 0);
	pthread_mutex_lock(&vm->lock);
	__atomic_store_n(&vm->quit, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&vm->cond);
	if (vm->vcpus)
		vm_kick_all(vm);
	pthread_mutex_unlock(&vm->lock);
	if (vm->vcpus) {
		for (i = 0; i < vm->ncpus; i++)
			vcpu_destroy(&vm->vcpus[i]);
		free(vm->vcpus);
		vm->vcpus = NULL;
	}
	if (vm->pio.ranges) {
		uart_destroy(&vm->uart);
		rtc_destroy(&vm->rtc);
	}
	iobus_destroy(&vm->pio);
	iobus_destroy(&vm->mmio);
	free(vm->cpuid);
	vm->cpuid = NULL;
	ram_destroy(&vm->ram);
	bitmap_destroy(&vm->vmm_dirty);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->notify_fd >= 0)
		close(vm->notify_fd);
	vm->vm_fd = vm->kvm_fd = vm->notify_fd = -1;
}
