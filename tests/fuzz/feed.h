/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the fuzz targets share.  The loader targets: a guest RAM and the
 * page-0 oracle.  The stream targets: a connection the code under test reads
 * as it would a peer's, fed with the fuzzer's bytes, and a pass that makes
 * those bytes carry valid checksums (and sequence numbers) where they would
 * otherwise stop every record at its CRC, so that the fuzzer reaches what
 * lies behind it.  The fixing uses the project's own crc32c().
 */
#ifndef FUZZ_FEED_H
#define FUZZ_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Stop the target if @cond is false: an oracle failed (libFuzzer keeps the input as a crash). */
#define FUZZ_ASSERT(cond) do { if (!(cond)) __builtin_trap(); } while (0)

/* A connected AF_UNIX stream pair: sv[0] for the reader under test, sv[1] (non-blocking) for the feeder. */
void feed_open(int sv[2]);

/* Write as much of @data as the socket takes now; returns how many bytes went. */
size_t feed_write(int fd, const uint8_t *data, size_t len);

/*
 * In @data (a header if @header, then records): set each whole record's CRC
 * (and the header's) to what the writer would have put there, and with
 * @fix_seq each record's sequence number to its position.  Stops at the
 * first record that does not fit.
 */
void feed_fix(uint8_t *data, size_t len, bool header, bool fix_seq);

struct ram;

/* For the loader targets: map @size bytes of guest RAM once, quiet the log; aborts if it cannot. */
void feed_ram_init(struct ram *ram, uint64_t size);

/* The loaders' promise: page 0 of @ram is never written. */
bool feed_page0_clean(const struct ram *ram);

#endif
