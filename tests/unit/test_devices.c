// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests: the I/O bus and the port devices (UART, debug-exit, fw_cfg, RTC). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "tests/unit/test.h"
#include "vmm/debugexit.h"
#include "vmm/fwcfg.h"
#include "vmm/iobus.h"
#include "vmm/rtc.h"
#include "vmm/uart.h"
#include "vmm/vm.h"

static int dummy_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	*(uint64_t *)opaque = offset;
	if (!is_write)
		data[0] = 0xab;
	return 0;
}

static void test_iobus(void)
{
	struct iobus bus = { "pio", NULL, 0 };
	uint64_t last = 0;
	uint8_t b = 0;

	CHECK_EQ(iobus_register(&bus, 0x100, 8, dummy_io, &last, "a"), 0);
	CHECK_EQ(iobus_register(&bus, 0x10, 1, dummy_io, &last, "b"), 0);
	CHECK_EQ(iobus_register(&bus, 0x200, 0x10, dummy_io, &last, "c"), 0);
	CHECK_EQ(iobus_register(&bus, 0x107, 2, dummy_io, &last, "overlap"), -EEXIST);
	CHECK_EQ(iobus_register(&bus, 0xf8, 9, dummy_io, &last, "overlap"), -EEXIST);
	CHECK_EQ(iobus_register(&bus, 0x1, 0, dummy_io, &last, "empty"), -EINVAL);
	CHECK_EQ(iobus_register(&bus, UINT64_MAX, 2, dummy_io, &last, "wrap"), -EINVAL);
	CHECK_EQ(iobus_register(&bus, 0xf8, 8, dummy_io, &last, "adjacent"), 0);
	CHECK_EQ(iobus_access(&bus, 0x105, &b, 1, false), 0);
	CHECK_EQ(last, 5);
	CHECK_EQ(b, 0xab);
	CHECK_EQ(iobus_access(&bus, 0x20f, &b, 1, true), 0);
	CHECK_EQ(last, 0xf);
	CHECK_EQ(iobus_access(&bus, 0x210, &b, 1, true), -ENOENT);
	CHECK_EQ(iobus_access(&bus, 0xf7, &b, 1, true), -ENOENT);
	CHECK_STR(iobus_find(&bus, 0xff)->name, "adjacent");
	CHECK_STR(iobus_find(&bus, 0x10)->name, "b");
	CHECK(iobus_find(&bus, 0x11) == NULL);
	iobus_destroy(&bus);
}

static void test_uart(void)
{
	struct iobus bus = { "pio", NULL, 0 };
	struct uart uart;
	char path[] = "/tmp/vmm-test-uart-XXXXXX", buf[64] = "";
	int fd = mkstemp(path);
	uint8_t v;
	const char *msg = "hi\nthere";

	CHECK(fd >= 0);
	CHECK_EQ(uart_create(&uart, &bus, fd), 0);
	CHECK_EQ(iobus_access(&bus, 0x3fd, &v, 1, false), 0);
	CHECK_EQ(v & 0x60, 0x60);	/* transmitter empty */
	for (const char *p = msg; *p; p++) {
		v = (uint8_t)*p;
		iobus_access(&bus, 0x3f8, &v, 1, true);
	}
	/* One line is out; the partial line waits for a flush. */
	CHECK_EQ(pread(fd, buf, sizeof(buf), 0), 3);
	uart_flush(&uart);
	CHECK_EQ(pread(fd, buf, sizeof(buf) - 1, 0), 8);
	CHECK(!memcmp(buf, "hi\nthere", 8));
	/* Divisor latch: DLL/DLM read back, nothing is transmitted. */
	v = 0x83;
	iobus_access(&bus, 0x3fb, &v, 1, true);
	v = 0x01;
	iobus_access(&bus, 0x3f8, &v, 1, true);
	v = 0;
	iobus_access(&bus, 0x3f8, &v, 1, false);
	CHECK_EQ(v, 1);
	CHECK_EQ(uart.tx_bytes, 8);
	v = 0x7;
	iobus_access(&bus, 0x3ff, &v, 1, true);
	v = 0;
	iobus_access(&bus, 0x3ff, &v, 1, false);
	CHECK_EQ(v, 7);
	uart_destroy(&uart);
	iobus_destroy(&bus);
	close(fd);
	unlink(path);
}

static int exit_status = -1;
static unsigned exit_value;

