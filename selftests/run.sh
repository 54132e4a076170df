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
[ ${#suites[@]} -gt 0 ] || suites=(unit bpf e2e)
log=$(mktemp /tmp/kxp-test.XXXXXX)
trap 'rm -f "$log"' EXIT

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
	bpf) run_suite bpf 300 "$KXP_BUILD/bpf-tests" ;;
	e2e)
		for t in selftests/e2e/test_*.sh; do
			[ -e "$t" ] || continue
			n=$(basename "$t" .sh)
			run_suite "e2e/${n#test_}" 300 bash "$t"
		done
		;;
	*) echo "unknown suite: $s" >&2; exit 2 ;;
	esac
done

pass=$(grep -c '^PASS: ' "$log")
fail=$(grep -c '^FAIL: ' "$log")
skip=$(grep -c '^SKIP: ' "$log")
if [ "$fail" -gt 0 ]; then
	echo "failed tests:"
	grep '^FAIL: ' "$log" | sed 's/^/  /'
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
