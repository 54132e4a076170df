/* connload: bounded short-connection load generator and its echo server.
 * "run": keeps --concurrency non-blocking connects in flight with epoll; each
 * connection is connect -> write a request -> read the reply -> close, and its
 * latency runs from connect() to the reply. Stops after --duration seconds or
 * --max-conns connections; prints one JSON line (rate, p50/p99/p99.9).
 * With --keepalive each connection stays open and carries request after
 * request: the rate and latencies are then per request (write to reply), the
 * per-packet cost of established flows after conntrack.
 * "serve": a tiny epoll server that answers each request and closes after the
 * client does. Both pin themselves to --cpu with sched_setaffinity. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONC 1024
#define REQ "GET /\n"
#define REPLY "ok\n"

static struct {
	bool serve;
	struct sockaddr_in dst;
	int port, cpu;
	unsigned concurrency, max_conns, timeout_ms;
	double duration;
	bool keepalive;
} opt = { .cpu = -1, .concurrency = 32, .max_conns = 200000, .timeout_ms = 1000, .duration = 2 };

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -errno : 0;
}

/* ---- server ------------------------------------------------------------------ */

static int serve(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(opt.port) };
	struct epoll_event ev = { .events = EPOLLIN }, evs[256];
	int one = 1, lfd, ep;
	uint64_t deadline = now_ns() + (uint64_t)(opt.duration * 1e9);

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return perror("socket"), 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 4096))
		return perror("bind/listen"), 1;
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.data.fd = lfd;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev))
		return perror("epoll"), 1;
	printf("connload serving on %d\n", opt.port);
	fflush(stdout);
	while (!stop && now_ns() < deadline) {
		int n = epoll_wait(ep, evs, 256, 200);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			char buf[512];
			ssize_t r;

			if (fd == lfd) {
				int c;

				while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					struct epoll_event cev = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = c };

					if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev))
						close(c);
				}
				continue;
			}
			r = read(fd, buf, sizeof(buf));
			if (r > 0 && memchr(buf, '\n', r)) {
				if (write(fd, REPLY, sizeof(REPLY) - 1) < 0)
					r = 0;
			}
			/* the client closes first (TIME_WAIT stays on its side) */
			if (r == 0 || (r < 0 && errno != EAGAIN)) {
				epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
				close(fd);
			}
		}
	}
	return 0;
}

/* ---- client ---------------------------------------------------------------------- */

enum { E_CONNECT, E_TIMEOUT, E_REFUSED, E_RESET, E_ADDR, E_OTHER, E__N };
static const char *const err_names[E__N] = { "connect", "timeout", "refused", "reset", "addr_in_use", "other" };

struct flow {
	int fd;
	bool connected;
	uint64_t start;     /* connect(); with --keepalive, the current request's write */
};

static struct flow flows[MAX_CONC];
static uint32_t *lat_ns;
static uint64_t done, started, errs[E__N];
/* --keepalive: false once the run is over, so connections close after their reply */
static bool more_requests = true;

static int classify(int err)
{
	switch (err) {
	case ETIMEDOUT:
		return E_TIMEOUT;
	case ECONNREFUSED:
		return E_REFUSED;
	case ECONNRESET:
	case EPIPE:
		return E_RESET;
	case EADDRNOTAVAIL:
	case EADDRINUSE:
		return E_ADDR;
	default:
		return E_OTHER;
	}
}

static void finish(int ep, struct flow *f, int err)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, f->fd, NULL);
	close(f->fd);
	f->fd = -1;
	if (err) {
		errs[classify(err)]++;
		return;
	}
	if (done < opt.max_conns) {
		uint64_t d = now_ns() - f->start;

		lat_ns[done++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
	}
}

