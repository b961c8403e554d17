// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests: the userfaultfd layer and the forked fault server, natively,
 * without KVM.  One process builds a little destination: an anonymous
 * "guest RAM" of NPAGES pages (MADV_DONTFORK, as the VMM's), registered with
 * a uffd, a socketpair for the migration connection, and a fake source (two
 * threads: one answers PAGE_REQUESTs, one pushes pages in the background and
 * ends with POSTCOPY_DONE).  Page i holds a function of i; every 7th page is
 * zero and goes as a zero entry; every 5th page is "had" (received in
 * precopy: written before the uffd is registered, or left untouched when
 * zero).  Two threads then read every page in random order, blocking in the
 * kernel until the server has placed it, and check what they read.
 *
 * Without userfaultfd (not permitted here) only the pure tests run, and the
 * program exits 77 saying why.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "migrate/faultsrv.h"
#include "migrate/stream.h"
#include "migrate/uffd.h"
#include "migrate/verify.h"
#include "tests/unit/test.h"

#define NPAGES		2048
#define PUSH_BATCH	32
#define TIMEOUT_MS	20000

enum { SRC_NORMAL, SRC_DIE_ON_REQUEST, SRC_BAD_RECORD, SRC_SILENT };

struct world {
	uint8_t *ram;
	int mfd;			/* the RAM's memfd (world_memfd), or -1 */
	int uffd;
	int sv[2];			/* [0] the destination's end, [1] the fake source's */
	struct stream dst, src;
	bool urgent;			/* requested pages go on the urgent channel uv */
	int uv[2];
	struct stream udst, usrc;
	struct bitmap have;
	struct faultsrv fs;
	int mode;
	bool push;			/* the fake source pushes; the guest leaves every third page alone */
	/* the fake source */
	pthread_t reader, pusher;
	bool reader_on, pusher_on;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool first_seen;		/* a request was answered: the pusher may start */
	uint64_t first_req;		/* the first page requested */
	bool src_done;			/* POSTCOPY_DONE sent: nothing after it */
	uint32_t req_count[NPAGES];
	uint64_t entries_sent;		/* page entries in RAM_PAGES records, before POSTCOPY_DONE */
	bool got_eoc, bad_request, have_requested;
	char src_err[FAULTSRV_ERR_MAX];	/* an ERROR record from the destination */
	/* the guest */
	pthread_t toucher[2];
	int ntouchers;
	uint64_t touching[2];		/* the page each guest thread reads now */
	uint64_t bad_pages;
};

/*
 * The next world's RAM is a memfd, allocated whole (as --memory-backend
 * memfd): the server places pages through its own mapping of it and
 * UFFDIO_CONTINUE.  Half the pages not had were written and given back to
 * the file (as the VMM does with the pages a DISCARD names).
 */
static bool world_memfd;

static bool page_zero(uint64_t i)
{
	return i % 7 == 3;
}

static bool page_had(uint64_t i)
{
	return i % 5 == 1;
}

static uint64_t page_word(uint64_t i, uint64_t w)
{
	return page_zero(i) ? 0 : i * 0x9e3779b97f4a7c15ULL + w + 1;
}

static void page_fill(uint64_t *p, uint64_t i)
{
	uint64_t w;

	for (w = 0; w < PAGE_SIZE / 8; w++)
		p[w] = page_word(i, w);
}

/* ---- the fake source ---- */

/* Send @n pages as one RAM_PAGES record; w->lock held. */
static int src_send_pages(struct world *w, const uint64_t *idx, uint32_t n, uint32_t flags)
{
	uint64_t *entries = calloc(n, 8), *data = malloc((size_t)n * PAGE_SIZE);
	uint32_t hdr[2] = { n, flags }, i, ndata = 0;
	struct iovec iov[3];
	int ret = -ENOMEM;

	struct stream *st = (flags & PAGES_F_REQUESTED) && w->urgent ? &w->usrc : &w->src;

	if (entries && data && w->urgent) {
		/* As vmm's source does: data pages in RAM_PAGES, zero pages as ZERO_PAGES ranges. */
		uint64_t ranges[2 * STREAM_PAGES_MAX];
		uint32_t nr = 0, zhdr[2] = { 0, flags };

		for (i = 0; i < n; i++) {
			if (!page_zero(idx[i])) {
				entries[ndata] = idx[i] << 1;
				page_fill(data + (size_t)ndata++ * (PAGE_SIZE / 8), idx[i]);
			} else if (nr && ranges[2 * nr - 2] + ranges[2 * nr - 1] == idx[i]) {
				ranges[2 * nr - 1]++;
			} else {
				ranges[2 * nr] = idx[i];
				ranges[2 * nr++ + 1] = 1;
			}
		}
		hdr[0] = ndata;
		zhdr[0] = nr;
		iov[0] = (struct iovec){ hdr, sizeof(hdr) };
		iov[1] = (struct iovec){ entries, 8 * (size_t)ndata };
		iov[2] = (struct iovec){ data, (size_t)ndata * PAGE_SIZE };
		ret = ndata ? stream_write_record(st, REC_RAM_PAGES, iov, 3) : 0;
		iov[0] = (struct iovec){ zhdr, sizeof(zhdr) };
		iov[1] = (struct iovec){ ranges, 16 * (size_t)nr };
		if (!ret && nr)
			ret = stream_write_record(st, REC_ZERO_PAGES, iov, 2);
		if (!ret)
			w->entries_sent += n;
	} else if (entries && data) {
		for (i = 0; i < n; i++) {
			entries[i] = idx[i] << 1 | (page_zero(idx[i]) ? PAGE_ENTRY_ZERO : 0);
			if (!page_zero(idx[i]))
				page_fill(data + (size_t)ndata++ * (PAGE_SIZE / 8), idx[i]);
		}
		iov[0] = (struct iovec){ hdr, sizeof(hdr) };
		iov[1] = (struct iovec){ entries, 8 * (size_t)n };
		iov[2] = (struct iovec){ data, (size_t)ndata * PAGE_SIZE };
		ret = stream_write_record(st, REC_RAM_PAGES, iov, ndata ? 3 : 2);
		if (!ret)
			w->entries_sent += n;
	}
	free(entries);
	free(data);
	return ret;
}

static void *src_reader(void *arg)
{
	struct world *w = arg;
	static __thread uint8_t buf[8192];
	struct stream_rec rec;
	char err[256];
	uint32_t count, zero, i;

	for (;;) {
		if (stream_read_record(&w->src, &rec, buf, sizeof(buf), err, sizeof(err)))
			break;
		switch (rec.type) {
		case REC_PAGE_REQUEST:
			memcpy(&count, buf, 4);
			memcpy(&zero, buf + 4, 4);
			if (!count || count > STREAM_PAGES_MAX || zero || rec.len != 8 + 8 * count) {
				w->bad_request = true;
				break;
			}
			pthread_mutex_lock(&w->lock);
			for (i = 0; i < count; i++) {
				uint64_t p;

				memcpy(&p, buf + 8 + 8 * i, 8);
				if (p >= NPAGES) {
					w->bad_request = true;
					continue;
				}
				w->req_count[p]++;
				if (page_had(p))
					w->have_requested = true;
			}
			if (w->mode == SRC_DIE_ON_REQUEST) {
				/* The source goes away with requests unanswered. */
				shutdown(w->sv[1], SHUT_RDWR);
			} else if (w->mode == SRC_BAD_RECORD) {
				stream_write(&w->src, REC_MACHINE_STATE, w->req_count, 64);
			} else if (w->mode == SRC_NORMAL && !w->src_done) {
				uint64_t idx[STREAM_PAGES_MAX];

				memcpy(idx, buf + 8, 8ULL * count);
				src_send_pages(w, idx, count, PAGES_F_REQUESTED);
				if (!w->first_seen) {
					w->first_req = idx[0];
					w->first_seen = true;
					pthread_cond_broadcast(&w->cond);
				}
			}
			pthread_mutex_unlock(&w->lock);
			break;
		case REC_END_OF_COPY:
			pthread_mutex_lock(&w->lock);
			w->got_eoc = true;
			if (!w->src_done) {
				stream_write(&w->src, REC_POSTCOPY_DONE, NULL, 0);
				w->src_done = true;
			}
			pthread_mutex_unlock(&w->lock);
			break;
		case REC_ERROR:
			snprintf(w->src_err, sizeof(w->src_err), "%.*s", (int)rec.len, (char *)buf);
			break;
		default:
			w->bad_request = true;
			break;
		}
	}
	return NULL;
}

static void *src_pusher(void *arg)
{
	struct world *w = arg;
	uint64_t idx[PUSH_BATCH], i = 0;
	struct timespec nap = { 0, 1000000 }, limit;
	uint32_t n;

	/*
	 * Start once the guest has asked for a page, and push that page again
	 * first: however the threads are scheduled, some pages then come on
	 * request, and one at least arrives twice.
	 */
	clock_gettime(CLOCK_REALTIME, &limit);
	limit.tv_sec += TIMEOUT_MS / 1000;
	pthread_mutex_lock(&w->lock);
	while (!w->first_seen && !w->src_done)
		if (pthread_cond_timedwait(&w->cond, &w->lock, &limit))
			break;
	if (w->first_seen && !w->src_done)
		src_send_pages(w, &w->first_req, 1, 0);
	pthread_mutex_unlock(&w->lock);
	while (i < NPAGES) {
		/* Every page that was not had, also those already sent on request. */
		for (n = 0; i < NPAGES && n < PUSH_BATCH; i++)
			if (!page_had(i))
				idx[n++] = i;
		pthread_mutex_lock(&w->lock);
		if (w->src_done) {
			pthread_mutex_unlock(&w->lock);
			return NULL;
		}
		if (n)
			src_send_pages(w, idx, n, 0);
		pthread_mutex_unlock(&w->lock);
		nanosleep(&nap, NULL);
	}
	pthread_mutex_lock(&w->lock);
	if (!w->src_done) {
		stream_write(&w->src, REC_POSTCOPY_DONE, NULL, 0);
		w->src_done = true;
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* ---- the guest ---- */

static void *toucher(void *arg)
{
	struct world *w = arg;
	static uint32_t seeds;
	uint32_t seed = __atomic_add_fetch(&seeds, 1, __ATOMIC_RELAXED);
	uint32_t order[NPAGES], x = 0x9e3779b9u * seed;
	uint64_t k, j, bad = 0, *at = &w->touching[seed % 2];

	for (k = 0; k < NPAGES; k++)
		order[k] = (uint32_t)k;
	for (k = NPAGES - 1; k > 0; k--) {
		uint32_t t;

		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		j = x % (k + 1);
		t = order[k];
		order[k] = order[j];
		order[j] = t;
	}
	for (k = 0; k < NPAGES; k++) {
		const volatile uint64_t *p = (const uint64_t *)(w->ram + (uint64_t)order[k] * PAGE_SIZE);

		/* Pages that only a push brings. */
		if (w->push && order[k] % 3 == 0)
			continue;
		__atomic_store_n(at, order[k], __ATOMIC_RELAXED);
		for (j = 0; j < PAGE_SIZE / 8; j++)
			if (p[j] != page_word(order[k], j)) {
				bad++;
				break;
			}
	}
	__atomic_add_fetch(&w->bad_pages, bad, __ATOMIC_RELAXED);
	return NULL;
}

/* ---- the world ---- */

static int world_init(struct world *w, int mode, bool have_all, bool push)
{
	char why[512];
	uint64_t i;

	memset(w, 0, sizeof(*w));
	w->uffd = w->sv[0] = w->sv[1] = w->uv[0] = w->uv[1] = w->mfd = -1;
	w->mode = mode;
	w->push = push;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	if (world_memfd) {
		w->mfd = memfd_create("test-ram", MFD_CLOEXEC);
		CHECK(w->mfd >= 0);
		CHECK_EQ(ftruncate(w->mfd, NPAGES * PAGE_SIZE), 0);
		CHECK_EQ(fallocate(w->mfd, 0, 0, NPAGES * PAGE_SIZE), 0);
		w->ram = mmap(NULL, NPAGES * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, w->mfd, 0);
	} else {
		w->ram = mmap(NULL, NPAGES * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
	if (w->ram == MAP_FAILED) {
		w->ram = NULL;
		return -ENOMEM;
	}
	/* As the VMM's guest RAM: not in the fault server, and faults a page at a time. */
	CHECK_EQ(madvise(w->ram, NPAGES * PAGE_SIZE, MADV_DONTFORK), 0);
	madvise(w->ram, NPAGES * PAGE_SIZE, MADV_NOHUGEPAGE);
	CHECK_EQ(bitmap_init(&w->have, NPAGES), 0);
	for (i = 0; i < NPAGES; i++) {
		if (!page_had(i) && !have_all) {
			if (world_memfd && i % 2) {
				/* Written, then given back as the VMM's ram_discard() does: zero, unmapped. */
				memset(w->ram + i * PAGE_SIZE, 0xee, PAGE_SIZE);
				CHECK_EQ(fallocate(w->mfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
						   (off_t)(i * PAGE_SIZE), PAGE_SIZE), 0);
				CHECK_EQ(fallocate(w->mfd, 0, (off_t)(i * PAGE_SIZE), PAGE_SIZE), 0);
			}
			continue;
		}
		bitmap_set(&w->have, i);
		/* Precopy wrote the page before the switch; a zero page it never touched. */
		if (!page_zero(i))
			page_fill((uint64_t *)(w->ram + i * PAGE_SIZE), i);
	}
	w->uffd = world_memfd ? uffd_open_minor(why, sizeof(why)) : uffd_open(why, sizeof(why));
	if (w->uffd < 0) {
		fprintf(stderr, "  %s\n", why);
		return w->uffd;
	}
	CHECK_EQ(world_memfd ? uffd_register_shared(w->uffd, w->ram, NPAGES * PAGE_SIZE) :
			       uffd_register(w->uffd, w->ram, NPAGES * PAGE_SIZE), 0);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, w->sv), 0);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, w->uv), 0);
	stream_init(&w->udst, w->uv[0]);
	stream_init(&w->usrc, w->uv[1]);
	/* Precopy has been going on: the server must go on with these numbers. */
	stream_init(&w->dst, w->sv[0]);
	stream_init(&w->src, w->sv[1]);
	w->dst.seq_in = w->src.seq_out = 1000;
	w->dst.seq_out = w->src.seq_in = 3;
	CHECK_EQ(pthread_create(&w->reader, NULL, src_reader, w), 0);
	w->reader_on = true;
	if (push) {
		CHECK_EQ(pthread_create(&w->pusher, NULL, src_pusher, w), 0);
		w->pusher_on = true;
	}
	return 0;
}

/* The server over the world: the shared map, then a process with the main channel (and the urgent one). */
static int world_start(struct world *w, const struct verify *v)
{
	struct channel ch[2];
	int n = 0, ret;

	channel_init(&ch[n], CHANNEL_MAIN);
	ch[n].fd = w->sv[0];
	ch[n].tx = ch[n].rx = w->dst;
	n++;
	if (w->urgent) {
		channel_init(&ch[n], CHANNEL_URGENT);
		ch[n].fd = w->uv[0];
		ch[n].tx = ch[n].rx = w->udst;
		n++;
	}
	ret = faultsrv_create(&w->fs, NPAGES, &w->have);
	w->fs.ram_memfd = w->mfd;
	if (!ret)
		ret = faultsrv_spawn(&w->fs, ch, n, w->uffd, w->ram, v);
	if (ret)
		return ret;
	/* The server's now (this process's copies were closed). */
	w->sv[0] = -1;
	if (w->urgent)
		w->uv[0] = -1;
	return 0;
}

static bool join_timeout(pthread_t t, int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	return pthread_timedjoin_np(t, NULL, &ts) == 0;
}

static void touch_start(struct world *w, int n)
{
	int i;

	for (i = 0; i < n; i++)
		CHECK_EQ(pthread_create(&w->toucher[i], NULL, toucher, w), 0);
	w->ntouchers = n;
}

static void touch_join(struct world *w)
{
	const struct faultsrv_shared *sh = w->fs.shared;
	int i, k;

	for (i = 0; i < w->ntouchers; i++) {
		if (join_timeout(w->toucher[i], TIMEOUT_MS))
			continue;
		test_failed = 1;
		fprintf(stderr, "  a guest thread is still blocked on a page\n");
		for (k = 0; k < 2; k++) {
			uint64_t p = __atomic_load_n(&w->touching[k], __ATOMIC_RELAXED);

			fprintf(stderr, "  thread %d at page %llu (%s%s), received there %d\n", k,
				(unsigned long long)p, page_had(p) ? "had" : "not had",
				page_zero(p) ? ", zero" : "", sh ? faultsrv_page_received(sh, p) : -1);
		}
		if (sh)
			fprintf(stderr, "  server status %u, %llu local zero, %u pending\n", sh->status,
				(unsigned long long)sh->local_zero, sh->npending);
		/* A wake on the whole range: a thread it releases had missed its wake. */
		if (uffd_wake(w->uffd, w->ram, NPAGES * PAGE_SIZE) == 0 && join_timeout(w->toucher[i], 2000)) {
			fprintf(stderr, "  UFFDIO_WAKE released it\n");
			continue;
		}
		uffd_unregister(w->uffd, w->ram, NPAGES * PAGE_SIZE);
		if (join_timeout(w->toucher[i], 2000)) {
			fprintf(stderr, "  UFFDIO_UNREGISTER released it\n");
			continue;
		}
		/* Nothing releases it: the process cannot go on. */
		fprintf(stderr, "  nothing releases it\n");
		_exit(1);
	}
	w->ntouchers = 0;
}

/* Wait for the control message @want (or anything final); returns the last one seen. */
static int wait_msg(struct faultsrv *fs, int want)
{
	uint64_t deadline = stream_now_ns() + TIMEOUT_MS * 1000000ULL;
	int ret;

	for (;;) {
		struct pollfd p = { .fd = fs->ctl_fd, .events = POLLIN };

		ret = faultsrv_poll(fs);
		if (ret == want || ret == FAULTSRV_MSG_EXITED || ret < 0)
			return ret;
		if (ret)
			continue;
		if (stream_now_ns() > deadline) {
			const struct faultsrv_shared *sh = fs->shared;

			fprintf(stderr, "  no message %d in %d ms: %llu of %llu pages here, %u pending, status %u\n",
				want, TIMEOUT_MS, (unsigned long long)sh->received, (unsigned long long)sh->npages,
				sh->npending, sh->status);
			return -ETIMEDOUT;
		}
		poll(&p, 1, 100);
	}
}

/*
 * What the VMM does on DONE: every page has arrived, but had pages that were
 * never written are still missing and would wait for a server that is going.
 * Unregistering wakes whoever waits and lets the kernel zero-fill them.
 */
static void done_unregister(struct world *w)
{
	CHECK_EQ(uffd_unregister(w->uffd, w->ram, NPAGES * PAGE_SIZE), 0);
}

static void world_destroy(struct world *w)
{
	touch_join(w);
	faultsrv_destroy(&w->fs);
	if (w->sv[1] >= 0)
		shutdown(w->sv[1], SHUT_RDWR);
	if (w->pusher_on)
		pthread_join(w->pusher, NULL);
	if (w->reader_on)
		pthread_join(w->reader, NULL);
	if (w->sv[1] >= 0)
		close(w->sv[1]);
	for (int i = 0; i < 2; i++)
		if (w->uv[i] >= 0)
			close(w->uv[i]);
	if (w->uffd >= 0)
		close(w->uffd);
	bitmap_destroy(&w->have);
	if (w->ram)
		munmap(w->ram, NPAGES * PAGE_SIZE);
	if (w->mfd >= 0)
		close(w->mfd);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
}

/* ---- tests ---- */

static void test_uffd_basic(void)
{
	uint8_t *mem, *src;
	char why[512];
	int fd;

	mem = mmap(NULL, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	src = malloc(3 * PAGE_SIZE + 8);
	CHECK(mem != MAP_FAILED && src);
	if (mem == MAP_FAILED || !src)
		return;
	memset(src, 0xab, 3 * PAGE_SIZE + 8);
	fd = uffd_open(why, sizeof(why));
	CHECK(fd >= 0);
	CHECK_EQ(uffd_register(fd, mem, 4 * PAGE_SIZE), 0);
	/* A source that is not page-aligned, as page data inside a record is. */
	CHECK_EQ(uffd_copy(fd, mem, src + 8, PAGE_SIZE), 0);
	CHECK_EQ(uffd_copy(fd, mem, src, PAGE_SIZE), -EEXIST);
	CHECK_EQ(uffd_zeropage(fd, mem + PAGE_SIZE, PAGE_SIZE), 0);
	CHECK_EQ(uffd_zeropage(fd, mem + PAGE_SIZE, PAGE_SIZE), -EEXIST);
	CHECK_EQ(uffd_copy(fd, mem + PAGE_SIZE, src, PAGE_SIZE), -EEXIST);
	/* Pages 2 and 3 in one go: placed; then a range that runs into a present page. */
	CHECK_EQ(uffd_copy(fd, mem + 2 * PAGE_SIZE, src, 2 * PAGE_SIZE), 0);
	CHECK_EQ(uffd_copy(fd, mem + 2 * PAGE_SIZE, src, 2 * PAGE_SIZE), -EEXIST);
	CHECK_EQ(mem[0], 0xab);
	CHECK_EQ(mem[PAGE_SIZE + 17], 0);
	CHECK_EQ(mem[4 * PAGE_SIZE - 1], 0xab);
	CHECK_EQ(uffd_wake(fd, mem, PAGE_SIZE), 0);
	CHECK_EQ(uffd_unregister(fd, mem, 4 * PAGE_SIZE), 0);
	CHECK_EQ(uffd_check(false, why, sizeof(why)), 0);
	close(fd);
	free(src);
	munmap(mem, 4 * PAGE_SIZE);
}

static void test_uffd_explain(void)
{
	char why[512];

	uffd_explain(-EPERM, why, sizeof(why));
	CHECK(strstr(why, "not permitted") != NULL);
	CHECK(strstr(why, "run as root") != NULL);
	CHECK(strstr(why, "/dev/userfaultfd") != NULL);
	CHECK(strstr(why, "vm.unprivileged_userfaultfd=1") != NULL);
	CHECK(strstr(why, "CAP_SYS_PTRACE") != NULL);
	uffd_explain(-EACCES, why, sizeof(why));
	CHECK(strstr(why, "not permitted") != NULL);
	uffd_explain(-ENOSYS, why, sizeof(why));
	CHECK(strstr(why, "CONFIG_USERFAULTFD") != NULL);
	CHECK(strstr(why, "not permitted") == NULL);
	uffd_explain(-ENOENT, why, sizeof(why));
	CHECK(strstr(why, "CONFIG_USERFAULTFD") != NULL);
	uffd_explain(-EMFILE, why, sizeof(why));
	CHECK(strstr(why, strerror(EMFILE)) != NULL);
}

static void test_latency_percentile(void)
{
	static struct faultsrv_shared sh;
	uint64_t p50, p90, p99, p100;
	uint32_t got[8];
	unsigned i;

	memset(&sh, 0, sizeof(sh));
	CHECK_EQ(faultsrv_latency_percentile(&sh, 50), 0);
	CHECK_EQ(faultsrv_latency_samples(&sh, got, 8), 0);

	/* While every fault has its sample, percentiles are exact (nearest rank). */
	for (i = 0; i < 100; i++)
		sh.lat.sample_us[i] = (i * 37) % 100 + 1;	/* 1..100, shuffled */
	sh.lat.count = 100;
	CHECK_EQ(faultsrv_latency_percentile(&sh, 50), 50);
	CHECK_EQ(faultsrv_latency_percentile(&sh, 90), 90);
	CHECK_EQ(faultsrv_latency_percentile(&sh, 99), 99);
	CHECK_EQ(faultsrv_latency_percentile(&sh, 100), 100);
	CHECK_EQ(faultsrv_latency_percentile(&sh, 0), 1);
	CHECK_EQ(faultsrv_latency_samples(&sh, got, 8), 8);
	CHECK_EQ(got[1], 38);

	/* Beyond the samples: the histogram.  90 % at 10-15 us (bucket 3), 9 % at
	 * 100 us (bucket 6), 1 % at up to 3 ms (bucket 11). */
	memset(&sh, 0, sizeof(sh));
	sh.lat.bucket[3] = 90000;
	sh.lat.bucket[6] = 9000;
	sh.lat.bucket[11] = 1000;
	sh.lat.count = 100000;
	sh.lat.min_ns = 10000;
	sh.lat.max_ns = 3000000;
	CHECK(sh.lat.count > FAULTSRV_LAT_SAMPLES);
	p50 = faultsrv_latency_percentile(&sh, 50);
	p90 = faultsrv_latency_percentile(&sh, 90);
	p99 = faultsrv_latency_percentile(&sh, 99);
	p100 = faultsrv_latency_percentile(&sh, 100);
	CHECK(p50 >= 10 && p50 < 16);
	CHECK(p90 >= 10 && p90 <= 16);
	CHECK(p99 >= 64 && p99 <= 128);
	CHECK_EQ(p100, 3000);
	CHECK(p50 <= p90 && p90 <= p99 && p99 <= p100);
	CHECK_EQ(faultsrv_latency_percentile(&sh, 0), 10);
	CHECK_EQ(faultsrv_latency_samples(&sh, got, 8), 8);
}

static void report(const struct faultsrv_shared *sh)
{
	printf("  fault latency: p50 %llu us, p90 %llu us, p99 %llu us, max %llu us, mean %llu us "
	       "(%llu timed); vCPUs blocked %llu us in all\n",
	       (unsigned long long)faultsrv_latency_percentile(sh, 50),
	       (unsigned long long)faultsrv_latency_percentile(sh, 90),
	       (unsigned long long)faultsrv_latency_percentile(sh, 99),
	       (unsigned long long)(sh->lat.max_ns / 1000),
	       (unsigned long long)(sh->lat.count ? sh->lat.sum_ns / sh->lat.count / 1000 : 0),
	       (unsigned long long)sh->lat.count, (unsigned long long)(sh->blocked_ns / 1000));
	printf("  %llu faults, %llu pages requested in %llu requests; placed %llu requested, %llu pushed "
	       "(%llu zero), %llu had, %llu local zero, %llu duplicates\n",
	       (unsigned long long)sh->faults, (unsigned long long)sh->requested,
	       (unsigned long long)sh->requests, (unsigned long long)sh->placed_requested,
	       (unsigned long long)sh->placed_pushed, (unsigned long long)sh->zero_placed,
	       (unsigned long long)sh->had, (unsigned long long)sh->local_zero,
	       (unsigned long long)sh->duplicates);
}

/* Is @addr inside a mapping of process @pid? */
static bool mapped_in(pid_t pid, const void *addr)
{
	char path[64], line[512];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return true;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2)
			found = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
	}
	fclose(f);
	return found;
}

