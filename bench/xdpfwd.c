/* xdpfwd: XDP forwarding rate of kxp's XDP program with live frames
 * (BPF_PROG_TEST_RUN + BPF_F_TEST_XDP_LIVE_FRAMES: XDP_TX and XDP_REDIRECT are
 * really performed into veths), external -> NodePort eTP=Cluster with remote
 * backends (DNAT + masquerade), against floor programs run the same way.
 * Maps are written by the real writer (kxp_dp_apply). Must run inside the
 * namespace bench/scenarios/60-xdpfwd.sh builds. Writes a JSON and a markdown
 * fragment for bench/run.sh. */
#include <getopt.h>
#include <net/if.h>
#include <unistd.h>
#include <linux/if_link.h>

#define BENCH_NAME "xdpfwd"
#include "benchlib.h"
#include "xdpfwd.h"

/* ---- address plan (host order; bench/README.md lists it; the node's own
 * addresses, CIDRs and ports are benchlib.h's; NODE_IP is on ext0) --------- */
#define CIP_BASE IP4(10, 96, 1, 0)        /* filler ClusterIP i */
#define FILL_BE_BASE IP4(10, 128, 1, 0)   /* filler backends: 3 per service */
#define TX_BE_NET IP4(10, 131, 200, 0)    /* routed back out of ext0: XDP_TX */
#define RD_BE_NET IP4(10, 130, 200, 0)    /* routed out of fwd0: XDP_REDIRECT */
#define BE_MASK IP4(255, 255, 255, 0)
#define TX_PORT 30100
#define RD_PORT 30101

static struct {
	int reps;
	long repeat;
	long pass_repeat;
	int flows;
	int batch;
	int cpu;
	const char *obj_path;
	const char *json_path, *md_path;
	const char *ext_if, *fwd_if, *ext_peer, *fwd_peer;
	unsigned long n_list[8];
	int n_count;
} opt = {
	.reps = 5,
	.repeat = 4000000,
	.pass_repeat = 1000000,
	.flows = 4096,
	.batch = 64,
	.cpu = -1,
	.ext_if = "ext0",
	.fwd_if = "fwd0",
	.ext_peer = "ext0p",
	.fwd_peer = "fwd0p",
};

static int ext_ifindex, fwd_ifindex, ext_peer_ifindex, fwd_peer_ifindex;

/* Flow f of a path: distinct external clients toward the path's NodePort. */
static void flow_frame(uint16_t np, uint32_t f, uint8_t flags, struct xdpfwd_frame *fr)
{
	bench_tcp_frame(fr->b, sizeof(fr->b), EXT_SRC + 256 + f % 32768, 20000 + f / 32768, NODE_IP, np, flags);
}

/* ---- desired state ------------------------------------------------------------- */
/* An eTP=Cluster NodePort service: DEFAULT entry on the node address with the
 * cluster-wide set of remote backends (every external client is masqueraded). */
static void add_nodeport(struct bench_desired *st, const char *svc, uint32_t cip, uint16_t np, uint32_t be_net)
{
	struct kxp_d_backend be[BE_PER_SVC];
	char key[128];
	int set;

	for (int k = 0; k < BE_PER_SVC; k++)
		be[k] = (struct kxp_d_backend){ htonl(be_net + 1 + k), BE_PORT, IPPROTO_TCP, 0 };
	snprintf(key, sizeof(key), "%s:http/TCP:cluster", svc);
	set = bench_add_set(st, key, be, BE_PER_SVC);
	bench_add_clusterip(st, cip, set, 0, true, svc);
	bench_add_fe(st, NODE_IP, np, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_NODEPORT, KXP_SVC_F_EXTERNAL, set, svc);
}

static void build_state(struct bench_desired *st, unsigned long n)
{
	struct kxp_d_backend be[BE_PER_SVC];
	char key[128], svc[64];

	bench_desired_init(st, 2 * n + 8, n + 2);
	add_nodeport(st, "bench/np-tx", IP4(10, 96, 0, 10), TX_PORT, TX_BE_NET);
	add_nodeport(st, "bench/np-redirect", IP4(10, 96, 0, 11), RD_PORT, RD_BE_NET);
	for (unsigned long i = 0; i < n; i++) {
		for (int k = 0; k < BE_PER_SVC; k++)
			be[k] = (struct kxp_d_backend){ htonl(FILL_BE_BASE + BE_PER_SVC * i + k), BE_PORT,
							IPPROTO_TCP, 0 };
		snprintf(svc, sizeof(svc), "bench/svc-%lu", i);
		snprintf(key, sizeof(key), "%s:http/TCP:cluster", svc);
		bench_add_clusterip(st, CIP_BASE + i, bench_add_set(st, key, be, BE_PER_SVC), 0, true, svc);
	}
	st->d.cfg.snat_addr = htonl(NODE_IP); /* as the model writes it: the primary address */
}

