// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Guest RAM.  A single mapping (anonymous, or of one memfd) backs all slots,
 * so that the whole of guest memory is one contiguous host range: dirty
 * bitmaps, the received
 * bitmap and userfaultfd registration can then work on "page index in RAM"
 * without caring about the PCI hole.  The mapping is 2 MiB aligned so that
 * transparent huge pages can back it.
 */
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/ram.h"

#define RAM_ALIGN (2ULL << 20)

unsigned ram_host_phys_bits(void)
{
	unsigned a, b, c, d;

	/* CPUs without the leaf are from before 64-bit: 36 bits (PAE). */
	if ((unsigned)__get_cpuid_max(0x80000000, NULL) < 0x80000008U || !__get_cpuid(0x80000008, &a, &b, &c, &d) ||
	    (a & 0xff) < 32)
		return 36;
	return a & 0xff;
}

uint64_t ram_max_size(unsigned phys_bits)
{
	uint64_t limit = phys_bits >= 63 ? UINT64_MAX : 1ULL << phys_bits, max;

	if (limit <= RAM_LOW_END)
		max = limit;
	else
		max = limit <= RAM_HIGH_START ? RAM_LOW_END : limit - (RAM_HIGH_START - RAM_LOW_END);
	max = max < RAM_MAX_SIZE ? max : RAM_MAX_SIZE;
	return max & ~(RAM_ALIGN - 1);
}

int ram_layout(struct ram *ram, uint64_t size)
{
	memset(ram, 0, sizeof(*ram));
	if (size < RAM_MIN_SIZE || size > RAM_MAX_SIZE || size % PAGE_SIZE)
		return -EINVAL;
	ram->size = size;
	ram->slot[0].gpa = 0;
	ram->slot[0].size = size < RAM_LOW_END ? size : RAM_LOW_END;
	ram->nslots = 1;
	if (size > RAM_LOW_END) {
		ram->slot[1].gpa = RAM_HIGH_START;
		ram->slot[1].size = size - RAM_LOW_END;
		ram->slot[1].offset = RAM_LOW_END;
		ram->nslots = 2;
	}
	return 0;
}

