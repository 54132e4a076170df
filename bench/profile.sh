#!/usr/bin/env bash
# Where the datapath's time goes: software-sampled kernel profile (perf,
# cpu-clock) of pktbench's passes, split per path and mode, plus a bpf_stats
# cross-check. See docs/benchmarks.md, "Where the time goes".
#
# usage: bench/profile.sh [--services N] [--reps R] [--flows F] [--repeat R]
#                         [--freq HZ] [--out DIR] [--no-stats]
# Needs root, perf and the build (KXP_BUILD, default build/). Nothing leaves
# BPF_PROG_TEST_RUN; the namespace is the pktbench scenario's, removed on exit.
#
# Why uprobes: the VM has no hardware counters and no kprobe events, and
# pktbench runs every path and mode in one process. Two uprobes on pktbench's
# own pass_single()/pass_packets() (their first argument is the program fd,
# the second the path, the third the packet array: its first packet's TCP
# flags tell SYN pass from ACK pass) mark where each pass starts, so every
# cpu-clock sample is attributed to the pass that was running. Only the
# start of a pass is needed, so the kernel dropping some probe hits under
# load does not matter.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${KXP_BUILD:-build}
pb=$(readlink -f "$build/bench/pktbench")

services=1 reps=3 flows=65536 repeat=1000000 freq=10000 out= stats=1
while [ $# -gt 0 ]; do
	case $1 in
	--services) services=$2; shift 2 ;;
	--reps) reps=$2; shift 2 ;;
	--flows) flows=$2; shift 2 ;;
	--repeat) repeat=$2; shift 2 ;;
	--freq) freq=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--no-stats) stats=0; shift ;;
	*) echo "profile.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "profile.sh: needs root" >&2; exit 1; }
