/* Unit tests of the Maglev table builder (userspace/lb/maglev.c): coverage,
 * balance for 1..1000 backends, disruption when one backend goes, and
 * independence from the input order. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>

#include <kxp/abi.h>

#include "../lib/testlib.h"
#include "lb/maglev.h"

#define M KXP_MAGLEV_M_DEF

/* Backend i: 10.(i/250).(i%250).7:8080 + i%3, value i + 1 (0 = "empty"). */
static void mk(struct kxp_mg_backend *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		b[i].addr = htonl(0x0a000007u | (uint32_t)(i / 250) << 16 | (uint32_t)(i % 250) << 8);
		b[i].port = (uint16_t)(8080 + i % 3);
		b[i].value = (uint32_t)i + 1;
	}
}

KXP_TEST(maglev_m_ok)
{
	ASSERT_TRUE(kxp_maglev_m_ok(16381) && kxp_maglev_m_ok(251) && kxp_maglev_m_ok(131071) &&
			    kxp_maglev_m_ok(65537),
		    "primes in range");
	ASSERT_TRUE(!kxp_maglev_m_ok(16384) && !kxp_maglev_m_ok(241) && !kxp_maglev_m_ok(131101) &&
			    !kxp_maglev_m_ok(16383) && !kxp_maglev_m_ok(0),
		    "not prime or out of range");
}

KXP_TEST(maglev_filled_and_balanced_1_to_1000)
{
	static struct kxp_mg_backend b[1000];
	static uint32_t t[M], cnt[1001];

	mk(b, 1000);
	for (size_t n = 1; n <= 1000; n++) {
		uint32_t lo = M / n, hi = (M + n - 1) / n;

		memset(t, 0, sizeof(t));
		memset(cnt, 0, sizeof(cnt));
		if (!ASSERT_OK(kxp_maglev_build(b, n, M, t), "build"))
			return;
		for (uint32_t i = 0; i < M; i++) {
			if (t[i] < 1 || t[i] > n) {
				kxp_test_fail(__FILE__, __LINE__, "n=%zu: entry %u holds %u (not a backend)", n, i, t[i]);
				return;
			}
			cnt[t[i]]++;
		}
		for (size_t i = 1; i <= n; i++)
			if (cnt[i] < lo || cnt[i] > hi) {
				kxp_test_fail(__FILE__, __LINE__, "n=%zu: backend %zu holds %u entries, want %u..%u", n,
					      i, cnt[i], lo, hi);
				return;
			}
	}
}

/* Remove one of n backends: entries that belonged to a surviving backend and
 * now point elsewhere, as a fraction of all surviving backends' entries.
 * Adding the backend back restores the original table exactly. */
KXP_TEST(maglev_disruption_on_removal)
{
	static const size_t ns[] = { 2, 3, 4, 5, 8, 10, 16, 32, 50, 100, 250, 500, 1000 };
	static struct kxp_mg_backend b[1000], r[1000];
	static uint32_t full[M], less[M], back[M];
	double worst = 0;
	size_t worst_n = 0, worst_i = 0;

	mk(b, 1000);
	for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
		size_t n = ns[k];

		if (!ASSERT_OK(kxp_maglev_build(b, n, M, full), "build all"))
			return;
		/* remove, in turn, up to 8 backends spread over the list */
		for (size_t j = 0; j < 8 && j < n; j++) {
			size_t gone = j * n / 8, m = 0, moved = 0, surv = 0;

			for (size_t i = 0; i < n; i++)
				if (i != gone)
					r[m++] = b[i];
			if (!ASSERT_OK(kxp_maglev_build(r, m, M, less), "build without one"))
				return;
			for (uint32_t e = 0; e < M; e++) {
				if (full[e] == b[gone].value)
					continue;
				surv++;
				moved += less[e] != full[e];
			}
			if (surv && (double)moved / surv > worst) {
				worst = (double)moved / surv;
				worst_n = n;
				worst_i = gone;
			}
			if (!ASSERT_OK(kxp_maglev_build(b, n, M, back), "build again") ||
			    !ASSERT_TRUE(!memcmp(back, full, sizeof(full)), "adding it back restores the table"))
				return;
		}
	}
	printf("maglev: M=%u, removing one of n backends moved at most %.2f%% of the surviving backends' "
	       "entries (n=%zu, backend %zu)\n",
	       M, worst * 100, worst_n, worst_i);
	/* the paper's figure for M >> n is a few percent; 5% is well above it */
	ASSERT_TRUE(worst < 0.05, "disruption stays small");
}

KXP_TEST(maglev_input_order_irrelevant)
{
	static struct kxp_mg_backend b[300], s[300];
	static uint32_t t1[M], t2[M];

	mk(b, 300);
	memcpy(s, b, sizeof(b));
	srand(42);
	for (size_t i = 299; i > 0; i--) {
		size_t j = (size_t)rand() % (i + 1);
		struct kxp_mg_backend x = s[i];

		s[i] = s[j];
		s[j] = x;
	}
	if (!ASSERT_OK(kxp_maglev_build(b, 300, M, t1), "sorted") || !ASSERT_OK(kxp_maglev_build(s, 300, M, t2), "shuffled"))
		return;
	ASSERT_TRUE(!memcmp(t1, t2, sizeof(t1)), "identical tables");
	/* the same backends at another M: another but equally valid table */
	ASSERT_OK(kxp_maglev_build(b, 250, 251, t2), "n close to M");
}

KXP_TEST(maglev_rejects_bad_input)
{
	static struct kxp_mg_backend b[3];
	static uint32_t t[M];

	mk(b, 3);
	b[2] = b[0];
	ASSERT_EQ(kxp_maglev_build(b, 3, M, t), -EINVAL, "duplicate address:port");
	ASSERT_EQ(kxp_maglev_build(b, 2, 16384, t), -EINVAL, "M not prime");
	ASSERT_EQ(kxp_maglev_build(b, 0, M, t), -EINVAL, "no backend");
}