static int start(int ep, struct flow *f)
{
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.ptr = f };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		errs[E_OTHER]++;
		return -errno;
	}
	f->fd = fd;
	f->connected = false;
	f->start = now_ns();
	started++;
	if (connect(fd, (struct sockaddr *)&opt.dst, sizeof(opt.dst)) && errno != EINPROGRESS) {
		int err = errno;

		f->fd = -1;
		close(fd);
		errs[classify(err)]++;
		return -err;
	}
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
		close(fd);
		f->fd = -1;
		errs[E_OTHER]++;
		return -errno;
	}
	return 0;
}

static void on_event(int ep, struct flow *f, uint32_t events)
{
	char buf[64];
	ssize_t r;

	if (!f->connected) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err || (events & (EPOLLERR | EPOLLHUP))) {
			finish(ep, f, err ? err : ECONNRESET);
			return;
		}
		if (!(events & EPOLLOUT))
			return;
		f->connected = true;
		if (opt.keepalive)
			f->start = now_ns(); /* per request: the handshake is not part of it */
		if (write(f->fd, REQ, sizeof(REQ) - 1) != sizeof(REQ) - 1) {
			finish(ep, f, errno ? errno : EIO);
			return;
		}
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = f };
		epoll_ctl(ep, EPOLL_CTL_MOD, f->fd, &ev);
		return;
	}
	r = read(f->fd, buf, sizeof(buf));
	if (r > 0 && memchr(buf, '\n', r) && opt.keepalive) {
		uint64_t now = now_ns(), d = now - f->start;

		if (done < opt.max_conns)
			lat_ns[done++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
		if (!more_requests || started >= opt.max_conns) {
			epoll_ctl(ep, EPOLL_CTL_DEL, f->fd, NULL);
			close(f->fd);
			f->fd = -1;
			return;
		}
		/* the next request on the same connection */
		f->start = now;
		started++;
		if (write(f->fd, REQ, sizeof(REQ) - 1) != sizeof(REQ) - 1)
			finish(ep, f, errno ? errno : EIO);
	} else if (r > 0 && memchr(buf, '\n', r))
		finish(ep, f, 0);
	else if (r == 0 || (r < 0 && errno != EAGAIN))
		finish(ep, f, r == 0 ? ECONNRESET : errno);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(double p)
{
	size_t i;

	if (!done)
		return 0;
	i = (size_t)(p * (done - 1) + 0.5);
	return lat_ns[i] / 1e3;
}

static int run(void)
{
	struct epoll_event evs[MAX_CONC];
	uint64_t t0, end, tmo = (uint64_t)opt.timeout_ms * 1000000ull, elapsed;
	double sum = 0;
	int ep;

	lat_ns = calloc(opt.max_conns, sizeof(*lat_ns));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!lat_ns || ep < 0)
		return perror("setup"), 1;
	for (unsigned i = 0; i < opt.concurrency; i++)
		flows[i].fd = -1;
	t0 = now_ns();
	end = t0 + (uint64_t)(opt.duration * 1e9);
	for (;;) {
		uint64_t now = now_ns();
		bool more = !stop && now < end && started < opt.max_conns;
		unsigned active = 0;
		int n;

		more_requests = more;

		for (unsigned i = 0; i < opt.concurrency; i++) {
			struct flow *f = &flows[i];

			if (f->fd >= 0 && now - f->start > tmo)
				finish(ep, f, ETIMEDOUT);
			if (f->fd < 0 && more)
				start(ep, f);
			active += f->fd >= 0;
		}
		if (!active)
			break;
		n = epoll_wait(ep, evs, MAX_CONC, 10);
		for (int i = 0; i < n; i++)
			on_event(ep, evs[i].data.ptr, evs[i].events);
	}
	elapsed = now_ns() - t0;
	qsort(lat_ns, done, sizeof(*lat_ns), cmp_u32);
	for (uint64_t i = 0; i < done; i++)
		sum += lat_ns[i];
	printf("{\"conns\":%llu,\"started\":%llu,\"elapsed_s\":%.3f,\"conns_per_s\":%.1f,"
	       "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"mean_us\":%.1f,\"max_us\":%.1f,"
	       "\"concurrency\":%u,\"keepalive\":%s,\"errors\":{",
	       (unsigned long long)done, (unsigned long long)started, elapsed / 1e9, done / (elapsed / 1e9),
	       pct(0.5), pct(0.99), pct(0.999), done ? sum / done / 1e3 : 0, done ? lat_ns[done - 1] / 1e3 : 0,
	       opt.concurrency, opt.keepalive ? "true" : "false");
	for (int i = 0; i < E__N; i++)
		printf("%s\"%s\":%llu", i ? "," : "", err_names[i], (unsigned long long)errs[i]);
	printf("}}\n");
	free(lat_ns);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: connload run --dst IP:PORT [--duration S] [--max-conns N] [--concurrency C]\n"
		   "                     [--timeout-ms T] [--cpu N] [--keepalive]\n"
		   "       connload serve --port P [--duration S] [--cpu N]\n"
		   "  run prints one JSON line: conns/s and connect-to-reply latency percentiles\n"
		   "  (--keepalive: requests/s over --concurrency open connections, request-to-reply\n"
		   "  latency; the fields keep their names: conns = requests)\n");
}

