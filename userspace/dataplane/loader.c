/* Loader: probe the kernel (probe.c), open the TC skeleton (it creates or
 * adopts the pinned maps of an instance, /sys/fs/bpf/kxp-<instance>/<map
 * name>), then the XDP one and the socket hooks' when asked, each given the
 * features the kernel offers; load, pin. TC is required; a kernel that
 * refuses the XDP object or the socket hooks leaves that part off, with
 * the reason kept for the caller to report. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <kxp/abi.h>

#include "kxp_sock.skel.h"
#include "kxp_tc.skel.h"
#include "kxp_tc_noloop.skel.h"
#include "kxp_xdp.skel.h"
#include "kxp_xdp_noloop.skel.h"

#include "dataplane/dp_internal.h"
#include "dataplane/probe.h"
#include "lb/maglev.h"

/* What a pinned map must look like to be adopted without loading an object
 * (kxp_dp_open_pinned); the loader compares against the object instead.
 * flows: the map holds flow state whose layout no KXP_LAYOUT_VERSION has
 * changed yet; it is kept when an older instance is migrated (every other
 * map is recreated and written from scratch). */
static const struct {
	const char *name;
	enum bpf_map_type type;
	uint32_t key_size, value_size;
	bool flows;
} map_desc[KXP_MAP__COUNT] = {
	[KXP_MAP_SVC] = { KXP_PIN_SVC, BPF_MAP_TYPE_HASH, sizeof(struct kxp_svc_key), sizeof(struct kxp_svc_val) },
	[KXP_MAP_SLOT] = { KXP_PIN_SLOT, BPF_MAP_TYPE_ARRAY, sizeof(__u32), sizeof(__u32) },
	[KXP_MAP_BACKEND] = { KXP_PIN_BACKEND, BPF_MAP_TYPE_ARRAY, sizeof(__u32), sizeof(struct kxp_backend) },
	[KXP_MAP_REVNAT] = { KXP_PIN_REVNAT, BPF_MAP_TYPE_ARRAY, sizeof(__u32), sizeof(struct kxp_revnat) },
	[KXP_MAP_CT] = { KXP_PIN_CT, BPF_MAP_TYPE_HASH, sizeof(struct kxp_flow4), sizeof(struct kxp_ct_val), true },
	[KXP_MAP_NODEIP] = { KXP_PIN_NODEIP, BPF_MAP_TYPE_HASH, sizeof(__be32), sizeof(struct kxp_nodeip) },
	[KXP_MAP_LBSR] = { KXP_PIN_LBSR, BPF_MAP_TYPE_LPM_TRIE, sizeof(struct kxp_lbsr_key), sizeof(__u8) },
	[KXP_MAP_CONFIG] = { KXP_PIN_CONFIG, BPF_MAP_TYPE_ARRAY, sizeof(__u32), sizeof(struct kxp_config) },
	[KXP_MAP_STATS] = { KXP_PIN_STATS, BPF_MAP_TYPE_PERCPU_ARRAY, sizeof(__u32), sizeof(struct kxp_stats) },
	[KXP_MAP_REASONS] = { KXP_PIN_REASONS, BPF_MAP_TYPE_PERCPU_ARRAY, sizeof(__u32), sizeof(__u64), true },
	[KXP_MAP_FRAG] = { KXP_PIN_FRAG, BPF_MAP_TYPE_LRU_HASH, sizeof(struct kxp_frag_key), sizeof(struct kxp_frag_val), true },
	[KXP_MAP_REJRL] = { KXP_PIN_REJRL, BPF_MAP_TYPE_PERCPU_ARRAY, sizeof(__u32), sizeof(struct kxp_tbucket), true },
	[KXP_MAP_SOCKCFG] = { KXP_PIN_SOCKCFG, BPF_MAP_TYPE_ARRAY, sizeof(__u32), sizeof(struct kxp_sock_cfg) },
	[KXP_MAP_SOCKREV] = { KXP_PIN_SOCKREV, BPF_MAP_TYPE_LRU_HASH, sizeof(struct kxp_sock_key), sizeof(struct kxp_sock_val), true },
	[KXP_MAP_MAGLEV] = { KXP_PIN_MAGLEV, BPF_MAP_TYPE_ARRAY_OF_MAPS, sizeof(__u32), sizeof(__u32) },
	[KXP_MAP_RR] = { KXP_PIN_RR, BPF_MAP_TYPE_ARRAY, sizeof(__u32), sizeof(__u32) },
	[KXP_MAP_MEMBER] = { KXP_PIN_MEMBER, BPF_MAP_TYPE_HASH, sizeof(struct kxp_member_key), sizeof(__u32) },
	[KXP_MAP_AFFINITY] = { KXP_PIN_AFFINITY, BPF_MAP_TYPE_LRU_HASH, sizeof(struct kxp_aff_key), sizeof(struct kxp_aff_val) },
	[KXP_MAP_SPNAME] = { KXP_PIN_SPNAME, BPF_MAP_TYPE_HASH, sizeof(__u32), sizeof(struct kxp_spname) },
	[KXP_MAP_FWDDEV] = { KXP_PIN_FWDDEV, BPF_MAP_TYPE_HASH, sizeof(__u32), sizeof(__u32) },
	[KXP_MAP_HINT] = { KXP_PIN_HINT, BPF_MAP_TYPE_ARRAY, sizeof(__u32), sizeof(__u64) },
};

