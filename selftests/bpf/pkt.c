/* Packet builder and checker for the datapath fixtures (see pkt.h). The
 * checksums here are computed from scratch, independently of the datapath's
 * incremental updates, so a wrong update shows up as l3_ok/l4_ok false. */
#include "pkt.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t s)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* One's complement sum of the pseudo header and the L4 segment. */
static uint16_t l4_sum(const uint8_t *ip, const uint8_t *l4, size_t l4len, uint8_t proto)
{
	uint8_t ph[12];

	memcpy(ph, ip + 12, 8);
	ph[8] = 0;
	ph[9] = proto;
	ph[10] = l4len >> 8;
	ph[11] = l4len & 0xff;
	return fold(sum16(l4, l4len, sum16(ph, 12, 0)));
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

size_t tpkt_build(const struct tpkt *t, uint8_t *buf)
{
	static const uint8_t dmac[6] = { 0x02, 0, 0, 0, 0, 0x01 }, smac[6] = { 0x02, 0, 0, 0, 0, 0x02 };
	size_t ihl = 20 + t->ip_opts, l4h, l4len, tot;
	uint8_t *ip = buf + 14, *l4;

	memset(buf, 0, TPKT_MAX);
	memcpy(buf, dmac, 6);
	memcpy(buf + 6, smac, 6);
	put16(buf + 12, t->ethertype ? t->ethertype : 0x0800);
	if (t->ethertype && t->ethertype != 0x0800) {
		memset(buf + 14, 0x5a, 46);
		return 60;
	}
	switch (t->proto) {
	case IPPROTO_TCP: l4h = 20; break;
	case IPPROTO_UDP: l4h = 8; break;
	case IPPROTO_SCTP: l4h = 12; break;
	default: l4h = 8; break; /* ICMP echo */
	}
	l4len = l4h + t->payload;
	tot = ihl + l4len;
	ip[0] = 0x40 | (ihl / 4);
	put16(ip + 2, (uint16_t)tot);
	put16(ip + 4, 0x1234);
	put16(ip + 6, t->frag);
	ip[8] = 64;
	ip[9] = t->proto;
	memcpy(ip + 12, &t->saddr, 4);
	memcpy(ip + 16, &t->daddr, 4);
	memset(ip + 20, 1, t->ip_opts); /* NOP options */
	put16(ip + 10, ~fold(sum16(ip, ihl, 0)));

	l4 = ip + ihl;
	for (size_t i = 0; i < t->payload; i++)
		l4[l4h + i] = (uint8_t)(i * 7 + 3);
	switch (t->proto) {
	case IPPROTO_TCP:
		put16(l4, t->sport);
		put16(l4 + 2, t->dport);
		put16(l4 + 4, 0x0102);
		put16(l4 + 6, 0x0304);
		l4[12] = 5 << 4;
		l4[13] = t->tcp_flags;
		put16(l4 + 14, 64240);
		put16(l4 + 16, ~l4_sum(ip, l4, l4len, IPPROTO_TCP));
		break;
	case IPPROTO_UDP:
		put16(l4, t->sport);
		put16(l4 + 2, t->dport);
		put16(l4 + 4, (uint16_t)l4len);
		if (!t->udp_no_csum) {
			uint16_t c = ~l4_sum(ip, l4, l4len, IPPROTO_UDP);

			put16(l4 + 6, c ? c : 0xffff);
		}
		break;
	case IPPROTO_SCTP:
		put16(l4, t->sport);
		put16(l4 + 2, t->dport);
		memcpy(l4 + 4, "\x11\x22\x33\x44\x55\x66\x77\x88", 8); /* vtag, crc (opaque here) */
		break;
	default:
		l4[0] = 8; /* echo request */
		put16(l4 + 2, ~fold(sum16(l4, l4len, 0)));
		break;
	}
	tot += 14;
	return tot < 60 ? 60 : tot;
}

void tpkt_decode(const uint8_t *buf, size_t len, struct tpkt_dec *d)
{
	const uint8_t *ip = buf + 14, *l4;
	size_t ihl, tot;

	memset(d, 0, sizeof(*d));
	if (len < 34 || get16(buf + 12) != 0x0800 || (ip[0] >> 4) != 4)
		return;
	d->ipv4 = true;
	ihl = (ip[0] & 15) * 4;
	tot = get16(ip + 2);
	memcpy(&d->saddr, ip + 12, 4);
	memcpy(&d->daddr, ip + 16, 4);
	d->proto = ip[9];
	if (ihl < 20 || tot < ihl || tot + 14 > len)
		return;
	d->l3_ok = fold(sum16(ip, ihl, 0)) == 0xffff;
	l4 = ip + ihl;
	if (get16(ip + 6) & 0x3fff)
		return; /* fragment: no L4 checks */
	switch (d->proto) {
	case IPPROTO_TCP:
		if (tot - ihl < 20)
			return;
		d->sport = get16(l4);
		d->dport = get16(l4 + 2);
		d->tcp_flags = l4[13];
		d->l4_ok = l4_sum(ip, l4, tot - ihl, IPPROTO_TCP) == 0xffff;
		break;
	case IPPROTO_UDP:
		if (tot - ihl < 8)
			return;
		d->sport = get16(l4);
		d->dport = get16(l4 + 2);
		d->udp_csum = get16(l4 + 6);
		d->l4_ok = !d->udp_csum || l4_sum(ip, l4, tot - ihl, IPPROTO_UDP) == 0xffff;
		break;
	case IPPROTO_SCTP:
		if (tot - ihl < 12)
			return;
		d->sport = get16(l4);
		d->dport = get16(l4 + 2);
		/* the CRC32c is opaque to the fixtures: SCTP bytes must not change */
		d->l4_ok = !memcmp(l4 + 4, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
		break;
	default:
		break;
	}
}

const char *tpkt_ip(uint32_t a, char *buf)
{
	return inet_ntop(AF_INET, &a, buf, 16);
}

char *tpkt_str(const uint8_t *buf, size_t len, char *out, size_t outlen)
{
	static const char *const pn[256] = { [IPPROTO_TCP] = "TCP", [IPPROTO_UDP] = "UDP",
					     [IPPROTO_SCTP] = "SCTP", [IPPROTO_ICMP] = "ICMP" };
	struct tpkt_dec d;
	char s[16], t[16];

	tpkt_decode(buf, len, &d);
	if (!d.ipv4) {
		snprintf(out, outlen, "non-IPv4 frame, %zu bytes", len);
		return out;
	}
	snprintf(out, outlen, "%s %s:%u -> %s:%u flags 0x%02x, %zu bytes, ip csum %s, l4 csum %s",
		 pn[d.proto] ? pn[d.proto] : "proto?", tpkt_ip(d.saddr, s), d.sport, tpkt_ip(d.daddr, t),
		 d.dport, d.tcp_flags, len, d.l3_ok ? "ok" : "BAD", d.l4_ok ? "ok" : "BAD");
	return out;
}

uint16_t tpkt_csum(const uint8_t *p, size_t n)
{
	return (uint16_t)~fold(sum16(p, n, 0));
}

size_t tpkt_build_icmp_err(uint8_t type, uint8_t code, uint16_t mtu, uint32_t sa, uint32_t da, const uint8_t *orig,
			   size_t quote, uint8_t *buf)
{
	uint8_t *ip = buf + 14, *ic = ip + 20;
	size_t tot = 20 + 8 + quote;

	memset(buf, 0, TPKT_MAX);
	memcpy(buf, "\x02\0\0\0\0\x01\x02\0\0\0\x50\xfe", 12);
	put16(buf + 12, 0x0800);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)tot);
	ip[8] = 64;
	ip[9] = 1;
	memcpy(ip + 12, &sa, 4);
	memcpy(ip + 16, &da, 4);
	put16(ip + 10, tpkt_csum(ip, 20));
	ic[0] = type;
	ic[1] = code;
	put16(ic + 6, mtu);
	memcpy(ic + 8, orig + 14, quote);
	put16(ic + 2, tpkt_csum(ic, 8 + quote));
	return 14 + tot < 60 ? 60 : 14 + tot;
}

