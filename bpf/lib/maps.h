/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Every kxp map, one comment each. Included by every BPF object, so the XDP
 * and TC objects declare identical maps; the loader shares them through pins
 * (bpf_map__reuse_fd). Sizes are defaults; the loader resizes before load. */
#ifndef KXP_BPF_MAPS_H
#define KXP_BPF_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <kxp/abi.h>

/* KXP_FEAT_* the running kernel offers, set by the loader before load (the
 * verifier sees a constant and drops the branches of missing helpers). */
const volatile __u32 kxp_features = 0;
#define KXP_HAS(f) (kxp_features & KXP_FEAT_##f)

/* Frontends: {addr, port, proto, scope} -> fe id, set id, backend count, flags. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KXP_DEF_MAX_FRONTENDS);
	__type(key, struct kxp_svc_key);
	__type(value, struct kxp_svc_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} kxp_svc4 SEC(".maps");

/* Backend slots: one array; a set's are [base, base + count) (abi.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KXP_DEF_MAX_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} kxp_slot SEC(".maps");

/* Backends: an array by id -> {addr, port, proto, flags}; addr 0 = no
 * backend has this id (ids start at 1). The loader sizes it max_backends + 1. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KXP_DEF_MAX_BACKENDS + 1);
	__type(key, __u32);
	__type(value, struct kxp_backend);
} kxp_backend4 SEC(".maps");

/* Reverse NAT: an array by frontend id -> frontend address, addr 0 = unused
 * (listings; no program reads it). Sized max_frontends + 1. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KXP_DEF_MAX_FRONTENDS + 1);
	__type(key, __u32);
	__type(value, struct kxp_revnat);
} kxp_revnat4 SEC(".maps");

/* Conntrack: flow (as seen, per direction) -> the translation to apply. A
 * preallocated hash, not an LRU: full, it refuses new flows (lib/ct.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KXP_DEF_MAX_CT);
	__type(key, struct kxp_flow4);
	__type(value, struct kxp_ct_val);
} kxp_ct4 SEC(".maps");

/* Node addresses: addr -> flags (source class "node", serves NodePorts). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KXP_DEF_MAX_NODEIPS);
	__type(key, __be32);
	__type(value, struct kxp_nodeip);
} kxp_nodeip4 SEC(".maps");

/* loadBalancerSourceRanges: {fe_id, source prefix} -> allow. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, KXP_DEF_MAX_LBSR);
	__type(key, struct kxp_lbsr_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} kxp_lbsr4 SEC(".maps");

/* Node-wide settings (a map, not globals, so every loaded copy sees the same). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kxp_config);
} kxp_config SEC(".maps");

/* Per-frontend counters, indexed by fe id. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KXP_DEF_MAX_FRONTENDS + 1);
	__type(key, __u32);
	__type(value, struct kxp_stats);
} kxp_stats SEC(".maps");

/* Per-reason packet counters (enum kxp_reason). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KXP_R_MAX);
	__type(key, __u32);
	__type(value, __u64);
} kxp_reasons SEC(".maps");

/* Ports of first fragments, so later fragments follow their datagram's flow. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, KXP_DEF_MAX_FRAG);
	__type(key, struct kxp_frag_key);
	__type(value, struct kxp_frag_val);
} kxp_frag4 SEC(".maps");

/* Reject (ICMP port unreachable) token bucket, one per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kxp_tbucket);
} kxp_rejrl SEC(".maps");

/* Socket LB scope and mode, written by the loader when it attaches the hooks. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kxp_sock_cfg);
} kxp_sockcfg SEC(".maps");

/* Socket LB: {socket cookie, addr:port, proto, dir} -> the other side of the translation. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, KXP_DEF_MAX_SOCKREV);
	__type(key, struct kxp_sock_key);
	__type(value, struct kxp_sock_val);
} kxp_sockrev4 SEC(".maps");

/* Maglev tables: sp_id -> inner array of M backend ids (+ fingerprint, see
 * abi.h). The template fixes M for every inner map (the loader sets it), so
 * lookups in the inner arrays stay inlined. */
struct kxp_maglev_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KXP_MAGLEV_PAIRS(KXP_MAGLEV_M_DEF));
	__type(key, __u32);
	__type(value, __u64); /* struct kxp_mg_pair (a plain type: objects that never
			       * read it would only carry a forward declaration) */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, KXP_DEF_MAX_FRONTENDS + 1);
	__type(key, __u32);
	__array(values, struct kxp_maglev_inner);
} kxp_maglev SEC(".maps");

/* Round robin: sp_id -> count of new flows balanced in the set. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KXP_DEF_MAX_FRONTENDS + 1);
	__type(key, __u32);
	__type(value, __u32);
} kxp_rr SEC(".maps");

/* Set membership: {sp_id, backend address} -> backend id (UDP re-balancing,
 * affinity; only UDP sets and sets with affinity have entries). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KXP_DEF_MAX_SLOTS);
	__type(key, struct kxp_member_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} kxp_member4 SEC(".maps");

/* sessionAffinity ClientIP: {client, sp_id} -> backend, last new connection. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, KXP_DEF_MAX_AFFINITY);
	__type(key, struct kxp_aff_key);
	__type(value, struct kxp_aff_val);
} kxp_affinity4 SEC(".maps");

/* sp_id -> set name, for listings only (never read by the programs). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KXP_DEF_MAX_FRONTENDS);
	__type(key, __u32);
	__type(value, struct kxp_spname);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} kxp_spname SEC(".maps");

/* Devices probed at attach: ifindex -> KXP_FWD_* (what XDP may send there). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KXP_DEF_MAX_FWDDEV);
	__type(key, __u32);
	__type(value, __u32);
} kxp_fwddev SEC(".maps");

/* Bitmaps that spare lookups bound to miss: backend ports, frontend addresses (abi.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KXP_HINT_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} kxp_hint SEC(".maps");

#endif
