/* kxp-probe: bounded traffic client for the e2e suites. Sends N requests to
 * IP:PORT (TCP: a connection each, UDP: a socket each; one for all with
 * --keepalive), reads the kxp-echo answers and prints one JSON summary: which
 * backend answered how often, which client address each backend saw, where
 * UDP replies came from, and the failures by kind. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_NAMES 32
#define MAX_SEEN 32

enum fail_kind { F_TIMEOUT, F_REFUSED, F_RESET, F_UNREACH, F_WRONG_SRC, F_BAD_REPLY, F_OTHER, F__N };
static const char *const fail_names[F__N] = { "timeout", "refused", "reset", "unreachable",
					      "wrong_source", "bad_reply", "other" };

struct counted {
	char key[64];
	unsigned count;
};

struct backend {
	char name[64];
	unsigned count;
	unsigned src_preserved; /* the backend saw exactly our socket's address:port */
	struct counted clients[MAX_SEEN]; /* client IPs the backend saw */
	int n_clients;
};

static struct {
	bool tcp, keepalive;
	struct sockaddr_in dst;
	const char *dst_str;
	unsigned count, timeout_ms, interval_ms, max_failures;
	int src_port;
	double max_seconds;
} opt = { .timeout_ms = 1000, .max_seconds = 60 };

static struct backend backends[MAX_NAMES];
static int n_backends;
static struct counted reply_srcs[MAX_SEEN], local_addrs[MAX_SEEN];
static int n_reply_srcs, n_local_addrs;
static unsigned fails[F__N], ok, not_run, connections;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void bump(struct counted *arr, int *n, const char *key)
{
	for (int i = 0; i < *n; i++) {
		if (!strcmp(arr[i].key, key)) {
			arr[i].count++;
			return;
		}
	}
	if (*n < MAX_SEEN) {
		snprintf(arr[*n].key, sizeof(arr[*n].key), "%s", key);
		arr[(*n)++].count = 1;
	}
}

static void addr_str(const struct sockaddr_in *a, char *out, size_t cap, bool with_port)
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
	if (with_port)
		snprintf(out, cap, "%s:%u", ip, ntohs(a->sin_port));
	else
		snprintf(out, cap, "%s", ip);
}

static enum fail_kind classify(int err)
{
	switch (err) {
	case ETIMEDOUT:
	case EAGAIN:
		return F_TIMEOUT;
	case ECONNREFUSED:
		return F_REFUSED;
	case ECONNRESET:
	case EPIPE:
		return F_RESET;
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EHOSTDOWN:
		return F_UNREACH;
	default:
		return F_OTHER;
	}
}

/* Record one answer "NAME ip:port": which backend, and what it saw of us. */
static bool record_reply(const char *line, const struct sockaddr_in *local)
{
	char name[64], seen[64], mine[64], ip[64];
	struct backend *b = NULL;
	char *colon;

	if (sscanf(line, "%63s %63s", name, seen) != 2 || !(colon = strrchr(seen, ':')))
		return false;
	for (int i = 0; i < n_backends; i++)
		if (!strcmp(backends[i].name, name))
			b = &backends[i];
	if (!b) {
		if (n_backends == MAX_NAMES)
			return false;
		b = &backends[n_backends++];
		snprintf(b->name, sizeof(b->name), "%s", name);
	}
	b->count++;
	addr_str(local, mine, sizeof(mine), true);
	if (!strcmp(seen, mine))
		b->src_preserved++;
	snprintf(ip, sizeof(ip), "%.*s", (int)(colon - seen), seen);
	bump(b->clients, &b->n_clients, ip);
	addr_str(local, mine, sizeof(mine), false);
	bump(local_addrs, &n_local_addrs, mine);
	ok++;
	return true;
}

/* Wait for events on fd until the absolute deadline (ms); 0 on timeout. */
static int wait_fd(int fd, short events, double deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	double left;
	int r;

	do {
		left = deadline - now_ms();
		if (left <= 0)
			return 0;
		r = poll(&p, 1, (int)left + 1);
	} while (r < 0 && errno == EINTR);
	return r > 0 ? p.revents : r;
}

static int tcp_connect(int *out, struct sockaddr_in *local)
{
	int fd, one = 1, err = 0;
	socklen_t len = sizeof(err);
	double deadline = now_ms() + opt.timeout_ms;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (opt.src_port) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(opt.src_port) };

		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
			goto fail;
	}
	connections++;
	if (connect(fd, (struct sockaddr *)&opt.dst, sizeof(opt.dst)) < 0 && errno != EINPROGRESS)
		goto fail;
	if (!wait_fd(fd, POLLOUT, deadline)) {
		close(fd);
		return -ETIMEDOUT;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
		close(fd);
		return -(err ? err : EIO);
	}
	len = sizeof(*local);
	getsockname(fd, (struct sockaddr *)local, &len);
	*out = fd;
	return 0;