const char *kxp_map_pin_name(enum kxp_map_id id)
{
	return (unsigned)id < KXP_MAP__COUNT ? map_desc[id].name : NULL;
}

static void set_err(const struct kxp_dp_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(const struct kxp_dp_opts *o, const char *fmt, ...)
{
	va_list ap;

	if (!o || !o->errbuf || !o->errbuf_len)
		return;
	va_start(ap, fmt);
	vsnprintf(o->errbuf, o->errbuf_len, fmt, ap);
	va_end(ap);
}

bool kxp_instance_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > 63 || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '-' || *p == '_' || *p == '.'))
			return false;
	return true;
}

uint32_t kxp_map_id_of_fd(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.id;
}

/* The agent runs in a fresh pod or on a fresh machine: mount bpffs itself. */
static int ensure_bpffs(void)
{
	struct statfs st;

	if (statfs(KXP_PIN_ROOT, &st) == 0 && st.f_type == BPF_FS_MAGIC)
		return 0;
	if (mkdir(KXP_PIN_ROOT, 0755) && errno != EEXIST)
		return -errno;
	if (mount("bpf", KXP_PIN_ROOT, "bpf", 0, "mode=0700"))
		return -errno;
	return 0;
}

static struct kxp_dp *dp_alloc(void)
{
	struct kxp_dp *dp = calloc(1, sizeof(*dp));

	if (!dp)
		return NULL;
	for (int i = 0; i < KXP_MAP__COUNT; i++)
		dp->map_fd[i] = dp->old_flows[i] = -1;
	return dp;
}

/* Pinned map file of an instance; ENOENT if it does not exist. */
static int pin_open(const struct kxp_dp *dp, enum kxp_map_id id)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dp->pin_dir, map_desc[id].name);
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

static int check_layout_version(int cfg_fd, const struct kxp_dp_opts *o, const char *instance)
{
	struct kxp_config cfg = {};
	__u32 zero = 0;

	if (bpf_map_lookup_elem(cfg_fd, &zero, &cfg))
		return -errno;
	if (cfg.layout_version > KXP_LAYOUT_VERSION) {
		set_err(o, "instance %s: pinned maps have layout version %u, this kxp writes %u; run `kxp cleanup --instance %s` first",
			instance, cfg.layout_version, KXP_LAYOUT_VERSION, instance);
		return -EPROTO;
	}
	if (cfg.layout_version && cfg.layout_version != KXP_LAYOUT_VERSION) {
		/* older: kxp_dp_open migrates it; read-only users wait for that */
		set_err(o, "instance %s: pinned maps have layout version %u, this kxp reads %u; the next `kxp sync` or `kxp agent` migrates them",
			instance, cfg.layout_version, KXP_LAYOUT_VERSION);
		return -EPROTO;
	}
	return 0;
}

/* The Maglev table size of an instance: the pinned config's (its tables and
 * the outer map's inner template have that size), else the requested one. */
static int choose_maglev_m(struct kxp_dp *dp, const struct kxp_dp_opts *o)
{
	struct kxp_config cfg = {};
	__u32 zero = 0;
	int fd = -ENOENT;

	dp->maglev_m = o->maglev_m ? o->maglev_m : KXP_MAGLEV_M_DEF;
	if (!kxp_maglev_m_ok(dp->maglev_m)) {
		set_err(o, "Maglev table size %u: want a prime in %u..%u", dp->maglev_m, KXP_MAGLEV_M_MIN,
			KXP_MAGLEV_M_MAX);
		return -EINVAL;
	}
	if (!o->no_pin)
		fd = pin_open(dp, KXP_MAP_CONFIG);
	if (fd < 0)
		return 0;
	if (bpf_map_lookup_elem(fd, &zero, &cfg))
		cfg.maglev_m = 0;
	close(fd);
	if (!cfg.maglev_m)
		return 0;
	if (o->maglev_m && o->maglev_m != cfg.maglev_m) {
		set_err(o, "instance %s: its Maglev tables have %u entries, not %u; run `kxp cleanup --instance %s` to change it",
			dp->instance, cfg.maglev_m, o->maglev_m, dp->instance);
		return -EINVAL;
	}
	dp->maglev_m = cfg.maglev_m;
	return 0;
}

