/* Reflectors: one thread per kind that LISTs (paginated) and then WATCHes the
 * API server with libcurl, frames the watch stream line by line and turns it
 * into kxp_k8s_events on the queue; relists, reconnects and backs off. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "k8s/client.h"

#define DEF_PAGE_LIMIT 500
#define DEF_WATCH_TIMEOUT_S 300
#define DEF_BACKOFF_MIN_MS 800
#define DEF_BACKOFF_MAX_MS 30000
#define DEF_MAX_LINE (4u << 20) /* etcd caps objects at 1.5 MiB */
#define DEF_STALL_S 120         /* the API server bookmarks about once a minute */
#define MAX_LIST_BYTES (1ull << 30)
#define MAX_ERR_BODY (64u << 10)
#define MAX_LIST_RESTARTS 5
#define POLL_MS 200

static const struct kind_info {
	const char *name, *path, *kind, *api;
} kinds[KXP_K8S__KINDS] = {
	[KXP_K8S_SERVICE] = { "services", "/api/v1/services", "Service", "v1" },
	[KXP_K8S_SLICE] = { "endpointslices", "/apis/discovery.k8s.io/v1/endpointslices", "EndpointSlice",
			    "discovery.k8s.io/v1" },
	[KXP_K8S_NODE] = { "nodes", "/api/v1/nodes", "Node", "v1" },
};

/* What the reflector knows the server has: ns/name -> resourceVersion (and
 * labels, so a DELETED made up after a relist still says which Service an
 * EndpointSlice belonged to). */
struct known {
	struct known *next;
	char *key, *rv; /* key: "namespace/name" ("/name" when cluster-scoped) */
	cJSON *labels;
	unsigned gen; /* list generation that last saw it */
};

struct kset {
	struct known **b;
	size_t nb, n;
};

struct buf {
	char *p;
	size_t len, cap;
};

enum outcome {
	OUT_OK,     /* list complete / watch closed by the server or renewed */
	OUT_STOP,   /* kxp_reflector_stop */
	OUT_RELIST, /* 410 Gone / Expired: list again now */
	OUT_ERROR,  /* retry after a backoff; r->err says what */
	OUT_ERROR_RELIST, /* an ERROR event other than 410: relist after a backoff */
};

enum mode { MODE_LIST, MODE_WATCH };

struct kxp_reflector {
	struct kxp_k8s_conn conn;
	struct kxp_reflector_opts o;
	char *label_sel, *field_sel;
	const struct kind_info *ki;
	struct kxp_k8s_queue *q;
	pthread_t th;
	int stop;
	pthread_mutex_t lock;
	pthread_cond_t cond;

	CURLM *multi;
	CURL *easy;
	char curl_err[CURL_ERROR_SIZE];

	/* the token file as last read: re-read when any of these change */
	char *token;
	dev_t tok_dev;
	ino_t tok_ino;
	struct timespec tok_mtime;
	off_t tok_size;

	char *rv; /* resume point of the next watch */
	struct kset known;
	unsigned gen;
	bool listed_once;
	unsigned backoff_ms;

	/* per request */
	enum mode mode;
	long status;
	long retry_after_s;
	struct buf body;  /* LIST body, or the error body of a failed request */
	struct buf line;  /* watch: the incomplete line */
	uint64_t last_byte_ns, watch_bytes;
	enum outcome wout;  /* set by the line handler to end a watch */
	char err[512];

