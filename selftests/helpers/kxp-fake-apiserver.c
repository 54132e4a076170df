/* kxp-fake-apiserver: a test double of the Kubernetes API server for the
 * parts kxp uses (Services, EndpointSlices, Nodes: paginated LIST, WATCH,
 * bookmarks, 410 after compaction, bearer token, TLS), scriptable at runtime.
 *
 * Usage:
 *   kxp-fake-apiserver --listen 127.0.0.1:PORT [--control 127.0.0.1:PORT2]
 *       [--token T] [--tls-cert FILE --tls-key FILE] [--load FILE]
 *       [--max-seconds N] [--bookmark-interval S] [--watch-timeout S]
 *       [--history N] [--continue-ttl S] [--ready-file FILE] [--verbose]
 *   PORT 0 picks a free port. When both sockets listen it prints one line on
 *   stdout, "READY api=HOST:PORT control=HOST:PORT2", and writes the same
 *   line to --ready-file (written to a temporary name, then renamed).
 *   --load: a JSON object, List or array of Service/EndpointSlice/Node
 *   objects, loaded before listening (no watch history: a watch must start
 *   from the resourceVersion of a list). Exits after --max-seconds, SIGINT or SIGTERM.
 *
 * API (--listen; TLS when --tls-cert/--tls-key are given; the bearer token
 * is checked when --token is given: 401 otherwise):
 *   GET /api/v1/services, /api/v1/namespaces/NS/services,
 *       /apis/discovery.k8s.io/v1/endpointslices (and .../namespaces/NS/...),
 *       /api/v1/nodes, /api/v1/nodes/NAME, /version, /healthz
 *   List: limit, continue (tokens expire after --continue-ttl or a compaction:
 *   410 Expired), labelSelector (key, !key, key=v, key==v, key!=v,
 *   key in (a,b), key notin (a,b)), fieldSelector (metadata.name,
 *   metadata.namespace with =, ==, !=). Items sorted by namespace/name,
 *   without kind/apiVersion, as the real server sends them.
 *   Watch (watch=1|true): resourceVersion (unset or 0: ADDED for every current
 *   object first), events since then from a bounded history; an RV older than
 *   the history gets one ERROR event (410 Expired) and the stream ends, as
 *   after an etcd compaction. allowWatchBookmarks=true: a BOOKMARK every
 *   --bookmark-interval seconds. timeoutSeconds ends the stream cleanly.
 *   Objects moving in/out of a label selector become ADDED/DELETED.
 *   Resource versions are one counter across kinds (as etcd's).
 *
 * Control (--control, plain HTTP, any method; JSON answers):
 *   /apply            body: an object, a List or an array of objects; each is
 *                     created or replaced (the server sets resourceVersion,
 *                     keeps uid/creationTimestamp). -> {"resourceVersion":"N","applied":K}
 *   /delete?kind=K&namespace=NS&name=N   (or the object as body) -> 200 / 404
 *   /cut              abort every open watch connection -> {"cut":N}
 *   /compact          forget the history and all continue tokens: watches
 *                     from any older RV get 410 -> {"resourceVersion":"N"}
 *   /fail?code=C&count=N[&retry_after=S][&match=list|watch|continue]
 *                     the next N API requests (of that sort: LISTs, WATCHes,
 *                     LIST pages with a continue token) get HTTP C (a Status
 *                     body; with 429 a Retry-After: S, default 1); count=0 clears
 *   /stall?seconds=S  for S seconds (fractions allowed) new requests get no
 *                     answer and open watches send nothing (not even bookmarks)
 *   /inject           body: one raw line sent on every open watch (e.g.
 *                     malformed JSON); a newline is added
 *   /bookmark         every bookmark-enabled watch sends a BOOKMARK now
 *   /stats            {"resourceVersion","compactedResourceVersion","requests",
 *                     "lists","watches","gets","activeWatches","unauthorized",
 *                     "failed","objects":{"Service":N,...}}
 *   /log              recent API requests (up to 1000), oldest first: [{"path",
 *                     "watch","resourceVersion","continue","limit","labelSelector",
 *                     "fieldSelector","code"}]
 *   /objects?kind=K   the current objects of that kind as a List
 *   /reset            clear the counters and the request log
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>

enum kind { K_SVC, K_SLICE, K_NODE, K__N };
static const struct {
	const char *kind, *api, *list, *res;
	bool namespaced;
} kinds[K__N] = {
	[K_SVC] = { "Service", "v1", "ServiceList", "services", true },
	[K_SLICE] = { "EndpointSlice", "discovery.k8s.io/v1", "EndpointSliceList", "endpointslices", true },
	[K_NODE] = { "Node", "v1", "NodeList", "nodes", false },
};

enum evtype { EV_ADDED, EV_MODIFIED, EV_DELETED };
static const char *const evnames[] = { "ADDED", "MODIFIED", "DELETED" };

struct obj {
	struct obj *next; /* hash chain */
	enum kind kind;
	char *key;  /* "kind/ns/name" */
	char *ns, *name;
	uint64_t rv;
	char *body; /* JSON without kind/apiVersion */
	cJSON *labels;
};

struct hev {
	uint64_t rv;
	enum kind kind;
	enum evtype type;
	char *ns, *name, *body;
	cJSON *labels, *old_labels; /* old_labels: MODIFIED only */
};

struct snap {
	struct snap *next;
	uint64_t id, rv;
	time_t created;
	enum kind kind;
	size_t n;
	char **bodies;
};

struct sbuf {
	char *p;
	size_t len, cap;
};

/* ---- options ---- */
static const char *opt_listen, *opt_control, *opt_token, *opt_cert, *opt_key, *opt_load, *opt_ready;
static double opt_bookmark_s = 10;
static unsigned opt_watch_timeout = 1800, opt_max_seconds, opt_continue_ttl = 300;
static size_t opt_history = 100000;
static bool opt_verbose;

/* ---- state, all under mu ---- */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static volatile int quit;
static uint64_t cur_rv = 1000, compacted_rv = 1000;
static struct obj **tab;
static size_t tab_nb, n_objs[K__N];
static struct hev *hist;
static size_t hist_start, hist_n;
static struct snap *snaps;
static uint64_t snap_next_id = 1;
static unsigned cut_gen, bookmark_gen;
static double stall_until;
static int fail_code;
static unsigned fail_count, fail_retry_after;
static char fail_match[16]; /* "", "list", "watch" or "continue" */
#define N_INJECT 64
static char *inject_lines[N_INJECT];
static uint64_t inject_seq;
static struct {
	uint64_t requests, lists, watches, gets, unauthorized, failed;
} cnt;
static unsigned active_watches;
#define N_LOG 1000
static cJSON *req_log[N_LOG];
static size_t log_next, log_n;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void cv_wait_until(double t)
{
	struct timespec ts;

	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
	pthread_cond_timedwait(&cv, &mu, &ts);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "kxp-fake-apiserver: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die("out of memory");
	return p;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s ? s : "");

	if (!d)
		die("out of memory");
	return d;
}

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t nc = b->cap ? b->cap : 1024;

		while (nc < b->len + n + 1)
			nc *= 2;
		b->p = realloc(b->p, nc);
		if (!b->p)
			die("out of memory");
		b->cap = nc;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void sb_fmt(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_fmt(struct sbuf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(tmp)) {
		char *big = xmalloc((size_t)n + 1);

		va_start(ap, fmt);
		vsnprintf(big, (size_t)n + 1, fmt, ap);
		va_end(ap);
		sb_add(b, big, (size_t)n);
		free(big);
	} else if (n > 0) {
		sb_add(b, tmp, (size_t)n);
	}
}

