/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* bench/xdpfwd: the floor programs (XDP_TX, XDP_PASS, bpf_redirect) run the
 * same way as kxp's XDP program, and the sink attached to the receiving veth
 * peers, which counts what arrived and puts the original frame back.
 *
 * Why the sink restores: in BPF_F_TEST_XDP_LIVE_FRAMES mode the kernel copies
 * the input packet into a page only when the page pool first hands that page
 * out; a recycled page keeps whatever the last program left in it
 * (Documentation/bpf/bpf_prog_run.rst: "When recycling, the page content is
 * not rewritten"). kxp rewrites addresses, ports and MACs, so without a
 * restore most frames of a long run would be kxp's own output again. A frame
 * sent by XDP_TX/XDP_REDIRECT into a veth is freed by the peer's XDP_DROP
 * straight back into the test run's page pool, so writing the original bytes
 * here is what makes every run see an arriving frame. The floor goes through
 * the same sink, so its cost is in both figures. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>

#include "xdpfwd.h"

/* Set by bench/xdpfwd before load (.rodata): where floor_redirect sends. */
const volatile __u32 redirect_ifindex = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdpfwd_state);
} xdpfwd_state SEC(".maps");

/* The frames of the measured flows, in the order the sink hands them out. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDPFWD_MAX_FLOWS);
	__type(key, __u32);
	__type(value, struct xdpfwd_frame);
} xdpfwd_frames SEC(".maps");

SEC("xdp")
int floor_tx(struct xdp_md *ctx)
{
	return XDP_TX;
}

SEC("xdp")
int floor_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int floor_redirect(struct xdp_md *ctx)
{
	return bpf_redirect(redirect_ifindex, 0);
}

SEC("xdp")
int xdpfwd_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct xdpfwd_frame *f;
	struct xdpfwd_state *s;
	struct iphdr *ip;
	__u32 zero = 0, i;

	s = bpf_map_lookup_elem(&xdpfwd_state, &zero);
	if (!s)
		return XDP_DROP;
	/* One CPU runs the test and the peer's NAPI (the veth schedules it on
	 * the sending CPU), so plain increments do not race here. */
	s->total++;
	if (data + XDPFWD_FRAME_LEN > data_end) {
		s->other++;
		return XDP_DROP;
	}
	ip = data + ETH_HLEN;
	if (ip->daddr == s->orig_daddr)
		s->orig++;
	else if ((ip->daddr & s->xlate_mask) == s->xlate_net && ip->saddr == s->xlate_saddr)
		s->xlated++;
	else
		s->other++;
	if (!s->restore)
		return XDP_DROP;
	i = s->next++ & s->flow_mask;
	f = bpf_map_lookup_elem(&xdpfwd_frames, &i);
	if (f)
		__builtin_memcpy(data, f->b, XDPFWD_FRAME_LEN);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
