/* Listings of an instance's pinned maps: svc, backend, ct, stats, maglev,
 * affinity. Each has a table and a JSON twin; they only read maps (no
 * program is loaded). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cli/cli.h"
#include "dataplane/dataplane.h"
#include "dataplane/trace.h" /* kxp_reason_name() */
#include "lib/ip.h"            /* kxp_proto_name() */

static const char svc_help[] =
	"Usage: kxp svc list --instance NAME\n"
	"       kxp svc help\n"
	"\n"
	"One row per kxp_svc4 entry: frontend, kind, scope, ids, backends, algorithm, flags and\n"
	"the per-CPU-summed counters of kxp_stats. JSON adds the backends as \"ip:port\" strings.\n";
static const char backend_help[] =
	"Usage: kxp backend list --instance NAME\n"
	"       kxp backend help\n";
static const char ct_help[] =
	"Usage: kxp ct list --instance NAME\n"
	"       kxp ct gc --instance NAME\n"
	"       kxp ct help\n"
	"\n"
	"list: one row per kxp_ct4 entry: direction, the tuple as seen, the tuple written, frontend id,\n"
	"flags, age and idle time in seconds.\n"
	"gc: delete the entries of flows that expired in both directions (kxp_ct4 is no LRU: the\n"
	"agent does this every 10 s; without an agent, kxp sync and this command do).\n";
static const char stats_help[] =
	"Usage: kxp stats [show] --instance NAME\n"
	"       kxp stats help\n"
	"\n"
	"Packets per reason (kxp_reasons, summed over CPUs).\n";

/* `kxp OBJ [VERB] --instance NAME`; returns 0 and the opened maps, -1 after
 * printing help, 1 on error. */
static int list_args_pos(int argc, char **argv, const char *obj, const char *verb, const char *help,
			 struct kxp_dp **dp, const char **pos);

static int list_args(int argc, char **argv, const char *obj, const char *verb, const char *help, struct kxp_dp **dp)
{
	return list_args_pos(argc, argv, obj, verb, help, dp, NULL);
}

/* The same; pos (if not NULL) receives the one positional argument. */
static int list_args_pos(int argc, char **argv, const char *obj, const char *verb, const char *help,
			 struct kxp_dp **dp, const char **pos)
{
	static const struct option opts[] = {
		{ "instance", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *instance = NULL;
	int c, err;

	if (argc > 1 && argv[1][0] != '-') {
		if (cli_is_prefix(argv[1], "help")) {
			cli_usage(help);
			return -1;
		}
		if (!cli_is_prefix(argv[1], verb)) {
			cli_error("%s: unknown command \"%s\" (see kxp %s help)", obj, argv[1], obj);
			return 1;
		}
		argc--;
		argv++;
	}
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			instance = optarg;
			break;
		case 'h':
			cli_usage(help);
			return -1;
		case ':':
			cli_error("%s %s: %s needs a value", obj, verb, argv[optind - 1]);
			return 1;
		default:
			cli_error("%s %s: unknown option \"%s\" (see kxp %s help)", obj, verb, argv[optind - 1], obj);
			return 1;
		}
	}
	if (pos && optind < argc)
		*pos = argv[optind++];
	if (optind < argc) {
		cli_error("%s %s: unexpected argument \"%s\"", obj, verb, argv[optind]);
		return 1;
	}
	if (pos && !*pos) {
		cli_error("%s %s: which Service? (see kxp %s help)", obj, verb, obj);
		return 1;
	}
	if (!instance) {
		cli_error("%s %s: --instance NAME is required", obj, verb);
		return 1;
	}
	err = kxp_dp_open_pinned(dp, instance);
	if (err == -ENOENT) {
		cli_error("%s %s: instance %s: no pinned maps under /sys/fs/bpf/kxp-%s (run kxp sync first)", obj, verb,
			  instance, instance);
		return 1;
	}
	if (err == -EPROTO) {
		cli_error("%s %s: instance %s: pinned maps have another layout version than this kxp (%d); an older one is migrated by the next kxp sync or agent",
			  obj, verb, instance, KXP_LAYOUT_VERSION);
		return 1;
	}
	if (err) {
		cli_error("%s %s: instance %s: %s", obj, verb, instance, strerror(-err));
		return 1;
	}
	return 0;
}

