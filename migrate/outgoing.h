/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The source side of a migration: precopy (outgoing.c).  When the stream
 * switches to postcopy, postcopy.c takes over with the same struct: it is
 * the source's state for the whole migration, hung from struct migration.
 */
#ifndef MIGRATE_OUTGOING_H
#define MIGRATE_OUTGOING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "migrate/stream.h"
#include "migrate/uri.h"
#include "migrate/verify.h"
#include "vmm/bitmap.h"

struct migration;
struct channel;
struct multifd_send;
struct vm;

struct outgoing {
	struct migration *m;
	struct vm *vm;
	struct uri uri;
	bool has_return_path;		/* not file: */
	bool file_made;			/* file: this migration created (truncated) the file */
	/*
	 * END or POSTCOPY_RUN may have reached the destination: from then on
	 * it may run the guest, and this copy never runs again by itself
	 * unless the destination said it refused (docs/design.md, "No split
	 * brain").
	 */
	bool state_sent;
	bool postcopy;			/* the stream may switch (precopy's completion clears it) */
	struct channel *main;		/* in m->channels */
	struct channel *urgent;		/* postcopy: requested pages, or NULL */
	struct multifd_send *mf;	/* multifd: precopy's pages go here (until outgoing_multifd_end()) */
	int nmultifd;			/* multifd connections (0: none) */
	struct bitmap dirty;		/* pages to send in this round */
	struct bitmap sent;		/* postcopy: pages the destination has from precopy */
	struct ram_pagemap pm;		/* the migration thread's: untouched pages are zero unread */
	uint64_t *entries;		/* the migration thread's record buffer */
	const uint8_t *page[STREAM_PAGES_MAX];	/* each data page's bytes: RAM, or in @data (test hooks) */
	uint8_t *data;
	uint64_t round_bytes;
	bool verify;			/* digests at the last stop (migrate/verify.h) */
	struct verify v;
	bool corrupt_next;		/* test hook x-corrupt-page: flip a byte of the next data page sent */
	uint64_t *sent_digest;		/* test hook x-drop-page: the digest of each page as last sent */
	unsigned throttle;		/* auto-converge: the vCPUs' throttle set, percent */
	unsigned throttle_high;		/* auto-converge: rounds in a row that outran the link */
	char err[512];			/* why it failed, for info migrate (the first reason wins) */
};

/*
 * auto-converge, after a round that sent @sent bytes while the guest
 * dirtied @dirtied: the vCPUs' throttle for what follows, from the one now
 * (@pct) and the rounds in a row that dirtied more than
 * throttle-trigger-threshold % of what they sent (*@high, kept between
 * calls).  The second such round raises it (QEMU's rule): to
 * cpu-throttle-initial the first time, then by cpu-throttle-increment,
 * never above max-cpu-throttle.
 */
unsigned outgoing_throttle_next(unsigned pct, uint64_t dirtied, uint64_t sent, unsigned *high,
			       const struct migration_params *p);

/* The migration thread of a source (@arg: the struct migration). */
void *outgoing_thread(void *arg);

/*
 * The downtime, in ms, of sending @remaining pages at the rate the last round
 * saw (@bytes in @ns); at least one page per ms is assumed, but never more
 * than @max_bw bytes/s when it is set (max-bandwidth holds in the last stop
 * too).
 */
uint64_t outgoing_expected_downtime(uint64_t remaining, uint64_t bytes, uint64_t ns, uint64_t max_bw);

/*
 * Multifd: every page handed over sent, and the multifd connections closed;
 * before anything on the main connection that must follow every page of
 * precopy.  0 (also without multifd) or -errno with o->err.
 */
int outgoing_multifd_end(struct outgoing *o);

/* For postcopy.c: the last stop (test hooks armed; with verify, the digests sent); 0 or -errno. */
int outgoing_last_stop(struct outgoing *o);

/* For postcopy.c: send the paused VM's machine state, then the record @then; 0 or -errno. */
int outgoing_send_state(struct outgoing *o, uint32_t then, size_t *len);

/* For postcopy.c: wait up to @ms for the acknowledgement @want on the return path; 0 or -errno, o->err. */
int outgoing_wait_ack(struct outgoing *o, uint32_t want, int ms);

/*
 * For postcopy.c: send the @n pages @idx (at most STREAM_PAGES_MAX; indexes
 * outside RAM are skipped) with their data now, and count them as sent and
 * clean.  0 or -errno.
 */
int outgoing_send_now(struct outgoing *o, const uint64_t *idx, uint32_t n);

/*
 * Where page @idx's data is sent from: guest RAM itself, or, with a test
 * hook armed (x-corrupt-page, x-drop-page), @copy (PAGE_SIZE bytes) filled
 * with it.  Sending from RAM saves a copy per page: a page the guest writes
 * while it goes out is in the dirty log and goes again, and after the last
 * stop or the switch RAM no longer changes.
 */
const uint8_t *outgoing_page_data(struct outgoing *o, uint8_t *copy, uint64_t idx);

/*
 * Append @len bytes at @p to the @n iovecs at @iov, growing the last one
 * when @p follows it (consecutive pages of RAM go as one iovec).
 */
void outgoing_iov_add(struct iovec *iov, int *n, const void *p, size_t len);

#endif