/* Adopt a pinned map for an object's map after checking it has the same
 * shape; a different shape means an incompatible kxp made the pins. */
static int adopt_pin(struct bpf_map *map, int fd, const char *instance, const struct kxp_dp_opts *o)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int err;

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	if (info.type != bpf_map__type(map) || info.key_size != bpf_map__key_size(map) ||
	    info.value_size != bpf_map__value_size(map)) {
		set_err(o, "instance %s: pinned map %s is incompatible (type %u key %u value %u, want type %u key %u value %u)",
			instance, bpf_map__name(map), info.type, info.key_size, info.value_size, bpf_map__type(map),
			bpf_map__key_size(map), bpf_map__value_size(map));
		return -EINVAL;
	}
	err = bpf_map__reuse_fd(map, fd);
	if (err)
		set_err(o, "instance %s: map %s: cannot reuse the pinned map: %s", instance, bpf_map__name(map),
			strerror(-err));
	return err;
}

/* Pins of an older layout version: unpin every map but the flow state
 * (map_desc[].flows), so that this open creates them anew and the writer
 * fills them from scratch, while established flows keep their conntrack
 * entries. A flow map whose type changed (kxp_ct4 was an LRU hash before
 * layout 4) is unpinned too, held open, and its entries copied into the new
 * one once it exists (copy_old_flows); flows the old programs create after
 * the copy, until the new ones are attached, are not carried over. The
 * programs still attached keep the old maps alive until the new programs
 * replace them; callers attach those only once the new maps are
 * written (kxp_dp_migrated_from). Returns the old version, 0 when there was
 * nothing to migrate, or a negative errno. */
static int migrate_pins(struct kxp_dp *dp)
{
	struct kxp_config cfg = {};
	__u32 zero = 0;
	char path[PATH_MAX];
	int fd = pin_open(dp, KXP_MAP_CONFIG), err = 0;

	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	if (bpf_map_lookup_elem(fd, &zero, &cfg))
		err = -errno;
	close(fd);
	if (err || !cfg.layout_version || cfg.layout_version >= KXP_LAYOUT_VERSION)
		return err; /* current, or newer: the adoption below refuses that */
	for (int i = 0; i < KXP_MAP__COUNT; i++) {
		if (map_desc[i].flows) {
			struct bpf_map_info info = {};
			__u32 len = sizeof(info);

			fd = pin_open(dp, i);
			if (fd == -ENOENT)
				continue;
			if (fd < 0)
				return fd;
			if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.type == map_desc[i].type ||
			    info.key_size != map_desc[i].key_size || info.value_size != map_desc[i].value_size) {
				close(fd); /* kept as it is (or refused by the adoption) */
				continue;
			}
			dp->old_flows[i] = fd;
		}
		snprintf(path, sizeof(path), "%s/%s", dp->pin_dir, map_desc[i].name);
		if (unlink(path) && errno != ENOENT)
			return -errno;
	}
	return (int)cfg.layout_version;
}

/* The entries of an older flow map into the new one (same key and value);
 * stops quietly when the new map is full (what did not fit is as if it had
 * expired). */
struct flow_copy {
	int to;
	size_t ksz, vsz;
	long copied;
};

static int copy_chunk(void *ctx, void *keys, const void *vals, uint32_t n)
{
	struct flow_copy *c = ctx;

	for (uint32_t j = 0; j < n; j++) {
		if (!bpf_map_update_elem(c->to, (uint8_t *)keys + j * c->ksz, (const uint8_t *)vals + j * c->vsz,
					 BPF_NOEXIST))
			c->copied++;
		else if (errno == E2BIG || errno == ENOMEM)
			return 1;
	}
	return 0;
}

static void copy_old_flows(struct kxp_dp *dp)
{
	for (int i = 0; i < KXP_MAP__COUNT; i++) {
		if (dp->old_flows[i] < 0)
			continue;
		if (dp->map_fd[i] >= 0) {
			struct flow_copy c = { .to = dp->map_fd[i], .ksz = map_desc[i].key_size,
					       .vsz = map_desc[i].value_size };

			/* a read that fails midway keeps what was copied */
			kxp_hash_walk(dp->old_flows[i], c.ksz, c.vsz, copy_chunk, &c);
			dp->flows_copied += c.copied;
		}
		close(dp->old_flows[i]);
		dp->old_flows[i] = -1;
	}
}

