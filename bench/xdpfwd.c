/* xdpfwd: XDP forwarding rate of kxp's XDP program with live frames
 * (BPF_PROG_TEST_RUN + BPF_F_TEST_XDP_LIVE_FRAMES: XDP_TX and XDP_REDIRECT are
 * really performed into veths), external -> NodePort eTP=Cluster with remote
 * backends (DNAT + masquerade), against floor programs run the same way.
 * Maps are written by the real writer (kxp_dp_apply). Must run inside the
 * namespace bench/scenarios/60-xdpfwd.sh builds. Writes a JSON and a markdown
 * fragment for bench/run.sh. */
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <netinet/in.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cjson/cJSON.h>

#include "dataplane/dataplane.h"
#include "xdpfwd.h"

/* ---- address plan (host order; bench/README.md lists it) ------------------ */
#define IP4(a, b, c, d) (((uint32_t)(a) << 24) | ((b) << 16) | ((c) << 8) | (d))
#define CLUSTER_CIDR IP4(10, 128, 0, 0) /* /14 */
#define CLUSTER_MASK IP4(255, 252, 0, 0)
#define SERVICE_CIDR IP4(10, 96, 0, 0) /* /12 */
#define SERVICE_MASK IP4(255, 240, 0, 0)
#define NODE_IP IP4(192, 168, 77, 2)      /* on ext0; NodePorts, SNAT source */
#define CIP_BASE IP4(10, 96, 1, 0)        /* filler ClusterIP i */
#define FILL_BE_BASE IP4(10, 128, 1, 0)   /* filler backends: 3 per service */
#define TX_BE_NET IP4(10, 131, 200, 0)    /* routed back out of ext0: XDP_TX */
#define RD_BE_NET IP4(10, 130, 200, 0)    /* routed out of fwd0: XDP_REDIRECT */
#define BE_MASK IP4(255, 255, 255, 0)
#define EXT_SRC IP4(100, 64, 0, 0)        /* external clients */
#define TX_PORT 30100
#define RD_PORT 30101
#define BE_PORT 8080
#define BE_PER_SVC 3

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

static int ext_ifindex, fwd_ifindex, ext_peer_ifindex, fwd_peer_ifindex, n_cpus;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "xdpfwd: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "  xdpfwd: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* ---- frames ------------------------------------------------------------------ */
static uint16_t csum_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static uint32_t csum_add(uint32_t s, const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i + 1 < len; i += 2)
		s += (b[i] << 8) | b[i + 1];
	if (len & 1)
		s += b[len - 1] << 8;
	return s;
}

#define TCP_SYN 0x02
#define TCP_ACK 0x10

/* Ethernet/IPv4/TCP with valid checksums, addressed to ext0's MAC: kxp
 * updates checksums incrementally, which needs a correct start. */
static void frame_build(struct xdpfwd_frame *fr, uint32_t saddr, uint16_t sport, uint32_t daddr,
			uint16_t dport, uint8_t flags)
{
	struct ethhdr *eth = (void *)fr->b;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp = (void *)(ip + 1);
	static const uint8_t src_mac[ETH_ALEN] = { 0x02, 0, 0, 0, 0, 0x01 };
	static const uint8_t dst_mac[ETH_ALEN] = { 0x02, 0, 0, 0, 0, 0x02 };
	uint32_t s;

	memset(fr, 0, sizeof(*fr));
	memcpy(eth->h_source, src_mac, ETH_ALEN);
	memcpy(eth->h_dest, dst_mac, ETH_ALEN);
	eth->h_proto = htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->tot_len = htons(sizeof(*ip) + sizeof(*tcp));
	ip->id = htons(sport ^ 0x5a5a);
	ip->frag_off = htons(0x4000);
	ip->ttl = 64;
	ip->protocol = IPPROTO_TCP;
	ip->saddr = htonl(saddr);
	ip->daddr = htonl(daddr);
	ip->check = htons(csum_fold(csum_add(0, ip, sizeof(*ip))));
	tcp->source = htons(sport);
	tcp->dest = htons(dport);
	tcp->seq = htonl(0x10000000u + sport);
	tcp->ack_seq = (flags & TCP_ACK) ? htonl(0x20000000u) : 0;
	tcp->doff = 5;
	tcp->syn = !!(flags & TCP_SYN);
	tcp->ack = !!(flags & TCP_ACK);
	tcp->window = htons(64240);
	s = csum_add(0, &ip->saddr, 8);
	s += IPPROTO_TCP + sizeof(*tcp);
	s = csum_add(s, tcp, sizeof(*tcp));
	tcp->check = htons(csum_fold(s));
}

