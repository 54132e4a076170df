#!/usr/bin/env bash
# e2e: the agent exactly as deploy/daemonset.yaml runs it — its command line,
# the ConfigMap's config.yaml at /etc/kxp, the service-account token and CA
# laid out as the projected volume at /var/run/secrets/kubernetes.io/
# serviceaccount, in-cluster configuration from KUBERNETES_SERVICE_HOST/PORT
# (the ConfigMap's apiserver-host/-port, pointed at the test API server) —
# against the test API server (TLS with a CA made here, bearer token) on
# node2, in node1's network namespace. Traffic flows, the probes' endpoints
# answer, the ClusterRole grants exactly what the agent requested, and
# dual-stack / IPv6-only Services are reported.
#
# The pod's mounts are made in a private mount namespace (a fresh bpffs on
# /sys/fs/bpf, tmpfs on /run/kxp, bind mounts for /etc/kxp and the
# service-account directory), so the DaemonSet's fixed instance name and
# paths touch nothing outside the test.
source "$(dirname "$0")/lib.sh"
kxe_init deploy 150

DEPLOY=$KXE_SRC/deploy
FAKE=$KXE_BUILD/kxp-fake-apiserver
SA_PATH=/var/run/secrets/kubernetes.io/serviceaccount
API= CTRL= AGENT_PID= INSTANCE= HZ_PORT=
MADE_DIRS=()

