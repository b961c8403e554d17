// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * dirty.c - the memory workload and correctness oracle for live migration.
 *
 * The working set is ws bytes of pages after the image, starting on a
 * 2 MiB boundary; right before it sits the generation table, one u32 per
 * page.  Page p at generation g > 0 holds 512 u64 words, word i being
 * splitmix64 step i+1 from the seed mix64(g << 32 | p); at generation 0 a
 * page has never been written and must be all zeros, so zero-page handling
 * in the migration path is checked too.  Every word, word 0 included,
 * depends on g, so a stale copy of a page never passes.
 *
 * CPU c owns pages c, c+n, c+2n, ... (n CPUs in the run), so no page or
 * table entry is ever written by two CPUs and the only shared state is a
 * few counters and flags.  Before rewriting a page its owner verifies it
 * against the current generation: the host must carry every page and the
 * table entry across consistently, and the first touch after a bad
 * migration catches a mistake.  Between writes each CPU also re-verifies
 * `verify` pages of its share round-robin, starting half a share away from
 * the writer, so that pages the pattern rarely writes are still checked.
 *
 * Pacing is a per-CPU token bucket on the TSC that holds at most 100 ms
 * of writes (two pages at the least), so the rate holds within a few
 * percent over a second even when the vCPU thread is descheduled for a
 * while, and a long pause (migration downtime) does not turn into a long
 * burst afterwards.
 *
 * tlbflush=1 reloads CR3 before each page write.  QEMU's TCG (7.2 at
 * least) re-arms dirty logging of a page only when a vCPU refills its TLB
 * entry, and this workload, on 2 MiB identity pages, otherwise never does:
 * live migration under TCG then loses writes and the oracle rightly fails.
 * KVM's dirty logging does not depend on the guest's TLB, natively or
 * nested in QEMU TCG (scripts/kvm-sandbox): 50 + 50 migrations at 75 MB/s
 * without tlbflush=1 broke no guest there (docs/kvm-sandbox.md), so the
 * benchmark and the demo no longer set it; it stays as a diagnostic.
 *
 * CPU 0 also keeps time, prints progress, and at the end raises the stop
 * flag, waits for the APs to return from their job (their acknowledgement)
 * and verifies every page against the table.
 */
#include <stdbool.h>
#include <stdint.h>

#include "arch.h"
#include "boot.h"
#include "cmdline.h"
#include "dirty.h"
#include "fwcfg.h"
#include "guest.h"
#include "layout.h"
#include "lib.h"
#include "serial.h"
#include "smp.h"
#include "tsc.h"

#define WORDS_PER_PAGE	(PAGE_SIZE / 8)
#define PAGES_PER_MIB	(0x100000 / PAGE_SIZE)
#define GOLDEN		0x9e3779b97f4a7c15ull
#define FAIL_LINES	8
#define RATE_MAX	(1u << 20)	/* MiB/s, keeps the pacing math in 64 bits */
#define WS_MAX		(1ull << 40)
#define VERIFY_MAX	64
#define GIB4		0x100000000ull

enum dirty_pattern { DIRTY_SEQ, DIRTY_RANDOM, DIRTY_HOTCOLD };

static const char *const dirty_pattern_names[] = { "seq", "random", "hotcold" };

struct dirty_config {
	uint64_t ws, rate, seed, secs, passes, verify, cpus, tlbflush, prefault;
	uint64_t report_ms;	/* between progress lines; 0: none */
	enum dirty_pattern pattern;
	bool corrupt;
};

/* One cache line per CPU: only the owner writes it while the run lasts. */
struct dirty_cpu {
	uint64_t written, verified;	/* read by CPU 0 for progress lines */
	uint64_t rng;
	uint64_t pps, credit, last;	/* pages/s (0: unlimited), token bucket */
	uint32_t share, next, vnext;	/* pages owned, write and verify cursors */
	bool failed;
} __attribute__((aligned(64)));

