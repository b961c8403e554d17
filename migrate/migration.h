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

#include "migrate/channel.h"

struct vm;
struct monitor;
struct strbuf;
struct faultsrv;
struct faultsrv_shared;
struct outgoing;
struct incoming;

enum migration_status {
	MIGRATION_STATUS_NONE,
	MIGRATION_STATUS_SETUP,		/* connecting, exchanging the header */
	MIGRATION_STATUS_ACTIVE,	/* precopy rounds (incoming: receiving) */
	MIGRATION_STATUS_COMPLETING,	/* source stopped: last pages, state, waiting for the destination */
	MIGRATION_STATUS_POSTCOPY,	/* switched: the guest runs on the destination, pages follow */
	MIGRATION_STATUS_POSTCOPY_PAUSED,	/* a channel broke after the switch: everything kept, waiting */
	MIGRATION_STATUS_POSTCOPY_RECOVER,	/* reconnecting: the received bitmap is being exchanged */
	MIGRATION_STATUS_COMPLETED,
	MIGRATION_STATUS_FAILED,
	MIGRATION_STATUS_CANCELLED,
};

/*
 * Postcopy, on both sides, in QEMU's words (docs/design.md):
 *	none	  no postcopy in this stream
 *	advise	  the stream may switch (header flag); precopy rounds go on
 *	discard	  the switch began: the source stopped and sends what to drop
 *	listen	  the state came; the destination registers RAM, forks its
 *		  fault server, loads the state (source: waits for ACK(RUNNING))
 *	running	  the guest runs on the destination; pages follow
 *	paused	  a channel broke after the switch (kept for recovery)
 *	end	  every page is on the destination
 * The destination refuses any record its state does not allow.
 */
enum postcopy_state {
	POSTCOPY_NONE,
	POSTCOPY_ADVISE,
	POSTCOPY_DISCARD,
	POSTCOPY_LISTEN,
	POSTCOPY_RUNNING,
	POSTCOPY_PAUSED,
	POSTCOPY_END,
};

struct migration_params {
	uint64_t downtime_limit_ms;	/* stop-and-copy once the rest fits in this */
	uint64_t max_bandwidth;		/* bytes/s on the wire, 0 = unlimited */
	uint64_t max_rounds;		/* stop-and-copy after this many rounds, 0 = never forced */
	bool postcopy;			/* capability: switch to postcopy instead of stop-and-copy */
	uint64_t postcopy_after_rounds;	/* switch after this many precopy rounds (0: pure postcopy) */
	bool postcopy_background;	/* push the remaining pages, not only the requested ones */
	uint64_t postcopy_window;	/* pages pushed on each side of a requested one */
	uint64_t max_postcopy_bandwidth; /* bytes/s for background pages, 0 = unlimited */
	bool verify;			/* capability: digest every page at the last stop (migrate/verify.h) */
	bool auto_converge;		/* capability: throttle the vCPUs while the guest dirties faster than the link */
	bool multifd;			/* capability: precopy's pages on multifd_channels connections of their own */
	uint64_t multifd_channels;	/* 1 to MIGRATION_MULTIFD_MAX (QEMU's default: 2) */
	uint64_t cpu_throttle_initial;	/* auto-converge: the first throttle, percent */
	uint64_t cpu_throttle_increment; /* auto-converge: each later step, percent */
	uint64_t max_cpu_throttle;	/* auto-converge: at most, percent */
	uint64_t throttle_trigger_threshold; /* a round whose dirtied bytes exceed this % of those sent outruns the link */
	uint64_t peer_timeout_ms;	/* a silent peer, or an acknowledgement that does not come, fails after this */
	char tls_creds[256];		/* TLS credentials' directory (migrate/tls.h), "" = plaintext */
	char tls_hostname[256];		/* source: the name the destination's certificate is for ("": the URI's host) */
	bool x_lose_ack_running;	/* test hook, destination: ACK(RUNNING) of the postcopy switch is not sent */
	bool x_lose_end_of_copy;	/* test hook, destination: the fault server does not send END_OF_COPY */
	bool x_drop_page;		/* test hook: leave a changed dirty page out of precopy's last round */
	bool x_corrupt_page;		/* test hook: flip a byte of the first data page sent after the last stop */
};

