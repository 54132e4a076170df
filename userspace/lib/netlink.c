/* rtnetlink (and generic netlink) queries with libmnl: device addresses, tc
 * filters, a device's kind, peer and XDP state, its XDP features, in the
 * current network namespace. */
#include "lib/netlink.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/if_link.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>

/* One request (a dump, or a query answered with an ACK), every reply message
 * handed to cb until the dump's end or the ACK. 0 or -errno. */
static int nl_talk(int proto, struct nlmsghdr *req, mnl_cb_t cb, void *data)
{
	char buf[32768]; /* a dump may hold many messages per read */
	struct mnl_socket *nl;
	unsigned int seq, portid;
	int ret, err = 0;

	nl = mnl_socket_open(proto);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	seq = req->nlmsg_seq = (unsigned int)time(NULL);
	if (mnl_socket_sendto(nl, req, req->nlmsg_len) < 0) {
		err = -errno;
		goto out;
	}
	for (;;) {
		ret = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (ret < 0) {
			err = -errno;
			break;
		}
		errno = 0;
		ret = mnl_cb_run(buf, ret, seq, portid, cb, data);
		if (ret < 0) {
			err = errno ? -errno : -EIO;
			break;
		}
		if (ret == MNL_CB_STOP)
			break;
	}
out:
	mnl_socket_close(nl);
	return err;
}

static int nl_dump(struct nlmsghdr *req, mnl_cb_t cb, void *data)
{
	return nl_talk(NETLINK_ROUTE, req, cb, data);
}

struct links {
	int loop[256]; /* ifindexes of loopback devices */
	size_t n;
};

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);
	struct links *l = data;

	if ((ifm->ifi_flags & IFF_LOOPBACK) && l->n < sizeof(l->loop) / sizeof(l->loop[0]))
		l->loop[l->n++] = ifm->ifi_index;
	return MNL_CB_OK;
}

struct addrs {
	const struct links *links;
	struct kxp_nl_addr *out;
	size_t max, n;
};

static int addr_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (type <= IFA_MAX)
		tb[type] = attr;
	return MNL_CB_OK;
}

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFA_MAX + 1] = {};
	struct addrs *a = data;
	const struct nlattr *at;

	if (ifa->ifa_family != AF_INET)
		return MNL_CB_OK;
	for (size_t i = 0; i < a->links->n; i++)
		if (a->links->loop[i] == (int)ifa->ifa_index)
			return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*ifa), addr_attr_cb, tb);
	/* IFA_LOCAL is the device's own address (IFA_ADDRESS is the peer on ptp links) */
	at = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!at || mnl_attr_get_payload_len(at) != 4)
		return MNL_CB_OK;
	if (a->n < a->max) {
		memcpy(&a->out[a->n].addr, mnl_attr_get_payload(at), 4);
		a->out[a->n].prefixlen = ifa->ifa_prefixlen;
		a->out[a->n].ifindex = (int)ifa->ifa_index;
	}
	a->n++;
	return MNL_CB_OK;
}

static int cmp_ifindex(const void *x, const void *y)
{
	const struct kxp_nl_addr *a = x, *b = y;

	return (a->ifindex > b->ifindex) - (a->ifindex < b->ifindex);
}

int kxp_nl_ipv4_addrs(struct kxp_nl_addr *out, size_t max, size_t *n)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct links links = {};
	struct addrs a = { .links = &links, .out = out, .max = max };
	struct nlmsghdr *nlh;
	struct rtgenmsg *rt;
	struct ifaddrmsg *ifa;
	int err;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	rt = mnl_nlmsg_put_extra_header(nlh, sizeof(*rt));
	rt->rtgen_family = AF_UNSPEC;
	err = nl_dump(nlh, link_cb, &links);
	if (err)
		return err;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	err = nl_dump(nlh, addr_cb, &a);
	if (err)
		return err;
	*n = a.n < max ? a.n : max;
	/* stable sort keeps the kernel's per-device order (primary first) */
	for (size_t i = 1; i < *n; i++)
		for (size_t j = i; j > 0 && cmp_ifindex(&out[j - 1], &out[j]) > 0; j--) {
			struct kxp_nl_addr t = out[j];

			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return 0;
}

struct filters {
	uint32_t prio, handle;
	int others;
	bool found;
	uint32_t prog_id;
};

static int opt_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (type <= TCA_BPF_MAX)
		tb[type] = attr;
	return MNL_CB_OK;
}

