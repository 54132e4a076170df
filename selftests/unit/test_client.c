/* The API client against the test double of the API server (a child process
 * on 127.0.0.1): paginated lists, watches, bookmarks, 410 relists, cuts,
 * 5xx/429 backoff, stalls, malformed lines, tokens and TLS. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "../lib/testlib.h"
#include "k8s/client.h"

struct fake {
	pid_t pid;
	char api[64], ctl[64], url[128];
};

/* Every error message seen, to check that no token leaks into one. */
static char seen_msgs[16384];

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* kxp_test_skip() exits at once: tests that make temporary files ask first. */
static void need_fake(void)
{
	char bin[4096];

	snprintf(bin, sizeof(bin), "%s/kxp-fake-apiserver", kxp_test_builddir());
	if (access(bin, X_OK))
		kxp_test_skip("%s not built", bin);
}

/* Start the fake server with extra arguments (NULL-terminated); "https" in
 * scheme when TLS flags are passed. */
static bool fake_start(struct fake *f, const char *scheme, const char *const *extra)
{
	char bin[4096], line[256] = "";
	const char *argv[32];
	int pfd[2], n = 0, i;
	size_t off = 0;
	uint64_t t0 = mono_ms();

	memset(f, 0, sizeof(*f));
	snprintf(bin, sizeof(bin), "%s/kxp-fake-apiserver", kxp_test_builddir());
	if (access(bin, X_OK)) {
		kxp_test_skip("%s not built", bin);
		return false;
	}
	argv[n++] = bin;
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--control";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--max-seconds";
	argv[n++] = "50";
	for (i = 0; extra && extra[i] && n < 30; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	if (pipe2(pfd, O_CLOEXEC))
		return false;
	f->pid = fork();
	if (f->pid == 0) {
		dup2(pfd[1], 1);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	while (off < sizeof(line) - 1 && !strchr(line, '\n') && mono_ms() - t0 < 5000) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, 200) <= 0)
			continue;
		r = read(pfd[0], line + off, sizeof(line) - 1 - off);
		if (r <= 0)
			break;
		off += (size_t)r;
		line[off] = 0;
	}
	close(pfd[0]);
	if (sscanf(line, "READY api=%63s control=%63s", f->api, f->ctl) != 2) {
		kxp_test_fail(__FILE__, __LINE__, "fake API server did not start: \"%s\"", line);
		return false;
	}
	snprintf(f->url, sizeof(f->url), "%s://%s", scheme, f->api);
	return true;
}

static void fake_stop(struct fake *f)
{
	if (f->pid > 0) {
		kill(f->pid, SIGTERM);
		waitpid(f->pid, NULL, 0);
		f->pid = 0;
	}
}

static size_t collect_body(char *p, size_t sz, size_t nm, void *ud)
{
	char **out = ud;
	size_t old = *out ? strlen(*out) : 0, n = sz * nm;
	char *np = realloc(*out, old + n + 1);

	if (!np)
		return 0;
	memcpy(np + old, p, n);
	np[old + n] = 0;
	*out = np;
	return n;
}

/* A control request; returns the parsed JSON answer (caller frees) or NULL. */
static cJSON *ctl(struct fake *f, const char *path, const char *body)
{
	CURL *e = curl_easy_init();
	char url[512], *out = NULL;
	long code = 0;
	cJSON *j;

	snprintf(url, sizeof(url), "http://%s%s", f->ctl, path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &out);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 10L);
	if (curl_easy_perform(e) != CURLE_OK)
		kxp_test_fail(__FILE__, __LINE__, "control %s failed", path);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(e);
	j = out ? cJSON_Parse(out) : NULL;
	if (code != 200)
		printf("    control %s: HTTP %ld %s\n", path, code, out ? out : "");
	free(out);
	return j;
}

static void ctl0(struct fake *f, const char *path, const char *body)
{
	cJSON_Delete(ctl(f, path, body));
}

static uint64_t ctl_rv(struct fake *f, const char *path, const char *body)
{
	cJSON *j = ctl(f, path, body);
	const char *rv = cJSON_GetStringValue(cJSON_GetObjectItem(j, "resourceVersion"));
	uint64_t v = rv ? strtoull(rv, NULL, 10) : 0;

	cJSON_Delete(j);
	return v;
}

static char *svc_json(const char *name, int ip, const char *labels)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf),
		 "{\"kind\":\"Service\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"t\"%s%s%s},"
		 "\"spec\":{\"clusterIP\":\"10.96.0.%d\",\"ports\":[{\"port\":80,\"protocol\":\"TCP\"}]}}",
		 name, labels ? ",\"labels\":{" : "", labels ? labels : "", labels ? "}" : "", ip);
	return buf;
}

static struct kxp_reflector_opts opts(enum kxp_k8s_kind kind)
{
	struct kxp_reflector_opts o = {
		.kind = kind,
		.page_limit = 5,
		.watch_timeout_s = 30,
		.backoff_min_ms = 50,
		.backoff_max_ms = 400,
		.max_line = 64 * 1024,
		.stall_timeout_s = 5,
	};
	return o;
}

/* Next event within ms (NULL on timeout). Error events are recorded and
 * skipped unless want_errors. */
