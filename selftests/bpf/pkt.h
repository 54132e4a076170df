/* A small packet builder and checker for the datapath fixtures: Ethernet/
 * IPv4/TCP|UDP|SCTP frames with valid checksums, named test addresses, and a
 * decoder that recomputes every checksum from scratch. */
#ifndef KXP_TEST_PKT_H
#define KXP_TEST_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

/* Named test addresses (network order via A()). */
#define A(a, b, c, d) htonl(((uint32_t)(a) << 24) | ((b) << 16) | ((c) << 8) | (d))
#define POD_A A(10, 244, 1, 10)      /* client pod on this node */
#define POD_B A(10, 244, 1, 20)      /* backend pod on this node */
#define POD_R A(10, 244, 2, 30)      /* backend pod on another node */
#define POD_R2 A(10, 244, 2, 31)     /* second remote backend */
#define NODE_IP A(192, 168, 50, 1)   /* this node */
#define EXT_C A(203, 0, 113, 7)      /* external client */
#define CIP A(10, 96, 0, 10)         /* a ClusterIP */
#define CIP_FREE A(10, 96, 0, 99)    /* unallocated, inside the service CIDR */
#define LB_IP A(198, 51, 100, 5)     /* a LoadBalancer ingress IP */

#define TPKT_MAX 512

struct tpkt {
	uint8_t proto;         /* IPPROTO_TCP/UDP/SCTP/ICMP */
	uint32_t saddr, daddr; /* network order */
	uint16_t sport, dport; /* host order */
	uint8_t tcp_flags;     /* default SYN when 0 and TCP... set explicitly */
	uint8_t ip_opts;       /* bytes of IP options (multiple of 4, <= 40) */
	uint16_t frag;         /* raw frag_off field, host order (0x2000 = MF) */
	uint16_t payload;      /* payload bytes after the L4 header */
	bool udp_no_csum;      /* UDP checksum 0 */
	uint16_t ethertype;    /* 0 = IPv4 */
};

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_ACK 0x10

/* Build a frame; returns its length. */
size_t tpkt_build(const struct tpkt *t, uint8_t *buf);

/* A decoded frame: fields and checksum validity (recomputed). */
struct tpkt_dec {
	bool ipv4;
	uint32_t saddr, daddr;
	uint16_t sport, dport; /* host order */
	uint8_t proto, tcp_flags;
	bool l3_ok;            /* IPv4 header checksum valid */
	bool l4_ok;            /* TCP/UDP checksum valid (UDP 0 counts as valid) */
	uint16_t udp_csum;     /* raw UDP checksum (0 = none) */
};

void tpkt_decode(const uint8_t *buf, size_t len, struct tpkt_dec *d);
/* "TCP 10.244.1.10:40000 -> 10.96.0.10:80 [S] l3 ok l4 ok" */
char *tpkt_str(const uint8_t *buf, size_t len, char *out, size_t outlen);
const char *tpkt_ip(uint32_t a, char *buf); /* buf >= 16 */

/* Internet checksum of n bytes: 0 when a buffer holding its checksum is valid. */
uint16_t tpkt_csum(const uint8_t *p, size_t n);

/* An ICMP error frame from sa to da quoting `quote` bytes of the IP packet
 * in frame `orig` (its bytes from offset 14). Returns the frame length. */
size_t tpkt_build_icmp_err(uint8_t type, uint8_t code, uint16_t mtu, uint32_t sa, uint32_t da, const uint8_t *orig,
			   size_t quote, uint8_t *buf);

/* An ICMP error frame, decoded; checksums recomputed. */
struct tpkt_icmp {
	bool ok;                 /* IPv4 + ICMP with a quoted IPv4 header */
	uint8_t type, code;
	uint16_t mtu;            /* next-hop MTU (type 3 code 4) */
	uint32_t saddr, daddr;   /* outer */
	bool l3_ok, icmp_ok;     /* outer IP and ICMP checksums */
	uint32_t isaddr, idaddr; /* quoted */
	uint16_t isport, idport; /* quoted, host order */
	uint8_t iproto;
	bool il3_ok;             /* quoted IP header checksum */
	uint16_t iudp_csum;      /* quoted UDP checksum field (raw) */
	const uint8_t *quote;    /* quoted bytes */
	size_t quote_len;
};
void tpkt_decode_icmp(const uint8_t *buf, size_t len, struct tpkt_icmp *d);

#endif
