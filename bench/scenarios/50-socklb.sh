#!/usr/bin/env bash
# Scenario "socklb": new TCP connections/s and connect-to-reply latency
# (bench/connload.c) from a pod to a ClusterIP, translated at the socket
# (cgroup connect4, --socket-lb=all) against the TC path, in the same run and
# the same kxp instance, plus the no-translation ceiling. The socket-LB client
# runs in a child cgroup this scenario creates (the hooks are attached there
# only); the TC-path client runs outside it. Each mode has its own server
# port (tc: ClusterIP .100 -> 7000, socklb: the identical ClusterIP .101 ->
# 7002, ceiling: 7001 direct): a socket-translated connection whose tuple
# equals a TC flow closed less than 10 s earlier would have its replies
# claimed by that flow's conntrack REPLY entry.
# Called by bench/run.sh: 50-socklb.sh --json FILE --md FILE --reps N [--quick]
set -uo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../lib/common.sh
source bench/lib/common.sh
bench_args "$@"
for f in "$build/kxp" "$build/bench/connload" "$build/kxp-xdp-pass" "$build/kxp-echo" "$build/kxp-probe"; do
	[ -x "$f" ] || { echo "50-socklb.sh: $f missing (run make all)" >&2; exit 1; }
done

dur=1.5 conc=32
[ "$quick" = 1 ] && dur=0.7
ncpu=$(nproc)
cli_cpu=0
srv_cpu=$((ncpu > 1 ? 1 : 0))
CIP=10.96.0.100
CIP_SOCK=10.96.0.101

KXE_BUILD=$build
# shellcheck source=../../selftests/e2e/lib.sh
source selftests/e2e/lib.sh
KXE_TMP=$(mktemp -d "/tmp/$KXE_ID.XXXXXX")
KXE_MANIFESTS=$KXE_TMP/manifests
runs=$KXE_TMP/runs.jsonl
: >"$runs"
CG=

die() { echo "50-socklb.sh: $*" >&2; exit 1; }

socklb_cleanup()
{
	local rc=$? pid
	if [ -n "$CG" ] && [ -d "$CG" ]; then
		timeout 20 "$KXP" --netns "$NS_N1" cleanup --instance "$INST1" >/dev/null 2>&1
		for pid in $(cat "$CG/cgroup.procs" 2>/dev/null); do kill "$pid" 2>/dev/null; done
		sleep 0.2
		rmdir "$CG" 2>/dev/null || echo "50-socklb.sh: could not remove $CG" >&2
	fi
	(exit $rc)
	kxe_cleanup
}
trap socklb_cleanup EXIT
trap 'exit 130' INT TERM

cg_root=/sys/fs/cgroup/unified
[ "$(stat -f -c %T "$cg_root" 2>/dev/null)" = cgroup2fs ] || cg_root=/sys/fs/cgroup
[ "$(stat -f -c %T "$cg_root" 2>/dev/null)" = cgroup2fs ] || die "no cgroup v2 mount"
CG=$cg_root/kxp-bench-$KXE_ID
mkdir "$CG" || die "cannot create $CG"

kxe_topology_up || die "topology could not be built"
ns_run "$NS_POD1A" sysctl -qw net.ipv4.tcp_max_tw_buckets=4096 >/dev/null || die "sysctl in pod1a"
connload_servers 600 7000 7001 7002 || die "connload servers"

mkdir -p "$KXE_MANIFESTS"
cp deploy/examples/nodes.yaml "$KXE_MANIFESTS/"
for spec in "sl-tc $CIP 7000" "sl-sock $CIP_SOCK 7002"; do
	read -r name ip port <<<"$spec"
	cat <<EOF
---
apiVersion: v1
kind: Service
metadata: {name: $name, namespace: bench}
spec:
  type: ClusterIP
  clusterIP: $ip
  clusterIPs: [$ip]
  ports: [{name: t, protocol: TCP, port: 80, targetPort: $port}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $name-1, namespace: bench, labels: {kubernetes.io/service-name: $name}}
addressType: IPv4
endpoints:
  - {addresses: [$POD1B_IP], conditions: {ready: true}, nodeName: node1}
ports: [{name: t, protocol: TCP, port: $port}]
EOF
done >"$KXE_MANIFESTS/socklb.yaml"
kxe_sync node1 --cgroup-root "$CG" --socket-lb all || die "kxp sync failed: $(head -c 500 "$KXE_TMP/sync-node1.out")"

# Modes: the same pod and service settings; cgroup membership decides the path.
read -ra modes <<<"${SOCKLB_MODES:-ceiling tc socklb}"
measure() # MODE REP DURATION
{
	local dst=$CIP:80 out cg=
	[ "$1" = ceiling ] && dst=$POD1B_IP:7001
	[ "$1" = socklb ] && cg=$CG dst=$CIP_SOCK:80
	# shellcheck disable=SC2016 # $$ and "$@" belong to the inner shell
	out=$(sh -c '[ -n "$0" ] && echo $$ >"$0/cgroup.procs"; exec "$@"' "$cg" \
		nsenter --net="/run/netns/$NS_POD1A" -- "$build/bench/connload" run --dst "$dst" \
		--duration "$3" --concurrency "$conc" --cpu "$cli_cpu" --timeout-ms 1000 2>&1)
	jq -e . <<<"$out" >/dev/null 2>&1 || die "connload ($1): $out"
	[ "$2" = warmup ] && return 0
	jq -c --arg m "$1" --argjson r "$2" '. + {mode: $m, rep: $r}' <<<"$out" >>"$runs"
}