	struct kxp_reflector_stats st;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void stat_add(uint64_t *c, uint64_t v)
{
	__atomic_add_fetch(c, v, __ATOMIC_RELAXED);
}

static bool stopping(struct kxp_reflector *r)
{
	return __atomic_load_n(&r->stop, __ATOMIC_ACQUIRE);
}

/* ---- the set of known objects ---- */

static size_t hash_str(const char *s)
{
	size_t h = 14695981039346656037ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static struct known *kset_find(struct kset *s, const char *key)
{
	struct known *k;

	if (!s->nb)
		return NULL;
	for (k = s->b[hash_str(key) & (s->nb - 1)]; k; k = k->next)
		if (strcmp(k->key, key) == 0)
			return k;
	return NULL;
}

static int kset_grow(struct kset *s)
{
	size_t nb = s->nb ? s->nb * 2 : 256, i;
	struct known **b = calloc(nb, sizeof(*b)), *k, *next;

	if (!b)
		return -ENOMEM;
	for (i = 0; i < s->nb; i++) {
		for (k = s->b[i]; k; k = next) {
			size_t h = hash_str(k->key) & (nb - 1);

			next = k->next;
			k->next = b[h];
			b[h] = k;
		}
	}
	free(s->b);
	s->b = b;
	s->nb = nb;
	return 0;
}

static void known_free(struct known *k)
{
	free(k->key);
	free(k->rv);
	cJSON_Delete(k->labels);
	free(k);
}

static void kset_remove(struct kset *s, const char *key)
{
	struct known **pp, *k;

	if (!s->nb)
		return;
	for (pp = &s->b[hash_str(key) & (s->nb - 1)]; (k = *pp); pp = &k->next) {
		if (strcmp(k->key, key) == 0) {
			*pp = k->next;
			known_free(k);
			s->n--;
			return;
		}
	}
}

static void kset_free(struct kset *s)
{
	struct known *k, *next;
	size_t i;

	for (i = 0; i < s->nb; i++)
		for (k = s->b[i]; k; k = next) {
			next = k->next;
			known_free(k);
		}
	free(s->b);
	memset(s, 0, sizeof(*s));
}

/* Record ns/name at rv. *was_known tells ADDED from MODIFIED; *changed is
 * false when the same resourceVersion was already known (a relist of an
 * unchanged object emits nothing). */
static int kset_put(struct kset *s, const char *ns, const char *name, const char *rv, const cJSON *labels,
		    unsigned gen, bool *was_known, bool *changed)
{
	struct known *k;
	char *key;

	if (asprintf(&key, "%s/%s", ns ? ns : "", name) < 0)
		return -ENOMEM;
	k = kset_find(s, key);
	*was_known = k != NULL;
	*changed = true;
	if (k) {
		free(key);
		k->gen = gen;
		if (strcmp(k->rv, rv) == 0) {
			*changed = false;
			return 0;
		}
		free(k->rv);
		k->rv = strdup(rv);
		cJSON_Delete(k->labels);
		k->labels = labels ? cJSON_Duplicate(labels, 1) : NULL;
		return k->rv ? 0 : -ENOMEM;
	}
	if (s->n >= s->nb && kset_grow(s)) {
		free(key);
		return -ENOMEM;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		free(key);
		return -ENOMEM;
	}
	k->key = key;
	k->rv = strdup(rv);
	k->labels = labels ? cJSON_Duplicate(labels, 1) : NULL;
	k->gen = gen;
	if (!k->rv) {
		known_free(k);
		return -ENOMEM;
	}
	{
		size_t h = hash_str(key) & (s->nb - 1);

		k->next = s->b[h];
		s->b[h] = k;
	}
	s->n++;
	return 0;
}

/* ---- events ---- */

static struct kxp_k8s_event *ev_new(struct kxp_reflector *r, enum kxp_k8s_ev_what what, uint64_t ns)
{
	struct kxp_k8s_event *ev = calloc(1, sizeof(*ev));

	if (ev) {
		ev->kind = r->o.kind;
		ev->what = what;
		ev->received_ns = ns ? ns : now_ns();
	}
	return ev;
}

static void emit_error(struct kxp_reflector *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit_error(struct kxp_reflector *r, const char *fmt, ...)
{
	struct kxp_k8s_event *ev = ev_new(r, KXP_EV_ERROR, 0);
	va_list ap;
	char *m = NULL, *full = NULL;

	stat_add(&r->st.errors, 1);
	if (!ev)
		return;
	va_start(ap, fmt);
	if (vasprintf(&m, fmt, ap) < 0)
		m = NULL;
	va_end(ap);
	if (m && asprintf(&full, "%s: %s", r->ki->name, m) < 0)
		full = NULL;
	free(m);
	ev->msg = full;
	kxp_k8s_queue_push(r->q, ev);
}

static void emit_object(struct kxp_reflector *r, enum k8s_watch_type t, cJSON *obj, uint64_t ns, bool relist)
{
	struct kxp_k8s_event *ev = ev_new(r, KXP_EV_OBJECT, ns);

	if (!ev) {
		cJSON_Delete(obj);
		return;
	}
	ev->type = t;
	ev->obj = obj;
	ev->relist = relist;
	stat_add(&r->st.events, 1);
	kxp_k8s_queue_push(r->q, ev);
}

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* List items come without kind/apiVersion; give every object the same shape. */
static void set_type_meta(struct kxp_reflector *r, cJSON *obj)
{
	if (!cJSON_GetObjectItemCaseSensitive(obj, "kind"))
		cJSON_AddStringToObject(obj, "kind", r->ki->kind);
	if (!cJSON_GetObjectItemCaseSensitive(obj, "apiVersion"))
		cJSON_AddStringToObject(obj, "apiVersion", r->ki->api);
}

/* Apply one object (from a list page or a watch event) to the known set and
 * emit it. Takes ownership of obj. */
static void take_object(struct kxp_reflector *r, enum k8s_watch_type t, cJSON *obj, uint64_t ns, bool relist)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const char *name = jstr(md, "name"), *ons = jstr(md, "namespace"), *rv = jstr(md, "resourceVersion");
	bool was_known, changed;
	char *key;

	if (!name || !*name || !rv) {
		emit_error(r, "%s object without metadata.name or metadata.resourceVersion skipped",
			   relist ? "listed" : "watched");
		cJSON_Delete(obj);
		return;
	}
	if (!relist) { /* a list's pages share the list's RV, set at its end */
		free(r->rv);
		r->rv = strdup(rv);
	}
	if (t == K8S_WATCH_DELETED) {
		if (asprintf(&key, "%s/%s", ons ? ons : "", name) >= 0) {
			kset_remove(&r->known, key);
			free(key);
		}
	} else {
		if (kset_put(&r->known, ons, name, rv, cJSON_GetObjectItemCaseSensitive(md, "labels"), r->gen,
			     &was_known, &changed)) {
			emit_error(r, "out of memory tracking %s/%s", ons ? ons : "", name);
			cJSON_Delete(obj);
			return;
		}
		if (relist) {
			if (!changed) {
				cJSON_Delete(obj);
				return;
			}
			t = was_known ? K8S_WATCH_MODIFIED : K8S_WATCH_ADDED;
		}
	}
	set_type_meta(r, obj);
	emit_object(r, t, obj, ns, relist);
}

/* ---- HTTP ---- */

static int buf_add(struct buf *b, const char *p, size_t n, size_t cap)
{
	if (b->len + n + 1 > cap)
		return -E2BIG;
	if (b->len + n + 1 > b->cap) {
		size_t nc = b->cap ? b->cap : 4096;
		char *np;

		while (nc < b->len + n + 1)
			nc *= 2;
		np = realloc(b->p, nc);
		if (!np)
			return -ENOMEM;
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = 0;
	return 0;
}

static void handle_line(struct kxp_reflector *r, char *line, size_t len, uint64_t ns);

static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
	struct kxp_reflector *r = ud;
	size_t n = sz * nm;

	r->last_byte_ns = now_ns();
	if (n > 12 && strncasecmp(p, "Retry-After:", 12) == 0)
		r->retry_after_s = strtol(p + 12, NULL, 10);
	return n;
}

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
	struct kxp_reflector *r = ud;
	size_t n = sz * nm, done = 0;
	uint64_t t = now_ns();

	r->last_byte_ns = t;
	r->watch_bytes += n;
	stat_add(&r->st.bytes, n);
	if (!r->status)
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->mode == MODE_LIST || r->status != 200) {
		size_t cap = r->status == 200 ? MAX_LIST_BYTES : MAX_ERR_BODY;

		if (buf_add(&r->body, p, n, cap)) {
			if (r->status != 200)
				return n; /* an error body is only read for its message */
			snprintf(r->err, sizeof(r->err), "list response over %llu bytes",
				 (unsigned long long)MAX_LIST_BYTES);
			r->wout = OUT_ERROR;
			return 0;
		}
		return n;
	}
	/* Watch: frame complete lines; the incomplete rest stays in r->line,
	 * which never grows beyond max_line. */
	while (done < n && r->wout == OUT_OK) {
		char *nl = memchr(p + done, '\n', n - done);
		size_t take = nl ? (size_t)(nl - (p + done)) : n - done;

		if (r->line.len + take > r->o.max_line) {
			snprintf(r->err, sizeof(r->err), "watch line over %zu bytes, reconnecting", r->o.max_line);
			r->wout = OUT_ERROR;
			return 0;
		}
		if (buf_add(&r->line, p + done, take, r->o.max_line + 1)) {
			snprintf(r->err, sizeof(r->err), "out of memory framing the watch stream");
			r->wout = OUT_ERROR;
			return 0;
		}
		done += take;
		if (!nl)
			break;
		done++;
		handle_line(r, r->line.p, r->line.len, t);
		r->line.len = 0;
	}
	/* An ERROR event ends the watch: stop reading. */
	return r->wout == OUT_OK ? n : 0;
}

