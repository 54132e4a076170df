/* Kernel capability probe (see probe.h): tiny programs loaded once per
 * process. libbpf's own helper probe counts a helper as present unless the
 * verifier says "invalid func"/"unknown func"; some kernels refuse a known
 * helper for a program type with "cannot use helper" instead (a 6.18 build
 * does so for bpf_xdp_adjust_meta in XDP), so helpers are probed here with
 * every refusal wording the verifier has. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <kxp/abi.h>

#include "dataplane/probe.h"

static const struct kxp_cap_desc descs[KXP_CAP__COUNT] = {
#define KXP_CAP_DESC(id, n, nd, s, w) [KXP_CAP_##id] = { .name = n, .need = KXP_NEED_##nd, .since = s, .without = w },
	KXP_CAPS(KXP_CAP_DESC)
#undef KXP_CAP_DESC
};

static const char *const ids[KXP_CAP__COUNT] = {
#define KXP_CAP_ID(id, n, nd, s, w) [KXP_CAP_##id] = #id,
	KXP_CAPS(KXP_CAP_ID)
#undef KXP_CAP_ID
};

const struct kxp_cap_desc *kxp_cap_desc(enum kxp_cap_id id)
{
	return (unsigned)id < KXP_CAP__COUNT ? &descs[id] : NULL;
}

const char *kxp_cap_need_name(enum kxp_cap_need need)
{
	static const char *const n[] = { "core", "xdp", "socket-lb", "fallback" };

	return (unsigned)need < sizeof(n) / sizeof(n[0]) ? n[need] : "unknown";
}

#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define MOV_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define MOV_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define ADD_IMM(d, i) INSN(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define ST_MEM(sz, d, o, i) INSN(BPF_ST | BPF_MEM | (sz), d, 0, o, i)

/* Load insns as a program of this type; 0, or -errno with the log in buf. */
static int try_load(enum bpf_prog_type type, enum bpf_attach_type att, const struct bpf_insn *insns, size_t n,
		    char *buf, size_t len)
{
	LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = att, .log_buf = buf, .log_size = (__u32)len,
		    .log_level = buf ? 1 : 0);
	int fd;

	if (buf)
		buf[0] = '\0';
	fd = bpf_prog_load(type, "kxp_probe", "GPL", insns, n, &o);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

/* The return value every program type accepts (cgroup hooks: 0 or 1). */
static int ok_ret(enum bpf_prog_type type)
{
	return type == BPF_PROG_TYPE_XDP ? 2 /* XDP_PASS */ : type == BPF_PROG_TYPE_CGROUP_SOCK_ADDR ? 1 : 0;
}

/* A call with r1 = ctx and zeros for the rest: the helper exists for this
 * program type unless the verifier names it unknown or forbidden (a
 * complaint about an argument means it knows the helper). */
static bool probe_helper(enum bpf_prog_type type, enum bpf_attach_type att, int func)
{
	struct bpf_insn insns[] = {
		MOV_IMM(BPF_REG_2, 0), MOV_IMM(BPF_REG_3, 0), MOV_IMM(BPF_REG_4, 0), MOV_IMM(BPF_REG_5, 0),
		CALL(func),            MOV_IMM(BPF_REG_0, ok_ret(type)),          EXIT(),
	};
	static char log[16384];
	int err = try_load(type, att, insns, sizeof(insns) / sizeof(insns[0]), log, sizeof(log));

	if (!err)
		return true;
	if (strstr(log, "invalid func") || strstr(log, "unknown func") || strstr(log, "cannot use helper") ||
	    strstr(log, "cannot call"))
		return false;
	/* no log at all: the program type itself was refused */
	return log[0] != '\0';
}

/* Does bpf_fib_lookup take this flag? Run a TC program that calls it on an
 * IPv4 lookup from lo: an unknown flag is -EINVAL before anything else is
 * looked at; any other answer (a route or not) means the flag is known. */
