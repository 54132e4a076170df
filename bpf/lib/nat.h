/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Writing a translation (struct kxp_nat4) into a packet: XDP by direct access
 * with incremental checksums, TC through the kernel's checksum helpers.
 * Only fields that change are written. UDP checksum 0 (none) stays 0; a
 * computed 0 becomes 0xffff. SCTP: addresses only (its CRC32c does not cover
 * them); a port change is refused (-1), the decision never asks for one.
 * Later fragments (no L4 header) get their addresses rewritten only. */
#ifndef KXP_BPF_NAT_H
#define KXP_BPF_NAT_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "lib/parse.h"
#include "lib/csum.h"

static __always_inline __u32 kxp_csum_nat(__u32 acc, const struct kxp_pkt *p, const struct kxp_nat4 *n,
					  bool ports)
{
	if (n->saddr != p->saddr)
		acc = kxp_csum_acc4(acc, p->saddr, n->saddr);
	if (n->daddr != p->daddr)
		acc = kxp_csum_acc4(acc, p->daddr, n->daddr);
	if (ports && n->sport != p->sport)
		acc = kxp_csum_acc2(acc, p->sport, n->sport);
	if (ports && n->dport != p->dport)
		acc = kxp_csum_acc2(acc, p->dport, n->dport);
	return acc;
}

static __always_inline int kxp_xdp_nat(struct xdp_md *ctx, const struct kxp_pkt *p, const struct kxp_nat4 *n)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	__u32 l4_off = p->l4_off;
	void *l4;

	if ((void *)(ip + 1) > data_end || l4_off > KXP_L4_OFF_MAX)
		return -1;
	l4 = data + l4_off;
	if (p->frag == KXP_FRAG_LATER) {
		/* no L4 header: the first fragment carried the port change */
	} else if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end)
			return -1;
		th->check = kxp_csum_end(kxp_csum_nat(kxp_csum_begin(th->check), p, n, true));
		th->source = n->sport;
		th->dest = n->dport;
	} else if (p->proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end)
			return -1;
		if (uh->check) {
			__sum16 c = kxp_csum_end(kxp_csum_nat(kxp_csum_begin(uh->check), p, n, true));

			uh->check = c ? c : (__sum16)0xffff;
		}
		uh->source = n->sport;
		uh->dest = n->dport;
	} else if (p->proto == IPPROTO_SCTP) {
		if (n->sport != p->sport || n->dport != p->dport)
			return -1;
	} else {
		return -1;
	}
	ip->check = kxp_csum_end(kxp_csum_nat(kxp_csum_begin(ip->check), p, n, false));
	ip->saddr = n->saddr;
	ip->daddr = n->daddr;
	return 0;
}

static __always_inline int kxp_tc_nat_addr(struct __sk_buff *skb, const struct kxp_pkt *p, __u32 off,
					   __be32 from, __be32 to)
{
	__u64 l4f = BPF_F_PSEUDO_HDR | sizeof(to);

	if (p->proto == IPPROTO_UDP)
		l4f |= BPF_F_MARK_MANGLED_0;
	if (p->l4_csum_off && bpf_l4_csum_replace(skb, p->l4_csum_off, from, to, l4f))
		return -1;
	if (bpf_l3_csum_replace(skb, KXP_IP_CSUM_OFF, from, to, sizeof(to)))
		return -1;
	return bpf_skb_store_bytes(skb, off, &to, sizeof(to), 0);
}

static __always_inline int kxp_tc_nat_port(struct __sk_buff *skb, const struct kxp_pkt *p, __u32 off,
					   __be16 from, __be16 to)
{
	__u64 l4f = sizeof(to);

	if (!p->l4_csum_off)
		return -1; /* SCTP */
	if (p->proto == IPPROTO_UDP)
		l4f |= BPF_F_MARK_MANGLED_0;
	if (bpf_l4_csum_replace(skb, p->l4_csum_off, from, to, l4f))
		return -1;
	return bpf_skb_store_bytes(skb, off, &to, sizeof(to), 0);
}

/* Packet pointers are invalid after this (the helpers may move data). */
static __always_inline int kxp_tc_nat(struct __sk_buff *skb, const struct kxp_pkt *p, const struct kxp_nat4 *n)
{
	if (n->saddr != p->saddr && kxp_tc_nat_addr(skb, p, KXP_IP_SADDR_OFF, p->saddr, n->saddr))
		return -1;
	if (n->daddr != p->daddr && kxp_tc_nat_addr(skb, p, KXP_IP_DADDR_OFF, p->daddr, n->daddr))
		return -1;
	if (p->frag == KXP_FRAG_LATER)
		return 0; /* no L4 header: the first fragment carried the port change */
	if (n->sport != p->sport && kxp_tc_nat_port(skb, p, p->l4_off, p->sport, n->sport))
		return -1;
	if (n->dport != p->dport && kxp_tc_nat_port(skb, p, p->l4_off + 2, p->dport, n->dport))
		return -1;
	return 0;
}

#endif
