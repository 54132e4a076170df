/* Table-driven model tests: each JSON file in selftests/fixtures/model holds a
 * node config, API objects and the expected frontends/sets/diags; one runner
 * walks them all and prints what differs. Format: fixtures/model/README.md. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "../lib/testlib.h"
#include "k8s/decode.h"
#include "lib/ip.h"
#include "model/model.h"

/* Checklist items that must each have at least one fixture. */
static const char *const required_items[] = {
	"A.1",	"A.2",	"A.3",	"A.4",	"A.5",	"A.6",	"A.7",	"A.8",	"A.9",	"B.11", "B.12",
	"B.13", "B.14", "B.16", "B.17", "C.19", "C.20", "C.21", "C.22", "C.23", "C.24", "C.25",
	"D.26", "D.27", "E.29", "E.30", "E.31", "E.32", "F.34", "F.35", "G.36", "G.37", "J",
};

struct flagname {
	const char *name;
	unsigned bit;
};

static const struct flagname svc_flags[] = {
	{ "SPLIT", KXP_SVC_F_SPLIT },	      { "LOCAL_SET", KXP_SVC_F_LOCAL_SET },
	{ "REJECT", KXP_SVC_F_REJECT },	      { "WILDCARD", KXP_SVC_F_WILDCARD },
	{ "AFFINITY", KXP_SVC_F_AFFINITY },   { "LBSR", KXP_SVC_F_LBSR },
	{ "EXTERNAL", KXP_SVC_F_EXTERNAL },   { "ETP_LOCAL", KXP_SVC_F_ETP_LOCAL },
	{ "ITP_LOCAL", KXP_SVC_F_ITP_LOCAL }, { NULL, 0 },
};
static const struct flagname be_flags[] = {
	{ "LOCAL", KXP_BE_F_LOCAL }, { "TERMINATING", KXP_BE_F_TERMINATING }, { NULL, 0 },
};
static const struct flagname nodeip_flags[] = {
	{ "LOCAL", KXP_NODEIP_F_LOCAL }, { "NODEPORT", KXP_NODEIP_F_NODEPORT },
	{ "PRIMARY", KXP_NODEIP_F_PRIMARY }, { NULL, 0 },
};
static const char *const kind_names[] = { "None", "ClusterIP", "NodePort", "LoadBalancer", "ExternalIP" };
static const char *const algo_names[] = { "random", "rr", "maglev" };

/* Per-fixture failure collection: every difference is printed. */
struct fx {
	const char *file;
	int errors;
};

