// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fwcfg.c - the subset of QEMU's fw_cfg that both QEMU and vmm provide.
 *
 * Only the legacy I/O port interface is used: write a 16-bit key to the
 * selector port, then read the item a byte at a time from the data port.
 * Two keys are read, the signature (0x0000, "QEMU") and the boot CPU count
 * (0x0005, u16 little endian).  A host without fw_cfg answers the data port
 * with 0xff or 0, which fails the signature check, and the guest then runs
 * on one CPU rather than waiting for APs that do not exist.
 */
#include <stdint.h>

#include "arch.h"
#include "fwcfg.h"

#define FWCFG_SELECTOR	0x510
#define FWCFG_DATA	0x511
#define FWCFG_SIGNATURE	0x0000
#define FWCFG_NB_CPUS	0x0005

static void fwcfg_read(uint16_t key, uint8_t *buf, unsigned n)
{
	outw(FWCFG_SELECTOR, key);
	while (n--)
		*buf++ = inb(FWCFG_DATA);
}

bool fwcfg_present(void)
{
	uint8_t sig[4];

	fwcfg_read(FWCFG_SIGNATURE, sig, sizeof(sig));
	return sig[0] == 'Q' && sig[1] == 'E' && sig[2] == 'M' && sig[3] == 'U';
}

unsigned fwcfg_cpus(void)
{
	uint8_t n[2];
	unsigned cpus;

	if (!fwcfg_present())
		return 1;
	fwcfg_read(FWCFG_NB_CPUS, n, sizeof(n));
	cpus = n[0] | (unsigned)n[1] << 8;
	return cpus ? cpus : 1;
}
