/* Manifest loading: files and directories of JSON or YAML, each document
 * handed to the one decoder in decode.c. */
#include "k8s/objects.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "k8s/decode.h"
#include "k8s/yaml2json.h"

#define MAX_FILE_SIZE (256u << 20) /* manifests larger than this are refused */

static size_t line_of(const char *text, const char *at)
{
	size_t line = 1;

	for (; text < at; text++)
		line += *text == '\n';
	return line;
}

/* JSON text: one or more concatenated values (a JSONL file works too). */
static int load_json(struct kxp_objects *objs, const char *text, size_t len, const char *origin,
		     struct kxp_diags *d)
{
	const char *p = text, *end = text + len;
	int r;

	for (;;) {
		const char *stop = NULL;
		cJSON *root;

		while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
			p++;
		if (p >= end || !*p)
			return 0;
		root = cJSON_ParseWithLengthOpts(p, (size_t)(end - p), &stop, false);
		if (!root) {
			/* a broken file must not read as "these objects were deleted" */
			kxp_diags_add(d, "file", NULL, origin, "", "invalid JSON at line %zu",
				      line_of(text, cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() : p));
			return -EINVAL;
		}
		r = k8s_objects_add_json(objs, root, origin, d);
		cJSON_Delete(root);
		if (r)
			return r;
		p = stop;
	}
}

/* YAML is decoded one document at a time and each document's tree freed
 * before the next is parsed: the trees of a whole file (20,000 objects:
 * millions of small blocks) no longer exist at once, and no longer leave
 * that many free blocks for the next large allocation to sort (~90 ms,
 * paid by the model's first allocation at 10,000 Services). */
struct yaml_load {
	struct kxp_objects *objs;
	struct kxp_diags *diags;
	const char *origin;
	size_t n_svcs, n_slices, n_nodes, n_diags; /* before the file */
};

static int yaml_doc(cJSON *doc, size_t i, void *arg)
{
	struct yaml_load *l = arg;
	int r = k8s_objects_add_doc(l->objs, doc, i, l->origin, l->diags);

	cJSON_Delete(doc);
	return r;
}

/* Take back what the documents of a file added (objects and diags). */
static void yaml_unload(struct yaml_load *l)
{
	struct kxp_objects *o = l->objs;

	while (o->n_svcs > l->n_svcs)
		k8s_service_free(&o->svcs[--o->n_svcs]);
	while (o->n_slices > l->n_slices)
		k8s_endpointslice_free(&o->slices[--o->n_slices]);
	while (o->n_nodes > l->n_nodes)
		k8s_node_free(&o->nodes[--o->n_nodes]);
	if (l->diags->n > l->n_diags)
		l->diags->n = l->n_diags;
}

int kxp_objects_load_text(struct kxp_objects *objs, const char *text, size_t len, const char *origin,
			  struct kxp_diags *diags)
{
	char err[256] = "";
	size_t i = 0;
	int r;

	if (!origin)
		origin = "";
	while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
		i++;
	if (i < len && (text[i] == '{' || text[i] == '['))
		return load_json(objs, text, len, origin, diags);
	{
		struct yaml_load l = { objs, diags, origin, objs->n_svcs, objs->n_slices, objs->n_nodes, diags->n };

		r = k8s_yaml_parse_each(text, len, yaml_doc, &l, err, sizeof(err));
		if (r == -EINVAL) {
			/* a file with a syntax error adds nothing, as before any
			 * document of it was decoded */
			yaml_unload(&l);
			kxp_diags_add(diags, "file", NULL, origin, "", "invalid YAML: %s", err);
		}
	}
	return r;
}

static int read_file(const char *path, char **buf, size_t *len)
{
	struct stat st;
	ssize_t n;
	size_t off = 0;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		r = -errno;
		goto out;
	}
	if ((size_t)st.st_size > MAX_FILE_SIZE) {
		r = -EFBIG;
		goto out;
	}
	*buf = malloc((size_t)st.st_size + 1);
	if (!*buf) {
		r = -ENOMEM;
		goto out;
	}
	while (off < (size_t)st.st_size && (n = read(fd, *buf + off, (size_t)st.st_size - off)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			free(*buf);
			*buf = NULL;
			goto out;
		}
		off += (size_t)n;
	}
	(*buf)[off] = 0;
	*len = off;
out:
	close(fd);
	return r;
}

static int load_file(struct kxp_objects *objs, const char *path, struct kxp_diags *d)
{
	char *buf = NULL;
	size_t len = 0;
	int r;

	r = read_file(path, &buf, &len);
	if (r) {
		kxp_diags_add(d, "file", NULL, path, "", "cannot read: %s", strerror(-r));
		return r;
	}
	r = kxp_objects_load_text(objs, buf, len, path, d);
	free(buf);
	return r;
}

static int manifest_name(const struct dirent *e)
{
	const char *dot = strrchr(e->d_name, '.');

	if (e->d_name[0] == '.' || !dot)
		return 0;
	return strcmp(dot, ".json") == 0 || strcmp(dot, ".yaml") == 0 || strcmp(dot, ".yml") == 0;
}

int kxp_objects_load_path(struct kxp_objects *objs, const char *path, struct kxp_diags *diags)
{
	struct dirent **ents;
	struct stat st;
	int n, i, r = 0;

	if (stat(path, &st)) {
		r = -errno;
		kxp_diags_add(diags, "file", NULL, path, "", "cannot read: %s", strerror(errno));
		return r;
	}
	if (!S_ISDIR(st.st_mode))
		return load_file(objs, path, diags);
	n = scandir(path, &ents, manifest_name, alphasort);
	if (n < 0) {
		r = -errno;
		kxp_diags_add(diags, "file", NULL, path, "", "cannot read: %s", strerror(errno));
		return r;
	}
	for (i = 0; i < n; i++) {
		char *file;

		if (!r) {
			if (asprintf(&file, "%s/%s", path, ents[i]->d_name) < 0) {
				r = -ENOMEM;
			} else {
				/* only regular files (and links to them) are manifests */
				if (stat(file, &st) == 0 && S_ISREG(st.st_mode))
					r = load_file(objs, file, diags);
				free(file);
			}
		}
		free(ents[i]);
	}
	free(ents);
	return r;
}

const struct k8s_node *kxp_objects_find_node(const struct kxp_objects *objs, const char *name)
{
	size_t i;

	if (!name)
		return NULL;
	for (i = 0; i < objs->n_nodes; i++)
		if (strcmp(objs->nodes[i].name, name) == 0)
			return &objs->nodes[i];
	return NULL;
}

void kxp_objects_free(struct kxp_objects *objs)
{
	size_t i;

	if (!objs)
		return;
	for (i = 0; i < objs->n_svcs; i++)
		k8s_service_free(&objs->svcs[i]);
	free(objs->svcs);
	for (i = 0; i < objs->n_slices; i++)
		k8s_endpointslice_free(&objs->slices[i]);
	free(objs->slices);
	for (i = 0; i < objs->n_nodes; i++)
		k8s_node_free(&objs->nodes[i]);
	free(objs->nodes);
	memset(objs, 0, sizeof(*objs));
}
