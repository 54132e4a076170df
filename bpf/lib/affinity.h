/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* sessionAffinity ClientIP (semantics G.36-37): {client, sp_id} remembers the
 * backend of the client's last new connection; it sticks while the entry is
 * younger than the set's timeout and its backend is still in the set. Every
 * new connection that uses or makes the entry restarts the timer. Trace
 * copies read entries but never write them. */
#ifndef KXP_BPF_AFFINITY_H
#define KXP_BPF_AFFINITY_H

#include "lib/maps.h"

/* Is addr:port/proto (a backend address, as ct and affinity store it) one
 * of the set's backends now? Returns its backend id, 0 if not. */
static __always_inline __u32 kxp_lb_member(__u32 sp_id, __be32 addr, __be16 port, __u8 proto)
{
	struct kxp_member_key mk = { .sp_id = sp_id, .addr = addr, .port = port, .proto = proto };
	__u32 *id = bpf_map_lookup_elem(&kxp_member4, &mk);

	return id ? *id : 0;
}

/* The remembered backend id for client, or 0 (none, expired, or no longer
 * in the set). Refreshes the entry it returns. */
static __always_inline __u32 kxp_aff_get(const struct kxp_svc_val *set, __be32 client, __u8 proto, __u64 now)
{
	struct kxp_aff_key k = { .client = client, .sp_id = set->sp_id };
	struct kxp_aff_val *a = bpf_map_lookup_elem(&kxp_affinity4, &k);
	__u32 id;

	if (!a || a->proto != proto)
		return 0;
	if (now > a->last_used && now - a->last_used > (__u64)set->affinity_timeout * 1000000000ull)
		return 0;
	id = kxp_lb_member(set->sp_id, a->addr, a->port, proto);
	if (id && !kxp_trace_mode)
		a->last_used = now;
	return id;
}

static __always_inline void kxp_aff_put(const struct kxp_svc_val *set, __be32 client, __u8 proto, __u32 id,
					__be32 addr, __be16 port, __u64 now)
{
	struct kxp_aff_key k = { .client = client, .sp_id = set->sp_id };
	struct kxp_aff_val v = { .addr = addr, .port = port, .proto = proto, .backend_id = id, .last_used = now };

	if (!kxp_trace_mode)
		bpf_map_update_elem(&kxp_affinity4, &k, &v, BPF_ANY);
}

#endif
