/* progtime: where kxp's programming time goes, stage by stage, through the
 * same library calls as `kxp sync` (decode, model, kxp_dp_apply), with the
 * datapath loaded once and unpinned: the agent's steady state, where the BPF
 * objects are loaded at start and every later sync only writes maps.
 *
 * progtime --state DIR --changed DIR [--algo random|rr|maglev]
 * prints one JSON line: load_objects_ms, model_ms, dp_open_ms, apply_ms and
 * writes (into empty maps; syscalls: the bpf() calls that wrote them), then for the changed state change_decode_ms,
 * change_model_ms, change_apply_ms and change_writes (diff of everything,
 * only the difference written). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataplane/dataplane.h"
#include "k8s/objects.h"
#include "lib/diag.h"
#include "lib/ip.h"
#include "model/model.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* decode + model of one directory; times in *dec and *mod */
static int build(const char *dir, const struct kxp_node_cfg *cfg, struct kxp_desired *d, double *dec, double *mod)
{
	struct kxp_objects objs = {};
	struct kxp_diags diags = {};
	double t0 = now_ms(), t1;
	int err;

	err = kxp_objects_load_path(&objs, dir, &diags);
	t1 = now_ms();
	if (!err)
		err = kxp_model_build(&objs, cfg, d, &diags);
	*dec = t1 - t0;
	*mod = now_ms() - t1;
	if (diags.n)
		fprintf(stderr, "progtime: %zu object(s) rejected in %s\n", diags.n, dir);
	kxp_objects_free(&objs);
	return err;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "changed", required_argument, NULL, 'c' },
		{ "algo", required_argument, NULL, 'a' },
		{ "max-backends", required_argument, NULL, 'b' },
		{},
	};
	const char *state = NULL, *changed = NULL;
	struct kxp_node_cfg cfg = { .node_name = "node1", .nodeport_primary = true };
	struct kxp_dp_opts o = { .no_pin = true };
	struct kxp_desired d = {}, d2 = {};
	struct kxp_apply_stats st = {}, st2 = {};
	struct kxp_dp *dp = NULL;
	double dec, mod, dec2, mod2, t0, t_open, t_apply, t_apply2;
	char errbuf[256] = "";
	int c, err;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			state = optarg;
			break;
		case 'c':
			changed = optarg;
			break;
		case 'a':
			cfg.default_algo = !strcmp(optarg, "rr")     ? KXP_ALGO_RR :
					   !strcmp(optarg, "maglev") ? KXP_ALGO_MAGLEV :
								       KXP_ALGO_RANDOM;
			break;
		case 'b':
			o.max_backends = strtoul(optarg, NULL, 10);
			o.max_slots = 2 * o.max_backends;
			break;
		default:
			return 2;
		}
	}
	if (!state || !changed) {
		fprintf(stderr, "usage: progtime --state DIR --changed DIR [--algo A] [--max-backends N]\n");
		return 2;
	}
	/* the node and CIDRs of the other scenarios (30-program.sh) */
	cfg.node_ips[cfg.n_node_ips++] = inet_addr("198.51.100.1");
	kxp_parse_cidr4("10.244.0.0/16", &cfg.cluster[cfg.n_cluster++]);
	kxp_parse_cidr4("10.96.0.0/12", &cfg.service[cfg.n_service++]);

	err = build(state, &cfg, &d, &dec, &mod);
	if (err)
		return fprintf(stderr, "progtime: %s: %s\n", state, strerror(-err)), 1;
	o.errbuf = errbuf;
	o.errbuf_len = sizeof(errbuf);
	t0 = now_ms();
	err = kxp_dp_open(&dp, &o);
	t_open = now_ms() - t0;
	if (err)
		return fprintf(stderr, "progtime: kxp_dp_open: %s %s\n", strerror(-err), errbuf), 1;
	t0 = now_ms();
	err = kxp_dp_apply(dp, &d, &st);
	t_apply = now_ms() - t0;
	if (err)
		fprintf(stderr, "progtime: apply: %s (%u not written)\n", strerror(-err), st.n_failed);

	err = build(changed, &cfg, &d2, &dec2, &mod2);
	if (err)
		return fprintf(stderr, "progtime: %s: %s\n", changed, strerror(-err)), 1;
	t0 = now_ms();
	err = kxp_dp_apply(dp, &d2, &st2);
	t_apply2 = now_ms() - t0;

	printf("{\"frontends\":%zu,\"decode_ms\":%.3f,\"model_ms\":%.3f,\"dp_open_ms\":%.3f,\"apply_ms\":%.3f,"
	       "\"writes\":%u,\"syscalls\":%u,\"failed\":%u,\"change_decode_ms\":%.3f,\"change_model_ms\":%.3f,"
	       "\"change_apply_ms\":%.3f,\"change_writes\":%u}\n",
	       d.n_fe, dec, mod, t_open, t_apply, st.writes, st.syscalls, st.n_failed, dec2, mod2, t_apply2, st2.writes);
	kxp_desired_free(&d);
	kxp_desired_free(&d2);
	kxp_dp_close(dp);
	return 0;
}