static struct kxp_k8s_event *next_ev(struct kxp_k8s_queue *q, int ms, bool want_errors, unsigned *errors)
{
	uint64_t end = mono_ms() + (uint64_t)ms;

	for (;;) {
		struct kxp_k8s_event *ev = kxp_k8s_queue_pop(q);
		struct pollfd p = { .fd = kxp_k8s_queue_fd(q), .events = POLLIN };
		int64_t left;

		if (ev) {
			if (ev->what == KXP_EV_ERROR) {
				printf("    error event: %s\n", ev->msg ? ev->msg : "(null)");
				if (ev->msg && strlen(seen_msgs) + strlen(ev->msg) + 2 < sizeof(seen_msgs)) {
					strcat(seen_msgs, ev->msg);
					strcat(seen_msgs, "\n");
				}
				if (errors)
					(*errors)++;
				if (!want_errors) {
					kxp_k8s_event_free(ev);
					continue;
				}
			}
			return ev;
		}
		left = (int64_t)(end - mono_ms());
		if ((int64_t)end - (int64_t)mono_ms() <= 0)
			return NULL;
		poll(&p, 1, (int)(left > 100 ? 100 : left));
	}
}

static const char *ev_name(const struct kxp_k8s_event *ev)
{
	const cJSON *md = cJSON_GetObjectItem(ev->obj, "metadata");

	return cJSON_GetStringValue(cJSON_GetObjectItem(md, "name"));
}

/* Expect an object event of type t for name. */
static bool expect_obj(struct kxp_k8s_queue *q, enum k8s_watch_type t, const char *name, bool relist, int ms)
{
	struct kxp_k8s_event *ev = next_ev(q, ms, false, NULL);
	bool ok = ASSERT_TRUE(ev != NULL, name) && ASSERT_EQ(ev->what, KXP_EV_OBJECT, name) &&
		  ASSERT_EQ(ev->type, t, name) && ASSERT_STREQ(ev_name(ev), name, "object name") &&
		  ASSERT_EQ(ev->relist, relist, "relist flag") && ASSERT_TRUE(ev->received_ns > 0, "received_ns");

	kxp_k8s_event_free(ev);
	return ok;
}

static bool expect_synced(struct kxp_k8s_queue *q, int ms)
{
	struct kxp_k8s_event *ev = next_ev(q, ms, false, NULL);
	bool ok = ASSERT_TRUE(ev != NULL, "SYNCED arrives") && ASSERT_EQ(ev->what, KXP_EV_SYNCED, "SYNCED");

	kxp_k8s_event_free(ev);
	return ok;
}

static bool expect_quiet(struct kxp_k8s_queue *q, int ms)
{
	struct kxp_k8s_event *ev = next_ev(q, ms, false, NULL);

	if (ev)
		printf("    unexpected event: what %d type %d name %s\n", ev->what, ev->type,
		       ev->obj ? ev_name(ev) : "-");
	kxp_k8s_event_free(ev);
	return ASSERT_TRUE(ev == NULL, "no further event");
}

/* The watch requests the server saw, newest last. */
static cJSON *watch_log(struct fake *f, int *n)
{
	cJSON *log = ctl(f, "/log", NULL), *e, *out = cJSON_CreateArray();

	cJSON_ArrayForEach(e, log) {
		if (cJSON_GetObjectItem(e, "watch"))
			cJSON_AddItemToArray(out, cJSON_Duplicate(e, 1));
	}
	cJSON_Delete(log);
	*n = cJSON_GetArraySize(out);
	return out;
}

static uint64_t item_rv(cJSON *arr, int i)
{
	const char *rv = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, i), "resourceVersion"));

	return rv ? strtoull(rv, NULL, 10) : 0;
}

static bool wait_watches(struct fake *f, int want, int ms)
{
	uint64_t end = mono_ms() + (uint64_t)ms;
	int n = 0;

	while (mono_ms() < end) {
		cJSON_Delete(watch_log(f, &n));
		if (n >= want)
			return true;
		usleep(50000);
	}
	return ASSERT_TRUE(n >= want, "watch request reached the server");
}

/* Start a fake with services s0..s(n-1) and a reflector; wait for SYNCED. */
struct env {
	struct fake f;
	struct kxp_k8s_conn conn;
	struct kxp_k8s_queue *q;
	struct kxp_reflector *r;
};

static bool env_start(struct env *e, unsigned n, const char *const *extra, struct kxp_reflector_opts *o)
{
	char name[32];
	unsigned i;

	memset(e, 0, sizeof(*e));
	if (!fake_start(&e->f, "http", extra))
		return false;
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "s%u", i);
		ctl0(&e->f, "/apply", svc_json(name, (int)i + 1, NULL));
	}
	e->conn.server = e->f.url;
	e->q = kxp_k8s_queue_new();
	e->r = kxp_reflector_start(&e->conn, o, e->q);
	if (!ASSERT_TRUE(e->r != NULL, "reflector starts"))
		return false;
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "s%u", i);
		if (!expect_obj(e->q, K8S_WATCH_ADDED, name, true, 5000))
			return false;
	}
	return expect_synced(e->q, 2000);
}

static void env_stop(struct env *e)
{
	kxp_reflector_stop(e->r);
	kxp_k8s_queue_free(e->q);
	fake_stop(&e->f);
}

