// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The postcopy fault server (see faultsrv.h).
 *
 * Why a process and not a thread: the server must keep working while the
 * VMM's threads are blocked on guest pages, so it must never touch guest RAM
 * itself, and a separate process makes that a property of the address space
 * rather than a rule to remember: guest RAM is MADV_DONTFORK, the server does
 * not have the guest's mapping, and it places pages only through UFFDIO_COPY
 * from its own buffer (a uffd acts on the address space that created it).
 * On memfd RAM it holds the file, not a mapping of it: it writes a page into
 * the file (pwrite) and shows it to the guest with UFFDIO_CONTINUE
 * (docs/design.md, "Placement on memfd RAM").  It also
 * owns the migration connection outright, so nothing in the VMM can write a
 * record between two of its own; and whatever happens to it, the VMM sees an
 * exit status.
 *
 * One thread, one poll loop, over the uffd (faults), the urgent channel
 * (requested pages), the main connection (pushed pages, the source's end) and
 * the control socket (the VMM: EOF means it has gone, and then so does the
 * server), served in that order.  Records are read a piece at a time as they
 * arrive (stream_read_some), so a fault never waits for a record of pushed
 * pages to finish arriving, and pushed records are placed a slice of
 * PUSH_SLICE pages at a time (struct placing), so it waits at most for one
 * slice.  Requested pages are placed whole, at once.  Every fault
 * readable at once goes into one PAGE_REQUEST; a page already requested or
 * received is never requested again.  A fault on a page that is valid here
 * (received in precopy) but was never written here means the page is zero:
 * the server places a zero page itself.  A page may arrive on both
 * connections (pushed, and requested while on its way): the second copy is
 * dropped as a duplicate.  Without an urgent channel (a source that sends
 * requested pages on the main connection) the loop has one connection less.
 *
 * Everything worth keeping is in the shared mapping: counters, the latency
 * histogram, the received and requested bitmaps, the stream's sequence
 * numbers.  The server writes it with atomic stores, and nobody else writes it.
 *
 * Once every page is here, the server sends END_OF_COPY, tells the VMM DONE,
 * and waits a little for the source's POSTCOPY_DONE (or its close) so that
 * the connection ends cleanly rather than with a reset; then it exits 0.
 * On any failure it records the reason, tells the VMM (ERROR), tries to tell
 * the source, and exits 1.  Only server_main() exits, with _exit(): the
 * server shares the VMM's stdio buffers and atexit handlers and must run none
 * of them.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/syscall.h>

#include "migrate/channel.h"
#include "migrate/faultsrv.h"
#include "migrate/uffd.h"
#include "migrate/verify.h"
#include "vmm/ram.h"

#define START_TIMEOUT_MS	5000
#define DRAIN_NS		5000000000ULL	/* after END_OF_COPY, wait this long for POSTCOPY_DONE */
#define PAGES_REC_MAX		(8 + 8 * STREAM_PAGES_MAX + STREAM_PAGES_MAX * PAGE_SIZE)
#define PUSH_SLICE		16	/* pushed pages placed between two looks at the faults */
#define FAULT_BATCH		64

#define DONE_WAIT_NS		10000000000ULL	/* after POSTCOPY_DONE, for urgent pages in flight */

/*
 * A RAM_PAGES or ZERO_PAGES record being placed.  Pushed records are placed
 * a slice (PUSH_SLICE pages) at a time, with the faults and requested pages
 * served between two slices: a fault never waits behind a whole record of
 * pushed pages (256 pages, or a ZERO_PAGES record of thousands).
 */
struct placing {
	bool active;
	struct stream_rec rec;		/* its payload in the server's buffer for that connection */
	uint32_t count, flags;
	uint32_t i;			/* the next entry (RAM_PAGES) or range (ZERO_PAGES) */
	uint64_t j;			/* ZERO_PAGES: the next page of range i (0: its first) */
	size_t data_off;		/* RAM_PAGES: where entry i's data is, in the payload */
};

struct server {
	struct faultsrv_shared *sh;
	struct channel *main;		/* &sh->channels[CHANNEL_MAIN]: requests out, pushed pages in */
	struct channel *urgent;		/* &sh->channels[CHANNEL_URGENT]: requested pages in; fd -1 if none */
	int uffd, ctl;
	uint8_t *ram;			/* the VMM's address: never dereferenced here */
	int memfd;			/* guest RAM's memfd (placed by UFFDIO_CONTINUE), or -1 (anonymous RAM) */
	uint64_t npages;
	struct bitmap received, requested;	/* views of sh->bits */
	uint8_t *buf, *ubuf;		/* one record each: main connection, urgent channel */
	struct stream_rx rx, urx;	/* the records being read on them */
	struct placing push;		/* the main connection's record being placed (s->buf) */
	uint64_t req[STREAM_PAGES_MAX];	/* pages to request, not yet sent */
	uint32_t nreq;
	bool eoc_sent, source_done, conn_dead;
	bool pausable;			/* the failure is the connection's: end PAUSED, not failed */
	bool lose_end_of_copy;		/* x-lose-end-of-copy */
	uint64_t done_deadline;		/* POSTCOPY_DONE came with urgent pages still on their way */
	const struct verify *v;		/* verify on: the source's digests (read only), else NULL */
	uint64_t zero_digest;
	const struct sock_fprog *filter;	/* the seccomp filter, built before the fork */
	char err[FAULTSRV_ERR_MAX];
};

static uint64_t nwords(uint64_t nbits)
{
	return (nbits + 63) / 64;
}

static void bump(uint64_t *counter, uint64_t n)
{
	__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

static int fail(struct server *s, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(struct server *s, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	return err;
}

static void send_ctl(int fd, uint32_t type, const char *text)
{
	struct faultsrv_msg msg = { .type = type };

	if (text) {
		snprintf(msg.text, sizeof(msg.text), "%s", text);
		msg.len = (uint32_t)strlen(msg.text);
	}
	/* The VMM may be gone: nothing to do about it but go too. */
	send(fd, &msg, sizeof(msg), MSG_NOSIGNAL);
}

/* ---- latency ---- */

static void latency_add(struct faultsrv_latency *l, uint64_t ns)
{
	uint64_t us = ns / 1000;
	int b = us < 2 ? 0 : 63 - __builtin_clzll(us);

	if (b >= FAULTSRV_LAT_BUCKETS)
		b = FAULTSRV_LAT_BUCKETS - 1;
	bump(&l->bucket[b], 1);
	if (!l->count || ns < l->min_ns)
		__atomic_store_n(&l->min_ns, ns, __ATOMIC_RELAXED);
	if (ns > l->max_ns)
		__atomic_store_n(&l->max_ns, ns, __ATOMIC_RELAXED);
	bump(&l->sum_ns, ns);
	if (l->count < FAULTSRV_LAT_SAMPLES)
		__atomic_store_n(&l->sample_us[l->count], us > UINT32_MAX ? UINT32_MAX : (uint32_t)us,
				 __ATOMIC_RELAXED);
	/* Last: a reader never sees a count above what the buckets and samples hold. */
	bump(&l->count, 1);
}

size_t faultsrv_latency_samples(const struct faultsrv_shared *sh, uint32_t *out, size_t max)
{
	uint64_t count = __atomic_load_n(&sh->lat.count, __ATOMIC_ACQUIRE);
	size_t i, n = count < FAULTSRV_LAT_SAMPLES ? (size_t)count : FAULTSRV_LAT_SAMPLES;

	if (n > max)
		n = max;
	for (i = 0; i < n; i++)
		out[i] = __atomic_load_n(&sh->lat.sample_us[i], __ATOMIC_RELAXED);
	return n;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t faultsrv_latency_percentile(const struct faultsrv_shared *sh, double p)
{
	const struct faultsrv_latency *l = &sh->lat;
	uint64_t count = __atomic_load_n(&l->count, __ATOMIC_ACQUIRE), cum = 0, rank, min_us, max_us;
	double r;
	int i;

	if (!count)
		return 0;
	p = p < 0 ? 0 : p > 100 ? 100 : p;
	r = p * (double)count / 100;
	rank = (uint64_t)r;
	if ((double)rank < r)
		rank++;
	if (!rank)
		rank = 1;
	if (count <= FAULTSRV_LAT_SAMPLES) {
		uint32_t *v = malloc(count * sizeof(*v));

		if (v) {
			uint64_t x;

			faultsrv_latency_samples(sh, v, count);
			qsort(v, count, sizeof(*v), cmp_u32);
			x = v[rank - 1];
			free(v);
			return x;
		}
	}
	min_us = __atomic_load_n(&l->min_ns, __ATOMIC_RELAXED) / 1000;
	max_us = __atomic_load_n(&l->max_ns, __ATOMIC_RELAXED) / 1000;
	for (i = 0; i < FAULTSRV_LAT_BUCKETS; i++) {
		uint64_t c = __atomic_load_n(&l->bucket[i], __ATOMIC_RELAXED), lo, hi, v;

		if (c && cum + c >= rank) {
			/* Linear within the bucket, and never outside what was seen. */
			lo = i ? 1ULL << i : 0;
			hi = 2ULL << i;
			v = lo + (hi - lo) * (rank - cum) / c;
			return v < min_us ? min_us : v > max_us ? max_us : v;
		}
		cum += c;
	}
	return max_us;
}

/* ---- requested pages and their faults ---- */

static void pending_add(struct server *s, uint64_t page, uint64_t now)
{
	struct faultsrv_shared *sh = s->sh;
	uint32_t i, n = sh->npending;

	for (i = 0; i < n; i++)
		if (sh->pending[i].page == page) {
			sh->pending[i].nwait++;
			sh->pending[i].sum_ns += now;
			return;
		}
	if (n == FAULTSRV_PENDING_MAX) {
		bump(&sh->untimed, 1);
		return;
	}
	sh->pending[n] = (struct faultsrv_pending){ page, now, now, 1 };
	__atomic_store_n(&sh->npending, n + 1, __ATOMIC_RELAXED);
}

/* @page, requested, was placed at @now: account for every fault that waited on it. */
static void pending_done(struct server *s, uint64_t page, uint64_t now)
{
	struct faultsrv_shared *sh = s->sh;
	uint32_t i, n = sh->npending;

	for (i = 0; i < n; i++) {
		struct faultsrv_pending *p = &sh->pending[i];

		if (p->page != page)
			continue;
		latency_add(&sh->lat, now - p->first_ns);
		bump(&sh->blocked_ns, p->nwait * now - p->sum_ns);
		*p = sh->pending[n - 1];
		__atomic_store_n(&sh->npending, n - 1, __ATOMIC_RELAXED);
		return;
	}
}

/* ---- the source ---- */

static int flush_requests(struct server *s)
{
	uint32_t hdr[2] = { s->nreq, 0 };
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { s->req, 8 * (size_t)s->nreq } };
	int ret;

	if (!s->nreq)
		return 0;
	ret = stream_write_record(&s->main->tx, REC_PAGE_REQUEST, iov, 2);
	if (ret) {
		s->conn_dead = true;
		s->pausable = true;
		return fail(s, ret, "cannot request pages from the source: %s", strerror(-ret));
	}
	bump(&s->sh->requests, 1);
	__atomic_store_n(&s->sh->bytes_out, s->main->tx.bytes_out, __ATOMIC_RELAXED);
	__atomic_store_n(&s->sh->last_io_ns, stream_now_ns(), __ATOMIC_RELAXED);
	s->nreq = 0;
	return 0;
}

/* One fault on page @i, read at @now. */
static int fault_page(struct server *s, uint64_t i, uint64_t now)
{
	void *hva = s->ram + (i << PAGE_SHIFT);
	int ret;

	if (bitmap_test(&s->received, i)) {
		/*
		 * Either the fault raced with its page being placed (then the page
		 * is there: EEXIST, and a wake to be sure nobody is left asleep), or
		 * the page is valid here and was never written: it is zero.
		 */
		/* On memfd RAM the file has the page (written, or allocated and never written: zero). */
		ret = s->memfd >= 0 ? uffd_continue(s->uffd, hva, PAGE_SIZE) : uffd_zeropage(s->uffd, hva, PAGE_SIZE);
		if (!ret)
			bump(&s->sh->local_zero, 1);
		else if (ret == -EEXIST)
			ret = uffd_wake(s->uffd, hva, PAGE_SIZE);
		/* After DONE the VMM unregisters RAM, which wakes every waiter itself. */
		else if (ret == -ENOENT && s->eoc_sent)
			ret = 0;
		if (ret)
			return fail(s, ret, "cannot resolve a fault on page %llu: %s", (unsigned long long)i,
				    strerror(-ret));
		return 0;
	}
	pending_add(s, i, now);
	if (bitmap_test(&s->requested, i))
		return 0;
	bitmap_set_atomic(&s->requested, i);
	bump(&s->sh->requested, 1);
	s->req[s->nreq++] = i;
	return s->nreq == STREAM_PAGES_MAX ? flush_requests(s) : 0;
}

static int serve_faults(struct server *s)
{
	struct uffd_msg msg[FAULT_BATCH];
	uintptr_t base = (uintptr_t)s->ram, end = base + (s->npages << PAGE_SHIFT);
	int ret;

	for (;;) {
		ssize_t n = read(s->uffd, msg, sizeof(msg));
		uint64_t now = stream_now_ns();
		size_t i;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0)
			return fail(s, -errno, "cannot read faults from the userfaultfd: %s", strerror(errno));
		if (n == 0 || n % (ssize_t)sizeof(msg[0]))
			return fail(s, -EIO, "short read from the userfaultfd (%zd bytes)", n);
		for (i = 0; i < (size_t)n / sizeof(msg[0]); i++) {
			uintptr_t addr = (uintptr_t)msg[i].arg.pagefault.address & ~(uintptr_t)(PAGE_SIZE - 1);

			if (msg[i].event != UFFD_EVENT_PAGEFAULT)
				return fail(s, -EPROTO, "unexpected userfaultfd event 0x%x", msg[i].event);
			if (addr < base || addr >= end)
				return fail(s, -EFAULT, "fault at 0x%llx, outside guest RAM",
					    (unsigned long long)msg[i].arg.pagefault.address);
			bump(&s->sh->faults, 1);
			ret = fault_page(s, (addr - base) >> PAGE_SHIFT, now);
			if (ret)
				return ret;
		}
		/* Fewer than asked for: the queue is empty (a read more would only say EAGAIN). */
		if ((size_t)n < sizeof(msg))
			break;
	}
	return flush_requests(s);
}

/* A page is here now: account for it, and for every fault that waited on it. */
static void page_placed(struct server *s, uint64_t idx, uint32_t flags)
{
	struct faultsrv_shared *sh = s->sh;

	bitmap_set_atomic(&s->received, idx);
	bump(flags & PAGES_F_REQUESTED ? &sh->placed_requested : &sh->placed_pushed, 1);
	bump(&sh->received, 1);
	if (bitmap_test(&s->requested, idx))
		pending_done(s, idx, stream_now_ns());
}

/*
 * verify on: page @idx is about to be placed with @data (NULL: a zero page);
 * it must be what the source had at the switch.
 */
static int check_page(struct server *s, uint64_t idx, const void *data, uint32_t flags)
{
	if (!s->v)
		return 0;
	bump(&s->sh->verified, 1);
	if ((data ? verify_page_digest(data) : s->zero_digest) == s->v->digest[idx])
		return 0;
	bump(&s->sh->verify_bad, 1);
	return fail(s, -EBADMSG, "verify: page %llu (gpa 0x%llx, %s after the switch) differs from the source's",
		    (unsigned long long)idx, (unsigned long long)ram_index_to_gpa(s->v->ram, idx),
		    flags & PAGES_F_REQUESTED ? "requested" : "pushed");
}

#define CHECK_FAIL(...) (snprintf(err, errlen, __VA_ARGS__), -EPROTO)

int faultsrv_check_pages(const struct stream_rec *rec, uint64_t npages, uint32_t *count, uint32_t *flags,
			 char *err, size_t errlen)
{
	const uint8_t *p = rec->payload;
	uint64_t ndata = 0, e;
	uint32_t i;

	memcpy(count, p, 4);
	memcpy(flags, p + 4, 4);
	if (!*count || *count > STREAM_PAGES_MAX || rec->len < 8 + 8ULL * *count)
		return CHECK_FAIL("RAM_PAGES record with a bad page count (%u)", *count);
	if (*flags & ~PAGES_F_REQUESTED)
		return CHECK_FAIL("RAM_PAGES record with unknown flags 0x%x", *flags);
	for (i = 0; i < *count; i++) {
		memcpy(&e, p + 8 + 8ULL * i, 8);
		if (e >> 1 >= npages)
			return CHECK_FAIL("page index %llu outside RAM (%llu pages)", (unsigned long long)(e >> 1),
					  (unsigned long long)npages);
		ndata += !(e & PAGE_ENTRY_ZERO);
	}
	if (rec->len != 8 + 8ULL * *count + ndata * PAGE_SIZE)
		return CHECK_FAIL("RAM_PAGES record of %u bytes does not hold its %llu pages", rec->len,
				  (unsigned long long)ndata);
	return 0;
}

int faultsrv_check_zero(const struct stream_rec *rec, uint64_t npages, uint32_t *count, uint32_t *flags,
			char *err, size_t errlen)
{
	const uint8_t *p = rec->payload;
	uint64_t first, n;

	if (rec->len < 8)
		return CHECK_FAIL("ZERO_PAGES record too short (%u bytes)", rec->len);
	memcpy(count, p, 4);
	memcpy(flags, p + 4, 4);
	if (!*count || rec->len != 8 + 16ULL * *count)
		return CHECK_FAIL("ZERO_PAGES record of %u bytes with %u ranges", rec->len, *count);
	if (*flags & ~PAGES_F_REQUESTED)
		return CHECK_FAIL("ZERO_PAGES record with unknown flags 0x%x", *flags);
	if (stream_check_ranges(p + 8, *count, npages, &first, &n))
		return CHECK_FAIL("zero range %llu+%llu outside RAM (%llu pages)", (unsigned long long)first,
				  (unsigned long long)n, (unsigned long long)npages);
	return 0;
}

/*
 * Memfd RAM: write @n pages from @idx into the file (@data; NULL: zero
 * pages, which they are already) and show them in the guest's mapping.
 * Only pages not received come here: the guest's mapping does not show
 * them (no PTE: CONTINUE would say EEXIST), so nobody sees one half
 * written, and the file holds them allocated and never written, zero
 * (the destination gave every page it had written and then lost to a
 * DISCARD back to the file: ram_discard()).
 */
static int place_minor(struct server *s, uint64_t idx, const uint8_t *data, uint64_t n)
{
	size_t len = n * PAGE_SIZE, done = 0;
	off_t off = (off_t)(idx << PAGE_SHIFT);

	while (data && done < len) {
		ssize_t w = pwrite(s->memfd, data + done, len - done, off + (off_t)done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		done += (size_t)w;
	}
	return uffd_continue(s->uffd, s->ram + (idx << PAGE_SHIFT), len);
}

/* Place @n pages from @idx: a copy of @data, or zero pages if @data is NULL; 0 or -errno (s->err set). */
static int place_run(struct server *s, uint64_t idx, const uint8_t *data, uint64_t n)
{
	void *hva = s->ram + (idx << PAGE_SHIFT);
	int ret = s->memfd >= 0 ? place_minor(s, idx, data, n) :
		  data ? uffd_copy(s->uffd, hva, data, n * PAGE_SIZE) : uffd_zeropage(s->uffd, hva, n * PAGE_SIZE);

	if (ret == -EEXIST && n > 1) {
		/* Cannot happen (one thread places, after checking): be exact all the same, a page at a time. */
		for (uint64_t k = 0; k < n; k++) {
			ret = place_run(s, idx + k, data ? data + k * PAGE_SIZE : NULL, 1);
			if (ret)
				return ret;
		}
		return 0;
	}
	if (ret == -EEXIST) {
		bump(&s->sh->present, 1);
		return 0;
	}
	if (ret)
		return fail(s, ret, "cannot place page %llu%s: %s", (unsigned long long)idx,
			    n > 1 ? " and those after it" : "", strerror(-ret));
	if (!data)
		bump(&s->sh->zero_placed, n);
	return 0;
}

/*
 * Place entries of the RAM_PAGES record in @w, from w->i on, until @budget
 * pages have been placed (or skipped) or the record is done (w->active
 * cleared).  The record was checked whole when it arrived.
 */
static int place_pages(struct server *s, struct placing *w, uint32_t budget)
{
	const uint8_t *p = w->rec.payload;
	struct faultsrv_shared *sh = s->sh;
	uint32_t run;

	for (; w->i < w->count && budget; w->i += run) {
		const uint8_t *data = p + w->data_off;
		uint64_t e, idx, next;
		bool zero;
		int ret;

		memcpy(&e, p + 8 + 8ULL * w->i, 8);
		idx = e >> 1;
		zero = e & PAGE_ENTRY_ZERO;
		run = 1;
		if (bitmap_test(&s->received, idx)) {
			/* Pushed and requested both, or sent twice: placing it again could only be wrong. */
			bump(&sh->duplicates, 1);
			w->data_off += zero ? 0 : PAGE_SIZE;
			budget--;
			continue;
		}
		/*
		 * Data pages at consecutive indexes, none here yet, are consecutive
		 * in the record too: one UFFDIO_COPY for the run (the kernel's cost
		 * is per call more than per page), within the budget.
		 */
		while (!zero && w->i + run < w->count && run < budget) {
			memcpy(&next, p + 8 + 8ULL * (w->i + run), 8);
			if ((next & PAGE_ENTRY_ZERO) || next >> 1 != idx + run || bitmap_test(&s->received, idx + run))
				break;
			run++;
		}
		for (uint32_t k = 0; k < run; k++) {
			ret = check_page(s, idx + k, zero ? NULL : data + (size_t)k * PAGE_SIZE, w->flags);
			if (ret)
				return ret;
		}
		ret = place_run(s, idx, zero ? NULL : data, run);
		if (ret)
			return ret;
		for (uint32_t k = 0; k < run; k++)
			page_placed(s, idx + k, w->flags);
		w->data_off += zero ? 0 : (size_t)run * PAGE_SIZE;
		budget -= run;
	}
	w->active = w->i < w->count;
	return 0;
}

/* Zero-fill runs of missing pages of the ZERO_PAGES record in @w, from range w->i, page w->j, up to @budget pages. */
static int place_zero(struct server *s, struct placing *w, uint32_t budget)
{
	const uint8_t *p = w->rec.payload;

	for (; w->i < w->count && budget; w->i++, w->j = 0) {
		uint64_t first, n, end, k;

		memcpy(&first, p + 8 + 16ULL * w->i, 8);
		memcpy(&n, p + 16 + 16ULL * w->i, 8);
		/* One ioctl per run of missing pages, at most @budget long; those here already are duplicates. */
		for (w->j = w->j ? w->j : first; w->j < first + n && budget; w->j = end) {
			int ret;

			if (bitmap_test(&s->received, w->j)) {
				bump(&s->sh->duplicates, 1);
				end = w->j + 1;
				budget--;
				continue;
			}
			for (end = w->j + 1; end < first + n && end - w->j < budget && !bitmap_test(&s->received, end);
			     end++)
				;
			for (k = w->j; k < end; k++) {
				ret = check_page(s, k, NULL, w->flags);
				if (ret)
					return ret;
			}
			ret = place_run(s, w->j, NULL, end - w->j);
			if (ret)
				return ret;
			for (k = w->j; k < end; k++)
				page_placed(s, k, w->flags);
			budget -= (uint32_t)(end - w->j);
		}
		if (w->j < first + n)
			break;	/* the budget ran out inside this range */
	}
	w->active = w->i < w->count;
	return 0;
}

/* Check a RAM_PAGES or ZERO_PAGES record whole and make it the work of @w. */
static int placing_start(struct server *s, struct placing *w, const struct stream_rec *rec)
{
	int ret = rec->type == REC_RAM_PAGES ?
		  faultsrv_check_pages(rec, s->npages, &w->count, &w->flags, s->err, sizeof(s->err)) :
		  faultsrv_check_zero(rec, s->npages, &w->count, &w->flags, s->err, sizeof(s->err));

	if (ret)
		return ret;
	w->rec = *rec;
	w->i = 0;
	w->j = 0;
	w->data_off = 8 + 8ULL * w->count;
	w->active = true;
	return 0;
}

/* Go on with the record in @w for at most @budget pages. */
static int placing_step(struct server *s, struct placing *w, uint32_t budget)
{
	return w->rec.type == REC_RAM_PAGES ? place_pages(s, w, budget) : place_zero(s, w, budget);
}

static int serve_record(struct server *s)
{
	struct stream_rec rec;
	char err[FAULTSRV_ERR_MAX - 64];
	uint64_t missing;
	int ret;

	ret = stream_read_some(&s->main->rx, &s->rx, &rec, s->buf, PAGES_REC_MAX, err, sizeof(err));
	if (ret == 0)
		return 0;	/* more to come */
	if (ret < 0) {
		s->conn_dead = ret == -EPIPE || ret == -ECONNRESET;
		s->pausable = stream_error_is_link(ret);
		return fail(s, ret, "connection to the source: %s", err);
	}
	__atomic_store_n(&s->sh->bytes_in, s->main->rx.bytes_in + s->urgent->rx.bytes_in, __ATOMIC_RELAXED);
	__atomic_store_n(&s->sh->last_io_ns, stream_now_ns(), __ATOMIC_RELAXED);
	switch (rec.type) {
	case REC_RAM_PAGES:
	case REC_ZERO_PAGES:
		ret = placing_start(s, &s->push, &rec);
		/* Requested pages (no urgent channel) go in at once; pushed ones a slice at a time (server_loop). */
		if (!ret && (s->push.flags & PAGES_F_REQUESTED))
			ret = placing_step(s, &s->push, UINT32_MAX);
		return ret;
	case REC_POSTCOPY_DONE:
		s->source_done = true;
		/* Requested pages may still be on their way on the urgent channel. */
		missing = s->npages - s->sh->received;
		if (missing && s->urgent->fd < 0)
			return fail(s, -EPROTO, "the source says it has sent every page, but %llu never arrived",
				    (unsigned long long)missing);
		s->done_deadline = stream_now_ns() + DONE_WAIT_NS;
		return 0;
	case REC_ERROR: {
		char text[FAULTSRV_ERR_MAX - 32];

		s->conn_dead = true;
		stream_sanitize(text, sizeof(text), rec.payload, rec.len);
		return fail(s, -ECONNABORTED, "the source failed: %s", text);
	}
	default:
		return fail(s, -EPROTO, "unexpected %s record after the switch to postcopy",
			    stream_rec_name(rec.type));
	}
}

/* ---- the VMM ---- */

static int serve_control(struct server *s)
{
	struct faultsrv_msg msg;
	ssize_t n = recv(s->ctl, &msg, sizeof(msg), MSG_DONTWAIT);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0)
		return fail(s, -ESHUTDOWN, "the destination VMM went away");
	if (msg.type == FAULTSRV_CMD_PAUSE) {
		s->pausable = true;
		return fail(s, -ECONNABORTED, "paused by migrate_pause");
	}
	return 0;
}

static void server_finish(struct server *s)
{
	/*
	 * Every page is here: if the source has gone meanwhile, the guest does
	 * not care.  x-lose-end-of-copy: as if it were lost on the way.
	 */
	if (!s->lose_end_of_copy && stream_write(&s->main->tx, REC_END_OF_COPY, NULL, 0))
		s->source_done = true;
	__atomic_store_n(&s->sh->bytes_out, s->main->tx.bytes_out, __ATOMIC_RELAXED);
	__atomic_store_n(&s->sh->cpu_ns, stream_thread_cpu_ns(), __ATOMIC_RELAXED);
	__atomic_store_n(&s->sh->status, FAULTSRV_COMPLETE, __ATOMIC_RELEASE);
	send_ctl(s->ctl, FAULTSRV_MSG_DONE, NULL);
	s->eoc_sent = true;
}

/* The urgent channel: requested pages.  1 when it has ended as it should. */
static int serve_urgent(struct server *s)
{
	struct placing w;
	struct stream_rec rec;
	char err[FAULTSRV_ERR_MAX - 64];
	int ret;

	for (;;) {
		ret = stream_read_some(&s->urgent->rx, &s->urx, &rec, s->ubuf, PAGES_REC_MAX, err, sizeof(err));
		if (ret == 0)
			return 0;
		if (ret < 0) {
			/* The source closes it once every page is here, or after saying so. */
			if (s->eoc_sent || s->source_done)
				return 1;
			s->pausable = stream_error_is_link(ret);
			return fail(s, ret, "urgent channel from the source: %s", err);
		}
		__atomic_store_n(&s->sh->bytes_in, s->main->rx.bytes_in + s->urgent->rx.bytes_in, __ATOMIC_RELAXED);
		__atomic_store_n(&s->sh->last_io_ns, stream_now_ns(), __ATOMIC_RELAXED);
		if (rec.type != REC_RAM_PAGES && rec.type != REC_ZERO_PAGES)
			return fail(s, -EPROTO, "unexpected %s record on the urgent channel",
				    stream_rec_name(rec.type));
		ret = placing_start(s, &w, &rec);
		if (!ret)
			ret = placing_step(s, &w, UINT32_MAX);
		if (ret)
			return ret;
	}
}

/*
 * A server after the first: the one before may have asked for pages that
 * never came, and read faults it never answered (the vCPUs sleep on them,
 * and the userfaultfd will not report them again).  Ask again for every
 * page requested and not received, then wake every fault: a vCPU whose page
 * is still missing faults again, and that fault is read here.
 */
static int server_resume(struct server *s)
{
	struct faultsrv_shared *sh = s->sh;
	uint64_t i;
	uint32_t k;
	int ret;

	/* Their waits go on: the time since the first fault counts, but a woken vCPU's new fault is no new wait. */
	for (k = 0; k < sh->npending; k++) {
		sh->pending[k].nwait = 0;
		sh->pending[k].sum_ns = 0;
	}
	for (i = bitmap_next_set(&s->requested, 0); i < s->npages; i = bitmap_next_set(&s->requested, i + 1)) {
		if (bitmap_test(&s->received, i))
			continue;
		s->req[s->nreq++] = i;
		if (s->nreq == STREAM_PAGES_MAX && (ret = flush_requests(s)))
			return ret;
	}
	ret = flush_requests(s);
	if (ret)
		return ret;
	ret = uffd_wake(s->uffd, s->ram, s->npages << PAGE_SHIFT);
	return ret ? fail(s, ret, "cannot wake the faults of the fault server before: %s", strerror(-ret)) : 0;
}

static int server_loop(struct server *s)
{
	uint64_t deadline = 0, now;
	bool urgent = s->urgent->fd >= 0;
	int ret;

	if (s->sh->generation > 1 && (ret = server_resume(s)))
		return ret;

	for (;;) {
		struct pollfd p[4] = {
			{ .fd = s->uffd, .events = POLLIN },
			{ .fd = urgent ? s->urgent->fd : -1, .events = POLLIN },
			/* Its next record waits until the one being placed is done (they share s->buf). */
			{ .fd = s->push.active ? -1 : s->main->fd, .events = POLLIN },
			{ .fd = s->ctl, .events = POLLIN },
		};
		int timeout = -1, n;

		if (!s->eoc_sent && __atomic_load_n(&s->sh->received, __ATOMIC_RELAXED) == s->npages) {
			server_finish(s);
			deadline = stream_now_ns() + DRAIN_NS;
		}
		now = stream_now_ns();
		if (s->eoc_sent) {
			if (s->source_done || now >= deadline)
				return 0;
			timeout = (int)((deadline - now) / 1000000) + 1;
		} else if (s->source_done) {
			if (now >= s->done_deadline)
				return fail(s, -EPROTO, "the source says it has sent every page, but %llu never arrived",
					    (unsigned long long)(s->npages - s->sh->received));
			timeout = (int)((s->done_deadline - now) / 1000000) + 1;
		}
		if (s->push.active)
			timeout = 0;
		n = poll(p, 4, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail(s, -errno, "poll: %s", strerror(errno));
		if (p[3].revents && (ret = serve_control(s)))
			return ret;
		if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL))
			return fail(s, -EIO, "the userfaultfd failed");
		/* Faults first, then the pages they wait for, then a slice of pushed pages. */
		if ((p[0].revents & POLLIN) && (ret = serve_faults(s)))
			return ret;
		if (p[1].revents) {
			ret = serve_urgent(s);
			if (ret == 1)
				urgent = false;
			else if (ret)
				return s->eoc_sent ? 0 : ret;
		}
		ret = 0;
		if (s->push.active)
			ret = placing_step(s, &s->push, PUSH_SLICE);
		else if (p[2].revents)
			ret = serve_record(s);
		/* Once every page is here, the source may end as it likes. */
		if (ret)
			return s->eoc_sent ? 0 : ret;
	}
}

/* Close every descriptor above stderr but the five the server uses (-1: none). */
static void close_others(int a, int b, int c, int d, int e)
{
	int keep[5] = { a, b, c, d, e }, i, j, t;
	unsigned int lo = 3;
	long max = sysconf(_SC_OPEN_MAX);

	for (i = 0; i < 5; i++)
		for (j = i + 1; j < 5; j++)
			if (keep[j] < keep[i]) {
				t = keep[i];
				keep[i] = keep[j];
				keep[j] = t;
			}
	for (i = 0; i <= 5; i++) {
		unsigned int hi = i < 5 ? (unsigned int)keep[i] : ~0U, fd;

		if (i < 5 && keep[i] < (int)lo)
			continue;
		if (hi > lo && close_range(lo, hi - 1, 0) && errno == ENOSYS)
			for (fd = lo; fd < hi && (long)fd < max; fd++)
				close((int)fd);
		lo = hi + 1;
	}
}

/*
 * The server parses the network, so it keeps only what its loop needs: the
 * syscalls below (anything else kills it with SIGSYS, which the VMM reports
 * as the server's failure), no capabilities, no new privileges.  The filter
 * is built by the VMM before the fork (libseccomp allocates, and the child
 * of a threaded process must not) and installed here with one prctl().
 */
static const int server_syscalls[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(writev), SCMP_SYS(recvfrom), SCMP_SYS(sendto), SCMP_SYS(pwrite64),
	SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(ioctl), SCMP_SYS(fcntl), SCMP_SYS(close),
	SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep), SCMP_SYS(sched_yield),
	SCMP_SYS(rt_sigreturn), SCMP_SYS(restart_syscall), SCMP_SYS(exit), SCMP_SYS(exit_group),
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
	/* A sanitizer's runtime maps memory and reports through these. */
	SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mprotect), SCMP_SYS(madvise), SCMP_SYS(getpid),
	SCMP_SYS(gettid), SCMP_SYS(tgkill), SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(sigaltstack), SCMP_SYS(prctl), SCMP_SYS(openat), SCMP_SYS(readlink), SCMP_SYS(getrlimit),
	SCMP_SYS(prlimit64), SCMP_SYS(futex), SCMP_SYS(sched_getaffinity),
