/* One Service's desired state through the full model: a view of the objects
 * holding only that Service, its slices and the Node (shallow copies, so the
 * cost is proportional to the Service), then kxp_model_build. */
#include "model/incremental.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int kxp_model_build_service(const struct k8s_service *svc, const struct k8s_endpointslice *const *slices,
			    size_t n_slices, const struct k8s_node *node, const struct kxp_node_cfg *cfg,
			    struct kxp_desired *out, struct kxp_diags *diags)
{
	struct kxp_objects view = {};
	struct k8s_service one;
	struct k8s_node n;
	int r;

	if (svc) {
		one = *svc;
		view.svcs = &one;
		view.n_svcs = 1;
	}
	if (node) {
		n = *node;
		view.nodes = &n;
		view.n_nodes = 1;
	}
	if (svc && n_slices) {
		view.slices = malloc(n_slices * sizeof(*view.slices));
		if (!view.slices)
			return -ENOMEM;
		for (size_t i = 0; i < n_slices; i++)
			view.slices[i] = *slices[i];
		view.n_slices = n_slices;
	}
	/* the view owns nothing: only its arrays are freed */
	r = kxp_model_build(&view, cfg, out, diags);
	free(view.slices);
	return r;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

size_t kxp_model_local_ready(const struct k8s_service *svc, const struct k8s_endpointslice *const *slices,
			     size_t n_slices, const char *node_name)
{
	uint32_t *ips;
	size_t n = 0, cap = 0, distinct = 0;

	if (!svc || !node_name)
		return 0;
	for (size_t i = 0; i < n_slices; i++)
		cap += slices[i]->n_eps;
	if (!cap || !(ips = malloc(cap * sizeof(*ips))))
		return 0;
	for (size_t i = 0; i < n_slices; i++) {
		const struct k8s_endpointslice *s = slices[i];

		if (!s->service_name || s->proxy_name || s->headless_label || s->addr_type != K8S_ADDR_IPV4 ||
		    strcmp(s->ns, svc->ns) || strcmp(s->service_name, svc->name))
			continue;
		for (size_t k = 0; k < s->n_eps; k++) {
			const struct k8s_endpoint *e = &s->eps[k];

			/* ready excludes terminating endpoints: N = 0 while all terminate (H.39) */
			if (e->addr && e->ready && e->node_name && !strcmp(e->node_name, node_name))
				ips[n++] = e->addr;
		}
	}
	qsort(ips, n, sizeof(*ips), u32_cmp);
	for (size_t i = 0; i < n; i++)
		if (!i || ips[i] != ips[i - 1])
			distinct++;
	free(ips);
	return distinct;
}
