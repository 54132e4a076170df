/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* TC entries: ingress on pod-facing and external devices (reverse NAT of
 * replies, then the frontend decision and DNAT), egress (reverse NAT only,
 * for replies of host-network backends).
 *
 * Datapath rules (Spine I), shared with kxp_xdp.bpf.c through bpf/lib/:
 *
 * Parsing (lib/parse.h): non-IPv4 (VLAN included) passes (NOT_IPV4);
 * ihl < 5, inconsistent tot_len, truncated L4 header pass untouched
 * (MALFORMED); IP options are fine (L4 at ihl*4); fragments pass untouched
 * (FRAGMENT when they go to a frontend: the first by its ports, later ones
 * only to a ClusterIP, known by its WILDCARD entry); protocols other than
 * TCP/UDP/SCTP pass (UNKNOWN_PROTO), ICMP errors included (not translated
 * yet). TC pulls the first 94 bytes into the linear area when needed.
 *
 * Order per packet at ingress: 1. a REPLY ct entry for the packet's tuple ->
 * rewrite the source back to the frontend (REPLY), unless the frontend is a
 * node address (NodePort): such a reply is passed as is and translated by TC
 * egress of the device it leaves by (a local source arriving at ingress is a
 * martian to the stack), so TC egress must be attached wherever replies
 * leave; 2. kxp_svc4 {daddr, dport,
 * proto, DEFAULT}; a miss inside a service CIDR: WILDCARD entry -> reject
 * (PORT_UNKNOWN), none -> drop (SVC_CIDR_DROP); a miss elsewhere passes
 * (NOT_SERVICE, not counted). 3. Source class by address: LOCAL node address
 * -> node, cluster CIDR -> pod, else external. 4. loadBalancerSourceRanges
 * (LBSR flag): source not in kxp_lbsr4 for the fe_id -> drop (LBSR_DENY).
 * 5. SPLIT (eTP=Local external frontend) and a pod or node source -> the
 * INTERNAL (cluster-wide) entry. 6. A live FWD ct entry decides (CT_HIT),
 * whatever the set is now; a TCP SYN on a CLOSING entry is a new connection
 * and is balanced anew. 7. New flow: count == 0 -> reject (REJECT flag,
 * NO_ENDPOINTS) or drop (POLICY_DROP); random slot -> backend (missing:
 * drop NO_BACKEND); a flow that needs masquerade (external/node source to a
 * ClusterIP when a cluster CIDR is configured, any --masquerade-all ClusterIP
 * flow, eTP=Cluster external frontends, node source to eTP=Local ones,
 * hairpin) passes untouched (NEEDS_SNAT) with no ct entry; a TCP packet that
 * is not a SYN drops (CT_MISS); an SCTP backend port different from the
 * frontend port passes (UNKNOWN_PROTO: kxp does not recompute CRC32c, SCTP
 * is translated only when the port stays); else FWD+REPLY ct entries and DNAT
 * (OK). The client address is never changed in Spine I.
 *
 * "Reject" passes the packet untouched until the ICMP builder lands; it is
 * counted as a reject. Checksums: bpf_l3/l4_csum_replace (pseudo header for
 * addresses, MANGLED_0 for UDP; UDP checksum 0 stays 0). A failing helper
 * drops (CSUM). Conntrack lifetimes: lib/ct.h. Counters: lib/stats.h.
 * Trace copies (kxp_trace_mode) decide the same but write no state at all
 * and publish the decision in kxp_trace_res. */
#include <linux/pkt_cls.h>
#include "lib/maps.h"

const volatile __u32 kxp_trace_mode = 0;
struct kxp_trace_res kxp_trace_res = {};

#include "lib/parse.h"
#include "lib/stats.h"
#include "lib/ct.h"
#include "lib/lb.h"
#include "lib/nat.h"

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

SEC("tc")
int kxp_tc_ingress(struct __sk_buff *skb)
{
	struct kxp_dec d = { .verdict = KXP_V_PASS, .reason = KXP_R_NOT_SERVICE };
	bool count = !kxp_trace_mode && !kxp_tc_xdp_counted(skb);
	struct kxp_pkt p = {};
	int r;

	kxp_tc_pull(skb);
	r = kxp_parse((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, &p);
	if (r == KXP_R_OK) {
		if (kxp_ct_reply(&p, &d, true) == KXP_REPLY_NONE)
			kxp_lb_frontend(&p, &d);
	} else if (r == KXP_R_FRAGMENT) {
		kxp_lb_fragment(&p, &d);
	} else {
		kxp_dec_set(&d, KXP_V_PASS, r);
	}
	if (d.verdict == KXP_V_FORWARD && kxp_tc_nat(skb, &p, &d.nat))
		kxp_dec_set(&d, KXP_V_DROP, KXP_R_CSUM);
	kxp_account(&p, &d, count);
	if (kxp_trace_mode)
		kxp_trace_publish(&p, &d, KXP_STAGE_TC_INGRESS);
	return d.verdict == KXP_V_DROP ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("tc")
int kxp_tc_egress(struct __sk_buff *skb)
{
	struct kxp_dec d = { .verdict = KXP_V_PASS, .reason = KXP_R_NOT_SERVICE };
	struct kxp_pkt p = {};

	kxp_tc_pull(skb);
	if (kxp_parse((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, &p) == KXP_R_OK &&
	    kxp_ct_reply(&p, &d, false) == KXP_REPLY_NAT && kxp_tc_nat(skb, &p, &d.nat))
		kxp_dec_set(&d, KXP_V_DROP, KXP_R_CSUM);
	kxp_account(&p, &d, !kxp_trace_mode);
	if (kxp_trace_mode)
		kxp_trace_publish(&p, &d, KXP_STAGE_TC_EGRESS);
	return d.verdict == KXP_V_DROP ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
