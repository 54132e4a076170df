#!/usr/bin/env bash
# e2e: kxp agent against the test API server (kxp-fake-apiserver in node1's
# namespace): serves pre-existing Services once its lists complete, follows
# creates/updates/deletes, survives watch faults with the last good state and
# ends equal to a `kxp sync` of the server's objects, answers healthz/livez,
# metrics and healthCheckNodePort, and restarts after SIGKILL without failing
# a connection. Walks used: pod -> ClusterIP, external -> eTP=Local NodePort.
source "$(dirname "$0")/lib.sh"
kxe_init agent 200

FAKE=$KXE_BUILD/kxp-fake-apiserver
API= CTRL= AGENT_PID=
SCRATCH=$KXE_ID-scr

agent_cleanup()
{
	local rc=$?
	[ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null
	# KXE_AGENT_LOG=FILE keeps the agent's log for a look after the run
	[ -n "${KXE_AGENT_LOG:-}" ] && cp "$KXE_TMP/agent.log" "$KXE_AGENT_LOG" 2>/dev/null
	timeout 20 "$KXP" --netns "$NS_N1" cleanup --instance "$SCRATCH" >/dev/null 2>&1
	[ -d "/sys/fs/bpf/kxp-$SCRATCH" ] && rm -rf "/sys/fs/bpf/kxp-$SCRATCH"
	(exit $rc)
	kxe_cleanup
}
trap agent_cleanup EXIT

n1() { kxe_in "$NS_N1" "$@"; }
ctl() { n1 curl -s -m 5 -X POST "http://$CTRL/$1" "${@:2}"; }
apply() { ctl apply --data-binary "$1" >/dev/null; }

# JSON objects -----------------------------------------------------------------
svc_json() # NAME CLUSTERIP PORT [TYPE ETP NODEPORT HCPORT LBIP]
{
	jq -nc --arg n "$1" --arg ip "$2" --argjson p "$3" --arg t "${4:-ClusterIP}" --arg etp "${5:-Cluster}" \
		--arg np "${6:-}" --arg hc "${7:-}" --arg lb "${8:-}" '
	{apiVersion: "v1", kind: "Service", metadata: {name: $n, namespace: "test"},
	 spec: ({type: $t, clusterIP: $ip, clusterIPs: [$ip],
		ports: [{name: "http", protocol: "TCP", port: $p, targetPort: 8080}
			+ (if $np != "" then {nodePort: ($np|tonumber)} else {} end)]}
		+ (if $t != "ClusterIP" then {externalTrafficPolicy: $etp} else {} end)
		+ (if $hc != "" then {healthCheckNodePort: ($hc|tonumber)} else {} end)),
	 status: (if $lb != "" then {loadBalancer: {ingress: [{ip: $lb}]}} else {} end)}'
}

# slice_json NAME SVC ADDR:NODE[:terminating]...
slice_json()
{
	local name=$1 svc=$2 e eps=()
	shift 2
	for e in "$@"; do
		IFS=: read -r a n t <<<"$e"
		if [ "$t" = terminating ]; then
			eps+=("{\"addresses\":[\"$a\"],\"conditions\":{\"ready\":false,\"serving\":true,\"terminating\":true},\"nodeName\":\"$n\"}")
		else
			eps+=("{\"addresses\":[\"$a\"],\"conditions\":{\"ready\":true,\"serving\":true,\"terminating\":false},\"nodeName\":\"$n\"}")
		fi
	done
	local joined
	joined=$(IFS=,; echo "${eps[*]}")
	echo "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":{\"name\":\"$name\",\"namespace\":\"test\",\"labels\":{\"kubernetes.io/service-name\":\"$svc\"}},\"addressType\":\"IPv4\",\"endpoints\":[$joined],\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":8080}]}"
}

node_json() # ZONE [TAINT]
{
	jq -nc --arg z "$1" --arg taint "${2:-}" '{apiVersion: "v1", kind: "Node",
		metadata: {name: "node1", labels: {"topology.kubernetes.io/zone": $z}},
		spec: (if $taint != "" then {taints: [{key: "ToBeDeletedByClusterAutoscaler", effect: "NoSchedule"}]} else {} end),
		status: {addresses: [{type: "InternalIP", address: "198.51.100.1"}]}}'
}

