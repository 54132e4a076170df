/* Attach: XDP (native, generic fallback) and classic clsact + cls_bpf with a
 * fixed handle/priority, recorded per instance in /run/kxp/<instance>/
 * attachments so `kxp cleanup` detaches exactly what kxp attached and
 * deletes a clsact qdisc only when kxp created it. Netlink attachments
 * outlive the process, which is what an agent restart needs. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <linux/if_link.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dataplane/dp_internal.h"
#include "lib/netlink.h"
#include "lib/netns.h"

/* One line of the state file. */
struct att {
	uint64_t netns;
	int ifindex;
	char ifname[IF_NAMESIZE];
	enum kxp_xdp_mode xdp; /* KXP_XDP_OFF = none */
	bool tc;
	bool qdisc_ours;       /* kxp created the clsact qdisc */
};

struct att_list {
	struct att *v;
	size_t n;
};

static void state_path(const char *instance, char *dir, size_t dlen, char *file, size_t flen)
{
	snprintf(dir, dlen, "%s/%s", KXP_STATE_DIR, instance);
	snprintf(file, flen, "%s/%s/attachments", KXP_STATE_DIR, instance);
}

static const char *xdp_word(enum kxp_xdp_mode m)
{
	return m == KXP_XDP_NATIVE ? "native" : m == KXP_XDP_GENERIC ? "generic" : "none";
}

static int state_load(const char *instance, struct att_list *l)
{
	char dir[PATH_MAX], file[PATH_MAX], line[256];
	FILE *f;

	l->v = NULL;
	l->n = 0;
	state_path(instance, dir, sizeof(dir), file, sizeof(file));
	f = fopen(file, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (fgets(line, sizeof(line), f)) {
		struct att a = {};
		char xdp[16], qd[16];
		unsigned long long ns;
		int tc;
		struct att *v;

		if (line[0] == '#')
			continue;
		if (sscanf(line, "%llu %d %15s xdp=%15s tc=%d qdisc=%15s", &ns, &a.ifindex, a.ifname, xdp, &tc, qd) != 6)
			continue;
		a.netns = ns;
		a.xdp = !strcmp(xdp, "native") ? KXP_XDP_NATIVE : !strcmp(xdp, "generic") ? KXP_XDP_GENERIC : KXP_XDP_OFF;
		a.tc = tc;
		a.qdisc_ours = !strcmp(qd, "kxp");
		v = realloc(l->v, (l->n + 1) * sizeof(*v));
		if (!v) {
			fclose(f);
			free(l->v);
			return -ENOMEM;
		}
		l->v = v;
		l->v[l->n++] = a;
	}
	fclose(f);
	return 0;
}

static int state_save(const char *instance, const struct att_list *l)
{
	char dir[PATH_MAX], file[PATH_MAX], tmp[PATH_MAX + 8];
	size_t kept = 0;
	FILE *f;

	state_path(instance, dir, sizeof(dir), file, sizeof(file));
	for (size_t i = 0; i < l->n; i++)
		kept += l->v[i].xdp != KXP_XDP_OFF || l->v[i].tc;
	if (!kept) {
		if (unlink(file) && errno != ENOENT)
			return -errno;
		rmdir(dir);
		return 0;
	}
	if (mkdir(KXP_STATE_DIR, 0755) && errno != EEXIST)
		return -errno;
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	snprintf(tmp, sizeof(tmp), "%s.tmp", file);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f, "# netns-inode ifindex ifname xdp=<mode> tc=<0|1> qdisc=<kxp|other>\n");
	for (size_t i = 0; i < l->n; i++) {
		const struct att *a = &l->v[i];

		if (a->xdp == KXP_XDP_OFF && !a->tc)
			continue;
		fprintf(f, "%" PRIu64 " %d %s xdp=%s tc=%d qdisc=%s\n", a->netns, a->ifindex,
			a->ifname[0] ? a->ifname : "-", xdp_word(a->xdp), a->tc, a->qdisc_ours ? "kxp" : "other");
	}
	if (fclose(f)) {
		unlink(tmp);
		return -errno;
	}
	return rename(tmp, file) ? -errno : 0;
}