static void fx_err(struct fx *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fx_err(struct fx *f, const char *fmt, ...)
{
	va_list ap;

	printf("    %s: ", f->file);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	f->errors++;
}

static const char *str_of(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int flags_from_json(struct fx *f, const cJSON *arr, const struct flagname *names, unsigned *out)
{
	const cJSON *it;

	*out = 0;
	cJSON_ArrayForEach(it, arr) {
		const struct flagname *n;

		for (n = names; n->name; n++)
			if (cJSON_IsString(it) && strcmp(it->valuestring, n->name) == 0)
				break;
		if (!n->name) {
			fx_err(f, "fixture error: unknown flag %s", cJSON_IsString(it) ? it->valuestring : "?");
			return -1;
		}
		*out |= n->bit;
	}
	return 0;
}

static void flags_str(unsigned flags, const struct flagname *names, char *buf, size_t len)
{
	const struct flagname *n;
	size_t off = 0;

	buf[0] = 0;
	for (n = names; n->name; n++)
		if (flags & n->bit)
			off += (size_t)snprintf(buf + off, len > off ? len - off : 0, "%s%s", off ? "," : "", n->name);
}

static uint8_t proto_of(const char *s)
{
	if (!s || strcmp(s, "any") == 0)
		return 0;
	if (strcmp(s, "UDP") == 0)
		return IPPROTO_UDP;
	if (strcmp(s, "SCTP") == 0)
		return IPPROTO_SCTP;
	return IPPROTO_TCP;
}

static const char *proto_str(uint8_t p)
{
	return p == IPPROTO_TCP ? "TCP" : p == IPPROTO_UDP ? "UDP" : p == IPPROTO_SCTP ? "SCTP" : "any";
}

static void fe_str(const struct kxp_desired *d, const struct kxp_d_frontend *fe, char *buf, size_t len)
{
	char a[16], fl[160], bes[512] = "";
	size_t off = 0, i;

	flags_str(fe->flags, svc_flags, fl, sizeof(fl));
	if (fe->set >= 0) {
		const struct kxp_d_set *s = &d->sets[fe->set];

		for (i = 0; i < s->n_be; i++) {
			char b[16];

			off += (size_t)snprintf(bes + off, sizeof(bes) > off ? sizeof(bes) - off : 0, "%s%s:%u",
						i ? " " : "", kxp_ip4_str(s->be[i].addr, b), s->be[i].port);
		}
	}
	snprintf(buf, len, "%s:%u/%s %s %s [%s] set=%d {%s} (%s:%s)", kxp_ip4_str(fe->addr, a), fe->port,
		 proto_str(fe->proto), fe->scope ? "internal" : "default",
		 fe->kind < 5 ? kind_names[fe->kind] : "?", fl, fe->set, bes, fe->svc, fe->port_name);
}

static void dump_actual(const struct kxp_desired *d, const struct kxp_diags *diags)
{
	char buf[1024];
	size_t i;

	printf("      actual frontends (%zu):\n", d->n_fe);
	for (i = 0; i < d->n_fe; i++) {
		fe_str(d, &d->fe[i], buf, sizeof(buf));
		printf("        %s\n", buf);
	}
	printf("      actual diags (%zu):\n", diags->n);
	for (i = 0; i < diags->n; i++) {
		kxp_diag_format(&diags->v[i], buf, sizeof(buf));
		printf("        %s [field=%s]\n", buf, diags->v[i].field);
	}
}

static int parse_cidrs(struct fx *f, const cJSON *arr, struct kxp_cidr4 *out, size_t *n)
{
	const cJSON *it;

	*n = 0;
	cJSON_ArrayForEach(it, arr) {
		if (*n == KXP_MAX_CIDRS || !cJSON_IsString(it) || kxp_parse_cidr4(it->valuestring, &out[*n])) {
			fx_err(f, "fixture error: bad CIDR list");
			return -1;
		}
		(*n)++;
	}
	return 0;
}

static int parse_node_cfg(struct fx *f, const cJSON *node, struct kxp_node_cfg *cfg)
{
	const cJSON *ips = cJSON_GetObjectItemCaseSensitive(node, "ips"), *it;
	const cJSON *npa = cJSON_GetObjectItemCaseSensitive(node, "nodeport_addresses");
	const char *algo = str_of(node, "default_algo");

	memset(cfg, 0, sizeof(*cfg));
	cfg->node_name = str_of(node, "name");
	cJSON_ArrayForEach(it, ips) {
		if (cfg->n_node_ips == 16 || !cJSON_IsString(it) ||
		    kxp_parse_ip4(it->valuestring, &cfg->node_ips[cfg->n_node_ips])) {
			fx_err(f, "fixture error: bad node ip");
			return -1;
		}
		cfg->n_node_ips++;
	}
	if (parse_cidrs(f, cJSON_GetObjectItemCaseSensitive(node, "cluster_cidrs"), cfg->cluster, &cfg->n_cluster) ||
	    parse_cidrs(f, cJSON_GetObjectItemCaseSensitive(node, "service_cidrs"), cfg->service, &cfg->n_service))
		return -1;
	cfg->nodeport_primary = !npa || (cJSON_IsString(npa) && strcmp(npa->valuestring, "primary") == 0);
	if (cJSON_IsArray(npa) && parse_cidrs(f, npa, cfg->nodeport, &cfg->n_nodeport))
		return -1;
	cfg->masquerade_all = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(node, "masquerade_all"));
	if (algo && strcmp(algo, "rr") == 0)
		cfg->default_algo = KXP_ALGO_RR;
	else if (algo && strcmp(algo, "maglev") == 0)
		cfg->default_algo = KXP_ALGO_MAGLEV;
	return 0;
}

/* "a.b.c.d:port" → addr/port */
static int parse_hostport(const char *s, uint32_t *addr, unsigned *port)
{
	char buf[32];
	char *colon;

	snprintf(buf, sizeof(buf), "%s", s);
	colon = strrchr(buf, ':');
	if (!colon)
		return -1;
	*colon = 0;
	*port = (unsigned)atoi(colon + 1);
	return kxp_parse_ip4(buf, addr);
}

static const struct kxp_d_frontend *find_fe(const struct kxp_desired *d, uint32_t addr, unsigned port,
					    uint8_t proto, uint8_t scope)
{
	size_t i;

	for (i = 0; i < d->n_fe; i++)
		if (d->fe[i].addr == addr && d->fe[i].port == port && d->fe[i].proto == proto &&
		    d->fe[i].scope == scope)
			return &d->fe[i];
	return NULL;
}

static void check_backends(struct fx *f, const char *what, const struct kxp_desired *d,
			   const struct kxp_d_frontend *fe, const cJSON *want, const cJSON *want_flags)
{
	const struct kxp_d_set *s = fe->set >= 0 ? &d->sets[fe->set] : NULL;
	size_t n_want = (size_t)cJSON_GetArraySize(want), i;
	const cJSON *it;

	if (fe->set >= (int)d->n_sets) {
		fx_err(f, "%s: set index %d out of range (%zu sets)", what, fe->set, d->n_sets);
		return;
	}
	if (n_want == 0) {
		if (s)
			fx_err(f, "%s: want no set (-1), got set %d with %zu backends", what, fe->set, s->n_be);
		return;
	}
	if (!s) {
		fx_err(f, "%s: want %zu backends, got set -1", what, n_want);
		return;
	}
	if (s->n_be != n_want)
		fx_err(f, "%s: want %zu backends, got %zu", what, n_want, s->n_be);
	cJSON_ArrayForEach(it, want) {
		uint32_t a;
		unsigned port;
		bool found = false;

		if (!cJSON_IsString(it) || parse_hostport(it->valuestring, &a, &port)) {
			fx_err(f, "fixture error: bad backend");
			continue;
		}
		for (i = 0; i < s->n_be; i++) {
			if (s->be[i].addr == a && s->be[i].port == port) {
				const cJSON *wf = cJSON_GetObjectItemCaseSensitive(want_flags, it->valuestring);
				unsigned bits;

				found = true;
				if (s->be[i].proto != fe->proto)
					fx_err(f, "%s: backend %s has proto %u, want %u", what, it->valuestring,
					       s->be[i].proto, fe->proto);
				if (wf && !flags_from_json(f, wf, be_flags, &bits) && bits != s->be[i].flags) {
					char g[64], w[64];

					flags_str(s->be[i].flags, be_flags, g, sizeof(g));
					flags_str(bits, be_flags, w, sizeof(w));
					fx_err(f, "%s: backend %s flags [%s], want [%s]", what, it->valuestring, g, w);
				}
			}
		}
		if (!found)
			fx_err(f, "%s: backend %s missing", what, it->valuestring);
	}
	/* sets must be sorted by (addr, port) and unique */
	for (i = 1; i < s->n_be; i++) {
		uint64_t p = (uint64_t)ntohl(s->be[i - 1].addr) << 16 | s->be[i - 1].port;
		uint64_t c = (uint64_t)ntohl(s->be[i].addr) << 16 | s->be[i].port;

		if (p >= c)
			fx_err(f, "%s: set %s not sorted/unique at %zu", what, s->key, i);
	}
}

static void check_frontend(struct fx *f, const struct kxp_desired *d, const cJSON *w, bool *matched)
{
	const char *addr_s = str_of(w, "addr"), *scope_s = str_of(w, "scope"), *kind_s = str_of(w, "kind");
	const cJSON *port = cJSON_GetObjectItemCaseSensitive(w, "port");
	const cJSON *flags = cJSON_GetObjectItemCaseSensitive(w, "flags");
	const cJSON *bes = cJSON_GetObjectItemCaseSensitive(w, "backends");
	const cJSON *v;
	const struct kxp_d_frontend *fe;
	uint8_t proto = proto_of(str_of(w, "proto")), scope;
	char what[96];
	uint32_t addr;
	unsigned bits;

	scope = scope_s && strcmp(scope_s, "internal") == 0 ? KXP_SCOPE_INTERNAL : KXP_SCOPE_DEFAULT;
	if (!addr_s || kxp_parse_ip4(addr_s, &addr) || !cJSON_IsNumber(port)) {
		fx_err(f, "fixture error: frontend needs addr and port");
		return;
	}
	snprintf(what, sizeof(what), "%s:%d/%s %s", addr_s, port->valueint, proto_str(proto),
		 scope ? "internal" : "default");
	fe = find_fe(d, addr, (unsigned)port->valueint, proto, scope);
	if (!fe) {
		fx_err(f, "%s: frontend missing", what);
		return;
	}
	matched[fe - d->fe] = true;
	if (kind_s && strcmp(kind_names[fe->kind < 5 ? fe->kind : 0], kind_s) != 0)
		fx_err(f, "%s: kind %s, want %s", what, kind_names[fe->kind < 5 ? fe->kind : 0], kind_s);
	if (flags && !flags_from_json(f, flags, svc_flags, &bits) && bits != fe->flags) {
		char g[160], wf[160];

		flags_str(fe->flags, svc_flags, g, sizeof(g));
		flags_str(bits, svc_flags, wf, sizeof(wf));
		fx_err(f, "%s: flags [%s], want [%s]", what, g, wf);
	}
	if (bes)
		check_backends(f, what, d, fe, bes, cJSON_GetObjectItemCaseSensitive(w, "backend_flags"));
	if ((v = cJSON_GetObjectItemCaseSensitive(w, "svc")) && cJSON_IsString(v) && strcmp(fe->svc, v->valuestring))
		fx_err(f, "%s: svc %s, want %s", what, fe->svc, v->valuestring);
	if ((v = cJSON_GetObjectItemCaseSensitive(w, "set_key")) && cJSON_IsString(v) &&
	    (fe->set < 0 || strcmp(d->sets[fe->set].key, v->valuestring)))
		fx_err(f, "%s: set key %s, want %s", what, fe->set >= 0 ? d->sets[fe->set].key : "(none)",
		       v->valuestring);
	if ((v = cJSON_GetObjectItemCaseSensitive(w, "affinity_timeout")) && cJSON_IsNumber(v) &&
	    (fe->set < 0 || d->sets[fe->set].affinity_timeout != (uint32_t)v->valueint))
		fx_err(f, "%s: affinity_timeout %u, want %d", what, fe->set >= 0 ? d->sets[fe->set].affinity_timeout : 0,
		       v->valueint);
	if ((v = cJSON_GetObjectItemCaseSensitive(w, "algo")) && cJSON_IsString(v) &&
	    (fe->set < 0 || d->sets[fe->set].algo > 2 || strcmp(algo_names[d->sets[fe->set].algo], v->valuestring)))
		fx_err(f, "%s: algo %s, want %s", what, fe->set >= 0 ? algo_names[d->sets[fe->set].algo % 3] : "(none)",
		       v->valuestring);
	if ((v = cJSON_GetObjectItemCaseSensitive(w, "lbsr"))) {
		const cJSON *it;
		size_t i = 0;

		if ((size_t)cJSON_GetArraySize(v) != fe->n_lbsr)
			fx_err(f, "%s: %zu source ranges, want %d", what, fe->n_lbsr, cJSON_GetArraySize(v));
		cJSON_ArrayForEach(it, v) {
			char c[19];

			if (i < fe->n_lbsr && strcmp(kxp_cidr4_str(&fe->lbsr[i], c), it->valuestring))
				fx_err(f, "%s: source range %zu is %s, want %s", what, i, c, it->valuestring);
			i++;
		}
	}
}

static void check_diags(struct fx *f, const struct kxp_diags *diags, const cJSON *want)
{
	bool used[256] = { false };
	const cJSON *it;

	if ((size_t)cJSON_GetArraySize(want) != diags->n)
		fx_err(f, "want %d diags, got %zu", cJSON_GetArraySize(want), diags->n);
	cJSON_ArrayForEach(it, want) {
		const char *kind = str_of(it, "kind"), *name = str_of(it, "name"), *field = str_of(it, "field");
		const char *ns = str_of(it, "ns"), *reason = str_of(it, "reason");
		size_t i;

		for (i = 0; i < diags->n && i < 256; i++) {
			const struct kxp_diag *g = &diags->v[i];

			if (used[i] || (kind && strcmp(g->kind, kind)) || (name && strcmp(g->name, name)) ||
			    (field && strcmp(g->field, field)) || (ns && strcmp(g->ns, ns)) ||
			    (reason && !strstr(g->reason, reason)))
				continue;
			used[i] = true;
			break;
		}
		if (i == diags->n || i == 256)
			fx_err(f, "diag missing: kind=%s ns=%s name=%s field=%s reason~%s", kind ? kind : "*",
			       ns ? ns : "*", name ? name : "*", field ? field : "*", reason ? reason : "*");
	}
}

static void check_nodeips(struct fx *f, const struct kxp_desired *d, const cJSON *want)
{
	const cJSON *it;

	if ((size_t)cJSON_GetArraySize(want) != d->n_nodeips)
		fx_err(f, "want %d node IPs, got %zu", cJSON_GetArraySize(want), d->n_nodeips);
	cJSON_ArrayForEach(it, want) {
		const char *a = str_of(it, "addr");
		uint32_t addr;
		unsigned bits;
		size_t i;

		if (!a || kxp_parse_ip4(a, &addr) ||
		    flags_from_json(f, cJSON_GetObjectItemCaseSensitive(it, "flags"), nodeip_flags, &bits))
			continue;
		for (i = 0; i < d->n_nodeips; i++)
			if (d->nodeips[i].addr == addr)
				break;
		if (i == d->n_nodeips)
			fx_err(f, "node IP %s missing", a);
		else if (d->nodeips[i].flags != bits)
			fx_err(f, "node IP %s flags 0x%x, want 0x%x", a, d->nodeips[i].flags, bits);
	}
}

static void check_cfg(struct fx *f, const struct kxp_desired *d, const cJSON *want)
{
	struct kxp_cidr4 c[KXP_MAX_CIDRS];
	size_t n, i;
	const cJSON *v;

	if ((v = cJSON_GetObjectItemCaseSensitive(want, "cluster_cidrs")) && !parse_cidrs(f, v, c, &n)) {
		if (n != d->cfg.n_cluster)
			fx_err(f, "cfg: %u cluster CIDRs, want %zu", d->cfg.n_cluster, n);
		for (i = 0; i < n && i < d->cfg.n_cluster; i++)
			if (c[i].addr != d->cfg.cluster[i].addr || c[i].mask != d->cfg.cluster[i].mask)
				fx_err(f, "cfg: cluster CIDR %zu differs", i);
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(want, "service_cidrs")) && !parse_cidrs(f, v, c, &n)) {
		if (n != d->cfg.n_service)
			fx_err(f, "cfg: %u service CIDRs, want %zu", d->cfg.n_service, n);
		for (i = 0; i < n && i < d->cfg.n_service; i++)
			if (c[i].addr != d->cfg.service[i].addr || c[i].mask != d->cfg.service[i].mask)
				fx_err(f, "cfg: service CIDR %zu differs", i);
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(want, "masquerade_all")) &&
	    cJSON_IsTrue(v) != !!(d->cfg.flags & KXP_CFG_F_MASQ_ALL))
		fx_err(f, "cfg: masquerade_all %d, want %d", !!(d->cfg.flags & KXP_CFG_F_MASQ_ALL), cJSON_IsTrue(v));
}

