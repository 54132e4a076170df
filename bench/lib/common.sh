# shellcheck shell=bash
# Shared by the peer scenarios (30-program, 40-peerconn): arguments, the
# peer modes and their tools, the IPVS check, timed loads in a memory cgroup,
# and the jq statistics (median/min/max, per-run-pair ratios).

BENCH_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../../selftests/lib/netns.sh
source "$BENCH_SRC/selftests/lib/netns.sh"
build=$(realpath "${KXP_BUILD:-${BENCH_BUILD:-$BENCH_SRC/build}}")
GEN=$BENCH_SRC/bench/lib/gen.awk

json= md= reps=5 quick=0
bench_args()
{
	while [ $# -gt 0 ]; do
		case $1 in
		--json) json=$2; shift 2 ;;
		--md) md=$2; shift 2 ;;
		--reps) reps=$2; shift 2 ;;
		--quick) quick=1; shift ;;
		*) echo "$0: unknown argument $1" >&2; exit 2 ;;
		esac
	done
	[ -n "$json" ] && [ -n "$md" ] || { echo "$0: --json and --md are required" >&2; exit 2; }
}

# connload_servers SECONDS PORT...: bench/connload servers in the e2e
# topology's pod1b (selftests/e2e/lib.sh), pinned to $srv_cpu, for at most
# SECONDS; kxe_cleanup stops them. Returns 1 when one did not start.
connload_servers()
{
	local secs=$1 port
	shift
	for port in "$@"; do
		nsenter --net="/run/netns/$NS_POD1B" -- "$build/bench/connload" serve --port "$port" --cpu "$srv_cpu" \
			--duration "$secs" >"$KXE_TMP/server-$port.out" 2>&1 &
		KXE_PIDS+=($!)
	done
	sleep 0.3
	for port in "$@"; do
		grep -q serving "$KXE_TMP/server-$port.out" ||
			{ echo "connload server on port $port did not start: $(cat "$KXE_TMP/server-$port.out")" >&2; return 1; }
	done
}

# The peers: kube-proxy's iptables mode with each iptables backend, and its
# nftables mode. Names used in every result file. Its IPVS mode ("ipvs") is a
# peer of the peerconn scenario where the kernel has ip_vs (ipvs_status):
# not on the project's machine, whose kernel has no modules; the ipvs
# scenario boots a Debian kernel that has it.
PEERS=(iptables-legacy iptables-nft nftables)
peer_tool()
{
	case $1 in
	iptables-legacy) echo "$(command -v iptables-legacy-restore) ($(iptables-legacy --version 2>&1))" ;;
	iptables-nft) echo "$(command -v iptables-nft-restore) ($(iptables-nft --version 2>&1))" ;;
	nftables) echo "$(command -v nft) ($(nft --version 2>&1))" ;;
	ipvs) echo "$(command -v ipvsadm) -R ($(ipvsadm --version 2>&1 | head -n1)), $(command -v ipset) ($(ipset --version 2>&1 | head -n1))" ;;
	esac
}

# IPVS needs the ip_vs module (loaded here when the kernel has it), and
# kube-proxy's IPVS layout needs ipvsadm, ipset and a dummy device.
ipvs_status()
{
	if ! [ -e /proc/net/ip_vs ] && ! { modprobe ip_vs >/dev/null 2>&1 && [ -e /proc/net/ip_vs ]; }; then
		echo "skipped: kernel lacks ip_vs"
	elif ! command -v ipvsadm >/dev/null || ! command -v ipset >/dev/null; then
		echo "skipped: ipvsadm or ipset missing"
	else
		echo available
	fi
}

# The lb algorithms `kxp sync --lb-algorithm` accepts: each is tried on one
# service in a scratch namespace; an algorithm counts when the sync succeeds.
kxp_algorithms()
{
	local ns=kxpalg-$$-$RANDOM d a inst
	d=$(mktemp -d)
	awk -f "$GEN" -v fmt=yaml -v n=1 -v e=2 >"$d/s.yaml"
	ip netns add "$ns" || return 1
	for a in random rr maglev; do
		inst=kxpalg$$$RANDOM
		if timeout 30 "$build/kxp" --netns "$ns" sync --instance "$inst" --from-file "$d" --node-name node1 \
			--node-ip 198.51.100.1 --cluster-cidr 10.244.0.0/16 --service-cidr 10.96.0.0/12 \
			--lb-algorithm "$a" >/dev/null 2>&1; then
			echo "$a"
		fi
		"$build/kxp" --netns "$ns" cleanup --instance "$inst" >/dev/null 2>&1
		rm -rf "/sys/fs/bpf/kxp-$inst"
	done
	ip netns del "$ns"
	rm -rf "$d"
}

