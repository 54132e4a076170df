/* Diagnostics: one rejected object (or field) with the reason, collected by
 * library code and reported once by its caller (library code never logs). */
#ifndef KXP_DIAG_H
#define KXP_DIAG_H

#include <stddef.h>

struct kxp_diag {
	char kind[32];  /* "Service", "EndpointSlice", "Node", "file", ... */
	char ns[64];    /* namespace, "" for cluster-scoped objects or files */
	char name[256]; /* object name, or the file path */
	char field[128];/* e.g. "spec.ports[1].port"; "" if the whole object */
	char reason[256];
};

struct kxp_diags {
	struct kxp_diag *v;
	size_t n, cap;
};

/* Append one diagnostic (printf-style reason). Never fails silently: on OOM the
 * diagnostic is dropped and kxp_diags_oom() becomes true. */
void kxp_diags_add(struct kxp_diags *d, const char *kind, const char *ns, const char *name,
		   const char *field, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* "Service default/web: spec.ports[0].port: 70000 is out of range 1..65535" */
int kxp_diag_format(const struct kxp_diag *g, char *buf, size_t len);
void kxp_diags_free(struct kxp_diags *d);

#endif