static void add_flags(cJSON *arr, char *text, size_t len, unsigned flags, const char *const *names, int n)
{
	size_t off = 0;

	text[0] = 0;
	for (int i = 0; i < n; i++) {
		if (!(flags & (1u << i)) || !names[i])
			continue;
		if (arr)
			cJSON_AddItemToArray(arr, cJSON_CreateString(names[i]));
		off += snprintf(text + off, off < len ? len - off : 0, "%s%s", off ? "," : "", names[i]);
	}
	if (!off)
		snprintf(text, len, "-");
}

static const char *kind_name(unsigned k)
{
	static const char *const n[] = { "none", "clusterip", "nodeport", "loadbalancer", "externalip" };

	return k < sizeof(n) / sizeof(n[0]) ? n[k] : "?";
}

static const char *algo_name(unsigned a)
{
	static const char *const n[] = { "random", "rr", "maglev" };

	return a < sizeof(n) / sizeof(n[0]) ? n[a] : "?";
}

static const char *const svc_flag_names[] = { "split", "local_set", "reject", "wildcard", "affinity",
					      "lbsr", "external", "etp_local", "itp_local" };
static const char *const be_flag_names[] = { "local", "terminating" };
static const char *const ct_flag_names[] = { "snat",     "seen_reply", "closing", "hostns",     "local_be",
						"fin_orig", "fin_reply",  "rst",     "close_first" };

/* Per-CPU values summed; buf holds ncpu values of size sz (rounded to 8). */
static int percpu_sum_stats(int fd, uint32_t key, struct kxp_stats *out)
{
	int ncpu = libbpf_num_possible_cpus();
	struct kxp_stats *v;

	memset(out, 0, sizeof(*out));
	if (ncpu <= 0)
		return -EINVAL;
	v = calloc(ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, &key, v)) {
		free(v);
		return -errno;
	}
	for (int i = 0; i < ncpu; i++) {
		out->packets += v[i].packets;
		out->bytes += v[i].bytes;
		out->drops += v[i].drops;
		out->rejects += v[i].rejects;
		out->passed += v[i].passed;
		out->snat_fail += v[i].snat_fail;
	}
	free(v);
	return 0;
}

struct svc_row {
	struct kxp_svc_key k;
	struct kxp_svc_val v;
};

static int cmp_svc(const void *x, const void *y)
{
	const struct svc_row *a = x, *b = y;
	uint32_t aa = ntohl(a->k.addr), ba = ntohl(b->k.addr);

	if (aa != ba)
		return aa < ba ? -1 : 1;
	if (a->k.port != b->k.port)
		return ntohs(a->k.port) < ntohs(b->k.port) ? -1 : 1;
	if (a->k.proto != b->k.proto)
		return a->k.proto < b->k.proto ? -1 : 1;
	return (a->k.scope > b->k.scope) - (a->k.scope < b->k.scope);
}

/* Every entry of a map into a growing array of {key, value} records. */
struct rows {
	uint8_t *v;
	size_t n, cap, ksz, vsz;
};

static int rows_add(struct rows *r, const void *k, const void *v)
{
	if (r->n == r->cap) {
		uint8_t *nv = realloc(r->v, (r->cap = r->cap ? r->cap * 2 : 64) * (r->ksz + r->vsz));

		if (!nv)
			return -ENOMEM;
		r->v = nv;
	}
	memcpy(r->v + r->n * (r->ksz + r->vsz), k, r->ksz);
	memcpy(r->v + r->n * (r->ksz + r->vsz) + r->ksz, v, r->vsz);
	r->n++;
	return 0;
}

static int row_by_id(void *ctx, uint32_t id, const void *v)
{
	return rows_add(ctx, &id, v);
}

/* Every entry of a hash; of an array by id (kxp_backend4, kxp_revnat4) the
 * ids in use, whose values are not all zero. */
static int dump_map(int fd, size_t ksz, size_t vsz, void **out, size_t *n)
{
	struct rows r = { .ksz = ksz, .vsz = vsz };
	uint8_t key[64], next[64], val[256];
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	void *prev = NULL;
	int err = 0;

	*out = NULL;
	*n = 0;
	if (ksz > sizeof(key) || vsz > sizeof(val))
		return -EINVAL;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len) && info.type == BPF_MAP_TYPE_ARRAY && ksz == sizeof(uint32_t)) {
		err = kxp_array_walk(fd, row_by_id, &r);
	} else {
		while (!err && bpf_map_get_next_key(fd, prev, next) == 0) {
			memcpy(key, next, ksz);
			prev = key;
			if (bpf_map_lookup_elem(fd, key, val))
				continue; /* gone meanwhile */
			err = rows_add(&r, key, val);
		}
	}
	if (err) {
		free(r.v);
		return err;
	}
	*out = r.v;
	*n = r.n;
	return 0;
}

