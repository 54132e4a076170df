/* Map writer and loader: real maps (kxp_dp_open), hand-built desired state,
 * map contents read back with the bpf syscall. Needs root and bpffs. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dataplane/dataplane.h"
#include "../lib/testlib.h"

#define TCP 6
#define UDP 17

static uint32_t ip(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

/* A small, editable desired state: service web (ClusterIP + NodePort with
 * source ranges, a wildcard entry) and service dns (UDP). */
struct fixture {
	struct kxp_d_backend web_be[4];
	struct kxp_d_backend dns_be[1];
	struct kxp_d_set sets[2];
	struct kxp_d_frontend fe[4];
	struct kxp_cidr4 lbsr[1];
	struct kxp_d_nodeip nip[1];
	struct kxp_desired d;
};

static void fixture_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->web_be[0] = (struct kxp_d_backend){ ip("10.0.1.1"), 8080, TCP, KXP_BE_F_LOCAL };
	f->web_be[1] = (struct kxp_d_backend){ ip("10.0.1.2"), 8080, TCP, 0 };
	f->dns_be[0] = (struct kxp_d_backend){ ip("10.0.1.3"), 53, UDP, KXP_BE_F_LOCAL };
	f->sets[0] = (struct kxp_d_set){ .key = "default/web:http/TCP:cluster", .be = f->web_be, .n_be = 2 };
	f->sets[1] = (struct kxp_d_set){ .key = "kube-system/dns:dns/UDP:cluster", .be = f->dns_be, .n_be = 1,
					 .algo = KXP_ALGO_RR, .affinity_timeout = 30 };
	f->lbsr[0] = (struct kxp_cidr4){ ip("198.51.100.0"), ip("255.255.255.0") };
	f->fe[0] = (struct kxp_d_frontend){ .addr = ip("10.96.0.10"), .port = 80, .proto = TCP, .kind = KXP_FE_CLUSTERIP,
					    .set = 0, .svc = "default/web", .port_name = "http" };
	f->fe[1] = (struct kxp_d_frontend){ .addr = ip("192.168.1.1"), .port = 30080, .proto = TCP,
					    .kind = KXP_FE_NODEPORT, .flags = KXP_SVC_F_EXTERNAL | KXP_SVC_F_LBSR,
					    .set = 0, .svc = "default/web", .port_name = "http", .lbsr = f->lbsr,
					    .n_lbsr = 1 };
	f->fe[2] = (struct kxp_d_frontend){ .addr = ip("10.96.0.10"), .kind = KXP_FE_CLUSTERIP,
					    .flags = KXP_SVC_F_WILDCARD, .set = -1, .svc = "default/web" };
	f->fe[3] = (struct kxp_d_frontend){ .addr = ip("10.96.0.53"), .port = 53, .proto = UDP,
					    .kind = KXP_FE_CLUSTERIP, .flags = KXP_SVC_F_AFFINITY, .set = 1,
					    .svc = "kube-system/dns", .port_name = "dns" };
	f->nip[0] = (struct kxp_d_nodeip){ ip("192.168.1.1"), KXP_NODEIP_F_LOCAL | KXP_NODEIP_F_NODEPORT |
							     KXP_NODEIP_F_PRIMARY };
	f->d.fe = f->fe;
	f->d.n_fe = 4;
	f->d.sets = f->sets;
	f->d.n_sets = 2;
	f->d.nodeips = f->nip;
	f->d.n_nodeips = 1;
	f->d.cfg.n_cluster = 1;
	f->d.cfg.cluster[0] = (struct kxp_cidr4){ ip("10.0.0.0"), ip("255.255.0.0") };
}

static bool need_root(void)
{
	if (geteuid() != 0) {
		kxp_test_skip("needs root (BPF maps)");
		return false;
	}
	return true;
}

/* Entries in use (kxp_map_count: keys of a hash, non-zero values of an array by id). */
static int map_count(const struct kxp_dp *dp, enum kxp_map_id id)
{
	return (int)kxp_map_count(kxp_dp_map_fd(dp, id));
}

static bool svc_get(const struct kxp_dp *dp, const char *addr, uint16_t port, uint8_t proto, uint8_t scope,
		    struct kxp_svc_val *v)
{
	struct kxp_svc_key k = { .addr = ip(addr), .port = htons(port), .proto = proto, .scope = scope };

	return bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_SVC), &k, v) == 0;
}

/* Backend id at slot i of set sp (in the range a frontend of sp names), 0
 * if absent or no frontend names sp. */
static uint32_t slot_get(const struct kxp_dp *dp, uint32_t sp, uint32_t i)
{
	int fd = kxp_dp_map_fd(dp, KXP_MAP_SVC);
	struct kxp_svc_key k, nk;
	struct kxp_svc_val v;
	uint32_t id = 0, idx;
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &nk) == 0) {
		k = nk;
		prev = &k;
		if (bpf_map_lookup_elem(fd, &k, &v) || v.sp_id != sp)
			continue;
		idx = v.base + i;
		bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_SLOT), &idx, &id);
		return id;
	}
	return 0;
}

static bool be_get(const struct kxp_dp *dp, uint32_t id, struct kxp_backend *b)
{
	/* an array by id: an unused id reads as zero */
	return bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_BACKEND), &id, b) == 0 && b->addr;
}

static bool be_at(const struct kxp_dp *dp, uint32_t sp, uint32_t i, const char *addr, uint16_t port)
{
	struct kxp_backend b;

	return be_get(dp, slot_get(dp, sp, i), &b) && b.addr == ip(addr) && b.port == htons(port);
}

