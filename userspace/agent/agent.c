/* The agent's main loop (see agent.h): reflectors feed the engine, netlink
 * events attach devices as they appear and follow the node's addresses,
 * and the HTTP servers read what each iteration publishes. This is the
 * daemon's top level, so it logs (the pieces below it do not). */
#include "agent/agent.h"

#include <errno.h>
#include <fnmatch.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>

#include "agent/engine.h"
#include "agent/strmap.h"
#include "dataplane/probe.h"
#include "http/http.h"
#include "k8s/client.h"
#include "lib/ip.h"
#include "lib/log.h"
#include "lib/netlink.h"

const char *const kxp_agent_default_pod_devs[] = {
	"veth*", "cali*", "lxc*", "cni*", "cbr0", "flannel*", "cilium_*", "weave", "kube-bridge", "tunl0",
	"vxlan.calico", "antrea-*", "ovn-k8s-*", "genev_sys_*", NULL,
};

#define SVC_LABELS "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless"
#define KXP_MAX_LINKS 1024
#define DRAIN_BATCH 8192

struct link {
	int ifindex;
	char name[IFNAMSIZ];
	bool attached, ext;
	enum kxp_xdp_mode xdp; /* what attach_link attached (OFF: TC only) */
};

struct agent {
	struct kxp_agent_cfg *cfg;
	struct kxp_dp *dp;
	struct kxp_engine eng;
	struct kxp_http *http;
	struct kxp_k8s_queue *q;
	struct kxp_reflector *refl[KXP_K8S__KINDS];
	struct kxp_k8s_conn conn;
	struct mnl_socket *nl;
	struct link links[KXP_MAX_LINKS];
	size_t n_links;
	struct kxp_nl_addr addrs[64];
	size_t n_addrs;
	bool addrs_dirty, links_dirty;
	uint32_t hc_addrs[16];
	size_t n_hc_addrs;
	bool retry;
	/* healthCheckNodePort servers that could not open (kube-proxy still
	 * holds the port while both run during a migration): retried */
	bool hc_failed;
	uint64_t hc_retry_ns;
	char hc_err[256];
	/* Services with IPv6 ClusterIPs, reported once per change of state */
	struct strmap fam;
	size_t n_dual, n_v6only;
	/* the conntrack collector (dataplane/ctgc.c) */
	uint64_t gc_next_ns;
	int gc_err;
	uint64_t gc_runs, gc_errors, gc_deleted;
	double gc_last_s;
};

static const char *const kind_name[] = { "Service", "EndpointSlice", "Node" };

static void report_families(struct agent *a);

static uint64_t now_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- devices ------------------------------------------------------------------ */

static bool is_pod_dev(const struct agent *a, const char *name)
{
	if (a->cfg->opts.n_pod) {
		for (size_t i = 0; i < a->cfg->opts.n_pod; i++)
			if (!fnmatch(a->cfg->opts.pod_devs[i], name, 0))
				return true;
		return false;
	}
	for (size_t i = 0; kxp_agent_default_pod_devs[i]; i++)
		if (!fnmatch(kxp_agent_default_pod_devs[i], name, 0))
			return true;
	return false;
}

/* --external-dev, else the devices holding a node address on a subnet (a
 * /32 on a host-side veth is a pod route's anchor, not an uplink). */
static bool is_ext_dev(const struct agent *a, const struct link *l)
{
	uint32_t ips[16];
	size_t n;

	if (a->cfg->opts.n_ext) {
		for (size_t i = 0; i < a->cfg->opts.n_ext; i++)
			if (!strcmp(a->cfg->opts.ext_devs[i], l->name))
				return true;
		return false;
	}
	if (!strcmp(l->name, "lo") || is_pod_dev(a, l->name))
		return false;
	n = a->eng.cfg.n_node_ips;
	memcpy(ips, a->eng.cfg.node_ips, sizeof(ips));
	for (size_t i = 0; i < a->n_addrs; i++) {
		if (a->addrs[i].ifindex != l->ifindex || a->addrs[i].prefixlen >= 32)
			continue;
		if (!n)
			return true; /* nothing resolved yet: any subnet address */
		for (size_t k = 0; k < n; k++)
			if (ips[k] == a->addrs[i].addr)
				return true;
	}
	return false;
}

