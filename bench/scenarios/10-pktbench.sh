#!/usr/bin/env bash
# Scenario "pktbench": per-packet ns of kxp's XDP and TC ingress programs
# (bench/pktbench.c), run in a private network namespace that has an external
# and a pod-facing device, so FIB lookups in the datapath see a node's routes.
# Called by bench/run.sh: 10-pktbench.sh --json FILE --md FILE --reps N [--quick]
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../../selftests/lib/netns.sh
source selftests/lib/netns.sh
build=${BENCH_BUILD:-${KXP_BUILD:-build}}

json= md= reps=5 quick=0
while [ $# -gt 0 ]; do
	case $1 in
	--json) json=$2; shift 2 ;;
	--md) md=$2; shift 2 ;;
	--reps) reps=$2; shift 2 ;;
	--quick) quick=1; shift ;;
	*) echo "10-pktbench.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ -n "$json" ] && [ -n "$md" ] || { echo "10-pktbench.sh: --json and --md are required" >&2; exit 2; }
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