static void handle_line(struct kxp_reflector *r, char *line, size_t len, uint64_t ns)
{
	enum k8s_watch_type t;
	const cJSON *obj;
	cJSON *ev;

	while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
		line[--len] = 0;
	if (!len)
		return;
	ev = cJSON_ParseWithLength(line, len);
	if (!ev) {
		const char *at = cJSON_GetErrorPtr();
		long off = at && at >= line && at <= line + len ? (long)(at - line) : -1;

		emit_error(r, "malformed JSON line in the watch stream (%zu bytes, error at byte %ld: \"%.40s\"), skipped",
			   len, off, line);
		return;
	}
	if (k8s_watch_event(ev, &t, &obj)) {
		emit_error(r, "watch line is not an event (no type/object), skipped");
		cJSON_Delete(ev);
		return;
	}
	switch (t) {
	case K8S_WATCH_BOOKMARK: {
		const char *rv = jstr(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "resourceVersion");

		if (rv && *rv) {
			free(r->rv);
			r->rv = strdup(rv);
		}
		break;
	}
	case K8S_WATCH_ERROR: {
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(obj, "code");
		const char *reason = jstr(obj, "reason"), *msg = jstr(obj, "message");

		if ((cJSON_IsNumber(code) && code->valueint == 410) ||
		    (reason && (!strcmp(reason, "Expired") || !strcmp(reason, "Gone")))) {
			r->wout = OUT_RELIST;
		} else {
			snprintf(r->err, sizeof(r->err), "watch ERROR event (code %d, %s: %.200s)",
				 cJSON_IsNumber(code) ? code->valueint : 0, reason ? reason : "no reason",
				 msg ? msg : "");
			r->wout = OUT_ERROR_RELIST;
		}
		break;
	}
	default: {
		cJSON *o = cJSON_DetachItemViaPointer(ev, (cJSON *)obj);

		take_object(r, t, o, ns, false);
		break;
	}
	}
	cJSON_Delete(ev);
}

