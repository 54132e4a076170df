/* kxp agent: parse and check the configuration (--validate stops there),
 * then run the node daemon until SIGTERM/SIGINT. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/config.h"
#include "cli/cli.h"
#include "lib/ip.h"
#include "lib/log.h"

static void print_validation(const struct kxp_agent_cfg *c)
{
	char ipb[16];

	if (kxp_cli.json) {
		cJSON *doc = cJSON_CreateObject(), *e, *w, *ips;

		cJSON_AddBoolToObject(doc, "valid", c->n_errors == 0);
		e = cJSON_AddArrayToObject(doc, "errors");
		for (size_t i = 0; i < c->n_errors; i++)
			cJSON_AddItemToArray(e, cJSON_CreateString(c->errors[i]));
		w = cJSON_AddArrayToObject(doc, "warnings");
		for (size_t i = 0; i < c->n_warnings; i++)
			cJSON_AddItemToArray(w, cJSON_CreateString(c->warnings[i]));
		cJSON_AddStringToObject(doc, "instance", c->instance);
		cJSON_AddStringToObject(doc, "node_name", c->opts.node_name);
		ips = cJSON_AddArrayToObject(doc, "node_ips");
		for (size_t i = 0; i < c->opts.node.n_node_ips; i++)
			cJSON_AddItemToArray(ips, cJSON_CreateString(kxp_ip4_str(c->opts.node.node_ips[i], ipb)));
		cJSON_AddNumberToObject(doc, "cluster_cidrs", (double)c->opts.node.n_cluster);
		cJSON_AddNumberToObject(doc, "service_cidrs", (double)c->opts.node.n_service);
		cJSON_AddStringToObject(doc, "nodeport_addresses", c->opts.node.nodeport_primary ? "primary" : "cidrs");
		cJSON_AddBoolToObject(doc, "masquerade_all", c->opts.node.masquerade_all);
		cJSON_AddStringToObject(doc, "lb_algorithm",
					c->opts.node.default_algo == KXP_ALGO_RR	? "rr" :
					c->opts.node.default_algo == KXP_ALGO_MAGLEV ? "maglev" :
										  "random");
		cJSON_AddStringToObject(doc, "healthz_bind_address", c->healthz_addr);
		cJSON_AddStringToObject(doc, "metrics_bind_address", c->metrics_addr);
		cJSON_AddNumberToObject(doc, "healthz_threshold_ms", c->healthz_threshold_ms);
		cJSON_AddNumberToObject(doc, "max_frontends", c->opts.dp.max_frontends);
		cli_print_json(doc);
		return;
	}
	for (size_t i = 0; i < c->n_errors; i++)
		fprintf(stderr, "kxp: agent: error: %s\n", c->errors[i]);
	for (size_t i = 0; i < c->n_warnings; i++)
		fprintf(stderr, "kxp: agent: warning: %s\n", c->warnings[i]);
	if (c->validate && !c->n_errors)
		printf("configuration valid (%zu warning%s)\n", c->n_warnings, c->n_warnings == 1 ? "" : "s");
}

int cmd_agent(int argc, char **argv)
{
	static struct kxp_agent_cfg c;
	int r;

	kxp_agent_cfg_defaults(&c);
	r = kxp_agent_cfg_parse(&c, argc, argv);
	if (r == 1) {
		fputs(kxp_agent_help, stdout);
		return 0;
	}
	if (r < 0) {
		cli_error("agent: %s", strerror(-r));
		return 1;
	}
	if (c.validate || c.n_errors) {
		print_validation(&c);
		return c.n_errors ? 1 : 0;
	}
	print_validation(&c); /* warnings */
	if (getenv("KXP_LOG_DEBUG"))
		kxp_log_level = KXP_LOG_DEBUG;
	return kxp_agent_run(&c);
}