static void frontend_str(const struct kxp_svc_key *k, char *buf, size_t len)
{
	char a[INET_ADDRSTRLEN], pb[8];

	inet_ntop(AF_INET, &k->addr, a, sizeof(a));
	if (!k->port && !k->proto)
		snprintf(buf, len, "%s:*", a);
	else
		snprintf(buf, len, "%s:%u/%s", a, ntohs(k->port), kxp_proto_name(k->proto, pb));
}

int cmd_svc(int argc, char **argv)
{
	struct kxp_dp *dp = NULL;
	struct svc_row *rows = NULL;
	cJSON *doc = NULL;
	size_t n = 0;
	int ret, err;

	ret = list_args(argc, argv, "svc", "list", svc_help, &dp);
	if (ret)
		return ret < 0 ? 0 : ret;
	err = dump_map(kxp_dp_map_fd(dp, KXP_MAP_SVC), sizeof(struct kxp_svc_key), sizeof(struct kxp_svc_val),
		       (void **)&rows, &n);
	if (err) {
		cli_error("svc list: reading kxp_svc4: %s", strerror(-err));
		kxp_dp_close(dp);
		return 1;
	}
	qsort(rows, n, sizeof(*rows), cmp_svc);
	if (kxp_cli.json)
		doc = cJSON_CreateArray();
	else
		printf("%-24s %-12s %-8s %5s %5s %8s %-6s %-22s %10s %12s %8s %8s %8s %9s\n", "FRONTEND", "KIND",
		       "SCOPE", "FE", "SP", "BACKENDS", "ALGO", "FLAGS", "PACKETS", "BYTES", "DROPS", "REJECTS", "PASSED",
		       "SNAT_FAIL");
	for (size_t i = 0; i < n; i++) {
		const struct kxp_svc_key *k = &rows[i].k;
		const struct kxp_svc_val *v = &rows[i].v;
		char fe[48], flags[160], pb[8], ab[INET_ADDRSTRLEN], bb[32];
		struct kxp_stats s;
		cJSON *o = NULL, *fl = NULL, *bes = NULL;

		frontend_str(k, fe, sizeof(fe));
		percpu_sum_stats(kxp_dp_map_fd(dp, KXP_MAP_STATS), v->fe_id, &s);
		if (doc) {
			o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "frontend", fe);
			cJSON_AddStringToObject(o, "address", inet_ntop(AF_INET, &k->addr, ab, sizeof(ab)));
			cJSON_AddNumberToObject(o, "port", ntohs(k->port));
			cJSON_AddStringToObject(o, "protocol", kxp_proto_name(k->proto, pb));
			cJSON_AddStringToObject(o, "kind", kind_name(v->kind));
			cJSON_AddStringToObject(o, "scope", k->scope == KXP_SCOPE_INTERNAL ? "internal" : "default");
			cJSON_AddNumberToObject(o, "fe_id", v->fe_id);
			cJSON_AddNumberToObject(o, "sp_id", v->sp_id);
			cJSON_AddNumberToObject(o, "count", v->count);
			bes = cJSON_AddArrayToObject(o, "backends");
			fl = cJSON_AddArrayToObject(o, "flags");
			cJSON_AddStringToObject(o, "algo", algo_name(v->algo));
			cJSON_AddNumberToObject(o, "affinity_timeout", v->affinity_timeout);
			cJSON_AddNumberToObject(o, "packets", (double)s.packets);
			cJSON_AddNumberToObject(o, "bytes", (double)s.bytes);
			cJSON_AddNumberToObject(o, "drops", (double)s.drops);
			cJSON_AddNumberToObject(o, "rejects", (double)s.rejects);
			cJSON_AddNumberToObject(o, "passed", (double)s.passed);
			cJSON_AddNumberToObject(o, "snat_fail", (double)s.snat_fail);
			cJSON_AddItemToArray(doc, o);
		}
		add_flags(fl, flags, sizeof(flags), v->flags, svc_flag_names,
			  sizeof(svc_flag_names) / sizeof(svc_flag_names[0]));
		for (uint32_t j = 0; bes && j < v->count; j++) {
			__u32 idx = v->base + j, id;
			struct kxp_backend b;

			if (bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_SLOT), &idx, &id) || !id ||
			    bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_BACKEND), &id, &b) || !b.addr) {
				cJSON_AddItemToArray(bes, cJSON_CreateNull()); /* slot or backend missing */
				continue;
			}
			cJSON_AddItemToArray(bes, cJSON_CreateString(cli_ip_port(b.addr, b.port, bb, sizeof(bb))));
		}
		if (!doc)
			printf("%-24s %-12s %-8s %5u %5u %8u %-6s %-22s %10llu %12llu %8llu %8llu %8llu %9llu\n", fe,
			       kind_name(v->kind), k->scope == KXP_SCOPE_INTERNAL ? "internal" : "default", v->fe_id,
			       v->sp_id, v->count, algo_name(v->algo), flags, (unsigned long long)s.packets,
			       (unsigned long long)s.bytes, (unsigned long long)s.drops, (unsigned long long)s.rejects,
			       (unsigned long long)s.passed, (unsigned long long)s.snat_fail);
	}
	if (doc)
		cli_print_json(doc);
	free(rows);
	kxp_dp_close(dp);
	return 0;
}

