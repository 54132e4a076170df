/* The model: Services, EndpointSlices and this node's Node object in, the
 * desired frontends and endpoint sets out, following kube-proxy's nftables
 * mode (item numbers refer to KUBE-PROXY-SEMANTICS.md). Pure: no I/O. */
#include "model/model.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/ip.h"

#define ANNOT_LB_ALGO_FIELD "metadata.annotations[kxp.io/lb-algorithm]"

/* One endpoint of one Service port, after slice filtering. */
struct ep {
	uint32_t addr;
	uint16_t port;
	bool ready, serving, terminating, local;
	const struct k8s_endpoint *src; /* for topology hints */
};

struct eps {
	struct ep *v;
	size_t n, cap;
};

/* State of one build. */
struct build {
	const struct kxp_objects *objs;
	const struct kxp_node_cfg *cfg;
	struct kxp_desired *out;
	struct kxp_diags *diags;
	size_t cap_fe, cap_sets;
	const char *zone;                       /* this node's topology zone, NULL if none */
	const struct k8s_endpointslice **slices; /* usable slices sorted by (ns, service name) */
	size_t n_slices;
};

/* What one Service port contributes, shared by all its frontends. */
struct port_ctx {
	const struct k8s_service *svc;
	const struct k8s_svc_port *port;
	char *svc_name;   /* "ns/name" */
	uint8_t algo;
	struct eps all;   /* every usable endpoint of the port, deduplicated */
	int cluster, local; /* set indices: -1 empty, -2 not built yet */
	bool no_usable;   /* no Ready and no serving-terminating endpoint: REJECT */
	uint16_t flags;   /* informative/affinity flags every frontend carries */
};

static const char *proto_name(uint8_t p)
{
	switch (p) {
	case IPPROTO_TCP:
		return "TCP";
	case IPPROTO_UDP:
		return "UDP";
	case IPPROTO_SCTP:
		return "SCTP";
	}
	return "?";
}

static int eps_push(struct eps *e, const struct ep *x)
{
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 8;
		struct ep *v = realloc(e->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		e->v = v;
		e->cap = cap;
	}
	e->v[e->n++] = *x;
	return 0;
}

/* ---- slices by service ------------------------------------------------------ */

static int slice_cmp(const void *a, const void *b)
{
	const struct k8s_endpointslice *x = *(const struct k8s_endpointslice *const *)a;
	const struct k8s_endpointslice *y = *(const struct k8s_endpointslice *const *)b;
	int c = strcmp(x->ns, y->ns);

	return c ? c : strcmp(x->service_name, y->service_name);
}

/* Keep the slices kube-proxy would see for IPv4 (items 1, 3, 5). */
static int index_slices(struct build *b)
{
	size_t i;

	b->slices = calloc(b->objs->n_slices ? b->objs->n_slices : 1, sizeof(*b->slices));
	if (!b->slices)
		return -ENOMEM;
	for (i = 0; i < b->objs->n_slices; i++) {
		const struct k8s_endpointslice *s = &b->objs->slices[i];

		if (!s->service_name || s->proxy_name || s->headless_label || s->addr_type != K8S_ADDR_IPV4)
			continue;
		b->slices[b->n_slices++] = s;
	}
	qsort(b->slices, b->n_slices, sizeof(*b->slices), slice_cmp);
	return 0;
}

/* First slice index for (ns, name) and how many follow. */
static size_t find_slices(const struct build *b, const char *ns, const char *name, size_t *count)
{
	size_t lo = 0, hi = b->n_slices, first;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct k8s_endpointslice *s = b->slices[mid];
		int c = strcmp(s->ns, ns);

		if (!c)
			c = strcmp(s->service_name, name);
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	first = lo;
	while (lo < b->n_slices && strcmp(b->slices[lo]->ns, ns) == 0 &&
	       strcmp(b->slices[lo]->service_name, name) == 0)
		lo++;
	*count = lo - first;
	return first;
}

