/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * CRC-32C (Castagnoli), the checksum of every stream record: the SSE4.2
 * crc32 instruction where the CPU has it, a table otherwise.  Same result
 * either way (initial value ~0, final inversion, as iSCSI and ext4 use it).
 */
#ifndef MIGRATE_CRC32C_H
#define MIGRATE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: crc32c(0, ...) starts one; pass the result to continue. */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);

#endif
