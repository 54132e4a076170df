#!/usr/bin/env bash
# Builds the initramfs one kernel of the matrix boots (selftests/kernels/run.sh):
#
#   mkinitramfs.sh KERNEL_ROOT KERNEL_RELEASE OUT.cpio.gz
#
# KERNEL_ROOT is an unpacked linux-image package (fetch-kernels.sh). Env:
# KXP_BUILD (the build tree), KXP_SRCDIR (the source tree), KXP_GUEST_CONF (a
# file copied to /kxp/guest.conf: what the guest runs).
#
# Contents: busybox (static) for the basics, with the host's real tools over it
# where the tests need them (dash as /bin/sh, bash, coreutils, iproute2's ip
# and tc, util-linux's nsenter/unshare/mount, procps' sysctl, ethtool, jq,
# bpftool, ...) and every shared library they load (ldd, plus the dynamic
# loader); kxp's binaries from the build tree at /kxp/build; the test scripts
# and example manifests at /kxp/src; the kernel modules a namespace test needs
# (llc, stp, bridge, veth, sch_ingress, cls_bpf and what they depend on,
# uncompressed) at /lib/modules/kxp/ with their load order in load-order; /init.
#
# More for guests that run other things (bench/scenarios/45-ipvs.sh):
# KXP_INITRAMFS_TOOLS (more host commands), KXP_INITRAMFS_DIRS (host
# directories copied whole, e.g. iptables' extension modules, which are
# dlopen()ed and so invisible to ldd), KXP_INITRAMFS_MODTREE (module files or
# directories under the kernel's kernel/ tree: copied with the modules they
# depend on to /lib/modules/<release>/ and indexed by depmod, so the guest's
# modprobe and the kernel's own module autoloading find them), and
# KXP_INITRAMFS_BENCH=1 (bench/ and the build tree's bench programs).
set -eu

kroot=${1:?usage: mkinitramfs.sh KERNEL_ROOT KERNEL_RELEASE OUT.cpio.gz}
kver=${2:?}
out=${3:?}
build=${KXP_BUILD:?KXP_BUILD not set}
src=${KXP_SRCDIR:?KXP_SRCDIR not set}
here=$(cd "$(dirname "$0")" && pwd)

# Modules the tests need; their dependencies are added from modinfo.
MODULES=(llc stp bridge veth sch_ingress cls_bpf)

# Host commands copied in (each must exist; run.sh installs their packages).
TOOLS=(bash dash ip tc nsenter unshare mount umount dmesg sysctl pgrep pkill ps ethtool jq bpftool
	grep sed awk xargs find timeout mktemp seq sleep tee comm sort head tail tr cut wc cat
	id env date stat readlink dirname basename mkdir rm cp mv ln ls chmod touch printf uname
	kill nproc gzip)
# shellcheck disable=SC2206 # word lists on purpose
TOOLS+=(${KXP_INITRAMFS_TOOLS:-})

stage=$(mktemp -d /tmp/kxp-initramfs.XXXXXX)
trap 'rm -rf "$stage"' EXIT

# Merged /usr layout, as on the host: /bin, /sbin, /lib, /lib64 point into /usr.
mkdir -p "$stage"/usr/bin "$stage"/usr/sbin "$stage"/usr/lib "$stage"/usr/lib64 \
	"$stage"/{proc,sys,dev,run,tmp,etc,root,var}
for d in bin sbin lib lib64; do
	ln -s "usr/$d" "$stage/$d"
done
mkdir -p "$stage/lib/modules/kxp" "$stage/kxp/build" "$stage/kxp/src"
chmod 1777 "$stage/tmp"

# copy_bin HOST_PATH [GUEST_PATH]: the file itself (symlinks followed).
copy_bin()
{
	local from=$1 to=${2:-$1}
	mkdir -p "$stage$(dirname "$to")"
	cp -L "$from" "$stage$to"
}

# 1. busybox: every applet as a link, then the real tools replace the links.
busybox=$(command -v busybox) || { echo "mkinitramfs: busybox missing (apt-get install busybox-static)" >&2; exit 1; }
ldd "$busybox" 2>&1 | grep -q 'not a dynamic executable' ||
	{ echo "mkinitramfs: $busybox is not static (install busybox-static)" >&2; exit 1; }
