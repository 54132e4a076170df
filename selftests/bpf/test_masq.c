/* Spine II datapath fixtures: masquerade and forwarding with real FIB
 * lookups (each test in a private network namespace, tenv_netns), the SNAT
 * port allocator (collisions, exhaustion, reuse of closed flows' ports), the
 * reject rate limit, ICMP error translation and fragmentation needed, through
 * the real programs with maps written by the real writer. */
#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>

#include "../lib/testlib.h"
#include "tenv.h"

#define NP 30081             /* eTP=Cluster NodePort, TCP, backend POD_R:8080 */
#define NP_UDP 30053         /* eTP=Cluster NodePort, UDP, backend POD_R:5353 */
#define NP_LOCALBE 30090     /* eTP=Cluster NodePort, backend POD_B:8080 on this node */
#define NP_NONEIGH 30091     /* backend POD_N:8080, neighbour of its gateway unknown */
#define NP_OTHERDEV 30092    /* backend POD_X:8080 behind pod0 (another device) */
#define CIP_UDP A(10, 96, 0, 20) /* ClusterIP UDP 53 -> POD_R:5353 */
#define CIP_HAIR A(10, 96, 0, 12)
#define CIP_NOEP A(10, 96, 0, 11)
#define POD_X A(10, 244, 4, 50)

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

static int setup(struct tenv *e)
{
	const uint16_t ext = KXP_SVC_F_EXTERNAL;
	int s_tcp, s_udp, s_local, s_noneigh, s_other, s_hair;

	if (tenv_netns() || tenv_open(e))
		return -1;
	/* 10.244.4.0/24 is reached through pod0 (a device other than ext0) */
	if (tenv_sh("ip route add 10.244.4.0/24 via 10.244.1.20 dev pod0 onlink"))
		return -1;
	tenv_dev("ext0");
	s_tcp = tenv_set(e, IPPROTO_TCP, 1, (uint32_t[]){ POD_R }, (uint16_t[]){ 8080 });
	s_udp = tenv_set(e, IPPROTO_UDP, 1, (uint32_t[]){ POD_R }, (uint16_t[]){ 5353 });
	s_local = tenv_set(e, IPPROTO_TCP, 1, (uint32_t[]){ POD_B }, (uint16_t[]){ 8080 });
	e->be[s_local][0].flags = KXP_BE_F_LOCAL;
	s_noneigh = tenv_set(e, IPPROTO_TCP, 1, (uint32_t[]){ POD_N }, (uint16_t[]){ 8080 });
	s_other = tenv_set(e, IPPROTO_TCP, 1, (uint32_t[]){ POD_X }, (uint16_t[]){ 8080 });
	s_hair = tenv_set(e, IPPROTO_TCP, 1, (uint32_t[]){ POD_A }, (uint16_t[]){ 8080 });
	e->be[s_hair][0].flags = KXP_BE_F_LOCAL;
	tenv_fe(e, NODE_IP, NP, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_NODEPORT, ext, s_tcp);
	tenv_fe(e, NODE_IP, NP_UDP, IPPROTO_UDP, KXP_SCOPE_DEFAULT, KXP_FE_NODEPORT, ext, s_udp);
	tenv_fe(e, NODE_IP, NP_LOCALBE, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_NODEPORT, ext, s_local);
	tenv_fe(e, NODE_IP, NP_NONEIGH, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_NODEPORT, ext, s_noneigh);
	tenv_fe(e, NODE_IP, NP_OTHERDEV, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_NODEPORT, ext, s_other);
	tenv_fe(e, CIP_UDP, 53, IPPROTO_UDP, KXP_SCOPE_DEFAULT, KXP_FE_CLUSTERIP, 0, s_udp);
	tenv_fe(e, CIP_HAIR, 80, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_CLUSTERIP, 0, s_hair);
	tenv_fe(e, CIP_NOEP, 80, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_CLUSTERIP, KXP_SVC_F_REJECT, -1);
	return tenv_apply(e);
}

static uint16_t sport_of(const struct trun *r)
{
	struct tpkt_dec d;

	tpkt_decode(r->out, r->out_len, &d);
	return d.sport;
}

static bool check_macs(const struct trun *r, const uint8_t *dst, const char *dev, const char *what)
{
	char path[128], buf[32];
	uint8_t mac[6];
	FILE *f;

	/* under unshare, /sys still shows the old namespace: ask ip(8) */
	snprintf(path, sizeof(path), "ip -br link show %s | awk '{print $3}'", dev);
	f = popen(path, "r");
	if (!f || !fgets(buf, sizeof(buf), f) ||
	    sscanf(buf, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4], &mac[5]) != 6) {
		if (f)
			pclose(f);
		kxp_test_fail(__FILE__, __LINE__, "%s: cannot read the MAC of %s", what, dev);
		return false;
	}
	pclose(f);
	return ASSERT_TRUE(!memcmp(r->out, dst, 6), what) && ASSERT_TRUE(!memcmp(r->out + 6, mac, 6), what);
}