/* ---- selectors ---- */
enum lop { L_EXISTS, L_NOTEXISTS, L_EQ, L_NE, L_IN, L_NOTIN };
#define MAX_TERMS 16
#define MAX_VALS 16
struct lterm {
	enum lop op;
	char key[256];
	char vals[MAX_VALS][64];
	unsigned nv;
};
struct sel {
	struct lterm l[MAX_TERMS];
	unsigned nl;
	/* field selector */
	char name[256], ns[256];
	bool has_name, name_neg, has_ns, ns_neg;
};

static char *trim(char *s)
{
	char *e;

	while (*s == ' ')
		s++;
	e = s + strlen(s);
	while (e > s && e[-1] == ' ')
		*--e = 0;
	return s;
}

static int parse_label_sel(const char *in, struct sel *s, char *err, size_t el)
{
	char buf[4096], *p, *start;
	int depth = 0;

	if (!in || !*in)
		return 0;
	if (strlen(in) >= sizeof(buf)) {
		snprintf(err, el, "labelSelector too long");
		return -1;
	}
	strcpy(buf, in);
	start = buf;
	for (p = buf;; p++) {
		if (*p == '(')
			depth++;
		else if (*p == ')')
			depth--;
		if ((*p == ',' && depth == 0) || !*p) {
			bool last = !*p;
			struct lterm *t;
			char *term, *op;

			*p = 0;
			term = trim(start);
			if (s->nl >= MAX_TERMS) {
				snprintf(err, el, "too many labelSelector terms");
				return -1;
			}
			t = &s->l[s->nl++];
			memset(t, 0, sizeof(*t));
			if (term[0] == '!') {
				t->op = L_NOTEXISTS;
				snprintf(t->key, sizeof(t->key), "%s", trim(term + 1));
			} else if ((op = strstr(term, " notin ")) || (op = strstr(term, " in "))) {
				bool notin = op[1] == 'n';
				char *v = strchr(op, '('), *e = v ? strrchr(v, ')') : NULL, *tok, *save;

				if (!v || !e) {
					snprintf(err, el, "unable to parse requirement: %s", term);
					return -1;
				}
				*op = 0;
				*e = 0;
				t->op = notin ? L_NOTIN : L_IN;
				snprintf(t->key, sizeof(t->key), "%s", trim(term));
				for (tok = strtok_r(v + 1, ",", &save); tok && t->nv < MAX_VALS;
				     tok = strtok_r(NULL, ",", &save))
					snprintf(t->vals[t->nv++], sizeof(t->vals[0]), "%s", trim(tok));
			} else if ((op = strstr(term, "!="))) {
				*op = 0;
				t->op = L_NE;
				snprintf(t->key, sizeof(t->key), "%s", trim(term));
				snprintf(t->vals[0], sizeof(t->vals[0]), "%s", trim(op + 2));
				t->nv = 1;
			} else if ((op = strchr(term, '='))) {
				*op = 0;
				t->op = L_EQ;
				snprintf(t->key, sizeof(t->key), "%s", trim(term));
				snprintf(t->vals[0], sizeof(t->vals[0]), "%s", trim(op + (op[1] == '=' ? 2 : 1)));
				t->nv = 1;
			} else {
				t->op = L_EXISTS;
				snprintf(t->key, sizeof(t->key), "%s", term);
			}
			if (!t->key[0] || strpbrk(t->key, " ()!=")) {
				snprintf(err, el, "unable to parse requirement: invalid label key \"%s\"", t->key);
				return -1;
			}
			if (last)
				break;
			start = p + 1;
		}
	}
	return 0;
}

static int parse_field_sel(const char *in, struct sel *s, char *err, size_t el)
{
	char buf[1024], *tok, *save;

	if (!in || !*in)
		return 0;
	snprintf(buf, sizeof(buf), "%s", in);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *op = strstr(tok, "!="), *val;
		bool neg = op != NULL;

		if (!op)
			op = strchr(tok, '=');
		if (!op) {
			snprintf(err, el, "invalid field selector: %s", tok);
			return -1;
		}
		*op = 0;
		val = op + (neg ? 2 : (op[1] == '=' ? 2 : 1));
		tok = trim(tok);
		if (!strcmp(tok, "metadata.name")) {
			s->has_name = true;
			s->name_neg = neg;
			snprintf(s->name, sizeof(s->name), "%s", trim(val));
		} else if (!strcmp(tok, "metadata.namespace")) {
			s->has_ns = true;
			s->ns_neg = neg;
			snprintf(s->ns, sizeof(s->ns), "%s", trim(val));
		} else {
			snprintf(err, el, "field label not supported: %s", tok);
			return -1;
		}
	}
	return 0;
}

static bool labels_match(const struct sel *s, const cJSON *labels)
{
	unsigned i, j;

	for (i = 0; i < s->nl; i++) {
		const struct lterm *t = &s->l[i];
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(labels, t->key);
		const char *val = cJSON_IsString(v) ? v->valuestring : NULL;
		bool in = false;

		for (j = 0; val && j < t->nv; j++)
			if (!strcmp(val, t->vals[j]))
				in = true;
		switch (t->op) {
		case L_EXISTS:
			if (!val)
				return false;
			break;
		case L_NOTEXISTS:
			if (val)
				return false;
			break;
		case L_EQ:
		case L_IN:
			if (!in)
				return false;
			break;
		case L_NE:
		case L_NOTIN:
			if (in)
				return false;
			break;
		}
	}
	return true;
}

static bool fields_match(const struct sel *s, const char *ns, const char *name)
{
	if (s->has_name && (strcmp(name, s->name) == 0) == s->name_neg)
		return false;
	if (s->has_ns && (strcmp(ns ? ns : "", s->ns) == 0) == s->ns_neg)
		return false;
	return true;
}

/* ---- object store ---- */
static size_t hash_str(const char *s)
{
	size_t h = 14695981039346656037ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static char *make_key(enum kind k, const char *ns, const char *name)
{
	char *key;

	if (asprintf(&key, "%d/%s/%s", k, ns ? ns : "", name) < 0)
		die("out of memory");
	return key;
}

static struct obj **find_slot(const char *key)
{
	struct obj **pp;

	for (pp = &tab[hash_str(key) & (tab_nb - 1)]; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->key, key))
			return pp;
	return pp;
}

