/* Datapath fixtures: packets through the real XDP and TC programs with
 * BPF_PROG_TEST_RUN, maps provisioned by the real writer. Each test builds
 * packets, sets up a node, and checks verdict, rewritten headers, checksums
 * (recomputed from scratch), ct entries and counters. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>

#include "../lib/testlib.h"
#include "tenv.h"

#define CIP2 A(10, 96, 0, 11) /* no endpoints at all: REJECT */
#define CIP3 A(10, 96, 0, 12) /* backend POD_A: hairpin */
#define EXT_OUT A(192, 0, 2, 1) /* outside every LB source range */
/* The mark XDP leaves in the metadata of a packet it counted (bpf/lib/stats.h). */
#define KXP_META_COUNTED_TEST 0x6b787031

/* Frontends of the standard node (see setup). */
#define NP_LOCAL 30080   /* eTP=Local NodePort, local set POD_B, cluster set POD_R */
#define NP_CLUSTER 30081 /* eTP=Cluster NodePort */
#define NP_NOLOCAL 30082 /* eTP=Local NodePort with no local endpoint */

static int S_TCP, S_UDP, S_LOCAL, S_SCTP, S_SCTP2, S_HAIR;

/* A node with the frontends every test uses; single-backend sets make the
 * random choice deterministic. */
static int setup(struct tenv *e)
{
	const uint16_t ext = KXP_SVC_F_EXTERNAL, etpl = KXP_SVC_F_ETP_LOCAL | ext;
	const uint16_t split = KXP_SVC_F_SPLIT | KXP_SVC_F_LOCAL_SET | etpl;

	if (tenv_netns() || tenv_open(e))
		return -1;
	tenv_dev("ext0");
	S_TCP = tenv_set(e, IPPROTO_TCP, 1, (uint32_t[]){ POD_R }, (uint16_t[]){ 8080 });
	S_UDP = tenv_set(e, IPPROTO_UDP, 1, (uint32_t[]){ POD_R }, (uint16_t[]){ 5353 });
	S_LOCAL = tenv_set(e, IPPROTO_TCP, 1, (uint32_t[]){ POD_B }, (uint16_t[]){ 8080 });
	S_SCTP = tenv_set(e, IPPROTO_SCTP, 1, (uint32_t[]){ POD_R }, (uint16_t[]){ 9000 });
	S_SCTP2 = tenv_set(e, IPPROTO_SCTP, 1, (uint32_t[]){ POD_R }, (uint16_t[]){ 9100 });
	S_HAIR = tenv_set(e, IPPROTO_TCP, 1, (uint32_t[]){ POD_A }, (uint16_t[]){ 8080 });

	tenv_fe(e, CIP, 80, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_CLUSTERIP, 0, S_TCP);
	tenv_fe(e, CIP, 53, IPPROTO_UDP, KXP_SCOPE_DEFAULT, KXP_FE_CLUSTERIP, 0, S_UDP);
	tenv_fe(e, CIP, 9000, IPPROTO_SCTP, KXP_SCOPE_DEFAULT, KXP_FE_CLUSTERIP, 0, S_SCTP);
	tenv_fe(e, CIP, 9001, IPPROTO_SCTP, KXP_SCOPE_DEFAULT, KXP_FE_CLUSTERIP, 0, S_SCTP2);
	tenv_fe(e, CIP, 0, 0, KXP_SCOPE_DEFAULT, KXP_FE_CLUSTERIP, KXP_SVC_F_WILDCARD, -1);
	tenv_fe(e, CIP2, 80, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_CLUSTERIP, KXP_SVC_F_REJECT, -1);
	tenv_fe(e, CIP2, 0, 0, KXP_SCOPE_DEFAULT, KXP_FE_CLUSTERIP, KXP_SVC_F_WILDCARD, -1);
	tenv_fe(e, CIP3, 80, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_CLUSTERIP, 0, S_HAIR);
	tenv_fe(e, NODE_IP, NP_LOCAL, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_NODEPORT, split, S_LOCAL);
	tenv_fe(e, NODE_IP, NP_LOCAL, IPPROTO_TCP, KXP_SCOPE_INTERNAL, KXP_FE_NODEPORT, etpl, S_TCP);
	tenv_fe(e, NODE_IP, NP_CLUSTER, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_NODEPORT, ext, S_TCP);
	tenv_fe(e, NODE_IP, NP_NOLOCAL, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_NODEPORT, split, -1);
	tenv_fe(e, NODE_IP, NP_NOLOCAL, IPPROTO_TCP, KXP_SCOPE_INTERNAL, KXP_FE_NODEPORT, etpl, S_TCP);
	return tenv_apply(e);
}

static struct tpkt tcp(uint32_t sa, uint16_t sp, uint32_t da, uint16_t dp, uint8_t flags)
{
	return (struct tpkt){ .proto = IPPROTO_TCP, .saddr = sa, .daddr = da, .sport = sp, .dport = dp,
			      .tcp_flags = flags, .payload = 37 };
}

static struct tpkt udp(uint32_t sa, uint16_t sp, uint32_t da, uint16_t dp)
{
	return (struct tpkt){ .proto = IPPROTO_UDP, .saddr = sa, .daddr = da, .sport = sp, .dport = dp,
			      .payload = 61 };
}

static bool check_ct(struct tenv *e, uint32_t sa, uint16_t sp, uint32_t da, uint16_t dp, uint8_t proto, uint8_t dir,
		     uint32_t nsa, uint16_t nsp, uint32_t nda, uint16_t ndp, const char *what)
{
	struct kxp_ct_val v;

	if (!tenv_ct(e, sa, da, sp, dp, proto, dir, &v)) {
		kxp_test_fail(__FILE__, __LINE__, "%s: ct entry missing", what);
		return false;
	}
	return ASSERT_EQ(v.nat.saddr, nsa, what) && ASSERT_EQ(ntohs(v.nat.sport), nsp, what) &&
	       ASSERT_EQ(v.nat.daddr, nda, what) && ASSERT_EQ(ntohs(v.nat.dport), ndp, what) &&
	       ASSERT_TRUE(v.last_seen && v.created, what);
}

KXP_TEST(clusterip_tcp_dnat_from_pod)
{
	struct tenv e;
	struct trun r;
	struct tpkt p = tcp(POD_A, 40000, CIP, 80, TH_SYN);
	struct kxp_stats st;
	uint32_t fe;
	struct kxp_ct_val v;

	if (setup(&e))
		return;
	fe = tenv_fe_id(&e, CIP, 80, IPPROTO_TCP, KXP_SCOPE_DEFAULT);
	if (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_OK, "verdict") ||
	    !tcheck_pkt(&r, POD_A, 40000, POD_R, 8080, "DNAT to the backend, client kept"))
		goto out;
	if (!check_ct(&e, POD_A, 40000, CIP, 80, IPPROTO_TCP, KXP_DIR_FWD, POD_A, 40000, POD_R, 8080, "ct FWD") ||
	    !check_ct(&e, POD_R, 8080, POD_A, 40000, IPPROTO_TCP, KXP_DIR_REPLY, CIP, 80, POD_A, 40000, "ct REPLY"))
		goto out;
	tenv_ct(&e, POD_A, CIP, 40000, 80, IPPROTO_TCP, KXP_DIR_FWD, &v);
	if (!ASSERT_EQ(v.fe_id, fe, "ct fe_id") || !ASSERT_EQ(v.kind, KXP_FE_CLUSTERIP, "ct kind") ||
	    !ASSERT_EQ(v.flags, 0, "ct flags"))
		goto out;
	tenv_stats(&e, fe, &st);
	if (!ASSERT_EQ(st.packets, 1, "stats packets") || !ASSERT_EQ(st.bytes, r.in_len, "stats bytes") ||
	    !ASSERT_EQ(st.drops + st.rejects + st.passed, 0, "stats others"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_OK), 1, "reason OK");
	ASSERT_EQ(tenv_ct_count(&e), 2, "ct entries");
out:
	tenv_close(&e);
}

