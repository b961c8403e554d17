// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Postcopy, both sides (see postcopy.h and docs/design.md).
 *
 * Source.  The switch stops the vCPUs and sends the discard list (pages
 * sent in precopy and dirtied since: the destination drops them so that
 * they fault), the digests (verify), the state and POSTCOPY_RUN.  From
 * ACK(RUNNING) on the guest runs on the destination and two threads serve
 * it.  The return-path thread reads each PAGE_REQUEST and sends the pages
 * at once on the urgent channel, itself: no hand-over, no queue behind the
 * push.  The migration thread pushes on the main channel, niced below it:
 * the neighbours of each requested page, then one background batch from
 * where the guest last asked, and loops.  The pages still to send are one
 * bitmap (@unsent) under one lock, so each page is sent once, except a
 * requested page already pushed: the destination asked, so its copy is
 * still on the way, and it is sent again (the source's RAM no longer
 * changes; the destination drops the second copy).
 *
 * Destination.  At POSTCOPY_RUN: verify what is here (verify on), drop
 * every page not received (a huge page around a received one, a zero page
 * mapped by a read), register guest RAM with userfaultfd, load the state,
 * acknowledge, fork the fault server (faultsrv.c) with the channels, and
 * start the vCPUs; then wait for the server's DONE.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "migrate/channel.h"
#include "migrate/faultsrv.h"
#include "migrate/incoming.h"
#include "migrate/migration.h"
#include "migrate/multifd.h"
#include "migrate/outgoing.h"
#include "migrate/postcopy.h"
#include "migrate/state.h"
#include "migrate/stream.h"
#include "migrate/uffd.h"
#include "migrate/uri.h"
#include "vmm/dirty.h"
#include "vmm/log.h"
#include "vmm/vcpu.h"
#include "vmm/vcpu_state.h"
#include "vmm/vm.h"

#define PUSH_BATCH	64		/* data pages in one background record */
#define ZERO_BATCH	4096		/* zero pages (as ranges) with them, at most */
#define PUSH_NICE	10		/* the pushing thread's niceness after the switch */
#define REQUEST_RING	4096		/* requested pages whose neighbours are still to push */
#define DISCARD_BATCH	255		/* ranges in one DISCARD record */
#define AUTO_RESUME_MS	200		/* between the source's own tries to resume */
#define READER_GRACE_MS	1000		/* for the return path to read an ERROR that came before a close */
#define FAULTSRV_RESTARTS_MAX	3	/* fault servers started again by themselves ... */
#define FAULTSRV_RESTART_WINDOW_S 60	/* ... within this many seconds; then the migration waits paused */
#define POSTCOPY_BROKE	1		/* incoming_wait(): a connection to the source broke */
#define POSTCOPY_DIED	2		/* incoming_wait(): the fault server died */

/* ---- pure parts (unit-tested) ---- */

int postcopy_discard_ranges(const struct bitmap *sent, const struct bitmap *dirty, postcopy_range_fn *fn,
			    void *opaque)
{
	uint64_t n = dirty->nbits, i, end, first;
	int ret;

	for (i = bitmap_next_set(dirty, 0); i < n; i = bitmap_next_set(dirty, end)) {
		end = bitmap_next_clear(dirty, i);
		/* Within this dirty run, the runs the destination has. */
		for (first = i; first < end;) {
			uint64_t j;

			while (first < end && !bitmap_test(sent, first))
				first++;
			for (j = first; j < end && bitmap_test(sent, j); j++)
				;
			if (j > first && (ret = fn(opaque, first, j - first)))
				return ret;
			first = j;
		}
	}
	return 0;
}

uint32_t postcopy_push_neighbours(struct bitmap *unsent, const uint64_t *reqs, uint32_t nreq, uint64_t window,
				  uint64_t *list, uint32_t max)
{
	uint32_t i, n = 0;

	for (i = 0; i < nreq && window; i++) {
		uint64_t lo = reqs[i] > window ? reqs[i] - window : 0, hi = reqs[i] + window, j;

		for (j = lo; j <= hi && j < unsent->nbits && n < max; j++)
			if (bitmap_test(unsent, j)) {
				bitmap_clear(unsent, j);
				list[n++] = j;
			}
	}
	return n;
}

/* Take the first page still unsent at or after @from (wrapping), or return nbits. */
static uint64_t take_next(struct bitmap *unsent, pthread_mutex_t *lock, uint64_t from)
{
	uint64_t j;

	if (lock)
		pthread_mutex_lock(lock);
	j = bitmap_next_set(unsent, from < unsent->nbits ? from : 0);
	if (j >= unsent->nbits)
		j = bitmap_next_set(unsent, 0);
	if (j < unsent->nbits)
		bitmap_clear(unsent, j);
	if (lock)
		pthread_mutex_unlock(lock);
	return j;
}

uint32_t postcopy_push_batch(struct bitmap *unsent, pthread_mutex_t *lock, uint64_t *cursor,
			     postcopy_zero_fn *is_zero, void *opaque,
			     uint64_t *list, uint32_t max_data, uint64_t *zero_list, uint32_t max_zero,
			     uint32_t *nzero)
{
	uint64_t j = *cursor;
	uint32_t n = 0;

	*nzero = 0;
	while (n < max_data && *nzero < max_zero) {
		j = take_next(unsent, lock, j);
		if (j >= unsent->nbits)
			break;
		if (is_zero(opaque, j))
			zero_list[(*nzero)++] = j;
		else
			list[n++] = j;
		j++;
	}
	*cursor = j;
	return n;
}

/* ---- source: the switch ---- */

struct discard_batch {
	struct outgoing *o;
	uint64_t ranges[2 * DISCARD_BATCH];
	uint32_t nr;
	uint64_t pages;
};

static int discard_flush(struct discard_batch *b)
{
	uint32_t head[2] = { b->nr, 0 };
	struct iovec iov[2] = { { head, 8 }, { b->ranges, b->nr * 16 } };

	if (!b->nr)
		return 0;
	b->nr = 0;
	return stream_write_record(&b->o->main->tx, REC_DISCARD, iov, 2);
}

