// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * serial.c - a polled 16550 transmitter at 0x3f8 and the lock around it.
 *
 * The guest never programs the UART: it only reads LSR and writes THR,
 * which is all a minimal host emulation has to provide, and QEMU's reset
 * state already transmits.  Polling LSR.THRE before each byte keeps a real
 * or rate-limited UART from dropping characters.
 *
 * The lock is a test-and-set spinlock whose wait is bounded: if an
 * exception hits while this CPU holds it (or a holder died), the report
 * still comes out after a while instead of the guest hanging silently.
 * The shared format buffer is protected by the same lock.
 */
#include <stdarg.h>
#include <stdint.h>

#include "arch.h"
#include "layout.h"
#include "lib.h"
#include "serial.h"

#define COM1		0x3f8
#define COM1_LSR	(COM1 + 5)
#define LSR_THRE	0x20
#define SPIN_LIMIT	(1ul << 27)

static uint32_t serial_locked;
static char serial_buf[BOOT_CMDLINE_MAX + 256];

static void serial_lock(void)
{
	uint64_t spins = 0;

	while (__atomic_exchange_n(&serial_locked, 1, __ATOMIC_ACQUIRE)) {
		if (++spins > SPIN_LIMIT)
			return;
		cpu_relax();
	}
}

static void serial_unlock(void)
{
	__atomic_store_n(&serial_locked, 0, __ATOMIC_RELEASE);
}

static void serial_put(const char *s, size_t n)
{
	while (n--) {
		while (!(inb(COM1_LSR) & LSR_THRE))
			cpu_relax();
		outb(COM1, (uint8_t)*s++);
	}
}

void serial_write(const char *s, size_t n)
{
	serial_lock();
	serial_put(s, n);
	serial_unlock();
}

void serial_printf(const char *fmt, ...)
{
	va_list ap;
	size_t n;

	serial_lock();
	va_start(ap, fmt);
	n = lib_vformat(serial_buf, sizeof(serial_buf), fmt, ap);
	va_end(ap);
	serial_put(serial_buf, n);
	serial_unlock();
}