deploy_cleanup()
{
	local rc=$? d
	if [ -n "$AGENT_PID" ] && [ -e "/proc/$AGENT_PID/ns/mnt" ]; then
		# the pins live in the agent's private bpffs: remove them from there
		timeout 20 nsenter --target "$AGENT_PID" --mount --root --net="/run/netns/$NS_N1" \
			"$KXP" cleanup --instance "$INSTANCE" >/dev/null 2>&1
		kill "$AGENT_PID" 2>/dev/null
		wait "$AGENT_PID" 2>/dev/null
	fi
	[ -n "${KXE_AGENT_LOG:-}" ] && cp "$KXE_TMP/agent.log" "$KXE_AGENT_LOG" 2>/dev/null
	# the child cgroup standing in for the host's cgroup2 root: only processes
	# this test put there; its socket programs go with it
	if [ -n "$CG" ] && [ -d "$CG" ]; then
		for d in $(cat "$CG/cgroup.procs" 2>/dev/null); do kill "$d" 2>/dev/null; done
		sleep 0.2
		rmdir "$CG" 2>/dev/null || echo "# could not remove $CG" >&2
	fi
	# mount points this test had to create (empty; removed deepest first)
	for ((d = ${#MADE_DIRS[@]} - 1; d >= 0; d--)); do
		rmdir "${MADE_DIRS[$d]}" 2>/dev/null
	done
	(exit $rc)
	kxe_cleanup
}
trap deploy_cleanup EXIT

n1() { kxe_in "$NS_N1" "$@"; }
ctl() { kxe_in "$NS_N2" curl -s -m 5 -X POST "http://$CTRL/$1" "${@:2}"; }
apply() { ctl apply --data-binary "$1" >/dev/null; }
# kxp inside the agent's mount namespace (where its pins are), with the agent's
# root: entering a mount namespace alone resets the root to the namespace's, which
# is not ours when the tests run in a chroot
kxp_pod() { nsenter --target "$AGENT_PID" --mount --root "$KXP" "$@"; }
svc() { kxp_pod svc list --instance "$INSTANCE" -o json 2>&1; }
wait_for()
{
	local cond=$1 t=${2:-15} i
	for i in $(seq $((t * 10))); do
		[ "$(svc | jq -r "$cond" 2>/dev/null)" = true ] && return 0
		sleep 0.1
	done
	return 1
}

# mkdir -p, remembering what did not exist (to remove it afterwards)
mkdirs()
{
	local p=$1 missing=()
	while [ ! -e "$p" ]; do
		missing=("$p" "${missing[@]}")
		p=$(dirname "$p")
	done
	for p in "${missing[@]}"; do
		mkdir "$p" || return 1
		MADE_DIRS+=("$p")
	done
}

# ---- the manifests, read as they are written ---------------------------------
# (The YAML is checked with the project's decoder by the unit test
# deploy_*; here the few values needed are read line by line.)

# The agent container's command, one argument a line.
ds_command()
{
	awk '/^      containers:/ {c = 1} c && /^          command:/ {on = 1; next}
		on && /^            - / {sub(/^            - /, ""); print; next} on {exit}' "$DEPLOY/daemonset.yaml"
}

# The ConfigMap's config.yaml (the block scalar, indentation removed).
cm_config()
{
	awk '/^  config.yaml: \|/ {on = 1; next} on && /^    / {sub(/^    /, ""); print; next} on && /^[^ ]/ {exit}
		on && /^$/ {print}' "$DEPLOY/configmap.yaml"
}

cm_key() { sed -n "s/^  $1: \"\\(.*\\)\"$/\\1/p" "$DEPLOY/configmap.yaml"; }

# "group/resource verb" lines the ClusterRole grants (flow-style lists, as written).
role_grants()
{
	awk '/^kind: ClusterRole$/ {r = 1} /^---/ {r = 0}
		r && /apiGroups:/ {g = $0; sub(/.*\[/, "", g); sub(/\].*/, "", g); gsub(/"/, "", g)}
		r && /resources:/ {s = $0; sub(/.*\[/, "", s); sub(/\].*/, "", s)}
		r && /verbs:/ {v = $0; sub(/.*\[/, "", v); sub(/\].*/, "", v);
			n = split(s, rs, /, */); m = split(v, vs, /, */);
			for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) print g "/" rs[i] " " vs[j]}' "$DEPLOY/rbac.yaml" | sort -u
}

# "group/resource verb" lines of the requests the API server saw.
requested()
{
	ctl log | jq -r '.[] | select(.code < 400) | .path as $p | (.watch // "") as $w |
		($p | capture("^/(api/v1|apis/(?<g>[^/]+)/[^/]+)(/namespaces/[^/]+)?/(?<r>[a-z]+)(?<n>/[^/?]+)?$")) as $m |
		"\($m.g // "")/\($m.r) \(if ($w == "1" or $w == "true") then "watch" elif $m.n then "get" else "list" end)"' | sort -u
}

# ---- objects -------------------------------------------------------------------
objects()
{
	local ep1='{"addresses":["'$POD1B_IP'"],"conditions":{"ready":true,"serving":true,"terminating":false},"nodeName":"node1"}'
	local ep2='{"addresses":["'$POD2A_IP'"],"conditions":{"ready":true,"serving":true,"terminating":false},"nodeName":"node2"}'
	cat <<J
[
 {"apiVersion":"v1","kind":"Node","metadata":{"name":"node1"},"status":{"addresses":[{"type":"InternalIP","address":"$NODE1_IP"}]}},
 {"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"test"},
  "spec":{"type":"NodePort","clusterIP":"10.96.0.43","clusterIPs":["10.96.0.43"],"externalTrafficPolicy":"Cluster",
   "ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":8080,"nodePort":30085}]}},
 {"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"web-1","namespace":"test",
  "labels":{"kubernetes.io/service-name":"web"}},"addressType":"IPv4","endpoints":[$ep1,$ep2],
  "ports":[{"name":"http","protocol":"TCP","port":8080}]},
 {"apiVersion":"v1","kind":"Service","metadata":{"name":"local","namespace":"test"},
  "spec":{"type":"NodePort","clusterIP":"10.96.0.44","clusterIPs":["10.96.0.44"],"externalTrafficPolicy":"Local",
   "ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":8080,"nodePort":30086}]}},
 {"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"local-1","namespace":"test",
  "labels":{"kubernetes.io/service-name":"local"}},"addressType":"IPv4","endpoints":[$ep1],
  "ports":[{"name":"http","protocol":"TCP","port":8080}]}
]
J
}

# ---- setup ---------------------------------------------------------------------------
make_pki()
{
	local d=$KXE_TMP/pki
	mkdir -p "$d" && cd "$d" || return 1
	openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 \
		-subj "/CN=kxp-test-ca" >/dev/null 2>&1 || return 1
	openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
		-subj "/CN=kube-apiserver" >/dev/null 2>&1 || return 1
	printf 'subjectAltName=IP:%s,DNS:kubernetes\nextendedKeyUsage=serverAuth\n' "$NODE2_IP" >ext.cnf
	openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
		-extfile ext.cnf -out server.crt >/dev/null 2>&1 || return 1
	cd - >/dev/null
}

start_api()
{
	# the "control plane": node2's address, reached over the fabric
	kxe_fake_api "$NS_N2" "$NODE2_IP:0" --tls-cert "$KXE_TMP/pki/server.crt" --tls-key "$KXE_TMP/pki/server.key" \
		--token "$(cat "$KXE_TMP/sa/token")" --bookmark-interval 2 --max-seconds 140 --load "$KXE_TMP/objects.json"
}

