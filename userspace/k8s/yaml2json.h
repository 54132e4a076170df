/* YAML (1.1, as Kubernetes reads it) to cJSON, so that JSON and YAML
 * manifests go through one decoder. */
#ifndef KXP_K8S_YAML2JSON_H
#define KXP_K8S_YAML2JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* Parse every document of text into a cJSON array (one element per
 * document; an empty document is a JSON null). Plain scalars resolve as in
 * YAML 1.1 (ints, floats, bools incl. yes/no/on/off, null/~); quoted and
 * block scalars stay strings. Anchors/aliases are expanded. On a syntax error
 * returns -EINVAL with a message ("line N: ...") in err; -ENOMEM. */
int k8s_yaml_parse(const char *text, size_t len, cJSON **docs, char *err, size_t errlen);
/* The same, one document at a time: cb gets each (index i from 0) and owns
 * it; a non-zero return stops the parse and is returned. Documents before a
 * syntax error have been given to cb. */
int k8s_yaml_parse_each(const char *text, size_t len, int (*cb)(cJSON *doc, size_t i, void *arg), void *arg,
			char *err, size_t errlen);

#endif
