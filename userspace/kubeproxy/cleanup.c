/* kxp cleanup --kube-proxy: find what kube-proxy left in this network
 * namespace and remove exactly that, nothing else.
 *
 * Why the standard tools and not netlink: the iptables rule formats differ
 * between the legacy (setsockopt blobs) and nft (nf_tables expressions)
 * backends and between versions of the xtables extensions; iptables-save and
 * iptables-restore are the only stable interface to both, and restore applies
 * one table atomically. The same holds for nft, ipset and ipvsadm. So this
 * file plans from the tools' text output (pure functions, unit-tested) and
 * then runs the tools. Library code: no logging, results in the report. */
#include "kubeproxy/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

const char *const kxp_kpc_kind_names[] = {
	[KXP_KPC_RULE] = "rule",	 [KXP_KPC_CHAIN] = "chain", [KXP_KPC_NFT_TABLE] = "table",
	[KXP_KPC_IPVS] = "ipvs-service", [KXP_KPC_DEVICE] = "device", [KXP_KPC_IPSET] = "ipset",
};

/* A dump larger than this is not a node's ruleset (kube-proxy at 50,000
 * services writes ~100 MiB): refuse rather than exhaust memory. */
#define MAX_TOOL_OUTPUT (512u << 20)

static int add_item(struct kxp_kpc_report *r, const char *backend, const char *table, enum kxp_kpc_kind kind,
		    const char *what, size_t len)
{
	struct kxp_kpc_item *it;

	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 32;
		struct kxp_kpc_item *nv = realloc(r->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		r->v = nv;
		r->cap = cap;
	}
	it = &r->v[r->n];
	memset(it, 0, sizeof(*it));
	snprintf(it->backend, sizeof(it->backend), "%s", backend);
	snprintf(it->table, sizeof(it->table), "%s", table ? table : "");
	it->kind = kind;
	it->what = strndup(what, len);
	if (!it->what)
		return -ENOMEM;
	r->n++;
	return 0;
}

static void __attribute__((format(printf, 2, 3))) note(struct kxp_kpc_report *r, const char *fmt, ...)
{
	va_list ap;

	if (r->n_notes >= KXP_KPC_MAX_NOTES)
		return;
	va_start(ap, fmt);
	vsnprintf(r->notes[r->n_notes++], sizeof(r->notes[0]), fmt, ap);
	va_end(ap);
}

void kxp_kpc_report_free(struct kxp_kpc_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].what);
	free(r->v);
	memset(r, 0, sizeof(*r));
}

/* ---- iptables ------------------------------------------------------------------ */

bool kxp_kpc_is_proxy_chain(const char *table, const char *chain)
{
	if (strncmp(chain, "KUBE-", 5))
		return false;
	/* kubelet's: its canary (it re-creates its rules when it vanishes), the
	 * backend hint kube-proxy and CNIs read to pick legacy or nft, and the
	 * filter-table firewall that blocks martian localnet traffic
	 * (CVE-2020-8558). IPVS mode's KUBE-FIREWALL lives in nat: that one is
	 * kube-proxy's. */
	if (!strcmp(chain, "KUBE-KUBELET-CANARY"))
		return false;
	if (!strcmp(table, "mangle") && !strcmp(chain, "KUBE-IPTABLES-HINT"))
		return false;
	if (!strcmp(table, "filter") && !strcmp(chain, "KUBE-FIREWALL"))
		return false;
	return true;
}

/* Next whitespace-separated token of an iptables-save line; a "quoted
 * string" (with \" inside) is one token, so a comment that reads
 * "-j KUBE-X" is never taken for a target. Returns the token length, 0 at
 * the end; *p advances. The token is copied unquoted into tok. */