/* Re-read the token file when it changed (projected tokens rotate). */
static void refresh_token(struct kxp_reflector *r)
{
	struct stat st;
	char buf[16384];
	ssize_t n;
	FILE *f;

	if (!r->conn.token_file || stat(r->conn.token_file, &st))
		return;
	if (r->token && st.st_dev == r->tok_dev && st.st_ino == r->tok_ino && st.st_size == r->tok_size &&
	    st.st_mtim.tv_sec == r->tok_mtime.tv_sec && st.st_mtim.tv_nsec == r->tok_mtime.tv_nsec)
		return;
	f = fopen(r->conn.token_file, "re");
	if (!f)
		return;
	n = (ssize_t)fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	if (n < 0)
		return;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	buf[n] = 0;
	if (r->token) {
		explicit_bzero(r->token, strlen(r->token));
		free(r->token);
	}
	r->token = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	r->tok_dev = st.st_dev;
	r->tok_ino = st.st_ino;
	r->tok_size = st.st_size;
	r->tok_mtime = st.st_mtim;
}

/* One request on the reflector's handle, driven through a multi handle so
 * that stop (curl_multi_wakeup) and the stall timer act within POLL_MS. */
static enum outcome perform(struct kxp_reflector *r, const char *url, enum mode mode, uint64_t deadline_ns,
			    CURLcode *res, bool *stalled)
{
	struct curl_slist *h = NULL;
	const char *tok = r->conn.token;
	char *auth = NULL;
	enum outcome out = OUT_OK;
	int running = 1;
	CURLMsg *m;
	int left;

	*res = CURLE_OK;
	*stalled = false;
	r->mode = mode;
	r->status = 0;
	r->retry_after_s = 0;
	r->body.len = 0;
	r->line.len = 0;
	r->watch_bytes = 0;
	r->wout = OUT_OK;
	r->err[0] = 0;
	r->curl_err[0] = 0;
	r->last_byte_ns = now_ns();

	refresh_token(r);
	if (r->conn.token_file && r->token)
		tok = r->token;
	h = curl_slist_append(h, "Accept: application/json");
	if (tok && *tok) {
		if (asprintf(&auth, "Authorization: Bearer %s", tok) < 0)
			auth = NULL;
		if (auth)
			h = curl_slist_append(h, auth);
	}
	curl_easy_setopt(r->easy, CURLOPT_URL, url);
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, h);
	curl_multi_add_handle(r->multi, r->easy);
	while (running) {
		uint64_t t;

		if (curl_multi_perform(r->multi, &running) != CURLM_OK)
			break;
		if (!running || r->wout != OUT_OK)
			break;
		if (stopping(r)) {
			out = OUT_STOP;
			break;
		}
		t = now_ns();
		if (r->o.stall_timeout_s && t - r->last_byte_ns > r->o.stall_timeout_s * 1000000000ull) {
			*stalled = true;
			break;
		}
		if (deadline_ns && t > deadline_ns)
			break; /* renew the watch ourselves: the server did not end it */
		curl_multi_poll(r->multi, NULL, 0, POLL_MS, NULL);
	}
	while ((m = curl_multi_info_read(r->multi, &left)))
		if (m->msg == CURLMSG_DONE)
			*res = m->data.result;
	if (!r->status)
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
	curl_multi_remove_handle(r->multi, r->easy);
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);
	if (auth) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	if (stopping(r))
		return OUT_STOP;
	return out;
}

