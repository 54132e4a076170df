/* Shared by the packet benches (pktbench, xdpfwd): errors and progress, the
 * bench node's addresses, TCP frames, desired state written through the real
 * writer, reason counters, CPU pinning and run statistics. The Makefile
 * builds one .c per bench binary, so this header holds the (static)
 * definitions; define BENCH_NAME ("pktbench") before including it. */
#ifndef KXP_BENCH_BENCHLIB_H
#define KXP_BENCH_BENCHLIB_H

#ifndef BENCH_NAME
#error "define BENCH_NAME before including benchlib.h"
#endif

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <netinet/in.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cjson/cJSON.h>

#include "dataplane/dataplane.h"

/* ---- the bench node ------------------------------------------------------------ */
#define IP4(a, b, c, d) (((uint32_t)(a) << 24) | ((b) << 16) | ((c) << 8) | (d))
#define CLUSTER_CIDR IP4(10, 128, 0, 0)  /* /14: pods, the local detector */
#define CLUSTER_MASK IP4(255, 252, 0, 0)
#define SERVICE_CIDR IP4(10, 96, 0, 0)   /* /12 */
#define SERVICE_MASK IP4(255, 240, 0, 0)
#define NODE_IP IP4(192, 168, 77, 2)     /* this node: NodePorts, SNAT source */
#define EXT_SRC IP4(100, 64, 0, 0)       /* external clients */
#define SVC_PORT 80
#define BE_PORT 8080
#define BE_PER_SVC 3

/* ---- messages and time ------------------------------------------------------------ */
static inline void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static inline void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, BENCH_NAME ": ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static inline void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void progress(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "  " BENCH_NAME ": ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static inline double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* ---- frames ------------------------------------------------------------------------ */
#define TCP_SYN 0x02
#define TCP_ACK 0x10
#define BENCH_FRAME_LEN (ETH_HLEN + sizeof(struct iphdr) + sizeof(struct tcphdr))

static inline uint16_t csum_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static inline uint32_t csum_add(uint32_t s, const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i + 1 < len; i += 2)
		s += (b[i] << 8) | b[i + 1];
	if (len & 1)
		s += b[len - 1] << 8;
	return s;
}

/* A valid Ethernet/IPv4/TCP frame (no options) in buf (size bytes, the rest
 * zeroed) with correct checksums: the datapath may verify or incrementally
 * update them, and both need a correct start. */
static inline void bench_tcp_frame(void *buf, size_t size, uint32_t saddr, uint16_t sport, uint32_t daddr,
				   uint16_t dport, uint8_t flags)
{
	struct ethhdr *eth = buf;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp = (void *)(ip + 1);
	static const uint8_t src_mac[ETH_ALEN] = { 0x02, 0, 0, 0, 0, 0x01 };
	static const uint8_t dst_mac[ETH_ALEN] = { 0x02, 0, 0, 0, 0, 0x02 };
	uint32_t s;

	if (size < BENCH_FRAME_LEN)
		die("frame buffer too small");
	memset(buf, 0, size);
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
	tcp->ack_seq = (flags & TCP_ACK) ? htonl(0x20000000u) : 0;
	tcp->doff = 5;
	tcp->syn = !!(flags & TCP_SYN);
	tcp->ack = !!(flags & TCP_ACK);
	tcp->window = htons(64240);
	/* pseudo header: saddr, daddr, zero+proto, tcp length */
	s = csum_add(0, &ip->saddr, 8);
	s += IPPROTO_TCP + sizeof(*tcp);
	s = csum_add(s, tcp, sizeof(*tcp));
	tcp->check = htons(csum_fold(s));
}

/* ---- desired state, as the model would write it ----------------------------------- */
struct bench_desired {
	struct kxp_desired d;
	size_t cap_fe, cap_sets;
};

/* Arrays for cap_fe frontends and cap_sets sets, and the node: NODE_IP as the
 * primary (local, NodePort) address, one cluster and one service CIDR. */
