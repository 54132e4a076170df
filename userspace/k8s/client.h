/* Kubernetes API client: connection settings (in-cluster, kubeconfig,
 * --master), and one reflector per kind (paginated LIST, then WATCH from the
 * list's resourceVersion) that feeds a thread-safe event queue the agent's
 * main loop drains. Reflectors run in their own threads; the queue's fd
 * (eventfd) becomes readable when events are pending. */
#ifndef KXP_K8S_CLIENT_H
#define KXP_K8S_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "k8s/decode.h"

struct kxp_k8s_conn {
	char *server;       /* "https://10.96.0.1:443" */
	char *ca_file;      /* PEM bundle path, or NULL */
	char *ca_data;      /* PEM text (kubeconfig certificate-authority-data, decoded), or NULL */
	char *token;        /* bearer token, or NULL; never logged */
	char *token_file;   /* re-read whenever it changes (projected SA token), or NULL */
	char *cert_file, *key_file; /* client certificate, or NULL */
	char *cert_data, *key_data; /* PEM text from kubeconfig, or NULL */
	bool insecure;      /* skip TLS verification (explicit flag only) */
};

/* Fill from the in-cluster environment (KUBERNETES_SERVICE_HOST/PORT,
 * /var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt}; the directory
 * may be overridden for tests). Returns 0 or -errno; err names what is missing. */
int kxp_k8s_conn_in_cluster(struct kxp_k8s_conn *c, const char *sa_dir, char *err, size_t errlen);
/* Fill from a kubeconfig (current context; server, CA data/file, token or
 * tokenFile, client cert/key data or files). YAML or JSON. */
int kxp_k8s_conn_kubeconfig(struct kxp_k8s_conn *c, const char *path, char *err, size_t errlen);
void kxp_k8s_conn_free(struct kxp_k8s_conn *c);

enum kxp_k8s_kind { KXP_K8S_SERVICE, KXP_K8S_SLICE, KXP_K8S_NODE, KXP_K8S__KINDS };

enum kxp_k8s_ev_what {
	KXP_EV_OBJECT,  /* type ADDED/MODIFIED/DELETED, obj set */
	KXP_EV_SYNCED,  /* a (re)list completed: what came before equals the server's state */
	KXP_EV_ERROR,   /* msg says what (malformed line, HTTP error, retry in N s) */
};

struct kxp_k8s_event {
	enum kxp_k8s_kind kind;
	enum kxp_k8s_ev_what what;
	enum k8s_watch_type type;
	cJSON *obj;          /* owned by the event */
	char *msg;           /* owned by the event */
	uint64_t received_ns;/* CLOCK_MONOTONIC when the bytes arrived (programming latency) */
	bool relist;         /* part of a (re)list rather than a watch */
};

struct kxp_k8s_queue;
struct kxp_k8s_queue *kxp_k8s_queue_new(void);
void kxp_k8s_queue_free(struct kxp_k8s_queue *q);
int kxp_k8s_queue_fd(const struct kxp_k8s_queue *q);   /* readable when non-empty */
/* Take the next event (NULL if none); the caller frees it. */
struct kxp_k8s_event *kxp_k8s_queue_pop(struct kxp_k8s_queue *q);
void kxp_k8s_queue_push(struct kxp_k8s_queue *q, struct kxp_k8s_event *ev);
void kxp_k8s_event_free(struct kxp_k8s_event *ev);

struct kxp_reflector_opts {
	enum kxp_k8s_kind kind;
	const char *label_selector;  /* e.g. "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless" */
	const char *field_selector;  /* e.g. "metadata.name=node-a" */
	unsigned page_limit;         /* LIST limit (default 500) */
	unsigned watch_timeout_s;    /* timeoutSeconds asked of the server (renewed before it) */
	unsigned backoff_min_ms, backoff_max_ms; /* exponential with jitter */
	size_t max_line;             /* watch line cap (bytes) */
	unsigned stall_timeout_s;    /* no bytes (not even bookmarks) for this long: reconnect */
};

/* Counters a reflector keeps (metrics). */
struct kxp_reflector_stats {
	uint64_t lists, relists, watches, watch_restarts, events, errors, bytes;
};

struct kxp_reflector;
/* Start a reflector thread. A relist emits ADDED/MODIFIED for listed objects
 * whose resourceVersion changed, DELETED for objects that vanished since the
 * previous list/watch, then KXP_EV_SYNCED; watches emit events as they come.
 * 410 Gone or an ERROR event -> relist; connection errors, 5xx, 429 -> retry
 * with backoff. Returns NULL with errno set. */
struct kxp_reflector *kxp_reflector_start(const struct kxp_k8s_conn *c, const struct kxp_reflector_opts *o,
					  struct kxp_k8s_queue *q);
void kxp_reflector_stats(struct kxp_reflector *r, struct kxp_reflector_stats *st);
void kxp_reflector_stop(struct kxp_reflector *r);

#endif
