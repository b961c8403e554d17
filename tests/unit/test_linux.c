// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests: the Linux boot protocol loader and the MP table, on a
 * bzImage built in memory.  A malformed image must be refused with an
 * error, never loaded and never crash (the mutation test runs under ASan
 * in `make check`); page 0 is never written.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/test.h"
#include "vmm/linux.h"
#include "vmm/log.h"
#include "vmm/mptable.h"

#define SETUP_SECTS	1
#define CODE_OFF	((SETUP_SECTS + 1) * 512)
#define CODE_LEN	0x1000
#define IMG_SIZE	(CODE_OFF + CODE_LEN)
#define PREF		0x1000000U	/* 16 MiB, as Debian's */
#define INIT_SIZE	0x400000U

static void put16(uint8_t *p, size_t off, uint16_t v) { memcpy(p + off, &v, 2); }
static void put32(uint8_t *p, size_t off, uint32_t v) { memcpy(p + off, &v, 4); }
static void put64(uint8_t *p, size_t off, uint64_t v) { memcpy(p + off, &v, 8); }
static uint32_t get32(const uint8_t *p, size_t off) { uint32_t v; memcpy(&v, p + off, 4); return v; }
static uint64_t get64(const uint8_t *p, size_t off) { uint64_t v; memcpy(&v, p + off, 8); return v; }

static uint8_t *make_bzimage(size_t *len)
{
	uint8_t *img = calloc(1, IMG_SIZE);

	img[0x1f1] = SETUP_SECTS;
	put16(img, 0x1fe, 0xaa55);
	img[0x200] = 0xeb;
	img[0x201] = 0x6a;			/* the header ends at 0x26c: protocol 2.15 */
	put32(img, 0x202, 0x53726448);
	put16(img, 0x206, 0x020f);
	img[0x211] = 0x01;			/* LOADED_HIGH */
	put32(img, 0x214, 0x100000);
	put32(img, 0x22c, 0x7fffffff);		/* initrd_addr_max */
	put32(img, 0x230, 0x200000);
	img[0x234] = 1;				/* relocatable */
	put32(img, 0x238, 2047);		/* cmdline_size */
	put64(img, 0x258, PREF);
	put32(img, 0x260, INIT_SIZE);
	memset(img + CODE_OFF, 0x90, CODE_LEN);
	img[IMG_SIZE - 1] = 0xf4;
	*len = IMG_SIZE;
	return img;
}

static bool page0_clean(struct ram *ram)
{
	static const uint8_t zero[PAGE_SIZE];

	return !memcmp(ram_gpa_to_hva(ram, 0, PAGE_SIZE), zero, PAGE_SIZE);
}

static void test_load(void)
{
	struct ram ram;
	struct linux_entry e;
	uint8_t initrd[10000], *zp, *img;
	size_t len;

	memset(initrd, 0x5a, sizeof(initrd));
	CHECK_EQ(ram_create(&ram, 64ULL << 20), 0);
	img = make_bzimage(&len);
	CHECK(linux_is_bzimage(img, len));
	CHECK_EQ(linux_load(&ram, "x", img, len, "console=ttyS0 quiet", initrd, sizeof(initrd), &e), 0);
	CHECK_EQ(e.entry, 0x100000);
	CHECK_EQ(e.boot_params, LINUX_ZERO_PAGE_GPA);
	CHECK_EQ(e.version, 0x020f);
	CHECK_EQ(e.kernel_end, PREF + INIT_SIZE);
	zp = ram_gpa_to_hva(&ram, LINUX_ZERO_PAGE_GPA, PAGE_SIZE);
	CHECK(!memcmp(zp + 0x202, "HdrS", 4));
	CHECK_EQ(zp[0x210], 0xff);				/* type_of_loader */
	CHECK_EQ(get32(zp, 0x228), LINUX_CMDLINE_GPA);
	CHECK_STR((char *)ram_gpa_to_hva(&ram, LINUX_CMDLINE_GPA, 1), "console=ttyS0 quiet");
	/* The kernel's code at 1 MiB, the initrd page aligned at the top of RAM. */
	CHECK(!memcmp(ram_gpa_to_hva(&ram, 0x100000, CODE_LEN), img + CODE_OFF, CODE_LEN));
	CHECK_EQ(e.initrd_gpa, (64ULL << 20) - 3 * PAGE_SIZE);
	CHECK_EQ(get32(zp, 0x218), e.initrd_gpa);
	CHECK_EQ(get32(zp, 0x21c), sizeof(initrd));
	CHECK(!memcmp(ram_gpa_to_hva(&ram, e.initrd_gpa, sizeof(initrd)), initrd, sizeof(initrd)));
	/* e820: low RAM, EBDA and BIOS reserved, RAM from 1 MiB. */
	CHECK_EQ(zp[0x1e8], 4);
	CHECK_EQ(get64(zp, 0x2d0 + 8), 0x9fc00);
	CHECK_EQ(get32(zp, 0x2d0 + 16), 1);
	CHECK_EQ(get64(zp, 0x2d0 + 20 + 0), 0x9fc00);
	CHECK_EQ(get32(zp, 0x2d0 + 20 + 16), 2);
	CHECK_EQ(get64(zp, 0x2d0 + 60 + 0), 0x100000);
	CHECK_EQ(get64(zp, 0x2d0 + 60 + 8), (64ULL << 20) - 0x100000);
	/* The boot GDT's code and data descriptors. */
	CHECK_EQ(get64(ram_gpa_to_hva(&ram, LINUX_GDT_GPA + 0x10, 8), 0), 0x00cf9b000000ffffULL);
	CHECK_EQ(get64(ram_gpa_to_hva(&ram, LINUX_GDT_GPA + 0x18, 8), 0), 0x00cf93000000ffffULL);
	CHECK(page0_clean(&ram));

	/* initrd_addr_max caps the initrd's end. */
	put32(img, 0x22c, (32U << 20) - 1);
	CHECK_EQ(linux_load(&ram, "x", img, len, NULL, initrd, sizeof(initrd), &e), 0);
	CHECK_EQ(e.initrd_gpa, (32ULL << 20) - 3 * PAGE_SIZE);
	CHECK_STR((char *)ram_gpa_to_hva(&ram, LINUX_CMDLINE_GPA, 1), "");
	free(img);
	ram_destroy(&ram);
}

