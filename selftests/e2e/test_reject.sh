#!/usr/bin/env bash
# e2e: services with no usable endpoint anywhere are rejected with ICMP port
# unreachable built by kxp (TCP connect -> ECONNREFUSED, UDP -> the ICMP error
# on the socket), from pods and from outside, on every frontend kind; an
# active ClusterIP's unserved port is rejected too; counters and trace agree.
source "$(dirname "$0")/lib.sh"
kxe_init reject 240

NOEP=10.96.0.42
NOEP_LB=203.0.113.70
NOTREADY=10.96.1.21

services()
{
	kxe_yaml s2-reject.yaml <<EOF
apiVersion: v1
kind: Service
metadata: {name: noep-lb, namespace: s2}
spec:
  type: LoadBalancer
  clusterIP: 10.96.1.20
  clusterIPs: [10.96.1.20]
  externalTrafficPolicy: Cluster
  ports:
    - {name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: 30120}
    - {name: dns, protocol: UDP, port: 53, targetPort: 5353, nodePort: 30121}
status:
  loadBalancer:
    ingress: [{ip: $NOEP_LB}]
---
apiVersion: v1
kind: Service
metadata: {name: notready, namespace: s2}
spec:
  type: ClusterIP
  clusterIP: $NOTREADY
  clusterIPs: [$NOTREADY]
  ports:
    - {name: http, protocol: TCP, port: 80, targetPort: 8080}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: notready-1, namespace: s2, labels: {kubernetes.io/service-name: notready}}
addressType: IPv4
endpoints:
  - {addresses: [$POD1B_IP], conditions: {ready: false, serving: false, terminating: false}, nodeName: node1}
ports:
  - {name: http, protocol: TCP, port: 8080}
---
apiVersion: v1
kind: Service
metadata: {name: noep-local, namespace: s2}
spec:
  type: NodePort
  clusterIP: 10.96.1.22
  clusterIPs: [10.96.1.22]
  externalTrafficPolicy: Local
  ports:
    - {name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: 30122}
EOF
}

# refused NS PROTO DST [NODE FRONTEND]: 3 requests, all refused by an ICMP
# port unreachable (for UDP the probe reads it from the socket's error queue),
# and the frontend's reject counter on NODE grew by at least 3.
refused()
{
	local ns=$1 proto=$2 dst=$3 node=${4:-} fe=${5:-} before after
	[ -n "$node" ] && before=$(kxe_fe_counter "$node" "$fe" rejects)
	kxe_probe "$ns" "--$proto" --dst "$dst" --count 3 --timeout-ms 1000 --interval-ms 50 >/dev/null
	expect_none_answered || return
	[ "$(pj .failures.refused)" = 3 ] ||
		fail "$dst $proto: want 3 refused (ICMP port unreachable), got $(jq -c .failures <<<"$KXE_LAST")" || return
	if [ -n "$node" ]; then
		after=$(kxe_fe_counter "$node" "$fe" rejects)
		[ "$after" -ge $((before + 3)) ] || fail "rejects of $fe on $node: $before -> $after, want +3" || return
	fi
	# The refusal is an ICMP port unreachable (type 3 code 3), not a TCP reset.
	kxe_bulk_send "$ns" "--$proto" --dst "$dst" --size 6 --count 1 --timeout-ms 1000 >/dev/null
	[ "$(pj .failures.refused)" = 1 ] && [ "$(pj .icmp_type)" = 3 ] && [ "$(pj .icmp_code)" = 3 ] ||
		fail "$dst $proto: want an ICMP port unreachable on the socket, got failures $(pj '.failures|tostring') icmp type $(pj .icmp_type) code $(pj .icmp_code) from $(pj .icmp_from)"
}

case_trace()
{
	local t
	t=$(kxe_trace node1 --from pod --proto tcp --src "$POD1A_IP:42000" --dst "$NOEP:80")
	[ "$(jq -r .verdict <<<"$t")" = reject ] && [ "$(jq -r .reason <<<"$t")" = no_endpoints ] ||
		fail "trace pod -> $NOEP:80: $(jq -c . <<<"$t" 2>/dev/null || echo "$t"), want verdict reject, reason no_endpoints" || return
	t=$(kxe_trace node1 --from external --proto udp --src "$EXT_IP:42001" --dst "$NODE1_IP:30121")
	[ "$(jq -r .verdict <<<"$t")" = reject ] && [ "$(jq -r .reason <<<"$t")" = no_endpoints ] ||
		fail "trace external -> $NODE1_IP:30121/udp: $(jq -c . <<<"$t" 2>/dev/null || echo "$t"), want verdict reject" || return
	t=$(kxe_trace node1 --from pod --proto tcp --src "$POD1A_IP:42002" --dst 10.96.0.10:81)
	[ "$(jq -r .verdict <<<"$t")" = reject ] ||
		fail "trace pod -> 10.96.0.10:81 (unserved port): $(jq -c . <<<"$t" 2>/dev/null || echo "$t"), want reject"
}

