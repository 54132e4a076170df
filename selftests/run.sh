#!/usr/bin/env bash
# Runs the test suites (all, or those named: unit bpf e2e) and ends with one
# line "N passed, N failed, N skipped". Each suite prints one protocol line per
# test (PASS:/FAIL:/SKIP:, see selftests/lib/testlib.h); a suite that dies or
# times out without printing its lines counts as one failure.
set -u
cd "$(dirname "$0")/.."
export KXP_SRCDIR=$PWD
# Where the binaries are: make passes its BUILD directory (parallel builds may use another).
export KXP_BUILD=${KXP_BUILD:-$PWD/build}
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(unit bpf e2e kernels)
log=$(mktemp /tmp/kxp-test.XXXXXX)
trap 'rm -f "$log"' EXIT

# What tests may leave behind if their cleanup is broken: network namespaces,
# pinned BPF directories, kxp's attachment records, kxp programs on cgroups,
# processes of this build (servers and agents the tests started).
leftovers() {
	pgrep -af -- "^$KXP_BUILD/" 2>/dev/null | awk '{print "process " $0}'
	ip netns list 2>/dev/null | awk '{print "netns " $1}'
	ls -d /sys/fs/bpf/kxp-* 2>/dev/null | sed 's/^/pin /'
	ls -d /run/kxp/* 2>/dev/null | sed 's/^/state /'
	if command -v bpftool >/dev/null; then
		bpftool cgroup tree 2>/dev/null | awk '/kxp_/ {print "cgroup-prog " $0}'
	fi
}
before=$(mktemp /tmp/kxp-left.XXXXXX)
leftovers | sort >"$before"
trap 'rm -f "$log" "$before"' EXIT

run_suite() { # name timeout cmd...
	local name=$1 limit=$2 rc
	shift 2
	echo "== $name"
	KXP_TEST_SUITE=$name timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$log"
	rc=${PIPESTATUS[0]}
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		echo "FAIL: $name: suite timed out after ${limit}s" | tee -a "$log"
	elif [ "$rc" -gt 1 ] && ! grep -q "^$name: [0-9]* passed" "$log"; then
		echo "FAIL: $name: suite exited with status $rc" | tee -a "$log"
	fi
}

for s in "${suites[@]}"; do
	case $s in
	unit) run_suite unit 300 "$KXP_BUILD/unit-tests" ;;
	bpf)
		run_suite bpf 300 "$KXP_BUILD/bpf-tests"
		# The same programs as a 5.10 kernel gets them (objects without
		# bpf_loop, no coarse clock, no set_retval, no XDP metadata, no
		# FIB lookup flags): every fallback path runs here whatever this
		# kernel has.
		KXP_PROBE_DENY=H_LOOP,H_COARSE_CLOCK,H_SET_RETVAL,H_XDP_META,FIB_SKIP_NEIGH,FIB_SRC \
			run_suite bpf-fallbacks 300 "$KXP_BUILD/bpf-tests"
		;;
	e2e)
		for t in selftests/e2e/test_*.sh; do
			[ -e "$t" ] || continue
			n=$(basename "$t" .sh)
			run_suite "e2e/${n#test_}" 300 bash "$t"
		done
		;;
	kernels)
		# Debian 12's own kernel (6.1) under qemu: the BPF suite and the
		# traffic tests there, one PASS/FAIL line (make test-kernels runs
		# 5.10 and 6.12 too). A kernel that cannot be fetched is skipped.
		run_suite kernels 1500 env KXP_KERNELS_PROTOCOL=1 bash selftests/kernels/run.sh "${KXP_TEST_KERNELS:-6.1}"
		;;
	*) echo "unknown suite: $s" >&2; exit 2 ;;
	esac
done

# Anything the run created and did not remove is a failure of its own.
new=$(leftovers | sort | comm -13 "$before" -)
if [ -n "$new" ]; then
	echo "FAIL: cleanup: left on this machine after the tests: $(echo "$new" | head -5 | tr '\n' ';')" | tee -a "$log"
fi

pass=$(grep -c '^PASS: ' "$log")
fail=$(grep -c '^FAIL: ' "$log")
skip=$(grep -c '^SKIP: ' "$log")
if [ "$fail" -gt 0 ]; then
	echo "failed tests:"
	grep '^FAIL: ' "$log" | sed 's/^/  /'
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
