// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target: the multiboot v1 ELF32 loader (vmm/multiboot.c), which takes
 * whatever image file `vmm run` is given: multiboot_load() over an image in
 * memory and a small guest RAM (4 MiB, mapped once with ram_create()).
 * The input is
 *
 *	byte 0		bit 0: a module goes with the image
 *	byte 1		the module's length in 64-byte units, taken from the end
 *	the rest	the image (then the module)
 *
 * Besides ASan and UBSan, the oracle: page 0 of guest RAM is never written
 * (multiboot.h), and a loaded image's entry point and boot information lie
 * in guest RAM (the boot information at 0x9000 or wherever the image left
 * room, never in page 0).
 */
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/feed.h"
#include "vmm/log.h"
#include "vmm/multiboot.h"
#include "vmm/ram.h"

static struct ram ram;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	feed_ram_init(&ram, 4ULL << 20);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct multiboot_module mod = { .cmdline = "module" };
	struct multiboot_entry out;
	size_t len, mlen = 0;
	uint8_t *image, *module;

	if (size < 2)
		return 0;
	len = size - 2;
	if (data[0] & 1) {
		mlen = (size_t)data[1] * 64 < len ? (size_t)data[1] * 64 : len;
		len -= mlen;
	}
	/* The image and the module in buffers of their exact sizes: ASan sees a read past either. */
	image = malloc(len ? len : 1);
	memcpy(image, data + 2, len);
	module = malloc(mlen ? mlen : 1);
	memcpy(module, data + 2 + len, mlen);
	mod.data = module;
	mod.len = mlen;
	if (multiboot_load(&ram, "fuzz", image, len, "console=ttyS0", data[0] & 1 ? &mod : NULL, &out) == 0) {
		FUZZ_ASSERT(ram_contains(&ram, out.entry, 1));
		/* 0x9000, or the lowest free spot when the image holds it (multiboot.c): never page 0. */
		FUZZ_ASSERT(out.info >= PAGE_SIZE && ram_contains(&ram, out.info, 4) && out.image_end <= ram.size);
	}
	FUZZ_ASSERT(feed_page0_clean(&ram));
	free(module);
	free(image);
	return 0;
}
