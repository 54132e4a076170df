/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Socket LB: the frontend decision for a connect()/sendmsg() address, made
 * with the packet path's maps and selection (lib/lb.h), and the per-socket
 * records (kxp_sockrev4) that show the application the frontend again. */
#ifndef KXP_BPF_SOCK_H
#define KXP_BPF_SOCK_H

#include <linux/errno.h>
#include "lib/maps.h"
#include "lib/stats.h"
#include "lib/ct.h"
#include "lib/lb.h"

/* An unconnected UDP socket keeps sending a frontend's datagrams to one
 * backend while it keeps using it (the packet path's UDP lifetime). */
#define KXP_SOCK_UDP_NS KXP_CT_UDP_NS

/* Is this socket's traffic ours? --socket-lb=host: only the namespace kxp
 * runs in (pods keep going through TC); all (the default): pod sockets too,
 * where the socket path gives what kube-proxy gives (kxp_sock_pod_ours). */
static __always_inline bool kxp_sock_in_scope(struct bpf_sock_addr *ctx, bool *host)
{
	struct kxp_sock_cfg *sc;
	__u32 zero = 0;

	sc = bpf_map_lookup_elem(&kxp_sockcfg, &zero);
	if (!sc || sc->mode == KXP_SOCK_OFF)
		return false;
	/* netns_cookie 0: the kernel cannot name namespaces to userspace
	 * (before 5.14): every socket is taken for the node's */
	*host = !sc->netns_cookie || bpf_get_netns_cookie(ctx) == sc->netns_cookie;
	return *host || sc->mode == KXP_SOCK_ALL;
}

static __always_inline void kxp_sock_record(__u64 cookie, __be32 addr, __be16 port, __u8 proto, __u8 dir,
					    __be32 to_addr, __be16 to_port, __u32 be_id, __u32 fe_id, __u64 now)
{
	struct kxp_sock_key k = { .cookie = cookie, .addr = addr, .port = port, .proto = proto, .dir = dir };
	struct kxp_sock_val v = {
		.addr = to_addr, .port = to_port, .backend_id = be_id, .fe_id = fe_id, .last_seen = now,
	};

	bpf_map_update_elem(&kxp_sockrev4, &k, &v, BPF_ANY);
}

/* Unconnected UDP: the backend this socket already sends the frontend's
 * datagrams to, if it is recent and still in the set (the packet path's lazy
 * UDP re-balancing, lib/ct.h). */
static __always_inline bool kxp_sock_sticky(__u64 cookie, const struct kxp_pkt *p, const struct kxp_svc_val *set,
					    struct kxp_dec *d, __u64 now)
{
	struct kxp_sock_key k = {
		.cookie = cookie, .addr = p->daddr, .port = p->dport, .proto = p->proto, .dir = KXP_DIR_FWD,
	};
	struct kxp_sock_val *v = bpf_map_lookup_elem(&kxp_sockrev4, &k);
	__u32 id;

	if (!v || (now > v->last_seen && now - v->last_seen > KXP_SOCK_UDP_NS))
		return false;
	id = kxp_lb_member(set->sp_id, v->addr, v->port, p->proto);
	if (!id)
		return false;
	d->backend_id = id;
	d->be_addr = v->addr;
	d->be_port = v->port;
	if (now > v->last_seen + KXP_CT_TOUCH_NS)
		v->last_seen = now;
	return true;
}

/* A pod's socket (--socket-lb all) is translated here only where the
 * result is what kube-proxy's packet path would give it; everything else
 * stays untranslated and TC decides from the real packet:
 *  - TCP only: UDP flows follow endpoint changes on the packet path (a
 *    datagram flow whose backend left its set moves, lib/ct.h), which a
 *    connect()ed UDP socket translated once could not;
 *  - no masquerade due: kube-proxy masquerades pod traffic to eTP=Cluster
 *    external frontends (and every ClusterIP flow with --masquerade-all),
 *    so the backend sees the node's address; a socket cannot change its
 *    source, TC can;
 *  - a backend to go to: whatever is rejected (ICMP port unreachable) or
 *    dropped is left to TC, as kube-proxy does it, rather than failing
 *    connect() at once with an errno the kernel may not let us choose
 *    (bpf_set_retval, 5.18); checked at the end of kxp_sock_xlate.
 * Known difference: a pod whose connection is balanced to itself (hairpin)
 * sees its own address as the peer; kube-proxy masquerades hairpin flows.
 * The pod's address is not known at connect() of an unbound socket. */
static __always_inline bool kxp_sock_pod_ours(const struct kxp_svc_val *svc, const struct kxp_config *cfg)
{
	if (kxp_fe_external(svc))
		return svc->flags & (KXP_SVC_F_SPLIT | KXP_SVC_F_ETP_LOCAL);
	return !(cfg->flags & KXP_CFG_F_MASQ_ALL);
}

/* Decide for ctx's destination and rewrite it to the backend. Returns what
 * the hook returns: 1 (go on, translated or not ours) or 0 (refused; with
 * bpf_set_retval(-ECONNREFUSED) for a reject, else the kernel's EPERM for a
 * drop). Node and pod sockets are never external sources: the INTERNAL
 * (cluster-wide) set of an eTP=Local frontend applies (table J). */
