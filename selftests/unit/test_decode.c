/* Unit tests for the manifest decoder: malformed objects (one diag each,
 * the valid objects of the same file still loaded), YAML shapes, JSON
 * streams and directory loading. Inputs are in selftests/fixtures/manifests. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>

#include "../lib/testlib.h"
#include "k8s/decode.h"
#include "k8s/yaml2json.h"
#include "lib/ip.h"

static char path_buf[4096];

static const char *fixture(const char *rel)
{
	snprintf(path_buf, sizeof(path_buf), "%s/selftests/fixtures/manifests/%s", kxp_test_srcdir(), rel);
	return path_buf;
}

static void print_diags(const struct kxp_diags *d)
{
	char buf[1024];
	size_t i;

	for (i = 0; i < d->n; i++) {
		kxp_diag_format(&d->v[i], buf, sizeof(buf));
		printf("    diag: %s\n", buf);
	}
}

/* Find (and consume) the diag for kind ns/name field. */
static bool take_diag(struct kxp_diags *d, bool *used, const char *kind, const char *ns, const char *name,
		      const char *field)
{
	size_t i;

	for (i = 0; i < d->n; i++) {
		const struct kxp_diag *g = &d->v[i];

		if (used[i] || strcmp(g->kind, kind) || strcmp(g->ns, ns) || strcmp(g->field, field))
			continue;
		/* without a name the diag must still locate the object */
		if (name ? strcmp(g->name, name) != 0 : !g->name[0])
			continue;
		if (!g->reason[0])
			continue;
		used[i] = true;
		return true;
	}
	kxp_test_fail(__FILE__, __LINE__, "no diag for %s %s/%s field %s", kind, ns, name ? name : "*", field);
	return false;
}

static const struct k8s_service *find_svc(const struct kxp_objects *o, const char *name)
{
	size_t i;

	for (i = 0; i < o->n_svcs; i++)
		if (strcmp(o->svcs[i].name, name) == 0)
			return &o->svcs[i];
	return NULL;
}

static const struct k8s_endpointslice *find_slice(const struct kxp_objects *o, const char *name)
{
	size_t i;

	for (i = 0; i < o->n_slices; i++)
		if (strcmp(o->slices[i].name, name) == 0)
			return &o->slices[i];
	return NULL;
}

KXP_TEST(decode_malformed_manifest)
{
	static const struct {
		const char *kind, *name, *field;
	} want[] = {
		{ "Service", "badport", "spec.ports[0].port" },
		{ "Service", "zeroport", "spec.ports[0].port" },
		{ "Service", "badnodeport", "spec.ports[1].nodePort" },
		{ "Service", NULL, "metadata.name" },
		{ "Service", "nospec", "spec" },
		{ "Service", "strport", "spec.ports[0].port" },
		{ "Service", "badproto", "spec.ports[0].protocol" },
		{ "Service", "timeout0", "spec.sessionAffinityConfig.clientIP.timeoutSeconds" },
		{ "Service", "timeoutbig", "spec.sessionAffinityConfig.clientIP.timeoutSeconds" },
		{ "Service", "badcip", "spec.clusterIP" },
		{ "Service", "badext", "spec.externalIPs[1]" },
		{ "Service", "badlb", "status.loadBalancer.ingress[0].ip" },
		{ "Service", "badtype", "spec.type" },
		{ "Service", "ports-not-list", "spec.ports" },
		{ "EndpointSlice", "noaddrtype", "addressType" },
		{ "EndpointSlice", "badaddr", "endpoints[1].addresses[0]" },
		{ "EndpointSlice", "strready", "endpoints[0].conditions.ready" },
		{ "EndpointSlice", "badslport", "ports[0].port" },
		{ "Deployment", "web", "kind" },
		{ "Service", "futuresvc", "apiVersion" },
		{ "EndpointSlice", "oldslice", "apiVersion" },
	};
	struct kxp_objects o = { 0 };
	struct kxp_diags d = { 0 };
	const struct k8s_service *s;
	bool used[64] = { false };
	size_t i;
	int r;

	r = kxp_objects_load_path(&o, fixture("malformed.yaml"), &d);
	if (!ASSERT_OK(r, "load malformed.yaml"))
		goto out;
	print_diags(&d);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const char *ns = strcmp(want[i].kind, "Node") ? "shop" : "";

		take_diag(&d, used, want[i].kind, ns, want[i].name, want[i].field);
	}
	take_diag(&d, used, "Node", "", "node-bad", "metadata.labels");
	ASSERT_EQ(d.n, sizeof(want) / sizeof(want[0]) + 1, "one diag per bad case, no more");
	/* the valid objects are all there, the bad ones are not */
	ASSERT_EQ(o.n_svcs, 3, "services loaded: good, badext, badlb");
	ASSERT_EQ(o.n_slices, 1, "slices loaded: good-slice");
	ASSERT_EQ(o.n_nodes, 1, "nodes loaded: node-a");
	ASSERT_TRUE(find_svc(&o, "good") && find_slice(&o, "good-slice"), "good objects");
	ASSERT_TRUE(kxp_objects_find_node(&o, "node-a") != NULL, "node-a");
	/* an invalid list entry is skipped, the object kept */
	s = find_svc(&o, "badext");
	if (ASSERT_TRUE(s != NULL, "badext kept") && ASSERT_EQ(s->n_external_ips, 2, "valid externalIPs")) {
		char a[16];

		ASSERT_STREQ(kxp_ip4_str(s->external_ips[1], a), "192.0.2.3", "second valid externalIP");
	}
	s = find_svc(&o, "badlb");
	if (ASSERT_TRUE(s != NULL, "badlb kept") && ASSERT_EQ(s->n_lb_ingress, 1, "valid ingress"))
		ASSERT_EQ(s->lb_ingress[0].ip, htonl(0xc0000215), "192.0.2.21");
