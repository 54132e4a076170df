/* YAML event stream (libyaml) to a cJSON tree. Scalars are resolved the way
 * sigs.k8s.io/yaml (go-yaml v2, YAML 1.1) does, so a manifest decodes to the
 * same JSON kubectl would send. */
#include "k8s/yaml2json.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define MAX_DEPTH 128     /* nesting limit: manifests are shallow, inputs untrusted */
#define MAX_ANCHORS 1024
#define MAX_ALIAS_NODES 100000 /* bounds alias expansion ("billion laughs") */

struct anchor {
	char *name;
	cJSON *node; /* owned copy, duplicated on each alias */
};

struct conv {
	yaml_parser_t parser;
	struct anchor anchors[MAX_ANCHORS];
	int n_anchors;
	size_t alias_nodes;
	char *err;
	size_t errlen;
};

static int fail(struct conv *c, const yaml_mark_t *m, const char *what)
{
	snprintf(c->err, c->errlen, "line %zu: %s", m ? m->line + 1 : 0, what);
	return -EINVAL;
}

static bool is_one_of(const char *s, const char *const *words)
{
	for (; *words; words++)
		if (strcmp(s, *words) == 0)
			return true;
	return false;
}

/* YAML 1.1 integer: [-+]?(0|[1-9][0-9_]*), 0x hex, 0 octal, 0b binary. */
static bool resolve_int(const char *s, double *out)
{
	const char *p = s;
	int base = 10, neg = 0;
	unsigned long long v = 0;
	bool digits = false;

	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	} else if (p[0] == '0' && p[1] == 'b') {
		base = 2;
		p += 2;
	} else if (p[0] == '0' && p[1]) {
		base = 8;
		p++;
	}
	for (; *p; p++) {
		int d;

		if (*p == '_')
			continue;
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			return false;
		if (d >= base || v > (1ull << 53))
			return false;
		v = v * (unsigned)base + (unsigned)d;
		digits = true;
	}
	if (!digits)
		return false;
	*out = neg ? -(double)v : (double)v;
	return true;
}

/* YAML 1.1 float: [-+]?([0-9][0-9_]*)?\.[0-9.]*([eE][-+][0-9]+)?, .inf, .nan */
static bool resolve_float(const char *s, double *out)
{
	static const char *const inf[] = { ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL };
	static const char *const ninf[] = { "-.inf", "-.Inf", "-.INF", NULL };
	static const char *const nan_[] = { ".nan", ".NaN", ".NAN", NULL };
	const char *p = s;
	char *end;
	bool dot = false, digit = false;

	if (is_one_of(s, inf) || is_one_of(s, ninf) || is_one_of(s, nan_))
		return false; /* not representable in JSON: keep the string */
	if (*p == '-' || *p == '+')
		p++;
	for (; *p && *p != 'e' && *p != 'E'; p++) {
		if (*p == '.')
			dot = true;
		else if (*p >= '0' && *p <= '9')
			digit = true;
		else
			return false;
	}
	if (!dot || !digit || strchr(s, '_'))
		return false;
	*out = strtod(s, &end);
	return *end == 0 && isfinite(*out);
}

static cJSON *scalar_node(const yaml_event_t *ev)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };
	static const char *const trues[] = { "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On",
					     "ON", "y", "Y", NULL };
	static const char *const falses[] = { "false", "False", "FALSE", "no", "No", "NO", "off",
					      "Off", "OFF", "n", "N", NULL };
	const char *v = (const char *)ev->data.scalar.value;
	const char *tag = (const char *)ev->data.scalar.tag;
	double d;

	if (tag && (strcmp(tag, YAML_STR_TAG) == 0 || strcmp(tag, "!") == 0))
		return cJSON_CreateString(v);
	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE && !tag)
		return cJSON_CreateString(v);
	if (is_one_of(v, nulls))
		return cJSON_CreateNull();
	if (is_one_of(v, trues))
		return cJSON_CreateTrue();
	if (is_one_of(v, falses))
		return cJSON_CreateFalse();
	if (resolve_int(v, &d) || resolve_float(v, &d))
		return cJSON_CreateNumber(d);
	return cJSON_CreateString(v);
}

static int remember_anchor(struct conv *c, const yaml_char_t *name, cJSON *node, const yaml_mark_t *m)
{
	struct anchor *a;

	if (!name)
		return 0;
	if (c->n_anchors == MAX_ANCHORS)
		return fail(c, m, "too many anchors");
	a = &c->anchors[c->n_anchors];
	a->name = strdup((const char *)name);
	a->node = cJSON_Duplicate(node, 1);
	if (!a->name || !a->node) {
		free(a->name);
		cJSON_Delete(a->node);
		return -ENOMEM;
	}
	c->n_anchors++;
	return 0;
}

static size_t count_nodes(const cJSON *n)
{
	size_t k = 1;

	for (n = n->child; n; n = n->next)
		k += count_nodes(n);
	return k;
}

static int parse_node(struct conv *c, yaml_event_t *ev, int depth, cJSON **out);

static int next_event(struct conv *c, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&c->parser, ev))
		return fail(c, &c->parser.problem_mark, c->parser.problem ? c->parser.problem : "syntax error");
	return 0;
}

