/* kxp agent configuration: defaults, --config FILE (KubeProxyConfiguration
 * v1alpha1 fields that mean something to kxp plus a `kxp:` section), flags
 * that override the file, and the checks --validate reports. */
#include "agent/config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "k8s/yaml2json.h"
#include "lib/ip.h"
#include "lib/nodeopts.h"

const char kxp_agent_help[] =
	"Usage: kxp agent --instance NAME [--kubeconfig FILE | --master URL | (in-cluster)]\n"
	"                 [--config FILE] [--validate]\n"
	"                 [--node-name NAME] [--node-ip IP]... [--cluster-cidr CIDR]... [--service-cidr CIDR]...\n"
	"                 [--nodeport-addresses { primary | CIDR[,CIDR]... }] [--masquerade-all]\n"
	"                 [--lb-algorithm { random | rr | maglev }] [--external-dev DEV]... [--pod-dev PATTERN]...\n"
	"                 [--xdp-mode { auto | native | generic | off }]\n"
	"                 [--healthz-bind-address HOST:PORT] [--metrics-bind-address HOST:PORT]\n"
	"                 [--backoff-min D] [--backoff-max D] [--watch-timeout D] [--stall-timeout D]\n"
	"                 [--healthz-threshold D] [--page-limit N] [--max-line BYTES]\n"
	"                 [--token-file FILE] [--ca-file FILE] [--sa-dir DIR] [--insecure-skip-tls-verify]\n"
	"                 [--max-frontends N] [--max-backends N] [--max-slots N] [--max-ct N]\n"
	"                 [--maglev-table-size M] [--cgroup-root PATH [--socket-lb { host | all | off }]]\n"
	"       kxp agent help\n"
	"\n"
	"Watches Services, EndpointSlices and this Node and keeps the instance's maps in step.\n"
	"Nothing is programmed until the Service and EndpointSlice lists are complete. On SIGTERM\n"
	"or SIGINT programs stay attached and maps pinned; a new agent adopts them (kxp cleanup\n"
	"removes them). D is a duration: 250ms, 2s, 1m (a bare number is seconds). Flags override\n"
	"--config; --validate checks the configuration and exits 0 (valid) or 1. Empty bind\n"
	"addresses disable a server. --pod-dev takes fnmatch patterns (default: veth* cali* lxc*\n"
	"cni* flannel* cilium_* tap* vxlan*... see the docs); --external-dev defaults to the devices\n"
	"holding the node's addresses. --cgroup-root attaches the socket hooks (node-originated\n"
	"traffic to Services, translated at connect/sendmsg) to that cgroup v2 directory (the host's\n"
	"cgroup2 mount in a DaemonSet); --socket-lb: all (default) = pods too (their TCP where\n"
	"kube-proxy would not masquerade), host = the node's namespace only, off = detach.\n"
	"Without --cgroup-root they are left as they are.\n";

static void msg(char (*v)[256], size_t *n, const char *fmt, va_list ap)
{
	if (*n >= KXP_AGENT_MAX_MSGS)
		return;
	vsnprintf(v[*n], sizeof(v[*n]), fmt, ap);
	(*n)++;
}

static void __attribute__((format(printf, 2, 3))) cfg_err(struct kxp_agent_cfg *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	msg(c->errors, &c->n_errors, fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 2, 3))) cfg_warn(struct kxp_agent_cfg *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	msg(c->warnings, &c->n_warnings, fmt, ap);
	va_end(ap);
}

/* Node-setting problems land in the agent's lists like its own. */
static void opts_report(struct kxp_nodeopts *o, bool warning, const char *m)
{
	struct kxp_agent_cfg *c = (struct kxp_agent_cfg *)((char *)o - offsetof(struct kxp_agent_cfg, opts));

	if (warning)
		cfg_warn(c, "%s", m);
	else
		cfg_err(c, "%s", m);
}