static void test_refused(void)
{
	struct ram ram;
	struct linux_entry e;
	uint8_t initrd[PAGE_SIZE] = { 0 }, *img;
	char longline[4096];
	size_t len;
	enum log_level saved = log_level;

	log_level = LOG_QUIET;	/* the refusals are expected: keep the output clean */
	CHECK_EQ(ram_create(&ram, 64ULL << 20), 0);
	img = make_bzimage(&len);
	CHECK_EQ(linux_load(&ram, "x", img, 0x205, NULL, NULL, 0, &e), -ENOEXEC);	/* truncated */
	CHECK_EQ(linux_load(&ram, "x", img, 0x206, NULL, NULL, 0, &e), -ENOEXEC);	/* ends at the magic (found by fuzz_linux) */
	CHECK_EQ(linux_load(&ram, "x", img, CODE_OFF, NULL, NULL, 0, &e), -ENOEXEC);	/* no kernel */
	img[0x202] = 'h';
	CHECK_EQ(linux_load(&ram, "x", img, len, NULL, NULL, 0, &e), -ENOEXEC);	/* magic */
	img[0x202] = 'H';
	put16(img, 0x206, 0x0205);
	CHECK_EQ(linux_load(&ram, "x", img, len, NULL, NULL, 0, &e), -ENOEXEC);	/* old protocol */
	put16(img, 0x206, 0x020f);
	img[0x211] = 0;
	CHECK_EQ(linux_load(&ram, "x", img, len, NULL, NULL, 0, &e), -ENOEXEC);	/* a zImage */
	img[0x211] = 1;
	img[0x201] = 0x10;
	CHECK_EQ(linux_load(&ram, "x", img, len, NULL, NULL, 0, &e), -ENOEXEC);	/* header too short */
	img[0x201] = 0xff;
	CHECK_EQ(linux_load(&ram, "x", img, len, NULL, NULL, 0, &e), -ENOEXEC);	/* runs into the e820 table */
	img[0x201] = 0xc0;
	CHECK_EQ(linux_load(&ram, "x", img, len, NULL, NULL, 0, &e), 0);		/* a longer header is copied */
	img[0x201] = 0x6a;
	put32(img, 0x214, 0x200000);
	CHECK_EQ(linux_load(&ram, "x", img, len, NULL, NULL, 0, &e), -ENOEXEC);	/* entry elsewhere */
	put32(img, 0x214, 0x100000);
	put64(img, 0x258, 1ULL << 33);
	CHECK_EQ(linux_load(&ram, "x", img, len, NULL, NULL, 0, &e), -ENOEXEC);	/* above 4 GiB */
	put64(img, 0x258, 62ULL << 20);
	CHECK_EQ(linux_load(&ram, "x", img, len, NULL, NULL, 0, &e), -ENOMEM);	/* does not fit */
	put64(img, 0x258, PREF);
	memset(longline, 'a', sizeof(longline) - 1);
	longline[2048] = '\0';
	CHECK_EQ(linux_load(&ram, "x", img, len, longline, NULL, 0, &e), -E2BIG);
	longline[2047] = '\0';
	CHECK_EQ(linux_load(&ram, "x", img, len, longline, NULL, 0, &e), 0);
	put32(img, 0x22c, PREF + INIT_SIZE + 100);					/* no room */
	CHECK_EQ(linux_load(&ram, "x", img, len, NULL, initrd, sizeof(initrd), &e), -ENOMEM);
	CHECK(page0_clean(&ram));
	free(img);
	ram_destroy(&ram);

	CHECK_EQ(ram_create(&ram, 16ULL << 20), 0);		/* below pref_address + init_size */
	img = make_bzimage(&len);
	CHECK_EQ(linux_load(&ram, "x", img, len, NULL, NULL, 0, &e), -ENOMEM);
	free(img);
	ram_destroy(&ram);
	log_level = saved;
}

