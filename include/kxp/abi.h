/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* kxp map contract: the one definition of every map key/value, flag, limit and
 * reason shared by the BPF programs and userspace. No logic lives here. */
#ifndef KXP_ABI_H
#define KXP_ABI_H

#include <linux/types.h>

/* Bumped whenever a key/value layout, a map's type or a map's meaning changes.
 * Stored in kxp_config.layout_version so an agent can recognise older pins:
 * those of an older version are migrated (the loader recreates every map
 * but the flow state, which the writer then fills from scratch), those of a
 * newer one refused.
 *   1: the first layout.
 *   2: kxp_backend4 and kxp_revnat4 are arrays by id (were hashes).
 *   3: kxp_slot is one array; a set's slots are a range of it, which
 *      kxp_svc_val.base starts (was a hash by {sp_id, slot}).
 *   4: kxp_ct4 is a hash (was an LRU hash): a full table refuses new flows
 *      and never evicts a live one; expired entries are deleted by kxp's
 *      collector (kxp_dp_ct_gc). Entries are copied over on migration. */
#define KXP_LAYOUT_VERSION 4

/* Default sizes (all raisable at load time, see the loader). */
#define KXP_DEF_MAX_FRONTENDS 65536   /* kxp_svc4 entries, fe ids, sp ids */
#define KXP_DEF_MAX_BACKENDS 262144   /* kxp_backend4 entries */
#define KXP_DEF_MAX_SLOTS 524288      /* kxp_slot entries (a backend may sit in several sets) */
#define KXP_DEF_MAX_CT 524288         /* kxp_ct4 (hash, preallocated) */
#define KXP_DEF_MAX_NODEIPS 256       /* kxp_nodeip4 */
#define KXP_DEF_MAX_LBSR 65536        /* kxp_lbsr4 (LPM) */
#define KXP_DEF_MAX_FRAG 8192         /* kxp_frag4 (LRU), datagrams in flight */
#define KXP_MAX_CIDRS 8               /* per list in kxp_config */
#define KXP_MAX_SET_BACKENDS 65535    /* kxp_svc_val.count is a u16 */

/* Optional kernel facilities, probed by the loader before load (see
 * userspace/dataplane/probe.c) and handed to every object in its read-only
 * global kxp_features: a program tests a bit before it calls the helper, so
 * on a kernel without it the verifier removes the call as dead code and
 * never sees an unknown helper. bpf_loop cannot be hidden that way (the
 * callback's address is resolved before dead code is removed): objects built
 * with -DKXP_NO_BPF_LOOP (build/<name>_noloop.bpf.o) serve kernels below 5.17. */
#define KXP_FEAT_XDP_META (1u << 0)     /* bpf_xdp_adjust_meta in XDP (XDP marks what it counted) */
#define KXP_FEAT_COARSE_CLOCK (1u << 1) /* bpf_ktime_get_coarse_ns (5.11) for the packet-path clock */
#define KXP_FEAT_SET_RETVAL (1u << 2)   /* bpf_set_retval in cgroup hooks (5.18): ECONNREFUSED */
#define KXP_FEAT_BPF_LOOP (1u << 3)     /* bpf_loop (5.17): the object was built with it */
#define KXP_FEAT_FIB_SKIP_NEIGH (1u << 4) /* bpf_fib_lookup takes BPF_FIB_LOOKUP_SKIP_NEIGH */
#define KXP_FEAT_FIB_SRC (1u << 5)      /* bpf_fib_lookup takes BPF_FIB_LOOKUP_SRC */

/* Pin names: files under /sys/fs/bpf/kxp-<instance>/ (map names, <= 15 chars). */
#define KXP_PIN_SVC "kxp_svc4"
#define KXP_PIN_SLOT "kxp_slot"
#define KXP_PIN_BACKEND "kxp_backend4"
#define KXP_PIN_REVNAT "kxp_revnat4"
#define KXP_PIN_CT "kxp_ct4"
#define KXP_PIN_SNAT_OLD "kxp_snat4"  /* SNAT claims before they moved into kxp_ct4; removed on load */
#define KXP_PIN_NODEIP "kxp_nodeip4"
#define KXP_PIN_LBSR "kxp_lbsr4"
#define KXP_PIN_CONFIG "kxp_config"
#define KXP_PIN_STATS "kxp_stats"
#define KXP_PIN_REASONS "kxp_reasons"
#define KXP_PIN_FRAG "kxp_frag4"
#define KXP_PIN_REJRL "kxp_rejrl"

