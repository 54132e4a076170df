/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* ICMP in TC: building rejects (destination unreachable) and translating ICMP
 * errors about translated flows.
 *
 * Reject (D.26, K.45; item 13's WILDCARD ports): the offending frame is
 * rewritten in place into ICMP type 3 code 3 (port unreachable) from the
 * frontend address to the client, quoting the offending IP header and the
 * first 8 bytes of its L4 header (RFC 792), MAC addresses swapped, and sent
 * back out of the device it arrived on (bpf_redirect to its egress). The same
 * builder answers code 4 (fragmentation needed, with the next-hop MTU) for a
 * masqueraded packet too big for its egress link (lib/fwd.h). Never sent for
 * non-first fragments, frames to a multicast/broadcast MAC, or sources that
 * are 0.0.0.0, loopback, multicast, broadcast or class E: those drop as
 * NO_REJECT. ICMP packets are never rejected (they never reach a frontend
 * decision). Rate: a per-CPU token bucket (kxp_rejrl), KXP_REJECT_RATE per
 * second and CPU with bursts of KXP_REJECT_BURST, close to the kernel's own
 * icmp_msgs_per_sec=1000/burst 50; over the limit -> drop (REJECT_LIMIT).
 *
 * ICMP errors (types 3, 11, 12) whose quoted packet belongs to a translated
 * flow are translated back so PMTU discovery and error reporting work through
 * a frontend: the quoted tuple is looked up as the flow's REPLY entry; the
 * quoted source becomes the client, the quoted destination the frontend,
 * the outer destination the client, and an outer source equal to the backend
 * becomes the frontend. Checksums: outer IP, quoted IP, quoted UDP (when it
 * is non-zero; a quoted TCP checksum lies beyond the 8 quoted bytes the
 * receiver relies on and is left alone) and the ICMP checksum, all updated
 * incrementally. Only quoted headers without IP options are translated. The
 * placement rules of replies apply (lib/ct.h): an error about a non-SNAT flow
 * to a node-address frontend is translated at egress, one about a SNAT flow
 * at ingress and forwarded by redirect (lib/fwd.h). */
#ifndef KXP_BPF_ICMP_H
#define KXP_BPF_ICMP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/csum.h"
#include "lib/stats.h"
#include "lib/ct.h"

/* <linux/icmp.h> drags in libc headers, hence the few definitions here. */
#define ICMP_DEST_UNREACH 3
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12
#define ICMP_PORT_UNREACH 3
#define ICMP_FRAG_NEEDED 4

struct kxp_icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 unused;
	__be16 mtu; /* next-hop MTU of "fragmentation needed" (RFC 1191) */
};

#define KXP_REJECT_RATE 1000 /* per second and CPU */
#define KXP_REJECT_BURST 50

/* Largest quoted part: 60 bytes of IP header + 8 bytes of L4. */
#define KXP_ICMP_QUOTE_MAX 68

struct kxp_icmp_frame {
	struct ethhdr eth;
	struct iphdr ip;
	struct kxp_icmphdr icmp;
	__u8 quote[KXP_ICMP_QUOTE_MAX];
} __attribute__((packed));

static __always_inline bool kxp_reject_allowed(void)
{
	const __u64 iv = KXP_NSEC / KXP_REJECT_RATE, cap = iv * KXP_REJECT_BURST;
	struct kxp_tbucket *b;
	__u32 zero = 0;
	__u64 now;

	b = bpf_map_lookup_elem(&kxp_rejrl, &zero);
	if (!b)
		return false;
	now = bpf_ktime_get_ns();
	if (!b->last_ns)
		b->credit_ns = cap; /* first use: a full bucket */
	else if (now > b->last_ns)
		b->credit_ns += now - b->last_ns;
	b->last_ns = now;
	if (b->credit_ns > cap)
		b->credit_ns = cap;
	if (b->credit_ns < iv)
		return false;
	b->credit_ns -= iv;
	return true;
}

/* Never answer what could make kxp a reflector or amplifier. */
static __always_inline bool kxp_reject_suppressed(const struct kxp_pkt *p)
{
	__u8 s0 = ((__u8 *)&p->saddr)[0], d0 = ((__u8 *)&p->daddr)[0];

	return p->frag == KXP_FRAG_LATER || p->l2_mcast || !p->saddr || s0 == 127 || s0 >= 224 || d0 >= 224;
}

