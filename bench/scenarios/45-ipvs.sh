#!/usr/bin/env bash
# Scenario "ipvs": kube-proxy's IPVS mode as a peer. This machine's kernel has
# no modules, so no ip_vs; Debian 12's stock kernel has it. The scenario boots
# that kernel under qemu (the kernel matrix's machinery: selftests/kernels/
# run.sh, TCG emulation) and runs the peerconn scenario inside it, with
# kube-proxy's IPVS layout (bench/lib/gen.awk, fmt=ipvs*) among the peers:
# kxp (XDP and socket LB), the iptables (nft-backed, Debian's default) and
# nftables layouts, IPVS and the no-translation ceiling, in the same guest and
# run. An emulated guest's absolute figures mean nothing; only the ratios
# within the run are reported.
# Called by bench/run.sh: 45-ipvs.sh --json FILE --md FILE --reps N [--quick]
# (crc32c_generic: libcrc32c, which conntrack and IPVS need, asks for a
# crc32c implementation when it loads.)
# Env: IPVS_KERNEL (default 6.1), IPVS_N (default "1 1000"), IPVS_DUR
# (seconds per run, default 2).
set -uo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../lib/common.sh
source bench/lib/common.sh
bench_args "$@"

die() { echo "45-ipvs.sh: $*" >&2; exit 1; }
# A guest run takes 12-15 min: more than the whole quick run's budget.
if [ "$quick" = 1 ] && [ -z "${IPVS_N:-}" ]; then
	jq -n '{scenario: "ipvs", skipped: "quick mode: the guest run takes 12-15 min (make bench, or bench/run.sh --only ipvs)"}' >"$json"
	printf '## ipvs: kube-proxy'"'"'s IPVS mode, in a Debian guest\n\nNot run in quick mode: the guest run takes 12-15 min (`make bench`, or `bench/run.sh --only ipvs`; `IPVS_N=1` runs it in quick mode).\n' >"$md"
	exit 0
fi
kernel=${IPVS_KERNEL:-6.1}
greps=$((reps < 3 ? reps : 3)) # the guest is slow: at most 3 runs a point
work=$(mktemp -d /tmp/kxp-bench-ipvs.XXXXXX)
trap 'rm -rf "$work"' EXIT

xtables=$(dirname "$(ls /usr/lib/*/xtables/libxt_mark.so 2>/dev/null | head -n1)" 2>/dev/null)
[ -d "$xtables" ] || die "iptables' extensions not found (apt-get install iptables)"
cat >"$work/guest.env" <<EOF
export PEERCONN_N='${IPVS_N:-1 1000}'
export PEERCONN_MODES='ceiling kxp kxp-sock iptables-nft nftables ipvs'
export PEERCONN_DUR=${IPVS_DUR:-2}
export IPVS_REPS=$greps
EOF

t0=$(date +%s)
KXP_BUILD=$build KXP_KERNELS_RESULTS=$work/kernels KXP_KERNELS_BPF=0 KXP_KERNELS_TRAFFIC='' \
	KXP_KERNELS_RUN=bench/lib/ipvs-guest.sh KXP_KERNELS_RUN_LIMIT=2400 KXP_KERNELS_TIMEOUT=2700 \
	KXP_KERNELS_GUEST_ENV=$work/guest.env KXP_KERNELS_MEM=3G \
	KXP_KERNELS_PKGS="ipvsadm ipset iptables nftables conntrack time kmod" \
	KXP_INITRAMFS_BENCH=1 KXP_INITRAMFS_DIRS="$xtables" \
	KXP_INITRAMFS_TOOLS="ipvsadm ipset iptables-nft iptables-nft-restore nft conntrack modprobe
		time base64 tar realpath rmdir od" \
	KXP_INITRAMFS_MODTREE="net/netfilter net/ipv4/netfilter net/ipv6/netfilter drivers/net/dummy.ko
		crypto/crc32c_generic.ko" \
	bash selftests/kernels/run.sh "$kernel" 2>&1 | tee "$work/run.out"
