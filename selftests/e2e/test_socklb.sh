#!/usr/bin/env bash
# e2e: socket LB (cgroup connect4/sendmsg4/recvmsg4/getpeername4). Processes
# in node1's namespace, put into a child cgroup this test creates, reach
# ClusterIP, NodePort, LB IP and externalIP frontends over TCP, connected UDP
# and unconnected UDP; getpeername() and recvfrom() show the frontend; a
# service without endpoints gives ECONNREFUSED. --socket-lb=host leaves pod
# sockets to TC; all (the default) translates pod TCP too where kube-proxy
# would not masquerade it, and leaves the rest to TC (kube-proxy's result:
# masqueraded eTP=Cluster external frontends, UDP, ICMP rejects); off
# detaches. Nothing is attached
# outside the test's cgroup (bpftool cgroup tree), and cleanup detaches.
source "$(dirname "$0")/lib.sh"
kxe_init socklb 280

KXE_SOCKPROBE=$KXE_BUILD/kxp-sockprobe
CG=
CG_IDS=

# Services (all http 80/TCP -> 8080 and dns 53/UDP -> 5353):
#   sk   10.96.0.60, eTP=Cluster, NodePorts 30160/30161, externalIP
#        203.0.113.60, LB IP 203.0.113.61; endpoints pod1b (node1), pod2a (node2)
#   skl  10.96.0.62, eTP=Local, NodePorts 30162/30163, externalIP
#        203.0.113.62, LB IP 203.0.113.63; one endpoint, pod2a (node2): the node
#        must use the cluster-wide (INTERNAL) set
#   skh  10.96.0.64 -> node1's own address (a hostNetwork backend)
#   noep 10.96.0.42 (lib.sh): no endpoints
sock_services()
{
	local name cip etp np1 np2 ext lb eps
	for spec in "sk 10.96.0.60 Cluster 30160 30161 203.0.113.60 203.0.113.61 $POD1B_IP:node1,$POD2A_IP:node2" \
		"skl 10.96.0.62 Local 30162 30163 203.0.113.62 203.0.113.63 $POD2A_IP:node2"; do
		read -r name cip etp np1 np2 ext lb eps <<<"$spec"
		cat <<EOF
---
apiVersion: v1
kind: Service
metadata: {name: $name, namespace: test}
spec:
  type: LoadBalancer
  clusterIP: $cip
  clusterIPs: [$cip]
  externalTrafficPolicy: $etp
  externalIPs: [$ext]
  ports:
    - {name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: $np1}
    - {name: dns, protocol: UDP, port: 53, targetPort: 5353, nodePort: $np2}
status:
  loadBalancer:
    ingress:
      - ip: $lb
EOF
		# shellcheck disable=SC2046
		kxe_slice test "$name-1" "$name" $(tr ',' ' ' <<<"$eps")
	done
	kxe_service skh ClusterIP 10.96.0.64 Cluster
	kxe_slice test skh-1 skh "$NODE1_IP:node1"
}

# cg_run NS CMD...: CMD in the test cgroup first, then in NS's network namespace.
cg_run()
{
	local ns=$1
	shift
	bash -c 'echo $$ >"$1/cgroup.procs" && ns=$2 && shift 2 && exec nsenter --net="/run/netns/$ns" -- "$@"' \
		_ "$CG" "$ns" "$@"
}

# sp NS ARGS...: kxp-sockprobe from the test cgroup in NS; JSON in $KXE_LAST.
sp()
{
	local ns=$1
	shift
	KXE_LAST=$(cg_run "$ns" "$KXE_SOCKPROBE" --timeout-ms 700 --max-seconds 20 "$@" 2>&1)
}

# expect_frontend_view FE: every answer, and getpeername()/recvfrom() where the
# mode has them, reported FE.
expect_ok_view()
{
	local fe=$1 mode n
	mode=$(pj .mode)
	n=$(pj .count)
	[ "$(pj .ok)" = "$n" ] || fail "$mode $fe: $(pj .ok)/$n answered: $KXE_LAST" || return
	if [ "$mode" != udp-unconnected ]; then
		[ "$(pj '.getpeername | keys | join(",")')" = "$fe" ] ||
			fail "$mode $fe: getpeername() gave $(pj '.getpeername|tostring')" || return
	fi
	if [ "$mode" != tcp ]; then
		[ "$(pj '.recvfrom | keys | join(",")')" = "$fe" ] ||
			fail "$mode $fe: recvfrom() gave $(pj '.recvfrom|tostring')" || return
	fi
	return 0
}

