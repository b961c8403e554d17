// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * floors: what this machine can do at best, measured in the same run and the
 * same environment as the migration figures, which are then reported as
 * ratios against these.  Inside the QEMU-TCG sandbox an absolute speed means
 * nothing; "precopy moved pages at 0.6 of loopback TCP" means something
 * anywhere.
 *
 * Five floors, each run for a bounded time:
 *
 * - memcpy over large buffers: no migration moves memory faster than memory
 *   moves itself (the source now sends pages from guest RAM and the precopy
 *   destination reads them into guest RAM: the copies left are the kernel's).
 * - UFFDIO_COPY, 4 KiB and 64 KiB per call: how postcopy places pages on the
 *   destination (one requested page, or a pushed batch).  The ceiling of the
 *   postcopy background push, whatever the network.
 * - loopback TCP, one stream, large writes: the migration stream is one TCP
 *   connection, and the tests run it over 127.0.0.1.  The ceiling of precopy
 *   bandwidth, and so of every "pages per second" figure.  Then the same
 *   over kernel TLS (AES-128-GCM, one fixed key set on both ends: the cost of
 *   the records once a migration's handshake is done), the ceiling of a
 *   migration with tls-creds; "n/a" where the kernel has no TLS.
 * - a page that arrives, placed (4 KiB and 64 KiB): read into a buffer and
 *   UFFDIO_COPY'd into anonymous RAM (postcopy today), against written into a
 *   memfd through a second mapping and mapped with UFFDIO_CONTINUE (a minor
 *   fault, no second copy): does zero-copy placement pay here?  Not a
 *   denominator of any target; measure_place() says exactly what is timed.
 * - the remote fault round trip: a thread touches a missing page of a region
 *   registered with userfaultfd; a handler thread reads the fault, sends an
 *   8-byte request over loopback TCP to a "source" thread, which answers with
 *   the 4 KiB page on the same connection; the handler places it with
 *   UFFDIO_COPY, which wakes the toucher.  Timed from the touch to its return,
 *   each page fresh (never placed before, or dropped again with
 *   MADV_DONTNEED, as postcopy's DISCARD does).  No postcopy fault can cost
 *   less: the real one adds a forked server, the stream's framing and
 *   checksum, batching, and a background push sharing the connection.
 *
 * All threads are in this one process; nothing is forked.  Every loop ends
 * at its deadline or at a count limit, every socket has a send and receive
 * timeout, and a handler that fails unregisters the region so that no
 * toucher can wait on a page that will not come.  Only 127.0.0.1 is used.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <linux/tls.h>
#include <linux/userfaultfd.h>

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif

#include "migrate/uffd.h"

#define PAGE		4096UL
#define NS_PER_S	1000000000ULL

#define MEMCPY_BUF	(64UL << 20)	/* larger than any last-level cache */
#define COPY_REGION	(32UL << 20)	/* placed into, then dropped, again and again */
#define TCP_CHUNK	(1UL << 20)
#define FAULT_RING	4096UL		/* pages; all dropped (MADV_DONTNEED) once used */
#define FAULT_WARMUP	8		/* faults not counted: page tables, caches */
#define FAULT_MIN	100		/* samples wanted, even if that takes longer... */
#define FAULT_STRETCH	5		/* ...but at most this many times as long */
#define FAULT_MAX	(1UL << 20)	/* samples, at most */
#define LOOP_MAX	(1UL << 24)	/* any other loop's iterations, at most */
#define IO_TIMEOUT_S	5		/* a socket that blocks this long has failed */
#define GRACE_NS	(10 * NS_PER_S)	/* past its deadline, a phase has failed */

#define EXIT_NO_UFFD	3

struct rtt {
	double p50, p90, p99, max, mean;	/* microseconds */
	uint64_t n;
};

struct floors {
	double memcpy_bps;
	double copy4k_bps, copy64k_bps;
	double tcp_bps;
	double ktls_bps;		/* the same over kernel TLS (AES-128-GCM); 0: no kernel TLS here */
	double place_copy_bps[2], place_minor_bps[2];	/* 4 KiB, 64 KiB */
	struct rtt rtt;
};

static const char *prog = "floors";

static int fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Report "floors: error: MESSAGE: strerror" once and return @err (-errno). */
static int fail(int err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: error: %s: %s\n", prog, msg, strerror(-err));
	return err;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static double rate(uint64_t bytes, uint64_t ns)
{
	return ns ? (double)bytes * 1e9 / (double)ns : 0;
}

static void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* ---- sockets ---- */

static int sock_tune(int fd)
{
	struct timeval tv = { .tv_sec = IO_TIMEOUT_S };
	int one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		return -errno;
	return 0;
}

/* One TCP connection over 127.0.0.1: *a is the connecting end, *b the accepted one. */
static int tcp_pair(int *a, int *b)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	struct timeval tv = { .tv_sec = IO_TIMEOUT_S };
	socklen_t salen = sizeof(sa);
	int lfd, cfd = -1, afd = -1, ret;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return fail(-errno, "socket");
	/* SO_RCVTIMEO bounds accept() too. */
	if (setsockopt(lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 1) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &salen)) {
		ret = fail(-errno, "listen on 127.0.0.1");
		goto out;
	}
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cfd < 0 || connect(cfd, (struct sockaddr *)&sa, sizeof(sa))) {
		ret = fail(-errno, "connect to 127.0.0.1:%u", ntohs(sa.sin_port));
		goto out;
	}
	afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (afd < 0) {
		ret = fail(-errno, "accept on 127.0.0.1:%u", ntohs(sa.sin_port));
		goto out;
	}
	ret = sock_tune(cfd);
	if (!ret)
		ret = sock_tune(afd);
	if (ret) {
		fail(ret, "socket options");
		goto out;
	}
	*a = cfd;
	*b = afd;
	close(lfd);
	return 0;
out:
	if (afd >= 0)
		close(afd);
	if (cfd >= 0)
		close(cfd);
	close(lfd);
	return ret;
}

/* 0, or -EPIPE at end of stream, -ETIMEDOUT after IO_TIMEOUT_S, -errno. */
static int read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = recv(fd, p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		if (!n)
			return -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- memcpy ---- */

static int measure_memcpy(double secs, double *bps)
{
	uint64_t start, end, deadline, bytes = 0;
	uint8_t *src, *dst;
	unsigned long i;
	int ret = 0;

	src = map_anon(MEMCPY_BUF);
	dst = map_anon(MEMCPY_BUF);
	if (!src || !dst) {
		ret = fail(-ENOMEM, "map two buffers of %lu MiB", MEMCPY_BUF >> 20);
		goto out;
	}
	/* Fault both in first: page allocation is not copying. */
	memset(src, 0x5a, MEMCPY_BUF);
	memset(dst, 0, MEMCPY_BUF);
	start = now_ns();
	end = start;
	deadline = start + (uint64_t)(secs * 1e9);
	for (i = 0; i < LOOP_MAX; i++) {
		memcpy(dst, src, MEMCPY_BUF);
		/* The copy is never read: keep the compiler from dropping it. */
		__asm__ __volatile__("" : : "r"(dst) : "memory");
		bytes += MEMCPY_BUF;
		end = now_ns();
		if (end >= deadline)
			break;
	}
	*bps = rate(bytes, end - start);
out:
	if (src)
		munmap(src, MEMCPY_BUF);
	if (dst)
		munmap(dst, MEMCPY_BUF);
	return ret;
}

/* ---- UFFDIO_COPY ---- */

static int open_uffd(void)
{
	char why[512];
	int fd = uffd_open(why, sizeof(why));

	if (fd < 0)
		fprintf(stderr, "%s: error: %s\n", prog, why);
	return fd;
}

/*
 * Place pages @chunk bytes per call into a registered region until it is
 * full, drop them all (not timed), and again, until @secs of placing.
 */
/*
 * UFFDIO_COPY into a region the measurement emptied itself: EEXIST has been
 * seen about once in a hundred runs in the sandbox (a page or huge PMD there
 * that nothing of ours made).  Zap the chunk and place it again, once; the
 * count is printed with the figures, so that it is seen, not hidden.
 */
static unsigned long copy_eexist;

static int copy_placed(int uffd, uint8_t *dst, const void *src, size_t len)
{
	int ret = uffd_copy(uffd, dst, src, len);

	if (ret != -EEXIST)
		return ret;
	copy_eexist++;
	if (madvise(dst, len, MADV_DONTNEED))
		return -EEXIST;
	return uffd_copy(uffd, dst, src, len);
}

static int measure_uffd_copy(double secs, size_t chunk, double *bps)
{
	uint64_t deadline, t0, t, busy = 0, bytes = 0;
	uint8_t *region = NULL, *src = NULL;
	unsigned long pass;
	bool registered = false, done = false;
	size_t off;
	int uffd, ret;

	uffd = open_uffd();
	if (uffd < 0)
		return uffd;
	region = map_anon(COPY_REGION);
	src = map_anon(chunk);
	if (!region || !src) {
		ret = fail(-ENOMEM, "map %lu MiB", COPY_REGION >> 20);
		goto out;
	}
	memset(src, 0xa5, chunk);
	/* As the postcopy destination does: a huge page is not placed 4 KiB at a time. */
	madvise(region, COPY_REGION, MADV_NOHUGEPAGE);
	ret = uffd_register(uffd, region, COPY_REGION);
	if (ret) {
		fail(ret, "register %lu MiB with userfaultfd", COPY_REGION >> 20);
		goto out;
	}
	registered = true;
	deadline = now_ns() + (uint64_t)(secs * 1e9);
	for (pass = 0; pass < LOOP_MAX && !done; pass++) {
		t0 = now_ns();
		t = t0;
		for (off = 0; off < COPY_REGION; off += chunk) {
			ret = copy_placed(uffd, region + off, src, chunk);
			if (ret) {
				fail(ret, "UFFDIO_COPY of %zu bytes", chunk);
				goto out;
			}
			bytes += chunk;
			if (!((off + chunk) & ((256UL << 10) - 1))) {
				t = now_ns();
				if (t >= deadline) {
					done = true;
					break;
				}
			}
		}
		t = now_ns();
		busy += t - t0;
		done = done || t >= deadline;
		if (!done && madvise(region, COPY_REGION, MADV_DONTNEED)) {
			ret = fail(-errno, "madvise(MADV_DONTNEED)");
			goto out;
		}
	}
	*bps = rate(bytes, busy);
out:
	if (registered)
		uffd_unregister(uffd, region, COPY_REGION);
	if (src)
		munmap(src, chunk);
	if (region)
		munmap(region, COPY_REGION);
	close(uffd);
	return ret;
}

/* ---- a page that arrives: placed by copy, or mapped by a minor fault ---- */

/*
 * What the postcopy destination does with a page it has read, the read's own
 * copy stood in for by a memcpy of @chunk bytes to where the read would put
 * them:
 * - copy (today): into a buffer, then UFFDIO_COPY into anonymous guest RAM,
 *   which copies it again;
 * - minor: guest RAM on a memfd, the page written through a second mapping
 *   the userfaultfd does not watch (its pages resident: precopy wrote them,
 *   or they were allocated once), then UFFDIO_CONTINUE maps it in the
 *   guest's mapping; no second copy.
 * Between passes the guest's mapping is dropped (MADV_DONTNEED: anonymous
 * pages freed; the memfd's pages stay in the file, only unmapped).  *@bps is
 * 0 if the kernel has no minor faults on shared memory.
 */
static int measure_place(double secs, size_t chunk, bool minor, double *bps)
{
	uint64_t deadline, t0, t, busy = 0, bytes = 0;
	uint8_t *guest = NULL, *alias = NULL, *src = NULL, *buf = NULL;
	bool registered = false, done = false;
	char why[512];
	unsigned long pass;
	int uffd, mfd = -1, ret;
	size_t off;

	*bps = 0;
	uffd = minor ? uffd_open_minor(why, sizeof(why)) : open_uffd();
	if (uffd == -EOPNOTSUPP && minor)
		return 0;
	if (uffd < 0)
		return minor ? fail(uffd, "%s", why) : uffd;
	src = map_anon(chunk);
	buf = map_anon(chunk);
	if (!src || !buf) {
		ret = fail(-ENOMEM, "map %zu bytes", chunk);
		goto out;
	}
	memset(src, 0x3c, chunk);
	memset(buf, 0, chunk);
	if (minor) {
		mfd = memfd_create("floors", MFD_CLOEXEC);
		if (mfd < 0 || ftruncate(mfd, COPY_REGION)) {
			ret = fail(-errno, "make a memfd of %lu MiB", COPY_REGION >> 20);
			goto out;
		}
		guest = mmap(NULL, COPY_REGION, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
		alias = mmap(NULL, COPY_REGION, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
		if (guest == MAP_FAILED || alias == MAP_FAILED) {
			guest = guest == MAP_FAILED ? NULL : guest;
			alias = alias == MAP_FAILED ? NULL : alias;
			ret = fail(-errno, "map the memfd");
			goto out;
		}
		memset(alias, 0, COPY_REGION);	/* resident, as after precopy */
		ret = uffd_register_minor(uffd, guest, COPY_REGION);
	} else {
		guest = map_anon(COPY_REGION);
		if (!guest) {
			ret = fail(-ENOMEM, "map %lu MiB", COPY_REGION >> 20);
			goto out;
		}
		madvise(guest, COPY_REGION, MADV_NOHUGEPAGE);
		ret = uffd_register(uffd, guest, COPY_REGION);
	}
	if (ret) {
		fail(ret, "register %lu MiB with userfaultfd%s", COPY_REGION >> 20, minor ? " for minor faults" : "");
		goto out;
	}
	registered = true;
	deadline = now_ns() + (uint64_t)(secs * 1e9);
	for (pass = 0; pass < LOOP_MAX && !done; pass++) {
		t0 = now_ns();
		for (off = 0; off < COPY_REGION; off += chunk) {
			if (minor) {
				memcpy(alias + off, src, chunk);
				ret = uffd_continue(uffd, guest + off, chunk);
			} else {
				memcpy(buf, src, chunk);
				ret = copy_placed(uffd, guest + off, buf, chunk);
			}
			if (ret) {
				fail(ret, "%s of %zu bytes", minor ? "UFFDIO_CONTINUE" : "UFFDIO_COPY", chunk);
				goto out;
			}
			bytes += chunk;
			if (!((off + chunk) & ((256UL << 10) - 1)) && now_ns() >= deadline) {
				done = true;
				break;
			}
		}
		t = now_ns();
		busy += t - t0;
		done = done || t >= deadline;
		if (!done && madvise(guest, COPY_REGION, MADV_DONTNEED)) {
			ret = fail(-errno, "madvise(MADV_DONTNEED)");
			goto out;
		}
	}
	*bps = rate(bytes, busy);
out:
	if (registered)
		uffd_unregister(uffd, guest, COPY_REGION);
	if (guest)
		munmap(guest, COPY_REGION);
	if (alias)
		munmap(alias, COPY_REGION);
	if (src)
		munmap(src, chunk);
	if (buf)
		munmap(buf, chunk);
	if (mfd >= 0)
		close(mfd);
	close(uffd);
	return ret;
}

/* ---- loopback TCP ---- */

struct tcp_sender {
	int fd;
	uint64_t deadline;
	uint8_t *buf;
	int err;
};

static void *tcp_send_main(void *arg)
{
	struct tcp_sender *s = arg;
	unsigned long i;
	int ret = 0;

	for (i = 0; i < LOOP_MAX && now_ns() < s->deadline; i++) {
		ret = write_full(s->fd, s->buf, TCP_CHUNK);
		if (ret)
			break;
	}
	shutdown(s->fd, SHUT_WR);
	s->err = ret;
	return NULL;
}

/*
 * Kernel TLS on both ends of a loopback pair, with one fixed key (what a
 * migration's TLS costs once the handshake is done, without it): 0, or
 * -errno where the kernel has no TLS or not this cipher.
 */
static int ktls_pair(int tx, int rx)
{
	struct tls12_crypto_info_aes_gcm_128 ci = {
		.info = { .version = TLS_1_3_VERSION, .cipher_type = TLS_CIPHER_AES_GCM_128 },
	};

	memset(ci.key, 0x5a, sizeof(ci.key));
	memset(ci.iv, 0x3c, sizeof(ci.iv));
	memset(ci.salt, 0x7e, sizeof(ci.salt));
	if (setsockopt(tx, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) ||
	    setsockopt(rx, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) ||
	    setsockopt(tx, SOL_TLS, TLS_TX, &ci, sizeof(ci)) || setsockopt(rx, SOL_TLS, TLS_RX, &ci, sizeof(ci)))
		return -errno;
	return 0;
}

/* Bytes received per second, from the sender's start to the receiver's end of stream (@ktls: over kernel TLS). */
static int measure_tcp(double secs, bool ktls, double *bps)
{
	struct tcp_sender s = { .fd = -1 };
	uint64_t start, end, bytes = 0;
	uint8_t *rbuf = NULL;
	pthread_t thread;
	int rfd = -1, ret;

	s.buf = malloc(TCP_CHUNK);
	rbuf = malloc(TCP_CHUNK);
	if (!s.buf || !rbuf) {
		ret = fail(-ENOMEM, "allocate TCP buffers");
		goto out;
	}
	memset(s.buf, 0x3c, TCP_CHUNK);
	ret = tcp_pair(&s.fd, &rfd);
	if (!ret && ktls && (ret = ktls_pair(s.fd, rfd))) {
		*bps = 0;	/* a question, not a floor: no kernel TLS is an answer */
		ret = 0;
		goto out;
	}
	if (ret)
		goto out;
	start = now_ns();
	end = start;
	s.deadline = start + (uint64_t)(secs * 1e9);
	ret = -pthread_create(&thread, NULL, tcp_send_main, &s);
	if (ret) {
		fail(ret, "start the TCP sender");
		goto out;
	}
	for (;;) {
		ssize_t n = recv(rfd, rbuf, TCP_CHUNK, 0);

		end = now_ns();
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = errno == EAGAIN ? -ETIMEDOUT : -errno;
			fail(ret, "receive over loopback TCP");
			break;
		}
		if (!n)
			break;
		bytes += (uint64_t)n;
		if (end > s.deadline + GRACE_NS) {
			ret = fail(-ETIMEDOUT, "the TCP sender did not stop");
			break;
		}
	}
	/* On failure, make a sender blocked in send() return at once. */
	if (ret)
		shutdown(rfd, SHUT_RDWR);
	pthread_join(thread, NULL);
	if (!ret && s.err)
		ret = fail(s.err, "send over loopback TCP");
	if (!ret)
		*bps = rate(bytes, end - start);
out:
	if (rfd >= 0)
		close(rfd);
	if (s.fd >= 0)
		close(s.fd);
	free(rbuf);
	free(s.buf);
	return ret;
}

/* ---- the remote fault round trip ---- */

struct fault_bench {
	int uffd;
	int stop_fd;		/* eventfd: the handler ends when it is readable */
	int handler_fd;		/* the handler's end of the connection */
	int source_fd;		/* the source's end */
	uint8_t *region;
	uint64_t hard_deadline;	/* the handler gives up here, whatever happens */
	int handler_err;	/* atomic */
	int source_err;
};

/* The source: an 8-byte request (page index) in, that page out, until end of stream. */
static void *fault_source_main(void *arg)
{
	struct fault_bench *fb = arg;
	uint64_t page[PAGE / 8], idx;
	unsigned long i;
	int ret = 0;

	memset(page, 0x6b, sizeof(page));
	for (i = 0; i < 2 * FAULT_MAX; i++) {
		ret = read_full(fb->source_fd, &idx, sizeof(idx));
		if (ret)
			break;
		/* Page index + 1 in the first word: a zero page never passes for it. */
		page[0] = idx + 1;
		ret = write_full(fb->source_fd, page, sizeof(page));
		if (ret)
			break;
	}
	fb->source_err = ret == -EPIPE ? 0 : ret;
	/* A handler waiting for a page that will not come hears it now, not in 5 s. */
	shutdown(fb->source_fd, SHUT_RDWR);
	return NULL;
}

static int handle_fault(struct fault_bench *fb, uint8_t *page)
{
	struct uffd_msg msg;
	uint64_t addr, idx;
	ssize_t n;
	int ret;

	n = read(fb->uffd, &msg, sizeof(msg));
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : fail(-errno, "read the userfaultfd");
	if (n != sizeof(msg))
		return fail(-EIO, "short read of %zd bytes from the userfaultfd", n);
	if (msg.event != UFFD_EVENT_PAGEFAULT)
		return 0;
	addr = msg.arg.pagefault.address & ~(PAGE - 1);
	idx = (addr - (uintptr_t)fb->region) / PAGE;
	if (addr < (uintptr_t)fb->region || idx >= FAULT_RING)
		return fail(-EFAULT, "a fault at %#llx, outside the region",
			    (unsigned long long)addr);
	ret = write_full(fb->handler_fd, &idx, sizeof(idx));
	if (ret)
		return fail(ret, "send a page request");
	ret = read_full(fb->handler_fd, page, PAGE);
	if (ret == -EPIPE)
		return fail(ret, "the source closed the connection before sending page %llu",
			    (unsigned long long)idx);
	if (ret)
		return fail(ret, "receive a requested page");
	ret = uffd_copy(fb->uffd, (void *)(uintptr_t)addr, page, PAGE);
	/* -EEXIST: already placed (a spurious fault); the toucher is awake either way. */
	if (ret && ret != -EEXIST)
		return fail(ret, "UFFDIO_COPY");
	return 0;
}

/*
 * The handler polls the uffd and the stop eventfd, as the KVM selftests'
 * handler does.  Whichever way it ends, it unregisters the region first:
 * a toucher blocked on a page, or about to touch one, then gets a zero page
 * (and notices) instead of waiting for ever.
 */
static void *fault_handler_main(void *arg)
{
	struct fault_bench *fb = arg;
	struct pollfd pfd[2] = {
		{ .fd = fb->uffd, .events = POLLIN },
		{ .fd = fb->stop_fd, .events = POLLIN },
	};
	uint8_t *page;
	unsigned long i;
	int ret = 0;

	page = aligned_alloc(PAGE, PAGE);
	if (!page)
		ret = fail(-ENOMEM, "allocate a page");
	for (i = 0; !ret && i < LOOP_MAX; i++) {
		if (now_ns() > fb->hard_deadline) {
			ret = fail(-ETIMEDOUT, "the fault handler was not stopped");
			break;
		}
		if (poll(pfd, 2, 100) < 0) {
			if (errno != EINTR)
				ret = fail(-errno, "poll");
			continue;
		}
		if (pfd[1].revents)
			break;
		if (pfd[0].revents & POLLIN)
			ret = handle_fault(fb, page);
		else if (pfd[0].revents)
			ret = fail(-EIO, "the userfaultfd reports an error (poll %#x)",
				   pfd[0].revents);
	}
	if (i == LOOP_MAX && !ret)
		ret = fail(-ETIMEDOUT, "the fault handler was not stopped");
	if (ret) {
		__atomic_store_n(&fb->handler_err, ret, __ATOMIC_RELEASE);
		uffd_unregister(fb->uffd, fb->region, FAULT_RING * PAGE);
	}
	free(page);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank, in microseconds; @v sorted, @n > 0. */
static double percentile_us(const uint64_t *v, uint64_t n, double p)
{
	uint64_t rank = (uint64_t)(p / 100 * (double)n + 0.999999);

	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return (double)v[rank - 1] / 1e3;
}

/*
 * Touch fresh pages one at a time, on this thread: FAULT_WARMUP untimed, then
 * timed until @secs have passed and FAULT_MIN were timed, but never longer
 * than FAULT_STRETCH times @secs (a slow machine then gives fewer samples).
 */
static int fault_touch(struct fault_bench *fb, double secs, uint64_t *lat, uint64_t *nlat)
{
	uint64_t i, idx, deadline = 0, stretch = 0, t0, t1, v, n = 0;
	int err;

	for (i = 0; n < FAULT_MAX; i++) {
		idx = i % FAULT_RING;
		/* Outside the timing: make every page of the ring missing again. */
		if (i && !idx && madvise(fb->region, FAULT_RING * PAGE, MADV_DONTNEED))
			return fail(-errno, "madvise(MADV_DONTNEED)");
		if (i == FAULT_WARMUP) {
			deadline = now_ns() + (uint64_t)(secs * 1e9);
			stretch = deadline + (uint64_t)((FAULT_STRETCH - 1) * secs * 1e9);
		}
		t0 = now_ns();
		v = *(volatile uint64_t *)(fb->region + idx * PAGE);
		t1 = now_ns();
		err = __atomic_load_n(&fb->handler_err, __ATOMIC_ACQUIRE);
		if (err)
			return err;	/* the handler said why */
		if (v != idx + 1)
			return fail(-EIO, "page %llu holds %#llx after its fault, not %#llx",
				    (unsigned long long)idx, (unsigned long long)v,
				    (unsigned long long)idx + 1);
		if (i < FAULT_WARMUP)
			continue;
		lat[n++] = t1 - t0;
		if (t1 >= stretch || (t1 >= deadline && n >= FAULT_MIN))
			break;
	}
	*nlat = n;
	return 0;
}

static int measure_fault_rtt(double secs, struct rtt *r)
{
	struct fault_bench fb = { .uffd = -1, .stop_fd = -1, .handler_fd = -1, .source_fd = -1 };
	pthread_t handler, source;
	bool registered = false, have_handler = false, have_source = false;
	uint64_t *lat, n = 0, i, sum = 0, one = 1;
	int ret;

	lat = malloc(FAULT_MAX * sizeof(*lat));
	if (!lat)
		return fail(-ENOMEM, "allocate %lu samples", FAULT_MAX);
	fb.region = map_anon(FAULT_RING * PAGE);
	if (!fb.region) {
		ret = fail(-ENOMEM, "map %lu pages", FAULT_RING);
		goto out;
	}
	madvise(fb.region, FAULT_RING * PAGE, MADV_NOHUGEPAGE);
	fb.uffd = open_uffd();
	if (fb.uffd < 0) {
		ret = fb.uffd;
		goto out;
	}
	ret = uffd_register(fb.uffd, fb.region, FAULT_RING * PAGE);
	if (ret) {
		fail(ret, "register %lu pages with userfaultfd", FAULT_RING);
		goto out;
	}
	registered = true;
	fb.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fb.stop_fd < 0) {
		ret = fail(-errno, "eventfd");
		goto out;
	}
	ret = tcp_pair(&fb.handler_fd, &fb.source_fd);
	if (ret)
		goto out;
	fb.hard_deadline = now_ns() + (uint64_t)(FAULT_STRETCH * secs * 1e9) + GRACE_NS;
	ret = -pthread_create(&source, NULL, fault_source_main, &fb);
	if (ret) {
		fail(ret, "start the source thread");
		goto stop;
	}
	have_source = true;
	ret = -pthread_create(&handler, NULL, fault_handler_main, &fb);
	if (ret) {
		fail(ret, "start the fault handler thread");
		goto stop;
	}
	have_handler = true;

	ret = fault_touch(&fb, secs, lat, &n);

stop:
	if (have_handler) {
		if (write(fb.stop_fd, &one, sizeof(one)) != sizeof(one) && !ret)
			ret = fail(-errno, "stop the fault handler");
		pthread_join(handler, NULL);
	}
	/* End of stream for the source, which then ends. */
	shutdown(fb.handler_fd, SHUT_RDWR);
	if (have_source) {
		pthread_join(source, NULL);
		if (!ret && fb.source_err)
			ret = fail(fb.source_err, "the source thread");
	}
	if (!ret && !n)
		ret = fail(-EIO, "no fault was timed");
	if (!ret) {
		qsort(lat, n, sizeof(*lat), cmp_u64);
		for (i = 0; i < n; i++)
			sum += lat[i];
		r->p50 = percentile_us(lat, n, 50);
		r->p90 = percentile_us(lat, n, 90);
		r->p99 = percentile_us(lat, n, 99);
		r->max = (double)lat[n - 1] / 1e3;
		r->mean = (double)sum / (double)n / 1e3;
		r->n = n;
	}
out:
	if (fb.handler_fd >= 0)
		close(fb.handler_fd);
	if (fb.source_fd >= 0)
		close(fb.source_fd);
	if (fb.stop_fd >= 0)
		close(fb.stop_fd);
	if (registered)
		uffd_unregister(fb.uffd, fb.region, FAULT_RING * PAGE);
	if (fb.uffd >= 0)
		close(fb.uffd);
	if (fb.region)
		munmap(fb.region, FAULT_RING * PAGE);
	free(lat);
	return ret;
}

/* ---- output ---- */

/* @s with anything that would need escaping in JSON replaced by '?'. */
static void json_safe(char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\')
			*s = '?';
}

static void print_json(FILE *f, const struct floors *fl, double secs)
{
	struct utsname u;
	bool sandbox = getenv("KVM_SANDBOX") && !strcmp(getenv("KVM_SANDBOX"), "1");

	if (uname(&u))
		snprintf(u.release, sizeof(u.release), "unknown");
	json_safe(u.release);
	fprintf(f, "{\"seconds\": %g, \"kernel\": \"%s\", \"cpus\": %ld, \"sandbox\": %s,\n",
		secs, u.release, sysconf(_SC_NPROCESSORS_ONLN), sandbox ? "true" : "false");
	fprintf(f, " \"memcpy_bytes_per_s\": %.0f,\n", fl->memcpy_bps);
	fprintf(f, " \"uffd_copy_4k_bytes_per_s\": %.0f,\n", fl->copy4k_bps);
	fprintf(f, " \"uffd_copy_64k_bytes_per_s\": %.0f,\n", fl->copy64k_bps);
	fprintf(f, " \"tcp_bytes_per_s\": %.0f,\n", fl->tcp_bps);
	fprintf(f, " \"ktls_bytes_per_s\": %.0f,\n", fl->ktls_bps);
	fprintf(f, " \"place_copy_4k_bytes_per_s\": %.0f, \"place_copy_64k_bytes_per_s\": %.0f,\n",
		fl->place_copy_bps[0], fl->place_copy_bps[1]);
	fprintf(f, " \"place_minor_4k_bytes_per_s\": %.0f, \"place_minor_64k_bytes_per_s\": %.0f,\n",
		fl->place_minor_bps[0], fl->place_minor_bps[1]);
	fprintf(f, " \"fault_rtt_us\": {\"p50\": %.2f, \"p90\": %.2f, \"p99\": %.2f, "
		"\"max\": %.2f, \"mean\": %.2f, \"n\": %llu}}\n",
		fl->rtt.p50, fl->rtt.p90, fl->rtt.p99, fl->rtt.max, fl->rtt.mean,
		(unsigned long long)fl->rtt.n);
}

static void print_rate(FILE *f, const char *what, double bps)
{
	fprintf(f, "%-32s %8.3f GB/s  (%.2f Gbit/s)\n", what, bps / 1e9, bps * 8 / 1e9);
	fflush(f);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [--seconds N | --quick] [--json FILE|-]\n"
		"\n"
		"Measure this machine's floors, the figures live migration is judged against:\n"
		"memcpy, UFFDIO_COPY (4 KiB and 64 KiB per call), loopback TCP (one stream),\n"
		"a page that arrives placed by copy or by memfd + UFFDIO_CONTINUE (4/64 KiB),\n"
		"and the remote fault round trip (userfaultfd fault -> 8-byte request over\n"
		"127.0.0.1 TCP -> 4 KiB page back -> UFFDIO_COPY), p50/p90/p99/max.\n"
		"\n"
		"  --seconds N   run each measurement about N seconds (default 1.5, 0.05..600);\n"
		"                the fault round trip goes on until it has %d samples, but\n"
		"                stops at %d times N whatever it has\n"
		"  --quick       --seconds 0.3\n"
		"  --json FILE   also write every figure as one JSON object to FILE; with '-'\n"
		"                the JSON goes to stdout and the readable lines to stderr\n"
		"  -h, --help    this text\n"
		"\n"
		"GB/s are 10^9 bytes per second.  Exit status: 0 measured, 1 a measurement\n"
		"failed, 2 bad usage, %d userfaultfd not available (root, /dev/userfaultfd\n"
		"access or vm.unprivileged_userfaultfd=1 is needed).\n",
		prog, FAULT_MIN, FAULT_STRETCH, EXIT_NO_UFFD);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "quick", no_argument, NULL, 'q' },
		{ "json", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct floors fl = { 0 };
	const char *json = NULL;
	double secs = 1.5;
	char why[512], *end;
	FILE *out = stdout, *jf = NULL;
	int c, ret;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			secs = strtod(optarg, &end);
			if (end == optarg || *end || !(secs >= 0.05 && secs <= 600)) {
				fprintf(stderr, "%s: --seconds wants a number from 0.05 to 600, "
					"not '%s'\n", prog, optarg);
				return 2;
			}
			break;
		case 'q':
			secs = 0.3;
			break;
		case 'j':
			json = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
		usage(stderr);
		return 2;
	}

	ret = uffd_check(false, why, sizeof(why));
	if (ret) {
		fprintf(stderr, "%s: cannot measure the fault floors: %s\n", prog, why);
		return EXIT_NO_UFFD;
	}
	if (json && !strcmp(json, "-")) {
		jf = stdout;
		out = stderr;
	} else if (json) {
		jf = fopen(json, "w");
		if (!jf) {
			fprintf(stderr, "%s: cannot write %s: %s\n", prog, json, strerror(errno));
			return 1;
		}
	}

	fprintf(out, "floors: %g s each\n", secs);
	ret = measure_memcpy(secs, &fl.memcpy_bps);
	if (!ret) {
		print_rate(out, "memcpy, 64 MiB buffers", fl.memcpy_bps);
		ret = measure_uffd_copy(secs, PAGE, &fl.copy4k_bps);
	}
	if (!ret) {
		print_rate(out, "UFFDIO_COPY, 4 KiB per call", fl.copy4k_bps);
		ret = measure_uffd_copy(secs, 16 * PAGE, &fl.copy64k_bps);
	}
	if (!ret) {
		print_rate(out, "UFFDIO_COPY, 64 KiB per call", fl.copy64k_bps);
		ret = measure_tcp(secs, false, &fl.tcp_bps);
	}
	if (!ret) {
		print_rate(out, "TCP 127.0.0.1, one stream", fl.tcp_bps);
		ret = measure_tcp(secs, true, &fl.ktls_bps);
	}
	if (!ret && fl.ktls_bps)
		print_rate(out, "TCP 127.0.0.1, kernel TLS", fl.ktls_bps);
	else if (!ret)
		fprintf(out, "%-32s n/a (no kernel TLS here)\n", "TCP 127.0.0.1, kernel TLS");
	for (c = 0; c < 4 && !ret; c++) {
		static const char *const what[4] = {
			"arrived 4 KiB, UFFDIO_COPY", "arrived 4 KiB, memfd+CONTINUE",
			"arrived 64 KiB, UFFDIO_COPY", "arrived 64 KiB, memfd+CONTINUE",
		};
		double *bps = c & 1 ? &fl.place_minor_bps[c >> 1] : &fl.place_copy_bps[c >> 1];

		ret = measure_place(secs, c >> 1 ? 16 * PAGE : PAGE, c & 1, bps);
		/* The minor-fault path is a question, not a floor: its failure is an answer, not the end. */
		if (ret && (c & 1)) {
			fprintf(out, "%-32s n/a (it failed: the error above)\n", what[c]);
			*bps = 0;
			ret = 0;
			continue;
		}
		if (!ret && *bps)
			print_rate(out, what[c], *bps);
		else if (!ret)
			fprintf(out, "%-32s n/a (no minor faults on shared memory here)\n", what[c]);
	}
	if (!ret)
		ret = measure_fault_rtt(secs, &fl.rtt);
	if (!ret) {
		fprintf(out, "%-32s p50 %.1f  p90 %.1f  p99 %.1f  max %.1f us"
			"  (mean %.1f, n %llu)\n",
			"remote fault round trip", fl.rtt.p50, fl.rtt.p90, fl.rtt.p99, fl.rtt.max,
			fl.rtt.mean, (unsigned long long)fl.rtt.n);
		if (copy_eexist)
			fprintf(out, "note: UFFDIO_COPY found a page already there %lu time(s) in emptied memory: "
				"zapped and placed again\n", copy_eexist);
		if (jf)
			print_json(jf, &fl, secs);
	}
	if (jf && jf != stdout) {
		if (fclose(jf) && !ret)
			ret = fail(-errno, "write %s", json);
		/* No half a result: a file there holds every figure. */
		if (ret)
			unlink(json);
	}
	return ret ? 1 : 0;
}
