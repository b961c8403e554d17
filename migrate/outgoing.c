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
#include <sys/socket.h>
#include <unistd.h>

#include "migrate/migration.h"
#include "migrate/state.h"
#include "migrate/stream.h"
#include "migrate/uri.h"
#include "vmm/dirty.h"
#include "vmm/log.h"
#include "vmm/vm.h"

#define ACK_TIMEOUT_MS 60000

struct outgoing {
	struct migration *m;
	struct vm *vm;
	struct uri uri;
	int fd;
	bool has_rp;
	struct stream st;
	struct bitmap tosend;
	uint64_t *entries;
	uint8_t *data;
	uint64_t round_bytes;
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
			if (ram_page_is_zero(page)) {
				if (skip_zero) {
					nskip++;
				} else {
					o->entries[n++] = i << 1 | PAGE_ENTRY_ZERO;
					nzero++;
				}
			} else {
				memcpy(o->data + ndata * PAGE_SIZE, page, PAGE_SIZE);
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
		}
		if (i >= npages)
			break;
	}
	if (nskip)
		account(o, 0, 0, nskip);
	o->round_bytes = o->st.bytes_out - before;
	return 0;
}

static int setup(struct outgoing *o)
{
	struct stream_header h;
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
	stream_header_for(&h, &o->vm->ram, o->vm->ncpus, 0);
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
	ret = bitmap_init(&o->tosend, ram_npages(&o->vm->ram));
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
	uint64_t round = 0, t0, elapsed_ns, remaining, bw, expected_ms;
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
	pthread_mutex_unlock(&o->m->lock);
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
		o->m->stats.expected_downtime_ms = expected_ms;
		o->m->stats.bytes = o->st.bytes_out + o->st.bytes_in;
		pthread_mutex_unlock(&o->m->lock);
		debug("migration round %llu: %llu bytes in %llu ms, %llu pages left, expected downtime %llu ms",
		      (unsigned long long)round, (unsigned long long)o->round_bytes,
		      (unsigned long long)(elapsed_ns / 1000000), (unsigned long long)remaining,
		      (unsigned long long)expected_ms);
		if (expected_ms <= params.downtime_limit_ms)
			return 0;
		if (params.max_rounds && round >= params.max_rounds)
			return 0;
		ret = rp_check(o);
		if (ret)
			return ret;
	}
}

/* Stop the guest and send the rest.  On return the VM is paused (the caller resumes on failure). */
static int complete(struct outgoing *o, uint64_t *stop_ns)
{
	void *blob = NULL;
	size_t len = 0;
	int64_t dirtied;
	int ret;

	vm_pause_why(o->vm, "finish-migrate");
	*stop_ns = stream_now_ns();
	migration_set_status(o->m, MIG_COMPLETING);
	dirtied = dirty_sync(o->vm, &o->tosend);
	if (dirtied < 0)
		return (int)dirtied;
	ret = send_dirty(o, false);
	if (ret)
		return ret;
	ret = state_save(o->vm, &blob, &len);
	if (ret) {
		snprintf(o->err, sizeof(o->err), "cannot save the machine state: %s", strerror(-ret));
		return ret;
	}
	ret = stream_write(&o->st, REC_MACHINE_STATE, blob, (uint32_t)len);
	free(blob);
	if (!ret)
		ret = stream_write(&o->st, REC_END, NULL, 0);
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

void *outgoing_thread(void *arg)
{
	struct migration *m = arg;
	struct outgoing o = { .m = m, .vm = m->vm, .fd = -1 };
	uint64_t stop_ns = 0, now;
	bool paused = false;
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
	if (!ret) {
		paused = true;
		ret = complete(&o, &stop_ns);
	}
	now = stream_now_ns();
	dirty_stop(o.vm);

	pthread_mutex_lock(&m->lock);
	m->conn_fd = -1;
	m->stats.end_ns = now;
	m->stats.total_ms = (now - m->stats.start_ns) / 1000000;
	m->stats.bytes = o.st.bytes_out + o.st.bytes_in;
	if (!ret) {
		m->stats.downtime_ms = (now - stop_ns) / 1000000;
		m->status = MIG_COMPLETED;
	}
	pthread_mutex_unlock(&m->lock);
	if (o.fd >= 0)
		close(o.fd);

	if (!ret) {
		info("migration to %s completed: %llu ms, downtime %llu ms; this VM stays paused",
		     m->uri, (unsigned long long)m->stats.total_ms, (unsigned long long)m->stats.downtime_ms);
		vm_hold_paused(o.vm, "migrated");
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
	free(o.entries);
	free(o.data);
	return NULL;
}
