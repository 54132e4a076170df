#!/usr/bin/env bash
# e2e: sync semantics with real traffic — the same input twice changes nothing,
# a removed service loses its entries, endpoint changes apply to new
# connections, and an established TCP connection keeps its backend.
source "$(dirname "$0")/lib.sh"
kxe_init sync 240

WEB=10.96.0.10
SINGLE=10.96.0.43

# Map contents that a sync writes (counters, ct and stats excluded: traffic moves them).
snapshot()
{
	local m dir=/sys/fs/bpf/kxp-$INST1
	kxe_svc_json node1 | jq -S 'map(del(.packets, .bytes, .drops, .rejects, .passed, .snat_fail, .stats)) | sort_by(.frontend, .scope)'
	for m in kxp_svc4 kxp_slot kxp_backend4 kxp_revnat4 kxp_nodeip4 kxp_config kxp_lbsr4; do
		echo "== $m"
		bpftool -j map dump pinned "$dir/$m" | jq -S -c 'sort_by(.key | tostring) | .[]'
	done
}

case_idempotent()
{
	local a b
	a=$(snapshot)
	[ -n "$a" ] && grep -q "$WEB" <<<"$a" || fail "snapshot before has no $WEB: ${a:0:300}" || return
	kxe_sync node1 || fail "second sync exited $?: $(head -c 300 "$KXE_TMP/sync-node1.out")" || return
	b=$(snapshot)
	[ "$a" = "$b" ] || fail "maps changed by an identical sync: $(diff <(echo "$a") <(echo "$b") | head -20 | tr '\n' ' ')" || return
	kxe_probe "$NS_POD1A" --tcp --dst "$WEB:80" --count 10 >/dev/null
	expect_all_ok
}

case_remove_service()
{
	local n
	mv "$KXE_MANIFESTS/web-clusterip.yaml" "$KXE_TMP/"
	kxe_sync node1 || fail "sync without web exited $?" || return
	n=$(kxe_svc_json node1 | jq --arg ip "$WEB" '[.[] | select(.frontend | startswith($ip + ":"))] | length')
	[ "$n" = 0 ] || fail "$n svc entries of $WEB remain after removing the service" || return
	kxe_probe "$NS_POD1A" --tcp --dst "$WEB:80" --count 3 --timeout-ms 500 >/dev/null
	expect_none_answered || return
	mv "$KXE_TMP/web-clusterip.yaml" "$KXE_MANIFESTS/"
	kxe_sync node1 || fail "sync with web back exited $?" || return
	kxe_probe "$NS_POD1A" --tcp --dst "$WEB:80" --count 20 >/dev/null
	expect_all_ok || return
	expect_backends pod1b pod2a
}

# set_single "ADDR:NODE ..." : rewrite the single service's endpoints and sync.
set_single()
{
	KXE_SINGLE_EPS=$1 kxe_test_services >"$KXE_MANIFESTS/zz-test-services.yaml"
	kxe_sync node1
}

case_endpoint_add()
{
	set_single "$POD1B_IP:node1" || fail "sync exited $?" || return
	kxe_probe "$NS_POD1A" --tcp --dst "$SINGLE:80" --count 10 >/dev/null
	expect_all_ok || return
	expect_backends pod1b || return
	set_single "$POD1B_IP:node1 $POD2A_IP:node2" || fail "sync exited $?" || return
	kxe_probe "$NS_POD1A" --tcp --dst "$SINGLE:80" --count 40 >/dev/null
	expect_all_ok || return
	expect_backends pod1b pod2a
}

case_endpoint_remove()
{
	set_single "$POD1B_IP:node1 $POD2A_IP:node2" || fail "sync exited $?" || return
	set_single "$POD2A_IP:node2" || fail "sync exited $?" || return
	kxe_probe "$NS_POD1A" --tcp --dst "$SINGLE:80" --count 20 >/dev/null
	expect_all_ok || return
	expect_backends pod2a || return
	kxe_probe "$NS_POD1A" --udp --dst "$SINGLE:53" --count 20 >/dev/null
	expect_all_ok || return
	expect_backends pod2a
}

case_established_keeps_backend()
{
	local out=$KXE_TMP/keepalive.json pid
	set_single "$POD1B_IP:node1" || fail "sync exited $?" || return
	# 30 requests on one connection over ~3 s; the backend is swapped after ~1 s.
	kxe_in "$NS_POD1A" "$KXE_PROBE" --tcp --dst "$SINGLE:80" --count 30 --keepalive \
		--interval-ms 100 --timeout-ms 1000 --max-seconds 20 >"$out" 2>&1 &
	pid=$!
	sleep 1
	set_single "$POD2A_IP:node2" || { wait $pid; fail "sync exited non-zero"; return; }
	wait $pid
	KXE_LAST=$(cat "$out")
	expect_all_ok || return
	[ "$(pj .connections)" = 1 ] || fail "the connection broke: $(pj .connections) connections" || return
	expect_backends pod1b || return
	# New connections use the new set.
	kxe_probe "$NS_POD1A" --tcp --dst "$SINGLE:80" --count 10 >/dev/null
	expect_all_ok || return
	expect_backends pod2a
}

kxe_setup
kxe_case idempotent case_idempotent
kxe_case remove_service case_remove_service
kxe_case endpoint_add case_endpoint_add
kxe_case endpoint_remove case_endpoint_remove
kxe_case established_keeps_backend case_established_keeps_backend
kxe_finish
