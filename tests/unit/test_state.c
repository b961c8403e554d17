// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests: the machine state's FDT encoding, without KVM.  A state
 * filled with a pattern must come back equal; every kind of damage the
 * decoder promises to catch must be refused with exactly one error line
 * naming the node and property; and thousands of random mutations must
 * never crash or read outside the blob.  libfdt itself is not built with
 * ASan, so the mutated blobs sit against a PROT_NONE guard page, once at
 * each end: a stray read faults whoever makes it.
 */
#include <errno.h>
#include <libfdt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "migrate/state.h"
#include "tests/unit/test.h"
#include "vmm/log.h"

#define NCPUS	3
#define XSAVE	4096
#define NMSRS	40

/* Error lines caught by the log sink: how many, and the last one. */
static int nlines;
static char last_line[1024];

static void capture_sink(int fd, const char *buf, size_t len)
{
	size_t n = len < sizeof(last_line) - 1 ? len : sizeof(last_line) - 1;

	memcpy(last_line, buf, n);
	last_line[n] = '\0';
	nlines++;
}

static uint64_t rng_state = 0x243f6a8885a308d3ULL;

static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void fill(void *p, size_t len)
{
	uint8_t *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		b[i] = (uint8_t)rng();
}

static void fill_segment(struct kvm_segment *s)
{
	*s = (struct kvm_segment){
		.base = rng(), .limit = (uint32_t)rng(), .selector = (uint16_t)rng(),
		.type = rng() & 15, .present = rng() & 1, .dpl = rng() & 3, .db = rng() & 1,
		.s = rng() & 1, .l = rng() & 1, .g = rng() & 1, .avl = rng() & 1,
		.unusable = rng() & 1,
	};
}

/* A state with every byte the encoding carries set to something non-trivial. */
static void fill_state(struct machine_state *ms, int ncpus, uint32_t xsave_size)
{
	int i;
	uint32_t j;

	CHECK_EQ(machine_state_init(ms, ncpus, xsave_size), 0);
	for (i = 0; i < ncpus; i++) {
		struct cpu_state *cs = &ms->cpus[i];
		struct kvm_sregs *sr = &cs->sregs;

		fill(&cs->regs, sizeof(cs->regs));
		sr->cr0 = rng(), sr->cr2 = rng(), sr->cr3 = rng(), sr->cr4 = rng();
		sr->cr8 = rng(), sr->efer = rng(), sr->apic_base = rng();
		fill(sr->interrupt_bitmap, sizeof(sr->interrupt_bitmap));
		fill_segment(&sr->cs), fill_segment(&sr->ds), fill_segment(&sr->es);
		fill_segment(&sr->fs), fill_segment(&sr->gs), fill_segment(&sr->ss);
		fill_segment(&sr->tr), fill_segment(&sr->ldt);
		sr->gdt = (struct kvm_dtable){ .base = rng(), .limit = (uint16_t)rng() };
		sr->idt = (struct kvm_dtable){ .base = rng(), .limit = (uint16_t)rng() };
		if (xsave_size)
			fill(cs->xsave, xsave_size);
		else
			fill(&cs->fpu, sizeof(cs->fpu));
		fill(&cs->xcrs, sizeof(cs->xcrs));
		fill(&cs->lapic, sizeof(cs->lapic));
		fill(&cs->events, sizeof(cs->events));
		fill(&cs->mp_state, sizeof(cs->mp_state));
		fill(&cs->debugregs, sizeof(cs->debugregs));
		cs->msrs = calloc(NMSRS, sizeof(*cs->msrs));
		cs->nmsrs = NMSRS;
		for (j = 0; j < NMSRS; j++) {
			cs->msrs[j].index = j == 3 ? VCPU_MSR_IA32_TSC : (uint32_t)rng();
			cs->msrs[j].data = rng();
		}
	}
	ms->chips.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
	ms->chips.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
	ms->chips.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
	fill(&ms->chips.pic_master.chip, sizeof(ms->chips.pic_master.chip));
	fill(&ms->chips.pic_slave.chip, sizeof(ms->chips.pic_slave.chip));
	fill(&ms->chips.ioapic.chip, sizeof(ms->chips.ioapic.chip));
	fill(&ms->chips.pit, sizeof(ms->chips.pit));
	ms->chips.clock = rng();
	ms->chips.clock_flags = (uint32_t)rng();
	ms->chips.clock_realtime = rng();
	/* Every device field, anywhere in its range (max is the largest valid value). */
	for (i = 0; i < VM_NSAVED_DEVICES; i++) {
		const struct device_state *ds = vm_saved_devices[i].state;

		for (j = 0; j < ds->nfields; j++) {
			uint64_t max = ds->fields[j].max;

			ms->devices[i][j] = max == UINT64_MAX ? rng() : rng() % (max + 1);
		}
	}
}