/* ---- kxp_svc4: frontend -> service port set ------------------------------ */

/* Scope separates the endpoint set for one frontend by traffic source.
 * Every frontend has a DEFAULT entry. An external frontend (NodePort, LB IP,
 * externalIP) of an eTP=Local service also has an INTERNAL entry: its DEFAULT
 * entry holds the local set (used by external clients) and its INTERNAL entry
 * the cluster-wide set (used by pod and node sources), flagged
 * KXP_SVC_F_SPLIT on the DEFAULT entry. */
enum kxp_scope {
	KXP_SCOPE_DEFAULT = 0,
	KXP_SCOPE_INTERNAL = 1,
};

enum kxp_fe_kind {
	KXP_FE_NONE = 0,
	KXP_FE_CLUSTERIP = 1,
	KXP_FE_NODEPORT = 2,
	KXP_FE_LOADBALANCER = 3,
	KXP_FE_EXTERNALIP = 4,
};

enum kxp_algo {
	KXP_ALGO_RANDOM = 0,
	KXP_ALGO_RR = 1,
	KXP_ALGO_MAGLEV = 2,
};

/* kxp_svc_val.flags */
#define KXP_SVC_F_SPLIT (1u << 0)     /* DEFAULT entry: pod/node sources use the INTERNAL entry */
#define KXP_SVC_F_LOCAL_SET (1u << 1) /* this entry's set is the node-local set (eTP/iTP=Local) */
#define KXP_SVC_F_REJECT (1u << 2)    /* count==0 and no usable endpoint anywhere: reject (else drop) */
#define KXP_SVC_F_WILDCARD (1u << 3)  /* port 0/proto 0 entry of an active ClusterIP: other ports reject */
#define KXP_SVC_F_AFFINITY (1u << 4)  /* sessionAffinity ClientIP (timeout in affinity_timeout) */
#define KXP_SVC_F_LBSR (1u << 5)      /* loadBalancerSourceRanges apply (kxp_lbsr4, by fe_id) */
#define KXP_SVC_F_EXTERNAL (1u << 6)  /* an external destination (NodePort, LB IP, externalIP) */
#define KXP_SVC_F_ETP_LOCAL (1u << 7) /* service has externalTrafficPolicy=Local (informative) */
#define KXP_SVC_F_ITP_LOCAL (1u << 8) /* service has internalTrafficPolicy=Local (informative) */

struct kxp_svc_key {
	__be32 addr;
	__be16 port;  /* 0 for a WILDCARD entry */
	__u8 proto;   /* IPPROTO_TCP/UDP/SCTP; 0 for a WILDCARD entry */
	__u8 scope;   /* enum kxp_scope */
};

struct kxp_svc_val {
	__u32 fe_id;            /* frontend id: kxp_revnat4, kxp_stats, kxp_lbsr4 */
	__u32 sp_id;            /* service-port set id: Maglev, round robin, affinity, membership */
	__u16 count;            /* usable backends: kxp_slot[base .. base + count - 1] */
	__u16 flags;            /* KXP_SVC_F_* */
	__u8 kind;              /* enum kxp_fe_kind */
	__u8 algo;              /* enum kxp_algo */
	__u16 pad;
	__u32 affinity_timeout; /* seconds; 0 = no affinity */
	__u32 base;             /* the set's first slot in kxp_slot (its range, count long) */
};

/* ---- kxp_slot: array, slot index -> backend id ----------------------------- */
/* A set's slots are the range [base, base + count) its frontends name; 0 =
 * an unused slot. The writer moves a set that outgrows its range to a new
 * one and reuses a freed range only in a later apply, so a packet that read
 * a frontend before the move still finds that set's backends there. */

/* ---- kxp_backend4: array, backend id -> address (addr 0: id unused) ------- */
#define KXP_BE_F_LOCAL (1u << 0)       /* endpoint's nodeName is this node */
#define KXP_BE_F_TERMINATING (1u << 1) /* serving && terminating (fallback set) */

struct kxp_backend {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 flags; /* KXP_BE_F_* */
};

/* ---- kxp_revnat4: array, frontend id -> frontend address (addr 0: unused) -- */
struct kxp_revnat {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 kind; /* enum kxp_fe_kind */
};

