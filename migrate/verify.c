// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Page digests for `verify on` (see verify.h).  XXH3-64 from Debian's
 * libxxhash: a fraction of a microsecond per page natively and cheap under
 * TCG too (it needs no crc32 instruction), and its 64 bits make a page that
 * differs and still matches its digest a matter of 2^-64.  This is a check
 * against our own bugs and the platform's, not against an attacker.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "migrate/stream.h"
#include "migrate/verify.h"
#include "vmm/bitmap.h"
#include "vmm/ram.h"

uint64_t verify_page_digest(const void *page)
{
	return XXH3_64bits(page, PAGE_SIZE);
}

int verify_init(struct verify *v, const struct ram *ram, bool rounds)
{
	memset(v, 0, sizeof(*v));
	v->ram = ram;
	v->npages = ram_npages(ram);
	v->digest = calloc(v->npages, sizeof(*v->digest));
	if (rounds)
		v->round = calloc(v->npages, sizeof(*v->round));
	if (!v->digest || (rounds && !v->round)) {
		verify_destroy(v);
		return -ENOMEM;
	}
	return 0;
}

void verify_destroy(struct verify *v)
{
	free(v->digest);
	free(v->round);
	v->digest = NULL;
	v->round = NULL;
}

/* The digest of page @i of @v's RAM; a page never populated is zero and is not read. */
static uint64_t ram_digest(struct verify *v, struct ram_pagemap *pm, uint64_t i)
{
	static const uint8_t zero_page[PAGE_SIZE] __attribute__((aligned(8)));

	if (!ram_page_populated(pm, i)) {
		if (!v->zero_digest)
			v->zero_digest = verify_page_digest(zero_page);
		return v->zero_digest;
	}
	return verify_page_digest(ram_page_hva(v->ram, i));
}

void verify_digest_range(struct verify *v, uint64_t first, uint64_t n)
{
	uint64_t t0 = stream_now_ns(), i;
	struct ram_pagemap pm;

	ram_pagemap_open(&pm, v->ram);
	for (i = first; i < first + n && i < v->npages; i++)
		v->digest[i] = ram_digest(v, &pm, i);
	ram_pagemap_close(&pm);
	v->compared += i - first;
	v->ns += stream_now_ns() - t0;
}

void verify_digest_ram(struct verify *v)
{
	verify_digest_range(v, 0, v->npages);
}

uint32_t verify_record(const struct verify *v, uint64_t first, uint64_t head[2])
{
	uint64_t n;

	if (first >= v->npages)
		return 0;
	n = v->npages - first < VERIFY_SEND_DIGESTS ? v->npages - first : VERIFY_SEND_DIGESTS;
	head[0] = first;
	head[1] = n;
	return (uint32_t)n;
}

int verify_take_record(struct verify *v, const void *payload, uint32_t len, char *err, size_t errlen)
{
	uint64_t head[2];

	if (len < sizeof(head)) {
		snprintf(err, errlen, "VERIFY record too short (%u bytes)", len);
		return -EPROTO;
	}
	memcpy(head, payload, sizeof(head));
	if (head[0] != v->ndigests || !head[1] || head[1] > VERIFY_REC_DIGESTS || head[1] > v->npages - head[0] ||
	    len != sizeof(head) + head[1] * 8) {
		snprintf(err, errlen, "VERIFY record for pages %llu+%llu (%u bytes) out of order or malformed",
			 (unsigned long long)head[0], (unsigned long long)head[1], len);
		return -EPROTO;
	}
	memcpy(v->digest + head[0], (const uint8_t *)payload + sizeof(head), head[1] * 8);
	v->ndigests += head[1];
	return 0;
}

int verify_check_complete(const struct verify *v, char *err, size_t errlen)
{
	if (v->ndigests == v->npages)
		return 0;
	snprintf(err, errlen, "verify: the source sent digests for %llu of %llu pages",
		 (unsigned long long)v->ndigests, (unsigned long long)v->npages);
	return -EPROTO;
}

/* Count page @i, whose digest is @digest, as compared: true if it matches the source's. */
static bool verify_digest(struct verify *v, uint64_t i, uint64_t digest)
{
	v->compared++;
	if (digest == v->digest[i])
		return true;
	if (v->bad < VERIFY_BAD_MAX)
		v->bad_page[v->bad] = i;
	v->bad++;
	return false;
}

bool verify_page(struct verify *v, uint64_t i, const void *data)
{
	return verify_digest(v, i, verify_page_digest(data));
}

int verify_ram(struct verify *v, const struct bitmap *which, char *err, size_t errlen)
{
	uint64_t t0 = stream_now_ns(), i;
	struct ram_pagemap pm;

	ram_pagemap_open(&pm, v->ram);
	for (i = 0; i < v->npages; i++)
		if (!which || bitmap_test(which, i))
			verify_digest(v, i, ram_digest(v, &pm, i));
	ram_pagemap_close(&pm);
	v->ns += stream_now_ns() - t0;
	if (!v->bad)
		return 0;
	verify_explain(v, err, errlen);
	return -EBADMSG;
}

void verify_explain(const struct verify *v, char *err, size_t errlen)
{
	size_t at;
	uint64_t k;

	at = (size_t)snprintf(err, errlen, "verify: %llu of %llu pages compared differ from the source's:",
			      (unsigned long long)v->bad, (unsigned long long)v->compared);
	for (k = 0; k < v->bad && k < VERIFY_BAD_MAX && at < errlen; k++) {
		uint64_t i = v->bad_page[k];
		char when[32] = "never sent";

		if (v->round && v->round[i] != VERIFY_ROUND_NEVER)
			snprintf(when, sizeof(when), "last sent in round %u", v->round[i]);
		at += (size_t)snprintf(err + at, errlen - at, "%s page %llu (gpa 0x%llx, %s)", k ? "," : "",
				       (unsigned long long)i, (unsigned long long)ram_index_to_gpa(v->ram, i),
				       v->round ? when : "round not kept");
	}
	if (v->bad > VERIFY_BAD_MAX && at < errlen)
		snprintf(err + at, errlen - at, ", ...");
}