static void on_exit_port(void *opaque, int status, unsigned value)
{
	exit_status = status;
	exit_value = value;
}

static int irq_level, irq_calls;

static void record_irq(void *opaque, int level)
{
	irq_level = level;
	irq_calls++;
}

static uint8_t uart_in(struct iobus *bus, unsigned reg)
{
	uint8_t v = 0;

	iobus_access(bus, UART_COM1_BASE + reg, &v, 1, false);
	return v;
}

static void uart_out(struct iobus *bus, unsigned reg, uint8_t v)
{
	iobus_access(bus, UART_COM1_BASE + reg, &v, 1, true);
}

/* The 16550A's interrupts and receive FIFO, as Linux's 8250 driver uses them. */
static void test_uart_irq(void)
{
	struct iobus bus = { "pio", NULL, 0 };
	struct uart uart;
	uint8_t in[20];
	int i;

	CHECK_EQ(uart_create(&uart, &bus, -1), 0);
	uart_set_irq(&uart, record_irq, NULL);
	irq_level = irq_calls = 0;
	/* THR-empty: raised when enabled (with OUT2), acknowledged by reading IIR. */
	uart_out(&bus, 4, 0x0b);			/* MCR: DTR, RTS, OUT2 */
	uart_out(&bus, 1, 0x02);			/* IER: THRI */
	CHECK_EQ(irq_level, 1);
	CHECK_EQ(uart_in(&bus, 2) & 0x0f, 0x02);
	CHECK_EQ(irq_level, 0);
	CHECK_EQ(uart_in(&bus, 2) & 0x0f, 0x01);	/* nothing pending now */
	uart_out(&bus, 0, 'x');				/* sent at once: empty again */
	CHECK_EQ(irq_level, 1);
	uart_out(&bus, 1, 0x00);
	CHECK_EQ(irq_level, 0);
	/* Without OUT2 the line stays low whatever is pending. */
	uart_out(&bus, 4, 0x03);
	uart_out(&bus, 1, 0x02);
	CHECK_EQ(irq_level, 0);
	uart_out(&bus, 4, 0x0b);
	CHECK_EQ(irq_level, 1);
	uart_out(&bus, 1, 0x00);

	/* Receive: data ready in LSR and IIR, a 16-byte FIFO, bytes in order. */
	for (i = 0; i < 20; i++)
		in[i] = (uint8_t)('a' + i);
	CHECK_EQ(uart_receive(&uart, in, 20), 16);
	CHECK_EQ(uart_in(&bus, 5) & 0x01, 0x01);
	CHECK_EQ(irq_level, 0);				/* not enabled yet */
	uart_out(&bus, 1, 0x01);			/* IER: RDI */
	CHECK_EQ(irq_level, 1);
	CHECK_EQ(uart_in(&bus, 2) & 0x0f, 0x04);
	for (i = 0; i < 16; i++)
		CHECK_EQ(uart_in(&bus, 0), 'a' + i);
	CHECK_EQ(uart_in(&bus, 5) & 0x01, 0);
	CHECK_EQ(irq_level, 0);
	CHECK_EQ(uart_receive(&uart, in + 16, 4), 4);
	CHECK_EQ(irq_level, 1);
	uart_out(&bus, 2, 0x03);			/* FCR: enable, clear the receive FIFO */
	CHECK_EQ(uart_in(&bus, 5) & 0x01, 0);
	CHECK_EQ(uart_in(&bus, 2) & 0xcf, 0xc1);	/* a 16550A with FIFOs, nothing pending */
	CHECK_EQ(irq_level, 0);

	/* Loopback (Linux's probe): a byte sent comes back, MCR bits show in MSR. */
	uart_out(&bus, 4, 0x1a);
	CHECK_EQ(uart_in(&bus, 6) & 0xf0, 0x90);	/* RTS->CTS, OUT2->DCD */
	uart_out(&bus, 0, 0x5a);
	CHECK_EQ(uart_in(&bus, 0), 0x5a);
	uart_destroy(&uart);
	iobus_destroy(&bus);
}

