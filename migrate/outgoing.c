// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The source side of a migration: precopy.
 *
 *	setup	  connect, send the header, wait for the destination to accept
 *		  it (a destination with another shape refuses here), open the
 *		  urgent channel for postcopy, start dirty logging
 *	iterate	  round 1 sends every non-zero page; each later round syncs
 *		  the dirty log and sends what was dirtied.  After each sync
 *		  the rest is priced at the bandwidth measured in the last
 *		  round; once it fits the downtime limit (or max-rounds is
 *		  reached) the loop ends, or, for postcopy, it switches
 *		  (postcopy.c).  A snapshot (file:) also ends it before the
 *		  file could outgrow the guest's RAM (snapshot_full())
 *	complete  pause the vCPUs, send the last dirty pages, the machine
 *		  state and END; the destination loads it, starts, and
 *		  acknowledges; the source stays paused
 *	cleanup	  stop dirty logging; on any failure before the destination
 *		  acknowledged, resume the vCPUs: the guest never stops for good
 *
 * Pages are copied into a record buffer before being sent: the test hooks
 * (x-corrupt-page, x-drop-page) need the bytes that went; the guest may write
 * a page while it is on its way (the dirty log has the write; it is sent
 * again).  Page data is not checksummed (stream.h says why).
 *
 * The state of the source lives in struct outgoing (outgoing.h), hung from
 * the struct migration for as long as the migration runs; the connections
 * are the migration's channels, so migrate_cancel reaches them.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate/channel.h"
#include "migrate/migration.h"
#include "migrate/multifd.h"
#include "migrate/outgoing.h"
#include "migrate/postcopy.h"
#include "migrate/state.h"
#include "migrate/stream.h"
#include "vmm/dirty.h"
#include "vmm/log.h"
#include "vmm/vm.h"

#define SWITCH_NOW 1		/* iterate(): switch to postcopy instead of completing */
#define SNAPSHOT_MAX_ROUNDS 4	/* file: stops the guest for the rest after this many rounds at most */

/* Read a record the destination sent on the return path; 0 or -errno with o->err set. */
static int return_path_read(struct outgoing *o, uint32_t *ack)
{
	char buf[STREAM_ERROR_MAX + 1], err[256];
	struct stream_rec rec;
	int ret;

	ret = stream_read_record(&o->main->rx, &rec, buf, sizeof(buf) - 1, err, sizeof(err));
	if (ret) {
		snprintf(o->err, sizeof(o->err), "return path: %s", err);
		return ret;
	}
	if (rec.type == REC_ERROR) {
		char text[401];

		stream_sanitize(text, sizeof(text), buf, rec.len);
		snprintf(o->err, sizeof(o->err), "the destination refused: %s", text);
		return -EREMOTEIO;
	}
	if (rec.type != REC_ACK) {
		snprintf(o->err, sizeof(o->err), "return path: unexpected %s record", stream_rec_name(rec.type));
		return -EPROTO;
	}
	memcpy(ack, buf, 4);
	return 0;
}

int outgoing_wait_ack(struct outgoing *o, uint32_t want, int ms)
{
	struct pollfd p = { .fd = o->main->fd, .events = POLLIN };
	uint64_t deadline = stream_now_ns() + (uint64_t)ms * 1000000ULL, now;
	uint32_t ack;
	int ret;

	/* One deadline for the answer: records that are not it do not move it. */
	for (;;) {
		if (migration_cancelled(o->m))
			return -ECANCELED;
		now = stream_now_ns();
		ret = now < deadline ? poll(&p, 1, (int)((deadline - now + 999999) / 1000000)) : 0;
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret == 0) {
			snprintf(o->err, sizeof(o->err), "the destination did not %s within %d ms (peer-timeout)",
				 want == ACK_HEADER ? "accept the stream" : "say it runs the guest", ms);
			return -ETIMEDOUT;
		}
		ret = return_path_read(o, &ack);
		if (ret)
			return ret;
		if (ack == want)
			return 0;
	}
}

/* Between records: an error the destination reported ends the migration now. */
static int return_path_check(struct outgoing *o)
{
	struct pollfd p = { .fd = o->main->fd, .events = POLLIN };
	uint32_t ack;

	if (migration_cancelled(o->m))
		return -ECANCELED;
	if (!o->has_return_path || poll(&p, 1, 0) <= 0)
		return 0;
	return return_path_read(o, &ack) ?: -EPROTO;
}

static void apply_params(struct outgoing *o, struct migration_params *p)
{
	migration_get_params(o->m, p);
	__atomic_store_n(&o->main->tx.max_bw, p->max_bandwidth, __ATOMIC_RELAXED);
	/* max-bandwidth is the migration's: shared by the multifd connections. */
	for (int i = 0; i < o->nmultifd; i++)
		__atomic_store_n(&o->m->channels[CHANNEL_MULTIFD + i].tx.max_bw,
				 p->max_bandwidth / (uint64_t)o->nmultifd, __ATOMIC_RELAXED);
}

