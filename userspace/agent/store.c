/* Object store of the agent (see store.h): decoded objects by key, slices
 * grouped by the Service they name, the Node. */
#include "agent/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/decode.h"

int kxp_store_init(struct kxp_store *s, const char *node_name)
{
	memset(s, 0, sizeof(*s));
	s->node_name = strdup(node_name ? node_name : "");
	return s->node_name ? 0 : -ENOMEM;
}

static void svc_free(struct k8s_service *v)
{
	k8s_service_free(v);
	free(v);
}

static void slice_free(struct k8s_endpointslice *v)
{
	k8s_endpointslice_free(v);
	free(v);
}

void kxp_store_free(struct kxp_store *s)
{
	strmap_for_each(&s->svcs, e) svc_free(e->val);
	strmap_for_each(&s->slices, e) slice_free(e->val);
	strmap_for_each(&s->groups, e)
	{
		struct kxp_store_group *g = e->val;

		free(g->v);
		free(g);
	}
	strmap_free(&s->svcs);
	strmap_free(&s->slices);
	strmap_free(&s->groups);
	if (s->node) {
		k8s_node_free(s->node);
		free(s->node);
	}
	free(s->node_name);
	memset(s, 0, sizeof(*s));
}

const struct k8s_service *kxp_store_service(const struct kxp_store *s, const char *key)
{
	return strmap_get(&s->svcs, key);
}

const struct kxp_store_group *kxp_store_slices(const struct kxp_store *s, const char *key)
{
	return strmap_get(&s->groups, key);
}

/* metadata.namespace/name of any object (also when it does not decode). */
static int obj_key(const cJSON *obj, char *buf, size_t len, bool namespaced)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *ns = cJSON_GetObjectItemCaseSensitive(md, "namespace");
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(md, "name");

	if (!cJSON_IsString(name) || !*name->valuestring || (namespaced && !cJSON_IsString(ns)))
		return -EINVAL;
	if (namespaced)
		snprintf(buf, len, "%s/%s", ns->valuestring, name->valuestring);
	else
		snprintf(buf, len, "%s", name->valuestring);
	return 0;
}

static void set_svc(struct kxp_store_change *ch, const char *key)
{
	if (!ch->svc[0][0])
		snprintf(ch->svc[0], sizeof(ch->svc[0]), "%s", key);
	else if (strcmp(ch->svc[0], key))
		snprintf(ch->svc[1], sizeof(ch->svc[1]), "%s", key);
}

static int apply_service(struct kxp_store *s, enum k8s_watch_type type, const cJSON *obj, const char *key,
			 struct kxp_store_change *ch, struct kxp_diags *diags)
{
	struct k8s_service *v, *old;
	int r;

	if (type == K8S_WATCH_DELETED) {
		old = strmap_del(&s->svcs, key);
		if (old) {
			svc_free(old);
			set_svc(ch, key);
		}
		return 0;
	}
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	r = k8s_decode_service(obj, v, diags);
	if (r) {
		free(v);
		return r;
	}
	if (v->n_ports > KXP_STORE_MAX_SVC_PORTS) {
		kxp_diags_add(diags, "Service", v->ns, v->name, "spec.ports", "%zu ports, more than %d; ignored",
			      v->n_ports, KXP_STORE_MAX_SVC_PORTS);
		svc_free(v);
		return -EINVAL;
	}
	r = strmap_put(&s->svcs, key, v, (void **)&old);
	if (r) {
		svc_free(v);
		return r;
	}
	if (old)
		svc_free(old);
	set_svc(ch, key);
	return 0;
}

static int group_add(struct kxp_store *s, const char *gkey, const struct k8s_endpointslice *sl)
{
	struct kxp_store_group *g = strmap_get(&s->groups, gkey);

	if (!g) {
		g = calloc(1, sizeof(*g));
		if (!g || strmap_put(&s->groups, gkey, g, NULL)) {
			free(g);
			return -ENOMEM;
		}
	}
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 4;
		const struct k8s_endpointslice **v = realloc(g->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		g->v = v;
		g->cap = cap;
	}
	g->v[g->n++] = sl;
	return 0;
}

static void group_del(struct kxp_store *s, const char *gkey, const struct k8s_endpointslice *sl)
{
	struct kxp_store_group *g = strmap_get(&s->groups, gkey);

	if (!g)
		return;
	for (size_t i = 0; i < g->n; i++) {
		if (g->v[i] != sl)
			continue;
		g->v[i] = g->v[--g->n];
		break;
	}
	if (!g->n) {
		strmap_del(&s->groups, gkey);
		free(g->v);
		free(g);
	}
}

static void slice_gkey(const struct k8s_endpointslice *sl, char *buf, size_t len)
{
	buf[0] = 0;
	if (sl->service_name)
		snprintf(buf, len, "%s/%s", sl->ns, sl->service_name);
}

static int apply_slice(struct kxp_store *s, enum k8s_watch_type type, const cJSON *obj, const char *key,
		       struct kxp_store_change *ch, struct kxp_diags *diags)
{
	struct k8s_endpointslice *v = NULL, *old = strmap_get(&s->slices, key);
	char gkey[320], okey[320] = "";
	int r;

