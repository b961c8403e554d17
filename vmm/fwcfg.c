// SPDX-License-Identifier: GPL-2.0-or-later
/* fw_cfg, legacy port interface, a handful of fixed items (see fwcfg.h). */
#include <stddef.h>
#include <string.h>

#include "vmm/fwcfg.h"

static const struct state_field fwcfg_fields[] = {
	STATE_FIELD(struct fwcfg, key, "key", UINT16_MAX),
	STATE_FIELD(struct fwcfg, offset, "offset", UINT32_MAX),
};

const struct device_state fwcfg_state = {
	"fw-cfg", fwcfg_fields, sizeof(fwcfg_fields) / sizeof(fwcfg_fields[0]),
	offsetof(struct fwcfg, lock),
};

static void fwcfg_set(struct fwcfg *fw, uint16_t key, uint64_t v, unsigned len)
{
	unsigned i;

	for (i = 0; i < len; i++)
		fw->items[key][i] = (uint8_t)(v >> (8 * i));
	fw->item_len[key] = (uint8_t)len;
}

static int fwcfg_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct fwcfg *fw = opaque;
	uint32_t i;

	pthread_mutex_lock(&fw->lock);
	if (offset == 0 && is_write) {
		fw->key = (uint16_t)(data[0] | (len > 1 ? data[1] << 8 : 0));
		fw->offset = 0;
	} else if (offset == 1 && !is_write) {
		for (i = 0; i < len; i++) {
			uint8_t b = 0;

			if (fw->key < FWCFG_NITEMS && fw->offset < fw->item_len[fw->key])
				b = fw->items[fw->key][fw->offset];
			fw->offset++;
			data[i] = b;
		}
	} else if (!is_write) {
		memset(data, 0, len);
	}
	pthread_mutex_unlock(&fw->lock);
	return 0;
}

int fwcfg_create(struct fwcfg *fw, struct iobus *pio, uint64_t ram_size, int ncpus)
{
	memset(fw, 0, sizeof(*fw));
	pthread_mutex_init(&fw->lock, NULL);
	memcpy(fw->items[FWCFG_SIGNATURE], "QEMU", 4);
	fw->item_len[FWCFG_SIGNATURE] = 4;
	fwcfg_set(fw, FWCFG_ID, 1, 4);	/* the traditional interface, no DMA */
	fwcfg_set(fw, FWCFG_RAM_SIZE, ram_size, 8);
	fwcfg_set(fw, FWCFG_NB_CPUS, (uint64_t)ncpus, 2);
	fwcfg_set(fw, FWCFG_MAX_CPUS, (uint64_t)ncpus, 2);
	return iobus_register(pio, FWCFG_PORT_SEL, 2, fwcfg_io, fw, "fw_cfg");
}

void fwcfg_destroy(struct fwcfg *fw)
{
	pthread_mutex_destroy(&fw->lock);
}
