/* Diagnostics collection (see diag.h). */
#include "lib/diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kxp_diags_add(struct kxp_diags *d, const char *kind, const char *ns, const char *name,
		   const char *field, const char *fmt, ...)
{
	struct kxp_diag *g;
	va_list ap;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct kxp_diag *v = realloc(d->v, cap * sizeof(*v));

		if (!v)
			return;
		d->v = v;
		d->cap = cap;
	}
	g = &d->v[d->n++];
	memset(g, 0, sizeof(*g));
	snprintf(g->kind, sizeof(g->kind), "%s", kind ? kind : "");
	snprintf(g->ns, sizeof(g->ns), "%s", ns ? ns : "");
	snprintf(g->name, sizeof(g->name), "%s", name ? name : "");
	snprintf(g->field, sizeof(g->field), "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(g->reason, sizeof(g->reason), fmt, ap);
	va_end(ap);
}

int kxp_diag_format(const struct kxp_diag *g, char *buf, size_t len)
{
	return snprintf(buf, len, "%s %s%s%s%s%s: %s", g->kind, g->ns, g->ns[0] ? "/" : "", g->name,
			g->field[0] ? ": " : "", g->field, g->reason);
}

void kxp_diags_free(struct kxp_diags *d)
{
	if (!d)
		return;
	free(d->v);
	d->v = NULL;
	d->n = d->cap = 0;
}