# The pod: its mounts in a private mount namespace, its environment, the
# container's command line, in node1's network namespace (hostNetwork).
start_agent()
{
	local args=() env=() cfg_dir=$KXE_TMP/etc-kxp a conf_path
	mapfile -t args < <(ds_command)
	[ "${args[0]}" = /usr/local/bin/kxp ] && [ "${args[1]}" = agent ] ||
		{ KXE_SETUP_ERR="daemonset.yaml: agent command not found: ${args[*]}"; return 1; }
	args[0]=$KXP
	for i in "${!args[@]}"; do
		[ "${args[$i]}" = '$(NODE_NAME)' ] && args[$i]=node1
		[ "${args[$i]}" = --instance ] && INSTANCE=${args[$((i + 1))]}
		[ "${args[$i]}" = --config ] && conf_path=${args[$((i + 1))]}
	done
	[ -n "$INSTANCE" ] && [ "$(dirname "$conf_path")" = /etc/kxp ] ||
		{ KXE_SETUP_ERR="daemonset.yaml: --instance/--config /etc/kxp/... not found"; return 1; }
	mkdir -p "$cfg_dir"
	cm_config >"$cfg_dir/$(basename "$conf_path")"
	HZ_PORT=$(sed -n 's/^healthzBindAddress: .*:\([0-9]*\)$/\1/p' "$cfg_dir/$(basename "$conf_path")")
	[ -n "$HZ_PORT" ] || { KXE_SETUP_ERR="configmap.yaml: no healthzBindAddress port"; return 1; }
	mkdirs /etc/kxp && mkdirs "$(readlink -f /var/run)/secrets/kubernetes.io/serviceaccount" && mkdirs /run/kxp ||
		{ KXE_SETUP_ERR="cannot create the pod's mount points"; return 1; }
	# apiserver-host/-port: an operator sets them to the API server; here, the test's
	env=(NODE_NAME=node1 KUBERNETES_SERVICE_HOST="${API%:*}" KUBERNETES_SERVICE_PORT="${API##*:}")
	[ -n "$(cm_key apiserver-host)" ] && [ -n "$(cm_key apiserver-port)" ] ||
		{ KXE_SETUP_ERR="configmap.yaml: apiserver-host/-port missing"; return 1; }
	# The host's cgroup2 root (--cgroup-root /sys/fs/cgroup) is, in the pod's
	# mount namespace here, a child cgroup this test made: never the machine's.
	# No mount of the pod's may reach the host: every mount point is made private
	# first. (unshare's own --propagation private remounts / and fails where /
	# is not a mount point, as in a chroot: then each visible mount is done.)
	# shellcheck disable=SC2016 # expanded by the inner shell
	unshare --mount --propagation unchanged -- sh -c '
		mount --make-rprivate / 2>/dev/null ||
			awk "{print \$5}" /proc/self/mountinfo | while read -r m; do mount --make-private "$m" || exit 91; done || exit 91
		mount -t bpf bpf /sys/fs/bpf && mount -t tmpfs tmpfs /run/kxp &&
		mount --bind "$1" /etc/kxp && mount --bind "$2" '"$SA_PATH"' &&
		mount --bind "$3" /sys/fs/cgroup || exit 90
		shift 3
		exec nsenter --net="/run/netns/'"$NS_N1"'" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"' \
		sh "$cfg_dir" "$KXE_TMP/sa" "$CG" "${env[@]}" "${args[@]}" >>"$KXE_TMP/agent.log" 2>&1 &
	AGENT_PID=$!
}

setup()
{
	kxe_setup nosync || return 1
	command -v openssl >/dev/null || { KXE_SETUP_ERR="openssl is missing"; return 1; }
	[ -x "$FAKE" ] || { KXE_SETUP_ERR="$FAKE is not built"; return 1; }
	make_pki || { KXE_SETUP_ERR="openssl could not make the test CA"; return 1; }
	# the projected service-account volume: token, ca.crt, namespace
	mkdir -p "$KXE_TMP/sa"
	head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$KXE_TMP/sa/token"
	cp "$KXE_TMP/pki/ca.crt" "$KXE_TMP/sa/ca.crt"
	echo -n kube-system >"$KXE_TMP/sa/namespace"
	objects >"$KXE_TMP/objects.json"
	CG_ROOT=/sys/fs/cgroup/unified
	[ "$(stat -f -c %T "$CG_ROOT" 2>/dev/null)" = cgroup2fs ] || CG_ROOT=/sys/fs/cgroup
	[ "$(stat -f -c %T "$CG_ROOT" 2>/dev/null)" = cgroup2fs ] || { KXE_SETUP_ERR="no cgroup v2 mount"; return 1; }
	CG=$CG_ROOT/kxp-deploy-$KXE_ID
	mkdir "$CG" || { KXE_SETUP_ERR="cannot create $CG"; return 1; }
	start_api || { KXE_SETUP_ERR="test API server did not start: $(cat "$KXE_TMP/api.log")"; return 1; }
	start_agent
}