struct be_row {
	__u32 id;
	struct kxp_backend b;
};

static int cmp_be(const void *x, const void *y)
{
	const struct be_row *a = x, *b = y;

	return (a->id > b->id) - (a->id < b->id);
}

int cmd_backend(int argc, char **argv)
{
	struct kxp_dp *dp = NULL;
	struct be_row *rows = NULL;
	cJSON *doc = NULL;
	size_t n = 0;
	int ret, err;

	ret = list_args(argc, argv, "backend", "list", backend_help, &dp);
	if (ret)
		return ret < 0 ? 0 : ret;
	err = dump_map(kxp_dp_map_fd(dp, KXP_MAP_BACKEND), sizeof(__u32), sizeof(struct kxp_backend), (void **)&rows,
		       &n);
	if (err) {
		cli_error("backend list: reading kxp_backend4: %s", strerror(-err));
		kxp_dp_close(dp);
		return 1;
	}
	qsort(rows, n, sizeof(*rows), cmp_be);
	if (kxp_cli.json)
		doc = cJSON_CreateArray();
	else
		printf("%6s %-22s %-5s %s\n", "ID", "BACKEND", "PROTO", "FLAGS");
	for (size_t i = 0; i < n; i++) {
		char bb[32], ab[INET_ADDRSTRLEN], pb[8], flags[64];
		cJSON *o = NULL, *fl = NULL;

		cli_ip_port(rows[i].b.addr, rows[i].b.port, bb, sizeof(bb));
		if (doc) {
			o = cJSON_CreateObject();
			cJSON_AddNumberToObject(o, "id", rows[i].id);
			cJSON_AddStringToObject(o, "backend", bb);
			cJSON_AddStringToObject(o, "address", inet_ntop(AF_INET, &rows[i].b.addr, ab, sizeof(ab)));
			cJSON_AddNumberToObject(o, "port", ntohs(rows[i].b.port));
			cJSON_AddStringToObject(o, "protocol", kxp_proto_name(rows[i].b.proto, pb));
			fl = cJSON_AddArrayToObject(o, "flags");
			cJSON_AddItemToArray(doc, o);
		}
		add_flags(fl, flags, sizeof(flags), rows[i].b.flags, be_flag_names,
			  sizeof(be_flag_names) / sizeof(be_flag_names[0]));
		if (!doc)
			printf("%6u %-22s %-5s %s\n", rows[i].id, bb, kxp_proto_name(rows[i].b.proto, pb), flags);
	}
	if (doc)
		cli_print_json(doc);
	free(rows);
	kxp_dp_close(dp);
	return 0;
}

struct ct_row {
	struct kxp_flow4 k;
	struct kxp_ct_val v;
};

static int cmp_ct(const void *x, const void *y)
{
	const struct ct_row *a = x, *b = y;

	return (a->v.created > b->v.created) - (a->v.created < b->v.created);
}

static double secs_since(uint64_t now, uint64_t t)
{
	return t && now > t ? (double)(now - t) / 1e9 : 0.0;
}

