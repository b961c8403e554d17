// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Multiboot v1 loader.  The layout it builds in guest memory:
 *
 *	0x0000 - 0x0fff    page 0, never written
 *	0x9000 - ...       boot information: the info struct, the memory map,
 *	                   the module list, the boot loader name, the strings
 *	image segments     where their p_paddr says (normally from 1 MiB)
 *	module             page aligned, after the highest segment
 *
 * The boot information goes at 0x9000, where the image normally leaves
 * room; an image that loads there instead (QEMU boots such images) gets it
 * at the lowest spot clear of every segment and the module, in low memory
 * below the EBDA or in RAM from 1 MiB below 4 GiB, as the multiboot spec
 * allows ("anywhere in memory" but the kernel and its modules).
 *
 * The memory map mirrors a PC's: low RAM up to the EBDA, the BIOS area
 * reserved, RAM from 1 MiB up to the PCI hole, and RAM above 4 GiB if any.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/file.h"
#include "vmm/log.h"
#include "vmm/multiboot.h"

#define MB_FLAG_PAGE_ALIGN	(1U << 0)
#define MB_FLAG_MEMINFO		(1U << 1)
#define MB_FLAG_VIDEO		(1U << 2)
#define MB_FLAG_AOUT_KLUDGE	(1U << 16)

#define MBI_MEM		(1U << 0)
#define MBI_CMDLINE	(1U << 2)
#define MBI_MODS	(1U << 3)
#define MBI_MMAP	(1U << 6)
#define MBI_LOADER_NAME	(1U << 9)

#define EBDA_START	RAM_EBDA_START
#define HIGH_MEM_START	RAM_HIGH_MEM_START

struct mb_header {
	uint32_t magic, flags, checksum;
	uint32_t header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr;
};

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr, drives_length, drives_addr, config_table;
	uint32_t boot_loader_name, apm_table;
	uint32_t vbe[6];
};

struct mb_module {
	uint32_t mod_start, mod_end, string, reserved;
};

struct __attribute__((packed)) mb_mmap_entry {
	uint32_t size;
	uint64_t addr, len;
	uint32_t type;
};

static int mb_find_header(const char *name, const uint8_t *image, size_t len, struct mb_header *hdr)
{
	size_t off, limit = len < MULTIBOOT_SEARCH ? len : MULTIBOOT_SEARCH;

	for (off = 0; off + 12 <= limit; off += 4) {
		uint32_t w[3];

		memcpy(w, image + off, sizeof(w));
		if (w[0] != MULTIBOOT_HEADER_MAGIC)
			continue;
		if (w[0] + w[1] + w[2] != 0)
			return error(-EINVAL, "%s: multiboot header at offset %zu has a bad checksum", name, off);
		memset(hdr, 0, sizeof(*hdr));
		memcpy(hdr, image + off, off + sizeof(*hdr) <= len ? sizeof(*hdr) : 12);
		return 0;
	}
	return error(-ENOEXEC, "%s: not a multiboot image (no multiboot v1 header in the first %d bytes)",
		     name, MULTIBOOT_SEARCH);
}

/* True if [a, a+alen) and [b, b+blen) intersect; the lengths are non-zero. */
static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static int mb_load_elf(struct ram *ram, const char *name, const uint8_t *image, size_t len,
		       struct multiboot_entry *out)
{
	Elf32_Ehdr eh;
	uint64_t phend, end = 0;
	bool entry_found = false;
	int i, nload = 0;

	if (len < EI_NIDENT || memcmp(image, ELFMAG, SELFMAG))
		return error(-ENOEXEC, "%s: not an ELF file (multiboot a.out images are not supported)", name);
	if (image[EI_CLASS] == ELFCLASS64)
		return error(-ENOEXEC, "%s: ELF64 image; multiboot v1 needs ELF32 (objcopy -O elf32-i386)", name);
	if (image[EI_CLASS] != ELFCLASS32 || image[EI_DATA] != ELFDATA2LSB)
		return error(-ENOEXEC, "%s: not a little-endian ELF32 file", name);
	if (len < sizeof(eh))
		return error(-ENOEXEC, "%s: truncated ELF header (%zu bytes)", name, len);
	memcpy(&eh, image, sizeof(eh));
	if (eh.e_machine != EM_386 && eh.e_machine != EM_X86_64)
		return error(-ENOEXEC, "%s: ELF machine %u is not x86", name, eh.e_machine);
	if (eh.e_phentsize != sizeof(Elf32_Phdr) || eh.e_phnum == 0)
		return error(-ENOEXEC, "%s: no usable program headers", name);
	phend = (uint64_t)eh.e_phoff + (uint64_t)eh.e_phnum * sizeof(Elf32_Phdr);
	if (phend > len)
		return error(-ENOEXEC, "%s: truncated: program headers end at %llu, file has %zu bytes",
			     name, (unsigned long long)phend, len);

