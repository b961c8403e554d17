// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests: the migration stream over a socketpair (header and records
 * round trip; every corruption refused), and URI parsing.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate/stream.h"
#include "migrate/uri.h"
#include "tests/unit/test.h"

static void pair(int sv[2], struct stream *w, struct stream *r)
{
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	stream_init(w, sv[0]);
	stream_init(r, sv[1]);
}

static void test_header(void)
{
	struct stream w, r;
	struct stream_header h, got;
	struct ram ram;
	char err[256];
	int sv[2];

	pair(sv, &w, &r);
	CHECK_EQ(ram_layout(&ram, 4ULL << 30), 0);
	stream_header_for(&h, &ram, 2, 0);
	CHECK_EQ(stream_write_header(&w, &h), 0);
	CHECK_EQ(stream_read_header(&r, &got, err, sizeof(err)), 0);
	CHECK_EQ(got.ncpus, 2);
	CHECK(got.ram_size == 4ULL << 30);
	CHECK_EQ(got.nslots, 2);
	CHECK(got.slot[1].gpa == RAM_HIGH_START);
	close(sv[0]);
	close(sv[1]);
}

/* Write a header, flip one byte of it, and expect the reader to refuse it. */
static void test_header_corrupt(void)
{
	struct stream_header h, got;
	struct ram ram;
	char err[256];
	int off;

	CHECK_EQ(ram_layout(&ram, 256ULL << 20), 0);
	stream_header_for(&h, &ram, 1, 0);
	for (off = 0; off < STREAM_HEADER_FIXED + 16 + 4; off++) {
		struct stream w, r;
		uint8_t buf[256];
		int sv[2], sv2[2];
		ssize_t n;

		pair(sv, &w, &r);
		CHECK_EQ(stream_write_header(&w, &h), 0);
		n = read(sv[1], buf, sizeof(buf));
		CHECK_EQ(n, STREAM_HEADER_FIXED + 16 + 4);
		buf[off] ^= 0x40;
		CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv2), 0);
		CHECK_EQ(write(sv2[0], buf, (size_t)n), n);
		close(sv2[0]);
		stream_init(&r, sv2[1]);
		if (stream_read_header(&r, &got, err, sizeof(err)) == 0) {
			fprintf(stderr, "  byte %d flipped: header accepted\n", off);
			test_failed = 1;
		}
		close(sv[0]);
		close(sv[1]);
		close(sv2[1]);
	}
	/* A wrong version says so. */
	{
		struct stream w, r;
		int sv[2];

		pair(sv, &w, &r);
		h.version = 99;
		CHECK_EQ(stream_write_header(&w, &h), 0);
		CHECK_EQ(stream_read_header(&r, &got, err, sizeof(err)), -EPROTO);
		CHECK(strstr(err, "version 99") != NULL);
		close(sv[0]);
		close(sv[1]);
	}
}