/* True if /proc/PID/status has the line @line. */
static bool status_says(pid_t pid, const char *line)
{
	char path[64], buf[4096];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	if (!strstr(buf, line))
		fprintf(stderr, "  /proc/%d/status lacks \"%s\"\n", (int)pid, line);
	return strstr(buf, line) != NULL;
}

static int count_fds(pid_t pid)
{
	char path[64];
	struct dirent *d;
	int n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((d = readdir(dir)))
		n += d->d_name[0] != '.';
	closedir(dir);
	return n;
}

/*
 * The whole postcopy: faults, requests, pushes (@push) or none (every page
 * then comes on request), duplicates, END_OF_COPY, DONE, exit 0.
 */
/* verify on: the source's digests of the world's pages, page @bad (if < NPAGES) wrong. */
static int world_verify(struct verify *v, struct ram *layout, uint64_t bad)
{
	uint64_t *page = malloc(PAGE_SIZE), i;

	CHECK_EQ(ram_layout(layout, NPAGES * PAGE_SIZE), 0);
	if (!page || verify_init(v, layout, false)) {
		free(page);
		return -ENOMEM;
	}
	for (i = 0; i < NPAGES; i++) {
		page_fill(page, i);
		v->digest[i] = verify_page_digest(page) ^ (i == bad);
	}
	free(page);
	return 0;
}

