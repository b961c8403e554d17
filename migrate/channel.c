// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Channels (see channel.h): connect and accept by role, and the header
 * exchange that opens each connection.  The header's flags say the role:
 * STREAM_F_URGENT marks the urgent channel, so a destination can tell which
 * connection is which whatever order they arrive in.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "migrate/channel.h"
#include "migrate/tls.h"
#include "migrate/uri.h"

_Static_assert(STREAM_BINDING_LEN == TLS_BINDING_LEN, "the header carries a whole binding");

void channel_init(struct channel *c, enum channel_role role)
{
	memset(c, 0, sizeof(*c));
	c->role = role;
	c->fd = -1;
	stream_init(&c->tx, -1);
	stream_init(&c->rx, -1);
}

/*
 * TCP: a peer cut off (a link down, a host gone) is noticed within about
 * peer-timeout even on a connection that is silent for good reasons (after
 * the postcopy switch, when the guest faults on nothing and the push is
 * off): keepalive probes, and TCP_USER_TIMEOUT to fail the connection when
 * they, or data, go unanswered that long.  Not on unix: or a file.
 */
static void channel_keepalive(int fd, int ms)
{
	int domain = 0, on = 1, secs = ms / 3000 > 0 ? ms / 3000 : 1, cnt = 3;
	unsigned int user = (unsigned int)ms;
	socklen_t len = sizeof(domain);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) || (domain != AF_INET && domain != AF_INET6))
		return;
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &secs, sizeof(secs));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &secs, sizeof(secs));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user, sizeof(user));
}

static void channel_attach(struct channel *c, int fd)
{
	struct timeval tv = { c->peer_timeout_ms / 1000, (c->peer_timeout_ms % 1000) * 1000 };

	stream_init(&c->tx, fd);
	stream_init(&c->rx, fd);
	c->rx.timeout_ms = c->peer_timeout_ms;
	/* A peer that stops reading: a blocked write fails once it has made no progress for this long. */
	if (c->peer_timeout_ms) {
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		channel_keepalive(fd, c->peer_timeout_ms);
	}
	/* Last, and atomic: migration_cancel() reads it from the monitor's thread. */
	__atomic_store_n(&c->fd, fd, __ATOMIC_RELEASE);
}

/*
 * TLS on the connection just made or taken (@u: the source's URI, for the
 * name it checks; NULL on the destination): the session's binding in @own.
 * A user-space relay (no kernel TLS) gives the channel another socket.
 */
static int channel_tls(struct channel *c, const struct uri *u, uint8_t own[STREAM_BINDING_LEN], char *err,
		       size_t len)
{
	const char *host = c->tls_hostname && *c->tls_hostname ? c->tls_hostname : u ? u->host : NULL;
	int fd = c->fd, ret;

	ret = tls_session_start(&fd, c->tls, host, c->peer_timeout_ms, own, &c->tls_kernel, err, len);
	if (!ret && fd != c->fd)
		channel_attach(c, fd);	/* the relay owns the connection now */
	c->tls_on = !ret;
	return ret;
}

int channel_connect(struct channel *c, const struct uri *u, const struct stream_header *h, char *err, size_t len)
{
	struct stream_header mine = *h;
	uint8_t own[STREAM_BINDING_LEN];
	int fd, ret;

	fd = uri_connect(u, c->peer_timeout_ms, err, len);
	if (fd < 0)
		return fd;
	channel_attach(c, fd);
	/* Nothing of the guest goes before the destination is authenticated. */
	if (c->tls) {
		ret = channel_tls(c, u, own, err, len);
		if (ret) {
			channel_close(c);
			return ret;
		}
		if (c->role == CHANNEL_MAIN)
			memcpy(c->tls_binding, own, STREAM_BINDING_LEN);
		memcpy(mine.binding, c->tls_binding, STREAM_BINDING_LEN);
	}
	mine.flags &= ~(STREAM_F_URGENT | STREAM_F_MULTIFD_CONN);
	if (c->role == CHANNEL_URGENT)
		mine.flags = (mine.flags & ~(STREAM_F_CHANNELS | STREAM_F_MULTIFD | STREAM_MULTIFD_MASK)) |
			     STREAM_F_URGENT;
	if (c->role >= CHANNEL_MULTIFD)
		mine.flags = (mine.flags & ~(STREAM_F_CHANNELS | STREAM_F_MULTIFD | STREAM_MULTIFD_MASK)) |
			     STREAM_F_MULTIFD_CONN | (uint32_t)(c->role - CHANNEL_MULTIFD) << STREAM_MULTIFD_SHIFT;
	ret = stream_write_header(&c->tx, &mine);
	if (ret) {
		snprintf(err, len, "cannot send the %s channel's header: %s", channel_role_name(c->role),
			 strerror(-ret));
		channel_close(c);
	}
	return ret;
}