static void test_records(void)
{
	struct stream w, r;
	struct stream_rec rec;
	char err[256], buf[64];
	int sv[2];

	pair(sv, &w, &r);
	CHECK_EQ(stream_write(&w, REC_ERROR, "abcdefgh", 8), 0);
	CHECK_EQ(stream_write(&w, REC_END, NULL, 0), 0);
	CHECK_EQ(stream_read_record(&r, &rec, buf, sizeof(buf), err, sizeof(err)), 0);
	CHECK_EQ(rec.type, REC_ERROR);
	CHECK_EQ(rec.len, 8);
	CHECK(!memcmp(buf, "abcdefgh", 8));
	CHECK_EQ(stream_read_record(&r, &rec, buf, sizeof(buf), err, sizeof(err)), 0);
	CHECK_EQ(rec.type, REC_END);
	CHECK_EQ(rec.len, 0);
	/* Too long for the reader's buffer. */
	CHECK_EQ(stream_write(&w, REC_MACHINE_STATE, buf, 64), 0);
	CHECK_EQ(stream_read_record(&r, &rec, buf, 32, err, sizeof(err)), -EPROTO);
	/* A size its type cannot have: refused before the payload is read (a 5000-byte END_ROUND). */
	close(sv[0]);
	close(sv[1]);
	pair(sv, &w, &r);
	{
		static char big[5000];

		CHECK_EQ(stream_write(&w, REC_END_ROUND, big, sizeof(big)), 0);
		CHECK_EQ(stream_read_record(&r, &rec, big, sizeof(big), err, sizeof(err)), -EPROTO);
		CHECK(strstr(err, "END_ROUND record of 5000 bytes") != NULL);
	}
	CHECK(stream_rec_len_ok(REC_END_ROUND, 16) && !stream_rec_len_ok(REC_END_ROUND, 15));
	CHECK(stream_rec_len_ok(REC_END, 0) && !stream_rec_len_ok(REC_END, 1));
	CHECK(stream_rec_len_ok(REC_ACK, 4) && !stream_rec_len_ok(REC_ACK, 8));
	CHECK(!stream_rec_len_ok(REC_RAM_PAGES, 8) && !stream_rec_len_ok(99, 0));
	close(sv[0]);
	close(sv[1]);
	/* Closed mid-record. */
	pair(sv, &w, &r);
	CHECK_EQ(write(sv[0], "\x01\0\0\0\x08", 5), 5);
	close(sv[0]);
	CHECK_EQ(stream_read_record(&r, &rec, buf, sizeof(buf), err, sizeof(err)), -EPIPE);
	close(sv[1]);
}

/*
 * A RAM_PAGES record read in two steps: the head (count, flags, entries) into
 * the buffer and checked, the page data straight into pages of the caller's
 * choosing, by several iovecs; a flipped entry byte is refused before any page
 * byte is read, a flipped page byte is not the stream's to see.
 */
