/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* XDP entry on external devices: the frontend decision and DNAT for traffic
 * arriving from outside the node, before an skb exists.
 *
 * Same parsing, decision, conntrack and counting rules as TC ingress (see the
 * header of kxp_tc.bpf.c and bpf/lib/); differences:
 *  - no reverse NAT here: replies of remote backends are translated by TC
 *    ingress on the same device, which sees every packet XDP passes;
 *  - a translated packet goes to the stack (XDP_PASS), which routes it to the
 *    local backend over its /32 route (Spine I serves only eTP=Local external
 *    flows, which never need a redirect);
 *  - checksums are updated incrementally (lib/csum.h, RFC 1624);
 *  - a frontend packet passed untouched (needs SNAT, reject, fragment) carries
 *    KXP_META_COUNTED in its metadata so TC ingress does not count it again. */
#include "lib/maps.h"

const volatile __u32 kxp_trace_mode = 0;
struct kxp_trace_res kxp_trace_res = {};

#include "lib/parse.h"
#include "lib/stats.h"
#include "lib/ct.h"
#include "lib/lb.h"
#include "lib/nat.h"

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

SEC("xdp")
int kxp_xdp(struct xdp_md *ctx)
{
	struct kxp_dec d = { .verdict = KXP_V_PASS, .reason = KXP_R_NOT_SERVICE };
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct kxp_pkt p = {};
	int r;

	r = kxp_parse(data, data_end, data_end - data, &p);
	if (r == KXP_R_OK)
		kxp_lb_frontend(&p, &d);
	else if (r == KXP_R_FRAGMENT)
		kxp_lb_fragment(&p, &d);
	else
		kxp_dec_set(&d, KXP_V_PASS, r);
	if (d.verdict == KXP_V_FORWARD && kxp_xdp_nat(ctx, &p, &d.nat))
		kxp_dec_set(&d, KXP_V_DROP, KXP_R_CSUM);
	kxp_account(&p, &d, !kxp_trace_mode);
	if (kxp_trace_mode) {
		kxp_trace_publish(&p, &d, KXP_STAGE_XDP);
		return d.verdict == KXP_V_DROP ? XDP_DROP : XDP_PASS;
	}
	if (d.verdict == KXP_V_DROP)
		return XDP_DROP;
	if (d.has_fe && d.verdict != KXP_V_FORWARD)
		kxp_xdp_mark_counted(ctx);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
