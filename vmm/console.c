// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The terminal.  readline is not thread-safe and its callback interface
 * keeps global state, so exactly one console exists, on the main thread,
 * and other threads only ever append to the queue.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "vmm/console.h"
#include "vmm/log.h"

#define QUEUE_MAX (4U << 20)	/* beyond this, output is dropped, never blocked */

static struct console *the_console;

static void console_sink(int fd, const char *buf, size_t len)
{
	struct console *con = the_console;
	uint64_t one = 1;
	uint32_t n = (uint32_t)len;
	uint8_t f = (uint8_t)fd;

	pthread_mutex_lock(&con->lock);
	if (con->queue.len + len < QUEUE_MAX) {
		strbuf_add(&con->queue, &f, 1);
		strbuf_add(&con->queue, &n, sizeof(n));
		strbuf_add(&con->queue, buf, len);
	}
	pthread_mutex_unlock(&con->lock);
	if (write(con->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return;
}

/* Print queued output above the prompt, then redraw the prompt and the typed line. */
static void console_drain(struct console *con)
{
	struct strbuf q;
	size_t off = 0;
	char *saved = NULL;
	int point = 0;

	pthread_mutex_lock(&con->lock);
	q = con->queue;
	con->queue = (struct strbuf)STRBUF_INIT;
	pthread_mutex_unlock(&con->lock);
	if (!q.len)
		goto out;
	if (con->tty && con->reading) {
		saved = rl_copy_text(0, rl_end);
		point = rl_point;
		rl_save_prompt();
		rl_replace_line("", 0);
		rl_redisplay();
	}
	while (off + 5 <= q.len) {
		uint32_t n;

		memcpy(&n, q.buf + off + 1, sizeof(n));
		if (off + 5 + n > q.len)
			break;
		log_write_direct((uint8_t)q.buf[off], q.buf + off + 5, n);
		off += 5 + n;
	}
	if (saved) {
		rl_restore_prompt();
		rl_replace_line(saved, 0);
		rl_point = point;
		rl_redisplay();
		free(saved);
	}
out:
	strbuf_release(&q);
}

static void console_wake(void *opaque, int fd, short revents)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	console_drain(opaque);
}

static void console_run_line(struct console *con, const char *line)
{
	struct strbuf out = STRBUF_INIT;

	monitor_execute(con->mon, line, &out);
	if (out.len)
		log_write_direct(STDOUT_FILENO, out.buf, out.len);
	strbuf_release(&out);
}

static void console_rl_line(char *line)
{
	struct console *con = the_console;

	if (!line) {
		/* Ctrl-D: stop reading; the VM goes on, 'quit' on a socket ends it. */
		rl_callback_handler_remove();
		loop_del(con->loop, STDIN_FILENO);
		con->reading = false;
		log_write_direct(STDOUT_FILENO, "\n", 1);
		return;
	}
	if (*line) {
		add_history(line);
		console_run_line(con, line);
	}
	free(line);
}

static char *console_before;	/* the line before the word being completed */

static char *console_complete_gen(const char *text, int state)
{
	return monitor_complete(the_console->mon, console_before ? console_before : "", text, state);
}

static char **console_complete(const char *text, int start, int end)
{
	char **m;

	rl_attempted_completion_over = 1;	/* the monitor completes file names itself, after file: */
	console_before = strndup(rl_line_buffer, (size_t)start);
	m = rl_completion_matches(text, console_complete_gen);
	free(console_before);
	console_before = NULL;
	/* A directory or a URI scheme is not a whole word yet: no blank after it. */
	if (m && !m[1] && m[0][0] && strchr("/:", m[0][strlen(m[0]) - 1]))
		rl_completion_suppress_append = 1;
	return m;
}

static void console_stdin(void *opaque, int fd, short revents)
{
	struct console *con = opaque;
	ssize_t n;
	char *nl;

	if (con->tty) {
		rl_callback_read_char();
		return;
	}
	n = read(fd, con->line + con->line_len, sizeof(con->line) - 1 - con->line_len);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		loop_del(con->loop, fd);
		con->reading = false;
		return;
	}
	con->line_len += (unsigned)n;
	con->line[con->line_len] = '\0';
	while ((nl = strchr(con->line, '\n'))) {
		*nl = '\0';
		console_run_line(con, con->line);
		con->line_len -= (unsigned)(nl + 1 - con->line);
		memmove(con->line, nl + 1, con->line_len + 1);
	}
	if (con->line_len == sizeof(con->line) - 1) {
		error(-E2BIG, "monitor line too long, dropped");
		con->line_len = 0;
	}
}

int console_init(struct console *con, struct monitor *mon, struct loop *loop, bool use_stdin)
{
	const char *home = getenv("HOME");
	int ret;

	memset(con, 0, sizeof(*con));
	con->mon = mon;
	con->loop = loop;
	con->wake_fd = -1;
	pthread_mutex_init(&con->lock, NULL);
	the_console = con;
	if (!use_stdin)
		return 0;
	con->tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
	ret = loop_add(loop, STDIN_FILENO, POLLIN, console_stdin, con);
	if (ret)
		return ret;
	con->reading = true;
	if (!con->tty)
		return 0;

	con->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (con->wake_fd < 0)
		return -errno;
	ret = loop_add(loop, con->wake_fd, POLLIN, console_wake, con);
	if (ret)
		return ret;
	if (home && asprintf(&con->history_path, "%s/.vmm_history", home) < 0)
		con->history_path = NULL;
	if (con->history_path)
		read_history(con->history_path);
	rl_readline_name = "vmm";
	rl_catch_signals = 0;
	rl_attempted_completion_function = console_complete;
	rl_callback_handler_install(MONITOR_PROMPT, console_rl_line);
	log_set_sink(console_sink);
	return 0;
}

bool console_is_interactive(const struct console *con)
{
	return con->tty && con->reading;
}

void console_interrupt(struct console *con)
{
	if (!con->tty || !con->reading)
		return;
	log_write_direct(STDOUT_FILENO, "^C\n", 3);
	rl_replace_line("", 0);
	rl_on_new_line();
	rl_redisplay();
}

void console_destroy(struct console *con)
{
	if (!the_console)
		return;
	if (con->tty) {
		log_set_sink(NULL);
		/* Give the terminal back first: the last output must not redraw the prompt. */
		if (con->reading) {
			rl_callback_handler_remove();
			log_write_direct(STDOUT_FILENO, "\n", 1);
			con->reading = false;
			loop_del(con->loop, STDIN_FILENO);
		}
		console_drain(con);
		if (con->history_path) {
			write_history(con->history_path);
			history_truncate_file(con->history_path, 1000);
		}
	}
	if (con->reading)
		loop_del(con->loop, STDIN_FILENO);
	if (con->wake_fd >= 0) {
		loop_del(con->loop, con->wake_fd);
		close(con->wake_fd);
	}
	free(con->history_path);
	strbuf_release(&con->queue);
	the_console = NULL;
}