void kxp_agent_cfg_defaults(struct kxp_agent_cfg *c)
{
	memset(c, 0, sizeof(*c));
	kxp_nodeopts_defaults(&c->opts);
	c->opts.dual_stack_lists = true;
	c->opts.report = opts_report;
	snprintf(c->healthz_addr, sizeof(c->healthz_addr), "0.0.0.0:10256");
	snprintf(c->metrics_addr, sizeof(c->metrics_addr), "127.0.0.1:10249");
	c->backoff_min_ms = 800;
	c->backoff_max_ms = 30000;
	c->watch_timeout_ms = 300000;
	c->stall_timeout_ms = 600000;
	c->healthz_threshold_ms = 60000;
	c->page_limit = 500;
	c->max_line = 16u << 20;
}

int kxp_parse_duration_ms(const char *s, unsigned *ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -EINVAL;
	if (!strcmp(end, "ms"))
		;
	else if (!*end || !strcmp(end, "s"))
		v *= 1000;
	else if (!strcmp(end, "m"))
		v *= 60000;
	else if (!strcmp(end, "h"))
		v *= 3600000;
	else
		return -EINVAL;
	if (v > 86400000.0 * 7)
		return -EINVAL;
	*ms = (unsigned)v;
	return 0;
}

int kxp_parse_hostport(const char *s, uint32_t *addr, uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	char host[64], *end;
	unsigned long p;

	if (!colon || colon - s >= (long)sizeof(host))
		return -EINVAL;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || p > 65535)
		return -EINVAL;
	if (!host[0] || !strcmp(host, "0.0.0.0"))
		*addr = 0;
	else if (kxp_parse_ip4(host, addr))
		return -EINVAL;
	*port = (uint16_t)p;
	return 0;
}

static int set_bind(struct kxp_agent_cfg *c, const char *what, const char *v, char *dst, size_t len,
		    uint16_t def_port)
{
	uint32_t a;
	uint16_t p;

	if (!*v) {
		dst[0] = 0; /* disabled */
		return 0;
	}
	/* kube-proxy also takes a bare address and adds its default port */
	if (!strchr(v, ':')) {
		snprintf(dst, len, "%s:%u", v, def_port);
	} else {
		snprintf(dst, len, "%s", v);
	}
	if (kxp_parse_hostport(dst, &a, &p)) {
		cfg_err(c, "%s: \"%s\" is not IPv4-ADDRESS:PORT", what, v);
		return -EINVAL;
	}
	return 0;
}

static int set_dur(struct kxp_agent_cfg *c, const char *what, const char *s, unsigned *out)
{
	if (kxp_parse_duration_ms(s, out)) {
		cfg_err(c, "%s: \"%s\" is not a duration (250ms, 2s, 1m)", what, s);
		return -EINVAL;
	}
	return 0;
}

/* ---- the configuration file ------------------------------------------------- */

/* A JSON value as the string a flag would take (numbers for durations/sizes). */
static const char *jstr(const cJSON *v, char *buf, size_t len)
{
	if (cJSON_IsString(v))
		return v->valuestring;
	if (cJSON_IsNumber(v)) {
		snprintf(buf, len, "%.15g", v->valuedouble);
		return buf;
	}
	if (cJSON_IsBool(v))
		return cJSON_IsTrue(v) ? "true" : "false";
	return NULL;
}

static void str_list(struct kxp_agent_cfg *c, const char *what, const cJSON *v,
		     int (*fn)(struct kxp_agent_cfg *, const char *, const char *))
{
	const cJSON *it;
	char buf[64];

	if (cJSON_IsString(v)) {
		fn(c, what, v->valuestring);
		return;
	}
	if (!cJSON_IsArray(v)) {
		cfg_err(c, "%s: want a list of strings", what);
		return;
	}
	cJSON_ArrayForEach(it, v)
	{
		const char *s = jstr(it, buf, sizeof(buf));

		if (!s)
			cfg_err(c, "%s: want a list of strings", what);
		else
			fn(c, what, s);
	}
}

static int f_cluster(struct kxp_agent_cfg *c, const char *w, const char *v)
{
	return kxp_nodeopts_cidrs(&c->opts, w, v, c->opts.node.cluster, &c->opts.node.n_cluster);
}

