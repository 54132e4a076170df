/* agentlat: the outside view of `kxp agent` for bench/scenarios/70-agent.sh.
 *   agentlat sync --instance I --expect N --t0 NS [--timeout S]
 *       polls the instance's pinned kxp_svc4 until it holds N frontends; prints
 *       {"pinned_ms", "first_fe_ms", "all_fe_ms"} relative to T0 (CLOCK_REALTIME ns).
 *   agentlat changes --instance I --ctrl HOST:PORT --metrics HOST:PORT --changes FILE [--gap-ms G]
 *       FILE: one change a line, "ADDR PORT COUNT JSON": POST JSON (an
 *       EndpointSlice) to the test API server's /apply, poll kxp_svc4's entry
 *       ADDR:PORT/TCP until its backend count is COUNT, then read the agent's
 *       metrics until the change was observed there; prints one JSON object
 *       per change. Needs the network namespace of the agent (nsenter). */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/prctl.h>

#include <bpf/bpf.h>
#include <curl/curl.h>

#include <kxp/abi.h>

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "agentlat: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

static const char *instance;

static int svc_map(void)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/fs/bpf/kxp-%s/kxp_svc4", instance);
	return bpf_obj_get(path);
}

static long count_entries(int fd)
{
	struct kxp_svc_key k, next;
	void *prev = NULL;
	long n = 0;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		k = next;
		prev = &k;
		n++;
	}
	return n;
}

/* ---- sync ------------------------------------------------------------------------- */
static int cmd_sync(long expect, double t0_ns, double timeout_s)
{
	double start = real_ns(), pinned = -1, first = -1, all = -1, t;
	int fd = -1;
	long n = 0;

	while ((t = real_ns()) - start < timeout_s * 1e9) {
		if (fd < 0) {
			fd = svc_map();
			if (fd < 0) {
				sleep_us(2000);
				continue;
			}
			pinned = t;
		}
		n = count_entries(fd);
		t = real_ns();
		if (n > 0 && first < 0)
			first = t;
		if (n >= expect) {
			all = t;
			break;
		}
		/* a full scan of the map is the poll: leave the agent the CPU in between */
		sleep_us(2000);
	}
	printf("{\"pinned_ms\":%.1f,\"first_fe_ms\":%.1f,\"all_fe_ms\":%.1f,\"entries\":%ld,\"expect\":%ld}\n",
	       pinned < 0 ? -1 : (pinned - t0_ns) / 1e6, first < 0 ? -1 : (first - t0_ns) / 1e6,
	       all < 0 ? -1 : (all - t0_ns) / 1e6, n, expect);
	return all < 0;
}

/* ---- changes ------------------------------------------------------------------------- */
struct buf {
	char *p;
	size_t n;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct buf *b = ud;
	size_t len = size * nmemb;
	char *p = realloc(b->p, b->n + len + 1);

	if (!p)
		return 0;
	memcpy(p + b->n, ptr, len);
	b->n += len;
	p[b->n] = 0;
	b->p = p;
	return len;
}

struct metrics {
	double lat_sum, svc_sum;
	unsigned long long lat_count, svc_count, full_count;
};

static double metric(const char *text, const char *name)
{
	size_t len = strlen(name);

	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, name, len) && l[len] == ' ')
			return strtod(l + len + 1, NULL);
	return -1;
}

static void scrape(CURL *c, const char *url, struct metrics *m)
{
	struct buf b = { 0 };
	CURLcode rc;

	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	if ((rc = curl_easy_perform(c)) != CURLE_OK || !b.p)
		die("GET %s: %s", url, curl_easy_strerror(rc));
	m->lat_sum = metric(b.p, "kxp_network_programming_duration_seconds_sum");
	m->lat_count = (unsigned long long)metric(b.p, "kxp_network_programming_duration_seconds_count");
	m->svc_sum = metric(b.p, "kxp_sync_duration_seconds_sum{mode=\"service\"}");
	m->svc_count = (unsigned long long)metric(b.p, "kxp_sync_duration_seconds_count{mode=\"service\"}");
	m->full_count = (unsigned long long)metric(b.p, "kxp_syncs_total{mode=\"full\"}");
	free(b.p);
}

static void post(CURL *c, const char *url, const char *body)
{
	struct buf b = { 0 };
	long code = 0;
	CURLcode rc;

	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	if ((rc = curl_easy_perform(c)) != CURLE_OK)
		die("POST %s: %s", url, curl_easy_strerror(rc));
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (code != 200)
		die("POST %s: HTTP %ld: %s", url, code, b.p ? b.p : "");
	free(b.p);
}

