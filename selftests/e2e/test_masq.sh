#!/usr/bin/env bash
# e2e: masquerade (SNAT) where kube-proxy does it, with real TCP and UDP:
# external -> NodePort / LB IP / externalIP with eTP=Cluster and external ->
# ClusterIP reach local and remote backends, which see the node's address;
# pod -> NodePort eTP=Cluster is masqueraded, eTP=Local is not; pod ->
# ClusterIP is not, unless --masquerade-all. Run with XDP native, then off.
source "$(dirname "$0")/lib.sh"
kxe_init masq 290

WEB=10.96.0.10
LB_IP=203.0.113.60
XIP=203.0.113.61

services()
{
	kxe_yaml s2-masq.yaml <<EOF
apiVersion: v1
kind: Service
metadata: {name: masq-np, namespace: s2}
spec:
  type: NodePort
  clusterIP: 10.96.1.10
  clusterIPs: [10.96.1.10]
  externalTrafficPolicy: Cluster
  ports:
    - {name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: 30100}
    - {name: dns, protocol: UDP, port: 53, targetPort: 5353, nodePort: 30101}
$(kxe_slice s2 masq-np-1 masq-np "$POD1B_IP:node1" "$POD2A_IP:node2")
---
apiVersion: v1
kind: Service
metadata: {name: masq-lb, namespace: s2}
spec:
  type: LoadBalancer
  clusterIP: 10.96.1.11
  clusterIPs: [10.96.1.11]
  externalTrafficPolicy: Cluster
  externalIPs: [$XIP]
  ports:
    - {name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: 30102}
    - {name: dns, protocol: UDP, port: 53, targetPort: 5353, nodePort: 30103}
status:
  loadBalancer:
    ingress: [{ip: $LB_IP}]
$(kxe_slice s2 masq-lb-1 masq-lb "$POD1B_IP:node1" "$POD2A_IP:node2")
EOF
}

# ext_case PROTO DST NODE_NS NODE_IP: 40 requests from the external client reach
# both backends (one local, one remote to the node hit), all masqueraded.
ext_case()
{
	kxe_probe "$NS_EXT" "--$1" --dst "$2" --count 40 --timeout-ms 1000 >/dev/null
	expect_all_ok || return
	expect_backends pod1b pod2a || return
	expect_masq "$3" "$4"
}

case_attach()
{
	kxe_sync_all || fail "kxp sync --xdp-mode $KXE_XDP_MODE failed: $(head -c 300 "$KXE_TMP/sync-node1.out")"
}

case_pod_nodeport_cluster()
{
	kxe_probe "$NS_POD1A" "--$1" --dst "$2" --count 40 --timeout-ms 1000 >/dev/null
	expect_all_ok || return
	expect_backends pod1b pod2a || return
	expect_masq "$NS_N1" "$NODE1_IP"
}

case_pod_nodeport_local()
{
	# echo-np (30080) has eTP=Local: pods get the cluster set, not masqueraded.
	kxe_probe "$NS_POD1A" --tcp --dst "$NODE1_IP:30080" --count 40 --timeout-ms 1000 >/dev/null
	expect_all_ok || return
	expect_backends pod1b pod2a || return
	expect_client_seen "$POD1A_IP"
}

case_pod_clusterip_kept()
{
	kxe_probe "$NS_POD1A" --tcp --dst "$WEB:80" --count 20 --timeout-ms 1000 >/dev/null
	expect_all_ok || return
	expect_backends pod1b pod2a || return
	expect_client_seen "$POD1A_IP"
}

case_keepalive()
{
	# One masqueraded connection, 20 requests: one SNAT mapping, one backend.
	kxe_probe "$NS_EXT" --tcp --dst "$NODE1_IP:30100" --count 20 --keepalive --timeout-ms 1000 >/dev/null
	expect_all_ok || return
	[ "$(pj .connections)" = 1 ] || fail "needed $(pj .connections) connections, want 1" || return
	[ "$(pj '.backends | length')" = 1 ] || fail "one connection reached $(pj '.backends|keys|join(",")')" || return
	expect_masq "$NS_N1" "$NODE1_IP"
}

case_many_connections()
{
	# 300 short connections in a row: every one gets its own SNAT port and its
	# reply back (a reused or mistranslated mapping shows as a failure).
	kxe_probe "$NS_EXT" --tcp --dst "$NODE1_IP:30100" --count 300 --timeout-ms 1000 --max-failures 3 >/dev/null
	expect_all_ok || return
	expect_masq "$NS_N1" "$NODE1_IP"
}

case_state()
{
	local ct snat fails
	ct=$(kxe_ct_json node1)
	jq -e '[.[]? | select(.flags | index("snat"))] | length > 0' <<<"$ct" >/dev/null ||
		fail "node1 ct list has no entry flagged snat: ${ct:0:400}" || return
	snat=$(kxe_snat_count node1)
	[ "${snat:-0}" -gt 0 ] || fail "node1 kxp_ct4 holds no SNAT claim (REPLY entry flagged snat) after masqueraded traffic" || return
	fails=$(kxe_fe_counter node1 "$NODE1_IP:30100/tcp" snat_fail)
	[ "$fails" = 0 ] || fail "snat_fail of $NODE1_IP:30100/tcp is $fails, want 0"
}

