/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The terminal: the monitor on stdin and the guest console and logs on
 * stdout/stderr, without one corrupting the other.
 *
 * On a terminal, readline's callback interface reads the monitor's commands
 * (prompt "(vmm) ", history kept in ~/.vmm_history, tab completion) from the
 * main loop; output from other threads is queued (log_set_sink) and printed
 * by the main loop with the prompt and the half-typed line saved and
 * redrawn.  When stdin is not a terminal, commands are read a line at a
 * time and output is written directly.
 */
#ifndef VMM_CONSOLE_H
#define VMM_CONSOLE_H

#include <pthread.h>
#include <stdbool.h>

#include "vmm/loop.h"
#include "vmm/monitor.h"
#include "vmm/strbuf.h"

struct console {
	struct monitor *mon;
	struct loop *loop;
	bool tty;		/* readline is in charge of the terminal */
	bool reading;		/* stdin is watched */
	int wake_fd;		/* eventfd: queued output to print */
	pthread_mutex_t lock;
	struct strbuf queue;	/* records: fd byte, u32 length, bytes */
	char line[MONITOR_LINE_MAX];
	unsigned line_len;
	char *history_path;
};

/* Start reading monitor commands from stdin (if @use_stdin) and take over output; 0 or -errno. */
int console_init(struct console *con, struct monitor *mon, struct loop *loop, bool use_stdin);

/* True when readline owns the terminal. */
bool console_is_interactive(const struct console *con);

/* ^C at the prompt: drop the typed line and show a fresh prompt, as a shell does. */
void console_interrupt(struct console *con);

/* Print everything queued, give the terminal back, save the history. */
void console_destroy(struct console *con);

#endif
