// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The machine state as a flattened device tree.
 *
 * An FDT describes itself: every value has a name, `dtc -I dtb -O dts`
 * prints a saved state, and libfdt's fdt_check_full() proves a blob's
 * structure sound before a single field is read (after a header check of
 * our own, since libfdt trusts parts of the header).  On top of that the
 * decoder demands every property it knows, each with its exact size and in
 * its range, so a blob from another vmm version, another kernel or a
 * damaged file is refused with one line naming the node and property, and
 * nothing is applied.
 *
 * The layout (version STATE_VERSION) and every check the decoder makes are
 * written once, in docs/design.md, "The machine state"; the field tables
 * below are their executable form.  A device's fields are its own table
 * (vmm/device_state.h), and the devices saved are vm_saved_devices
 * (vmm/vm.c): the codec names no device.
 *
 * state_save() and state_load() are thin: KVM's side lives beside the
 * vCPU (vmm/vcpu_state.c) and the VM (vm_chips_get/put, vm_devices_get/put).
 * Restoring writes the VM-level state first (irqchips, PIT, clock), then
 * each vCPU, the devices last.
 */
#include <errno.h>
#include <libfdt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/state.h"
#include "vmm/device_state.h"
#include "vmm/log.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))
#define STATE_COMPATIBLE	"vmm,machine-state"
#define CHIP_SIZE		sizeof(((struct kvm_irqchip *)0)->chip)

#define REG(r)		STATE_FIELD(struct kvm_regs, r, #r, UINT64_MAX)
#define SREG(r, name)	STATE_FIELD(struct kvm_sregs, r, name, UINT64_MAX)
#define SEG(m, max)	STATE_FIELD(struct kvm_segment, m, #m, max)

static const struct state_field regs_fields[] = {
	REG(rax), REG(rbx), REG(rcx), REG(rdx), REG(rsi), REG(rdi), REG(rsp), REG(rbp),
	REG(r8), REG(r9), REG(r10), REG(r11), REG(r12), REG(r13), REG(r14), REG(r15),
	REG(rip), REG(rflags),
};

static const struct state_field sregs_fields[] = {
	SREG(cr0, "cr0"), SREG(cr2, "cr2"), SREG(cr3, "cr3"), SREG(cr4, "cr4"),
	SREG(cr8, "cr8"), SREG(efer, "efer"), SREG(apic_base, "apic-base"),
};

static const struct state_field seg_fields[] = {
	SEG(base, UINT64_MAX), SEG(limit, UINT32_MAX), SEG(selector, UINT16_MAX),
	SEG(type, 15), SEG(present, 1), SEG(dpl, 3), SEG(db, 1), SEG(s, 1), SEG(l, 1),
	SEG(g, 1), SEG(avl, 1), SEG(unusable, 1),
};

static const struct state_field dtable_fields[] = {
	STATE_FIELD(struct kvm_dtable, base, "base", UINT64_MAX),
	STATE_FIELD(struct kvm_dtable, limit, "limit", UINT16_MAX),
};

static const struct { const char *name; size_t off; } segments[] = {
	{ "cs", offsetof(struct kvm_sregs, cs) }, { "ds", offsetof(struct kvm_sregs, ds) },
	{ "es", offsetof(struct kvm_sregs, es) }, { "fs", offsetof(struct kvm_sregs, fs) },
	{ "gs", offsetof(struct kvm_sregs, gs) }, { "ss", offsetof(struct kvm_sregs, ss) },
	{ "tr", offsetof(struct kvm_sregs, tr) }, { "ldt", offsetof(struct kvm_sregs, ldt) },
};

int machine_state_init(struct machine_state *ms, int ncpus, uint32_t xsave_size)
{
	int i;

	memset(ms, 0, sizeof(*ms));
	ms->cpus = calloc((size_t)ncpus, sizeof(*ms->cpus));
	if (!ms->cpus)
		return -ENOMEM;
	ms->ncpus = ncpus;
	ms->xsave_size = xsave_size;
	for (i = 0; i < ncpus && xsave_size; i++) {
		ms->cpus[i].xsave = calloc(1, xsave_size);
		if (!ms->cpus[i].xsave)
			return -ENOMEM;
	}
	return 0;
}

