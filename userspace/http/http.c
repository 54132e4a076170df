/* HTTP servers of the agent: /healthz and /livez (H.40), /metrics
 * (Prometheus text), and healthCheckNodePort servers (H.39). Each
 * libmicrohttpd daemon runs its own thread; the handlers only read the
 * status snapshot under the mutex and the BPF maps (syscalls). */
#include "http/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <microhttpd.h>

#include <kxp/abi.h>

#include "agent/config.h"
#include "dataplane/probe.h"
#include "dataplane/trace.h"

const double kxp_hist_bounds[KXP_HIST_BUCKETS] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
						    0.1,    0.25,  0.5,    1,     2.5,  5,     10 };

void kxp_hist_observe(struct kxp_hist *h, double s)
{
	size_t i;

	for (i = 0; i < KXP_HIST_BUCKETS && s > kxp_hist_bounds[i]; i++)
		;
	h->counts[i]++;
	h->sum += s;
	h->count++;
}

struct hc_server {
	char *ns, *name;
	uint16_t port;
	uint32_t local;
	struct MHD_Daemon *d[16];
	struct kxp_http **cls[16]; /* each daemon's closure: {h, port} */
	size_t n_d;
	bool seen;
};

struct kxp_http {
	pthread_mutex_t lock;
	struct kxp_http_status st;
	struct kxp_dp *dp;
	struct MHD_Daemon *healthz, *metrics;
	uint16_t healthz_port, metrics_port;
	struct hc_server *hc;
	size_t n_hc, cap_hc;
};

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- output buffer ------------------------------------------------------------ */

struct sbuf {
	char *p;
	size_t n, cap;
	bool oom;
};

static void __attribute__((format(printf, 2, 3))) sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->n;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? room : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->p && (size_t)n < room) {
			b->n += (size_t)n;
			return;
		}
		{
			size_t cap = b->cap ? b->cap * 2 : 4096;
			char *p;

			while (cap - b->n <= (size_t)n)
				cap *= 2;
			p = realloc(b->p, cap);
			if (!p) {
				b->oom = true;
				return;
			}
			b->p = p;
			b->cap = cap;
		}
	}
}

/* ---- health ------------------------------------------------------------------- */

static bool healthy_locked(const struct kxp_http *h, uint64_t mono)
{
	const struct kxp_http_status *s = &h->st;

	if (!s->pending_since_ns)
		return true;
	return mono - s->pending_since_ns < (uint64_t)s->threshold_ms * 1000000ull;
}

bool kxp_http_healthy(struct kxp_http *h)
{
	bool ok;

	pthread_mutex_lock(&h->lock);
	ok = healthy_locked(h, clock_ns(CLOCK_MONOTONIC));
	pthread_mutex_unlock(&h->lock);
	return ok;
}

/* Go's time.Time String() layout, as kube-proxy prints it. */
static void go_time(uint64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000ull);
	struct tm tm;
	char d[32];

	gmtime_r(&t, &tm);
	strftime(d, sizeof(d), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(buf, len, "%s.%09llu +0000 UTC", d, (unsigned long long)(ns % 1000000000ull));
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, const char *type, char *body, size_t len,
			     bool nosniff)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	if (nosniff)
		MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_healthz(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_len, void **ctx)
{
	struct kxp_http *h = cls;
	bool livez = !strcmp(url, "/livez"), ok, eligible;
	uint64_t last;
	char body[256], a[64], b[64];

	if (strcmp(url, "/healthz") && !livez) {
		snprintf(body, sizeof(body), "404 page not found\n");
		return reply(conn, 404, "text/plain; charset=utf-8", body, strlen(body), true);
	}
	pthread_mutex_lock(&h->lock);
	ok = healthy_locked(h, clock_ns(CLOCK_MONOTONIC));
	eligible = h->st.node_eligible;
	last = h->st.last_updated_ns;
	pthread_mutex_unlock(&h->lock);
	if (!livez)
		ok = ok && eligible;
	if (last)
		go_time(last, a, sizeof(a));
	else
		snprintf(a, sizeof(a), "0001-01-01 00:00:00 +0000 UTC");
	go_time(clock_ns(CLOCK_REALTIME), b, sizeof(b));
	if (livez)
		snprintf(body, sizeof(body), "{\"lastUpdated\": \"%s\",\"currentTime\": \"%s\"}", a, b);
	else
		snprintf(body, sizeof(body), "{\"lastUpdated\": \"%s\",\"currentTime\": \"%s\", \"nodeEligible\": %s}", a,
			 b, eligible ? "true" : "false");
	return reply(conn, ok ? 200 : 503, "application/json", body, strlen(body), true);
}