KXP_TEST(clusterip_udp_dnat_from_pod)
{
	struct tenv e;
	struct trun r;
	struct tpkt p = udp(POD_A, 5000, CIP, 53);
	struct tpkt_dec d;

	if (setup(&e))
		return;
	if (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_OK, "verdict") ||
	    !tcheck_pkt(&r, POD_A, 5000, POD_R, 5353, "UDP DNAT"))
		goto out;
	tpkt_decode(r.out, r.out_len, &d);
	if (!ASSERT_NE(d.udp_csum, 0, "UDP checksum still present"))
		goto out;
	/* no checksum (0) must stay 0, not become a wrong one */
	p.sport = 5001;
	p.udp_no_csum = true;
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_pkt(&r, POD_A, 5001, POD_R, 5353, "UDP DNAT, no checksum"))
		goto out;
	tpkt_decode(r.out, r.out_len, &d);
	if (!ASSERT_EQ(d.udp_csum, 0, "UDP checksum 0 stays 0"))
		goto out;
	/* the same through XDP's incremental checksum code */
	p.sport = 5002;
	p.udp_no_csum = false;
	if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(r.ret, XDP_PASS, "xdp verdict") ||
	    !tcheck_pkt(&r, POD_A, 5002, POD_R, 5353, "UDP DNAT in XDP"))
		goto out;
	p.sport = 5003;
	p.udp_no_csum = true;
	if (tenv_run(&e, T_XDP, &p, &r) || !tcheck_pkt(&r, POD_A, 5003, POD_R, 5353, "XDP UDP no checksum"))
		goto out;
	tpkt_decode(r.out, r.out_len, &d);
	ASSERT_EQ(d.udp_csum, 0, "XDP: UDP checksum 0 stays 0");
	ASSERT_EQ(tenv_reason(&e, KXP_R_OK), 4, "reason OK");
out:
	tenv_close(&e);
}

KXP_TEST(reply_reverse_nat_ingress_and_egress)
{
	struct tenv e;
	struct trun r;
	struct tpkt p = tcp(POD_A, 40000, CIP, 80, TH_SYN);
	struct tpkt rep = tcp(POD_R, 8080, POD_A, 40000, TH_SYN | TH_ACK);
	struct kxp_ct_val v;

	if (setup(&e))
		return;
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_pkt(&r, POD_A, 40000, POD_R, 8080, "SYN DNAT"))
		goto out;
	/* reply seen at the backend's device ingress (pod backend): passed as the
	 * backend sent it, so the node's conntrack sees backend -> client, the
	 * reverse of the client -> backend it saw after DNAT (lib/ct.h) */
	if (tenv_run(&e, T_TC_IN, &rep, &r) || !ASSERT_EQ(r.ret, TC_ACT_OK, "ingress reply verdict") ||
	    !tcheck_untouched(&r, "reply untouched at ingress"))
		goto out;
	if (!ASSERT_EQ(tenv_reason(&e, KXP_R_REPLY), 0, "nothing translated at ingress"))
		goto out;
	/* ... and translated at TC egress of the client's device */
	if (tenv_run(&e, T_TC_EG, &rep, &r) || !ASSERT_EQ(r.ret, TC_ACT_OK, "egress reply verdict") ||
	    !tcheck_pkt(&r, CIP, 80, POD_A, 40000, "reply source back to the ClusterIP (egress)"))
		goto out;
	if (!tenv_ct(&e, POD_R, POD_A, 8080, 40000, IPPROTO_TCP, KXP_DIR_REPLY, &v) ||
	    !ASSERT_TRUE(v.flags & KXP_CT_F_SEEN_REPLY, "REPLY entry SEEN_REPLY"))
		goto out;
	if (!tenv_ct(&e, POD_A, CIP, 40000, 80, IPPROTO_TCP, KXP_DIR_FWD, &v) ||
	    !ASSERT_TRUE(v.flags & KXP_CT_F_SEEN_REPLY, "FWD entry SEEN_REPLY"))
		goto out;
	/* the same reply leaving a host-network backend: egress too */
	rep.tcp_flags = TH_ACK;
	if (tenv_run(&e, T_TC_EG, &rep, &r) || !ASSERT_EQ(r.ret, TC_ACT_OK, "egress reply verdict") ||
	    !tcheck_pkt(&r, CIP, 80, POD_A, 40000, "reply source back to the ClusterIP (egress, ACK)"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_REPLY), 2, "reason REPLY");
	/* a packet of no flow is untouched at egress */
	rep.sport = 8081;
	if (tenv_run(&e, T_TC_EG, &rep, &r) || !ASSERT_EQ(r.ret, TC_ACT_OK, "egress other") ||
	    !tcheck_untouched(&r, "egress, no flow"))
		goto out;
	/* UDP reply */
	p = udp(POD_A, 5000, CIP, 53);
	rep = udp(POD_R, 5353, POD_A, 5000);
	if (tenv_run(&e, T_TC_IN, &p, &r) || tenv_run(&e, T_TC_EG, &rep, &r) ||
	    !tcheck_pkt(&r, CIP, 53, POD_A, 5000, "UDP reply at egress"))
		goto out;
out:
	tenv_close(&e);
}

KXP_TEST(ct_keeps_backend_when_set_changes)
{
	struct tenv e;
	struct trun r;
	struct tpkt p = tcp(POD_A, 40000, CIP, 80, TH_SYN);
	uint32_t fe;
	struct kxp_stats st;

	if (setup(&e))
		return;
	fe = tenv_fe_id(&e, CIP, 80, IPPROTO_TCP, KXP_SCOPE_DEFAULT);
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_pkt(&r, POD_A, 40000, POD_R, 8080, "first SYN"))
		goto out;
	tenv_set_replace(&e, S_TCP, 1, (uint32_t[]){ POD_R2 }, (uint16_t[]){ 8081 });
	if (tenv_apply(&e))
		goto out;
	/* the established flow keeps its backend, SYN retransmit and data alike */
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_pkt(&r, POD_A, 40000, POD_R, 8080, "SYN retransmit"))
		goto out;
	p.tcp_flags = TH_ACK;
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_pkt(&r, POD_A, 40000, POD_R, 8080, "ACK of the flow"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_CT_HIT), 2, "reason CT_HIT");
	/* a new flow uses the new set */
	p = tcp(POD_A, 40001, CIP, 80, TH_SYN);
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_pkt(&r, POD_A, 40001, POD_R2, 8081, "new flow"))
		goto out;
	tenv_stats(&e, fe, &st);
	ASSERT_EQ(st.packets, 4, "stats packets");
	ASSERT_EQ(tenv_ct_count(&e), 4, "ct entries");
out:
	tenv_close(&e);
}

/* A mid-stream packet of a flow kxp does not know (opened before kxp took
 * over from kube-proxy, or evicted) is never balanced anew: it passes
 * untouched, so netfilter's conntrack NAT can keep serving it. */
KXP_TEST(tcp_non_syn_without_ct_passes_untouched)
{
	struct tenv e;
	struct trun r;
	struct tpkt p = tcp(POD_A, 40000, CIP, 80, TH_ACK);
	struct kxp_stats st;

	if (setup(&e))
		return;
	if (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_OK, "ACK of unknown flow passed") ||
	    !tcheck_untouched(&r, "ACK of unknown flow untouched"))
		goto out;
	p.tcp_flags = TH_RST;
	if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(r.ret, XDP_PASS, "RST of unknown flow passed in XDP") ||
	    !tcheck_untouched(&r, "RST of unknown flow untouched"))
		goto out;
	/* without XDP metadata XDP leaves the counting to TC ingress, which
	 * the packet reaches next */
	if (!(kxp_dp_features(e.dp) & KXP_FEAT_XDP_META) &&
	    (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_OK, "RST of unknown flow passed in TC")))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_CT_MISS), 2, "reason CT_MISS");
	ASSERT_EQ(tenv_ct_count(&e), 0, "no ct entry");
	tenv_stats(&e, tenv_fe_id(&e, CIP, 80, IPPROTO_TCP, 0), &st);
	ASSERT_EQ(st.passed, 2, "stats passed");
	ASSERT_EQ(st.drops, 0, "stats drops");
out:
	tenv_close(&e);
}

