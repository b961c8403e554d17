// SPDX-License-Identifier: GPL-2.0-or-later
/* The I/O bus: a sorted array searched by bisection. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/iobus.h"

int iobus_register(struct iobus *bus, uint64_t base, uint64_t len, io_fn *fn,
		   void *opaque, const char *name)
{
	struct iobus_range *r;
	uint64_t end;
	int i;

	if (!len || __builtin_add_overflow(base, len - 1, &end))
		return -EINVAL;
	for (i = 0; i < bus->nranges; i++) {
		const struct iobus_range *o = &bus->ranges[i];

		if (base <= o->base + (o->len - 1) && o->base <= end)
			return -EEXIST;
	}
	r = realloc(bus->ranges, sizeof(*r) * (size_t)(bus->nranges + 1));
	if (!r)
		return -ENOMEM;
	bus->ranges = r;
	for (i = bus->nranges; i > 0 && r[i - 1].base > base; i--)
		r[i] = r[i - 1];
	r[i] = (struct iobus_range){ base, len, fn, opaque, name };
	bus->nranges++;
	return 0;
}

const struct iobus_range *iobus_find(const struct iobus *bus, uint64_t addr)
{
	int lo = 0, hi = bus->nranges - 1;

	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;
		const struct iobus_range *r = &bus->ranges[mid];

		if (addr < r->base)
			hi = mid - 1;
		else if (addr - r->base >= r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

int iobus_access(const struct iobus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	const struct iobus_range *r = iobus_find(bus, addr);

	if (!r)
		return -ENOENT;
	return r->fn(r->opaque, addr - r->base, data, len, is_write);
}

void iobus_destroy(struct iobus *bus)
{
	free(bus->ranges);
	bus->ranges = NULL;
	bus->nranges = 0;
}