static struct dirty_config dirty_cfg;
static struct dirty_cpu dirty_cpus[SMP_MAX_CPUS];
static uint64_t dirty_ws_gpa, dirty_start;
static uint32_t *dirty_gen;
static uint32_t dirty_pages, dirty_ncpus;
static uint32_t dirty_stop, dirty_failed, dirty_fail_lines;
/*
 * The host may end the run early by writing a non-zero value here (the
 * monitor's poke, at the address the start line gives): the benchmark stops
 * the guest once it has what it measures, instead of waiting for secs=.
 */
static volatile uint32_t dirty_ctl;

static uint64_t dirty_mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t *dirty_page(uint32_t p)
{
	return (uint64_t *)(dirty_ws_gpa + (uint64_t)p * PAGE_SIZE);
}

static bool dirty_check(uint32_t p)
{
	const uint64_t *w = dirty_page(p);
	uint32_t g = dirty_gen[p];
	uint64_t seed = dirty_mix((uint64_t)g << 32 | p);

	for (unsigned i = 0; i < WORDS_PER_PAGE; i++) {
		uint64_t want = g ? dirty_mix(seed + (i + 1) * GOLDEN) : 0;

		if (w[i] == want)
			continue;
		if (__atomic_fetch_add(&dirty_fail_lines, 1, __ATOMIC_RELAXED) < FAIL_LINES)
			serial_printf("dirty: FAIL page=%u gpa=0x%016lx gen=%u word=%u "
				      "expected=0x%016lx found=0x%016lx\n", p,
				      (uint64_t)w, g, i, want, w[i]);
		return false;
	}
	return true;
}

static void dirty_write(uint32_t p)
{
	uint64_t *w = dirty_page(p);
	uint32_t g = ++dirty_gen[p];
	uint64_t seed = dirty_mix((uint64_t)g << 32 | p);

	for (unsigned i = 0; i < WORDS_PER_PAGE; i++)
		w[i] = dirty_mix(seed + (i + 1) * GOLDEN);
}

static uint64_t dirty_random(struct dirty_cpu *dc)
{
	dc->rng += GOLDEN;
	return dirty_mix(dc->rng);
}

/* The next page to write, as an index into this CPU's share. */
static uint32_t dirty_pick(struct dirty_cpu *dc)
{
	uint64_t r, hot;

	switch (dirty_cfg.pattern) {
	case DIRTY_SEQ:
		r = dc->next;
		dc->next = dc->next + 1 == dc->share ? 0 : dc->next + 1;
		return (uint32_t)r;
	case DIRTY_RANDOM:
		return (uint32_t)(dirty_random(dc) % dc->share);
	case DIRTY_HOTCOLD:
		/* 90% of writes to the first tenth of the share */
		r = dirty_random(dc);
		hot = dc->share / 10 ? dc->share / 10 : 1;
		if (hot == dc->share || r % 10 < 9)
			return (uint32_t)((r >> 8) % hot);
		return (uint32_t)(hot + (r >> 8) % (dc->share - hot));
	}
	return 0;
}

static bool dirty_pace(struct dirty_cpu *dc)
{
	uint64_t hz = tsc_hz(), now, delta, cap;

	if (!dc->pps)
		return true;
	now = rdtsc();
	delta = now - dc->last;
	dc->last = now;
	if (delta > hz / 10)
		delta = hz / 10;
	cap = (dc->pps / 10 > 2 ? dc->pps / 10 : 2) * hz;
	dc->credit += delta * dc->pps;
	if (dc->credit > cap)
		dc->credit = cap;
	if (dc->credit < hz)
		return false;
	dc->credit -= hz;
	return true;
}

static void dirty_fail(struct dirty_cpu *dc)
{
	dc->failed = true;
	__atomic_store_n(&dirty_failed, 1, __ATOMIC_RELEASE);
}

/* One paced write and its re-verifications on this CPU's share. */
static void dirty_step(unsigned cpu)
{
	struct dirty_cpu *dc = &dirty_cpus[cpu];
	uint32_t p;

	if (!dirty_pace(dc)) {
		cpu_relax();
		return;
	}
	p = cpu + dirty_pick(dc) * dirty_ncpus;
	if (!dirty_check(p)) {
		dirty_fail(dc);		/* leave the page as found for the final check */
		return;
	}
	if (dirty_cfg.tlbflush)
		tlb_flush();
	dirty_write(p);
	__atomic_store_n(&dc->written, dc->written + 1, __ATOMIC_RELAXED);

	for (uint64_t n = 0; n < dirty_cfg.verify; n++) {
		p = cpu + dc->vnext * dirty_ncpus;
		dc->vnext = dc->vnext + 1 == dc->share ? 0 : dc->vnext + 1;
		if (!dirty_check(p)) {
			dirty_fail(dc);
			return;
		}
		__atomic_store_n(&dc->verified, dc->verified + 1, __ATOMIC_RELAXED);
	}
}