/* ---- kxp_ct4: flows ------------------------------------------------------ *
 * Lifetimes, measured from last_seen (an expired entry is a miss to the
 * programs and deleted by the collector once its other direction expired
 * too; bpf/lib/ct.h has the rules): */
#define KXP_CT_NEW_S 60           /* TCP/SCTP before any reply */
#define KXP_CT_EST_S (8 * 3600)   /* TCP/SCTP after a reply */
#define KXP_CT_CLOSING_S 10       /* TCP after FIN or RST */
#define KXP_CT_UDP_S 120          /* UDP (and ICMP echo) */

enum kxp_dir {
	KXP_DIR_FWD = 0,   /* as the client sent it: client -> frontend */
	KXP_DIR_REPLY = 1, /* as the backend sends it: backend -> client (or SNAT address) */
};

/* A 5-tuple exactly as it appears in the packet, plus its direction. */
struct kxp_flow4 {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 dir; /* enum kxp_dir */
	__u16 pad;
};

/* The rewritten tuple: a ct entry stores the translation itself, never an id
 * that could be reused. FWD: {client or SNAT addr, backend}. REPLY: {frontend,
 * client}. ICMP ids are carried in the port fields. */
struct kxp_nat4 {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
};

/* kxp_ct_val.flags */
#define KXP_CT_F_SNAT (1u << 0)       /* flow is masqueraded (its REPLY entry is the port claim) */
#define KXP_CT_F_SEEN_REPLY (1u << 1) /* a reply was translated */
#define KXP_CT_F_CLOSING (1u << 2)    /* FIN or RST seen: short lifetime */
#define KXP_CT_F_HOSTNS (1u << 3)     /* created by a socket hook */
#define KXP_CT_F_LOCAL_BE (1u << 4)   /* the backend is on this node (SNAT flows: TC forwards them) */
/* Per direction, NOT mirrored onto the other entry (unlike the flags above):
 * set on the entry of the direction whose packet carried the FIN or RST. A
 * flow is closed once it saw an RST, or a FIN each way (both entries read
 * together, by the SNAT allocator only). */
#define KXP_CT_F_FIN_ORIG (1u << 5)    /* FWD entry: the client sent a FIN */
#define KXP_CT_F_FIN_REPLY (1u << 6)   /* REPLY entry: the backend sent a FIN */
#define KXP_CT_F_RST (1u << 7)         /* this direction sent an RST */
#define KXP_CT_F_CLOSE_FIRST (1u << 8) /* this direction's FIN/RST was the flow's first */

struct kxp_ct_val {
	struct kxp_nat4 nat; /* the tuple to write into the packet */
	__u32 fe_id;
	__u16 flags;         /* KXP_CT_F_* */
	__u8 kind;           /* enum kxp_fe_kind of the frontend */
	__u8 pad;
	__u64 created;       /* bpf_ktime_get_ns() */
	__u64 last_seen;     /* bpf_ktime_get_ns() */
};

/* ---- kxp_nodeip4: node address -> flags ----------------------------------- */
#define KXP_NODEIP_F_LOCAL (1u << 0)    /* assigned to this node (source class "node") */
#define KXP_NODEIP_F_NODEPORT (1u << 1) /* serves NodePorts (--nodeport-addresses) */
#define KXP_NODEIP_F_PRIMARY (1u << 2)  /* the node's primary address (SNAT source default) */

struct kxp_nodeip {
	__u32 flags;
	__u32 ifindex; /* device holding the address, 0 if unknown */
};

/* ---- kxp_lbsr4: {fe_id, prefix} -> allow (LPM trie, Spine II) ------------- */
struct kxp_lbsr_key {
	__u32 prefixlen; /* 32 + prefix length of the source range */
	__u32 fe_id;     /* matched with a full 32-bit prefix */
	__be32 addr;
};

/* ---- kxp_config: array[1], node-wide settings ----------------------------- */
struct kxp_cidr4 {
	__be32 addr;
	__be32 mask;
};

#define KXP_CFG_F_MASQ_ALL (1u << 0) /* --masquerade-all */

/* SNAT port range when kxp_config.snat_port_min/max are 0: above the
 * privileged ports, below the NodePort range (30000-32767) and the host's
 * ephemeral range (32768-60999), so a masqueraded flow's reply tuple never
 * equals one of the node's own connections. 28976 ports per backend
 * address:port (the claim key includes the backend). */
