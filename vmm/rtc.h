/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The CMOS real-time clock (an MC146818 at ports 0x70/0x71), as much of it
 * as Linux's rtc-cmos driver needs to set the guest's clock at boot
 * (CONFIG_RTC_HCTOSYS) and hwclock needs to read and set it.
 *
 * The time and date registers show the host's UTC time plus an offset in
 * whole seconds, so the seconds register ticks when the host's second
 * does; setting the clock (writes while register B's SET bit is held, or
 * a single register written outside it) changes only the offset, which
 * a migration carries: the guest's RTC keeps its distance from the host's
 * clock across hosts, as QEMU's does.  BCD or binary and 12 or 24 hours as
 * register B says (Linux on x86 reads BCD, 24 hours: the reset value).
 * The update-in-progress bit never sets: every read is consistent.  The
 * century is at 0x32 (where ACPI's FADT usually points).
 *
 * Not emulated: the alarm, periodic and update-ended interrupts (IRQ 8 is
 * never raised and register C reads 0; Linux then has an RTC without
 * alarms), the divider in register A (stored, without effect), and the
 * battery-backed NVRAM (0x0e..0x7f but the century: reads 0, writes are
 * dropped).
 */
#ifndef VMM_RTC_H
#define VMM_RTC_H

#include <pthread.h>
#include <stdint.h>

#include "vmm/device_state.h"
#include "vmm/iobus.h"

#define RTC_PORT	0x70
#define RTC_NPORTS	2

/* The register numbers (the index written to port 0x70). */
enum {
	RTC_SEC = 0x00, RTC_MIN = 0x02, RTC_HOUR = 0x04, RTC_WDAY = 0x06, RTC_MDAY = 0x07,
	RTC_MON = 0x08, RTC_YEAR = 0x09, RTC_REG_A = 0x0a, RTC_REG_B = 0x0b, RTC_REG_C = 0x0c,
	RTC_REG_D = 0x0d, RTC_CENTURY = 0x32,
};

#define RTC_A_UIP	0x80	/* update in progress */
#define RTC_B_SET	0x80	/* the time registers hold still while the guest sets them */
#define RTC_B_BINARY	0x04	/* binary, not BCD */
#define RTC_B_24H	0x02
#define RTC_D_VRT	0x80	/* the battery is good */

/* The host's time in seconds since the epoch, UTC. */
typedef int64_t rtc_now_fn(void);

struct rtc {
	pthread_mutex_t lock;
	uint8_t index;			/* the register port 0x71 reaches (bit 7, NMI disable, dropped) */
	uint8_t reg_a, reg_b;
	uint64_t offset;		/* the guest's RTC minus the host's time, seconds (two's complement) */
	uint64_t held;			/* SET held: the time registers as set so far, see rtc.c */
	rtc_now_fn *now;
};

/* The registers a migration saves and loads (node "rtc"). */
extern const struct device_state rtc_state;

/* Initialise @rtc (24 hours, BCD, no offset) and claim its ports on @pio; @now NULL: CLOCK_REALTIME. */
int rtc_create(struct rtc *rtc, struct iobus *pio, rtc_now_fn *now);

/* Release it. */
void rtc_destroy(struct rtc *rtc);

#endif
