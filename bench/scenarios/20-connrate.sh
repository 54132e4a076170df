#!/usr/bin/env bash
# Scenario "connrate": new TCP connections/s and connect-to-reply latency
# (bench/connload.c) through kxp in the e2e 2-node namespace topology
# (selftests/e2e/lib.sh): pod -> ClusterIP, external -> NodePort eTP=Cluster
# (masqueraded) and eTP=Local, against the ceiling of the same topology with
# no translation (straight to the backend pod), at 1 and 1,000 services.
# Called by bench/run.sh: 20-connrate.sh --json FILE --md FILE --reps N [--quick]
set -uo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../lib/common.sh
source bench/lib/common.sh
bench_args "$@"
for f in "$build/kxp" "$build/bench/connload" "$build/kxp-xdp-pass" "$build/kxp-echo" "$build/kxp-probe"; do
	[ -x "$f" ] || { echo "20-connrate.sh: $f missing (run make all)" >&2; exit 1; }
done

# Run length per measurement and connections in flight. Full mode: 3 points x
# 5 modes x 5 runs x 1.5 s plus setup, about 2.5 minutes here.
dur=1.5 conc=32
[ "$quick" = 1 ] && dur=0.7
ncpu=$(nproc)
cli_cpu=0
srv_cpu=$((ncpu > 1 ? 1 : 0))
SERVICES_BIG=1000

# The e2e topology and its cleanup (namespaces, pins, processes on every exit).
KXE_BUILD=$build
# shellcheck source=../../selftests/e2e/lib.sh
source selftests/e2e/lib.sh
KXE_TMP=$(mktemp -d "/tmp/$KXE_ID.XXXXXX")
KXE_MANIFESTS=$KXE_TMP/manifests
trap kxe_cleanup EXIT
trap 'exit 130' INT TERM
runs=${CONNRATE_RUNS:-$KXE_TMP/runs.jsonl}
points=${CONNRATE_POINTS:-$KXE_TMP/points.jsonl}
: >"$runs"
: >"$points"

die() { echo "20-connrate.sh: $*" >&2; exit 1; }

kxe_topology_up || die "topology could not be built"
# The ceiling from outside: the client routes pod addresses to node1 (plain forwarding).
ip -n "$NS_EXT" route add 10.244.0.0/16 via "$NODE1_IP" || die "ext route"
# Clients close first, so TIME_WAIT piles up in the client namespaces and would
# slow later runs' port search: cap it there (overflowing sockets just close).
for ns in "$NS_POD1A" "$NS_EXT"; do
	ns_run "$ns" sysctl -qw net.ipv4.tcp_max_tw_buckets=4096 >/dev/null || die "sysctl in $ns"
done
# Two servers in pod1b: 7000 behind the services, 7001 for the ceiling, so a
# ceiling flow never has the tuple of an earlier translated flow (whose ct
# entries may still exist) at the server.
connload_servers 900 7000 7001 || die "connload servers"

# Measured services, all backed by pod1b:7000 (node1-local).
measured_yaml()
{
	local name cip type etp np
	for spec in "cr-cip 10.96.0.100 ClusterIP - -" "cr-np-cluster 10.96.0.101 NodePort Cluster 30200" \
		"cr-np-local 10.96.0.102 NodePort Local 30201"; do
		read -r name cip type etp np <<<"$spec"
		cat <<EOF
---
apiVersion: v1
kind: Service
metadata: {name: $name, namespace: bench}
spec:
  type: $type
  clusterIP: $cip
  clusterIPs: [$cip]
EOF
		[ "$etp" = - ] || echo "  externalTrafficPolicy: $etp"
		if [ "$np" = - ]; then
			echo "  ports: [{name: t, protocol: TCP, port: 80, targetPort: 7000}]"
		else
			echo "  ports: [{name: t, protocol: TCP, port: 80, targetPort: 7000, nodePort: $np}]"
		fi
		cat <<EOF
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $name-1, namespace: bench, labels: {kubernetes.io/service-name: $name}}
addressType: IPv4
endpoints:
  - {addresses: [$POD1B_IP], conditions: {ready: true}, nodeName: node1}
ports: [{name: t, protocol: TCP, port: 7000}]
EOF
	done
}