KXP_TEST(writer_apply_writes_exact_entries)
{
	struct kxp_dp *dp = NULL;
	struct kxp_apply_stats st;
	struct kxp_svc_val ci, np, wc, dns;
	struct kxp_revnat rn;
	struct kxp_config cfg;
	struct kxp_nodeip ni;
	struct kxp_backend b;
	struct fixture f;
	uint32_t zero = 0, addr;
	uint8_t allow = 0;

	if (!need_root())
		return;
	fixture_init(&f);
	if (!ASSERT_OK(kxp_dp_open(&dp, &(struct kxp_dp_opts){ .no_pin = true }), "open"))
		return;
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, &st), "apply"))
		goto out;
	ASSERT_EQ(st.fe_added, 4, "fe_added");
	ASSERT_EQ(st.be_added, 3, "be_added");
	ASSERT_EQ(st.slots_written, 3, "slots_written");
	ASSERT_EQ(st.lbsr_written, 1, "lbsr_written");
	ASSERT_EQ(map_count(dp, KXP_MAP_SVC), 4, "svc entries");
	ASSERT_EQ(map_count(dp, KXP_MAP_SLOT), 3, "slot entries");
	ASSERT_EQ(map_count(dp, KXP_MAP_BACKEND), 3, "backend entries");
	ASSERT_EQ(map_count(dp, KXP_MAP_REVNAT), 4, "revnat entries");
	ASSERT_EQ(map_count(dp, KXP_MAP_NODEIP), 1, "nodeip entries");
	ASSERT_EQ(map_count(dp, KXP_MAP_LBSR), 1, "lbsr entries");

	if (!ASSERT_TRUE(svc_get(dp, "10.96.0.10", 80, TCP, 0, &ci), "clusterip entry") ||
	    !ASSERT_TRUE(svc_get(dp, "192.168.1.1", 30080, TCP, 0, &np), "nodeport entry") ||
	    !ASSERT_TRUE(svc_get(dp, "10.96.0.10", 0, 0, 0, &wc), "wildcard entry") ||
	    !ASSERT_TRUE(svc_get(dp, "10.96.0.53", 53, UDP, 0, &dns), "dns entry"))
		goto out;
	/* dense ids from 1, in the order the frontends came */
	ASSERT_EQ(ci.fe_id, 1, "clusterip fe_id");
	ASSERT_EQ(np.fe_id, 2, "nodeport fe_id");
	ASSERT_EQ(wc.fe_id, 3, "wildcard fe_id");
	ASSERT_EQ(dns.fe_id, 4, "dns fe_id");
	ASSERT_EQ(ci.sp_id, 1, "web sp_id");
	ASSERT_EQ(np.sp_id, 1, "nodeport shares the web set");
	ASSERT_EQ(dns.sp_id, 2, "dns sp_id");
	ASSERT_EQ(wc.sp_id, 0, "wildcard has no set");
	ASSERT_EQ(ci.count, 2, "web count");
	ASSERT_EQ(wc.count, 0, "wildcard count");
	ASSERT_EQ(wc.flags, KXP_SVC_F_WILDCARD, "wildcard flags");
	ASSERT_EQ(np.flags, KXP_SVC_F_EXTERNAL | KXP_SVC_F_LBSR, "nodeport flags");
	ASSERT_EQ(np.kind, KXP_FE_NODEPORT, "nodeport kind");
	ASSERT_EQ(dns.algo, KXP_ALGO_RR, "dns algo");
	ASSERT_EQ(dns.affinity_timeout, 30, "dns affinity");
	ASSERT_TRUE(be_at(dp, 1, 0, "10.0.1.1", 8080), "web slot 0");
	ASSERT_TRUE(be_at(dp, 1, 1, "10.0.1.2", 8080), "web slot 1");
	ASSERT_TRUE(be_at(dp, 2, 0, "10.0.1.3", 53), "dns slot 0");
	if (ASSERT_TRUE(be_get(dp, slot_get(dp, 1, 0), &b), "backend"))
		ASSERT_EQ(b.flags, KXP_BE_F_LOCAL, "backend flags");
	if (ASSERT_OK(bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_REVNAT), &np.fe_id, &rn), "revnat")) {
		ASSERT_EQ(rn.addr, ip("192.168.1.1"), "revnat addr");
		ASSERT_EQ(rn.port, htons(30080), "revnat port");
		ASSERT_EQ(rn.kind, KXP_FE_NODEPORT, "revnat kind");
	}
	addr = ip("192.168.1.1");
	if (ASSERT_OK(bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_NODEIP), &addr, &ni), "nodeip"))
		ASSERT_EQ(ni.flags, KXP_NODEIP_F_LOCAL | KXP_NODEIP_F_NODEPORT | KXP_NODEIP_F_PRIMARY, "nodeip flags");
	if (ASSERT_OK(bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_CONFIG), &zero, &cfg), "config")) {
		ASSERT_EQ(cfg.layout_version, KXP_LAYOUT_VERSION, "layout version");
		ASSERT_EQ(cfg.n_cluster, 1, "cluster cidrs");
		ASSERT_EQ(cfg.cluster[0].addr, ip("10.0.0.0"), "cluster cidr");
	}
	{
		struct kxp_lbsr_key lk = { .prefixlen = 64, .fe_id = np.fe_id, .addr = ip("198.51.100.7") };

		ASSERT_OK(bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_LBSR), &lk, &allow), "lbsr lookup");
		ASSERT_EQ(allow, 1, "lbsr allow");
	}
out:
	kxp_dp_close(dp);
}

KXP_TEST(writer_second_apply_writes_nothing)
{
	struct kxp_dp *dp = NULL;
	struct kxp_apply_stats st;
	struct fixture f;

	if (!need_root())
		return;
	fixture_init(&f);
	if (!ASSERT_OK(kxp_dp_open(&dp, &(struct kxp_dp_opts){ .no_pin = true }), "open"))
		return;
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, &st), "apply 1"))
		goto out;
	ASSERT_TRUE(st.writes > 0, "first apply writes");
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, &st), "apply 2"))
		goto out;
	ASSERT_EQ(st.writes, 0, "writes");
	ASSERT_EQ(st.fe_added + st.fe_updated + st.fe_removed, 0, "frontend changes");
	ASSERT_EQ(st.be_added + st.be_removed + st.be_updated, 0, "backend changes");
	ASSERT_EQ(st.slots_written + st.slots_removed, 0, "slot changes");
	ASSERT_EQ(st.nodeips_changed, 0, "nodeip changes");
	ASSERT_EQ(st.config_changed, false, "config change");
out:
	kxp_dp_close(dp);
}

/* A set that outgrows its range of kxp_slot moves to a new one: every
 * frontend of the set names it, the old range is zeroed, and it is reused
 * only from the next apply on (a packet may still read it meanwhile). */