#endif
};

int faultsrv_filter_build(struct faultsrv *fs)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int ret = ctx ? 0 : -ENOMEM, fd = -1;
	ssize_t n;
	size_t i;

	for (i = 0; !ret && i < sizeof(server_syscalls) / sizeof(server_syscalls[0]); i++)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, server_syscalls[i], 0);
	if (!ret)
		fd = memfd_create("vmm-faultsrv-filter", MFD_CLOEXEC);
	if (!ret && fd < 0)
		ret = -errno;
	if (!ret)
		ret = seccomp_export_bpf(ctx, fd);
	if (!ret && (n = pread(fd, fs->filter_insn, sizeof(fs->filter_insn), 0)) > 0 &&
	    (size_t)n < sizeof(fs->filter_insn) && n % sizeof(struct sock_filter) == 0)
		fs->filter_len = (unsigned short)(n / sizeof(struct sock_filter));
	else if (!ret)
		ret = -E2BIG;
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	if (ret)
		snprintf(fs->err, sizeof(fs->err), "cannot build the fault server's seccomp filter: %s", strerror(-ret));
	return ret;
}

/* No capabilities, no new privileges, only the loop's syscalls: from here on. */
static int server_confine(struct server *s)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3] = { { 0, 0, 0 } };
	int cap;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return fail(s, -errno, "cannot set no_new_privs: %s", strerror(errno));
	/* The bounding set first: dropping it needs CAP_SETPCAP, which goes next. */
	for (cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
		prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
	if (syscall(SYS_capset, &hdr, none))
		return fail(s, -errno, "cannot drop capabilities: %s", strerror(errno));
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, s->filter, 0, 0))
		return fail(s, -errno, "cannot install the seccomp filter: %s", strerror(errno));
	return 0;
}

