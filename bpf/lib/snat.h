/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Masquerade (SNAT): the source address and the port allocator.
 *
 * Address: kxp_config.snat_addr when set (the model sets the node's primary
 * address, so every backend, local or remote, sees that one), else the
 * source the kernel's FIB picks for the route toward the backend
 * (bpf_fib_lookup with BPF_FIB_LOOKUP_SRC), i.e. the egress interface
 * address as kube-proxy's `masquerade` would pick (E.33). None -> SNAT_FAIL.
 *
 * Ports: kxp_config.snat_port_min..max (0/0 -> KXP_SNAT_PORT_MIN_DEF..MAX_DEF,
 * 1024-29999: clear of the NodePort range 30000-32767 and of the host's
 * ephemeral range 32768-60999, so a masqueraded reply never matches one of
 * the node's own connections). The claim is the flow's REPLY entry in
 * kxp_ct4 itself, keyed {backend, SNAT address, backend port, SNAT port},
 * inserted with BPF_NOEXIST before the FWD entry, so two flows never share a
 * reply tuple, a masqueraded flow costs the same two inserts as any other,
 * and the range is per backend address:port (28976 concurrent flows each).
 * The first candidate is a hash of the client's tuple (deterministic, shown
 * by `kxp trace`); on a collision up to KXP_SNAT_TRIES (32) candidates are
 * tried, random ones (every port in turn, once, when the range is that
 * small). A taken candidate is taken over when its flow is:
 *  - gone: its REPLY entry expired and its FWD entry is gone or expired
 *    too (a client that only sends keeps the port, see kxp_snat_reusable);
 *  - closed: its flow saw an RST, or a FIN each way, the client's first
 *    (FIN_ORIG on the FWD entry, FIN_REPLY without CLOSE_FIRST on the
 *    REPLY entry; both read here only, never per packet), and the last of them
 *    passed KXP_SNAT_CLOSED_NS (250 ms, why below) ago. The TIME_WAIT is
 *    then the client's, on its own tuple; the backend holds nothing on the
 *    SNAT tuple once the final ACK reached it;
 *  - closing: a FIN or RST seen (CLOSING) and the flow idle for
 *    KXP_SNAT_REUSE_NS. A half-closed flow (one FIN) may still carry data
 *    the other way, and a backend that closed first keeps TIME_WAIT on the
 *    SNAT tuple, so only this rule frees their ports.
 * A closed or closing flow taken over loses its ct entries with its claim,
 * so no late segment of it is translated into the new flow. Failures drop
 * the packet (SNAT_FAIL, kxp_stats.snat_fail): no flow is ever
 * half-translated. SCTP flows keep the client's port (one candidate): kxp
 * never rewrites SCTP ports, whose CRC32c it does not recompute. */
#ifndef KXP_BPF_SNAT_H
#define KXP_BPF_SNAT_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/ct.h"

#ifndef AF_INET
#define AF_INET 2
#endif

/* Enough that a range 3/4 full still fails a new flow once in ~10^4; a
 * free candidate costs one insert whatever the bound. */
#define KXP_SNAT_TRIES 32
/* The bound of objects built without bpf_loop (kernels before 5.17). */
#define KXP_SNAT_TRIES_NOLOOP 8
/* A CLOSING (FIN/RST) flow idle this long releases its port to a new flow. */
#define KXP_SNAT_REUSE_NS (2 * KXP_NSEC)
/* A closed flow (RST, or a FIN each way, the client's first) releases its
 * port this long after its last FIN/RST. Why a guard at all: when the client closes first, its final
 * ACK crosses the node one client round trip after the backend's FIN; taken
 * over before that, the ACK would find no entry, the backend would stay in
 * LAST_ACK on this very tuple and answer the new flow's SYN with a
 * challenge ACK (the new connection then waits for a SYN retransmit, 1 s). */
#define KXP_SNAT_CLOSED_NS (KXP_NSEC / 4)

static __always_inline __be32 kxp_snat_addr(void *ctx, __u32 ifindex, const struct kxp_config *cfg, __be32 client,
					    __be32 backend)
{
	struct bpf_fib_lookup f = {};

	if (cfg->snat_addr)
		return cfg->snat_addr;
	if (!KXP_HAS(FIB_SRC)) /* the kernel cannot say which source it would pick */
		return 0;
	f.family = AF_INET;
	f.ifindex = ifindex;
	f.ipv4_src = client;
	f.ipv4_dst = backend;
	if (bpf_fib_lookup(ctx, &f, sizeof(f), BPF_FIB_LOOKUP_SRC | BPF_FIB_LOOKUP_SKIP_NEIGH) !=
	    BPF_FIB_LKUP_RET_SUCCESS)
		return 0;
	return f.ipv4_src;
}

