/* Node settings shared by `kxp sync` and `kxp agent`: defaults, the value
 * parsers and the per-flag switch, so both commands accept and word them
 * the same way. */
#include "lib/nodeopts.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/ip.h"

static const char *const flag_name[] = {
	[KXP_NO_NODE_NAME - KXP_NO_NODE_NAME] = "--node-name",
	[KXP_NO_NODE_IP - KXP_NO_NODE_NAME] = "--node-ip",
	[KXP_NO_CLUSTER - KXP_NO_NODE_NAME] = "--cluster-cidr",
	[KXP_NO_SERVICE - KXP_NO_NODE_NAME] = "--service-cidr",
	[KXP_NO_NODEPORT - KXP_NO_NODE_NAME] = "--nodeport-addresses",
	[KXP_NO_MASQ - KXP_NO_NODE_NAME] = "--masquerade-all",
	[KXP_NO_ALGO - KXP_NO_NODE_NAME] = "--lb-algorithm",
	[KXP_NO_EXT - KXP_NO_NODE_NAME] = "--external-dev",
	[KXP_NO_POD - KXP_NO_NODE_NAME] = "--pod-dev",
	[KXP_NO_XDP - KXP_NO_NODE_NAME] = "--xdp-mode",
	[KXP_NO_MAXFE - KXP_NO_NODE_NAME] = "--max-frontends",
	[KXP_NO_MAXBE - KXP_NO_NODE_NAME] = "--max-backends",
	[KXP_NO_MAXSLOT - KXP_NO_NODE_NAME] = "--max-slots",
	[KXP_NO_MAXCT - KXP_NO_NODE_NAME] = "--max-ct",
	[KXP_NO_MAXSNAT - KXP_NO_NODE_NAME] = "--max-snat",
	[KXP_NO_MAGLEV_M - KXP_NO_NODE_NAME] = "--maglev-table-size",
	[KXP_NO_CGROUP - KXP_NO_NODE_NAME] = "--cgroup-root",
	[KXP_NO_SOCKLB - KXP_NO_NODE_NAME] = "--socket-lb",
	[KXP_NO_SNAT_ADDR - KXP_NO_NODE_NAME] = "--snat-addr",
	[KXP_NO_SNAT_PORTS - KXP_NO_NODE_NAME] = "--snat-port-range",
};

static void __attribute__((format(printf, 3, 4))) report(struct kxp_nodeopts *o, bool warning, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (o->report)
		o->report(o, warning, buf);
}

void kxp_nodeopts_defaults(struct kxp_nodeopts *o)
{
	memset(o, 0, sizeof(*o));
	o->node.nodeport_primary = true;
	o->node.default_algo = KXP_ALGO_RANDOM;
	o->xdp_mode = KXP_XDP_AUTO;
	o->dp.sock_lb = KXP_SOCK_ALL; /* pods where the socket path matches kube-proxy (lib/sock.h) */
}

int kxp_nodeopts_u32(struct kxp_nodeopts *o, const char *what, const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v == 0 || v > UINT32_MAX / 2) {
		report(o, false, "%s: \"%s\" is not a positive number", what, s);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

/* --max-snat / kxp.maxSNAT: still taken (a number, checked), and ignored with
 * a warning: there is no kxp_snat4 any more, a masqueraded flow's port claim
 * is its REPLY entry in kxp_ct4. */
int kxp_nodeopts_max_snat(struct kxp_nodeopts *o, const char *what, const char *s)
{
	uint32_t ignored;
	int err = kxp_nodeopts_u32(o, what, s, &ignored);

	if (!err)
		report(o, true, "%s is ignored: masquerade port claims live in kxp_ct4 (size that with the ct limit)",
		       what);
	return err;
}

/* Comma-separated CIDRs appended to v. */
int kxp_nodeopts_cidrs(struct kxp_nodeopts *o, const char *what, const char *s, struct kxp_cidr4 *v, size_t *n)
{
	const char *sep = o->dual_stack_lists ? ", " : ",";
	char buf[512], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, sep, &save); tok; tok = strtok_r(NULL, sep, &save)) {
		if (*n >= KXP_MAX_CIDRS) {
			report(o, false, "%s: at most %d CIDRs", what, KXP_MAX_CIDRS);
			return -EINVAL;
		}
		if (kxp_parse_cidr4(tok, &v[*n])) {
			/* IPv6 ranges belong to the other family: not an error */
			if (o->dual_stack_lists && strchr(tok, ':')) {
				report(o, true, "%s: \"%s\" is IPv6, not served yet; ignored", what, tok);
				continue;
			}
			report(o, false, "%s: \"%s\" is not an IPv4 CIDR (a.b.c.d/n)", what, tok);
			return -EINVAL;
		}
		(*n)++;
	}
	return 0;
}

