#!/usr/bin/env bash
# e2e: pod -> ClusterIP:port (TCP and UDP) through kxp on node1 with real
# traffic: DNAT at TC ingress of the pod device to a local (pod1b) or remote
# (pod2a) backend, reply reverse-translated, no SNAT, spread across backends.
source "$(dirname "$0")/lib.sh"
kxe_init clusterip 240

WEB=10.96.0.10

case_tcp_spread()
{
	kxe_probe "$NS_POD1A" --tcp --dst "$WEB:80" --count 40 --timeout-ms 1000 >/dev/null
	expect_all_ok || return
	expect_backends pod1b pod2a || return
	# A TCP answer at all proves the reply came back from the ClusterIP (the
	# client's stack resets a SYN-ACK from any other address).
	expect_client_seen "$POD1A_IP"
}

case_udp_spread()
{
	kxe_probe "$NS_POD1A" --udp --dst "$WEB:53" --count 40 --timeout-ms 1000 >/dev/null
	# wrong_source counts answers that came from the backend address instead of the ClusterIP.
	expect_all_ok || return
	expect_backends pod1b pod2a || return
	[ "$(pj '.reply_sources | keys | join(",")')" = "$WEB:53" ] ||
		fail "UDP replies came from $(pj .reply_sources|tr -d '\n'), want only $WEB:53" || return
	expect_client_seen "$POD1A_IP"
}

case_keepalive_sticks()
{
	# One connection, 20 requests: conntrack keeps the flow on one backend.
	kxe_probe "$NS_POD1A" --tcp --dst "$WEB:80" --count 20 --keepalive --timeout-ms 1000 >/dev/null
	expect_all_ok || return
	[ "$(pj .connections)" = 1 ] || fail "needed $(pj .connections) connections, want 1" || return
	[ "$(pj '.backends | length')" = 1 ] || fail "one connection reached $(pj '.backends|keys|join(",")')"
}

case_counters_and_ct()
{
	local before after ct
	before=$(kxe_fe_counter node1 "$WEB:80/tcp" packets)
	kxe_probe "$NS_POD1A" --tcp --dst "$WEB:80" --count 5 --timeout-ms 1000 >/dev/null
	expect_all_ok || return
	after=$(kxe_fe_counter node1 "$WEB:80/tcp" packets)
	[ -n "$after" ] && [ "$after" -gt "${before:-0}" ] ||
		fail "svc list packets for $WEB:80/tcp: before $before, after $after" || return
	# Conntrack entries of this client's flows to a backend of the service exist.
	ct=$(kxe_ct_json node1)
	jq -e 'type == "array" and length > 0' <<<"$ct" >/dev/null || fail "ct list empty or not JSON: ${ct:0:300}" || return
	grep -q "$POD1A_IP" <<<"$ct" && grep -Eq "$POD1B_IP|$POD2A_IP" <<<"$ct" ||
		fail "ct list has no flow $POD1A_IP -> a backend: ${ct:0:500}"
}

case_no_endpoints_reject()
{
	# noep (10.96.0.42) has no endpoints: kxp answers with ICMP port
	# unreachable (connect fails with ECONNREFUSED) and counts a reject.
	local before after
	before=$(kxe_fe_counter node1 10.96.0.42:80/tcp rejects)
	kxe_probe "$NS_POD1A" --tcp --dst 10.96.0.42:80 --count 3 --timeout-ms 500 >/dev/null
	expect_none_answered || return
	[ "$(pj .failures.refused)" = 3 ] || fail "want 3 refused (reject), got $(jq -c .failures <<<"$KXE_LAST")" || return
	after=$(kxe_fe_counter node1 10.96.0.42:80/tcp rejects)
	[ "$after" -ge $((before + 3)) ] || fail "rejects of 10.96.0.42:80/tcp: $before -> $after, want +3"
}

kxe_setup
kxe_case tcp_spread case_tcp_spread
kxe_case udp_spread case_udp_spread
kxe_case keepalive_sticks case_keepalive_sticks
kxe_case counters_and_ct case_counters_and_ct
kxe_case no_endpoints_reject case_no_endpoints_reject
kxe_finish
