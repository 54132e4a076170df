#!/usr/bin/env bash
# kxp benchmark runner: runs each scenario (bench/scenarios/*.sh, in name
# order), then merges their JSON and markdown fragments, with the machine's
# description, into bench/results/<UTC timestamp>/results.{json,md}.
#
# usage: bench/run.sh [--quick] [--only NAME[,NAME...]] [--reps N] [--out DIR]
#   --quick  3 runs per point (default 5) and the scenarios' smaller settings
#   --only   run only scenarios whose name (file name without NN- and .sh) is listed
#
# A scenario is an executable script called as
#   NAME.sh --json FRAGMENT.json --md FRAGMENT.md --reps N [--quick]
# that writes one JSON object ({"scenario": NAME, ...}) and a markdown section.
# Adding a scenario means adding such a script; nothing here changes.
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_BUILD=${BENCH_BUILD:-${KXP_BUILD:-build}}

quick=0 reps= only= out=
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1; shift ;;
	--reps) reps=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	-h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ -n "$reps" ] || reps=$([ "$quick" = 1 ] && echo 3 || echo 5)
# The total the project promises (quick < 10 min, full < 95 min), shared by all
# scenarios: each may use what the ones before it left.
budget=$([ "$quick" = 1 ] && echo 570 || echo 5700)