static struct att *state_find(struct att_list *l, uint64_t ns, int ifindex, bool add)
{
	struct att *v;

	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].netns == ns && l->v[i].ifindex == ifindex)
			return &l->v[i];
	if (!add)
		return NULL;
	v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (!v)
		return NULL;
	l->v = v;
	memset(&v[l->n], 0, sizeof(v[0]));
	v[l->n].netns = ns;
	v[l->n].ifindex = ifindex;
	v[l->n].xdp = KXP_XDP_OFF;
	if_indextoname(ifindex, v[l->n].ifname);
	return &v[l->n++];
}

/* Map ids of the instance's pinned maps (empty when nothing is pinned). */
struct idlist {
	uint32_t id[KXP_MAP__COUNT];
	size_t n;
};

static void instance_map_ids(const char *instance, struct idlist *ids)
{
	char path[PATH_MAX];
	struct statfs st;

	ids->n = 0;
	if (statfs(KXP_PIN_ROOT, &st) || st.f_type != BPF_FS_MAGIC)
		return;
	for (int i = 0; i < KXP_MAP__COUNT; i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/kxp-%s/%s", KXP_PIN_ROOT, instance, kxp_map_pin_name(i));
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		ids->id[ids->n] = kxp_map_id_of_fd(fd);
		if (ids->id[ids->n])
			ids->n++;
		close(fd);
	}
}

static bool is_kxp_map_name(const char *name)
{
	for (int i = 0; i < KXP_MAP__COUNT; i++)
		if (!strcmp(name, kxp_map_pin_name(i)))
			return true;
	return false;
}

/* A program is this instance's when it has our program name and uses this
 * instance's maps; one that uses another instance's kxp maps is not ours
 * (one that uses no kxp map at all is judged by its name alone). */
static bool prog_is_ours(uint32_t prog_id, const char *name, const struct idlist *ids)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info), map_ids[64];
	bool other_kxp = false;
	int fd;

	if (!prog_id)
		return false;
	fd = bpf_prog_get_fd_by_id(prog_id);
	if (fd < 0)
		return false;
	info.nr_map_ids = sizeof(map_ids) / sizeof(map_ids[0]);
	info.map_ids = (__u64)(unsigned long)map_ids;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || strcmp(info.name, name)) {
		close(fd);
		return false;
	}
	close(fd);
	for (__u32 i = 0; i < info.nr_map_ids && i < sizeof(map_ids) / sizeof(map_ids[0]); i++) {
		struct bpf_map_info mi = {};
		__u32 mlen = sizeof(mi);
		int mfd;

		for (size_t j = 0; j < ids->n; j++)
			if (ids->id[j] == map_ids[i])
				return true;
		mfd = bpf_map_get_fd_by_id(map_ids[i]);
		if (mfd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(mfd, &mi, &mlen) && is_kxp_map_name(mi.name))
			other_kxp = true;
		close(mfd);
	}
	return !other_kxp;
}

static void dp_map_ids(const struct kxp_dp *dp, struct idlist *ids)
{
	ids->n = 0;
	for (int i = 0; i < KXP_MAP__COUNT; i++) {
		uint32_t id = kxp_map_id_of_fd(dp->map_fd[i]);

		if (id)
			ids->id[ids->n++] = id;
	}
}

static int record(const struct kxp_dp *dp, int ifindex, int xdp, int tc, bool qdisc_created)
{
	struct att_list l;
	struct att *a;
	int err;

	if (dp->no_pin)
		return 0; /* test maps: nothing survives the process, nothing to record */
	err = state_load(dp->instance, &l);
	if (err)
		return err;
	a = state_find(&l, kxp_netns_inode(), ifindex, true);
	if (!a) {
		free(l.v);
		return -ENOMEM;
	}
	if (xdp >= 0)
		a->xdp = xdp;
	if (tc >= 0)
		a->tc = tc;
	a->qdisc_ours |= qdisc_created;
	err = state_save(dp->instance, &l);
	free(l.v);
	return err;
}

