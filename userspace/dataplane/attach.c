/* Attach: XDP (native, generic fallback) and classic clsact + cls_bpf with a
 * fixed handle/priority, recorded per instance in /run/kxp/<instance>/
 * attachments so `kxp cleanup` detaches exactly what kxp attached and
 * deletes a clsact qdisc only when kxp created it. Netlink attachments
 * outlive the process, which is what an agent restart needs. The socket
 * hooks go to a cgroup v2 directory (multi-attach, also outliving the
 * process), recorded in /run/kxp/<instance>/cgroups.
 *
 * Before the XDP program goes on a device, the device is probed for what
 * XDP may send through it (kxp_fwddev, bpf/lib/fwd.h): native XDP_TX out of
 * a veth only reaches the peer when the peer runs a native XDP program, and
 * XDP_REDIRECT into a device needs ndo_xdp_xmit (for a veth: an XDP program
 * or GRO on the peer); what cannot go that way is handed to TC. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <linux/if_link.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <kxp/abi.h>

#include "kxp_sock.skel.h"

#include "dataplane/dp_internal.h"
#include "dataplane/probe.h"
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

int kxp_dp_forget_dev(struct kxp_dp *dp, int ifindex)
{
	struct att_list l;
	uint64_t ns = kxp_netns_inode();
	size_t keep = 0;
	int err;

	if (dp->map_fd[KXP_MAP_FWDDEV] >= 0) /* a later device may get the index */
		bpf_map_delete_elem(dp->map_fd[KXP_MAP_FWDDEV], &(__u32){ (__u32)ifindex });
	if (dp->no_pin)
		return 0;
	err = state_load(dp->instance, &l);
	if (err)
		return err;
	for (size_t i = 0; i < l.n; i++)
		if (l.v[i].netns != ns || l.v[i].ifindex != ifindex)
			l.v[keep++] = l.v[i];
	if (keep == l.n) {
		free(l.v);
		return 0;
	}
	l.n = keep;
	err = state_save(dp->instance, &l);
	free(l.v);
	return err;
}

/* ---- what XDP may send through a device (kxp_fwddev, bpf/lib/fwd.h) ----- */


/* KXP_FWD_* for kxp's XDP program on ifindex in mode `mode`:
 *  - generic: XDP_TX and redirects leave through the stack's xmit path and
 *    work toward any device;
 *  - XDP_TX (native): a veth puts the frame on its peer's ring and wakes the
 *    peer only if the peer runs a native XDP program (with GRO alone the
 *    peer has a NAPI but nothing schedules it: the frame waits for some
 *    unrelated skb; with neither it is dropped); another driver:
 *    NETDEV_XDP_ACT_BASIC;
 *  - redirect into it: NETDEV_XDP_ACT_NDO_XMIT (a veth: its peer has an XDP
 *    program or GRO). Without the netdev family (before 6.3) a veth counts as
 *    able only when its peer runs native XDP, another driver keeps the rules
 *    kxp always had (XDP_TX and redirect).
 * A veth whose peer cannot be asked (another namespace this one has no id
 * for, no permission there) counts as one whose peer has no XDP program. */
static uint32_t fwd_probe(int ifindex, enum kxp_xdp_mode mode)
{
	struct kxp_nl_link li, peer;
	uint64_t feat = 0;
	bool have_feat, veth, peer_xdp = false;
	uint32_t v = KXP_FWD_PROBED;

	if (mode == KXP_XDP_GENERIC)
		return v | KXP_FWD_GENERIC | KXP_FWD_TX | KXP_FWD_REDIRECT;
	have_feat = !kxp_nl_xdp_features(ifindex, &feat);
	veth = !kxp_nl_link(ifindex, false, 0, &li) && !strcmp(li.kind, "veth");
	if (veth && li.link > 0 && !kxp_nl_link(li.link, li.has_nsid, li.link_nsid, &peer))
		peer_xdp = peer.xdp_drv;
	if (veth) {
		if (peer_xdp)
			v |= KXP_FWD_TX | KXP_FWD_REDIRECT;
		else if (have_feat && (feat & KXP_NL_XDP_ACT_NDO_XMIT))
			v |= KXP_FWD_REDIRECT; /* XDP_TX becomes a redirect to itself */
		return v;
	}
	if (!have_feat)
		return v | KXP_FWD_TX | KXP_FWD_REDIRECT;
	if (feat & KXP_NL_XDP_ACT_BASIC)
		v |= KXP_FWD_TX;
	if (feat & KXP_NL_XDP_ACT_NDO_XMIT)
		v |= KXP_FWD_REDIRECT;
	return v;
}