static int ct_gc(int argc, char **argv)
{
	struct kxp_ct_gc_stats st;
	struct kxp_dp *dp = NULL;
	int ret, err;

	ret = list_args(argc, argv, "ct", "gc", ct_help, &dp);
	if (ret)
		return ret < 0 ? 0 : ret;
	err = kxp_dp_ct_gc(dp, &st);
	kxp_dp_close(dp);
	if (err) {
		cli_error("ct gc: kxp_ct4: %s", strerror(-err));
		return 1;
	}
	if (kxp_cli.json) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddNumberToObject(o, "scanned", (double)st.scanned);
		cJSON_AddNumberToObject(o, "deleted", (double)st.deleted);
		cJSON_AddNumberToObject(o, "ms", st.ms);
		cli_print_json(o);
	} else {
		printf("%llu entries scanned, %llu expired and deleted (%.1f ms)\n", (unsigned long long)st.scanned,
		       (unsigned long long)st.deleted, st.ms);
	}
	return 0;
}

int cmd_ct(int argc, char **argv)
{
	struct kxp_dp *dp = NULL;
	struct ct_row *rows = NULL;
	struct timespec ts;
	cJSON *doc = NULL;
	uint64_t now;
	size_t n = 0;
	int ret, err;

	if (argc > 1 && argv[1][0] != '-' && cli_is_prefix(argv[1], "gc"))
		return ct_gc(argc, argv);
	ret = list_args(argc, argv, "ct", "list", ct_help, &dp);
	if (ret)
		return ret < 0 ? 0 : ret;
	err = dump_map(kxp_dp_map_fd(dp, KXP_MAP_CT), sizeof(struct kxp_flow4), sizeof(struct kxp_ct_val),
		       (void **)&rows, &n);
	if (err) {
		cli_error("ct list: reading kxp_ct4: %s", strerror(-err));
		kxp_dp_close(dp);
		return 1;
	}
	/* bpf_ktime_get_ns() is CLOCK_MONOTONIC */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	qsort(rows, n, sizeof(*rows), cmp_ct);
	if (kxp_cli.json)
		doc = cJSON_CreateArray();
	else
		printf("%-5s %-5s %-45s %-45s %5s %-18s %8s %8s\n", "DIR", "PROTO", "ORIGINAL", "TRANSLATED", "FE",
		       "FLAGS", "AGE", "IDLE");
	for (size_t i = 0; i < n; i++) {
		const struct kxp_flow4 *k = &rows[i].k;
		const struct kxp_ct_val *v = &rows[i].v;
		char os[32], od[32], ns_[32], nd[32], pb[8], flags[64], orig[72], tr[72];
		const char *dir = k->dir == KXP_DIR_REPLY ? "reply" : "fwd";
		cJSON *o = NULL, *fl = NULL, *t;

		cli_ip_port(k->saddr, k->sport, os, sizeof(os));
		cli_ip_port(k->daddr, k->dport, od, sizeof(od));
		cli_ip_port(v->nat.saddr, v->nat.sport, ns_, sizeof(ns_));
		cli_ip_port(v->nat.daddr, v->nat.dport, nd, sizeof(nd));
		if (doc) {
			o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "direction", dir);
			cJSON_AddStringToObject(o, "protocol", kxp_proto_name(k->proto, pb));
			t = cJSON_AddObjectToObject(o, "original");
			cJSON_AddStringToObject(t, "src", os);
			cJSON_AddStringToObject(t, "dst", od);
			t = cJSON_AddObjectToObject(o, "translated");
			cJSON_AddStringToObject(t, "src", ns_);
			cJSON_AddStringToObject(t, "dst", nd);
			cJSON_AddNumberToObject(o, "fe_id", v->fe_id);
			cJSON_AddStringToObject(o, "kind", kind_name(v->kind));
			fl = cJSON_AddArrayToObject(o, "flags");
			cJSON_AddNumberToObject(o, "age", secs_since(now, v->created));
			cJSON_AddNumberToObject(o, "idle", secs_since(now, v->last_seen));
			cJSON_AddItemToArray(doc, o);
		}
		add_flags(fl, flags, sizeof(flags), v->flags, ct_flag_names,
			  sizeof(ct_flag_names) / sizeof(ct_flag_names[0]));
		if (!doc) {
			snprintf(orig, sizeof(orig), "%s -> %s", os, od);
			snprintf(tr, sizeof(tr), "%s -> %s", ns_, nd);
			printf("%-5s %-5s %-45s %-45s %5u %-18s %8.1f %8.1f\n", dir, kxp_proto_name(k->proto, pb), orig, tr,
			       v->fe_id, flags, secs_since(now, v->created), secs_since(now, v->last_seen));
		}
	}
	if (doc)
		cli_print_json(doc);
	free(rows);
	kxp_dp_close(dp);
	return 0;
}

