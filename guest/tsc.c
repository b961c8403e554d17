// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tsc.c - TSC calibration against PIT channel 2, the way Linux does it.
 *
 * Channel 2 is the one channel whose output can be read back (port 0x61
 * bit 5) and whose gate software controls (port 0x61 bit 0), so it can time
 * an interval without interrupts: program a one-shot count of 20 ms in
 * mode 0, read the TSC, poll until OUT goes high, read the TSC again.  The
 * PIT is exact under QEMU and KVM's in-kernel PIT, and 20 ms keeps boot
 * fast while the port-read latency (one exit per poll) stays well under
 * 1% of the interval.
 *
 * A host without a PIT makes OUT read as always high or never high; both
 * are caught, and the guest then assumes 1 GHz and says so, since every
 * rate it enforces will be off.
 */
#include "arch.h"
#include "serial.h"
#include "tsc.h"

#define PIT_HZ		1193182ull
#define PIT_CH2		0x42
#define PIT_CMD		0x43
#define PIT_GATE	0x61
#define GATE_CH2	0x01
#define GATE_SPEAKER	0x02
#define GATE_OUT2	0x20
#define CALIBRATE_MS	20
#define FALLBACK_HZ	1000000000ull

static uint64_t tsc_freq;
static bool tsc_measured;

static uint64_t tsc_pit_measure(void)
{
	uint64_t latch = PIT_HZ * CALIBRATE_MS / 1000, t0, t1;

	outb(PIT_GATE, (inb(PIT_GATE) & ~GATE_SPEAKER) | GATE_CH2);
	outb(PIT_CMD, 0xb0);		/* channel 2, lo/hi byte, mode 0, binary */
	outb(PIT_CH2, latch & 0xff);
	outb(PIT_CH2, latch >> 8);
	t0 = rdtsc();
	/* Bound the wait in TSC ticks: 2^34 is seconds at any plausible rate. */
	while (!(inb(PIT_GATE) & GATE_OUT2)) {
		if (rdtsc() - t0 > (1ull << 34))
			return 0;
	}
	t1 = rdtsc();
	return (t1 - t0) * 1000 / CALIBRATE_MS;
}

void tsc_calibrate(void)
{
	tsc_freq = tsc_pit_measure();
	tsc_measured = tsc_freq >= 10000000;	/* OUT2 stuck high reads as ~0 */
	if (tsc_measured)
		return;
	tsc_freq = FALLBACK_HZ;
	serial_printf("tsc: PIT channel 2 unusable, assuming %lu MHz\n",
		      tsc_freq / 1000000);
}

uint64_t tsc_hz(void)
{
	return tsc_freq;
}

bool tsc_calibrated(void)
{
	return tsc_measured;
}

void tsc_delay_us(uint64_t us)
{
	uint64_t t0 = rdtsc(), ticks = tsc_freq / 1000000 * us;

	while (rdtsc() - t0 < ticks)
		cpu_relax();
}
