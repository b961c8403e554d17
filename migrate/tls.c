// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * TLS 1.3 on a migration connection: the handshake with GnuTLS, the records
 * by the kernel (migrate/tls.h says why; docs/design.md "Trust on the wire").
 *
 * After the handshake GnuTLS gives the traffic keys, IVs and sequence
 * numbers of both directions (gnutls_record_get_state()), which are set on
 * the socket with TCP_ULP "tls" and TLS_TX / TLS_RX; the GnuTLS session is
 * then dropped without a word (no close_notify: the kernel would take a
 * non-data record for an error; the stream says when it ends).  For that
 * to be exact nothing may follow the handshake in GnuTLS's hands: TLS 1.3
 * session tickets are off (GNUTLS_NO_TICKETS), and the two ends go in step
 * (the server's word, in handshake()): the source writes nothing before it
 * has read it, the destination nothing after it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate/tls.h"
#include "vmm/log.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif

struct tls_creds {
	bool server, psk;
	gnutls_certificate_credentials_t x509;
	gnutls_psk_server_credentials_t psk_server;
	gnutls_psk_client_credentials_t psk_client;
};

/* TLS 1.3 only, and only the AEADs kernel TLS carries, AES-GCM first (the kernel most often has it). */
#define PRIORITY_X509	"NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305"
/* A key exchange with the PSK, never the PSK alone: a key that leaks later does not open a recording. */
#define PRIORITY_PSK	PRIORITY_X509 ":+ECDHE-PSK"
#define EXPORTER_LABEL	"EXPORTER-vmm-migration-binding"

static int file_ok(const char *dir, const char *name, char *path, size_t plen)
{
	snprintf(path, plen, "%s/%s", dir, name);
	return access(path, R_OK) ? -errno : 0;
}

/* The client's key: the first "IDENTITY:HEXKEY" line of keys.psk. */
static int load_psk_client(struct tls_creds *c, const char *path, char *err, size_t len)
{
	char line[1024], *colon, *nl;
	gnutls_datum_t key;
	FILE *f = fopen(path, "r");
	int ret;

	if (!f) {
		ret = -errno;
		snprintf(err, len, "cannot read %s: %s", path, strerror(-ret));
		return ret;
	}
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	nl = strchr(line, '\n');
	if (nl)
		*nl = '\0';
	colon = strchr(line, ':');
	if (!colon || colon == line || !colon[1]) {
		snprintf(err, len, "%s: the first line is not IDENTITY:HEXKEY", path);
		return -EINVAL;
	}
	*colon = '\0';
	key = (gnutls_datum_t){ (unsigned char *)colon + 1, (unsigned int)strlen(colon + 1) };
	ret = gnutls_psk_allocate_client_credentials(&c->psk_client);
	if (!ret)
		ret = gnutls_psk_set_client_credentials(c->psk_client, line, &key, GNUTLS_PSK_KEY_HEX);
	explicit_bzero(line, sizeof(line));
	if (ret < 0) {
		snprintf(err, len, "%s: %s", path, gnutls_strerror(ret));
		return -EINVAL;
	}
	return 0;
}

static int load_x509(struct tls_creds *c, const char *dir, char *err, size_t len)
{
	const char *who = c->server ? "server" : "client";
	char ca[512], cert[512], key[512], name[64];
	int ret;

	if (file_ok(dir, "ca-cert.pem", ca, sizeof(ca))) {
		snprintf(err, len, "%s has neither keys.psk (a pre-shared key) nor ca-cert.pem (x509)", dir);
		return -ENOENT;
	}
	snprintf(name, sizeof(name), "%s-cert.pem", who);
	if (file_ok(dir, name, cert, sizeof(cert)) ||
	    (snprintf(name, sizeof(name), "%s-key.pem", who), file_ok(dir, name, key, sizeof(key)))) {
		snprintf(err, len, "%s: no %s (the %s's certificate and key are %s-cert.pem and %s-key.pem)", dir,
			 name, who, who, who);
		return -ENOENT;
	}
	ret = gnutls_certificate_allocate_credentials(&c->x509);
	if (ret < 0) {
		snprintf(err, len, "%s", gnutls_strerror(ret));
		return -ENOMEM;
	}
	ret = gnutls_certificate_set_x509_trust_file(c->x509, ca, GNUTLS_X509_FMT_PEM);
	if (ret <= 0) {
		snprintf(err, len, "%s: %s", ca, ret ? gnutls_strerror(ret) : "no certificate in it");
		return -EINVAL;
	}
	ret = gnutls_certificate_set_x509_key_file(c->x509, cert, key, GNUTLS_X509_FMT_PEM);
	if (ret < 0) {
		snprintf(err, len, "%s, %s: %s", cert, key, gnutls_strerror(ret));
		return -EINVAL;
	}
	return 0;
}

int tls_creds_load(struct tls_creds **out, const char *dir, bool server, char *err, size_t len)
{
	struct tls_creds *c = calloc(1, sizeof(*c));
	char path[512];
	int ret;

	if (!c)
		return -ENOMEM;
	c->server = server;
	c->psk = file_ok(dir, "keys.psk", path, sizeof(path)) == 0;
	if (!c->psk) {
		ret = load_x509(c, dir, err, len);
	} else if (server) {
		ret = gnutls_psk_allocate_server_credentials(&c->psk_server);
		if (!ret)
			ret = gnutls_psk_set_server_credentials_file(c->psk_server, path);
		if (ret < 0)
			snprintf(err, len, "%s: %s", path, gnutls_strerror(ret));
		ret = ret < 0 ? -EINVAL : 0;
	} else {
		ret = load_psk_client(c, path, err, len);
	}
	if (ret) {
		tls_creds_free(c);
		return ret;
	}
	*out = c;
	return 0;
}

void tls_creds_free(struct tls_creds *c)
{
	if (!c)
		return;
	if (c->x509)
		gnutls_certificate_free_credentials(c->x509);
	if (c->psk_server)
		gnutls_psk_free_server_credentials(c->psk_server);
	if (c->psk_client)
		gnutls_psk_free_client_credentials(c->psk_client);
	free(c);
}

const char *tls_creds_kind(const struct tls_creds *c)
{
	return c->psk ? "PSK" : "x509";
}

/* One direction's keys to the kernel; 0 or -errno. */
static int ktls_set(gnutls_session_t s, int fd, bool rx)
{
	union {
		struct tls12_crypto_info_aes_gcm_128 g128;
		struct tls12_crypto_info_aes_gcm_256 g256;
		struct tls12_crypto_info_chacha20_poly1305 cc;
	} ci;
	gnutls_datum_t mac, iv, key;
	unsigned char seq[8];
	socklen_t size;

	if (gnutls_record_get_state(s, rx, &mac, &iv, &key, seq) < 0 || iv.size != 12)
		return -EPROTONOSUPPORT;
	memset(&ci, 0, sizeof(ci));
	switch (gnutls_cipher_get(s)) {
	case GNUTLS_CIPHER_AES_128_GCM:
		if (key.size != sizeof(ci.g128.key))
			return -EPROTONOSUPPORT;
		ci.g128.info = (struct tls_crypto_info){ TLS_1_3_VERSION, TLS_CIPHER_AES_GCM_128 };
		memcpy(ci.g128.key, key.data, key.size);
		memcpy(ci.g128.salt, iv.data, 4);
		memcpy(ci.g128.iv, iv.data + 4, 8);
		memcpy(ci.g128.rec_seq, seq, 8);
		size = sizeof(ci.g128);
		break;
	case GNUTLS_CIPHER_AES_256_GCM:
		if (key.size != sizeof(ci.g256.key))
			return -EPROTONOSUPPORT;
		ci.g256.info = (struct tls_crypto_info){ TLS_1_3_VERSION, TLS_CIPHER_AES_GCM_256 };
		memcpy(ci.g256.key, key.data, key.size);
		memcpy(ci.g256.salt, iv.data, 4);
		memcpy(ci.g256.iv, iv.data + 4, 8);
		memcpy(ci.g256.rec_seq, seq, 8);
		size = sizeof(ci.g256);
		break;
	case GNUTLS_CIPHER_CHACHA20_POLY1305:
		if (key.size != sizeof(ci.cc.key))
			return -EPROTONOSUPPORT;
		ci.cc.info = (struct tls_crypto_info){ TLS_1_3_VERSION, TLS_CIPHER_CHACHA20_POLY1305 };
		memcpy(ci.cc.key, key.data, key.size);
		memcpy(ci.cc.iv, iv.data, 12);
		memcpy(ci.cc.rec_seq, seq, 8);
		size = sizeof(ci.cc);
		break;
	default:
		return -EPROTONOSUPPORT;
	}
	size = setsockopt(fd, SOL_TLS, rx ? TLS_RX : TLS_TX, &ci, size) ? (socklen_t)errno : 0;
	explicit_bzero(&ci, sizeof(ci));
	return -(int)size;
}

bool tls_kernel_available(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	/* The ULP is refused on an unconnected socket (ENOTCONN) only once the module is there. */
	ok = setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) == 0 || errno == ENOTCONN;
	close(fd);
	return ok;
}

