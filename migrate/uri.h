/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Migration URIs and their transports:
 *	tcp:HOST:PORT	IPv4 or IPv6 ("tcp:[::1]:4444"); an empty HOST listens on all
 *	unix:PATH	a unix stream socket
 *	file:PATH	a snapshot file (no return path)
 */
#ifndef MIGRATE_URI_H
#define MIGRATE_URI_H

#include <stdbool.h>
#include <stddef.h>

enum uri_kind { URI_TCP, URI_UNIX, URI_FILE };

struct uri {
	enum uri_kind kind;
	char host[256];
	char port[16];
	char path[256];
};

/* Parse @s into @u; 0, or -EINVAL with the reason in @err. */
int uri_parse(const char *s, struct uri *u, char *err, size_t errlen);

/* Format @u back into @buf (for messages). */
const char *uri_str(const struct uri *u, char *buf, int len);

/*
 * Source side: connect (tcp, unix) or create the file; an fd, or -errno with
 * the reason in @err.  A tcp connect gives up after @timeout_ms (0: the
 * kernel's own limit, minutes): -ETIMEDOUT.
 */
int uri_connect(const struct uri *u, int timeout_ms, char *err, size_t errlen);

/*
 * Destination side: a listening socket (tcp, unix), or the opened file; an
 * fd, or -errno with the reason in @err.  A unix socket file in the way is
 * replaced only when nobody listens on it.
 */
int uri_listen(const struct uri *u, char *err, size_t errlen);

/* Is @u a tcp: address of this host only (localhost, 127.0.0.0/8, ::1)?  unix: and file: are local too. */
bool uri_is_loopback(const struct uri *u);

/* Accept one connection on @lfd; an fd or -errno. */
int uri_accept(int lfd);

/* True if the transport has a return path (not file:). */
bool uri_has_return_path(const struct uri *u);

#endif