/* Bytes sent so far on the main connection and the multifd ones. */
static uint64_t bytes_out(struct outgoing *o)
{
	return o->main->tx.bytes_out + multifd_send_bytes(o->mf);
}

static void account(struct outgoing *o, uint64_t sent, uint64_t zero, uint64_t skipped)
{
	pthread_mutex_lock(&o->m->lock);
	o->m->stats.pages_sent += sent;
	o->m->stats.zero_pages += zero;
	o->m->stats.zero_skipped += skipped;
	o->m->stats.bytes = channel_bytes(o->main) + multifd_send_bytes(o->mf);
	o->m->stats.multifd_bytes = multifd_send_bytes(o->mf);
	/* With postcopy a zero page left out is still lacking: the switch must have it placed. */
	if (o->postcopy)
		skipped = 0;
	if (o->m->stats.pages_remaining >= sent + zero + skipped)
		o->m->stats.pages_remaining -= sent + zero + skipped;
	pthread_mutex_unlock(&o->m->lock);
}

const uint8_t *outgoing_page_data(struct outgoing *o, uint8_t *copy, uint64_t idx)
{
	const uint8_t *page = ram_page_hva(&o->vm->ram, idx);

	if (!__atomic_load_n(&o->corrupt_next, __ATOMIC_RELAXED) && !o->sent_digest)
		return page;
	memcpy(copy, page, PAGE_SIZE);
	/* Test hook x-corrupt-page: once armed, the next data page sent goes with one byte flipped. */
	if (__atomic_load_n(&o->corrupt_next, __ATOMIC_RELAXED) &&
	    __atomic_exchange_n(&o->corrupt_next, false, __ATOMIC_ACQ_REL)) {
		copy[PAGE_SIZE / 2] ^= 0x20;
		warn("x-corrupt-page: page %llu (gpa 0x%llx) sent with one byte flipped", (unsigned long long)idx,
		     (unsigned long long)ram_index_to_gpa(&o->vm->ram, idx));
	}
	/* x-drop-page needs what went on the wire: a copy, which the guest cannot change under it. */
	if (o->sent_digest)
		o->sent_digest[idx] = verify_page_digest(copy);
	return copy;
}

void outgoing_iov_add(struct iovec *iov, int *n, const void *p, size_t len)
{
	if (*n && (const uint8_t *)iov[*n - 1].iov_base + iov[*n - 1].iov_len == (const uint8_t *)p) {
		iov[*n - 1].iov_len += len;
		return;
	}
	iov[*n].iov_base = (void *)p;
	iov[*n].iov_len = len;
	(*n)++;
}

/*
 * Test hook x-drop-page: leave out of the last round the highest dirty page
 * whose content differs from what was sent.  A page written before it was
 * sent in the same round is dirty, yet the destination has it right, and
 * leaving it out would prove nothing.
 */
static void test_drop_page(struct outgoing *o)
{
	uint64_t i, last = ram_npages(&o->vm->ram);

	for (i = bitmap_next_set(&o->dirty, 0); i < ram_npages(&o->vm->ram); i = bitmap_next_set(&o->dirty, i + 1))
		if (verify_page_digest(ram_page_hva(&o->vm->ram, i)) != o->sent_digest[i])
			last = i;
	if (last < ram_npages(&o->vm->ram)) {
		bitmap_clear(&o->dirty, last);
		warn("x-drop-page: page %llu (gpa 0x%llx) left out of the last round", (unsigned long long)last,
		     (unsigned long long)ram_index_to_gpa(&o->vm->ram, last));
	}
}

int outgoing_last_stop(struct outgoing *o)
{
	struct migration_params p;
	uint64_t head[2], first = 0;
	uint32_t n;
	int ret;

	apply_params(o, &p);
	if (o->sent_digest && !o->postcopy)
		test_drop_page(o);
	__atomic_store_n(&o->corrupt_next, p.x_corrupt_page, __ATOMIC_RELEASE);
	if (!o->verify)
		return 0;
	while ((n = verify_record(&o->v, first, head))) {
		struct iovec iov[2] = { { head, sizeof(head) }, { o->v.digest + first, (size_t)n * 8 } };

		verify_digest_range(&o->v, first, n);
		ret = stream_write_record(&o->main->tx, REC_VERIFY, iov, 2);
		if (ret)
			return ret;
		first += n;
	}
	pthread_mutex_lock(&o->m->lock);
	o->m->stats.verify_pages = o->v.compared;
	o->m->stats.verify_ms = o->v.ns / 1000000;
	pthread_mutex_unlock(&o->m->lock);
	return 0;
}

/*
 * One RAM_PAGES record of the @n entries in o->entries; the data of the
 * @ndata non-zero ones is at o->page[0..ndata).
 */
static int send_pages(struct outgoing *o, uint32_t n, uint32_t ndata)
{
	uint32_t head[2] = { n, 0 }, i;
	struct iovec iov[2 + STREAM_PAGES_MAX] = {
		{ head, sizeof(head) },
		{ o->entries, n * sizeof(uint64_t) },
	};
	int npiece = 0;

	for (i = 0; i < ndata; i++)
		outgoing_iov_add(iov + 2, &npiece, o->page[i], PAGE_SIZE);
	return stream_write_record(&o->main->tx, REC_RAM_PAGES, iov, 2 + npiece);
}