/* Invariants every model output must hold, whatever the fixture. */
static void check_invariants(struct fx *f, const struct kxp_desired *d)
{
	size_t i;

	for (i = 0; i < d->n_fe; i++) {
		const struct kxp_d_frontend *fe = &d->fe[i];

		if (fe->set >= (int)d->n_sets || fe->set < -1)
			fx_err(f, "invariant: frontend %zu has set %d of %zu", i, fe->set, d->n_sets);
		if (fe->set >= 0 && (fe->flags & KXP_SVC_F_REJECT))
			fx_err(f, "invariant: frontend %zu has a set and REJECT", i);
		if (i > 0) {
			const struct kxp_d_frontend *p = &d->fe[i - 1];
			uint64_t a = (uint64_t)ntohl(p->addr) << 32 | (uint64_t)p->port << 16 | p->proto << 8 | p->scope;
			uint64_t b = (uint64_t)ntohl(fe->addr) << 32 | (uint64_t)fe->port << 16 | fe->proto << 8 | fe->scope;

			if (a >= b)
				fx_err(f, "invariant: frontends not sorted/unique at %zu", i);
		}
	}
	for (i = 0; i < d->n_sets; i++) {
		size_t k;
		bool used = false;

		for (k = 0; k < d->n_fe; k++)
			used |= d->fe[k].set == (int)i;
		if (!used)
			fx_err(f, "invariant: set %s is not referenced", d->sets[i].key);
		if (i > 0 && strcmp(d->sets[i - 1].key, d->sets[i].key) >= 0)
			fx_err(f, "invariant: set keys not sorted/unique at %zu", i);
	}
}

