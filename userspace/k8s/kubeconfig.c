/* Connection settings for the API client: from the in-cluster service
 * account environment or from a kubeconfig file (YAML or JSON). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "k8s/client.h"
#include "k8s/yaml2json.h"

#define SA_DIR_DEFAULT "/var/run/secrets/kubernetes.io/serviceaccount"
#define KUBECONFIG_MAX (16u << 20)

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

void kxp_k8s_conn_free(struct kxp_k8s_conn *c)
{
	if (!c)
		return;
	free(c->server);
	free(c->ca_file);
	free(c->ca_data);
	if (c->token) /* do not leave the secret in freed heap memory */
		explicit_bzero(c->token, strlen(c->token));
	free(c->token);
	free(c->token_file);
	free(c->cert_file);
	free(c->key_file);
	free(c->cert_data);
	if (c->key_data)
		explicit_bzero(c->key_data, strlen(c->key_data));
	free(c->key_data);
	memset(c, 0, sizeof(*c));
}

/* Read a whole (small) file, NUL-terminated. Returns 0 or -errno. */
static int read_file(const char *path, char **out, size_t *lenp)
{
	size_t cap = 4096, len = 0;
	char *buf = NULL, *nb;
	ssize_t r;
	int fd;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		if (!buf || len + 1 >= cap) {
			if (buf)
				cap *= 2;
			if (cap > KUBECONFIG_MAX) {
				free(buf);
				close(fd);
				return -EFBIG;
			}
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				close(fd);
				return -ENOMEM;
			}
			buf = nb;
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			free(buf);
			close(fd);
			return (int)r;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = 0;
	*out = buf;
	if (lenp)
		*lenp = len;
	return 0;
}

/* Standard base64 (kubeconfig *-data fields); whitespace is ignored, as
 * `kubectl config view --raw` output may be wrapped. Returns a NUL-terminated
 * buffer or NULL (-EINVAL in *rc for bad input). */
static char *b64_decode(const char *in, int *rc)
{
	size_t n = strlen(in), o = 0;
	unsigned acc = 0, bits = 0, pad = 0;
	char *out = malloc(n / 4 * 3 + 4);
	const char *p;

	*rc = -ENOMEM;
	if (!out)
		return NULL;
	for (p = in; *p; p++) {
		int v;
		char ch = *p;

		if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')
			continue;
		if (ch == '=') {
			pad++;
			continue;
		}
		if (pad)
			goto bad; /* data after padding */
		if (ch >= 'A' && ch <= 'Z')
			v = ch - 'A';
		else if (ch >= 'a' && ch <= 'z')
			v = ch - 'a' + 26;
		else if (ch >= '0' && ch <= '9')
			v = ch - '0' + 52;
		else if (ch == '+' || ch == '-')
			v = 62;
		else if (ch == '/' || ch == '_')
			v = 63;
		else
			goto bad;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	if (bits >= 6 || pad > 2)
		goto bad;
	out[o] = 0;
	*rc = 0;
	return out;
bad:
	free(out);
	*rc = -EINVAL;
	return NULL;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int kxp_k8s_conn_in_cluster(struct kxp_k8s_conn *c, const char *sa_dir, char *err, size_t errlen)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	char path[4096];
	int n;

	memset(c, 0, sizeof(*c));
	if (!sa_dir)
		sa_dir = SA_DIR_DEFAULT;
	if (!host || !*host)
		return fail(err, errlen, -ENOENT, "in-cluster: KUBERNETES_SERVICE_HOST is not set (not running in a pod?)");
	if (!port || !*port)
		return fail(err, errlen, -ENOENT, "in-cluster: KUBERNETES_SERVICE_PORT is not set");
	if (strspn(port, "0123456789") != strlen(port) || atoi(port) < 1 || atoi(port) > 65535)
		return fail(err, errlen, -EINVAL, "in-cluster: KUBERNETES_SERVICE_PORT \"%s\" is not a port", port);
	/* An IPv6 service address goes in brackets in a URL. */
	if (asprintf(&c->server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port) < 0) {
		c->server = NULL;
		return -ENOMEM;
	}
	n = snprintf(path, sizeof(path), "%s/token", sa_dir);
	if (n < 0 || (size_t)n >= sizeof(path) || access(path, R_OK)) {
		n = -errno;
		kxp_k8s_conn_free(c);
		return fail(err, errlen, n ? n : -ENAMETOOLONG, "in-cluster: service account token %s: %s", path,
			    strerror(-n));
	}
	c->token_file = strdup(path);
	snprintf(path, sizeof(path), "%s/ca.crt", sa_dir);
	if (access(path, R_OK)) {
		n = -errno;
		kxp_k8s_conn_free(c);
		return fail(err, errlen, n, "in-cluster: CA bundle %s: %s", path, strerror(-n));
	}
	c->ca_file = strdup(path);
	if (!c->token_file || !c->ca_file) {
		kxp_k8s_conn_free(c);
		return -ENOMEM;
	}
	return 0;
}

/* Find the entry named `name` in a kubeconfig list (clusters, users,
 * contexts) and return its `field` object. */
static const cJSON *named(const cJSON *root, const char *list, const char *name, const char *field)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, list), *e;

	cJSON_ArrayForEach(e, arr) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "name");

		if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0) {
			const cJSON *f = cJSON_GetObjectItemCaseSensitive(e, field);

			return cJSON_IsObject(f) ? f : NULL;
		}
	}
	return NULL;
}

static const char *str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

/* kubectl resolves relative file references against the kubeconfig's directory. */
static char *resolve(const char *dir, const char *p)
{
	char *out;

	if (!p)
		return NULL;
	if (p[0] == '/')
		return strdup(p);
	if (asprintf(&out, "%s/%s", dir, p) < 0)
		return NULL;
	return out;
}

