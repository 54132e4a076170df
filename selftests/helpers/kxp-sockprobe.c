/* kxp-sockprobe: socket-level client for the socket LB e2e suite. N requests
 * to IP:PORT over TCP, connected UDP or unconnected UDP (a socket each, or one
 * for all with --one-socket); prints one JSON summary: the kxp-echo backends
 * that answered, the client addresses they saw, what getpeername() and
 * recvfrom() reported, and failures by errno name (ECONNREFUSED, EPERM...). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_KEYS 32

enum mode { M_TCP, M_UDP_CONN, M_UDP_UNCONN };

struct tally {
	char key[64];
	unsigned n;
};

struct table {
	const char *name;
	struct tally v[MAX_KEYS];
	int n;
};

static struct table backends = { "backends" }, clients = { "clients" }, peers = { "getpeername" },
		    froms = { "recvfrom" }, errs = { "errors" };
static unsigned ok;

static void bump(struct table *t, const char *key)
{
	for (int i = 0; i < t->n; i++)
		if (!strcmp(t->v[i].key, key)) {
			t->v[i].n++;
			return;
		}
	if (t->n < MAX_KEYS) {
		snprintf(t->v[t->n].key, sizeof(t->v[0].key), "%s", key);
		t->v[t->n++].n = 1;
	}
}

static void print_table(const struct table *t, bool last)
{
	printf("\"%s\":{", t->name);
	for (int i = 0; i < t->n; i++)
		printf("%s\"%s\":%u", i ? "," : "", t->v[i].key, t->v[i].n);
	printf("}%s", last ? "" : ",");
}

static const char *addr_str(const struct sockaddr_in *a, char *buf, size_t len)
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
	snprintf(buf, len, "%s:%u", ip, ntohs(a->sin_port));
	return buf;
}

static void fail(const char *what, int err)
{
	char key[64];
	const char *name = strerrorname_np(err);

	snprintf(key, sizeof(key), "%s", name ? name : "unknown");
	bump(&errs, key);
	(void)what;
}

/* "NAME ip:port\n" from kxp-echo: backend name and the client it saw. */
static bool record_reply(char *buf)
{
	char *sp = strchr(buf, ' '), *colon;

	if (!sp)
		return false;
	*sp = '\0';
	colon = strrchr(sp + 1, ':');
	if (colon)
		*colon = '\0';
	bump(&backends, buf);
	bump(&clients, sp + 1);
	return true;
}

static int one(enum mode m, int *fdp, const struct sockaddr_in *dst, unsigned timeout_ms)
{
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	static const char req[] = "hello\n";
	struct sockaddr_in peer, from;
	socklen_t len;
	char buf[256], key[64];
	ssize_t n;
	int fd = *fdp;

	if (fd < 0) {
		fd = socket(AF_INET, (m == M_TCP ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		*fdp = fd;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (m != M_UDP_UNCONN) {
			if (connect(fd, (const struct sockaddr *)dst, sizeof(*dst)))
				return -errno;
			len = sizeof(peer);
			if (getpeername(fd, (struct sockaddr *)&peer, &len))
				return -errno;
			bump(&peers, addr_str(&peer, key, sizeof(key)));
		}
	}
	if (m == M_UDP_UNCONN)
		n = sendto(fd, req, sizeof(req) - 1, 0, (const struct sockaddr *)dst, sizeof(*dst));
	else
		n = send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	len = sizeof(from);
	memset(&from, 0, sizeof(from));
	n = recvfrom(fd, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &len);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ECONNRESET;
	buf[n] = '\0';
	if (m != M_TCP)
		bump(&froms, addr_str(&from, key, sizeof(key)));
	return record_reply(buf) ? 0 : -EBADMSG;
}

static void usage(void)
{
	fprintf(stderr, "usage: kxp-sockprobe --tcp|--udp-connected|--udp-unconnected --dst IP:PORT\n"
			"                     [--count N] [--timeout-ms MS] [--one-socket] [--max-seconds S]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tcp", no_argument, NULL, 't' },
		{ "udp-connected", no_argument, NULL, 'c' },
		{ "udp-unconnected", no_argument, NULL, 'u' },
		{ "dst", required_argument, NULL, 'd' },
		{ "count", required_argument, NULL, 'n' },
		{ "timeout-ms", required_argument, NULL, 'T' },
		{ "one-socket", no_argument, NULL, 'o' },
		{ "max-seconds", required_argument, NULL, 'm' },
		{},
	};
	struct sockaddr_in dst = { .sin_family = AF_INET };
	unsigned count = 1, timeout_ms = 1000, done = 0;
	double max_s = 30;
	enum mode m = M_TCP;
	bool one_socket = false, have_dst = false;
	const char *dst_str = "";
	struct timespec t0, t;
	int c, fd = -1;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			m = M_TCP;
			break;
		case 'c':
			m = M_UDP_CONN;
			break;
		case 'u':
			m = M_UDP_UNCONN;
			break;
		case 'd': {
			char ip[64], *colon;

			snprintf(ip, sizeof(ip), "%s", optarg);
			colon = strrchr(ip, ':');
			if (!colon)
				goto bad;
			*colon = '\0';
			if (inet_pton(AF_INET, ip, &dst.sin_addr) != 1)
				goto bad;
			dst.sin_port = htons((uint16_t)atoi(colon + 1));
			dst_str = optarg;
			have_dst = true;
			break;
		}
		case 'n':
			count = (unsigned)atoi(optarg);
			break;
		case 'T':
			timeout_ms = (unsigned)atoi(optarg);
			break;
		case 'o':
			one_socket = true;
			break;
		case 'm':
			max_s = atof(optarg);
			break;
		default:
			goto bad;
		}
	}
	if (!have_dst || !count || count > 100000 || !timeout_ms)
		goto bad;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (; done < count; done++) {
		int err;

		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec + (t.tv_nsec - t0.tv_nsec) / 1e9 > max_s)
			break;
		err = one(m, &fd, &dst, timeout_ms);
		if (err)
			fail("request", -err);
		else
			ok++;
		if (!one_socket || err) {
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0)
		close(fd);
	printf("{\"mode\":\"%s\",\"dst\":\"%s\",\"count\":%u,\"done\":%u,\"ok\":%u,",
	       m == M_TCP ? "tcp" : m == M_UDP_CONN ? "udp-connected" : "udp-unconnected", dst_str, count, done, ok);
	print_table(&backends, false);
	print_table(&clients, false);
	print_table(&peers, false);
	print_table(&froms, false);
	print_table(&errs, true);
	printf("}\n");
	return 0;
bad:
	usage();
	return 2;
}
