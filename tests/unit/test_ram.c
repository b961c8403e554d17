// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests: RAM layout and checked gpa-to-hva translation. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>

#include "tests/unit/test.h"
#include "vmm/ram.h"

static void test_layout(void)
{
	struct ram ram;

	CHECK_EQ(ram_layout(&ram, 256ULL << 20), 0);
	CHECK_EQ(ram.nslots, 1);
	CHECK(ram.slot[0].size == 256ULL << 20);
	CHECK_EQ(ram_layout(&ram, 4ULL << 30), 0);
	CHECK_EQ(ram.nslots, 2);
	CHECK(ram.slot[0].size == RAM_LOW_END);
	CHECK(ram.slot[1].gpa == RAM_HIGH_START);
	CHECK(ram.slot[1].size == (4ULL << 30) - RAM_LOW_END);
	CHECK(ram.slot[1].offset == RAM_LOW_END);
	CHECK_EQ(ram_layout(&ram, 1 << 20), -EINVAL);
	CHECK_EQ(ram_layout(&ram, (256ULL << 20) + 1), -EINVAL);
	CHECK_EQ(ram_layout(&ram, RAM_MAX_SIZE + PAGE_SIZE), -EINVAL);
}

static void test_translate(void)
{
	struct ram ram;
	uint8_t *p;

	CHECK_EQ(ram_create(&ram, 16ULL << 20), 0);
	p = ram_gpa_to_hva(&ram, 0, 1);
	CHECK(p == ram.base);
	CHECK(ram_gpa_to_hva(&ram, (16ULL << 20) - 8, 8) == ram.base + (16ULL << 20) - 8);
	CHECK(ram_gpa_to_hva(&ram, (16ULL << 20) - 8, 9) == NULL);
	CHECK(ram_gpa_to_hva(&ram, 16ULL << 20, 1) == NULL);
	CHECK(ram_gpa_to_hva(&ram, UINT64_MAX - 4, 16) == NULL);	/* overflow */
	CHECK(ram_gpa_to_hva(&ram, 4096, UINT64_MAX) == NULL);
	CHECK(!ram_contains(&ram, UINT64_MAX, 2));
	p[4096] = 0x5a;
	CHECK_EQ(*(uint8_t *)ram_gpa_to_hva(&ram, 4096, 1), 0x5a);
	ram_destroy(&ram);
	ram_destroy(&ram);	/* safe twice */
}

static void test_high_slot(void)
{
	struct ram ram;

	/* Layout only: the translation rules, without allocating 4 GiB. */
	CHECK_EQ(ram_layout(&ram, 4ULL << 30), 0);
	CHECK(ram_contains(&ram, RAM_LOW_END - 4096, 4096));
	CHECK(!ram_contains(&ram, RAM_LOW_END - 4096, 8192));	/* runs into the hole */
	CHECK(!ram_contains(&ram, 0xfee00000, 4));
	CHECK(ram_contains(&ram, RAM_HIGH_START, 4096));
	CHECK(!ram_contains(&ram, RAM_HIGH_START + (1ULL << 30), 1));
	CHECK(ram_contains(&ram, RAM_HIGH_START + (1ULL << 30) - 1, 1));
}

static void test_index(void)
{
	struct ram ram;

	CHECK_EQ(ram_layout(&ram, 4ULL << 30), 0);
	CHECK_EQ(ram_npages(&ram), 1 << 20);
	CHECK_EQ(ram_gpa_to_index(&ram, 0x1000), 1);
	CHECK(ram_gpa_to_index(&ram, RAM_LOW_END) == UINT64_MAX);
	CHECK(ram_gpa_to_index(&ram, RAM_HIGH_START) == RAM_LOW_END >> PAGE_SHIFT);
	CHECK(ram_index_to_gpa(&ram, RAM_LOW_END >> PAGE_SHIFT) == RAM_HIGH_START);
	CHECK(ram_index_to_gpa(&ram, (RAM_LOW_END >> PAGE_SHIFT) - 1) == RAM_LOW_END - PAGE_SIZE);
	CHECK(ram_index_to_gpa(&ram, 5) == 5 * PAGE_SIZE);
}

