# SPDX-License-Identifier: GPL-2.0-or-later
# Shared helpers for the integration tests (bash).  Source it first:
#	. "$(dirname "$0")/../lib.sh"
# A test exits 0 pass, 1 fail, 77 skip (after a "SKIP: why" line).
#
# Deadlines.  A deadline here only ever catches a hang; it never decides a
# verdict that a slow machine could flip.  Every wait (wait_for, vmm_wait,
# wait_socket, mon, guest_stop, the tests' own polling loops through
# `scaled`, run-tests' limit) is a generous base, sized for the slowest place
# the tests run on a quiet machine (scripts/kvm-sandbox: KVM nested in QEMU
# TCG, 10-40x slower than native), times TEST_SLOWDOWN: a positive number
# saying how much slower than quiet this machine is now.  scripts/check
# measures it once at its start, on the host (as many copies of a fixed
# shell loop as there are CPUs, against the time they take on a quiet
# machine; never below 1), and passes it into the sandbox.  A test run by
# hand takes it from the environment, else 1.
#
# Guests that must outlive a migration run with a large secs= (a safety net
# only) and end when the test says so: guest_stop writes the dirty guest's
# control word (its ctl= address), the guest stops, verifies everything and
# prints its verdict.
#
# Processes.  Everything a test runs in the background goes through spawn
# (vmm_start, src_start and dst_start use it), which keeps its pid, its name
# and its output file.  When the test exits, however it exits, the cleanup
# ends every process the test started and their children (SIGTERM, SIGKILL
# after a grace period, every wait bounded), and if the test did not pass or
# skip it prints each spawned process's output under a header
#	==== output of NAME (pid N, exit S): PATH ====
# so that a failure can be read from the log alone.

set -uo pipefail

