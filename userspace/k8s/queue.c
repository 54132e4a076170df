/* The event queue between the reflector threads and the agent's main loop:
 * a mutex-protected FIFO whose eventfd is readable while it is non-empty. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "k8s/client.h"

struct qnode {
	struct kxp_k8s_event *ev;
	struct qnode *next;
};

struct kxp_k8s_queue {
	pthread_mutex_t lock;
	struct qnode *head, *tail;
	int efd;
};

struct kxp_k8s_queue *kxp_k8s_queue_new(void)
{
	struct kxp_k8s_queue *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->efd < 0) {
		int e = errno;

		free(q);
		errno = e;
		return NULL;
	}
	pthread_mutex_init(&q->lock, NULL);
	return q;
}

void kxp_k8s_event_free(struct kxp_k8s_event *ev)
{
	if (!ev)
		return;
	cJSON_Delete(ev->obj);
	free(ev->msg);
	free(ev);
}

void kxp_k8s_queue_free(struct kxp_k8s_queue *q)
{
	struct qnode *n, *next;

	if (!q)
		return;
	for (n = q->head; n; n = next) {
		next = n->next;
		kxp_k8s_event_free(n->ev);
		free(n);
	}
	close(q->efd);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

int kxp_k8s_queue_fd(const struct kxp_k8s_queue *q)
{
	return q->efd;
}

/* The eventfd counter is only ever 0 (empty) or non-zero (non-empty): push
 * adds, and the pop that empties the list drains it, both under the lock, so
 * a poll() wakeup never misses an event and never fires for an empty queue. */
void kxp_k8s_queue_push(struct kxp_k8s_queue *q, struct kxp_k8s_event *ev)
{
	struct qnode *n = malloc(sizeof(*n));
	uint64_t one = 1;

	if (!n) {
		/* Losing an event would desynchronise the agent; there is no
		 * way to report it from here, and 16 bytes failing means the
		 * process is about to die anyway. */
		kxp_k8s_event_free(ev);
		return;
	}
	n->ev = ev;
	n->next = NULL;
	pthread_mutex_lock(&q->lock);
	if (q->tail)
		q->tail->next = n;
	else
		q->head = n;
	q->tail = n;
	if (write(q->efd, &one, sizeof(one)) < 0) {
		/* Only EAGAIN at 2^64-2 pending writes is possible. */
	}
	pthread_mutex_unlock(&q->lock);
}

struct kxp_k8s_event *kxp_k8s_queue_pop(struct kxp_k8s_queue *q)
{
	struct kxp_k8s_event *ev = NULL;
	struct qnode *n;
	uint64_t v;

	pthread_mutex_lock(&q->lock);
	n = q->head;
	if (n) {
		q->head = n->next;
		if (!q->head)
			q->tail = NULL;
		ev = n->ev;
		free(n);
	}
	if (!q->head && read(q->efd, &v, sizeof(v)) < 0) {
		/* EAGAIN: already drained. */
	}
	pthread_mutex_unlock(&q->lock);
	return ev;
}
