/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The postcopy fault server: a process forked by the destination VMM at the
 * switch, which owns the migration connections from then on (the main one,
 * and the urgent channel that carries requested pages).  It reads guest
 * page faults from the userfaultfd, asks the source for each missing page
 * once, places requested and pushed pages as they arrive, and says END_OF_COPY
 * to the source once every page is here.  The VMM keeps running the vCPUs and
 * the devices, and watches the server through a control socket and a shared
 * mapping (struct faultsrv_shared) that it may read at any time.
 */
#ifndef MIGRATE_FAULTSRV_H
#define MIGRATE_FAULTSRV_H

#include <linux/filter.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "migrate/channel.h"
#include "migrate/stream.h"
#include "vmm/bitmap.h"

struct verify;

#define FAULTSRV_LAT_BUCKETS	32	/* bucket i: [2^i, 2^(i+1)) us; bucket 0 also holds < 1 us */
#define FAULTSRV_PENDING_MAX	512	/* requested pages whose fault time is kept */
#define FAULTSRV_LAT_SAMPLES	16384	/* the first faults' latencies, kept exactly */
#define FAULTSRV_ERR_MAX	256
#define FAULTSRV_CHANNELS	2	/* main and urgent, indexed by role */
#define FAULTSRV_FILTER_MAX	256	/* BPF instructions of the server's seccomp filter */

/* faultsrv_shared.status */
enum { FAULTSRV_RUNNING = 0, FAULTSRV_COMPLETE = 1, FAULTSRV_FAILED = 2 };

/*
 * Control messages, server to VMM; FAULTSRV_MSG_EXITED is faultsrv_poll()'s
 * own: the server has gone.  PAUSED: a connection to the source broke (or
 * the VMM asked, FAULTSRV_CMD_PAUSE); the server has ended, and everything
 * it leaves in the shared map lets another one go on after a recovery.
 */
enum {
	FAULTSRV_MSG_READY = 1, FAULTSRV_MSG_DONE = 2, FAULTSRV_MSG_ERROR = 3, FAULTSRV_MSG_EXITED = 4,
	FAULTSRV_MSG_PAUSED = 5,
};

/* Control messages, VMM to server. */
enum { FAULTSRV_CMD_PAUSE = 16 };	/* migrate_pause: drop the connections, end with PAUSED */

struct faultsrv_msg {
	uint32_t type;
	uint32_t len;			/* of text, for ERROR */
	char text[FAULTSRV_ERR_MAX];	/* NUL-terminated */
};

/* Fault-service latency: from reading the fault off the uffd to placing its page. */
struct faultsrv_latency {
	uint64_t bucket[FAULTSRV_LAT_BUCKETS];
	uint64_t count, sum_ns, min_ns, max_ns;
	/* Sample i is the i-th fault's latency (us) while i < FAULTSRV_LAT_SAMPLES:
	 * exact percentiles, and the distribution for a CDF. */
	uint32_t sample_us[FAULTSRV_LAT_SAMPLES];
};

/* A requested page still missing, and the faults waiting for it. */
struct faultsrv_pending {
	uint64_t page;
	uint64_t first_ns;	/* the first fault read: the latency starts here */
	uint64_t sum_ns;	/* of every waiting fault's read time */
	uint64_t nwait;
};

/*
 * Shared (MAP_SHARED) between the VMM and the server; only the server writes
 * it, with atomic stores, so the VMM may read any field at any time.  The
 * bitmaps and request bookkeeping outlive the server process.
 */
struct faultsrv_shared {
	uint64_t npages;
	uint64_t received;		/* pages valid here: had + placed_requested + placed_pushed */
	uint64_t had;			/* valid before the switch (faultsrv_create's @received) */
	uint64_t requested;		/* pages asked for, each once */
	uint64_t requests;		/* PAGE_REQUEST records sent */
	uint64_t placed_requested;	/* placed from a batch that answers requests */
	uint64_t placed_pushed;		/* placed from a background batch */
	uint64_t zero_placed;		/* of those, zero entries (UFFDIO_ZEROPAGE) */
	uint64_t duplicates;		/* arrivals of a page already here: dropped */
	uint64_t present;		/* of those, placed meanwhile by the other channel (EEXIST) */
	uint64_t local_zero;		/* faults on valid, never-written pages: zero page placed */
	uint64_t faults;		/* fault messages read from the uffd */
	uint64_t untimed;		/* requested pages whose fault time had no room */
	uint64_t bytes_in, bytes_out;
	uint64_t blocked_ns;		/* sum of every fault's wait: time vCPUs were blocked */
	uint64_t cpu_ns;		/* the server's CPU time, as every page had arrived */
	uint64_t verified;		/* verify on: pages checked against the source's digest as they came */
	uint64_t verify_bad;		/* of those, pages that differed (the first one ends the server) */
	struct faultsrv_latency lat;
	uint32_t status;		/* FAULTSRV_RUNNING, _COMPLETE, _FAILED */
	uint32_t npending;
	uint32_t placed_by_continue;	/* 1: memfd RAM, pages placed by UFFDIO_CONTINUE; 0: UFFDIO_COPY */
	/*
	 * Servers started on this map, this one included: written by the VMM
	 * before each fork.  A server after the first asks again for every page
	 * requested and not received, and wakes every fault the one before
	 * read and left unanswered (they are gone from the userfaultfd).
	 */
	uint32_t generation;
	uint64_t last_io_ns;		/* the last record read from or written to the source (monotonic) */
	char error[FAULTSRV_ERR_MAX];	/* why it failed; valid once status is _FAILED */
	struct channel channels[FAULTSRV_CHANNELS];	/* by role, as the server left them (fd -1: none) */
	struct faultsrv_pending pending[FAULTSRV_PENDING_MAX];
	uint64_t bits[];		/* the received bitmap, then the requested bitmap */
};

