/* pktbench: per-packet cost of kxp's XDP and TC ingress programs at 1..30,000
 * ClusterIP services, measured with BPF_PROG_TEST_RUN against empty programs
 * of the same types (the floor); maps are provisioned through the real writer.
 * Writes a JSON fragment and a markdown fragment for bench/run.sh. */
#include <getopt.h>
#include <net/if.h>
#include <unistd.h>
#include <linux/pkt_cls.h>

#define BENCH_NAME "pktbench"
#include "benchlib.h"

/* ---- address plan (host order; the README lists it; the node's own
 * addresses, CIDRs and ports are benchlib.h's) ---------------------------- */
#define NP_CIP_BASE IP4(10, 96, 0, 1)     /* ClusterIPs of the NodePort services */
#define PROBE_CIP IP4(10, 96, 0, 100)     /* the self-mapped ClusterIP probe */
#define CIP_BASE IP4(10, 96, 1, 0)        /* ClusterIP of regular service i */
#define REMOTE_BE_BASE IP4(10, 128, 1, 0) /* remote pods: backends of regular services */
#define NP_REMOTE_BE IP4(10, 130, 254, 0) /* remote pods of the NodePort services */
#define LOCAL_BE IP4(10, 131, 255, 0)     /* pods on this node (NodePort local sets) */
#define LOCAL_POD_SRC IP4(10, 131, 0, 0)  /* client pods on this node */
#define REMOTE_POD_DST IP4(10, 130, 16, 0) /* non-service destination of pod traffic */
#define NP_PORT_BASE 30000 /* NodePort of NodePort service j is 30000 + j; j = 0 is the probe */
#define N_NODEPORT 8       /* eTP=Local NodePort services besides the probe */
#define NPC_PORT_BASE 31000 /* NodePort of eTP=Cluster (masqueraded) service j is 31000 + j */
#define N_NODEPORT_CLUSTER 8

/* ---- options ------------------------------------------------------------- */
static struct {
	int reps;
	int repeat;
	int flows;
	int cpu;
	const char *json_path;
	const char *md_path;
	const char *ext_ifname;
	const char *pod_ifname;
	unsigned long n_list[16];
	int n_count;
	bool wildcard;
} opt = {
	.reps = 5,
	.repeat = 200000,
	.flows = 65536,
	.cpu = -1,
	.wildcard = true,
};

static int ext_ifindex, pod_ifindex;

/* ---- packets --------------------------------------------------------------- */
#define PKT_LEN BENCH_FRAME_LEN

struct pkt {
	uint8_t b[PKT_LEN];
};

static void pkt_build(struct pkt *p, uint32_t saddr, uint16_t sport, uint32_t daddr, uint16_t dport,
		      uint8_t tcp_flags)
{
	bench_tcp_frame(p->b, sizeof(p->b), saddr, sport, daddr, dport, tcp_flags);
}

/* ---- what is measured ------------------------------------------------------ */
enum prog_kind { PK_XDP, PK_TC };

enum mode {
	M_SINGLE, /* one established flow, `repeat` runs in one call (ct-hit path) */
	M_NEW,    /* many flows, one call per packet, ct empty: SYNs (new-flow path) */
	M_EST,    /* the same flows again right after M_NEW: ACKs (ct-hit path) */
	M_PLAIN,  /* many flows, one call per packet, for paths without state */
};

enum path_id { P_POD_CIP, P_EXT_NP_XDP, P_EXT_NP_TC, P_EXT_NPC_XDP, P_NONSVC_XDP, P_NONSVC_TC, P__COUNT };

struct path {
	const char *id;
	const char *label;
	const char *source;
	enum prog_kind prog;
	bool service; /* has a translation, so new/established differ */
	bool external; /* ingress is the external device (else pod-facing) */
	bool no_single; /* no one-flow variant: its translation is not self-mapped */
};

static const struct path paths[P__COUNT] = {
	[P_POD_CIP] = { "pod_clusterip", "pod → ClusterIP:80", "pod (cluster CIDR)", PK_TC, true, false },
	[P_EXT_NP_XDP] = { "ext_nodeport_local_xdp", "external → NodeIP:NodePort, eTP=Local",
			   "external", PK_XDP, true, true },
	[P_EXT_NP_TC] = { "ext_nodeport_local_tc", "external → NodeIP:NodePort, eTP=Local",
			  "external", PK_TC, true, true },
	[P_EXT_NPC_XDP] = { "ext_nodeport_cluster_xdp", "external → NodeIP:NodePort, eTP=Cluster (masqueraded)",
			    "external", PK_XDP, true, true, true },
	[P_NONSVC_XDP] = { "nonservice_xdp", "external → NodeIP:22 (no service)", "external", PK_XDP,
			   false, true },
	[P_NONSVC_TC] = { "nonservice_tc", "pod → remote pod:8080 (no service)", "pod (cluster CIDR)",
			  PK_TC, false, false },
};

static const char *mode_id(enum mode m)
{
	static const char *const ids[] = { "single", "new", "established", "per_packet" };
	return ids[m];
}

static const char *prog_name(enum prog_kind k)
{
	return k == PK_XDP ? "xdp" : "tc ingress";
}

/* The single flow of a path. Service paths target the self-mapped probe, whose
 * only backend is its own frontend address:port, so the in-place rewrite of
 * one run leaves a packet the next run still matches. */
