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
 *	byte 1	stream_read_some(): the bytes arrive in pieces of 2^(b % 16)
 *	byte 2	stream_rec_len_ok(): a record type, asked about sizes no reader may take
 *
 * and the rest goes down a socketpair.  Besides ASan and UBSan, the oracle
 * is the reader's contract (stream.h): a record returned is of a known type,
 * of a size stream_rec_len_ok() allows, no longer than the buffer, and in
 * sequence; a header returned has the one page size and 1 or 2 slots.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

static void check_header(const struct stream_header *h)
{
	FUZZ_ASSERT(h->version == STREAM_VERSION && h->page_size == PAGE_SIZE);
	FUZZ_ASSERT(h->nslots >= 1 && h->nslots <= RAM_SLOTS_MAX);
}

/* A record the reader returned must be what stream.h promises. */
static void check_record(const struct stream *s, uint32_t seq_before, const struct stream_rec *rec, uint32_t cap)
{
	FUZZ_ASSERT(strcmp(stream_rec_name(rec->type), "unknown"));
	FUZZ_ASSERT(stream_rec_len_ok(rec->type, rec->len));
	FUZZ_ASSERT(rec->len <= cap);
	FUZZ_ASSERT(s->seq_in == seq_before + 1);
}

static void read_whole(struct stream *s, uint8_t *buf, uint32_t cap)
{
	struct stream_rec rec;
	char err[256];

	for (;;) {
		uint32_t seq = s->seq_in;

		if (stream_read_record(s, &rec, buf, cap, err, sizeof(err)))
			break;
		check_record(s, seq, &rec, cap);
	}
}

/* Feed @len bytes in pieces of @piece, reading what has come after each, as the fault server does. */
static void read_pieces(struct stream *s, int wfd, const uint8_t *data, size_t len, size_t piece,
			uint8_t *buf, uint32_t cap)
{
	struct stream_rx rx = { 0 };
	struct stream_rec rec;
	char err[256];
	size_t off = 0;
	int ret = 0;

	while (ret >= 0) {
		uint32_t seq = s->seq_in;

		if (off < len) {
			size_t n = feed_write(wfd, data + off, len - off < piece ? len - off : piece);

			if (!n)
				break;	/* the socket is full: cannot happen, the reader drains it */
			off += n;
			if (off == len)
				shutdown(wfd, SHUT_WR);
		}
		do {
			ret = stream_read_some(s, &rx, &rec, buf, cap, err, sizeof(err));
			if (ret == 1)
				check_record(s, seq, &rec, cap);
			seq = s->seq_in;
		} while (ret == 1);
		/* Everything was sent and the reader still waits: it must have seen the end. */
		FUZZ_ASSERT(!(ret == 0 && off == len));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *copy;
	static size_t copy_size;
	struct stream_header h;
	struct stream s;
	uint32_t cap;
	uint8_t ctl, *buf;
	char err[256];
	int sv[2];

	if (size < 3)
		return 0;
	ctl = data[0];
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
		feed_fix(copy, size, !(ctl & 8), ctl & 2);

	feed_open(sv);
	stream_init(&s, sv[0]);
	if (ctl & 4) {
		size_t off = 0;

		if (!(ctl & 8)) {
			/*
			 * The header comes whole before any record: read it blocking,
			 * as channel_accept() does, from at most its longest length
			 * (or the whole input, then closed: the read cannot block).
			 */
			off = size < HEADER_MAX ? size : HEADER_MAX;
			feed_write(sv[1], copy, off);
			if (off == size)
				shutdown(sv[1], SHUT_WR);
			if (stream_read_header(&s, &h, err, sizeof(err)))
				off = size;
			else
				check_header(&h);
		}
		if (off < size)
			read_pieces(&s, sv[1], copy + off, size - off, (size_t)1 << (data[1] % 16), buf, cap);
	} else {
		feed_write(sv[1], copy, size);
		shutdown(sv[1], SHUT_WR);
		if (!(ctl & 8)) {
			if (stream_read_header(&s, &h, err, sizeof(err)))
				goto out;
			check_header(&h);
		}
		read_whole(&s, buf, cap);
	}
out:
	close(sv[0]);
	close(sv[1]);
	return 0;
}
