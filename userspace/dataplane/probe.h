/* Kernel capability probe: what the running kernel offers the programs
 * (program and map types, helpers per program type, attach points, BTF),
 * probed once per process by loading tiny programs, so the loader can pick
 * code paths and fallbacks before the verifier ever sees the real objects. */
#ifndef KXP_PROBE_H
#define KXP_PROBE_H

#include <stdbool.h>
#include <stdint.h>

/* What a missing capability costs. */
enum kxp_cap_need {
	KXP_NEED_CORE,     /* kxp cannot run without it: refuse to start */
	KXP_NEED_XDP,      /* the XDP program: without it external devices use TC only */
	KXP_NEED_SOCK,     /* the socket hooks: without them no socket LB */
	KXP_NEED_FALLBACK, /* optional: a fallback path is used instead */
};

/* One list (X-macro) for every probed capability: id, name shown by
 * `kxp status`, what needs it, the kernel that added it, what happens
 * without it. */
#define KXP_CAPS(X)                                                                                     \
	X(PROG_TC, "prog_type sched_cls", CORE, "4.1", "")                                               \
	X(PROG_XDP, "prog_type xdp", XDP, "4.8", "external devices use TC ingress only")                  \
	X(PROG_SOCK_ADDR, "prog_type cgroup_sock_addr", SOCK, "4.17", "no socket LB")                     \
	X(MAP_HASH, "map_type hash", CORE, "3.19", "")                                                   \
	X(MAP_LRU_HASH, "map_type lru_hash", CORE, "4.10", "")                                           \
	X(MAP_PERCPU_ARRAY, "map_type percpu_array", CORE, "4.6", "")                                    \
	X(MAP_LPM_TRIE, "map_type lpm_trie", CORE, "4.11", "")                                           \
	X(MAP_ARRAY_OF_MAPS, "map_type array_of_maps", CORE, "4.12", "")                                 \
	X(H_FIB_TC, "helper fib_lookup (tc)", CORE, "4.18", "")                                          \
	X(H_REDIRECT_NEIGH, "helper redirect_neigh (tc)", CORE, "5.10", "")                              \
	X(H_CHANGE_TAIL, "helper skb_change_tail (tc)", CORE, "4.9", "")                                 \
	X(FIB_SKIP_NEIGH, "fib_lookup flag SKIP_NEIGH", FALLBACK, "6.3",                                  \
	  "TC's FIB lookups also look up the neighbour (a little more work per forwarded packet)")       \
	X(FIB_SRC, "fib_lookup flag SRC", FALLBACK, "6.7",                                                \
	  "masquerade uses the primary node address for every backend")                                  \
	X(H_FIB_XDP, "helper fib_lookup (xdp)", XDP, "4.18", "external devices use TC ingress only")      \
	X(H_XDP_META, "helper xdp_adjust_meta (xdp)", FALLBACK, "4.15",                                   \
	  "TC ingress counts the frontend packets XDP passes on")                                        \
	X(H_COARSE_CLOCK, "helper ktime_get_coarse_ns", FALLBACK, "5.11",                                 \
	  "the packet path reads bpf_ktime_get_ns (~20 ns more per packet)")                             \
	X(H_LOOP, "helper loop", FALLBACK, "5.17",                                                        \
	  "objects without bpf_loop: 8 SNAT port candidates per new flow instead of 32")                 \
	X(H_NETNS_COOKIE, "helper get_netns_cookie (sock_addr)", SOCK, "5.7", "no socket LB")             \
	X(H_SET_RETVAL, "helper set_retval (sock_addr)", FALLBACK, "5.18",                                \
	  "connect() to a Service without endpoints fails with EPERM, not ECONNREFUSED")                 \
	X(ATT_CONNECT4, "attach cgroup/connect4", SOCK, "4.17", "no socket LB")                          \
	X(ATT_SENDMSG4, "attach cgroup/sendmsg4", SOCK, "4.18", "no socket LB")                          \
	X(ATT_RECVMSG4, "attach cgroup/recvmsg4", SOCK, "5.2", "no socket LB")                           \
	X(ATT_GETPEERNAME4, "attach cgroup/getpeername4", SOCK, "5.8", "no socket LB")                   \
	X(SO_NETNS_COOKIE, "sockopt SO_NETNS_COOKIE", FALLBACK, "5.14",                                   \
	  "socket LB cannot tell the node's sockets: every socket in the cgroup gets the node's rules")   \
	X(BTF_VMLINUX, "kernel BTF", FALLBACK, "5.4", "none needed (kxp does not use CO-RE)")

enum kxp_cap_id {
#define KXP_CAP_ENUM(id, name, need, since, without) KXP_CAP_##id,
	KXP_CAPS(KXP_CAP_ENUM)
#undef KXP_CAP_ENUM
	KXP_CAP__COUNT,
};

struct kxp_cap_desc {
	const char *name;
	enum kxp_cap_need need;
	const char *since;   /* the mainline kernel that added it */
	const char *without; /* what kxp does without it */
};

struct kxp_caps {
	char kernel[65];          /* uname -r */
	int major, minor;
	bool have[KXP_CAP__COUNT];
};

/* The oldest kernel kxp is built and tested for (README, `kxp status`). */
#define KXP_MIN_KERNEL "5.10"

const struct kxp_cap_desc *kxp_cap_desc(enum kxp_cap_id id);
/* "core", "xdp", "socket-lb", "fallback" (`kxp status`, the metrics' label). */
const char *kxp_cap_need_name(enum kxp_cap_need need);
/* Probe once per process (cached; thread-unsafe on the first call). Setting
 * KXP_PROBE_DENY to a comma list of capability ids (e.g. "H_LOOP,H_XDP_META")
 * reports them missing, so tests exercise the fallbacks on any kernel;
 * KXP_PROBE_FORCE reports them present (tests of a refused load). */
const struct kxp_caps *kxp_probe(void);
/* The cookie of the calling thread's network namespace (SO_NETNS_COOKIE,
 * 5.14); -errno where the kernel has no such option. */
int kxp_netns_cookie(uint64_t *out);
/* KXP_FEAT_* bits (include/kxp/abi.h) for the objects' kxp_features. */
uint32_t kxp_caps_features(const struct kxp_caps *c);
/* The first missing capability of a need, or -1. */
int kxp_caps_missing(const struct kxp_caps *c, enum kxp_cap_need need);

#endif