copy_bin "$busybox" /usr/bin/busybox
for a in $("$busybox" --list); do
	[ "$a" = busybox ] || ln -sf busybox "$stage/usr/bin/$a"
done
for t in "${TOOLS[@]}"; do
	p=$(type -P "$t") || { echo "mkinitramfs: $t not found on this machine" >&2; exit 1; }
	case $p in
	/*) ;;
	*) echo "mkinitramfs: $t is not a program here ($p)" >&2; exit 1 ;;
	esac
	rm -f "$stage/usr/bin/$t"
	copy_bin "$p" "/usr/bin/$t"
done
# /bin/sh is dash (busybox's sh would pick busybox's own ip applet).
ln -sf dash "$stage/usr/bin/sh"

# 2. kxp: the build tree's programs (debug info stripped: a smaller image boots faster).
for f in "$build"/kxp "$build"/bpf-tests "$build"/kxp-* "$build"/*.bpf.o; do
	[ -f "$f" ] || continue
	cp "$f" "$stage/kxp/build/"
	case $f in
	*.bpf.o) ;;
	*) strip --strip-debug "$stage/kxp/build/$(basename "$f")" 2>/dev/null || true ;;
	esac
done
[ -x "$stage/kxp/build/bpf-tests" ] || { echo "mkinitramfs: $build/bpf-tests missing (make all)" >&2; exit 1; }

# 3. The scripts the guest runs and the manifests the e2e library copies.
mkdir -p "$stage/kxp/src/selftests" "$stage/kxp/src/deploy"
cp -r "$src/selftests/e2e" "$src/selftests/lib" "$src/selftests/kernels" "$stage/kxp/src/selftests/"
rm -f "$stage"/kxp/src/selftests/lib/*.c "$stage"/kxp/src/selftests/lib/*.h
cp -r "$src/deploy/examples" "$stage/kxp/src/deploy/"
if [ "${KXP_INITRAMFS_BENCH:-0}" = 1 ]; then
	mkdir -p "$stage/kxp/src/bench" "$stage/kxp/build/bench"
	cp -r "$src/bench/lib" "$src/bench/scenarios" "$stage/kxp/src/bench/"
	for f in "$build"/bench/*; do
		[ -f "$f" ] && [ -x "$f" ] || continue
		cp "$f" "$stage/kxp/build/bench/"
		strip --strip-debug "$stage/kxp/build/bench/$(basename "$f")" 2>/dev/null || true
	done
fi
for d in ${KXP_INITRAMFS_DIRS:-}; do
	[ -d "$d" ] || { echo "mkinitramfs: directory $d not found on this machine" >&2; exit 1; }
	mkdir -p "$stage$(dirname "$d")"
	cp -rL "$d" "$stage$d"
done

# 4. Shared libraries of every dynamic ELF in the image, and the loader.
# shellcheck disable=SC2086 # KXP_INITRAMFS_DIRS: a word list
libs=$(find "$stage/usr/bin" "$stage/kxp/build" $(for d in ${KXP_INITRAMFS_DIRS:-}; do echo "$stage$d"; done) -type f -exec sh -c '
	for f; do
		case $(head -c 4 "$f" | od -An -c | tr -d " ") in "177ELF") ldd "$f" 2>/dev/null ;; esac
	done' sh {} + | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
for l in $libs; do
	[ -e "$stage$l" ] || copy_bin "$l"
done

# 5. Kernel modules: the closure of MODULES over their "depends", dependencies
# first, decompressed here (busybox insmod may not read .ko.xz).
mdir=$(ls -d "$kroot/lib/modules/$kver" "$kroot/usr/lib/modules/$kver" 2>/dev/null | head -1)
[ -n "$mdir" ] || { echo "mkinitramfs: no modules directory for $kver in $kroot" >&2; exit 1; }
declare -A seen=()
order=()
find_mod() # NAME: path of NAME.ko[.xz|.gz|.zst] (- and _ are the same in module names)
{
	local n=$1 alt=${1//_/-}
	find "$mdir/kernel" \( -name "$n.ko*" -o -name "$alt.ko*" \) | head -1
}
add_mod() # NAME: add its dependencies, then itself
{
	local n=$1 f plain d
	[ -z "${seen[$n]:-}" ] || return 0
	seen[$n]=1
	f=$(find_mod "$n")
	if [ -z "$f" ]; then
		if grep -qE "/(${n}|${n//_/-})\.ko$" "$mdir/modules.builtin" 2>/dev/null; then
			return 0 # built in
		fi
		echo "mkinitramfs: module $n not found for $kver" >&2
		return 1
	fi
	plain=$stage/lib/modules/kxp/$n.ko
	case $f in
	*.ko.xz) xz -dc "$f" >"$plain" ;;
	*.ko.gz) gzip -dc "$f" >"$plain" ;;
	*.ko.zst) zstd -qdc "$f" >"$plain" ;;
	*) cp "$f" "$plain" ;;
	esac
	for d in $(modinfo -F depends "$plain" | tr ',' ' '); do
		add_mod "$d" || return 1
	done
	order+=("$n")
}
for m in "${MODULES[@]}"; do
	add_mod "$m"
done
printf '%s\n' "${order[@]}" >"$stage/lib/modules/kxp/load-order"

# 5b. KXP_INITRAMFS_MODTREE: files kept as they are (modprobe reads .ko.xz),
# at their paths, with the closure of their dependencies, then depmod.
if [ -n "${KXP_INITRAMFS_MODTREE:-}" ]; then
	gdir=$stage/lib/modules/$kver
	mkdir -p "$gdir"
	declare -A tseen=()
	add_tree_mod() # FILE (under $mdir)
	{
		local f=$1 rel d dep
		rel=${f#"$mdir"/}
		[ -z "${tseen[$rel]:-}" ] || return 0
		tseen[$rel]=1
		mkdir -p "$gdir/$(dirname "$rel")"
		cp "$f" "$gdir/$rel"
		for d in $(modinfo -F depends "$f" | tr ',' ' '); do
			dep=$(find_mod "$d")
			[ -n "$dep" ] || { echo "mkinitramfs: module $d (needed by $rel) not found for $kver" >&2; return 1; }
			add_tree_mod "$dep" || return 1
		done
	}
	for t in $KXP_INITRAMFS_MODTREE; do
		[ -e "$mdir/kernel/$t" ] || { echo "mkinitramfs: $t not in $kver's modules" >&2; exit 1; }
		while read -r f; do
			add_tree_mod "$f"
		done < <(find "$mdir/kernel/$t" -name '*.ko*')
	done
	cp "$mdir"/modules.builtin* "$mdir/modules.order" "$gdir/" 2>/dev/null || true
	depmod -b "$stage" "$kver" || { echo "mkinitramfs: depmod failed for $kver" >&2; exit 1; }
	# the kernel's autoloading runs /sbin/modprobe: kmod's, not busybox's
	[ "$(readlink "$stage/usr/bin/modprobe" 2>/dev/null)" != busybox ] ||
		{ echo "mkinitramfs: KXP_INITRAMFS_MODTREE needs modprobe in KXP_INITRAMFS_TOOLS" >&2; exit 1; }
	ln -sf ../bin/modprobe "$stage/usr/sbin/modprobe"
fi

# 6. /etc basics, the guest's settings and /init.
printf 'root:x:0:0:root:/root:/bin/bash\n' >"$stage/etc/passwd"
printf 'root:x:0:\n' >"$stage/etc/group"
printf '127.0.0.1 localhost\n' >"$stage/etc/hosts"
printf 'hosts: files\n' >"$stage/etc/nsswitch.conf"
# protocol and service names (iptables' and ipset's "tcp")
for f in /etc/protocols /etc/services; do
	[ -r "$f" ] && cp "$f" "$stage$f"
done
if [ -n "${KXP_GUEST_CONF:-}" ]; then
	cp "$KXP_GUEST_CONF" "$stage/kxp/guest.conf"
fi
cp "$here/init" "$stage/init"
chmod 755 "$stage/init"

mkdir -p "$(dirname "$out")"
(cd "$stage" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
