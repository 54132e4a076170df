/* Test environment for the datapath fixtures (see tenv.h): real loader, real
 * writer, BPF_PROG_TEST_RUN with repeat=1 and decoded failure reports. */
#include "tenv.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../lib/testlib.h"

int tenv_ifindex = 1;
const uint8_t TMAC_NODE2[6] = { 0x02, 0, 0, 0, 0x50, 0x02 }, TMAC_ROUTER[6] = { 0x02, 0, 0, 0, 0x50, 0xfe },
	      TMAC_POD_A[6] = { 0x02, 0, 0, 0, 0x01, 0x0a }, TMAC_POD_B[6] = { 0x02, 0, 0, 0, 0x01, 0x14 };

int tenv_sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc)
		kxp_test_fail(__FILE__, __LINE__, "command failed (%d): %s", rc, cmd);
	return rc;
}

int tenv_netns(void)
{
	if (unshare(CLONE_NEWNET)) {
		kxp_test_fail(__FILE__, __LINE__, "unshare(CLONE_NEWNET): %s", strerror(errno));
		return -1;
	}
	/* the namespace dies with this forked test: nothing to clean up */
	return tenv_sh("set -e; exec 2>&1 >/dev/null; ip link set lo up; echo 1 > /proc/sys/net/ipv4/ip_forward; "
		       "ip link add ext0 type veth peer name ext1; ip link add pod0 type veth peer name pod1; "
		       "for d in ext0 ext1 pod0 pod1; do ip link set $d up; done; "
		       "ip addr add 192.168.50.1/24 dev ext0; "
		       "ip neigh add 192.168.50.2 lladdr 02:00:00:00:50:02 dev ext0 nud permanent; "
		       "ip neigh add 192.168.50.254 lladdr 02:00:00:00:50:fe dev ext0 nud permanent; "
		       "ip route add 10.244.2.0/24 via 192.168.50.2; ip route add 10.244.3.0/24 via 192.168.50.3; "
		       "ip route add default via 192.168.50.254; "
		       "ip route add 10.244.1.10/32 dev pod0; ip route add 10.244.1.20/32 dev pod0; "
		       "ip neigh add 10.244.1.10 lladdr 02:00:00:00:01:0a dev pod0 nud permanent; "
		       "ip neigh add 10.244.1.20 lladdr 02:00:00:00:01:14 dev pod0 nud permanent") ? -1 : 0;
}

int tenv_dev(const char *name)
{
	tenv_ifindex = (int)if_nametoindex(name);
	return tenv_ifindex;
}

int tenv_open(struct tenv *e)
{
	return tenv_open_instance(e, NULL);
}

int tenv_open_instance(struct tenv *e, const char *instance)
{
	struct kxp_dp_opts o = { .instance = instance, .no_pin = !instance, .max_ct = 4096, .max_frontends = 1024, .max_backends = 1024,
				 .max_slots = 4096 };
	int err;

	memset(e, 0, sizeof(*e));
	o.errbuf = e->errbuf;
	o.errbuf_len = sizeof(e->errbuf);
	err = kxp_dp_open(&e->dp, &o);
	if (err) {
		kxp_test_fail(__FILE__, __LINE__, "kxp_dp_open: %s (%s)", strerror(-err), e->errbuf);
		return err;
	}
	e->d.fe = e->fe;
	e->d.sets = e->sets;
	e->d.nodeips = e->nip;
	e->nip[0] = (struct kxp_d_nodeip){ NODE_IP, KXP_NODEIP_F_LOCAL | KXP_NODEIP_F_NODEPORT | KXP_NODEIP_F_PRIMARY };
	e->d.n_nodeips = 1;
	e->d.cfg.n_cluster = 1;
	e->d.cfg.cluster[0] = (struct kxp_cidr4){ A(10, 244, 0, 0), A(255, 255, 0, 0) };
	e->d.cfg.n_service = 1;
	e->d.cfg.service[0] = (struct kxp_cidr4){ A(10, 96, 0, 0), A(255, 240, 0, 0) };
	return 0;
}

void tenv_close(struct tenv *e)
{
	kxp_dp_close(e->dp);
	e->dp = NULL;
}

void tenv_set_replace(struct tenv *e, int s, int n, const uint32_t *addr, const uint16_t *port)
{
	for (int i = 0; i < n && i < TENV_MAX_BE; i++)
		e->be[s][i] = (struct kxp_d_backend){ .addr = addr[i], .port = port[i], .proto = e->be[s][0].proto };
	e->sets[s].n_be = n;
}