KXP_TEST(writer_set_outgrows_its_range)
{
	struct kxp_d_backend big[9], one[1] = { { ip("10.0.2.1"), 9090, TCP, 0 } };
	struct kxp_d_set sets[3];
	struct kxp_d_frontend fe[5];
	struct kxp_svc_val cip, np, dns, other;
	struct kxp_dp *dp = NULL;
	struct kxp_apply_stats st;
	struct fixture f;
	uint32_t old_base;

	if (!need_root())
		return;
	fixture_init(&f);
	for (int i = 0; i < 9; i++) {
		char a[32];

		snprintf(a, sizeof(a), "10.0.1.%d", 10 + i);
		big[i] = (struct kxp_d_backend){ ip(a), 8080, TCP, 0 };
	}
	memcpy(sets, f.sets, sizeof(f.sets));
	memcpy(fe, f.fe, sizeof(f.fe));
	sets[0].be = big;
	sets[0].n_be = 2;
	f.d.sets = sets;
	f.d.fe = fe;
	if (!ASSERT_OK(kxp_dp_open(&dp, &(struct kxp_dp_opts){ .no_pin = true }), "open"))
		return;
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, NULL), "apply 1"))
		goto out;
	svc_get(dp, "10.96.0.10", 80, TCP, 0, &cip);
	old_base = cip.base;

	sets[0].n_be = 9; /* more than its range holds (2 and room for 4) */
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, &st), "apply 2"))
		goto out;
	svc_get(dp, "10.96.0.10", 80, TCP, 0, &cip);
	svc_get(dp, "192.168.1.1", 30080, TCP, 0, &np);
	svc_get(dp, "10.96.0.53", 53, UDP, 0, &dns);
	ASSERT_NE(cip.base, old_base, "moved");
	ASSERT_EQ(cip.count, 9, "count");
	ASSERT_EQ(np.base, cip.base, "the NodePort names the same range");
	ASSERT_EQ(np.count, 9, "NodePort count");
	ASSERT_TRUE(cip.base + 9 <= dns.base || dns.base + dns.count <= cip.base, "no overlap with dns's range");
	for (uint32_t i = 0; i < 9; i++) {
		char a[32];

		snprintf(a, sizeof(a), "10.0.1.%u", 10 + i);
		ASSERT_TRUE(be_at(dp, cip.sp_id, i, a, 8080), "slot of the moved set");
	}
	ASSERT_EQ(st.slots_written, 9, "the whole set written to its new range");
	ASSERT_EQ(st.slots_removed, 2, "the old range zeroed");
	ASSERT_EQ(map_count(dp, KXP_MAP_SLOT), 9 + 1, "slot entries: web's 9 and dns's 1, nothing left behind");

	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, &st), "apply 3 (the same)"))
		goto out;
	ASSERT_EQ(st.writes, 0, "nothing to write: the mirror followed the move");

	/* a new one-backend set: the old range is free again */
	sets[2] = (struct kxp_d_set){ .key = "default/other:x/TCP:cluster", .be = one, .n_be = 1 };
	fe[4] = (struct kxp_d_frontend){ .addr = ip("10.96.0.20"), .port = 9090, .proto = TCP, .kind = KXP_FE_CLUSTERIP,
					 .set = 2, .svc = "default/other", .port_name = "x" };
	f.d.n_sets = 3;
	f.d.n_fe = 5;
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, &st), "apply 4"))
		goto out;
	svc_get(dp, "10.96.0.20", 9090, TCP, 0, &other);
	ASSERT_EQ(other.base, old_base, "the range freed two applies ago is reused");
	ASSERT_TRUE(be_at(dp, other.sp_id, 0, "10.0.2.1", 9090), "its backend");
	ASSERT_EQ(map_count(dp, KXP_MAP_SLOT), 9 + 1 + 1, "slot entries");
out:
	kxp_dp_close(dp);
}

/* kxp_member4 holds the sets that read it: UDP sets (re-balancing) and
 * sets with sessionAffinity. A TCP set gets entries when its affinity is
 * switched on and loses them when it is switched off. */
KXP_TEST(writer_membership_only_where_read)
{
	struct kxp_dp *dp = NULL;
	struct kxp_apply_stats st;
	struct kxp_member_key mk = { .addr = 0 };
	struct kxp_svc_val web;
	struct fixture f;
	uint32_t id;

	if (!need_root())
		return;
	fixture_init(&f);
	f.sets[1].affinity_timeout = 0; /* dns: UDP, no affinity */
	if (!ASSERT_OK(kxp_dp_open(&dp, &(struct kxp_dp_opts){ .no_pin = true }), "open"))
		return;
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, NULL), "apply 1"))
		goto out;
	ASSERT_EQ(map_count(dp, KXP_MAP_MEMBER), 1, "the UDP set's backend only");
	svc_get(dp, "10.96.0.10", 80, TCP, 0, &web);
	mk = (struct kxp_member_key){ .sp_id = web.sp_id, .addr = ip("10.0.1.2"), .port = htons(8080), .proto = TCP };
	f.sets[0].affinity_timeout = 60;
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, &st), "apply 2: affinity on"))
		goto out;
	ASSERT_EQ(map_count(dp, KXP_MAP_MEMBER), 3, "web's two backends join");
	if (ASSERT_OK(bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_MEMBER), &mk, &id), "web backend 2 is a member"))
		ASSERT_EQ(id, slot_get(dp, web.sp_id, 1), "its id");
	f.web_be[1].addr = ip("10.0.1.5");
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, &st), "apply 3: a backend replaced"))
		goto out;
	ASSERT_EQ(map_count(dp, KXP_MAP_MEMBER), 3, "still three");
	ASSERT_TRUE(bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_MEMBER), &mk, &id) != 0, "the old one left");
	f.sets[0].affinity_timeout = 0;
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, &st), "apply 4: affinity off"))
		goto out;
	ASSERT_EQ(map_count(dp, KXP_MAP_MEMBER), 1, "web's entries gone, dns's kept");
	if (ASSERT_OK(kxp_dp_apply(dp, &f.d, &st), "apply 5"))
		ASSERT_EQ(st.writes, 0, "nothing left to do");
out:
	kxp_dp_close(dp);
}

/* A frontend id given again starts with cleared counters (kxp_stats keeps
 * what the datapath counted under it before); a fresh id of fresh maps is
 * not written at all. */
