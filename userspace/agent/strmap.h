/* A string-keyed hash map (chained, grows by doubling) for the agent's
 * object store: key -> void *. Keys are copied; values are the caller's. */
#ifndef KXP_AGENT_STRMAP_H
#define KXP_AGENT_STRMAP_H

#include <stddef.h>

struct strmap_ent {
	struct strmap_ent *next;
	void *val;
	char key[];
};

struct strmap {
	struct strmap_ent **b;
	size_t nb, n;
};

void *strmap_get(const struct strmap *m, const char *key);
/* Insert or replace; returns the previous value (NULL if none) in *old. -ENOMEM. */
int strmap_put(struct strmap *m, const char *key, void *val, void **old);
/* Remove; returns the value or NULL. */
void *strmap_del(struct strmap *m, const char *key);
void strmap_free(struct strmap *m);

#define strmap_for_each(m, e)                                                                      \
	for (size_t b_##e = 0; b_##e < (m)->nb; b_##e++)                                          \
		for (struct strmap_ent *e = (m)->b[b_##e]; e; e = e->next)

#endif
