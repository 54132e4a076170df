/* kxp sync: manifests in, maps written, devices attached, once. The files
 * are the complete desired state: what they no longer hold is removed. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "dataplane/dataplane.h"
#include "k8s/objects.h"
#include "lib/diag.h"
#include "lib/ip.h"
#include "lib/netlink.h"
#include "model/model.h"

static const char sync_help[] =
	"Usage: kxp sync --instance NAME --from-file PATH [--from-file PATH]...\n"
	"                [--node-name NAME] [--node-ip IP]... [--cluster-cidr CIDR]...\n"
	"                [--service-cidr CIDR]... [--nodeport-addresses { primary | CIDR[,CIDR]... }]\n"
	"                [--masquerade-all] [--lb-algorithm { random | rr | maglev }]\n"
	"                [--snat-addr IP] [--snat-port-range MIN-MAX]\n"
	"                [--external-dev DEV]... [--pod-dev DEV]... [--xdp-mode { native | generic | off }]\n"
	"                [--max-frontends N] [--max-backends N] [--max-slots N] [--max-ct N] [--max-snat N]\n"
	"                [--maglev-table-size M]\n"
	"                [--cgroup-root PATH [--socket-lb { host | all | off }]]\n"
	"       kxp sync help\n"
	"\n"
	"PATH is a JSON/YAML file or a directory of them; together they are the complete state.\n"
	"--node-ip defaults to the Node object's InternalIPs, else the namespace's addresses; the\n"
	"first is the primary. Devices not named keep their attachments. Exit status: 0 applied,\n"
	"2 some objects rejected or not written (the rest applied), 1 nothing done (fatal).\n"
	"Masquerade uses --snat-addr (default: the primary node IP) and source ports in\n"
	"--snat-port-range (default 1024-29999: keep it clear of the NodePort range and of\n"
	"net.ipv4.ip_local_port_range, so no reply can match one of the node's own connections).\n"
	"--cgroup-root attaches the socket hooks (frontends translated at connect/sendmsg) to that\n"
	"cgroup v2 directory, for sockets of this namespace only (host, the default), of every\n"
	"namespace (all), or detaches them (off); without it they are left as they are.\n";

#define MAX_PATHS 64
#define MAX_DEVS 32

struct sync_args {
	const char *instance;
	const char *paths[MAX_PATHS];
	size_t n_paths;
	const char *ext[MAX_DEVS], *pod[MAX_DEVS];
	int ext_idx[MAX_DEVS], pod_idx[MAX_DEVS];
	size_t n_ext, n_pod;
	enum kxp_xdp_mode xdp_mode, xdp_used[MAX_DEVS];
	bool sock_lb_set;
	struct kxp_node_cfg cfg;
	struct kxp_dp_opts dp;
	char node_name[HOST_NAME_MAX + 1];
};

static int parse_u32(const char *opt, const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v == 0 || v > UINT32_MAX / 2) {
		cli_error("sync: %s: \"%s\" is not a positive number", opt, s);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

/* A repeatable CIDR flag, also taking comma-separated lists. */
static int parse_cidrs(const char *opt, const char *s, struct kxp_cidr4 *v, size_t *n)
{
	char buf[512], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (*n >= KXP_MAX_CIDRS) {
			cli_error("sync: %s: at most %d CIDRs", opt, KXP_MAX_CIDRS);
			return -1;
		}
		if (kxp_parse_cidr4(tok, &v[*n])) {
			cli_error("sync: %s: \"%s\" is not an IPv4 CIDR (a.b.c.d/n)", opt, tok);
			return -1;
		}
		(*n)++;
	}
	return 0;
}

static int add_dev(const char *opt, const char *name, const char **v, size_t *n)
{
	if (*n >= MAX_DEVS) {
		cli_error("sync: %s: at most %d devices", opt, MAX_DEVS);
		return -1;
	}
	v[(*n)++] = name;
	return 0;
}

