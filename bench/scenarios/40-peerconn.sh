#!/usr/bin/env bash
# Scenario "peerconn": new TCP connections/s and connect latency
# (p50/p99/p99.9), pod -> ClusterIP (first- and last-programmed service) and
# external -> NodePort (eTP=Cluster and Local), and requests/s over keep-alive
# connections, at N services: kxp (XDP and TC-only, and kxp-sock: the default
# --socket-lb all, pod TCP translated at connect() by the cgroup hooks on a
# child cgroup this scenario creates) against kube-proxy's
# iptables layout (legacy and nft-backed), nftables layout and, where the
# kernel has ip_vs, IPVS layout, and the no-translation ceiling, in one e2e
# 2-node topology with the same client,
# server and CPU pinning for every mode (every client runs in that cgroup; the
# hooks are attached only while kxp-sock is on).
# Called by bench/run.sh: 40-peerconn.sh --json FILE --md FILE --reps N [--quick]
# Env: PEERCONN_N (the N list), PEERCONN_MODES (the modes measured, default
# all), PEERCONN_DUR (seconds per run).
set -uo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../lib/common.sh
source bench/lib/common.sh
bench_args "$@"

# Peers are measured up to PEER_MAX_N (scenario 3's sizes); the full run adds
# N = 30,000 and 50,000 for kxp and the ceiling alone (the goals "at every N
# from 1 to 30,000" and "N up to 50,000" are kxp's; kube-proxy's rulesets at
# 30,000 x 10 take minutes to load here, see the program scenario).
if [ "$quick" = 1 ]; then
	NS_LIST=(1 1000) E=4 dur=0.7 T=60 PEER_MAX_N=1000
else
	NS_LIST=(1 1000 10000 30000 50000) E=10 dur=1.0 T=120 PEER_MAX_N=10000
fi
[ -n "${PEERCONN_N:-}" ] && read -r -a NS_LIST <<<"$PEERCONN_N"
[ -n "${PEERCONN_DUR:-}" ] && dur=$PEERCONN_DUR
IPVS=$(ipvs_status)
[ "$IPVS" = available ] && PEERS+=(ipvs)
conc=32
ncpu=$(nproc)
cli_cpu=0
srv_cpu=$((ncpu > 1 ? 1 : 0))
command -v conntrack >/dev/null || { echo "40-peerconn.sh: conntrack missing (bench/run.sh installs it)" >&2; exit 1; }
for f in "$build/kxp" "$build/bench/connload" "$build/kxp-xdp-pass"; do
	[ -x "$f" ] || { echo "40-peerconn.sh: $f missing (make all)" >&2; exit 1; }
done

KXE_BUILD=$build
# shellcheck source=../../selftests/e2e/lib.sh
source selftests/e2e/lib.sh
KXE_TMP=$(mktemp -d "/tmp/$KXE_ID.XXXXXX")
KXE_MANIFESTS=$KXE_TMP/manifests
trap kxe_cleanup EXIT
trap 'exit 130' INT TERM
runs=$KXE_TMP/runs.jsonl
points=$KXE_TMP/points.jsonl
counters=$KXE_TMP/counters.jsonl
: >"$runs"
: >"$points"
: >"$counters"
die() { echo "40-peerconn.sh: $*" >&2; exit 1; }
n1() { nsenter --net="/run/netns/$NS_N1" "$@"; }

kxe_topology_up || die "topology could not be built"
ip -n "$NS_EXT" route add 10.244.0.0/16 via "$NODE1_IP" || die "ext route"
for ns in "$NS_POD1A" "$NS_EXT"; do
	ns_run "$ns" sysctl -qw net.ipv4.tcp_max_tw_buckets=4096 >/dev/null || die "sysctl in $ns"
done
connload_servers 3000 7000 7001 || die "connload servers"