static int run_fixture(const char *path, const char *file, bool *items_seen, int *n_run)
{
	struct fx f = { .file = file };
	struct kxp_objects objs = { 0 };
	struct kxp_diags diags = { 0 };
	struct kxp_desired d = { 0 };
	struct kxp_node_cfg cfg;
	const cJSON *expect, *fes, *it, *item;
	bool *matched = NULL;
	cJSON *root = NULL;
	char *text = NULL;
	size_t len = 0, i;
	FILE *fp;
	int r;

	fp = fopen(path, "r");
	if (!fp || getdelim(&text, &len, 0, fp) < 0) {
		fx_err(&f, "cannot read fixture");
		goto out;
	}
	root = cJSON_Parse(text);
	if (!root) {
		fx_err(&f, "fixture is not valid JSON");
		goto out;
	}
	item = cJSON_GetObjectItemCaseSensitive(root, "item");
	if (cJSON_IsString(item) || cJSON_IsArray(item)) {
		const cJSON *one = cJSON_IsString(item) ? item : item->child;

		for (; one; one = cJSON_IsString(item) ? NULL : one->next)
			for (i = 0; i < sizeof(required_items) / sizeof(required_items[0]); i++)
				if (cJSON_IsString(one) && strcmp(one->valuestring, required_items[i]) == 0)
					items_seen[i] = true;
	}
	if (parse_node_cfg(&f, cJSON_GetObjectItemCaseSensitive(root, "node"), &cfg))
		goto out;
	r = k8s_objects_add_json(&objs, cJSON_GetObjectItemCaseSensitive(root, "objects"), file, &diags);
	if (r) {
		fx_err(&f, "loading objects: %d", r);
		goto out;
	}
	r = kxp_model_build(&objs, &cfg, &d, &diags);
	if (r) {
		fx_err(&f, "kxp_model_build: %d", r);
		goto out;
	}
	(*n_run)++;
	check_invariants(&f, &d);
	expect = cJSON_GetObjectItemCaseSensitive(root, "expect");
	fes = cJSON_GetObjectItemCaseSensitive(expect, "frontends");
	matched = calloc(d.n_fe + 1, sizeof(*matched));
	if (!matched)
		goto out;
	cJSON_ArrayForEach(it, fes)
		check_frontend(&f, &d, it, matched);
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(expect, "exact"))) {
		for (i = 0; i < d.n_fe; i++) {
			char buf[1024];

			if (matched[i])
				continue;
			fe_str(&d, &d.fe[i], buf, sizeof(buf));
			fx_err(&f, "unexpected frontend %s", buf);
		}
	}
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(expect, "absent")) {
		char a[32], pr[8];
		unsigned port;
		uint32_t addr;

		if (!cJSON_IsString(it) || sscanf(it->valuestring, "%31[0-9.]:%u/%7s", a, &port, pr) != 3 ||
		    kxp_parse_ip4(a, &addr)) {
			fx_err(&f, "fixture error: absent entries are \"ip:port/PROTO\"");
			continue;
		}
		if (find_fe(&d, addr, port, proto_of(pr), KXP_SCOPE_DEFAULT) ||
		    find_fe(&d, addr, port, proto_of(pr), KXP_SCOPE_INTERNAL))
			fx_err(&f, "frontend %s should be absent", it->valuestring);
	}
	/* no "diags" key means: no diagnostics at all */
	check_diags(&f, &diags, cJSON_GetObjectItemCaseSensitive(expect, "diags"));
	if ((it = cJSON_GetObjectItemCaseSensitive(expect, "nodeips")))
		check_nodeips(&f, &d, it);
	if ((it = cJSON_GetObjectItemCaseSensitive(expect, "cfg")))
		check_cfg(&f, &d, it);
	if ((it = cJSON_GetObjectItemCaseSensitive(expect, "n_sets")) && cJSON_IsNumber(it) &&
	    (size_t)it->valueint != d.n_sets)
		fx_err(&f, "want %d sets, got %zu", it->valueint, d.n_sets);
	if (f.errors)
		dump_actual(&d, &diags);