KXP_TEST(writer_reused_frontend_id_counts_from_zero)
{
	int ncpu = libbpf_num_possible_cpus();
	struct kxp_stats *st = calloc(ncpu > 0 ? ncpu : 1, sizeof(*st));
	struct kxp_dp *dp = NULL;
	struct kxp_apply_stats as;
	struct kxp_svc_val web, other;
	struct fixture f;
	uint32_t id;

	if (!need_root() || !ASSERT_TRUE(st && ncpu > 0, "per-CPU buffer"))
		goto out;
	fixture_init(&f);
	if (!ASSERT_OK(kxp_dp_open(&dp, &(struct kxp_dp_opts){ .no_pin = true }), "open") ||
	    !ASSERT_OK(kxp_dp_apply(dp, &f.d, &as), "apply 1"))
		goto out;
	/* backends 3, slots 3, membership 1 (the UDP set), names 2, reverse
	 * NAT 4, source range 1, frontends 4, config, node address: no counters */
	ASSERT_EQ(as.writes, 3 + 3 + 1 + 2 + 4 + 1 + 4 + 1 + 1, "no counter writes into fresh maps");
	svc_get(dp, "10.96.0.10", 80, TCP, 0, &web);
	/* traffic counted under the ClusterIP's id */
	for (int c = 0; c < ncpu; c++)
		st[c] = (struct kxp_stats){ .packets = 7, .bytes = 700, .drops = 1 };
	id = web.fe_id;
	if (!ASSERT_OK(bpf_map_update_elem(kxp_dp_map_fd(dp, KXP_MAP_STATS), &id, st, BPF_ANY), "counters"))
		goto out;
	/* the ClusterIP goes, another frontend comes in a later apply */
	f.fe[0] = f.fe[3];
	f.d.n_fe = 3;
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, NULL), "apply 2: ClusterIP removed"))
		goto out;
	f.fe[3] = (struct kxp_d_frontend){ .addr = ip("10.96.0.99"), .port = 80, .proto = TCP,
					   .kind = KXP_FE_CLUSTERIP, .set = 0, .svc = "default/web", .port_name = "http" };
	f.d.n_fe = 4;
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, NULL), "apply 3: a new frontend") ||
	    !ASSERT_TRUE(svc_get(dp, "10.96.0.99", 80, TCP, 0, &other), "new frontend") ||
	    !ASSERT_EQ(other.fe_id, web.fe_id, "it has the freed id"))
		goto out;
	memset(st, 0xff, (size_t)ncpu * sizeof(*st));
	if (!ASSERT_OK(bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_STATS), &id, st), "read counters"))
		goto out;
	for (int c = 0; c < ncpu; c++)
		if (!ASSERT_TRUE(!st[c].packets && !st[c].bytes && !st[c].drops, "counters cleared"))
			break;
out:
	kxp_dp_close(dp);
	free(st);
}

KXP_TEST(writer_changed_backend_changes_only_that)
{
	struct kxp_dp *dp = NULL;
	struct kxp_apply_stats st;
	struct kxp_svc_val before, after;
	struct kxp_backend b;
	uint32_t old_id;
	struct fixture f;

	if (!need_root())
		return;
	fixture_init(&f);
	if (!ASSERT_OK(kxp_dp_open(&dp, &(struct kxp_dp_opts){ .no_pin = true }), "open"))
		return;
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, NULL), "apply 1"))
		goto out;
	svc_get(dp, "10.96.0.10", 80, TCP, 0, &before);
	old_id = slot_get(dp, 1, 1);
	f.web_be[1].addr = ip("10.0.1.5");
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, &st), "apply 2"))
		goto out;
	ASSERT_EQ(st.be_added, 1, "be_added");
	ASSERT_EQ(st.be_removed, 1, "be_removed");
	ASSERT_EQ(st.slots_written, 1, "slots_written");
	ASSERT_EQ(st.slots_removed, 0, "slots_removed");
	ASSERT_EQ(st.fe_added + st.fe_updated + st.fe_removed, 0, "frontends untouched");
	ASSERT_EQ(st.writes, 3, "writes: backend insert, slot, backend delete (a TCP set has no membership)");
	ASSERT_TRUE(be_at(dp, 1, 0, "10.0.1.1", 8080), "slot 0 kept");
	ASSERT_TRUE(be_at(dp, 1, 1, "10.0.1.5", 8080), "slot 1 new backend");
	/* the freed id is not reused in the same apply: a packet may still hold it */
	ASSERT_NE(slot_get(dp, 1, 1), old_id, "fresh backend id");
	ASSERT_TRUE(!be_get(dp, old_id, &b), "old backend gone");
	ASSERT_EQ(map_count(dp, KXP_MAP_BACKEND), 3, "backend entries");
	svc_get(dp, "10.96.0.10", 80, TCP, 0, &after);
	ASSERT_EQ(memcmp(&before, &after, sizeof(before)), 0, "frontend value unchanged");

	/* flags change in place, same id */
	f.web_be[1].flags = KXP_BE_F_TERMINATING;
	old_id = slot_get(dp, 1, 1);
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, &st), "apply 3"))
		goto out;
	ASSERT_EQ(st.be_updated, 1, "be_updated");
	ASSERT_EQ(st.writes, 1, "one write");
	if (ASSERT_TRUE(be_get(dp, old_id, &b), "same id"))
		ASSERT_EQ(b.flags, KXP_BE_F_TERMINATING, "terminating flag");
out:
	kxp_dp_close(dp);
}

KXP_TEST(writer_removed_service_leaves_nothing)
{
	struct kxp_dp *dp = NULL;
	struct kxp_apply_stats st;
	struct kxp_svc_val dns, v;
	struct kxp_revnat rn;
	struct fixture f;

	if (!need_root())
		return;
	fixture_init(&f);
	if (!ASSERT_OK(kxp_dp_open(&dp, &(struct kxp_dp_opts){ .no_pin = true }), "open"))
		return;
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, NULL), "apply 1"))
		goto out;
	svc_get(dp, "10.96.0.53", 53, UDP, 0, &dns);
	f.d.n_fe = 3; /* drop the dns frontend (and so its set) */
	f.d.n_nodeips = 0;
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, &st), "apply 2"))
		goto out;
	ASSERT_EQ(st.fe_removed, 1, "fe_removed");
	ASSERT_EQ(st.be_removed, 1, "be_removed");
	ASSERT_EQ(st.slots_removed, 1, "slots_removed");
	ASSERT_EQ(st.revnat_removed, 1, "revnat_removed");
	ASSERT_EQ(st.nodeips_changed, 1, "nodeip removed");
	ASSERT_TRUE(!svc_get(dp, "10.96.0.53", 53, UDP, 0, &v), "svc entry gone");
	ASSERT_EQ(slot_get(dp, dns.sp_id, 0), 0, "slot gone");
	ASSERT_TRUE(bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_REVNAT), &dns.fe_id, &rn) == 0 && !rn.addr,
		    "revnat gone (zeroed: an array by id)");
	ASSERT_EQ(map_count(dp, KXP_MAP_SVC), 3, "svc entries");
	ASSERT_EQ(map_count(dp, KXP_MAP_BACKEND), 2, "backend entries");
	ASSERT_EQ(map_count(dp, KXP_MAP_SLOT), 2, "slot entries");
	ASSERT_EQ(map_count(dp, KXP_MAP_NODEIP), 0, "nodeip entries");

	/* a service without frontends at all: everything goes */
	f.d.n_fe = 0;
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, &st), "apply 3"))
		goto out;
	ASSERT_EQ(map_count(dp, KXP_MAP_SVC), 0, "svc empty");
	ASSERT_EQ(map_count(dp, KXP_MAP_SLOT), 0, "slot empty");
	ASSERT_EQ(map_count(dp, KXP_MAP_BACKEND), 0, "backend empty");
	ASSERT_EQ(map_count(dp, KXP_MAP_REVNAT), 0, "revnat empty");
	ASSERT_EQ(map_count(dp, KXP_MAP_LBSR), 0, "lbsr empty");
