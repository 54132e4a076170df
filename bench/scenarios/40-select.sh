#!/usr/bin/env bash
# Scenario "select": per-new-flow ns of random, rr and maglev selection through
# the XDP program (bench/selbench.c, BPF_PROG_TEST_RUN) and the memory of one
# Maglev table at the default M. Run in a private network namespace (test_run
# only: no packet leaves, but the datapath's lookups see no host state).
# Called by bench/run.sh: 40-select.sh --json FILE --md FILE --reps N [--quick]
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../lib/common.sh
source bench/lib/common.sh
bench_args "$@"
[ -x "$build/bench/selbench" ] || { echo "40-select.sh: $build/bench/selbench missing (run make all)" >&2; exit 1; }

flows=65536
[ "$quick" = 1 ] && flows=16384
cpu=$(($(nproc) - 1))
unshare --net "$build/bench/selbench" --reps "$reps" --flows "$flows" --cpu "$cpu" --json "$json" --md "$md"
