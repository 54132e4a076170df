/* Test environment for the datapath fixtures: a dataplane opened through the
 * real loader, provisioned through the real writer from a hand-built
 * struct kxp_desired, and BPF_PROG_TEST_RUN wrappers that print the input,
 * expected and actual packet on failure. */
#ifndef KXP_TEST_TENV_H
#define KXP_TEST_TENV_H

#include <kxp/abi.h>

#include "dataplane/dataplane.h"
#include "model/desired.h"
#include "pkt.h"

#define TENV_MAX_FE 32
#define TENV_MAX_SETS 16
#define TENV_MAX_BE 8

struct tenv {
	struct kxp_dp *dp;
	struct kxp_desired d;
	struct kxp_d_frontend fe[TENV_MAX_FE];
	struct kxp_d_set sets[TENV_MAX_SETS];
	struct kxp_d_backend be[TENV_MAX_SETS][TENV_MAX_BE];
	struct kxp_d_nodeip nip[4];
	char errbuf[256];
};

/* Default node: NODE_IP (local, NodePorts), cluster CIDR 10.244.0.0/16,
 * service CIDR 10.96.0.0/12, nothing else. Opens unpinned maps. */
int tenv_open(struct tenv *e);
/* The same with maps pinned under /sys/fs/bpf/kxp-<instance>. */
int tenv_open_instance(struct tenv *e, const char *instance);
void tenv_close(struct tenv *e);
/* A set of n backends (proto, flags 0); returns its index. */
int tenv_set(struct tenv *e, uint8_t proto, int n, const uint32_t *addr, const uint16_t *port);
/* Replace the backends of an existing set. */
void tenv_set_replace(struct tenv *e, int set, int n, const uint32_t *addr, const uint16_t *port);
void tenv_fe(struct tenv *e, uint32_t addr, uint16_t port, uint8_t proto, uint8_t scope, uint8_t kind,
	     uint16_t flags, int set);
/* kxp_dp_apply; returns its result. */
int tenv_apply(struct tenv *e);

/* A private network namespace for this (forked) test, so FIB lookups are
 * deterministic: ext0 (NODE_IP/24, veth to ext1) with neighbours NODE2 (route
 * to 10.244.2.0/24) and ROUTER (default route), 10.244.3.0/24 via NODE3 whose
 * neighbour is unknown (NO_NEIGH), and pod0 (veth to pod1) with /32 routes to
 * POD_A and POD_B and their neighbours. Forwarding on. Programs then run with
 * tenv_ifindex as their ingress device. Returns 0 or -1 (test failed). */
#define NODE2_IP A(192, 168, 50, 2)
#define ROUTER_IP A(192, 168, 50, 254)
#define NODE3_IP A(192, 168, 50, 3)
#define POD_N A(10, 244, 3, 40) /* behind NODE3: no neighbour entry */
extern const uint8_t TMAC_NODE2[6], TMAC_ROUTER[6], TMAC_POD_A[6], TMAC_POD_B[6];
int tenv_netns(void);
/* Ingress device of the following runs (ifindex), default 1 (lo). */
extern int tenv_ifindex;
int tenv_dev(const char *name); /* sets tenv_ifindex; returns it (0 if unknown) */
/* Run a shell command in the test's namespace; 0 on success. */
int tenv_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Program runs. */
enum tprog { T_XDP, T_TC_IN, T_TC_EG };
struct trun {
	int ret;                 /* program return value */
	uint8_t out[TPKT_MAX];
	uint32_t out_len;
	uint8_t in[TPKT_MAX];
	uint32_t in_len;
	uint32_t meta_len;       /* XDP: metadata bytes the program added */
	uint32_t meta;           /* their first 4 bytes */
};
int tenv_run(struct tenv *e, enum tprog prog, const struct tpkt *t, struct trun *r);
int tenv_run_fd(int prog_fd, bool xdp, const uint8_t *in, uint32_t in_len, struct trun *r);

/* Map reads. */
/* Raw frame runs (frame already in r->in / r->in_len). */
int tenv_run_raw(struct tenv *e, enum tprog prog, struct trun *r);
bool tenv_ct(struct tenv *e, uint32_t sa, uint32_t da, uint16_t sp, uint16_t dp, uint8_t proto, uint8_t dir,
	     struct kxp_ct_val *v);
int tenv_ct_count(struct tenv *e);
uint64_t tenv_reason(struct tenv *e, unsigned r);
void tenv_stats(struct tenv *e, uint32_t fe_id, struct kxp_stats *s);
/* fe_id of a frontend as written by the writer (0 if absent). */
uint32_t tenv_fe_id(struct tenv *e, uint32_t addr, uint16_t port, uint8_t proto, uint8_t scope);

/* Checks with decoded diagnostics on failure. */
bool tcheck_untouched(const struct trun *r, const char *what);
/* r->out is the ICMP destination unreachable (code) answering r->in:
 * frontend -> client, MACs swapped, quote = IP header + 8 bytes, checksums. */
bool tcheck_reject(const struct trun *r, uint8_t code, const char *what);
bool tcheck_pkt(const struct trun *r, uint32_t sa, uint16_t sp, uint32_t da, uint16_t dp, const char *what);

#endif