out:
	kxp_objects_free(&o);
	kxp_diags_free(&d);
}

KXP_TEST(decode_yaml_shapes)
{
	struct kxp_objects o = { 0 };
	struct kxp_diags d = { 0 };
	const struct k8s_service *s;
	const struct k8s_endpointslice *sl;
	bool used[8] = { false };
	int r;

	r = kxp_objects_load_path(&o, fixture("kinds.yaml"), &d);
	if (!ASSERT_OK(r, "load kinds.yaml"))
		goto out;
	print_diags(&d);
	/* plain 123 is a number in YAML: a mistyped name */
	take_diag(&d, used, "Service", "default", NULL, "metadata.name");
	ASSERT_EQ(d.n, 1, "only the plain-number name is rejected");
	ASSERT_EQ(o.n_svcs, 2, "services: in-list and \"123\"");
	s = find_svc(&o, "in-list");
	if (ASSERT_TRUE(s != NULL, "List item") && ASSERT_EQ(s->n_ports, 1, "ports"))
		ASSERT_STREQ(s->ports[0].name, "80", "quoted \"80\" stays a string");
	s = find_svc(&o, "123");
	if (ASSERT_TRUE(s != NULL, "quoted name") && ASSERT_EQ(s->n_cluster_ips, 1, "quoted clusterIP"))
		ASSERT_EQ(s->cluster_ips[0], htonl(0x0a600102), "10.96.1.2");
	sl = find_slice(&o, "typed-item");
	if (!ASSERT_TRUE(sl != NULL, "typed list item without kind") || !ASSERT_EQ(sl->n_eps, 2, "endpoints") ||
	    !ASSERT_EQ(sl->n_ports, 1, "ports"))
		goto out;
	ASSERT_TRUE(sl->eps[0].ready && sl->eps[0].serving && !sl->eps[0].terminating, "yes/on/no booleans");
	ASSERT_TRUE(sl->eps[0].node_name == NULL && sl->eps[0].zone == NULL, "~ and null are absent");
	ASSERT_TRUE(!sl->eps[1].ready && sl->eps[1].serving && sl->eps[1].terminating, "False/True/TRUE");
	ASSERT_EQ(sl->ports[0].port, 8080, "0x1f90 is a YAML 1.1 int");
	ASSERT_STREQ(sl->service_name, "in-list", "service-name label");
out:
	kxp_objects_free(&o);
	kxp_diags_free(&d);
}

