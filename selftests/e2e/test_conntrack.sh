#!/usr/bin/env bash
# e2e: kxp next to netfilter conntrack on the nodes. Real nodes run conntrack
# (CNI masquerade rules, firewalls), and kube-proxy itself drops what
# conntrack finds INVALID (KUBE-FORWARD). kxp translates a flow's requests at
# ingress, before conntrack, and its replies at TC egress, after conntrack, so
# conntrack sees one consistent flow client -> backend: with a rule dropping
# INVALID packets on both nodes, every kind of translated flow still works,
# the rule never matches, and netfilter never sees a reply that kxp
# translated (one from the frontend to the client).
source "$(dirname "$0")/lib.sh"
kxe_init conntrack 240

WEB=10.96.0.10

# A filter table in each node namespace (the test's own): INVALID dropped and
# counted on forward and input.
nf_setup()
{
	local ns
	for ns in "$NS_N1" "$NS_N2"; do
		nsenter --net="/run/netns/$ns" nft -f - <<'EOF' || return 1
table inet kxptest {
	chain forward_check {
		type filter hook forward priority 0; policy accept;
		ct state invalid counter drop
	}
	chain input_check {
		type filter hook input priority 0; policy accept;
		ct state invalid counter drop
	}
}
EOF
	done
}

# nf_invalid NS: packets the INVALID rules of NS dropped so far.
nf_invalid()
{
	nsenter --net="/run/netns/$1" nft -j list table inet kxptest |
		jq '[.nftables[] | .rule? // empty | .expr[] | .counter? // empty | .packets] | add // 0'
}

expect_no_invalid()
{
	local n1 n2
	n1=$(nf_invalid "$NS_N1")
	n2=$(nf_invalid "$NS_N2")
	[ "$n1" = 0 ] && [ "$n2" = 0 ] || fail "conntrack INVALID drops: node1 $n1, node2 $n2 (want 0)"
}

case_clusterip_tcp()
{
	local gc n
	kxe_probe "$NS_POD1A" --tcp --dst "$WEB:80" --count 40 --timeout-ms 1000 >/dev/null
	expect_all_ok || return
	expect_backends pod1b pod2a || return
	expect_no_invalid || return
	# the collector reads every entry and deletes none of these young flows
	n=$(bpftool -j map dump pinned "/sys/fs/bpf/kxp-$(kxe_inst node1)/kxp_ct4" | jq length)
	gc=$("$KXP" ct gc --instance "$(kxe_inst node1)" -o json) || fail "kxp ct gc failed: $gc" || return
	[ "$(jq -r '"\(.scanned) \(.deleted)"' <<<"$gc")" = "$n 0" ] ||
		fail "kxp ct gc: $gc, want $n scanned and none deleted"
}

case_clusterip_udp()
{
	kxe_probe "$NS_POD1A" --udp --dst "$WEB:53" --count 40 --timeout-ms 1000 >/dev/null
	expect_all_ok || return
	[ "$(pj '.reply_sources | keys | join(",")')" = "$WEB:53" ] ||
		fail "UDP replies came from $(pj .reply_sources | tr -d '\n'), want only $WEB:53" || return
	expect_no_invalid
}

case_conntrack_sees_one_flow()
{
	local ct
	kxe_probe "$NS_POD1A" --tcp --dst "$WEB:80" --count 10 --timeout-ms 1000 >/dev/null
	expect_all_ok || return
	ct=$(nsenter --net="/run/netns/$NS_N1" conntrack -L -p tcp 2>/dev/null)
	# the client's flows as conntrack tracks them: to a backend, answered by it
	grep -E "src=$POD1A_IP dst=($POD1B_IP|$POD2A_IP) .*dport=8080 .*\[ASSURED\]" <<<"$ct" >/dev/null ||
		fail "node1 conntrack has no assured flow $POD1A_IP -> a backend:8080: $(head -c 400 <<<"$ct")" || return
	# a reply kxp translated before conntrack would be tracked as its own flow
	! grep -E "src=$WEB " <<<"$ct" >/dev/null ||
		fail "node1 conntrack tracks a flow from the ClusterIP: $(grep -E "src=$WEB " <<<"$ct" | head -n 2)"
}

case_nodeport_local()
{
	kxe_probe "$NS_EXT" --tcp --dst "$NODE1_IP:30080" --count 20 --timeout-ms 1000 >/dev/null
	expect_all_ok || return
	expect_client_seen "$EXT_IP" || return
	expect_no_invalid
}

case_nodeport_masq()
{
	kxe_probe "$NS_EXT" --tcp --dst "$NODE1_IP:30090" --count 20 --timeout-ms 1000 >/dev/null
	expect_all_ok || return
	expect_no_invalid
}

kxe_setup || true
if [ -z "${KXE_SETUP_ERR:-}" ]; then
	command -v nft >/dev/null && command -v conntrack >/dev/null || KXE_SETUP_ERR="nft or conntrack is missing (make deps)"
fi
[ -n "${KXE_SETUP_ERR:-}" ] || nf_setup || KXE_SETUP_ERR="could not load the test's nftables table"
kxe_case clusterip_tcp case_clusterip_tcp
kxe_case clusterip_udp case_clusterip_udp
kxe_case conntrack_sees_one_flow case_conntrack_sees_one_flow
kxe_case nodeport_local case_nodeport_local
kxe_case nodeport_masq case_nodeport_masq
kxe_finish