/* Flow f of a path: distinct external clients toward the path's NodePort. */
static void flow_frame(uint16_t np, uint32_t f, uint8_t flags, struct xdpfwd_frame *fr)
{
	frame_build(fr, EXT_SRC + 256 + f % 32768, 20000 + f / 32768, NODE_IP, np, flags);
}

/* ---- desired state ------------------------------------------------------------- */
struct state {
	struct kxp_desired d;
	size_t cap_fe, cap_sets;
};

static int be_cmp(const void *a, const void *b)
{
	const struct kxp_d_backend *x = a, *y = b;
	uint32_t xa = ntohl(x->addr), ya = ntohl(y->addr);

	return xa != ya ? (xa < ya ? -1 : 1) : (int)x->port - (int)y->port;
}

static int add_set(struct state *st, const char *key, struct kxp_d_backend *be, size_t n)
{
	struct kxp_d_set *s = &st->d.sets[st->d.n_sets];

	if (st->d.n_sets == st->cap_sets)
		die("set array too small");
	s->key = strdup(key);
	s->be = calloc(n, sizeof(*be));
	if (!s->key || !s->be)
		die("out of memory");
	qsort(be, n, sizeof(*be), be_cmp);
	memcpy(s->be, be, n * sizeof(*be));
	s->n_be = n;
	s->algo = KXP_ALGO_RANDOM;
	return (int)st->d.n_sets++;
}

static void add_fe(struct state *st, uint32_t addr, uint16_t port, uint8_t proto, uint8_t kind, uint16_t flags,
		   int set, const char *svc)
{
	struct kxp_d_frontend *fe;

	if (st->d.n_fe == st->cap_fe)
		die("frontend array too small");
	fe = &st->d.fe[st->d.n_fe++];
	fe->addr = htonl(addr);
	fe->port = port;
	fe->proto = proto;
	fe->scope = KXP_SCOPE_DEFAULT;
	fe->kind = kind;
	fe->flags = flags;
	fe->set = set;
	fe->svc = strdup(svc);
	fe->port_name = strdup(port ? "http" : "");
	if (!fe->svc || !fe->port_name)
		die("out of memory");
}

/* A ClusterIP with its wildcard entry, as the model writes every active one. */
static void add_clusterip(struct state *st, uint32_t cip, int set, const char *svc)
{
	add_fe(st, cip, 80, IPPROTO_TCP, KXP_FE_CLUSTERIP, 0, set, svc);
	add_fe(st, cip, 0, 0, KXP_FE_CLUSTERIP, KXP_SVC_F_WILDCARD, -1, svc);
}

/* An eTP=Cluster NodePort service: DEFAULT entry on the node address with the
 * cluster-wide set of remote backends (every external client is masqueraded). */
static void add_nodeport(struct state *st, const char *svc, uint32_t cip, uint16_t np, uint32_t be_net)
{
	struct kxp_d_backend be[BE_PER_SVC];
	char key[128];
	int set;

	for (int k = 0; k < BE_PER_SVC; k++)
		be[k] = (struct kxp_d_backend){ htonl(be_net + 1 + k), BE_PORT, IPPROTO_TCP, 0 };
	snprintf(key, sizeof(key), "%s:http/TCP:cluster", svc);
	set = add_set(st, key, be, BE_PER_SVC);
	add_clusterip(st, cip, set, svc);
	add_fe(st, NODE_IP, np, IPPROTO_TCP, KXP_FE_NODEPORT, KXP_SVC_F_EXTERNAL, set, svc);
}

