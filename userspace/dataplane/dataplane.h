/* The dataplane: load the BPF objects, create or adopt the pinned maps under
 * /sys/fs/bpf/kxp-<instance>/, attach to devices, and write desired state. */
#ifndef KXP_DATAPLANE_H
#define KXP_DATAPLANE_H

#include <stdbool.h>
#include <stdint.h>

#include "model/desired.h"

enum kxp_map_id {
	KXP_MAP_SVC, KXP_MAP_SLOT, KXP_MAP_BACKEND, KXP_MAP_REVNAT, KXP_MAP_CT,
	KXP_MAP_NODEIP, KXP_MAP_LBSR, KXP_MAP_CONFIG, KXP_MAP_STATS, KXP_MAP_REASONS,
	KXP_MAP_FRAG, KXP_MAP_REJRL,
	KXP_MAP_SOCKCFG, KXP_MAP_SOCKREV,   /* socket LB (appended) */
	KXP_MAP_MAGLEV, KXP_MAP_RR, KXP_MAP_MEMBER, KXP_MAP_AFFINITY, KXP_MAP_SPNAME, /* selection (appended) */
	KXP_MAP_FWDDEV, /* what XDP may send through a device (appended) */
	KXP_MAP_HINT,   /* bitmaps that spare lookups bound to miss (appended) */
	KXP_MAP__COUNT,
};

/* AUTO (the default): native where the driver takes it, else generic; no
 * XDP at all (TC ingress alone) where the kernel refused the XDP object. */
enum kxp_xdp_mode { KXP_XDP_NATIVE, KXP_XDP_GENERIC, KXP_XDP_OFF, KXP_XDP_AUTO };
const char *kxp_xdp_mode_name(enum kxp_xdp_mode m);

struct kxp_dp_opts {
	const char *instance;       /* pins under /sys/fs/bpf/kxp-<instance> */
	uint32_t max_frontends;     /* 0 = default (KXP_DEF_*) */
	uint32_t max_backends;
	uint32_t max_slots;
	uint32_t max_ct;
	bool trace;                 /* load stateless trace copies (kxp_trace_mode=1), never pin/attach */
	bool no_pin;                /* test use: maps created unpinned (instance ignored) */
	char *errbuf;               /* optional: a one-line explanation of a failure */
	size_t errbuf_len;
	/* appended: socket LB. With cgroup_root, kxp_dp_open also loads the
	 * cgroup socket hooks and applies sock_lb there (kxp_dp_attach_sock);
	 * NULL leaves whatever is attached alone. */
	const char *cgroup_root;    /* a cgroup v2 directory */
	int sock_lb;                /* enum kxp_sock_mode (abi.h), default 0 = off */
	/* appended: entries per Maglev table (prime, KXP_MAGLEV_M_MIN..MAX);
	 * 0 = the pinned instance's, else KXP_MAGLEV_M_DEF. A value different
	 * from a pinned instance's is refused (-EINVAL): its tables are sized. */
	uint32_t maglev_m;
	/* appended: kernel probing. The TC object is always loaded; the XDP
	 * object unless no_xdp (--xdp-mode off). A kernel that refuses the XDP
	 * object or the socket hooks leaves them off (kxp_dp_xdp_error /
	 * kxp_dp_sock_error say why), except with no_pin (tests load all). */
	bool no_xdp;
};

struct kxp_dp;

/* Load programs and create maps, or adopt the pinned maps of an instance.
 * Mounts bpffs on /sys/fs/bpf if it is not mounted. Returns -errno. */
int kxp_dp_open(struct kxp_dp **out, const struct kxp_dp_opts *o);
/* Open only the pinned maps of an instance (for listings). -ENOENT if none. */
int kxp_dp_open_pinned(struct kxp_dp **out, const char *instance);
void kxp_dp_close(struct kxp_dp *dp);

