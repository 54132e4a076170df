/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The one bounds-checked parser of Ethernet/IPv4/TCP/UDP/SCTP headers, shared
 * by XDP and TC. It returns a pointer-free summary so callers may use helpers
 * that invalidate packet pointers afterwards.
 *
 * Rules (the result is an enum kxp_reason):
 *  - not Ethernet+IPv4 (including VLAN-tagged frames)    -> NOT_IPV4, pass
 *  - version != 4, ihl < 5, tot_len < ihl*4, tot_len larger than the bytes
 *    present, L4 header truncated, TCP doff < 5 or beyond tot_len, UDP length
 *    < 8 or beyond tot_len                                 -> MALFORMED, pass
 *  - IP options (ihl > 5): L4 starts at ihl*4, handled normally
 *  - fragments (MF or offset != 0)                         -> FRAGMENT; the
 *    first fragment carries its ports (KXP_FRAG_FIRST), later ones none
 *  - L4 other than TCP/UDP/SCTP (ICMP included)            -> UNKNOWN_PROTO
 *  - otherwise                                             -> OK
 * Trailing bytes beyond tot_len (Ethernet padding) are allowed. */
#ifndef KXP_BPF_PARSE_H
#define KXP_BPF_PARSE_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <kxp/abi.h>

#ifndef IP_MF
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#endif
#ifndef IP_DF
#define IP_DF 0x4000
#endif

#define KXP_L3_OFF ETH_HLEN
#define KXP_IP_CSUM_OFF (KXP_L3_OFF + 10)
#define KXP_IP_SADDR_OFF (KXP_L3_OFF + 12)
#define KXP_IP_DADDR_OFF (KXP_L3_OFF + 16)
/* Largest L4 offset: Ethernet + 60 bytes of IPv4 header with options. */
#define KXP_L4_OFF_MAX (KXP_L3_OFF + 60)

#define KXP_TCP_FIN 0x01
#define KXP_TCP_SYN 0x02
#define KXP_TCP_RST 0x04
#define KXP_TCP_ACK 0x10

enum kxp_frag {
	KXP_FRAG_NONE = 0,
	KXP_FRAG_FIRST = 1, /* MF set, offset 0: ports known */
	KXP_FRAG_LATER = 2, /* offset != 0: no L4 header */
};

/* SCTP common header (RFC 9260 3.1); its CRC32c does not cover addresses. */
struct kxp_sctphdr {
	__be16 source;
	__be16 dest;
	__be32 vtag;
	__le32 checksum;
};

struct kxp_pkt {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 tcp_flags;
	__u8 frag;        /* enum kxp_frag */
	__u8 has_ports;
	__u16 l4_off;     /* from the start of the frame */
	__u16 l4_csum_off; /* offset of the L4 checksum, 0 if none to maintain (SCTP) */
	__u32 len;        /* frame length, for byte counters */
	__be16 ip_id;     /* IP identification (fragment tracking) */
	__u16 ip_len;     /* IP total length, host order (FIB MTU check) */
	__u8 df;          /* DF set */
	__u8 l2_mcast;    /* destination MAC is multicast or broadcast */
	__u8 ihl4;        /* IP header length in bytes */
	__u8 pad;
};

static __always_inline int kxp_parse(void *data, void *data_end, __u32 pkt_len, struct kxp_pkt *p)
{
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u32 hlen, tot, l4_len;
	__u16 frag_off;
	void *l4;

	p->len = pkt_len;
	if ((void *)(eth + 1) > data_end)
		return KXP_R_MALFORMED;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return KXP_R_NOT_IPV4;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return KXP_R_MALFORMED;
	if (ip->version != 4 || ip->ihl < 5)
		return KXP_R_MALFORMED;
	hlen = ip->ihl * 4;
	tot = bpf_ntohs(ip->tot_len);
	if (tot < hlen || tot > pkt_len - ETH_HLEN)
		return KXP_R_MALFORMED;
	l4_len = tot - hlen;

	p->saddr = ip->saddr;
	p->daddr = ip->daddr;
	p->proto = ip->protocol;
	p->ip_id = ip->id;
	p->ip_len = tot;
	p->ihl4 = hlen;
	p->l2_mcast = eth->h_dest[0] & 1;
	p->l4_off = ETH_HLEN + hlen;
	l4 = (void *)ip + hlen;

	frag_off = bpf_ntohs(ip->frag_off);
	p->df = !!(frag_off & IP_DF);
	if (frag_off & IP_OFFSET) {
		p->frag = KXP_FRAG_LATER;
		return KXP_R_FRAGMENT;
	}
	if (frag_off & IP_MF)
		p->frag = KXP_FRAG_FIRST;

	switch (p->proto) {
	case IPPROTO_TCP: {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end || l4_len < sizeof(*th))
			break;
		p->sport = th->source;
		p->dport = th->dest;
		p->has_ports = 1;
		p->tcp_flags = ((__u8 *)th)[13];
		p->l4_csum_off = p->l4_off + __builtin_offsetof(struct tcphdr, check);
		if (p->frag)
			return KXP_R_FRAGMENT;
		if (th->doff < 5 || th->doff * 4 > l4_len)
			return KXP_R_MALFORMED;
		return KXP_R_OK;
	}
	case IPPROTO_UDP: {
		struct udphdr *uh = l4;
		__u32 ulen;

		if ((void *)(uh + 1) > data_end || l4_len < sizeof(*uh))
			break;
		p->sport = uh->source;
		p->dport = uh->dest;
		p->has_ports = 1;
		p->l4_csum_off = p->l4_off + __builtin_offsetof(struct udphdr, check);
		if (p->frag)
			return KXP_R_FRAGMENT;
		ulen = bpf_ntohs(uh->len);
		if (ulen < sizeof(*uh) || ulen > l4_len)
			return KXP_R_MALFORMED;
		return KXP_R_OK;
	}
	case IPPROTO_SCTP: {
		struct kxp_sctphdr *sh = l4;

		if ((void *)(sh + 1) > data_end || l4_len < sizeof(*sh))
			break;
		p->sport = sh->source;
		p->dport = sh->dest;
		p->has_ports = 1;
		if (p->frag)
			return KXP_R_FRAGMENT;
		return KXP_R_OK;
	}
	default:
		return p->frag ? KXP_R_FRAGMENT : KXP_R_UNKNOWN_PROTO;
	}
	/* L4 header truncated: a first fragment may legally be that short. */
	return p->frag ? KXP_R_FRAGMENT : KXP_R_MALFORMED;
}

#endif
