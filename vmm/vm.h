/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The virtual machine: the KVM VM, its RAM, its devices and its vCPU
 * threads, and the one mechanism everything else uses to get the vCPUs out
 * of the guest: parking.
 *
 * vm_pause() asks every vCPU thread to park and returns once all of them
 * are parked outside KVM_RUN, with their state consistent (an I/O exit has
 * been completed by re-entering KVM_RUN with immediate_exit); the caller may
 * then read or write vCPU and VM state from its own thread.  Pauses nest:
 * vm_resume() undoes one vm_pause().  The monitor's stop/cont, register
 * dumps and, later, migration all use this.
 */
#ifndef VMM_VM_H
#define VMM_VM_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm.h>

#include "vmm/bitmap.h"
#include "vmm/debugexit.h"
#include "vmm/device_state.h"
#include "vmm/fwcfg.h"
#include "vmm/iobus.h"
#include "vmm/ram.h"
#include "vmm/rtc.h"
#include "vmm/uart.h"

#define VM_MAX_CPUS	64
#define VM_KBD_PORT	0x64	/* the keyboard controller's command port: 0xfe resets */
/*
 * vmm's own exit statuses.  All are even, so that with --debug-exit=qemu,
 * where every guest status is odd ((V << 1) | 1), none can be read as a
 * guest's verdict; all sit below timeout(1)'s 124, the shell's 126/127 and
 * 128+N, and clear of the small values guests usually write and of the test
 * guest's 0x7b-0x7e.  (With --debug-exit=native the guest owns all of
 * 0-255: a guest that writes one of these is ambiguous, as the README says.)
 */
#define VM_STATUS_USAGE		2	/* bad command line, as getopt tools */
#define VM_STATUS_SETUP		116	/* the VM could not be set up (image, KVM, RAM, files) */
#define VM_STATUS_INCOMING	118	/* the incoming migration failed or was cancelled: nothing ran here */
#define VM_STATUS_ERROR		120	/* the VM stopped on an unexpected exit or a KVM failure */

struct vcpu;
struct strbuf;

enum vm_state {
	VM_STATE_CREATED,	/* built, vCPU threads not started */
	VM_STATE_RUNNING,
	VM_STATE_PAUSED,	/* by `stop` (or, later, a migration) */
	VM_STATE_SHUTDOWN,	/* the guest ended (debug-exit, shutdown) */
	VM_STATE_ERROR,		/* an unexpected exit or a KVM failure */
};

struct vm_config {
	uint64_t ram_size;
	int ncpus;
	bool debugexit_qemu;	/* exit status (V << 1) | 1 */
	int serial_fd;		/* guest console output; -1 discards */
	bool ram_memfd;		/* guest RAM on a memfd (ram_create_memfd) */
};

struct vm {
	int kvm_fd, vm_fd;
	int run_size;			/* size of each vCPU's kvm_run mapping */
	struct ram ram;
	struct iobus pio, mmio;
	struct uart uart;
	struct debugexit debugexit;
	struct fwcfg fwcfg;
	struct rtc rtc;
	struct kvm_cpuid2 *cpuid;	/* what KVM supports, patched per vCPU */
	int ncpus;
	struct vcpu *vcpus;
	bool dirty_manual;		/* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 is on */
	bool dirty_logging;
	struct bitmap vmm_dirty;	/* pages the VMM wrote (atomic bits) */
	bool ram_incomplete;		/* postcopy: a missing page blocks whoever reads it */

	pthread_mutex_t lock;		/* protects everything below */
	pthread_cond_t cond;
	int pause_count;		/* > 0: vCPUs must park */
	bool user_paused;		/* `stop` is in force */
	bool quit;			/* vCPU threads must end */
	int nparked, nexited, nthreads;
	enum vm_state state;
	int exit_status;
	char reason[256];		/* why the VM stopped, for `info status` */
	char pause_reason[64];		/* why it is paused ("stopped", "migrated") */
	char cont_refused[320];		/* vm_refuse_cont(): why `cont` must not run it; "" allowed */
	int notify_fd;			/* eventfd, readable when the state changed */
	/* Throttle (vm_throttle_set()): under @lock; the ticker is a thread of its own. */
	unsigned throttle_pct;
	bool throttle_ticker;		/* the ticker thread runs */
	pthread_t throttle_thread;
};

/* Create RAM and devices, no KVM yet (so images can be loaded and checked anywhere); 0 or -errno. */
int vm_create(struct vm *vm, const struct vm_config *cfg);

/* Open KVM, create the VM, its memory slots and the vCPUs (threads not started); 0 or -errno. */
int vm_setup_kvm(struct vm *vm);

/* The VM-level in-kernel state a migration carries, besides vCPUs, devices and RAM. */
struct vm_chips {
	struct kvm_irqchip pic_master, pic_slave, ioapic;
	struct kvm_pit_state2 pit;
	uint64_t clock;			/* KVM_GET_CLOCK, ns */
	uint32_t clock_flags;		/* as KVM_GET_CLOCK gave them */
	uint64_t clock_realtime;	/* the host's CLOCK_REALTIME, ns, when @clock was read */
};

/* Read the in-kernel PIC, IOAPIC, PIT and KVM clock of the paused @vm; 0 or -errno after one error line. */
int vm_chips_get(struct vm *vm, struct vm_chips *chips);

/*
 * Write @chips into @vm, before any vCPU's state; the clock is
 * vm_clock_resumed() of the saved one.  0 or -errno after one error line.
 */
