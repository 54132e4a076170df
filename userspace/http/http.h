/* The agent's HTTP servers (libmicrohttpd, each in its own thread): proxy
 * health (/healthz, /livez, H.40), Prometheus metrics, and one
 * healthCheckNodePort server per eTP=Local LoadBalancer Service (H.39).
 * Handlers read a mutex-protected snapshot the agent's loop publishes. */
#ifndef KXP_HTTP_H
#define KXP_HTTP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/dataplane.h"
#include "k8s/client.h"

/* Fixed-bucket histogram (seconds), Prometheus semantics (cumulative on output). */
#define KXP_HIST_BUCKETS 14
struct kxp_hist {
	uint64_t counts[KXP_HIST_BUCKETS + 1]; /* last = +Inf */
	double sum;
	uint64_t count;
};
extern const double kxp_hist_bounds[KXP_HIST_BUCKETS];
void kxp_hist_observe(struct kxp_hist *h, double seconds);

/* What the agent publishes after each loop iteration. */
struct kxp_http_status {
	uint64_t last_updated_ns;   /* CLOCK_REALTIME of the last successful programming (0 = never) */
	uint64_t pending_since_ns;  /* CLOCK_MONOTONIC of the oldest unprogrammed change (0 = none) */
	unsigned threshold_ms;      /* a pending change older than this: unhealthy */
	bool node_eligible;         /* no deletionTimestamp, no ToBeDeletedByClusterAutoscaler taint */
	bool synced;                /* programmed after both lists completed */
	/* metrics */
	struct kxp_hist sync_full, sync_partial, latency;
	uint64_t full_syncs, partial_syncs, sync_errors, events, bad_objects, conflicts;
	uint64_t services, endpoints, frontends;
	struct kxp_reflector_stats refl[KXP_K8S__KINDS];
	uint64_t devices_attached;
	/* the conntrack collector: passes, entries deleted, the last pass */
	uint64_t ct_gc_runs, ct_gc_errors, ct_gc_deleted;
	double ct_gc_last_s;
};

struct kxp_http;

struct kxp_http_opts {
	const char *healthz_addr;   /* "host:port" or NULL/"" (off) */
	const char *metrics_addr;
	struct kxp_dp *dp;          /* map fds for counters and fill levels (read-only) */
	char *errbuf;
	size_t errbuf_len;
};

int kxp_http_start(struct kxp_http **out, const struct kxp_http_opts *o);
void kxp_http_stop(struct kxp_http *h);
void kxp_http_publish(struct kxp_http *h, const struct kxp_http_status *st);
/* Healthy as /livez answers (no node eligibility). */
bool kxp_http_healthy(struct kxp_http *h);
/* Actual ports (after binding port 0), 0 if off. */
uint16_t kxp_http_healthz_port(const struct kxp_http *h);
uint16_t kxp_http_metrics_port(const struct kxp_http *h);

/* healthCheckNodePort servers. Begin a round, declare every Service that
 * needs one, end the round: servers of Services not declared are closed,
 * new ones opened on the addresses given (0 = all). Returns 0 or the first
 * -errno of a server that could not be opened (the others still run). */
struct kxp_hc_want {
	const char *ns, *name;
	uint16_t port;
	uint32_t local_endpoints;
};
int kxp_http_hc_sync(struct kxp_http *h, const struct kxp_hc_want *v, size_t n, const uint32_t *addrs,
		     size_t n_addrs, char *err, size_t errlen);
size_t kxp_http_hc_count(struct kxp_http *h);

/* Render the metrics text (also used by tests). Caller frees. */
char *kxp_http_metrics_text(struct kxp_http *h, size_t *len);

#endif