KXP_TEST(client_list_paginated)
{
	struct kxp_reflector_opts o = opts(KXP_K8S_SERVICE);
	struct kxp_reflector_stats st;
	struct env e;
	cJSON *log = NULL, *it;
	int lists = 0, conts = 0;

	/* 23 objects, 5 a page: 5 pages, names come sorted by namespace/name */
	if (!fake_start(&e.f, "http", NULL))
		return;
	{
		char body[32768] = "[", name[16];
		int i;

		for (i = 0; i < 23; i++) {
			snprintf(name, sizeof(name), "p%02d", i);
			strcat(body, svc_json(name, i + 1, NULL));
			strcat(body, i < 22 ? "," : "]");
		}
		ctl0(&e.f, "/apply", body);
	}
	e.conn = (struct kxp_k8s_conn){ .server = e.f.url };
	e.q = kxp_k8s_queue_new();
	e.r = kxp_reflector_start(&e.conn, &o, e.q);
	for (int i = 0; i < 23; i++) {
		char name[16];

		snprintf(name, sizeof(name), "p%02d", i);
		if (!expect_obj(e.q, K8S_WATCH_ADDED, name, true, 5000))
			goto out;
	}
	if (!expect_synced(e.q, 2000) || !expect_quiet(e.q, 300))
		goto out;
	log = ctl(&e.f, "/log", NULL);
	cJSON_ArrayForEach(it, log) {
		if (cJSON_GetObjectItem(it, "watch"))
			continue;
		lists++;
		if (!ASSERT_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(it, "limit")), "5", "limit sent"))
			goto out;
		conts += cJSON_GetObjectItem(it, "continue") != NULL;
	}
	ASSERT_EQ(lists, 5, "LIST pages");
	ASSERT_EQ(conts, 4, "pages with a continue token");
	kxp_reflector_stats(e.r, &st);
	ASSERT_EQ(st.lists, 1, "lists");
	ASSERT_EQ(st.relists, 0, "relists");
	ASSERT_EQ(st.events, 23, "events");
	ASSERT_TRUE(st.bytes > 0, "bytes counted");
out:
	cJSON_Delete(log);
	env_stop(&e);
}

/* An expired continue token (410) restarts the list from the first page;
 * what the first pages delivered is not repeated. */
KXP_TEST(client_list_continue_expired_restarts)
{
	struct kxp_reflector_opts o = opts(KXP_K8S_SERVICE);
	struct kxp_reflector_stats st;
	cJSON *log = NULL, *it;
	int firsts = 0, gone = 0;
	struct env e;
	char name[16];
	int i;

	memset(&e, 0, sizeof(e));
	if (!fake_start(&e.f, "http", NULL))
		return;
	for (i = 0; i < 12; i++) {
		snprintf(name, sizeof(name), "c%02d", i);
		ctl0(&e.f, "/apply", svc_json(name, i + 1, NULL));
	}
	ctl0(&e.f, "/fail?code=410&count=1&match=continue", NULL);
	e.conn.server = e.f.url;
	e.q = kxp_k8s_queue_new();
	e.r = kxp_reflector_start(&e.conn, &o, e.q);
	for (i = 0; i < 12; i++) {
		snprintf(name, sizeof(name), "c%02d", i);
		if (!expect_obj(e.q, K8S_WATCH_ADDED, name, true, 5000))
			goto out;
	}
	if (!expect_synced(e.q, 2000) || !expect_quiet(e.q, 300))
		goto out;
	log = ctl(&e.f, "/log", NULL);
	cJSON_ArrayForEach(it, log) {
		if (cJSON_GetObjectItem(it, "watch"))
			continue;
		firsts += !cJSON_GetObjectItem(it, "continue");
		gone += cJSON_GetObjectItem(it, "code")->valueint == 410;
	}
	ASSERT_EQ(gone, 1, "one page answered 410");
	ASSERT_EQ(firsts, 2, "the list started over");
	kxp_reflector_stats(e.r, &st);
	ASSERT_EQ(st.events, 12, "no object twice");
out:
	cJSON_Delete(log);
	env_stop(&e);
}

KXP_TEST(client_watch_events_in_order)
{
	struct kxp_reflector_opts o = opts(KXP_K8S_SERVICE);
	struct env e;
	struct kxp_k8s_event *ev;
	uint64_t last = 0;
	const char *names[] = { "a", "a", "b", "a" };
	enum k8s_watch_type types[] = { K8S_WATCH_ADDED, K8S_WATCH_MODIFIED, K8S_WATCH_ADDED, K8S_WATCH_DELETED };
	int i;

	if (!env_start(&e, 2, NULL, &o))
		goto out;
	wait_watches(&e.f, 1, 3000);
	ctl0(&e.f, "/apply", svc_json("a", 50, NULL));
	ctl0(&e.f, "/apply", svc_json("a", 51, NULL));
	ctl0(&e.f, "/apply", svc_json("b", 52, NULL));
	ctl0(&e.f, "/delete?kind=Service&namespace=t&name=a", NULL);
	for (i = 0; i < 4; i++) {
		const char *rv;

		ev = next_ev(e.q, 3000, false, NULL);
		if (!ASSERT_TRUE(ev != NULL, "watch event") || !ASSERT_EQ(ev->what, KXP_EV_OBJECT, "object") ||
		    !ASSERT_EQ(ev->type, types[i], "type in order") || !ASSERT_STREQ(ev_name(ev), names[i], "name") ||
		    !ASSERT_EQ(ev->relist, false, "watch, not list") ||
		    !ASSERT_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(ev->obj, "kind")), "Service", "kind set")) {
			kxp_k8s_event_free(ev);
			goto out;
		}
		rv = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(ev->obj, "metadata"), "resourceVersion"));
		ASSERT_TRUE(rv && strtoull(rv, NULL, 10) > last, "resourceVersion increases");
		last = rv ? strtoull(rv, NULL, 10) : 0;
		ASSERT_TRUE(ev->received_ns > 0, "received_ns");
		kxp_k8s_event_free(ev);
	}
	expect_quiet(e.q, 300);