KXP_TEST(decode_yaml_scalars_and_errors)
{
	static const char anchors[] = "a: &x {n: 1, s: '1', b: y, f: 1.5, o: 010, nul: }\n"
				      "b: *x\n"
				      "c: \"true\"\n"
				      "d: |\n  block\n";
	static const char broken[] = "kind: Service\nmetadata: {name: x\n";
	struct kxp_objects o = { 0 };
	struct kxp_diags d = { 0 };
	cJSON *docs = NULL, *doc, *b;
	char err[256] = "";
	int r;

	r = k8s_yaml_parse(anchors, sizeof(anchors) - 1, &docs, err, sizeof(err));
	if (!ASSERT_OK(r, err))
		return;
	doc = cJSON_GetArrayItem(docs, 0);
	b = cJSON_GetObjectItem(doc, "b");
	ASSERT_TRUE(cJSON_IsNumber(cJSON_GetObjectItem(b, "n")), "alias copies the anchored map; 1 is a number");
	ASSERT_TRUE(cJSON_IsString(cJSON_GetObjectItem(b, "s")), "'1' is a string");
	ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItem(b, "b")), "y is true in YAML 1.1");
	ASSERT_TRUE(cJSON_GetObjectItem(b, "f")->valuedouble == 1.5, "float");
	ASSERT_EQ(cJSON_GetObjectItem(b, "o")->valueint, 8, "010 is octal in YAML 1.1");
	ASSERT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(b, "nul")), "empty value is null");
	ASSERT_TRUE(cJSON_IsString(cJSON_GetObjectItem(doc, "c")), "\"true\" is a string");
	ASSERT_STREQ(cJSON_GetObjectItem(doc, "d")->valuestring, "block\n", "block scalar");
	cJSON_Delete(docs);

	/* a syntax error fails the whole text: a half-read file must not look
	 * like a desired state without those objects */
	r = kxp_objects_load_text(&o, broken, sizeof(broken) - 1, "broken.yaml", &d);
	ASSERT_EQ(r, -EINVAL, "broken YAML");
	if (ASSERT_EQ(d.n, 1, "one diag")) {
		ASSERT_STREQ(d.v[0].kind, "file", "diag names the file");
		ASSERT_STREQ(d.v[0].name, "broken.yaml", "file");
	}
	kxp_diags_free(&d);
	r = kxp_objects_load_text(&o, "{\"kind\": ", 9, "broken.json", &d);
	ASSERT_EQ(r, -EINVAL, "broken JSON");
	ASSERT_EQ(o.n_svcs, 0, "nothing loaded");
	kxp_objects_free(&o);
	kxp_diags_free(&d);
}

/* YAML is decoded one document at a time: a syntax error in a later
 * document must still take back the documents before it (and their diags),
 * and leave what earlier files loaded; endpoints share node names. */
KXP_TEST(decode_yaml_error_after_documents)
{
	static const char one[] = "apiVersion: v1\nkind: Service\nmetadata: {name: kept, namespace: a}\n"
				  "spec: {clusterIP: 10.96.0.9, ports: [{port: 80}]}\n";
	static const char text[] = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: a}\n"
				   "spec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}\n"
				   "---\n"
				   "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\naddressType: IPv4\n"
				   "metadata: {name: web-1, namespace: a, labels: {kubernetes.io/service-name: web}}\n"
				   "ports: [{port: 8080}]\n"
				   "endpoints: [{addresses: [10.1.0.1], nodeName: n1}, {addresses: [10.1.0.2], nodeName: n1},\n"
				   "            {addresses: [10.1.0.3], nodeName: n2}]\n"
				   "---\n"
				   "kind: Service\nmetadata: {name: bad, namespace: a, ports: [1}\n"
				   "---\n"
				   "kind: Nonsense\n";
	struct kxp_objects o = { 0 };
	struct kxp_diags d = { 0 };
	int r;

	r = kxp_objects_load_text(&o, one, sizeof(one) - 1, "one.yaml", &d);
	if (!ASSERT_OK(r, "one.yaml") || !ASSERT_EQ(o.n_svcs, 1, "one Service"))
		goto out;
	/* without the broken document it loads, names shared by endpoints */
	r = kxp_objects_load_text(&o, text, strstr(text, "---\nkind: Service") - text, "good.yaml", &d);
	if (ASSERT_OK(r, "the documents before the broken one") && ASSERT_EQ(o.n_slices, 1, "one slice") &&
	    ASSERT_EQ(o.slices[0].n_eps, 3, "endpoints")) {
		ASSERT_STREQ(o.slices[0].eps[2].node_name, "n2", "node name");
		ASSERT_TRUE(o.slices[0].eps[0].node_name == o.slices[0].eps[1].node_name, "one shared copy of n1");
	}
	kxp_objects_free(&o);
	kxp_diags_free(&d);
	r = kxp_objects_load_text(&o, one, sizeof(one) - 1, "one.yaml", &d);
	ASSERT_OK(r, "one.yaml again");
	r = kxp_objects_load_text(&o, text, sizeof(text) - 1, "broken.yaml", &d);
	ASSERT_EQ(r, -EINVAL, "broken YAML");
	ASSERT_EQ(o.n_svcs, 1, "only the Service of the earlier file");
	if (o.n_svcs)
		ASSERT_STREQ(o.svcs[0].name, "kept", "the earlier file's Service");
	ASSERT_EQ(o.n_slices, 0, "no slice of the broken file");
	if (ASSERT_EQ(d.n, 1, "only the file's diag")) {
		ASSERT_STREQ(d.v[0].kind, "file", "diag names the file");
		ASSERT_STREQ(d.v[0].name, "broken.yaml", "file");
	}
out:
	kxp_objects_free(&o);
	kxp_diags_free(&d);
}