/* Once at start: the kernel, what it lacks and the fallback for each, and
 * what kxp loaded (the same facts as `kxp status` and the metrics). */
static void log_capabilities(struct agent *a)
{
	const struct kxp_caps *c = kxp_probe();
	uint32_t loaded = kxp_dp_loaded(a->dp);

	pr_info("kernel %s; loaded: tc%s%s%s", c->kernel, (loaded & KXP_LOADED_XDP) ? " xdp" : "",
		(loaded & KXP_LOADED_SOCK) ? " socket-hooks" : "",
		(loaded & KXP_LOADED_NOLOOP) ? " (objects without bpf_loop)" : "");
	for (int i = 0; i < KXP_CAP__COUNT; i++) {
		const struct kxp_cap_desc *d = kxp_cap_desc(i);

		if (!c->have[i] && d->need != KXP_NEED_CORE)
			pr_info("kernel lacks %s (since %s): %s", d->name, d->since, d->without);
	}
	if (a->cfg->opts.xdp_mode != KXP_XDP_OFF && kxp_dp_xdp_error(a->dp)[0])
		pr_warn("XDP off: %s; external devices are served by TC ingress", kxp_dp_xdp_error(a->dp));
	if (a->cfg->opts.dp.cgroup_root && kxp_dp_sock_error(a->dp)[0])
		pr_warn("socket LB off: %s", kxp_dp_sock_error(a->dp));
}

static const char *attach_err(int err)
{
	return err == -EBUSY ? "another program holds kxp's hook (not kxp's, left alone)" : strerror(-err);
}

static void attach_link(struct agent *a, struct link *l)
{
	bool ext, pod;
	int err;

	/* migrated pins (kxp_dp_migrated_from): the old programs keep serving
	 * on the old maps until the new maps are written */
	if (l->attached || (kxp_dp_migrated_from(a->dp) && !a->eng.programmed))
		return;
	ext = is_ext_dev(a, l);
	pod = !ext && is_pod_dev(a, l->name);
	if (!ext && !pod)
		return;
	/* TC first: it serves the device whatever becomes of XDP */
	err = kxp_dp_attach_tc(a->dp, l->ifindex);
	if (err) {
		pr_warn("device %s: TC ingress/egress: %s", l->name, attach_err(err));
		return;
	}
	l->xdp = KXP_XDP_OFF;
	if (ext) {
		enum kxp_xdp_mode used = KXP_XDP_OFF;

		err = kxp_dp_attach_xdp(a->dp, l->ifindex, a->cfg->opts.xdp_mode, &used);
		if (err)
			pr_warn("device %s: XDP: %s; TC ingress serves it", l->name, attach_err(err));
		else if (a->cfg->opts.xdp_mode == KXP_XDP_NATIVE && used == KXP_XDP_GENERIC)
			pr_warn("device %s: the driver refused native XDP, attached in generic mode", l->name);
		l->xdp = used;
	}
	l->attached = true;
	l->ext = ext;
	if (ext)
		pr_info("attached %s (external: xdp %s, tc)", l->name, kxp_xdp_mode_name(l->xdp));
	else
		pr_info("attached %s (pod: tc)", l->name);
}

static struct link *link_find(struct agent *a, int ifindex)
{
	for (size_t i = 0; i < a->n_links; i++)
		if (a->links[i].ifindex == ifindex)
			return &a->links[i];
	return NULL;
}