static void postcopy_verify(bool push, bool urgent, const struct verify *v)
{
	struct world w;
	const struct faultsrv_shared *sh;
	uint64_t i, had = 0, zero_sent = 0, zero_had = 0, req_total = 0;
	uint32_t max_req = 0;
	int ret;

	if (world_init(&w, SRC_NORMAL, false, push)) {
		test_failed = 1;
		world_destroy(&w);
		return;
	}
	w.urgent = urgent;
	ret = world_start(&w, v);
	CHECK_EQ(ret, 0);
	if (ret) {
		fprintf(stderr, "  %s\n", w.fs.err);
		world_destroy(&w);
		return;
	}
	sh = w.fs.shared;
	/* The server keeps only what it needs: no new privileges, a seccomp filter, no capabilities. */
	CHECK(status_says(w.fs.pid, "NoNewPrivs:\t1"));
	CHECK(status_says(w.fs.pid, "Seccomp:\t2"));
	CHECK(status_says(w.fs.pid, "CapEff:\t0000000000000000"));
	/*
	 * Guest RAM's mapping is not in the server (memfd RAM: the server maps
	 * the file itself, wherever, perhaps at the same address), nor any
	 * descriptor but stdio, conn, urgent, uffd, control, wake pipe.
	 */
	CHECK(world_memfd || !mapped_in(w.fs.pid, w.ram));
	CHECK(mapped_in(getpid(), w.ram));
	CHECK(count_fds(w.fs.pid) <= 9);
	touch_start(&w, 2);
	CHECK_EQ(wait_msg(&w.fs, FAULTSRV_MSG_DONE), FAULTSRV_MSG_DONE);
	done_unregister(&w);
	touch_join(&w);
	CHECK_EQ(faultsrv_wait(&w.fs, TIMEOUT_MS), 0);
	CHECK(w.fs.exited && WIFEXITED(w.fs.wait_status) && WEXITSTATUS(w.fs.wait_status) == 0);
	CHECK(!w.fs.failed);
	CHECK_EQ(sh->status, FAULTSRV_COMPLETE);
	if (w.pusher_on)
		pthread_join(w.pusher, NULL);
	w.pusher_on = false;
	/* The server has exited: the fake source reads to EOF. */
	if (join_timeout(w.reader, TIMEOUT_MS))
		w.reader_on = false;
	CHECK(!w.reader_on);

	CHECK_EQ(w.bad_pages, 0);
	for (i = 0; i < NPAGES; i++) {
		const uint64_t *p = (const uint64_t *)(w.ram + i * PAGE_SIZE);
		uint64_t j;

		for (j = 0; j < PAGE_SIZE / 8; j++)
			if (p[j] != page_word(i, j)) {
				fprintf(stderr, "  page %llu word %llu wrong\n", (unsigned long long)i,
					(unsigned long long)j);
				test_failed = 1;
				break;
			}
		CHECK(faultsrv_page_received(sh, i));
		had += page_had(i);
		zero_sent += !page_had(i) && page_zero(i);
		zero_had += page_had(i) && page_zero(i);
		req_total += w.req_count[i];
		if (w.req_count[i] > max_req)
			max_req = w.req_count[i];
	}
	/* Each page placed exactly once (a second placement is refused: present, with two channels). */
	CHECK_EQ(sh->npages, NPAGES);
	CHECK_EQ(sh->received, NPAGES);
	CHECK_EQ(sh->had, had);
	CHECK_EQ(sh->placed_requested + sh->placed_pushed + sh->had, NPAGES);
	CHECK(urgent || sh->present == 0);
	CHECK(sh->present <= sh->duplicates);
	CHECK_EQ(sh->zero_placed, zero_sent);
	/* Until DONE the server gives had pages never written a zero page; after it, the kernel. */
	CHECK(sh->local_zero <= zero_had);
	/* Everything the source sent before POSTCOPY_DONE arrived; what was here already is a duplicate. */
	CHECK_EQ(sh->duplicates, w.entries_sent - (NPAGES - had));
	CHECK(!push || sh->duplicates > 0);
	/* Never a page twice, never a page that was had. */
	CHECK_EQ(max_req, 1);
	CHECK(!w.have_requested);
	CHECK(!w.bad_request);
	CHECK_EQ(sh->requested, req_total);
	CHECK(sh->requested > 0 && sh->placed_requested > 0);
	if (push)
		CHECK(sh->placed_pushed > 0);
	else
		CHECK_EQ(sh->placed_requested, NPAGES - had);
	CHECK(sh->requests > 0 && sh->requests <= sh->requested);
	CHECK(sh->faults >= sh->requested);
	CHECK(w.got_eoc);
	CHECK(!w.src_err[0]);
	CHECK_EQ(sh->bytes_in, w.src.bytes_out + w.usrc.bytes_out);
	CHECK_EQ(sh->bytes_out, w.src.bytes_in);
	/* Latency: one per requested page that had room to be timed. */
	CHECK_EQ(sh->lat.count + sh->untimed, sh->requested);
	CHECK(sh->lat.count > 0 && sh->lat.sum_ns > 0 && sh->lat.min_ns <= sh->lat.max_ns);
	CHECK(faultsrv_latency_percentile(sh, 50) <= faultsrv_latency_percentile(sh, 99));
	CHECK(faultsrv_latency_percentile(sh, 99) <= sh->lat.max_ns / 1000);
	CHECK(faultsrv_latency_percentile(sh, 50) >= sh->lat.min_ns / 1000);
	CHECK(sh->blocked_ns >= sh->lat.sum_ns);
	CHECK_EQ(sh->npending, 0);
	/* verify on: every page placed here was checked (duplicates are dropped before). */
	CHECK_EQ(sh->verified, v ? sh->placed_requested + sh->placed_pushed : 0);
	CHECK_EQ(sh->verify_bad, 0);
	for (i = 0; i < sh->npending; i++)
		fprintf(stderr, "  still pending: page %llu (%llu waiting), requested %u times\n",
			(unsigned long long)sh->pending[i].page, (unsigned long long)sh->pending[i].nwait,
			w.req_count[sh->pending[i].page]);
	report(sh);
	world_destroy(&w);
}

