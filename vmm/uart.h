/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A 16550A UART at COM1 (0x3f8, IRQ 4).  Transmit: output goes to an fd
 * (stdout, a file, or nowhere) at once; the transmitter is always empty,
 * so a polling guest never waits and a THR-empty interrupt follows every
 * write while it is enabled.  Receive: bytes given by uart_receive() (the
 * console's stdin) wait in a 16-byte FIFO with a data-ready interrupt.
 * Interrupts are the 16550's (line status and modem status never raise
 * one); the IRQ line follows "an interrupt is pending" and is driven
 * through a callback (KVM_IRQ_LINE), so an edge-triggered I/O APIC pin sees
 * one rising edge per new interrupt.
 *
 * Output is written a line at a time while nobody types into the guest
 * (the test guest), so one guest line is never split by a host message;
 * uart_set_interactive() writes every byte at once (a shell's prompt has
 * no newline).
 */
#ifndef VMM_UART_H
#define VMM_UART_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/device_state.h"
#include "vmm/iobus.h"

#define UART_COM1_BASE	0x3f8
#define UART_COM1_IRQ	4
#define UART_NREGS	8
#define UART_FIFO_SIZE	16

typedef void uart_irq_fn(void *opaque, int level);

struct uart {
	pthread_mutex_t lock;
	int out_fd;			/* -1: output discarded */
	uint8_t ier, lcr, mcr, msr, scr, dll, dlm, fcr;
	uint8_t thr_ipending;		/* a THR-empty interrupt waits (cleared by reading IIR or writing THR) */
	uint8_t rx_count;		/* bytes in the receive FIFO */
	uint64_t rx_fifo[2];		/* those bytes, oldest in the low byte of rx_fifo[0] */
	uint8_t irq_level;		/* the line as last driven */
	uart_irq_fn *irq_fn;
	void *irq_opaque;
	int rx_space_fd;		/* eventfd written when the FIFO has room after a refusal, or -1 */
	bool rx_waiting;		/* uart_receive() was refused for want of space */
	bool interactive;
	char line[256];			/* output is written a line at a time */
	unsigned line_len;
	uint64_t tx_bytes, rx_bytes;
};

/* The registers and FIFO a migration saves and loads (node "uart"). */
extern const struct device_state uart_state;

/* Initialise @uart writing to @out_fd (-1 discards) and claim its ports on @pio. */
int uart_create(struct uart *uart, struct iobus *pio, int out_fd);

/* Drive the IRQ line through @fn (called under the UART's lock). */
void uart_set_irq(struct uart *uart, uart_irq_fn *fn, void *opaque);

/* Write every byte at once from now on; the eventfd @rx_space_fd (or -1) says when the FIFO has room again. */
void uart_set_interactive(struct uart *uart, int rx_space_fd);

/* Queue up to @len received bytes; returns how many fitted (the rest: wait for rx_space_fd). */
size_t uart_receive(struct uart *uart, const uint8_t *buf, size_t len);

/* Drive the IRQ line from the registers (after a migration loaded them). */
void uart_update_irq(struct uart *uart);

/* Write out any partial line. */
void uart_flush(struct uart *uart);

/* Flush and release. */
void uart_destroy(struct uart *uart);

#endif
