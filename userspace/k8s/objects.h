/* Typed Kubernetes objects: only the fields kxp reads, decoded from the JSON
 * (or YAML) the API server returns or a manifest holds. */
#ifndef KXP_K8S_OBJECTS_H
#define KXP_K8S_OBJECTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/diag.h"

enum k8s_svc_type { K8S_SVC_CLUSTERIP, K8S_SVC_NODEPORT, K8S_SVC_LOADBALANCER, K8S_SVC_EXTERNALNAME };

struct k8s_svc_port {
	char *name;          /* "" when unnamed */
	uint8_t proto;       /* IPPROTO_TCP (default), IPPROTO_UDP, IPPROTO_SCTP */
	uint16_t port;
	uint16_t node_port;  /* 0 = none */
};

struct k8s_lb_ingress {
	uint32_t ip;         /* network order; 0 = hostname-only or not IPv4 */
	bool ip_mode_proxy;  /* ipMode: Proxy */
};

struct k8s_service {
	char *ns, *name;
	uint64_t resource_version;
	char *proxy_name;        /* label service.kubernetes.io/service-proxy-name, NULL if absent */
	bool headless_label;     /* label service.kubernetes.io/headless present */
	enum k8s_svc_type type;
	bool headless;           /* clusterIP None or empty */
	uint32_t *cluster_ips;   /* IPv4 ClusterIPs (from clusterIPs, else clusterIP), network order */
	size_t n_cluster_ips;
	bool has_ipv6;           /* an IPv6 ClusterIP was present (not served yet) */
	struct k8s_svc_port *ports;
	size_t n_ports;
	uint32_t *external_ips;  /* IPv4 only */
	size_t n_external_ips;
	struct k8s_lb_ingress *lb_ingress;
	size_t n_lb_ingress;
	char **lb_source_ranges; /* raw strings, trimmed */
	size_t n_lb_source_ranges;
	bool etp_local;          /* externalTrafficPolicy: Local */
	bool itp_local;          /* internalTrafficPolicy: Local */
	bool affinity_client_ip; /* sessionAffinity: ClientIP */
	uint32_t affinity_timeout; /* seconds (default 10800) */
	uint16_t health_check_node_port;
	char *lb_algorithm;      /* annotation kxp.io/lb-algorithm, NULL if absent */
};

struct k8s_ep_port {
	char *name;        /* NULL when the field is absent (slice port then ignored); "" valid */
	uint8_t proto;
	uint16_t port;     /* 0 when absent */
};

/* Topology hints of an endpoint (few endpoints have them: kept apart). */
struct k8s_ep_hints {
	char **zones;      /* hints.forZones[].name */
	size_t n_zones;
	char **nodes;      /* hints.forNodes[].name */
	size_t n_nodes;
};

/* 32 bytes: a cluster's endpoints are most of what the agent keeps. */
struct k8s_endpoint {
	uint32_t addr;     /* addresses[0], network order */
	bool ready, serving, terminating;
	char *node_name;   /* NULL if absent; node_name and zone are shared copies
			    * (k8s/decode.c): read-only, freed by k8s_endpointslice_free */
	char *zone;
	struct k8s_ep_hints *hints; /* NULL: no hints.forZones or forNodes names */
};
_Static_assert(sizeof(struct k8s_endpoint) <= 32, "k8s_endpoint grew: 500,000 of them at 50,000 Services");

struct k8s_endpointslice {
	char *ns, *name;
	uint64_t resource_version;
	char *service_name;      /* label kubernetes.io/service-name, NULL if absent */
	char *proxy_name;        /* label service.kubernetes.io/service-proxy-name */
	bool headless_label;
	enum { K8S_ADDR_IPV4, K8S_ADDR_IPV6, K8S_ADDR_FQDN } addr_type;
	struct k8s_endpoint *eps;
	size_t n_eps;
	struct k8s_ep_port *ports;
	size_t n_ports;
};

struct k8s_node {
	char *name;
	uint64_t resource_version;
	char *zone;              /* label topology.kubernetes.io/zone, NULL if absent */
	uint32_t *internal_ips;  /* status.addresses type InternalIP, IPv4, network order */
	size_t n_internal_ips;
	bool deleting;           /* metadata.deletionTimestamp set */
	bool tbd_taint;          /* ToBeDeletedByClusterAutoscaler taint */
};

/* The arrays are malloc'ed and grown by doubling: code that appends must keep
 * the capacity at least the next power of two >= n (k8s/decode.c does).
 * A decoded slice's endpoints array is sized exactly: not appendable. */
struct kxp_objects {
	struct k8s_service *svcs;
	size_t n_svcs;
	struct k8s_endpointslice *slices;
	size_t n_slices;
	struct k8s_node *nodes;
	size_t n_nodes;
};

/* Load a file or a directory (its *.json, *.yaml, *.yml files, sorted by
 * name). JSON or YAML; single objects, `kind: List`/`*List`, multi-document
 * YAML. A malformed or unknown object is reported in diags and skipped;
 * the rest is loaded. Returns 0, or -errno when the path cannot be read
 * (fatal). */
int kxp_objects_load_path(struct kxp_objects *objs, const char *path, struct kxp_diags *diags);
/* Decode one JSON or YAML text (the same rules); `origin` names it in diags. */
int kxp_objects_load_text(struct kxp_objects *objs, const char *text, size_t len, const char *origin,
			  struct kxp_diags *diags);
const struct k8s_node *kxp_objects_find_node(const struct kxp_objects *objs, const char *name);
void kxp_objects_free(struct kxp_objects *objs);

#endif