/* Decode a *-data field into *dst. Returns 0 or -errno with err set. */
static int data_field(const char *path, const char *what, const char *v, char **dst, char *err, size_t errlen)
{
	int rc;

	if (!v)
		return 0;
	*dst = b64_decode(v, &rc);
	if (rc == -EINVAL)
		return fail(err, errlen, rc, "kubeconfig %s: %s is not valid base64", path, what);
	return rc;
}

int kxp_k8s_conn_kubeconfig(struct kxp_k8s_conn *c, const char *path, char *err, size_t errlen)
{
	const cJSON *ctx, *cluster, *user, *v, *doc;
	const char *ctxname, *cname, *uname;
	cJSON *root = NULL, *docs = NULL;
	char *text = NULL, *dir = NULL, *tmp;
	char perr[256];
	size_t len = 0;
	int rc;

	memset(c, 0, sizeof(*c));
	rc = read_file(path, &text, &len);
	if (rc)
		return fail(err, errlen, rc, "kubeconfig %s: %s", path, strerror(-rc));
	/* JSON is tried first: a kubeconfig written by tools is often JSON and
	 * cJSON reads it exactly; anything else goes through the YAML reader. */
	root = cJSON_ParseWithLength(text, len);
	if (!root) {
		rc = k8s_yaml_parse(text, len, &docs, perr, sizeof(perr));
		if (rc) {
			rc = fail(err, errlen, rc, "kubeconfig %s: %s", path, rc == -EINVAL ? perr : strerror(-rc));
			goto out;
		}
		doc = cJSON_GetArrayItem(docs, 0);
		if (!cJSON_IsObject(doc)) {
			rc = fail(err, errlen, -EINVAL, "kubeconfig %s: not a mapping", path);
			goto out;
		}
	} else {
		doc = root;
		if (!cJSON_IsObject(doc)) {
			rc = fail(err, errlen, -EINVAL, "kubeconfig %s: not an object", path);
			goto out;
		}
	}
	tmp = strdup(path);
	dir = tmp ? strdup(dirname(tmp)) : NULL;
	free(tmp);
	if (!dir) {
		rc = -ENOMEM;
		goto out;
	}

	ctxname = str(doc, "current-context");
	if (!ctxname) {
		rc = fail(err, errlen, -EINVAL, "kubeconfig %s: no current-context", path);
		goto out;
	}
	ctx = named(doc, "contexts", ctxname, "context");
	if (!ctx) {
		rc = fail(err, errlen, -ENOENT, "kubeconfig %s: context %s not found", path, ctxname);
		goto out;
	}
	cname = str(ctx, "cluster");
	uname = str(ctx, "user");
	if (!cname) {
		rc = fail(err, errlen, -EINVAL, "kubeconfig %s: context %s names no cluster", path, ctxname);
		goto out;
	}
	cluster = named(doc, "clusters", cname, "cluster");
	if (!cluster) {
		rc = fail(err, errlen, -ENOENT, "kubeconfig %s: cluster %s (context %s) not found", path, cname,
			  ctxname);
		goto out;
	}
	if (!str(cluster, "server")) {
		rc = fail(err, errlen, -EINVAL, "kubeconfig %s: cluster %s has no server", path, cname);
		goto out;
	}
	c->server = strdup(str(cluster, "server"));
	c->ca_file = resolve(dir, str(cluster, "certificate-authority"));
	rc = data_field(path, "certificate-authority-data", str(cluster, "certificate-authority-data"), &c->ca_data,
			err, errlen);
	if (rc)
		goto out;
	v = cJSON_GetObjectItemCaseSensitive(cluster, "insecure-skip-tls-verify");
	c->insecure = cJSON_IsTrue(v) || (cJSON_IsString(v) && strcmp(v->valuestring, "true") == 0);

	if (uname) {
		user = named(doc, "users", uname, "user");
		if (!user) {
			rc = fail(err, errlen, -ENOENT, "kubeconfig %s: user %s (context %s) not found", path, uname,
				  ctxname);
			goto out;
		}
		if (cJSON_GetObjectItemCaseSensitive(user, "exec") || cJSON_GetObjectItemCaseSensitive(user, "auth-provider")) {
			if (!str(user, "token") && !str(user, "tokenFile") && !str(user, "client-certificate") &&
			    !str(user, "client-certificate-data")) {
				rc = fail(err, errlen, -EOPNOTSUPP,
					  "kubeconfig %s: user %s uses exec/auth-provider credentials, which kxp does not run",
					  path, uname);
				goto out;
			}
		}
		c->token = dup_or_null(str(user, "token"));
		c->token_file = resolve(dir, str(user, "tokenFile"));
		c->cert_file = resolve(dir, str(user, "client-certificate"));
		c->key_file = resolve(dir, str(user, "client-key"));
		rc = data_field(path, "client-certificate-data", str(user, "client-certificate-data"), &c->cert_data,
				err, errlen);
		if (!rc)
			rc = data_field(path, "client-key-data", str(user, "client-key-data"), &c->key_data, err,
					errlen);
		if (rc)
			goto out;
		if ((c->cert_file || c->cert_data) != (c->key_file || c->key_data)) {
			rc = fail(err, errlen, -EINVAL, "kubeconfig %s: user %s has a client certificate without a key or the reverse",
				  path, uname);
			goto out;
		}
	}
	if (!c->server) {
		rc = -ENOMEM;
		goto out;
	}
	rc = 0;
out:
	if (rc)
		kxp_k8s_conn_free(c);
	if (text) {
		explicit_bzero(text, len); /* it may hold a token or a key */
		free(text);
	}
	cJSON_Delete(root);
	cJSON_Delete(docs);
	free(dir);
	return rc;
}