enum {
	O_INSTANCE = 256, O_FROM, O_NODE_NAME, O_NODE_IP, O_CLUSTER, O_SERVICE, O_NODEPORT, O_MASQ, O_ALGO,
	O_EXT, O_POD, O_XDP, O_MAXFE, O_MAXBE, O_MAXSLOT, O_MAXCT, O_MAXSNAT, O_SNAT_ADDR, O_SNAT_PORTS,
	O_CGROUP, O_SOCKLB, O_MAGLEV_M,
};

static const struct option sync_opts[] = {
	{ "instance", required_argument, NULL, O_INSTANCE },
	{ "from-file", required_argument, NULL, O_FROM },
	{ "node-name", required_argument, NULL, O_NODE_NAME },
	{ "node-ip", required_argument, NULL, O_NODE_IP },
	{ "cluster-cidr", required_argument, NULL, O_CLUSTER },
	{ "service-cidr", required_argument, NULL, O_SERVICE },
	{ "nodeport-addresses", required_argument, NULL, O_NODEPORT },
	{ "masquerade-all", no_argument, NULL, O_MASQ },
	{ "lb-algorithm", required_argument, NULL, O_ALGO },
	{ "external-dev", required_argument, NULL, O_EXT },
	{ "pod-dev", required_argument, NULL, O_POD },
	{ "xdp-mode", required_argument, NULL, O_XDP },
	{ "max-frontends", required_argument, NULL, O_MAXFE },
	{ "max-backends", required_argument, NULL, O_MAXBE },
	{ "max-slots", required_argument, NULL, O_MAXSLOT },
	{ "max-ct", required_argument, NULL, O_MAXCT },
	{ "max-snat", required_argument, NULL, O_MAXSNAT },
	{ "maglev-table-size", required_argument, NULL, O_MAGLEV_M },
	{ "snat-addr", required_argument, NULL, O_SNAT_ADDR },
	{ "snat-port-range", required_argument, NULL, O_SNAT_PORTS },
	{ "cgroup-root", required_argument, NULL, O_CGROUP },
	{ "socket-lb", required_argument, NULL, O_SOCKLB },
	{ "help", no_argument, NULL, 'h' },
	{},
};

