/* Backend selection through the real programs (BPF_PROG_TEST_RUN), maps
 * provisioned by the real writer (and, for the annotation, the real model):
 * Maglev agreement across instances, rr/random/maglev per Service, affinity
 * stickiness and timeout, UDP flows leaving a removed backend, TCP flows
 * keeping theirs, Maglev tables rebuilt only when a set changes. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>

#include "../lib/testlib.h"
#include "tenv.h"
#include "model/model.h"

#define BE(i) A(10, 244, 2, 50 + (i)) /* remote backends, routed via NODE2 */
#define NP_SEL 30090

static uint32_t be4[4];

__attribute__((constructor)) static void init_be4(void)
{
	for (int i = 0; i < 4; i++)
		be4[i] = BE(i);
}
static const uint16_t port4[4] = { 8080, 8080, 8080, 8080 };

static struct tpkt syn(uint32_t sa, uint16_t sp, uint32_t da, uint16_t dp)
{
	return (struct tpkt){ .proto = IPPROTO_TCP, .saddr = sa, .daddr = da, .sport = sp, .dport = dp,
			      .tcp_flags = TH_SYN, .payload = 10 };
}

/* Backend index (0..3) the TC ingress program sent a new flow to, -1 if none. */
static int pick(struct tenv *e, const struct tpkt *p)
{
	struct tpkt_dec d;
	struct trun r;

	if (tenv_run(e, T_TC_IN, p, &r))
		return -1;
	tpkt_decode(r.out, r.out_len, &d);
	for (int i = 0; i < 4; i++)
		if (d.daddr == be4[i])
			return i;
	return -1;
}

static void ct_flush(struct tenv *e)
{
	int fd = kxp_dp_map_fd(e->dp, KXP_MAP_CT);
	struct kxp_flow4 k;

	while (bpf_map_get_next_key(fd, NULL, &k) == 0)
		bpf_map_delete_elem(fd, &k);
}

/* One 4-backend set behind CIP:80 (and an eTP=Cluster NodePort). */
static int setup4(struct tenv *e, uint8_t algo, uint32_t affinity)
{
	int s;

	if (tenv_open(e))
		return -1;
	tenv_dev("pod0");
	s = tenv_set(e, IPPROTO_TCP, 4, be4, port4);
	e->sets[s].algo = algo;
	e->sets[s].affinity_timeout = affinity;
	tenv_fe(e, CIP, 80, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_CLUSTERIP, affinity ? KXP_SVC_F_AFFINITY : 0, s);
	tenv_fe(e, NODE_IP, NP_SEL, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_NODEPORT,
		KXP_SVC_F_EXTERNAL | (affinity ? KXP_SVC_F_AFFINITY : 0), s);
	return tenv_apply(e);
}

KXP_TEST(select_maglev_same_backend_on_two_instances)
{
	struct tenv a, b;
	int hits[4] = {}, same = 0, differ = 0;
	bool b_open = false;

	if (tenv_netns() || setup4(&a, KXP_ALGO_MAGLEV, 0))
		return;
	if (setup4(&b, KXP_ALGO_MAGLEV, 0))
		goto out;
	b_open = true;
	for (int i = 0; i < 400; i++) {
		struct tpkt p = syn(A(10, 244, 1, 1 + i % 200), (uint16_t)(20000 + i * 7), CIP, 80);
		int x = pick(&a, &p), y = pick(&b, &p);

		if (!ASSERT_TRUE(x >= 0 && y >= 0, "translated"))
			goto out;
		same += x == y;
		differ += x != y;
		hits[x]++;
	}
	printf("    maglev: 400 flows, instances agree on %d; spread %d/%d/%d/%d\n", same, hits[0], hits[1], hits[2],
	       hits[3]);
	if (!ASSERT_EQ(differ, 0, "two instances pick the same backend for every flow"))
		goto out;
	for (int i = 0; i < 4; i++)
		if (!ASSERT_TRUE(hits[i] > 50, "every backend gets flows"))
			goto out;
	/* the choice is a function of the flow: forgotten (ct flushed), it is made again the same */
	ct_flush(&a);
	for (int i = 0; i < 50; i++) {
		struct tpkt p = syn(A(10, 244, 1, 1 + i % 200), (uint16_t)(20000 + i * 7), CIP, 80);

		if (!ASSERT_EQ(pick(&a, &p), pick(&b, &p), "same after ct flush"))
			goto out;
	}
out:
	if (b_open)
		tenv_close(&b);
	tenv_close(&a);
}

