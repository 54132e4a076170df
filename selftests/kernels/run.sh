#!/usr/bin/env bash
# The kernel matrix (`make test-kernels`): boots Debian's stock kernels in qemu
# and runs kxp's BPF suite and a namespace traffic test inside each.
#
#   KXP_BUILD=DIR bash selftests/kernels/run.sh [KERNEL...]
#
# KERNEL: 5.10 (bullseye), 6.1 (bookworm), 6.12 (trixie), or the suite name;
# default all three, or $KERNELS ("5.10 6.1"). Per kernel it fetches the
# linux-image package from the Debian mirror (fetch-kernels.sh, cached), builds
# an initramfs with the build tree (mkinitramfs.sh), boots it with TCG
# (emulation; /dev/kvm on these machines cannot boot these kernels), keeps the
# guest's console in $KXP_BUILD/kernels/<release>.log and prints one line:
#
#   kernel 6.1.0-28-amd64 (bookworm): bpf 60 passed, 0 failed, 0 skipped; traffic 8 passed, 0 failed; 183 s
#
# then, for a kernel that failed, why, its first FAIL lines and the program
# load errors seen (the libbpf/verifier lines); last, one line counting
# kernels ("N passed, N failed, N skipped"; a kernel passes when every test in
# it passed). Exit status non-zero if any kernel failed.
#
# Env: KERNELS; KXP_KERNELS_CACHE (downloads and unpacked kernels, default
# /var/cache/kxp-kernels); KXP_KERNELS_TRAFFIC (the traffic tests: e2e file
# names without .sh, or paths relative to the source tree; default
# "test_clusterip test_external_local"); KXP_KERNELS_BPF_ARGS (bpf-tests name
# filters); KXP_KERNELS_TIMEOUT (seconds per boot, default 1500);
# KXP_KERNELS_ACCEL (tcg, default; kvm only where it is known to work);
# KXP_KERNELS_MEM (default 2G), KXP_KERNELS_SMP (default 2).
# For guests that run something else (the IPVS benchmark, bench/scenarios/
# 45-ipvs.sh): KXP_KERNELS_BPF=0 (no BPF suite), KXP_KERNELS_RUN (scripts in
# the source tree the guest runs after the tests; a kernel fails when one
# exits non-zero) and KXP_KERNELS_RUN_LIMIT, KXP_KERNELS_GUEST_ENV (a file
# appended to the guest's settings: exports for those scripts),
# KXP_KERNELS_PKGS (more host packages), KXP_KERNELS_RESULTS (where logs go,
# default $KXP_BUILD/kernels); mkinitramfs.sh's KXP_INITRAMFS_* pass through.
set -u
cd "$(dirname "$0")/../.." || exit 2
SRC=$PWD
HERE=$SRC/selftests/kernels
export KXP_SRCDIR=$SRC
export KXP_BUILD=${KXP_BUILD:-$SRC/build}
CACHE=${KXP_KERNELS_CACHE:-/var/cache/kxp-kernels}
RESULTS=${KXP_KERNELS_RESULTS:-$KXP_BUILD/kernels}
TRAFFIC=${KXP_KERNELS_TRAFFIC-test_clusterip test_external_local}
BOOT_LIMIT=${KXP_KERNELS_TIMEOUT:-1500}
ACCEL=${KXP_KERNELS_ACCEL:-tcg}

# Packages the host needs: qemu, the initramfs tools and what goes into it.
PKGS=(qemu-system-x86 busybox-static cpio xz-utils gzip dash kmod binutils coreutils grep sed mawk
	findutils iproute2 util-linux procps ethtool jq bpftool)
# shellcheck disable=SC2206 # a word list
PKGS+=(${KXP_KERNELS_PKGS:-})

install_deps()
{
	local p missing=()
	for p in "${PKGS[@]}"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "kernels: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

suite_of()
{
	case $1 in
	5.10 | bullseye) echo bullseye ;;
	6.1 | bookworm) echo bookworm ;;
	6.12 | trixie) echo trixie ;;
	*) return 1 ;;
	esac
}

# ---- parsing a guest's console log ------------------------------------------

# clean LOG: the console log without carriage returns and terminal escapes
# (SeaBIOS clears the screen right before the guest's first line).
clean()
{
	tr -d '\r' <"$1" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1bc//g'
}

