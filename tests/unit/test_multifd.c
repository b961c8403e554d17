// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests: multifd's two sides over socketpairs, without KVM.  The
 * source sends three rounds of one page set, each page's version a function
 * of the round, handed to the connections in turn (so a page's versions
 * travel on different connections), with a fence after each round; the
 * destination's threads load them into a RAM while its "migration thread"
 * reads the main connection's SYNCs.  Every page must hold its last
 * version: the fences kept the versions in order.  Then a source that
 * closes a connection in the middle of a round, and one that never sends
 * the main connection's SYNC: both fail, naming why.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate/channel.h"
#include "migrate/incoming.h"
#include "migrate/migration.h"
#include "migrate/multifd.h"
#include "tests/unit/test.h"
#include "vmm/vm.h"

#define NCHAN	3
#define NPAGES	2048
#define ROUNDS	3

struct world {
	struct vm vm;
	struct migration *m;
	struct incoming in;
	struct channel src[NCHAN], dst[NCHAN];
	struct channel src_main, dst_main;
	uint8_t *src_ram;
};

static void world_init(struct world *w)
{
	int sv[2], i;

	memset(w, 0, sizeof(*w));
	CHECK_EQ(ram_create(&w->vm.ram, NPAGES * PAGE_SIZE), 0);
	w->m = migration_new(&w->vm);
	CHECK(w->m != NULL);
	w->in.m = w->m;
	w->in.vm = &w->vm;
	CHECK_EQ(bitmap_init(&w->in.received, NPAGES), 0);
	w->src_ram = malloc(NPAGES * PAGE_SIZE);
	for (i = 0; i <= NCHAN; i++) {
		struct channel *s = i < NCHAN ? &w->src[i] : &w->src_main, *d = i < NCHAN ? &w->dst[i] : &w->dst_main;

		CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		channel_init(s, i < NCHAN ? (enum channel_role)(CHANNEL_MULTIFD + i) : CHANNEL_MAIN);
		channel_init(d, s->role);
		s->fd = sv[0];
		d->fd = sv[1];
		stream_init(&s->tx, sv[0]);
		stream_init(&d->rx, sv[1]);
		d->peer_timeout_ms = d->rx.timeout_ms = 5000;
	}
}

static void world_destroy(struct world *w)
{
	for (int i = 0; i < NCHAN; i++) {
		channel_close(&w->src[i]);
		channel_close(&w->dst[i]);
	}
	channel_close(&w->src_main);
	channel_close(&w->dst_main);
	bitmap_destroy(&w->in.received);
	migration_free(w->m);
	ram_destroy(&w->vm.ram);
	free(w->src_ram);
}

static uint64_t version(uint64_t page, int round)
{
	return page * 1000003ULL + (uint64_t)round * 7919ULL + 1;
}

/* Round r sends every page i with i % r == 0 (round 1: all), each page its version r, a zero page every 9th. */
static bool in_round(uint64_t i, int r)
{
	return i % (uint64_t)r == 0;
}

static bool zero_in(uint64_t i, int r)
{
	return (i + (uint64_t)r) % 9 == 0;
}

struct src_args {
	struct world *w;
	int close_early;		/* connection 0 closed half way through round 2 */
	bool no_main_sync;		/* the main connection's SYNCs never come */
	int ret;
};

static void *source(void *arg)
{
	struct src_args *a = arg;
	struct world *w = a->w;
	struct multifd_send *ms;
	int r, ret;

	ret = multifd_send_start(&ms, w->src, NCHAN);
	for (r = 1; !ret && r <= ROUNDS; r++) {
		struct multifd_job *job = NULL;
		uint64_t i;

		for (i = 0; i < NPAGES && !ret; i++) {
			if (!in_round(i, r))
				continue;
			if (!job && !(job = multifd_job_get(ms))) {
				ret = -EIO;
				break;
			}
			if (zero_in(i, r)) {
				job->entries[job->n++] = i << 1 | PAGE_ENTRY_ZERO;
			} else {
				uint64_t *p = (uint64_t *)(w->src_ram + i * PAGE_SIZE);

				for (size_t k = 0; k < PAGE_SIZE / 8; k++)
					p[k] = version(i, r) + k;
				job->page[job->ndata++] = (uint8_t *)p;
				job->entries[job->n++] = i << 1;
			}
			if (job->n == STREAM_PAGES_MAX || i + 1 == NPAGES) {
				multifd_job_put(ms, job);
				job = NULL;
			}
			if (a->close_early && r == 2 && i == NPAGES / 2) {
				multifd_send_finish(ms);
				shutdown(w->src[0].fd, SHUT_RDWR);
				ret = -EPIPE;
			}
		}
		if (job && job->n)
			multifd_job_put(ms, job);
		if (!ret && a->no_main_sync) {
			/* Every connection's SYNC 1, and none on the main connection (it writes nowhere). */
			struct stream nowhere;

			stream_init(&nowhere, -1);
			multifd_send_sync(ms, &nowhere);
			ret = -EPIPE;
		} else if (!ret) {
			ret = multifd_send_sync(ms, &w->src_main.tx);
		}
	}
	if (!ret)
		ret = multifd_send_finish(ms);
	multifd_send_free(ms);
	for (int i = 0; i < NCHAN; i++)
		if (!a->no_main_sync)
			shutdown(w->src[i].fd, SHUT_WR);	/* the end: the destination reads each to EOF */
	if (!a->no_main_sync)
		shutdown(w->src_main.fd, SHUT_WR);
	a->ret = ret;
	return NULL;
}