void tpkt_decode_icmp(const uint8_t *buf, size_t len, struct tpkt_icmp *d)
{
	const uint8_t *ip = buf + 14, *ic, *in;
	size_t ihl, tot, iihl;

	memset(d, 0, sizeof(*d));
	if (len < 14 + 20 + 8 + 20 + 8 || get16(buf + 12) != 0x0800 || (ip[0] >> 4) != 4 || ip[9] != 1)
		return;
	ihl = (ip[0] & 15) * 4;
	tot = get16(ip + 2);
	if (tot + 14 > len || tot < ihl + 8 + 28)
		return;
	memcpy(&d->saddr, ip + 12, 4);
	memcpy(&d->daddr, ip + 16, 4);
	d->l3_ok = tpkt_csum(ip, ihl) == 0;
	ic = ip + ihl;
	d->type = ic[0];
	d->code = ic[1];
	d->mtu = get16(ic + 6);
	d->icmp_ok = tpkt_csum(ic, tot - ihl) == 0;
	in = ic + 8;
	iihl = (in[0] & 15) * 4;
	if ((in[0] >> 4) != 4 || iihl < 20 || 8 + iihl + 8 > tot - ihl)
		return;
	d->quote = in;
	d->quote_len = tot - ihl - 8;
	memcpy(&d->isaddr, in + 12, 4);
	memcpy(&d->idaddr, in + 16, 4);
	d->iproto = in[9];
	d->il3_ok = tpkt_csum(in, iihl) == 0;
	d->isport = get16(in + iihl);
	d->idport = get16(in + iihl + 2);
	if (d->iproto == 17)
		d->iudp_csum = get16(in + iihl + 6);
	d->ok = true;
}