static int xdp_detach_mode(int ifindex, uint32_t flags)
{
	int err = bpf_xdp_detach(ifindex, flags, NULL);

	return err == -ENOENT ? 0 : err;
}

int kxp_dp_attach_xdp(struct kxp_dp *dp, int ifindex, enum kxp_xdp_mode mode, enum kxp_xdp_mode *used)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct idlist ids;
	bool drv_ours, skb_ours;
	int fd = kxp_dp_prog_xdp(dp), err;

	if (used)
		*used = KXP_XDP_OFF;
	if (!dp || dp->trace || fd < 0)
		return -EPERM;
	err = bpf_xdp_query(ifindex, 0, &q);
	if (err)
		return err;
	dp_map_ids(dp, &ids);
	drv_ours = prog_is_ours(q.drv_prog_id, "kxp_xdp", &ids);
	skb_ours = prog_is_ours(q.skb_prog_id, "kxp_xdp", &ids);
	/* never replace someone else's XDP program */
	if ((q.drv_prog_id && !drv_ours) || (q.skb_prog_id && !skb_ours) || q.hw_prog_id)
		return -EBUSY;

	if (mode == KXP_XDP_OFF) {
		if (drv_ours && (err = xdp_detach_mode(ifindex, XDP_FLAGS_DRV_MODE)))
			return err;
		if (skb_ours && (err = xdp_detach_mode(ifindex, XDP_FLAGS_SKB_MODE)))
			return err;
		return record(dp, ifindex, KXP_XDP_OFF, -1, false);
	}
	if (mode == KXP_XDP_NATIVE) {
		/* native and generic cannot be active at once */
		if (skb_ours && (err = xdp_detach_mode(ifindex, XDP_FLAGS_SKB_MODE)))
			return err;
		err = bpf_xdp_attach(ifindex, fd, XDP_FLAGS_DRV_MODE, NULL);
		if (!err) {
			if (used)
				*used = KXP_XDP_NATIVE;
			return record(dp, ifindex, KXP_XDP_NATIVE, -1, false);
		}
		/* the driver refuses: fall back to generic, the caller warns */
	}
	if (drv_ours && (err = xdp_detach_mode(ifindex, XDP_FLAGS_DRV_MODE)))
		return err;
	err = bpf_xdp_attach(ifindex, fd, XDP_FLAGS_SKB_MODE, NULL);
	if (err)
		return err;
	if (used)
		*used = KXP_XDP_GENERIC;
	return record(dp, ifindex, KXP_XDP_GENERIC, -1, false);
}

int kxp_dp_attach_tc(struct kxp_dp *dp, int ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	struct idlist ids;
	bool created;
	int err;

	if (!dp || dp->trace || kxp_dp_prog_tc_ingress(dp) < 0)
		return -EPERM;
	/* asked first: creating over an existing qdisc makes the kernel log an error */
	err = kxp_nl_has_clsact(ifindex);
	if (err < 0)
		return err;
	created = false;
	if (!err) {
		err = bpf_tc_hook_create(&hook);
		if (err && err != -EEXIST)
			return err;
		created = !err;
	}
	dp_map_ids(dp, &ids);
	for (int dir = 0; dir < 2; dir++) {
		uint32_t cur_id = 0;
		LIBBPF_OPTS(bpf_tc_opts, o, .handle = KXP_TC_HANDLE, .priority = KXP_TC_PRIO,
			    .flags = BPF_TC_F_REPLACE);
		const char *name = dir ? "kxp_tc_egress" : "kxp_tc_ingress";

		hook.attach_point = dir ? BPF_TC_EGRESS : BPF_TC_INGRESS;
		o.prog_fd = dir ? kxp_dp_prog_tc_egress(dp) : kxp_dp_prog_tc_ingress(dp);
		/* asked over netlink: bpf_tc_query() makes the kernel log an error when absent */
		err = kxp_nl_tc_filter_prog(ifindex, dir, KXP_TC_PRIO, KXP_TC_HANDLE, &cur_id);
		if (!err && !prog_is_ours(cur_id, name, &ids))
			return -EBUSY; /* our handle/prio holds a foreign filter */
		if (err && err != -ENOENT)
			return err;
		err = bpf_tc_attach(&hook, &o);
		if (err) {
			/* keep what is attached on record so cleanup finds it */
			if (created || dir)
				record(dp, ifindex, -1, dir ? 1 : -1, created);
			return err;
		}
	}
	return record(dp, ifindex, -1, 1, created);
}

