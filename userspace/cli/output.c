/* CLI output: errors (text on stderr, {"error": ...} on stdout under JSON),
 * JSON documents, the -o flag and small formatters shared by the listings. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

struct kxp_cli kxp_cli;

void cli_error(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (kxp_cli.json) {
		cJSON *doc = cJSON_CreateObject();

		cJSON_AddStringToObject(doc, "error", msg);
		cli_print_json(doc);
		return;
	}
	fprintf(stderr, "kxp: error: %s\n", msg);
}

void cli_print_json(cJSON *doc)
{
	char *s;

	if (!doc)
		return;
	s = cJSON_Print(doc);
	if (s) {
		fputs(s, stdout);
		fputc('\n', stdout);
		free(s);
	} else {
		/* out of memory while printing: still one JSON document */
		fputs("{\"error\": \"out of memory\"}\n", stdout);
	}
	fflush(stdout);
	cJSON_Delete(doc);
}

int cli_take_output_flag(int argc, char **argv)
{
	int out = 0;

	for (int i = 0; i < argc; i++) {
		const char *v = NULL;

		if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
			if (i + 1 >= argc)
				return -1;
			v = argv[++i];
		} else if (!strncmp(argv[i], "--output=", 9)) {
			v = argv[i] + 9;
		} else if (!strcmp(argv[i], "-j") || !strcmp(argv[i], "--json")) {
			v = "json";
		} else {
			argv[out++] = argv[i];
			continue;
		}
		if (!strcmp(v, "json"))
			kxp_cli.json = true;
		else if (!strcmp(v, "table") || !strcmp(v, "text"))
			kxp_cli.json = false;
		else
			return -1;
	}
	if (out < argc)
		argv[out] = NULL;
	return out;
}

bool cli_is_prefix(const char *arg, const char *cmd)
{
	size_t n = strlen(arg);

	return n && n <= strlen(cmd) && !strncmp(arg, cmd, n);
}

const char *cli_ip_port(uint32_t addr_be, uint16_t port_be, char *buf, size_t len)
{
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &addr_be, a, sizeof(a));
	snprintf(buf, len, "%s:%u", a, ntohs(port_be));
	return buf;
}

void cli_usage(const char *text)
{
	if (kxp_cli.json) {
		cJSON *doc = cJSON_CreateObject();

		cJSON_AddStringToObject(doc, "help", text);
		cli_print_json(doc);
		return;
	}
	fputs(text, stdout);
}