static int f_service(struct kxp_agent_cfg *c, const char *w, const char *v)
{
	return kxp_nodeopts_cidrs(&c->opts, w, v, c->opts.node.service, &c->opts.node.n_service);
}

static int f_ext(struct kxp_agent_cfg *c, const char *w, const char *v)
{
	return kxp_nodeopts_dev(&c->opts, w, v, c->opts.ext_devs, &c->opts.n_ext);
}

static int f_pod(struct kxp_agent_cfg *c, const char *w, const char *v)
{
	return kxp_nodeopts_dev(&c->opts, w, v, c->opts.pod_devs, &c->opts.n_pod);
}

static int f_nodeip(struct kxp_agent_cfg *c, const char *w, const char *v)
{
	return kxp_nodeopts_node_ip(&c->opts, w, v);
}

/* KubeProxyConfiguration fields kxp has no use for: reported, not fatal. */
static const char *const kpc_ignored[] = {
	"bindAddress", "bindAddressHardFail", "clientConnection", "configSyncPeriod", "conntrack",
	"detectLocalMode", "detectLocal", "enableProfiling", "featureGates", "iptables", "ipvs", "nftables",
	"logging", "mode", "oomScoreAdj", "portRange", "showHiddenMetricsForVersion", "udpIdleTimeout",
	"winkernel", "nodePortAddresses", "kind", "apiVersion", "clusterCIDR", "healthzBindAddress",
	"metricsBindAddress", "hostnameOverride", "masqueradeAll", "kxp", "syncPeriod", "minSyncPeriod",
	"linux",
};

static bool kpc_known(const char *k)
{
	for (size_t i = 0; i < sizeof(kpc_ignored) / sizeof(kpc_ignored[0]); i++)
		if (!strcmp(kpc_ignored[i], k))
			return true;
	return false;
}

static void masq_from(struct kxp_agent_cfg *c, const cJSON *obj, const char *where)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "masqueradeAll");

	if (!m)
		return;
	if (!cJSON_IsBool(m))
		cfg_err(c, "%smasqueradeAll: want true or false", where);
	else
		c->opts.node.masquerade_all = cJSON_IsTrue(m);
}