/* ---- endpoints of one Service port ------------------------------------------ */

static int ep_cmp(const void *a, const void *b)
{
	const struct ep *x = a, *y = b;
	uint32_t ha = ntohl(x->addr), hb = ntohl(y->addr);

	if (ha != hb)
		return ha < hb ? -1 : 1;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	/* for duplicates, the non-terminating copy sorts first and wins (item 5) */
	if (x->terminating != y->terminating)
		return x->terminating ? 1 : -1;
	if (x->ready != y->ready)
		return x->ready ? -1 : 1;
	return 0;
}

/* Endpoints attach by (port name, protocol); the DNAT port is the slice's
 * port number (items 4, 5, 6). */
static int collect_endpoints(struct build *b, struct port_ctx *pc)
{
	const struct k8s_svc_port *sp = pc->port;
	size_t first, count, i, j, k, w;

	first = find_slices(b, pc->svc->ns, pc->svc->name, &count);
	for (i = first; i < first + count; i++) {
		const struct k8s_endpointslice *s = b->slices[i];

		for (j = 0; j < s->n_ports; j++) {
			const struct k8s_ep_port *p = &s->ports[j];

			if (!p->name || p->port == 0 || p->proto != sp->proto || strcmp(p->name, sp->name))
				continue;
			for (k = 0; k < s->n_eps; k++) {
				const struct k8s_endpoint *e = &s->eps[k];
				struct ep x = {
					.addr = e->addr,
					.port = p->port,
					.ready = e->ready,
					.serving = e->serving,
					.terminating = e->terminating,
					.local = e->node_name && b->cfg->node_name &&
						 strcmp(e->node_name, b->cfg->node_name) == 0,
					.src = e,
				};

				if (!e->addr)
					continue;
				if (eps_push(&pc->all, &x))
					return -ENOMEM;
			}
		}
	}
	if (pc->all.n > 1)
		qsort(pc->all.v, pc->all.n, sizeof(*pc->all.v), ep_cmp);
	for (i = 0, w = 0; i < pc->all.n; i++) {
		if (w && pc->all.v[w - 1].addr == pc->all.v[i].addr && pc->all.v[w - 1].port == pc->all.v[i].port)
			continue;
		pc->all.v[w++] = pc->all.v[i];
	}
	pc->all.n = w;
	return 0;
}

static bool has_name(char *const *names, size_t n, const char *want)
{
	size_t i;

	if (!want || !*want)
		return false;
	for (i = 0; i < n; i++)
		if (strcmp(names[i], want) == 0)
			return true;
	return false;
}

enum topo { TOPO_NONE, TOPO_NODE, TOPO_ZONE };

/* Item 25: hints are followed only if every Ready endpoint has them and at
 * least one names this node (node hints first) or this node's zone. */
static enum topo topology_mode(const struct build *b, const struct eps *all)
{
	bool all_node = true, any_node = false, all_zone = true, any_zone = false, any_ready = false;
	size_t i;

	for (i = 0; i < all->n; i++) {
		const struct k8s_endpoint *e = all->v[i].src;

		if (!all->v[i].ready)
			continue;
		any_ready = true;
		if (!e->hints || !e->hints->n_nodes)
			all_node = false;
		else if (has_name(e->hints->nodes, e->hints->n_nodes, b->cfg->node_name))
			any_node = true;
		if (!e->hints || !e->hints->n_zones)
			all_zone = false;
		else if (has_name(e->hints->zones, e->hints->n_zones, b->zone))
			any_zone = true;
	}
	if (!any_ready)
		return TOPO_NONE;
	if (all_node && any_node)
		return TOPO_NODE;
	if (all_zone && any_zone)
		return TOPO_ZONE;
	return TOPO_NONE;
}

