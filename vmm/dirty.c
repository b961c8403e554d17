// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Dirty page tracking (see dirty.h).  KVM's logs are per slot and indexed
 * from the slot's first page; slots start at multiples of 64 pages in the
 * RAM mapping, so each log ORs word by word into the RAM-wide bitmap.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/dirty.h"
#include "vmm/log.h"
#include "vmm/vm.h"

int dirty_start(struct vm *vm)
{
	int ret;

	if (vm->dirty_logging)
		return 0;
	vm->dirty_logging = true;
	ret = vm_update_slots(vm);
	if (ret) {
		vm->dirty_logging = false;
		vm_update_slots(vm);
	}
	return ret;
}

void dirty_stop(struct vm *vm)
{
	if (!vm->dirty_logging)
		return;
	vm->dirty_logging = false;
	vm_update_slots(vm);
}

int64_t dirty_sync(struct vm *vm, struct bitmap *out)
{
	struct bitmap vmm;
	int64_t added = 0;
	int s;

	for (s = 0; s < vm->ram.nslots; s++) {
		const struct ram_slot *slot = &vm->ram.slot[s];
		uint64_t npages = slot->size >> PAGE_SHIFT, nwords = (npages + 63) / 64, w;
		uint64_t first = slot->offset >> PAGE_SHIFT;
		uint64_t *log = calloc(nwords, sizeof(uint64_t));
		struct kvm_dirty_log dl = { .slot = (uint32_t)s, .dirty_bitmap = log };

		if (!log)
			return -ENOMEM;
		if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &dl) < 0) {
			free(log);
			return error_errno(-errno, "KVM_GET_DIRTY_LOG slot %d", s);
		}
		if (vm->dirty_manual) {
			struct kvm_clear_dirty_log cl = {
				.slot = (uint32_t)s, .first_page = 0, .num_pages = (uint32_t)npages,
				.dirty_bitmap = log,
			};

			/* Re-protect exactly what we are about to send, before it is read. */
			if (ioctl(vm->vm_fd, KVM_CLEAR_DIRTY_LOG, &cl) < 0) {
				free(log);
				return error_errno(-errno, "KVM_CLEAR_DIRTY_LOG slot %d", s);
			}
		}
		for (w = 0; w < nwords; w++)
			added += __builtin_popcountll(log[w] & ~out->words[first / 64 + w]);
		bitmap_or_words(out, first, log, npages);
		free(log);
	}
	/* The VMM's own writes: take them atomically, a poke may be under way. */
	if (bitmap_init(&vmm, out->nbits))
		return -ENOMEM;
	bitmap_move_atomic(&vmm, &vm->vmm_dirty);
	added += (int64_t)bitmap_or(out, &vmm);
	bitmap_destroy(&vmm);
	return added;
}