static void tab_grow(void)
{
	size_t nb = tab_nb ? tab_nb * 2 : 1024, i, total = n_objs[0] + n_objs[1] + n_objs[2];
	struct obj **nt, *o, *next;

	if (total < tab_nb)
		return;
	nt = calloc(nb, sizeof(*nt));
	if (!nt)
		die("out of memory");
	for (i = 0; i < tab_nb; i++)
		for (o = tab[i]; o; o = next) {
			size_t h = hash_str(o->key) & (nb - 1);

			next = o->next;
			o->next = nt[h];
			nt[h] = o;
		}
	free(tab);
	tab = nt;
	tab_nb = nb;
}

static void hev_free(struct hev *h)
{
	free(h->ns);
	free(h->name);
	free(h->body);
	cJSON_Delete(h->labels);
	cJSON_Delete(h->old_labels);
	memset(h, 0, sizeof(*h));
}

static void snaps_free(bool all)
{
	struct snap **pp = &snaps, *s;
	time_t t = time(NULL);
	size_t i;

	while ((s = *pp)) {
		if (all || t - s->created > (time_t)opt_continue_ttl) {
			*pp = s->next;
			for (i = 0; i < s->n; i++)
				free(s->bodies[i]);
			free(s->bodies);
			free(s);
		} else {
			pp = &s->next;
		}
	}
}

static void compact(void)
{
	size_t i;

	for (i = 0; i < hist_n; i++)
		hev_free(&hist[(hist_start + i) % opt_history]);
	hist_start = hist_n = 0;
	compacted_rv = cur_rv;
	snaps_free(true);
}

/* One mutation = one RV = one history entry. */
static void hist_add(enum kind k, enum evtype t, const struct obj *o, const cJSON *old_labels)
{
	struct hev *h;

	if (hist_n == opt_history) { /* the oldest falls off: like a compaction */
		hev_free(&hist[hist_start]);
		hist_start = (hist_start + 1) % opt_history;
		hist_n--;
		compacted_rv++;
	}
	h = &hist[(hist_start + hist_n) % opt_history];
	hist_n++;
	h->rv = o->rv;
	h->kind = k;
	h->type = t;
	h->ns = o->ns ? xstrdup(o->ns) : NULL;
	h->name = xstrdup(o->name);
	h->body = xstrdup(o->body);
	h->labels = o->labels ? cJSON_Duplicate(o->labels, 1) : NULL;
	h->old_labels = old_labels ? cJSON_Duplicate(old_labels, 1) : NULL;
}

static int kind_of(const char *s)
{
	int k;

	for (k = 0; s && k < K__N; k++)
		if (!strcmp(s, kinds[k].kind))
			return k;
	return -1;
}

static void set_str(cJSON *o, const char *key, const char *val)
{
	cJSON_DeleteItemFromObjectCaseSensitive(o, key);
	cJSON_AddStringToObject(o, key, val);
}

/* Create or replace one object (caller holds mu). Returns its RV or 0 with err. */
static uint64_t apply_one(cJSON *in, bool history, char *err, size_t el)
{
	int k = kind_of(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(in, "kind")));
	cJSON *o, *md, *labels;
	const char *name, *ns;
	struct obj **pp, *old, *n;
	char rvs[32], *key;

	if (k < 0) {
		snprintf(err, el, "kind must be Service, EndpointSlice or Node");
		return 0;
	}
	o = cJSON_Duplicate(in, 1);
	cJSON_DeleteItemFromObjectCaseSensitive(o, "kind");
	cJSON_DeleteItemFromObjectCaseSensitive(o, "apiVersion");
	md = cJSON_GetObjectItemCaseSensitive(o, "metadata");
	name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name"));
	if (!cJSON_IsObject(md) || !name || !*name) {
		snprintf(err, el, "%s without metadata.name", kinds[k].kind);
		cJSON_Delete(o);
		return 0;
	}
	if (kinds[k].namespaced) {
		ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "namespace"));
		if (!ns || !*ns) {
			set_str(md, "namespace", "default");
			ns = "default";
		}
	} else {
		cJSON_DeleteItemFromObjectCaseSensitive(md, "namespace");
		ns = NULL;
	}
	if (!tab_nb)
		tab_grow();
	key = make_key(k, ns, name);
	pp = find_slot(key);
	old = *pp;
	/* Server-owned metadata: kept from the stored object, made up if new. */
	if (old) {
		cJSON *parsed = cJSON_Parse(old->body);
		cJSON *om = cJSON_GetObjectItemCaseSensitive(parsed, "metadata");
		const char *uid, *ct;

		uid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(om, "uid"));
		ct = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(om, "creationTimestamp"));
		if (uid)
			set_str(md, "uid", uid);
		if (ct)
			set_str(md, "creationTimestamp", ct);
		cJSON_Delete(parsed);
	} else {
		char uid[64], ts[32];
		time_t t = time(NULL);
		struct tm tm;

		if (!cJSON_GetObjectItemCaseSensitive(md, "uid")) {
			snprintf(uid, sizeof(uid), "00000000-0000-4000-8000-%012llx", (unsigned long long)cur_rv + 1);
			set_str(md, "uid", uid);
		}
		if (!cJSON_GetObjectItemCaseSensitive(md, "creationTimestamp")) {
			gmtime_r(&t, &tm);
			strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
			set_str(md, "creationTimestamp", ts);
		}
	}
	snprintf(rvs, sizeof(rvs), "%llu", (unsigned long long)++cur_rv);
	set_str(md, "resourceVersion", rvs);
	labels = cJSON_GetObjectItemCaseSensitive(md, "labels");

	n = calloc(1, sizeof(*n));
	if (!n)
		die("out of memory");
	n->kind = (enum kind)k;
	n->key = key;
	n->ns = ns ? xstrdup(ns) : NULL;
	n->name = xstrdup(name);
	n->rv = cur_rv;
	n->body = cJSON_PrintUnformatted(o);
	n->labels = cJSON_IsObject(labels) ? cJSON_Duplicate(labels, 1) : NULL;
	cJSON_Delete(o);
	if (!n->body)
		die("out of memory");
	if (history)
		hist_add(n->kind, old ? EV_MODIFIED : EV_ADDED, n, old ? old->labels : NULL);
	else
		compacted_rv = cur_rv;
	if (old) {
		n->next = old->next;
		*pp = n;
		free(old->key);
		free(old->ns);
		free(old->name);
		free(old->body);
		cJSON_Delete(old->labels);
		free(old);
	} else {
		n->next = NULL;
		*pp = n;
		n_objs[k]++;
		tab_grow();
	}
	return cur_rv;
}

static int apply_doc(cJSON *doc, bool history, uint64_t *rv, unsigned *count, char *err, size_t el)
{
	cJSON *items = cJSON_IsArray(doc) ? doc : cJSON_GetObjectItemCaseSensitive(doc, "items"), *it;
	const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "kind"));

	if (cJSON_IsArray(doc) || (kind && strlen(kind) >= 4 && !strcmp(kind + strlen(kind) - 4, "List"))) {
		/* Items of a typed list (ServiceList) carry no kind of their own. */
		char ik[64] = "";

		if (kind && strlen(kind) > 4 && strlen(kind) - 4 < sizeof(ik))
			memcpy(ik, kind, strlen(kind) - 4);
		cJSON_ArrayForEach(it, items) {
			if (ik[0] && cJSON_IsObject(it) && !cJSON_GetObjectItemCaseSensitive(it, "kind"))
				cJSON_AddStringToObject(it, "kind", ik);
			if (apply_doc(it, history, rv, count, err, el))
				return -1;
		}
		return 0;
	}
	*rv = apply_one(doc, history, err, el);
	if (!*rv)
		return -1;
	(*count)++;
	return 0;
}

