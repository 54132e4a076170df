/* Test runner for the C suites: registration, fork-per-test with a timeout,
 * and the PASS/FAIL/SKIP protocol lines (see testlib.h). */
#include "testlib.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_TESTS 1024
#define EXIT_SKIP 77
#define MSG_LEN 1024

const char *kxp_test_suite = "test";
unsigned kxp_test_timeout = 60;

static struct {
	const char *name;
	kxp_test_fn fn;
} tests[MAX_TESTS];
static int n_tests;
static int failed_in_child;
static int msg_fd = -1;

void kxp_test_register(const char *name, kxp_test_fn fn)
{
	if (n_tests < MAX_TESTS) {
		tests[n_tests].name = name;
		tests[n_tests].fn = fn;
		n_tests++;
	}
}

static void send_msg(const char *prefix, const char *fmt, va_list ap)
{
	char buf[MSG_LEN];
	int n = snprintf(buf, sizeof(buf), "%s", prefix);

	vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	/* details go to stdout right away; the first message is the summary */
	printf("    %s\n", buf);
	fflush(stdout);
	if (msg_fd >= 0) {
		(void)!write(msg_fd, buf, strlen(buf) + 1);
		close(msg_fd);
		msg_fd = -1;
	}
}

void kxp_test_fail(const char *file, int line, const char *fmt, ...)
{
	char prefix[256];
	va_list ap;

	snprintf(prefix, sizeof(prefix), "%s:%d: ", file, line);
	va_start(ap, fmt);
	send_msg(prefix, fmt, ap);
	va_end(ap);
	failed_in_child = 1;
}

void kxp_test_skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	send_msg("", fmt, ap);
	va_end(ap);
	fflush(stdout);
	_exit(EXIT_SKIP);
}

const char *kxp_test_srcdir(void)
{
	const char *d = getenv("KXP_SRCDIR");

	return d ? d : ".";
}

const char *kxp_test_builddir(void)
{
	static char buf[4096];
	const char *d = getenv("KXP_BUILD");

	if (d)
		return d;
	snprintf(buf, sizeof(buf), "%s/build", kxp_test_srcdir());
	return buf;
}

static int run_one(int i, int *skipped)
{
	int pfd[2], status;
	char msg[MSG_LEN] = "";
	pid_t pid;
	ssize_t r, off = 0;

	*skipped = 0;
	if (pipe(pfd))
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		msg_fd = pfd[1];
		alarm(kxp_test_timeout);
		tests[i].fn();
		fflush(stdout);
		_exit(failed_in_child ? 1 : 0);
	}
	close(pfd[1]);
	while ((r = read(pfd[0], msg + off, sizeof(msg) - 1 - off)) > 0)
		off += r;
	msg[off] = 0;
	close(pfd[0]);
	waitpid(pid, &status, 0);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		printf("PASS: %s/%s\n", kxp_test_suite, tests[i].name);
		return 0;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_SKIP) {
		printf("SKIP: %s/%s: skipped: %s\n", kxp_test_suite, tests[i].name, msg);
		*skipped = 1;
		return 0;
	}
	if (WIFSIGNALED(status))
		printf("FAIL: %s/%s: killed by signal %d%s%s\n", kxp_test_suite, tests[i].name,
		       WTERMSIG(status), WTERMSIG(status) == SIGALRM ? " (timeout)" : "",
		       msg[0] ? msg : "");
	else
		printf("FAIL: %s/%s: %s\n", kxp_test_suite, tests[i].name, msg[0] ? msg : "failed");
	return 1;
}

int main(int argc, char **argv)
{
	int pass = 0, fail = 0, skip = 0, i, j;
	const char *s = getenv("KXP_TEST_SUITE");
	const char *t = getenv("KXP_TEST_TIMEOUT");

	if (s)
		kxp_test_suite = s;
	if (t)
		kxp_test_timeout = (unsigned)atoi(t);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 0; i < n_tests; i++) {
		int sk, match = argc < 2;

		for (j = 1; j < argc; j++)
			if (strstr(tests[i].name, argv[j]))
				match = 1;
		if (!match)
			continue;
		if (run_one(i, &sk))
			fail++;
		else if (sk)
			skip++;
		else
			pass++;
	}
	printf("%s: %d passed, %d failed, %d skipped\n", kxp_test_suite, pass, fail, skip);
	return fail ? 1 : 0;
}
