#!/usr/bin/env bash
# e2e: backend selection with real traffic through kxp on node1: round robin
# spreads 1,000 connections evenly over 4 backends, sessionAffinity ClientIP
# keeps a client on one backend (ClusterIP and NodePort agree), a long-lived
# TCP connection survives its backend leaving the Service, a UDP flow whose
# backend left moves to a serving one, maglev picks per flow; `kxp maglev
# show` and `kxp affinity list` read the state.
source "$(dirname "$0")/lib.sh"
kxe_init select 280

RR=10.96.0.60
AFF=10.96.0.61
AFF_NP=30095
MOVE=10.96.0.62
MG=10.96.0.63

# Four backends: pod1b and pod2a each run a second echo server on 8081/5354.
# sel_slices NAME SVC: the four as two slices (a port number per slice).
sel_slices()
{
	local name=$1 svc=$2 p
	for p in 8080 8081; do
		cat <<EOF
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $name-$p, namespace: test, labels: {kubernetes.io/service-name: $svc}}
addressType: IPv4
endpoints:
  - {addresses: [$POD1B_IP], conditions: {ready: true}, nodeName: node1}
  - {addresses: [$POD2A_IP], conditions: {ready: true}, nodeName: node2}
ports:
  - {name: http, protocol: TCP, port: $p}
EOF
	done
}

# SEL_MOVE_EPS: ADDR:NODE list of the "move" service (TCP 80->8080, UDP 53->5353);
# SEL_AFFINITY: sessionAffinity of sel-aff.
sel_manifests()
{
	{
		cat <<EOF
---
apiVersion: v1
kind: Service
metadata: {name: sel-rr, namespace: test, annotations: {kxp.io/lb-algorithm: rr}}
spec:
  clusterIP: $RR
  clusterIPs: [$RR]
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: sel-mg, namespace: test, annotations: {kxp.io/lb-algorithm: maglev}}
spec:
  clusterIP: $MG
  clusterIPs: [$MG]
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: sel-aff, namespace: test}
spec:
  type: NodePort
  clusterIP: $AFF
  clusterIPs: [$AFF]
  externalTrafficPolicy: Cluster
  sessionAffinity: ${SEL_AFFINITY:-ClientIP}
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: $AFF_NP}]
EOF
		sel_slices sel-rr sel-rr
		sel_slices sel-mg sel-mg
		sel_slices sel-aff sel-aff
		kxe_service sel-move ClusterIP "$MOVE" Cluster
		# shellcheck disable=SC2086
		kxe_slice test sel-move-1 sel-move ${SEL_MOVE_EPS-$POD2A_IP:node2}
	} >"$KXE_MANIFESTS/zz-select.yaml"
}

sel_resync()
{
	sel_manifests
	kxe_sync node1 || fail "kxp sync node1: $(head -c 500 "$KXE_TMP/sync-node1.out")"
}

case_rr_spread()
{
	local bad
	kxe_in "$NS_POD1A" sysctl -qw net.ipv4.tcp_tw_reuse=1
	kxe_probe "$NS_POD1A" --tcp --dst "$RR:80" --count 1000 --timeout-ms 1000 --max-seconds 120 >/dev/null
	expect_all_ok || return
	expect_backends pod1b pod1b-2 pod2a pod2a-2 || return
	kxe_log "rr: 1000 connections: $(pj '.backends | to_entries | map("\(.key)=\(.value.count)") | join(" ")')"
	# even is 250 each; +-5% of it is 237.5..262.5
	bad=$(pj '.backends | to_entries[] | select(.value.count < 238 or .value.count > 262) | .key')
	[ -z "$bad" ] || fail "rr spread outside 250 +-5%: $(pj '.backends|tostring')"
}

case_maglev_show()
{
	local out
	kxe_probe "$NS_POD1A" --tcp --dst "$MG:80" --count 40 >/dev/null
	expect_all_ok || return
	expect_backends pod1b pod1b-2 pod2a pod2a-2 || return
	out=$("$KXP" maglev show --instance "$INST1" test/sel-mg:http -o json 2>&1)
	jq -e '.m as $m | .sets | length == 1 and (.[0].backends | length == 4) and
		(([.[0].backends[].entries] | add) == $m) and
		(.[0].backends | all(.share > 0.24 and .share < 0.26))' <<<"$out" >/dev/null ||
		fail "maglev show: ${out:0:600}" || return
	kxe_log "maglev show: $("$KXP" maglev show --instance "$INST1" test/sel-mg | tr '\n' ' ')"
	# a Service without maglev has no table
	if "$KXP" maglev show --instance "$INST1" test/sel-rr >/dev/null 2>&1; then
		fail "sel-rr has a Maglev table"
	fi
}