/* Detach what the instance attached to one device (in the current netns). */
static int cleanup_dev(const struct att *a, const struct idlist *ids)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = a->ifindex);
	int err;

	err = bpf_xdp_query(a->ifindex, 0, &q);
	if (err == -ENODEV || err == -EINVAL)
		return 0; /* the device is gone, and with it every attachment */
	if (!err) {
		if (prog_is_ours(q.drv_prog_id, "kxp_xdp", ids) && (err = xdp_detach_mode(a->ifindex, XDP_FLAGS_DRV_MODE)))
			return err;
		if (prog_is_ours(q.skb_prog_id, "kxp_xdp", ids) && (err = xdp_detach_mode(a->ifindex, XDP_FLAGS_SKB_MODE)))
			return err;
	}
	for (int dir = 0; dir < 2; dir++) {
		LIBBPF_OPTS(bpf_tc_opts, o, .handle = KXP_TC_HANDLE, .priority = KXP_TC_PRIO);
		uint32_t cur_id = 0;

		hook.attach_point = dir ? BPF_TC_EGRESS : BPF_TC_INGRESS;
		if (kxp_nl_tc_filter_prog(a->ifindex, dir, KXP_TC_PRIO, KXP_TC_HANDLE, &cur_id))
			continue; /* no filter (or no clsact) there */
		if (!prog_is_ours(cur_id, dir ? "kxp_tc_egress" : "kxp_tc_ingress", ids))
			continue;
		err = bpf_tc_detach(&hook, &o);
		if (err && err != -ENOENT)
			return err;
	}
	if (a->qdisc_ours) {
		int in = kxp_nl_tc_other_filters(a->ifindex, 0, KXP_TC_PRIO, KXP_TC_HANDLE);
		int eg = kxp_nl_tc_other_filters(a->ifindex, 1, KXP_TC_PRIO, KXP_TC_HANDLE);

		/* someone added filters to the qdisc we created: leave it to them */
		if (in == 0 && eg == 0) {
			hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
			err = bpf_tc_hook_destroy(&hook);
			if (err && err != -ENOENT && err != -EINVAL)
				return err;
		}
	}
	return 0;
}

static int unpin_dir(const char *instance)
{
	char dir[PATH_MAX], path[PATH_MAX * 2];
	struct statfs st;
	struct dirent *de;
	DIR *d;
	int err = 0;

	if (statfs(KXP_PIN_ROOT, &st) || st.f_type != BPF_FS_MAGIC)
		return 0;
	snprintf(dir, sizeof(dir), "%s/kxp-%s", KXP_PIN_ROOT, instance);
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) && errno != ENOENT && !err)
			err = -errno;
	}
	closedir(d);
	if (!err && rmdir(dir) && errno != ENOENT)
		err = -errno;
	return err;
}

int kxp_dp_cleanup(const char *instance)
{
	struct att_list l;
	struct idlist ids;
	uint64_t ns = kxp_netns_inode();
	size_t keep = 0;
	int err, first = 0;

	if (!kxp_instance_name_ok(instance))
		return -EINVAL;
	instance_map_ids(instance, &ids);
	err = state_load(instance, &l);
	if (err)
		return err;
	for (size_t i = 0; i < l.n; i++) {
		if (l.v[i].netns == ns) {
			err = cleanup_dev(&l.v[i], &ids);
			if (!err)
				continue;
			if (!first)
				first = err;
		}
		l.v[keep++] = l.v[i]; /* another netns, or failed: keep it on record */
	}
	l.n = keep;
	err = state_save(instance, &l);
	free(l.v);
	if (!first)
		first = err;
	/* Maps of an instance attached in another netns stay referenced by those
	 * programs; unpinning only drops the names. */
	err = unpin_dir(instance);
	return first ? first : err;
}