fail:
	err = -errno;
	close(fd);
	return err;
}

/* One request on a connected TCP socket: a line out, a line back. */
static int tcp_request(int fd, const struct sockaddr_in *local)
{
	static const char req[] = "hello\n";
	double deadline = now_ms() + opt.timeout_ms;
	char buf[256];
	size_t len = 0;

	if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != sizeof(req) - 1)
		return -errno;
	while (!memchr(buf, '\n', len)) {
		ssize_t n;

		if (!wait_fd(fd, POLLIN, deadline))
			return -ETIMEDOUT;
		n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (n == 0)
			return -ECONNRESET; /* closed before answering */
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -errno;
		}
		len += n;
		if (len == sizeof(buf) - 1)
			break;
	}
	buf[len] = '\0';
	return record_reply(buf, local) ? 0 : -EBADMSG;
}

static int udp_socket(int *out)
{
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Unconnected, so a reply from an untranslated backend address is seen
	 * (and counted as wrong_source) instead of silently filtered; IP_RECVERR
	 * still delivers ICMP errors to it. */
	setsockopt(fd, SOL_IP, IP_RECVERR, &one, sizeof(one));
	if (opt.src_port) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(opt.src_port) };

		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
			int err = -errno;

			close(fd);
			return err;
		}
	}
	connections++;
	*out = fd;
	return 0;
}

/* Read one queued ICMP error; returns its errno, or 0 if none. */
static int udp_error(int fd)
{
	char cbuf[512], dummy[64];
	struct iovec iov = { .iov_base = dummy, .iov_len = sizeof(dummy) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	int err = 0, sk_err;
	socklen_t len = sizeof(sk_err);

	if (recvmsg(fd, &m, MSG_ERRQUEUE) >= 0) {
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
			if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR)
				err = ((struct sock_extended_err *)CMSG_DATA(c))->ee_errno;
		}
	}
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &sk_err, &len); /* clear sk_err */
	return err;
}

static int udp_request(int fd)
{
	static const char req[] = "hello\n";
	double deadline = now_ms() + opt.timeout_ms;
	struct sockaddr_in from, local;
	socklen_t flen, llen = sizeof(local);
	char buf[256], src[64], dst[64];
	ssize_t n;
	int ev, err;

	if (sendto(fd, req, sizeof(req) - 1, 0, (struct sockaddr *)&opt.dst, sizeof(opt.dst)) < 0)
		return -errno;
	getsockname(fd, (struct sockaddr *)&local, &llen);
	if (local.sin_addr.s_addr == INADDR_ANY) {
		/* Unconnected: learn the source the kernel picks for dst. */
		int probe = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in l2;
		socklen_t l2len = sizeof(l2);

		if (probe >= 0 && !connect(probe, (struct sockaddr *)&opt.dst, sizeof(opt.dst)) &&
		    !getsockname(probe, (struct sockaddr *)&l2, &l2len))
			local.sin_addr = l2.sin_addr;
		if (probe >= 0)
			close(probe);
	}
	for (;;) {
		ev = wait_fd(fd, POLLIN, deadline);
		if (!ev)
			return -ETIMEDOUT;
		if (ev & POLLERR) {
			err = udp_error(fd);
			if (err)
				return -err;
			continue;
		}
		flen = sizeof(from);
		n = recvfrom(fd, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &flen);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			err = errno;
			udp_error(fd);
			return -err;
		}
		buf[n] = '\0';
		addr_str(&from, src, sizeof(src), true);
		bump(reply_srcs, &n_reply_srcs, src);
		addr_str(&opt.dst, dst, sizeof(dst), true);
		if (strcmp(src, dst))
			return -EXDEV; /* answered, but not from the address we sent to */
		return record_reply(buf, &local) ? 0 : -EBADMSG;
	}
}

static unsigned n_failed(void)
{
	unsigned n = 0;

	for (int i = 0; i < F__N; i++)
		n += fails[i];
	return n;
}

static void fail(int err)
{
	if (err == -EXDEV)
		fails[F_WRONG_SRC]++;
	else if (err == -EBADMSG)
		fails[F_BAD_REPLY]++;
	else
		fails[classify(-err)]++;
}

static void run(void)
{
	double end = now_ms() + opt.max_seconds * 1e3;
	struct sockaddr_in local;
	int fd = -1, err;

	for (unsigned i = 0; i < opt.count; i++) {
		if (now_ms() >= end) {
			not_run = opt.count - i;
			break;
		}
		if (i && opt.interval_ms)
			usleep(opt.interval_ms * 1000);
		if (fd < 0) {
			err = opt.tcp ? tcp_connect(&fd, &local) : udp_socket(&fd);
			if (err) {
				fail(err);
				goto check;
			}
		}
		err = opt.tcp ? tcp_request(fd, &local) : udp_request(fd);
		if (err)
			fail(err);
		/* keepalive reuses the socket until it fails; a failed TCP connection is replaced */
		if (!opt.keepalive || (err && opt.tcp)) {
			close(fd);
			fd = -1;
		}
check:
		/* A broken path should not cost count x timeout: give up early. */
		if (opt.max_failures && n_failed() >= opt.max_failures) {
			not_run = opt.count - i - 1;
			break;
		}
	}
	if (fd >= 0)
		close(fd);
}

