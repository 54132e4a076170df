# shellcheck shell=bash
# The namespace pktbench runs in (bench/scenarios/10-pktbench.sh, bench/profile.sh).
# Nothing here carries packets (test_run only), but the namespace keeps the
# datapath's FIB lookups off the host's routes and makes them the same on every
# machine. Both ends of each veth live inside it: no link to the root namespace.
# shellcheck source=../../selftests/lib/netns.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../selftests/lib/netns.sh"

# pktbench_netns NS: create NS with ext0 (the node address 192.168.77.2, a
# gateway neighbour) and pod0 (the pod routes and neighbours pktbench.c uses).
pktbench_netns()
{
	local ns=$1 i
	ip netns add "$ns" || return 1
	ip -n "$ns" -batch - <<EOB || return 1
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
		ip -n "$ns" neighbor add "10.131.255.$i" lladdr "02:00:00:00:02:$(printf %02x "$i")" dev pod0 nud permanent ||
			return 1
	done
	ns_run "$ns" sysctl -qw net.ipv4.ip_forward=1
}