static int server_setup(struct server *s)
{
	struct sigaction ign = { .sa_handler = SIG_IGN };
	sigset_t none;
	int flags;

	prctl(PR_SET_NAME, "vmm-faultsrv");
	/*
	 * The VMM answers the terminal's signals; the server ends when the VMM
	 * does (control socket EOF).  Not PR_SET_PDEATHSIG: it fires when the
	 * forking *thread* exits, and the migration thread that forks us will.
	 * SIGPIPE ignored: a dead connection must be an error we can report.
	 */
	sigaction(SIGINT, &ign, NULL);
	sigaction(SIGQUIT, &ign, NULL);
	sigaction(SIGHUP, &ign, NULL);
	sigaction(SIGPIPE, &ign, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/*
	 * Inherited descriptors would keep things alive that must die with the
	 * VMM (KVM, sockets, the VMM's own end of the control socket, which is
	 * how we learn it has gone).
	 */
	if (s->memfd >= 0)
		__atomic_store_n(&s->sh->placed_by_continue, 1, __ATOMIC_RELAXED);
	close_others(s->uffd, s->main->fd, s->ctl, s->urgent->fd, s->memfd);
	/* Writes block (a record is written whole); reads take what is there (MSG_DONTWAIT). */
	for (int i = 0; i < 2; i++) {
		int fd = i ? s->urgent->fd : s->main->fd;

		if (fd < 0)
			continue;
		flags = fcntl(fd, F_GETFL);
		if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK))
			return fail(s, -errno, "the migration connection: %s", strerror(errno));
	}
	/* mmap, not malloc: another VMM thread may have held the allocator's lock at fork. */
	s->buf = mmap(NULL, 2 * PAGES_REC_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s->buf == MAP_FAILED)
		return fail(s, -ENOMEM, "cannot allocate a record buffer");
	s->ubuf = s->buf + PAGES_REC_MAX;
	if (s->v)
		s->zero_digest = verify_page_digest(s->buf);	/* fresh from mmap: zeros */
	if (server_confine(s))
		return -EPERM;
	send_ctl(s->ctl, FAULTSRV_MSG_READY, NULL);
	return 0;
}

