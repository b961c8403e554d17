// SPDX-License-Identifier: GPL-2.0-or-later
/* The MP table; layouts as in the MultiProcessor Specification 1.4, chapter 4. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "vmm/log.h"
#include "vmm/mptable.h"

struct __attribute__((packed)) mpf_intel {	/* the floating pointer, 16 bytes */
	char signature[4];			/* "_MP_" */
	uint32_t physptr;			/* the configuration table */
	uint8_t length;				/* in 16-byte units: 1 */
	uint8_t specification;			/* 4: version 1.4 */
	uint8_t checksum;
	uint8_t feature[5];			/* 0: a configuration table follows, no IMCR */
};

struct __attribute__((packed)) mpc_table {	/* the configuration table header, 44 bytes */
	char signature[4];			/* "PCMP" */
	uint16_t length;			/* header and base entries */
	uint8_t spec;
	uint8_t checksum;
	char oem[8], productid[12];
	uint32_t oemptr;
	uint16_t oemsize, oemcount;		/* oemcount: the number of entries */
	uint32_t lapic;
	uint16_t reserved_len;
	uint8_t reserved_sum, reserved;
};

struct __attribute__((packed)) mpc_cpu {	/* entry 0, 20 bytes */
	uint8_t type, apicid, apicver, cpuflag;
	uint32_t cpufeature, featureflag, reserved[2];
};

struct __attribute__((packed)) mpc_bus {	/* entry 1, 8 bytes */
	uint8_t type, busid;
	char bustype[6];
};

struct __attribute__((packed)) mpc_ioapic {	/* entry 2, 8 bytes */
	uint8_t type, apicid, apicver, flags;
	uint32_t apicaddr;
};

struct __attribute__((packed)) mpc_intsrc {	/* entries 3 (I/O) and 4 (local), 8 bytes */
	uint8_t type, irqtype;
	uint16_t irqflag;
	uint8_t srcbus, srcbusirq, dstapic, dstirq;
};

enum { MP_PROCESSOR, MP_BUS, MP_IOAPIC, MP_INTSRC, MP_LINTSRC };
enum { MP_INT, MP_NMI, MP_SMI, MP_EXTINT };

#define CPU_ENABLED		0x01
#define CPU_BOOTPROCESSOR	0x02
#define LAPIC_VERSION		0x14	/* an integrated xAPIC, as KVM's */
#define IOAPIC_VERSION		0x11	/* KVM's in-kernel I/O APIC */
#define ISA_BUS			0
#define ISA_IRQS		16

static uint8_t mp_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum = (uint8_t)(sum + *b++);
	return (uint8_t)-sum;
}

int mptable_write(struct ram *ram, int ncpus)
{
	size_t len = sizeof(struct mpc_table) + (size_t)ncpus * sizeof(struct mpc_cpu) + sizeof(struct mpc_bus) +
		     sizeof(struct mpc_ioapic) + (ISA_IRQS + 2) * sizeof(struct mpc_intsrc);
	uint64_t table_gpa = RAM_BIOS_START + sizeof(struct mpf_intel);
	struct mpf_intel *mpf = ram_gpa_to_hva(ram, RAM_BIOS_START, sizeof(*mpf) + len);
	struct mpc_table *mpc = (struct mpc_table *)(mpf + 1);
	uint8_t *p = (uint8_t *)(mpc + 1);
	uint16_t count = 0;
	int i;

	if (!mpf || ncpus < 1 || ncpus > 254 || len > RAM_HIGH_MEM_START - RAM_BIOS_START)
		return error(-EINVAL, "cannot write the MP table for %d vCPUs", ncpus);
	memset(mpf, 0, sizeof(*mpf) + len);
	for (i = 0; i < ncpus; i++, count++, p += sizeof(struct mpc_cpu)) {
		struct mpc_cpu cpu = {
			.type = MP_PROCESSOR, .apicid = (uint8_t)i, .apicver = LAPIC_VERSION,
			.cpuflag = CPU_ENABLED | (i == 0 ? CPU_BOOTPROCESSOR : 0),
			.cpufeature = 0x600,	/* family 6: a value, Linux takes the real one from CPUID */
			.featureflag = 0x201,	/* FPU, APIC */
		};
		memcpy(p, &cpu, sizeof(cpu));
	}
	memcpy(p, &(struct mpc_bus){ MP_BUS, ISA_BUS, "ISA   " }, sizeof(struct mpc_bus));
	p += sizeof(struct mpc_bus);
	count++;
	memcpy(p, &(struct mpc_ioapic){ MP_IOAPIC, (uint8_t)ncpus, IOAPIC_VERSION, 1, MPTABLE_IOAPIC_GPA },
	       sizeof(struct mpc_ioapic));
	p += sizeof(struct mpc_ioapic);
	count++;
	for (i = 0; i < ISA_IRQS; i++, count++, p += sizeof(struct mpc_intsrc)) {
		/* Pin 2 is the PIC cascade on a PC; KVM routes GSI 2 there too, and nothing raises it. */
		struct mpc_intsrc src = { MP_INTSRC, MP_INT, 0, ISA_BUS, (uint8_t)i, (uint8_t)ncpus, (uint8_t)i };

		memcpy(p, &src, sizeof(src));
	}
	/* LINT0 ExtINT (the PIC, before the I/O APIC is set up) and LINT1 NMI, on every local APIC. */
	memcpy(p, &(struct mpc_intsrc){ MP_LINTSRC, MP_EXTINT, 0, ISA_BUS, 0, 0xff, 0 }, sizeof(struct mpc_intsrc));
	p += sizeof(struct mpc_intsrc);
	memcpy(p, &(struct mpc_intsrc){ MP_LINTSRC, MP_NMI, 0, ISA_BUS, 0, 0xff, 1 }, sizeof(struct mpc_intsrc));
	count += 2;

	memcpy(mpc->signature, "PCMP", 4);
	mpc->length = (uint16_t)len;
	mpc->spec = 4;
	memcpy(mpc->oem, "VMM     ", 8);
	memcpy(mpc->productid, "KVM         ", 12);
	mpc->oemcount = count;
	mpc->lapic = MPTABLE_LAPIC_GPA;
	mpc->checksum = mp_checksum(mpc, len);

	memcpy(mpf->signature, "_MP_", 4);
	mpf->physptr = (uint32_t)table_gpa;
	mpf->length = 1;
	mpf->specification = 4;
	mpf->checksum = mp_checksum(mpf, sizeof(*mpf));
	return 0;
}
