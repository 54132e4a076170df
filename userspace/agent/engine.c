/* Programming engine of the agent (see engine.h). The store holds the
 * objects; per Service we remember the frontend keys it asked for, so a
 * change that could move a contested frontend between Services falls back
 * to a full build (the model decides conflicts by name), and everything
 * else is built and applied for that one Service. */
#include "agent/engine.h"

#include <errno.h>
#include <inttypes.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>

#include "lib/ip.h"
#include "model/incremental.h"

struct kxp_engine_svc {
	uint64_t *keys;      /* frontend keys the last build asked for */
	size_t n, cap;
	char *ns, *name;
	uint16_t hc_port;    /* healthCheckNodePort when needed, else 0 */
	uint32_t local_ready;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void esvc_free(struct kxp_engine_svc *s)
{
	if (!s)
		return;
	free(s->keys);
	free(s->ns);
	free(s->name);
	free(s);
}

int kxp_engine_init(struct kxp_engine *e, struct kxp_dp *dp, const struct kxp_node_cfg *cfg)
{
	memset(e, 0, sizeof(*e));
	e->dp = dp;
	e->cfg = *cfg;
	snprintf(e->node_name, sizeof(e->node_name), "%s", cfg->node_name ? cfg->node_name : "");
	e->cfg.node_name = e->node_name;
	e->n_flag_ips = cfg->n_node_ips;
	memcpy(e->flag_ips, cfg->node_ips, sizeof(e->flag_ips));
	e->need_full = true;
	/* nothing is programmed yet: healthz counts from the start */
	e->pending_since_ns = mono_ns();
	e->st.node_eligible = true;
	return kxp_store_init(&e->store, e->node_name);
}

void kxp_engine_free(struct kxp_engine *e)
{
	strmap_for_each(&e->dirty, x) free(x->val);
	strmap_for_each(&e->svcs, x) esvc_free(x->val);
	strmap_free(&e->dirty);
	strmap_free(&e->svcs);
	strmap_free(&e->fe_count);
	kxp_store_free(&e->store);
	kxp_diags_free(&e->diags);
}

bool kxp_engine_gated(const struct kxp_engine *e)
{
	return !e->synced[KXP_K8S_SERVICE] || !e->synced[KXP_K8S_SLICE];
}

bool kxp_engine_node_eligible(const struct kxp_engine *e)
{
	const struct k8s_node *n = e->store.node;

	return !n || (!n->deleting && !n->tbd_taint);
}

static int mark_dirty(struct kxp_engine *e, const char *key, uint64_t received)
{
	uint64_t *t = strmap_get(&e->dirty, key);

	if (!received)
		received = mono_ns();
	if (!e->pending_since_ns || received < e->pending_since_ns)
		e->pending_since_ns = received;
	if (t) {
		if (received < *t)
			*t = received;
		return 0;
	}
	t = malloc(sizeof(*t));
	if (!t)
		return -ENOMEM;
	*t = received;
	if (strmap_put(&e->dirty, key, t, NULL)) {
		free(t);
		return -ENOMEM;
	}
	return 0;
}

int kxp_engine_event(struct kxp_engine *e, const struct kxp_k8s_event *ev)
{
	struct kxp_store_change ch;
	int r;

	if (ev->what == KXP_EV_SYNCED) {
		/* a (re)list is complete: reconcile everything once */
		if (ev->kind < KXP_K8S__KINDS)
			e->synced[ev->kind] = true;
		e->need_full = true;
		if (!e->pending_since_ns)
			e->pending_since_ns = ev->received_ns ? ev->received_ns : mono_ns();
		return 0;
	}
	if (ev->what != KXP_EV_OBJECT || !ev->obj)
		return 0;
	e->st.events++;
	r = kxp_store_apply(&e->store, ev->kind, ev->type, ev->obj, &ch, &e->diags);
	if (r == -EINVAL) {
		e->st.bad_objects++;
		return r;
	}
	if (r)
		return r;
	/* during the first lists slices may come before their Service: only
	 * report one that names a Service the complete lists do not have */
	if (ch.unknown_svc && !kxp_engine_gated(e)) {
		const cJSON *md = cJSON_GetObjectItemCaseSensitive(ev->obj, "metadata");
		const cJSON *ns = cJSON_GetObjectItemCaseSensitive(md, "namespace");
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(md, "name");

		kxp_diags_add(&e->diags, "EndpointSlice", cJSON_IsString(ns) ? ns->valuestring : "",
			      cJSON_IsString(name) ? name->valuestring : "?", "metadata.labels[kubernetes.io/service-name]",
			      "Service %s is unknown; not programmed until it appears",
			      ch.svc[1][0] ? ch.svc[1] : ch.svc[0]);
	}
	for (int i = 0; i < 2; i++)
		if (ch.svc[i][0] && (r = mark_dirty(e, ch.svc[i], ev->received_ns)))
			return r;
	if (ch.node_changed) {
		/* zone (topology), addresses (NodePorts) or eligibility: all Services */
		e->need_full = true;
		if (!e->pending_since_ns)
			e->pending_since_ns = ev->received_ns ? ev->received_ns : mono_ns();
	}
	return 0;
}

void kxp_engine_set_nl_ips(struct kxp_engine *e, const uint32_t *ips, size_t n)
{
	if (n > 16)
		n = 16;
	if (n == e->n_nl_ips && !memcmp(ips, e->nl_ips, n * sizeof(*ips)))
		return;
	memcpy(e->nl_ips, ips, n * sizeof(*ips));
	e->n_nl_ips = n;
	if (!e->n_flag_ips) {
		e->need_full = true;
		if (!e->pending_since_ns)
			e->pending_since_ns = mono_ns();
	}
}

/* --node-ip, else the Node's InternalIPs (the first is the primary), then
 * the namespace's other addresses (all are node-local sources). */
static void resolve_ips(struct kxp_engine *e)
{
	struct kxp_node_cfg *c = &e->cfg;
	const struct k8s_node *n = e->store.node;

	c->n_node_ips = 0;
	if (e->n_flag_ips) {
		memcpy(c->node_ips, e->flag_ips, sizeof(c->node_ips));
		c->n_node_ips = e->n_flag_ips;
		return;
	}
	for (size_t i = 0; n && i < n->n_internal_ips && c->n_node_ips < 16; i++)
		c->node_ips[c->n_node_ips++] = n->internal_ips[i];
	for (size_t i = 0; i < e->n_nl_ips && c->n_node_ips < 16; i++) {
		size_t k;

		for (k = 0; k < c->n_node_ips; k++)
			if (c->node_ips[k] == e->nl_ips[i])
				break;
		if (k == c->n_node_ips)
			c->node_ips[c->n_node_ips++] = e->nl_ips[i];
	}
}

size_t kxp_engine_node_ips(const struct kxp_engine *e, uint32_t *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < e->cfg.n_node_ips && n < max; i++) {
		bool take;

		if (e->cfg.nodeport_primary)
			take = i == 0;
		else if (!e->cfg.n_nodeport)
			return 0; /* unrestricted: all addresses */
		else {
			take = false;
			for (size_t k = 0; k < e->cfg.n_nodeport; k++)
				take |= kxp_cidr4_contains(&e->cfg.nodeport[k], e->cfg.node_ips[i]);
		}
		if (take)
			out[n++] = e->cfg.node_ips[i];
	}
	return n;
}

