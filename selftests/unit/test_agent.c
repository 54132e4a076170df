/* kxp agent: configuration (KubeProxyConfiguration + kxp section, flags over
 * the file, validation), and the engine against real maps: nothing before
 * both lists are complete, one endpoint change at N Services writes only
 * that Service's entries, and the result equals a full build. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <cjson/cJSON.h>

#include "../lib/testlib.h"
#include "agent/config.h"
#include "agent/engine.h"
#include "dataplane/dataplane.h"
#include "lib/ip.h"
#include "model/model.h"

/* ---- configuration ----------------------------------------------------------- */

static const char kpc_yaml[] = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\n"
			       "kind: KubeProxyConfiguration\n"
			       "clusterCIDR: 10.244.0.0/16\n"
			       "nodePortAddresses: [192.168.0.0/16, 10.0.0.0/8]\n"
			       "healthzBindAddress: 0.0.0.0:12256\n"
			       "metricsBindAddress: 127.0.0.1\n"
			       "hostnameOverride: node-a\n"
			       "mode: nftables\n"
			       "iptables:\n  masqueradeAll: true\n"
			       "ipvs:\n  scheduler: rr\n"
			       "frobnicate: 3\n"
			       "kxp:\n"
			       "  xdpMode: generic\n"
			       "  maxFrontends: 1000\n"
			       "  externalDevices: [eth0, eth1]\n"
			       "  podDevices: ['veth*']\n"
			       "  serviceCIDRs: [10.96.0.0/12]\n"
			       "  timers: {backoffMin: 50ms, healthzThreshold: 5s, watchTimeout: 30}\n"
			       "  colour: blue\n";

static bool has_msg(char (*v)[256], size_t n, const char *needle)
{
	for (size_t i = 0; i < n; i++)
		if (strstr(v[i], needle))
			return true;
	return false;
}

KXP_TEST(agent_config_file)
{
	static struct kxp_agent_cfg c;
	uint32_t a;

	kxp_agent_cfg_defaults(&c);
	if (!ASSERT_OK(kxp_agent_cfg_load_text(&c, kpc_yaml, strlen(kpc_yaml), "test"), "load"))
		return;
	ASSERT_EQ(c.n_errors, 0, "no errors");
	ASSERT_EQ(c.opts.node.n_cluster, 1, "clusterCIDR");
	kxp_parse_ip4("10.244.0.0", &a);
	ASSERT_EQ(c.opts.node.cluster[0].addr, a, "clusterCIDR address");
	ASSERT_TRUE(!c.opts.node.nodeport_primary && c.opts.node.n_nodeport == 2, "nodePortAddresses: two CIDRs");
	ASSERT_STREQ(c.healthz_addr, "0.0.0.0:12256", "healthzBindAddress");
	ASSERT_STREQ(c.metrics_addr, "127.0.0.1:10249", "metricsBindAddress gets the default port");
	ASSERT_STREQ(c.opts.node_name, "node-a", "hostnameOverride");
	ASSERT_TRUE(c.opts.node.masquerade_all, "iptables.masqueradeAll");
	ASSERT_EQ(c.opts.node.default_algo, KXP_ALGO_RR, "ipvs.scheduler rr -> rr");
	ASSERT_EQ(c.opts.xdp_mode, KXP_XDP_GENERIC, "kxp.xdpMode");
	ASSERT_EQ(c.opts.dp.max_frontends, 1000, "kxp.maxFrontends");
	ASSERT_TRUE(c.opts.n_ext == 2 && !strcmp(c.opts.ext_devs[1], "eth1"), "kxp.externalDevices");
	ASSERT_TRUE(c.opts.n_pod == 1 && !strcmp(c.opts.pod_devs[0], "veth*"), "kxp.podDevices");
	ASSERT_EQ(c.opts.node.n_service, 1, "kxp.serviceCIDRs");
	ASSERT_EQ(c.backoff_min_ms, 50, "timers.backoffMin");
	ASSERT_EQ(c.healthz_threshold_ms, 5000, "timers.healthzThreshold");
	ASSERT_EQ(c.watch_timeout_ms, 30000, "timers.watchTimeout (bare number = seconds)");
	ASSERT_TRUE(has_msg(c.warnings, c.n_warnings, "frobnicate: unknown field"), "unknown top-level field reported");
	ASSERT_TRUE(has_msg(c.warnings, c.n_warnings, "kxp.colour: unknown field"), "unknown kxp field reported");
	ASSERT_TRUE(has_msg(c.warnings, c.n_warnings, "mode: not used"), "known but unused field reported");
}