expect_sp_backends()
{
	local want got
	want=$(tr ' ' '\n' <<<"$*" | sort | xargs)
	got=$(pj '.backends | keys | .[]' | sort | xargs)
	[ "$got" = "$want" ] || fail "$(pj .mode) $(pj .dst): backends [$got], want [$want]"
}

# Backends saw a node1 address (the socket's own source), never a pod's.
expect_node_client()
{
	local addrs bad
	addrs=$(kxe_node_addrs "$NS_N1" | jq -R . | jq -sc .)
	bad=$(jq -r --argjson a "$addrs" '.clients | keys[] | select(. as $c | $a | index($c) | not)' <<<"$KXE_LAST")
	[ -z "$bad" ] || fail "$(pj .dst): backends saw $bad, want a node1 address ($addrs)"
}

# three_modes FE TCP_PORT UDP_PORT WANT_BACKENDS...: TCP, connected and
# unconnected UDP from node1 to FE.
three_modes()
{
	local ip=$1 tp=$2 up=$3
	shift 3
	sp "$NS_N1" --tcp --dst "$ip:$tp" --count 16
	expect_ok_view "$ip:$tp" && expect_sp_backends "$@" && expect_node_client || return
	sp "$NS_N1" --udp-connected --dst "$ip:$up" --count 16
	expect_ok_view "$ip:$up" && expect_sp_backends "$@" && expect_node_client || return
	sp "$NS_N1" --udp-unconnected --dst "$ip:$up" --count 16
	expect_ok_view "$ip:$up" && expect_sp_backends "$@" && expect_node_client
}

case_node_clusterip() { three_modes 10.96.0.60 80 53 pod1b pod2a; }
case_node_nodeport() { three_modes "$NODE1_IP" 30160 30161 pod1b pod2a; }
case_node_lbip() { three_modes 203.0.113.61 80 53 pod1b pod2a; }
case_node_externalip() { three_modes 203.0.113.60 80 53 pod1b pod2a; }
# eTP=Local with its only endpoint on node2: node sources use the cluster-wide set (J).
case_node_etp_local() { three_modes 203.0.113.63 80 53 pod2a && three_modes "$NODE1_IP" 30162 30163 pod2a; }

case_node_hostnet_backend()
{
	sp "$NS_N1" --tcp --dst 10.96.0.64:80 --count 4
	expect_ok_view 10.96.0.64:80 && expect_sp_backends node1 || return
	# the TC path's hostNetwork case is unchanged: pod1a (not in host scope)
	kxe_probe "$NS_POD1A" --tcp --dst 10.96.0.64:80 --count 4 >/dev/null
	expect_all_ok && expect_backends node1
}

case_unconnected_sticks()
{
	# one unconnected socket keeps one backend for a frontend while it sends
	sp "$NS_N1" --udp-unconnected --one-socket --dst 10.96.0.60:53 --count 12
	expect_ok_view 10.96.0.60:53 || return
	[ "$(pj '.backends | length')" = 1 ] || fail "one socket reached $(pj '.backends|tostring')"
}

case_no_endpoints_refused()
{
	local m
	needs_cap "helper set_retval (sock_addr)" || return
	for m in --tcp --udp-connected --udp-unconnected; do
		sp "$NS_N1" "$m" --dst 10.96.0.42:$([ "$m" = --tcp ] && echo 80 || echo 53) --count 3
		[ "$(pj .errors.ECONNREFUSED)" = 3 ] || fail "$m to 10.96.0.42: want 3 ECONNREFUSED, got $KXE_LAST" || return
	done
}