static void load_kxp(struct kxp_agent_cfg *c, const cJSON *k)
{
	const cJSON *it;
	char buf[64];

	if (!cJSON_IsObject(k)) {
		cfg_err(c, "kxp: want a map");
		return;
	}
	cJSON_ArrayForEach(it, k)
	{
		const char *n = it->string, *s = jstr(it, buf, sizeof(buf));

		if (!strcmp(n, "algorithm") && s)
			kxp_nodeopts_algo(&c->opts, "kxp.algorithm", s);
		else if (!strcmp(n, "xdpMode") && s)
			kxp_nodeopts_xdp(&c->opts, "kxp.xdpMode", s);
		else if (!strcmp(n, "externalDevices"))
			str_list(c, "kxp.externalDevices", it, f_ext);
		else if (!strcmp(n, "podDevices"))
			str_list(c, "kxp.podDevices", it, f_pod);
		else if (!strcmp(n, "serviceCIDRs"))
			str_list(c, "kxp.serviceCIDRs", it, f_service);
		else if (!strcmp(n, "nodeIPs"))
			str_list(c, "kxp.nodeIPs", it, f_nodeip);
		else if (!strcmp(n, "maxFrontends") && s)
			kxp_nodeopts_u32(&c->opts, "kxp.maxFrontends", s, &c->opts.dp.max_frontends);
		else if (!strcmp(n, "maxBackends") && s)
			kxp_nodeopts_u32(&c->opts, "kxp.maxBackends", s, &c->opts.dp.max_backends);
		else if (!strcmp(n, "maxSlots") && s)
			kxp_nodeopts_u32(&c->opts, "kxp.maxSlots", s, &c->opts.dp.max_slots);
		else if (!strcmp(n, "maxCT") && s)
			kxp_nodeopts_u32(&c->opts, "kxp.maxCT", s, &c->opts.dp.max_ct);
		else if (!strcmp(n, "maxSNAT") && s)
			kxp_nodeopts_max_snat(&c->opts, "kxp.maxSNAT", s);
		else if (!strcmp(n, "maglevTableSize") && s)
			kxp_nodeopts_u32(&c->opts, "kxp.maglevTableSize", s, &c->opts.dp.maglev_m);
		else if (!strcmp(n, "timers") && cJSON_IsObject(it)) {
			const cJSON *t;

			cJSON_ArrayForEach(t, it)
			{
				const char *ts = jstr(t, buf, sizeof(buf));
				unsigned *dst = !strcmp(t->string, "backoffMin")	 ? &c->backoff_min_ms :
						!strcmp(t->string, "backoffMax")	 ? &c->backoff_max_ms :
						!strcmp(t->string, "watchTimeout")	 ? &c->watch_timeout_ms :
						!strcmp(t->string, "stallTimeout")	 ? &c->stall_timeout_ms :
						!strcmp(t->string, "healthzThreshold") ? &c->healthz_threshold_ms :
											 NULL;

				if (!dst)
					cfg_warn(c, "kxp.timers.%s: unknown field, ignored", t->string);
				else if (!ts)
					cfg_err(c, "kxp.timers.%s: want a duration", t->string);
				else
					set_dur(c, t->string, ts, dst);
			}
		} else if (!strcmp(n, "algorithm") || !strcmp(n, "xdpMode") || !strncmp(n, "max", 3) ||
			   !strcmp(n, "timers"))
			cfg_err(c, "kxp.%s: wrong type", n);
		else
			cfg_warn(c, "kxp.%s: unknown field, ignored", n);
	}
}