KXP_TEST(etp_local_external_uses_local_set)
{
	struct tenv e;
	struct trun r;
	struct tpkt p = tcp(EXT_C, 50000, NODE_IP, NP_LOCAL, TH_SYN);
	struct tpkt rep = tcp(POD_B, 8080, EXT_C, 50000, TH_SYN | TH_ACK);

	if (setup(&e))
		return;
	/* XDP on the external device: local set, client address preserved */
	if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(r.ret, XDP_PASS, "xdp verdict") ||
	    !tcheck_pkt(&r, EXT_C, 50000, POD_B, 8080, "XDP DNAT to the local backend") ||
	    !ASSERT_EQ(r.meta_len, 0, "translated packets carry no metadata"))
		goto out;
	if (!check_ct(&e, EXT_C, 50000, NODE_IP, NP_LOCAL, IPPROTO_TCP, KXP_DIR_FWD, EXT_C, 50000, POD_B, 8080,
		      "ct FWD"))
		goto out;
	/* the local pod's reply: left as is at its device's ingress (with the
	 * node's address as source the stack would drop it as a martian) ... */
	if (tenv_run(&e, T_TC_IN, &rep, &r) || !ASSERT_EQ(r.ret, TC_ACT_OK, "reply at ingress") ||
	    !tcheck_untouched(&r, "NodePort reply untouched at ingress"))
		goto out;
	/* ... and translated at the egress of the device it leaves by */
	if (tenv_run(&e, T_TC_EG, &rep, &r) ||
	    !tcheck_pkt(&r, NODE_IP, NP_LOCAL, EXT_C, 50000, "reply from NodeIP:NodePort at egress"))
		goto out;
	if (!ASSERT_EQ(tenv_reason(&e, KXP_R_REPLY), 1, "reply counted once"))
		goto out;
	/* the same decision in TC when XDP is off */
	p.sport = 50001;
	if (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_OK, "tc verdict") ||
	    !tcheck_pkt(&r, EXT_C, 50001, POD_B, 8080, "TC DNAT to the local backend"))
		goto out;
out:
	tenv_close(&e);
}

KXP_TEST(etp_local_from_pod_uses_cluster_set)
{
	struct tenv e;
	struct trun r;
	struct tpkt p = tcp(POD_A, 40000, NODE_IP, NP_LOCAL, TH_SYN);

	if (setup(&e))
		return;
	if (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_OK, "verdict") ||
	    !tcheck_pkt(&r, POD_A, 40000, POD_R, 8080, "INTERNAL scope, no SNAT"))
		goto out;
	/* no local endpoint: pods still reach the cluster set */
	p = tcp(POD_A, 40001, NODE_IP, NP_NOLOCAL, TH_SYN);
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_pkt(&r, POD_A, 40001, POD_R, 8080, "INTERNAL, local empty"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_OK), 2, "reason OK");
out:
	tenv_close(&e);
}

KXP_TEST(etp_local_no_local_endpoint_drops)
{
	struct tenv e;
	struct trun r;
	struct tpkt p = tcp(EXT_C, 50000, NODE_IP, NP_NOLOCAL, TH_SYN);
	struct kxp_stats st;

	if (setup(&e))
		return;
	if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(r.ret, XDP_DROP, "xdp drops"))
		goto out;
	if (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_SHOT, "tc drops"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_POLICY_DROP), 2, "reason POLICY_DROP");
	tenv_stats(&e, tenv_fe_id(&e, NODE_IP, NP_NOLOCAL, IPPROTO_TCP, 0), &st);
	ASSERT_EQ(st.drops, 2, "stats drops");
	ASSERT_EQ(tenv_ct_count(&e), 0, "no ct entry");
out:
	tenv_close(&e);
}

/* The ICMP port unreachable a reject must produce for the frame in r->in:
 * from the frontend to the client, MACs swapped, quoting the offending IP
 * header and 8 bytes of L4, every checksum valid. */
bool tcheck_reject(const struct trun *r, uint8_t code, const char *what)
{
	struct tpkt_icmp ic;
	struct tpkt_dec in;
	size_t ihl = (size_t)(r->in[14] & 15) * 4;

	tpkt_decode(r->in, r->in_len, &in);
	tpkt_decode_icmp(r->out, r->out_len, &ic);
	return ASSERT_EQ(r->ret, TC_ACT_REDIRECT, what) && ASSERT_TRUE(ic.ok, what) &&
	       ASSERT_EQ(ic.type, 3, what) && ASSERT_EQ(ic.code, code, what) &&
	       ASSERT_EQ(ic.saddr, in.daddr, what) && ASSERT_EQ(ic.daddr, in.saddr, what) &&
	       ASSERT_TRUE(ic.l3_ok && ic.icmp_ok && ic.il3_ok, what) &&
	       ASSERT_EQ(ic.quote_len, ihl + 8, what) &&
	       ASSERT_TRUE(!memcmp(ic.quote, r->in + 14, ihl + 8), what) &&
	       ASSERT_TRUE(!memcmp(r->out, r->in + 6, 6) && !memcmp(r->out + 6, r->in, 6), what) &&
	       ASSERT_EQ(r->out_len, 14 + 20 + 8 + ihl + 8, what);
}

KXP_TEST(no_endpoints_reject_icmp)
{
	struct tenv e;
	struct trun r;
	struct tpkt p = tcp(POD_A, 40000, CIP2, 80, TH_SYN);
	struct kxp_stats st;

	if (setup(&e))
		return;
	tenv_dev("pod0");
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_reject(&r, 3, "TCP SYN to a service without endpoints"))
		goto out;
	/* UDP (the client's socket gets ECONNREFUSED from this) */
	p = udp(POD_A, 5000, CIP2, 80);
	p.proto = IPPROTO_UDP;
	tenv_fe(&e, CIP2, 80, IPPROTO_UDP, KXP_SCOPE_DEFAULT, KXP_FE_CLUSTERIP, KXP_SVC_F_REJECT, -1);
	if (tenv_apply(&e) || tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_reject(&r, 3, "UDP, no endpoints"))
		goto out;
	/* IP options are quoted too */
	p.ip_opts = 12;
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_reject(&r, 3, "UDP with IP options"))
		goto out;
	/* XDP leaves the reject to TC: untouched, not counted, no mark */
	tenv_dev("ext0");
	p = tcp(EXT_C, 40000, CIP2, 80, TH_SYN);
	if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(r.ret, XDP_PASS, "xdp passes") ||
	    !tcheck_untouched(&r, "xdp reject untouched") || !ASSERT_EQ(r.meta_len, 0, "no counted mark"))
		goto out;
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_reject(&r, 3, "external client, TC after XDP"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_NO_ENDPOINTS), 4, "reason NO_ENDPOINTS, counted once per packet");
	tenv_stats(&e, tenv_fe_id(&e, CIP2, 80, IPPROTO_TCP, 0), &st);
	ASSERT_EQ(st.rejects, 2, "stats rejects");
	ASSERT_EQ(st.packets, 2, "stats packets");
	ASSERT_EQ(tenv_ct_count(&e), 0, "no ct entry");
out:
	tenv_close(&e);
}

KXP_TEST(no_reject_for_fragments_broadcast_icmp)
{
	struct tenv e;
	struct trun r;
	struct tpkt p = udp(POD_A, 5000, CIP, 54);

	if (setup(&e))
		return;
	tenv_dev("pod0");
	/* a later fragment to an unserved port of an active ClusterIP whose
	 * first fragment was rejected: dropped, never answered */
	p.frag = 0x2000;
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_reject(&r, 3, "first fragment is rejected"))
		goto out;
	p.frag = 0x0010;
	if (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_SHOT, "later fragment dropped"))
		goto out;
	/* broadcast / multicast destination MAC */
	p = udp(POD_A, 5000, CIP, 54);
	r.in_len = tpkt_build(&p, r.in);
	memset(r.in, 0xff, 6);
	if (tenv_run_raw(&e, T_TC_IN, &r) || !ASSERT_EQ(r.ret, TC_ACT_SHOT, "broadcast frame: no answer"))
		goto out;
	r.in_len = tpkt_build(&p, r.in);
	r.in[0] = 0x01;
	if (tenv_run_raw(&e, T_TC_IN, &r) || !ASSERT_EQ(r.ret, TC_ACT_SHOT, "multicast frame: no answer"))
		goto out;
	/* bogus sources */
	p.saddr = 0;
	if (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_SHOT, "source 0.0.0.0"))
		goto out;
	p.saddr = A(224, 0, 0, 5);
	if (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_SHOT, "multicast source"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_NO_REJECT), 5, "reason NO_REJECT");
	/* ICMP errors (and any ICMP) to a service without endpoints pass */
	p = (struct tpkt){ .proto = IPPROTO_ICMP, .saddr = POD_A, .daddr = CIP2, .payload = 20 };
	if (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_OK, "ICMP echo") ||
	    !tcheck_untouched(&r, "ICMP echo untouched"))
		goto out;
	{
		struct trun q;
		struct tpkt o = udp(CIP2, 80, POD_A, 5000);

		q.in_len = tpkt_build(&o, q.in);
		r.in_len = tpkt_build_icmp_err(3, 3, 0, POD_A, CIP2, q.in, 28, r.in);
		if (tenv_run_raw(&e, T_TC_IN, &r) || !ASSERT_EQ(r.ret, TC_ACT_OK, "ICMP error") ||
		    !tcheck_untouched(&r, "ICMP error untouched"))
			goto out;
	}
	ASSERT_EQ(tenv_reason(&e, KXP_R_NO_ENDPOINTS) + tenv_reason(&e, KXP_R_PORT_UNKNOWN), 1,
		  "only the first fragment was a reject");