out:
	kxp_dp_close(dp);
}

KXP_TEST(writer_shrink_and_grow_set)
{
	struct kxp_dp *dp = NULL;
	struct kxp_apply_stats st;
	struct kxp_svc_val ci, np;
	struct fixture f;

	if (!need_root())
		return;
	fixture_init(&f);
	f.web_be[2] = (struct kxp_d_backend){ ip("10.0.1.7"), 8080, TCP, 0 };
	f.sets[0].n_be = 3;
	if (!ASSERT_OK(kxp_dp_open(&dp, &(struct kxp_dp_opts){ .no_pin = true }), "open"))
		return;
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, NULL), "apply 1"))
		goto out;
	f.sets[0].n_be = 1;
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, &st), "shrink"))
		goto out;
	ASSERT_EQ(st.slots_removed, 2, "slots removed");
	ASSERT_EQ(st.be_removed, 2, "backends removed");
	svc_get(dp, "10.96.0.10", 80, TCP, 0, &ci);
	svc_get(dp, "192.168.1.1", 30080, TCP, 0, &np);
	ASSERT_EQ(ci.count, 1, "clusterip count");
	ASSERT_EQ(np.count, 1, "nodeport count");
	ASSERT_EQ(slot_get(dp, ci.sp_id, 1), 0, "slot 1 gone");
	f.sets[0].n_be = 3;
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, &st), "grow"))
		goto out;
	ASSERT_EQ(st.slots_written, 2, "slots written");
	ASSERT_EQ(st.fe_updated, 2, "both frontends of the set raised");
	svc_get(dp, "10.96.0.10", 80, TCP, 0, &ci);
	ASSERT_EQ(ci.count, 3, "count raised");
	ASSERT_TRUE(be_at(dp, ci.sp_id, 2, "10.0.1.7", 8080), "slot 2");
out:
	kxp_dp_close(dp);
}

static void instance_name(char *buf, size_t len, const char *what)
{
	snprintf(buf, len, "ut-%s-%d", what, (int)getpid());
}

KXP_TEST(writer_ids_stable_across_adoption)
{
	struct kxp_dp *dp = NULL;
	struct kxp_apply_stats st;
	struct kxp_svc_val a1[4], a2[4];
	struct kxp_d_frontend fe5[5];
	struct kxp_config cfg;
	struct fixture f;
	char inst[64], err[256] = "";
	uint32_t zero = 0;
	const char *addrs[4] = { "10.96.0.10", "192.168.1.1", "10.96.0.10", "10.96.0.53" };

	if (!need_root())
		return;
	instance_name(inst, sizeof(inst), "adopt");
	fixture_init(&f);
	if (!ASSERT_OK(kxp_dp_open(&dp, &(struct kxp_dp_opts){ .instance = inst }), "open new"))
		goto out;
	/* start from a state whose ids are not trivially 1..n: remove, then re-add */
	f.d.n_fe = 2;
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, NULL), "apply partial"))
		goto out;
	f.d.fe = &f.fe[2];
	f.d.n_fe = 2;
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, NULL), "apply other half"))
		goto out;
	f.d.fe = f.fe;
	f.d.n_fe = 4;
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, NULL), "apply all"))
		goto out;
	for (int i = 0; i < 4; i++)
		svc_get(dp, addrs[i], f.fe[i].port, f.fe[i].proto, 0, &a1[i]);
	kxp_dp_close(dp);
	dp = NULL;

	if (!ASSERT_OK(kxp_dp_open(&dp, &(struct kxp_dp_opts){ .instance = inst, .errbuf = err, .errbuf_len = sizeof(err) }),
		       "adopt"))
		goto out;
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, &st), "apply after adoption"))
		goto out;
	ASSERT_EQ(st.writes, 0, "adopted state needs no writes");
	for (int i = 0; i < 4; i++) {
		svc_get(dp, addrs[i], f.fe[i].port, f.fe[i].proto, 0, &a2[i]);
		ASSERT_EQ(a2[i].fe_id, a1[i].fe_id, "fe_id stable");
		ASSERT_EQ(a2[i].sp_id, a1[i].sp_id, "sp_id stable");
	}
	/* a new frontend on the existing set: old ids stay, the set keeps its sp_id */
	memcpy(fe5, f.fe, sizeof(f.fe));
	fe5[4] = (struct kxp_d_frontend){ .addr = ip("203.0.113.9"), .port = 80, .proto = TCP,
					  .kind = KXP_FE_EXTERNALIP, .flags = KXP_SVC_F_EXTERNAL, .set = 0,
					  .svc = "default/web" };
	f.d.fe = fe5;
	f.d.n_fe = 5;
	if (!ASSERT_OK(kxp_dp_apply(dp, &f.d, &st), "apply with one more"))
		goto out;
	ASSERT_EQ(st.fe_added, 1, "one frontend added");
	ASSERT_EQ(st.slots_written, 0, "set reused");
	for (int i = 0; i < 4; i++) {
		svc_get(dp, addrs[i], f.fe[i].port, f.fe[i].proto, 0, &a2[i]);
		ASSERT_EQ(a2[i].fe_id, a1[i].fe_id, "fe_id still stable");
	}
	kxp_dp_close(dp);
	dp = NULL;

	/* a layout this kxp does not know is refused */
	if (!ASSERT_OK(kxp_dp_open_pinned(&dp, inst), "open pinned"))
		goto out;
	bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_CONFIG), &zero, &cfg);
	cfg.layout_version = KXP_LAYOUT_VERSION + 98;
	bpf_map_update_elem(kxp_dp_map_fd(dp, KXP_MAP_CONFIG), &zero, &cfg, BPF_ANY);
	kxp_dp_close(dp);
	dp = NULL;
	err[0] = 0;
	ASSERT_EQ(kxp_dp_open(&dp, &(struct kxp_dp_opts){ .instance = inst, .errbuf = err, .errbuf_len = sizeof(err) }),
		  -EPROTO, "other layout refused");
	ASSERT_TRUE(strstr(err, "layout version") != NULL, "error explains");