/* ---- the floor and the sink --------------------------------------------------------- */
struct fwd_obj {
	struct bpf_object *obj;
	int tx, pass, redirect, sink;
	int state_fd, frames_fd;
};

static int prog_fd(struct bpf_object *obj, const char *name)
{
	struct bpf_program *p = bpf_object__find_program_by_name(obj, name);

	if (!p)
		die("%s: no program %s", opt.obj_path, name);
	return bpf_program__fd(p);
}

static void load_fwd_obj(struct fwd_obj *o)
{
	struct bpf_map *ro, *m;
	const void *init;
	size_t sz = 0;
	uint8_t *buf;
	int err;

	o->obj = bpf_object__open_file(opt.obj_path, NULL);
	if (!o->obj)
		die("opening %s: %s", opt.obj_path, strerror(errno));
	ro = NULL;
	bpf_object__for_each_map(m, o->obj)
		if (strstr(bpf_map__name(m), ".rodata"))
			ro = m;
	init = ro ? bpf_map__initial_value(ro, &sz) : NULL;
	if (!init || sz < sizeof(uint32_t))
		die("%s: no .rodata for redirect_ifindex", opt.obj_path);
	buf = malloc(sz);
	if (!buf)
		die("out of memory");
	memcpy(buf, init, sz);
	memcpy(buf, &fwd_ifindex, sizeof(uint32_t)); /* redirect_ifindex: the only constant there */
	if ((err = bpf_map__set_initial_value(ro, buf, sz)))
		die("setting redirect_ifindex: %s", strerror(-err));
	free(buf);
	if ((err = bpf_object__load(o->obj)))
		die("loading %s: %s", opt.obj_path, strerror(-err));
	o->tx = prog_fd(o->obj, "floor_tx");
	o->pass = prog_fd(o->obj, "floor_pass");
	o->redirect = prog_fd(o->obj, "floor_redirect");
	o->sink = prog_fd(o->obj, "xdpfwd_sink");
	o->state_fd = bpf_object__find_map_fd_by_name(o->obj, "xdpfwd_state");
	o->frames_fd = bpf_object__find_map_fd_by_name(o->obj, "xdpfwd_frames");
	if (o->state_fd < 0 || o->frames_fd < 0)
		die("%s: sink maps missing", opt.obj_path);
}

static bool sink_attached;

static void detach_sinks(void)
{
	if (!sink_attached)
		return;
	bpf_xdp_detach(ext_peer_ifindex, XDP_FLAGS_DRV_MODE, NULL);
	bpf_xdp_detach(fwd_peer_ifindex, XDP_FLAGS_DRV_MODE, NULL);
}

/* The receiving ends: a veth accepts XDP frames only when its peer runs an
 * XDP program (MACHINE-NOTES.md), native mode. */
static void attach_sinks(const struct fwd_obj *o)
{
	int err;

	if ((err = bpf_xdp_attach(ext_peer_ifindex, o->sink, XDP_FLAGS_DRV_MODE, NULL)))
		die("attaching the sink to %s: %s", opt.ext_peer, strerror(-err));
	sink_attached = true;
	atexit(detach_sinks);
	if ((err = bpf_xdp_attach(fwd_peer_ifindex, o->sink, XDP_FLAGS_DRV_MODE, NULL)))
		die("attaching the sink to %s: %s", opt.fwd_peer, strerror(-err));
}

/* Prepare the sink for one run: the frames it restores (flow i's frame at
 * index i) and what it classifies as untranslated / translated. */
static void sink_setup(const struct fwd_obj *o, const struct xdpfwd_frame *frames, int nf, uint32_t be_net,
		       bool restore)
{
	struct xdpfwd_state s = {
		.flow_mask = (uint64_t)nf - 1,
		.restore = restore,
		.orig_daddr = htonl(NODE_IP),
		.xlate_saddr = htonl(NODE_IP),
		.xlate_net = htonl(be_net),
		.xlate_mask = htonl(BE_MASK),
	};
	uint32_t zero = 0;

	for (uint32_t i = 0; i < (uint32_t)nf; i++)
		if (bpf_map_update_elem(o->frames_fd, &i, &frames[i], BPF_ANY))
			die("writing sink frame %u: %s", i, strerror(errno));
	if (bpf_map_update_elem(o->state_fd, &zero, &s, BPF_ANY))
		die("writing sink state: %s", strerror(errno));
}

