#!/usr/bin/env bash
# e2e: what the kernel offers decides what kxp loads, and it says so —
# --xdp-mode off loads no XDP object, auto attaches native on veth, a kernel
# that refuses the XDP object leaves XDP off with the verifier's reason while
# TC serves every walk, and `kxp status` reports each of these.
source "$(dirname "$0")/lib.sh"
kxe_init status 240

WEB=10.96.0.10
NP=30080 # echo-np: eTP=Local NodePort, backend pod1b on node1

status_json() { "$KXP" --netns "$NS_N1" -o json status --instance "$INST1" 2>&1; }

# The node1 walks kxp serves whatever runs on eth0: pod -> ClusterIP and
# external -> NodePort (local backend, client address preserved).
traffic_ok()
{
	kxe_probe "$NS_POD1A" --tcp --dst "$WEB:80" --count 20 >/dev/null
	expect_all_ok || return
	expect_backends pod1b pod2a || return
	kxe_probe "$NS_EXT" --tcp --dst "$NODE1_IP:$NP" --count 10 --timeout-ms 1000 >/dev/null
	expect_all_ok || return
	expect_client_seen "$EXT_IP" || return
	kxe_probe "$NS_EXT" --udp --dst "$NODE1_IP:30053" --count 10 --timeout-ms 1000 >/dev/null
	expect_all_ok
}

# trace_stage -> where kxp trace decides ext -> NodePort (xdp or tc-ingress).
trace_stage()
{
	local out
	out=$(kxe_trace node1 --from external --dev eth0 --proto tcp --src "$EXT_IP:42000" --dst "$NODE1_IP:$NP")
	[ "$(jq -r .verdict <<<"$out")" = forward ] || { kxe_log "trace: ${out:0:300}"; echo "not-forward"; return; }
	jq -r .stage <<<"$out"
}

# xdp_on_eth0 -> the XDP program id attached to node1's eth0, empty if none.
xdp_on_eth0()
{
	kxe_in "$NS_N1" ip -j link show dev eth0 | jq -r '.[0].xdp.prog.id // .[0].xdp.attached[0].prog.id // empty'
}

case_status_kernel()
{
	local s n
	s=$("$KXP" -o json status 2>&1)
	[ "$(jq -r .kernel <<<"$s")" = "$(uname -r)" ] || fail "status kernel is not $(uname -r): ${s:0:200}" || return
	n=$(jq '[.capabilities[] | select(.needed_by == "core" and .available == false)] | length' <<<"$s")
	[ "$n" = 0 ] || fail "a core capability is missing on a kernel where kxp runs: $(jq -c '.capabilities' <<<"$s" | head -c 300)" || return
	"$KXP" status | grep -q "^helper fib_lookup (tc) *yes" || fail "table view lacks the fib_lookup row"
}

case_xdp_off()
{
	local s
	kxe_sync node1 --xdp-mode off || fail "sync --xdp-mode off exited $?: $(head -c 300 "$KXE_TMP/sync-node1.out")" || return
	[ -z "$(xdp_on_eth0)" ] || fail "an XDP program is still attached to eth0 with --xdp-mode off" || return
	s=$(status_json)
	[ "$(jq -r .instance.loaded.xdp <<<"$s")" = false ] || fail "status says XDP loaded with --xdp-mode off: ${s:0:300}" || return
	[ "$(jq -r '.instance.devices[] | select(.dev == "eth0") | .xdp' <<<"$s")" = off ] ||
		fail "status: eth0 xdp is not off: $(jq -c .instance.devices <<<"$s")" || return
	[ "$(trace_stage)" = tc-ingress ] || fail "trace decides at $(trace_stage) on an instance without XDP" || return
	traffic_ok
}

case_xdp_auto()
{
	local s
	kxe_sync node1 --xdp-mode auto || fail "sync --xdp-mode auto exited $?: $(head -c 300 "$KXE_TMP/sync-node1.out")" || return
	[ -n "$(xdp_on_eth0)" ] || fail "no XDP program on eth0 with --xdp-mode auto" || return
	s=$(status_json)
	[ "$(jq -r .instance.loaded.xdp <<<"$s")" = true ] || fail "status says XDP not loaded: ${s:0:300}" || return
	[ "$(jq -r '.instance.devices[] | select(.dev == "eth0") | .xdp' <<<"$s")" = native ] ||
		fail "status: eth0 xdp is not native (veth takes native XDP): $(jq -c .instance.devices <<<"$s")" || return
	grep -q "attached eth0: xdp (native)" "$KXE_TMP/sync-node1.out" || fail "sync did not report xdp (native) on eth0" || return
	[ "$(trace_stage)" = xdp ] || fail "trace decides at $(trace_stage), want xdp" || return
	traffic_ok
}