static void postcopy(bool push, bool urgent)
{
	postcopy_verify(push, urgent, NULL);
}

/* verify on, right digests: every page that arrives is checked, and all pass. */
static void test_faultsrv_verify(void)
{
	struct verify v;
	struct ram layout;

	if (world_verify(&v, &layout, NPAGES)) {
		test_failed = 1;
		return;
	}
	postcopy_verify(true, true, &v);
	verify_destroy(&v);
}

/* verify on, one digest wrong: the server fails naming that page, and tells the source. */
static void test_faultsrv_verify_bad(void)
{
	struct verify v;
	struct ram layout;
	struct world w;

	if (world_verify(&v, &layout, 2) || world_init(&w, SRC_NORMAL, false, false)) {
		test_failed = 1;
		verify_destroy(&v);
		return;
	}
	w.urgent = true;
	CHECK_EQ(world_start(&w, &v), 0);
	touch_start(&w, 1);
	CHECK_EQ(wait_msg(&w.fs, FAULTSRV_MSG_ERROR), FAULTSRV_MSG_ERROR);
	printf("  the server said: %s\n", w.fs.err);
	CHECK(strstr(w.fs.err, "verify: page 2 (gpa 0x2000, ") != NULL);
	CHECK_EQ(w.fs.shared->verify_bad, 1);
	CHECK_EQ(faultsrv_wait(&w.fs, TIMEOUT_MS), -EIO);
	if (join_timeout(w.reader, TIMEOUT_MS))
		w.reader_on = false;
	CHECK(strstr(w.src_err, "verify: page 2") != NULL);
	/* The page was not placed: the guest thread waits on it until the uffd goes. */
	CHECK(!faultsrv_page_received(w.fs.shared, 2));
	close(w.uffd);
	w.uffd = -1;
	touch_join(&w);
	world_destroy(&w);
	verify_destroy(&v);
}