static void dirty_run_ap(unsigned cpu, void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&dirty_stop, __ATOMIC_ACQUIRE) &&
	       !dirty_cpus[cpu].failed)
		dirty_step(cpu);
}

static uint64_t dirty_passes(void)
{
	return dirty_cpus[0].written / dirty_cpus[0].share;
}

static void dirty_totals(uint64_t *written, uint64_t *verified)
{
	*written = *verified = 0;
	for (unsigned c = 0; c < dirty_ncpus; c++) {
		*written += __atomic_load_n(&dirty_cpus[c].written, __ATOMIC_RELAXED);
		*verified += __atomic_load_n(&dirty_cpus[c].verified, __ATOMIC_RELAXED);
	}
}

static void dirty_progress(uint64_t now, uint64_t *last_tsc, uint64_t *last_written)
{
	uint64_t hz = tsc_hz(), written, verified, pps, mb10, ms;
	char t[32];

	dirty_totals(&written, &verified);
	pps = (written - *last_written) * hz / (now - *last_tsc);
	mb10 = (pps * 10 + PAGES_PER_MIB / 2) / PAGES_PER_MIB;
	ms = (now - dirty_start) / (hz / 1000);
	/* Whole seconds unless the reports come faster: the tests parse t=N. */
	if (dirty_cfg.report_ms % 1000)
		lib_format(t, sizeof(t), "%lu.%03lu", ms / 1000, ms % 1000);
	else
		lib_format(t, sizeof(t), "%lu", (now - dirty_start) / hz);
	serial_printf("dirty: t=%s passes=%lu written=%lu pages/s=%lu MB/s=%lu.%lu "
		      "verified=%lu\n", t, dirty_passes(),
		      written, pps, mb10 / 10, mb10 % 10, verified);
	*last_tsc = now;
	*last_written = written;
}

/* Flip a bit in a page CPU 0 owns, so the race with its writer is ours. */
static void dirty_corrupt(void)
{
	uint32_t p = dirty_pages / 2 / dirty_ncpus * dirty_ncpus;

	serial_printf("dirty: selftest corrupting page=%u gpa=0x%016lx word=5\n",
		      p, (uint64_t)dirty_page(p));
	dirty_page(p)[5] ^= 1;
}

static void dirty_run_bsp(void)
{
	const struct dirty_config *cfg = &dirty_cfg;
	/* Exact: whole seconds must fall on whole seconds (the tests wait for t=N). */
	uint64_t hz = tsc_hz(), period = cfg->report_ms * hz / 1000;
	uint64_t next_report = dirty_start + period, last_tsc = dirty_start;
	uint64_t last_written = 0, now;
	bool corrupted = false;

	for (;;) {
		now = rdtsc();
		if (__atomic_load_n(&dirty_failed, __ATOMIC_ACQUIRE) || dirty_ctl ||
		    (cfg->secs && now - dirty_start >= cfg->secs * hz) ||
		    (cfg->passes && dirty_passes() >= cfg->passes))
			break;
		if (period && now >= next_report) {
			dirty_progress(now, &last_tsc, &last_written);
			while (next_report <= now)	/* skip reports missed while paused */
				next_report += period;
		}
		if (cfg->corrupt && !corrupted && now - dirty_start >= hz) {
			dirty_corrupt();
			corrupted = true;
		}
		dirty_step(0);
	}
}

static bool dirty_parse_pattern(const char *v, enum dirty_pattern *out)
{
	for (unsigned i = 0; i < 3; i++)
		if (!strcmp(v, dirty_pattern_names[i])) {
			*out = (enum dirty_pattern)i;
			return true;
		}
	return false;
}