# A kernel that refuses the XDP object: made here by telling kxp that
# bpf_xdp_adjust_meta exists on a kernel whose verifier refuses it in XDP.
case_xdp_refused_tc_serves()
{
	local s
	if "$KXP" status | grep -q "^helper xdp_adjust_meta (xdp) *yes"; then
		KXE_WHY="this kernel accepts bpf_xdp_adjust_meta in XDP: no refusal to provoke"
		return 77
	fi
	kxe_sync node1 --xdp-mode auto || return # attach XDP first: the refusal must take it off
	[ -n "$(xdp_on_eth0)" ] || fail "no XDP program on eth0 before the refused load" || return
	KXP_PROBE_FORCE=H_XDP_META kxe_sync node1 --xdp-mode auto ||
		fail "sync with a refused XDP object exited $?: $(head -c 400 "$KXE_TMP/sync-node1.out")" || return
	grep -q "warning: XDP off: kernel $(uname -r) refused the XDP program: .*verifier: .*xdp_adjust_meta" \
		"$KXE_TMP/sync-node1.out" || fail "no warning naming the verifier's reason: $(head -c 400 "$KXE_TMP/sync-node1.out")" || return
	[ -z "$(xdp_on_eth0)" ] || fail "kxp's earlier XDP program is still on eth0 after the refused load" || return
	s=$(status_json)
	[ "$(jq -r .instance.loaded.xdp <<<"$s")" = false ] || fail "status says XDP loaded: ${s:0:300}" || return
	jq -e '.instance.fallbacks | any(test("no XDP object"))' <<<"$s" >/dev/null ||
		fail "status lists no XDP fallback: $(jq -c .instance.fallbacks <<<"$s")" || return
	traffic_ok
}

# A kxp restarted on a kernel that offers less (objects without bpf_loop, the
# plain clock, no FIB lookup flags: what 5.10 gets) adopts the pins and
# replaces its programs in place: an open connection and its ct entries
# carry on, new ones are served, and status says what is loaded now.
case_restart_other_features()
{
	local out=$KXE_TMP/keepalive.json pid s
	kxe_sync node1 --xdp-mode auto || fail "first sync exited $?" || return
	kxe_in "$NS_POD1A" "$KXE_PROBE" --tcp --dst "$WEB:80" --count 40 --keepalive \
		--interval-ms 100 --timeout-ms 1000 --max-seconds 20 >"$out" 2>&1 &
	pid=$!
	sleep 1
	KXP_PROBE_DENY=H_LOOP,H_COARSE_CLOCK,FIB_SKIP_NEIGH,FIB_SRC kxe_sync node1 --xdp-mode auto ||
		{ wait $pid; fail "sync with fewer features exited $?: $(head -c 300 "$KXE_TMP/sync-node1.out")"; return; }
	wait $pid
	KXE_LAST=$(cat "$out")
	expect_all_ok || return
	[ "$(pj .connections)" = 1 ] || fail "the connection broke across the restart: $(pj .connections) connections" || return
	s=$(status_json)
	[ "$(jq -r .instance.loaded.bpf_loop <<<"$s")" = false ] || fail "status: still bpf_loop objects: $(jq -c .instance.loaded <<<"$s")" || return
	jq -e '.instance.features | index("coarse-clock") | not' <<<"$s" >/dev/null ||
		fail "status: coarse-clock still given: $(jq -c .instance.features <<<"$s")" || return
	traffic_ok || return
	# and back: the full feature set adopts the same pins again
	kxe_sync node1 --xdp-mode auto || fail "sync back exited $?" || return
	[ "$(jq -r .instance.loaded.bpf_loop <<<"$(status_json)")" = true ] || fail "status: not back to bpf_loop objects" || return
	traffic_ok
}

kxe_setup
kxe_case status_kernel case_status_kernel
kxe_case restart_other_features case_restart_other_features
kxe_case xdp_off case_xdp_off
kxe_case xdp_auto case_xdp_auto
kxe_case xdp_refused_tc_serves case_xdp_refused_tc_serves
kxe_finish