long kxp_dp_flows_copied(const struct kxp_dp *dp)
{
	return dp ? dp->flows_copied : 0;
}

int kxp_dp_migrated_from(const struct kxp_dp *dp)
{
	return dp ? dp->migrated_from : 0;
}

static uint32_t opt_or(uint32_t v, uint32_t def)
{
	return v ? v : def;
}

static uint32_t default_size(enum kxp_map_id id, const struct kxp_dp_opts *o)
{
	uint32_t fe = opt_or(o->max_frontends, KXP_DEF_MAX_FRONTENDS);

	switch (id) {
	case KXP_MAP_SVC:
		return fe;
	case KXP_MAP_REVNAT:
	case KXP_MAP_STATS:
	case KXP_MAP_MAGLEV: /* indexed by sp id (as many as frontends at most) */
	case KXP_MAP_RR:
		return fe + 1; /* indexed by fe id, ids start at 1 */
	case KXP_MAP_SPNAME:
		return fe;
	case KXP_MAP_MEMBER:
		return opt_or(o->max_slots, KXP_DEF_MAX_SLOTS); /* one per slot */
	case KXP_MAP_BACKEND: /* an array by id, ids start at 1 */
		return opt_or(o->max_backends, KXP_DEF_MAX_BACKENDS) + 1;
	case KXP_MAP_SLOT:
		return opt_or(o->max_slots, KXP_DEF_MAX_SLOTS);
	case KXP_MAP_CT:
		return opt_or(o->max_ct, KXP_DEF_MAX_CT);
	default:
		return 0; /* keep the object's size */
	}
}

/* The objects built without bpf_loop (kernels before 5.17) have the same
 * maps, programs and globals as the default ones: open the default
 * skeleton with their ELF image, so one skeleton type serves both. */
static struct kxp_tc_bpf *tc_open(bool noloop)
{
	struct kxp_tc_bpf *obj = calloc(1, sizeof(*obj));
	int err;

	if (!obj)
		return NULL;
	err = kxp_tc_bpf__create_skeleton(obj);
	if (!err && noloop)
		obj->skeleton->data = (void *)kxp_tc_noloop_bpf__elf_bytes(&obj->skeleton->data_sz);
	if (!err)
		err = bpf_object__open_skeleton(obj->skeleton, NULL);
	if (err) {
		kxp_tc_bpf__destroy(obj);
		errno = -err;
		return NULL;
	}
	return obj;
}

static struct kxp_xdp_bpf *xdp_open(bool noloop)
{
	struct kxp_xdp_bpf *obj = calloc(1, sizeof(*obj));
	int err;

	if (!obj)
		return NULL;
	err = kxp_xdp_bpf__create_skeleton(obj);
	if (!err && noloop)
		obj->skeleton->data = (void *)kxp_xdp_noloop_bpf__elf_bytes(&obj->skeleton->data_sz);
	if (!err)
		err = bpf_object__open_skeleton(obj->skeleton, NULL);
	if (err) {
		kxp_xdp_bpf__destroy(obj);
		errno = -err;
		return NULL;
	}
	return obj;
}

/* The verifier's last words while an object loads: libbpf prints the log of
 * a refused program between BEGIN/END PROG LOAD LOG markers; keep the last
 * lines that say why (not the statistics after them). */
static char vlog_tail[640];
static libbpf_print_fn_t vlog_prev;

static int vlog_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *msg = NULL, *begin, *end, *line, *save = NULL;
	const char *keep[4] = {};
	int n = 0, ret = 0;
	va_list ap2;

	va_copy(ap2, ap);
	if (vasprintf(&msg, fmt, ap2) < 0)
		msg = NULL;
	va_end(ap2);
	if (msg && (begin = strstr(msg, "-- BEGIN PROG LOAD LOG --")) && (end = strstr(begin, "-- END PROG LOAD LOG --"))) {
		*end = '\0';
		for (line = strtok_r(begin + 25, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			if (!*line || !strncmp(line, "processed ", 10) || !strncmp(line, "verification time", 17) ||
			    !strncmp(line, "stack depth", 11) || line[0] == ';')
				continue;
			if (n == 4)
				memmove(keep, keep + 1, sizeof(keep[0]) * 3), n = 3;
			keep[n++] = line;
		}
		vlog_tail[0] = '\0';
		for (int k = 0; k < n; k++)
			snprintf(vlog_tail + strlen(vlog_tail), sizeof(vlog_tail) - strlen(vlog_tail), "%s%s",
				 k ? " | " : "", keep[k]);
	}
	free(msg);
	if (vlog_prev)
		ret = vlog_prev(level, fmt, ap);
	return ret;
}

