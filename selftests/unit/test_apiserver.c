/* The decoder and the model against the API-server-shaped fixtures in
 * ../shared/fixtures/apiserver (lists, a Node, a watch stream). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>

#include "../lib/testlib.h"
#include "k8s/decode.h"
#include "lib/ip.h"
#include "model/model.h"

static const char *shared(const char *file)
{
	static char buf[4096];

	snprintf(buf, sizeof(buf), "%s/../shared/fixtures/apiserver/%s", kxp_test_srcdir(), file);
	return buf;
}

static bool load(struct kxp_objects *o, struct kxp_diags *d, const char *file)
{
	int r = kxp_objects_load_path(o, shared(file), d);
	char buf[1024];
	size_t i;

	for (i = 0; i < d->n; i++) {
		kxp_diag_format(&d->v[i], buf, sizeof(buf));
		printf("    diag: %s\n", buf);
	}
	if (r == -ENOENT)
		kxp_test_skip("%s not found (shared/ must sit beside the repository)", shared(file));
	return ASSERT_OK(r, file) && ASSERT_EQ(d->n, 0, "no diags for API server shapes");
}

static const struct k8s_service *svc(const struct kxp_objects *o, const char *name)
{
	size_t i;

	for (i = 0; i < o->n_svcs; i++)
		if (strcmp(o->svcs[i].name, name) == 0)
			return &o->svcs[i];
	kxp_test_fail(__FILE__, __LINE__, "service %s not decoded", name);
	return NULL;
}

static uint32_t ip(const char *s)
{
	uint32_t a = 0;

	kxp_parse_ip4(s, &a);
	return a;
}

KXP_TEST(apiserver_services_list)
{
	struct kxp_objects o = { 0 };
	struct kxp_diags d = { 0 };
	const struct k8s_service *s;

	if (!load(&o, &d, "services-list.json") || !ASSERT_EQ(o.n_svcs, 6, "six items"))
		goto out;
	if ((s = svc(&o, "kube-dns")) && ASSERT_EQ(s->n_ports, 3, "kube-dns ports")) {
		ASSERT_STREQ(s->ns, "kube-system", "namespace");
		ASSERT_EQ(s->resource_version, 301, "resourceVersion");
		ASSERT_EQ(s->ports[0].proto, IPPROTO_UDP, "dns/UDP");
		ASSERT_EQ(s->cluster_ips[0], ip("10.96.0.10"), "clusterIP");
	}
	if ((s = svc(&o, "apisix-gateway")) && ASSERT_EQ(s->n_ports, 2, "apisix ports")) {
		ASSERT_EQ(s->type, K8S_SVC_LOADBALANCER, "LoadBalancer");
		ASSERT_EQ(s->ports[0].node_port, 32018, "nodePort");
		ASSERT_EQ(s->ports[1].port, 443, "string targetPort does not matter");
		ASSERT_TRUE(s->etp_local && !s->itp_local && s->affinity_client_ip, "policies");
		ASSERT_EQ(s->affinity_timeout, 10800, "timeout");
		ASSERT_EQ(s->health_check_node_port, 30847, "healthCheckNodePort");
		if (ASSERT_EQ(s->n_lb_source_ranges, 2, "LBSR"))
			ASSERT_STREQ(s->lb_source_ranges[1], "198.51.100.0/25", "trimmed");
		if (ASSERT_EQ(s->n_lb_ingress, 1, "ingress"))
			ASSERT_TRUE(s->lb_ingress[0].ip == ip("172.18.255.200") && !s->lb_ingress[0].ip_mode_proxy, "VIP");
	}
	if ((s = svc(&o, "redis-headless")))
		ASSERT_TRUE(s->headless && s->headless_label, "headless");
	if ((s = svc(&o, "my-database")))
		ASSERT_EQ(s->type, K8S_SVC_EXTERNALNAME, "ExternalName");
	if ((s = svc(&o, "dual"))) {
		ASSERT_TRUE(s->n_cluster_ips == 1 && s->has_ipv6, "dual-stack: v4 kept, v6 noted");
		ASSERT_TRUE(s->itp_local && s->n_external_ips == 1, "iTP Local, externalIP");
	}
out:
	kxp_objects_free(&o);
	kxp_diags_free(&d);
}

KXP_TEST(apiserver_endpointslices_and_node)
{
	struct kxp_objects o = { 0 };
	struct kxp_diags d = { 0 };
	const struct k8s_endpointslice *s;
	const struct k8s_node *n;

	if (!load(&o, &d, "endpointslices-list.json") || !load(&o, &d, "node.json") ||
	    !ASSERT_EQ(o.n_slices, 6, "six slices"))
		goto out;
	s = &o.slices[1];
	if (ASSERT_STREQ(s->name, "kube-dns-7xk2p", "order kept") && ASSERT_EQ(s->n_eps, 2, "endpoints")) {
		ASSERT_TRUE(s->eps[0].ready && s->eps[0].hints && s->eps[0].hints->n_zones, "ready, hinted");
		ASSERT_STREQ(s->eps[0].hints ? s->eps[0].hints->zones[0] : "", "zone-a", "hint");
		ASSERT_TRUE(!s->eps[1].ready && s->eps[1].serving && s->eps[1].terminating, "terminating");
		ASSERT_EQ(s->n_ports, 3, "ports");
	}
	s = &o.slices[3];
	if (ASSERT_STREQ(s->name, "dual-ipv4-q8zr1", "dual v4") && ASSERT_EQ(s->n_eps, 2, "endpoints")) {
		ASSERT_TRUE(s->eps[0].ready && s->eps[0].serving && !s->eps[0].terminating, "{} conditions default");
		ASSERT_TRUE(s->eps[1].hints && s->eps[1].hints->n_nodes && !s->eps[1].hints->n_zones, "node hints");
	}
	ASSERT_EQ(o.slices[4].addr_type, K8S_ADDR_IPV6, "v6 slice");
	ASSERT_TRUE(o.slices[5].service_name == NULL, "stray slice without label");
	n = kxp_objects_find_node(&o, "node-a");
	if (ASSERT_TRUE(n != NULL, "node-a")) {
		ASSERT_STREQ(n->zone, "zone-a", "zone label");
		ASSERT_TRUE(n->n_internal_ips == 1 && n->internal_ips[0] == ip("172.18.0.2"), "InternalIP v4 only");
		ASSERT_TRUE(!n->deleting && !n->tbd_taint, "not deleting");
	}
out:
	kxp_objects_free(&o);
	kxp_diags_free(&d);
}

/* One expected frontend: backends as "ip:port" joined by spaces, "" for none. */
struct want_fe {
	const char *addr;
	uint16_t port;
	uint8_t proto, scope;
	uint16_t flags;
	const char *backends;
};

