/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Forwarding of masqueraded packets without the stack: both directions of a
 * SNAT flow carry a node address the stack would reject (a forwarded packet
 * whose source is local is a martian; a reply to the SNAT address would be
 * delivered locally), so kxp routes them itself with bpf_fib_lookup.
 *
 * XDP: FIB SUCCESS (neighbour known) and egress == ingress -> XDP_TX; egress
 * elsewhere -> XDP_REDIRECT for a remote backend; everything else (NO_NEIGH,
 * backend on this node, a reply leaving by another device, MTU exceeded, no
 * route, a device that cannot send XDP frames) is handed to TC ingress
 * untranslated, which sees the same ct state.
 * Whether a device can send XDP frames depends on its driver and, for a veth,
 * on its peer: native XDP_TX out of a veth queues the frame on the peer and
 * wakes the peer only if the peer runs a native XDP program (a peer with GRO
 * alone, like a bridge port of a kind-style fabric, leaves the frame in its
 * ring until some skb happens to wake it; a peer with neither drops it);
 * XDP_REDIRECT into a veth (ndo_xdp_xmit, NETDEV_XDP_ACT_NDO_XMIT) needs an XDP
 * program or GRO on the peer. So attach (userspace/dataplane/attach.c) probes
 * each device it attaches the XDP program to and writes kxp_fwddev: ifindex ->
 * KXP_FWD_* (what XDP may do there). Once the ingress device is in it, XDP
 * only sends what the entries allow: XDP_TX where TX is allowed, else a
 * redirect to the ingress device itself where redirect into it is (a veth with
 * a GRO peer), else TC; a redirect only into a device whose entry allows it.
 * An ingress device with no entry (BPF_PROG_TEST_RUN fixtures) keeps the
 * unprobed rules above. The map is pinned with the instance, so a trace copy
 * decides as the attached program does.
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
 * TC". Fills f (MAC addresses, and the device to redirect to) on success. */
static __always_inline int kxp_xdp_route(struct xdp_md *ctx, const struct kxp_pkt *p, const struct kxp_dec *d,
					 struct bpf_fib_lookup *f)
{
	__u32 in = ctx->ingress_ifindex, out, inf;
	__u32 *v;

	f->family = AF_INET;
	f->ifindex = in;
	f->tot_len = p->ip_len;
	f->ipv4_src = d->nat.saddr;
	f->ipv4_dst = d->nat.daddr;
	if (bpf_fib_lookup(ctx, f, sizeof(*f), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return -1;
	out = f->ifindex;
	if (out != in && (d->reply || d->be_local))
		return -1;
	v = bpf_map_lookup_elem(&kxp_fwddev, &in);
	if (!v) /* not probed: the unprobed rules */
		return out == in ? XDP_TX : XDP_REDIRECT;
	inf = *v;
	if (inf & KXP_FWD_GENERIC)
		return out == in ? XDP_TX : XDP_REDIRECT;
	if (out == in) {
		if (inf & KXP_FWD_TX)
			return XDP_TX;
		/* f->ifindex is in: kxp_xdp_forward redirects to the ingress device */
		return (inf & KXP_FWD_REDIRECT) ? XDP_REDIRECT : -1;
	}
	v = bpf_map_lookup_elem(&kxp_fwddev, &out);
	return v && (*v & KXP_FWD_REDIRECT) ? XDP_REDIRECT : -1;
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
	/* without SKIP_NEIGH (5.10) the lookup also checks the neighbour; the
	 * egress device is filled in either way, NO_NEIGH included */
	rc = bpf_fib_lookup(skb, &f, sizeof(f), KXP_HAS(FIB_SKIP_NEIGH) ? BPF_FIB_LOOKUP_SKIP_NEIGH : 0);
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