/* Parses the children of a mapping or sequence until its end event. */
static int parse_children(struct conv *c, cJSON *parent, bool mapping, int depth)
{
	yaml_event_t ev;
	int err;

	for (;;) {
		cJSON *key = NULL, *val = NULL;
		const char *k;

		if ((err = next_event(c, &ev)))
			return err;
		if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		if (!mapping) {
			err = parse_node(c, &ev, depth + 1, &val);
			yaml_event_delete(&ev);
			if (err)
				return err;
			cJSON_AddItemToArray(parent, val);
			continue;
		}
		/* keys keep their text: a label key "y" or "80" must not turn into
		 * "true" or a number (go-yaml would; no manifest wants that) */
		if (ev.type != YAML_SCALAR_EVENT) {
			yaml_event_delete(&ev);
			return fail(c, &c->parser.mark, "mapping key is not a scalar");
		}
		key = cJSON_CreateString((const char *)ev.data.scalar.value);
		yaml_event_delete(&ev);
		if (!key)
			return -ENOMEM;
		k = key->valuestring;
		if ((err = next_event(c, &ev))) {
			cJSON_Delete(key);
			return err;
		}
		err = parse_node(c, &ev, depth + 1, &val);
		yaml_event_delete(&ev);
		if (err) {
			cJSON_Delete(key);
			return err;
		}
		/* a repeated key: the last one wins, as in go-yaml's map decoding */
		if (cJSON_GetObjectItemCaseSensitive(parent, k))
			cJSON_ReplaceItemInObjectCaseSensitive(parent, k, val);
		else
			cJSON_AddItemToObject(parent, k, val);
		cJSON_Delete(key);
	}
}

static int parse_node(struct conv *c, yaml_event_t *ev, int depth, cJSON **out)
{
	const yaml_char_t *anchor = NULL;
	cJSON *n = NULL;
	int err = 0, i;

	if (depth > MAX_DEPTH)
		return fail(c, &ev->start_mark, "nesting too deep");
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		n = scalar_node(ev);
		anchor = ev->data.scalar.anchor;
		break;
	case YAML_MAPPING_START_EVENT:
	case YAML_SEQUENCE_START_EVENT: {
		bool mapping = ev->type == YAML_MAPPING_START_EVENT;

		anchor = mapping ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
		n = mapping ? cJSON_CreateObject() : cJSON_CreateArray();
		if (!n)
			return -ENOMEM;
		if ((err = parse_children(c, n, mapping, depth))) {
			cJSON_Delete(n);
			return err;
		}
		break;
	}
	case YAML_ALIAS_EVENT:
		for (i = c->n_anchors - 1; i >= 0; i--)
			if (strcmp(c->anchors[i].name, (const char *)ev->data.alias.anchor) == 0)
				break;
		if (i < 0)
			return fail(c, &ev->start_mark, "unknown alias");
		c->alias_nodes += count_nodes(c->anchors[i].node);
		if (c->alias_nodes > MAX_ALIAS_NODES)
			return fail(c, &ev->start_mark, "alias expansion too large");
		n = cJSON_Duplicate(c->anchors[i].node, 1);
		break;
	default:
		return fail(c, &ev->start_mark, "unexpected YAML event");
	}
	if (!n)
		return -ENOMEM;
	if ((err = remember_anchor(c, anchor, n, &ev->start_mark))) {
		cJSON_Delete(n);
		return err;
	}
	*out = n;
	return 0;
}

int k8s_yaml_parse_each(const char *text, size_t len, int (*cb)(cJSON *doc, size_t i, void *arg), void *arg,
			char *err, size_t errlen)
{
	struct conv *c = calloc(1, sizeof(*c));
	yaml_event_t ev;
	size_t n_docs = 0;
	int ret = 0, i;

	if (!c)
		return -ENOMEM;
	c->err = err;
	c->errlen = errlen;
	if (!yaml_parser_initialize(&c->parser)) {
		ret = -ENOMEM;
		goto out;
	}
	yaml_parser_set_input_string(&c->parser, (const unsigned char *)text, len);
	for (;;) {
		if ((ret = next_event(c, &ev)))
			break;
		if (ev.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (ev.type == YAML_DOCUMENT_START_EVENT) {
			yaml_event_t root;
			cJSON *doc = NULL;

			yaml_event_delete(&ev);
			if ((ret = next_event(c, &root)))
				break;
			if (root.type == YAML_DOCUMENT_END_EVENT) {
				doc = cJSON_CreateNull(); /* "---" with nothing under it */
				yaml_event_delete(&root);
				if (!doc) {
					ret = -ENOMEM;
					break;
				}
				if ((ret = cb(doc, n_docs++, arg)))
					break;
				continue;
			}
			ret = parse_node(c, &root, 0, &doc);
			yaml_event_delete(&root);
			if (ret)
				break;
			/* anchors are document-scoped */
			for (i = 0; i < c->n_anchors; i++) {
				free(c->anchors[i].name);
				cJSON_Delete(c->anchors[i].node);
			}
			c->n_anchors = 0;
			if ((ret = cb(doc, n_docs++, arg)))
				break;
			continue;
		}
		yaml_event_delete(&ev); /* stream start, document end */
	}
	yaml_parser_delete(&c->parser);
out:
	for (i = 0; i < c->n_anchors; i++) {
		free(c->anchors[i].name);
		cJSON_Delete(c->anchors[i].node);
	}
	free(c);
	return ret;
}

static int add_doc(cJSON *doc, size_t i, void *arg)
{
	(void)i;
	cJSON_AddItemToArray(arg, doc);
	return 0;
}

int k8s_yaml_parse(const char *text, size_t len, cJSON **docs, char *err, size_t errlen)
{
	cJSON *arr = cJSON_CreateArray();
	int ret;

	*docs = NULL;
	if (!arr)
		return -ENOMEM;
	ret = k8s_yaml_parse_each(text, len, add_doc, arr, err, errlen);
	if (ret) {
		cJSON_Delete(arr);
		return ret;
	}
	*docs = arr;
	return 0;
}