out:
	env_stop(&e);
}

/* Bookmarks carry no object but move the resume point: after a cut, the
 * new watch starts from the bookmark's RV, which a Node change advanced. */
KXP_TEST(client_bookmark_advances_rv)
{
	const char *extra[] = { "--bookmark-interval", "0.2", NULL };
	struct kxp_reflector_opts o = opts(KXP_K8S_SERVICE);
	struct kxp_reflector_stats st;
	struct env e;
	uint64_t node_rv;
	cJSON *w = NULL;
	int n;

	if (!env_start(&e, 1, extra, &o))
		goto out;
	node_rv = ctl_rv(&e.f, "/apply", "{\"kind\":\"Node\",\"metadata\":{\"name\":\"node-a\"}}");
	if (!expect_quiet(e.q, 800)) /* several bookmarks went by */
		goto out;
	ctl0(&e.f, "/cut", NULL);
	if (!wait_watches(&e.f, 2, 3000))
		goto out;
	w = watch_log(&e.f, &n);
	ASSERT_EQ(item_rv(w, n - 1), node_rv, "re-watch from the bookmark's resourceVersion");
	ASSERT_TRUE(item_rv(w, 0) < node_rv, "first watch from the list's resourceVersion");
	ASSERT_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(w, 0), "allowWatchBookmarks")),
		     "true", "bookmarks asked for");
	kxp_reflector_stats(e.r, &st);
	ASSERT_EQ(st.relists, 0, "no relist");
	ASSERT_EQ(st.events, 1, "only the listed object was an event");
out:
	cJSON_Delete(w);
	env_stop(&e);
}

KXP_TEST(client_cut_rewatches_without_relist)
{
	struct kxp_reflector_opts o = opts(KXP_K8S_SERVICE);
	struct kxp_reflector_stats st;
	struct env e;
	cJSON *w = NULL;
	int n;

	if (!env_start(&e, 3, NULL, &o))
		goto out;
	wait_watches(&e.f, 1, 3000);
	ctl0(&e.f, "/cut", NULL);
	/* changes while reconnecting are not lost: they come from history */
	ctl0(&e.f, "/apply", svc_json("x", 60, NULL));
	if (!expect_obj(e.q, K8S_WATCH_ADDED, "x", false, 3000) || !expect_quiet(e.q, 500))
		goto out;
	ctl0(&e.f, "/cut", NULL);
	ctl0(&e.f, "/delete?kind=Service&namespace=t&name=s1", NULL);
	if (!expect_obj(e.q, K8S_WATCH_DELETED, "s1", false, 3000) || !expect_quiet(e.q, 300))
		goto out;
	kxp_reflector_stats(e.r, &st);
	ASSERT_EQ(st.lists, 1, "one list only");
	ASSERT_EQ(st.relists, 0, "no relist");
	ASSERT_TRUE(st.watches >= 3, "re-watched");
	ASSERT_TRUE(st.watch_restarts >= 2, "watch restarts counted");
	w = watch_log(&e.f, &n);
	ASSERT_TRUE(item_rv(w, 1) >= item_rv(w, 0), "second watch resumes, not from scratch");
	ASSERT_TRUE(item_rv(w, 1) != 0, "resourceVersion sent");
out:
	cJSON_Delete(w);
	env_stop(&e);
}

/* A compaction while the watch is down: the re-watch gets 410, the
 * reflector relists and reports what changed meanwhile, including deletes. */
