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
#include "lib/nodeopts.h"
#include "model/model.h"

static const char sync_help[] =
	"Usage: kxp sync --instance NAME --from-file PATH [--from-file PATH]...\n"
	"                [--node-name NAME] [--node-ip IP]... [--cluster-cidr CIDR]...\n"
	"                [--service-cidr CIDR]... [--nodeport-addresses { primary | CIDR[,CIDR]... }]\n"
	"                [--masquerade-all] [--lb-algorithm { random | rr | maglev }]\n"
	"                [--snat-addr IP] [--snat-port-range MIN-MAX]\n"
	"                [--external-dev DEV]... [--pod-dev DEV]... [--xdp-mode { auto | native | generic | off }]\n"
	"                [--max-frontends N] [--max-backends N] [--max-slots N] [--max-ct N]\n"
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
	"cgroup v2 directory: all (the default) = sockets of every namespace, pods' TCP where\n"
	"kube-proxy would not masquerade (the rest stays with TC), host = this namespace only,\n"
	"off = detach; without --cgroup-root they are left as they are.\n";

#define MAX_PATHS 64

struct sync_args {
	const char *instance;
	const char *paths[MAX_PATHS];
	size_t n_paths;
	struct kxp_nodeopts o;     /* node settings, devices, map sizes (o.dp) */
	int ext_idx[KXP_NODEOPTS_MAX_DEVS], pod_idx[KXP_NODEOPTS_MAX_DEVS];
	enum kxp_xdp_mode xdp_used[KXP_NODEOPTS_MAX_DEVS];
};

/* After a layout migration (kxp_dp_migrated_from) the maps the attached
 * programs use are unpinned: every device of this network namespace that
 * the instance has attached and this sync did not name gets the new
 * programs as recorded (TC, and XDP in the recorded mode), or it would go
 * on serving the old maps' state. Socket hooks come with --cgroup-root. */
static int reattach_recorded(const struct sync_args *a, struct kxp_dp *dp, cJSON *warn)
{
	struct kxp_dp_att att[64];
	char line[256];
	int n = kxp_dp_attachments(a->instance, att, 64), err;

	snprintf(line, sizeof(line),
		 "instance %s: pinned maps of layout version %d migrated to %d (service maps recreated, flows kept: %ld conntrack entries copied)",
		 a->instance, kxp_dp_migrated_from(dp), KXP_LAYOUT_VERSION, kxp_dp_flows_copied(dp));
	fprintf(stderr, "kxp: info: %s\n", line);
	if (warn)
		cJSON_AddItemToArray(warn, cJSON_CreateString(line));
	for (int i = 0; i < n; i++) {
		enum kxp_xdp_mode used = KXP_XDP_OFF;
		bool named = false;

		for (size_t j = 0; j < a->o.n_ext; j++)
			named |= a->ext_idx[j] == att[i].ifindex;
		for (size_t j = 0; j < a->o.n_pod; j++)
			named |= a->pod_idx[j] == att[i].ifindex;
		if (named || !att[i].here)
			continue;
		if (att[i].tc && (err = kxp_dp_attach_tc(dp, att[i].ifindex))) {
			cli_error("sync: device %s (attached before the migration): TC: %s", att[i].ifname,
				  strerror(-err));
			return err;
		}
		if (att[i].xdp != KXP_XDP_OFF && (err = kxp_dp_attach_xdp(dp, att[i].ifindex, att[i].xdp, &used))) {
			cli_error("sync: device %s (attached before the migration): XDP: %s", att[i].ifname,
				  strerror(-err));
			return err;
		}
		fprintf(stderr, "kxp: info: device %s: attached again (tc%s%s)\n", att[i].ifname,
			att[i].xdp != KXP_XDP_OFF ? ", xdp " : "", att[i].xdp != KXP_XDP_OFF ? kxp_xdp_mode_name(used) : "");
	}
	return 0;
}

/* The first problem ends the parse (parse_args stops at the error); a
 * warning (an option taken and ignored) does not. */
static void sync_report(struct kxp_nodeopts *o, bool warning, const char *msg)
{
	(void)o;
	if (warning)
		fprintf(stderr, "kxp: warning: sync: %s\n", msg);
	else
		cli_error("sync: %s", msg);
}

enum {
	O_INSTANCE = 256, O_FROM,
};

static const struct option sync_opts[] = {
	{ "instance", required_argument, NULL, O_INSTANCE },
	{ "from-file", required_argument, NULL, O_FROM },
	KXP_NODEOPTS_LONGOPTS,
	KXP_NODEOPTS_SNAT_LONGOPTS,
	{ "help", no_argument, NULL, 'h' },
	{},
};