KXP_TEST(xdp_tx_both_directions)
{
	struct tenv e;
	struct trun r;
	struct tpkt p = tcp(EXT_C, 50000, NODE_IP, NP, TH_SYN), rep;
	uint16_t port;

	if (setup(&e))
		return;
	/* SYN: masqueraded and sent back out of ext0 toward NODE2 */
	if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(r.ret, XDP_TX, "xdp tx") ||
	    !check_macs(&r, TMAC_NODE2, "ext0", "next hop NODE2"))
		goto out;
	port = sport_of(&r);
	if (!tcheck_pkt(&r, NODE_IP, port, POD_R, 8080, "SNAT + DNAT"))
		goto out;
	/* the backend's reply arrives on ext0: un-SNAT and un-DNAT in XDP, out
	 * again toward the client's router */
	rep = tcp(POD_R, 8080, NODE_IP, port, TH_SYN | TH_ACK);
	if (tenv_run(&e, T_XDP, &rep, &r) || !ASSERT_EQ(r.ret, XDP_TX, "reply xdp tx") ||
	    !check_macs(&r, TMAC_ROUTER, "ext0", "reply next hop ROUTER") ||
	    !tcheck_pkt(&r, NODE_IP, NP, EXT_C, 50000, "reply back to NodeIP:NodePort -> client"))
		goto out;
	/* the same reply reaching TC (XDP off) is translated and redirected */
	if (tenv_run(&e, T_TC_IN, &rep, &r) || !ASSERT_EQ(r.ret, TC_ACT_REDIRECT, "reply tc redirect") ||
	    !tcheck_pkt(&r, NODE_IP, NP, EXT_C, 50000, "reply in TC"))
		goto out;
	/* next packets of the flow follow the ct entry */
	p.tcp_flags = TH_ACK;
	if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(r.ret, XDP_TX, "ack xdp tx") ||
	    !tcheck_pkt(&r, NODE_IP, port, POD_R, 8080, "ACK translated the same way"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_OK), 1, "reason OK");
	ASSERT_EQ(tenv_reason(&e, KXP_R_REPLY), 2, "reason REPLY");
	ASSERT_EQ(tenv_reason(&e, KXP_R_CT_HIT), 1, "reason CT_HIT");
	/* a backend behind another device: XDP_REDIRECT */
	p = tcp(EXT_C, 50001, NODE_IP, NP_OTHERDEV, TH_SYN);
	if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(r.ret, XDP_REDIRECT, "xdp redirect") ||
	    !check_macs(&r, TMAC_POD_B, "pod0", "next hop on pod0") ||
	    !tcheck_pkt(&r, NODE_IP, sport_of(&r), POD_X, 8080, "redirected, translated"))
		goto out;
out:
	tenv_close(&e);
}

/* XDP hands what it cannot send itself to TC: untranslated, counted once. */
static bool handed_to_tc(struct tenv *e, struct tpkt p, uint32_t be, const char *what)
{
	struct trun r;
	struct kxp_stats st;
	uint32_t fe = tenv_fe_id(e, p.daddr, p.dport, p.proto, 0);

	bool meta = kxp_dp_features(e->dp) & KXP_FEAT_XDP_META;

	/* XDP marks what it counted where the kernel lets it write metadata;
	 * elsewhere it leaves the counting to TC ingress */
	if (tenv_run(e, T_XDP, &p, &r) || !ASSERT_EQ(r.ret, XDP_PASS, what) || !tcheck_untouched(&r, what) ||
	    !ASSERT_EQ(r.meta, meta ? 0x6b787031 : 0, what))
		return false;
	if (tenv_run(e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_REDIRECT, what) ||
	    !tcheck_pkt(&r, NODE_IP, sport_of(&r), be, 8080, what))
		return false;
	tenv_stats(e, fe, &st);
	/* TC's own run counts too (test_run skbs carry no XDP metadata) */
	return ASSERT_EQ(st.packets, meta ? 2 : 1, what) && ASSERT_EQ(st.passed, 0, what);
}

