/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A migration, outgoing or incoming, as the monitor sees it: its status,
 * parameters and figures, and the monitor commands that drive it (migrate,
 * migrate_cancel, info migrate, migrate_set_parameter, info
 * migrate_parameters).  The work itself runs on a migration thread (see
 * outgoing.c and incoming.c); everything here is shared with that thread
 * under m->lock.
 */
#ifndef MIGRATE_MIGRATION_H
#define MIGRATE_MIGRATION_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;
struct monitor;
struct strbuf;
struct faultsrv;
struct faultsrv_shared;

enum mig_status {
	MIG_NONE,
	MIG_SETUP,		/* connecting, exchanging the header */
	MIG_ACTIVE,		/* precopy rounds (incoming: receiving) */
	MIG_COMPLETING,		/* source stopped: last pages, state, waiting for the destination */
	MIG_POSTCOPY,		/* switched: the guest runs on the destination, pages follow */
	MIG_COMPLETED,
	MIG_FAILED,
	MIG_CANCELLED,
};

struct mig_params {
	uint64_t downtime_limit_ms;	/* stop-and-copy once the rest fits in this */
	uint64_t max_bandwidth;		/* bytes/s on the wire, 0 = unlimited */
	uint64_t max_rounds;		/* stop-and-copy after this many rounds, 0 = never forced */
	bool postcopy;			/* capability: switch to postcopy instead of stop-and-copy */
	uint64_t postcopy_after_rounds;	/* switch after this many precopy rounds (0: pure postcopy) */
	bool postcopy_background;	/* push the remaining pages, not only the requested ones */
	uint64_t postcopy_window;	/* pages pushed on each side of a requested one */
	uint64_t max_postcopy_bandwidth; /* bytes/s for background pages, 0 = unlimited */
	bool verify;			/* capability: digest every page at the last stop (migrate/verify.h) */
	bool x_drop_page;		/* test hook: leave the highest dirty page out of precopy's last round */
	bool x_corrupt_page;		/* test hook: flip a byte of the first data page sent after the last stop */
};

struct mig_stats {
	uint64_t start_ns, end_ns;
	uint64_t setup_ms, total_ms;
	uint64_t rounds;
	uint64_t bytes;			/* on the wire, both directions */
	uint64_t pages_total;		/* guest RAM pages */
	uint64_t pages_sent;		/* with data */
	uint64_t zero_pages;		/* sent as zero entries, no data */
	uint64_t zero_skipped;		/* zero pages never sent (first round) */
	uint64_t pages_remaining;	/* dirty, not yet sent */
	uint64_t dirty_rate;		/* pages/s dirtied during the last round */
	uint64_t throughput;		/* bytes/s during the last round */
	uint64_t precopy_ms;		/* in precopy rounds (sending and syncing), source */
	uint64_t precopy_bytes;		/* sent in precopy rounds, source */
	uint64_t expected_downtime_ms;
	uint64_t downtime_ms;		/* source stop to destination running */
	uint64_t state_bytes;		/* the machine state record */
	/* Postcopy. */
	uint64_t switch_ns;		/* when the source stopped for the switch */
	uint64_t switch_downtime_ms;	/* source stop to destination running */
	uint64_t postcopy_ms;		/* switch to end of copy */
	uint64_t pages_requested;	/* sent because the destination asked */
	uint64_t pages_pushed;		/* sent in the background (and neighbours) */
	uint64_t pages_discarded;	/* sent in precopy, dirtied since: dropped there */
	uint64_t zero_after_switch;	/* of requested + pushed, zero entries */
	uint64_t bytes_after_switch;
	uint64_t nonzero_at_switch;	/* non-zero pages the destination lacked at the switch */
	uint64_t had_at_switch;		/* pages the destination had from precopy at the switch */
	uint64_t requests;		/* PAGE_REQUEST records */
	uint64_t pages_resent;		/* requested again while pushed: sent twice */
	uint64_t urgent_bytes;		/* sent on the urgent channel */
	/* verify on: pages digested (source) or compared (destination), the time it took, mismatches. */
	uint64_t verify_pages, verify_ms, verify_bad;
};

struct migration {
	struct vm *vm;
	pthread_mutex_t lock;
	struct mig_params params;
	enum mig_status status;
	bool incoming;
	char uri[320];
	char error[512];
	struct mig_stats stats;
	pthread_t thread;
	bool thread_started;
	bool cancel;		/* asked to stop */
	bool start_postcopy;	/* migrate_start_postcopy was asked */
	struct faultsrv *fs;	/* destination: the fault server, while it exists */
	int uffd;		/* destination: guest RAM's userfaultfd while pages are missing; -1 */
	int conn_fd;		/* the connection, shut down to cancel; -1 if none */
};

/* Set up with default parameters for @vm. */
void migration_init(struct migration *m, struct vm *vm);

/* Add the migration commands to @mon. */
int migration_add_commands(struct migration *m, struct monitor *mon);

/* Destination: receive a VM from @uri on a migration thread, then run it; 0 or -errno. */
int migration_start_incoming(struct migration *m, const char *uri);

/* Source: start migrating to @uri; 0, or -errno with a message in @out. */
int migration_start_outgoing(struct migration *m, const char *uri, struct strbuf *out);

/* Ask a running migration to stop; the source VM keeps running. */
void migration_cancel(struct migration *m);

/* Append the status and figures, one "name: value" per line. */
void migration_format(struct migration *m, struct strbuf *out);

/* Append the status and figures as one JSON object on one line; @samples: with
 * "fault_latency_samples_us", every timed fault's latency (the first FAULTSRV_LAT_SAMPLES). */
void migration_format_json(struct migration *m, struct strbuf *out, bool samples);

/* Append the fault server's figures (destination, postcopy). */
void migration_format_faults(const struct faultsrv_shared *sh, struct strbuf *out);

/* Name of a status ("active", "completed" ...). */
const char *mig_status_name(enum mig_status s);

/* Cancel and join the migration thread. */
void migration_destroy(struct migration *m);

/* For the migration threads: record a failure (first one wins) with its message. */
void migration_set_error(struct migration *m, enum mig_status status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* For the migration threads: set the status. */
void migration_set_status(struct migration *m, enum mig_status status);

/* For the migration threads: true once migrate_cancel was asked. */
bool migration_cancelled(struct migration *m);

/* `vmm dump-state FILE`: write the machine state (a DTB) of a file: snapshot to @out_fd; 0 or -errno. */
int incoming_dump_state(const char *path, int out_fd);

/* The thread bodies (outgoing.c, incoming.c). */
void *outgoing_thread(void *arg);
void *incoming_thread(void *arg);

#endif