/* N seconds, or Nms; at most an hour. */
static bool dirty_parse_period(const char *v, uint64_t *ms)
{
	char digits[24];
	size_t n = strlen(v);
	uint64_t x;

	if (n > 2 && n < sizeof(digits) && !strcmp(v + n - 2, "ms")) {
		memcpy(digits, v, n - 2);
		digits[n - 2] = '\0';
		if (!cmdline_number(digits, &x) || (x && x < 10))
			return false;
		*ms = x;
	} else {
		if (!cmdline_number(v, &x) || x > 3600)
			return false;
		*ms = x * 1000;
	}
	return *ms <= 3600 * 1000;
}

static void dirty_parse(int argc, char **argv)
{
	struct dirty_config *c = &dirty_cfg;
	const char *v;

	*c = (struct dirty_config){ .ws = 64 << 20, .seed = 1, .verify = 1,
				    .report_ms = 1000, .cpus = SMP_MAX_CPUS };
	for (int i = 1; i < argc; i++) {
		const char *w = argv[i];
		bool ok;

		if (cmdline_key(w, "ws", &v))
			ok = cmdline_size(v, &c->ws) && c->ws && c->ws <= WS_MAX &&
			     c->ws % PAGE_SIZE == 0;
		else if (cmdline_key(w, "rate", &v))
			ok = !strcmp(v, "max") ? (c->rate = 0, true) :
			     cmdline_number(v, &c->rate) && c->rate <= RATE_MAX;
		else if (cmdline_key(w, "pattern", &v))
			ok = dirty_parse_pattern(v, &c->pattern);
		else if (cmdline_key(w, "seed", &v))
			ok = cmdline_number(v, &c->seed);
		else if (cmdline_key(w, "secs", &v))
			ok = cmdline_number(v, &c->secs) && c->secs && c->secs < 1u << 24;
		else if (cmdline_key(w, "passes", &v))
			ok = cmdline_number(v, &c->passes) && c->passes &&
			     c->passes < 1u << 31;
		else if (cmdline_key(w, "verify", &v))
			ok = cmdline_number(v, &c->verify) && c->verify <= VERIFY_MAX;
		else if (cmdline_key(w, "report", &v))
			ok = dirty_parse_period(v, &c->report_ms);
		else if (cmdline_key(w, "cpus", &v))
			ok = cmdline_number(v, &c->cpus) && c->cpus;
		else if (cmdline_key(w, "prefault", &v))
			ok = cmdline_number(v, &c->prefault) && c->prefault <= 1;
		else if (cmdline_key(w, "tlbflush", &v))
			ok = cmdline_number(v, &c->tlbflush) && c->tlbflush <= 1;
		else if (cmdline_key(w, "selftest", &v))
			ok = c->corrupt = !strcmp(v, "corrupt");
		else
			ok = false;
		if (!ok)
			cmdline_bad(w);
	}
	if (!c->secs && !c->passes)
		c->secs = 10;
}

/* Place the table and working set; 0 or GUEST_EXIT_NOFIT. */
static int dirty_layout(void)
{
	uint64_t pages = dirty_cfg.ws / PAGE_SIZE;
	uint64_t gen_bytes = (pages * 4 + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1);
	uint64_t first = (boot_image_end() + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1);
	uint64_t ws_gpa = (first + gen_bytes + HUGE_PAGE_SIZE - 1) &
			  ~(uint64_t)(HUGE_PAGE_SIZE - 1);
	uint64_t ram_end = boot_ram_end(ws_gpa - gen_bytes);

	if (ram_end > GIB4)	/* the end of the identity map */
		ram_end = GIB4;
	if (ws_gpa + dirty_cfg.ws > ram_end) {
		serial_printf("dirty: working set does not fit (ws=0x%lx at "
			      "0x%016lx-0x%016lx, usable RAM ends at 0x%016lx)\n",
			      dirty_cfg.ws, ws_gpa, ws_gpa + dirty_cfg.ws, ram_end);
		return GUEST_EXIT_NOFIT;
	}
	dirty_ws_gpa = ws_gpa;
	dirty_gen = (uint32_t *)(ws_gpa - gen_bytes);
	dirty_pages = (uint32_t)pages;
	memset(dirty_gen, 0, gen_bytes);
	/* Whatever the loader or firmware left here must read as generation 0. */
	for (uint32_t p = 0; p < dirty_pages; p++)
		for (unsigned i = 0; i < WORDS_PER_PAGE; i++)
			if (dirty_page(p)[i]) {
				memset(dirty_page(p), 0, PAGE_SIZE);
				break;
			}
	return 0;
}

