/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Multifd (QEMU's name): precopy's pages on connections of their own, a
 * thread each on both sides, so that a host with cores to spare is not held
 * to what one thread and one TCP stream carry.  The main connection keeps
 * everything else (rounds, the machine state, the switch, the return path,
 * and after the switch the push); the urgent channel stays as it is.
 *
 * The order of a page's versions: the source hands whole RAM_PAGES records
 * to the connections in turn, so two versions of a page (two rounds) may
 * travel on two connections.  Rounds are therefore fenced: at the end of
 * each round every connection carries MULTIFD_SYNC n, then the main one
 * does; a destination thread that has read its SYNC n loads nothing more
 * until the main thread has read the main connection's SYNC n and every
 * thread has reached it.  Before the source sends anything on the main
 * connection that must follow every page of precopy (the pages and DISCARD
 * of the switch, the machine state, END) it closes the multifd connections,
 * and the destination handles that record only once every multifd thread
 * has read its connection to the end.  (VERIFY, which only brings digests
 * compared at the end, may come before the last stop's pages.)
 *
 * Deadlines: the main connection may be silent for a whole round, so the
 * destination's multifd threads hold the peer's deadline: each of their
 * connections carries a record at least once a round (its SYNC), and a
 * thread that waits at a fence waits at most peer-timeout for the main
 * connection's SYNC.  A thread that fails shuts the main connection down,
 * which wakes the migration thread; the first failure's reason is kept.
 */
#ifndef MIGRATE_MULTIFD_H
#define MIGRATE_MULTIFD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migrate/stream.h"

struct channel;
struct incoming;

/* ---- source ---- */

/* A RAM_PAGES record to fill: the layout of struct outgoing's own. */
struct multifd_job {
	uint32_t n, ndata;		/* entries; data pages among them */
	uint64_t entries[STREAM_PAGES_MAX];
	const uint8_t *page[STREAM_PAGES_MAX];	/* each data page's bytes: guest RAM, or in @data */
	uint8_t *data;			/* STREAM_PAGES_MAX pages, for the test hooks' copies */
	/* private */
	bool sync;
	uint64_t sync_n;
};

struct multifd_send;

/*
 * Start a sending thread on each of the @n connected @chans (kept by the
 * caller, who closes them after multifd_send_finish()).  0 or -errno.
 */
int multifd_send_start(struct multifd_send **msp, struct channel *chans, int n);

/*
 * The next connection's free record, in turn: waits while that connection's
 * thread still sends its previous ones.  NULL if a thread failed
 * (multifd_send_error() says why).
 */
struct multifd_job *multifd_job_get(struct multifd_send *ms);

/* Hand @job (from multifd_job_get(), filled) to its connection's thread. */
void multifd_job_put(struct multifd_send *ms, struct multifd_job *job);

/*
 * The end of a round: SYNC n on every connection, every record sent, then
 * SYNC n on @main_tx.  0 or -errno (a thread failed, or the main write).
 */
int multifd_send_sync(struct multifd_send *ms, struct stream *main_tx);

/* Every record sent, then the threads end; they may be closed after.  0 or the first failure. */
int multifd_send_finish(struct multifd_send *ms);

/* Bytes sent on the multifd connections so far (any thread may ask). */
uint64_t multifd_send_bytes(const struct multifd_send *ms);

/* Why a thread failed ("" if none). */
const char *multifd_send_error(const struct multifd_send *ms);

/* Stop at once (threads blocked in a write are woken by shutting their connections down) and free; NULL safe. */
void multifd_send_free(struct multifd_send *ms);

/* ---- destination ---- */

struct multifd_recv;

/*
 * Start a receiving thread on each of the @n accepted @chans for @in: each
 * loads RAM_PAGES records into guest RAM (incoming_load_pages()), stops at
 * each SYNC until the fence opens, and ends at its connection's end after
 * a SYNC or at once, in order.  @main is shut down when one fails.
 */
int multifd_recv_start(struct multifd_recv **mrp, struct incoming *in, struct channel *chans, int n,
		       struct channel *main, int peer_timeout_ms);

/*
 * The main connection's MULTIFD_SYNC @n: wait until every thread has read
 * its SYNC n, then open the fence.  0, or -errno with the reason in @err.
 */
int multifd_recv_sync(struct multifd_recv *mr, uint64_t n, char *err, size_t errlen);

/*
 * Every thread has read its connection to the end (the source closed it):
 * every page of precopy is loaded.  0, or -errno with the reason in @err.
 */
int multifd_recv_finish(struct multifd_recv *mr, char *err, size_t errlen);

/* Bytes received on the multifd connections so far. */
uint64_t multifd_recv_bytes(const struct multifd_recv *mr);

/* A thread's failure, if any: true and its reason in @err. */
bool multifd_recv_failed(struct multifd_recv *mr, char *err, size_t errlen);

/* Stop the threads (their connections shut down) and free; NULL safe. */
void multifd_recv_free(struct multifd_recv *mr);

#endif
