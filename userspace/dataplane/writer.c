/* Map writer: turn a struct kxp_desired into map entries, writing only what
 * differs from the maps and in an order that never shows a packet a
 * half-written service. Ids (frontend, service-port set, backend) are dense,
 * start at 1 and are recovered from the maps themselves, so a restarted or
 * second process keeps them stable. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dataplane/dp_internal.h"
#include "lb/maglev.h"
#include "lib/ip.h"

/* ---- a u64-keyed open-addressing hash with inline values ------------------ */

/* Each slot holds its key and value side by side (one cache line for most
 * lookups, where separate key/value/used arrays cost three misses; the
 * mirror of 10,000 Services holds ~400,000 entries). A free slot's key is
 * HT_FREE; the one key equal to HT_FREE (never built by this writer, but a
 * map could hold it) lives in an extra slot at index cap. Values are aligned
 * as their size requires (4 or 8), so callers may use them in place.
 * Capacities are not powers of two (the home slot is the hash scaled to
 * cap): tables grow by half up to 3/4 full, so they average ~60% full where
 * doubling at half full left them ~37% full (the mirror is most of the
 * agent's memory). */
struct htab {
	uint8_t *ent;        /* cap + 1 slots of stride bytes: u64 key, value */
	size_t cap, n, vsize, stride;
	bool has_free_key;   /* slot cap is used */
};

#define HT_FREE UINT64_MAX

/* Grow past 3/4 full, by half; a reserved size leaves room to 3/5 full. */
#define HT_FULL(n, cap) ((n) * 4 > (cap) * 3)
#define HT_MIN_CAP 16

static uint64_t hash64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static inline size_t ht_home(const struct htab *h, uint64_t k)
{
	return (size_t)(((unsigned __int128)hash64(k) * h->cap) >> 64);
}

static inline size_t ht_next(const struct htab *h, size_t j)
{
	return j + 1 == h->cap ? 0 : j + 1;
}

static inline uint64_t ht_key(const struct htab *h, size_t i)
{
	uint64_t k;

	if (i == h->cap)
		return HT_FREE;
	memcpy(&k, h->ent + i * h->stride, sizeof(k));
	return k;
}

static inline bool ht_used(const struct htab *h, size_t i)
{
	return i < h->cap ? ht_key(h, i) != HT_FREE : h->has_free_key;
}

static inline void ht_set_key(struct htab *h, size_t i, uint64_t k)
{
	memcpy(h->ent + i * h->stride, &k, sizeof(k));
}

#define ht_val(h, i) ((void *)((h)->ent + (i) * (h)->stride + sizeof(uint64_t)))
#define ht_for_each(h, i) for (size_t i = 0; (h)->cap && i <= (h)->cap; i++) if (ht_used(h, i))

static void ht_free(struct htab *h)
{
	free(h->ent);
	h->ent = NULL;
	h->cap = h->n = 0;
	h->has_free_key = false;
}

static size_t ht_stride(size_t vsize)
{
	size_t a = vsize % 8 == 0 ? 8 : vsize % 4 == 0 ? 4 : vsize % 2 == 0 ? 2 : 1;

	return (sizeof(uint64_t) + vsize + a - 1) / a * a;
}

static int ht_resize(struct htab *h, size_t cap)
{
	struct htab n = { .cap = cap, .vsize = h->vsize, .stride = ht_stride(h->vsize) };

	n.ent = malloc((cap + 1) * n.stride);
	if (!n.ent)
		return -ENOMEM;
	/* every key HT_FREE (values are garbage until written) */
	memset(n.ent, 0xff, (cap + 1) * n.stride);
	for (size_t i = 0; i < h->cap; i++) {
		uint64_t k = ht_key(h, i);
		size_t j;

		if (k == HT_FREE)
			continue;
		for (j = ht_home(&n, k); ht_key(&n, j) != HT_FREE; j = ht_next(&n, j))
			;
		memcpy(n.ent + j * n.stride, h->ent + i * h->stride, n.stride);
	}
	if (h->has_free_key)
		memcpy(ht_val(&n, cap), ht_val(h, h->cap), h->vsize);
	n.n = h->n;
	n.has_free_key = h->has_free_key;
	ht_free(h);
	*h = n;
	return 0;
}

/* Room for n entries without growing (a full apply knows its sizes: no
 * rehash of growing tables while it fills them). */
static int ht_reserve(struct htab *h, size_t n)
{
	size_t cap = n * 5 / 3 + 1;

	if (cap < HT_MIN_CAP)
		cap = HT_MIN_CAP;
	return cap <= h->cap ? 0 : ht_resize(h, cap);
}

static long ht_slot(const struct htab *h, uint64_t k)
{
	if (!h->cap)
		return -1;
	if (k == HT_FREE)
		return h->has_free_key ? (long)h->cap : -1;
	for (size_t j = ht_home(h, k);; j = ht_next(h, j)) {
		uint64_t x = ht_key(h, j);

		if (x == k)
			return (long)j;
		if (x == HT_FREE)
			return -1;
	}
}

static void *ht_get(const struct htab *h, uint64_t k)
{
	long j = ht_slot(h, k);

	return j < 0 ? NULL : ht_val(h, (size_t)j);
}

/* Insert or overwrite; returns the stored value or NULL on ENOMEM. */
static void *ht_put(struct htab *h, uint64_t k, const void *v)
{
	size_t j;

	/* only an insert grows the table: values of existing keys stay put */
	if (HT_FULL(h->n + 1, h->cap) && ht_slot(h, k) < 0 &&
	    ht_resize(h, h->cap ? h->cap + h->cap / 2 : HT_MIN_CAP))
		return NULL;
	if (k == HT_FREE) {
		j = h->cap;
		h->n += !h->has_free_key;
		h->has_free_key = true;
	} else {
		for (j = ht_home(h, k);; j = ht_next(h, j)) {
			uint64_t x = ht_key(h, j);

			if (x == k)
				break;
			if (x == HT_FREE) {
				ht_set_key(h, j, k);
				h->n++;
				break;
			}
		}
	}
	memcpy(ht_val(h, j), v, h->vsize);
	return ht_val(h, j);
}

/* Delete with backward shifting, so lookups never need tombstones. */
static void ht_del(struct htab *h, uint64_t k)
{
	long s = ht_slot(h, k);
	size_t i, j;

	if (s < 0)
		return;
	h->n--;
	if ((size_t)s == h->cap) {
		h->has_free_key = false;
		return;
	}
	i = (size_t)s;
	ht_set_key(h, i, HT_FREE);
	for (j = ht_next(h, i); ht_key(h, j) != HT_FREE; j = ht_next(h, j)) {
		size_t home = ht_home(h, ht_key(h, j));
		bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);

		if (stays)
			continue;
		memcpy(h->ent + i * h->stride, h->ent + j * h->stride, h->stride);
		ht_set_key(h, j, HT_FREE);
		i = j;
	}
}

/* ---- id sets: dense ids, lowest free first ---------------------------------- */

struct idset {
	uint64_t *w;
	size_t nw;
	uint32_t max; /* ids 1..max may be allocated */
	uint32_t hint;
};

static int ids_set(struct idset *s, uint32_t id)
{
	size_t need = id / 64 + 1;

	if (need > s->nw) {
		size_t nw = need * 2;
		uint64_t *w = realloc(s->w, nw * sizeof(*w));

		if (!w)
			return -ENOMEM;
		memset(w + s->nw, 0, (nw - s->nw) * sizeof(*w));
		s->w = w;
		s->nw = nw;
	}
	s->w[id / 64] |= 1ULL << (id % 64);
	return 0;
}

static bool ids_test(const struct idset *s, uint32_t id)
{
	return id / 64 < s->nw && (s->w[id / 64] >> (id % 64)) & 1;
}

/* Only the per-service apply frees ids as it goes (after its allocations). */
static void ids_clear(struct idset *s, uint32_t id)
{
	if (id / 64 >= s->nw)
		return;
	s->w[id / 64] &= ~(1ULL << (id % 64));
	if (id < s->hint)
		s->hint = id;
}

static void ids_reset(struct idset *s, uint32_t max)
{
	if (s->nw)
		memset(s->w, 0, s->nw * sizeof(*s->w));
	s->max = max;
	s->hint = 0;
}

/* Returns 0 when the id space is exhausted. */
static uint32_t ids_alloc(struct idset *s)
{
	uint32_t id = s->hint > 1 ? s->hint : 1;

	while (id <= s->max) {
		if (id / 64 < s->nw && s->w[id / 64] == ~0ULL) {
			id = (id / 64 + 1) * 64;
			continue;
		}
		if (!ids_test(s, id)) {
			if (ids_set(s, id))
				return 0;
			s->hint = id + 1;
			return id;
		}
		id++;
	}
	return 0;
}

/* ---- the mirror of the maps ----------------------------------------------- */

struct slots {
	uint32_t n;    /* highest present slot + 1 */
	uint32_t cap;  /* entries allocated in be */
	uint32_t *be;  /* backend id per slot, 0 = absent */
	uint32_t base; /* the set's range of kxp_slot: [base, base + len) */
	uint32_t len;
};

/* The free ranges of kxp_slot (an array): sorted by base, coalesced. A
 * range freed by an apply (its set moved or went away) waits in pending
 * until the next apply starts: a packet that read a frontend just before
 * the move may still read the old range, which must not hold another set's
 * backends by then (it is zeroed once no frontend names it). */
struct range {
	uint32_t base, len;
};

struct ranges {
	struct range *free, *pending;
	size_t n_free, cap_free, n_pending, cap_pending;
};

static int range_push(struct range **v, size_t *n, size_t *cap, size_t at, struct range r)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		struct range *nv = realloc(*v, c * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = c;
	}
	memmove(*v + at + 1, *v + at, (*n - at) * sizeof(**v));
	(*v)[at] = r;
	(*n)++;
	return 0;
}

/* Give [base, base + len) to the free list, merged with its neighbours. */
static int ranges_put(struct ranges *rg, uint32_t base, uint32_t len)
{
	size_t lo = 0, hi = rg->n_free;
	struct range *f;

	if (!len)
		return 0;
	while (lo < hi) { /* the first free range after base */
		size_t mid = (lo + hi) / 2;

		if (rg->free[mid].base < base)
			lo = mid + 1;
		else
			hi = mid;
	}
	f = rg->free;
	if (lo > 0 && f[lo - 1].base + f[lo - 1].len == base) {
		f[lo - 1].len += len;
		if (lo < rg->n_free && base + len == f[lo].base) {
			f[lo - 1].len += f[lo].len;
			memmove(f + lo, f + lo + 1, (rg->n_free - lo - 1) * sizeof(*f));
			rg->n_free--;
		}
		return 0;
	}
	if (lo < rg->n_free && base + len == f[lo].base) {
		f[lo].base = base;
		f[lo].len += len;
		return 0;
	}
	return range_push(&rg->free, &rg->n_free, &rg->cap_free, lo, (struct range){ base, len });
}

/* A range of len slots (first fit); -ENOSPC when no free range is as long. */
static int ranges_get(struct ranges *rg, uint32_t len, uint32_t *base)
{
	for (size_t i = 0; i < rg->n_free; i++) {
		struct range *f = &rg->free[i];

		if (f->len < len)
			continue;
		*base = f->base;
		f->base += len;
		f->len -= len;
		if (!f->len) {
			memmove(f, f + 1, (rg->n_free - i - 1) * sizeof(*f));
			rg->n_free--;
		}
		return 0;
	}
	return -ENOSPC;
}

static int ranges_free_later(struct ranges *rg, uint32_t base, uint32_t len)
{
	if (!len)
		return 0;
	return range_push(&rg->pending, &rg->n_pending, &rg->cap_pending, rg->n_pending, (struct range){ base, len });
}

/* At the start of an apply: what the previous ones freed becomes free. */
static int ranges_release(struct ranges *rg)
{
	for (size_t i = 0; i < rg->n_pending; i++)
		if (ranges_put(rg, rg->pending[i].base, rg->pending[i].len))
			return -ENOMEM;
	rg->n_pending = 0;
	return 0;
}

/* The mirror of one kxp_backend4 entry, by id (an array like the map: a
 * hash table keyed by id cost 2.5 times the memory and a hash per lookup).
 * proto 0: no backend has this id. ref: slots naming it. want: the last
 * apply (kxp_wcache.epoch) that asked for it, so an apply needs no table of
 * the backends it wants. */
struct mbe {
	struct kxp_backend b;
	uint32_t ref;
	uint32_t want;
};

/* Which Service wrote a frontend: the per-service apply touches only the
 * entries of that Service (the maps do not record it; a full apply does). */
struct owner {
	char *name;          /* "ns/name" */
	uint64_t *keys;      /* svc keys of its frontends */
	size_t n, cap;
};

