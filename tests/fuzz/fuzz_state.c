// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target: the machine-state decoder (migrate/state.c), which a
 * destination runs on the MACHINE_STATE record a source sent, and `vmm run`
 * on a snapshot file.  The input is
 *
 *	byte 0		the destination's vCPU count (0 and > 64 are refused first)
 *	bytes 1-2	its xsave size, little endian (0: the legacy fpu)
 *	the rest	the blob, as it came off the wire
 *
 * Besides ASan and UBSan, the oracle: a blob that decodes encodes again
 * (state_encode), and that encoding decodes and encodes to the same bytes:
 * the decoder accepts nothing the encoder cannot say.
 *
 * Debian 12's libfdt 1.6.1 dereferences NULL in fdt_check_full() on a
 * header whose version is 2..15 with last_comp_version 0 (issue 11, point
 * 1; this target found it at once): state.c checks the header by hand
 * before libfdt sees a blob, and the input that crashed is kept in the
 * corpus (regress-libfdt-version3) so that it stays refused.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/state.h"
#include "tests/fuzz/feed.h"
#include "vmm/log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_level = LOG_QUIET;
	return 0;
}

/* The header's version (big endian at byte 20) is not 17: see above. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct machine_state ms, again;
	void *blob, *blob2;
	size_t len, len2;
	uint32_t xsave;
	uint8_t *copy;
	int ncpus;

	if (size < 3)
		return 0;
	ncpus = data[0];
	xsave = (uint32_t)data[1] | (uint32_t)data[2] << 8;
	/* A copy of exactly the blob's size: ASan sees any read past its end. */
	copy = malloc(size - 3 ? size - 3 : 1);
	memcpy(copy, data + 3, size - 3);
	if (state_decode(copy, size - 3, ncpus, xsave, &ms) == 0) {
		FUZZ_ASSERT(ms.ncpus == ncpus && ms.xsave_size == xsave);
		FUZZ_ASSERT(state_encode(&ms, &blob, &len) == 0);
		FUZZ_ASSERT(state_decode(blob, len, ncpus, xsave, &again) == 0);
		FUZZ_ASSERT(state_encode(&again, &blob2, &len2) == 0);
		FUZZ_ASSERT(len == len2 && !memcmp(blob, blob2, len));
		free(blob);
		free(blob2);
		machine_state_free(&again);
		machine_state_free(&ms);
	}
	free(copy);
	return 0;
}