# The clients' cgroup: the socket hooks of kxp-sock attach here only.
cg_root=/sys/fs/cgroup/unified
[ "$(stat -f -c %T "$cg_root" 2>/dev/null)" = cgroup2fs ] || cg_root=/sys/fs/cgroup
[ "$(stat -f -c %T "$cg_root" 2>/dev/null)" = cgroup2fs ] || die "no cgroup v2 mount"
CG=$cg_root/kxp-bench-peerconn-$$
mkdir "$CG" || die "cannot create $CG"
peerconn_cleanup()
{
	local rc=$? pid i
	for pid in $(cat "$CG/cgroup.procs" 2>/dev/null); do kill "$pid" 2>/dev/null; done
	for i in $(seq 50); do rmdir "$CG" 2>/dev/null && break; sleep 0.1; done
	(exit $rc)
	kxe_cleanup # exits
}
trap peerconn_cleanup EXIT

MODES=(ceiling kxp kxp-sock kxp-tc "${PEERS[@]}")
if [ -n "${PEERCONN_MODES:-}" ]; then
	sel=()
	for m in "${MODES[@]}"; do [[ " $PEERCONN_MODES " == *" $m "* ]] && sel+=("$m"); done
	MODES=("${sel[@]}")
	mapfile -t PEERS < <(for p in "${PEERS[@]}"; do [[ " ${MODES[*]} " == *" $p "* ]] && echo "$p"; done)
fi
# What each mode measures: the ceiling goes straight to the backend pod
# (port 7001), kxp-tc differs from kxp only where XDP acts (NodePort).
mode_meas()
{
	case $1 in
	ceiling) echo "pod ext keepalive" ;;
	kxp-tc) echo "np_cluster np_local" ;;
	kxp-sock) echo "cip_first cip_last keepalive" ;;
	*) echo "cip_first cip_last np_cluster np_local keepalive" ;;
	esac
}
meas_ceiling() { case $1 in np_*) echo ext ;; keepalive) echo keepalive ;; *) echo pod ;; esac; }
meas_ns() { case $1 in ext | np_*) echo "$NS_EXT" ;; *) echo "$NS_POD1A" ;; esac; }
meas_dst()
{
	case $1 in
	pod | ext) echo "$POD1B_IP:7001" ;;
	keepalive) [ "$2" = ceiling ] && echo "$POD1B_IP:7001" || echo 10.96.0.100:80 ;;
	cip_first) echo 10.96.0.100:80 ;;
	cip_last) echo 10.96.0.200:80 ;;
	np_cluster) echo "$NODE1_IP:30200" ;;
	np_local) echo "$NODE1_IP:30201" ;;
	esac
}

# Peers stay loaded for the whole point; a mode is switched on by the jumps
# from the built-in chains (iptables) or the base chains' rules (nftables),
# and off by flushing those, so every mode runs with the same tables present.
ipt_tool() { [ "$1" = iptables-legacy ] && echo iptables-legacy || echo iptables-nft; }
peer_off()
{
	local t
	case $1 in
	iptables-*)
		t=$(ipt_tool "$1")
		for c in PREROUTING OUTPUT POSTROUTING; do n1 "$t" -w -t nat -F "$c"; done
		for c in INPUT FORWARD OUTPUT; do n1 "$t" -w -t filter -F "$c"; done
		;;
	nftables)
		for c in nat-prerouting nat-output nat-postrouting filter-forward; do
			n1 nft flush chain ip kube-proxy "$c"
		done
		;;
	ipvs)
		# its iptables hooks (nft backend, Debian's iptables), the ClusterIPs
		# no longer local (a device going down takes its addresses' local
		# routes with it), the NodePort virtual servers gone
		peer_off iptables-nft
		n1 ip link set kube-ipvs0 down
		awk '$1 == "-A" { print "-D", $2, $3 }' "$KXE_TMP/ipvs-np.txt" | n1 ipvsadm -R
		;;
	esac
}
peer_on()
{
	case $1 in
	iptables-*) n1 "$(ipt_tool "$1")-restore" --noflush <"$KXE_TMP/hooks.ipt" ;;
	nftables) n1 nft -f "$KXE_TMP/hooks.nft" ;;
	ipvs)
		n1 ip link set kube-ipvs0 up &&
			n1 ipvsadm -R <"$KXE_TMP/ipvs-np.txt" &&
			n1 iptables-nft-restore --noflush <"$KXE_TMP/hooks-ipvs.ipt"
		;;
	esac
}
# kube-proxy's IPVS layout from nothing (run in node1, timed as one load): the
# dummy device with every ClusterIP, the ipsets, the virtual servers, the
# iptables rules, and the sysctls kube-proxy sets; left switched off.
# (ipvsadm -R, not ipvsadm-restore: that script clears every virtual server
# first.)
cat >"$KXE_TMP/ipvs-load.sh" <<'EOF'
d=$(dirname "$0")
sysctl -qw net.ipv4.vs.conntrack=1 net.ipv4.vs.conn_reuse_mode=0 net.ipv4.vs.expire_nodest_conn=1 \
	net.ipv4.vs.expire_quiescent_template=1 >/dev/null &&
	ip -batch "$d/ipvs-dev.txt" && ipset restore <"$d/ipvs-sets.txt" &&
	ipvsadm -R <"$d/ipvs.txt" && iptables-nft-restore --noflush <"$d/ipvs.ipt" &&
	ip link set kube-ipvs0 up && ip link set kube-ipvs0 down
