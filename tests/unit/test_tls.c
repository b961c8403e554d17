// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests: TLS on a migration connection (migrate/tls.c), over TCP on
 * loopback, with credentials made by scripts/tls-creds.  Both ends of each
 * handshake run here (the server on a thread).  Trusted peers get the same
 * session binding and carry bytes both ways (through kernel TLS where the
 * kernel has it, else the user-space relay); a wrong key, a certificate
 * from another CA, an expired one, a wrong host name, a plaintext peer, a
 * replayed recording of a session and a byte flipped in flight are refused,
 * and the flipped byte never reaches the reader.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate/channel.h"
#include "migrate/stream.h"
#include "migrate/tls.h"
#include "migrate/uri.h"
#include "tests/unit/test.h"

#define TIMEOUT_MS 20000

static char dir[64];	/* a/ b/ exp/: scripts/tls-creds */

static int listen_any(uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len))
		return -1;
	*port = ntohs(sa.sin_port);
	return fd;
}

static int connect_to(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

struct end {
	struct tls_creds *creds;
	const char *hostname;
	int fd, ret;
	bool kernel;
	uint8_t binding[TLS_BINDING_LEN];
	char err[256];
};

static void *server_main(void *arg)
{
	struct end *e = arg;

	e->ret = tls_session_start(&e->fd, e->creds, NULL, TIMEOUT_MS, e->binding, &e->kernel, e->err, sizeof(e->err));
	if (e->ret)
		shutdown(e->fd, SHUT_RDWR);	/* as the destination closes a refused connection */
	return NULL;
}

static struct tls_creds *load(const char *sub, bool server)
{
	struct tls_creds *c = NULL;
	char path[128], err[256];
	int ret;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	ret = tls_creds_load(&c, path, server, err, sizeof(err));
	if (ret)
		fprintf(stderr, "  %s: %s\n", path, err);
	CHECK_EQ(ret, 0);
	return c;
}

/* A handshake between @srv and @cli: both ends' results. */
static void handshake(const char *srv, const char *cli, const char *hostname, struct end *s, struct end *c)
{
	uint16_t port;
	int lfd = listen_any(&port);
	pthread_t t;

	memset(s, 0, sizeof(*s));
	memset(c, 0, sizeof(*c));
	s->creds = load(srv, true);
	c->creds = load(cli, false);
	c->hostname = hostname;
	c->fd = connect_to(port);
	s->fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	CHECK(lfd >= 0 && c->fd >= 0 && s->fd >= 0);
	close(lfd);
	pthread_create(&t, NULL, server_main, s);
	c->ret = tls_session_start(&c->fd, c->creds, c->hostname, TIMEOUT_MS, c->binding, &c->kernel, c->err,
				   sizeof(c->err));
	if (c->ret)
		shutdown(c->fd, SHUT_RDWR);	/* the server's handshake ends too */
	pthread_join(t, NULL);
	if (s->ret && !c->ret)
		shutdown(c->fd, SHUT_RDWR);
	if (s->ret || c->ret)
		printf("     server: %s\n     client: %s\n", s->ret ? s->err : "ok", c->ret ? c->err : "ok");
}

static void done(struct end *s, struct end *c)
{
	close(s->fd);
	close(c->fd);
	tls_creds_free(s->creds);
	tls_creds_free(c->creds);
}

/* Bytes each way, whole and in order. */
static void check_carries(struct end *s, struct end *c)
{
	char out[100000], in[100000];
	size_t got;
	ssize_t n;
	int i;

	for (i = 0; i < (int)sizeof(out); i++)
		out[i] = (char)(i * 7 + 3);
	for (i = 0; i < 2; i++) {
		struct end *w = i ? s : c, *r = i ? c : s;

		CHECK_EQ(write(w->fd, out, sizeof(out)), sizeof(out));
		for (got = 0; got < sizeof(in); got += (size_t)n) {
			n = read(r->fd, in + got, sizeof(in) - got);
			if (n <= 0)
				break;
		}
		CHECK_EQ(got, sizeof(in));
		CHECK(!memcmp(in, out, sizeof(in)));
	}
}

static void psk_trusted(void)
{
	struct end s, c;

	handshake("a/psk", "a/psk", NULL, &s, &c);
	CHECK_EQ(s.ret, 0);
	CHECK_EQ(c.ret, 0);
	CHECK(!memcmp(s.binding, c.binding, TLS_BINDING_LEN));
	CHECK_EQ(s.kernel, c.kernel);
	printf("     records by %s\n", c.kernel ? "kernel TLS" : "the user-space relay (no kernel TLS here)");
	if (!s.ret && !c.ret)
		check_carries(&s, &c);
	done(&s, &c);
}

static void x509_trusted(void)
{
	struct end s, c, s2, c2;

	handshake("a/x509", "a/x509", "127.0.0.1", &s, &c);
	CHECK_EQ(s.ret, 0);
	CHECK_EQ(c.ret, 0);
	CHECK(!memcmp(s.binding, c.binding, TLS_BINDING_LEN));
	if (!s.ret && !c.ret)
		check_carries(&s, &c);
	/* Another session, another binding. */
	handshake("a/x509", "a/x509", "localhost", &s2, &c2);
	CHECK_EQ(c2.ret, 0);
	CHECK(memcmp(s.binding, s2.binding, TLS_BINDING_LEN));
	done(&s, &c);
	done(&s2, &c2);
}

static void refused(const char *srv, const char *cli, const char *hostname, const char *says)
{
	struct end s, c;

	handshake(srv, cli, hostname, &s, &c);
	CHECK(s.ret != 0);
	CHECK(c.ret != 0);
	CHECK(strstr(s.err, says) || strstr(c.err, says));
	CHECK(!strchr(s.err, '\n') && !strchr(c.err, '\n'));
	done(&s, &c);
}

static void psk_wrong_key(void)
{
	refused("a/psk", "b/psk", NULL, "TLS");
}

static void x509_other_ca(void)
{
	refused("a/x509", "b/x509", "localhost", "certificate");
}

/* Expired, from the right CA: the destination's certificate, then the source's. */
static void x509_expired(void)
{
	refused("exp/x509", "a/x509", "localhost", "expired");
	refused("a/x509", "exp/x509", "localhost", "expired");
}

static void x509_wrong_host(void)
{
	refused("a/x509", "a/x509", "elsewhere.example", "certificate");
}

static void plaintext_peer(void)
{
	static const char header[] = "VMMIGR\r\n\2\0\0\0\104\0\0\0";
	struct tls_creds *cr = load("a/psk", true);
	uint16_t port;
	int lfd = listen_any(&port), cfd = connect_to(port), sfd = accept4(lfd, NULL, NULL, 0), ret;
	uint8_t b[TLS_BINDING_LEN];
	char err[256];
	bool k;

	CHECK_EQ(write(cfd, header, sizeof(header) - 1), sizeof(header) - 1);
	shutdown(cfd, SHUT_WR);
	ret = tls_session_start(&sfd, cr, NULL, TIMEOUT_MS, b, &k, err, sizeof(err));
	printf("     %s\n", err);
	CHECK(ret != 0);
	CHECK(strstr(err, "TLS") != NULL);
	close(cfd);
	close(sfd);
	close(lfd);
	tls_creds_free(cr);
}

/* A proxy between the client and the server: it records the client's bytes, or flips one. */
struct proxy {
	int lfd, up;		/* listens for the client; connects to the server */
	uint16_t server_port;
	long flip_at;		/* flip the byte at this offset of the client's bytes (-1: none) */
	char rec[65536];	/* the client's bytes */
	size_t nrec;
};

static void *proxy_main(void *arg)
{
	struct proxy *p = arg;
	int cfd = accept4(p->lfd, NULL, NULL, 0), sfd = connect_to(p->server_port);
	struct pollfd fds[2] = { { .fd = cfd, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
	char buf[16384];
	size_t from_client = 0;

	while (cfd >= 0 && sfd >= 0 && poll(fds, 2, TIMEOUT_MS) > 0) {
		ssize_t n;
		int i;

		for (i = 0; i < 2; i++) {
			if (!fds[i].revents)
				continue;
			n = read(fds[i].fd, buf, sizeof(buf));
			if (n <= 0)
				goto out;
			if (i == 0) {
				if (p->flip_at >= 0 && (size_t)p->flip_at >= from_client &&
				    (size_t)p->flip_at < from_client + (size_t)n)
					buf[p->flip_at - (long)from_client] ^= 0x20;
				if (p->nrec + (size_t)n <= sizeof(p->rec)) {
					memcpy(p->rec + p->nrec, buf, (size_t)n);
					p->nrec += (size_t)n;
				}
				from_client += (size_t)n;
			}
			if (write(fds[!i].fd, buf, (size_t)n) != n)
				goto out;
		}
	}
out:
	close(cfd);
	close(sfd);
	return NULL;
}

/* Client and server through a proxy (@flip_at: a byte of the client's to flip). */
static void via_proxy(struct proxy *p, long flip_at, struct end *s, struct end *c, pthread_t *t)
{
	uint16_t port, pport;
	int lfd = listen_any(&port);
	pthread_t st;

	memset(p, 0, sizeof(*p));
	memset(s, 0, sizeof(*s));
	memset(c, 0, sizeof(*c));
	p->lfd = listen_any(&pport);
	p->server_port = port;
	p->flip_at = flip_at;
	pthread_create(t, NULL, proxy_main, p);
	s->creds = load("a/psk", true);
	c->creds = load("a/psk", false);
	c->fd = connect_to(pport);
	s->fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	close(lfd);
	pthread_create(&st, NULL, server_main, s);
	c->ret = tls_session_start(&c->fd, c->creds, NULL, TIMEOUT_MS, c->binding, &c->kernel, c->err,
				   sizeof(c->err));
	pthread_join(st, NULL);
}

static void tampered_in_flight(void)
{
	struct end s, c;
	struct proxy p;
	pthread_t t;
	char out[4096], in[4096];
	size_t got = 0;
	ssize_t n = 0;
	size_t hs;

	/* First learn how long the client's handshake is, then flip a byte just past it. */
	via_proxy(&p, -1, &s, &c, &t);
	CHECK_EQ(c.ret, 0);
	CHECK_EQ(s.ret, 0);
	usleep(100000);
	hs = p.nrec;
	done(&s, &c);
	pthread_join(t, NULL);
	close(p.lfd);

	via_proxy(&p, (long)hs + 100, &s, &c, &t);
	CHECK_EQ(c.ret, 0);
	CHECK_EQ(s.ret, 0);
	memset(out, 'x', sizeof(out));
	CHECK_EQ(write(c.fd, out, sizeof(out)), sizeof(out));
	while (got < sizeof(in) && (n = read(s.fd, in + got, sizeof(in) - got)) > 0)
		got += (size_t)n;
	printf("     the reader got %zu bytes, then %s\n", got, n < 0 ? strerror(errno) : "the end");
	CHECK(got < sizeof(in));	/* the record with the flipped byte never arrives */
	CHECK(n <= 0);
	done(&s, &c);
	pthread_join(t, NULL);
	close(p.lfd);
}

static void replayed_session(void)
{
	struct end s, c;
	struct proxy p;
	pthread_t t, st;
	char msg[] = "one whole record of the first session";
	uint16_t port;
	int lfd, cfd;
	struct end s2;

	via_proxy(&p, -1, &s, &c, &t);
	CHECK_EQ(c.ret, 0);
	CHECK_EQ(write(c.fd, msg, sizeof(msg)), sizeof(msg));
	usleep(100000);
	done(&s, &c);
	pthread_join(t, NULL);
	close(p.lfd);
	/* The client's recorded bytes, to a new server. */
	memset(&s2, 0, sizeof(s2));
	s2.creds = load("a/psk", true);
	lfd = listen_any(&port);
	cfd = connect_to(port);
	s2.fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	close(lfd);
	pthread_create(&st, NULL, server_main, &s2);
	CHECK_EQ(write(cfd, p.rec, p.nrec), p.nrec);
	pthread_join(st, NULL);
	printf("     %s\n", s2.ret ? s2.err : "accepted");
	CHECK(s2.ret != 0);
	close(cfd);
	close(s2.fd);
	tls_creds_free(s2.creds);
}

/* A source's channel of @role with its own migration's binding buffer. */
static int source_channel(struct channel *c, enum channel_role role, struct tls_creds *cr, uint8_t *binding,
			  uint16_t port)
{
	struct stream_header h;
	char spec[64], err[256];
	struct uri u;
	int ret;

	channel_init(c, role);
	c->peer_timeout_ms = TIMEOUT_MS;
	c->tls = cr;
	c->tls_hostname = "";
	c->tls_binding = binding;
	memset(&h, 0, sizeof(h));
	h.version = STREAM_VERSION;
	h.flags = STREAM_F_POSTCOPY | STREAM_F_CHANNELS;
	h.page_size = 4096;
	h.ram_size = 1 << 20;
	h.ncpus = 1;
	h.nslots = 1;
	h.slot[0].size = 1 << 20;
	snprintf(spec, sizeof(spec), "tcp:127.0.0.1:%u", port);
	CHECK_EQ(uri_parse(spec, &u, err, sizeof(err)), 0);
	ret = channel_connect(c, &u, &h, err, sizeof(err));
	if (ret)
		printf("     source: %s\n", err);
	return ret;
}

struct acceptor {
	struct channel c;
	int lfd, ret;
	struct stream_header h;
	char err[256];
};

static void *accept_main(void *arg)
{
	struct acceptor *a = arg;

	a->ret = channel_accept(&a->c, a->lfd, TIMEOUT_MS, &a->h, a->err, sizeof(a->err));
	return NULL;
}

/*
 * A third party with valid credentials (the same PSK) that opens a channel
 * while a migration waits for its urgent one: refused, its own session's
 * binding is not the migration's; the real urgent channel is then taken.
 */
static void third_party_channel(void)
{
	struct tls_creds *scr = load("a/psk", true), *ccr = load("a/psk", false);
	uint8_t dst_binding[TLS_BINDING_LEN] = { 0 }, src_binding[TLS_BINDING_LEN], other_binding[TLS_BINDING_LEN];
	struct channel src_main, src_urgent, intruder;
	struct acceptor a = { .ret = 0 };
	pthread_t t;
	uint16_t port;

	a.lfd = listen_any(&port);
	channel_init(&a.c, CHANNEL_MAIN);
	a.c.peer_timeout_ms = TIMEOUT_MS;
	a.c.tls = scr;
	a.c.tls_binding = dst_binding;
	pthread_create(&t, NULL, accept_main, &a);
	CHECK_EQ(source_channel(&src_main, CHANNEL_MAIN, ccr, src_binding, port), 0);
	pthread_join(t, NULL);
	CHECK_EQ(a.ret, 0);
	CHECK(!memcmp(dst_binding, src_binding, TLS_BINDING_LEN));
	/* The intruder's urgent channel carries its own session's binding (a main connection of its own). */
	channel_init(&a.c, CHANNEL_URGENT);
	a.c.peer_timeout_ms = TIMEOUT_MS;
	a.c.tls = scr;
	a.c.tls_binding = dst_binding;
	pthread_create(&t, NULL, accept_main, &a);
	memset(other_binding, 0x5a, sizeof(other_binding));
	source_channel(&intruder, CHANNEL_URGENT, ccr, other_binding, port);
	pthread_join(t, NULL);
	printf("     %s\n", a.err);
	CHECK_EQ(a.ret, -EACCES);
	CHECK(strstr(a.err, "not bound to this migration") != NULL);
	channel_close(&intruder);
	/* The migration's own urgent channel. */
	pthread_create(&t, NULL, accept_main, &a);
	CHECK_EQ(source_channel(&src_urgent, CHANNEL_URGENT, ccr, src_binding, port), 0);
	pthread_join(t, NULL);
	CHECK_EQ(a.ret, 0);
	channel_close(&a.c);
	channel_close(&src_main);
	channel_close(&src_urgent);
	close(a.lfd);
	tls_creds_free(scr);
	tls_creds_free(ccr);
}

static void bad_dirs(void)
{
	struct tls_creds *c = NULL;
	char err[256];

	CHECK_EQ(tls_creds_load(&c, "/nonexistent", true, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "keys.psk") != NULL);
	CHECK(c == NULL);
}

static void make_creds(void)
{
	char cmd[512];

	snprintf(dir, sizeof(dir), "/tmp/vmm-test-tls.XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	snprintf(cmd, sizeof(cmd), "scripts/tls-creds %s/a >/dev/null && scripts/tls-creds %s/b >/dev/null && "
		 "scripts/tls-creds --expired --ca %s/a/x509 %s/exp >/dev/null", dir, dir, dir, dir);
	CHECK_EQ(system(cmd), 0);
}

static void cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK_EQ(system(cmd), 0);
}

TEST_MAIN(TEST(make_creds), TEST(bad_dirs), TEST(psk_trusted), TEST(x509_trusted), TEST(psk_wrong_key),
	  TEST(x509_other_ca), TEST(x509_expired), TEST(x509_wrong_host), TEST(plaintext_peer),
	  TEST(tampered_in_flight), TEST(replayed_session), TEST(third_party_channel), TEST(cleanup))
