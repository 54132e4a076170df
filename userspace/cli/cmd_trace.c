/* kxp trace: what the datapath of an instance would do with the first packet
 * of a flow, decided by stateless copies of the attached programs. */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "dataplane/trace.h"

static void trace_usage(FILE *f)
{
	fprintf(f, "Usage: kxp [--netns NAME] trace --instance NAME --from pod|external [--dev DEV]\n"
		   "                 --proto tcp|udp|sctp --src IP:PORT --dst IP:PORT [-o json|table]\n"
		   "  Runs the first packet of the flow (TCP SYN, UDP datagram, SCTP header) through\n"
		   "  trace copies of the instance's programs: XDP then TC ingress for --from external,\n"
		   "  TC ingress for --from pod. Writes no state. Exit 0 whatever the verdict.\n");
}

/* "A.B.C.D:PORT", port 1..65535. */
static int parse_endpoint(const char *s, uint32_t *addr, uint16_t *port)
{
	char buf[64], *colon, *end;
	struct in_addr a;
	unsigned long p;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	colon = strrchr(buf, ':');
	if (!colon)
		return -EINVAL;
	*colon = 0;
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -EINVAL;
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || p < 1 || p > 65535)
		return -EINVAL;
	*addr = a.s_addr;
	*port = (uint16_t)p;
	return 0;
}

static const char *fmt_ep(uint32_t addr, uint16_t port_be, char *buf, size_t len)
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &addr, ip, sizeof(ip));
	snprintf(buf, len, "%s:%u", ip, ntohs(port_be));
	return buf;
}

static int print_result(const struct kxp_trace_out *o)
{
	const struct kxp_trace_res *r = &o->res;
	char src[32], dst[32], be[32];
	/* a backend only when the packet goes to one (not a passed flow's pick) */
	bool has_be = r->verdict == KXP_V_FORWARD && r->backend_addr != 0;

	fmt_ep(r->src_addr, r->src_port, src, sizeof(src));
	fmt_ep(r->dst_addr, r->dst_port, dst, sizeof(dst));
	fmt_ep(r->backend_addr, r->backend_port, be, sizeof(be));
	if (kxp_cli.json) {
		cJSON *doc = cJSON_CreateObject();

		if (!doc) {
			cli_error("trace: out of memory");
			return 1;
		}
		cJSON_AddStringToObject(doc, "verdict", kxp_verdict_name(r->verdict));
		cJSON_AddStringToObject(doc, "reason", kxp_reason_name(r->reason));
		if (has_be)
			cJSON_AddStringToObject(doc, "backend", be);
		else
			cJSON_AddNullToObject(doc, "backend");
		cJSON_AddBoolToObject(doc, "snat", r->snat);
		cJSON_AddStringToObject(doc, "src", src);
		cJSON_AddStringToObject(doc, "dst", dst);
		cJSON_AddStringToObject(doc, "stage", kxp_stage_name(o->stage));
		if (r->fe_id)
			cJSON_AddNumberToObject(doc, "frontend", r->fe_id);
		else
			cJSON_AddNullToObject(doc, "frontend");
		if (o->xdp_untraceable)
			cJSON_AddStringToObject(doc, "note", "this kernel cannot test-run XDP with an ingress device "
							     "(Linux 5.12 and later can): decided from TC ingress");
		if (o->xdp_ran && o->stage != 1) {
			cJSON *x = cJSON_AddObjectToObject(doc, "xdp");

			if (x) {
				cJSON_AddStringToObject(x, "verdict", kxp_verdict_name(o->xdp.verdict));
				cJSON_AddStringToObject(x, "reason", kxp_reason_name(o->xdp.reason));
			}
		}
		cli_print_json(doc);
		return 0;
	}
	printf("verdict   %s\n", kxp_verdict_name(r->verdict));
	printf("reason    %s\n", kxp_reason_name(r->reason));
	printf("backend   %s\n", has_be ? be : "-");
	printf("snat      %s\n", r->snat ? "yes" : "no");
	printf("src       %s\n", src);
	printf("dst       %s\n", dst);
	printf("stage     %s\n", kxp_stage_name(o->stage));
	if (r->fe_id)
		printf("frontend  %u\n", r->fe_id);
	else
		printf("frontend  -\n");
	if (o->xdp_untraceable)
		printf("note      this kernel cannot test-run XDP with an ingress device (5.12+ can): decided from TC ingress\n");
	if (o->xdp_ran && o->stage != 1)
		printf("xdp       %s (%s), then tc-ingress\n", kxp_verdict_name(o->xdp.verdict),
		       kxp_reason_name(o->xdp.reason));
	return 0;
}

