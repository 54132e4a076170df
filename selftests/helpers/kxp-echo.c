/* kxp-echo: test echo server for the e2e suites. Answers every line read on a
 * TCP connection and every UDP datagram with "NAME <client-ip>:<client-port>",
 * so a probe learns which backend it reached and which source address that
 * backend saw (the proof of "no SNAT"). Exits by itself after --max-seconds. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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

#define MAX_LISTEN 16
#define MAX_CONNS 256
#define LINE_MAX_LEN 512

enum fd_kind { FD_TCP_LISTEN, FD_UDP, FD_CONN };

struct slot {
	int fd;
	enum fd_kind kind;
	struct sockaddr_in peer;
	char buf[LINE_MAX_LEN];
	size_t len;
};

static const char *name = "echo";
static struct slot slots[MAX_LISTEN + MAX_CONNS];
static int n_slots;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: kxp-echo --name NAME [--tcp PORT]... [--udp PORT]... [--max-seconds N]\n"
		   "  answers each TCP line and UDP datagram with \"NAME <client-ip>:<client-port>\\n\"\n");
}

static int parse_port(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < 1 || v > 65535)
		return -1;
	return (int)v;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int add_slot(int fd, enum fd_kind kind, const struct sockaddr_in *peer)
{
	struct slot *s;

	if (n_slots >= (int)(sizeof(slots) / sizeof(slots[0])))
		return -ENOSPC;
	s = &slots[n_slots++];
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->kind = kind;
	if (peer)
		s->peer = *peer;
	return 0;
}

static void del_slot(int i)
{
	close(slots[i].fd);
	slots[i] = slots[--n_slots];
}

static int open_listener(int type, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, fd;

	fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 512) < 0)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static int format_reply(char *out, size_t cap, const struct sockaddr_in *peer)
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &peer->sin_addr, ip, sizeof(ip));
	return snprintf(out, cap, "%s %s:%u\n", name, ip, ntohs(peer->sin_port));
}

static void handle_udp(struct slot *s)
{
	char buf[2048], reply[LINE_MAX_LEN];
	struct sockaddr_in peer;
	socklen_t plen;
	int n;

	/* Drain what is queued; each datagram gets one answer. */
	for (int i = 0; i < 64; i++) {
		plen = sizeof(peer);
		if (recvfrom(s->fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &plen) < 0)
			return;
		n = format_reply(reply, sizeof(reply), &peer);
		sendto(s->fd, reply, n, 0, (struct sockaddr *)&peer, plen);
	}
}

static void handle_accept(struct slot *s)
{
	struct sockaddr_in peer;
	socklen_t plen;
	int fd;

	for (;;) {
		plen = sizeof(peer);
		fd = accept4(s->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (add_slot(fd, FD_CONN, &peer) < 0)
			close(fd); /* full: the client sees a reset/EOF, bounded memory */
	}
}

/* Returns false when the connection is finished. */
static bool handle_conn(struct slot *s)
{
	char reply[LINE_MAX_LEN];
	ssize_t n;
	char *nl;

	n = read(s->fd, s->buf + s->len, sizeof(s->buf) - 1 - s->len);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		return false;
	if (n < 0)
		return true;
	s->len += n;
	/* One answer per complete line; an over-long line is answered once too. */
	while ((nl = memchr(s->buf, '\n', s->len)) || s->len == sizeof(s->buf) - 1) {
		size_t used = nl ? (size_t)(nl - s->buf) + 1 : s->len;
		int r = format_reply(reply, sizeof(reply), &s->peer);

		if (write(s->fd, reply, r) != r)
			return false;
		memmove(s->buf, s->buf + used, s->len - used);
		s->len -= used;
	}
	return true;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "tcp", required_argument, NULL, 't' },
		{ "udp", required_argument, NULL, 'u' },
		{ "max-seconds", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	int tcp_ports[MAX_LISTEN], udp_ports[MAX_LISTEN], n_tcp = 0, n_udp = 0;
	double max_seconds = 120, deadline;
	struct pollfd pfd[MAX_LISTEN + MAX_CONNS];
	int c, port;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			name = optarg;
			break;
		case 't':
		case 'u':
			port = parse_port(optarg);
			if (port < 0 || n_tcp >= MAX_LISTEN || n_udp >= MAX_LISTEN) {
				fprintf(stderr, "kxp-echo: bad or too many ports: %s\n", optarg);
				return 2;
			}
			if (c == 't')
				tcp_ports[n_tcp++] = port;
			else
				udp_ports[n_udp++] = port;
			break;
		case 'm':
			max_seconds = atof(optarg);
			if (max_seconds <= 0) {
				fprintf(stderr, "kxp-echo: bad --max-seconds: %s\n", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || n_tcp + n_udp == 0) {
		usage(stderr);
		return 2;
	}

	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);

	for (int i = 0; i < n_tcp + n_udp; i++) {
		bool tcp = i < n_tcp;
		int p = tcp ? tcp_ports[i] : udp_ports[i - n_tcp];
		int fd = open_listener(tcp ? SOCK_STREAM : SOCK_DGRAM, p);

		if (fd < 0) {
			fprintf(stderr, "kxp-echo: %s port %d: %s\n", tcp ? "tcp" : "udp", p, strerror(-fd));
			return 1;
		}
		add_slot(fd, tcp ? FD_TCP_LISTEN : FD_UDP, NULL);
	}
	/* Tell a waiting test that the sockets are bound (it polls for this line). */
	printf("kxp-echo %s ready\n", name);
	fflush(stdout);

	deadline = now_s() + max_seconds;
	while (!stop) {
		double left = deadline - now_s();
		int n, ready;

		if (left <= 0)
			break;
		n = n_slots;
		for (int i = 0; i < n; i++)
			pfd[i] = (struct pollfd){ .fd = slots[i].fd, .events = POLLIN };
		ready = poll(pfd, n, left > 1 ? 1000 : (int)(left * 1000) + 1);
		if (ready <= 0)
			continue;
		/* Walk backwards: del_slot moves the last slot into the freed one. */
		for (int i = n - 1; i >= 0; i--) {
			if (!pfd[i].revents)
				continue;
			switch (slots[i].kind) {
			case FD_TCP_LISTEN:
				handle_accept(&slots[i]);
				break;
			case FD_UDP:
				handle_udp(&slots[i]);
				break;
			case FD_CONN:
				if (!handle_conn(&slots[i]))
					del_slot(i);
				break;
			}
		}
	}
	return 0;
}
