// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Migration URIs: parsing, connecting and listening.  Nothing here prints:
 * a failure comes back as -errno with its reason in the caller's buffer, and
 * the caller, who knows what was being done, reports it once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "migrate/uri.h"

/* The main connection and, for postcopy, its urgent channel right after. */
#define LISTEN_BACKLOG 2

static int copy_str(char *dst, size_t cap, const char *src, size_t len)
{
	if (len >= cap)
		return -ENAMETOOLONG;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

__attribute__((format(printf, 3, 4)))
static int uri_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int uri_parse(const char *s, struct uri *u, char *err, size_t errlen)
{
	const char *rest, *colon;

	memset(u, 0, sizeof(*u));
	if (!strncmp(s, "unix:", 5) || !strncmp(s, "file:", 5)) {
		u->kind = s[0] == 'u' ? URI_UNIX : URI_FILE;
		rest = s + 5;
		if (!*rest)
			return uri_err(err, errlen, "bad URI '%s': no path", s);
		/* sun_path is 108 bytes: a longer unix path cannot work. */
		if (copy_str(u->path, u->kind == URI_UNIX ? 108 : sizeof(u->path), rest, strlen(rest)))
			return uri_err(err, errlen, "bad URI '%s': path too long", s);
		return 0;
	}
	if (strncmp(s, "tcp:", 4))
		return uri_err(err, errlen, "bad URI '%s': use tcp:HOST:PORT, unix:PATH or file:PATH", s);
	u->kind = URI_TCP;
	rest = s + 4;
	if (*rest == '[') {
		const char *end = strchr(rest, ']');

		if (!end || end[1] != ':')
			return uri_err(err, errlen, "bad URI '%s': use tcp:[IPV6]:PORT", s);
		if (copy_str(u->host, sizeof(u->host), rest + 1, (size_t)(end - rest - 1)))
			return uri_err(err, errlen, "bad URI '%s': host too long", s);
		colon = end + 1;
	} else {
		colon = strrchr(rest, ':');
		if (!colon)
			return uri_err(err, errlen, "bad URI '%s': no port (tcp:HOST:PORT)", s);
		if (copy_str(u->host, sizeof(u->host), rest, (size_t)(colon - rest)))
			return uri_err(err, errlen, "bad URI '%s': host too long", s);
		if (strchr(u->host, ':'))
			return uri_err(err, errlen, "bad URI '%s': write IPv6 addresses in brackets", s);
	}
	if (!colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1) || strlen(colon + 1) > 5 ||
	    atoi(colon + 1) < 1 || atoi(colon + 1) > 65535)
		return uri_err(err, errlen, "bad URI '%s': port must be 1 to 65535", s);
	strcpy(u->port, colon + 1);
	return 0;
}

const char *uri_str(const struct uri *u, char *buf, int len)
{
	switch (u->kind) {
	case URI_TCP:
		snprintf(buf, (size_t)len, strchr(u->host, ':') ? "tcp:[%s]:%s" : "tcp:%s:%s", u->host, u->port);
		break;
	case URI_UNIX:
		snprintf(buf, (size_t)len, "unix:%s", u->path);
		break;
	case URI_FILE:
		snprintf(buf, (size_t)len, "file:%s", u->path);
		break;
	}
	return buf;
}

bool uri_has_return_path(const struct uri *u)
{
	return u->kind != URI_FILE;
}