# TEST_SLOWDOWN as thousandths, checked once.
TEST_SLOWDOWN=${TEST_SLOWDOWN:-1}
SLOW_MILLI=0
if [[ $TEST_SLOWDOWN =~ ^([0-9]*)(\.([0-9]*))?$ ]]; then
	_frac=${BASH_REMATCH[3]}000
	SLOW_MILLI=$((10#0${BASH_REMATCH[1]} * 1000 + 10#${_frac:0:3}))
fi
if [ "$SLOW_MILLI" -le 0 ]; then
	echo "FAIL: TEST_SLOWDOWN='$TEST_SLOWDOWN' is not a positive number"
	exit 1
fi

# vmm's own exit statuses (vmm/vm.h; `vmm run --help` lists them).  All are
# even: with --debug-exit=qemu every guest status is odd, so none is taken
# for a guest's verdict.  The guest's debug-exit value is its own status.
VMM_EXIT_USAGE=2
VMM_EXIT_SETUP=116
VMM_EXIT_INCOMING=118
VMM_EXIT_VM_ERROR=120

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VMM=${VMM:-$TOP/build/vmm}
GUEST=${GUEST:-$TOP/guest/guest.img}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/vmm-test.XXXXXX")
LIB_PID=$BASHPID
PIDS=()			# spawned pids, in start order
declare -A OUT_OF	# pid -> its output file
declare -A NAME_OF	# pid -> its name
declare -A PID_OF_OUT	# output file -> pid
declare -A STATUS_OF	# pid -> exit status, once waited for
CLEANUP_HOOKS=()	# commands the cleanup runs first (eval'd)

# A base number of seconds times TEST_SLOWDOWN, rounded up: scaled 60
scaled() {
	echo $((($1 * SLOW_MILLI + 999) / 1000))
}

# Both ends of every migration give their peer this long (peer-timeout):
# 30 s scaled, so that only a peer that is really gone runs into it.
PEER_TIMEOUT_MS=$(($(scaled 30) * 1000))

# The test's own stdout, for FAIL lines said inside $(...).
exec {LIB_OUT}>&1
fail() {
	echo "FAIL: $*" >&"$LIB_OUT"
	# In a subshell ($(...), a pipeline) exit alone would end only the
	# subshell: tell the test itself to fail too.
	[ "$BASHPID" = "$LIB_PID" ] || kill -USR1 "$LIB_PID" 2>/dev/null
	exit 1
}
skip() { echo "SKIP: $*"; exit 77; }
note() { echo "# $*"; }

# Run a command at cleanup, before the processes are ended: at_cleanup CMD
at_cleanup() { CLEANUP_HOOKS+=("$1"); }

# Whether PID exists and is not a zombie.
running() {
	local s
	{ s=$(<"/proc/$1/stat"); } 2>/dev/null || return 1
	s=${s##*) }
	[ "${s%% *}" != Z ]
}

# Every descendant of this shell, parents before children.
descendants() {
	ps -e -o pid=,ppid= 2>/dev/null | awk -v top="$LIB_PID" '
		{ kids[$2] = kids[$2] " " $1 }
		END {
			n = split(kids[top], q, " ")
			for (i = 1; i <= n; i++) {
				print q[i]
				m = split(kids[q[i]], k, " ")
				for (j = 1; j <= m; j++) q[++n] = k[j]
			}
		}'
}

# Wait until none of the pids runs, at most SECS (not scaled); 1 if some do.
wait_gone() {
	local secs=$1 deadline p left
	shift
	deadline=$((SECONDS + secs))
	while :; do
		left=0
		for p in "$@"; do
			running "$p" && { left=1; break; }
		done
		[ $left -eq 0 ] && return 0
		[ $SECONDS -lt "$deadline" ] || return 1
		sleep 0.05
	done
}

# Print the output of every spawned process, in start order: the last 200
# lines, or 40 of one that had ended with status 0 before the cleanup.
show_outputs() {
	local p f lines how n
	for p in "${PIDS[@]}"; do
		f=${OUT_OF[$p]}
		how="exit ${STATUS_OF[$p]:-?}"
		lines=200
		if [ -n "${KILLED[$p]:-}" ]; then
			how="$how, ended by the cleanup"
		elif [ "${STATUS_OF[$p]:-}" = 0 ]; then
			lines=40
		fi
		echo "==== output of ${NAME_OF[$p]} (pid $p, $how): $f ===="
		if [ ! -s "$f" ]; then
			echo "(empty)"
			continue
		fi
		n=$(wc -l <"$f")
		[ "$n" -gt $lines ] && echo "(the last $lines of $n lines)"
		tail -n $lines "$f"
	done
	[ ${#PIDS[@]} -eq 0 ] || echo "==== end of the outputs ===="
}

cleanup() {
	local rc=$? p h all=() more=() stuck=()
	declare -gA KILLED=()
	[ "$BASHPID" = "$LIB_PID" ] || return
	trap - EXIT TERM INT HUP USR1
	for h in "${CLEANUP_HOOKS[@]}"; do
		eval "$h" >/dev/null 2>&1
	done
	for p in "${PIDS[@]}"; do
		running "$p" && KILLED[$p]=1
	done
	# Everything this shell started, spawned or not, with its children.
	mapfile -t all < <(descendants)
	if [ ${#all[@]} -gt 0 ]; then
		kill -TERM "${all[@]}" 2>/dev/null
		if ! wait_gone "$(scaled 3)" "${all[@]}"; then
			mapfile -t more < <(descendants)
			kill -KILL "${all[@]}" "${more[@]}" 2>/dev/null
			wait_gone "$(scaled 5)" "${all[@]}" "${more[@]}"
		fi
		for p in "${all[@]}" "${more[@]}"; do
			running "$p" && stuck+=("$p")
		done
		[ ${#stuck[@]} -gt 0 ] && echo "cleanup: still running after SIGKILL: ${stuck[*]}"
	fi
	for p in "${PIDS[@]}"; do
		[ -n "${STATUS_OF[$p]:-}" ] && continue
		running "$p" && continue
		wait "$p" 2>/dev/null
		STATUS_OF[$p]=$?
	done
	if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
		echo "==== the test ended with status $rc after ${SECONDS}s ===="
		show_outputs
	fi
	rm -rf "$TMP"
	exit $rc
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP
trap 'exit 1' USR1

# Wait until the test's own screen() (e.g. a tmux pane's text) has a line
# matching RE, at most SECS (default 60) times TEST_SLOWDOWN.
wait_screen() {
	local deadline=$((SECONDS + $(scaled "${2:-60}")))
	until screen | grep -qE -- "$1"; do
		[ $SECONDS -le $deadline ] || return 1
		sleep 0.2
	done
}

need_kvm() {
	"$TOP/scripts/kvm-sandbox" --probe >/dev/null ||
		skip "no hardware-virtualized /dev/kvm (run through scripts/kvm-sandbox)"
}

# A Linux guest test: KVM, tmux (the guest's console is a terminal), the
# guest of make linux-guest in $LG; tmux gets a HOME and a TERM of its own.
need_linux_guest() {
	need_kvm
	command -v tmux >/dev/null || skip "tmux is not installed"
	LG=$TOP/build/linux-guest
	[ -f "$LG/initramfs.cpio" ] && [ -e "$LG/bzImage" ] || fail "no $LG: make linux-guest builds it"
	export HOME=$TMP TERM=xterm
}

# Start a command in the background: spawn NAME CMD...; its output goes to
# $TMP/NAME.out (NAME-2.out... if NAME was taken).  Sets SPAWN_PID and
# SPAWN_OUT.  The cleanup ends it and shows its output.
spawn() {
	local name=$1 n=2
	shift
	SPAWN_OUT=$TMP/$name.out
	while [ -n "${PID_OF_OUT[$SPAWN_OUT]:-}" ]; do
		SPAWN_OUT=$TMP/$name-$n.out
		n=$((n + 1))
	done
	"$@" >"$SPAWN_OUT" 2>&1 </dev/null {LIB_OUT}>&- &
	SPAWN_PID=$!
	PIDS+=("$SPAWN_PID")
	OUT_OF[$SPAWN_PID]=$SPAWN_OUT
	NAME_OF[$SPAWN_PID]=$name
	PID_OF_OUT[$SPAWN_OUT]=$SPAWN_PID
}

# Wait until FILE has a line matching the extended regex RE, at most SECS
# seconds (default 120) times TEST_SLOWDOWN.  If a spawned process writes
# FILE and ends, the wait ends with it.
# (Deadlines use $SECONDS: under TCG a sleep-and-grep round can take far longer than its sleep.)
wait_for() {
	local file=$1 re=$2 secs deadline pid
	secs=$(scaled "${3:-120}")
	deadline=$((SECONDS + secs))
	pid=${PID_OF_OUT[$file]:-}
	while :; do
		grep -qE -- "$re" "$file" 2>/dev/null && return 0
		if [ -n "$pid" ] && ! running "$pid"; then
			grep -qE -- "$re" "$file" 2>/dev/null && return 0
			echo "${NAME_OF[$pid]} (pid $pid) ended without printing /$re/ in $file; it has:"
			break
		fi
		if [ $SECONDS -gt $deadline ]; then
			echo "timed out after ${secs}s waiting for /$re/ in $file; it has:"
			break
		fi
		sleep 0.1
	done
	tail -n 20 "$file" 2>/dev/null | sed 's/^/  > /'
	return 1
}

# Start vmm in the background: vmm_start NAME ARGS...; sets VMM_PID, output in $TMP/NAME.out.
vmm_start() {
	local name=$1
	shift
	spawn "$name" "$VMM" "$@"
	VMM_PID=$SPAWN_PID
}

# Wait for a spawned process to end, at most SECS (default 120) times
# TEST_SLOWDOWN; sets VMM_STATUS.  Killed (status 1) if it does not.
vmm_wait() {
	local pid=$1 secs deadline f
	secs=$(scaled "${2:-120}")
	deadline=$((SECONDS + secs))
	while [ $SECONDS -le $deadline ]; do
		if ! running "$pid"; then
			if [ -n "${STATUS_OF[$pid]:-}" ]; then
				VMM_STATUS=${STATUS_OF[$pid]}
			else
				wait "$pid"
				VMM_STATUS=$?
				STATUS_OF[$pid]=$VMM_STATUS
			fi
			return 0
		fi
		sleep 0.1
	done
	echo "${NAME_OF[$pid]:-process} (pid $pid) still running after ${secs}s"
	f=${OUT_OF[$pid]:-}
	[ -n "$f" ] && tail -n 20 "$f" | sed 's/^/  > /'
	kill -9 "$pid" 2>/dev/null
	return 1
}

# Run monitor commands on socket SOCK: mon SOCK CMD...  A monitor that does
# not answer within 120 s (times TEST_SLOWDOWN) is a hang: status 124.
mon() {
	local sock=$1 secs rc
	shift
	secs=$(scaled 120)
	timeout --foreground -k 5 "$secs" "$VMM" monitor "$sock" "$@"
	rc=$?
	[ $rc -eq 124 ] && echo "the monitor at $sock did not answer within ${secs}s" >&2
	return $rc
}

# Wait for a monitor socket to accept connections, at most SECS (default 60)
# times TEST_SLOWDOWN.
wait_socket() {
	local sock=$1 secs deadline
	secs=$(scaled "${2:-60}")
	deadline=$((SECONDS + secs))
	while [ $SECONDS -le $deadline ]; do
		[ -S "$sock" ] && mon "$sock" "info status" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "monitor socket $sock never came up (waited ${secs}s)"
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

# A top-level field of `info migrate --json` (a number or a string): jfield "$json" NAME
jfield() {
	sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$1" | head -n 1
}

# The migration status on monitor SOCK, from info migrate --json: mig_status SOCK
mig_status() {
	jfield "$(mon "$1" "info migrate --json")" status
}

# Wait until the migration status on monitor SOCK matches the extended regex
# STATUS (whole), at most SECS (default 120) times TEST_SLOWDOWN: wait_mig SOCK STATUS [SECS]
wait_mig() {
	local sock=$1 want=$2 deadline st=
	deadline=$((SECONDS + $(scaled "${3:-120}")))
	while [ $SECONDS -le "$deadline" ]; do
		st=$(mig_status "$sock")
		grep -qxE "$want" <<<"$st" && return 0
		sleep 0.2
	done
	echo "migration status at $sock: ${st:-none}, not $want"
	return 1
}

# The last "dirty: t=N" of the guest in FILE (empty if none yet).
guest_t() {
	sed -n 's/^dirty: t=\([0-9]*\).*/\1/p' "$1" 2>/dev/null | tail -n 1
}

# Wait until the dirty guest writing FILE progresses: a "dirty: t=" line
# later than the last one now (any, if none yet), at most SECS (default 120)
# times TEST_SLOWDOWN.  Sets GUEST_T to the new t.
wait_progress() {
	local file=$1 t0 secs deadline pid
	t0=$(guest_t "$file")
	secs=$(scaled "${2:-120}")
	deadline=$((SECONDS + secs))
	pid=${PID_OF_OUT[$file]:-}
	while :; do
		GUEST_T=$(guest_t "$file")
		[ -n "$GUEST_T" ] && [ "$GUEST_T" -gt "${t0:--1}" ] && return 0
		if [ -n "$pid" ] && ! running "$pid"; then
			GUEST_T=$(guest_t "$file")
			[ -n "$GUEST_T" ] && [ "$GUEST_T" -gt "${t0:--1}" ] && return 0
			echo "${NAME_OF[$pid]} (pid $pid) ended without progress past t=${t0:-none} in $file; it has:"
			break
		fi
		if [ $SECONDS -gt $deadline ]; then
			echo "no progress past t=${t0:-none} in ${secs}s in $file; it has:"
			break
		fi
		sleep 0.1
	done
	tail -n 20 "$file" 2>/dev/null | sed 's/^/  > /'
	return 1
}

# End the dirty guest's run early: guest_stop SOCK FILE pokes the control
# word (ctl= in the guest's first line, in FILE: the output of the host where
# the guest started; RAM migrates, so the address holds everywhere) through
# the monitor at SOCK, the host that runs the guest now.  The guest prints its
# stop line, verifies everything and exits with its verdict.  Retries while
# the page has not arrived yet or a vCPU is blocked on one (postcopy).
guest_stop() {
	local sock=$1 file=$2 ctl out deadline secs
	ctl=$(sed -n 's/^dirty: ws=.* ctl=\(0x[0-9a-fA-F]*\).*/\1/p' "$file" | head -n 1)
	[ -n "$ctl" ] || { echo "no ctl= address in $file"; return 1; }
	secs=$(scaled 60)
	deadline=$((SECONDS + secs))
	while :; do
		out=$(mon "$sock" "poke $ctl 1 4" 2>&1) && return 0
		if ! grep -qE 'has not arrived yet|does not stop' <<<"$out" || [ $SECONDS -gt $deadline ]; then
			echo "cannot stop the guest through $sock (poke $ctl 1 4): $out"
			return 1
		fi
		sleep 0.2
	done
}

# Before a migration from the VM at SOCK: the settings every migration test
# uses.  verify on: the destination checks every page against the source's
# digest before the guest runs (and each later page, in postcopy).
mig_prepare() {
	mon "$1" "migrate_set_capability verify on" "migrate_set_parameter peer-timeout $PEER_TIMEOUT_MS" ||
		fail "cannot turn verify on at $1"
}

# Start a source VM running the dirty guest: src_start NAME CPUS "GUEST ARGS" [vmm options...]
# Sets SRC_PID and SRC_SOCK; output in $TMP/NAME.out.  Ready to migrate (mig_prepare).
src_start() {
	local name=$1 cpus=$2 args=$3
	shift 3
	SRC_SOCK=$TMP/$name.sock
	vmm_start "$name" run "$GUEST" -m 256M -c "$cpus" -n --monitor "unix:$SRC_SOCK" --append "$args" "$@"
	SRC_PID=$VMM_PID
	wait_socket "$SRC_SOCK" || fail "source $name: no monitor"
	wait_for "$TMP/$name.out" '^dirty: t=' || fail "source $name: the guest does not run"
	mig_prepare "$SRC_SOCK"
}

# Start a destination: dst_start NAME CPUS URI [vmm options...]; sets DST_PID, DST_SOCK.
dst_start() {
	local name=$1 cpus=$2 uri=$3
	shift 3
	DST_SOCK=$TMP/$name.sock
	vmm_start "$name" run --incoming "$uri" -m 256M -c "$cpus" -n --monitor "unix:$DST_SOCK" \
		--set "peer-timeout=$PEER_TIMEOUT_MS" "$@"
	DST_PID=$VMM_PID
	wait_socket "$DST_SOCK" || fail "destination $name: no monitor"
	wait_for "$TMP/$name.out" 'waiting for a migration|cannot listen' || fail "destination $name: not listening"
	grep -q 'cannot listen' "$TMP/$name.out" && fail "destination $name: cannot listen"
}

# The guest's verdict in a vmm's output file: 0 for PASS with exit status 0.
expect_pass() {
	local name=$1 status=$2
	grep -q '^dirty: PASS' "$TMP/$name.out" && [ "$status" -eq 0 ] && return 0
	tail -n 15 "$TMP/$name.out"
	fail "$name: the guest did not verify (exit status $status)"
}
