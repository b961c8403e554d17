#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# make check's pass over the fuzz targets, so that they cannot rot: build
# them (make fuzz-build: clang, ASan, UBSan, libFuzzer) and run each on its
# seed corpus plus a few seconds of fuzzing (tests/fuzz/run --check).  Any
# crash fails, its input kept in build/fuzz/crashes/.  Skips only without clang.
# timeout: 600
. "$(dirname "$0")/../lib.sh"
command -v "${FUZZ_CC:-clang}" >/dev/null || skip "no ${FUZZ_CC:-clang} to build the fuzz targets (scripts/install-deps installs it)"
make -C "$TOP" -j"$(nproc)" --no-print-directory fuzz-build || fail "make fuzz-build"
"$TOP/tests/fuzz/run" --check --seconds "${FUZZ_CHECK_SECONDS:-3}" || fail "a fuzz target failed (above)"
echo PASS