KXP_TEST(client_410_relist_reports_deleted)
{
	struct kxp_reflector_opts o = opts(KXP_K8S_SERVICE);
	struct kxp_reflector_stats st;
	bool got_mod = false, got_add = false, got_del = false;
	struct kxp_k8s_event *ev;
	struct env e;

	if (!env_start(&e, 3, NULL, &o))
		goto out;
	wait_watches(&e.f, 1, 3000);
	ctl0(&e.f, "/fail?code=503&count=100000", NULL);
	ctl0(&e.f, "/cut", NULL);
	ctl0(&e.f, "/delete?kind=Service&namespace=t&name=s1", NULL);
	ctl0(&e.f, "/apply", svc_json("s2", 99, NULL));
	ctl0(&e.f, "/apply", svc_json("new", 98, NULL));
	ctl0(&e.f, "/compact", NULL);
	usleep(300000);
	ctl0(&e.f, "/fail?count=0", NULL);
	/* the order of MODIFIED/ADDED follows the list; DELETED after them */
	while ((ev = next_ev(e.q, 5000, false, NULL)) && ev->what == KXP_EV_OBJECT) {
		const char *n = ev_name(ev);

		ASSERT_TRUE(ev->relist, "comes from the relist");
		if (ev->type == K8S_WATCH_MODIFIED && !strcmp(n, "s2"))
			got_mod = true;
		else if (ev->type == K8S_WATCH_ADDED && !strcmp(n, "new"))
			got_add = true;
		else if (ev->type == K8S_WATCH_DELETED && !strcmp(n, "s1") && got_mod && got_add)
			got_del = true;
		else
			kxp_test_fail(__FILE__, __LINE__, "unexpected event %d for %s", ev->type, n);
		kxp_k8s_event_free(ev);
	}
	if (!ASSERT_TRUE(ev != NULL, "SYNCED after the relist"))
		goto out;
	ASSERT_EQ(ev->what, KXP_EV_SYNCED, "SYNCED ends the relist");
	kxp_k8s_event_free(ev);
	ASSERT_TRUE(got_mod && got_add && got_del, "MODIFIED s2, ADDED new, then DELETED s1");
	kxp_reflector_stats(e.r, &st);
	ASSERT_EQ(st.relists, 1, "one relist");
	/* and the watch goes on */
	ctl0(&e.f, "/apply", svc_json("after", 97, NULL));
	expect_obj(e.q, K8S_WATCH_ADDED, "after", false, 3000);
out:
	env_stop(&e);
}

KXP_TEST(client_5xx_429_backoff)
{
	struct kxp_reflector_opts o = opts(KXP_K8S_SERVICE);
	struct kxp_k8s_event *ev;
	unsigned errors = 0;
	uint64_t t0;
	struct env e;

	memset(&e, 0, sizeof(e));
	if (!fake_start(&e.f, "http", NULL))
		return;
	ctl0(&e.f, "/apply", svc_json("s0", 1, NULL));
	ctl0(&e.f, "/fail?code=500&count=3", NULL);
	e.conn.server = e.f.url;
	e.q = kxp_k8s_queue_new();
	e.r = kxp_reflector_start(&e.conn, &o, e.q);
	t0 = mono_ms();
	ev = next_ev(e.q, 5000, false, &errors);
	ASSERT_EQ(errors, 3, "one error event per 500");
	ASSERT_TRUE(strstr(seen_msgs, "HTTP 500") && strstr(seen_msgs, "retrying in"), "message says what and when");
	if (!ASSERT_TRUE(ev && ev->what == KXP_EV_OBJECT && !strcmp(ev_name(ev), "s0"), "recovers"))
		goto out;
	/* 50, 100, 200 ms with equal jitter: at least 175 ms in all */
	ASSERT_TRUE(mono_ms() - t0 >= 150, "backed off");
	kxp_k8s_event_free(ev);
	ev = NULL;
	if (!expect_synced(e.q, 2000))
		goto out;
	wait_watches(&e.f, 1, 3000);
	/* 429 with Retry-After: 1 on the re-watch is honoured */
	ctl0(&e.f, "/fail?code=429&count=1&retry_after=1", NULL);
	ctl0(&e.f, "/cut", NULL);
	t0 = mono_ms();
	ctl0(&e.f, "/apply", svc_json("s1", 2, NULL));
	errors = 0;
	seen_msgs[0] = 0;
	ev = next_ev(e.q, 5000, false, &errors);
	if (!ASSERT_TRUE(ev && ev->what == KXP_EV_OBJECT && !strcmp(ev_name(ev), "s1"), "recovers after 429"))
		goto out;
	ASSERT_TRUE(strstr(seen_msgs, "HTTP 429") != NULL, "429 reported");
	ASSERT_TRUE(mono_ms() - t0 >= 950, "Retry-After honoured");
	ASSERT_TRUE(mono_ms() - t0 < 3000, "and not much longer");
out:
	kxp_k8s_event_free(ev);
	env_stop(&e);
}

KXP_TEST(client_stall_reconnects)
{
	const char *extra[] = { "--bookmark-interval", "0.2", NULL };
	struct kxp_reflector_opts o = opts(KXP_K8S_SERVICE);
	struct kxp_reflector_stats st;
	unsigned errors = 0;
	struct kxp_k8s_event *ev;
	struct env e;

	o.stall_timeout_s = 1;
	if (!env_start(&e, 1, extra, &o))
		goto out;
	/* bookmarks keep a healthy watch alive: no reconnect */
	if (!expect_quiet(e.q, 1500))
		goto out;
	kxp_reflector_stats(e.r, &st);
	ASSERT_EQ(st.watches, 1, "a bookmarked watch is not stalled");
	ctl0(&e.f, "/stall?seconds=2.5", NULL);
	ev = next_ev(e.q, 3000, true, &errors);
	ASSERT_TRUE(ev && ev->what == KXP_EV_ERROR && strstr(ev->msg, "no data"), "stall reported");
	kxp_k8s_event_free(ev);
	ctl0(&e.f, "/apply", svc_json("late", 9, NULL));
	if (!expect_obj(e.q, K8S_WATCH_ADDED, "late", false, 5000))
		goto out;
	kxp_reflector_stats(e.r, &st);
	ASSERT_TRUE(st.watches >= 2, "reconnected");
	ASSERT_EQ(st.relists, 0, "without a relist");
out:
	env_stop(&e);
}