out:
	if (!f.errors)
		printf("    ok: %s\n", file);
	free(matched);
	kxp_desired_free(&d);
	kxp_objects_free(&objs);
	kxp_diags_free(&diags);
	cJSON_Delete(root);
	free(text);
	if (fp)
		fclose(fp);
	return f.errors;
}

static int json_only(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return n > 5 && strcmp(e->d_name + n - 5, ".json") == 0;
}

KXP_TEST(model_fixtures)
{
	bool seen[sizeof(required_items) / sizeof(required_items[0])] = { false };
	char dir[4096];
	struct dirent **ents;
	int n, i, failed = 0, run = 0;
	size_t k;

	snprintf(dir, sizeof(dir), "%s/selftests/fixtures/model", kxp_test_srcdir());
	n = scandir(dir, &ents, json_only, alphasort);
	if (!ASSERT_TRUE(n > 0, "fixtures found in selftests/fixtures/model"))
		return;
	for (i = 0; i < n; i++) {
		char path[8192];

		snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
		if (run_fixture(path, ents[i]->d_name, seen, &run))
			failed++;
		free(ents[i]);
	}
	free(ents);
	for (k = 0; k < sizeof(seen) / sizeof(seen[0]); k++)
		ASSERT_TRUE(seen[k], required_items[k]);
	ASSERT_EQ(run, n, "fixtures that ran");
	ASSERT_EQ(failed, 0, "failed fixtures (details above)");
}