static void tcp_tune(int fd)
{
	int one = 1;

	/* Records are written whole; small ones (acks, page requests) must not wait. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

__attribute__((format(printf, 4, 5)))
static int uri_fail(int ret, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	n = strlen(err);
	if (n < errlen)
		snprintf(err + n, errlen - n, ": %s", strerror(-ret));
	return ret;
}

static int tcp_resolve(const struct uri *u, bool passive, struct addrinfo **res, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
	int ret;

	if (passive)
		hints.ai_flags = AI_PASSIVE;
	ret = getaddrinfo(u->host[0] ? u->host : NULL, u->port, &hints, res);
	if (ret) {
		snprintf(err, errlen, "cannot resolve '%s': %s", u->host, gai_strerror(ret));
		return -EHOSTUNREACH;
	}
	return 0;
}

static int unix_sockaddr(const struct uri *u, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	strcpy(sa->sun_path, u->path);
	return 0;
}

/*
 * A TCP socket for @u, trying each address in turn: connected (@passive
 * false) or listening (true).  The fd, or -errno (with a message).
 */
static int tcp_open(const struct uri *u, bool passive, int timeout_ms, char *errbuf, size_t errlen)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	struct addrinfo *res, *ai;
	int fd = -1, err, one = 1;

	err = tcp_resolve(u, passive, &res, errbuf, errlen);
	if (err)
		return err;
	err = passive ? -EADDRNOTAVAIL : -ECONNREFUSED;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (passive)
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		/* A blocking connect gives up after SO_SNDTIMEO (EINPROGRESS), not after minutes of SYNs. */
		else if (timeout_ms > 0)
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (passive ? bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, LISTEN_BACKLOG) == 0 :
			      connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = errno == EINPROGRESS ? -ETIMEDOUT : -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return uri_fail(err, errbuf, errlen, "cannot %s tcp:%s:%s", passive ? "listen on" : "connect to",
				u->host, u->port);
	return fd;
}

/* A unix socket connected to @u's path; an fd or -errno. */
static int unix_connect(const struct uri *u)
{
	struct sockaddr_un sa;
	int fd, err;

	unix_sockaddr(u, &sa);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int uri_connect(const struct uri *u, int timeout_ms, char *err, size_t errlen)
{
	int fd = -1;

	switch (u->kind) {
	case URI_FILE:
		fd = open(u->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		return fd < 0 ? uri_fail(-errno, err, errlen, "cannot create %s", u->path) : fd;
	case URI_UNIX:
		fd = unix_connect(u);
		return fd < 0 ? uri_fail(fd, err, errlen, "cannot connect to unix:%s", u->path) : fd;
	case URI_TCP:
		fd = tcp_open(u, false, timeout_ms, err, errlen);
		if (fd >= 0)
			tcp_tune(fd);
		return fd;
	}
	return -EINVAL;
}

int uri_listen(const struct uri *u, char *errbuf, size_t errlen)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd = -1, err;

	switch (u->kind) {
	case URI_FILE:
		fd = open(u->path, O_RDONLY | O_CLOEXEC);
		return fd < 0 ? uri_fail(-errno, errbuf, errlen, "cannot open %s", u->path) : fd;
	case URI_UNIX:
		unix_sockaddr(u, &sa);
		if (lstat(u->path, &st) == 0 && S_ISSOCK(st.st_mode)) {
			/* A stale socket is replaced; a live one (someone listens) is not ours to take. */
			fd = unix_connect(u);
			if (fd >= 0) {
				close(fd);
				return uri_fail(-EADDRINUSE, errbuf, errlen, "cannot listen on unix:%s", u->path);
			}
			unlink(u->path);
		}
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
			err = -errno;
			close(fd);
			return uri_fail(err, errbuf, errlen, "cannot listen on unix:%s", u->path);
		}
		return fd;
	case URI_TCP:
		return tcp_open(u, true, 0, errbuf, errlen);
	}
	return -EINVAL;
}

bool uri_is_loopback(const struct uri *u)
{
	if (u->kind != URI_TCP)
		return true;
	return !strcmp(u->host, "localhost") || !strncmp(u->host, "127.", 4) || !strcmp(u->host, "::1") ||
	       !strcmp(u->host, "[::1]");
}

int uri_accept(int lfd)
{
	int fd;

	do
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -errno;
	tcp_tune(fd);	/* harmless on a unix socket: it fails quietly */
	return fd;
}