out:
	kxp_dp_close(dp);
	ASSERT_OK(kxp_dp_cleanup(inst), "cleanup");
	ASSERT_OK(kxp_dp_cleanup(inst), "cleanup again");
	{
		char path[128];
		struct stat sb;

		snprintf(path, sizeof(path), "/sys/fs/bpf/kxp-%s", inst);
		ASSERT_TRUE(stat(path, &sb) != 0, "pin dir removed");
	}
}

KXP_TEST(writer_full_map_reports_and_continues)
{
	struct kxp_dp *dp = NULL;
	struct kxp_apply_stats st;
	struct kxp_d_frontend fe[6];
	struct fixture f;
	int err;

	if (!need_root())
		return;
	fixture_init(&f);
	for (int i = 0; i < 6; i++) {
		fe[i] = f.fe[0];
		fe[i].port = (uint16_t)(1000 + i);
	}
	f.d.fe = fe;
	f.d.n_fe = 6;
	if (!ASSERT_OK(kxp_dp_open(&dp, &(struct kxp_dp_opts){ .no_pin = true, .max_frontends = 4 }), "open"))
		return;
	err = kxp_dp_apply(dp, &f.d, &st);
	ASSERT_EQ(err, -ENOSPC, "apply reports a full map");
	ASSERT_EQ(st.n_failed, 2, "two frontends not written");
	ASSERT_EQ(st.fe_added, 4, "the rest written");
	ASSERT_TRUE(strstr(st.failed[0], "10.96.0.10:1004") != NULL, "failure names the frontend");
	ASSERT_EQ(map_count(dp, KXP_MAP_SVC), 4, "svc entries");
	/* removing two makes room: the next apply completes */
	f.d.n_fe = 4;
	ASSERT_OK(kxp_dp_apply(dp, &f.d, &st), "apply fits");
	ASSERT_EQ(st.writes, 0, "nothing left to do");
	kxp_dp_close(dp);
}

KXP_TEST(loader_refuses_incompatible_pin)
{
	struct kxp_dp *dp = NULL;
	char inst[64], dir[128], path[160], err[256] = "";
	int fd;

	if (!need_root())
		return;
	instance_name(inst, sizeof(inst), "compat");
	/* make sure bpffs is there: a first open mounts it */
	if (!ASSERT_OK(kxp_dp_open(&dp, &(struct kxp_dp_opts){ .instance = inst }), "create"))
		goto out;
	kxp_dp_close(dp);
	dp = NULL;
	snprintf(dir, sizeof(dir), "/sys/fs/bpf/kxp-%s", inst);
	snprintf(path, sizeof(path), "%s/kxp_svc4", dir);
	unlink(path);
	fd = bpf_map_create(BPF_MAP_TYPE_HASH, "kxp_svc4", 8, 16, 16, NULL);
	if (!ASSERT_TRUE(fd >= 0, "create odd map"))
		goto out;
	ASSERT_OK(bpf_obj_pin(fd, path), "pin odd map");
	close(fd);
	ASSERT_EQ(kxp_dp_open(&dp, &(struct kxp_dp_opts){ .instance = inst, .errbuf = err, .errbuf_len = sizeof(err) }),
		  -EINVAL, "incompatible pin refused");
	ASSERT_TRUE(strstr(err, "kxp_svc4") != NULL, "error names the map");
	/* a trace copy of an instance that does not exist */
	ASSERT_EQ(kxp_dp_open(&dp, &(struct kxp_dp_opts){ .instance = "ut-no-such-instance", .trace = true }), -ENOENT,
		  "trace needs the instance");
out:
	kxp_dp_close(dp);
	ASSERT_OK(kxp_dp_cleanup(inst), "cleanup");
}

/* ---- batched writes (a full apply into empty maps) ------------------------- */

/* nsvc Services x nbe endpoints: service s has ClusterIP 10.96.s/256.s%256:80
 * and backends 10.(1+s/256).s%256.(1+b):8080, every third set Maglev, every
 * fifth Service also a NodePort with two source ranges. */
struct bigstate {
	struct kxp_d_backend *be;
	struct kxp_d_set *sets;
	struct kxp_d_frontend *fe;
	char (*keys)[48];
	struct kxp_cidr4 lbsr[2];
	struct kxp_d_nodeip nip[1];
	struct kxp_desired d;
};

static uint32_t big_fe_addr(unsigned s)
{
	return htonl(0x0a600000u | (s / 256) << 8 | (s % 256));
}

static uint32_t big_be_addr(unsigned s, unsigned b)
{
	return htonl(0x0a000000u | (1 + s / 256) << 16 | (s % 256) << 8 | (1 + b));
}

static bool big_init(struct bigstate *g, unsigned nsvc, unsigned nbe)
{
	memset(g, 0, sizeof(*g));
	g->be = calloc((size_t)nsvc * nbe, sizeof(*g->be));
	g->sets = calloc(nsvc, sizeof(*g->sets));
	g->fe = calloc((size_t)nsvc * 2, sizeof(*g->fe));
	g->keys = calloc(nsvc, sizeof(*g->keys));
	if (!g->be || !g->sets || !g->fe || !g->keys)
		return false;
	g->lbsr[0] = (struct kxp_cidr4){ ip("198.51.100.0"), ip("255.255.255.0") };
	g->lbsr[1] = (struct kxp_cidr4){ ip("203.0.113.7"), ip("255.255.255.255") };
	for (unsigned s = 0; s < nsvc; s++) {
		struct kxp_d_set *set = &g->sets[s];

		for (unsigned b = 0; b < nbe; b++)
			g->be[s * nbe + b] = (struct kxp_d_backend){ big_be_addr(s, b), 8080, TCP, 0 };
		snprintf(g->keys[s], sizeof(g->keys[s]), "default/svc%u:http/TCP:cluster", s);
		*set = (struct kxp_d_set){ .key = g->keys[s], .be = &g->be[s * nbe], .n_be = nbe,
					   .algo = s % 3 == 0 ? KXP_ALGO_MAGLEV : KXP_ALGO_RANDOM,
					   .affinity_timeout = s % 4 == 1 ? 60 : 0 };
		g->fe[g->d.n_fe++] = (struct kxp_d_frontend){ .addr = big_fe_addr(s), .port = 80, .proto = TCP,
							      .kind = KXP_FE_CLUSTERIP, .set = (int)s, .svc = g->keys[s],
							      .port_name = "http" };
		if (s % 5 == 0)
			g->fe[g->d.n_fe++] = (struct kxp_d_frontend){
				.addr = ip("192.168.1.1"), .port = (uint16_t)(30000 + s), .proto = TCP,
				.kind = KXP_FE_NODEPORT, .flags = KXP_SVC_F_EXTERNAL | KXP_SVC_F_LBSR, .set = (int)s,
				.svc = g->keys[s], .port_name = "http", .lbsr = g->lbsr, .n_lbsr = 2 };
	}
	g->nip[0] = (struct kxp_d_nodeip){ ip("192.168.1.1"), KXP_NODEIP_F_LOCAL | KXP_NODEIP_F_NODEPORT |
							     KXP_NODEIP_F_PRIMARY };
	g->d.fe = g->fe;
	g->d.sets = g->sets;
	g->d.n_sets = nsvc;
	g->d.nodeips = g->nip;
	g->d.n_nodeips = 1;
	g->d.cfg.n_cluster = 1;
	g->d.cfg.cluster[0] = (struct kxp_cidr4){ ip("10.0.0.0"), ip("255.0.0.0") };
	return true;
}