/* Load one object; on failure a one-line reason naming the kernel and the
 * verifier's last lines. */
static int load_obj(struct bpf_object_skeleton *skel, const struct kxp_caps *caps, const char *what, char *why,
		    size_t len)
{
	int err;

	vlog_tail[0] = '\0';
	vlog_prev = libbpf_set_print(vlog_print);
	err = bpf_object__load_skeleton(skel); /* loads, then maps .bss/.rodata */
	libbpf_set_print(vlog_prev);
	if (err)
		snprintf(why, len, "kernel %s refused %s: %s%s%s", caps->kernel, what, strerror(-err),
			 vlog_tail[0] ? "; verifier: " : "", vlog_tail);
	return err;
}

/* Reuse every map of the TC object (created or adopted) in another object. */
static int share_maps(struct kxp_dp *dp, struct bpf_object *obj, const char *what, char *why, size_t len)
{
	for (int i = 0; i < KXP_MAP__COUNT; i++) {
		struct bpf_map *m = bpf_object__find_map_by_name(obj, map_desc[i].name);
		int err = m ? bpf_map__reuse_fd(m, dp->map_fd[i]) : -ENOENT;

		if (err) {
			snprintf(why, len, "map %s: cannot share it with %s: %s", map_desc[i].name, what,
				 strerror(-err));
			return err;
		}
	}
	return 0;
}

