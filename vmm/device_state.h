/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What a device carries across a migration, declared once.
 *
 * A device whose registers must survive a migration lists them in a table
 * of struct state_field (name, offset, size, largest valid value) inside a
 * struct device_state, next to its own struct.  The same table drives the
 * copy out of and into the live device (device_state_get/put, under the
 * device's lock) and the saved state's encoder and decoder
 * (migrate/state.c), so the save and the load cannot drift apart.  Which
 * devices of a VM migrate is one table in vm.c (vm_saved_devices).
 * migrate/state.c uses struct state_field for KVM's register structs too.
 */
#ifndef VMM_DEVICE_STATE_H
#define VMM_DEVICE_STATE_H

#include <stddef.h>
#include <stdint.h>

/* A scalar member of a C struct: saved as a u64 property (size 8) or a u32 one. */
struct state_field {
	const char *name;	/* the property name in the saved state */
	size_t off;
	size_t size;		/* 1, 2, 4 or 8 bytes in the struct */
	uint64_t max;		/* the largest valid value; a loaded larger one is refused */
};

#define STATE_FIELD(type, member, name, max) \
	{ name, offsetof(type, member), sizeof(((type *)0)->member), max }

#define DEVICE_STATE_MAX_FIELDS	16
#define DEVICE_STATE_NO_LOCK	SIZE_MAX

/* The saved registers of one kind of device. */
struct device_state {
	const char *name;		/* its node under /devices in the saved state */
	const struct state_field *fields;
	unsigned nfields;		/* at most DEVICE_STATE_MAX_FIELDS */
	size_t lock_off;		/* of its pthread_mutex_t, or DEVICE_STATE_NO_LOCK */
};

/* The value of field @f of the struct at @base. */
uint64_t state_field_get(const void *base, const struct state_field *f);

/* Store @v, already checked against f->max, in field @f of the struct at @base. */
void state_field_set(void *base, const struct state_field *f, uint64_t v);

/* Copy the saved fields of device @dev, described by @ds, into @values (under its lock). */
void device_state_get(const struct device_state *ds, void *dev, uint64_t *values);

/* Write @values, each checked against its field's max, into device @dev (under its lock). */
void device_state_put(const struct device_state *ds, void *dev, const uint64_t *values);

#endif