static void single_packet(enum path_id pid, uint8_t flags, struct pkt *p)
{
	switch (pid) {
	case P_POD_CIP:
		pkt_build(p, LOCAL_POD_SRC + 1, 40000, PROBE_CIP, SVC_PORT, flags);
		break;
	case P_EXT_NP_XDP:
	case P_EXT_NP_TC:
		pkt_build(p, EXT_SRC + 1, 40000, NODE_IP, NP_PORT_BASE, flags);
		break;
	case P_NONSVC_XDP:
		pkt_build(p, EXT_SRC + 1, 40000, NODE_IP, 22, flags);
		break;
	default:
		pkt_build(p, LOCAL_POD_SRC + 1, 40000, REMOTE_POD_DST + 1, BE_PORT, flags);
		break;
	}
}

/* Flow f of the many-flow variant: distinct 5-tuples, destinations spread over
 * all services of the path (regular ClusterIPs, or the non-probe NodePorts). */
static void flow_packet(enum path_id pid, unsigned long n_svc, uint32_t f, uint8_t flags, struct pkt *p)
{
	uint32_t src_host = f % 32768, src_port = 20000 + f / 32768;

	switch (pid) {
	case P_POD_CIP:
		pkt_build(p, LOCAL_POD_SRC + 256 + src_host, src_port, CIP_BASE + f % n_svc, SVC_PORT,
			  flags);
		break;
	case P_EXT_NP_XDP:
	case P_EXT_NP_TC:
		pkt_build(p, EXT_SRC + 256 + src_host, src_port, NODE_IP, NP_PORT_BASE + 1 + f % N_NODEPORT,
			  flags);
		break;
	case P_EXT_NPC_XDP:
		pkt_build(p, EXT_SRC + 256 + src_host, src_port, NODE_IP, NPC_PORT_BASE + f % N_NODEPORT_CLUSTER,
			  flags);
		break;
	case P_NONSVC_XDP:
		pkt_build(p, EXT_SRC + 256 + src_host, src_port, NODE_IP, 22, flags);
		break;
	default:
		pkt_build(p, LOCAL_POD_SRC + 256 + src_host, src_port, REMOTE_POD_DST + f % 4096, BE_PORT,
			  flags);
		break;
	}
}

/* ---- desired state --------------------------------------------------------- */
/* N regular ClusterIP services with BE_PER_SVC remote backends each, the
 * self-mapped ClusterIP probe, and 1 + N_NODEPORT eTP=Local NodePort services
 * (j = 0 is the self-mapped NodePort probe), and N_NODEPORT_CLUSTER eTP=Cluster
 * NodePort services with four remote backends each (masqueraded). */
static void build_desired(struct bench_desired *st, unsigned long n)
{
	struct kxp_d_backend be[8];
	unsigned long i;
	char key[128], svc[64];

	bench_desired_init(st, 2 * n + 2 + 4 * (N_NODEPORT + 1) + 3 * N_NODEPORT_CLUSTER,
			   n + 1 + 2 * (N_NODEPORT + 1) + N_NODEPORT_CLUSTER);

	for (i = 0; i < n; i++) {
		int set;

		for (int k = 0; k < BE_PER_SVC; k++)
			be[k] = (struct kxp_d_backend){ htonl(REMOTE_BE_BASE + BE_PER_SVC * i + k), BE_PORT,
							IPPROTO_TCP, 0 };
		snprintf(svc, sizeof(svc), "bench/svc-%lu", i);
		snprintf(key, sizeof(key), "%s:http/TCP:cluster", svc);
		set = bench_add_set(st, key, be, BE_PER_SVC);
		bench_add_clusterip(st, CIP_BASE + i, set, 0, opt.wildcard, svc);
	}

	/* The ClusterIP probe: its backend is its own frontend. */
	be[0] = (struct kxp_d_backend){ htonl(PROBE_CIP), SVC_PORT, IPPROTO_TCP, 0 };
	bench_add_clusterip(st, PROBE_CIP, bench_add_set(st, "bench/probe:http/TCP:cluster", be, 1), 0,
			    opt.wildcard, "bench/probe");

	for (int j = 0; j <= N_NODEPORT; j++) {
		int local, cluster;
		uint16_t f = KXP_SVC_F_EXTERNAL | KXP_SVC_F_ETP_LOCAL;

		snprintf(svc, sizeof(svc), "bench/np-%d", j);
		if (j == 0) {
			/* The NodePort probe: its local backend is NodeIP:NodePort itself. */
			be[0] = (struct kxp_d_backend){ htonl(NODE_IP), NP_PORT_BASE, IPPROTO_TCP,
							KXP_BE_F_LOCAL };
			snprintf(key, sizeof(key), "%s:http/TCP:local", svc);
			local = bench_add_set(st, key, be, 1);
			snprintf(key, sizeof(key), "%s:http/TCP:cluster", svc);
			cluster = bench_add_set(st, key, be, 1);
		} else {
			for (int k = 0; k < 2; k++) {
				be[k] = (struct kxp_d_backend){ htonl(LOCAL_BE + 2 * j + k), BE_PORT, IPPROTO_TCP,
								KXP_BE_F_LOCAL };
				be[2 + k] = (struct kxp_d_backend){ htonl(NP_REMOTE_BE + 2 * j + k), BE_PORT,
								    IPPROTO_TCP, 0 };
			}
			snprintf(key, sizeof(key), "%s:http/TCP:local", svc);
			local = bench_add_set(st, key, be, 2);
			snprintf(key, sizeof(key), "%s:http/TCP:cluster", svc);
			cluster = bench_add_set(st, key, be, 4);
		}
		bench_add_clusterip(st, NP_CIP_BASE + j, cluster, KXP_SVC_F_ETP_LOCAL, opt.wildcard, svc);
		bench_add_fe(st, NODE_IP, NP_PORT_BASE + j, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_NODEPORT,
			     f | KXP_SVC_F_SPLIT | KXP_SVC_F_LOCAL_SET, local, svc);
		bench_add_fe(st, NODE_IP, NP_PORT_BASE + j, IPPROTO_TCP, KXP_SCOPE_INTERNAL, KXP_FE_NODEPORT, f,
			     cluster, svc);
	}
	for (int j = 0; j < N_NODEPORT_CLUSTER; j++) {
		int cluster;

		for (int k = 0; k < 4; k++)
			be[k] = (struct kxp_d_backend){ htonl(NP_REMOTE_BE + 64 + 4 * j + k), BE_PORT, IPPROTO_TCP, 0 };
		snprintf(svc, sizeof(svc), "bench/npc-%d", j);
		snprintf(key, sizeof(key), "%s:http/TCP:cluster", svc);
		cluster = bench_add_set(st, key, be, 4);
		bench_add_clusterip(st, NP_CIP_BASE + 16 + j, cluster, 0, opt.wildcard, svc);
		bench_add_fe(st, NODE_IP, NPC_PORT_BASE + j, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_NODEPORT,
			     KXP_SVC_F_EXTERNAL, cluster, svc);
	}
}

