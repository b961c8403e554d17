/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tsc.h - time from the TSC, calibrated once at boot against the PIT.
 */
#ifndef GUEST_TSC_H
#define GUEST_TSC_H

#include <stdbool.h>
#include <stdint.h>

/* Measure the TSC frequency; call once on the BSP before any other tsc_*. */
void tsc_calibrate(void);

/* TSC ticks per second. */
uint64_t tsc_hz(void);

/* True if the PIT measurement worked (false: a guessed frequency). */
bool tsc_calibrated(void);

/* Busy-wait for at least us microseconds. */
void tsc_delay_us(uint64_t us);

#endif
