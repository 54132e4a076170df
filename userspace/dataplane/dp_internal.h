/* Private to userspace/dataplane: the dataplane handle shared by the loader,
 * the attach code and the writer. */
#ifndef KXP_DP_INTERNAL_H
#define KXP_DP_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "dataplane/dataplane.h"

struct kxp_xdp_bpf;
struct kxp_tc_bpf;
struct kxp_sock_bpf;
struct kxp_wcache;

#define KXP_PIN_ROOT "/sys/fs/bpf"

struct kxp_dp {
	char instance[64];
	char pin_dir[128];       /* /sys/fs/bpf/kxp-<instance>, instance <= 63 chars */
	bool trace, no_pin;
	struct kxp_xdp_bpf *xdp;     /* NULL for kxp_dp_open_pinned */
	struct kxp_tc_bpf *tc;
	struct kxp_sock_bpf *sock;    /* socket hooks, loaded only for opts.cgroup_root */
	int map_fd[KXP_MAP__COUNT];
	bool own_fd[KXP_MAP__COUNT]; /* fd opened by us (pinned-only), not by libbpf */
	uint32_t map_max[KXP_MAP__COUNT];
	uint32_t maglev_m;           /* entries per Maglev table (kxp_config.maglev_m) */
	struct kxp_wcache *wc;       /* writer's mirror of the maps, built on first apply */
	uint32_t features;           /* KXP_FEAT_* given to the loaded objects */
	uint32_t loaded;             /* KXP_LOADED_* (kxp_config.loaded) */
	char xdp_err[1024];           /* why the XDP object is not loaded ("" if it is, or was not asked for) */
	char sock_err[1024];          /* why the socket hooks are not loaded */
	uint64_t *hint;              /* mirror of kxp_hint (hint.c), read on first use */
	uint32_t hints;              /* KXP_HINT_F_* complete in kxp_hint (kxp_config.hints) */
	bool created[KXP_MAP__COUNT]; /* created empty by this open (not adopted from pins) */
	int migrated_from;           /* layout version of the pins this open migrated (0: none) */
	bool hint_seed_ct;           /* kxp_hint is new beside an older instance's kxp_ct4 */
	int old_flows[KXP_MAP__COUNT]; /* during open: a flow map of an older type, to copy (else -1) */
	long flows_copied;             /* entries copied from those */
};

/* hint.c: bring kxp_hint up to date with d before the entries it covers are
 * written (full: d is the complete state). Returns 0 or -errno; on an error
 * dp->hints is 0 and the programs filter nothing. */
int kxp_dp_hints_apply(struct kxp_dp *dp, const struct kxp_desired *d, bool full);

void kxp_wcache_free(struct kxp_wcache *wc);

/* Instance names become directory names: [A-Za-z0-9_.-], 1..63 chars, no "." or "..". */
bool kxp_instance_name_ok(const char *name);
/* Kernel map id of an open map fd (0 on error). */
uint32_t kxp_map_id_of_fd(int fd);

#endif
