/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Connection tracking for translated flows: two kxp_ct4 entries per flow (FWD
 * keyed as the client sends, REPLY keyed as the backend answers), lifetimes,
 * and the refresh rules. Trace copies read entries but never write them.
 * kxp_ct4 is a plain hash, not an LRU: a full table refuses a new flow
 * (KXP_R_CT_FULL) rather than evict a live one, and the userspace collector
 * (userspace/dataplane/ctgc.c) deletes a flow's entries once both expired.
 * Its preallocated inserts cost ~230-330 ns less per new flow than the LRU's
 * (pktbench, docs/benchmarks.md).
 *
 * Lifetimes, measured from last_seen (an expired entry is a miss):
 *   TCP/SCTP before any reply      60 s
 *   TCP/SCTP after a reply          8 h
 *   TCP after FIN or RST (CLOSING) 10 s (both entries)
 *   UDP                           120 s
 * last_seen is written at most once a second per entry, to limit writes to
 * shared cache lines. A UDP entry whose backend left its set is a miss too
 * (kxp_ct_udp_stale). SCTP chunks are not inspected (no SHUTDOWN/ABORT). */
#ifndef KXP_BPF_CT_H
#define KXP_BPF_CT_H

#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/stats.h"

#define KXP_NSEC 1000000000ull
#define KXP_CT_NEW_NS (KXP_CT_NEW_S * KXP_NSEC)
#define KXP_CT_EST_NS (KXP_CT_EST_S * KXP_NSEC)
#define KXP_CT_CLOSING_NS (KXP_CT_CLOSING_S * KXP_NSEC)
#define KXP_CT_UDP_NS (KXP_CT_UDP_S * KXP_NSEC)
#define KXP_CT_TOUCH_NS KXP_NSEC

/* Packet-path clock: CLOCK_MONOTONIC at tick resolution. Every lifetime here
 * is seconds long and last_seen is written at most once a second, so a tick
 * is precision enough; reading the clock source on every packet (the TSC,
 * fenced, in a VM) cost ~20 ns of a ~90 ns established-flow packet. Same
 * clock base as bpf_ktime_get_ns(), so entries and `kxp list` agree. */
static __always_inline __u64 kxp_now(void)
{
	if (KXP_HAS(COARSE_CLOCK))
		return bpf_ktime_get_coarse_ns();
	return bpf_ktime_get_ns(); /* kernels before 5.11 */
}

static __always_inline bool kxp_ct_expired(const struct kxp_ct_val *v, __u8 proto, __u64 now)
{
	__u64 life;

	if (v->flags & KXP_CT_F_CLOSING)
		life = KXP_CT_CLOSING_NS;
	else if (proto == IPPROTO_UDP)
		life = KXP_CT_UDP_NS;
	else if (v->flags & KXP_CT_F_SEEN_REPLY)
		life = KXP_CT_EST_NS;
	else
		life = KXP_CT_NEW_NS;
	/* last_seen may be a little ahead of `now` when another CPU touched it. */
	return now > v->last_seen && now - v->last_seen > life;
}

/* The other direction's key is the swapped translation of this entry:
 * FWD {c, fe, cp, fep} -> nat {c, b, cp, bp}  => REPLY key {b, c, bp, cp};
 * REPLY {b, c, bp, cp} -> nat {fe, c, fep, cp} => FWD key {c, fe, cp, fep}. */
static __always_inline void kxp_ct_other_key(const struct kxp_ct_val *v, __u8 proto, __u8 dir,
					     struct kxp_flow4 *k)
{
	k->saddr = v->nat.daddr;
	k->daddr = v->nat.saddr;
	k->sport = v->nat.dport;
	k->dport = v->nat.sport;
	k->proto = proto;
	k->dir = dir == KXP_DIR_FWD ? KXP_DIR_REPLY : KXP_DIR_FWD;
	k->pad = 0;
}