/* Wait up to @timeout_ms (-1: no limit) for @fd to be readable; 0, -ETIMEDOUT or -errno. */
static int wait_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int ret;

	do
		ret = poll(&p, 1, timeout_ms);
	while (ret < 0 && errno == EINTR);
	if (ret < 0)
		return -errno;
	/* A listening socket shut down (migrate_cancel): nobody will come. */
	if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
		return -ECANCELED;
	return ret ? 0 : -ETIMEDOUT;
}

/*
 * A destination with TLS and a source without: the source's first bytes are
 * a vmm stream's magic, in plaintext.  Its header is read (so that the
 * source, which then reads its return path, is not reset) and it is told in
 * plaintext what to do; nothing else is read.  -EACCES then, else 0.
 */
static int refuse_plaintext(struct channel *c, char *err, size_t len)
{
	static const char why[] = "this destination takes TLS only: set tls-creds here too "
				  "(migrate_set_parameter tls-creds DIR)";
	struct stream_header h;
	char magic[8];

	if (wait_readable(c->fd, c->peer_timeout_ms ? c->peer_timeout_ms : -1) ||
	    recv(c->fd, magic, sizeof(magic), MSG_PEEK) != (ssize_t)sizeof(magic) ||
	    memcmp(magic, STREAM_MAGIC, sizeof(magic)))
		return 0;	/* the handshake says what it is */
	if (!stream_read_header(&c->rx, &h, err, len))
		stream_write(&c->tx, REC_ERROR, why, sizeof(why) - 1);
	snprintf(err, len, "TLS: the %s connection is plaintext (the source has no tls-creds): told so, refused",
		 channel_role_name(c->role));
	return -EACCES;
}

int channel_accept(struct channel *c, int lfd, int timeout_ms, struct stream_header *h, char *err, size_t len)
{
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);
	const char *role = channel_role_name(c->role);
	uint8_t own[STREAM_BINDING_LEN];
	int fd, ret;

	/* A file is a stream of its own: no one to accept. */
	if (getsockname(lfd, (struct sockaddr *)&sa, &salen) < 0 && errno == ENOTSOCK) {
		fd = lfd;
	} else {
		ret = wait_readable(lfd, timeout_ms);
		if (ret == -ETIMEDOUT) {
			snprintf(err, len, "no %s channel came within %d s", role, timeout_ms / 1000);
			return ret;
		}
		fd = ret ? ret : uri_accept(lfd);
		if (fd < 0) {
			snprintf(err, len, "cannot accept the %s channel: %s", role, strerror(-fd));
			return fd;
		}
	}
	channel_attach(c, fd);
	/* Nothing of the guest is read before the source is authenticated. */
	ret = c->tls && fd != lfd ? refuse_plaintext(c, err, len) : 0;
	if (!ret && c->tls && fd != lfd)
		ret = channel_tls(c, NULL, own, err, len);
	if (!ret)
		ret = stream_read_header(&c->rx, h, err, len);
	/* Every channel of one migration carries the main connection's session binding: no third party joins. */
	if (!ret && c->tls && fd != lfd &&
	    memcmp(h->binding, c->role == CHANNEL_MAIN ? own : c->tls_binding, STREAM_BINDING_LEN)) {
		snprintf(err, len, "TLS: the %s connection is not bound to this migration's session: refused", role);
		ret = -EACCES;
	} else if (!ret && c->tls && c->role == CHANNEL_MAIN) {
		memcpy(c->tls_binding, own, STREAM_BINDING_LEN);
	}
	if (!ret && (!!(h->flags & STREAM_F_URGENT) != (c->role == CHANNEL_URGENT) ||
		     !!(h->flags & STREAM_F_MULTIFD_CONN) != (c->role >= CHANNEL_MULTIFD) ||
		     (c->role >= CHANNEL_MULTIFD && STREAM_MULTIFD_N(h->flags) != (uint32_t)(c->role - CHANNEL_MULTIFD)))) {
		snprintf(err, len, "the connection is not this migration's %s channel", role);
		ret = -EPROTO;
	}
	if (ret)
		channel_close(c);	/* a file's too: it was ours */
	return ret;
}

void channel_shutdown(struct channel *c)
{
	int fd = __atomic_load_n(&c->fd, __ATOMIC_ACQUIRE);

	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
}

void channel_close(struct channel *c)
{
	int fd = __atomic_exchange_n(&c->fd, -1, __ATOMIC_ACQ_REL);

	if (fd >= 0)
		close(fd);
	c->tx.fd = c->rx.fd = -1;
}

uint64_t channel_bytes(const struct channel *c)
{
	return c->tx.bytes_out + c->rx.bytes_in;
}

const char *channel_role_name(enum channel_role role)
{
	return role == CHANNEL_URGENT ? "urgent" : role >= CHANNEL_MULTIFD ? "multifd" : "main";
}
