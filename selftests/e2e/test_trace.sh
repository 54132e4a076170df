#!/usr/bin/env bash
# e2e: `kxp trace` agrees with real traffic: for a few flows, the verdict and
# backend trace predicts are what a real packet with the same tuple gets
# (including snat and its source port, and reject for a service without endpoints).
source "$(dirname "$0")/lib.sh"
kxe_init trace 200

TRACE=

# trace NODE FROM PROTO SRC DST: run kxp trace, keep the JSON in $TRACE.
trace()
{
	TRACE=$(kxe_trace "$1" --from "$2" --proto "$3" --src "$4" --dst "$5")
	jq -e '.verdict' <<<"$TRACE" >/dev/null || fail "kxp trace gave no verdict: ${TRACE:0:300}"
}
tj() { jq -r "$1" <<<"$TRACE"; }

expect_trace() # VERDICT BACKEND|null
{
	[ "$(tj .verdict)" = "$1" ] && [ "$(tj .backend)" = "$2" ] && [ "$(tj .snat)" = false ] ||
		fail "trace: $(jq -c . <<<"$TRACE"), want verdict $1 backend $2 snat false"
}

case_clusterip_single()
{
	local ct_before ct_after
	ct_before=$(kxe_ct_json node1 | jq length)
	trace node1 pod tcp "$POD1A_IP:41000" 10.96.0.43:80 || return
	ct_after=$(kxe_ct_json node1 | jq length)
	[ "$ct_before" = "$ct_after" ] || fail "trace created ct entries ($ct_before -> $ct_after)" || return
	expect_trace forward "$POD1B_IP:8080" || return
	[ "$(tj .dst)" = "$POD1B_IP:8080" ] && [ "$(tj .src)" = "$POD1A_IP:41000" ] ||
		fail "trace src/dst $(tj .src) -> $(tj .dst)" || return
	kxe_probe "$NS_POD1A" --tcp --dst 10.96.0.43:80 --count 1 --src-port 41000 >/dev/null
	expect_all_ok || return
	expect_backends pod1b || return
	expect_client_seen "$POD1A_IP"
}

case_clusterip_udp_spread()
{
	local b
	trace node1 pod udp "$POD1A_IP:41001" 10.96.0.10:53 || return
	[ "$(tj .verdict)" = forward ] && [ "$(tj .snat)" = false ] || fail "trace: $TRACE" || return
	b=$(tj .backend)
	[ "$b" = "$POD1B_IP:5353" ] || [ "$b" = "$POD2A_IP:5353" ] || fail "trace backend $b is not a web backend" || return
	kxe_probe "$NS_POD1A" --udp --dst 10.96.0.10:53 --count 20 >/dev/null
	expect_all_ok || return
	expect_backends pod1b pod2a
}

case_external_local()
{
	trace node1 external tcp "$EXT_IP:41002" "$NODE1_IP:30080" || return
	expect_trace forward "$POD1B_IP:8080" || return
	kxe_probe "$NS_EXT" --tcp --dst "$NODE1_IP:30080" --count 3 --keepalive --src-port 41002 >/dev/null
	expect_all_ok || return
	expect_backends pod1b || return
	expect_client_seen "$EXT_IP"
}

case_external_local_drop()
{
	trace node1 external tcp "$EXT_IP:41003" "$NODE1_IP:30082" || return
	expect_trace drop null || return
	kxe_probe "$NS_EXT" --tcp --dst "$NODE1_IP:30082" --count 2 --timeout-ms 400 >/dev/null
	expect_none_answered || return
	[ "$(pj .failures.timeout)" = 2 ] || fail "want timeouts, got $(jq -c .failures <<<"$KXE_LAST")"
}

case_etp_cluster_snat()
{
	# eTP=Cluster from outside: forwarded and masqueraded to node1's address.
	local b
	trace node1 external tcp "$EXT_IP:41004" "$NODE1_IP:30090" || return
	b=$(tj .backend)
	[ "$(tj .verdict)" = forward ] && [ "$(tj .snat)" = true ] && [ "$(tj .src | cut -d: -f1)" = "$NODE1_IP" ] &&
		{ [ "$b" = "$POD1B_IP:8080" ] || [ "$b" = "$POD2A_IP:8080" ]; } ||
		fail "trace: $(jq -c . <<<"$TRACE"), want verdict forward, snat true, src $NODE1_IP:*, a cluster-np backend" || return
	kxe_probe "$NS_EXT" --tcp --dst "$NODE1_IP:30090" --count 10 >/dev/null
	expect_all_ok || return
	expect_masq "$NS_N1" "$NODE1_IP"
}