/* Write the device's kxp_fwddev entry before kxp's XDP program goes on the
 * device (KXP_XDP_OFF: delete it). */
static int fwd_record(struct kxp_dp *dp, int ifindex, enum kxp_xdp_mode mode)
{
	int fd = dp->map_fd[KXP_MAP_FWDDEV];
	__u32 key = (__u32)ifindex, v;

	if (fd < 0)
		return 0;
	if (mode == KXP_XDP_OFF)
		return bpf_map_delete_elem(fd, &key) && errno != ENOENT ? -errno : 0;
	v = fwd_probe(ifindex, mode);
	return bpf_map_update_elem(fd, &key, &v, BPF_ANY) ? -errno : 0;
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
	if (!dp || dp->trace)
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

	if (mode == KXP_XDP_OFF || fd < 0) {
		if (drv_ours && (err = xdp_detach_mode(ifindex, XDP_FLAGS_DRV_MODE)))
			return err;
		if (skb_ours && (err = xdp_detach_mode(ifindex, XDP_FLAGS_SKB_MODE)))
			return err;
		fwd_record(dp, ifindex, KXP_XDP_OFF);
		return record(dp, ifindex, KXP_XDP_OFF, -1, false);
	}
	if (mode == KXP_XDP_NATIVE || mode == KXP_XDP_AUTO) {
		/* native and generic cannot be active at once */
		if (skb_ours && (err = xdp_detach_mode(ifindex, XDP_FLAGS_SKB_MODE)))
			return err;
		/* what XDP may send through it, known before the program runs there */
		if ((err = fwd_record(dp, ifindex, KXP_XDP_NATIVE)))
			return err;
		err = bpf_xdp_attach(ifindex, fd, XDP_FLAGS_DRV_MODE, NULL);
		if (!err) {
			if (used)
				*used = KXP_XDP_NATIVE;
			return record(dp, ifindex, KXP_XDP_NATIVE, -1, false);
		}
		/* the driver refuses: generic (with native asked for, the caller warns) */
	}
	if (drv_ours && (err = xdp_detach_mode(ifindex, XDP_FLAGS_DRV_MODE)))
		return err;
	if ((err = fwd_record(dp, ifindex, KXP_XDP_GENERIC)))
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
	char name[IF_NAMESIZE];
	int err;

	/* Gone, or its index now names another device: the kernel dropped our
	 * programs with the device, and the other device is not ours to touch. */
	if (!if_indextoname(a->ifindex, name) || (a->ifname[0] && strcmp(name, a->ifname)))
		return 0;

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

/* ---- socket hooks on a cgroup ------------------------------------------ */

static const struct {
	const char *name; /* program name as the kernel keeps it (<= 15 chars) */
	enum bpf_attach_type type;
} sock_hooks[] = {
	{ "kxp_connect4", BPF_CGROUP_INET4_CONNECT },
	{ "kxp_sendmsg4", BPF_CGROUP_UDP4_SENDMSG },
	{ "kxp_recvmsg4", BPF_CGROUP_UDP4_RECVMSG },
	{ "kxp_getpeer4", BPF_CGROUP_INET4_GETPEERNAME },
};
#define N_SOCK_HOOKS (sizeof(sock_hooks) / sizeof(sock_hooks[0]))

static uint32_t kxp_prog_id_of_fd(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.id;
}

static int sock_prog_fd(const struct kxp_dp *dp, size_t i)
{
	struct bpf_program *p[N_SOCK_HOOKS] = {
		dp->sock->progs.kxp_connect4, dp->sock->progs.kxp_sendmsg4,
		dp->sock->progs.kxp_recvmsg4, dp->sock->progs.kxp_getpeer4,
	};

	return bpf_program__fd(p[i]);
}

static void cg_state_path(const char *instance, char *dir, size_t dlen, char *file, size_t flen)
{
	snprintf(dir, dlen, "%s/%s", KXP_STATE_DIR, instance);
	snprintf(file, flen, "%s/%s/cgroups", KXP_STATE_DIR, instance);
}

/* The recorded cgroup directories of an instance, one a line, into v (at most max). */
static size_t cg_state_load(const char *instance, char (*v)[PATH_MAX], size_t max)
{
	char dir[PATH_MAX], file[PATH_MAX], line[PATH_MAX];
	size_t n = 0;
	FILE *f;

	cg_state_path(instance, dir, sizeof(dir), file, sizeof(file));
	f = fopen(file, "re");
	if (!f)
		return 0;
	while (n < max && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '/')
			snprintf(v[n++], PATH_MAX, "%s", line);
	}
	fclose(f);
	return n;
}