static void __attribute__((noreturn)) server_main(struct server *s)
{
	int ret = server_setup(s);

	if (!ret)
		ret = server_loop(s);
	if (!ret)
		_exit(0);
	snprintf(s->sh->error, sizeof(s->sh->error), "%s", s->err);
	if (s->pausable) {
		/* Nothing is lost: the shared map holds what the next server needs; exit closes the connections. */
		send_ctl(s->ctl, FAULTSRV_MSG_PAUSED, s->err);
		_exit(3);
	}
	__atomic_store_n(&s->sh->status, FAULTSRV_FAILED, __ATOMIC_RELEASE);
	send_ctl(s->ctl, FAULTSRV_MSG_ERROR, s->err);
	if (!s->conn_dead && s->main->fd >= 0) {
		/* Best effort, and never blocking on a source that does not read. */
		fcntl(s->main->fd, F_SETFL, O_NONBLOCK);
		stream_write(&s->main->tx, REC_ERROR, s->err, (uint32_t)strlen(s->err));
	}
	_exit(1);
}

/* ---- the VMM's side ---- */

static void reap(struct faultsrv *fs)
{
	int status = 0;
	pid_t r;

	if (fs->pid <= 0 || fs->exited)
		return;
	do
		r = waitpid(fs->pid, &status, 0);
	while (r < 0 && errno == EINTR);
	fs->exited = true;
	/* -1: reaped by someone else (SIGCHLD ignored?); the status is unknown. */
	fs->wait_status = r == fs->pid ? status : -1;
}