static void fe_hex(uint64_t k, char buf[17])
{
	snprintf(buf, 17, "%016" PRIx64, k);
}

static uint64_t fe_key(const struct kxp_d_frontend *f)
{
	struct kxp_svc_key k = { .addr = f->addr, .port = htons(f->port), .proto = f->proto, .scope = f->scope };
	uint64_t v;

	memcpy(&v, &k, sizeof(v));
	return v;
}

static uintptr_t count_get(struct kxp_engine *e, uint64_t k)
{
	char h[17];

	fe_hex(k, h);
	return (uintptr_t)strmap_get(&e->fe_count, h);
}

static int count_add(struct kxp_engine *e, uint64_t k, int d)
{
	char h[17];
	uintptr_t c;

	fe_hex(k, h);
	c = (uintptr_t)strmap_get(&e->fe_count, h) + (uintptr_t)(intptr_t)d;
	if (!c) {
		strmap_del(&e->fe_count, h);
		return 0;
	}
	return strmap_put(&e->fe_count, h, (void *)c, NULL);
}

static bool has_key(const uint64_t *v, size_t n, uint64_t k)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == k)
			return true;
	return false;
}

static int build_one(struct kxp_engine *e, const char *key, struct kxp_desired *d)
{
	const struct k8s_service *svc = kxp_store_service(&e->store, key);
	const struct kxp_store_group *g = kxp_store_slices(&e->store, key);

	return kxp_model_build_service(svc, g ? g->v : NULL, g ? g->n : 0, e->store.node, &e->cfg, d, &e->diags);
}

