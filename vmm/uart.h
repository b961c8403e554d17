/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A 16550 UART at COM1 (0x3f8), transmit side only: the guest's output goes
 * to an fd (stdout, a file, or nowhere).  The line status register always
 * reports the transmitter empty, so a polling guest never waits.  No receive
 * path and no interrupt yet: the registers a driver programs are kept so
 * that they read back and migrate.
 */
#ifndef VMM_UART_H
#define VMM_UART_H

#include <pthread.h>
#include <stdint.h>

#include "vmm/device_state.h"
#include "vmm/iobus.h"

#define UART_COM1_BASE	0x3f8
#define UART_NREGS	8

struct uart {
	pthread_mutex_t lock;
	int out_fd;			/* -1: output discarded */
	uint8_t ier, iir, lcr, mcr, lsr, msr, scr, dll, dlm, fcr;
	char line[256];			/* output is written a line at a time */
	unsigned line_len;
	uint64_t tx_bytes;
};

/* The registers a driver programs, as a migration saves and loads them (node "uart"). */
extern const struct device_state uart_state;

/* Initialise @uart writing to @out_fd (-1 discards) and claim its ports on @pio. */
int uart_create(struct uart *uart, struct iobus *pio, int out_fd);

/* Write out any partial line. */
void uart_flush(struct uart *uart);

/* Flush and release. */
void uart_destroy(struct uart *uart);

#endif