static void test_faultsrv_postcopy(void)
{
	postcopy(true, false);
}

static void test_faultsrv_on_demand(void)
{
	postcopy(false, false);
}

/* Requested pages on the urgent channel, pushed ones on the main connection. */
static void test_faultsrv_urgent(void)
{
	postcopy(true, true);
}

static void test_faultsrv_urgent_on_demand(void)
{
	postcopy(false, true);
}

/* Memfd RAM: every page written into the file and mapped by UFFDIO_CONTINUE, zero ones not written. */
static void test_faultsrv_memfd(void)
{
	world_memfd = true;
	postcopy(true, true);
	world_memfd = false;
}

static void test_faultsrv_memfd_on_demand(void)
{
	world_memfd = true;
	postcopy(false, false);
	world_memfd = false;
}

/* Every page was had: END_OF_COPY and DONE at once, no request ever; faults resolve locally. */
static void test_faultsrv_have_all(void)
{
	struct world w;
	const struct faultsrv_shared *sh;
	uint64_t i, req = 0;

	if (world_init(&w, SRC_NORMAL, true, false)) {
		test_failed = 1;
		world_destroy(&w);
		return;
	}
	CHECK_EQ(world_start(&w, NULL), 0);
	sh = w.fs.shared;
	touch_start(&w, 2);
	CHECK_EQ(wait_msg(&w.fs, FAULTSRV_MSG_DONE), FAULTSRV_MSG_DONE);
	done_unregister(&w);
	touch_join(&w);
	if (faultsrv_wait(&w.fs, TIMEOUT_MS)) {
		fprintf(stderr, "  the server failed after DONE: %s\n", w.fs.shared->error);
		test_failed = 1;
	}
	if (join_timeout(w.reader, TIMEOUT_MS))
		w.reader_on = false;
	CHECK(w.got_eoc);
	for (i = 0; i < NPAGES; i++)
		req += w.req_count[i];
	CHECK_EQ(req, 0);
	CHECK_EQ(sh->requested, 0);
	CHECK_EQ(sh->had, NPAGES);
	CHECK_EQ(w.bad_pages, 0);
	world_destroy(&w);
}