static bool probe_fib_flag(uint32_t flag)
{
	struct bpf_insn insns[] = {
		MOV_REG(BPF_REG_6, BPF_REG_1),
		ST_MEM(BPF_DW, BPF_REG_10, -64, 0), ST_MEM(BPF_DW, BPF_REG_10, -56, 0),
		ST_MEM(BPF_DW, BPF_REG_10, -48, 0), ST_MEM(BPF_DW, BPF_REG_10, -40, 0),
		ST_MEM(BPF_DW, BPF_REG_10, -32, 0), ST_MEM(BPF_DW, BPF_REG_10, -24, 0),
		ST_MEM(BPF_DW, BPF_REG_10, -16, 0), ST_MEM(BPF_DW, BPF_REG_10, -8, 0),
		ST_MEM(BPF_B, BPF_REG_10, -64, 2 /* AF_INET */), ST_MEM(BPF_W, BPF_REG_10, -56, 1 /* lo */),
		MOV_REG(BPF_REG_1, BPF_REG_6), MOV_REG(BPF_REG_2, BPF_REG_10), ADD_IMM(BPF_REG_2, -64),
		MOV_IMM(BPF_REG_3, 64), MOV_IMM(BPF_REG_4, (int)flag), CALL(BPF_FUNC_fib_lookup), EXIT(),
	};
	uint8_t pkt[64] = { [12] = 0x08, [13] = 0x00, [14] = 0x45 };
	LIBBPF_OPTS(bpf_prog_load_opts, lo);
	LIBBPF_OPTS(bpf_test_run_opts, ro, .data_in = pkt, .data_size_in = sizeof(pkt), .repeat = 1);
	int fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "kxp_probe", "GPL", insns, sizeof(insns) / sizeof(insns[0]), &lo);
	bool ok;

	if (fd < 0)
		return false;
	ok = !bpf_prog_test_run_opts(fd, &ro) && (int)ro.retval != -EINVAL;
	close(fd);
	return ok;
}

static bool probe_attach(enum bpf_prog_type type, enum bpf_attach_type att)
{
	struct bpf_insn insns[] = { MOV_IMM(BPF_REG_0, ok_ret(type)), EXIT() };

	return try_load(type, att, insns, 2, NULL, 0) == 0;
}

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

/* SO_NETNS_COOKIE (5.14): how kxp tells the node's sockets from pods'. */
int kxp_netns_cookie(uint64_t *out)
{
	socklen_t len = sizeof(*out);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), err = 0;

	if (fd < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, out, &len))
		err = -errno;
	close(fd);
	return err;
}

