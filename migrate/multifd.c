// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Multifd (see multifd.h): a thread per connection on each side.
 *
 * Source: each connection has two records, one its thread sends while the
 * migration thread fills the other, handed over under one lock.  The
 * migration thread still scans the dirty bitmap, tests for zero pages and
 * keeps every bitmap: the threads only write, which is where one stream
 * spends its time (the kernel's copy into the socket).
 *
 * Destination: each thread reads its connection as the migration thread
 * reads the main one (the same checks, incoming_load_pages() straight into
 * guest RAM), and parks at each SYNC until the migration thread opens the
 * fence.  Received bits are set atomically (several threads, one bitmap).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "migrate/channel.h"
#include "migrate/incoming.h"
#include "migrate/migration.h"
#include "migrate/multifd.h"
#include "migrate/outgoing.h"

#define JOBS_PER_CHANNEL	2

/* ---- source ---- */

struct send_chan {
	struct multifd_send *ms;
	struct channel *c;
	pthread_t thread;
	bool started;
	struct multifd_job job[JOBS_PER_CHANNEL];
	int head, queued, busy;		/* queue of job indexes from head; busy: the thread is writing one */
};

struct multifd_send {
	int n, next;			/* connections; the next to get a job */
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* any change of queued, busy, failed, stop */
	bool stop, failed;
	uint64_t sync_n;
	uint64_t bytes;			/* atomic */
	char err[256];
	struct send_chan ch[MIGRATION_MULTIFD_MAX];
};

static void send_fail(struct multifd_send *ms, struct send_chan *sc, int ret)
{
	pthread_mutex_lock(&ms->lock);
	if (!ms->failed)
		snprintf(ms->err, sizeof(ms->err), "multifd connection %d: %s", (int)(sc - ms->ch),
			 strerror(-ret));
	ms->failed = true;
	pthread_cond_broadcast(&ms->cond);
	pthread_mutex_unlock(&ms->lock);
}

static int send_job(struct send_chan *sc, struct multifd_job *job)
{
	uint32_t head[2] = { job->n, 0 }, i;
	struct iovec iov[2 + STREAM_PAGES_MAX] = {
		{ head, sizeof(head) },
		{ job->entries, job->n * sizeof(uint64_t) },
	};
	int npiece = 0;

	if (job->sync)
		return stream_write(&sc->c->tx, REC_MULTIFD_SYNC, &job->sync_n, sizeof(job->sync_n));
	for (i = 0; i < job->ndata; i++)
		outgoing_iov_add(iov + 2, &npiece, job->page[i], PAGE_SIZE);
	return stream_write_record(&sc->c->tx, REC_RAM_PAGES, iov, 2 + npiece);
}

static void *send_thread(void *arg)
{
	struct send_chan *sc = arg;
	struct multifd_send *ms = sc->ms;
	char name[16];

	snprintf(name, sizeof(name), "mig-multifd%d", (int)(sc - ms->ch));
	pthread_setname_np(pthread_self(), name);
	for (;;) {
		struct multifd_job *job;
		uint64_t before;
		int ret;

		pthread_mutex_lock(&ms->lock);
		while (!sc->queued && !ms->stop && !ms->failed)
			pthread_cond_wait(&ms->cond, &ms->lock);
		if (!sc->queued || ms->failed) {
			pthread_mutex_unlock(&ms->lock);
			return NULL;
		}
		job = &sc->job[sc->head];
		sc->busy = 1;
		pthread_mutex_unlock(&ms->lock);

		before = sc->c->tx.bytes_out;
		ret = send_job(sc, job);
		__atomic_fetch_add(&ms->bytes, sc->c->tx.bytes_out - before, __ATOMIC_RELAXED);
		if (ret) {
			send_fail(ms, sc, ret);
			return NULL;
		}
		pthread_mutex_lock(&ms->lock);
		sc->head = (sc->head + 1) % JOBS_PER_CHANNEL;
		sc->queued--;
		sc->busy = 0;
		pthread_cond_broadcast(&ms->cond);
		pthread_mutex_unlock(&ms->lock);
	}
}

int multifd_send_start(struct multifd_send **msp, struct channel *chans, int n)
{
	struct multifd_send *ms = calloc(1, sizeof(*ms));
	int i, j, ret = 0;

	*msp = ms;
	if (!ms)
		return -ENOMEM;
	pthread_mutex_init(&ms->lock, NULL);
	pthread_cond_init(&ms->cond, NULL);
	ms->n = n;
	for (i = 0; i < n && !ret; i++) {
		struct send_chan *sc = &ms->ch[i];

		sc->ms = ms;
		sc->c = &chans[i];
		for (j = 0; j < JOBS_PER_CHANNEL; j++)
			if (!(sc->job[j].data = malloc(STREAM_PAGES_MAX * PAGE_SIZE)))
				ret = -ENOMEM;
		if (!ret)
			ret = -pthread_create(&sc->thread, NULL, send_thread, sc);
		sc->started = !ret;
	}
	return ret;
}

struct multifd_job *multifd_job_get(struct multifd_send *ms)
{
	struct send_chan *sc = &ms->ch[ms->next];
	struct multifd_job *job = NULL;

	pthread_mutex_lock(&ms->lock);
	while (sc->queued == JOBS_PER_CHANNEL && !ms->failed && !ms->stop)
		pthread_cond_wait(&ms->cond, &ms->lock);
	if (ms->stop && !ms->failed)
		snprintf(ms->err, sizeof(ms->err), "multifd connections closed already");
	if (!ms->failed && !ms->stop) {
		job = &sc->job[(sc->head + sc->queued) % JOBS_PER_CHANNEL];
		job->n = job->ndata = 0;
		job->sync = false;
	}
	pthread_mutex_unlock(&ms->lock);
	return job;
}

void multifd_job_put(struct multifd_send *ms, struct multifd_job *job)
{
	struct send_chan *sc = &ms->ch[ms->next];

	(void)job;	/* it is the slot multifd_job_get() gave: the next in sc's queue */
	pthread_mutex_lock(&ms->lock);
	sc->queued++;
	pthread_cond_broadcast(&ms->cond);
	pthread_mutex_unlock(&ms->lock);
	ms->next = (ms->next + 1) % ms->n;
}

/* Wait until every connection's queue is sent; 0 or -EIO if a thread failed. */
static int drain(struct multifd_send *ms)
{
	int i, ret;

	pthread_mutex_lock(&ms->lock);
	for (;;) {
		bool idle = true;

		for (i = 0; i < ms->n; i++)
			idle = idle && !ms->ch[i].queued;
		if (idle || ms->failed)
			break;
		pthread_cond_wait(&ms->cond, &ms->lock);
	}
	ret = ms->failed ? -EIO : 0;
	pthread_mutex_unlock(&ms->lock);
	return ret;
}

int multifd_send_sync(struct multifd_send *ms, struct stream *main_tx)
{
	uint64_t n = ++ms->sync_n;
	int i;

	for (i = 0; i < ms->n; i++) {
		struct multifd_job *job;

		ms->next = i;
		job = multifd_job_get(ms);
		if (!job)
			return -EIO;
		job->sync = true;
		job->sync_n = n;
		multifd_job_put(ms, job);
	}
	ms->next = 0;
	if (drain(ms))
		return -EIO;
	return stream_write(main_tx, REC_MULTIFD_SYNC, &n, sizeof(n));
}

int multifd_send_finish(struct multifd_send *ms)
{
	int ret = drain(ms), i;

	pthread_mutex_lock(&ms->lock);
	ms->stop = true;
	pthread_cond_broadcast(&ms->cond);
	pthread_mutex_unlock(&ms->lock);
	for (i = 0; i < ms->n; i++)
		if (ms->ch[i].started) {
			pthread_join(ms->ch[i].thread, NULL);
			ms->ch[i].started = false;
		}
	return ret;
}

uint64_t multifd_send_bytes(const struct multifd_send *ms)
{
	return ms ? __atomic_load_n(&ms->bytes, __ATOMIC_RELAXED) : 0;
}

const char *multifd_send_error(const struct multifd_send *ms)
{
	return ms->err;
}

void multifd_send_free(struct multifd_send *ms)
{
	int i, j;

	if (!ms)
		return;
	pthread_mutex_lock(&ms->lock);
	ms->stop = ms->failed = true;	/* queued records are dropped */
	pthread_cond_broadcast(&ms->cond);
	pthread_mutex_unlock(&ms->lock);
	for (i = 0; i < ms->n; i++) {
		if (ms->ch[i].started) {
			channel_shutdown(ms->ch[i].c);
			pthread_join(ms->ch[i].thread, NULL);
		}
		for (j = 0; j < JOBS_PER_CHANNEL; j++)
			free(ms->ch[i].job[j].data);
	}
	pthread_mutex_destroy(&ms->lock);
	pthread_cond_destroy(&ms->cond);
	free(ms);
}

/* ---- destination ---- */

struct recv_chan {
	struct multifd_recv *mr;
	struct channel *c;
	pthread_t thread;
	bool started;
	uint64_t synced;		/* the last SYNC read */
	bool ended;			/* read to the end (after a SYNC, or before any record) */
	uint8_t *buf;			/* a record's checked part */
};

struct multifd_recv {
	struct incoming *in;
	struct channel *main;
	int n, peer_timeout_ms;
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* any change of synced, ended, open, failed, stop */
	uint64_t open;			/* the fence: threads load past SYNC n for n <= open */
	bool finishing;			/* no more fences: every thread reads to its end */
	bool stop, failed;
	uint64_t bytes;			/* atomic */
	char err[512];
	struct recv_chan ch[MIGRATION_MULTIFD_MAX];
};

static void recv_fail(struct multifd_recv *mr, struct recv_chan *rc, const char *why)
{
	pthread_mutex_lock(&mr->lock);
	if (!mr->failed && !mr->stop)
		snprintf(mr->err, sizeof(mr->err), "multifd connection %d: %s", (int)(rc - mr->ch), why);
	mr->failed = true;
	pthread_cond_broadcast(&mr->cond);
	pthread_mutex_unlock(&mr->lock);
	/* The migration thread may be reading the main connection, which can be silent for a round. */
	channel_shutdown(mr->main);
}

/* After SYNC @n: wait for the fence to open (or the end), at most peer-timeout; 0 or -ETIMEDOUT. */
static int recv_fence(struct multifd_recv *mr, uint64_t n)
{
	struct timespec ts;
	int ret = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += mr->peer_timeout_ms / 1000;
	ts.tv_nsec += (long)(mr->peer_timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&mr->lock);
	while (mr->open < n && !mr->finishing && !mr->stop && !mr->failed && !ret)
		ret = pthread_cond_timedwait(&mr->cond, &mr->lock, &ts) == ETIMEDOUT ? -ETIMEDOUT : 0;
	if (ret && (mr->open >= n || mr->finishing))
		ret = 0;
	if (!ret && (mr->stop || mr->failed))
		ret = -ECANCELED;
	pthread_mutex_unlock(&mr->lock);
	return ret;
}

static void *recv_thread(void *arg)
{
	struct recv_chan *rc = arg;
	struct multifd_recv *mr = rc->mr;
	struct incoming *in = mr->in;
	struct stream *rx = &rc->c->rx;
	char name[16], err[300];
	bool after_sync = true;		/* before any record, the end is clean too (nothing was sent) */

	snprintf(name, sizeof(name), "mig-multifd%d", (int)(rc - mr->ch));
	pthread_setname_np(pthread_self(), name);
	for (;;) {
		struct stream_rec rec;
		uint64_t before = rx->bytes_in, ndata = 0, nzero = 0, n;
		int ret;

		ret = stream_read_head(rx, &rec, rc->buf, STREAM_MAX_PAYLOAD, err, sizeof(err));
		if (ret == -EPIPE && after_sync) {
			/* The source closed it: every page it carried is loaded. */
			pthread_mutex_lock(&mr->lock);
			rc->ended = true;
			pthread_cond_broadcast(&mr->cond);
			pthread_mutex_unlock(&mr->lock);
			return NULL;
		}
		if (ret) {
			recv_fail(mr, rc, ret == -EPIPE ? "closed in the middle of a round" : err);
			return NULL;
		}
		switch (rec.type) {
		case REC_RAM_PAGES:
			/* Rounds count from 1, as the main connection's END_ROUNDs do. */
			ret = incoming_load_pages(in, rx, &rec,
						  (uint16_t)(rc->synced < UINT16_MAX - 1 ? rc->synced + 1 : UINT16_MAX),
						  &ndata, &nzero, err, sizeof(err));
			after_sync = false;
			break;
		case REC_MULTIFD_SYNC:
			memcpy(&n, rec.payload, 8);
			if (n != rc->synced + 1) {
				snprintf(err, sizeof(err), "MULTIFD_SYNC %llu after %llu", (unsigned long long)n,
					 (unsigned long long)rc->synced);
				ret = -EPROTO;
				break;
			}
			pthread_mutex_lock(&mr->lock);
			rc->synced = n;
			pthread_cond_broadcast(&mr->cond);
			pthread_mutex_unlock(&mr->lock);
			ret = recv_fence(mr, n);
			if (ret == -ETIMEDOUT)
				snprintf(err, sizeof(err), "the main connection's MULTIFD_SYNC %llu did not come within %d ms",
					 (unsigned long long)n, mr->peer_timeout_ms);
			else if (ret)
				return NULL;	/* stopped, or another thread failed */
			after_sync = true;
			break;
		default:
			snprintf(err, sizeof(err), "unexpected %s record on a multifd connection",
				 stream_rec_name(rec.type));
			ret = -EPROTO;
		}
		__atomic_fetch_add(&mr->bytes, rx->bytes_in - before, __ATOMIC_RELAXED);
		if (ret) {
			recv_fail(mr, rc, err);
			return NULL;
		}
		if (ndata || nzero) {
			pthread_mutex_lock(&in->m->lock);
			in->m->stats.pages_sent += ndata;
			in->m->stats.zero_pages += nzero;
			pthread_mutex_unlock(&in->m->lock);
		}
	}
}

int multifd_recv_start(struct multifd_recv **mrp, struct incoming *in, struct channel *chans, int n,
		       struct channel *main, int peer_timeout_ms)
{
	struct multifd_recv *mr = calloc(1, sizeof(*mr));
	int i, ret = 0;

	*mrp = mr;
	if (!mr)
		return -ENOMEM;
	pthread_mutex_init(&mr->lock, NULL);
	pthread_cond_init(&mr->cond, NULL);
	mr->in = in;
	mr->main = main;
	mr->n = n;
	mr->peer_timeout_ms = peer_timeout_ms > 0 ? peer_timeout_ms : 3600000;
	for (i = 0; i < n && !ret; i++) {
		struct recv_chan *rc = &mr->ch[i];

		rc->mr = mr;
		rc->c = &chans[i];
		/* Each connection carries a record at least once a round: its SYNC. */
		rc->c->rx.idle_ms = rc->c->peer_timeout_ms;
		rc->buf = malloc(STREAM_MAX_PAYLOAD);
		ret = rc->buf ? -pthread_create(&rc->thread, NULL, recv_thread, rc) : -ENOMEM;
		rc->started = !ret;
	}
	return ret;
}

/* Wait, under mr->lock, until @done(mr) or a failure; 0, or -errno and @err. */
static int recv_wait(struct multifd_recv *mr, bool (*done)(struct multifd_recv *, uint64_t), uint64_t n,
		     char *err, size_t errlen)
{
	int ret = 0;

	pthread_mutex_lock(&mr->lock);
	while (!done(mr, n) && !mr->failed && !mr->stop)
		pthread_cond_wait(&mr->cond, &mr->lock);
	if (mr->failed) {
		snprintf(err, errlen, "%s", mr->err);
		ret = -EIO;
	} else if (mr->stop) {
		snprintf(err, errlen, "multifd stopped");
		ret = -ECANCELED;
	}
	pthread_mutex_unlock(&mr->lock);
	return ret;
}

static bool all_synced(struct multifd_recv *mr, uint64_t n)
{
	for (int i = 0; i < mr->n; i++)
		if (mr->ch[i].synced < n && !mr->ch[i].ended)
			return false;
	return true;
}

static bool all_ended(struct multifd_recv *mr, uint64_t n)
{
	(void)n;
	for (int i = 0; i < mr->n; i++)
		if (!mr->ch[i].ended)
			return false;
	return true;
}

int multifd_recv_sync(struct multifd_recv *mr, uint64_t n, char *err, size_t errlen)
{
	int ret;

	if (n != mr->open + 1) {
		snprintf(err, errlen, "MULTIFD_SYNC %llu on the main connection after %llu", (unsigned long long)n,
			 (unsigned long long)mr->open);
		return -EPROTO;
	}
	/* The threads' reads hold the deadline: one that does not come to its SYNC fails on its own. */
	ret = recv_wait(mr, all_synced, n, err, errlen);
	if (ret)
		return ret;
	for (int i = 0; i < mr->n; i++)
		if (mr->ch[i].ended && mr->ch[i].synced < n) {
			snprintf(err, errlen, "multifd connection %d ended before its MULTIFD_SYNC %llu", i,
				 (unsigned long long)n);
			return -EPROTO;
		}
	pthread_mutex_lock(&mr->lock);
	mr->open = n;
	pthread_cond_broadcast(&mr->cond);
	pthread_mutex_unlock(&mr->lock);
	return 0;
}

int multifd_recv_finish(struct multifd_recv *mr, char *err, size_t errlen)
{
	pthread_mutex_lock(&mr->lock);
	mr->finishing = true;
	pthread_cond_broadcast(&mr->cond);
	pthread_mutex_unlock(&mr->lock);
	return recv_wait(mr, all_ended, 0, err, errlen);
}

uint64_t multifd_recv_bytes(const struct multifd_recv *mr)
{
	return mr ? __atomic_load_n(&mr->bytes, __ATOMIC_RELAXED) : 0;
}

bool multifd_recv_failed(struct multifd_recv *mr, char *err, size_t errlen)
{
	bool failed;

	pthread_mutex_lock(&mr->lock);
	failed = mr->failed;
	if (failed)
		snprintf(err, errlen, "%s", mr->err);
	pthread_mutex_unlock(&mr->lock);
	return failed;
}

void multifd_recv_free(struct multifd_recv *mr)
{
	int i;

	if (!mr)
		return;
	pthread_mutex_lock(&mr->lock);
	mr->stop = true;
	pthread_cond_broadcast(&mr->cond);
	pthread_mutex_unlock(&mr->lock);
	for (i = 0; i < mr->n; i++) {
		if (mr->ch[i].started) {
			channel_shutdown(mr->ch[i].c);
			pthread_join(mr->ch[i].thread, NULL);
		}
		free(mr->ch[i].buf);
	}
	pthread_mutex_destroy(&mr->lock);
	pthread_cond_destroy(&mr->cond);
	free(mr);
}