/*
 * The source goes away with a request unanswered: PAUSED (the connection
 * broke: a recovery may go on), exit 3, the map left as it was, and the VMM
 * does not hang.
 */
static void test_faultsrv_conn_lost(void)
{
	struct world w;
	int ret;

	if (world_init(&w, SRC_DIE_ON_REQUEST, false, false)) {
		test_failed = 1;
		world_destroy(&w);
		return;
	}
	CHECK_EQ(world_start(&w, NULL), 0);
	touch_start(&w, 1);
	ret = wait_msg(&w.fs, FAULTSRV_MSG_PAUSED);
	CHECK_EQ(ret, FAULTSRV_MSG_PAUSED);
	CHECK(strstr(w.fs.err, "connection to the source") != NULL);
	CHECK_EQ(faultsrv_wait(&w.fs, TIMEOUT_MS), -EIO);
	CHECK(WIFEXITED(w.fs.wait_status) && WEXITSTATUS(w.fs.wait_status) == 3);
	CHECK_EQ(w.fs.shared->status, FAULTSRV_RUNNING);
	CHECK_STR(w.fs.shared->error, w.fs.err);
	printf("  the server said: %s\n", w.fs.err);
	/* The guest thread is still blocked: releasing the uffd lets it go (reading zeros). */
	close(w.uffd);
	w.uffd = -1;
	touch_join(&w);
	world_destroy(&w);
}

