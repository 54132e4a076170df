#!/usr/bin/env bash
# e2e: hairpin (a pod reaching its own service, chosen as the backend, gets the
# reply, masqueraded as kube-proxy does) and loadBalancerSourceRanges (a source
# outside the ranges gets nothing, one inside gets through, pods are filtered
# too, the NodePort of the same service is not). The external client varies
# its source with a second address and a route "src" per destination.
source "$(dirname "$0")/lib.sh"
kxe_init hairpin_lbsr 240

HP=10.96.1.30
LBSR_IP=203.0.113.80
EXT_IN=198.51.100.200  # inside 198.51.100.192/26
EXT_OUT=$EXT_IP        # 198.51.100.100: outside every range

services()
{
	kxe_yaml s2-hairpin-lbsr.yaml <<EOF
apiVersion: v1
kind: Service
metadata: {name: hairpin, namespace: s2}
spec:
  type: NodePort
  clusterIP: $HP
  clusterIPs: [$HP]
  externalTrafficPolicy: Local
  ports:
    - {name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: 30130}
    - {name: dns, protocol: UDP, port: 53, targetPort: 5353, nodePort: 30131}
$(kxe_slice s2 hairpin-1 hairpin "$POD1B_IP:node1")
---
apiVersion: v1
kind: Service
metadata: {name: lbsr, namespace: s2}
spec:
  type: LoadBalancer
  clusterIP: 10.96.1.31
  clusterIPs: [10.96.1.31]
  externalTrafficPolicy: Cluster
  loadBalancerSourceRanges: [" 198.51.100.192/26", "10.244.2.0/24 "]
  ports:
    - {name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: 30132}
    - {name: dns, protocol: UDP, port: 53, targetPort: 5353, nodePort: 30133}
status:
  loadBalancer:
    ingress: [{ip: $LBSR_IP}]
$(kxe_slice s2 lbsr-1 lbsr "$POD1B_IP:node1" "$POD2A_IP:node2")
EOF
}

# hairpin PROTO DST: pod1b (the only endpoint) reaches itself through DST; its
# echo server saw a node address, not pod1b's own (E.30: masqueraded).
hairpin()
{
	kxe_probe "$NS_POD1B" "--$1" --dst "$2" --count 10 --timeout-ms 1000 >/dev/null
	expect_all_ok || return
	expect_backends pod1b || return
	expect_masq "$NS_N1" "$NODE1_IP"
}

# from_src SRC: the external client's packets to the LB IP leave from SRC.
from_src()
{
	ip -n "$NS_EXT" route replace "$LBSR_IP/32" via "$NODE1_IP" src "$1"
}

case_lbsr_outside()
{
	local before after
	from_src "$EXT_OUT" || fail "route src $EXT_OUT" || return
	before=$(kxe_fe_counter node1 "$LBSR_IP:80/tcp" drops)
	kxe_probe "$NS_EXT" --tcp --dst "$LBSR_IP:80" --count 3 --timeout-ms 400 >/dev/null
	expect_none_answered || return
	[ "$(pj .failures.timeout)" = 3 ] || fail "want 3 timeouts (silent drop), got $(jq -c .failures <<<"$KXE_LAST")" || return
	kxe_probe "$NS_EXT" --udp --dst "$LBSR_IP:53" --count 3 --timeout-ms 400 >/dev/null
	expect_none_answered || return
	[ "$(pj .failures.timeout)" = 3 ] || fail "udp: want 3 timeouts (silent drop), got $(jq -c .failures <<<"$KXE_LAST")" || return
	after=$(kxe_fe_counter node1 "$LBSR_IP:80/tcp" drops)
	[ "$after" -gt "$before" ] || fail "drops of $LBSR_IP:80/tcp did not grow ($before -> $after)" || return
	[ "$(kxe_reason node1 lbsr_deny)" -gt 0 ] || fail "kxp stats: lbsr_deny is 0 on node1"
}

