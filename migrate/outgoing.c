// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The source side of a migration: precopy.
 *
 *	setup	  connect, send the header, wait for the destination to accept
 *		  it (a destination with another shape refuses here), start
 *		  dirty logging
 *	iterate	  round 1 sends every non-zero page; each later round syncs
 *		  the dirty log and sends what was dirtied.  After each sync
 *		  the rest is priced at the bandwidth measured in the last
 *		  round; once it fits the downtime limit (or max-rounds is
 *		  reached) the loop ends
 *	complete  pause the vCPUs, send the last dirty pages, the machine
 *		  state and END; the destination loads it, starts, and
 *		  acknowledges; the source stays paused
 *	cleanup	  stop dirty logging; on any failure before the destination
 *		  acknowledged, resume the vCPUs: the guest never stops for good
 *
 * Pages are copied into a record buffer before being checksummed and sent:
 * the guest may write a page while it is on its way, and the checksum must
 * match what was sent (the dirty log has the write; it is sent again).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "migrate/migration.h"
#include "migrate/state.h"
#include "migrate/stream.h"
#include "migrate/uri.h"
#include "migrate/verify.h"
#include "vmm/dirty.h"
#include "vmm/log.h"
#include "vmm/vm.h"

#define ACK_TIMEOUT_MS 60000
#define SWITCH_NOW 1		/* iterate(): switch to postcopy instead of completing */
#define PUSH_BATCH 64		/* data pages in one background record */
#define ZERO_BATCH 4096		/* zero pages (as ranges) with them, at most */
#define PUSH_NICE 10		/* the pushing thread's niceness after the switch */

struct outgoing {
	struct migration *m;
	struct vm *vm;
	struct uri uri;
	int fd;
	bool has_rp;
	struct stream st;
	int ufd;			/* postcopy: the urgent channel (requested pages), or -1 */
	struct stream ust;
	uint64_t *uentries;		/* the return-path thread's record buffer */
	uint8_t *udata;
	struct bitmap tosend;
	struct bitmap sent;		/* postcopy: the destination has these from precopy */
	bool postcopy;
	uint64_t *entries;
	uint8_t *data;
	uint64_t round_bytes;
	bool verify;			/* digests at the last stop (migrate/verify.h) */
	struct verify v;
	bool corrupt_next;		/* test hook x-corrupt-page: flip a byte of the next data page sent */
	uint64_t *sent_digest;		/* test hook x-drop-page: the digest of each page as last sent */
	char err[512];
};

/* Read a record the destination sent on the return path; 0 or -errno with o->err set. */
static int rp_read(struct outgoing *o, uint32_t *ack)
{
	char buf[1024 + 1], err[256];
	struct stream_rec rec;
	int ret;

	ret = stream_read_record(&o->st, &rec, buf, sizeof(buf) - 1, err, sizeof(err));
	if (ret) {
		snprintf(o->err, sizeof(o->err), "return path: %s", err);
		return ret;
	}
	if (rec.type == REC_ERROR) {
		buf[rec.len] = '\0';
		snprintf(o->err, sizeof(o->err), "the destination refused: %.400s", buf);
		return -ECONNABORTED;
	}
	if (rec.type != REC_ACK || rec.len != 4) {
		snprintf(o->err, sizeof(o->err), "return path: unexpected %s record", stream_rec_name(rec.type));
		return -EPROTO;
	}
	memcpy(ack, buf, 4);
	return 0;
}

/* Wait up to @ms for the acknowledgement @want. */
static int rp_wait_ack(struct outgoing *o, uint32_t want, int ms)
{
	struct pollfd p = { .fd = o->fd, .events = POLLIN };
	uint32_t ack;
	int ret;

	for (;;) {
		if (migration_cancelled(o->m))
			return -ECANCELED;
		ret = poll(&p, 1, ms);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret == 0) {
			snprintf(o->err, sizeof(o->err), "the destination did not answer in %d ms", ms);
			return -ETIMEDOUT;
		}
		ret = rp_read(o, &ack);
		if (ret)
			return ret;
		if (ack == want)
			return 0;
	}
}

/* Between records: an error the destination reported ends the migration now. */
static int rp_check(struct outgoing *o)
{
	struct pollfd p = { .fd = o->fd, .events = POLLIN };
	uint32_t ack;

	if (migration_cancelled(o->m))
		return -ECANCELED;
	if (!o->has_rp || poll(&p, 1, 0) <= 0)
		return 0;
	return rp_read(o, &ack) ?: -EPROTO;
}

static void apply_params(struct outgoing *o, struct mig_params *p)
{
	pthread_mutex_lock(&o->m->lock);
	*p = o->m->params;
	pthread_mutex_unlock(&o->m->lock);
	__atomic_store_n(&o->st.max_bw, p->max_bandwidth, __ATOMIC_RELAXED);
}

static void account(struct outgoing *o, uint64_t sent, uint64_t zero, uint64_t skipped)
{
	pthread_mutex_lock(&o->m->lock);
	o->m->stats.pages_sent += sent;
	o->m->stats.zero_pages += zero;
	o->m->stats.zero_skipped += skipped;
	o->m->stats.bytes = o->st.bytes_out + o->st.bytes_in;
	if (o->m->stats.pages_remaining >= sent + zero + skipped)
		o->m->stats.pages_remaining -= sent + zero + skipped;
	pthread_mutex_unlock(&o->m->lock);
}

