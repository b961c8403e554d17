// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * 16550 UART, transmit only.  Output is collected a line at a time and
 * written through log_write(), so that it goes through the console sink when
 * the monitor prompt is on the same terminal, and one guest line is never
 * split by a host message.
 */
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "vmm/log.h"
#include "vmm/uart.h"

enum { UART_RBR_THR, UART_IER, UART_IIR_FCR, UART_LCR, UART_MCR, UART_LSR, UART_MSR, UART_SCR };

#define LCR_DLAB	0x80
#define LSR_THRE	0x20
#define LSR_TEMT	0x40
#define IIR_NO_INT	0x01

#define UART_FIELD(r)	STATE_FIELD(struct uart, r, #r, 0xff)

static const struct state_field uart_fields[] = {
	UART_FIELD(ier), UART_FIELD(iir), UART_FIELD(lcr), UART_FIELD(mcr), UART_FIELD(lsr),
	UART_FIELD(msr), UART_FIELD(scr), UART_FIELD(dll), UART_FIELD(dlm), UART_FIELD(fcr),
};

const struct device_state uart_state = {
	"uart", uart_fields, sizeof(uart_fields) / sizeof(uart_fields[0]), offsetof(struct uart, lock),
};

static void uart_flush_locked(struct uart *uart)
{
	if (uart->line_len && uart->out_fd >= 0)
		log_write(uart->out_fd, uart->line, uart->line_len);
	uart->line_len = 0;
}

static void uart_tx(struct uart *uart, uint8_t c)
{
	uart->tx_bytes++;
	uart->line[uart->line_len++] = (char)c;
	if (c == '\n' || uart->line_len == sizeof(uart->line))
		uart_flush_locked(uart);
}

static uint8_t uart_read_reg(struct uart *uart, unsigned reg)
{
	bool dlab = uart->lcr & LCR_DLAB;

	switch (reg) {
	case UART_RBR_THR: return dlab ? uart->dll : 0;
	case UART_IER: return dlab ? uart->dlm : uart->ier;
	case UART_IIR_FCR: return uart->iir | (uart->fcr & 1 ? 0xc0 : 0);
	case UART_LCR: return uart->lcr;
	case UART_MCR: return uart->mcr;
	case UART_LSR: return LSR_THRE | LSR_TEMT;
	case UART_MSR: return uart->msr;
	default: return uart->scr;
	}
}

static void uart_write_reg(struct uart *uart, unsigned reg, uint8_t v)
{
	bool dlab = uart->lcr & LCR_DLAB;

	switch (reg) {
	case UART_RBR_THR:
		if (dlab)
			uart->dll = v;
		else
			uart_tx(uart, v);
		break;
	case UART_IER:
		if (dlab)
			uart->dlm = v;
		else
			uart->ier = v & 0x0f;
		break;
	case UART_IIR_FCR: uart->fcr = v; break;
	case UART_LCR: uart->lcr = v; break;
	case UART_MCR: uart->mcr = v & 0x1f; break;
	case UART_LSR: break;
	case UART_MSR: break;
	default: uart->scr = v; break;
	}
}

static int uart_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct uart *uart = opaque;
	uint32_t i;

	pthread_mutex_lock(&uart->lock);
	/* A wider access touches consecutive registers, as on the ISA bus. */
	for (i = 0; i < len; i++) {
		unsigned reg = (unsigned)(offset + i) % UART_NREGS;

		if (is_write)
			uart_write_reg(uart, reg, data[i]);
		else
			data[i] = uart_read_reg(uart, reg);
	}
	pthread_mutex_unlock(&uart->lock);
	return 0;
}

int uart_create(struct uart *uart, struct iobus *pio, int out_fd)
{
	memset(uart, 0, sizeof(*uart));
	pthread_mutex_init(&uart->lock, NULL);
	uart->out_fd = out_fd;
	uart->iir = IIR_NO_INT;
	uart->lcr = 0x03;
	uart->msr = 0xb0;	/* CTS, DSR, DCD: a cable is attached */
	return iobus_register(pio, UART_COM1_BASE, UART_NREGS, uart_io, uart, "uart");
}

void uart_flush(struct uart *uart)
{
	pthread_mutex_lock(&uart->lock);
	uart_flush_locked(uart);
	pthread_mutex_unlock(&uart->lock);
}

void uart_destroy(struct uart *uart)
{
	uart_flush(uart);
	pthread_mutex_destroy(&uart->lock);
}