/* -m is checked against the host's physical address width before KVM sees the slots. */
static void test_max_size(void)
{
	struct ram ram;
	unsigned bits = ram_host_phys_bits();

	CHECK(bits >= 36 && bits <= 52);
	CHECK(ram_max_size(40) == (1ULL << 40) - (1ULL << 30));		/* 1023 GiB: the hole costs 1 GiB */
	CHECK(ram_max_size(39) == (1ULL << 39) - (1ULL << 30));
	CHECK(ram_max_size(48) == RAM_MAX_SIZE);
	CHECK(ram_max_size(32) == RAM_LOW_END);
	CHECK(ram_max_size(31) == 1ULL << 31);
	/* The largest size ends exactly at the limit. */
	CHECK_EQ(ram_layout(&ram, ram_max_size(40)), 0);
	CHECK(ram.slot[1].gpa + ram.slot[1].size == 1ULL << 40);
}

/*
 * The pagemap tells untouched pages from populated ones without reading
 * them: a written page is populated, a page of a 2 MiB region nobody
 * touched is not (and stays so when asked about), the answers hold across
 * windows and at the last page, and a zero answer is right either way.
 */
static void test_pagemap(void)
{
	struct ram ram = { 0 };
	struct ram_pagemap pm;
	uint64_t n, i, far = 3 * 512 + 7;	/* in the fourth 2 MiB region */

	CHECK_EQ(ram_create(&ram, 16ULL << 20), 0);
	n = ram_npages(&ram);
	ram_pagemap_open(&pm, &ram);
	CHECK(pm.fd >= 0);
	ram_page_hva(&ram, 3)[5] = 1;
	ram_page_hva(&ram, n - 1)[0] = 2;
	CHECK(ram_page_populated(&pm, 3));
	CHECK(!ram_page_zero(&pm, 3));
	CHECK(!ram_page_populated(&pm, far));
	CHECK(ram_page_zero(&pm, far));
	CHECK(!ram_page_populated(&pm, far));	/* asking did not populate it */
	/* The window read at 3 is stale for n - 1 only if it reached there; it does not. */
	CHECK(ram_page_populated(&pm, n - 1));
	CHECK(!ram_page_zero(&pm, n - 1));
	/* Every page: zero exactly where nothing was written. */
	for (i = 0; i < n; i++)
		CHECK_EQ(ram_page_zero(&pm, i), i != 3 && i != n - 1);
	ram_pagemap_close(&pm);
	CHECK_EQ(pm.fd, -1);
	/* Without a pagemap every page is looked at. */
	CHECK(ram_page_populated(&pm, far));
	CHECK(ram_page_zero(&pm, far));
	ram_destroy(&ram);
}

/*
 * memfd RAM: allocated whole but none of it mapped, the same pages through
 * a second mapping, and the zero test from the file: a page allocated and
 * never written is a hole to SEEK_DATA (it reads as zero), and so is one
 * punched out.
 */
static void test_memfd(void)
{
	struct ram ram = { 0 };
	struct ram_pagemap pm;
	uint64_t n, i;
	uint8_t *alias;
	int bad = 0;

	CHECK_EQ(ram_create_memfd(&ram, 16ULL << 20), 0);
	CHECK(ram.memfd && ram.fd >= 0);
	n = ram_npages(&ram);
	alias = mmap(NULL, ram.size, PROT_READ | PROT_WRITE, MAP_SHARED, ram.fd, 0);
	CHECK(alias != MAP_FAILED);
	alias[5 * PAGE_SIZE + 9] = 7;
	CHECK_EQ(ram_page_hva(&ram, 5)[9], 7);
	for (i = 64; i < 72; i++)
		ram_page_hva(&ram, i)[0] = 1;
	ram_pagemap_open(&pm, &ram);
	CHECK(pm.fd >= 0);
	for (i = 0; i < n; i++)
		bad += ram_page_populated(&pm, i) != (i == 5 || (i >= 64 && i < 72));
	CHECK_EQ(bad, 0);
	CHECK(!ram_page_zero(&pm, 5));
	CHECK(ram_page_zero(&pm, 6));
	CHECK_EQ(fallocate(ram.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 66 * PAGE_SIZE, 2 * PAGE_SIZE), 0);
	ram_pagemap_close(&pm);
	ram_pagemap_open(&pm, &ram);
	for (i = 0; i < n; i++)
		bad += ram_page_populated(&pm, i) != (i == 5 || (i >= 64 && i < 66) || (i >= 68 && i < 72));
	CHECK_EQ(bad, 0);
	CHECK(ram_page_zero(&pm, 66));
	ram_pagemap_close(&pm);
	munmap(alias, ram.size);
	ram_destroy(&ram);
	CHECK(!ram.memfd);
}

TEST_MAIN(TEST(test_layout), TEST(test_pagemap), TEST(test_memfd), TEST(test_max_size), TEST(test_translate), TEST(test_high_slot), TEST(test_index))