/* Map @size bytes of @fd (or anonymous memory if @fd < 0), 2 MiB aligned. */
static int ram_map(struct ram *ram, uint64_t size, int fd)
{
	uint8_t *map, *base;
	int i;

	/* The slack first, then the RAM over it where it is aligned. */
	map = mmap(NULL, size + RAM_ALIGN, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (map == MAP_FAILED)
		return -errno;
	base = (uint8_t *)(((uintptr_t)map + RAM_ALIGN - 1) & ~(uintptr_t)(RAM_ALIGN - 1));
	/* Give back the alignment slack on both sides. */
	if (base > map)
		munmap(map, (size_t)(base - map));
	if (map + size + RAM_ALIGN > base + size)
		munmap(base + size, (size_t)(map + size + RAM_ALIGN - (base + size)));
	if (fd >= 0 && mmap(base, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
		i = -errno;
		munmap(base, size);
		return i;
	}
	madvise(base, size, MADV_HUGEPAGE);
	ram->base = base;
	ram->map_size = size;
	for (i = 0; i < ram->nslots; i++)
		ram->slot[i].hva = base + ram->slot[i].offset;
	return 0;
}

int ram_create(struct ram *ram, uint64_t size)
{
	int ret = ram_layout(ram, size);

	return ret ? ret : ram_map(ram, size, -1);
}

int ram_create_memfd(struct ram *ram, uint64_t size)
{
	int ret = ram_layout(ram, size), fd;

	if (ret)
		return ret;
	fd = memfd_create("vmm-guest-ram", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* Allocated now, not at the first touch: placing a page then costs no allocation. */
	if (ftruncate(fd, (off_t)size) || fallocate(fd, 0, 0, (off_t)size)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	ret = ram_map(ram, size, fd);
	if (ret) {
		close(fd);
		return ret;
	}
	ram->memfd = true;
	ram->fd = fd;
	return 0;
}

int ram_discard(struct ram *ram, uint64_t first, uint64_t n)
{
	off_t off = (off_t)(first << PAGE_SHIFT), len = (off_t)(n << PAGE_SHIFT);

	if (!ram->memfd)
		return madvise(ram_page_hva(ram, first), (size_t)len, MADV_DONTNEED) ? -errno : 0;
	/* The hole unmaps the pages everywhere; the allocation gives zero pages not yet written. */
	if (fallocate(ram->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) || fallocate(ram->fd, 0, off, len))
		return -errno;
	return 0;
}

void ram_destroy(struct ram *ram)
{
	if (ram->base)
		munmap(ram->base, ram->map_size);
	if (ram->memfd)
		close(ram->fd);
	memset(ram, 0, sizeof(*ram));
}

/* The slot holding all of [gpa, gpa+len), or NULL (also on overflow). */
static const struct ram_slot *ram_find_slot(const struct ram *ram, gpa_t gpa, uint64_t len)
{
	gpa_t end;
	int i;

	if (__builtin_add_overflow(gpa, len, &end))
		return NULL;
	for (i = 0; i < ram->nslots; i++) {
		const struct ram_slot *s = &ram->slot[i];

		if (gpa >= s->gpa && end <= s->gpa + s->size)
			return s;
	}
	return NULL;
}

void *ram_gpa_to_hva(const struct ram *ram, gpa_t gpa, uint64_t len)
{
	const struct ram_slot *s = ram_find_slot(ram, gpa, len);

	return s && s->hva ? s->hva + (gpa - s->gpa) : NULL;
}

bool ram_contains(const struct ram *ram, gpa_t gpa, uint64_t len)
{
	return ram_find_slot(ram, gpa, len) != NULL;
}

uint64_t ram_gpa_to_index(const struct ram *ram, gpa_t gpa)
{
	int i;

	for (i = 0; i < ram->nslots; i++) {
		const struct ram_slot *s = &ram->slot[i];

		if (gpa >= s->gpa && gpa - s->gpa < s->size)
			return (s->offset + (gpa - s->gpa)) >> PAGE_SHIFT;
	}
	return UINT64_MAX;
}

gpa_t ram_index_to_gpa(const struct ram *ram, uint64_t i)
{
	uint64_t off = i << PAGE_SHIFT;
	int s;

	for (s = ram->nslots - 1; s > 0; s--)
		if (off >= ram->slot[s].offset)
			break;
	return ram->slot[s].gpa + (off - ram->slot[s].offset);
}

int ram_pc_map(const struct ram *ram, struct ram_map_entry *e)
{
	uint64_t low = ram->slot[0].size;
	int n = 0;

	e[n++] = (struct ram_map_entry){ 0, RAM_EBDA_START, RAM_MAP_RAM };
	e[n++] = (struct ram_map_entry){ RAM_EBDA_START, 0xa0000 - RAM_EBDA_START, RAM_MAP_RESERVED };
	e[n++] = (struct ram_map_entry){ RAM_BIOS_START, RAM_HIGH_MEM_START - RAM_BIOS_START, RAM_MAP_RESERVED };
	if (low > RAM_HIGH_MEM_START)
		e[n++] = (struct ram_map_entry){ RAM_HIGH_MEM_START, low - RAM_HIGH_MEM_START, RAM_MAP_RAM };
	if (ram->nslots > 1)
		e[n++] = (struct ram_map_entry){ ram->slot[1].gpa, ram->slot[1].size, RAM_MAP_RAM };
	return n;
}

/* /proc/pid/pagemap: one u64 per virtual page (Documentation/admin-guide/mm/pagemap.rst). */
#define PM_PRESENT	(1ULL << 63)
#define PM_SWAPPED	(1ULL << 62)

void ram_pagemap_open(struct ram_pagemap *pm, const struct ram *ram)
{
	pm->memfd = ram->memfd;
	pm->fd = ram->memfd ? dup(ram->fd) : open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	pm->ram = ram;
	pm->first = 0;
	pm->n = 0;
}

void ram_pagemap_close(struct ram_pagemap *pm)
{
	if (pm->fd >= 0)
		close(pm->fd);
	pm->fd = -1;
	pm->n = 0;
}

/*
 * On a memfd: the run of data or of hole that holds page @i, from SEEK_DATA
 * and SEEK_HOLE.  Shared memory calls a page allocated but never written a
 * hole (it reads as zero) and a page written data, even swapped out.
 */
static bool memfd_populated(struct ram_pagemap *pm, uint64_t i)
{
	uint64_t npages = ram_npages(pm->ram);
	off_t off = (off_t)(i << PAGE_SHIFT), next;
	bool data;

	if (i >= pm->first && i < pm->first + pm->n)
		return pm->win[0];
	next = lseek(pm->fd, off, SEEK_DATA);
	if (next < 0 && errno == ENXIO) {
		next = (off_t)(npages << PAGE_SHIFT);	/* holes to the end */
		data = false;
	} else if (next < 0) {
		ram_pagemap_close(pm);
		return true;
	} else if (next > off) {
		data = false;
	} else {
		next = lseek(pm->fd, off, SEEK_HOLE);
		if (next <= off) {
			ram_pagemap_close(pm);
			return true;
		}
		data = true;
	}
	pm->first = i;
	pm->n = (uint32_t)((uint64_t)(next - off) >> PAGE_SHIFT < UINT32_MAX ? (uint64_t)(next - off) >> PAGE_SHIFT :
			   UINT32_MAX);
	pm->win[0] = data;
	return data;
}

bool ram_page_populated(struct ram_pagemap *pm, uint64_t i)
{
	uint64_t npages = ram_npages(pm->ram), want;
	ssize_t got;

	if (pm->fd < 0)
		return true;
	if (pm->memfd)
		return memfd_populated(pm, i);
	if (i < pm->first || i >= pm->first + pm->n) {
		want = npages - i < RAM_PAGEMAP_WINDOW ? npages - i : RAM_PAGEMAP_WINDOW;
		got = pread(pm->fd, pm->win, want * sizeof(uint64_t),
			    (off_t)((uintptr_t)ram_page_hva(pm->ram, i) >> PAGE_SHIFT) * (off_t)sizeof(uint64_t));
		if (got < (ssize_t)sizeof(uint64_t)) {
			/* Unreadable after all: look at every page from now on. */
			ram_pagemap_close(pm);
			return true;
		}
		pm->first = i;
		pm->n = (uint32_t)(got / sizeof(uint64_t));
	}
	return (pm->win[i - pm->first] & (PM_PRESENT | PM_SWAPPED)) != 0;
}

bool ram_page_zero(struct ram_pagemap *pm, uint64_t i)
{
	return !ram_page_populated(pm, i) || ram_page_is_zero(ram_page_hva(pm->ram, i));
}