# ---- cases -------------------------------------------------------------------------------
case_programs_and_serves()
{
	wait_for 'any(.[]; .frontend == "10.96.0.43:80/tcp" and .count == 2)' 20 ||
		fail "agent did not program the Services: $(tail -5 "$KXE_TMP/agent.log")" || return
	kxe_probe "$NS_POD1A" --tcp --dst 10.96.0.43:80 --count 30 >/dev/null
	expect_all_ok || return
	expect_backends pod1b pod2a || return
	kxe_probe "$NS_EXT" --tcp --dst "$NODE1_IP:30086" --count 10 >/dev/null
	expect_all_ok || return
	expect_backends pod1b || return
	expect_client_seen "$EXT_IP"
}

case_probes()
{
	local out
	# as the kubelet probes: host 127.0.0.1 (host network), the manifest's paths and port
	out=$(n1 curl -s -m 3 -w ' %{http_code}' "http://127.0.0.1:$HZ_PORT/healthz")
	[ "${out##* }" = 200 ] || fail "readiness /healthz on $HZ_PORT: $out" || return
	out=$(n1 curl -s -m 3 -w ' %{http_code}' "http://127.0.0.1:$HZ_PORT/livez")
	[ "${out##* }" = 200 ] || fail "liveness /livez on $HZ_PORT: $out"
}

case_credentials()
{
	local st
	st=$(ctl stats)
	# the token from the projected volume was sent, TLS verified against its ca.crt
	[ "$(jq -r .unauthorized <<<"$st")" = 0 ] && [ "$(jq -r .lists <<<"$st")" -ge 3 ] ||
		fail "API server saw: $st" || return
	grep -q "insecure\|skip.*verif" "$KXE_TMP/agent.log" && fail "agent mentions skipping TLS verification" || return 0
}

case_rbac_exact()
{
	local want got
	want=$(role_grants)
	got=$(requested)
	[ -n "$got" ] || fail "no requests logged" || return
	[ "$want" = "$got" ] ||
		fail "ClusterRole grants [$(xargs <<<"$want" | tr '\n' ' ')] but the agent requested [$(tr '\n' ';' <<<"$got")]"
}

case_dual_stack_reported()
{
	apply '{"apiVersion":"v1","kind":"Service","metadata":{"name":"dual","namespace":"test"},"spec":{"clusterIP":"10.96.0.70","clusterIPs":["10.96.0.70","fd00:96::70"],"ipFamilies":["IPv4","IPv6"],"ipFamilyPolicy":"RequireDualStack","ports":[{"port":80,"targetPort":8080}]}}'
	apply '{"apiVersion":"v1","kind":"Service","metadata":{"name":"six","namespace":"test"},"spec":{"clusterIP":"fd00:96::71","clusterIPs":["fd00:96::71"],"ipFamilies":["IPv6"],"ports":[{"port":80,"targetPort":8080}]}}'
	apply '{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"dual-1","namespace":"test","labels":{"kubernetes.io/service-name":"dual"}},"addressType":"IPv4","endpoints":[{"addresses":["'$POD2A_IP'"],"conditions":{"ready":true}}],"ports":[{"name":"","protocol":"TCP","port":8080}]}'
	wait_for 'any(.[]; .frontend == "10.96.0.70:80/tcp" and .count == 1)' ||
		fail "the dual-stack Service's IPv4 ClusterIP is not served" || return
	for _ in $(seq 30); do
		grep -q 'Service test/six is IPv6-only: not served' "$KXE_TMP/agent.log" && break
		sleep 0.1
	done
	grep -q 'Service test/dual is dual-stack: served on its IPv4 ClusterIP only' "$KXE_TMP/agent.log" &&
		grep -q 'Service test/six is IPv6-only: not served' "$KXE_TMP/agent.log" &&
		grep -q 'IPv6: 1 dual-stack Service served on IPv4 only, 1 IPv6-only Service not served' "$KXE_TMP/agent.log" ||
		fail "dual-stack/IPv6-only Services not reported: $(grep -i ipv6 "$KXE_TMP/agent.log" | tail -3)" || return
	kxe_probe "$NS_POD1A" --tcp --dst 10.96.0.70:80 --count 5 >/dev/null
	expect_all_ok
}