int cmd_stats(int argc, char **argv)
{
	int ncpu = libbpf_num_possible_cpus();
	struct kxp_dp *dp = NULL;
	cJSON *doc = NULL, *arr = NULL;
	uint64_t *v = NULL, total = 0;
	int ret;

	ret = list_args(argc, argv, "stats", "show", stats_help, &dp);
	if (ret)
		return ret < 0 ? 0 : ret;
	v = ncpu > 0 ? calloc(ncpu, sizeof(*v)) : NULL;
	if (!v) {
		cli_error("stats: out of memory");
		kxp_dp_close(dp);
		return 1;
	}
	if (kxp_cli.json) {
		doc = cJSON_CreateObject();
		arr = cJSON_AddArrayToObject(doc, "reasons");
	} else {
		printf("%-4s %-16s %12s\n", "ID", "REASON", "PACKETS");
	}
	for (unsigned r = 0; r < KXP_R_MAX; r++) {
		const char *name = kxp_reason_name(r);
		uint64_t sum = 0;

		if (name && !strcmp(name, "unknown"))
			name = NULL; /* a slot kept free for future reasons */

		if (bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_REASONS), &r, v))
			continue;
		for (int c = 0; c < ncpu; c++)
			sum += v[c];
		/* unnamed slots are room to append: shown only if something counted there */
		if (!name && !sum)
			continue;
		total += sum;
		if (arr) {
			cJSON *o = cJSON_CreateObject();

			cJSON_AddNumberToObject(o, "id", r);
			if (name)
				cJSON_AddStringToObject(o, "reason", name);
			else
				cJSON_AddNullToObject(o, "reason");
			cJSON_AddNumberToObject(o, "packets", (double)sum);
			cJSON_AddItemToArray(arr, o);
		} else {
			printf("%-4u %-16s %12llu\n", r, name ? name : "?", (unsigned long long)sum);
		}
	}
	if (doc) {
		cJSON_AddNumberToObject(doc, "total", (double)total);
		cli_print_json(doc);
	}
	free(v);
	kxp_dp_close(dp);
	return 0;
}

/* ---- selection: kxp maglev show, kxp affinity list ------------------------- */

static const char maglev_help[] =
	"Usage: kxp maglev show --instance NAME NAMESPACE/SERVICE[:PORT]\n"
	"       kxp maglev help\n"
	"\n"
	"For each endpoint set (cluster, local) of the Service's ports (PORT: the port's name or\n"
	"number) that has a Maglev table: M, the table's memory (kernel accounting), and each\n"
	"backend's entries and share of the table.\n";
static const char affinity_help[] =
	"Usage: kxp affinity list --instance NAME\n"
	"       kxp affinity help\n"
	"\n"
	"One row per kxp_affinity4 entry: client, set (service port and scope), backend, seconds\n"
	"since the last new connection used it.\n";

struct spname_row {
	uint32_t sp;
	struct kxp_spname n;
};

struct svc_row_sel {
	struct kxp_svc_key k;
	struct kxp_svc_val v;
};