/* The message of a Status body, for errors. */
static void status_message(struct kxp_reflector *r, char *out, size_t len)
{
	cJSON *s = r->body.len ? cJSON_ParseWithLength(r->body.p, r->body.len) : NULL;
	const char *m = jstr(s, "message");

	snprintf(out, len, "%.200s", m ? m : "");
	cJSON_Delete(s);
}

/* Fill r->err for a failed request; returns the outcome. */
static enum outcome request_error(struct kxp_reflector *r, const char *what, CURLcode res, bool stalled)
{
	char m[256];

	if (stalled) {
		snprintf(r->err, sizeof(r->err), "%s: no data from the server for %u s, reconnecting", what,
			 r->o.stall_timeout_s);
		return OUT_ERROR;
	}
	if (r->err[0])
		return OUT_ERROR; /* set by the body handler */
	if (res != CURLE_OK && (res != CURLE_WRITE_ERROR || !r->status || r->status == 200)) {
		snprintf(r->err, sizeof(r->err), "%s: %s%s%s", what, curl_easy_strerror(res), r->curl_err[0] ? ": " : "",
			 r->curl_err);
		return OUT_ERROR;
	}
	status_message(r, m, sizeof(m));
	snprintf(r->err, sizeof(r->err), "%s: HTTP %ld%s%s", what, r->status, m[0] ? ": " : "", m);
	return OUT_ERROR;
}

static char *selectors(struct kxp_reflector *r)
{
	char *out = NULL, *l = NULL, *f = NULL;

	if (r->label_sel)
		l = curl_easy_escape(NULL, r->label_sel, 0);
	if (r->field_sel)
		f = curl_easy_escape(NULL, r->field_sel, 0);
	if (asprintf(&out, "%s%s%s%s", l ? "&labelSelector=" : "", l ? l : "", f ? "&fieldSelector=" : "",
		     f ? f : "") < 0)
		out = NULL;
	curl_free(l);
	curl_free(f);
	return out;
}

/* Paginated LIST; emits the differences to the known set, DELETED for what
 * vanished, then SYNCED, and sets r->rv to the list's resourceVersion. */
static enum outcome do_list(struct kxp_reflector *r)
{
	char *sel = selectors(r), *url = NULL, *cont = NULL, *list_rv = NULL;
	enum outcome out = OUT_OK;
	unsigned restarts = 0;
	struct known *k, *next;
	bool stalled;
	CURLcode res;
	size_t i;

