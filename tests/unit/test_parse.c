// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests: number, size and word parsing. */
#include <errno.h>
#include <stdint.h>

#include "tests/unit/test.h"
#include "vmm/parse.h"

static void test_u64(void)
{
	uint64_t v = 7;

	CHECK_EQ(parse_u64("42", &v), 0);
	CHECK_EQ(v, 42);
	CHECK_EQ(parse_u64("0x1000", &v), 0);
	CHECK_EQ(v, 0x1000);
	CHECK_EQ(parse_u64("18446744073709551615", &v), 0);
	CHECK(v == UINT64_MAX);
	CHECK_EQ(parse_u64("18446744073709551616", &v), -ERANGE);
	CHECK_EQ(parse_u64("", &v), -EINVAL);
	CHECK_EQ(parse_u64("-1", &v), -EINVAL);
	CHECK_EQ(parse_u64("12abc", &v), -EINVAL);
	CHECK_EQ(parse_u64(" 1", &v), -EINVAL);
	CHECK_EQ(parse_u64(NULL, &v), -EINVAL);
}

static void test_size(void)
{
	uint64_t v;

	CHECK_EQ(parse_size("256M", &v), 0);
	CHECK(v == 256ULL << 20);
	CHECK_EQ(parse_size("1G", &v), 0);
	CHECK(v == 1ULL << 30);
	CHECK_EQ(parse_size("4k", &v), 0);
	CHECK_EQ(v, 4096);
	CHECK_EQ(parse_size("2MiB", &v), 0);
	CHECK(v == 2ULL << 20);
	CHECK_EQ(parse_size("64MB", &v), 0);
	CHECK(v == 64ULL << 20);
	CHECK_EQ(parse_size("4096", &v), 0);
	CHECK_EQ(v, 4096);
	CHECK_EQ(parse_size("1X", &v), -EINVAL);
	CHECK_EQ(parse_size("M", &v), -EINVAL);
	CHECK_EQ(parse_size("-1M", &v), -EINVAL);
	CHECK_EQ(parse_size("17179869184G", &v), -ERANGE);
	CHECK_EQ(parse_size("1Mx", &v), -EINVAL);
}

static void test_words(void)
{
	char line[] = "  info   registers 1 ";
	char *argv[4];

	CHECK_EQ(parse_words(line, argv, 4), 3);
	CHECK_STR(argv[0], "info");
	CHECK_STR(argv[1], "registers");
	CHECK_STR(argv[2], "1");
	char empty[] = "   ";
	CHECK_EQ(parse_words(empty, argv, 4), 0);
	char many[] = "a b c d e f";
	CHECK_EQ(parse_words(many, argv, 4), 4);
}

TEST_MAIN(TEST(test_u64), TEST(test_size), TEST(test_words))
