/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The destination side of a migration: receiving precopy (incoming.c); at
 * the switch postcopy.c takes over with the same struct.  Also the record
 * order a destination accepts, as a pure function for the tests.
 */
#ifndef MIGRATE_INCOMING_H
#define MIGRATE_INCOMING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migrate/migration.h"
#include "migrate/uri.h"
#include "migrate/verify.h"
#include "vmm/bitmap.h"

struct vm;
struct stream;
struct stream_rec;
struct multifd_recv;

/* Where the destination is in the stream, before its fault server takes it over. */
struct incoming_order {
	enum postcopy_state postcopy;	/* NONE (a precopy stream), ADVISE, DISCARD, then LISTEN */
	bool verify;			/* VERIFY records may come (header flag) */
	bool multifd;			/* MULTIFD_SYNC records may come: multifd connections are open */
	bool state_seen;		/* MACHINE_STATE has come */
	bool done;			/* END has come */
};

struct incoming {
	struct migration *m;
	struct vm *vm;
	struct uri uri;
	bool has_return_path;		/* not file: */
	struct channel *main;		/* in m->channels */
	struct channel *urgent;		/* postcopy: requested pages, or NULL */
	struct multifd_recv *mf;	/* multifd: its threads, or NULL */
	int nmultifd;			/* multifd connections (0: none) */
	struct incoming_order order;
	uint8_t *buf;			/* one record */
	void *state;			/* the MACHINE_STATE record */
	uint32_t state_len;
	uint64_t state_ns;		/* when it came: the destination's part of the downtime starts */
	struct bitmap received;		/* postcopy: pages received in precopy, minus discards */
	struct bitmap dropped;		/* postcopy: discarded pages dropped as their DISCARD came (| received at the switch) */
	int uffd;
	bool verify;
	struct verify v;
	uint64_t cpu0_ns;		/* this thread's CPU time when the records began */
	uint16_t round;			/* the precopy round being received, from 1 */
	char err[512];			/* why it failed: reported once, and sent to the source */
	bool reported;			/* err was printed where it happened (state_load): not again */
};

/* The migration thread of a destination (@arg: the struct migration). */
void *incoming_thread(void *arg);

/*
 * After a postcopy migration completed here, the thread that answers a
 * source still waiting for END_OF_COPY (lost with the link): listens on
 * m->recover_uri (migrate_recover), takes the resumed connections, sends a
 * received bitmap with every page and END_OF_COPY, and the source completes
 * too.  The status is postcopy-recover meanwhile, completed after.
 */
void *incoming_answer_thread(void *arg);

/*
 * May a record of @type come now?  0 and @o moves on, or -EPROTO with the
 * reason in @err: every record out of order is refused before it is used.
 */
int incoming_order_check(struct incoming_order *o, uint32_t type, char *err, size_t errlen);

/*
 * Is the RAM_PAGES record @rec (already whole and of a size stream_rec_len_ok()
 * allows) well formed for a RAM of @npages pages before the switch: flags 0,
 * count 1..256, every index inside RAM, exactly the data its entries say?
 * 0, or -EPROTO with the reason in @err.  Pure: the fuzz target calls it too.
 */
int incoming_check_pages(const struct stream_rec *rec, uint64_t npages, char *err, size_t errlen);

/*
 * Load the RAM_PAGES record @rec, read up to its page data from @rx
 * (stream_read_head()), into guest RAM: the data is read from @rx straight
 * into place.  The pages are received (atomically: multifd threads load at
 * once), and last brought by @round.  Adds to *@ndata and *@nzero; 0, or
 * -errno with the reason in @err.
 */
int incoming_load_pages(struct incoming *in, struct stream *rx, const struct stream_rec *rec, uint16_t round,
			uint64_t *ndata, uint64_t *nzero, char *err, size_t errlen);

/* The same for a DISCARD record: count >= 1, the length it implies, every range inside RAM. */
int incoming_check_discard(const struct stream_rec *rec, uint64_t npages, char *err, size_t errlen);

/* For postcopy.c: acknowledge @what (ACK_*) on the return path, if there is one; 0 or -errno with in->err. */
int incoming_send_ack(struct incoming *in, uint32_t what);

/* For postcopy.c: load the machine state received; 0, or -errno (reported once, by state_load()). */
int incoming_load_state(struct incoming *in);

/*
 * For postcopy.c: with verify on, before any vCPU runs here, every page set
 * in @which (NULL: all of RAM) must be what the source had at its last stop;
 * 0 or -EBADMSG with the bad pages named in in->err.
 */
int incoming_verify(struct incoming *in, const struct bitmap *which);

/*
 * For postcopy.c, recovery: listen on @uri, take the source's resumed main
 * and urgent connections (STREAM_F_RESUME; this destination's RAM and
 * vCPUs; anything else is dropped and the next taken), and send RECV_BITMAP
 * from @received (the fault servers' received bitmap).  0 with in->main and
 * in->urgent open; 1 if migrate_recover named another URI meanwhile (listen
 * there instead); -ECANCELED; or -errno with in->err.
 */
int incoming_accept_resume(struct incoming *in, const char *uri, const uint64_t *received);

/* `vmm dump-state FILE`: write the machine state (a DTB) of a file: snapshot to @out_fd; 0 or -errno. */
int incoming_dump_state(const char *path, int out_fd);

#endif
