/* kxp trace: run the first packet of a flow through stateless trace copies
 * of the attached programs (sharing the instance's pinned maps) and report
 * what the datapath would do. Also the shared names of reasons and verdicts. */
#ifndef KXP_TRACE_H
#define KXP_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kxp/abi.h>

#include "dataplane/dataplane.h"

struct kxp_trace_req {
	bool from_external;    /* run XDP first (the external device's path) */
	int ifindex;           /* device the packet arrives on; 0 = loopback */
	uint8_t proto;         /* IPPROTO_TCP (a SYN), IPPROTO_UDP, IPPROTO_SCTP */
	uint32_t saddr, daddr; /* network order */
	uint16_t sport, dport; /* host order */
};

struct kxp_trace_out {
	struct kxp_trace_res res; /* the decision of the stage that decided */
	int stage;                /* 1 = xdp, 2 = tc ingress */
	bool xdp_ran;
	bool xdp_untraceable;     /* the kernel cannot test-run XDP with an ingress device (< 5.12):
				   * decided from TC ingress alone */
	struct kxp_trace_res xdp; /* XDP's own decision when it ran */
	/* the packet as the programs left it (host order ports) */
	uint32_t out_saddr, out_daddr;
	uint16_t out_sport, out_dport;
};

/* Stable lower-case names ("needs_snat"), "unknown" past the table. */
const char *kxp_reason_name(unsigned r);
/* "pass", "forward", "drop", "reject". */
const char *kxp_verdict_name(unsigned v);
/* "xdp", "tc-ingress", "tc-egress". */
const char *kxp_stage_name(unsigned s);

/* Trace on an already opened trace copy (kxp_dp_opts.trace). Returns -errno. */
int kxp_trace_dp(struct kxp_dp *dp, const struct kxp_trace_req *req, struct kxp_trace_out *out);
/* Open the trace copy of `instance`, trace, close. errbuf gets a one-line
 * explanation on failure (may be NULL). Returns -errno. */
int kxp_trace_run(const char *instance, const struct kxp_trace_req *req, struct kxp_trace_out *out,
		  char *errbuf, size_t errbuf_len);

#endif
