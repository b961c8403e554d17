/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Dirty page tracking: KVM's dirty log for what the guest writes, plus the
 * pages the VMM itself writes (vm_mark_dirty), merged into one page bitmap
 * indexed like guest RAM (see ram.h).
 *
 * Where the kernel has it, the manual-protect interface is used
 * (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, initially all set): fetching the log
 * does not re-protect pages; dirty_sync() clears exactly the pages it
 * returns, before the caller reads them, so a write that lands after the
 * clear is logged again.  Otherwise KVM_GET_DIRTY_LOG does both at once.
 */
#ifndef VMM_DIRTY_H
#define VMM_DIRTY_H

#include "vmm/bitmap.h"

struct vm;

/* Start logging on every RAM slot; the first dirty_sync() then returns every page. */
int dirty_start(struct vm *vm);

/*
 * OR the pages dirtied since the last sync into @out (ram_npages bits) and
 * re-arm logging for them; returns how many pages were newly set in @out,
 * or -errno.
 */
int64_t dirty_sync(struct vm *vm, struct bitmap *out);

/* Stop logging; safe when it was not started. */
void dirty_stop(struct vm *vm);

#endif
