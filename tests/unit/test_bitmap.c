// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests: page bitmaps and CRC-32C. */
#include <stdint.h>
#include <stdlib.h>

#include "vmm/bitmap.h"
#include "migrate/crc32c.h"
#include "tests/unit/test.h"

static void test_bits(void)
{
	struct bitmap b, c;

	CHECK_EQ(bitmap_init(&b, 130), 0);
	CHECK_EQ(bitmap_count(&b), 0);
	CHECK_EQ(bitmap_next_set(&b, 0), 130);
	bitmap_set(&b, 0);
	bitmap_set(&b, 64);
	bitmap_set(&b, 129);
	CHECK(bitmap_test(&b, 64));
	CHECK(!bitmap_test(&b, 63));
	CHECK_EQ(bitmap_count(&b), 3);
	CHECK_EQ(bitmap_next_set(&b, 1), 64);
	CHECK_EQ(bitmap_next_set(&b, 65), 129);
	CHECK_EQ(bitmap_next_set(&b, 130), 130);
	CHECK_EQ(bitmap_next_clear(&b, 0), 1);
	bitmap_clear(&b, 64);
	CHECK_EQ(bitmap_count(&b), 2);
	bitmap_fill(&b);
	CHECK_EQ(bitmap_count(&b), 130);
	CHECK_EQ(bitmap_next_clear(&b, 0), 130);
	CHECK_EQ(bitmap_init(&c, 130), 0);
	bitmap_set(&c, 5);
	bitmap_zero(&b);
	bitmap_set(&b, 5);
	bitmap_set(&b, 100);
	CHECK_EQ(bitmap_or(&c, &b), 1);
	CHECK_EQ(bitmap_count(&c), 2);
	bitmap_zero(&c);
	bitmap_move_atomic(&c, &b);
	CHECK_EQ(bitmap_count(&c), 2);
	CHECK_EQ(bitmap_count(&b), 0);
	uint64_t words[2] = { 0x3, 0x1 };
	bitmap_or_words(&c, 64, words, 66);
	CHECK(bitmap_test(&c, 64) && bitmap_test(&c, 65) && bitmap_test(&c, 128));
	bitmap_destroy(&b);
	bitmap_destroy(&c);
}

static void test_crc(void)
{
	/* The standard check value of CRC-32C. */
	CHECK_EQ(crc32c(0, "123456789", 9), 0xe3069283);
	CHECK_EQ(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xe3069283);
	CHECK_EQ(crc32c(0, "", 0), 0);
	uint8_t buf[4099];
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7);
	uint32_t a = crc32c(0, buf, sizeof(buf));
	buf[1234] ^= 1;
	CHECK(crc32c(0, buf, sizeof(buf)) != a);
}

TEST_MAIN(TEST(test_bits), TEST(test_crc))
