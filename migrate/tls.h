/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * TLS 1.3 on a migration connection: GnuTLS does the handshake (a pre-shared
 * key, or x509 certificates checked both ways), then the session's keys go
 * to the kernel (kernel TLS, the `tls` module), so that the connection is a
 * plain socket again for poll, read, writev and the fault server, and every
 * record on it is encrypted and authenticated by the kernel.
 *
 * Credentials are a directory, as QEMU's tls-creds objects have them:
 *   keys.psk                     a pre-shared key: lines "IDENTITY:HEXKEY"
 *                                (the client uses the first line)
 *   ca-cert.pem                  x509: the authority both sides trust, with
 *   server-cert.pem, server-key.pem   the destination's (server) pair,
 *   client-cert.pem, client-key.pem   the source's (client) pair.
 * keys.psk present: PSK; else x509.  scripts/tls-creds makes test ones.
 */
#ifndef MIGRATE_TLS_H
#define MIGRATE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of the session binding carried in every stream header (its bytes 40-63). */
#define TLS_BINDING_LEN	24

struct tls_creds;

/*
 * Load the credentials in @dir, for the server (destination) or the client
 * (source) end.  0 and *@out, or -errno with the reason in @err.
 */
int tls_creds_load(struct tls_creds **out, const char *dir, bool server, char *err, size_t len);

void tls_creds_free(struct tls_creds *c);

/* "PSK" or "x509", for messages and info migrate. */
const char *tls_creds_kind(const struct tls_creds *c);

/*
 * The handshake on the connected socket *@fd (blocking), within
 * @timeout_ms, checking the peer (a client checks the server's certificate
 * against @hostname, unless NULL or empty); then kernel TLS both ways
 * (*@kernel true).  Where the kernel has no TLS (no module; a unix: socket)
 * a user-space relay carries the records instead (*@kernel false, said once
 * on stderr): *@fd is then replaced by a socket of the relay's, and the
 * relay owns the connection.  @binding gets TLS_BINDING_LEN bytes that only
 * the two ends of this session know (an exporter, RFC 8446 7.5).  0, or
 * -errno with one line in @err: -EACCES the peer is not trusted.
 */
int tls_session_start(int *fd, const struct tls_creds *c, const char *hostname, int timeout_ms,
		      uint8_t binding[TLS_BINDING_LEN], bool *kernel, char *err, size_t len);

/* Is kernel TLS available here (the module loads)?  For messages and tests. */
bool tls_kernel_available(void);

#endif