static void link_seen(struct agent *a, int ifindex, const char *name)
{
	struct link *l = link_find(a, ifindex);

	if (!l) {
		if (a->n_links >= KXP_MAX_LINKS)
			return;
		l = &a->links[a->n_links++];
		memset(l, 0, sizeof(*l));
		l->ifindex = ifindex;
	} else if (strcmp(l->name, name)) {
		l->attached = false; /* renamed: judge it again */
	}
	snprintf(l->name, sizeof(l->name), "%s", name);
	attach_link(a, l);
}

static void link_gone(struct agent *a, int ifindex)
{
	struct link *l = link_find(a, ifindex);

	if (!l)
		return;
	/* the kernel dropped its XDP program and clsact filters with it */
	if (l->attached) {
		pr_info("device %s is gone", l->name);
		if (a->dp)
			kxp_dp_forget_dev(a->dp, ifindex);
	}
	*l = a->links[--a->n_links];
}

static int on_link(const struct nlmsghdr *nlh, void *data)
{
	struct agent *a = data;
	struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);
	struct nlattr *at;
	const char *name = NULL;

	if (nlh->nlmsg_type == RTM_NEWADDR || nlh->nlmsg_type == RTM_DELADDR) {
		a->addrs_dirty = true;
		return MNL_CB_OK;
	}
	if (nlh->nlmsg_type != RTM_NEWLINK && nlh->nlmsg_type != RTM_DELLINK)
		return MNL_CB_OK;
	if (nlh->nlmsg_type == RTM_DELLINK) {
		link_gone(a, ifm->ifi_index);
		return MNL_CB_OK;
	}
	mnl_attr_for_each(at, nlh, sizeof(*ifm)) if (mnl_attr_get_type(at) == IFLA_IFNAME) name = mnl_attr_get_str(at);
	if (name)
		link_seen(a, ifm->ifi_index, name);
	return MNL_CB_OK;
}

/* Every link of the namespace (a dump on a separate socket). */
static int dump_links(struct agent *a)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);
	struct nlmsghdr *nlh;
	struct rtgenmsg *rt;
	unsigned seq = (unsigned)time(NULL), portid;
	int ret;

	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		mnl_socket_close(nl);
		return ret;
	}
	portid = mnl_socket_get_portid(nl);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	rt = mnl_nlmsg_put_extra_header(nlh, sizeof(*rt));
	rt->rtgen_family = AF_UNSPEC;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		ret = -errno;
		mnl_socket_close(nl);
		return ret;
	}
	while ((ret = (int)mnl_socket_recvfrom(nl, buf, sizeof(buf))) > 0) {
		ret = mnl_cb_run(buf, (size_t)ret, seq, portid, on_link, a);
		if (ret <= MNL_CB_STOP)
			break;
	}
	mnl_socket_close(nl);
	return ret < 0 ? -errno : 0;
}

static void refresh_addrs(struct agent *a)
{
	uint32_t ips[16];
	size_t n = 0;
	int err;

	a->addrs_dirty = false;
	err = kxp_nl_ipv4_addrs(a->addrs, 64, &a->n_addrs);
	if (err) {
		pr_warn("cannot list the namespace's addresses: %s", strerror(-err));
		return;
	}
	for (size_t i = 0; i < a->n_addrs && n < 16; i++)
		ips[n++] = a->addrs[i].addr;
	kxp_engine_set_nl_ips(&a->eng, ips, n);
	/* an uplink may now qualify */
	for (size_t i = 0; i < a->n_links; i++)
		attach_link(a, &a->links[i]);
}

static int nl_monitor_open(struct agent *a)
{
	a->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!a->nl)
		return -errno;
	if (mnl_socket_bind(a->nl, RTMGRP_LINK | RTMGRP_IPV4_IFADDR, MNL_SOCKET_AUTOPID) < 0)
		return -errno;
	return 0;
}

static void nl_read(struct agent *a)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	ssize_t n;

	while ((n = mnl_socket_recvfrom(a->nl, buf, sizeof(buf))) > 0)
		mnl_cb_run(buf, (size_t)n, 0, 0, on_link, a);
	if (n < 0 && errno == ENOBUFS) {
		/* events were lost: read the whole state again */
		pr_warn("netlink: events lost, re-reading links and addresses");
		a->addrs_dirty = true;
		dump_links(a);
	}
}