EOF
ipvs_unload()
{
	n1 ip link del kube-ipvs0 2>/dev/null
	n1 ipvsadm -C 2>/dev/null
	n1 ipset destroy 2>/dev/null
	return 0
}
mode_on()
{
	case $1 in
	ceiling) ;;
	kxp) KXE_XDP_MODE=native kxe_sync node1 "${SYNC_ARGS[@]}" ;;
	kxp-tc) KXE_XDP_MODE=off kxe_sync node1 "${SYNC_ARGS[@]}" ;;
	kxp-sock) KXE_XDP_MODE=native kxe_sync node1 "${SYNC_ARGS[@]}" --cgroup-root "$CG" --socket-lb all ;;
	*) peer_on "$1" ;;
	esac
}
# Netfilter's conntrack in node1 is emptied after every mode: entries of one
# mode's flows (the client reuses its ports) would otherwise translate the
# next mode's packets (e.g. an iptables DNAT entry un-NATting a kxp reply).
# kxp's non-zero counters (drops by reason, translations) of a measured run are
# kept: where a kxp run loses connections, they say whether kxp dropped them.
mode_off() # MODE [N REP]
{
	n1 conntrack -F >/dev/null 2>&1
	case $1 in
	kxp | kxp-tc | kxp-sock)
		if [ -n "${3:-}" ]; then
			"$KXP" stats --instance "$INST1" -o json 2>/dev/null | jq -c --argjson n "$2" --arg m "$1" --argjson r "$3" \
				'{n: $n, mode: $m, rep: $r, counters: ([.reasons[]? | select(.packets > 0) | {key: .reason, value: .packets}] | from_entries)}' \
				>>"$counters" 2>/dev/null
		fi
		"$KXP" --netns "$NS_N1" cleanup --instance "$INST1" >/dev/null 2>&1
		;;
	ceiling) ;;
	*) peer_off "$1" ;;
	esac
}

# Packets the kernel dropped on the topology's devices (rx + tx dropped over
# every link of the client, node and server namespaces): a connection delayed
# by a retransmission in one mode and not in another shows up here when a
# device queue (e.g. a veth's XDP ring) overflowed.
netdrops()
{
	local ns sum=0 d
	for ns in "$NS_POD1A" "$NS_EXT" "$NS_FABRIC" "$NS_N1" "$NS_POD1B"; do
		d=$(nsenter --net="/run/netns/$ns" ip -s -j link show 2>/dev/null |
			jq '[.[] | (.stats64.rx.dropped // 0) + (.stats64.tx.dropped // 0)] | add // 0' 2>/dev/null)
		sum=$((sum + ${d:-0}))
	done
	echo "$sum"
}

