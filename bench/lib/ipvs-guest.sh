#!/usr/bin/env bash
# Runs inside the Debian guest of the ipvs scenario (bench/scenarios/
# 45-ipvs.sh boots it through selftests/kernels/run.sh): the peerconn
# scenario with kube-proxy's IPVS layout among its peers, then its result
# files on the console as a base64 tar between "@@kxp blob" lines.
# Env (from the scenario): PEERCONN_N, PEERCONN_MODES, PEERCONN_DUR, IPVS_REPS.
set -u
cd /kxp/src || exit 1
out=$(mktemp -d /tmp/ipvs-out.XXXXXX)
trap 'rm -rf "$out"' EXIT
echo "ipvs-guest: ip_vs $(modprobe ip_vs 2>&1 && echo loaded), $(ipvsadm --version 2>&1 | head -n1)"
KXP_BUILD=/kxp/build bash bench/scenarios/40-peerconn.sh --json "$out/peerconn.json" --md "$out/peerconn.md" \
	--reps "${IPVS_REPS:-3}" --quick
rc=$?
echo "@@kxp blob begin"
tar -C "$out" -czf - . | base64 -w 76
echo "@@kxp blob end rc=$rc"
exit "$rc"