/* Test hook x-corrupt-page: once armed, the next data page sent goes with one byte flipped. */
static void test_corrupt(struct outgoing *o, uint8_t *copy, uint64_t idx)
{
	if (!__atomic_load_n(&o->corrupt_next, __ATOMIC_RELAXED) ||
	    !__atomic_exchange_n(&o->corrupt_next, false, __ATOMIC_ACQ_REL))
		return;
	copy[PAGE_SIZE / 2] ^= 0x20;
	warn("x-corrupt-page: page %llu (gpa 0x%llx) sent with one byte flipped", (unsigned long long)idx,
	     (unsigned long long)ram_index_to_gpa(&o->vm->ram, idx));
}

/*
 * The last stop (vCPUs paused, every dirty page accounted for): arm the test
 * hooks, then, with verify on, digest every page and send the digests.
 */
static int last_stop(struct outgoing *o)
{
	struct mig_params p;
	uint64_t head[2], first = 0;
	uint32_t n;
	int ret;

	apply_params(o, &p);
	if (o->sent_digest && !o->postcopy) {
		/*
		 * The highest dirty page whose content differs from what was sent:
		 * a page written before it was sent in the same round is dirty, yet
		 * the destination has it right, and leaving it out would prove nothing.
		 */
		uint64_t i, last = ram_npages(&o->vm->ram);

		for (i = bitmap_next_set(&o->tosend, 0); i < ram_npages(&o->vm->ram);
		     i = bitmap_next_set(&o->tosend, i + 1))
			if (verify_page_digest(ram_page_hva(&o->vm->ram, i)) != o->sent_digest[i])
				last = i;
		if (last < ram_npages(&o->vm->ram)) {
			bitmap_clear(&o->tosend, last);
			warn("x-drop-page: page %llu (gpa 0x%llx) left out of the last round", (unsigned long long)last,
			     (unsigned long long)ram_index_to_gpa(&o->vm->ram, last));
		}
	}
	__atomic_store_n(&o->corrupt_next, p.x_corrupt_page, __ATOMIC_RELEASE);
	if (!o->verify)
		return 0;
	verify_digest_ram(&o->v);
	while ((n = verify_record(&o->v, first, head))) {
		struct iovec iov[2] = { { head, sizeof(head) }, { o->v.digest + first, (size_t)n * 8 } };

		ret = stream_write_record(&o->st, REC_VERIFY, iov, 2);
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

/* Send and clear every page set in o->tosend; zero pages are skipped if @skip_zero. */
static int send_dirty(struct outgoing *o, bool skip_zero)
{
	struct mig_params params;
	uint64_t i = 0, n = 0, ndata = 0, nzero = 0, nskip = 0, npages = ram_npages(&o->vm->ram);
	uint64_t before = o->st.bytes_out;
	uint32_t head[2];
	int ret;

	apply_params(o, &params);
	for (;;) {
		i = bitmap_next_set(&o->tosend, i);
		if (i < npages) {
			const uint8_t *page = ram_page_hva(&o->vm->ram, i);

			bitmap_clear(&o->tosend, i);
			if (o->postcopy && !(ram_page_is_zero(page) && skip_zero))
				bitmap_set(&o->sent, i);
			if (ram_page_is_zero(page)) {
				if (skip_zero) {
					nskip++;
				} else {
					o->entries[n++] = i << 1 | PAGE_ENTRY_ZERO;
					nzero++;
					if (o->sent_digest)
						o->sent_digest[i] = verify_page_digest(page);
				}
			} else {
				memcpy(o->data + ndata * PAGE_SIZE, page, PAGE_SIZE);
				test_corrupt(o, o->data + ndata * PAGE_SIZE, i);
				if (o->sent_digest)
					o->sent_digest[i] = verify_page_digest(o->data + ndata * PAGE_SIZE);
				o->entries[n++] = i << 1;
				ndata++;
			}
			i++;
		}
		if (n == STREAM_PAGES_MAX || (i >= npages && n)) {
			struct iovec iov[3] = {
				{ head, sizeof(head) },
				{ o->entries, n * sizeof(uint64_t) },
				{ o->data, ndata * PAGE_SIZE },
			};

			head[0] = (uint32_t)n;
			head[1] = 0;
			ret = stream_write_record(&o->st, REC_RAM_PAGES, iov, 3);
			if (ret)
				return ret;
			account(o, ndata, nzero, nskip);
			n = ndata = nzero = nskip = 0;
			ret = rp_check(o);
			if (ret)
				return ret;
			apply_params(o, &params);
			/* A manual switch does not wait for the end of the round. */
			if (o->postcopy && __atomic_load_n(&o->m->start_postcopy, __ATOMIC_ACQUIRE))
				return SWITCH_NOW;
		}
		if (i >= npages)
			break;
	}
	if (nskip)
		account(o, 0, 0, nskip);
	o->round_bytes = o->st.bytes_out - before;
	return 0;
}

/*
 * Postcopy: the urgent channel, a second connection to the same place that
 * will carry only requested pages, so that they never wait behind the
 * background push in the main connection's buffers (docs/design.md).
 */
static int connect_urgent(struct outgoing *o, const struct stream_header *main)
{
	struct stream_header h = *main;
	int ret;

	o->ufd = uri_connect(&o->uri);
	if (o->ufd < 0) {
		snprintf(o->err, sizeof(o->err), "cannot open the urgent channel to %s: %s", o->m->uri,
			 strerror(-o->ufd));
		return o->ufd;
	}
	stream_init(&o->ust, o->ufd);
	h.flags = (main->flags & ~STREAM_F_CHANNELS) | STREAM_F_URGENT;
	ret = stream_write_header(&o->ust, &h);
	if (ret) {
		snprintf(o->err, sizeof(o->err), "cannot send the urgent channel's header: %s", strerror(-ret));
		return ret;
	}
	o->uentries = malloc(STREAM_PAGES_MAX * sizeof(uint64_t));
	o->udata = malloc(STREAM_PAGES_MAX * PAGE_SIZE);
	return o->uentries && o->udata ? 0 : -ENOMEM;
}

static int setup(struct outgoing *o)
{
	struct stream_header h;
	bool drop_page;
	char err[256];
	int ret;

	ret = uri_parse(o->m->uri, &o->uri, err, sizeof(err));
	if (ret) {
		snprintf(o->err, sizeof(o->err), "%s", err);
		return ret;
	}
	o->has_rp = uri_has_return_path(&o->uri);
	o->fd = uri_connect(&o->uri);
	if (o->fd < 0) {
		snprintf(o->err, sizeof(o->err), "cannot connect to %s: %s", o->m->uri, strerror(-o->fd));
		return o->fd;
	}
	pthread_mutex_lock(&o->m->lock);
	o->m->conn_fd = o->fd;
	pthread_mutex_unlock(&o->m->lock);
	if (migration_cancelled(o->m))
		return -ECANCELED;
	stream_init(&o->st, o->fd);
	pthread_mutex_lock(&o->m->lock);
	o->postcopy = o->m->params.postcopy;
	o->verify = o->m->params.verify;
	drop_page = o->m->params.x_drop_page;
	pthread_mutex_unlock(&o->m->lock);
	if (o->verify && verify_init(&o->v, &o->vm->ram, false))
		return -ENOMEM;
	if (drop_page && !o->postcopy) {
		static const uint8_t zero_page[PAGE_SIZE] __attribute__((aligned(8)));
		uint64_t zero = verify_page_digest(zero_page), i;

		/* Until sent, the destination has a zero page (and a zero page is never copied). */
		o->sent_digest = malloc(ram_npages(&o->vm->ram) * sizeof(uint64_t));
		if (!o->sent_digest)
			return -ENOMEM;
		for (i = 0; i < ram_npages(&o->vm->ram); i++)
			o->sent_digest[i] = zero;
	}
	if (o->postcopy && !o->has_rp) {
		snprintf(o->err, sizeof(o->err), "postcopy needs a connection with a return path (tcp or unix), not %s",
			 o->m->uri);
		return -EINVAL;
	}
	stream_header_for(&h, &o->vm->ram, o->vm->ncpus,
			  (o->postcopy ? STREAM_F_POSTCOPY | STREAM_F_CHANNELS : 0) | (o->verify ? STREAM_F_VERIFY : 0));
	ret = stream_write_header(&o->st, &h);
	if (ret) {
		snprintf(o->err, sizeof(o->err), "cannot send the stream header: %s", strerror(-ret));
		return ret;
	}
	if (o->has_rp) {
		ret = rp_wait_ack(o, ACK_HEADER, ACK_TIMEOUT_MS);
		if (ret)
			return ret;
	}
	if (o->postcopy) {
		ret = connect_urgent(o, &h);
		if (ret)
			return ret;
	}
	ret = bitmap_init(&o->tosend, ram_npages(&o->vm->ram));
	if (!ret)
		ret = bitmap_init(&o->sent, ram_npages(&o->vm->ram));
	o->entries = malloc(STREAM_PAGES_MAX * sizeof(uint64_t));
	o->data = malloc(STREAM_PAGES_MAX * PAGE_SIZE);
	if (ret || !o->entries || !o->data)
		return -ENOMEM;
	ret = dirty_start(o->vm);
	if (ret) {
		snprintf(o->err, sizeof(o->err), "cannot start dirty logging: %s", strerror(-ret));
		return ret;
	}
	return 0;
}

static int iterate(struct outgoing *o)
{
	struct mig_params params;
	uint64_t round = 0, t0, elapsed_ns, remaining, bw, expected_ms, last_remaining = UINT64_MAX, stalled = 0;
	int64_t dirtied;
	int ret;

	migration_set_status(o->m, MIG_ACTIVE);
	/* Round 1 is every page (the first sync would say so, but only with manual protect). */
	dirtied = dirty_sync(o->vm, &o->tosend);
	if (dirtied < 0)
		return (int)dirtied;
	bitmap_fill(&o->tosend);
	pthread_mutex_lock(&o->m->lock);
	o->m->stats.pages_remaining = ram_npages(&o->vm->ram);
	params = o->m->params;
	pthread_mutex_unlock(&o->m->lock);
	if (o->postcopy && params.postcopy_after_rounds == 0)
		return SWITCH_NOW;	/* pure postcopy: no RAM goes before the switch */
	for (;;) {
		round++;
		t0 = stream_now_ns();
		ret = send_dirty(o, round == 1);
		if (ret)
			return ret;
		uint32_t end_round[4] = { (uint32_t)round, 0, 0, 0 };

		ret = stream_write(&o->st, REC_END_ROUND, end_round, sizeof(end_round));
		if (ret)
			return ret;
		dirtied = dirty_sync(o->vm, &o->tosend);
		if (dirtied < 0)
			return (int)dirtied;
		elapsed_ns = stream_now_ns() - t0;
		if (!elapsed_ns)
			elapsed_ns = 1;
		remaining = bitmap_count(&o->tosend);
		bw = o->round_bytes * 1000000000ULL / elapsed_ns;
		/* Price the rest at what the wire gave us; at least one page per ms. */
		expected_ms = remaining * (PAGE_SIZE + 8) * 1000 / (bw > PAGE_SIZE * 1000 ? bw : PAGE_SIZE * 1000);
		apply_params(o, &params);
		pthread_mutex_lock(&o->m->lock);
		o->m->stats.rounds = round;
		o->m->stats.pages_remaining = remaining;
		o->m->stats.dirty_rate = (uint64_t)dirtied * 1000000000ULL / elapsed_ns;
		o->m->stats.throughput = bw;
		o->m->stats.precopy_ms += elapsed_ns / 1000000;
		o->m->stats.precopy_bytes += o->round_bytes;
		o->m->stats.expected_downtime_ms = expected_ms;
		o->m->stats.bytes = o->st.bytes_out + o->st.bytes_in;
		pthread_mutex_unlock(&o->m->lock);
		debug("migration round %llu: %llu bytes in %llu ms, %llu pages left, expected downtime %llu ms",
		      (unsigned long long)round, (unsigned long long)o->round_bytes,
		      (unsigned long long)(elapsed_ns / 1000000), (unsigned long long)remaining,
		      (unsigned long long)expected_ms);
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
		if (params.max_rounds && round >= params.max_rounds)
			return 0;
		ret = rp_check(o);
		if (ret)
			return ret;
	}
}

/* Send the paused VM's machine state, then the record @then (END or POSTCOPY_RUN). */
static int send_state(struct outgoing *o, uint32_t then, size_t *len)
{
	void *blob = NULL;
	int ret;

	ret = state_save(o->vm, &blob, len);
	if (ret) {
		snprintf(o->err, sizeof(o->err), "cannot save the machine state: %s", strerror(-ret));
		return ret;
	}
	ret = stream_write(&o->st, REC_MACHINE_STATE, blob, (uint32_t)*len);
	free(blob);
	return ret ? ret : stream_write(&o->st, then, NULL, 0);
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
	migration_set_status(o->m, MIG_COMPLETING);
	dirtied = dirty_sync(o->vm, &o->tosend);
	if (dirtied < 0)
		return (int)dirtied;
	ret = last_stop(o);
	if (!ret)
		ret = send_dirty(o, false);
	if (ret)
		return ret;
	ret = send_state(o, REC_END, &len);
	if (ret)
		return ret;
	pthread_mutex_lock(&o->m->lock);
	o->m->stats.state_bytes = len;
	o->m->stats.pages_remaining = 0;
	pthread_mutex_unlock(&o->m->lock);
	if (o->has_rp)
		return rp_wait_ack(o, ACK_RUNNING, ACK_TIMEOUT_MS);
	return fsync(o->fd) < 0 ? -errno : 0;
}


/* ---- postcopy: the switch, then serving requests and pushing the rest ---- */

struct pc_queue {
	pthread_mutex_t lock;		/* also guards the pages still to send (post) */
	pthread_cond_t cond;
	uint64_t *reqs;			/* requested page indexes, a ring */
	uint32_t head, tail, cap;
	bool end_of_copy, failed;
	struct bitmap *post;
	char err[512];
};

struct pc_reader {
	struct outgoing *o;
	struct pc_queue *q;
	uint64_t npages;
};

static int pc_send(struct outgoing *o, struct stream *st, uint64_t *entries, uint8_t *data,
		   const uint64_t *list, uint32_t n, uint32_t flags, uint32_t ncount, uint64_t *zero);

/*
 * Requested pages, sent at once on the urgent channel by the return-path
 * thread itself: no hand-over to another thread, no queue behind the push.
 * A page already pushed is sent again all the same: the destination asks
 * only for what it lacks, so that copy is still on its way behind the push,
 * and the source's RAM no longer changes (the later copy is a duplicate the
 * destination drops).  @list is @count page indexes, checked.
 */
static int pc_send_urgent(struct pc_reader *r, const uint64_t *list, uint32_t count)
{
	struct outgoing *o = r->o;
	uint64_t zero = 0, claimed = 0, before = o->ust.bytes_out, sorted[STREAM_PAGES_MAX];
	uint32_t i, again = count;
	int ret;

	/* Those still to send first, the ones sent again after: only the first count as requested. */
	pthread_mutex_lock(&r->q->lock);
	for (i = 0; i < count; i++)
		if (bitmap_test(r->q->post, list[i])) {
			bitmap_clear(r->q->post, list[i]);
			sorted[claimed++] = list[i];
		} else {
			sorted[--again] = list[i];
		}
	pthread_mutex_unlock(&r->q->lock);
	ret = pc_send(o, &o->ust, o->uentries, o->udata, sorted, count, PAGES_F_REQUESTED, (uint32_t)claimed,
		      &zero);
	pthread_mutex_lock(&o->m->lock);
	o->m->stats.pages_requested += claimed;
	o->m->stats.pages_resent += count - claimed;
	o->m->stats.zero_after_switch += zero;
	o->m->stats.requests++;
	o->m->stats.urgent_bytes += o->ust.bytes_out - before;
	pthread_mutex_unlock(&o->m->lock);
	return ret;
}

/* The return path after the switch: page requests, END_OF_COPY, errors. */
static void *pc_reader_thread(void *arg)
{
	struct pc_reader *r = arg;
	struct pc_queue *q = r->q;
	uint8_t *buf = malloc(8 + 8 * STREAM_PAGES_MAX + 1024);
	struct stream_rec rec;
	char err[256];

	pthread_setname_np(pthread_self(), "mig-rp");
	for (;;) {
		uint32_t count, i, n = 0;
		int ret = buf ? stream_read_record(&r->o->st, &rec, buf, 8 + 8 * STREAM_PAGES_MAX + 1023, err,
						   sizeof(err)) : -ENOMEM;
		uint64_t list[STREAM_PAGES_MAX];

		pthread_mutex_lock(&q->lock);
		if (ret) {
			snprintf(q->err, sizeof(q->err), "return path: %s", buf ? err : "out of memory");
			q->failed = true;
		} else if (rec.type == REC_END_OF_COPY) {
			q->end_of_copy = true;
		} else if (rec.type == REC_ERROR) {
			buf[rec.len < 1024 ? rec.len : 1023] = '\0';
			snprintf(q->err, sizeof(q->err), "the destination failed: %.400s", (char *)buf);
			q->failed = true;
		} else if (rec.type == REC_PAGE_REQUEST && rec.len >= 8 &&
			   (memcpy(&count, buf, 4), count >= 1 && count <= STREAM_PAGES_MAX &&
			    rec.len == 8 + 8 * count)) {
			for (i = 0; i < count; i++) {
				uint64_t idx;

				memcpy(&idx, buf + 8 + 8 * i, 8);
				if (idx >= r->npages)
					continue;	/* a bad index is dropped */
				list[n++] = idx;
				if ((q->tail + 1) % q->cap == q->head)
					continue;	/* only for the neighbours: let them go */
				q->reqs[q->tail] = idx;
				q->tail = (q->tail + 1) % q->cap;
			}
		} else {
			snprintf(q->err, sizeof(q->err), "return path: unexpected %s record", stream_rec_name(rec.type));
			q->failed = true;
		}
		pthread_cond_broadcast(&q->cond);
		bool stop = q->failed || q->end_of_copy;
		pthread_mutex_unlock(&q->lock);
		if (stop)
			break;
		if (n && r->o->ufd >= 0) {
			ret = pc_send_urgent(r, list, n);
			if (ret) {
				pthread_mutex_lock(&q->lock);
				snprintf(q->err, sizeof(q->err), "urgent channel: %s", strerror(-ret));
				q->failed = true;
				pthread_cond_broadcast(&q->cond);
				pthread_mutex_unlock(&q->lock);
				break;
			}
		}
	}
	free(buf);
	return NULL;
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

/* After the switch, zero pages go as ranges: one ZERO_PAGES record of @nr {first, npages}. */
static int pc_send_zero(struct stream *st, const uint64_t *ranges, uint32_t nr, uint32_t flags)
{
	uint32_t head[2] = { nr, flags };
	struct iovec iov[2] = { { head, sizeof(head) }, { (void *)ranges, nr * 16 } };

	return stream_write_record(st, REC_ZERO_PAGES, iov, 2);
}

/*
 * Send the pages in @list (n, at most STREAM_PAGES_MAX) on @st with @flags:
 * the data pages as one RAM_PAGES record (through the buffers given), the
 * zero ones as ranges in one ZERO_PAGES record.  *@zero counts the zero ones
 * among the first @ncount.
 */
static int pc_send(struct outgoing *o, struct stream *st, uint64_t *entries, uint8_t *data,
		   const uint64_t *list, uint32_t n, uint32_t flags, uint32_t ncount, uint64_t *zero)
{
	uint32_t head[2] = { 0, flags }, ndata = 0, nr = 0, i;
	uint64_t ranges[2 * STREAM_PAGES_MAX];
	int ret = 0;

	for (i = 0; i < n; i++) {
		const uint8_t *page = ram_page_hva(&o->vm->ram, list[i]);

		if (ram_page_is_zero(page)) {
			range_add(ranges, &nr, list[i]);
			*zero += i < ncount;
		} else {
			memcpy(data + (size_t)ndata * PAGE_SIZE, page, PAGE_SIZE);
			test_corrupt(o, data + (size_t)ndata * PAGE_SIZE, list[i]);
			entries[ndata++] = list[i] << 1;
		}
	}
	if (ndata) {
		struct iovec iov[3] = {
			{ head, sizeof(head) },
			{ entries, ndata * sizeof(uint64_t) },
			{ data, (size_t)ndata * PAGE_SIZE },
		};

		head[0] = ndata;
		ret = stream_write_record(st, REC_RAM_PAGES, iov, 3);
	}
	if (!ret && nr)
		ret = pc_send_zero(st, ranges, nr, flags);
	return ret;
}

/* Stop the source, tell the destination what to drop, send the state, and let it run. */
static int postcopy_switch(struct outgoing *o, struct bitmap *post, uint64_t *stop_ns)
{
	uint64_t npages = ram_npages(&o->vm->ram), i = 0, ranges[2 * 256], nr = 0, ndiscard = 0;
	size_t len = 0;
	int64_t dirtied;
	int ret;

	vm_pause_why(o->vm, "postcopy-switch");
	*stop_ns = stream_now_ns();
	dirtied = dirty_sync(o->vm, &o->tosend);
	if (dirtied < 0)
		return (int)dirtied;
	/* What the destination lacks: never sent, or dirtied since (a word at a time: the downtime). */
	for (i = 0; i < (npages + 63) / 64; i++)
		post->words[i] = ~o->sent.words[i] | o->tosend.words[i];
	if (npages % 64)
		post->words[npages / 64] &= (1ULL << (npages % 64)) - 1;
	/* The DISCARD list: sent in precopy and dirtied since, as ranges. */
	for (i = bitmap_next_set(&o->tosend, 0); i < npages;) {
		uint64_t end = bitmap_next_clear(&o->tosend, i), j, first = UINT64_MAX;

		for (j = i; j <= end; j++) {
			bool drop = j < end && bitmap_test(&o->sent, j);

			if (drop && first == UINT64_MAX)
				first = j;
			if (!drop && first != UINT64_MAX) {
				ranges[2 * nr] = first;
				ranges[2 * nr + 1] = j - first;
				ndiscard += j - first;
				first = UINT64_MAX;
				if (++nr == 255) {
					uint32_t head[2] = { (uint32_t)nr, 0 };
					struct iovec iov[2] = { { head, 8 }, { ranges, nr * 16 } };

					ret = stream_write_record(&o->st, REC_DISCARD, iov, 2);
					if (ret)
						return ret;
					nr = 0;
				}
			}
		}
		i = bitmap_next_set(&o->tosend, end);
	}
	if (nr) {
		uint32_t head[2] = { (uint32_t)nr, 0 };
		struct iovec iov[2] = { { head, 8 }, { ranges, nr * 16 } };

		ret = stream_write_record(&o->st, REC_DISCARD, iov, 2);
		if (ret)
			return ret;
	}
	ret = last_stop(o);
	if (ret)
		return ret;
	ret = send_state(o, REC_POSTCOPY_RUN, &len);
	if (ret)
		return ret;
	pthread_mutex_lock(&o->m->lock);
	o->m->stats.state_bytes = len;
	o->m->stats.pages_discarded = ndiscard;
	o->m->stats.had_at_switch = npages - bitmap_count(post);
	o->m->stats.switch_ns = *stop_ns;
	pthread_mutex_unlock(&o->m->lock);
	return rp_wait_ack(o, ACK_RUNNING, ACK_TIMEOUT_MS);
}

/* After the switch: requests first, the rest in the background, until END_OF_COPY. */
static int postcopy_run(struct outgoing *o, struct bitmap *post)
{
	struct pc_queue q = { .cap = 4096, .post = post };
	struct pc_reader r = { o, &q, ram_npages(&o->vm->ram) };
	uint64_t npages = r.npages, cursor = 0, bytes0 = o->st.bytes_out, bg_start = stream_now_ns(), bg_bytes = 0;
	bool urgent = o->ufd >= 0, empty;
	uint64_t list[STREAM_PAGES_MAX], *local = malloc(q.cap * sizeof(uint64_t));
	struct mig_params params;
	struct bitmap missing;
	uint64_t nonzero = 0;
	pthread_t reader;
	bool done_sent = false;
	int ret = 0, sndbuf = 256 << 10;

	q.reqs = malloc(q.cap * sizeof(uint64_t));
	if (!q.reqs || !local || bitmap_init(&missing, npages)) {
		free(q.reqs);
		free(local);
		return -ENOMEM;
	}
	/* Kept to count, at the end, the non-zero pages the destination lacked: not in the downtime. */
	memcpy(missing.words, post->words, (npages + 63) / 64 * sizeof(uint64_t));
	pthread_mutex_init(&q.lock, NULL);
	pthread_cond_init(&q.cond, NULL);
	/* A requested page waits behind at most this much queued in the kernel. */
	setsockopt(o->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	__atomic_store_n(&o->st.max_bw, 0, __ATOMIC_RELAXED);	/* requests are never throttled */
	ret = -pthread_create(&reader, NULL, pc_reader_thread, &r);
	/*
	 * The push only fills what the requests leave: where CPUs are short, the
	 * return-path thread (which sends requested pages) runs first.  This
	 * thread ends with the migration, so its niceness is never undone.
	 */
	if (!ret && urgent)
		setpriority(PRIO_PROCESS, (id_t)gettid(), PUSH_NICE);
	if (ret) {
		free(q.reqs);
		free(local);
		bitmap_destroy(&missing);
		return ret;
	}
	for (;;) {
		uint32_t nreq = 0, n, i;
		uint64_t zero = 0, sent_req = 0, sent_push = 0;

		pthread_mutex_lock(&o->m->lock);
		params = o->m->params;
		pthread_mutex_unlock(&o->m->lock);
		pthread_mutex_lock(&q.lock);
		while (q.head == q.tail && !q.failed && !q.end_of_copy &&
		       (done_sent || !params.postcopy_background)) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 100000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&q.cond, &q.lock, &ts);
			if (bitmap_next_set(post, 0) >= npages && !done_sent)
				break;
		}
		/* The requested pages themselves have gone on the urgent channel already. */
		while (q.head != q.tail) {
			local[nreq++] = q.reqs[q.head];
			q.head = (q.head + 1) % q.cap;
		}
		if (q.failed) {
			snprintf(o->err, sizeof(o->err), "%s", q.err);
			ret = -EPIPE;
		}
		bool eoc = q.end_of_copy;
		pthread_mutex_unlock(&q.lock);
		if (ret || eoc)
			break;

		/* Without an urgent channel, requested pages first, each once, on this connection. */
		for (i = 0, n = 0; !urgent && i < nreq; i++) {
			uint64_t idx = local[i];

			pthread_mutex_lock(&q.lock);
			bool want = bitmap_test(post, idx);

			if (want)
				bitmap_clear(post, idx);
			pthread_mutex_unlock(&q.lock);
			if (!want)
				continue;
			list[n++] = idx;
			if (n == STREAM_PAGES_MAX) {
				ret = pc_send(o, &o->st, o->entries, o->data, list, n, PAGES_F_REQUESTED, n, &zero);
				sent_req += n;
				n = 0;
				if (ret)
					break;
			}
		}
		if (!ret && n) {
			ret = pc_send(o, &o->st, o->entries, o->data, list, n, PAGES_F_REQUESTED, n, &zero);
			sent_req += n;
		}
		if (nreq)
			cursor = local[nreq - 1] + 1;
		/* Their neighbours next: the guest is likely to touch them soon. */
		pthread_mutex_lock(&q.lock);
		for (i = 0, n = 0; !ret && i < nreq && params.postcopy_window; i++) {
			uint64_t lo = local[i] > params.postcopy_window ? local[i] - params.postcopy_window : 0;
			uint64_t hi = local[i] + params.postcopy_window, j;

			for (j = lo; j <= hi && j < npages && n < STREAM_PAGES_MAX; j++)
				if (bitmap_test(post, j)) {
					bitmap_clear(post, j);
					list[n++] = j;
				}
		}
		pthread_mutex_unlock(&q.lock);
		if (!ret && n) {
			ret = pc_send(o, &o->st, o->entries, o->data, list, n, 0, n, &zero);
			sent_push += n;
		}
		/* Then one background batch, from where the guest last asked, at its own rate. */
		if (!ret && params.postcopy_background && (urgent || !nreq)) {
			uint64_t j = cursor < npages ? cursor : 0, nz = 0, zr[2 * STREAM_PAGES_MAX];
			uint32_t nr = 0;

			/*
			 * Up to PUSH_BATCH data pages, and the zero pages among them as
			 * ranges (a few bytes for a whole idle region).  The lock is
			 * taken a page at a time: the urgent sender never waits long.
			 */
			for (n = 0; n < PUSH_BATCH && nr < STREAM_PAGES_MAX && nz < ZERO_BATCH; j++) {
				pthread_mutex_lock(&q.lock);
				j = bitmap_next_set(post, j);
				if (j >= npages)
					j = bitmap_next_set(post, 0);
				if (j < npages)
					bitmap_clear(post, j);
				pthread_mutex_unlock(&q.lock);
				if (j >= npages)
					break;
				if (ram_page_is_zero(ram_page_hva(&o->vm->ram, j))) {
					range_add(zr, &nr, j);
					nz++;
				} else {
					list[n++] = j;
				}
			}
			cursor = j;
			if (n || nr) {
				uint64_t before = o->st.bytes_out;

				if (n)
					ret = pc_send(o, &o->st, o->entries, o->data, list, n, 0, n, &zero);
				if (!ret && nr)
					ret = pc_send_zero(&o->st, zr, nr, 0);
				zero += nz;
				sent_push += n + nz;
				bg_bytes += o->st.bytes_out - before;
				if (params.max_postcopy_bandwidth) {
					uint64_t due = bg_start + bg_bytes * 1000000000ULL / params.max_postcopy_bandwidth;
					uint64_t now = stream_now_ns();

					if (due > now) {
						struct timespec ts = { (time_t)((due - now) / 1000000000ULL),
								       (long)((due - now) % 1000000000ULL) };

						nanosleep(&ts, NULL);
					}
				} else {
					bg_start = stream_now_ns();
					bg_bytes = 0;
				}
			}
		}
		pthread_mutex_lock(&q.lock);
		empty = bitmap_next_set(post, 0) >= npages;
		uint64_t remaining = bitmap_count(post);
		pthread_mutex_unlock(&q.lock);
		if (!ret && !done_sent && empty) {
			ret = stream_write(&o->st, REC_POSTCOPY_DONE, NULL, 0);
			done_sent = true;
		}
		pthread_mutex_lock(&o->m->lock);
		o->m->stats.pages_requested += sent_req;
		o->m->stats.pages_pushed += sent_push;
		o->m->stats.zero_after_switch += zero;
		o->m->stats.requests += nreq && !urgent ? 1 : 0;
		o->m->stats.bytes_after_switch = o->st.bytes_out - bytes0 + o->m->stats.urgent_bytes;
		o->m->stats.bytes = o->st.bytes_out + o->st.bytes_in + o->m->stats.urgent_bytes;
		o->m->stats.pages_remaining = remaining;
		pthread_mutex_unlock(&o->m->lock);
		if (ret) {
			if (!o->err[0])
				snprintf(o->err, sizeof(o->err), "postcopy: connection to the destination failed: %s",
					 strerror(-ret));
			break;
		}
	}
	/* The reader ends on END_OF_COPY or an error; on our own error, wake it. */
	if (ret) {
		shutdown(o->fd, SHUT_RDWR);
		if (o->ufd >= 0)
			shutdown(o->ufd, SHUT_RDWR);
	}
	pthread_join(reader, NULL);
	/* This copy has not run since the switch: its pages are what they were then. */
	for (uint64_t i = bitmap_next_set(&missing, 0); i < npages; i = bitmap_next_set(&missing, i + 1))
		if (!ram_page_is_zero(ram_page_hva(&o->vm->ram, i)))
			nonzero++;
	pthread_mutex_lock(&o->m->lock);
	o->m->stats.nonzero_at_switch = nonzero;
	pthread_mutex_unlock(&o->m->lock);
	bitmap_destroy(&missing);
	free(q.reqs);
	free(local);
	return ret;
}

void *outgoing_thread(void *arg)
{
	struct migration *m = arg;
	struct outgoing o = { .m = m, .vm = m->vm, .fd = -1, .ufd = -1 };
	uint64_t stop_ns = 0, now;
	bool paused = false, switched = false;
	int ret;

	pthread_setname_np(pthread_self(), "mig-out");
	pthread_mutex_lock(&m->lock);
	m->stats.pages_total = ram_npages(&m->vm->ram);
	pthread_mutex_unlock(&m->lock);
	ret = setup(&o);
	pthread_mutex_lock(&m->lock);
	m->stats.setup_ms = (stream_now_ns() - m->stats.start_ns) / 1000000;
	pthread_mutex_unlock(&m->lock);
	if (!ret)
		ret = iterate(&o);
	if (ret == SWITCH_NOW) {
		struct bitmap post;

		paused = true;
		ret = bitmap_init(&post, ram_npages(&o.vm->ram));
		if (!ret)
			ret = postcopy_switch(&o, &post, &stop_ns);
		if (!ret) {
			/* From here on the guest runs on the destination: this copy never runs again. */
			switched = true;
			now = stream_now_ns();
			dirty_stop(o.vm);
			pthread_mutex_lock(&m->lock);
			m->stats.switch_downtime_ms = (now - stop_ns) / 1000000;
			m->status = MIG_POSTCOPY;
			pthread_mutex_unlock(&m->lock);
			info("postcopy: switched in %llu ms; the guest runs on the destination, pages follow",
			     (unsigned long long)m->stats.switch_downtime_ms);
			ret = postcopy_run(&o, &post);
			pthread_mutex_lock(&m->lock);
			m->stats.postcopy_ms = (stream_now_ns() - stop_ns) / 1000000;
			pthread_mutex_unlock(&m->lock);
		}
		bitmap_destroy(&post);
	} else if (!ret) {
		paused = true;
		ret = complete(&o, &stop_ns);
	}
	now = stream_now_ns();
	dirty_stop(o.vm);

	pthread_mutex_lock(&m->lock);
	m->conn_fd = -1;
	m->stats.end_ns = now;
	m->stats.total_ms = (now - m->stats.start_ns) / 1000000;
	m->stats.bytes = o.st.bytes_out + o.st.bytes_in + o.ust.bytes_out;
	if (!ret) {
		m->stats.downtime_ms = switched ? m->stats.switch_downtime_ms : (now - stop_ns) / 1000000;
		m->status = MIG_COMPLETED;
	}
	pthread_mutex_unlock(&m->lock);
	if (o.fd >= 0)
		close(o.fd);
	if (o.ufd >= 0)
		close(o.ufd);

	if (!ret) {
		info("migration to %s completed: %llu ms, downtime %llu ms; this VM stays paused",
		     m->uri, (unsigned long long)m->stats.total_ms, (unsigned long long)m->stats.downtime_ms);
		vm_hold_paused(o.vm, "migrated");
	} else if (switched) {
		/* The guest runs on the destination; this copy holds what it still lacks: keep it, paused. */
		migration_set_error(m, MIG_FAILED, "%s", o.err[0] ? o.err : strerror(-ret));
		error(ret, "postcopy to %s failed: %s; this copy stays paused with every page the destination lacked",
		      m->uri, m->error);
		vm_hold_paused(o.vm, "postcopy-failed");
	} else {
		if (ret == -ECANCELED || migration_cancelled(m)) {
			migration_set_error(m, MIG_CANCELLED, "cancelled by migrate_cancel");
		} else {
			if (!o.err[0])
				snprintf(o.err, sizeof(o.err), "connection to the destination failed: %s", strerror(-ret));
			migration_set_error(m, MIG_FAILED, "%s", o.err);
		}
		warn("migration to %s %s: %s; the VM goes on here", m->uri,
		     migration_cancelled(m) ? "cancelled" : "failed", m->error);
		/* Nothing is lost: the source still has everything; run it again. */
		if (paused)
			vm_resume(o.vm);
	}
	bitmap_destroy(&o.tosend);
	bitmap_destroy(&o.sent);
	free(o.entries);
	free(o.data);
	free(o.uentries);
	free(o.udata);
	verify_destroy(&o.v);
	free(o.sent_digest);
	return NULL;
}
