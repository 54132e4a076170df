/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The frontend decision shared by XDP and TC ingress: frontend lookup, source
 * class, endpoint set (scope), conntrack, backend selection and the verdict.
 * It only decides (and records ct state); the caller rewrites the packet.
 * The full rule list is in the header comment of kxp_tc.bpf.c. */
#ifndef KXP_BPF_LB_H
#define KXP_BPF_LB_H

#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/stats.h"
#include "lib/ct.h"
#include "lib/snat.h"
#include "lib/maglev.h"
#include "lib/affinity.h"

enum kxp_src {
	KXP_SRC_EXTERNAL = 0,
	KXP_SRC_POD = 1,
	KXP_SRC_NODE = 2,
};

static __always_inline bool kxp_in_cidrs(__be32 a, const struct kxp_cidr4 *c, __u32 n)
{
	int i;

	for (i = 0; i < KXP_MAX_CIDRS; i++) {
		if (i >= n)
			break;
		if (((a ^ c[i].addr) & c[i].mask) == 0)
			return true;
	}
	return false;
}

/* By address, never by device (pods of other nodes arrive on the external
 * device): a LOCAL node address is the node, the cluster CIDRs are pods. */
static __always_inline int kxp_src_class(__be32 saddr, const struct kxp_config *cfg)
{
	struct kxp_nodeip *n = bpf_map_lookup_elem(&kxp_nodeip4, &saddr);

	if (n && (n->flags & KXP_NODEIP_F_LOCAL))
		return KXP_SRC_NODE;
	if (kxp_in_cidrs(saddr, cfg->cluster, cfg->n_cluster))
		return KXP_SRC_POD;
	return KXP_SRC_EXTERNAL;
}

/* Fill d from backend id `id`; -1 if no backend has it (a map race: the
 * array entry of a freed id is zero). */
static __always_inline int kxp_lb_backend(__u32 id, struct kxp_dec *d)
{
	struct kxp_backend *be = bpf_map_lookup_elem(&kxp_backend4, &id);

	if (!be || !be->addr)
		return -1;
	d->backend_id = id;
	d->be_addr = be->addr;
	d->be_port = be->port;
	d->be_local = !!(be->flags & KXP_BE_F_LOCAL);
	return 0;
}

/* Round robin: the set's counter of new flows, advanced with an atomic
 * fetch-and-add so flows on all CPUs walk one list (trace copies only read
 * it). Objects that must load on kernels before 5.12 (those without bpf_loop,
 * and the socket hooks: KXP_NO_ATOMIC_FETCH) read the counter first, then
 * add: two CPUs racing on one set may take the same slot (and skip the next),
 * a rare step off the walk, not a drift. */
#if defined(KXP_NO_BPF_LOOP) && !defined(KXP_NO_ATOMIC_FETCH)
#define KXP_NO_ATOMIC_FETCH
#endif
static __always_inline __u32 kxp_rr_next(__u32 sp_id)
{
	__u32 *c = bpf_map_lookup_elem(&kxp_rr, &sp_id);
	__u32 v;

	if (!c)
		return bpf_get_prandom_u32();
	if (kxp_trace_mode)
		return *(volatile __u32 *)c;
#ifdef KXP_NO_ATOMIC_FETCH
	v = *(volatile __u32 *)c;
	__sync_fetch_and_add(c, 1);
#else
	v = __sync_fetch_and_add(c, 1);
#endif
	return v;
}

/* THE selection entry point, shared by the packet path and the socket hooks.
 * Chooses a backend of `set` (count > 0) for a new flow and fills
 * d->backend_id, be_addr, be_port, be_local. `tuple` is the flow as the
 * client sent it (pre-NAT; Maglev hashes it, its proto is the backends'),
 * `client` the address sessionAffinity is keyed by (the packet's source).
 * Order: a live affinity entry whose backend is still in the set; else the
 * set's algorithm (random, rr, or maglev, which falls back to random while
 * the set has no table); then the affinity entry is (re)written. Trace copies
 * decide the same but write nothing (no rr advance, no affinity update).
 * Returns 0, or -1 when the set's maps are inconsistent (NO_BACKEND). */
static __always_inline int kxp_lb_pick(const struct kxp_svc_val *set, const struct kxp_flow4 *tuple, __be32 client,
				       struct kxp_dec *d)
{
	bool aff = (set->flags & KXP_SVC_F_AFFINITY) && set->affinity_timeout;
	struct kxp_config *cfg;
	__u32 zero = 0, id = 0, slot, *sid;
	__u64 now = 0;