static const char manifests[] =
	"{\"kind\":\"List\",\"items\":["
	"{\"kind\":\"Service\",\"apiVersion\":\"v1\",\"metadata\":{\"namespace\":\"t\",\"name\":\"%s\","
	"\"annotations\":{\"kxp.io/lb-algorithm\":\"%s\"}},"
	"\"spec\":{\"clusterIP\":\"10.96.0.10\",\"clusterIPs\":[\"10.96.0.10\"],"
	"\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":80,\"targetPort\":8080}]}},"
	"{\"kind\":\"EndpointSlice\",\"apiVersion\":\"discovery.k8s.io/v1\",\"metadata\":{\"namespace\":\"t\","
	"\"name\":\"%s-1\",\"labels\":{\"kubernetes.io/service-name\":\"%s\"}},\"addressType\":\"IPv4\","
	"\"endpoints\":[{\"addresses\":[\"10.244.2.50\"]},{\"addresses\":[\"10.244.2.51\"]},"
	"{\"addresses\":[\"10.244.2.52\"]},{\"addresses\":[\"10.244.2.53\"]}],"
	"\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":8080}]}]}";

/* The model turns the annotation into the set's algorithm; the datapath acts on it. */
static int setup_annotated(struct tenv *e, const char *algo, struct kxp_desired *d)
{
	struct kxp_node_cfg nc = { .node_name = "n1", .n_node_ips = 1, .nodeport_primary = true,
				   .default_algo = KXP_ALGO_RANDOM };
	struct kxp_objects objs = {};
	struct kxp_diags dg = {};
	char text[2048];
	int err;

	nc.node_ips[0] = NODE_IP;
	nc.cluster[0] = (struct kxp_cidr4){ A(10, 244, 0, 0), A(255, 255, 0, 0) };
	nc.n_cluster = 1;
	nc.service[0] = (struct kxp_cidr4){ A(10, 96, 0, 0), A(255, 240, 0, 0) };
	nc.n_service = 1;
	snprintf(text, sizeof(text), manifests, algo, algo, algo, algo);
	memset(d, 0, sizeof(*d));
	err = kxp_objects_load_text(&objs, text, strlen(text), "test", &dg);
	if (!err)
		err = kxp_model_build(&objs, &nc, d, &dg);
	kxp_objects_free(&objs);
	if (!ASSERT_OK(err, "model") || !ASSERT_EQ(dg.n, 0, "no diagnostics") || !ASSERT_EQ(d->n_sets, 1, "one set")) {
		kxp_diags_free(&dg);
		return -1;
	}
	kxp_diags_free(&dg);
	if (tenv_open(e))
		return -1;
	tenv_dev("pod0");
	return ASSERT_OK(kxp_dp_apply(e->dp, d, NULL), "apply") ? 0 : -1;
}

KXP_TEST(select_algorithm_by_annotation)
{
	static const char *const algos[] = { "rr", "maglev", "random" };

	if (tenv_netns())
		return;
	for (int a = 0; a < 3; a++) {
		struct kxp_desired d;
		struct tenv e;
		int seq[16], distinct_same_flow = 0, seen[4] = {};
		bool ok = true;

		if (setup_annotated(&e, algos[a], &d)) {
			kxp_desired_free(&d);
			return;
		}
		/* 16 new flows in a row */
		for (int i = 0; i < 16 && ok; i++) {
			struct tpkt p = syn(POD_A, (uint16_t)(30000 + i), CIP, 80);

			seq[i] = pick(&e, &p);
			ok = ASSERT_TRUE(seq[i] >= 0, algos[a]);
		}
		/* one flow, forgotten and started again 24 times */
		for (int i = 0; i < 24 && ok; i++) {
			struct tpkt p = syn(POD_A, 40000, CIP, 80);
			int x;

			ct_flush(&e);
			x = pick(&e, &p);
			ok = ASSERT_TRUE(x >= 0, algos[a]);
			if (ok && !seen[x]++)
				distinct_same_flow++;
		}
		if (ok && a == 0) {
			/* rr: the walk visits 0,1,2,3,0,1,... from wherever it started */
			for (int i = 1; i < 16 && ok; i++)
				ok = ASSERT_EQ(seq[i], (seq[0] + i) % 4, "rr walks the backend list");
		} else if (ok && a == 1) {
			ok = ASSERT_EQ(distinct_same_flow, 1, "maglev: one flow, one backend");
		} else if (ok) {
			/* 24 independent draws all equal: probability 4^-23 */
			ok = ASSERT_TRUE(distinct_same_flow > 1, "random: one flow, several backends");
		}
		printf("    %s: first flows %d %d %d %d %d %d, same flow restarted -> %d backend(s)\n", algos[a], seq[0],
		       seq[1], seq[2], seq[3], seq[4], seq[5], distinct_same_flow);
		tenv_close(&e);
		kxp_desired_free(&d);
		if (!ok)
			return;
	}
}