#define KXP_SNAT_PORT_MIN_DEF 1024
#define KXP_SNAT_PORT_MAX_DEF 29999

struct kxp_config {
	__u32 layout_version; /* KXP_LAYOUT_VERSION of the writer; 0 = not configured */
	__u32 flags;          /* KXP_CFG_F_* */
	__u32 n_cluster;      /* valid entries in cluster[] (the local detector) */
	__u32 n_service;      /* valid entries in service[] */
	struct kxp_cidr4 cluster[KXP_MAX_CIDRS];
	struct kxp_cidr4 service[KXP_MAX_CIDRS];
	__be32 snat_addr;     /* masquerade source; 0 = the FIB's source toward each backend
			       * (the model writes the node's primary address) */
	__u16 snat_port_min;  /* host order; SNAT port range, 0/0 = KXP_SNAT_PORT_*_DEF */
	__u16 snat_port_max;
	__u32 maglev_m;       /* entries per Maglev table (prime; inner maps hold m + 2) */
	__u32 features;       /* KXP_FEAT_* the loaded programs were given (for `kxp status`) */
	__u32 loaded;         /* KXP_LOADED_*: which objects the last kxp process loaded */
	__u32 hints;          /* KXP_HINT_F_*: kxp_hint bitmaps the writer keeps complete */
	__u32 reserved[10];
};

/* kxp_fwddev: ifindex -> KXP_FWD_*, what XDP may do with a frame leaving by
 * that device, probed by attach (userspace/dataplane/attach.c) before kxp's
 * XDP program goes on it. A device without an entry keeps the unprobed
 * rules (bpf/lib/fwd.h). */
#define KXP_FWD_PROBED 0x1   /* the entry exists: the device was probed */
#define KXP_FWD_TX 0x2       /* XDP_TX back out of it (as ingress) works */
#define KXP_FWD_REDIRECT 0x4 /* XDP_REDIRECT into it works */
#define KXP_FWD_GENERIC 0x8  /* kxp's XDP runs there in generic mode: TX and redirect
			      * go through the stack's xmit path and always work */
#define KXP_DEF_MAX_FWDDEV 256

/* kxp_config.loaded (0 = written by a kxp before probing existed). */
#define KXP_LOADED_TC (1u << 0)     /* always, once set */
#define KXP_LOADED_XDP (1u << 1)    /* the XDP object loaded (--xdp-mode not off, kernel accepted it) */
#define KXP_LOADED_SOCK (1u << 2)   /* the socket hooks loaded */
#define KXP_LOADED_NOLOOP (1u << 3) /* the objects built without bpf_loop */

/* kxp_hint: array of __u64 bitmaps the programs read before a lookup that
 * would mostly miss a large, cache-cold hash (appended with the per-packet
 * work of layout v2; a flag in kxp_config.hints says a bitmap is complete,
 * so programs of an instance whose writer has not filled it yet filter
 * nothing):
 *  - words [0, KXP_HINT_PORT_WORDS): backend ports, bit (port % 64) of word
 *    port / 64 set when any backend ever had that port (host order). A reply
 *    of a translated flow comes from a backend port, so packets from other
 *    ports skip the kxp_ct4 REPLY lookup. Bits are only ever set while the
 *    instance lives: a flow outlives its backend's removal.
 *  - words [KXP_HINT_PORT_WORDS, KXP_HINT_WORDS): frontend addresses outside
 *    the service CIDRs (node addresses with NodePorts, LoadBalancer and
 *    external IPs; every frontend when no service CIDR is set), hashed to
 *    one of 65536 bits by KXP_HINT_ADDR_BIT. A destination outside the
 *    service CIDRs whose bit is clear is no frontend: no kxp_svc4 lookup. */
#define KXP_PIN_HINT "kxp_hint"
#define KXP_HINT_PORT_WORDS 1024
#define KXP_HINT_ADDR_WORDS 1024
#define KXP_HINT_WORDS (KXP_HINT_PORT_WORDS + KXP_HINT_ADDR_WORDS)
/* a = the address as stored (network order), read as a __u32 on this host */
#define KXP_HINT_ADDR_BIT(a) (((__u32)(a) * 0x9e3779b1u) >> 16)
#define KXP_HINT_F_PORTS (1u << 0) /* backend port words complete */
#define KXP_HINT_F_ADDRS (1u << 1) /* frontend address words complete */