static size_t next_token(const char **p, char *tok, size_t toklen)
{
	const char *s = *p;
	size_t n = 0;

	while (*s == ' ' || *s == '\t')
		s++;
	if (!*s || *s == '\n') {
		*p = s;
		return 0;
	}
	if (*s == '"') {
		for (s++; *s && *s != '"' && *s != '\n'; s++) {
			if (*s == '\\' && s[1])
				s++;
			if (n + 1 < toklen)
				tok[n] = *s;
			n++;
		}
		if (*s == '"')
			s++;
		n = n ? n : 1; /* "" is a token too */
	} else {
		for (; *s && *s != ' ' && *s != '\t' && *s != '\n'; s++) {
			if (n + 1 < toklen)
				tok[n] = *s;
			n++;
		}
	}
	tok[n < toklen ? n : toklen - 1] = 0;
	*p = s;
	return n;
}

struct ipt_table {
	char name[16];
	const char *start, *end; /* the table's lines in the dump */
};

static bool chain_listed(char (*v)[32], size_t n, const char *c)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], c))
			return true;
	return false;
}

/* Append to a growable string. */
struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t len)
{
	if (b->oom)
		return;
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *np;

		while (b->len + len + 1 > cap)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, len);
	b->len += len;
	b->p[b->len] = 0;
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* One table of the dump: which chains go, which foreign rules jump to them. */
static int plan_table(const struct ipt_table *t, const char *backend, struct kxp_kpc_report *r,
		      struct kxp_kpc_ipt_plan *plan)
{
	char (*chains)[32] = NULL;
	size_t n_chains = 0, cap = 0, first = r->n;
	struct sbuf sb = {};
	char tok[256], chain[64];
	const char *l, *nl;
	int err = 0;

	/* chain declarations: ":NAME POLICY [p:b]" */
	for (l = t->start; l < t->end; l = nl + 1) {
		nl = memchr(l, '\n', (size_t)(t->end - l));
		if (!nl)
			nl = t->end;
		if (*l != ':')
			continue;
		const char *p = l + 1;

		if (!next_token(&p, tok, sizeof(tok)) || !kxp_kpc_is_proxy_chain(t->name, tok))
			continue;
		if (strlen(tok) >= 32)
			return -EINVAL; /* the kernel caps chain names at 28 characters */
		if (n_chains == cap) {
			char (*nv)[32] = realloc(chains, (cap = cap ? cap * 2 : 64) * sizeof(*nv));

			if (!nv) {
				free(chains);
				return -ENOMEM;
			}
			chains = nv;
		}
		snprintf(chains[n_chains++], 32, "%s", tok);
	}
	if (!n_chains)
		goto out;

	snprintf(chain, sizeof(chain), "*%s\n", t->name);
	sb_str(&sb, chain);
	/* rules of chains that stay, jumping to a chain that goes: delete them
	 * by their full specification (restore's -D takes what save printed) */
	for (l = t->start; l < t->end; l = nl + 1) {
		const char *p = l + 2;
		bool jumps = false;

		nl = memchr(l, '\n', (size_t)(t->end - l));
		if (!nl)
			nl = t->end;
		if (strncmp(l, "-A ", 3))
			continue;
		if (!next_token(&p, chain, sizeof(chain)) || chain_listed(chains, n_chains, chain))
			continue;
		while (next_token(&p, tok, sizeof(tok))) {
			bool target = !strcmp(tok, "-j") || !strcmp(tok, "--jump") || !strcmp(tok, "-g") ||
				      !strcmp(tok, "--goto");

			if (target && next_token(&p, tok, sizeof(tok)) && chain_listed(chains, n_chains, tok))
				jumps = true;
		}
		if (!jumps)
			continue;
		err = add_item(r, backend, t->name, KXP_KPC_RULE, l, (size_t)(nl - l));
		if (err)
			goto out;
		sb_str(&sb, "-D");
		sb_add(&sb, l + 2, (size_t)(nl - l - 2));
		sb_str(&sb, "\n");
	}
	/* flush every chain first: they jump to each other */
	for (size_t i = 0; i < n_chains; i++) {
		sb_str(&sb, "-F ");
		sb_str(&sb, chains[i]);
		sb_str(&sb, "\n");
	}
	for (size_t i = 0; i < n_chains; i++) {
		err = add_item(r, backend, t->name, KXP_KPC_CHAIN, chains[i], strlen(chains[i]));
		if (err)
			goto out;
		sb_str(&sb, "-X ");
		sb_str(&sb, chains[i]);
		sb_str(&sb, "\n");
	}
	sb_str(&sb, "COMMIT\n");
	if (sb.oom) {
		err = -ENOMEM;
		goto out;
	}
	if (plan->n_tables >= KXP_KPC_MAX_TABLES) {
		err = -E2BIG;
		goto out;
	}
	snprintf(plan->tables[plan->n_tables], sizeof(plan->tables[0]), "%s", t->name);
	plan->scripts[plan->n_tables] = sb.p;
	plan->first_item[plan->n_tables] = first;
	plan->n_items[plan->n_tables] = r->n - first;
	plan->n_tables++;
	sb.p = NULL;
out:
	free(sb.p);
	free(chains);
	return err;
}

