// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The migration's logic without KVM: the order of records a destination
 * accepts (every record out of order refused), the discard list, the push
 * scheduler (neighbours forward and backward, the background batch from the
 * last request, wrapping), and the pricing of the rest.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "migrate/incoming.h"
#include "migrate/outgoing.h"
#include "migrate/postcopy.h"
#include "migrate/stream.h"
#include "vmm/bitmap.h"
#include "tests/unit/test.h"

/* Feed @types (0-terminated) to a fresh order; the index of the first refused, or -1. */
static int order_run(enum postcopy_state start, bool verify, const uint32_t *types, char *err, size_t len)
{
	struct incoming_order o = { .postcopy = start, .verify = verify };
	int i;

	for (i = 0; types[i]; i++)
		if (incoming_order_check(&o, types[i], err, len))
			return i;
	return -1;
}

static void test_order_accepts(void)
{
	static const uint32_t precopy[] = { REC_RAM_PAGES, REC_END_ROUND, REC_RAM_PAGES, REC_VERIFY, REC_RAM_PAGES,
					    REC_MACHINE_STATE, REC_END, 0 };
	static const uint32_t hybrid[] = { REC_RAM_PAGES, REC_END_ROUND, REC_DISCARD, REC_DISCARD, REC_VERIFY,
					   REC_MACHINE_STATE, REC_POSTCOPY_RUN, 0 };
	static const uint32_t pure[] = { REC_MACHINE_STATE, REC_POSTCOPY_RUN, 0 };
	static const uint32_t converged[] = { REC_RAM_PAGES, REC_END_ROUND, REC_RAM_PAGES, REC_MACHINE_STATE, REC_END, 0 };
	char err[256] = "";

	CHECK_EQ(order_run(POSTCOPY_NONE, true, precopy, err, sizeof(err)), -1);
	CHECK_EQ(order_run(POSTCOPY_ADVISE, true, hybrid, err, sizeof(err)), -1);
	CHECK_EQ(order_run(POSTCOPY_ADVISE, false, pure, err, sizeof(err)), -1);
	/* A postcopy-capable stream that converged ends like precopy. */
	CHECK_EQ(order_run(POSTCOPY_ADVISE, false, converged, err, sizeof(err)), -1);
}

