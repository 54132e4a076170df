#!/usr/bin/env bash
# e2e: upgrades and the pinned layout. Pins of the same layout version (left
# by `kxp sync`, then by a stopped agent: an older release and a rolling
# update) are adopted with their ids and flows: a long-lived connection and
# new ones keep working across both hand-overs. Pins of an older layout
# version are migrated: every map but the flow state is recreated, the old
# programs serve until the new maps are written, and a long-lived connection
# survives. Pins of a newer version are refused as README documents
# ("pinned maps have layout version N ... run kxp cleanup --instance
# first"): the agent exits 1, touches nothing (traffic still flows through
# what is attached), and after `kxp cleanup --instance` a new agent programs
# from scratch. The claim map of releases before the SNAT claims moved into
# kxp_ct4 is unpinned.
source "$(dirname "$0")/lib.sh"
kxe_init upgrade 200

FAKE=$KXE_BUILD/kxp-fake-apiserver
CUR=4 # KXP_LAYOUT_VERSION
API= CTRL= AGENT_PID=

upgrade_cleanup()
{
	local rc=$?
	[ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null
	(exit $rc)
	kxe_cleanup
}
trap upgrade_cleanup EXIT

n1() { kxe_in "$NS_N1" "$@"; }
svc() { kxe_svc_json node1; }
fe_ids() { svc | jq -c '[.[] | {frontend, scope, fe_id, sp_id}] | sort_by(.frontend, .scope)'; }
wait_for()
{
	local cond=$1 t=${2:-15} i
	for i in $(seq $((t * 10))); do
		[ "$(svc | jq -r "$cond" 2>/dev/null)" = true ] && return 0
		sleep 0.1
	done
	return 1
}

start_api()
{
	kxe_fake_api "$NS_N1" 127.0.0.1:0 --bookmark-interval 2 --max-seconds 140 --load "$KXE_TMP/objects.json"
}

start_agent()
{
	"$KXP" --netns "$NS_N1" agent --instance "$INST1" --master "http://$API" --node-name node1 \
		--node-ip "$NODE1_IP" --cluster-cidr "$CLUSTER_CIDR" --service-cidr "$SERVICE_CIDR" \
		--external-dev eth0 --pod-dev veth1a --pod-dev veth1b --xdp-mode "$KXE_XDP_MODE" --backoff-min 100ms \
		--healthz-bind-address '' --metrics-bind-address '' >>"$KXE_TMP/agent.log" 2>&1 &
	AGENT_PID=$!
	KXE_PIDS+=($AGENT_PID)
}

stop_agent()
{
	kill -TERM "$AGENT_PID" 2>/dev/null
	wait "$AGENT_PID" 2>/dev/null
	AGENT_PID=
}

# The pinned config's layout_version (the first u32 of kxp_config), rewritten.
set_layout_version()
{
	local pin=/sys/fs/bpf/kxp-$INST1/kxp_config v hex
	v=$(bpftool -j map lookup pinned "$pin" key 0 0 0 0) || return 1
	# .value is the raw bytes ("0x01", ...); byte 0 is the low byte (little endian)
	hex=$(jq -r --argjson n "$1" '.value | [ (["0","1","2","3","4","5","6","7","8","9","a","b","c","d","e","f"]) as $d |
		($n % 256) as $b | "0x" + $d[($b / 16 | floor)] + $d[$b % 16] ] + .[1:] | .[]' <<<"$v") || return 1
	# shellcheck disable=SC2086 # one argument per byte
	bpftool map update pinned "$pin" key 0 0 0 0 value $hex
}
layout_version() { bpftool -j map lookup pinned "/sys/fs/bpf/kxp-$INST1/kxp_config" key 0 0 0 0 | jq -r '.formatted.value.layout_version'; }

# The pinned kxp_ct4 replaced by an LRU hash holding its entries, as layouts
# before 4 pinned it (the running programs keep the map they hold; the
# migration copies the pinned one's entries into a new hash). Prints how
# many entries the stand-in got.
ct_to_lru()
{
	local pin=/sys/fs/bpf/kxp-$INST1/kxp_ct4 n=0 line
	bpftool map create "${pin}_lru" type lru_hash key 16 value 40 entries 4096 name kxp_ct4 || return 1
	while read -r line; do
		# shellcheck disable=SC2086 # "key" bytes "value" bytes, one argument each
		bpftool map update pinned "${pin}_lru" $line || return 1
		n=$((n + 1))
	done < <(bpftool -j map dump pinned "$pin" | jq -r '.[] | "key " + (.key | join(" ")) + " value " + (.value | join(" "))')
	rm -f "$pin" && mv "${pin}_lru" "$pin" && echo "$n"
}

# node1; "single" ClusterIP 10.96.0.43 -> pod1b, pod2a; "np" NodePort 30082
# eTP=Local -> pod1b (no masquerade needed, the client's address is kept).
objects()
{
	local ep1='{"addresses":["'$POD1B_IP'"],"conditions":{"ready":true,"serving":true,"terminating":false},"nodeName":"node1"}'
	local ep2='{"addresses":["'$POD2A_IP'"],"conditions":{"ready":true,"serving":true,"terminating":false},"nodeName":"node2"}'
	cat <<J
[
 {"apiVersion":"v1","kind":"Node","metadata":{"name":"node1"},"status":{"addresses":[{"type":"InternalIP","address":"$NODE1_IP"}]}},
 {"apiVersion":"v1","kind":"Service","metadata":{"name":"single","namespace":"test"},
  "spec":{"clusterIP":"10.96.0.43","clusterIPs":["10.96.0.43"],"ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":8080}]}},
 {"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"single-1","namespace":"test",
  "labels":{"kubernetes.io/service-name":"single"}},"addressType":"IPv4","endpoints":[$ep1,$ep2],
  "ports":[{"name":"http","protocol":"TCP","port":8080}]},
 {"apiVersion":"v1","kind":"Service","metadata":{"name":"np","namespace":"test"},
  "spec":{"type":"NodePort","clusterIP":"10.96.0.45","clusterIPs":["10.96.0.45"],"externalTrafficPolicy":"Local",
   "ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":8080,"nodePort":30082}]}},
 {"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"np-1","namespace":"test",
  "labels":{"kubernetes.io/service-name":"np"}},"addressType":"IPv4","endpoints":[$ep1],
  "ports":[{"name":"http","protocol":"TCP","port":8080}]}
]
J
}