static bool exited_ok(const struct faultsrv *fs)
{
	if (fs->wait_status == -1)
		return fs->done && !fs->failed;
	return WIFEXITED(fs->wait_status) && WEXITSTATUS(fs->wait_status) == 0;
}

int faultsrv_poll(struct faultsrv *fs)
{
	struct faultsrv_msg msg;
	ssize_t n;

	if (fs->ctl_fd < 0)
		return -EBADF;
	if (fs->exited)
		return FAULTSRV_MSG_EXITED;
	n = recv(fs->ctl_fd, &msg, sizeof(msg), MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0) {
		/* The server's end closes only when it exits. */
		reap(fs);
		if (!fs->done && !fs->failed) {
			fs->failed = true;
			if (fs->wait_status != -1 && WIFSIGNALED(fs->wait_status))
				snprintf(fs->err, sizeof(fs->err), "the fault server was killed by signal %d (%s)",
					 WTERMSIG(fs->wait_status), strsignal(WTERMSIG(fs->wait_status)));
			else
				snprintf(fs->err, sizeof(fs->err), "the fault server exited (status %d) without a word",
					 fs->wait_status == -1 ? -1 : WEXITSTATUS(fs->wait_status));
		}
		return FAULTSRV_MSG_EXITED;
	}
	if (n != (ssize_t)sizeof(msg) || msg.type < FAULTSRV_MSG_READY || msg.type > FAULTSRV_MSG_PAUSED ||
	    msg.type == FAULTSRV_MSG_EXITED)
		return -EPROTO;
	if (msg.type == FAULTSRV_MSG_DONE)
		fs->done = true;
	if (msg.type == FAULTSRV_MSG_ERROR || msg.type == FAULTSRV_MSG_PAUSED) {
		fs->failed = true;
		msg.text[sizeof(msg.text) - 1] = '\0';
		snprintf(fs->err, sizeof(fs->err), "%s", msg.text);
	}
	return (int)msg.type;
}