/* ---- metrics ------------------------------------------------------------------- */

static void hist_out(struct sbuf *b, const char *name, const char *labels, const struct kxp_hist *h)
{
	uint64_t cum = 0;

	for (size_t i = 0; i <= KXP_HIST_BUCKETS; i++) {
		cum += h->counts[i];
		if (i < KXP_HIST_BUCKETS)
			sb_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, *labels ? "," : "",
				  kxp_hist_bounds[i], (unsigned long long)cum);
		else
			sb_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, *labels ? "," : "",
				  (unsigned long long)cum);
	}
	sb_printf(b, "%s_sum%s%s%s %.9f\n", name, *labels ? "{" : "", labels, *labels ? "}" : "", h->sum);
	sb_printf(b, "%s_count%s%s%s %llu\n", name, *labels ? "{" : "", labels, *labels ? "}" : "",
		  (unsigned long long)h->count);
}

static const char *const kind_name[KXP_K8S__KINDS] = { "service", "endpointslice", "node" };

/* What the kernel offers and what this process loaded (`kxp status`). */
static void caps_out(struct kxp_http *h, struct sbuf *b)
{
	const struct kxp_caps *c = kxp_probe();
	uint32_t loaded = kxp_dp_loaded(h->dp);

	sb_printf(b, "# HELP kxp_kernel_capability Whether the running kernel offers a facility kxp probes (1) or not (0).\n"
		     "# TYPE kxp_kernel_capability gauge\n");
	for (int i = 0; i < KXP_CAP__COUNT; i++)
		sb_printf(b, "kxp_kernel_capability{capability=\"%s\",needed_by=\"%s\",kernel=\"%s\"} %d\n",
			  kxp_cap_desc(i)->name, kxp_cap_need_name(kxp_cap_desc(i)->need), c->kernel, c->have[i] ? 1 : 0);
	sb_printf(b, "# HELP kxp_dataplane_loaded Which BPF objects this agent loaded (0: refused or not asked for).\n"
		     "# TYPE kxp_dataplane_loaded gauge\n");
	sb_printf(b, "kxp_dataplane_loaded{object=\"tc\"} %d\n", (loaded & KXP_LOADED_TC) ? 1 : 0);
	sb_printf(b, "kxp_dataplane_loaded{object=\"xdp\"} %d\n", (loaded & KXP_LOADED_XDP) ? 1 : 0);
	sb_printf(b, "kxp_dataplane_loaded{object=\"socket_hooks\"} %d\n", (loaded & KXP_LOADED_SOCK) ? 1 : 0);
	sb_printf(b, "kxp_dataplane_loaded{object=\"bpf_loop\"} %d\n", (loaded & KXP_LOADED_NOLOOP) ? 0 : 1);
}

