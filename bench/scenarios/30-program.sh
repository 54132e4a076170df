#!/usr/bin/env bash
# Scenario "program": programming time from nothing, kernel memory and tool
# RSS, then one endpoint change, for N services x E endpoints: kxp (`kxp sync`,
# per lb algorithm it accepts) against kube-proxy's iptables layout (legacy and
# nft-backed iptables-restore, full and partial reloads) and nftables layout
# (nft -f). Each run loads into a fresh network namespace the script creates.
# Called by bench/run.sh: 30-program.sh --json FILE --md FILE --reps N [--quick]
set -uo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../lib/common.sh
source bench/lib/common.sh
bench_args "$@"

if [ "$quick" = 1 ]; then
	NS_LIST=(1 1000) E=4 T=30
else
	NS_LIST=(1 1000 10000 30000) E=10 T=60
fi
[ -n "${PROGRAM_N:-}" ] && read -r -a NS_LIST <<<"$PROGRAM_N"
[ -x "$build/kxp" ] || { echo "30-program.sh: $build/kxp missing (make all)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/kxpbench-prog.XXXXXX)
NS_CUR= INST_CUR= CG_CUR=
cleanup()
{
	[ -n "$INST_CUR" ] && { "$build/kxp" --netns "$NS_CUR" cleanup --instance "$INST_CUR" >/dev/null 2>&1; rm -rf "/sys/fs/bpf/kxp-$INST_CUR"; }
	[ -n "$NS_CUR" ] && ip netns del "$NS_CUR" 2>/dev/null
	memcg_del "$CG_CUR"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mapfile -t ALGOS < <(kxp_algorithms)
[ ${#ALGOS[@]} -gt 0 ] || { echo "30-program.sh: kxp sync accepts no lb algorithm here" >&2; exit 1; }
MODES=()
for a in "${ALGOS[@]}"; do MODES+=("kxp-$a"); done
MODES+=("${PEERS[@]}")
IPVS=$(ipvs_status)
# kube-proxy's IPVS layout is measured for connections/s (peerconn, and the
# ipvs scenario in a Debian guest); its programming time is not measured here
[ "$IPVS" = available ] && IPVS="not measured here (peerconn measures its connections/s)"
runs=$tmp/runs.jsonl
: >"$runs"
declare -A SKIP

# kxp_mem INST: bytes_memlock summed over the instance's pinned maps.
kxp_mem()
{
	local f sum=0 b
	for f in /sys/fs/bpf/kxp-"$1"/*; do
		b=$(bpftool -j map show pinned "$f" 2>/dev/null | jq -r '.bytes_memlock // empty' 2>/dev/null)
		[ -n "$b" ] && sum=$((sum + b))
	done
	echo "$sum"
}

run_one() # MODE N REP
{
	local mode=$1 n=$2 rep=$3 load chg full=null kmem mem=null writes=null sargs out stages=null
	NS_CUR=kxpprog-$$-$RANDOM
	ip netns add "$NS_CUR" || return 1
	CG_CUR=$(memcg_new)
	case $mode in
	kxp-*)
		INST_CUR=kxpprog$$$RANDOM
		sargs=(--node-name node1 --node-ip 198.51.100.1 --cluster-cidr 10.244.0.0/16 --service-cidr 10.96.0.0/12
			--lb-algorithm "${mode#kxp-}")
		[ $((n * E + 1024)) -gt 262144 ] && sargs+=(--max-backends $((n * E + 1024)) --max-slots $((2 * n * E)))
		timed_run "$T" "$CG_CUR" load "$build/kxp" --netns "$NS_CUR" sync --instance "$INST_CUR" \
			--from-file "$tmp/y$n" "${sargs[@]}"
		kmem=$(memcg_kmem "$CG_CUR")
		mem=$(kxp_mem "$INST_CUR")
		# the change: a sync of the changed manifests, a diff of all N
		TR_STDOUT=$tmp/chg.json timed_run "$T" "" chg "$build/kxp" --netns "$NS_CUR" sync -o json \
			--instance "$INST_CUR" --from-file "$tmp/yc$n" "${sargs[@]}"
		writes=$(jq '.applied.writes // null' "$tmp/chg.json" 2>/dev/null || echo null)
		[ -n "$writes" ] || writes=null
		"$build/kxp" --netns "$NS_CUR" cleanup --instance "$INST_CUR" >/dev/null 2>&1
		rm -rf "/sys/fs/bpf/kxp-$INST_CUR"
		INST_CUR=
		# the same work stage by stage, datapath loaded once (the agent's steady state)
		out=$(timeout "$T" "$build/bench/progtime" --state "$tmp/y$n" --changed "$tmp/yc$n" --algo "${mode#kxp-}" \
			$([ $((n * E + 1024)) -gt 262144 ] && echo --max-backends $((n * E + 1024))) 2>/dev/null)
		jq -e . <<<"$out" >/dev/null 2>&1 && stages=$out
		;;
	iptables-legacy | iptables-nft)
		local tool
		[ "$mode" = iptables-legacy ] && tool=iptables-legacy-restore || tool=iptables-nft-restore
		timed_run "$T" "$CG_CUR" load nsenter --net="/run/netns/$NS_CUR" "$tool" <"$tmp/ipt$n"
		kmem=$(memcg_kmem "$CG_CUR")
		timed_run "$T" "" chg nsenter --net="/run/netns/$NS_CUR" "$tool" --noflush <"$tmp/iptp$n"
		timed_run "$T" "" full nsenter --net="/run/netns/$NS_CUR" "$tool" <"$tmp/iptc$n"
		;;
	nftables)
		timed_run "$T" "$CG_CUR" load nsenter --net="/run/netns/$NS_CUR" nft -f "$tmp/nft$n"
		kmem=$(memcg_kmem "$CG_CUR")
		timed_run "$T" "" chg nsenter --net="/run/netns/$NS_CUR" nft -f "$tmp/nftp$n"
		;;
	esac
	ip netns del "$NS_CUR"
	NS_CUR=
	memcg_del "$CG_CUR"
	CG_CUR=
	jq -nc --arg m "$mode" --argjson n "$n" --argjson e "$E" --argjson rep "$rep" --argjson load "$load" \
		--argjson chg "$chg" --argjson full "$full" --argjson kmem "${kmem:-null}" --argjson mem "${mem:-null}" \
		--argjson w "${writes:-null}" --argjson st "$stages" \
		'{mode: $m, n: $n, e: $e, rep: $rep, load: $load, kernel_bytes: $kmem, bpf_memlock_bytes: $mem,
		  change: $chg, change_full_reload: $full, change_writes: $w, kxp_stages: $st}' >>"$runs"
	if jq -e '.timed_out' <<<"$load" >/dev/null; then
		SKIP[$mode]="load exceeded ${T}s at N=$n"
	elif ! jq -e '.rc == 0' <<<"$load" >/dev/null; then
		SKIP[$mode]="load failed at N=$n"
	fi
}

t_start=$(date +%s)
for n in "${NS_LIST[@]}"; do
	# Inputs for this N: the state, the state with one endpoint of the middle
	# service replaced, and each peer's partial update.
	nf=$n
	chg=$((nf / 2))
	for f in ipt nft; do awk -f "$GEN" -v fmt=$f -v n="$n" -v e="$E" >"$tmp/$f$n"; done
	awk -f "$GEN" -v fmt=ipt -v n="$n" -v e="$E" -v chg="$chg" >"$tmp/iptc$n"
	awk -f "$GEN" -v fmt=ipt_partial -v n="$n" -v e="$E" -v chg="$chg" >"$tmp/iptp$n"
	awk -f "$GEN" -v fmt=nft_partial -v n="$n" -v e="$E" -v chg="$chg" >"$tmp/nftp$n"
	mkdir -p "$tmp/y$n" "$tmp/yc$n"
	awk -f "$GEN" -v fmt=yaml -v n="$n" -v e="$E" >"$tmp/y$n/services.yaml"
	awk -f "$GEN" -v fmt=yaml -v n="$n" -v e="$E" -v chg="$chg" >"$tmp/yc$n/services.yaml"
	for rep in $(seq "$reps"); do
		while read -r m; do
			if [ -n "${SKIP[$m]:-}" ]; then
				jq -nc --arg m "$m" --argjson n "$n" --argjson e "$E" --argjson rep "$rep" --arg why "${SKIP[$m]}" \
					'{mode: $m, n: $n, e: $e, rep: $rep, skipped: $why}' >>"$runs"
				continue
			fi
			echo "== program N=$n E=$E rep $rep $m" >&2
			run_one "$m" "$n" "$rep" || echo "run $m N=$n failed" >&2
		done < <(alternate "$rep" "${MODES[@]}")
	done
	rm -rf "$tmp"/*"$n" "$tmp/y$n" "$tmp/yc$n"
done
elapsed=$(($(date +%s) - t_start))

tools=$(for p in "${PEERS[@]}"; do jq -nc --arg p "$p" --arg t "$(peer_tool "$p")" '{($p): $t}'; done | jq -sc add)
jq -n --slurpfile runs "$runs" --argjson el "$elapsed" --argjson T "$T" --argjson E "$E" --arg ipvs "$IPVS" \
	--argjson tools "$tools" --argjson modes "$(printf '%s\n' "${MODES[@]}" | jq -R . | jq -sc .)" "$JQ_STATS"'
def ok: select(.skipped == null and .load.timed_out == false and .load.rc == 0);
{
  scenario: "program", elapsed_s: $el, timeout_s: $T, endpoints_per_service: $E, modes: $modes,
  peer_tools: $tools, ipvs: $ipvs, memcg: "kernel memory charged to the loader'"'"'s memory cgroup",
  points: ([$runs[] | .n] | unique | map(. as $n | {n: $n, modes: ($modes | map(. as $m |
    [$runs[] | select(.n == $n and .mode == $m)] as $rs | {key: $m, value: {
      runs: ($rs | length),
      skipped: ([$rs[] | .skipped // empty] | first),
      timed_out: ([$rs[] | select(.load.timed_out == true)] | length),
      load_ms: ([$rs[] | ok | .load.ms] | smm),
      kernel_mb: ([$rs[] | ok | .kernel_bytes | if . == null then null else . / 1048576 end] | smm),
      bpf_memlock_mb: ([$rs[] | ok | .bpf_memlock_bytes | if . == null then null else . / 1048576 end] | smm),
      tool_rss_mb: ([$rs[] | ok | .load.rss_kb | if . == null then null else . / 1024 end] | smm),
      change_ms: ([$rs[] | ok | .change.ms] | smm),
      change_full_reload_ms: ([$rs[] | ok | .change_full_reload.ms // empty] | smm),
      change_writes: ([$rs[] | ok | .change_writes // empty] | smm),
      stages: (if ($rs | map(.kxp_stages // empty) | length) > 0 then
        ([$rs[] | .kxp_stages // empty] as $ss | ["decode_ms", "model_ms", "dp_open_ms", "apply_ms", "writes", "syscalls",
          "change_decode_ms", "change_model_ms", "change_apply_ms", "change_writes"] |
          map(. as $k | {key: $k, value: ([$ss[] | .[$k]] | smm)}) | from_entries) else null end),
      errors: [$rs[] | select(.load.rc != 0 and .load.rc != null and .load.timed_out == false) | .load.err] | unique
    }}) | from_entries)}) | map(. as $p | $p + {ratios: ([$modes[] | select(startswith("kxp-"))] | map(. as $k | {key: $k,
      value: ([$modes[] | select(startswith("kxp-") | not)] | map(. as $m | {key: $m, value: (
        [$runs[] | select(.n == $p.n and .mode == $k) | ok] as $ks |
        [$ks[] as $kr | $runs[] | select(.n == $p.n and .mode == $m and .rep == $kr.rep) | ok | .load.ms as $pm |
         if $pm > 0 then $kr.load.ms / $pm else empty end] | smm)}) | from_entries)}) | from_entries)})),
  runs: $runs
}' >"$json" || { echo "30-program.sh: summary failed" >&2; exit 1; }

{
	echo "## program: programming time, memory, one endpoint change"
	echo
	echo "N services x $E endpoints (ClusterIP, TCP), each run into a fresh network namespace; modes alternate"
	echo "(forward on odd runs, reversed on even ones); $reps runs per point; medians (min–max). *load*: from"
	echo "nothing to programmed (kxp: \`kxp sync\` of the manifests, YAML parsing included, no device attached;"
	echo "iptables: \`iptables-restore\` of kube-proxy's ruleset; nftables: \`nft -f\` of kube-proxy's table);"
	echo "*kernel MB*: kernel memory charged to the loader's memory cgroup after it exited (rule blobs, nft"
	echo "objects, BPF maps); *BPF memlock MB*: bpftool's bytes_memlock of the instance's maps; *tool RSS*: the"
	echo "loader's peak RSS. *change*: one endpoint of the middle service replaced (kxp: \`kxp sync\` of the changed"
	echo "manifests, a diff of all N; iptables: kube-proxy's partial restore with --noflush, top-level chains in"
	echo "full; nftables: the one-service transaction); *full reload*: the whole changed ruleset again. Loads are"
	echo "capped at ${T} s and shown as \"> ${T} s\"; a mode that exceeds it or fails is not run again at that or a larger N."
	echo "IPVS: $IPVS. Peer tools: $(jq -r 'to_entries | map("\(.key) = \(.value)") | join("; ")' <<<"$tools")."
	jq -r --argjson T "$T" --arg ipvs "$IPVS" "$JQ_STATS"'
	def ms: if . == null then "-" else "\(.median | f) (\(.min | f)–\(.max | f))" end;
	.points[] | . as $p |
	"\n### N = \($p.n)\n",
	"| mode | load ms | kernel MB | BPF memlock MB | tool RSS MB | change ms | full reload ms | kxp-random/peer load time |",
	"|---|---|---|---|---|---|---|---|",
	(.modes | to_entries[] | .key as $m | .value as $v |
	  if $v.skipped then "| \($m) | not run: \($v.skipped) | | | | | | |"
	  elif $v.timed_out > 0 and $v.load_ms == null then "| \($m) | > \($T) s | | | | | | |"
	  elif $v.load_ms == null and ($v.errors | length) > 0 then "| \($m) | failed: \($v.errors | join("; ") | gsub("\n"; " ") | .[0:160]) | | | | | | |"
	  else "| \($m) | \($v.load_ms | ms)\(if $v.timed_out > 0 then " (\($v.timed_out) run(s) > \($T) s)" else "" end) | \($v.kernel_mb | r) | \($v.bpf_memlock_mb | r) | \($v.tool_rss_mb | r) | \($v.change_ms | ms)\(if $v.change_writes then " (\($v.change_writes.median) map writes)" else "" end) | \($v.change_full_reload_ms | ms) | \(($p.ratios["kxp-random"] // {})[$m] | r) |" end),
	"| ipvs | \($ipvs) | | | | | | |",
	"\nkxp stage by stage (bench/progtime: the library calls of `kxp sync`, BPF objects loaded once as the agent does): ",
	"\n| mode | decode ms | model ms | BPF load ms (once) | map writes into empty maps: ms (entries, bpf() calls) | change: decode + model ms | change: diff + write ms (writes) |",
	"|---|---|---|---|---|---|---|",
	(.modes | to_entries[] | select(.value.stages) | .key as $m | .value.stages as $s |
	  "| \($m) | \($s.decode_ms | r) | \($s.model_ms | r) | \($s.dp_open_ms | r) | \($s.apply_ms | r) (\($s.writes.median), \($s.syscalls.median // "-")) | \(($s.change_decode_ms.median + $s.change_model_ms.median) | f) | \($s.change_apply_ms | r) (\($s.change_writes.median)) |")
	' "$json"
} >"$md" || { echo "30-program.sh: markdown failed" >&2; exit 1; }
exit 0
