/* rtnetlink queries in the CURRENT network namespace (under nsenter or after
 * setns, /sys/class/net still shows the root namespace: ask the kernel). */
#ifndef KXP_NETLINK_H
#define KXP_NETLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kxp_nl_addr {
	uint32_t addr;   /* network order */
	uint8_t prefixlen;
	int ifindex;
};

/* IPv4 addresses of every non-loopback device, ordered by ifindex, then as
 * the kernel lists them (the primary address of a device first). Fills up
 * to max entries; *n gets the number found. Returns 0 or -errno. */
int kxp_nl_ipv4_addrs(struct kxp_nl_addr *out, size_t max, size_t *n);

/* Number of tc filters on the clsact hook (ingress or egress) of ifindex
 * other than the one at (prio, handle). Returns the count or -errno. */
int kxp_nl_tc_other_filters(int ifindex, int egress, uint32_t prio, uint32_t handle);

/* 1 if ifindex has a clsact qdisc, 0 if not, or -errno. */
int kxp_nl_has_clsact(int ifindex);

/* Program id of the cls_bpf filter at (prio, handle) on the clsact hook.
 * Returns 0 (found; *prog_id is 0 for a non-BPF filter), -ENOENT if there is
 * none (also when the device has no clsact qdisc), or -errno. */
int kxp_nl_tc_filter_prog(int ifindex, int egress, uint32_t prio, uint32_t handle, uint32_t *prog_id);

/* What kxp needs to know of a device before native XDP sends through it. */
struct kxp_nl_link {
	char kind[32];  /* IFLA_INFO_KIND ("veth"), "" if none */
	int link;       /* IFLA_LINK: a veth's peer */
	int link_nsid;  /* IFLA_LINK_NETNSID: the peer's namespace, if not this one */
	bool has_nsid;
	bool xdp_drv;   /* a native (driver mode) XDP program is attached */
};

/* RTM_GETLINK of ifindex; with has_nsid, of the device in the namespace
 * this one knows as nsid (a veth peer's: IFLA_TARGET_NETNSID, Linux 4.20+).
 * 0 or -errno. */
int kxp_nl_link(int ifindex, bool has_nsid, int nsid, struct kxp_nl_link *li);

/* NETDEV_XDP_ACT_* bits (include/uapi/linux/netdev.h) kxp reads. */
#define KXP_NL_XDP_ACT_BASIC 0x1    /* XDP_PASS/DROP/TX */
#define KXP_NL_XDP_ACT_NDO_XMIT 0x4 /* can receive XDP_REDIRECTed frames */

/* The device's xdp-features from the "netdev" generic netlink family
 * (Linux 6.3+): 0 with *out set, or -errno (-ENOENT: no such family). */
int kxp_nl_xdp_features(int ifindex, uint64_t *out);

#endif