int outgoing_send_now(struct outgoing *o, const uint64_t *idx, uint32_t n)
{
	uint32_t i, k = 0;

	for (i = 0; i < n; i++) {
		if (idx[i] >= ram_npages(&o->vm->ram))
			continue;
		o->page[k] = outgoing_page_data(o, o->data + (size_t)k * PAGE_SIZE, idx[i]);
		o->entries[k++] = idx[i] << 1;
		bitmap_set(&o->sent, idx[i]);
		bitmap_clear(&o->dirty, idx[i]);
	}
	if (!k)
		return 0;
	account(o, k, 0, 0);
	return send_pages(o, k, k);
}

/* With multifd, a record of its own to fill (o->entries, o->page, o->data otherwise); 0 or -errno. */
static int batch_start(struct outgoing *o, struct multifd_job **job, uint64_t **entries, const uint8_t ***page,
		       uint8_t **data)
{
	if (!o->mf || *job)
		return 0;
	*job = multifd_job_get(o->mf);
	if (!*job) {
		snprintf(o->err, sizeof(o->err), "%s", multifd_send_error(o->mf));
		return -EIO;
	}
	*entries = (*job)->entries;
	*page = (*job)->page;
	*data = (*job)->data;
	return 0;
}

/* A record's worth of pages: to its multifd connection, or on the main one. */
static int batch_send(struct outgoing *o, struct multifd_job **job, uint32_t n, uint32_t ndata)
{
	if (!*job)
		return send_pages(o, n, ndata);
	(*job)->n = n;
	(*job)->ndata = ndata;
	multifd_job_put(o->mf, *job);
	*job = NULL;
	return 0;
}

/* Multifd: the round's fence (multifd.h), so that no page's versions cross. */
static int batch_sync(struct outgoing *o)
{
	int ret;

	if (!o->mf)
		return 0;
	ret = multifd_send_sync(o->mf, &o->main->tx);
	if (ret && multifd_send_error(o->mf)[0])
		snprintf(o->err, sizeof(o->err), "%s", multifd_send_error(o->mf));
	return ret;
}

/* Send and clear every page set in o->dirty; zero pages are skipped if @skip_zero. */
static int send_dirty(struct outgoing *o, bool skip_zero)
{
	struct migration_params params;
	uint64_t i = 0, npages = ram_npages(&o->vm->ram), before = bytes_out(o);
	uint32_t n = 0, ndata = 0, nzero = 0, nskip = 0;
	struct multifd_job *job = NULL;
	uint64_t *entries = o->entries;
	const uint8_t **page = o->page;
	uint8_t *data = o->data;
	int ret;

	apply_params(o, &params);
	while ((i = bitmap_next_set(&o->dirty, i)) < npages || n) {
		if (i < npages) {
			bool zero = ram_page_zero(&o->pm, i);

			ret = batch_start(o, &job, &entries, &page, &data);
			if (ret)
				return ret;

			bitmap_clear(&o->dirty, i);
			if (o->postcopy && !(zero && skip_zero))
				bitmap_set(&o->sent, i);
			if (zero && skip_zero) {
				nskip++;
			} else if (zero) {
				entries[n++] = i << 1 | PAGE_ENTRY_ZERO;
				nzero++;
				if (o->sent_digest)
					o->sent_digest[i] = verify_page_digest(ram_page_hva(&o->vm->ram, i));
			} else {
				page[ndata] = outgoing_page_data(o, data + (size_t)ndata * PAGE_SIZE, i);
				entries[n++] = i << 1;
				ndata++;
			}
			i++;
		}
		if (n < STREAM_PAGES_MAX && i < npages)
			continue;
		/* The last pages were zero pages left out (round 1): no record for nothing. */
		if (!n)
			break;
		ret = batch_send(o, &job, n, ndata);
		if (ret)
			return ret;
		account(o, ndata, nzero, nskip);
		n = ndata = nzero = nskip = 0;
		ret = return_path_check(o);
		if (ret)
			return ret;
		apply_params(o, &params);
		/* A manual switch does not wait for the end of the round (but for its fence). */
		if (o->postcopy && __atomic_load_n(&o->m->start_postcopy, __ATOMIC_ACQUIRE))
			return batch_sync(o) ?: SWITCH_NOW;
	}
	if (nskip)
		account(o, 0, 0, nskip);
	ret = batch_sync(o);
	o->round_bytes = bytes_out(o) - before;
	return ret;
}

int outgoing_multifd_end(struct outgoing *o)
{
	int ret;

	if (!o->mf)
		return 0;
	ret = multifd_send_finish(o->mf);
	if (ret)
		snprintf(o->err, sizeof(o->err), "%s", multifd_send_error(o->mf));
	/* Closed now: the destination reads each to its end before it takes what follows on the main one. */
	for (int i = 0; i < o->nmultifd; i++)
		channel_close(&o->m->channels[CHANNEL_MULTIFD + i]);
	pthread_mutex_lock(&o->m->lock);
	o->m->stats.bytes = migration_channels_bytes(o->m);
	o->m->stats.multifd_bytes = multifd_send_bytes(o->mf);
	pthread_mutex_unlock(&o->m->lock);
	return ret;
}