int kxp_nodeopts_nodeport(struct kxp_nodeopts *o, const char *what, const char *s)
{
	if (!strcmp(s, "primary")) {
		o->node.nodeport_primary = true;
		o->node.n_nodeport = 0;
		return 0;
	}
	o->node.nodeport_primary = false;
	return kxp_nodeopts_cidrs(o, what, s, o->node.nodeport, &o->node.n_nodeport);
}

int kxp_nodeopts_node_ip(struct kxp_nodeopts *o, const char *what, const char *s)
{
	const size_t max = sizeof(o->node.node_ips) / sizeof(o->node.node_ips[0]);
	uint32_t ip;

	if (kxp_parse_ip4(s, &ip)) {
		report(o, false, "%s: \"%s\" is not an IPv4 address", what, s);
		return -EINVAL;
	}
	if (o->node.n_node_ips >= max) {
		report(o, false, "%s: at most %zu addresses", what, max);
		return -EINVAL;
	}
	o->node.node_ips[o->node.n_node_ips++] = ip;
	return 0;
}

int kxp_nodeopts_dev(struct kxp_nodeopts *o, const char *what, const char *name, char (*v)[16], size_t *n)
{
	if (*n >= KXP_NODEOPTS_MAX_DEVS) {
		report(o, false, "%s: at most %d devices", what, KXP_NODEOPTS_MAX_DEVS);
		return -EINVAL;
	}
	if (!*name || strlen(name) >= 16) {
		report(o, false, "%s: \"%s\" is not a device name or pattern (1..15 characters)", what, name);
		return -EINVAL;
	}
	snprintf(v[(*n)++], 16, "%s", name);
	return 0;
}

int kxp_nodeopts_algo(struct kxp_nodeopts *o, const char *what, const char *s)
{
	if (!strcmp(s, "random"))
		o->node.default_algo = KXP_ALGO_RANDOM;
	else if (!strcmp(s, "rr"))
		o->node.default_algo = KXP_ALGO_RR;
	else if (!strcmp(s, "maglev"))
		o->node.default_algo = KXP_ALGO_MAGLEV;
	else {
		report(o, false, "%s: \"%s\" is not random, rr or maglev", what, s);
		return -EINVAL;
	}
	return 0;
}

int kxp_nodeopts_xdp(struct kxp_nodeopts *o, const char *what, const char *s)
{
	if (!strcmp(s, "auto"))
		o->xdp_mode = KXP_XDP_AUTO;
	else if (!strcmp(s, "native"))
		o->xdp_mode = KXP_XDP_NATIVE;
	else if (!strcmp(s, "generic"))
		o->xdp_mode = KXP_XDP_GENERIC;
	else if (!strcmp(s, "off"))
		o->xdp_mode = KXP_XDP_OFF;
	else {
		report(o, false, "%s: \"%s\" is not auto, native, generic or off", what, s);
		return -EINVAL;
	}
	o->dp.no_xdp = o->xdp_mode == KXP_XDP_OFF; /* off loads no XDP object */
	return 0;
}

static int socket_lb(struct kxp_nodeopts *o, const char *what, const char *s)
{
	o->sock_lb_set = true;
	if (!strcmp(s, "host"))
		o->dp.sock_lb = KXP_SOCK_HOST;
	else if (!strcmp(s, "all"))
		o->dp.sock_lb = KXP_SOCK_ALL;
	else if (!strcmp(s, "off"))
		o->dp.sock_lb = KXP_SOCK_OFF;
	else {
		report(o, false, "%s: \"%s\" is not host, all or off", what, s);
		return -EINVAL;
	}
	return 0;
}

