// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * boot.c - reading the multiboot information copied by entry.S.
 *
 * entry.S copies raw bytes and truncates the memory map to the buffer, so
 * this file trusts no length: every map entry is bounds-checked against the
 * copied length before it is read.  Entries are laid out as the multiboot
 * spec says: a u32 size that does not count itself, then base, length and
 * type, packed.
 */
#include "boot.h"
#include "lib.h"

#define MBI_MEM		(1u << 0)
#define MBI_MMAP	(1u << 6)
#define MMAP_RAM	1
#define MIB		0x100000ull

struct boot_info {
	uint32_t flags;
	uint32_t mem_lower, mem_upper;
	uint32_t boot_device, cmdline;
	uint32_t mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr;
};

struct boot_mmap_raw {
	uint32_t size;
	uint64_t base, len;
	uint32_t type;
} __attribute__((packed));

/* Filled by entry.S before anything else runs. */
extern struct boot_info boot_mbi;
extern char boot_cmdline_buf[];
extern unsigned char boot_mmap_buf[];
extern char image_end[];

const char *boot_cmdline(void)
{
	return boot_cmdline_buf;
}

bool boot_mem(uint32_t *lower_kib, uint32_t *upper_kib)
{
	*lower_kib = boot_mbi.mem_lower;
	*upper_kib = boot_mbi.mem_upper;
	return boot_mbi.flags & MBI_MEM;
}

bool boot_mmap_entry(unsigned i, uint64_t *base, uint64_t *len, uint32_t *type)
{
	uint32_t off = 0, limit = boot_mbi.mmap_length;

	if (!(boot_mbi.flags & MBI_MMAP))
		return false;
	for (;;) {
		struct boot_mmap_raw e;

		if (limit < sizeof(e) || off > limit - sizeof(e))
			return false;
		memcpy(&e, boot_mmap_buf + off, sizeof(e));
		if (!i--) {
			*base = e.base;
			*len = e.len;
			*type = e.type;
			return true;
		}
		if (e.size < sizeof(e) - 4)
			return false;
		off += e.size + 4;
	}
}

uint64_t boot_ram_end(uint64_t gpa)
{
	uint64_t base, len, end = 0;
	uint32_t type, lower, upper;
	bool grew = true;

	if (!(boot_mbi.flags & MBI_MMAP)) {
		if (!boot_mem(&lower, &upper) || gpa < MIB)
			return 0;
		end = MIB + (uint64_t)upper * 1024;
		return gpa < end ? end : 0;
	}
	/* Map entries need not be sorted, so merge until nothing grows. */
	while (grew) {
		grew = false;
		for (unsigned i = 0; boot_mmap_entry(i, &base, &len, &type); i++) {
			uint64_t from = end ? end : gpa;

			if (type == MMAP_RAM && base <= from && base + len > from) {
				end = base + len;
				grew = true;
			}
		}
	}
	return end;
}

uint64_t boot_image_end(void)
{
	return (uint64_t)image_end;
}