KXP_TEST(local_backend_and_no_neigh_go_through_tc)
{
	struct tenv e;
	struct trun r;
	struct tpkt p = tcp(EXT_C, 50000, NODE_IP, NP_LOCALBE, TH_SYN), rep;
	struct kxp_ct_val v;
	uint16_t port;

	if (setup(&e))
		return;
	if (!handed_to_tc(&e, p, POD_B, "local backend: XDP leaves it to TC") ||
	    !handed_to_tc(&e, tcp(EXT_C, 50000, NODE_IP, NP_NONEIGH, TH_SYN), POD_N, "NO_NEIGH: TC redirect_neigh"))
		goto out;
	if (!tenv_ct(&e, EXT_C, NODE_IP, 50000, NP_LOCALBE, IPPROTO_TCP, KXP_DIR_FWD, &v) ||
	    !ASSERT_EQ(v.flags, KXP_CT_F_SNAT | KXP_CT_F_LOCAL_BE, "ct flags SNAT|LOCAL_BE"))
		goto out;
	port = ntohs(v.nat.sport);
	/* the local pod's reply on its device: translated and redirected
	 * toward the client (the stack would deliver it to the node) */
	tenv_dev("pod0");
	rep = tcp(POD_B, 8080, NODE_IP, port, TH_SYN | TH_ACK);
	if (tenv_run(&e, T_TC_IN, &rep, &r) || !ASSERT_EQ(r.ret, TC_ACT_REDIRECT, "local reply redirect") ||
	    !tcheck_pkt(&r, NODE_IP, NP_LOCALBE, EXT_C, 50000, "local reply translated at ingress"))
		goto out;
	/* hairpin: the pod reaches itself, masqueraded, and gets the reply */
	p = tcp(POD_A, 41000, CIP_HAIR, 80, TH_SYN);
	if (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_REDIRECT, "hairpin redirect"))
		goto out;
	port = sport_of(&r);
	if (!tcheck_pkt(&r, NODE_IP, port, POD_A, 8080, "hairpin: source is the node"))
		goto out;
	rep = tcp(POD_A, 8080, NODE_IP, port, TH_SYN | TH_ACK);
	if (tenv_run(&e, T_TC_IN, &rep, &r) || !ASSERT_EQ(r.ret, TC_ACT_REDIRECT, "hairpin reply redirect") ||
	    !tcheck_pkt(&r, CIP_HAIR, 80, POD_A, 41000, "hairpin reply from the ClusterIP"))
		goto out;
out:
	tenv_close(&e);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* The flow holding `port` toward be:bport: its REPLY entry (the claim), SNAT
 * and `flags`, idle for reply_age_ns, and with fwd_age_ns >= 0 its FWD entry
 * {client, frontend} -> {snat:port, backend} idle that long; other_port
 * gives that FWD entry another port (its client has a newer flow). */
static int put_flow(struct tenv *e, uint32_t be, uint16_t bport, uint16_t port, uint16_t flags,
		    uint64_t reply_age_ns, int64_t fwd_age_ns, uint16_t other_port)
{
	struct kxp_flow4 k = { .saddr = be, .daddr = NODE_IP, .sport = htons(bport), .dport = htons(port),
			       .proto = IPPROTO_TCP, .dir = KXP_DIR_REPLY };
	struct kxp_flow4 fk = { .saddr = A(198, 18, 0, 1), .daddr = NODE_IP, .sport = htons(1),
				.dport = htons(NP), .proto = IPPROTO_TCP, .dir = KXP_DIR_FWD };
	struct kxp_ct_val cv = { .nat = { NODE_IP, A(198, 18, 0, 1), htons(NP), htons(1) },
				 .flags = KXP_CT_F_SNAT | flags };
	struct kxp_ct_val fv = cv;
	struct timespec ts;
	uint64_t now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
	cv.created = cv.last_seen = now - reply_age_ns;
	if (bpf_map_update_elem(kxp_dp_map_fd(e->dp, KXP_MAP_CT), &k, &cv, BPF_ANY))
		return -errno;
	if (fwd_age_ns < 0)
		return 0;
	fv.nat = (struct kxp_nat4){ NODE_IP, be, htons(other_port ? other_port : port), htons(bport) };
	fv.created = fv.last_seen = now - (uint64_t)fwd_age_ns;
	if (bpf_map_update_elem(kxp_dp_map_fd(e->dp, KXP_MAP_CT), &fk, &fv, BPF_ANY))
		return -errno;
	return 0;
}

static bool old_fwd_present(struct tenv *e)
{
	struct kxp_flow4 fk = { .saddr = A(198, 18, 0, 1), .daddr = NODE_IP, .sport = htons(1),
				.dport = htons(NP), .proto = IPPROTO_TCP, .dir = KXP_DIR_FWD };
	struct kxp_ct_val v;

	return bpf_map_lookup_elem(kxp_dp_map_fd(e->dp, KXP_MAP_CT), &fk, &v) == 0;
}

#define SEC_NS 1000000000ll

/* The backend's SYN-ACK to the SNAT port reaches the client of cport. */
static bool masq_reply_ok(struct tenv *e, uint16_t port, uint16_t cport)
{
	struct tpkt p = tcp(POD_R, 8080, NODE_IP, port, TH_SYN | TH_ACK);
	struct trun r;

	return !tenv_run(e, T_XDP, &p, &r) && ASSERT_EQ(r.ret, XDP_TX, "reply") &&
	       tcheck_pkt(&r, NODE_IP, NP, EXT_C, cport, "the new flow's reply reaches its client");
}

/* The port claim is the flow's REPLY entry: which flows give their port to a
 * new flow to the same backend, and which keep it. */