int kxp_agent_cfg_load_text(struct kxp_agent_cfg *c, const char *text, size_t len, const char *origin)
{
	cJSON *docs = NULL, *doc, *it;
	char perr[256] = "", buf[64];
	const cJSON *v;
	int r;

	r = k8s_yaml_parse(text, len, &docs, perr, sizeof(perr));
	if (r) {
		cfg_err(c, "%s: %s", origin, perr[0] ? perr : strerror(-r));
		return r;
	}
	doc = cJSON_GetArrayItem(docs, 0);
	if (!cJSON_IsObject(doc)) {
		cfg_err(c, "%s: not a KubeProxyConfiguration (want a map)", origin);
		cJSON_Delete(docs);
		return -EINVAL;
	}
	if (cJSON_GetArraySize(docs) > 1)
		cfg_warn(c, "%s: only the first document is read", origin);
	v = cJSON_GetObjectItemCaseSensitive(doc, "kind");
	if (v && (!cJSON_IsString(v) || strcmp(v->valuestring, "KubeProxyConfiguration")))
		cfg_err(c, "%s: kind is not KubeProxyConfiguration", origin);
	v = cJSON_GetObjectItemCaseSensitive(doc, "apiVersion");
	if (v && (!cJSON_IsString(v) || strcmp(v->valuestring, "kubeproxy.config.k8s.io/v1alpha1")))
		cfg_warn(c, "%s: apiVersion %s is not kubeproxy.config.k8s.io/v1alpha1; reading it anyway", origin,
			 cJSON_IsString(v) ? v->valuestring : "?");

	cJSON_ArrayForEach(it, doc)
	{
		const char *n = it->string, *s = jstr(it, buf, sizeof(buf));

		if (!strcmp(n, "clusterCIDR")) {
			if (!s)
				cfg_err(c, "clusterCIDR: want a string");
			else if (*s)
				f_cluster(c, "clusterCIDR", s);
		} else if (!strcmp(n, "nodePortAddresses")) {
			const cJSON *e;

			if (!cJSON_IsArray(it) && !cJSON_IsNull(it)) {
				cfg_err(c, "nodePortAddresses: want a list");
				continue;
			}
			c->opts.node.n_nodeport = 0;
			if (cJSON_GetArraySize(it) == 0) {
				/* unset: kxp's default (primary), as kube-proxy's newest default */
				continue;
			}
			cJSON_ArrayForEach(e, it)
			{
				if (!cJSON_IsString(e))
					cfg_err(c, "nodePortAddresses: want strings");
				else
					kxp_nodeopts_nodeport(&c->opts, "nodePortAddresses", e->valuestring);
			}
		} else if (!strcmp(n, "healthzBindAddress")) {
			if (!s)
				cfg_err(c, "healthzBindAddress: want a string");
			else
				set_bind(c, "healthzBindAddress", s, c->healthz_addr, sizeof(c->healthz_addr), 10256);
		} else if (!strcmp(n, "metricsBindAddress")) {
			if (!s)
				cfg_err(c, "metricsBindAddress: want a string");
			else
				set_bind(c, "metricsBindAddress", s, c->metrics_addr, sizeof(c->metrics_addr), 10249);
		} else if (!strcmp(n, "hostnameOverride")) {
			if (!s)
				cfg_err(c, "hostnameOverride: want a string");
			else if (*s)
				snprintf(c->opts.node_name, sizeof(c->opts.node_name), "%s", s);
		} else if (!strcmp(n, "masqueradeAll")) {
			masq_from(c, doc, "");
		} else if (!strcmp(n, "iptables") || !strcmp(n, "nftables")) {
			char where[16];

			snprintf(where, sizeof(where), "%s.", n);
			if (cJSON_IsObject(it))
				masq_from(c, it, where);
			cfg_warn(c, "%s: only masqueradeAll is used by kxp", n);
		} else if (!strcmp(n, "ipvs")) {
			const cJSON *sch = cJSON_GetObjectItemCaseSensitive(it, "scheduler");

			if (cJSON_IsString(sch) && !strcmp(sch->valuestring, "rr"))
				c->opts.node.default_algo = KXP_ALGO_RR;
			else if (cJSON_IsString(sch) && *sch->valuestring)
				cfg_warn(c, "ipvs.scheduler: \"%s\" has no kxp equivalent (rr does); the default algorithm stays",
					 sch->valuestring);
		} else if (!strcmp(n, "kxp")) {
			load_kxp(c, it);
		} else if (!strcmp(n, "kind") || !strcmp(n, "apiVersion")) {
			continue;
		} else if (kpc_known(n)) {
			cfg_warn(c, "%s: not used by kxp, ignored", n);
		} else {
			cfg_warn(c, "%s: unknown field, ignored", n);
		}
	}
	cJSON_Delete(docs);
	return 0;
}

static int load_file(struct kxp_agent_cfg *c, const char *path)
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t len = 0;
	int r;

	if (!f) {
		r = -errno;
		cfg_err(c, "--config %s: %s", path, strerror(errno));
		return r;
	}
	if (getdelim(&text, &len, '\0', f) < 0 && !feof(f)) {
		r = -errno;
		fclose(f);
		free(text);
		cfg_err(c, "--config %s: %s", path, strerror(-r));
		return r;
	}
	fclose(f);
	r = kxp_agent_cfg_load_text(c, text ? text : "", text ? strlen(text) : 0, path);
	free(text);
	return r;
}

/* ---- flags ----------------------------------------------------------------------- */

enum {
	O_INSTANCE = 256, O_KUBECONFIG, O_MASTER, O_SADIR, O_TOKEN, O_CA, O_INSECURE, O_CONFIG, O_VALIDATE,
	O_HEALTHZ, O_METRICS, O_BMIN, O_BMAX, O_WTO, O_STALL, O_HZT, O_PAGE, O_MAXLINE,
};