/* Returns 0, 1 (error printed) or -1 for help. */
static int parse_args(int argc, char **argv, struct sync_args *a)
{
	bool nodeport_set = false;
	uint32_t ip;
	int c;

	a->cfg.nodeport_primary = true;
	a->xdp_mode = KXP_XDP_NATIVE;
	a->dp.sock_lb = KXP_SOCK_HOST;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", sync_opts, NULL)) != -1) {
		switch (c) {
		case O_INSTANCE:
			a->instance = optarg;
			break;
		case O_FROM:
			if (a->n_paths >= MAX_PATHS) {
				cli_error("sync: --from-file: at most %d paths", MAX_PATHS);
				return 1;
			}
			a->paths[a->n_paths++] = optarg;
			break;
		case O_NODE_NAME:
			snprintf(a->node_name, sizeof(a->node_name), "%s", optarg);
			break;
		case O_NODE_IP:
			if (kxp_parse_ip4(optarg, &ip)) {
				cli_error("sync: --node-ip: \"%s\" is not an IPv4 address", optarg);
				return 1;
			}
			if (a->cfg.n_node_ips >= sizeof(a->cfg.node_ips) / sizeof(a->cfg.node_ips[0])) {
				cli_error("sync: --node-ip: at most %zu addresses",
					  sizeof(a->cfg.node_ips) / sizeof(a->cfg.node_ips[0]));
				return 1;
			}
			a->cfg.node_ips[a->cfg.n_node_ips++] = ip;
			break;
		case O_CLUSTER:
			if (parse_cidrs("--cluster-cidr", optarg, a->cfg.cluster, &a->cfg.n_cluster))
				return 1;
			break;
		case O_SERVICE:
			if (parse_cidrs("--service-cidr", optarg, a->cfg.service, &a->cfg.n_service))
				return 1;
			break;
		case O_NODEPORT:
			if (nodeport_set) {
				cli_error("sync: --nodeport-addresses given twice (use a comma-separated list)");
				return 1;
			}
			nodeport_set = true;
			if (!strcmp(optarg, "primary"))
				break;
			a->cfg.nodeport_primary = false;
			if (parse_cidrs("--nodeport-addresses", optarg, a->cfg.nodeport, &a->cfg.n_nodeport))
				return 1;
			break;
		case O_MASQ:
			a->cfg.masquerade_all = true;
			break;
		case O_SNAT_ADDR:
			if (kxp_parse_ip4(optarg, &a->cfg.snat_addr) || !a->cfg.snat_addr) {
				cli_error("sync: --snat-addr: \"%s\" is not an IPv4 address", optarg);
				return 1;
			}
			break;
		case O_SNAT_PORTS: {
			unsigned lo, hi;
			int n = 0;

			if (sscanf(optarg, "%u-%u%n", &lo, &hi, &n) != 2 || optarg[n] || !lo || lo > hi || hi > 65535) {
				cli_error("sync: --snat-port-range: \"%s\" is not MIN-MAX within 1-65535", optarg);
				return 1;
			}
			a->cfg.snat_port_min = (uint16_t)lo;
			a->cfg.snat_port_max = (uint16_t)hi;
			break;
		}
		case O_ALGO:
			if (!strcmp(optarg, "random"))
				a->cfg.default_algo = KXP_ALGO_RANDOM;
			else if (!strcmp(optarg, "rr"))
				a->cfg.default_algo = KXP_ALGO_RR;
			else if (!strcmp(optarg, "maglev"))
				a->cfg.default_algo = KXP_ALGO_MAGLEV;
			else {
				cli_error("sync: --lb-algorithm: \"%s\" is not random, rr or maglev", optarg);
				return 1;
			}
			break;
		case O_EXT:
			if (add_dev("--external-dev", optarg, a->ext, &a->n_ext))
				return 1;
			break;
		case O_POD:
			if (add_dev("--pod-dev", optarg, a->pod, &a->n_pod))
				return 1;
			break;
		case O_XDP:
			if (!strcmp(optarg, "native"))
				a->xdp_mode = KXP_XDP_NATIVE;
			else if (!strcmp(optarg, "generic"))
				a->xdp_mode = KXP_XDP_GENERIC;
			else if (!strcmp(optarg, "off"))
				a->xdp_mode = KXP_XDP_OFF;
			else {
				cli_error("sync: --xdp-mode: \"%s\" is not native, generic or off", optarg);
				return 1;
			}
			break;
		case O_MAXFE:
			if (parse_u32("--max-frontends", optarg, &a->dp.max_frontends))
				return 1;
			break;
		case O_MAXBE:
			if (parse_u32("--max-backends", optarg, &a->dp.max_backends))
				return 1;
			break;
		case O_MAXSLOT:
			if (parse_u32("--max-slots", optarg, &a->dp.max_slots))
				return 1;
			break;
		case O_MAXCT:
			if (parse_u32("--max-ct", optarg, &a->dp.max_ct))
				return 1;
			break;
		case O_MAXSNAT:
			if (parse_u32("--max-snat", optarg, &a->dp.max_snat))
				return 1;
			break;
		case O_MAGLEV_M: /* checked (prime, 251..131071) by the loader */
			if (parse_u32("--maglev-table-size", optarg, &a->dp.maglev_m))
				return 1;
			break;
		case O_CGROUP:
			a->dp.cgroup_root = optarg;
			break;
		case O_SOCKLB:
			a->sock_lb_set = true;
			if (!strcmp(optarg, "host"))
				a->dp.sock_lb = KXP_SOCK_HOST;
			else if (!strcmp(optarg, "all"))
				a->dp.sock_lb = KXP_SOCK_ALL;
			else if (!strcmp(optarg, "off"))
				a->dp.sock_lb = KXP_SOCK_OFF;
			else {
				cli_error("sync: --socket-lb: \"%s\" is not host, all or off", optarg);
				return 1;
			}
			break;
		case 'h':
			return -1;
		case ':':
			cli_error("sync: %s needs a value", argv[optind - 1]);
			return 1;
		default:
			cli_error("sync: unknown option \"%s\" (see kxp sync help)", argv[optind - 1]);
			return 1;
		}
	}
	if (optind < argc) {
		if (cli_is_prefix(argv[optind], "help"))
			return -1;
		cli_error("sync: unexpected argument \"%s\" (see kxp sync help)", argv[optind]);
		return 1;
	}
	if (!a->instance) {
		cli_error("sync: --instance NAME is required");
		return 1;
	}
	/* never a default cgroup: attaching to the host's root must be asked for */
	if (a->sock_lb_set && !a->dp.cgroup_root) {
		cli_error("sync: --socket-lb needs --cgroup-root PATH");
		return 1;
	}
	if (!a->n_paths) {
		cli_error("sync: at least one --from-file PATH is required");
		return 1;
	}
	if (!a->node_name[0] && gethostname(a->node_name, sizeof(a->node_name) - 1)) {
		cli_error("sync: cannot read the hostname: %s; pass --node-name", strerror(errno));
		return 1;
	}
	/* Devices are checked before anything changes. */
	for (size_t i = 0; i < a->n_ext + a->n_pod; i++) {
		bool ext = i < a->n_ext;
		const char *name = ext ? a->ext[i] : a->pod[i - a->n_ext];
		int idx = (int)if_nametoindex(name);

		if (!idx) {
			cli_error("sync: device %s: %s", name, strerror(errno));
			return 1;
		}
		if (ext)
			a->ext_idx[i] = idx;
		else
			a->pod_idx[i - a->n_ext] = idx;
	}
	return 0;
}

