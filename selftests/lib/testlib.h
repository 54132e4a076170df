/* Minimal C test framework shared by the unit and bpf suites.
 * Tests register themselves with KXP_TEST(name); each runs in a forked child
 * with a timeout, so a crash or hang fails that test alone. Output protocol
 * (read by selftests/run.sh), one line per test:
 *   PASS: <suite>/<name>
 *   FAIL: <suite>/<name>: <first failed assertion>
 *   SKIP: <suite>/<name>: skipped: <why>
 * Assertions print got/want on failure and return false so a test can jump
 * to its cleanup: `if (!ASSERT_EQ(a, b, "what")) goto out;`. */
#ifndef KXP_TESTLIB_H
#define KXP_TESTLIB_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void (*kxp_test_fn)(void);
void kxp_test_register(const char *name, kxp_test_fn fn);
/* Mark the running test skipped (it then never counts as passed). */
void kxp_test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Record a failure of the running test (used by the macros). */
void kxp_test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The suite name printed in the protocol lines (set by the suite's main or default "test"). */
extern const char *kxp_test_suite;
/* Seconds each test may run (default 60). */
extern unsigned kxp_test_timeout;

#define KXP_TEST(name)                                                                             \
	static void test_##name(void);                                                             \
	__attribute__((constructor)) static void kxp_reg_##name(void)                              \
	{                                                                                          \
		kxp_test_register(#name, test_##name);                                             \
	}                                                                                          \
	static void test_##name(void)

#define ASSERT_TRUE(cond, what)                                                                    \
	({                                                                                         \
		bool ok_ = (cond);                                                                 \
		if (!ok_)                                                                          \
			kxp_test_fail(__FILE__, __LINE__, "%s: expected true: %s", (what), #cond); \
		ok_;                                                                               \
	})

#define ASSERT_EQ(got, want, what)                                                                 \
	({                                                                                         \
		long long g_ = (long long)(got), w_ = (long long)(want);                           \
		bool ok_ = g_ == w_;                                                               \
		if (!ok_)                                                                          \
			kxp_test_fail(__FILE__, __LINE__, "%s: got %lld (0x%llx), want %lld (0x%llx)", \
				      (what), g_, (unsigned long long)g_, w_, (unsigned long long)w_); \
		ok_;                                                                               \
	})

#define ASSERT_NE(got, notwant, what)                                                              \
	({                                                                                         \
		long long g_ = (long long)(got), w_ = (long long)(notwant);                        \
		bool ok_ = g_ != w_;                                                               \
		if (!ok_)                                                                          \
			kxp_test_fail(__FILE__, __LINE__, "%s: got %lld, want anything else", (what), g_); \
		ok_;                                                                               \
	})

#define ASSERT_STREQ(got, want, what)                                                              \
	({                                                                                         \
		const char *g_ = (got), *w_ = (want);                                              \
		bool ok_ = g_ && w_ && strcmp(g_, w_) == 0;                                        \
		if (!ok_)                                                                          \
			kxp_test_fail(__FILE__, __LINE__, "%s: got \"%s\", want \"%s\"", (what),    \
				      g_ ? g_ : "(null)", w_ ? w_ : "(null)");                      \
		ok_;                                                                               \
	})

#define ASSERT_OK(err, what) ASSERT_EQ((err), 0, (what))

/* The source tree (tests run from the repository root) and the build directory
 * ($KXP_BUILD, set by selftests/run.sh; default <srcdir>/build). */
const char *kxp_test_srcdir(void);
const char *kxp_test_builddir(void);

#endif