/* Interactive: every byte is written at once (a prompt has no newline). */
static void test_uart_interactive(void)
{
	struct iobus bus = { "pio", NULL, 0 };
	struct uart uart;
	char path[] = "/tmp/vmm-test-uart-XXXXXX", buf[8];
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	CHECK_EQ(uart_create(&uart, &bus, fd), 0);
	uart_out(&bus, 0, '#');
	CHECK_EQ(pread(fd, buf, sizeof(buf), 0), 0);
	uart_set_interactive(&uart, -1);
	CHECK_EQ(pread(fd, buf, sizeof(buf), 0), 1);
	uart_out(&bus, 0, ' ');
	CHECK_EQ(pread(fd, buf, sizeof(buf), 0), 2);
	uart_destroy(&uart);
	iobus_destroy(&bus);
	close(fd);
	unlink(path);
}

static void test_debugexit(void)
{
	struct iobus bus = { "pio", NULL, 0 };
	struct debugexit dev, qdev;
	uint8_t b = 1;
	uint8_t w[4] = { 0x2a, 0, 0, 0 };

	CHECK_EQ(debugexit_create(&dev, &bus, false, on_exit_port, NULL), 0);
	CHECK_EQ(iobus_access(&bus, 0xf4, &b, 1, true), 0);
	CHECK_EQ(exit_status, 1);
	CHECK_EQ(iobus_access(&bus, 0xf4, w, 4, true), 0);
	CHECK_EQ(exit_status, 42);
	CHECK_EQ(exit_value, 42);
	iobus_destroy(&bus);
	CHECK_EQ(debugexit_create(&qdev, &bus, true, on_exit_port, NULL), 0);
	CHECK_EQ(iobus_access(&bus, 0xf4, &b, 1, true), 0);
	CHECK_EQ(exit_status, 3);
	CHECK_EQ(debugexit_status(true, 0), 1);
	CHECK_EQ(debugexit_status(false, 0x1ff), 0xff);
	iobus_destroy(&bus);
}

static uint64_t fwcfg_read(struct iobus *bus, uint16_t key, unsigned len)
{
	uint8_t sel[2] = { (uint8_t)key, (uint8_t)(key >> 8) }, b;
	uint64_t v = 0;
	unsigned i;

	iobus_access(bus, FWCFG_PORT_SEL, sel, 2, true);
	for (i = 0; i < len; i++) {
		iobus_access(bus, FWCFG_PORT_DATA, &b, 1, false);
		v |= (uint64_t)b << (8 * i);
	}
	return v;
}

static void test_fwcfg(void)
{
	struct iobus bus = { "pio", NULL, 0 };
	struct fwcfg fw;

	CHECK_EQ(fwcfg_create(&fw, &bus, 256ULL << 20, 2), 0);
	CHECK(fwcfg_read(&bus, FWCFG_SIGNATURE, 4) == 0x554d4551);	/* "QEMU" */
	CHECK_EQ(fwcfg_read(&bus, FWCFG_NB_CPUS, 2), 2);
	CHECK(fwcfg_read(&bus, FWCFG_RAM_SIZE, 8) == 256ULL << 20);
	CHECK_EQ(fwcfg_read(&bus, 0x1234, 4), 0);			/* unknown key */
	CHECK_EQ(fwcfg_read(&bus, FWCFG_NB_CPUS, 4), 2);		/* past the end reads 0 */
	fwcfg_destroy(&fw);
	iobus_destroy(&bus);
}

/* The host's clock as the RTC sees it: 2026-12-02 04:30:05 UTC, a Wednesday, until a test moves it. */
static int64_t fake_now = 1796185805;

static int64_t rtc_fake_now(void)
{
	return fake_now;
}

static uint8_t rtc_get(struct iobus *bus, uint8_t reg)
{
	uint8_t b = 0;

	CHECK_EQ(iobus_access(bus, RTC_PORT, &reg, 1, true), 0);
	CHECK_EQ(iobus_access(bus, RTC_PORT + 1, &b, 1, false), 0);
	return b;
}

static void rtc_put(struct iobus *bus, uint8_t reg, uint8_t v)
{
	CHECK_EQ(iobus_access(bus, RTC_PORT, &reg, 1, true), 0);
	CHECK_EQ(iobus_access(bus, RTC_PORT + 1, &v, 1, true), 0);
}