static const struct option agent_opts[] = {
	{ "instance", required_argument, NULL, O_INSTANCE },
	{ "kubeconfig", required_argument, NULL, O_KUBECONFIG },
	{ "master", required_argument, NULL, O_MASTER },
	{ "sa-dir", required_argument, NULL, O_SADIR },
	{ "token-file", required_argument, NULL, O_TOKEN },
	{ "ca-file", required_argument, NULL, O_CA },
	{ "insecure-skip-tls-verify", no_argument, NULL, O_INSECURE },
	{ "config", required_argument, NULL, O_CONFIG },
	{ "validate", no_argument, NULL, O_VALIDATE },
	KXP_NODEOPTS_LONGOPTS,
	{ "hostname-override", required_argument, NULL, KXP_NO_NODE_NAME },
	{ "healthz-bind-address", required_argument, NULL, O_HEALTHZ },
	{ "metrics-bind-address", required_argument, NULL, O_METRICS },
	{ "backoff-min", required_argument, NULL, O_BMIN },
	{ "backoff-max", required_argument, NULL, O_BMAX },
	{ "watch-timeout", required_argument, NULL, O_WTO },
	{ "stall-timeout", required_argument, NULL, O_STALL },
	{ "healthz-threshold", required_argument, NULL, O_HZT },
	{ "page-limit", required_argument, NULL, O_PAGE },
	{ "max-line", required_argument, NULL, O_MAXLINE },
	{ "help", no_argument, NULL, 'h' },
	{},
};

int kxp_agent_cfg_parse(struct kxp_agent_cfg *c, int argc, char **argv)
{
	uint32_t u;
	int o;

	/* pass 1: --config and help */
	optind = 0;
	opterr = 0;
	while ((o = getopt_long(argc, argv, "+:h", agent_opts, NULL)) != -1) {
		if (o == 'h')
			return 1;
		if (o == O_CONFIG)
			snprintf(c->config_file, sizeof(c->config_file), "%s", optarg);
	}
	if (optind < argc && !strcmp(argv[optind], "help"))
		return 1;
	if (c->config_file[0])
		load_file(c, c->config_file);

	/* a list given by flag replaces the file's list (flags override) */
	c->opts.given = 0;
	optind = 0;
	while ((o = getopt_long(argc, argv, "+:h", agent_opts, NULL)) != -1) {
		/* node settings: problems are reported into c->errors */
		if (kxp_nodeopts_set(&c->opts, o, optarg) != -ENOENT)
			continue;
		switch (o) {
		case O_INSTANCE:
			if (strlen(optarg) >= sizeof(c->instance))
				cfg_err(c, "--instance: at most %zu characters", sizeof(c->instance) - 1);
			else
				snprintf(c->instance, sizeof(c->instance), "%s", optarg);
			break;
		case O_KUBECONFIG:
			snprintf(c->kubeconfig, sizeof(c->kubeconfig), "%s", optarg);
			break;
		case O_MASTER:
			snprintf(c->master, sizeof(c->master), "%s", optarg);
			break;
		case O_SADIR:
			snprintf(c->sa_dir, sizeof(c->sa_dir), "%s", optarg);
			break;
		case O_TOKEN:
			snprintf(c->token_file, sizeof(c->token_file), "%s", optarg);
			break;
		case O_CA:
			snprintf(c->ca_file, sizeof(c->ca_file), "%s", optarg);
			break;
		case O_INSECURE:
			c->insecure = true;
			break;
		case O_CONFIG:
			break;
		case O_VALIDATE:
			c->validate = true;
			break;
		case O_HEALTHZ:
			set_bind(c, "--healthz-bind-address", optarg, c->healthz_addr, sizeof(c->healthz_addr), 10256);
			break;
		case O_METRICS:
			set_bind(c, "--metrics-bind-address", optarg, c->metrics_addr, sizeof(c->metrics_addr), 10249);
			break;
		case O_BMIN:
			set_dur(c, "--backoff-min", optarg, &c->backoff_min_ms);
			break;
		case O_BMAX:
			set_dur(c, "--backoff-max", optarg, &c->backoff_max_ms);
			break;
		case O_WTO:
			set_dur(c, "--watch-timeout", optarg, &c->watch_timeout_ms);
			break;
		case O_STALL:
			set_dur(c, "--stall-timeout", optarg, &c->stall_timeout_ms);
			break;
		case O_HZT:
			set_dur(c, "--healthz-threshold", optarg, &c->healthz_threshold_ms);
			break;
		case O_PAGE:
			if (!kxp_nodeopts_u32(&c->opts, "--page-limit", optarg, &u))
				c->page_limit = u;
			break;
		case O_MAXLINE:
			if (!kxp_nodeopts_u32(&c->opts, "--max-line", optarg, &u))
				c->max_line = u;
			break;
		case ':':
			cfg_err(c, "%s needs a value", argv[optind - 1]);
			break;
		default:
			cfg_err(c, "unknown option \"%s\" (see kxp agent help)", argv[optind - 1]);
			break;
		}
	}
	if (optind < argc)
		cfg_err(c, "unexpected argument \"%s\" (see kxp agent help)", argv[optind]);
	/* the agent reads an empty --cgroup-root as none (sync refuses it later) */
	if (c->opts.dp.cgroup_root && !c->opts.dp.cgroup_root[0])
		c->opts.dp.cgroup_root = NULL;
	kxp_agent_cfg_check(c);
	return 0;
}