/* SCTP keeps the client's port: a new port would need a CRC32c recompute,
 * and the address change alone leaves the CRC valid. */
static __always_inline void kxp_snat_range(const struct kxp_pkt *p, const struct kxp_config *cfg, __u32 *min,
					   __u32 *n)
{
	__u32 lo = cfg->snat_port_min, hi = cfg->snat_port_max;

	if (p->proto == IPPROTO_SCTP) {
		*min = bpf_ntohs(p->sport);
		*n = 1;
		return;
	}
	if (!lo || hi < lo) {
		lo = KXP_SNAT_PORT_MIN_DEF;
		hi = KXP_SNAT_PORT_MAX_DEF;
	}
	*min = lo;
	*n = hi - lo + 1;
}

/* Murmur3's finaliser over the client's tuple: spreads neighbouring client
 * ports over the whole range. */
static __always_inline __u32 kxp_snat_hash(const struct kxp_pkt *p)
{
	__u32 h = p->saddr ^ (p->daddr * 0x9e3779b1u) ^ (((__u32)p->sport << 16) | p->dport) ^ p->proto;

	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* The allocator's first candidate (host order); what `kxp trace` shows. */
static __always_inline __u16 kxp_snat_first(const struct kxp_pkt *p, const struct kxp_config *cfg)
{
	__u32 min, n;

	kxp_snat_range(p, cfg, &min, &n);
	return (__u16)(min + kxp_snat_hash(p) % n);
}

/* The FWD entry of the flow whose REPLY entry ct sits at claim key k, or
 * NULL. One whose translation names another port or backend is not this
 * flow's: its client has opened a new flow on the same tuple since. */
static __always_inline struct kxp_ct_val *kxp_snat_fwd(const struct kxp_flow4 *k, const struct kxp_ct_val *ct,
							struct kxp_flow4 *fk)
{
	struct kxp_ct_val *fwd;

	kxp_ct_other_key(ct, k->proto, KXP_DIR_REPLY, fk);
	fwd = bpf_map_lookup_elem(&kxp_ct4, fk);
	if (!fwd || fwd->nat.sport != k->dport || fwd->nat.daddr != k->saddr || fwd->nat.dport != k->sport)
		return NULL;
	return fwd;
}

/* May the flow holding claim k (its REPLY entry ct) give its port to a new
 * flow? Reads the FWD entry (collision path only) and, when it says yes,
 * deletes it (the caller replaces the REPLY entry): no late segment of the
 * old flow may be translated into the new one.
 *  - expired: unless the FWD entry is live. A client that only sends (UDP:
 *    syslog, metrics) keeps its FWD entry fresh and never touches the REPLY
 *    entry; its port stays its own, or its next packet would reach the
 *    backend as the new flow's.
 *  - live: only closed or closing flows, by the rules at the top. */
static __always_inline bool kxp_snat_reusable(const struct kxp_flow4 *k, const struct kxp_ct_val *ct, __u64 now)
{
	struct kxp_flow4 fk;
	struct kxp_ct_val *fwd;
	__u64 last = ct->last_seen;
	__u16 flags = ct->flags;

	fwd = kxp_snat_fwd(k, ct, &fk);
	if (kxp_ct_expired(ct, k->proto, now)) {
		if (fwd && !kxp_ct_expired(fwd, k->proto, now))
			return false;
		goto reuse;
	}
	if (!(flags & KXP_CT_F_CLOSING))
		return false;
	if (fwd) {
		flags |= fwd->flags;
		if (fwd->last_seen > last)
			last = fwd->last_seen;
	}
	/* closed: RST, or a FIN each way with the client's first (the backend
	 * closed first keeps TIME_WAIT on this very tuple: a new SYN would
	 * meet it; so would a simultaneous close); else the CLOSING idle rule */
	if ((flags & KXP_CT_F_RST) ||
	    ((flags & (KXP_CT_F_FIN_ORIG | KXP_CT_F_FIN_REPLY)) == (KXP_CT_F_FIN_ORIG | KXP_CT_F_FIN_REPLY) &&
	     !(ct->flags & KXP_CT_F_CLOSE_FIRST))) {
		if (now < last + KXP_SNAT_CLOSED_NS)
			return false;
	} else if (now < last + KXP_SNAT_REUSE_NS) {
		return false;
	}
reuse:
	if (fwd)
		bpf_map_delete_elem(&kxp_ct4, &fk);
	return true;
}

/* The collision path, run by bpf_loop(): the verifier checks its body once
 * instead of once per try, which is what lets the bound be 32. */
struct kxp_snat_search {
	struct kxp_flow4 k;   /* the candidate claim: the REPLY key (dport = the SNAT port) */
	struct kxp_ct_val v;  /* our REPLY entry (last_seen = now) */
	__u32 min, n, off;
	__u8 claimed;
};

/* Candidate i (0: the first, whose insert has just failed). Returns 1 (stop)
 * once claimed. */
static long kxp_snat_try(__u32 i, void *arg)
{
	struct kxp_snat_search *s = arg;
	__u64 now = s->v.last_seen;
	struct kxp_ct_val *old;

	if (i) {
		/* next: random (fully-random, as kube-proxy's masquerade),
		 * or every port in turn when the range is that small */
		s->off = s->n <= KXP_SNAT_TRIES ? (s->off + 1) % s->n : bpf_get_prandom_u32() % s->n;
		s->k.dport = bpf_htons((__u16)(s->min + s->off));
		if (!bpf_map_update_elem(&kxp_ct4, &s->k, &s->v, BPF_NOEXIST))
			goto claimed;
	}
	old = bpf_map_lookup_elem(&kxp_ct4, &s->k);
	if (!old)
		return 0; /* evicted meanwhile: the next candidate */
	/* the same client flow again (a SYN reusing its closing flow): the
	 * entry starts over as ours */
	if (old->nat.saddr == s->v.nat.saddr && old->nat.daddr == s->v.nat.daddr &&
	    old->nat.sport == s->v.nat.sport && old->nat.dport == s->v.nat.dport) {
		*old = s->v;
		goto claimed;
	}
	if (!kxp_snat_reusable(&s->k, old, now))
		return 0;
	/* free it; the NOEXIST insert decides between racing CPUs */
	bpf_map_delete_elem(&kxp_ct4, &s->k);
	if (bpf_map_update_elem(&kxp_ct4, &s->k, &s->v, BPF_NOEXIST))
		return 0;
claimed:
	s->claimed = 1;
	return 1;
}

/* An insert that fails for another reason than an existing key (-EEXIST):
 * kxp_ct4 has no room (-E2BIG). The error is read as an int: kernels before
 * 6.4 call the map's update op directly and return its int in the low half
 * of r0 (-7 read as a long is 4294967289 there). */
#define KXP_EEXIST 17
#define KXP_SNAT_CT_FULL (-2)

/* Claim a port for nat = {snat addr, backend, ?, backend port} by writing the
 * flow's REPLY entry rev (nat = {frontend, client}) under a free port; fills
 * nat->sport. Returns 0, -1 when every candidate is taken, or
 * KXP_SNAT_CT_FULL when kxp_ct4 has no room (no search then). The first
 * candidate's insert is all a flow costs when its port is free. */
static __always_inline int kxp_snat_claim(const struct kxp_pkt *p, const struct kxp_config *cfg,
					  struct kxp_nat4 *nat, const struct kxp_ct_val *rev)
{
	struct kxp_snat_search s = {
		.k = {
			.saddr = nat->daddr,
			.daddr = nat->saddr,
			.sport = nat->dport,
			.proto = p->proto,
			.dir = KXP_DIR_REPLY,
		},
		.v = *rev,
	};
	int err;

	kxp_snat_range(p, cfg, &s.min, &s.n);
	s.off = kxp_snat_hash(p) % s.n;
	s.k.dport = bpf_htons((__u16)(s.min + s.off));
	err = bpf_map_update_elem(&kxp_ct4, &s.k, &s.v, BPF_NOEXIST);
	if (err && err != -KXP_EEXIST)
		return KXP_SNAT_CT_FULL;
	if (err) {
#ifndef KXP_NO_BPF_LOOP
		bpf_loop(s.n < KXP_SNAT_TRIES ? s.n : KXP_SNAT_TRIES, kxp_snat_try, &s, 0);
#else
		/* before bpf_loop (5.17): a bounded loop, fewer tries, each
		 * one verified on its own */
		for (__u32 i = 0; i < KXP_SNAT_TRIES_NOLOOP && i < s.n; i++)
			if (kxp_snat_try(i, &s))
				break;
#endif
		if (!s.claimed)
			return -1;
	}
	nat->sport = s.k.dport;
	return 0;
}

/* Give a claim back (the flow was created by another CPU first). */
static __always_inline void kxp_snat_release(const struct kxp_nat4 *nat, __u8 proto)
{
	struct kxp_flow4 k = {
		.saddr = nat->daddr,
		.daddr = nat->saddr,
		.sport = nat->dport,
		.dport = nat->sport,
		.proto = proto,
		.dir = KXP_DIR_REPLY,
	};

	bpf_map_delete_elem(&kxp_ct4, &k);
}

#endif