/* Refresh an entry a packet used: last_seen, and the flags that change its
 * lifetime (first reply, FIN/RST), which are mirrored onto the other entry
 * so both directions expire together. The extra lookup happens only when a
 * lifetime flag changes, i.e. twice per flow. FIN_ORIG/FIN_REPLY/RST and
 * CLOSE_FIRST (who closed first: CLOSING was not set yet) stay on this
 * packet's own entry (no lookup): only the SNAT allocator needs both,
 * and it reads both entries on its collision path. Every flag change writes
 * last_seen, so the newer last_seen of the two entries is the time of the
 * last FIN/RST once the flow closed. */
static __always_inline void kxp_ct_touch(struct kxp_ct_val *v, const struct kxp_pkt *p, __u8 dir, __u64 now)
{
	struct kxp_flow4 ok = {};
	struct kxp_ct_val *o;
	__u16 add = 0;

	if (kxp_trace_mode)
		return;
	if (dir == KXP_DIR_REPLY && !(v->flags & KXP_CT_F_SEEN_REPLY))
		add |= KXP_CT_F_SEEN_REPLY;
	if (p->proto == IPPROTO_TCP && (p->tcp_flags & (KXP_TCP_FIN | KXP_TCP_RST))) {
		__u16 own = 0;

		if (p->tcp_flags & KXP_TCP_RST)
			own |= KXP_CT_F_RST;
		if (p->tcp_flags & KXP_TCP_FIN)
			own |= dir == KXP_DIR_FWD ? KXP_CT_F_FIN_ORIG : KXP_CT_F_FIN_REPLY;
		if (!(v->flags & KXP_CT_F_CLOSING)) {
			add |= KXP_CT_F_CLOSING;
			own |= KXP_CT_F_CLOSE_FIRST;
		}
		own &= ~v->flags;
		if (own) {
			v->flags |= own;
			v->last_seen = now;
		}
	}
	if (now > v->last_seen + KXP_CT_TOUCH_NS || add)
		v->last_seen = now;
	if (!add)
		return;
	v->flags |= add;
	kxp_ct_other_key(v, p->proto, dir, &ok);
	o = bpf_map_lookup_elem(&kxp_ct4, &ok);
	if (o) {
		o->flags |= add;
		o->last_seen = now;
	}
}

/* UDP flows follow endpoint changes (semantics I.41): an entry whose backend
 * is no longer in the set its frontend uses now is stale, and the flow is
 * balanced again, lazily, by its next packet. One membership lookup for UDP
 * packets only; TCP and SCTP flows are never re-balanced (I.42). While the
 * set is empty the entry is kept (kube-proxy cleans up only once a serving
 * endpoint exists). */
static __always_inline bool kxp_ct_udp_stale(const struct kxp_ct_val *v, __u32 sp_id, __u16 count, __u8 proto)
{
	struct kxp_member_key mk = {
		.sp_id = sp_id,
		.addr = v->nat.daddr,
		.port = v->nat.dport,
		.proto = proto,
	};

	if (proto != IPPROTO_UDP || !count)
		return false;
	return !bpf_map_lookup_elem(&kxp_member4, &mk);
}

enum kxp_reply {
	KXP_REPLY_NONE = 0,  /* not a reply of a translated flow */
	KXP_REPLY_NAT = 1,   /* d holds the reverse translation */
	KXP_REPLY_LATER = 2, /* a reply, left for TC egress (see below) */
};

/* Is this packet a reply of a translated flow? Fills d with the reverse
 * translation (un-SNAT and un-DNAT at once: the source back to the frontend,
 * the destination back to the client).
 *  - Masqueraded flows (SNAT) are translated wherever their replies arrive,
 *    XDP included, and forwarded by kxp (lib/fwd.h): addressed to the SNAT
 *    address, the stack would deliver them locally. Neither direction of
 *    such a flow passes the stack.
 *  - Other flows go through the stack both ways: kxp DNATs a request at
 *    ingress, before netfilter, and reverse-translates its replies at TC
 *    egress of the device they leave by, after netfilter (KXP_REPLY_LATER
 *    at XDP and TC ingress). So the node's conntrack sees one consistent
 *    flow, client -> backend and backend -> client; translated at ingress,
 *    a reply (frontend -> client) would be a flow of its own to conntrack,
 *    a SYN-ACK without a SYN, INVALID, and dropped wherever a rule drops
 *    INVALID packets (kube-proxy's KUBE-FORWARD does), and its entries
 *    clash now and then (insert_failed: a dropped packet, a 200 ms stall).
 *    It also keeps a NodePort reply from entering the stack with a local
 *    source address (a martian). TC egress must be attached wherever
 *    replies leave (pod and external devices are). */