/* Each case: the start, verify, the records, the one refused, and a word of the message. */
static void test_order_refuses(void)
{
	static const struct {
		enum postcopy_state start;
		bool verify;
		uint32_t types[8];
		int refused;
		const char *says;
	} cases[] = {
		{ POSTCOPY_ADVISE, false, { REC_DISCARD, REC_MACHINE_STATE, REC_END }, 2, "END after DISCARD" },
		{ POSTCOPY_NONE, false, { REC_RAM_PAGES, REC_DISCARD }, 1, "DISCARD record in a precopy stream" },
		{ POSTCOPY_NONE, false, { REC_MACHINE_STATE, REC_POSTCOPY_RUN }, 1, "POSTCOPY_RUN in a precopy stream" },
		{ POSTCOPY_ADVISE, false, { REC_POSTCOPY_RUN }, 0, "without the machine state" },
		{ POSTCOPY_NONE, false, { REC_RAM_PAGES, REC_END }, 1, "without the machine state" },
		{ POSTCOPY_NONE, false, { REC_MACHINE_STATE, REC_RAM_PAGES }, 1, "after the machine state" },
		{ POSTCOPY_NONE, false, { REC_MACHINE_STATE, REC_END_ROUND }, 1, "after the machine state" },
		{ POSTCOPY_NONE, false, { REC_MACHINE_STATE, REC_MACHINE_STATE }, 1, "a second MACHINE_STATE" },
		{ POSTCOPY_ADVISE, false, { REC_DISCARD, REC_RAM_PAGES }, 1, "after DISCARD" },
		{ POSTCOPY_ADVISE, false, { REC_DISCARD, REC_END_ROUND }, 1, "after DISCARD" },
		{ POSTCOPY_ADVISE, false, { REC_MACHINE_STATE, REC_DISCARD }, 1, "DISCARD record after the machine state" },
		{ POSTCOPY_NONE, false, { REC_VERIFY }, 0, "without verify" },
		{ POSTCOPY_NONE, true, { REC_MACHINE_STATE, REC_VERIFY }, 1, "VERIFY record after the machine state" },
		{ POSTCOPY_NONE, false, { REC_MACHINE_STATE, REC_END, REC_RAM_PAGES }, 2, "after the end" },
		{ POSTCOPY_ADVISE, false, { REC_MACHINE_STATE, REC_POSTCOPY_RUN, REC_RAM_PAGES }, 2, "after the end" },
		{ POSTCOPY_ADVISE, false, { REC_ZERO_PAGES }, 0, "unexpected ZERO_PAGES" },
		{ POSTCOPY_ADVISE, false, { REC_POSTCOPY_DONE }, 0, "unexpected POSTCOPY_DONE" },
		{ POSTCOPY_NONE, false, { REC_PAGE_REQUEST }, 0, "unexpected PAGE_REQUEST" },
		{ POSTCOPY_NONE, false, { REC_ACK }, 0, "unexpected ACK" },
		{ POSTCOPY_NONE, false, { REC_ERROR }, 0, "unexpected ERROR" },
		{ POSTCOPY_NONE, false, { REC_END_OF_COPY }, 0, "unexpected END_OF_COPY" },
		{ POSTCOPY_NONE, false, { 77 }, 0, "unexpected unknown" },
	};
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		CHECK_EQ(order_run(cases[i].start, cases[i].verify, cases[i].types, err, sizeof(err)), cases[i].refused);
		if (!strstr(err, cases[i].says)) {
			fprintf(stderr, "  case %zu: \"%s\" does not say \"%s\"\n", i, err, cases[i].says);
			test_failed = 1;
		}
	}
}

struct ranges {
	uint64_t r[64][2];
	int n;
};

static int collect(void *opaque, uint64_t first, uint64_t npages)
{
	struct ranges *rs = opaque;

	rs->r[rs->n][0] = first;
	rs->r[rs->n][1] = npages;
	return ++rs->n == 64 ? -E2BIG : 0;
}

static void set_range(struct bitmap *b, uint64_t first, uint64_t n)
{
	while (n--)
		bitmap_set(b, first++);
}

/* The discard list: sent in precopy and dirtied since, as runs, in order. */
static void test_discard_ranges(void)
{
	struct bitmap sent, dirty;
	struct ranges rs = { .n = 0 };

	CHECK_EQ(bitmap_init(&sent, 300), 0);
	CHECK_EQ(bitmap_init(&dirty, 300), 0);
	set_range(&sent, 0, 100);
	set_range(&sent, 150, 150);	/* up to the last page */
	set_range(&dirty, 10, 5);	/* inside: one range */
	set_range(&dirty, 95, 60);	/* 95-99 sent, 100-149 never sent, 150-154 sent: two ranges */
	set_range(&dirty, 290, 10);	/* to the end */
	bitmap_set(&dirty, 120);	/* never sent: not discarded */
	CHECK_EQ(postcopy_discard_ranges(&sent, &dirty, collect, &rs), 0);
	CHECK_EQ(rs.n, 4);
	CHECK(rs.r[0][0] == 10 && rs.r[0][1] == 5);
	CHECK(rs.r[1][0] == 95 && rs.r[1][1] == 5);
	CHECK(rs.r[2][0] == 150 && rs.r[2][1] == 5);
	CHECK(rs.r[3][0] == 290 && rs.r[3][1] == 10);
	/* Nothing dirty, or nothing sent: nothing to drop. */
	bitmap_zero(&dirty);
	rs.n = 0;
	CHECK_EQ(postcopy_discard_ranges(&sent, &dirty, collect, &rs), 0);
	CHECK_EQ(rs.n, 0);
	/* The callback's error stops the walk and comes back. */
	bitmap_fill(&dirty);
	for (int i = 0; i < 300; i += 2)
		bitmap_clear(&dirty, (uint64_t)i);
	rs.n = 0;
	CHECK_EQ(postcopy_discard_ranges(&sent, &dirty, collect, &rs), -E2BIG);
	CHECK_EQ(rs.n, 64);
	bitmap_destroy(&sent);
	bitmap_destroy(&dirty);
}

