#!/usr/bin/env bash
# e2e: `kxp cleanup --kube-proxy` in a namespace holding rules laid out as
# kube-proxy lays them (iptables mode in iptables-legacy and iptables-nft,
# IPVS mode's ipset matches, ip6tables, nftables mode's tables, ipsets) next
# to unrelated rules and kubelet's own chains. --dry-run first changes
# nothing; then exactly kube-proxy's objects go: every dump of the namespace
# equals the dump of a twin namespace loaded with the unrelated rules only.
source "$(dirname "$0")/lib.sh"
kxe_init kube_proxy_cleanup 120

NS_A=$KXE_ID-kpa  # kube-proxy's leftovers + unrelated rules
NS_B=$KXE_ID-kpb  # the unrelated rules only: what NS_A must become

a() { kxe_in "$NS_A" "$@"; }
b() { kxe_in "$NS_B" "$@"; }

# kube-proxy's iptables mode (nat, filter, mangle), the IPVS mode's ipset
# match, kubelet's chains (canary, hint, localnet firewall) and unrelated rules,
# one of whose comments mentions a KUBE- target.
v4_full()
{
	cat <<'R'
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-KUBELET-CANARY - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-PROXY-CANARY - [0:0]
:KUBE-SEP-IT2ZTR26TO4XFPTO - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-NPX46M4PTMTKRN6Y - [0:0]
:KUBE-EXT-NPX46M4PTMTKRN6Y - [0:0]
:UNRELATED-NAT - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A PREROUTING -m comment --comment "not kube-proxy: -j KUBE-SERVICES" -j UNRELATED-NAT
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A POSTROUTING -s 10.244.0.0/16 ! -d 10.244.0.0/16 -j MASQUERADE
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-NODEPORTS -p tcp -m comment --comment "default/web" -m tcp --dport 30080 -j KUBE-EXT-NPX46M4PTMTKRN6Y
-A KUBE-EXT-NPX46M4PTMTKRN6Y -j KUBE-MARK-MASQ
-A KUBE-EXT-NPX46M4PTMTKRN6Y -j KUBE-SVC-NPX46M4PTMTKRN6Y
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
-A KUBE-SEP-IT2ZTR26TO4XFPTO -s 10.244.1.10/32 -m comment --comment "default/web" -j KUBE-MARK-MASQ
-A KUBE-SEP-IT2ZTR26TO4XFPTO -p tcp -m comment --comment "default/web" -m tcp -j DNAT --to-destination 10.244.1.10:8080
-A KUBE-SERVICES -d 10.96.0.43/32 -p tcp -m comment --comment "default/web cluster IP" -m tcp --dport 80 -j KUBE-SVC-NPX46M4PTMTKRN6Y
-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-SVC-NPX46M4PTMTKRN6Y ! -s 10.244.0.0/16 -d 10.96.0.43/32 -p tcp -m comment --comment "default/web cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SVC-NPX46M4PTMTKRN6Y -m comment --comment "default/web -> 10.244.1.10:8080" -j KUBE-SEP-IT2ZTR26TO4XFPTO
-A UNRELATED-NAT -p udp -m udp --dport 9999 -j RETURN
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-KUBELET-CANARY - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-PROXY-CANARY - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
:UNRELATED-FILTER - [0:0]
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A INPUT -j KUBE-FIREWALL
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A FORWARD -j UNRELATED-FILTER
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -j KUBE-FIREWALL
-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-SERVICES -d 10.96.0.42/32 -p tcp -m comment --comment "default/noep has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable
-A UNRELATED-FILTER -s 192.0.2.0/24 -j ACCEPT
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-IPTABLES-HINT - [0:0]
:KUBE-KUBELET-CANARY - [0:0]
:KUBE-PROXY-CANARY - [0:0]
-A PREROUTING -p tcp -m tcp --dport 5000 -j MARK --set-xmark 0x1/0xffffffff
COMMIT
R
}