[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (BPF_PROG_TEST_RUN, network namespaces)" >&2; exit 1; }
# The peers' tools and the plotter (not in the Makefile's DEB_PKGS): installed
# here when missing, so `make bench` works on a fresh machine.
bench_pkgs=(jq iptables nftables conntrack gnuplot-nox time ipvsadm ipset)
missing=()
for p in "${bench_pkgs[@]}"; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "== installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
		{ apt-get update -qq && apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" >/dev/null; }; } ||
		echo "run.sh: could not install ${missing[*]}; scenarios that need them will fail" >&2
fi
command -v jq >/dev/null || { echo "run.sh: jq missing (make deps)" >&2; exit 1; }

ts=$(date -u +%Y%m%dT%H%M%SZ)
dir=${out:-bench/results/$ts}
mkdir -p "$dir/fragments" "$dir/logs"

# ---- the machine, recorded in every result file ---------------------------
first_line() { "$@" 2>/dev/null | head -n1 || true; }
# The datapath this kernel gets (kxp probes it before every load, as the
# scenarios' loads do): which optional capabilities are off and so which
# fallbacks every kxp figure of this run was measured with.
kxp_path()
{
	"$BENCH_BUILD/kxp" -o json status 2>/dev/null | jq -r '
		[.capabilities[] | select(.available == false and .needed_by != "core")] as $off |
		if ($off | length) == 0 then "every optional capability (bpf_loop, coarse clock, XDP metadata, set_retval)"
		else "without " + ([$off[] | "\(.name) (\(.without))"] | join("; ")) end' || echo unknown
}
machine=$(jq -n \
	--arg kernel "$(uname -r)" \
	--arg arch "$(uname -m)" \
	--arg nproc "$(nproc)" \
	--arg cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)" \
	--arg os "$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")" \
	--arg clang "$(first_line clang --version)" \
	--arg gcc "$(first_line gcc --version)" \
	--arg bpftool "$(first_line bpftool version)" \
	--arg libbpf "$(dpkg-query -W -f='${Version}' libbpf-dev 2>/dev/null || pkg-config --modversion libbpf 2>/dev/null || true)" \
	--arg kxp "$(git describe --always --dirty 2>/dev/null || echo unknown)" \
	--arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
	--arg path "$(kxp_path)" \
	'{kernel: $kernel, arch: $arch, nproc: ($nproc | tonumber), cpu_model: $cpu, os: $os,
	  clang: $clang, gcc: $gcc, bpftool: $bpftool, libbpf: $libbpf, kxp_commit: $kxp, date: $date,
	  kxp_path: $path}')
echo "$machine" >"$dir/machine.json"

# ---- scenarios -----------------------------------------------------------------
t_start=$(date +%s)
run_list=()
for s in bench/scenarios/*.sh; do
	[ -e "$s" ] || continue
	name=$(basename "$s" .sh)
	name=${name#[0-9][0-9]-}
	if [ -n "$only" ] && ! [[ ",$only," == *",$name,"* ]]; then
		continue
	fi
	run_list+=("$name")
	frag=$dir/fragments/$name
	args=(--json "$frag.json" --md "$frag.md" --reps "$reps")
	[ "$quick" = 1 ] && args+=(--quick)
	echo "== scenario $name (reps $reps$([ "$quick" = 1 ] && echo ', quick'))"
	t0=$(date +%s)
	limit=$((budget - (t0 - t_start)))
	if [ "$limit" -lt 10 ]; then
		rc=125
		echo "time budget of ${budget}s used up: not run" >"$dir/logs/$name.log"
	else
		set +e
		timeout --kill-after=10 "$limit" bash "$s" "${args[@]}" 2>&1 | tee "$dir/logs/$name.log"
		rc=${PIPESTATUS[0]}
		set -e
	fi
	secs=$(($(date +%s) - t0))
	if [ "$rc" != 0 ] || ! jq -e . "$frag.json" >/dev/null 2>&1; then
		why="exit status $rc"
		[ "$rc" = 124 ] && why="timed out after ${limit}s"
		[ "$rc" = 125 ] && why="not run: the ${budget}s time budget was used up"
		echo "== scenario $name FAILED: $why (log: $dir/logs/$name.log)"
		jq -n --arg n "$name" --arg e "$why" --arg log "logs/$name.log" \
			'{scenario: $n, error: $e, log: $log}' >"$frag.json"
		printf '## %s\n\n**Failed: %s.** See `logs/%s.log`.\n' "$name" "$why" "$name" >"$frag.md"
	fi
	jq --argjson s "$secs" '. + {elapsed_s: $s}' "$frag.json" >"$frag.json.tmp" && mv "$frag.json.tmp" "$frag.json"
done
[ ${#run_list[@]} -gt 0 ] || { echo "run.sh: no scenario matched" >&2; exit 2; }
total=$(($(date +%s) - t_start))

# ---- merge ---------------------------------------------------------------------
frags=()
for n in "${run_list[@]}"; do frags+=("$dir/fragments/$n.json"); done
jq -s --argjson machine "$machine" --arg mode "$([ "$quick" = 1 ] && echo quick || echo full)" \
	--argjson reps "$reps" --argjson total "$total" \
	'{machine: $machine, run: {mode: $mode, reps: $reps, elapsed_s: $total}, scenarios: .}' \
	"${frags[@]}" >"$dir/results.json"

{
	echo "# kxp benchmark results ($ts)"
	echo
	echo "Mode **$([ "$quick" = 1 ] && echo quick || echo full)**, $reps runs per point, ${total} s in all. Machine:"
	echo
	echo "| | |"
	echo "|---|---|"
	jq -r 'to_entries[] | "| \(.key) | \(.value) |"' <<<"$machine"
	for n in "${run_list[@]}"; do
		echo
		cat "$dir/fragments/$n.md"
	done
} >"$dir/results.md"

bash bench/lib/plots.sh "$dir" >/dev/null 2>"$dir/logs/plots.log" || echo "run.sh: plots failed (see logs/plots.log)" >&2
if ls "$dir"/plots/*.png >/dev/null 2>&1; then
	{
		echo
		echo "## Plots"
		echo
		for f in "$dir"/plots/*.png; do echo "![${f##*/}](plots/${f##*/})"; done
	} >>"$dir/results.md"
fi
echo "== results: $dir/results.md, $dir/results.json (${total} s)"
failed=$(jq '[.scenarios[] | select(.error)] | length' "$dir/results.json")
[ "$failed" = 0 ]