static int delete_obj(int k, const char *ns, const char *name, uint64_t *rv)
{
	char *key = make_key((enum kind)k, kinds[k].namespaced ? (ns && *ns ? ns : "default") : NULL, name);
	struct obj **pp, *o;
	cJSON *parsed;
	char rvs[32];

	if (!tab_nb) {
		free(key);
		return -1;
	}
	pp = find_slot(key);
	free(key);
	o = *pp;
	if (!o)
		return -1;
	*pp = o->next;
	n_objs[k]--;
	/* The DELETED event carries the object at the deletion's RV. */
	o->rv = ++cur_rv;
	parsed = cJSON_Parse(o->body);
	snprintf(rvs, sizeof(rvs), "%llu", (unsigned long long)o->rv);
	set_str(cJSON_GetObjectItemCaseSensitive(parsed, "metadata"), "resourceVersion", rvs);
	free(o->body);
	o->body = cJSON_PrintUnformatted(parsed);
	cJSON_Delete(parsed);
	hist_add(o->kind, EV_DELETED, o, NULL);
	*rv = o->rv;
	free(o->key);
	free(o->ns);
	free(o->name);
	free(o->body);
	cJSON_Delete(o->labels);
	free(o);
	return 0;
}

/* ---- HTTP helpers ---- */
static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned code, const char *type, char *body, size_t len,
				unsigned retry_after)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;
	char ra[16];

	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-cache, private");
	if (retry_after) {
		snprintf(ra, sizeof(ra), "%u", retry_after);
		MHD_add_response_header(r, "Retry-After", ra);
	}
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned code, cJSON *j)
{
	char *s = cJSON_PrintUnformatted(j);

	cJSON_Delete(j);
	return send_buf(c, code, "application/json", s, strlen(s), 0);
}

static const char *reason_of(unsigned code)
{
	switch (code) {
	case 400:
		return "BadRequest";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "NotFound";
	case 405:
		return "MethodNotAllowed";
	case 410:
		return "Expired";
	case 429:
		return "TooManyRequests";
	case 503:
		return "ServiceUnavailable";
	case 504:
		return "Timeout";
	default:
		return code >= 500 ? "InternalError" : "Unknown";
	}
}

static cJSON *status_obj(unsigned code, const char *msg)
{
	cJSON *s = cJSON_CreateObject();

	cJSON_AddStringToObject(s, "kind", "Status");
	cJSON_AddStringToObject(s, "apiVersion", "v1");
	cJSON_AddObjectToObject(s, "metadata");
	cJSON_AddStringToObject(s, "status", "Failure");
	cJSON_AddStringToObject(s, "message", msg);
	cJSON_AddStringToObject(s, "reason", reason_of(code));
	cJSON_AddNumberToObject(s, "code", code);
	return s;
}

static enum MHD_Result send_status(struct MHD_Connection *c, unsigned code, const char *msg, unsigned retry_after)
{
	cJSON *st = status_obj(code, msg);
	char *s = cJSON_PrintUnformatted(st);

	cJSON_Delete(st);
	return send_buf(c, code, "application/json", s, strlen(s), retry_after);
}

static const char *arg(struct MHD_Connection *c, const char *k)
{
	return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, k);
}

static void log_req(const char *path, struct MHD_Connection *c, unsigned code)
{
	static const char *const keys[] = { "watch", "resourceVersion", "continue", "limit", "labelSelector",
					    "fieldSelector", "timeoutSeconds", "allowWatchBookmarks" };
	cJSON *e = cJSON_CreateObject();
	size_t i;

	cJSON_AddStringToObject(e, "path", path);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *v = arg(c, keys[i]);

		if (v)
			cJSON_AddStringToObject(e, keys[i], v);
	}
	cJSON_AddNumberToObject(e, "code", code);
	cJSON_Delete(req_log[log_next]);
	req_log[log_next] = e;
	log_next = (log_next + 1) % N_LOG;
	if (log_n < N_LOG)
		log_n++;
}

/* ---- LIST ---- */
struct item {
	const char *key;
	const char *body;
};

static int item_cmp(const void *a, const void *b)
{
	return strcmp(((const struct item *)a)->key, ((const struct item *)b)->key);
}

static bool obj_matches(const struct obj *o, enum kind k, const char *ns, const struct sel *s)
{
	if (o->kind != k)
		return false;
	if (ns && (!o->ns || strcmp(ns, o->ns)))
		return false;
	return fields_match(s, o->ns, o->name) && labels_match(s, o->labels);
}

/* Matching objects, sorted by key (namespace/name). Caller holds mu. */
static struct item *collect(enum kind k, const char *ns, const struct sel *s, size_t *np)
{
	struct item *v = xmalloc(sizeof(*v) * (n_objs[k] + 1));
	size_t i, n = 0;
	struct obj *o;

	for (i = 0; i < tab_nb; i++)
		for (o = tab[i]; o; o = o->next)
			if (obj_matches(o, k, ns, s)) {
				v[n].key = o->key;
				v[n].body = o->body;
				n++;
			}
	qsort(v, n, sizeof(*v), item_cmp);
	*np = n;
	return v;
}