static void maps_out(struct kxp_http *h, struct sbuf *b)
{
	/* hashes, and the arrays whose unused entries are zero (kxp_map_count) */
	static const enum kxp_map_id counted[] = { KXP_MAP_SVC, KXP_MAP_SLOT,	KXP_MAP_BACKEND, KXP_MAP_REVNAT,
						   KXP_MAP_CT,	KXP_MAP_NODEIP, KXP_MAP_SOCKREV };
	int ncpu = libbpf_num_possible_cpus(), sfd, rfd, vfd;
	size_t stride = (sizeof(struct kxp_stats) + 7) & ~7ul;
	struct kxp_svc_key k, nk;
	struct kxp_svc_val v;
	void *prev = NULL;
	uint64_t snat_fail = 0;
	struct kxp_stats *pc;
	__u64 *rc;

	sb_printf(b, "# HELP kxp_map_entries Entries in a BPF map.\n# TYPE kxp_map_entries gauge\n");
	sb_printf(b, "# HELP kxp_map_max_entries Capacity of a BPF map.\n# TYPE kxp_map_max_entries gauge\n");
	for (size_t i = 0; i < sizeof(counted) / sizeof(counted[0]); i++) {
		int fd = kxp_dp_map_fd(h->dp, counted[i]);
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);

		if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
			continue;
		sb_printf(b, "kxp_map_entries{map=\"%s\"} %ld\n", kxp_map_pin_name(counted[i]), kxp_map_count(fd));
		sb_printf(b, "kxp_map_max_entries{map=\"%s\"} %u\n", kxp_map_pin_name(counted[i]), info.max_entries);
	}
	if (ncpu <= 0)
		return;
	pc = calloc((size_t)ncpu, stride);
	rc = calloc((size_t)ncpu, sizeof(*rc));
	if (!pc || !rc)
		goto out;

	sfd = kxp_dp_map_fd(h->dp, KXP_MAP_STATS);
	vfd = kxp_dp_map_fd(h->dp, KXP_MAP_SVC);
	sb_printf(b, "# HELP kxp_frontend_packets_total Packets decided by a frontend.\n"
		     "# TYPE kxp_frontend_packets_total counter\n"
		     "# HELP kxp_frontend_bytes_total Bytes decided by a frontend.\n"
		     "# TYPE kxp_frontend_bytes_total counter\n"
		     "# HELP kxp_frontend_drops_total Packets a frontend dropped or rejected.\n"
		     "# TYPE kxp_frontend_drops_total counter\n");
	while (sfd >= 0 && vfd >= 0 && bpf_map_get_next_key(vfd, prev, &nk) == 0) {
		uint64_t pk = 0, by = 0, dr = 0;
		char a[16], lbl[96];

		k = nk;
		prev = &k;
		if (bpf_map_lookup_elem(vfd, &k, &v) || bpf_map_lookup_elem(sfd, &v.fe_id, pc))
			continue;
		for (int c = 0; c < ncpu; c++) {
			const struct kxp_stats *s = (const void *)((const char *)pc + (size_t)c * stride);

			pk += s->packets;
			by += s->bytes;
			dr += s->drops + s->rejects;
			snat_fail += s->snat_fail;
		}
		inet_ntop(AF_INET, &k.addr, a, sizeof(a));
		snprintf(lbl, sizeof(lbl), "frontend=\"%s:%u/%s\",scope=\"%s\"", a, ntohs(k.port),
			 k.proto == 6 ? "tcp" : k.proto == 17 ? "udp" : k.proto == 132 ? "sctp" : "any",
			 k.scope == KXP_SCOPE_INTERNAL ? "internal" : "default");
		sb_printf(b, "kxp_frontend_packets_total{%s} %llu\n", lbl, (unsigned long long)pk);
		sb_printf(b, "kxp_frontend_bytes_total{%s} %llu\n", lbl, (unsigned long long)by);
		sb_printf(b, "kxp_frontend_drops_total{%s} %llu\n", lbl, (unsigned long long)dr);
	}
	sb_printf(b, "# HELP kxp_snat_allocation_failures_total Flows that found no free SNAT port.\n"
		     "# TYPE kxp_snat_allocation_failures_total counter\nkxp_snat_allocation_failures_total %llu\n",
		  (unsigned long long)snat_fail);

	rfd = kxp_dp_map_fd(h->dp, KXP_MAP_REASONS);
	sb_printf(b, "# HELP kxp_packets_by_reason_total Packets by datapath decision reason (drops and passes).\n"
		     "# TYPE kxp_packets_by_reason_total counter\n");
	for (__u32 r = 0; rfd >= 0 && r < KXP_R_MAX; r++) {
		uint64_t sum = 0;

		if (!strcmp(kxp_reason_name(r), "unknown") || bpf_map_lookup_elem(rfd, &r, rc))
			continue;
		for (int c = 0; c < ncpu; c++)
			sum += rc[c];
		sb_printf(b, "kxp_packets_by_reason_total{reason=\"%s\"} %llu\n", kxp_reason_name(r),
			  (unsigned long long)sum);
	}