/* The test hook x-drop-page needs the digest of each page as it was last sent. */
static int test_drop_setup(struct outgoing *o)
{
	static const uint8_t zero_page[PAGE_SIZE] __attribute__((aligned(8)));
	uint64_t zero = verify_page_digest(zero_page), i;

	/* Until sent, the destination has a zero page (and a zero page is never copied). */
	o->sent_digest = malloc(ram_npages(&o->vm->ram) * sizeof(uint64_t));
	if (!o->sent_digest)
		return -ENOMEM;
	for (i = 0; i < ram_npages(&o->vm->ram); i++)
		o->sent_digest[i] = zero;
	return 0;
}

/* The main channel (and, for postcopy, the urgent one), with the destination's ACK(HEADER). */
static int open_channels(struct outgoing *o, struct migration_params *p)
{
	struct stream_header h;
	int ret;

	o->nmultifd = p->multifd ? (int)p->multifd_channels : 0;
	stream_header_for(&h, &o->vm->ram, o->vm->ncpus,
			  (o->postcopy ? STREAM_F_POSTCOPY | STREAM_F_CHANNELS : 0) | (o->verify ? STREAM_F_VERIFY : 0) |
			  (o->nmultifd ? STREAM_F_MULTIFD | (uint32_t)o->nmultifd << STREAM_MULTIFD_SHIFT : 0));
	ret = channel_connect(o->main, &o->uri, &h, o->err, sizeof(o->err));
	if (ret)
		return ret;
	o->file_made = o->uri.kind == URI_FILE;
	if (migration_cancelled(o->m))
		return -ECANCELED;
	if (o->has_return_path) {
		ret = outgoing_wait_ack(o, ACK_HEADER, (int)p->peer_timeout_ms);
		if (ret)
			return ret;
	}
	if (o->postcopy) {
		/* Requested pages never wait behind the push in the main connection's buffers. */
		o->urgent = migration_channel(o->m, CHANNEL_URGENT);
		ret = channel_connect(o->urgent, &o->uri, &h, o->err, sizeof(o->err));
	}
	/* In order: the destination takes them one after the other and checks each one's index. */
	for (int i = 0; !ret && i < o->nmultifd; i++)
		ret = channel_connect(migration_channel(o->m, (enum channel_role)(CHANNEL_MULTIFD + i)), &o->uri, &h,
				      o->err, sizeof(o->err));
	if (!ret && o->nmultifd) {
		pthread_mutex_lock(&o->m->lock);
		o->m->stats.multifd_channels = (uint64_t)o->nmultifd;
		pthread_mutex_unlock(&o->m->lock);
		ret = multifd_send_start(&o->mf, &o->m->channels[CHANNEL_MULTIFD], o->nmultifd);
		if (ret)
			snprintf(o->err, sizeof(o->err), "cannot start the multifd threads: %s", strerror(-ret));
	}
	return ret;
}

static int setup(struct outgoing *o)
{
	struct migration_params p;
	int ret;

	ret = uri_parse(o->m->uri, &o->uri, o->err, sizeof(o->err));
	if (ret)
		return ret;
	o->has_return_path = uri_has_return_path(&o->uri);
	migration_get_params(o->m, &p);
	pthread_mutex_lock(&o->m->lock);
	o->postcopy = o->m->postcopy_this;	/* migration_start_outgoing() refused it for a file */
	pthread_mutex_unlock(&o->m->lock);
	o->verify = p.verify;
	if ((o->verify && verify_init(&o->v, &o->vm->ram, false)) ||
	    (p.x_drop_page && !o->postcopy && test_drop_setup(o)))
		return -ENOMEM;
	ret = open_channels(o, &p);
	if (ret)
		return ret;
	migration_set_postcopy(o->m, o->postcopy ? POSTCOPY_ADVISE : POSTCOPY_NONE);
	ret = bitmap_init(&o->dirty, ram_npages(&o->vm->ram));
	if (!ret)
		ret = bitmap_init(&o->sent, ram_npages(&o->vm->ram));
	ram_pagemap_open(&o->pm, &o->vm->ram);
	o->entries = malloc(STREAM_PAGES_MAX * sizeof(uint64_t));
	o->data = malloc(STREAM_PAGES_MAX * PAGE_SIZE);
	if (ret || !o->entries || !o->data)
		return -ENOMEM;
	ret = dirty_start(o->vm);
	if (ret)
		snprintf(o->err, sizeof(o->err), "cannot start dirty logging: %s", strerror(-ret));
	return ret;
}