case_counters()
{
	local before after pk0 pk1
	before=$(kxe_reason node1 sock_xlate)
	pk0=$(kxe_fe_counter node1 10.96.0.60:80/tcp packets)
	sp "$NS_N1" --tcp --dst 10.96.0.60:80 --count 5
	expect_ok_view 10.96.0.60:80 || return
	after=$(kxe_reason node1 sock_xlate)
	pk1=$(kxe_fe_counter node1 10.96.0.60:80/tcp packets)
	[ "$after" -ge $((before + 5)) ] || fail "sock_xlate $before -> $after, want +5" || return
	[ "$pk1" -ge $((pk0 + 5)) ] || fail "10.96.0.60:80/tcp packets $pk0 -> $pk1, want +5" || return
	[ "$(kxe_reason node1 sock_revnat)" -gt 0 ] || fail "sock_revnat is 0"
}

# has_cap NAME: the running kernel has this probed capability (kxp status).
has_cap()
{
	"$KXP" status -o json 2>/dev/null |
		jq -e --arg n "$1" '.capabilities[] | select(.name == $n) | .available' >/dev/null
}

# needs_cap NAME: return 77 (skipped) without it.
needs_cap()
{
	has_cap "$1" && return 0
	KXE_WHY="kernel $(uname -r) lacks $1"
	return 77
}

case_host_scope_pods_via_tc()
{
	local before after
	needs_cap "sockopt SO_NETNS_COOKIE" || return
	# pod1a's process is in the cgroup too, but not in node1's namespace
	before=$(kxe_reason node1 sock_xlate)
	sp "$NS_POD1A" --tcp --dst 10.96.0.60:80 --count 6
	expect_ok_view 10.96.0.60:80 || return
	after=$(kxe_reason node1 sock_xlate)
	[ "$after" = "$before" ] || fail "host mode translated pod sockets: sock_xlate $before -> $after" || return
	# TC did it: conntrack holds pod1a's flows to the ClusterIP
	kxe_ct_json node1 | jq -e --arg c "$POD1A_IP" '[.[] | select(.original.src | startswith($c))] | length > 0' \
		>/dev/null || fail "no TC conntrack entry for pod1a"
}

# The default (all): pod TCP sockets are translated at connect() where
# kube-proxy would not masquerade them; the rest is left to TC, which gives
# kube-proxy's result from the packet.
case_mode_all_pods()
{
	local before after
	needs_cap "sockopt SO_NETNS_COOKIE" || return
	kxe_sync node1 --cgroup-root "$CG" ||
		{ fail "sync (default --socket-lb): $(head -c 300 "$KXE_TMP/sync-node1.out")"; return; }
	grep -q "socket LB all" "$KXE_TMP/sync-node1.out" ||
		fail "default socket LB mode is not all: $(grep 'socket LB' "$KXE_TMP/sync-node1.out")" || return
	before=$(kxe_reason node1 sock_xlate)
	sp "$NS_POD1A" --tcp --dst 10.96.0.60:80 --count 8
	expect_ok_view 10.96.0.60:80 && expect_sp_backends pod1b pod2a || return
	[ "$(pj '.clients | keys | join(",")')" = "$POD1A_IP" ] || fail "backends saw $(pj '.clients|tostring')" || return
	# eTP=Local external frontend: the cluster-wide set, client kept
	sp "$NS_POD1A" --tcp --dst 203.0.113.63:80 --count 4
	expect_ok_view 203.0.113.63:80 && expect_sp_backends pod2a || return
	[ "$(pj '.clients | keys | join(",")')" = "$POD1A_IP" ] || fail "backends saw $(pj '.clients|tostring')" || return
	after=$(kxe_reason node1 sock_xlate)
	[ "$after" -ge $((before + 12)) ] || fail "sock_xlate $before -> $after, want +12" || return

	# left to TC: eTP=Cluster external frontends (masqueraded: the backend
	# sees node1), UDP, and a Service without endpoints (ICMP reject)
	before=$after
	sp "$NS_POD1A" --tcp --dst 203.0.113.61:80 --count 6
	expect_ok_view 203.0.113.61:80 && expect_sp_backends pod1b pod2a && expect_node_client || return
	sp "$NS_POD1A" --udp-connected --dst 10.96.0.60:53 --count 6
	expect_ok_view 10.96.0.60:53 || return
	sp "$NS_POD1A" --udp-unconnected --dst "$NODE1_IP:30161" --count 6
	expect_ok_view "$NODE1_IP:30161" || return
	# (kxp-probe: its connect() reports the ICMP error, as kube-proxy's reject gives it)
	KXE_LAST=$(cg_run "$NS_POD1A" "$KXE_PROBE" --timeout-ms 500 --max-failures 5 --max-seconds 30 \
		--tcp --dst 10.96.0.42:80 --count 3 2>&1)
	[ "$(pj .failures.refused)" = 3 ] || fail "pod to 10.96.0.42:80: want 3 refused (ICMP), got $KXE_LAST" || return
	after=$(kxe_reason node1 sock_xlate)
	[ "$after" = "$before" ] || fail "the socket path took what TC must decide: sock_xlate $before -> $after"
}