out:
	tenv_close(&e);
}

/* A new flow that must be masqueraded: translated to {NODE_IP:port in the
 * default range -> backend}, its FWD entry and its REPLY entry (the port
 * claim) written. */
static bool snat_case_scope(struct tenv *e, enum tprog prog, const char *dev, struct tpkt p, uint32_t be,
			    uint16_t bport, int want_ret, const char *what)
{
	struct trun r;
	struct tpkt_dec d;
	struct kxp_ct_val v;

	tenv_dev(dev);
	if (tenv_run(e, prog, &p, &r))
		return false;
	tpkt_decode(r.out, r.out_len, &d);
	if (!ASSERT_EQ(r.ret, want_ret, what) || !ASSERT_TRUE(d.l3_ok && d.l4_ok, what) ||
	    !ASSERT_EQ(d.saddr, NODE_IP, what) || !ASSERT_EQ(d.daddr, be, what) || !ASSERT_EQ(d.dport, bport, what) ||
	    !ASSERT_TRUE(d.sport >= 1024 && d.sport <= 29999, what))
		return false;
	if (!tenv_ct(e, p.saddr, p.daddr, p.sport, p.dport, p.proto, KXP_DIR_FWD, &v) ||
	    !ASSERT_TRUE(v.flags & KXP_CT_F_SNAT, what) || !ASSERT_EQ(ntohs(v.nat.sport), d.sport, what))
		return false;
	return tenv_ct(e, be, NODE_IP, bport, d.sport, p.proto, KXP_DIR_REPLY, &v) &&
	       ASSERT_TRUE(v.flags & KXP_CT_F_SNAT, what) && ASSERT_EQ(v.nat.daddr, p.saddr, what) &&
	       ASSERT_EQ(ntohs(v.nat.dport), p.sport, what) && ASSERT_EQ(v.nat.saddr, p.daddr, what) &&
	       ASSERT_EQ(ntohs(v.nat.sport), p.dport, what);
}

KXP_TEST(masquerade_where_kube_proxy_does)
{
	struct tenv e;
	struct trun r;
	struct tpkt p;
	const int RD = TC_ACT_REDIRECT;

	if (setup(&e))
		return;
	if (!snat_case_scope(&e, T_TC_IN, "ext0", tcp(NODE_IP, 40000, CIP, 80, TH_SYN), POD_R, 8080, RD,
			     "node -> ClusterIP (E.29)") ||
	    !snat_case_scope(&e, T_TC_IN, "ext0", tcp(EXT_C, 40000, CIP, 80, TH_SYN), POD_R, 8080, RD,
			     "external -> ClusterIP (E.29)") ||
	    !snat_case_scope(&e, T_XDP, "ext0", tcp(EXT_C, 40001, NODE_IP, NP_CLUSTER, TH_SYN), POD_R, 8080, XDP_TX,
			     "external -> eTP=Cluster, XDP_TX (E.31)") ||
	    !snat_case_scope(&e, T_TC_IN, "pod0", tcp(POD_A, 40000, NODE_IP, NP_CLUSTER, TH_SYN), POD_R, 8080, RD,
			     "pod -> eTP=Cluster (E.31)") ||
	    !snat_case_scope(&e, T_TC_IN, "ext0", tcp(NODE_IP, 40001, NODE_IP, NP_LOCAL, TH_SYN), POD_R, 8080, RD,
			     "node -> eTP=Local (E.32)") ||
	    !snat_case_scope(&e, T_TC_IN, "pod0", tcp(POD_A, 40002, CIP3, 80, TH_SYN), POD_A, 8080, RD,
			     "hairpin (E.30)"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_OK), 6, "reason OK");
	/* a mid-flow packet of an unknown flow is not balanced (CT_MISS) */
	p = tcp(NODE_IP, 40100, CIP, 80, TH_ACK);
	if (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_OK, "mid-flow ACK") ||
	    !tcheck_untouched(&r, "mid-flow ACK untouched"))
		goto out;
	/* pods to a ClusterIP are not masqueraded, but with --masquerade-all */
	p = tcp(POD_A, 40003, CIP, 80, TH_SYN);
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_pkt(&r, POD_A, 40003, POD_R, 8080, "pod -> ClusterIP kept"))
		goto out;
	e.d.cfg.flags = KXP_CFG_F_MASQ_ALL;
	if (tenv_apply(&e) ||
	    !snat_case_scope(&e, T_TC_IN, "pod0", tcp(POD_A, 40004, CIP, 80, TH_SYN), POD_R, 8080, RD,
			     "masquerade-all"))
		goto out;
	/* no cluster CIDR: ClusterIP traffic is never masqueraded, just DNATed */
	e.d.cfg.flags = 0;
	e.d.cfg.n_cluster = 0;
	if (tenv_apply(&e))
		goto out;
	p = tcp(EXT_C, 40005, CIP, 80, TH_SYN);
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_pkt(&r, EXT_C, 40005, POD_R, 8080, "no local detector"))
		goto out;
out:
	tenv_close(&e);
}

KXP_TEST(service_cidr_wildcard_and_unallocated)
{
	struct tenv e;
	struct trun r;
	struct tpkt p = tcp(POD_A, 40000, CIP, 81, TH_SYN);
	struct kxp_stats st;

	if (setup(&e))
		return;
	/* active ClusterIP, port not served: ICMP port unreachable */
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_reject(&r, 3, "unknown TCP port"))
		goto out;
	p = udp(POD_A, 40000, CIP, 54);
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_reject(&r, 3, "unknown UDP port"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_PORT_UNKNOWN), 2, "reason PORT_UNKNOWN");
	tenv_stats(&e, tenv_fe_id(&e, CIP, 0, 0, 0), &st);
	ASSERT_EQ(st.rejects, 2, "wildcard rejects");
	/* unallocated service address: drop */
	p = tcp(POD_A, 40000, CIP_FREE, 80, TH_SYN);
	if (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_SHOT, "unallocated dropped"))
		goto out;
	p.daddr = A(10, 111, 255, 254); /* last of 10.96.0.0/12 */
	if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(r.ret, XDP_DROP, "unallocated dropped (xdp)"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_SVC_CIDR_DROP), 2, "reason SVC_CIDR_DROP");
	/* outside the service CIDR: not kxp's business, not counted */
	p.daddr = A(10, 112, 0, 1);
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_untouched(&r, "outside the service CIDR"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_NOT_SERVICE), 0, "NOT_SERVICE is not counted");
	/* no service CIDR configured: no wildcard handling at all */
	e.d.cfg.n_service = 0;
	p.daddr = CIP_FREE;
	if (tenv_apply(&e) || tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_OK, "no service CIDR") ||
	    !tcheck_untouched(&r, "no service CIDR"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_SVC_CIDR_DROP), 2, "no new SVC_CIDR_DROP");
out:
	tenv_close(&e);
}

KXP_TEST(ip_options)
{
	struct tenv e;
	struct trun r;
	struct tpkt p = tcp(POD_A, 40000, CIP, 80, TH_SYN);

	if (setup(&e))
		return;
	p.ip_opts = 8;
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_pkt(&r, POD_A, 40000, POD_R, 8080, "TC, ihl 7"))
		goto out;
	if (!ASSERT_TRUE(!memcmp(r.out + 34, r.in + 34, 8), "options unchanged"))
		goto out;
	p = tcp(EXT_C, 50000, NODE_IP, NP_LOCAL, TH_SYN);
	p.ip_opts = 40;
	if (tenv_run(&e, T_XDP, &p, &r) || !tcheck_pkt(&r, EXT_C, 50000, POD_B, 8080, "XDP, ihl 15"))
		goto out;
	p = udp(POD_A, 5000, CIP, 53);
	p.ip_opts = 4;
	if (tenv_run(&e, T_XDP, &p, &r) || !tcheck_pkt(&r, POD_A, 5000, POD_R, 5353, "XDP UDP, ihl 6"))
		goto out;