/* Test overrides: capabilities named in var are reported as `to`. */
static void apply_override(struct kxp_caps *c, const char *var, bool to)
{
	const char *list = getenv(var);
	char *copy, *tok, *save = NULL;

	if (!list || !*list || !(copy = strdup(list)))
		return;
	for (tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
		for (int i = 0; i < KXP_CAP__COUNT; i++)
			if (!strcmp(tok, ids[i]))
				c->have[i] = to;
	free(copy);
}

const struct kxp_caps *kxp_probe(void)
{
	static struct kxp_caps c;
	static bool done;
	struct utsname u;

	if (done)
		return &c;
	if (!uname(&u)) {
		snprintf(c.kernel, sizeof(c.kernel), "%s", u.release);
		sscanf(u.release, "%d.%d", &c.major, &c.minor);
	}
	c.have[KXP_CAP_PROG_TC] = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SCHED_CLS, NULL) == 1;
	c.have[KXP_CAP_PROG_XDP] = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_XDP, NULL) == 1;
	c.have[KXP_CAP_PROG_SOCK_ADDR] = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, NULL) == 1;
	c.have[KXP_CAP_MAP_HASH] = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_HASH, NULL) == 1;
	c.have[KXP_CAP_MAP_LRU_HASH] = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_LRU_HASH, NULL) == 1;
	c.have[KXP_CAP_MAP_PERCPU_ARRAY] = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_PERCPU_ARRAY, NULL) == 1;
	c.have[KXP_CAP_MAP_LPM_TRIE] = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_LPM_TRIE, NULL) == 1;
	c.have[KXP_CAP_MAP_ARRAY_OF_MAPS] = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_ARRAY_OF_MAPS, NULL) == 1;
	if (c.have[KXP_CAP_PROG_TC]) {
		c.have[KXP_CAP_H_FIB_TC] = probe_helper(BPF_PROG_TYPE_SCHED_CLS, 0, BPF_FUNC_fib_lookup);
		c.have[KXP_CAP_H_REDIRECT_NEIGH] = probe_helper(BPF_PROG_TYPE_SCHED_CLS, 0, BPF_FUNC_redirect_neigh);
		c.have[KXP_CAP_H_CHANGE_TAIL] = probe_helper(BPF_PROG_TYPE_SCHED_CLS, 0, BPF_FUNC_skb_change_tail);
		c.have[KXP_CAP_H_COARSE_CLOCK] =
			probe_helper(BPF_PROG_TYPE_SCHED_CLS, 0, BPF_FUNC_ktime_get_coarse_ns);
		c.have[KXP_CAP_H_LOOP] = probe_helper(BPF_PROG_TYPE_SCHED_CLS, 0, BPF_FUNC_loop);
		if (c.have[KXP_CAP_H_FIB_TC]) {
			c.have[KXP_CAP_FIB_SKIP_NEIGH] = probe_fib_flag(BPF_FIB_LOOKUP_SKIP_NEIGH);
			c.have[KXP_CAP_FIB_SRC] = probe_fib_flag(BPF_FIB_LOOKUP_SRC);
		}
	}
	if (c.have[KXP_CAP_PROG_XDP]) {
		c.have[KXP_CAP_H_FIB_XDP] = probe_helper(BPF_PROG_TYPE_XDP, 0, BPF_FUNC_fib_lookup);
		c.have[KXP_CAP_H_XDP_META] = probe_helper(BPF_PROG_TYPE_XDP, 0, BPF_FUNC_xdp_adjust_meta);
	}
	if (c.have[KXP_CAP_PROG_SOCK_ADDR]) {
		c.have[KXP_CAP_ATT_CONNECT4] = probe_attach(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_CONNECT);
		c.have[KXP_CAP_ATT_SENDMSG4] = probe_attach(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_UDP4_SENDMSG);
		c.have[KXP_CAP_ATT_RECVMSG4] = probe_attach(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_UDP4_RECVMSG);
		c.have[KXP_CAP_ATT_GETPEERNAME4] =
			probe_attach(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_GETPEERNAME);
		if (c.have[KXP_CAP_ATT_CONNECT4]) {
			c.have[KXP_CAP_H_NETNS_COOKIE] = probe_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
								      BPF_CGROUP_INET4_CONNECT, BPF_FUNC_get_netns_cookie);
			c.have[KXP_CAP_H_SET_RETVAL] = probe_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
								    BPF_CGROUP_INET4_CONNECT, BPF_FUNC_set_retval);
		}
	}
	{
		uint64_t cookie;

		c.have[KXP_CAP_SO_NETNS_COOKIE] = kxp_netns_cookie(&cookie) == 0;
	}
	c.have[KXP_CAP_BTF_VMLINUX] = access("/sys/kernel/btf/vmlinux", R_OK) == 0;
	apply_override(&c, "KXP_PROBE_DENY", false);
	apply_override(&c, "KXP_PROBE_FORCE", true);
	done = true;
	return &c;
}

uint32_t kxp_caps_features(const struct kxp_caps *c)
{
	return (c->have[KXP_CAP_H_XDP_META] ? KXP_FEAT_XDP_META : 0) |
	       (c->have[KXP_CAP_H_COARSE_CLOCK] ? KXP_FEAT_COARSE_CLOCK : 0) |
	       (c->have[KXP_CAP_H_SET_RETVAL] ? KXP_FEAT_SET_RETVAL : 0) |
	       (c->have[KXP_CAP_H_LOOP] ? KXP_FEAT_BPF_LOOP : 0) |
	       (c->have[KXP_CAP_FIB_SKIP_NEIGH] ? KXP_FEAT_FIB_SKIP_NEIGH : 0) |
	       (c->have[KXP_CAP_FIB_SRC] ? KXP_FEAT_FIB_SRC : 0);
}

int kxp_caps_missing(const struct kxp_caps *c, enum kxp_cap_need need)
{
	for (int i = 0; i < KXP_CAP__COUNT; i++)
		if (descs[i].need == need && !c->have[i])
			return i;
	return -1;
}
