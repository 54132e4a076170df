/* CLI: global options and the command entry points (bpftool style: one file
 * per object family, every listing with a table and a JSON twin). */
#ifndef KXP_CLI_H
#define KXP_CLI_H

#include <stdbool.h>

#include <cjson/cJSON.h>

struct kxp_cli {
	const char *netns;  /* --netns NAME: setns(2) to /run/netns/NAME (network namespace only) */
	bool json;          /* -o json */
};
extern struct kxp_cli kxp_cli;

/* Each returns the process exit status: 0 ok, 2 partial (some objects
 * rejected), 1 fatal. Errors are printed through cli_error(). */
int cmd_agent(int argc, char **argv);     /* agent (the node daemon) */
int cmd_sync(int argc, char **argv);
int cmd_cleanup(int argc, char **argv);
int cmd_svc(int argc, char **argv);      /* svc list */
int cmd_backend(int argc, char **argv);  /* backend list */
int cmd_ct(int argc, char **argv);       /* ct list */
int cmd_trace(int argc, char **argv);

/* Error reporting: text on stderr, or {"error": "..."} on stdout under -o json. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print a JSON document on stdout (one document per command). Frees it. */
void cli_print_json(cJSON *doc);
/* Parse "-o json|table" wherever it appears in a command's own arguments
 * (removes it from argv); returns the new argc, or -1 on a bad value. */
int cli_take_output_flag(int argc, char **argv);

#endif

/* ---- shared by the command files (appended) ---- */
#include <stddef.h>
#include <stdint.h>

#define KXP_VERSION "0.1.0"

int cmd_stats(int argc, char **argv);    /* stats (per-reason counters) */
int cmd_status(int argc, char **argv);   /* status (kernel capabilities, what an instance loaded) */
int cmd_maglev(int argc, char **argv);   /* maglev show */
int cmd_affinity(int argc, char **argv); /* affinity list */
/* bpftool-style prefix matching: true if arg is a non-empty prefix of cmd. */
bool cli_is_prefix(const char *arg, const char *cmd);
/* "a.b.c.d:port" from network-order address and port. */
const char *cli_ip_port(uint32_t addr_be, uint16_t port_be, char *buf, size_t len);
/* Print the first line of a multi-line help text for `kxp <object> help`. */
void cli_usage(const char *text);