out:
	tenv_close(&e);
}

KXP_TEST(fragments_follow_their_first_fragment)
{
	struct tenv e;
	struct trun r;
	struct tpkt p = udp(POD_A, 5000, CIP, 53);
	struct tpkt_dec d;
	struct kxp_stats st;

	if (setup(&e))
		return;
	tenv_dev("pod0");
	p.payload = 200;
	p.frag = 0x2000; /* MF, first fragment: ports known, translated */
	if (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_OK, "first fragment"))
		goto out;
	tpkt_decode(r.out, r.out_len, &d);
	if (!ASSERT_EQ(d.daddr, POD_R, "first fragment DNAT") || !ASSERT_TRUE(d.l3_ok, "first fragment ip csum") ||
	    !ASSERT_EQ((r.out[34 + 2] << 8) | r.out[34 + 3], 5353, "first fragment port") ||
	    !ASSERT_TRUE(!memcmp(r.out + 42, r.in + 42, r.in_len - 42), "payload unchanged"))
		goto out;
	/* a later fragment (same IP id): addresses follow, payload untouched */
	p.frag = 0x0019; /* offset 200 bytes */
	if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(r.ret, XDP_PASS, "later fragment (xdp)"))
		goto out;
	tpkt_decode(r.out, r.out_len, &d);
	if (!ASSERT_EQ(d.daddr, POD_R, "later fragment DNAT") || !ASSERT_EQ(d.saddr, POD_A, "client kept") ||
	    !ASSERT_TRUE(d.l3_ok, "later fragment ip csum") ||
	    !ASSERT_TRUE(!memcmp(r.out + 34, r.in + 34, r.in_len - 34), "later fragment bytes unchanged"))
		goto out;
	if (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_OK, "later fragment (tc)"))
		goto out;
	tpkt_decode(r.out, r.out_len, &d);
	if (!ASSERT_EQ(d.daddr, POD_R, "later fragment DNAT (tc)") || !ASSERT_TRUE(d.l3_ok, "tc ip csum") ||
	    !ASSERT_TRUE(!memcmp(r.out + 34, r.in + 34, r.in_len - 34), "tc: bytes after the IP header unchanged"))
		goto out;
	tenv_stats(&e, tenv_fe_id(&e, CIP, 53, IPPROTO_UDP, 0), &st);
	if (!ASSERT_EQ(st.packets, 3, "all three counted on the frontend"))
		goto out;
	/* a later fragment whose first fragment was never seen: untouched */
	r.in_len = tpkt_build(&p, r.in);
	r.in[18] = 0x99; /* another IP id (header checksum fixed below) */
	r.in[24] = r.in[25] = 0;
	{
		uint16_t c = tpkt_csum(r.in + 14, 20);

		r.in[24] = c >> 8;
		r.in[25] = c & 0xff;
	}
	if (tenv_run_raw(&e, T_TC_IN, &r) || !ASSERT_EQ(r.ret, TC_ACT_OK, "unknown datagram") ||
	    !tcheck_untouched(&r, "fragment of an unknown datagram untouched"))
		goto out;
	tenv_stats(&e, tenv_fe_id(&e, CIP, 0, 0, 0), &st);
	if (!ASSERT_EQ(st.passed, 1, "counted FRAGMENT on the ClusterIP"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_FRAGMENT), 1, "reason FRAGMENT");
	/* a fragment to no frontend is not kxp's */
	p.daddr = A(10, 200, 0, 1);
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_untouched(&r, "fragment elsewhere"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_FRAGMENT), 1, "not counted as FRAGMENT");
	ASSERT_EQ(tenv_ct_count(&e), 2, "one flow");
out:
	tenv_close(&e);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

/* Run a hand-corrupted frame through XDP and TC: both pass it untouched. */
static bool malformed_case(struct tenv *e, struct trun *r, const char *what)
{
	struct trun r2;

	memcpy(r2.in, r->in, r->in_len);
	r2.in_len = r->in_len;
	if (tenv_run_fd(kxp_dp_prog_xdp(e->dp), true, r->in, r->in_len, r) ||
	    !ASSERT_EQ(r->ret, XDP_PASS, what) || !tcheck_untouched(r, what))
		return false;
	if (tenv_run_fd(kxp_dp_prog_tc_ingress(e->dp), false, r2.in, r2.in_len, &r2) ||
	    !ASSERT_EQ(r2.ret, TC_ACT_OK, what) || !tcheck_untouched(&r2, what))
		return false;
	return true;
}

KXP_TEST(malformed_passed_untouched)
{
	struct tenv e;
	struct trun r;
	struct tpkt p = tcp(POD_A, 40000, CIP, 80, TH_SYN);

	if (setup(&e))
		return;
	/* ihl 4 */
	r.in_len = tpkt_build(&p, r.in);
	r.in[14] = 0x44;
	if (!malformed_case(&e, &r, "ihl < 5"))
		goto out;
	/* total length beyond the frame */
	r.in_len = tpkt_build(&p, r.in);
	put16(r.in + 16, 1400);
	if (!malformed_case(&e, &r, "tot_len > frame"))
		goto out;
	/* total length shorter than the IP header */
	put16(r.in + 16, 16);
	if (!malformed_case(&e, &r, "tot_len < ihl*4"))
		goto out;
	/* TCP header cut: 10 bytes of L4 (frame padded to 60) */
	p.payload = 0;
	r.in_len = tpkt_build(&p, r.in);
	put16(r.in + 16, 30);
	if (!malformed_case(&e, &r, "truncated TCP header"))
		goto out;
	/* TCP data offset 4 */
	r.in_len = tpkt_build(&p, r.in);
	r.in[14 + 20 + 12] = 4 << 4;
	if (!malformed_case(&e, &r, "TCP doff < 5"))
		goto out;
	/* UDP length beyond the IP payload */
	p = udp(POD_A, 5000, CIP, 53);
	r.in_len = tpkt_build(&p, r.in);
	put16(r.in + 14 + 20 + 4, 500);
	if (!malformed_case(&e, &r, "UDP length too big"))
		goto out;
	/* frame shorter than an IPv4 header (XDP only: test_run refuses such
	 * an skb with -EINVAL) */
	r.in_len = 30;
	if (tenv_run_fd(kxp_dp_prog_xdp(e.dp), true, r.in, r.in_len, &r) || !ASSERT_EQ(r.ret, XDP_PASS, "cut frame") ||
	    !tcheck_untouched(&r, "frame cut in the IP header"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_MALFORMED), 13, "reason MALFORMED");
	ASSERT_EQ(tenv_ct_count(&e), 0, "no ct entry");
out:
	tenv_close(&e);
}

KXP_TEST(non_ipv4_and_unknown_protocols)
{
	struct tenv e;
	struct trun r;
	struct tpkt p = { .ethertype = 0x86dd };

	if (setup(&e))
		return;
	if (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_OK, "IPv6") || !tcheck_untouched(&r, "IPv6"))
		goto out;
	p.ethertype = 0x0806;
	if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(r.ret, XDP_PASS, "ARP") || !tcheck_untouched(&r, "ARP"))
		goto out;
	p.ethertype = 0x8100;
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_untouched(&r, "VLAN"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_NOT_IPV4), 3, "reason NOT_IPV4");
	p = (struct tpkt){ .proto = IPPROTO_ICMP, .saddr = POD_A, .daddr = CIP, .payload = 20 };
	if (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_OK, "ICMP") || !tcheck_untouched(&r, "ICMP"))
		goto out;
	p.proto = 47; /* GRE */
	if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(r.ret, XDP_PASS, "GRE") || !tcheck_untouched(&r, "GRE"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_UNKNOWN_PROTO), 2, "reason UNKNOWN_PROTO");
out:
	tenv_close(&e);
}