	/* Check every segment before writing any of them. */
	for (int pass = 0; pass < 2; pass++) {
		for (i = 0; i < eh.e_phnum; i++) {
			Elf32_Phdr ph;
			uint8_t *dst;

			memcpy(&ph, image + eh.e_phoff + (size_t)i * sizeof(ph), sizeof(ph));
			if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
				continue;
			if (pass == 1) {
				dst = ram_gpa_to_hva(ram, ph.p_paddr, ph.p_memsz);
				memcpy(dst, image + ph.p_offset, ph.p_filesz);
				memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
				continue;
			}
			if (ph.p_filesz > ph.p_memsz)
				return error(-ENOEXEC, "%s: segment %d: file size %u exceeds memory size %u",
					     name, i, ph.p_filesz, ph.p_memsz);
			if ((uint64_t)ph.p_offset + ph.p_filesz > len)
				return error(-ENOEXEC, "%s: truncated: segment %d needs bytes up to %llu, file has %zu",
					     name, i, (unsigned long long)ph.p_offset + ph.p_filesz, len);
			if (!ram_contains(ram, ph.p_paddr, ph.p_memsz))
				return error(-ENOEXEC, "%s: segment %d [0x%x-0x%llx) lies outside guest RAM (%llu MiB)",
					     name, i, ph.p_paddr, (unsigned long long)ph.p_paddr + ph.p_memsz,
					     (unsigned long long)(ram->size >> 20));
			if (ranges_overlap(ph.p_paddr, ph.p_memsz, 0, PAGE_SIZE))
				return error(-ENOEXEC, "%s: segment %d [0x%x-0x%llx) overlaps page 0",
					     name, i, ph.p_paddr, (unsigned long long)ph.p_paddr + ph.p_memsz);
			nload++;
			if ((uint64_t)ph.p_paddr + ph.p_memsz > end)
				end = (uint64_t)ph.p_paddr + ph.p_memsz;
			/* The entry point is virtual; find the segment that holds it. */
			if (!entry_found && eh.e_entry >= ph.p_vaddr && eh.e_entry - ph.p_vaddr < ph.p_memsz) {
				out->entry = ph.p_paddr + (eh.e_entry - ph.p_vaddr);
				entry_found = true;
			}
		}
		if (pass == 0 && nload == 0)
			return error(-ENOEXEC, "%s: no loadable segment", name);
		if (pass == 0 && !entry_found)
			return error(-ENOEXEC, "%s: entry point 0x%x is not inside a loaded segment", name, eh.e_entry);
	}
	out->image_end = end;
	return 0;
}

/* A bump allocator over the boot-information area [next, end). */
struct mb_area {
	struct ram *ram;
	uint64_t next, end;
};

static int mb_alloc(struct mb_area *a, const void *data, size_t len, uint32_t *gpa)
{
	uint64_t at = (a->next + 7) & ~7ULL;
	void *dst;

	if (at + len > a->end || !(dst = ram_gpa_to_hva(a->ram, at, len)))
		return -ENOSPC;
	memcpy(dst, data, len);
	a->next = at + len;
	*gpa = (uint32_t)at;
	return 0;
}

/* A range the boot information must not touch: a segment, or the module. */
struct mb_used {
	uint64_t start, len;
};

/* The loaded segments of the (already checked) ELF image, then the module if @mod_len; malloc'd, or NULL. */
static struct mb_used *mb_used_ranges(const uint8_t *image, uint64_t mod_start, uint64_t mod_len, int *n)
{
	struct mb_used *used;
	Elf32_Ehdr eh;
	int i;

