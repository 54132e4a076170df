/* String-keyed chained hash map (see strmap.h). */
#include "agent/strmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
	return h ^ (h >> 29);
}

void *strmap_get(const struct strmap *m, const char *key)
{
	if (!m->nb)
		return NULL;
	for (struct strmap_ent *e = m->b[hash(key) & (m->nb - 1)]; e; e = e->next)
		if (!strcmp(e->key, key))
			return e->val;
	return NULL;
}

static int grow(struct strmap *m)
{
	size_t nb = m->nb ? m->nb * 2 : 64;
	struct strmap_ent **b = calloc(nb, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < m->nb; i++) {
		struct strmap_ent *e = m->b[i], *next;

		for (; e; e = next) {
			size_t j = hash(e->key) & (nb - 1);

			next = e->next;
			e->next = b[j];
			b[j] = e;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
	return 0;
}

int strmap_put(struct strmap *m, const char *key, void *val, void **old)
{
	struct strmap_ent *e;
	size_t j, len;

	if (old)
		*old = NULL;
	if (m->nb) {
		for (e = m->b[hash(key) & (m->nb - 1)]; e; e = e->next) {
			if (!strcmp(e->key, key)) {
				if (old)
					*old = e->val;
				e->val = val;
				return 0;
			}
		}
	}
	if (m->n + 1 > m->nb && grow(m))
		return -ENOMEM;
	len = strlen(key) + 1;
	e = malloc(sizeof(*e) + len);
	if (!e)
		return -ENOMEM;
	memcpy(e->key, key, len);
	e->val = val;
	j = hash(key) & (m->nb - 1);
	e->next = m->b[j];
	m->b[j] = e;
	m->n++;
	return 0;
}

void *strmap_del(struct strmap *m, const char *key)
{
	struct strmap_ent **pp;

	if (!m->nb)
		return NULL;
	for (pp = &m->b[hash(key) & (m->nb - 1)]; *pp; pp = &(*pp)->next) {
		struct strmap_ent *e = *pp;
		void *v;

		if (strcmp(e->key, key))
			continue;
		*pp = e->next;
		v = e->val;
		free(e);
		m->n--;
		return v;
	}
	return NULL;
}

void strmap_free(struct strmap *m)
{
	for (size_t i = 0; i < m->nb; i++) {
		struct strmap_ent *e = m->b[i], *next;

		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(m->b);
	m->b = NULL;
	m->nb = m->n = 0;
}
