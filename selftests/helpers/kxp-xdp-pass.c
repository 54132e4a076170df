/* kxp-xdp-pass: attach a two-instruction XDP_PASS program (native mode) to
 * devices of the current network namespace. Test topologies put it on the
 * peers of veths where kxp runs XDP: a veth only accepts XDP_TX/redirected
 * frames when its peer has an XDP program (or GRO), and no ethtool here. */
#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static int load_xdp_pass(void)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	union bpf_attr attr;
	int fd;

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_XDP;
	attr.insns = (unsigned long)insns;
	attr.insn_cnt = sizeof(insns) / sizeof(insns[0]);
	attr.license = (unsigned long)"GPL";
	strncpy(attr.prog_name, "kxp_xdp_pass", sizeof(attr.prog_name) - 1);
	fd = syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
	return fd < 0 ? -errno : fd;
}

static void put_attr(struct nlmsghdr *n, unsigned short type, const void *data, unsigned short len)
{
	struct nlattr *a = (struct nlattr *)((char *)n + NLMSG_ALIGN(n->nlmsg_len));

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	if (len)
		memcpy((char *)a + NLA_HDRLEN, data, len);
	n->nlmsg_len = NLMSG_ALIGN(n->nlmsg_len) + NLA_ALIGN(a->nla_len);
}

/* RTM_SETLINK with IFLA_XDP {FD, FLAGS=DRV_MODE}; the kernel's ack carries the errno. */
static int attach(int nl, int ifindex, int prog_fd)
{
	struct {
		struct nlmsghdr n;
		struct ifinfomsg i;
		char buf[128];
	} req;
	char resp[512];
	struct nlattr *nest;
	__u32 flags = XDP_FLAGS_DRV_MODE;
	struct nlmsghdr *h;
	ssize_t len;

	memset(&req, 0, sizeof(req));
	req.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	req.n.nlmsg_type = RTM_SETLINK;
	req.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	req.i.ifi_family = AF_UNSPEC;
	req.i.ifi_index = ifindex;
	nest = (struct nlattr *)((char *)&req + NLMSG_ALIGN(req.n.nlmsg_len));
	put_attr(&req.n, IFLA_XDP | NLA_F_NESTED, NULL, 0);
	put_attr(&req.n, IFLA_XDP_FD, &prog_fd, sizeof(prog_fd));
	put_attr(&req.n, IFLA_XDP_FLAGS, &flags, sizeof(flags));
	nest->nla_len = (char *)&req + req.n.nlmsg_len - (char *)nest;

	if (send(nl, &req, req.n.nlmsg_len, 0) < 0)
		return -errno;
	len = recv(nl, resp, sizeof(resp), 0);
	if (len < 0)
		return -errno;
	h = (struct nlmsghdr *)resp;
	if (!NLMSG_OK(h, (size_t)len) || h->nlmsg_type != NLMSG_ERROR)
		return -EPROTO;
	return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
}

int main(int argc, char **argv)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int prog, nl, rc = 0;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fprintf(argc < 2 ? stderr : stdout, "usage: kxp-xdp-pass DEV [DEV...]\n");
		return argc < 2 ? 2 : 0;
	}
	prog = load_xdp_pass();
	if (prog < 0) {
		fprintf(stderr, "kxp-xdp-pass: BPF_PROG_LOAD: %s\n", strerror(-prog));
		return 1;
	}
	nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (nl < 0 || bind(nl, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("kxp-xdp-pass: netlink");
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		int ifindex = if_nametoindex(argv[i]), err;

		err = ifindex ? attach(nl, ifindex, prog) : -ENODEV;
		if (err) {
			fprintf(stderr, "kxp-xdp-pass: %s: %s\n", argv[i], strerror(-err));
			rc = 1;
		}
	}
	/* The attachment holds its own reference; the program outlives us. */
	close(nl);
	close(prog);
	return rc;
}