struct migration_stats {
	uint64_t start_ns, end_ns;	/* destination: start_ns is when the source connected */
	uint64_t wait_ms;		/* destination: waiting for the source to connect (not in total_ms) */
	uint64_t setup_ms, total_ms;
	uint64_t rounds;
	uint64_t bytes;			/* on the wire, both directions */
	uint64_t multifd_channels;	/* multifd connections of this migration (0: none) */
	uint64_t multifd_bytes;		/* of bytes, those on them */
	uint64_t pages_total;		/* guest RAM pages */
	uint64_t pages_sent;		/* with data */
	uint64_t zero_pages;		/* sent as zero entries, no data */
	uint64_t zero_skipped;		/* zero pages never sent (first round) */
	/*
	 * Source: pages the destination still lacks: dirty since sent, or (with
	 * postcopy, which must place every page) never sent.  Cannot jump at the
	 * switch: the never-sent zero pages counted from round 1 on.
	 */
	uint64_t pages_remaining;
	uint64_t dirty_rate;		/* pages/s dirtied during the last round */
	uint64_t throughput;		/* bytes/s during the last round */
	uint64_t precopy_ms;		/* in precopy rounds (sending and syncing), source */
	uint64_t precopy_bytes;		/* sent in precopy rounds, source */
	/*
	 * What limits the precopy stream: the CPU the migration thread used in
	 * the rounds, and the part of the rounds spent syncing the dirty log
	 * (source); the CPU the receiving thread used (destination).
	 */
	uint64_t precopy_cpu_ns, precopy_sync_ns;
	uint64_t expected_downtime_ms;	/* source, precopy rounds only: a forecast */
	uint64_t cpu_throttle_pct;	/* source, auto-converge: the vCPUs' throttle now (0 when it ends) */
	uint64_t throttle_steps;	/* source, auto-converge: how many times it was raised */
	uint64_t forced_expected_ms;	/* source: max-rounds stopped it with this expected downtime over the limit */
	uint64_t downtime_ms;		/* source: its stop to ACK(RUNNING), set once known */
	uint64_t load_start_ms;		/* destination: machine state's arrival to vCPUs running (part of the downtime) */
	/*
	 * The same pause read on one clock by an onlooker (bench/run, as it
	 * reads QEMU's STOP and RESUME events): CLOCK_REALTIME, µs, when the
	 * source's vCPUs stopped for the last stop or the switch, and when the
	 * destination's started.
	 */
	uint64_t stopped_wall_us;	/* source */
	uint64_t started_wall_us;	/* destination */
	uint64_t state_bytes;		/* the machine state record */
	/* Postcopy. */
	uint64_t switch_ns;		/* when the source stopped for the switch */
	uint64_t switch_downtime_ms;	/* source: = downtime_ms, for postcopy (JSON switchover_downtime_ms) */
	/*
	 * Where the switchover's downtime goes, in µs.  Source: the stop to the
	 * dirty log synced; then to POSTCOPY_RUN written (paravirtual pages,
	 * discard list, state); the rest is the wait for ACK(RUNNING).
	 * Destination: dropping every page not received (discarded ones too)
	 * and registering RAM with the userfaultfd (part of load and start).
	 */
	uint64_t switch_sync_us, switch_send_us;
	uint64_t switch_drop_us;
	uint64_t postcopy_ms;		/* switch to end of copy */
	uint64_t pages_requested;	/* the destination asked for (both sides: the same count) */
	uint64_t pages_pushed;		/* sent in the background (and neighbours) */
	uint64_t pages_discarded;	/* sent in precopy, dirtied since: dropped there */
	uint64_t zero_after_switch;	/* of requested + pushed, zero entries */
	uint64_t bytes_after_switch;
	uint64_t nonzero_at_switch;	/* non-zero pages the destination lacked at the switch */
	uint64_t had_at_switch;		/* pages the destination had from precopy at the switch */
	uint64_t requests;		/* PAGE_REQUEST records */
	uint64_t pages_resent;		/* of pages_requested, already sent (pushed): sent twice */
	uint64_t urgent_bytes;		/* sent on the urgent channel */
	/* What limits the push: CPU time of the push (migration thread) and of the return-path thread. */
	uint64_t push_cpu_ns, rp_cpu_ns;
	/* verify on: pages digested (source) or compared (destination), the time it took, mismatches. */
	uint64_t verify_pages, verify_ms, verify_bad;
	/*
	 * Postcopy recovery (docs/design.md): how many times postcopy paused
	 * and recovered, the time spent paused (all pauses, and the one going
	 * on since pause_start_ns, 0: none), how long the last failure took to
	 * notice (from the last record or write that got through to the
	 * break), and, source, the pages sent again after a recovery because
	 * they were on their way when it broke (and their bytes).  Destination:
	 * the fault servers started again after one died.
	 */
	uint64_t pauses, recoveries, paused_ms, pause_start_ns, detect_ms;
	uint64_t recovery_pages, recovery_bytes;
	uint64_t faultsrv_restarts;
};