KXP_TEST(client_malformed_line_skipped)
{
	struct kxp_reflector_opts o = opts(KXP_K8S_SERVICE);
	struct kxp_reflector_stats st;
	struct kxp_k8s_event *ev;
	struct env e;

	if (!env_start(&e, 1, NULL, &o))
		goto out;
	wait_watches(&e.f, 1, 3000);
	ctl0(&e.f, "/inject", "{\"type\":\"ADDED\",\"object\":{\"metadata\":");
	ctl0(&e.f, "/inject", "[1,2,3]");
	ev = next_ev(e.q, 3000, true, NULL);
	ASSERT_TRUE(ev && ev->what == KXP_EV_ERROR && strstr(ev->msg, "malformed JSON"), "malformed line reported");
	kxp_k8s_event_free(ev);
	ev = next_ev(e.q, 3000, true, NULL);
	ASSERT_TRUE(ev && ev->what == KXP_EV_ERROR && strstr(ev->msg, "not an event"), "non-event reported");
	kxp_k8s_event_free(ev);
	ctl0(&e.f, "/apply", svc_json("next", 9, NULL));
	if (!expect_obj(e.q, K8S_WATCH_ADDED, "next", false, 3000))
		goto out;
	kxp_reflector_stats(e.r, &st);
	ASSERT_EQ(st.watches, 1, "the same watch continued");
	ASSERT_EQ(st.errors, 2, "two errors");
out:
	env_stop(&e);
}

KXP_TEST(client_line_cap_reconnects)
{
	struct kxp_reflector_opts o = opts(KXP_K8S_SERVICE);
	struct kxp_reflector_stats st;
	struct kxp_k8s_event *ev;
	static char big[20000];
	struct env e;

	o.max_line = 4096;
	if (!env_start(&e, 1, NULL, &o))
		goto out;
	wait_watches(&e.f, 1, 3000);
	memset(big, 'x', sizeof(big) - 1);
	ctl0(&e.f, "/inject", big);
	ev = next_ev(e.q, 3000, true, NULL);
	ASSERT_TRUE(ev && ev->what == KXP_EV_ERROR && strstr(ev->msg, "over 4096 bytes"), "line cap reported");
	kxp_k8s_event_free(ev);
	ctl0(&e.f, "/apply", svc_json("next", 9, NULL));
	if (!expect_obj(e.q, K8S_WATCH_ADDED, "next", false, 3000) || !expect_quiet(e.q, 300))
		goto out;
	kxp_reflector_stats(e.r, &st);
	ASSERT_EQ(st.watches, 2, "reconnected");
	ASSERT_EQ(st.relists, 0, "no relist");
out:
	env_stop(&e);
}

KXP_TEST(client_selectors)
{
	struct kxp_reflector_opts o = opts(KXP_K8S_SERVICE);
	struct kxp_reflector *rn = NULL;
	struct env e;
	cJSON *log = NULL;

	memset(&e, 0, sizeof(e));
	if (!fake_start(&e.f, "http", NULL))
		return;
	ctl0(&e.f, "/apply", svc_json("mine", 1, NULL));
	ctl0(&e.f, "/apply", svc_json("other", 2, "\"service.kubernetes.io/service-proxy-name\":\"x\""));
	ctl0(&e.f, "/apply", svc_json("headless", 3, "\"service.kubernetes.io/headless\":\"\""));
	ctl0(&e.f, "/apply", "{\"kind\":\"Node\",\"metadata\":{\"name\":\"node-a\"}}");
	ctl0(&e.f, "/apply", "{\"kind\":\"Node\",\"metadata\":{\"name\":\"node-b\"}}");
	e.conn.server = e.f.url;
	e.q = kxp_k8s_queue_new();
	o.label_selector = "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless";
	e.r = kxp_reflector_start(&e.conn, &o, e.q);
	if (!expect_obj(e.q, K8S_WATCH_ADDED, "mine", true, 3000) || !expect_synced(e.q, 2000))
		goto out;
	wait_watches(&e.f, 1, 3000);
	/* claimed by another proxy: it leaves the selection */
	ctl0(&e.f, "/apply", svc_json("mine", 1, "\"service.kubernetes.io/service-proxy-name\":\"x\""));
	if (!expect_obj(e.q, K8S_WATCH_DELETED, "mine", false, 3000))
		goto out;
	o = opts(KXP_K8S_NODE);
	o.field_selector = "metadata.name=node-b";
	rn = kxp_reflector_start(&e.conn, &o, e.q);
	if (!expect_obj(e.q, K8S_WATCH_ADDED, "node-b", true, 3000) || !expect_synced(e.q, 2000) ||
	    !expect_quiet(e.q, 300))
		goto out;
	log = ctl(&e.f, "/log", NULL);
	ASSERT_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(log, 0), "labelSelector")),
		     "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless",
		     "label selector sent, escaped and decoded back");
	ASSERT_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(log, cJSON_GetArraySize(log) - 1),
							      "fieldSelector")),
		     "metadata.name=node-b", "field selector sent");
out:
	cJSON_Delete(log);
	kxp_reflector_stop(rn);
	env_stop(&e);
}

static bool write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return false;
	fputs(text, f);
	return fclose(f) == 0;
}

#define SECRET_OK "tok-OK-7f3a9c1e"
#define SECRET_BAD "tok-BAD-5d2b8e40"

