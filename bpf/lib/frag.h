/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* IP fragments. kube-proxy gets reassembly from netfilter; kxp does not
 * reassemble, it makes later fragments follow their first fragment: the
 * first fragment (MF, offset 0: ports known) is decided and translated like
 * any packet and, when it hit a frontend or a flow, records its ports in
 * kxp_frag4 under {saddr, daddr, IP id, proto}; a later fragment takes the
 * ports from there and goes through the same decision, which a ct entry now
 * answers (its L4 header is absent, so only addresses are rewritten). A
 * later fragment whose first fragment was not seen (lost, reordered, older
 * than 30 s) passes untouched and is counted FRAGMENT. A rejected datagram
 * is answered once, for its first fragment. */
#ifndef KXP_BPF_FRAG_H
#define KXP_BPF_FRAG_H

#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/ct.h"

#define KXP_FRAG_LIFE_NS (30 * KXP_NSEC) /* the kernel's ipfrag_time */

/* A fragment whose ports are known becomes a normal packet (OK). */
static __always_inline int kxp_frag_follow(struct kxp_pkt *p, int r)
{
	struct kxp_frag_key k = { .saddr = p->saddr, .daddr = p->daddr, .id = p->ip_id, .proto = p->proto };
	struct kxp_frag_val *v;

	if (r != KXP_R_FRAGMENT)
		return r;
	if (p->frag == KXP_FRAG_FIRST)
		return p->has_ports ? KXP_R_OK : r;
	v = bpf_map_lookup_elem(&kxp_frag4, &k);
	if (!v || bpf_ktime_get_ns() - v->created > KXP_FRAG_LIFE_NS)
		return r;
	p->sport = v->sport;
	p->dport = v->dport;
	p->has_ports = 1;
	return KXP_R_OK;
}

static __always_inline void kxp_frag_record(const struct kxp_pkt *p, const struct kxp_dec *d)
{
	struct kxp_frag_key k = { .saddr = p->saddr, .daddr = p->daddr, .id = p->ip_id, .proto = p->proto };
	struct kxp_frag_val v = { .sport = p->sport, .dport = p->dport };

	if (kxp_trace_mode || p->frag != KXP_FRAG_FIRST || d->verdict == KXP_V_PASS)
		return;
	v.created = bpf_ktime_get_ns();
	bpf_map_update_elem(&kxp_frag4, &k, &v, BPF_ANY);
}

#endif