static int discard_add(void *opaque, uint64_t first, uint64_t npages)
{
	struct discard_batch *b = opaque;

	b->ranges[2 * b->nr] = first;
	b->ranges[2 * b->nr + 1] = npages;
	b->pages += npages;
	return ++b->nr == DISCARD_BATCH ? discard_flush(b) : 0;
}

/*
 * The pages KVM touches as soon as the destination loads the vCPUs' MSRs
 * (a Linux guest's kvmclock, wall clock, steal time, PV EOI and async-PF
 * areas): at that point no fault server runs yet, so a missing one would
 * block the load for good.  Send them now, before the discard list, as a
 * last precopy record.
 */
static int send_pv_pages(struct outgoing *o)
{
	uint64_t idx[VM_MAX_CPUS * VCPU_PV_PAGES_MAX], gpa[VCPU_PV_PAGES_MAX];
	uint32_t n = 0, j;
	int i, k, got;

	for (i = 0; i < o->vm->ncpus; i++) {
		got = vcpu_state_pv_pages(&o->vm->vcpus[i], gpa, VCPU_PV_PAGES_MAX);
		if (got < 0)
			return got;
		for (k = 0; k < got; k++) {
			uint64_t p = ram_gpa_to_index(&o->vm->ram, gpa[k]);

			for (j = 0; j < n && idx[j] != p; j++)
				;
			if (p != (uint64_t)-1 && j == n)
				idx[n++] = p;
		}
	}
	if (n)
		debug("postcopy switch: %u paravirtual page(s) sent before the state", n);
	for (j = 0; j < n; j += STREAM_PAGES_MAX) {
		int ret = outgoing_send_now(o, idx + j, n - j < STREAM_PAGES_MAX ? n - j : STREAM_PAGES_MAX);

		if (ret)
			return ret;
	}
	return 0;
}

int postcopy_switch(struct outgoing *o, struct bitmap *unsent, uint64_t *stop_ns)
{
	uint64_t npages = ram_npages(&o->vm->ram), i, synced_ns, wall_us;
	struct discard_batch b = { .o = o };
	size_t len = 0;
	int64_t dirtied;
	int ret;

	vm_pause_why(o->vm, "postcopy-switch");
	*stop_ns = stream_now_ns();
	wall_us = stream_wall_us();
	migration_set_postcopy(o->m, POSTCOPY_DISCARD);
	dirtied = dirty_sync(o->vm, &o->dirty);
	if (dirtied < 0)
		return (int)dirtied;
	synced_ns = stream_now_ns();
	ret = send_pv_pages(o);
	if (ret)
		return ret;
	/* What the destination lacks: never sent, or dirtied since (a word at a time: the downtime). */
	for (i = 0; i < (npages + 63) / 64; i++)
		unsent->words[i] = ~o->sent.words[i] | o->dirty.words[i];
	if (npages % 64)
		unsent->words[npages / 64] &= (1ULL << (npages % 64)) - 1;
	ret = postcopy_discard_ranges(&o->sent, &o->dirty, discard_add, &b);
	if (!ret)
		ret = discard_flush(&b);
	if (!ret)
		ret = outgoing_last_stop(o);
	if (!ret)
		ret = outgoing_send_state(o, REC_POSTCOPY_RUN, &len);
	if (ret)
		return ret;
	pthread_mutex_lock(&o->m->lock);
	o->m->postcopy = POSTCOPY_LISTEN;
	o->m->stats.pages_discarded = b.pages;
	o->m->stats.had_at_switch = npages - bitmap_count(unsent);
	o->m->stats.switch_ns = *stop_ns;
	o->m->stats.stopped_wall_us = wall_us;
	o->m->stats.switch_sync_us = (synced_ns - *stop_ns) / 1000;
	o->m->stats.switch_send_us = (stream_now_ns() - synced_ns) / 1000;
	pthread_mutex_unlock(&o->m->lock);
	return outgoing_wait_ack(o, ACK_RUNNING, o->main->peer_timeout_ms);
}

/* ---- source: after the switch ---- */

/* What the push (migration thread) and the return-path thread share. */
struct postcopy_source {
	struct outgoing *o;
	pthread_mutex_t lock;		/* guards @unsent and everything below */
	pthread_cond_t cond;		/* a request came, or the end */
	struct bitmap *unsent;
	uint64_t reqs[REQUEST_RING];	/* requested pages whose neighbours are still to push */
	uint32_t head, tail;
	bool end_of_copy, failed;
	int code;			/* the first failure's -errno: a broken link pauses, the rest fail */
	uint64_t last_io_ns;		/* the last record read or written that got through */
	char err[512];
	/* The return-path thread's record buffer for the urgent channel, and its pagemap. */
	struct ram_pagemap urgent_pm;
	uint64_t urgent_entries[STREAM_PAGES_MAX];
	uint8_t *urgent_data;
};

/* One ZERO_PAGES record of @nr ranges {first, npages}. */
static int send_zero_ranges(struct stream *tx, const uint64_t *ranges, uint32_t nr, uint32_t flags)
{
	uint32_t head[2] = { nr, flags };
	struct iovec iov[2] = { { head, sizeof(head) }, { (void *)ranges, nr * 16 } };

	return stream_write_record(tx, REC_ZERO_PAGES, iov, 2);
}

/* Add page @idx to the ranges {first, npages} (@nr of them), extending the last if it is next. */
static void range_add(uint64_t *ranges, uint32_t *nr, uint64_t idx)
{
	if (*nr && ranges[2 * *nr - 2] + ranges[2 * *nr - 1] == idx) {
		ranges[2 * *nr - 1]++;
		return;
	}
	ranges[2 * *nr] = idx;
	ranges[2 * *nr + 1] = 1;
	(*nr)++;
}

