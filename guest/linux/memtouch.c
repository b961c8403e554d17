// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * memtouch: the Linux guest's self-verifying workload.
 *
 * One thread per CPU (or -t N) rewrites pages of a buffer at a chosen total
 * rate; every page's content is a function of (page, generation), so any
 * page can be checked at any time.  Before a page is rewritten its current
 * content is checked; on SIGUSR1 or SIGTERM (or after -s SECONDS) the
 * threads stop and every page is checked.  The verdict is printed
 * ("memtouch: PASS ..." or "memtouch: FAIL" with the first bad pages) and
 * is the exit status (0 or 1), which the init hands to the host through
 * vmm-exit.  Thread t owns the pages i with i % threads == t, so no page
 * is ever written by two threads.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE		4096UL
#define WORDS		(PAGE / 8)
#define MAX_THREADS	64
#define MAX_REPORTED	8

static uint8_t *buf;
static uint32_t *gen;			/* each page's generation */
static uint64_t npages;
static unsigned nthreads;
static double rate_mb;			/* total MB/s; 0: as fast as possible */
static volatile sig_atomic_t stop;
static uint64_t bad_early;		/* pages found wrong before a rewrite */
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t written[MAX_THREADS];

static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t word_of(uint64_t page, uint32_t g, uint64_t j)
{
	/* Word 0 is readable by eye: the page number and the generation. */
	return j ? mix(page << 32 ^ (uint64_t)g << 12 ^ j) : page << 32 | g;
}

static void page_fill(uint64_t i, uint32_t g)
{
	uint64_t *w = (uint64_t *)(buf + i * PAGE), j;

	for (j = 0; j < WORDS; j++)
		w[j] = word_of(i, g, j);
}

/* 0 if page @i holds generation gen[i]; else the index of the first bad word + 1. */
static uint64_t page_check(uint64_t i)
{
	const uint64_t *w = (const uint64_t *)(buf + i * PAGE);
	uint64_t j;

	for (j = 0; j < WORDS; j++)
		if (w[j] != word_of(i, gen[i], j))
			return j + 1;
	return 0;
}

static void report_bad(const char *when, uint64_t i, uint64_t word)
{
	const uint64_t *w = (const uint64_t *)(buf + i * PAGE);

	pthread_mutex_lock(&report_lock);
	printf("memtouch: bad page %llu (%s): generation %u expected, word %llu is 0x%016llx (word 0: 0x%016llx)\n",
	       (unsigned long long)i, when, gen[i], (unsigned long long)(word - 1),
	       (unsigned long long)w[word - 1], (unsigned long long)w[0]);
	fflush(stdout);
	pthread_mutex_unlock(&report_lock);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *worker(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	uint64_t mine = (npages - t + nthreads - 1) / nthreads, n = 0, seed = mix(t + 1), bad;
	double per_page = rate_mb > 0 ? nthreads * PAGE / (rate_mb * 1e6) : 0, start = now();

	while (!stop && mine) {
		uint64_t i;

		seed = mix(seed);
		i = (seed % mine) * nthreads + t;
		bad = page_check(i);
		if (bad) {
			__atomic_add_fetch(&bad_early, 1, __ATOMIC_RELAXED);
			if (__atomic_load_n(&bad_early, __ATOMIC_RELAXED) <= MAX_REPORTED)
				report_bad("before a rewrite", i, bad);
		}
		gen[i]++;
		page_fill(i, gen[i]);
		written[t] = ++n;
		/* Pace to the rate: sleep when ahead of it (in steps of at least 1 ms). */
		if (per_page > 0) {
			double ahead = start + n * per_page - now();

			if (ahead > 0.001)
				usleep((useconds_t)(ahead * 1e6));
		}
	}
	return NULL;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: memtouch [-m MIB] [-t THREADS] [-r MB/S] [-s SECONDS] [-p REPORT_S]\n"
		   "Rewrite MIB (default 64) of memory at MB/S (default 10; 0: at full speed) with\n"
		   "THREADS threads (default: one per CPU) until SIGUSR1, SIGTERM or SECONDS, then\n"
		   "verify every page.  Prints PASS or FAIL; exit status 0 or 1 (2: bad usage).\n");
}

int main(int argc, char **argv)
{
	pthread_t th[MAX_THREADS];
	uint64_t mib = 64, i, bad, nbad = 0, total;
	double secs = 0, report = 5, t0, last;
	struct sigaction sa = { .sa_handler = on_signal };
	int c;
	unsigned t;

	nthreads = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	rate_mb = 10;
	while ((c = getopt(argc, argv, "m:t:r:s:p:h")) != -1) {
		switch (c) {
		case 'm': mib = strtoull(optarg, NULL, 0); break;
		case 't': nthreads = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'r': rate_mb = strtod(optarg, NULL); break;
		case 's': secs = strtod(optarg, NULL); break;
		case 'p': report = strtod(optarg, NULL); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!mib || !nthreads || nthreads > MAX_THREADS || rate_mb < 0 || report <= 0) {
		usage(stderr);
		return 2;
	}
	npages = mib << 20 >> 12;
	if (nthreads > npages)
		nthreads = (unsigned)npages;
	buf = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	gen = calloc(npages, sizeof(*gen));
	if (buf == MAP_FAILED || !gen) {
		fprintf(stderr, "memtouch: cannot allocate %llu MiB: %s\n", (unsigned long long)mib, strerror(errno));
		return 2;
	}
	for (i = 0; i < npages; i++)
		page_fill(i, 0);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	printf("memtouch: %llu MiB, %u threads, %.1f MB/s; SIGUSR1 ends it\n", (unsigned long long)mib, nthreads,
	       rate_mb);
	fflush(stdout);
	for (t = 0; t < nthreads; t++)
		pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t);
	t0 = last = now();
	while (!stop && (secs <= 0 || now() - t0 < secs)) {
		usleep(100000);
		if (now() - last >= report) {
			for (total = 0, t = 0; t < nthreads; t++)
				total += written[t];
			last = now();
			printf("memtouch: t=%.0f s, %llu pages written, %.1f MB/s\n", last - t0,
			       (unsigned long long)total, total * PAGE / 1e6 / (last - t0));
			fflush(stdout);
		}
	}
	stop = 1;
	for (t = 0; t < nthreads; t++)
		pthread_join(th[t], NULL);
	for (total = 0, t = 0; t < nthreads; t++)
		total += written[t];
	for (i = 0; i < npages; i++) {
		bad = page_check(i);
		if (bad && ++nbad <= MAX_REPORTED)
			report_bad("final check", i, bad);
	}
	if (nbad || bad_early) {
		printf("memtouch: FAIL: %llu of %llu pages bad at the end, %llu found bad before a rewrite\n",
		       (unsigned long long)nbad, (unsigned long long)npages, (unsigned long long)bad_early);
		return 1;
	}
	printf("memtouch: PASS: %llu pages verified, %llu rewrites in %.1f s\n", (unsigned long long)npages,
	       (unsigned long long)total, now() - t0);
	return 0;
}