struct kxp_wcache {
	struct htab svc;     /* svc key -> struct kxp_svc_val */
	struct htab slots;   /* sp_id -> struct slots */
	struct mbe *be;      /* by backend id: what kxp_backend4 holds, and refs */
	uint32_t be_cap;     /* ids below it have an element */
	uint32_t epoch;      /* the apply running (mbe.want), from 1 */
	/* frontend ids above it have never had a frontend since kxp_stats and
	 * kxp_ct4 were created, so their counters are zero (no clearing write);
	 * UINT32_MAX when the maps were adopted (any id may have counted) */
	uint32_t fe_used_max;
	struct htab be_addr; /* addr:port/proto -> backend id (uint32_t) */
	struct htab revnat;  /* fe_id -> struct kxp_revnat */
	struct htab nodeip;  /* addr -> struct kxp_nodeip */
	struct htab lbsr;    /* fe_id << 32 | addr -> bit p set = prefix /p present */
	struct kxp_config cfg;
	struct htab *be_dropped; /* during a per-service apply: ids whose refs reached 0 */
	/* ids in use, kept exact by the per-service apply; a full apply rebuilds them */
	struct idset fe_ids, sp_ids, be_ids;
	bool ids_ok;
	/* owners: valid after a full apply, kept by per-service applies */
	struct htab owner_by_name; /* fnv64(name) -> index into owners (uint32_t) */
	struct htab fe_owner;      /* svc key -> index into owners (uint32_t) */
	struct owner *owners;
	size_t n_owners, cap_owners;
	bool owners_ok;
	/* selection state (no copy of any table: fingerprints and keys only) */
	struct htab mg;      /* sp_id -> fingerprint of its Maglev table (uint64_t) */
	struct htab member;  /* sp_id << 32 | backend id -> 1 (kxp_member4 entries) */
	struct htab spname;  /* sp_id -> fnv64 of the set key in kxp_spname */
	uint32_t nobatch;    /* bit per enum kxp_map_id: no BPF_MAP_UPDATE_BATCH there */
	struct ranges rg;    /* free ranges of kxp_slot */
};

static uint64_t svc_k(const struct kxp_svc_key *k)
{
	uint64_t v;

	memcpy(&v, k, sizeof(v));
	return v;
}

static struct kxp_svc_key svc_unk(uint64_t v)
{
	struct kxp_svc_key k;

	memcpy(&k, &v, sizeof(k));
	return k;
}

static uint64_t be_k(uint32_t addr, uint16_t nport, uint8_t proto)
{
	return (uint64_t)addr | (uint64_t)nport << 32 | (uint64_t)proto << 48;
}

static void owners_reset(struct kxp_wcache *wc)
{
	for (size_t i = 0; i < wc->n_owners; i++) {
		free(wc->owners[i].name);
		free(wc->owners[i].keys);
	}
	free(wc->owners);
	wc->owners = NULL;
	wc->n_owners = wc->cap_owners = 0;
	ht_free(&wc->owner_by_name);
	ht_free(&wc->fe_owner);
	wc->owners_ok = false;
}

static uint64_t fnv64(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
	return h;
}

/* Index of the owner called name, or -1 (create: add it; -ENOMEM/-EEXIST). */
static long owner_find(struct kxp_wcache *wc, const char *name, bool create)
{
	uint64_t h = fnv64(name);
	const uint32_t *idx = ht_get(&wc->owner_by_name, h);
	struct owner *o;
	uint32_t n;

	if (idx)
		/* two names with one 64-bit hash: the caller falls back to a full apply */
		return strcmp(wc->owners[*idx].name, name) ? -EEXIST : (long)*idx;
	if (!create)
		return -1;
	if (wc->n_owners == wc->cap_owners) {
		size_t cap = wc->cap_owners ? wc->cap_owners * 2 : 64;
		struct owner *v = realloc(wc->owners, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		wc->owners = v;
		wc->cap_owners = cap;
	}
	o = &wc->owners[wc->n_owners];
	memset(o, 0, sizeof(*o));
	o->name = strdup(name);
	n = (uint32_t)wc->n_owners;
	if (!o->name || !ht_put(&wc->owner_by_name, h, &n)) {
		free(o->name);
		return -ENOMEM;
	}
	wc->n_owners++;
	return n;
}

static int owner_add_key(struct kxp_wcache *wc, uint32_t idx, uint64_t key)
{
	struct owner *o = &wc->owners[idx];

	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 4;
		uint64_t *v = realloc(o->keys, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		o->keys = v;
		o->cap = cap;
	}
	o->keys[o->n++] = key;
	return ht_put(&wc->fe_owner, key, &idx) ? 0 : -ENOMEM;
}

/* Room for ids below n (zeroed: no backend, no refs). */
static int mbe_reserve(struct kxp_wcache *wc, size_t n)
{
	size_t cap = wc->be_cap ? wc->be_cap : 1024;
	struct mbe *v;

	if (n <= wc->be_cap)
		return 0;
	while (cap < n)
		cap *= 2;
	if (cap > UINT32_MAX)
		return -ENOMEM;
	v = realloc(wc->be, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	memset(v + wc->be_cap, 0, (cap - wc->be_cap) * sizeof(*v));
	wc->be = v;
	wc->be_cap = (uint32_t)cap;
	return 0;
}

/* The backend with this id in kxp_backend4, or NULL. */
static struct kxp_backend *mbe_get(const struct kxp_wcache *wc, uint32_t id)
{
	return id < wc->be_cap && wc->be[id].b.proto ? &wc->be[id].b : NULL;
}

static int mbe_put(struct kxp_wcache *wc, uint32_t id, const struct kxp_backend *b)
{
	if (!b->proto)
		return -EINVAL;
	if (mbe_reserve(wc, (size_t)id + 1))
		return -ENOMEM;
	wc->be[id].b = *b;
	return 0;
}

static void mbe_del(struct kxp_wcache *wc, uint32_t id)
{
	if (id < wc->be_cap)
		memset(&wc->be[id].b, 0, sizeof(wc->be[id].b));
}

static uint32_t mbe_refs(const struct kxp_wcache *wc, uint32_t id)
{
	return id < wc->be_cap ? wc->be[id].ref : 0;
}

static void be_ref_inc(struct kxp_wcache *wc, uint32_t id)
{
	/* on ENOMEM the backend merely looks unused to a per-service apply,
	 * which also checks be_wanted (a slot names an id mbe_put has held) */
	if (id && !mbe_reserve(wc, (size_t)id + 1))
		wc->be[id].ref++;
}

static void be_ref_dec(struct kxp_wcache *wc, uint32_t id)
{
	uint8_t one = 1;

	if (!id || id >= wc->be_cap || !wc->be[id].ref)
		return;
	if (--wc->be[id].ref)
		return;
	if (wc->be_dropped)
		ht_put(wc->be_dropped, id, &one);
}

void kxp_wcache_free(struct kxp_wcache *wc)
{
	if (!wc)
		return;
	owners_reset(wc);
	free(wc->fe_ids.w);
	free(wc->sp_ids.w);
	free(wc->be_ids.w);
	ht_for_each(&wc->slots, i) free(((struct slots *)ht_val(&wc->slots, i))->be);
	free(wc->rg.free);
	free(wc->rg.pending);
	ht_free(&wc->svc);
	ht_free(&wc->slots);
	free(wc->be);
	ht_free(&wc->be_addr);
	ht_free(&wc->revnat);
	ht_free(&wc->nodeip);
	ht_free(&wc->lbsr);
	ht_free(&wc->mg);
	ht_free(&wc->member);
	ht_free(&wc->spname);
	free(wc);
}

/* want: the set's size when known (a set's slots are written in order:
 * one allocation instead of one per slot), else 0. */
/* The mirror of set sp, created empty when absent; NULL on ENOMEM. */
static struct slots *slots_of(struct kxp_wcache *wc, uint32_t sp)
{
	struct slots *s = ht_get(&wc->slots, sp), z = {};

	return s ? s : ht_put(&wc->slots, sp, &z);
}

static int slots_set(struct kxp_wcache *wc, uint32_t sp, uint32_t slot, uint32_t be, uint32_t want)
{
	struct slots *s = slots_of(wc, sp);

	if (!s)
		return -ENOMEM;
	if (slot >= s->cap) {
		uint32_t cap = want > slot ? want : slot + 1;
		uint32_t *b = realloc(s->be, cap * sizeof(*b));

		if (!b)
			return -ENOMEM;
		s->be = b;
		s->cap = cap;
	}
	if (slot >= s->n) {
		memset(s->be + s->n, 0, (slot + 1 - s->n) * sizeof(*s->be));
		s->n = slot + 1;
	}
	be_ref_inc(wc, be);
	be_ref_dec(wc, s->be[slot]);
	s->be[slot] = be;
	return 0;
}

static void slot_zero(struct kxp_wcache *wc, struct slots *s, uint32_t j)
{
	be_ref_dec(wc, s->be[j]);
	s->be[j] = 0;
}

/* Read every entry of a map; cb gets key and value. */
static int map_walk(int fd, size_t ksz, size_t vsz, int (*cb)(struct kxp_wcache *, const void *, const void *),
		    struct kxp_wcache *wc)
{
	uint8_t key[64], next[64], val[256];
	void *prev = NULL;
	int err;

	if (ksz > sizeof(key) || vsz > sizeof(val))
		return -EINVAL;
	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(key, next, ksz);
		prev = key;
		if (bpf_map_lookup_elem(fd, key, val))
			continue; /* deleted meanwhile */
		err = cb(wc, key, val);
		if (err)
			return err;
	}
	return errno == ENOENT ? 0 : -errno;
}

static int load_svc(struct kxp_wcache *wc, const void *k, const void *v)
{
	return ht_put(&wc->svc, svc_k(k), v) ? 0 : -ENOMEM;
}

struct slot_read {
	uint32_t *all;
	uint32_t max;
};

static int slot_read_one(void *ctx, uint32_t i, const void *v)
{
	struct slot_read *r = ctx;

	if (i < r->max)
		r->all[i] = *(const uint32_t *)v;
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->base < y->base ? -1 : x->base > y->base;
}

/* The sets' slots from the frontends that name them ({sp_id, base, count})
 * and the slot array; the free ranges are what no frontend names. */
static int load_slots(struct kxp_dp *dp, struct kxp_wcache *wc)
{
	uint32_t max = dp->map_max[KXP_MAP_SLOT], end = 0;
	struct slot_read r = { .max = max };
	struct range *used = calloc(wc->svc.n + 1, sizeof(*used));
	size_t n_used = 0;
	int err = 0;

	if (!used)
		return -ENOMEM;
	/* (an array this open created holds zeros only: nothing to read) */
	if (!dp->created[KXP_MAP_SLOT] && wc->svc.n) {
		r.all = calloc(max ? max : 1, sizeof(*r.all));
		err = r.all ? kxp_array_walk(dp->map_fd[KXP_MAP_SLOT], slot_read_one, &r) : -ENOMEM;
	}
	ht_for_each(&wc->svc, i) {
		const struct kxp_svc_val *v = ht_val(&wc->svc, i);
		struct slots *s;

		if (err || !v->sp_id || !v->count || v->base >= max || v->count > max - v->base)
			continue; /* (a range beyond the array is garbage nothing can index) */
		used[n_used++] = (struct range){ v->base, v->count };
		if (ht_get(&wc->slots, v->sp_id))
			continue;
		for (uint32_t j = 0; j < v->count && !err; j++)
			err = slots_set(wc, v->sp_id, j, r.all ? r.all[v->base + j] : 0, v->count);
		s = ht_get(&wc->slots, v->sp_id);
		if (s) {
			s->base = v->base;
			s->len = v->count;
		}
	}
	free(r.all);
	/* every range a frontend names is in use, even one its set's mirror
	 * does not hold (frontends of one set left apart by a failed apply) */
	qsort(used, n_used, sizeof(*used), range_cmp);
	for (size_t i = 0; i < n_used && !err; i++) {
		if (used[i].base > end)
			err = ranges_put(&wc->rg, end, used[i].base - end);
		if (used[i].base + used[i].len > end)
			end = used[i].base + used[i].len;
	}
	if (!err && end < max)
		err = ranges_put(&wc->rg, end, max - end);
	free(used);
	return err;
}

static int load_be(struct kxp_wcache *wc, const void *k, const void *v)
{
	const struct kxp_backend *b = v;
	uint32_t id = *(const uint32_t *)k;

	if (!b->proto)
		return 0; /* not a backend kxp wrote: the id stays free, the entry is overwritten */
	if (mbe_put(wc, id, b))
		return -ENOMEM;
	return ht_put(&wc->be_addr, be_k(b->addr, b->port, b->proto), &id) ? 0 : -ENOMEM;
}

static int load_revnat(struct kxp_wcache *wc, const void *k, const void *v)
{
	return ht_put(&wc->revnat, *(const uint32_t *)k, v) ? 0 : -ENOMEM;
}

/* kxp_backend4 and kxp_revnat4 are arrays by id: kxp_array_walk hands over
 * the ids in use. */
static int load_be_id(void *wc, uint32_t id, const void *v)
{
	return load_be(wc, &id, v);
}

static int load_revnat_id(void *wc, uint32_t id, const void *v)
{
	return load_revnat(wc, &id, v);
}

static int load_nodeip(struct kxp_wcache *wc, const void *k, const void *v)
{
	return ht_put(&wc->nodeip, *(const uint32_t *)k, v) ? 0 : -ENOMEM;
}

static uint64_t lbsr_k(uint32_t fe_id, uint32_t addr)
{
	return (uint64_t)fe_id << 32 | addr;
}

static int lbsr_add(struct htab *h, uint32_t fe_id, uint32_t addr, unsigned plen)
{
	uint64_t *m = ht_get(h, lbsr_k(fe_id, addr)), zero = 0;

	if (!m && !(m = ht_put(h, lbsr_k(fe_id, addr), &zero)))
		return -ENOMEM;
	*m |= 1ULL << plen;
	return 0;
}

static int load_lbsr(struct kxp_wcache *wc, const void *k, const void *v)
{
	const struct kxp_lbsr_key *lk = k;

	if (lk->prefixlen < 32 || lk->prefixlen > 64)
		return 0;
	return lbsr_add(&wc->lbsr, lk->fe_id, lk->addr, lk->prefixlen - 32);
}

static uint64_t member_k(uint32_t sp, uint32_t be)
{
	return (uint64_t)sp << 32 | be;
}

/* Membership entries name backends by address; map them back to ids. One
 * that names no backend (left over by an interrupted writer) is deleted. */
static int load_members(struct kxp_dp *dp, struct kxp_wcache *wc)
{
	struct kxp_member_key k, next, *prev = NULL;
	uint8_t one = 1;
	int fd = dp->map_fd[KXP_MAP_MEMBER];

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		const uint32_t *id = ht_get(&wc->be_addr, be_k(next.addr, next.port, next.proto));
		const struct slots *s = ht_get(&wc->slots, next.sp_id);
		bool in_slots = false;

		k = next;
		prev = &k;
		for (uint32_t j = 0; id && s && j < s->n && !in_slots; j++)
			in_slots = s->be[j] == *id;
		if (!in_slots) {
			bpf_map_delete_elem(fd, &k);
			prev = NULL; /* the walk restarts: deleting may reorder the iteration */
			continue;
		}
		if (!ht_put(&wc->member, member_k(next.sp_id, *id), &one))
			return -ENOMEM;
	}
	return errno == ENOENT ? 0 : -errno;
}