/* ---- kxp_stats: per-CPU array, fe_id -> counters --------------------------- */
struct kxp_stats {
	__u64 packets; /* translated (or decided) packets to this frontend */
	__u64 bytes;
	__u64 drops;
	__u64 rejects;
	__u64 passed;  /* matched this frontend but passed untouched (e.g. needs SNAT before Spine II) */
	__u64 snat_fail;
};

/* ---- kxp_reasons: per-CPU array, reason -> packets --------------------------
 * Stable numbers: never renumber, only append. Names in kxp_reason_names(). */
enum kxp_reason {
	KXP_R_OK = 0,             /* translated and forwarded */
	KXP_R_NOT_SERVICE = 1,    /* pass: destination is no frontend */
	KXP_R_MALFORMED = 2,      /* pass: truncated or invalid L3/L4 header */
	KXP_R_FRAGMENT = 3,       /* pass: IP fragment to a frontend (not translated) */
	KXP_R_UNKNOWN_PROTO = 4,  /* pass: L4 protocol kxp does not translate */
	KXP_R_NO_ENDPOINTS = 5,   /* reject: no usable endpoint anywhere */
	KXP_R_POLICY_DROP = 6,    /* drop: endpoints exist, none fits the traffic policy */
	KXP_R_SVC_CIDR_DROP = 7,  /* drop: unallocated address inside --service-cidr */
	KXP_R_PORT_UNKNOWN = 8,   /* reject: active ClusterIP, port/proto not served */
	KXP_R_NEEDS_SNAT = 9,     /* unused since Spine II masquerades (kept: never renumber) */
	KXP_R_CT_MISS = 10,       /* pass: non-SYN packet of an unknown flow to a frontend (never balanced) */
	KXP_R_NO_BACKEND = 11,    /* drop: slot or backend entry missing (map race) */
	KXP_R_CSUM = 12,          /* drop: checksum/rewrite helper failed */
	KXP_R_LBSR_DENY = 13,     /* drop: source outside loadBalancerSourceRanges */
	KXP_R_SNAT_FAIL = 14,     /* drop: no free SNAT port */
	KXP_R_REJECT_LIMIT = 15,  /* drop: reject rate limit hit */
	KXP_R_REPLY = 16,         /* reverse-translated reply */
	KXP_R_CT_HIT = 17,        /* translated by an existing ct entry */
	KXP_R_NOT_IPV4 = 18,      /* pass: not IPv4 */
	KXP_R_NO_ROUTE = 19,      /* drop: no route toward the translated destination (masqueraded flow) */
	KXP_R_FRAG_NEEDED = 20,   /* reject: translated packet (DF) too big for the egress link: ICMP frag needed */
	KXP_R_ICMP_ERR = 21,      /* ICMP error about a translated flow, translated back */
	KXP_R_NO_REJECT = 22,     /* drop: reject suppressed (fragment, broadcast/multicast, bad source) */
	KXP_R_SOCK_XLATE = 23,    /* socket hook: connect()/sendmsg() sent to a backend (counted per call) */
	KXP_R_SOCK_REVNAT = 24,   /* socket hook: recvmsg()/getpeername() shown the frontend */
	KXP_R_CT_FULL = 25,       /* drop: kxp_ct4 is full, a new flow is not admitted (live flows are never evicted) */
	KXP_R_MAX = 32,           /* array size; room to append */
};

/* ---- kxp_frag4: IP fragments of translated datagrams (LRU) ---------------
 * The first fragment (ports known) records its ports; later fragments of the
 * same datagram (same saddr, daddr, IP id, proto) take them from here and
 * follow the first fragment's flow. */
struct kxp_frag_key {
	__be32 saddr;
	__be32 daddr;
	__be16 id;
	__u8 proto;
	__u8 pad;
};

struct kxp_frag_val {
	__be16 sport;
	__be16 dport;
	__u32 pad;
	__u64 created; /* bpf_ktime_get_ns(); entries older than 30 s are ignored */
};

/* ---- kxp_rejrl: per-CPU array[1], the reject token bucket ----------------- */
struct kxp_tbucket {
	__u64 credit_ns; /* accumulated time credit, capped at burst * interval */
	__u64 last_ns;
};