KXP_TEST(sctp_address_only)
{
	struct tenv e;
	struct trun r;
	struct tpkt p = { .proto = IPPROTO_SCTP, .saddr = POD_A, .daddr = CIP, .sport = 7000, .dport = 9000,
			  .payload = 16 };

	if (setup(&e))
		return;
	/* same port: address DNAT, SCTP bytes (and CRC32c) unchanged */
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_pkt(&r, POD_A, 7000, POD_R, 9000, "SCTP TC"))
		goto out;
	p.sport = 7001;
	if (tenv_run(&e, T_XDP, &p, &r) || !tcheck_pkt(&r, POD_A, 7001, POD_R, 9000, "SCTP XDP"))
		goto out;
	if (!check_ct(&e, POD_A, 7001, CIP, 9000, IPPROTO_SCTP, KXP_DIR_FWD, POD_A, 7001, POD_R, 9000, "SCTP ct"))
		goto out;
	/* port change would need a CRC32c: passed untouched */
	p.dport = 9001;
	if (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_OK, "SCTP port change") ||
	    !tcheck_untouched(&r, "SCTP port change untouched"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_UNKNOWN_PROTO), 1, "reason UNKNOWN_PROTO");
	ASSERT_EQ(tenv_ct_count(&e), 4, "ct entries (2 flows)");
out:
	tenv_close(&e);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* Write a FWD entry by hand: a flow that points at POD_B:1 (no backend of the
 * set), idle for `idle_s` seconds. */
static int put_ct(struct tenv *e, uint32_t sa, uint16_t sp, uint32_t da, uint16_t dp, uint8_t proto,
		  uint16_t flags, unsigned idle_s)
{
	struct kxp_flow4 k = { .saddr = sa, .daddr = da, .sport = htons(sp), .dport = htons(dp), .proto = proto,
			       .dir = KXP_DIR_FWD };
	struct kxp_ct_val v = { .nat = { sa, POD_B, htons(sp), htons(1) }, .flags = flags };

	v.created = v.last_seen = now_ns() - (uint64_t)idle_s * 1000000000ull;
	return bpf_map_update_elem(kxp_dp_map_fd(e->dp, KXP_MAP_CT), &k, &v, BPF_ANY);
}

KXP_TEST(ct_lifetimes_and_closing)
{
	struct tenv e;
	struct trun r;
	struct tpkt p = tcp(POD_A, 40000, CIP, 80, TH_SYN);
	struct kxp_ct_val v;

	/* entries idle up to 121 s are written below; the packet clock counts
	 * from boot, so a machine up for less (a fresh VM) cannot hold them */
	if (now_ns() < 125ull * 1000000000ull) {
		kxp_test_skip("up for %llu s, less than the 125 s of idle time this test writes into ct entries",
			      (unsigned long long)(now_ns() / 1000000000ull));
		return;
	}
	if (setup(&e))
		return;
	/* FIN marks both entries CLOSING */
	if (tenv_run(&e, T_TC_IN, &p, &r))
		goto out;
	p.tcp_flags = TH_FIN | TH_ACK;
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_pkt(&r, POD_A, 40000, POD_R, 8080, "FIN forwarded"))
		goto out;
	if (!tenv_ct(&e, POD_A, CIP, 40000, 80, IPPROTO_TCP, KXP_DIR_FWD, &v) ||
	    !ASSERT_TRUE(v.flags & KXP_CT_F_CLOSING, "FWD CLOSING") ||
	    !tenv_ct(&e, POD_R, POD_A, 8080, 40000, IPPROTO_TCP, KXP_DIR_REPLY, &v) ||
	    !ASSERT_TRUE(v.flags & KXP_CT_F_CLOSING, "REPLY CLOSING"))
		goto out;
	/* a SYN reusing the port of a closing flow is balanced anew */
	tenv_set_replace(&e, S_TCP, 1, (uint32_t[]){ POD_R2 }, (uint16_t[]){ 8081 });
	p.tcp_flags = TH_SYN;
	if (tenv_apply(&e) || tenv_run(&e, T_TC_IN, &p, &r) ||
	    !tcheck_pkt(&r, POD_A, 40000, POD_R2, 8081, "SYN on a closing entry reselects"))
		goto out;
	if (!tenv_ct(&e, POD_A, CIP, 40000, 80, IPPROTO_TCP, KXP_DIR_FWD, &v) ||
	    !ASSERT_EQ(v.flags & KXP_CT_F_CLOSING, 0, "new entry not closing"))
		goto out;

	/* a live hand-written entry decides (even pointing outside the set) */
	if (!ASSERT_OK(put_ct(&e, POD_A, 41000, CIP, 80, IPPROTO_TCP, 0, 50), "put ct"))
		goto out;
	p = tcp(POD_A, 41000, CIP, 80, TH_ACK);
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_pkt(&r, POD_A, 41000, POD_B, 1, "live SYN-only entry"))
		goto out;
	/* SYN-only entry idle > 60 s: a miss, so an ACK passes untouched
	 * (CT_MISS) and a SYN reselects */
	put_ct(&e, POD_A, 41001, CIP, 80, IPPROTO_TCP, 0, 61);
	p.sport = 41001;
	if (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_OK, "ACK on expired entry") ||
	    !tcheck_untouched(&r, "ACK on expired entry untouched"))
		goto out;
	p.tcp_flags = TH_SYN;
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_pkt(&r, POD_A, 41001, POD_R2, 8081, "SYN on expired entry"))
		goto out;
	/* established (reply seen): still live after an hour */
	put_ct(&e, POD_A, 41002, CIP, 80, IPPROTO_TCP, KXP_CT_F_SEEN_REPLY, 3600);
	p = tcp(POD_A, 41002, CIP, 80, TH_ACK);
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_pkt(&r, POD_A, 41002, POD_B, 1, "established entry"))
		goto out;
	/* closing entry idle > 10 s: gone */
	put_ct(&e, POD_A, 41003, CIP, 80, IPPROTO_TCP, KXP_CT_F_SEEN_REPLY | KXP_CT_F_CLOSING, 11);
	p.sport = 41003;
	if (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_OK, "expired closing entry") ||
	    !tcheck_untouched(&r, "expired closing entry: untouched"))
		goto out;
	/* UDP: 100 s idle is live, 121 s is not. The entries' backend POD_B:1
	 * is in the set (a UDP entry whose backend left the set is re-balanced,
	 * test_select.c); an expired one is replaced by a fresh entry. */
	tenv_set_replace(&e, S_UDP, 2, (uint32_t[]){ POD_B, POD_R }, (uint16_t[]){ 1, 5353 });
	if (!ASSERT_OK(tenv_apply(&e), "UDP set with POD_B:1"))
		goto out;
	put_ct(&e, POD_A, 6000, CIP, 53, IPPROTO_UDP, 0, 100);
	put_ct(&e, POD_A, 6001, CIP, 53, IPPROTO_UDP, 0, 121);
	p = udp(POD_A, 6000, CIP, 53);
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_pkt(&r, POD_A, 6000, POD_B, 1, "UDP entry at 100 s"))
		goto out;
	if (!tenv_ct(&e, POD_A, CIP, 6000, 53, IPPROTO_UDP, KXP_DIR_FWD, &v) ||
	    !ASSERT_TRUE(now_ns() - v.created > 99000000000ull, "UDP entry at 100 s kept"))
		goto out;
	p.sport = 6001;
	if (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_OK, "UDP entry at 121 s"))
		goto out;
	if (!tenv_ct(&e, POD_A, CIP, 6001, 53, IPPROTO_UDP, KXP_DIR_FWD, &v) ||
	    !ASSERT_TRUE(now_ns() - v.created < 5000000000ull, "UDP entry at 121 s replaced"))
		goto out;
	/* a refreshed entry's last_seen moved to now */
	if (!tenv_ct(&e, POD_A, CIP, 6000, 53, IPPROTO_UDP, KXP_DIR_FWD, &v) ||
	    !ASSERT_TRUE(now_ns() - v.last_seen < 5000000000ull, "last_seen refreshed"))
		goto out;
out:
	tenv_close(&e);
}

