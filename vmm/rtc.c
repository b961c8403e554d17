// SPDX-License-Identifier: GPL-2.0-or-later
/* The CMOS real-time clock.  See rtc.h for what is emulated and what is not. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "vmm/rtc.h"

static const struct state_field rtc_fields[] = {
	STATE_FIELD(struct rtc, index, "index", 0x7f),
	STATE_FIELD(struct rtc, reg_a, "reg-a", 0x7f),
	STATE_FIELD(struct rtc, reg_b, "reg-b", 0xff),
	STATE_FIELD(struct rtc, offset, "offset", UINT64_MAX),
	STATE_FIELD(struct rtc, held, "held", UINT64_MAX),
};

const struct device_state rtc_state = {
	"rtc", rtc_fields, sizeof(rtc_fields) / sizeof(rtc_fields[0]), offsetof(struct rtc, lock),
};

/*
 * The time registers, in the order of their bytes in rtc->held (the low
 * byte first): what the guest reads while SET is held, as it wrote them.
 */
static const uint8_t time_regs[] = {
	RTC_SEC, RTC_MIN, RTC_HOUR, RTC_WDAY, RTC_MDAY, RTC_MON, RTC_YEAR, RTC_CENTURY,
};
#define NTIME	(sizeof(time_regs) / sizeof(time_regs[0]))

static int time_slot(uint8_t reg)
{
	unsigned i;

	for (i = 0; i < NTIME; i++)
		if (time_regs[i] == reg)
			return (int)i;
	return -1;
}

static int64_t rtc_realtime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec;
}

static uint8_t rtc_encode(const struct rtc *rtc, unsigned v)
{
	return rtc->reg_b & RTC_B_BINARY ? (uint8_t)v : (uint8_t)((v / 10) << 4 | v % 10);
}

/* -1 for a BCD digit above 9. */
static int rtc_decode(const struct rtc *rtc, uint8_t v)
{
	if (rtc->reg_b & RTC_B_BINARY)
		return v;
	if ((v >> 4) > 9 || (v & 15) > 9)
		return -1;
	return (v >> 4) * 10 + (v & 15);
}

