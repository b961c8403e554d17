// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests: the multiboot loader, on ELF32 images built in memory.  Every
 * malformed image must be refused with an error, never loaded and never
 * crash (the mutation test runs under ASan in `make check`).
 */
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "tests/unit/test.h"
#include "vmm/log.h"
#include "vmm/multiboot.h"

#define IMG_SIZE	0x3000
#define SEG_OFF		0x1000
#define SEG_PADDR	0x100000
#define SEG_FILESZ	0x1000
#define SEG_MEMSZ	0x3000

struct mb_info_view {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr;
};

static uint8_t *make_image(size_t *len)
{
	uint8_t *img = calloc(1, IMG_SIZE);
	Elf32_Ehdr *eh = (Elf32_Ehdr *)img;
	Elf32_Phdr *ph = (Elf32_Phdr *)(img + sizeof(*eh));
	uint32_t *mh = (uint32_t *)(img + SEG_OFF);

	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS32;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_386;
	eh->e_version = EV_CURRENT;
	eh->e_entry = SEG_PADDR + 0x20;
	eh->e_phoff = sizeof(*eh);
	eh->e_ehsize = sizeof(*eh);
	eh->e_phentsize = sizeof(*ph);
	eh->e_phnum = 1;
	ph->p_type = PT_LOAD;
	ph->p_offset = SEG_OFF;
	ph->p_vaddr = ph->p_paddr = SEG_PADDR;
	ph->p_filesz = SEG_FILESZ;
	ph->p_memsz = SEG_MEMSZ;
	mh[0] = MULTIBOOT_HEADER_MAGIC;
	mh[1] = 3;
	mh[2] = -(MULTIBOOT_HEADER_MAGIC + 3);
	img[SEG_OFF + 0x20] = 0xf4;	/* hlt at the entry */
	*len = IMG_SIZE;
	return img;
}

static Elf32_Phdr *phdr(uint8_t *img)
{
	return (Elf32_Phdr *)(img + sizeof(Elf32_Ehdr));
}

static int load(struct ram *ram, uint8_t *img, size_t len, struct multiboot_entry *e)
{
	return multiboot_load(ram, "test.img", img, len, "test.img hello", NULL, e);
}

static void test_valid(void)
{
	struct ram ram;
	struct multiboot_entry e;
	struct mb_info_view *mbi;
	size_t len;
	uint8_t *img = make_image(&len), *p;
	static const uint8_t mod[] = "module contents";
	struct multiboot_module m = { mod, sizeof(mod), "mod.bin" };
	uint32_t *modlist;

	CHECK_EQ(ram_create(&ram, 256ULL << 20), 0);
	memset(ram_gpa_to_hva(&ram, SEG_PADDR + SEG_FILESZ, 16), 0x77, 16);
	CHECK_EQ(multiboot_load(&ram, "test.img", img, len, "test.img hello", &m, &e), 0);
	CHECK_EQ(e.entry, SEG_PADDR + 0x20);
	CHECK_EQ(e.info, MULTIBOOT_INFO_GPA);
	CHECK_EQ(e.image_end, SEG_PADDR + SEG_MEMSZ);
	p = ram_gpa_to_hva(&ram, SEG_PADDR, SEG_MEMSZ);
	CHECK_EQ(p[0x20], 0xf4);
	CHECK_EQ(p[SEG_FILESZ], 0);		/* bss zeroed */
	mbi = ram_gpa_to_hva(&ram, e.info, sizeof(*mbi));
	CHECK_EQ(mbi->mem_lower, 639);
	CHECK_EQ(mbi->mem_upper, (256 - 1) * 1024);
	CHECK(mbi->flags & (1 << 2));
	CHECK_STR((char *)ram_gpa_to_hva(&ram, mbi->cmdline, 15), "test.img hello");
	CHECK(mbi->cmdline > MULTIBOOT_INFO_GPA && mbi->cmdline < MULTIBOOT_INFO_GPA + PAGE_SIZE);
	CHECK_EQ(mbi->mods_count, 1);
	modlist = ram_gpa_to_hva(&ram, mbi->mods_addr, 16);
	CHECK_EQ(modlist[0], SEG_PADDR + SEG_MEMSZ);	/* page aligned after the image */
	CHECK_EQ(modlist[1] - modlist[0], sizeof(mod));
	CHECK_STR((char *)ram_gpa_to_hva(&ram, modlist[0], sizeof(mod)), "module contents");
	CHECK_STR((char *)ram_gpa_to_hva(&ram, modlist[2], 8), "mod.bin");
	CHECK_EQ(mbi->mmap_length % 24, 0);
	CHECK_EQ(mbi->mmap_length / 24, 4);
	/* Page 0 untouched. */
	for (int i = 0; i < 4096; i++)
		if (((uint8_t *)ram.base)[i])
			CHECK(!"page 0 written");
	ram_destroy(&ram);
	free(img);
}

