/* Decoders for Service, EndpointSlice and Node: validate the fields kxp reads
 * and copy them into the typed structs of objects.h. Everything else in the
 * object (managedFields, targetPort, selectors, ...) is ignored. */
#include "k8s/decode.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/ip.h"

#define LABEL_PROXY_NAME "service.kubernetes.io/service-proxy-name"
#define LABEL_HEADLESS "service.kubernetes.io/headless"
#define LABEL_SERVICE_NAME "kubernetes.io/service-name"
#define LABEL_ZONE "topology.kubernetes.io/zone"
#define ANNOT_LB_ALGO "kxp.io/lb-algorithm"
#define TAINT_TBD "ToBeDeletedByClusterAutoscaler"

#define MAX_AFFINITY_TIMEOUT 86400
#define DEF_AFFINITY_TIMEOUT 10800

/* Who a diagnostic is about. */
struct dctx {
	const char *kind;
	const char *ns;
	const char *name;
	struct kxp_diags *d;
};

static void bad(struct dctx *c, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void bad(struct dctx *c, const char *field, const char *fmt, ...)
{
	char reason[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	kxp_diags_add(c->d, c->kind, c->ns, c->name, field, "%s", reason);
}

static const char *type_name(const cJSON *v)
{
	if (cJSON_IsString(v))
		return "a string";
	if (cJSON_IsNumber(v))
		return "a number";
	if (cJSON_IsBool(v))
		return "a boolean";
	if (cJSON_IsArray(v))
		return "a list";
	if (cJSON_IsObject(v))
		return "an object";
	return "null";
}

/* The getters return 0 when the field is absent or null, 1 when present and
 * well typed, -EINVAL (with a diag) when mistyped. */
static int get_str(struct dctx *c, const cJSON *o, const char *key, const char *path, const char **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	*out = NULL;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v)) {
		bad(c, path, "expected a string, got %s", type_name(v));
		return -EINVAL;
	}
	*out = v->valuestring;
	return 1;
}

static int get_int(struct dctx *c, const cJSON *o, const char *key, const char *path, long min,
		   long max, long *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	double x;

	*out = 0;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsNumber(v)) {
		bad(c, path, "expected an integer, got %s", type_name(v));
		return -EINVAL;
	}
	x = v->valuedouble;
	if (x != floor(x)) {
		bad(c, path, "expected an integer, got %g", x);
		return -EINVAL;
	}
	if (x < (double)min || x > (double)max) {
		bad(c, path, "%.0f is out of range %ld..%ld", x, min, max);
		return -EINVAL;
	}
	*out = (long)x;
	return 1;
}

static int get_bool(struct dctx *c, const cJSON *o, const char *key, const char *path, bool *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsBool(v)) {
		bad(c, path, "expected a boolean, got %s", type_name(v));
		return -EINVAL;
	}
	*out = cJSON_IsTrue(v);
	return 1;
}

static int get_typed(struct dctx *c, const cJSON *o, const char *key, const char *path, bool array,
		     const cJSON **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	*out = NULL;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (array ? !cJSON_IsArray(v) : !cJSON_IsObject(v)) {
		bad(c, path, "expected %s, got %s", array ? "a list" : "an object", type_name(v));
		return -EINVAL;
	}
	*out = v;
	return 1;
}

#define get_array(c, o, key, path, out) get_typed(c, o, key, path, true, out)
#define get_object(c, o, key, path, out) get_typed(c, o, key, path, false, out)

