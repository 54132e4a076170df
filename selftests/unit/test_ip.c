/* Unit tests for the tolerant IPv4/CIDR parser (semantics item 7). */
#include <arpa/inet.h>
#include <errno.h>

#include "../lib/testlib.h"
#include "lib/ip.h"

static uint32_t be(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

KXP_TEST(ip4_parse)
{
	static const struct {
		const char *in, *want; /* want NULL: must be rejected */
	} cases[] = {
		{ "10.96.0.1", "10.96.0.1" },	  { "172.30.0.041", "172.30.0.41" },
		{ "10.180.00.001", "10.180.0.1" }, { "0.0.0.0", "0.0.0.0" },
		{ "255.255.255.255", "255.255.255.255" }, { "010.000.000.008", "10.0.0.8" },
		{ "256.1.1.1", NULL },		  { "1.2.3", NULL },
		{ "1.2.3.4.5", NULL },		  { "1.2.3.4 ", NULL },
		{ " 1.2.3.4", NULL },		  { "1..3.4", NULL },
		{ "1.2.3.0004", NULL },		  { "a.b.c.d", NULL },
		{ "", NULL },			  { "fd00::1", NULL },
		{ "1.2.3.4/32", NULL },		  { "-1.2.3.4", NULL },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t a = 0;
		int r = kxp_parse_ip4(cases[i].in, &a);
		char buf[16];

		if (!cases[i].want) {
			if (!ASSERT_EQ(r, -EINVAL, cases[i].in))
				return;
			continue;
		}
		if (!ASSERT_OK(r, cases[i].in) || !ASSERT_EQ(a, be(cases[i].want), cases[i].in) ||
		    !ASSERT_STREQ(kxp_ip4_str(a, buf), cases[i].want, cases[i].in))
			return;
	}
	ASSERT_EQ(kxp_parse_ip4(NULL, &(uint32_t){ 0 }), -EINVAL, "NULL");
}

KXP_TEST(cidr4_parse)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "203.0.113.0/24", "203.0.113.0/24" }, { "203.0.113.000/025", "203.0.113.0/25" },
		{ "10.244.1.7/16", "10.244.0.0/16" },	{ "0.0.0.0/0", "0.0.0.0/0" },
		{ "1.2.3.4/32", "1.2.3.4/32" },		{ "1.2.3.4/33", NULL },
		{ "1.2.3.4/", NULL },			{ "1.2.3.4", NULL },
		{ " 1.2.3.0/24", NULL },		{ "1.2.3.0/24x", NULL },
		{ "2001:db8::/32", NULL },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kxp_cidr4 c;
		int r = kxp_parse_cidr4(cases[i].in, &c);
		char buf[19];

		if (!cases[i].want) {
			if (!ASSERT_EQ(r, -EINVAL, cases[i].in))
				return;
			continue;
		}
		if (!ASSERT_OK(r, cases[i].in) || !ASSERT_STREQ(kxp_cidr4_str(&c, buf), cases[i].want, cases[i].in))
			return;
	}
}

KXP_TEST(cidr4_contains_and_mask)
{
	struct kxp_cidr4 c;

	if (!ASSERT_OK(kxp_parse_cidr4("10.244.0.0/16", &c), "parse"))
		return;
	ASSERT_EQ(c.mask, be("255.255.0.0"), "mask in network order");
	ASSERT_EQ(kxp_cidr4_prefixlen(&c), 16, "prefixlen");
	ASSERT_TRUE(kxp_cidr4_contains(&c, be("10.244.255.1")), "inside");
	ASSERT_TRUE(!kxp_cidr4_contains(&c, be("10.245.0.1")), "outside");
	if (!ASSERT_OK(kxp_parse_cidr4("0.0.0.0/0", &c), "parse /0"))
		return;
	ASSERT_TRUE(kxp_cidr4_contains(&c, be("192.0.2.1")), "/0 holds everything");
}

KXP_TEST(ip6_detect)
{
	ASSERT_TRUE(kxp_is_ip6("fd00:10:96::a"), "v6");
	ASSERT_TRUE(kxp_is_ip6("::1"), "loopback");
	ASSERT_TRUE(!kxp_is_ip6("10.0.0.1"), "v4");
	ASSERT_TRUE(!kxp_is_ip6("fd00::/64"), "a CIDR is no address");
	ASSERT_TRUE(!kxp_is_ip6("zz::1"), "garbage");
	ASSERT_TRUE(kxp_is_cidr6("2001:db8::/32"), "v6 cidr");
	ASSERT_TRUE(!kxp_is_cidr6("2001:db8::/129"), "v6 prefix too long");
	ASSERT_TRUE(!kxp_is_cidr6("10.0.0.0/8"), "v4 cidr");
}