static enum MHD_Result do_list(struct MHD_Connection *c, const char *path, enum kind k, const char *ns,
			       const struct sel *s)
{
	const char *lim = arg(c, "limit"), *cont = arg(c, "continue");
	unsigned long limit = lim ? strtoul(lim, NULL, 10) : 0;
	struct sbuf b = { 0 };
	struct snap *sn = NULL;
	uint64_t list_rv;
	size_t off = 0, i, end, total;
	const char **bodies;
	struct item *items = NULL;

	snaps_free(false);
	if (cont && *cont) {
		unsigned long long id = 0, rv = 0, o = 0;

		if (sscanf(cont, "%llu.%llu.%llu", &rv, &id, &o) != 3) {
			log_req(path, c, 400);
			return send_status(c, 400, "invalid continue token", 0);
		}
		for (sn = snaps; sn && sn->id != id; sn = sn->next)
			;
		if (!sn || sn->kind != k || o > sn->n) {
			log_req(path, c, 410);
			return send_status(c, 410,
					   "The provided continue parameter is too old to display a consistent list result. "
					   "You can start a new list without the continue parameter.",
					   0);
		}
		off = o;
		list_rv = sn->rv;
		total = sn->n;
		bodies = (const char **)sn->bodies;
	} else {
		size_t n;

		items = collect(k, ns, s, &n);
		list_rv = cur_rv;
		total = n;
		bodies = xmalloc(sizeof(*bodies) * (n + 1));
		for (i = 0; i < n; i++)
			bodies[i] = items[i].body;
		if (limit && n > limit) {
			/* Later pages come from this snapshot, as etcd serves
			 * them from the first page's revision. */
			sn = calloc(1, sizeof(*sn));
			if (!sn)
				die("out of memory");
			sn->id = snap_next_id++;
			sn->rv = list_rv;
			sn->kind = k;
			sn->created = time(NULL);
			sn->n = n;
			sn->bodies = xmalloc(sizeof(char *) * n);
			for (i = 0; i < n; i++)
				sn->bodies[i] = xstrdup(items[i].body);
			sn->next = snaps;
			snaps = sn;
		}
	}
	end = limit && off + limit < total ? off + limit : total;
	sb_fmt(&b, "{\"kind\":\"%s\",\"apiVersion\":\"%s\",\"metadata\":{\"resourceVersion\":\"%llu\"",
	       kinds[k].list, kinds[k].api, (unsigned long long)list_rv);
	if (end < total)
		sb_fmt(&b, ",\"continue\":\"%llu.%llu.%zu\",\"remainingItemCount\":%zu", (unsigned long long)list_rv,
		       (unsigned long long)sn->id, end, total - end);
	sb_str(&b, "},\"items\":[");
	for (i = off; i < end; i++) {
		if (i > off)
			sb_add(&b, ",", 1);
		sb_str(&b, bodies[i]);
	}
	sb_str(&b, "]}\n");
	if (sn && end == total) { /* the last page: nobody needs the snapshot */
		struct snap **pp;

		for (pp = &snaps; *pp != sn; pp = &(*pp)->next)
			;
		*pp = sn->next;
		for (i = 0; i < sn->n; i++)
			free(sn->bodies[i]);
		free(sn->bodies);
		free(sn);
	}
	if (items)
		free(bodies);
	free(items);
	cnt.lists++;
	log_req(path, c, 200);
	return send_buf(c, 200, "application/json", b.p, b.len, 0);
}

/* ---- WATCH ---- */
struct watch {
	enum kind k;
	char *ns;
	struct sel s;
	uint64_t sent_rv;
	bool bookmarks, ending;
	double deadline, next_bookmark;
	unsigned cut_gen, bookmark_gen;
	uint64_t inject_seen;
	struct sbuf out;
	size_t out_off;
};

static void ev_line(struct sbuf *b, const char *type, enum kind k, const char *body)
{
	sb_fmt(b, "{\"type\":\"%s\",\"object\":{\"kind\":\"%s\",\"apiVersion\":\"%s\",", type, kinds[k].kind,
	       kinds[k].api);
	sb_str(b, body + 1); /* body is "{...}": splice kind/apiVersion in */
	sb_str(b, "}\n");
}

/* Append the history after w->sent_rv, filtered for this watch (mu held). */
static void watch_fill(struct watch *w)
{
	while (w->sent_rv < cur_rv && w->out.len < (256u << 10)) {
		const struct hev *h = &hist[(hist_start + (w->sent_rv - compacted_rv)) % opt_history];
		const char *type = NULL;

		w->sent_rv++;
		if (h->kind != w->k || (w->ns && (!h->ns || strcmp(w->ns, h->ns))) ||
		    !fields_match(&w->s, h->ns, h->name))
			continue;
		if (h->type == EV_MODIFIED) {
			bool was = labels_match(&w->s, h->old_labels), is = labels_match(&w->s, h->labels);

			type = was && is ? "MODIFIED" : is ? "ADDED" : was ? "DELETED" : NULL;
		} else if (labels_match(&w->s, h->labels)) {
			type = evnames[h->type];
		}
		if (type)
			ev_line(&w->out, type, w->k, h->body);
	}
}

static ssize_t watch_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct watch *w = cls;
	ssize_t ret;

	(void)pos;
	pthread_mutex_lock(&mu);
	for (;;) {
		double t = now_s(), until;

		if (quit || w->cut_gen != cut_gen) {
			ret = MHD_CONTENT_READER_END_WITH_ERROR;
			break;
		}
		if (t < stall_until) {
			cv_wait_until(stall_until);
			continue;
		}
		if (w->out_off < w->out.len) {
			size_t n = w->out.len - w->out_off;

			if (n > max)
				n = max;
			memcpy(buf, w->out.p + w->out_off, n);
			w->out_off += n;
			if (w->out_off == w->out.len)
				w->out.len = w->out_off = 0;
			ret = (ssize_t)n;
			break;
		}
		if (w->ending || t >= w->deadline) {
			ret = MHD_CONTENT_READER_END_OF_STREAM;
			break;
		}
		while (w->inject_seen < inject_seq) {
			if (inject_seq - w->inject_seen <= N_INJECT) {
				sb_str(&w->out, inject_lines[w->inject_seen % N_INJECT]);
				sb_add(&w->out, "\n", 1);
			}
			w->inject_seen++;
		}
		if (w->sent_rv < compacted_rv) {
			char msg[128];
			cJSON *ev = cJSON_CreateObject();
			char *s;

			snprintf(msg, sizeof(msg), "too old resource version: %llu (%llu)",
				 (unsigned long long)w->sent_rv, (unsigned long long)compacted_rv);
			cJSON_AddStringToObject(ev, "type", "ERROR");
			cJSON_AddItemToObject(ev, "object", status_obj(410, msg));
			s = cJSON_PrintUnformatted(ev);
			sb_str(&w->out, s);
			sb_add(&w->out, "\n", 1);
			free(s);
			cJSON_Delete(ev);
			w->ending = true;
			continue;
		}
		watch_fill(w);
		if (w->out.len)
			continue;
		if (w->bookmarks && (t >= w->next_bookmark || w->bookmark_gen != bookmark_gen)) {
			sb_fmt(&w->out,
			       "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"%s\",\"apiVersion\":\"%s\",\"metadata\":"
			       "{\"resourceVersion\":\"%llu\"}}}\n",
			       kinds[w->k].kind, kinds[w->k].api, (unsigned long long)w->sent_rv);
			w->next_bookmark = t + opt_bookmark_s;
			w->bookmark_gen = bookmark_gen;
			continue;
		}
		until = w->deadline;
		if (w->bookmarks && w->next_bookmark < until)
			until = w->next_bookmark;
		if (until > t + 0.5)
			until = t + 0.5;
		cv_wait_until(until);
	}
	pthread_mutex_unlock(&mu);
	return ret;
}

static void watch_free(void *cls)
{
	struct watch *w = cls;

	pthread_mutex_lock(&mu);
	active_watches--;
	pthread_mutex_unlock(&mu);
	free(w->out.p);
	free(w->ns);
	free(w);
}

