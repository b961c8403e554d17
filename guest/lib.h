/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * lib.h - the small part of a C library the guest needs.
 *
 * The compiler may emit calls to memset and memcpy on its own, so those
 * keep their standard names; the rest is a printf-style formatter that
 * knows exactly the conversions this guest uses.
 */
#ifndef GUEST_LIB_H
#define GUEST_LIB_H

#include <stdarg.h>
#include <stddef.h>

void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
int strcmp(const char *a, const char *b);
size_t strlen(const char *s);

/*
 * Format into buf (always NUL-terminated, truncated to size).  Knows %c %s
 * %d %u %x, the l modifier, and for numbers a 0 flag and a field width.
 * Returns the length written.
 */
size_t lib_vformat(char *buf, size_t size, const char *fmt, va_list ap);
size_t lib_format(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