void machine_state_free(struct machine_state *ms)
{
	int i;

	for (i = 0; ms->cpus && i < ms->ncpus; i++) {
		free(ms->cpus[i].xsave);
		free(ms->cpus[i].msrs);
	}
	free(ms->cpus);
	ms->cpus = NULL;
	ms->ncpus = 0;
}

/*
 * Encoding: libfdt's sequential writer into a buffer sized from the state;
 * the first libfdt error sticks, and running out of room starts over with
 * twice the room.
 */
struct enc {
	void *fdt;
	int err;
};

static void enc_check(struct enc *e, int r)
{
	if (r < 0 && !e->err)
		e->err = r;
}

static void enc_begin(struct enc *e, const char *name)
{
	if (!e->err)
		enc_check(e, fdt_begin_node(e->fdt, name));
}

static void enc_end(struct enc *e)
{
	if (!e->err)
		enc_check(e, fdt_end_node(e->fdt));
}

static void enc_u32(struct enc *e, const char *name, uint32_t v)
{
	if (!e->err)
		enc_check(e, fdt_property_u32(e->fdt, name, v));
}

static void enc_u64(struct enc *e, const char *name, uint64_t v)
{
	if (!e->err)
		enc_check(e, fdt_property_u64(e->fdt, name, v));
}

static void enc_raw(struct enc *e, const char *name, const void *p, size_t len)
{
	if (!e->err)
		enc_check(e, fdt_property(e->fdt, name, p, (int)len));
}

/* Field @f's value @v: a u64 property for an 8-byte field, else a u32 one. */
static void enc_value(struct enc *e, const struct state_field *f, uint64_t v)
{
	if (f->size == 8)
		enc_u64(e, f->name, v);
	else
		enc_u32(e, f->name, (uint32_t)v);
}

static void enc_fields(struct enc *e, const void *base, const struct state_field *f, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		enc_value(e, &f[i], state_field_get(base, &f[i]));
}

static void enc_subnode_fields(struct enc *e, const char *name, const void *base,
			       const struct state_field *f, size_t n)
{
	enc_begin(e, name);
	enc_fields(e, base, f, n);
	enc_end(e);
}

static void enc_msrs(struct enc *e, const struct cpu_state *cs)
{
	void *pi, *pv;
	uint32_t i;

	enc_begin(e, "msrs");
	if (!e->err)
		enc_check(e, fdt_property_placeholder(e->fdt, "index", (int)(cs->nmsrs * 4), &pi));
	if (!e->err)
		enc_check(e, fdt_property_placeholder(e->fdt, "value", (int)(cs->nmsrs * 8), &pv));
	if (e->err)
		return;
	/* The placeholders may be only 4-byte aligned: store through memcpy. */
	for (i = 0; i < cs->nmsrs; i++) {
		fdt32_t idx = cpu_to_fdt32(cs->msrs[i].index);
		fdt64_t val = cpu_to_fdt64(cs->msrs[i].data);

		memcpy((uint8_t *)pi + 4 * i, &idx, 4);
		memcpy((uint8_t *)pv + 8 * i, &val, 8);
	}
	enc_end(e);
}