static void dirty_print_start(void)
{
	const struct dirty_config *c = &dirty_cfg;
	char rate[24] = "max", secs[24] = "none", passes[24] = "none";

	if (c->rate)
		lib_format(rate, sizeof(rate), "%lu", c->rate);
	if (c->secs)
		lib_format(secs, sizeof(secs), "%lu", c->secs);
	if (c->passes)
		lib_format(passes, sizeof(passes), "%lu", c->passes);
	serial_printf("dirty: ws=0x%016lx-0x%016lx pages=%u gen=0x%016lx cpus=%u "
		      "pattern=%s rate=%s seed=%lu secs=%s passes=%s verify=%lu ctl=0x%016lx\n",
		      dirty_ws_gpa, dirty_ws_gpa + c->ws, dirty_pages,
		      (uint64_t)dirty_gen, dirty_ncpus, dirty_pattern_names[c->pattern],
		      rate, c->seed, secs, passes, c->verify, (uint64_t)&dirty_ctl);
}

static void dirty_setup_cpus(void)
{
	uint64_t total_pps = dirty_cfg.rate * PAGES_PER_MIB;

	for (unsigned c = 0; c < dirty_ncpus; c++) {
		struct dirty_cpu *dc = &dirty_cpus[c];

		*dc = (struct dirty_cpu){ .last = dirty_start };
		dc->share = (dirty_pages - c + dirty_ncpus - 1) / dirty_ncpus;
		dc->vnext = dc->share / 2;
		dc->rng = dirty_cfg.seed ^ (c + 1) * 0xd1b54a32d192ed03ull;
		if (total_pps) {
			dc->pps = total_pps / dirty_ncpus + (c < total_pps % dirty_ncpus);
			if (!dc->pps)
				dc->pps = 1;
		}
	}
}

static int dirty_finish(void)
{
	uint64_t written, verified;
	uint32_t bad = 0;

	dirty_totals(&written, &verified);
	serial_printf("dirty: stop t=%lu passes=%lu written=%lu verified=%lu\n",
		      (rdtsc() - dirty_start) / tsc_hz(), dirty_passes(), written,
		      verified);
	for (uint32_t p = 0; p < dirty_pages; p++)
		bad += !dirty_check(p);
	serial_printf("dirty: verify pages=%u bad=%u\n", dirty_pages, bad);
	if (bad || dirty_failed) {
		serial_printf("dirty: FAIL\n");
		return GUEST_EXIT_FAIL;
	}
	serial_printf("dirty: PASS\n");
	return GUEST_EXIT_OK;
}

int dirty_main(int argc, char **argv)
{
	unsigned cpus = fwcfg_cpus();
	int status;

	dirty_parse(argc, argv);
	if (cpus > dirty_cfg.cpus)
		cpus = (unsigned)dirty_cfg.cpus;
	status = dirty_layout();
	if (status)
		return status;
	smp_init(cpus);
	dirty_ncpus = smp_cpus() < dirty_pages ? smp_cpus() : dirty_pages;
	dirty_print_start();
	if (dirty_cfg.prefault) {
		/*
		 * Write every page once before the clock starts: a first write
		 * costs the host an allocation (very slow under nested TCG), and a
		 * benchmark wants the steady rate, not the warm-up.
		 */
		for (uint32_t p = 0; p < dirty_pages; p++)
			dirty_write(p);
		serial_printf("dirty: prefaulted pages=%u\n", dirty_pages);
	}

	dirty_start = rdtsc();
	dirty_setup_cpus();
	smp_call(dirty_ncpus, dirty_run_ap, NULL);
	dirty_run_bsp();
	__atomic_store_n(&dirty_stop, 1, __ATOMIC_RELEASE);
	smp_wait();
	return dirty_finish();
}
