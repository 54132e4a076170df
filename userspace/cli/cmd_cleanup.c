/* kxp cleanup: detach what an instance attached in this network namespace
 * and remove its pinned maps. Idempotent. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "dataplane/dataplane.h"

static const char cleanup_help[] =
	"Usage: kxp cleanup --instance NAME\n"
	"       kxp cleanup help\n"
	"\n"
	"Detaches the instance's XDP and TC programs in the current (or --netns) namespace,\n"
	"deletes a clsact qdisc only if kxp created it and nothing else uses it, and removes\n"
	"/sys/fs/bpf/kxp-NAME. Running it again does nothing and succeeds.\n";

int cmd_cleanup(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "instance", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *instance = NULL;
	int c, err;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			instance = optarg;
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
	if (!instance) {
		cli_error("cleanup: --instance NAME is required");
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