static uint64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

KXP_TEST(select_affinity_sticks_then_expires)
{
	struct tenv e;
	int first, x, changed = 0;
	uint16_t sp = 10000;
	struct kxp_aff_key k = { .client = POD_A };
	struct kxp_aff_val v;
	uint64_t t0;

	if (tenv_netns() || setup4(&e, KXP_ALGO_RANDOM, 1))
		return;
	first = pick(&e, (struct tpkt[]){ syn(POD_A, sp++, CIP, 80) });
	if (!ASSERT_TRUE(first >= 0, "first connection"))
		goto out;
	/* one backend across source ports */
	for (int i = 0; i < 30; i++)
		if (!ASSERT_EQ(pick(&e, (struct tpkt[]){ syn(POD_A, sp++, CIP, 80) }), first, "sticks across ports"))
			goto out;
	k.sp_id = 0;
	{
		struct kxp_aff_key nk;
		int fd = kxp_dp_map_fd(e.dp, KXP_MAP_AFFINITY);

		if (!ASSERT_OK(bpf_map_get_next_key(fd, NULL, &nk), "affinity entry") ||
		    !ASSERT_OK(bpf_map_lookup_elem(fd, &nk, &v), "affinity value") ||
		    !ASSERT_EQ(nk.client, POD_A, "keyed by client") || !ASSERT_EQ(v.addr, be4[first], "stores the address"))
			goto out;
	}
	/* the timer restarts with each new connection: 0.6 s apart it never expires (timeout 1 s) */
	for (int i = 0; i < 4; i++) {
		usleep(600000);
		if (!ASSERT_EQ(pick(&e, (struct tpkt[]){ syn(POD_A, sp++, CIP, 80) }), first, "refreshed entry sticks"))
			goto out;
	}
	/* idle longer than the timeout: a new choice (not always another backend: try a few times) */
	t0 = ms_now();
	for (int i = 0; i < 8 && !changed; i++) {
		usleep(1200000);
		x = pick(&e, (struct tpkt[]){ syn(POD_A, sp++, CIP, 80) });
		changed = x != first;
		first = x;
	}
	printf("    affinity: new backend after the timeout (%llu ms of waiting)\n", (unsigned long long)(ms_now() - t0));
	if (!ASSERT_TRUE(changed, "a new choice after the timeout"))
		goto out;
	/* ClusterIP and NodePort of the same set share the entry */
	{
		struct tpkt p = syn(POD_A, sp++, NODE_IP, NP_SEL);
		struct tpkt_dec d;
		struct trun r;

		if (tenv_run(&e, T_TC_IN, &p, &r))
			goto out;
		tpkt_decode(r.out, r.out_len, &d);
		if (!ASSERT_EQ(d.daddr, be4[first], "NodePort follows the ClusterIP's affinity"))
			goto out;
	}
	/* the remembered backend leaves the set: ignored, a serving one is chosen and sticks */
	{
		uint32_t rest[3];
		int n = 0, y;

		for (int i = 0; i < 4; i++)
			if (i != first)
				rest[n++] = be4[i];
		tenv_set_replace(&e, 0, 3, rest, port4);
		if (tenv_apply(&e))
			goto out;
		y = pick(&e, (struct tpkt[]){ syn(POD_A, sp++, CIP, 80) });
		if (!ASSERT_TRUE(y >= 0 && y != first, "a backend that left is not used"))
			goto out;
		for (int i = 0; i < 5; i++)
			if (!ASSERT_EQ(pick(&e, (struct tpkt[]){ syn(POD_A, sp++, CIP, 80) }), y, "sticks to the new one"))
				goto out;
	}
	/* affinity off: the writer forgets the clients; the choice is free again */
	{
		int seen[4] = {}, distinct = 0;

		e.sets[0].affinity_timeout = 0;
		e.fe[0].flags &= ~KXP_SVC_F_AFFINITY;
		e.fe[1].flags &= ~KXP_SVC_F_AFFINITY;
		if (tenv_apply(&e))
			goto out;
		for (int i = 0; i < 24; i++) {
			x = pick(&e, (struct tpkt[]){ syn(POD_A, sp++, CIP, 80) });
			if (x >= 0 && !seen[x]++)
				distinct++;
		}
		if (!ASSERT_TRUE(distinct > 1, "affinity switched off takes effect"))
			goto out;
		ASSERT_TRUE(bpf_map_get_next_key(kxp_dp_map_fd(e.dp, KXP_MAP_AFFINITY), NULL, &k) != 0,
			    "affinity entries flushed");
	}
out:
	tenv_close(&e);
}