setup()
{
	kxe_setup nosync || return 1
	[ -x "$FAKE" ] || { KXE_SETUP_ERR="$FAKE is not built"; return 1; }
	objects >"$KXE_TMP/objects.json"
	start_api || { KXE_SETUP_ERR="test API server did not start: $(cat "$KXE_TMP/api.log")"; return 1; }
	# the previous release's pins: a `kxp sync` of the same objects
	timeout 60 "$KXP" --netns "$NS_N1" sync --instance "$INST1" --from-file "$KXE_TMP/objects.json" \
		--node-name node1 --node-ip "$NODE1_IP" --cluster-cidr "$CLUSTER_CIDR" --service-cidr "$SERVICE_CIDR" \
		--external-dev eth0 --pod-dev veth1a --pod-dev veth1b --xdp-mode "$KXE_XDP_MODE" >"$KXE_TMP/sync.out" 2>&1 ||
		{ KXE_SETUP_ERR="kxp sync: $(head -c 300 "$KXE_TMP/sync.out")"; return 1; }
}

case_adopt_same_layout()
{
	local ids0 ids1 ids2 long
	ids0=$(fe_ids)
	[ -n "$ids0" ] && jq -e 'length >= 3 and all(.[]; .fe_id > 0)' <<<"$ids0" >/dev/null || fail "sync left no frontends: $ids0" || return
	[ "$(layout_version)" = "$CUR" ] || fail "pinned layout_version is $(layout_version), want $CUR" || return
	kxe_probe "$NS_POD1A" --tcp --keepalive --dst 10.96.0.43:80 --count 120 --interval-ms 50 --max-seconds 60 \
		>"$KXE_TMP/long.json" &
	long=$!
	# a release before the SNAT claims moved into kxp_ct4 also pinned kxp_snat4
	bpftool map create "/sys/fs/bpf/kxp-$INST1/kxp_snat4" type lru_hash key 16 value 24 entries 16 name kxp_snat4 ||
		fail "cannot pin a stand-in for an old kxp_snat4" || return
	sleep 0.5
	start_agent
	for _ in $(seq 100); do
		grep -q 'lists complete' "$KXE_TMP/agent.log" && break
		sleep 0.1
	done
	grep -q 'lists complete' "$KXE_TMP/agent.log" || fail "agent did not program: $(tail -3 "$KXE_TMP/agent.log")" || return
	[ ! -e "/sys/fs/bpf/kxp-$INST1/kxp_snat4" ] || fail "the old kxp_snat4 pin is still there after adoption" || return
	ids1=$(fe_ids)
	[ "$ids0" = "$ids1" ] || fail "ids changed on adoption: $ids0 -> $ids1" || return
	kxe_probe "$NS_POD1A" --tcp --dst 10.96.0.43:80 --count 20 >/dev/null
	expect_all_ok || return
	# a rolling update: SIGTERM, the next agent adopts the first one's pins
	stop_agent
	start_agent
	for _ in $(seq 100); do
		[ "$(grep -c 'lists complete' "$KXE_TMP/agent.log")" -ge 2 ] && break
		sleep 0.1
	done
	ids2=$(fe_ids)
	[ "$ids0" = "$ids2" ] || fail "ids changed on the second adoption: $ids0 -> $ids2" || return
	wait "$long"
	KXE_LAST=$(cat "$KXE_TMP/long.json")
	expect_all_ok || { KXE_WHY="long-lived connection across both hand-overs: $KXE_WHY"; return 1; }
	kxe_probe "$NS_EXT" --tcp --dst "$NODE1_IP:30082" --count 5 >/dev/null
	expect_all_ok
}