static void sink_read(const struct fwd_obj *o, struct xdpfwd_state *s)
{
	uint32_t zero = 0;

	if (bpf_map_lookup_elem(o->state_fd, &zero, s))
		die("reading sink state: %s", strerror(errno));
}

/* ---- runs ------------------------------------------------------------------------------ */
struct run_res {
	double ns;        /* in-kernel ns per frame (test_run duration) */
	double wall_mpps; /* frames / wall-clock time of the call */
	uint64_t reasons[KXP_R_MAX];
	struct xdpfwd_state sink;
};

/* One live-frames run: `repeat` frames from one input frame, each really
 * sent where the program says. */
static void run_live(int fd, const struct xdpfwd_frame *in, long repeat, struct run_res *r)
{
	struct xdp_md ctx = { .data_end = XDPFWD_FRAME_LEN, .ingress_ifindex = ext_ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in->b, .data_size_in = XDPFWD_FRAME_LEN, .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = repeat, .batch_size = opt.batch,
		    .flags = BPF_F_TEST_XDP_LIVE_FRAMES);
	double t0 = now_ns(), t1;

	if (bpf_prog_test_run_opts(fd, &o))
		die("live test_run: %s", strerror(errno));
	t1 = now_ns();
	r->ns = o.duration;
	r->wall_mpps = repeat / ((t1 - t0) / 1e3);
}

/* Does this kernel run XDP programs with live frames? Some builds refuse
 * (EPERM seen on a 6.18 build whose other test_run modes work): the scenario
 * then says so instead of failing. One zero frame through the XDP_PASS
 * floor; the stack drops it. Returns 0 or the errno. */
static int live_frames_errno(const struct fwd_obj *fo)
{
	uint8_t b[XDPFWD_FRAME_LEN] = { 0 };
	struct xdp_md ctx = { .data_end = XDPFWD_FRAME_LEN, .ingress_ifindex = ext_ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = b, .data_size_in = sizeof(b), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1, .flags = BPF_F_TEST_XDP_LIVE_FRAMES);

	return bpf_prog_test_run_opts(fo->pass, &o) ? errno : 0;
}

/* Open the flows kxp will forward: one SYN each through the same program
 * (plain test_run, nothing sent): conntrack and SNAT entries as a real
 * connection's first packet leaves them. Returns how many counted OK. */
static uint64_t open_flows(struct kxp_dp *dp, uint16_t np, int nf)
{
	int fd = kxp_dp_prog_xdp(dp);
	uint64_t before[KXP_R_MAX], after[KXP_R_MAX];
	struct xdpfwd_frame syn, out;

	flush_flows(dp);
	read_reasons(dp, before);
	for (int f = 0; f < nf; f++) {
		struct xdp_md ctx = { .data_end = XDPFWD_FRAME_LEN, .ingress_ifindex = ext_ifindex };
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = syn.b, .data_size_in = XDPFWD_FRAME_LEN,
			    .data_out = out.b, .data_size_out = sizeof(out.b), .ctx_in = &ctx,
			    .ctx_size_in = sizeof(ctx), .repeat = 1);

		flow_frame(np, f, TCP_SYN, &syn);
		if (bpf_prog_test_run_opts(fd, &o))
			die("test_run (SYN): %s", strerror(errno));
	}
	read_reasons(dp, after);
	return after[KXP_R_OK] - before[KXP_R_OK];
}

/* ---- what is measured ---------------------------------------------------------------------- */
enum path { PATH_TX, PATH_REDIRECT };

struct pcase {
	enum path path;
	int flows;
	/* per rep */
	double *floor_ns, *kxp_ns, *floor_wall, *kxp_wall;
	/* last kxp run */
	uint64_t reasons[KXP_R_MAX];
	struct xdpfwd_state sink_kxp, sink_floor;
	uint64_t opened;
	bool ok; /* every run took the intended path */
};

static const char *path_id(enum path p)
{
	return p == PATH_TX ? "tx" : "redirect";
}

static const char *path_label(enum path p)
{
	return p == PATH_TX ? "ext → NodePort eTP=Cluster, backend back out of ext0 (XDP_TX)"
			    : "ext → NodePort eTP=Cluster, backend behind fwd0 (XDP_REDIRECT)";
}