case_reason_counted()
{
	local n
	n=$(kxe_reason node1 no_endpoints)
	[ "${n:-0}" -ge 3 ] || fail "kxp stats: no_endpoints on node1 is ${n:-0} after the rejects above"
}

case_rejects_then_serves()
{
	# D.28: adding an endpoint turns the reject into DNAT.
	cat >>"$KXE_MANIFESTS/s2-reject.yaml" <<EOF
$(kxe_slice s2 noep-lb-1 noep-lb "$POD1B_IP:node1")
EOF
	kxe_sync node1 || fail "sync with an endpoint for noep-lb exited $?" || return
	kxe_probe "$NS_POD1A" --tcp --dst 10.96.1.20:80 --count 5 --timeout-ms 1000 >/dev/null
	expect_all_ok || return
	expect_backends pod1b
}

# A listener on the NodePorts in each node's own stack: a packet kxp passed
# untouched would be answered by it (or reset/refused by the node, which looks
# like a reject): with it there, "refused" can only be kxp's ICMP.
node_listeners()
{
	kxe_echo "$NS_N1" node1-stack-np && kxe_echo "$NS_N2" node2-stack-np
}

kxe_setup nosync
services
KXE_ECHO_PORTS="--tcp 30120 --tcp 30122 --udp 30121" node_listeners ||
	KXE_SETUP_ERR=${KXE_SETUP_ERR:-node listeners did not start}
kxe_need_bulk
kxe_sync_all || KXE_SETUP_ERR="kxp sync failed: $(head -c 300 "$KXE_TMP/sync-node1.out" | tr '\n' ' ')"
kxe_case pod_clusterip_tcp refused "$NS_POD1A" tcp "$NOEP:80" node1 "$NOEP:80/tcp"
kxe_case pod_clusterip_udp refused "$NS_POD1A" udp "$NOEP:53" node1 "$NOEP:53/udp"
kxe_case ext_clusterip_tcp refused "$NS_EXT" tcp "$NOEP:80" node1 "$NOEP:80/tcp"
kxe_case ext_nodeport_tcp refused "$NS_EXT" tcp "$NODE1_IP:30120" node1 "$NODE1_IP:30120/tcp"
kxe_case ext_nodeport_udp refused "$NS_EXT" udp "$NODE1_IP:30121" node1 "$NODE1_IP:30121/udp"
kxe_case ext_nodeport_node2_tcp refused "$NS_EXT" tcp "$NODE2_IP:30120" node2 "$NODE2_IP:30120/tcp"
kxe_case ext_lb_ip_tcp refused "$NS_EXT" tcp "$NOEP_LB:80" node1 "$NOEP_LB:80/tcp"
kxe_case ext_lb_ip_udp refused "$NS_EXT" udp "$NOEP_LB:53" node1 "$NOEP_LB:53/udp"
kxe_case pod_nodeport_tcp refused "$NS_POD1A" tcp "$NODE1_IP:30120" node1 "$NODE1_IP:30120/tcp"
kxe_case pod_lb_ip_udp refused "$NS_POD1A" udp "$NOEP_LB:53" node1 "$NOEP_LB:53/udp"
kxe_case not_ready_endpoint_tcp refused "$NS_POD1A" tcp "$NOTREADY:80" node1 "$NOTREADY:80/tcp"
kxe_case etp_local_no_endpoints_tcp refused "$NS_EXT" tcp "$NODE1_IP:30122" node1 "$NODE1_IP:30122/tcp"
kxe_case unserved_port_tcp refused "$NS_POD1A" tcp 10.96.0.10:81
kxe_case unserved_port_udp refused "$NS_POD1A" udp 10.96.0.10:54
kxe_case trace case_trace
kxe_case reason_counted case_reason_counted
kxe_case rejects_then_serves case_rejects_then_serves
kxe_finish