# fill_yaml N: N ClusterIP services 10.97.x.y:80 with 3 (unreachable) backends each.
fill_yaml()
{
	awk -v n="$1" 'BEGIN {
		for (i = 0; i < n; i++) {
			ip = sprintf("10.97.%d.%d", int(i / 250), i % 250 + 1)
			printf "---\napiVersion: v1\nkind: Service\nmetadata: {name: fill-%d, namespace: bench}\n", i
			printf "spec:\n  type: ClusterIP\n  clusterIP: %s\n  clusterIPs: [%s]\n", ip, ip
			printf "  ports: [{name: t, protocol: TCP, port: 80, targetPort: 7000}]\n"
			printf "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
			printf "metadata: {name: fill-%d-1, namespace: bench, labels: {kubernetes.io/service-name: fill-%d}}\n", i, i
			printf "addressType: IPv4\nendpoints:\n"
			for (k = 0; k < 3; k++)
				printf "  - {addresses: [10.244.9%d.%d], conditions: {ready: true}, nodeName: node2}\n", k, i % 250 + 1
			printf "ports: [{name: t, protocol: TCP, port: 7000}]\n"
		}
	}'
}

# point NAME SERVICES ORDER: manifests (the measured services in the first or
# the last file: kxp reads files in name order and the writer allocates ids and
# writes entries in that order), then one sync into a fresh instance.
setup_point()
{
	local name=$1 n=$2 order=$3 t0 t1 mfile=00-measured.yaml
	rm -rf "$KXE_MANIFESTS"
	mkdir -p "$KXE_MANIFESTS"
	cp deploy/examples/nodes.yaml "$KXE_MANIFESTS/"
	[ "$order" = last ] && mfile=99-measured.yaml
	measured_yaml >"$KXE_MANIFESTS/$mfile"
	[ "$n" -gt 1 ] && fill_yaml "$((n - 1))" >"$KXE_MANIFESTS/50-fill.yaml"
	# A fresh instance per point: ids, programming order and ct/snat state start over.
	"$KXP" --netns "$NS_N1" cleanup --instance "$INST1" >/dev/null 2>&1
	t0=$(date +%s%N)
	kxe_sync node1 || die "kxp sync ($name) failed: $(head -c 500 "$KXE_TMP/sync-node1.out")"
	t1=$(date +%s%N)
	jq -nc --arg p "$name" --argjson n "$n" --arg o "$order" --argjson s "$(((t1 - t0) / 1000000))e-3" \
		--argjson fe "$(kxe_svc_json node1 | jq length)" \
		'{point: $p, services: $n, order: $o, sync_s: $s, frontends: $fe}' >>"$points"
}

# The five modes: client namespace and destination.
modes=(ceiling_pod clusterip ceiling_ext nodeport_cluster nodeport_local)
mode_ns() { case $1 in ceiling_pod | clusterip) echo "$NS_POD1A" ;; *) echo "$NS_EXT" ;; esac; }
mode_dst()
{
	case $1 in
	ceiling_pod | ceiling_ext) echo "$POD1B_IP:7001" ;;
	clusterip) echo 10.96.0.100:80 ;;
	nodeport_cluster) echo "$NODE1_IP:30200" ;;
	nodeport_local) echo "$NODE1_IP:30201" ;;
	esac
}

measure() # POINT MODE REP DURATION
{
	local out
	# expired flows out of kxp_ct4 (no LRU), as the agent does every few
	# seconds: `kxp sync` alone would let the runs of a point fill it
	"$KXP" ct gc --instance "$INST1" >/dev/null 2>&1
	out=$(ns_run "$(mode_ns "$2")" "$build/bench/connload" run --dst "$(mode_dst "$2")" \
		--duration "$4" --concurrency "$conc" --cpu "$cli_cpu" --timeout-ms 1000 2>&1)
	jq -e . <<<"$out" >/dev/null 2>&1 || die "connload ($2): $out"
	[ "$3" = warmup ] && return 0
	jq -c --arg p "$1" --arg m "$2" --argjson r "$3" '. + {point: $p, mode: $m, rep: $r}' <<<"$out" >>"$runs"
}

