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
#include <termios.h>
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
	if (console_is_interactive(con)) {
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

static void console_tty_raw(struct console *con, bool raw)
{
	struct termios t;

	if (!con->tty || raw == con->raw)
		return;
	if (raw) {
		if (tcgetattr(STDIN_FILENO, &con->saved_tio) < 0)
			return;
		t = con->saved_tio;
		cfmakeraw(&t);
		t.c_oflag |= OPOST | ONLCR;	/* host messages still start on a fresh line */
		if (tcsetattr(STDIN_FILENO, TCSANOW, &t) < 0)
			return;
	} else {
		tcsetattr(STDIN_FILENO, TCSANOW, &con->saved_tio);
	}
	con->raw = raw;
}

/* Give the guest what its FIFO takes; stdin is read again only once all is gone. */
static void console_rx_push(struct console *con)
{
	size_t n = uart_receive(con->serial, con->rx_buf, con->rx_len);

	con->rx_len -= (unsigned)n;
	memmove(con->rx_buf, con->rx_buf + n, con->rx_len);
}

static void console_stdin(void *opaque, int fd, short revents);

static void console_watch_stdin(struct console *con, bool on)
{
	if (on && !con->reading)
		con->reading = loop_add(con->loop, STDIN_FILENO, POLLIN, console_stdin, con) == 0;
	else if (!on && con->reading) {
		loop_del(con->loop, STDIN_FILENO);
		con->reading = false;
	}
}

static void console_rx_space(void *opaque, int fd, short revents)
{
	struct console *con = opaque;
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	if (con->rx_len)
		console_rx_push(con);
	if (!con->rx_len && con->to_guest)
		console_watch_stdin(con, true);
}

static void console_to_monitor(struct console *con)
{
	con->to_guest = false;
	console_tty_raw(con, false);
	log_write_direct(STDOUT_FILENO, "\n", 1);
	if (con->tty)
		rl_callback_handler_install(MONITOR_PROMPT, console_rl_line);
}

static void console_to_guest(struct console *con)
{
	if (con->tty) {
		rl_callback_handler_remove();
		log_write_direct(STDOUT_FILENO, "\n", 1);
	}
	con->to_guest = true;
	console_tty_raw(con, true);
}

/* Ctrl-A c at the prompt (a readline binding): switch once readline has returned. */
static int console_rl_switch(int count, int key)
{
	the_console->switch_pending = true;
	return 0;
}

static void console_quit(struct console *con)
{
	struct strbuf out = STRBUF_INIT;

	monitor_execute(con->mon, "quit", &out);
	strbuf_release(&out);
}

/* Bytes typed while stdin is the guest's: escapes act, the rest queue for the UART. */
static void console_guest_input(struct console *con, const uint8_t *buf, size_t n)
{
	static const char help[] = "\r\nC-a c  switch between the console and the monitor\r\n"
				   "C-a x  quit vmm\r\nC-a C-a  send C-a\r\n";
	size_t i;

	for (i = 0; i < n && con->to_guest; i++) {
		if (!con->escape && buf[i] == CONSOLE_ESCAPE) {
			con->escape = true;
			continue;
		}
		if (con->escape) {
			con->escape = false;
			switch (buf[i]) {
			case 'c': console_to_monitor(con); continue;	/* the rest of this read is dropped */
			case 'x': console_quit(con); return;
			case 'h': log_write_direct(STDOUT_FILENO, help, sizeof(help) - 1); continue;
			case CONSOLE_ESCAPE: break;
			default: continue;
			}
		}
		if (con->rx_len < sizeof(con->rx_buf))
			con->rx_buf[con->rx_len++] = buf[i];
	}
	console_rx_push(con);
	if (con->rx_len)
		console_watch_stdin(con, false);
}

static void console_stdin(void *opaque, int fd, short revents)
{
	struct console *con = opaque;
	uint8_t buf[256];
	ssize_t n;
	char *nl;

	if (con->to_guest) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			return;
		if (n <= 0) {
			console_watch_stdin(con, false);
			return;
		}
		console_guest_input(con, buf, (size_t)n);
		return;
	}
	if (con->tty) {
		rl_callback_read_char();
		if (con->switch_pending) {
			con->switch_pending = false;
			rl_replace_line("", 0);
			console_to_guest(con);
		}
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
		if (con->serial && con->line[0] == CONSOLE_ESCAPE && con->line[1] == 'c')
			con->to_guest = true;
		else
			console_run_line(con, con->line);
		con->line_len -= (unsigned)(nl + 1 - con->line);
		memmove(con->line, nl + 1, con->line_len + 1);
		if (con->to_guest) {
			/* The rest of what was read is the guest's. */
			console_guest_input(con, (const uint8_t *)con->line, con->line_len);
			con->line_len = 0;
			return;
		}
	}
	if (con->line_len == sizeof(con->line) - 1) {
		error(-E2BIG, "monitor line too long, dropped");
		con->line_len = 0;
	}
}

int console_init(struct console *con, struct monitor *mon, struct loop *loop, bool use_stdin,
		 struct uart *serial)
{
	const char *home = getenv("HOME");
	int ret;

	memset(con, 0, sizeof(*con));
	con->mon = mon;
	con->loop = loop;
	con->wake_fd = con->rx_space_fd = -1;
	pthread_mutex_init(&con->lock, NULL);
	the_console = con;
	if (!use_stdin)
		return 0;
	con->tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
	ret = loop_add(loop, STDIN_FILENO, POLLIN, console_stdin, con);
	if (ret)
		return ret;
	con->reading = true;
	if (serial) {
		con->serial = serial;
		con->to_guest = true;
		con->rx_space_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (con->rx_space_fd < 0)
			return -errno;
		ret = loop_add(loop, con->rx_space_fd, POLLIN, console_rx_space, con);
		if (ret)
			return ret;
		uart_set_interactive(serial, con->rx_space_fd);
	}
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
	if (serial) {
		rl_bind_keyseq("\\C-ac", console_rl_switch);
		console_tty_raw(con, true);
	} else {
		rl_callback_handler_install(MONITOR_PROMPT, console_rl_line);
	}
	log_set_sink(console_sink);
	return 0;
}

bool console_is_interactive(const struct console *con)
{
	return con->tty && con->reading && !con->to_guest;
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
	console_tty_raw(con, false);
	if (con->tty) {
		log_set_sink(NULL);
		/* Give the terminal back first: the last output must not redraw the prompt. */
		if (con->reading) {
			if (!con->to_guest)
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
	if (con->rx_space_fd >= 0) {
		if (con->serial)
			uart_set_interactive(con->serial, -1);
		loop_del(con->loop, con->rx_space_fd);
		close(con->rx_space_fd);
	}
	free(con->history_path);
	strbuf_release(&con->queue);
	the_console = NULL;
}
