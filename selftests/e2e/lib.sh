# shellcheck shell=bash
# e2e library: the 2-node namespace topology, kxp sync/cleanup per node, echo
# servers and probes, and the PASS/FAIL/SKIP case runner. Sourced by test_*.sh
# and demo.sh; everything it creates is removed on every exit path.
#
#   ext (198.51.100.100) ─┐                     ┌─ pod1a 10.244.1.10 (client)
#                         ├─ fabric: br0 ─ node1 (198.51.100.1) ─┤
#                         │                     └─ pod1b 10.244.1.11 (echo "pod1b")
#                         └──────────── node2 (198.51.100.2) ─── pod2a 10.244.2.10 (echo "pod2a")
#
# Pods are ptp style: eth0 10.244.X.Y/32 in the pod, the host-side veth holds
# 10.244.X.1/32 and a /32 route to the pod. kxp runs with --netns <node ns>.

KXE_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../lib/netns.sh
source "$KXE_SRC/selftests/lib/netns.sh"
KXE_BUILD=${KXE_BUILD:-${KXP_BUILD:-$KXE_SRC/build}}
KXP=$KXE_BUILD/kxp
KXE_ECHO=$KXE_BUILD/kxp-echo
KXE_PROBE=$KXE_BUILD/kxp-probe
KXE_XDP_PASS=$KXE_BUILD/kxp-xdp-pass

# Unique per run: pid plus a random suffix (pids are reused across runs).
KXE_ID=${KXE_ID:-kxe$$$(printf '%02x' $((RANDOM % 256)))}
NS_FABRIC=$KXE_ID-fabric
NS_EXT=$KXE_ID-ext
NS_N1=$KXE_ID-node1
NS_N2=$KXE_ID-node2
NS_POD1A=$KXE_ID-pod1a
NS_POD1B=$KXE_ID-pod1b
NS_POD2A=$KXE_ID-pod2a
INST1=$KXE_ID-n1
INST2=$KXE_ID-n2

EXT_IP=198.51.100.100
NODE1_IP=198.51.100.1
NODE2_IP=198.51.100.2
POD1A_IP=10.244.1.10
POD1B_IP=10.244.1.11
POD2A_IP=10.244.2.10
CLUSTER_CIDR=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/16

KXE_XDP_MODE=${KXE_XDP_MODE:-native}
KXE_PIDS=()
KXE_NS_MADE=()
KXE_TMP=
KXE_MANIFESTS=
KXE_SUITE=
KXE_WHY=
KXE_SETUP_ERR=
KXE_PASS=0
KXE_FAIL=0
KXE_SKIP=0

kxe_log() { echo "# $*" >&2; }

# Record why the running case failed; `fail "why"; return` ends it.
fail()
{
	KXE_WHY="$*"
	return 1
}

# kxe_init NAME LIMIT_SECONDS: re-exec under a hard timeout, set the suite
# name, traps and a scratch directory. Call first in every test file.
kxe_init()
{
	local name=$1 limit=${2:-240}

	if [ -z "${KXE_UNDER_TIMEOUT:-}" ]; then
		export KXE_UNDER_TIMEOUT=1
		# TERM first (our trap cleans up), KILL 20 s later if cleanup hangs.
		exec timeout -s TERM --kill-after=20 "$limit" bash "$0"
	fi
	KXE_SUITE=${KXP_TEST_SUITE:-e2e/$name}
	KXE_TMP=$(mktemp -d "/tmp/$KXE_ID.XXXXXX")
	KXE_MANIFESTS=$KXE_TMP/manifests
	trap kxe_cleanup EXIT
	trap 'echo "FAIL: $KXE_SUITE: interrupted (hard timeout or signal)"; exit 143' INT TERM
}

kxe_need()
{
	[ "$(id -u)" = 0 ] || { KXE_SETUP_ERR="needs root"; return 1; }
	for b in "$KXP" "$KXE_ECHO" "$KXE_PROBE" "$KXE_XDP_PASS"; do
		[ -x "$b" ] || { KXE_SETUP_ERR="$b is not built (make -j2 all)"; return 1; }
	done
	for t in ip jq bpftool tc timeout; do
		command -v "$t" >/dev/null || { KXE_SETUP_ERR="$t is missing"; return 1; }
	done
	return 0
}