KXP_TEST(snat_port_collision)
{
	struct tenv e;
	struct trun r;
	struct tpkt p = tcp(EXT_C, 50000, NODE_IP, NP, TH_SYN);
	struct kxp_ct_val v;
	uint16_t first;

	/* entries up to 12 s idle are written below; the packet clock counts
	 * from boot, so a machine up for less (a fresh VM) cannot hold them */
	if (mono_ns() < 15 * SEC_NS) {
		kxp_test_skip("up for %llu s, less than the 15 s of idle time this test writes into ct entries",
			      (unsigned long long)(mono_ns() / SEC_NS));
		return;
	}
	if (setup(&e))
		return;
	/* the first candidate, from a clean node (test_trace checks that
	 * `kxp trace` announces exactly this port) */
	if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(r.ret, XDP_TX, "clean run"))
		goto out;
	first = sport_of(&r);
	if (!ASSERT_EQ(tenv_ct_count(&e), 2, "one flow, two entries (no other claim)"))
		goto out;
	tenv_close(&e);

	/* the same flow on a node where that port is taken by a live flow to
	 * the same backend: the allocator moves on */
	if (setup(&e) || !ASSERT_OK(put_flow(&e, POD_R, 8080, first, KXP_CT_F_SEEN_REPLY, 0, 0, 0), "live flow"))
		goto out;
	if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(r.ret, XDP_TX, "collision run"))
		goto out;
	if (!ASSERT_NE(sport_of(&r), first, "another port") ||
	    !tcheck_pkt(&r, NODE_IP, sport_of(&r), POD_R, 8080, "translated after a collision") ||
	    !ASSERT_TRUE(tenv_ct(&e, POD_R, NODE_IP, 8080, first, IPPROTO_TCP, KXP_DIR_REPLY, &v) &&
			     v.nat.daddr == A(198, 18, 0, 1),
			 "the live flow's REPLY entry is untouched"))
		goto out;
	tenv_close(&e);

	/* a flow whose entries both expired (closing: 10 s, the shortest
	 * lifetime, so that a freshly booted VM can hold the age) gives its
	 * port up; so does one whose FWD entry is another flow's now */
	if (setup(&e) || !ASSERT_OK(put_flow(&e, POD_R, 8080, first, KXP_CT_F_CLOSING, 12 * SEC_NS, -1, 0), "expired flow"))
		goto out;
	if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(sport_of(&r), first, "expired flow's port taken over") ||
	    !ASSERT_TRUE(tenv_ct(&e, POD_R, NODE_IP, 8080, first, IPPROTO_TCP, KXP_DIR_REPLY, &v) &&
			     v.nat.daddr == EXT_C && ntohs(v.nat.dport) == 50000,
			 "the REPLY entry is the new flow's") ||
	    !masq_reply_ok(&e, first, 50000))
		goto out;
	tenv_close(&e);
	if (setup(&e) ||
	    !ASSERT_OK(put_flow(&e, POD_R, 8080, first, KXP_CT_F_CLOSING, 12 * SEC_NS, 0, first + 1), "FWD moved on"))
		goto out;
	if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(sport_of(&r), first, "orphan REPLY entry's port taken over") ||
	    !ASSERT_TRUE(old_fwd_present(&e), "the client's newer flow keeps its FWD entry"))
		goto out;
	tenv_close(&e);
	/* an expired REPLY entry whose FWD entry is live (a client that only
	 * sends) keeps its port: its next packet would reach the backend as
	 * the new flow's */
	if (setup(&e) || !ASSERT_OK(put_flow(&e, POD_R, 8080, first, KXP_CT_F_CLOSING, 12 * SEC_NS, 0, 0), "one-way flow"))
		goto out;
	if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_NE(sport_of(&r), first, "one-way flow keeps its port") ||
	    !ASSERT_TRUE(old_fwd_present(&e), "and its FWD entry"))
		goto out;
	tenv_close(&e);

	/* a closed flow (FIN/RST seen) idle for 3 s gives its port up, and
	 * its ct entries go with it; one closed 0.5 s ago keeps it */
	if (setup(&e) || !ASSERT_OK(put_flow(&e, POD_R, 8080, first, KXP_CT_F_SEEN_REPLY | KXP_CT_F_CLOSING,
					     3 * SEC_NS, 3 * SEC_NS, 0), "closed flow"))
		goto out;
	if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(sport_of(&r), first, "closed, idle flow's port taken over") ||
	    !ASSERT_TRUE(!old_fwd_present(&e), "the old flow's FWD entry is gone"))
		goto out;
	tenv_close(&e);
	if (setup(&e) || !ASSERT_OK(put_flow(&e, POD_R, 8080, first, KXP_CT_F_SEEN_REPLY | KXP_CT_F_CLOSING,
					     SEC_NS / 2, SEC_NS / 2, 0), "recently closed flow"))
		goto out;
	if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_NE(sport_of(&r), first, "recently closed flow keeps its port") ||
	    !ASSERT_TRUE(old_fwd_present(&e), "the old flow's FWD entry stays"))
		goto out;