	if (!set->count)
		return -1;
	if (aff) {
		now = kxp_now();
		id = kxp_aff_get(set, client, tuple->proto, now);
		if (id && !kxp_lb_backend(id, d))
			return 0;
		id = 0;
	}
	if (set->algo == KXP_ALGO_MAGLEV) {
		cfg = bpf_map_lookup_elem(&kxp_config, &zero);
		if (cfg && kxp_maglev_pick(set->sp_id, tuple, cfg->maglev_m, &id))
			id = 0;
	}
	if (!id) {
		if (set->algo == KXP_ALGO_RR)
			slot = kxp_rr_next(set->sp_id) % set->count;
		else
			slot = bpf_get_prandom_u32() % set->count;
		slot += set->base; /* the set's range of the one slot array */
		sid = bpf_map_lookup_elem(&kxp_slot, &slot);
		if (!sid || !*sid)
			return -1;
		id = *sid;
	}
	if (kxp_lb_backend(id, d))
		return -1;
	if (aff)
		kxp_aff_put(set, client, tuple->proto, id, d->be_addr, d->be_port, now);
	return 0;
}

/* Kept for callers written before kxp_lb_pick: no tuple, so no Maglev
 * (random) and affinity keyed by no client. Prefer kxp_lb_pick. */
static __always_inline int kxp_lb_select(const struct kxp_svc_val *set, struct kxp_dec *d)
{
	struct kxp_svc_val s = *set;
	struct kxp_flow4 t = {};

	s.algo = s.algo == KXP_ALGO_MAGLEV ? KXP_ALGO_RANDOM : s.algo;
	s.flags &= ~KXP_SVC_F_AFFINITY;
	return kxp_lb_pick(&s, &t, 0, d);
}

/* No frontend for daddr:dport/proto. Inside a service CIDR: an active
 * ClusterIP (WILDCARD entry) rejects unknown ports, any other address there
 * is dropped; elsewhere the packet is none of kxp's business. */
static __always_inline void kxp_lb_unknown(const struct kxp_pkt *p, const struct kxp_config *cfg,
					   struct kxp_dec *d)
{
	struct kxp_svc_key k = { .addr = p->daddr, .scope = KXP_SCOPE_DEFAULT };
	struct kxp_svc_val *w;

	if (!cfg->n_service || !kxp_in_cidrs(p->daddr, cfg->service, cfg->n_service))
		return;
	w = bpf_map_lookup_elem(&kxp_svc4, &k);
	if (!w) {
		kxp_dec_set(d, KXP_V_DROP, KXP_R_SVC_CIDR_DROP);
		return;
	}
	d->has_fe = 1;
	d->fe_id = w->fe_id;
	kxp_dec_set(d, KXP_V_REJECT, KXP_R_PORT_UNKNOWN);
}

/* Fragments that cannot be followed (a later fragment whose first one was
 * not seen, see lib/frag.h) pass untranslated. One "to a frontend" is counted
 * FRAGMENT, known by the address alone, which only ClusterIPs (WILDCARD
 * entry) provide. */
static __always_inline void kxp_lb_fragment(const struct kxp_pkt *p, struct kxp_dec *d)
{
	struct kxp_svc_key k = { .addr = p->daddr, .scope = KXP_SCOPE_DEFAULT };
	struct kxp_svc_val *svc = NULL;

	if (p->has_ports) {
		k.port = p->dport;
		k.proto = p->proto;
		svc = bpf_map_lookup_elem(&kxp_svc4, &k);
		k.port = 0;
		k.proto = 0;
	}
	if (!svc)
		svc = bpf_map_lookup_elem(&kxp_svc4, &k);
	if (!svc)
		return;
	d->has_fe = 1;
	d->fe_id = svc->fe_id;
	kxp_dec_set(d, KXP_V_PASS, KXP_R_FRAGMENT);
}

static __always_inline bool kxp_fe_external(const struct kxp_svc_val *svc)
{
	return (svc->flags & KXP_SVC_F_EXTERNAL) || svc->kind == KXP_FE_NODEPORT ||
	       svc->kind == KXP_FE_LOADBALANCER || svc->kind == KXP_FE_EXTERNALIP;
}

/* kxp_hint (abi.h): may the lookup this bit stands for hit? Yes when the
 * writer has not completed that bitmap (flag clear in kxp_config.hints). */
static __always_inline bool kxp_hint_bit(__u32 word, __u32 bit)
{
	__u64 *w = bpf_map_lookup_elem(&kxp_hint, &word);

	return !w || ((*w >> bit) & 1);
}

