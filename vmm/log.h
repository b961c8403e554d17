/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Logging: four levels to stderr, and the error-returning helpers that let a
 * function report a failure and return -errno in one line:
 *
 *	return error_errno(-errno, "open %s", path);
 *
 * Threads other than the main one must not write to the terminal while
 * readline owns it, so the whole output can be routed through a sink that the
 * main loop drains (see console.h).
 */
#ifndef VMM_LOG_H
#define VMM_LOG_H

#include <stdarg.h>

enum log_level { LOG_QUIET = -1, LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level log_level;

/* Print one message at @level ("vmm: ", "vmm: warning: " ...) to stderr. */
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Report @fmt as an error and return @err (a negative errno). */
int error(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like error(), with ": strerror(-err)" appended. */
int error_errno(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define debug(...) do { if (log_level >= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

/*
 * Route all log and console output through @fn (called with the fd it was
 * meant for and one complete chunk); NULL restores direct writes.
 */
typedef void log_sink_fn(int fd, const char *buf, size_t len);
void log_set_sink(log_sink_fn *fn);

/* Write @len bytes to @fd, through the sink if one is set.  Thread-safe. */
void log_write(int fd, const char *buf, size_t len);

/* Write all @len bytes to @fd now, bypassing the sink (retries short writes and EINTR). */
void log_write_direct(int fd, const char *buf, size_t len);

#endif
