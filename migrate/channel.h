/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A channel: one connection of a migration, with its role and a stream for
 * each direction.  Every connection of every migration is opened here, by
 * role: the source connects and sends the header, the destination accepts
 * and reads it.  With TLS credentials the TLS handshake (migrate/tls.h)
 * comes first, before any byte of the stream is written or read, and every
 * channel's header carries the main connection's session binding: a
 * channel that is not of the same migration is refused.
 *
 * Ownership: @tx is written by one thread, @rx read by one thread (they may
 * be different threads: the migration thread sends while the return-path
 * thread reads).  Each uses only its own half of struct stream.
 */
#ifndef MIGRATE_CHANNEL_H
#define MIGRATE_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migrate/stream.h"

struct tls_creds;
struct uri;

enum channel_role {
	CHANNEL_MAIN,		/* the stream and, on tcp and unix, its return path */
	CHANNEL_URGENT,		/* postcopy: requested pages only (QEMU's preempt channel) */
	CHANNEL_MULTIFD,	/* precopy's pages: CHANNEL_MULTIFD + i for connection i (migrate/multifd.h) */
};

struct channel {
	enum channel_role role;
	int fd;			/* -1: not open */
	/*
	 * The peer's deadline (ms, 0: none): a header or a record that has
	 * begun must be whole within it, and a write that makes no progress
	 * for that long fails.  Set before connect or accept.
	 */
	int peer_timeout_ms;
	/*
	 * TLS (set before connect or accept, like peer_timeout_ms): the
	 * credentials (NULL: plaintext), the name the client checks the
	 * server's certificate for ("" or NULL: the URI's host), and where the
	 * main connection's session binding is kept for every channel of the
	 * migration (the main connection writes it, the others are checked
	 * against it).
	 */
	const struct tls_creds *tls;
	const char *tls_hostname;
	uint8_t *tls_binding;
	bool tls_on;		/* this connection is TLS: its records are the kernel's (tls_kernel) or a relay's */
	bool tls_kernel;
	struct stream tx, rx;
};

/* A closed channel of @role. */
void channel_init(struct channel *c, enum channel_role role);

/*
 * Source: connect to @u (or create its file) and send @h with the flags of
 * the channel's role.  0, or -errno with the reason in @err; @c stays closed.
 */
int channel_connect(struct channel *c, const struct uri *u, const struct stream_header *h, char *err, size_t len);

/*
 * Destination: take the next connection on @lfd (waiting at most @timeout_ms,
 * -1: no limit) and read its header into @h; for a file: URI, @lfd is the
 * open file, which @c owns from then on.  0, or -errno with the reason in
 * @err; @c stays closed.
 */
int channel_accept(struct channel *c, int lfd, int timeout_ms, struct stream_header *h, char *err, size_t len);

/* Wake every thread blocked on @c (cancel); the owner still closes it. */
void channel_shutdown(struct channel *c);

/* Close; safe on a closed channel. */
void channel_close(struct channel *c);

/* Bytes through @c, both directions. */
uint64_t channel_bytes(const struct channel *c);

/* The name of @role ("main", "urgent", "multifd"), for messages. */
const char *channel_role_name(enum channel_role role);

#endif