uint64_t outgoing_expected_downtime(uint64_t remaining, uint64_t bytes, uint64_t ns, uint64_t max_bw)
{
	uint64_t bw = bytes * 1000000000ULL / (ns ? ns : 1);

	/* The floor keeps a round that had little to send from pricing the rest absurdly high. */
	if (bw < PAGE_SIZE * 1000)
		bw = PAGE_SIZE * 1000;
	if (max_bw && bw > max_bw)
		bw = max_bw;
	return remaining * (PAGE_SIZE + 8) * 1000 / bw;
}

/*
 * Pages the destination lacks (info migrate's "pages remaining"): dirty;
 * with postcopy also never sent, as the switch will count them (postcopy.c),
 * so that the figure does not jump there.
 */
static uint64_t lacking(struct outgoing *o)
{
	uint64_t npages = ram_npages(&o->vm->ram), n = 0, i, w;

	if (!o->postcopy)
		return bitmap_count(&o->dirty);
	for (i = 0; i < (npages + 63) / 64; i++) {
		w = ~o->sent.words[i] | o->dirty.words[i];
		if (i == npages / 64)
			w &= (1ULL << (npages % 64)) - 1;
		n += (uint64_t)__builtin_popcountll(w);
	}
	return n;
}

/* After round @round (@elapsed_ns, @dirtied pages since the last sync): the figures; the expected downtime. */
static uint64_t round_figures(struct outgoing *o, uint64_t round, uint64_t elapsed_ns, int64_t dirtied)
{
	uint64_t remaining = bitmap_count(&o->dirty);
	uint64_t max_bw = __atomic_load_n(&o->main->tx.max_bw, __ATOMIC_RELAXED);
	uint64_t expected_ms = outgoing_expected_downtime(remaining, o->round_bytes, elapsed_ns, max_bw);

	pthread_mutex_lock(&o->m->lock);
	o->m->stats.rounds = round;
	o->m->stats.pages_remaining = lacking(o);
	o->m->stats.dirty_rate = (uint64_t)dirtied * 1000000000ULL / elapsed_ns;
	o->m->stats.throughput = o->round_bytes * 1000000000ULL / elapsed_ns;
	o->m->stats.precopy_ms += elapsed_ns / 1000000;
	o->m->stats.precopy_bytes += o->round_bytes;
	o->m->stats.expected_downtime_ms = expected_ms;
	o->m->stats.bytes = channel_bytes(o->main) + multifd_send_bytes(o->mf);
	pthread_mutex_unlock(&o->m->lock);
	debug("migration round %llu: %llu bytes in %llu ms, %llu pages left, expected downtime %llu ms",
	      (unsigned long long)round, (unsigned long long)o->round_bytes,
	      (unsigned long long)(elapsed_ns / 1000000), (unsigned long long)remaining,
	      (unsigned long long)expected_ms);
	return expected_ms;
}

unsigned outgoing_throttle_next(unsigned pct, uint64_t dirtied, uint64_t sent, unsigned *high,
			       const struct migration_params *p)
{
	unsigned next;

	if (dirtied * 100 <= sent * p->throttle_trigger_threshold) {
		*high = 0;
		return pct;
	}
	if (++*high < 2)
		return pct;
	*high = 0;
	next = pct ? pct + (unsigned)p->cpu_throttle_increment : (unsigned)p->cpu_throttle_initial;
	return next > p->max_cpu_throttle ? (unsigned)p->max_cpu_throttle : next;
}

/* auto-converge: after a round that dirtied @dirtied pages, raise the throttle if it is time. */
static void converge(struct outgoing *o, const struct migration_params *p, int64_t dirtied)
{
	unsigned next;

	if (!p->auto_converge)
		return;
	next = outgoing_throttle_next(o->throttle, (uint64_t)dirtied * PAGE_SIZE, o->round_bytes, &o->throttle_high, p);
	if (next == o->throttle)
		return;
	if (vm_throttle_set(o->vm, next)) {
		warn("auto-converge: cannot throttle the vCPUs (no thread); the rounds go on without");
		return;
	}
	o->throttle = next;
	pthread_mutex_lock(&o->m->lock);
	o->m->stats.cpu_throttle_pct = next;
	o->m->stats.throttle_steps++;
	pthread_mutex_unlock(&o->m->lock);
	info("auto-converge: the guest dirties faster than the link; vCPUs throttled to %u %%", next);
}

/* Send one round and sync the dirty log; its expected downtime in *@expected_ms, its remaining pages in *@left. */
static int iterate_round(struct outgoing *o, uint64_t round, uint64_t *expected_ms, uint64_t *left)
{
	uint32_t end_round[4] = { (uint32_t)round, 0, 0, 0 };
	uint64_t t0 = stream_now_ns(), cpu0 = stream_thread_cpu_ns(), elapsed_ns, t_sync;
	struct migration_params params;
	int64_t dirtied;
	int ret;

	ret = send_dirty(o, round == 1);
	if (ret)
		return ret;
	ret = stream_write(&o->main->tx, REC_END_ROUND, end_round, sizeof(end_round));
	if (ret)
		return ret;
	t_sync = stream_now_ns();
	dirtied = dirty_sync(o->vm, &o->dirty);
	if (dirtied < 0)
		return (int)dirtied;
	elapsed_ns = stream_now_ns() - t0;
	pthread_mutex_lock(&o->m->lock);
	o->m->stats.precopy_sync_ns += stream_now_ns() - t_sync;
	o->m->stats.precopy_cpu_ns += stream_thread_cpu_ns() - cpu0;
	pthread_mutex_unlock(&o->m->lock);
	*expected_ms = round_figures(o, round, elapsed_ns ? elapsed_ns : 1, dirtied);
	*left = bitmap_count(&o->dirty);
	migration_get_params(o->m, &params);
	converge(o, &params, dirtied);
	return 0;
}