# parse LOG: prints shell assignments (eval'd by the caller) with the counts:
# booted, done, modules, bpf_{pass,fail,skip,summary,rc}, tr_{pass,fail,skip},
# tr_broken (traffic files that did not finish), bpf_secs, tr_secs, boot_secs,
# run_fail (KXP_KERNELS_RUN scripts that failed or did not finish).
parse()
{
	clean "$1" | awk '
		BEGIN { sec = ""; booted = 0; done = 0; modules = "missing"; bpf_rc = ""; bpf_sum = 0
			bp = bf = bs = tp = tf = ts = broken = 0; bsecs = tsecs = 0; boot = ""; run_fail = 0 }
		/^@@kxp begin run / { run_fail++ }
		/^@@kxp end run .* rc=0 / { run_fail-- }
		/@@kxp begin kernel=/ { booted = 1; for (i = 1; i <= NF; i++) if ($i ~ /^uptime=/) boot = substr($i, 8) }
		/^@@kxp modules ok/ { modules = "ok" }
		/^@@kxp modules failed:/ { sub(/^@@kxp modules failed: */, ""); modules = "failed: " $0 }
		/^@@kxp begin bpf/ { sec = "bpf"; next }
		/^@@kxp end bpf/ { sec = ""; for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
			bpf_rc = v["rc"]; bsecs += v["uptime"] - v["start"]; next }
		/^@@kxp begin traffic/ { sec = "traffic"; tname = $4; tsum = 0; next }
		/^@@kxp end traffic/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
			tsecs += v["uptime"] - v["start"]
			if (!tsum) { broken++; tf++ }
			sec = ""; next }
		/^@@kxp done/ { done = 1 }
		sec == "bpf" && /^PASS: / { bp++ } sec == "bpf" && /^FAIL: / { bf++ } sec == "bpf" && /^SKIP: / { bs++ }
		sec == "bpf" && /^bpf: [0-9]+ passed/ { bpf_sum = 1 }
		sec == "traffic" && /^PASS: / { tp++ } sec == "traffic" && /^FAIL: / { tf++ } sec == "traffic" && /^SKIP: / { ts++ }
		sec == "traffic" && /^e2e\/[^ ]*: [0-9]+ passed/ { tsum = 1 }
		END {
			if (sec == "traffic" && !tsum) { broken++; tf++ }
			printf "booted=%d done=%d modules=\"%s\" bpf_pass=%d bpf_fail=%d bpf_skip=%d bpf_summary=%d bpf_rc=\"%s\" ", booted, done, modules, bp, bf, bs, bpf_sum, bpf_rc
			printf "tr_pass=%d tr_fail=%d tr_skip=%d tr_broken=%d bpf_secs=%d tr_secs=%d boot_secs=\"%s\" run_fail=%d\n", tp, tf, ts, broken, bsecs, tsecs, boot, run_fail
		}'
}

