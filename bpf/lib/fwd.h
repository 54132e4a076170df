/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Forwarding of masqueraded packets without the stack: both directions of a
 * SNAT flow carry a node address the stack would reject (a forwarded packet
 * whose source is local is a martian; a reply to the SNAT address would be
 * delivered locally), so kxp routes them itself with bpf_fib_lookup.
 *
 * XDP: FIB SUCCESS (neighbour known) and egress == ingress -> XDP_TX; egress
 * elsewhere -> XDP_REDIRECT for a remote backend (the target device must take
 * XDP frames: a NIC, or a veth whose peer runs an XDP program); everything
 * else (NO_NEIGH, backend on this node, a reply leaving by another device,
 * MTU exceeded, no route) is handed to TC ingress untranslated, which sees the
 * same ct state.
 * TC: FIB lookup without neighbour (SKIP_NEIGH), then bpf_redirect_neigh to
 * the egress device, which resolves the neighbour itself. A packet with DF
 * that exceeds the egress MTU is answered with ICMP fragmentation needed
 * (built from the untranslated packet, so the client sees its frontend); one
 * without DF is dropped (FRAG_NEEDED): kxp does not fragment. A destination
 * that is local goes to the stack; no route -> drop (NO_ROUTE). */
#ifndef KXP_BPF_FWD_H
#define KXP_BPF_FWD_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include "lib/parse.h"
#include "lib/stats.h"

#ifndef AF_INET
#define AF_INET 2
#endif

/* XDP: the action forwarding the translated packet, or -1 for "hand it to
 * TC". Fills f (MAC addresses) on success. */
static __always_inline int kxp_xdp_route(struct xdp_md *ctx, const struct kxp_pkt *p, const struct kxp_dec *d,
					 struct bpf_fib_lookup *f)
{
	__u32 in = ctx->ingress_ifindex;

	f->family = AF_INET;
	f->ifindex = in;
	f->tot_len = p->ip_len;
	f->ipv4_src = d->nat.saddr;
	f->ipv4_dst = d->nat.daddr;
	if (bpf_fib_lookup(ctx, f, sizeof(*f), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return -1;
	if (f->ifindex == in)
		return XDP_TX;
	if (d->reply || d->be_local)
		return -1;
	return XDP_REDIRECT;
}

static __always_inline int kxp_xdp_l2(struct xdp_md *ctx, const struct bpf_fib_lookup *f)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return -1;
	__builtin_memcpy(eth->h_dest, f->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, f->smac, ETH_ALEN);
	return 0;
}

enum kxp_tc_route {
	KXP_RT_REDIRECT = 0,   /* *ifindex: bpf_redirect_neigh there */
	KXP_RT_STACK = 1,      /* destination is local */
	KXP_RT_FRAG = 2,       /* too big: *mtu is the egress MTU */
	KXP_RT_NONE = 3,       /* no route */
};

static __always_inline int kxp_tc_route(struct __sk_buff *skb, const struct kxp_pkt *p, const struct kxp_dec *d,
					__u32 *ifindex, __u16 *mtu)
{
	struct bpf_fib_lookup f = {};
	long rc;

	f.family = AF_INET;
	f.ifindex = skb->ifindex;
	/* GSO skbs: let the kernel check each segment against the MTU */
	f.tot_len = skb->gso_size ? 0 : p->ip_len;
	f.ipv4_src = d->nat.saddr;
	f.ipv4_dst = d->nat.daddr;
	rc = bpf_fib_lookup(skb, &f, sizeof(f), BPF_FIB_LOOKUP_SKIP_NEIGH);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS || rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		*ifindex = f.ifindex;
		return KXP_RT_REDIRECT;
	}
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
		*mtu = f.mtu_result;
		return KXP_RT_FRAG;
	}
	if (rc == BPF_FIB_LKUP_RET_NOT_FWDED)
		return KXP_RT_STACK;
	return KXP_RT_NONE;
}

#endif