#define MIGRATION_MULTIFD_MAX	8	/* multifd-channels, at most */
#define MIGRATION_CHANNELS_MAX	(2 + MIGRATION_MULTIFD_MAX)	/* main, urgent, multifd ones */

/*
 * One migration, outgoing or incoming, for the life of the vmm: created
 * once, reused by every migration it makes (a VM that arrived may leave
 * again).  Everything a migration needs lives here or hangs from here, not
 * on a thread's stack, so it outlives its threads.
 */
struct migration {
	struct vm *vm;
	pthread_mutex_t lock;		/* guards what the monitor reads: status, params, stats, error */
	struct migration_params params;
	enum migration_status status;
	enum postcopy_state postcopy;
	bool incoming;
	char uri[320];
	char error[512];
	struct migration_stats stats;
	pthread_t thread;
	bool thread_started;
	bool cancel;			/* asked to stop */
	bool start_postcopy;		/* migrate_start_postcopy was asked */
	/*
	 * This migration may switch to postcopy: the capability, or `migrate -p`
	 * for this migration only (as QEMU's per-command flags -b and -i were:
	 * they never changed a capability for the migrations after).
	 */
	bool postcopy_this;
	/* The connections: [i].fd -1 when closed; opened and closed under lock, by role. */
	struct channel channels[MIGRATION_CHANNELS_MAX];
	int nchannels;
	int listen_fd;			/* destination, while it waits for connections; -1 */
	struct outgoing *out;		/* the source side's state (outgoing.h), while migrating */
	struct incoming *in;		/* the destination side's (incoming.h) */
	struct faultsrv *fs;		/* destination: the fault server, while it exists */
	int uffd;			/* destination: guest RAM's userfaultfd while pages are missing; -1 */
	/*
	 * Postcopy recovery: migrate_recover (destination) or migrate_resume
	 * (source) sets recover_uri and signals recover_cond; migrate_pause
	 * sets pause_asked and shuts the connections down.
	 */
	pthread_cond_t recover_cond;
	char recover_uri[320];		/* where to listen or connect again; "" none asked */
	bool pause_asked;
	/*
	 * TLS (migrate/tls.h): the credentials of this migration, loaded from
	 * params.tls_creds as it starts (NULL: plaintext); the name a source
	 * checks the destination's certificate for; the main connection's
	 * session binding, which every other connection's header must carry.
	 */
	struct tls_creds *tls;
	char tls_hostname[256];
	uint8_t tls_binding[STREAM_BINDING_LEN];
};