static cJSON *json_sink(const struct xdpfwd_state *s)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddNumberToObject(o, "received", s->total);
	cJSON_AddNumberToObject(o, "untranslated", s->orig);
	cJSON_AddNumberToObject(o, "translated", s->xlated);
	cJSON_AddNumberToObject(o, "other", s->other);
	return o;
}

static cJSON *json_reasons(const uint64_t *r)
{
	cJSON *o = cJSON_CreateObject();

	for (unsigned i = 0; i < KXP_R_MAX; i++)
		if (r[i])
			cJSON_AddNumberToObject(o, reason_name(i), r[i]);
	return o;
}

/* Run one case (floor and kxp, in the order the rep asks) and record it. */
static void run_case(struct kxp_dp *dp, const struct fwd_obj *fo, struct pcase *c, int rep, bool kxp_first)
{
	uint16_t np = c->path == PATH_TX ? TX_PORT : RD_PORT;
	uint32_t be_net = c->path == PATH_TX ? TX_BE_NET : RD_BE_NET;
	int floor_fd = c->path == PATH_TX ? fo->tx : fo->redirect;
	struct xdpfwd_frame *frames = calloc(c->flows, sizeof(*frames));
	struct run_res fr = { 0 }, kr = { 0 };
	uint64_t before[KXP_R_MAX];

	if (!frames)
		die("out of memory");
	for (int f = 0; f < c->flows; f++)
		flow_frame(np, f, TCP_ACK, &frames[f]);
	for (int half = 0; half < 2; half++) {
		if ((half == 0) == kxp_first) {
			c->opened = open_flows(dp, np, c->flows);
			sink_setup(fo, frames, c->flows, be_net, true);
			read_reasons(dp, before);
			run_live(kxp_dp_prog_xdp(dp), &frames[0], opt.repeat, &kr);
			read_reasons(dp, kr.reasons);
			for (int i = 0; i < KXP_R_MAX; i++)
				kr.reasons[i] -= before[i];
			sink_read(fo, &kr.sink);
		} else {
			sink_setup(fo, frames, c->flows, be_net, true);
			run_live(floor_fd, &frames[0], opt.repeat, &fr);
			sink_read(fo, &fr.sink);
		}
	}
	c->floor_ns[rep] = fr.ns;
	c->kxp_ns[rep] = kr.ns;
	c->floor_wall[rep] = fr.wall_mpps;
	c->kxp_wall[rep] = kr.wall_mpps;
	memcpy(c->reasons, kr.reasons, sizeof(c->reasons));
	c->sink_kxp = kr.sink;
	c->sink_floor = fr.sink;
	/* The path this case is about: every frame an established flow (CT_HIT)
	 * that left translated, and every floor frame left untouched. */
	if (kr.reasons[KXP_R_CT_HIT] != (uint64_t)opt.repeat || kr.sink.xlated != (uint64_t)opt.repeat ||
	    fr.sink.orig != (uint64_t)opt.repeat || c->opened != (uint64_t)c->flows)
		c->ok = false;
	free(frames);
}

/* The page-reuse check: kxp's XDP_TX path with the sink NOT restoring. If the
 * kernel re-initialised every frame, every run would count CT_HIT and reach
 * the sink translated; it does not (see xdpfwd.bpf.c). */
static cJSON *page_reuse_check(struct kxp_dp *dp, const struct fwd_obj *fo, FILE *md)
{
	struct xdpfwd_frame fr;
	struct run_res r = { 0 };
	uint64_t before[KXP_R_MAX];
	long repeat = 100000;
	char rs[256];
	cJSON *o = cJSON_CreateObject();

	flow_frame(TX_PORT, 0, TCP_ACK, &fr);
	open_flows(dp, TX_PORT, 1);
	sink_setup(fo, &fr, 1, TX_BE_NET, false);
	read_reasons(dp, before);
	run_live(kxp_dp_prog_xdp(dp), &fr, repeat, &r);
	read_reasons(dp, r.reasons);
	for (int i = 0; i < KXP_R_MAX; i++)
		r.reasons[i] -= before[i];
	sink_read(fo, &r.sink);
	fmt_reasons(rs, sizeof(rs), r.reasons);
	cJSON_AddNumberToObject(o, "frames", repeat);
	cJSON_AddItemToObject(o, "kxp_reasons", json_reasons(r.reasons));
	cJSON_AddItemToObject(o, "sink", json_sink(&r.sink));
	cJSON_AddBoolToObject(o, "kernel_reinitialises_frames", r.reasons[KXP_R_CT_HIT] == (uint64_t)repeat);
	fprintf(md, "**Page-reuse check** (the sink not restoring, kxp XDP_TX path, one flow, %ld frames): "
		    "kxp counted %s; the sink received %llu frames (%llu translated). ",
		repeat, rs, (unsigned long long)r.sink.total, (unsigned long long)r.sink.xlated);
	if (r.reasons[KXP_R_CT_HIT] == (uint64_t)repeat)
		fprintf(md, "Every frame arrived as sent: this kernel re-initialises recycled pages.\n\n");
	else
		fprintf(md, "Only frames in fresh pages arrived as sent: a recycled page still holds kxp's "
			    "translated frame, which kxp then sees as no service and passes to the stack "
			    "(no reason counted, nothing reaches the sink), so the runs below restore "
			    "each frame in the sink.\n\n");
	return o;
}