static const char *sock_lb_name(int m)
{
	return m == KXP_SOCK_HOST ? "host" : m == KXP_SOCK_ALL ? "all" : "off";
}

static const char *xdp_name(enum kxp_xdp_mode m)
{
	return m == KXP_XDP_NATIVE ? "native" : m == KXP_XDP_GENERIC ? "generic" : "off";
}

/* Node addresses: --node-ip, else the Node object's, else the namespace's. */
static int resolve_node_ips(struct sync_args *a, const struct kxp_objects *objs, const char **source)
{
	const struct k8s_node *node;
	struct kxp_nl_addr nl[16];
	size_t n = 0;
	int err;

	*source = "--node-ip";
	if (a->cfg.n_node_ips)
		return 0;
	node = kxp_objects_find_node(objs, a->node_name);
	if (node && node->n_internal_ips) {
		*source = "Node";
		for (size_t i = 0; i < node->n_internal_ips && i < 16; i++)
			a->cfg.node_ips[a->cfg.n_node_ips++] = node->internal_ips[i];
		return 0;
	}
	*source = "netlink";
	err = kxp_nl_ipv4_addrs(nl, 16, &n);
	if (err) {
		cli_error("sync: cannot list the namespace's addresses: %s; pass --node-ip", strerror(-err));
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		a->cfg.node_ips[a->cfg.n_node_ips++] = nl[i].addr;
	if (!a->cfg.n_node_ips) {
		cli_error("sync: no node address (no Node %s in the files, no IPv4 address on a device); pass --node-ip",
			  a->node_name);
		return 1;
	}
	return 0;
}

static const char *attach_err(int err)
{
	return err == -EBUSY ? "another program holds kxp's hook (not kxp's, left alone)" : strerror(-err);
}

int cmd_sync(int argc, char **argv)
{
	static struct sync_args a;
	struct kxp_objects objs = {};
	struct kxp_desired d = {};
	struct kxp_diags diags = {};
	struct kxp_apply_stats st = {};
	struct kxp_dp *dp = NULL;
	cJSON *doc = NULL, *arr, *att = NULL, *warn = NULL;
	const char *ip_source = "";
	char errbuf[512] = "", line[1024], ipb[16];
	int ret = 1, err;

	memset(&a, 0, sizeof(a));
	err = parse_args(argc, argv, &a);
	if (err < 0) {
		cli_usage(sync_help);
		return 0;
	}
	if (err)
		return 1;
	a.cfg.node_name = a.node_name;
	a.dp.instance = a.instance;
	a.dp.errbuf = errbuf;
	a.dp.errbuf_len = sizeof(errbuf);

	for (size_t i = 0; i < a.n_paths; i++) {
		err = kxp_objects_load_path(&objs, a.paths[i], &diags);
		if (err) {
			cli_error("sync: file %s: %s", a.paths[i], strerror(-err));
			goto out;
		}
	}
	if (resolve_node_ips(&a, &objs, &ip_source))
		goto out;
	err = kxp_model_build(&objs, &a.cfg, &d, &diags);
	if (err) {
		cli_error("sync: building the desired state: %s", strerror(-err));
		goto out;
	}
	for (size_t i = 0; i < diags.n; i++) {
		kxp_diag_format(&diags.v[i], line, sizeof(line));
		fprintf(stderr, "kxp: rejected: %s\n", line);
	}

	err = kxp_dp_open(&dp, &a.dp);
	if (err) {
		cli_error("sync: instance %s: %s", a.instance, errbuf[0] ? errbuf : strerror(-err));
		goto out;
	}
	err = kxp_dp_apply(dp, &d, &st);
	for (uint32_t i = 0; i < st.n_failed && i < 8; i++)
		fprintf(stderr, "kxp: not written: %s\n", st.failed[i]);
	if (st.n_failed > 8)
		fprintf(stderr, "kxp: not written: %u more\n", st.n_failed - 8);
	if (err && err != -ENOSPC) {
		cli_error("sync: instance %s: writing the maps: %s", a.instance, strerror(-err));
		goto out;
	}

	if (kxp_cli.json) {
		att = cJSON_CreateArray();
		warn = cJSON_CreateArray();
	}
	for (size_t i = 0; i < a.n_ext + a.n_pod; i++) {
		bool ext = i < a.n_ext;
		const char *name = ext ? a.ext[i] : a.pod[i - a.n_ext];
		int idx = ext ? a.ext_idx[i] : a.pod_idx[i - a.n_ext];
		enum kxp_xdp_mode used = KXP_XDP_OFF;
		cJSON *o;

		if (ext) {
			err = kxp_dp_attach_xdp(dp, idx, a.xdp_mode, &used);
			if (err) {
				cli_error("sync: device %s: XDP %s: %s", name, xdp_name(a.xdp_mode), attach_err(err));
				goto out;
			}
			a.xdp_used[i] = used;
			if (used != a.xdp_mode) {
				snprintf(line, sizeof(line), "device %s: the driver refused native XDP, attached in generic mode",
					 name);
				fprintf(stderr, "kxp: warning: %s\n", line);
				if (warn)
					cJSON_AddItemToArray(warn, cJSON_CreateString(line));
			}
		}
		err = kxp_dp_attach_tc(dp, idx);
		if (err) {
			cli_error("sync: device %s: TC ingress/egress: %s", name, attach_err(err));
			goto out;
		}
		if (att) {
			o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "dev", name);
			cJSON_AddStringToObject(o, "role", ext ? "external" : "pod");
			cJSON_AddStringToObject(o, "xdp", ext ? xdp_name(used) : "off");
			cJSON_AddBoolToObject(o, "tc", true);
			cJSON_AddItemToArray(att, o);
		}
	}

	ret = diags.n || st.n_failed ? 2 : 0;
	if (kxp_cli.json) {
		cJSON *ap, *ips;

		doc = cJSON_CreateObject();
		cJSON_AddStringToObject(doc, "instance", a.instance);
		cJSON_AddStringToObject(doc, "node_name", a.node_name);
		ips = cJSON_AddArrayToObject(doc, "node_ips");
		for (size_t i = 0; i < a.cfg.n_node_ips; i++)
			cJSON_AddItemToArray(ips, cJSON_CreateString(kxp_ip4_str(a.cfg.node_ips[i], ipb)));
		cJSON_AddStringToObject(doc, "node_ips_from", ip_source);
		cJSON_AddNumberToObject(doc, "frontends", (double)d.n_fe);
		cJSON_AddNumberToObject(doc, "sets", (double)d.n_sets);
		ap = cJSON_AddObjectToObject(doc, "applied");
		cJSON_AddNumberToObject(ap, "frontends_added", st.fe_added);
		cJSON_AddNumberToObject(ap, "frontends_updated", st.fe_updated);
		cJSON_AddNumberToObject(ap, "frontends_removed", st.fe_removed);
		cJSON_AddNumberToObject(ap, "backends_added", st.be_added);
		cJSON_AddNumberToObject(ap, "backends_updated", st.be_updated);
		cJSON_AddNumberToObject(ap, "backends_removed", st.be_removed);
		cJSON_AddNumberToObject(ap, "slots_written", st.slots_written);
		cJSON_AddNumberToObject(ap, "slots_removed", st.slots_removed);
		cJSON_AddNumberToObject(ap, "nodeips_changed", st.nodeips_changed);
		cJSON_AddBoolToObject(ap, "config_changed", st.config_changed);
		cJSON_AddNumberToObject(ap, "writes", st.writes);
		arr = cJSON_AddArrayToObject(doc, "failed");
		for (uint32_t i = 0; i < st.n_failed && i < 8; i++)
			cJSON_AddItemToArray(arr, cJSON_CreateString(st.failed[i]));
		arr = cJSON_AddArrayToObject(doc, "rejected");
		for (size_t i = 0; i < diags.n; i++) {
			const struct kxp_diag *g = &diags.v[i];
			cJSON *o = cJSON_CreateObject();

			kxp_diag_format(g, line, sizeof(line));
			cJSON_AddStringToObject(o, "kind", g->kind);
			cJSON_AddStringToObject(o, "namespace", g->ns);
			cJSON_AddStringToObject(o, "name", g->name);
			cJSON_AddStringToObject(o, "field", g->field);
			cJSON_AddStringToObject(o, "reason", g->reason);
			cJSON_AddStringToObject(o, "message", line);
			cJSON_AddItemToArray(arr, o);
		}
		if (a.dp.cgroup_root) {
			cJSON *so = cJSON_AddObjectToObject(doc, "socket_lb");

			cJSON_AddStringToObject(so, "cgroup", a.dp.cgroup_root);
			cJSON_AddStringToObject(so, "mode", sock_lb_name(a.dp.sock_lb));
		}
		cJSON_AddItemToObject(doc, "attached", att);
		cJSON_AddItemToObject(doc, "warnings", warn);
		att = warn = NULL;
		cJSON_AddNumberToObject(doc, "exit", ret);
		cli_print_json(doc);
	} else {
		printf("instance %s: %zu frontends, %zu sets; frontends +%u ~%u -%u, backends +%u ~%u -%u, slots +%u -%u, %u map writes\n",
		       a.instance, d.n_fe, d.n_sets, st.fe_added, st.fe_updated, st.fe_removed, st.be_added, st.be_updated,
		       st.be_removed, st.slots_written, st.slots_removed, st.writes);
		printf("node %s: addresses", a.node_name);
		for (size_t i = 0; i < a.cfg.n_node_ips; i++)
			printf(" %s", kxp_ip4_str(a.cfg.node_ips[i], ipb));
		printf(" (from %s)\n", ip_source);
		for (size_t i = 0; i < a.n_ext; i++)
			printf("attached %s: xdp (%s), tc ingress+egress\n", a.ext[i], xdp_name(a.xdp_used[i]));
		for (size_t i = 0; i < a.n_pod; i++)
			printf("attached %s: tc ingress+egress\n", a.pod[i]);
		if (a.dp.cgroup_root)
			printf("socket LB %s on cgroup %s\n", sock_lb_name(a.dp.sock_lb), a.dp.cgroup_root);
		if (diags.n)
			printf("%zu object(s) rejected (see above)\n", diags.n);
		if (st.n_failed)
			printf("%u entr%s not written: a map is full (see above)\n", st.n_failed, st.n_failed == 1 ? "y" : "ies");
	}
out:
	cJSON_Delete(att);
	cJSON_Delete(warn);
	kxp_dp_close(dp);
	kxp_desired_free(&d);
	kxp_objects_free(&objs);
	kxp_diags_free(&diags);
	return ret;
}