static void enc_cpu(struct enc *e, const struct machine_state *ms, int id)
{
	const struct cpu_state *cs = &ms->cpus[id];
	const struct kvm_sregs *sr = &cs->sregs;
	char name[16];
	size_t i;

	snprintf(name, sizeof(name), "cpu@%x", (unsigned)id);
	enc_begin(e, name);
	enc_u32(e, "reg", (uint32_t)id);
	enc_u32(e, "mp-state", cs->mp_state.mp_state);
	if (ms->xsave_size)
		enc_raw(e, "xsave", cs->xsave, ms->xsave_size);
	else
		enc_raw(e, "fpu", &cs->fpu, sizeof(cs->fpu));
	enc_raw(e, "xcrs", &cs->xcrs, sizeof(cs->xcrs));
	enc_raw(e, "lapic", &cs->lapic, sizeof(cs->lapic));
	enc_raw(e, "events", &cs->events, sizeof(cs->events));
	enc_raw(e, "debugregs", &cs->debugregs, sizeof(cs->debugregs));

	enc_subnode_fields(e, "regs", &cs->regs, regs_fields, ARRAY_SIZE(regs_fields));

	enc_begin(e, "sregs");
	enc_fields(e, sr, sregs_fields, ARRAY_SIZE(sregs_fields));
	enc_raw(e, "interrupt-bitmap", sr->interrupt_bitmap, sizeof(sr->interrupt_bitmap));
	for (i = 0; i < ARRAY_SIZE(segments); i++)
		enc_subnode_fields(e, segments[i].name, (const uint8_t *)sr + segments[i].off,
				   seg_fields, ARRAY_SIZE(seg_fields));
	enc_subnode_fields(e, "gdt", &sr->gdt, dtable_fields, ARRAY_SIZE(dtable_fields));
	enc_subnode_fields(e, "idt", &sr->idt, dtable_fields, ARRAY_SIZE(dtable_fields));
	enc_end(e);

	enc_msrs(e, cs);
	enc_end(e);
}

/* One node per device of vm_saved_devices, its properties from the device's own table. */
static void enc_devices(struct enc *e, const struct machine_state *ms)
{
	const struct device_state *ds;
	unsigned i, j;

	enc_begin(e, "devices");
	for (i = 0; i < VM_NSAVED_DEVICES; i++) {
		ds = vm_saved_devices[i].state;
		enc_begin(e, ds->name);
		for (j = 0; j < ds->nfields; j++)
			enc_value(e, &ds->fields[j], ms->devices[i][j]);
		enc_end(e);
	}
	enc_end(e);
}

static void enc_tree(struct enc *e, const struct machine_state *ms)
{
	int i;

	enc_check(e, fdt_finish_reservemap(e->fdt));
	enc_begin(e, "");
	if (!e->err)
		enc_check(e, fdt_property_string(e->fdt, "compatible", STATE_COMPATIBLE));
	enc_u32(e, "vmm,state-version", STATE_VERSION);
	enc_u32(e, "ncpus", (uint32_t)ms->ncpus);

	enc_begin(e, "cpus");
	enc_u32(e, "#address-cells", 1);
	enc_u32(e, "#size-cells", 0);
	for (i = 0; i < ms->ncpus; i++)
		enc_cpu(e, ms, i);
	enc_end(e);

	enc_begin(e, "vm");
	enc_raw(e, "pic-master", &ms->chips.pic_master.chip, CHIP_SIZE);
	enc_raw(e, "pic-slave", &ms->chips.pic_slave.chip, CHIP_SIZE);
	enc_raw(e, "ioapic", &ms->chips.ioapic.chip, CHIP_SIZE);
	enc_raw(e, "pit", &ms->chips.pit, sizeof(ms->chips.pit));
	enc_u64(e, "clock", ms->chips.clock);
	enc_u32(e, "clock-flags", ms->chips.clock_flags);
	enc_u64(e, "clock-realtime", ms->chips.clock_realtime);
	enc_end(e);

	enc_devices(e, ms);

	enc_end(e);
	if (!e->err)
		enc_check(e, fdt_finish(e->fdt));
}

