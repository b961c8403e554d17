// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmm-exit STATUS: end the VM with STATUS through the debug-exit port
 * (0xf4, as QEMU's isa-debug-exit), so that vmm's exit status is the
 * guest's verdict.  Also the init's shutdown action: poweroff ends vmm.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/io.h>

#define DEBUGEXIT_PORT 0xf4

int main(int argc, char **argv)
{
	unsigned long v = argc > 1 ? strtoul(argv[1], NULL, 0) : 0;

	if (argc > 2 || v > 255 || ioperm(DEBUGEXIT_PORT, 1, 1) < 0) {
		fprintf(stderr, argc > 2 || v > 255 ? "usage: vmm-exit [STATUS 0-255]\n" : "vmm-exit: ioperm: no access\n");
		return 2;
	}
	outb((unsigned char)v, DEBUGEXIT_PORT);
	/* Not reached under vmm; elsewhere (QEMU without the device) say so. */
	fprintf(stderr, "vmm-exit: the debug-exit port did not end the VM\n");
	return 1;
}
