/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* cgroup socket hooks: Service frontends translated at the socket for
 * node-originated traffic (and, with --socket-lb=all, pods' too), so those
 * packets leave already addressed to a backend and TC never sees a frontend.
 *
 *  - connect4 (TCP, connected UDP): once per connect(); sendmsg4 (unconnected
 *    UDP): per datagram, the socket sticking to its backend per frontend
 *    while it keeps sending (kxp_sockrev4 FWD, 120 s idle, dropped when the
 *    backend entry changes).
 *  - Same maps and selection as the packet path (lib/lb.h): DEFAULT entry,
 *    INTERNAL (cluster-wide) entry for eTP=Local external frontends; the
 *    backend sees a node address (the socket's own source), which is table J's
 *    "node: cluster set, SNAT" without a masquerade step. Pods' sockets
 *    (--socket-lb=all, the default) are translated only where that gives
 *    kube-proxy's result (lib/sock.h kxp_sock_pod_ours); TC takes the rest.
 *  - No usable endpoint anywhere (and an active ClusterIP's unknown port):
 *    ECONNREFUSED (bpf_set_retval) — what the ICMP reject gives a client.
 *    Drops (endpoints exist but none fits the policy, unallocated service
 *    address, source outside loadBalancerSourceRanges): EPERM at once, where
 *    the packet path makes the client time out.
 *  - recvmsg4/getpeername4 show the frontend for a backend address the socket
 *    was translated to (kxp_sockrev4 REPLY, keyed by socket cookie).
 *  - Scope (kxp_sockcfg): host = sockets of the namespace kxp runs in
 *    (netns cookie), all = every socket in the cgroup.
 * Counters: per frontend (packets = translated or refused calls; drops,
 * rejects) and per reason (SOCK_XLATE, SOCK_REVNAT, and the refusal reason).
 * BPF_PROG_TEST_RUN cannot run these programs: they are tested with real
 * sockets (selftests/e2e/test_socklb.sh). */
/* One object for every kernel from 5.10: no BPF atomic with fetch (5.12;
 * older verifiers refuse the instruction even in dead code). */
#define KXP_NO_ATOMIC_FETCH
#include "lib/maps.h"

/* Never a trace copy (test_run does not run sock_addr programs); lib/stats.h
 * wants both names. */
const volatile __u32 kxp_trace_mode = 0;
struct kxp_trace_res kxp_trace_res = {};

#include "lib/sock.h"

SEC("cgroup/connect4")
int kxp_connect4(struct bpf_sock_addr *ctx)
{
	return kxp_sock_xlate(ctx, false);
}

SEC("cgroup/sendmsg4")
int kxp_sendmsg4(struct bpf_sock_addr *ctx)
{
	/* a connected socket's send without an address was decided at connect */
	return kxp_sock_xlate(ctx, true);
}

SEC("cgroup/recvmsg4")
int kxp_recvmsg4(struct bpf_sock_addr *ctx)
{
	kxp_sock_revnat(ctx, IPPROTO_UDP);
	return 1;
}

SEC("cgroup/getpeername4")
int kxp_getpeer4(struct bpf_sock_addr *ctx)
{
	kxp_sock_revnat(ctx, ctx->protocol);
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
