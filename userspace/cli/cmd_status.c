/* kxp status: the running kernel, every capability kxp probes, and for an
 * instance what its last kxp process loaded, the fallbacks in force, the
 * devices it attached to (with their XDP mode) and how full its maps are. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <bpf/bpf.h>

#include <kxp/abi.h>

#include "cli/cli.h"
#include "dataplane/dataplane.h"
#include "dataplane/probe.h"

static const char status_help[] = "Usage: kxp status [--instance I]\n"
				  "  The kernel, what it offers kxp (each probed capability, what needs it,\n"
				  "  the kernel that added it, what kxp does without it); with --instance, what\n"
				  "  that instance loaded, the fallbacks in force, its devices and map fill.\n";

static const struct {
	uint32_t bit;
	const char *name;
} feat_names[] = {
	{ KXP_FEAT_XDP_META, "xdp-metadata" },
	{ KXP_FEAT_COARSE_CLOCK, "coarse-clock" },
	{ KXP_FEAT_SET_RETVAL, "set-retval" },
	{ KXP_FEAT_BPF_LOOP, "bpf-loop" },
	{ KXP_FEAT_FIB_SKIP_NEIGH, "fib-skip-neigh" },
	{ KXP_FEAT_FIB_SRC, "fib-src" },
};

static void caps_out(const struct kxp_caps *c, cJSON *doc)
{
	cJSON *arr = doc ? cJSON_AddArrayToObject(doc, "capabilities") : NULL;

	if (!doc) {
		printf("kernel %s (kxp needs Linux %s or later)\n\n", c->kernel, KXP_MIN_KERNEL);
		printf("%-38s %-5s %-10s %-6s %s\n", "CAPABILITY", "HAVE", "NEEDED BY", "SINCE", "WITHOUT IT");
	}
	for (int i = 0; i < KXP_CAP__COUNT; i++) {
		const struct kxp_cap_desc *d = kxp_cap_desc(i);

		if (arr) {
			cJSON *o = cJSON_CreateObject();

			cJSON_AddStringToObject(o, "name", d->name);
			cJSON_AddBoolToObject(o, "available", c->have[i]);
			cJSON_AddStringToObject(o, "needed_by", kxp_cap_need_name(d->need));
			cJSON_AddStringToObject(o, "since", d->since);
			cJSON_AddStringToObject(o, "without", d->need == KXP_NEED_CORE ? "kxp cannot run" : d->without);
			cJSON_AddItemToArray(arr, o);
		} else {
			printf("%-38s %-5s %-10s %-6s %s\n", d->name, c->have[i] ? "yes" : "NO", kxp_cap_need_name(d->need),
			       d->since, d->need == KXP_NEED_CORE ? "kxp cannot run" : d->without);
		}
	}
}

static int instance_out(const char *instance, const struct kxp_caps *c, cJSON *doc)
{
	struct kxp_dp_att att[64];
	struct kxp_config cfg = {};
	struct kxp_dp *dp = NULL;
	cJSON *io = NULL, *arr;
	char fb[8][256];
	size_t nfb = 0;
	__u32 zero = 0;
	int err, n;

	err = kxp_dp_open_pinned(&dp, instance);
	if (err) {
		cli_error("status: instance %s: %s", instance,
			  err == -ENOENT ? "no pinned maps (not synced, or cleaned up)" :
			  err == -EPROTO ? "pinned maps of another layout version (an older one is migrated by the next kxp sync or agent)" : strerror(-err));
		return 1;
	}
	if (bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_CONFIG), &zero, &cfg))
		memset(&cfg, 0, sizeof(cfg));
	/* the fallbacks in force: what the kernel lacks, and what was refused */
	for (int i = 0; i < KXP_CAP__COUNT && nfb < 8; i++)
		if (!c->have[i] && kxp_cap_desc(i)->need == KXP_NEED_FALLBACK)
			snprintf(fb[nfb++], sizeof(fb[0]), "%s: %s", kxp_cap_desc(i)->name, kxp_cap_desc(i)->without);
	if (cfg.loaded && !(cfg.loaded & KXP_LOADED_XDP) && nfb < 8)
		snprintf(fb[nfb++], sizeof(fb[0]), "no XDP object (--xdp-mode off, or refused by the kernel): "
						   "external devices are served by TC ingress");
	n = kxp_dp_attachments(instance, att, sizeof(att) / sizeof(att[0]));

	if (doc) {
		io = cJSON_AddObjectToObject(doc, "instance");
		cJSON_AddStringToObject(io, "name", instance);
		if (cfg.loaded) {
			cJSON *lo = cJSON_AddObjectToObject(io, "loaded");

			cJSON_AddBoolToObject(lo, "tc", cfg.loaded & KXP_LOADED_TC);
			cJSON_AddBoolToObject(lo, "xdp", cfg.loaded & KXP_LOADED_XDP);
			cJSON_AddBoolToObject(lo, "socket_hooks", cfg.loaded & KXP_LOADED_SOCK);
			cJSON_AddBoolToObject(lo, "bpf_loop", !(cfg.loaded & KXP_LOADED_NOLOOP));
		} else {
			cJSON_AddNullToObject(io, "loaded");
		}
		arr = cJSON_AddArrayToObject(io, "features");
		for (size_t i = 0; i < sizeof(feat_names) / sizeof(feat_names[0]); i++)
			if (cfg.features & feat_names[i].bit)
				cJSON_AddItemToArray(arr, cJSON_CreateString(feat_names[i].name));
		arr = cJSON_AddArrayToObject(io, "fallbacks");
		for (size_t i = 0; i < nfb; i++)
			cJSON_AddItemToArray(arr, cJSON_CreateString(fb[i]));
		arr = cJSON_AddArrayToObject(io, "devices");
		for (int i = 0; i < n; i++) {
			cJSON *o = cJSON_CreateObject();

			cJSON_AddStringToObject(o, "dev", att[i].ifname);
			cJSON_AddNumberToObject(o, "ifindex", att[i].ifindex);
			cJSON_AddStringToObject(o, "xdp", kxp_xdp_mode_name(att[i].xdp));
			cJSON_AddBoolToObject(o, "tc", att[i].tc);
			cJSON_AddBoolToObject(o, "this_netns", att[i].here);
			cJSON_AddItemToArray(arr, o);
		}
		arr = cJSON_AddArrayToObject(io, "maps");
	} else {
		printf("\ninstance %s: ", instance);
		if (!cfg.loaded) {
			printf("loaded by a kxp before capability probing\n");
		} else {
			printf("loaded tc%s%s, objects %s bpf_loop; features", (cfg.loaded & KXP_LOADED_XDP) ? " xdp" : "",
			       (cfg.loaded & KXP_LOADED_SOCK) ? " socket-hooks" : "",
			       (cfg.loaded & KXP_LOADED_NOLOOP) ? "without" : "with");
			for (size_t i = 0; i < sizeof(feat_names) / sizeof(feat_names[0]); i++)
				if (cfg.features & feat_names[i].bit)
					printf(" %s", feat_names[i].name);
			printf("\n");
		}
		for (size_t i = 0; i < nfb; i++)
			printf("fallback: %s\n", fb[i]);
		printf("\n%-16s %-8s %-8s %-4s %s\n", "DEVICE", "IFINDEX", "XDP", "TC", "NETNS");
		for (int i = 0; i < n; i++)
			printf("%-16s %-8d %-8s %-4s %s\n", att[i].ifname, att[i].ifindex, kxp_xdp_mode_name(att[i].xdp),
			       att[i].tc ? "yes" : "no", att[i].here ? "this" : "other");
		printf("\n%-14s %10s %10s\n", "MAP", "ENTRIES", "MAX");
		arr = NULL;
	}
	for (int i = 0; i < KXP_MAP__COUNT; i++) {
		int fd = kxp_dp_map_fd(dp, i);
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);
		bool hash;
		long cnt;

		if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
			continue;
		hash = info.type == BPF_MAP_TYPE_HASH || info.type == BPF_MAP_TYPE_LRU_HASH ||
		       info.type == BPF_MAP_TYPE_LPM_TRIE;
		/* arrays are always full, except those by id and kxp_slot (unused = 0) */
		cnt = hash || i == KXP_MAP_BACKEND || i == KXP_MAP_REVNAT || i == KXP_MAP_SLOT ? kxp_map_count(fd) : -1;
		if (arr) {
			cJSON *o = cJSON_CreateObject();

			cJSON_AddStringToObject(o, "map", kxp_map_pin_name(i));
			if (cnt >= 0)
				cJSON_AddNumberToObject(o, "entries", (double)cnt);
			else
				cJSON_AddNullToObject(o, "entries");
			cJSON_AddNumberToObject(o, "max_entries", info.max_entries);
			cJSON_AddItemToArray(arr, o);
		} else if (cnt >= 0) {
			printf("%-14s %10ld %10u\n", kxp_map_pin_name(i), cnt, info.max_entries);
		} else {
			printf("%-14s %10s %10u\n", kxp_map_pin_name(i), "-", info.max_entries);
		}
	}
	kxp_dp_close(dp);
	return 0;
}

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "instance", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const struct kxp_caps *c;
	const char *instance = NULL;
	cJSON *doc = NULL;
	int ch, ret = 0;

	if (argc > 1 && argv[1][0] != '-') {
		if (cli_is_prefix(argv[1], "help")) {
			cli_usage(status_help);
			return 0;
		}
		if (!cli_is_prefix(argv[1], "show")) {
			cli_error("status: unknown command \"%s\" (see kxp status help)", argv[1]);
			return 1;
		}
		argc--;
		argv++;
	}
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'i':
			instance = optarg;
			break;
		case 'h':
			cli_usage(status_help);
			return 0;
		case ':':
			cli_error("status: %s needs a value", argv[optind - 1]);
			return 1;
		default:
			cli_error("status: unknown option \"%s\" (see kxp status help)", argv[optind - 1]);
			return 1;
		}
	}
	if (optind < argc) {
		cli_error("status: unexpected argument \"%s\"", argv[optind]);
		return 1;
	}
	c = kxp_probe();
	if (kxp_cli.json) {
		doc = cJSON_CreateObject();
		cJSON_AddStringToObject(doc, "kernel", c->kernel);
		cJSON_AddStringToObject(doc, "min_kernel", KXP_MIN_KERNEL);
	}
	caps_out(c, doc);
	if (instance)
		ret = instance_out(instance, c, doc);
	if (doc) {
		if (ret)
			cJSON_Delete(doc); /* the error was printed as the document */
		else
			cli_print_json(doc);
	}
	return ret;
}