static void test_cmdline_never_null(void)
{
	struct ram ram;
	struct multiboot_entry e;
	struct mb_info_view *mbi;
	size_t len;
	uint8_t *img = make_image(&len);

	CHECK_EQ(ram_create(&ram, 16ULL << 20), 0);
	CHECK_EQ(multiboot_load(&ram, "x", img, len, NULL, NULL, &e), 0);
	mbi = ram_gpa_to_hva(&ram, e.info, sizeof(*mbi));
	CHECK(mbi->cmdline != 0);
	CHECK_STR((char *)ram_gpa_to_hva(&ram, mbi->cmdline, 1), "");
	ram_destroy(&ram);
	free(img);
}

static void test_high_ram_map(void)
{
	struct ram ram;
	struct multiboot_entry e;
	struct mb_info_view *mbi;
	size_t len;
	uint8_t *img = make_image(&len);
	uint8_t *map;

	/* 3.5 GiB: low RAM stops at the PCI hole; the map has RAM above 4 GiB. */
	CHECK_EQ(ram_create(&ram, 3584ULL << 20), 0);
	CHECK_EQ(load(&ram, img, len, &e), 0);
	mbi = ram_gpa_to_hva(&ram, e.info, sizeof(*mbi));
	CHECK_EQ(mbi->mem_upper, (3072 - 1) * 1024);
	CHECK_EQ(mbi->mmap_length / 24, 5);
	map = ram_gpa_to_hva(&ram, mbi->mmap_addr, mbi->mmap_length);
	uint64_t base, size;
	memcpy(&base, map + 4 * 24 + 4, 8);
	memcpy(&size, map + 4 * 24 + 12, 8);
	CHECK(base == RAM_HIGH_START);
	CHECK(size == 512ULL << 20);
	ram_destroy(&ram);
	free(img);
}