	memcpy(&eh, image, sizeof(eh));
	used = calloc((size_t)eh.e_phnum + 1, sizeof(*used));
	if (!used)
		return NULL;
	*n = 0;
	for (i = 0; i < eh.e_phnum; i++) {
		Elf32_Phdr ph;

		memcpy(&ph, image + eh.e_phoff + (size_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_LOAD && ph.p_memsz)
			used[(*n)++] = (struct mb_used){ ph.p_paddr, ph.p_memsz };
	}
	if (mod_len)
		used[(*n)++] = (struct mb_used){ mod_start, mod_len };
	return used;
}

/* True if [at, at+len) is free low RAM or free RAM from 1 MiB below 4 GiB. */
static bool mb_spot_free(const struct ram *ram, uint64_t at, uint64_t len, const struct mb_used *used, int n)
{
	uint64_t high_end = ram->slot[0].size < RAM_LOW_END ? ram->slot[0].size : RAM_LOW_END;
	int i;

	if (!((at >= PAGE_SIZE && at + len <= EBDA_START) || (at >= HIGH_MEM_START && at + len <= high_end)))
		return false;
	for (i = 0; i < n; i++)
		if (ranges_overlap(at, len, used[i].start, used[i].len))
			return false;
	return true;
}

/*
 * Where the boot information (@len bytes) goes: 0x9000 if free, else the
 * lowest free spot.  A lowest free spot starts where a region starts or
 * where a used range ends, so those are the only candidates to try.
 */
static int mb_place_info(const struct ram *ram, const struct mb_used *used, int n, uint64_t len, uint64_t *at)
{
	uint64_t best = UINT64_MAX;
	int i;

	if (mb_spot_free(ram, MULTIBOOT_INFO_GPA, len, used, n)) {
		*at = MULTIBOOT_INFO_GPA;
		return 0;
	}
	if (mb_spot_free(ram, PAGE_SIZE, len, used, n))
		best = PAGE_SIZE;
	if (HIGH_MEM_START < best && mb_spot_free(ram, HIGH_MEM_START, len, used, n))
		best = HIGH_MEM_START;
	for (i = 0; i < n; i++) {
		uint64_t c = (used[i].start + used[i].len + 7) & ~7ULL;

		if (c < best && mb_spot_free(ram, c, len, used, n))
			best = c;
	}
	if (best == UINT64_MAX)
		return -ENOSPC;
	*at = best;
	return 0;
}

static uint32_t mb_build_mmap(const struct ram *ram, struct mb_mmap_entry *e)
{
	struct ram_map_entry map[RAM_MAP_MAX];
	int i, n = ram_pc_map(ram, map);

	for (i = 0; i < n; i++)
		e[i] = (struct mb_mmap_entry){ 20, map[i].addr, map[i].len, map[i].type };
	return (uint32_t)n;
}

/* Copy the module page aligned after the image; its gpa in *start. */
static int mb_place_module(struct ram *ram, const struct multiboot_module *module, uint64_t image_end,
			   uint64_t *start)
{
	const char *mcmd = module->cmdline ? module->cmdline : "";
	void *dst;

	*start = (image_end + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1);
	if (*start + module->len > UINT32_MAX ||
	    !(dst = ram_gpa_to_hva(ram, *start, module->len ? module->len : 1)))
		return error(-ENOSPC, "module %s (%zu bytes) does not fit in guest RAM after the image",
			     mcmd, module->len);
	memcpy(dst, module->data, module->len);
	return 0;
}

/* Write the boot information at @area (sized for it by the caller) into *mbi and guest memory. */
static int mb_write_info(struct mb_area *area, const char *cmdline, const struct multiboot_module *module,
			 uint64_t mod_start, struct mb_info *mbi)
{
	struct mb_mmap_entry mmap[5];
	uint64_t low = area->ram->slot[0].size;
	uint32_t at = (uint32_t)area->next;
	int ret;

	area->next += sizeof(*mbi);
	mbi->flags = MBI_MEM | MBI_CMDLINE | MBI_MMAP | MBI_LOADER_NAME;
	mbi->mem_lower = (uint32_t)(EBDA_START >> 10);
	mbi->mem_upper = (uint32_t)((low - HIGH_MEM_START) >> 10);
	mbi->mmap_length = mb_build_mmap(area->ram, mmap) * (uint32_t)sizeof(mmap[0]);
	ret = mb_alloc(area, mmap, mbi->mmap_length, &mbi->mmap_addr);
	if (!ret)
		ret = mb_alloc(area, "vmm", 4, &mbi->boot_loader_name);
	if (!ret)
		ret = mb_alloc(area, cmdline, strlen(cmdline) + 1, &mbi->cmdline);
	if (!ret && module) {
		const char *mcmd = module->cmdline ? module->cmdline : "";
		struct mb_module mod = { (uint32_t)mod_start, (uint32_t)(mod_start + module->len), 0, 0 };

		ret = mb_alloc(area, mcmd, strlen(mcmd) + 1, &mod.string);
		if (!ret)
			ret = mb_alloc(area, &mod, sizeof(mod), &mbi->mods_addr);
		mbi->mods_count = 1;
		mbi->flags |= MBI_MODS;
	}
	if (!ret)
		memcpy(ram_gpa_to_hva(area->ram, at, sizeof(*mbi)), mbi, sizeof(*mbi));
	return ret;
}

int multiboot_load(struct ram *ram, const char *name, const uint8_t *image, size_t len,
		   const char *cmdline, const struct multiboot_module *module,
		   struct multiboot_entry *out)
{
	struct mb_area area = { ram, 0, 0 };
	struct mb_info mbi = { 0 };
	struct mb_header hdr;
	struct mb_used *used;
	uint64_t low = ram->slot[0].size, mod_start = 0, info_len, at;
	uint32_t unknown;
	int ret, nused;

