/* pktbench: per-packet cost of kxp's XDP and TC ingress programs at 1..30,000
 * ClusterIP services, measured with BPF_PROG_TEST_RUN against empty programs
 * of the same types (the floor); maps are provisioned through the real writer.
 * Writes a JSON fragment and a markdown fragment for bench/run.sh. */
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
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <netinet/in.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cjson/cJSON.h>

#include "dataplane/dataplane.h"

/* ---- address plan (host order; the README lists it) ---------------------- */
#define IP4(a, b, c, d) (((uint32_t)(a) << 24) | ((b) << 16) | ((c) << 8) | (d))
#define CLUSTER_CIDR IP4(10, 128, 0, 0)  /* /14: pods, the local detector */
#define CLUSTER_MASK IP4(255, 252, 0, 0)
#define SERVICE_CIDR IP4(10, 96, 0, 0)   /* /12 */
#define SERVICE_MASK IP4(255, 240, 0, 0)
#define NODE_IP IP4(192, 168, 77, 2)      /* this node; serves NodePorts */
#define NP_CIP_BASE IP4(10, 96, 0, 1)     /* ClusterIPs of the NodePort services */
#define PROBE_CIP IP4(10, 96, 0, 100)     /* the self-mapped ClusterIP probe */
#define CIP_BASE IP4(10, 96, 1, 0)        /* ClusterIP of regular service i */
#define REMOTE_BE_BASE IP4(10, 128, 1, 0) /* remote pods: backends of regular services */
#define NP_REMOTE_BE IP4(10, 130, 254, 0) /* remote pods of the NodePort services */
#define LOCAL_BE IP4(10, 131, 255, 0)     /* pods on this node (NodePort local sets) */
#define LOCAL_POD_SRC IP4(10, 131, 0, 0)  /* client pods on this node */
#define REMOTE_POD_DST IP4(10, 130, 16, 0) /* non-service destination of pod traffic */
#define EXT_SRC IP4(100, 64, 0, 0)        /* external clients */
#define SVC_PORT 80
#define BE_PORT 8080
#define NP_PORT_BASE 30000 /* NodePort of NodePort service j is 30000 + j; j = 0 is the probe */
#define N_NODEPORT 8       /* eTP=Local NodePort services besides the probe */
#define BE_PER_SVC 3

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

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "pktbench: ");
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
	fprintf(stderr, "  pktbench: ");
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

/* ---- packets --------------------------------------------------------------- */
#define PKT_LEN (ETH_HLEN + sizeof(struct iphdr) + sizeof(struct tcphdr))

struct pkt {
	uint8_t b[PKT_LEN];
};

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

/* A valid Ethernet/IPv4/TCP frame with correct checksums: the datapath may
 * verify or incrementally update them, and both need a correct start. */
static void pkt_build(struct pkt *p, uint32_t saddr, uint16_t sport, uint32_t daddr, uint16_t dport,
		      uint8_t tcp_flags)
{
	struct ethhdr *eth = (void *)p->b;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp = (void *)(ip + 1);
	static const uint8_t src_mac[ETH_ALEN] = { 0x02, 0, 0, 0, 0, 0x01 };
	static const uint8_t dst_mac[ETH_ALEN] = { 0x02, 0, 0, 0, 0, 0x02 };
	uint32_t s;

	memset(p, 0, sizeof(*p));
	memcpy(eth->h_source, src_mac, ETH_ALEN);
	memcpy(eth->h_dest, dst_mac, ETH_ALEN);
	eth->h_proto = htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->tot_len = htons(sizeof(*ip) + sizeof(*tcp));
	ip->id = htons(sport ^ 0x5a5a);
	ip->frag_off = htons(0x4000); /* DF */
	ip->ttl = 64;
	ip->protocol = IPPROTO_TCP;
	ip->saddr = htonl(saddr);
	ip->daddr = htonl(daddr);
	ip->check = htons(csum_fold(csum_add(0, ip, sizeof(*ip))));
	tcp->source = htons(sport);
	tcp->dest = htons(dport);
	tcp->seq = htonl(0x10000000u + sport);
	tcp->ack_seq = (tcp_flags & 0x10) ? htonl(0x20000000u) : 0;
	tcp->doff = 5;
	tcp->syn = !!(tcp_flags & 0x02);
	tcp->ack = !!(tcp_flags & 0x10);
	tcp->window = htons(64240);
	/* pseudo header: saddr, daddr, zero+proto, tcp length */
	s = csum_add(0, &ip->saddr, 8);
	s += IPPROTO_TCP + sizeof(*tcp);
	s = csum_add(s, tcp, sizeof(*tcp));
	tcp->check = htons(csum_fold(s));
}