/* The destination's migration thread: the main connection's SYNCs, then the end. */
static int destination(struct world *w, struct multifd_recv *mr, char *err, size_t errlen)
{
	uint8_t buf[64];
	int ret;

	for (;;) {
		struct stream_rec rec;
		uint64_t n;

		ret = stream_read_record(&w->dst_main.rx, &rec, buf, sizeof(buf), err, errlen);
		if (ret == -EPIPE) {
			err[0] = '\0';	/* the source's end, not a failure */
			return multifd_recv_finish(mr, err, errlen);
		}
		if (ret) {
			multifd_recv_failed(mr, err, errlen);
			return ret;
		}
		CHECK_EQ(rec.type, REC_MULTIFD_SYNC);
		memcpy(&n, rec.payload, 8);
		ret = multifd_recv_sync(mr, n, err, errlen);
		if (ret)
			return ret;
	}
}

static void test_rounds_in_order(void)
{
	struct world w;
	struct src_args a = { .w = &w };
	struct multifd_recv *mr;
	pthread_t t;
	char err[512] = "";
	uint64_t i, bad = 0;

	world_init(&w);
	CHECK_EQ(multifd_recv_start(&mr, &w.in, w.dst, NCHAN, &w.dst_main, 5000), 0);
	CHECK_EQ(pthread_create(&t, NULL, source, &a), 0);
	CHECK_EQ(destination(&w, mr, err, sizeof(err)), 0);
	if (err[0])
		fprintf(stderr, "  %s\n", err);
	pthread_join(t, NULL);
	CHECK_EQ(a.ret, 0);
	CHECK(multifd_recv_bytes(mr) > (uint64_t)NPAGES * PAGE_SIZE / 2);
	multifd_recv_free(mr);
	for (i = 0; i < NPAGES; i++) {
		const uint64_t *p = (const uint64_t *)ram_page_hva(&w.vm.ram, i);
		int last = 0;

		for (int r = 1; r <= ROUNDS; r++)
			if (in_round(i, r))
				last = r;
		bad += zero_in(i, last) ? p[0] != 0 || p[511] != 0 : p[0] != version(i, last) || p[511] != version(i, last) + 511;
		CHECK(bitmap_test(&w.in.received, i));
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(w.m->stats.pages_sent + w.m->stats.zero_pages, NPAGES + NPAGES / 2 + (NPAGES + 2) / 3);
	world_destroy(&w);
}

/* A connection that ends in the middle of a round: the destination fails, saying which one. */
static void test_closed_mid_round(void)
{
	struct world w;
	struct src_args a = { .w = &w, .close_early = 1 };
	struct multifd_recv *mr;
	pthread_t t;
	char err[512] = "";

	world_init(&w);
	CHECK_EQ(multifd_recv_start(&mr, &w.in, w.dst, NCHAN, &w.dst_main, 5000), 0);
	CHECK_EQ(pthread_create(&t, NULL, source, &a), 0);
	CHECK(destination(&w, mr, err, sizeof(err)) != 0);
	printf("  the destination said: %s\n", err);
	CHECK(strstr(err, "multifd connection") != NULL);
	pthread_join(t, NULL);
	multifd_recv_free(mr);
	world_destroy(&w);
}

/* The main connection's SYNC never comes: a thread at the fence gives up after peer-timeout. */
static void test_fence_deadline(void)
{
	struct world w;
	struct src_args a = { .w = &w, .no_main_sync = true };
	struct multifd_recv *mr;
	pthread_t t;
	char err[512] = "";

	world_init(&w);
	CHECK_EQ(multifd_recv_start(&mr, &w.in, w.dst, NCHAN, &w.dst_main, 300), 0);
	CHECK_EQ(pthread_create(&t, NULL, source, &a), 0);
	pthread_join(t, NULL);
	/* The main connection stays open and silent: only the fence's deadline ends the wait. */
	CHECK(destination(&w, mr, err, sizeof(err)) != 0);
	printf("  the destination said: %s\n", err);
	CHECK(strstr(err, "MULTIFD_SYNC 1 did not come within 300 ms") != NULL);
	multifd_recv_free(mr);
	world_destroy(&w);
}

TEST_MAIN(TEST(test_rounds_in_order), TEST(test_closed_mid_round), TEST(test_fence_deadline))