command -v perf >/dev/null || { echo "profile.sh: perf missing (apt-get install linux-perf)" >&2; exit 1; }
[ -x "$pb" ] || { echo "profile.sh: $pb missing (make all)" >&2; exit 1; }
out=${out:-bench/results/profile-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
out=$(readlink -f "$out")

# The last CPU this shell may use (pktbench's own default: CPU 0 takes most interrupts).
cpu=$(awk '/^Cpus_allowed_list/ { n = split($2, a, /[,-]/); print a[n] }' /proc/self/status)

ns=kxpprof-$$-$RANDOM
grp=kxpprof$(echo $$ | tr 0-9 a-j) # the event parser takes no digits here
tracefs_mounted=0
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
poller=
cleanup() {
	[ -n "$poller" ] && kill "$poller" 2>/dev/null
	sysctl -qw kernel.bpf_stats_enabled="$old_stats" || true
	perf probe -q -d "$grp:*" 2>/dev/null || true
	[ "$tracefs_mounted" = 1 ] && umount /sys/kernel/tracing 2>/dev/null
	ip netns del "$ns" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The pktbench scenario's namespace (bench/lib/pktns.sh).
# (the working directory is the repository root here)
# shellcheck source=lib/pktns.sh
source bench/lib/pktns.sh
pktbench_netns "$ns"

if [ ! -e /sys/kernel/tracing/uprobe_events ]; then
	mount -t tracefs tracefs /sys/kernel/tracing
	tracefs_mounted=1
fi
perf probe -q -x "$pb" -a "$grp:packets=pass_packets fd=%di:s32 path=%si:s32 fl=+47(%dx):u8"
perf probe -q -x "$pb" -a "$grp:single=pass_single fd=%di:s32 path=%si:s32"

pbargs=(--services "$services" --reps "$reps" --repeat "$repeat" --flows "$flows" --cpu "$cpu"
	--ext-if ext0 --pod-if pod0)

# 1. The profile: cpu-clock samples with kernel call chains, plus the pass markers.
echo "profile.sh: perf record, N=$services, $reps runs, $flows flows, repeat $repeat, CPU $cpu" >&2
nsenter --net="/run/netns/$ns" perf record -q -o "$out/perf.data" -F "$freq" -g -e cpu-clock \
	-e "$grp:packets/call-graph=no/" -e "$grp:single/call-graph=no/" -- \
	"$pb" "${pbargs[@]}" --json "$out/pktbench-perf.json" --md "$out/pktbench-perf.md" 2>"$out/pktbench-perf.log"

# 2. Cross-check: the kernel's own per-program run time (kernel.bpf_stats_enabled),
# from a separate run (the accounting itself costs two clock reads per run).
if [ "$stats" = 1 ]; then
	echo "profile.sh: bpf_stats run" >&2
	sysctl -qw kernel.bpf_stats_enabled=1
	(while :; do bpftool -j prog show 2>/dev/null; echo; sleep 0.2; done) >"$out/bpfstats.raw" &
	poller=$!
	nsenter --net="/run/netns/$ns" "$pb" "${pbargs[@]}" --reps 1 --json "$out/pktbench-stats.json" \
		--md "$out/pktbench-stats.md" 2>"$out/pktbench-stats.log"
	kill "$poller"; wait "$poller" 2>/dev/null || true; poller=
	sysctl -qw kernel.bpf_stats_enabled="$old_stats"
	# last seen run_time_ns/run_cnt per program id, summed per name
	jq -s -r '[.[][] | select(.name != null and (.name | test("^(kxp_|floor_)")) and .run_cnt != null)]
		| group_by(.id) | map(max_by(.run_cnt)) | group_by(.name)
		| map({name: .[0].name, ns: (map(.run_time_ns) | add), cnt: (map(.run_cnt) | add)})
		| .[] | "\(.name)\t\(.cnt)\t\(.ns)\t\(if .cnt > 0 then (.ns / .cnt * 10 | round / 10) else 0 end)"' \
		"$out/bpfstats.raw" >"$out/bpfstats.tsv" || true
fi

# 3. Attribution. Each sample goes to the pass whose marker came last; inside a
# program it is charged to the program body (leaf in BPF code) or, inclusively,
# to the kernel function the BPF code called (a helper, or the map function a
# lookup was inlined to).
perf script -i "$out/perf.data" -F pid,event,trace,ip,sym 2>/dev/null >"$out/perf.script"
awk -v out="$out" '
function flush(   i, n, prog, inner, cat, sub_) {
	if (!have || !pass)
		return;
	n = nf; inner = -1; prog = "";
	for (i = 1; i <= n; i++)
		if (fr[i] ~ /^bpf_prog_[0-9a-f]+_/) {
			if (inner < 0)
				inner = i;
			prog = fr[i];
		}
	sub(/^bpf_prog_[0-9a-f]+_/, "", prog);
	if (prog !~ /^(kxp_xdp|kxp_tc_ingress|floor_xdp|floor_tc)$/)
		prog = pass_prog[pass]; # unwinding stopped in a subprogram
	timed = 0;
	for (i = 1; i <= n; i++)
		if (fr[i] == "bpf_test_run") timed = 1;
	if (inner < 0) {
		if (timed)
			cat = "test_run loop, outside the program: " fr[1];
		else
			cat = "untimed: " fr[1];
	} else if (inner == 1) {
		sub_ = fr[1]; sub(/^bpf_prog_[0-9a-f]+_/, "", sub_);
		cat = "BPF code (self): " sub_;
	} else {
		cat = "call: " fr[inner - 1];
		# __htab_map_lookup_elem tail-calls its bucket walk: one lookup either way
		if (cat == "call: lookup_nulls_elem_raw")
			cat = "call: __htab_map_lookup_elem";
	}
	if (prog == "")
		return;
	if (inner > 0)
		pass_prog[pass] = prog;
	key = pass SUBSEP prog;
	if (!timed)
		untimed[key]++;
	if (!timed)
		return; # not in test_run duration: syscall entry, copies, skb/xdp_buff setup
	tot[key]++;
	if (inner > 0) intot[key]++;
	c[key, cat]++;
	if (inner > 1) leaf[key, fr[1]]++;
	keys[key] = 1;
}
/^ *[0-9]+ +[^ ]+:(packets|single):/ || /^ *[0-9]+ +cpu-clock:/ {
	flush(); have = 0; nf = 0;
	if ($2 ~ /:packets:$/ || $2 ~ /:single:$/) {
		path = ""; fl = -1;
		for (i = 3; i <= NF; i++) {
			if ($i ~ /^path=/) path = substr($i, 6) + 0;
			if ($i ~ /^fl=/) fl = substr($i, 4) + 0;
		}
		mode = $2 ~ /:single:$/ ? "single" : (fl != 2 ? "established" : (path >= 3 ? "per_packet" : "new"));
		pass = pname[path] " " mode;
		next;
	}
	have = 1;
	next;
}
/^\t/ || /^ +[0-9a-f]+ / { if (have) { nf++; fr[nf] = $2 } next }
END {
	flush();
	for (key in keys) {
		split(key, kp, SUBSEP);
		f = out "/group." kp[2] "." kp[1];
		gsub(/[^A-Za-z0-9_.|-]/, "_", f);
		printf "%s\t%s\t%d\t%d\t%d\n", kp[1], kp[2], tot[key], intot[key], untimed[key] > (out "/groups.tsv");
		for (ck in c) {
			split(ck, cp, SUBSEP);
			if (cp[1] SUBSEP cp[2] == key)
				printf "%s\t%s\t%s\t%d\n", kp[1], kp[2], cp[3], c[ck] > (out "/cats.tsv");
		}
		for (lk in leaf) {
			split(lk, lp, SUBSEP);
			if (lp[1] SUBSEP lp[2] == key)
				printf "%s\t%s\t%s\t%d\n", kp[1], kp[2], lp[3], leaf[lk] > (out "/leaves.tsv");
		}
	}
}
BEGIN {
	# pktbench.c enum path_id, named as in its JSON
	pname[0] = "pod_clusterip"; pname[1] = "ext_nodeport_local_xdp"; pname[2] = "ext_nodeport_local_tc";
	pname[3] = "nonservice_xdp"; pname[4] = "nonservice_tc";
}' "$out/perf.script"

# 4. Report: per pass of a kxp program, where its samples inside test_run's
# timed loop went, and that share of pktbench's in-kernel ns per packet (the
# median of the same run; its `duration` is exactly that loop).
{
	echo "# Profile: N=$services, $reps runs, $flows flows, single-flow repeat $repeat, CPU $cpu, cpu-clock at $freq Hz"
	echo
	echo "Per pass: samples inside test_run's timed loop (program + loop), their share, and that share"
	echo "of pktbench's kxp ns/packet in this run (perf running: a little above a quiet run)."
	echo "\"call: F\" is inclusive (F and what it calls); \"BPF code\" is the JITed program itself."
	echo
	sort -t$'\t' -k1,1 -k2,2 "$out/groups.tsv" | while IFS=$'\t' read -r pass prog tot intot untimed; do
		case $prog in kxp_*) ;; *) continue ;; esac
		read -r id mode <<<"$pass"
		kns=$(jq -r --arg id "$id" --arg m "$mode" \
			'[.points[0].cases[] | select(.id == $id and .mode == $m)][0] | "\(.kxp_ns.median) \(.floor_ns.median)"' \
			"$out/pktbench-perf.json")
		read -r kxp_ns floor_ns <<<"$kns"
		echo "## $id, $mode ($prog): kxp $kxp_ns ns, floor $floor_ns ns; $tot samples timed ($intot in the program), $untimed untimed"
		echo
		echo "| where | samples | % | ≈ ns/packet |"
		echo "|---|---|---|---|"
		awk -F'\t' -v p="$pass" -v g="$prog" -v t="$tot" -v k="$kxp_ns" '
			$1 == p && $2 == g { if ($4 / t >= 0.015) printf "%d\t| %s | %d | %.1f | %.0f |\n", $4, $3, $4, 100 * $4 / t, k * $4 / t; else o += $4 }
			END { if (o) printf "0\t| other (each < 1.5%%) | %d | %.1f | %.0f |\n", o, 100 * o / t, k * o / t }' \
			"$out/cats.tsv" | sort -t$'\t' -k1,1nr | cut -f2
		echo
		echo "Leaf functions under calls: $(awk -F'\t' -v p="$pass" -v g="$prog" -v t="$tot" \
			'$1 == p && $2 == g { printf "%d\t%s %.1f%%\n", $4, $3, 100 * $4 / t }' "$out/leaves.tsv" |
			sort -rn | head -10 | cut -f2 | paste -sd, | sed 's/,/, /g')"
		echo
	done
	if [ -s "$out/bpfstats.tsv" ]; then
		echo "## bpf_stats (kernel.bpf_stats_enabled=1, separate run, every pass): program, runs, run_time_ns, ns/run"
		echo
		sed 's/^/    /' "$out/bpfstats.tsv"
	fi
} >"$out/profile.md"
echo "profile.sh: $out/profile.md" >&2