case_snat_port()
{
	# trace-np has one backend, so trace and traffic pick the same one; the
	# allocator's deterministic first candidate (trace's src) is the source
	# the backend sees when nothing collides.
	trace node1 external tcp "$EXT_IP:41007" "$NODE1_IP:30110" || return
	[ "$(tj .verdict)" = forward ] && [ "$(tj .snat)" = true ] && [ "$(tj .backend)" = "$POD2A_IP:8080" ] &&
		[ "$(tj .dst)" = "$POD2A_IP:8080" ] ||
		fail "trace: $(jq -c . <<<"$TRACE"), want forward to $POD2A_IP:8080 with snat" || return
	kxe_bulk_send "$NS_EXT" --tcp --dst "$NODE1_IP:30110" --src-port 41007 --size 6 --count 1 >/dev/null
	[ "$(pj .ok)" = 1 ] || fail "request from port 41007: failures $(pj '.failures|tostring')" || return
	[ "$(pj .backends.pod2a.last_seen)" = "$(tj .src)" ] ||
		fail "pod2a saw $(pj .backends.pod2a.last_seen), trace predicted src $(tj .src)"
}

case_noep_reject()
{
	trace node1 pod tcp "$POD1A_IP:41008" 10.96.0.42:80 || return
	[ "$(tj .verdict)" = reject ] && [ "$(tj .reason)" = no_endpoints ] && [ "$(tj .backend)" = null ] ||
		fail "trace: $(jq -c . <<<"$TRACE"), want verdict reject, reason no_endpoints" || return
	kxe_probe "$NS_POD1A" --tcp --dst 10.96.0.42:80 --count 2 --src-port 41008 --timeout-ms 500 >/dev/null
	expect_none_answered || return
	[ "$(pj .failures.refused)" = 2 ] || fail "want refused (ICMP port unreachable), got $(jq -c .failures <<<"$KXE_LAST")"
}

case_pod_to_remote_only()
{
	trace node1 pod tcp "$POD1A_IP:41005" "$NODE1_IP:30082" || return
	expect_trace forward "$POD2A_IP:8080" || return
	kxe_probe "$NS_POD1A" --tcp --dst "$NODE1_IP:30082" --count 3 >/dev/null
	expect_all_ok || return
	expect_backends pod2a || return
	expect_client_seen "$POD1A_IP"
}

case_node2_external()
{
	trace node2 external tcp "$EXT_IP:41006" "$NODE2_IP:30082" || return
	expect_trace forward "$POD2A_IP:8080" || return
	kxe_probe "$NS_EXT" --tcp --dst "$NODE2_IP:30082" --count 3 >/dev/null
	expect_all_ok || return
	expect_backends pod2a || return
	expect_client_seen "$EXT_IP"
}

kxe_setup nosync
if [ -z "$KXE_SETUP_ERR" ]; then
	kxe_yaml s2-trace.yaml <<EOF
apiVersion: v1
kind: Service
metadata: {name: trace-np, namespace: s2}
spec:
  type: NodePort
  clusterIP: 10.96.1.50
  clusterIPs: [10.96.1.50]
  externalTrafficPolicy: Cluster
  ports:
    - {name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: 30110}
$(kxe_slice s2 trace-np-1 trace-np "$POD2A_IP:node2")
EOF
	kxe_need_bulk
	kxe_sync_all || KXE_SETUP_ERR="kxp sync failed: $(head -c 300 "$KXE_TMP/sync-node1.out" | tr '\n' ' ')"
fi
kxe_case clusterip_single case_clusterip_single
kxe_case clusterip_udp_spread case_clusterip_udp_spread
kxe_case external_local case_external_local
kxe_case external_local_drop case_external_local_drop
kxe_case etp_cluster_snat case_etp_cluster_snat
kxe_case snat_port case_snat_port
kxe_case noep_reject case_noep_reject
kxe_case pod_to_remote_only case_pod_to_remote_only
kxe_case node2_external case_node2_external
kxe_finish