	if (!sel)
		return OUT_ERROR;
	r->gen++;
	for (;;) {
		char *ec = cont ? curl_easy_escape(NULL, cont, 0) : NULL;
		const cJSON *md, *items, *it;
		cJSON *root;
		uint64_t t;
		const char *c;

		free(url);
		if (asprintf(&url, "%s%s?limit=%u%s%s%s", r->conn.server, r->ki->path, r->o.page_limit,
			     ec ? "&continue=" : "", ec ? ec : "", sel) < 0)
			url = NULL;
		curl_free(ec);
		if (!url) {
			out = OUT_ERROR;
			snprintf(r->err, sizeof(r->err), "out of memory");
			break;
		}
		out = perform(r, url, MODE_LIST, 0, &res, &stalled);
		if (out == OUT_STOP)
			break;
		if (r->status == 410 && cont && !stalled && ++restarts <= MAX_LIST_RESTARTS) {
			/* The continue token expired (compaction): the pages
			 * seen so far are from an older snapshot; start over. */
			free(cont);
			cont = NULL;
			r->gen++;
			continue;
		}
		if (stalled || res != CURLE_OK || r->status != 200 || r->wout != OUT_OK) {
			out = request_error(r, "LIST", res, stalled);
			break;
		}
		t = now_ns();
		root = cJSON_ParseWithLength(r->body.p, r->body.len);
		md = cJSON_GetObjectItemCaseSensitive(root, "metadata");
		items = cJSON_GetObjectItemCaseSensitive(root, "items");
		if (!root || !jstr(md, "resourceVersion") || (items && !cJSON_IsArray(items))) {
			snprintf(r->err, sizeof(r->err), "LIST: malformed list response (%zu bytes)", r->body.len);
			cJSON_Delete(root);
			out = OUT_ERROR;
			break;
		}
		if (!cont) { /* the first page's RV is the snapshot the pages share */
			free(list_rv);
			list_rv = strdup(jstr(md, "resourceVersion"));
		}
		c = jstr(md, "continue");
		free(cont);
		cont = c && *c ? strdup(c) : NULL;
		while (items && (it = items->child)) {
			cJSON_DetachItemViaPointer((cJSON *)items, (cJSON *)it);
			if (!cJSON_IsObject(it)) {
				emit_error(r, "LIST: an item is not an object, skipped");
				cJSON_Delete((cJSON *)it);
				continue;
			}
			take_object(r, K8S_WATCH_ADDED, (cJSON *)it, t, true);
		}
		cJSON_Delete(root);
		if (!cont)
			break;
	}
	if (out == OUT_OK && list_rv) {
		/* Whatever was not in this list is gone from the server. */
		for (i = 0; i < r->known.nb; i++) {
			for (k = r->known.b[i]; k; k = next) {
				cJSON *o;
				const char *slash;

				next = k->next;
				if (k->gen == r->gen)
					continue;
				o = cJSON_CreateObject();
				if (o) {
					cJSON *md = cJSON_AddObjectToObject(o, "metadata");

					slash = strchr(k->key, '/');
					cJSON_AddStringToObject(o, "kind", r->ki->kind);
					cJSON_AddStringToObject(o, "apiVersion", r->ki->api);
					if (md) {
						cJSON_AddStringToObject(md, "name", slash + 1);
						if (slash != k->key) {
							char *ns = strndup(k->key, (size_t)(slash - k->key));

							if (ns)
								cJSON_AddStringToObject(md, "namespace", ns);
							free(ns);
						}
						cJSON_AddStringToObject(md, "resourceVersion", k->rv);
						if (k->labels)
							cJSON_AddItemToObject(md, "labels", cJSON_Duplicate(k->labels, 1));
					}
					emit_object(r, K8S_WATCH_DELETED, o, 0, true);
				}
				kset_remove(&r->known, k->key);
			}
		}
		free(r->rv);
		r->rv = list_rv;
		list_rv = NULL;
		stat_add(&r->st.lists, 1);
		if (r->listed_once)
			stat_add(&r->st.relists, 1);
		r->listed_once = true;
		{
			struct kxp_k8s_event *ev = ev_new(r, KXP_EV_SYNCED, 0);

			if (ev) {
				ev->relist = true;
				kxp_k8s_queue_push(r->q, ev);
			}
		}
	}
	free(list_rv);
	free(cont);
	free(url);
	free(sel);
	return out;
}

/* One WATCH from r->rv until the server ends it, an error, or a relist. */
static enum outcome do_watch(struct kxp_reflector *r)
{
	char *sel = selectors(r), *url = NULL, *erv;
	uint64_t deadline;
	enum outcome out;
	bool stalled;
	CURLcode res;

	if (!sel || !r->rv) {
		free(sel);
		snprintf(r->err, sizeof(r->err), "out of memory");
		return OUT_ERROR;
	}
	erv = curl_easy_escape(NULL, r->rv, 0);
	if (!erv || asprintf(&url, "%s%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%u%s",
			     r->conn.server, r->ki->path, erv, r->o.watch_timeout_s, sel) < 0)
		url = NULL;
	curl_free(erv);
	free(sel);
	if (!url) {
		snprintf(r->err, sizeof(r->err), "out of memory");
		return OUT_ERROR;
	}
	stat_add(&r->st.watches, 1);
	/* Should the server not end the watch at timeoutSeconds, end it
	 * ourselves a little later and renew from the last RV. */
	deadline = now_ns() + (uint64_t)(r->o.watch_timeout_s + 5 + r->o.watch_timeout_s / 10) * 1000000000ull;
	out = perform(r, url, MODE_WATCH, deadline, &res, &stalled);
	free(url);
	if (out == OUT_STOP)
		return out;
	if (r->wout == OUT_RELIST || r->status == 410)
		return OUT_RELIST;
	if (r->wout == OUT_ERROR_RELIST)
		return OUT_ERROR_RELIST;
	if (stalled || r->wout == OUT_ERROR || r->status != 200 || (res != CURLE_OK && res != CURLE_WRITE_ERROR))
		return request_error(r, "WATCH", res, stalled);
	return OUT_OK;
}

