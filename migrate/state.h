/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The machine state: everything besides RAM that a paused guest needs to
 * continue elsewhere (every vCPU's registers, FPU/xsave, MSRs, local APIC
 * and pending events, the in-kernel PIC, IOAPIC, PIT and KVM clock, and
 * the port devices), carried as a flattened device tree so that a saved
 * state reads with `dtc -I dtb -O dts` and a damaged one is refused by
 * a header check of its own (before libfdt reads a byte), fdt_check_full()
 * and exact size checks before anything is used.
 *
 * Two halves: state_save() and state_load() move the state between KVM
 * and a blob (through vcpu_state.h, vm_chips_get/put and vm_devices_get/put
 * of vm.h); state_encode() and state_decode() convert between the blob and
 * a plain struct machine_state, and need no KVM (unit tests use them).
 * The layout of the tree is docs/design.md's "The machine state".
 */
#ifndef MIGRATE_STATE_H
#define MIGRATE_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/vcpu_state.h"
#include "vmm/vm.h"

#define STATE_VERSION		4	/* 2: the UART's interrupt and receive FIFO; 3: clock-realtime; 4: the RTC */

/* Everything besides RAM, as plain data that the codec reads and writes without KVM. */
struct machine_state {
	int ncpus;
	uint32_t xsave_size;		/* bytes per vCPU; 0: legacy fpu instead */
	struct cpu_state *cpus;		/* ncpus entries, by vCPU id */
	struct vm_chips chips;		/* PIC, IOAPIC, PIT, KVM clock */
	/* devices[i]: the fields of vm_saved_devices[i], in its table's order */
	uint64_t devices[VM_NSAVED_DEVICES][DEVICE_STATE_MAX_FIELDS];
};

/* Encode the state of the paused @vm (every vCPU, the in-kernel PIC/IOAPIC, PIT and KVM clock, the devices of vm_saved_devices) as an FDT; *blob is malloc'd. 0 or -errno after one error line. */
int state_save(struct vm *vm, void **blob, size_t *len);

/* Validate @blob completely (its FDT header as vmm writes it, fdt_check_full, vCPU count equals vm->ncpus, every property present with its exact size), then load it into @vm, whose vCPU threads are not running. Nothing is applied unless the whole blob is valid. 0 or -errno after one error line saying what is wrong. */
int state_load(struct vm *vm, const void *blob, size_t len);

/* Zero @ms and allocate @ncpus zeroed vCPUs with @xsave_size-byte xsave areas (0: none); 0 or -ENOMEM. */
int machine_state_init(struct machine_state *ms, int ncpus, uint32_t xsave_size);

/* Free everything @ms points to (every pointer in it is malloc'd); safe on a zeroed or half-built one. */
void machine_state_free(struct machine_state *ms);

/* Encode @ms as an FDT in a malloc'd *blob of *len bytes; 0 or -errno after one error line. */
int state_encode(const struct machine_state *ms, void **blob, size_t *len);

/*
 * Validate @blob as the state of @ncpus vCPUs whose xsave areas are
 * @xsave_size bytes (0: legacy fpu) and decode it into @ms (initialised
 * here; machine_state_free() it).  @blob may come from a hostile peer: its
 * FDT header is checked before any libfdt call reads it.  0, or -EINVAL
 * after one error line.
 */
int state_decode(const void *blob, size_t len, int ncpus, uint32_t xsave_size,
		 struct machine_state *ms);

#endif
