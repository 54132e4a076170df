/* API client configuration: kubeconfig (YAML and JSON, data and file
 * variants, contexts, errors) and the in-cluster service account setup. */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/testlib.h"
#include "k8s/client.h"

static char tmpdir[64];

static bool mk_tmp(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kxp-client-cfg.XXXXXX");
	return ASSERT_TRUE(mkdtemp(tmpdir) != NULL, "mkdtemp");
}

static const char *put(const char *name, const char *text)
{
	static char path[4][256];
	static int i;
	char *p = path[i++ % 4];
	FILE *f;

	snprintf(p, 256, "%s/%s", tmpdir, name);
	f = fopen(p, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	return p;
}

static void rm_tmp(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd)) {
	}
}

/* "-----BEGIN CERTIFICATE-----\nCA\n" and "TOKENKEY" in base64 */
#define CA_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkNBCg=="
#define KEY_B64 "VE9LRU5LRVk="

static const char *yaml_cfg =
	"apiVersion: v1\n"
	"kind: Config\n"
	"current-context: prod\n"
	"clusters:\n"
	"- name: dev-cluster\n"
	"  cluster:\n"
	"    server: https://dev.example:6443\n"
	"    insecure-skip-tls-verify: true\n"
	"- name: prod-cluster\n"
	"  cluster:\n"
	"    server: https://10.0.0.1:6443\n"
	"    certificate-authority-data: " CA_B64 "\n"
	"contexts:\n"
	"- name: dev\n"
	"  context:\n"
	"    cluster: dev-cluster\n"
	"    user: dev-user\n"
	"- name: prod\n"
	"  context:\n"
	"    cluster: prod-cluster\n"
	"    user: admin\n"
	"users:\n"
	"- name: dev-user\n"
	"  user:\n"
	"    token: devtoken-1234\n"
	"- name: admin\n"
	"  user:\n"
	"    client-certificate-data: " CA_B64 "\n"
	"    client-key-data: " KEY_B64 "\n";

KXP_TEST(client_kubeconfig_yaml_data)
{
	struct kxp_k8s_conn c;
	char err[256] = "";
	const char *p;

	if (!mk_tmp())
		return;
	p = put("config", yaml_cfg);
	if (!ASSERT_OK(kxp_k8s_conn_kubeconfig(&c, p, err, sizeof(err)), err))
		goto out;
	ASSERT_STREQ(c.server, "https://10.0.0.1:6443", "server of the current context's cluster");
	ASSERT_STREQ(c.ca_data, "-----BEGIN CERTIFICATE-----\nCA\n", "CA data decoded");
	ASSERT_STREQ(c.cert_data, "-----BEGIN CERTIFICATE-----\nCA\n", "client cert decoded");
	ASSERT_STREQ(c.key_data, "TOKENKEY", "client key decoded");
	ASSERT_TRUE(c.token == NULL && c.token_file == NULL && c.ca_file == NULL, "nothing else");
	ASSERT_TRUE(!c.insecure, "verified");
	kxp_k8s_conn_free(&c);

	/* the other context */
	{
		char *t = strdup(yaml_cfg), *cc = strstr(t, "current-context: prod");

		memcpy(cc, "current-context: dev ", 21);
		p = put("config-dev", t);
		free(t);
	}
	if (!ASSERT_OK(kxp_k8s_conn_kubeconfig(&c, p, err, sizeof(err)), err))
		goto out;
	ASSERT_STREQ(c.server, "https://dev.example:6443", "dev server");
	ASSERT_STREQ(c.token, "devtoken-1234", "dev token");
	ASSERT_TRUE(c.insecure, "insecure-skip-tls-verify");
	kxp_k8s_conn_free(&c);
out:
	rm_tmp();
}

KXP_TEST(client_kubeconfig_json_files)
{
	struct kxp_k8s_conn c;
	char err[256] = "";
	const char *p;

	if (!mk_tmp())
		return;
	p = put("kc.json", "{\"apiVersion\":\"v1\",\"kind\":\"Config\",\"current-context\":\"x\","
			   "\"clusters\":[{\"name\":\"c\",\"cluster\":{\"server\":\"https://[fd00::1]:443/\","
			   "\"certificate-authority\":\"ca.pem\"}}],"
			   "\"contexts\":[{\"name\":\"x\",\"context\":{\"cluster\":\"c\",\"user\":\"u\"}}],"
			   "\"users\":[{\"name\":\"u\",\"user\":{\"tokenFile\":\"/run/tok\","
			   "\"client-certificate\":\"certs/u.crt\",\"client-key\":\"/abs/u.key\"}}]}");
	if (!ASSERT_OK(kxp_k8s_conn_kubeconfig(&c, p, err, sizeof(err)), err))
		goto out;
	ASSERT_STREQ(c.server, "https://[fd00::1]:443/", "server");
	{
		char want[256];

		snprintf(want, sizeof(want), "%s/ca.pem", tmpdir);
		ASSERT_STREQ(c.ca_file, want, "relative CA path resolved against the kubeconfig's directory");
		snprintf(want, sizeof(want), "%s/certs/u.crt", tmpdir);
		ASSERT_STREQ(c.cert_file, want, "client certificate path");
	}
	ASSERT_STREQ(c.key_file, "/abs/u.key", "absolute path kept");
	ASSERT_STREQ(c.token_file, "/run/tok", "tokenFile");
	kxp_k8s_conn_free(&c);
out:
	rm_tmp();
}

