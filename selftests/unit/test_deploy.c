/* The deployment manifests (deploy/ (the YAML files)): each parses with the project's
 * YAML decoder, every object has what its kind requires and the objects
 * agree with each other (names, keys, ports, mounts), and the DaemonSet's
 * command line with the ConfigMap's file passes `kxp agent --validate`. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../lib/testlib.h"
#include "k8s/yaml2json.h"

extern char **environ;

#define MAX_OBJS 32

struct manifests {
	cJSON *docs[16]; /* one array per file */
	char files[16][64];
	size_t n_files;
	const cJSON *obj[MAX_OBJS];
	char origin[MAX_OBJS][64];
	size_t n;
};

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *t = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!f)
		return NULL;
	n = getdelim(&t, &cap, '\0', f);
	fclose(f);
	if (n < 0) {
		free(t);
		return NULL;
	}
	*len = (size_t)n;
	return t;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Every YAML file in deploy/ but kustomization.yaml, parsed; objects collected. */
static bool load_manifests(struct manifests *m)
{
	char dir[4096], path[4200], names[16][64], err[256];
	size_t n_names = 0;
	struct dirent *de;
	DIR *d;

	memset(m, 0, sizeof(*m));
	snprintf(dir, sizeof(dir), "%s/deploy", kxp_test_srcdir());
	d = opendir(dir);
	if (!ASSERT_TRUE(d != NULL, "deploy/ exists"))
		return false;
	while ((de = readdir(d)) && n_names < 16) {
		size_t l = strlen(de->d_name);

		if (l > 5 && !strcmp(de->d_name + l - 5, ".yaml") && strcmp(de->d_name, "kustomization.yaml"))
			snprintf(names[n_names++], 64, "%.63s", de->d_name);
	}
	closedir(d);
	qsort(names, n_names, sizeof(names[0]), cmp_str);
	for (size_t i = 0; i < n_names; i++) {
		size_t len;
		char *text;
		const cJSON *o;
		int r;

		snprintf(path, sizeof(path), "%.4095s/%.63s", dir, names[i]);
		text = slurp(path, &len);
		if (!ASSERT_TRUE(text != NULL, path))
			return false;
		err[0] = 0;
		r = k8s_yaml_parse(text, len, &m->docs[m->n_files], err, sizeof(err));
		free(text);
		if (!ASSERT_OK(r, names[i])) {
			fprintf(stderr, "# %s: %s\n", names[i], err);
			return false;
		}
		snprintf(m->files[m->n_files], 64, "%.63s", names[i]);
		cJSON_ArrayForEach(o, m->docs[m->n_files])
		{
			if (cJSON_IsNull(o))
				continue;
			if (!ASSERT_TRUE(cJSON_IsObject(o) && m->n < MAX_OBJS, "each document is an object"))
				return false;
			snprintf(m->origin[m->n], 64, "%.63s", names[i]);
			m->obj[m->n++] = o;
		}
		m->n_files++;
	}
	return ASSERT_TRUE(m->n_files > 0 && m->n > 0, "manifests found");
}

static void free_manifests(struct manifests *m)
{
	for (size_t i = 0; i < m->n_files; i++)
		cJSON_Delete(m->docs[i]);
}

/* Dotted path ("spec.template.spec") into an object; NULL if absent. */
static const cJSON *at(const cJSON *o, const char *path)
{
	char buf[256], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok && o; tok = strtok_r(NULL, ".", &save))
		o = cJSON_GetObjectItemCaseSensitive(o, tok);
	return o;
}

static const char *str_at(const cJSON *o, const char *path)
{
	const cJSON *v = at(o, path);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A key that may hold dots ("config.yaml", "app.kubernetes.io/name"). */
static const char *str_key(const cJSON *o, const char *k)
{
	const cJSON *v = k ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *find(const struct manifests *m, const char *kind, const char *name)
{
	for (size_t i = 0; i < m->n; i++) {
		const char *k = str_at(m->obj[i], "kind"), *n = str_at(m->obj[i], "metadata.name");

		if (k && !strcmp(k, kind) && (!name || (n && !strcmp(n, name))))
			return m->obj[i];
	}
	return NULL;
}

static bool str_in(const cJSON *arr, const char *s)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, arr) if (cJSON_IsString(e) && !strcmp(e->valuestring, s)) return true;
	return false;
}

