#!/usr/bin/env bash
# Scenario "select": per-new-flow ns of random, rr and maglev selection through
# the XDP program (bench/selbench.c, BPF_PROG_TEST_RUN) and the memory of one
# Maglev table at the default M. Run in a private network namespace (test_run
# only: no packet leaves, but the datapath's lookups see no host state).
# Called by bench/run.sh: 40-select.sh --json FILE --md FILE --reps N [--quick]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BENCH_BUILD:-${KXP_BUILD:-build}}

json= md= reps=5 quick=0
while [ $# -gt 0 ]; do
	case $1 in
	--json) json=$2; shift 2 ;;
	--md) md=$2; shift 2 ;;
	--reps) reps=$2; shift 2 ;;
	--quick) quick=1; shift ;;
	*) echo "40-select.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ -n "$json" ] && [ -n "$md" ] || { echo "40-select.sh: --json and --md are required" >&2; exit 2; }
[ -x "$build/bench/selbench" ] || { echo "40-select.sh: $build/bench/selbench missing (run make all)" >&2; exit 1; }

flows=65536
[ "$quick" = 1 ] && flows=16384
cpu=$(($(nproc) - 1))
unshare --net "$build/bench/selbench" --reps "$reps" --flows "$flows" --cpu "$cpu" --json "$json" --md "$md"
