#!/usr/bin/env bash
# e2e: external client -> NodePort / LB IP / externalIP of eTP=Local services
# (only the hit node's endpoints, client address preserved, drop when the
# endpoints are all elsewhere), pod -> the same frontends (cluster-wide set, no
# SNAT), and eTP=Cluster masqueraded. Run with XDP native, then XDP off.
source "$(dirname "$0")/lib.sh"
kxe_init external_local 270

LB_IP=203.0.113.10
EXT_IP_SVC=203.0.113.20

case_attach()
{
	local mode=$1 link
	kxe_sync_all || fail "kxp sync --xdp-mode $mode failed: $(head -c 300 "$KXE_TMP/sync-node1.out")" || return
	link=$(ip -n "$NS_N1" -d link show eth0)
	if [ "$mode" = native ]; then
		grep -q 'prog/xdp id' <<<"$link" && ! grep -q xdpgeneric <<<"$link" ||
			fail "no native XDP program on node1 eth0: $(tr '\n' ' ' <<<"$link")" || return
	else
		! grep -q 'prog/xdp' <<<"$link" || fail "XDP still attached with --xdp-mode off: $(tr '\n' ' ' <<<"$link")" || return
	fi
	[ -n "$(tc -n "$NS_N1" filter show dev eth0 ingress)" ] || fail "no TC ingress filter on node1 eth0"
}

case_nodeport_node1()
{
	kxe_probe "$NS_EXT" --tcp --dst "$NODE1_IP:30080" --count 20 >/dev/null
	expect_all_ok || return
	expect_backends pod1b || return
	expect_client_seen "$EXT_IP"
}

case_nodeport_node2()
{
	kxe_probe "$NS_EXT" --tcp --dst "$NODE2_IP:30080" --count 20 >/dev/null
	expect_all_ok || return
	expect_backends pod2a || return
	expect_client_seen "$EXT_IP"
}

case_nodeport_udp()
{
	kxe_probe "$NS_EXT" --udp --dst "$NODE1_IP:30053" --count 20 >/dev/null
	expect_all_ok || return
	expect_backends pod1b || return
	expect_client_seen "$EXT_IP"
}

case_lb_ip()
{
	kxe_probe "$NS_EXT" --tcp --dst "$LB_IP:80" --count 20 >/dev/null
	expect_all_ok || return
	expect_backends pod1b || return
	expect_client_seen "$EXT_IP"
}

case_external_ip()
{
	kxe_probe "$NS_EXT" --tcp --dst "$EXT_IP_SVC:80" --count 20 >/dev/null
	expect_all_ok || return
	expect_backends pod1b || return
	expect_client_seen "$EXT_IP"
}

case_no_local_endpoint_drop()
{
	# remote-only's endpoint is on node2: node1 must drop (client times out),
	# not pass it to its stack (which would answer with a reset).
	local before after
	before=$(kxe_fe_counter node1 "$NODE1_IP:30082/tcp" drops)
	kxe_probe "$NS_EXT" --tcp --dst "$NODE1_IP:30082" --count 3 --timeout-ms 400 >/dev/null
	expect_none_answered || return
	[ "$(pj .failures.timeout)" = 3 ] || fail "want 3 timeouts (dropped), got $(jq -c .failures <<<"$KXE_LAST")" || return
	after=$(kxe_fe_counter node1 "$NODE1_IP:30082/tcp" drops)
	[ "$after" -gt "$before" ] || fail "drops of $NODE1_IP:30082/tcp did not grow ($before -> $after)"
}

case_etp_cluster_masq()
{
	# cluster-np (30090) has eTP=Cluster: both backends, masqueraded to node1's
	# address, counted as translated (no longer passed).
	local before after
	before=$(kxe_fe_counter node1 "$NODE1_IP:30090/tcp" packets)
	kxe_probe "$NS_EXT" --tcp --dst "$NODE1_IP:30090" --count 30 >/dev/null
	expect_all_ok || return
	expect_backends pod1b pod2a || return
	expect_masq "$NS_N1" "$NODE1_IP" || return
	after=$(kxe_fe_counter node1 "$NODE1_IP:30090/tcp" packets)
	[ "$after" -gt "$before" ] || fail "packets of $NODE1_IP:30090/tcp did not grow ($before -> $after)"
}

# pod -> external frontend of an eTP=Local service: the cluster-wide set, no SNAT.
case_pod_to_nodeport()
{
	kxe_probe "$NS_POD1A" --tcp --dst "$NODE1_IP:30080" --count 40 >/dev/null
	expect_all_ok || return
	expect_backends pod1b pod2a || return
	expect_client_seen "$POD1A_IP"
}

case_pod_to_remote_only_nodeport()
{
	kxe_probe "$NS_POD1A" --tcp --dst "$NODE1_IP:30082" --count 10 >/dev/null
	expect_all_ok || return
	expect_backends pod2a || return
	expect_client_seen "$POD1A_IP"
}

case_pod_to_lb_ip()
{
	kxe_probe "$NS_POD1A" --tcp --dst "$LB_IP:80" --count 40 >/dev/null
	expect_all_ok || return
	expect_backends pod1b pod2a || return
	expect_client_seen "$POD1A_IP"
}

case_pod_to_nodeport_udp()
{
	kxe_probe "$NS_POD1A" --udp --dst "$NODE1_IP:30053" --count 40 >/dev/null
	expect_all_ok || return
	expect_backends pod1b pod2a || return
	expect_client_seen "$POD1A_IP"
}

kxe_setup nosync
for KXE_XDP_MODE in native off; do
	kxe_case "$KXE_XDP_MODE/attach" case_attach "$KXE_XDP_MODE"
	kxe_case "$KXE_XDP_MODE/nodeport_node1" case_nodeport_node1
	kxe_case "$KXE_XDP_MODE/nodeport_node2" case_nodeport_node2
	kxe_case "$KXE_XDP_MODE/nodeport_udp" case_nodeport_udp
	kxe_case "$KXE_XDP_MODE/lb_ip" case_lb_ip
	kxe_case "$KXE_XDP_MODE/external_ip" case_external_ip
	kxe_case "$KXE_XDP_MODE/no_local_endpoint_drop" case_no_local_endpoint_drop
	kxe_case "$KXE_XDP_MODE/etp_cluster_masq" case_etp_cluster_masq
	kxe_case "$KXE_XDP_MODE/pod_to_nodeport" case_pod_to_nodeport
	kxe_case "$KXE_XDP_MODE/pod_to_remote_only_nodeport" case_pod_to_remote_only_nodeport
	kxe_case "$KXE_XDP_MODE/pod_to_lb_ip" case_pod_to_lb_ip
	kxe_case "$KXE_XDP_MODE/pod_to_nodeport_udp" case_pod_to_nodeport_udp
done
kxe_finish