/* Random corruption of the header must be refused or loaded, never crash or write page 0. */
static void test_mutations(void)
{
	struct ram ram;
	struct linux_entry e;
	uint8_t initrd[3 * PAGE_SIZE] = { 1 }, *img;
	size_t len;
	enum log_level saved = log_level;
	int i, loaded = 0;

	log_level = LOG_QUIET;
	CHECK_EQ(ram_create(&ram, 32ULL << 20), 0);
	srand(2);
	for (i = 0; i < 3000; i++) {
		int j, n = 1 + rand() % 4;

		img = make_bzimage(&len);
		for (j = 0; j < n; j++)
			img[0x1f1 + rand() % (0x270 - 0x1f1)] = (uint8_t)rand();
		if (linux_load(&ram, "x", img, len - (size_t)(rand() % 2 ? 0 : rand() % IMG_SIZE), NULL,
			       initrd, sizeof(initrd), &e) == 0) {
			loaded++;
			CHECK(e.initrd_gpa >= e.kernel_end && e.initrd_gpa + sizeof(initrd) <= ram.size);
		}
		free(img);
	}
	CHECK(loaded > 0);
	CHECK(page0_clean(&ram));
	ram_destroy(&ram);
	log_level = saved;
}

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s = (uint8_t)(s + *p++);
	return s;
}

static void test_mptable(void)
{
	struct ram ram;
	uint8_t *mpf, *mpc;
	uint16_t mpc_len, count;

	CHECK_EQ(ram_create(&ram, 8ULL << 20), 0);
	CHECK_EQ(mptable_write(&ram, 3), 0);
	mpf = ram_gpa_to_hva(&ram, RAM_BIOS_START, 16);
	CHECK(!memcmp(mpf, "_MP_", 4));
	CHECK_EQ(sum(mpf, 16), 0);
	CHECK_EQ(mpf[9], 4);
	mpc = ram_gpa_to_hva(&ram, get32(mpf, 4), 44);
	CHECK(!memcmp(mpc, "PCMP", 4));
	memcpy(&mpc_len, mpc + 4, 2);
	memcpy(&count, mpc + 34, 2);
	CHECK_EQ(sum(mpc, mpc_len), 0);
	/* 3 processors, the bus, the I/O APIC, 16 ISA interrupts, 2 local ones. */
	CHECK_EQ(count, 3 + 1 + 1 + 16 + 2);
	CHECK_EQ(mpc_len, 44 + 3 * 20 + 8 + 8 + 18 * 8);
	CHECK_EQ(mpc[44], 0);				/* a processor entry */
	CHECK_EQ(mpc[44 + 3], 3);			/* the BSP: enabled and bootstrap */
	CHECK_EQ(mpc[44 + 20 + 1], 1);			/* APIC ID 1 */
	CHECK_EQ(mpc[44 + 20 + 3], 1);			/* enabled, not the BSP */
	CHECK_EQ(mpc[44 + 60 + 8], 2);			/* the I/O APIC, */
	CHECK_EQ(mpc[44 + 60 + 8 + 1], 3);		/* ID 3 */
	CHECK_EQ(get32(mpc, 44 + 60 + 8 + 4), MPTABLE_IOAPIC_GPA);
	log_level = LOG_QUIET;
	CHECK_EQ(mptable_write(&ram, 0), -EINVAL);
	log_level = LOG_INFO;
	CHECK(page0_clean(&ram));
	ram_destroy(&ram);
}

TEST_MAIN(TEST(test_load), TEST(test_refused), TEST(test_mutations), TEST(test_mptable))