int state_encode(const struct machine_state *ms, void **blob, size_t *len)
{
	size_t size = 16384;
	struct enc e;
	void *shrunk;
	int i;

	if (ms->ncpus < 1 || ms->ncpus > VM_MAX_CPUS || ms->xsave_size > VCPU_STATE_MAX_XSAVE)
		return error(-EINVAL, "machine state: %d vCPUs with %u-byte xsave areas cannot be saved",
			     ms->ncpus, ms->xsave_size);
	for (i = 0; i < ms->ncpus; i++) {
		if (ms->cpus[i].nmsrs > VCPU_STATE_MAX_MSRS)
			return error(-EINVAL, "machine state: vCPU %d has %u MSRs, more than %d",
				     i, ms->cpus[i].nmsrs, VCPU_STATE_MAX_MSRS);
		size += 8192 + ms->xsave_size + ms->cpus[i].nmsrs * 12;
	}
	for (;;) {
		e.fdt = malloc(size);
		e.err = 0;
		if (!e.fdt)
			return error(-ENOMEM, "machine state: out of memory");
		enc_check(&e, fdt_create(e.fdt, (int)size));
		enc_tree(&e, ms);
		if (!e.err)
			break;
		free(e.fdt);
		if (e.err != -FDT_ERR_NOSPACE || size > (64U << 20))
			return error(-EINVAL, "machine state: cannot encode: %s", fdt_strerror(e.err));
		size *= 2;
	}
	*len = fdt_totalsize(e.fdt);
	shrunk = realloc(e.fdt, *len);
	*blob = shrunk ? shrunk : e.fdt;
	return 0;
}

/*
 * Decoding: the first problem is reported, with the node's path, and
 * sticks; every later call does nothing, so the decoder reads straight
 * through and checks the error once.
 */
struct dec {
	const void *fdt;
	int err;
};