/*
 * A snapshot has no downtime to save and no peer to wait for, yet a guest
 * that dirties pages faster than the disk takes them would make rounds
 * without end (one such run wrote 1.5 GB for 256 MiB) until the disk is
 * full.  Another round is worth it only while the file so far, the pages
 * left, and as many again dirtied meanwhile fit in the guest's RAM:
 * then the file before the last stop never exceeds the RAM, and the last
 * stop adds only the pages dirty then (docs/design.md states the bound).
 */
static bool snapshot_full(struct outgoing *o, uint64_t round, uint64_t remaining)
{
	uint64_t ram = ram_npages(&o->vm->ram) * (PAGE_SIZE + 8);

	if (o->has_return_path)
		return false;
	return round >= SNAPSHOT_MAX_ROUNDS || o->main->tx.bytes_out + 2 * remaining * (PAGE_SIZE + 8) > ram;
}

static int iterate(struct outgoing *o)
{
	struct migration_params params;
	uint64_t round = 0, expected_ms = 0, remaining = 0, last_remaining = UINT64_MAX, stalled = 0;
	int64_t dirtied;
	int ret;

	migration_set_status(o->m, MIGRATION_STATUS_ACTIVE);
	/* Round 1 is every page (the first sync would say so, but only with manual protect). */
	dirtied = dirty_sync(o->vm, &o->dirty);
	if (dirtied < 0)
		return (int)dirtied;
	bitmap_fill(&o->dirty);
	pthread_mutex_lock(&o->m->lock);
	o->m->stats.pages_remaining = ram_npages(&o->vm->ram);
	pthread_mutex_unlock(&o->m->lock);
	migration_get_params(o->m, &params);
	if (o->postcopy && params.postcopy_after_rounds == 0)
		return SWITCH_NOW;	/* pure postcopy: no RAM goes before the switch */
	for (;;) {
		ret = iterate_round(o, ++round, &expected_ms, &remaining);
		if (ret)
			return ret;
		apply_params(o, &params);
		if (expected_ms <= params.downtime_limit_ms)
			return 0;
		if (o->postcopy) {
			/* Not converging: the rest did not shrink over two rounds. */
			stalled = remaining >= last_remaining ? stalled + 1 : 0;
			last_remaining = remaining;
			if (round >= params.postcopy_after_rounds || stalled >= 2 ||
			    __atomic_load_n(&o->m->start_postcopy, __ATOMIC_ACQUIRE))
				return SWITCH_NOW;
		}
		if ((params.max_rounds && round >= params.max_rounds) || snapshot_full(o, round, remaining)) {
			/* Say so where the user looks: this stop will take longer than the limit. */
			pthread_mutex_lock(&o->m->lock);
			o->m->stats.forced_expected_ms = expected_ms;
			pthread_mutex_unlock(&o->m->lock);
			info("migration: %s after %llu rounds, %llu ms of downtime expected (limit %llu ms)%s",
			     snapshot_full(o, round, remaining) ? "the snapshot's bound reached" : "max-rounds reached",
			     (unsigned long long)round, (unsigned long long)expected_ms,
			     (unsigned long long)params.downtime_limit_ms,
			     params.auto_converge ? "" : "; auto-converge would throttle the guest");
			return 0;
		}
		ret = return_path_check(o);
		if (ret)
			return ret;
	}
}

int outgoing_send_state(struct outgoing *o, uint32_t then, size_t *len)
{
	void *blob = NULL;
	int ret;

	ret = state_save(o->vm, &blob, len);
	if (ret) {
		snprintf(o->err, sizeof(o->err), "cannot save the machine state: %s", strerror(-ret));
		return ret;
	}
	ret = stream_write(&o->main->tx, REC_MACHINE_STATE, blob, (uint32_t)*len);
	free(blob);
	if (!ret) {
		pthread_mutex_lock(&o->m->lock);
		o->m->stats.state_bytes = *len;
		pthread_mutex_unlock(&o->m->lock);
	}
	if (ret)
		return ret;
	/* Written in part is maybe received: the destination acts on it alone. */
	o->state_sent = o->has_return_path;
	return stream_write(&o->main->tx, then, NULL, 0);
}