out:
	free(pc);
	free(rc);
}

char *kxp_http_metrics_text(struct kxp_http *h, size_t *len)
{
	struct kxp_http_status s;
	struct sbuf b = {};
	bool ok;

	pthread_mutex_lock(&h->lock);
	s = h->st;
	ok = healthy_locked(h, clock_ns(CLOCK_MONOTONIC));
	pthread_mutex_unlock(&h->lock);

	sb_printf(&b, "# HELP kxp_sync_duration_seconds Time to build and write the maps, by kind of sync.\n"
		      "# TYPE kxp_sync_duration_seconds histogram\n");
	hist_out(&b, "kxp_sync_duration_seconds", "mode=\"full\"", &s.sync_full);
	hist_out(&b, "kxp_sync_duration_seconds", "mode=\"service\"", &s.sync_partial);
	sb_printf(&b, "# HELP kxp_network_programming_duration_seconds Watch event received to maps written.\n"
		      "# TYPE kxp_network_programming_duration_seconds histogram\n");
	hist_out(&b, "kxp_network_programming_duration_seconds", "", &s.latency);
	sb_printf(&b, "# TYPE kxp_syncs_total counter\nkxp_syncs_total{mode=\"full\"} %llu\nkxp_syncs_total{mode=\"service\"} %llu\n",
		  (unsigned long long)s.full_syncs, (unsigned long long)s.partial_syncs);
	sb_printf(&b, "# TYPE kxp_sync_errors_total counter\nkxp_sync_errors_total %llu\n",
		  (unsigned long long)s.sync_errors);
	sb_printf(&b, "# TYPE kxp_frontend_conflicts_total counter\nkxp_frontend_conflicts_total %llu\n",
		  (unsigned long long)s.conflicts);
	sb_printf(&b, "# HELP kxp_bad_objects_total API objects skipped as invalid.\n"
		      "# TYPE kxp_bad_objects_total counter\nkxp_bad_objects_total %llu\n",
		  (unsigned long long)s.bad_objects);
	sb_printf(&b, "# TYPE kxp_services gauge\nkxp_services %llu\n", (unsigned long long)s.services);
	sb_printf(&b, "# TYPE kxp_endpoints gauge\nkxp_endpoints %llu\n", (unsigned long long)s.endpoints);
	sb_printf(&b, "# TYPE kxp_frontends gauge\nkxp_frontends %llu\n", (unsigned long long)s.frontends);
	sb_printf(&b, "# TYPE kxp_devices_attached gauge\nkxp_devices_attached %llu\n",
		  (unsigned long long)s.devices_attached);
	sb_printf(&b, "# HELP kxp_ct_gc_runs_total Passes of the conntrack collector over kxp_ct4.\n"
		      "# TYPE kxp_ct_gc_runs_total counter\nkxp_ct_gc_runs_total %llu\n"
		      "# TYPE kxp_ct_gc_errors_total counter\nkxp_ct_gc_errors_total %llu\n"
		      "# HELP kxp_ct_gc_deleted_total Conntrack entries of expired flows deleted.\n"
		      "# TYPE kxp_ct_gc_deleted_total counter\nkxp_ct_gc_deleted_total %llu\n"
		      "# TYPE kxp_ct_gc_last_duration_seconds gauge\nkxp_ct_gc_last_duration_seconds %.6f\n",
		  (unsigned long long)s.ct_gc_runs, (unsigned long long)s.ct_gc_errors,
		  (unsigned long long)s.ct_gc_deleted, s.ct_gc_last_s);
	sb_printf(&b, "# TYPE kxp_synced gauge\nkxp_synced %d\n# TYPE kxp_healthy gauge\nkxp_healthy %d\n", s.synced,
		  ok);
	sb_printf(&b, "# HELP kxp_watch_restarts_total Watches that ended and were restarted, by kind.\n"
		      "# TYPE kxp_watch_restarts_total counter\n");
	for (int k = 0; k < KXP_K8S__KINDS; k++)
		sb_printf(&b, "kxp_watch_restarts_total{kind=\"%s\"} %llu\n", kind_name[k],
			  (unsigned long long)s.refl[k].watch_restarts);
	sb_printf(&b, "# HELP kxp_relists_total Lists after the first (410 Gone, errors), by kind.\n"
		      "# TYPE kxp_relists_total counter\n");
	for (int k = 0; k < KXP_K8S__KINDS; k++)
		sb_printf(&b, "kxp_relists_total{kind=\"%s\"} %llu\n", kind_name[k], (unsigned long long)s.refl[k].relists);
	sb_printf(&b, "# TYPE kxp_lists_total counter\n");
	for (int k = 0; k < KXP_K8S__KINDS; k++)
		sb_printf(&b, "kxp_lists_total{kind=\"%s\"} %llu\n", kind_name[k], (unsigned long long)s.refl[k].lists);
	sb_printf(&b, "# TYPE kxp_watch_events_total counter\n");
	for (int k = 0; k < KXP_K8S__KINDS; k++)
		sb_printf(&b, "kxp_watch_events_total{kind=\"%s\"} %llu\n", kind_name[k], (unsigned long long)s.refl[k].events);
	sb_printf(&b, "# TYPE kxp_watch_errors_total counter\n");
	for (int k = 0; k < KXP_K8S__KINDS; k++)
		sb_printf(&b, "kxp_watch_errors_total{kind=\"%s\"} %llu\n", kind_name[k], (unsigned long long)s.refl[k].errors);
	if (h->dp) {
		maps_out(h, &b);
		caps_out(h, &b);
	}
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	*len = b.n;
	return b.p;
}

