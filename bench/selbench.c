/* selbench: per-new-flow cost of the three selection algorithms (random, rr,
 * maglev) through kxp's XDP program with BPF_PROG_TEST_RUN, and the memory
 * of one Maglev table at the instance's M. Maps are provisioned through the
 * real writer. Writes a JSON and a markdown fragment for bench/run.sh. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <netinet/in.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cjson/cJSON.h>

#include "dataplane/dataplane.h"

#define IP4(a, b, c, d) htonl(((uint32_t)(a) << 24) | ((b) << 16) | ((c) << 8) | (d))
#define N_BE 16
static const char *const algo_names[3] = { "random", "rr", "maglev" };

static struct {
	int reps, flows, cpu;
	uint32_t m;
	const char *json, *md;
} opt = { .reps = 5, .flows = 65536, .cpu = -1 };

static void die(const char *what, int err)
{
	fprintf(stderr, "selbench: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static uint16_t csum16(const void *p, size_t n, uint32_t sum)
{
	const uint16_t *w = p;

	for (; n > 1; n -= 2)
		sum += *w++;
	if (n)
		sum += *(const uint8_t *)w;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

struct frame {
	struct ethhdr eth;
	struct iphdr ip;
	struct tcphdr tcp;
} __attribute__((packed));

/* A SYN from pod 10.244.(i>>8).(i&255) port 10000+i to ClusterIP 10.96.0.(10+algo):80. */
static void mk_syn(struct frame *f, int algo, int i)
{
	struct {
		uint32_t s, d;
		uint8_t z, p;
		uint16_t len;
	} __attribute__((packed)) ph;
	uint32_t sum = 0;

	memset(f, 0, sizeof(*f));
	f->eth.h_proto = htons(ETH_P_IP);
	memcpy(f->eth.h_dest, "\x02\0\0\0\0\x02", 6);
	memcpy(f->eth.h_source, "\x02\0\0\0\0\x01", 6);
	f->ip.version = 4;
	f->ip.ihl = 5;
	f->ip.ttl = 64;
	f->ip.protocol = IPPROTO_TCP;
	f->ip.tot_len = htons(sizeof(f->ip) + sizeof(f->tcp));
	f->ip.saddr = IP4(10, 244, (i >> 8) & 255, i & 255);
	f->ip.daddr = IP4(10, 96, 0, 10 + algo);
	f->ip.check = csum16(&f->ip, sizeof(f->ip), 0);
	f->tcp.source = htons((uint16_t)(10000 + (i % 50000)));
	f->tcp.dest = htons(80);
	f->tcp.doff = 5;
	f->tcp.syn = 1;
	f->tcp.window = htons(65535);
	ph = (typeof(ph)){ f->ip.saddr, f->ip.daddr, 0, IPPROTO_TCP, htons(sizeof(f->tcp)) };
	for (size_t k = 0; k < sizeof(ph) / 2; k++)
		sum += ((uint16_t *)&ph)[k];
	f->tcp.check = csum16(&f->tcp, sizeof(f->tcp), sum);
}

static void provision(struct kxp_dp *dp)
{
	static struct kxp_d_backend be[3][N_BE];
	static struct kxp_d_set sets[3];
	static struct kxp_d_frontend fe[3];
	static char keys[3][32];
	struct kxp_desired d = { .fe = fe, .n_fe = 3, .sets = sets, .n_sets = 3 };
	struct kxp_apply_stats st;
	int err;

	for (int a = 0; a < 3; a++) {
		for (int b = 0; b < N_BE; b++)
			be[a][b] = (struct kxp_d_backend){ .addr = IP4(10, 245, a, 10 + b), .port = 8080,
							   .proto = IPPROTO_TCP };
		snprintf(keys[a], sizeof(keys[a]), "bench/%s:http/TCP:cluster", algo_names[a]);
		sets[a] = (struct kxp_d_set){ .key = keys[a], .be = be[a], .n_be = N_BE, .algo = (uint8_t)a };
		fe[a] = (struct kxp_d_frontend){ .addr = IP4(10, 96, 0, 10 + a), .port = 80, .proto = IPPROTO_TCP,
						 .kind = KXP_FE_CLUSTERIP, .set = a, .svc = keys[a], .port_name = "http" };
	}
	d.cfg.n_cluster = 1;
	d.cfg.cluster[0] = (struct kxp_cidr4){ IP4(10, 244, 0, 0), IP4(255, 254, 0, 0) };
	d.cfg.n_service = 1;
	d.cfg.service[0] = (struct kxp_cidr4){ IP4(10, 96, 0, 0), IP4(255, 240, 0, 0) };
	err = kxp_dp_apply(dp, &d, &st);
	if (err)
		die(st.n_failed ? st.failed[0] : "apply", err);
}

