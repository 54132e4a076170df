/* The agent's programming engine: watch events into the store, the store
 * into the maps. Gated until both the Service and EndpointSlice lists are
 * complete; then a full reconcile after every (re)list or node change and,
 * in between, per-Service builds and applies. No threads, no logging: what
 * the caller should report is left in diags. */
#ifndef KXP_AGENT_ENGINE_H
#define KXP_AGENT_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/store.h"
#include "dataplane/dataplane.h"
#include "http/http.h"
#include "k8s/client.h"
#include "model/model.h"

struct kxp_engine_svc; /* per-Service bookkeeping */

struct kxp_engine {
	struct kxp_store store;
	struct kxp_dp *dp;
	struct kxp_node_cfg cfg;       /* node_ips: resolved before each build */
	char node_name[256];
	uint32_t flag_ips[16];         /* --node-ip (fixed when n_flag_ips) */
	size_t n_flag_ips;
	uint32_t nl_ips[16];           /* the namespace's addresses (netlink) */
	size_t n_nl_ips;
	bool synced[KXP_K8S__KINDS];
	bool programmed;               /* at least one full reconcile done */
	bool need_full;
	bool hc_changed;               /* healthCheckNodePort wants changed */
	struct strmap dirty;           /* "ns/name" -> uint64_t * first received_ns */
	struct strmap svcs;            /* "ns/name" -> struct kxp_engine_svc * */
	struct strmap fe_count;        /* frontend key (hex) -> uintptr_t Services wanting it */
	uint64_t pending_since_ns;     /* oldest unprogrammed change (0 = none) */
	uint64_t total_fe;
	struct kxp_http_status st;     /* counters and histograms for /metrics */
	struct kxp_diags diags;        /* to report (the caller drains) */
	char last_error[256];
	struct kxp_apply_stats last_apply;
};

int kxp_engine_init(struct kxp_engine *e, struct kxp_dp *dp, const struct kxp_node_cfg *cfg);
void kxp_engine_free(struct kxp_engine *e);
/* Take one event (not freed here). Returns 0, or -EINVAL for a bad object
 * (reported in diags, skipped). */
int kxp_engine_event(struct kxp_engine *e, const struct kxp_k8s_event *ev);
/* The namespace's addresses changed: a full rebuild when they matter. */
void kxp_engine_set_nl_ips(struct kxp_engine *e, const uint32_t *ips, size_t n);
/* Program what is pending, if the lists are complete. Returns 0 (also when
 * gated or nothing to do), -ENOSPC when some entries did not fit (the rest
 * is written), or another -errno (the changes stay pending for a retry). */
int kxp_engine_program(struct kxp_engine *e);
bool kxp_engine_gated(const struct kxp_engine *e);
/* Node eligibility (H.40): no deletionTimestamp, no autoscaler taint. */
bool kxp_engine_node_eligible(const struct kxp_engine *e);
/* healthCheckNodePort servers wanted now (array freed by the caller;
 * strings point into the store, valid until the next event). */
int kxp_engine_hc_wants(struct kxp_engine *e, struct kxp_hc_want **v, size_t *n);
/* Node addresses in use (after resolution) for binding hc servers. */
size_t kxp_engine_node_ips(const struct kxp_engine *e, uint32_t *out, size_t max);
/* Fill the counters of e->st that are gauges (services, endpoints, ...). */
void kxp_engine_gauges(struct kxp_engine *e);

#endif
