# SPDX-License-Identifier: GPL-2.0-or-later
# Shared helpers for the integration tests (bash).  Source it first:
#	. "$(dirname "$0")/../lib.sh"
# A test exits 0 pass, 1 fail, 77 skip (after a "SKIP: why" line).

set -uo pipefail
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VMM=${VMM:-$TOP/build/vmm}
GUEST=${GUEST:-$TOP/guest/guest.img}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/vmm-test.XXXXXX")
PIDS=()
declare -A OUT_OF	# pid -> its output file

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
note() { echo "# $*"; }

need_kvm() {
	[ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] ||
		skip "no usable /dev/kvm (run through scripts/kvm-sandbox)"
}

# Wait until FILE has a line matching the extended regex RE, at most SECS seconds.
# (Deadlines use $SECONDS: under TCG a sleep-and-grep round can take far longer than its sleep.)
wait_for() {
	local file=$1 re=$2 secs=${3:-60} deadline=$((SECONDS + ${3:-60}))
	while [ $SECONDS -le $deadline ]; do
		grep -qE -- "$re" "$file" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "timed out after ${secs}s waiting for /$re/ in $file; it has:"
	tail -n 20 "$file" | sed 's/^/  > /'
	return 1
}

# Start vmm in the background: vmm_start NAME ARGS...; sets VMM_PID, output in $TMP/NAME.out.
vmm_start() {
	local name=$1
	shift
	"$VMM" "$@" >"$TMP/$name.out" 2>&1 </dev/null &
	VMM_PID=$!
	PIDS+=("$VMM_PID")
	OUT_OF[$VMM_PID]=$TMP/$name.out
}

# Wait for a background vmm to end, at most SECS; sets VMM_STATUS.
vmm_wait() {
	local pid=$1 secs=${2:-120} deadline=$((SECONDS + ${2:-120})) f
	while [ $SECONDS -le $deadline ]; do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			VMM_STATUS=$?
			return 0
		fi
		sleep 0.1
	done
	echo "vmm (pid $pid) still running after ${secs}s"
	f=${OUT_OF[$pid]:-}
	[ -n "$f" ] && tail -n 20 "$f" | sed 's/^/  > /'
	kill -9 "$pid" 2>/dev/null
	return 1
}

# Run monitor commands on socket SOCK: mon SOCK CMD...
mon() {
	local sock=$1
	shift
	"$VMM" monitor "$sock" "$@"
}

# Wait for a monitor socket to accept connections.
wait_socket() {
	local sock=$1 secs=${2:-30} deadline=$((SECONDS + ${2:-30}))
	while [ $SECONDS -le $deadline ]; do
		[ -S "$sock" ] && "$VMM" monitor "$sock" "info status" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "monitor socket $sock never came up"
	return 1
}

# A free TCP port on the loopback.
free_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 20000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
	done
	echo 47321
}

# The value of "name: value" in a monitor reply: field "$reply" "pages remaining"
field() {
	sed -n "s/^$2: //p" <<<"$1" | head -n 1
}

# Start a source VM running the dirty guest: src_start NAME CPUS "GUEST ARGS" [vmm options...]
# Sets SRC_PID and SRC_SOCK; output in $TMP/NAME.out.
src_start() {
	local name=$1 cpus=$2 args=$3
	shift 3
	SRC_SOCK=$TMP/$name.sock
	vmm_start "$name" run "$GUEST" -m 256M -c "$cpus" -n --monitor "unix:$SRC_SOCK" --append "$args" "$@"
	SRC_PID=$VMM_PID
	wait_socket "$SRC_SOCK" || fail "source $name: no monitor"
	wait_for "$TMP/$name.out" '^dirty: t=' 60 || fail "source $name: the guest does not run"
}

# Start a destination: dst_start NAME CPUS URI [vmm options...]; sets DST_PID, DST_SOCK.
dst_start() {
	local name=$1 cpus=$2 uri=$3
	shift 3
	DST_SOCK=$TMP/$name.sock
	vmm_start "$name" run --incoming "$uri" -m 256M -c "$cpus" -n --monitor "unix:$DST_SOCK" "$@"
	DST_PID=$VMM_PID
	wait_socket "$DST_SOCK" || fail "destination $name: no monitor"
	wait_for "$TMP/$name.out" 'waiting for a migration|cannot listen' 30 || fail "destination $name: not listening"
	grep -q 'cannot listen' "$TMP/$name.out" && { cat "$TMP/$name.out"; fail "destination $name: cannot listen"; }
}

# The guest's verdict in a vmm's output file: 0 for PASS with exit status 0.
expect_pass() {
	local name=$1 status=$2
	grep -q '^dirty: PASS' "$TMP/$name.out" && [ "$status" -eq 0 ] && return 0
	tail -n 15 "$TMP/$name.out"
	fail "$name: the guest did not verify (exit status $status)"
}