static int top_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (type <= TCA_MAX)
		tb[type] = attr;
	return MNL_CB_OK;
}

static int filter_cb(const struct nlmsghdr *nlh, void *data)
{
	struct tcmsg *tcm = mnl_nlmsg_get_payload(nlh);
	struct filters *f = data;
	uint32_t prio = TC_H_MAJ(tcm->tcm_info) >> 16;

	if (nlh->nlmsg_type != RTM_NEWTFILTER)
		return MNL_CB_OK;
	/* the kernel also lists each classifier instance itself with handle 0 */
	if (!tcm->tcm_handle)
		return MNL_CB_OK;
	if (prio == f->prio && tcm->tcm_handle == f->handle) {
		const struct nlattr *tb[TCA_MAX + 1] = {}, *ob[TCA_BPF_MAX + 1] = {};

		f->found = true;
		mnl_attr_parse(nlh, sizeof(*tcm), top_attr_cb, tb);
		if (tb[TCA_KIND] && !strcmp(mnl_attr_get_str(tb[TCA_KIND]), "bpf") && tb[TCA_OPTIONS]) {
			mnl_attr_parse_nested(tb[TCA_OPTIONS], opt_attr_cb, ob);
			if (ob[TCA_BPF_ID])
				f->prog_id = mnl_attr_get_u32(ob[TCA_BPF_ID]);
		}
		return MNL_CB_OK;
	}
	f->others++;
	return MNL_CB_OK;
}

static int tc_dump(int ifindex, int egress, struct filters *f)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct tcmsg *tcm;
	int err;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETTFILTER;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	tcm = mnl_nlmsg_put_extra_header(nlh, sizeof(*tcm));
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = ifindex;
	tcm->tcm_parent = TC_H_MAKE(TC_H_CLSACT, egress ? TC_H_MIN_EGRESS : TC_H_MIN_INGRESS);
	err = nl_dump(nlh, filter_cb, f);
	/* no clsact qdisc: nothing is attached there */
	return err == -EINVAL || err == -ENOENT ? 0 : err;
}

int kxp_nl_tc_other_filters(int ifindex, int egress, uint32_t prio, uint32_t handle)
{
	struct filters f = { .prio = prio, .handle = handle };
	int err = tc_dump(ifindex, egress, &f);

	return err ? err : f.others;
}

int kxp_nl_tc_filter_prog(int ifindex, int egress, uint32_t prio, uint32_t handle, uint32_t *prog_id)
{
	struct filters f = { .prio = prio, .handle = handle };
	int err = tc_dump(ifindex, egress, &f);

	if (err)
		return err;
	*prog_id = f.prog_id;
	return f.found ? 0 : -ENOENT;
}

struct qdisc_q {
	int ifindex;
	bool found;
};

static int qdisc_cb(const struct nlmsghdr *nlh, void *data)
{
	struct tcmsg *tcm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[TCA_MAX + 1] = {};
	struct qdisc_q *q = data;

	if (nlh->nlmsg_type != RTM_NEWQDISC || tcm->tcm_ifindex != q->ifindex)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*tcm), top_attr_cb, tb);
	if (tb[TCA_KIND] && !strcmp(mnl_attr_get_str(tb[TCA_KIND]), "clsact"))
		q->found = true;
	return MNL_CB_OK;
}

int kxp_nl_has_clsact(int ifindex)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct qdisc_q q = { .ifindex = ifindex };
	struct nlmsghdr *nlh;
	struct tcmsg *tcm;
	int err;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETQDISC;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	tcm = mnl_nlmsg_put_extra_header(nlh, sizeof(*tcm));
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = ifindex; /* the kernel dumps every device: filtered in qdisc_cb */
	err = nl_dump(nlh, qdisc_cb, &q);
	return err ? err : q.found;
}

/* ---- device queries (kxp_nl_link, kxp_nl_xdp_features) ---------------- */

/* include/uapi/linux/netdev.h (Linux 6.3+; not in Debian 12's headers) */
#define KXP_NETDEV_CMD_DEV_GET 1
#define KXP_NETDEV_A_DEV_IFINDEX 1
#define KXP_NETDEV_A_DEV_XDP_FEATURES 3


static int xdp_attr_cb(const struct nlattr *a, void *data)
{
	struct kxp_nl_link *li = data;

	if (mnl_attr_get_type(a) == IFLA_XDP_ATTACHED && !mnl_attr_validate(a, MNL_TYPE_U8) &&
	    mnl_attr_get_u8(a) == XDP_ATTACHED_DRV)
		li->xdp_drv = true;
	if (mnl_attr_get_type(a) == IFLA_XDP_DRV_PROG_ID && !mnl_attr_validate(a, MNL_TYPE_U32) &&
	    mnl_attr_get_u32(a))
		li->xdp_drv = true;
	return MNL_CB_OK;
}

