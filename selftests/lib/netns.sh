# shellcheck shell=bash
# Namespace helpers for the test and bench scripts. iproute2's `ip -n NS`,
# `tc -n NS` and `ip netns exec NS` switch the mount namespace as well and
# remount /sys, which needs / to be a mount point: that fails in a chroot such
# as shared/tools/fresh-machine.sh's, and would hide /sys/fs/bpf from kxp. So
# these enter the network namespace only, with nsenter.

# ns_run NS CMD...: run CMD in NS's network namespace. To start a server in
# the background, call nsenter itself (`nsenter --net=/run/netns/NS -- CMD &`):
# nsenter execs CMD, so $! is CMD's PID and killing it stops CMD; behind this
# function, $! would be a subshell whose child outlives the kill.
ns_run()
{
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" -- "$@"
}

# `ip -n NS ...` and `tc -n NS ...` keep working in scripts, through ns_run.
ip()
{
	if [ "$1" = -n ]; then
		local ns=$2
		shift 2
		ns_run "$ns" ip "$@"
	else
		command ip "$@"
	fi
}

tc()
{
	if [ "$1" = -n ]; then
		local ns=$2
		shift 2
		ns_run "$ns" tc "$@"
	else
		command tc "$@"
	fi
}