/* Returns 0, 1 (error printed) or -1 for help. */
static int parse_args(int argc, char **argv, struct sync_args *a)
{
	int c, err;

	kxp_nodeopts_defaults(&a->o);
	a->o.report = sync_report;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", sync_opts, NULL)) != -1) {
		err = kxp_nodeopts_set(&a->o, c, optarg);
		if (err && err != -ENOENT)
			return 1;
		if (!err)
			continue;
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
	if (a->o.sock_lb_set && !a->o.dp.cgroup_root) {
		cli_error("sync: --socket-lb needs --cgroup-root PATH");
		return 1;
	}
	if (!a->n_paths) {
		cli_error("sync: at least one --from-file PATH is required");
		return 1;
	}
	if (!a->o.node_name[0] && gethostname(a->o.node_name, sizeof(a->o.node_name) - 1)) {
		cli_error("sync: cannot read the hostname: %s; pass --node-name", strerror(errno));
		return 1;
	}
	/* Devices are checked before anything changes. */
	for (size_t i = 0; i < a->o.n_ext + a->o.n_pod; i++) {
		bool ext = i < a->o.n_ext;
		const char *name = ext ? a->o.ext_devs[i] : a->o.pod_devs[i - a->o.n_ext];
		int idx = (int)if_nametoindex(name);

		if (!idx) {
			cli_error("sync: device %s: %s", name, strerror(errno));
			return 1;
		}
		if (ext)
			a->ext_idx[i] = idx;
		else
			a->pod_idx[i - a->o.n_ext] = idx;
	}
	return 0;
}

static const char *sock_lb_name(int m)
{
	return m == KXP_SOCK_HOST ? "host" : m == KXP_SOCK_ALL ? "all" : "off";
}