reason() { "$KXP" stats --instance "$INST1" -o json 2>/dev/null | jq --arg r "$1" '[.reasons[]? | select(.reason == $r) | .packets] | add // 0'; }

t_start=$(date +%s)
for m in "${modes[@]}"; do
	measure "$m" warmup 0.3
done
x0=$(reason sock_xlate)
o0=$(reason ok)
for rep in $(seq "$reps"); do
	mapfile -t order < <(alternate "$rep" "${modes[@]}")
	for m in "${order[@]}"; do
		measure "$m" "$rep" "$dur"
	done
done
x1=$(reason sock_xlate)
o1=$(reason ok)
elapsed=$(($(date +%s) - t_start))

jq -n --slurpfile runs "$runs" --arg dur "$dur" --argjson conc "$conc" --argjson reps "$reps" \
	--argjson quick "$quick" --argjson cli "$cli_cpu" --argjson srv "$srv_cpu" --argjson el "$elapsed" \
	--argjson sx "$((x1 - x0))" --argjson ok "$((o1 - o0))" "$JQ_STATS"'
def pair($m; $base): [ $runs[] | select(.mode == $m) as $r | $runs[] |
	select(.mode == $base and .rep == $r.rep and .conns_per_s > 0 and .p50_us > 0 and .p99_us > 0) |
	{rate: ($r.conns_per_s / .conns_per_s), p50: ($r.p50_us / .p50_us), p99: ($r.p99_us / .p99_us)} ] |
	{conns_per_s: ([.[].rate] | smm), p50: ([.[].p50] | smm), p99: ([.[].p99] | smm)};
{
  scenario: "socklb",
  settings: {duration_s: ($dur | tonumber), concurrency: $conc, reps: $reps, quick: ($quick == 1),
    client_cpu: $cli, server_cpu: $srv, timeout_ms: 1000, client: "pod1a (node1)",
    server: "bench/connload serve in pod1b (node1), pinned", socket_lb: "all, hooks on a child cgroup holding the socklb client only",
    destination: "tc: ClusterIP 10.96.0.100:80 -> pod1b:7000; socklb: ClusterIP 10.96.0.101:80 -> pod1b:7002 (same settings); ceiling: pod1b:7001 direct"},
  elapsed_s: $el,
  counted: {sock_xlate: $sx, tc_new_flows_ok: $ok},
  modes: ([ $runs[] ] | group_by(.mode) | map(. as $rs | {key: $rs[0].mode, value: {
    conns_per_s: ([$rs[].conns_per_s] | smm), p50_us: ([$rs[].p50_us] | smm), p99_us: ([$rs[].p99_us] | smm),
    p999_us: ([$rs[].p999_us] | smm), errors: ([$rs[].errors | to_entries[] | .value] | add),
    runs: [$rs[] | {rep, conns_per_s, p50_us, p99_us, p999_us, conns, errors}] }}) | from_entries),
  socklb_vs_tc: pair("socklb"; "tc"),
  tc_vs_ceiling: pair("tc"; "ceiling"),
  socklb_vs_ceiling: pair("socklb"; "ceiling")
}' >"$json" || die "summary failed"

{
	echo "## socklb: pod -> ClusterIP, socket LB (cgroup connect4) vs TC"
	echo
	echo "bench/connload from pod1a: $conc connections in flight, connect -> request -> reply -> close, ${dur} s per run,"
	echo "$reps runs per mode, modes alternating; client on CPU $cli_cpu, server (pod1b) on CPU $srv_cpu. One kxp instance"
	echo "(--socket-lb all) whose hooks sit on a child cgroup: *socklb* runs the client inside it (connect() to"
	echo "ClusterIP 10.96.0.101:80 goes straight to pod1b:7002), *tc* outside it (10.96.0.100:80, TC DNAT at pod1a's"
	echo "host veth to pod1b:7000), *ceiling* to pod1b:7001 untranslated (two identical services and a port per mode:"
	echo "a TC flow's conntrack entries would claim the replies of a socket-translated flow with the same tuple)."
	echo "Latency: connect() to reply, µs. Medians (min–max); ratios per run pair."
	echo
	echo "| mode | conns/s | p50 µs | p99 µs | p99.9 µs | errors |"
	echo "|---|---|---|---|---|---|"
	jq -r "$JQ_STATS"'.modes | to_entries[] |
		"| \(.key) | \(.value.conns_per_s | r) | \(.value.p50_us | r) | \(.value.p99_us | r) | \(.value.p999_us | r) | \(.value.errors) |"' "$json"
	echo
	jq -r "$JQ_STATS"'"socklb/tc: conns/s \(.socklb_vs_tc.conns_per_s | r), p50 \(.socklb_vs_tc.p50 | r), p99 \(.socklb_vs_tc.p99 | r).",
		"tc/ceiling: conns/s \(.tc_vs_ceiling.conns_per_s | r); socklb/ceiling: conns/s \(.socklb_vs_ceiling.conns_per_s | r).",
		"",
		"Counted on node1 during the measured runs: sock_xlate \(.counted.sock_xlate) (socket translations), ok \(.counted.tc_new_flows_ok) (new flows translated by TC)."' "$json"
} >"$md" || die "markdown failed"
exit 0