int kxp_kpc_plan_iptables(const char *save, const char *backend, struct kxp_kpc_report *r,
			  struct kxp_kpc_ipt_plan *plan)
{
	const char *l, *nl, *end = save + strlen(save);
	struct ipt_table t = {};
	bool in = false;
	int err;

	memset(plan, 0, sizeof(*plan));
	for (l = save; l < end; l = nl + 1) {
		nl = memchr(l, '\n', (size_t)(end - l));
		if (!nl)
			nl = end;
		if (*l == '*') {
			if (in || nl - l - 1 <= 0 || nl - l - 1 >= (long)sizeof(t.name))
				return -EINVAL;
			snprintf(t.name, sizeof(t.name), "%.*s", (int)(nl - l - 1), l + 1);
			t.start = nl + 1 < end ? nl + 1 : end;
			in = true;
		} else if (!strncmp(l, "COMMIT", 6)) {
			if (!in)
				return -EINVAL;
			t.end = l;
			err = plan_table(&t, backend, r, plan);
			if (err)
				return err;
			in = false;
		}
	}
	return in ? -EINVAL : 0;
}

void kxp_kpc_ipt_plan_free(struct kxp_kpc_ipt_plan *plan)
{
	for (size_t i = 0; i < plan->n_tables; i++)
		free(plan->scripts[i]);
	memset(plan, 0, sizeof(*plan));
}

/* ---- nftables, IPVS, ipsets ----------------------------------------------------------- */

int kxp_kpc_plan_nft(const char *list, struct kxp_kpc_report *r)
{
	const char *l = list;
	char fam[16], name[64];
	int found = 0;

	/* kube-proxy's nftables mode: "table ip kube-proxy", "table ip6 kube-proxy" */
	while (l && *l) {
		if (sscanf(l, "table %15s %63s", fam, name) == 2 && !strcmp(name, "kube-proxy") &&
		    (!strcmp(fam, "ip") || !strcmp(fam, "ip6"))) {
			if (add_item(r, "nft", fam, KXP_KPC_NFT_TABLE, name, strlen(name)))
				return -ENOMEM;
			found++;
		}
		l = strchr(l, '\n');
		l = l ? l + 1 : NULL;
	}
	return found;
}

