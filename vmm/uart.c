// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * 16550A UART.  Output is collected a line at a time (or byte by byte when
 * interactive) and written through log_write(), so that it goes through the
 * console sink when the monitor prompt is on the same terminal.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "vmm/log.h"
#include "vmm/uart.h"

enum { UART_RBR_THR, UART_IER, UART_IIR_FCR, UART_LCR, UART_MCR, UART_LSR, UART_MSR, UART_SCR };

#define LCR_DLAB	0x80
#define LSR_DR		0x01
#define LSR_THRE	0x20
#define LSR_TEMT	0x40
#define IER_RDI		0x01	/* received data available */
#define IER_THRI	0x02	/* transmitter holding register empty */
#define IIR_NO_INT	0x01
#define IIR_THRI	0x02
#define IIR_RDI		0x04
#define IIR_FIFO	0xc0	/* FIFOs enabled: a 16550A */
#define FCR_ENABLE	0x01
#define FCR_CLEAR_RX	0x02
#define MCR_LOOP	0x10

#define UART_FIELD(r, max)	STATE_FIELD(struct uart, r, #r, max)

static const struct state_field uart_fields[] = {
	UART_FIELD(ier, 0x0f), UART_FIELD(lcr, 0xff), UART_FIELD(mcr, 0x1f), UART_FIELD(msr, 0xff),
	UART_FIELD(scr, 0xff), UART_FIELD(dll, 0xff), UART_FIELD(dlm, 0xff), UART_FIELD(fcr, 0xff),
	STATE_FIELD(struct uart, thr_ipending, "thr-ipending", 1),
	STATE_FIELD(struct uart, rx_count, "rx-count", UART_FIFO_SIZE),
	STATE_FIELD(struct uart, rx_fifo[0], "rx-fifo0", UINT64_MAX),
	STATE_FIELD(struct uart, rx_fifo[1], "rx-fifo1", UINT64_MAX),
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

/* The interrupt the IIR shows, highest priority first. */
static uint8_t uart_iir(const struct uart *uart)
{
	if ((uart->ier & IER_RDI) && uart->rx_count)
		return IIR_RDI;
	if ((uart->ier & IER_THRI) && uart->thr_ipending)
		return IIR_THRI;
	return IIR_NO_INT;
}

static void uart_update_irq_locked(struct uart *uart)
{
	/* OUT2 (MCR bit 3) gates the line to the PIC on a PC; Linux sets it, and a polling guest never enables IER. */
	uint8_t level = uart_iir(uart) != IIR_NO_INT && (uart->mcr & 0x08);

	if (level != uart->irq_level && uart->irq_fn) {
		uart->irq_level = level;
		uart->irq_fn(uart->irq_opaque, level);
	}
}

static uint8_t uart_rx_pop(struct uart *uart)
{
	uint8_t c = (uint8_t)uart->rx_fifo[0];

	uart->rx_fifo[0] = uart->rx_fifo[0] >> 8 | uart->rx_fifo[1] << 56;
	uart->rx_fifo[1] >>= 8;
	uart->rx_count--;
	return c;
}

static void uart_rx_push(struct uart *uart, uint8_t c)
{
	unsigned i = uart->rx_count++, shift = 8 * (i % 8);

	/* Masked: a loaded FIFO may carry stale bytes past its count. */
	uart->rx_fifo[i / 8] = (uart->rx_fifo[i / 8] & ~(0xffULL << shift)) | (uint64_t)c << shift;
}

static void uart_rx_clear(struct uart *uart)
{
	uart->rx_count = 0;
	uart->rx_fifo[0] = uart->rx_fifo[1] = 0;
}

/* The FIFO has room: tell the console if it was waiting (no lock needed for an eventfd). */
static void uart_rx_space(struct uart *uart)
{
	uint64_t one = 1;

	if (uart->rx_waiting && uart->rx_space_fd >= 0 && uart->rx_count < UART_FIFO_SIZE) {
		uart->rx_waiting = false;
		if (write(uart->rx_space_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			return;
	}
}

static void uart_tx(struct uart *uart, uint8_t c)
{
	uart->tx_bytes++;
	if (uart->mcr & MCR_LOOP) {
		/* Loopback: the byte comes back as received (Linux's probe uses it). */
		if (uart->rx_count < UART_FIFO_SIZE)
			uart_rx_push(uart, c);
		return;
	}
	uart->line[uart->line_len++] = (char)c;
	if (uart->interactive || c == '\n' || uart->line_len == sizeof(uart->line))
		uart_flush_locked(uart);
}

static uint8_t uart_read_reg(struct uart *uart, unsigned reg)
{
	bool dlab = uart->lcr & LCR_DLAB;
	uint8_t v;

	switch (reg) {
	case UART_RBR_THR:
		if (dlab)
			return uart->dll;
		v = uart->rx_count ? uart_rx_pop(uart) : 0;
		uart_rx_space(uart);
		return v;
	case UART_IER: return dlab ? uart->dlm : uart->ier;
	case UART_IIR_FCR:
		v = uart_iir(uart);
		/* Reading IIR while it shows THR empty acknowledges that interrupt. */
		if (v == IIR_THRI)
			uart->thr_ipending = 0;
		return v | (uart->fcr & FCR_ENABLE ? IIR_FIFO : 0);
	case UART_LCR: return uart->lcr;
	case UART_MCR: return uart->mcr;
	case UART_LSR: return LSR_THRE | LSR_TEMT | (uart->rx_count ? LSR_DR : 0);
	case UART_MSR:
		if (uart->mcr & MCR_LOOP)	/* loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD */
			return (uint8_t)((uart->mcr & 0x01) << 5 | (uart->mcr & 0x02) << 3 |
					 (uart->mcr & 0x04) << 4 | (uart->mcr & 0x08) << 4);
		return uart->msr;
	default: return uart->scr;
	}
}

static void uart_write_reg(struct uart *uart, unsigned reg, uint8_t v)
{
	bool dlab = uart->lcr & LCR_DLAB;

	switch (reg) {
	case UART_RBR_THR:
		if (dlab) {
			uart->dll = v;
			break;
		}
		uart_tx(uart, v);
		/* Sent at once: the holding register is empty again. */
		uart->thr_ipending = 1;
		break;
	case UART_IER:
		if (dlab) {
			uart->dlm = v;
			break;
		}
		/* Enabling the THR-empty interrupt while the register is empty raises it (as a 16550 does). */
		if ((v & IER_THRI) && !(uart->ier & IER_THRI))
			uart->thr_ipending = 1;
		uart->ier = v & 0x0f;
		break;
	case UART_IIR_FCR:
		if (v & FCR_CLEAR_RX) {
			uart_rx_clear(uart);
			uart_rx_space(uart);
		}
		uart->fcr = v & 0xc9;	/* enable, DMA mode, trigger level; the clear bits self-clear */
		break;
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
	uart_update_irq_locked(uart);
	pthread_mutex_unlock(&uart->lock);
	return 0;
}

int uart_create(struct uart *uart, struct iobus *pio, int out_fd)
{
	memset(uart, 0, sizeof(*uart));
	pthread_mutex_init(&uart->lock, NULL);
	uart->out_fd = out_fd;
	uart->rx_space_fd = -1;
	uart->lcr = 0x03;
	uart->msr = 0xb0;	/* CTS, DSR, DCD: a cable is attached */
	return iobus_register(pio, UART_COM1_BASE, UART_NREGS, uart_io, uart, "uart");
}

void uart_set_irq(struct uart *uart, uart_irq_fn *fn, void *opaque)
{
	pthread_mutex_lock(&uart->lock);
	uart->irq_fn = fn;
	uart->irq_opaque = opaque;
	pthread_mutex_unlock(&uart->lock);
}

void uart_set_interactive(struct uart *uart, int rx_space_fd)
{
	pthread_mutex_lock(&uart->lock);
	uart->interactive = true;
	uart->rx_space_fd = rx_space_fd;
	uart_flush_locked(uart);
	pthread_mutex_unlock(&uart->lock);
}

size_t uart_receive(struct uart *uart, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&uart->lock);
	while (n < len && uart->rx_count < UART_FIFO_SIZE)
		uart_rx_push(uart, buf[n++]);
	uart->rx_bytes += n;
	if (n < len)
		uart->rx_waiting = true;
	uart_update_irq_locked(uart);
	pthread_mutex_unlock(&uart->lock);
	return n;
}

void uart_update_irq(struct uart *uart)
{
	pthread_mutex_lock(&uart->lock);
	/* The line's level is not saved: drive it from scratch. */
	uart->irq_level = 0;
	if (uart->irq_fn)
		uart->irq_fn(uart->irq_opaque, 0);
	uart_update_irq_locked(uart);
	pthread_mutex_unlock(&uart->lock);
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