int kxp_dp_open(struct kxp_dp **out, const struct kxp_dp_opts *o)
{
	bool reused[KXP_MAP__COUNT] = {}, noloop, want_xdp, want_sock;
	const struct kxp_caps *caps;
	struct kxp_dp *dp;
	int err, i, mg_tmpl = -1, missing;
	char why[1000];

	*out = NULL;
	if (!o->no_pin && !kxp_instance_name_ok(o->instance)) {
		set_err(o, "invalid instance name \"%s\" (1-63 of [A-Za-z0-9._-])", o->instance ? o->instance : "");
		return -EINVAL;
	}
	if (o->no_pin && o->trace) {
		set_err(o, "a trace copy needs the pinned maps of an instance");
		return -EINVAL;
	}
	dp = dp_alloc();
	if (!dp)
		return -ENOMEM;
	dp->trace = o->trace;
	dp->no_pin = o->no_pin;
	if (!o->no_pin) {
		snprintf(dp->instance, sizeof(dp->instance), "%s", o->instance);
		snprintf(dp->pin_dir, sizeof(dp->pin_dir), "%s/kxp-%s", KXP_PIN_ROOT, o->instance);
		err = ensure_bpffs();
		if (err) {
			set_err(o, "cannot mount bpffs on %s: %s", KXP_PIN_ROOT, strerror(-err));
			goto fail;
		}
	}

	caps = kxp_probe();
	missing = kxp_caps_missing(caps, KXP_NEED_CORE);
	if (missing >= 0) {
		set_err(o, "kernel %s lacks %s (since %s), which kxp needs; kxp supports Linux %s and later",
			caps->kernel, kxp_cap_desc(missing)->name, kxp_cap_desc(missing)->since, KXP_MIN_KERNEL);
		err = -EOPNOTSUPP;
		goto fail;
	}
	dp->features = kxp_caps_features(caps);
	noloop = !(dp->features & KXP_FEAT_BPF_LOOP);
	dp->loaded = KXP_LOADED_TC | (noloop ? KXP_LOADED_NOLOOP : 0);
	want_xdp = !o->no_xdp;
	/* a trace copy runs what the instance runs: no XDP where it has none */
	if (o->trace && want_xdp) {
		struct kxp_config cfg = {};
		__u32 zero = 0;
		int fd = pin_open(dp, KXP_MAP_CONFIG);

		if (fd >= 0 && !bpf_map_lookup_elem(fd, &zero, &cfg) && cfg.loaded && !(cfg.loaded & KXP_LOADED_XDP))
			want_xdp = false;
		if (fd >= 0)
			close(fd);
	}
	if (want_xdp && (missing = kxp_caps_missing(caps, KXP_NEED_XDP)) >= 0) {
		snprintf(dp->xdp_err, sizeof(dp->xdp_err), "kernel %s lacks %s", caps->kernel,
			 kxp_cap_desc(missing)->name);
		want_xdp = false;
	}
	/* test_run cannot run sock_addr programs: never part of a trace copy */
	want_sock = o->cgroup_root && !o->trace;
	if (want_sock && (missing = kxp_caps_missing(caps, KXP_NEED_SOCK)) >= 0) {
		snprintf(dp->sock_err, sizeof(dp->sock_err), "kernel %s lacks %s", caps->kernel,
			 kxp_cap_desc(missing)->name);
		want_sock = false;
	}

	dp->tc = tc_open(noloop);
	if (!dp->tc) {
		err = errno ? -errno : -ENOMEM;
		set_err(o, "cannot open the TC object: %s", strerror(-err));
		goto fail;
	}
	dp->tc->rodata->kxp_features = dp->features;
	dp->tc->rodata->kxp_trace_mode = o->trace; /* tags still match the attached programs */

	err = choose_maglev_m(dp, o);
	if (err)
		goto fail;
	/* Every inner table has the template's size, so lookups in them stay
	 * inlined. libbpf 1.1 cannot resize the object's own template (its
	 * inner map has no object): give it one of the instance's size. */
	mg_tmpl = bpf_map_create(BPF_MAP_TYPE_ARRAY, "kxp_mg_tmpl", sizeof(__u32), sizeof(struct kxp_mg_pair),
				 KXP_MAGLEV_PAIRS(dp->maglev_m), NULL);
	if (mg_tmpl < 0 || (err = bpf_map__set_inner_map_fd(dp->tc->maps.kxp_maglev, mg_tmpl))) {
		err = mg_tmpl < 0 ? -errno : err;
		set_err(o, "kxp_maglev: cannot set its inner map template: %s", strerror(-err));
		goto fail;
	}
	if (!o->no_pin && !o->trace) {
		err = migrate_pins(dp);
		if (err < 0) {
			set_err(o, "instance %s: cannot migrate pinned maps of an older layout: %s", dp->instance,
				strerror(-err));
			goto fail;
		}
		dp->migrated_from = err;
	}
	for (i = 0; i < KXP_MAP__COUNT; i++) {
		struct bpf_map *map = bpf_object__find_map_by_name(dp->tc->obj, map_desc[i].name);
		int fd = -ENOENT;

		if (!map) {
			set_err(o, "BPF object has no map %s", map_desc[i].name);
			err = -ENOENT;
			goto fail;
		}
		if (!o->no_pin)
			fd = pin_open(dp, i);
		if (fd >= 0) {
			err = i == KXP_MAP_CONFIG ? check_layout_version(fd, o, dp->instance) : 0;
			if (!err)
				err = adopt_pin(map, fd, dp->instance, o);
			close(fd);
			if (err)
				goto fail;
			reused[i] = true;
			continue;
		}
		if (fd != -ENOENT) {
			err = fd;
			set_err(o, "instance %s: cannot open pinned map %s: %s", dp->instance, map_desc[i].name,
				strerror(-err));
			goto fail;
		}
		/* maps appended since an instance was pinned: its programs run
		 * without them, so may the trace copies */
		if (o->trace && i != KXP_MAP_FWDDEV && i != KXP_MAP_HINT) {
			set_err(o, "instance %s: no pinned map %s (run kxp sync first)", dp->instance,
				map_desc[i].name);
			err = -ENOENT;
			goto fail;
		}
		if (default_size(i, o) && (err = bpf_map__set_max_entries(map, default_size(i, o)))) {
			set_err(o, "map %s: cannot set its size: %s", map_desc[i].name, strerror(-err));
			goto fail;
		}
	}

	/* TC first: it creates (or adopts) every map; the others share them. */
	err = load_obj(dp->tc->skeleton, caps, "the TC programs", why, sizeof(why));
	if (err) {
		set_err(o, "%s", why);
		goto fail;
	}
	for (i = 0; i < KXP_MAP__COUNT; i++) {
		struct bpf_map *tm = bpf_object__find_map_by_name(dp->tc->obj, map_desc[i].name);

		dp->map_fd[i] = bpf_map__fd(tm);
		dp->map_max[i] = bpf_map__max_entries(tm);
		dp->created[i] = !reused[i];
	}
	dp->hint_seed_ct = (reused[KXP_MAP_CT] || dp->old_flows[KXP_MAP_CT] >= 0) && !reused[KXP_MAP_HINT] &&
			   !o->trace;
	if (dp->old_flows[KXP_MAP_CT] >= 0)
		dp->created[KXP_MAP_CT] = false; /* it holds the copied flows */
	copy_old_flows(dp);

	if (want_xdp) {
		dp->xdp = xdp_open(noloop);
		err = dp->xdp ? 0 : (errno ? -errno : -ENOMEM);
		if (!err) {
			dp->xdp->rodata->kxp_features = dp->features;
			dp->xdp->rodata->kxp_trace_mode = o->trace;
			err = bpf_map__set_inner_map_fd(dp->xdp->maps.kxp_maglev, mg_tmpl);
		}
		if (!err)
			err = share_maps(dp, dp->xdp->obj, "the XDP object", why, sizeof(why));
		else
			snprintf(why, sizeof(why), "cannot open the XDP object: %s", strerror(-err));
		if (!err)
			err = load_obj(dp->xdp->skeleton, caps, "the XDP program", why, sizeof(why));
		if (err) {
			/* a test loads everything; a node serves through TC alone */
			if (o->no_pin) {
				set_err(o, "%s", why);
				goto fail;
			}
			snprintf(dp->xdp_err, sizeof(dp->xdp_err), "%s", why);
			kxp_xdp_bpf__destroy(dp->xdp);
			dp->xdp = NULL;
		} else {
			dp->loaded |= KXP_LOADED_XDP;
		}
	}
	if (want_sock) {
		dp->sock = kxp_sock_bpf__open();
		err = dp->sock ? 0 : (errno ? -errno : -ENOMEM);
		if (!err) {
			dp->sock->rodata->kxp_features = dp->features;
			err = share_maps(dp, dp->sock->obj, "the socket hooks", why, sizeof(why));
		} else {
			snprintf(why, sizeof(why), "cannot open the socket hooks: %s", strerror(-err));
		}
		if (!err)
			err = load_obj(dp->sock->skeleton, caps, "the socket hooks (cgroup connect4/sendmsg4/recvmsg4/getpeername4)",
				       why, sizeof(why));
		if (err) {
			snprintf(dp->sock_err, sizeof(dp->sock_err), "%s", why);
			kxp_sock_bpf__destroy(dp->sock);
			dp->sock = NULL;
		} else {
			dp->loaded |= KXP_LOADED_SOCK;
		}
	}

	if (!o->trace) {
		struct kxp_config cfg = {};
		__u32 zero = 0;

		/* what this process loaded, for `kxp status` (the writer keeps it) */
		if (reused[KXP_MAP_CONFIG] && bpf_map_lookup_elem(dp->map_fd[KXP_MAP_CONFIG], &zero, &cfg))
			memset(&cfg, 0, sizeof(cfg));
		if (!reused[KXP_MAP_CONFIG]) {
			cfg.layout_version = KXP_LAYOUT_VERSION;
			cfg.maglev_m = dp->maglev_m;
		}
		cfg.features = dp->features;
		cfg.loaded = dp->loaded;
		if (bpf_map_update_elem(dp->map_fd[KXP_MAP_CONFIG], &zero, &cfg, BPF_ANY)) {
			err = -errno;
			set_err(o, "cannot initialise kxp_config: %s", strerror(-err));
			goto fail;
		}
	}

	if (!o->no_pin && !o->trace) {
		if (mkdir(dp->pin_dir, 0700) && errno != EEXIST) {
			err = -errno;
			set_err(o, "cannot create %s: %s", dp->pin_dir, strerror(-err));
			goto fail;
		}
		for (i = 0; i < KXP_MAP__COUNT; i++) {
			char path[PATH_MAX];

			if (reused[i])
				continue;
			snprintf(path, sizeof(path), "%s/%s", dp->pin_dir, map_desc[i].name);
			err = bpf_obj_pin(dp->map_fd[i], path);
			if (err) {
				err = -errno;
				set_err(o, "cannot pin %s: %s", path, strerror(-err));
				goto fail;
			}
		}
		/* An instance pinned before the SNAT port claims moved into
		 * kxp_ct4 (its REPLY entries, which these programs read the
		 * same way): the old map has no reader once they are attached. */
		{
			char path[PATH_MAX];

			snprintf(path, sizeof(path), "%s/%s", dp->pin_dir, KXP_PIN_SNAT_OLD);
			unlink(path);
		}
	}
	if (dp->sock) {
		err = kxp_dp_attach_sock(dp, o->cgroup_root, o->sock_lb);
		if (err) {
			set_err(o, "socket LB on cgroup %s: %s", o->cgroup_root,
				err == -EBUSY ? "a program there does not allow others beside it" :
				err == -ENOTDIR ? "not a cgroup v2 directory" : strerror(-err));
			goto fail;
		}
	}
	if (mg_tmpl >= 0)
		close(mg_tmpl); /* loaded: the outer map keeps its own copy of the template */
	*out = dp;
	return 0;
fail:
	if (mg_tmpl >= 0)
		close(mg_tmpl);
	kxp_dp_close(dp);
	return err;
}