/* Can a packet from this port be a backend's reply? */
static __always_inline bool kxp_hint_be_port(const struct kxp_config *cfg, __be16 port)
{
	__u32 h = bpf_ntohs(port);

	if (!(cfg->hints & KXP_HINT_F_PORTS))
		return true;
	return kxp_hint_bit(h / 64, h % 64);
}

/* Can this destination be a frontend? */
static __always_inline bool kxp_hint_fe_addr(const struct kxp_config *cfg, __be32 addr)
{
	__u32 h;

	if (!(cfg->hints & KXP_HINT_F_ADDRS) || kxp_in_cidrs(addr, cfg->service, cfg->n_service))
		return true;
	h = KXP_HINT_ADDR_BIT(addr);
	return kxp_hint_bit(KXP_HINT_PORT_WORDS + h / 64, h % 64);
}

/* The decision for a parsed TCP/UDP/SCTP packet (or a fragment whose ports
 * are known) that is not a reply, up to the backend of a new flow (which
 * kxp_lb_commit then makes a flow). d starts as {PASS, NOT_SERVICE}. */
static __noinline void kxp_lb_decide(const struct kxp_pkt *p, struct kxp_dec *d, const struct kxp_config *cfg)
{
	struct kxp_svc_key k = {
		.addr = p->daddr,
		.port = p->dport,
		.proto = p->proto,
		.scope = KXP_SCOPE_DEFAULT,
	};
	struct kxp_flow4 fk = {
		.saddr = p->saddr,
		.daddr = p->daddr,
		.sport = p->sport,
		.dport = p->dport,
		.proto = p->proto,
		.dir = KXP_DIR_FWD,
	};
	struct kxp_svc_val *svc, *set;
	struct kxp_ct_val *ct;
	bool syn;
	__u64 now;
	int src;

	if (!kxp_hint_fe_addr(cfg, p->daddr))
		return; /* no frontend has this address (kxp_lb_unknown: not ours) */
	svc = bpf_map_lookup_elem(&kxp_svc4, &k);
	if (!svc) {
		kxp_lb_unknown(p, cfg, d);
		return;
	}
	d->has_fe = 1;
	d->fe_id = svc->fe_id;

	/* An established TCP/SCTP flow needs neither the source class nor the
	 * set: its entry holds the translation, masquerade flag and the fe id
	 * of the entry that decided (the same answer as below, one hash
	 * lookup less). UDP (stale check) and LBSR services (their drop is
	 * decided first) take the full path. */
	syn = p->proto == IPPROTO_TCP && (p->tcp_flags & (KXP_TCP_SYN | KXP_TCP_ACK)) == KXP_TCP_SYN;
	d->now = now = kxp_now();
	ct = bpf_map_lookup_elem(&kxp_ct4, &fk);
	if (ct && p->proto != IPPROTO_UDP && !(svc->flags & KXP_SVC_F_LBSR) && !kxp_ct_expired(ct, p->proto, now) &&
	    !(syn && (ct->flags & KXP_CT_F_CLOSING))) {
		d->fe_id = ct->fe_id;
		goto hit;
	}

	src = kxp_src_class(p->saddr, cfg);
	/* E.29-E.32: who would be masqueraded (decided before hairpin, E.30). */
	if (!kxp_fe_external(svc))
		d->snat = (cfg->flags & KXP_CFG_F_MASQ_ALL) || (cfg->n_cluster && src != KXP_SRC_POD);
	else if (svc->flags & (KXP_SVC_F_SPLIT | KXP_SVC_F_ETP_LOCAL))
		d->snat = src == KXP_SRC_NODE;
	else
		d->snat = 1;

	if (svc->flags & KXP_SVC_F_LBSR) {
		struct kxp_lbsr_key lk = { .prefixlen = 64, .fe_id = svc->fe_id, .addr = p->saddr };

		if (!bpf_map_lookup_elem(&kxp_lbsr4, &lk)) {
			kxp_dec_set(d, KXP_V_DROP, KXP_R_LBSR_DENY);
			return;
		}
	}

	/* eTP=Local: pods and the node use the cluster-wide set (J). */
	set = svc;
	if ((svc->flags & KXP_SVC_F_SPLIT) && src != KXP_SRC_EXTERNAL) {
		k.scope = KXP_SCOPE_INTERNAL;
		set = bpf_map_lookup_elem(&kxp_svc4, &k);
		if (!set) {
			kxp_dec_set(d, KXP_V_DROP, KXP_R_NO_BACKEND);
			return;
		}
		d->fe_id = set->fe_id; /* counters and ct follow the entry that decides */
	}

	/* An existing flow keeps its backend whatever the set is now (K.44),
	 * except that a SYN on a closing entry is a new connection reusing the
	 * port and is balanced anew, and a UDP flow whose backend left the set
	 * moves to a serving one (I.41, lib/ct.h). */
	if (ct && !kxp_ct_expired(ct, p->proto, now) && !(syn && (ct->flags & KXP_CT_F_CLOSING)) &&
	    !kxp_ct_udp_stale(ct, set->sp_id, set->count, p->proto)) {
hit:
		d->nat = ct->nat;
		d->be_addr = ct->nat.daddr;
		d->be_port = ct->nat.dport;
		d->snat = !!(ct->flags & KXP_CT_F_SNAT);
		d->be_local = !!(ct->flags & KXP_CT_F_LOCAL_BE);
		kxp_dec_set(d, KXP_V_FORWARD, KXP_R_CT_HIT);
		kxp_ct_touch(ct, p, KXP_DIR_FWD, now);
		return;
	}
	d->replace = ct != NULL;

	if (!set->count) {
		if (set->flags & KXP_SVC_F_REJECT)
			kxp_dec_set(d, KXP_V_REJECT, KXP_R_NO_ENDPOINTS);
		else
			kxp_dec_set(d, KXP_V_DROP, KXP_R_POLICY_DROP);
		return;
	}
	/* Only a SYN opens a TCP flow: mid-stream packets of unknown flows
	 * (from before kxp, or after a ct eviction) are never balanced anew
	 * (decided before selection: no rr step, no affinity entry for them).
	 * They pass untouched: a connection kube-proxy translated before kxp
	 * was attached keeps going through netfilter's conntrack NAT, so
	 * replacing kube-proxy cuts no established connection. */
	if (p->proto == IPPROTO_TCP && !syn) {
		kxp_dec_set(d, KXP_V_PASS, KXP_R_CT_MISS);
		return;
	}
	if (kxp_lb_pick(set, &fk, p->saddr, d)) {
		kxp_dec_set(d, KXP_V_DROP, KXP_R_NO_BACKEND);
		return;
	}
	if (d->be_addr == p->saddr) {
		d->snat = 1; /* hairpin (E.30) */
	} else if (d->snat) {
		/* A backend on a node address (host network) is delivered
		 * locally, where kube-proxy's masquerade (postrouting) never
		 * applies; its replies leave through TC egress. */
		struct kxp_nodeip *n = bpf_map_lookup_elem(&kxp_nodeip4, &d->be_addr);

		if (n && (n->flags & KXP_NODEIP_F_LOCAL))
			d->snat = 0;
	}
	/* A new SCTP port would need a CRC32c over the whole packet. */
	if (p->proto == IPPROTO_SCTP && d->be_port != p->dport) {
		kxp_dec_set(d, KXP_V_PASS, KXP_R_UNKNOWN_PROTO);
		return;
	}

	d->nat.saddr = p->saddr;
	d->nat.daddr = d->be_addr;
	d->nat.sport = p->sport;
	d->nat.dport = d->be_port;
	d->fe_kind = svc->kind;
	d->new_flow = 1;
	kxp_dec_set(d, KXP_V_FORWARD, KXP_R_OK);
}