#define SAME(a, b) (memcmp(&(a), &(b), sizeof(a)) == 0)

static void check_equal(const struct machine_state *a, const struct machine_state *b)
{
	int i;

	CHECK_EQ(a->ncpus, b->ncpus);
	CHECK_EQ(a->xsave_size, b->xsave_size);
	for (i = 0; i < a->ncpus && i < b->ncpus; i++) {
		const struct cpu_state *x = &a->cpus[i], *y = &b->cpus[i];

		CHECK(SAME(x->regs, y->regs));
		CHECK(SAME(x->sregs, y->sregs));
		CHECK(!a->xsave_size || !memcmp(x->xsave, y->xsave, a->xsave_size));
		CHECK(a->xsave_size || SAME(x->fpu, y->fpu));
		CHECK(SAME(x->xcrs, y->xcrs));
		CHECK(SAME(x->lapic, y->lapic));
		CHECK(SAME(x->events, y->events));
		CHECK(SAME(x->mp_state, y->mp_state));
		CHECK(SAME(x->debugregs, y->debugregs));
		CHECK_EQ(x->nmsrs, y->nmsrs);
		CHECK(x->nmsrs == y->nmsrs && !memcmp(x->msrs, y->msrs, x->nmsrs * sizeof(*x->msrs)));
	}
	CHECK(SAME(a->chips, b->chips));
	CHECK(SAME(a->devices, b->devices));
}

/* A valid blob of @ncpus vCPUs with 4096-byte xsave areas. */
static void *make_blob(int ncpus, size_t *len)
{
	struct machine_state ms;
	void *blob = NULL;

	fill_state(&ms, ncpus, XSAVE);
	CHECK_EQ(state_encode(&ms, &blob, len), 0);
	machine_state_free(&ms);
	return blob;
}

/* Decode @blob expecting a refusal with one error line that contains @what. */
static void check_refused(const void *blob, size_t len, int ncpus, uint32_t xsave, const char *what)
{
	struct machine_state ms;
	int ret;

	nlines = 0;
	last_line[0] = '\0';
	log_set_sink(capture_sink);
	ret = state_decode(blob, len, ncpus, xsave, &ms);
	log_set_sink(NULL);
	CHECK_EQ(ret, -EINVAL);
	CHECK_EQ(nlines, 1);
	if (what && !strstr(last_line, what)) {
		fprintf(stderr, "  the error line does not name '%s': %s", what, last_line);
		test_failed = 1;
	}
	CHECK(ms.cpus == NULL);
}

static void test_round_trip(void)
{
	struct machine_state a, b;
	void *blob = NULL, *blob2 = NULL;
	size_t len = 0, len2 = 0;

	fill_state(&a, NCPUS, XSAVE);
	CHECK_EQ(state_encode(&a, &blob, &len), 0);
	CHECK_EQ(fdt_check_full(blob, len), 0);
	CHECK_EQ(fdt_totalsize(blob), len);
	CHECK_EQ(state_decode(blob, len, NCPUS, XSAVE, &b), 0);
	check_equal(&a, &b);
	/* The encoding is a function of the state: the same bytes again. */
	CHECK_EQ(state_encode(&b, &blob2, &len2), 0);
	CHECK(len == len2 && !memcmp(blob, blob2, len));
	machine_state_free(&a);
	machine_state_free(&b);
	machine_state_free(&b);		/* safe twice */
	free(blob);
	free(blob2);

	/* The other shapes: legacy FPU and no XCRs; a larger xsave (AMX). */
	fill_state(&a, 1, 0);
	a.cpus[0].xcrs = (struct kvm_xcrs){ 0 };
	CHECK_EQ(state_encode(&a, &blob, &len), 0);
	CHECK_EQ(state_decode(blob, len, 1, 0, &b), 0);
	check_equal(&a, &b);
	machine_state_free(&a);
	machine_state_free(&b);
	free(blob);
	fill_state(&a, 2, 11008);
	CHECK_EQ(state_encode(&a, &blob, &len), 0);
	CHECK_EQ(state_decode(blob, len, 2, 11008, &b), 0);
	check_equal(&a, &b);
	machine_state_free(&a);
	machine_state_free(&b);
	free(blob);
}

