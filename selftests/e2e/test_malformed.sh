#!/usr/bin/env bash
# e2e: malformed objects in the input — kxp sync exits 2, names every rejected
# object, installs none of them, and every valid service still carries traffic.
source "$(dirname "$0")/lib.sh"
kxe_init malformed 200

write_bad()
{
	cat >"$KXE_MANIFESTS/bad-objects.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: bad-ip, namespace: test}
spec:
  type: ClusterIP
  clusterIP: 10.96.0.999
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: port-zero, namespace: test}
spec:
  type: ClusterIP
  clusterIP: 10.96.0.51
  ports: [{name: http, protocol: TCP, port: 0, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: port-big, namespace: test}
spec:
  type: ClusterIP
  clusterIP: 10.96.0.52
  ports: [{name: http, protocol: TCP, port: 70000, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {namespace: test}
spec:
  type: ClusterIP
  clusterIP: 10.96.0.53
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Gizmo
metadata: {name: gizmo-1, namespace: test}
spec: {size: 3}
YAML
}

SYNC_RC=

case_exit_code()
{
	[ "$SYNC_RC" = 2 ] || fail "kxp sync exited $SYNC_RC, want 2: $(head -c 400 "$KXE_TMP/sync-node1.out" | tr '\n' ' ')"
}

case_rejects_reported()
{
	local out=$KXE_TMP/sync-node1.out what missing=
	for what in bad-ip port-zero port-big Gizmo; do
		grep -q -- "$what" "$out" || missing="$missing $what"
	done
	# The nameless Service: a report line that names none of the others.
	grep -v -e bad-ip -e port-zero -e port-big -e Gizmo "$out" | grep -Eqi 'metadata\.name|(missing|no|empty|without)[^,;]*name|name[^,;]*(missing|required|empty)' ||
		missing="$missing (the Service without metadata.name)"
	[ -z "$missing" ] || fail "not reported:$missing; output: $(head -c 600 "$out" | tr '\n' ' ')"
}

case_rejects_not_installed()
{
	local n
	n=$(kxe_svc_json node1 | jq '[.[] | select(.frontend | test("^10\\.96\\.0\\.(51|52|53):"))] | length')
	[ "$n" = 0 ] || fail "$n frontends of rejected services installed"
}

case_valid_services_work()
{
	kxe_probe "$NS_POD1A" --tcp --dst 10.96.0.10:80 --count 20 >/dev/null
	expect_all_ok || return
	expect_backends pod1b pod2a || return
	kxe_probe "$NS_POD1A" --udp --dst 10.96.0.10:53 --count 10 >/dev/null
	expect_all_ok || return
	kxe_probe "$NS_EXT" --tcp --dst "$NODE1_IP:30080" --count 10 >/dev/null
	expect_all_ok || return
	expect_backends pod1b || return
	expect_client_seen "$EXT_IP"
}

if kxe_setup nosync; then
	write_bad
	kxe_sync node1
	SYNC_RC=$?
	kxe_log "kxp sync node1 (exit $SYNC_RC): $(head -c 1500 "$KXE_TMP/sync-node1.out")"
	kxe_sync node2 >/dev/null
fi
kxe_case exit_code case_exit_code
kxe_case rejects_reported case_rejects_reported
kxe_case rejects_not_installed case_rejects_not_installed
kxe_case valid_services_work case_valid_services_work
kxe_finish
