/* Shared by bench/xdpfwd.c and bench/xdpfwd.bpf.c: the sink's state and the
 * frames it restores (see xdpfwd.bpf.c for why it restores). */
#ifndef KXP_BENCH_XDPFWD_H
#define KXP_BENCH_XDPFWD_H

#include <linux/types.h>

#define XDPFWD_FRAME_LEN 54 /* Ethernet + IPv4 + TCP, no options */
#define XDPFWD_MAX_FLOWS 65536

struct xdpfwd_frame {
	__u8 b[64];
};

struct xdpfwd_state {
	__u64 next;        /* frames handed out so far */
	__u64 flow_mask;   /* flows - 1 (a power of two) */
	__u64 restore;     /* 0: leave the frame as it arrived (the page-reuse check) */
	__u64 total;       /* frames the sink saw */
	__u64 orig;        /* ... still addressed to the frontend (untranslated) */
	__u64 xlated;      /* ... from the SNAT address to a backend (translated) */
	__u64 other;       /* ... anything else (e.g. the stack's answers after XDP_PASS) */
	__be32 orig_daddr; /* the frontend address */
	__be32 xlate_saddr;/* the SNAT address */
	__be32 xlate_net;  /* the backends' prefix */
	__be32 xlate_mask;
};

#endif
