/* Node settings that `kxp sync` and `kxp agent` both take (node name and
 * addresses, CIDRs, devices, XDP mode, map sizes, socket LB): one option
 * table, one parser, the same words. Library code: problems are handed to
 * the caller's report function, which decides how (and whether) to print. */
#ifndef KXP_LIB_NODEOPTS_H
#define KXP_LIB_NODEOPTS_H

#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/dataplane.h"
#include "model/model.h"

#define KXP_NODEOPTS_MAX_DEVS 32

/* getopt_long values; above any command's own (which start at 256). */
enum kxp_nodeopt {
	KXP_NO_NODE_NAME = 0x1000,
	KXP_NO_NODE_IP,
	KXP_NO_CLUSTER,
	KXP_NO_SERVICE,
	KXP_NO_NODEPORT,
	KXP_NO_MASQ,
	KXP_NO_ALGO,
	KXP_NO_EXT,
	KXP_NO_POD,
	KXP_NO_XDP,
	KXP_NO_MAXFE,
	KXP_NO_MAXBE,
	KXP_NO_MAXSLOT,
	KXP_NO_MAXCT,
	KXP_NO_MAXSNAT,
	KXP_NO_MAGLEV_M,
	KXP_NO_CGROUP,
	KXP_NO_SOCKLB,
	KXP_NO_SNAT_ADDR,
	KXP_NO_SNAT_PORTS,
};

/* The flags both commands take, for their struct option tables. */
#define KXP_NODEOPTS_LONGOPTS                                                  \
	{ "node-name", required_argument, NULL, KXP_NO_NODE_NAME },            \
	{ "node-ip", required_argument, NULL, KXP_NO_NODE_IP },                \
	{ "cluster-cidr", required_argument, NULL, KXP_NO_CLUSTER },           \
	{ "service-cidr", required_argument, NULL, KXP_NO_SERVICE },           \
	{ "nodeport-addresses", required_argument, NULL, KXP_NO_NODEPORT },    \
	{ "masquerade-all", no_argument, NULL, KXP_NO_MASQ },                  \
	{ "lb-algorithm", required_argument, NULL, KXP_NO_ALGO },              \
	{ "external-dev", required_argument, NULL, KXP_NO_EXT },               \
	{ "pod-dev", required_argument, NULL, KXP_NO_POD },                    \
	{ "xdp-mode", required_argument, NULL, KXP_NO_XDP },                   \
	{ "max-frontends", required_argument, NULL, KXP_NO_MAXFE },            \
	{ "max-backends", required_argument, NULL, KXP_NO_MAXBE },             \
	{ "max-slots", required_argument, NULL, KXP_NO_MAXSLOT },              \
	{ "max-ct", required_argument, NULL, KXP_NO_MAXCT },                   \
	{ "max-snat", required_argument, NULL, KXP_NO_MAXSNAT },               \
	{ "maglev-table-size", required_argument, NULL, KXP_NO_MAGLEV_M },     \
	{ "cgroup-root", required_argument, NULL, KXP_NO_CGROUP },             \
	{ "socket-lb", required_argument, NULL, KXP_NO_SOCKLB }

/* Masquerade source: only `kxp sync` offers these so far. */
#define KXP_NODEOPTS_SNAT_LONGOPTS                                             \
	{ "snat-addr", required_argument, NULL, KXP_NO_SNAT_ADDR },            \
	{ "snat-port-range", required_argument, NULL, KXP_NO_SNAT_PORTS }

struct kxp_nodeopts {
	char node_name[HOST_NAME_MAX + 1];
	struct kxp_node_cfg node;  /* node.node_name is the caller's to point at node_name */
	char ext_devs[KXP_NODEOPTS_MAX_DEVS][16];
	size_t n_ext;
	char pod_devs[KXP_NODEOPTS_MAX_DEVS][16]; /* agent: fnmatch patterns */
	size_t n_pod;
	enum kxp_xdp_mode xdp_mode;
	struct kxp_dp_opts dp;     /* map sizes, cgroup_root (argv, as given), sock_lb */
	bool sock_lb_set;          /* --socket-lb given */

	/* The agent reads kube-proxy-style lists ("a, b", dual-stack with the
	 * IPv6 entries skipped and warned about); sync wants IPv4 CIDRs only. */
	bool dual_stack_lists;
	/* List flags already given (bit = id - KXP_NO_NODE_NAME): the first
	 * one replaces what a config file set, the next ones append. */
	unsigned given;
	/* Every problem goes here, its text naming the flag or field. */
	void (*report)(struct kxp_nodeopts *o, bool warning, const char *msg);
};

/* Defaults (kube-proxy's where it has one); report and dual_stack_lists
 * are the caller's to set afterwards. */
void kxp_nodeopts_defaults(struct kxp_nodeopts *o);
/* Apply one KXP_NO_* option with its argument (NULL for masquerade-all).
 * Returns 0, -EINVAL (reported), or -ENOENT if id is not a node setting. */
int kxp_nodeopts_set(struct kxp_nodeopts *o, int id, const char *arg);

/* The value parsers behind it, also used for config-file fields; what
 * names the flag or field in the message. Each returns 0 or -EINVAL. */
int kxp_nodeopts_max_snat(struct kxp_nodeopts *o, const char *what, const char *s);
int kxp_nodeopts_u32(struct kxp_nodeopts *o, const char *what, const char *s, uint32_t *out);
int kxp_nodeopts_cidrs(struct kxp_nodeopts *o, const char *what, const char *s, struct kxp_cidr4 *v, size_t *n);
int kxp_nodeopts_nodeport(struct kxp_nodeopts *o, const char *what, const char *s);
int kxp_nodeopts_node_ip(struct kxp_nodeopts *o, const char *what, const char *s);
int kxp_nodeopts_dev(struct kxp_nodeopts *o, const char *what, const char *name, char (*v)[16], size_t *n);
int kxp_nodeopts_algo(struct kxp_nodeopts *o, const char *what, const char *s);
int kxp_nodeopts_xdp(struct kxp_nodeopts *o, const char *what, const char *s);

#endif
