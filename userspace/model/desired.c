/* Freeing the desired state (see desired.h). */
#include "model/desired.h"

#include <stdlib.h>
#include <string.h>

void kxp_desired_free(struct kxp_desired *d)
{
	size_t i;

	if (!d)
		return;
	for (i = 0; i < d->n_fe; i++) {
		free(d->fe[i].svc);
		free(d->fe[i].port_name);
		free(d->fe[i].lbsr);
	}
	free(d->fe);
	for (i = 0; i < d->n_sets; i++) {
		free(d->sets[i].key);
		free(d->sets[i].be);
	}
	free(d->sets);
	free(d->nodeips);
	for (i = 0; i < d->n_dropped; i++) {
		free(d->dropped[i].svc);
		free(d->dropped[i].port_name);
		free(d->dropped[i].lbsr);
	}
	free(d->dropped);
	memset(d, 0, sizeof(*d));
}