static __always_inline int kxp_ct_reply(const struct kxp_pkt *p, struct kxp_dec *d, __u8 stage)
{
	struct kxp_flow4 k = {
		.saddr = p->saddr,
		.daddr = p->daddr,
		.sport = p->sport,
		.dport = p->dport,
		.proto = p->proto,
		.dir = KXP_DIR_REPLY,
	};
	struct kxp_ct_val *v;
	__u64 now;

	v = bpf_map_lookup_elem(&kxp_ct4, &k);
	if (!v)
		return KXP_REPLY_NONE;
	now = kxp_now();
	if (kxp_ct_expired(v, p->proto, now))
		return KXP_REPLY_NONE;
	if (!(v->flags & KXP_CT_F_SNAT) && stage != KXP_STAGE_TC_EGRESS)
		return KXP_REPLY_LATER;
	d->nat = v->nat;
	d->fe_id = v->fe_id;
	d->has_fe = 1;
	d->be_addr = p->saddr;
	d->be_port = p->sport;
	d->snat = !!(v->flags & KXP_CT_F_SNAT);
	d->reply = 1;
	kxp_dec_set(d, KXP_V_FORWARD, KXP_R_REPLY);
	kxp_ct_touch(v, p, KXP_DIR_REPLY, now);
	return KXP_REPLY_NAT;
}

/* The REPLY entry of the new flow fwd describes (packet p): the reverse
 * translation, back to the frontend and the client. */
static __always_inline void kxp_ct_reverse(const struct kxp_pkt *p, const struct kxp_ct_val *fwd,
					   struct kxp_ct_val *rev)
{
	*rev = *fwd;
	rev->nat.saddr = p->daddr;
	rev->nat.daddr = p->saddr;
	rev->nat.sport = p->dport;
	rev->nat.dport = p->sport;
}

/* Record a new flow (never in trace copies). When `replace` is false the FWD
 * entry is claimed with BPF_NOEXIST, so two CPUs racing on the first packets
 * of one flow agree: the loser adopts the winner's choice, returned in `fwd`
 * (return 1), and writes nothing more. Returns 0 when our entries were
 * written, -1 when the table is full (nothing of this flow is left). The
 * REPLY entry follows the FWD entry (no reply can exist before the first
 * packet has been forwarded), except for a masqueraded flow, whose REPLY
 * entry is its SNAT port claim, written first (lib/snat.h): `reply` is
 * false then. */
static __always_inline int kxp_ct_create(const struct kxp_pkt *p, struct kxp_ct_val *fwd, bool reply,
					 bool replace)
{
	struct kxp_flow4 fk = {
		.saddr = p->saddr,
		.daddr = p->daddr,
		.sport = p->sport,
		.dport = p->dport,
		.proto = p->proto,
		.dir = KXP_DIR_FWD,
	};
	struct kxp_flow4 rk = {
		.saddr = fwd->nat.daddr,
		.daddr = fwd->nat.saddr,
		.sport = fwd->nat.dport,
		.dport = fwd->nat.sport,
		.proto = p->proto,
		.dir = KXP_DIR_REPLY,
	};
	struct kxp_ct_val rev, *cur;

	if (bpf_map_update_elem(&kxp_ct4, &fk, fwd, replace ? BPF_ANY : BPF_NOEXIST)) {
		cur = bpf_map_lookup_elem(&kxp_ct4, &fk);
		if (!cur)
			return -1; /* the table is full */
		*fwd = *cur;
		return 1;
	}
	if (reply) {
		kxp_ct_reverse(p, fwd, &rev);
		if (bpf_map_update_elem(&kxp_ct4, &rk, &rev, BPF_ANY)) {
			/* full: a flow without its REPLY entry could not be
			 * translated back, so it is not admitted at all */
			bpf_map_delete_elem(&kxp_ct4, &fk);
			return -1;
		}
	}
	return 0;
}

#endif