static void build_state(struct state *st, unsigned long n)
{
	struct kxp_d_backend be[BE_PER_SVC];
	char key[128], svc[64];

	memset(st, 0, sizeof(*st));
	st->cap_fe = 2 * n + 8;
	st->cap_sets = n + 2;
	st->d.fe = calloc(st->cap_fe, sizeof(*st->d.fe));
	st->d.sets = calloc(st->cap_sets, sizeof(*st->d.sets));
	st->d.nodeips = calloc(1, sizeof(*st->d.nodeips));
	if (!st->d.fe || !st->d.sets || !st->d.nodeips)
		die("out of memory");
	add_nodeport(st, "bench/np-tx", IP4(10, 96, 0, 10), TX_PORT, TX_BE_NET);
	add_nodeport(st, "bench/np-redirect", IP4(10, 96, 0, 11), RD_PORT, RD_BE_NET);
	for (unsigned long i = 0; i < n; i++) {
		for (int k = 0; k < BE_PER_SVC; k++)
			be[k] = (struct kxp_d_backend){ htonl(FILL_BE_BASE + BE_PER_SVC * i + k), BE_PORT,
							IPPROTO_TCP, 0 };
		snprintf(svc, sizeof(svc), "bench/svc-%lu", i);
		snprintf(key, sizeof(key), "%s:http/TCP:cluster", svc);
		add_clusterip(st, CIP_BASE + i, add_set(st, key, be, BE_PER_SVC), svc);
	}
	st->d.nodeips[0] = (struct kxp_d_nodeip){ htonl(NODE_IP), KXP_NODEIP_F_LOCAL | KXP_NODEIP_F_NODEPORT |
									  KXP_NODEIP_F_PRIMARY };
	st->d.n_nodeips = 1;
	st->d.cfg.n_cluster = 1;
	st->d.cfg.cluster[0] = (struct kxp_cidr4){ htonl(CLUSTER_CIDR), htonl(CLUSTER_MASK) };
	st->d.cfg.n_service = 1;
	st->d.cfg.service[0] = (struct kxp_cidr4){ htonl(SERVICE_CIDR), htonl(SERVICE_MASK) };
	st->d.cfg.snat_addr = htonl(NODE_IP); /* as the model writes it: the primary address */
}

static void free_state(struct state *st)
{
	for (size_t i = 0; i < st->d.n_fe; i++) {
		free(st->d.fe[i].svc);
		free(st->d.fe[i].port_name);
	}
	for (size_t i = 0; i < st->d.n_sets; i++) {
		free(st->d.sets[i].key);
		free(st->d.sets[i].be);
	}
	free(st->d.fe);
	free(st->d.sets);
	free(st->d.nodeips);
}

/* ---- maps -------------------------------------------------------------------------- */
static void map_flush(int fd, size_t key_size)
{
	size_t cap = 1024, n = 0;
	uint8_t *keys = malloc(cap * key_size);
	void *prev = NULL;

	if (!keys)
		die("out of memory");
	while (fd >= 0 && bpf_map_get_next_key(fd, prev, keys + n * key_size) == 0) {
		prev = keys + n * key_size;
		if (++n == cap) {
			uint8_t *k = realloc(keys, 2 * cap * key_size);

			if (!k)
				die("out of memory");
			keys = k;
			cap *= 2;
			prev = keys + (n - 1) * key_size;
		}
	}
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(fd, keys + i * key_size);
	free(keys);
}

static void read_reasons(struct kxp_dp *dp, uint64_t out[KXP_R_MAX])
{
	int fd = kxp_dp_map_fd(dp, KXP_MAP_REASONS);
	uint64_t *v = calloc(n_cpus, sizeof(*v));

	memset(out, 0, KXP_R_MAX * sizeof(*out));
	if (!v)
		die("out of memory");
	for (uint32_t r = 0; fd >= 0 && r < KXP_R_MAX; r++) {
		if (bpf_map_lookup_elem(fd, &r, v))
			continue;
		for (int c = 0; c < n_cpus; c++)
			out[r] += v[c];
	}
	free(v);
}

/* Names of the reasons that appear here; the rest by number. */
static const char *reason_name(unsigned r)
{
	static const char *const names[KXP_R_MAX] = {
		[KXP_R_OK] = "OK",		    [KXP_R_NOT_SERVICE] = "NOT_SERVICE",
		[KXP_R_MALFORMED] = "MALFORMED",    [KXP_R_NO_BACKEND] = "NO_BACKEND",
		[KXP_R_CT_MISS] = "CT_MISS",	    [KXP_R_CSUM] = "CSUM",
		[KXP_R_SNAT_FAIL] = "SNAT_FAIL",    [KXP_R_REPLY] = "REPLY",
		[KXP_R_CT_HIT] = "CT_HIT",	    [KXP_R_POLICY_DROP] = "POLICY_DROP",
		[KXP_R_NO_ENDPOINTS] = "NO_ENDPOINTS",
	};
	static char buf[24];

	if (r < KXP_R_MAX && names[r])
		return names[r];
	snprintf(buf, sizeof(buf), "reason_%u", r);
	return buf;
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

/* Open the flows kxp will forward: one SYN each through the same program
 * (plain test_run, nothing sent): conntrack and SNAT entries as a real
 * connection's first packet leaves them. Returns how many counted OK. */
static uint64_t open_flows(struct kxp_dp *dp, uint16_t np, int nf)
{
	int fd = kxp_dp_prog_xdp(dp);
	uint64_t before[KXP_R_MAX], after[KXP_R_MAX];
	struct xdpfwd_frame syn, out;

	map_flush(kxp_dp_map_fd(dp, KXP_MAP_CT), sizeof(struct kxp_flow4));
	map_flush(kxp_dp_map_fd(dp, KXP_MAP_SNAT), sizeof(struct kxp_flow4));
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

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct stat3 {
	double med, min, max;
};

static struct stat3 stats(const double *v, int n)
{
	double *s = malloc(n * sizeof(*s));
	struct stat3 r;

	if (!s)
		die("out of memory");
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), dbl_cmp);
	r.med = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	r.min = s[0];
	r.max = s[n - 1];
	free(s);
	return r;
}