KXP_TEST(lb_source_ranges_deny)
{
	struct tenv e;
	struct trun r;
	struct tpkt p;
	struct kxp_cidr4 range = { A(203, 0, 113, 0), A(255, 255, 255, 0) };
	struct kxp_lbsr_key k = { .prefixlen = 64 };
	__u8 allow = 1;
	int s;

	if (tenv_open(&e))
		return;
	s = tenv_set(&e, IPPROTO_TCP, 1, (uint32_t[]){ POD_B }, (uint16_t[]){ 8443 });
	tenv_fe(&e, LB_IP, 443, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_LOADBALANCER,
		KXP_SVC_F_EXTERNAL | KXP_SVC_F_ETP_LOCAL | KXP_SVC_F_SPLIT | KXP_SVC_F_LOCAL_SET | KXP_SVC_F_LBSR, s);
	e.fe[0].lbsr = &range;
	e.fe[0].n_lbsr = 1;
	if (tenv_apply(&e))
		goto out;
	p = tcp(EXT_OUT, 50000, LB_IP, 443, TH_SYN);
	if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(r.ret, XDP_DROP, "source outside the ranges"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_LBSR_DENY), 1, "reason LBSR_DENY");
	/* inside a range: allowed (the entry the writer would write, written
	 * here in case it does not manage kxp_lbsr4 yet) */
	k.fe_id = tenv_fe_id(&e, LB_IP, 443, IPPROTO_TCP, 0);
	k.addr = range.addr;
	k.prefixlen = 32 + 24;
	bpf_map_update_elem(kxp_dp_map_fd(e.dp, KXP_MAP_LBSR), &k, &allow, BPF_ANY);
	p.saddr = EXT_C;
	if (tenv_run(&e, T_XDP, &p, &r) || !tcheck_pkt(&r, EXT_C, 50000, POD_B, 8443, "source inside a range"))
		goto out;
out:
	tenv_close(&e);
}

/* Set bit `bit` of kxp_hint word `word` by hand. */
static int hint_set(struct tenv *e, uint32_t word, uint32_t bit)
{
	int fd = kxp_dp_map_fd(e->dp, KXP_MAP_HINT);
	__u64 w;

	if (bpf_map_lookup_elem(fd, &word, &w))
		return -1;
	w |= 1ull << bit;
	return bpf_map_update_elem(fd, &word, &w, BPF_ANY);
}

static bool hint_has(struct tenv *e, uint32_t word, uint32_t bit)
{
	__u64 w = 0;

	bpf_map_lookup_elem(kxp_dp_map_fd(e->dp, KXP_MAP_HINT), &word, &w);
	return (w >> bit) & 1;
}

/* kxp_hint (abi.h): the writer sets the bits of every backend port and of
 * every frontend address outside the service CIDRs, says so in
 * kxp_config.hints, and the programs then skip the lookups those bitmaps
 * rule out: entries written behind the writer's back are not seen until
 * their bit is set. */
KXP_TEST(hints_spare_lookups_bound_to_miss)
{
	const uint32_t ghost = A(198, 51, 100, 77), gbit = KXP_HINT_ADDR_BIT(ghost);
	const uint32_t lbbit = KXP_HINT_ADDR_BIT(LB_IP);
	struct kxp_svc_key sk = { .addr = ghost, .port = htons(80), .proto = IPPROTO_TCP };
	struct kxp_svc_val sv;
	struct kxp_flow4 rk = { .saddr = POD_B, .daddr = EXT_C, .sport = htons(9999), .dport = htons(40000),
				.proto = IPPROTO_TCP, .dir = KXP_DIR_REPLY };
	struct kxp_ct_val rv = { .nat = { LB_IP, EXT_C, htons(443), htons(40000) } };
	struct kxp_config cfg;
	struct tenv e;
	struct trun r;
	struct tpkt p;
	__u32 zero = 0;
	int s;

	if (tenv_open(&e))
		return;
	s = tenv_set(&e, IPPROTO_TCP, 1, (uint32_t[]){ POD_B }, (uint16_t[]){ 8443 });
	tenv_fe(&e, CIP, 80, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_CLUSTERIP, 0, s);
	/* eTP=Local: external clients keep their address (no masquerade, no FIB) */
	tenv_fe(&e, LB_IP, 443, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_LOADBALANCER,
		KXP_SVC_F_EXTERNAL | KXP_SVC_F_ETP_LOCAL | KXP_SVC_F_SPLIT | KXP_SVC_F_LOCAL_SET, s);
	if (tenv_apply(&e))
		goto out;
	if (!ASSERT_OK(bpf_map_lookup_elem(kxp_dp_map_fd(e.dp, KXP_MAP_CONFIG), &zero, &cfg), "config") ||
	    !ASSERT_EQ(cfg.hints, KXP_HINT_F_PORTS | KXP_HINT_F_ADDRS, "kxp_config.hints") ||
	    !ASSERT_TRUE(hint_has(&e, 8443 / 64, 8443 % 64), "backend port 8443 bit") ||
	    !ASSERT_TRUE(hint_has(&e, KXP_HINT_PORT_WORDS + lbbit / 64, lbbit % 64), "LB IP bit"))
		goto out;
	/* the frontends work */
	p = tcp(EXT_C, 40000, LB_IP, 443, TH_SYN);
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_pkt(&r, EXT_C, 40000, POD_B, 8443, "LB IP"))
		goto out;

	/* a frontend the writer does not know of, outside the service CIDR */
	if (!ASSERT_OK(bpf_map_lookup_elem(kxp_dp_map_fd(e.dp, KXP_MAP_SVC),
					   &(struct kxp_svc_key){ .addr = LB_IP, .port = htons(443),
								   .proto = IPPROTO_TCP },
					   &sv), "LB IP entry") ||
	    hint_has(&e, KXP_HINT_PORT_WORDS + gbit / 64, gbit % 64) ||
	    !ASSERT_OK(bpf_map_update_elem(kxp_dp_map_fd(e.dp, KXP_MAP_SVC), &sk, &sv, BPF_ANY), "ghost entry"))
		goto out;
	p = tcp(EXT_C, 40001, ghost, 80, TH_SYN);
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_untouched(&r, "address bit clear: no frontend lookup"))
		goto out;
	if (!ASSERT_OK(hint_set(&e, KXP_HINT_PORT_WORDS + gbit / 64, gbit % 64), "set address bit") ||
	    tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_pkt(&r, EXT_C, 40001, POD_B, 8443, "address bit set"))
		goto out;

	/* a reply from a port no backend has (9999): no REPLY lookup at egress */
	rv.created = rv.last_seen = now_ns();
	rv.fe_id = sv.fe_id;
	if (!ASSERT_OK(bpf_map_update_elem(kxp_dp_map_fd(e.dp, KXP_MAP_CT), &rk, &rv, BPF_ANY), "REPLY entry"))
		goto out;
	p = tcp(POD_B, 9999, EXT_C, 40000, TH_SYN | TH_ACK);
	if (tenv_run(&e, T_TC_EG, &p, &r) || !tcheck_untouched(&r, "port bit clear: no REPLY lookup"))
		goto out;
	if (!ASSERT_OK(hint_set(&e, 9999 / 64, 9999 % 64), "set port bit") || tenv_run(&e, T_TC_EG, &p, &r) ||
	    !tcheck_pkt(&r, LB_IP, 443, EXT_C, 40000, "port bit set: reply translated"))
		goto out;
out:
	tenv_close(&e);
}

/* Every free kxp_ct4 entry taken by live flows of other clients (as a flood
 * of new connections would); returns how many were written. */
static int ct_fill(struct tenv *e)
{
	int fd = kxp_dp_map_fd(e->dp, KXP_MAP_CT), n = 0;
	struct kxp_ct_val v = { .nat = { .saddr = A(10, 201, 0, 1), .daddr = POD_R, .sport = htons(1), .dport = htons(8080) },
				.last_seen = now_ns(), .created = now_ns() };

	for (uint32_t i = 0; i < 100000; i++) {
		struct kxp_flow4 k = { .saddr = htonl(0x0ac90000u + i), .daddr = CIP, .sport = htons(1), .dport = htons(80),
				       .proto = IPPROTO_TCP, .dir = KXP_DIR_FWD };

		if (bpf_map_update_elem(fd, &k, &v, BPF_NOEXIST))
			return errno == E2BIG ? n : -1;
		n++;
	}
	return -1;
}

/* kxp_ct4 is no LRU: full, it refuses new flows, dropped and counted
 * (ct_full, per frontend), and never evicts a live one to make room. */