/* ---- API events ----------------------------------------------------------------- */

static void report_diags(struct agent *a)
{
	char line[1024];

	for (size_t i = 0; i < a->eng.diags.n; i++) {
		kxp_diag_format(&a->eng.diags.v[i], line, sizeof(line));
		pr_warn("skipped: %s", line);
	}
	kxp_diags_free(&a->eng.diags);
}

static void drain(struct agent *a)
{
	struct kxp_k8s_event *ev;
	size_t n = 0;

	while (n++ < DRAIN_BATCH && (ev = kxp_k8s_queue_pop(a->q))) {
		if (ev->what == KXP_EV_ERROR) {
			pr_warn("%s watch: %s", ev->kind < KXP_K8S__KINDS ? kind_name[ev->kind] : "?",
				ev->msg ? ev->msg : "error");
		} else {
			if (ev->what == KXP_EV_SYNCED)
				pr_info("%s list complete", ev->kind < KXP_K8S__KINDS ? kind_name[ev->kind] : "?");
			kxp_engine_event(&a->eng, ev);
		}
		kxp_k8s_event_free(ev);
	}
	report_diags(a);
	if (n > 1)
		report_families(a);
}

static void sync_hc(struct agent *a, bool force)
{
	struct kxp_hc_want *v = NULL;
	uint32_t addrs[16];
	size_t n = 0, na;
	char err[256];

	na = kxp_engine_node_ips(&a->eng, addrs, 16);
	if (na != a->n_hc_addrs || memcmp(addrs, a->hc_addrs, na * sizeof(*addrs))) {
		/* addresses changed: reopen every server on the new ones */
		if (kxp_http_hc_sync(a->http, NULL, 0, NULL, 0, NULL, 0))
			pr_warn("closing health-check servers failed");
		memcpy(a->hc_addrs, addrs, na * sizeof(*addrs));
		a->n_hc_addrs = na;
		force = true;
	}
	if (!force && !a->eng.hc_changed)
		return;
	if (kxp_engine_hc_wants(&a->eng, &v, &n))
		return;
	if (kxp_http_hc_sync(a->http, v, n, a->n_hc_addrs ? a->hc_addrs : NULL, a->n_hc_addrs, err, sizeof(err))) {
		/* once per distinct failure: a retry every 2 s would repeat it */
		if (strcmp(err, a->hc_err))
			pr_warn("%s (retrying every 2 s; is kube-proxy still running?)", err);
		snprintf(a->hc_err, sizeof(a->hc_err), "%s", err);
		a->hc_failed = true;
		a->hc_retry_ns = now_mono_ns() + 2000000000ull;
	} else if (a->hc_failed) {
		pr_info("health-check servers: all open now");
		a->hc_failed = false;
		a->hc_err[0] = 0;
	}
	free(v);
}

/* ---- IPv6 ---------------------------------------------------------------------------- */

enum fam_state { FAM_V4 = 1, FAM_DUAL, FAM_V6ONLY };

/* kxp serves IPv4 only: say which Services are dual-stack (served on their
 * IPv4 ClusterIP only) or IPv6-only (not served), once per change. */
