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
bool tenv_ct(struct tenv *e, uint32_t sa, uint32_t da, uint16_t sp, uint16_t dp, uint8_t proto, uint8_t dir,
	     struct kxp_ct_val *v);
int tenv_ct_count(struct tenv *e);
uint64_t tenv_reason(struct tenv *e, unsigned r);
void tenv_stats(struct tenv *e, uint32_t fe_id, struct kxp_stats *s);
/* fe_id of a frontend as written by the writer (0 if absent). */
uint32_t tenv_fe_id(struct tenv *e, uint32_t addr, uint16_t port, uint8_t proto, uint8_t scope);

/* Checks with decoded diagnostics on failure. */
bool tcheck_untouched(const struct trun *r, const char *what);
bool tcheck_pkt(const struct trun *r, uint32_t sa, uint16_t sp, uint32_t da, uint16_t dp, const char *what);

#endif