/* ---- trace: what a program decided on its last run (trace copies only) ---- */
enum kxp_verdict {
	KXP_V_PASS = 0,    /* packet left untouched */
	KXP_V_FORWARD = 1, /* packet translated and forwarded */
	KXP_V_DROP = 2,
	KXP_V_REJECT = 3,
};

struct kxp_trace_res {
	__u32 verdict;    /* enum kxp_verdict */
	__u32 reason;     /* enum kxp_reason */
	__u32 fe_id;
	__u32 backend_id; /* 0 if none */
	__be32 backend_addr;
	__be16 backend_port;
	__u8 snat;        /* 1 if the flow was (or would be) masqueraded */
	__u8 stage;       /* 1 = xdp, 2 = tc ingress, 3 = tc egress */
	__be32 src_addr;  /* source after translation */
	__be32 dst_addr;
	__be16 src_port;
	__be16 dst_port;
};

/* ---- socket LB (cgroup hooks, bpf/kxp_sock.bpf.c) ------------------------
 * connect4/sendmsg4 translate a frontend to a backend before the packet
 * exists; recvmsg4/getpeername4 show the frontend again. Appended after the
 * first contract: new maps only, no existing layout changed. */
#define KXP_PIN_SOCKCFG "kxp_sockcfg"
#define KXP_PIN_SOCKREV "kxp_sockrev4"
#define KXP_DEF_MAX_SOCKREV 65536 /* kxp_sockrev4 (LRU) */

enum kxp_sock_mode {
	KXP_SOCK_OFF = 0,  /* hooks do nothing */
	KXP_SOCK_HOST = 1, /* only sockets of the node's network namespace (netns_cookie) */
	KXP_SOCK_ALL = 2,  /* every socket in the cgroup (pods too) */
};

/* kxp_sockcfg: array[1], written by the loader when it attaches the hooks. */
struct kxp_sock_cfg {
	__u64 netns_cookie; /* SO_NETNS_COOKIE of the namespace kxp runs in (the node's) */
	__u32 mode;         /* enum kxp_sock_mode */
	__u32 reserved[5];
};

/* kxp_sockrev4 (LRU): per-socket translations, keyed by socket cookie (never
 * reused while the system runs). dir REPLY: key {cookie, backend} -> value
 * the frontend (recvmsg/getpeername). dir FWD (unconnected UDP): key
 * {cookie, frontend} -> value the backend the socket's datagrams go to. */
struct kxp_sock_key {
	__u64 cookie;
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 dir; /* enum kxp_dir */
};

struct kxp_sock_val {
	__be32 addr;
	__be16 port;
	__u16 pad;
	__u32 backend_id; /* FWD: checked against kxp_backend4 before reuse */
	__u32 fe_id;
	__u64 last_seen;  /* bpf_ktime_get_ns() */
};

/* ---- backend selection: Maglev, round robin, affinity, membership --------
 * Appended after the first contract: new maps, and kxp_config.maglev_m taken
 * from reserved space; no existing layout changed. */
#define KXP_PIN_MAGLEV "kxp_maglev"
#define KXP_PIN_RR "kxp_rr"
#define KXP_PIN_AFFINITY "kxp_affinity4"
#define KXP_PIN_MEMBER "kxp_member4"
#define KXP_PIN_SPNAME "kxp_spname"
/* Appended with kernel probing: what XDP may send through a device. */
#define KXP_PIN_FWDDEV "kxp_fwddev"
#define KXP_DEF_MAX_AFFINITY 131072 /* kxp_affinity4 (LRU) */

/* Maglev table size M: prime, 251..131071; default 16381 (64 KiB a table). */
#define KXP_MAGLEV_M_DEF 16381
#define KXP_MAGLEV_M_MIN 251
#define KXP_MAGLEV_M_MAX 131071
/* kxp_maglev: array-of-maps, sp_id -> inner array holding a table of
 * M + KXP_MAGLEV_FP_SLOTS __u32 entries, two per array element (the kernel
 * rounds array values up to 8 bytes: pairs keep a table at 4 bytes an entry):
 * entry i is kxp_mg_pair[i / 2].id[i % 2]. Entries 0..M-1 are backend ids
 * (kxp_backend4), entries M and M+1 the low and high halves of a fingerprint
 * of the backend list the table was built from, so a writer can tell whether
 * a pinned table is current without keeping a copy. Only sets of Maglev
 * services have a table. */
