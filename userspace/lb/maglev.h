/* Maglev lookup tables (Eisenbud et al., NSDI 2016): the permutation and
 * population of the paper, deterministic across nodes. Pure: no I/O. */
#ifndef KXP_LB_MAGLEV_H
#define KXP_LB_MAGLEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kxp_mg_backend {
	uint32_t addr;  /* network order */
	uint16_t port;  /* host order */
	uint32_t value; /* what the table stores for this backend (a backend id) */
};

/* Is m a usable table size: prime and within KXP_MAGLEV_M_MIN..MAX? */
bool kxp_maglev_m_ok(uint32_t m);

/* Fill table[0..m-1] for n backends (1 <= n <= m). The input order does not
 * matter: backends are taken in (address, port) order, each one's preference
 * list is offset + j * skip (mod m) with offset and skip from two fixed-seed
 * hashes of its address:port, and backends take turns claiming their next
 * free preferred entry until the table is full, so each holds floor(m/n) or
 * ceil(m/n) entries. Duplicates (same address:port) and an m that fails
 * kxp_maglev_m_ok are errors.
 * Returns 0, -EINVAL or -ENOMEM. */
int kxp_maglev_build(const struct kxp_mg_backend *be, size_t n, uint32_t m, uint32_t *table);

#endif
