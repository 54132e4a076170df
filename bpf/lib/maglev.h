/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Maglev lookup: a fixed-seed hash of the pre-NAT 5-tuple indexes the set's
 * table (built in userspace, userspace/lb/maglev.c), so every node holding
 * the same backends picks the same backend for the same flow. */
#ifndef KXP_BPF_MAGLEV_H
#define KXP_BPF_MAGLEV_H

#include "lib/maps.h"

/* Fixed, never per boot: two nodes must agree. */
#define KXP_FLOW_SEED 0x6b78706du /* "kxpm" */

static __always_inline __u32 kxp_mix32(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* Hash of the tuple as the client sent it (never the translated one). */
static __always_inline __u32 kxp_flow_hash(const struct kxp_flow4 *t)
{
	__u32 h = KXP_FLOW_SEED;

	h = kxp_mix32(h ^ t->saddr);
	h = kxp_mix32(h ^ t->daddr);
	h = kxp_mix32(h ^ (((__u32)t->sport << 16) | t->dport));
	return kxp_mix32(h ^ t->proto);
}

/* Backend id for the flow from the set's table; -1 when the set has no table
 * (not written yet or writing failed: the caller falls back to random). */
static __always_inline int kxp_maglev_pick(__u32 sp_id, const struct kxp_flow4 *t, __u32 m, __u32 *id)
{
	struct kxp_mg_pair *v;
	__u32 idx, pair;
	void *table;

	if (!m)
		return -1;
	table = bpf_map_lookup_elem(&kxp_maglev, &sp_id);
	if (!table)
		return -1;
	idx = kxp_flow_hash(t) % m;
	pair = idx / 2;
	v = bpf_map_lookup_elem(table, &pair);
	if (!v)
		return -1;
	*id = v->id[idx & 1];
	return *id ? 0 : -1;
}

#endif