#define TCP_SYN 0x02
#define TCP_ACK 0x10

/* ---- what is measured ------------------------------------------------------ */
enum prog_kind { PK_XDP, PK_TC };

enum mode {
	M_SINGLE, /* one established flow, `repeat` runs in one call (ct-hit path) */
	M_NEW,    /* many flows, one call per packet, ct empty: SYNs (new-flow path) */
	M_EST,    /* the same flows again right after M_NEW: ACKs (ct-hit path) */
	M_PLAIN,  /* many flows, one call per packet, for paths without state */
};

enum path_id { P_POD_CIP, P_EXT_NP_XDP, P_EXT_NP_TC, P_NONSVC_XDP, P_NONSVC_TC, P__COUNT };

struct path {
	const char *id;
	const char *label;
	const char *source;
	enum prog_kind prog;
	bool service; /* has a translation, so new/established differ */
	bool external; /* ingress is the external device (else pod-facing) */
};

static const struct path paths[P__COUNT] = {
	[P_POD_CIP] = { "pod_clusterip", "pod → ClusterIP:80", "pod (cluster CIDR)", PK_TC, true, false },
	[P_EXT_NP_XDP] = { "ext_nodeport_local_xdp", "external → NodeIP:NodePort, eTP=Local",
			   "external", PK_XDP, true, true },
	[P_EXT_NP_TC] = { "ext_nodeport_local_tc", "external → NodeIP:NodePort, eTP=Local",
			  "external", PK_TC, true, true },
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
struct bench_state {
	struct kxp_desired d;
	size_t cap_fe;
};

static int be_cmp(const void *a, const void *b)
{
	const struct kxp_d_backend *x = a, *y = b;
	uint32_t xa = ntohl(x->addr), ya = ntohl(y->addr);

	if (xa != ya)
		return xa < ya ? -1 : 1;
	return (int)x->port - (int)y->port;
}

static int add_set(struct kxp_desired *d, const char *key, const struct kxp_d_backend *be, size_t n)
{
	struct kxp_d_set *s = &d->sets[d->n_sets];

	s->key = strdup(key);
	s->be = calloc(n ? n : 1, sizeof(*be));
	if (!s->key || !s->be)
		die("out of memory");
	memcpy(s->be, be, n * sizeof(*be));
	qsort(s->be, n, sizeof(*be), be_cmp);
	s->n_be = n;
	s->algo = KXP_ALGO_RANDOM;
	return (int)d->n_sets++;
}

static void add_fe(struct bench_state *st, uint32_t addr, uint16_t port, uint8_t proto, uint8_t scope,
		   uint8_t kind, uint16_t flags, int set, const char *svc)
{
	struct kxp_d_frontend *fe;

	if (st->d.n_fe == st->cap_fe)
		die("frontend array too small");
	fe = &st->d.fe[st->d.n_fe++];
	fe->addr = htonl(addr);
	fe->port = port;
	fe->proto = proto;
	fe->scope = scope;
	fe->kind = kind;
	fe->flags = flags;
	fe->set = set;
	fe->svc = strdup(svc);
	fe->port_name = strdup(port ? "http" : "");
	if (!fe->svc || !fe->port_name)
		die("out of memory");
}

/* A ClusterIP service as the model describes one: its port, plus the wildcard
 * entry every active ClusterIP has (other ports/protocols reject). */
static void add_clusterip(struct bench_state *st, uint32_t cip, int set, uint16_t flags, const char *svc)
{
	add_fe(st, cip, SVC_PORT, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_CLUSTERIP, flags, set, svc);
	if (opt.wildcard)
		add_fe(st, cip, 0, 0, KXP_SCOPE_DEFAULT, KXP_FE_CLUSTERIP, KXP_SVC_F_WILDCARD, -1, svc);
}

/* N regular ClusterIP services with BE_PER_SVC remote backends each, the
 * self-mapped ClusterIP probe, and 1 + N_NODEPORT eTP=Local NodePort services
 * (j = 0 is the self-mapped NodePort probe). */
static void build_desired(struct bench_state *st, unsigned long n)
{
	struct kxp_desired *d = &st->d;
	struct kxp_d_backend be[8];
	unsigned long i;
	char key[128], svc[64];

	memset(st, 0, sizeof(*st));
	st->cap_fe = 2 * n + 2 + 4 * (N_NODEPORT + 1);
	d->fe = calloc(st->cap_fe, sizeof(*d->fe));
	d->sets = calloc(n + 1 + 2 * (N_NODEPORT + 1), sizeof(*d->sets));
	d->nodeips = calloc(1, sizeof(*d->nodeips));
	if (!d->fe || !d->sets || !d->nodeips)
		die("out of memory");

	for (i = 0; i < n; i++) {
		int set;

		for (int k = 0; k < BE_PER_SVC; k++)
			be[k] = (struct kxp_d_backend){ htonl(REMOTE_BE_BASE + BE_PER_SVC * i + k), BE_PORT,
							IPPROTO_TCP, 0 };
		snprintf(svc, sizeof(svc), "bench/svc-%lu", i);
		snprintf(key, sizeof(key), "%s:http/TCP:cluster", svc);
		set = add_set(d, key, be, BE_PER_SVC);
		add_clusterip(st, CIP_BASE + i, set, 0, svc);
	}

	/* The ClusterIP probe: its backend is its own frontend. */
	be[0] = (struct kxp_d_backend){ htonl(PROBE_CIP), SVC_PORT, IPPROTO_TCP, 0 };
	add_clusterip(st, PROBE_CIP, add_set(d, "bench/probe:http/TCP:cluster", be, 1), 0, "bench/probe");

	for (int j = 0; j <= N_NODEPORT; j++) {
		int local, cluster;
		uint16_t f = KXP_SVC_F_EXTERNAL | KXP_SVC_F_ETP_LOCAL;

		snprintf(svc, sizeof(svc), "bench/np-%d", j);
		if (j == 0) {
			/* The NodePort probe: its local backend is NodeIP:NodePort itself. */
			be[0] = (struct kxp_d_backend){ htonl(NODE_IP), NP_PORT_BASE, IPPROTO_TCP,
							KXP_BE_F_LOCAL };
			snprintf(key, sizeof(key), "%s:http/TCP:local", svc);
			local = add_set(d, key, be, 1);
			snprintf(key, sizeof(key), "%s:http/TCP:cluster", svc);
			cluster = add_set(d, key, be, 1);
		} else {
			for (int k = 0; k < 2; k++) {
				be[k] = (struct kxp_d_backend){ htonl(LOCAL_BE + 2 * j + k), BE_PORT, IPPROTO_TCP,
								KXP_BE_F_LOCAL };
				be[2 + k] = (struct kxp_d_backend){ htonl(NP_REMOTE_BE + 2 * j + k), BE_PORT,
								    IPPROTO_TCP, 0 };
			}
			snprintf(key, sizeof(key), "%s:http/TCP:local", svc);
			local = add_set(d, key, be, 2);
			snprintf(key, sizeof(key), "%s:http/TCP:cluster", svc);
			cluster = add_set(d, key, be, 4);
		}
		add_clusterip(st, NP_CIP_BASE + j, cluster, KXP_SVC_F_ETP_LOCAL, svc);
		add_fe(st, NODE_IP, NP_PORT_BASE + j, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_NODEPORT,
		       f | KXP_SVC_F_SPLIT | KXP_SVC_F_LOCAL_SET, local, svc);
		add_fe(st, NODE_IP, NP_PORT_BASE + j, IPPROTO_TCP, KXP_SCOPE_INTERNAL, KXP_FE_NODEPORT, f,
		       cluster, svc);
	}

	d->nodeips[0] = (struct kxp_d_nodeip){ htonl(NODE_IP),
					       KXP_NODEIP_F_LOCAL | KXP_NODEIP_F_NODEPORT | KXP_NODEIP_F_PRIMARY };
	d->n_nodeips = 1;
	d->cfg.n_cluster = 1;
	d->cfg.cluster[0] = (struct kxp_cidr4){ htonl(CLUSTER_CIDR), htonl(CLUSTER_MASK) };
	d->cfg.n_service = 1;
	d->cfg.service[0] = (struct kxp_cidr4){ htonl(SERVICE_CIDR), htonl(SERVICE_MASK) };
}

static void free_desired(struct bench_state *st)
{
	struct kxp_desired *d = &st->d;

	for (size_t i = 0; i < d->n_fe; i++) {
		free(d->fe[i].svc);
		free(d->fe[i].port_name);
	}
	for (size_t i = 0; i < d->n_sets; i++) {
		free(d->sets[i].key);
		free(d->sets[i].be);
	}
	free(d->fe);
	free(d->sets);
	free(d->nodeips);
	memset(st, 0, sizeof(*st));
}

/* ---- map helpers ----------------------------------------------------------- */
static size_t map_count(int fd, size_t key_size)
{
	uint8_t k[64], next[64];
	size_t n = 0;
	void *prev = NULL;

	if (fd < 0 || key_size > sizeof(k))
		return 0;
	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(k, next, key_size);
		prev = k;
		n++;
	}
	return n;
}