int tenv_set(struct tenv *e, uint8_t proto, int n, const uint32_t *addr, const uint16_t *port)
{
	int s = (int)e->d.n_sets++;
	static char keys[TENV_MAX_SETS][32];

	snprintf(keys[s], sizeof(keys[s]), "test/set%d", s);
	e->sets[s] = (struct kxp_d_set){ .key = keys[s], .be = e->be[s] };
	e->be[s][0].proto = proto;
	tenv_set_replace(e, s, n, addr, port);
	for (int i = 0; i < n; i++)
		e->be[s][i].proto = proto;
	return s;
}

void tenv_fe(struct tenv *e, uint32_t addr, uint16_t port, uint8_t proto, uint8_t scope, uint8_t kind,
	     uint16_t flags, int set)
{
	struct kxp_d_frontend *f = &e->fe[e->d.n_fe++];

	*f = (struct kxp_d_frontend){ .addr = addr, .port = port, .proto = proto, .scope = scope,
				      .kind = kind, .flags = flags, .set = set, .svc = "test/svc",
				      .port_name = "" };
}

int tenv_apply(struct tenv *e)
{
	struct kxp_apply_stats st = {};
	int err = kxp_dp_apply(e->dp, &e->d, &st);

	if (err)
		kxp_test_fail(__FILE__, __LINE__, "kxp_dp_apply: %s (%u failed: %s)", strerror(-err), st.n_failed,
			      st.n_failed ? st.failed[0] : "");
	return err;
}

int tenv_run_fd(int prog_fd, bool xdp, const uint8_t *in, uint32_t in_len, struct trun *r)
{
	struct __sk_buff skb = { .ifindex = (__u32)tenv_ifindex, .ingress_ifindex = (__u32)tenv_ifindex };
	struct xdp_md xmd = { .data = 0, .data_end = in_len, .ingress_ifindex = (__u32)tenv_ifindex }, xout = {};
	uint8_t out[TPKT_MAX + 64];
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = in_len, .data_out = out,
		    .data_size_out = sizeof(out), .repeat = 1);
	int err;

	if (in != r->in) {
		memcpy(r->in, in, in_len);
		r->in_len = in_len;
	}
	if (xdp) {
		o.ctx_in = &xmd;
		o.ctx_size_in = sizeof(xmd);
		o.ctx_out = &xout;
		o.ctx_size_out = sizeof(xout);
	} else {
		o.ctx_in = &skb;
		o.ctx_size_in = sizeof(skb);
	}
	err = bpf_prog_test_run_opts(prog_fd, &o);
	/* Before 5.12 an skb's ingress_ifindex cannot be given (the programs
	 * read ifindex only): run again without it. */
	if (err && errno == EINVAL && !xdp && skb.ingress_ifindex) {
		skb.ingress_ifindex = 0;
		err = bpf_prog_test_run_opts(prog_fd, &o);
	}
	if (err) {
		err = -errno;
		/* Kernels before 5.12 take no xdp_md (ingress device) as input
		 * of an XDP test run: the tests need it (FIB lookups, XDP_TX
		 * decisions), so they skip there, and the XDP program is tested
		 * by real traffic only (make test-kernels runs e2e tests). */
		if (err == -EINVAL && o.ctx_in) {
			LIBBPF_OPTS(bpf_test_run_opts, bare, .data_in = in, .data_size_in = in_len, .data_out = out,
				    .data_size_out = sizeof(out), .repeat = 1);

			if (!bpf_prog_test_run_opts(prog_fd, &bare)) {
				kxp_test_skip("this kernel's BPF_PROG_TEST_RUN takes no %s context as input (Linux 5.12 and later do)",
					      xdp ? "xdp_md" : "__sk_buff ifindex");
				return err;
			}
		}
		kxp_test_fail(__FILE__, __LINE__, "BPF_PROG_TEST_RUN (%s, %u bytes): %s", xdp ? "xdp" : "tc", in_len, strerror(-err));
		return err;
	}
	r->ret = (int)o.retval;
	r->meta_len = 0;
	r->meta = 0;
	if (xdp && xout.data >= 4 && xout.data <= o.data_size_out) {
		r->meta_len = xout.data;
		memcpy(&r->meta, out, 4);
	}
	/* XDP output starts at data_meta: drop metadata the program added. */
	if (xdp && xout.data && xout.data <= o.data_size_out) {
		r->out_len = o.data_size_out - xout.data;
		memcpy(r->out, out + xout.data, r->out_len);
	} else {
		r->out_len = o.data_size_out > TPKT_MAX ? TPKT_MAX : o.data_size_out;
		memcpy(r->out, out, r->out_len);
	}
	return 0;
}

