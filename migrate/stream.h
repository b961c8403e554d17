/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The migration stream: a header, then typed, length-checked, checksummed
 * records, in both directions on one connection (the destination's records
 * form the return path).  The exact byte layout is in docs/design.md.
 *
 * Nothing read is trusted: stream_read_header() checks the magic, version,
 * sizes and checksum; stream_read_record() checks the type's direction, the
 * length against the caller's limit, the sequence number and the CRC before
 * the caller sees a byte of the payload.  The CRC covers every byte but the
 * page data of RAM_PAGES (stream_crc_len()): under TCG a CRC-32C of a page
 * costs more than sending it, TCP already guards the wire, and `verify on`
 * checks each page end to end with a hash that is cheap everywhere.
 */
#ifndef MIGRATE_STREAM_H
#define MIGRATE_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/ram.h"

#define STREAM_MAGIC		"VMMIGR\r\n"
#define STREAM_VERSION		2	/* 2: RAM_PAGES page data outside the CRC */
#define STREAM_HEADER_FIXED	64
#define STREAM_REC_HDR		16
#define STREAM_MAX_PAYLOAD	(2U << 20)	/* a record's payload, at most */
#define STREAM_PAGES_MAX	256		/* pages in one RAM_PAGES record */
#define STREAM_ERROR_MAX	1024		/* bytes of text in an ERROR record */

/* Header flags. */
#define STREAM_F_POSTCOPY	(1U << 0)	/* the source may switch to postcopy */
#define STREAM_F_CHANNELS	(1U << 1)	/* an urgent channel follows ACK(HEADER) (with POSTCOPY) */
#define STREAM_F_URGENT		(1U << 2)	/* this connection is that urgent channel */
#define STREAM_F_VERIFY		(1U << 3)	/* VERIFY records come at the last stop (migrate/verify.h) */
#define STREAM_F_MULTIFD	(1U << 4)	/* STREAM_MULTIFD_N() multifd connections follow (migrate/multifd.h) */
#define STREAM_F_MULTIFD_CONN	(1U << 5)	/* this connection is multifd connection STREAM_MULTIFD_N() */
#define STREAM_F_RESUME		(1U << 6)	/* postcopy recovery: this connection resumes a paused migration */
#define STREAM_MULTIFD_SHIFT	8		/* bits 8-11: the count (main) or the index (a multifd connection) */
#define STREAM_MULTIFD_MASK	(0xfU << STREAM_MULTIFD_SHIFT)
#define STREAM_MULTIFD_N(flags)	(((flags) & STREAM_MULTIFD_MASK) >> STREAM_MULTIFD_SHIFT)

/* Record types: source to destination. */
enum {
	REC_RAM_PAGES = 1,	/* u32 count, u32 0, count x u64 entry, page data */
	REC_MACHINE_STATE = 2,	/* the FDT of migrate/state.h */
	REC_END_ROUND = 3,	/* u32 round, u32 0, u64 pages still dirty */
	REC_END = 4,		/* no payload: all sent, the destination may run */
	/* Return path: destination to source. */
	REC_ACK = 0x81,		/* u32 what (ACK_*) */
	REC_ERROR = 0x82,	/* a message, UTF-8, not NUL-terminated */
};

enum { ACK_HEADER = 1, ACK_RUNNING = 2 };

/* Postcopy (docs/design.md): source to destination, then the return path. */
enum {
	REC_DISCARD = 5,	/* u32 count, u32 0, count x {u64 first page, u64 npages}: drop them */
	REC_POSTCOPY_RUN = 6,	/* no payload: load the state just received and run */
	REC_POSTCOPY_DONE = 7,	/* no payload: the source has sent every page */
	REC_ZERO_PAGES = 8,	/* u32 count, u32 flags (as RAM_PAGES), count x {u64 first page, u64 npages} */
	REC_VERIFY = 9,		/* u64 first page, u64 count, count x u64 digest (STREAM_F_VERIFY) */
	REC_MULTIFD_SYNC = 10,	/* u64 n: every multifd connection has sent its SYNC n (migrate/multifd.h) */
	REC_PAGE_REQUEST = 0x83, /* u32 count (1..256), u32 0, count x u64 page index */
	REC_END_OF_COPY = 0x84,	/* no payload: every page has arrived */
	REC_RECV_BITMAP = 0x85,	/* recovery: u64 npages, the received bitmap (ceil(npages / 64) x u64) */
};

/* RAM_PAGES flags (the u32 after the count), after the switch. */
#define PAGES_F_REQUESTED	(1U << 0)	/* this batch answers PAGE_REQUESTs; else pushed */

/* A RAM_PAGES entry: page index << 1, bit 0 set for a zero page (no data follows for it). */
#define PAGE_ENTRY_ZERO	1ULL

/* Bytes 40-63 of the header: with TLS, the main connection's session binding (migrate/tls.h); else zero. */
#define STREAM_BINDING_LEN	24

struct stream_header {
	uint32_t version;
	uint32_t flags;
	uint32_t page_size;
	uint32_t ncpus;
	uint64_t ram_size;
	uint32_t nslots;
	uint8_t binding[STREAM_BINDING_LEN];
	struct { uint64_t gpa, size; } slot[RAM_SLOTS_MAX];
};