/* Empty a flow map so the next pass sees new flows: collect the keys first
 * (deleting while walking restarts the walk), then delete them. */
static void map_flush(int fd, size_t key_size)
{
	size_t cap = 1024, n = 0;
	uint8_t *keys = malloc(cap * key_size);
	void *prev = NULL;

	if (fd < 0)
		goto out;
	if (!keys)
		die("out of memory");
	while (bpf_map_get_next_key(fd, prev, keys + n * key_size) == 0) {
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
out:
	free(keys);
}

static void flush_flows(struct kxp_dp *dp)
{
	map_flush(kxp_dp_map_fd(dp, KXP_MAP_CT), sizeof(struct kxp_flow4));
	map_flush(kxp_dp_map_fd(dp, KXP_MAP_SNAT), sizeof(struct kxp_flow4));
}

static int n_cpus;

/* Sum of the per-CPU reason counters: which path the datapath took. */
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

static const char *reason_name(unsigned r)
{
	/* Indexed by the enum itself, so renumbering could not go unnoticed. */
	static const char *const names[KXP_R_MAX] = {
		[KXP_R_OK] = "OK",
		[KXP_R_NOT_SERVICE] = "NOT_SERVICE",
		[KXP_R_MALFORMED] = "MALFORMED",
		[KXP_R_FRAGMENT] = "FRAGMENT",
		[KXP_R_UNKNOWN_PROTO] = "UNKNOWN_PROTO",
		[KXP_R_NO_ENDPOINTS] = "NO_ENDPOINTS",
		[KXP_R_POLICY_DROP] = "POLICY_DROP",
		[KXP_R_SVC_CIDR_DROP] = "SVC_CIDR_DROP",
		[KXP_R_PORT_UNKNOWN] = "PORT_UNKNOWN",
		[KXP_R_NEEDS_SNAT] = "NEEDS_SNAT",
		[KXP_R_CT_MISS] = "CT_MISS",
		[KXP_R_NO_BACKEND] = "NO_BACKEND",
		[KXP_R_CSUM] = "CSUM",
		[KXP_R_LBSR_DENY] = "LBSR_DENY",
		[KXP_R_SNAT_FAIL] = "SNAT_FAIL",
		[KXP_R_REJECT_LIMIT] = "REJECT_LIMIT",
		[KXP_R_REPLY] = "REPLY",
		[KXP_R_CT_HIT] = "CT_HIT",
		[KXP_R_NOT_IPV4] = "NOT_IPV4",
	};
	static char buf[16];

	if (r < KXP_R_MAX && names[r])
		return names[r];
	snprintf(buf, sizeof(buf), "reason_%u", r);
	return buf;
}

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

/* ---- statistics ---------------------------------------------------------------- */
static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
	double *s = malloc(n * sizeof(*s));
	double m;

	if (!s)
		die("out of memory");
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), dbl_cmp);
	m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	free(s);
	return m;
}

