// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The conntrack collector. kxp_ct4 is a plain hash (layout 4): the programs
 * treat an expired entry as a miss but never delete it, so kxp deletes
 * them here, from the agent every KXP_CT_GC_INTERVAL_S and from `kxp sync`
 * and `kxp ct gc`.
 *
 * An entry goes once it and its other direction (kxp_ct_other_key in
 * bpf/lib/ct.h) are expired, or its other direction is gone: a
 * masqueraded flow's REPLY entry is its SNAT port claim, which the programs
 * keep while the FWD entry is live (lib/snat.h), so deleting it earlier
 * would hand the port to another flow. An entry is expired here a second
 * after the programs see it so (their clock is CLOCK_MONOTONIC at tick
 * resolution, and last_seen moves at most once a second). */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include "dataplane/dp_internal.h"

#define GC_GRACE_NS 1000000000ull

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* As kxp_ct_expired (bpf/lib/ct.h), with the grace above. */
static bool gc_expired(const struct kxp_ct_val *v, uint8_t proto, uint64_t now)
{
	uint64_t life;

	if (v->flags & KXP_CT_F_CLOSING)
		life = KXP_CT_CLOSING_S;
	else if (proto == IPPROTO_UDP)
		life = KXP_CT_UDP_S;
	else if (v->flags & KXP_CT_F_SEEN_REPLY)
		life = KXP_CT_EST_S;
	else
		life = KXP_CT_NEW_S;
	return now > v->last_seen && now - v->last_seen > life * 1000000000ull + GC_GRACE_NS;
}

static bool gc_deletable(int fd, const struct kxp_flow4 *k, const struct kxp_ct_val *v, uint64_t now)
{
	struct kxp_flow4 ok = {
		.saddr = v->nat.daddr,
		.daddr = v->nat.saddr,
		.sport = v->nat.dport,
		.dport = v->nat.sport,
		.proto = k->proto,
		.dir = k->dir == KXP_DIR_FWD ? KXP_DIR_REPLY : KXP_DIR_FWD,
	};
	struct kxp_ct_val o;

	if (!gc_expired(v, k->proto, now))
		return false;
	return bpf_map_lookup_elem(fd, &ok, &o) || gc_expired(&o, k->proto, now);
}

struct gc_pass {
	int fd;
	uint64_t now;
	struct kxp_ct_gc_stats *st;
};

/* Delete what a chunk holds of deletable entries (kxp_hash_walk reads
 * the table a bucket at a time, so deleting what it gave keeps it going). */
static int gc_chunk(void *ctx, void *keys_, const void *vals_, uint32_t n)
{
	struct gc_pass *g = ctx;
	struct kxp_flow4 *keys = keys_;
	const struct kxp_ct_val *vals = vals_;
	struct kxp_ct_gc_stats *st = g->st;
	uint32_t nd = 0;

	for (uint32_t i = 0; i < n; i++) {
		st->scanned++;
		if (gc_deletable(g->fd, &keys[i], &vals[i], g->now))
			keys[nd++] = keys[i];
	}
	if (nd) {
		LIBBPF_OPTS(bpf_map_batch_opts, bo);
		__u32 cnt = nd;

		/* in one syscall (~4 us an entry one by one); a key deleted
		 * meanwhile (ENOENT) stops the batch, the rest go one by one */
		if (!bpf_map_delete_batch(g->fd, keys, &cnt, &bo)) {
			st->deleted += cnt;
			return 0;
		}
		if (errno != ENOENT)
			return -errno;
		st->deleted += cnt;
		for (uint32_t i = cnt + 1; i < nd; i++) {
			if (!bpf_map_delete_elem(g->fd, &keys[i]))
				st->deleted++;
			else if (errno != ENOENT)
				return -errno;
		}
	}
	return 0;
}

int kxp_dp_ct_gc(struct kxp_dp *dp, struct kxp_ct_gc_stats *st_out)
{
	struct kxp_ct_gc_stats st_local, *st = st_out ? st_out : &st_local;
	struct gc_pass g = { .fd = kxp_dp_map_fd(dp, KXP_MAP_CT), .now = mono_ns(), .st = st };
	int err;

	memset(st, 0, sizeof(*st));
	if (g.fd < 0)
		return -EINVAL;
	err = kxp_hash_walk(g.fd, sizeof(struct kxp_flow4), sizeof(struct kxp_ct_val), gc_chunk, &g);
	st->ms = (double)(mono_ns() - g.now) / 1e6;
	st->max = (uint64_t)dp->map_max[KXP_MAP_CT];
	return err;
}