#define MAX_CGROUPS 16

/* Add (on) or remove (!on) one path in the instance's cgroup record. */
static int cg_record(const char *instance, const char *path, bool on)
{
	char dir[PATH_MAX], file[PATH_MAX], tmp[PATH_MAX + 8];
	static char v[MAX_CGROUPS + 1][PATH_MAX];
	size_t n, keep = 0;
	bool have = false;
	FILE *f;

	n = cg_state_load(instance, v, MAX_CGROUPS);
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(v[i], path)) {
			have = true;
			if (!on)
				continue;
		}
		if (keep != i)
			memcpy(v[keep], v[i], PATH_MAX);
		keep++;
	}
	if (on && !have) {
		if (keep >= MAX_CGROUPS)
			return -ENOSPC;
		snprintf(v[keep++], PATH_MAX, "%s", path);
	}
	cg_state_path(instance, dir, sizeof(dir), file, sizeof(file));
	if (!keep) {
		if (unlink(file) && errno != ENOENT)
			return -errno;
		rmdir(dir); /* still holds the device record: fine */
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
	for (size_t i = 0; i < keep; i++)
		fprintf(f, "%s\n", v[i]);
	if (fclose(f)) {
		unlink(tmp);
		return -errno;
	}
	return rename(tmp, file) ? -errno : 0;
}

/* Id of this instance's program on one hook of a cgroup (0 if none). */
static int cg_find_ours(int cg_fd, size_t hook, const struct idlist *ids, uint32_t *out)
{
	__u32 prog_ids[256], cnt = 256, flags = 0;
	int err;

	*out = 0;
	err = bpf_prog_query(cg_fd, sock_hooks[hook].type, 0, &flags, prog_ids, &cnt);
	if (err)
		return err < 0 ? err : -errno;
	for (__u32 j = 0; j < cnt; j++)
		if (prog_is_ours(prog_ids[j], sock_hooks[hook].name, ids)) {
			*out = prog_ids[j];
			return 0;
		}
	return 0;
}

static int cg_detach_ours(int cg_fd, const struct idlist *ids)
{
	int first = 0;

	for (size_t i = 0; i < N_SOCK_HOOKS; i++) {
		uint32_t id;
		int fd, err = cg_find_ours(cg_fd, i, ids, &id);

		if (!err && id) {
			fd = bpf_prog_get_fd_by_id(id);
			err = fd < 0 ? -errno : bpf_prog_detach2(fd, cg_fd, sock_hooks[i].type);
			if (fd >= 0)
				close(fd);
			if (err > 0)
				err = -err;
		}
		if (err && !first)
			first = err;
	}
	return first;
}

/* A cgroup v2 directory, opened; -ENOTDIR if it is something else. */
static int cg_open(const char *path)
{
	struct statfs st;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstatfs(fd, &st) || st.f_type != CGROUP2_SUPER_MAGIC) {
		close(fd);
		return -ENOTDIR;
	}
	return fd;
}

