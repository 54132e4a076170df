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

# Nothing here carries packets (test_run only), but the namespace keeps the
# datapath's FIB lookups off the host's routes and makes them the same on every
# machine. Both ends of each veth live inside it: no link to the root namespace.
ns=kxpbench-$$-$RANDOM
cleanup() { ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM
ip netns add "$ns"
ip -n "$ns" -batch - <<EOB
link set lo up
link add ext0 type veth peer name ext0p
link add pod0 type veth peer name pod0p
link set ext0 address 02:00:00:00:00:02
link set ext0 up
link set ext0p up
link set pod0 up
link set pod0p up
address add 192.168.77.2/24 dev ext0
neighbor add 192.168.77.1 lladdr 02:00:00:00:00:01 dev ext0 nud permanent
route add default via 192.168.77.1 dev ext0
route add 10.128.0.0/14 via 192.168.77.1 dev ext0
route add 10.131.0.0/16 dev pod0
neighbor add 10.131.0.1 lladdr 02:00:00:00:01:01 dev pod0 nud permanent
EOB
# Local pods that back the eTP=Local NodePort services (pktbench.c: LOCAL_BE + 2j + k).
for i in $(seq 2 17); do
	ip -n "$ns" neighbor add "10.131.255.$i" lladdr "02:00:00:00:02:$(printf %02x "$i")" dev pod0 nud permanent
done
nsenter --net="/run/netns/$ns" sysctl -qw net.ipv4.ip_forward=1

args=(--reps "$reps" --ext-if ext0 --pod-if pod0 --json "$json" --md "$md")
if [ "$quick" = 1 ]; then
	args+=(--repeat 100000 --flows 32768)
fi
nsenter --net="/run/netns/$ns" "$build/bench/pktbench" "${args[@]}"