/* ---- one point -------------------------------------------------------------------------------- */
static cJSON *run_point(unsigned long n, const struct fwd_obj *fo, FILE *md, bool first_point, double *summary)
{
	struct pcase cases[4] = {
		{ .path = PATH_TX, .flows = 1 },
		{ .path = PATH_TX, .flows = opt.flows },
		{ .path = PATH_REDIRECT, .flows = 1 },
		{ .path = PATH_REDIRECT, .flows = opt.flows },
	};
	int nc = 4, reps = opt.reps;
	double *pass_ns = calloc(reps, sizeof(double)), *pass_wall = calloc(reps, sizeof(double));
	double *apply_ms = calloc(reps, sizeof(double));
	struct xdpfwd_state pass_sink = { 0 };
	struct kxp_apply_stats ast0 = { 0 };
	struct bench_desired st;
	cJSON *jp = cJSON_CreateObject(), *jc;

	if (!pass_ns || !pass_wall || !apply_ms)
		die("out of memory");
	build_state(&st, n);
	for (int c = 0; c < nc; c++) {
		cases[c].floor_ns = calloc(reps, sizeof(double));
		cases[c].kxp_ns = calloc(reps, sizeof(double));
		cases[c].floor_wall = calloc(reps, sizeof(double));
		cases[c].kxp_wall = calloc(reps, sizeof(double));
		cases[c].ok = true;
		if (!cases[c].floor_ns || !cases[c].kxp_ns || !cases[c].floor_wall || !cases[c].kxp_wall)
			die("out of memory");
	}
	cJSON_AddNumberToObject(jp, "services", n);
	for (int r = 0; r < reps; r++) {
		struct kxp_apply_stats ast = { 0 };
		struct kxp_dp *dp = bench_dp_open(&st);
		double t0;
		int err;

		t0 = now_ns();
		err = kxp_dp_apply(dp, &st.d, &ast);
		apply_ms[r] = (now_ns() - t0) / 1e6;
		if (err)
			die("kxp_dp_apply: %s (%u entries failed%s%s)", strerror(-err), ast.n_failed,
			    ast.n_failed ? ", first: " : "", ast.n_failed ? ast.failed[0] : "");
		if (r == 0)
			ast0 = ast;
		if (r == 0 && first_point)
			cJSON_AddItemToObject(jp, "page_reuse_check", page_reuse_check(dp, fo, md));
		for (int k = 0; k < nc; k++) {
			/* alternate the case order and, per case, which of the pair runs first */
			int c = r % 2 ? nc - 1 - k : k;

			run_case(dp, fo, &cases[c], r, (r + k) % 2 == 0);
			progress("N=%lu rep %d/%d %s, %d flow(s): floor %.1f ns, kxp %.1f ns%s", n, r + 1, reps,
				 path_id(cases[c].path), cases[c].flows, cases[c].floor_ns[r], cases[c].kxp_ns[r],
				 cases[c].ok ? "" : " (not the intended path)");
		}
		/* XDP_PASS floor: the same frame handed to the stack (a reference) */
		{
			struct xdpfwd_frame f;
			struct run_res pr = { 0 };

			flow_frame(TX_PORT, 0, TCP_ACK, &f);
			sink_setup(fo, &f, 1, TX_BE_NET, true);
			run_live(fo->pass, &f, opt.pass_repeat, &pr);
			sink_read(fo, &pass_sink);
			pass_ns[r] = pr.ns;
			pass_wall[r] = pr.wall_mpps;
		}
		kxp_dp_close(dp);
	}

	struct stat3 sa = stats(apply_ms, reps), sp = stats(pass_ns, reps);

	cJSON_AddNumberToObject(jp, "frontends", st.d.n_fe);
	cJSON_AddNumberToObject(jp, "map_writes", ast0.writes);
	cJSON_AddItemToObject(jp, "apply_ms", json_stat(apply_ms, reps, 2));
	fprintf(md, "\n### N = %lu ClusterIP services (+ the 2 measured NodePort services)\n\n", n);
	fprintf(md, "Provisioned by `kxp_dp_apply` (%zu frontends, %u map writes, %.1f ms). "
		    "Median (min–max) over %d runs; ratio and Δ per run pair.\n\n",
		st.d.n_fe, ast0.writes, sa.med, reps);
	fprintf(md, "| path | flows | floor ns/frame | kxp ns/frame | kxp − floor ns | kxp/floor | floor Mpps | "
		    "kxp Mpps | wall Mpps floor → kxp | what ran (last kxp run) |\n"
		    "|---|---|---|---|---|---|---|---|---|---|\n");
	jc = cJSON_AddArrayToObject(jp, "cases");
	for (int c = 0; c < nc; c++) {
		struct pcase *pc = &cases[c];
		double ratio[64], delta[64], fm[64], km[64];
		char rs[256];
		cJSON *o = cJSON_CreateObject();

		for (int r = 0; r < reps; r++) {
			ratio[r] = pc->kxp_ns[r] / pc->floor_ns[r];
			delta[r] = pc->kxp_ns[r] - pc->floor_ns[r];
			fm[r] = 1e3 / pc->floor_ns[r];
			km[r] = 1e3 / pc->kxp_ns[r];
		}
		struct stat3 sf = stats(pc->floor_ns, reps), sk = stats(pc->kxp_ns, reps), sr = stats(ratio, reps);
		struct stat3 sd = stats(delta, reps), sfm = stats(fm, reps), skm = stats(km, reps);

		fmt_reasons(rs, sizeof(rs), pc->reasons);
		cJSON_AddStringToObject(o, "path", path_id(pc->path));
		cJSON_AddStringToObject(o, "label", path_label(pc->path));
		cJSON_AddNumberToObject(o, "flows", pc->flows);
		cJSON_AddNumberToObject(o, "frames_per_run", opt.repeat);
		cJSON_AddItemToObject(o, "floor_ns", json_stat(pc->floor_ns, reps, 1));
		cJSON_AddItemToObject(o, "kxp_ns", json_stat(pc->kxp_ns, reps, 1));
		cJSON_AddItemToObject(o, "delta_ns", json_stat(delta, reps, 1));
		cJSON_AddItemToObject(o, "ratio", json_stat(ratio, reps, 3));
		cJSON_AddItemToObject(o, "floor_mpps", json_stat(fm, reps, 3));
		cJSON_AddItemToObject(o, "kxp_mpps", json_stat(km, reps, 3));
		cJSON_AddItemToObject(o, "floor_wall_mpps", json_stat(pc->floor_wall, reps, 3));
		cJSON_AddItemToObject(o, "kxp_wall_mpps", json_stat(pc->kxp_wall, reps, 3));
		cJSON_AddNumberToObject(o, "flows_opened", pc->opened);
		cJSON_AddItemToObject(o, "kxp_reasons", json_reasons(pc->reasons));
		cJSON_AddItemToObject(o, "sink_kxp", json_sink(&pc->sink_kxp));
		cJSON_AddItemToObject(o, "sink_floor", json_sink(&pc->sink_floor));
		cJSON_AddBoolToObject(o, "as_intended", pc->ok);
		cJSON_AddItemToArray(jc, o);
		fprintf(md, "| %s | %d | %.1f (%.1f–%.1f) | %.1f (%.1f–%.1f) | %.1f (%.1f–%.1f) | %.2f (%.2f–%.2f) | "
			    "%.2f | %.2f | %.2f → %.2f | %s; sink: %llu translated of %llu%s |\n",
			path_label(pc->path), pc->flows, sf.med, sf.min, sf.max, sk.med, sk.min, sk.max, sd.med,
			sd.min, sd.max, sr.med, sr.min, sr.max, sfm.med, skm.med, stats(pc->floor_wall, reps).med,
			stats(pc->kxp_wall, reps).med, rs, (unsigned long long)pc->sink_kxp.xlated,
			(unsigned long long)pc->sink_kxp.total,
			pc->ok ? "" : " — **not the path this row is about**");
		summary[c * 2] = sk.med;
		summary[c * 2 + 1] = sd.med;
	}
	cJSON *jpass = cJSON_AddObjectToObject(jp, "floor_pass");
	cJSON_AddNumberToObject(jpass, "frames_per_run", opt.pass_repeat);
	cJSON_AddItemToObject(jpass, "ns", json_stat(pass_ns, reps, 1));
	cJSON_AddItemToObject(jpass, "wall_mpps", json_stat(pass_wall, reps, 3));
	cJSON_AddItemToObject(jpass, "sink", json_sink(&pass_sink));
	fprintf(md, "\nReference, `XDP_PASS` floor (the same frame handed to the stack, which answers "
		    "each ACK to the closed port with a RST out of ext0; %ld frames per run): "
		    "%.1f ns/frame (%.1f–%.1f), %.2f Mpps; the sink saw %llu of the stack's answers.\n",
		opt.pass_repeat, sp.med, sp.min, sp.max, 1e3 / sp.med, (unsigned long long)pass_sink.total);
	summary[8] = sp.med;

	for (int c = 0; c < nc; c++) {
		free(cases[c].floor_ns);
		free(cases[c].kxp_ns);
		free(cases[c].floor_wall);
		free(cases[c].kxp_wall);
	}
	free(pass_ns);
	free(pass_wall);
	free(apply_ms);
	bench_desired_free(&st);
	return jp;
}