kxe_cleanup()
{
	local rc=$? pid ns inst
	trap - EXIT INT TERM
	for pid in "${KXE_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${KXE_PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	for pair in "$NS_N1:$INST1" "$NS_N2:$INST2"; do
		ns=${pair%%:*}
		inst=${pair#*:}
		if [ -e "/run/netns/$ns" ] && [ -x "$KXP" ]; then
			timeout 20 "$KXP" --netns "$ns" cleanup --instance "$inst" >/dev/null 2>&1
		fi
		# Fallback: the pins must go even if kxp could not run.
		[ -d "/sys/fs/bpf/kxp-$inst" ] && rm -rf "/sys/fs/bpf/kxp-$inst"
	done
	for ns in "${KXE_NS_MADE[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	[ -n "$KXE_TMP" ] && rm -rf "$KXE_TMP"
	exit "$rc"
}

kxe_ns_add()
{
	ip netns add "$1" || return 1
	KXE_NS_MADE+=("$1")
	ip -n "$1" link set lo up
}

# kxe_in NS CMD...: run CMD in NS's network namespace (selftests/lib/netns.sh).
kxe_in()
{
	ns_run "$@"
}

# Client-side settings: many short connections must not run out of ports.
kxe_client_sysctls()
{
	kxe_in "$1" sysctl -qw net.ipv4.tcp_tw_reuse=1 \
		net.ipv4.ip_local_port_range="10000 65000" >/dev/null
}

# kxe_full_csum NS DEV: no checksum offload on this veth end, so senders put a full
# checksum in every packet and receivers verify it (veth otherwise marks packets
# CHECKSUM_UNNECESSARY and a checksum kxp broke would go unnoticed).
kxe_full_csum()
{
	kxe_in "$1" ethtool -K "$2" rx off tx off >/dev/null 2>&1 ||
		{ echo "# ethtool -K $2 rx off tx off failed in $1" >&2; return 1; }
}

# kxe_pod NODE_NS POD_NS HOST_DEV POD_IP HOST_IP
kxe_pod()
{
	local node=$1 pod=$2 hdev=$3 ip=$4 hip=$5

	kxe_ns_add "$pod" || return 1
	ip link add name eth0 netns "$pod" type veth peer name "$hdev" netns "$node" || return 1
	kxe_full_csum "$pod" eth0 || return 1
	kxe_full_csum "$node" "$hdev" || return 1
	ip -n "$pod" addr add "$ip/32" dev eth0
	ip -n "$pod" link set eth0 up
	ip -n "$pod" route add "$hip" dev eth0 scope link
	ip -n "$pod" route add default via "$hip" dev eth0
	ip -n "$node" addr add "$hip/32" dev "$hdev"
	ip -n "$node" link set "$hdev" up
	ip -n "$node" route add "$ip/32" dev "$hdev" scope link
	kxe_in "$node" sysctl -qw "net.ipv4.conf.$hdev.rp_filter=0" >/dev/null
	kxe_client_sysctls "$pod"
	# Redirected frames into this veth need an XDP program on the pod side.
	kxe_in "$pod" "$KXE_XDP_PASS" eth0
}

# kxe_uplink NS IP: eth0 in NS, its peer a port of the fabric bridge.
kxe_uplink()
{
	local ns=$1 ip=$2 port=p-${1##*-}

	ip link add name eth0 netns "$ns" type veth peer name "$port" netns "$NS_FABRIC" || return 1
	kxe_full_csum "$ns" eth0 || return 1
	kxe_full_csum "$NS_FABRIC" "$port" || return 1
	ip -n "$NS_FABRIC" link set "$port" master br0 up
	kxe_in "$NS_FABRIC" "$KXE_XDP_PASS" "$port" || return 1
	ip -n "$ns" addr add "$ip/24" dev eth0
	ip -n "$ns" link set eth0 up
}

kxe_node_sysctls()
{
	kxe_in "$1" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0 >/dev/null
}

kxe_topology_up()
{
	local ns

	for ns in "$NS_FABRIC" "$NS_EXT" "$NS_N1" "$NS_N2"; do
		kxe_ns_add "$ns" || return 1
	done
	ip -n "$NS_FABRIC" link add br0 type bridge || return 1
	ip -n "$NS_FABRIC" link set br0 up
	kxe_uplink "$NS_EXT" "$EXT_IP" || return 1
	kxe_uplink "$NS_N1" "$NODE1_IP" || return 1
	kxe_uplink "$NS_N2" "$NODE2_IP" || return 1
	kxe_node_sysctls "$NS_N1"
	kxe_node_sysctls "$NS_N2"
	kxe_client_sysctls "$NS_EXT"
	ip -n "$NS_EXT" route add 10.96.0.0/16 via "$NODE1_IP"
	ip -n "$NS_EXT" route add 203.0.113.0/24 via "$NODE1_IP"
	ip -n "$NS_N1" route add 10.244.2.0/24 via "$NODE2_IP"
	ip -n "$NS_N2" route add 10.244.1.0/24 via "$NODE1_IP"
	kxe_pod "$NS_N1" "$NS_POD1A" veth1a "$POD1A_IP" 10.244.1.1 || return 1
	kxe_pod "$NS_N1" "$NS_POD1B" veth1b "$POD1B_IP" 10.244.1.1 || return 1
	kxe_pod "$NS_N2" "$NS_POD2A" veth2a "$POD2A_IP" 10.244.2.1 || return 1
	return 0
}

# Plain routing must work before kxp is involved: pod to pod across nodes,
# both ways of the remote path, TCP and UDP.
kxe_routing_ok()
{
	kxe_probe "$NS_POD1A" --tcp --dst "$POD2A_IP:8080" --count 1 >/dev/null
	[ "$(pj .ok)" = 1 ] || { kxe_log "plain routing pod1a -> pod2a: $KXE_LAST"; return 1; }
	kxe_probe "$NS_POD1A" --udp --dst "$POD1B_IP:5353" --count 1 >/dev/null
	[ "$(pj .ok)" = 1 ] || { kxe_log "plain routing pod1a -> pod1b: $KXE_LAST"; return 1; }
}

# kxe_echo NS NAME: an echo server on TCP 8080 and UDP 5353 (or the kxp-echo
# port options in $KXE_ECHO_PORTS), waited for.
kxe_echo()
{
	local ns=$1 name=$2 out=$KXE_TMP/echo-$2.out i

	# shellcheck disable=SC2086 # KXE_ECHO_PORTS: other ports, word-split on purpose
	nsenter --net="/run/netns/$ns" -- "$KXE_ECHO" --name "$name" ${KXE_ECHO_PORTS:---tcp 8080 --udp 5353} \
		--max-seconds "${KXE_ECHO_SECONDS:-280}" >"$out" 2>&1 &
	KXE_PIDS+=($!)
	for i in $(seq 50); do
		grep -q ready "$out" 2>/dev/null && return 0
		sleep 0.1
	done
	kxe_log "echo $name did not start: $(cat "$out")"
	return 1
}

kxe_echo_all()
{
	kxe_echo "$NS_POD1B" pod1b && kxe_echo "$NS_POD2A" pod2a
}

# kxe_probe NS ARGS...: run kxp-probe in NS, JSON on stdout (also kept in
# $KXE_LAST). Answers take milliseconds here: a short per-request timeout and
# giving up after 5 failures keep a broken datapath from stalling the suite
# (later arguments override these defaults).
KXE_LAST=
kxe_probe()
{
	local ns=$1
	shift
	KXE_LAST=$(kxe_in "$ns" "$KXE_PROBE" --timeout-ms 500 --max-failures 5 --max-seconds 30 "$@" 2>&1)
	echo "$KXE_LAST"
}

# Field of the last probe (jq expression).
pj() { jq -r "$1" <<<"$KXE_LAST"; }

# Copy the example manifests (the demo's, deploy/examples) plus the test-only
# services into $KXE_MANIFESTS.
kxe_manifests()
{
	rm -rf "$KXE_MANIFESTS"
	mkdir -p "$KXE_MANIFESTS"
	cp "$KXE_SRC"/deploy/examples/*.yaml "$KXE_MANIFESTS/"
	kxe_test_services >"$KXE_MANIFESTS/zz-test-services.yaml"
}

# kxe_slice NS NAME SVC ADDR:NODE... with ports http/8080/TCP and dns/5353/UDP.
kxe_slice()
{
	local ns=$1 name=$2 svc=$3 e
	shift 3
	cat <<EOF
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $name, namespace: $ns, labels: {kubernetes.io/service-name: $svc}}
addressType: IPv4
endpoints:
EOF
	[ $# -eq 0 ] && echo "  []"
	for e in "$@"; do
		echo "  - {addresses: [${e%%:*}], conditions: {ready: true, serving: true, terminating: false}, nodeName: ${e#*:}}"
	done
	cat <<EOF
ports:
  - {name: http, protocol: TCP, port: 8080}
  - {name: dns, protocol: UDP, port: 5353}
EOF
}

# kxe_service NAME TYPE CLUSTERIP ETP [NODEPORT]
kxe_service()
{
	local name=$1 type=$2 cip=$3 etp=$4 np=${5:-}
	cat <<EOF
---
apiVersion: v1
kind: Service
metadata: {name: $name, namespace: test}
spec:
  type: $type
  clusterIP: $cip
  clusterIPs: [$cip]
EOF
	[ "$type" = ClusterIP ] || echo "  externalTrafficPolicy: $etp"
	echo "  ports:"
	if [ -n "$np" ]; then
		echo "    - {name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: $np}"
	else
		echo "    - {name: http, protocol: TCP, port: 80, targetPort: 8080}"
		echo "    - {name: dns, protocol: UDP, port: 53, targetPort: 5353}"
	fi
}

# Test-only services:
#   remote-only  NodePort 30082 eTP=Local, its one endpoint on node2
#   cluster-np   NodePort 30090 eTP=Cluster (masqueraded)
#   noep         ClusterIP 10.96.0.42 without endpoints (rejected: ICMP port unreachable)
#   single       ClusterIP 10.96.0.43 -> pod1b only (the sync cases edit it)
kxe_test_services()
{
	kxe_service remote-only NodePort 10.96.0.40 Local 30082
	kxe_slice test remote-only-1 remote-only "$POD2A_IP:node2"
	kxe_service cluster-np NodePort 10.96.0.41 Cluster 30090
	kxe_slice test cluster-np-1 cluster-np "$POD1B_IP:node1" "$POD2A_IP:node2"
	kxe_service noep ClusterIP 10.96.0.42 Cluster
	kxe_service single ClusterIP 10.96.0.43 Cluster
	# KXE_SINGLE_EPS: space-separated ADDR:NODE list ("" = no endpoints).
	# shellcheck disable=SC2086
	kxe_slice test single-1 single ${KXE_SINGLE_EPS-$POD1B_IP:node1}
}

# kxe_sync node1|node2 [extra kxp sync args...]: exit status of kxp sync;
# its output is in $KXE_TMP/sync-<node>.out.
kxe_sync()
{
	local node=$1 ns inst ip devs
	shift
	case $node in
	node1) ns=$NS_N1 inst=$INST1 ip=$NODE1_IP devs=(--pod-dev veth1a --pod-dev veth1b) ;;
	node2) ns=$NS_N2 inst=$INST2 ip=$NODE2_IP devs=(--pod-dev veth2a) ;;
	*) return 1 ;;
	esac
	timeout 60 "$KXP" --netns "$ns" sync --instance "$inst" --from-file "$KXE_MANIFESTS" \
		--node-name "$node" --node-ip "$ip" --cluster-cidr "$CLUSTER_CIDR" \
		--service-cidr "$SERVICE_CIDR" --external-dev eth0 "${devs[@]}" \
		--xdp-mode "$KXE_XDP_MODE" "$@" >"$KXE_TMP/sync-$node.out" 2>&1
}

# Both nodes; non-zero (with the output logged) if either sync is not 0.
kxe_sync_all()
{
	local n rc=0
	for n in node1 node2; do
		if ! kxe_sync "$n" "$@"; then
			kxe_log "kxp sync $n failed: $(head -c 2000 "$KXE_TMP/sync-$n.out")"
			rc=1
		fi
	done
	return $rc
}

kxe_inst() { [ "$1" = node2 ] && echo "$INST2" || echo "$INST1"; }
kxe_ns() { [ "$1" = node2 ] && echo "$NS_N2" || echo "$NS_N1"; }

# kxe_svc_json NODE: `kxp svc list -o json` of the node's instance.
kxe_svc_json() { "$KXP" svc list --instance "$(kxe_inst "$1")" -o json 2>&1; }
kxe_ct_json() { "$KXP" ct list --instance "$(kxe_inst "$1")" -o json 2>&1; }

# kxe_fe_entries NODE IP:PORT/PROTO: the svc list entries of that frontend (all scopes).
kxe_fe_entries()
{
	kxe_svc_json "$1" | jq -c --arg fe "$2" '[.[] | select((.frontend | ascii_downcase) == ($fe | ascii_downcase))]'
}

# kxe_fe_counter NODE IP:PORT/PROTO FIELD: the counter summed over the frontend's
# entries (the counter may sit at the top level or under "stats").
kxe_fe_counter()
{
	kxe_fe_entries "$1" "$2" | jq --arg f "$3" '[.[] | (.[$f] // .stats[$f]? // 0)] | add // 0'
}

# kxe_trace NODE ARGS...: `kxp trace -o json` for the node's instance.
kxe_trace()
{
	local node=$1
	shift
	"$KXP" --netns "$(kxe_ns "$node")" trace --instance "$(kxe_inst "$node")" "$@" -o json 2>&1
}

# Diagnostics for a failed case (stderr, "# " lines): each node's frontends
# that saw packets or have backends, and its first conntrack entries.
kxe_diag()
{
	local n
	for n in node1 node2; do
		[ -d "/sys/fs/bpf/kxp-$(kxe_inst $n)" ] || continue
		kxe_log "$n svc list: $(kxe_svc_json $n | jq -c '[.[] | select(.count > 0 or .packets > 0 or .drops > 0 or .rejects > 0 or .passed > 0) |
			"\(.frontend) \(.scope) n=\(.count) pk=\(.packets) dr=\(.drops) rj=\(.rejects) ps=\(.passed)"]' 2>/dev/null | head -c 2500)"
		kxe_log "$n ct list: $(kxe_ct_json $n | jq -c '[.[0:8][] | "\(.direction) \(.protocol) \(.original.src)->\(.original.dst) => \(.translated.src)->\(.translated.dst) \(.flags|join(","))"]' 2>/dev/null | head -c 2000)"
	done	# Spine II evidence (reasons, SNAT claims), defined further down.
	kxe_diag2
}

# kxe_case NAME FUNC [ARGS...]: run one case and print its protocol line.
# FUNC returns 0 = pass, 77 = skip (reason in KXE_WHY), else fail (KXE_WHY).
kxe_case()
{
	local name=$1 rc
	shift
	if [ -n "$KXE_SETUP_ERR" ]; then
		echo "FAIL: $KXE_SUITE/$name: setup failed: $KXE_SETUP_ERR"
		KXE_FAIL=$((KXE_FAIL + 1))
		return
	fi
	KXE_WHY=
	"$@"
	rc=$?
	if [ $rc = 0 ]; then
		echo "PASS: $KXE_SUITE/$name"
		KXE_PASS=$((KXE_PASS + 1))
	elif [ $rc = 77 ]; then
		echo "SKIP: $KXE_SUITE/$name: skipped: $KXE_WHY"
		KXE_SKIP=$((KXE_SKIP + 1))
	else
		echo "FAIL: $KXE_SUITE/$name: ${KXE_WHY:-failed (status $rc)}"
		KXE_FAIL=$((KXE_FAIL + 1))
		kxe_diag
	fi
}

# kxe_setup: topology + echo servers + manifests + first sync of both nodes.
kxe_setup()
{
	kxe_need || return 1
	kxe_topology_up || { KXE_SETUP_ERR=${KXE_SETUP_ERR:-topology could not be built}; return 1; }
	kxe_echo_all || { KXE_SETUP_ERR="echo servers did not start"; return 1; }
	kxe_routing_ok || { KXE_SETUP_ERR="plain routing between pods does not work"; return 1; }
	kxe_manifests
	if [ "${1:-}" != nosync ]; then
		kxe_sync_all || {
			KXE_SETUP_ERR="kxp sync failed: $(head -c 300 "$KXE_TMP/sync-node1.out" | tr '\n' ' ')"
			return 1
		}
	fi
	return 0
}

# Summary line (selftests/run.sh looks for it) and exit status.
kxe_finish()
{
	echo "$KXE_SUITE: $KXE_PASS passed, $KXE_FAIL failed, $KXE_SKIP skipped"
	[ "$KXE_FAIL" = 0 ]
}

# ---- assertions on the last probe (KXE_LAST) -----------------------------------

# All requests answered, none failed.
expect_all_ok()
{
	local n
	n=$(pj .count)
	[ "$(pj .ok)" = "$n" ] || fail "$(pj .dst) $(pj .proto): $(pj .ok)/$n answered, failures $(jq -c .failures <<<"$KXE_LAST")"
}

# Exactly these backends answered (names, space separated, any order).
expect_backends()
{
	local want got
	want=$(tr ' ' '\n' <<<"$*" | sort | xargs)
	got=$(pj '.backends | keys | .[]' | sort | xargs)
	[ "$got" = "$want" ] || fail "$(pj .dst) $(pj .proto): backends [$got], want [$want] ($(pj '.backends|tostring'))"
}

# Every backend saw exactly our socket address (no SNAT, port kept) and only CLIENT_IP.
expect_client_seen()
{
	local ip=$1 bad
	bad=$(jq -r --arg ip "$ip" '.backends | to_entries[] |
		select(.value.src_preserved != .value.count or (.value.clients | keys) != [$ip]) | .key' <<<"$KXE_LAST")
	[ -z "$bad" ] || fail "$(pj .dst): backend(s) $bad saw $(pj '.backends|tostring'), want only $ip with our port"
}

# No request got an answer.
expect_none_answered()
{
	[ "$(pj .ok)" = 0 ] && [ "$(pj '.backends|length')" = 0 ] ||
		fail "$(pj .dst) $(pj .proto): $(pj .ok) answered by $(pj '.backends|tostring'), want none"
}

# ---- Spine II helpers: masquerade, reject, fragments, PMTU ------------------------

KXE_BULK=$KXE_BUILD/kxp-bulk
KXE_BULK_TCP=9090
KXE_BULK_UDP=9191

# kxe_need_bulk: kxp-bulk is built (the suites that use it call this after kxe_setup).
kxe_need_bulk()
{
	[ -x "$KXE_BULK" ] || { KXE_SETUP_ERR="$KXE_BULK is not built (make -j2 all)"; return 1; }
}

# kxe_bulk NS NAME REPLY_SIZE [TCP_PORT UDP_PORT]: a kxp-bulk server (default
# TCP 9090, UDP 9191) whose answers are REPLY_SIZE bytes (large ones come back
# fragmented), waited for.
kxe_bulk()
{
	local ns=$1 name=$2 size=$3 tp=${4:-$KXE_BULK_TCP} up=${5:-$KXE_BULK_UDP}
	local out=$KXE_TMP/bulk-$2-$tp.out i

	nsenter --net="/run/netns/$ns" -- "$KXE_BULK" serve --name "$name" --tcp-port "$tp" \
		--udp-port "$up" --reply-size "$size" \
		--max-seconds "${KXE_ECHO_SECONDS:-280}" >"$out" 2>&1 &
	KXE_PIDS+=($!)
	for i in $(seq 50); do
		grep -q ready "$out" 2>/dev/null && return 0
		sleep 0.1
	done
	kxe_log "kxp-bulk $name did not start: $(cat "$out")"
	return 1
}

# kxe_bulk_send NS ARGS...: kxp-bulk send in NS, JSON in $KXE_LAST (pj reads it).
kxe_bulk_send()
{
	local ns=$1
	shift
	KXE_LAST=$(kxe_in "$ns" "$KXE_BULK" send --timeout-ms 2000 --max-seconds 30 "$@" 2>&1)
	echo "$KXE_LAST"
}

# kxe_node_addrs NS: the IPv4 addresses assigned in a node namespace, one a line
# (a masqueraded flow must arrive from one of them: kube-proxy masquerades to
# the egress interface's address, kxp to the node's primary address).
kxe_node_addrs()
{
	ip -n "$1" -4 -o addr show | awk '$2 != "lo" { sub("/.*", "", $4); print $4 }' | sort -u
}

# expect_masq NODE_NS [PRIMARY_IP]: every answer came from a backend that saw
# an address of that node as the client, never ours. kube-proxy masquerades to
# the egress interface's address (E.33: node1's eth0 address towards remote
# backends, the pod-facing veth's address towards local ones); an
# implementation may use the primary node IP throughout. KXE_MASQ_STRICT=1
# accepts PRIMARY_IP only.
expect_masq()
{
	local ns=$1 want=${2:-} addrs bad
	addrs=$(kxe_node_addrs "$ns" | jq -R . | jq -sc .)
	[ -n "$want" ] && [ "${KXE_MASQ_STRICT:-0}" = 1 ] && addrs=$(jq -nc --arg w "$want" '[$w]')
	bad=$(jq -r --argjson a "$addrs" '.backends | to_entries[] |
		select([.value.clients | keys[] | select(. as $c | $a | index($c) | not)] | length > 0) | .key' <<<"$KXE_LAST")
	[ -z "$bad" ] || fail "$(pj .dst) $(pj .proto): backend(s) $(xargs <<<"$bad") saw clients $(pj '[.backends[] | .clients | keys[]] | unique | join(",")'), want only $(jq -r 'join(",")' <<<"$addrs") (masqueraded)"
}

# kxe_reason NODE NAME: packets counted under that reason (kxp stats).
kxe_reason()
{
	"$KXP" stats --instance "$(kxe_inst "$1")" -o json 2>/dev/null |
		jq --arg r "$2" '[.reasons[]? | select(.reason == $r) | .packets] | add // 0'
}

# kxe_snat_claims NODE: the node's SNAT port claims, i.e. the REPLY entries
# (key.dir 1) of masqueraded flows (flag KXP_CT_F_SNAT, 1) in kxp_ct4, as a
# JSON array of bpftool's formatted entries.
kxe_snat_claims()
{
	bpftool -j map dump pinned "/sys/fs/bpf/kxp-$(kxe_inst "$1")/kxp_ct4" 2>/dev/null |
		jq -c '[.[] | .formatted // empty | select(.key.dir == 1 and (.value.flags % 2) == 1)]'
}

# kxe_snat_count NODE: how many SNAT port claims the node holds.
kxe_snat_count()
{
	kxe_snat_claims "$1" | jq 'length'
}

# Evidence for a failed Spine II case: reasons and the first snat entries.
kxe_diag2()
{
	local n
	for n in node1 node2; do
		[ -d "/sys/fs/bpf/kxp-$(kxe_inst $n)" ] || continue
		kxe_log "$n stats: $("$KXP" stats --instance "$(kxe_inst $n)" -o json 2>&1 | jq -c '[.reasons[]? | select(.packets > 0) | "\(.reason)=\(.packets)"]' 2>/dev/null)"
		kxe_log "$n SNAT claims ($(kxe_snat_count $n)): $(kxe_snat_claims $n | jq -c '.[0:4]' 2>/dev/null | head -c 1500)"
	done
}

# kxe_backend_mtu NODE_NS HOST_DEV MTU: a smaller MTU on the node side of a pod's
# veth only, so the node (not the pod) is the hop that must fragment or send
# "fragmentation needed"; the pod keeps 1500 and advertises the larger MSS.
kxe_backend_mtu()
{
	ip -n "$1" link set dev "$2" mtu "$3"
}

# kxe_yaml FILE: the rest of stdin into the manifests directory.
kxe_yaml() { cat >"$KXE_MANIFESTS/$1"; }

# ---- the test double of the API server ------------------------------------------

# kxe_fake_api NS LISTEN ARGS...: start build/kxp-fake-apiserver in NS on LISTEN
# (ADDR:0 picks a port) with its control port on NS's 127.0.0.1, wait until it
# is ready and set API and CTRL (host:port); non-zero if it did not come up.
# Its log is $KXE_TMP/api.log; it is stopped with the other KXE_PIDS.
kxe_fake_api()
{
	local ns=$1 listen=$2 i
	shift 2
	rm -f "$KXE_TMP/api.ready"
	nsenter --net="/run/netns/$ns" -- "$KXE_BUILD/kxp-fake-apiserver" --listen "$listen" --control 127.0.0.1:0 \
		--ready-file "$KXE_TMP/api.ready" "$@" >"$KXE_TMP/api.log" 2>&1 &
	KXE_PIDS+=($!)
	for i in $(seq 50); do
		[ -s "$KXE_TMP/api.ready" ] && break
		sleep 0.1
	done
	API=$(sed -n 's/.*api=\([^ ]*\).*/\1/p' "$KXE_TMP/api.ready" 2>/dev/null)
	CTRL=$(sed -n 's/.*control=\([^ ]*\).*/\1/p' "$KXE_TMP/api.ready" 2>/dev/null)
	[ -n "$API" ] && [ -n "$CTRL" ]
}