case_affinity_clusterip_nodeport()
{
	local b out
	kxe_probe "$NS_POD1A" --tcp --dst "$AFF:80" --count 30 >/dev/null
	expect_all_ok || return
	[ "$(pj '.backends | length')" = 1 ] || fail "ClusterIP: 30 connections reached $(pj '.backends|keys|join(",")')" || return
	b=$(pj '.backends | keys[0]')
	kxe_probe "$NS_POD1A" --tcp --dst "$NODE1_IP:$AFF_NP" --count 30 >/dev/null
	expect_all_ok || return
	expect_backends "$b" || return
	# an external client sticks too (XDP path), to whichever backend it got
	kxe_probe "$NS_EXT" --tcp --dst "$NODE1_IP:$AFF_NP" --count 30 >/dev/null
	expect_all_ok || return
	[ "$(pj '.backends | length')" = 1 ] || fail "external client: reached $(pj '.backends|keys|join(",")')" || return
	out=$("$KXP" affinity list --instance "$INST1" -o json 2>&1)
	jq -e --arg c "$POD1A_IP" --arg e "$EXT_IP" '[.[] | select(.set | startswith("test/sel-aff:http/TCP"))] |
		(map(.client) | sort) == ([$c, $e] | sort)' <<<"$out" >/dev/null ||
		fail "affinity list: ${out:0:600}" || return
	# affinity switched off at runtime: connections spread again
	SEL_AFFINITY=None sel_resync || return
	kxe_probe "$NS_POD1A" --tcp --dst "$AFF:80" --count 40 >/dev/null
	expect_all_ok || return
	[ "$(pj '.backends | length')" -gt 1 ] || fail "affinity off: still one backend $(pj '.backends|keys|join(",")')" || return
	sel_resync
}

case_long_lived_tcp_survives_removal()
{
	local out=$KXE_TMP/longlived.json pid
	# one connection, 40 requests over 4 s; its backend (pod2a, the only one)
	# leaves the Service after 1 s
	kxe_in "$NS_POD1A" "$KXE_PROBE" --tcp --dst "$MOVE:80" --count 40 --interval-ms 100 --keepalive \
		--timeout-ms 1000 --max-seconds 30 >"$out" 2>&1 &
	pid=$!
	sleep 1
	SEL_MOVE_EPS="$POD1B_IP:node1" sel_resync || { wait $pid; return 1; }
	wait $pid
	KXE_LAST=$(cat "$out")
	expect_all_ok || return
	[ "$(pj .connections)" = 1 ] || fail "needed $(pj .connections) connections, want 1" || return
	expect_backends pod2a || return
	# new connections go to the serving backend only
	kxe_probe "$NS_POD1A" --tcp --dst "$MOVE:80" --count 10 >/dev/null
	expect_all_ok && expect_backends pod1b
}

case_udp_flow_moves()
{
	local out=$KXE_TMP/udpmove.json pid
	SEL_MOVE_EPS="$POD2A_IP:node2" sel_resync || return
	# one UDP flow (one socket, fixed source port), 80 datagrams over 8 s;
	# its backend pod2a leaves after 1 s (plus the sync: seconds on a busy
	# machine), so at least 20 must reach pod1b once the flow has moved
	kxe_in "$NS_POD1A" "$KXE_PROBE" --udp --dst "$MOVE:53" --count 80 --interval-ms 100 --keepalive \
		--src-port 40555 --timeout-ms 1000 --max-seconds 30 >"$out" 2>&1 &
	pid=$!
	sleep 1
	SEL_MOVE_EPS="$POD1B_IP:node1" sel_resync || { wait $pid; return 1; }
	wait $pid
	KXE_LAST=$(cat "$out")
	expect_all_ok || return
	expect_backends pod1b pod2a || return
	[ "$(pj '.backends.pod1b.count')" -ge 20 ] || fail "after the move: $(pj '.backends|tostring')" || return
	[ "$(pj '.reply_sources | keys | join(",")')" = "$MOVE:53" ] ||
		fail "UDP replies came from $(pj .reply_sources|tr -d '\n'), want only $MOVE:53"
}

setup()
{
	kxe_setup nosync || return
	KXE_ECHO_PORTS="--tcp 8081 --udp 5354" kxe_echo "$NS_POD1B" pod1b-2 || { KXE_SETUP_ERR="second echo"; return 1; }
	KXE_ECHO_PORTS="--tcp 8081 --udp 5354" kxe_echo "$NS_POD2A" pod2a-2 || { KXE_SETUP_ERR="second echo"; return 1; }
	sel_manifests
	kxe_sync_all || KXE_SETUP_ERR="kxp sync failed: $(head -c 300 "$KXE_TMP/sync-node1.out" | tr '\n' ' ')"
}

setup
kxe_case rr_spread case_rr_spread
kxe_case maglev_show case_maglev_show
kxe_case affinity_clusterip_nodeport case_affinity_clusterip_nodeport
kxe_case long_lived_tcp_survives_removal case_long_lived_tcp_survives_removal
kxe_case udp_flow_moves case_udp_flow_moves
kxe_finish