static void big_free(struct bigstate *g)
{
	free(g->be);
	free(g->sets);
	free(g->fe);
	free(g->keys);
}

/* Everything a frontend of set s needs, read back from the maps: its entry,
 * slots naming the set's backends in order, membership (affinity sets only:
 * these are TCP), reverse NAT, the
 * set's name and (Maglev) a table whose entries are the set's backends. */
static bool big_check_fe(const struct kxp_dp *dp, const struct bigstate *g, const struct kxp_d_frontend *f,
			 uint32_t m)
{
	struct kxp_svc_key k = { .addr = f->addr, .port = htons(f->port), .proto = f->proto };
	const struct kxp_d_set *set = &g->sets[f->set];
	struct kxp_svc_val v;
	struct kxp_revnat rn;
	struct kxp_spname name;
	uint32_t inner_id;

	if (!ASSERT_OK(bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_SVC), &k, &v), "frontend present") ||
	    !ASSERT_EQ(v.count, set->n_be, "count") || !ASSERT_EQ(v.algo, set->algo, "algo") ||
	    !ASSERT_OK(bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_REVNAT), &v.fe_id, &rn), "revnat present") ||
	    !ASSERT_TRUE(rn.addr == f->addr && rn.port == htons(f->port) && rn.kind == f->kind, "revnat names it") ||
	    !ASSERT_OK(bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_SPNAME), &v.sp_id, &name), "set name") ||
	    !ASSERT_STREQ(name.key, set->key, "set name"))
		return false;
	for (size_t i = 0; i < set->n_be; i++) {
		struct kxp_member_key mk = { .sp_id = v.sp_id, .addr = set->be[i].addr, .port = htons(set->be[i].port),
					     .proto = set->be[i].proto };
		uint32_t id = slot_get(dp, v.sp_id, (uint32_t)i), mid = 0;
		struct kxp_backend b;

		if (!ASSERT_TRUE(be_get(dp, id, &b) && b.addr == set->be[i].addr, "slot names the backend"))
			return false;
		if (!set->affinity_timeout) {
			if (!ASSERT_TRUE(bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_MEMBER), &mk, &mid) != 0,
					 "no membership for a TCP set without affinity"))
				return false;
			continue;
		}
		if (!ASSERT_OK(bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_MEMBER), &mk, &mid), "membership") ||
		    !ASSERT_EQ(mid, id, "membership names the backend"))
			return false;
	}
	if (f->n_lbsr) {
		struct kxp_lbsr_key lk = { .prefixlen = 64, .fe_id = v.fe_id, .addr = ip("198.51.100.77") };
		uint8_t allow = 0;

		if (!ASSERT_OK(bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_LBSR), &lk, &allow), "source range") ||
		    !ASSERT_EQ(allow, 1, "source range allows"))
			return false;
	}
	if (set->algo != KXP_ALGO_MAGLEV)
		return ASSERT_TRUE(bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_MAGLEV), &v.sp_id, &inner_id) != 0,
				   "no table for a random set");
	if (!ASSERT_OK(bpf_map_lookup_elem(kxp_dp_map_fd(dp, KXP_MAP_MAGLEV), &v.sp_id, &inner_id), "maglev table"))
		return false;
	{
		int fd = bpf_map_get_fd_by_id(inner_id);
		bool ok = ASSERT_TRUE(fd >= 0, "table fd");

		for (uint32_t e = 0; ok && e < m; e += 37) {
			uint32_t pk = e / 2;
			struct kxp_mg_pair p = {};
			struct kxp_backend b;

			ok = ASSERT_OK(bpf_map_lookup_elem(fd, &pk, &p), "table entry") &&
			     ASSERT_TRUE(be_get(dp, p.id[e % 2], &b) && (ntohl(b.addr) & 0xffffff00u) ==
									   (ntohl(set->be[0].addr) & 0xffffff00u),
					 "table entry is a backend of the set");
		}
		if (fd >= 0)
			close(fd);
		return ok;
	}
}

KXP_TEST(writer_batched_apply_from_empty_reads_back)
{
	const unsigned nsvc = 300, nbe = 5, m = 251;
	struct kxp_dp *dp = NULL;
	struct kxp_apply_stats st;
	struct bigstate g;
	uint32_t expect;

	if (!need_root())
		return;
	if (!ASSERT_TRUE(big_init(&g, nsvc, nbe), "state"))
		goto out;
	if (!ASSERT_OK(kxp_dp_open(&dp, &(struct kxp_dp_opts){ .no_pin = true, .maglev_m = m }), "open"))
		goto out;
	if (!ASSERT_OK(kxp_dp_apply(dp, &g.d, &st), "apply"))
		goto out;
	ASSERT_EQ(st.fe_added, g.d.n_fe, "fe_added");
	ASSERT_EQ(st.be_added, nsvc * nbe, "be_added");
	ASSERT_EQ(st.slots_written, nsvc * nbe, "slots_written");
	ASSERT_EQ(st.maglev_built, nsvc / 3, "maglev_built");
	ASSERT_EQ(st.lbsr_written, 2 * (nsvc / 5), "lbsr_written");
	ASSERT_EQ(st.n_failed, 0, "nothing failed");
	/* entries: backends, slots, members (a quarter of the sets have
	 * affinity), names, reverse NAT, source ranges, frontends, config, node
	 * address; per table its fill and its outer entry (no counters: fresh
	 * ids of fresh maps count from zero already) */
	expect = 2 * nsvc * nbe + nsvc / 4 * nbe + nsvc + 2 * (uint32_t)g.d.n_fe + 2 * (nsvc / 5) + 2 + 2 * (nsvc / 3);
	ASSERT_EQ(st.writes, expect, "writes count entries");
	/* one batch per map and phase, one fill per table (and config, node address) */
	ASSERT_TRUE(st.syscalls <= 12 + nsvc / 3, "writes went in batches");
	ASSERT_EQ(map_count(dp, KXP_MAP_SVC), (int)g.d.n_fe, "svc entries");
	ASSERT_EQ(map_count(dp, KXP_MAP_BACKEND), (int)(nsvc * nbe), "backend entries");
	ASSERT_EQ(map_count(dp, KXP_MAP_SLOT), (int)(nsvc * nbe), "slot entries");
	ASSERT_EQ(map_count(dp, KXP_MAP_MEMBER), (int)(nsvc / 4 * nbe), "member entries");
	for (size_t i = 0; i < g.d.n_fe; i++)
		if (!big_check_fe(dp, &g, &g.fe[i], m))
			goto out;
	/* the mirror agrees with the maps: nothing to do */
	if (ASSERT_OK(kxp_dp_apply(dp, &g.d, &st), "apply again"))
		ASSERT_EQ(st.writes, 0, "second apply writes nothing");
out:
	kxp_dp_close(dp);
	big_free(&g);
}