static void check_fe(const struct kxp_desired *d, const struct want_fe *w, bool *seen)
{
	char got[512] = "", a[16];
	size_t i, k, off = 0;

	for (i = 0; i < d->n_fe; i++) {
		const struct kxp_d_frontend *f = &d->fe[i];

		if (f->addr != ip(w->addr) || f->port != w->port || f->proto != w->proto || f->scope != w->scope)
			continue;
		seen[i] = true;
		if (f->set >= 0)
			for (k = 0; k < d->sets[f->set].n_be; k++)
				off += (size_t)snprintf(got + off, sizeof(got) - off, "%s%s:%u", k ? " " : "",
							kxp_ip4_str(d->sets[f->set].be[k].addr, a),
							d->sets[f->set].be[k].port);
		if (f->flags != w->flags)
			kxp_test_fail(__FILE__, __LINE__, "%s:%u/%u scope %u: flags 0x%x, want 0x%x", w->addr, w->port,
				      w->proto, w->scope, f->flags, w->flags);
		if (strcmp(got, w->backends))
			kxp_test_fail(__FILE__, __LINE__, "%s:%u/%u scope %u: backends \"%s\", want \"%s\"", w->addr,
				      w->port, w->proto, w->scope, got, w->backends);
		return;
	}
	kxp_test_fail(__FILE__, __LINE__, "frontend %s:%u/%u scope %u missing", w->addr, w->port, w->proto, w->scope);
}

