// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target: the Linux boot protocol loader (vmm/linux.c), which takes
 * whatever bzImage and initrd `vmm run --kernel` is given: linux_load()
 * over an image in memory and a guest RAM of 32 MiB (mapped once with
 * ram_create()).  The input is
 *
 *	byte 0		bit 0: an initrd goes with the image
 *	byte 1		the initrd's length in 256-byte units, taken from the end
 *	the rest	the image (then the initrd)
 *
 * Besides ASan and UBSan, the oracle: page 0 of guest RAM is never
 * written, and a loaded kernel's entry is at 1 MiB and its initrd lies in
 * RAM above the kernel's decompression area.
 */
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/feed.h"
#include "vmm/linux.h"
#include "vmm/log.h"
#include "vmm/ram.h"

static struct ram ram;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	feed_ram_init(&ram, 32ULL << 20);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct linux_entry out;
	size_t len, ilen = 0;
	uint8_t *image, *initrd;

	if (size < 2)
		return 0;
	len = size - 2;
	if (data[0] & 1) {
		ilen = (size_t)data[1] * 256 < len ? (size_t)data[1] * 256 : len;
		len -= ilen;
	}
	/* The image and the initrd in buffers of their exact sizes: ASan sees a read past either. */
	image = malloc(len ? len : 1);
	memcpy(image, data + 2, len);
	initrd = malloc(ilen ? ilen : 1);
	memcpy(initrd, data + 2 + len, ilen);
	if (linux_load(&ram, "fuzz", image, len, "console=ttyS0", data[0] & 1 ? initrd : NULL, ilen, &out) == 0) {
		FUZZ_ASSERT(out.entry == LINUX_KERNEL_GPA && out.kernel_end <= ram.size);
		FUZZ_ASSERT(!out.initrd_gpa || (out.initrd_gpa >= out.kernel_end && out.initrd_gpa + ilen <= ram.size));
	}
	FUZZ_ASSERT(feed_page0_clean(&ram));
	free(initrd);
	free(image);
	return 0;
}
