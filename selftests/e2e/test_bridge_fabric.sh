#!/usr/bin/env bash
# e2e: a kind-style fabric. The nodes and the external client hang off one
# Linux bridge whose veth ports carry no XDP program (GRO on instead, as the
# node containers of a kind cluster look from the host), and the pods are /32
# routes behind proxy ARP with a static gateway neighbour (as kindnet/Calico
# lay them out), none of them running an XDP program either:
#
#   ext (198.51.100.100) ─┐                       ┌─ pod1a 10.244.1.10 (client)
#                         ├─ fabric: br0 ─ node1 (198.51.100.1) ─┤
#                         │   (GRO, no XDP)       └─ pod1b 10.244.1.11 (echo "pod1b")
#                         └────────────── node2 (198.51.100.2) ─── pod2a 10.244.2.10 (echo "pod2a")
#
# Pod: eth0 10.244.X.Y/32, default route via 169.254.1.1 whose neighbour entry
# is permanent (the host-side veth's MAC). Node: the host-side veth has no
# address, proxy_arp=1 and a /32 route to the pod.
#
# With XDP native and generic, real TCP and UDP: pod -> ClusterIP reaches a
# local and a remote backend; external -> NodePort eTP=Cluster (on either node)
# reaches a local and a remote backend, masqueraded; external -> NodePort
# eTP=Local reaches the node's own backend with the client address kept.
#
# Native XDP_TX out of a veth wakes the peer only if the peer runs a native
# XDP program: toward a GRO-only bridge port the masqueraded packets of a
# remote backend used to sit in the port's ring (connections never completed).
# kxp probes the device at attach (bpf/lib/fwd.h, kxp_fwddev): here it must
# redirect to the device itself (ndo_xdp_xmit wakes a GRO peer), which the
# veth's XDP counters show. Then the ports lose GRO too (plain veth ports, as
# a veth is created): XDP can neither TX nor redirect toward them, and after
# a re-sync the same traffic must go through TC, with no XDP TX error.
source "$(dirname "$0")/lib.sh"
kxe_init bridge_fabric 150

CIP=10.96.5.10     # ClusterIP of bf-cluster
NP_TCP=31080       # bf-cluster NodePort eTP=Cluster
NP_UDP=31053
LNP_TCP=31180      # bf-local NodePort eTP=Local
LNP_UDP=31153
GW=169.254.1.1     # the pods' static gateway

# bf_port NS: the bridge port in the fabric of NS's eth0 (unique per node).
bf_port() { echo "p-${1##*-}"; }

# bf_uplink NS IP: eth0 in NS, its peer a port of br0 with GRO on and no XDP
# program; checksum offload off on both ends.
bf_uplink()
{
	local ns=$1 ip=$2 port
	port=$(bf_port "$ns")

	ip link add name eth0 netns "$ns" type veth peer name "$port" netns "$NS_FABRIC" || return 1
	kxe_full_csum "$ns" eth0 || return 1
	kxe_full_csum "$NS_FABRIC" "$port" || return 1
	kxe_in "$NS_FABRIC" ethtool -K "$port" gro on >/dev/null 2>&1 ||
		{ kxe_log "ethtool -K $port gro on failed"; return 1; }
	ip -n "$NS_FABRIC" link set "$port" master br0 up || return 1
	ip -n "$ns" addr add "$ip/24" dev eth0 || return 1
	ip -n "$ns" link set eth0 up
}

# bf_pod NODE_NS POD_NS HOST_DEV POD_IP: a /32 pod behind proxy ARP.
bf_pod()
{
	local node=$1 pod=$2 hdev=$3 pip=$4 hmac

	kxe_ns_add "$pod" || return 1
	ip link add name eth0 netns "$pod" type veth peer name "$hdev" netns "$node" || return 1
	kxe_full_csum "$pod" eth0 || return 1
	kxe_full_csum "$node" "$hdev" || return 1
	kxe_in "$node" sysctl -qw "net.ipv4.conf.$hdev.proxy_arp=1" "net.ipv4.conf.$hdev.rp_filter=0" >/dev/null || return 1
	ip -n "$node" link set "$hdev" up || return 1
	ip -n "$node" route add "$pip/32" dev "$hdev" scope link || return 1
	hmac=$(ip -n "$node" -j link show dev "$hdev" | jq -r '.[0].address')
	ip -n "$pod" addr add "$pip/32" dev eth0 || return 1
	ip -n "$pod" link set eth0 up || return 1
	ip -n "$pod" route add "$GW" dev eth0 scope link || return 1
	ip -n "$pod" route add default via "$GW" dev eth0 || return 1
	ip -n "$pod" neigh replace "$GW" lladdr "$hmac" dev eth0 nud permanent || return 1
	kxe_client_sysctls "$pod"
}

