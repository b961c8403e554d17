// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target: what a destination does with each record before the switch
 * (migrate/incoming.c), short of writing guest RAM: the order check
 * (incoming_order_check), the RAM_PAGES and DISCARD checks
 * (incoming_check_pages, incoming_check_discard) and the VERIFY records
 * (verify_take_record, migrate/verify.c).  The input is
 *
 *	byte 0		bit 0 the header asked for verify, bit 1 for postcopy;
 *			bits 2-3 the destination's RAM (2 MiB, 16 MiB, 3 GiB: one
 *			slot up to the PCI hole, 4 GiB: two slots); bit 4 for
 *			multifd (whose connections end, as receive() ends them, at
 *			the first record but MULTIFD_SYNC, END_ROUND and VERIFY)
 *	the rest	records (records.h), in the order the source sent them
 *
 * and, as receive() does, each record goes through the order check and then
 * its own check; the first one refused ends the stream.  Besides ASan and
 * UBSan, the oracle: what a check lets through is what load_pages(),
 * discard_pages() and the digest table may use as they do (every index and
 * range inside RAM, every digest in the table); no record after END, one
 * MACHINE_STATE, END only after it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/incoming.h"
#include "migrate/stream.h"
#include "migrate/verify.h"
#include "tests/fuzz/feed.h"
#include "tests/fuzz/records.h"
#include "vmm/log.h"
#include "vmm/ram.h"

static const uint64_t ram_sizes[4] = { 2ULL << 20, 16ULL << 20, 3ULL << 30, 4ULL << 30 };
static struct ram rams[4];		/* laid out, never mapped: the checks only need the size */
static struct verify verifies[4];	/* the digest tables, allocated once */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int i;

	log_level = LOG_QUIET;
	for (i = 0; i < 4; i++)
		if (ram_layout(&rams[i], ram_sizes[i]) || verify_init(&verifies[i], &rams[i], true))
			abort();
	return 0;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* Use the pages as load_pages() does: every entry inside RAM, every data page inside the record. */
static void use_pages(const struct stream_rec *rec, uint64_t npages)
{
	const uint8_t *p = rec->payload;
	uint32_t count, i;
	uint64_t data = 0, e;

	memcpy(&count, p, 4);
	for (i = 0; i < count; i++) {
		e = get64(p + 8 + 8ULL * i);
		FUZZ_ASSERT(e >> 1 < npages);
		data += !(e & PAGE_ENTRY_ZERO);
	}
	FUZZ_ASSERT(8 + 8ULL * count + data * PAGE_SIZE == rec->len);
}

/* Use the ranges as discard_pages() does: each inside RAM. */
static void use_discard(const struct stream_rec *rec, uint64_t npages)
{
	const uint8_t *p = rec->payload;
	uint32_t count, i;

	memcpy(&count, p, 4);
	for (i = 0; i < count; i++) {
		uint64_t first = get64(p + 8 + 16ULL * i), n = get64(p + 16 + 16ULL * i);

		FUZZ_ASSERT(n && first < npages && first + n <= npages && first + n > first);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct records r = { data + 1, data + size };
	struct incoming_order o = { 0 };
	struct stream_rec rec;
	struct verify *v;
	uint64_t npages;
	bool state = false, end = false, multifd;
	char err[512];

	if (size < 1)
		return 0;
	v = &verifies[(data[0] >> 2) & 3];
	v->ndigests = 0;
	npages = v->npages;
	o.verify = data[0] & 1;
	o.postcopy = data[0] & 2 ? POSTCOPY_ADVISE : POSTCOPY_NONE;
	o.multifd = multifd = data[0] & 16;
	while (records_next(&r, &rec)) {
		int ret;

		if (o.multifd && rec.type != REC_MULTIFD_SYNC && rec.type != REC_END_ROUND && rec.type != REC_VERIFY)
			o.multifd = multifd = false;
		ret = incoming_order_check(&o, rec.type, err, sizeof(err));
		/* A fence only while the multifd connections are open: never after a page of the switch or the state. */
		FUZZ_ASSERT(ret || rec.type != REC_MULTIFD_SYNC || (multifd && !state));

		FUZZ_ASSERT(!ret || ret == -EPROTO);
		FUZZ_ASSERT(ret || !end);
		if (!ret && rec.type == REC_MACHINE_STATE) {
			FUZZ_ASSERT(!state);
			state = true;
		}
		if (!ret && rec.type == REC_END) {
			FUZZ_ASSERT(state);
			end = true;
		}
		if (!ret && rec.type == REC_RAM_PAGES && !(ret = incoming_check_pages(&rec, npages, err, sizeof(err))))
			use_pages(&rec, npages);
		if (!ret && rec.type == REC_DISCARD && !(ret = incoming_check_discard(&rec, npages, err, sizeof(err))))
			use_discard(&rec, npages);
		if (!ret && rec.type == REC_VERIFY)
			ret = verify_take_record(v, rec.payload, rec.len, err, sizeof(err));
		FUZZ_ASSERT(v->ndigests <= npages);
		FUZZ_ASSERT(!ret || memchr(err, '\0', sizeof(err)));
		free(rec.payload);
		if (ret)
			break;
	}
	return 0;
}
