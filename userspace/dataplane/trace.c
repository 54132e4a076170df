/* kxp trace: craft the first packet of a flow, run it through the trace
 * copies (XDP, then TC ingress when XDP left it untouched, as the node
 * does), and collect the decision each program published in kxp_trace_res.
 * Trace copies write no map state, so tracing never disturbs the node. */
#include "dataplane/trace.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static const char *const reason_names[KXP_R_MAX] = {
	[KXP_R_OK] = "ok",
	[KXP_R_NOT_SERVICE] = "not_service",
	[KXP_R_MALFORMED] = "malformed",
	[KXP_R_FRAGMENT] = "fragment",
	[KXP_R_UNKNOWN_PROTO] = "unknown_proto",
	[KXP_R_NO_ENDPOINTS] = "no_endpoints",
	[KXP_R_POLICY_DROP] = "policy_drop",
	[KXP_R_SVC_CIDR_DROP] = "svc_cidr_drop",
	[KXP_R_PORT_UNKNOWN] = "port_unknown",
	[KXP_R_NEEDS_SNAT] = "needs_snat",
	[KXP_R_CT_MISS] = "ct_miss",
	[KXP_R_NO_BACKEND] = "no_backend",
	[KXP_R_CSUM] = "csum",
	[KXP_R_LBSR_DENY] = "lbsr_deny",
	[KXP_R_SNAT_FAIL] = "snat_fail",
	[KXP_R_REJECT_LIMIT] = "reject_limit",
	[KXP_R_REPLY] = "reply",
	[KXP_R_CT_HIT] = "ct_hit",
	[KXP_R_NOT_IPV4] = "not_ipv4",
	[KXP_R_NO_ROUTE] = "no_route",
	[KXP_R_FRAG_NEEDED] = "frag_needed",
	[KXP_R_ICMP_ERR] = "icmp_err",
	[KXP_R_NO_REJECT] = "no_reject",
	[KXP_R_SOCK_XLATE] = "sock_xlate",
	[KXP_R_SOCK_REVNAT] = "sock_revnat",
	[KXP_R_CT_FULL] = "ct_full",
};

const char *kxp_reason_name(unsigned r)
{
	return r < KXP_R_MAX && reason_names[r] ? reason_names[r] : "unknown";
}

const char *kxp_verdict_name(unsigned v)
{
	static const char *const n[] = { [KXP_V_PASS] = "pass", [KXP_V_FORWARD] = "forward",
					 [KXP_V_DROP] = "drop", [KXP_V_REJECT] = "reject" };

	return v < sizeof(n) / sizeof(n[0]) ? n[v] : "unknown";
}

const char *kxp_stage_name(unsigned s)
{
	static const char *const n[] = { "none", "xdp", "tc-ingress", "tc-egress" };

	return s < sizeof(n) / sizeof(n[0]) ? n[s] : "unknown";
}

#define FRAME_MAX 128
#define ETH_LEN 14

static uint16_t csum_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static uint32_t csum_add(uint32_t s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

/* The first packet of the flow: TCP SYN, empty UDP datagram, or a bare SCTP
 * common header (no INIT chunk: the datapath does not look at chunks). */
static size_t build_frame(const struct kxp_trace_req *r, uint8_t *f)
{
	uint8_t *ip = f + ETH_LEN, *l4 = ip + 20, ph[12];
	size_t l4len = r->proto == IPPROTO_TCP ? 20 : r->proto == IPPROTO_UDP ? 8 : 12;
	uint32_t s;

	memset(f, 0, FRAME_MAX);
	f[0] = 0x02; /* locally administered, unicast */
	f[6] = 0x02;
	f[11] = 0x01;
	put16(f + 12, 0x0800);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(20 + l4len));
	put16(ip + 6, 0x4000); /* DF */
	ip[8] = 64;
	ip[9] = r->proto;
	memcpy(ip + 12, &r->saddr, 4);
	memcpy(ip + 16, &r->daddr, 4);
	put16(ip + 10, csum_fold(csum_add(0, ip, 20)));

	put16(l4, r->sport);
	put16(l4 + 2, r->dport);
	memcpy(ph, ip + 12, 8);
	ph[8] = 0;
	ph[9] = r->proto;
	put16(ph + 10, (uint16_t)l4len);
	if (r->proto == IPPROTO_TCP) {
		put16(l4 + 4, 0x6b78); /* arbitrary ISN */
		l4[12] = 5 << 4;
		l4[13] = 0x02; /* SYN */
		put16(l4 + 14, 64240);
		s = csum_add(csum_add(0, ph, 12), l4, l4len);
		put16(l4 + 16, csum_fold(s));
	} else if (r->proto == IPPROTO_UDP) {
		put16(l4 + 4, (uint16_t)l4len);
		s = csum_add(csum_add(0, ph, 12), l4, l4len);
		put16(l4 + 6, csum_fold(s) ? csum_fold(s) : 0xffff);
	}
	return ETH_LEN + 20 + l4len < 60 ? 60 : ETH_LEN + 20 + l4len;
}

