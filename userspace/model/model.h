/* The model: Kubernetes objects in, desired dataplane state out, following
 * kube-proxy's nftables-mode semantics (../shared/design/KUBE-PROXY-SEMANTICS.md).
 * Pure: no I/O, no globals. */
#ifndef KXP_MODEL_H
#define KXP_MODEL_H

#include "k8s/objects.h"
#include "lib/diag.h"
#include "model/desired.h"

struct kxp_node_cfg {
	const char *node_name;
	uint32_t node_ips[16];        /* network order; [0] is the primary; resolved by the caller */
	size_t n_node_ips;
	struct kxp_cidr4 cluster[KXP_MAX_CIDRS]; /* --cluster-cidr (local detector) */
	size_t n_cluster;
	struct kxp_cidr4 service[KXP_MAX_CIDRS]; /* --service-cidr */
	size_t n_service;
	bool nodeport_primary;        /* --nodeport-addresses primary (the default) */
	struct kxp_cidr4 nodeport[KXP_MAX_CIDRS]; /* --nodeport-addresses CIDRs when !nodeport_primary */
	size_t n_nodeport;
	bool masquerade_all;
	uint8_t default_algo;         /* enum kxp_algo */
	uint32_t snat_addr;           /* --snat-addr, network order; 0 = the primary node IP */
	uint16_t snat_port_min;       /* --snat-port-range; 0/0 = KXP_SNAT_PORT_{MIN,MAX}_DEF */
	uint16_t snat_port_max;
};

/* Build the desired state. Objects the model cannot use are reported in diags
 * (kind, ns/name, field, reason) and skipped; everything else is built.
 * Returns 0, or -ENOMEM. */
int kxp_model_build(const struct kxp_objects *objs, const struct kxp_node_cfg *cfg,
		    struct kxp_desired *out, struct kxp_diags *diags);

#endif