static const cJSON *named(const cJSON *arr, const char *name)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, arr)
	{
		const char *n = str_at(e, "name");

		if (n && !strcmp(n, name))
			return e;
	}
	return NULL;
}

/* The port of the ConfigMap file's healthzBindAddress. */
static int healthz_port(const struct manifests *m)
{
	const char *file = str_key(at(find(m, "ConfigMap", "kxp-config"), "data"), "config.yaml");
	cJSON *docs = NULL;
	const char *hp, *colon;
	char err[128];
	int port = -1;

	if (!file || k8s_yaml_parse(file, strlen(file), &docs, err, sizeof(err)))
		return -1;
	hp = str_at(cJSON_GetArrayItem(docs, 0), "healthzBindAddress");
	colon = hp ? strrchr(hp, ':') : NULL;
	if (colon)
		port = atoi(colon + 1);
	cJSON_Delete(docs);
	return port;
}

KXP_TEST(deploy_manifests_parse_and_are_complete)
{
	static const char *const namespaced[] = { "ServiceAccount", "ConfigMap", "DaemonSet" };
	struct manifests m;

	if (!load_manifests(&m))
		goto out;
	for (size_t i = 0; i < m.n; i++) {
		const cJSON *o = m.obj[i];
		const char *kind = str_at(o, "kind"), *api = str_at(o, "apiVersion"), *name = str_at(o, "metadata.name");
		char what[160];

		snprintf(what, sizeof(what), "%s: object %zu has apiVersion, kind, metadata.name", m.origin[i], i);
		if (!ASSERT_TRUE(kind && api && name && *name, what))
			goto out;
		snprintf(what, sizeof(what), "%s %s: apiVersion %s", kind, name, api);
		if (!strcmp(kind, "DaemonSet") && !ASSERT_STREQ(api, "apps/v1", what))
			goto out;
		if ((!strcmp(kind, "ClusterRole") || !strcmp(kind, "ClusterRoleBinding")) &&
		    !ASSERT_STREQ(api, "rbac.authorization.k8s.io/v1", what))
			goto out;
		if ((!strcmp(kind, "ServiceAccount") || !strcmp(kind, "ConfigMap")) && !ASSERT_STREQ(api, "v1", what))
			goto out;
		for (size_t k = 0; k < sizeof(namespaced) / sizeof(namespaced[0]); k++) {
			snprintf(what, sizeof(what), "%s %s is in kube-system", kind, name);
			if (!strcmp(kind, namespaced[k]) && !ASSERT_STREQ(str_at(o, "metadata.namespace"), "kube-system", what))
				goto out;
		}
		if (!strcmp(kind, "ClusterRole")) {
			const cJSON *r, *v;

			if (!ASSERT_TRUE(cJSON_GetArraySize(at(o, "rules")) > 0, "ClusterRole has rules"))
				goto out;
			cJSON_ArrayForEach(r, at(o, "rules"))
			{
				if (!ASSERT_TRUE(cJSON_IsArray(at(r, "apiGroups")) && cJSON_GetArraySize(at(r, "resources")) > 0 &&
							 cJSON_GetArraySize(at(r, "verbs")) > 0,
						 "each rule has apiGroups, resources, verbs"))
					goto out;
				/* read-only: get/list/watch (events would add create/patch) */
				cJSON_ArrayForEach(v, at(r, "verbs"))
				{
					snprintf(what, sizeof(what), "verb %s is get, list or watch",
						 cJSON_IsString(v) ? v->valuestring : "?");
					if (!ASSERT_TRUE(cJSON_IsString(v) && (!strcmp(v->valuestring, "get") ||
									       !strcmp(v->valuestring, "list") ||
									       !strcmp(v->valuestring, "watch")),
							 what))
						goto out;
				}
				if (!ASSERT_TRUE(!str_in(at(r, "resources"), "*") && !str_in(at(r, "apiGroups"), "*"),
						 "no wildcards"))
					goto out;
			}
		}
		if (!strcmp(kind, "ClusterRoleBinding")) {
			const cJSON *s = cJSON_GetArrayItem(at(o, "subjects"), 0);

			if (!ASSERT_STREQ(str_at(o, "roleRef.apiGroup"), "rbac.authorization.k8s.io", "roleRef.apiGroup") ||
			    !ASSERT_STREQ(str_at(o, "roleRef.kind"), "ClusterRole", "roleRef.kind") ||
			    !ASSERT_TRUE(find(&m, "ClusterRole", str_at(o, "roleRef.name")) != NULL,
					 "roleRef names a ClusterRole of the set") ||
			    !ASSERT_TRUE(s && find(&m, "ServiceAccount", str_at(s, "name")) != NULL,
					 "subject is the ServiceAccount of the set") ||
			    !ASSERT_STREQ(str_at(s, "namespace"), "kube-system", "subject namespace"))
				goto out;
		}
		if (!strcmp(kind, "ConfigMap") &&
		    !ASSERT_TRUE(str_key(at(o, "data"), "config.yaml") != NULL, "ConfigMap holds config.yaml"))
			goto out;
	}
	if (!ASSERT_TRUE(find(&m, "DaemonSet", NULL) && find(&m, "ServiceAccount", NULL) && find(&m, "ClusterRole", NULL) &&
				 find(&m, "ClusterRoleBinding", NULL) && find(&m, "ConfigMap", NULL),
			 "one object of each kind"))
		goto out;
out:
	free_manifests(&m);
}

