// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Logging.  Each message is formatted into one buffer and written with one
 * write(2), so that lines from several threads never interleave mid-line.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmm/log.h"

enum log_level log_level = LOG_INFO;
static log_sink_fn *sink;

void log_set_sink(log_sink_fn *fn)
{
	__atomic_store_n(&sink, fn, __ATOMIC_RELEASE);
}

void log_write(int fd, const char *buf, size_t len)
{
	log_sink_fn *fn = __atomic_load_n(&sink, __ATOMIC_ACQUIRE);

	if (fn)
		fn(fd, buf, len);
	else
		log_write_direct(fd, buf, len);
}

void log_write_direct(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

static void log_vmsg(enum log_level level, int err, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

static void log_vmsg(enum log_level level, int err, const char *fmt, va_list ap)
{
	static const char *const prefix[] = {
		[LOG_ERROR] = "vmm: error: ", [LOG_WARN] = "vmm: warning: ",
		[LOG_INFO] = "vmm: ", [LOG_DEBUG] = "vmm: debug: ",
	};
	char buf[1024];
	int n, m;

	if (level > log_level || level < LOG_ERROR)
		return;
	n = snprintf(buf, sizeof(buf), "%s", prefix[level]);
	m = vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	n = m < 0 ? n : n + m;
	if (n > (int)sizeof(buf) - 64)
		n = (int)sizeof(buf) - 64;
	if (err)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, ": %s", strerror(-err));
	buf[n++] = '\n';
	log_write(STDERR_FILENO, buf, (size_t)n);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, 0, fmt, ap);
	va_end(ap);
}

int error(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_ERROR, 0, fmt, ap);
	va_end(ap);
	return err;
}

int error_errno(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_ERROR, err, fmt, ap);
	va_end(ap);
	return err;
}