static void report_families(struct agent *a)
{
	size_t dual = 0, v6only = 0, n_gone = 0;
	char **gone = NULL;

	strmap_for_each(&a->eng.store.svcs, e)
	{
		const struct k8s_service *s = e->val;
		uintptr_t st = !s->has_ipv6 ? FAM_V4 : s->n_cluster_ips ? FAM_DUAL : FAM_V6ONLY;
		uintptr_t was = (uintptr_t)strmap_get(&a->fam, e->key);

		dual += st == FAM_DUAL;
		v6only += st == FAM_V6ONLY;
		if (st == was || (st == FAM_V4 && !was))
			continue;
		if (st == FAM_DUAL)
			pr_warn("Service %s is dual-stack: served on its IPv4 ClusterIP only (kxp serves IPv4 only)", e->key);
		else if (st == FAM_V6ONLY)
			pr_warn("Service %s is IPv6-only: not served (kxp serves IPv4 only)", e->key);
		else
			pr_info("Service %s is IPv4-only now", e->key);
		if (strmap_put(&a->fam, e->key, (void *)st, NULL))
			return;
	}
	/* forget Services that are gone */
	strmap_for_each(&a->fam, f)
	{
		if (!strmap_get(&a->eng.store.svcs, f->key)) {
			char **ng = realloc(gone, (n_gone + 1) * sizeof(*gone));

			if (!ng)
				break;
			gone = ng;
			gone[n_gone] = strdup(f->key);
			if (gone[n_gone])
				n_gone++;
		}
	}
	for (size_t i = 0; i < n_gone; i++) {
		strmap_del(&a->fam, gone[i]);
		free(gone[i]);
	}
	free(gone);
	if (dual != a->n_dual || v6only != a->n_v6only)
		pr_info("IPv6: %zu dual-stack Service%s served on IPv4 only, %zu IPv6-only Service%s not served", dual,
			dual == 1 ? "" : "s", v6only, v6only == 1 ? "" : "s");
	a->n_dual = dual;
	a->n_v6only = v6only;
}

static void publish(struct agent *a)
{
	struct kxp_http_status st;
	uint64_t dev = 0;

	kxp_engine_gauges(&a->eng);
	st = a->eng.st;
	st.threshold_ms = a->cfg->healthz_threshold_ms;
	for (int k = 0; k < KXP_K8S__KINDS; k++)
		if (a->refl[k])
			kxp_reflector_stats(a->refl[k], &st.refl[k]);
	for (size_t i = 0; i < a->n_links; i++)
		dev += a->links[i].attached;
	st.devices_attached = dev;
	st.ct_gc_runs = a->gc_runs;
	st.ct_gc_errors = a->gc_errors;
	st.ct_gc_deleted = a->gc_deleted;
	st.ct_gc_last_s = a->gc_last_s;
	kxp_http_publish(a->http, &st);
}

static void program(struct agent *a)
{
	bool was_gated = !a->eng.programmed;
	int err = kxp_engine_program(&a->eng);

	report_diags(a);
	a->retry = err && err != -ENOSPC;
	if (a->retry)
		pr_err("programming failed: %s (retrying)", a->eng.last_error[0] ? a->eng.last_error : strerror(-err));
	if (was_gated && a->eng.programmed) {
		pr_info("lists complete: programmed %llu frontends of %zu services",
			(unsigned long long)a->eng.total_fe, a->eng.store.svcs.n);
		if (kxp_dp_migrated_from(a->dp))
			for (size_t i = 0; i < a->n_links; i++)
				attach_link(a, &a->links[i]);
	}
	if (a->eng.programmed)
		sync_hc(a, a->hc_failed && now_mono_ns() >= a->hc_retry_ns);
}

/* Expired flows out of kxp_ct4 (it is no LRU: nothing else deletes them),
 * every KXP_CT_GC_INTERVAL_S, or KXP_CT_GC_BUSY_S while the table is half
 * full (a pass over a full table of live flows takes ~120 ms here). A
 * failure is logged once until it changes. */
static void ct_gc(struct agent *a)
{
	struct kxp_ct_gc_stats st;
	uint64_t now = now_mono_ns();
	int err;

	if (now < a->gc_next_ns)
		return;
	err = kxp_dp_ct_gc(a->dp, &st);
	a->gc_next_ns = now + (!err && st.scanned * 2 >= st.max ? KXP_CT_GC_BUSY_S : KXP_CT_GC_INTERVAL_S) *
				      1000000000ull;
	if (err && err != a->gc_err)
		pr_warn("conntrack collector: %s (expired flows stay in kxp_ct4 until it succeeds)", strerror(-err));
	else if (!err && a->gc_err)
		pr_info("conntrack collector: running again");
	a->gc_err = err;
	a->gc_runs++;
	a->gc_errors += err != 0;
	if (!err) {
		a->gc_deleted += st.deleted;
		a->gc_last_s = st.ms / 1e3;
	}
	if (!err && st.deleted)
		pr_debug("conntrack collector: %llu of %llu entries expired and deleted in %.1f ms",
			 (unsigned long long)st.deleted, (unsigned long long)st.scanned, st.ms);
}