/* A new flow decided by kxp_lb_decide: masquerade address and port, then the
 * two ct entries. Its own function, called from the entry program and not
 * from kxp_lb_decide, so the deepest call chain (entry -> commit -> the SNAT
 * search's bpf_loop callback) stays within the 512-byte stack that 6.1
 * counts over bpf-to-bpf calls and callbacks together. ctx and ifindex (the
 * ingress device) serve the FIB lookup of the SNAT address. */
static __noinline void kxp_lb_commit(void *ctx, __u32 ifindex, const struct kxp_pkt *p, struct kxp_dec *d,
				     const struct kxp_config *cfg)
{
	struct kxp_ct_val nv = {}, rv;
	__u64 now = d->now;
	int ret;

	nv.fe_id = d->fe_id;
	nv.kind = d->fe_kind;
	nv.created = now;
	nv.last_seen = now;
	if (d->snat) {
		d->nat.saddr = kxp_snat_addr(ctx, ifindex, cfg, p->saddr, d->be_addr);
		if (!d->nat.saddr) {
			kxp_dec_set(d, KXP_V_DROP, KXP_R_SNAT_FAIL);
			return;
		}
		if (kxp_trace_mode) {
			/* trace allocates nothing: show the first candidate */
			d->nat.sport = bpf_htons(kxp_snat_first(p, cfg));
			return;
		}
		nv.flags = KXP_CT_F_SNAT | (d->be_local ? KXP_CT_F_LOCAL_BE : 0);
		kxp_ct_reverse(p, &nv, &rv);
		ret = kxp_snat_claim(p, cfg, &d->nat, &rv);
		if (ret) {
			kxp_dec_set(d, KXP_V_DROP, ret == KXP_SNAT_CT_FULL ? KXP_R_CT_FULL : KXP_R_SNAT_FAIL);
			return;
		}
	}
	if (kxp_trace_mode)
		return;
	nv.nat = d->nat;
	ret = kxp_ct_create(p, &nv, !d->snat, d->replace);
	if (ret < 0) {
		if (d->snat)
			kxp_snat_release(&d->nat, p->proto);
		kxp_dec_set(d, KXP_V_DROP, KXP_R_CT_FULL);
		return;
	}
	if (ret == 1) {
		/* another CPU created this flow first: follow its choice */
		if (d->snat && (nv.nat.sport != d->nat.sport || nv.nat.saddr != d->nat.saddr ||
				nv.nat.daddr != d->nat.daddr || nv.nat.dport != d->nat.dport))
			kxp_snat_release(&d->nat, p->proto);
		d->nat = nv.nat;
		d->backend_id = 0;
		d->be_addr = nv.nat.daddr;
		d->be_port = nv.nat.dport;
		d->snat = !!(nv.flags & KXP_CT_F_SNAT);
		d->be_local = !!(nv.flags & KXP_CT_F_LOCAL_BE);
		d->reason = KXP_R_CT_HIT;
	}
}