int kxp_dp_map_fd(const struct kxp_dp *dp, enum kxp_map_id id);
const char *kxp_map_pin_name(enum kxp_map_id id);
/* Program fds (for BPF_PROG_TEST_RUN and attach); -1 if not loaded. */
int kxp_dp_prog_xdp(const struct kxp_dp *dp);
int kxp_dp_prog_tc_ingress(const struct kxp_dp *dp);
int kxp_dp_prog_tc_egress(const struct kxp_dp *dp);
/* What this handle loaded: KXP_FEAT_* given to the programs, KXP_LOADED_*
 * objects, and why the XDP object / socket hooks are not loaded ("" when
 * they are, or were not asked for). */
uint32_t kxp_dp_features(const struct kxp_dp *dp);
uint32_t kxp_dp_loaded(const struct kxp_dp *dp);
const char *kxp_dp_xdp_error(const struct kxp_dp *dp);
const char *kxp_dp_sock_error(const struct kxp_dp *dp);
/* The layout version of an older instance's pins this open migrated (every
 * map but the flow state recreated, empty): attach the programs only after
 * the first full kxp_dp_apply, or traffic meets empty service maps. 0: none. */
int kxp_dp_migrated_from(const struct kxp_dp *dp);
/* The conntrack collector (ctgc.c): deletes kxp_ct4 entries whose flow
 * expired in both directions. The agent runs it every KXP_CT_GC_INTERVAL_S,
 * every KXP_CT_GC_BUSY_S while the table is at least half full; without an
 * agent, `kxp sync` and `kxp ct gc` do. */
#define KXP_CT_GC_INTERVAL_S 10
#define KXP_CT_GC_BUSY_S 2
struct kxp_ct_gc_stats {
	uint64_t scanned, deleted; /* entries read, entries deleted */
	uint64_t max;              /* kxp_ct4's size */
	double ms;
};
int kxp_dp_ct_gc(struct kxp_dp *dp, struct kxp_ct_gc_stats *st);

/* Conntrack entries this open copied from a flow map whose type changed. */
long kxp_dp_flows_copied(const struct kxp_dp *dp);
/* Trace copies: the result of the last run of a program (NULL if !trace). */
const struct kxp_trace_res *kxp_dp_trace_res(const struct kxp_dp *dp, int stage);

/* Attachments in the current network namespace. Idempotent (replace in place).
 * XDP: *used is the mode attached (native or generic), or OFF when mode is
 * OFF or this handle has no XDP object (the kernel refused it: external
 * traffic is then served by TC ingress; kxp's own earlier XDP program is
 * detached either way). */
int kxp_dp_attach_xdp(struct kxp_dp *dp, int ifindex, enum kxp_xdp_mode mode, enum kxp_xdp_mode *used);
int kxp_dp_attach_tc(struct kxp_dp *dp, int ifindex);   /* ingress + egress */
/* A device went away (and the kernel dropped our programs with it): forget
 * the instance's record of it, so cleanup never looks for it again. */
int kxp_dp_forget_dev(struct kxp_dp *dp, int ifindex);
/* Socket LB: write the scope (mode and the current netns's cookie) and attach
 * connect4/sendmsg4/recvmsg4/getpeername4 to the cgroup v2 directory (multi-
 * attach, replacing this instance's earlier programs in place; other
 * programs there are left alone); KXP_SOCK_OFF detaches them. Recorded for
 * kxp_dp_cleanup. Needs a dp opened with cgroup_root (else -EPERM). */
int kxp_dp_attach_sock(struct kxp_dp *dp, const char *cgroup, int mode);

/* Write the desired state: diff against what the maps hold and apply only the
 * differences, in an order that never exposes a half-written service.
 * Counts of what changed go to *st (may be NULL). Returns 0 or -errno
 * (e.g. -ENOSPC when a map is full; everything that fits is still written). */