KXP_TEST(deploy_kustomization_lists_every_manifest)
{
	char path[4096], err[256];
	struct manifests m;
	cJSON *docs = NULL;
	const cJSON *res;
	size_t len;
	char *text;

	if (!load_manifests(&m))
		goto out;
	snprintf(path, sizeof(path), "%s/deploy/kustomization.yaml", kxp_test_srcdir());
	text = slurp(path, &len);
	if (!ASSERT_TRUE(text != NULL, "deploy/kustomization.yaml"))
		goto out;
	if (!ASSERT_OK(k8s_yaml_parse(text, len, &docs, err, sizeof(err)), "kustomization parses")) {
		free(text);
		goto out;
	}
	free(text);
	ASSERT_STREQ(str_at(cJSON_GetArrayItem(docs, 0), "kind"), "Kustomization", "kind");
	res = at(cJSON_GetArrayItem(docs, 0), "resources");
	if (!ASSERT_EQ(cJSON_GetArraySize(res), (int)m.n_files, "resources: one per manifest file"))
		goto out;
	for (size_t i = 0; i < m.n_files; i++)
		if (!ASSERT_TRUE(str_in(res, m.files[i]), m.files[i]))
			goto out;
out:
	cJSON_Delete(docs);
	free_manifests(&m);
}

static bool has_mount(const cJSON *c, const char *path, const char *prop)
{
	const cJSON *vm;

	cJSON_ArrayForEach(vm, at(c, "volumeMounts"))
	{
		const char *p = str_at(vm, "mountPath"), *mp = str_at(vm, "mountPropagation");

		if (p && !strcmp(p, path) && (!prop || (mp && !strcmp(mp, prop))))
			return true;
	}
	return false;
}