/* ---- map helpers ----------------------------------------------------------- */
static const char *retval_name(enum prog_kind k, uint32_t rv)
{
	static char buf[24];

	if (k == PK_XDP) {
		static const char *const x[] = { "XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX",
						 "XDP_REDIRECT" };
		if (rv < 5)
			return x[rv];
	} else {
		switch ((int)rv) {
		case TC_ACT_OK: return "TC_ACT_OK";
		case TC_ACT_SHOT: return "TC_ACT_SHOT";
		case TC_ACT_REDIRECT: return "TC_ACT_REDIRECT";
		case TC_ACT_UNSPEC: return "TC_ACT_UNSPEC";
		case TC_ACT_PIPE: return "TC_ACT_PIPE";
		}
	}
	snprintf(buf, sizeof(buf), "ret_%u", rv);
	return buf;
}

/* ---- one timed pass ---------------------------------------------------------- */
#define MAX_RV 8
struct pass_res {
	double ns;      /* in-kernel ns per packet (test_run's duration) */
	double wall_ns; /* wall-clock ns per call, syscall included (per-packet modes) */
	uint32_t rv[MAX_RV], rv_n[MAX_RV]; /* return values seen, with counts */
	int n_rv;
	bool changed;   /* single mode: the run rewrote the packet's IP/TCP headers */
	bool ttl_changed;
};

static void count_rv(struct pass_res *r, uint32_t rv, uint32_t n)
{
	for (int i = 0; i < r->n_rv; i++) {
		if (r->rv[i] == rv) {
			r->rv_n[i] += n;
			return;
		}
	}
	if (r->n_rv < MAX_RV) {
		r->rv[r->n_rv] = rv;
		r->rv_n[r->n_rv++] = n;
	}
}

static void set_ctx(enum path_id pid, struct bpf_test_run_opts *o, struct xdp_md *xctx, struct __sk_buff *sctx)
{
	int ifindex = paths[pid].external ? ext_ifindex : pod_ifindex;

	if (!ifindex)
		return; /* the kernel's default: loopback of this netns */
	if (paths[pid].prog == PK_XDP) {
		memset(xctx, 0, sizeof(*xctx));
		/* offsets into the test buffer; data_end must be the length, or
		 * the program sees an empty frame */
		xctx->data_end = PKT_LEN;
		xctx->ingress_ifindex = ifindex;
		o->ctx_in = xctx;
		o->ctx_size_in = sizeof(*xctx);
	} else {
		memset(sctx, 0, sizeof(*sctx));
		sctx->ifindex = ifindex;
		sctx->ingress_ifindex = ifindex;
		o->ctx_in = sctx;
		o->ctx_size_in = sizeof(*sctx);
	}
}

static int run_one(int prog_fd, enum path_id pid, const struct pkt *in, struct pkt *out, int repeat,
		   uint32_t *duration, uint32_t *retval)
{
	struct xdp_md xctx;
	struct __sk_buff sctx;
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = sizeof(*in), .data_out = out,
		    .data_size_out = sizeof(*out), .repeat = repeat);
	int err;

	set_ctx(pid, &o, &xctx, &sctx);
	err = bpf_prog_test_run_opts(prog_fd, &o);
	if (err)
		return -errno;
	*duration = o.duration;
	*retval = o.retval;
	return 0;
}

/* M_SINGLE: one SYN (untimed) opens the flow, then `repeat` ACKs of that flow
 * in one call: the ct-hit path, from the second repeat on, of a cache-hot flow. */
