#!/usr/bin/env bash
# e2e: every pinned map is BTF-typed (bpftool shows named fields), kxp attaches
# XDP and TC where told, and `kxp cleanup` detaches, unpins and is idempotent.
source "$(dirname "$0")/lib.sh"
kxe_init maps_cleanup 200

MAPS="kxp_svc4 kxp_slot kxp_backend4 kxp_revnat4 kxp_ct4 kxp_nodeip4 kxp_lbsr4 kxp_config kxp_stats kxp_reasons"

case_btf_every_map()
{
	local dir=/sys/fs/bpf/kxp-$INST1 m show dump bad=
	# Traffic first, so that kxp_ct4/kxp_stats/kxp_reasons have entries to show.
	kxe_probe "$NS_POD1A" --tcp --dst 10.96.0.10:80 --count 5 >/dev/null
	expect_all_ok || return
	for m in $MAPS; do
		[ -e "$dir/$m" ] || { bad="$bad $m(not pinned)"; continue; }
		show=$(bpftool -j map show pinned "$dir/$m")
		jq -e '.btf_id > 0' <<<"$show" >/dev/null || { bad="$bad $m(no btf_id)"; continue; }
		dump=$(bpftool -j map dump pinned "$dir/$m")
		# Every entry bpftool prints must be decoded into named fields.
		jq -e 'all(.[]; has("formatted"))' <<<"$dump" >/dev/null || bad="$bad $m(entries without BTF formatting)"
	done
	[ -z "$bad" ] || fail "maps:$bad" || return
	# And the named fields are the ABI's: spot-check one key and value field per map kind.
	bpftool -j map dump pinned "$dir/kxp_svc4" | jq -e '.[0].formatted | .key.addr != null and .value.fe_id != null' >/dev/null ||
		fail "kxp_svc4 entries lack named fields key.addr/value.fe_id" || return
	bpftool -j map dump pinned "$dir/kxp_ct4" | jq -e 'length > 0 and (.[0].formatted | .key.saddr != null and .value.nat != null)' >/dev/null ||
		fail "kxp_ct4 has no entry with named fields key.saddr/value.nat"
}

attached_report()
{
	local dev
	for dev in eth0 veth1a veth1b; do
		ip -n "$NS_N1" -d link show "$dev" | grep -o 'prog/xdp[^ ]* id [0-9]*' | sed "s/^/$dev: /"
		# Only kxp's filters (by program name): others on the device are not ours.
		tc -n "$NS_N1" filter show dev "$dev" ingress | grep -o 'bpf.*kxp.*' | sed "s/^/$dev ingress: /"
		tc -n "$NS_N1" filter show dev "$dev" egress | grep -o 'bpf.*kxp.*' | sed "s/^/$dev egress: /"
	done
}

case_attached()
{
	local r dev
	r=$(attached_report)
	grep -q '^eth0: prog/xdp' <<<"$r" || fail "no XDP on node1 eth0: $r" || return
	for dev in eth0 veth1a veth1b; do
		grep -q "^$dev ingress: " <<<"$r" && grep -q "^$dev egress: " <<<"$r" ||
			fail "TC ingress+egress missing on $dev: $(tr '\n' ';' <<<"$r")" || return
	done
	! grep -q '^veth1a: prog/xdp' <<<"$r" || fail "XDP on a pod device: $r"
}

case_cleanup()
{
	local out r
	out=$("$KXP" --netns "$NS_N1" cleanup --instance "$INST1" 2>&1) || fail "kxp cleanup exited $?: $out" || return
	[ ! -e "/sys/fs/bpf/kxp-$INST1" ] || fail "pins remain: $(ls "/sys/fs/bpf/kxp-$INST1" | xargs)" || return
	r=$(attached_report)
	[ -z "$r" ] || fail "still attached after cleanup: $(tr '\n' ';' <<<"$r")" || return
	# Nothing translates any more: the ClusterIP is unroutable from pod1a.
	kxe_probe "$NS_POD1A" --tcp --dst 10.96.0.10:80 --count 2 --timeout-ms 500 >/dev/null
	expect_none_answered || return
	# node2 is untouched by node1's cleanup.
	[ -e "/sys/fs/bpf/kxp-$INST2/kxp_svc4" ] || fail "node2's pins went with node1's cleanup"
}

case_cleanup_idempotent()
{
	local out
	out=$("$KXP" --netns "$NS_N1" cleanup --instance "$INST1" 2>&1) || fail "second cleanup exited $?: $out" || return
	out=$("$KXP" --netns "$NS_N1" cleanup --instance "$KXE_ID-never" 2>&1) || fail "cleanup of an unknown instance exited $?: $out"
}

case_sync_after_cleanup()
{
	kxe_sync node1 || fail "sync after cleanup exited $?: $(head -c 300 "$KXE_TMP/sync-node1.out")" || return
	kxe_probe "$NS_POD1A" --tcp --dst 10.96.0.10:80 --count 20 >/dev/null
	expect_all_ok || return
	expect_backends pod1b pod2a
}

kxe_setup
kxe_case btf_every_map case_btf_every_map
kxe_case attached case_attached
kxe_case cleanup case_cleanup
kxe_case cleanup_idempotent case_cleanup_idempotent
kxe_case sync_after_cleanup case_sync_after_cleanup
kxe_finish
