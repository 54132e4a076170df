/* kxp entry point: global options (--netns, -o json), the object table with
 * bpftool-style prefix matching, top-level help and version. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <bpf/libbpf.h>
#include <kxp/abi.h>

#include "cli/cli.h"
#include "lib/netns.h"

static bool debug;

static const char usage_text[] =
	"Usage: kxp [OPTIONS] OBJECT { COMMAND | help }\n"
	"       kxp help\n"
	"\n"
	"OBJECT := { agent | sync | cleanup | status | svc | backend | ct | stats | trace | maglev |\n"
	"           affinity | version }\n"
	"OPTIONS := { --netns NAME | -o { json | table } | -d }\n"
	"\n"
	"  agent    the node daemon: watch the API server and keep the maps in step\n"
	"  sync     write the state described by manifests into an instance's maps and attach\n"
	"  cleanup  detach an instance and remove its pinned maps\n"
	"  status   the kernel's capabilities; what an instance loaded, its fallbacks, devices, map fill\n"
	"  svc      list frontends with their backends and counters\n"
	"  backend  list backends\n"
	"  ct       list conntrack entries\n"
	"  stats    per-reason packet counters\n"
	"  trace    run a packet through a read-only copy of the datapath\n"
	"  version  print the version and the map layout version\n"
	"\n"
	"--netns NAME enters /run/netns/NAME (network namespace only; /sys/fs/bpf stays visible).\n"
	"Each OBJECT has its own help: kxp OBJECT help\n";

/* Built when the trace command is part of the tree; until then say so. */
__attribute__((weak)) int cmd_trace(int argc, char **argv)
{
	cli_error("trace: not built into this kxp");
	return 1;
}

static int cmd_help(int argc, char **argv)
{
	cli_usage(usage_text);
	return 0;
}

static int cmd_version(int argc, char **argv)
{
	if (argc > 1 && !cli_is_prefix(argv[1], "help")) {
		cli_error("version: unexpected argument \"%s\"", argv[1]);
		return 1;
	}
	if (kxp_cli.json) {
		cJSON *doc = cJSON_CreateObject();

		cJSON_AddStringToObject(doc, "version", KXP_VERSION);
		cJSON_AddNumberToObject(doc, "layout_version", KXP_LAYOUT_VERSION);
		cli_print_json(doc);
	} else {
		printf("kxp version %s\nmap layout version %d\n", KXP_VERSION, KXP_LAYOUT_VERSION);
	}
	return 0;
}

static const struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
} cmds[] = {
	{ "help", cmd_help },	    { "agent", cmd_agent }, { "sync", cmd_sync },   { "cleanup", cmd_cleanup }, { "svc", cmd_svc },
	{ "backend", cmd_backend }, { "ct", cmd_ct },	    { "stats", cmd_stats },	{ "trace", cmd_trace },
	{ "version", cmd_version }, { "maglev", cmd_maglev }, { "affinity", cmd_affinity },
	{ "status", cmd_status },
};

static bool exact(const struct cmd *c, const char *arg)
{
	return c && !strcmp(c->name, arg);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* libbpf's warnings carry the verifier log of a failed load: keep them */
	if (level == LIBBPF_DEBUG || (level == LIBBPF_INFO && !debug))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

int main(int argc, char **argv)
{
	const struct cmd *hit = NULL;
	int i, err;

	argc = cli_take_output_flag(argc, argv);
	if (argc < 0) {
		cli_error("-o takes json or table");
		return 1;
	}
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--netns")) {
			if (++i >= argc) {
				cli_error("--netns needs a namespace name");
				return 1;
			}
			kxp_cli.netns = argv[i];
		} else if (!strncmp(argv[i], "--netns=", 8)) {
			kxp_cli.netns = argv[i] + 8;
		} else if (!strcmp(argv[i], "-d") || !strcmp(argv[i], "--debug")) {
			debug = true;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			return cmd_help(0, NULL);
		} else if (!strcmp(argv[i], "-V") || !strcmp(argv[i], "--version")) {
			return cmd_version(0, NULL);
		} else {
			cli_error("unknown option \"%s\" (see kxp help)", argv[i]);
			return 1;
		}
	}
	if (i >= argc) {
		if (kxp_cli.json) {
			cli_error("no object given (see kxp help)");
			return 1;
		}
		fputs(usage_text, stderr);
		return 1;
	}
	for (size_t c = 0; c < sizeof(cmds) / sizeof(cmds[0]) && !hit; c++)
		if (!strcmp(argv[i], cmds[c].name))
			hit = &cmds[c];
	for (size_t c = 0; c < sizeof(cmds) / sizeof(cmds[0]) && !exact(hit, argv[i]); c++) {
		if (!cli_is_prefix(argv[i], cmds[c].name))
			continue;
		if (hit) {
			cli_error("\"%s\" is ambiguous: %s or %s", argv[i], hit->name, cmds[c].name);
			return 1;
		}
		hit = &cmds[c];
	}
	if (!hit) {
		cli_error("unknown object \"%s\" (see kxp help)", argv[i]);
		return 1;
	}
	libbpf_set_print(libbpf_print);
	if (kxp_cli.netns && hit->fn != cmd_help && hit->fn != cmd_version) {
		err = kxp_netns_enter(kxp_cli.netns);
		if (err) {
			cli_error("netns %s: cannot enter /run/netns/%s: %s", kxp_cli.netns, kxp_cli.netns,
				  strerror(-err));
			return 1;
		}
	}
	return hit->fn(argc - i, argv + i);
}