/* The names and the u64 encoding that `dtc -O dts` shows. */
static void test_layout(void)
{
	struct machine_state ms;
	const fdt64_t *rip;
	const char *s;
	void *blob = NULL;
	size_t len;
	int node, plen;

	fill_state(&ms, 2, XSAVE);
	ms.cpus[1].regs.rip = 0x100ac9;
	CHECK_EQ(state_encode(&ms, &blob, &len), 0);
	s = fdt_getprop(blob, 0, "compatible", NULL);
	CHECK_STR(s, "vmm,machine-state");
	CHECK_EQ(fdt32_to_cpu(*(const fdt32_t *)fdt_getprop(blob, 0, "vmm,state-version", NULL)), STATE_VERSION);
	CHECK_EQ(fdt32_to_cpu(*(const fdt32_t *)fdt_getprop(blob, 0, "ncpus", NULL)), 2);
	node = fdt_path_offset(blob, "/cpus/cpu@1/regs");
	CHECK(node >= 0);
	rip = fdt_getprop(blob, node, "rip", &plen);
	CHECK_EQ(plen, 8);
	CHECK(rip && fdt64_to_cpu(*rip) == 0x100ac9);
	CHECK(fdt_path_offset(blob, "/cpus/cpu@0/sregs/cs") >= 0);
	CHECK(fdt_path_offset(blob, "/cpus/cpu@0/sregs/idt") >= 0);
	CHECK(fdt_path_offset(blob, "/cpus/cpu@0/msrs") >= 0);
	CHECK(fdt_getprop(blob, fdt_path_offset(blob, "/cpus/cpu@0"), "lapic", &plen) && plen == 1024);
	CHECK(fdt_getprop(blob, fdt_path_offset(blob, "/vm"), "pic-master", &plen) && plen == 512);
	CHECK(fdt_getprop(blob, fdt_path_offset(blob, "/vm"), "clock-realtime", &plen) && plen == 8);
	CHECK(fdt_getprop(blob, fdt_path_offset(blob, "/devices/uart"), "lcr", &plen) && plen == 4);
	CHECK(fdt_path_offset(blob, "/devices/fw-cfg") >= 0);
	CHECK(fdt_path_offset(blob, "/devices/debug-exit") >= 0);
	CHECK(fdt_getprop(blob, fdt_path_offset(blob, "/devices/rtc"), "offset", &plen) && plen == 8);
	machine_state_free(&ms);
	free(blob);
}

static void test_truncated(void)
{
	size_t len, cut;
	void *blob = make_blob(NCPUS, &len);
	uint8_t *longer;

	for (cut = 0; cut < len; cut += cut < 64 ? 1 : 997)
		check_refused(blob, cut, NCPUS, XSAVE, NULL);
	check_refused(blob, len - 1, NCPUS, XSAVE, NULL);
	check_refused(NULL, 0, NCPUS, XSAVE, NULL);
	/* Trailing bytes: the header and the length disagree. */
	longer = calloc(1, len + 8);
	memcpy(longer, blob, len);
	check_refused(longer, len + 8, NCPUS, XSAVE, "header");
	free(longer);
	free(blob);
}

#define HDR(field)	offsetof(struct fdt_header, field)

/*
 * A copy of @blob whose header has @v at byte @off (and @v2 at @off2,
 * unless @off2 is 0) must be refused with one line naming @what.
 */