/* Which sets have a Maglev table, and the fingerprint stored in it. The
 * outer map is an array: every index is a lookup, so only those up to the
 * highest set id in use are read (ids are dense from 1; this writer adds a
 * table after a set's slots and drops it before the set's name, so a set
 * with a table always has slots or a name). Empty maps cost no lookup. */
static int load_maglev(struct kxp_dp *dp, struct kxp_wcache *wc)
{
	int fd = dp->map_fd[KXP_MAP_MAGLEV];
	uint32_t top = 0;

	ht_for_each(&wc->svc, i) {
		const struct kxp_svc_val *v = ht_val(&wc->svc, i);

		if (v->sp_id > top)
			top = v->sp_id;
	}
	ht_for_each(&wc->slots, i) if (ht_key(&wc->slots, i) > top) top = (uint32_t)ht_key(&wc->slots, i);
	ht_for_each(&wc->spname, i) if (ht_key(&wc->spname, i) > top) top = (uint32_t)ht_key(&wc->spname, i);
	if (top >= dp->map_max[KXP_MAP_MAGLEV])
		top = dp->map_max[KXP_MAP_MAGLEV] ? dp->map_max[KXP_MAP_MAGLEV] - 1 : 0;
	for (uint32_t sp = 1; sp <= top; sp++) {
		uint32_t inner_id, m = dp->maglev_m, k;
		struct kxp_mg_pair a = {}, b = {};
		uint64_t fp;
		int ifd;

		if (bpf_map_lookup_elem(fd, &sp, &inner_id))
			continue;
		ifd = bpf_map_get_fd_by_id(inner_id);
		if (ifd < 0)
			continue;
		k = m / 2;
		bpf_map_lookup_elem(ifd, &k, &a);
		k = (m + 1) / 2;
		bpf_map_lookup_elem(ifd, &k, &b);
		close(ifd);
		fp = (uint64_t)b.id[(m + 1) & 1] << 32 | a.id[m & 1];
		if (!ht_put(&wc->mg, sp, &fp))
			return -ENOMEM;
	}
	return 0;
}

static int load_spname(struct kxp_wcache *wc, const void *k, const void *v)
{
	struct kxp_spname n;
	uint64_t h;

	memcpy(&n, v, sizeof(n));
	n.key[sizeof(n.key) - 1] = 0;
	h = fnv64(n.key);
	return ht_put(&wc->spname, *(const uint32_t *)k, &h) ? 0 : -ENOMEM;
}

static int wcache_load(struct kxp_dp *dp, struct kxp_wcache **out)
{
	struct kxp_wcache *wc = calloc(1, sizeof(*wc));
	__u32 zero = 0;
	int err;

	if (!wc)
		return -ENOMEM;
	wc->svc.vsize = sizeof(struct kxp_svc_val);
	wc->slots.vsize = sizeof(struct slots);
	wc->be_addr.vsize = sizeof(uint32_t);
	wc->revnat.vsize = sizeof(struct kxp_revnat);
	wc->nodeip.vsize = sizeof(struct kxp_nodeip);
	wc->lbsr.vsize = sizeof(uint64_t);
	wc->owner_by_name.vsize = sizeof(uint32_t);
	wc->fe_owner.vsize = sizeof(uint32_t);
	wc->mg.vsize = sizeof(uint64_t);
	wc->member.vsize = 1;
	wc->spname.vsize = sizeof(uint64_t);
	err = map_walk(dp->map_fd[KXP_MAP_SVC], sizeof(struct kxp_svc_key), sizeof(struct kxp_svc_val), load_svc, wc);
	if (!err)
		err = load_slots(dp, wc);
	if (!err)
		/* (an array this open created holds zeros only: nothing to read) */
		err = dp->created[KXP_MAP_BACKEND] ? 0 : kxp_array_walk(dp->map_fd[KXP_MAP_BACKEND], load_be_id, wc);
	if (!err)
		err = dp->created[KXP_MAP_REVNAT] ? 0 : kxp_array_walk(dp->map_fd[KXP_MAP_REVNAT], load_revnat_id, wc);
	if (!err)
		err = map_walk(dp->map_fd[KXP_MAP_NODEIP], 4, sizeof(struct kxp_nodeip), load_nodeip, wc);
	if (!err)
		err = map_walk(dp->map_fd[KXP_MAP_LBSR], sizeof(struct kxp_lbsr_key), 1, load_lbsr, wc);
	if (!err && bpf_map_lookup_elem(dp->map_fd[KXP_MAP_CONFIG], &zero, &wc->cfg))
		err = -errno;
	if (!err)
		err = load_members(dp, wc);
	if (!err)
		err = map_walk(dp->map_fd[KXP_MAP_SPNAME], 4, sizeof(struct kxp_spname), load_spname, wc);
	if (!err)
		err = load_maglev(dp, wc);
	wc->fe_used_max = dp->created[KXP_MAP_STATS] && dp->created[KXP_MAP_CT] ? 0 : UINT32_MAX;
	/* from the first apply on, the maps hold what the writer wrote */
	memset(dp->created, 0, sizeof(dp->created));
	if (err) {
		kxp_wcache_free(wc);
		return err;
	}
	*out = wc;
	return 0;
}

/* ---- apply ------------------------------------------------------------------ */

struct wset {
	bool used;       /* referenced by a written frontend */
	bool new_sp;
	uint32_t sp_id;
	uint32_t n;      /* backends in be[] */
	uint32_t eff_n;  /* slots actually written (n unless a map filled up) */
	uint32_t *be;    /* backend ids in slot order */
	uint32_t *old_be, n_old; /* the slot list before this apply */
	uint32_t base, len; /* its range of kxp_slot */
	uint32_t old_base;  /* the range it moved from (moved) */
	uint32_t old_len;
	bool moved;
	bool slot_failed;
	int mg_fd;       /* new Maglev table waiting for the outer map, or -1 */
	uint64_t mg_fp;  /* its fingerprint */
};

struct wfe {
	struct kxp_svc_key key;
	struct kxp_svc_val val;
	bool is_new, failed;
	const struct kxp_d_frontend *d;
};


/* The updates of one map and phase, written by wq_flush in the order they
 * were queued. A full apply flushes them with BPF_MAP_UPDATE_BATCH: one
 * syscall per map and phase instead of one per entry, and for kxp_maglev one
 * synchronize_rcu() in the kernel instead of one per table. Each phase is
 * flushed before the next one starts, so the order between phases (backends,
 * slots, membership, tables, reverse NAT, frontends last) is what it was
 * entry by entry. tag is the caller's note per entry; res its outcome after
 * the flush: 0, or -ENOSPC when the map was full (the rest is still written). */
struct wq {
	enum kxp_map_id id;
	size_t ksz, vsz;
	uint8_t *k, *v;
	size_t kbytes, vbytes;  /* allocated */
	uint64_t *tag;
	int *res;
	uint32_t n, cap;        /* entries queued; tag and res hold cap */
};

/* A u64 vector (keys or ids). */
struct u64v {
	uint64_t *v;
	size_t n, cap;
};

struct apply_ctx {
	struct kxp_dp *dp;
	struct kxp_wcache *wc;
	struct kxp_apply_stats *st;
	int err; /* first -ENOSPC-class error, reported at the end */
	bool batch; /* flush queued writes with BPF_MAP_UPDATE_BATCH */
	/* the rest is apply()'s, shared by its phases and freed at its end */
	const struct kxp_desired *d;
	const char *only;       /* per-service apply: "ns/name"; NULL: full */
	long own;               /* per service: only's index in wc->owners */
	long stats_sz;          /* value size of kxp_stats (stats_vsz) */
	struct idset *fe_ids, *sp_ids, *be_ids; /* the mirror's */
	struct wset *sets;      /* per d->sets[], one more at the end */
	struct wfe *fes;        /* per d->fe[] */
	struct wq q, q2;        /* queued writes of the phase running */
	struct htab sp2set;     /* claimed sp_id -> set index */
	struct htab fe_want;    /* svc key -> wfe index */
	struct htab fe_live;    /* fe ids of frontends written or kept */
	struct htab lbsr_want;  /* fe_id << 32 | addr -> prefixes asked for (as wc->lbsr) */
	struct htab be_dropped; /* per-service: backend ids whose last slot went (wc->be_dropped) */
	struct htab fe_cand;    /* per-service: fe ids that may be freed */
	struct htab sp_cand;    /* per-service: sp ids that may be freed */
	struct htab aff_off;    /* sp ids whose affinity was switched off */
	struct u64v old_keys;   /* per-service: svc keys the Service owned before */
	struct u64v new_keys;   /* svc keys written or kept */
};