# An older layout (the pinned version rewritten to 1 and kxp_ct4 an LRU hash,
# so these maps stand in for an older release's): migrated, the flows copied
# into the new hash, the flow survives, the agent attaches the devices only
# once the recreated maps are written.
case_migrate_older_layout()
{
	local long from lru
	stop_agent
	kxe_probe "$NS_POD1A" --tcp --keepalive --dst 10.96.0.43:80 --count 80 --interval-ms 50 --max-seconds 60 \
		>"$KXE_TMP/long2.json" &
	long=$!
	sleep 0.5
	lru=$(ct_to_lru) || fail "could not stand an LRU kxp_ct4 in" || return
	[ "$lru" -ge 2 ] || fail "the stand-in kxp_ct4 holds $lru entries, want the long-lived flow's two" || return
	set_layout_version 1 || fail "could not rewrite kxp_config" || return
	from=$(wc -l <"$KXE_TMP/agent.log")
	start_agent
	for _ in $(seq 100); do
		tail -n +"$((from + 1))" "$KXE_TMP/agent.log" | grep -q 'lists complete' && break
		sleep 0.1
	done
	tail -n +"$((from + 1))" "$KXE_TMP/agent.log" >"$KXE_TMP/agent2.log"
	grep -q "pinned maps of layout version 1 migrated to $CUR" "$KXE_TMP/agent2.log" ||
		fail "no migration reported: $(head -c 600 "$KXE_TMP/agent2.log")" || return
	grep -q "($lru conntrack entries copied)" "$KXE_TMP/agent2.log" ||
		fail "want $lru conntrack entries copied from the LRU kxp_ct4: $(grep -o 'flows kept[^;]*' "$KXE_TMP/agent2.log")" ||
		return
	[ "$(bpftool -j map show pinned "/sys/fs/bpf/kxp-$INST1/kxp_ct4" | jq -r .type)" = hash ] ||
		fail "kxp_ct4 is not a hash after the migration" || return
	grep -q 'lists complete' "$KXE_TMP/agent2.log" || fail "agent did not program after the migration" || return
	# devices attached only after the lists were programmed
	awk '/lists complete/ { l = NR } /attached eth0/ { a = NR } END { exit !(l && a > l) }' "$KXE_TMP/agent2.log" ||
		fail "eth0 attached before the recreated maps were written: $(grep -n -e 'lists complete' -e attached "$KXE_TMP/agent2.log" | head -5)" || return
	[ "$(layout_version)" = "$CUR" ] || fail "layout_version after migration: $(layout_version)" || return
	wait_for 'any(.[]; .frontend == "10.96.0.43:80/tcp" and .count == 2)' || fail "migrated instance lacks the ClusterIP" || return
	kxe_probe "$NS_POD1A" --tcp --dst 10.96.0.43:80 --count 20 >/dev/null
	expect_all_ok || return
	kxe_probe "$NS_EXT" --tcp --dst "$NODE1_IP:30082" --count 5 >/dev/null
	expect_all_ok || return
	wait "$long"
	KXE_LAST=$(cat "$KXE_TMP/long2.json")
	expect_all_ok || { KXE_WHY="long-lived connection across the migration: $KXE_WHY"; return 1; }
}