/* The time registers now, encoded as register B says, packed as rtc->held. */
static uint64_t rtc_time_now(const struct rtc *rtc)
{
	/* Unsigned: an offset a peer chose wraps instead of overflowing. */
	time_t t = (time_t)((uint64_t)rtc->now() + rtc->offset);
	unsigned v[NTIME], hour, i;
	uint64_t packed = 0;
	struct tm tm;

	if (!gmtime_r(&t, &tm) || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
		return 0;	/* a year no register can show */
	hour = (unsigned)tm.tm_hour;
	v[0] = (unsigned)tm.tm_sec;
	v[1] = (unsigned)tm.tm_min;
	v[3] = (unsigned)tm.tm_wday + 1;
	v[4] = (unsigned)tm.tm_mday;
	v[5] = (unsigned)tm.tm_mon + 1;
	v[6] = (unsigned)(tm.tm_year + 1900) % 100;
	v[7] = (unsigned)(tm.tm_year + 1900) / 100;
	for (i = 0; i < NTIME; i++)
		if (i != 2)
			packed |= (uint64_t)rtc_encode(rtc, v[i]) << (8 * i);
	if (rtc->reg_b & RTC_B_24H)
		packed |= (uint64_t)rtc_encode(rtc, hour) << 16;
	else
		packed |= (uint64_t)(rtc_encode(rtc, hour % 12 ? hour % 12 : 12) | (hour >= 12 ? 0x80 : 0)) << 16;
	return packed;
}

/* The guest set the time registers to @packed: the offset that makes them so, or unchanged if they are no time. */
static void rtc_time_set(struct rtc *rtc, uint64_t packed)
{
	int v[NTIME], hour;
	uint8_t h = (uint8_t)(packed >> 16);
	struct tm tm = { 0 };
	unsigned i;
	time_t t;

	for (i = 0; i < NTIME; i++)
		v[i] = rtc_decode(rtc, i == 2 ? h & 0x7f : (uint8_t)(packed >> (8 * i)));
	hour = v[2];
	if (!(rtc->reg_b & RTC_B_24H) && hour >= 1 && hour <= 12)
		hour = hour % 12 + (h & 0x80 ? 12 : 0);
	else if (!(rtc->reg_b & RTC_B_24H))
		hour = -1;
	if (v[0] < 0 || v[0] > 59 || v[1] < 0 || v[1] > 59 || hour < 0 || hour > 23 || v[4] < 1 ||
	    v[4] > 31 || v[5] < 1 || v[5] > 12 || v[6] < 0 || v[7] < 0)
		return;
	tm.tm_sec = v[0];
	tm.tm_min = v[1];
	tm.tm_hour = hour;
	tm.tm_mday = v[4];
	tm.tm_mon = v[5] - 1;
	tm.tm_year = v[7] * 100 + v[6] - 1900;
	t = timegm(&tm);
	rtc->offset = (uint64_t)t - (uint64_t)rtc->now();
}

static uint8_t rtc_read(struct rtc *rtc)
{
	int slot = time_slot(rtc->index);

	if (slot >= 0)
		return (uint8_t)((rtc->reg_b & RTC_B_SET ? rtc->held : rtc_time_now(rtc)) >> (8 * slot));
	switch (rtc->index) {
	case RTC_REG_A:
		return rtc->reg_a;	/* UIP never set */
	case RTC_REG_B:
		return rtc->reg_b;
	case RTC_REG_D:
		return RTC_D_VRT;
	default:
		return 0;	/* register C (no interrupt ever flagged) and the NVRAM */
	}
}

static void rtc_write(struct rtc *rtc, uint8_t v)
{
	int slot = time_slot(rtc->index);
	uint64_t mask;

	if (slot >= 0) {
		mask = 0xffULL << (8 * slot);
		if (rtc->reg_b & RTC_B_SET) {
			rtc->held = (rtc->held & ~mask) | (uint64_t)v << (8 * slot);
		} else {
			/* One register written while the clock runs: the clock jumps to it. */
			rtc_time_set(rtc, (rtc_time_now(rtc) & ~mask) | (uint64_t)v << (8 * slot));
		}
		return;
	}
	switch (rtc->index) {
	case RTC_REG_A:
		rtc->reg_a = v & ~RTC_A_UIP;
		break;
	case RTC_REG_B:
		if ((v & RTC_B_SET) && !(rtc->reg_b & RTC_B_SET))
			rtc->held = rtc_time_now(rtc);
		else if (!(v & RTC_B_SET) && (rtc->reg_b & RTC_B_SET))
			rtc_time_set(rtc, rtc->held);
		rtc->reg_b = v;
		break;
	default:
		break;	/* C and D are read-only; the NVRAM is not kept */
	}
}

static int rtc_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct rtc *rtc = opaque;

	pthread_mutex_lock(&rtc->lock);
	if (offset == 0) {
		if (is_write)
			rtc->index = data[0] & 0x7f;
		else
			data[0] = 0xff;	/* the index port is write-only */
	} else if (is_write) {
		rtc_write(rtc, data[0]);
	} else {
		data[0] = rtc_read(rtc);
	}
	pthread_mutex_unlock(&rtc->lock);
	if (!is_write && len > 1)
		memset(data + 1, 0xff, len - 1);
	return 0;
}

int rtc_create(struct rtc *rtc, struct iobus *pio, rtc_now_fn *now)
{
	int ret;

	memset(rtc, 0, sizeof(*rtc));
	ret = -pthread_mutex_init(&rtc->lock, NULL);
	if (ret)
		return ret;
	rtc->now = now ? now : rtc_realtime;
	rtc->reg_a = 0x26;	/* the 32.768 kHz divider and a 1024 Hz rate, as after reset */
	rtc->reg_b = RTC_B_24H;
	ret = iobus_register(pio, RTC_PORT, RTC_NPORTS, rtc_io, rtc, "rtc");
	if (ret)
		pthread_mutex_destroy(&rtc->lock);
	return ret;
}

void rtc_destroy(struct rtc *rtc)
{
	pthread_mutex_destroy(&rtc->lock);
}