measure() # N MODE MEAS REP DURATION
{
	local out d0
	# expired flows out of kxp_ct4 (no LRU), as the agent does every few
	# seconds (a no-op while no kxp instance is loaded)
	case $2 in kxp*) "$KXP" ct gc --instance "$INST1" >/dev/null 2>&1 ;; esac
	d0=$(netdrops)
	out=$(sh -c 'echo $$ >"$0/cgroup.procs" && ns=$1 && shift && exec nsenter --net="/run/netns/$ns" -- "$@"' \
		"$CG" "$(meas_ns "$3")" "$build/bench/connload" run --dst "$(meas_dst "$3" "$2")" \
		--duration "$5" --concurrency "$conc" --cpu "$cli_cpu" --timeout-ms 1000 \
		$([ "$3" = keepalive ] && echo --keepalive) 2>&1)
	jq -e . <<<"$out" >/dev/null 2>&1 || die "connload ($2 $3): $out"
	[ "$4" = warmup ] && return 0
	jq -c --argjson n "$1" --arg m "$2" --arg x "$3" --argjson r "$4" --argjson dr $(($(netdrops) - d0)) \
		'. + {n: $n, mode: $m, meas: $x, rep: $r, dev_drops: $dr}' <<<"$out" >>"$runs"
}

t_start=$(date +%s)
awk -f "$GEN" -v fmt=ipt_hooks >"$KXE_TMP/hooks.ipt"
awk -f "$GEN" -v fmt=nft_hooks >"$KXE_TMP/hooks.nft"
awk -f "$GEN" -v fmt=ipvs_hooks >"$KXE_TMP/hooks-ipvs.ipt"
for n in "${NS_LIST[@]}"; do
	echo "== peerconn N=$n: generating and loading" >&2
	awk -f "$GEN" -v fmt=ipt -v n="$n" -v e="$E" -v measured=1 -v pod="$POD1B_IP" >"$KXE_TMP/rules.ipt"
	awk -f "$GEN" -v fmt=nft -v n="$n" -v e="$E" -v measured=1 -v pod="$POD1B_IP" >"$KXE_TMP/rules.nft"
	if [[ " ${PEERS[*]} " == *" ipvs "* ]]; then
		for f in ipvs_dev:ipvs-dev.txt ipvs_sets:ipvs-sets.txt ipvs:ipvs.txt ipvs_np:ipvs-np.txt ipvs_ipt:ipvs.ipt; do
			awk -f "$GEN" -v fmt="${f%%:*}" -v n="$n" -v e="$E" -v measured=1 -v pod="$POD1B_IP" \
				-v node_ip="$NODE1_IP" >"$KXE_TMP/${f#*:}"
		done
	fi
	rm -rf "$KXE_MANIFESTS"
	mkdir -p "$KXE_MANIFESTS"
	cp deploy/examples/nodes.yaml "$KXE_MANIFESTS/"
	awk -f "$GEN" -v fmt=yaml -v n="$n" -v e="$E" -v measured=1 -v pod="$POD1B_IP" >"$KXE_MANIFESTS/services.yaml"
	SYNC_ARGS=()
	[ $((n * E + 1024)) -gt 262144 ] && SYNC_ARGS=(--max-backends $((n * E + 1024)) --max-slots $((2 * n * E)))
	# two frontends a service (port and wildcard) past the default 65,536
	[ $((2 * n + 1024)) -gt 65536 ] && SYNC_ARGS+=(--max-frontends $((2 * n + 1024)))
	# the peers' tables from nothing (previous point's removed first)
	for t in iptables-legacy iptables-nft; do
		command -v "$t" >/dev/null || continue
		for tb in nat filter; do n1 "$t" -w -t "$tb" -F; n1 "$t" -w -t "$tb" -X; done
	done
	n1 nft delete table ip kube-proxy 2>/dev/null
	ipvs_unload
	loads='{}'
	skip=()
	for p in "${PEERS[@]}"; do
		if [ "$n" -gt "$PEER_MAX_N" ]; then
			skip+=("$p")
			continue
		fi
		case $p in
		nftables) timed_run "$T" "" l nsenter --net="/run/netns/$NS_N1" nft -f "$KXE_TMP/rules.nft" ;;
		ipvs) timed_run "$T" "" l nsenter --net="/run/netns/$NS_N1" bash "$KXE_TMP/ipvs-load.sh" ;;
		*) timed_run "$T" "" l nsenter --net="/run/netns/$NS_N1" "$(ipt_tool "$p")-restore" <"$KXE_TMP/rules.ipt" ;;
		esac
		loads=$(jq -c --arg p "$p" --argjson l "$l" '. + {($p): $l}' <<<"$loads")
		if ! jq -e '.rc == 0' <<<"$l" >/dev/null; then
			skip+=("$p")
			echo "== peerconn N=$n: $p did not load within ${T}s: not measured" >&2
		fi
		peer_off "$p" 2>/dev/null
	done
	active=()
	for m in "${MODES[@]}"; do
		[[ " ${skip[*]} " == *" $m "* ]] || active+=("$m")
	done
	# warm-up: one short run of each measurement, each mode
	for m in "${active[@]}"; do
		mode_on "$m" || die "mode $m could not be switched on: $(head -c 300 "$KXE_TMP/sync-node1.out" 2>/dev/null)"
		for x in $(mode_meas "$m"); do measure "$n" "$m" "$x" warmup 0.2; done
		mode_off "$m"
	done
	for rep in $(seq "$reps"); do
		while read -r m; do
			echo "== peerconn N=$n rep $rep $m" >&2
			mode_on "$m" || die "mode $m could not be switched on"
			for x in $(mode_meas "$m"); do measure "$n" "$m" "$x" "$rep" "$dur"; done
			mode_off "$m" "$n" "$rep"
		done < <(alternate "$rep" "${active[@]}")
	done
	jq -nc --argjson n "$n" --argjson e "$E" --argjson l "$loads" --argjson s "$(printf '%s\n' "${skip[@]}" | jq -R 'select(. != "")' | jq -sc .)" \
		'{n: $n, e: $e, peer_load: $l, not_measured: $s}' >>"$points"