/* ---- main --------------------------------------------------------------------------------------- */
static void usage(void)
{
	fprintf(stderr, "usage: xdpfwd --obj xdpfwd.bpf.o --json FILE --md FILE [--services N[,N...]] [--reps R]\n"
			"              [--repeat FRAMES] [--pass-repeat FRAMES] [--flows F (power of 2)]\n"
			"              [--batch B] [--cpu C] [--ext-if D] [--fwd-if D] [--ext-peer D] [--fwd-peer D]\n");
	exit(2);
}

static int ifindex_of(const char *name)
{
	int i = if_nametoindex(name);

	if (!i)
		die("no device %s in this network namespace", name);
	return i;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "services", required_argument, 0, 's' }, { "reps", required_argument, 0, 'r' },
		{ "repeat", required_argument, 0, 'R' },   { "pass-repeat", required_argument, 0, 'P' },
		{ "flows", required_argument, 0, 'f' },    { "batch", required_argument, 0, 'b' },
		{ "cpu", required_argument, 0, 'c' },      { "obj", required_argument, 0, 'o' },
		{ "json", required_argument, 0, 'j' },     { "md", required_argument, 0, 'm' },
		{ "ext-if", required_argument, 0, 'e' },   { "fwd-if", required_argument, 0, 'F' },
		{ "ext-peer", required_argument, 0, 'E' }, { "fwd-peer", required_argument, 0, 'G' },
		{ 0 },
	};
	double summary[8][9];
	struct fwd_obj fo;
	cJSON *root, *cfg, *points;
	FILE *md;
	int c;

	parse_services("1,10000", opt.n_list, 8, &opt.n_count);
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's': parse_services(optarg, opt.n_list, 8, &opt.n_count); break;
		case 'r': opt.reps = atoi(optarg); break;
		case 'R': opt.repeat = atol(optarg); break;
		case 'P': opt.pass_repeat = atol(optarg); break;
		case 'f': opt.flows = atoi(optarg); break;
		case 'b': opt.batch = atoi(optarg); break;
		case 'c': opt.cpu = atoi(optarg); break;
		case 'o': opt.obj_path = optarg; break;
		case 'j': opt.json_path = optarg; break;
		case 'm': opt.md_path = optarg; break;
		case 'e': opt.ext_if = optarg; break;
		case 'F': opt.fwd_if = optarg; break;
		case 'E': opt.ext_peer = optarg; break;
		case 'G': opt.fwd_peer = optarg; break;
		default: usage();
		}
	}
	if (!opt.obj_path || !opt.json_path || !opt.md_path || opt.reps < 1 || opt.reps > 64 || opt.repeat < 1 ||
	    opt.repeat > 0xffffffffL || opt.pass_repeat < 1 || opt.pass_repeat > 0xffffffffL || opt.flows < 1 ||
	    opt.flows > XDPFWD_MAX_FLOWS || (opt.flows & (opt.flows - 1)) || opt.batch < 1 || opt.batch > 256)
		usage();
	ext_ifindex = ifindex_of(opt.ext_if);
	fwd_ifindex = ifindex_of(opt.fwd_if);
	ext_peer_ifindex = ifindex_of(opt.ext_peer);
	fwd_peer_ifindex = ifindex_of(opt.fwd_peer);
	bench_cpu_setup(&opt.cpu);
	load_fwd_obj(&fo);
	attach_sinks(&fo);

	md = fopen(opt.md_path, "w");
	if (!md)
		die("%s: %s", opt.md_path, strerror(errno));
	fprintf(md, "## xdpfwd: XDP forwarding rate with live frames\n\n");
	root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "scenario", "xdpfwd");
	int lerr = live_frames_errno(&fo);
	if (lerr) {
		char why[160];

		snprintf(why, sizeof(why), "this kernel refuses BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES (%s)",
			 strerror(lerr));
		cJSON_AddStringToObject(root, "skipped", why);
		fprintf(md, "Skipped: %s.\n", why);
		bench_write_results(root, opt.json_path, md, opt.md_path);
		bpf_object__close(fo.obj);
		return 0;
	}
	fprintf(md, "BPF_PROG_TEST_RUN with `BPF_F_TEST_XDP_LIVE_FRAMES` on CPU %d: %ld frames per run in "
		    "batches of %d, each really sent where the program says — `XDP_TX` out of %s, "
		    "`XDP_REDIRECT` into %s — and received by an XDP sink on the veth peers (%s, %s) that "
		    "counts and drops it. kxp's XDP program forwards established flows of an eTP=Cluster "
		    "NodePort service (external client, remote backends: DNAT + masquerade to the node "
		    "address, FIB lookup, MAC rewrite); its flows are opened first by one SYN each "
		    "(plain test_run). The floor is a program returning `XDP_TX` (or `bpf_redirect()` to "
		    "%s) fed the same frames the same way; floor and kxp runs alternate. ns/frame is "
		    "test_run's `duration` (the whole loop: program, transmit, the peer's NAPI and sink "
		    "under the same local_bh section, page recycling), Mpps = 1000/ns; wall Mpps "
		    "also counts the syscall and any time the CPU gave to other tasks (test_run's "
		    "timer stops while it yields; the wall clock does not), so it follows the "
		    "machine's load.\n\n",
		opt.cpu, opt.repeat, opt.batch, opt.ext_if, opt.fwd_if, opt.ext_peer, opt.fwd_peer, opt.fwd_if);

	cJSON_AddStringToObject(root, "description",
				"XDP forwarding rate with live frames (BPF_F_TEST_XDP_LIVE_FRAMES), kxp's XDP "
				"program on external -> NodePort eTP=Cluster (XDP_TX / XDP_REDIRECT into veths) "
				"vs floor programs returning XDP_TX / bpf_redirect / XDP_PASS");
	cfg = cJSON_AddObjectToObject(root, "config");
	cJSON_AddNumberToObject(cfg, "reps", opt.reps);
	cJSON_AddNumberToObject(cfg, "frames_per_run", opt.repeat);
	cJSON_AddNumberToObject(cfg, "pass_frames_per_run", opt.pass_repeat);
	cJSON_AddNumberToObject(cfg, "many_flows", opt.flows);
	cJSON_AddNumberToObject(cfg, "batch_size", opt.batch);
	cJSON_AddNumberToObject(cfg, "cpu", opt.cpu);
	cJSON_AddNumberToObject(cfg, "frame_bytes", XDPFWD_FRAME_LEN);
	cJSON_AddStringToObject(cfg, "sink", "restores the original frame before XDP_DROP (pages are recycled "
					     "with their content: see page_reuse_check)");
	points = cJSON_AddArrayToObject(root, "points");
	for (int i = 0; i < opt.n_count; i++)
		cJSON_AddItemToArray(points, run_point(opt.n_list[i], &fo, md, i == 0, summary[i]));

	fprintf(md, "\n### Scaling: kxp ns/frame (kxp − floor), medians\n\n| path | flows |");
	for (int i = 0; i < opt.n_count; i++)
		fprintf(md, " N=%lu |", opt.n_list[i]);
	fprintf(md, "\n|---|---|");
	for (int i = 0; i < opt.n_count; i++)
		fprintf(md, "---|");
	fprintf(md, "\n");
	for (int k = 0; k < 4; k++) {
		fprintf(md, "| %s | %d |", k < 2 ? "XDP_TX" : "XDP_REDIRECT", k % 2 ? opt.flows : 1);
		for (int i = 0; i < opt.n_count; i++)
			fprintf(md, " %.1f (%+.1f) |", summary[i][2 * k], summary[i][2 * k + 1]);
		fprintf(md, "\n");
	}
	fprintf(md, "| XDP_PASS floor (reference) | 1 |");
	for (int i = 0; i < opt.n_count; i++)
		fprintf(md, " %.1f |", summary[i][8]);
	fprintf(md, "\n");

	bench_write_results(root, opt.json_path, md, opt.md_path);
	bpf_object__close(fo.obj);
	return 0;
}
