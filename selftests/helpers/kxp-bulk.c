/* kxp-bulk: large requests and replies for the e2e suites (fragments, PMTU).
 * "serve" answers each TCP request (bytes up to '\n') and each UDP datagram
 * with "NAME <client-ip>:<client-port> <request-bytes>\n" padded to
 * --reply-size; "send" sends requests of --size bytes and prints one JSON
 * summary, including ICMP errors (EMSGSIZE with the reported MTU). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 64
#define MAX_NAMES 16
#define MAX_SEEN 16
#define MAX_DGRAM 65507
#define MAX_SIZE (16u << 20)

enum fail_kind { F_TIMEOUT, F_REFUSED, F_RESET, F_UNREACH, F_MSGSIZE, F_BAD_REPLY, F_SHORT, F_OTHER, F__N };
static const char *const fail_names[F__N] = { "timeout",  "refused",   "reset", "unreachable",
					      "msgsize",  "bad_reply", "short_reply", "other" };

static struct {
	bool serve, tcp, udp_set;
	const char *name;
	int tcp_port, udp_port;
	unsigned reply_size, size, count, timeout_ms, src_port;
	int pmtudisc;
	double max_seconds;
	struct sockaddr_in dst;
	const char *dst_str;
} opt = { .name = "bulk", .reply_size = 0, .size = 64, .count = 1, .timeout_ms = 2000,
	  .pmtudisc = -1, .max_seconds = 60 };

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kxp-bulk serve --name NAME [--tcp-port PORT] [--udp-port PORT] [--reply-size N] [--max-seconds S]\n"
		"       kxp-bulk send --tcp|--udp --dst IP:PORT [--size N] [--count C] [--reply-size N]\n"
		"                     [--src-port P] [--pmtudisc want|do|dont] [--timeout-ms T] [--max-seconds S]\n"
		"  serve: answers \"NAME ip:port LEN\\n\" padded to --reply-size bytes (TCP: then closes)\n"
		"  send: requests of --size bytes; a reply counts as ok when it names LEN == --size and is\n"
		"        at least --reply-size bytes long (a kxp-echo answer, without LEN, only with\n"
		"        --reply-size 0); prints a JSON summary, exit 0 when it ran\n");
}

/* ---- server ------------------------------------------------------------------ */

struct conn {
	int fd;
	struct sockaddr_in peer;
	unsigned long got;
};

/* The answer: header line, then filler up to reply_size, ending in '\n'. */
static size_t build_reply(char *out, size_t cap, const struct sockaddr_in *peer, unsigned long got)
{
	char ip[INET_ADDRSTRLEN];
	size_t n;

	inet_ntop(AF_INET, &peer->sin_addr, ip, sizeof(ip));
	n = snprintf(out, cap, "%s %s:%u %lu\n", opt.name, ip, ntohs(peer->sin_port), got);
	if (n < opt.reply_size && opt.reply_size <= cap) {
		memset(out + n, 'r', opt.reply_size - n);
		out[opt.reply_size - 1] = '\n';
		n = opt.reply_size;
	}
	return n;
}

static int listener(int type, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, fd;

	fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || (type == SOCK_STREAM && listen(fd, 128) < 0)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* Blocking write with the socket's send timeout; the reply is small enough. */
static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w <= 0) {
			if (w < 0 && errno == EINTR)
				continue;
			return;
		}
		p += w;
		n -= w;
	}
}