bf_topology_up()
{
	local ns

	for ns in "$NS_FABRIC" "$NS_EXT" "$NS_N1" "$NS_N2"; do
		kxe_ns_add "$ns" || return 1
	done
	ip -n "$NS_FABRIC" link add br0 type bridge || return 1
	ip -n "$NS_FABRIC" link set br0 up || return 1
	bf_uplink "$NS_EXT" "$EXT_IP" || return 1
	bf_uplink "$NS_N1" "$NODE1_IP" || return 1
	bf_uplink "$NS_N2" "$NODE2_IP" || return 1
	kxe_node_sysctls "$NS_N1"
	kxe_node_sysctls "$NS_N2"
	kxe_client_sysctls "$NS_EXT"
	ip -n "$NS_N1" route add 10.244.2.0/24 via "$NODE2_IP" || return 1
	ip -n "$NS_N2" route add 10.244.1.0/24 via "$NODE1_IP" || return 1
	bf_pod "$NS_N1" "$NS_POD1A" veth1a "$POD1A_IP" || return 1
	bf_pod "$NS_N1" "$NS_POD1B" veth1b "$POD1B_IP" || return 1
	bf_pod "$NS_N2" "$NS_POD2A" veth2a "$POD2A_IP" || return 1
	return 0
}

bf_manifests()
{
	mkdir -p "$KXE_MANIFESTS"
	cat >"$KXE_MANIFESTS/bf.yaml" <<EOF
apiVersion: v1
kind: Service
metadata: {name: bf-cluster, namespace: bf}
spec:
  type: NodePort
  clusterIP: $CIP
  clusterIPs: [$CIP]
  externalTrafficPolicy: Cluster
  ports:
    - {name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: $NP_TCP}
    - {name: dns, protocol: UDP, port: 53, targetPort: 5353, nodePort: $NP_UDP}
$(kxe_slice bf bf-cluster-1 bf-cluster "$POD1B_IP:node1" "$POD2A_IP:node2")
---
apiVersion: v1
kind: Service
metadata: {name: bf-local, namespace: bf}
spec:
  type: NodePort
  clusterIP: 10.96.5.11
  clusterIPs: [10.96.5.11]
  externalTrafficPolicy: Local
  ports:
    - {name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: $LNP_TCP}
    - {name: dns, protocol: UDP, port: 53, targetPort: 5353, nodePort: $LNP_UDP}
$(kxe_slice bf bf-local-1 bf-local "$POD1B_IP:node1" "$POD2A_IP:node2")
EOF
}

# Plain routing before kxp: pod to pod across nodes (through the fabric) and
# on one node, the external client to both nodes.
bf_routing_ok()
{
	local ip
	kxe_probe "$NS_POD1A" --tcp --dst "$POD2A_IP:8080" --count 1 >/dev/null
	[ "$(pj .ok)" = 1 ] || { kxe_log "plain routing pod1a -> pod2a: $KXE_LAST"; return 1; }
	kxe_probe "$NS_POD1A" --udp --dst "$POD1B_IP:5353" --count 1 >/dev/null
	[ "$(pj .ok)" = 1 ] || { kxe_log "plain routing pod1a -> pod1b: $KXE_LAST"; return 1; }
	# a closed port answers with a reset: the client reaches both nodes
	for ip in "$NODE1_IP" "$NODE2_IP"; do
		kxe_probe "$NS_EXT" --tcp --dst "$ip:9" --count 1 >/dev/null
		[ "$(pj .failures.refused)" = 1 ] || { kxe_log "plain routing ext -> $ip: $KXE_LAST"; return 1; }
	done
}