t_start=$(date +%s)
for spec in "n1 1 first" "n1000_first $SERVICES_BIG first" "n1000_last $SERVICES_BIG last"; do
	read -r pname pn porder <<<"$spec"
	setup_point "$pname" "$pn" "$porder"
	echo "== connrate $pname: $pn services (measured programmed $porder)" >&2
	for m in "${modes[@]}"; do
		measure "$pname" "$m" warmup 0.3
	done
	for rep in $(seq "$reps"); do
		# modes alternate: forward on odd runs, reversed on even ones
		order=("${modes[@]}")
		if [ $((rep % 2)) = 0 ]; then
			order=()
			for ((i = ${#modes[@]} - 1; i >= 0; i--)); do order+=("${modes[i]}"); done
		fi
		for m in "${order[@]}"; do
			measure "$pname" "$m" "$rep" "$dur"
		done
	done
	stats=$("$KXP" stats --instance "$INST1" -o json 2>/dev/null | jq -c '[.reasons[]? | select(.packets > 0) | {(.reason // "?"): .packets}] | add // {}')
	jq -c --arg p "$pname" --argjson s "${stats:-{\}}" 'if .point == $p then . + {reasons: $s} else . end' \
		"$points" >"$points.tmp" && mv "$points.tmp" "$points"
done
elapsed=$(($(date +%s) - t_start))

# ---- summaries -----------------------------------------------------------------
jq -n --slurpfile runs "$runs" --slurpfile points "$points" \
	--arg dur "$dur" --argjson conc "$conc" --argjson reps "$reps" --argjson quick "$quick" \
	--argjson cli "$cli_cpu" --argjson srv "$srv_cpu" --argjson el "$elapsed" '
def med: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
	else (.[length / 2 - 1] + .[length / 2]) / 2 end;
def smm: if length == 0 then null else {median: med, min: min, max: max} end;
def ceil_of($m): if $m == "clusterip" then "ceiling_pod" elif ($m | startswith("nodeport")) then "ceiling_ext" else null end;
{
  scenario: "connrate",
  settings: {duration_s: ($dur | tonumber), concurrency: $conc, reps: $reps, quick: ($quick == 1),
    client_cpu: $cli, server_cpu: $srv, timeout_ms: 1000,
    client_sysctls: "net.ipv4.tcp_tw_reuse=1, ip_local_port_range 10000 65000, tcp_max_tw_buckets 4096",
    server: "bench/connload serve in pod1b (node1), pinned", xdp_mode: "native"},
  elapsed_s: $el,
  points: [ $points[] as $p | $p + {
    modes: ([ $runs[] | select(.point == $p.point) ] | group_by(.mode) | map(
      . as $rs | ($rs[0].mode) as $m | {
        key: $m,
        value: {
          conns_per_s: ([$rs[].conns_per_s] | smm),
          p50_us: ([$rs[].p50_us] | smm), p99_us: ([$rs[].p99_us] | smm), p999_us: ([$rs[].p999_us] | smm),
          errors: ([$rs[].errors | to_entries[] | .value] | add),
          runs: [$rs[] | {rep, conns_per_s, p50_us, p99_us, p999_us, conns, errors}],
          ratio_to_ceiling: (ceil_of($m) as $c | if $c == null then null else
            ([ $rs[] as $r | $runs[] | select(.point == $p.point and .mode == $c and .rep == $r.rep) |
               select(.conns_per_s > 0 and .p50_us > 0 and .p99_us > 0) |
               {rate: ($r.conns_per_s / .conns_per_s), p50: ($r.p50_us / .p50_us), p99: ($r.p99_us / .p99_us)} ]) as $q |
            {ceiling: $c, conns_per_s: ([$q[].rate] | smm), p50: ([$q[].p50] | smm), p99: ([$q[].p99] | smm)} end)
        } }) | from_entries)
  } ]
}' >"$json" || die "summary failed"

{
	echo "## connrate: short TCP connections through kxp"
	echo
	echo "bench/connload: $conc connections in flight, each connect -> request -> reply -> close, ${dur} s per run,"
	echo "$reps runs per point, modes alternating; client pinned to CPU $cli_cpu, server (pod1b) to CPU $srv_cpu."
	echo "Latency: connect() to reply, µs. Medians (min–max). *kxp/ceiling*: per run pair, against the same"
	echo "client connecting straight to the backend pod (kxp attached, nothing translated)."
	jq -r '
	def f: if . == null then "-" elif . >= 100 then (. | round | tostring) else ((. * 100 | round) / 100 | tostring) end;
	def r: if . == null then "-" else "\(.median | f) (\(.min | f)–\(.max | f))" end;
	.points[] |
	"\n### \(.point): \(.services) service(s) per measured frontend (the measured one + \(.services - 1) others; 3 measured services), measured programmed \(.order); sync \(.sync_s * 1000 | round) ms, \(.frontends) frontends\n",
	"| mode | conns/s | p50 µs | p99 µs | p99.9 µs | errors | kxp/ceiling conns/s | kxp/ceiling p99 |",
	"|---|---|---|---|---|---|---|---|",
	(.modes | to_entries[] | "| \(.key) | \(.value.conns_per_s | r) | \(.value.p50_us | r) | \(.value.p99_us | r) | \(.value.p999_us | r) | \(.value.errors) | \(if .value.ratio_to_ceiling then (.value.ratio_to_ceiling.conns_per_s | r) else "-" end) | \(if .value.ratio_to_ceiling then (.value.ratio_to_ceiling.p99 | r) else "-" end) |"),
	"\nDatapath reasons counted on node1 after this point: \(.reasons // {} | to_entries | map("\(.key)=\(.value)") | join(", "))"
	' "$json"
} >"$md" || die "markdown failed"
exit 0