static int serve(void)
{
	static char buf[MAX_DGRAM + 1], reply[MAX_DGRAM + 1];
	struct conn conns[MAX_CONNS];
	struct pollfd pfd[MAX_CONNS + 2];
	int n_conns = 0, tfd = -1, ufd = -1;
	double deadline = now_ms() + opt.max_seconds * 1e3;

	if (opt.reply_size > MAX_DGRAM) {
		fprintf(stderr, "kxp-bulk: --reply-size at most %d\n", MAX_DGRAM);
		return 2;
	}
	if (opt.tcp_port && (tfd = listener(SOCK_STREAM, opt.tcp_port)) < 0) {
		fprintf(stderr, "kxp-bulk: tcp %d: %s\n", opt.tcp_port, strerror(-tfd));
		return 1;
	}
	if (opt.udp_port && (ufd = listener(SOCK_DGRAM, opt.udp_port)) < 0) {
		fprintf(stderr, "kxp-bulk: udp %d: %s\n", opt.udp_port, strerror(-ufd));
		return 1;
	}
	printf("kxp-bulk %s ready\n", opt.name);
	fflush(stdout);

	while (!stop && now_ms() < deadline) {
		int n = 0, r;

		pfd[n++] = (struct pollfd){ .fd = tfd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = ufd, .events = POLLIN };
		for (int i = 0; i < n_conns; i++)
			pfd[n++] = (struct pollfd){ .fd = conns[i].fd, .events = POLLIN };
		r = poll(pfd, n, 500);
		if (r <= 0)
			continue;
		if (pfd[0].revents) {
			struct sockaddr_in peer;
			socklen_t plen = sizeof(peer);
			int fd = accept4(tfd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);

			if (fd >= 0 && n_conns < MAX_CONNS)
				conns[n_conns++] = (struct conn){ .fd = fd, .peer = peer };
			else if (fd >= 0)
				close(fd);
		}
		if (pfd[1].revents) {
			for (int k = 0; k < 64; k++) {
				struct sockaddr_in peer;
				socklen_t plen = sizeof(peer);
				ssize_t got = recvfrom(ufd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &plen);
				size_t len;

				if (got < 0)
					break;
				len = build_reply(reply, sizeof(reply), &peer, got);
				sendto(ufd, reply, len, 0, (struct sockaddr *)&peer, plen);
			}
		}
		/* Backwards: a finished connection is replaced by the last one. */
		for (int i = n_conns - 1; i >= 0; i--) {
			struct conn *c = &conns[i];
			bool done = false, drop = false;
			ssize_t got;

			if (!pfd[2 + i].revents)
				continue;
			for (;;) {
				got = read(c->fd, buf, sizeof(buf));
				if (got > 0) {
					c->got += got;
					if (memchr(buf, '\n', got)) {
						done = true;
						break;
					}
					continue;
				}
				if (got == 0 || errno != EAGAIN)
					drop = true;
				break;
			}
			if (done) {
				struct timeval tv = { .tv_sec = 2 };
				size_t len = build_reply(reply, sizeof(reply), &c->peer, c->got);

				/* Blocking write, bounded by the send timeout: replies are small. */
				fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) & ~O_NONBLOCK);
				setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
				write_all(c->fd, reply, len);
				shutdown(c->fd, SHUT_WR);
				drop = true;
			}
			if (drop) {
				close(c->fd);
				*c = conns[--n_conns];
			}
		}
	}
	return 0;
}

/* ---- client -------------------------------------------------------------------- */

struct backend {
	char name[64];
	unsigned count;
	char clients[MAX_SEEN][64];
	unsigned client_n[MAX_SEEN];
	int n_clients;
	char last_seen[64];
};

static struct backend backends[MAX_NAMES];
static int n_backends;
static unsigned fails[F__N], ok, not_run, reply_min = ~0u;
static int pmtu_icmp, ip_mtu, icmp_errno, icmp_type = -1, icmp_code = -1;
static char local_str[64], last_error_from[INET_ADDRSTRLEN];

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
	case EMSGSIZE:
		return F_MSGSIZE;
	case EBADMSG:
		return F_BAD_REPLY;
	case ENODATA:
		return F_SHORT;
	default:
		return F_OTHER;
	}
}

/* "NAME ip:port LEN\n...": which backend, what it saw of us, how much it got. */
static int record(const char *reply, size_t len)
{
	char name[64], seen[64], ip[64], *colon;
	unsigned long got;
	struct backend *b = NULL;

	switch (sscanf(reply, "%63s %63s %lu", name, seen, &got)) {
	case 2:
		/* kxp-echo's "NAME ip:port": it does not say how much it got */
		if (opt.reply_size)
			return -EBADMSG;
		break;
	case 3:
		if (got != opt.size || len < opt.reply_size)
			return -ENODATA;
		break;
	default:
		return -EBADMSG;
	}
	if (!(colon = strrchr(seen, ':')))
		return -EBADMSG;
	for (int i = 0; i < n_backends; i++)
		if (!strcmp(backends[i].name, name))
			b = &backends[i];
	if (!b) {
		if (n_backends == MAX_NAMES)
			return -EBADMSG;
		b = &backends[n_backends++];
		snprintf(b->name, sizeof(b->name), "%s", name);
	}
	b->count++;
	snprintf(b->last_seen, sizeof(b->last_seen), "%s", seen);
	snprintf(ip, sizeof(ip), "%.*s", (int)(colon - seen), seen);
	for (int i = 0; i < b->n_clients; i++) {
		if (!strcmp(b->clients[i], ip)) {
			b->client_n[i]++;
			ip[0] = 0;
			break;
		}
	}
	if (ip[0] && b->n_clients < MAX_SEEN) {
		snprintf(b->clients[b->n_clients], 64, "%s", ip);
		b->client_n[b->n_clients++] = 1;
	}
	if (len < reply_min)
		reply_min = len;
	ok++;
	return 0;
}

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

