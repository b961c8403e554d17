// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * verify on, without KVM: digests from one side and the comparison on the
 * other, the VERIFY record's checks, and the message that names bad pages.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "migrate/stream.h"
#include "migrate/verify.h"
#include "vmm/bitmap.h"
#include "vmm/ram.h"
#include "tests/unit/test.h"

#define MIB (1ULL << 20)

/* Fill some pages of @ram with something; leave the rest zero. */
static void ram_scribble(struct ram *ram)
{
	uint64_t i;

	for (i = 0; i < ram_npages(ram); i += 3)
		*(uint64_t *)ram_page_hva(ram, i) = i * 0x9e3779b97f4a7c15ULL + 1;
}

/* Send @src's digests to @dst record by record, as the wire would. */
static int transfer(const struct verify *src, struct verify *dst, char *err, size_t len)
{
	uint64_t head[2], first = 0;
	uint8_t *buf = malloc(16 + VERIFY_REC_DIGESTS * 8);
	uint32_t n;
	int ret = 0;

	while (!ret && (n = verify_record(src, first, head))) {
		memcpy(buf, head, 16);
		memcpy(buf + 16, src->digest + first, (size_t)n * 8);
		ret = verify_take_record(dst, buf, 16 + n * 8, err, len);
		first += n;
	}
	free(buf);
	return ret;
}

static void test_verify_equal(void)
{
	struct ram a, b;
	struct verify src, dst;
	char err[512] = "";

	/* 600 MiB: more than one VERIFY record's worth of digests. */
	CHECK_EQ(ram_create(&a, 600 * MIB), 0);
	CHECK_EQ(ram_create(&b, 600 * MIB), 0);
	ram_scribble(&a);
	ram_scribble(&b);
	CHECK_EQ(verify_init(&src, &a, false), 0);
	CHECK_EQ(verify_init(&dst, &b, true), 0);
	verify_digest_ram(&src);
	CHECK_EQ(src.compared, ram_npages(&a));
	CHECK_EQ(verify_check_complete(&dst, err, sizeof(err)), -EPROTO);
	CHECK_EQ(transfer(&src, &dst, err, sizeof(err)), 0);
	CHECK_EQ(verify_check_complete(&dst, err, sizeof(err)), 0);
	CHECK_EQ(verify_ram(&dst, NULL, err, sizeof(err)), 0);
	CHECK_EQ(dst.compared, ram_npages(&b));
	CHECK_EQ(dst.bad, 0);
	verify_destroy(&src);
	verify_destroy(&dst);
	verify_destroy(&dst);
	ram_destroy(&a);
	ram_destroy(&b);
}

/* Pages that differ are named with their guest address and round; pages not in the set are not compared. */
static void test_verify_bad_pages(void)
{
	struct ram a, b;
	struct verify src, dst;
	struct bitmap which;
	char err[1024] = "";
	uint64_t i, n;

	/* 3.5 GiB is two slots: page indexes past 3 GiB are above 4 GiB in the guest (mapped, never touched). */
	CHECK_EQ(ram_create(&a, 3584 * MIB), 0);
	CHECK_EQ(ram_create(&b, 3584 * MIB), 0);
	n = ram_npages(&a);
	CHECK_EQ(verify_init(&src, &a, false), 0);
	CHECK_EQ(verify_init(&dst, &b, true), 0);
	*(uint64_t *)ram_page_hva(&a, 5) = 1;		/* the destination lacks a write */
	*(uint64_t *)ram_page_hva(&b, n - 1) = 2;	/* the destination has a stray one */
	dst.round[5] = 3;
	verify_digest_ram(&src);
	CHECK_EQ(transfer(&src, &dst, err, sizeof(err)), 0);
	CHECK_EQ(bitmap_init(&which, n), 0);
	for (i = 0; i < n; i++)
		if (i != n - 1)
			bitmap_set(&which, i);
	CHECK_EQ(verify_ram(&dst, &which, err, sizeof(err)), -EBADMSG);
	CHECK_EQ(dst.bad, 1);
	CHECK_EQ(dst.compared, n - 1);
	CHECK_STR(err, "verify: 1 of 917503 pages compared differ from the source's: page 5 (gpa 0x5000, "
		       "last sent in round 3)");
	dst.compared = dst.bad = 0;
	CHECK_EQ(verify_ram(&dst, NULL, err, sizeof(err)), -EBADMSG);
	CHECK_EQ(dst.bad, 2);
	printf("  %s\n", err);
	CHECK(strstr(err, "page 917503 (gpa 0x11ffff000, never sent)") != NULL);
	bitmap_destroy(&which);
	verify_destroy(&src);
	verify_destroy(&dst);
	ram_destroy(&a);
	ram_destroy(&b);
}

/* What a peer sends is checked: order, bounds, length. */
static void test_verify_records(void)
{
	struct ram r;
	struct verify v;
	uint64_t buf[2 + 4] = { 0 };
	char err[256];

	CHECK_EQ(ram_create(&r, 4 * MIB), 0);
	CHECK_EQ(verify_init(&v, &r, false), 0);
	CHECK_EQ(verify_take_record(&v, buf, 8, err, sizeof(err)), -EPROTO);
	buf[0] = 1, buf[1] = 4;		/* not from page 0 */
	CHECK_EQ(verify_take_record(&v, buf, sizeof(buf), err, sizeof(err)), -EPROTO);
	buf[0] = 0, buf[1] = 0;		/* no digest */
	CHECK_EQ(verify_take_record(&v, buf, 16, err, sizeof(err)), -EPROTO);
	buf[1] = 4;			/* a length that does not match */
	CHECK_EQ(verify_take_record(&v, buf, sizeof(buf) - 8, err, sizeof(err)), -EPROTO);
	CHECK_EQ(verify_take_record(&v, buf, sizeof(buf), err, sizeof(err)), 0);
	CHECK_EQ(verify_take_record(&v, buf, sizeof(buf), err, sizeof(err)), -EPROTO);	/* again */
	buf[0] = 4, buf[1] = 1024;	/* past the end of RAM (1024 pages) */
	CHECK_EQ(verify_take_record(&v, buf, 16 + 1024 * 8, err, sizeof(err)), -EPROTO);
	CHECK(strstr(err, "out of order or malformed") != NULL);
	CHECK_EQ(verify_check_complete(&v, err, sizeof(err)), -EPROTO);
	CHECK_STR(err, "verify: the source sent digests for 4 of 1024 pages");
	verify_destroy(&v);
	ram_destroy(&r);
}

TEST_MAIN(TEST(test_verify_equal), TEST(test_verify_bad_pages), TEST(test_verify_records))
