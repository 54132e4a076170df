#!/usr/bin/env bash
# Scenario "pktbench": per-packet ns of kxp's XDP and TC ingress programs
# (bench/pktbench.c), run in a private network namespace that has an external
# and a pod-facing device, so FIB lookups in the datapath see a node's routes.
# Called by bench/run.sh: 10-pktbench.sh --json FILE --md FILE --reps N [--quick]
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../lib/common.sh
source bench/lib/common.sh
bench_args "$@"
for f in "$build/bench/pktbench"; do
	[ -e "$f" ] || { echo "10-pktbench.sh: $f missing (run make all)" >&2; exit 1; }
done

# shellcheck source=../lib/pktns.sh
source bench/lib/pktns.sh
ns=kxpbench-$$-$RANDOM
cleanup() { ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM
pktbench_netns "$ns"

args=(--reps "$reps" --ext-if ext0 --pod-if pod0 --json "$json" --md "$md")
if [ "$quick" = 1 ]; then
	args+=(--repeat 100000 --flows 32768)
fi
nsenter --net="/run/netns/$ns" "$build/bench/pktbench" "${args[@]}"