static enum MHD_Result on_metrics(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_len, void **ctx)
{
	struct kxp_http *h = cls;
	enum MHD_Result r;
	size_t len = 0;
	char *text;

	if (strcmp(url, "/metrics")) {
		char nf[] = "404 page not found\n";

		return reply(conn, 404, "text/plain; charset=utf-8", nf, strlen(nf), true);
	}
	text = kxp_http_metrics_text(h, &len);
	if (!text) {
		char e[] = "out of memory\n";

		return reply(conn, 500, "text/plain; charset=utf-8", e, strlen(e), true);
	}
	r = reply(conn, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, false);
	free(text);
	return r;
}

/* ---- healthCheckNodePort ----------------------------------------------------------- */

static enum MHD_Result on_hc(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			     const char *version, const char *upload, size_t *upload_len, void **ctx)
{
	struct kxp_http *h = *(struct kxp_http **)cls;
	struct hc_server *s = NULL;
	uint16_t port = (uint16_t)(uintptr_t)((struct kxp_http **)cls)[1];
	char body[512] = "", ns[128] = "", name[256] = "";
	uint32_t n = 0;
	bool ok, found = false;

	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < h->n_hc; i++)
		if (h->hc[i].port == port) {
			s = &h->hc[i];
			break;
		}
	if (s) {
		found = true;
		n = s->local;
		snprintf(ns, sizeof(ns), "%s", s->ns);
		snprintf(name, sizeof(name), "%s", s->name);
	}
	ok = healthy_locked(h, clock_ns(CLOCK_MONOTONIC));
	pthread_mutex_unlock(&h->lock);
	if (!found)
		return reply(conn, 503, "application/json", body, 0, true);
	snprintf(body, sizeof(body),
		 "{\"service\":{\"namespace\":\"%s\",\"name\":\"%s\"},\"localEndpoints\":%u,\"serviceProxyHealthy\":%s}", ns,
		 name, n, ok ? "true" : "false");
	return reply(conn, n > 0 && ok ? 200 : 503, "application/json", body, strlen(body), true);
}