/* Why the handshake failed, in one line. */
static int handshake_error(gnutls_session_t s, int r, const struct tls_creds *c, char *err, size_t len)
{
	gnutls_datum_t out = { 0 };

	if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR &&
	    !gnutls_certificate_verification_status_print(gnutls_session_get_verify_cert_status(s),
							   GNUTLS_CRT_X509, &out, 0)) {
		size_t n;

		snprintf(err, len, "TLS: the %s's certificate is refused: %s", c->server ? "source" : "destination",
			 (const char *)out.data);
		gnutls_free(out.data);
		for (n = strlen(err); n && (err[n - 1] == ' ' || err[n - 1] == '.'); n--)
			err[n - 1] = '\0';
		return -EACCES;
	}
	if (r == GNUTLS_E_FATAL_ALERT_RECEIVED) {
		snprintf(err, len, "TLS: the %s refused the handshake (%s)%s", c->server ? "source" : "destination",
			 gnutls_alert_get_name(gnutls_alert_get(s)),
			 c->psk ? ": another pre-shared key there?" : ": this side's certificate (expired? from another CA?)");
		return -EACCES;
	}
	if (r == GNUTLS_E_TIMEDOUT) {
		snprintf(err, len, "TLS: the handshake did not complete in time");
		return -ETIMEDOUT;
	}
	if (r == GNUTLS_E_PREMATURE_TERMINATION || r == GNUTLS_E_PULL_ERROR || r == GNUTLS_E_PUSH_ERROR) {
		snprintf(err, len, "TLS: the %s closed the connection during the handshake (%s)%s",
			 c->server ? "source" : "destination", gnutls_strerror(r),
			 c->server ? "" : ": does it listen with --tls-creds?");
		return -ECONNRESET;
	}
	snprintf(err, len, "TLS: the handshake failed: %s%s", gnutls_strerror(r),
		 r == GNUTLS_E_UNEXPECTED_PACKET_LENGTH || r == GNUTLS_E_UNSUPPORTED_VERSION_PACKET ||
		 r == GNUTLS_E_UNEXPECTED_PACKET ? " (the peer does not speak TLS: no tls-creds there?)" :
		 !c->psk ? "" : r == GNUTLS_E_DECRYPTION_FAILED || r == GNUTLS_E_RECEIVED_ILLEGAL_PARAMETER ||
		 r == GNUTLS_E_KEYFILE_ERROR || r == GNUTLS_E_USER_ERROR ?
		 " (the peer has another pre-shared key or an identity not in keys.psk, or replays another session)" : "");
	return -EACCES;
}