KXP_TEST(ct_full_refuses_new_flows_keeps_live_ones)
{
	struct tenv e;
	struct trun r;
	struct tpkt est = tcp(POD_A, 40000, CIP, 80, TH_SYN), p;
	struct kxp_stats st;
	uint32_t fe;
	int n;

	if (setup(&e))
		return;
	fe = tenv_fe_id(&e, CIP, 80, IPPROTO_TCP, KXP_SCOPE_DEFAULT);
	if (tenv_run(&e, T_TC_IN, &est, &r) || !tcheck_pkt(&r, POD_A, 40000, POD_R, 8080, "a flow before the flood"))
		goto out;
	n = ct_fill(&e);
	if (!ASSERT_TRUE(n > 0, "ct table filled") || !ASSERT_EQ(tenv_ct_count(&e), n + 2, "every entry kept"))
		goto out;
	/* a new flow: dropped, nothing written */
	p = tcp(POD_A, 40001, CIP, 80, TH_SYN);
	if (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_SHOT, "new flow dropped"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_CT_FULL), 1, "reason ct_full");
	tenv_stats(&e, fe, &st);
	ASSERT_EQ(st.drops, 1, "counted as a drop of its frontend");
	ASSERT_EQ(tenv_ct_count(&e), n + 2, "no entry of the refused flow");
	/* a masqueraded one (its REPLY entry is the SNAT claim) the same,
	 * through TC (external -> ClusterIP) and XDP (eTP=Cluster NodePort;
	 * last: kernels before 5.12 cannot test-run it and skip from there) */
	tenv_dev("ext0");
	p = tcp(EXT_C, 40002, CIP, 80, TH_SYN);
	if (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_SHOT, "masqueraded new flow dropped (TC)"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_CT_FULL), 2, "reason ct_full again");
	ASSERT_EQ(tenv_reason(&e, KXP_R_SNAT_FAIL), 0, "not a SNAT port shortage");
	ASSERT_EQ(tenv_ct_count(&e), n + 2, "no claim left behind");
	/* the live flow goes on */
	tenv_dev("pod0");
	est.tcp_flags = TH_ACK;
	if (tenv_run(&e, T_TC_IN, &est, &r) || !tcheck_pkt(&r, POD_A, 40000, POD_R, 8080, "established flow"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_CT_HIT), 1, "by its entry");
	tenv_dev("ext0");
	p = tcp(EXT_C, 40003, NODE_IP, NP_CLUSTER, TH_SYN);
	if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(r.ret, XDP_DROP, "masqueraded new flow dropped (XDP)"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_CT_FULL), 3, "reason ct_full a third time");
	ASSERT_EQ(tenv_reason(&e, KXP_R_SNAT_FAIL), 0, "still no SNAT port shortage");
	ASSERT_EQ(tenv_ct_count(&e), n + 2, "no claim left behind (XDP)");
	tenv_dev("pod0");
	/* room again (as the collector makes it): new flows are admitted */
	{
		struct kxp_flow4 k = { .saddr = htonl(0x0ac90000u), .daddr = CIP, .sport = htons(1), .dport = htons(80),
				       .proto = IPPROTO_TCP, .dir = KXP_DIR_FWD };
		struct kxp_flow4 k2 = k;

		k2.saddr = htonl(0x0ac90001u);
		bpf_map_delete_elem(kxp_dp_map_fd(e.dp, KXP_MAP_CT), &k);
		bpf_map_delete_elem(kxp_dp_map_fd(e.dp, KXP_MAP_CT), &k2);
	}
	p = tcp(POD_A, 40004, CIP, 80, TH_SYN);
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_pkt(&r, POD_A, 40004, POD_R, 8080, "admitted after room was made"))
		goto out;
out:
	tenv_close(&e);
}

static void ct_put(int fd, uint32_t sa, uint32_t da, uint16_t sp, uint16_t dp, uint8_t dir, uint32_t nsa, uint32_t nda,
		   uint16_t nsp, uint16_t ndp, uint16_t flags, uint64_t idle_s)
{
	struct kxp_flow4 k = { .saddr = sa, .daddr = da, .sport = htons(sp), .dport = htons(dp), .proto = IPPROTO_TCP,
			       .dir = dir };
	struct kxp_ct_val v = { .nat = { .saddr = nsa, .daddr = nda, .sport = htons(nsp), .dport = htons(ndp) },
				.flags = flags, .created = now_ns() - idle_s * 1000000000ull,
				.last_seen = now_ns() - idle_s * 1000000000ull };

	bpf_map_update_elem(fd, &k, &v, BPF_ANY);
}

static bool ct_has(struct tenv *e, uint32_t sa, uint32_t da, uint16_t sp, uint16_t dp, uint8_t dir)
{
	struct kxp_ct_val v;

	return tenv_ct(e, sa, da, sp, dp, IPPROTO_TCP, dir, &v);
}

/* The collector (kxp_dp_ct_gc) deletes a flow once both its entries
 * expired, or one expired whose other direction is gone; it keeps an
 * expired entry whose other direction lives (a masqueraded flow's REPLY
 * entry is its SNAT port claim). */
KXP_TEST(ct_collector_deletes_expired_flows)
{
	const uint16_t C = KXP_CT_F_CLOSING, SR = KXP_CT_F_SEEN_REPLY;
	const uint32_t SNAT = NODE_IP;
	struct kxp_ct_gc_stats st;
	struct tenv e;
	int fd;

	/* entries up to 12 s idle are written below; the packet clock counts
	 * from boot, so a machine up for less (a fresh VM) cannot hold them */
	if (now_ns() < 15ull * 1000000000ull) {
		kxp_test_skip("up for %llu s, less than the 15 s of idle time this test writes into ct entries",
			      (unsigned long long)(now_ns() / 1000000000ull));
		return;
	}
	if (setup(&e))
		return;
	fd = kxp_dp_map_fd(e.dp, KXP_MAP_CT);
	/* 1: closed 12 s ago (closing lifetime 10 s), both ways: goes */
	ct_put(fd, POD_A, CIP, 41001, 80, KXP_DIR_FWD, POD_A, POD_R, 41001, 8080, C | SR, 12);
	ct_put(fd, POD_R, POD_A, 8080, 41001, KXP_DIR_REPLY, CIP, POD_A, 80, 41001, C | SR, 12);
	/* 2: masqueraded, REPLY (the port claim) expired, FWD live: both stay */
	ct_put(fd, EXT_C, CIP, 41002, 80, KXP_DIR_FWD, SNAT, POD_R, 2000, 8080, C | KXP_CT_F_SNAT, 1);
	ct_put(fd, POD_R, SNAT, 8080, 2000, KXP_DIR_REPLY, CIP, EXT_C, 80, 41002, C | KXP_CT_F_SNAT, 12);
	/* 3: an expired FWD entry whose REPLY entry is gone: goes */
	ct_put(fd, POD_A, CIP, 41003, 80, KXP_DIR_FWD, POD_A, POD_R, 41003, 8080, C, 12);
	/* 4: established, idle 12 s (lifetime 8 h): stays */
	ct_put(fd, POD_A, CIP, 41004, 80, KXP_DIR_FWD, POD_A, POD_R, 41004, 8080, SR, 12);
	ct_put(fd, POD_R, POD_A, 8080, 41004, KXP_DIR_REPLY, CIP, POD_A, 80, 41004, SR, 12);
	/* 5: closing, within its 10 s: stays */
	ct_put(fd, POD_A, CIP, 41005, 80, KXP_DIR_FWD, POD_A, POD_R, 41005, 8080, C | SR, 5);
	if (!ASSERT_EQ(tenv_ct_count(&e), 8, "entries written") || !ASSERT_OK(kxp_dp_ct_gc(e.dp, &st), "collector"))
		goto out;
	ASSERT_EQ(st.scanned, 8, "scanned");
	ASSERT_EQ(st.deleted, 3, "deleted");
	ASSERT_TRUE(!ct_has(&e, POD_A, CIP, 41001, 80, KXP_DIR_FWD) && !ct_has(&e, POD_R, POD_A, 8080, 41001, KXP_DIR_REPLY),
		    "1: expired both ways: gone");
	ASSERT_TRUE(ct_has(&e, EXT_C, CIP, 41002, 80, KXP_DIR_FWD) && ct_has(&e, POD_R, SNAT, 8080, 2000, KXP_DIR_REPLY),
		    "2: the live flow's expired port claim kept");
	ASSERT_TRUE(!ct_has(&e, POD_A, CIP, 41003, 80, KXP_DIR_FWD), "3: expired, alone: gone");
	ASSERT_TRUE(ct_has(&e, POD_A, CIP, 41004, 80, KXP_DIR_FWD) && ct_has(&e, POD_R, POD_A, 8080, 41004, KXP_DIR_REPLY),
		    "4: established: kept");
	ASSERT_TRUE(ct_has(&e, POD_A, CIP, 41005, 80, KXP_DIR_FWD), "5: closing, young: kept");
	/* a second pass finds nothing more */
	if (ASSERT_OK(kxp_dp_ct_gc(e.dp, &st), "collector again"))
		ASSERT_EQ(st.deleted, 0, "nothing more");
out:
	tenv_close(&e);
}
