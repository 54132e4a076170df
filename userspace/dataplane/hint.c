/* kxp_hint: the bitmaps that let the programs skip lookups bound to miss
 * (layout in include/kxp/abi.h). The writer calls kxp_dp_hints_apply before
 * it writes the entries a bitmap covers, so a bit is always set before a
 * program could need it; the matching KXP_HINT_F_* flag in kxp_config.hints
 * (written by the writer after this) tells the programs a bitmap is
 * complete. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "dataplane/dp_internal.h"

static void set_bit(uint64_t *w, uint32_t bit)
{
	w[bit / 64] |= 1ull << (bit % 64);
}

static bool in_cidrs(uint32_t a, const struct kxp_cidr4 *c, uint32_t n)
{
	for (uint32_t i = 0; i < n && i < KXP_MAX_CIDRS; i++)
		if (((a ^ c[i].addr) & c[i].mask) == 0)
			return true;
	return false;
}

/* An instance pinned before kxp_hint existed has flows whose backends may be
 * gone from every set: their replies still come from those ports. */
static int seed_ports_from_ct(struct kxp_dp *dp, uint64_t *w)
{
	int fd = dp->map_fd[KXP_MAP_CT];
	struct kxp_flow4 k, next;
	bool first = true;

	while (!bpf_map_get_next_key(fd, first ? NULL : &k, &next)) {
		if (next.dir == KXP_DIR_REPLY)
			set_bit(w, ntohs(next.sport));
		k = next;
		first = false;
	}
	return errno == ENOENT ? 0 : -errno;
}

static int mirror_load(struct kxp_dp *dp)
{
	int fd = dp->map_fd[KXP_MAP_HINT];

	dp->hint = calloc(KXP_HINT_WORDS, sizeof(*dp->hint));
	if (!dp->hint)
		return -ENOMEM;
	for (uint32_t i = 0; i < KXP_HINT_WORDS; i++)
		if (bpf_map_lookup_elem(fd, &i, &dp->hint[i]))
			return -errno;
	return 0;
}

int kxp_dp_hints_apply(struct kxp_dp *dp, const struct kxp_desired *d, bool full)
{
	int fd = dp->map_fd[KXP_MAP_HINT], err = 0;
	struct kxp_config cur = {};
	uint64_t *w;
	__u32 zero = 0;

	if (fd < 0)
		return -ENOENT;
	if (!dp->hint && (err = mirror_load(dp)))
		goto fail;
	w = malloc(KXP_HINT_WORDS * sizeof(*w));
	if (!w) {
		err = -ENOMEM;
		goto fail;
	}
	memcpy(w, dp->hint, KXP_HINT_WORDS * sizeof(*w));
	/* into what is written, not into the mirror of what the map holds
	 * (seeded there, the bits would never reach the map) */
	if (dp->hint_seed_ct) {
		err = seed_ports_from_ct(dp, w);
		if (err) {
			free(w);
			goto fail;
		}
		dp->hint_seed_ct = false;
	}
	if (full) {
		/* the address words are rebuilt; an address counts as inside the
		 * service CIDRs only if both the configuration in the map and the
		 * one about to be written say so (the programs may read either) */
		memset(w + KXP_HINT_PORT_WORDS, 0, KXP_HINT_ADDR_WORDS * sizeof(*w));
		if (bpf_map_lookup_elem(dp->map_fd[KXP_MAP_CONFIG], &zero, &cur))
			memset(&cur, 0, sizeof(cur));
	}
	for (size_t i = 0; i < d->n_fe; i++) {
		uint32_t a = d->fe[i].addr;

		if (full && in_cidrs(a, d->cfg.service, d->cfg.n_service) && in_cidrs(a, cur.service, cur.n_service))
			continue;
		set_bit(w + KXP_HINT_PORT_WORDS, KXP_HINT_ADDR_BIT(a));
	}
	for (size_t s = 0; s < d->n_sets; s++)
		for (size_t j = 0; j < d->sets[s].n_be; j++)
			set_bit(w, d->sets[s].be[j].port);
	for (uint32_t i = 0; i < KXP_HINT_WORDS; i++) {
		if (w[i] == dp->hint[i])
			continue;
		if (bpf_map_update_elem(fd, &i, &w[i], BPF_ANY)) {
			err = -errno;
			free(w);
			goto fail;
		}
		dp->hint[i] = w[i];
	}
	free(w);
	if (full)
		dp->hints = KXP_HINT_F_PORTS | KXP_HINT_F_ADDRS;
	return 0;
fail:
	/* a bitmap that may lack a bit must not be used, from now on */
	if (!bpf_map_lookup_elem(dp->map_fd[KXP_MAP_CONFIG], &zero, &cur) && cur.hints) {
		cur.hints = 0;
		bpf_map_update_elem(dp->map_fd[KXP_MAP_CONFIG], &zero, &cur, BPF_ANY);
	}
	dp->hints = 0;
	free(dp->hint);
	dp->hint = NULL;
	return err;
}