/* Neighbours: within the window, forward and backward, each once, only what is unsent. */
static void test_push_neighbours(void)
{
	struct bitmap unsent;
	uint64_t reqs[] = { 0, 50, 52, 99 }, list[64];
	uint32_t n;

	CHECK_EQ(bitmap_init(&unsent, 100), 0);
	bitmap_fill(&unsent);
	bitmap_clear(&unsent, 48);	/* already sent */
	n = postcopy_push_neighbours(&unsent, reqs, 4, 2, list, 64);
	/* 0: 0-2; 50: 49, 51, 52 (48 gone, 50 itself included as it is unsent); 52: 53, 54; 99: 97-99 */
	CHECK_EQ(n, 3 + 4 + 2 + 3);
	CHECK(list[0] == 0 && list[2] == 2 && list[3] == 49 && list[4] == 50 && list[6] == 52);
	CHECK(list[7] == 53 && list[8] == 54 && list[9] == 97 && list[11] == 99);
	CHECK_EQ(bitmap_count(&unsent), 100 - 1 - n);
	/* Again: nothing left around them; a window of 0: none. */
	CHECK_EQ(postcopy_push_neighbours(&unsent, reqs, 4, 2, list, 64), 0);
	CHECK_EQ(postcopy_push_neighbours(&unsent, reqs, 4, 0, list, 64), 0);
	/* The list's room is respected. */
	bitmap_fill(&unsent);
	CHECK_EQ(postcopy_push_neighbours(&unsent, reqs, 4, 8, list, 5), 5);
	bitmap_destroy(&unsent);
}

static bool zero_if_mult_of_3(void *opaque, uint64_t page)
{
	(void)opaque;
	return page % 3 == 0;
}

/* The background batch: from the cursor (the last request), data and zero pages apart, wrapping. */
static void test_push_batch(void)
{
	struct bitmap unsent;
	uint64_t cursor = 90, list[8], zl[8];
	uint32_t n, nz;

	CHECK_EQ(bitmap_init(&unsent, 100), 0);
	bitmap_fill(&unsent);
	n = postcopy_push_batch(&unsent, NULL, &cursor, zero_if_mult_of_3, NULL, list, 4, zl, 8, &nz);
	/* 90z 91 92 93z 94 95: four data pages end the batch */
	CHECK_EQ(n, 4);
	CHECK_EQ(nz, 2);
	CHECK(list[0] == 91 && list[1] == 92 && list[2] == 94 && list[3] == 95);
	CHECK(zl[0] == 90 && zl[1] == 93);
	CHECK_EQ(cursor, 96);
	/* Wraps past the end to page 0: 96z 97 98 99z 0z 1 2. */
	n = postcopy_push_batch(&unsent, NULL, &cursor, zero_if_mult_of_3, NULL, list, 4, zl, 8, &nz);
	CHECK_EQ(n, 4);
	CHECK_EQ(nz, 3);
	CHECK(list[0] == 97 && list[1] == 98 && list[2] == 1 && list[3] == 2);
	CHECK(zl[0] == 96 && zl[1] == 99 && zl[2] == 0);
	/* The zero list's room ends a batch too; at the end nothing is left. */
	cursor = 0;
	while ((n = postcopy_push_batch(&unsent, NULL, &cursor, zero_if_mult_of_3, NULL, list, 8, zl, 2, &nz)) ||
	       nz)
		CHECK(nz <= 2 && n <= 8);
	CHECK_EQ(bitmap_count(&unsent), 0);
	bitmap_destroy(&unsent);
}

