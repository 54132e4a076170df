/* The agent's object store: Services and EndpointSlices by namespace/name,
 * the slices of each Service, and this node's Node. Watch events go in;
 * the keys of the Services they affect come out (for incremental builds). */
#ifndef KXP_AGENT_STORE_H
#define KXP_AGENT_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "agent/strmap.h"
#include "k8s/client.h"
#include "k8s/objects.h"
#include "lib/diag.h"

/* Limits on what a remote party controls (the API allows 1000 endpoints and
 * 100 ports per slice; Services have at most a few hundred ports). */
#define KXP_STORE_MAX_SLICE_EPS 1000
#define KXP_STORE_MAX_SLICE_PORTS 100
#define KXP_STORE_MAX_SVC_PORTS 1024
#define KXP_STORE_MAX_SVC_SLICES 10000

struct kxp_store {
	struct strmap svcs;   /* "ns/name" -> struct k8s_service * */
	struct strmap slices; /* "ns/slicename" -> struct k8s_endpointslice * */
	struct strmap groups; /* "ns/servicename" -> struct kxp_store_group * */
	char *node_name;
	struct k8s_node *node; /* NULL until seen */
	size_t n_eps;          /* endpoints of all slices (a gauge read after every event) */
};

/* The slices naming one Service (present or not). */
struct kxp_store_group {
	const struct k8s_endpointslice **v;
	size_t n, cap;
};

/* Result of one event. */
struct kxp_store_change {
	char svc[2][320];   /* affected Services ("" = none): a slice may move between two */
	bool node_changed;  /* the Node's zone, addresses or eligibility changed */
	bool unknown_svc;   /* a slice for a Service the store does not hold (yet) */
};

int kxp_store_init(struct kxp_store *s, const char *node_name);
void kxp_store_free(struct kxp_store *s);
/* Apply one ADDED/MODIFIED/DELETED object of a kind. A bad object (decode
 * failure, absurd size) is reported in diags and skipped, the previous
 * version of it stays: returns -EINVAL. -ENOMEM. */
int kxp_store_apply(struct kxp_store *s, enum kxp_k8s_kind kind, enum k8s_watch_type type, const cJSON *obj,
		    struct kxp_store_change *ch, struct kxp_diags *diags);
const struct k8s_service *kxp_store_service(const struct kxp_store *s, const char *key);
const struct kxp_store_group *kxp_store_slices(const struct kxp_store *s, const char *key);
/* A view of everything for a full build: arrays of shallow copies (free
 * with kxp_store_view_free, which frees only the arrays). */
int kxp_store_view(const struct kxp_store *s, struct kxp_objects *view);
void kxp_store_view_free(struct kxp_objects *view);

#endif