KXP_TEST(agent_config_json_and_errors)
{
	static struct kxp_agent_cfg c;
	const char *bad = "{\"kind\":\"KubeProxyConfiguration\",\"clusterCIDR\":\"10.244.0.0/33\","
			  "\"metricsBindAddress\":\"nohost:port\",\"kxp\":{\"algorithm\":\"fastest\"}}";

	kxp_agent_cfg_defaults(&c);
	kxp_agent_cfg_load_text(&c, bad, strlen(bad), "test");
	ASSERT_TRUE(has_msg(c.errors, c.n_errors, "clusterCIDR"), "bad CIDR is an error");
	ASSERT_TRUE(has_msg(c.errors, c.n_errors, "metricsBindAddress"), "bad bind address is an error");
	ASSERT_TRUE(has_msg(c.errors, c.n_errors, "kxp.algorithm"), "bad algorithm is an error");
}

KXP_TEST(agent_config_flags_override_file)
{
	static struct kxp_agent_cfg c;
	char path[] = "/tmp/kxp-agent-cfg-XXXXXX";
	int fd = mkstemp(path);
	char *argv[] = { "agent", "--config", path, "--instance", "t1", "--master", "http://127.0.0.1:1",
			 "--cluster-cidr", "10.100.0.0/16", "--xdp-mode", "off", "--healthz-threshold", "250ms",
			 "--pod-dev", "lxc*", NULL };
	int argc = (int)(sizeof(argv) / sizeof(argv[0])) - 1;
	uint32_t a;

	if (!ASSERT_TRUE(fd >= 0, "mkstemp"))
		return;
	if (!ASSERT_EQ(write(fd, kpc_yaml, strlen(kpc_yaml)), (long)strlen(kpc_yaml), "write"))
		goto out;
	kxp_agent_cfg_defaults(&c);
	if (!ASSERT_OK(kxp_agent_cfg_parse(&c, argc, argv), "parse"))
		goto out;
	for (size_t i = 0; i < c.n_errors; i++)
		printf("    error: %s\n", c.errors[i]);
	ASSERT_EQ(c.n_errors, 0, "valid");
	ASSERT_EQ(c.opts.node.n_cluster, 1, "--cluster-cidr replaces the file's list");
	kxp_parse_ip4("10.100.0.0", &a);
	ASSERT_EQ(c.opts.node.cluster[0].addr, a, "--cluster-cidr value");
	ASSERT_EQ(c.opts.xdp_mode, KXP_XDP_OFF, "--xdp-mode over kxp.xdpMode");
	ASSERT_EQ(c.healthz_threshold_ms, 250, "--healthz-threshold over the file");
	ASSERT_TRUE(c.opts.n_pod == 1 && !strcmp(c.opts.pod_devs[0], "lxc*"), "--pod-dev replaces the file's list");
	ASSERT_EQ(c.opts.n_ext, 2, "file's external devices kept");
	ASSERT_STREQ(c.opts.node_name, "node-a", "hostnameOverride kept");
	ASSERT_TRUE(c.opts.node.masquerade_all, "file's masqueradeAll kept");
out:
	close(fd);
	unlink(path);
}

KXP_TEST(agent_config_validate_rejects)
{
	static struct kxp_agent_cfg c;
	char *argv[] = { "agent", "--kubeconfig", "/nonexistent/kubeconfig", "--master", "ftp://x",
			 "--backoff-min", "5s", "--backoff-max", "1s", "--node-ip", "1.2.3", NULL };

	kxp_agent_cfg_defaults(&c);
	kxp_agent_cfg_parse(&c, (int)(sizeof(argv) / sizeof(argv[0])) - 1, argv);
	ASSERT_TRUE(has_msg(c.errors, c.n_errors, "--instance"), "missing instance");
	ASSERT_TRUE(has_msg(c.errors, c.n_errors, "exclude each other"), "two API sources");
	ASSERT_TRUE(has_msg(c.errors, c.n_errors, "/nonexistent/kubeconfig"), "unreadable kubeconfig");
	ASSERT_TRUE(has_msg(c.errors, c.n_errors, "backoff"), "backoff order");
	ASSERT_TRUE(has_msg(c.errors, c.n_errors, "--node-ip"), "bad node IP");
}

/* ---- engine against real maps -------------------------------------------------- */