int tenv_run_raw(struct tenv *e, enum tprog prog, struct trun *r)
{
	int fd = prog == T_XDP ? kxp_dp_prog_xdp(e->dp) :
		 prog == T_TC_IN ? kxp_dp_prog_tc_ingress(e->dp) : kxp_dp_prog_tc_egress(e->dp);

	return tenv_run_fd(fd, prog == T_XDP, r->in, r->in_len, r);
}

int tenv_run(struct tenv *e, enum tprog prog, const struct tpkt *t, struct trun *r)
{
	int fd = prog == T_XDP ? kxp_dp_prog_xdp(e->dp) :
		 prog == T_TC_IN ? kxp_dp_prog_tc_ingress(e->dp) : kxp_dp_prog_tc_egress(e->dp);

	r->in_len = (uint32_t)tpkt_build(t, r->in);
	return tenv_run_fd(fd, prog == T_XDP, r->in, r->in_len, r);
}

bool tenv_ct(struct tenv *e, uint32_t sa, uint32_t da, uint16_t sp, uint16_t dp, uint8_t proto, uint8_t dir,
	     struct kxp_ct_val *v)
{
	struct kxp_flow4 k = { .saddr = sa, .daddr = da, .sport = htons(sp), .dport = htons(dp),
			       .proto = proto, .dir = dir };

	return bpf_map_lookup_elem(kxp_dp_map_fd(e->dp, KXP_MAP_CT), &k, v) == 0;
}

int tenv_ct_count(struct tenv *e)
{
	int fd = kxp_dp_map_fd(e->dp, KXP_MAP_CT), n = 0;
	struct kxp_flow4 k, *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &k) == 0) {
		n++;
		prev = &k;
	}
	return n;
}

uint64_t tenv_reason(struct tenv *e, unsigned r)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t v[ncpu > 0 ? ncpu : 1], sum = 0;
	__u32 k = r;

	if (ncpu <= 0 || bpf_map_lookup_elem(kxp_dp_map_fd(e->dp, KXP_MAP_REASONS), &k, v))
		return ~0ull;
	for (int i = 0; i < ncpu; i++)
		sum += v[i];
	return sum;
}

void tenv_stats(struct tenv *e, uint32_t fe_id, struct kxp_stats *s)
{
	int ncpu = libbpf_num_possible_cpus();
	struct kxp_stats v[ncpu > 0 ? ncpu : 1];

	memset(s, 0, sizeof(*s));
	if (ncpu <= 0 || bpf_map_lookup_elem(kxp_dp_map_fd(e->dp, KXP_MAP_STATS), &fe_id, v))
		return;
	for (int i = 0; i < ncpu; i++) {
		s->packets += v[i].packets;
		s->bytes += v[i].bytes;
		s->drops += v[i].drops;
		s->rejects += v[i].rejects;
		s->passed += v[i].passed;
		s->snat_fail += v[i].snat_fail;
	}
}

uint32_t tenv_fe_id(struct tenv *e, uint32_t addr, uint16_t port, uint8_t proto, uint8_t scope)
{
	struct kxp_svc_key k = { .addr = addr, .port = htons(port), .proto = proto, .scope = scope };
	struct kxp_svc_val v;

	if (bpf_map_lookup_elem(kxp_dp_map_fd(e->dp, KXP_MAP_SVC), &k, &v))
		return 0;
	return v.fe_id;
}

static void report(const struct trun *r, const char *what, const char *want)
{
	char a[160], b[160];

	kxp_test_fail(__FILE__, __LINE__, "%s: ret %d\n      input:    %s\n      expected: %s\n      actual:   %s",
		      what, r->ret, tpkt_str(r->in, r->in_len, a, sizeof(a)), want,
		      tpkt_str(r->out, r->out_len, b, sizeof(b)));
}

bool tcheck_untouched(const struct trun *r, const char *what)
{
	if (r->out_len == r->in_len && !memcmp(r->in, r->out, r->in_len))
		return true;
	report(r, what, "the input, unchanged");
	return false;
}

bool tcheck_pkt(const struct trun *r, uint32_t sa, uint16_t sp, uint32_t da, uint16_t dp, const char *what)
{
	struct tpkt_dec d;
	char want[160], s[16], t[16];

	tpkt_decode(r->out, r->out_len, &d);
	if (d.ipv4 && d.saddr == sa && d.daddr == da && d.sport == sp && d.dport == dp && d.l3_ok && d.l4_ok &&
	    r->out_len == r->in_len)
		return true;
	snprintf(want, sizeof(want), "%s:%u -> %s:%u with valid checksums", tpkt_ip(sa, s), sp, tpkt_ip(da, t), dp);
	report(r, what, want);
	return false;
}