# What must stay of it: written out, not derived, so the test does not share
# the implementation's idea of what is kube-proxy's.
v4_kept()
{
	cat <<'R'
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-KUBELET-CANARY - [0:0]
:UNRELATED-NAT - [0:0]
-A PREROUTING -m comment --comment "not kube-proxy: -j KUBE-SERVICES" -j UNRELATED-NAT
-A POSTROUTING -s 10.244.0.0/16 ! -d 10.244.0.0/16 -j MASQUERADE
-A UNRELATED-NAT -p udp -m udp --dport 9999 -j RETURN
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-KUBELET-CANARY - [0:0]
:UNRELATED-FILTER - [0:0]
-A INPUT -j KUBE-FIREWALL
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A FORWARD -j UNRELATED-FILTER
-A OUTPUT -j KUBE-FIREWALL
-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A UNRELATED-FILTER -s 192.0.2.0/24 -j ACCEPT
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-IPTABLES-HINT - [0:0]
:KUBE-KUBELET-CANARY - [0:0]
-A PREROUTING -p tcp -m tcp --dport 5000 -j MARK --set-xmark 0x1/0xffffffff
COMMIT
R
}

v6_full()
{
	cat <<'R'
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-AAAAAAAAAAAAAAAA - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A PREROUTING -p tcp -m tcp --dport 8443 -j RETURN
-A KUBE-SERVICES -d fd00:96::10/128 -p tcp -m tcp --dport 53 -j KUBE-SVC-AAAAAAAAAAAAAAAA
-A KUBE-SVC-AAAAAAAAAAAAAAAA -p tcp -j DNAT --to-destination [fd00:244::5]:53
COMMIT
R
}

v6_kept()
{
	cat <<'R'
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p tcp -m tcp --dport 8443 -j RETURN
COMMIT
R
}

# kube-proxy's nftables mode (ip and ip6 tables "kube-proxy") and a table of
# someone else's, which even has a chain named like one of kube-proxy's.
nft_full()
{
	cat <<'R'
table ip kube-proxy {
	set cluster-ips { type ipv4_addr; elements = { 10.96.0.43 } }
	chain services {
		ip daddr 10.96.0.43 tcp dport 80 counter
	}
	chain nat-prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		jump services
	}
}
table ip6 kube-proxy {
	chain services { }
}
table inet mine {
	chain KUBE-SERVICES { }
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport 2222 accept
	}
}
R
}

nft_kept()
{
	cat <<'R'
table inet mine {
	chain KUBE-SERVICES { }
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport 2222 accept
	}
}
R
}

# load NS FULL|KEPT
load()
{
	local ns=$1 which=$2
	if [ "$which" = full ]; then
		# IPVS mode's sets; the nat rules above reference KUBE-CLUSTER-IP
		kxe_in "$ns" ipset create KUBE-CLUSTER-IP hash:ip,port || return 1
		kxe_in "$ns" ipset add KUBE-CLUSTER-IP 10.96.0.43,tcp:80 || return 1
		kxe_in "$ns" ipset create KUBE-LOOP-BACK hash:ip,port,ip || return 1
	fi
	kxe_in "$ns" ipset create mine-allow hash:net || return 1
	kxe_in "$ns" ipset add mine-allow 192.0.2.0/24 || return 1
	"v4_$which" | kxe_in "$ns" iptables-legacy-restore || return 1
	"v4_$which" | kxe_in "$ns" iptables-nft-restore || return 1
	"v6_$which" | kxe_in "$ns" ip6tables-legacy-restore || return 1
	"v6_$which" | kxe_in "$ns" ip6tables-nft-restore || return 1
	"nft_$which" | kxe_in "$ns" nft -f - || return 1
	# a device named like IPVS mode's, but not a dummy: not kube-proxy's
	# (this kernel has no dummy driver to make the real one)
	ip -n "$ns" link add kube-ipvs0 type bridge || return 1
}

# Everything the namespace holds, comments and counters stripped.
dump()
{
	local ns=$1 t
	for t in iptables-legacy iptables-nft ip6tables-legacy ip6tables-nft; do
		echo "== $t"
		kxe_in "$ns" "$t-save" | grep -v '^#' | sed 's/ \[[0-9]*:[0-9]*\]$//'
	done
	echo "== nft"
	kxe_in "$ns" nft list ruleset
	echo "== ipset"
	kxe_in "$ns" ipset list -n | sort
	echo "== links"
	ip -n "$ns" -o link show | awk '{print $2}' | sort
}

