/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Incremental Internet checksum updates for XDP (RFC 1624, eqn. 3), which has
 * no bpf_l3/l4_csum_replace. TC must use the kernel helpers instead: its skbs
 * may be CHECKSUM_PARTIAL, and only the helpers keep skb->csum consistent. */
#ifndef KXP_BPF_CSUM_H
#define KXP_BPF_CSUM_H

#include <linux/types.h>

/* One's-complement sums are byte-order independent as long as every 16-bit
 * word is taken in memory order, so __be values are used as they are. */
static __always_inline __u16 kxp_csum_fold(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* HC' = ~(~HC + ~m + m'), applied to a running 32-bit accumulator. */
static __always_inline __u32 kxp_csum_acc4(__u32 acc, __be32 from, __be32 to)
{
	acc += (__u16)~(from & 0xffff);
	acc += (__u16)~(from >> 16);
	acc += to & 0xffff;
	acc += to >> 16;
	return acc;
}

static __always_inline __u32 kxp_csum_acc2(__u32 acc, __be16 from, __be16 to)
{
	acc += (__u16)~from;
	acc += to;
	return acc;
}

/* Start an update of checksum field value `sum`: the accumulator holds ~HC. */
static __always_inline __u32 kxp_csum_begin(__sum16 sum)
{
	return (__u16)~sum;
}

static __always_inline __sum16 kxp_csum_end(__u32 acc)
{
	return (__sum16)~kxp_csum_fold(acc);
}

#endif