# Claims on node NODE whose SNAT port is within MIN-MAX (the key's dport,
# network order, as bpftool shows it: a little-endian number).
snat_claims_in()
{
	kxe_snat_claims "$1" |
		jq --argjson lo "$2" --argjson hi "$3" '[.[] | .key.dport |
			(. % 256) * 256 + ((. / 256) | floor) | select(. >= $lo and . <= $hi)] | length'
}

case_closed_ports_reused()
{
	# Four ports per backend: 40 short connections (the client closes
	# first) 100 ms apart need each closed connection's port again well
	# within a second. A closed flow's port is free 250 ms after its last
	# FIN, so none may fail or be dropped for want of a port (held 2 s
	# after the close, as before, the range would run dry).
	local before after claims
	kxe_sync node1 --snat-port-range 20000-20003 ||
		fail "sync --snat-port-range exited $?: $(head -c 300 "$KXE_TMP/sync-node1.out")" || return
	before=$(kxe_fe_counter node1 "$NODE1_IP:30100/tcp" snat_fail)
	kxe_probe "$NS_EXT" --tcp --dst "$NODE1_IP:30100" --count 40 --interval-ms 100 --timeout-ms 1000 \
		--max-failures 40 >/dev/null
	after=$(kxe_fe_counter node1 "$NODE1_IP:30100/tcp" snat_fail)
	claims=$(snat_claims_in node1 20000 20003)
	kxe_sync node1 || fail "sync back to the default range exited $?" || return
	[ "${claims:-0}" -gt 0 ] || fail "no claim on ports 20000-20003: the range was not in effect" || return
	expect_all_ok || return
	expect_masq "$NS_N1" "$NODE1_IP" || return
	[ "$after" = "$before" ] || fail "snat_fail of $NODE1_IP:30100/tcp went from $before to $after, want no change"
}

case_masquerade_all()
{
	kxe_sync node1 --masquerade-all || fail "sync --masquerade-all exited $?: $(head -c 300 "$KXE_TMP/sync-node1.out")" || return
	kxe_probe "$NS_POD1A" --tcp --dst "$WEB:80" --count 20 --timeout-ms 1000 >/dev/null
	expect_all_ok || return
	expect_backends pod1b pod2a || return
	expect_masq "$NS_N1" "$NODE1_IP" || return
	kxe_probe "$NS_POD1A" --udp --dst "$WEB:53" --count 20 --timeout-ms 1000 >/dev/null
	expect_all_ok || return
	expect_masq "$NS_N1" "$NODE1_IP" || return
	# and back: without the flag pod sources keep their address
	kxe_sync node1 || fail "sync without --masquerade-all exited $?" || return
	kxe_probe "$NS_POD1A" --tcp --dst "$WEB:80" --count 10 --timeout-ms 1000 >/dev/null
	expect_all_ok || return
	expect_client_seen "$POD1A_IP"
}

kxe_setup nosync
services
for KXE_XDP_MODE in native off; do
	m=$KXE_XDP_MODE
	kxe_case "$m/attach" case_attach
	kxe_case "$m/ext_nodeport_tcp" ext_case tcp "$NODE1_IP:30100" "$NS_N1" "$NODE1_IP"
	kxe_case "$m/ext_nodeport_udp" ext_case udp "$NODE1_IP:30101" "$NS_N1" "$NODE1_IP"
	kxe_case "$m/ext_nodeport_node2_tcp" ext_case tcp "$NODE2_IP:30100" "$NS_N2" "$NODE2_IP"
	kxe_case "$m/ext_nodeport_node2_udp" ext_case udp "$NODE2_IP:30101" "$NS_N2" "$NODE2_IP"
	kxe_case "$m/ext_lb_ip_tcp" ext_case tcp "$LB_IP:80" "$NS_N1" "$NODE1_IP"
	kxe_case "$m/ext_lb_ip_udp" ext_case udp "$LB_IP:53" "$NS_N1" "$NODE1_IP"
	kxe_case "$m/ext_external_ip_tcp" ext_case tcp "$XIP:80" "$NS_N1" "$NODE1_IP"
	kxe_case "$m/ext_clusterip_tcp" ext_case tcp "$WEB:80" "$NS_N1" "$NODE1_IP"
	kxe_case "$m/ext_clusterip_udp" ext_case udp "$WEB:53" "$NS_N1" "$NODE1_IP"
	kxe_case "$m/pod_nodeport_cluster_tcp" case_pod_nodeport_cluster tcp "$NODE1_IP:30100"
	kxe_case "$m/pod_nodeport_cluster_udp" case_pod_nodeport_cluster udp "$NODE1_IP:30101"
	kxe_case "$m/pod_lb_ip_cluster_tcp" case_pod_nodeport_cluster tcp "$LB_IP:80"
	kxe_case "$m/pod_nodeport_local_not_masq" case_pod_nodeport_local
	kxe_case "$m/pod_clusterip_not_masq" case_pod_clusterip_kept
	kxe_case "$m/keepalive" case_keepalive
	kxe_case "$m/many_connections" case_many_connections
	kxe_case "$m/state" case_state
	kxe_case "$m/closed_ports_reused" case_closed_ports_reused
done
kxe_case masquerade_all case_masquerade_all
kxe_finish