static int snat_ports(struct kxp_nodeopts *o, const char *what, const char *s)
{
	unsigned lo, hi;
	int n = 0;

	if (sscanf(s, "%u-%u%n", &lo, &hi, &n) != 2 || s[n] || !lo || lo > hi || hi > 65535) {
		report(o, false, "%s: \"%s\" is not MIN-MAX within 1-65535", what, s);
		return -EINVAL;
	}
	o->node.snat_port_min = (uint16_t)lo;
	o->node.snat_port_max = (uint16_t)hi;
	return 0;
}

/* A list flag: the first one given replaces the list (a config file's). */
static void list_flag(struct kxp_nodeopts *o, int id, size_t *n)
{
	unsigned bit = 1u << (id - KXP_NO_NODE_NAME);

	if (!(o->given & bit))
		*n = 0;
	o->given |= bit;
}

int kxp_nodeopts_set(struct kxp_nodeopts *o, int id, const char *arg)
{
	unsigned np_bit = 1u << (KXP_NO_NODEPORT - KXP_NO_NODE_NAME);
	const char *what;
	int err = 0;

	if (id < KXP_NO_NODE_NAME || id > KXP_NO_SNAT_PORTS)
		return -ENOENT;
	what = flag_name[id - KXP_NO_NODE_NAME];
	switch (id) {
	case KXP_NO_NODE_NAME:
		snprintf(o->node_name, sizeof(o->node_name), "%s", arg);
		break;
	case KXP_NO_NODE_IP:
		list_flag(o, id, &o->node.n_node_ips);
		return kxp_nodeopts_node_ip(o, what, arg);
	case KXP_NO_CLUSTER:
		list_flag(o, id, &o->node.n_cluster);
		return kxp_nodeopts_cidrs(o, what, arg, o->node.cluster, &o->node.n_cluster);
	case KXP_NO_SERVICE:
		list_flag(o, id, &o->node.n_service);
		return kxp_nodeopts_cidrs(o, what, arg, o->node.service, &o->node.n_service);
	case KXP_NO_NODEPORT:
		/* reported, then applied anyway: the agent lists every problem */
		if (o->given & np_bit) {
			report(o, false, "--nodeport-addresses given twice (use a comma-separated list)");
			err = -EINVAL;
		}
		o->given |= np_bit;
		o->node.n_nodeport = 0;
		if (kxp_nodeopts_nodeport(o, what, arg))
			return -EINVAL;
		return err;
	case KXP_NO_MASQ:
		o->node.masquerade_all = true;
		break;
	case KXP_NO_ALGO:
		return kxp_nodeopts_algo(o, what, arg);
	case KXP_NO_EXT:
		list_flag(o, id, &o->n_ext);
		return kxp_nodeopts_dev(o, what, arg, o->ext_devs, &o->n_ext);
	case KXP_NO_POD:
		list_flag(o, id, &o->n_pod);
		return kxp_nodeopts_dev(o, what, arg, o->pod_devs, &o->n_pod);
	case KXP_NO_XDP:
		return kxp_nodeopts_xdp(o, what, arg);
	case KXP_NO_MAXFE:
		return kxp_nodeopts_u32(o, what, arg, &o->dp.max_frontends);
	case KXP_NO_MAXBE:
		return kxp_nodeopts_u32(o, what, arg, &o->dp.max_backends);
	case KXP_NO_MAXSLOT:
		return kxp_nodeopts_u32(o, what, arg, &o->dp.max_slots);
	case KXP_NO_MAXCT:
		return kxp_nodeopts_u32(o, what, arg, &o->dp.max_ct);
	case KXP_NO_MAXSNAT:
		return kxp_nodeopts_max_snat(o, what, arg);
	case KXP_NO_MAGLEV_M: /* prime, 251..131071: checked by the loader */
		return kxp_nodeopts_u32(o, what, arg, &o->dp.maglev_m);
	case KXP_NO_CGROUP: /* argv lives as long as the command */
		o->dp.cgroup_root = arg;
		break;
	case KXP_NO_SOCKLB:
		return socket_lb(o, what, arg);
	case KXP_NO_SNAT_ADDR:
		if (kxp_parse_ip4(arg, &o->node.snat_addr) || !o->node.snat_addr) {
			report(o, false, "%s: \"%s\" is not an IPv4 address", what, arg);
			return -EINVAL;
		}
		break;
	case KXP_NO_SNAT_PORTS:
		return snat_ports(o, what, arg);
	}
	return 0;
}