KXP_TEST(apiserver_model_node_a)
{
	enum { T = IPPROTO_TCP, U = IPPROTO_UDP, D = KXP_SCOPE_DEFAULT, I = KXP_SCOPE_INTERNAL };
	const uint16_t ext = KXP_SVC_F_EXTERNAL, aff = KXP_SVC_F_AFFINITY, etp = KXP_SVC_F_ETP_LOCAL;
	const uint16_t split = KXP_SVC_F_SPLIT | KXP_SVC_F_LOCAL_SET, lbsr = KXP_SVC_F_LBSR;
	const char *both80 = "10.244.0.21:9080 10.244.1.22:9080", *both443 = "10.244.0.21:9443 10.244.1.22:9443";
	/* Expected by reading the fixtures against KUBE-PROXY-SEMANTICS.md:
	 * kube-dns: 10.244.1.4 is terminating while 10.244.0.3 is Ready, and the
	 * zone hint of the Ready one names zone-a; apisix: eTP=Local LB with
	 * affinity and LBSR, node-a holds 10.244.0.21; dual: iTP=Local (local
	 * set = 10.244.0.30), externalIP with both v4 endpoints (not every one
	 * has hints), no nodePort in its ports; headless and ExternalName none. */
	const struct want_fe want[] = {
		{ "10.96.0.1", 443, T, D, 0, "172.18.0.2:6443" },
		{ "10.96.0.1", 0, 0, D, KXP_SVC_F_WILDCARD, "" },
		{ "10.96.0.10", 53, T, D, 0, "10.244.0.3:53" },
		{ "10.96.0.10", 53, U, D, 0, "10.244.0.3:53" },
		{ "10.96.0.10", 9153, T, D, 0, "10.244.0.3:9153" },
		{ "10.96.0.10", 0, 0, D, KXP_SVC_F_WILDCARD, "" },
		{ "10.96.127.236", 80, T, D, aff | etp, both80 },
		{ "10.96.127.236", 443, T, D, aff | etp, both443 },
		{ "10.96.127.236", 0, 0, D, KXP_SVC_F_WILDCARD, "" },
		{ "172.18.0.2", 32018, T, D, ext | aff | etp | split, "10.244.0.21:9080" },
		{ "172.18.0.2", 32018, T, I, ext | aff | etp, both80 },
		{ "172.18.0.2", 31443, T, D, ext | aff | etp | split, "10.244.0.21:9443" },
		{ "172.18.0.2", 31443, T, I, ext | aff | etp, both443 },
		{ "172.18.255.200", 80, T, D, ext | aff | etp | split | lbsr, "10.244.0.21:9080" },
		{ "172.18.255.200", 80, T, I, ext | aff | etp | lbsr, both80 },
		{ "172.18.255.200", 443, T, D, ext | aff | etp | split | lbsr, "10.244.0.21:9443" },
		{ "172.18.255.200", 443, T, I, ext | aff | etp | lbsr, both443 },
		{ "10.96.44.5", 8080, T, D, KXP_SVC_F_ITP_LOCAL | KXP_SVC_F_LOCAL_SET, "10.244.0.30:8080" },
		{ "10.96.44.5", 0, 0, D, KXP_SVC_F_WILDCARD, "" },
		{ "192.0.2.77", 8080, T, D, ext | KXP_SVC_F_ITP_LOCAL, "10.244.0.30:8080 10.244.1.31:8080" },
	};
	const size_t n_want = sizeof(want) / sizeof(want[0]);
	struct kxp_objects o = { 0 };
	struct kxp_diags d = { 0 };
	struct kxp_desired out = { 0 };
	struct kxp_node_cfg cfg = { .node_name = "node-a", .nodeport_primary = true };
	const struct k8s_node *node;
	bool seen[64] = { false };
	size_t i;

	if (!load(&o, &d, "services-list.json") || !load(&o, &d, "endpointslices-list.json") ||
	    !load(&o, &d, "node.json"))
		goto out;
	/* node IPs from the Node object, as `kxp sync` does when it has one */
	node = kxp_objects_find_node(&o, "node-a");
	if (!ASSERT_TRUE(node && node->n_internal_ips == 1, "node-a address"))
		goto out;
	cfg.node_ips[0] = node->internal_ips[0];
	cfg.n_node_ips = 1;
	kxp_parse_cidr4("10.244.0.0/16", &cfg.cluster[0]);
	cfg.n_cluster = 1;
	kxp_parse_cidr4("10.96.0.0/12", &cfg.service[0]);
	cfg.n_service = 1;
	if (!ASSERT_OK(kxp_model_build(&o, &cfg, &out, &d), "model") || !ASSERT_EQ(d.n, 0, "no model diags"))
		goto out;
	for (i = 0; i < n_want; i++)
		check_fe(&out, &want[i], seen);
	ASSERT_EQ(out.n_fe, n_want, "no other frontends (headless, ExternalName, stray slice, IPv6)");
	for (i = 0; i < out.n_fe && i < 64; i++) {
		char a[16];

		if (!seen[i])
			kxp_test_fail(__FILE__, __LINE__, "unexpected frontend %s:%u/%u (%s)",
				      kxp_ip4_str(out.fe[i].addr, a), out.fe[i].port, out.fe[i].proto, out.fe[i].svc);
	}
	for (i = 0; i < out.n_fe; i++)
		if (out.fe[i].set >= 0 && out.sets[out.fe[i].set].affinity_timeout)
			ASSERT_STREQ(out.fe[i].svc, "apisix/apisix-gateway", "only apisix has affinity");
	if (ASSERT_EQ(out.n_nodeips, 1, "node IPs"))
		ASSERT_EQ(out.nodeips[0].flags, KXP_NODEIP_F_LOCAL | KXP_NODEIP_F_NODEPORT | KXP_NODEIP_F_PRIMARY,
			  "primary node IP flags");
out:
	kxp_desired_free(&out);
	kxp_objects_free(&o);
	kxp_diags_free(&d);
}