/* Each hc daemon gets {h, port} as its closure (stable: allocated per daemon). */
static struct MHD_Daemon *start_daemon(uint32_t addr, uint16_t port, MHD_AccessHandlerCallback cb, void *cls)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = addr };

	return MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, port, NULL, NULL, cb, cls, MHD_OPTION_SOCK_ADDR,
				(struct sockaddr *)&sin, MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
}

static uint16_t bound_port(struct MHD_Daemon *d)
{
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);

	return i ? i->port : 0;
}

static void hc_close(struct hc_server *s)
{
	for (size_t i = 0; i < s->n_d; i++) {
		MHD_stop_daemon(s->d[i]);
		free(s->cls[i]);
	}
	s->n_d = 0;
	free(s->ns);
	free(s->name);
}

static struct kxp_http **hc_cls(struct kxp_http *h, uint16_t port)
{
	struct kxp_http **c = calloc(2, sizeof(*c));

	if (c) {
		c[0] = h;
		c[1] = (struct kxp_http *)(uintptr_t)port;
	}
	return c;
}

int kxp_http_hc_sync(struct kxp_http *h, const struct kxp_hc_want *v, size_t n, const uint32_t *addrs,
		     size_t n_addrs, char *err, size_t errlen)
{
	static const uint32_t any = 0;
	int ret = 0;

	if (!n_addrs) {
		addrs = &any;
		n_addrs = 1;
	}
	if (err && errlen)
		err[0] = 0;
	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < h->n_hc; i++)
		h->hc[i].seen = false;
	for (size_t j = 0; j < n; j++) {
		struct hc_server *s = NULL;

		for (size_t i = 0; i < h->n_hc; i++)
			if (h->hc[i].port == v[j].port)
				s = &h->hc[i];
		if (s && (strcmp(s->ns, v[j].ns) || strcmp(s->name, v[j].name)))
			continue; /* two Services, one port: the first keeps it */
		if (s) {
			s->seen = true;
			s->local = v[j].local_endpoints;
			continue;
		}
		if (h->n_hc == h->cap_hc) {
			size_t cap = h->cap_hc ? h->cap_hc * 2 : 8;
			struct hc_server *nv = realloc(h->hc, cap * sizeof(*nv));

			if (!nv) {
				ret = -ENOMEM;
				break;
			}
			h->hc = nv;
			h->cap_hc = cap;
		}
		s = &h->hc[h->n_hc];
		memset(s, 0, sizeof(*s));
		s->ns = strdup(v[j].ns);
		s->name = strdup(v[j].name);
		s->port = v[j].port;
		s->local = v[j].local_endpoints;
		s->seen = true;
		if (!s->ns || !s->name) {
			free(s->ns);
			free(s->name);
			ret = -ENOMEM;
			break;
		}
		h->n_hc++;
	}
	/* close what is no longer wanted, open what is new (outside nothing: MHD
	 * handlers take the lock, so stop daemons after dropping it) */
	{
		struct hc_server dead[64];
		size_t nd = 0, w = 0;

		for (size_t i = 0; i < h->n_hc; i++) {
			if (!h->hc[i].seen && nd < 64) {
				dead[nd++] = h->hc[i];
				continue;
			}
			h->hc[w++] = h->hc[i];
		}
		h->n_hc = w;
		for (size_t i = 0; i < h->n_hc; i++) {
			struct hc_server *s = &h->hc[i];

			if (s->n_d)
				continue;
			for (size_t a = 0; a < n_addrs && s->n_d < 16; a++) {
				struct kxp_http **cls = hc_cls(h, s->port);
				struct MHD_Daemon *d = cls ? start_daemon(addrs[a], s->port, on_hc, cls) : NULL;

				if (!d) {
					int e = errno ? errno : EADDRINUSE;

					free(cls);
					if (!ret) {
						ret = -e;
						if (err)
							snprintf(err, errlen, "healthCheckNodePort %u of %s/%s: %s", s->port,
								 s->ns, s->name, strerror(e));
					}
					continue;
				}
				s->cls[s->n_d] = cls;
				s->d[s->n_d++] = d;
			}
		}
		pthread_mutex_unlock(&h->lock);
		for (size_t i = 0; i < nd; i++)
			hc_close(&dead[i]);
	}
	return ret;
}