static void check_header_refused(const void *blob, size_t len, size_t off, uint32_t v,
				 size_t off2, uint32_t v2, const char *what)
{
	uint8_t *copy = malloc(len);
	fdt32_t be = cpu_to_fdt32(v), be2 = cpu_to_fdt32(v2);

	memcpy(copy, blob, len);
	memcpy(copy + off, &be, 4);
	if (off2)
		memcpy(copy + off2, &be2, 4);
	check_refused(copy, len, 1, XSAVE, what);
	free(copy);
}

/*
 * The header is checked before libfdt reads the blob.  Debian 12's libfdt
 * (1.6.1) dereferences NULL inside fdt_check_full() when the version is
 * 2..15 and last_comp_version 0: a peer could crash the destination.
 */
static void test_header(void)
{
	size_t len, cut;
	void *blob = make_blob(1, &len);
	uint32_t v, n = (uint32_t)len;

	CHECK_EQ(fdt_version(blob), 17);
	CHECK_EQ(fdt_last_comp_version(blob), 16);
	for (v = 2; v <= 15; v++)
		check_header_refused(blob, len, HDR(version), v, HDR(last_comp_version), 0,
				     "device tree version");
	/* Any other pair than the one fdt_create() writes. */
	check_header_refused(blob, len, HDR(last_comp_version), 17, 0, 0, "device tree version");
	check_header_refused(blob, len, HDR(version), 16, 0, 0, "device tree version");
	/* A truncated header. */
	for (cut = 0; cut < sizeof(struct fdt_header); cut++)
		check_refused(blob, cut, 1, XSAVE, "header");
	/* A totalsize larger than the blob, and one smaller. */
	check_header_refused(blob, len, HDR(totalsize), n + 8, 0, 0, "its header says");
	check_header_refused(blob, len, HDR(totalsize), UINT32_MAX, 0, 0, "its header says");
	check_header_refused(blob, len, HDR(totalsize), n - 4, 0, 0, "its header says");
	/* Blocks outside the blob, one by overflow. */
	check_header_refused(blob, len, HDR(off_dt_strings), n, 0, 0, "strings block");
	check_header_refused(blob, len, HDR(size_dt_struct), UINT32_MAX - 8, 0, 0, "structure block");
	check_header_refused(blob, len, HDR(off_mem_rsvmap), n - 8, 0, 0, "reserve map");
	check_header_refused(blob, len, HDR(off_dt_struct), 8, 0, 0, "structure block");
	check_header_refused(blob, len, HDR(magic), 0xd00dfeee, 0, 0, "magic");
	free(blob);
}

/* Open @blob for editing with room to grow; the caller frees the result. */
static void *edit_open(const void *blob, size_t len)
{
	void *buf = malloc(len + 4096);

	CHECK_EQ(fdt_open_into(blob, buf, (int)(len + 4096)), 0);
	return buf;
}

static size_t edit_close(void *buf)
{
	CHECK_EQ(fdt_pack(buf), 0);
	return fdt_totalsize(buf);
}

static void test_ncpus(void)
{
	size_t len, elen;
	void *blob = make_blob(NCPUS, &len), *e;

	check_refused(blob, len, NCPUS - 1, XSAVE, "ncpus");
	check_refused(blob, len, NCPUS + 1, XSAVE, "ncpus");

	/* ncpus says 4 but there are 3 cpu nodes. */
	e = edit_open(blob, len);
	CHECK_EQ(fdt_setprop_u32(e, 0, "ncpus", NCPUS + 1), 0);
	elen = edit_close(e);
	check_refused(e, elen, NCPUS + 1, XSAVE, "/cpus");
	free(e);

	/* One node too many. */
	e = edit_open(blob, len);
	CHECK(fdt_add_subnode(e, fdt_path_offset(e, "/cpus"), "cpu@3") >= 0);
	elen = edit_close(e);
	check_refused(e, elen, NCPUS, XSAVE, "4 subnodes");
	free(e);

	/* Three nodes, but cpu@1 is missing and a stranger stands in. */
	e = edit_open(blob, len);
	CHECK_EQ(fdt_set_name(e, fdt_path_offset(e, "/cpus/cpu@1"), "cpu@7"), 0);
	elen = edit_close(e);
	check_refused(e, elen, NCPUS, XSAVE, "cpu@1");
	free(e);
	free(blob);
}