static void decode_frame(const uint8_t *f, size_t len, struct kxp_trace_out *out)
{
	const uint8_t *ip = f + ETH_LEN, *l4;

	if (len < ETH_LEN + 20 + 4 || (ip[0] >> 4) != 4)
		return;
	l4 = ip + (ip[0] & 15) * 4;
	if (l4 + 4 > f + len)
		return;
	memcpy(&out->out_saddr, ip + 12, 4);
	memcpy(&out->out_daddr, ip + 16, 4);
	out->out_sport = (uint16_t)(l4[0] << 8 | l4[1]);
	out->out_dport = (uint16_t)(l4[2] << 8 | l4[3]);
}

int kxp_trace_dp(struct kxp_dp *dp, const struct kxp_trace_req *req, struct kxp_trace_out *out)
{
	uint8_t in[FRAME_MAX], buf[FRAME_MAX + 64];
	const struct kxp_trace_res *res;
	size_t len;
	int err;

	memset(out, 0, sizeof(*out));
	if (req->proto != IPPROTO_TCP && req->proto != IPPROTO_UDP && req->proto != IPPROTO_SCTP)
		return -EPROTONOSUPPORT;
	len = build_frame(req, in);

	/* an instance without XDP (off, or refused) meets the packet at TC */
	if (req->from_external && kxp_dp_prog_xdp(dp) >= 0) {
		struct xdp_md ctx = { .data_end = (__u32)len, .ingress_ifindex = (__u32)req->ifindex }, cout = {};
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = (__u32)len, .data_out = buf,
			    .data_size_out = sizeof(buf), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
			    .ctx_out = &cout, .ctx_size_out = sizeof(cout), .repeat = 1);

		if (bpf_prog_test_run_opts(kxp_dp_prog_xdp(dp), &o)) {
			if (errno != EINVAL)
				return -errno;
			/* no xdp_md input before 5.12: TC decides the same frontend */
			out->xdp_untraceable = true;
			goto tc;
		}
		res = kxp_dp_trace_res(dp, 1);
		if (!res)
			return -EINVAL;
		out->xdp_ran = true;
		out->xdp = *res;
		out->res = *res;
		out->stage = 1;
		if (cout.data > o.data_size_out)
			return -EIO;
		decode_frame(buf + cout.data, o.data_size_out - cout.data, out);
		/* XDP translated, dropped or rejected it: that is the node's answer.
		 * Untouched packets continue to TC ingress on the same device. */
		if (res->verdict != KXP_V_PASS || o.retval != XDP_PASS)
			return 0;
		len = o.data_size_out - cout.data;
		if (len > sizeof(in))
			return -EIO;
		memcpy(in, buf + cout.data, len);
	}

tc:
	{
		struct __sk_buff skb = { .ifindex = (__u32)req->ifindex, .ingress_ifindex = (__u32)req->ifindex };
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = (__u32)len, .data_out = buf,
			    .data_size_out = sizeof(buf), .ctx_in = &skb, .ctx_size_in = sizeof(skb), .repeat = 1);

		err = bpf_prog_test_run_opts(kxp_dp_prog_tc_ingress(dp), &o);
		if (err && errno == EINVAL) { /* no ingress_ifindex input before 5.12 */
			skb.ingress_ifindex = 0;
			err = bpf_prog_test_run_opts(kxp_dp_prog_tc_ingress(dp), &o);
		}
		if (err) {
			err = -errno;
			return err;
		}
		res = kxp_dp_trace_res(dp, 2);
		if (!res)
			return -EINVAL;
		out->res = *res;
		out->stage = 2;
		decode_frame(buf, o.data_size_out, out);
	}
	return 0;
}

int kxp_trace_run(const char *instance, const struct kxp_trace_req *req, struct kxp_trace_out *out,
		  char *errbuf, size_t errbuf_len)
{
	struct kxp_dp_opts o = { .instance = instance, .trace = true, .errbuf = errbuf, .errbuf_len = errbuf_len };
	struct kxp_dp *dp;
	int err;

	err = kxp_dp_open(&dp, &o);
	if (err)
		return err;
	err = kxp_trace_dp(dp, req, out);
	if (err && errbuf && errbuf_len)
		snprintf(errbuf, errbuf_len, "running the trace copy: %s", strerror(-err));
	kxp_dp_close(dp);
	return err;
}