setup()
{
	local t
	[ "$(id -u)" = 0 ] || { KXE_SETUP_ERR="needs root"; return 1; }
	[ -x "$KXP" ] || { KXE_SETUP_ERR="$KXP is not built"; return 1; }
	for t in iptables-legacy-restore iptables-nft-restore ip6tables-legacy-restore ip6tables-nft-restore nft ipset jq; do
		command -v "$t" >/dev/null || { KXE_SETUP_ERR="$t is missing (apt-get install iptables nftables ipset)"; return 1; }
	done
	kxe_ns_add "$NS_A" && kxe_ns_add "$NS_B" || { KXE_SETUP_ERR="cannot create namespaces"; return 1; }
	load "$NS_A" full || { KXE_SETUP_ERR="loading kube-proxy's rules failed"; return 1; }
	load "$NS_B" kept || { KXE_SETUP_ERR="loading the unrelated rules failed"; return 1; }
	dump "$NS_A" >"$KXE_TMP/a0" 2>/dev/null && dump "$NS_B" >"$KXE_TMP/b" 2>/dev/null
	# the fixture is not vacuous: NS_A holds more than NS_B
	cmp -s "$KXE_TMP/a0" "$KXE_TMP/b" && { KXE_SETUP_ERR="fixture: both namespaces hold the same"; return 1; }
	return 0
}

case_dry_run()
{
	local out
	out=$("$KXP" --netns "$NS_A" -o json cleanup --kube-proxy --dry-run) || fail "dry run failed: $out" || return
	dump "$NS_A" >"$KXE_TMP/a1" 2>/dev/null
	diff -u "$KXE_TMP/a0" "$KXE_TMP/a1" >"$KXE_TMP/d1" || fail "dry run changed the namespace: $(head -c 800 "$KXE_TMP/d1")" || return
	# 4 backends x (jump rules + chains) + 2 nft tables + 2 ipsets
	[ -n "$out" ] && jq -e '.dry_run == true and (.failed | length) == 0 and
		([.would_remove[] | select(.backend == "iptables-legacy" and .kind == "chain")] | length) == 15 and
		([.would_remove[] | select(.backend == "iptables-nft" and .kind == "chain")] | length) == 15 and
		([.would_remove[] | select(.backend == "iptables-legacy" and .kind == "rule")] | length) == 10 and
		([.would_remove[] | select(.backend == "ip6tables-nft" and .kind == "chain")] | length) == 2 and
		([.would_remove[] | select(.kind == "table")] | map(.table + " " + .name) | sort) == ["ip kube-proxy", "ip6 kube-proxy"] and
		([.would_remove[] | select(.kind == "ipset")] | map(.name) | sort) == ["KUBE-CLUSTER-IP", "KUBE-LOOP-BACK"] and
		any(.notes[]; test("kube-ipvs0 is not a dummy")) and
		([.would_remove[] | select(.kind == "chain") | .name] | index("KUBE-KUBELET-CANARY") == null)' <<<"$out" >/dev/null ||
		fail "dry-run report: $(jq -c '{n: (.would_remove|length), failed, notes, chains: [.would_remove[] | select(.backend == "iptables-legacy") | .name]}' <<<"$out" | head -c 1500)"
}

case_cleanup()
{
	local out
	out=$("$KXP" --netns "$NS_A" cleanup --kube-proxy 2>&1) || fail "cleanup failed: $out" || return
	grep -q '^removed iptables-nft nat chain KUBE-SERVICES$' <<<"$out" &&
		grep -q '^removed nft ip kube-proxy$\|^removed nft ip table kube-proxy$' <<<"$out" ||
		fail "report does not name what it removed: $(head -c 600 <<<"$out")" || return
	dump "$NS_A" >"$KXE_TMP/a2" 2>/dev/null
	diff -u "$KXE_TMP/b" "$KXE_TMP/a2" >"$KXE_TMP/d2" ||
		fail "after cleanup the namespace differs from the unrelated rules alone: $(head -c 1500 "$KXE_TMP/d2")"
}

case_idempotent()
{
	local out
	out=$("$KXP" --netns "$NS_A" -o json cleanup --kube-proxy) || fail "second run failed: $out" || return
	[ -n "$out" ] && jq -e '(.removed | length) == 0 and (.failed | length) == 0' <<<"$out" >/dev/null ||
		fail "second run found more: $(head -c 600 <<<"$out")" || return
	dump "$NS_A" >"$KXE_TMP/a3" 2>/dev/null
	cmp -s "$KXE_TMP/b" "$KXE_TMP/a3" || fail "second run changed the namespace"
}

setup
kxe_case dry_run case_dry_run
kxe_case cleanup case_cleanup
kxe_case idempotent case_idempotent
kxe_finish
