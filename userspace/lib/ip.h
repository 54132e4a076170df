/* IPv4 address and CIDR parsing as Kubernetes tolerates it (leading zeros
 * read as decimal, semantics item 7), plus formatting and containment. */
#ifndef KXP_LIB_IP_H
#define KXP_LIB_IP_H

#include <stdbool.h>
#include <stdint.h>

#include <kxp/abi.h>

/* "a.b.c.d", each part 1..3 decimal digits (leading zeros allowed, read as
 * decimal) and <= 255. No surrounding whitespace. Returns 0 or -EINVAL. */
int kxp_parse_ip4(const char *s, uint32_t *addr_be);
/* "a.b.c.d/n" with n 0..32 (leading zeros allowed). The mask is in network
 * order and the host bits of addr are cleared. Returns 0 or -EINVAL. */
int kxp_parse_cidr4(const char *s, struct kxp_cidr4 *out);
/* IPv6 strings are recognised (so callers can skip them quietly), not parsed. */
bool kxp_is_ip6(const char *s);
bool kxp_is_cidr6(const char *s);
/* Dotted quad of addr_be in buf; returns buf. */
const char *kxp_ip4_str(uint32_t addr_be, char buf[16]);
/* "a.b.c.d/n" of c in buf (at least 19 bytes); returns buf. */
const char *kxp_cidr4_str(const struct kxp_cidr4 *c, char buf[19]);
bool kxp_cidr4_contains(const struct kxp_cidr4 *c, uint32_t addr_be);
/* Prefix length of c's mask (0..32); -1 if the mask is not contiguous. */
int kxp_cidr4_prefixlen(const struct kxp_cidr4 *c);
/* "tcp", "udp", "sctp", "icmp", "any" (0), else the number written in buf. */
const char *kxp_proto_name(uint8_t proto, char buf[8]);

#endif
