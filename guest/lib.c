// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lib.c - memory and string helpers and the formatter behind serial_printf.
 *
 * memset and memcpy use rep stos/movs so that the compiler cannot turn
 * their loops back into calls to themselves (-fno-builtin does not stop
 * loop-idiom recognition).  The formatter is deliberately small: every
 * conversion it accepts is one the guest's own output uses, and gcc checks
 * the call sites through the format attribute.
 */
#include <stdbool.h>
#include <stdint.h>

#include "lib.h"

void *memset(void *dst, int c, size_t n)
{
	void *d = dst;

	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
	void *d = dst;

	__asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
	return dst;
}

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return (unsigned char)*a - (unsigned char)*b;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

struct lib_out {
	char *buf;
	size_t size, len;
};

static void lib_put(struct lib_out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len++] = c;
}

static void lib_put_number(struct lib_out *o, uint64_t v, unsigned base,
			   bool negative, unsigned width, char pad)
{
	char digits[24];
	unsigned n = 0;

	do {
		digits[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (negative)
		digits[n++] = '-';
	while (width > n) {
		lib_put(o, pad);
		width--;
	}
	while (n)
		lib_put(o, digits[--n]);
}

size_t lib_vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct lib_out o = { buf, size, 0 };

	for (; *fmt; fmt++) {
		char pad = ' ';
		unsigned width = 0;
		bool is_long = false;

		if (*fmt != '%') {
			lib_put(&o, *fmt);
			continue;
		}
		fmt++;
		if (*fmt == '0')
			pad = '0', fmt++;
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (unsigned)(*fmt++ - '0');
		if (*fmt == 'l')
			is_long = true, fmt++;

		switch (*fmt) {
		case 'c':
			lib_put(&o, (char)va_arg(ap, int));
			break;
		case 's':
			for (const char *s = va_arg(ap, const char *); *s; s++)
				lib_put(&o, *s);
			break;
		case 'd': {
			int64_t v = is_long ? va_arg(ap, long) : va_arg(ap, int);

			lib_put_number(&o, v < 0 ? -(uint64_t)v : (uint64_t)v,
				       10, v < 0, width, pad);
			break;
		}
		case 'u':
		case 'x': {
			uint64_t v = is_long ? va_arg(ap, unsigned long)
					     : va_arg(ap, unsigned int);

			lib_put_number(&o, v, *fmt == 'u' ? 10 : 16, false, width, pad);
			break;
		}
		case '%':
			lib_put(&o, '%');
			break;
		default:	/* unknown conversion: show it rather than guess */
			lib_put(&o, '%');
			if (!*fmt)
				goto out;
			lib_put(&o, *fmt);
		}
	}
out:
	if (size)
		buf[o.len] = '\0';
	return o.len;
}

size_t lib_format(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = lib_vformat(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