bf_setup()
{
	kxe_need || return 1
	command -v ethtool >/dev/null || { KXE_SETUP_ERR="ethtool is missing"; return 1; }
	bf_topology_up || { KXE_SETUP_ERR=${KXE_SETUP_ERR:-topology could not be built}; return 1; }
	kxe_echo_all || { KXE_SETUP_ERR="echo servers did not start"; return 1; }
	bf_routing_ok || { KXE_SETUP_ERR="plain routing does not work"; return 1; }
	bf_manifests
}

# bf_xdp_stat NODE_NS NAME: the node's eth0 veth counter rx_queue_<n>_xdp_NAME
# summed over its queues; empty when the driver has no such counter.
bf_xdp_stat()
{
	kxe_in "$1" ethtool -S eth0 2>/dev/null | awk -v n="_xdp_$2:" '
		$1 ~ /^rx_queue_[0-9]+_xdp_/ && substr($1, length($1) - length(n) + 1) == n { s += $2; f = 1 }
		END { if (f) print s }'
}

# ---- cases -----------------------------------------------------------------------

case_attach()
{
	local mode=$1 n ns link
	kxe_sync_all || fail "kxp sync --xdp-mode $mode failed: $(head -c 300 "$KXE_TMP/sync-node1.out")" || return
	for n in node1 node2; do
		ns=$(kxe_ns $n)
		link=$(ip -n "$ns" -d link show eth0)
		case $mode in
		native) grep -q 'prog/xdp id' <<<"$link" && ! grep -q xdpgeneric <<<"$link" ;;
		generic) grep -q 'xdpgeneric' <<<"$link" ;;
		esac || fail "$n eth0 has no $mode XDP program: $(tr '\n' ' ' <<<"$link")" || return
	done
	# the fabric stays as it was: no XDP program on a bridge port
	link=$(ip -n "$NS_FABRIC" -d link show)
	! grep -q 'prog/xdp' <<<"$link" || fail "an XDP program appeared in the fabric: $(grep -B2 prog/xdp <<<"$link" | tr '\n' ' ')"
}

# pod1a -> ClusterIP: a local (pod1b) and a remote (pod2a) backend, no SNAT.
case_pod_clusterip()
{
	local proto=$1 port=80
	[ "$proto" = udp ] && port=53
	kxe_probe "$NS_POD1A" "--$proto" --dst "$CIP:$port" --count 30 --timeout-ms 1000 >/dev/null
	expect_all_ok || return
	expect_backends pod1b pod2a || return
	expect_client_seen "$POD1A_IP"
}

# ext -> NODE:NodePort eTP=Cluster: the node's local and the other node's
# backend, masqueraded to an address of the node hit. PATH (native only):
# "xdp" = the remote backend's packets were redirected by XDP, "tc" = XDP sent
# nothing itself; never an XDP TX error.
case_ext_nodeport_cluster()
{
	local proto=$1 node=$2 path=${3:-} port=$NP_TCP ip=$NODE1_IP ns
	local rd0 tx0 er0 rd1 tx1 er1
	[ "$proto" = udp ] && port=$NP_UDP
	[ "$node" = node2 ] && ip=$NODE2_IP
	ns=$(kxe_ns "$node")
	rd0=$(bf_xdp_stat "$ns" redirect) tx0=$(bf_xdp_stat "$ns" tx) er0=$(bf_xdp_stat "$ns" tx_errors)
	kxe_probe "$NS_EXT" "--$proto" --dst "$ip:$port" --count 30 --timeout-ms 1000 >/dev/null
	rd1=$(bf_xdp_stat "$ns" redirect) tx1=$(bf_xdp_stat "$ns" tx) er1=$(bf_xdp_stat "$ns" tx_errors)
	expect_all_ok || return
	expect_backends pod1b pod2a || return
	expect_masq "$ns" "$ip" || return
	[ -n "$path" ] || return 0
	[ -n "$rd0$rd1$tx0$tx1$er0$er1" ] || { KXE_WHY="$node eth0 has no XDP counters"; return 77; }
	[ "$er1" = "$er0" ] || fail "$node eth0: XDP TX errors went from $er0 to $er1 (frames dropped)" || return
	case $path in
	xdp) [ "$rd1" -gt "$rd0" ] || fail "$node eth0: no XDP redirect ($rd0 -> $rd1; tx $tx0 -> $tx1): XDP left the remote backend to TC" ;;
	tc) if [ "$rd1" != "$rd0" ] || [ "$tx1" != "$tx0" ]; then
		fail "$node eth0: XDP sent frames toward a port that cannot take them (redirect $rd0 -> $rd1, tx $tx0 -> $tx1)"
	fi ;;
	esac
}