/* The reset registers and the time as Linux reads it: BCD, 24 hours, the host's UTC. */
static void test_rtc(void)
{
	struct iobus bus = { "pio", NULL, 0 };
	struct rtc rtc;

	fake_now = 1796185805;
	CHECK_EQ(rtc_create(&rtc, &bus, rtc_fake_now), 0);
	CHECK_EQ(rtc_get(&bus, RTC_SEC), 0x05);
	CHECK_EQ(rtc_get(&bus, RTC_MIN), 0x30);
	CHECK_EQ(rtc_get(&bus, RTC_HOUR), 0x04);
	CHECK_EQ(rtc_get(&bus, RTC_WDAY), 4);		/* Sunday is 1 */
	CHECK_EQ(rtc_get(&bus, RTC_MDAY), 0x02);
	CHECK_EQ(rtc_get(&bus, RTC_MON), 0x12);
	CHECK_EQ(rtc_get(&bus, RTC_YEAR), 0x26);
	CHECK_EQ(rtc_get(&bus, RTC_CENTURY), 0x20);
	CHECK_EQ(rtc_get(&bus, RTC_REG_A) & RTC_A_UIP, 0);
	CHECK_EQ(rtc_get(&bus, RTC_REG_B), RTC_B_24H);
	CHECK_EQ(rtc_get(&bus, RTC_REG_C), 0);
	CHECK_EQ(rtc_get(&bus, RTC_REG_D), RTC_D_VRT);
	CHECK_EQ(rtc_get(&bus, 0x40), 0);		/* NVRAM: not kept */
	rtc_put(&bus, 0x40, 0x55);
	CHECK_EQ(rtc_get(&bus, 0x40), 0);
	/* The seconds follow the host's; the NMI-disable bit of the index is not part of it. */
	fake_now += 61;
	CHECK_EQ(rtc_get(&bus, RTC_SEC), 0x06);
	CHECK_EQ(rtc_get(&bus, RTC_MIN | 0x80), 0x31);
	/* Binary, then 12 hours: 16:31 is 4 PM. */
	rtc_put(&bus, RTC_REG_B, RTC_B_24H | RTC_B_BINARY);
	CHECK_EQ(rtc_get(&bus, RTC_MIN), 31);
	CHECK_EQ(rtc_get(&bus, RTC_YEAR), 26);
	fake_now += 12 * 3600;
	rtc_put(&bus, RTC_REG_B, RTC_B_BINARY);
	CHECK_EQ(rtc_get(&bus, RTC_HOUR), 0x80 | 4);
	rtc_put(&bus, RTC_REG_B, 0);
	CHECK_EQ(rtc_get(&bus, RTC_HOUR), 0x84);
	rtc_put(&bus, RTC_REG_A, 0xa6);			/* UIP is read-only */
	CHECK_EQ(rtc_get(&bus, RTC_REG_A), 0x26);
	rtc_destroy(&rtc);
	iobus_destroy(&bus);
}

/* Setting the clock, as hwclock does (SET held) and one register at a time: only the offset changes. */
static void test_rtc_set(void)
{
	struct iobus bus = { "pio", NULL, 0 };
	struct rtc rtc;

	fake_now = 1796185805;				/* 2026-12-02 04:30:05 */
	CHECK_EQ(rtc_create(&rtc, &bus, rtc_fake_now), 0);
	rtc_put(&bus, RTC_REG_B, RTC_B_SET | RTC_B_24H);
	rtc_put(&bus, RTC_SEC, 0x00);
	rtc_put(&bus, RTC_MIN, 0x00);
	rtc_put(&bus, RTC_HOUR, 0x12);
	rtc_put(&bus, RTC_MDAY, 0x29);
	rtc_put(&bus, RTC_MON, 0x02);
	rtc_put(&bus, RTC_YEAR, 0x24);
	fake_now += 100;				/* held: the registers do not move */
	CHECK_EQ(rtc_get(&bus, RTC_SEC), 0x00);
	CHECK_EQ(rtc_get(&bus, RTC_MDAY), 0x29);
	rtc_put(&bus, RTC_REG_B, RTC_B_24H);		/* 2024-02-29 12:00:00 from now on */
	CHECK_EQ((int64_t)rtc.offset, 1709208000 - fake_now);
	fake_now += 3600 + 7;
	CHECK_EQ(rtc_get(&bus, RTC_SEC), 0x07);
	CHECK_EQ(rtc_get(&bus, RTC_HOUR), 0x13);
	CHECK_EQ(rtc_get(&bus, RTC_MON), 0x02);
	/* One register while the clock runs. */
	rtc_put(&bus, RTC_MIN, 0x45);
	CHECK_EQ(rtc_get(&bus, RTC_MIN), 0x45);
	CHECK_EQ(rtc_get(&bus, RTC_HOUR), 0x13);
	/* Not a time (a BCD digit above 9, minute 60): the clock keeps its offset. */
	rtc_put(&bus, RTC_MIN, 0x60);
	CHECK_EQ(rtc_get(&bus, RTC_MIN), 0x45);
	rtc_put(&bus, RTC_SEC, 0x1a);
	CHECK_EQ(rtc_get(&bus, RTC_SEC), 0x07);
	/* An offset no register can show (a peer chose it) reads as zeros, and nothing breaks. */
	rtc.offset = UINT64_MAX / 2;
	CHECK_EQ(rtc_get(&bus, RTC_YEAR), 0);
	rtc.offset = 0;
	CHECK_EQ(rtc_get(&bus, RTC_YEAR), 0x26);
	rtc_destroy(&rtc);
	iobus_destroy(&bus);
}