static void test_missing_and_sizes(void)
{
	size_t len, elen;
	void *blob = make_blob(NCPUS, &len), *e;
	uint8_t lapic[1023] = { 0 };
	fdt32_t index[NMSRS];
	const void *p;
	int node, plen;

	e = edit_open(blob, len);
	CHECK_EQ(fdt_del_node(e, fdt_path_offset(e, "/cpus/cpu@1/regs")), 0);
	elen = edit_close(e);
	check_refused(e, elen, NCPUS, XSAVE, "/cpus/cpu@1: no node 'regs'");
	free(e);

	e = edit_open(blob, len);
	CHECK_EQ(fdt_delprop(e, fdt_path_offset(e, "/cpus/cpu@2/regs"), "rip"), 0);
	elen = edit_close(e);
	check_refused(e, elen, NCPUS, XSAVE, "/cpus/cpu@2/regs: no property 'rip'");
	free(e);

	e = edit_open(blob, len);
	CHECK_EQ(fdt_setprop(e, fdt_path_offset(e, "/cpus/cpu@0"), "lapic", lapic, sizeof(lapic)), 0);
	elen = edit_close(e);
	check_refused(e, elen, NCPUS, XSAVE, "/cpus/cpu@0: property 'lapic' is 1023 bytes, not 1024");
	free(e);

	e = edit_open(blob, len);
	CHECK_EQ(fdt_setprop_u32(e, fdt_path_offset(e, "/vm"), "clock", 5), 0);
	elen = edit_close(e);
	check_refused(e, elen, NCPUS, XSAVE, "/vm: property 'clock'");
	free(e);

	/* Unequal msr arrays: drop the last index. */
	e = edit_open(blob, len);
	node = fdt_path_offset(e, "/cpus/cpu@1/msrs");
	p = fdt_getprop(e, node, "index", &plen);
	CHECK(p && plen == NMSRS * 4);
	memcpy(index, p, sizeof(index));
	CHECK_EQ(fdt_setprop(e, node, "index", index, sizeof(index) - 4), 0);
	elen = edit_close(e);
	check_refused(e, elen, NCPUS, XSAVE, "/cpus/cpu@1/msrs: 39 in 'index' but 40 in 'value'");
	free(e);

	/* A segment field out of range. */
	e = edit_open(blob, len);
	CHECK_EQ(fdt_setprop_u32(e, fdt_path_offset(e, "/cpus/cpu@0/sregs/ss"), "dpl", 4), 0);
	elen = edit_close(e);
	check_refused(e, elen, NCPUS, XSAVE, "/cpus/cpu@0/sregs/ss: property 'dpl' is 4, more than 3");
	free(e);

	e = edit_open(blob, len);
	CHECK_EQ(fdt_setprop_u32(e, 0, "vmm,state-version", STATE_VERSION + 1), 0);
	elen = edit_close(e);
	check_refused(e, elen, NCPUS, XSAVE, "state-version");
	free(e);

	e = edit_open(blob, len);
	CHECK_EQ(fdt_setprop_string(e, 0, "compatible", "vmm,machine-stat"), 0);
	elen = edit_close(e);
	check_refused(e, elen, NCPUS, XSAVE, "compatible");
	free(e);

	e = edit_open(blob, len);
	CHECK_EQ(fdt_delprop(e, fdt_path_offset(e, "/cpus/cpu@2"), "xcrs"), 0);
	elen = edit_close(e);
	check_refused(e, elen, NCPUS, XSAVE, "/cpus/cpu@2: no property 'xcrs'");
	free(e);

	/* A kernel with another xsave size, or none. */
	check_refused(blob, len, NCPUS, 8192, "this kernel's xsave area is 8192");
	check_refused(blob, len, NCPUS, 0, "lacks KVM_CAP_XSAVE");
	free(blob);
}

/* Every byte of the blob that is not a property value or name padding. */
static size_t structure_bytes(const void *fdt, size_t *where, size_t max)
{
	size_t n = 0, i;
	int off = 0, next = 0;
	uint32_t tag;

	for (i = 0; i < 16; i++)	/* magic, totalsize, off_dt_struct, off_dt_strings */
		where[n++] = i;
	do {
		size_t base = fdt_off_dt_struct(fdt) + (size_t)off, end;

		tag = fdt_next_tag(fdt, off, &next);
		if (tag == FDT_PROP)
			end = base + 12;	/* tag, len, nameoff */
		else if (tag == FDT_BEGIN_NODE)
			end = base + 4 + strlen((const char *)fdt + base + 4) + 1;
		else
			end = base + 4;
		for (i = base; i < end && n < max; i++)
			where[n++] = i;
		off = next;
	} while (tag != FDT_END && next >= 0);
	return n;
}