struct stat3 {
	double med, min, max;
};

static struct stat3 stats(const double *v, int n)
{
	struct stat3 s = { median(v, n), v[0], v[0] };

	for (int i = 1; i < n; i++) {
		if (v[i] < s.min)
			s.min = v[i];
		if (v[i] > s.max)
			s.max = v[i];
	}
	return s;
}

static cJSON *json_stat(const double *v, int n, int digits)
{
	cJSON *o = cJSON_CreateObject(), *runs = cJSON_AddArrayToObject(o, "runs");
	struct stat3 s = stats(v, n);
	double scale = 1;

	for (int i = 0; i < digits; i++)
		scale *= 10;
	for (int i = 0; i < n; i++)
		cJSON_AddItemToArray(runs, cJSON_CreateNumber((long long)(v[i] * scale + 0.5) / scale));
	cJSON_AddNumberToObject(o, "median", (long long)(s.med * scale + 0.5) / scale);
	cJSON_AddNumberToObject(o, "min", (long long)(s.min * scale + 0.5) / scale);
	cJSON_AddNumberToObject(o, "max", (long long)(s.max * scale + 0.5) / scale);
	return o;
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

static void run_point(unsigned long n_svc, const struct floor_progs *fl, FILE *md, struct point_out *po)
{
	struct bench_state st;
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
		char errbuf[256] = "";
		struct kxp_dp_opts o = { .no_pin = true, .errbuf = errbuf, .errbuf_len = sizeof(errbuf) };
		struct kxp_apply_stats ast = { 0 };
		struct kxp_dp *dp = NULL;
		double t0;
		int err;

		/* Room for every frontend whatever the default; stats are indexed by fe id. */
		if (st.d.n_fe > KXP_DEF_MAX_FRONTENDS)
			o.max_frontends = st.d.n_fe + 1024;
		t0 = now_ns();
		if ((err = kxp_dp_open(&dp, &o)))
			die("kxp_dp_open: %s%s%s", strerror(-err), errbuf[0] ? ": " : "", errbuf);
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
			svc_entries = map_count(kxp_dp_map_fd(dp, KXP_MAP_SVC), sizeof(struct kxp_svc_key));
			be_entries = map_count(kxp_dp_map_fd(dp, KXP_MAP_BACKEND), sizeof(__u32));
			slot_entries = map_count(kxp_dp_map_fd(dp, KXP_MAP_SLOT), sizeof(struct kxp_slot_key));
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
		    "(N services + the ClusterIP probe + %d eTP=Local NodePort services); "
		    "after the first apply the maps held %zu `kxp_svc4`, %zu `kxp_backend4`, "
		    "%zu `kxp_slot` entries%s.\n\n",
		st.d.n_fe, st.d.n_sets, N_NODEPORT + 1, svc_entries, be_entries, slot_entries,
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
			snprintf(wall, sizeof(wall), "%.0f → %.0f", median(me->floor_wall, reps),
				 median(me->kxp_wall, reps));
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
	free_desired(&st);
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

static void parse_services(const char *s)
{
	char *dup = strdup(s), *tok, *save = NULL;

	opt.n_count = 0;
	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *end;
		unsigned long v = strtoul(tok, &end, 10);

		if (*end || v == 0 || v > 60000 || opt.n_count == 16)
			die("bad --services value '%s' (1..60000, at most 16)", tok);
		opt.n_list[opt.n_count++] = v;
	}
	free(dup);
}

static void pin_cpu(void)
{
	cpu_set_t set;

	if (opt.cpu < 0) {
		/* the last CPU we may run on: CPU 0 takes most interrupts */
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

	parse_services("1,1000,10000,30000");
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's': parse_services(optarg); break;
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
	n_cpus = libbpf_num_possible_cpus();
	if (n_cpus < 1)
		die("cannot count possible CPUs");
	pin_cpu();
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

	char *s = cJSON_Print(root);
	FILE *jf = fopen(opt.json_path, "w");

	if (!s || !jf || fputs(s, jf) < 0 || fclose(jf))
		die("writing %s failed", opt.json_path);
	if (fclose(md))
		die("writing %s failed", opt.md_path);
	free(s);
	cJSON_Delete(root);
	close(fl.xdp);
	close(fl.tc);
	return 0;
}