static bool needs_hc(const struct k8s_service *s)
{
	/* H.39: LoadBalancer with eTP=Local, proxied (A.1-A.3) */
	return s && s->type == K8S_SVC_LOADBALANCER && s->etp_local && s->health_check_node_port && !s->proxy_name &&
	       !s->headless_label && !s->headless && s->n_cluster_ips;
}

/* The health check a Service wants (after its keys changed). */
static void remember_hc(struct kxp_engine *e, struct kxp_engine_svc *s, const struct k8s_service *svc,
			const struct kxp_store_group *g, uint16_t old_hc, uint32_t old_local)
{
	s->hc_port = needs_hc(svc) ? svc->health_check_node_port : 0;
	s->local_ready = s->hc_port ? (uint32_t)kxp_model_local_ready(svc, g ? g->v : NULL, g ? g->n : 0, e->node_name) : 0;
	if (s->hc_port != old_hc || s->local_ready != old_local)
		e->hc_changed = true;
}

/* The bookkeeping of a Service in the store, created empty if new. */
static struct kxp_engine_svc *esvc_get(struct kxp_engine *e, const char *key, const struct k8s_service *svc)
{
	struct kxp_engine_svc *s = strmap_get(&e->svcs, key);

	if (s)
		return s;
	s = calloc(1, sizeof(*s));
	if (!s || !(s->ns = strdup(svc->ns)) || !(s->name = strdup(svc->name)) || strmap_put(&e->svcs, key, s, NULL)) {
		esvc_free(s);
		return NULL;
	}
	return s;
}

static int esvc_add_key(struct kxp_engine_svc *s, uint64_t k)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 2;
		uint64_t *v = realloc(s->keys, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->keys = v;
		s->cap = cap;
	}
	s->keys[s->n++] = k;
	return 0;
}

/* Remember what a build of key asked for (keys, health check); d NULL or
 * empty with no Service: forget it. */
static int remember(struct kxp_engine *e, const char *key, const struct kxp_desired *d)
{
	const struct k8s_service *svc = kxp_store_service(&e->store, key);
	const struct kxp_store_group *g = kxp_store_slices(&e->store, key);
	struct kxp_engine_svc *s = strmap_get(&e->svcs, key), *old;
	uint16_t old_hc = s ? s->hc_port : 0;
	uint32_t old_local = s ? s->local_ready : 0;

	if (s) {
		for (size_t i = 0; i < s->n; i++)
			count_add(e, s->keys[i], -1);
		e->total_fe -= s->n;
		s->n = 0;
	}
	if (!svc) {
		old = strmap_del(&e->svcs, key);
		if (old_hc)
			e->hc_changed = true;
		esvc_free(old);
		return 0;
	}
	if (!s && !(s = esvc_get(e, key, svc)))
		return -ENOMEM;
	for (size_t i = 0; d && i < d->n_fe; i++) {
		if (esvc_add_key(s, fe_key(&d->fe[i])) || count_add(e, s->keys[s->n - 1], 1))
			return -ENOMEM;
	}
	e->total_fe += s->n;
	remember_hc(e, s, svc, g, old_hc, old_local);
	return 0;
}

/* After a full build: what each Service asks for, from that build (its
 * frontends, and those another Service won: d->dropped) rather than by
 * building every Service again on its own (10,000 builds, ~30 ms at
 * 10,000 Services). The same keys: a Service's own build applies the same
 * rules and drops only its own duplicates, which the full build does not
 * list. Every Service of the store gets an entry, also one without any. */