static __always_inline __u16 kxp_csum_buf(void *buf, __u32 len)
{
	__s64 s = bpf_csum_diff(NULL, 0, buf, len, 0);

	return ~kxp_csum_fold((__u32)s);
}

/* Rewrite the frame into an ICMP destination unreachable for its sender.
 * Packet pointers are invalid afterwards. Returns 0 or -1. */
static __noinline int kxp_icmp_build(struct __sk_buff *skb, const struct kxp_pkt *p, __u8 code, __u16 mtu)
{
	struct kxp_icmp_frame b = {};
	__u32 qlen = p->ihl4 + 8, len;
	__u8 mac[ETH_ALEN];

	if (qlen > KXP_ICMP_QUOTE_MAX || qlen < 28 || p->ip_len < qlen)
		return -1;
	if (bpf_skb_load_bytes(skb, 0, &b.eth, sizeof(b.eth)) ||
	    bpf_skb_load_bytes(skb, ETH_HLEN, b.quote, qlen))
		return -1;
	__builtin_memcpy(mac, b.eth.h_dest, ETH_ALEN);
	__builtin_memcpy(b.eth.h_dest, b.eth.h_source, ETH_ALEN);
	__builtin_memcpy(b.eth.h_source, mac, ETH_ALEN);
	b.eth.h_proto = bpf_htons(ETH_P_IP);

	b.icmp.type = ICMP_DEST_UNREACH;
	b.icmp.code = code;
	b.icmp.mtu = bpf_htons(mtu);
	b.icmp.checksum = kxp_csum_buf(&b.icmp, sizeof(b.icmp) + qlen);

	b.ip.version = 4;
	b.ip.ihl = 5;
	b.ip.tos = 0xc0; /* internetwork control, as the kernel's ICMP */
	b.ip.tot_len = bpf_htons(sizeof(b.ip) + sizeof(b.icmp) + qlen);
	b.ip.ttl = 64;
	b.ip.protocol = IPPROTO_ICMP;
	b.ip.saddr = p->daddr;
	b.ip.daddr = p->saddr;
	b.ip.check = kxp_csum_buf(&b.ip, sizeof(b.ip));

	len = sizeof(b.eth) + sizeof(b.ip) + sizeof(b.icmp) + qlen;
	if (len > sizeof(b))
		return -1;
	if (bpf_skb_change_tail(skb, len, 0))
		return -1;
	return bpf_skb_store_bytes(skb, 0, &b, len, BPF_F_RECOMPUTE_CSUM) ? -1 : 0;
}

static __always_inline int kxp_store(struct __sk_buff *skb, __u32 off, const void *v, __u32 n)
{
	return bpf_skb_store_bytes(skb, off, v, n, BPF_F_RECOMPUTE_CSUM);
}

/* An ICMP error about a translated flow: translate it in place and fill d
 * (FORWARD, ICMP_ERR; d->nat holds the new outer addresses). Leaves d alone
 * when the error is about no flow of ours, or is left for TC egress. */
