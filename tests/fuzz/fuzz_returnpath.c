// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target: the source's return path, what a destination (or whoever
 * answers in its place) sends back.  Two readers, by byte 0 bit 0:
 *
 *  0: the PAGE_REQUEST check of the return-path thread after the postcopy
 *     switch (postcopy_take_request, migrate/postcopy.c): bytes 1-4 the
 *     source's RAM in pages (little endian), the rest the payload;
 *  1: the wait for an acknowledgement in setup and completion
 *     (outgoing_wait_ack, migrate/outgoing.c: ACK, ERROR, anything else),
 *     over a socketpair fed with the rest of the input; bit 1 the ACK it
 *     waits for (HEADER or RUNNING), bits 2-3 fix the CRCs and sequence
 *     numbers (feed.h);
 * byte 0 bit 4 (with bit 0 clear): the RECV_BITMAP check of a resuming
 *     source (postcopy_take_recv_bitmap): bytes 1-4 the source's RAM in
 *     pages (at most 2^20 here), the rest the payload.
 *
 * Besides ASan and UBSan, the oracle: a request gives at most 256 pages,
 * each inside RAM; a bitmap taken has no bit past RAM; the wait ends (no hang) with 0 only when the ACK it
 * wanted came, else with -errno and a message.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate/channel.h"
#include "migrate/migration.h"
#include "migrate/outgoing.h"
#include "migrate/postcopy.h"
#include "migrate/stream.h"
#include "tests/fuzz/feed.h"
#include "vmm/bitmap.h"
#include "vmm/log.h"

static struct migration *m;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_level = LOG_QUIET;
	m = migration_new(NULL);	/* outgoing_wait_ack() only asks it whether to cancel */
	if (!m)
		abort();
	return 0;
}

static void request(const uint8_t *data, size_t size)
{
	uint64_t list[STREAM_PAGES_MAX], npages;
	uint32_t np, len = (uint32_t)size - 5;
	uint8_t *payload;
	int n, i;

	if (size < 5)
		return;
	memcpy(&np, data + 1, 4);
	npages = np;
	/* The reader has checked the size for the type: only such payloads reach the check. */
	if (!stream_rec_len_ok(REC_PAGE_REQUEST, len))
		return;
	payload = malloc(len);
	memcpy(payload, data + 5, len);
	n = postcopy_take_request(payload, len, npages, list);
	FUZZ_ASSERT(n == -EPROTO || (n >= 0 && n <= STREAM_PAGES_MAX));
	for (i = 0; i < n; i++)
		FUZZ_ASSERT(list[i] < npages);
	free(payload);
}

static void recv_bitmap(const uint8_t *data, size_t size)
{
	uint32_t np, len = (uint32_t)size - 5;
	struct bitmap b = { 0 };
	uint8_t *payload;

	if (size < 5)
		return;
	memcpy(&np, data + 1, 4);
	np %= 1U << 20;
	if (!np || !stream_rec_len_ok(REC_RECV_BITMAP, len) || bitmap_init(&b, np))
		return;
	payload = malloc(len);
	memcpy(payload, data + 5, len);
	if (!postcopy_take_recv_bitmap(payload, len, &b)) {
		FUZZ_ASSERT(len == 8 + (np + 63) / 64 * 8);
		FUZZ_ASSERT(bitmap_next_set(&b, 0) <= np);
		if (np % 64)
			FUZZ_ASSERT(!(b.words[np / 64] >> (np % 64)));
	}
	free(payload);
	bitmap_destroy(&b);
}

static void wait_ack(const uint8_t *data, size_t size)
{
	uint32_t want = data[0] & 2 ? ACK_RUNNING : ACK_HEADER;
	struct outgoing o = { 0 };
	uint8_t *copy;
	int sv[2], ret;

	copy = malloc(size);
	memcpy(copy, data + 1, size - 1);
	if (data[0] & 4)
		feed_fix(copy, size - 1, false, data[0] & 8);
	feed_open(sv);
	feed_write(sv[1], copy, size - 1);
	shutdown(sv[1], SHUT_WR);
	o.m = m;
	o.main = &m->channels[CHANNEL_MAIN];
	o.main->fd = sv[0];
	stream_init(&o.main->rx, sv[0]);
	/* Everything is sent and the end follows: the poll never waits. */
	ret = outgoing_wait_ack(&o, want, 10000);
	FUZZ_ASSERT(ret <= 0 && ret != -ETIMEDOUT);
	FUZZ_ASSERT(!ret || (o.err[0] && memchr(o.err, '\0', sizeof(o.err))));
	o.main->fd = -1;
	close(sv[0]);
	close(sv[1]);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		wait_ack(data, size);
	else if (data[0] & 0x10)
		recv_bitmap(data, size);
	else
		request(data, size);
	return 0;
}
