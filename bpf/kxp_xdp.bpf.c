/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* XDP entry on external devices. (placeholder until the datapath lands) */
#include "lib/maps.h"

const volatile __u32 kxp_trace_mode = 0;
struct kxp_trace_res kxp_trace_res = {};

SEC("xdp")
int kxp_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
