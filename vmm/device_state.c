// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The generic half of device state: reading and writing a field of any
 * size through its table entry, and the copy of a whole device under its
 * lock.  A device only declares its table (see device_state.h); nothing
 * here knows any device.
 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "vmm/device_state.h"

uint64_t state_field_get(const void *base, const struct state_field *f)
{
	const uint8_t *p = (const uint8_t *)base + f->off;
	uint8_t v8;
	uint16_t v16;
	uint32_t v32;
	uint64_t v64;

	switch (f->size) {
	case 1: memcpy(&v8, p, 1); return v8;
	case 2: memcpy(&v16, p, 2); return v16;
	case 4: memcpy(&v32, p, 4); return v32;
	default: memcpy(&v64, p, 8); return v64;
	}
}

void state_field_set(void *base, const struct state_field *f, uint64_t v)
{
	uint8_t *p = (uint8_t *)base + f->off;
	uint8_t v8 = (uint8_t)v;
	uint16_t v16 = (uint16_t)v;
	uint32_t v32 = (uint32_t)v;

	switch (f->size) {
	case 1: memcpy(p, &v8, 1); break;
	case 2: memcpy(p, &v16, 2); break;
	case 4: memcpy(p, &v32, 4); break;
	default: memcpy(p, &v, 8); break;
	}
}

/* One copy, in either direction, so that get and put take the lock alike. */
static void device_state_copy(const struct device_state *ds, void *dev, uint64_t *values,
			      bool to_device)
{
	pthread_mutex_t *lock = NULL;
	unsigned i;

	if (ds->lock_off != DEVICE_STATE_NO_LOCK)
		lock = (pthread_mutex_t *)((uint8_t *)dev + ds->lock_off);
	if (lock)
		pthread_mutex_lock(lock);
	for (i = 0; i < ds->nfields; i++) {
		if (to_device)
			state_field_set(dev, &ds->fields[i], values[i]);
		else
			values[i] = state_field_get(dev, &ds->fields[i]);
	}
	if (lock)
		pthread_mutex_unlock(lock);
}

void device_state_get(const struct device_state *ds, void *dev, uint64_t *values)
{
	device_state_copy(ds, dev, values, false);
}

void device_state_put(const struct device_state *ds, void *dev, const uint64_t *values)
{
	/* Only read when to_device: the cast does not let anything write @values. */
	device_state_copy(ds, dev, (uint64_t *)values, true);
}