int kxp_dp_attach_sock(struct kxp_dp *dp, const char *cgroup, int mode)
{
	struct kxp_sock_cfg sc = { .mode = (uint32_t)mode };
	char path[PATH_MAX];
	struct idlist ids;
	__u32 zero = 0;
	int cg_fd, err = 0;

	if (!dp || dp->trace || !dp->sock || !cgroup)
		return -EPERM;
	if (mode != KXP_SOCK_OFF && mode != KXP_SOCK_HOST && mode != KXP_SOCK_ALL)
		return -EINVAL;
	if (!realpath(cgroup, path))
		return -errno;
	cg_fd = cg_open(path);
	if (cg_fd < 0)
		return cg_fd;
	/* Scope first: off makes any program still attached a no-op at once. */
	if (mode != KXP_SOCK_OFF) {
		uint64_t cookie = 0;

		/* SO_NETNS_COOKIE is 5.14: before it no socket is known to be
		 * the node's, and cookie 0 makes every socket in the cgroup one
		 * (lib/sock.h): TC never sees the node's own connections, so
		 * they must be translated at the socket whatever else is. */
		if (kxp_probe()->have[KXP_CAP_SO_NETNS_COOKIE])
			err = kxp_netns_cookie(&cookie);
		if (err)
			goto out;
		sc.netns_cookie = cookie;
	}
	if (bpf_map_update_elem(dp->map_fd[KXP_MAP_SOCKCFG], &zero, &sc, BPF_ANY)) {
		err = -errno;
		goto out;
	}
	dp_map_ids(dp, &ids);
	if (mode == KXP_SOCK_OFF) {
		err = cg_detach_ours(cg_fd, &ids);
		if (!err && !dp->no_pin)
			err = cg_record(dp->instance, path, false);
		goto out;
	}
	/* Recorded before attaching, so cleanup finds a half-done attach. */
	if (!dp->no_pin && (err = cg_record(dp->instance, path, true)))
		goto out;
	for (size_t i = 0; i < N_SOCK_HOOKS; i++) {
		LIBBPF_OPTS(bpf_prog_attach_opts, ao, .flags = BPF_F_ALLOW_MULTI);
		int fd = sock_prog_fd(dp, i), old_fd = -1;
		uint32_t old;

		err = cg_find_ours(cg_fd, i, &ids, &old);
		if (err)
			goto out;
		if (old && old == kxp_prog_id_of_fd(fd))
			continue; /* this very program is attached already */
		if (old) {
			old_fd = bpf_prog_get_fd_by_id(old);
			if (old_fd < 0) {
				err = -errno;
				goto out;
			}
			ao.flags |= BPF_F_REPLACE;
			ao.replace_prog_fd = old_fd;
		}
		err = bpf_prog_attach_opts(fd, cg_fd, sock_hooks[i].type, &ao);
		if (old_fd >= 0)
			close(old_fd);
		if (err) {
			err = err < 0 ? err : -errno;
			if (err == -EPERM)
				err = -EBUSY; /* a non-multi program holds the hook */
			goto out;
		}
	}
out:
	close(cg_fd);
	return err;
}