/* "memlock:" of a map fd: what the kernel charges for it. */
static unsigned long long map_memlock(int fd)
{
	char path[64], line[128];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* Does set key "ns/name:port/PROTO:scope" belong to svc ("ns/name") and,
 * if port is given, that port (name, or a frontend port number of sp)? */
static bool set_matches(const char *key, const char *svc, const char *port, uint32_t sp,
			const struct svc_row_sel *fes, size_t n_fes)
{
	size_t l = strlen(svc);
	const char *pn, *slash;
	char *end;
	unsigned long num;

	if (strncmp(key, svc, l) || key[l] != ':')
		return false;
	if (!port)
		return true;
	pn = key + l + 1;
	slash = strchr(pn, '/');
	if (slash && (size_t)(slash - pn) == strlen(port) && !strncmp(pn, port, strlen(port)))
		return true;
	num = strtoul(port, &end, 10);
	if (*end || !num || num > 65535)
		return false;
	for (size_t i = 0; i < n_fes; i++)
		if (fes[i].v.sp_id == sp && ntohs(fes[i].k.port) == num)
			return true;
	return false;
}

int cmd_maglev(int argc, char **argv)
{
	struct spname_row *names = NULL;
	struct svc_row_sel *fes = NULL;
	struct kxp_dp *dp = NULL;
	const char *target = NULL;
	char svc[256], *port;
	size_t n_names = 0, n_fes = 0, shown = 0;
	cJSON *doc = NULL, *sets = NULL;
	int ret, err, status = 0;
	uint32_t m;

	ret = list_args_pos(argc, argv, "maglev", "show", maglev_help, &dp, &target);
	if (ret)
		return ret < 0 ? 0 : ret;
	snprintf(svc, sizeof(svc), "%s", target);
	port = strrchr(svc, ':');
	if (port)
		*port++ = 0;
	if (!strchr(svc, '/')) {
		cli_error("maglev show: \"%s\": want NAMESPACE/SERVICE[:PORT]", target);
		kxp_dp_close(dp);
		return 1;
	}
	m = 0;
	{
		struct kxp_config cfg;
		__u32 zero = 0;

		if (!bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_CONFIG), &zero, &cfg))
			m = cfg.maglev_m;
	}
	err = dump_map(kxp_dp_map_fd(dp, KXP_MAP_SPNAME), sizeof(__u32), sizeof(struct kxp_spname), (void **)&names,
		       &n_names);
	if (!err)
		err = dump_map(kxp_dp_map_fd(dp, KXP_MAP_SVC), sizeof(struct kxp_svc_key), sizeof(struct kxp_svc_val),
			       (void **)&fes, &n_fes);
	if (err) {
		cli_error("maglev show: reading the maps: %s", strerror(-err));
		status = 1;
		goto out;
	}
	if (kxp_cli.json) {
		doc = cJSON_CreateObject();
		cJSON_AddStringToObject(doc, "service", target);
		cJSON_AddNumberToObject(doc, "m", m);
		sets = cJSON_AddArrayToObject(doc, "sets");
	}
	for (size_t i = 0; i < n_names; i++) {
		uint32_t sp = names[i].sp, inner_id, *cnt = NULL, *ids = NULL, n_ids = 0, pairs = KXP_MAGLEV_PAIRS(m);
		struct kxp_mg_pair pr;
		unsigned long long mem;
		cJSON *so = NULL, *bes = NULL;
		int ifd;

		names[i].n.key[KXP_SPNAME_LEN - 1] = 0;
		if (!set_matches(names[i].n.key, svc, port, sp, fes, n_fes))
			continue;
		if (bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_MAGLEV), &sp, &inner_id) ||
		    (ifd = bpf_map_get_fd_by_id(inner_id)) < 0) {
			if (!doc)
				printf("%s (sp %u): no Maglev table (the Service does not use maglev)\n", names[i].n.key, sp);
			continue;
		}
		shown++;
		mem = map_memlock(ifd);
		/* entries per backend id (a set has at most m backends) */
		cnt = calloc(m + 1, sizeof(*cnt));
		ids = calloc(m + 1, sizeof(*ids));
		for (uint32_t p = 0; cnt && ids && p < pairs; p++) {
			if (bpf_map_lookup_elem(ifd, &p, &pr))
				continue;
			for (int h = 0; h < 2; h++) {
				uint32_t e = p * 2 + (uint32_t)h, j;

				if (e >= m)
					break;
				for (j = 0; j < n_ids && ids[j] != pr.id[h]; j++)
					;
				if (j == n_ids)
					ids[n_ids++] = pr.id[h];
				cnt[j]++;
			}
		}
		close(ifd);
		if (doc) {
			so = cJSON_CreateObject();
			cJSON_AddStringToObject(so, "set", names[i].n.key);
			cJSON_AddNumberToObject(so, "sp_id", sp);
			cJSON_AddNumberToObject(so, "m", m);
			cJSON_AddNumberToObject(so, "table_bytes", (double)pairs * sizeof(struct kxp_mg_pair));
			cJSON_AddNumberToObject(so, "memlock_bytes", (double)mem);
			bes = cJSON_AddArrayToObject(so, "backends");
			cJSON_AddItemToArray(sets, so);
		} else {
			printf("%s (sp %u): M=%u, table %zu bytes, kernel memlock %llu bytes\n", names[i].n.key, sp, m,
			       (size_t)pairs * sizeof(struct kxp_mg_pair), mem);
			printf("  %6s %-22s %8s %7s\n", "ID", "BACKEND", "ENTRIES", "SHARE");
		}
		for (uint32_t j = 0; cnt && ids && j < n_ids; j++) {
			struct kxp_backend b = {};
			char bb[32];

			bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_BACKEND), &ids[j], &b);
			cli_ip_port(b.addr, b.port, bb, sizeof(bb));
			if (doc) {
				cJSON *o = cJSON_CreateObject();

				cJSON_AddNumberToObject(o, "id", ids[j]);
				cJSON_AddStringToObject(o, "backend", bb);
				cJSON_AddNumberToObject(o, "entries", cnt[j]);
				cJSON_AddNumberToObject(o, "share", m ? (double)cnt[j] / m : 0);
				cJSON_AddItemToArray(bes, o);
			} else {
				printf("  %6u %-22s %8u %6.2f%%\n", ids[j], bb, cnt[j], m ? 100.0 * cnt[j] / m : 0);
			}
		}
		free(cnt);
		free(ids);
	}
	if (doc) {
		cli_print_json(doc);
	} else if (!shown) {
		cli_error("maglev show: no Maglev table for %s", target);
		status = 1;
	}