#define KXP_MAGLEV_FP_SLOTS 2
#define KXP_MAGLEV_PAIRS(m) (((m) + KXP_MAGLEV_FP_SLOTS + 1) / 2)
struct kxp_mg_pair {
	__u32 id[2];
};

/* kxp_rr: array, sp_id -> __u32 counter of new flows (round robin). */

/* kxp_member4: {sp_id, backend addr:port:proto} -> backend id, one entry per
 * slot of a set: "is this backend still in the set?" in one lookup (UDP flows
 * whose backend left the set are re-balanced; affinity entries whose backend
 * left are ignored). Only sets that ask it have entries: UDP sets and sets
 * with sessionAffinity (a TCP set without affinity has none). */
struct kxp_member_key {
	__u32 sp_id;
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

/* kxp_affinity4 (LRU): sessionAffinity ClientIP, {client, sp_id} -> the
 * backend (its address, never only an id) and when a new connection last
 * used the entry; expired after the set's affinity_timeout. */
struct kxp_aff_key {
	__be32 client;
	__u32 sp_id;
};

struct kxp_aff_val {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 pad;
	__u32 backend_id; /* informative; membership decides by address */
	__u32 pad2;
	__u64 last_used;  /* bpf_ktime_get_ns() of the last new connection */
};

/* kxp_spname: sp_id -> the set key "ns/name:port/PROTO:cluster|local"
 * (userspace only: listings name what an sp_id is). */
#define KXP_SPNAME_LEN 192
struct kxp_spname {
	char key[KXP_SPNAME_LEN];
};

/* ---- layout locks ---------------------------------------------------------- */
#define KXP_ASSERT_SIZE(t, n) _Static_assert(sizeof(t) == (n), #t " layout changed: bump KXP_LAYOUT_VERSION")
KXP_ASSERT_SIZE(struct kxp_svc_key, 8);
KXP_ASSERT_SIZE(struct kxp_svc_val, 24);
KXP_ASSERT_SIZE(struct kxp_backend, 8);
KXP_ASSERT_SIZE(struct kxp_revnat, 8);
KXP_ASSERT_SIZE(struct kxp_flow4, 16);
KXP_ASSERT_SIZE(struct kxp_nat4, 12);
KXP_ASSERT_SIZE(struct kxp_ct_val, 40);
KXP_ASSERT_SIZE(struct kxp_nodeip, 8);
KXP_ASSERT_SIZE(struct kxp_lbsr_key, 12);
KXP_ASSERT_SIZE(struct kxp_config, 208);
KXP_ASSERT_SIZE(struct kxp_stats, 48);
KXP_ASSERT_SIZE(struct kxp_trace_res, 36);
KXP_ASSERT_SIZE(struct kxp_frag_key, 12);
KXP_ASSERT_SIZE(struct kxp_frag_val, 16);
KXP_ASSERT_SIZE(struct kxp_tbucket, 16);
KXP_ASSERT_SIZE(struct kxp_sock_cfg, 32);
KXP_ASSERT_SIZE(struct kxp_sock_key, 16);
KXP_ASSERT_SIZE(struct kxp_sock_val, 24);
KXP_ASSERT_SIZE(struct kxp_member_key, 12);
KXP_ASSERT_SIZE(struct kxp_mg_pair, 8);
KXP_ASSERT_SIZE(struct kxp_aff_key, 8);
KXP_ASSERT_SIZE(struct kxp_aff_val, 24);
KXP_ASSERT_SIZE(struct kxp_spname, KXP_SPNAME_LEN);
_Static_assert(__builtin_offsetof(struct kxp_config, maglev_m) == 152, "kxp_config layout");
_Static_assert(__builtin_offsetof(struct kxp_config, hints) == 164, "kxp_config layout");
_Static_assert(__builtin_offsetof(struct kxp_ct_val, created) == 24, "kxp_ct_val timestamps must be 8-aligned");
_Static_assert(__builtin_offsetof(struct kxp_svc_val, affinity_timeout) == 16, "kxp_svc_val layout");
_Static_assert(__builtin_offsetof(struct kxp_svc_val, base) == 20, "kxp_svc_val layout");

#endif /* KXP_ABI_H */