void kxp_agent_cfg_check(struct kxp_agent_cfg *c)
{
	int sources = !!c->kubeconfig[0] + !!c->master[0];

	if (!c->instance[0])
		cfg_err(c, "--instance NAME is required");
	if (sources > 1)
		cfg_err(c, "--kubeconfig and --master exclude each other");
	if (!sources && !getenv("KUBERNETES_SERVICE_HOST") && !c->sa_dir[0])
		cfg_err(c, "no API server: pass --kubeconfig FILE or --master URL, or run in a cluster "
			   "(KUBERNETES_SERVICE_HOST unset)");
	if (c->kubeconfig[0] && access(c->kubeconfig, R_OK))
		cfg_err(c, "--kubeconfig %s: %s", c->kubeconfig, strerror(errno));
	if (c->master[0] && strncmp(c->master, "http://", 7) && strncmp(c->master, "https://", 8))
		cfg_err(c, "--master %s: want an http:// or https:// URL", c->master);
	if (c->backoff_min_ms == 0 || c->backoff_max_ms < c->backoff_min_ms)
		cfg_err(c, "backoff: want 0 < --backoff-min <= --backoff-max (%u ms, %u ms)", c->backoff_min_ms,
			c->backoff_max_ms);
	if (c->watch_timeout_ms < 1000)
		cfg_err(c, "--watch-timeout: at least 1s (the server counts whole seconds)");
	if (c->stall_timeout_ms < 1000)
		cfg_err(c, "--stall-timeout: at least 1s");
	if (c->healthz_threshold_ms == 0)
		cfg_err(c, "--healthz-threshold: want more than 0");
	if (!sources) {
		/* In a DaemonSet the agent is on the host network, where a ClusterIP
		 * is reached only through a service proxy: kxp itself, which does not
		 * translate host-originated traffic yet. */
		const char *host = getenv("KUBERNETES_SERVICE_HOST");
		uint32_t ip;

		for (size_t i = 0; host && !kxp_parse_ip4(host, &ip) && i < c->opts.node.n_service; i++)
			if (kxp_cidr4_contains(&c->opts.node.service[i], ip)) {
				cfg_warn(c, "KUBERNETES_SERVICE_HOST %s is a Service address: the agent cannot reach "
					    "the API server through it once kube-proxy is gone; set it to the API "
					    "server's own address (deploy/configmap.yaml apiserver-host)", host);
				break;
			}
	}
	if (!c->opts.node.n_cluster)
		cfg_warn(c, "no --cluster-cidr/clusterCIDR: no source is treated as a pod (local detector off)");
	if (!c->opts.node_name[0] && gethostname(c->opts.node_name, sizeof(c->opts.node_name) - 1))
		cfg_err(c, "cannot read the hostname: %s; pass --node-name", strerror(errno));
	c->opts.node.node_name = c->opts.node_name;
}