out:
	free(names);
	free(fes);
	kxp_dp_close(dp);
	return status;
}

struct aff_row {
	struct kxp_aff_key k;
	struct kxp_aff_val v;
};

int cmd_affinity(int argc, char **argv)
{
	struct spname_row *names = NULL;
	struct aff_row *rows = NULL;
	struct kxp_dp *dp = NULL;
	size_t n = 0, n_names = 0;
	struct timespec ts;
	cJSON *doc = NULL;
	uint64_t now;
	int ret, err;

	ret = list_args(argc, argv, "affinity", "list", affinity_help, &dp);
	if (ret)
		return ret < 0 ? 0 : ret;
	err = dump_map(kxp_dp_map_fd(dp, KXP_MAP_AFFINITY), sizeof(struct kxp_aff_key), sizeof(struct kxp_aff_val),
		       (void **)&rows, &n);
	if (!err)
		err = dump_map(kxp_dp_map_fd(dp, KXP_MAP_SPNAME), sizeof(__u32), sizeof(struct kxp_spname),
			       (void **)&names, &n_names);
	if (err) {
		cli_error("affinity list: reading the maps: %s", strerror(-err));
		free(rows);
		kxp_dp_close(dp);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	if (kxp_cli.json)
		doc = cJSON_CreateArray();
	else
		printf("%-15s %-48s %-22s %s\n", "CLIENT", "SET", "BACKEND", "IDLE");
	for (size_t i = 0; i < n; i++) {
		char cb[INET_ADDRSTRLEN], bb[32];
		const char *set = "?";

		for (size_t j = 0; j < n_names; j++)
			if (names[j].sp == rows[i].k.sp_id) {
				names[j].n.key[KXP_SPNAME_LEN - 1] = 0;
				set = names[j].n.key;
			}
		inet_ntop(AF_INET, &rows[i].k.client, cb, sizeof(cb));
		cli_ip_port(rows[i].v.addr, rows[i].v.port, bb, sizeof(bb));
		if (doc) {
			cJSON *o = cJSON_CreateObject();

			cJSON_AddStringToObject(o, "client", cb);
			cJSON_AddNumberToObject(o, "sp_id", rows[i].k.sp_id);
			cJSON_AddStringToObject(o, "set", set);
			cJSON_AddStringToObject(o, "backend", bb);
			cJSON_AddNumberToObject(o, "backend_id", rows[i].v.backend_id);
			cJSON_AddNumberToObject(o, "idle_s", secs_since(now, rows[i].v.last_used));
			cJSON_AddItemToArray(doc, o);
		} else {
			printf("%-15s %-48s %-22s %.1f\n", cb, set, bb, secs_since(now, rows[i].v.last_used));
		}
	}
	if (doc)
		cli_print_json(doc);
	free(rows);
	free(names);
	kxp_dp_close(dp);
	return 0;
}