int cmd_trace(int argc, char **argv)
{
	const char *instance = NULL, *from = NULL, *dev = NULL, *proto = NULL, *src = NULL, *dst = NULL;
	struct kxp_trace_req req = {};
	struct kxp_trace_out out;
	char err[256] = "";
	int i, rc;

	argc = cli_take_output_flag(argc, argv);
	if (argc < 0) {
		cli_error("trace: -o takes json or table");
		return 1;
	}
	i = argc > 0 && !strcmp(argv[0], "trace") ? 1 : 0;
	if (i < argc && !strcmp(argv[i], "help")) {
		trace_usage(stdout);
		return 0;
	}
	for (; i < argc; i++) {
		const char **slot = !strcmp(argv[i], "--instance") ? &instance :
				    !strcmp(argv[i], "--from") ? &from :
				    !strcmp(argv[i], "--dev") ? &dev :
				    !strcmp(argv[i], "--proto") ? &proto :
				    !strcmp(argv[i], "--src") ? &src :
				    !strcmp(argv[i], "--dst") ? &dst : NULL;

		if (!slot) {
			cli_error("trace: unknown argument \"%s\" (see kxp trace help)", argv[i]);
			return 1;
		}
		if (i + 1 >= argc) {
			cli_error("trace: %s needs a value", argv[i]);
			return 1;
		}
		*slot = argv[++i];
	}
	if (!instance || !from || !proto || !src || !dst) {
		cli_error("trace: --instance, --from, --proto, --src and --dst are required (see kxp trace help)");
		return 1;
	}
	if (!strcmp(from, "external")) {
		req.from_external = true;
	} else if (strcmp(from, "pod")) {
		cli_error("trace: --from takes pod or external, not \"%s\"", from);
		return 1;
	}
	if (!strcmp(proto, "tcp")) {
		req.proto = IPPROTO_TCP;
	} else if (!strcmp(proto, "udp")) {
		req.proto = IPPROTO_UDP;
	} else if (!strcmp(proto, "sctp")) {
		req.proto = IPPROTO_SCTP;
	} else {
		cli_error("trace: --proto takes tcp, udp or sctp, not \"%s\"", proto);
		return 1;
	}
	if (parse_endpoint(src, &req.saddr, &req.sport)) {
		cli_error("trace: --src \"%s\" is not IPv4:PORT", src);
		return 1;
	}
	if (parse_endpoint(dst, &req.daddr, &req.dport)) {
		cli_error("trace: --dst \"%s\" is not IPv4:PORT", dst);
		return 1;
	}
	if (dev) {
		/* if_nametoindex asks the kernel (ioctl) in the current netns,
		 * which is the right one after --netns, unlike /sys/class/net */
		req.ifindex = (int)if_nametoindex(dev);
		if (!req.ifindex) {
			cli_error("trace: device %s: %s", dev, strerror(errno));
			return 1;
		}
	}
	rc = kxp_trace_run(instance, &req, &out, err, sizeof(err));
	if (rc) {
		if (err[0])
			cli_error("trace: %s", err);
		else
			cli_error("trace: instance %s: %s", instance, strerror(-rc));
		return 1;
	}
	return print_result(&out);
}
