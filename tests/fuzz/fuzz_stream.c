// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target: the stream reader (migrate/stream.c), the first code to see
 * a peer's bytes on either side.  The input is what the peer sends, behind
 * a 3-byte prefix:
 *
 *	byte 0	bit 0 fix the CRCs (feed.h: else nearly every record stops at
 *		its checksum), bit 1 fix the sequence numbers, bit 2 read with
 *		stream_read_some() (the fault server's way) instead of
 *		stream_read_record(), bit 3 no header (the return path, the fault
 *		server after the switch), bits 4-6 the reader's buffer (the
 *		capacities the real readers use)
 *	byte 1	stream_read_some(): the bytes arrive in pieces of 2^(b % 16);
 *		the blocking reader: b >> 4 zero, stream_read_record(); else
 *		stream_read_head() and stream_read_rest() into iovecs of
 *		2^(b >> 4) bytes (how the destination reads page data into RAM)
 *	byte 2	stream_rec_len_ok(): a record type, asked about sizes no reader may take
 *
 * and the rest goes down a socketpair.  Besides ASan and UBSan, the oracle
 * is the reader's contract (stream.h): a record returned is of a known type,
 * of a size stream_rec_len_ok() allows, no longer than the buffer, and in
 * sequence; a header returned has the one page size and 1 or 2 slots.  And
 * with bit 2 the two readers must agree: stream_read_some(), the bytes
 * coming in pieces, returns the same records as stream_read_record() and
 * ends with the same error.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate/crc32c.h"
#include "migrate/stream.h"
#include "tests/fuzz/feed.h"
#include "vmm/log.h"

/* The buffers the real readers give: incoming, the fault server, the two return paths. */
static const uint32_t caps[8] = {
	STREAM_MAX_PAYLOAD,
	8 + 8 * STREAM_PAGES_MAX + STREAM_PAGES_MAX * PAGE_SIZE,	/* faultsrv.c PAGES_REC_MAX */
	8 + 8 * STREAM_PAGES_MAX + STREAM_ERROR_MAX - 1,		/* postcopy.c return_path_thread */
	STREAM_ERROR_MAX,						/* outgoing.c return_path_read */
	16, 1, 4096, 65536,
};
static uint8_t *bufs[8];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int i;

	log_level = LOG_QUIET;
	/* Exactly the capacity: ASan sees a byte written past it. */
	for (i = 0; i < 8; i++)
		bufs[i] = malloc(caps[i]);
	return 0;
}

#define HEADER_MAX (STREAM_HEADER_FIXED + 16 * RAM_SLOTS_MAX + 4)

static void check_header(const struct stream_header *h, bool noheader)
{
	if (noheader)
		return;
	FUZZ_ASSERT(h->version == STREAM_VERSION && h->page_size == PAGE_SIZE);
	FUZZ_ASSERT(h->nslots >= 1 && h->nslots <= RAM_SLOTS_MAX);
}

/* What a reader made of a stream: how many records, a digest of them, and how it ended. */
struct seen {
	uint32_t n, digest;
	int ret;
};

/* A record the reader returned must be what stream.h promises. */
static void check_record(const struct stream *s, uint32_t seq_before, const struct stream_rec *rec, uint32_t cap,
			 struct seen *seen)
{
	FUZZ_ASSERT(strcmp(stream_rec_name(rec->type), "unknown"));
	FUZZ_ASSERT(stream_rec_len_ok(rec->type, rec->len));
	FUZZ_ASSERT(rec->len <= cap);
	FUZZ_ASSERT(s->seq_in == seq_before + 1);
	seen->n++;
	seen->digest = crc32c(seen->digest, &rec->type, 4);
	seen->digest = crc32c(seen->digest, &rec->len, 4);
	seen->digest = crc32c(seen->digest, rec->payload, rec->len);
}

/*
 * A record with stream_read_head(), then what it left with stream_read_rest()
 * into iovecs of @split bytes (at most 64 of them a call), laid end to end in
 * @buf after the covered part, so that the record reads as a whole one.
 */
