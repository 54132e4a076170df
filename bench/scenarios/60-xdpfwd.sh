#!/usr/bin/env bash
# Scenario "xdpfwd": XDP forwarding rate of kxp's XDP program with live frames
# (bench/xdpfwd.c, bench/xdpfwd.bpf.c) against floor programs, in a private
# network namespace: ext0 (the node's external device) and fwd0 (a second
# device toward other backends), whose veth peers run the counting sink.
# Called by bench/run.sh: 60-xdpfwd.sh --json FILE --md FILE --reps N [--quick]
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../lib/common.sh
source bench/lib/common.sh
bench_args "$@"

for f in "$build/bench/xdpfwd" "$build/bench/xdpfwd.bpf.o"; do
	[ -e "$f" ] || { echo "60-xdpfwd.sh: $f missing (run make all)" >&2; exit 1; }
done

# Every frame stays inside this namespace: both ends of each veth live here,
# there is no link to the root namespace, and the sinks drop what arrives.
ns=kxpfwd-$$-$RANDOM
cleanup() { ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM
ip netns add "$ns"
ns_run "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n "$ns" -batch - <<EOB
link set lo up
link add ext0 type veth peer name ext0p
link add fwd0 type veth peer name fwd0p
link set ext0 address 02:00:00:00:00:02
link set fwd0 address 02:00:00:00:01:02
link set ext0 up
link set ext0p up
link set fwd0 up
link set fwd0p up
address add 192.168.77.2/24 dev ext0
address add 192.168.78.2/24 dev fwd0
neighbor add 192.168.77.1 lladdr 02:00:00:00:00:01 dev ext0 nud permanent
neighbor add 192.168.78.1 lladdr 02:00:00:00:01:01 dev fwd0 nud permanent
route add default via 192.168.77.1 dev ext0
route add 10.128.0.0/14 via 192.168.77.1 dev ext0
route add 10.130.0.0/16 via 192.168.78.1 dev fwd0
EOB
# bpf_fib_lookup answers FWD_DISABLED without forwarding on the ingress device.
ns_run "$ns" sysctl -qw net.ipv4.ip_forward=1

args=(--obj "$build/bench/xdpfwd.bpf.o" --reps "$reps" --json "$json" --md "$md")
if [ "$quick" = 1 ]; then
	args+=(--services "${XDPFWD_N:-1,10000}" --repeat 2000000 --pass-repeat 500000)
else
	args+=(--services "${XDPFWD_N:-1,1000,10000,30000}" --repeat 5000000 --pass-repeat 1000000)
fi
ns_run "$ns" "$build/bench/xdpfwd" "${args[@]}"