static void dec_fail(struct dec *d, int node, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void dec_fail(struct dec *d, int node, const char *fmt, ...)
{
	char path[256], msg[256];
	va_list ap;

	if (d->err)
		return;
	if (fdt_get_path(d->fdt, node, path, sizeof(path)) < 0)
		snprintf(path, sizeof(path), "(node at offset %d)", node);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	d->err = error(-EINVAL, "saved state: %s: %s", path, msg);
}

static int dec_node(struct dec *d, int parent, const char *name)
{
	int node, len = 0;

	if (d->err)
		return -1;
	/*
	 * libfdt lets "cpus" find a node named "cpus@<anything>": insist on
	 * the exact name, so that a damaged name is not quietly accepted.
	 */
	node = fdt_subnode_offset(d->fdt, parent, name);
	if (node >= 0 && (!fdt_get_name(d->fdt, node, &len) || len != (int)strlen(name)))
		node = -FDT_ERR_NOTFOUND;
	if (node < 0)
		dec_fail(d, parent, "no node '%s'", name);
	return node;
}

/* The value of property @name, which must be @size bytes (any size if @size is -1). */
static const void *dec_prop(struct dec *d, int node, const char *name, int size, int *lenp)
{
	const void *p;
	int len;

	if (d->err)
		return NULL;
	p = fdt_getprop(d->fdt, node, name, &len);
	if (!p) {
		dec_fail(d, node, "no property '%s'", name);
		return NULL;
	}
	if (size >= 0 && len != size) {
		dec_fail(d, node, "property '%s' is %d bytes, not %d", name, len, size);
		return NULL;
	}
	if (lenp)
		*lenp = len;
	return p;
}

static void dec_raw(struct dec *d, int node, const char *name, void *dst, size_t size)
{
	const void *p = dec_prop(d, node, name, (int)size, NULL);

	if (p)
		memcpy(dst, p, size);
}

static uint64_t dec_u64(struct dec *d, int node, const char *name)
{
	const void *p = dec_prop(d, node, name, 8, NULL);
	fdt64_t v;

	if (!p)
		return 0;
	memcpy(&v, p, 8);
	return fdt64_to_cpu(v);
}

static uint32_t dec_u32(struct dec *d, int node, const char *name, uint32_t max)
{
	const void *p = dec_prop(d, node, name, 4, NULL);
	fdt32_t v;

	if (!p)
		return 0;
	memcpy(&v, p, 4);
	if (fdt32_to_cpu(v) > max) {
		dec_fail(d, node, "property '%s' is %u, more than %u", name, fdt32_to_cpu(v), max);
		return 0;
	}
	return fdt32_to_cpu(v);
}

/* Field @f of @node: a u64 property for an 8-byte field, else a u32 one; at most f->max. */
static uint64_t dec_value(struct dec *d, int node, const struct state_field *f)
{
	uint64_t v;

	if (f->size != 8)
		return dec_u32(d, node, f->name, (uint32_t)f->max);
	v = dec_u64(d, node, f->name);
	if (v > f->max) {
		dec_fail(d, node, "property '%s' is %llu, more than %llu", f->name,
			 (unsigned long long)v, (unsigned long long)f->max);
		return 0;
	}
	return v;
}

static void dec_fields(struct dec *d, int node, void *base, const struct state_field *f, size_t n)
{
	size_t i;

	for (i = 0; i < n && !d->err; i++)
		state_field_set(base, &f[i], dec_value(d, node, &f[i]));
}

static void dec_subnode_fields(struct dec *d, int parent, const char *name, void *base,
			       const struct state_field *f, size_t n)
{
	int node = dec_node(d, parent, name);

	if (node >= 0)
		dec_fields(d, node, base, f, n);
}

static void dec_msrs(struct dec *d, int cpu, struct cpu_state *cs)
{
	const uint8_t *pi, *pv;
	int node, ilen = 0, vlen = 0;
	bool tsc = false;
	uint32_t i, n;

	node = dec_node(d, cpu, "msrs");
	pi = dec_prop(d, node, "index", -1, &ilen);
	pv = dec_prop(d, node, "value", -1, &vlen);
	n = (uint32_t)ilen / 4;
	if (!d->err && (ilen % 4 || vlen % 8))
		dec_fail(d, node, "'index' (%d bytes) or 'value' (%d bytes) is not a whole array",
			 ilen, vlen);
	else if (!d->err && n != (uint32_t)vlen / 8)
		dec_fail(d, node, "%u in 'index' but %u in 'value'", n, (uint32_t)vlen / 8);
	else if (!d->err && n > VCPU_STATE_MAX_MSRS)
		dec_fail(d, node, "%u MSRs, more than %d", n, VCPU_STATE_MAX_MSRS);
	if (d->err)
		return;
	cs->msrs = calloc(n ? n : 1, sizeof(*cs->msrs));
	if (!cs->msrs) {
		d->err = error(-ENOMEM, "saved state: out of memory");
		return;
	}
	cs->nmsrs = n;
	for (i = 0; i < n; i++) {
		fdt32_t idx;
		fdt64_t val;

		memcpy(&idx, pi + 4 * i, 4);
		memcpy(&val, pv + 8 * i, 8);
		cs->msrs[i].index = fdt32_to_cpu(idx);
		cs->msrs[i].data = fdt64_to_cpu(val);
		tsc |= cs->msrs[i].index == VCPU_MSR_IA32_TSC;
	}
	/* Without it the guest's TSC would restart from zero on the destination. */
	if (!tsc)
		dec_fail(d, node, "no IA32_TSC (0x%x) in 'index'", VCPU_MSR_IA32_TSC);
}

/* xsave or fpu, whichever this kernel uses; the message says which side differs. */
static void dec_fpu(struct dec *d, int node, const struct machine_state *ms, struct cpu_state *cs)
{
	const void *xsave = fdt_getprop(d->fdt, node, "xsave", NULL);
	int len;

	if (d->err)
		return;
	if (!ms->xsave_size) {
		if (xsave)
			dec_fail(d, node, "has 'xsave' but this kernel lacks KVM_CAP_XSAVE");
		else
			dec_raw(d, node, "fpu", &cs->fpu, sizeof(cs->fpu));
		return;
	}
	if (!xsave && fdt_getprop(d->fdt, node, "fpu", NULL)) {
		dec_fail(d, node, "has only legacy 'fpu' state (saved without KVM_CAP_XSAVE); "
			 "this kernel uses xsave");
		return;
	}
	xsave = dec_prop(d, node, "xsave", -1, &len);
	if (xsave && len != (int)ms->xsave_size)
		dec_fail(d, node, "'xsave' is %d bytes but this kernel's xsave area is %u "
			 "(saved on another kernel or with other CPU features)", len, ms->xsave_size);
	else if (xsave)
		memcpy(cs->xsave, xsave, ms->xsave_size);
}

static void dec_cpu(struct dec *d, int cpus, int id, struct machine_state *ms)
{
	struct cpu_state *cs = &ms->cpus[id];
	struct kvm_sregs *sr = &cs->sregs;
	char name[16];
	int node, sregs;
	size_t i;

	snprintf(name, sizeof(name), "cpu@%x", (unsigned)id);
	node = dec_node(d, cpus, name);
	if (node < 0)
		return;
	if (dec_u32(d, node, "reg", UINT32_MAX) != (uint32_t)id && !d->err)
		dec_fail(d, node, "'reg' is not %d", id);
	cs->mp_state.mp_state = dec_u32(d, node, "mp-state", UINT32_MAX);
	dec_fpu(d, node, ms, cs);
	dec_raw(d, node, "xcrs", &cs->xcrs, sizeof(cs->xcrs));
	dec_raw(d, node, "lapic", &cs->lapic, sizeof(cs->lapic));
	dec_raw(d, node, "events", &cs->events, sizeof(cs->events));
	dec_raw(d, node, "debugregs", &cs->debugregs, sizeof(cs->debugregs));

	dec_subnode_fields(d, node, "regs", &cs->regs, regs_fields, ARRAY_SIZE(regs_fields));

	sregs = dec_node(d, node, "sregs");
	dec_fields(d, sregs, sr, sregs_fields, ARRAY_SIZE(sregs_fields));
	dec_raw(d, sregs, "interrupt-bitmap", sr->interrupt_bitmap, sizeof(sr->interrupt_bitmap));
	for (i = 0; i < ARRAY_SIZE(segments); i++)
		dec_subnode_fields(d, sregs, segments[i].name, (uint8_t *)sr + segments[i].off,
				   seg_fields, ARRAY_SIZE(seg_fields));
	dec_subnode_fields(d, sregs, "gdt", &sr->gdt, dtable_fields, ARRAY_SIZE(dtable_fields));
	dec_subnode_fields(d, sregs, "idt", &sr->idt, dtable_fields, ARRAY_SIZE(dtable_fields));

	dec_msrs(d, node, cs);
}

static void dec_root(struct dec *d, int ncpus)
{
	const char *compat;
	uint32_t n;
	int len = 0;

	compat = dec_prop(d, 0, "compatible", -1, &len);
	if (compat && (len != sizeof(STATE_COMPATIBLE) || memcmp(compat, STATE_COMPATIBLE, (size_t)len)))
		dec_fail(d, 0, "not a vmm machine state ('compatible' is not \"%s\")", STATE_COMPATIBLE);
	if (dec_u32(d, 0, "vmm,state-version", UINT32_MAX) != STATE_VERSION && !d->err)
		dec_fail(d, 0, "'vmm,state-version' is not %d (saved by another vmm version)",
			 STATE_VERSION);
	n = dec_u32(d, 0, "ncpus", UINT32_MAX);
	if (n != (uint32_t)ncpus && !d->err)
		dec_fail(d, 0, "'ncpus' is %u but this VM has %d vCPUs", n, ncpus);
}

static void dec_cpus(struct dec *d, struct machine_state *ms)
{
	int cpus, node, n = 0, i;

	cpus = dec_node(d, 0, "cpus");
	if (cpus < 0)
		return;
	/*
	 * As many subnodes as vCPUs, and each cpu@i found by name: then there
	 * is no extra node and no duplicate either.
	 */
	fdt_for_each_subnode(node, d->fdt, cpus)
		n++;
	if (n != ms->ncpus) {
		dec_fail(d, cpus, "%d subnodes for %d vCPUs", n, ms->ncpus);
		return;
	}
	if (dec_u32(d, cpus, "#address-cells", UINT32_MAX) != 1 && !d->err)
		dec_fail(d, cpus, "'#address-cells' is not 1");
	if (dec_u32(d, cpus, "#size-cells", UINT32_MAX) != 0 && !d->err)
		dec_fail(d, cpus, "'#size-cells' is not 0");
	for (i = 0; i < ms->ncpus && !d->err; i++)
		dec_cpu(d, cpus, i, ms);
}

static void dec_vm(struct dec *d, struct machine_state *ms)
{
	int node = dec_node(d, 0, "vm");

	ms->chips.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
	ms->chips.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
	ms->chips.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
	dec_raw(d, node, "pic-master", &ms->chips.pic_master.chip, CHIP_SIZE);
	dec_raw(d, node, "pic-slave", &ms->chips.pic_slave.chip, CHIP_SIZE);
	dec_raw(d, node, "ioapic", &ms->chips.ioapic.chip, CHIP_SIZE);
	dec_raw(d, node, "pit", &ms->chips.pit, sizeof(ms->chips.pit));
	ms->chips.clock = dec_u64(d, node, "clock");
	ms->chips.clock_flags = dec_u32(d, node, "clock-flags", UINT32_MAX);
	ms->chips.clock_realtime = dec_u64(d, node, "clock-realtime");
}

/* Every device of vm_saved_devices, each property checked against its table. */
static void dec_devices(struct dec *d, struct machine_state *ms)
{
	int node = dec_node(d, 0, "devices"), dev;
	const struct device_state *ds;
	unsigned i, j;

	for (i = 0; i < VM_NSAVED_DEVICES && !d->err; i++) {
		ds = vm_saved_devices[i].state;
		dev = dec_node(d, node, ds->name);
		for (j = 0; j < ds->nfields && !d->err; j++)
			ms->devices[i][j] = dec_value(d, dev, &ds->fields[j]);
	}
}

static uint32_t header_u32(const void *blob, size_t off)
{
	fdt32_t v;

	memcpy(&v, (const uint8_t *)blob + off, 4);
	return fdt32_to_cpu(v);
}

/* Whether the @size bytes at @off lie inside a blob of @len bytes, after the header. */
static bool header_block_fits(uint32_t off, uint32_t size, size_t len)
{
	uint64_t end = (uint64_t)off + size;

	return off >= sizeof(struct fdt_header) && end <= len;
}

/*
 * The FDT header, read by hand before any libfdt call sees the blob: libfdt
 * trusts parts of it (1.6.1 dereferences NULL inside fdt_check_full() for
 * version 2..15 with last_comp_version 0), and a peer chooses every byte.
 * Only what fdt_create() and fdt_finish() write is accepted: version 17,
 * last compatible 16, the size of the blob, and every block inside it.
 */
static int state_check_header(const void *blob, size_t len)
{
	uint32_t magic, total, version, last_comp;

	if (len < sizeof(struct fdt_header))
		return error(-EINVAL, "saved state: %zu bytes, shorter than a device tree header (%zu)",
			     len, sizeof(struct fdt_header));
	magic = header_u32(blob, offsetof(struct fdt_header, magic));
	total = header_u32(blob, offsetof(struct fdt_header, totalsize));
	version = header_u32(blob, offsetof(struct fdt_header, version));
	last_comp = header_u32(blob, offsetof(struct fdt_header, last_comp_version));
	if (magic != FDT_MAGIC)
		return error(-EINVAL, "saved state: not a device tree blob (magic 0x%08x, not 0x%08x)",
			     magic, FDT_MAGIC);
	/* A blob is stored and sent whole: trailing bytes mean it was cut or glued wrong. */
	if (total != len)
		return error(-EINVAL, "saved state: %zu bytes, but its header says %u", len, total);
	if (version != FDT_LAST_SUPPORTED_VERSION || last_comp != FDT_LAST_COMPATIBLE_VERSION)
		return error(-EINVAL, "saved state: device tree version %u (last compatible %u); "
			     "vmm writes and reads only version %u (last compatible %u)",
			     version, last_comp, FDT_LAST_SUPPORTED_VERSION, FDT_LAST_COMPATIBLE_VERSION);
	if (!header_block_fits(header_u32(blob, offsetof(struct fdt_header, off_mem_rsvmap)),
			       sizeof(struct fdt_reserve_entry), len))
		return error(-EINVAL, "saved state: the device tree's memory reserve map lies outside the blob");
	if (!header_block_fits(header_u32(blob, offsetof(struct fdt_header, off_dt_struct)),
			       header_u32(blob, offsetof(struct fdt_header, size_dt_struct)), len))
		return error(-EINVAL, "saved state: the device tree's structure block lies outside the blob");
	if (!header_block_fits(header_u32(blob, offsetof(struct fdt_header, off_dt_strings)),
			       header_u32(blob, offsetof(struct fdt_header, size_dt_strings)), len))
		return error(-EINVAL, "saved state: the device tree's strings block lies outside the blob");
	return 0;
}

int state_decode(const void *blob, size_t len, int ncpus, uint32_t xsave_size,
		 struct machine_state *ms)
{
	struct dec d = { blob, 0 };
	int ret;

	memset(ms, 0, sizeof(*ms));
	if (ncpus < 1 || ncpus > VM_MAX_CPUS || xsave_size > VCPU_STATE_MAX_XSAVE)
		return error(-EINVAL, "saved state: cannot be loaded into %d vCPUs with %u-byte xsave",
			     ncpus, xsave_size);
	if (!blob || len > INT32_MAX)
		return error(-EINVAL, "saved state: %zu bytes is not a device tree blob", len);
	ret = state_check_header(blob, len);
	if (ret)
		return ret;
	ret = fdt_check_full(blob, len);
	if (ret)
		return error(-EINVAL, "saved state: not a valid device tree blob: %s", fdt_strerror(ret));
	ret = machine_state_init(ms, ncpus, xsave_size);
	if (ret) {
		machine_state_free(ms);
		return error(ret, "saved state: out of memory");
	}
	dec_root(&d, ncpus);
	dec_cpus(&d, ms);
	dec_vm(&d, ms);
	dec_devices(&d, ms);
	if (d.err)
		machine_state_free(ms);
	return d.err;
}

/* Read everything from the paused @vm into @ms (initialised here). */
static int state_get(struct vm *vm, struct machine_state *ms)
{
	struct kvm_msr_list *list = NULL;
	int ret, i;

	ret = machine_state_init(ms, vm->ncpus, vcpu_state_xsave_size(vm));
	if (ret)
		return error(ret, "out of memory");
	ret = vcpu_state_msr_list(vm, &list);
	for (i = 0; !ret && i < vm->ncpus; i++)
		ret = vcpu_state_get(&vm->vcpus[i], list, ms->xsave_size, &ms->cpus[i]);
	free(list);
	if (!ret)
		ret = vm_chips_get(vm, &ms->chips);
	if (!ret)
		vm_devices_get(vm, ms->devices);
	return ret;
}

/* Write @ms into @vm: the VM-level state first, the vCPUs after, then the devices. */
static int state_put(struct vm *vm, const struct machine_state *ms)
{
	int ret, i;

	for (i = 0; i < ms->ncpus; i++) {
		ret = vcpu_state_check(vm, &ms->cpus[i]);
		if (ret)
			return ret;
	}
	ret = vm_chips_put(vm, &ms->chips);
	for (i = 0; !ret && i < ms->ncpus; i++)
		ret = vcpu_state_put(&vm->vcpus[i], &ms->cpus[i], ms->xsave_size);
	if (!ret)
		vm_devices_put(vm, ms->devices);
	return ret;
}

int state_save(struct vm *vm, void **blob, size_t *len)
{
	struct machine_state ms;
	int ret;

	ret = state_get(vm, &ms);
	if (!ret)
		ret = state_encode(&ms, blob, len);
	machine_state_free(&ms);
	return ret;
}

int state_load(struct vm *vm, const void *blob, size_t len)
{
	struct machine_state ms;
	int ret;

	ret = state_decode(blob, len, vm->ncpus, vcpu_state_xsave_size(vm), &ms);
	if (ret)
		return ret;
	ret = state_put(vm, &ms);
	machine_state_free(&ms);
	return ret;
}
