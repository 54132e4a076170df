/* Tolerant IPv4/CIDR parsing (see ip.h). inet_pton() rejects leading zeros,
 * which Kubernetes objects may carry, so the dotted quad is parsed by hand. */
#include "lib/ip.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Parse one decimal number of at most max_digits digits at *p; advances *p. */
static int parse_dec(const char **p, unsigned max_digits, unsigned max, unsigned *out)
{
	const char *s = *p;
	unsigned v = 0, n = 0;

	while (*s >= '0' && *s <= '9') {
		if (++n > max_digits)
			return -EINVAL;
		v = v * 10 + (unsigned)(*s - '0');
		s++;
	}
	if (n == 0 || v > max)
		return -EINVAL;
	*p = s;
	*out = v;
	return 0;
}

/* Parses a dotted quad at the start of s; *end points after it. */
static int parse_quad(const char *s, const char **end, uint32_t *addr_be)
{
	uint32_t host = 0;
	unsigned part;
	int i;

	if (!s)
		return -EINVAL;
	for (i = 0; i < 4; i++) {
		if (i > 0) {
			if (*s != '.')
				return -EINVAL;
			s++;
		}
		if (parse_dec(&s, 3, 255, &part))
			return -EINVAL;
		host = host << 8 | part;
	}
	*end = s;
	*addr_be = htonl(host);
	return 0;
}

int kxp_parse_ip4(const char *s, uint32_t *addr_be)
{
	const char *end;
	uint32_t a;

	if (parse_quad(s, &end, &a) || *end)
		return -EINVAL;
	*addr_be = a;
	return 0;
}

int kxp_parse_cidr4(const char *s, struct kxp_cidr4 *out)
{
	const char *p;
	unsigned plen;
	uint32_t a, mask;

	if (parse_quad(s, &p, &a) || *p != '/')
		return -EINVAL;
	p++;
	/* leading zeros are allowed ("/025"), so allow a few more digits */
	if (parse_dec(&p, 4, 32, &plen) || *p)
		return -EINVAL;
	mask = plen ? htonl(~0u << (32 - plen)) : 0;
	out->addr = a & mask;
	out->mask = mask;
	return 0;
}

bool kxp_is_ip6(const char *s)
{
	struct in6_addr a;

	return s && strchr(s, ':') && inet_pton(AF_INET6, s, &a) == 1;
}

bool kxp_is_cidr6(const char *s)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash = s ? strchr(s, '/') : NULL;
	const char *p;
	unsigned plen;
	size_t n;

	if (!slash)
		return false;
	n = (size_t)(slash - s);
	if (n >= INET6_ADDRSTRLEN)
		return false;
	memcpy(buf, s, n);
	buf[n] = 0;
	p = slash + 1;
	return kxp_is_ip6(buf) && parse_dec(&p, 5, 128, &plen) == 0 && !*p;
}

const char *kxp_ip4_str(uint32_t addr_be, char buf[16])
{
	struct in_addr a = { .s_addr = addr_be };

	if (!inet_ntop(AF_INET, &a, buf, 16))
		buf[0] = 0;
	return buf;
}

int kxp_cidr4_prefixlen(const struct kxp_cidr4 *c)
{
	uint32_t m = ntohl(c->mask);
	int n = 0;

	while (m & 0x80000000u) {
		m <<= 1;
		n++;
	}
	return m ? -1 : n;
}

const char *kxp_cidr4_str(const struct kxp_cidr4 *c, char buf[19])
{
	char a[16];

	snprintf(buf, 19, "%s/%d", kxp_ip4_str(c->addr, a), kxp_cidr4_prefixlen(c));
	return buf;
}

bool kxp_cidr4_contains(const struct kxp_cidr4 *c, uint32_t addr_be)
{
	return (addr_be & c->mask) == (c->addr & c->mask);
}

const char *kxp_proto_name(uint8_t proto, char buf[8])
{
	switch (proto) {
	case 0:
		return "any";
	case 1:
		return "icmp";
	case 6:
		return "tcp";
	case 17:
		return "udp";
	case 132:
		return "sctp";
	}
	snprintf(buf, 8, "%u", proto);
	return buf;
}