struct stream {
	int fd;
	/*
	 * Deadlines of a reader, in ms (0: none): the first byte of the next
	 * record (or of the header) within idle_ms, the whole record within
	 * timeout_ms of it.  Bytes that trickle in do not move them.
	 */
	int idle_ms, timeout_ms;
	uint32_t seq_out, seq_in;
	uint64_t bytes_out, bytes_in;
	uint64_t max_bw;		/* bytes/s, 0 = unlimited; may change at any time */
	uint64_t bw_start_ns, bw_bytes;	/* the current rate-limit window */
	uint64_t rec_deadline_ns;	/* the record being read: whole by then (0: no deadline) */
};

struct stream_rec {
	uint32_t type;
	uint32_t len;
	void *payload;		/* the caller's buffer */
	uint32_t covered;	/* bytes of the payload read into it (all but after stream_read_head) */
};

/* A record being read a piece at a time (stream_read_some()); zero it to start. */
struct stream_rx {
	uint32_t hdr[4];
	uint32_t got;		/* bytes of header and payload so far */
	bool checked;		/* the payload's checksummed part is in and checked */
	struct stream_rec rec;	/* once the header is in */
};

/* Attach to a connected fd. */
void stream_init(struct stream *s, int fd);

/* Fill a header describing @ram and @ncpus. */
void stream_header_for(struct stream_header *h, const struct ram *ram, int ncpus, uint32_t flags);

int stream_write_header(struct stream *s, const struct stream_header *h);

/* Read and check a header (magic, version, layout, CRC); 0 or -errno with a message in @err. */
int stream_read_header(struct stream *s, struct stream_header *h, char *err, size_t errlen);

/* Write one record whose payload is the concatenation of @iov; 0 or -errno. */
int stream_write_record(struct stream *s, uint32_t type, const struct iovec *iov, int iovcnt);

/* Write a record with one flat payload. */
int stream_write(struct stream *s, uint32_t type, const void *payload, uint32_t len);

/*
 * Read one record into @buf (@cap bytes) and check it; 0, or -errno with a
 * message in @err (-EPROTO bad record, -EBADMSG checksum, -EPIPE closed,
 * -ETIMEDOUT a deadline of @s passed).
 */
int stream_read_record(struct stream *s, struct stream_rec *rec, void *buf, uint32_t cap,
		       char *err, size_t errlen);

/*
 * stream_read_record() in two steps, for a reader that places a record's bulk
 * itself (the destination reads precopy page data straight into guest RAM):
 * stream_read_head() reads the header and the part of the payload the CRC
 * covers (stream_crc_len(): all of it but a RAM_PAGES record's page data)
 * into @buf and checks both (@cap bounds the whole record, as for
 * stream_read_record()); rec->covered bytes are in @buf.  The caller then
 * checks what that part says and reads the other rec->len - rec->covered
 * bytes with stream_read_rest() into @iov, which must hold exactly that many;
 * the record's deadline runs on from its first byte.  Errors as
 * stream_read_record(); a failed rest leaves the stream unusable.
 */
int stream_read_head(struct stream *s, struct stream_rec *rec, void *buf, uint32_t cap,
		     char *err, size_t errlen);
int stream_read_rest(struct stream *s, const struct stream_rec *rec, struct iovec *iov, int iovcnt,
		     char *err, size_t errlen);
/*
 * The same without blocking, for a server that must not wait on one
 * connection while another has work: read what has arrived of the next
 * record into @buf (kept across calls with @rx, which starts zeroed).
 * Returns 1 once the record is whole and checked (*rec; @rx is ready for the
 * next), 0 if more has to come, or -errno with @err as stream_read_record().
 * The fd stays blocking for writers: this reads with MSG_DONTWAIT (sockets).
 */
int stream_read_some(struct stream *s, struct stream_rx *rx, struct stream_rec *rec, void *buf, uint32_t cap,
		     char *err, size_t errlen);

/*
 * How many leading bytes of a @len-byte payload of @type the record's CRC
 * covers: all of them, except for RAM_PAGES only the count, flags and entry
 * list (8 + 8 x count, at most @len; @payload starts with the count).
 */
uint32_t stream_crc_len(uint32_t type, const void *payload, uint32_t len);

/* True if a record of @type may have a payload of @len bytes (every reader checks it first). */
bool stream_rec_len_ok(uint32_t type, uint32_t len);

/*
 * The range list of a DISCARD or ZERO_PAGES record: @count (first, n) pairs
 * of u64 at @ranges (not aligned).  0 if every range is non-empty and inside
 * @npages pages; else -EPROTO with the first bad range in *@first and *@n.
 */
int stream_check_ranges(const uint8_t *ranges, uint32_t count, uint64_t npages, uint64_t *first, uint64_t *n);

/*
 * Peer text (an ERROR record's message) made safe to print: at most @cap - 1
 * bytes of @len, printable ASCII kept, anything else (escape sequences, NUL,
 * other bytes) as '?'; @dst NUL-terminated.
 */
void stream_sanitize(char *dst, size_t cap, const void *src, size_t len);

/*
 * True if @err (a -errno of this module's readers and writers) says the
 * connection broke (closed, reset, timed out, unreachable): postcopy pauses
 * on it and may recover over a new one.  False for bad bytes (-EPROTO,
 * -EBADMSG) and anything else.
 */
bool stream_error_is_link(int err);

/* The name of a record type, for messages. */
const char *stream_rec_name(uint32_t type);

/* Nanoseconds on the monotonic clock. */
uint64_t stream_now_ns(void);
/* Microseconds on the wall clock (CLOCK_REALTIME): for a time another process compares. */
uint64_t stream_wall_us(void);
/* Nanoseconds of CPU the calling thread has used. */
uint64_t stream_thread_cpu_ns(void);

#endif