static void print_counted(const struct counted *arr, int n)
{
	printf("{");
	for (int i = 0; i < n; i++)
		printf("%s\"%s\":%u", i ? "," : "", arr[i].key, arr[i].count);
	printf("}");
}

static void print_json(void)
{
	unsigned failed = n_failed();

	printf("{\"proto\":\"%s\",\"dst\":\"%s\",\"count\":%u,\"ok\":%u,\"failed\":%u,\"not_run\":%u,"
	       "\"connections\":%u,\"failures\":{",
	       opt.tcp ? "tcp" : "udp", opt.dst_str, opt.count, ok, failed, not_run, connections);
	for (int i = 0; i < F__N; i++)
		printf("%s\"%s\":%u", i ? "," : "", fail_names[i], fails[i]);
	printf("},\"backends\":{");
	for (int i = 0; i < n_backends; i++) {
		const struct backend *b = &backends[i];

		printf("%s\"%s\":{\"count\":%u,\"src_preserved\":%u,\"clients\":", i ? "," : "", b->name,
		       b->count, b->src_preserved);
		print_counted(b->clients, b->n_clients);
		printf("}");
	}
	printf("},\"reply_sources\":");
	print_counted(reply_srcs, n_reply_srcs);
	printf(",\"local_addrs\":");
	print_counted(local_addrs, n_local_addrs);
	printf("}\n");
}

static void usage(FILE *f)
{
	fprintf(f, "usage: kxp-probe --tcp|--udp --dst IP:PORT --count N [--timeout-ms T]\n"
		   "                 [--interval-ms I] [--src-port P] [--keepalive] [--max-seconds S]\n"
		   "                 [--max-failures F]\n"
		   "  prints a JSON summary; exits 0 when it ran (even with failures), 2 on usage errors\n");
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s == '\0' || *s == '-' || *end != '\0' || errno || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_dst(const char *s)
{
	char ip[INET_ADDRSTRLEN];
	const char *colon = strrchr(s, ':');
	unsigned long port;

	if (!colon || colon - s >= (long)sizeof(ip))
		return false;
	snprintf(ip, sizeof(ip), "%.*s", (int)(colon - s), s);
	if (inet_pton(AF_INET, ip, &opt.dst.sin_addr) != 1 || !parse_uint(colon + 1, 65535, &port) || !port)
		return false;
	opt.dst.sin_family = AF_INET;
	opt.dst.sin_port = htons(port);
	opt.dst_str = s;
	return true;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tcp", no_argument, NULL, 'T' },
		{ "udp", no_argument, NULL, 'U' },
		{ "dst", required_argument, NULL, 'd' },
		{ "count", required_argument, NULL, 'c' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "src-port", required_argument, NULL, 's' },
		{ "keepalive", no_argument, NULL, 'k' },
		{ "max-seconds", required_argument, NULL, 'm' },
		{ "max-failures", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	bool have_proto = false;
	unsigned long v;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'T':
		case 'U':
			if (have_proto) {
				fprintf(stderr, "kxp-probe: give one of --tcp, --udp\n");
				return 2;
			}
			have_proto = true;
			opt.tcp = c == 'T';
			break;
		case 'd':
			if (!parse_dst(optarg)) {
				fprintf(stderr, "kxp-probe: bad --dst (IP:PORT): %s\n", optarg);
				return 2;
			}
			break;
		case 'c':
			if (!parse_uint(optarg, 1000000, &v) || !v)
				goto bad;
			opt.count = v;
			break;
		case 't':
			if (!parse_uint(optarg, 600000, &v) || !v)
				goto bad;
			opt.timeout_ms = v;
			break;
		case 'i':
			if (!parse_uint(optarg, 60000, &v))
				goto bad;
			opt.interval_ms = v;
			break;
		case 's':
			if (!parse_uint(optarg, 65535, &v) || !v)
				goto bad;
			opt.src_port = v;
			break;
		case 'f':
			if (!parse_uint(optarg, 1000000, &v))
				goto bad;
			opt.max_failures = v;
			break;
		case 'k':
			opt.keepalive = true;
			break;
		case 'm':
			if (!parse_uint(optarg, 3600, &v) || !v)
				goto bad;
			opt.max_seconds = v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || !have_proto || !opt.dst_str || !opt.count) {
		usage(stderr);
		return 2;
	}
	run();
	print_json();
	return 0;
bad:
	for (const struct option *o = opts; o->name; o++)
		if (o->val == c)
			fprintf(stderr, "kxp-probe: bad value for --%s: %s\n", o->name, optarg);
	return 2;
}