out:
	tenv_close(&e);
}

KXP_TEST(snat_port_range_exhaustion)
{
	struct tenv e;
	struct trun r;
	struct tpkt p = tcp(EXT_C, 50000, NODE_IP, NP, TH_SYN);
	struct kxp_stats st;
	struct kxp_ct_val v;

	if (setup(&e))
		return;
	e.d.cfg.snat_port_min = 20000;
	e.d.cfg.snat_port_max = 20001;
	if (tenv_apply(&e))
		goto out;
	for (int i = 0; i < 2; i++) {
		p.sport = (uint16_t)(50000 + i);
		if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(r.ret, XDP_TX, "within the range"))
			goto out;
		if (!ASSERT_TRUE(sport_of(&r) == 20000 || sport_of(&r) == 20001, "port from the configured range"))
			goto out;
	}
	/* range exhausted for this backend: dropped, counted, nothing written */
	p.sport = 50002;
	if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(r.ret, XDP_DROP, "no port left"))
		goto out;
	tenv_dev("pod0");
	p = tcp(POD_A, 40000, NODE_IP, NP, TH_SYN);
	if (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_SHOT, "no port left (tc)"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_SNAT_FAIL), 2, "reason SNAT_FAIL");
	tenv_stats(&e, tenv_fe_id(&e, NODE_IP, NP, IPPROTO_TCP, 0), &st);
	ASSERT_EQ(st.snat_fail, 2, "stats snat_fail");
	ASSERT_EQ(st.drops, 2, "stats drops");
	ASSERT_TRUE(!tenv_ct(&e, EXT_C, NODE_IP, 50002, NP, IPPROTO_TCP, KXP_DIR_FWD, &v), "no ct for the failed flow");
	ASSERT_EQ(tenv_ct_count(&e), 4, "ct entries of the two flows only");
	/* another backend port has its own range */
	p = udp(EXT_C, 50003, NODE_IP, NP_UDP);
	tenv_dev("ext0");
	if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(r.ret, XDP_TX, "other backend"))
		goto out;
out:
	tenv_close(&e);
}

/* One packet of a masqueraded flow through XDP: client -> NodePort (fwd) or
 * backend -> SNAT port (reply); every one must be sent on (XDP_TX). */
static bool masq_pkt(struct tenv *e, uint16_t cport, uint16_t snat_port, bool reply, uint8_t flags,
		     const char *what)
{
	struct tpkt p = reply ? tcp(POD_R, 8080, NODE_IP, snat_port, flags) : tcp(EXT_C, cport, NODE_IP, NP, flags);
	struct trun r;

	if (tenv_run(e, T_XDP, &p, &r) || !ASSERT_EQ(r.ret, XDP_TX, what))
		return false;
	return reply ? tcheck_pkt(&r, NODE_IP, NP, EXT_C, cport, what) :
		       tcheck_pkt(&r, NODE_IP, snat_port, POD_R, 8080, what);
}

/* A new flow from client port cport: XDP_DROP (no port), or XDP_TX and its
 * SNAT port in *port. */
static int masq_syn(struct tenv *e, uint16_t cport, uint16_t *port)
{
	struct tpkt p = tcp(EXT_C, cport, NODE_IP, NP, TH_SYN);
	struct trun r;

	if (tenv_run(e, T_XDP, &p, &r))
		return -1;
	*port = r.ret == XDP_TX ? sport_of(&r) : 0;
	return r.ret;
}

/* Flows that closed give their port back at once (after a quarter-second
 * guard), with real FIN/RST packets through XDP on a 5-port range: an RST,
 * or a FIN each way with the client's first, closes a flow; one FIN
 * (half-closed) does not, nor a close the backend began (its TIME_WAIT). */