# The bridge ports lose GRO (no XDP program, no GRO: how a veth is created),
# then both nodes re-sync with native XDP, which probes eth0 again.
case_plain_ports()
{
	local port
	for port in "$(bf_port "$NS_EXT")" "$(bf_port "$NS_N1")" "$(bf_port "$NS_N2")"; do
		kxe_in "$NS_FABRIC" ethtool -K "$port" gro off >/dev/null 2>&1 || fail "ethtool -K $port gro off failed" || return
	done
	case_attach native
}

# kxp trace reads the instance's pinned kxp_fwddev as the attached program
# does: on plain ports XDP can send nothing, so every masqueraded new flow
# (local or remote backend) is decided again and sent by TC ingress.
case_trace_plain_ports()
{
	local sp out stage
	for sp in 41000 41001 41002 41003 41004 41005; do
		out=$(kxe_trace node1 --from external --dev eth0 --proto tcp --src "$EXT_IP:$sp" --dst "$NODE1_IP:$NP_TCP")
		stage=$(jq -r .stage <<<"$out")
		[ "$(jq -r .verdict <<<"$out")" = forward ] || fail "trace $sp: verdict not forward: ${out:0:300}" || return
		[ "$stage" = tc-ingress ] || fail "trace $sp: stage $stage, want tc-ingress (XDP cannot send on plain ports): ${out:0:300}" || return
	done
}

# ext -> NODE:NodePort eTP=Local: only the node's own backend, client kept.
case_ext_nodeport_local()
{
	local proto=$1 node=$2 port=$LNP_TCP ip=$NODE1_IP be=pod1b
	[ "$proto" = udp ] && port=$LNP_UDP
	[ "$node" = node2 ] && ip=$NODE2_IP be=pod2a
	kxe_probe "$NS_EXT" "--$proto" --dst "$ip:$port" --count 10 --timeout-ms 1000 >/dev/null
	expect_all_ok || return
	expect_backends "$be" || return
	expect_client_seen "$EXT_IP"
}

bf_setup
for KXE_XDP_MODE in native generic; do
	m=$KXE_XDP_MODE
	path=
	[ "$m" = native ] && path=xdp
	kxe_case "$m/attach" case_attach "$m"
	for proto in tcp udp; do
		kxe_case "$m/pod_clusterip_$proto" case_pod_clusterip "$proto"
		kxe_case "$m/ext_nodeport_cluster_node1_$proto" case_ext_nodeport_cluster "$proto" node1 "$path"
		kxe_case "$m/ext_nodeport_cluster_node2_$proto" case_ext_nodeport_cluster "$proto" node2 "$path"
		kxe_case "$m/ext_nodeport_local_node1_$proto" case_ext_nodeport_local "$proto" node1
		kxe_case "$m/ext_nodeport_local_node2_$proto" case_ext_nodeport_local "$proto" node2
	done
done
KXE_XDP_MODE=native
kxe_case native_plain_ports/attach case_plain_ports
kxe_case native_plain_ports/trace_stage case_trace_plain_ports
for proto in tcp udp; do
	kxe_case "native_plain_ports/ext_nodeport_cluster_node1_$proto" case_ext_nodeport_cluster "$proto" node1 tc
	kxe_case "native_plain_ports/ext_nodeport_cluster_node2_$proto" case_ext_nodeport_cluster "$proto" node2 tc
	kxe_case "native_plain_ports/ext_nodeport_local_node1_$proto" case_ext_nodeport_local "$proto" node1
done
kxe_finish