static void test_refused(void)
{
	struct ram ram;
	struct multiboot_entry e;
	size_t len;
	uint8_t *img;
	enum log_level saved = log_level;

	log_level = LOG_QUIET;	/* the refusals are expected: keep the output clean */
	CHECK_EQ(ram_create(&ram, 16ULL << 20), 0);

	img = make_image(&len);
	CHECK_EQ(load(&ram, img, 40, &e), -ENOEXEC);		/* truncated header */
	CHECK_EQ(load(&ram, img, 60, &e), -ENOEXEC);		/* truncated phdrs */
	CHECK_EQ(load(&ram, img, SEG_OFF + 16, &e), -ENOEXEC);	/* truncated segment */
	CHECK_EQ(load(&ram, img, 0, &e), -ENOEXEC);

	((uint32_t *)(img + SEG_OFF))[2] ^= 1;			/* bad checksum */
	CHECK_EQ(load(&ram, img, len, &e), -EINVAL);
	free(img);

	img = make_image(&len);
	memset(img + SEG_OFF, 0, 12);				/* no header */
	CHECK_EQ(load(&ram, img, len, &e), -ENOEXEC);
	free(img);

	img = make_image(&len);
	phdr(img)->p_paddr = 16 << 20;				/* outside RAM */
	CHECK_EQ(load(&ram, img, len, &e), -ENOEXEC);
	phdr(img)->p_paddr = (16 << 20) - 0x1000;		/* straddles the end */
	CHECK_EQ(load(&ram, img, len, &e), -ENOEXEC);
	phdr(img)->p_paddr = 0;					/* over page 0 */
	CHECK_EQ(load(&ram, img, len, &e), -ENOEXEC);
	phdr(img)->p_paddr = 0xfffff000;			/* wraps */
	CHECK_EQ(load(&ram, img, len, &e), -ENOEXEC);
	free(img);

	img = make_image(&len);
	phdr(img)->p_filesz = SEG_MEMSZ + 1;			/* filesz > memsz */
	CHECK_EQ(load(&ram, img, len, &e), -ENOEXEC);
	phdr(img)->p_filesz = 0x10;
	phdr(img)->p_offset = 0xfffffff8;			/* offset wraps */
	CHECK_EQ(load(&ram, img, len, &e), -ENOEXEC);
	free(img);

	img = make_image(&len);
	((Elf32_Ehdr *)img)->e_entry = 0x5000000;		/* entry outside segments */
	CHECK_EQ(load(&ram, img, len, &e), -ENOEXEC);
	((Elf32_Ehdr *)img)->e_entry = SEG_PADDR;
	((Elf32_Ehdr *)img)->e_phnum = 0xffff;			/* phdrs beyond the file */
	CHECK_EQ(load(&ram, img, len, &e), -ENOEXEC);
	((Elf32_Ehdr *)img)->e_phnum = 1;
	phdr(img)->p_type = PT_NOTE;				/* nothing to load */
	CHECK_EQ(load(&ram, img, len, &e), -ENOEXEC);
	free(img);

	img = make_image(&len);
	img[EI_CLASS] = ELFCLASS64;
	CHECK_EQ(load(&ram, img, len, &e), -ENOEXEC);
	img[EI_CLASS] = ELFCLASS32;
	((uint32_t *)(img + SEG_OFF))[1] = 3 | (1 << 5);	/* unknown required flag */
	((uint32_t *)(img + SEG_OFF))[2] = -(MULTIBOOT_HEADER_MAGIC + (3 | (1 << 5)));
	CHECK_EQ(load(&ram, img, len, &e), -ENOEXEC);
	free(img);

	img = make_image(&len);
	char longline[MULTIBOOT_CMDLINE_MAX + 1];
	memset(longline, 'a', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
	CHECK_EQ(multiboot_load(&ram, "x", img, len, longline, NULL, &e), -E2BIG);
	free(img);

	ram_destroy(&ram);
	log_level = saved;
}

/* Random corruption of the headers must be refused or loaded, never crash. */
static void test_mutations(void)
{
	struct ram ram;
	struct multiboot_entry e;
	size_t len;
	uint8_t *img;
	enum log_level saved = log_level;
	int i, loaded = 0;

	log_level = LOG_QUIET;	/* the refusals are expected: keep the output clean */
	CHECK_EQ(ram_create(&ram, 8ULL << 20), 0);
	srand(1);
	for (i = 0; i < 3000; i++) {
		int j, n = 1 + rand() % 4;

		img = make_image(&len);
		for (j = 0; j < n; j++) {
			size_t off = (rand() % 2) ? (size_t)(rand() % 84) : SEG_OFF + (size_t)(rand() % 12);

			img[off] = (uint8_t)rand();
		}
		if (load(&ram, img, len - (size_t)(rand() % 2 ? 0 : rand() % IMG_SIZE), &e) == 0) {
			loaded++;
			CHECK(ram_contains(&ram, e.entry, 1));
		}
		free(img);
	}
	CHECK(loaded > 0);
	ram_destroy(&ram);
	log_level = saved;
}

/* True if [a, a+alen) and [b, b+blen) intersect. */
static bool overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* The boot information of @e: none of it over [start, start+len). */
static void check_info_clear(struct ram *ram, const struct multiboot_entry *e, uint64_t start, uint64_t len)
{
	struct mb_info_view *mbi = ram_gpa_to_hva(ram, e->info, sizeof(*mbi));

	CHECK(mbi != NULL);
	CHECK(!overlap(e->info, sizeof(*mbi), start, len));
	CHECK(!overlap(mbi->cmdline, 15, start, len));
	CHECK(!overlap(mbi->mmap_addr, mbi->mmap_length, start, len));
	CHECK_STR((char *)ram_gpa_to_hva(ram, mbi->cmdline, 15), "test.img hello");
	CHECK(e->info >= PAGE_SIZE);
}

/* An image over the usual place (0x9000) gets its boot information elsewhere, as QEMU boots it. */
static void test_info_moves(void)
{
	struct ram ram;
	struct multiboot_entry e;
	size_t len;
	uint8_t *img = make_image(&len);

	CHECK_EQ(ram_create(&ram, 16ULL << 20), 0);
	/* 0x8000-0xa86c, as the image the issue reported. */
	phdr(img)->p_paddr = phdr(img)->p_vaddr = 0x8000;
	phdr(img)->p_memsz = 0x286c;
	((Elf32_Ehdr *)img)->e_entry = 0x8020;
	CHECK_EQ(load(&ram, img, len, &e), 0);
	CHECK(e.info != MULTIBOOT_INFO_GPA);
	check_info_clear(&ram, &e, 0x8000, 0x286c);
	CHECK(e.info < 0x8000);		/* the lowest free spot: page 1 */

	/* All of low memory taken: the boot information goes after the image, in high RAM. */
	phdr(img)->p_paddr = phdr(img)->p_vaddr = 0x1000;
	phdr(img)->p_memsz = 0x200000 - 0x1000;
	((Elf32_Ehdr *)img)->e_entry = 0x1020;
	CHECK_EQ(load(&ram, img, len, &e), 0);
	check_info_clear(&ram, &e, 0x1000, 0x200000 - 0x1000);
	CHECK(e.info >= 0x200000);
	ram_destroy(&ram);
	free(img);
}

TEST_MAIN(TEST(test_valid), TEST(test_info_moves), TEST(test_cmdline_never_null), TEST(test_high_ram_map),
	  TEST(test_refused), TEST(test_mutations))
