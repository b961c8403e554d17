/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A minimal fw_cfg, QEMU's firmware configuration interface, legacy port
 * form: write a 16-bit key to the selector port 0x510, read the item's bytes
 * one at a time from the data port 0x511.  Items: the "QEMU" signature, the
 * interface ID, the RAM size and the number of CPUs, at QEMU's keys, so the
 * test guest reads the same machine facts under vmm and under QEMU.  Unknown
 * keys and reads past an item's end return 0.
 */
#ifndef VMM_FWCFG_H
#define VMM_FWCFG_H

#include <pthread.h>
#include <stdint.h>

#include "vmm/device_state.h"
#include "vmm/iobus.h"

#define FWCFG_PORT_SEL		0x510
#define FWCFG_PORT_DATA		0x511

#define FWCFG_SIGNATURE		0x00
#define FWCFG_ID		0x01
#define FWCFG_RAM_SIZE		0x03
#define FWCFG_NB_CPUS		0x05
#define FWCFG_MAX_CPUS		0x0f
#define FWCFG_NITEMS		0x10

struct fwcfg {
	pthread_mutex_t lock;
	uint16_t key;
	uint32_t offset;
	uint8_t items[FWCFG_NITEMS][8];
	uint8_t item_len[FWCFG_NITEMS];
};

/* The selected key and the read offset, as a migration saves and loads them (node "fw-cfg"). */
extern const struct device_state fwcfg_state;

/* Fill the items for @ram_size and @ncpus and claim the ports on @pio. */
int fwcfg_create(struct fwcfg *fw, struct iobus *pio, uint64_t ram_size, int ncpus);

void fwcfg_destroy(struct fwcfg *fw);

#endif