done
elapsed=$(($(date +%s) - t_start))

jq -n --slurpfile runs "$runs" --slurpfile points "$points" --slurpfile counters "$counters" --arg dur "$dur" --argjson conc "$conc" \
	--argjson reps "$reps" --argjson cli "$cli_cpu" --argjson srv "$srv_cpu" --argjson el "$elapsed" \
	--arg ipvs "$IPVS" --argjson T "$T" --argjson pmax "$PEER_MAX_N" "$JQ_STATS"'
def ceil_of($x): if ($x | startswith("np_")) then "ext" elif $x == "keepalive" then "keepalive" else "pod" end;
def pair($a; $b; $f): [ $a[] as $r | $b[] | select(.rep == $r.rep) | select(.[$f] > 0) | $r[$f] / .[$f] ] | smm;
{
  scenario: "peerconn", elapsed_s: $el, ipvs: $ipvs, load_timeout_s: $T, peer_max_n: $pmax,
  settings: {duration_s: ($dur | tonumber), concurrency: $conc, reps: $reps, client_cpu: $cli, server_cpu: $srv,
    timeout_ms: 1000, client_sysctls: "tcp_tw_reuse=1, ip_local_port_range 10000 65000, tcp_max_tw_buckets 4096",
    switching: "peer tables loaded once per N; a mode is on while its hook jumps exist (kxp: kxp sync / kxp cleanup)"},
  points: [ $points[] as $p | $p + {
    kxp_counters: ([$counters[] | select(.n == $p.n)] | group_by(.mode) | map({key: .[0].mode,
      value: (map(.counters | to_entries[]) | group_by(.key) | map({key: .[0].key, value: (map(.value) | add)}) | from_entries)})
      | from_entries),
    meas: ([$runs[] | select(.n == $p.n) | .meas] | unique | map(. as $x | {key: $x, value: (
      [$runs[] | select(.n == $p.n and .meas == $x)] as $rx |
      ([$rx[] | .mode] | unique) | map(. as $m | [$rx[] | select(.mode == $m)] as $rs |
        [$runs[] | select(.n == $p.n and .mode == "ceiling" and .meas == ceil_of($x))] as $cs |
        [$rx[] | select(.mode == "kxp")] as $ks | [$rx[] | select(.mode == "kxp-sock")] as $ss | {key: $m, value: {
        conns_per_s: ([$rs[].conns_per_s] | smm), p50_us: ([$rs[].p50_us] | smm),
        p99_us: ([$rs[].p99_us] | smm), p999_us: ([$rs[].p999_us] | smm),
        errors: ([$rs[].errors | to_entries[] | .value] | add),
        dev_drops: ([$rs[].dev_drops // 0] | add),
        vs_ceiling: (if $m == "ceiling" then null else {conns_per_s: pair($rs; $cs; "conns_per_s"), p99: pair($rs; $cs; "p99_us")} end),
        kxp_vs_this: (if ($m | startswith("kxp")) or $m == "ceiling" then null else {conns_per_s: pair($ks; $rs; "conns_per_s"), p99: pair($ks; $rs; "p99_us")} end),
        kxp_sock_vs_this: (if ($m | startswith("kxp")) or $m == "ceiling" or ($ss | length) == 0 then null else {conns_per_s: pair($ss; $rs; "conns_per_s"), p99: pair($ss; $rs; "p99_us")} end),
        runs: [$rs[] | {rep, conns_per_s, p50_us, p99_us, p999_us, errors, dev_drops}]
      }}) | from_entries)}) | from_entries)
  } ]
}' >"$json" || die "summary failed"

{
	echo "## peerconn: connections/s and connect latency, kxp vs kube-proxy's layouts vs the ceiling"
	echo
	echo "The e2e 2-node topology; bench/connload, $conc connections in flight, ${dur} s per run, client pinned to CPU"
	echo "$cli_cpu, server (pod1b) to CPU $srv_cpu; $reps runs per point, modes alternating. Per N: N services ($E endpoints"
	echo "each for the N-4 fillers; the 4 measured services, programmed first and last, have pod1b as their one"
	echo "endpoint). *ceiling*: straight to the pod (nothing translated). cip_first/cip_last: pod1a -> ClusterIP of the"
	echo "first/last-programmed service; np_cluster/np_local: ext -> NodePort eTP=Cluster/Local; keepalive:"
	echo "requests/s over $conc open connections to cip_first (latency per request). kxp-tc: kxp with XDP off."
	echo "kxp-sock: kxp with its default --socket-lb all (pods' TCP translated at connect(); the client runs in the"
	echo "cgroup the hooks are attached to, as every mode's client does)."
	echo "Medians (min–max); ratios per run pair. *device drops*: packets dropped (rx + tx) on every link of the client, node1, fabric and server namespaces during the runs, summed. IPVS: $IPVS."
	jq -r --argjson T "$T" --argjson pmax "$PEER_MAX_N" "$JQ_STATS"'
	.points[] | . as $p |
	"\n### N = \(.n)\n",
	"Peer loads: \(.peer_load | to_entries | map("\(.key) \(if .value.timed_out then "> \($T) s" elif .value.rc != 0 then "failed (\(.value.err | .[0:120]))" else "\(.value.ms | round) ms" end)") | join(", "))\(if (.not_measured | length) > 0 then "; not measured: \(.not_measured | join(", ")) (\(if .n > $pmax then "peers are measured up to N = \($pmax)" else "load failed or > \($T) s" end))" else "" end)\n",
	"| measurement | mode | conns/s (req/s) | p50 µs | p99 µs | p99.9 µs | errors | device drops | /ceiling conns/s | /ceiling p99 | kxp/this conns/s | kxp/this p99 | kxp-sock/this conns/s | kxp-sock/this p99 |",
	"|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
	(.meas | to_entries[] | .key as $x | .value | to_entries[] |
	 "| \($x) | \(.key) | \(.value.conns_per_s | r) | \(.value.p50_us | r) | \(.value.p99_us | r) | \(.value.p999_us | r) | \(.value.errors) | \(.value.dev_drops) | \(.value.vs_ceiling.conns_per_s // null | r) | \(.value.vs_ceiling.p99 // null | r) | \(.value.kxp_vs_this.conns_per_s // null | r) | \(.value.kxp_vs_this.p99 // null | r) | \(.value.kxp_sock_vs_this.conns_per_s // null | r) | \(.value.kxp_sock_vs_this.p99 // null | r) |"),
	(.kxp_counters | to_entries[] | "\nkxp counters, \(.key), summed over the \($p.n | tostring)-service runs: \(.value | to_entries | map("\(.key) \(.value)") | join(", "))")
	' "$json"
} >"$md" || die "markdown failed"
exit 0