/*
 * A server killed with a fault read and its page requested (the fake source
 * never answers): another one on the same map, over a new connection to a
 * source that answers, asks again for that page, wakes the fault the dead
 * one had read (gone from the userfaultfd), and every page arrives.
 * @pause: the first one is asked to pause (migrate_pause) instead.
 */
static void restart(bool pause)
{
	struct channel ch;
	uint64_t deadline;
	struct world w;
	int ret;

	if (world_init(&w, SRC_SILENT, false, false)) {
		test_failed = 1;
		world_destroy(&w);
		return;
	}
	CHECK_EQ(world_start(&w, NULL), 0);
	touch_start(&w, 2);
	deadline = stream_now_ns() + TIMEOUT_MS * 1000000ULL;
	while (!__atomic_load_n(&w.fs.shared->requested, __ATOMIC_RELAXED) && stream_now_ns() < deadline)
		usleep(1000);
	CHECK(w.fs.shared->requested > 0);
	if (pause)
		faultsrv_pause(&w.fs);
	else
		kill(w.fs.pid, SIGKILL);
	ret = wait_msg(&w.fs, pause ? FAULTSRV_MSG_PAUSED : FAULTSRV_MSG_EXITED);
	CHECK_EQ(ret, pause ? FAULTSRV_MSG_PAUSED : FAULTSRV_MSG_EXITED);
	faultsrv_wait(&w.fs, TIMEOUT_MS);
	/* The old connection ends; a new one, with a source that answers. */
	shutdown(w.sv[1], SHUT_RDWR);
	pthread_join(w.reader, NULL);
	close(w.sv[1]);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, w.sv), 0);
	stream_init(&w.dst, w.sv[0]);
	stream_init(&w.src, w.sv[1]);
	w.mode = SRC_NORMAL;
	CHECK_EQ(pthread_create(&w.reader, NULL, src_reader, &w), 0);
	channel_init(&ch, CHANNEL_MAIN);
	ch.fd = w.sv[0];
	ch.tx = ch.rx = w.dst;
	CHECK_EQ(faultsrv_spawn(&w.fs, &ch, 1, w.uffd, w.ram, NULL), 0);
	w.sv[0] = -1;
	CHECK_EQ(w.fs.shared->generation, 2);
	CHECK_EQ(wait_msg(&w.fs, FAULTSRV_MSG_DONE), FAULTSRV_MSG_DONE);
	done_unregister(&w);
	touch_join(&w);
	CHECK_EQ(faultsrv_wait(&w.fs, TIMEOUT_MS), 0);
	CHECK_EQ(w.fs.shared->received, NPAGES);
	CHECK_EQ(w.bad_pages, 0);
	CHECK(!w.bad_request);
	report(w.fs.shared);
	world_destroy(&w);
}

