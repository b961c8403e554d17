/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A growable string: monitor replies and register dumps are built in one and
 * written out in one piece.  Allocation failure is sticky and reported by
 * strbuf_failed(), so callers can format freely and check once.
 */
#ifndef VMM_STRBUF_H
#define VMM_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct strbuf {
	char *buf;
	size_t len, cap;
	bool failed;
};

#define STRBUF_INIT { 0 }

/* Append formatted text. */
void strbuf_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Append @len raw bytes. */
void strbuf_add(struct strbuf *sb, const void *data, size_t len);

/* True if an allocation failed since the last reset. */
bool strbuf_failed(const struct strbuf *sb);

/* Empty the buffer, keeping its memory. */
void strbuf_reset(struct strbuf *sb);

/* Free the memory; the buffer may be used again. */
void strbuf_release(struct strbuf *sb);

#endif