static bool need_root(void)
{
	if (geteuid() != 0) {
		kxp_test_skip("needs root (BPF maps)");
		return false;
	}
	return true;
}

static struct kxp_dp *open_dp(void)
{
	struct kxp_dp_opts o = { .no_pin = true, .max_frontends = 16384, .max_backends = 65536, .max_slots = 65536 };
	struct kxp_dp *dp = NULL;
	int err = kxp_dp_open(&dp, &o);

	if (err) {
		kxp_test_fail(__FILE__, __LINE__, "kxp_dp_open: %s", strerror(-err));
		return NULL;
	}
	return dp;
}

static void node_cfg(struct kxp_node_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->node_name = "n1";
	kxp_parse_ip4("192.168.1.1", &c->node_ips[0]);
	c->n_node_ips = 1;
	c->nodeport_primary = true;
	kxp_parse_cidr4("10.244.0.0/16", &c->cluster[0]);
	c->n_cluster = 1;
}

static int push(struct kxp_engine *e, enum kxp_k8s_kind kind, enum k8s_watch_type type, const char *json)
{
	struct kxp_k8s_event ev = { .kind = kind, .what = KXP_EV_OBJECT, .type = type };
	int r;

	ev.obj = cJSON_Parse(json);
	if (!ev.obj) {
		kxp_test_fail(__FILE__, __LINE__, "bad test JSON: %s", json);
		return -EINVAL;
	}
	r = kxp_engine_event(e, &ev);
	cJSON_Delete(ev.obj);
	return r;
}

static void synced(struct kxp_engine *e, enum kxp_k8s_kind kind)
{
	struct kxp_k8s_event ev = { .kind = kind, .what = KXP_EV_SYNCED };

	kxp_engine_event(e, &ev);
}

/* Service i: ClusterIP 10.96.(i/250).(i%250+1):80, NodePort 30000+i. */
static void svc_json(char *buf, size_t len, int i)
{
	snprintf(buf, len,
		 "{\"metadata\":{\"name\":\"s%d\",\"namespace\":\"default\",\"resourceVersion\":\"1\"},"
		 "\"spec\":{\"type\":\"NodePort\",\"clusterIP\":\"10.96.%d.%d\",\"clusterIPs\":[\"10.96.%d.%d\"],"
		 "\"ports\":[{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\",\"nodePort\":%d}]}}",
		 i, i / 250, i % 250 + 1, i / 250, i % 250 + 1, 30000 + i);
}

/* Slice of Service i with n endpoints 10.(1+i/250).(i%250).(1..n), the first local. */
static void slice_json(char *buf, size_t len, int i, int n)
{
	int off = snprintf(buf, len,
			   "{\"metadata\":{\"name\":\"s%d-a\",\"namespace\":\"default\",\"labels\":"
			   "{\"kubernetes.io/service-name\":\"s%d\"}},\"addressType\":\"IPv4\",\"endpoints\":[",
			   i, i);

	for (int k = 0; k < n; k++)
		off += snprintf(buf + off, len - (size_t)off,
				"%s{\"addresses\":[\"10.%d.%d.%d\"],\"conditions\":{\"ready\":true},\"nodeName\":\"%s\"}",
				k ? "," : "", 1 + i / 250, i % 250, k + 1, k ? "n2" : "n1");
	snprintf(buf + off, len - (size_t)off, "],\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}]}");
}