static void pass_single(int prog_fd, enum path_id pid, struct pass_res *r)
{
	struct pkt syn, ack, out;
	uint32_t d, rv;
	int err;

	memset(r, 0, sizeof(*r));
	single_packet(pid, TCP_SYN, &syn);
	single_packet(pid, TCP_ACK, &ack);
	if ((err = run_one(prog_fd, pid, &syn, &out, 1, &d, &rv)))
		die("test_run (%s, warm-up): %s", paths[pid].id, strerror(-err));
	if ((err = run_one(prog_fd, pid, &ack, &out, opt.repeat, &d, &rv)))
		die("test_run (%s): %s", paths[pid].id, strerror(-err));
	r->ns = d;
	count_rv(r, rv, opt.repeat);
	/* Bytes from the IP header on, TTL aside: equal means every repeat saw
	 * the packet the first one did. A TTL decrement alone changes no lookup. */
	struct pkt a = ack, b = out;
	struct iphdr *ia = (void *)(a.b + ETH_HLEN), *ib = (void *)(b.b + ETH_HLEN);

	r->ttl_changed = ia->ttl != ib->ttl;
	ia->ttl = ib->ttl = 0;
	ia->check = ib->check = 0;
	r->changed = memcmp(a.b + ETH_HLEN, b.b + ETH_HLEN, PKT_LEN - ETH_HLEN) != 0;
}

/* Per-packet modes: one call per packet (repeat=1), so no run sees another
 * run's rewrite; the kernel's duration covers the program run plus the
 * test_run timer, identical for the floor. */
static void pass_packets(int prog_fd, enum path_id pid, const struct pkt *pkts, int n, struct pass_res *r)
{
	struct pkt out;
	uint64_t sum = 0;
	uint32_t d, rv, last_rv = 0, run = 0;
	double t0, t1;

	memset(r, 0, sizeof(*r));
	t0 = now_ns();
	for (int i = 0; i < n; i++) {
		int err = run_one(prog_fd, pid, &pkts[i], &out, 1, &d, &rv);

		if (err)
			die("test_run (%s, packet %d): %s", paths[pid].id, i, strerror(-err));
		sum += d;
		if (run && rv != last_rv) {
			count_rv(r, last_rv, run);
			run = 0;
		}
		last_rv = rv;
		run++;
	}
	t1 = now_ns();
	if (run)
		count_rv(r, last_rv, run);
	r->ns = (double)sum / n;
	r->wall_ns = (t1 - t0) / n;
}

/* ---- the measurement of one point (N services) -------------------------------------- */
struct meas {
	enum path_id pid;
	enum mode mode;
	double *floor_ns, *kxp_ns, *floor_wall, *kxp_wall;
	struct pass_res last_kxp;        /* outcome of the last kxp run */
	uint64_t reasons[KXP_R_MAX];     /* reason deltas of the last kxp run */
	bool changed, ttl_changed;
};

static const char *measures(const struct meas *m)
{
	if (!paths[m->pid].service)
		return "non-service packet: classification only (no kxp state)";
	switch (m->mode) {
	case M_SINGLE: return "ct-hit (established flow), one cache-hot flow";
	case M_NEW: return "new-flow (SYN, ct empty): lookup, selection, ct create, DNAT";
	case M_EST: return "ct-hit (ACK of a flow opened by the new-flow pass)";
	default: return "";
	}
}

/* Did the datapath take the path the row is about? Judged by its own reason
 * counters: new flows count OK, established ones CT_HIT, and non-service
 * packets nothing (NOT_SERVICE is never counted). */
static bool as_intended(const struct meas *me, uint64_t n_pkts)
{
	uint64_t total = 0;

	for (int i = 0; i < KXP_R_MAX; i++)
		total += me->reasons[i];
	if (!paths[me->pid].service)
		return total == 0;
	if (me->mode == M_NEW)
		return me->reasons[KXP_R_OK] == n_pkts;
	return me->reasons[KXP_R_CT_HIT] >= n_pkts;
}

static int meas_list(struct meas *ms)
{
	int n = 0;

	for (int p = 0; p < P__COUNT; p++) {
		if (!paths[p].no_single)
			ms[n++] = (struct meas){ .pid = p, .mode = M_SINGLE };
		if (paths[p].service) {
			ms[n++] = (struct meas){ .pid = p, .mode = M_NEW };
			ms[n++] = (struct meas){ .pid = p, .mode = M_EST };
		} else {
			ms[n++] = (struct meas){ .pid = p, .mode = M_PLAIN };
		}
	}
	return n;
}

/* Fisher-Yates with a fixed seed: the same order every run, but not the
 * order the services were written in (which could favour neighbouring entries). */
static void shuffle(int n, uint32_t *order)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (int i = 0; i < n; i++)
		order[i] = i;
	for (int i = n - 1; i > 0; i--) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int j = x % (i + 1);
		uint32_t t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
}

struct floor_progs {
	int xdp, tc;
};

/* The floor: `r0 = ret; exit`, the two instructions clang emits for an empty
 * XDP or TC program. Built here rather than in a bench/ BPF object because
 * the Makefile's bench binary rule also matches .bpf.c files (bench/README.md). */
static int load_empty_prog(enum bpf_prog_type type, const char *name, int ret)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = ret },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	int fd = bpf_prog_load(type, name, "Dual BSD/GPL", insns, 2, NULL);

	if (fd < 0)
		die("loading the floor program %s: %s", name, strerror(errno));
	return fd;
}