static double rnd(double v, int digits)
{
	double sc = 1;

	while (digits--)
		sc *= 10;
	return (double)(long long)(v * sc + (v < 0 ? -0.5 : 0.5)) / sc;
}

static cJSON *json_stat(const double *v, int n, int digits)
{
	cJSON *o = cJSON_CreateObject(), *runs = cJSON_AddArrayToObject(o, "runs");
	struct stat3 s = stats(v, n);

	for (int i = 0; i < n; i++)
		cJSON_AddItemToArray(runs, cJSON_CreateNumber(rnd(v[i], digits)));
	cJSON_AddNumberToObject(o, "median", rnd(s.med, digits));
	cJSON_AddNumberToObject(o, "min", rnd(s.min, digits));
	cJSON_AddNumberToObject(o, "max", rnd(s.max, digits));
	return o;
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

static void fmt_reasons(char *buf, size_t len, const uint64_t *rs)
{
	size_t o = 0;

	buf[0] = 0;
	for (unsigned r = 0; r < KXP_R_MAX && o < len; r++)
		if (rs[r])
			o += snprintf(buf + o, len - o, "%s%s ×%llu", o ? ", " : "", reason_name(r),
				      (unsigned long long)rs[r]);
	if (!buf[0])
		snprintf(buf, len, "no reason counted");
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
	struct state st;
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
		char errbuf[256] = "";
		struct kxp_dp_opts o = { .no_pin = true, .errbuf = errbuf, .errbuf_len = sizeof(errbuf) };
		struct kxp_apply_stats ast = { 0 };
		struct kxp_dp *dp = NULL;
		double t0;
		int err;

		if (st.d.n_fe > KXP_DEF_MAX_FRONTENDS)
			o.max_frontends = st.d.n_fe + 1024;
		if ((err = kxp_dp_open(&dp, &o)))
			die("kxp_dp_open: %s%s%s", strerror(-err), errbuf[0] ? ": " : "", errbuf);
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
	free_state(&st);
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

static void parse_services(const char *s)
{
	char *dup = strdup(s), *tok, *save = NULL;

	opt.n_count = 0;
	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *end;
		unsigned long v = strtoul(tok, &end, 10);

		if (*end || v == 0 || v > 60000 || opt.n_count == 8)
			die("bad --services value '%s' (1..60000, at most 8)", tok);
		opt.n_list[opt.n_count++] = v;
	}
	free(dup);
}

static void pin_cpu(void)
{
	cpu_set_t set;

	if (opt.cpu < 0) {
		if (sched_getaffinity(0, sizeof(set), &set))
			die("sched_getaffinity: %s", strerror(errno));
		for (int c = CPU_SETSIZE - 1; c >= 0; c--)
			if (CPU_ISSET(c, &set)) {
				opt.cpu = c;
				break;
			}
	}
	CPU_ZERO(&set);
	CPU_SET(opt.cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity(%d): %s", opt.cpu, strerror(errno));
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

	parse_services("1,10000");
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's': parse_services(optarg); break;
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
	n_cpus = libbpf_num_possible_cpus();
	if (n_cpus < 1)
		die("cannot count possible CPUs");
	pin_cpu();
	load_fwd_obj(&fo);
	attach_sinks(&fo);

	md = fopen(opt.md_path, "w");
	if (!md)
		die("%s: %s", opt.md_path, strerror(errno));
	fprintf(md, "## xdpfwd: XDP forwarding rate with live frames\n\n");
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

	root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "scenario", "xdpfwd");
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

	char *s = cJSON_Print(root);
	FILE *jf = fopen(opt.json_path, "w");

	if (!s || !jf || fputs(s, jf) < 0 || fclose(jf))
		die("writing %s failed", opt.json_path);
	if (fclose(md))
		die("writing %s failed", opt.md_path);
	free(s);
	cJSON_Delete(root);
	bpf_object__close(fo.obj);
	return 0;
}