/*
 * Send the pages in @list (n, at most STREAM_PAGES_MAX) on @tx with @flags:
 * the data pages as one RAM_PAGES record (sent from RAM; @data is for the
 * test hooks' copies), the zero ones as ranges in one ZERO_PAGES record.  *@zero counts the zero ones
 * among the first @ncount.  @pm: the calling thread's pagemap.
 */
static int send_pages(struct outgoing *o, struct ram_pagemap *pm, struct stream *tx, uint64_t *entries,
		      uint8_t *data, const uint64_t *list, uint32_t n, uint32_t flags, uint32_t ncount, uint64_t *zero)
{
	uint32_t head[2] = { 0, flags }, ndata = 0, nr = 0, i;
	uint64_t ranges[2 * STREAM_PAGES_MAX];
	struct iovec iov[2 + STREAM_PAGES_MAX];
	int ret = 0, npiece = 0;

	for (i = 0; i < n; i++) {
		if (ram_page_zero(pm, list[i])) {
			range_add(ranges, &nr, list[i]);
			*zero += i < ncount;
		} else {
			outgoing_iov_add(iov + 2, &npiece,
					 outgoing_page_data(o, data + (size_t)ndata * PAGE_SIZE, list[i]), PAGE_SIZE);
			entries[ndata++] = list[i] << 1;
		}
	}
	if (ndata) {
		head[0] = ndata;
		iov[0] = (struct iovec){ head, sizeof(head) };
		iov[1] = (struct iovec){ entries, ndata * sizeof(uint64_t) };
		ret = stream_write_record(tx, REC_RAM_PAGES, iov, 2 + npiece);
	}
	if (!ret && nr)
		ret = send_zero_ranges(tx, ranges, nr, flags);
	return ret;
}

/* The return-path thread: the requested pages @list (@count, checked), at once, on the urgent channel. */
static int send_requested(struct postcopy_source *ps, const uint64_t *list, uint32_t count)
{
	struct outgoing *o = ps->o;
	uint64_t zero = 0, claimed = 0, before = o->urgent->tx.bytes_out, sorted[STREAM_PAGES_MAX];
	uint32_t i, again = count;
	int ret;

	/* Those still to send first, the ones sent again after: only the first count as requested. */
	pthread_mutex_lock(&ps->lock);
	for (i = 0; i < count; i++)
		if (bitmap_test(ps->unsent, list[i])) {
			bitmap_clear(ps->unsent, list[i]);
			sorted[claimed++] = list[i];
		} else {
			sorted[--again] = list[i];
		}
	pthread_mutex_unlock(&ps->lock);
	ret = send_pages(o, &ps->urgent_pm, &o->urgent->tx, ps->urgent_entries, ps->urgent_data, sorted, count,
			 PAGES_F_REQUESTED, (uint32_t)claimed, &zero);
	pthread_mutex_lock(&o->m->lock);
	o->m->stats.pages_requested += count;
	o->m->stats.pages_resent += count - claimed;
	o->m->stats.zero_after_switch += zero;
	o->m->stats.requests++;
	o->m->stats.urgent_bytes += o->urgent->tx.bytes_out - before;
	pthread_mutex_unlock(&o->m->lock);
	return ret;
}

int postcopy_take_request(const void *payload, uint32_t len, uint64_t npages, uint64_t *list)
{
	const uint8_t *buf = payload;
	uint64_t idx;
	uint32_t count, i;
	int n = 0;

	memcpy(&count, buf, 4);
	if (!count || count > STREAM_PAGES_MAX || len != 8 + 8 * count)
		return -EPROTO;
	for (i = 0; i < count; i++) {
		memcpy(&idx, buf + 8 + 8 * i, 8);
		if (idx < npages)
			list[n++] = idx;
	}
	return n;
}

/* The requested pages @list (@n) into the ring, for the push to send their neighbours; ps->lock held. */
static void ring_add(struct postcopy_source *ps, const uint64_t *list, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		/* A full ring only loses neighbours to push, never a requested page. */
		if ((ps->tail + 1) % REQUEST_RING != ps->head) {
			ps->reqs[ps->tail] = list[i];
			ps->tail = (ps->tail + 1) % REQUEST_RING;
		}
	}
}

static void source_fail(struct postcopy_source *ps, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The first failure wins (@code: its -errno); it wakes the push. */
static void source_fail(struct postcopy_source *ps, int code, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&ps->lock);
	if (!ps->failed) {
		va_start(ap, fmt);
		vsnprintf(ps->err, sizeof(ps->err), fmt, ap);
		va_end(ap);
		ps->code = code;
	}
	ps->failed = true;
	pthread_cond_broadcast(&ps->cond);
	pthread_mutex_unlock(&ps->lock);
}

/* After the switch: page requests, END_OF_COPY or an error, on the main channel's return path. */
static void *return_path_thread(void *arg)
{
	struct postcopy_source *ps = arg;
	uint8_t buf[8 + 8 * STREAM_PAGES_MAX + STREAM_ERROR_MAX];
	uint64_t list[STREAM_PAGES_MAX];
	struct stream_rec rec;
	char err[256];

	pthread_setname_np(pthread_self(), "mig-rp");
	for (;;) {
		int n = 0, ret;
		bool stop;

		ret = stream_read_record(&ps->o->main->rx, &rec, buf, sizeof(buf) - 1, err, sizeof(err));
		if (ret) {
			source_fail(ps, ret, "return path: %s", err);
			break;
		}
		__atomic_store_n(&ps->last_io_ns, stream_now_ns(), __ATOMIC_RELAXED);
		/*
		 * The requested pages go out first, before the push is woken for
		 * their neighbours: on a busy host a woken pusher would take the
		 * CPU, and the lock, from the page a vCPU is waiting for.
		 */
		if (rec.type == REC_PAGE_REQUEST) {
			n = postcopy_take_request(buf, rec.len, ps->unsent->nbits, list);
			if (n > 0 && (ret = send_requested(ps, list, (uint32_t)n)))
				source_fail(ps, ret, "urgent channel: %s", strerror(-ret));
		}
		pthread_mutex_lock(&ps->lock);
		if (rec.type == REC_END_OF_COPY)
			ps->end_of_copy = true;
		else if (n > 0)
			ring_add(ps, list, n);
		pthread_cond_broadcast(&ps->cond);
		stop = ps->end_of_copy;
		pthread_mutex_unlock(&ps->lock);
		if (rec.type == REC_ERROR) {
			char text[401];

			stream_sanitize(text, sizeof(text), buf, rec.len);
			source_fail(ps, -EREMOTEIO, "the destination failed: %s", text);
		} else if (rec.type != REC_PAGE_REQUEST && rec.type != REC_END_OF_COPY) {
			source_fail(ps, -EPROTO, "return path: unexpected %s record", stream_rec_name(rec.type));
		} else if (n < 0) {
			source_fail(ps, -EPROTO, "return path: a malformed PAGE_REQUEST");
		}
		if (stop || ps->failed)
			break;
	}
	pthread_mutex_lock(&ps->o->m->lock);
	ps->o->m->stats.rp_cpu_ns += stream_thread_cpu_ns();
	pthread_mutex_unlock(&ps->o->m->lock);
	return NULL;
}