static int linkinfo_attr_cb(const struct nlattr *a, void *data)
{
	struct kxp_nl_link *li = data;

	if (mnl_attr_get_type(a) == IFLA_INFO_KIND && !mnl_attr_validate(a, MNL_TYPE_STRING))
		snprintf(li->kind, sizeof(li->kind), "%s", mnl_attr_get_str(a));
	return MNL_CB_OK;
}

static int link_attr_cb(const struct nlattr *a, void *data)
{
	struct kxp_nl_link *li = data;

	switch (mnl_attr_get_type(a)) {
	case IFLA_LINK:
		if (!mnl_attr_validate(a, MNL_TYPE_U32))
			li->link = (int)mnl_attr_get_u32(a);
		break;
	case IFLA_LINK_NETNSID:
		if (!mnl_attr_validate(a, MNL_TYPE_U32)) {
			li->link_nsid = (int)mnl_attr_get_u32(a);
			li->has_nsid = true;
		}
		break;
	case IFLA_LINKINFO:
		mnl_attr_parse_nested(a, linkinfo_attr_cb, li);
		break;
	case IFLA_XDP:
		mnl_attr_parse_nested(a, xdp_attr_cb, li);
		break;
	}
	return MNL_CB_OK;
}

static int link_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	if (nlh->nlmsg_type == RTM_NEWLINK)
		mnl_attr_parse(nlh, sizeof(struct ifinfomsg), link_attr_cb, data);
	return MNL_CB_OK;
}

/* RTM_GETLINK of ifindex; with has_nsid, of the device in the namespace
 * this one knows as nsid (a veth peer's: IFLA_TARGET_NETNSID, Linux 4.20+). */
int kxp_nl_link(int ifindex, bool has_nsid, int nsid, struct kxp_nl_link *li)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifm;

	memset(li, 0, sizeof(*li));
	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = ifindex;
	if (has_nsid)
		mnl_attr_put_u32(nlh, IFLA_TARGET_NETNSID, (uint32_t)nsid);
	return nl_talk(NETLINK_ROUTE, nlh, link_msg_cb, li);
}

static int genl_family_cb(const struct nlattr *a, void *data)
{
	if (mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_ID && !mnl_attr_validate(a, MNL_TYPE_U16))
		*(uint16_t *)data = mnl_attr_get_u16(a);
	return MNL_CB_OK;
}

static int genl_family_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	mnl_attr_parse(nlh, sizeof(struct genlmsghdr), genl_family_cb, data);
	return MNL_CB_OK;
}

static int xdp_features_cb(const struct nlattr *a, void *data)
{
	if (mnl_attr_get_type(a) == KXP_NETDEV_A_DEV_XDP_FEATURES && !mnl_attr_validate(a, MNL_TYPE_U64))
		*(uint64_t *)data = mnl_attr_get_u64(a);
	return MNL_CB_OK;
}

static int xdp_features_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	mnl_attr_parse(nlh, sizeof(struct genlmsghdr), xdp_features_cb, data);
	return MNL_CB_OK;
}

/* The device's NETDEV_XDP_ACT_* from the "netdev" generic netlink family
 * (Linux 6.3+): 0 with *out set, or -errno (-ENOENT: no such family). */
int kxp_nl_xdp_features(int ifindex, uint64_t *out)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *g;
	uint16_t family = 0;
	uint64_t feat = UINT64_MAX;
	int err;

	nlh->nlmsg_type = GENL_ID_CTRL;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = CTRL_CMD_GETFAMILY;
	g->version = 1;
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, "netdev");
	err = nl_talk(NETLINK_GENERIC, nlh, genl_family_msg_cb, &family);
	if (err)
		return err;
	if (!family)
		return -ENOENT;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = family;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = KXP_NETDEV_CMD_DEV_GET;
	g->version = 1;
	mnl_attr_put_u32(nlh, KXP_NETDEV_A_DEV_IFINDEX, (uint32_t)ifindex);
	err = nl_talk(NETLINK_GENERIC, nlh, xdp_features_msg_cb, &feat);
	if (err)
		return err;
	if (feat == UINT64_MAX)
		return -ENODATA;
	*out = feat;
	return 0;
}
