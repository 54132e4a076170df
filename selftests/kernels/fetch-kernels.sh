#!/usr/bin/env bash
# Fetches Debian's stock amd64 kernels by package name and unpacks them, for
# the kernel matrix (selftests/kernels/run.sh).
#
#   fetch-kernels.sh CACHE_DIR SUITE...
#
# For each suite (bullseye, bookworm, trixie) it resolves the metapackage
# linux-image-amd64 to the concrete linux-image-<abi>-amd64[-unsigned] package
# of that suite, downloads it (once: the .deb is kept in CACHE_DIR/debs) and
# unpacks it (once: CACHE_DIR/root/<package>_<version>/). It prints one line
# per suite that worked:
#
#   SUITE PACKAGE VERSION KERNEL_RELEASE ROOT_DIR
#
# and exits non-zero if any suite failed (with the reason on stderr).
#
# apt runs on a private sources list, lists directory and package cache under
# CACHE_DIR: nothing under /etc/apt or /var/lib/apt is read for sources or
# written. The mirror is the one the machine's own sources use.
set -u

cache=${1:?usage: fetch-kernels.sh CACHE_DIR SUITE...}
shift
[ $# -gt 0 ] || { echo "fetch-kernels.sh: no suite named" >&2; exit 2; }

say() { echo "kernels: $*" >&2; }

aptdir=$cache/apt
mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial" "$cache/debs" "$cache/root" "$cache/resolved"
# apt-get download drops privileges to _apt: let it write the download dir.
id _apt >/dev/null 2>&1 && chown _apt "$cache/debs" "$aptdir/lists/partial" 2>/dev/null

APT_OPTS=(-o "Dir::Etc::SourceList=$aptdir/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o "Dir::State::Lists=$aptdir/lists" -o "Dir::Cache=$aptdir/cache"
	-o Dir::State::status=/dev/null -o Debug::NoLocking=1 -o APT::Get::List-Cleanup=0)

# The Debian mirror the machine's own sources use (deb822 .sources files or the
# one-line format): the first URI of an entry for a plain release suite (not
# -security, -updates, -backports). Default: deb.debian.org.
machine_mirror()
{
	local f uri
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		uri=$(awk '
			function flush() {
				if (types ~ /(^| )deb( |$)/ && uris != "" && suites ~ /(^| )[a-z]+( |$)/ && !found) {
					split(uris, u, " "); print u[1]; found = 1
				}
				types = ""; uris = ""; suites = ""
			}
			/^[ \t]*#/ { next }
			/^[ \t]*$/ { flush(); next }
			/^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
			/^URIs:/ { sub(/^URIs:[ \t]*/, ""); uris = $0 }
			/^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
			END { flush() }' "$f")
		[ -n "$uri" ] && { echo "${uri%/}"; return; }
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		# deb [options] URI SUITE COMPONENTS...
		uri=$(awk '$1 == "deb" {
				i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
				if ($(i + 1) ~ /^[a-z]+$/) { print $i; exit }
			}' "$f")
		[ -n "$uri" ] && { echo "${uri%/}"; return; }
	done
	echo http://deb.debian.org/debian
}

# The sources list: one line per suite, signed by the Debian archive keyring.
# TRUSTED (space separated suites) get [trusted=yes] instead: only used as a
# fallback when the machine's keyring lacks that suite's key (a Debian 12 with
# an old debian-archive-keyring has no trixie key), see update_lists.
write_sources()
{
	local mirror=$1 s opts
	: >"$aptdir/sources.list"
	for s in "${suites[@]}"; do
		opts=
		[ -r /usr/share/keyrings/debian-archive-keyring.gpg ] &&
			opts="[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]"
		case " $TRUSTED " in *" $s "*) opts="[trusted=yes]" ;; esac
		echo "deb $opts $mirror $s main" >>"$aptdir/sources.list"
	done
}

# apt-get update on the private list, refreshed when the lists are missing,
# older than a day or for another list (KXP_KERNELS_UPDATE=1 forces it), so a
# second run neither downloads nor needs the network. A suite whose signature
# the machine's keyring cannot check is retried with [trusted=yes] (a fallback
# only, said on stderr).
update_lists()
{
	local s out fresh=1 bad=
	TRUSTED=
	write_sources "$mirror"
	for s in "${suites[@]}"; do
		ls "$aptdir/lists/"*"_dists_${s}_"*Packages* >/dev/null 2>&1 || fresh=0
	done
	if [ "$fresh" = 1 ] && [ "${KXP_KERNELS_UPDATE:-0}" != 1 ] && [ -r "$aptdir/sources.list.used" ] &&
		[ -n "$(find "$aptdir/updated" -mmin -1440 2>/dev/null)" ] &&
		# the same list, or the same list with the trusted=yes fallback chosen last time
		[ "$(sed 's/\[[^]]*\] //' "$aptdir/sources.list.used")" = "$(sed 's/\[[^]]*\] //' "$aptdir/sources.list")" ]; then
		cp "$aptdir/sources.list.used" "$aptdir/sources.list"
		return 0
	fi
	say "apt-get update (private list: $aptdir/sources.list)"
	out=$(apt-get "${APT_OPTS[@]}" update 2>&1)
	for s in "${suites[@]}"; do
		if grep -E "[ /]${s}[ /].*(NO_PUBKEY|not signed|GPG error|EXPKEYSIG|KEYEXPIRED)|(NO_PUBKEY|GPG error).*[ /]${s}[ /]" <<<"$out" >/dev/null; then
			bad="$bad $s"
		fi
	done
	if [ -n "$bad" ]; then
		say "WARNING: the Debian archive keyring here cannot verify:$bad; using [trusted=yes] for it (install a newer debian-archive-keyring to avoid this)"
		TRUSTED="$bad"
		write_sources "$mirror"
		out=$(apt-get "${APT_OPTS[@]}" update 2>&1)
	fi
	if grep -E '^(E:|Err:)' <<<"$out" >&2; then
		say "apt-get update reported errors (using whatever lists are there)"
	fi
	cp "$aptdir/sources.list" "$aptdir/sources.list.used"
	touch "$aptdir/updated"
}

# resolve SUITE: "PACKAGE VERSION" of the kernel linux-image-amd64 depends on there.
resolve()
{
	local s=$1 dep pkg ver
	dep=$(apt-cache "${APT_OPTS[@]}" show "linux-image-amd64/$s" 2>/dev/null |
		awk '/^Depends:/ { print; exit }')
	pkg=$(grep -o 'linux-image-[^ ,(]*-amd64\(-unsigned\)\?' <<<"$dep" | head -1)
	[ -n "$pkg" ] || return 1
	ver=$(apt-cache "${APT_OPTS[@]}" show "$pkg/$s" 2>/dev/null | awk '/^Version:/ { print $2; exit }')
	[ -n "$ver" ] || return 1
	echo "$pkg $ver"
}

# fetch SUITE: download and unpack its kernel; prints the result line.
fetch()
{
	local s=$1 pkg ver deb root kver rv
	if rv=$(resolve "$s"); then
		echo "$rv" >"$cache/resolved/$s"
	elif [ -s "$cache/resolved/$s" ]; then
		rv=$(cat "$cache/resolved/$s")
		say "$s: cannot resolve linux-image-amd64 now; using the kernel resolved before ($rv)"
	else
		say "$s: cannot resolve linux-image-amd64 (apt lists under $aptdir/lists)"
		return 1
	fi
	read -r pkg ver <<<"$rv"
	root=$cache/root/${pkg}_$ver
	if [ ! -e "$root/.unpacked" ]; then
		deb=$cache/debs/${pkg}_${ver//:/%3a}_amd64.deb
		if [ ! -s "$deb" ]; then
			say "$s: downloading $pkg $ver"
			(cd "$cache/debs" && apt-get "${APT_OPTS[@]}" -qq download "$pkg=$ver") >&2 ||
				{ say "$s: apt-get download $pkg=$ver failed"; return 1; }
		fi
		[ -s "$deb" ] || { say "$s: $deb missing after download"; return 1; }
		say "$s: unpacking $(basename "$deb")"
		rm -rf "$root"
		mkdir -p "$root"
		dpkg-deb -x "$deb" "$root" || { say "$s: dpkg-deb -x $deb failed"; rm -rf "$root"; return 1; }
		touch "$root/.unpacked"
	fi
	kver=$(cd "$root/boot" && ls vmlinuz-* 2>/dev/null | head -1)
	kver=${kver#vmlinuz-}
	[ -n "$kver" ] || { say "$s: no /boot/vmlinuz-* in $pkg"; return 1; }
	echo "$s $pkg $ver $kver $root"
}

# The list always holds the three suites of the matrix (plus any other named),
# so choosing fewer kernels does not make apt refresh it.
suites=(bullseye bookworm trixie)
for s in "$@"; do
	case " ${suites[*]} " in *" $s "*) ;; *) suites+=("$s") ;; esac
done
TRUSTED=
mirror=$(machine_mirror)
update_lists

rc=0
for s in "$@"; do
	fetch "$s" || rc=1
done
exit $rc