static void load_floor(struct floor_progs *f)
{
	f->xdp = load_empty_prog(BPF_PROG_TYPE_XDP, "floor_xdp", XDP_PASS);
	f->tc = load_empty_prog(BPF_PROG_TYPE_SCHED_CLS, "floor_tc", TC_ACT_OK);
}

struct point_out {
	cJSON *json;
	double kxp_med[32], ratio_med[32];
	int n_meas;
	bool any_reason;
};

static void fmt_rv(char *buf, size_t len, enum prog_kind k, const struct pass_res *r)
{
	size_t o = 0;

	buf[0] = 0;
	for (int i = 0; i < r->n_rv && o < len; i++)
		o += snprintf(buf + o, len - o, "%s%s ×%u", i ? ", " : "", retval_name(k, r->rv[i]), r->rv_n[i]);
}

static void run_point(unsigned long n_svc, const struct floor_progs *fl, FILE *md, struct point_out *po)
{
	struct bench_desired st;
	struct meas ms[32];
	int n_meas = meas_list(ms), reps = opt.reps, nf = opt.flows;
	double *open_ms = calloc(reps, sizeof(double)), *apply_ms = calloc(reps, sizeof(double));
	double *noop_ms = calloc(reps, sizeof(double));
	struct pkt *pk_syn[P__COUNT], *pk_ack[P__COUNT];
	uint32_t *order = calloc(nf, sizeof(*order));
	struct kxp_apply_stats ast0 = { 0 };
	size_t svc_entries = 0, be_entries = 0, slot_entries = 0;
	cJSON *jp, *jcases;
	int apply_err = 0;

	if (!open_ms || !apply_ms || !noop_ms || !order)
		die("out of memory");
	build_desired(&st, n_svc);
	shuffle(nf, order);
	for (int p = 0; p < P__COUNT; p++) {
		pk_syn[p] = calloc(nf, sizeof(struct pkt));
		pk_ack[p] = calloc(nf, sizeof(struct pkt));
		if (!pk_syn[p] || !pk_ack[p])
			die("out of memory");
		for (int i = 0; i < nf; i++) {
			flow_packet(p, n_svc, order[i], TCP_SYN, &pk_syn[p][i]);
			flow_packet(p, n_svc, order[i], TCP_ACK, &pk_ack[p][i]);
		}
	}
	for (int m = 0; m < n_meas; m++) {
		ms[m].floor_ns = calloc(reps, sizeof(double));
		ms[m].kxp_ns = calloc(reps, sizeof(double));
		ms[m].floor_wall = calloc(reps, sizeof(double));
		ms[m].kxp_wall = calloc(reps, sizeof(double));
		if (!ms[m].floor_ns || !ms[m].kxp_ns || !ms[m].floor_wall || !ms[m].kxp_wall)
			die("out of memory");
	}

	for (int r = 0; r < reps; r++) {
		struct kxp_apply_stats ast = { 0 };
		struct kxp_dp *dp;
		double t0;
		int err;

		t0 = now_ns();
		dp = bench_dp_open(&st);
		open_ms[r] = (now_ns() - t0) / 1e6;
		t0 = now_ns();
		err = kxp_dp_apply(dp, &st.d, &ast);
		apply_ms[r] = (now_ns() - t0) / 1e6;
		if (err)
			apply_err = err;
		t0 = now_ns();
		kxp_dp_apply(dp, &st.d, NULL);
		noop_ms[r] = (now_ns() - t0) / 1e6;
		if (r == 0) {
			ast0 = ast;
			svc_entries = (size_t)kxp_map_count(kxp_dp_map_fd(dp, KXP_MAP_SVC));
			be_entries = (size_t)kxp_map_count(kxp_dp_map_fd(dp, KXP_MAP_BACKEND));
			slot_entries = (size_t)kxp_map_count(kxp_dp_map_fd(dp, KXP_MAP_SLOT));
		}
		progress("N=%lu rep %d/%d: open %.1f ms, apply %.1f ms%s", n_svc, r + 1, reps, open_ms[r],
			 apply_ms[r], err ? " (apply failed)" : "");

		for (int m = 0; m < n_meas; m++) {
			struct meas *me = &ms[m];
			enum path_id pid = me->pid;
			int kfd = paths[pid].prog == PK_XDP ? kxp_dp_prog_xdp(dp) : kxp_dp_prog_tc_ingress(dp);
			int ffd = paths[pid].prog == PK_XDP ? fl->xdp : fl->tc;
			uint64_t before[KXP_R_MAX], after[KXP_R_MAX];
			struct pass_res fr, kr;

			if (kfd < 0)
				die("kxp %s program not loaded", prog_name(paths[pid].prog));
			/* Alternate which of the pair runs first so slow drift cancels;
			 * M_EST always follows the kxp M_NEW pass (it needs its ct entries). */
			for (int half = 0; half < 2; half++) {
				bool kxp_turn = (half == 0) == (r % 2 == 1);

				if (!kxp_turn) {
					if (me->mode == M_SINGLE)
						pass_single(ffd, pid, &fr);
					else
						pass_packets(ffd, pid, me->mode == M_EST ? pk_ack[pid] : pk_syn[pid],
							     nf, &fr);
					continue;
				}
				if (me->mode == M_SINGLE || me->mode == M_NEW)
					flush_flows(dp);
				read_reasons(dp, before);
				if (me->mode == M_SINGLE)
					pass_single(kfd, pid, &kr);
				else
					pass_packets(kfd, pid, me->mode == M_EST ? pk_ack[pid] : pk_syn[pid], nf,
						     &kr);
				read_reasons(dp, after);
			}
			me->floor_ns[r] = fr.ns;
			me->kxp_ns[r] = kr.ns;
			me->floor_wall[r] = fr.wall_ns;
			me->kxp_wall[r] = kr.wall_ns;
			me->last_kxp = kr;
			me->changed |= kr.changed;
			me->ttl_changed |= kr.ttl_changed;
			for (int i = 0; i < KXP_R_MAX; i++) {
				me->reasons[i] = after[i] - before[i];
				if (me->reasons[i])
					po->any_reason = true;
			}
		}
		kxp_dp_close(dp);
	}

	/* JSON */
	jp = cJSON_CreateObject();
	cJSON_AddNumberToObject(jp, "services", n_svc);
	cJSON_AddNumberToObject(jp, "frontends", st.d.n_fe);
	cJSON_AddNumberToObject(jp, "sets", st.d.n_sets);
	cJSON_AddNumberToObject(jp, "svc_map_entries", svc_entries);
	cJSON_AddNumberToObject(jp, "backend_map_entries", be_entries);
	cJSON_AddNumberToObject(jp, "slot_map_entries", slot_entries);
	cJSON_AddNumberToObject(jp, "apply_error", apply_err);
	cJSON *ja = cJSON_AddObjectToObject(jp, "apply_stats");
	cJSON_AddNumberToObject(ja, "fe_added", ast0.fe_added);
	cJSON_AddNumberToObject(ja, "be_added", ast0.be_added);
	cJSON_AddNumberToObject(ja, "slots_written", ast0.slots_written);
	cJSON_AddNumberToObject(ja, "revnat_written", ast0.revnat_written);
	cJSON_AddNumberToObject(ja, "writes", ast0.writes);
	cJSON_AddNumberToObject(ja, "n_failed", ast0.n_failed);
	cJSON *jfail = cJSON_AddArrayToObject(ja, "failed");
	for (uint32_t i = 0; i < ast0.n_failed && i < 8; i++)
		cJSON_AddItemToArray(jfail, cJSON_CreateString(ast0.failed[i]));
	cJSON_AddItemToObject(jp, "open_ms", json_stat(open_ms, reps, 2));
	cJSON_AddItemToObject(jp, "apply_ms", json_stat(apply_ms, reps, 2));
	cJSON_AddItemToObject(jp, "apply_noop_ms", json_stat(noop_ms, reps, 2));
	jcases = cJSON_AddArrayToObject(jp, "cases");

	/* markdown */
	struct stat3 sa = stats(apply_ms, reps), sn = stats(noop_ms, reps), so = stats(open_ms, reps);
	fprintf(md, "\n### N = %lu ClusterIP services\n\n", n_svc);
	fprintf(md, "Provisioned through `kxp_dp_apply`: %zu frontends, %zu endpoint sets "
		    "(N services + the ClusterIP probe + %d eTP=Local and %d eTP=Cluster NodePort services); "
		    "after the first apply the maps held %zu `kxp_svc4`, %zu `kxp_backend4`, "
		    "%zu `kxp_slot` entries%s.\n\n",
		st.d.n_fe, st.d.n_sets, N_NODEPORT + 1, N_NODEPORT_CLUSTER, svc_entries, be_entries, slot_entries,
		apply_err ? " — **kxp_dp_apply returned an error**" : "");
	if (ast0.n_failed)
		fprintf(md, "**%u entries could not be written**, first: %s.\n\n", ast0.n_failed, ast0.failed[0]);
	fprintf(md, "Side figures (median, min–max over %d runs): `kxp_dp_apply` into empty maps "
		    "**%.1f ms** (%.1f–%.1f; %u map writes), no-op re-apply %.2f ms (%.2f–%.2f); "
		    "`kxp_dp_open` (load both objects, create maps) %.1f ms.\n\n",
		reps, sa.med, sa.min, sa.max, ast0.writes, sn.med, sn.min, sn.max, so.med);
	fprintf(md, "| path | program | flows | what the kxp figure measures | floor ns | kxp ns | "
		    "kxp − floor ns | kxp/floor | wall ns/call floor → kxp | kxp outcome (last run) |\n");
	fprintf(md, "|---|---|---|---|---|---|---|---|---|---|\n");

	po->n_meas = n_meas;
	for (int m = 0; m < n_meas; m++) {
		struct meas *me = &ms[m];
		const struct path *p = &paths[me->pid];
		double ratio[64], delta[64];
		char rvb[160], rsb[256], flows[64];
		cJSON *jc = cJSON_CreateObject();

		for (int r = 0; r < reps; r++) {
			ratio[r] = me->floor_ns[r] > 0 ? me->kxp_ns[r] / me->floor_ns[r] : 0;
			delta[r] = me->kxp_ns[r] - me->floor_ns[r];
		}
		struct stat3 sf = stats(me->floor_ns, reps), sk = stats(me->kxp_ns, reps);
		struct stat3 sr = stats(ratio, reps), sd = stats(delta, reps);

		po->kxp_med[m] = sk.med;
		po->ratio_med[m] = sr.med;
		fmt_rv(rvb, sizeof(rvb), p->prog, &me->last_kxp);
		fmt_reasons(rsb, sizeof(rsb), me->reasons);
		if (me->mode == M_SINGLE)
			snprintf(flows, sizeof(flows), "1, repeat %d", opt.repeat);
		else
			snprintf(flows, sizeof(flows), "%d, 1 call each", nf);

		cJSON_AddStringToObject(jc, "id", p->id);
		cJSON_AddStringToObject(jc, "path", p->label);
		cJSON_AddStringToObject(jc, "source", p->source);
		cJSON_AddStringToObject(jc, "program", p->prog == PK_XDP ? "xdp" : "tc_ingress");
		cJSON_AddStringToObject(jc, "mode", mode_id(me->mode));
		cJSON_AddStringToObject(jc, "measures", measures(me));
		bool intended = as_intended(me, me->mode == M_SINGLE ? (uint64_t)opt.repeat : (uint64_t)nf);
		cJSON_AddBoolToObject(jc, "as_intended", intended);
		cJSON_AddNumberToObject(jc, "flows", me->mode == M_SINGLE ? 1 : nf);
		cJSON_AddNumberToObject(jc, "repeat", me->mode == M_SINGLE ? opt.repeat : 1);
		cJSON_AddItemToObject(jc, "floor_ns", json_stat(me->floor_ns, reps, 1));
		cJSON_AddItemToObject(jc, "kxp_ns", json_stat(me->kxp_ns, reps, 1));
		cJSON_AddItemToObject(jc, "delta_ns", json_stat(delta, reps, 1));
		cJSON_AddItemToObject(jc, "ratio", json_stat(ratio, reps, 3));
		if (me->mode != M_SINGLE) {
			cJSON_AddItemToObject(jc, "floor_wall_ns_per_call", json_stat(me->floor_wall, reps, 0));
			cJSON_AddItemToObject(jc, "kxp_wall_ns_per_call", json_stat(me->kxp_wall, reps, 0));
		} else {
			cJSON_AddBoolToObject(jc, "rewrite_changed_packet", me->changed);
			cJSON_AddBoolToObject(jc, "rewrite_changed_ttl", me->ttl_changed);
		}
		cJSON *jrv = cJSON_AddObjectToObject(jc, "kxp_retvals");
		for (int i = 0; i < me->last_kxp.n_rv; i++)
			cJSON_AddNumberToObject(jrv, retval_name(p->prog, me->last_kxp.rv[i]), me->last_kxp.rv_n[i]);
		cJSON *jrs = cJSON_AddObjectToObject(jc, "kxp_reasons");
		for (unsigned i = 0; i < KXP_R_MAX; i++)
			if (me->reasons[i])
				cJSON_AddNumberToObject(jrs, reason_name(i), me->reasons[i]);
		cJSON_AddItemToArray(jcases, jc);

		char wall[64] = "—";
		if (me->mode != M_SINGLE)
			snprintf(wall, sizeof(wall), "%.0f → %.0f", stats(me->floor_wall, reps).med,
				 stats(me->kxp_wall, reps).med);
		fprintf(md, "| %s | %s | %s | %s%s | %.1f (%.1f–%.1f) | %.1f (%.1f–%.1f) | %.1f | %.2f (%.2f–%.2f) | %s | %s; %s%s |\n",
			p->label, prog_name(p->prog), flows, measures(me),
			me->changed ? " — **the rewrite changed the packet: repeats after the first saw a different packet**"
				    : (me->ttl_changed ? " (TTL decremented per repeat)" : ""),
			sf.med, sf.min, sf.max, sk.med, sk.min, sk.max, sd.med, sr.med, sr.min, sr.max, wall, rvb,
			rsb, intended || !po->any_reason ? "" : " — **not the path this row is about**");
	}
	po->json = jp;

	for (int m = 0; m < n_meas; m++) {
		free(ms[m].floor_ns);
		free(ms[m].kxp_ns);
		free(ms[m].floor_wall);
		free(ms[m].kxp_wall);
	}
	for (int p = 0; p < P__COUNT; p++) {
		free(pk_syn[p]);
		free(pk_ack[p]);
	}
	free(order);
	free(open_ms);
	free(apply_ms);
	free(noop_ms);
	bench_desired_free(&st);
}

