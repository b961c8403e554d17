/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Postcopy, both sides (postcopy.c, docs/design.md).  Source: the switch
 * (stop, the discard list, the state), then the return-path thread that
 * answers page requests on the urgent channel at once, and the push of the
 * rest from where the guest last asked.  Destination: the switch (drop the
 * discarded pages, register RAM with userfaultfd, load the state, fork the
 * fault server) and the wait for it to finish.  The pure parts (the discard
 * list, the push scheduler) are exported for the unit tests.
 */
#ifndef MIGRATE_POSTCOPY_H
#define MIGRATE_POSTCOPY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/bitmap.h"

struct outgoing;
struct incoming;
struct faultsrv;

/*
 * Source: stop the vCPUs, send the discard list, the digests (verify) and
 * the state, and wait for the destination to run.  On return @unsent holds
 * every page the destination lacks; *@stop_ns is when the vCPUs stopped.
 */
int postcopy_switch(struct outgoing *o, struct bitmap *unsent, uint64_t *stop_ns);

/*
 * Source, after the switch: requests first, the rest pushed, until
 * END_OF_COPY; 0 or -errno.  A broken connection (or migrate_pause) pauses
 * instead of failing: @unsent is kept, and migrate_resume recovers (the
 * destination's RECV_BITMAP makes @unsent exact), as many times as needed.
 * @broke non-zero: the switch itself broke after the state left (the
 * destination may run the guest): start paused, with that -errno.
 */
int postcopy_run(struct outgoing *o, struct bitmap *unsent, int broke);

/*
 * Destination: take over at POSTCOPY_RUN: RAM registered, state loaded, the
 * fault server's shared state made, ACK(RUNNING) sent; 0 or -errno.  The
 * caller then starts the vCPUs, then postcopy_incoming_spawn().
 */
int postcopy_incoming_start(struct incoming *in, struct faultsrv *fs);

/* Destination, the vCPUs running: fork the fault server, hand it the channels; 0 or -errno. */
int postcopy_incoming_spawn(struct incoming *in, struct faultsrv *fs);

/*
 * Destination: wait for the fault server (DONE ends postcopy); 0 or -errno
 * with in->err.  A broken connection (or migrate_pause) pauses: migrate_recover
 * takes the source's resumed connections, and a new server goes on.  A dead
 * server is started again by itself (listening on the incoming URI for the
 * source, which tries it again), up to 3 times in 60 s; then it pauses.
 */
int postcopy_incoming_wait(struct incoming *in, struct faultsrv *fs);

/*
 * Source, the return path: check the PAGE_REQUEST payload @payload (@len
 * bytes, of a size stream_rec_len_ok() allows): count 1..256 and the length
 * it implies.  The indexes inside RAM (@npages) go to @list (room for 256),
 * the others are dropped; returns how many, or -EPROTO if malformed.
 */
int postcopy_take_request(const void *payload, uint32_t len, uint64_t npages, uint64_t *list);

/*
 * Source, recovery: check the RECV_BITMAP payload @payload (@len bytes, of
 * a size stream_rec_len_ok() allows) against @received's size (its nbits,
 * the source's RAM pages): the page count, the length it implies, no bit
 * past the last page.  0 with the bitmap copied into @received, or -EPROTO
 * (@received's words then hold nothing meaningful).
 */
int postcopy_take_recv_bitmap(const void *payload, uint32_t len, struct bitmap *received);

typedef int postcopy_range_fn(void *opaque, uint64_t first, uint64_t npages);

/*
 * The discard list: every run of pages set in both @sent (the destination
 * has them from precopy) and @dirty (written since), in order, to @fn; stops
 * at @fn's first non-zero return and returns it.
 */
int postcopy_discard_ranges(const struct bitmap *sent, const struct bitmap *dirty, postcopy_range_fn *fn,
			    void *opaque);

/*
 * The neighbours of requested pages: for each of the @nreq pages in @reqs,
 * the pages within @window on either side still in @unsent, taken out of it
 * and added to @list (at most @max); returns how many.
 */
uint32_t postcopy_push_neighbours(struct bitmap *unsent, const uint64_t *reqs, uint32_t nreq, uint64_t window,
				  uint64_t *list, uint32_t max);

typedef bool postcopy_zero_fn(void *opaque, uint64_t page);

/*
 * One background batch: pages still in @unsent from *@cursor on (wrapping
 * to 0), taken out of it, until @max_data data pages or @max_zero zero ones
 * (@is_zero tells which) or none is left.  Data pages go to @list, zero
 * ones to @zero_list; *@cursor moves past the last page taken.  Returns the
 * number of data pages; *@nzero the zero ones.  @lock (NULL: none) guards
 * @unsent, taken a page at a time so that the urgent sender never waits long.
 */
uint32_t postcopy_push_batch(struct bitmap *unsent, pthread_mutex_t *lock, uint64_t *cursor,
			     postcopy_zero_fn *is_zero, void *opaque,
			     uint64_t *list, uint32_t max_data, uint64_t *zero_list, uint32_t max_zero,
			     uint32_t *nzero);

#endif
