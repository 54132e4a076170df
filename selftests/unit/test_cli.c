/* The kxp binary as a user runs it: exit codes, JSON documents, and one sync
 * → list → re-sync → cleanup cycle inside a private network namespace. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <kxp/abi.h>

#include "../lib/testlib.h"

/* Runs $KXP_BUILD/kxp with args; returns the exit status, stdout parsed as JSON in *doc. */
static int kxp_run(const char *args, cJSON **doc)
{
	char cmd[2048], *buf = NULL;
	size_t len = 0, cap = 0;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "%s/kxp %s 2>/dev/null", kxp_test_builddir(), args);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			char *nb = realloc(buf, cap = cap ? cap * 2 : 8192);

			if (!nb)
				break;
			buf = nb;
		}
		size_t n = fread(buf + len, 1, cap - len - 1, p);

		if (!n)
			break;
		len += n;
	}
	st = pclose(p);
	if (doc) {
		*doc = NULL;
		if (buf) {
			buf[len] = 0;
			*doc = cJSON_Parse(buf);
		}
	}
	free(buf);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool have_kxp(void)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/kxp", kxp_test_builddir());
	if (access(path, X_OK)) {
		kxp_test_skip("build/kxp not built");
		return false;
	}
	return true;
}

KXP_TEST(cli_version_json)
{
	cJSON *doc = NULL, *v;

	if (!have_kxp())
		return;
	if (!ASSERT_EQ(kxp_run("version -o json", &doc), 0, "exit") || !ASSERT_TRUE(doc != NULL, "one JSON document"))
		goto out;
	v = cJSON_GetObjectItem(doc, "layout_version");
	ASSERT_TRUE(cJSON_IsNumber(v) && v->valueint == KXP_LAYOUT_VERSION, "layout_version");
	ASSERT_TRUE(cJSON_IsString(cJSON_GetObjectItem(doc, "version")), "version string");
out:
	cJSON_Delete(doc);
}

static void expect_json_error(const char *args, const char *needle)
{
	cJSON *doc = NULL, *e;

	ASSERT_EQ(kxp_run(args, &doc), 1, args);
	e = doc ? cJSON_GetObjectItem(doc, "error") : NULL;
	if (ASSERT_TRUE(cJSON_IsString(e), "{\"error\": ...} on stdout"))
		ASSERT_TRUE(strstr(e->valuestring, needle) != NULL, needle);
	cJSON_Delete(doc);
}

KXP_TEST(cli_errors_are_json_and_exit_1)
{
	if (!have_kxp())
		return;
	expect_json_error("-o json svc list", "--instance");
	expect_json_error("nosuchobject -o json", "nosuchobject");
	expect_json_error("s -o json", "ambiguous");
	expect_json_error("svc list --instance ut-cli-none -o json", "ut-cli-none");
	expect_json_error("sync --instance x --from-file /nonexistent --node-ip 192.0.2.1 -o json", "/nonexistent");
	expect_json_error("sync --instance x --from-file /tmp --cluster-cidr 10.0.0.0/33 -o json", "--cluster-cidr");
	expect_json_error("sync --instance x --from-file /tmp --node-ip 10.1 -o json", "--node-ip");
	expect_json_error("sync --instance x --from-file /tmp --node-ip 192.0.2.1 --pod-dev nosuchdev0 -o json",
			  "nosuchdev0");
	expect_json_error("--netns ut-no-such-ns svc list --instance x -o json", "ut-no-such-ns");
}

static const char manifests[] =
	"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"web\",\"namespace\":\"default\"},"
	"\"spec\":{\"type\":\"ClusterIP\",\"clusterIP\":\"10.96.0.50\",\"clusterIPs\":[\"10.96.0.50\"],"
	"\"ports\":[{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\",\"targetPort\":8080}]}}\n";
static const char slices[] =
	"{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":{\"name\":\"web-abc\","
	"\"namespace\":\"default\",\"labels\":{\"kubernetes.io/service-name\":\"web\"}},\"addressType\":\"IPv4\","
	"\"endpoints\":[{\"addresses\":[\"10.244.0.5\"],\"conditions\":{\"ready\":true,\"serving\":true,"
	"\"terminating\":false},\"nodeName\":\"n1\"}],\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}]}\n";
static const char bad[] =
	"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"broken\",\"namespace\":\"default\"},"
	"\"spec\":{\"type\":\"ClusterIP\",\"clusterIP\":\"10.96.0.51\",\"ports\":[{\"port\":70000,\"protocol\":\"TCP\"}]}}\n";

static bool write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		return false;
	fputs(text, f);
	return fclose(f) == 0;
}

static cJSON *find_frontend(cJSON *arr, const char *fe)
{
	cJSON *o;

	cJSON_ArrayForEach(o, arr)
	{
		cJSON *f = cJSON_GetObjectItem(o, "frontend");

		if (cJSON_IsString(f) && !strcmp(f->valuestring, fe))
			return o;
	}
	return NULL;
}