/* ---- main ---------------------------------------------------------------------- */
static void usage(void)
{
	fprintf(stderr,
		"usage: pktbench [--services N[,N...]] [--reps R] [--repeat R] [--flows F] [--cpu C]\n"
		"                [--ext-if NAME] [--pod-if NAME] [--no-wildcard]\n"
		"                --json FILE --md FILE\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "services", required_argument, 0, 's' }, { "reps", required_argument, 0, 'r' },
		{ "repeat", required_argument, 0, 'R' },   { "flows", required_argument, 0, 'f' },
		{ "cpu", required_argument, 0, 'c' },      { "ext-if", required_argument, 0, 'e' },
		{ "pod-if", required_argument, 0, 'p' },   
		{ "json", required_argument, 0, 'j' },     { "md", required_argument, 0, 'm' },
		{ "no-wildcard", no_argument, 0, 'W' },    { 0 },
	};
	struct floor_progs fl;
	struct point_out po[16];
	FILE *md;
	cJSON *root, *points, *cfg;
	int c;

	parse_services("1,1000,10000,30000", opt.n_list, 16, &opt.n_count);
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's': parse_services(optarg, opt.n_list, 16, &opt.n_count); break;
		case 'r': opt.reps = atoi(optarg); break;
		case 'R': opt.repeat = atoi(optarg); break;
		case 'f': opt.flows = atoi(optarg); break;
		case 'c': opt.cpu = atoi(optarg); break;
		case 'e': opt.ext_ifname = optarg; break;
		case 'p': opt.pod_ifname = optarg; break;
		case 'j': opt.json_path = optarg; break;
		case 'm': opt.md_path = optarg; break;
		case 'W': opt.wildcard = false; break;
		default: usage();
		}
	}
	if (!opt.json_path || !opt.md_path || opt.reps < 1 || opt.reps > 64 || opt.repeat < 1 ||
	    opt.flows < 1 || opt.flows > 1 << 20)
		usage();
	if (opt.ext_ifname && !(ext_ifindex = if_nametoindex(opt.ext_ifname)))
		die("no device %s in this network namespace", opt.ext_ifname);
	if (opt.pod_ifname && !(pod_ifindex = if_nametoindex(opt.pod_ifname)))
		die("no device %s in this network namespace", opt.pod_ifname);
	bench_cpu_setup(&opt.cpu);
	load_floor(&fl);

	md = fopen(opt.md_path, "w");
	if (!md)
		die("%s: %s", opt.md_path, strerror(errno));
	fprintf(md, "## pktbench: per-packet cost of the XDP and TC ingress programs\n\n");
	fprintf(md, "BPF_PROG_TEST_RUN on CPU %d; every figure is the median (min–max) over %d runs; "
		    "kxp/floor and kxp − floor are computed per run pair (floor and kxp measured back to back) "
		    "and then summarised. \"floor\" is an empty program of the same type "
		    "(`r0 = XDP_PASS` or `TC_ACT_OK`; `exit`) fed the same packets the same way. "
		    "ns = in-kernel time per program run as test_run reports it "
		    "(`duration`; with one call per packet it includes the test_run timer, as it does for "
		    "the floor); wall ns/call = wall clock per bpf() call, syscall and skb/xdp_buff "
		    "setup included. Test devices: %s (external), %s (pod-facing).\n",
		opt.cpu, opt.reps, opt.ext_ifname ? opt.ext_ifname : "loopback",
		opt.pod_ifname ? opt.pod_ifname : "loopback");

	for (int i = 0; i < opt.n_count; i++)
		run_point(opt.n_list[i], &fl, md, &po[i]);

	/* Summary across N: how the cost scales with the number of services. */
	struct meas ms[32];
	int n_meas = meas_list(ms);
	bool any_reason = false;

	for (int i = 0; i < opt.n_count; i++)
		any_reason |= po[i].any_reason;
	fprintf(md, "\n### Scaling: kxp ns (kxp/floor), medians\n\n| path | program | variant |");
	for (int i = 0; i < opt.n_count; i++)
		fprintf(md, " N=%lu |", opt.n_list[i]);
	fprintf(md, "\n|---|---|---|");
	for (int i = 0; i < opt.n_count; i++)
		fprintf(md, "---|");
	fprintf(md, "\n");
	for (int m = 0; m < n_meas; m++) {
		fprintf(md, "| %s | %s | %s |", paths[ms[m].pid].label, prog_name(paths[ms[m].pid].prog),
			mode_id(ms[m].mode));
		for (int i = 0; i < opt.n_count; i++)
			fprintf(md, " %.1f (%.2f) |", po[i].kxp_med[m], po[i].ratio_med[m]);
		fprintf(md, "\n");
	}
	if (!any_reason)
		fprintf(md, "\n**No kxp reason counter moved in any run**: the loaded datapath did not "
			    "classify these packets (the placeholder programs, or a datapath without "
			    "`kxp_reasons` accounting). The kxp figures then measure an empty program "
			    "and sit at the floor by construction.\n");

	root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "scenario", "pktbench");
	cJSON_AddStringToObject(root, "description",
				"per-packet ns of kxp's XDP and TC ingress programs vs an empty program of "
				"the same type, BPF_PROG_TEST_RUN, maps written by kxp_dp_apply");
	cfg = cJSON_AddObjectToObject(root, "config");
	cJSON_AddNumberToObject(cfg, "reps", opt.reps);
	cJSON_AddNumberToObject(cfg, "repeat", opt.repeat);
	cJSON_AddNumberToObject(cfg, "flows", opt.flows);
	cJSON_AddNumberToObject(cfg, "cpu", opt.cpu);
	cJSON_AddNumberToObject(cfg, "packet_bytes", PKT_LEN);
	cJSON_AddBoolToObject(cfg, "wildcard_frontends", opt.wildcard);
	cJSON_AddStringToObject(cfg, "ext_if", opt.ext_ifname ? opt.ext_ifname : "lo");
	cJSON_AddStringToObject(cfg, "pod_if", opt.pod_ifname ? opt.pod_ifname : "lo");
	cJSON_AddBoolToObject(cfg, "datapath_recorded_reasons", any_reason);
	points = cJSON_AddArrayToObject(root, "points");
	for (int i = 0; i < opt.n_count; i++)
		cJSON_AddItemToArray(points, po[i].json);

	bench_write_results(root, opt.json_path, md, opt.md_path);
	close(fl.xdp);
	close(fl.tc);
	return 0;
}
