/* Network namespaces: enter a named one (like `ip -n`, network only, so
 * /sys/fs/bpf stays visible) and identify the current one. */
#ifndef KXP_NETNS_H
#define KXP_NETNS_H

#include <stdint.h>

/* setns(CLONE_NEWNET) to /run/netns/NAME. Returns 0 or -errno
 * (-EINVAL for a name with '/' or an empty name). */
int kxp_netns_enter(const char *name);
/* Inode of the current network namespace (/proc/self/ns/net), 0 on error. */
uint64_t kxp_netns_inode(void);

#endif
