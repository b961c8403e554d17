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
 *
 * With a serial line (a Linux guest), stdin is the guest's console first,
 * as with QEMU's -nographic: every byte goes to the UART (the terminal in
 * raw mode, so ^C reaches the guest), except the escapes after Ctrl-A:
 * "c" switches to the monitor and back, "x" quits, "h" lists them, and a
 * second Ctrl-A sends one.  Bytes the UART's FIFO cannot take yet wait
 * here, and stdin is not read until they are gone.
 */
#ifndef VMM_CONSOLE_H
#define VMM_CONSOLE_H

#include <pthread.h>
#include <stdbool.h>
#include <termios.h>

#include "vmm/loop.h"
#include "vmm/monitor.h"
#include "vmm/strbuf.h"
#include "vmm/uart.h"

#define CONSOLE_ESCAPE	0x01	/* Ctrl-A */

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
	struct uart *serial;	/* stdin can go to this guest console, or NULL */
	bool to_guest;		/* it does now */
	bool escape;		/* the last byte was Ctrl-A */
	bool switch_pending;	/* Ctrl-A c typed at the monitor prompt */
	bool raw;		/* the terminal is in raw mode; saved_tio restores it */
	struct termios saved_tio;
	int rx_space_fd;	/* eventfd: the UART has room again */
	uint8_t rx_buf[4096];	/* bytes for the guest that its FIFO has not taken */
	unsigned rx_len;
};

/*
 * Start reading stdin (if @use_stdin): monitor commands, or with @serial
 * the guest's console input; take over output.  0 or -errno.
 */
int console_init(struct console *con, struct monitor *mon, struct loop *loop, bool use_stdin,
		 struct uart *serial);

/* True when readline owns the terminal (the monitor prompt is shown). */
bool console_is_interactive(const struct console *con);

/* ^C at the prompt: drop the typed line and show a fresh prompt, as a shell does. */
void console_interrupt(struct console *con);

/* Print everything queued, give the terminal back, save the history. */
void console_destroy(struct console *con);

#endif