static void backoff_reset(struct kxp_reflector *r)
{
	r->backoff_ms = 0;
}

/* Next delay: exponential between min and max, "equal jitter" (half fixed,
 * half random) so that many agents do not retry in step; Retry-After wins
 * when it asks for longer. */
static unsigned backoff_next(struct kxp_reflector *r)
{
	unsigned d;

	r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : r->o.backoff_min_ms;
	if (r->backoff_ms > r->o.backoff_max_ms)
		r->backoff_ms = r->o.backoff_max_ms;
	d = r->backoff_ms / 2 + (unsigned)(random() % (r->backoff_ms / 2 + 1));
	if (r->status == 429 && r->retry_after_s > 0) {
		unsigned ra = r->retry_after_s > 600 ? 600000 : (unsigned)r->retry_after_s * 1000;

		if (ra > d)
			d = ra;
	}
	return d;
}

static void sleep_ms(struct kxp_reflector *r, unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&r->lock);
	while (!stopping(r) && pthread_cond_timedwait(&r->cond, &r->lock, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&r->lock);
}

static void fail_and_wait(struct kxp_reflector *r)
{
	unsigned d = backoff_next(r);

	emit_error(r, "%s; retrying in %u ms", r->err[0] ? r->err : "request failed", d);
	sleep_ms(r, d);
}

static void *run(void *arg)
{
	struct kxp_reflector *r = arg;
	bool need_list = true, after_list = false;
	sigset_t all;

	/* Signals are the agent's main thread's business. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	while (!stopping(r)) {
		enum outcome o;
		uint64_t t0;

		if (need_list) {
			o = do_list(r);
			if (o == OUT_STOP)
				break;
			if (o != OUT_OK) {
				fail_and_wait(r);
				continue;
			}
			backoff_reset(r);
			need_list = false;
			after_list = true;
		}
		if (!after_list)
			stat_add(&r->st.watch_restarts, 1);
		after_list = false;
		t0 = now_ns();
		o = do_watch(r);
		switch (o) {
		case OUT_STOP:
			break;
		case OUT_RELIST:
			need_list = true;
			break;
		case OUT_ERROR_RELIST:
			need_list = true;
			fail_and_wait(r);
			break;
		case OUT_ERROR:
			if (r->watch_bytes)
				backoff_reset(r); /* it was working: retry soon */
			fail_and_wait(r);
			break;
		case OUT_OK:
			/* A server ending watches at once would make us spin. */
			if (!r->watch_bytes && now_ns() - t0 < 1000000000ull)
				sleep_ms(r, backoff_next(r));
			else
				backoff_reset(r);
			break;
		}
	}
	return NULL;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *xdup(const char *s, bool *oom)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

static void set_blob(CURL *e, CURLoption opt, const char *pem)
{
	struct curl_blob b = { .data = (void *)pem, .len = strlen(pem), .flags = CURL_BLOB_COPY };

	curl_easy_setopt(e, opt, &b);
}

static void reflector_free(struct kxp_reflector *r)
{
	if (!r)
		return;
	if (r->easy)
		curl_easy_cleanup(r->easy);
	if (r->multi)
		curl_multi_cleanup(r->multi);
	kxp_k8s_conn_free(&r->conn);
	if (r->token) {
		explicit_bzero(r->token, strlen(r->token));
		free(r->token);
	}
	free(r->label_sel);
	free(r->field_sel);
	free(r->rv);
	free(r->body.p);
	free(r->line.p);
	kset_free(&r->known);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r);
}

struct kxp_reflector *kxp_reflector_start(const struct kxp_k8s_conn *c, const struct kxp_reflector_opts *o,
					  struct kxp_k8s_queue *q)
{
	struct kxp_reflector *r;
	pthread_condattr_t ca;
	bool oom = false;
	size_t sl;
	int e;