/*
 * User-space TLS where the kernel has none: the channel gets one end of a
 * socketpair, and two threads (GnuTLS allows one sending and one receiving
 * at once) move its bytes through the session: the design (a plain socket
 * for poll, read, writev, and the fault server, which inherits it) stays.
 * The relay ends when either side does, and passes the end on.
 */
struct relay {
	gnutls_session_t s;
	int net, app;		/* the TLS connection; the relay's end of the pair */
	int refs;		/* threads running */
	pthread_mutex_t lock;
};

static void relay_put(struct relay *r)
{
	bool last;

	pthread_mutex_lock(&r->lock);
	last = --r->refs == 0;
	pthread_mutex_unlock(&r->lock);
	if (!last)
		return;
	gnutls_deinit(r->s);
	close(r->net);
	close(r->app);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* The channel's bytes out, encrypted. */
static void *relay_up(void *arg)
{
	struct relay *r = arg;
	char buf[16384];
	ssize_t n, w;
	size_t off;

	pthread_setname_np(pthread_self(), "tls-up");
	for (;;) {
		n = read(r->app, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (off = 0; off < (size_t)n; off += (size_t)w) {
			do
				w = gnutls_record_send(r->s, buf + off, (size_t)n - off);
			while (w == GNUTLS_E_INTERRUPTED);
			if (w < 0)
				goto out;
		}
	}
out:
	/* The channel closed (or the peer is gone): nothing more either way. */
	shutdown(r->net, SHUT_RDWR);
	shutdown(r->app, SHUT_RDWR);
	relay_put(r);
	return NULL;
}

/* The peer's records in, decrypted and checked. */
static void *relay_down(void *arg)
{
	struct relay *r = arg;
	char buf[16384];
	ssize_t n, w;
	size_t off;

	pthread_setname_np(pthread_self(), "tls-down");
	for (;;) {
		n = gnutls_record_recv(r->s, buf, sizeof(buf));
		if (n == GNUTLS_E_INTERRUPTED || n == GNUTLS_E_AGAIN)
			continue;
		if (n <= 0) {
			if (n == GNUTLS_E_DECRYPTION_FAILED || n == GNUTLS_E_MAC_VERIFY_FAILED)
				warn("TLS: a record failed authentication: tampered with or corrupted in flight; "
				     "the connection is closed");
			break;
		}
		for (off = 0; off < (size_t)n; off += (size_t)w) {
			w = send(r->app, buf + off, (size_t)n - off, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				w = 0;
			else if (w < 0)
				goto out;
		}
	}
out:
	/* The channel reads the end of the stream; what it writes fails from now on. */
	shutdown(r->app, SHUT_RDWR);
	relay_put(r);
	return NULL;
}

/* Start the relay for @s on *@fd; *@fd becomes the channel's end.  0 or -errno. */
static int relay_start(gnutls_session_t s, int *fd, char *err, size_t len)
{
	struct relay *r = calloc(1, sizeof(*r));
	pthread_attr_t attr;
	pthread_t t;
	int sv[2], ret;

	if (!r)
		return -ENOMEM;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		ret = -errno;
		free(r);
		snprintf(err, len, "TLS: cannot make the relay's socket pair: %s", strerror(-ret));
		return ret;
	}
	r->s = s;
	r->net = *fd;
	r->app = sv[1];
	r->refs = 2;
	pthread_mutex_init(&r->lock, NULL);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = -pthread_create(&t, &attr, relay_down, r);
	if (!ret && (ret = -pthread_create(&t, &attr, relay_up, r))) {
		/* relay_down runs: it ends once the pair is shut, and frees it. */
		shutdown(r->app, SHUT_RDWR);
		shutdown(r->net, SHUT_RDWR);
		relay_put(r);
		pthread_attr_destroy(&attr);
		close(sv[0]);
		snprintf(err, len, "TLS: cannot start the relay: %s", strerror(-ret));
		return ret;
	}
	pthread_attr_destroy(&attr);
	if (ret) {
		close(sv[0]);
		close(sv[1]);
		pthread_mutex_destroy(&r->lock);
		free(r);
		snprintf(err, len, "TLS: cannot start the relay: %s", strerror(-ret));
		return ret;
	}
	*fd = sv[0];
	return 0;
}

/* A session for @c on @fd, checking what @c says (and @hostname); 0 or -errno with @err. */
static int session_new(gnutls_session_t *sp, int fd, const struct tls_creds *c, const char *hostname,
		       int timeout_ms, char *err, size_t len)
{
	struct in6_addr a6;
	struct in_addr a4;
	gnutls_session_t s;
	int r;

	r = gnutls_init(&s, (c->server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NO_TICKETS | GNUTLS_NO_SIGNAL);
	if (r < 0) {
		snprintf(err, len, "TLS: %s", gnutls_strerror(r));
		return -ENOMEM;
	}
	r = gnutls_priority_set_direct(s, c->psk ? PRIORITY_PSK : PRIORITY_X509, NULL);
	if (!r && c->psk)
		r = gnutls_credentials_set(s, GNUTLS_CRD_PSK, c->server ? (void *)c->psk_server : (void *)c->psk_client);
	else if (!r)
		r = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, c->x509);
	if (!r && !c->psk) {
		/* Mutual: the destination asks for the source's certificate and checks it too. */
		if (c->server) {
			gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
			gnutls_session_set_verify_cert(s, NULL, 0);
		} else {
			if (hostname && !*hostname)
				hostname = NULL;
			gnutls_session_set_verify_cert(s, hostname, 0);
			if (hostname && inet_pton(AF_INET, hostname, &a4) != 1 && inet_pton(AF_INET6, hostname, &a6) != 1)
				r = gnutls_server_name_set(s, GNUTLS_NAME_DNS, hostname, strlen(hostname));
		}
	}
	if (r < 0) {
		snprintf(err, len, "TLS: %s", gnutls_strerror(r));
		gnutls_deinit(s);
		return -EINVAL;
	}
	gnutls_transport_set_int(s, fd);
	gnutls_handshake_set_timeout(s, timeout_ms > 0 ? (unsigned int)timeout_ms : GNUTLS_INDEFINITE_TIMEOUT);
	*sp = s;
	return 0;
}

/* The handshake, the server's word, and the binding; 0 or -errno with @err. */
static int handshake(gnutls_session_t s, const struct tls_creds *c, uint8_t binding[TLS_BINDING_LEN], char *err,
		     size_t len)
{
	int r;

	do
		r = gnutls_handshake(s);
	while (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED);
	if (r < 0) {
		/* The peer learns why at once (best effort), rather than at its deadline. */
		if (r != GNUTLS_E_FATAL_ALERT_RECEIVED && r != GNUTLS_E_PREMATURE_TERMINATION && r != GNUTLS_E_TIMEDOUT)
			gnutls_alert_send_appropriate(s, r);
		return handshake_error(s, r, c, err, len);
	}
	/*
	 * In TLS 1.3 the client's handshake ends before the server has checked
	 * the client's certificate: the server's word (one record, one byte)
	 * tells the client it was taken, or its alert why not.  It also keeps
	 * the two in step: nothing else is in flight when the kernel takes over.
	 */
	if (c->server) {
		do
			r = (int)gnutls_record_send(s, "", 1);
		while (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED);
	} else {
		char word = 1;

		do
			r = (int)gnutls_record_recv(s, &word, 1);
		while (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED);
		if (r == 1 && word)
			r = GNUTLS_E_UNEXPECTED_PACKET;
		else if (r == 0)
			r = GNUTLS_E_PREMATURE_TERMINATION;
	}
	if (r < 0)
		return handshake_error(s, r, c, err, len);
	if (gnutls_protocol_get_version(s) != GNUTLS_TLS1_3 || gnutls_record_check_pending(s)) {
		snprintf(err, len, "TLS: not a TLS 1.3 session with nothing pending");
		return -EPROTO;
	}
	if (gnutls_prf_rfc5705(s, sizeof(EXPORTER_LABEL) - 1, EXPORTER_LABEL, 0, NULL, TLS_BINDING_LEN,
			       (char *)binding) < 0) {
		snprintf(err, len, "TLS: cannot derive the session binding");
		return -EPROTO;
	}
	return 0;
}

int tls_session_start(int *fdp, const struct tls_creds *c, const char *hostname, int timeout_ms,
		      uint8_t binding[TLS_BINDING_LEN], bool *kernel, char *err, size_t len)
{
	static bool told;
	int fd = *fdp, ret;
	gnutls_session_t s;

	ret = session_new(&s, fd, c, hostname, timeout_ms, err, len);
	if (ret)
		return ret;
	ret = handshake(s, c, binding, err, len);
	if (ret) {
		gnutls_deinit(s);
		return ret;
	}
	/*
	 * Both directions, or neither: a socket whose sending side the kernel
	 * took cannot go back, one whose ULP is there without keys is plain TCP
	 * still (the relay can use it).
	 */
	*kernel = false;
	ret = setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) ? -errno : ktls_set(s, fd, false);
	if (!ret) {
		ret = ktls_set(s, fd, true);
		if (ret) {
			snprintf(err, len, "TLS: the kernel took this session's sending side but not its receiving "
				 "side (%s): %s", gnutls_cipher_get_name(gnutls_cipher_get(s)), strerror(-ret));
			gnutls_deinit(s);
			return -EPROTONOSUPPORT;
		}
		*kernel = true;
		gnutls_deinit(s);
		return 0;
	}
	if (!__atomic_exchange_n(&told, true, __ATOMIC_RELAXED))
		warn("TLS: no kernel TLS here for %s (%s; the tls module and the cipher's): the records go "
		     "through a user-space relay, slower", gnutls_cipher_get_name(gnutls_cipher_get(s)), strerror(-ret));
	ret = relay_start(s, fdp, err, len);
	if (ret)
		gnutls_deinit(s);
	return ret;
}