/* Wait (at most 100 ms) until a request, the end, a failure, or push work; ps->lock held. */
static void wait_for_work(struct postcopy_source *ps, bool push)
{
	struct timespec ts;

	if (ps->head != ps->tail || ps->failed || ps->end_of_copy || push)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 100000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&ps->cond, &ps->lock, &ts);
}

static bool page_is_zero(void *opaque, uint64_t page)
{
	struct outgoing *o = opaque;

	return ram_page_zero(&o->pm, page);	/* the migration thread's, the push's caller */
}

/* Push figures, for one loop of postcopy_run. */
struct push_step {
	uint64_t requested[REQUEST_RING];	/* taken from the ring */
	uint32_t nreq;
	uint64_t cursor;		/* where the background push goes on */
	uint64_t pushed, zero;
	uint64_t bg_start, bg_bytes;	/* max-postcopy-bandwidth's window */
};

/* The background batch: from where the guest last asked, at its own rate. */
static int push_background(struct postcopy_source *ps, struct push_step *st, const struct migration_params *p)
{
	struct outgoing *o = ps->o;
	uint64_t list[PUSH_BATCH], zl[ZERO_BATCH], zr[2 * STREAM_PAGES_MAX], before = o->main->tx.bytes_out;
	uint32_t n, nz, nr = 0, i;
	int ret = 0;

	n = postcopy_push_batch(ps->unsent, &ps->lock, &st->cursor, page_is_zero, o, list, PUSH_BATCH, zl,
				ZERO_BATCH, &nz);
	for (i = 0; i < nz && !ret; i++) {
		range_add(zr, &nr, zl[i]);
		if (nr == STREAM_PAGES_MAX) {
			ret = send_zero_ranges(&o->main->tx, zr, nr, 0);
			nr = 0;
		}
	}
	if (!ret && nr)
		ret = send_zero_ranges(&o->main->tx, zr, nr, 0);
	if (!ret && n)
		ret = send_pages(o, &o->pm, &o->main->tx, o->entries, o->data, list, n, 0, n, &st->zero);
	st->zero += nz;
	st->pushed += n + nz;
	if (!p->max_postcopy_bandwidth) {
		st->bg_start = stream_now_ns();
		st->bg_bytes = 0;
		return ret;
	}
	st->bg_bytes += o->main->tx.bytes_out - before;
	uint64_t due = st->bg_start + st->bg_bytes * 1000000000ULL / p->max_postcopy_bandwidth, now = stream_now_ns();

	if (due > now) {
		struct timespec ts = { (time_t)((due - now) / 1000000000ULL), (long)((due - now) % 1000000000ULL) };

		nanosleep(&ts, NULL);
	}
	return ret;
}

/* One loop of the push: the neighbours of what was asked, then a background batch. */
static int push_once(struct postcopy_source *ps, struct push_step *st, const struct migration_params *p)
{
	struct outgoing *o = ps->o;
	uint64_t list[STREAM_PAGES_MAX];
	uint32_t n;
	int ret = 0;

	if (st->nreq)
		st->cursor = st->requested[st->nreq - 1] + 1;
	/* The guest is likely to touch the neighbours of what it asked for soon. */
	pthread_mutex_lock(&ps->lock);
	n = postcopy_push_neighbours(ps->unsent, st->requested, st->nreq, p->postcopy_window, list,
				     STREAM_PAGES_MAX);
	pthread_mutex_unlock(&ps->lock);
	if (n) {
		ret = send_pages(o, &o->pm, &o->main->tx, o->entries, o->data, list, n, 0, n, &st->zero);
		st->pushed += n;
	}
	if (!ret && p->postcopy_background)
		ret = push_background(ps, st, p);
	return ret;
}

/* The figures after one loop; true once every page has gone. */
static bool push_account(struct postcopy_source *ps, struct push_step *st, uint64_t bytes0)
{
	struct outgoing *o = ps->o;
	uint64_t remaining;

	pthread_mutex_lock(&ps->lock);
	remaining = bitmap_count(ps->unsent);
	pthread_mutex_unlock(&ps->lock);
	pthread_mutex_lock(&o->m->lock);
	o->m->stats.pages_pushed += st->pushed;
	o->m->stats.zero_after_switch += st->zero;
	o->m->stats.bytes_after_switch = o->main->tx.bytes_out - bytes0 + o->m->stats.urgent_bytes;
	o->m->stats.bytes = channel_bytes(o->main) + o->m->stats.urgent_bytes + multifd_send_bytes(o->mf);
	o->m->stats.pages_remaining = remaining;
	pthread_mutex_unlock(&o->m->lock);
	st->pushed = st->zero = 0;
	return remaining == 0;
}