size_t kxp_http_hc_count(struct kxp_http *h)
{
	size_t n = 0;

	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < h->n_hc; i++)
		n += h->hc[i].n_d ? 1 : 0;
	pthread_mutex_unlock(&h->lock);
	return n;
}

/* ---- life cycle ------------------------------------------------------------------------- */

static int open_addr(const char *what, const char *hp, MHD_AccessHandlerCallback cb, struct kxp_http *h,
		     struct MHD_Daemon **d, uint16_t *port, const struct kxp_http_opts *o)
{
	uint32_t addr;
	uint16_t p;

	if (!hp || !*hp)
		return 0;
	if (kxp_parse_hostport(hp, &addr, &p)) {
		if (o->errbuf)
			snprintf(o->errbuf, o->errbuf_len, "%s: \"%s\" is not IPv4-ADDRESS:PORT", what, hp);
		return -EINVAL;
	}
	errno = 0;
	*d = start_daemon(addr, p, cb, h);
	if (!*d) {
		int e = errno ? errno : EADDRINUSE;

		if (o->errbuf)
			snprintf(o->errbuf, o->errbuf_len, "%s %s: %s", what, hp, strerror(e));
		return -e;
	}
	*port = bound_port(*d);
	return 0;
}

int kxp_http_start(struct kxp_http **out, const struct kxp_http_opts *o)
{
	struct kxp_http *h = calloc(1, sizeof(*h));
	int err;

	if (!h)
		return -ENOMEM;
	pthread_mutex_init(&h->lock, NULL);
	h->dp = o->dp;
	h->st.threshold_ms = 60000;
	h->st.node_eligible = true;
	err = open_addr("--healthz-bind-address", o->healthz_addr, on_healthz, h, &h->healthz, &h->healthz_port, o);
	if (!err)
		err = open_addr("--metrics-bind-address", o->metrics_addr, on_metrics, h, &h->metrics, &h->metrics_port,
				o);
	if (err) {
		kxp_http_stop(h);
		return err;
	}
	*out = h;
	return 0;
}

void kxp_http_stop(struct kxp_http *h)
{
	if (!h)
		return;
	if (h->healthz)
		MHD_stop_daemon(h->healthz);
	if (h->metrics)
		MHD_stop_daemon(h->metrics);
	for (size_t i = 0; i < h->n_hc; i++)
		hc_close(&h->hc[i]);
	free(h->hc);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

void kxp_http_publish(struct kxp_http *h, const struct kxp_http_status *st)
{
	pthread_mutex_lock(&h->lock);
	h->st = *st;
	pthread_mutex_unlock(&h->lock);
}

uint16_t kxp_http_healthz_port(const struct kxp_http *h)
{
	return h->healthz_port;
}

uint16_t kxp_http_metrics_port(const struct kxp_http *h)
{
	return h->metrics_port;
}