	if (old) {
		slice_gkey(old, okey, sizeof(okey));
		if (okey[0])
			set_svc(ch, okey);
	}
	if (type != K8S_WATCH_DELETED) {
		v = calloc(1, sizeof(*v));
		if (!v)
			return -ENOMEM;
		r = k8s_decode_endpointslice(obj, v, diags);
		if (r) {
			free(v);
			ch->svc[0][0] = ch->svc[1][0] = 0; /* nothing changed */
			return r;
		}
		if (v->n_eps > KXP_STORE_MAX_SLICE_EPS || v->n_ports > KXP_STORE_MAX_SLICE_PORTS) {
			kxp_diags_add(diags, "EndpointSlice", v->ns, v->name, v->n_eps > KXP_STORE_MAX_SLICE_EPS ? "endpoints" : "ports",
				      "%zu endpoints, %zu ports: more than the API allows (%d, %d); ignored", v->n_eps,
				      v->n_ports, KXP_STORE_MAX_SLICE_EPS, KXP_STORE_MAX_SLICE_PORTS);
			slice_free(v);
			ch->svc[0][0] = ch->svc[1][0] = 0;
			return -EINVAL;
		}
	}
	if (old) {
		if (okey[0])
			group_del(s, okey, old);
		strmap_del(&s->slices, key);
		s->n_eps -= old->n_eps;
		slice_free(old);
	}
	if (!v)
		return 0;
	r = strmap_put(&s->slices, key, v, NULL);
	if (r) {
		slice_free(v);
		return r;
	}
	s->n_eps += v->n_eps;
	slice_gkey(v, gkey, sizeof(gkey));
	if (gkey[0]) {
		const struct kxp_store_group *g = strmap_get(&s->groups, gkey);

		if (g && g->n >= KXP_STORE_MAX_SVC_SLICES) {
			kxp_diags_add(diags, "EndpointSlice", v->ns, v->name, "",
				      "Service %s already has %d slices; ignored", gkey, KXP_STORE_MAX_SVC_SLICES);
			strmap_del(&s->slices, key);
			s->n_eps -= v->n_eps;
			slice_free(v);
			return -EINVAL;
		}
		r = group_add(s, gkey, v);
		if (r)
			return r;
		set_svc(ch, gkey);
		if (!strmap_get(&s->svcs, gkey))
			ch->unknown_svc = true;
	}
	return 0;
}

static bool node_same(const struct k8s_node *a, const struct k8s_node *b)
{
	if (!a || !b)
		return a == b;
	if ((a->zone == NULL) != (b->zone == NULL) || (a->zone && strcmp(a->zone, b->zone)))
		return false;
	if (a->deleting != b->deleting || a->tbd_taint != b->tbd_taint || a->n_internal_ips != b->n_internal_ips)
		return false;
	return !a->n_internal_ips || !memcmp(a->internal_ips, b->internal_ips, a->n_internal_ips * sizeof(uint32_t));
}

static int apply_node(struct kxp_store *s, enum k8s_watch_type type, const cJSON *obj, const char *key,
		      struct kxp_store_change *ch, struct kxp_diags *diags)
{
	struct k8s_node *v = NULL;
	int r;

	if (strcmp(key, s->node_name))
		return 0; /* another node's object (the field selector should prevent it) */
	if (type != K8S_WATCH_DELETED) {
		v = calloc(1, sizeof(*v));
		if (!v)
			return -ENOMEM;
		r = k8s_decode_node(obj, v, diags);
		if (r) {
			free(v);
			return r;
		}
	}
	ch->node_changed = !node_same(s->node, v);
	if (s->node) {
		k8s_node_free(s->node);
		free(s->node);
	}
	s->node = v;
	return 0;
}

int kxp_store_apply(struct kxp_store *s, enum kxp_k8s_kind kind, enum k8s_watch_type type, const cJSON *obj,
		    struct kxp_store_change *ch, struct kxp_diags *diags)
{
	char key[320];

	memset(ch, 0, sizeof(*ch));
	if (!k8s_watch_has_object(type))
		return 0;
	if (obj_key(obj, key, sizeof(key), kind != KXP_K8S_NODE)) {
		kxp_diags_add(diags, kind == KXP_K8S_NODE ? "Node" : kind == KXP_K8S_SERVICE ? "Service" : "EndpointSlice",
			      "", "?", "metadata", "no metadata.name%s; ignored",
			      kind == KXP_K8S_NODE ? "" : " or metadata.namespace");
		return -EINVAL;
	}
	switch (kind) {
	case KXP_K8S_SERVICE:
		return apply_service(s, type, obj, key, ch, diags);
	case KXP_K8S_SLICE:
		return apply_slice(s, type, obj, key, ch, diags);
	case KXP_K8S_NODE:
		return apply_node(s, type, obj, key, ch, diags);
	default:
		return -EINVAL;
	}
}

int kxp_store_view(const struct kxp_store *s, struct kxp_objects *view)
{
	size_t i = 0;

	memset(view, 0, sizeof(*view));
	view->svcs = calloc(s->svcs.n + 1, sizeof(*view->svcs));
	view->slices = calloc(s->slices.n + 1, sizeof(*view->slices));
	view->nodes = calloc(1, sizeof(*view->nodes));
	if (!view->svcs || !view->slices || !view->nodes) {
		kxp_store_view_free(view);
		return -ENOMEM;
	}
	strmap_for_each(&s->svcs, e) view->svcs[i++] = *(struct k8s_service *)e->val;
	view->n_svcs = i;
	i = 0;
	strmap_for_each(&s->slices, e) view->slices[i++] = *(struct k8s_endpointslice *)e->val;
	view->n_slices = i;
	if (s->node) {
		view->nodes[0] = *s->node;
		view->n_nodes = 1;
	}
	return 0;
}

void kxp_store_view_free(struct kxp_objects *view)
{
	free(view->svcs);
	free(view->slices);
	free(view->nodes);
	memset(view, 0, sizeof(*view));
}