static void test_faultsrv_restart_killed(void)
{
	restart(false);
}

static void test_faultsrv_restart_paused(void)
{
	restart(true);
}

/* A record that has no place after the switch: ERROR to the VMM and to the source. */
static void test_faultsrv_bad_record(void)
{
	struct world w;

	if (world_init(&w, SRC_BAD_RECORD, false, false)) {
		test_failed = 1;
		world_destroy(&w);
		return;
	}
	CHECK_EQ(world_start(&w, NULL), 0);
	touch_start(&w, 1);
	CHECK_EQ(wait_msg(&w.fs, FAULTSRV_MSG_ERROR), FAULTSRV_MSG_ERROR);
	CHECK(strstr(w.fs.err, "unexpected MACHINE_STATE record") != NULL);
	CHECK_EQ(faultsrv_wait(&w.fs, TIMEOUT_MS), -EIO);
	if (join_timeout(w.reader, TIMEOUT_MS))
		w.reader_on = false;
	CHECK(strstr(w.src_err, "unexpected MACHINE_STATE record") != NULL);
	close(w.uffd);
	w.uffd = -1;
	touch_join(&w);
	world_destroy(&w);
}

/* The VMM dies (its control socket closes): the server goes too, and says so to the source. */
static void test_faultsrv_orphan(void)
{
	struct world w;
	uint64_t deadline;
	int status = 0;
	pid_t r = 0;

	if (world_init(&w, SRC_SILENT, false, false)) {
		test_failed = 1;
		world_destroy(&w);
		return;
	}
	CHECK_EQ(world_start(&w, NULL), 0);
	close(w.fs.ctl_fd);
	w.fs.ctl_fd = -1;
	deadline = stream_now_ns() + TIMEOUT_MS * 1000000ULL;
	while (stream_now_ns() < deadline && (r = waitpid(w.fs.pid, &status, WNOHANG)) == 0)
		usleep(1000);
	CHECK_EQ(r, w.fs.pid);
	if (r == w.fs.pid) {
		w.fs.exited = true;
		w.fs.wait_status = status;
	}
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	CHECK(strstr(w.fs.shared->error, "went away") != NULL);
	if (join_timeout(w.reader, TIMEOUT_MS))
		w.reader_on = false;
	CHECK(strstr(w.src_err, "went away") != NULL);
	world_destroy(&w);
}

/* The server's filter: its loop's syscalls pass, any other kills the process with SIGSYS. */
static void test_faultsrv_filter(void)
{
	static struct faultsrv fs;
	int status = 0;
	pid_t pid;

	CHECK_EQ(faultsrv_filter_build(&fs), 0);
	CHECK(fs.filter_len > 0);
	pid = fork();
	if (pid == 0) {
		struct sock_fprog prog = { fs.filter_len, fs.filter_insn };

		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0))
			_exit(2);
		sched_yield();			/* allowed */
		syscall(SYS_getppid);		/* not */
		_exit(3);
	}
	CHECK(pid > 0);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS);
}

/* Destroy is safe on a zeroed struct, twice, and after a refused start. */
static void test_faultsrv_destroy_safe(void)
{
	struct faultsrv fs;
	struct stream st;
	struct bitmap b;

	memset(&fs, 0, sizeof(fs));
	faultsrv_destroy(&fs);
	faultsrv_destroy(&fs);
	stream_init(&st, -1);
	CHECK_EQ(bitmap_init(&b, 10), 0);
	CHECK_EQ(faultsrv_create(&fs, 11, &b), -EINVAL);
	CHECK(fs.err[0]);
	faultsrv_destroy(&fs);
	bitmap_destroy(&b);
}

static int run(const struct test_case *cases, int n, bool skip)
{
	int i, failed = 0;

	for (i = 0; i < n; i++) {
		test_failed = 0;
		if (!skip)
			cases[i].fn();
		printf("%s %s\n", skip ? "skip" : test_failed ? "FAIL" : "ok  ", cases[i].name);
		fflush(stdout);
		failed += test_failed;
	}
	return failed;
}

int main(void)
{
	static const struct test_case pure[] = {
		TEST(test_uffd_explain), TEST(test_latency_percentile), TEST(test_faultsrv_destroy_safe),
	};
	static const struct test_case with_uffd[] = {
		TEST(test_uffd_basic), TEST(test_faultsrv_postcopy), TEST(test_faultsrv_on_demand),
		TEST(test_faultsrv_urgent), TEST(test_faultsrv_urgent_on_demand),
		TEST(test_faultsrv_memfd), TEST(test_faultsrv_memfd_on_demand),
		TEST(test_faultsrv_have_all), TEST(test_faultsrv_conn_lost), TEST(test_faultsrv_restart_killed),
		TEST(test_faultsrv_restart_paused), TEST(test_faultsrv_bad_record),
		TEST(test_faultsrv_orphan), TEST(test_faultsrv_verify), TEST(test_faultsrv_verify_bad),
		TEST(test_faultsrv_filter),
	};
	int npure = (int)(sizeof(pure) / sizeof(pure[0])), nuffd = (int)(sizeof(with_uffd) / sizeof(with_uffd[0]));
	int failed;
	char why[512];
	bool uffd_ok;

	uffd_ok = uffd_check(false, why, sizeof(why)) == 0;
	failed = run(pure, npure, false) + run(with_uffd, nuffd, !uffd_ok);
	printf("%d of %d tests failed\n", failed, npure + nuffd);
	if (!failed && !uffd_ok) {
		printf("SKIP: the userfaultfd tests did not run: %s\n", why);
		return 77;
	}
	return failed ? 1 : 0;
}