# load_errors LOG: the program load errors in the log, deduplicated, most
# frequent first: libbpf's "load failed" lines and the verifier's last word in
# each load log (the line before its statistics and the END marker).
load_errors()
{
	clean "$1" | awk '
		/-- BEGIN PROG LOAD LOG --/ { inlog = 1; last = ""; next }
		inlog && /-- END PROG LOAD LOG --/ {
			inlog = 0
			if (last != "") n["verifier: " last]++
			next
		}
		inlog {
			if ($0 ~ /^(processed [0-9]+ insns|verification time|stack depth|  \[\.\.\. )/ || $0 ~ /^[ \t]*$/) next
			last = $0; next
		}
		/^libbpf: / && /(failed|error|Error|invalid|unsupported|not supported|unknown|cannot|refused|-E[A-Z]+)/ {
			line = $0; gsub(/[ \t]+$/, "", line); n[line]++
		}
		END { for (k in n) printf "%d\t%s\n", n[k], k }' | sort -t"$(printf '\t')" -k1,1nr | head -"${2:-8}" |
		awk -F'\t' '{ printf "    load error (x%d): %s\n", $1, $2 }'
}

# ---- main ---------------------------------------------------------------------

args=("$@")
[ ${#args[@]} -gt 0 ] || read -r -a args <<<"${KERNELS:-5.10 6.1 6.12}"
suites=()
for k in "${args[@]}"; do
	s=$(suite_of "$k") || { echo "kernels: unknown kernel '$k' (5.10, 6.1, 6.12 or bullseye, bookworm, trixie)" >&2; exit 2; }
	suites+=("$s")
done

[ "$(id -u)" = 0 ] || { echo "kernels: needs root (apt-get, /var/cache)" >&2; exit 2; }
install_deps || { echo "kernels: installing packages failed" >&2; exit 1; }
if [ ! -x "$KXP_BUILD/bpf-tests" ] || [ ! -x "$KXP_BUILD/kxp" ]; then
	echo "kernels: $KXP_BUILD has no kxp/bpf-tests (make all)" >&2
	exit 1
fi
mkdir -p "$RESULTS"

fetched=$(bash "$HERE/fetch-kernels.sh" "$CACHE" "${suites[@]}")
fetch_rc=$?

# Under make test (KXP_KERNELS_PROTOCOL=1, selftests/run.sh): one protocol
# line per kernel (PASS:/FAIL:/SKIP: kernels/<release>) for its count.
proto() { [ "${KXP_KERNELS_PROTOCOL:-0}" = 1 ] && echo "$*"; return 0; }

# What the guests run.
conf=$RESULTS/guest.conf
{
	echo "KXP_BPF=${KXP_KERNELS_BPF:-1}"
	echo "KXP_BPF_ARGS='${KXP_KERNELS_BPF_ARGS:-}'"
	echo "KXP_TRAFFIC='$TRAFFIC'"
	echo "KXP_RUN='${KXP_KERNELS_RUN:-}'"
	echo "KXP_RUN_LIMIT=${KXP_KERNELS_RUN_LIMIT:-1200}"
	[ -z "${KXP_KERNELS_GUEST_ENV:-}" ] || cat "$KXP_KERNELS_GUEST_ENV"
} >"$conf"

case $ACCEL in
kvm) accel=(-machine accel=kvm -cpu host) ;;
*) accel=(-machine accel=tcg -cpu max) ;;
esac

n_pass=0 n_fail=0 n_skip=0
report=()
for s in "${suites[@]}"; do
	line=$(awk -v s="$s" '$1 == s' <<<"$fetched")
	if [ -z "$line" ]; then
		# under make test (KXP_KERNELS_PROTOCOL=1) a kernel the registry did
		# not give us is skipped: that says nothing about kxp
		if [ "${KXP_KERNELS_PROTOCOL:-0}" = 1 ]; then
			report+=("kernel ? ($s): not fetched (see the messages above); skipped")
			proto "SKIP: kernels/$s: skipped: the kernel package could not be fetched"
			n_skip=$((n_skip + 1))
		else
			report+=("kernel ? ($s): not fetched (see the messages above); FAIL")
			n_fail=$((n_fail + 1))
		fi
		continue
	fi
	read -r _ pkg ver kver root <<<"$line"
	log=$RESULTS/$kver.log
	initrd=$RESULTS/$kver.cpio.gz
	echo "kernels: $kver ($s, $pkg $ver): building the initramfs"
	if ! KXP_GUEST_CONF=$conf bash "$HERE/mkinitramfs.sh" "$root" "$kver" "$initrd"; then
		report+=("kernel $kver ($s): initramfs could not be built; FAIL")
		proto "FAIL: kernels/$kver: the initramfs could not be built"
		n_fail=$((n_fail + 1))
		continue
	fi
	echo "kernels: $kver: booting ($ACCEL, log: $log)"
	t0=$(date +%s)
	timeout -k 30 "$BOOT_LIMIT" qemu-system-x86_64 "${accel[@]}" -m "${KXP_KERNELS_MEM:-2G}" \
		-smp "${KXP_KERNELS_SMP:-2}" -nographic -no-reboot -nic none \
		-kernel "$root/boot/vmlinuz-$kver" -initrd "$initrd" \
		-append "console=ttyS0 panic=-1 quiet loglevel=4 oops=panic" </dev/null >"$log" 2>&1
	qrc=$?
	secs=$(($(date +%s) - t0))

	booted=0 done=0 modules='' bpf_pass=0 bpf_fail=0 bpf_skip=0 bpf_summary=0 bpf_rc='' tr_pass=0 tr_fail=0
	tr_skip=0 tr_broken=0 bpf_secs=0 tr_secs=0 boot_secs='' run_fail=0
	eval "$(parse "$log")"
	why=()
	[ "$booted" = 1 ] || why+=("the guest never reached /init")
	[ "$qrc" = 124 ] || [ "$qrc" = 137 ] && why+=("qemu timed out after ${BOOT_LIMIT}s")
	[ "$booted" = 1 ] && [ "$done" = 0 ] && why+=("the guest did not finish its run (crash or timeout)")
	[ "$booted" = 1 ] && [ "$modules" != ok ] && why+=("modules: $modules")
	if [ "$booted" = 1 ] && [ "$bpf_summary" = 0 ] && [ "${KXP_KERNELS_BPF:-1}" = 1 ]; then
		why+=("the BPF suite did not finish (exit $bpf_rc)")
		bpf_fail=$((bpf_fail + 1))
	fi
	[ "$tr_broken" -gt 0 ] && why+=("$tr_broken traffic file(s) did not finish")
	[ "$run_fail" -gt 0 ] && why+=("$run_fail of KXP_KERNELS_RUN failed or did not finish")

	trs="traffic $tr_pass passed, $tr_fail failed"
	[ "$tr_skip" -gt 0 ] && trs="$trs, $tr_skip skipped"
	[ -n "$TRAFFIC" ] || trs="traffic not run"
	summary="kernel $kver ($s): bpf $bpf_pass passed, $bpf_fail failed, $bpf_skip skipped; $trs; $secs s"
	summary="$summary (boot ${boot_secs%.*} s, bpf $bpf_secs s, traffic $tr_secs s)"
	# the capabilities kxp found missing there (`kxp status` in the guest)
	off=$(clean "$log" | sed -n '/^@@kxp begin status/,/^@@kxp end status/p' |
		awk '$0 ~ / NO +[a-z-]+ +[0-9.]+ / { sub(/ +NO +.*/, ""); printf "%s%s", sep, $0; sep = ", " }')
	summary="$summary"$'\n'"    without: ${off:-nothing kxp probes}"
	fails=$((bpf_fail + tr_fail + ${#why[@]}))
	if [ "$fails" -gt 0 ] || [ "$booted" = 0 ]; then
		n_fail=$((n_fail + 1))
		detail=$summary
		for w in "${why[@]}"; do detail="$detail"$'\n'"    $w"; done
		# the first FAIL lines of each suite, and the load errors behind them
		fl=$(clean "$log" | grep -E '^FAIL: bpf/' | head -3)
		fl=$fl$'\n'$(clean "$log" | grep -E '^FAIL: ' | grep -v '^FAIL: bpf/' | head -3)
		fl=$(grep -v '^$' <<<"$fl" | cut -c1-300 | sed 's/^/    /')
		[ -n "$fl" ] && detail="$detail"$'\n'"$fl"
		le=$(load_errors "$log" 6 | cut -c1-300)
		[ -n "$le" ] && detail="$detail"$'\n'"$le"
		report+=("$detail")
		proto "FAIL: kernels/$kver: $(head -n1 <<<"$summary")${why:+; ${why[*]}} (log: $log)"
	elif [ $((bpf_pass + tr_pass)) -eq 0 ] && [ -z "${KXP_KERNELS_RUN:-}" ]; then
		n_skip=$((n_skip + 1))
		report+=("$summary")
		proto "SKIP: kernels/$kver: skipped: no test ran there (log: $log)"
	else
		n_pass=$((n_pass + 1))
		report+=("$summary")
		proto "PASS: kernels/$kver"
	fi
	echo "${report[-1]}"
done

echo
echo "kernel matrix (logs in $RESULTS):"
for r in "${report[@]}"; do
	echo "$r"
done
[ "$fetch_rc" = 0 ] || echo "(some kernels could not be fetched)"
if [ "${KXP_KERNELS_PROTOCOL:-0}" = 1 ]; then
	echo "kernels: $n_pass passed, $n_fail failed, $n_skip skipped"
else
	echo "$n_pass passed, $n_fail failed, $n_skip skipped"
fi
[ "$n_fail" = 0 ] && [ "$n_pass" -gt 0 ]