KXP_TEST(apiserver_watch_stream)
{
	static const enum k8s_watch_type want_type[] = { K8S_WATCH_ADDED, K8S_WATCH_BOOKMARK, K8S_WATCH_MODIFIED,
							 K8S_WATCH_DELETED, K8S_WATCH_ERROR };
	static const size_t want_ports[] = { 1, 0, 2, 1, 0 };
	static const uint64_t want_rv[] = { 48214, 0, 48401, 48460, 0 };
	FILE *f = fopen(shared("services-watch-stream.jsonl"), "r");
	char *line = NULL;
	size_t cap = 0, n = 0;

	if (!f)
		kxp_test_skip("watch stream fixture not found");
	while (getline(&line, &cap, f) > 0) {
		cJSON *ev = cJSON_Parse(line);
		enum k8s_watch_type t;
		const cJSON *obj;

		if (!ASSERT_TRUE(ev != NULL, "event is JSON") || !ASSERT_TRUE(n < 5, "five events") ||
		    !ASSERT_OK(k8s_watch_event(ev, &t, &obj), "event envelope") ||
		    !ASSERT_EQ(t, want_type[n], "event type")) {
			cJSON_Delete(ev);
			break;
		}
		if (k8s_watch_has_object(t)) {
			struct kxp_diags d = { 0 };
			struct k8s_service s;

			if (ASSERT_OK(k8s_decode_service(obj, &s, &d), "decode watched Service")) {
				ASSERT_STREQ(s.name, "web", "name");
				ASSERT_STREQ(s.ns, "shop", "namespace");
				ASSERT_EQ(s.n_ports, want_ports[n], "ports");
				ASSERT_EQ(s.resource_version, want_rv[n], "resourceVersion");
				k8s_service_free(&s);
			}
			kxp_diags_free(&d);
		} else {
			ASSERT_TRUE(t == K8S_WATCH_BOOKMARK || t == K8S_WATCH_ERROR, "non-object event");
		}
		cJSON_Delete(ev);
		n++;
	}
	ASSERT_EQ(n, 5, "events read");
	{
		cJSON *bad = cJSON_Parse("{\"type\":\"SOMETHING\",\"object\":{}}");
		enum k8s_watch_type t;
		const cJSON *obj;

		ASSERT_EQ(k8s_watch_event(bad, &t, &obj), -EINVAL, "unknown event type");
		cJSON_Delete(bad);
	}
	free(line);
	fclose(f);
}
