/* kxp agent configuration: flags, a KubeProxyConfiguration file (plus a kxp
 * section) and their validation. Library code: problems are collected as
 * messages, the caller prints them. */
#ifndef KXP_AGENT_CONFIG_H
#define KXP_AGENT_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/nodeopts.h"

#define KXP_AGENT_MAX_MSGS 64

struct kxp_agent_cfg {
	char instance[64];
	/* API server: exactly one of kubeconfig, master, in-cluster */
	char kubeconfig[PATH_MAX];
	char master[512];
	char sa_dir[PATH_MAX];     /* in-cluster service-account directory ("" = the standard one) */
	char token_file[PATH_MAX]; /* with --master: bearer token file */
	char ca_file[PATH_MAX];    /* with --master: CA bundle */
	bool insecure;             /* --insecure-skip-tls-verify */
	char config_file[PATH_MAX];
	bool validate;

	/* node settings shared with kxp sync: node name and addresses, CIDRs,
	 * devices (pod_devs are fnmatch patterns), XDP mode, map sizes (dp;
	 * instance set by the caller). opts.node.node_name points at
	 * opts.node_name once checked. */
	struct kxp_nodeopts opts;
	char healthz_addr[64];     /* "host:port", "" = disabled */
	char metrics_addr[64];

	/* timers (milliseconds) */
	unsigned backoff_min_ms, backoff_max_ms;
	unsigned watch_timeout_ms, stall_timeout_ms;
	unsigned healthz_threshold_ms;
	unsigned page_limit;
	size_t max_line;

	/* problems: errors make the configuration invalid, warnings do not */
	char errors[KXP_AGENT_MAX_MSGS][256];
	size_t n_errors;
	char warnings[KXP_AGENT_MAX_MSGS][256];
	size_t n_warnings;
};

/* Defaults (kube-proxy's where it has one). */
void kxp_agent_cfg_defaults(struct kxp_agent_cfg *c);
/* Parse `kxp agent` arguments (argv[0] is "agent"): --config FILE is read
 * first, then every flag overrides it. Returns 0 (check n_errors), 1 for
 * help, or -errno. */
int kxp_agent_cfg_parse(struct kxp_agent_cfg *c, int argc, char **argv);
/* Apply a configuration document (KubeProxyConfiguration, YAML or JSON). */
int kxp_agent_cfg_load_text(struct kxp_agent_cfg *c, const char *text, size_t len, const char *origin);
/* Whole-configuration checks (one API source, addresses, timers). */
void kxp_agent_cfg_check(struct kxp_agent_cfg *c);
/* "host:port" -> address (network order, 0 = any) and port. -EINVAL. */
int kxp_parse_hostport(const char *s, uint32_t *addr, uint16_t *port);
/* "250ms", "2s", "1m", "1h"; a bare number is seconds. -EINVAL. */
int kxp_parse_duration_ms(const char *s, unsigned *ms);

extern const char kxp_agent_help[];

#endif