/* Wait for control messages up to the monotonic @deadline_ns (0: none); -ETIMEDOUT. */
static int wait_ctl(struct faultsrv *fs, uint64_t deadline_ns)
{
	struct pollfd p = { .fd = fs->ctl_fd, .events = POLLIN };
	uint64_t now = stream_now_ns();
	int n;

	if (deadline_ns && now >= deadline_ns)
		return -ETIMEDOUT;
	n = poll(&p, 1, deadline_ns ? (int)((deadline_ns - now) / 1000000) + 1 : -1);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	return n ? 0 : -ETIMEDOUT;
}

int faultsrv_wait(struct faultsrv *fs, int timeout_ms)
{
	uint64_t deadline = timeout_ms < 0 ? 0 : stream_now_ns() + (uint64_t)timeout_ms * 1000000;
	int ret;

	if (fs->pid <= 0)
		return -ECHILD;
	while (!fs->exited) {
		ret = faultsrv_poll(fs);
		if (ret < 0)
			return ret;
		if (ret)
			continue;
		ret = wait_ctl(fs, deadline);
		if (ret)
			return ret;
	}
	return exited_ok(fs) ? 0 : -EIO;
}

int faultsrv_create(struct faultsrv *fs, uint64_t npages, const struct bitmap *received)
{
	uint64_t words = nwords(npages);
	struct faultsrv_shared *sh;
	int ret, i;

	memset(fs, 0, sizeof(*fs));
	fs->ctl_fd = -1;
	fs->ram_memfd = -1;
	if (!npages || (received && received->nbits != npages)) {
		snprintf(fs->err, sizeof(fs->err), "fault server: %llu pages, a bitmap of %llu",
			 (unsigned long long)npages, (unsigned long long)(received ? received->nbits : 0));
		return -EINVAL;
	}
	fs->shared_size = sizeof(*sh) + 2 * words * sizeof(uint64_t);
	sh = mmap(NULL, fs->shared_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		ret = -errno;
		snprintf(fs->err, sizeof(fs->err), "cannot map the fault server's state: %s", strerror(-ret));
		return ret;
	}
	fs->shared = sh;
	sh->npages = npages;
	for (i = 0; i < FAULTSRV_CHANNELS; i++)
		channel_init(&sh->channels[i], (enum channel_role)i);
	if (received) {
		memcpy(sh->bits, received->words, words * sizeof(uint64_t));
		if (npages % 64)
			sh->bits[words - 1] &= (1ULL << (npages % 64)) - 1;
		sh->had = sh->received = bitmap_count(received);
	}
	return 0;
}