int kxp_dp_open_pinned(struct kxp_dp **out, const char *instance)
{
	struct kxp_dp *dp;
	struct statfs st;
	int err = 0;

	*out = NULL;
	if (!kxp_instance_name_ok(instance))
		return -EINVAL;
	/* Listing never mounts: an unmounted bpffs simply holds no instance. */
	if (statfs(KXP_PIN_ROOT, &st) || st.f_type != BPF_FS_MAGIC)
		return -ENOENT;
	dp = dp_alloc();
	if (!dp)
		return -ENOMEM;
	snprintf(dp->instance, sizeof(dp->instance), "%s", instance);
	snprintf(dp->pin_dir, sizeof(dp->pin_dir), "%s/kxp-%s", KXP_PIN_ROOT, instance);
	for (int i = 0; i < KXP_MAP__COUNT; i++) {
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);
		int fd = pin_open(dp, i);

		/* an instance pinned by an older kxp lacks the maps appended since
		 * (kxp_fwddev, kxp_hint); their next kxp_dp_open creates them */
		if (fd == -ENOENT && (i == KXP_MAP_FWDDEV || i == KXP_MAP_HINT))
			continue;
		if (fd < 0) {
			err = fd;
			goto fail;
		}
		dp->map_fd[i] = fd;
		dp->own_fd[i] = true;
		if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
			err = -errno;
			goto fail;
		}
		if (info.type != map_desc[i].type || info.key_size != map_desc[i].key_size ||
		    info.value_size != map_desc[i].value_size) {
			err = -EPROTO;
			goto fail;
		}
		dp->map_max[i] = info.max_entries;
	}
	err = check_layout_version(dp->map_fd[KXP_MAP_CONFIG], NULL, instance);
	if (err)
		goto fail;
	{
		struct kxp_config cfg = {};
		__u32 zero = 0;

		if (!bpf_map_lookup_elem(dp->map_fd[KXP_MAP_CONFIG], &zero, &cfg))
			dp->maglev_m = cfg.maglev_m;
	}
	*out = dp;
	return 0;
