#!/usr/bin/env bash
# e2e: IP fragments and PMTU discovery through frontends. UDP datagrams larger
# than the MTU (fragmented by the sender) reach their backend through a
# masqueraded NodePort and a ClusterIP, and fragmented replies come back;
# with a 1280-byte MTU on node2's side of pod2a's veth, node2's "fragmentation
# needed" about a translated flow is translated back by node1 so the external
# client learns the path MTU (UDP with DF: EMSGSIZE + route cache; TCP: a
# large request completes and the route cache shows the lowered MTU).
source "$(dirname "$0")/lib.sh"
kxe_init frag_pmtu 240

FRAG_CIP=10.96.1.40
PMTU_LB=203.0.113.90
# kxp-bulk servers in pod1b and pod2a: "big" answers 3000 bytes (9090/9191),
# "small" answers one line (9092/9193).
services()
{
	kxe_yaml s2-frag.yaml <<EOF
apiVersion: v1
kind: Service
metadata: {name: frag, namespace: s2}
spec:
  type: NodePort
  clusterIP: $FRAG_CIP
  clusterIPs: [$FRAG_CIP]
  externalTrafficPolicy: Cluster
  ports:
    - {name: tcp-big, protocol: TCP, port: 9090, targetPort: 9090, nodePort: 30140}
    - {name: udp-big, protocol: UDP, port: 9191, targetPort: 9191, nodePort: 30141}
    - {name: udp-small, protocol: UDP, port: 9193, targetPort: 9193, nodePort: 30144}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: frag-1, namespace: s2, labels: {kubernetes.io/service-name: frag}}
addressType: IPv4
endpoints:
  - {addresses: [$POD1B_IP], conditions: {ready: true}, nodeName: node1}
  - {addresses: [$POD2A_IP], conditions: {ready: true}, nodeName: node2}
ports:
  - {name: tcp-big, protocol: TCP, port: 9090}
  - {name: udp-big, protocol: UDP, port: 9191}
  - {name: udp-small, protocol: UDP, port: 9193}
---
apiVersion: v1
kind: Service
metadata: {name: pmtu, namespace: s2}
spec:
  type: LoadBalancer
  clusterIP: 10.96.1.41
  clusterIPs: [10.96.1.41]
  externalTrafficPolicy: Cluster
  ports:
    - {name: tcp-small, protocol: TCP, port: 9092, targetPort: 9092, nodePort: 30142}
    - {name: udp-small, protocol: UDP, port: 9193, targetPort: 9193, nodePort: 30143}
status:
  loadBalancer:
    ingress: [{ip: $PMTU_LB}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: pmtu-1, namespace: s2, labels: {kubernetes.io/service-name: pmtu}}
addressType: IPv4
endpoints:
  - {addresses: [$POD2A_IP], conditions: {ready: true}, nodeName: node2}
ports:
  - {name: tcp-small, protocol: TCP, port: 9092}
  - {name: udp-small, protocol: UDP, port: 9193}
EOF
}

servers()
{
	kxe_bulk "$NS_POD1B" pod1b 3000 9090 9191 && kxe_bulk "$NS_POD1B" pod1b 0 9092 9193 &&
		kxe_bulk "$NS_POD2A" pod2a 3000 9090 9191 && kxe_bulk "$NS_POD2A" pod2a 0 9092 9193
}

# Every backend saw only this client address.
expect_clients()
{
	local bad
	bad=$(jq -r --arg ip "$1" '.backends | to_entries[] | select((.value.clients | keys) != [$ip]) | .key' <<<"$KXE_LAST")
	[ -z "$bad" ] || fail "backend(s) $bad saw $(pj '[.backends[] | .clients | keys[]] | unique | join(",")'), want only $1"
}

# bulk_ok NS NODE_NS WANT_CLIENT ARGS...: all requests answered in full by both backends.
bulk_ok()
{
	local ns=$1 nodens=$2 want=$3 frag0 frag1
	shift 3
	frag0=$(kxe_reason node1 fragment)
	kxe_bulk_send "$ns" "$@" >/dev/null
	frag1=$(kxe_reason node1 fragment)
	[ "$(pj .ok)" = "$(pj .count)" ] ||
		fail "$(pj .dst) $(pj .proto) size $(pj .size) reply $(pj .reply_size): $(pj .ok)/$(pj .count) answered, failures $(pj '.failures|tostring'); node1 'fragment' reason counter $frag0 -> $frag1" || return
	expect_backends pod1b pod2a || return
	if [ "$nodens" = - ]; then
		expect_clients "$want"
	else
		expect_masq "$nodens" "$want"
	fi
}

