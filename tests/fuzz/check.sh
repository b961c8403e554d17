#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# make check's pass over the fuzz targets, so that they cannot rot: build
# them (make fuzz-build: clang, ASan, UBSan, libFuzzer) and run each on its
# seed corpus plus a few seconds of fuzzing (tests/fuzz/run --check).  Any
# crash fails, its input kept in build/fuzz/crashes/.  The seed corpus must
# be what the project's writers make today (make fuzz-corpus), or the seeds
# stop at a version or layout check and the fuzzers go shallow without a
# word.  Skips only without clang.
# timeout: 600
. "$(dirname "$0")/../lib.sh"
command -v "${FUZZ_CC:-clang}" >/dev/null || skip "no ${FUZZ_CC:-clang} to build the fuzz targets (scripts/install-deps installs it)"
make -C "$TOP" -j"$(nproc)" --no-print-directory fuzz-build || fail "make fuzz-build"
make -C "$TOP" --no-print-directory build/fuzz/gen_corpus guest || fail "cannot build gen_corpus"
"$TOP/build/fuzz/gen_corpus" "$TMP/corpus" "$TOP/guest/guest.img" || fail "gen_corpus failed"
# (Files that gen_corpus does not write, such as regress-* inputs kept from crashes, stay as they are.)
for f in "$TMP"/corpus/*/*; do
	cmp -s "$f" "$TOP/tests/fuzz/corpus/${f#"$TMP"/corpus/}" ||
		fail "tests/fuzz/corpus/${f#"$TMP"/corpus/} is stale: run make fuzz-corpus and commit it"
done
"$TOP/tests/fuzz/run" --check --seconds "${FUZZ_CHECK_SECONDS:-3}" || fail "a fuzz target failed (above)"
echo PASS
