/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The decision a program reached for one packet, and its accounting: per-
 * frontend and per-reason counters, or (trace copies) the kxp_trace_res
 * global. Includers define kxp_trace_mode and kxp_trace_res first. */
#ifndef KXP_BPF_STATS_H
#define KXP_BPF_STATS_H

#include "lib/maps.h"
#include "lib/parse.h"

/* XDP leaves this in the metadata of a frontend packet it counted but passed
 * untouched (pass, reject), so TC ingress on the same device, which decides
 * it again, does not count it twice. */
#define KXP_META_COUNTED 0x6b787031 /* "kxp1" */

enum kxp_stage {
	KXP_STAGE_XDP = 1,
	KXP_STAGE_TC_INGRESS = 2,
	KXP_STAGE_TC_EGRESS = 3,
};

struct kxp_dec {
	__u32 verdict;   /* enum kxp_verdict */
	__u32 reason;    /* enum kxp_reason */
	__u32 fe_id;     /* valid if has_fe */
	__u32 backend_id;
	__be32 be_addr;
	__be16 be_port;
	__u8 has_fe;
	__u8 snat;       /* the flow needs (would need) masquerade */
	struct kxp_nat4 nat; /* FORWARD: the tuple to write into the packet */
	__u8 be_local;   /* the backend is on this node */
	__u8 reply;      /* a reply (or an ICMP error travelling toward the client) */
	__u8 new_flow;   /* kxp_lb_decide chose a backend for a new flow: commit it */
	__u8 replace;    /* ... replacing this flow's expired or closing ct entries */
	__u8 fe_kind;    /* ... of a frontend of this kind (enum kxp_fe_kind) */
	__u8 pad[3];
	__u64 now;       /* the packet clock kxp_lb_decide read (kxp_lb_commit reuses it) */
};

static __always_inline void kxp_dec_set(struct kxp_dec *d, __u32 verdict, __u32 reason)
{
	d->verdict = verdict;
	d->reason = reason;
}

/* Counters: one update per program run. NOT_SERVICE is never counted (it is
 * nearly every packet of the node); `count` is false in trace copies and for
 * packets XDP already counted (see kxp_tc_ingress). A packet that matched a
 * frontend counts in packets/bytes plus drops/rejects/passed by verdict
 * (and snat_fail); replies and translated ICMP errors count only by reason. */
static __always_inline void kxp_account(const struct kxp_pkt *p, const struct kxp_dec *d, bool count)
{
	struct kxp_stats *st;
	__u32 r = d->reason;
	__u64 *rc;

	if (!count || r == KXP_R_NOT_SERVICE)
		return;
	rc = bpf_map_lookup_elem(&kxp_reasons, &r);
	if (rc)
		*rc += 1;
	if (!d->has_fe || r == KXP_R_REPLY || r == KXP_R_ICMP_ERR)
		return;
	st = bpf_map_lookup_elem(&kxp_stats, &d->fe_id);
	if (!st)
		return;
	st->packets++;
	st->bytes += p->len;
	if (r == KXP_R_SNAT_FAIL)
		st->snat_fail++;
	if (d->verdict == KXP_V_DROP)
		st->drops++;
	else if (d->verdict == KXP_V_REJECT)
		st->rejects++;
	else if (d->verdict == KXP_V_PASS)
		st->passed++;
}

/* Trace copies only: publish the decision for `kxp trace`. */
static __always_inline void kxp_trace_publish(const struct kxp_pkt *p, const struct kxp_dec *d, __u8 stage)
{
	struct kxp_trace_res *t = &kxp_trace_res;
	bool fwd = d->verdict == KXP_V_FORWARD;

	t->verdict = d->verdict;
	t->reason = d->reason;
	t->fe_id = d->has_fe ? d->fe_id : 0;
	t->backend_id = d->backend_id;
	t->backend_addr = d->be_addr;
	t->backend_port = d->be_port;
	t->snat = d->snat;
	t->stage = stage;
	t->src_addr = fwd ? d->nat.saddr : p->saddr;
	t->dst_addr = fwd ? d->nat.daddr : p->daddr;
	t->src_port = fwd ? d->nat.sport : p->sport;
	t->dst_port = fwd ? d->nat.dport : p->dport;
}

#endif