static void fail(struct apply_ctx *c, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(struct apply_ctx *c, int err, const char *fmt, ...)
{
	va_list ap;
	size_t i = c->st->n_failed++;

	if (!c->err)
		c->err = err;
	if (i >= sizeof(c->st->failed) / sizeof(c->st->failed[0]))
		return;
	va_start(ap, fmt);
	vsnprintf(c->st->failed[i], sizeof(c->st->failed[i]), fmt, ap);
	va_end(ap);
}

static const char *fe_str(const struct kxp_svc_key *k, char *buf, size_t len)
{
	char a[INET_ADDRSTRLEN], pb[8];

	inet_ntop(AF_INET, &k->addr, a, sizeof(a));
	snprintf(buf, len, "%s:%u/%s%s", a, ntohs(k->port), kxp_proto_name(k->proto, pb),
		 k->scope == KXP_SCOPE_INTERNAL ? " (internal)" : "");
	return buf;
}

/* Map full (E2BIG from hash maps, ENOSPC elsewhere) is reported per entry and
 * the rest continues; anything else is an error of the map itself. */
static int upd(struct apply_ctx *c, enum kxp_map_id id, const void *k, const void *v)
{
	c->st->writes++;
	c->st->syscalls++;
	if (bpf_map_update_elem(c->dp->map_fd[id], k, v, BPF_ANY) == 0)
		return 0;
	return errno == E2BIG ? -ENOSPC : -errno;
}

/* An array by id (kxp_backend4, kxp_revnat4) and kxp_slot have no deletes:
 * the entry is zeroed, which the programs and listings read as "unused". */
static int del(struct apply_ctx *c, enum kxp_map_id id, const void *k)
{
	static const uint8_t zero[64];

	c->st->writes++;
	c->st->syscalls++;
	if (id == KXP_MAP_BACKEND || id == KXP_MAP_REVNAT || id == KXP_MAP_SLOT)
		return bpf_map_update_elem(c->dp->map_fd[id], k, zero, BPF_EXIST) ? -errno : 0;
	if (bpf_map_delete_elem(c->dp->map_fd[id], k) == 0 || errno == ENOENT)
		return 0;
	return -errno;
}

/* ---- queued updates ------------------------------------------------------- */

/* the kernel's ENOTSUPP (no batch operation for this map type) */
#define KXP_ENOTSUPP 524

static void wq_start(struct wq *q, enum kxp_map_id id, size_t ksz, size_t vsz)
{
	q->id = id;
	q->ksz = ksz;
	q->vsz = vsz;
	q->n = 0;
}

static int wq_grow(uint8_t **p, size_t *have, size_t need)
{
	size_t n = *have ? *have : 4096;
	uint8_t *x;

	if (need <= *have)
		return 0;
	while (n < need)
		n *= 2;
	x = realloc(*p, n);
	if (!x)
		return -ENOMEM;
	*p = x;
	*have = n;
	return 0;
}

/* v == NULL queues a value of zeroes. */
static int wq_push(struct wq *q, const void *k, const void *v, uint64_t tag)
{
	if (q->n == q->cap) {
		uint32_t cap = q->cap ? q->cap * 2 : 256;
		uint64_t *t = realloc(q->tag, cap * sizeof(*t));
		int *r;

		if (!t)
			return -ENOMEM;
		q->tag = t;
		r = realloc(q->res, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		q->res = r;
		q->cap = cap;
	}
	if (wq_grow(&q->k, &q->kbytes, (q->n + 1) * q->ksz) || wq_grow(&q->v, &q->vbytes, (q->n + 1) * q->vsz))
		return -ENOMEM;
	memcpy(q->k + q->n * q->ksz, k, q->ksz);
	if (v)
		memcpy(q->v + q->n * q->vsz, v, q->vsz);
	else
		memset(q->v + q->n * q->vsz, 0, q->vsz);
	q->tag[q->n] = tag;
	q->res[q->n] = 0;
	q->n++;
	return 0;
}

static void wq_free(struct wq *q)
{
	free(q->k);
	free(q->v);
	free(q->tag);
	free(q->res);
	memset(q, 0, sizeof(*q));
}

/* Write what is queued. A batch stops at the first entry that fails and the
 * kernel says how many it wrote: a full map is noted for that entry and the
 * batch resumes after it. A map type without batch updates (EINVAL or
 * ENOTSUPP before the first entry, while that entry alone can be written) is
 * written entry by entry from then on. Returns 0 or -errno (not -ENOSPC). */
static int wq_flush(struct apply_ctx *c, struct wq *q)
{
	int fd = c->dp->map_fd[q->id];
	bool single = false;
	uint32_t i = 0;

	c->st->writes += q->n;
	while (i < q->n) {
		uint32_t cnt = q->n - i;
		int e = 0;

		c->st->syscalls++;
		if (!c->batch || cnt == 1 || single || (c->wc->nobatch >> q->id) & 1) {
			if (bpf_map_update_elem(fd, q->k + i * q->ksz, q->v + i * q->vsz, BPF_ANY))
				e = errno;
			else if (single)
				c->wc->nobatch |= 1U << q->id; /* the entry is fine, the batch was not */
			single = false;
			cnt = e ? 0 : 1;
		} else if (bpf_map_update_batch(fd, q->k + i * q->ksz, q->v + i * q->vsz, &cnt, NULL)) {
			e = errno;
			/* a kernel without batch updates for this map type returns
			 * before it reads the count (5.10 leaves it as passed) */
			if ((!cnt || cnt == q->n - i) && (e == EINVAL || e == KXP_ENOTSUPP || e == EOPNOTSUPP)) {
				single = true;
				continue;
			}
		}
		i += cnt;
		if (!e)
			continue;
		if (e != E2BIG && e != ENOSPC)
			return -e;
		if (i < q->n)
			q->res[i++] = -ENOSPC;
	}
	return 0;
}

static int write_config_nodeips(struct apply_ctx *c, const struct kxp_desired *d)
{
	struct kxp_config cfg = d->cfg;
	__u32 zero = 0;
	int err;

	cfg.layout_version = KXP_LAYOUT_VERSION;
	cfg.maglev_m = c->dp->maglev_m;
	cfg.features = c->dp->features;
	cfg.loaded = c->dp->loaded;
	cfg.hints = c->dp->hints;
	/* A kernel whose FIB lookup cannot say which source it would pick
	 * (no BPF_FIB_LOOKUP_SRC): masquerade to the primary node address. */
	for (size_t i = 0; !cfg.snat_addr && !(c->dp->features & KXP_FEAT_FIB_SRC) && i < d->n_nodeips; i++)
		if (d->nodeips[i].flags & KXP_NODEIP_F_PRIMARY)
			cfg.snat_addr = d->nodeips[i].addr;
	if (memcmp(&cfg, &c->wc->cfg, sizeof(cfg))) {
		err = upd(c, KXP_MAP_CONFIG, &zero, &cfg);
		if (err)
			return err;
		c->wc->cfg = cfg;
		c->st->config_changed = true;
	}
	for (size_t i = 0; i < d->n_nodeips; i++) {
		struct kxp_nodeip v = { .flags = d->nodeips[i].flags };
		const struct kxp_nodeip *cur = ht_get(&c->wc->nodeip, d->nodeips[i].addr);

		if (cur && !memcmp(cur, &v, sizeof(v)))
			continue;
		err = upd(c, KXP_MAP_NODEIP, &d->nodeips[i].addr, &v);
		if (err == -ENOSPC) {
			char a[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &d->nodeips[i].addr, a, sizeof(a));
			fail(c, err, "node address %s: kxp_nodeip4 is full", a);
			continue;
		}
		if (err)
			return err;
		if (!ht_put(&c->wc->nodeip, d->nodeips[i].addr, &v))
			return -ENOMEM;
		c->st->nodeips_changed++;
	}
	return 0;
}

static int delete_stale_nodeips(struct apply_ctx *c, const struct kxp_desired *d)
{
	struct htab want = { .vsize = 1 };
	uint8_t one = 1;
	int err = 0;

	for (size_t i = 0; i < d->n_nodeips; i++)
		if (!ht_put(&want, d->nodeips[i].addr, &one)) {
			err = -ENOMEM;
			goto out;
		}
	for (size_t i = 0; i <= c->wc->nodeip.cap; i++) {
		uint32_t addr;

		if (!ht_used(&c->wc->nodeip, i) || ht_get(&want, ht_key(&c->wc->nodeip, i)))
			continue;
		addr = (uint32_t)ht_key(&c->wc->nodeip, i);
		err = del(c, KXP_MAP_NODEIP, &addr);
		if (err)
			goto out;
		ht_del(&c->wc->nodeip, addr);
		c->st->nodeips_changed++;
		i--; /* backward shift may have moved an entry into slot i */
	}
out:
	ht_free(&want);
	return err;
}

/* Value size of kxp_stats (per CPU, each rounded up to 8 bytes), or -errno. */
static long stats_vsz(void)
{
	int ncpu = libbpf_num_possible_cpus();

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	return (long)ncpu * (long)((sizeof(struct kxp_stats) + 7) & ~7UL);
}

static int ids_rebuild(struct kxp_dp *dp, struct kxp_wcache *wc)
{
	ids_reset(&wc->fe_ids, dp->map_max[KXP_MAP_STATS] ? dp->map_max[KXP_MAP_STATS] - 1 : 0);
	ids_reset(&wc->sp_ids, dp->map_max[KXP_MAP_SVC]);
	ids_reset(&wc->be_ids, dp->map_max[KXP_MAP_BACKEND] ? dp->map_max[KXP_MAP_BACKEND] - 1 : 0); /* ids from 1 */
	ht_for_each(&wc->svc, i) {
		const struct kxp_svc_val *v = ht_val(&wc->svc, i);

		if (ids_set(&wc->fe_ids, v->fe_id) || (v->sp_id && ids_set(&wc->sp_ids, v->sp_id)))
			return -ENOMEM;
	}
	ht_for_each(&wc->revnat, i) if (ids_set(&wc->fe_ids, (uint32_t)ht_key(&wc->revnat, i))) return -ENOMEM;
	ht_for_each(&wc->slots, i) if (ids_set(&wc->sp_ids, (uint32_t)ht_key(&wc->slots, i))) return -ENOMEM;
	for (uint32_t id = 1; id < wc->be_cap; id++)
		if (mbe_get(wc, id) && ids_set(&wc->be_ids, id))
			return -ENOMEM;
	wc->ids_ok = true;
	return 0;
}

/* ---- selection state of a set: membership, Maglev table, name ------------- */

static int member_del(struct apply_ctx *c, uint32_t sp, uint32_t id)
{
	const struct kxp_backend *b = mbe_get(c->wc, id);
	int err;

	if (!ht_get(&c->wc->member, member_k(sp, id)))
		return 0;
	if (b) {
		struct kxp_member_key k = { .sp_id = sp, .addr = b->addr, .port = b->port, .proto = b->proto };

		err = del(c, KXP_MAP_MEMBER, &k);
		if (err)
			return err;
	}
	ht_del(&c->wc->member, member_k(sp, id));
	return 0;
}

/* Sets up to this size find duplicates by scanning (no hash table per set:
 * a full apply of 10,000 sets built 20,000 small tables). */
#define KXP_SMALL_SET 64

/* Is id among ids[0..n)? For a small n by scanning, else in the table
 * (filled with ids[0..n) on first use). */
static int ids_has(const uint32_t *ids, uint32_t n, uint32_t id, struct htab *tab, bool *found)
{
	uint8_t one = 1;

	*found = false;
	if (n <= KXP_SMALL_SET) {
		for (uint32_t j = 0; j < n && !*found; j++)
			*found = ids[j] == id;
		return 0;
	}
	if (!tab->n)
		for (uint32_t j = 0; j < n; j++)
			if (!ht_put(tab, ids[j], &one))
				return -ENOMEM;
	*found = ht_get(tab, id) != NULL;
	return 0;
}

/* kxp_member4 after a set's slots changed, part one: entries for the
 * backends it has now, queued (tag: set index << 32 | slot) for the caller. */
static int members_queue(struct apply_ctx *c, struct wq *q, const struct wset *w, uint32_t s)
{
	struct htab seen = { .vsize = 1 };
	uint8_t one = 1;
	int err = 0;

	for (uint32_t i = 0; i < w->eff_n && !err; i++) {
		uint32_t id = w->be[i];
		const struct kxp_backend *b;
		struct kxp_member_key k;
		bool twice = false;

		if (w->eff_n <= KXP_SMALL_SET) {
			for (uint32_t j = 0; j < i && !twice; j++)
				twice = w->be[j] == id;
		} else {
			twice = ht_get(&seen, id) != NULL;
			if (!twice && !ht_put(&seen, id, &one)) {
				err = -ENOMEM;
				break;
			}
		}
		if (twice)
			continue; /* listed twice */
		b = mbe_get(c->wc, id);
		if (!b || ht_get(&c->wc->member, member_k(w->sp_id, id)))
			continue;
		k = (struct kxp_member_key){ .sp_id = w->sp_id, .addr = b->addr, .port = b->port, .proto = b->proto };
		err = wq_push(q, &k, &id, (uint64_t)s << 32 | i);
	}
	ht_free(&seen);
	return err;
}

/* Part two, once those are written: none for the backends that left (old:
 * the slot list before, n_old entries; now: the members it keeps, n_now). */
static int members_drop(struct apply_ctx *c, const struct wset *w, uint32_t n_now, const uint32_t *old,
			uint32_t n_old)
{
	struct htab now = { .vsize = 1 };
	int err = 0;

	for (uint32_t j = 0; j < n_old && !err; j++) {
		bool stays;

		if (!old[j])
			continue;
		err = ids_has(w->be, n_now, old[j], &now, &stays);
		if (!err && !stays)
			err = member_del(c, w->sp_id, old[j]);
	}
	ht_free(&now);
	return err;
}

/* What a table is built from: M and the backends (address, port, id) in
 * slot order. Stored in the table itself (abi.h), compared before building. */
static uint64_t mg_fingerprint(const struct apply_ctx *c, const struct wset *w)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ c->dp->maglev_m;

	for (uint32_t i = 0; i < w->eff_n; i++) {
		const struct kxp_backend *b = mbe_get(c->wc, w->be[i]);
		uint64_t x = b ? (uint64_t)b->addr << 32 | (uint64_t)b->port << 16 | b->proto : 0;

		h = hash64(h ^ x) ^ w->be[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static int mg_del(struct apply_ctx *c, uint32_t sp)
{
	int err;

	if (!ht_get(&c->wc->mg, sp))
		return 0;
	err = del(c, KXP_MAP_MAGLEV, &sp);
	if (err)
		return err;
	ht_del(&c->wc->mg, sp);
	c->st->maglev_removed++;
	return 0;
}

/* A set's Maglev table, rebuilt only when its backends changed: a new inner
 * map is filled completely here; switching the outer slot to it is queued
 * (tag: set index; the inner fd stays open in w->mg_fd until the flush), so a
 * packet sees either the old table or the new one. */
static int mg_prepare(struct apply_ctx *c, struct wq *q, struct wset *w, uint32_t s, const char *name)
{
	uint32_t m = c->dp->maglev_m, n = w->eff_n, cnt = KXP_MAGLEV_PAIRS(m);
	uint64_t fp = mg_fingerprint(c, w);
	const uint64_t *cur = ht_get(&c->wc->mg, w->sp_id);
	struct kxp_mg_backend *be = NULL;
	uint32_t *keys = NULL, *vals = NULL;
	int err, fd = -1;

	if (cur && *cur == fp)
		return 0;
	be = calloc(n, sizeof(*be));
	keys = malloc(cnt * sizeof(*keys));
	vals = calloc(cnt, sizeof(struct kxp_mg_pair)); /* entry i at vals[i]: pairs are two u32 */
	if (!be || !keys || !vals) {
		err = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct kxp_backend *b = mbe_get(c->wc, w->be[i]);

		be[i] = (struct kxp_mg_backend){ .addr = b ? b->addr : 0, .port = b ? ntohs(b->port) : 0,
						 .value = w->be[i] };
	}
	err = kxp_maglev_build(be, n, m, vals);
	if (err) {
		/* e.g. more backends than entries: the set is balanced at random */
		fail(c, -ENOSPC, "set %s: no Maglev table for %u backends at M=%u (%s); random selection", name, n, m,
		     strerror(-err));
		err = mg_del(c, w->sp_id);
		goto out;
	}
	vals[m] = (uint32_t)fp;
	vals[m + 1] = (uint32_t)(fp >> 32);
	for (uint32_t i = 0; i < cnt; i++)
		keys[i] = i;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "kxp_mg_table", sizeof(uint32_t), sizeof(struct kxp_mg_pair), cnt, NULL);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	c->st->writes++;
	c->st->syscalls++;
	if (bpf_map_update_batch(fd, keys, vals, &cnt, NULL)) {
		err = -errno;
		/* no batch updates for arrays on this kernel: entry by entry */
		for (uint32_t i = 0; (err == -EINVAL || err == -KXP_ENOTSUPP || err == -EOPNOTSUPP) && i < KXP_MAGLEV_PAIRS(m); i++) {
			if (bpf_map_update_elem(fd, &keys[i], (char *)vals + (size_t)i * sizeof(struct kxp_mg_pair), BPF_ANY))
				break;
			if (i + 1 == KXP_MAGLEV_PAIRS(m))
				err = 0;
		}
		if (err)
			goto out;
	}
	err = wq_push(q, &w->sp_id, &fd, s);
	if (err)
		goto out;
	w->mg_fd = fd;
	w->mg_fp = fp;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	free(be);
	free(keys);
	free(vals);
	return err;
}

/* Maglev tables switched in per chunk (see apply). */
#define KXP_MG_CHUNK 256

/* Write the queued outer-map slots, record what landed, and close the
 * inner tables' fds (the outer map holds them now). */
static int mg_flush(struct apply_ctx *c, struct wq *q, struct wset *sets, const struct kxp_desired *d)
{
	int err = wq_flush(c, q);

	for (uint32_t j = 0; j < q->n && !err; j++) {
		struct wset *w = &sets[q->tag[j]];

		if (q->res[j])
			fail(c, q->res[j], "set %s: kxp_maglev has no slot %u; random selection",
			     d->sets[q->tag[j]].key ? d->sets[q->tag[j]].key : "?", w->sp_id);
		else if (!ht_put(&c->wc->mg, w->sp_id, &w->mg_fp))
			err = -ENOMEM;
		else
			c->st->maglev_built++;
	}
	for (uint32_t j = 0; j < q->n; j++) {
		struct wset *w = &sets[q->tag[j]];

		if (w->mg_fd >= 0)
			close(w->mg_fd);
		w->mg_fd = -1;
	}
	return err;
}

static int spname_del(struct apply_ctx *c, uint32_t sp)
{
	int err;

	if (!ht_get(&c->wc->spname, sp))
		return 0;
	err = del(c, KXP_MAP_SPNAME, &sp);
	if (!err)
		ht_del(&c->wc->spname, sp);
	return err;
}

/* sessionAffinity switched off: forget the set's clients, so switching it on
 * again starts afresh (kube-proxy drops its affinity set). */
static int affinity_flush(struct apply_ctx *c, const struct htab *sps)
{
	int fd = c->dp->map_fd[KXP_MAP_AFFINITY];
	struct kxp_aff_key k, next, *prev = NULL;

	if (!sps->n)
		return 0;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		k = next;
		prev = &k;
		if (!ht_get(sps, next.sp_id))
			continue;
		c->st->writes++;
		c->st->syscalls++;
		bpf_map_delete_elem(fd, &k);
		prev = NULL;
	}
	return 0;
}

static int u64v_push(struct u64v *a, uint64_t x)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		uint64_t *v = realloc(a->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n++] = x;
	return 0;
}

/* The apply. only == NULL: d is the complete state, every map entry is a
 * candidate for removal. only == "ns/name": d holds that Service's frontends
 * and sets (d may be empty: the Service is gone), and only the entries that
 * Service owns are compared and removed; node addresses and config are left
 * as they are. Work is then proportional to the Service, not the maps.
 *
 * apply() runs the phases below in order, each on the shared struct
 * apply_ctx; each returns 0 or -errno, and the first error ends the apply. */

/* Ids in use, and per service what the Service owns before this apply (its
 * frontends' keys, the ids they hold as candidates to be freed). -ESTALE
 * comes before anything is held. */
static int apply_scope(struct apply_ctx *c)
{
	uint8_t one = 1;

	if (!c->only) {
		/* Ids in use are whatever the maps hold now; ids freed by this apply
		 * become free only once their entries are gone (next apply). */
		return ids_rebuild(c->dp, c->wc) ? -ENOMEM : 0;
	}
	/* who owns what is known only after a full apply */
	if (!c->wc->owners_ok)
		return -ESTALE;
	if (!c->wc->ids_ok && ids_rebuild(c->dp, c->wc))
		return -ENOMEM;
	c->own = owner_find(c->wc, c->only, true);
	if (c->own == -EEXIST)
		return -ESTALE;
	if (c->own < 0)
		return -ENOMEM;
	for (size_t i = 0; i < c->wc->owners[c->own].n; i++) {
		uint64_t k = c->wc->owners[c->own].keys[i];
		const struct kxp_svc_val *v = ht_get(&c->wc->svc, k);

		if (!v)
			continue;
		if (u64v_push(&c->old_keys, k) || !ht_put(&c->fe_cand, v->fe_id, &one) ||
		    (v->sp_id && !ht_put(&c->sp_cand, v->sp_id, &one)))
			return -ENOMEM;
	}
	c->wc->be_dropped = &c->be_dropped;
	return 0;
}

static int phase_alloc(struct apply_ctx *c)
{
	const struct kxp_desired *d = c->d;

	c->sets = calloc(d->n_sets + 1, sizeof(*c->sets));
	/* before anything can fail: the cleanup closes every mg_fd >= 0 */
	for (size_t s = 0; c->sets && s <= d->n_sets; s++)
		c->sets[s].mg_fd = -1;
	c->fes = calloc(d->n_fe + 1, sizeof(*c->fes));
	if (!c->sets || !c->fes)
		return -ENOMEM;

	/* A full apply knows how much it will hold: size the tables once. */
	if (!c->only) {
		size_t nb = 0;

		for (size_t s = 0; s < d->n_sets; s++)
			nb += d->sets[s].n_be;
		if (ht_reserve(&c->fe_want, d->n_fe) || ht_reserve(&c->fe_live, d->n_fe) ||
		    ht_reserve(&c->sp2set, d->n_sets) || ht_reserve(&c->wc->be_addr, nb) ||
		    ht_reserve(&c->wc->svc, d->n_fe) || ht_reserve(&c->wc->revnat, d->n_fe) ||
		    ht_reserve(&c->wc->slots, d->n_sets) || ht_reserve(&c->wc->spname, d->n_sets))
			return -ENOMEM;
	}
	return 0;
}

/* Frontends: keys, duplicates, which sets are referenced. */
static int phase_fe_keys(struct apply_ctx *c)
{
	const struct kxp_desired *d = c->d;
	char buf[96];

	for (size_t i = 0; i < d->n_fe; i++) {
		const struct kxp_d_frontend *f = &d->fe[i];
		struct wfe *w = &c->fes[i];
		uint32_t idx = (uint32_t)i;

		w->d = f;
		w->key = (struct kxp_svc_key){ .addr = f->addr, .port = htons(f->port), .proto = f->proto, .scope = f->scope };
		if (ht_get(&c->fe_want, svc_k(&w->key))) {
			w->failed = true; /* the model emitted it twice: the first wins */
			continue;
		}
		if (c->only) {
			const uint32_t *o = ht_get(&c->wc->fe_owner, svc_k(&w->key));

			if ((f->svc && strcmp(f->svc, c->only)) ||
			    (o && (long)*o != c->own && ht_get(&c->wc->svc, svc_k(&w->key)))) {
				/* another Service holds it: leave it alone (a full apply decides) */
				fail(c, -EEXIST, "frontend %s (%s): already used by %s", fe_str(&w->key, buf, sizeof(buf)),
				     c->only, o ? c->wc->owners[*o].name : f->svc);
				c->st->conflicts++;
				w->failed = true;
				continue;
			}
		}
		if (!ht_put(&c->fe_want, svc_k(&w->key), &idx))
			return -ENOMEM;
		if (f->set >= 0 && (size_t)f->set < d->n_sets)
			c->sets[f->set].used = true;
	}
	return 0;
}

static int phase_sp_ids(struct apply_ctx *c)
{
	const struct kxp_desired *d = c->d;
	struct wset *sets = c->sets;
	uint8_t one = 1;

	/* Sets keep the sp_id their frontends already point at (the set key is not
	 * in the maps, the frontends are). */
	for (size_t i = 0; i < d->n_fe; i++) {
		const struct kxp_svc_val *cur;
		int s = d->fe[i].set;
		uint32_t si = (uint32_t)s;

		if (c->fes[i].failed || s < 0 || (size_t)s >= d->n_sets || sets[s].sp_id)
			continue;
		cur = ht_get(&c->wc->svc, svc_k(&c->fes[i].key));
		if (!cur || !cur->sp_id || ht_get(&c->sp2set, cur->sp_id))
			continue;
		sets[s].sp_id = cur->sp_id;
		if (!ht_put(&c->sp2set, cur->sp_id, &si))
			return -ENOMEM;
	}
	for (size_t s = 0; s < d->n_sets; s++) {
		uint32_t si = (uint32_t)s;

		if (!sets[s].used || sets[s].sp_id)
			continue;
		sets[s].sp_id = ids_alloc(c->sp_ids);
		if (!sets[s].sp_id) {
			fail(c, -ENOSPC, "set %s: no free service-port id", d->sets[s].key ? d->sets[s].key : "?");
			sets[s].used = false;
			continue;
		}
		sets[s].new_sp = true;
		if (!ht_put(&c->sp2set, sets[s].sp_id, &si) || (c->only && !ht_put(&c->sp_cand, sets[s].sp_id, &one)))
			return -ENOMEM;
	}
	return 0;
}

/* Config and node addresses: a per-service apply leaves them as they are. */
static int phase_config(struct apply_ctx *c)
{
	return c->only ? 0 : write_config_nodeips(c, c->d);
}

/* Is backend id wanted by the apply running? */
static bool be_wanted(const struct kxp_wcache *wc, uint32_t id)
{
	return id < wc->be_cap && wc->be[id].want == wc->epoch;
}

/* 1. Backends: new ones (and flag changes in place) before any slot names
 * them. Each set's ids go to its be[] in the desired order (0: left out);
 * a backend several sets share is queued once (it is wanted already). A new
 * backend's address names its id from here on; its entry is mirrored once
 * written, and a failed write takes the address back. */
static int phase_backends(struct apply_ctx *c)
{
	const struct kxp_desired *d = c->d;
	struct kxp_wcache *wc = c->wc;
	struct wq *q = &c->q;
	int err;

	if (!++wc->epoch)
		wc->epoch = 1; /* (after 2^32 applies) */
	wq_start(q, KXP_MAP_BACKEND, sizeof(uint32_t), sizeof(struct kxp_backend));
	for (size_t s = 0; s < d->n_sets; s++) {
		const struct kxp_d_set *ds = &d->sets[s];

		if (!c->sets[s].used)
			continue;
		c->sets[s].be = calloc(ds->n_be + 1, sizeof(uint32_t));
		if (!c->sets[s].be)
			return -ENOMEM;
		for (size_t b = 0; b < ds->n_be; b++) {
			const struct kxp_d_backend *db = &ds->be[b];
			uint64_t k = be_k(db->addr, htons(db->port), db->proto);
			const uint32_t *cur_id = ht_get(&wc->be_addr, k);
			struct kxp_backend v = { .addr = db->addr, .port = htons(db->port), .proto = db->proto,
						 .flags = db->flags };
			uint32_t id;

			if (cur_id) {
				const struct kxp_backend *cur;

				id = *cur_id;
				if (mbe_reserve(wc, (size_t)id + 1))
					return -ENOMEM;
				if (be_wanted(wc, id))
					goto next; /* another set's: queued already */
				wc->be[id].want = wc->epoch;
				cur = mbe_get(wc, id);
				if ((!cur || memcmp(cur, &v, sizeof(v))) && wq_push(q, &id, &v, k))
					return -ENOMEM;
			} else {
				id = ids_alloc(c->be_ids);
				if (!id) {
					struct in_addr ia = { db->addr };
					char pb[8];

					fail(c, -ENOSPC, "backend %s:%u/%s: kxp_backend4 is full", inet_ntoa(ia), db->port,
					     kxp_proto_name(db->proto, pb));
					goto next;
				}
				if (mbe_reserve(wc, (size_t)id + 1) || !ht_put(&wc->be_addr, k, &id) ||
				    wq_push(q, &id, &v, k))
					return -ENOMEM;
				wc->be[id].want = wc->epoch;
			}
next:
			c->sets[s].be[b] = id;
		}
	}
	err = wq_flush(c, q);
	if (err)
		return err;
	for (uint32_t i = 0; i < q->n; i++) {
		uint64_t k = q->tag[i];
		uint32_t id = *(uint32_t *)(q->k + i * q->ksz);
		const struct kxp_backend *v = (const void *)(q->v + i * q->vsz);
		bool had = mbe_get(wc, id) != NULL;

		if (q->res[i]) {
			struct in_addr ia = { v->addr };
			char pb[8];

			fail(c, q->res[i], "backend %s:%u/%s: kxp_backend4 is full", inet_ntoa(ia), ntohs(v->port),
			     kxp_proto_name(v->proto, pb));
			if (!had) {
				/* an existing one keeps its old entry, a new one is left out */
				const uint32_t *ai = ht_get(&wc->be_addr, k);

				if (ai && *ai == id)
					ht_del(&wc->be_addr, k);
				wc->be[id].want = 0;
				if (c->only)
					ids_clear(c->be_ids, id);
			}
			continue;
		}
		if ((err = mbe_put(wc, id, v)))
			return err;
		if (had)
			c->st->be_updated++;
		else
			c->st->be_added++;
	}
	return 0;
}

/* Each set's backend ids in slot order: those that have an entry. */
static int phase_set_backends(struct apply_ctx *c)
{
	const struct kxp_desired *d = c->d;
	struct wset *sets = c->sets;

	for (size_t s = 0; s < d->n_sets; s++) {
		const struct kxp_d_set *ds = &d->sets[s];

		if (!sets[s].used)
			continue;
		/* in place: n never passes b */
		for (size_t b = 0; b < ds->n_be; b++) {
			uint32_t id = sets[s].be[b];

			if (id && mbe_get(c->wc, id))
				sets[s].be[sets[s].n++] = id;
		}
		if (sets[s].n > KXP_MAX_SET_BACKENDS) {
			fail(c, -E2BIG, "set %s: %u backends, only %u fit", ds->key ? ds->key : "?", sets[s].n,
			     KXP_MAX_SET_BACKENDS);
			sets[s].n = KXP_MAX_SET_BACKENDS;
		}
	}
	return 0;
}

/* 2a. Shrinking sets: lower the count of every entry using them first
 * (sets belong to one Service: per service, only its entries use them). */
static int phase_shrink(struct apply_ctx *c)
{
	int err;

	for (size_t i = 0; i < (c->only ? c->old_keys.n : c->wc->svc.cap + 1); i++) {
		struct kxp_svc_val *v;
		const uint32_t *si;
		struct kxp_svc_key k;

		if (c->only) {
			v = ht_get(&c->wc->svc, c->old_keys.v[i]);
			if (!v)
				continue;
			k = svc_unk(c->old_keys.v[i]);
		} else {
			if (!ht_used(&c->wc->svc, i))
				continue;
			v = ht_val(&c->wc->svc, i);
			k = svc_unk(ht_key(&c->wc->svc, i));
		}
		si = v->sp_id ? ht_get(&c->sp2set, v->sp_id) : NULL;
		if (!si || v->count <= c->sets[*si].n)
			continue;
		v->count = c->sets[*si].n;
		err = upd(c, KXP_MAP_SVC, &k, v);
		if (err)
			return err;
	}
	return 0;
}

/* Where a set's slots go. One that outgrows its range moves to a new one,
 * with room to grow in place (a quarter more, and 2: a scale-up by one or
 * two endpoints, the usual rolling update, writes one slot each); its
 * frontends name the new range from phase 4 on, and the old one is zeroed
 * after that (phase_moved_ranges) and reused from the next apply. Without a
 * free range long enough the set keeps its range and the backends that fit,
 * as a full map always did. */
static void slots_place(struct apply_ctx *c, struct wset *w, const struct slots *old, const char *key)
{
	uint32_t have = old ? old->len : 0, len;

	w->base = old ? old->base : 0;
	w->len = have;
	w->eff_n = w->n;
	if (w->n <= have)
		return;
	len = w->n + w->n / 4 + 2;
	if (len > KXP_MAX_SET_BACKENDS)
		len = w->n;
	if (!ranges_get(&c->wc->rg, len, &w->base) || (len != w->n && !ranges_get(&c->wc->rg, len = w->n, &w->base))) {
		w->moved = old && old->len;
		w->old_base = have ? old->base : 0;
		w->old_len = have;
		w->len = len;
		return;
	}
	fail(c, -ENOSPC, "set %s: kxp_slot is full at slot %u", key, have);
	w->slot_failed = true;
	w->eff_n = have;
}

/* 2b. Slots of every set: rewrite what differs in place, or everything in
 * a new range (a failed slot ends its set there), then drop what is past
 * the end. */
static int phase_slots(struct apply_ctx *c)
{
	const struct kxp_desired *d = c->d;
	struct wq *q = &c->q;
	int err;

	wq_start(q, KXP_MAP_SLOT, sizeof(uint32_t), sizeof(uint32_t));
	for (size_t s = 0; s < d->n_sets; s++) {
		struct wset *w = &c->sets[s];
		struct slots *old;

		if (!w->used)
			continue;
		old = ht_get(&c->wc->slots, w->sp_id);
		if (old && old->n) {
			w->old_be = malloc(old->n * sizeof(*w->old_be));
			if (!w->old_be)
				return -ENOMEM;
			memcpy(w->old_be, old->be, old->n * sizeof(*w->old_be));
			w->n_old = old->n;
		}
		slots_place(c, w, old, d->sets[s].key ? d->sets[s].key : "?");
		if (w->moved || (!old && w->len)) {
			/* the mirror follows the set to its new range */
			if (!old && !(old = slots_of(c->wc, w->sp_id)))
				return -ENOMEM;
			old->base = w->base;
			old->len = w->len;
		}
		for (uint32_t i = 0; i < w->eff_n; i++) {
			uint32_t idx = w->base + i;

			if (!w->moved && old && i < old->n && old->be[i] == w->be[i])
				continue;
			if (wq_push(q, &idx, &w->be[i], (uint64_t)s << 32 | i))
				return -ENOMEM;
		}
	}
	err = wq_flush(c, q);
	if (err)
		return err;
	for (uint32_t j = 0; j < q->n; j++) {
		uint32_t s = (uint32_t)(q->tag[j] >> 32), i = (uint32_t)q->tag[j];
		struct wset *w = &c->sets[s];

		if (q->res[j]) {
			/* queued in slot order: the first failure of a set is its lowest */
			if (!w->slot_failed)
				fail(c, q->res[j], "set %s: kxp_slot is full at slot %u",
				     d->sets[s].key ? d->sets[s].key : "?", i);
			w->slot_failed = true;
			if (i < w->eff_n)
				w->eff_n = i;
			continue;
		}
		if (slots_set(c->wc, w->sp_id, i, w->be[i], w->eff_n))
			return -ENOMEM;
		c->st->slots_written++;
	}
	for (size_t s = 0; s < d->n_sets; s++) {
		struct wset *w = &c->sets[s];
		struct slots *old;

		if (!w->used)
			continue;
		old = ht_get(&c->wc->slots, w->sp_id);
		for (uint32_t i = w->eff_n; old && i < old->n; i++) {
			uint32_t idx = old->base + i;

			if (!old->be[i])
				continue;
			/* a moved set's new range is clean past eff_n: its old
			 * range is zeroed after the frontends moved */
			if (!w->moved) {
				err = del(c, KXP_MAP_SLOT, &idx);
				if (err)
					return err;
				c->st->slots_removed++;
			}
			slot_zero(c->wc, old, i);
		}
		if (old && old->n > w->eff_n)
			old->n = w->eff_n;
	}
	return 0;
}

/* Does a set need kxp_member4 entries? Only two things read them: UDP
 * re-balancing (lib/ct.h, lib/sock.h) and sessionAffinity (lib/affinity.h).
 * A TCP or SCTP set without affinity, most of a cluster's, has none: at
 * 10,000 Services x 10 endpoints that is 100,000 hash inserts fewer. A set
 * whose affinity is switched on gets its entries before its frontends say
 * so (frontends are written last); switched off, they go. */
static bool set_needs_members(const struct kxp_d_set *ds)
{
	return ds->affinity_timeout || (ds->n_be && ds->be[0].proto == IPPROTO_UDP);
}

/* 2c. Everything a set has besides its slots, after they were written:
 * membership of its backends now, if it needs any (then none for those that
 * left), its Maglev table, its name. */
static int phase_members(struct apply_ctx *c)
{
	const struct kxp_desired *d = c->d;
	struct wset *sets = c->sets;
	struct wq *q = &c->q;
	uint8_t one = 1;
	int err;

	wq_start(q, KXP_MAP_MEMBER, sizeof(struct kxp_member_key), sizeof(uint32_t));
	if (!c->only) {
		size_t nm = c->wc->member.n;

		for (size_t s = 0; s < d->n_sets; s++)
			nm += sets[s].used && set_needs_members(&d->sets[s]) ? sets[s].eff_n : 0;
		if (ht_reserve(&c->wc->member, nm))
			return -ENOMEM;
	}
	for (size_t s = 0; s < d->n_sets; s++)
		if (sets[s].used && set_needs_members(&d->sets[s]) &&
		    (err = members_queue(c, q, &sets[s], (uint32_t)s)))
			return err;
	err = wq_flush(c, q);
	if (err)
		return err;
	for (uint32_t j = 0; j < q->n; j++) {
		uint32_t s = (uint32_t)(q->tag[j] >> 32), i = (uint32_t)q->tag[j];

		if (q->res[j]) {
			fail(c, q->res[j], "set %s: kxp_member4 is full", d->sets[s].key ? d->sets[s].key : "?");
			continue;
		}
		if (!ht_put(&c->wc->member, member_k(sets[s].sp_id, sets[s].be[i]), &one))
			return -ENOMEM;
	}
	for (size_t s = 0; s < d->n_sets; s++)
		if (sets[s].used && (err = members_drop(c, &sets[s], set_needs_members(&d->sets[s]) ? sets[s].eff_n : 0,
						      sets[s].old_be, sets[s].n_old)))
			return err;
	return 0;
}

static int phase_maglev(struct apply_ctx *c)
{
	const struct kxp_desired *d = c->d;
	struct wq *q = &c->q;
	int err = 0;

	wq_start(q, KXP_MAP_MAGLEV, sizeof(uint32_t), sizeof(int));
	for (size_t s = 0; s <= d->n_sets; s++) {
		struct wset *w = &c->sets[s];

		/* Tables are switched in by chunks: each queued table holds an
		 * open fd until its flush (RLIMIT_NOFILE), and a chunk costs the
		 * kernel one wait for running programs. */
		if (s == d->n_sets || q->n == KXP_MG_CHUNK) {
			err = mg_flush(c, q, c->sets, d);
			if (err || s == d->n_sets)
				break;
			wq_start(q, KXP_MAP_MAGLEV, sizeof(uint32_t), sizeof(int));
		}
		if (!w->used)
			continue;
		if (d->sets[s].algo == KXP_ALGO_MAGLEV && w->eff_n)
			err = mg_prepare(c, q, w, (uint32_t)s, d->sets[s].key ? d->sets[s].key : "?");
		else
			err = mg_del(c, w->sp_id);
		if (err)
			return err;
	}
	return err;
}

static int phase_spname(struct apply_ctx *c)
{
	const struct kxp_desired *d = c->d;
	struct wset *sets = c->sets;
	struct wq *q = &c->q;
	int err;

	wq_start(q, KXP_MAP_SPNAME, sizeof(uint32_t), sizeof(struct kxp_spname));
	for (size_t s = 0; s < d->n_sets; s++) {
		struct kxp_spname n = {};
		const uint64_t *cur;

		if (!sets[s].used)
			continue;
		snprintf(n.key, sizeof(n.key), "%s", d->sets[s].key ? d->sets[s].key : "");
		cur = ht_get(&c->wc->spname, sets[s].sp_id);
		if ((!cur || *cur != fnv64(n.key)) && wq_push(q, &sets[s].sp_id, &n, s))
			return -ENOMEM;
	}
	err = wq_flush(c, q);
	if (err)
		return err;
	for (uint32_t j = 0; j < q->n; j++) {
		const struct kxp_spname *n = (const void *)(q->v + j * q->vsz);
		uint64_t h = fnv64(n->key);

		/* names only serve listings: one that did not fit is left out */
		if (!q->res[j] && !ht_put(&c->wc->spname, sets[q->tag[j]].sp_id, &h))
			return -ENOMEM;
	}
	return 0;
}

/* 3. Frontend ids, reverse NAT and cleared counters before the frontend exists. */
static int phase_fe_ids_revnat(struct apply_ctx *c)
{
	const struct kxp_desired *d = c->d;
	struct wq *q = &c->q, *q2 = &c->q2;
	uint8_t one = 1;
	char buf[96];
	int err;

	wq_start(q, KXP_MAP_REVNAT, sizeof(uint32_t), sizeof(struct kxp_revnat));
	wq_start(q2, KXP_MAP_STATS, sizeof(uint32_t), (size_t)c->stats_sz);
	for (size_t i = 0; i < d->n_fe; i++) {
		struct wfe *w = &c->fes[i];
		const struct kxp_d_frontend *f = w->d;
		const struct kxp_svc_val *cur;
		struct kxp_revnat rn = { .addr = f->addr, .port = htons(f->port), .proto = f->proto, .kind = f->kind };
		const struct kxp_revnat *crn;

		if (w->failed)
			continue;
		cur = ht_get(&c->wc->svc, svc_k(&w->key));
		if (cur) {
			w->val.fe_id = cur->fe_id;
		} else {
			w->is_new = true;
			w->val.fe_id = ids_alloc(c->fe_ids);
			if (!w->val.fe_id) {
				fail(c, -ENOSPC, "frontend %s (%s): no free frontend id", fe_str(&w->key, buf, sizeof(buf)),
				     f->svc ? f->svc : "?");
				w->failed = true;
				continue;
			}
			if (c->only && !ht_put(&c->fe_cand, w->val.fe_id, &one))
				return -ENOMEM;
		}
		if (f->set >= 0 && (size_t)f->set < d->n_sets && c->sets[f->set].used) {
			const struct kxp_d_set *ds = &d->sets[f->set];

			w->val.sp_id = c->sets[f->set].sp_id;
			w->val.count = (uint16_t)c->sets[f->set].eff_n;
			w->val.base = c->sets[f->set].base;
			w->val.algo = ds->algo;
			w->val.affinity_timeout = ds->affinity_timeout;
		}
		w->val.flags = f->flags;
		w->val.kind = f->kind;

		crn = ht_get(&c->wc->revnat, w->val.fe_id);
		if ((!crn || memcmp(crn, &rn, sizeof(rn))) && wq_push(q, &w->val.fe_id, &rn, i))
			return -ENOMEM;
		if (w->is_new && w->val.fe_id <= c->wc->fe_used_max && wq_push(q2, &w->val.fe_id, NULL, i))
			return -ENOMEM;
		if (w->is_new && w->val.fe_id > c->wc->fe_used_max)
			c->wc->fe_used_max = w->val.fe_id; /* its counters start at zero */
	}
	err = wq_flush(c, q);
	if (err)
		return err;
	for (uint32_t j = 0; j < q->n; j++) {
		uint32_t id = *(uint32_t *)(q->k + j * q->ksz);

		if (q->res[j]) {
			fail(c, q->res[j], "frontend %s: kxp_revnat4 is full",
			     fe_str(&c->fes[q->tag[j]].key, buf, sizeof(buf)));
			continue;
		}
		if (!ht_put(&c->wc->revnat, id, q->v + j * q->vsz))
			return -ENOMEM;
		c->st->revnat_written++;
	}
	err = wq_flush(c, q2);
	if (err)
		return err;
	for (uint32_t j = 0; j < q2->n; j++)
		if (q2->res[j]) {
			/* ids are below the map's size: this is not a full map */
			return -EINVAL;
		}
	return 0;
}

/* 3b. Source ranges before a frontend that enforces them appears. */
static int phase_lbsr(struct apply_ctx *c)
{
	const struct kxp_desired *d = c->d;
	struct wq *q = &c->q;
	char buf[96];
	int err;

	wq_start(q, KXP_MAP_LBSR, sizeof(struct kxp_lbsr_key), 1);
	for (size_t i = 0; i < d->n_fe; i++) {
		const struct kxp_d_frontend *f = c->fes[i].d;

		if (c->fes[i].failed || !f->lbsr)
			continue;
		for (size_t j = 0; j < f->n_lbsr; j++) {
			uint32_t mask = ntohl(f->lbsr[j].mask);
			unsigned plen = (unsigned)__builtin_popcount(mask);
			uint32_t addr = f->lbsr[j].addr & f->lbsr[j].mask;
			struct kxp_lbsr_key k = { .prefixlen = 32 + plen, .fe_id = c->fes[i].val.fe_id, .addr = addr };
			const uint64_t *cur = ht_get(&c->wc->lbsr, lbsr_k(k.fe_id, addr));
			const uint64_t *want = ht_get(&c->lbsr_want, lbsr_k(k.fe_id, addr));
			bool twice = want && (*want >> plen) & 1;
			uint8_t allow = 1;

			if (lbsr_add(&c->lbsr_want, k.fe_id, addr, plen))
				return -ENOMEM;
			if (twice || (cur && (*cur >> plen) & 1))
				continue;
			if (wq_push(q, &k, &allow, i))
				return -ENOMEM;
		}
	}
	err = wq_flush(c, q);
	if (err)
		return err;
	for (uint32_t j = 0; j < q->n; j++) {
		const struct kxp_lbsr_key *k = (const void *)(q->k + j * q->ksz);

		if (q->res[j]) {
			fail(c, q->res[j], "frontend %s: kxp_lbsr4 is full",
			     fe_str(&c->fes[q->tag[j]].key, buf, sizeof(buf)));
			continue;
		}
		if (lbsr_add(&c->wc->lbsr, k->fe_id, k->addr, k->prefixlen - 32))
			return -ENOMEM;
		c->st->lbsr_written++;
	}
	return 0;
}

/* 4. Frontends last: upsert (a switch to another set is one atomic update). */
static int phase_frontends(struct apply_ctx *c)
{
	const struct kxp_desired *d = c->d;
	struct wq *q = &c->q;
	uint8_t one = 1;
	char buf[96];
	int err;

	wq_start(q, KXP_MAP_SVC, sizeof(struct kxp_svc_key), sizeof(struct kxp_svc_val));
	for (size_t i = 0; i < d->n_fe; i++) {
		struct wfe *w = &c->fes[i];
		const struct kxp_svc_val *cur;

		if (w->failed)
			continue;
		cur = ht_get(&c->wc->svc, svc_k(&w->key));
		if (cur && cur->sp_id && cur->affinity_timeout && !w->val.affinity_timeout &&
		    !ht_put(&c->aff_off, cur->sp_id, &one))
			return -ENOMEM;
		if (cur && !memcmp(cur, &w->val, sizeof(w->val))) {
			if (!ht_put(&c->fe_live, w->val.fe_id, &one) || u64v_push(&c->new_keys, svc_k(&w->key)))
				return -ENOMEM;
			continue;
		}
		if (wq_push(q, &w->key, &w->val, i))
			return -ENOMEM;
	}
	err = wq_flush(c, q);
	if (err)
		return err;
	for (uint32_t j = 0; j < q->n; j++) {
		struct wfe *w = &c->fes[q->tag[j]];

		if (q->res[j]) {
			fail(c, q->res[j], "frontend %s (%s): kxp_svc4 is full", fe_str(&w->key, buf, sizeof(buf)),
			     w->d->svc ? w->d->svc : "?");
			w->failed = true;
			continue;
		}
		if (ht_get(&c->wc->svc, svc_k(&w->key)))
			c->st->fe_updated++;
		else
			c->st->fe_added++;
		if (!ht_put(&c->wc->svc, svc_k(&w->key), &w->val) || !ht_put(&c->fe_live, w->val.fe_id, &one) ||
		    u64v_push(&c->new_keys, svc_k(&w->key)))
			return -ENOMEM;
	}
	return 0;
}

/* Sets that moved (phase_slots): their frontends name the new range now;
 * the old one is zeroed and reused from the next apply on. */
static int phase_moved_ranges(struct apply_ctx *c)
{
	int err;

	for (size_t s = 0; s < c->d->n_sets; s++) {
		struct wset *w = &c->sets[s];

		if (!w->used || !w->moved)
			continue;
		for (uint32_t i = 0; i < w->n_old && i < w->old_len; i++) {
			uint32_t idx = w->old_base + i;

			if (!w->old_be[i])
				continue;
			err = del(c, KXP_MAP_SLOT, &idx);
			if (err)
				return err;
			c->st->slots_removed++;
		}
		if (ranges_free_later(&c->wc->rg, w->old_base, w->old_len))
			return -ENOMEM;
	}
	return 0;
}

static int phase_affinity(struct apply_ctx *c)
{
	return affinity_flush(c, &c->aff_off);
}

/* 5. Frontends that are gone (per service: of those it owned). */
static int phase_stale_frontends(struct apply_ctx *c)
{
	uint8_t one = 1;
	int err;

	for (size_t i = 0; i < (c->only ? c->old_keys.n : c->wc->svc.cap + 1); i++) {
		uint64_t key;
		const struct kxp_svc_val *v;
		const uint32_t *wi;

		if (c->only) {
			key = c->old_keys.v[i];
		} else {
			if (!ht_used(&c->wc->svc, i))
				continue;
			key = ht_key(&c->wc->svc, i);
		}
		v = ht_get(&c->wc->svc, key);
		if (!v)
			continue;
		wi = ht_get(&c->fe_want, key);
		if (wi && !c->fes[*wi].failed)
			continue;
		if (wi && ht_get(&c->fe_live, v->fe_id))
			continue;
		if (wi) {
			/* could not be rewritten (e.g. its set lost its id): keep the old entry */
			if (!ht_put(&c->fe_live, v->fe_id, &one) || u64v_push(&c->new_keys, key))
				return -ENOMEM;
			continue;
		}
		{
			struct kxp_svc_key k = svc_unk(key);

			err = del(c, KXP_MAP_SVC, &k);
		}
		if (err)
			return err;
		ht_del(&c->wc->svc, key);
		c->st->fe_removed++;
		if (!c->only)
			i--; /* backward shift may have moved an entry into slot i */
	}
	return 0;
}

/* The sp ids frontends name after 4 and 5 (per service: its frontends). */
static int sp_live_collect(struct apply_ctx *c, struct htab *sp_live)
{
	uint8_t one = 1;

	if (c->only) {
		for (size_t i = 0; i < c->new_keys.n; i++) {
			const struct kxp_svc_val *v = ht_get(&c->wc->svc, c->new_keys.v[i]);

			if (v && v->sp_id && !ht_put(sp_live, v->sp_id, &one))
				return -ENOMEM;
		}
	} else {
		ht_for_each(&c->wc->svc, i) {
			const struct kxp_svc_val *v = ht_val(&c->wc->svc, i);

			if (v->sp_id && !ht_put(sp_live, v->sp_id, &one))
				return -ENOMEM;
		}
	}
	return 0;
}

static int stale_sets_delete(struct apply_ctx *c, const struct htab *sp_live)
{
	struct htab *cand = c->only ? &c->sp_cand : &c->wc->slots;
	int err;

	for (size_t i = 0; i <= cand->cap; i++) {
		struct slots *s;
		uint32_t sp;

		if (!ht_used(cand, i))
			continue;
		sp = (uint32_t)ht_key(cand, i);
		if (ht_get(sp_live, sp) || (!c->only && ht_get(&c->sp2set, sp)))
			continue;
		s = ht_get(&c->wc->slots, sp);
		for (uint32_t j = 0; s && j < s->n; j++) {
			uint32_t k = s->base + j;

			if (!s->be[j])
				continue;
			err = del(c, KXP_MAP_SLOT, &k);
			if (!err)
				err = member_del(c, sp, s->be[j]);
			if (err)
				return err;
			slot_zero(c->wc, s, j);
			c->st->slots_removed++;
		}
		if (s) {
			if (ranges_free_later(&c->wc->rg, s->base, s->len))
				return -ENOMEM;
			free(s->be);
			ht_del(&c->wc->slots, sp);
		}
		if ((err = mg_del(c, sp)) || (err = spname_del(c, sp)))
			return err;
		/* no frontend names it and no set claims it: free (a full
		 * apply's allocations are all done by now) */
		ids_clear(c->sp_ids, sp);
		if (!c->only)
			i--;
	}
	return 0;
}

/* a full apply also drops tables and names of sets without slots */
static int stale_sets_orphans(struct apply_ctx *c, const struct htab *sp_live)
{
	struct u64v gone = {};
	int err = 0;

	ht_for_each(&c->wc->mg, i) if (!ht_get(sp_live, ht_key(&c->wc->mg, i)) &&
				       !ht_get(&c->sp2set, ht_key(&c->wc->mg, i)))
		err = err ? err : u64v_push(&gone, ht_key(&c->wc->mg, i));
	ht_for_each(&c->wc->spname, i) if (!ht_get(sp_live, ht_key(&c->wc->spname, i)) &&
					   !ht_get(&c->sp2set, ht_key(&c->wc->spname, i)))
		err = err ? err : u64v_push(&gone, ht_key(&c->wc->spname, i));
	for (size_t i = 0; i < gone.n && !err; i++)
		if (!(err = mg_del(c, (uint32_t)gone.v[i])))
			err = spname_del(c, (uint32_t)gone.v[i]);
	free(gone.v);
	return err;
}

/* 6. Slots of sets nothing points at any more. */
static int phase_stale_sets(struct apply_ctx *c)
{
	struct htab sp_live = { .vsize = 1 };
	int err = sp_live_collect(c, &sp_live);

	if (!err)
		err = stale_sets_delete(c, &sp_live);
	if (!err && !c->only)
		err = stale_sets_orphans(c, &sp_live);
	ht_free(&sp_live);
	return err;
}

/* 7, per service. */
static int stale_backends_service(struct apply_ctx *c)
{
	int err;

	/* backends shared with other Services stay: only those whose last
	 * slot went away in this apply are candidates */
	ht_for_each(&c->be_dropped, i) {
		uint32_t id = (uint32_t)ht_key(&c->be_dropped, i);
		const struct kxp_backend *bp = mbe_get(c->wc, id);
		struct kxp_backend b;
		const uint32_t *ai;

		if (!bp || mbe_refs(c->wc, id) || be_wanted(c->wc, id))
			continue;
		b = *bp;
		err = del(c, KXP_MAP_BACKEND, &id);
		if (err)
			return err;
		mbe_del(c->wc, id);
		ai = ht_get(&c->wc->be_addr, be_k(b.addr, b.port, b.proto));
		if (ai && *ai == id)
			ht_del(&c->wc->be_addr, be_k(b.addr, b.port, b.proto));
		ids_clear(c->be_ids, id);
		c->st->be_removed++;
	}
	return 0;
}

/* 7, full apply. */
static int stale_backends_full(struct apply_ctx *c)
{
	uint8_t one = 1;
	int err;

	/* a backend is live while a slot names it (the refs slots_set and
	 * slot_zero keep) or this apply wants it */
	for (uint32_t id = 1; id < c->wc->be_cap; id++) {
		const struct kxp_backend *bp = mbe_get(c->wc, id);
		const uint32_t *ai;
		struct kxp_backend b;

		if (!bp || c->wc->be[id].ref || be_wanted(c->wc, id))
			continue;
		b = *bp;
		err = del(c, KXP_MAP_BACKEND, &id);
		if (err)
			return err;
		mbe_del(c->wc, id);
		ids_clear(c->be_ids, id);
		ai = ht_get(&c->wc->be_addr, be_k(b.addr, b.port, b.proto));
		if (ai && *ai == id)
			ht_del(&c->wc->be_addr, be_k(b.addr, b.port, b.proto));
		c->st->be_removed++;
	}
	ht_for_each(&c->wc->svc, i) {
		if (!ht_put(&c->fe_live, ((struct kxp_svc_val *)ht_val(&c->wc->svc, i))->fe_id, &one))
			return -ENOMEM;
	}
	return 0;
}

/* 7. Backends no set uses and reverse NAT of frontends that are gone. */
static int phase_stale_backends(struct apply_ctx *c)
{
	return c->only ? stale_backends_service(c) : stale_backends_full(c);
}

/* 7, continued: reverse NAT of frontends that are gone, and their ids. */
static int phase_stale_revnat(struct apply_ctx *c)
{
	struct htab *cand = c->only ? &c->fe_cand : &c->wc->revnat;
	int err;

	for (size_t i = 0; i <= cand->cap; i++) {
		uint32_t id;
		bool had;

		if (!ht_used(cand, i))
			continue;
		id = (uint32_t)ht_key(cand, i);
		if (ht_get(&c->fe_live, id))
			continue;
		had = ht_get(&c->wc->revnat, id) != NULL;
		if (had) {
			err = del(c, KXP_MAP_REVNAT, &id);
			if (err)
				return err;
			ht_del(&c->wc->revnat, id);
			c->st->revnat_removed++;
		}
		ids_clear(c->fe_ids, id);
		if (!c->only)
			i--;
	}
	return 0;
}

/* Source ranges no frontend asks for any more (per service: of its
 * frontends; the walk is over the source-range mirror, which is small). */
static int phase_stale_lbsr(struct apply_ctx *c)
{
	int err;

	for (size_t i = 0; i <= c->wc->lbsr.cap; i++) {
		uint64_t *m, key;
		const uint64_t *w;

		if (!ht_used(&c->wc->lbsr, i))
			continue;
		key = ht_key(&c->wc->lbsr, i);
		if (c->only && !ht_get(&c->fe_cand, key >> 32))
			continue;
		m = ht_val(&c->wc->lbsr, i);
		w = ht_get(&c->lbsr_want, key);
		for (unsigned p = 0; p <= 32; p++) {
			struct kxp_lbsr_key k = { .prefixlen = 32 + p, .fe_id = (uint32_t)(key >> 32), .addr = (uint32_t)key };

			if (!((*m >> p) & 1) || (w && (*w >> p) & 1))
				continue;
			err = del(c, KXP_MAP_LBSR, &k);
			if (err)
				return err;
			*m &= ~(1ULL << p);
			c->st->lbsr_removed++;
		}
		if (!*m) {
			ht_del(&c->wc->lbsr, key);
			i--;
		}
	}
	return 0;
}

/* 8. Node addresses that are gone. */
static int phase_stale_nodeips(struct apply_ctx *c)
{
	return c->only ? 0 : delete_stale_nodeips(c, c->d);
}

/* Owners: a full apply assigns every entry it wrote or kept; a
 * per-service apply replaces that Service's list. */
static int phase_owners(struct apply_ctx *c)
{
	if (c->only) {
		struct owner *o = &c->wc->owners[c->own];

		for (size_t i = 0; i < o->n; i++) {
			const uint32_t *cur = ht_get(&c->wc->fe_owner, o->keys[i]);

			if (cur && (long)*cur == c->own)
				ht_del(&c->wc->fe_owner, o->keys[i]);
		}
		o->n = 0;
		for (size_t i = 0; i < c->new_keys.n; i++)
			if (owner_add_key(c->wc, (uint32_t)c->own, c->new_keys.v[i]))
				return -ENOMEM;
	} else {
		owners_reset(c->wc);
		for (size_t i = 0; i < c->new_keys.n; i++) {
			const uint32_t *wi = ht_get(&c->fe_want, c->new_keys.v[i]);
			const char *name = wi && c->fes[*wi].d->svc ? c->fes[*wi].d->svc : "";
			long o = owner_find(c->wc, name, true);

			if (o < 0 || owner_add_key(c->wc, (uint32_t)o, c->new_keys.v[i])) {
				owners_reset(c->wc);
				break; /* per-service applies then ask for another full one */
			}
		}
		if (c->wc->n_owners || !c->new_keys.n)
			c->wc->owners_ok = true;
		/* ids stay exact (ids_rebuild above, allocations, the deletions'
		 * ids_clear): the next per-service apply needs no O(N) recount,
		 * which was the slowest of 100 single changes at 30,000 Services */
	}
	return 0;
}

/* In this order: backends are written before the slots that name them,
 * slots before the frontends that point at them, deletions after. */
static int (*const apply_phases[])(struct apply_ctx *c) = {
	phase_alloc,
	phase_fe_keys,
	phase_sp_ids,
	phase_config,
	phase_backends,
	phase_set_backends,
	phase_shrink,
	phase_slots,
	phase_members,
	phase_maglev,
	phase_spname,
	phase_fe_ids_revnat,
	phase_lbsr,
	phase_frontends,
	phase_moved_ranges,
	phase_affinity,
	phase_stale_frontends,
	phase_stale_sets,
	phase_stale_backends,
	phase_stale_revnat,
	phase_stale_lbsr,
	phase_stale_nodeips,
	phase_owners,
};

static void apply_ctx_free(struct apply_ctx *c)
{
	if (c->wc)
		c->wc->be_dropped = NULL;
	if (c->sets)
		for (size_t s = 0; s < c->d->n_sets; s++) {
			free(c->sets[s].be);
			free(c->sets[s].old_be);
			if (c->sets[s].mg_fd >= 0)
				close(c->sets[s].mg_fd);
		}
	wq_free(&c->q);
	wq_free(&c->q2);
	free(c->sets);
	free(c->fes);
	free(c->old_keys.v);
	free(c->new_keys.v);
	ht_free(&c->sp2set);
	ht_free(&c->fe_want);
	ht_free(&c->fe_live);
	ht_free(&c->lbsr_want);
	ht_free(&c->be_dropped);
	ht_free(&c->fe_cand);
	ht_free(&c->sp_cand);
	ht_free(&c->aff_off);
}

static int apply(struct kxp_dp *dp, const struct kxp_desired *d, struct kxp_apply_stats *st_out, const char *only)
{
	struct kxp_apply_stats st_local;
	struct apply_ctx c = {
		.dp = dp,
		.d = d,
		.only = only,
		.own = -1,
		.stats_sz = stats_vsz(),
		.sp2set = { .vsize = sizeof(uint32_t) },
		.fe_want = { .vsize = sizeof(uint32_t) },
		.fe_live = { .vsize = 1 },
		.lbsr_want = { .vsize = sizeof(uint64_t) },
		.be_dropped = { .vsize = 1 },
		.fe_cand = { .vsize = 1 },
		.sp_cand = { .vsize = 1 },
		.aff_off = { .vsize = 1 },
	};
	int err;

	c.st = st_out ? st_out : &st_local;
	memset(c.st, 0, sizeof(*c.st));
	if (!dp || !d)
		return -EINVAL;
	if (c.stats_sz < 0)
		return (int)c.stats_sz;
	/* A full apply writes in batches; a per-service one entry by entry (its
	 * few writes gain nothing, and each stays where it was in the order). */
	c.batch = !only;
	if (!dp->wc) {
		err = wcache_load(dp, &dp->wc);
		if (err)
			return err;
	}
	c.wc = dp->wc;
	/* before any entry they cover (hint.c); failing, they are switched off */
	kxp_dp_hints_apply(dp, d, !only);
	c.fe_ids = &c.wc->fe_ids;
	c.sp_ids = &c.wc->sp_ids;
	c.be_ids = &c.wc->be_ids;
	/* what earlier applies freed of kxp_slot: no packet reads it any more */
	if (ranges_release(&c.wc->rg))
		return -ENOMEM;

	err = apply_scope(&c);
	if (err == -ESTALE)
		return err; /* nothing held yet, and the mirror stays */
	for (size_t i = 0; !err && i < sizeof(apply_phases) / sizeof(apply_phases[0]); i++)
		err = apply_phases[i](&c);

	apply_ctx_free(&c);
	if (err && err != -ENOSPC) {
		/* the mirror may now disagree with the maps: rebuild it next time */
		kxp_wcache_free(dp->wc);
		dp->wc = NULL;
		return err;
	}
	if (c.err == -EEXIST && c.st->n_failed == c.st->conflicts)
		return -EEXIST;
	return c.err ? -ENOSPC : 0;
}

int kxp_dp_apply(struct kxp_dp *dp, const struct kxp_desired *d, struct kxp_apply_stats *st)
{
	return apply(dp, d, st, NULL);
}

int kxp_dp_apply_service(struct kxp_dp *dp, const char *svc, const struct kxp_desired *d,
			 struct kxp_apply_stats *st)
{
	if (!svc)
		return -EINVAL;
	return apply(dp, d, st, svc);
}
