#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The shape docs/design.md promises of migrate/: no function over 80 lines,
# no pc_ prefix (it reads as "program counter"), no ufd field (urgent beside
# uffd), one migration_ prefix (no mig_), and every .c file of vmm/ and
# migrate/ named in docs/design.md with what it owns; every bash script parses.
. "$(dirname "$0")/../lib.sh"
cd "$TOP" || exit 1
bad=0
# A function: a line starting with a name and "(" at column 0 (not static
# declarations ending in ";"), then the body up to the "}" at column 0.
long=$(awk '
	/^[a-zA-Z].*\(/ && !/;[[:space:]]*$/ { name = $0; start = FNR; inbody = 0 }
	/^\{/ && start { inbody = 1 }
	/^\}/ && inbody { n = FNR - start + 1; if (n > 80) printf "%s:%d: %d lines: %s\n", FILENAME, start, n, name; start = 0; inbody = 0 }
' migrate/*.c)
if [ -n "$long" ]; then
	echo "functions over 80 lines:"
	echo "$long"
	bad=1
fi
if grep -nE '\bpc_[a-z_]+|\bmig_[a-z_]+|\bMIG_[A-Z_]+' migrate/*.[ch]; then
	echo "pc_ or mig_ names above"
	bad=1
fi
if grep -nE '(->|\.)ufd\b|\bint ufd\b|\bust\b' migrate/*.[ch]; then
	echo "ufd / ust names above (say urgent)"
	bad=1
fi
for f in vmm/*.c migrate/*.c; do
	grep -q "\`$f\`\|\`$(basename "$f")\`" docs/design.md || { echo "docs/design.md does not name $f"; bad=1; }
done
# Code fences must close: an odd number of ``` lines leaves the rest as code.
n=$(grep -c '^```' docs/design.md)
[ $((n % 2)) -eq 0 ] || { echo "docs/design.md: an unclosed code fence ($n fence lines)"; bad=1; }
# Every bash script parses: a test that cannot start fails in the sandbox, after minutes of setup.
for f in tests/*.sh tests/*/*.sh scripts/* bench/*.sh; do
	head -n 1 "$f" | grep -q bash || continue
	bash -n "$f" 2>&1 || { echo "$f: does not parse (bash -n)"; bad=1; }
done
[ $bad -eq 0 ] || fail "the code or docs/design.md do not have the shape they promise"
echo PASS