/* A migration for @vm with the default parameters; NULL if out of memory. */
struct migration *migration_new(struct vm *vm);

/* Cancel, join the thread and free; safe on NULL. */
void migration_free(struct migration *m);

/* Add the migration commands to @mon. */
int migration_add_commands(struct migration *m, struct monitor *mon);

/* Destination: receive a VM from @uri on a migration thread, then run it; 0 or -errno. */
int migration_start_incoming(struct migration *m, const char *uri);

/*
 * Source: start migrating to @uri, with postcopy if the capability is on or
 * @postcopy (this migration only); 0, or -errno with a message in @out.
 */
int migration_start_outgoing(struct migration *m, const char *uri, bool postcopy, struct strbuf *out);

/* Ask a running migration to stop; the source VM keeps running. */
void migration_cancel(struct migration *m);

/* Append the status and figures, one "name: value" per line. */
void migration_format(struct migration *m, struct strbuf *out);

/* Append the status and figures as one JSON object on one line; @samples: with
 * "fault_latency_samples_us", every timed fault's latency (the first FAULTSRV_LAT_SAMPLES). */
void migration_format_json(struct migration *m, struct strbuf *out, bool samples);

/* Append the fault server's figures (destination, postcopy). */
void migration_format_faults(const struct faultsrv_shared *sh, struct strbuf *out);

/*
 * Every parameter and capability of the settings table, with its default
 * and what it means (for `vmm migrate --help`, so the list cannot drift).
 */
void migration_describe_settings(struct strbuf *out);

/* Name of a status ("active", "completed" ...). */
const char *migration_status_name(enum migration_status s);

/* Name of a postcopy state ("none", "advise" ...). */
const char *postcopy_state_name(enum postcopy_state s);

/* For the migration threads: record a failure (first one wins) with its message. */
void migration_set_error(struct migration *m, enum migration_status status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* For the migration threads: set the status. */
void migration_set_status(struct migration *m, enum migration_status status);

/* For the migration threads: move to postcopy state @s (shown by info migrate). */
void migration_set_postcopy(struct migration *m, enum postcopy_state s);

/* For the migration threads: a snapshot of the parameters. */
void migration_get_params(struct migration *m, struct migration_params *p);

/*
 * Set parameter or capability @name to @value as the monitor's
 * migrate_set_parameter / migrate_set_capability would (@capability);
 * 0, or -errno with the message in @out.
 */
int migration_set(struct migration *m, bool capability, const char *name, const char *value, struct strbuf *out);

/* For the migration threads: open channel @role (index = role) under the lock, so cancel can reach it. */
struct channel *migration_channel(struct migration *m, enum channel_role role);

/* For the migration threads: close every channel (under the lock). */
void migration_close_channels(struct migration *m);

/* Bytes through every channel of @m, both directions (its figure `bytes`); with m->lock held. */
uint64_t migration_channels_bytes(const struct migration *m);

/* For the migration threads: true once migrate_cancel was asked. */
bool migration_cancelled(struct migration *m);

/*
 * For the migration threads, postcopy recovery: enter postcopy-paused (the
 * figures, the message @why, once), and wait until migrate_recover or
 * migrate_resume gives a URI (copied to @uri, @len bytes; returns 0, and
 * the status is postcopy-recover), or @auto_ms passes with @auto_uri
 * (non-NULL: try it without being asked; returns 1), or a cancel
 * (-ECANCELED).  Called again after a failed try, it only waits again.
 */
int migration_pause_wait(struct migration *m, const char *why, uint64_t detect_ms, const char *auto_uri,
			 int auto_ms, char *uri, size_t len);

/* For the migration threads: recovered; back to postcopy-active, the pause's time counted. */
void migration_recovered(struct migration *m);



#endif
