/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The Intel MultiProcessor Specification 1.4 table, the one thing Linux
 * needs without ACPI to find every vCPU and the I/O APIC: a floating
 * pointer at RAM_BIOS_START (the BIOS area Linux scans) and the
 * configuration table after it, listing one processor per vCPU (APIC ID =
 * vCPU index, the first the bootstrap processor), the ISA bus, KVM's
 * in-kernel I/O APIC (ID = the vCPU count) and the ISA interrupts 0-15 on
 * the I/O APIC pins of the same number, which is KVM's default routing.
 */
#ifndef VMM_MPTABLE_H
#define VMM_MPTABLE_H

#include "vmm/ram.h"

#define MPTABLE_IOAPIC_GPA	0xfec00000U
#define MPTABLE_LAPIC_GPA	0xfee00000U

/* Write the table for @ncpus vCPUs (1 to 64) into @ram; 0 or -errno after one error line. */
int mptable_write(struct ram *ram, int ncpus);

#endif