static enum MHD_Result do_watch(struct MHD_Connection *c, const char *path, enum kind k, const char *ns,
				const struct sel *s)
{
	const char *rv = arg(c, "resourceVersion"), *to = arg(c, "timeoutSeconds"),
		   *bm = arg(c, "allowWatchBookmarks");
	struct watch *w = calloc(1, sizeof(*w));
	struct MHD_Response *r;
	enum MHD_Result ret;
	double t = now_s();

	if (!w)
		die("out of memory");
	w->k = k;
	w->ns = ns ? xstrdup(ns) : NULL;
	w->s = *s;
	w->bookmarks = bm && (!strcmp(bm, "true") || !strcmp(bm, "1"));
	w->deadline = t + (to && atoi(to) > 0 ? atoi(to) : (int)opt_watch_timeout);
	w->next_bookmark = t + opt_bookmark_s;
	w->cut_gen = cut_gen;
	w->bookmark_gen = bookmark_gen;
	w->inject_seen = inject_seq;
	if (!rv || !*rv || !strcmp(rv, "0")) {
		/* No RV: the current state as ADDED events, then changes. */
		size_t n, i;
		struct item *items = collect(k, ns, s, &n);

		for (i = 0; i < n; i++)
			ev_line(&w->out, "ADDED", k, items[i].body);
		free(items);
		w->sent_rv = cur_rv;
	} else {
		char *e;

		w->sent_rv = strtoull(rv, &e, 10);
		if (*e) {
			free(w->ns);
			free(w);
			log_req(path, c, 400);
			return send_status(c, 400, "invalid resourceVersion", 0);
		}
		if (w->sent_rv > cur_rv)
			w->sent_rv = cur_rv;
	}
	cnt.watches++;
	active_watches++;
	log_req(path, c, 200);
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, watch_reader, w, watch_free);
	MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_add_response_header(r, "Cache-Control", "no-cache, private");
	/* The reader blocks on mu: do not hold it across queueing. */
	pthread_mutex_unlock(&mu);
	ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	pthread_mutex_lock(&mu);
	return ret;
}

/* ---- API handler ---- */
static bool fail_applies(struct MHD_Connection *c)
{
	const char *w = arg(c, "watch");
	bool watch = w && (!strcmp(w, "1") || !strcmp(w, "true"));

	if (!strcmp(fail_match, "watch"))
		return watch;
	if (!strcmp(fail_match, "list"))
		return !watch;
	if (!strcmp(fail_match, "continue"))
		return arg(c, "continue") != NULL;
	return true;
}

static enum MHD_Result api_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				   const char *version, const char *upload_data, size_t *upload_size, void **ctx)
{
	char err[256], pbuf[512], *parts[8], *save, *tok;
	const char *auth, *w, *ns = NULL, *name = NULL;
	unsigned np = 0, code;
	struct sel s;
	enum MHD_Result ret;
	int k = -1;

	(void)cls;
	(void)version;
	(void)upload_data;
	if (!*ctx) { /* headers only so far: answer on the second call */
		*ctx = (void *)1;
		return MHD_YES;
	}
	*upload_size = 0;
	pthread_mutex_lock(&mu);
	while (!quit && now_s() < stall_until)
		cv_wait_until(stall_until);
	cnt.requests++;
	if (opt_token) {
		auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
		if (!auth || strncmp(auth, "Bearer ", 7) || strcmp(auth + 7, opt_token)) {
			cnt.unauthorized++;
			log_req(url, c, 401);
			pthread_mutex_unlock(&mu);
			return send_status(c, 401, "Unauthorized", 0);
		}
	}
	if (fail_count && fail_applies(c)) {
		unsigned ra = fail_code == 429 ? fail_retry_after : 0;

		fail_count--;
		code = (unsigned)fail_code;
		cnt.failed++;
		log_req(url, c, code);
		pthread_mutex_unlock(&mu);
		return send_status(c, code, code == 429 ? "Too many requests, please try again later." : "injected failure", ra);
	}
	if (strcmp(method, "GET")) {
		log_req(url, c, 405);
		pthread_mutex_unlock(&mu);
		return send_status(c, 405, "only GET is served", 0);
	}
	if (!strcmp(url, "/version")) {
		cJSON *v = cJSON_CreateObject();

		cJSON_AddStringToObject(v, "major", "1");
		cJSON_AddStringToObject(v, "minor", "31");
		cJSON_AddStringToObject(v, "gitVersion", "v1.31.0-kxp-fake");
		log_req(url, c, 200);
		pthread_mutex_unlock(&mu);
		return send_json(c, 200, v);
	}
	if (!strcmp(url, "/healthz") || !strcmp(url, "/livez") || !strcmp(url, "/readyz")) {
		log_req(url, c, 200);
		pthread_mutex_unlock(&mu);
		return send_buf(c, 200, "text/plain", xstrdup("ok"), 2, 0);
	}
	snprintf(pbuf, sizeof(pbuf), "%s", url);
	for (tok = strtok_r(pbuf, "/", &save); tok && np < 8; tok = strtok_r(NULL, "/", &save))
		parts[np++] = tok;
	/* api/v1/RES[/NAME], api/v1/namespaces/NS/RES, apis/discovery.k8s.io/v1/... */
	if (np >= 3 && !strcmp(parts[0], "api") && !strcmp(parts[1], "v1")) {
		unsigned i = 2;

		if (np >= 5 && !strcmp(parts[2], "namespaces")) {
			ns = parts[3];
			i = 4;
		}
		if (!strcmp(parts[i], "services"))
			k = K_SVC;
		else if (!strcmp(parts[i], "nodes") && !ns)
			k = K_NODE;
		if (np == i + 2)
			name = parts[i + 1];
		else if (np != i + 1)
			k = -1;
	} else if (np >= 4 && !strcmp(parts[0], "apis") && !strcmp(parts[1], "discovery.k8s.io") &&
		   !strcmp(parts[2], "v1")) {
		unsigned i = 3;

		if (np >= 6 && !strcmp(parts[3], "namespaces")) {
			ns = parts[4];
			i = 5;
		}
		if (!strcmp(parts[i], "endpointslices"))
			k = K_SLICE;
		if (np == i + 2)
			name = parts[i + 1];
		else if (np != i + 1)
			k = -1;
	}
	if (k < 0) {
		log_req(url, c, 404);
		pthread_mutex_unlock(&mu);
		return send_status(c, 404, "the server could not find the requested resource", 0);
	}
	memset(&s, 0, sizeof(s));
	if (parse_label_sel(arg(c, "labelSelector"), &s, err, sizeof(err)) ||
	    parse_field_sel(arg(c, "fieldSelector"), &s, err, sizeof(err))) {
		log_req(url, c, 400);
		pthread_mutex_unlock(&mu);
		return send_status(c, 400, err, 0);
	}
	if (name) {
		char *key = make_key((enum kind)k, kinds[k].namespaced ? ns : NULL, name);
		struct obj *o = tab_nb ? *find_slot(key) : NULL;
		struct sbuf b = { 0 };

		free(key);
		cnt.gets++;
		if (!o) {
			snprintf(err, sizeof(err), "%s \"%s\" not found", kinds[k].res, name);
			log_req(url, c, 404);
			pthread_mutex_unlock(&mu);
			return send_status(c, 404, err, 0);
		}
		sb_fmt(&b, "{\"kind\":\"%s\",\"apiVersion\":\"%s\",", kinds[k].kind, kinds[k].api);
		sb_str(&b, o->body + 1);
		log_req(url, c, 200);
		pthread_mutex_unlock(&mu);
		return send_buf(c, 200, "application/json", b.p, b.len, 0);
	}
	w = arg(c, "watch");
	if (w && (!strcmp(w, "1") || !strcmp(w, "true")))
		ret = do_watch(c, url, (enum kind)k, ns, &s);
	else
		ret = do_list(c, url, (enum kind)k, ns, &s);
	pthread_mutex_unlock(&mu);
	return ret;
}

