/* kxp agent: the node daemon's main loop (one thread: the event queue of
 * the reflectors, netlink link/address events, signals, a 1 s tick), with
 * the HTTP servers and reflectors in their own threads. */
#ifndef KXP_AGENT_H
#define KXP_AGENT_H

#include "agent/config.h"

/* Runs until SIGTERM/SIGINT (programs stay attached, maps pinned). Returns
 * the exit status: 0 after a signal, 1 when it could not start. Logs. */
int kxp_agent_run(struct kxp_agent_cfg *cfg);

/* Default --pod-dev patterns (NULL-terminated). */
extern const char *const kxp_agent_default_pod_devs[];

#endif
