#!/usr/bin/env bash
# Scenario "agent": `kxp agent` against the test API server (kxp-fake-apiserver)
# with N Services x E endpoints pre-loaded: the initial sync (agent start to
# programmed maps), event -> maps latency of one endpoint change (p50/p99 over
# many changes, seen from outside and by the agent's own metrics) and the
# agent's RSS. Everything runs in a network namespace the script creates.
# Called by bench/run.sh: 70-agent.sh --json FILE --md FILE --reps N [--quick]
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=../lib/common.sh
source bench/lib/common.sh
bench_args "$@"

if [ "$quick" = 1 ]; then
	NS_LIST=(1000 10000) E=10 CHANGES=50
else
	NS_LIST=(1000 10000 30000 50000) E=10 CHANGES=100
fi
[ -n "${AGENT_N:-}" ] && read -r -a NS_LIST <<<"$AGENT_N"
CHANGES=${AGENT_CHANGES:-$CHANGES}
# At 30,000 every metrics read (one per change) is ~13 MB of per-frontend
# counters and takes the agent a while: fewer runs there keep the scenario in
# its time (a point never has fewer than 50 changes per run).
BIG_REPS=$((reps < 2 ? reps : 2))
FAKE=$build/kxp-fake-apiserver
for f in "$build/kxp" "$FAKE" "$build/bench/agentlat"; do
	[ -x "$f" ] || { echo "70-agent.sh: $f missing (make all)" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/kxpbench-agent.XXXXXX)
