// SPDX-License-Identifier: GPL-2.0-or-later
/* The debug-exit port.  See debugexit.h for the status convention. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vmm/debugexit.h"

static const struct state_field debugexit_fields[] = {
	STATE_FIELD(struct debugexit, qemu_mode, "qemu-mode", 1),
};

/* No lock: qemu_mode is set when the device is created, or loaded while no vCPU runs. */
const struct device_state debugexit_state = {
	"debug-exit", debugexit_fields, sizeof(debugexit_fields) / sizeof(debugexit_fields[0]),
	DEVICE_STATE_NO_LOCK,
};

int debugexit_status(bool qemu_mode, unsigned v)
{
	/* A process exit status has 8 bits; keep what the shell will see. */
	return (int)((qemu_mode ? (v << 1) | 1 : v) & 0xff);
}

static int debugexit_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct debugexit *dev = opaque;
	unsigned v = 0;
	uint32_t i;

	if (!is_write) {
		memset(data, 0, len);
		return 0;
	}
	for (i = 0; i < len && i < 4; i++)
		v |= (unsigned)data[i] << (8 * i);
	dev->fn(dev->opaque, debugexit_status(dev->qemu_mode, v), v);
	return 0;
}

int debugexit_create(struct debugexit *dev, struct iobus *pio, bool qemu_mode,
		     debugexit_fn *fn, void *opaque)
{
	dev->qemu_mode = qemu_mode;
	dev->fn = fn;
	dev->opaque = opaque;
	return iobus_register(pio, DEBUGEXIT_PORT, 4, debugexit_io, dev, "debug-exit");
}