/* The push loop, until END_OF_COPY or a failure. */
static int push_loop(struct postcopy_source *ps)
{
	struct outgoing *o = ps->o;
	struct push_step *st = calloc(1, sizeof(*st));
	uint64_t bytes0 = o->main->tx.bytes_out;
	struct migration_params p;
	bool done_sent = false, eoc;
	int ret = 0;

	if (!st)
		return -ENOMEM;
	st->bg_start = stream_now_ns();
	while (!ret) {
		migration_get_params(o->m, &p);
		pthread_mutex_lock(&ps->lock);
		wait_for_work(ps, !done_sent && p.postcopy_background);
		for (st->nreq = 0; ps->head != ps->tail; ps->head = (ps->head + 1) % REQUEST_RING)
			st->requested[st->nreq++] = ps->reqs[ps->head];
		if (ps->failed) {
			snprintf(o->err, sizeof(o->err), "%s", ps->err);
			ret = ps->code ? ps->code : -EPIPE;
		}
		eoc = ps->end_of_copy;
		pthread_mutex_unlock(&ps->lock);
		if (ret || eoc)
			break;
		ret = push_once(ps, st, &p);
		if (!ret)
			__atomic_store_n(&ps->last_io_ns, stream_now_ns(), __ATOMIC_RELAXED);
		if (push_account(ps, st, bytes0) && !done_sent && !ret) {
			ret = stream_write(&o->main->tx, REC_POSTCOPY_DONE, NULL, 0);
			done_sent = true;
		}
		if (ret && !o->err[0])
			snprintf(o->err, sizeof(o->err), "postcopy: connection to the destination failed: %s",
				 strerror(-ret));
	}
	free(st);
	return ret;
}

/* The non-zero pages of @missing: this copy has not run since the switch, so they are as they were then. */
static uint64_t count_nonzero(struct outgoing *o, const struct bitmap *missing)
{
	uint64_t i, n = 0;

	for (i = bitmap_next_set(missing, 0); i < missing->nbits; i = bitmap_next_set(missing, i + 1))
		n += !ram_page_zero(&o->pm, i);
	return n;
}

/* Join @t if it ends within @ms; true if it did. */
static bool join_within(pthread_t t, int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return pthread_timedjoin_np(t, NULL, &ts) == 0;
}