static int remember_all(struct kxp_engine *e, const struct kxp_desired *d)
{
	strmap_for_each(&e->store.svcs, x)
	{
		struct kxp_engine_svc *s = esvc_get(e, x->key, x->val);

		if (!s)
			return -ENOMEM;
		s->n = 0;
	}
	for (size_t i = 0; i < d->n_fe + d->n_dropped; i++) {
		const struct kxp_d_frontend *f = i < d->n_fe ? &d->fe[i] : &d->dropped[i - d->n_fe];
		struct kxp_engine_svc *s = f->svc ? strmap_get(&e->svcs, f->svc) : NULL;

		if (s && esvc_add_key(s, fe_key(f)))
			return -ENOMEM;
	}
	strmap_for_each(&e->svcs, x)
	{
		struct kxp_engine_svc *s = x->val;
		uint16_t old_hc = s->hc_port;
		uint32_t old_local = s->local_ready;

		for (size_t i = 0; i < s->n; i++)
			if (count_add(e, s->keys[i], 1))
				return -ENOMEM;
		e->total_fe += s->n;
		remember_hc(e, s, kxp_store_service(&e->store, x->key), kxp_store_slices(&e->store, x->key), old_hc,
			    old_local);
	}
	return 0;
}

static void observe_latency(struct kxp_engine *e, const char *key)
{
	uint64_t *t = strmap_del(&e->dirty, key);

	if (!t)
		return;
	kxp_hist_observe(&e->st.latency, (double)(mono_ns() - *t) / 1e9);
	free(t);
}

static void note_apply(struct kxp_engine *e, int r, const struct kxp_apply_stats *st)
{
	e->last_apply = *st;
	if (r && r != -ENOSPC && r != -EEXIST)
		e->st.sync_errors++;
	for (uint32_t i = 0; i < st->n_failed && i < 8; i++)
		kxp_diags_add(&e->diags, "map", "", "", "", "not written: %s", st->failed[i]);
}

static int program_full(struct kxp_engine *e)
{
	struct kxp_objects view;
	struct kxp_desired d = {};
	struct kxp_apply_stats st;
	uint64_t t0 = mono_ns();
	int r;

	r = kxp_store_view(&e->store, &view);
	if (r)
		return r;
	r = kxp_model_build(&view, &e->cfg, &d, &e->diags);
	kxp_store_view_free(&view);
	if (r)
		return r;
	r = kxp_dp_apply(e->dp, &d, &st);
	note_apply(e, r, &st);
	if (r && r != -ENOSPC) {
		kxp_desired_free(&d);
		snprintf(e->last_error, sizeof(e->last_error), "full apply: %s", strerror(-r));
		return r;
	}
	/* what each Service asks for, conflicts included (for the next
	 * per-Service changes), and the health checks */
	strmap_for_each(&e->svcs, x)
	{
		struct kxp_engine_svc *s = x->val;

		e->total_fe -= s->n;
		for (size_t i = 0; i < s->n; i++)
			count_add(e, s->keys[i], -1);
		s->n = 0;
		if (!kxp_store_service(&e->store, x->key))
			s->hc_port = 0; /* gone: dropped below */
	}
	{
		/* Services gone from the store */
		char **gone = NULL;
		size_t n_gone = 0;

		strmap_for_each(&e->svcs, x) if (!kxp_store_service(&e->store, x->key))
		{
			char **v = realloc(gone, (n_gone + 1) * sizeof(*v));

			if (!v)
				break;
			gone = v;
			gone[n_gone++] = x->key;
		}
		for (size_t i = 0; i < n_gone; i++) {
			esvc_free(strmap_del(&e->svcs, gone[i]));
			e->hc_changed = true;
		}
		free(gone);
	}
	r = remember_all(e, &d);
	kxp_desired_free(&d);
	if (r)
		return r;
	strmap_for_each(&e->dirty, x)
	{
		kxp_hist_observe(&e->st.latency, (double)(mono_ns() - *(uint64_t *)x->val) / 1e9);
		free(x->val);
	}
	strmap_free(&e->dirty);
	e->need_full = false;
	e->programmed = true;
	e->st.full_syncs++;
	kxp_hist_observe(&e->st.sync_full, (double)(mono_ns() - t0) / 1e9);
#ifdef __GLIBC__
	/* A full build frees the model, the writer's work tables and (after the
	 * lists) every decoded event: give the free pages back, or glibc keeps
	 * them as RSS (after the timing above: not programming work). */
	malloc_trim(0);
#endif
	return st.n_failed ? -ENOSPC : 0;
}