KXP_TEST(select_endpoint_removal_udp_moves_tcp_stays)
{
	struct tenv e;
	struct tpkt u = { .proto = IPPROTO_UDP, .saddr = POD_A, .daddr = CIP, .sport = 5000, .dport = 53, .payload = 20 };
	struct tpkt t = syn(POD_A, 41000, CIP, 80);
	int su, st, xu, xt, y;
	uint32_t rest[3];
	uint16_t rport[3] = { 8080, 8080, 8080 };

	if (tenv_netns() || tenv_open(&e))
		return;
	tenv_dev("pod0");
	st = tenv_set(&e, IPPROTO_TCP, 4, be4, port4);
	su = tenv_set(&e, IPPROTO_UDP, 4, be4, port4);
	tenv_fe(&e, CIP, 80, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_CLUSTERIP, 0, st);
	tenv_fe(&e, CIP, 53, IPPROTO_UDP, KXP_SCOPE_DEFAULT, KXP_FE_CLUSTERIP, 0, su);
	if (tenv_apply(&e))
		goto out;
	xu = pick(&e, &u);
	xt = pick(&e, &t);
	if (!ASSERT_TRUE(xu >= 0 && xt >= 0, "flows open"))
		goto out;
	t.tcp_flags = TH_ACK;
	/* another backend leaves: nothing moves */
	for (int i = 0, n = 0; i < 4; i++)
		if (i != (xu + 1) % 4)
			rest[n++] = be4[i];
	tenv_set_replace(&e, su, 3, rest, rport);
	if (tenv_apply(&e) || !ASSERT_EQ(pick(&e, &u), xu, "UDP flow to a serving backend stays"))
		goto out;
	/* the UDP flow's backend leaves: its next datagram goes to a serving one, and stays there */
	for (int i = 0, n = 0; i < 4; i++)
		if (i != xu && i != (xu + 1) % 4)
			rest[n++] = be4[i];
	tenv_set_replace(&e, su, 2, rest, rport);
	for (int i = 0, n = 0; i < 4; i++)
		if (i != xt)
			rest[n++] = be4[i];
	tenv_set_replace(&e, st, 3, rest, rport);
	if (tenv_apply(&e))
		goto out;
	y = pick(&e, &u);
	if (!ASSERT_TRUE(y >= 0 && y != xu && y != (xu + 1) % 4, "UDP flow moved to a serving backend") ||
	    !ASSERT_EQ(pick(&e, &u), y, "and stays there"))
		goto out;
	/* the TCP flow's backend leaves: the established flow keeps it (never re-balanced) */
	ASSERT_EQ(pick(&e, &t), xt, "TCP flow keeps its removed backend");
out:
	tenv_close(&e);
}