static __noinline void kxp_icmp_err(struct __sk_buff *skb, const struct kxp_pkt *p, struct kxp_dec *d,
					 bool ingress)
{
	__u32 o = p->l4_off, want = o + 8 + 20 + 8;
	struct iphdr *ip, *in;
	struct kxp_icmphdr *ic;
	__be16 *ports, *ucsum = NULL;
	struct kxp_ct_val *v;
	struct kxp_flow4 k = {};
	void *data, *data_end;
	__be32 osa, oda, nosa, noda, isa, ida, nisa, nida;
	__be16 isp, idp, nisp, nidp, iic, niic, iuc = 0, niuc = 0, oic, noic, icc, nicc;
	__u32 acc;
	__u64 now;

	if (o > KXP_L4_OFF_MAX || p->frag)
		return;
	if (want > skb->len)
		return;
	if ((void *)(long)skb->data + want > (void *)(long)skb->data_end)
		bpf_skb_pull_data(skb, want);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	ip = data + ETH_HLEN;
	ic = data + o;
	in = (void *)(ic + 1);
	ports = (void *)(in + 1);
	if ((void *)(ports + 4) > data_end || (void *)(ip + 1) > data_end)
		return;
	if (ic->type != ICMP_DEST_UNREACH && ic->type != ICMP_TIME_EXCEEDED && ic->type != ICMP_PARAMETERPROB)
		return;
	if (in->version != 4 || in->ihl != 5 ||
	    (in->protocol != IPPROTO_TCP && in->protocol != IPPROTO_UDP && in->protocol != IPPROTO_SCTP))
		return;
	isa = in->saddr;
	ida = in->daddr;
	isp = ports[0];
	idp = ports[1];
	/* the quoted packet went backend-ward: its REPLY entry is the reverse */
	k.saddr = ida;
	k.daddr = isa;
	k.sport = idp;
	k.dport = isp;
	k.proto = in->protocol;
	k.dir = KXP_DIR_REPLY;
	v = bpf_map_lookup_elem(&kxp_ct4, &k);
	if (!v)
		return;
	now = bpf_ktime_get_ns();
	if (kxp_ct_expired(v, k.proto, now))
		return;
	if (ingress && !(v->flags & KXP_CT_F_SNAT))
		return; /* left for TC egress, like the flow's replies (lib/ct.h) */
	nisa = v->nat.daddr;
	nisp = v->nat.dport;
	nida = v->nat.saddr;
	nidp = v->nat.sport;
	osa = ip->saddr;
	oda = ip->daddr;
	noda = oda == isa ? nisa : oda;
	nosa = osa == ida ? nida : osa;
	if (k.proto == IPPROTO_UDP)
		ucsum = &ports[3];

	d->has_fe = 1;
	d->fe_id = v->fe_id;
	d->snat = !!(v->flags & KXP_CT_F_SNAT);
	d->reply = 1;
	d->be_addr = ida;
	d->be_port = idp;
	d->nat.saddr = nosa;
	d->nat.daddr = noda;
	kxp_dec_set(d, KXP_V_FORWARD, KXP_R_ICMP_ERR);
	if (kxp_trace_mode)
		return;

	/* quoted IP header checksum */
	iic = in->check;
	acc = kxp_csum_acc4(kxp_csum_acc4(kxp_csum_begin(iic), isa, nisa), ida, nida);
	niic = kxp_csum_end(acc);
	/* quoted UDP checksum (pseudo header addresses and ports) */
	if (ucsum && *ucsum) {
		iuc = *ucsum;
		acc = kxp_csum_acc4(kxp_csum_acc4(kxp_csum_begin(iuc), isa, nisa), ida, nida);
		acc = kxp_csum_acc2(kxp_csum_acc2(acc, isp, nisp), idp, nidp);
		niuc = kxp_csum_end(acc);
		if (!niuc)
			niuc = 0xffff;
	}
	/* ICMP checksum: every 16-bit word of the message that changes */
	icc = ic->checksum;
	acc = kxp_csum_acc4(kxp_csum_acc4(kxp_csum_begin(icc), isa, nisa), ida, nida);
	acc = kxp_csum_acc2(kxp_csum_acc2(acc, isp, nisp), idp, nidp);
	acc = kxp_csum_acc2(acc, iic, niic);
	if (iuc)
		acc = kxp_csum_acc2(acc, iuc, niuc);
	nicc = kxp_csum_end(acc);
	/* outer IP header checksum */
	oic = ip->check;
	noic = kxp_csum_end(kxp_csum_acc4(kxp_csum_acc4(kxp_csum_begin(oic), osa, nosa), oda, noda));

	/* writes (packet pointers are invalid from here on) */
	if (kxp_store(skb, o + 8 + 12, &nisa, 4) || kxp_store(skb, o + 8 + 16, &nida, 4) ||
	    kxp_store(skb, o + 8 + 10, &niic, 2) || kxp_store(skb, o + 28, &nisp, 2) ||
	    kxp_store(skb, o + 30, &nidp, 2) || (iuc && kxp_store(skb, o + 34, &niuc, 2)) ||
	    kxp_store(skb, o + 2, &nicc, 2) || kxp_store(skb, KXP_IP_SADDR_OFF, &nosa, 4) ||
	    kxp_store(skb, KXP_IP_DADDR_OFF, &noda, 4) || kxp_store(skb, KXP_IP_CSUM_OFF, &noic, 2))
		kxp_dec_set(d, KXP_V_DROP, KXP_R_CSUM);
}

#endif