static void ct_clear(struct kxp_dp *dp)
{
	int fd = kxp_dp_map_fd(dp, KXP_MAP_CT);
	struct kxp_flow4 k;

	while (bpf_map_get_next_key(fd, NULL, &k) == 0)
		bpf_map_delete_elem(fd, &k);
}

/* Mean in-kernel ns per new flow: one call per packet (the program rewrites it). */
static double run_pass(struct kxp_dp *dp, int algo, int *ok)
{
	int prog = kxp_dp_prog_xdp(dp);
	struct frame f, out;
	uint64_t total = 0;

	*ok = 0;
	ct_clear(dp);
	for (int i = 0; i < opt.flows; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = &f, .data_size_in = sizeof(f), .data_out = &out,
			    .data_size_out = sizeof(out), .repeat = 1);

		mk_syn(&f, algo, i);
		if (bpf_prog_test_run_opts(prog, &o))
			die("test_run", errno);
		total += o.duration;
		*ok += o.retval == 2 /* XDP_PASS after DNAT */ && out.ip.daddr != f.ip.daddr;
	}
	return (double)total / opt.flows;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static unsigned long long table_memlock(struct kxp_dp *dp)
{
	uint32_t sp = 0, id;
	char path[64], line[128];
	unsigned long long v = 0;
	FILE *fp;
	int fd;

	/* the maglev set is the only one with a table */
	for (sp = 1; sp < 16; sp++)
		if (!bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_MAGLEV), &sp, &id))
			break;
	fd = sp < 16 ? bpf_map_get_fd_by_id(id) : -1;
	if (fd < 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	fp = fopen(path, "r");
	while (fp && fgets(line, sizeof(line), fp))
		if (sscanf(line, "memlock: %llu", &v) == 1)
			break;
	if (fp)
		fclose(fp);
	close(fd);
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "reps", required_argument, NULL, 'r' }, { "flows", required_argument, NULL, 'f' },
		{ "cpu", required_argument, NULL, 'c' },  { "maglev-m", required_argument, NULL, 'm' },
		{ "json", required_argument, NULL, 'j' }, { "md", required_argument, NULL, 'o' },
		{},
	};
	double ns[3][64], med[3], lo[3], hi[3];
	char errbuf[256] = "";
	struct kxp_dp_opts o = { .no_pin = true, .max_ct = 262144, .errbuf = errbuf, .errbuf_len = sizeof(errbuf) };
	struct kxp_dp *dp;
	unsigned long long mem;
	int c, err, ok[3] = {};
	cJSON *doc, *algos;
	FILE *f;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': opt.reps = atoi(optarg); break;
		case 'f': opt.flows = atoi(optarg); break;
		case 'c': opt.cpu = atoi(optarg); break;
		case 'm': opt.m = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'j': opt.json = optarg; break;
		case 'o': opt.md = optarg; break;
		default: return 2;
		}
	}
	if (opt.reps < 1 || opt.reps > 64 || opt.flows < 1 || opt.flows > 100000 || !opt.json || !opt.md) {
		fprintf(stderr, "usage: selbench --json FILE --md FILE [--reps 1..64] [--flows N<=100000] [--cpu N] [--maglev-m M]\n");
		return 2;
	}
	if (opt.cpu >= 0) {
		cpu_set_t s;

		CPU_ZERO(&s);
		CPU_SET(opt.cpu, &s);
		sched_setaffinity(0, sizeof(s), &s);
	}
	o.maglev_m = opt.m;
	err = kxp_dp_open(&dp, &o);
	if (err)
		die(errbuf[0] ? errbuf : "open", err);
	provision(dp);
	mem = table_memlock(dp);
	/* the order rotates per repetition so no algorithm always runs first */
	for (int r = 0; r < opt.reps; r++)
		for (int k = 0; k < 3; k++) {
			int a = (k + r) % 3;

			ns[a][r] = run_pass(dp, a, &ok[a]);
			fprintf(stderr, "  selbench: rep %d %s: %.1f ns/new flow (%d/%d translated)\n", r + 1,
				algo_names[a], ns[a][r], ok[a], opt.flows);
		}
	for (int a = 0; a < 3; a++) {
		qsort(ns[a], (size_t)opt.reps, sizeof(double), cmp_d);
		med[a] = ns[a][opt.reps / 2];
		lo[a] = ns[a][0];
		hi[a] = ns[a][opt.reps - 1];
	}

	doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "scenario", "select");
	cJSON_AddNumberToObject(doc, "flows", opt.flows);
	cJSON_AddNumberToObject(doc, "reps", opt.reps);
	cJSON_AddNumberToObject(doc, "backends_per_service", N_BE);
	cJSON_AddNumberToObject(doc, "maglev_m", opt.m ? opt.m : KXP_MAGLEV_M_DEF);
	cJSON_AddNumberToObject(doc, "maglev_table_bytes",
				(double)KXP_MAGLEV_PAIRS(opt.m ? opt.m : KXP_MAGLEV_M_DEF) * sizeof(struct kxp_mg_pair));
	cJSON_AddNumberToObject(doc, "maglev_table_memlock_bytes", (double)mem);
	algos = cJSON_AddObjectToObject(doc, "xdp_new_flow_ns");
	for (int a = 0; a < 3; a++) {
		cJSON *x = cJSON_AddObjectToObject(algos, algo_names[a]);

		cJSON_AddNumberToObject(x, "median", med[a]);
		cJSON_AddNumberToObject(x, "min", lo[a]);
		cJSON_AddNumberToObject(x, "max", hi[a]);
		cJSON_AddNumberToObject(x, "translated_last_rep", ok[a]);
	}
	cJSON_AddNumberToObject(doc, "maglev_minus_random_ns", med[2] - med[0]);
	cJSON_AddBoolToObject(doc, "goal_maglev_le_random_plus_10ns", med[2] <= med[0] + 10);
	f = fopen(opt.json, "w");
	if (!f)
		die(opt.json, errno);
	{
		char *s = cJSON_Print(doc);

		fprintf(f, "%s\n", s);
		free(s);
	}
	fclose(f);
	f = fopen(opt.md, "w");
	if (!f)
		die(opt.md, errno);
	fprintf(f, "## select: backend selection per new flow (XDP) and Maglev memory\n\n");
	fprintf(f, "%d distinct SYNs per algorithm and repetition (pod source to a ClusterIP with %d backends, "
		   "one BPF_PROG_TEST_RUN each, ct emptied first: every packet takes the new-flow path), %d "
		   "repetitions, median (min-max) of the mean in-kernel ns per packet.\n\n",
		opt.flows, N_BE, opt.reps);
	fprintf(f, "| algorithm | ns per new flow | translated (last rep) |\n|---|---|---|\n");
	for (int a = 0; a < 3; a++)
		fprintf(f, "| %s | %.1f (%.1f-%.1f) | %d/%d |\n", algo_names[a], med[a], lo[a], hi[a], ok[a], opt.flows);
	fprintf(f, "\nmaglev - random: %+.1f ns (goal <= +10 ns: %s).\n\n", med[2] - med[0],
		med[2] <= med[0] + 10 ? "met" : "NOT met");
	fprintf(f, "Maglev memory per service port (and scope) at M = %u: table %zu bytes (%u entries of 4 bytes "
		   "plus the fingerprint, two per 8-byte array element); the kernel charges %llu bytes for the "
		   "inner map. Only Maglev services have one.\n",
		opt.m ? opt.m : KXP_MAGLEV_M_DEF,
		(size_t)KXP_MAGLEV_PAIRS(opt.m ? opt.m : KXP_MAGLEV_M_DEF) * sizeof(struct kxp_mg_pair),
		opt.m ? opt.m : KXP_MAGLEV_M_DEF, mem);
	fclose(f);
	cJSON_Delete(doc);
	kxp_dp_close(dp);
	return 0;
}