static void test_read_head_rest(void)
{
	static uint8_t data[3][PAGE_SIZE], dst[3][PAGE_SIZE], buf[4 * PAGE_SIZE];
	uint64_t hdr[1 + 4], raw_len;
	struct stream w, r;
	struct stream_rec rec;
	struct iovec v[4], rest[2];
	uint8_t *raw;
	char err[256];
	int sv[2], i;

	for (i = 0; i < 3; i++)
		memset(data[i], 0x41 + i, PAGE_SIZE);
	hdr[0] = 4;			/* u32 count 4, u32 flags 0 */
	hdr[1] = 7ULL << 1;
	hdr[2] = (8ULL << 1) | PAGE_ENTRY_ZERO;
	hdr[3] = 9ULL << 1;
	hdr[4] = 12ULL << 1;
	v[0] = (struct iovec){ hdr, sizeof(hdr) };
	for (i = 0; i < 3; i++)
		v[1 + i] = (struct iovec){ data[i], PAGE_SIZE };
	pair(sv, &w, &r);
	CHECK_EQ(stream_write_record(&w, REC_RAM_PAGES, v, 4), 0);
	CHECK_EQ(stream_write(&w, REC_END, NULL, 0), 0);
	CHECK_EQ(stream_read_head(&r, &rec, buf, sizeof(buf), err, sizeof(err)), 0);
	CHECK_EQ(rec.type, REC_RAM_PAGES);
	CHECK_EQ(rec.len, sizeof(hdr) + 3 * PAGE_SIZE);
	CHECK_EQ(rec.covered, sizeof(hdr));
	CHECK(!memcmp(buf, hdr, sizeof(hdr)));
	/* Pages 7 and 9 land in dst[0] and dst[1] by one iovec, page 12 in dst[2]. */
	rest[0] = (struct iovec){ dst[0], 2 * PAGE_SIZE };
	rest[1] = (struct iovec){ dst[2], PAGE_SIZE };
	CHECK_EQ(stream_read_rest(&r, &rec, rest, 2, err, sizeof(err)), 0);
	for (i = 0; i < 3; i++)
		CHECK(!memcmp(dst[i], data[i], PAGE_SIZE));
	CHECK_EQ(stream_read_head(&r, &rec, buf, sizeof(buf), err, sizeof(err)), 0);
	CHECK_EQ(rec.type, REC_END);
	CHECK_EQ(r.bytes_in, w.bytes_out);
	close(sv[0]);
	close(sv[1]);

	/* The same record with one byte flipped: in an entry, refused by the head; in a page, read. */
	raw_len = STREAM_REC_HDR + sizeof(hdr) + 3 * PAGE_SIZE;
	raw = malloc(raw_len);
	CHECK(raw != NULL);
	pair(sv, &w, &r);
	CHECK_EQ(stream_write_record(&w, REC_RAM_PAGES, v, 4), 0);
	CHECK_EQ(read(sv[1], raw, raw_len), (ssize_t)raw_len);
	for (i = 0; i < 2; i++) {
		int sv2[2];

		raw[i ? STREAM_REC_HDR + sizeof(hdr) + 100 : STREAM_REC_HDR + 20] ^= 0x10;
		CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv2), 0);
		CHECK_EQ(write(sv2[0], raw, raw_len), (ssize_t)raw_len);
		close(sv2[0]);
		stream_init(&r, sv2[1]);
		if (!i) {
			CHECK_EQ(stream_read_head(&r, &rec, buf, sizeof(buf), err, sizeof(err)), -EBADMSG);
			raw[STREAM_REC_HDR + 20] ^= 0x10;
		} else {
			CHECK_EQ(stream_read_head(&r, &rec, buf, sizeof(buf), err, sizeof(err)), 0);
			rest[0] = (struct iovec){ dst[0], 3 * PAGE_SIZE };
			CHECK_EQ(stream_read_rest(&r, &rec, rest, 1, err, sizeof(err)), 0);
			CHECK_EQ(dst[0][100], 0x41 ^ 0x10);
			/* Cut short: the rest is -EPIPE, "truncated". */
			rest[0] = (struct iovec){ dst[0], PAGE_SIZE };
			CHECK_EQ(stream_read_rest(&r, &rec, rest, 1, err, sizeof(err)), -EPIPE);
			CHECK(strstr(err, "truncated RAM_PAGES") != NULL);
		}
		close(sv2[1]);
	}
	free(raw);
	close(sv[0]);
	close(sv[1]);
}

/*
 * The reader's deadlines: a silent peer is -ETIMEDOUT after idle_ms; one that
 * sends a record's first bytes and stops, after timeout_ms; a header that
 * comes in two pieces is read whole.
 */
static void test_read_deadlines(void)
{
	struct stream w, r;
	struct stream_rec rec;
	uint8_t raw[STREAM_REC_HDR + 8], buf[64];
	char err[256];
	int sv[2];

	pair(sv, &w, &r);
	r.idle_ms = 50;
	r.timeout_ms = 50;
	CHECK_EQ(stream_read_record(&r, &rec, buf, sizeof(buf), err, sizeof(err)), -ETIMEDOUT);
	CHECK(strstr(err, "silent") != NULL);
	CHECK_EQ(stream_write(&w, REC_ERROR, "abcdefgh", 8), 0);
	CHECK_EQ(read(sv[1], raw, sizeof(raw)), (ssize_t)sizeof(raw));
	/* Five bytes of it, then nothing. */
	CHECK_EQ(write(sv[0], raw, 5), 5);
	CHECK_EQ(stream_read_record(&r, &rec, buf, sizeof(buf), err, sizeof(err)), -ETIMEDOUT);
	close(sv[0]);
	close(sv[1]);
	/* The same record in two pieces, the first ending inside the header: read whole. */
	pair(sv, &w, &r);
	r.idle_ms = 5000;
	r.timeout_ms = 5000;
	w.seq_out = 0;
	CHECK_EQ(write(sv[0], raw, 5), 5);
	CHECK_EQ(write(sv[0], raw + 5, sizeof(raw) - 5), (ssize_t)(sizeof(raw) - 5));
	CHECK_EQ(stream_read_record(&r, &rec, buf, sizeof(buf), err, sizeof(err)), 0);
	CHECK_EQ(rec.type, REC_ERROR);
	CHECK(!memcmp(buf, "abcdefgh", 8));
	close(sv[0]);
	close(sv[1]);
}

