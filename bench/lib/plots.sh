#!/usr/bin/env bash
# PNG plots of a results directory with gnuplot: programming time vs N,
# connect p99 vs N and connections/s vs N (pod -> first-programmed ClusterIP),
# one line per mode. usage: plots.sh RESULTS_DIR
set -euo pipefail
dir=$1
command -v gnuplot >/dev/null || { echo "plots.sh: gnuplot missing, no plots" >&2; exit 0; }
mkdir -p "$dir/plots"
# data MODE-FILTER JQ-EXPR OUT: one "N value" file per mode
data()
{
	local sel=$1 out=$2
	jq -r "$sel" "$dir/results.json" | while read -r mode n v; do
		[ "$v" = null ] || echo "$n $v" >>"$dir/plots/$out.$mode.dat"
	done
}
rm -f "$dir"/plots/*.dat
data '.scenarios[] | select(.scenario == "program") | .points[] | .n as $n | .modes | to_entries[] |
	"\(.key) \($n) \(.value.load_ms.median)"' prog
data '.scenarios[] | select(.scenario == "program") | .points[] | .n as $n | .modes | to_entries[] |
	select(.value.stages) | "\(.key)-map-writes \($n) \(.value.stages.apply_ms.median)"' prog
data '.scenarios[] | select(.scenario == "peerconn") | .points[] | .n as $n | .meas | to_entries[] |
	select(.key == "cip_first" or .key == "pod") | .value | to_entries[] | "\(.key) \($n) \(.value.p99_us.median)"' p99
data '.scenarios[] | select(.scenario == "peerconn") | .points[] | .n as $n | .meas | to_entries[] |
	select(.key == "cip_first" or .key == "pod") | .value | to_entries[] | "\(.key) \($n) \(.value.conns_per_s.median)"' cps
plot()
{
	local key=$1 title=$2 ylabel=$3 logy=$4 files f cmd=""
	files=$(ls "$dir"/plots/"$key".*.dat 2>/dev/null) || return 0
	[ -n "$files" ] || return 0
	for f in $files; do
		m=${f##*/"$key".}
		m=${m%.dat}
		cmd+="${cmd:+, }'$f' using 1:2 with linespoints title '$m'"
	done
	gnuplot <<GP
set terminal pngcairo size 900,560 noenhanced
set output '$dir/plots/$key.png'
set title '$title'
set xlabel 'services (N)'
set ylabel '$ylabel'
set logscale x
$([ "$logy" = 1 ] && echo 'set logscale y')
set key outside right
set grid
plot $cmd
GP
}
plot prog "Programming time from nothing vs N" "ms (median)" 1
plot p99 "Connect p99, pod -> first-programmed ClusterIP (ceiling: straight to the pod)" "p99 µs (median)" 0
plot cps "New connections/s, pod -> first-programmed ClusterIP (ceiling: straight to the pod)" "connections/s (median)" 0
ls "$dir"/plots/*.png 2>/dev/null || true