static __always_inline int kxp_sock_xlate(struct bpf_sock_addr *ctx, bool datagram)
{
	struct kxp_dec d = { .verdict = KXP_V_PASS, .reason = KXP_R_NOT_SERVICE };
	struct kxp_svc_key k = {};
	struct kxp_svc_val *svc, *set;
	struct kxp_config *cfg;
	struct kxp_pkt p = {};
	struct bpf_sock *sk;
	__u32 zero = 0;
	__u64 cookie, now;
	__be32 client;
	bool host = false;

	if (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP)
		return 1;
	if (!kxp_sock_in_scope(ctx, &host))
		return 1;
	if (!host && ctx->protocol != IPPROTO_TCP)
		return 1; /* see kxp_sock_pod_ours */
	cfg = bpf_map_lookup_elem(&kxp_config, &zero);
	if (!cfg)
		return 1;
	p.daddr = ctx->user_ip4;
	p.dport = (__be16)ctx->user_port;
	p.proto = ctx->protocol;
	p.has_ports = 1;
	sk = ctx->sk;
	if (sk)
		p.saddr = sk->src_ip4; /* 0 unless bound */
	if (datagram && ctx->msg_src_ip4)
		p.saddr = ctx->msg_src_ip4;

	k.addr = p.daddr;
	k.port = p.dport;
	k.proto = p.proto;
	k.scope = KXP_SCOPE_DEFAULT;
	svc = bpf_map_lookup_elem(&kxp_svc4, &k);
	if (!svc) {
		kxp_lb_unknown(&p, cfg, &d);
		goto out;
	}
	d.has_fe = 1;
	d.fe_id = svc->fe_id;

	/* Source-keyed decisions need the source, known here only when the
	 * socket is bound; an unbound node socket will leave from a node
	 * address (the primary one, kxp_config.snat_addr, stands for them); a
	 * pod's is left untranslated to TC, which sees the real source. */
	if (!p.saddr && host)
		client = cfg->snat_addr;
	else
		client = p.saddr;
	if (svc->flags & KXP_SVC_F_LBSR) {
		struct kxp_lbsr_key lk = { .prefixlen = 64, .fe_id = svc->fe_id, .addr = client };

		if (!client)
			return 1;
		if (!bpf_map_lookup_elem(&kxp_lbsr4, &lk)) {
			kxp_dec_set(&d, KXP_V_DROP, KXP_R_LBSR_DENY);
			goto out;
		}
	}

	set = svc;
	if (svc->flags & KXP_SVC_F_SPLIT) {
		k.scope = KXP_SCOPE_INTERNAL;
		set = bpf_map_lookup_elem(&kxp_svc4, &k);
		if (!set) {
			kxp_dec_set(&d, KXP_V_DROP, KXP_R_NO_BACKEND);
			goto out;
		}
		d.fe_id = set->fe_id;
	}
	if ((set->flags & KXP_SVC_F_AFFINITY) && !client)
		return 1;
	if (!host && !kxp_sock_pod_ours(svc, cfg))
		return 1;
	if (!set->count) {
		if (set->flags & KXP_SVC_F_REJECT)
			kxp_dec_set(&d, KXP_V_REJECT, KXP_R_NO_ENDPOINTS);
		else
			kxp_dec_set(&d, KXP_V_DROP, KXP_R_POLICY_DROP);
		goto out;
	}

	cookie = bpf_get_socket_cookie(ctx);
	now = bpf_ktime_get_ns();
	if (!datagram || !kxp_sock_sticky(cookie, &p, set, &d, now)) {
		struct kxp_flow4 t = {
			.saddr = client, .daddr = p.daddr, .dport = p.dport, .proto = p.proto, .dir = KXP_DIR_FWD,
		};

		/* Maglev hashes the tuple: the source port is not chosen yet,
		 * so a socket's flows to one frontend share its hash. */
		if (kxp_lb_pick(set, &t, client, &d)) {
			kxp_dec_set(&d, KXP_V_DROP, KXP_R_NO_BACKEND);
			goto out;
		}
		if (datagram)
			kxp_sock_record(cookie, p.daddr, p.dport, p.proto, KXP_DIR_FWD, d.be_addr, d.be_port,
					d.backend_id, d.fe_id, now);
	}
	/* What recvmsg/getpeername need to show the frontend again. */
	kxp_sock_record(cookie, d.be_addr, d.be_port, p.proto, KXP_DIR_REPLY, p.daddr, p.dport, 0, d.fe_id, now);
	ctx->user_ip4 = d.be_addr;
	ctx->user_port = (__u32)d.be_port;
	kxp_dec_set(&d, KXP_V_FORWARD, KXP_R_SOCK_XLATE);
out:
	if (!host && d.verdict != KXP_V_FORWARD)
		return 1; /* TC rejects or drops it from the packet (kxp_sock_pod_ours) */
	kxp_account(&p, &d, true);
	if (d.verdict == KXP_V_REJECT) {
		/* before 5.18 the caller sees the kernel's EPERM instead */
		if (KXP_HAS(SET_RETVAL))
			bpf_set_retval(-ECONNREFUSED);
		return 0;
	}
	return d.verdict == KXP_V_DROP ? 0 : 1;
}

/* recvmsg/getpeername: a backend address this socket was sent to reads as
 * its frontend. */
static __always_inline void kxp_sock_revnat(struct bpf_sock_addr *ctx, __u8 proto)
{
	struct kxp_sock_key k = {
		.cookie = bpf_get_socket_cookie(ctx),
		.addr = ctx->user_ip4,
		.port = (__be16)ctx->user_port,
		.proto = proto,
		.dir = KXP_DIR_REPLY,
	};
	struct kxp_sock_val *v = bpf_map_lookup_elem(&kxp_sockrev4, &k);
	__u32 r = KXP_R_SOCK_REVNAT;
	__u64 *rc;

	if (!v)
		return;
	ctx->user_ip4 = v->addr;
	ctx->user_port = (__u32)v->port;
	rc = bpf_map_lookup_elem(&kxp_reasons, &r);
	if (rc)
		*rc += 1;
}

#endif