int kxp_kpc_plan_ipvs(const char *save, const char *const *addrs, size_t n_addrs, uint16_t np_min,
		      uint16_t np_max, struct kxp_kpc_report *r)
{
	const char *l = save;
	char flag[16], ep[96], addr[80], what[128];
	int found = 0;

	while (l && *l) {
		/* "-A -t 10.96.0.1:443 -s rr", "-A -u [fd00::a]:53 -s rr" */
		if (sscanf(l, "-A %15s %95s", flag, ep) == 2 && (!strcmp(flag, "-t") || !strcmp(flag, "-u") ||
								 !strcmp(flag, "--sctp-service"))) {
			char *colon = strrchr(ep, ':');
			unsigned long port = colon ? strtoul(colon + 1, NULL, 10) : 0;
			bool ours = port >= np_min && port <= np_max;

			if (colon) {
				snprintf(addr, sizeof(addr), "%.*s", (int)(colon - ep), ep);
				if (addr[0] == '[') {
					memmove(addr, addr + 1, strlen(addr));
					addr[strcspn(addr, "]")] = 0;
				}
				for (size_t i = 0; i < n_addrs && !ours; i++)
					ours = !strcmp(addrs[i], addr);
			}
			if (ours) {
				snprintf(what, sizeof(what), "%s %s", flag, ep);
				if (add_item(r, "ipvsadm", "", KXP_KPC_IPVS, what, strlen(what)))
					return -ENOMEM;
				found++;
			}
		}
		l = strchr(l, '\n');
		l = l ? l + 1 : NULL;
	}
	return found;
}

int kxp_kpc_plan_ipset(const char *list, struct kxp_kpc_report *r)
{
	const char *l = list;
	int found = 0;

	while (l && *l) {
		size_t len = strcspn(l, "\n");

		if (len > 5 && !strncmp(l, "KUBE-", 5)) {
			if (add_item(r, "ipset", "", KXP_KPC_IPSET, l, len))
				return -ENOMEM;
			found++;
		}
		l += len;
		if (*l)
			l++;
	}
	return found;
}

/* ---- running the tools ------------------------------------------------------------------ */

static bool have_tool(const char *name)
{
	const char *path = getenv("PATH");
	char buf[4096];

	if (!path || !*path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	while (*path) {
		size_t len = strcspn(path, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, path, name);
		if (len && !access(buf, X_OK))
			return true;
		path += len;
		if (*path)
			path++;
	}
	return false;
}

struct tool_out {
	char *out, *err;
	size_t out_len, err_len;
	int status; /* exit status, 128+signal, or -errno */
};

static void tool_out_free(struct tool_out *t)
{
	free(t->out);
	free(t->err);
	memset(t, 0, sizeof(*t));
}

static int grow_read(int fd, char **buf, size_t *len, size_t *cap)
{
	ssize_t n;

	if (*len + 4096 + 1 > *cap) {
		size_t nc = *cap ? *cap * 2 : 16384;
		char *nb;

		if (nc > MAX_TOOL_OUTPUT)
			return -E2BIG;
		nb = realloc(*buf, nc);
		if (!nb)
			return -ENOMEM;
		*buf = nb;
		*cap = nc;
	}
	n = read(fd, *buf + *len, *cap - *len - 1);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : -errno;
	*len += (size_t)n;
	(*buf)[*len] = 0;
	return n > 0;
}

/* Run argv (PATH lookup) with `input` on stdin; stdout and stderr captured.
 * LC_ALL=C: the output is parsed. Returns 0 (t->status set) or -errno. */
static int run_tool(char *const argv[], const char *input, struct tool_out *t)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	size_t out_cap = 0, err_cap = 0, in_off = 0, in_len = input ? strlen(input) : 0;
	bool out_open = true, err_open = true;
	int ret = 0, st;
	pid_t pid;

	memset(t, 0, sizeof(*t));
	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
		ret = -errno;
		goto close;
	}
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		goto close;
	}
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		setenv("LC_ALL", "C", 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	in[0] = out[1] = err[1] = -1;
	if (!in_len) {
		close(in[1]);
		in[1] = -1;
	}
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	while (out_open || err_open || in[1] >= 0) {
		struct pollfd p[3] = {
			{ .fd = out_open ? out[0] : -1, .events = POLLIN },
			{ .fd = err_open ? err[0] : -1, .events = POLLIN },
			{ .fd = in[1], .events = POLLOUT },
		};
		int r;

		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (p[0].revents) {
			r = grow_read(out[0], &t->out, &t->out_len, &out_cap);
			if (r < 0) {
				ret = r;
				break;
			}
			out_open = r > 0;
		}
		if (p[1].revents) {
			r = grow_read(err[0], &t->err, &t->err_len, &err_cap);
			if (r < 0) {
				ret = r;
				break;
			}
			err_open = r > 0;
		}
		if (p[2].revents) {
			ssize_t n = (p[2].revents & POLLOUT) ? write(in[1], input + in_off, in_len - in_off) : -1;

			if (n > 0)
				in_off += (size_t)n;
			if (n < 0 && errno == EAGAIN)
				continue;
			if (n < 0 || in_off == in_len) {
				close(in[1]);
				in[1] = -1;
			}
		}
	}
	if (ret)
		kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!ret)
		t->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
close:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
	}
	if (ret)
		tool_out_free(t);
	return ret;
}

/* The first line of a tool's stderr, for a note. */
static const char *first_line(const struct tool_out *t, char *buf, size_t len)
{
	const char *s = t->err && *t->err ? t->err : t->out ? t->out : "";

	snprintf(buf, len, "%.*s", (int)strcspn(s, "\n"), s);
	if (!buf[0])
		snprintf(buf, len, "exit status %d", t->status);
	return buf;
}

static void mark(struct kxp_kpc_report *r, size_t first, size_t n, int err)
{
	for (size_t i = first; i < first + n && i < r->n; i++) {
		r->v[i].err = err;
		if (err)
			r->failed++;
	}
}

static int do_iptables(const struct kxp_kpc_opts *o, const char *backend, struct kxp_kpc_report *r)
{
	char save[48], restore[48], line[256];
	struct kxp_kpc_ipt_plan plan;
	struct tool_out t;
	int err;

	snprintf(save, sizeof(save), "%s-save", backend);
	snprintf(restore, sizeof(restore), "%s-restore", backend);
	if (!have_tool(save) || !have_tool(restore)) {
		note(r, "%s: %s not installed, skipped", backend, save);
		return 0;
	}
	err = run_tool((char *const[]){ save, NULL }, NULL, &t);
	if (err)
		return err == -ENOMEM ? err : (note(r, "%s: %s", save, strerror(-err)), r->failed++, 0);
	if (t.status) {
		note(r, "%s: %s", save, first_line(&t, line, sizeof(line)));
		r->failed++;
		tool_out_free(&t);
		return 0;
	}
	err = kxp_kpc_plan_iptables(t.out ? t.out : "", backend, r, &plan);
	tool_out_free(&t);
	if (err == -ENOMEM)
		return err;
	if (err) {
		note(r, "%s: cannot read the output of %s (%s)", backend, save, strerror(-err));
		r->failed++;
		return 0;
	}
	for (size_t i = 0; i < plan.n_tables && !o->dry_run; i++) {
		/* one table per run: restore commits a table atomically, and a
		 * failure in one table leaves the others' result known */
		char *argv[6] = { restore, "--noflush", NULL, NULL, NULL, NULL };

		if (strstr(backend, "legacy"))
			argv[2] = "--wait=10"; /* the xtables lock another writer may hold */
		err = run_tool(argv, plan.scripts[i], &t);
		if (err) {
			mark(r, plan.first_item[i], plan.n_items[i], err);
			note(r, "%s %s: %s", restore, plan.tables[i], strerror(-err));
			continue;
		}
		if (t.status) {
			mark(r, plan.first_item[i], plan.n_items[i], -EIO);
			note(r, "%s %s: %s", restore, plan.tables[i], first_line(&t, line, sizeof(line)));
		}
		tool_out_free(&t);
	}
	kxp_kpc_ipt_plan_free(&plan);
	return 0;
}