/* ---- control ---- */
struct ctl {
	struct sbuf body;
};

static cJSON *ok_obj(void)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddBoolToObject(o, "ok", 1);
	return o;
}

static void add_rv(cJSON *o, const char *key, uint64_t rv)
{
	char s[32];

	snprintf(s, sizeof(s), "%llu", (unsigned long long)rv);
	cJSON_AddStringToObject(o, key, s);
}

static enum MHD_Result ctl_dispatch(struct MHD_Connection *c, const char *url, struct sbuf *body)
{
	char err[256] = "";
	cJSON *res;
	size_t i;

	if (!strcmp(url, "/apply")) {
		cJSON *doc = body->len ? cJSON_ParseWithLength(body->p, body->len) : NULL;
		uint64_t rv = 0;
		unsigned count = 0;
		int r;

		if (!doc)
			return send_status(c, 400, "body is not JSON", 0);
		pthread_mutex_lock(&mu);
		r = apply_doc(doc, true, &rv, &count, err, sizeof(err));
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mu);
		cJSON_Delete(doc);
		if (r)
			return send_status(c, 400, err, 0);
		res = ok_obj();
		add_rv(res, "resourceVersion", rv);
		cJSON_AddNumberToObject(res, "applied", count);
		return send_json(c, 200, res);
	}
	if (!strcmp(url, "/delete")) {
		const char *kind = arg(c, "kind"), *ns = arg(c, "namespace"), *name = arg(c, "name");
		cJSON *doc = body->len ? cJSON_ParseWithLength(body->p, body->len) : NULL;
		uint64_t rv = 0;
		int k, r;

		if (doc) {
			cJSON *md = cJSON_GetObjectItemCaseSensitive(doc, "metadata");

			kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "kind"));
			ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "namespace"));
			name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name"));
		}
		k = kind_of(kind);
		if (k < 0 || !name) {
			cJSON_Delete(doc);
			return send_status(c, 400, "need kind and name", 0);
		}
		pthread_mutex_lock(&mu);
		r = delete_obj(k, ns, name, &rv);
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mu);
		cJSON_Delete(doc);
		if (r)
			return send_status(c, 404, "not found", 0);
		res = ok_obj();
		add_rv(res, "resourceVersion", rv);
		return send_json(c, 200, res);
	}
	res = ok_obj();
	pthread_mutex_lock(&mu);
	if (!strcmp(url, "/cut")) {
		cut_gen++;
		cJSON_AddNumberToObject(res, "cut", active_watches);
	} else if (!strcmp(url, "/compact")) {
		compact();
		add_rv(res, "resourceVersion", compacted_rv);
	} else if (!strcmp(url, "/fail")) {
		const char *code = arg(c, "code"), *count = arg(c, "count"), *ra = arg(c, "retry_after"),
			   *m = arg(c, "match");

		fail_code = code ? atoi(code) : 500;
		fail_count = count ? (unsigned)atoi(count) : 1;
		fail_retry_after = ra ? (unsigned)atoi(ra) : 1;
		snprintf(fail_match, sizeof(fail_match), "%s", m ? m : "");
		if (fail_code < 400 || fail_code > 599)
			fail_count = 0;
	} else if (!strcmp(url, "/stall")) {
		const char *sec = arg(c, "seconds");

		stall_until = now_s() + (sec ? atof(sec) : 1.0);
	} else if (!strcmp(url, "/inject")) {
		char *line = xmalloc(body->len + 1);

		memcpy(line, body->p ? body->p : "", body->len);
		line[body->len] = 0;
		while (body->len && (line[body->len - 1] == '\n'))
			line[--body->len] = 0;
		free(inject_lines[inject_seq % N_INJECT]);
		inject_lines[inject_seq % N_INJECT] = line;
		inject_seq++;
		cJSON_AddNumberToObject(res, "watches", active_watches);
	} else if (!strcmp(url, "/bookmark")) {
		bookmark_gen++;
	} else if (!strcmp(url, "/stats")) {
		cJSON *o;
		int k;

		add_rv(res, "resourceVersion", cur_rv);
		add_rv(res, "compactedResourceVersion", compacted_rv);
		cJSON_AddNumberToObject(res, "requests", (double)cnt.requests);
		cJSON_AddNumberToObject(res, "lists", (double)cnt.lists);
		cJSON_AddNumberToObject(res, "watches", (double)cnt.watches);
		cJSON_AddNumberToObject(res, "gets", (double)cnt.gets);
		cJSON_AddNumberToObject(res, "unauthorized", (double)cnt.unauthorized);
		cJSON_AddNumberToObject(res, "failed", (double)cnt.failed);
		cJSON_AddNumberToObject(res, "activeWatches", active_watches);
		o = cJSON_AddObjectToObject(res, "objects");
		for (k = 0; k < K__N; k++)
			cJSON_AddNumberToObject(o, kinds[k].kind, (double)n_objs[k]);
	} else if (!strcmp(url, "/log")) {
		cJSON_Delete(res);
		res = cJSON_CreateArray();
		for (i = 0; i < log_n; i++)
			cJSON_AddItemToArray(res, cJSON_Duplicate(req_log[(log_next + N_LOG - log_n + i) % N_LOG], 1));
	} else if (!strcmp(url, "/objects")) {
		int k = kind_of(arg(c, "kind"));
		struct sbuf b = { 0 };
		struct sel none;
		struct item *items;
		size_t n;

		if (k < 0) {
			pthread_mutex_unlock(&mu);
			cJSON_Delete(res);
			return send_status(c, 400, "kind=Service|EndpointSlice|Node", 0);
		}
		memset(&none, 0, sizeof(none));
		items = collect((enum kind)k, NULL, &none, &n);
		sb_fmt(&b, "{\"kind\":\"%s\",\"apiVersion\":\"%s\",\"metadata\":{\"resourceVersion\":\"%llu\"},\"items\":[",
		       kinds[k].list, kinds[k].api, (unsigned long long)cur_rv);
		for (i = 0; i < n; i++) {
			sb_fmt(&b, "%s{\"kind\":\"%s\",\"apiVersion\":\"%s\",", i ? "," : "", kinds[k].kind,
			       kinds[k].api);
			sb_str(&b, items[i].body + 1);
		}
		sb_str(&b, "]}\n");
		free(items);
		pthread_mutex_unlock(&mu);
		cJSON_Delete(res);
		return send_buf(c, 200, "application/json", b.p, b.len, 0);
	} else if (!strcmp(url, "/reset")) {
		memset(&cnt, 0, sizeof(cnt));
		for (i = 0; i < N_LOG; i++) {
			cJSON_Delete(req_log[i]);
			req_log[i] = NULL;
		}
		log_n = log_next = 0;
	} else {
		pthread_mutex_unlock(&mu);
		cJSON_Delete(res);
		return send_status(c, 404, "unknown control command", 0);
	}
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	return send_json(c, 200, res);
}