static int read_split(struct stream *s, struct stream_rec *rec, uint8_t *buf, uint32_t cap, size_t split,
		      char *err, size_t errlen)
{
	int ret = stream_read_head(s, rec, buf, cap, err, errlen);
	uint32_t off;

	if (ret)
		return ret;
	FUZZ_ASSERT(rec->covered <= rec->len && (rec->type == REC_RAM_PAGES || rec->covered == rec->len));
	off = rec->covered;
	while (off < rec->len) {
		struct iovec iov[64];
		int n = 0;

		while (n < 64 && off < rec->len) {
			size_t k = rec->len - off < split ? rec->len - off : split;

			iov[n++] = (struct iovec){ buf + off, k };
			off += (uint32_t)k;
		}
		ret = stream_read_rest(s, rec, iov, n, err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * The header (unless @noheader), then records with stream_read_record() (or
 * read_split() if @split) until the first error.
 */
static void read_whole(const uint8_t *data, size_t len, bool noheader, uint8_t *buf, uint32_t cap,
		       size_t split, struct seen *seen)
{
	struct stream_header h;
	struct stream_rec rec;
	struct stream s;
	char err[256];
	int sv[2];

	feed_open(sv);
	stream_init(&s, sv[0]);
	feed_write(sv[1], data, len);
	shutdown(sv[1], SHUT_WR);
	seen->ret = noheader ? 0 : stream_read_header(&s, &h, err, sizeof(err));
	if (!seen->ret)
		check_header(&h, noheader);
	while (!seen->ret) {
		uint32_t seq = s.seq_in;

		if (split)
			seen->ret = read_split(&s, &rec, buf, cap, split, err, sizeof(err));
		else
			seen->ret = stream_read_record(&s, &rec, buf, cap, err, sizeof(err));
		if (!seen->ret)
			check_record(&s, seq, &rec, cap, seen);
	}
	close(sv[0]);
	close(sv[1]);
}

/*
 * The same, the records read with stream_read_some() as they arrive in
 * pieces of @piece bytes (the fault server's way).  The header comes whole
 * before any record: it is read blocking, as channel_accept() does, from at
 * most its longest length (or the whole input, then closed: no wait).
 */
static void read_pieces(const uint8_t *data, size_t len, bool noheader, size_t piece, uint8_t *buf,
			uint32_t cap, struct seen *seen)
{
	struct stream_rx rx = { 0 };
	struct stream_header h;
	struct stream_rec rec;
	struct stream s;
	char err[256];
	size_t off = 0;
	uint32_t seq;
	int sv[2];

	feed_open(sv);
	stream_init(&s, sv[0]);
	seen->ret = 0;
	if (!noheader) {
		off = len < HEADER_MAX ? len : HEADER_MAX;
		feed_write(sv[1], data, off);
	}
	if (off == len)
		shutdown(sv[1], SHUT_WR);
	if (!noheader) {
		seen->ret = stream_read_header(&s, &h, err, sizeof(err));
		if (!seen->ret)
			check_header(&h, noheader);
	}
	/* The sequence number the record being read started at: it counts once checked, maybe before it is whole. */
	seq = s.seq_in;
	while (!seen->ret) {
		int ret;

		if (off < len) {
			size_t n = feed_write(sv[1], data + off, len - off < piece ? len - off : piece);

			FUZZ_ASSERT(n);	/* the reader drains the socket after each piece */
			off += n;
			if (off == len)
				shutdown(sv[1], SHUT_WR);
		}
		do {
			ret = stream_read_some(&s, &rx, &rec, buf, cap, err, sizeof(err));
			if (ret == 1) {
				check_record(&s, seq, &rec, cap, seen);
				seq = s.seq_in;
			}
		} while (ret == 1);
		/* Everything was sent and the reader still waits: it must have seen the end. */
		FUZZ_ASSERT(!(ret == 0 && off == len));
		seen->ret = ret;
	}
	close(sv[0]);
	close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *copy;
	static size_t copy_size;
	struct seen whole = { 0 }, pieces = { 0 };
	uint32_t cap;
	uint8_t ctl, *buf;
	bool noheader;
	size_t split;
	int sv[2];

	if (size < 3)
		return 0;
	ctl = data[0];
	split = data[1] >> 4 ? (size_t)1 << (data[1] >> 4) : 0;
	noheader = ctl & 8;
	cap = caps[(ctl >> 4) & 7];
	buf = bufs[(ctl >> 4) & 7];
	/* No type takes more than the 2 MiB any reader allows, and an unknown one no size at all. */
	FUZZ_ASSERT(!stream_rec_len_ok(data[2], STREAM_MAX_PAYLOAD + 1));
	if (!strcmp(stream_rec_name(data[2]), "unknown"))
		FUZZ_ASSERT(!stream_rec_len_ok(data[2], (uint32_t)size - 3));
	if (!copy || size - 3 > copy_size) {
		free(copy);
		copy_size = size - 3 > 4096 ? size - 3 : 4096;
		copy = malloc(copy_size);
	}
	memcpy(copy, data + 3, size - 3);
	size -= 3;
	if (ctl & 1)
		feed_fix(copy, size, !noheader, ctl & 2);
	if (!(ctl & 4)) {
		read_whole(copy, size, noheader, buf, cap, split, &whole);
		return 0;
	}
	read_pieces(copy, size, noheader, (size_t)1 << (data[1] % 16), buf, cap, &pieces);
	/*
	 * Both readers must make the same of the same bytes: the same records
	 * and the same end.  (If the whole input does not fit in the socket at
	 * once, the whole reader sees a shorter stream: no comparison then.)
	 */
	feed_open(sv);
	if (feed_write(sv[1], copy, size) == size) {
		read_whole(copy, size, noheader, buf, cap, split, &whole);
		FUZZ_ASSERT(whole.n == pieces.n && whole.digest == pieces.digest && whole.ret == pieces.ret);
	}
	close(sv[0]);
	close(sv[1]);
	return 0;
}