static uint8_t pio_read(struct vm *vm, uint64_t port)
{
	uint8_t b = 0;

	CHECK_EQ(iobus_access(&vm->pio, port, &b, 1, false), 0);
	return b;
}

static void pio_write(struct vm *vm, uint64_t port, uint8_t b)
{
	CHECK_EQ(iobus_access(&vm->pio, port, &b, 1, true), 0);
}

static uint8_t pio_read_reg(struct vm *vm, uint8_t reg)
{
	pio_write(vm, RTC_PORT, reg);
	return pio_read(vm, RTC_PORT + 1);
}

/*
 * The saved devices, as a migration moves them (no KVM needed): a device
 * programmed on one VM, copied out through its table and into another VM,
 * reads back the same there, and the fw_cfg read continues where it was.
 */
static void test_saved_devices(void)
{
	struct vm_config cfg = { .ram_size = 2 << 20, .ncpus = 1, .debugexit_qemu = true, .serial_fd = -1 };
	uint64_t values[VM_NSAVED_DEVICES][DEVICE_STATE_MAX_FIELDS] = { { 0 } };
	struct vm a, b;
	int i;

	for (i = 0; i < VM_NSAVED_DEVICES; i++)
		CHECK(vm_saved_devices[i].state->nfields <= DEVICE_STATE_MAX_FIELDS);
	CHECK_EQ(vm_create(&a, &cfg), 0);
	cfg.debugexit_qemu = false;
	CHECK_EQ(vm_create(&b, &cfg), 0);
	pio_write(&a, UART_COM1_BASE + 3, 0x83);	/* LCR: DLAB */
	pio_write(&a, UART_COM1_BASE + 0, 0x0c);	/* DLL */
	pio_write(&a, UART_COM1_BASE + 3, 0x1b);
	pio_write(&a, UART_COM1_BASE + 7, 0x5a);	/* SCR */
	CHECK_EQ(fwcfg_read(&a.pio, FWCFG_SIGNATURE, 2), 0x4551);	/* "QE", then "MU" */
	vm_devices_get(&a, values);
	vm_devices_put(&b, values);
	CHECK_EQ(b.uart.lcr, 0x1b);
	CHECK_EQ(pio_read(&b, UART_COM1_BASE + 7), 0x5a);
	pio_write(&b, UART_COM1_BASE + 3, 0x9b);
	CHECK_EQ(pio_read(&b, UART_COM1_BASE + 0), 0x0c);
	CHECK_EQ(pio_read(&b, FWCFG_PORT_DATA), 'M');
	CHECK_EQ(pio_read(&b, FWCFG_PORT_DATA), 'U');
	CHECK(b.debugexit.qemu_mode);
	/* The RTC keeps its distance from the host's clock, and its format. */
	a.rtc.offset = (uint64_t)-3600;
	a.rtc.reg_b = RTC_B_24H | RTC_B_BINARY;
	vm_devices_get(&a, values);
	vm_devices_put(&b, values);
	CHECK_EQ((int64_t)b.rtc.offset, -3600);
	CHECK_EQ(pio_read_reg(&b, RTC_REG_B), RTC_B_24H | RTC_B_BINARY);
	vm_destroy(&a);
	vm_destroy(&b);
}

TEST_MAIN(TEST(test_iobus), TEST(test_uart), TEST(test_uart_irq), TEST(test_uart_interactive), TEST(test_debugexit), TEST(test_fwcfg),
	  TEST(test_rtc), TEST(test_rtc_set), TEST(test_saved_devices))