# Memory cgroup (v1 memory controller or v2) in which loads run: the kernel
# memory they leave behind (rule blobs, nft objects, BPF maps: all charged to
# the creator's memcg) is what the cgroup still holds after the loader exits.
memcg_root()
{
	if [ -f /sys/fs/cgroup/memory/memory.kmem.usage_in_bytes ]; then
		echo /sys/fs/cgroup/memory
	elif [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
		echo /sys/fs/cgroup
	fi
}
MEMCG_ROOT=$(memcg_root)
memcg_new()
{
	[ -n "$MEMCG_ROOT" ] || return 0
	local cg=$MEMCG_ROOT/kxpbench-$$-$RANDOM
	mkdir "$cg" 2>/dev/null && echo "$cg"
}
memcg_kmem()
{
	local cg=$1
	[ -n "$cg" ] || { echo null; return; }
	if [ -f "$cg/memory.kmem.usage_in_bytes" ]; then
		cat "$cg/memory.kmem.usage_in_bytes"
	elif [ -f "$cg/memory.stat" ]; then
		awk '$1 == "kernel" { print $2; f = 1 } END { if (!f) print "null" }' "$cg/memory.stat"
	else
		echo null
	fi
}
memcg_del() { [ -n "$1" ] && rmdir "$1" 2>/dev/null; return 0; }

# timed_run LIMIT CG OUTVAR CMD...: run CMD (stdin kept) inside cgroup CG under
# a timeout; sets OUTVAR to a JSON object {ms, rc, timed_out, rss_kb}. CMD's
# stdout goes to $TR_STDOUT when set, else nowhere.
timed_run()
{
	local limit=$1 cg=$2 var=$3 t0 t1 rc tf rss
	shift 3
	tf=$(mktemp)
	t0=$(date +%s%N)
	# shellcheck disable=SC2016 # $$ and "$@" belong to the inner shell
	/usr/bin/time -f '%M' -o "$tf" timeout --kill-after=5 "$limit" \
		sh -c '[ -n "$0" ] && echo $$ >"$0/cgroup.procs"; exec "$@"' "$cg" "$@" >"${TR_STDOUT:-/dev/null}" 2>"$tf.err"
	rc=$?
	t1=$(date +%s%N)
	rss=$(grep -E '^[0-9]+$' "$tf" | tail -n1)
	printf -v "$var" '{"ms":%s,"rc":%d,"timed_out":%s,"rss_kb":%s,"err":%s}' \
		"$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.3f", d / 1e6 }')" "$rc" \
		"$([ "$rc" = 124 ] || [ "$rc" = 137 ] && echo true || echo false)" "${rss:-null}" \
		"$(head -c 300 "$tf.err" | jq -Rs .)"
	rm -f "$tf" "$tf.err"
}

# The order of the modes in repetition REP: forward on odd runs, reversed on even ones.
alternate()
{
	local rep=$1 i
	shift
	local m=("$@")
	if [ $((rep % 2)) = 1 ]; then
		printf '%s\n' "${m[@]}"
	else
		for ((i = ${#m[@]} - 1; i >= 0; i--)); do echo "${m[i]}"; done
	fi
}

# jq definitions: median, {median,min,max}, number formatting.
JQ_STATS='
def med: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
	else (.[length / 2 - 1] + .[length / 2]) / 2 end;
def smm: map(select(. != null)) | if length == 0 then null else {median: med, min: min, max: max, n: length} end;
def f: if . == null then "-" elif . >= 100 then (. | round | tostring)
	elif . >= 1 then ((. * 100 | round) / 100 | tostring) else ((. * 1000 | round) / 1000 | tostring) end;
def r: if . == null then "-" else "\(.median | f) (\(.min | f)–\(.max | f))" end;
'
