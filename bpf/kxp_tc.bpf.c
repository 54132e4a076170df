/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* TC entries (ingress and egress). (placeholder until the datapath lands) */
#include <linux/pkt_cls.h>
#include "lib/maps.h"

const volatile __u32 kxp_trace_mode = 0;
struct kxp_trace_res kxp_trace_res = {};

SEC("tc")
int kxp_tc_ingress(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

SEC("tc")
int kxp_tc_egress(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