/* The child: the server over @sh, serving @uffd for @ram. */
static void __attribute__((noreturn)) server_child(struct faultsrv *fs, int ctl, int uffd, uint8_t *ram,
						   const struct verify *v)
{
	struct faultsrv_shared *sh = fs->shared;
	struct sock_fprog filter = { fs->filter_len, fs->filter_insn };
	uint64_t words = nwords(sh->npages);
	struct server s;

	memset(&s, 0, sizeof(s));
	s.sh = sh;
	s.main = &sh->channels[CHANNEL_MAIN];
	s.urgent = &sh->channels[CHANNEL_URGENT];
	s.uffd = uffd;
	s.ctl = ctl;
	s.ram = ram;
	s.memfd = fs->ram_memfd;
	s.lose_end_of_copy = fs->x_lose_end_of_copy;
	s.npages = sh->npages;
	s.v = v;
	s.filter = &filter;
	/* Only the server writes them; atomically, for the VMM's readers. */
	s.received = (struct bitmap){ sh->bits, sh->npages };
	s.requested = (struct bitmap){ sh->bits + words, sh->npages };
	server_main(&s);
}

/* Wait for the new server's READY; on failure it is gone. */
static int spawn_wait_ready(struct faultsrv *fs)
{
	uint64_t deadline = stream_now_ns() + START_TIMEOUT_MS * 1000000ULL;
	int ret;

	for (;;) {
		ret = faultsrv_poll(fs);
		if (ret == FAULTSRV_MSG_READY)
			return 0;
		if (ret == FAULTSRV_MSG_ERROR || ret == FAULTSRV_MSG_EXITED) {
			ret = -EIO;
			break;
		}
		if (ret < 0 || (ret = wait_ctl(fs, deadline))) {
			snprintf(fs->err, sizeof(fs->err), "the fault server did not start: %s", strerror(-ret));
			break;
		}
	}
	kill(fs->pid, SIGKILL);
	reap(fs);
	return ret;
}