/* Items 19/20: pick the cluster or local set from the port's endpoints. */
static int select_set(const struct build *b, const struct port_ctx *pc, bool local, struct eps *out)
{
	enum topo mode = local ? TOPO_NONE : topology_mode(b, &pc->all);
	bool any_ready = false;
	size_t i;

	for (i = 0; i < pc->all.n; i++) {
		const struct ep *e = &pc->all.v[i];

		if (e->ready && (!local || e->local))
			any_ready = true;
	}
	for (i = 0; i < pc->all.n; i++) {
		const struct ep *e = &pc->all.v[i];
		bool take;

		if (local && !e->local)
			continue;
		if (any_ready) {
			take = e->ready;
			if (take && mode == TOPO_NODE)
				take = has_name(e->src->hints->nodes, e->src->hints->n_nodes, b->cfg->node_name);
			else if (take && mode == TOPO_ZONE)
				take = has_name(e->src->hints->zones, e->src->hints->n_zones, b->zone);
		} else {
			/* fallback without topology filtering */
			take = e->serving && e->terminating;
		}
		if (take && eps_push(out, e))
			return -ENOMEM;
	}
	return 0;
}

/* ---- output vectors ---------------------------------------------------------- */

static int add_set(struct build *b, struct port_ctx *pc, bool local, int *idx)
{
	struct kxp_desired *o = b->out;
	struct eps sel = { 0 };
	struct kxp_d_set *set;
	size_t i;
	int r;

	*idx = -1;
	if ((r = select_set(b, pc, local, &sel)))
		goto out;
	if (sel.n == 0)
		goto out; /* item 26/27: the frontend rejects or drops */
	if (o->n_sets == b->cap_sets) {
		size_t cap = b->cap_sets ? b->cap_sets * 2 : 16;
		struct kxp_d_set *v = realloc(o->sets, cap * sizeof(*v));

		if (!v) {
			r = -ENOMEM;
			goto out;
		}
		o->sets = v;
		b->cap_sets = cap;
	}
	set = &o->sets[o->n_sets];
	memset(set, 0, sizeof(*set));
	if (sel.n > KXP_MAX_SET_BACKENDS)
		sel.n = KXP_MAX_SET_BACKENDS; /* the map's count is a u16 */
	set->be = calloc(sel.n, sizeof(*set->be));
	if (!set->be || asprintf(&set->key, "%s:%s/%s:%s", pc->svc_name, pc->port->name,
				 proto_name(pc->port->proto), local ? "local" : "cluster") < 0) {
		free(set->be);
		set->key = NULL;
		r = -ENOMEM;
		goto out;
	}
	/* sel is sorted by (addr, port) and unique: it is a subset of pc->all */
	for (i = 0; i < sel.n; i++) {
		set->be[i] = (struct kxp_d_backend){
			.addr = sel.v[i].addr,
			.port = sel.v[i].port,
			.proto = pc->port->proto,
			.flags = (sel.v[i].local ? KXP_BE_F_LOCAL : 0) |
				 (sel.v[i].terminating ? KXP_BE_F_TERMINATING : 0),
		};
	}
	set->n_be = sel.n;
	set->algo = pc->algo;
	set->affinity_timeout = pc->svc->affinity_client_ip ? pc->svc->affinity_timeout : 0;
	*idx = (int)o->n_sets++;
out:
	free(sel.v);
	return r;
}

/* The set a frontend uses, built on first use so only referenced sets exist. */
static int get_set(struct build *b, struct port_ctx *pc, bool local, int *idx)
{
	int *slot = local ? &pc->local : &pc->cluster;
	int r;

	if (*slot == -2 && (r = add_set(b, pc, local, slot)))
		return r;
	*idx = *slot;
	return 0;
}

