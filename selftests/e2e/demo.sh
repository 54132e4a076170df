#!/usr/bin/env bash
# `make demo`: builds the 2-node namespace topology, syncs kxp on both nodes
# from deploy/examples/, sends a bounded number of requests to each frontend
# from a pod or the external client, and prints who answered and which client
# address each backend saw. Cleans up; exits non-zero if traffic failed.
source "$(dirname "$0")/lib.sh"
kxe_init demo 120
KXE_ECHO_SECONDS=110

die() { echo "demo: $*" >&2; exit 1; }

kxe_need || die "$KXE_SETUP_ERR"
echo "demo: building topology $KXE_ID (ext, fabric, node1, node2, pods pod1a pod1b pod2a)"
kxe_topology_up || die "could not build the topology"
kxe_echo_all || die "echo servers did not start"
kxe_routing_ok || die "plain pod-to-pod routing does not work"
# The demo's manifests only: deploy/examples (Nodes, Services, EndpointSlices).
mkdir -p "$KXE_MANIFESTS"
cp "$KXE_SRC"/deploy/examples/*.yaml "$KXE_MANIFESTS/"
for n in node1 node2; do
	echo "demo: kxp sync $n ($(ls "$KXE_MANIFESTS" | xargs))"
	kxe_sync "$n" || die "kxp sync $n failed: $(cat "$KXE_TMP/sync-$n.out")"
done

bad=0
printf '\n%-24s %-5s %-6s %-14s %-8s %-9s %s\n' FRONTEND PROTO FROM WANT BACKEND REQUESTS "CLIENT SEEN BY BACKEND"
printf '%s\n' "--------------------------------------------------------------------------------------------------"

# flow LABEL FROM_NAME FROM_NS PROTO DST COUNT EXPECTED_BACKENDS
flow()
{
	local label=$1 from=$2 ns=$3 proto=$4 dst=$5 count=$6 want=$7 first=1 line
	[ -n "$label" ] && printf '%s\n' "-- $label"
	kxe_probe "$ns" "--$proto" --dst "$dst" --count "$count" --timeout-ms 1000 >/dev/null
	while read -r line; do
		printf '%-24s %-5s %-6s %-14s %s\n' "$([ $first = 1 ] && echo "$dst")" "$proto" "$from" \
			"$([ $first = 1 ] && echo "$want")" "$line"
		first=0
	done < <(jq -r '.backends | to_entries[] |
		"\(.key | .[0:8] | . + " " * (9 - length))\(.value.count | tostring | . + " " * (10 - length))\(.value.clients | keys | join(","))\(if .value.src_preserved == .value.count then " (port kept)" else "" end)"' <<<"$KXE_LAST")
	if [ "$(pj .ok)" != "$count" ]; then
		printf '%-24s %-5s %-6s %-14s FAILED: %s of %s answered, failures %s\n' "$dst" "$proto" "$from" "$want" \
			"$(pj .ok)" "$count" "$(jq -c .failures <<<"$KXE_LAST")"
		bad=1
	elif [ "$(pj '.backends | keys | join(",")')" != "$want" ]; then
		printf '%-24s %-5s %-6s %-14s UNEXPECTED backends: %s\n' "$dst" "$proto" "$from" "$want" \
			"$(pj '.backends | keys | join(",")')"
		bad=1
	fi
}

flow "ClusterIP, backends on both nodes" pod1a "$NS_POD1A" tcp 10.96.0.10:80 40 pod1b,pod2a
flow "" pod1a "$NS_POD1A" udp 10.96.0.10:53 20 pod1b,pod2a
flow "NodePort eTP=Local on node1: local endpoint only" ext "$NS_EXT" tcp "$NODE1_IP:30080" 20 pod1b
flow "NodePort eTP=Local on node2: local endpoint only" ext "$NS_EXT" tcp "$NODE2_IP:30080" 20 pod2a
flow "" ext "$NS_EXT" udp "$NODE1_IP:30053" 10 pod1b
flow "pod -> NodePort eTP=Local: cluster-wide set, no SNAT" pod1a "$NS_POD1A" tcp "$NODE1_IP:30080" 40 pod1b,pod2a
flow "LoadBalancer IP, eTP=Local (routed to node1)" ext "$NS_EXT" tcp 203.0.113.10:80 20 pod1b
flow "externalIP, eTP=Local (routed to node1)" ext "$NS_EXT" tcp 203.0.113.20:80 20 pod1b
echo
echo "pod1a is $POD1A_IP, the external client is $EXT_IP: backends saw the real client (no SNAT)."
echo "Frontends on node1 (kxp svc list --instance $INST1):"
"$KXP" svc list --instance "$INST1" | sed 's/^/  /'
[ $bad = 0 ] || die "some traffic failed (see above)"
echo "demo: OK"