/* A record fed a byte at a time is read in pieces, whole once, and checked; then the next. */
static void test_read_some(void)
{
	struct stream w, r;
	struct stream_rx rx = { 0 };
	struct stream_rec rec;
	uint8_t raw[2 * (STREAM_REC_HDR + 40)], buf[64];
	char err[256];
	size_t i, n;
	int sv[2], sv2[2], ret, whole = 0;

	pair(sv, &w, &r);
	CHECK_EQ(stream_write(&w, REC_ERROR, "0123456789abcdefghijklmnopqrstuvwxyzABCD", 40), 0);
	CHECK_EQ(stream_write(&w, REC_END, NULL, 0), 0);
	n = (size_t)read(sv[1], raw, sizeof(raw));
	CHECK_EQ(n, 2 * STREAM_REC_HDR + 40);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv2), 0);
	stream_init(&r, sv2[1]);
	/* Nothing there yet: not an error, not a record. */
	CHECK_EQ(stream_read_some(&r, &rx, &rec, buf, sizeof(buf), err, sizeof(err)), 0);
	for (i = 0; i < n; i++) {
		CHECK_EQ(write(sv2[0], raw + i, 1), 1);
		ret = stream_read_some(&r, &rx, &rec, buf, sizeof(buf), err, sizeof(err));
		if (ret == 1) {
			whole++;
			CHECK_EQ(i, whole == 1 ? STREAM_REC_HDR + 40 - 1 : n - 1);
			CHECK_EQ(rec.type, whole == 1 ? REC_ERROR : REC_END);
			if (whole == 1)
				CHECK(!memcmp(buf, "0123456789abcdefghijklmnopqrstuvwxyzABCD", 40));
		} else {
			CHECK_EQ(ret, 0);
		}
	}
	CHECK_EQ(whole, 2);
	CHECK_EQ(r.bytes_in, n);
	/* A flipped payload byte fails the checksum; a closed connection is -EPIPE. */
	raw[STREAM_REC_HDR + 3] ^= 0x20;
	memset(&rx, 0, sizeof(rx));
	stream_init(&r, sv2[1]);
	CHECK_EQ(write(sv2[0], raw, STREAM_REC_HDR + 40), (ssize_t)(STREAM_REC_HDR + 40));
	CHECK_EQ(stream_read_some(&r, &rx, &rec, buf, sizeof(buf), err, sizeof(err)), -EBADMSG);
	memset(&rx, 0, sizeof(rx));
	stream_init(&r, sv2[1]);
	CHECK_EQ(write(sv2[0], raw, 5), 5);
	close(sv2[0]);
	CHECK_EQ(stream_read_some(&r, &rx, &rec, buf, sizeof(buf), err, sizeof(err)), -EPIPE);
	CHECK(strstr(err, "truncated") != NULL);
	close(sv[0]);
	close(sv[1]);
	close(sv2[1]);
}