static enum MHD_Result ctl_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				   const char *version, const char *upload_data, size_t *upload_size, void **ctx)
{
	struct ctl *x = *ctx;

	(void)cls;
	(void)method;
	(void)version;
	if (!x) {
		x = calloc(1, sizeof(*x));
		if (!x)
			return MHD_NO;
		*ctx = x;
		return MHD_YES;
	}
	if (*upload_size) {
		if (x->body.len + *upload_size > (512u << 20))
			return MHD_NO;
		sb_add(&x->body, upload_data, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	return ctl_dispatch(c, url, &x->body);
}

static void ctl_done(void *cls, struct MHD_Connection *c, void **ctx, enum MHD_RequestTerminationCode toe)
{
	struct ctl *x = *ctx;

	(void)cls;
	(void)c;
	(void)toe;
	if (x && x != (void *)1) {
		free(x->body.p);
		free(x);
	}
	*ctx = NULL;
}

/* ---- startup ---- */
static int listen_on(const char *spec, char *actual, size_t alen)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	char host[64];
	const char *colon = strrchr(spec, ':');
	int fd, one = 1;

	if (!colon || (size_t)(colon - spec) >= sizeof(host))
		die("bad address %s (want IPv4:PORT)", spec);
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = 0;
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		die("bad address %s (want IPv4:PORT)", spec);
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 128))
		die("listen on %s: %s", spec, strerror(errno));
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	snprintf(actual, alen, "%s:%u", host, ntohs(sa.sin_port));
	return fd;
}

static char *slurp(const char *path)
{
	struct stat st;
	char *buf;
	FILE *f = fopen(path, "re");

	if (!f || fstat(fileno(f), &st))
		die("%s: %s", path, strerror(errno));
	buf = xmalloc((size_t)st.st_size + 1);
	if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
		die("%s: short read", path);
	buf[st.st_size] = 0;
	fclose(f);
	return buf;
}

static void usage(void)
{
	fprintf(stderr, "usage: kxp-fake-apiserver --listen IP:PORT [--control IP:PORT] [--token T]\n"
			"  [--tls-cert F --tls-key F] [--load FILE] [--max-seconds N] [--bookmark-interval S]\n"
			"  [--watch-timeout S] [--history N] [--continue-ttl S] [--ready-file F] [--verbose]\n"
			"(the control protocol is described at the top of the source)\n");
	exit(2);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	if (opt_verbose)
		vfprintf(stderr, fmt, ap);
}

int main(int argc, char **argv)
{
	char api_addr[96], ctl_addr[96] = "", line[256];
	struct MHD_Daemon *api, *ctl = NULL;
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
	char *cert = NULL, *key = NULL;
	pthread_condattr_t ca;
	struct timespec ts;
	sigset_t sigs;
	int i, afd, cfd = -1;
	double start;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--verbose")) {
			opt_verbose = true;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--listen"))
			opt_listen = v;
		else if (!strcmp(a, "--control"))
			opt_control = v;
		else if (!strcmp(a, "--token"))
			opt_token = v;
		else if (!strcmp(a, "--tls-cert"))
			opt_cert = v;
		else if (!strcmp(a, "--tls-key"))
			opt_key = v;
		else if (!strcmp(a, "--load"))
			opt_load = v;
		else if (!strcmp(a, "--ready-file"))
			opt_ready = v;
		else if (!strcmp(a, "--max-seconds"))
			opt_max_seconds = (unsigned)atoi(v);
		else if (!strcmp(a, "--bookmark-interval"))
			opt_bookmark_s = atof(v);
		else if (!strcmp(a, "--watch-timeout"))
			opt_watch_timeout = (unsigned)atoi(v);
		else if (!strcmp(a, "--history"))
			opt_history = (size_t)atol(v);
		else if (!strcmp(a, "--continue-ttl"))
			opt_continue_ttl = (unsigned)atoi(v);
		else
			usage();
	}
	if (!opt_listen || !!opt_cert != !!opt_key || opt_history < 1 || opt_bookmark_s <= 0)
		usage();
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cv, &ca);
	hist = calloc(opt_history, sizeof(*hist));
	if (!hist)
		die("out of memory");
	tab_grow();
	if (opt_load) {
		char *text = slurp(opt_load), err[256] = "";
		cJSON *doc = cJSON_Parse(text);
		uint64_t rv = 0;
		unsigned count = 0;

		if (!doc)
			die("%s: not JSON", opt_load);
		if (apply_doc(doc, false, &rv, &count, err, sizeof(err)))
			die("%s: %s", opt_load, err);
		cJSON_Delete(doc);
		free(text);
	}
	/* Signals are taken synchronously by the main thread. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	afd = listen_on(opt_listen, api_addr, sizeof(api_addr));
	if (opt_control)
		cfd = listen_on(opt_control, ctl_addr, sizeof(ctl_addr));
	if (opt_cert) {
		cert = slurp(opt_cert);
		key = slurp(opt_key);
		api = MHD_start_daemon(flags | MHD_USE_TLS | MHD_USE_ERROR_LOG, 0, NULL, NULL, api_handler, NULL,
				       MHD_OPTION_LISTEN_SOCKET, afd, MHD_OPTION_HTTPS_MEM_CERT, cert,
				       MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				       MHD_OPTION_END);
	} else {
		api = MHD_start_daemon(flags | MHD_USE_ERROR_LOG, 0, NULL, NULL, api_handler, NULL,
				       MHD_OPTION_LISTEN_SOCKET, afd, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				       MHD_OPTION_END);
	}
	if (!api)
		die("cannot start the API server on %s", api_addr);
	if (cfd >= 0) {
		ctl = MHD_start_daemon(flags | MHD_USE_ERROR_LOG, 0, NULL, NULL, ctl_handler, NULL,
				       MHD_OPTION_LISTEN_SOCKET, cfd, MHD_OPTION_NOTIFY_COMPLETED, ctl_done, NULL,
				       MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
		if (!ctl)
			die("cannot start the control server on %s", ctl_addr);
	}
	snprintf(line, sizeof(line), "READY api=%s control=%s\n", api_addr, ctl_addr);
	fputs(line, stdout);
	fflush(stdout);
	if (opt_ready) {
		char tmp[4096];
		FILE *f;

		snprintf(tmp, sizeof(tmp), "%s.tmp", opt_ready);
		f = fopen(tmp, "we");
		if (!f || fputs(line, f) < 0 || fclose(f) || rename(tmp, opt_ready))
			die("%s: %s", opt_ready, strerror(errno));
	}
	start = now_s();
	for (;;) {
		double left = opt_max_seconds ? start + opt_max_seconds - now_s() : 3600;
		int sig;

		if (left <= 0)
			break;
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
		sig = sigtimedwait(&sigs, NULL, &ts);
		if (sig == SIGINT || sig == SIGTERM)
			break;
	}
	pthread_mutex_lock(&mu);
	quit = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	if (ctl)
		MHD_stop_daemon(ctl);
	MHD_stop_daemon(api);
	free(cert);
	free(key);
	return 0;
}
