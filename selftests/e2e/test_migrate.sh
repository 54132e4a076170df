#!/usr/bin/env bash
# e2e: replacing kube-proxy cuts no established connection. A connection opened
# through kube-proxy-style netfilter DNAT before kxp is attached keeps working
# after kxp takes over the node (kxp passes mid-stream packets it has no state
# for, so netfilter's conntrack NAT keeps serving them), while new connections
# go through kxp.
source "$(dirname "$0")/lib.sh"
kxe_init migrate 180

SINGLE=10.96.0.43

# kube-proxy's translation for one ClusterIP, reduced to what matters here: a
# DNAT in node1's nat table (the namespace's own; never the root namespace).
kube_proxy_rules()
{
	kxe_in "$NS_N1" iptables -t nat -A PREROUTING -d "$SINGLE" -p tcp --dport 80 \
		-j DNAT --to-destination "$POD2A_IP:8080"
}

case_established_survives_takeover()
{
	local out=$KXE_TMP/keepalive.json pid before

	command -v iptables >/dev/null || { KXE_WHY="iptables is not installed"; return 77; }
	kube_proxy_rules || fail "could not load the kube-proxy-style rule" || return
	# Before kxp: the ClusterIP is served by netfilter alone.
	kxe_probe "$NS_POD1A" --tcp --dst "$SINGLE:80" --count 3 >/dev/null
	expect_all_ok || return
	expect_backends pod2a || return
	# One connection, 80 requests over ~8 s; kxp takes over node1 after ~1 s
	# (loading and verifying its programs takes seconds on a slow or busy
	# machine: the connection must outlast that), with the Service's endpoint
	# on another pod than netfilter's DNAT uses.
	kxe_in "$NS_POD1A" "$KXE_PROBE" --tcp --dst "$SINGLE:80" --count 80 --keepalive \
		--interval-ms 100 --timeout-ms 1000 --max-seconds 30 >"$out" 2>&1 &
	pid=$!
	sleep 1
	KXE_SINGLE_EPS="$POD1B_IP:node1" kxe_manifests
	kxe_sync_all || { wait $pid; fail "kxp sync failed"; return; }
	wait $pid
	KXE_LAST=$(cat "$out")
	expect_all_ok || return
	[ "$(pj .connections)" = 1 ] || fail "the connection broke: $(pj .connections) connections" || return
	expect_backends pod2a || return
	before=$(kxe_reason node1 ct_miss)
	[ "$before" -gt 0 ] || fail "kxp saw no mid-stream packet of the old connection (ct_miss $before)" || return
	# New connections are kxp's: they reach the Service's endpoint.
	kxe_probe "$NS_POD1A" --tcp --dst "$SINGLE:80" --count 10 >/dev/null
	expect_all_ok || return
	expect_backends pod1b
}

kxe_setup nosync
kxe_case established_survives_takeover case_established_survives_takeover
kxe_finish