/* ---- connection -------------------------------------------------------------------- */

static int read_small(const char *path, char **out)
{
	FILE *f = fopen(path, "r");
	size_t len = 0;
	char *t = NULL;

	if (!f)
		return -errno;
	if (getdelim(&t, &len, '\0', f) < 0 && !feof(f)) {
		fclose(f);
		free(t);
		return -EIO;
	}
	fclose(f);
	*out = t ? t : strdup("");
	return *out ? 0 : -ENOMEM;
}

static int make_conn(struct agent *a)
{
	struct kxp_agent_cfg *c = a->cfg;
	char err[256] = "";
	int r;

	if (c->kubeconfig[0]) {
		r = kxp_k8s_conn_kubeconfig(&a->conn, c->kubeconfig, err, sizeof(err));
		if (r) {
			pr_err("--kubeconfig %s: %s", c->kubeconfig, err[0] ? err : strerror(-r));
			return r;
		}
	} else if (c->master[0]) {
		a->conn.server = strdup(c->master);
		if (!a->conn.server)
			return -ENOMEM;
		if (c->ca_file[0] && !(a->conn.ca_file = strdup(c->ca_file)))
			return -ENOMEM;
		if (c->token_file[0]) {
			a->conn.token_file = strdup(c->token_file);
			r = read_small(c->token_file, &a->conn.token);
			if (r) {
				pr_err("--token-file %s: %s", c->token_file, strerror(-r));
				return r;
			}
			a->conn.token[strcspn(a->conn.token, "\r\n")] = 0;
		}
	} else {
		r = kxp_k8s_conn_in_cluster(&a->conn, c->sa_dir[0] ? c->sa_dir : NULL, err, sizeof(err));
		if (r) {
			pr_err("in-cluster configuration: %s", err[0] ? err : strerror(-r));
			return r;
		}
	}
	if (c->insecure)
		a->conn.insecure = true;
	return 0;
}

static int start_reflectors(struct agent *a)
{
	char field[320];

	snprintf(field, sizeof(field), "metadata.name=%s", a->cfg->opts.node_name);
	for (int k = 0; k < KXP_K8S__KINDS; k++) {
		struct kxp_reflector_opts o = {
			.kind = (enum kxp_k8s_kind)k,
			.label_selector = k == KXP_K8S_NODE ? NULL : SVC_LABELS,
			.field_selector = k == KXP_K8S_NODE ? field : NULL,
			.page_limit = a->cfg->page_limit,
			.watch_timeout_s = a->cfg->watch_timeout_ms / 1000 ? a->cfg->watch_timeout_ms / 1000 : 1,
			.backoff_min_ms = a->cfg->backoff_min_ms,
			.backoff_max_ms = a->cfg->backoff_max_ms,
			.max_line = a->cfg->max_line,
			.stall_timeout_s = a->cfg->stall_timeout_ms / 1000 ? a->cfg->stall_timeout_ms / 1000 : 1,
		};

		a->refl[k] = kxp_reflector_start(&a->conn, &o, a->q);
		if (!a->refl[k]) {
			pr_err("%s reflector: %s", kind_name[k], strerror(errno));
			return -errno;
		}
	}
	return 0;
}

/* ---- the loop ------------------------------------------------------------------------ */

