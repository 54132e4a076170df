/* The desired dataplane state: what the model computes from Kubernetes objects
 * and the translator/writer turns into map entries. Plain data, no I/O.
 * Conventions: IPv4 addresses are uint32_t in NETWORK byte order (as
 * struct in_addr.s_addr); ports are uint16_t in HOST byte order. */
#ifndef KXP_DESIRED_H
#define KXP_DESIRED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kxp/abi.h>

struct kxp_d_backend {
	uint32_t addr;  /* network order */
	uint16_t port;  /* host order: the EndpointSlice port */
	uint8_t proto;  /* IPPROTO_TCP/UDP/SCTP */
	uint8_t flags;  /* KXP_BE_F_LOCAL, KXP_BE_F_TERMINATING */
};

/* One endpoint set of one Service port (cluster-wide or node-local): one
 * service-port id (sp_id) in the maps. */
struct kxp_d_set {
	char *key;                 /* stable identity, "ns/name:portname/PROTO:cluster|local" */
	struct kxp_d_backend *be;  /* sorted by (addr, port), no duplicates */
	size_t n_be;
	uint8_t algo;              /* enum kxp_algo */
	uint32_t affinity_timeout; /* seconds, 0 = none */
};

struct kxp_d_frontend {
	uint32_t addr;    /* network order */
	uint16_t port;    /* host order; 0 for a WILDCARD entry */
	uint8_t proto;    /* 0 for a WILDCARD entry */
	uint8_t scope;    /* enum kxp_scope */
	uint8_t kind;     /* enum kxp_fe_kind */
	uint16_t flags;   /* KXP_SVC_F_* */
	int set;          /* index into kxp_desired.sets; -1 = no usable endpoint in this set */
	char *svc;        /* "namespace/name" */
	char *port_name;  /* Service port name ("" allowed) */
	/* loadBalancerSourceRanges (IPv4) of a KXP_SVC_F_LBSR frontend, else NULL/0 */
	struct kxp_cidr4 *lbsr;
	size_t n_lbsr;
};

struct kxp_d_nodeip {
	uint32_t addr;    /* network order */
	uint32_t flags;   /* KXP_NODEIP_F_* */
};

struct kxp_desired {
	struct kxp_d_frontend *fe;
	size_t n_fe;
	struct kxp_d_set *sets;
	size_t n_sets;
	struct kxp_d_nodeip *nodeips;
	size_t n_nodeips;
	struct kxp_config cfg;    /* cidrs, flags; layout_version set by the writer */
	/* Frontends left out because another Service holds them (the first by
	 * name keeps a contested frontend): not written, but what each Service
	 * asks for, for callers that track it per Service (the agent). */
	struct kxp_d_frontend *dropped;
	size_t n_dropped;
};

void kxp_desired_free(struct kxp_desired *d);

#endif
