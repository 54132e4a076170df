/* Per-object decoders (JSON tree → typed object) shared by the manifest
 * loader and the watch client, and the watch-event envelope. */
#ifndef KXP_K8S_DECODE_H
#define KXP_K8S_DECODE_H

#include <cjson/cJSON.h>

#include "k8s/objects.h"
#include "lib/diag.h"

/* Decode one object of that kind. On a validation error a diag (kind,
 * namespace/name, field path, reason) is added, *out is left empty and
 * -EINVAL returned; -ENOMEM on allocation failure. Bad entries of a list
 * that kube-proxy skips (an invalid externalIP, LB ingress IP or source
 * range) are reported too but the object is kept (return 0). kind and
 * apiVersion are not checked here (the caller dispatches on them). */
int k8s_decode_service(const cJSON *obj, struct k8s_service *out, struct kxp_diags *d);
int k8s_decode_endpointslice(const cJSON *obj, struct k8s_endpointslice *out, struct kxp_diags *d);
int k8s_decode_node(const cJSON *obj, struct k8s_node *out, struct kxp_diags *d);

/* Free what a decoder allocated (the struct itself is the caller's); NULL ok. */
void k8s_service_free(struct k8s_service *s);
void k8s_endpointslice_free(struct k8s_endpointslice *s);
void k8s_node_free(struct k8s_node *n);

/* Add every object of a parsed document: a single object, a `List`/`*List`
 * with items, or a JSON array of those. Bad objects are reported and
 * skipped. Returns 0 or -ENOMEM. `origin` names the source in diags. */
int k8s_objects_add_json(struct kxp_objects *objs, const cJSON *root, const char *origin,
			 struct kxp_diags *d);
/* The same for document i of a YAML stream, as if root were the array of
 * all documents (diags name it "[i]"). */
int k8s_objects_add_doc(struct kxp_objects *objs, const cJSON *doc, size_t i, const char *origin,
			struct kxp_diags *d);

enum k8s_watch_type {
	K8S_WATCH_ADDED,
	K8S_WATCH_MODIFIED,
	K8S_WATCH_DELETED,
	K8S_WATCH_BOOKMARK, /* object carries only metadata.resourceVersion */
	K8S_WATCH_ERROR,    /* object is a Status (e.g. 410 Expired) */
};

/* Split a watch event {"type": ..., "object": {...}}. *obj is the object for
 * every type (a Status for ERROR). Returns 0 or -EINVAL (not an event). */
int k8s_watch_event(const cJSON *ev, enum k8s_watch_type *type, const cJSON **obj);
/* True for ADDED/MODIFIED/DELETED: the event carries a decodable object. */
static inline int k8s_watch_has_object(enum k8s_watch_type t)
{
	return t == K8S_WATCH_ADDED || t == K8S_WATCH_MODIFIED || t == K8S_WATCH_DELETED;
}

#endif