int kxp_agent_run(struct kxp_agent_cfg *cfg)
{
	static struct agent a;
	char errbuf[512] = "";
	struct kxp_http_opts ho = {};
	sigset_t mask;
	int sfd = -1, ret = 1, err;

	memset(&a, 0, sizeof(a));
	a.cfg = cfg;
	/* signals arrive through signalfd; threads started below inherit the mask */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		pr_err("signalfd: %s", strerror(errno));
		return 1;
	}

	cfg->opts.dp.instance = cfg->instance;
	cfg->opts.dp.errbuf = errbuf;
	cfg->opts.dp.errbuf_len = sizeof(errbuf);
	/* adopt what a previous agent pinned: ids from the maps, nothing flushed */
	err = kxp_dp_open(&a.dp, &cfg->opts.dp);
	if (err) {
		pr_err("instance %s: %s", cfg->instance,
		       errbuf[0] ? errbuf : err == -EPROTO ? "pinned maps of another layout version" : strerror(-err));
		goto out;
	}
	log_capabilities(&a);
	if (kxp_dp_migrated_from(a.dp))
		pr_info("instance %s: pinned maps of layout version %d migrated to %d: service maps recreated, flows kept (%ld conntrack entries copied); devices are attached once the lists are programmed",
			cfg->instance, kxp_dp_migrated_from(a.dp), KXP_LAYOUT_VERSION, kxp_dp_flows_copied(a.dp));
	err = kxp_engine_init(&a.eng, a.dp, &cfg->opts.node);
	if (err)
		goto out;
	ho.healthz_addr = cfg->healthz_addr;
	ho.metrics_addr = cfg->metrics_addr;
	ho.dp = a.dp;
	ho.errbuf = errbuf;
	ho.errbuf_len = sizeof(errbuf);
	errbuf[0] = 0;
	err = kxp_http_start(&a.http, &ho);
	if (err) {
		pr_err("%s", errbuf[0] ? errbuf : strerror(-err));
		goto out;
	}
	err = nl_monitor_open(&a);
	if (err) {
		pr_err("netlink: %s", strerror(-err));
		goto out;
	}
	refresh_addrs(&a);
	err = dump_links(&a);
	if (err)
		pr_warn("listing links: %s", strerror(-err));
	if (make_conn(&a))
		goto out;
	a.q = kxp_k8s_queue_new();
	if (!a.q || start_reflectors(&a))
		goto out;
	pr_info("instance %s, node %s: watching %s", cfg->instance, cfg->opts.node_name, a.conn.server ? a.conn.server : "?");
	publish(&a);

	for (;;) {
		struct pollfd p[3] = {
			{ .fd = kxp_k8s_queue_fd(a.q), .events = POLLIN },
			{ .fd = mnl_socket_get_fd(a.nl), .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
		};
		int n = poll(p, 3, a.retry ? 500 : 1000);

		if (n < 0 && errno != EINTR) {
			pr_err("poll: %s", strerror(errno));
			break;
		}
		if (p[2].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo != SIGHUP) {
				pr_info("signal %u: exiting; programs stay attached and maps pinned (kxp cleanup removes them)",
					si.ssi_signo);
				ret = 0;
				break;
			}
		}
		if (p[1].revents & POLLIN)
			nl_read(&a);
		if (a.addrs_dirty)
			refresh_addrs(&a);
		if (p[0].revents & POLLIN)
			drain(&a);
		program(&a);
		ct_gc(&a);
		publish(&a);
	}
out:
	for (int k = 0; k < KXP_K8S__KINDS; k++)
		if (a.refl[k])
			kxp_reflector_stop(a.refl[k]);
	kxp_http_stop(a.http);
	kxp_k8s_queue_free(a.q);
	kxp_k8s_conn_free(&a.conn);
	if (a.nl)
		mnl_socket_close(a.nl);
	strmap_free(&a.fam);
	if (a.dp)
		kxp_engine_free(&a.eng);
	/* closing the handle neither detaches nor unpins */
	kxp_dp_close(a.dp);
	if (sfd >= 0)
		close(sfd);
	return ret;
}