case_refuse_other_layout()
{
	local n0 n1 i rc= newer=$((CUR + 1))
	stop_agent
	n0=$(kxp_list_raw)
	set_layout_version $newer || fail "could not rewrite kxp_config" || return
	[ "$(layout_version)" = $newer ] || fail "layout_version still $(layout_version)" || return
	start_agent
	for i in $(seq 100); do
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$AGENT_PID" 2>/dev/null && fail "agent runs on pins of layout version $newer" || true
	[ -n "$KXE_WHY" ] && return 1
	wait "$AGENT_PID"
	rc=$?
	AGENT_PID=
	[ "$rc" = 1 ] || fail "agent exit status $rc, want 1" || return
	grep -q "pinned maps have layout version $newer, this kxp writes $CUR; run \`kxp cleanup --instance $INST1\` first" \
		"$KXE_TMP/agent.log" || fail "no clear refusal: $(tail -2 "$KXE_TMP/agent.log")" || return
	# nothing touched: the version, the entries; what is attached still serves
	[ "$(layout_version)" = $newer ] || fail "layout_version rewritten to $(layout_version)" || return
	n1=$(kxp_list_raw)
	[ "$n1" = "$n0" ] || fail "entries changed: $n0 -> $n1" || return
	kxe_probe "$NS_POD1A" --tcp --dst 10.96.0.43:80 --count 10 >/dev/null
	expect_all_ok || return
	# the documented way on: clean up, then a new agent programs from scratch
	timeout 20 "$KXP" --netns "$NS_N1" cleanup --instance "$INST1" >/dev/null || fail "kxp cleanup failed" || return
	start_agent
	wait_for 'any(.[]; .frontend == "10.96.0.43:80/tcp" and .count == 2)' ||
		fail "agent after cleanup did not program: $(tail -3 "$KXE_TMP/agent.log")" || return
	[ "$(layout_version)" = "$CUR" ] || fail "fresh pins have layout_version $(layout_version)" || return
	kxe_probe "$NS_POD1A" --tcp --dst 10.96.0.43:80 --count 20 >/dev/null
	expect_all_ok
}

# Entry count as bpftool sees it (kxp's own listing refuses other layouts).
kxp_list_raw() { bpftool -j map dump pinned "/sys/fs/bpf/kxp-$INST1/kxp_svc4" | jq length; }

setup
kxe_case adopt_same_layout case_adopt_same_layout
kxe_case migrate_older_layout case_migrate_older_layout
kxe_case refuse_other_layout case_refuse_other_layout
kxe_finish
