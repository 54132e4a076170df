/* kxp cleanup: detach what an instance attached in this network namespace
 * and remove its pinned maps (idempotent); or, with --kube-proxy, remove
 * what kube-proxy left on the node. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "dataplane/dataplane.h"
#include "kubeproxy/cleanup.h"

static const char cleanup_help[] =
	"Usage: kxp cleanup --instance NAME\n"
	"       kxp cleanup --kube-proxy [--dry-run] [--nodeport-range MIN-MAX]\n"
	"       kxp cleanup help\n"
	"\n"
	"--instance: detaches the instance's XDP and TC programs in the current (or --netns)\n"
	"namespace, deletes a clsact qdisc only if kxp created it and nothing else uses it, and\n"
	"removes /sys/fs/bpf/kxp-NAME. Running it again does nothing and succeeds.\n"
	"\n"
	"--kube-proxy: removes what kube-proxy left in the namespace, and nothing else: the KUBE-*\n"
	"chains and the rules that jump to them in every table of iptables and ip6tables, both\n"
	"backends (legacy and nft; kubelet's KUBE-KUBELET-CANARY, mangle KUBE-IPTABLES-HINT and\n"
	"filter KUBE-FIREWALL stay), the nftables tables ip/ip6 kube-proxy, IPVS services on\n"
	"kube-ipvs0's addresses or in the NodePort range (default 30000-32767), the kube-ipvs0\n"
	"dummy device, and the KUBE-* ipsets. Uses iptables-save/-restore, nft, ipvsadm, ip and\n"
	"ipset; a missing tool or kernel feature is reported and skipped. --dry-run lists what\n"
	"would go and changes nothing. Exit 0: done (or nothing to do); 1: something failed.\n";

static int parse_range(const char *s, uint16_t *lo, uint16_t *hi)
{
	char *end;
	unsigned long a = strtoul(s, &end, 10), b;

	if (end == s || *end != '-')
		return -1;
	s = end + 1;
	b = strtoul(s, &end, 10);
	if (end == s || *end || !a || a > b || b > 65535)
		return -1;
	*lo = (uint16_t)a;
	*hi = (uint16_t)b;
	return 0;
}

static int kube_proxy_cleanup(const struct kxp_kpc_opts *o)
{
	struct kxp_kpc_report r = {};
	size_t ok = 0;
	int err;

	err = kxp_kpc_run(o, &r);
	if (err) {
		cli_error("cleanup --kube-proxy: %s", strerror(-err));
		kxp_kpc_report_free(&r);
		return 1;
	}
	for (size_t i = 0; i < r.n; i++)
		ok += !r.v[i].err;
	if (kxp_cli.json) {
		cJSON *doc = cJSON_CreateObject(), *done, *failed, *notes;

		cJSON_AddBoolToObject(doc, "dry_run", o->dry_run);
		done = cJSON_AddArrayToObject(doc, o->dry_run ? "would_remove" : "removed");
		failed = cJSON_AddArrayToObject(doc, "failed");
		for (size_t i = 0; i < r.n; i++) {
			cJSON *it = cJSON_CreateObject();

			cJSON_AddStringToObject(it, "backend", r.v[i].backend);
			cJSON_AddStringToObject(it, "table", r.v[i].table);
			cJSON_AddStringToObject(it, "kind", kxp_kpc_kind_names[r.v[i].kind]);
			cJSON_AddStringToObject(it, "name", r.v[i].what);
			if (r.v[i].err)
				cJSON_AddStringToObject(it, "error", strerror(-r.v[i].err));
			cJSON_AddItemToArray(r.v[i].err ? failed : done, it);
		}
		notes = cJSON_AddArrayToObject(doc, "notes");
		for (size_t i = 0; i < r.n_notes; i++)
			cJSON_AddItemToArray(notes, cJSON_CreateString(r.notes[i]));
		cli_print_json(doc);
	} else {
		for (size_t i = 0; i < r.n; i++) {
			const struct kxp_kpc_item *it = &r.v[i];

			printf("%s %s%s%s %s %s\n",
			       it->err ? "FAILED" : o->dry_run ? "would remove" : "removed", it->backend,
			       it->table[0] ? " " : "", it->table, kxp_kpc_kind_names[it->kind], it->what);
		}
		for (size_t i = 0; i < r.n_notes; i++)
			printf("note: %s\n", r.notes[i]);
		printf("%zu %s, %zu failed\n", ok, o->dry_run ? "to remove" : "removed", r.failed);
	}
	err = r.failed ? 1 : 0;
	kxp_kpc_report_free(&r);
	return err;
}

int cmd_cleanup(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "instance", required_argument, NULL, 'i' },
		{ "kube-proxy", no_argument, NULL, 'k' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "nodeport-range", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct kxp_kpc_opts kpo = {};
	const char *instance = NULL;
	bool kube_proxy = false, range = false;
	int c, err;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			instance = optarg;
			break;
		case 'k':
			kube_proxy = true;
			break;
		case 'n':
			kpo.dry_run = true;
			break;
		case 'r':
			if (parse_range(optarg, &kpo.nodeport_min, &kpo.nodeport_max)) {
				cli_error("cleanup: --nodeport-range \"%s\": want MIN-MAX (30000-32767)", optarg);
				return 1;
			}
			range = true;
			break;
		case 'h':
			cli_usage(cleanup_help);
			return 0;
		case ':':
			cli_error("cleanup: %s needs a value", argv[optind - 1]);
			return 1;
		default:
			cli_error("cleanup: unknown option \"%s\" (see kxp cleanup help)", argv[optind - 1]);
			return 1;
		}
	}
	if (optind < argc) {
		if (cli_is_prefix(argv[optind], "help")) {
			cli_usage(cleanup_help);
			return 0;
		}
		cli_error("cleanup: unexpected argument \"%s\"", argv[optind]);
		return 1;
	}
	if (kube_proxy && instance) {
		cli_error("cleanup: --instance and --kube-proxy exclude each other");
		return 1;
	}
	if (kube_proxy)
		return kube_proxy_cleanup(&kpo);
	if (kpo.dry_run || range) {
		cli_error("cleanup: --dry-run and --nodeport-range go with --kube-proxy");
		return 1;
	}
	if (!instance) {
		cli_error("cleanup: --instance NAME or --kube-proxy is required");
		return 1;
	}
	err = kxp_dp_cleanup(instance);
	if (err) {
		cli_error("cleanup: instance %s: %s", instance, strerror(-err));
		return 1;
	}
	if (kxp_cli.json) {
		cJSON *doc = cJSON_CreateObject();

		cJSON_AddStringToObject(doc, "instance", instance);
		cJSON_AddBoolToObject(doc, "cleaned", true);
		cli_print_json(doc);
	} else {
		printf("instance %s: detached and unpinned\n", instance);
	}
	return 0;
}