static int do_nft(const struct kxp_kpc_opts *o, struct kxp_kpc_report *r)
{
	char line[256];
	struct tool_out t;
	size_t first = r->n;
	int err;

	if (!have_tool("nft")) {
		note(r, "nft: not installed, skipped");
		return 0;
	}
	err = run_tool((char *const[]){ "nft", "list", "tables", NULL }, NULL, &t);
	if (err)
		return err == -ENOMEM ? err : (note(r, "nft: %s", strerror(-err)), r->failed++, 0);
	if (t.status) {
		note(r, "nft list tables: %s", first_line(&t, line, sizeof(line)));
		r->failed++;
		tool_out_free(&t);
		return 0;
	}
	err = kxp_kpc_plan_nft(t.out ? t.out : "", r);
	tool_out_free(&t);
	if (err < 0)
		return err;
	for (size_t i = first; i < r->n && !o->dry_run; i++) {
		char *argv[] = { "nft", "delete", "table", r->v[i].table, r->v[i].what, NULL };

		err = run_tool(argv, NULL, &t);
		if (err || t.status) {
			mark(r, i, 1, err ? err : -EIO);
			note(r, "nft delete table %s %s: %s", r->v[i].table, r->v[i].what,
			     err ? strerror(-err) : first_line(&t, line, sizeof(line)));
		}
		if (!err)
			tool_out_free(&t);
	}
	return 0;
}

/* kube-ipvs0's addresses ("ip -o addr show dev kube-ipvs0"): IPVS mode binds
 * every ClusterIP, externalIP and LB IP there. Returns the count. */
static size_t ipvs0_addrs(char (*v)[80], size_t max, bool *exists, bool *dummy)
{
	struct tool_out t;
	size_t n = 0;
	const char *l;

	*exists = *dummy = false;
	if (run_tool((char *const[]){ "ip", "-d", "-o", "link", "show", "dev", "kube-ipvs0", NULL }, NULL, &t))
		return 0;
	*exists = t.status == 0;
	*dummy = t.status == 0 && t.out && strstr(t.out, " dummy ");
	tool_out_free(&t);
	if (!*exists || run_tool((char *const[]){ "ip", "-o", "addr", "show", "dev", "kube-ipvs0", NULL }, NULL, &t))
		return 0;
	for (l = t.out; t.status == 0 && l && *l && n < max; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		char fam[8], cidr[80];

		/* "5: kube-ipvs0    inet 10.96.0.1/32 scope global kube-ipvs0..." */
		if (sscanf(l, "%*s %*s %7s %79s", fam, cidr) == 2 && (!strcmp(fam, "inet") || !strcmp(fam, "inet6"))) {
			cidr[strcspn(cidr, "/")] = 0;
			snprintf(v[n++], 80, "%s", cidr);
		}
	}
	tool_out_free(&t);
	return n;
}

