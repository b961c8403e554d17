/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Guest RAM: one host mapping cut into at most two guest-physical slots, RAM
 * below the 3 GiB PCI hole and the rest above 4 GiB.  Every guest address the
 * VMM dereferences goes through ram_gpa_to_hva(), which refuses any range that
 * is not entirely inside one slot (overflow-checked).
 */
#ifndef VMM_RAM_H
#define VMM_RAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAGE_SHIFT	12
#define PAGE_SIZE	(1UL << PAGE_SHIFT)

#define RAM_LOW_END	0xc0000000ULL	/* the PCI hole starts at 3 GiB */
#define RAM_HIGH_START	0x100000000ULL	/* RAM resumes at 4 GiB */
#define RAM_MIN_SIZE	(2ULL << 20)
#define RAM_MAX_SIZE	(1ULL << 40)	/* 1 TiB, and less where the host addresses less */
#define RAM_SLOTS_MAX	2

typedef uint64_t gpa_t;		/* guest physical address */
typedef uint64_t gfn_t;		/* guest frame number */

struct ram_slot {
	gpa_t gpa;		/* first guest-physical address */
	uint64_t size;		/* bytes, a multiple of PAGE_SIZE */
	uint8_t *hva;		/* host address of gpa */
	uint64_t offset;	/* offset of this slot in the RAM mapping */
};

struct ram {
	uint64_t size;		/* total RAM in bytes */
	int nslots;
	struct ram_slot slot[RAM_SLOTS_MAX];
	uint8_t *base;		/* the whole mapping, slot order */
	uint64_t map_size;
	bool memfd;		/* backed by memfd (ram_create_memfd), not anonymous memory */
	int fd;			/* the memfd, if memfd */
};

/*
 * The host CPU's physical address width (CPUID 0x80000008).  KVM refuses
 * a memory slot that reaches beyond it (its page tables cannot map it).
 */
unsigned ram_host_phys_bits(void);

/*
 * The largest RAM size (a multiple of 2 MiB) whose layout ends within
 * @phys_bits of guest-physical address space, at most RAM_MAX_SIZE: above
 * 3 GiB the RAM resumes at 4 GiB, so with 40 bits that is 1023 GiB.
 */
uint64_t ram_max_size(unsigned phys_bits);

/* Compute the slot layout for @size bytes without allocating; 0 or -EINVAL. */
int ram_layout(struct ram *ram, uint64_t size);

/* Lay out and map @size bytes of zeroed guest RAM; 0 or -errno. */
int ram_create(struct ram *ram, uint64_t size);

/*
 * The same on a memfd (QEMU's memory-backend-memfd with prealloc=on): every
 * page allocated now, in the file, and none mapped yet.  Shared memory lets
 * a second mapping write a page the guest's mapping does not show yet; the
 * postcopy destination places pages that way (UFFDIO_CONTINUE, no copy by
 * the kernel and no allocation on the fault's path).  4 KiB pages only
 * (shared memory gets huge pages only where the host's shmem_enabled says).
 */
int ram_create_memfd(struct ram *ram, uint64_t size);

/*
 * Pages [@first, @first+@n) read as zero from now on and are mapped
 * nowhere: anonymous RAM drops them (MADV_DONTNEED); memfd RAM punches
 * them out of the file and allocates them again, never written, so that
 * the postcopy fault server may take every page it has not placed for a
 * zero one.  0 or -errno.
 */
int ram_discard(struct ram *ram, uint64_t first, uint64_t n);

/* Unmap (and close the memfd); safe on a zeroed or half-built struct ram. */
void ram_destroy(struct ram *ram);

/* Host address of [gpa, gpa+len) if it lies inside one slot, else NULL. */
void *ram_gpa_to_hva(const struct ram *ram, gpa_t gpa, uint64_t len);

/* Number of pages; page index i is at ram->base + i * PAGE_SIZE, in slot order. */
static inline uint64_t ram_npages(const struct ram *ram)
{
	return ram->size >> PAGE_SHIFT;
}

/* Host address of page index @i (i < ram_npages). */
static inline uint8_t *ram_page_hva(const struct ram *ram, uint64_t i)
{
	return ram->base + (i << PAGE_SHIFT);
}

/* True if the page at @p (PAGE_SIZE bytes, 8-byte aligned) is all zeros. */
static inline bool ram_page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;
	size_t i;

	for (i = 0; i < PAGE_SIZE / 8; i += 4)
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3])
			return false;
	return true;
}

/*
 * The pages of guest RAM the host never populated, from /proc/self/pagemap
 * (on a memfd, from the file's holes, SEEK_DATA: a page allocated and never
 * written is a hole and reads as zero; one written is data, mapped or not,
 * swapped out or not):
 * a page of this private anonymous mapping that is neither present nor
 * swapped out reads as zero, and is known to without reading it (reading
 * would map the zero page there; under TCG, scanning a page costs
 * microseconds, and an untouched guest is mostly such pages).  Entries are
 * read a window at a time; one struct per thread.  A page the guest
 * populates after its window was read is one the dirty log reports: what
 * it says is as good as a scan of the page at that moment.
 */
#define RAM_PAGEMAP_WINDOW	512

struct ram_pagemap {
	int fd;				/* -1: no pagemap, every page is looked at */
	bool memfd;			/* fd is the RAM's memfd: win[0] says whether [first, first+n) holds data */
	const struct ram *ram;
	uint64_t first;			/* page index of win[0] */
	uint32_t n;			/* entries of win read */
	uint64_t win[RAM_PAGEMAP_WINDOW];
};

/* Open the pagemap for @ram; without one (no /proc), every page counts as populated. */
void ram_pagemap_open(struct ram_pagemap *pm, const struct ram *ram);

void ram_pagemap_close(struct ram_pagemap *pm);

/* False only if page @i was never populated (so it is zero). */
bool ram_page_populated(struct ram_pagemap *pm, uint64_t i);

/* True if page @i is all zeros: never populated, or read and found so. */
bool ram_page_zero(struct ram_pagemap *pm, uint64_t i);

/* The page index of guest-physical @gpa; -1 (as uint64_t) if it is not RAM. */
uint64_t ram_gpa_to_index(const struct ram *ram, gpa_t gpa);

/* The guest-physical address of page index @i. */
gpa_t ram_index_to_gpa(const struct ram *ram, uint64_t i);

/* True if [gpa, gpa+len) lies inside one slot. */
bool ram_contains(const struct ram *ram, gpa_t gpa, uint64_t len);

/*
 * The memory map a PC's firmware reports for this RAM, which both boot
 * loaders hand on (multiboot's mmap, Linux's e820): RAM up to the EBDA, the
 * EBDA and the BIOS area reserved, RAM from 1 MiB to the end of the low
 * slot, and the high slot if any.  Types are e820's.
 */
#define RAM_EBDA_START		0x9fc00ULL
#define RAM_BIOS_START		0xf0000ULL
#define RAM_HIGH_MEM_START	0x100000ULL
#define RAM_MAP_MAX		5
#define RAM_MAP_RAM		1
#define RAM_MAP_RESERVED	2

struct ram_map_entry {
	uint64_t addr, len;
	uint32_t type;
};

/* Fill @e (RAM_MAP_MAX entries) and return how many; @ram must have at least 1 MiB + 4 KiB. */
int ram_pc_map(const struct ram *ram, struct ram_map_entry *e);

#endif