static bool parse_dst(const char *s)
{
	char ip[INET_ADDRSTRLEN];
	const char *colon = strrchr(s, ':');
	int port;

	if (!colon || colon - s >= (long)sizeof(ip))
		return false;
	snprintf(ip, sizeof(ip), "%.*s", (int)(colon - s), s);
	port = atoi(colon + 1);
	if (inet_pton(AF_INET, ip, &opt.dst.sin_addr) != 1 || port < 1 || port > 65535)
		return false;
	opt.dst.sin_family = AF_INET;
	opt.dst.sin_port = htons(port);
	return true;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dst", required_argument, NULL, 'd' },	 { "port", required_argument, NULL, 'p' },
		{ "duration", required_argument, NULL, 't' },	 { "max-conns", required_argument, NULL, 'n' },
		{ "concurrency", required_argument, NULL, 'c' }, { "timeout-ms", required_argument, NULL, 'T' },
		{ "cpu", required_argument, NULL, 'C' },	 { "help", no_argument, NULL, 'h' },
		{ "keepalive", no_argument, NULL, 'k' },
		{}
	};
	bool have_dst = false;
	int c, err;

	if (argc < 2 || (strcmp(argv[1], "run") && strcmp(argv[1], "serve"))) {
		usage(stderr);
		return 2;
	}
	opt.serve = !strcmp(argv[1], "serve");
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			have_dst = parse_dst(optarg);
			if (!have_dst)
				goto bad;
			break;
		case 'p':
			opt.port = atoi(optarg);
			if (opt.port < 1 || opt.port > 65535)
				goto bad;
			break;
		case 't':
			opt.duration = atof(optarg);
			if (opt.duration <= 0 || opt.duration > 3600)
				goto bad;
			break;
		case 'n':
			opt.max_conns = strtoul(optarg, NULL, 10);
			if (!opt.max_conns || opt.max_conns > 50000000)
				goto bad;
			break;
		case 'c':
			opt.concurrency = strtoul(optarg, NULL, 10);
			if (!opt.concurrency || opt.concurrency > MAX_CONC)
				goto bad;
			break;
		case 'T':
			opt.timeout_ms = strtoul(optarg, NULL, 10);
			if (!opt.timeout_ms || opt.timeout_ms > 60000)
				goto bad;
			break;
		case 'C':
			opt.cpu = atoi(optarg);
			break;
		case 'k':
			opt.keepalive = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind != argc || (opt.serve ? !opt.port : !have_dst))
		goto bad;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	err = pin(opt.cpu);
	if (err) {
		fprintf(stderr, "connload: sched_setaffinity(cpu %d): %s\n", opt.cpu, strerror(-err));
		return 1;
	}
	return opt.serve ? serve() : run();
bad:
	usage(stderr);
	return 2;
}