static inline void bench_desired_init(struct bench_desired *st, size_t cap_fe, size_t cap_sets)
{
	struct kxp_desired *d = &st->d;

	memset(st, 0, sizeof(*st));
	st->cap_fe = cap_fe;
	st->cap_sets = cap_sets;
	d->fe = calloc(cap_fe, sizeof(*d->fe));
	d->sets = calloc(cap_sets, sizeof(*d->sets));
	d->nodeips = calloc(1, sizeof(*d->nodeips));
	if (!d->fe || !d->sets || !d->nodeips)
		die("out of memory");
	d->nodeips[0] = (struct kxp_d_nodeip){ htonl(NODE_IP),
					       KXP_NODEIP_F_LOCAL | KXP_NODEIP_F_NODEPORT | KXP_NODEIP_F_PRIMARY };
	d->n_nodeips = 1;
	d->cfg.n_cluster = 1;
	d->cfg.cluster[0] = (struct kxp_cidr4){ htonl(CLUSTER_CIDR), htonl(CLUSTER_MASK) };
	d->cfg.n_service = 1;
	d->cfg.service[0] = (struct kxp_cidr4){ htonl(SERVICE_CIDR), htonl(SERVICE_MASK) };
	d->cfg.snat_addr = htonl(NODE_IP); /* as the model writes it: the primary address */
}

static inline int bench_be_cmp(const void *a, const void *b)
{
	const struct kxp_d_backend *x = a, *y = b;
	uint32_t xa = ntohl(x->addr), ya = ntohl(y->addr);

	if (xa != ya)
		return xa < ya ? -1 : 1;
	return (int)x->port - (int)y->port;
}

/* A backend set (sorted, as the model hands them over); returns its index. */
static inline int bench_add_set(struct bench_desired *st, const char *key, const struct kxp_d_backend *be,
				size_t n)
{
	struct kxp_d_set *s = &st->d.sets[st->d.n_sets];

	if (st->d.n_sets == st->cap_sets)
		die("set array too small");
	s->key = strdup(key);
	s->be = calloc(n ? n : 1, sizeof(*be));
	if (!s->key || !s->be)
		die("out of memory");
	memcpy(s->be, be, n * sizeof(*be));
	qsort(s->be, n, sizeof(*be), bench_be_cmp);
	s->n_be = n;
	s->algo = KXP_ALGO_RANDOM;
	return (int)st->d.n_sets++;
}

static inline void bench_add_fe(struct bench_desired *st, uint32_t addr, uint16_t port, uint8_t proto,
				uint8_t scope, uint8_t kind, uint16_t flags, int set, const char *svc)
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

/* A ClusterIP service on SVC_PORT/TCP, plus (wildcard) the entry every
 * active ClusterIP has, which rejects other ports and protocols. */
static inline void bench_add_clusterip(struct bench_desired *st, uint32_t cip, int set, uint16_t flags,
				       bool wildcard, const char *svc)
{
	bench_add_fe(st, cip, SVC_PORT, IPPROTO_TCP, KXP_SCOPE_DEFAULT, KXP_FE_CLUSTERIP, flags, set, svc);
	if (wildcard)
		bench_add_fe(st, cip, 0, 0, KXP_SCOPE_DEFAULT, KXP_FE_CLUSTERIP, KXP_SVC_F_WILDCARD, -1, svc);
}

static inline void bench_desired_free(struct bench_desired *st)
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

/* A fresh unpinned instance sized for st (stats are indexed by frontend id). */
static inline struct kxp_dp *bench_dp_open(const struct bench_desired *st)
{
	char errbuf[256] = "";
	struct kxp_dp_opts o = { .no_pin = true, .errbuf = errbuf, .errbuf_len = sizeof(errbuf) };
	struct kxp_dp *dp = NULL;
	int err;

	if (st->d.n_fe > KXP_DEF_MAX_FRONTENDS)
		o.max_frontends = st->d.n_fe + 1024;
	if ((err = kxp_dp_open(&dp, &o)))
		die("kxp_dp_open: %s%s%s", strerror(-err), errbuf[0] ? ": " : "", errbuf);
	return dp;
}