KXP_TEST(writer_batch_full_map_midway)
{
	const unsigned nsvc = 20, nbe = 4, max_be = 50;
	struct kxp_dp *dp = NULL;
	struct kxp_apply_stats st;
	struct bigstate g;
	char want[64];
	int err;

	if (!need_root())
		return;
	if (!ASSERT_TRUE(big_init(&g, nsvc, nbe), "state"))
		goto out;
	if (!ASSERT_OK(kxp_dp_open(&dp, &(struct kxp_dp_opts){ .no_pin = true, .max_backends = max_be,
							       .maglev_m = 251 }),
		       "open"))
		goto out;
	/* the backend batch stops at entry 50 (E2BIG): every later one is tried
	 * and reported, everything else is written */
	err = kxp_dp_apply(dp, &g.d, &st);
	ASSERT_EQ(err, -ENOSPC, "apply reports a full map");
	ASSERT_EQ(st.be_added, max_be, "backends that fit");
	ASSERT_EQ(st.n_failed, nsvc * nbe - max_be, "each backend that did not fit reported");
	snprintf(want, sizeof(want), "backend 10.1.%u.%u:8080/", max_be / nbe, 1 + max_be % nbe);
	ASSERT_TRUE(strstr(st.failed[0], want) != NULL, "the first failure names the 51st backend");
	ASSERT_TRUE(strstr(st.failed[0], "kxp_backend4 is full") != NULL, "and the map");
	ASSERT_EQ(st.fe_added, g.d.n_fe, "every frontend written");
	ASSERT_EQ(map_count(dp, KXP_MAP_BACKEND), (int)max_be, "backend entries");
	for (unsigned s = 0; s < nsvc; s++) {
		struct kxp_svc_val v;
		unsigned fit = (s + 1) * nbe <= max_be ? nbe : s * nbe >= max_be ? 0 : max_be - s * nbe;
		char a[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &(uint32_t){ big_fe_addr(s) }, a, sizeof(a));
		if (!ASSERT_TRUE(svc_get(dp, a, 80, TCP, 0, &v), "frontend") ||
		    !ASSERT_EQ(v.count, fit, "count = backends written"))
			goto out;
		for (unsigned b = 0; b < fit; b++) {
			struct kxp_backend be;

			if (!ASSERT_TRUE(be_get(dp, slot_get(dp, v.sp_id, b), &be) && be.addr == big_be_addr(s, b),
					 "slot names a written backend"))
				goto out;
		}
	}
	/* room again: the next apply completes what is missing, no more */
	kxp_dp_close(dp);
	dp = NULL;
	if (!ASSERT_OK(kxp_dp_open(&dp, &(struct kxp_dp_opts){ .no_pin = true, .maglev_m = 251 }), "open big"))
		goto out;
	if (ASSERT_OK(kxp_dp_apply(dp, &g.d, &st), "apply fits"))
		ASSERT_EQ(map_count(dp, KXP_MAP_BACKEND), (int)(nsvc * nbe), "all backends");
out:
	kxp_dp_close(dp);
	big_free(&g);
}

/* A batch that fails mid-way resumes after the failed entry: a full backend
 * map refuses a new backend but still takes updates of existing ones queued
 * after it. */
KXP_TEST(writer_batch_resumes_after_failed_entry)
{
	struct kxp_dp *dp = NULL;
	struct kxp_apply_stats st;
	struct bigstate g;
	struct kxp_d_backend nb[4];
	int err;

	if (!need_root())
		return;
	if (!ASSERT_TRUE(big_init(&g, 2, 4), "state"))
		goto out;
	if (!ASSERT_OK(kxp_dp_open(&dp, &(struct kxp_dp_opts){ .no_pin = true, .max_backends = 8 }), "open"))
		goto out;
	if (!ASSERT_OK(kxp_dp_apply(dp, &g.d, &st), "fill the backend map"))
		goto out;
	/* set 0: a new backend first (its old first one still holds a place until
	 * the end of the apply), then the other three with a changed flag */
	nb[0] = (struct kxp_d_backend){ ip("10.9.9.9"), 8080, TCP, 0 };
	for (int b = 1; b < 4; b++) {
		nb[b] = g.be[b];
		nb[b].flags = KXP_BE_F_TERMINATING;
	}
	g.sets[0].be = nb;
	err = kxp_dp_apply(dp, &g.d, &st);
	ASSERT_EQ(err, -ENOSPC, "the new backend does not fit");
	ASSERT_EQ(st.n_failed, 1, "one failure");
	ASSERT_TRUE(strstr(st.failed[0], "10.9.9.9:8080") != NULL, "it names the backend");
	ASSERT_EQ(st.be_updated, 3, "the updates after it were written");
	for (int b = 1; b < 4; b++) {
		struct kxp_svc_val v;
		struct kxp_backend be;
		char a[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &(uint32_t){ big_fe_addr(0) }, a, sizeof(a));
		if (!ASSERT_TRUE(svc_get(dp, a, 80, TCP, 0, &v), "frontend") || !ASSERT_EQ(v.count, 3, "three backends") ||
		    !ASSERT_TRUE(be_get(dp, slot_get(dp, v.sp_id, (uint32_t)b - 1), &be), "slot") ||
		    !ASSERT_TRUE(be.addr == nb[b].addr && be.flags == KXP_BE_F_TERMINATING, "flag written"))
			break;
	}
out:
	kxp_dp_close(dp);
	big_free(&g);
}