/* Drain the error queue: the last ICMP error's errno (and MTU for EMSGSIZE). */
static int read_errqueue(int fd)
{
	char cbuf[512], dummy[64];
	int err = 0;

	for (;;) {
		struct iovec iov = { .iov_base = dummy, .iov_len = sizeof(dummy) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				    .msg_controllen = sizeof(cbuf) };
		int sk_err;
		socklen_t len = sizeof(sk_err);

		if (recvmsg(fd, &m, MSG_ERRQUEUE) < 0)
			break;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
			struct sock_extended_err *e;
			struct sockaddr_in *off;

			if (c->cmsg_level != SOL_IP || c->cmsg_type != IP_RECVERR)
				continue;
			e = (struct sock_extended_err *)CMSG_DATA(c);
			err = e->ee_errno;
			if (e->ee_origin == SO_EE_ORIGIN_ICMP) {
				icmp_errno = e->ee_errno;
				icmp_type = e->ee_type;
				icmp_code = e->ee_code;
				off = (struct sockaddr_in *)SO_EE_OFFENDER(e);
				inet_ntop(AF_INET, &off->sin_addr, last_error_from, sizeof(last_error_from));
				if (e->ee_errno == EMSGSIZE)
					pmtu_icmp = e->ee_info;
			}
		}
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &sk_err, &len);
	}
	return err;
}

static void note_mtu(int fd)
{
	int mtu;
	socklen_t len = sizeof(mtu);

	if (!getsockopt(fd, SOL_IP, IP_MTU, &mtu, &len))
		ip_mtu = mtu;
}

static int client_socket(int type)
{
	int fd, one = 1;
	struct sockaddr_in l;
	socklen_t llen = sizeof(l);

	fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_IP, IP_RECVERR, &one, sizeof(one));
	if (opt.pmtudisc >= 0)
		setsockopt(fd, SOL_IP, IP_MTU_DISCOVER, &opt.pmtudisc, sizeof(opt.pmtudisc));
	if (opt.src_port) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(opt.src_port) };

		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
			goto fail;
	}
	/* Connected, also for UDP: the kernel then matches ICMP errors and
	 * filters replies from any other address than the frontend. */
	if (type == SOCK_STREAM) {
		struct timeval tv = { .tv_sec = opt.timeout_ms / 1000, .tv_usec = opt.timeout_ms % 1000 * 1000 };
		double deadline = now_ms() + opt.timeout_ms;
		int err = 0, fl = fcntl(fd, F_GETFL);
		socklen_t elen = sizeof(err);

		/* Non-blocking connect, then blocking I/O bounded by the timeouts. */
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
		if (connect(fd, (struct sockaddr *)&opt.dst, sizeof(opt.dst)) < 0 && errno != EINPROGRESS)
			goto fail;
		if (!wait_fd(fd, POLLOUT, deadline)) {
			errno = ETIMEDOUT;
			goto fail;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err) {
			errno = err;
			goto fail;
		}
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	} else if (connect(fd, (struct sockaddr *)&opt.dst, sizeof(opt.dst)) < 0) {
		goto fail;
	}
	if (!getsockname(fd, (struct sockaddr *)&l, &llen)) {
		char ip[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &l.sin_addr, ip, sizeof(ip));
		snprintf(local_str, sizeof(local_str), "%s:%u", ip, ntohs(l.sin_port));
	}
	return fd;