# While kube-proxy runs it holds the healthCheckNodePorts: the agent retries
# and takes a port over once it is free (a migration without a gap).
case_hc_port_taken_over()
{
	local holder out i
	# nsenter execs kxp-echo: $! is the process that holds the port
	nsenter --net="/run/netns/$NS_N1" -- "$KXE_ECHO" --name holder --tcp 32100 --max-seconds 60 \
		>"$KXE_TMP/holder.out" 2>&1 &
	holder=$!
	KXE_PIDS+=($holder)
	for i in $(seq 50); do
		grep -q ready "$KXE_TMP/holder.out" && break
		sleep 0.1
	done
	apply '{"apiVersion":"v1","kind":"Service","metadata":{"name":"lbl","namespace":"test"},"spec":{"type":"LoadBalancer","clusterIP":"10.96.0.72","clusterIPs":["10.96.0.72"],"externalTrafficPolicy":"Local","healthCheckNodePort":32100,"ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":8080,"nodePort":30087}]}}'
	apply '{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"lbl-1","namespace":"test","labels":{"kubernetes.io/service-name":"lbl"}},"addressType":"IPv4","endpoints":[{"addresses":["'$POD1B_IP'"],"conditions":{"ready":true},"nodeName":"node1"}],"ports":[{"name":"http","protocol":"TCP","port":8080}]}'
	for i in $(seq 50); do
		grep -q 'healthCheckNodePort 32100 .*is kube-proxy still running' "$KXE_TMP/agent.log" && break
		sleep 0.1
	done
	grep -q 'healthCheckNodePort 32100 .*is kube-proxy still running' "$KXE_TMP/agent.log" ||
		fail "the taken port was not reported: $(tail -3 "$KXE_TMP/agent.log")" || return
	kill "$holder"
	wait "$holder" 2>/dev/null
	for i in $(seq 60); do
		out=$(kxe_in "$NS_EXT" curl -s -m 1 "http://$NODE1_IP:32100/" 2>/dev/null)
		[ -n "$out" ] && jq -e '.localEndpoints == 1' <<<"$out" >/dev/null 2>&1 && break
		sleep 0.1
	done
	[ -n "$out" ] && jq -e '.service.name == "lbl" and .localEndpoints == 1' <<<"$out" >/dev/null 2>&1 ||
		fail "healthCheckNodePort not taken over after the port was freed: $out" || return
	for i in $(seq 20); do
		grep -q 'health-check servers: all open now' "$KXE_TMP/agent.log" && return 0
		sleep 0.1
	done
	fail "take-over not logged"
}

setup
# A process on the node (in the cgroup the DaemonSet's --cgroup-root covers, and
# in node1's network namespace) reaches a ClusterIP through the socket hooks;
# nothing of kxp is attached to the machine's own cgroup root.
case_node_process_socket_lb()
{
	local before after root
	before=$(kxp_pod stats --instance "$INSTANCE" -o json | jq '[.reasons[]? | select(.reason == "sock_xlate") | .packets] | add // 0')
	KXE_LAST=$(bash -c 'echo $$ >"$1/cgroup.procs" && exec nsenter --net="/run/netns/$2" -- "${@:3}"' \
		_ "$CG" "$NS_N1" "$KXE_PROBE" --tcp --dst 10.96.0.43:80 --count 10 --timeout-ms 700 --max-seconds 20 2>&1)
	expect_all_ok || return
	after=$(kxp_pod stats --instance "$INSTANCE" -o json | jq '[.reasons[]? | select(.reason == "sock_xlate") | .packets] | add // 0')
	[ "$after" -ge $((before + 10)) ] || fail "socket translations $before -> $after, want +10" || return
	root=$(bpftool -j cgroup show "$CG_ROOT" 2>/dev/null | jq -r '.[]? | select(.name | startswith("kxp_")) | .name' | xargs)
	[ -z "$root" ] || fail "kxp programs on the machine's cgroup root: $root"
}

kxe_case programs_and_serves case_programs_and_serves
kxe_case node_process_socket_lb case_node_process_socket_lb
kxe_case probes case_probes
kxe_case credentials case_credentials
kxe_case rbac_exact case_rbac_exact
kxe_case dual_stack_reported case_dual_stack_reported
kxe_case hc_port_taken_over case_hc_port_taken_over
kxe_finish
