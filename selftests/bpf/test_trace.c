/* kxp trace against a provisioned, pinned instance: the trace copies reach
 * the same decisions as the real programs, honour existing ct entries, and
 * write no state (no ct entry, no counter). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include "../lib/testlib.h"
#include "dataplane/trace.h"
#include "tenv.h"

#define CIP2 A(10, 96, 0, 11)

static uint64_t all_reasons(struct tenv *e)
{
	uint64_t n = 0;

	for (unsigned r = 0; r < KXP_R_MAX; r++)
		n += tenv_reason(e, r);
	return n;
}

static bool trace(const char *inst, bool ext, uint8_t proto, uint32_t sa, uint16_t sp, uint32_t da, uint16_t dp,
		  struct kxp_trace_out *o)
{
	struct kxp_trace_req q = { .from_external = ext, .proto = proto, .saddr = sa, .daddr = da, .sport = sp,
				   .dport = dp };
	char err[256] = "";
	int rc = kxp_trace_run(inst, &q, o, err, sizeof(err));

	if (rc)
		kxp_test_fail(__FILE__, __LINE__, "kxp_trace_run: %s (%s)", strerror(-rc), err);
	return rc == 0;
}

KXP_TEST(trace_decides_without_state)
{
	struct tenv e;
	struct kxp_trace_out o;
	struct tpkt p;
	struct trun r;
	char inst[64], dir[128];
	bool untraceable = false;
	int s_cluster, s_local;
	uint16_t first;
	struct stat st;

	snprintf(inst, sizeof(inst), "bpftest-trace-%d", (int)getpid());
	snprintf(dir, sizeof(dir), "/sys/fs/bpf/kxp-%s", inst);
	if (tenv_netns() || tenv_open_instance(&e, inst))
		goto cleanup;
	s_cluster = tenv_set(&e, IPPROTO_TCP, 1, (uint32_t[]){ POD_R }, (uint16_t[]){ 8080 });
	s_local = tenv_set(&e, IPPROTO_TCP, 1, (uint32_t[]){ POD_B }, (uint16_t[]){ 8080 });
	tenv_fe(&e, CIP, 80, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_CLUSTERIP, 0, s_cluster);
	tenv_fe(&e, NODE_IP, 30080, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_NODEPORT,
		KXP_SVC_F_EXTERNAL | KXP_SVC_F_ETP_LOCAL | KXP_SVC_F_SPLIT | KXP_SVC_F_LOCAL_SET, s_local);
	tenv_fe(&e, NODE_IP, 30080, IPPROTO_TCP, KXP_SCOPE_INTERNAL, KXP_FE_NODEPORT,
		KXP_SVC_F_EXTERNAL | KXP_SVC_F_ETP_LOCAL, s_cluster);
	tenv_fe(&e, NODE_IP, 30081, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_NODEPORT, KXP_SVC_F_EXTERNAL, s_cluster);
	tenv_fe(&e, CIP2, 53, IPPROTO_UDP, KXP_SCOPE_DEFAULT, KXP_FE_CLUSTERIP, KXP_SVC_F_REJECT, -1);
	if (tenv_apply(&e))
		goto out;

	/* pod -> ClusterIP: forward to the backend, decided in TC ingress */
	if (!trace(inst, false, IPPROTO_TCP, POD_A, 40000, CIP, 80, &o))
		goto out;
	if (!ASSERT_EQ(o.res.verdict, KXP_V_FORWARD, "verdict") || !ASSERT_EQ(o.res.reason, KXP_R_OK, "reason") ||
	    !ASSERT_EQ(o.stage, 2, "stage") || !ASSERT_EQ(o.res.backend_addr, POD_R, "backend addr") ||
	    !ASSERT_EQ(ntohs(o.res.backend_port), 8080, "backend port") || !ASSERT_EQ(o.res.snat, 0, "snat") ||
	    !ASSERT_EQ(o.out_daddr, POD_R, "output packet daddr") || !ASSERT_EQ(o.out_dport, 8080, "output dport") ||
	    !ASSERT_EQ(o.res.fe_id, tenv_fe_id(&e, CIP, 80, IPPROTO_TCP, 0), "frontend id"))
		goto out;
	/* external -> eTP=Local NodePort: XDP decides, local backend */
	if (!trace(inst, true, IPPROTO_TCP, EXT_C, 50000, NODE_IP, 30080, &o))
		goto out;
	if (o.xdp_untraceable) { /* what came before was checked; the rest needs XDP */
		untraceable = true;
		goto out;
	}
	if (!ASSERT_EQ(o.stage, 1, "stage xdp") || !ASSERT_EQ(o.res.verdict, KXP_V_FORWARD, "ext verdict") ||
	    !ASSERT_EQ(o.res.backend_addr, POD_B, "local backend") || !ASSERT_EQ(o.out_saddr, EXT_C, "client kept"))
		goto out;
	/* external -> eTP=Cluster: masqueraded and sent by XDP itself (the
	 * backend is behind another device here: redirect); src shows the SNAT
	 * address and the allocator's first candidate port */
	if (!trace(inst, true, IPPROTO_TCP, EXT_C, 50000, NODE_IP, 30081, &o))
		goto out;
	if (!ASSERT_TRUE(o.xdp_ran, "xdp ran") || !ASSERT_EQ(o.stage, 1, "decided in xdp") ||
	    !ASSERT_EQ(o.res.verdict, KXP_V_FORWARD, "forward") || !ASSERT_EQ(o.res.reason, KXP_R_OK, "reason ok") ||
	    !ASSERT_EQ(o.res.snat, 1, "snat flag") || !ASSERT_EQ(o.out_saddr, NODE_IP, "SNAT address") ||
	    !ASSERT_EQ(o.out_daddr, POD_R, "backend") ||
	    !ASSERT_TRUE(o.out_sport >= 1024 && o.out_sport <= 29999, "first candidate in the default range"))
		goto out;
	first = o.out_sport;
	if (!trace(inst, true, IPPROTO_TCP, EXT_C, 50000, NODE_IP, 30081, &o) ||
	    !ASSERT_EQ(o.out_sport, first, "the first candidate is deterministic"))
		goto out;
	/* no endpoints: XDP leaves rejects to TC, which reports the reject */
	if (!trace(inst, true, IPPROTO_UDP, EXT_C, 50000, CIP2, 53, &o))
		goto out;
	if (!ASSERT_EQ(o.stage, 2, "reject decided in tc") || !ASSERT_EQ(o.res.verdict, KXP_V_REJECT, "reject") ||
	    !ASSERT_EQ(o.res.reason, KXP_R_NO_ENDPOINTS, "reason no_endpoints"))
		goto out;
	/* nothing was written by any of that */
	if (!ASSERT_EQ(tenv_ct_count(&e), 0, "trace wrote no ct entry") ||
	    !ASSERT_EQ(all_reasons(&e), 0, "trace counted nothing"))
		goto out;

	/* an existing flow decides, even after its backend left the set */
	p = (struct tpkt){ .proto = IPPROTO_TCP, .saddr = POD_A, .daddr = CIP, .sport = 40001, .dport = 80,
			   .tcp_flags = 0x02 };
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_pkt(&r, POD_A, 40001, POD_R, 8080, "real SYN"))
		goto out;
	tenv_set_replace(&e, s_cluster, 1, (uint32_t[]){ POD_R2 }, (uint16_t[]){ 8081 });
	if (tenv_apply(&e) || !trace(inst, false, IPPROTO_TCP, POD_A, 40001, CIP, 80, &o))
		goto out;
	if (!ASSERT_EQ(o.res.reason, KXP_R_CT_HIT, "ct hit") || !ASSERT_EQ(o.res.backend_addr, POD_R, "old backend"))
		goto out;
	if (!trace(inst, false, IPPROTO_UDP, POD_A, 40001, CIP, 80, &o) ||
	    !ASSERT_EQ(o.res.verdict, KXP_V_DROP, "UDP to a TCP-only ClusterIP, no wildcard entry") ||
	    !ASSERT_EQ(o.res.reason, KXP_R_SVC_CIDR_DROP, "reason svc_cidr_drop"))
		goto out;
	ASSERT_EQ(tenv_ct_count(&e), 2, "only the real flow's entries");
	/* the real program allocates the port trace announced */
	p = (struct tpkt){ .proto = IPPROTO_TCP, .saddr = EXT_C, .daddr = NODE_IP, .sport = 50000, .dport = 30081,
			   .tcp_flags = 0x02 };
	tenv_set_replace(&e, s_cluster, 1, (uint32_t[]){ POD_R }, (uint16_t[]){ 8080 });
	tenv_dev("ext0");
	if (tenv_apply(&e) || tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(r.ret, XDP_TX, "real run: XDP_TX") ||
	    !tcheck_pkt(&r, NODE_IP, first, POD_R, 8080, "real run: the first candidate"))
		goto out;
	ASSERT_STREQ(kxp_reason_name(KXP_R_NEEDS_SNAT), "needs_snat", "reason name");
out:
	tenv_close(&e);
cleanup:
	kxp_dp_cleanup(inst);
	ASSERT_TRUE(stat(dir, &st) && errno == ENOENT, "pins removed");
	if (untraceable)
		kxp_test_skip("this kernel cannot test-run XDP with an ingress device (Linux 5.12 and later can)");
}