KXP_TEST(decode_directory_sorted)
{
	struct kxp_objects o = { 0 };
	struct kxp_diags d = { 0 };
	int r;

	r = kxp_objects_load_path(&o, fixture("dir"), &d);
	print_diags(&d);
	if (!ASSERT_OK(r, "load dir") || !ASSERT_EQ(d.n, 0, "no diags (README.txt is not read)"))
		goto out;
	if (ASSERT_EQ(o.n_svcs, 2, "services from 10-services.yml")) {
		ASSERT_STREQ(o.svcs[0].name, "web", "document order");
		ASSERT_STREQ(o.svcs[1].name, "web2", "document order");
		ASSERT_STREQ(o.svcs[0].ns, "default", "namespace defaults to default");
	}
	if (ASSERT_EQ(o.n_slices, 2, "two concatenated JSON objects in 20-slices.json"))
		ASSERT_STREQ(o.slices[1].name, "web-2", "second JSON value");
	ASSERT_EQ(o.n_nodes, 1, "JSON array in a .yaml file");
	kxp_objects_free(&o);
	r = kxp_objects_load_path(&o, fixture("does-not-exist"), &d);
	ASSERT_EQ(r, -ENOENT, "missing path is fatal");
out:
	kxp_objects_free(&o);
	kxp_diags_free(&d);
}

KXP_TEST(decode_service_fields)
{
	static const char text[] =
		"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"s\",\"namespace\":\"n\","
		"\"resourceVersion\":\"42\",\"labels\":{\"service.kubernetes.io/headless\":\"\"},"
		"\"annotations\":{\"kxp.io/lb-algorithm\":\"maglev\"}},"
		"\"spec\":{\"type\":\"LoadBalancer\",\"clusterIPs\":[\"10.96.0.1\",\"fd00::1\"],"
		"\"ports\":[{\"port\":53,\"protocol\":\"UDP\",\"nodePort\":30053},{\"port\":54,\"protocol\":\"SCTP\"}],"
		"\"externalTrafficPolicy\":\"Local\",\"internalTrafficPolicy\":\"Local\","
		"\"sessionAffinity\":\"ClientIP\",\"healthCheckNodePort\":30999,"
		"\"loadBalancerSourceRanges\":[\"\\t10.0.0.0/8 \",\"2001:db8::/32\"]},"
		"\"status\":{\"loadBalancer\":{\"ingress\":[{\"ip\":\"192.0.2.1\",\"ipMode\":\"Proxy\"},"
		"{\"hostname\":\"x.example.com\"}]}}}";
	struct kxp_diags d = { 0 };
	struct k8s_service s;
	cJSON *obj = cJSON_Parse(text);
	int r;

	r = k8s_decode_service(obj, &s, &d);
	print_diags(&d);
	if (!ASSERT_OK(r, "decode") || !ASSERT_EQ(d.n, 0, "no diags"))
		goto out;
	ASSERT_EQ(s.resource_version, 42, "resourceVersion");
	ASSERT_TRUE(s.headless_label && !s.headless, "headless label by presence");
	ASSERT_STREQ(s.lb_algorithm, "maglev", "annotation");
	ASSERT_EQ(s.type, K8S_SVC_LOADBALANCER, "type");
	ASSERT_TRUE(s.n_cluster_ips == 1 && s.has_ipv6, "v4 ClusterIP kept, v6 noted");
	if (ASSERT_EQ(s.n_ports, 2, "ports")) {
		ASSERT_STREQ(s.ports[0].name, "", "unnamed port");
		ASSERT_EQ(s.ports[0].proto, IPPROTO_UDP, "UDP");
		ASSERT_EQ(s.ports[0].node_port, 30053, "nodePort");
		ASSERT_EQ(s.ports[1].proto, IPPROTO_SCTP, "SCTP");
		ASSERT_EQ(s.ports[1].node_port, 0, "no nodePort");
	}
	ASSERT_TRUE(s.etp_local && s.itp_local && s.affinity_client_ip, "policies");
	ASSERT_EQ(s.affinity_timeout, 10800, "default timeout");
	ASSERT_EQ(s.health_check_node_port, 30999, "healthCheckNodePort");
	if (ASSERT_EQ(s.n_lb_source_ranges, 2, "ranges"))
		ASSERT_STREQ(s.lb_source_ranges[0], "10.0.0.0/8", "trimmed");
	if (ASSERT_EQ(s.n_lb_ingress, 1, "hostname-only entry dropped"))
		ASSERT_TRUE(s.lb_ingress[0].ip_mode_proxy, "ipMode Proxy");
	k8s_service_free(&s);
out:
	cJSON_Delete(obj);
	kxp_diags_free(&d);
}