static int do_ipvs(const struct kxp_kpc_opts *o, struct kxp_kpc_report *r)
{
	static char addrs[1024][80];
	const char *ap[1024];
	bool exists, dummy;
	size_t n_addrs, first = r->n;
	struct tool_out t;
	char line[256];
	int err;

	n_addrs = ipvs0_addrs(addrs, 1024, &exists, &dummy);
	for (size_t i = 0; i < n_addrs; i++)
		ap[i] = addrs[i];
	if (!have_tool("ipvsadm")) {
		note(r, "ipvsadm: not installed, IPVS services skipped");
	} else if ((err = run_tool((char *const[]){ "ipvsadm", "-S", "-n", NULL }, NULL, &t))) {
		note(r, "ipvsadm: %s", strerror(-err));
		r->failed++;
	} else if (t.status) {
		/* "Can't initialize ipvs: Protocol not available": no ip_vs in the kernel */
		if (t.err && strstr(t.err, "Protocol not available"))
			note(r, "ipvsadm: IPVS is not available in this kernel, skipped");
		else {
			note(r, "ipvsadm -S: %s", first_line(&t, line, sizeof(line)));
			r->failed++;
		}
		tool_out_free(&t);
	} else {
		err = kxp_kpc_plan_ipvs(t.out ? t.out : "", ap, n_addrs, o->nodeport_min, o->nodeport_max, r);
		tool_out_free(&t);
		if (err < 0)
			return err;
		for (size_t i = first; i < r->n && !o->dry_run; i++) {
			char flag[16], ep[96];
			char *argv[] = { "ipvsadm", "-D", flag, ep, NULL };

			sscanf(r->v[i].what, "%15s %95s", flag, ep);
			err = run_tool(argv, NULL, &t);
			if (err || t.status) {
				mark(r, i, 1, err ? err : -EIO);
				note(r, "ipvsadm -D %s: %s", r->v[i].what,
				     err ? strerror(-err) : first_line(&t, line, sizeof(line)));
			}
			if (!err)
				tool_out_free(&t);
		}
	}
	if (!exists)
		return 0;
	if (!dummy) {
		note(r, "ip: kube-ipvs0 is not a dummy device (not kube-proxy's), left alone");
		return 0;
	}
	if (add_item(r, "ip", "", KXP_KPC_DEVICE, "kube-ipvs0", 10))
		return -ENOMEM;
	if (o->dry_run)
		return 0;
	err = run_tool((char *const[]){ "ip", "link", "del", "kube-ipvs0", NULL }, NULL, &t);
	if (err || t.status) {
		mark(r, r->n - 1, 1, err ? err : -EIO);
		note(r, "ip link del kube-ipvs0: %s", err ? strerror(-err) : first_line(&t, line, sizeof(line)));
	}
	if (!err)
		tool_out_free(&t);
	return 0;
}

static int do_ipset(const struct kxp_kpc_opts *o, struct kxp_kpc_report *r)
{
	struct tool_out t;
	size_t first = r->n;
	char line[256];
	int err;

	if (!have_tool("ipset")) {
		note(r, "ipset: not installed, skipped");
		return 0;
	}
	err = run_tool((char *const[]){ "ipset", "list", "-n", NULL }, NULL, &t);
	if (err)
		return err == -ENOMEM ? err : (note(r, "ipset: %s", strerror(-err)), r->failed++, 0);
	if (t.status) {
		note(r, "ipset list: %s", first_line(&t, line, sizeof(line)));
		r->failed++;
		tool_out_free(&t);
		return 0;
	}
	err = kxp_kpc_plan_ipset(t.out ? t.out : "", r);
	tool_out_free(&t);
	if (err < 0)
		return err;
	for (size_t i = first; i < r->n && !o->dry_run; i++) {
		char *argv[] = { "ipset", "destroy", r->v[i].what, NULL };

		/* fails while a rule kxp did not remove still references the set */
		err = run_tool(argv, NULL, &t);
		if (err || t.status) {
			mark(r, i, 1, err ? err : -EBUSY);
			note(r, "ipset destroy %s: %s", r->v[i].what,
			     err ? strerror(-err) : first_line(&t, line, sizeof(line)));
		}
		if (!err)
			tool_out_free(&t);
	}
	return 0;
}

int kxp_kpc_run(const struct kxp_kpc_opts *o, struct kxp_kpc_report *r)
{
	static const char *const backends[] = { "iptables-legacy", "iptables-nft", "ip6tables-legacy",
						 "ip6tables-nft" };
	struct kxp_kpc_opts def = *o;
	int err;

	if (!def.nodeport_min && !def.nodeport_max) {
		def.nodeport_min = 30000;
		def.nodeport_max = 32767;
	}
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		err = do_iptables(&def, backends[i], r);
		if (err)
			return err;
	}
	err = do_nft(&def, r);
	if (!err)
		err = do_ipvs(&def, r);
	if (!err)
		err = do_ipset(&def, r);
	return err;
}
