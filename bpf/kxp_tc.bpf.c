/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* TC entries: ingress on pod-facing and external devices (reverse NAT of
 * masqueraded flows' replies, then the frontend decision, DNAT, masquerade,
 * forwarding of masqueraded flows, rejects and ICMP errors), egress (reverse
 * NAT of the other flows' replies, fragments included, and of ICMP errors
 * about translated flows).
 *
 * Datapath rules, shared with kxp_xdp.bpf.c through bpf/lib/:
 *
 * Parsing (lib/parse.h): non-IPv4 (VLAN included) passes (NOT_IPV4);
 * ihl < 5, inconsistent tot_len, truncated L4 header pass untouched
 * (MALFORMED); IP options are fine (L4 at ihl*4); protocols other than
 * TCP/UDP/SCTP pass (UNKNOWN_PROTO), except ICMP errors about translated
 * flows, which are translated (ICMP_ERR, lib/icmp.h). TC pulls the first 94
 * bytes into the linear area when needed. Fragments (lib/frag.h): the first
 * fragment is decided and translated like any packet and records its ports;
 * later fragments of the same datagram follow it (addresses rewritten only);
 * one whose first fragment was not seen passes untouched (FRAGMENT).
 *
 * Order per packet at ingress: 1. a REPLY ct entry for the packet's tuple
 * (looked up for packets to the SNAT address only, lib/lb.h kxp_lb_may_reply):
 * masqueraded flows are rewritten back to {frontend -> client} here (REPLY,
 * lib/ct.h; reverse SNAT is looked up before frontends) and forwarded by
 * kxp; other flows' replies pass as the backend sent them and TC egress of
 * the device they leave by translates them, after netfilter, so the node's
 * conntrack sees each flow as client -> backend both ways (TC egress must be
 * attached wherever replies leave); 2. kxp_svc4
 * {daddr, dport, proto, DEFAULT}; a miss inside a service CIDR: WILDCARD
 * entry -> reject (PORT_UNKNOWN), none -> drop (SVC_CIDR_DROP); a miss
 * elsewhere passes (NOT_SERVICE, not counted). 3. Source class by address:
 * LOCAL node address -> node, cluster CIDR -> pod, else external.
 * 4. loadBalancerSourceRanges (LBSR flag): source not in kxp_lbsr4 for the
 * fe_id -> drop (LBSR_DENY). 5. SPLIT (eTP=Local external frontend) and a
 * pod or node source -> the INTERNAL (cluster-wide) entry. 6. A live FWD ct
 * entry decides (CT_HIT), whatever the set is now; a TCP SYN on a CLOSING
 * entry is a new connection and is balanced anew. 7. New flow: count == 0 ->
 * reject (REJECT flag, NO_ENDPOINTS) or drop (POLICY_DROP); a TCP packet that
 * is not a SYN passes untouched (CT_MISS: never balanced anew; a connection
 * kube-proxy translated before kxp took over keeps going through netfilter);
 * selection (lib/lb.h kxp_lb_pick) -> backend (missing: drop NO_BACKEND); an
 * SCTP backend port different from the frontend port passes
 * (UNKNOWN_PROTO: kxp does not recompute CRC32c, SCTP is translated only when
 * the port stays); else FWD+REPLY ct entries and DNAT (OK).
 *
 * Masquerade (E.29-E.33), decided per new flow: external or node source to a
 * ClusterIP when a cluster CIDR is configured, every ClusterIP flow with
 * --masquerade-all, every source to an eTP=Cluster external frontend, node
 * sources to eTP=Local ones, and hairpin (backend == source) everywhere;
 * never toward a backend on a node address (host network: delivered locally,
 * where kube-proxy's postrouting masquerade does not apply). Address and
 * port allocation: lib/snat.h (failures drop, SNAT_FAIL). Both directions of
 * a masqueraded flow are forwarded by kxp, never by the stack (lib/fwd.h):
 * XDP_TX/XDP_REDIRECT from XDP, bpf_redirect_neigh from TC (local backends
 * always from TC); a packet with DF too big for the egress link gets ICMP
 * fragmentation needed.
 *
 * Rejects (lib/icmp.h): ICMP port unreachable built here from the offending
 * frame and sent back out of its ingress device, rate-limited (1000/s per
 * CPU, burst 50; over: REJECT_LIMIT drop), never for later fragments,
 * multicast/broadcast frames or bogus sources (NO_REJECT drop).
 *
 * Checksums: bpf_l3/l4_csum_replace (pseudo header for addresses, MANGLED_0
 * for UDP; UDP checksum 0 stays 0). A failing helper drops (CSUM).
 * Conntrack lifetimes: lib/ct.h. Counters: lib/stats.h. Trace copies
 * (kxp_trace_mode) decide the same but write no state at all (no ct entry,
 * no SNAT claim: the SNAT port shown is the allocator's first candidate, no
 * ICMP built, no redirect) and publish the decision in kxp_trace_res. */
#include <linux/pkt_cls.h>
#include "lib/maps.h"

const volatile __u32 kxp_trace_mode = 0;
struct kxp_trace_res kxp_trace_res = {};

#include "lib/parse.h"
#include "lib/stats.h"
#include "lib/ct.h"
#include "lib/lb.h"
#include "lib/nat.h"
#include "lib/fwd.h"
#include "lib/frag.h"
#include "lib/icmp.h"

/* Headers of forwarded or GSO skbs may sit partly outside the linear area. */
static __always_inline void kxp_tc_pull(struct __sk_buff *skb)
{
	__u32 want = KXP_L4_OFF_MAX + sizeof(struct tcphdr);
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	if (want > skb->len)
		want = skb->len;
	if (data + want > data_end)
		bpf_skb_pull_data(skb, want);
}

static __always_inline bool kxp_tc_xdp_counted(struct __sk_buff *skb)
{
	void *meta = (void *)(long)skb->data_meta;
	void *data = (void *)(long)skb->data;

	return meta + sizeof(__u32) <= data && *(__u32 *)meta == KXP_META_COUNTED;
}

/* Act on a FORWARD decision of a masqueraded flow (or an ICMP error about
 * one): route it, then send it with bpf_redirect_neigh. */
static __noinline long kxp_tc_send(struct __sk_buff *skb, const struct kxp_pkt *p, struct kxp_dec *d,
					bool translated)
{
	__u32 ifindex = 0;
	__u16 mtu = 0;

	switch (kxp_tc_route(skb, p, d, &ifindex, &mtu)) {
	case KXP_RT_REDIRECT:
		break;
	case KXP_RT_STACK:
		if (!translated && kxp_tc_nat(skb, p, &d->nat))
			goto csum;
		return TC_ACT_OK;
	case KXP_RT_FRAG:
		/* answered from the untranslated packet: the client sees its frontend */
		if (translated || !p->df || p->frag == KXP_FRAG_LATER) {
			kxp_dec_set(d, KXP_V_DROP, KXP_R_FRAG_NEEDED);
			return TC_ACT_SHOT;
		}
		kxp_dec_set(d, KXP_V_REJECT, KXP_R_FRAG_NEEDED);
		if (kxp_trace_mode)
			return TC_ACT_OK;
		if (!kxp_reject_allowed()) {
			kxp_dec_set(d, KXP_V_DROP, KXP_R_REJECT_LIMIT);
			return TC_ACT_SHOT;
		}
		if (kxp_icmp_build(skb, p, ICMP_FRAG_NEEDED, mtu))
			goto csum;
		return bpf_redirect(skb->ifindex, 0);
	default:
		kxp_dec_set(d, KXP_V_DROP, KXP_R_NO_ROUTE);
		return TC_ACT_SHOT;
	}
	if (!translated && kxp_tc_nat(skb, p, &d->nat))
		goto csum;
	if (kxp_trace_mode)
		return TC_ACT_OK;
	return bpf_redirect_neigh(ifindex, NULL, 0, 0);
csum:
	kxp_dec_set(d, KXP_V_DROP, KXP_R_CSUM);
	return TC_ACT_SHOT;
}

static __noinline long kxp_tc_reject(struct __sk_buff *skb, const struct kxp_pkt *p, struct kxp_dec *d)
{
	if (kxp_reject_suppressed(p)) {
		kxp_dec_set(d, KXP_V_DROP, KXP_R_NO_REJECT);
		return TC_ACT_SHOT;
	}
	if (kxp_trace_mode)
		return TC_ACT_OK;
	if (!kxp_reject_allowed()) {
		kxp_dec_set(d, KXP_V_DROP, KXP_R_REJECT_LIMIT);
		return TC_ACT_SHOT;
	}
	if (kxp_icmp_build(skb, p, ICMP_PORT_UNREACH, 0)) {
		kxp_dec_set(d, KXP_V_DROP, KXP_R_CSUM);
		return TC_ACT_SHOT;
	}
	return bpf_redirect(skb->ifindex, 0);
}

SEC("tc")
int kxp_tc_ingress(struct __sk_buff *skb)
{
	struct kxp_dec d = { .verdict = KXP_V_PASS, .reason = KXP_R_NOT_SERVICE };
	bool count = !kxp_trace_mode && !kxp_tc_xdp_counted(skb);
	struct kxp_pkt p = {};
	long ret = TC_ACT_OK;
	int r;

	kxp_tc_pull(skb);
	r = kxp_frag_follow(&p, kxp_parse((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, &p));
	if (r == KXP_R_OK) {
		kxp_lb_ingress(skb, skb->ifindex, &p, &d, KXP_STAGE_TC_INGRESS);
	} else if (r == KXP_R_FRAGMENT) {
		kxp_lb_fragment(&p, &d);
	} else if (r == KXP_R_UNKNOWN_PROTO && p.proto == IPPROTO_ICMP) {
		kxp_dec_set(&d, KXP_V_PASS, r);
		kxp_icmp_err(skb, &p, &d, true);
	} else {
		kxp_dec_set(&d, KXP_V_PASS, r);
	}
	kxp_frag_record(&p, &d);

	if (d.verdict == KXP_V_DROP)
		ret = TC_ACT_SHOT;
	else if (d.verdict == KXP_V_REJECT)
		ret = kxp_tc_reject(skb, &p, &d);
	else if (d.verdict == KXP_V_FORWARD && d.snat)
		ret = kxp_tc_send(skb, &p, &d, d.reason == KXP_R_ICMP_ERR);
	else if (d.verdict == KXP_V_FORWARD && d.reason != KXP_R_ICMP_ERR && kxp_tc_nat(skb, &p, &d.nat)) {
		kxp_dec_set(&d, KXP_V_DROP, KXP_R_CSUM);
		ret = TC_ACT_SHOT;
	}
	kxp_account(&p, &d, count);
	if (kxp_trace_mode)
		kxp_trace_publish(&p, &d, KXP_STAGE_TC_INGRESS);
	return ret;
}

SEC("tc")
int kxp_tc_egress(struct __sk_buff *skb)
{
	struct kxp_dec d = { .verdict = KXP_V_PASS, .reason = KXP_R_NOT_SERVICE };
	struct kxp_pkt p = {};
	int r;

	kxp_tc_pull(skb);
	/* Replies are translated here (lib/ct.h), fragmented ones too: the
	 * first fragment records its ports, later ones follow it (lib/frag.h). */
	r = kxp_frag_follow(&p, kxp_parse((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, &p));
	if (r == KXP_R_OK) {
		if (kxp_lb_egress(&p, &d) == KXP_REPLY_NAT && kxp_tc_nat(skb, &p, &d.nat))
			kxp_dec_set(&d, KXP_V_DROP, KXP_R_CSUM);
		kxp_frag_record(&p, &d);
	} else if (r == KXP_R_UNKNOWN_PROTO && p.proto == IPPROTO_ICMP) {
		kxp_icmp_err(skb, &p, &d, false);
	}
	kxp_account(&p, &d, !kxp_trace_mode);
	if (kxp_trace_mode)
		kxp_trace_publish(&p, &d, KXP_STAGE_TC_EGRESS);
	return d.verdict == KXP_V_DROP ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
