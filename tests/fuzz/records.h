/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The input format of the fuzz targets that take records already read whole
 * (fuzz_incoming, fuzz_faultsrv): after the target's own prefix, records
 * as [type: 1 byte][payload length: 3 bytes, little endian][payload], the
 * last one cut to what is left.  The stream reader's checks are fuzzed
 * apart (fuzz_stream): here a record is what it lets through.
 */
#ifndef FUZZ_RECORDS_H
#define FUZZ_RECORDS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/stream.h"

struct records {
	const uint8_t *at, *end;
};

/*
 * The next record whose size stream_rec_len_ok() allows (the reader refuses
 * the others before anyone sees them), its payload in a malloc'd copy of
 * exactly its length (so that ASan sees a read past it); false at the end.
 * free(rec->payload) after use.
 */
static inline bool records_next(struct records *r, struct stream_rec *rec)
{
	while (r->end - r->at >= 4) {
		uint32_t len = (uint32_t)r->at[1] | (uint32_t)r->at[2] << 8 | (uint32_t)r->at[3] << 16;

		rec->type = r->at[0];
		r->at += 4;
		if (len > (size_t)(r->end - r->at))
			len = (uint32_t)(r->end - r->at);
		rec->len = len;
		rec->payload = NULL;
		if (!stream_rec_len_ok(rec->type, len)) {
			r->at += len;
			continue;
		}
		rec->payload = malloc(len ? len : 1);
		memcpy(rec->payload, r->at, len);
		r->at += len;
		return true;
	}
	return false;
}

#endif