# A kernel that cannot name the node's namespace to userspace (before 5.14,
# SO_NETNS_COOKIE; denied here through the probe): every socket in the cgroup
# is taken for the node's, so node1 still reaches frontends over TCP and UDP
# and pods' sockets are translated as the node's are.
case_without_netns_cookie()
{
	local before after
	KXP_PROBE_DENY=SO_NETNS_COOKIE kxe_sync node1 --cgroup-root "$CG" --socket-lb host ||
		{ fail "sync without SO_NETNS_COOKIE: $(head -c 300 "$KXE_TMP/sync-node1.out")"; return; }
	sp "$NS_N1" --tcp --dst 10.96.0.60:80 --count 4
	expect_ok_view 10.96.0.60:80 && expect_node_client || return
	sp "$NS_N1" --udp-connected --dst 10.96.0.60:53 --count 4
	expect_ok_view 10.96.0.60:53 && expect_node_client || return
	before=$(kxe_reason node1 sock_xlate)
	sp "$NS_POD1A" --tcp --dst 10.96.0.60:80 --count 4
	expect_ok_view 10.96.0.60:80 || return
	after=$(kxe_reason node1 sock_xlate)
	[ "$after" -ge $((before + 4)) ] || fail "pod sockets not translated as the node's: sock_xlate $before -> $after" ||
		return
	kxe_sync node1 --cgroup-root "$CG" --socket-lb host || fail "sync back to host mode"
}

case_mode_off_detaches()
{
	kxe_sync node1 --cgroup-root "$CG" --socket-lb off ||
		{ fail "sync --socket-lb off: $(head -c 300 "$KXE_TMP/sync-node1.out")"; return; }
	[ -z "$(bpftool cgroup show "$CG" 2>/dev/null | grep kxp_)" ] ||
		fail "off left programs: $(bpftool cgroup show "$CG")" || return
	# without the hooks, nothing on node1 translates its own connections
	sp "$NS_N1" --tcp --dst 10.96.0.60:80 --count 2
	[ "$(pj .ok)" = 0 ] || fail "node1 reached 10.96.0.60:80 with socket LB off: $KXE_LAST" || return
	kxe_sync node1 --cgroup-root "$CG" --socket-lb host || fail "sync back to host mode"
}

# Ids of kxp programs on our cgroup (sorted), from bpftool.
our_ids() { bpftool -j cgroup show "$CG" 2>/dev/null | jq -r '.[] | select(.name | startswith("kxp_")) | .id' | sort -n | xargs; }

# The hooks translate node1's connections (whatever bpftool can list).
hooks_work()
{
	local before
	before=$(kxe_reason node1 sock_xlate)
	sp "$NS_N1" --tcp --dst 10.96.0.60:80 --count 1
	[ "$(pj .ok)" = 1 ] && [ "$(kxe_reason node1 sock_xlate)" -gt "$before" ]
}