ns=kxpagt-$$-$RANDOM
INST= AGENT_PID= API_PID=
stop_run()
{
	[ -n "$AGENT_PID" ] && { kill "$AGENT_PID" 2>/dev/null; wait "$AGENT_PID" 2>/dev/null; }
	[ -n "$API_PID" ] && { kill "$API_PID" 2>/dev/null; wait "$API_PID" 2>/dev/null; }
	AGENT_PID= API_PID=
	if [ -n "$INST" ]; then
		timeout 30 "$build/kxp" --netns "$ns" cleanup --instance "$INST" >/dev/null 2>&1
		rm -rf "/sys/fs/bpf/kxp-$INST"
		INST=
	fi
}
cleanup()
{
	stop_run
	ip netns del "$ns" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The node: one external device holding the node address (both veth ends in
# the namespace); the agent attaches XDP and TC there as on a real node.
ip netns add "$ns" || exit 1
ip -n "$ns" -batch - <<EOB || exit 1
link set lo up
link add ext0 type veth peer name ext0p
link set ext0 up
link set ext0p up
address add 192.168.77.2/24 dev ext0
EOB

# stamp: prefix each line with the wall clock in µs (bash's EPOCHREALTIME, no fork).
stamp() { local l; while IFS= read -r l; do printf '%s %s\n' "${EPOCHREALTIME/./}" "$l"; done; }
# log_ms FILE PATTERN: ms from the agent's start to the first log line matching PATTERN.
log_ms() { awk -v t0="$T0_US" -v p="$2" 'index($0, p) { printf "%.1f", ($1 - t0) / 1000; exit }' "$1"; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null; }
metric() { awk -v m="$2" '$1 == m { print $2 }' "$1"; }

runs=$tmp/runs.jsonl changes_all=$tmp/changes.jsonl
: >"$runs"
: >"$changes_all"

run_one() # N REP
{
	local n=$1 rep=$2 api ctrl i sync chg_stats rss hwm rss2 hwm2 mfile=$tmp/metrics
	local extra=()
	[ $((n * E + 1024)) -gt 262144 ] && extra+=(--max-backends $((n * E + 1024)) --max-slots $((2 * n * E)))
	[ $((2 * n + 1024)) -gt 65536 ] && extra+=(--max-frontends $((2 * n + 1024)))

	rm -f "$tmp/api.ready"
	# nsenter directly (not the ns_run function, which would put a subshell
	# between $! and the server): nsenter execs it, so $! is the server.
	nsenter --net="/run/netns/$ns" -- "$FAKE" --listen 127.0.0.1:0 --control 127.0.0.1:0 --ready-file "$tmp/api.ready" \
		--max-seconds 900 --load "$tmp/objs$n.json" >"$tmp/api.log" 2>&1 &
	API_PID=$!
	for i in $(seq 1200); do
		[ -s "$tmp/api.ready" ] && break
		sleep 0.1
	done
	api=$(sed -n 's/.*api=\([^ ]*\).*/\1/p' "$tmp/api.ready" 2>/dev/null)
	ctrl=$(sed -n 's/.*control=\([^ ]*\).*/\1/p' "$tmp/api.ready" 2>/dev/null)
	[ -n "$api" ] && [ -n "$ctrl" ] || { echo "fake API server did not start: $(tail -3 "$tmp/api.log")" >&2; return 1; }

	INST=kxpagt$$$RANDOM
	T0_US=${EPOCHREALTIME/./}
	"$build/kxp" --netns "$ns" agent --instance "$INST" --master "http://$api" --node-name node1 \
		--node-ip 192.168.77.2 --cluster-cidr 10.244.0.0/16 --service-cidr 10.96.0.0/12 \
		--external-dev ext0 --xdp-mode native --healthz-bind-address '' \
		--metrics-bind-address 127.0.0.1:10249 "${extra[@]}" > >(stamp >"$tmp/agent.log") 2>&1 &
	AGENT_PID=$!
	sync=$(ns_run "$ns" "$build/bench/agentlat" sync --instance "$INST" --expect $((2 * n)) \
		--t0 "${T0_US}000" --timeout 300)
	# the log line the agent prints once the full sync is written
	for i in $(seq 100); do
		grep -q 'lists complete: programmed' "$tmp/agent.log" && break
		sleep 0.05
	done
	rss=$(status_kb "$AGENT_PID" VmRSS) hwm=$(status_kb "$AGENT_PID" VmHWM)
	ns_run "$ns" curl -s -m 30 http://127.0.0.1:10249/metrics >"$mfile"

	# the changes: one endpoint removed from each of CHANGES services spread over all N
	ns_run "$ns" "$build/bench/agentlat" changes --instance "$INST" --ctrl "$ctrl" \
		--metrics 127.0.0.1:10249 --changes "$tmp/chg$n" --gap-ms 20 >"$tmp/chg.jsonl" ||
		echo "agentlat changes failed (N=$n rep $rep)" >&2
	jq -c --argjson n "$n" --argjson rep "$rep" '. + {n: $n, rep: $rep}' "$tmp/chg.jsonl" >>"$changes_all"
	rss2=$(status_kb "$AGENT_PID" VmRSS) hwm2=$(status_kb "$AGENT_PID" VmHWM)
	chg_stats=$(jq -sc 'def q(p): sort | if length == 0 then null else .[((length - 1) * p | ceil)] end;
		{changes: length, seen: ([.[] | select(.seen)] | length),
		 one_apply_each: ([.[] | select(.agent_applies == 1 and .full_syncs == 0)] | length),
		 outside_p50: ([.[] | select(.seen) | .outside_ms] | q(0.5)),
		 outside_p99: ([.[] | select(.seen) | .outside_ms] | q(0.99)),
		 post_p50: ([.[] | .post_ms] | q(0.5)),
		 agent_latency_p50: ([.[] | select(.agent_latency_events == 1) | .agent_latency_ms] | q(0.5)),
		 agent_latency_p99: ([.[] | select(.agent_latency_events == 1) | .agent_latency_ms] | q(0.99)),
		 agent_apply_p50: ([.[] | select(.agent_applies == 1) | .agent_apply_ms] | q(0.5)),
		 agent_apply_p99: ([.[] | select(.agent_applies == 1) | .agent_apply_ms] | q(0.99))}' "$tmp/chg.jsonl")

	jq -nc --argjson n "$n" --argjson e "$E" --argjson rep "$rep" --argjson sync "${sync:-null}" \
		--arg watching "$(log_ms "$tmp/agent.log" 'watching')" \
		--arg svc_list "$(log_ms "$tmp/agent.log" 'Service list complete')" \
		--arg eps_list "$(log_ms "$tmp/agent.log" 'EndpointSlice list complete')" \
		--arg programmed "$(log_ms "$tmp/agent.log" 'lists complete: programmed')" \
		--arg full_s "$(metric "$mfile" 'kxp_sync_duration_seconds_sum{mode="full"}')" \
		--arg fe "$(metric "$mfile" kxp_frontends)" --arg eps "$(metric "$mfile" kxp_endpoints)" \
		--arg synced "$(metric "$mfile" kxp_synced)" \
		--arg rss "$rss" --arg hwm "$hwm" --arg rss2 "$rss2" --arg hwm2 "$hwm2" --argjson chg "$chg_stats" \
		--arg log "$(grep -v -e 'lists complete' -e 'attached' -e 'watching' -e 'list complete' "$tmp/agent.log" | head -c 400)" '
		def num: if . == "" then null else tonumber end;
		{n: $n, e: $e, rep: $rep, sync: $sync,
		 log_ms: {bpf_loaded_watching: ($watching | num), service_list: ($svc_list | num),
			  endpointslice_list: ($eps_list | num), programmed: ($programmed | num)},
		 full_sync_ms: (($full_s | num) // null | if . == null then null else . * 1000 end),
		 frontends: ($fe | num), endpoints: ($eps | num), synced: ($synced | num),
		 rss_kb: ($rss | num), hwm_kb: ($hwm | num), rss_after_changes_kb: ($rss2 | num),
		 hwm_after_changes_kb: ($hwm2 | num), changes: $chg, other_log: $log}' >>"$runs"
	stop_run
}

t_start=$(date +%s)
for n in "${NS_LIST[@]}"; do
	# The objects (gen.awk: Services, then their EndpointSlices, one object a
	# line) and this node; then CHANGES slices, each with its last endpoint
	# removed, from services spread evenly over all N.
	{
		awk -f "$GEN" -v fmt=json -v n="$n" -v e="$E" | sed '$d'
		echo ','
		echo '{"apiVersion":"v1","kind":"Node","metadata":{"name":"node1","labels":{"topology.kubernetes.io/zone":"a"}},"status":{"addresses":[{"type":"InternalIP","address":"192.168.77.2"}]}}'
		echo ']'
	} >"$tmp/objs$n.json"
	k=$((CHANGES < n ? CHANGES : n))
	awk -v n="$n" -v k="$k" 'BEGIN { for (i = 0; i < k; i++) want[int(i * n / k)] = 1 }
		NR > 1 { j = int((NR - 2) / 2); if (j in want) { sub(/,$/, ""); print } }' "$tmp/objs$n.json" |
		jq -rc 'select(.kind == "Service") as $s | $s.spec.clusterIP' >"$tmp/ips$n"
	awk -v n="$n" -v k="$k" 'BEGIN { for (i = 0; i < k; i++) want[int(i * n / k)] = 1 }
		NR > 1 { j = int((NR - 2) / 2); if (j in want) { sub(/,$/, ""); print } }' "$tmp/objs$n.json" |
		jq -rc 'select(.kind == "EndpointSlice") | "\(.endpoints | length - 1) \(.endpoints |= .[:-1] | tojson)"' |
		paste -d ' ' "$tmp/ips$n" - | awk '{ $1 = $1 " 80"; print }' >"$tmp/chg$n"
	[ "$(wc -l <"$tmp/chg$n")" = "$k" ] || { echo "70-agent.sh: building the changes failed" >&2; exit 1; }
	nrep=$reps
	[ "$n" -gt 10000 ] && nrep=$BIG_REPS
	for rep in $(seq "$nrep"); do
		echo "== agent N=$n E=$E rep $rep" >&2
		run_one "$n" "$rep" || { echo "run N=$n rep $rep failed" >&2; stop_run; }
	done
	rm -f "$tmp/objs$n.json"
done
elapsed=$(($(date +%s) - t_start))

jq -n --slurpfile runs "$runs" --slurpfile chg "$changes_all" --argjson el "$elapsed" --argjson E "$E" \
	--argjson C "$CHANGES" "$JQ_STATS"'
def q(p): sort | if length == 0 then null else .[((length - 1) * p | ceil)] end;
{
  scenario: "agent", elapsed_s: $el, endpoints_per_service: $E, changes_per_run: $C,
  how: {initial_sync: "agent start to kxp_svc4 holding every frontend (bench/agentlat polls the pinned map), plus the agent log line times and its kxp_sync_duration_seconds{mode=\"full\"}",
        change: "one EndpointSlice with its last endpoint removed, POSTed to the test API server; outside: POST start to the service entry count in kxp_svc4 changing (polled every 20 µs); agent: the change in kxp_network_programming_duration_seconds_sum (watch event received to maps written) and kxp_sync_duration_seconds_sum{mode=\"service\"} (build + map writes of that service)",
        rss: "VmRSS and VmHWM of the agent from /proc after the initial sync and after the changes"},
  points: ([$runs[] | .n] | unique | map(. as $n | [$runs[] | select(.n == $n)] as $rs |
    [$chg[] | select(.n == $n)] as $cs | {
    n: $n, runs: ($rs | length),
    initial_sync_ms: ([$rs[] | .sync.all_fe_ms // empty | select(. >= 0)] | smm),
    bpf_loaded_ms: ([$rs[] | .log_ms.bpf_loaded_watching] | smm),
    lists_complete_ms: ([$rs[] | .log_ms.endpointslice_list] | smm),
    programmed_log_ms: ([$rs[] | .log_ms.programmed] | smm),
    full_sync_build_write_ms: ([$rs[] | .full_sync_ms] | smm),
    frontends: ([$rs[] | .frontends] | max), endpoints: ([$rs[] | .endpoints] | max),
    rss_mb: ([$rs[] | .rss_kb // empty | . / 1024] | smm),
    hwm_mb: ([$rs[] | .hwm_kb // empty | . / 1024] | smm),
    rss_after_changes_mb: ([$rs[] | .rss_after_changes_kb // empty | . / 1024] | smm),
    changes: ($cs | length), changes_seen: ([$cs[] | select(.seen)] | length),
    changes_one_apply_each: ([$cs[] | select(.agent_applies == 1 and .full_syncs == 0)] | length),
    per_run: {outside_p50_ms: ([$rs[] | .changes.outside_p50] | smm), outside_p99_ms: ([$rs[] | .changes.outside_p99] | smm),
      agent_latency_p50_ms: ([$rs[] | .changes.agent_latency_p50] | smm), agent_latency_p99_ms: ([$rs[] | .changes.agent_latency_p99] | smm),
      agent_apply_p50_ms: ([$rs[] | .changes.agent_apply_p50] | smm), agent_apply_p99_ms: ([$rs[] | .changes.agent_apply_p99] | smm)},
    pooled: {outside_p50_ms: ([$cs[] | select(.seen) | .outside_ms] | q(0.5)), outside_p99_ms: ([$cs[] | select(.seen) | .outside_ms] | q(0.99)),
      post_p50_ms: ([$cs[] | .post_ms] | q(0.5)),
      agent_latency_p50_ms: ([$cs[] | select(.agent_latency_events == 1) | .agent_latency_ms] | q(0.5)),
      agent_latency_p99_ms: ([$cs[] | select(.agent_latency_events == 1) | .agent_latency_ms] | q(0.99)),
      agent_apply_p50_ms: ([$cs[] | select(.agent_applies == 1) | .agent_apply_ms] | q(0.5)),
      agent_apply_p99_ms: ([$cs[] | select(.agent_applies == 1) | .agent_apply_ms] | q(0.99))}
  })),
  runs: $runs, changes: $chg
}' >"$json" || { echo "70-agent.sh: summary failed" >&2; exit 1; }

{
	echo "## agent: initial sync, event → maps latency, RSS"
	echo
	echo "\`kxp agent\` (XDP native + TC on the namespace's ext0) against \`kxp-fake-apiserver\` started with"
	echo "N Services × $E endpoints (bench/lib/gen.awk) and this Node pre-loaded (\`--load\`); a fresh server,"
	echo "namespace-local, and a fresh instance per run; $reps runs per N, medians (min–max) over runs."
	echo "*initial sync*: from starting the agent to \`kxp_svc4\` holding all 2N frontends (ClusterIP port +"
	echo "wildcard entries; bench/agentlat polls the pinned map); the agent's log gives when BPF was loaded"
	echo "and attached (\"watching\") and when the lists were complete; *full build+write* is"
	echo "\`kxp_sync_duration_seconds_sum{mode=\"full\"}\` (model + \`kxp_dp_apply\` into empty maps)."
	echo "*change*: $CHANGES EndpointSlices per run, each of another service spread over all N, with its last"
	echo "endpoint removed, POSTed to the server 20 ms apart. *outside*: POST start → the service's"
	echo "backend count in \`kxp_svc4\` changed (written last for a service; polled every 20 µs); *agent*:"
	echo "the per-change delta of \`kxp_network_programming_duration_seconds_sum\` (watch event received →"
	echo "maps written) and of \`kxp_sync_duration_seconds_sum{mode=\"service\"}\` (that service's build +"
	echo "\`kxp_dp_apply_service\` map writes). p50/p99 per run, then median (min–max) over runs."
	echo "*RSS*: VmRSS / VmHWM of the agent after the sync. kube-proxy cannot run here: kxp's figures alone."
	echo
	echo "| N | initial sync ms | BPF loaded ms | lists complete ms | full build+write ms | RSS MB (HWM) | change outside p50 / p99 ms | agent event→maps p50 / p99 ms | service build+write p50 / p99 ms | changes seen / one apply each |"
	echo "|---|---|---|---|---|---|---|---|---|---|"
	jq -r "$JQ_STATS"'
	.points[] | "| \(.n) | \(.initial_sync_ms | r) | \(.bpf_loaded_ms | r) | \(.lists_complete_ms | r) | \(.full_sync_build_write_ms | r) | \(.rss_mb | r) (\(.hwm_mb.median | f)) | \(.per_run.outside_p50_ms | r) / \(.per_run.outside_p99_ms | r) | \(.per_run.agent_latency_p50_ms | r) / \(.per_run.agent_latency_p99_ms | r) | \(.per_run.agent_apply_p50_ms | r) / \(.per_run.agent_apply_p99_ms | r) | \(.changes_seen)/\(.changes) / \(.changes_one_apply_each) |"' "$json"
	echo
	echo "Pooled over all runs' changes (p50 / p99 ms): "
	jq -r "$JQ_STATS"'.points[] | "N = \(.n): outside \(.pooled.outside_p50_ms | f) / \(.pooled.outside_p99_ms | f) (the POST alone \(.pooled.post_p50_ms | f) at p50); agent event→maps \(.pooled.agent_latency_p50_ms | f) / \(.pooled.agent_latency_p99_ms | f); service build+write \(.pooled.agent_apply_p50_ms | f) / \(.pooled.agent_apply_p99_ms | f). "' "$json"
	jq -r '[.runs[] | select(.other_log != "") | "N=\(.n) rep \(.rep): \(.other_log)"] | if length > 0 then "\nOther agent log lines: " + (.[:3] | join("; ")) else empty end' "$json"
} >"$md" || { echo "70-agent.sh: markdown failed" >&2; exit 1; }
exit 0