static int dup_str(const char *s, char **out)
{
	*out = NULL;
	if (!s)
		return 0;
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

/* ---- shared strings ---------------------------------------------------------- */

/* Endpoints repeat a few node names and zones over and over (10,000
 * Services x 10 endpoints held 100,000 copies of a handful of names, 3 MB
 * in the agent's store): decoded endpoints share one reference-counted copy
 * of each. Decoding runs on several threads in tests: a lock. */
struct istr {
	struct istr *next;
	size_t refs;
	char s[];
};

static struct {
	pthread_mutex_t lock;
	struct istr **b;
	size_t nb, n;
} istrs = { .lock = PTHREAD_MUTEX_INITIALIZER };

static size_t istr_hash(const char *s)
{
	size_t h = 14695981039346656037ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static int istr_grow(void)
{
	size_t nb = istrs.nb ? istrs.nb * 2 : 64;
	struct istr **b = calloc(nb, sizeof(*b)), *e, *next;

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < istrs.nb; i++)
		for (e = istrs.b[i]; e; e = next) {
			size_t h = istr_hash(e->s) & (nb - 1);

			next = e->next;
			e->next = b[h];
			b[h] = e;
		}
	free(istrs.b);
	istrs.b = b;
	istrs.nb = nb;
	return 0;
}

/* A shared copy of s (NULL stays NULL); release with istr_put. */
static int istr_get(const char *s, char **out)
{
	struct istr *e = NULL;
	size_t len;

	*out = NULL;
	if (!s)
		return 0;
	pthread_mutex_lock(&istrs.lock);
	if (istrs.nb)
		for (e = istrs.b[istr_hash(s) & (istrs.nb - 1)]; e && strcmp(e->s, s); e = e->next)
			;
	if (!e && (istrs.n < istrs.nb || !istr_grow())) {
		len = strlen(s) + 1;
		e = malloc(sizeof(*e) + len);
		if (e) {
			size_t h = istr_hash(s) & (istrs.nb - 1);

			memcpy(e->s, s, len);
			e->refs = 0;
			e->next = istrs.b[h];
			istrs.b[h] = e;
			istrs.n++;
		}
	}
	if (e) {
		e->refs++;
		*out = e->s;
	}
	pthread_mutex_unlock(&istrs.lock);
	return e ? 0 : -ENOMEM;
}

static void istr_put(char *s)
{
	struct istr **pp, *e;

	if (!s)
		return;
	pthread_mutex_lock(&istrs.lock);
	for (pp = &istrs.b[istr_hash(s) & (istrs.nb - 1)]; (e = *pp); pp = &e->next) {
		if (e->s != s)
			continue;
		if (!--e->refs) {
			*pp = e->next;
			istrs.n--;
			free(e);
		}
		break;
	}
	pthread_mutex_unlock(&istrs.lock);
}

static int parse_proto(struct dctx *c, const cJSON *o, const char *path, uint8_t *out)
{
	const char *p;
	int r = get_str(c, o, "protocol", path, &p);

	if (r < 0)
		return r;
	if (r == 0 || strcmp(p, "TCP") == 0)
		*out = IPPROTO_TCP;
	else if (strcmp(p, "UDP") == 0)
		*out = IPPROTO_UDP;
	else if (strcmp(p, "SCTP") == 0)
		*out = IPPROTO_SCTP;
	else {
		bad(c, path, "unknown protocol \"%s\" (want TCP, UDP or SCTP)", p);
		return -EINVAL;
	}
	return 0;
}

/* metadata: name (required), namespace, resourceVersion, labels, annotations.
 * Sets c->ns/c->name so later diags name the object. */
struct meta {
	const char *ns, *name;
	uint64_t rv;
	const cJSON *labels, *annotations;
	bool deleting;
};

static int decode_meta(struct dctx *c, const cJSON *obj, bool namespaced, struct meta *m)
{
	const cJSON *md;
	const char *rv, *ts;
	int r;

	memset(m, 0, sizeof(*m));
	if (!cJSON_IsObject(obj)) {
		bad(c, "", "expected an object, got %s", type_name(obj));
		return -EINVAL;
	}
	r = get_object(c, obj, "metadata", "metadata", &md);
	if (r <= 0) {
		if (r == 0)
			bad(c, "metadata", "missing required field");
		return -EINVAL;
	}
	if (get_str(c, md, "namespace", "metadata.namespace", &m->ns) < 0)
		return -EINVAL;
	if (namespaced) {
		/* a manifest without namespace lands in "default", as kubectl does */
		if (!m->ns || !*m->ns)
			m->ns = "default";
		c->ns = m->ns;
	} else {
		m->ns = NULL;
	}
	r = get_str(c, md, "name", "metadata.name", &m->name);
	if (r < 0)
		return r;
	if (r == 0 || !*m->name) {
		bad(c, "metadata.name", "missing required field");
		return -EINVAL;
	}
	c->name = m->name;
	if (get_str(c, md, "resourceVersion", "metadata.resourceVersion", &rv) < 0)
		return -EINVAL;
	/* opaque to clients; kept only for logs and the watch, so no strict check */
	m->rv = rv ? strtoull(rv, NULL, 10) : 0;
	if (get_object(c, md, "labels", "metadata.labels", &m->labels) < 0 ||
	    get_object(c, md, "annotations", "metadata.annotations", &m->annotations) < 0 ||
	    get_str(c, md, "deletionTimestamp", "metadata.deletionTimestamp", &ts) < 0)
		return -EINVAL;
	m->deleting = ts != NULL;
	return 0;
}

/* A label or annotation value; 0 absent, 1 present, -EINVAL not a string. */
static int get_label(struct dctx *c, const cJSON *map, const char *what, const char *key, const char **out)
{
	char path[160];

	*out = NULL;
	if (!map)
		return 0;
	snprintf(path, sizeof(path), "metadata.%s[%s]", what, key);
	return get_str(c, map, key, path, out);
}

/* Growable arrays: the capacity is the next power of two >= n (see
 * objects.h), so it needs no field of its own. */
static int grow(void **v, size_t n, size_t size)
{
	void *p;

	if (n & (n - 1))
		return 0; /* not a power of two (nor 0): there is room */
	p = realloc(*v, (n ? n * 2 : 1) * size);
	if (!p)
		return -ENOMEM;
	*v = p;
	return 0;
}

#define PUSH(arr, n, val)                                                                          \
	({                                                                                         \
		int e_ = grow((void **)&(arr), (n), sizeof(*(arr)));                               \
		if (!e_)                                                                           \
			(arr)[(n)++] = (val);                                                      \
		e_;                                                                                \
	})

/* ---- Service -------------------------------------------------------------- */

void k8s_service_free(struct k8s_service *s)
{
	size_t i;

	if (!s)
		return;
	free(s->ns);
	free(s->name);
	free(s->proxy_name);
	free(s->cluster_ips);
	for (i = 0; i < s->n_ports; i++)
		free(s->ports[i].name);
	free(s->ports);
	free(s->external_ips);
	free(s->lb_ingress);
	for (i = 0; i < s->n_lb_source_ranges; i++)
		free(s->lb_source_ranges[i]);
	free(s->lb_source_ranges);
	free(s->lb_algorithm);
	memset(s, 0, sizeof(*s));
}

static int svc_cluster_ips(struct dctx *c, const cJSON *spec, struct k8s_service *s)
{
	const cJSON *ips, *it;
	const char *one;
	size_t i = 0;
	int r;

	if ((r = get_array(c, spec, "clusterIPs", "spec.clusterIPs", &ips)) < 0 ||
	    get_str(c, spec, "clusterIP", "spec.clusterIP", &one) < 0)
		return -EINVAL;
	if (!ips || cJSON_GetArraySize(ips) == 0) {
		/* older objects and hand-written manifests carry only clusterIP */
		if (!one || !*one || strcmp(one, "None") == 0) {
			s->headless = true;
			return 0;
		}
		if (kxp_is_ip6(one)) {
			s->has_ipv6 = true;
			return 0;
		}
		s->cluster_ips = malloc(sizeof(uint32_t));
		if (!s->cluster_ips)
			return -ENOMEM;
		if (kxp_parse_ip4(one, &s->cluster_ips[0])) {
			bad(c, "spec.clusterIP", "invalid IP address \"%s\"", one);
			return -EINVAL;
		}
		s->n_cluster_ips = 1;
		return 0;
	}
	cJSON_ArrayForEach(it, ips) {
		char path[64];
		uint32_t a;

		snprintf(path, sizeof(path), "spec.clusterIPs[%zu]", i++);
		if (!cJSON_IsString(it)) {
			bad(c, path, "expected a string, got %s", type_name(it));
			return -EINVAL;
		}
		if (!*it->valuestring || strcmp(it->valuestring, "None") == 0) {
			s->headless = true;
			continue;
		}
		if (kxp_is_ip6(it->valuestring)) {
			s->has_ipv6 = true;
			continue;
		}
		if (kxp_parse_ip4(it->valuestring, &a)) {
			bad(c, path, "invalid IP address \"%s\"", it->valuestring);
			return -EINVAL;
		}
		if (PUSH(s->cluster_ips, s->n_cluster_ips, a))
			return -ENOMEM;
	}
	if (s->n_cluster_ips || s->has_ipv6)
		s->headless = false;
	return 0;
}

static int svc_ports(struct dctx *c, const cJSON *spec, struct k8s_service *s)
{
	const cJSON *ports, *p;
	size_t i = 0;
	int r;

	if ((r = get_array(c, spec, "ports", "spec.ports", &ports)) <= 0)
		return r;
	cJSON_ArrayForEach(p, ports) {
		struct k8s_svc_port sp = { 0 };
		char path[64], fpath[96];
		const char *name;
		long v;

		snprintf(path, sizeof(path), "spec.ports[%zu]", i++);
		if (!cJSON_IsObject(p)) {
			bad(c, path, "expected an object, got %s", type_name(p));
			return -EINVAL;
		}
		snprintf(fpath, sizeof(fpath), "%s.name", path);
		if (get_str(c, p, "name", fpath, &name) < 0)
			return -EINVAL;
		snprintf(fpath, sizeof(fpath), "%s.protocol", path);
		if (parse_proto(c, p, fpath, &sp.proto))
			return -EINVAL;
		snprintf(fpath, sizeof(fpath), "%s.port", path);
		r = get_int(c, p, "port", fpath, 1, 65535, &v);
		if (r <= 0) {
			if (r == 0)
				bad(c, fpath, "missing required field");
			return -EINVAL;
		}
		sp.port = (uint16_t)v;
		snprintf(fpath, sizeof(fpath), "%s.nodePort", path);
		if (get_int(c, p, "nodePort", fpath, 1, 65535, &v) < 0)
			return -EINVAL;
		sp.node_port = (uint16_t)v;
		/* targetPort is deliberately not read: the EndpointSlice port is the
		 * DNAT port (semantics item 4) */
		sp.name = strdup(name ? name : "");
		if (!sp.name)
			return -ENOMEM;
		if (PUSH(s->ports, s->n_ports, sp)) {
			free(sp.name);
			return -ENOMEM;
		}
	}
	return 0;
}

/* externalIPs: kube-proxy skips invalid entries with a log; so do we. */
static int svc_external_ips(struct dctx *c, const cJSON *spec, struct k8s_service *s)
{
	const cJSON *arr, *it;
	size_t i = 0;
	int r;

	if ((r = get_array(c, spec, "externalIPs", "spec.externalIPs", &arr)) <= 0)
		return r;
	cJSON_ArrayForEach(it, arr) {
		char path[64];
		uint32_t a;

		snprintf(path, sizeof(path), "spec.externalIPs[%zu]", i++);
		if (!cJSON_IsString(it)) {
			bad(c, path, "expected a string, got %s; entry ignored", type_name(it));
			continue;
		}
		if (kxp_is_ip6(it->valuestring))
			continue;
		if (kxp_parse_ip4(it->valuestring, &a)) {
			bad(c, path, "invalid IP address \"%s\"; entry ignored", it->valuestring);
			continue;
		}
		if (PUSH(s->external_ips, s->n_external_ips, a))
			return -ENOMEM;
	}
	return 0;
}

static char *trim(const char *s)
{
	const char *e;
	char *out;

	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		e--;
	out = malloc((size_t)(e - s) + 1);
	if (out) {
		memcpy(out, s, (size_t)(e - s));
		out[e - s] = 0;
	}
	return out;
}

static int svc_source_ranges(struct dctx *c, const cJSON *spec, struct k8s_service *s)
{
	const cJSON *arr, *it;
	size_t i = 0;
	int r;

	if ((r = get_array(c, spec, "loadBalancerSourceRanges", "spec.loadBalancerSourceRanges", &arr)) <= 0)
		return r;
	cJSON_ArrayForEach(it, arr) {
		struct kxp_cidr4 cidr;
		char path[64], *t;

		snprintf(path, sizeof(path), "spec.loadBalancerSourceRanges[%zu]", i++);
		if (!cJSON_IsString(it)) {
			bad(c, path, "expected a string, got %s; entry ignored", type_name(it));
			continue;
		}
		/* kube-proxy trims whitespace (semantics item 7) */
		t = trim(it->valuestring);
		if (!t)
			return -ENOMEM;
		if (kxp_parse_cidr4(t, &cidr) && !kxp_is_cidr6(t)) {
			bad(c, path, "invalid CIDR \"%s\"; entry ignored", it->valuestring);
			free(t);
			continue;
		}
		if (PUSH(s->lb_source_ranges, s->n_lb_source_ranges, t)) {
			free(t);
			return -ENOMEM;
		}
	}
	return 0;
}

static int svc_lb_status(struct dctx *c, const cJSON *obj, struct k8s_service *s)
{
	const cJSON *st, *lb, *ing, *it;
	size_t i = 0;

	if (get_object(c, obj, "status", "status", &st) <= 0 ||
	    get_object(c, st, "loadBalancer", "status.loadBalancer", &lb) <= 0 ||
	    get_array(c, lb, "ingress", "status.loadBalancer.ingress", &ing) <= 0)
		return 0; /* status is informational: a mistyped one was reported, go on */
	cJSON_ArrayForEach(it, ing) {
		struct k8s_lb_ingress e = { 0 };
		char path[64], fpath[96];
		const char *ip, *mode;

		snprintf(path, sizeof(path), "status.loadBalancer.ingress[%zu]", i++);
		if (!cJSON_IsObject(it)) {
			bad(c, path, "expected an object, got %s; entry ignored", type_name(it));
			continue;
		}
		snprintf(fpath, sizeof(fpath), "%s.ip", path);
		if (get_str(c, it, "ip", fpath, &ip) < 0)
			continue;
		/* hostname-only entries are not programmed (semantics item 8) */
		if (!ip || !*ip || kxp_is_ip6(ip))
			continue;
		if (kxp_parse_ip4(ip, &e.ip)) {
			bad(c, fpath, "invalid IP address \"%s\"; entry ignored", ip);
			continue;
		}
		snprintf(fpath, sizeof(fpath), "%s.ipMode", path);
		if (get_str(c, it, "ipMode", fpath, &mode) < 0)
			continue;
		if (mode && strcmp(mode, "Proxy") == 0) {
			e.ip_mode_proxy = true;
		} else if (mode && strcmp(mode, "VIP") != 0) {
			bad(c, fpath, "unknown ipMode \"%s\" (want VIP or Proxy); entry ignored", mode);
			continue;
		}
		if (PUSH(s->lb_ingress, s->n_lb_ingress, e))
			return -ENOMEM;
	}
	return 0;
}

/* A string field that must be one of two words; *is_second says which. */
static int get_choice(struct dctx *c, const cJSON *o, const char *key, const char *path,
		      const char *first, const char *second, bool *is_second)
{
	const char *v;
	int r = get_str(c, o, key, path, &v);

	*is_second = false;
	if (r <= 0)
		return r;
	if (strcmp(v, second) == 0)
		*is_second = true;
	else if (strcmp(v, first) != 0) {
		bad(c, path, "unknown value \"%s\" (want %s or %s)", v, first, second);
		return -EINVAL;
	}
	return 0;
}

static int svc_spec(struct dctx *c, const cJSON *obj, struct k8s_service *s)
{
	const cJSON *spec, *cfg, *cip;
	const char *type;
	long v;
	int r;

	r = get_object(c, obj, "spec", "spec", &spec);
	if (r <= 0) {
		if (r == 0)
			bad(c, "spec", "missing required field");
		return -EINVAL;
	}
	if (get_str(c, spec, "type", "spec.type", &type) < 0)
		return -EINVAL;
	if (!type || strcmp(type, "ClusterIP") == 0)
		s->type = K8S_SVC_CLUSTERIP;
	else if (strcmp(type, "NodePort") == 0)
		s->type = K8S_SVC_NODEPORT;
	else if (strcmp(type, "LoadBalancer") == 0)
		s->type = K8S_SVC_LOADBALANCER;
	else if (strcmp(type, "ExternalName") == 0)
		s->type = K8S_SVC_EXTERNALNAME;
	else {
		bad(c, "spec.type", "unknown service type \"%s\"", type);
		return -EINVAL;
	}
	if ((r = svc_cluster_ips(c, spec, s)) || (r = svc_ports(c, spec, s)) ||
	    (r = svc_external_ips(c, spec, s)) || (r = svc_source_ranges(c, spec, s)))
		return r;
	if (get_choice(c, spec, "externalTrafficPolicy", "spec.externalTrafficPolicy", "Cluster", "Local",
		       &s->etp_local) ||
	    get_choice(c, spec, "internalTrafficPolicy", "spec.internalTrafficPolicy", "Cluster", "Local",
		       &s->itp_local) ||
	    get_choice(c, spec, "sessionAffinity", "spec.sessionAffinity", "None", "ClientIP",
		       &s->affinity_client_ip))
		return -EINVAL;
	s->affinity_timeout = DEF_AFFINITY_TIMEOUT;
	if (get_object(c, spec, "sessionAffinityConfig", "spec.sessionAffinityConfig", &cfg) < 0 ||
	    (cfg && get_object(c, cfg, "clientIP", "spec.sessionAffinityConfig.clientIP", &cip) < 0))
		return -EINVAL;
	if (cfg && cip) {
		r = get_int(c, cip, "timeoutSeconds", "spec.sessionAffinityConfig.clientIP.timeoutSeconds", 1,
			    MAX_AFFINITY_TIMEOUT, &v);
		if (r < 0)
			return r;
		if (r)
			s->affinity_timeout = (uint32_t)v;
	}
	if (get_int(c, spec, "healthCheckNodePort", "spec.healthCheckNodePort", 1, 65535, &v) < 0)
		return -EINVAL;
	s->health_check_node_port = (uint16_t)v;
	return svc_lb_status(c, obj, s);
}

/* unnamed: what diags call an object without metadata.name */
static int decode_service(const cJSON *obj, struct k8s_service *s, struct kxp_diags *d, const char *unnamed)
{
	struct dctx c = { .kind = "Service", .ns = "", .name = unnamed, .d = d };
	const char *proxy, *headless, *algo;
	struct meta m;
	int r;

	memset(s, 0, sizeof(*s));
	if ((r = decode_meta(&c, obj, true, &m)))
		return r;
	if (get_label(&c, m.labels, "labels", LABEL_PROXY_NAME, &proxy) < 0 ||
	    get_label(&c, m.labels, "labels", LABEL_HEADLESS, &headless) < 0 ||
	    get_label(&c, m.annotations, "annotations", ANNOT_LB_ALGO, &algo) < 0)
		return -EINVAL;
	/* the headless label matters by presence, whatever its value */
	s->headless_label = m.labels && cJSON_GetObjectItemCaseSensitive(m.labels, LABEL_HEADLESS);
	s->resource_version = m.rv;
	if (dup_str(m.ns, &s->ns) || dup_str(m.name, &s->name) || dup_str(proxy, &s->proxy_name) ||
	    dup_str(algo, &s->lb_algorithm)) {
		r = -ENOMEM;
		goto fail;
	}
	if ((r = svc_spec(&c, obj, s)))
		goto fail;
	return 0;
fail:
	k8s_service_free(s);
	return r;
}

int k8s_decode_service(const cJSON *obj, struct k8s_service *s, struct kxp_diags *d)
{
	return decode_service(obj, s, d, "");
}

/* ---- EndpointSlice ---------------------------------------------------------- */

static void endpoint_free(struct k8s_endpoint *e)
{
	size_t i;

	istr_put(e->node_name);
	istr_put(e->zone);
	if (!e->hints)
		return;
	for (i = 0; i < e->hints->n_zones; i++)
		free(e->hints->zones[i]);
	free(e->hints->zones);
	for (i = 0; i < e->hints->n_nodes; i++)
		free(e->hints->nodes[i]);
	free(e->hints->nodes);
	free(e->hints);
}

void k8s_endpointslice_free(struct k8s_endpointslice *s)
{
	size_t i;

	if (!s)
		return;
	free(s->ns);
	free(s->name);
	free(s->service_name);
	free(s->proxy_name);
	for (i = 0; i < s->n_eps; i++)
		endpoint_free(&s->eps[i]);
	free(s->eps);
	for (i = 0; i < s->n_ports; i++)
		free(s->ports[i].name);
	free(s->ports);
	memset(s, 0, sizeof(*s));
}

/* hints.forZones / hints.forNodes: lists of {"name": ...}. */
static int ep_hints(struct dctx *c, const cJSON *hints, const char *key, const char *path, char ***out,
		    size_t *n)
{
	const cJSON *arr, *it;
	size_t i = 0;
	int r;

	if ((r = get_array(c, hints, key, path, &arr)) <= 0)
		return r;
	cJSON_ArrayForEach(it, arr) {
		char ipath[128];
		const char *name;
		char *dup;

		snprintf(ipath, sizeof(ipath), "%s[%zu].name", path, i++);
		if (!cJSON_IsObject(it)) {
			bad(c, ipath, "expected an object, got %s", type_name(it));
			return -EINVAL;
		}
		if (get_str(c, it, "name", ipath, &name) < 0)
			return -EINVAL;
		if (!name)
			continue;
		if (!(dup = strdup(name)) || PUSH(*out, *n, dup)) {
			free(dup);
			return -ENOMEM;
		}
	}
	return 0;
}

/* One endpoint. Returns 1 if *e was filled, 0 if the endpoint is ignored,
 * <0 on error. */
static int slice_endpoint(struct dctx *c, const cJSON *it, const char *path, int addr_type,
			  struct k8s_endpoint *e)
{
	const cJSON *addrs, *cond, *hints, *a0;
	const char *node, *zone;
	char fpath[128];
	int r;

	memset(e, 0, sizeof(*e));
	if (!cJSON_IsObject(it)) {
		bad(c, path, "expected an object, got %s", type_name(it));
		return -EINVAL;
	}
	snprintf(fpath, sizeof(fpath), "%s.addresses", path);
	if ((r = get_array(c, it, "addresses", fpath, &addrs)) < 0)
		return r;
	/* only addresses[0] is used; an endpoint without one is ignored (item 5) */
	a0 = addrs ? cJSON_GetArrayItem(addrs, 0) : NULL;
	if (!a0)
		return 0;
	snprintf(fpath, sizeof(fpath), "%s.addresses[0]", path);
	if (!cJSON_IsString(a0)) {
		bad(c, fpath, "expected a string, got %s", type_name(a0));
		return -EINVAL;
	}
	if (addr_type == K8S_ADDR_IPV4 && kxp_parse_ip4(a0->valuestring, &e->addr)) {
		bad(c, fpath, "invalid IP address \"%s\"", a0->valuestring);
		return -EINVAL;
	}
	/* condition defaults (item 6) */
	e->ready = e->serving = true;
	snprintf(fpath, sizeof(fpath), "%s.conditions", path);
	if (get_object(c, it, "conditions", fpath, &cond) < 0)
		return -EINVAL;
	if (cond) {
		snprintf(fpath, sizeof(fpath), "%s.conditions.ready", path);
		if (get_bool(c, cond, "ready", fpath, &e->ready) < 0)
			return -EINVAL;
		snprintf(fpath, sizeof(fpath), "%s.conditions.serving", path);
		if (get_bool(c, cond, "serving", fpath, &e->serving) < 0)
			return -EINVAL;
		snprintf(fpath, sizeof(fpath), "%s.conditions.terminating", path);
		if (get_bool(c, cond, "terminating", fpath, &e->terminating) < 0)
			return -EINVAL;
	}
	snprintf(fpath, sizeof(fpath), "%s.nodeName", path);
	if (get_str(c, it, "nodeName", fpath, &node) < 0)
		return -EINVAL;
	snprintf(fpath, sizeof(fpath), "%s.zone", path);
	if (get_str(c, it, "zone", fpath, &zone) < 0)
		return -EINVAL;
	if (istr_get(node, &e->node_name) || istr_get(zone, &e->zone))
		return -ENOMEM;
	snprintf(fpath, sizeof(fpath), "%s.hints", path);
	if (get_object(c, it, "hints", fpath, &hints) < 0)
		return -EINVAL;
	if (hints) {
		struct k8s_ep_hints *h = calloc(1, sizeof(*h));

		if (!h)
			return -ENOMEM;
		e->hints = h; /* endpoint_free frees it, whatever happens below */
		snprintf(fpath, sizeof(fpath), "%s.hints.forZones", path);
		if ((r = ep_hints(c, hints, "forZones", fpath, &h->zones, &h->n_zones)))
			return r;
		snprintf(fpath, sizeof(fpath), "%s.hints.forNodes", path);
		if ((r = ep_hints(c, hints, "forNodes", fpath, &h->nodes, &h->n_nodes)))
			return r;
		if (!h->n_zones && !h->n_nodes) {
			free(h->zones);
			free(h->nodes);
			free(h);
			e->hints = NULL;
		}
	}
	return 1;
}

static int slice_endpoints(struct dctx *c, const cJSON *obj, struct k8s_endpointslice *s)
{
	const cJSON *arr, *it;
	size_t i = 0;
	int r;

	if ((r = get_array(c, obj, "endpoints", "endpoints", &arr)) <= 0)
		return r;
	cJSON_ArrayForEach(it, arr) {
		struct k8s_endpoint e;
		char path[64];

		snprintf(path, sizeof(path), "endpoints[%zu]", i++);
		r = slice_endpoint(c, it, path, s->addr_type, &e);
		if (r <= 0) {
			endpoint_free(&e);
			if (r < 0)
				return r;
			continue;
		}
		if (PUSH(s->eps, s->n_eps, e)) {
			endpoint_free(&e);
			return -ENOMEM;
		}
	}
	return 0;
}

static int slice_ports(struct dctx *c, const cJSON *obj, struct k8s_endpointslice *s)
{
	const cJSON *arr, *it;
	size_t i = 0;
	int r;

	if ((r = get_array(c, obj, "ports", "ports", &arr)) <= 0)
		return r;
	cJSON_ArrayForEach(it, arr) {
		struct k8s_ep_port p = { 0 };
		char path[64], fpath[96];
		const char *name;
		long v;

		snprintf(path, sizeof(path), "ports[%zu]", i++);
		if (!cJSON_IsObject(it)) {
			bad(c, path, "expected an object, got %s", type_name(it));
			return -EINVAL;
		}
		snprintf(fpath, sizeof(fpath), "%s.name", path);
		if (get_str(c, it, "name", fpath, &name) < 0)
			return -EINVAL;
		snprintf(fpath, sizeof(fpath), "%s.protocol", path);
		if (parse_proto(c, it, fpath, &p.proto))
			return -EINVAL;
		/* port 0 or absent is legal here and makes the model ignore the port */
		snprintf(fpath, sizeof(fpath), "%s.port", path);
		if (get_int(c, it, "port", fpath, 0, 65535, &v) < 0)
			return -EINVAL;
		p.port = (uint16_t)v;
		if (dup_str(name, &p.name))
			return -ENOMEM;
		if (PUSH(s->ports, s->n_ports, p)) {
			free(p.name);
			return -ENOMEM;
		}
	}
	return 0;
}

/* unnamed: what diags call an object without metadata.name */
static int decode_endpointslice(const cJSON *obj, struct k8s_endpointslice *s, struct kxp_diags *d, const char *unnamed)
{
	struct dctx c = { .kind = "EndpointSlice", .ns = "", .name = unnamed, .d = d };
	const char *svc, *proxy, *headless, *at;
	struct meta m;
	int r;

	memset(s, 0, sizeof(*s));
	if ((r = decode_meta(&c, obj, true, &m)))
		return r;
	if (get_label(&c, m.labels, "labels", LABEL_SERVICE_NAME, &svc) < 0 ||
	    get_label(&c, m.labels, "labels", LABEL_PROXY_NAME, &proxy) < 0 ||
	    get_label(&c, m.labels, "labels", LABEL_HEADLESS, &headless) < 0)
		return -EINVAL;
	s->headless_label = m.labels && cJSON_GetObjectItemCaseSensitive(m.labels, LABEL_HEADLESS);
	s->resource_version = m.rv;
	r = get_str(&c, obj, "addressType", "addressType", &at);
	if (r <= 0) {
		if (r == 0)
			bad(&c, "addressType", "missing required field");
		return -EINVAL;
	}
	if (strcmp(at, "IPv4") == 0)
		s->addr_type = K8S_ADDR_IPV4;
	else if (strcmp(at, "IPv6") == 0)
		s->addr_type = K8S_ADDR_IPV6;
	else if (strcmp(at, "FQDN") == 0)
		s->addr_type = K8S_ADDR_FQDN;
	else {
		bad(&c, "addressType", "unknown address type \"%s\" (want IPv4, IPv6 or FQDN)", at);
		return -EINVAL;
	}
	if (dup_str(m.ns, &s->ns) || dup_str(m.name, &s->name) || dup_str(svc, &s->service_name) ||
	    dup_str(proxy, &s->proxy_name)) {
		r = -ENOMEM;
		goto fail;
	}
	if ((r = slice_endpoints(&c, obj, s)) || (r = slice_ports(&c, obj, s)))
		goto fail;
	/* the store keeps every slice: no room for appends (nothing appends
	 * after decoding), e.g. 10 endpoints in 640 bytes, not 1,024 */
	if (s->n_eps & (s->n_eps - 1)) {
		struct k8s_endpoint *v = realloc(s->eps, s->n_eps * sizeof(*v));

		if (v)
			s->eps = v;
	}
	return 0;
fail:
	k8s_endpointslice_free(s);
	return r;
}

int k8s_decode_endpointslice(const cJSON *obj, struct k8s_endpointslice *s, struct kxp_diags *d)
{
	return decode_endpointslice(obj, s, d, "");
}

/* ---- Node ----------------------------------------------------------------- */

void k8s_node_free(struct k8s_node *n)
{
	if (!n)
		return;
	free(n->name);
	free(n->zone);
	free(n->internal_ips);
	memset(n, 0, sizeof(*n));
}

static int node_addresses(struct dctx *c, const cJSON *obj, struct k8s_node *n)
{
	const cJSON *st, *arr, *it;
	size_t i = 0;
	int r;

	if ((r = get_object(c, obj, "status", "status", &st)) <= 0 ||
	    (r = get_array(c, st, "addresses", "status.addresses", &arr)) <= 0)
		return r;
	cJSON_ArrayForEach(it, arr) {
		char path[64], fpath[96];
		const char *type, *addr;
		uint32_t a;

		snprintf(path, sizeof(path), "status.addresses[%zu]", i++);
		if (!cJSON_IsObject(it)) {
			bad(c, path, "expected an object, got %s", type_name(it));
			return -EINVAL;
		}
		snprintf(fpath, sizeof(fpath), "%s.type", path);
		if (get_str(c, it, "type", fpath, &type) < 0)
			return -EINVAL;
		snprintf(fpath, sizeof(fpath), "%s.address", path);
		if (get_str(c, it, "address", fpath, &addr) < 0)
			return -EINVAL;
		if (!type || strcmp(type, "InternalIP") != 0 || !addr || kxp_is_ip6(addr))
			continue;
		if (kxp_parse_ip4(addr, &a)) {
			bad(c, fpath, "invalid IP address \"%s\"; entry ignored", addr);
			continue;
		}
		if (PUSH(n->internal_ips, n->n_internal_ips, a))
			return -ENOMEM;
	}
	return 0;
}

static int node_taints(struct dctx *c, const cJSON *obj, struct k8s_node *n)
{
	const cJSON *spec, *arr, *it;
	int r;

	if ((r = get_object(c, obj, "spec", "spec", &spec)) <= 0 ||
	    (r = get_array(c, spec, "taints", "spec.taints", &arr)) <= 0)
		return r;
	cJSON_ArrayForEach(it, arr) {
		const cJSON *key = cJSON_GetObjectItemCaseSensitive(it, "key");

		if (cJSON_IsString(key) && strcmp(key->valuestring, TAINT_TBD) == 0)
			n->tbd_taint = true;
	}
	return 0;
}

/* unnamed: what diags call an object without metadata.name */
static int decode_node(const cJSON *obj, struct k8s_node *n, struct kxp_diags *d, const char *unnamed)
{
	struct dctx c = { .kind = "Node", .ns = "", .name = unnamed, .d = d };
	const char *zone;
	struct meta m;
	int r;

	memset(n, 0, sizeof(*n));
	if ((r = decode_meta(&c, obj, false, &m)))
		return r;
	if (get_label(&c, m.labels, "labels", LABEL_ZONE, &zone) < 0)
		return -EINVAL;
	n->resource_version = m.rv;
	n->deleting = m.deleting;
	if (dup_str(m.name, &n->name) || dup_str(zone, &n->zone)) {
		r = -ENOMEM;
		goto fail;
	}
	if ((r = node_addresses(&c, obj, n)) || (r = node_taints(&c, obj, n)))
		goto fail;
	return 0;
fail:
	k8s_node_free(n);
	return r;
}

int k8s_decode_node(const cJSON *obj, struct k8s_node *n, struct kxp_diags *d)
{
	return decode_node(obj, n, d, "");
}

/* ---- documents ------------------------------------------------------------ */

static const char *str_item(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Decode one object by kind/apiVersion (inferred ones come from a typed list). */
static int add_object(struct kxp_objects *objs, const cJSON *obj, const char *kind_in,
		      const char *api_in, const char *origin, const char *where, struct kxp_diags *d)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const char *kind = str_item(obj, "kind"), *api = str_item(obj, "apiVersion");
	const char *ns = str_item(md, "namespace"), *name = str_item(md, "name");
	const char *want_api = NULL;
	char unnamed[300];
	int r;

	if (!kind)
		kind = kind_in;
	if (!api)
		api = api_in;
	if (!name) {
		/* so that a diag still says which object */
		snprintf(unnamed, sizeof(unnamed), "(unnamed, %s%s)", origin, where);
		name = unnamed;
	}
	if (!kind) {
		kxp_diags_add(d, "object", ns, name, "kind", "missing required field; skipped");
		return 0;
	}
	if (strcmp(kind, "Service") == 0 || strcmp(kind, "Node") == 0)
		want_api = "v1";
	else if (strcmp(kind, "EndpointSlice") == 0)
		want_api = "discovery.k8s.io/v1";
	if (!want_api) {
		kxp_diags_add(d, kind, ns, name, "kind", "unknown kind %s (%s); skipped", kind,
			      api ? api : "no apiVersion");
		return 0;
	}
	if (!api || strcmp(api, want_api) != 0) {
		kxp_diags_add(d, kind, ns, name, "apiVersion", "%s %s is not supported (want %s); skipped",
			      kind, api ? api : "without apiVersion", want_api);
		return 0;
	}
	if (kind[0] == 'S') {
		struct k8s_service s;

		r = decode_service(obj, &s, d, name);
		if (!r && (r = PUSH(objs->svcs, objs->n_svcs, s)))
			k8s_service_free(&s);
	} else if (kind[0] == 'E') {
		struct k8s_endpointslice s;

		r = decode_endpointslice(obj, &s, d, name);
		if (!r && (r = PUSH(objs->slices, objs->n_slices, s)))
			k8s_endpointslice_free(&s);
	} else {
		struct k8s_node n;

		r = decode_node(obj, &n, d, name);
		if (!r && (r = PUSH(objs->nodes, objs->n_nodes, n)))
			k8s_node_free(&n);
	}
	/* a rejected object is already reported; only OOM stops the load */
	return r == -ENOMEM ? r : 0;
}

static int add_value(struct kxp_objects *objs, const cJSON *v, const char *origin, const char *where,
		     int depth, struct kxp_diags *d)
{
	const char *kind;
	size_t len;
	int r;

	if (cJSON_IsNull(v))
		return 0; /* an empty YAML document */
	if (depth > 2) {
		kxp_diags_add(d, "file", NULL, origin, where, "lists nested too deep; skipped");
		return 0;
	}
	if (cJSON_IsArray(v)) {
		const cJSON *it;
		size_t i = 0;

		cJSON_ArrayForEach(it, v) {
			char w[128];

			snprintf(w, sizeof(w), "%s[%zu]", where, i++);
			if ((r = add_value(objs, it, origin, w, depth + 1, d)))
				return r;
		}
		return 0;
	}
	if (!cJSON_IsObject(v)) {
		kxp_diags_add(d, "file", NULL, origin, where, "expected an object, got %s; skipped",
			      type_name(v));
		return 0;
	}
	kind = str_item(v, "kind");
	len = kind ? strlen(kind) : 0;
	if (len >= 4 && strcmp(kind + len - 4, "List") == 0) {
		const cJSON *items = cJSON_GetObjectItemCaseSensitive(v, "items"), *it;
		const char *api = str_item(v, "apiVersion");
		char item_kind[64] = "";
		size_t i = 0;

		/* items of a typed list may omit kind/apiVersion: infer them */
		if (len > 4 && len - 4 < sizeof(item_kind))
			snprintf(item_kind, sizeof(item_kind), "%.*s", (int)(len - 4), kind);
		if (!cJSON_IsArray(items) && !cJSON_IsNull(items) && items) {
			kxp_diags_add(d, kind, NULL, origin, "items", "expected a list, got %s; skipped",
				      type_name(items));
			return 0;
		}
		cJSON_ArrayForEach(it, items) {
			char w[128];

			snprintf(w, sizeof(w), "%s%sitems[%zu]", where, *where ? "." : "", i++);
			if (cJSON_IsObject(it)) {
				r = add_object(objs, it, item_kind[0] ? item_kind : NULL,
					       item_kind[0] ? api : NULL, origin, w, d);
			} else {
				kxp_diags_add(d, kind, NULL, origin, w, "expected an object, got %s; skipped",
					      type_name(it));
				r = 0;
			}
			if (r)
				return r;
		}
		return 0;
	}
	return add_object(objs, v, NULL, NULL, origin, where, d);
}

int k8s_objects_add_json(struct kxp_objects *objs, const cJSON *root, const char *origin,
			 struct kxp_diags *d)
{
	return add_value(objs, root, origin ? origin : "", "", 0, d);
}

int k8s_objects_add_doc(struct kxp_objects *objs, const cJSON *doc, size_t i, const char *origin,
			struct kxp_diags *d)
{
	char w[32];

	snprintf(w, sizeof(w), "[%zu]", i);
	return add_value(objs, doc, origin ? origin : "", w, 1, d);
}

int k8s_watch_event(const cJSON *ev, enum k8s_watch_type *type, const cJSON **obj)
{
	static const char *const names[] = { "ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR" };
	const char *t = str_item(ev, "type");
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(ev, "object");
	unsigned i;

	if (!t || !cJSON_IsObject(o))
		return -EINVAL;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(t, names[i]) == 0) {
			*type = (enum k8s_watch_type)i;
			*obj = o;
			return 0;
		}
	}
	return -EINVAL;
}