	if (!c || !c->server || !o || !q || o->kind < 0 || o->kind >= KXP_K8S__KINDS) {
		errno = EINVAL;
		return NULL;
	}
	pthread_once(&curl_once, curl_init_once);
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	r->q = q;
	r->o = *o;
	r->ki = &kinds[o->kind];
	if (!r->o.page_limit)
		r->o.page_limit = DEF_PAGE_LIMIT;
	if (!r->o.watch_timeout_s)
		r->o.watch_timeout_s = DEF_WATCH_TIMEOUT_S;
	if (!r->o.backoff_min_ms)
		r->o.backoff_min_ms = DEF_BACKOFF_MIN_MS;
	if (!r->o.backoff_max_ms)
		r->o.backoff_max_ms = DEF_BACKOFF_MAX_MS;
	if (r->o.backoff_max_ms < r->o.backoff_min_ms)
		r->o.backoff_max_ms = r->o.backoff_min_ms;
	if (!r->o.max_line)
		r->o.max_line = DEF_MAX_LINE;
	if (!r->o.stall_timeout_s)
		r->o.stall_timeout_s = DEF_STALL_S;
	r->label_sel = o->label_selector && *o->label_selector ? xdup(o->label_selector, &oom) : NULL;
	r->field_sel = o->field_selector && *o->field_selector ? xdup(o->field_selector, &oom) : NULL;
	r->o.label_selector = r->label_sel;
	r->o.field_selector = r->field_sel;

	r->conn.server = xdup(c->server, &oom);
	r->conn.ca_file = xdup(c->ca_file, &oom);
	r->conn.ca_data = xdup(c->ca_data, &oom);
	r->conn.token = xdup(c->token, &oom);
	r->conn.token_file = xdup(c->token_file, &oom);
	r->conn.cert_file = xdup(c->cert_file, &oom);
	r->conn.key_file = xdup(c->key_file, &oom);
	r->conn.cert_data = xdup(c->cert_data, &oom);
	r->conn.key_data = xdup(c->key_data, &oom);
	r->conn.insecure = c->insecure;
	if (oom)
		goto enomem;
	sl = strlen(r->conn.server);
	while (sl && r->conn.server[sl - 1] == '/')
		r->conn.server[--sl] = 0;

	r->multi = curl_multi_init();
	r->easy = curl_easy_init();
	if (!r->multi || !r->easy)
		goto enomem;
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->curl_err);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "kxp");
	curl_easy_setopt(r->easy, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	if (r->conn.ca_data)
		set_blob(r->easy, CURLOPT_CAINFO_BLOB, r->conn.ca_data);
	else if (r->conn.ca_file)
		curl_easy_setopt(r->easy, CURLOPT_CAINFO, r->conn.ca_file);
	if (r->conn.cert_data) {
		set_blob(r->easy, CURLOPT_SSLCERT_BLOB, r->conn.cert_data);
		curl_easy_setopt(r->easy, CURLOPT_SSLCERTTYPE, "PEM");
	} else if (r->conn.cert_file) {
		curl_easy_setopt(r->easy, CURLOPT_SSLCERT, r->conn.cert_file);
	}
	if (r->conn.key_data) {
		set_blob(r->easy, CURLOPT_SSLKEY_BLOB, r->conn.key_data);
		curl_easy_setopt(r->easy, CURLOPT_SSLKEYTYPE, "PEM");
	} else if (r->conn.key_file) {
		curl_easy_setopt(r->easy, CURLOPT_SSLKEY, r->conn.key_file);
	}
	if (r->conn.insecure) {
		curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	srandom((unsigned)now_ns() ^ (unsigned)getpid());

	e = pthread_create(&r->th, NULL, run, r);
	if (e) {
		reflector_free(r);
		errno = e;
		return NULL;
	}
	return r;
enomem:
	reflector_free(r);
	errno = ENOMEM;
	return NULL;
}

void kxp_reflector_stats(struct kxp_reflector *r, struct kxp_reflector_stats *st)
{
	st->lists = __atomic_load_n(&r->st.lists, __ATOMIC_RELAXED);
	st->relists = __atomic_load_n(&r->st.relists, __ATOMIC_RELAXED);
	st->watches = __atomic_load_n(&r->st.watches, __ATOMIC_RELAXED);
	st->watch_restarts = __atomic_load_n(&r->st.watch_restarts, __ATOMIC_RELAXED);
	st->events = __atomic_load_n(&r->st.events, __ATOMIC_RELAXED);
	st->errors = __atomic_load_n(&r->st.errors, __ATOMIC_RELAXED);
	st->bytes = __atomic_load_n(&r->st.bytes, __ATOMIC_RELAXED);
}

void kxp_reflector_stop(struct kxp_reflector *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	curl_multi_wakeup(r->multi);
	pthread_join(r->th, NULL);
	reflector_free(r);
}