case_only_our_cgroup()
{
	local ids elsewhere root
	ids=$(our_ids)
	if [ -z "$ids" ] && hooks_work; then
		# seen with bpftool 7.1 on 5.10: it lists no cgroup program at all
		KXE_WHY="bpftool $(bpftool version 2>/dev/null | awk 'NR==1{print $2}') lists no program on $CG under kernel $(uname -r), though the hooks translate"
		return 77
	fi
	[ "$(wc -w <<<"$ids")" = 4 ] || fail "want 4 kxp programs on $CG, got [$ids]: $(bpftool cgroup show "$CG")" || return
	CG_IDS=$ids
	# every attachment of these programs is on our cgroup, none elsewhere
	elsewhere=$(bpftool -j cgroup tree "$CG_ROOT" 2>/dev/null | jq -r --arg cg "$CG" --arg ids "$ids" '
		($ids | split(" ") | map(tonumber)) as $ours |
		.[] | select(.cgroup != $cg) | .programs[]? | select(.id as $i | $ours | index($i)) | .id' | xargs)
	[ -z "$elsewhere" ] || fail "programs $elsewhere attached outside $CG" || return
	root=$(bpftool -j cgroup show "$CG_ROOT" 2>/dev/null | jq -r '.[] | select(.name | startswith("kxp_")) | .name' | xargs)
	[ -z "$root" ] || fail "kxp programs on the cgroup root: $root"
}

case_cleanup_detaches()
{
	"$KXP" --netns "$NS_N1" cleanup --instance "$INST1" >/dev/null 2>&1 || fail "kxp cleanup failed" || return
	[ -z "$(our_ids)" ] || fail "cleanup left $(bpftool cgroup show "$CG")" || return
	[ -z "$(bpftool -j cgroup tree "$CG_ROOT" 2>/dev/null | jq -r --arg ids "$CG_IDS" '
		($ids | split(" ") | map(tonumber)) as $ours | .[] | .programs[]? | select(.id as $i | $ours | index($i)) | .id')" ] ||
		fail "our programs still attached somewhere after cleanup"
}

sock_cleanup()
{
	local rc=$? pid
	if [ -n "$CG" ] && [ -d "$CG" ]; then
		[ -x "$KXP" ] && timeout 20 "$KXP" --netns "$NS_N1" cleanup --instance "$INST1" >/dev/null 2>&1
		# only processes this test put there
		for pid in $(cat "$CG/cgroup.procs" 2>/dev/null); do kill "$pid" 2>/dev/null; done
		sleep 0.2
		rmdir "$CG" 2>/dev/null || echo "# could not remove $CG" >&2
	fi
	(exit $rc)
	kxe_cleanup
}
trap sock_cleanup EXIT

sock_setup()
{
	[ -x "$KXE_SOCKPROBE" ] || { KXE_SETUP_ERR="$KXE_SOCKPROBE is not built (make -j2 all)"; return 1; }
	CG_ROOT=/sys/fs/cgroup/unified
	[ "$(stat -f -c %T "$CG_ROOT" 2>/dev/null)" = cgroup2fs ] || CG_ROOT=/sys/fs/cgroup
	[ "$(stat -f -c %T "$CG_ROOT" 2>/dev/null)" = cgroup2fs ] || { KXE_SETUP_ERR="no cgroup v2 mount"; return 1; }
	CG=$CG_ROOT/kxp-test-$KXE_ID
	mkdir "$CG" || { KXE_SETUP_ERR="cannot create $CG"; return 1; }
	kxe_setup nosync || return 1
	KXE_ECHO_PORTS="--tcp 8080 --udp 5353" kxe_echo "$NS_N1" node1 || { KXE_SETUP_ERR="echo on node1"; return 1; }
	sock_services >"$KXE_MANIFESTS/zz-sock.yaml"
	kxe_sync node2 || { KXE_SETUP_ERR="sync node2: $(head -c 300 "$KXE_TMP/sync-node2.out")"; return 1; }
	kxe_sync node1 --cgroup-root "$CG" --socket-lb host ||
		{ KXE_SETUP_ERR="sync node1: $(head -c 300 "$KXE_TMP/sync-node1.out")"; return 1; }
}

sock_setup
kxe_case only_our_cgroup case_only_our_cgroup
kxe_case node_clusterip case_node_clusterip
kxe_case node_nodeport case_node_nodeport
kxe_case node_lbip case_node_lbip
kxe_case node_externalip case_node_externalip
kxe_case node_etp_local case_node_etp_local
kxe_case node_hostnet_backend case_node_hostnet_backend
kxe_case unconnected_sticks case_unconnected_sticks
kxe_case no_endpoints_refused case_no_endpoints_refused
kxe_case counters case_counters
kxe_case host_scope_pods_via_tc case_host_scope_pods_via_tc
kxe_case mode_all_pods case_mode_all_pods
kxe_case without_netns_cookie case_without_netns_cookie
kxe_case mode_off_detaches case_mode_off_detaches
kxe_case only_our_cgroup_again case_only_our_cgroup
kxe_case cleanup_detaches case_cleanup_detaches
kxe_finish
