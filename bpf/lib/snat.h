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
 * the node's own connections). The claim is the flow's REPLY tuple {backend,
 * SNAT address, backend port, SNAT port} in kxp_snat4, inserted with
 * BPF_NOEXIST, so two flows never share a reply tuple and the range is per
 * backend address:port (28976 concurrent flows each). The first candidate is
 * a hash of the client's tuple (deterministic, shown by `kxp trace`); on a
 * collision up to KXP_SNAT_TRIES (8) candidates are tried, random ones (every
 * port in turn when the range is that small).
 * A claim whose kxp_ct4 REPLY entry is gone or expired is stale (entries
 * expire with their flow) and is taken over; so is one whose flow closed
 * (FIN/RST) and has been idle for 2 s, together with that flow's ct entries. Failures drop the packet
 * (SNAT_FAIL, kxp_stats.snat_fail): no flow is ever half-translated. SCTP
 * flows keep the client's port (one candidate): kxp never rewrites SCTP
 * ports, whose CRC32c it does not recompute. */
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

#define KXP_SNAT_TRIES 8
/* A claim this young may not have its ct entry yet: never taken over. */
#define KXP_SNAT_YOUNG_NS KXP_NSEC
/* A closed (FIN/RST) flow idle this long releases its port to a new flow. */
#define KXP_SNAT_REUSE_NS (2 * KXP_NSEC)

static __always_inline __be32 kxp_snat_addr(void *ctx, __u32 ifindex, const struct kxp_config *cfg, __be32 client,
					    __be32 backend)
{
	struct bpf_fib_lookup f = {};

	if (cfg->snat_addr)
		return cfg->snat_addr;
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

/* Claim a port for nat = {snat addr, backend, ?, backend port}; fills
 * nat->sport. Returns 0, or -1 when every candidate is taken. */
static __always_inline int kxp_snat_claim(const struct kxp_pkt *p, const struct kxp_config *cfg,
					  struct kxp_nat4 *nat, __u64 now)
{
	struct kxp_flow4 k = {
		.saddr = nat->daddr,
		.daddr = nat->saddr,
		.sport = nat->dport,
		.proto = p->proto,
		.dir = KXP_DIR_REPLY,
	};
	struct kxp_snat_val v = {
		.nat = { .saddr = p->saddr, .daddr = p->daddr, .sport = p->sport, .dport = p->dport },
		.last_seen = now,
	};
	__u32 min, n, off, i;

	kxp_snat_range(p, cfg, &min, &n);
	off = kxp_snat_hash(p) % n;
	for (i = 0; i < KXP_SNAT_TRIES; i++) {
		struct kxp_snat_val *old;
		struct kxp_ct_val *ct;

		k.dport = bpf_htons((__u16)(min + off));
		/* next: random (fully-random, as kube-proxy's masquerade),
		 * or every port in turn when the range is that small */
		off = n <= KXP_SNAT_TRIES ? (off + 1) % n : bpf_get_prandom_u32() % n;
		if (!bpf_map_update_elem(&kxp_snat4, &k, &v, BPF_NOEXIST))
			goto claimed;
		old = bpf_map_lookup_elem(&kxp_snat4, &k);
		if (!old)
			continue; /* evicted meanwhile: the next candidate */
		/* the same client flow again (a SYN reusing a closing flow) */
		if (old->nat.saddr == v.nat.saddr && old->nat.daddr == v.nat.daddr &&
		    old->nat.sport == v.nat.sport && old->nat.dport == v.nat.dport) {
			old->last_seen = now;
			goto claimed;
		}
		if (now < old->last_seen + KXP_SNAT_YOUNG_NS)
			continue;
		ct = bpf_map_lookup_elem(&kxp_ct4, &k);
		if (ct && !kxp_ct_expired(ct, p->proto, now)) {
			struct kxp_flow4 fk;

			/* A closed flow idle for KXP_SNAT_REUSE_NS gives its port
			 * up early (as a TIME_WAIT tuple may be reused): holding
			 * it for the whole closing lifetime would cap masqueraded
			 * connections at range/10 s per backend. Its ct entries go
			 * with it, so no late segment of the old flow is
			 * translated into the new one. */
			if (!(ct->flags & KXP_CT_F_CLOSING) || now < ct->last_seen + KXP_SNAT_REUSE_NS)
				continue;
			kxp_ct_other_key(ct, p->proto, KXP_DIR_REPLY, &fk);
			bpf_map_delete_elem(&kxp_ct4, &fk);
			bpf_map_delete_elem(&kxp_ct4, &k);
		}
		/* stale: free it; the NOEXIST insert decides between racing CPUs */
		bpf_map_delete_elem(&kxp_snat4, &k);
		if (!bpf_map_update_elem(&kxp_snat4, &k, &v, BPF_NOEXIST))
			goto claimed;
	}
	return -1;
claimed:
	nat->sport = k.dport;
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

	bpf_map_delete_elem(&kxp_snat4, &k);
}

#endif
