/* Removal of what kube-proxy left on a node (its iptables chains in both
 * backends, its nftables tables, IPVS services, kube-ipvs0 and its ipsets),
 * by driving the standard tools in the current network namespace. */
#ifndef KXP_KUBEPROXY_CLEANUP_H
#define KXP_KUBEPROXY_CLEANUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum kxp_kpc_kind {
	KXP_KPC_RULE,      /* a jump to a kube-proxy chain from a chain that stays */
	KXP_KPC_CHAIN,     /* a KUBE-* chain */
	KXP_KPC_NFT_TABLE, /* "ip kube-proxy", "ip6 kube-proxy" */
	KXP_KPC_IPVS,      /* an IPVS virtual service ("-t 10.96.0.1:443") */
	KXP_KPC_DEVICE,    /* kube-ipvs0 */
	KXP_KPC_IPSET,     /* a KUBE-* ipset */
};

struct kxp_kpc_item {
	char backend[24];  /* "iptables-legacy", "ip6tables-nft", "nft", "ipvsadm", "ip", "ipset" */
	char table[16];    /* iptables table or nft family; "" otherwise */
	enum kxp_kpc_kind kind;
	char *what;        /* chain, rule as *-save prints it, table, service, device or set name */
	int err;           /* 0: removed (would be, under dry run); -errno: removal failed */
};

#define KXP_KPC_MAX_NOTES 32

struct kxp_kpc_report {
	struct kxp_kpc_item *v;
	size_t n, cap;
	/* tools skipped or failing as a whole: "ipvsadm: IPVS is not in this kernel" */
	char notes[KXP_KPC_MAX_NOTES][320];
	size_t n_notes;
	size_t failed;     /* items with err, plus backends whose removal failed */
};

struct kxp_kpc_opts {
	bool dry_run;
	/* IPVS services on a node address whose port lies in this range are
	 * NodePorts (kube-proxy's --service-node-port-range, 30000-32767) */
	uint16_t nodeport_min, nodeport_max;
};

extern const char *const kxp_kpc_kind_names[];

/* Find and (unless dry_run) remove everything, in the order that lets each
 * step succeed: iptables (jumps, then chains), nftables, IPVS services,
 * kube-ipvs0, ipsets (no longer referenced by then). Missing tools or kernel
 * features are notes, not failures. Returns 0, or -ENOMEM. */
int kxp_kpc_run(const struct kxp_kpc_opts *o, struct kxp_kpc_report *r);
void kxp_kpc_report_free(struct kxp_kpc_report *r);

/* ---- the pure parts (tested without the tools) ------------------------------- */

/* True for chains that belong to kube-proxy (KUBE-*), false for kubelet's
 * own (filter KUBE-FIREWALL, KUBE-KUBELET-CANARY, mangle KUBE-IPTABLES-HINT),
 * which kubelet keeps recreating and other components read. */
bool kxp_kpc_is_proxy_chain(const char *table, const char *chain);

/* From the output of an iptables-save, the items to remove (appended to r
 * under `backend`) and per table a restore script for `iptables-restore
 * --noflush` (scripts[i] for tables[i], malloc'ed; n_tables set). Returns
 * 0, -EINVAL for a line it cannot read, -ENOMEM. */
#define KXP_KPC_MAX_TABLES 8
struct kxp_kpc_ipt_plan {
	char tables[KXP_KPC_MAX_TABLES][16];
	char *scripts[KXP_KPC_MAX_TABLES];
	size_t first_item[KXP_KPC_MAX_TABLES], n_items[KXP_KPC_MAX_TABLES]; /* indexes into r->v */
	size_t n_tables;
};
int kxp_kpc_plan_iptables(const char *save, const char *backend, struct kxp_kpc_report *r,
			  struct kxp_kpc_ipt_plan *plan);
void kxp_kpc_ipt_plan_free(struct kxp_kpc_ipt_plan *plan);

/* From `nft list tables`: the kube-proxy tables ("ip", "ip6" family) as
 * items. Returns the number found. */
int kxp_kpc_plan_nft(const char *list, struct kxp_kpc_report *r);

/* From `ipvsadm -Sn`: the services to delete ("-t ADDR:PORT" / "-u ..."):
 * those on an address of kube-ipvs0 (addrs, text form) or with a port in
 * the NodePort range. Returns the number found or -ENOMEM. */
int kxp_kpc_plan_ipvs(const char *save, const char *const *addrs, size_t n_addrs, uint16_t np_min,
		      uint16_t np_max, struct kxp_kpc_report *r);

/* From `ipset list -n`: the KUBE-* sets. Returns the number found. */
int kxp_kpc_plan_ipset(const char *list, struct kxp_kpc_report *r);

#endif
