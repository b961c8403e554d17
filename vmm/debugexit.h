/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The debug-exit port (0xf4): a write of value V ends the VM, and V becomes
 * vmm's exit status.  In QEMU mode the status is (V << 1) | 1, as QEMU's
 * isa-debug-exit device gives, for test suites written against QEMU.  Any
 * access size is accepted; reads return 0.
 */
#ifndef VMM_DEBUGEXIT_H
#define VMM_DEBUGEXIT_H

#include <stdbool.h>

#include "vmm/device_state.h"
#include "vmm/iobus.h"

#define DEBUGEXIT_PORT 0xf4

/* Called once per write with the exit status to use (0..255). */
typedef void debugexit_fn(void *opaque, int status, unsigned value);

struct debugexit {
	bool qemu_mode;
	debugexit_fn *fn;
	void *opaque;
};

/* QEMU mode, as a migration saves and loads it (node "debug-exit"). */
extern const struct device_state debugexit_state;

/* Claim the port on @pio; @fn is called on a write. */
int debugexit_create(struct debugexit *dev, struct iobus *pio, bool qemu_mode,
		     debugexit_fn *fn, void *opaque);

/* The exit status for a written value @v. */
int debugexit_status(bool qemu_mode, unsigned v);

#endif