/* Any single flipped byte in a record is refused: header fields, payload, CRC. */
static void test_record_corrupt(void)
{
	int off;

	for (off = 0; off < STREAM_REC_HDR + 32; off++) {
		struct stream w, r;
		struct stream_rec rec;
		uint8_t raw[STREAM_REC_HDR + 32], buf[256];
		char err[256];
		int sv[2], sv2[2];

		pair(sv, &w, &r);
		memset(buf, 0x11, 32);
		CHECK_EQ(stream_write(&w, REC_END_ROUND, buf, 32), 0);
		CHECK_EQ(read(sv[1], raw, sizeof(raw)), (ssize_t)sizeof(raw));
		raw[off] ^= 0x01;
		CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv2), 0);
		CHECK_EQ(write(sv2[0], raw, sizeof(raw)), (ssize_t)sizeof(raw));
		close(sv2[0]);
		stream_init(&r, sv2[1]);
		if (stream_read_record(&r, &rec, buf, sizeof(buf), err, sizeof(err)) == 0) {
			fprintf(stderr, "  byte %d flipped: record accepted\n", off);
			test_failed = 1;
		}
		close(sv[0]);
		close(sv[1]);
		close(sv2[1]);
	}
}

/*
 * RAM_PAGES (stream version 2): a flip in the header or the entry list is
 * refused, a flip in page data is not the CRC's to find (verify on is), and
 * the entry list split across iovecs at any point gives the same CRC.
 */
static void test_ram_pages_crc(void)
{
	enum { LEN = 8 + 2 * 8 + 4096, RAW = STREAM_REC_HDR + LEN };
	static uint8_t page[4096], raw[RAW], buf[LEN];
	uint32_t head[2] = { 2, 0 };
	uint64_t entries[2] = { 7 << 1, (9 << 1) | PAGE_ENTRY_ZERO };
	int offs[] = { 0, 5, 12, STREAM_REC_HDR, STREAM_REC_HDR + 9, STREAM_REC_HDR + 23, STREAM_REC_HDR + 24,
		       RAW - 1 };
	size_t k;

	memset(page, 0x5a, sizeof(page));
	for (k = 0; k < sizeof(offs) / sizeof(offs[0]); k++) {
		struct iovec iov[4] = { { head, 3 }, { (uint8_t *)head + 3, 5 }, { entries, 16 }, { page, 4096 } };
		struct stream w, r;
		struct stream_rec rec;
		char err[256];
		int sv[2], sv2[2], ret;

		pair(sv, &w, &r);
		CHECK_EQ(stream_write_record(&w, REC_RAM_PAGES, iov, 4), 0);
		CHECK_EQ(read(sv[1], raw, sizeof(raw)), (ssize_t)sizeof(raw));
		raw[offs[k]] ^= 0x04;
		CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv2), 0);
		CHECK_EQ(write(sv2[0], raw, sizeof(raw)), (ssize_t)sizeof(raw));
		close(sv2[0]);
		stream_init(&r, sv2[1]);
		ret = stream_read_record(&r, &rec, buf, sizeof(buf), err, sizeof(err));
		if (offs[k] >= STREAM_REC_HDR + 24)
			CHECK_EQ(ret, 0);	/* page data: outside the CRC */
		else
			CHECK(ret < 0);
		close(sv[0]);
		close(sv[1]);
		close(sv2[1]);
	}
	CHECK_EQ(stream_crc_len(REC_RAM_PAGES, head, LEN), 24);
	CHECK_EQ(stream_crc_len(REC_MACHINE_STATE, head, LEN), LEN);
	head[0] = 0xffffffff;	/* a count past the payload: all of it is covered */
	CHECK_EQ(stream_crc_len(REC_RAM_PAGES, head, LEN), LEN);
}