/* The VMM's handle on the server. */
struct faultsrv {
	pid_t pid;
	int ctl_fd;			/* the control socket; watch it for POLLIN */
	struct faultsrv_shared *shared;
	size_t shared_size;
	bool done, failed, exited;	/* DONE or ERROR seen; the process reaped */
	int wait_status;		/* as waitpid() gave it, once exited */
	char err[FAULTSRV_ERR_MAX];	/* why faultsrv_spawn() or the server failed */
	struct sock_filter filter_insn[FAULTSRV_FILTER_MAX];	/* the server's seccomp filter */
	unsigned short filter_len;	/* 0 until built (faultsrv_spawn() builds it) */
	/*
	 * -1 (faultsrv_create() sets it): guest RAM is anonymous, and pages are
	 * placed by UFFDIO_COPY.  Else guest RAM's memfd (set it before
	 * faultsrv_spawn()): the server keeps it, writes a page into the file
	 * (pwrite) while the guest's mapping does not show it yet, and maps it
	 * into the guest's with UFFDIO_CONTINUE (RAM registered for minor
	 * faults).  Every page not received must be in the file, allocated
	 * and never written (zero): a zero page is not written at all.
	 */
	int ram_memfd;
	bool x_lose_end_of_copy;	/* test hook (set before faultsrv_spawn()): END_OF_COPY is not sent */
};

/*
 * The shared map, before any server: the received bitmap starts as
 * @received (NULL: nothing; those pages are never requested), the figures at
 * zero.  It outlives every server process, so that another one can take
 * over.  0, or -errno with fs->err.
 */
int faultsrv_create(struct faultsrv *fs, uint64_t npages, const struct bitmap *received);

/*
 * Fork a server over the map of faultsrv_create(): it takes over the
 * @nchannels @channels (the main one, and the urgent one if any: it goes on
 * with their sequence numbers), serves @uffd, on which @ram (the map's pages,
 * MADV_DONTFORK) is registered, and with @v (NULL: none) checks each page
 * that arrives against the source's digest before placing it.  Returns 0
 * once the server is READY, having closed this process's channels (the
 * server owns them now); on failure the server is gone, the channels are
 * still the caller's, and fs->err says why.  Once a server has ended
 * (reaped: FAULTSRV_MSG_EXITED, or after PAUSED), another may be spawned on
 * the same map with new channels: it goes on where the last one stopped.
 */
int faultsrv_spawn(struct faultsrv *fs, struct channel *channels, int nchannels, int uffd, uint8_t *ram,
		   const struct verify *v);

/*
 * Ask the server to drop its connections and end with FAULTSRV_MSG_PAUSED
 * (migrate_pause); it does so as soon as it reads the control socket.
 */
void faultsrv_pause(struct faultsrv *fs);

/*
 * Build the server's seccomp filter into @fs (faultsrv_spawn() does it if
 * need be); exported for the tests.  0 or -errno with fs->err.
 */
int faultsrv_filter_build(struct faultsrv *fs);

/*
 * Take one control message without blocking: FAULTSRV_MSG_*, 0 if none, or
 * -errno.  FAULTSRV_MSG_EXITED (control socket closed) reaps the server; stop
 * watching ctl_fd then.
 */
int faultsrv_poll(struct faultsrv *fs);

/* Wait up to @timeout_ms (-1: no limit) for the server to exit: 0 if it exited 0, -EIO, -ETIMEDOUT. */
int faultsrv_wait(struct faultsrv *fs, int timeout_ms);

/* Kill (if need be), reap and unmap.  Safe on a zeroed struct and after a failed start. */
void faultsrv_destroy(struct faultsrv *fs);

/*
 * The checks the server makes on a whole RAM_PAGES (or ZERO_PAGES) record
 * of a size stream_rec_len_ok() allows, before it places a page, for a RAM
 * of @npages pages: *@count and *@flags read, 0, or -EPROTO with the reason
 * in @err.  Pure, so that a fuzz target can call them as the server does.
 */
int faultsrv_check_pages(const struct stream_rec *rec, uint64_t npages, uint32_t *count, uint32_t *flags,
			 char *err, size_t errlen);
int faultsrv_check_zero(const struct stream_rec *rec, uint64_t npages, uint32_t *count, uint32_t *flags,
			char *err, size_t errlen);

/*
 * The @p-th percentile (0..100) of the fault-service latency, in microseconds,
 * by nearest rank: exact while every fault has its sample, interpolated within
 * the histogram's bucket beyond.
 */
uint64_t faultsrv_latency_percentile(const struct faultsrv_shared *sh, double p);

/* Copy up to @max latency samples (us, in fault order) into @out; returns how many. */
size_t faultsrv_latency_samples(const struct faultsrv_shared *sh, uint32_t *out, size_t max);

static inline bool faultsrv_page_received(const struct faultsrv_shared *sh, uint64_t i)
{
	return __atomic_load_n(&sh->bits[i / 64], __ATOMIC_RELAXED) >> (i % 64) & 1;
}

#endif
