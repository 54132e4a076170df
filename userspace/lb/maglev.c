/* Maglev table builder: the paper's permutation (offset, skip from two
 * independent fixed-seed hashes of address:port) and round-robin population. */
#include "lb/maglev.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <kxp/abi.h>

/* Fixed seeds: every node must compute the same permutations. */
#define SEED_OFFSET 0x9e3779b97f4a7c15ULL
#define SEED_SKIP 0xc2b2ae3d27d4eb4fULL

bool kxp_maglev_m_ok(uint32_t m)
{
	if (m < KXP_MAGLEV_M_MIN || m > KXP_MAGLEV_M_MAX)
		return false;
	if (m % 2 == 0)
		return false;
	for (uint32_t d = 3; d * d <= m; d += 2)
		if (m % d == 0)
			return false;
	return true;
}

/* A 64-bit finaliser (splitmix64) over the seed and the backend's key. */
static uint64_t mix(uint64_t seed, uint64_t key)
{
	uint64_t x = seed ^ (key * 0xbf58476d1ce4e5b9ULL);

	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

struct ent {
	uint64_t key; /* host-order address << 16 | port: the sort order */
	uint32_t value;
	uint32_t next; /* current position in its preference list */
	uint32_t skip;
};

static int ent_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct ent *)a)->key, y = ((const struct ent *)b)->key;

	return x < y ? -1 : x > y;
}

int kxp_maglev_build(const struct kxp_mg_backend *be, size_t n, uint32_t m, uint32_t *table)
{
	struct ent *e;
	uint8_t *taken;
	uint32_t filled = 0;

	if (!n || n > m || !kxp_maglev_m_ok(m))
		return -EINVAL;
	e = calloc(n, sizeof(*e));
	taken = calloc(m, 1);
	if (!e || !taken) {
		free(e);
		free(taken);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		e[i].key = (uint64_t)ntohl(be[i].addr) << 16 | be[i].port;
		e[i].value = be[i].value;
	}
	qsort(e, n, sizeof(*e), ent_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i && e[i].key == e[i - 1].key) {
			free(e);
			free(taken);
			return -EINVAL;
		}
		e[i].next = (uint32_t)(mix(SEED_OFFSET, e[i].key) % m);
		e[i].skip = (uint32_t)(mix(SEED_SKIP, e[i].key) % (m - 1)) + 1;
	}
	/* m is prime, so each preference list visits every entry: the inner
	 * search always ends. */
	for (;;) {
		for (size_t i = 0; i < n; i++) {
			uint32_t c = e[i].next;

			while (taken[c]) {
				c += e[i].skip;
				if (c >= m)
					c -= m;
			}
			taken[c] = 1;
			table[c] = e[i].value;
			c += e[i].skip;
			e[i].next = c >= m ? c - m : c;
			if (++filled == m)
				goto out;
		}
	}
out:
	free(e);
	free(taken);
	return 0;
}