int vm_chips_put(struct vm *vm, const struct vm_chips *chips);

/*
 * The saved clock advanced by the host's wall-clock time since it was read
 * (@now_realtime, CLOCK_REALTIME ns; never backwards): a guest's kvmclock
 * keeps the host's time across a migration's downtime or a snapshot's time
 * on disk.
 */
uint64_t vm_clock_resumed(const struct vm_chips *chips, uint64_t now_realtime);

/* A device whose registers a migration carries, and where it sits in struct vm. */
struct vm_saved_device {
	const struct device_state *state;
	size_t offset;
};

#define VM_NSAVED_DEVICES	4

/* Those devices, in the order of the saved state's /devices node: adding a device to migration is one entry here (and the count above). */
extern const struct vm_saved_device vm_saved_devices[VM_NSAVED_DEVICES];

/* Copy the saved fields of every device of @vm into values[i] (device i above), each under its lock. */
void vm_devices_get(struct vm *vm, uint64_t values[][DEVICE_STATE_MAX_FIELDS]);

/* Write values[i] (each within its field's max, as state_decode() checks) into device i of @vm, each under its lock. */
void vm_devices_put(struct vm *vm, const uint64_t values[][DEVICE_STATE_MAX_FIELDS]);

/* Start one thread per vCPU; the VM is then running. */
int vm_start(struct vm *vm);

#define VM_PAUSE_TIMEOUT_MS 3000	/* the monitor's patience with a vCPU that does not park */

/* Park all vCPUs (nested); returns when they are all out of KVM_RUN. */
void vm_pause(struct vm *vm);

/*
 * vm_pause(), but give up after @ms if a vCPU does not park (one blocked on
 * a postcopy page that is not coming): 0, or -ETIMEDOUT with nothing paused.
 */
int vm_pause_timed(struct vm *vm, int ms);

/* vm_pause(), and `info status` says "paused (@why)" until the matching vm_resume(). */
void vm_pause_why(struct vm *vm, const char *why);

/*
 * Ask the vCPUs to park without waiting for them (a vCPU blocked on a page
 * that will never come would never answer); `info status` says "paused (@why)".
 */
void vm_pause_nowait(struct vm *vm, const char *why);

/*
 * Throttle the vCPUs (migration's auto-converge): with @pct in 1..99 each
 * vCPU runs about 10 ms, then sleeps pct / (100 - pct) x 10 ms, as QEMU's
 * cpu-throttle does; 0 lets them run freely again.  A thread of the VM's
 * kicks every vCPU out of KVM_RUN once per period; a pause or the end
 * wakes a sleeping vCPU at once.  @pct above 99 is taken as 99.  0 or
 * -errno (the ticker thread could not start).
 */
int vm_throttle_set(struct vm *vm, unsigned pct);

/* The throttle in force, percent (0: none). */
unsigned vm_throttle_get(struct vm *vm);

/* For vcpu.c, after a kick: sleep out the throttle's share of this period, unless a pause comes. */
void vm_vcpu_throttle(struct vm *vm);

/* Undo one vm_pause(). */
void vm_resume(struct vm *vm);

/* The monitor's stop and cont: a user pause that does not nest; stop can time out (-ETIMEDOUT). */
int vm_user_stop(struct vm *vm);
void vm_user_cont(struct vm *vm);

/*
 * The split-brain guard: while @why is set (NULL clears it), `cont` is
 * refused with it: the guest runs, or may run, elsewhere (a postcopy
 * source after the switch).
 */
void vm_refuse_cont(struct vm *vm, const char *why);

/* Copy the refusal into @buf (@len bytes); false if cont is allowed. */
bool vm_cont_refused(struct vm *vm, char *buf, size_t len);

/* Turn one vm_pause() into a user pause (as `stop`), with @why shown by `info status`. */
void vm_hold_paused(struct vm *vm, const char *why);

/* From any thread: the guest is done, vmm should exit with @status. */
void vm_request_exit(struct vm *vm, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* From any thread: stop the VM in the error state with @fmt as the reason. */
void vm_fail(struct vm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The state and, for SHUTDOWN and ERROR, the reason and exit status. */
enum vm_state vm_get_state(struct vm *vm, int *exit_status, char *reason, size_t len);
const char *vm_state_name(enum vm_state state);

/* Called by a vCPU thread: park now if asked to; returns false when the thread must end. */
bool vm_vcpu_park(struct vm *vm, struct vcpu *vcpu);

/* True when vCPU threads are asked to park or end (lock-free, for the run loop). */
bool vm_vcpu_should_park(struct vm *vm);

/* (Re-)register the RAM slots with KVM, with dirty logging if vm->dirty_logging; 0 or -errno. */
int vm_update_slots(struct vm *vm);

/* Record that the VMM wrote [gpa, gpa+len) of guest RAM, for migration. */
void vm_mark_dirty(struct vm *vm, gpa_t gpa, uint64_t len);

/* Describe vCPU @i (id, state, RIP) in @sb; the VM must be paused. */
void vm_describe_cpu(struct vm *vm, int i, struct strbuf *sb);

/*
 * For a VM that cannot be paused (a vCPU did not park): one line per vCPU,
 * how long it has been in KVM_RUN without an exit; with postcopy pages
 * missing, one in there for over a second waits for one of them.
 */
void vm_describe_running_cpus(struct vm *vm, struct strbuf *sb);

/* Stop and join the vCPU threads, free everything; safe on a half-built VM. */
void vm_destroy(struct vm *vm);

#endif