static int add_fe(struct build *b, const struct kxp_d_frontend *fe, const char *svc, const char *port_name,
		  const struct kxp_cidr4 *lbsr, size_t n_lbsr)
{
	struct kxp_desired *o = b->out;
	struct kxp_d_frontend *f;

	if (o->n_fe == b->cap_fe) {
		size_t cap = b->cap_fe ? b->cap_fe * 2 : 64;
		struct kxp_d_frontend *v = realloc(o->fe, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		o->fe = v;
		b->cap_fe = cap;
	}
	f = &o->fe[o->n_fe];
	*f = *fe;
	f->svc = strdup(svc);
	f->port_name = strdup(port_name);
	f->lbsr = NULL;
	f->n_lbsr = 0;
	if (n_lbsr) {
		f->lbsr = malloc(n_lbsr * sizeof(*lbsr));
		if (f->lbsr) {
			memcpy(f->lbsr, lbsr, n_lbsr * sizeof(*lbsr));
			f->n_lbsr = n_lbsr;
		}
	}
	if (!f->svc || !f->port_name || (n_lbsr && !f->lbsr)) {
		free(f->svc);
		free(f->port_name);
		free(f->lbsr);
		return -ENOMEM;
	}
	o->n_fe++;
	return 0;
}

/* ---- frontends of one Service port -------------------------------------------- */

static bool serves_nodeports(const struct kxp_node_cfg *cfg, size_t i)
{
	size_t k;

	if (cfg->nodeport_primary)
		return i == 0;
	/* no CIDR given: every node address (the iptables-mode default) */
	if (cfg->n_nodeport == 0)
		return true;
	for (k = 0; k < cfg->n_nodeport; k++)
		if (kxp_cidr4_contains(&cfg->nodeport[k], cfg->node_ips[i]))
			return true;
	return false;
}

/* Does any loadBalancerSourceRange contain one of the node's addresses? */
static bool lbsr_admits_node(const struct kxp_node_cfg *cfg, const struct kxp_cidr4 *lbsr, size_t n)
{
	for (size_t k = 0; k < n; k++)
		for (size_t i = 0; i < cfg->n_node_ips; i++)
			if (kxp_cidr4_contains(&lbsr[k], cfg->node_ips[i]))
				return true;
	return false;
}

/* An external frontend (items 16, 17, 21-23): eTP=Local splits it into the
 * local set for external clients and the cluster set for pods and the node. */
static int add_external(struct build *b, struct port_ctx *pc, uint32_t addr, uint16_t port, uint8_t kind,
			bool etp_local, uint16_t extra, const struct kxp_cidr4 *lbsr, size_t n_lbsr)
{
	struct kxp_d_frontend fe = {
		.addr = addr,
		.port = port,
		.proto = pc->port->proto,
		.scope = KXP_SCOPE_DEFAULT,
		.kind = kind,
		.flags = pc->flags | KXP_SVC_F_EXTERNAL | extra,
	};
	int r, cluster;

	if ((r = get_set(b, pc, false, &cluster)))
		return r;
	if (!etp_local) {
		fe.set = cluster;
	} else {
		if ((r = get_set(b, pc, true, &fe.set)))
			return r;
		fe.flags |= KXP_SVC_F_SPLIT | KXP_SVC_F_LOCAL_SET;
	}
	if (pc->no_usable)
		fe.flags |= KXP_SVC_F_REJECT;
	if ((r = add_fe(b, &fe, pc->svc_name, pc->port->name, lbsr, n_lbsr)))
		return r;
	if (!etp_local)
		return 0;
	fe.scope = KXP_SCOPE_INTERNAL;
	fe.set = cluster;
	fe.flags &= (uint16_t)~(KXP_SVC_F_SPLIT | KXP_SVC_F_LOCAL_SET);
	return add_fe(b, &fe, pc->svc_name, pc->port->name, lbsr, n_lbsr);
}

static int build_port(struct build *b, struct port_ctx *pc, const struct kxp_cidr4 *lbsr, size_t n_lbsr)
{
	const struct k8s_service *s = pc->svc;
	const struct kxp_node_cfg *cfg = b->cfg;
	bool has_nodeport = pc->port->node_port &&
			    (s->type == K8S_SVC_NODEPORT || s->type == K8S_SVC_LOADBALANCER);
	bool accessible = has_nodeport || s->n_external_ips, etp_local;
	size_t i;
	int r, ncheck;

	for (i = 0; i < s->n_lb_ingress; i++)
		if (s->lb_ingress[i].ip && !s->lb_ingress[i].ip_mode_proxy)
			accessible = true;
	/* item 22: eTP=Local without an external destination is Cluster */
	etp_local = s->etp_local && accessible;
	pc->flags = (s->affinity_client_ip ? KXP_SVC_F_AFFINITY : 0) | (s->itp_local ? KXP_SVC_F_ITP_LOCAL : 0) |
		    (etp_local ? KXP_SVC_F_ETP_LOCAL : 0);
	pc->cluster = pc->local = -2;
	if ((r = collect_endpoints(b, pc)))
		return r;
	/* the cluster set is empty only when nothing is usable (the topology
	 * filter never empties it), which is item 26's REJECT condition */
	if ((r = get_set(b, pc, false, &ncheck)))
		return r;
	pc->no_usable = ncheck < 0;

	for (i = 0; i < s->n_cluster_ips; i++) {
		struct kxp_d_frontend fe = {
			.addr = s->cluster_ips[i],
			.port = pc->port->port,
			.proto = pc->port->proto,
			.scope = KXP_SCOPE_DEFAULT,
			.kind = KXP_FE_CLUSTERIP,
			.flags = pc->flags,
		};

		/* item 21: iTP picks the set of ClusterIP traffic */
		if ((r = get_set(b, pc, s->itp_local, &fe.set)))
			return r;
		if (s->itp_local)
			fe.flags |= KXP_SVC_F_LOCAL_SET;
		if (pc->no_usable)
			fe.flags |= KXP_SVC_F_REJECT;
		if ((r = add_fe(b, &fe, pc->svc_name, pc->port->name, NULL, 0)))
			return r;
	}
	if (has_nodeport) {
		for (i = 0; i < cfg->n_node_ips; i++) {
			if (!serves_nodeports(cfg, i))
				continue;
			if ((r = add_external(b, pc, cfg->node_ips[i], pc->port->node_port, KXP_FE_NODEPORT,
					      etp_local, 0, NULL, 0)))
				return r;
		}
	}
	for (i = 0; i < s->n_lb_ingress; i++) {
		const struct k8s_lb_ingress *ing = &s->lb_ingress[i];
		struct kxp_cidr4 *fl = (struct kxp_cidr4 *)lbsr;
		size_t nfl = n_lbsr;

		/* item 8: ipMode Proxy is not captured */
		if (!ing->ip || ing->ip_mode_proxy)
			continue;
		/* item 35: node-to-LB traffic is assumed SNATed to the LB IP by
		 * the cloud, so a range that admits a node also admits the LB IP */
		if (n_lbsr && lbsr_admits_node(cfg, lbsr, n_lbsr)) {
			fl = malloc((n_lbsr + 1) * sizeof(*fl));
			if (!fl)
				return -ENOMEM;
			memcpy(fl, lbsr, n_lbsr * sizeof(*fl));
			fl[nfl++] = (struct kxp_cidr4){ ing->ip, 0xffffffffu };
		}
		r = add_external(b, pc, ing->ip, pc->port->port, KXP_FE_LOADBALANCER, etp_local,
				 n_lbsr ? KXP_SVC_F_LBSR : 0, fl, nfl);
		if (fl != lbsr)
			free(fl);
		if (r)
			return r;
	}
	for (i = 0; i < s->n_external_ips; i++) {
		/* item 16: source ranges do not apply to externalIPs */
		if ((r = add_external(b, pc, s->external_ips[i], pc->port->port, KXP_FE_EXTERNALIP, etp_local, 0,
				      NULL, 0)))
			return r;
	}
	return 0;
}

/* ---- one Service ---------------------------------------------------------------- */

static bool proxied(const struct k8s_service *s)
{
	/* items 1-3: other proxies' and headless Services, ExternalName, no IPv4 */
	return !s->proxy_name && !s->headless_label && s->type != K8S_SVC_EXTERNALNAME && !s->headless &&
	       s->n_cluster_ips > 0 && s->n_ports > 0;
}

static uint8_t pick_algo(struct build *b, const struct k8s_service *s)
{
	const char *a = s->lb_algorithm;

	if (!a)
		return b->cfg->default_algo;
	if (strcmp(a, "random") == 0)
		return KXP_ALGO_RANDOM;
	if (strcmp(a, "rr") == 0)
		return KXP_ALGO_RR;
	if (strcmp(a, "maglev") == 0)
		return KXP_ALGO_MAGLEV;
	kxp_diags_add(b->diags, "Service", s->ns, s->name, ANNOT_LB_ALGO_FIELD,
		      "unknown lb algorithm \"%s\" (want random, rr or maglev); using the default", a);
	return b->cfg->default_algo;
}

static int build_service(struct build *b, const struct k8s_service *s)
{
	struct kxp_cidr4 *lbsr = NULL;
	size_t n_lbsr = 0, i;
	struct port_ctx pc = { .svc = s };
	uint8_t algo;
	int r = 0;

	if (!proxied(s))
		return 0;
	algo = pick_algo(b, s);
	if (asprintf(&pc.svc_name, "%s/%s", s->ns, s->name) < 0)
		return -ENOMEM;
	if (s->n_lb_source_ranges && !(lbsr = calloc(s->n_lb_source_ranges, sizeof(*lbsr)))) {
		free(pc.svc_name);
		return -ENOMEM;
	}
	/* item 3: only this family's ranges (the decoder kept valid ones only) */
	for (i = 0; i < s->n_lb_source_ranges; i++)
		if (kxp_parse_cidr4(s->lb_source_ranges[i], &lbsr[n_lbsr]) == 0)
			n_lbsr++;
	for (i = 0; i < s->n_ports && !r; i++) {
		pc.port = &s->ports[i];
		pc.algo = algo;
		pc.all.n = 0;
		r = build_port(b, &pc, lbsr, n_lbsr);
	}
	/* item 13: other ports of an active ClusterIP reject */
	for (i = 0; i < s->n_cluster_ips && !r; i++) {
		struct kxp_d_frontend fe = {
			.addr = s->cluster_ips[i],
			.kind = KXP_FE_CLUSTERIP,
			.scope = KXP_SCOPE_DEFAULT,
			.flags = KXP_SVC_F_WILDCARD,
			.set = -1,
		};

		r = add_fe(b, &fe, pc.svc_name, "", NULL, 0);
	}
	free(pc.all.v);
	free(pc.svc_name);
	free(lbsr);
	return r;
}

/* ---- ordering and conflicts -------------------------------------------------------- */

static int fe_cmp(const void *a, const void *b)
{
	const struct kxp_d_frontend *x = a, *y = b;
	uint32_t ha = ntohl(x->addr), hb = ntohl(y->addr);
	int c;

	if (ha != hb)
		return ha < hb ? -1 : 1;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	if (x->scope != y->scope)
		return x->scope < y->scope ? -1 : 1;
	/* ties are conflicts between Services: decide them by name */
	if ((c = strcmp(x->svc, y->svc)))
		return c;
	if ((c = strcmp(x->port_name, y->port_name)))
		return c;
	return (int)x->kind - (int)y->kind;
}

static void fe_free(struct kxp_d_frontend *f)
{
	free(f->svc);
	free(f->port_name);
	free(f->lbsr);
}

/* Keep a frontend another Service won in o->dropped (taking its strings). */
static int keep_dropped(struct build *b, struct kxp_d_frontend *f)
{
	struct kxp_desired *o = b->out;

	if (!(o->n_dropped & (o->n_dropped - 1))) {
		struct kxp_d_frontend *v = realloc(o->dropped, (o->n_dropped ? o->n_dropped * 2 : 1) * sizeof(*v));

		if (!v) {
			fe_free(f);
			return -ENOMEM;
		}
		o->dropped = v;
	}
	o->dropped[o->n_dropped] = *f;
	o->dropped[o->n_dropped++].set = -1; /* sets are renumbered after this */
	return 0;
}

/* Two Services claiming the same frontend: the first by name keeps it.
 * Returns 0 or -ENOMEM. */
static int drop_conflicts(struct build *b)
{
	struct kxp_desired *o = b->out;
	size_t i, w = 0;
	int r = 0;

	for (i = 0; i < o->n_fe; i++) {
		struct kxp_d_frontend *f = &o->fe[i], *p = w ? &o->fe[w - 1] : NULL;

		if (p && p->addr == f->addr && p->port == f->port && p->proto == f->proto && p->scope == f->scope) {
			char ns[64], a[16];
			const char *slash = strchr(f->svc, '/');

			snprintf(ns, sizeof(ns), "%.*s", slash ? (int)(slash - f->svc) : 0, f->svc);
			kxp_diags_add(b->diags, "Service", ns, slash ? slash + 1 : f->svc, "",
				      "frontend %s:%u/%s is already used by %s; ignored", kxp_ip4_str(f->addr, a),
				      f->port, f->proto ? proto_name(f->proto) : "any", p->svc);
			/* one Service twice (its own build drops that too) or another */
			if (r || !strcmp(f->svc, p->svc))
				fe_free(f);
			else
				r = keep_dropped(b, f);
			continue;
		}
		o->fe[w++] = *f;
	}
	o->n_fe = w;
	return r;
}

static int set_idx_cmp(const void *a, const void *b, void *arg)
{
	const struct kxp_d_set *sets = arg;

	return strcmp(sets[*(const size_t *)a].key, sets[*(const size_t *)b].key);
}

/* Sort sets by key, so that indices do not depend on the input order, and
 * drop sets that only conflicting (dropped) frontends used. */
static int order_sets(struct build *b)
{
	struct kxp_desired *o = b->out;
	struct kxp_d_set *sorted = NULL;
	size_t *idx = NULL, i, w = 0;
	int *remap = NULL, r = 0;

	if (!o->n_sets)
		return 0;
	idx = calloc(o->n_sets, sizeof(*idx));
	remap = calloc(o->n_sets, sizeof(*remap));
	sorted = calloc(o->n_sets, sizeof(*sorted));
	if (!idx || !remap || !sorted) {
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; i < o->n_sets; i++) {
		idx[i] = i;
		remap[i] = -1;
	}
	for (i = 0; i < o->n_fe; i++)
		if (o->fe[i].set >= 0)
			remap[o->fe[i].set] = 0; /* used */
	qsort_r(idx, o->n_sets, sizeof(*idx), set_idx_cmp, o->sets);
	for (i = 0; i < o->n_sets; i++) {
		struct kxp_d_set *s = &o->sets[idx[i]];

		if (remap[idx[i]] < 0) {
			free(s->key);
			free(s->be);
			continue;
		}
		remap[idx[i]] = (int)w;
		sorted[w++] = *s;
	}
	memcpy(o->sets, sorted, w * sizeof(*sorted));
	o->n_sets = w;
	for (i = 0; i < o->n_fe; i++)
		if (o->fe[i].set >= 0)
			o->fe[i].set = remap[o->fe[i].set];
out:
	free(idx);
	free(remap);
	free(sorted);
	return r;
}

/* ---- entry point ------------------------------------------------------------------ */

static int svc_ptr_cmp(const void *a, const void *b)
{
	const struct k8s_service *x = *(const struct k8s_service *const *)a;
	const struct k8s_service *y = *(const struct k8s_service *const *)b;
	int c = strcmp(x->ns, y->ns);

	if (!c)
		c = strcmp(x->name, y->name);
	/* same name twice: keep input order so the later one can win */
	return c ? c : (x < y ? -1 : x > y);
}

static int build_nodeips(struct build *b)
{
	const struct kxp_node_cfg *cfg = b->cfg;
	struct kxp_desired *o = b->out;
	size_t i, k;

	o->nodeips = calloc(cfg->n_node_ips ? cfg->n_node_ips : 1, sizeof(*o->nodeips));
	if (!o->nodeips)
		return -ENOMEM;
	for (i = 0; i < cfg->n_node_ips; i++) {
		uint32_t flags = KXP_NODEIP_F_LOCAL | (serves_nodeports(cfg, i) ? KXP_NODEIP_F_NODEPORT : 0) |
				 (i == 0 ? KXP_NODEIP_F_PRIMARY : 0);

		for (k = 0; k < o->n_nodeips; k++)
			if (o->nodeips[k].addr == cfg->node_ips[i])
				break;
		if (k < o->n_nodeips) {
			o->nodeips[k].flags |= flags;
			continue;
		}
		o->nodeips[o->n_nodeips++] = (struct kxp_d_nodeip){ .addr = cfg->node_ips[i], .flags = flags };
	}
	return 0;
}

int kxp_model_build(const struct kxp_objects *objs, const struct kxp_node_cfg *cfg, struct kxp_desired *out,
		    struct kxp_diags *diags)
{
	struct build b = { .objs = objs, .cfg = cfg, .out = out, .diags = diags };
	const struct k8s_service **svcs = NULL;
	const struct k8s_node *node;
	size_t i;
	int r;

	memset(out, 0, sizeof(*out));
	out->cfg.flags = cfg->masquerade_all ? KXP_CFG_F_MASQ_ALL : 0;
	/* SNAT (E.33): every backend sees the node's primary address, local
	 * and remote alike (with 0 the datapath would take the FIB's source
	 * toward each backend, e.g. a pod gateway address for local pods);
	 * ports clear of NodePorts and ephemeral ports (abi.h) */
	out->cfg.snat_addr = cfg->snat_addr ? cfg->snat_addr : cfg->n_node_ips ? cfg->node_ips[0] : 0;
	out->cfg.snat_port_min = cfg->snat_port_min ? cfg->snat_port_min : KXP_SNAT_PORT_MIN_DEF;
	out->cfg.snat_port_max = cfg->snat_port_max ? cfg->snat_port_max : KXP_SNAT_PORT_MAX_DEF;
	for (i = 0; i < cfg->n_cluster && i < KXP_MAX_CIDRS; i++)
		out->cfg.cluster[out->cfg.n_cluster++] = cfg->cluster[i];
	for (i = 0; i < cfg->n_service && i < KXP_MAX_CIDRS; i++)
		out->cfg.service[out->cfg.n_service++] = cfg->service[i];
	node = kxp_objects_find_node(objs, cfg->node_name);
	b.zone = node && node->zone && *node->zone ? node->zone : NULL;

	if ((r = build_nodeips(&b)) || (r = index_slices(&b)))
		goto fail;
	svcs = calloc(objs->n_svcs ? objs->n_svcs : 1, sizeof(*svcs));
	if (!svcs) {
		r = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < objs->n_svcs; i++)
		svcs[i] = &objs->svcs[i];
	qsort(svcs, objs->n_svcs, sizeof(*svcs), svc_ptr_cmp);
	for (i = 0; i < objs->n_svcs; i++) {
		const struct k8s_service *s = svcs[i];

		if (i + 1 < objs->n_svcs && strcmp(s->ns, svcs[i + 1]->ns) == 0 &&
		    strcmp(s->name, svcs[i + 1]->name) == 0) {
			kxp_diags_add(diags, "Service", s->ns, s->name, "",
				      "defined more than once; the later definition wins");
			continue;
		}
		if ((r = build_service(&b, s)))
			goto fail;
	}
	if (out->n_fe > 1)
		qsort(out->fe, out->n_fe, sizeof(*out->fe), fe_cmp);
	if ((r = drop_conflicts(&b)) || (r = order_sets(&b)))
		goto fail;
	free(svcs);
	free(b.slices);
	return 0;
fail:
	free(svcs);
	free(b.slices);
	kxp_desired_free(out);
	return r;
}
