/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The I/O bus: devices claim ranges of port I/O or MMIO space with one
 * handler signature for both.  Ranges are registered before the vCPUs start
 * and never change afterwards, so lookups take no lock; a handler that keeps
 * state shared between vCPUs locks it itself.
 */
#ifndef VMM_IOBUS_H
#define VMM_IOBUS_H

#include <stdbool.h>
#include <stdint.h>

/* Access @len bytes at @offset into the device's range; 0 or -errno. */
typedef int io_fn(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

struct iobus_range {
	uint64_t base, len;
	io_fn *fn;
	void *opaque;
	const char *name;
};

struct iobus {
	const char *name;		/* "pio" or "mmio", for messages */
	struct iobus_range *ranges;	/* sorted by base, never overlapping */
	int nranges;
};

/* Claim [base, base+len) for @fn; -EEXIST if it overlaps a claimed range. */
int iobus_register(struct iobus *bus, uint64_t base, uint64_t len, io_fn *fn,
		   void *opaque, const char *name);

/* Dispatch an access; -ENOENT if no device claims @addr. */
int iobus_access(const struct iobus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

/* The range that claims @addr, or NULL. */
const struct iobus_range *iobus_find(const struct iobus *bus, uint64_t addr);

/* Free the range table. */
void iobus_destroy(struct iobus *bus);

#endif