KXP_TEST(snat_closed_flow_port_reused)
{
	struct tenv e;
	struct kxp_ct_val v;
	uint16_t port[5], a, b, x;
	uint64_t t0;
	int ret;

	if (setup(&e))
		return;
	e.d.cfg.snat_port_min = 20000;
	e.d.cfg.snat_port_max = 20004;
	if (tenv_apply(&e))
		goto out;
	/* five established flows fill the range */
	for (int i = 0; i < 5; i++) {
		if (!ASSERT_EQ(masq_syn(&e, 51000 + i, &port[i]), XDP_TX, "open") ||
		    !masq_pkt(&e, 51000 + i, port[i], true, TH_SYN | TH_ACK, "syn-ack") ||
		    !masq_pkt(&e, 51000 + i, port[i], false, TH_ACK, "ack"))
			goto out;
	}
	if (!ASSERT_EQ(masq_syn(&e, 51010, &x), XDP_DROP, "range full"))
		goto out;
	t0 = mono_ns();
	/* flow 0 closes both ways (client first), flow 1 half-closes (the
	 * backend still sends data), flow 2 is reset by the backend, flow 3
	 * closes both ways (backend first), flow 4 stays open */
	if (!masq_pkt(&e, 51000, port[0], false, TH_FIN | TH_ACK, "flow 0 client FIN") ||
	    !masq_pkt(&e, 51000, port[0], true, TH_FIN | TH_ACK, "flow 0 backend FIN") ||
	    !masq_pkt(&e, 51000, port[0], false, TH_ACK, "flow 0 final ACK") ||
	    !masq_pkt(&e, 51001, port[1], false, TH_FIN | TH_ACK, "flow 1 client FIN") ||
	    !masq_pkt(&e, 51001, port[1], true, TH_ACK, "flow 1 backend data") ||
	    !masq_pkt(&e, 51002, port[2], true, TH_RST | TH_ACK, "flow 2 backend RST") ||
	    !masq_pkt(&e, 51003, port[3], true, TH_FIN | TH_ACK, "flow 3 backend FIN") ||
	    !masq_pkt(&e, 51003, port[3], false, TH_FIN | TH_ACK, "flow 3 client FIN") ||
	    !masq_pkt(&e, 51003, port[3], true, TH_ACK, "flow 3 final ACK"))
		goto out;
	/* each FIN is recorded on its own direction's entry only, and the
	 * first one says so */
	if (!ASSERT_TRUE(tenv_ct(&e, EXT_C, NODE_IP, 51000, NP, IPPROTO_TCP, KXP_DIR_FWD, &v), "flow 0 FWD") ||
	    !ASSERT_EQ(v.flags & ~(KXP_CT_F_SNAT | KXP_CT_F_SEEN_REPLY),
		       KXP_CT_F_FIN_ORIG | KXP_CT_F_CLOSING | KXP_CT_F_CLOSE_FIRST, "FWD: FIN_ORIG|CLOSING|FIRST") ||
	    !ASSERT_TRUE(tenv_ct(&e, POD_R, NODE_IP, 8080, port[0], IPPROTO_TCP, KXP_DIR_REPLY, &v), "flow 0 REPLY") ||
	    !ASSERT_EQ(v.flags & ~(KXP_CT_F_SNAT | KXP_CT_F_SEEN_REPLY), KXP_CT_F_FIN_REPLY | KXP_CT_F_CLOSING,
		       "REPLY: FIN_REPLY|CLOSING") ||
	    !ASSERT_TRUE(tenv_ct(&e, POD_R, NODE_IP, 8080, port[3], IPPROTO_TCP, KXP_DIR_REPLY, &v), "flow 3 REPLY") ||
	    !ASSERT_EQ(v.flags & ~(KXP_CT_F_SNAT | KXP_CT_F_SEEN_REPLY),
		       KXP_CT_F_FIN_REPLY | KXP_CT_F_CLOSING | KXP_CT_F_CLOSE_FIRST, "flow 3 REPLY: backend first") ||
	    !ASSERT_TRUE(tenv_ct(&e, POD_R, NODE_IP, 8080, port[2], IPPROTO_TCP, KXP_DIR_REPLY, &v), "flow 2 REPLY") ||
	    !ASSERT_TRUE(v.flags & KXP_CT_F_RST, "REPLY: RST"))
		goto out;
	/* within the guard the closed flows keep their ports (asserted only
	 * when this machine really ran it within the guard) */
	ret = masq_syn(&e, 51011, &x);
	if (mono_ns() - t0 < 200000000ull && !ASSERT_EQ(ret, XDP_DROP, "closed 0 ms ago: kept"))
		goto out;
	usleep(300000);
	/* the two closed flows' ports go to the next two new flows, together
	 * with their ct entries; the half-closed and the open flow keep theirs */
	if (!ASSERT_EQ(masq_syn(&e, 51020, &a), XDP_TX, "new flow A gets a port") ||
	    !ASSERT_EQ(masq_syn(&e, 51021, &b), XDP_TX, "new flow B gets a port") ||
	    !ASSERT_TRUE((a == port[0] && b == port[2]) || (a == port[2] && b == port[0]),
			 "A and B took the closed flows' ports") ||
	    !ASSERT_EQ(masq_syn(&e, 51022, &x), XDP_DROP, "half-closed, backend-closed and open flows keep theirs"))
		goto out;
	if (!ASSERT_TRUE(!tenv_ct(&e, EXT_C, NODE_IP, 51000, NP, IPPROTO_TCP, KXP_DIR_FWD, &v), "flow 0 ct gone") ||
	    !ASSERT_TRUE(!tenv_ct(&e, EXT_C, NODE_IP, 51002, NP, IPPROTO_TCP, KXP_DIR_FWD, &v), "flow 2 ct gone"))
		goto out;
	/* both survivors still translate both ways; A's replies reach A */
	if (!masq_pkt(&e, 51001, port[1], true, TH_ACK, "half-closed flow's data still translated") ||
	    !masq_pkt(&e, 51001, port[1], false, TH_ACK, "half-closed flow's ACK") ||
	    !masq_pkt(&e, 51004, port[4], false, TH_ACK, "open flow") ||
	    !masq_pkt(&e, 51020, a, true, TH_SYN | TH_ACK, "reply of A to A"))
		goto out;
	ASSERT_TRUE(tenv_reason(&e, KXP_R_SNAT_FAIL) >= 2, "SNAT_FAIL counted");
out:
	tenv_close(&e);
}