KXP_TEST(deploy_daemonset_replaces_kube_proxy)
{
	const cJSON *ds, *pod, *c, *init, *vm, *t, *e, *caps, *vol;
	const char *k, *v;
	struct manifests m;
	bool tolerates_all = false;
	int hz;

	if (!load_manifests(&m))
		goto out;
	ds = find(&m, "DaemonSet", NULL);
	pod = at(ds, "spec.template.spec");
	c = named(at(pod, "containers"), "agent");
	init = cJSON_GetArrayItem(at(pod, "initContainers"), 0);
	if (!ASSERT_TRUE(ds && pod && c && init, "DaemonSet with an agent container and an init container"))
		goto out;
	/* selector matches the template */
	cJSON_ArrayForEach(e, at(ds, "spec.selector.matchLabels"))
	{
		v = str_key(at(ds, "spec.template.metadata.labels"), e->string);
		if (!ASSERT_TRUE(v && cJSON_IsString(e) && !strcmp(v, e->valuestring), "selector matches the template labels"))
			goto out;
	}
	if (!ASSERT_TRUE(cJSON_GetArraySize(at(ds, "spec.selector.matchLabels")) > 0, "selector not empty"))
		goto out;
	cJSON_ArrayForEach(e, at(pod, "containers"))
	{
		if (!ASSERT_TRUE(str_at(e, "name") && str_at(e, "image"), "every container has name and image"))
			goto out;
	}
	if (!ASSERT_TRUE(cJSON_IsTrue(at(pod, "hostNetwork")), "hostNetwork") ||
	    !ASSERT_STREQ(str_at(pod, "priorityClassName"), "system-node-critical", "priorityClassName") ||
	    !ASSERT_TRUE(find(&m, "ServiceAccount", str_at(pod, "serviceAccountName")) != NULL,
			 "serviceAccountName is the set's ServiceAccount") ||
	    !ASSERT_STREQ(str_at(ds, "spec.updateStrategy.type"), "RollingUpdate", "updateStrategy") ||
	    !ASSERT_EQ(at(ds, "spec.updateStrategy.rollingUpdate.maxUnavailable") ?
			       at(ds, "spec.updateStrategy.rollingUpdate.maxUnavailable")->valueint : -1,
		       1, "one node at a time"))
		goto out;
	cJSON_ArrayForEach(t, at(pod, "tolerations")) if (!at(t, "key") && (k = str_at(t, "operator")) &&
							 !strcmp(k, "Exists") && !at(t, "effect")) tolerates_all = true;
	if (!ASSERT_TRUE(tolerates_all, "tolerates every taint (operator Exists, no key, no effect)"))
		goto out;
	/* every mount names a volume of the pod */
	for (int pass = 0; pass < 2; pass++) {
		cJSON_ArrayForEach(vm, at(pass ? init : c, "volumeMounts"))
		{
			if (!ASSERT_TRUE(named(at(pod, "volumes"), str_at(vm, "name")) != NULL, "volumeMount names a volume"))
				goto out;
		}
	}
	/* privilege: only the init container; the agent gets capabilities */
	if (!ASSERT_TRUE(cJSON_IsTrue(at(init, "securityContext.privileged")), "init container privileged") ||
	    !ASSERT_TRUE(has_mount(init, "/sys/fs/bpf", "Bidirectional"), "init: bpffs Bidirectional") ||
	    !ASSERT_TRUE(!cJSON_IsTrue(at(c, "securityContext.privileged")), "agent not privileged") ||
	    !ASSERT_TRUE(has_mount(c, "/sys/fs/bpf", "HostToContainer"), "agent: bpffs HostToContainer") ||
	    !ASSERT_TRUE(has_mount(c, "/sys/fs/cgroup", NULL), "agent: the cgroup tree") ||
	    !ASSERT_TRUE(has_mount(c, "/run/kxp", NULL), "agent: /run/kxp (attachment records)"))
		goto out;
	caps = at(c, "securityContext.capabilities.add");
	if (!ASSERT_TRUE(str_in(caps, "BPF") && str_in(caps, "NET_ADMIN") && str_in(caps, "SYS_ADMIN") &&
				 str_in(caps, "PERFMON"),
			 "agent capabilities BPF, NET_ADMIN, SYS_ADMIN, PERFMON") ||
	    !ASSERT_TRUE(str_in(at(c, "securityContext.capabilities.drop"), "ALL"), "agent drops the rest"))
		goto out;
	/* probes on the port the ConfigMap's healthzBindAddress opens */
	hz = healthz_port(&m);
	if (!ASSERT_TRUE(hz > 0, "ConfigMap healthzBindAddress has a port") ||
	    !ASSERT_STREQ(str_at(c, "livenessProbe.httpGet.path"), "/livez", "liveness path") ||
	    !ASSERT_STREQ(str_at(c, "readinessProbe.httpGet.path"), "/healthz", "readiness path") ||
	    !ASSERT_EQ(at(c, "livenessProbe.httpGet.port") ? at(c, "livenessProbe.httpGet.port")->valueint : -1, hz,
		       "liveness port = healthzBindAddress port") ||
	    !ASSERT_EQ(at(c, "readinessProbe.httpGet.port") ? at(c, "readinessProbe.httpGet.port")->valueint : -1, hz,
		       "readiness port = healthzBindAddress port"))
		goto out;
	/* env from the ConfigMap: the keys exist */
	cJSON_ArrayForEach(e, at(c, "env"))
	{
		const cJSON *ref = at(e, "valueFrom.configMapKeyRef");
		const cJSON *cm;

		if (!ref)
			continue;
		cm = find(&m, "ConfigMap", str_at(ref, "name"));
		if (!ASSERT_TRUE(cm && str_key(at(cm, "data"), str_at(ref, "key")), "configMapKeyRef names a key of the set's ConfigMap"))
			goto out;
	}
	/* the service-account volume: the standard path with token and ca.crt */
	vol = NULL;
	cJSON_ArrayForEach(vm, at(c, "volumeMounts"))
	{
		k = str_at(vm, "mountPath");
		if (k && !strcmp(k, "/var/run/secrets/kubernetes.io/serviceaccount"))
			vol = named(at(pod, "volumes"), str_at(vm, "name"));
	}
	if (!ASSERT_TRUE(vol && at(vol, "projected.sources"), "projected service-account volume at the standard path"))
		goto out;
	{
		bool token = false, ca = false;

		cJSON_ArrayForEach(e, at(vol, "projected.sources"))
		{
			if ((k = str_at(e, "serviceAccountToken.path")) && !strcmp(k, "token"))
				token = true;
			cJSON_ArrayForEach(t, at(e, "configMap.items")) if ((k = str_at(t, "path")) && !strcmp(k, "ca.crt")) ca =
				true;
		}
		ASSERT_TRUE(token && ca, "projected volume has token and ca.crt");
	}
out:
	free_manifests(&m);
}