rc=${PIPESTATUS[0]}
elapsed=$(($(date +%s) - t0))
log=$(ls "$work"/kernels/*.log 2>/dev/null | head -n1)
[ -n "$log" ] || die "the guest did not boot (run.sh exit $rc): $(tail -5 "$work/run.out")"
kver=$(basename "$log" .log)
logdir=$(dirname "$json")/../logs
[ -d "$logdir" ] || logdir=$(dirname "$json")
cp "$log" "$logdir/ipvs-guest.log" 2>/dev/null

mkdir -p "$work/out"
tr -d '\r' <"$log" | sed -n '/^@@kxp blob begin/,/^@@kxp blob end/p' | sed '1d;$d' | base64 -d 2>/dev/null |
	tar -C "$work/out" -xzf - 2>/dev/null
[ -s "$work/out/peerconn.json" ] ||
	die "no peerconn result from the guest (run.sh exit $rc; guest log: $logdir/ipvs-guest.log): $(tr -d '\r' <"$log" | grep -E '40-peerconn|FAIL|error' | tail -5)"

jq --arg k "$kver" --argjson el "$elapsed" --argjson reps "$greps" '{
  scenario: "ipvs", guest_kernel: $k, elapsed_s: $el, reps: $reps,
  guest: "qemu TCG (emulated), 2 vCPUs, 3 GiB; ratios within this run only",
  ratios: [ .points[] | .n as $n | .meas | to_entries[] | .key as $x | .value as $v | {
    n: $n, meas: $x,
    kxp_vs_ipvs: ($v.ipvs.kxp_vs_this.conns_per_s // null),
    kxp_sock_vs_ipvs: ($v.ipvs.kxp_sock_vs_this.conns_per_s // null),
    kxp_vs_nftables: ($v.nftables.kxp_vs_this.conns_per_s // null),
    kxp_vs_iptables_nft: ($v["iptables-nft"].kxp_vs_this.conns_per_s // null),
    ipvs_vs_ceiling: ($v.ipvs.vs_ceiling.conns_per_s // null),
    kxp_vs_ceiling: ($v.kxp.vs_ceiling.conns_per_s // null),
    kxp_sock_vs_ceiling: ($v["kxp-sock"].vs_ceiling.conns_per_s // null),
    ipvs_p99_vs_ceiling: ($v.ipvs.vs_ceiling.p99 // null),
    kxp_p99_vs_ceiling: ($v.kxp.vs_ceiling.p99 // null)} | select(.meas != "pod" and .meas != "ext")],
  peerconn: .
}' "$work/out/peerconn.json" >"$json" || die "summary failed"

{
	echo "## ipvs: kube-proxy's IPVS mode, in a Debian guest"
	echo
	echo "This machine's kernel has no ip_vs, so the peerconn scenario ran inside Debian's stock kernel $kver"
	echo "booted under qemu (TCG emulation, 2 vCPUs; selftests/kernels/run.sh), with kube-proxy's IPVS layout among"
	echo "the peers: every ClusterIP on the kube-ipvs0 dummy device, a virtual server per ClusterIP and NodePort"
	echo "(rr, masquerading real servers), kube-proxy's ipsets and iptables rules (nft backend). Emulated figures"
	echo "mean nothing on their own: only the ratios of this run. $greps runs a point, ${IPVS_DUR:-2} s each, modes"
	echo "alternating; medians (min–max) of the per-run-pair ratios of new connections/s. ${elapsed} s in all."
	echo
	echo "| N | measurement | kxp/ipvs | kxp-sock/ipvs | kxp/nftables | kxp/iptables-nft | ipvs/ceiling | kxp/ceiling | kxp-sock/ceiling | p99 ipvs/ceiling | p99 kxp/ceiling |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
	jq -r "$JQ_STATS"'.ratios[] | "| \(.n) | \(.meas) | \(.kxp_vs_ipvs | r) | \(.kxp_sock_vs_ipvs | r) | \(.kxp_vs_nftables | r) | \(.kxp_vs_iptables_nft | r) | \(.ipvs_vs_ceiling | r) | \(.kxp_vs_ceiling | r) | \(.kxp_sock_vs_ceiling | r) | \(.ipvs_p99_vs_ceiling | r) | \(.kxp_p99_vs_ceiling | r) |"' "$json"
	echo
	echo "The guest's peerconn tables (emulated absolute figures):"
	echo
	sed 's/^## /### /; s/^### N/#### N/' "$work/out/peerconn.md"
} >"$md" || die "markdown failed"
[ "$rc" = 0 ] || echo "45-ipvs.sh: the kernel run reported a failure (exit $rc); results kept" >&2
exit 0