KXP_TEST(client_token_checked_and_rotated)
{
	const char *extra[] = { "--token", SECRET_OK, NULL };
	struct kxp_reflector_opts o = opts(KXP_K8S_SERVICE);
	char dir[] = "/tmp/kxp-client-tok.XXXXXX", path[256];
	unsigned errors = 0;
	struct kxp_k8s_event *ev;
	struct env e;

	memset(&e, 0, sizeof(e));
	seen_msgs[0] = 0;
	need_fake();
	if (!mkdtemp(dir))
		return;
	if (!fake_start(&e.f, "http", extra)) {
		rmdir(dir);
		return;
	}
	ctl0(&e.f, "/apply", svc_json("s0", 1, NULL));
	snprintf(path, sizeof(path), "%s/token", dir);
	write_file(path, SECRET_BAD "\n");
	e.conn.server = e.f.url;
	e.conn.token_file = path;
	e.q = kxp_k8s_queue_new();
	e.r = kxp_reflector_start(&e.conn, &o, e.q);
	ev = next_ev(e.q, 800, false, &errors);
	ASSERT_TRUE(ev == NULL, "no object with a wrong token");
	kxp_k8s_event_free(ev);
	ASSERT_TRUE(errors >= 1, "error events");
	ASSERT_TRUE(strstr(seen_msgs, "HTTP 401") != NULL, "401 reported");
	/* the projected token rotates: the next request reads the new one */
	usleep(20000);
	write_file(path, SECRET_OK "\n");
	if (!expect_obj(e.q, K8S_WATCH_ADDED, "s0", true, 3000) || !expect_synced(e.q, 2000))
		goto out;
	ASSERT_TRUE(!strstr(seen_msgs, SECRET_BAD) && !strstr(seen_msgs, SECRET_OK) && !strstr(seen_msgs, "tok-"),
		    "no token in any error message");
out:
	env_stop(&e);
	unlink(path);
	rmdir(dir);
}

static bool run(const char *cmd)
{
	int rc = system(cmd);

	if (rc != 0)
		printf("    command failed (%d): %s\n", rc, cmd);
	return rc == 0;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 65536);

	if (f && buf)
		buf[fread(buf, 1, 65535, f)] = 0;
	if (f)
		fclose(f);
	return buf;
}

/* TLS: verified with the right CA (file, PEM data, kubeconfig), refused
 * with another one, accepted with insecure. */
KXP_TEST(client_tls)
{
	char dir[] = "/tmp/kxp-client-tls.XXXXXX", cmd[2048], cert[256], key[256], other[256], okey[256], kc[256];
	const char *extra[] = { "--tls-cert", cert, "--tls-key", key, "--token", SECRET_OK, NULL };
	struct kxp_reflector_opts o = opts(KXP_K8S_SERVICE);
	struct kxp_k8s_conn kconn = { 0 };
	struct kxp_k8s_event *ev;
	unsigned errors = 0;
	char err[256] = "", *pem = NULL, *b64 = NULL;
	struct env e;
	FILE *p;

	memset(&e, 0, sizeof(e));
	seen_msgs[0] = 0;
	need_fake();
	if (!mkdtemp(dir))
		return;
	snprintf(cert, sizeof(cert), "%s/server.crt", dir);
	snprintf(key, sizeof(key), "%s/server.key", dir);
	snprintf(other, sizeof(other), "%s/other.crt", dir);
	snprintf(okey, sizeof(okey), "%s/other.key", dir);
	snprintf(kc, sizeof(kc), "%s/kubeconfig", dir);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=kxp-test "
		 "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s 2>/dev/null && "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=kxp-test "
		 "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s 2>/dev/null",
		 key, cert, okey, other);
	if (!run(cmd)) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		run(cmd);
		kxp_test_skip("openssl cannot make a test certificate");
	}
	if (!fake_start(&e.f, "https", extra))
		goto out;
	ctl0(&e.f, "/apply", svc_json("s0", 1, NULL));
	e.q = kxp_k8s_queue_new();

	/* CA file */
	e.conn = (struct kxp_k8s_conn){ .server = e.f.url, .ca_file = cert, .token = SECRET_OK };
	e.r = kxp_reflector_start(&e.conn, &o, e.q);
	if (!expect_obj(e.q, K8S_WATCH_ADDED, "s0", true, 5000) || !expect_synced(e.q, 2000))
		goto out;
	kxp_reflector_stop(e.r);

	/* CA as PEM data */
	pem = slurp(cert);
	e.conn = (struct kxp_k8s_conn){ .server = e.f.url, .ca_data = pem, .token = SECRET_OK };
	e.r = kxp_reflector_start(&e.conn, &o, e.q);
	if (!expect_obj(e.q, K8S_WATCH_ADDED, "s0", true, 5000) || !expect_synced(e.q, 2000))
		goto out;
	kxp_reflector_stop(e.r);

	/* another CA: refused, never an object */
	e.conn = (struct kxp_k8s_conn){ .server = e.f.url, .ca_file = other, .token = SECRET_OK };
	e.r = kxp_reflector_start(&e.conn, &o, e.q);
	ev = next_ev(e.q, 1000, false, &errors);
	ASSERT_TRUE(ev == NULL, "no object through an unverified server");
	kxp_k8s_event_free(ev);
	ASSERT_TRUE(errors >= 1, "TLS failure reported");
	ASSERT_TRUE(strstr(seen_msgs, "SSL") || strstr(seen_msgs, "certificate"), "message names the TLS problem");
	kxp_reflector_stop(e.r);

	/* insecure: accepted without verification */
	e.conn = (struct kxp_k8s_conn){ .server = e.f.url, .ca_file = other, .token = SECRET_OK, .insecure = true };
	e.r = kxp_reflector_start(&e.conn, &o, e.q);
	if (!expect_obj(e.q, K8S_WATCH_ADDED, "s0", true, 5000) || !expect_synced(e.q, 2000))
		goto out;
	kxp_reflector_stop(e.r);

	/* kubeconfig with certificate-authority-data and a token */
	snprintf(cmd, sizeof(cmd), "base64 -w0 < %s", cert);
	p = popen(cmd, "r");
	b64 = calloc(1, 16384);
	if (p && b64)
		b64[fread(b64, 1, 16383, p)] = 0;
	if (p)
		pclose(p);
	{
		char *text;

		if (asprintf(&text,
			     "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
			     "clusters:\n- name: c\n  cluster:\n    server: %s\n    certificate-authority-data: %s\n"
			     "contexts:\n- name: test\n  context: {cluster: c, user: u}\n"
			     "users:\n- name: u\n  user:\n    token: %s\n",
			     e.f.url, b64, SECRET_OK) < 0)
			goto out;
		write_file(kc, text);
		free(text);
	}
	if (!ASSERT_OK(kxp_k8s_conn_kubeconfig(&kconn, kc, err, sizeof(err)), err))
		goto out;
	e.r = kxp_reflector_start(&kconn, &o, e.q);
	if (!expect_obj(e.q, K8S_WATCH_ADDED, "s0", true, 5000) || !expect_synced(e.q, 2000))
		goto out;
	ASSERT_TRUE(!strstr(seen_msgs, SECRET_OK), "no token in any error message");