/* Run argv with extra environment; returns the exit status, stdout in *out. */
static int run(char *const argv[], char *const extra_env[], char **out)
{
	char tmpl[] = "/tmp/kxp-deploy-out.XXXXXX", *envp[256];
	posix_spawn_file_actions_t fa;
	size_t n = 0, len;
	int fd, st = -1;
	pid_t pid;

	for (char **e = environ; *e && n < 200; e++)
		envp[n++] = *e;
	for (size_t i = 0; extra_env[i] && n < 255; i++)
		envp[n++] = extra_env[i];
	envp[n] = NULL;
	fd = mkstemp(tmpl);
	if (fd < 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fd, 1);
	if (posix_spawn(&pid, argv[0], &fa, NULL, argv, envp) == 0)
		waitpid(pid, &st, 0);
	posix_spawn_file_actions_destroy(&fa);
	close(fd);
	*out = slurp(tmpl, &len);
	unlink(tmpl);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

KXP_TEST(deploy_agent_command_and_config_validate)
{
	char dir[] = "/tmp/kxp-deploy.XXXXXX", cfg[64] = "", kxp[4096], *argv[64], *env[8], envbuf[8][512], *out = NULL;
	const cJSON *ds, *c, *e, *cm;
	struct manifests m;
	cJSON *doc = NULL;
	size_t argc = 0, n_env = 0;
	const char *file, *mount = NULL;
	FILE *f;
	int st;

	if (!load_manifests(&m))
		goto out;
	if (!ASSERT_TRUE(mkdtemp(dir) != NULL, "temp dir"))
		goto out;
	ds = find(&m, "DaemonSet", NULL);
	c = named(at(ds, "spec.template.spec.containers"), "agent");
	cm = find(&m, "ConfigMap", "kxp-config");
	file = str_key(at(cm, "data"), "config.yaml");
	if (!ASSERT_TRUE(c && file, "agent container and ConfigMap file"))
		goto out;
	/* where the container sees the ConfigMap */
	cJSON_ArrayForEach(e, at(c, "volumeMounts"))
	{
		const cJSON *vol = named(at(ds, "spec.template.spec.volumes"), str_at(e, "name"));
		const char *ref = str_at(vol, "configMap.name");

		if (ref && !strcmp(ref, "kxp-config"))
			mount = str_at(e, "mountPath");
	}
	if (!ASSERT_TRUE(mount != NULL, "ConfigMap is mounted"))
		goto out;
	snprintf(cfg, sizeof(cfg), "%s/config.yaml", dir);
	f = fopen(cfg, "w");
	if (!ASSERT_TRUE(f != NULL, "write config"))
		goto out;
	fputs(file, f);
	fclose(f);

	/* the environment as the kubelet makes it: fieldRefs and ConfigMap keys */
	cJSON_ArrayForEach(e, at(c, "env"))
	{
		const char *name = str_at(e, "name"), *val = str_at(e, "value");
		const cJSON *ref = at(e, "valueFrom.configMapKeyRef");

		if (at(e, "valueFrom.fieldRef"))
			val = "node-a";
		else if (ref)
			val = str_key(at(cm, "data"), str_at(ref, "key"));
		if (!ASSERT_TRUE(name && val && n_env < 7, "env entry resolves"))
			goto out;
		snprintf(envbuf[n_env], sizeof(envbuf[0]), "%s=%s", name, val);
		env[n_env] = envbuf[n_env];
		n_env++;
	}
	env[n_env] = NULL;

	/* the command line, $(VAR) expanded as the kubelet does, the binary
	 * and the ConfigMap's mount path mapped to this test's */
	snprintf(kxp, sizeof(kxp), "%s/kxp", kxp_test_builddir());
	argv[argc++] = kxp;
	cJSON_ArrayForEach(e, at(c, "command"))
	{
		const char *a = cJSON_IsString(e) ? e->valuestring : "";
		char *s;

		if (e == at(c, "command")->child)
			continue; /* the binary */
		if (!strncmp(a, mount, strlen(mount)) && a[strlen(mount)] == '/')
			s = strdup(cfg);
		else if (a[0] == '$' && a[1] == '(') {
			s = NULL;
			for (size_t i = 0; i < n_env; i++)
				if (!strncmp(env[i], a + 2, strlen(a + 2) - 1) && env[i][strlen(a + 2) - 1] == '=')
					s = strdup(env[i] + strlen(a + 2));
			if (!ASSERT_TRUE(s != NULL, "$(VAR) in the command is defined in env"))
				goto out;
		} else
			s = strdup(a);
		if (argc < 60)
			argv[argc++] = s;
	}
	argv[argc++] = "--validate";
	argv[argc++] = "-o";
	argv[argc++] = "json";
	argv[argc] = NULL;
	if (!ASSERT_STREQ(argv[1], "agent", "the container runs kxp agent"))
		goto out;
	st = run(argv, env, &out);
	doc = out ? cJSON_Parse(out) : NULL;
	if (!ASSERT_EQ(st, 0, "kxp agent --validate exit status") ||
	    !ASSERT_TRUE(cJSON_IsTrue(at(doc, "valid")), "valid")) {
		fprintf(stderr, "# %s\n", out ? out : "(no output)");
		goto out;
	}
	/* a typo in the ConfigMap would be an "unknown field" warning */
	cJSON_ArrayForEach(e, at(doc, "warnings"))
	{
		if (!ASSERT_TRUE(!strstr(e->valuestring, "unknown field"), e->valuestring))
			goto out;
	}
	ASSERT_STREQ(str_at(doc, "node_name"), "node-a", "node name from the downward API");
	ASSERT_EQ(at(doc, "cluster_cidrs") ? at(doc, "cluster_cidrs")->valueint : -1, 1, "clusterCIDR read");
	ASSERT_EQ(at(doc, "service_cidrs") ? at(doc, "service_cidrs")->valueint : -1, 1, "kxp.serviceCIDRs read");
out:
	for (size_t i = 1; i + 3 < argc; i++)
		free(argv[i]);
	cJSON_Delete(doc);
	free(out);
	unlink(cfg);
	rmdir(dir);
	free_manifests(&m);
}
