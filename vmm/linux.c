// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Linux boot protocol loader.  The layout it builds in guest memory:
 *
 *	0x0000 - 0x0fff    page 0, never written
 *	0x6000             the boot GDT (4 entries)
 *	0x7000             the zero page (struct boot_params)
 *	0x20000            the command line
 *	0x100000           the protected-mode kernel (the file after its setup sectors)
 *	top of low RAM     the initrd, page aligned, below initrd_addr_max
 *
 * The kernel decompresses itself to its preferred address (pref_address,
 * 16 MiB for Debian's) and needs init_size bytes there: the RAM must hold
 * that, and the initrd must stay clear of it.
 *
 * Field offsets are those of the zero page (Documentation/arch/x86/zero-page.rst);
 * the setup header sits at the same offsets in the file and in the zero page.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/file.h"
#include "vmm/linux.h"
#include "vmm/log.h"

#define BP_EXT_RAMDISK_IMAGE	0x0c0
#define BP_EXT_RAMDISK_SIZE	0x0c4
#define BP_EXT_CMD_LINE_PTR	0x0c8
#define BP_E820_ENTRIES		0x1e8
#define BP_E820_TABLE		0x2d0
#define BP_E820_MAX		128

#define HDR_START		0x1f1	/* setup_sects: the header's first byte */
#define HDR_SETUP_SECTS		0x1f1
#define HDR_BOOT_FLAG		0x1fe
#define HDR_JUMP		0x200	/* its second byte is the header's length past 0x202 */
#define HDR_MAGIC		0x202
#define HDR_VERSION		0x206
#define HDR_TYPE_OF_LOADER	0x210
#define HDR_LOADFLAGS		0x211
#define HDR_CODE32_START	0x214
#define HDR_RAMDISK_IMAGE	0x218
#define HDR_RAMDISK_SIZE	0x21c
#define HDR_CMD_LINE_PTR	0x228
#define HDR_INITRD_ADDR_MAX	0x22c
#define HDR_KERNEL_ALIGNMENT	0x230
#define HDR_RELOCATABLE		0x234
#define HDR_CMDLINE_SIZE	0x238
#define HDR_PREF_ADDRESS	0x258
#define HDR_INIT_SIZE		0x260

#define BOOT_FLAG		0xaa55
#define HDRS_MAGIC		0x53726448U	/* "HdrS" */
#define LOADED_HIGH		0x01
#define MIN_VERSION		0x0206		/* cmdline_size; 2.10 adds pref_address and init_size */
#define LOADER_UNDEFINED	0xff

static uint16_t get16(const uint8_t *p, size_t off)
{
	return (uint16_t)(p[off] | p[off + 1] << 8);
}

static uint32_t get32(const uint8_t *p, size_t off)
{
	return (uint32_t)get16(p, off) | (uint32_t)get16(p, off + 2) << 16;
}

static uint64_t get64(const uint8_t *p, size_t off)
{
	return (uint64_t)get32(p, off) | (uint64_t)get32(p, off + 4) << 32;
}

static void put32(uint8_t *p, size_t off, uint32_t v)
{
	memcpy(p + off, &v, sizeof(v));		/* x86 guest, x86 host: little endian both */
}

bool linux_is_bzimage(const uint8_t *image, size_t len)
{
	return len >= HDR_MAGIC + 4 && get16(image, HDR_BOOT_FLAG) == BOOT_FLAG &&
	       get32(image, HDR_MAGIC) == HDRS_MAGIC;
}

bool linux_file_is_bzimage(const char *path)
{
	uint8_t hdr[HDR_MAGIC + 4];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	n = pread(fd, hdr, sizeof(hdr), 0);
	close(fd);
	return n == (ssize_t)sizeof(hdr) && linux_is_bzimage(hdr, sizeof(hdr));
}

/* Where the decompressed kernel will live: [*start, *end). */
static void linux_kernel_span(const uint8_t *image, uint16_t version, uint64_t code_len,
			      uint64_t *start, uint64_t *end)
{
	uint64_t pref = LINUX_KERNEL_GPA, size = code_len;

	if (version >= 0x020a) {
		if (image[HDR_RELOCATABLE] && get64(image, HDR_PREF_ADDRESS) > pref)
			pref = get64(image, HDR_PREF_ADDRESS);
		if (get32(image, HDR_INIT_SIZE) > size)
			size = get32(image, HDR_INIT_SIZE);
	}
	*start = pref;
	*end = pref + size;
}

static int linux_write_e820(const struct ram *ram, uint8_t *zp)
{
	struct ram_map_entry map[RAM_MAP_MAX];
	int i, n = ram_pc_map(ram, map);

	for (i = 0; i < n; i++) {
		uint8_t *e = zp + BP_E820_TABLE + 20 * i;

		memcpy(e, &map[i].addr, 8);
		memcpy(e + 8, &map[i].len, 8);
		memcpy(e + 16, &map[i].type, 4);
	}
	zp[BP_E820_ENTRIES] = (uint8_t)n;
	return 0;
}

/* The boot GDT: null, null, flat 4 GiB code (0x10), flat 4 GiB data (0x18). */
static int linux_write_gdt(struct ram *ram)
{
	static const uint64_t gdt[4] = { 0, 0, 0x00cf9b000000ffffULL, 0x00cf93000000ffffULL };
	void *p = ram_gpa_to_hva(ram, LINUX_GDT_GPA, sizeof(gdt));

	if (!p)
		return -EINVAL;
	memcpy(p, gdt, sizeof(gdt));
	return 0;
}

/* The highest page-aligned spot for @len bytes below @limit and clear of the kernel; 0 if none. */
static uint64_t linux_place_initrd(uint64_t len, uint64_t limit, uint64_t kernel_end)
{
	uint64_t at;

	if (len > limit)
		return 0;
	at = (limit - len) & ~(PAGE_SIZE - 1);
	return at >= kernel_end ? at : 0;
}

int linux_load(struct ram *ram, const char *name, const uint8_t *image, size_t len,
	       const char *cmdline, const uint8_t *initrd, size_t initrd_len,
	       struct linux_entry *out)
{
	uint64_t low = ram->slot[0].size, code_off, code_len, kstart, kend, limit;
	size_t hdr_end, cmd_len, cmd_max;
	uint8_t *zp, *dst;
	unsigned setup_sects;
	uint16_t version;

	memset(out, 0, sizeof(*out));
	if (!cmdline)
		cmdline = "";
	if (!linux_is_bzimage(image, len))
		return error(-ENOEXEC, "%s: not a Linux bzImage (no boot flag 0xaa55 and \"HdrS\" magic)", name);
	/* The setup sectors come first (at least 1 KiB): past them, every header field read below is in the file. */
	setup_sects = image[HDR_SETUP_SECTS] ? image[HDR_SETUP_SECTS] : 4;
	code_off = (uint64_t)(setup_sects + 1) * 512;
	if (code_off >= len)
		return error(-ENOEXEC, "%s: truncated: %zu bytes, the setup code alone takes %llu", name, len,
			     (unsigned long long)code_off);
	version = get16(image, HDR_VERSION);
	hdr_end = HDR_MAGIC + image[HDR_JUMP + 1];
	if (version < MIN_VERSION || !(image[HDR_LOADFLAGS] & LOADED_HIGH))
		return error(-ENOEXEC, "%s: boot protocol %u.%02u%s: vmm needs a bzImage of protocol 2.06 or newer",
			     name, version >> 8, version & 0xff,
			     image[HDR_LOADFLAGS] & LOADED_HIGH ? "" : " loaded low (a zImage)");
	/* Protocol 2.06 ends at cmdline_size; the header may not run past the zero page's copy of it. */
	if (hdr_end < HDR_CMDLINE_SIZE + 4 || hdr_end > BP_E820_TABLE || hdr_end > len)
		return error(-ENOEXEC, "%s: bad setup header length %zu", name, hdr_end - HDR_START);
	code_len = len - code_off;
	if (version >= 0x020a && image[HDR_RELOCATABLE] && get64(image, HDR_PREF_ADDRESS) > (1ULL << 32))
		return error(-ENOEXEC, "%s: preferred load address 0x%llx above 4 GiB", name,
			     (unsigned long long)get64(image, HDR_PREF_ADDRESS));
	linux_kernel_span(image, version, code_len, &kstart, &kend);
	if (LINUX_KERNEL_GPA + code_len > low || kend > low)
		return error(-ENOMEM, "%s: the kernel needs RAM up to %llu MiB (it decompresses to 0x%llx, "
			     "%llu MiB), this VM has %llu MiB below 3 GiB", name,
			     (unsigned long long)((kend + (1 << 20) - 1) >> 20), (unsigned long long)kstart,
			     (unsigned long long)((kend - kstart) >> 20), (unsigned long long)(low >> 20));

	cmd_len = strlen(cmdline);
	cmd_max = get32(image, HDR_CMDLINE_SIZE);
	if (cmd_max > LINUX_CMDLINE_MAX - 1)
		cmd_max = LINUX_CMDLINE_MAX - 1;
	if (cmd_len > cmd_max)
		return error(-E2BIG, "%s: command line of %zu bytes: this kernel takes at most %zu", name,
			     cmd_len, cmd_max);

	zp = ram_gpa_to_hva(ram, LINUX_ZERO_PAGE_GPA, PAGE_SIZE);
	dst = ram_gpa_to_hva(ram, LINUX_KERNEL_GPA, code_len);
	if (!zp || !dst || linux_write_gdt(ram))
		return error(-ENOMEM, "%s: the RAM is too small for the boot layout", name);
	memset(zp, 0, PAGE_SIZE);
	memcpy(zp + HDR_START, image + HDR_START, hdr_end - HDR_START);
	memcpy(dst, image + code_off, code_len);
	memcpy(ram_gpa_to_hva(ram, LINUX_CMDLINE_GPA, cmd_len + 1), cmdline, cmd_len + 1);
	zp[HDR_TYPE_OF_LOADER] = LOADER_UNDEFINED;
	put32(zp, HDR_CMD_LINE_PTR, (uint32_t)LINUX_CMDLINE_GPA);
	put32(zp, BP_EXT_CMD_LINE_PTR, 0);
	linux_write_e820(ram, zp);

	if (initrd && initrd_len) {
		/* initrd_addr_max is the last byte allowed (2.03+); older kernels say 0x37ffffff. */
		limit = (uint64_t)get32(image, HDR_INITRD_ADDR_MAX) + 1;
		if (limit > low)
			limit = low;
		out->initrd_gpa = linux_place_initrd(initrd_len, limit, kend);
		if (!out->initrd_gpa)
			return error(-ENOMEM, "%s: no room for an initrd of %llu MiB between the kernel (to %llu MiB) "
				     "and %llu MiB", name, (unsigned long long)((initrd_len + (1 << 20) - 1) >> 20),
				     (unsigned long long)(kend >> 20), (unsigned long long)(limit >> 20));
		memcpy(ram_gpa_to_hva(ram, out->initrd_gpa, initrd_len), initrd, initrd_len);
		put32(zp, HDR_RAMDISK_IMAGE, (uint32_t)out->initrd_gpa);
		put32(zp, HDR_RAMDISK_SIZE, (uint32_t)initrd_len);
	}
	out->entry = get32(image, HDR_CODE32_START) ? get32(image, HDR_CODE32_START) : LINUX_KERNEL_GPA;
	/* We load at 1 MiB whatever the header says: a code32_start elsewhere is a loader hook we do not run. */
	if (out->entry != LINUX_KERNEL_GPA)
		return error(-ENOEXEC, "%s: 32-bit entry at 0x%x, not at the 1 MiB load address", name, out->entry);
	out->boot_params = (uint32_t)LINUX_ZERO_PAGE_GPA;
	out->version = version;
	out->kernel_end = kend;
	return 0;
}

int linux_load_file(struct ram *ram, const char *kernel_path, const char *initrd_path,
		    const char *cmdline, struct linux_entry *out)
{
	uint8_t *image = NULL, *initrd = NULL;
	size_t len, ilen = 0;
	int ret;

	ret = file_read_all(kernel_path, &image, &len);
	if (!ret && initrd_path)
		ret = file_read_all(initrd_path, &initrd, &ilen);
	if (!ret && initrd_path && ilen > UINT32_MAX)
		ret = error(-EFBIG, "%s: an initrd of at most 4 GiB", initrd_path);
	if (!ret)
		ret = linux_load(ram, kernel_path, image, len, cmdline, initrd, ilen, out);
	free(initrd);
	free(image);
	return ret;
}