static void test_structure_flips(void)
{
	size_t len, n, i, *where;
	void *blob = make_blob(1, &len);
	uint8_t *copy = malloc(len);
	int bit;

	where = calloc(len, sizeof(*where));
	n = structure_bytes(blob, where, len);
	CHECK(n > 500);
	log_level = LOG_QUIET;
	for (i = 0; i < n; i++) {
		for (bit = 0; bit < 8; bit++) {
			struct machine_state ms;

			memcpy(copy, blob, len);
			copy[where[i]] ^= (uint8_t)(1 << bit);
			if (state_decode(copy, len, 1, XSAVE, &ms) != -EINVAL) {
				fprintf(stderr, "  flipping bit %d of byte %zu was not refused\n",
					bit, where[i]);
				test_failed = 1;
				machine_state_free(&ms);
			}
		}
	}
	log_level = LOG_INFO;
	free(where);
	free(copy);
	free(blob);
}

/* A copy of @blob that ends (or starts) exactly at a PROT_NONE page. */
static uint8_t *guarded(const void *blob, size_t len, bool at_end, void **map, size_t *map_len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t data = (len + page - 1) / page * page;
	uint8_t *m;

	*map_len = data + 2 * page;
	m = mmap(NULL, *map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	mprotect(m, page, PROT_NONE);
	mprotect(m + page + data, page, PROT_NONE);
	*map = m;
	m += page + (at_end ? data - len : 0);
	memcpy(m, blob, len);
	return m;
}

static void test_mutations(void)
{
	size_t len, map_len;
	void *blob = make_blob(2, &len), *map;
	int iter, k, nk, accepted = 0;

	log_level = LOG_QUIET;
	for (iter = 0; iter < 4000; iter++) {
		uint8_t *p = guarded(blob, len, iter & 1, &map, &map_len);
		struct machine_state ms;
		int ret;

		if (!p) {
			CHECK(p != NULL);
			break;
		}
		nk = 1 + (int)(rng() % 8);
		for (k = 0; k < nk; k++) {
			/* Half the hits in the first 512 bytes, where the header and cpu@0's frame are. */
			size_t at = rng() & 1 ? rng() % 512 : rng() % len;

			p[at] = rng() & 1 ? (uint8_t)rng() : p[at] ^ (uint8_t)(1 << (rng() % 8));
		}
		ret = state_decode(p, len, 2, XSAVE, &ms);
		CHECK(ret == 0 || ret == -EINVAL);
		if (ret == 0) {
			accepted++;
			machine_state_free(&ms);
		}
		munmap(map, map_len);
	}
	log_level = LOG_INFO;
	printf("  mutations: %d of 4000 decoded, the rest refused\n", accepted);
	free(blob);
}

/* The destination's clock: the saved one plus the wall-clock time since, never less. */
static void test_clock_resumed(void)
{
	struct vm_chips c = { .clock = 5000000000ULL, .clock_realtime = 1700000000000000000ULL };

	CHECK(vm_clock_resumed(&c, c.clock_realtime + 2500000000ULL) == 7500000000ULL);	/* 2.5 s on disk */
	CHECK(vm_clock_resumed(&c, c.clock_realtime) == c.clock);
	CHECK(vm_clock_resumed(&c, c.clock_realtime - 1000000000ULL) == c.clock);	/* another host, behind */
	c.clock_realtime = 0;								/* not known */
	CHECK(vm_clock_resumed(&c, 1700000000000000000ULL) == c.clock);
}

TEST_MAIN(TEST(test_round_trip), TEST(test_layout), TEST(test_clock_resumed), TEST(test_header), TEST(test_truncated),
	  TEST(test_ncpus),
	  TEST(test_missing_and_sizes), TEST(test_structure_flips), TEST(test_mutations))