/* One Service; *full set when only a full build can decide. */
static int program_one(struct kxp_engine *e, const char *key, bool *full)
{
	struct kxp_engine_svc *s = strmap_get(&e->svcs, key);
	struct kxp_desired d = {};
	struct kxp_apply_stats st;
	uint64_t t0 = mono_ns();
	int r;

	r = build_one(e, key, &d);
	if (r)
		return r;
	/* a frontend another Service also asks for: the model's rule (first by
	 * name) needs every claimant, so let the full build decide */
	for (size_t i = 0; i < d.n_fe && !*full; i++) {
		uint64_t k = fe_key(&d.fe[i]);
		uintptr_t c = count_get(e, k) - (s && has_key(s->keys, s->n, k) ? 1 : 0);

		*full = c > 0;
	}
	for (size_t i = 0; s && i < s->n && !*full; i++)
		*full = count_get(e, s->keys[i]) > 1;
	if (*full) {
		e->st.conflicts++;
		kxp_desired_free(&d);
		return 0;
	}
	r = kxp_dp_apply_service(e->dp, key, &d, &st);
	note_apply(e, r, &st);
	if (r == -ESTALE || r == -EEXIST) {
		*full = true;
		kxp_desired_free(&d);
		return 0;
	}
	if (r && r != -ENOSPC) {
		snprintf(e->last_error, sizeof(e->last_error), "Service %s: %s", key, strerror(-r));
		kxp_desired_free(&d);
		return r;
	}
	r = remember(e, key, &d) ?: r;
	kxp_desired_free(&d);
	observe_latency(e, key);
	e->st.partial_syncs++;
	kxp_hist_observe(&e->st.sync_partial, (double)(mono_ns() - t0) / 1e9);
	return r;
}

int kxp_engine_program(struct kxp_engine *e)
{
	bool full = false;
	int r = 0, first = 0;

	if (kxp_engine_gated(e))
		return 0;
	resolve_ips(e);
	if (!e->need_full && e->programmed) {
		char **keys = NULL;
		size_t n = 0, i = 0;

		if (!e->dirty.n)
			goto done;
		keys = calloc(e->dirty.n, sizeof(*keys));
		if (!keys)
			return -ENOMEM;
		strmap_for_each(&e->dirty, x) keys[n++] = strdup(x->key);
		for (i = 0; i < n && !full; i++) {
			if (!keys[i]) {
				r = -ENOMEM;
				break;
			}
			r = program_one(e, keys[i], &full);
			if (r && r != -ENOSPC)
				break;
			if (r && !first)
				first = r;
			r = 0;
		}
		for (i = 0; i < n; i++)
			free(keys[i]);
		free(keys);
		if (r)
			return r;
		if (full)
			e->need_full = true;
	}
	if (e->need_full || !e->programmed) {
		r = program_full(e);
		if (r && r != -ENOSPC)
			return r;
		if (r)
			first = r;
	}
done:
	if (!e->dirty.n) {
		e->pending_since_ns = 0;
		e->st.last_updated_ns = real_ns();
	}
	e->st.synced = true;
	return first;
}

int kxp_engine_hc_wants(struct kxp_engine *e, struct kxp_hc_want **v, size_t *n)
{
	size_t k = 0;

	*v = calloc(e->svcs.n + 1, sizeof(**v));
	if (!*v)
		return -ENOMEM;
	strmap_for_each(&e->svcs, x)
	{
		const struct kxp_engine_svc *s = x->val;

		if (!s->hc_port)
			continue;
		(*v)[k++] = (struct kxp_hc_want){ .ns = s->ns, .name = s->name, .port = s->hc_port,
						  .local_endpoints = s->local_ready };
	}
	*n = k;
	e->hc_changed = false;
	return 0;
}

void kxp_engine_gauges(struct kxp_engine *e)
{
	/* kept by the store: this runs after every event, a walk of every
	 * slice took ~2 ms at 50,000 Services */
	e->st.services = e->store.svcs.n;
	e->st.endpoints = e->store.n_eps;
	e->st.frontends = e->total_fe;
	e->st.node_eligible = kxp_engine_node_eligible(e);
	e->st.pending_since_ns = e->pending_since_ns;
}