KXP_TEST(client_kubeconfig_errors)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "current-context: nope\ncontexts: []\n", "context nope not found" },
		{ "contexts: []\n", "no current-context" },
		{ "current-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\nclusters: []\n",
		  "cluster c (context a) not found" },
		{ "current-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n"
		  "clusters:\n- name: c\n  cluster: {server: https://x}\nusers: []\n",
		  "user u (context a) not found" },
		{ "current-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n"
		  "clusters:\n- name: c\n  cluster: {server: https://x, certificate-authority-data: '@@@'}\n",
		  "certificate-authority-data is not valid base64" },
		{ "current-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n"
		  "clusters:\n- name: c\n  cluster: {server: https://x}\n"
		  "users:\n- name: u\n  user: {exec: {command: aws}}\n",
		  "exec/auth-provider" },
		{ "current-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n"
		  "clusters:\n- name: c\n  cluster: {insecure-skip-tls-verify: true}\n",
		  "cluster c has no server" },
		{ "current-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n"
		  "clusters:\n- name: c\n  cluster: {server: https://x}\n"
		  "users:\n- name: u\n  user: {token: s3cr3t-T0KEN, client-certificate: /a}\n",
		  "client certificate without a key" },
		{ "a: [1, 2\n", "kubeconfig" },
	};
	struct kxp_k8s_conn c;
	char err[256], name[32];
	unsigned i;

	if (!mk_tmp())
		return;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *p;
		int rc;

		snprintf(name, sizeof(name), "bad%u", i);
		p = put(name, cases[i].text);
		err[0] = 0;
		rc = kxp_k8s_conn_kubeconfig(&c, p, err, sizeof(err));
		printf("    %s\n", err);
		if (!ASSERT_TRUE(rc < 0, cases[i].want) || !ASSERT_TRUE(strstr(err, cases[i].want) != NULL, err) ||
		    !ASSERT_TRUE(strstr(err, p) != NULL, "names the file") ||
		    !ASSERT_TRUE(strstr(err, "s3cr3t") == NULL, "no token in the message"))
			break;
		ASSERT_TRUE(c.server == NULL && c.token == NULL, "nothing left allocated");
	}
	err[0] = 0;
	ASSERT_EQ(kxp_k8s_conn_kubeconfig(&c, "/nonexistent/kubeconfig", err, sizeof(err)), -ENOENT, "missing file");
	ASSERT_TRUE(strstr(err, "/nonexistent/kubeconfig") != NULL, err);
	rm_tmp();
}

KXP_TEST(client_in_cluster)
{
	struct kxp_k8s_conn c;
	char err[256] = "", want[256];

	if (!mk_tmp())
		return;
	put("token", "sa-token-value\n");
	put("ca.crt", "-----BEGIN CERTIFICATE-----\n");
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	if (!ASSERT_OK(kxp_k8s_conn_in_cluster(&c, tmpdir, err, sizeof(err)), err))
		goto out;
	ASSERT_STREQ(c.server, "https://10.96.0.1:443", "server");
	snprintf(want, sizeof(want), "%s/token", tmpdir);
	ASSERT_STREQ(c.token_file, want, "token file (re-read per request)");
	snprintf(want, sizeof(want), "%s/ca.crt", tmpdir);
	ASSERT_STREQ(c.ca_file, want, "CA bundle");
	ASSERT_TRUE(!c.insecure, "verified");
	kxp_k8s_conn_free(&c);

	setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
	if (!ASSERT_OK(kxp_k8s_conn_in_cluster(&c, tmpdir, err, sizeof(err)), err))
		goto out;
	ASSERT_STREQ(c.server, "https://[fd00:10:96::1]:443", "IPv6 host in brackets");
	kxp_k8s_conn_free(&c);

	unsetenv("KUBERNETES_SERVICE_HOST");
	ASSERT_TRUE(kxp_k8s_conn_in_cluster(&c, tmpdir, err, sizeof(err)) < 0, "no host");
	ASSERT_TRUE(strstr(err, "KUBERNETES_SERVICE_HOST") != NULL, err);
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "https", 1);
	ASSERT_TRUE(kxp_k8s_conn_in_cluster(&c, tmpdir, err, sizeof(err)) < 0, "bad port");
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	snprintf(want, sizeof(want), "%s/token", tmpdir);
	unlink(want);
	ASSERT_EQ(kxp_k8s_conn_in_cluster(&c, tmpdir, err, sizeof(err)), -ENOENT, "no token file");
	ASSERT_TRUE(strstr(err, want) != NULL, "names the token file");
	ASSERT_TRUE(strstr(err, "sa-token-value") == NULL, "never the token");
out:
	rm_tmp();
}
