/* Incremental model: the desired state of ONE Service (its frontends and
 * endpoint sets), built with exactly the rules of kxp_model_build, so the
 * agent can reprogram a single Service when only it changed. */
#ifndef KXP_MODEL_INCREMENTAL_H
#define KXP_MODEL_INCREMENTAL_H

#include "model/model.h"

/* Build the frontends and sets of svc from its slices (the slices whose
 * kubernetes.io/service-name label names svc in its namespace; others are
 * ignored as the full build would). node may be NULL. nodeips and cfg are
 * filled as kxp_model_build fills them. svc NULL gives an empty state.
 * Conflicts with other Services are not seen here (the caller checks).
 * Returns 0 or -ENOMEM. */
int kxp_model_build_service(const struct k8s_service *svc, const struct k8s_endpointslice *const *slices,
			    size_t n_slices, const struct k8s_node *node, const struct kxp_node_cfg *cfg,
			    struct kxp_desired *out, struct kxp_diags *diags);

/* Distinct local Ready endpoint IPs of a Service across all its ports and
 * slices (H.39: the healthCheckNodePort answer), with the slice filters of
 * the model (IPv4, service-name label, no proxy-name/headless labels). */
size_t kxp_model_local_ready(const struct k8s_service *svc, const struct k8s_endpointslice *const *slices,
			     size_t n_slices, const char *node_name);

#endif