KXP_TEST(reject_rate_limit)
{
	struct tenv e;
	struct trun r;
	struct tpkt p = tcp(POD_A, 40000, CIP_NOEP, 80, TH_SYN);
	struct timespec t0, t1;
	int sent = 300, ok = 0, limited = 0;
	cpu_set_t one;
	double el;

	CPU_ZERO(&one);
	CPU_SET(sched_getcpu(), &one);
	/* the bucket is per CPU: stay on one */
	if (!ASSERT_OK(sched_setaffinity(0, sizeof(one), &one), "pin to one CPU") || setup(&e))
		return;
	tenv_dev("pod0");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < sent; i++) {
		p.sport = (uint16_t)(40000 + i);
		if (tenv_run(&e, T_TC_IN, &p, &r))
			goto out;
		if (r.ret == TC_ACT_REDIRECT)
			ok++;
		else if (r.ret == TC_ACT_SHOT)
			limited++;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	el = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	/* burst 50, then 1000/s */
	if (!ASSERT_EQ(ok + limited, sent, "every packet answered or dropped") ||
	    !ASSERT_TRUE(ok >= 50, "the burst passes") || !ASSERT_TRUE(ok <= 50 + (int)(el * 1000) + 1, "rate bound") ||
	    !ASSERT_TRUE(limited > 0, "some were limited"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_REJECT_LIMIT), (uint64_t)limited, "reason REJECT_LIMIT");
	ASSERT_EQ(tenv_reason(&e, KXP_R_NO_ENDPOINTS), (uint64_t)ok, "reason NO_ENDPOINTS");
out:
	tenv_close(&e);
}

KXP_TEST(icmp_errors_translated_back)
{
	struct tenv e;
	struct trun r, fw;
	struct tpkt p = udp(EXT_C, 50000, NODE_IP, NP_UDP);
	struct tpkt_icmp ic;
	struct tpkt_dec orig;
	uint16_t port;

	if (setup(&e))
		return;
	/* a masqueraded UDP flow, sent by XDP */
	if (tenv_run(&e, T_XDP, &p, &fw) || !ASSERT_EQ(fw.ret, XDP_TX, "flow"))
		goto out;
	tpkt_decode(fw.in, fw.in_len, &orig);
	port = sport_of(&fw);
	/* NODE2 (a router on the way) answers "fragmentation needed" about the
	 * packet as kxp sent it, to the SNAT address */
	r.in_len = tpkt_build_icmp_err(3, 4, 1400, NODE2_IP, NODE_IP, fw.out, 28, r.in);
	if (tenv_run_raw(&e, T_TC_IN, &r) || !ASSERT_EQ(r.ret, TC_ACT_REDIRECT, "sent on to the client"))
		goto out;
	tpkt_decode_icmp(r.out, r.out_len, &ic);
	if (!ASSERT_TRUE(ic.ok, "icmp") || !ASSERT_EQ(ic.daddr, EXT_C, "outer destination: the client") ||
	    !ASSERT_EQ(ic.saddr, NODE2_IP, "outer source: the router") || !ASSERT_EQ(ic.mtu, 1400, "mtu kept") ||
	    !ASSERT_EQ(ic.isaddr, EXT_C, "quoted source: the client") || !ASSERT_EQ(ic.isport, 50000, "client port") ||
	    !ASSERT_EQ(ic.idaddr, NODE_IP, "quoted destination: the frontend") ||
	    !ASSERT_EQ(ic.idport, NP_UDP, "frontend port") ||
	    !ASSERT_TRUE(ic.l3_ok && ic.icmp_ok && ic.il3_ok, "outer, ICMP and quoted IP checksums") ||
	    !ASSERT_EQ(ic.iudp_csum, orig.udp_csum, "quoted UDP checksum: the client's own"))
		goto out;
	/* the backend itself reports (port unreachable): outer source too */
	r.in_len = tpkt_build_icmp_err(3, 3, 0, POD_R, NODE_IP, fw.out, 28, r.in);
	if (tenv_run_raw(&e, T_TC_IN, &r) || !ASSERT_EQ(r.ret, TC_ACT_REDIRECT, "backend's error"))
		goto out;
	tpkt_decode_icmp(r.out, r.out_len, &ic);
	if (!ASSERT_EQ(ic.saddr, NODE_IP, "outer source: the frontend") ||
	    !ASSERT_TRUE(ic.l3_ok && ic.icmp_ok && ic.il3_ok, "checksums") ||
	    !ASSERT_EQ(ic.idport, NP_UDP, "frontend port"))
		goto out;
	(void)port;
	/* a pod's ClusterIP flow (no SNAT); the node itself sends "frag
	 * needed" toward the pod (forwarding over a smaller MTU): TC egress
	 * shows the ClusterIP in the quoted header */
	tenv_dev("pod0");
	p = udp(POD_A, 5000, CIP_UDP, 53);
	if (tenv_run(&e, T_TC_IN, &p, &fw) || !tcheck_pkt(&fw, POD_A, 5000, POD_R, 5353, "pod flow"))
		goto out;
	r.in_len = tpkt_build_icmp_err(3, 4, 1200, NODE_IP, POD_A, fw.out, 28, r.in);
	if (tenv_run_raw(&e, T_TC_EG, &r) || !ASSERT_EQ(r.ret, TC_ACT_OK, "egress"))
		goto out;
	tpkt_decode_icmp(r.out, r.out_len, &ic);
	if (!ASSERT_EQ(ic.daddr, POD_A, "to the pod") || !ASSERT_EQ(ic.saddr, NODE_IP, "from the node") ||
	    !ASSERT_EQ(ic.idaddr, CIP_UDP, "quoted destination: the ClusterIP") || !ASSERT_EQ(ic.idport, 53, "port") ||
	    !ASSERT_EQ(ic.isaddr, POD_A, "quoted source") ||
	    !ASSERT_TRUE(ic.l3_ok && ic.icmp_ok && ic.il3_ok, "checksums"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_ICMP_ERR), 3, "reason ICMP_ERR");
	/* an error about no flow of ours is untouched */
	r.in_len = tpkt_build_icmp_err(3, 4, 1200, NODE_IP, POD_A, fw.in, 28, r.in);
	r.in[14 + 28 + 16] ^= 1; /* another quoted destination */
	if (tenv_run_raw(&e, T_TC_EG, &r) || !tcheck_untouched(&r, "unrelated error"))
		goto out;
out:
	tenv_close(&e);
}