KXP_TEST(cli_sync_list_cleanup_in_private_netns)
{
	char dir[] = "/tmp/kxp-ut-cli-XXXXXX", inst[64], args[1024], pin[128];
	cJSON *doc = NULL, *o, *b;
	struct stat sb;

	if (!have_kxp())
		return;
	if (geteuid() != 0) {
		kxp_test_skip("needs root");
		return;
	}
	/* this forked test process gets its own network namespace; kxp inherits it */
	if (!ASSERT_OK(unshare(CLONE_NEWNET), "unshare netns"))
		return;
	if (!ASSERT_OK(system("ip link add kut0 type veth peer name kut1 && ip link set kut0 up && "
			      "ip link set kut1 up && ip addr add 192.0.2.10/24 dev kut0"),
		       "veth"))
		return;
	if (!ASSERT_TRUE(mkdtemp(dir) != NULL, "tmpdir"))
		return;
	snprintf(inst, sizeof(inst), "ut-cli-%d", (int)getpid());
	snprintf(pin, sizeof(pin), "/sys/fs/bpf/kxp-%s", inst);
	if (!ASSERT_TRUE(write_file(dir, "a-svc.json", manifests) && write_file(dir, "b-eps.json", slices) &&
				 write_file(dir, "c-bad.json", bad),
			 "manifests"))
		goto out;

	/* one rejected object: exit 2, the rest applied; node IP found over netlink */
	snprintf(args, sizeof(args),
		 "sync --instance %s --from-file %s --node-name n1 --cluster-cidr 10.244.0.0/16 --service-cidr 10.96.0.0/12 "
		 "--pod-dev kut1 -o json",
		 inst, dir);
	ASSERT_EQ(kxp_run(args, &doc), 2, "sync exit (one object rejected)");
	if (!ASSERT_TRUE(doc != NULL, "sync JSON"))
		goto out;
	ASSERT_TRUE(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "rejected")) >= 1, "rejected listed");
	o = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "node_ips"), 0);
	ASSERT_TRUE(cJSON_IsString(o) && !strcmp(o->valuestring, "192.0.2.10"), "node ip from netlink");
	ASSERT_TRUE(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "applied"), "writes")->valueint > 0, "writes");
	cJSON_Delete(doc);
	doc = NULL;

	snprintf(args, sizeof(args), "svc list --instance %s -o json", inst);
	if (!ASSERT_EQ(kxp_run(args, &doc), 0, "svc list") || !ASSERT_TRUE(cJSON_IsArray(doc), "array"))
		goto out;
	o = find_frontend(doc, "10.96.0.50:80/tcp");
	if (ASSERT_TRUE(o != NULL, "web frontend listed")) {
		b = cJSON_GetObjectItem(o, "backends");
		ASSERT_EQ(cJSON_GetArraySize(b), 1, "one backend");
		ASSERT_STREQ(cJSON_GetStringValue(cJSON_GetArrayItem(b, 0)), "10.244.0.5:8080", "backend");
		ASSERT_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(o, "kind")), "clusterip", "kind");
	}
	ASSERT_TRUE(find_frontend(doc, "10.96.0.51:70000/tcp") == NULL, "rejected service absent");
	cJSON_Delete(doc);
	doc = NULL;

	/* same input again: nothing written */
	snprintf(args, sizeof(args),
		 "sync --instance %s --from-file %s --node-name n1 --cluster-cidr 10.244.0.0/16 --service-cidr 10.96.0.0/12 -o json",
		 inst, dir);
	ASSERT_EQ(kxp_run(args, &doc), 2, "re-sync exit");
	if (ASSERT_TRUE(doc != NULL, "re-sync JSON"))
		ASSERT_EQ(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "applied"), "writes")->valueint, 0, "no writes");
	cJSON_Delete(doc);
	doc = NULL;

	snprintf(args, sizeof(args), "backend list --instance %s -o json", inst);
	ASSERT_EQ(kxp_run(args, &doc), 0, "backend list");
	ASSERT_EQ(cJSON_GetArraySize(doc), 1, "one backend entry");
	cJSON_Delete(doc);
	doc = NULL;
	snprintf(args, sizeof(args), "ct list --instance %s -o json", inst);
	ASSERT_EQ(kxp_run(args, &doc), 0, "ct list");
	ASSERT_TRUE(cJSON_IsArray(doc), "ct array");
	cJSON_Delete(doc);
	doc = NULL;
	snprintf(args, sizeof(args), "stats --instance %s -o json", inst);
	ASSERT_EQ(kxp_run(args, &doc), 0, "stats");
	ASSERT_TRUE(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "reasons")) > 10, "reasons listed");
	cJSON_Delete(doc);
	doc = NULL;

	ASSERT_EQ(system("tc filter show dev kut1 ingress | grep -q kxp_tc_ingress"), 0, "tc filter attached");
out:
	cJSON_Delete(doc);
	snprintf(args, sizeof(args), "cleanup --instance %s", inst);
	ASSERT_EQ(kxp_run(args, NULL), 0, "cleanup");
	ASSERT_EQ(kxp_run(args, NULL), 0, "cleanup is idempotent");
	ASSERT_TRUE(stat(pin, &sb) != 0, "pins removed");
	ASSERT_TRUE(system("tc qdisc show dev kut1 | grep -q clsact") != 0, "clsact kxp created is gone");
	snprintf(args, sizeof(args), "rm -rf %s", dir);
	if (system(args))
		perror("rm");
	/* the namespace (and the veth) vanish with this process */
}