int faultsrv_spawn(struct faultsrv *fs, struct channel *channels, int nchannels, int uffd, uint8_t *ram,
		   const struct verify *v)
{
	struct faultsrv_shared *sh = fs->shared;
	int sv[2], ret, i;
	pid_t pid;

	if (!fs->filter_len && (ret = faultsrv_filter_build(fs)))
		return ret;
	for (i = 0; i < nchannels; i++) {
		struct channel *c = &sh->channels[channels[i].role];

		/* The server goes on with these sequence numbers; a page request never waits for a rate limit. */
		*c = channels[i];
		c->tx.max_bw = 0;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		ret = -errno;
		snprintf(fs->err, sizeof(fs->err), "cannot create the fault server's control socket: %s",
			 strerror(-ret));
		return ret;
	}
	/* Another server on this map: the last one has ended (reaped), its control socket goes. */
	if (fs->ctl_fd >= 0) {
		close(fs->ctl_fd);
		fs->ctl_fd = -1;
	}
	fs->done = fs->failed = fs->exited = false;
	fs->err[0] = '\0';
	fs->pid = 0;
	sh->generation++;
	sh->last_io_ns = stream_now_ns();
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		close(sv[0]);
		close(sv[1]);
		snprintf(fs->err, sizeof(fs->err), "cannot fork the fault server: %s", strerror(-ret));
		return ret;
	}
	if (pid == 0) {
		close(sv[0]);
		server_child(fs, sv[1], uffd, ram, v);
	}
	close(sv[1]);
	fs->pid = pid;
	fs->ctl_fd = sv[0];
	ret = spawn_wait_ready(fs);
	if (ret)
		return ret;	/* gone for good: the caller keeps the channels */
	for (i = 0; i < nchannels; i++)
		channel_close(&channels[i]);	/* the server's now */
	return 0;
}

void faultsrv_pause(struct faultsrv *fs)
{
	struct faultsrv_msg msg = { .type = FAULTSRV_CMD_PAUSE };

	if (fs->ctl_fd >= 0 && !fs->exited)
		send(fs->ctl_fd, &msg, sizeof(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
}

void faultsrv_destroy(struct faultsrv *fs)
{
	if (fs->pid > 0 && !fs->exited) {
		kill(fs->pid, SIGKILL);
		reap(fs);
	}
	if (fs->shared) {
		if (fs->ctl_fd >= 0)
			close(fs->ctl_fd);
		munmap(fs->shared, fs->shared_size);
	}
	fs->shared = NULL;
	fs->ctl_fd = -1;
	fs->pid = 0;
}