/* The rest priced at the last round's rate, at least a page per ms, at most max-bandwidth. */
static void test_expected_downtime(void)
{
	/* 1000 pages at 4104 bytes each, 41.04 MB/s: 100 ms. */
	CHECK_EQ(outgoing_expected_downtime(1000, 41040000, 1000000000ULL, 0), 100);
	CHECK_EQ(outgoing_expected_downtime(0, 41040000, 1000000000ULL, 0), 0);
	/* A round that sent nothing: the floor of one page per ms. */
	CHECK_EQ(outgoing_expected_downtime(50, 0, 1000000000ULL, 0), 50 * 4104 / 4096);
	CHECK_EQ(outgoing_expected_downtime(50, 1000, 1000000000ULL, 0), 50 * 4104 / 4096);
	/* max-bandwidth 64 KiB/s holds the last stop too: 16 pages take a second, not 16 ms. */
	CHECK_EQ(outgoing_expected_downtime(16, 16 * 4104, 1000000000ULL, 65664), 1000);
	CHECK_EQ(outgoing_expected_downtime(1000, 41040000, 1000000000ULL, 82080000), 100);
}

/*
 * auto-converge's steps (QEMU's rule): a round that dirtied more than the
 * threshold's share of what it sent counts; the second in a row raises the
 * throttle, to the initial step, then by the increment, up to the maximum;
 * a round under the threshold starts the count again.
 */
static void test_throttle_steps(void)
{
	struct migration_params p = { .cpu_throttle_initial = 20, .cpu_throttle_increment = 10,
				      .max_cpu_throttle = 45, .throttle_trigger_threshold = 50 };
	unsigned high = 0, pct = 0;

	/* 40 % of what was sent: under the threshold, nothing. */
	CHECK_EQ(outgoing_throttle_next(pct, 40, 100, &high, &p), 0);
	CHECK_EQ(high, 0);
	/* 60 %: one round is not enough ... */
	CHECK_EQ(outgoing_throttle_next(pct, 60, 100, &high, &p), 0);
	CHECK_EQ(high, 1);
	/* ... a quiet round starts the count again ... */
	CHECK_EQ(outgoing_throttle_next(pct, 50, 100, &high, &p), 0);
	CHECK_EQ(high, 0);
	/* ... two in a row: the initial step. */
	pct = outgoing_throttle_next(pct, 60, 100, &high, &p);
	CHECK_EQ(pct, 0);
	pct = outgoing_throttle_next(pct, 600, 100, &high, &p);
	CHECK_EQ(pct, 20);
	CHECK_EQ(high, 0);
	/* Then the increment, every second outrunning round, up to the maximum. */
	pct = outgoing_throttle_next(pct, 60, 100, &high, &p);
	pct = outgoing_throttle_next(pct, 60, 100, &high, &p);
	CHECK_EQ(pct, 30);
	pct = outgoing_throttle_next(pct, 60, 100, &high, &p);
	pct = outgoing_throttle_next(pct, 60, 100, &high, &p);
	CHECK_EQ(pct, 40);
	pct = outgoing_throttle_next(pct, 60, 100, &high, &p);
	pct = outgoing_throttle_next(pct, 60, 100, &high, &p);
	CHECK_EQ(pct, 45);
	pct = outgoing_throttle_next(pct, 60, 100, &high, &p);
	pct = outgoing_throttle_next(pct, 60, 100, &high, &p);
	CHECK_EQ(pct, 45);
	/* A round that sent nothing while the guest dirtied counts; one that did neither does not. */
	high = 0;
	CHECK_EQ(outgoing_throttle_next(0, 1, 0, &high, &p), 0);
	CHECK_EQ(high, 1);
	CHECK_EQ(outgoing_throttle_next(0, 0, 0, &high, &p), 0);
	CHECK_EQ(high, 0);
}

TEST_MAIN(TEST(test_order_accepts), TEST(test_order_refuses), TEST(test_discard_ranges),
	  TEST(test_push_neighbours), TEST(test_push_batch), TEST(test_expected_downtime), TEST(test_throttle_steps))