# pmtu_cached NS DST: the route cache's MTU towards DST, or "none".
pmtu_cached()
{
	ip -n "$1" route get "$2" | grep -o 'mtu [0-9]*' | awk '{print $2}' | grep . || echo none
}

case_pmtu_udp()
{
	local mtu
	kxe_backend_mtu "$NS_N2" veth2a 1280 || fail "could not set veth2a mtu" || return
	# DF set, 1400 bytes: node2 cannot forward it to pod2a and says so.
	kxe_bulk_send "$NS_EXT" --udp --dst "$PMTU_LB:9193" --size 1400 --pmtudisc do --count 1 >/dev/null
	[ "$(pj .failures.msgsize)" = 1 ] && [ "$(pj .pmtu_icmp)" = 1280 ] ||
		fail "want EMSGSIZE from an ICMP 'fragmentation needed' (mtu 1280), got failures $(pj '.failures|tostring') icmp_errno $(pj .icmp_errno) pmtu_icmp $(pj .pmtu_icmp)" || return
	mtu=$(pmtu_cached "$NS_EXT" "$PMTU_LB")
	[ "$mtu" = 1280 ] || fail "ext route cache mtu towards $PMTU_LB: $mtu, want 1280 ($(ip -n "$NS_EXT" route get "$PMTU_LB" | tr '\n' ' '))" || return
	# Now the sender fragments to 1280 and the datagram gets through.
	kxe_bulk_send "$NS_EXT" --udp --dst "$PMTU_LB:9193" --size 1400 --pmtudisc want --count 5 >/dev/null
	[ "$(pj .ok)" = 5 ] || fail "after PMTU: $(pj .ok)/5 answered, failures $(pj '.failures|tostring')" || return
	expect_masq "$NS_N1" "$NODE1_IP"
}

case_pmtu_tcp()
{
	local mtu
	kxe_backend_mtu "$NS_N2" veth2a 1280 || fail "could not set veth2a mtu" || return
	# pod2a advertises MSS 1460: the client's full-size segments need PMTU discovery
	# (without the translated ICMP error the connection stalls: timeout).
	kxe_bulk_send "$NS_EXT" --tcp --dst "$NODE1_IP:30142" --size 60000 --count 3 --timeout-ms 4000 >/dev/null
	[ "$(pj .ok)" = 3 ] || fail "60 kB requests: $(pj .ok)/3 answered, failures $(pj '.failures|tostring')" || return
	expect_masq "$NS_N1" "$NODE1_IP" || return
	mtu=$(pmtu_cached "$NS_EXT" "$NODE1_IP")
	[ "$mtu" = 1280 ] || fail "ext route cache mtu towards $NODE1_IP: $mtu, want 1280"
}

kxe_setup nosync
if [ -z "$KXE_SETUP_ERR" ]; then
	services
	kxe_need_bulk && { servers || KXE_SETUP_ERR="kxp-bulk servers did not start"; }
	kxe_sync_all || KXE_SETUP_ERR="kxp sync failed: $(head -c 300 "$KXE_TMP/sync-node1.out" | tr '\n' ' ')"
fi
kxe_case ext_udp_frag_request bulk_ok "$NS_EXT" "$NS_N1" "$NODE1_IP" --udp --dst "$NODE1_IP:30144" --size 3000 --count 20 --pmtudisc dont
kxe_case ext_udp_frag_reply bulk_ok "$NS_EXT" "$NS_N1" "$NODE1_IP" --udp --dst "$NODE1_IP:30141" --size 100 --reply-size 3000 --count 20
kxe_case ext_udp_frag_both bulk_ok "$NS_EXT" "$NS_N1" "$NODE1_IP" --udp --dst "$NODE1_IP:30141" --size 3000 --reply-size 3000 --count 20 --pmtudisc dont
kxe_case ext_udp_frag_clusterip bulk_ok "$NS_EXT" "$NS_N1" "$NODE1_IP" --udp --dst "$FRAG_CIP:9191" --size 5000 --reply-size 3000 --count 20 --pmtudisc dont
kxe_case pod_udp_frag_clusterip bulk_ok "$NS_POD1A" - "$POD1A_IP" --udp --dst "$FRAG_CIP:9191" --size 3000 --reply-size 3000 --count 20 --pmtudisc dont
kxe_case ext_tcp_large bulk_ok "$NS_EXT" "$NS_N1" "$NODE1_IP" --tcp --dst "$NODE1_IP:30140" --size 100000 --reply-size 3000 --count 10
kxe_case pmtu_udp case_pmtu_udp
kxe_case pmtu_tcp case_pmtu_tcp
kxe_finish