/* Node addresses: --node-ip, else the Node object's, else the namespace's. */
static int resolve_node_ips(struct sync_args *a, const struct kxp_objects *objs, const char **source)
{
	const struct k8s_node *node;
	struct kxp_nl_addr nl[16];
	size_t n = 0;
	int err;

	*source = "--node-ip";
	if (a->o.node.n_node_ips)
		return 0;
	node = kxp_objects_find_node(objs, a->o.node_name);
	if (node && node->n_internal_ips) {
		*source = "Node";
		for (size_t i = 0; i < node->n_internal_ips && i < 16; i++)
			a->o.node.node_ips[a->o.node.n_node_ips++] = node->internal_ips[i];
		return 0;
	}
	*source = "netlink";
	err = kxp_nl_ipv4_addrs(nl, 16, &n);
	if (err) {
		cli_error("sync: cannot list the namespace's addresses: %s; pass --node-ip", strerror(-err));
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		a->o.node.node_ips[a->o.node.n_node_ips++] = nl[i].addr;
	if (!a->o.node.n_node_ips) {
		cli_error("sync: no node address (no Node %s in the files, no IPv4 address on a device); pass --node-ip",
			  a->o.node_name);
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
	a.o.node.node_name = a.o.node_name;
	a.o.dp.instance = a.instance;
	a.o.dp.errbuf = errbuf;
	a.o.dp.errbuf_len = sizeof(errbuf);

	for (size_t i = 0; i < a.n_paths; i++) {
		err = kxp_objects_load_path(&objs, a.paths[i], &diags);
		if (err) {
			cli_error("sync: file %s: %s", a.paths[i], strerror(-err));
			goto out;
		}
	}
	if (resolve_node_ips(&a, &objs, &ip_source))
		goto out;
	err = kxp_model_build(&objs, &a.o.node, &d, &diags);
	if (err) {
		cli_error("sync: building the desired state: %s", strerror(-err));
		goto out;
	}
	for (size_t i = 0; i < diags.n; i++) {
		kxp_diag_format(&diags.v[i], line, sizeof(line));
		fprintf(stderr, "kxp: rejected: %s\n", line);
	}

	err = kxp_dp_open(&dp, &a.o.dp);
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
	/* what the kernel refused is off, said once; the rest serves */
	if (a.o.xdp_mode != KXP_XDP_OFF && a.o.n_ext && kxp_dp_xdp_error(dp)[0]) {
		snprintf(line, sizeof(line), "XDP off: %s; external devices are served by TC ingress",
			 kxp_dp_xdp_error(dp));
		fprintf(stderr, "kxp: warning: %s\n", line);
		if (warn)
			cJSON_AddItemToArray(warn, cJSON_CreateString(line));
	}
	if (a.o.dp.cgroup_root && kxp_dp_sock_error(dp)[0]) {
		snprintf(line, sizeof(line), "socket LB off: %s", kxp_dp_sock_error(dp));
		fprintf(stderr, "kxp: warning: %s\n", line);
		if (warn)
			cJSON_AddItemToArray(warn, cJSON_CreateString(line));
	}
	for (size_t i = 0; i < a.o.n_ext + a.o.n_pod; i++) {
		bool ext = i < a.o.n_ext;
		const char *name = ext ? a.o.ext_devs[i] : a.o.pod_devs[i - a.o.n_ext];
		int idx = ext ? a.ext_idx[i] : a.pod_idx[i - a.o.n_ext];
		enum kxp_xdp_mode used = KXP_XDP_OFF;
		cJSON *o;

		/* TC first: it serves the device whatever becomes of XDP */
		err = kxp_dp_attach_tc(dp, idx);
		if (err) {
			cli_error("sync: device %s: TC ingress/egress: %s", name, attach_err(err));
			goto out;
		}
		if (ext) {
			err = kxp_dp_attach_xdp(dp, idx, a.o.xdp_mode, &used);
			if (err) {
				cli_error("sync: device %s: XDP %s: %s", name, kxp_xdp_mode_name(a.o.xdp_mode), attach_err(err));
				goto out;
			}
			a.xdp_used[i] = used;
			if (a.o.xdp_mode == KXP_XDP_NATIVE && used == KXP_XDP_GENERIC) {
				snprintf(line, sizeof(line), "device %s: the driver refused native XDP, attached in generic mode",
					 name);
				fprintf(stderr, "kxp: warning: %s\n", line);
				if (warn)
					cJSON_AddItemToArray(warn, cJSON_CreateString(line));
			}
		}
		if (att) {
			o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "dev", name);
			cJSON_AddStringToObject(o, "role", ext ? "external" : "pod");
			cJSON_AddStringToObject(o, "xdp", ext ? kxp_xdp_mode_name(used) : "off");
			cJSON_AddBoolToObject(o, "tc", true);
			cJSON_AddItemToArray(att, o);
		}
	}

	/* expired flows out of kxp_ct4 (no LRU): what the agent does every
	 * 10 s, once per sync without one */
	{
		struct kxp_ct_gc_stats gst;

		err = kxp_dp_ct_gc(dp, &gst);
		if (err) {
			snprintf(line, sizeof(line), "conntrack collector: %s (expired flows stay in kxp_ct4)",
				 strerror(-err));
			fprintf(stderr, "kxp: warning: %s\n", line);
			if (warn)
				cJSON_AddItemToArray(warn, cJSON_CreateString(line));
		}
	}

	if (kxp_dp_migrated_from(dp)) {
		err = reattach_recorded(&a, dp, warn);
		if (err)
			goto out;
	}

	ret = diags.n || st.n_failed ? 2 : 0;
	if (kxp_cli.json) {
		cJSON *ap, *ips;

		doc = cJSON_CreateObject();
		cJSON_AddStringToObject(doc, "instance", a.instance);
		cJSON_AddStringToObject(doc, "node_name", a.o.node_name);
		ips = cJSON_AddArrayToObject(doc, "node_ips");
		for (size_t i = 0; i < a.o.node.n_node_ips; i++)
			cJSON_AddItemToArray(ips, cJSON_CreateString(kxp_ip4_str(a.o.node.node_ips[i], ipb)));
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
		if (a.o.dp.cgroup_root) {
			cJSON *so = cJSON_AddObjectToObject(doc, "socket_lb");

			cJSON_AddStringToObject(so, "cgroup", a.o.dp.cgroup_root);
			cJSON_AddStringToObject(so, "mode",
						kxp_dp_sock_error(dp)[0] ? "off" : sock_lb_name(a.o.dp.sock_lb));
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
		printf("node %s: addresses", a.o.node_name);
		for (size_t i = 0; i < a.o.node.n_node_ips; i++)
			printf(" %s", kxp_ip4_str(a.o.node.node_ips[i], ipb));
		printf(" (from %s)\n", ip_source);
		for (size_t i = 0; i < a.o.n_ext; i++)
			if (a.xdp_used[i] == KXP_XDP_OFF)
				printf("attached %s: tc ingress+egress (no xdp)\n", a.o.ext_devs[i]);
			else
				printf("attached %s: xdp (%s), tc ingress+egress\n", a.o.ext_devs[i],
				       kxp_xdp_mode_name(a.xdp_used[i]));
		for (size_t i = 0; i < a.o.n_pod; i++)
			printf("attached %s: tc ingress+egress\n", a.o.pod_devs[i]);
		if (a.o.dp.cgroup_root && !kxp_dp_sock_error(dp)[0])
			printf("socket LB %s on cgroup %s\n", sock_lb_name(a.o.dp.sock_lb), a.o.dp.cgroup_root);
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