fail:
	kxp_dp_close(dp);
	return err;
}

void kxp_dp_close(struct kxp_dp *dp)
{
	if (!dp)
		return;
	kxp_wcache_free(dp->wc);
	free(dp->hint);
	for (int i = 0; i < KXP_MAP__COUNT; i++) {
		if (dp->own_fd[i] && dp->map_fd[i] >= 0)
			close(dp->map_fd[i]);
		if (dp->old_flows[i] >= 0) {
			/* an open that failed before copying: the old flows
			 * stay pinned for the next attempt */
			char path[PATH_MAX];

			snprintf(path, sizeof(path), "%s/%s", dp->pin_dir, map_desc[i].name);
			bpf_obj_pin(dp->old_flows[i], path);
			close(dp->old_flows[i]);
		}
	}
	kxp_sock_bpf__destroy(dp->sock);
	kxp_tc_bpf__destroy(dp->tc);
	kxp_xdp_bpf__destroy(dp->xdp);
	free(dp);
}

int kxp_dp_map_fd(const struct kxp_dp *dp, enum kxp_map_id id)
{
	return dp && (unsigned)id < KXP_MAP__COUNT ? dp->map_fd[id] : -1;
}

int kxp_dp_prog_xdp(const struct kxp_dp *dp)
{
	return dp && dp->xdp ? bpf_program__fd(dp->xdp->progs.kxp_xdp) : -1;
}

int kxp_dp_prog_tc_ingress(const struct kxp_dp *dp)
{
	return dp && dp->tc ? bpf_program__fd(dp->tc->progs.kxp_tc_ingress) : -1;
}

int kxp_dp_prog_tc_egress(const struct kxp_dp *dp)
{
	return dp && dp->tc ? bpf_program__fd(dp->tc->progs.kxp_tc_egress) : -1;
}

const struct kxp_trace_res *kxp_dp_trace_res(const struct kxp_dp *dp, int stage)
{
	if (!dp || !dp->trace)
		return NULL;
	if (stage == 1 && dp->xdp)
		return &dp->xdp->bss->kxp_trace_res;
	if ((stage == 2 || stage == 3) && dp->tc)
		return &dp->tc->bss->kxp_trace_res;
	return NULL;
}

uint32_t kxp_dp_features(const struct kxp_dp *dp)
{
	return dp ? dp->features : 0;
}

uint32_t kxp_dp_loaded(const struct kxp_dp *dp)
{
	return dp ? dp->loaded : 0;
}

const char *kxp_dp_xdp_error(const struct kxp_dp *dp)
{
	return dp ? dp->xdp_err : "";
}

const char *kxp_dp_sock_error(const struct kxp_dp *dp)
{
	return dp ? dp->sock_err : "";
}
