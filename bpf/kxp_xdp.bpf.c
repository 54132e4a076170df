/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* XDP entry on external devices: the frontend decision, DNAT and masquerade
 * for traffic arriving from outside the node, before an skb exists.
 *
 * Same parsing, decision, conntrack and counting rules as TC ingress (see the
 * header of kxp_tc.bpf.c and bpf/lib/); differences:
 *  - replies: only those of masqueraded flows are translated here (un-SNAT
 *    and un-DNAT, lib/ct.h), looked up only for the SNAT address and
 *    destination ports inside the SNAT range (lib/lb.h kxp_lb_may_reply);
 *    other replies are left to TC;
 *  - a translated packet of a flow without SNAT goes to the stack (XDP_PASS),
 *    which routes it (the client address is preserved, nothing is martian);
 *  - a translated packet of a masqueraded flow is routed here with
 *    bpf_fib_lookup: XDP_TX when it leaves by the ingress device, XDP_REDIRECT
 *    toward a remote backend behind another device; whatever XDP cannot send
 *    itself (neighbour unknown, backend on this node, a reply leaving by
 *    another device, MTU exceeded) is handed to TC ingress untranslated, with
 *    its ct state already written (lib/fwd.h);
 *  - rejects and ICMP errors are left to TC, which builds/translates ICMP;
 *  - checksums are updated incrementally (lib/csum.h, RFC 1624);
 *  - a frontend packet passed untouched after being counted here (pass, or
 *    handed to TC) carries KXP_META_COUNTED in its metadata so TC ingress
 *    does not count it again; where the kernel refuses bpf_xdp_adjust_meta
 *    in XDP (KXP_FEAT_XDP_META clear) XDP leaves such packets uncounted and
 *    TC ingress counts them as it decides them again. */
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

static __always_inline void kxp_xdp_mark_counted(struct xdp_md *ctx)
{
	void *meta, *data;

	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(__u32)))
		return;
	meta = (void *)(long)ctx->data_meta;
	data = (void *)(long)ctx->data;
	if (meta + sizeof(__u32) <= data)
		*(__u32 *)meta = KXP_META_COUNTED;
}

/* Send a masqueraded flow's translated packet (XDP_TX/XDP_REDIRECT), or -1:
 * hand it to TC untranslated. Its own frame keeps the FIB lookup's 64 bytes
 * off the entry's stack (6.1 counts the entry, kxp_lb_commit and the SNAT
 * search's callback together against 512 bytes). */
static __noinline int kxp_xdp_forward(struct xdp_md *ctx, const struct kxp_pkt *p, struct kxp_dec *d)
{
	struct bpf_fib_lookup f = {};
	int act;

	act = kxp_xdp_route(ctx, p, d, &f);
	if (act < 0)
		return -1;
	if (kxp_xdp_nat(ctx, p, &d->nat) || kxp_xdp_l2(ctx, &f)) {
		kxp_dec_set(d, KXP_V_DROP, KXP_R_CSUM);
		return XDP_DROP;
	}
	if (act == XDP_REDIRECT && !kxp_trace_mode)
		return bpf_redirect(f.ifindex, 0);
	return act;
}

SEC("xdp")
int kxp_xdp(struct xdp_md *ctx)
{
	struct kxp_dec d = { .verdict = KXP_V_PASS, .reason = KXP_R_NOT_SERVICE };
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct kxp_pkt p = {};
	int r, act = XDP_PASS;
	bool to_tc = false, defer;

	r = kxp_frag_follow(&p, kxp_parse(data, data_end, data_end - data, &p));
	if (r == KXP_R_OK) {
		kxp_lb_ingress(ctx, ctx->ingress_ifindex, &p, &d, KXP_STAGE_XDP);
	} else if (r == KXP_R_FRAGMENT) {
		kxp_lb_fragment(&p, &d);
	} else {
		kxp_dec_set(&d, KXP_V_PASS, r);
	}
	kxp_frag_record(&p, &d);

	if (d.verdict == KXP_V_DROP) {
		act = XDP_DROP;
	} else if (d.verdict == KXP_V_REJECT) {
		/* TC builds the ICMP answer, decides it again and counts it */
		if (kxp_trace_mode) {
			d.verdict = KXP_V_PASS;
			kxp_trace_publish(&p, &d, KXP_STAGE_XDP);
		}
		return XDP_PASS;
	} else if (d.verdict == KXP_V_FORWARD && d.snat) {
		act = kxp_xdp_forward(ctx, &p, &d);
		if (act < 0) {
			to_tc = true;
			act = XDP_PASS;
		}
	} else if (d.verdict == KXP_V_FORWARD && kxp_xdp_nat(ctx, &p, &d.nat)) {
		kxp_dec_set(&d, KXP_V_DROP, KXP_R_CSUM);
		act = XDP_DROP;
	}
	/* without metadata TC cannot tell what XDP counted: it counts alone */
	defer = !KXP_HAS(XDP_META) && act == XDP_PASS && d.has_fe && (d.verdict != KXP_V_FORWARD || to_tc);
	kxp_account(&p, &d, !kxp_trace_mode && !defer);
	if (kxp_trace_mode) {
		/* handed to TC: trace goes on there, as the packet would */
		if (to_tc)
			d.verdict = KXP_V_PASS;
		kxp_trace_publish(&p, &d, KXP_STAGE_XDP);
		return act == XDP_DROP ? XDP_DROP : XDP_PASS;
	}
	if (KXP_HAS(XDP_META) && act == XDP_PASS && d.has_fe && (d.verdict != KXP_V_FORWARD || to_tc))
		kxp_xdp_mark_counted(ctx);
	return act;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