/* Entries in use (kxp_map_count: keys of a hash, non-zero values of an array by id). */
static int map_count(const struct kxp_dp *dp, enum kxp_map_id id)
{
	return (int)kxp_map_count(kxp_dp_map_fd(dp, id));
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The maps as id-free text: one line per frontend with its flags and its
 * backends (addr:port:flags in slot order), sorted. */
static char **dump(const struct kxp_dp *dp, size_t *n)
{
	int sfd = kxp_dp_map_fd(dp, KXP_MAP_SVC), lfd = kxp_dp_map_fd(dp, KXP_MAP_SLOT),
	    bfd = kxp_dp_map_fd(dp, KXP_MAP_BACKEND);
	struct kxp_svc_key k, nk;
	struct kxp_svc_val v;
	void *prev = NULL;
	char **out = calloc(70000, sizeof(*out));

	*n = 0;
	while (out && bpf_map_get_next_key(sfd, prev, &nk) == 0) {
		char line[4096];
		int off;

		k = nk;
		prev = &k;
		if (bpf_map_lookup_elem(sfd, &k, &v))
			continue;
		off = snprintf(line, sizeof(line), "%08x:%u/%u/%u f=%x k=%u a=%u t=%u n=%u:", k.addr, k.port, k.proto,
			       k.scope, v.flags, v.kind, v.algo, v.affinity_timeout, v.count);
		for (uint32_t s = 0; s < v.count && off < (int)sizeof(line) - 64; s++) {
			uint32_t sk = v.base + s, id = 0;
			struct kxp_backend b = {};

			bpf_map_lookup_elem(lfd, &sk, &id);
			bpf_map_lookup_elem(bfd, &id, &b);
			off += snprintf(line + off, sizeof(line) - (size_t)off, " %08x:%u:%x", b.addr, b.port, b.flags);
		}
		out[(*n)++] = strdup(line);
	}
	qsort(out, *n, sizeof(*out), str_cmp);
	return out;
}

static void dump_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* The engine's maps equal a full build of the same objects into fresh maps,
 * and hold no orphaned backends or slots. */
static bool equals_full_build(struct kxp_engine *e)
{
	struct kxp_dp *ref = open_dp();
	struct kxp_objects view;
	struct kxp_desired d = {};
	struct kxp_diags dg = {};
	char **a = NULL, **b = NULL;
	size_t na = 0, nb = 0;
	bool ok = false;

	if (!ref)
		return false;
	if (!ASSERT_OK(kxp_store_view(&e->store, &view), "view"))
		goto out;
	ASSERT_OK(kxp_model_build(&view, &e->cfg, &d, &dg), "full model build");
	kxp_store_view_free(&view);
	if (!ASSERT_OK(kxp_dp_apply(ref, &d, NULL), "full apply into fresh maps"))
		goto out;
	a = dump(e->dp, &na);
	b = dump(ref, &nb);
	if (!ASSERT_EQ(na, nb, "frontends: incremental vs full"))
		goto out;
	for (size_t i = 0; i < na; i++)
		if (!ASSERT_STREQ(a[i], b[i], "frontend entry: incremental vs full"))
			goto out;
	ok = ASSERT_EQ(map_count(e->dp, KXP_MAP_BACKEND), map_count(ref, KXP_MAP_BACKEND), "backend entries") &&
	     ASSERT_EQ(map_count(e->dp, KXP_MAP_SLOT), map_count(ref, KXP_MAP_SLOT), "slot entries") &&
	     ASSERT_EQ(map_count(e->dp, KXP_MAP_REVNAT), map_count(ref, KXP_MAP_REVNAT), "revnat entries");
out:
	dump_free(a, na);
	dump_free(b, nb);
	kxp_desired_free(&d);
	kxp_diags_free(&dg);
	kxp_dp_close(ref);
	return ok;
}

static bool load_services(struct kxp_engine *e, int n, int eps)
{
	static char buf[16384];

	for (int i = 0; i < n; i++) {
		svc_json(buf, sizeof(buf), i);
		if (!ASSERT_OK(push(e, KXP_K8S_SERVICE, K8S_WATCH_ADDED, buf), "service event"))
			return false;
		slice_json(buf, sizeof(buf), i, eps);
		if (!ASSERT_OK(push(e, KXP_K8S_SLICE, K8S_WATCH_ADDED, buf), "slice event"))
			return false;
	}
	return true;
}

KXP_TEST(agent_gate_before_sync)
{
	struct kxp_node_cfg nc;
	struct kxp_engine e;
	struct kxp_dp *dp;

	if (!need_root() || !(dp = open_dp()))
		return;
	node_cfg(&nc);
	kxp_engine_init(&e, dp, &nc);
	if (!load_services(&e, 5, 2))
		goto out;
	synced(&e, KXP_K8S_SERVICE);
	ASSERT_OK(kxp_engine_program(&e), "program while gated");
	ASSERT_TRUE(kxp_engine_gated(&e), "gated: slices not listed yet");
	ASSERT_EQ(map_count(dp, KXP_MAP_SVC), 0, "nothing programmed before both lists completed");
	ASSERT_TRUE(e.pending_since_ns != 0, "changes pending (healthz counts them)");
	synced(&e, KXP_K8S_SLICE);
	ASSERT_OK(kxp_engine_program(&e), "program after sync");
	/* 5 Services x (ClusterIP + NodePort + wildcard) */
	ASSERT_EQ(map_count(dp, KXP_MAP_SVC), 15, "programmed after both lists");
	ASSERT_EQ(e.st.full_syncs, 1, "one full reconcile");
	ASSERT_EQ(e.pending_since_ns, 0, "nothing pending");
	equals_full_build(&e);
out:
	kxp_engine_free(&e);
	kxp_dp_close(dp);
}

KXP_TEST(agent_incremental_endpoint_change)
{
	static char buf[16384];
	const int N = 2000;
	struct kxp_node_cfg nc;
	struct kxp_engine e;
	struct kxp_dp *dp;

	if (!need_root() || !(dp = open_dp()))
		return;
	node_cfg(&nc);
	kxp_engine_init(&e, dp, &nc);
	if (!load_services(&e, N, 3))
		goto out;
	synced(&e, KXP_K8S_SERVICE);
	synced(&e, KXP_K8S_SLICE);
	if (!ASSERT_OK(kxp_engine_program(&e), "initial full sync"))
		goto out;
	ASSERT_TRUE(e.last_apply.writes > (uint32_t)N * 3, "the initial sync wrote every Service");

	/* one endpoint more for Service 777 */
	slice_json(buf, sizeof(buf), 777, 4);
	ASSERT_OK(push(&e, KXP_K8S_SLICE, K8S_WATCH_MODIFIED, buf), "slice update");
	if (!ASSERT_OK(kxp_engine_program(&e), "incremental program"))
		goto out;
	ASSERT_EQ(e.st.full_syncs, 1, "no full sync for an endpoint change");
	ASSERT_EQ(e.st.partial_syncs, 1, "one per-service sync");
	/* 1 backend + 1 slot + 1 membership entry + the count of the 2 frontends using the set */
	printf("    writes for one endpoint added at %d services: %u\n", N, e.last_apply.writes);
	ASSERT_EQ(e.last_apply.be_added, 1, "one backend added");
	ASSERT_EQ(e.last_apply.slots_written, 1, "one slot written");
	ASSERT_TRUE(e.last_apply.writes <= 5, "writes proportional to the Service");
	if (!equals_full_build(&e))
		goto out;

	/* remove two endpoints, mark one terminating */
	snprintf(buf, sizeof(buf),
		 "{\"metadata\":{\"name\":\"s777-a\",\"namespace\":\"default\",\"labels\":"
		 "{\"kubernetes.io/service-name\":\"s777\"}},\"addressType\":\"IPv4\",\"endpoints\":["
		 "{\"addresses\":[\"10.4.27.1\"],\"conditions\":{\"ready\":true},\"nodeName\":\"n1\"},"
		 "{\"addresses\":[\"10.4.27.2\"],\"conditions\":{\"ready\":false,\"serving\":true,\"terminating\":true},\"nodeName\":\"n2\"}],"
		 "\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}]}");
	ASSERT_OK(push(&e, KXP_K8S_SLICE, K8S_WATCH_MODIFIED, buf), "slice shrink");
	ASSERT_OK(kxp_engine_program(&e), "program shrink");
	ASSERT_TRUE(e.last_apply.writes < 20, "shrink: few writes");
	if (!equals_full_build(&e))
		goto out;

	/* delete a Service, create a new one, change a port */
	svc_json(buf, sizeof(buf), 5);
	ASSERT_OK(push(&e, KXP_K8S_SERVICE, K8S_WATCH_DELETED, buf), "delete");
	svc_json(buf, sizeof(buf), N + 1);
	ASSERT_OK(push(&e, KXP_K8S_SERVICE, K8S_WATCH_ADDED, buf), "create");
	slice_json(buf, sizeof(buf), N + 1, 2);
	ASSERT_OK(push(&e, KXP_K8S_SLICE, K8S_WATCH_ADDED, buf), "create slice");
	svc_json(buf, sizeof(buf), 9);
	*strstr(buf, "\"port\":80") = 0;
	strcat(buf, "\"port\":81,\"protocol\":\"TCP\",\"nodePort\":30009}]}}");
	ASSERT_OK(push(&e, KXP_K8S_SERVICE, K8S_WATCH_MODIFIED, buf), "port change");
	ASSERT_OK(kxp_engine_program(&e), "program mixed");
	ASSERT_EQ(e.st.full_syncs, 1, "still no full sync");
	ASSERT_EQ(e.st.partial_syncs, 5, "three more per-service syncs");
	equals_full_build(&e);
out:
	kxp_engine_free(&e);
	kxp_dp_close(dp);
}

KXP_TEST(agent_conflict_falls_back_to_full)
{
	static char buf[16384];
	struct kxp_node_cfg nc;
	struct kxp_engine e;
	struct kxp_dp *dp;

	if (!need_root() || !(dp = open_dp()))
		return;
	node_cfg(&nc);
	kxp_engine_init(&e, dp, &nc);
	if (!load_services(&e, 10, 2))
		goto out;
	synced(&e, KXP_K8S_SERVICE);
	synced(&e, KXP_K8S_SLICE);
	ASSERT_OK(kxp_engine_program(&e), "initial");
	/* s9x claims Service s3's ClusterIP:port: the model keeps s3 (first by name) */
	svc_json(buf, sizeof(buf), 3);
	memcpy(strstr(buf, "\"s3\""), "\"s9x", 4);
	memmove(strstr(buf, "s9x") + 4, strstr(buf, "s9x") + 3, strlen(strstr(buf, "s9x") + 3) + 1);
	strstr(buf, "s9x")[3] = '"';
	ASSERT_OK(push(&e, KXP_K8S_SERVICE, K8S_WATCH_ADDED, buf), "conflicting service");
	ASSERT_OK(kxp_engine_program(&e), "program conflict");
	ASSERT_EQ(e.st.full_syncs, 2, "conflict decided by a full build");
	if (!equals_full_build(&e))
		goto out;
	/* s3 goes: s9x now gets the frontend */
	svc_json(buf, sizeof(buf), 3);
	ASSERT_OK(push(&e, KXP_K8S_SERVICE, K8S_WATCH_DELETED, buf), "delete s3");
	ASSERT_OK(kxp_engine_program(&e), "program release");
	equals_full_build(&e);
out:
	kxp_engine_free(&e);
	kxp_dp_close(dp);
}

KXP_TEST(agent_bad_objects_skipped)
{
	static char buf[16384];
	struct kxp_node_cfg nc;
	struct kxp_engine e;
	struct kxp_dp *dp;

	if (!need_root() || !(dp = open_dp()))
		return;
	node_cfg(&nc);
	kxp_engine_init(&e, dp, &nc);
	if (!load_services(&e, 3, 2))
		goto out;
	synced(&e, KXP_K8S_SERVICE);
	synced(&e, KXP_K8S_SLICE);
	ASSERT_OK(kxp_engine_program(&e), "initial");
	/* an invalid ClusterIP: skipped, the previous version keeps serving */
	svc_json(buf, sizeof(buf), 1);
	memcpy(strstr(buf, "10.96.0.2\""), "10.96.0.x\"", 10);
	memcpy(strstr(buf, "10.96.0.2\""), "10.96.0.x\"", 10);
	ASSERT_EQ(push(&e, KXP_K8S_SERVICE, K8S_WATCH_MODIFIED, buf), -EINVAL, "bad service rejected");
	ASSERT_TRUE(e.diags.n > 0, "reported with the object and reason");
	ASSERT_EQ(e.st.bad_objects, 1, "counted");
	/* a slice for a Service nobody has: stored, nothing programmed for it */
	slice_json(buf, sizeof(buf), 99, 2);
	ASSERT_OK(push(&e, KXP_K8S_SLICE, K8S_WATCH_ADDED, buf), "slice of an unknown service");
	/* absurd size: 1001 endpoints */
	{
		char *big = malloc(200000);
		int off = snprintf(big, 200000,
				   "{\"metadata\":{\"name\":\"s0-big\",\"namespace\":\"default\",\"labels\":"
				   "{\"kubernetes.io/service-name\":\"s0\"}},\"addressType\":\"IPv4\",\"endpoints\":[");

		for (int k = 0; k < 1001; k++)
			off += snprintf(big + off, 200000 - (size_t)off, "%s{\"addresses\":[\"10.9.%d.%d\"]}", k ? "," : "",
					k / 250, k % 250 + 1);
		snprintf(big + off, 200000 - (size_t)off, "],\"ports\":[{\"name\":\"http\",\"port\":8080}]}");
		ASSERT_EQ(push(&e, KXP_K8S_SLICE, K8S_WATCH_ADDED, big), -EINVAL, "absurd slice rejected");
		free(big);
	}
	ASSERT_OK(kxp_engine_program(&e), "program");
	ASSERT_EQ(map_count(dp, KXP_MAP_SVC), 9, "the 3 good Services still served");
	equals_full_build(&e);
out:
	kxp_engine_free(&e);
	kxp_dp_close(dp);
}
