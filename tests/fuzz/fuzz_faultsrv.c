// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target: the fault server's record checks (migrate/faultsrv.c), the
 * code that parses the network in the postcopy fault server: the RAM_PAGES
 * check (faultsrv_check_pages) and the ZERO_PAGES range check
 * (faultsrv_check_zero) that run before any page is placed.  Placing needs
 * a userfaultfd and is not fuzzed.  The input is
 *
 *	byte 0		bits 0-1 the destination's RAM (2 MiB, 16 MiB, 3 GiB, 4 GiB)
 *	the rest	records (records.h), as they came on the main connection
 *			or the urgent channel
 *
 * Besides ASan and UBSan, the oracle: what a check lets through is what
 * place_pages() and place_zero() then use as they do (every entry and range
 * inside RAM, no range wrapping, the data pages exactly filling the record,
 * only the one known flag).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/faultsrv.h"
#include "migrate/stream.h"
#include "tests/fuzz/feed.h"
#include "tests/fuzz/records.h"
#include "vmm/log.h"
#include "vmm/ram.h"

static const uint64_t ram_pages[4] = { 512, 4096, 3ULL << 18, 1ULL << 20 };

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_level = LOG_QUIET;
	return 0;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* As place_pages() walks them: entries inside RAM, the data of each inside the record. */
static void use_pages(const struct stream_rec *rec, uint64_t npages, uint32_t count, uint32_t flags)
{
	const uint8_t *p = rec->payload, *data = p + 8 + 8ULL * count, *end = p + rec->len;
	uint32_t i;

	FUZZ_ASSERT(count >= 1 && count <= STREAM_PAGES_MAX && !(flags & ~PAGES_F_REQUESTED));
	for (i = 0; i < count; i++) {
		uint64_t e = get64(p + 8 + 8ULL * i);

		FUZZ_ASSERT(e >> 1 < npages);
		if (!(e & PAGE_ENTRY_ZERO)) {
			FUZZ_ASSERT(data + PAGE_SIZE <= end);
			data += PAGE_SIZE;
		}
	}
	FUZZ_ASSERT(data == end);
}

/* As place_zero() walks them: each range non-empty and inside RAM. */
static void use_zero(const struct stream_rec *rec, uint64_t npages, uint32_t count, uint32_t flags)
{
	const uint8_t *p = rec->payload;
	uint32_t i;

	FUZZ_ASSERT(count >= 1 && 8 + 16ULL * count == rec->len && !(flags & ~PAGES_F_REQUESTED));
	for (i = 0; i < count; i++) {
		uint64_t first = get64(p + 8 + 16ULL * i), n = get64(p + 16 + 16ULL * i);

		FUZZ_ASSERT(n && first < npages && first + n <= npages && first + n > first);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct records r = { data + 1, data + size };
	struct stream_rec rec;
	uint64_t npages;
	uint32_t count, flags;
	char err[FAULTSRV_ERR_MAX];

	if (size < 1)
		return 0;
	npages = ram_pages[data[0] & 3];
	while (records_next(&r, &rec)) {
		int ret = 0;

		if (rec.type == REC_RAM_PAGES) {
			ret = faultsrv_check_pages(&rec, npages, &count, &flags, err, sizeof(err));
			if (!ret)
				use_pages(&rec, npages, count, flags);
		} else if (rec.type == REC_ZERO_PAGES) {
			ret = faultsrv_check_zero(&rec, npages, &count, &flags, err, sizeof(err));
			if (!ret)
				use_zero(&rec, npages, count, flags);
		}
		FUZZ_ASSERT(!ret || (ret == -EPROTO && memchr(err, '\0', sizeof(err))));
		free(rec.payload);
		if (ret)
			break;
	}
	return 0;
}