/* ---- maps and counters ---------------------------------------------------------------- */
static int n_cpus; /* possible CPUs: per-CPU map values */

/* Empty a flow map so the next pass sees new flows: collect the keys first
 * (deleting while walking restarts the walk), then delete them. */
static inline void map_flush(int fd, size_t key_size)
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

/* Forget every flow (conntrack, SNAT claims included). */
static inline void flush_flows(struct kxp_dp *dp)
{
	map_flush(kxp_dp_map_fd(dp, KXP_MAP_CT), sizeof(struct kxp_flow4));
}

/* Sum of the per-CPU reason counters: which path the datapath took. */
static inline void read_reasons(struct kxp_dp *dp, uint64_t out[KXP_R_MAX])
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

static inline const char *reason_name(unsigned r)
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
	static char buf[24];

	if (r < KXP_R_MAX && names[r])
		return names[r];
	snprintf(buf, sizeof(buf), "reason_%u", r);
	return buf;
}

/* "OK ×4096, CT_HIT ×1" */
static inline void fmt_reasons(char *buf, size_t len, const uint64_t *rs)
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

/* ---- options and the CPU ------------------------------------------------------------- */
/* "N[,N...]" into list (at most max values, each 1..60000). */
static inline void parse_services(const char *s, unsigned long *list, int max, int *count)
{
	char *dup = strdup(s), *tok, *save = NULL;

	if (!dup)
		die("out of memory");
	*count = 0;
	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *end;
		unsigned long v = strtoul(tok, &end, 10);

		if (*end || v == 0 || v > 60000 || *count == max)
			die("bad --services value '%s' (1..60000, at most %d)", tok, max);
		list[(*count)++] = v;
	}
	free(dup);
}

/* Count the possible CPUs and pin this thread to *cpu; -1 picks the last
 * CPU we may run on (CPU 0 takes most interrupts) and stores it. */
static inline void bench_cpu_setup(int *cpu)
{
	cpu_set_t set;

	n_cpus = libbpf_num_possible_cpus();
	if (n_cpus < 1)
		die("cannot count possible CPUs");
	if (*cpu < 0) {
		if (sched_getaffinity(0, sizeof(set), &set))
			die("sched_getaffinity: %s", strerror(errno));
		for (int c = CPU_SETSIZE - 1; c >= 0; c--)
			if (CPU_ISSET(c, &set)) {
				*cpu = c;
				break;
			}
	}
	CPU_ZERO(&set);
	CPU_SET(*cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity(%d): %s", *cpu, strerror(errno));
}

/* Write the JSON fragment (and free root), close the markdown one. */
static inline void bench_write_results(cJSON *root, const char *json_path, FILE *md, const char *md_path)
{
	char *s = cJSON_Print(root);
	FILE *jf = fopen(json_path, "w");

	if (!s || !jf || fputs(s, jf) < 0 || fclose(jf))
		die("writing %s failed", json_path);
	if (fclose(md))
		die("writing %s failed", md_path);
	free(s);
	cJSON_Delete(root);
}

/* ---- statistics ----------------------------------------------------------------------- */
struct stat3 {
	double med, min, max;
};

static inline int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static inline struct stat3 stats(const double *v, int n)
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

/* v rounded to digits decimals, half away from zero. */
static inline double rnd(double v, int digits)
{
	double sc = 1;

	while (digits--)
		sc *= 10;
	return (double)(long long)(v * sc + (v < 0 ? -0.5 : 0.5)) / sc;
}

/* {"runs": [...], "median", "min", "max"} */
static inline cJSON *json_stat(const double *v, int n, int digits)
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

#endif