/* Stop the guest and send the rest.  On return the VM is paused (the caller resumes on failure). */
static int complete(struct outgoing *o, uint64_t *stop_ns)
{
	size_t len = 0;
	int64_t dirtied;
	int ret;

	o->postcopy = false;	/* converged: the rest goes by precopy after all */
	vm_pause_why(o->vm, "finish-migrate");
	*stop_ns = stream_now_ns();
	pthread_mutex_lock(&o->m->lock);
	o->m->stats.stopped_wall_us = stream_wall_us();
	pthread_mutex_unlock(&o->m->lock);
	migration_set_status(o->m, MIGRATION_STATUS_COMPLETING);
	dirtied = dirty_sync(o->vm, &o->dirty);
	if (dirtied < 0)
		return (int)dirtied;
	ret = outgoing_last_stop(o);
	if (!ret)
		ret = send_dirty(o, false);
	if (!ret)
		ret = outgoing_multifd_end(o);
	if (!ret)
		ret = outgoing_send_state(o, REC_END, &len);
	if (ret)
		return ret;
	pthread_mutex_lock(&o->m->lock);
	o->m->stats.pages_remaining = 0;
	pthread_mutex_unlock(&o->m->lock);
	if (o->has_return_path)
		return outgoing_wait_ack(o, ACK_RUNNING, o->main->peer_timeout_ms);
	return fsync(o->main->fd) < 0 ? -errno : 0;
}

/* The switch and everything after it (postcopy.c); *@switched once the guest runs on the destination. */
static int switch_to_postcopy(struct outgoing *o, uint64_t *stop_ns, bool *switched)
{
	struct migration *m = o->m;
	struct bitmap unsent;
	bool recovered;
	uint64_t now;
	int ret;

	ret = bitmap_init(&unsent, ram_npages(&o->vm->ram));
	/* The rounds' pages are sent (send_dirty() ended with a fence): close their connections first. */
	if (!ret)
		ret = outgoing_multifd_end(o);
	if (!ret)
		ret = postcopy_switch(o, &unsent, stop_ns);
	if (ret && o->state_sent && ret != -EREMOTEIO && !migration_cancelled(m)) {
		/*
		 * POSTCOPY_RUN left but ACK(RUNNING) did not come: the destination
		 * may run the guest.  This copy must not: it pauses as after the
		 * switch, and a recovery (or the user, once the destination is
		 * known not to run it) settles it.
		 */
		*switched = true;
		dirty_stop(o->vm);
		vm_refuse_cont(o->vm, "the guest may run on the destination (postcopy: ACK(RUNNING) was lost): "
			       "recover with 'migrate_recover URI' there and 'migrate_resume URI' here; only if the "
			       "destination does not run it, 'migrate_cancel' then 'cont' here");
		pthread_mutex_lock(&m->lock);
		m->status = MIGRATION_STATUS_POSTCOPY;
		m->stats.switch_downtime_ms = (stream_now_ns() - *stop_ns) / 1000000;
		pthread_mutex_unlock(&m->lock);
		snprintf(o->err + strlen(o->err), sizeof(o->err) - strlen(o->err),
			 " (after POSTCOPY_RUN: the destination may run the guest)");
		ret = postcopy_run(o, &unsent, ret);
		pthread_mutex_lock(&m->lock);
		m->stats.postcopy_ms = (stream_now_ns() - *stop_ns) / 1000000;
		recovered = m->stats.recoveries != 0;
		pthread_mutex_unlock(&m->lock);
		/* Given up before the destination ever answered: the user decides, having looked there. */
		if (ret && !recovered)
			vm_refuse_cont(o->vm, NULL);
	} else if (!ret) {
		/* From here on the guest runs on the destination: this copy never runs again. */
		*switched = true;
		now = stream_now_ns();
		dirty_stop(o->vm);
		vm_refuse_cont(o->vm, "the guest runs on the destination (postcopy): this copy must never run again");
		pthread_mutex_lock(&m->lock);
		m->stats.switch_downtime_ms = (now - *stop_ns) / 1000000;
		m->stats.downtime_ms = m->stats.switch_downtime_ms;
		m->status = MIGRATION_STATUS_POSTCOPY;
		m->postcopy = POSTCOPY_RUNNING;
		pthread_mutex_unlock(&m->lock);
		info("postcopy: switched in %llu ms; the guest runs on the destination, pages follow",
		     (unsigned long long)m->stats.switch_downtime_ms);
		ret = postcopy_run(o, &unsent, 0);
		pthread_mutex_lock(&m->lock);
		m->stats.postcopy_ms = (stream_now_ns() - *stop_ns) / 1000000;
		pthread_mutex_unlock(&m->lock);
	}
	bitmap_destroy(&unsent);
	return ret;
}

/*
 * A snapshot that failed half way (a full disk, a cancel) is no snapshot: a
 * restore would only refuse it.  Remove it, and say why in the one message.
 */
static void snapshot_discard(struct outgoing *o, int ret)
{
	char why[200];

	if (!o->file_made)
		return;
	snprintf(why, sizeof(why), "%.199s", o->err[0] ? o->err : ret == -ECANCELED ? "cancelled" : strerror(-ret));
	if (unlink(o->uri.path) < 0)
		snprintf(o->err, sizeof(o->err), "cannot write %s: %s (and cannot remove the partial file: %s)",
			 o->uri.path, why, strerror(errno));
	else
		snprintf(o->err, sizeof(o->err), "cannot write %s: %s (the partial file was removed)", o->uri.path, why);
}