KXP_TEST(frag_needed_toward_a_smaller_mtu)
{
	struct tenv e;
	struct trun r;
	struct tpkt p = udp(EXT_C, 50000, NODE_IP, NP_UDP);
	struct tpkt_icmp ic;

	if (setup(&e) || tenv_sh("ip link set ext0 mtu 400"))
		goto out;
	p.payload = 420;
	p.frag = 0x4000; /* DF */
	/* XDP sees MTU exceeded and leaves it to TC, which answers code 4 */
	if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(r.ret, XDP_PASS, "xdp hands over") ||
	    !tcheck_untouched(&r, "untouched by xdp"))
		goto out;
	if (tenv_run(&e, T_TC_IN, &p, &r) || !tcheck_reject(&r, 4, "fragmentation needed"))
		goto out;
	tpkt_decode_icmp(r.out, r.out_len, &ic);
	if (!ASSERT_EQ(ic.mtu, 400, "next-hop MTU") || !ASSERT_EQ(ic.idaddr, NODE_IP, "quotes the frontend"))
		goto out;
	ASSERT_EQ(tenv_reason(&e, KXP_R_FRAG_NEEDED), 1, "reason FRAG_NEEDED");
	/* without DF kxp cannot fragment it: dropped */
	p.frag = 0;
	p.sport = 50001;
	if (tenv_run(&e, T_TC_IN, &p, &r) || !ASSERT_EQ(r.ret, TC_ACT_SHOT, "no DF: drop"))
		goto out;
	/* fragments of a masqueraded datagram follow the first */
	tenv_sh("ip link set ext0 mtu 1500");
	p.sport = 50002;
	p.frag = 0x2000;
	if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(r.ret, XDP_TX, "first fragment sent"))
		goto out;
	{
		struct tpkt_dec d;
		uint16_t port = (uint16_t)(r.out[34] << 8 | r.out[35]);

		p.frag = 0x0020;
		if (tenv_run(&e, T_XDP, &p, &r) || !ASSERT_EQ(r.ret, XDP_TX, "later fragment sent"))
			goto out;
		tpkt_decode(r.out, r.out_len, &d);
		if (!ASSERT_EQ(d.saddr, NODE_IP, "later fragment SNAT") || !ASSERT_EQ(d.daddr, POD_R, "DNAT") ||
		    !ASSERT_TRUE(d.l3_ok, "ip csum") || !ASSERT_TRUE(port >= 1024 && port <= 29999, "first had a port") ||
		    !ASSERT_TRUE(!memcmp(r.out + 34, r.in + 34, r.in_len - 34), "payload untouched"))
			goto out;
	}
out:
	tenv_close(&e);
}