out:
	kxp_reflector_stop(e.r);
	e.r = NULL;
	kxp_k8s_conn_free(&kconn);
	kxp_k8s_queue_free(e.q);
	fake_stop(&e.f);
	free(pem);
	free(b64);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	run(cmd);
}

KXP_TEST(client_stop_is_prompt)
{
	struct kxp_reflector_opts o = opts(KXP_K8S_SERVICE);
	struct kxp_k8s_queue *q = kxp_k8s_queue_new();
	struct kxp_reflector *r;
	struct env e;
	uint64_t t0;

	if (!env_start(&e, 1, NULL, &o))
		goto out;
	wait_watches(&e.f, 1, 3000);
	t0 = mono_ms();
	kxp_reflector_stop(e.r);
	e.r = NULL;
	ASSERT_TRUE(mono_ms() - t0 < 500, "stop during a watch is prompt");
	/* during a long backoff */
	o.backoff_min_ms = o.backoff_max_ms = 20000;
	ctl0(&e.f, "/fail?code=500&count=10", NULL);
	r = kxp_reflector_start(&e.conn, &o, q);
	if (!ASSERT_TRUE(r != NULL, "start"))
		goto out;
	usleep(300000);
	t0 = mono_ms();
	kxp_reflector_stop(r);
	ASSERT_TRUE(mono_ms() - t0 < 500, "stop during a backoff is prompt");
	/* during a stalled request */
	o.stall_timeout_s = 30;
	ctl0(&e.f, "/fail?count=0", NULL);
	ctl0(&e.f, "/stall?seconds=10", NULL);
	r = kxp_reflector_start(&e.conn, &o, q);
	usleep(300000);
	t0 = mono_ms();
	kxp_reflector_stop(r);
	ASSERT_TRUE(mono_ms() - t0 < 500, "stop during a stalled request is prompt");
out:
	kxp_k8s_queue_free(q);
	env_stop(&e);
}

KXP_TEST(client_queue_fd)
{
	struct kxp_k8s_queue *q = kxp_k8s_queue_new();
	struct pollfd p = { .events = POLLIN };
	struct kxp_k8s_event *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b)), *x;

	if (!ASSERT_TRUE(q && a && b, "alloc"))
		return;
	p.fd = kxp_k8s_queue_fd(q);
	ASSERT_EQ(poll(&p, 1, 0), 0, "empty: not readable");
	a->what = KXP_EV_SYNCED;
	b->what = KXP_EV_ERROR;
	b->msg = strdup("m");
	kxp_k8s_queue_push(q, a);
	kxp_k8s_queue_push(q, b);
	ASSERT_EQ(poll(&p, 1, 0), 1, "readable");
	x = kxp_k8s_queue_pop(q);
	ASSERT_TRUE(x == a, "FIFO");
	kxp_k8s_event_free(x);
	ASSERT_EQ(poll(&p, 1, 0), 1, "still readable with one left");
	x = kxp_k8s_queue_pop(q);
	ASSERT_TRUE(x == b, "FIFO");
	kxp_k8s_event_free(x);
	ASSERT_EQ(poll(&p, 1, 0), 0, "drained: not readable");
	ASSERT_TRUE(kxp_k8s_queue_pop(q) == NULL, "empty pop");
	kxp_k8s_queue_free(q);
}