fail:
	one = -errno;
	read_errqueue(fd); /* a refused connect: was it an ICMP error or a reset? */
	close(fd);
	return one;
}

static int tcp_once(char *req, char *reply, size_t cap)
{
	double deadline;
	size_t sent = 0, got = 0;
	int fd, err = 0;

	fd = client_socket(SOCK_STREAM);
	if (fd < 0)
		return fd;
	deadline = now_ms() + opt.timeout_ms;
	while (sent < opt.size) {
		ssize_t w = send(fd, req + sent, opt.size - sent, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			err = errno == EAGAIN ? -ETIMEDOUT : -errno;
			goto out;
		}
		sent += w;
	}
	while (got < cap - 1) {
		ssize_t r;

		if (!wait_fd(fd, POLLIN, deadline)) {
			err = got ? -ENODATA : -ETIMEDOUT;
			goto out;
		}
		r = recv(fd, reply + got, cap - 1 - got, 0);
		if (r == 0)
			break;
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			err = -errno;
			goto out;
		}
		got += r;
		/* complete: a whole line and at least --reply-size (kxp-echo keeps the connection open) */
		if (got >= opt.reply_size && memchr(reply, '\n', got))
			break;
	}
	reply[got] = 0;
	err = got ? record(reply, got) : -ECONNRESET;
out:
	note_mtu(fd);
	read_errqueue(fd);
	close(fd);
	return err;
}

static int udp_once(char *req, char *reply, size_t cap)
{
	double deadline;
	int fd, err, ev;
	ssize_t r;

	fd = client_socket(SOCK_DGRAM);
	if (fd < 0)
		return fd;
	deadline = now_ms() + opt.timeout_ms;
	if (send(fd, req, opt.size, 0) < 0) {
		err = -errno;
		read_errqueue(fd);
		goto out;
	}
	for (;;) {
		ev = wait_fd(fd, POLLIN, deadline);
		if (!ev) {
			err = -ETIMEDOUT;
			break;
		}
		if (ev & POLLERR) {
			err = read_errqueue(fd);
			if (err) {
				err = -err;
				break;
			}
			continue;
		}
		r = recv(fd, reply, cap - 1, 0);
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			err = -errno;
			read_errqueue(fd);
			break;
		}
		reply[r] = 0;
		err = record(reply, r);
		break;
	}
out:
	note_mtu(fd);
	close(fd);
	return err;
}

static void print_json(void)
{
	unsigned failed = 0;

	for (int i = 0; i < F__N; i++)
		failed += fails[i];
	printf("{\"proto\":\"%s\",\"dst\":\"%s\",\"size\":%u,\"reply_size\":%u,\"count\":%u,\"ok\":%u,"
	       "\"failed\":%u,\"not_run\":%u,\"failures\":{",
	       opt.tcp ? "tcp" : "udp", opt.dst_str, opt.size, opt.reply_size, opt.count, ok, failed, not_run);
	for (int i = 0; i < F__N; i++)
		printf("%s\"%s\":%u", i ? "," : "", fail_names[i], fails[i]);
	printf("},\"backends\":{");
	for (int i = 0; i < n_backends; i++) {
		struct backend *b = &backends[i];

		printf("%s\"%s\":{\"count\":%u,\"last_seen\":\"%s\",\"clients\":{", i ? "," : "", b->name, b->count,
		       b->last_seen);
		for (int k = 0; k < b->n_clients; k++)
			printf("%s\"%s\":%u", k ? "," : "", b->clients[k], b->client_n[k]);
		printf("}}");
	}
	printf("},\"reply_min\":%u,\"icmp_errno\":%d,\"icmp_type\":%d,\"icmp_code\":%d,\"icmp_from\":\"%s\",\"pmtu_icmp\":%d,\"ip_mtu\":%d,"
	       "\"local\":\"%s\"}\n",
	       ok ? reply_min : 0, icmp_errno, icmp_type, icmp_code, last_error_from, pmtu_icmp, ip_mtu, local_str);
}