case_lbsr_inside()
{
	from_src "$EXT_IN" || fail "route src $EXT_IN" || return
	kxe_probe "$NS_EXT" --tcp --dst "$LBSR_IP:80" --count 30 --timeout-ms 1000 >/dev/null
	expect_all_ok || return
	expect_backends pod1b pod2a || return
	expect_masq "$NS_N1" "$NODE1_IP" || return
	[ "$(pj '.local_addrs | keys | join(",")')" = "$EXT_IN" ] ||
		fail "the probe sent from $(pj '.local_addrs|keys|join(",")'), not $EXT_IN (test setup)" || return
	kxe_probe "$NS_EXT" --udp --dst "$LBSR_IP:53" --count 10 --timeout-ms 1000 >/dev/null
	expect_all_ok
}

case_lbsr_nodeport_bypass()
{
	# F.34: the NodePort of the same service is not filtered.
	kxe_probe "$NS_EXT" --tcp --dst "$NODE1_IP:30132" --count 10 --timeout-ms 1000 >/dev/null
	expect_all_ok || return
	[ "$(pj '.local_addrs | keys | join(",")')" = "$EXT_OUT" ] || fail "sent from $(pj '.local_addrs|keys|join(",")'), want $EXT_OUT"
}

case_lbsr_pod_outside()
{
	# pods are filtered too: pod1a (10.244.1.10) is in no range
	kxe_probe "$NS_POD1A" --tcp --dst "$LBSR_IP:80" --count 3 --timeout-ms 400 >/dev/null
	expect_none_answered || return
	[ "$(pj .failures.timeout)" = 3 ] || fail "want 3 timeouts (silent drop), got $(jq -c .failures <<<"$KXE_LAST")"
}

case_lbsr_pod_inside()
{
	# pod2a (10.244.2.10, inside "10.244.2.0/24 " - trailing blank trimmed) via node2
	kxe_probe "$NS_POD2A" --tcp --dst "$LBSR_IP:80" --count 20 --timeout-ms 1000 >/dev/null
	expect_all_ok || return
	expect_masq "$NS_N2" "$NODE2_IP"
}

case_lbsr_trace()
{
	local t
	t=$(kxe_trace node1 --from external --proto tcp --src "$EXT_OUT:43000" --dst "$LBSR_IP:80")
	[ "$(jq -r .verdict <<<"$t")" = drop ] && [ "$(jq -r .reason <<<"$t")" = lbsr_deny ] ||
		fail "trace from $EXT_OUT: $(jq -c . <<<"$t" 2>/dev/null || echo "$t"), want drop/lbsr_deny" || return
	t=$(kxe_trace node1 --from external --proto tcp --src "$EXT_IN:43001" --dst "$LBSR_IP:80")
	[ "$(jq -r .verdict <<<"$t")" = forward ] && [ "$(jq -r .snat <<<"$t")" = true ] ||
		fail "trace from $EXT_IN: $(jq -c . <<<"$t" 2>/dev/null || echo "$t"), want forward with snat"
}

kxe_setup nosync
services
if [ -z "$KXE_SETUP_ERR" ]; then
	ip -n "$NS_EXT" addr add "$EXT_IN/24" dev eth0 || KXE_SETUP_ERR="second address on ext"
	kxe_sync_all || KXE_SETUP_ERR="kxp sync failed: $(head -c 300 "$KXE_TMP/sync-node1.out" | tr '\n' ' ')"
fi
kxe_case hairpin_clusterip_tcp hairpin tcp "$HP:80"
kxe_case hairpin_clusterip_udp hairpin udp "$HP:53"
kxe_case hairpin_nodeport_etp_local_tcp hairpin tcp "$NODE1_IP:30130"
kxe_case hairpin_nodeport_etp_local_udp hairpin udp "$NODE1_IP:30131"
kxe_case lbsr_outside_dropped case_lbsr_outside
kxe_case lbsr_inside_served case_lbsr_inside
kxe_case lbsr_nodeport_not_filtered case_lbsr_nodeport_bypass
kxe_case lbsr_pod_outside_dropped case_lbsr_pod_outside
kxe_case lbsr_pod_inside_served case_lbsr_pod_inside
kxe_case lbsr_trace case_lbsr_trace
kxe_finish
