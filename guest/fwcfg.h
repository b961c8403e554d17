/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fwcfg.h - the CPU count from QEMU's fw_cfg interface.
 */
#ifndef GUEST_FWCFG_H
#define GUEST_FWCFG_H

#include <stdbool.h>

/* True if the fw_cfg signature reads "QEMU". */
bool fwcfg_present(void);

/* Number of CPUs the host started us with; 1 without fw_cfg. */
unsigned fwcfg_cpus(void);

#endif