static int cmd_changes(const char *ctrl, const char *metrics, const char *file, long gap_ms)
{
	char url_apply[256], url_metrics[256], addr[64];
	size_t cap = 0;
	char *line = NULL;
	FILE *f = fopen(file, "r");
	CURL *c = curl_easy_init();
	struct metrics m0, m1;
	int fd = svc_map(), k = 0;

	if (!f)
		die("%s: %s", file, strerror(errno));
	if (!c)
		die("curl_easy_init failed");
	if (fd < 0)
		die("instance %s: no pinned kxp_svc4: %s", instance, strerror(errno));
	/* nanosleep's default 50 µs slack would be most of a poll interval */
	prctl(PR_SET_TIMERSLACK, 1000UL);
	snprintf(url_apply, sizeof(url_apply), "http://%s/apply", ctrl);
	snprintf(url_metrics, sizeof(url_metrics), "http://%s/metrics", metrics);
	scrape(c, url_metrics, &m0);
	while (getline(&line, &cap, f) > 0) {
		unsigned port, want;
		int off = 0;
		struct kxp_svc_key key = { 0 };
		struct kxp_svc_val v;
		double t0, t_post, t1 = -1, t_obs = -1;
		bool seen = false;

		if (sscanf(line, "%63s %u %u %n", addr, &port, &want, &off) != 3 || !off)
			die("%s: bad line %d", file, k + 1);
		if (inet_pton(AF_INET, addr, &key.addr) != 1)
			die("%s: bad address %s", file, addr);
		key.port = htons(port);
		key.proto = IPPROTO_TCP;
		key.scope = KXP_SCOPE_DEFAULT;
		line[strcspn(line, "\n")] = 0;

		t0 = mono_ms();
		post(c, url_apply, line + off);
		t_post = mono_ms();
		/* the svc entry is written last for a service (its count makes the
		 * new slots usable), so its count is when the change took effect */
		while (mono_ms() - t0 < 5000) {
			if (!bpf_map_lookup_elem(fd, &key, &v) && v.count == want) {
				t1 = mono_ms();
				seen = true;
				break;
			}
			sleep_us(20);
		}
		/* the agent's own account of the same change */
		for (double ts = mono_ms(); mono_ms() - ts < 5000;) {
			scrape(c, url_metrics, &m1);
			if (m1.lat_count > m0.lat_count) {
				t_obs = 0;
				break;
			}
			sleep_us(2000);
		}
		printf("{\"i\":%d,\"frontend\":\"%s:%u\",\"count\":%u,\"seen\":%s,\"outside_ms\":%.3f,\"post_ms\":%.3f,"
		       "\"agent_latency_ms\":%.3f,\"agent_latency_events\":%llu,\"agent_apply_ms\":%.3f,"
		       "\"agent_applies\":%llu,\"full_syncs\":%llu}\n",
		       k, addr, port, want, seen ? "true" : "false", seen ? t1 - t0 : -1, t_post - t0,
		       t_obs < 0 ? -1 : (m1.lat_sum - m0.lat_sum) * 1e3, t_obs < 0 ? 0 : m1.lat_count - m0.lat_count,
		       t_obs < 0 ? -1 : (m1.svc_sum - m0.svc_sum) * 1e3, t_obs < 0 ? 0 : m1.svc_count - m0.svc_count,
		       t_obs < 0 ? 0 : m1.full_count - m0.full_count);
		fflush(stdout);
		if (t_obs >= 0)
			m0 = m1;
		else
			scrape(c, url_metrics, &m0);
		k++;
		sleep_us(gap_ms * 1000);
	}
	free(line);
	fclose(f);
	curl_easy_cleanup(c);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: agentlat sync --instance I --expect N --t0 NS [--timeout S]\n"
			"       agentlat changes --instance I --ctrl HOST:PORT --metrics HOST:PORT --changes FILE "
			"[--gap-ms G]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "instance", required_argument, 0, 'i' }, { "expect", required_argument, 0, 'e' },
		{ "t0", required_argument, 0, 't' },	   { "timeout", required_argument, 0, 'T' },
		{ "ctrl", required_argument, 0, 'c' },	   { "metrics", required_argument, 0, 'm' },
		{ "changes", required_argument, 0, 'f' },  { "gap-ms", required_argument, 0, 'g' },
		{ 0 },
	};
	const char *ctrl = NULL, *metrics = NULL, *file = NULL, *cmd;
	double t0 = 0, timeout = 120;
	long expect = -1, gap = 20;
	int c;

	if (argc < 2)
		usage();
	cmd = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'i': instance = optarg; break;
		case 'e': expect = atol(optarg); break;
		case 't': t0 = strtod(optarg, NULL); break;
		case 'T': timeout = strtod(optarg, NULL); break;
		case 'c': ctrl = optarg; break;
		case 'm': metrics = optarg; break;
		case 'f': file = optarg; break;
		case 'g': gap = atol(optarg); break;
		default: usage();
		}
	}
	if (!instance)
		usage();
	if (!strcmp(cmd, "sync") && expect > 0 && t0 > 0)
		return cmd_sync(expect, t0, timeout);
	if (!strcmp(cmd, "changes") && ctrl && metrics && file) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		return cmd_changes(ctrl, metrics, file, gap);
	}
	usage();
}