/* One session after the switch, or after a recovery, on the connections open now: 0 once END_OF_COPY came. */
static int run_session(struct outgoing *o, struct bitmap *unsent, uint64_t *detect_ms)
{
	struct postcopy_source *ps = calloc(1, sizeof(*ps));
	uint64_t cpu0;
	int ret, sndbuf = 256 << 10;
	pthread_t reader;

	if (!ps || !(ps->urgent_data = malloc(STREAM_PAGES_MAX * PAGE_SIZE))) {
		ret = -ENOMEM;
		goto out;
	}
	ps->o = o;
	ram_pagemap_open(&ps->urgent_pm, &o->vm->ram);
	ps->unsent = unsent;
	ps->last_io_ns = stream_now_ns();
	pthread_mutex_init(&ps->lock, NULL);
	pthread_cond_init(&ps->cond, NULL);
	/* A requested page waits behind at most this much queued in the kernel. */
	setsockopt(o->main->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	__atomic_store_n(&o->main->tx.max_bw, 0, __ATOMIC_RELAXED);	/* requests are never throttled */
	ret = -pthread_create(&reader, NULL, return_path_thread, ps);
	if (ret)
		goto out;
	/*
	 * The push only fills what the requests leave: where CPUs are short, the
	 * return-path thread (which sends requested pages) runs first.  This
	 * thread ends with the migration, so its niceness is never undone.
	 */
	setpriority(PRIO_PROCESS, (id_t)gettid(), PUSH_NICE);
	cpu0 = stream_thread_cpu_ns();
	ret = push_loop(ps);
	pthread_mutex_lock(&o->m->lock);
	o->m->stats.push_cpu_ns += stream_thread_cpu_ns() - cpu0;
	pthread_mutex_unlock(&o->m->lock);
	/* The reader ends on END_OF_COPY or an error; on our own error, wake it. */
	if (ret) {
		*detect_ms = (stream_now_ns() - __atomic_load_n(&ps->last_io_ns, __ATOMIC_RELAXED)) / 1000000;
		/*
		 * A destination that failed says why (ERROR) and closes: the push
		 * may see the close first.  The reader gets a moment to read what
		 * came before it, so that a failure is not taken for a break.
		 */
		if (!stream_error_is_link(ret) || !join_within(reader, READER_GRACE_MS)) {
			channel_shutdown(o->main);
			channel_shutdown(o->urgent);
			pthread_join(reader, NULL);
		}
		if (ps->code == -EREMOTEIO) {
			snprintf(o->err, sizeof(o->err), "%s", ps->err);
			ret = ps->code;
		}
	} else {
		pthread_join(reader, NULL);
	}
out:
	if (ps) {
		if (ps->o)
			ram_pagemap_close(&ps->urgent_pm);
		free(ps->urgent_data);
	}
	free(ps);
	return ret;
}

int postcopy_take_recv_bitmap(const void *payload, uint32_t len, struct bitmap *received)
{
	uint64_t npages = received->nbits, words = (npages + 63) / 64, n;

	if (len < 8 || len - 8 != 8 * words)
		return -EPROTO;
	memcpy(&n, payload, 8);
	if (n != npages)
		return -EPROTO;
	memcpy(received->words, (const uint8_t *)payload + 8, 8 * words);
	if (npages % 64 && received->words[words - 1] >> (npages % 64))
		return -EPROTO;
	return 0;
}

/* A failure after the switch that pauses (a broken connection, migrate_pause), rather than fails. */
static bool source_may_pause(struct outgoing *o, int ret)
{
	return ret && !migration_cancelled(o->m) &&
	       (stream_error_is_link(ret) || __atomic_load_n(&o->m->pause_asked, __ATOMIC_ACQUIRE));
}

/*
 * The destination's received bitmap, the first record on a resumed main
 * connection: exactly npages bits, none beyond; 0 or -errno with o->err.
 */
static int read_recv_bitmap(struct outgoing *o, struct bitmap *received)
{
	uint64_t npages = received->nbits, words = (npages + 63) / 64;
	uint32_t cap = (uint32_t)(8 + 8 * words);
	struct stream_rec rec;
	char err[256];
	uint8_t *buf;
	int ret;

	if (8 + 8 * words > STREAM_MAX_PAYLOAD) {
		snprintf(o->err, sizeof(o->err), "too much RAM to resume (%llu pages)", (unsigned long long)npages);
		return -EFBIG;
	}
	buf = malloc(cap > STREAM_ERROR_MAX ? cap : STREAM_ERROR_MAX);
	if (!buf)
		return -ENOMEM;
	/* It must begin within peer-timeout: the destination sends it as soon as both connections are in. */
	o->main->rx.idle_ms = o->main->peer_timeout_ms;
	ret = stream_read_record(&o->main->rx, &rec, buf, cap > STREAM_ERROR_MAX ? cap : STREAM_ERROR_MAX, err,
				 sizeof(err));
	o->main->rx.idle_ms = 0;
	if (ret) {
		snprintf(o->err, sizeof(o->err), "the destination did not send its received pages: %s", err);
	} else if (rec.type == REC_ERROR) {
		char text[401];

		stream_sanitize(text, sizeof(text), buf, rec.len);
		snprintf(o->err, sizeof(o->err), "the destination refused to resume: %s", text);
		ret = -EREMOTEIO;
	} else if (rec.type != REC_RECV_BITMAP || postcopy_take_recv_bitmap(buf, rec.len, received)) {
		snprintf(o->err, sizeof(o->err), "the destination answered with a %s record of %u bytes, not its "
			 "received pages (%llu pages)", stream_rec_name(rec.type), rec.len, (unsigned long long)npages);
		ret = -EPROTO;
	}
	free(buf);
	return ret;
}

/*
 * Resume through @uri: both connections again (marked STREAM_F_RESUME), the
 * destination's received bitmap, and @unsent made exactly what it lacks:
 * the pages that were on their way when it broke are sent again.
 */
static int source_resume(struct outgoing *o, const char *uri, struct bitmap *unsent)
{
	uint64_t npages = unsent->nbits, i, again = 0, bytes = 0, last_zero;
	struct bitmap received = { 0 };
	struct stream_header h;
	struct uri u;
	int ret;

	ret = uri_parse(uri, &u, o->err, sizeof(o->err));
	if (ret)
		return ret;
	stream_header_for(&h, &o->vm->ram, o->vm->ncpus, STREAM_F_POSTCOPY | STREAM_F_CHANNELS | STREAM_F_RESUME |
			  (o->verify ? STREAM_F_VERIFY : 0));
	o->main = migration_channel(o->m, CHANNEL_MAIN);
	ret = channel_connect(o->main, &u, &h, o->err, sizeof(o->err));
	if (!ret) {
		o->urgent = migration_channel(o->m, CHANNEL_URGENT);
		ret = channel_connect(o->urgent, &u, &h, o->err, sizeof(o->err));
	}
	if (!ret)
		ret = bitmap_init(&received, npages);
	if (!ret)
		ret = read_recv_bitmap(o, &received);
	if (!ret) {
		/*
		 * The pages on their way when it broke, and their bytes as they go
		 * again (this copy has not run since the switch, so they are as
		 * they were): a data page with its entry, a run of zero pages as one
		 * range.
		 */
		for (i = 0, last_zero = UINT64_MAX; i < npages; i++) {
			if (bitmap_test(&received, i) || bitmap_test(unsent, i))
				continue;
			again++;
			if (!ram_page_zero(&o->pm, i)) {
				bytes += PAGE_SIZE + 8;
				continue;
			}
			if (last_zero != i - 1)
				bytes += 16;
			last_zero = i;
		}
		for (i = 0; i < (npages + 63) / 64; i++)
			unsent->words[i] = ~received.words[i];
		if (npages % 64)
			unsent->words[npages / 64] &= (1ULL << (npages % 64)) - 1;
		pthread_mutex_lock(&o->m->lock);
		o->m->stats.recovery_pages += again;
		o->m->stats.recovery_bytes += bytes;
		o->m->stats.pages_remaining = bitmap_count(unsent);
		pthread_mutex_unlock(&o->m->lock);
		info("postcopy resumed through %s: %llu pages still to send, %llu of them sent before but lost", uri,
		     (unsigned long long)bitmap_count(unsent), (unsigned long long)again);
	}
	bitmap_destroy(&received);
	return ret;
}

/*
 * Paused after @ret broke the connections: this copy keeps every page the
 * destination lacks (@unsent) and waits for migrate_resume.  A destination
 * that closed them (its fault server died: it starts another and listens
 * again on the same URI) is tried again at once, for up to peer-timeout.
 * Returns as postcopy_run().
 */
static int source_paused(struct outgoing *o, struct bitmap *unsent, int ret, uint64_t detect_ms)
{
	struct migration_params p;
	char uri[320], last[320];
	uint64_t auto_until;
	bool autotry;
	int asked;

	snprintf(last, sizeof(last), "%s", o->m->uri);
	for (;;) {
		migration_get_params(o->m, &p);
		if (__atomic_load_n(&o->m->pause_asked, __ATOMIC_ACQUIRE)) {
			snprintf(o->err, sizeof(o->err), "paused by migrate_pause");
			autotry = false;
		} else {
			autotry = ret == -EPIPE || ret == -ECONNRESET;
		}
		auto_until = stream_now_ns() + p.peer_timeout_ms * 1000000ULL;
		migration_close_channels(o->m);
		warn("postcopy to %s paused: %s; this copy keeps every page the destination lacks: 'migrate_recover "
		     "URI' there, then 'migrate_resume URI' here%s", last, o->err,
		     autotry ? " (the destination closed the connections: trying again by itself first)" : "");
		for (;;) {
			asked = migration_pause_wait(o->m, o->err, detect_ms, autotry ? last : NULL, AUTO_RESUME_MS, uri,
						     sizeof(uri));
			if (asked < 0) {
				snprintf(o->err, sizeof(o->err), "recovery given up (migrate_cancel) while paused");
				return asked;
			}
			o->err[0] = '\0';
			ret = source_resume(o, uri, unsent);
			if (!ret)
				break;
			migration_close_channels(o->m);
			if (asked == 1 && stream_now_ns() < auto_until)
				continue;
			warn("cannot resume postcopy through %s: %s; still paused", uri, o->err);
			autotry = false;
		}
		snprintf(last, sizeof(last), "%s", uri);
		migration_recovered(o->m);
		ret = run_session(o, unsent, &detect_ms);
		if (!source_may_pause(o, ret))
			return ret;
	}
}

int postcopy_run(struct outgoing *o, struct bitmap *unsent, int broke)
{
	struct bitmap missing = { 0 };
	uint64_t detect_ms = 0;
	int ret;

	if (bitmap_init(&missing, unsent->nbits))
		return -ENOMEM;
	/* Kept to count, at the end, the non-zero pages the destination lacked: not in the downtime. */
	memcpy(missing.words, unsent->words, (unsent->nbits + 63) / 64 * sizeof(uint64_t));
	ret = broke ? broke : run_session(o, unsent, &detect_ms);
	if (broke ? !migration_cancelled(o->m) : source_may_pause(o, ret))
		ret = source_paused(o, unsent, ret, detect_ms);
	pthread_mutex_lock(&o->m->lock);
	o->m->stats.nonzero_at_switch = count_nonzero(o, &missing);
	pthread_mutex_unlock(&o->m->lock);
	bitmap_destroy(&missing);
	return ret;
}

/* ---- destination ---- */

/*
 * Every page not received must fault: drop whatever the kernel made present
 * there, but for the pages dropped already as their DISCARD came.  The runs
 * of clear bits in received | dropped remain (dropped is not used after).
 * On memfd RAM these pages were never written here (zero in the file, as
 * the fault server needs them): MADV_DONTNEED only unmaps them.
 */
static int drop_missing(struct incoming *in)
{
	struct ram *ram = &in->vm->ram;
	uint64_t i, n = ram_npages(ram), end;
	struct bitmap *done = &in->received;
	int ret;

	if (in->dropped.words) {
		bitmap_or(&in->dropped, &in->received);
		done = &in->dropped;
	}
	for (i = bitmap_next_clear(done, 0); i < n; i = bitmap_next_clear(done, end)) {
		end = bitmap_next_set(done, i);
		if (madvise(ram_page_hva(ram, i), (end - i) * PAGE_SIZE, MADV_DONTNEED) < 0) {
			ret = -errno;
			snprintf(in->err, sizeof(in->err), "cannot drop missing pages: %s", strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* Guest RAM behind a userfaultfd, before any vCPU runs: a missing page must fault, not read as zero. */
static int register_ram(struct incoming *in)
{
	struct ram *ram = &in->vm->ram;
	uint64_t t0 = stream_now_ns();
	char why[400];
	int ret;

	/*
	 * The fault server must not inherit guest RAM's mapping: it places
	 * pages by UFFDIO_COPY, or writes memfd RAM through a mapping of its
	 * own that no userfaultfd watches.
	 */
	if (madvise(ram->base, ram->size, MADV_DONTFORK) < 0) {
		snprintf(in->err, sizeof(in->err), "madvise(MADV_DONTFORK): %s", strerror(errno));
		return -errno;
	}
	/*
	 * From now on 4 KiB pages: a huge page placed or faulted in whole
	 * would make the pages around it present, zero-filled.  Those made
	 * during precopy are split where drop_missing() cuts holes in them.
	 */
	madvise(ram->base, ram->size, MADV_NOHUGEPAGE);
	ret = drop_missing(in);
	if (ret)
		return ret;
	in->uffd = ram->memfd ? uffd_open_minor(why, sizeof(why)) : uffd_open(why, sizeof(why));
	if (in->uffd < 0) {
		snprintf(in->err, sizeof(in->err), "%s", why);
		return in->uffd;
	}
	__atomic_store_n(&in->vm->ram_incomplete, true, __ATOMIC_RELEASE);
	/* On memfd RAM the pages dropped are still in the file: their faults are minor ones. */
	ret = ram->memfd ? uffd_register_shared(in->uffd, ram->base, ram->size) :
			   uffd_register(in->uffd, ram->base, ram->size);
	if (ret)
		snprintf(in->err, sizeof(in->err), "cannot register guest RAM with userfaultfd: %s", strerror(-ret));
	pthread_mutex_lock(&in->m->lock);
	in->m->stats.switch_drop_us = (stream_now_ns() - t0) / 1000;
	pthread_mutex_unlock(&in->m->lock);
	return ret;
}

int postcopy_incoming_start(struct incoming *in, struct faultsrv *fs)
{
	struct ram *ram = &in->vm->ram;
	struct migration_params p;
	int ret;

	migration_set_postcopy(in->m, POSTCOPY_LISTEN);
	/* Before the missing pages are dropped: reading RAM here may map zero pages over them. */
	ret = incoming_verify(in, &in->received);
	if (!ret)
		ret = register_ram(in);
	if (!ret)
		ret = incoming_load_state(in);
	if (ret)
		return ret;
	ret = faultsrv_create(fs, ram_npages(ram), &in->received);
	if (ret) {
		snprintf(in->err, sizeof(in->err), "cannot start the fault server: %s", fs->err);
		return ret;
	}
	fs->ram_memfd = ram->memfd ? ram->fd : -1;
	migration_get_params(in->m, &p);
	fs->x_lose_end_of_copy = p.x_lose_end_of_copy;
	if (fs->x_lose_end_of_copy)
		warn("x-lose-end-of-copy: the fault server will not send END_OF_COPY");
	if (p.x_lose_ack_running) {
		warn("x-lose-ack-running: ACK(RUNNING) not sent");
		return 0;
	}
	return incoming_send_ack(in, ACK_RUNNING);
}

/*
 * After the vCPUs start, not before: the fork and the server's start (tens
 * of ms under TCG) are then no part of the guest's pause.  A vCPU that
 * touches a missing page meanwhile waits in the userfaultfd's queue, which
 * the server reads first.  The fork is safe beside running vCPUs: guest RAM
 * is not inherited (MADV_DONTFORK), the server logs with write(2) and does
 * not allocate with malloc.
 */
int postcopy_incoming_spawn(struct incoming *in, struct faultsrv *fs)
{
	int ret;

	/* The channels go to the fault server, which closes this process's copies: main, then urgent. */
	ret = faultsrv_spawn(fs, in->m->channels, in->urgent ? 2 : 1, in->uffd, in->vm->ram.base,
			     in->verify ? &in->v : NULL);
	if (ret)
		snprintf(in->err, sizeof(in->err), "cannot start the fault server: %s", fs->err);
	return ret;
}

/* Wait for the fault server: 0 (DONE), POSTCOPY_BROKE, POSTCOPY_DIED, or -errno with in->err. */
static int incoming_wait(struct incoming *in, struct faultsrv *fs)
{
	struct pollfd p = { .fd = fs->ctl_fd, .events = POLLIN };

	for (;;) {
		int msg;

		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			return -errno;
		if (migration_cancelled(in->m)) {
			snprintf(in->err, sizeof(in->err), "vmm is ending");
			return -ECANCELED;
		}
		msg = faultsrv_poll(fs);
		if (msg == FAULTSRV_MSG_DONE) {
			/* Every page is here: the guest runs on with no more faults. */
			uffd_unregister(in->uffd, in->vm->ram.base, in->vm->ram.size);
			close(in->uffd);
			in->uffd = -1;
			__atomic_store_n(&in->vm->ram_incomplete, false, __ATOMIC_RELEASE);
			migration_set_postcopy(in->m, POSTCOPY_END);
			faultsrv_wait(fs, 10000);
			return 0;
		}
		if (msg == FAULTSRV_MSG_PAUSED) {
			faultsrv_wait(fs, 10000);	/* it is exiting: reap it */
			return POSTCOPY_BROKE;
		}
		if (msg == FAULTSRV_MSG_EXITED)
			return POSTCOPY_DIED;
		if (msg == FAULTSRV_MSG_ERROR || msg < 0) {
			snprintf(in->err, sizeof(in->err), "the fault server failed: %s",
				 fs->err[0] ? fs->err : "no reason given");
			return -EIO;
		}
	}
}

/*
 * Paused (@died: the fault server died, else a connection broke): keep the
 * userfaultfd and the shared map, wait for migrate_recover (or, @auto_uri,
 * listen there at once: the source tries again by itself when its
 * connections close), take the source's resumed connections, send it the
 * received bitmap, and start a fault server on the same map.  0 once it
 * runs, or -errno with in->err.
 */
static int incoming_recover(struct incoming *in, struct faultsrv *fs, bool died, const char *auto_uri,
			    uint64_t detect_ms)
{
	struct migration *m = in->m;
	char uri[320], why[FAULTSRV_ERR_MAX];
	int ret;

	snprintf(why, sizeof(why), "%s", fs->err[0] ? fs->err : "the connection to the source broke");
	migration_close_channels(m);
	if (auto_uri)
		warn("postcopy: %s; starting another fault server once the source reconnects to %s", why, auto_uri);
	else
		warn("postcopy paused: %s; the guest waits here for its missing pages: 'migrate_recover URI' here, "
		     "then 'migrate_resume URI' on the source%s", why,
		     died ? " (the fault server died too often to start it again by itself)" : "");
	for (;;) {
		ret = migration_pause_wait(m, why, detect_ms, auto_uri, 0, uri, sizeof(uri));
		if (ret < 0) {
			snprintf(in->err, sizeof(in->err), "recovery given up while paused (%s)", why);
			return ret;
		}
		ret = incoming_accept_resume(in, uri, fs->shared->bits);
		if (!ret)
			break;
		if (ret == -ECANCELED) {
			snprintf(in->err, sizeof(in->err), "recovery given up while paused (%s)", why);
			return ret;
		}
		if (ret < 0)
			warn("postcopy recovery on %s: %s; still paused", uri, in->err);
		auto_uri = NULL;
	}
	ret = faultsrv_spawn(fs, m->channels, 2, in->uffd, in->vm->ram.base, in->verify ? &in->v : NULL);
	if (ret) {
		snprintf(in->err, sizeof(in->err), "cannot start the fault server again: %s", fs->err);
		return ret;
	}
	pthread_mutex_lock(&m->lock);
	m->stats.faultsrv_restarts += died;
	pthread_mutex_unlock(&m->lock);
	migration_recovered(m);
	info("postcopy resumed: a new fault server (pid %d) asks again for the pages still missing", (int)fs->pid);
	return 0;
}

int postcopy_incoming_wait(struct incoming *in, struct faultsrv *fs)
{
	uint64_t restarts[FAULTSRV_RESTARTS_MAX] = { 0 };
	unsigned int n = 0;
	int ret;

	for (;;) {
		uint64_t now, last, detect_ms;
		bool died, again;

		ret = incoming_wait(in, fs);
		if (ret <= 0 || migration_cancelled(in->m))
			return ret > 0 ? -ECANCELED : ret;
		now = stream_now_ns();
		last = __atomic_load_n(&fs->shared->last_io_ns, __ATOMIC_RELAXED);
		detect_ms = last && now > last ? (now - last) / 1000000 : 0;
		died = ret == POSTCOPY_DIED;
		/* Another server at once, unless this many died within the window: then a person looks. */
		again = died && (n < FAULTSRV_RESTARTS_MAX ||
				 now - restarts[n % FAULTSRV_RESTARTS_MAX] > FAULTSRV_RESTART_WINDOW_S * 1000000000ULL);
		ret = incoming_recover(in, fs, died, again ? in->m->uri : NULL, detect_ms);
		if (ret)
			return ret;
		if (died)
			restarts[n++ % FAULTSRV_RESTARTS_MAX] = now;
	}
}