# the agent ------------------------------------------------------------------------
start_api()
{
	kxe_fake_api "$NS_N1" 127.0.0.1:0 --bookmark-interval 1 --max-seconds 190 --load "$KXE_TMP/initial.json"
}

start_agent()
{
	"$KXP" --netns "$NS_N1" agent --instance "$INST1" --master "http://$API" --node-name node1 \
		--node-ip "$NODE1_IP" --cluster-cidr "$CLUSTER_CIDR" --service-cidr "$SERVICE_CIDR" \
		--external-dev eth0 --xdp-mode "$KXE_XDP_MODE" --backoff-min 100ms --backoff-max 1s \
		--watch-timeout 20s --stall-timeout 2s --healthz-threshold 3s \
		--healthz-bind-address 0.0.0.0:10256 --metrics-bind-address 127.0.0.1:10249 \
		>>"$KXE_TMP/agent.log" 2>&1 &
	AGENT_PID=$!
	KXE_PIDS+=($AGENT_PID)
}

svc() { kxe_svc_json node1; }
# wait_for JQ-CONDITION [SECONDS]: until `kxp svc list -o json` satisfies it.
wait_for()
{
	local cond=$1 t=${2:-10} i
	for i in $(seq $((t * 10))); do
		[ "$(svc | jq -r "$cond" 2>/dev/null)" = true ] && return 0
		sleep 0.1
	done
	return 1
}
fe() { svc | jq -c --arg f "$1" '[.[] | select(.frontend == $f and .scope == "default")][0]'; }
metric() { n1 curl -s -m 5 "http://127.0.0.1:10249/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

setup()
{
	kxe_setup nosync || return 1
	[ -x "$FAKE" ] || { KXE_SETUP_ERR="$FAKE is not built"; return 1; }
	command -v curl >/dev/null || { KXE_SETUP_ERR="curl is missing"; return 1; }
	{
		echo "["
		svc_json web 10.96.0.43 80; echo ","
		slice_json web-1 web "$POD1B_IP:node1"; echo ","
		svc_json lbl 10.96.0.50 80 LoadBalancer Local 30080 32000 203.0.113.10; echo ","
		slice_json lbl-1 lbl "$POD1B_IP:node1" "$POD2A_IP:node2"; echo ","
		node_json zone-a
		echo "]"
	} >"$KXE_TMP/initial.json"
	start_api || { KXE_SETUP_ERR="fake API server did not start: $(cat "$KXE_TMP/api.log")"; return 1; }
	start_agent
}

# cases ----------------------------------------------------------------------------
case_initial()
{
	wait_for 'any(.[]; .frontend == "10.96.0.43:80/tcp" and .count == 1)' 15 ||
		fail "agent did not program the pre-existing services: $(tail -5 "$KXE_TMP/agent.log")" || return
	kxe_probe "$NS_POD1A" --tcp --dst 10.96.0.43:80 --count 10 >/dev/null
	expect_all_ok || return
	expect_backends pod1b || return
	kxe_probe "$NS_EXT" --tcp --dst "$NODE1_IP:30080" --count 10 >/dev/null
	expect_all_ok || return
	expect_backends pod1b || return
	expect_client_seen "$EXT_IP"
}

case_create_update_delete()
{
	apply "$(svc_json new 10.96.0.60 80)"
	apply "$(slice_json new-1 new "$POD1B_IP:node1" "$POD2A_IP:node2")"
	wait_for 'any(.[]; .frontend == "10.96.0.60:80/tcp" and .count == 2)' || fail "create not followed" || return
	kxe_probe "$NS_POD1A" --tcp --dst 10.96.0.60:80 --count 30 >/dev/null
	expect_all_ok || return
	expect_backends pod1b pod2a || return
	# endpoints removed / terminating: pod1b terminating while pod2a is ready
	apply "$(slice_json new-1 new "$POD1B_IP:node1:terminating" "$POD2A_IP:node2")"
	wait_for 'any(.[]; .frontend == "10.96.0.60:80/tcp" and .count == 1)' || fail "terminating not followed" || return
	kxe_probe "$NS_POD1A" --tcp --dst 10.96.0.60:80 --count 10 >/dev/null
	expect_all_ok || return
	expect_backends pod2a || return
	# only terminating endpoints left: they serve (fallback)
	apply "$(slice_json new-1 new "$POD1B_IP:node1:terminating")"
	wait_for 'any(.[]; .frontend == "10.96.0.60:80/tcp" and .count == 1 and .backends == ["10.244.1.11:8080"])' ||
		fail "terminating fallback not followed: $(fe 10.96.0.60:80/tcp)" || return
	# port change
	apply "$(svc_json new 10.96.0.60 81)"
	wait_for 'any(.[]; .frontend == "10.96.0.60:81/tcp") and (any(.[]; .frontend == "10.96.0.60:80/tcp") | not)' ||
		fail "port change not followed" || return
	kxe_probe "$NS_POD1A" --tcp --dst 10.96.0.60:81 --count 5 >/dev/null
	expect_all_ok || return
	# delete
	ctl "delete?kind=Service&namespace=test&name=new" >/dev/null
	wait_for '(any(.[]; .address == "10.96.0.60") | not)' || fail "delete not followed" || return
}

case_etp_flip_and_zone()
{
	local full0 full1
	wait_for 'any(.[]; .frontend == "198.51.100.1:30080/tcp" and (.flags | index("etp_local")))' 5 ||
		fail "eTP=Local flag missing: $(fe 198.51.100.1:30080/tcp)" || return
	apply "$(svc_json lbl 10.96.0.50 80 LoadBalancer Cluster 30080 "" 203.0.113.10)"
	wait_for 'any(.[]; .frontend == "198.51.100.1:30080/tcp" and .count == 2 and ((.flags | index("etp_local")) | not))' ||
		fail "eTP flip to Cluster not followed: $(fe 198.51.100.1:30080/tcp)" || return
	apply "$(svc_json lbl 10.96.0.50 80 LoadBalancer Local 30080 32000 203.0.113.10)"
	wait_for 'any(.[]; .frontend == "198.51.100.1:30080/tcp" and .count == 1 and (.flags | index("etp_local")))' ||
		fail "eTP flip back to Local not followed" || return
	full0=$(metric 'kxp_syncs_total{mode="full"}')
	apply "$(node_json zone-b)"
	for _ in $(seq 50); do
		full1=$(metric 'kxp_syncs_total{mode="full"}')
		[ "${full1:-0}" -gt "${full0:-0}" ] && break
		sleep 0.1
	done
	[ "${full1:-0}" -gt "${full0:-0}" ] || fail "Node zone change did not cause a full rebuild ($full0 -> $full1)"
}

case_health_endpoints()
{
	local out code
	out=$(n1 curl -s -m 3 -w ' %{http_code}' http://127.0.0.1:10256/healthz)
	code=${out##* }
	[ "$code" = 200 ] || fail "/healthz: $out" || return
	jq -e '.nodeEligible == true and (.lastUpdated|type) == "string" and (.currentTime|type) == "string"' \
		<<<"${out% *}" >/dev/null || fail "/healthz body: $out" || return
	out=$(n1 curl -s -m 3 -w ' %{http_code}' http://127.0.0.1:10256/livez)
	[ "${out##* }" = 200 ] || fail "/livez: $out" || return
	out=$(n1 curl -s -m 3 http://127.0.0.1:10249/metrics)
	for m in kxp_sync_duration_seconds_bucket kxp_network_programming_duration_seconds_count kxp_services \
		kxp_endpoints 'kxp_map_entries{map="kxp_svc4"}' 'kxp_watch_restarts_total{kind="service"}' \
		'kxp_relists_total{kind="endpointslice"}' kxp_frontend_packets_total kxp_packets_by_reason_total \
		kxp_snat_allocation_failures_total kxp_ct_gc_runs_total kxp_ct_gc_deleted_total; do
		grep -qF "$m" <<<"$out" || fail "metrics: $m missing" || return
	done
	# healthCheckNodePort from outside: one local Ready endpoint
	out=$(kxe_in "$NS_EXT" curl -s -m 3 -D "$KXE_TMP/hc.h" -w ' %{http_code}' "http://$NODE1_IP:32000/anything")
	[ "${out##* }" = 200 ] || fail "healthCheckNodePort: $out" || return
	jq -e '.service.namespace == "test" and .service.name == "lbl" and .localEndpoints == 1 and .serviceProxyHealthy == true' \
		<<<"${out% *}" >/dev/null || fail "healthCheckNodePort body: $out" || return
	grep -qi '^x-content-type-options: nosniff' "$KXE_TMP/hc.h" && grep -qi '^content-type: application/json' "$KXE_TMP/hc.h" ||
		fail "healthCheckNodePort headers: $(cat "$KXE_TMP/hc.h")" || return
	# the local endpoint terminates: 0 local Ready endpoints -> 503
	apply "$(slice_json lbl-1 lbl "$POD1B_IP:node1:terminating" "$POD2A_IP:node2")"
	for _ in $(seq 50); do
		out=$(kxe_in "$NS_EXT" curl -s -m 3 -w ' %{http_code}' "http://$NODE1_IP:32000/")
		[ "${out##* }" = 503 ] && break
		sleep 0.1
	done
	[ "${out##* }" = 503 ] && jq -e '.localEndpoints == 0' <<<"${out% *}" >/dev/null ||
		fail "healthCheckNodePort with only a terminating local endpoint: $out" || return
	apply "$(slice_json lbl-1 lbl "$POD1B_IP:node1" "$POD2A_IP:node2")"
	# the node is being removed by the autoscaler: healthz 503, livez still 200
	apply "$(node_json zone-b taint)"
	for _ in $(seq 50); do
		out=$(n1 curl -s -m 3 -w ' %{http_code}' http://127.0.0.1:10256/healthz)
		[ "${out##* }" = 503 ] && break
		sleep 0.1
	done
	[ "${out##* }" = 503 ] && jq -e '.nodeEligible == false' <<<"${out% *}" >/dev/null ||
		fail "/healthz with the ToBeDeletedByClusterAutoscaler taint: $out" || return
	out=$(n1 curl -s -m 3 -w ' %{http_code}' http://127.0.0.1:10256/livez)
	[ "${out##* }" = 200 ] || fail "/livez must ignore the node state: $out" || return
	apply "$(node_json zone-b)"
	# eTP=Cluster: the health-check port closes
	apply "$(svc_json lbl 10.96.0.50 80 LoadBalancer Cluster 30080 "" 203.0.113.10)"
	for _ in $(seq 50); do
		code=$(kxe_in "$NS_EXT" curl -s -m 2 -o /dev/null -w '%{http_code}' "http://$NODE1_IP:32000/")
		[ "$code" = 000 ] && break
		sleep 0.1
	done
	[ "$code" = 000 ] || fail "healthCheckNodePort still answers after eTP=Cluster ($code)" || return
	apply "$(svc_json lbl 10.96.0.50 80 LoadBalancer Local 30080 32000 203.0.113.10)"
}

# The maps against a `kxp sync` of the server's current objects.
equals_server()
{
	local a b
	for k in Service EndpointSlice Node; do
		n1 curl -s -m 5 "http://$CTRL/objects?kind=$k"
	done | jq -s '[.[].items[] ] ' >"$KXE_TMP/server.json"
	timeout 60 "$KXP" --netns "$NS_N1" sync --instance "$SCRATCH" --from-file "$KXE_TMP/server.json" \
		--node-name node1 --node-ip "$NODE1_IP" --cluster-cidr "$CLUSTER_CIDR" \
		--service-cidr "$SERVICE_CIDR" >"$KXE_TMP/scratch.out" 2>&1
	# 2: some objects rejected (the bad-input case leaves one), the rest applied
	[ $? -le 2 ] || { KXE_WHY="scratch sync failed: $(head -c 300 "$KXE_TMP/scratch.out")"; return 1; }
	local norm='[.[] | {frontend, scope, kind, count, backends, flags, algo}] | sort_by(.frontend, .scope)'
	a=$(svc | jq -cS "$norm")
	b=$("$KXP" svc list --instance "$SCRATCH" -o json | jq -cS "$norm")
	[ "$a" = "$b" ] || { KXE_WHY="maps differ from a sync of the server's objects: agent $a vs sync $b"; return 1; }
}

case_faults()
{
	local bg
	# traffic keeps flowing through all faults (last good state)
	kxe_probe "$NS_POD1A" --tcp --dst 10.96.0.43:80 --count 150 --interval-ms 40 --max-seconds 60 \
		>"$KXE_TMP/fault-probe.json" &
	bg=$!
	ctl cut >/dev/null
	apply "$(slice_json web-1 web "$POD1B_IP:node1" "$POD2A_IP:node2")"
	wait_for 'any(.[]; .frontend == "10.96.0.43:80/tcp" and .count == 2)' || fail "change after a cut not seen" || return
	# the watch falls behind (stalled), history is compacted: its resume gets 410
	ctl "stall?seconds=1" >/dev/null
	apply "$(slice_json web-1 web "$POD2A_IP:node2")"
	ctl compact >/dev/null
	ctl cut >/dev/null
	wait_for 'any(.[]; .frontend == "10.96.0.43:80/tcp" and .count == 1 and .backends == ["10.244.2.10:8080"])' ||
		fail "change after 410 expiry not seen" || return
	ctl "fail?code=500&count=6" >/dev/null
	ctl cut >/dev/null
	apply "$(slice_json web-1 web "$POD1B_IP:node1")"
	wait_for 'any(.[]; .frontend == "10.96.0.43:80/tcp" and .backends == ["10.244.1.11:8080"])' 15 ||
		fail "change after a 500 burst not seen" || return
	ctl "fail?code=429&count=6&retry_after=1" >/dev/null
	ctl cut >/dev/null
	apply "$(slice_json web-1 web "$POD1B_IP:node1" "$POD2A_IP:node2")"
	wait_for 'any(.[]; .frontend == "10.96.0.43:80/tcp" and .count == 2)' 15 || fail "change after a 429 burst not seen" || return
	ctl "stall?seconds=4" >/dev/null
	apply "$(svc_json stalled 10.96.0.61 80)"
	apply "$(slice_json stalled-1 stalled "$POD1B_IP:node1")"
	wait_for 'any(.[]; .frontend == "10.96.0.61:80/tcp" and .count == 1)' 20 || fail "change during a stall not seen after it" || return
	wait "$bg"
	KXE_LAST=$(cat "$KXE_TMP/fault-probe.json")
	expect_all_ok || return
	[ "$(metric 'kxp_relists_total{kind="endpointslice"}')" -ge 1 ] 2>/dev/null ||
		fail "no relist counted after the 410: $(metric 'kxp_relists_total{kind="endpointslice"}')" || return
	equals_server
}

case_bad_input()
{
	for _ in $(seq 50); do
		[ "$(ctl stats | jq -r .activeWatches)" -ge 3 ] 2>/dev/null && break
		sleep 0.1
	done
	ctl inject --data-binary '{"type":"MODIFIED","object":{this is not json' >/dev/null
	apply '{"apiVersion":"v1","kind":"Service","metadata":{"name":"badip","namespace":"test"},"spec":{"clusterIP":"10.96.0.300","clusterIPs":["10.96.0.300"],"ports":[{"port":80}]}}'
	apply "$(slice_json orphan-1 nosuchservice "$POD1B_IP:node1")"
	apply "$(svc_json after-bad 10.96.0.62 80)"
	apply "$(slice_json after-bad-1 after-bad "$POD1B_IP:node1")"
	wait_for 'any(.[]; .frontend == "10.96.0.62:80/tcp" and .count == 1)' ||
		fail "objects after bad input not programmed" || return
	grep -q 'Service test/badip: .*invalid IP' "$KXE_TMP/agent.log" ||
		fail "the invalid Service was not logged: $(tail -5 "$KXE_TMP/agent.log")" || return
	grep -q 'malformed JSON line' "$KXE_TMP/agent.log" || fail "the malformed watch line was not logged" || return
	grep -q 'EndpointSlice test/orphan-1: .*nosuchservice is unknown' "$KXE_TMP/agent.log" ||
		fail "the slice of an unknown Service was not logged" || return
	kxe_probe "$NS_POD1A" --tcp --dst 10.96.0.62:80 --count 5 >/dev/null
	expect_all_ok || return
	equals_server
}

case_restart()
{
	local p1 p2
	kxe_probe "$NS_POD1A" --tcp --dst 10.96.0.43:80 --count 200 --interval-ms 25 --max-seconds 60 \
		>"$KXE_TMP/rs-short.json" &
	p1=$!
	kxe_probe "$NS_POD1A" --tcp --keepalive --dst 10.96.0.43:80 --count 200 --interval-ms 25 --max-seconds 60 \
		>"$KXE_TMP/rs-long.json" &
	p2=$!
	sleep 1
	kill -KILL "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null
	sleep 0.5
	start_agent
	wait_for 'any(.[]; .frontend == "10.96.0.43:80/tcp")' 15 || fail "new agent did not come up" || return
	for _ in $(seq 50); do
		[ "$(n1 curl -s -m 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:10256/livez)" = 200 ] && break
		sleep 0.1
	done
	wait "$p1" "$p2"
	KXE_LAST=$(cat "$KXE_TMP/rs-short.json")
	expect_all_ok || return
	KXE_LAST=$(cat "$KXE_TMP/rs-long.json")
	expect_all_ok || { KXE_WHY="long-lived connection: $KXE_WHY"; return 1; }
	grep -q 'adopt\|lists complete\|list complete' "$KXE_TMP/agent.log" || true
	apply "$(svc_json post-restart 10.96.0.63 80)"
	apply "$(slice_json post-restart-1 post-restart "$POD2A_IP:node2")"
	wait_for 'any(.[]; .frontend == "10.96.0.63:80/tcp" and .count == 1)' || fail "restarted agent does not follow changes" || return
	equals_server
}

# A pod device created while the agent runs is attached (RTM_NEWLINK), and
# forgotten when it goes; a non-matching one is left alone.
case_devices_follow()
{
	local i
	ip -n "$NS_N1" link add veth1c type veth peer name other1c || fail "cannot create a veth" || return
	for i in $(seq 50); do
		[ -n "$(tc -n "$NS_N1" filter show dev veth1c ingress 2>/dev/null)" ] && break
		sleep 0.1
	done
	[ -n "$(tc -n "$NS_N1" filter show dev veth1c ingress 2>/dev/null)" ] ||
		fail "new pod device veth1c not attached: $(tail -3 "$KXE_TMP/agent.log")" || return
	[ -z "$(tc -n "$NS_N1" filter show dev other1c ingress 2>/dev/null)" ] ||
		fail "other1c (no pod pattern) was attached" || return
	ip -n "$NS_N1" link del veth1c
	for i in $(seq 50); do
		grep -q 'device veth1c is gone' "$KXE_TMP/agent.log" && return 0
		sleep 0.1
	done
	fail "removal of veth1c not noticed"
}

case_sigterm_keeps_state()
{
	kill -TERM "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null
	AGENT_PID=
	[ -d "/sys/fs/bpf/kxp-$INST1" ] || fail "pins removed on SIGTERM" || return
	ip -n "$NS_N1" -d link show eth0 | grep -q 'prog/xdp' || [ "$KXE_XDP_MODE" = off ] || fail "XDP detached on SIGTERM" || return
	kxe_probe "$NS_POD1A" --tcp --dst 10.96.0.43:80 --count 5 >/dev/null
	expect_all_ok
}

case_validate()
{
	local out
	out=$("$KXP" agent --instance x --master http://127.0.0.1:1 --cluster-cidr 10.0.0.0/33 --validate 2>&1)
	[ $? = 1 ] && grep -q 'cluster-cidr' <<<"$out" || fail "--validate accepted a bad CIDR: $out" || return
	printf 'kind: KubeProxyConfiguration\napiVersion: kubeproxy.config.k8s.io/v1alpha1\nclusterCIDR: 10.244.0.0/16\nfoo: 1\n' \
		>"$KXE_TMP/kpc.yaml"
	out=$("$KXP" agent --instance x --master http://127.0.0.1:1 --config "$KXE_TMP/kpc.yaml" --validate 2>&1)
	[ $? = 0 ] && grep -q 'foo: unknown field' <<<"$out" || fail "--validate of a good file: $out"
}

setup
kxe_case validate case_validate
kxe_case initial_lists case_initial
kxe_case create_update_delete case_create_update_delete
kxe_case etp_flip_and_node_zone case_etp_flip_and_zone
kxe_case healthz_metrics_hcnp case_health_endpoints
kxe_case watch_faults case_faults
kxe_case bad_input_skipped case_bad_input
kxe_case sigkill_restart case_restart
kxe_case devices_follow_netlink case_devices_follow
kxe_case sigterm_keeps_state case_sigterm_keeps_state
kxe_finish