KXP_TEST(select_maglev_table_rebuilt_only_on_change)
{
	struct kxp_apply_stats st;
	struct tenv e;
	int s2, x;
	uint32_t inner_id;
	__u32 key;

	if (tenv_netns() || setup4(&e, KXP_ALGO_MAGLEV, 0))
		return;
	s2 = tenv_set(&e, IPPROTO_TCP, 2, be4, port4);
	e.sets[s2].algo = KXP_ALGO_MAGLEV;
	tenv_fe(&e, CIP, 81, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_CLUSTERIP, 0, s2);
	if (!ASSERT_OK(kxp_dp_apply(e.dp, &e.d, &st), "apply") || !ASSERT_EQ(st.maglev_built, 1, "the new set's table"))
		goto out;
	if (!ASSERT_OK(kxp_dp_apply(e.dp, &e.d, &st), "apply again") || !ASSERT_EQ(st.maglev_built, 0, "nothing changed") ||
	    !ASSERT_EQ(st.writes, 0, "no writes"))
		goto out;
	x = pick(&e, (struct tpkt[]){ syn(POD_A, 1234, CIP, 81) });
	tenv_set_replace(&e, s2, 3, be4, port4);
	if (!ASSERT_OK(kxp_dp_apply(e.dp, &e.d, &st), "grow set 2") || !ASSERT_EQ(st.maglev_built, 1, "only its table"))
		goto out;
	if (!ASSERT_TRUE(x >= 0 && x < 2, "flow on set 2") ||
	    !ASSERT_EQ(pick(&e, (struct tpkt[]){ syn(POD_A, 1234, CIP, 81) }), x, "established flow kept"))
		goto out;
	/* a re-opened dataplane (restart) recognises the pinned-style tables by their fingerprint */
	key = 1;
	if (!ASSERT_OK(bpf_map_lookup_elem(kxp_dp_map_fd(e.dp, KXP_MAP_MAGLEV), &key, &inner_id), "table of sp 1"))
		goto out;
	/* switching the algorithm away drops the table */
	e.sets[s2].algo = KXP_ALGO_RR;
	if (!ASSERT_OK(kxp_dp_apply(e.dp, &e.d, &st), "to rr") || !ASSERT_EQ(st.maglev_removed, 1, "table dropped"))
		goto out;
out:
	tenv_close(&e);
}

KXP_TEST(select_rr_trace_copy_does_not_advance)
{
	struct kxp_dp *tr = NULL;
	struct kxp_dp_opts o = { .instance = NULL, .trace = true };
	char inst[32], err[256];
	struct tenv e;
	int a, b, c;

	snprintf(inst, sizeof(inst), "tsel%d", (int)getpid());
	if (tenv_netns() || tenv_open_instance(&e, inst))
		return;
	tenv_dev("pod0");
	{
		int s = tenv_set(&e, IPPROTO_TCP, 4, be4, port4);

		e.sets[s].algo = KXP_ALGO_RR;
		tenv_fe(&e, CIP, 80, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_CLUSTERIP, 0, s);
	}
	if (tenv_apply(&e))
		goto out;
	o.instance = inst;
	o.errbuf = err;
	o.errbuf_len = sizeof(err);
	if (!ASSERT_OK(kxp_dp_open(&tr, &o), err))
		goto out;
	a = pick(&e, (struct tpkt[]){ syn(POD_A, 1000, CIP, 80) });
	for (int i = 0; i < 5; i++) {
		struct trun r;
		struct tpkt p = syn(POD_A, (uint16_t)(2000 + i), CIP, 80);
		uint8_t buf[TPKT_MAX];

		r.in_len = (uint32_t)tpkt_build(&p, buf);
		memcpy(r.in, buf, r.in_len);
		if (tenv_run_fd(kxp_dp_prog_tc_ingress(tr), false, r.in, r.in_len, &r))
			goto out;
	}
	b = pick(&e, (struct tpkt[]){ syn(POD_A, 1001, CIP, 80) });
	c = pick(&e, (struct tpkt[]){ syn(POD_A, 1002, CIP, 80) });
	ASSERT_EQ(b, (a + 1) % 4, "trace runs did not advance the walk");
	ASSERT_EQ(c, (a + 2) % 4, "the walk goes on");
out:
	kxp_dp_close(tr);
	tenv_close(&e);
	kxp_dp_cleanup(inst);
}