struct kxp_apply_stats {
	uint32_t fe_added, fe_updated, fe_removed;
	uint32_t be_added, be_removed;
	uint32_t slots_written, slots_removed;
	uint32_t nodeips_changed;
	bool config_changed;
	/* appended after the first contract */
	uint32_t be_updated;        /* backends whose flags changed in place */
	uint32_t revnat_written, revnat_removed;
	uint32_t lbsr_written, lbsr_removed;
	uint32_t writes;            /* map updates + deletes issued (0 = nothing changed) */
	uint32_t n_failed;          /* entries that could not be written (map or id space full) */
	char failed[8][128];        /* the first min(n_failed, 8) of them, described */
	/* appended for the agent (per-service apply) */
	uint32_t conflicts;         /* frontends another Service holds (left alone) */
	/* appended for selection */
	uint32_t maglev_built;      /* Maglev tables built and swapped in */
	uint32_t maglev_removed;    /* Maglev tables dropped */
	/* appended for batched writes: bpf() calls that wrote map entries (a
	 * BPF_MAP_UPDATE_BATCH of many entries is one; writes counts entries) */
	uint32_t syscalls;
};
int kxp_dp_apply(struct kxp_dp *dp, const struct kxp_desired *d, struct kxp_apply_stats *st);
/* Apply one Service's part of the desired state: d holds only the frontends
 * (f->svc == svc) and sets of that Service (none: it is gone). Only the map
 * entries that Service owns are compared and removed, so the work is
 * proportional to the Service; node addresses and config are not touched.
 * Ownership is learnt by a full kxp_dp_apply: before one, -ESTALE (do a full
 * apply). A frontend another Service holds is left alone and counted in
 * st->conflicts (-EEXIST when that is the only failure; a full apply resolves
 * it by name as the model does). Otherwise as kxp_dp_apply. */
int kxp_dp_apply_service(struct kxp_dp *dp, const char *svc, const struct kxp_desired *d,
			 struct kxp_apply_stats *st);

/* Handle and priority of kxp's cls_bpf filters (ingress and egress). The
 * priority runs kxp before filters added without an explicit priority (the
 * kernel's automatic priorities start at 0xc000) but after low-numbered ones
 * that a CNI owning the device may use. */
#define KXP_TC_HANDLE 0x6b78u   /* "kx" */
#define KXP_TC_PRIO 0x100u

/* Where attachments are recorded, one file per instance (text, one line per
 * device and network namespace): detach and qdisc ownership for cleanup. */
#define KXP_STATE_DIR "/run/kxp"

/* The devices an instance attached to (its record), for `kxp status`:
 * here is true for the current network namespace. Returns the count (at
 * most max filled), or -errno. */
struct kxp_dp_att {
	char ifname[16];
	int ifindex;
	enum kxp_xdp_mode xdp; /* OFF: TC only */
	bool tc, here;
};
int kxp_dp_attachments(const char *instance, struct kxp_dp_att *out, size_t max);
/* Entries in a hash map (walks its keys), or in an array by id (values not
 * all zero: kxp_backend4, kxp_revnat4), or -1. */
long kxp_map_count(int fd);
/* cb for every id of an array by id whose value is not all zero, in order
 * (batched lookups where the kernel has them); stops at cb's first non-zero
 * return, which it returns. */
int kxp_array_walk(int fd, int (*cb)(void *ctx, uint32_t id, const void *v), void *ctx);
/* Every entry of a hash or LRU map, read in chunks with BPF_MAP_LOOKUP_BATCH
 * (5.6 and later, below kxp's minimum): cb gets n keys (its to reuse) and
 * their values. The cursor is a bucket, so cb may delete what it was given.
 * cb returns <0 (an error, returned), 0 (go on) or >0 (stop; 0 returned). */
int kxp_hash_walk(int fd, size_t ksz, size_t vsz, int (*cb)(void *ctx, void *keys, const void *vals, uint32_t n),
		  void *ctx);

/* Detach everything instance made (in the current netns) and unpin its
 * directory. Idempotent. */
int kxp_dp_cleanup(const char *instance);

#endif