static int send_main(void)
{
	size_t cap = (opt.reply_size > MAX_DGRAM ? opt.reply_size : MAX_DGRAM) + 256;
	char *req = malloc(opt.size + 1), *reply = malloc(cap);
	double end = now_ms() + opt.max_seconds * 1e3;

	if (!req || !reply) {
		fprintf(stderr, "kxp-bulk: out of memory\n");
		return 1;
	}
	if (!opt.tcp && opt.size > MAX_DGRAM) {
		fprintf(stderr, "kxp-bulk: UDP --size at most %d\n", MAX_DGRAM);
		return 2;
	}
	/* Filler without '\n' so the TCP server sees one request; ends in '\n'. */
	memset(req, 'q', opt.size);
	req[opt.size - 1] = '\n';
	for (unsigned i = 0; i < opt.count; i++) {
		int err;

		if (now_ms() >= end) {
			not_run = opt.count - i;
			break;
		}
		err = opt.tcp ? tcp_once(req, reply, cap) : udp_once(req, reply, cap);
		if (err)
			fails[classify(-err)]++;
	}
	print_json();
	free(req);
	free(reply);
	return 0;
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (!*s || *s == '-' || *end || errno || v > max)
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
		{ "name", required_argument, NULL, 'n' },   { "tcp", no_argument, NULL, 'T' },
		{ "udp", no_argument, NULL, 'U' },        { "tcp-port", required_argument, NULL, 'a' },
		{ "udp-port", required_argument, NULL, 'b' },    { "reply-size", required_argument, NULL, 'r' },
		{ "max-seconds", required_argument, NULL, 'm' }, { "dst", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 's' },   { "count", required_argument, NULL, 'c' },
		{ "src-port", required_argument, NULL, 'p' }, { "pmtudisc", required_argument, NULL, 'P' },
		{ "timeout-ms", required_argument, NULL, 't' }, { "help", no_argument, NULL, 'h' },
		{}
	};
	unsigned long v;
	int c;

	if (argc < 2 || (strcmp(argv[1], "serve") && strcmp(argv[1], "send"))) {
		usage(argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
		return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
	}
	opt.serve = !strcmp(argv[1], "serve");
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			opt.name = optarg;
			break;
		case 'a':
		case 'b':
			if (!opt.serve || !parse_uint(optarg, 65535, &v) || !v)
				goto bad;
			*(c == 'a' ? &opt.tcp_port : &opt.udp_port) = v;
			break;
		case 'T':
		case 'U':
			if (opt.serve || opt.udp_set)
				goto bad;
			opt.udp_set = true;
			opt.tcp = c == 'T';
			break;
		case 'r':
			if (!parse_uint(optarg, MAX_SIZE, &v))
				goto bad;
			opt.reply_size = v;
			break;
		case 'm':
			if (!parse_uint(optarg, 3600, &v) || !v)
				goto bad;
			opt.max_seconds = v;
			break;
		case 'd':
			if (!parse_dst(optarg))
				goto bad;
			break;
		case 's':
			if (!parse_uint(optarg, MAX_SIZE, &v) || !v)
				goto bad;
			opt.size = v;
			break;
		case 'c':
			if (!parse_uint(optarg, 100000, &v) || !v)
				goto bad;
			opt.count = v;
			break;
		case 'p':
			if (!parse_uint(optarg, 65535, &v) || !v)
				goto bad;
			opt.src_port = v;
			break;
		case 'P':
			if (!strcmp(optarg, "want"))
				opt.pmtudisc = IP_PMTUDISC_WANT;
			else if (!strcmp(optarg, "do"))
				opt.pmtudisc = IP_PMTUDISC_DO;
			else if (!strcmp(optarg, "dont"))
				opt.pmtudisc = IP_PMTUDISC_DONT;
			else
				goto bad;
			break;
		case 't':
			if (!parse_uint(optarg, 600000, &v) || !v)
				goto bad;
			opt.timeout_ms = v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc)
		goto bad_usage;
	signal(SIGPIPE, SIG_IGN);
	if (opt.serve) {
		if (!opt.tcp_port && !opt.udp_port)
			goto bad_usage;
		signal(SIGTERM, on_signal);
		signal(SIGINT, on_signal);
		return serve();
	}
	if (!opt.udp_set || !opt.dst_str)
		goto bad_usage;
	return send_main();
bad:
	fprintf(stderr, "kxp-bulk: bad or misplaced option %s\n", argv[optind - 1]);
bad_usage:
	usage(stderr);
	return 2;
}