/* How it ended: the figures, the message (once), and the VM's fate. */
static void finish(struct outgoing *o, int ret, bool paused, bool switched, uint64_t stop_ns)
{
	struct migration *m = o->m;
	uint64_t now = stream_now_ns();

	pthread_mutex_lock(&m->lock);
	m->stats.end_ns = now;
	m->stats.total_ms = (now - m->stats.start_ns) / 1000000;
	m->stats.bytes = migration_channels_bytes(m);
	if (!ret) {
		m->stats.downtime_ms = switched ? m->stats.switch_downtime_ms : (now - stop_ns) / 1000000;
		m->status = MIGRATION_STATUS_COMPLETED;
		if (switched)
			m->postcopy = POSTCOPY_END;
	}
	pthread_mutex_unlock(&m->lock);
	if (!ret) {
		info("migration to %s completed: %llu ms, downtime %llu ms; this VM stays paused",
		     m->uri, (unsigned long long)m->stats.total_ms, (unsigned long long)m->stats.downtime_ms);
		vm_hold_paused(o->vm, "migrated");
	} else if (switched) {
		/* The guest runs on the destination; this copy holds what it still lacks: keep it, paused. */
		migration_set_error(m, MIGRATION_STATUS_FAILED, "%s", o->err[0] ? o->err : strerror(-ret));
		error(ret, "postcopy to %s failed: %s; this copy stays paused with every page the destination lacked",
		      m->uri, m->error);
		vm_hold_paused(o->vm, "postcopy-failed");
	} else if (o->state_sent && ret != -EREMOTEIO) {
		/* END left and ACK(RUNNING) did not come: the destination may run the guest. */
		if (ret == -ECANCELED || migration_cancelled(m))
			migration_set_error(m, MIGRATION_STATUS_CANCELLED,
					    "cancelled by migrate_cancel while waiting for ACK(RUNNING)");
		else
			migration_set_error(m, MIGRATION_STATUS_FAILED, "%s", o->err[0] ? o->err : strerror(-ret));
		error(ret, "migration to %s: %s; the machine state was sent, so the guest may run on the "
		      "destination: this copy stays paused ('info status' there; only if it does not run the guest, "
		      "'cont' here)", m->uri, m->error);
		vm_hold_paused(o->vm, "migrate-unknown");
	} else {
		snapshot_discard(o, ret);
		if (ret == -ECANCELED || migration_cancelled(m))
			migration_set_error(m, MIGRATION_STATUS_CANCELLED, "cancelled by migrate_cancel");
		else
			migration_set_error(m, MIGRATION_STATUS_FAILED, "%s",
					    o->err[0] ? o->err : strerror(-ret));
		warn("migration to %s %s: %s; the VM goes on here", m->uri,
		     migration_cancelled(m) ? "cancelled" : "failed", m->error);
		/* Nothing is lost: the source still has everything; run it again. */
		if (paused)
			vm_resume(o->vm);
	}
}

static void outgoing_free(struct outgoing *o)
{
	multifd_send_free(o->mf);
	bitmap_destroy(&o->dirty);
	bitmap_destroy(&o->sent);
	ram_pagemap_close(&o->pm);
	free(o->entries);
	free(o->data);
	verify_destroy(&o->v);
	free(o->sent_digest);
	free(o);
}

void *outgoing_thread(void *arg)
{
	struct migration *m = arg;
	struct outgoing *o = m->out;
	uint64_t stop_ns = 0;
	bool paused = false, switched = false;
	int ret;

	pthread_setname_np(pthread_self(), "mig-out");
	o->pm.fd = -1;		/* not open yet: outgoing_free() must not close fd 0 of a zeroed struct */
	o->m = m;
	o->vm = m->vm;
	o->main = migration_channel(m, CHANNEL_MAIN);
	pthread_mutex_lock(&m->lock);
	m->stats.pages_total = ram_npages(&m->vm->ram);
	pthread_mutex_unlock(&m->lock);
	ret = setup(o);
	pthread_mutex_lock(&m->lock);
	m->stats.setup_ms = (stream_now_ns() - m->stats.start_ns) / 1000000;
	pthread_mutex_unlock(&m->lock);
	if (!ret)
		ret = iterate(o);
	/* The rounds are over (or failed): the vCPUs run freely, or the stop comes at once. */
	vm_throttle_set(o->vm, 0);
	if (ret == SWITCH_NOW) {
		paused = true;
		ret = switch_to_postcopy(o, &stop_ns, &switched);
	} else if (!ret) {
		paused = true;
		ret = complete(o, &stop_ns);
	}
	dirty_stop(o->vm);
	migration_close_channels(m);
	finish(o, ret, paused, switched, stop_ns);
	pthread_mutex_lock(&m->lock);
	m->out = NULL;
	pthread_mutex_unlock(&m->lock);
	outgoing_free(o);
	return NULL;
}