	memset(out, 0, sizeof(*out));
	if (!cmdline)
		cmdline = "";
	if (strlen(cmdline) >= MULTIBOOT_CMDLINE_MAX)
		return error(-E2BIG, "%s: command line longer than %d bytes", name, MULTIBOOT_CMDLINE_MAX - 1);
	if (low < HIGH_MEM_START + PAGE_SIZE)
		return error(-EINVAL, "guest RAM too small for a multiboot image");
	ret = mb_find_header(name, image, len, &hdr);
	if (ret)
		return ret;
	unknown = hdr.flags & 0xffff & ~(MB_FLAG_PAGE_ALIGN | MB_FLAG_MEMINFO | MB_FLAG_VIDEO);
	if (unknown)
		return error(-ENOEXEC, "%s: multiboot header requires features vmm lacks (flags 0x%x)", name, unknown);
	if (hdr.flags & MB_FLAG_VIDEO)
		warn("%s: asks for a video mode; vmm has no display, ignored", name);
	if ((hdr.flags & MB_FLAG_AOUT_KLUDGE) && (len < SELFMAG || memcmp(image, ELFMAG, SELFMAG)))
		return error(-ENOEXEC, "%s: a.out kludge images are not supported, only ELF32", name);
	ret = mb_load_elf(ram, name, image, len, out);
	if (ret)
		return ret;
	if (module && (ret = mb_place_module(ram, module, out->image_end, &mod_start)))
		return ret;

	/* Everything it holds, each aligned to 8: the struct, the map, the names and the strings. */
	info_len = sizeof(mbi) + 5 * sizeof(struct mb_mmap_entry) + 8 + strlen(cmdline) + 1 + 8 * 5 +
		   (module ? strlen(module->cmdline ? module->cmdline : "") + 1 + sizeof(struct mb_module) : 0);
	used = mb_used_ranges(image, mod_start, module ? module->len : 0, &nused);
	if (!used)
		return error(-ENOMEM, "out of memory");
	ret = mb_place_info(ram, used, nused, info_len, &at);
	free(used);
	if (ret)
		return error(ret, "%s: no room for the boot information (%llu bytes) clear of the image", name,
			     (unsigned long long)info_len);
	area.next = at;
	area.end = at + info_len;
	ret = mb_write_info(&area, cmdline, module, mod_start, &mbi);
	if (ret)
		return error(ret, "%s: the boot information does not fit at 0x%llx", name, (unsigned long long)at);
	out->info = (uint32_t)at;
	return 0;
}

int multiboot_load_file(struct ram *ram, const char *image_path, const char *append,
			const char *module_path, struct multiboot_entry *out)
{
	struct multiboot_module mod, *modp = NULL;
	uint8_t *image = NULL, *mdata = NULL;
	size_t len, mlen;
	char *cmdline = NULL;
	int ret;

	ret = file_read_all(image_path, &image, &len);
	if (ret)
		return ret;
	if (module_path) {
		ret = file_read_all(module_path, &mdata, &mlen);
		if (ret)
			goto out;
		mod = (struct multiboot_module){ mdata, mlen, module_path };
		modp = &mod;
	}
	/* As QEMU does: the image name first, then the user's text. */
	if (asprintf(&cmdline, "%s%s%s", image_path, append && *append ? " " : "",
		     append ? append : "") < 0) {
		cmdline = NULL;
		ret = error(-ENOMEM, "out of memory");
		goto out;
	}
	ret = multiboot_load(ram, image_path, image, len, cmdline, modp, out);
out:
	free(cmdline);
	free(mdata);
	free(image);
	return ret;
}