static void test_rate_limit(void)
{
	struct stream w, r;
	static char big[256 << 10];
	uint64_t t0, ms;
	int sv[2], i, bufsz = 4 << 20;

	pair(sv, &w, &r);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	w.max_bw = 4 << 20;	/* 4 MiB/s: 1 MiB takes about 250 ms */
	t0 = stream_now_ns();
	for (i = 0; i < 4; i++) {
		CHECK_EQ(stream_write(&w, REC_MACHINE_STATE, big, sizeof(big)), 0);
		char sink[sizeof(big) + STREAM_REC_HDR];
		size_t got = 0;
		while (got < sizeof(sink)) {
			ssize_t n = read(sv[1], sink + got, sizeof(sink) - got);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
	}
	ms = (stream_now_ns() - t0) / 1000000;
	CHECK(ms >= 150);
	close(sv[0]);
	close(sv[1]);
}

static void test_uri(void)
{
	struct uri u;
	char err[256];

	CHECK_EQ(uri_parse("tcp:127.0.0.1:4444", &u, err, sizeof(err)), 0);
	CHECK_EQ(u.kind, URI_TCP);
	CHECK_STR(u.host, "127.0.0.1");
	CHECK_STR(u.port, "4444");
	CHECK_EQ(uri_parse("tcp:[::1]:5000", &u, err, sizeof(err)), 0);
	CHECK_STR(u.host, "::1");
	CHECK_EQ(uri_parse("tcp::5000", &u, err, sizeof(err)), 0);
	CHECK_STR(u.host, "");
	CHECK_EQ(uri_parse("unix:/tmp/x.sock", &u, err, sizeof(err)), 0);
	CHECK_EQ(u.kind, URI_UNIX);
	CHECK_EQ(uri_parse("file:/tmp/snap", &u, err, sizeof(err)), 0);
	CHECK_EQ(u.kind, URI_FILE);
	CHECK(!uri_has_return_path(&u));
	CHECK_EQ(uri_parse("tcp:host", &u, err, sizeof(err)), -EINVAL);
	CHECK_EQ(uri_parse("tcp:host:0", &u, err, sizeof(err)), -EINVAL);
	CHECK_EQ(uri_parse("tcp:host:70000", &u, err, sizeof(err)), -EINVAL);
	CHECK_EQ(uri_parse("tcp:host:12x", &u, err, sizeof(err)), -EINVAL);
	CHECK_EQ(uri_parse("tcp:::1:4444", &u, err, sizeof(err)), -EINVAL);
	CHECK_EQ(uri_parse("tcp:[::1:4444", &u, err, sizeof(err)), -EINVAL);
	CHECK_EQ(uri_parse("http://x", &u, err, sizeof(err)), -EINVAL);
	CHECK_EQ(uri_parse("unix:", &u, err, sizeof(err)), -EINVAL);
	char longp[300];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	memcpy(longp, "unix:", 5);
	CHECK_EQ(uri_parse(longp, &u, err, sizeof(err)), -EINVAL);
}

/* Range lists: empty ranges, ranges past the end and overflowing ones are refused, the first bad one named. */
static void test_check_ranges(void)
{
	uint64_t r[8] = { 0, 10, 90, 10, 5, 0, UINT64_MAX, 2 }, first, n;

	CHECK_EQ(stream_check_ranges((const uint8_t *)r, 2, 100, &first, &n), 0);
	CHECK_EQ(stream_check_ranges((const uint8_t *)r, 2, 99, &first, &n), -EPROTO);
	CHECK(first == 90 && n == 10);
	CHECK_EQ(stream_check_ranges((const uint8_t *)r, 3, 100, &first, &n), -EPROTO);
	CHECK(first == 5 && n == 0);
	CHECK_EQ(stream_check_ranges((const uint8_t *)(r + 6), 1, 100, &first, &n), -EPROTO);
	r[6] = 99;
	r[7] = UINT64_MAX;	/* first + n wraps */
	CHECK_EQ(stream_check_ranges((const uint8_t *)(r + 6), 1, 100, &first, &n), -EPROTO);
}

TEST_MAIN(TEST(test_header), TEST(test_header_corrupt), TEST(test_records), TEST(test_read_some), TEST(test_read_head_rest), TEST(test_read_deadlines), TEST(test_record_corrupt),
	  TEST(test_ram_pages_crc), TEST(test_rate_limit), TEST(test_uri), TEST(test_check_ranges))