/* Can a packet at XDP or TC ingress be the reply of a masqueraded flow, the
 * only replies translated there (lib/ct.h)? Those are addressed to the SNAT
 * address, which kxp_config names (the model writes the node's primary
 * address; 0 = the FIB's choice, any node address), come from a backend's
 * port (kxp_hint), and in XDP arrive on a SNAT port (SCTP keeps the
 * client's). Everything else skips the REPLY lookup, whose miss on a cold
 * hash bucket is most of what kxp costs a packet it does not translate. A
 * reply of another flow then takes the frontend decision, which passes it
 * (its destination is the client, no frontend) as REPLY_LATER would; TC
 * egress translates it. TC ingress keeps looking up replies outside the port
 * range: flows masqueraded before the range changed still come back there. */
static __always_inline bool kxp_lb_snat_port(const struct kxp_pkt *p, const struct kxp_config *cfg, __u8 stage)
{
	__u32 min, n, port;

	if (stage != KXP_STAGE_XDP || p->proto == IPPROTO_SCTP)
		return true;
	kxp_snat_range(p, cfg, &min, &n);
	port = bpf_ntohs(p->dport);
	return port >= min && port - min < n;
}

static __always_inline bool kxp_lb_may_reply(const struct kxp_pkt *p, const struct kxp_config *cfg, __u8 stage)
{
	if ((cfg->snat_addr && p->daddr != cfg->snat_addr) || !kxp_hint_be_port(cfg, p->sport))
		return false;
	return kxp_lb_snat_port(p, cfg, stage);
}

/* The reply check of XDP and TC ingress in a frame of its own: its key and
 * branches end there, so the decision after it is verified once, not once
 * per way through it (inlined, it doubled the objects' verification time). */
static __noinline int kxp_lb_reply(const struct kxp_pkt *p, struct kxp_dec *d, const struct kxp_config *cfg,
				   __u8 stage)
{
	if (!kxp_lb_may_reply(p, cfg, stage))
		return KXP_REPLY_NONE;
	return kxp_ct_reply(p, d, stage);
}

/* TC egress for a parsed packet: the reply of a flow translated without
 * masquerade (lib/ct.h), looked up only for packets from a backend port. */
static __always_inline int kxp_lb_egress(const struct kxp_pkt *p, struct kxp_dec *d)
{
	struct kxp_config *cfg;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&kxp_config, &zero);
	if (cfg && !kxp_hint_be_port(cfg, p->sport))
		return KXP_REPLY_NONE;
	return kxp_ct_reply(p, d, KXP_STAGE_TC_EGRESS);
}

/* XDP and TC ingress for a parsed packet: a masqueraded flow's reply, else
 * the frontend decision and, for a new flow, its commit (one config lookup
 * and one clock read for all). */
static __always_inline void kxp_lb_ingress(void *ctx, __u32 ifindex, const struct kxp_pkt *p, struct kxp_dec *d,
					   __u8 stage)
{
	struct kxp_config *cfg;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&kxp_config, &zero);
	if (!cfg)
		return;
	if (kxp_lb_reply(p, d, cfg, stage) != KXP_REPLY_NONE)
		return;
	kxp_lb_decide(p, d, cfg);
	if (d->new_flow)
		kxp_lb_commit(ctx, ifindex, p, d, cfg);
}

#endif