/* Detach the instance's socket hooks from every cgroup it recorded. */
static int cleanup_cgroups(const char *instance, const struct idlist *ids)
{
	static char v[MAX_CGROUPS][PATH_MAX];
	size_t n = cg_state_load(instance, v, MAX_CGROUPS);
	int first = 0;

	for (size_t i = 0; i < n; i++) {
		int fd = cg_open(v[i]), err;

		if (fd == -ENOENT || fd == -ENOTDIR) {
			cg_record(instance, v[i], false); /* the cgroup is gone, and its programs */
			continue;
		}
		if (fd < 0) {
			if (!first)
				first = fd;
			continue;
		}
		err = cg_detach_ours(fd, ids);
		close(fd);
		if (!err)
			err = cg_record(instance, v[i], false);
		if (err && !first)
			first = err;
	}
	return first;
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
	first = cleanup_cgroups(instance, &ids);
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

const char *kxp_xdp_mode_name(enum kxp_xdp_mode m)
{
	switch (m) {
	case KXP_XDP_NATIVE:
		return "native";
	case KXP_XDP_GENERIC:
		return "generic";
	case KXP_XDP_AUTO:
		return "auto";
	default:
		return "off";
	}
}

int kxp_array_walk(int fd, int (*cb)(void *ctx, uint32_t id, const void *v), void *ctx)
{
	enum { CHUNK = 4096 };
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), in = 0, out = 0, n;
	uint8_t *vals = NULL, *zero = NULL;
	uint32_t *keys = NULL;
	bool batch = true;
	int err = 0;

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	keys = calloc(CHUNK, sizeof(*keys));
	vals = calloc(CHUNK, info.value_size);
	zero = calloc(1, info.value_size);
	if (!keys || !vals || !zero) {
		err = -ENOMEM;
		goto out;
	}
	for (__u32 i = 0; i < info.max_entries && !err;) {
		LIBBPF_OPTS(bpf_map_batch_opts, o);

		n = CHUNK;
		if (batch) {
			/* one syscall per chunk (kernels from 5.6) */
			int r = bpf_map_lookup_batch(fd, i ? &in : NULL, &out, keys, vals, &n, &o);

			if (r && errno != ENOENT) {
				if (i)
					goto fail;
				batch = false; /* not offered: one lookup per id */
				continue;
			}
			in = out;
			if (r && !n)
				break;
		} else {
			n = info.max_entries - i < CHUNK ? info.max_entries - i : CHUNK;
			for (__u32 j = 0; j < n; j++) {
				keys[j] = i + j;
				if (bpf_map_lookup_elem(fd, &keys[j], vals + (size_t)j * info.value_size))
					goto fail;
			}
		}
		for (__u32 j = 0; j < n && !err; j++)
			if (memcmp(vals + (size_t)j * info.value_size, zero, info.value_size))
				err = cb(ctx, keys[j], vals + (size_t)j * info.value_size);
		i += n;
	}
	goto out;
fail:
	err = -errno;
out:
	free(keys);
	free(vals);
	free(zero);
	return err;
}

int kxp_hash_walk(int fd, size_t ksz, size_t vsz, int (*cb)(void *ctx, void *keys, const void *vals, uint32_t n),
		  void *ctx)
{
	enum { CHUNK = 4096 };
	uint8_t *keys = malloc(CHUNK * ksz), *vals = malloc(CHUNK * vsz);
	bool first = true, last = false;
	__u64 cursor = 0;
	int err = keys && vals ? 0 : -ENOMEM;

	while (!err && !last) {
		LIBBPF_OPTS(bpf_map_batch_opts, o);
		__u32 n = CHUNK;

		if (bpf_map_lookup_batch(fd, first ? NULL : &cursor, &cursor, keys, vals, &n, &o)) {
			if (errno != ENOENT) {
				err = -errno;
				break;
			}
			last = true; /* ENOENT: n holds the last chunk */
		}
		first = false;
		if (n && (err = cb(ctx, keys, vals, n)) > 0) {
			err = 0;
			break;
		}
	}
	free(keys);
	free(vals);
	return err;
}

static int count_one(void *ctx, uint32_t id, const void *v)
{
	(void)id;
	(void)v;
	(*(long *)ctx)++;
	return 0;
}

/* Entries of an array by id that are in use: not all zero. */
static long array_used(int fd)
{
	long n = 0;

	return kxp_array_walk(fd, count_one, &n) ? -1 : n;
}

int kxp_dp_attachments(const char *instance, struct kxp_dp_att *out, size_t max)
{
	uint64_t ns = kxp_netns_inode();
	struct att_list l;
	size_t n = 0;
	int err = state_load(instance, &l);

	if (err)
		return err;
	for (size_t i = 0; i < l.n && n < max; i++, n++) {
		snprintf(out[n].ifname, sizeof(out[n].ifname), "%s", l.v[i].ifname);
		out[n].ifindex = l.v[i].ifindex;
		out[n].xdp = l.v[i].xdp;
		out[n].tc = l.v[i].tc;
		out[n].here = l.v[i].netns == ns;
	}
	free(l.v);
	return (int)n;
}

long kxp_map_count(int fd)
{
	uint8_t key[64], next[64];
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	void *prev = NULL;
	long n = 0;

	if (fd < 0)
		return -1;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len) && info.type == BPF_MAP_TYPE_ARRAY)
		return array_used(fd);
	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(key, next, sizeof(key));
		prev = key;
		n++;
	}
	return n;
}
