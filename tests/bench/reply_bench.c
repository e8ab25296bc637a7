/*
 * reply_bench: the DESIGN §7 reply figure ("`connections` envelope →
 * chat.postMessage request at the fake Slack, p99 < 2 ms"), from one run.
 *
 *   reply_bench [--workbot PATH] [--fake PATH] [--n N] [--conc-n N]
 *               [--window W] [--warmup N] [--timeout-ms MS] [--personal]
 *               [--settle S] [--keep]
 *
 * Starts the fake Slack (port 0) and a real `workbot run` (connections = 2,
 * workers = 4, log level info) on 127.0.0.1 in a private temporary
 * directory, with one recipe so `help` has content, waits until /healthz
 * says both sockets are live, then:
 *
 *   warm-up      --warmup `connections` + `help` DMs, not measured (each
 *                worker opens its keep-alive connection to the fake here)
 *   connections  --n message_im envelopes with text `connections`, one at a
 *                time: each is pushed, then the fake's call log is polled
 *                until that envelope's chat.postMessage has arrived (at most
 *                --timeout-ms), then the next is pushed
 *   help         the same with text `help`
 *   concurrent   --conc-n `connections` envelopes with --window in flight:
 *                replies/s from the first envelope written to the last
 *                postMessage recorded, and the latency under that load
 *
 * Every envelope comes from its own user, DM channel and event id, so
 * nothing is deduplicated and each reply is matched by its channel.
 *
 * Latency, per envelope, uses only the fake's clock (CLOCK_MONOTONIC, one
 * process): from the moment the fake writes the envelope frame (the
 * `sent_us` of its ack record, stamped before the last write) to the moment
 * it records the chat.postMessage call (`t_us`, after reading and parsing
 * the request body). The ack records are fetched after each phase, so the
 * only traffic to the fake during a measurement is the push and a light
 * poll of /_control/calls every --poll-us. <name>_ack_* is envelope
 * written → workbot's ack read by the fake: an upper bound of the event
 * thread's leg (the single-threaded fake may read the ack in the same
 * service pass as the reply).
 *
 * By default the recipe's app is a shared token app, so `connections` reads
 * the user's (empty) connection list and answers the empty state. With
 * --personal the recipe is a personal OAuth2 recipe: `connections` then
 * also starts a login for the user (the "Connect" button), a store write.
 *
 * Also printed: workbot's RssAnon/VmRSS idle and after the run, and the
 * TCP connections between workbot and the fake (established at the end,
 * and the TIME_WAIT count on the fake's port: workers that reuse their
 * keep-alive connection leave none behind).
 *
 * Output: "name value" lines on stdout; progress on stderr. Exit status 1
 * if any reply was missing. Everything is bounded (alarm(), per-item
 * timeouts); children are killed on every exit path. 127.0.0.1 only.
 * Never run by `meson test`: it measures, not asserts.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "bench_util.h"
#include "fake_slack_client.h"

#define APP_TOKEN	"xapp-1-A0FAKEAPP01-1-fake"
#define BOT_TOKEN	"xoxb-0001-fake"
#define OVERALL_S	600		/* alarm: the whole run, whatever happens */
#define MAX_N		100000
#define MAX_WINDOW	256

static struct {
	unsigned long seq;		/* users, channels and event ids: never reused */
	uint64_t call_since;		/* /_control/calls cursor */
	uint64_t ack_since;		/* /_control/acks cursor */
	long poll_us;
	long timeout_ms;
} B = { .poll_us = 200, .timeout_ms = 2000 };

/* One envelope of a phase. */
struct item {
	char env_id[64];
	unsigned long user;		/* U/D number: the channel matches the reply */
	double sent_us;			/* the fake's clock; < 0 unknown */
	double ack_us;			/* workbot's ack read by the fake */
	double call_us;			/* postMessage recorded; < 0 not (yet) seen */
	size_t body_bytes;
};

struct stats {
	unsigned n, lost;
	double p50, p90, p99, max, mean;
	double ack_p50, ack_p99;	/* written -> ack read by the fake */
};


/* ---- the fake ---- */

static double
num(const cJSON *o, const char *k)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(n) ? n->valuedouble : -1;
}

/* Push one DM from a fresh user; it->env_id and it->user are filled. */
static int
push_dm(const char *text, struct item *it)
{
	char path[256];
	cJSON *o = NULL;
	const char *id;
	int st;

	it->user = ++B.seq;
	it->sent_us = it->ack_us = it->call_us = -1;
	it->body_bytes = 0;
	snprintf(path, sizeof(path),
	    "/_control/push?type=message_im&socket=any&user=U%08lu&channel=D%08lu&event_id=EvRB%08lu&text=%s",
	    it->user, it->user, it->user, text);
	st = fsc_post(bu_run.f, path, NULL, NULL, NULL, &o, NULL);
	id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "envelope_id"));
	if (st != 200 || id == NULL) {
		fprintf(stderr, "reply_bench: push refused: HTTP %d\n", st);
		cJSON_Delete(o);
		return -1;
	}
	snprintf(it->env_id, sizeof(it->env_id), "%s", id);
	cJSON_Delete(o);
	return 0;
}

/*
 * New chat.postMessage calls since the cursor: each one whose channel is
 * D<user> of an item in [items, items + n) with base user `base` is
 * matched. Returns how many items were newly matched, -1 on error.
 */
static int
poll_calls(struct item *items, unsigned n, unsigned long base)
{
	char path[128];
	cJSON *o = NULL, *c;
	int got = 0;

	snprintf(path, sizeof(path), "/_control/calls?since=%llu&method=chat.postMessage&limit=1000",
	    (unsigned long long)B.call_since);
	if (fsc_get(bu_run.f, path, &o) != 200) {
		cJSON_Delete(o);
		return -1;
	}
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(o, "calls")) {
		const cJSON *body = cJSON_GetObjectItemCaseSensitive(c, "body");
		const char *ch = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "channel"));
		unsigned long u;
		char *end;

		if (ch == NULL || ch[0] != 'D')
			continue;
		u = strtoul(ch + 1, &end, 10);
		if (*end != '\0' || u < base || u - base >= n)
			continue;
		if (items[u - base].user != u || items[u - base].call_us >= 0)
			continue;
		items[u - base].call_us = num(c, "t_us");
		{
			char *txt = cJSON_PrintUnformatted(body);

			items[u - base].body_bytes = txt ? strlen(txt) : 0;
			if (u == base && txt != NULL)	/* what is being measured, once a phase */
				fprintf(stderr, "reply_bench:   first reply: %.400s%s\n", txt,
				    strlen(txt) > 400 ? "…" : "");
			cJSON_free(txt);
		}
		got++;
	}
	if (num(o, "next") >= 0)
		B.call_since = (uint64_t)num(o, "next");
	cJSON_Delete(o);
	return got;
}

/* The fake's send stamp of every item, from its ack records (after a phase). */
static int
fetch_sent(struct item *items, unsigned n)
{
	unsigned missing = n;

	for (int round = 0; round < 50 && missing > 0; round++) {
		char path[128];
		cJSON *o = NULL, *a;
		double next;

		snprintf(path, sizeof(path), "/_control/acks?since=%llu&limit=5000",
		    (unsigned long long)B.ack_since);
		if (fsc_get(bu_run.f, path, &o) != 200) {
			cJSON_Delete(o);
			return -1;
		}
		cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(o, "acks")) {
			const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "envelope_id"));

			if (id == NULL || num(a, "sent_us") <= 0)
				continue;
			/* Phases are small; a linear search keeps this simple. */
			for (unsigned i = 0; i < n; i++)
				if (items[i].sent_us < 0 && strcmp(items[i].env_id, id) == 0) {
					items[i].sent_us = num(a, "sent_us");
					items[i].ack_us = num(a, "ack_us");
					missing--;
					break;
				}
		}
		next = num(o, "next");
		if (next >= 0)
			B.ack_since = (uint64_t)next;
		cJSON_Delete(o);
		if (missing > 0)
			bu_sleep_ms(20);
	}
	return missing == 0 ? 0 : -1;
}

/* ---- phases ---- */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
quantile(const double *v, unsigned n, double q)
{
	unsigned k;

	if (n == 0)
		return -1;
	k = (unsigned)(q * n + 0.999999);	/* nearest rank */
	return v[k == 0 ? 0 : k - 1];
}

static void
summarise(const struct item *items, unsigned n, struct stats *s)
{
	double *v = calloc(n + 1, sizeof(*v)), sum = 0;
	unsigned m = 0;

	memset(s, 0, sizeof(*s));
	if (v == NULL)
		bu_die("out of memory");
	for (unsigned i = 0; i < n; i++) {
		if (items[i].call_us < 0 || items[i].sent_us < 0) {
			s->lost++;
			continue;
		}
		v[m] = items[i].call_us - items[i].sent_us;
		sum += v[m++];
	}
	qsort(v, m, sizeof(*v), cmp_double);
	s->n = m;
	s->p50 = quantile(v, m, 0.50);
	s->p90 = quantile(v, m, 0.90);
	s->p99 = quantile(v, m, 0.99);
	s->max = m ? v[m - 1] : -1;
	s->mean = m ? sum / m : -1;
	m = 0;
	for (unsigned i = 0; i < n; i++)
		if (items[i].ack_us >= 0 && items[i].sent_us >= 0)
			v[m++] = items[i].ack_us - items[i].sent_us;
	qsort(v, m, sizeof(*v), cmp_double);
	s->ack_p50 = quantile(v, m, 0.50);
	s->ack_p99 = quantile(v, m, 0.99);
	free(v);
}

/* One envelope at a time; each waits for its reply (≤ timeout_ms). */
static void
serial(const char *text, unsigned n, struct item *items, struct stats *s)
{
	unsigned long base = B.seq + 1;

	for (unsigned i = 0; i < n; i++) {
		int64_t t_end;

		if (push_dm(text, &items[i]) != 0)
			bu_die("push failed at %s #%u", text, i);
		t_end = bu_now_ms() + B.timeout_ms;
		do {
			bu_sleep_us(B.poll_us);
			if (poll_calls(items, n, base) < 0)
				bu_die("cannot read the fake's call log");
		} while (items[i].call_us < 0 && bu_now_ms() < t_end);
		if (items[i].call_us < 0)
			fprintf(stderr, "reply_bench: %s #%u: no chat.postMessage in %ld ms\n", text, i, B.timeout_ms);
	}
	if (fetch_sent(items, n) != 0)
		fprintf(stderr, "reply_bench: some %s envelopes have no send stamp\n", text);
	summarise(items, n, s);
}

/* --window envelopes in flight; replies/s on the fake's clock. */
static double
concurrent(const char *text, unsigned n, unsigned window, struct item *items, struct stats *s)
{
	unsigned long base = B.seq + 1;
	unsigned sent = 0, done = 0;
	int64_t t_end = bu_now_ms() + (int64_t)B.timeout_ms * (n / window + 2);
	double first = -1, last = -1;

	while (done < n && bu_now_ms() < t_end) {
		int got;

		while (sent < n && sent - done < window) {
			if (push_dm(text, &items[sent]) != 0)
				bu_die("push failed at concurrent #%u", sent);
			sent++;
		}
		if ((got = poll_calls(items, n, base)) < 0)
			bu_die("cannot read the fake's call log");
		done += (unsigned)got;
		if (got == 0)
			bu_sleep_us(B.poll_us);
	}
	if (done < n)
		fprintf(stderr, "reply_bench: concurrent: %u of %u replies\n", done, n);
	if (fetch_sent(items, sent) != 0)
		fprintf(stderr, "reply_bench: some concurrent envelopes have no send stamp\n");
	summarise(items, n, s);
	for (unsigned i = 0; i < n; i++) {
		if (items[i].sent_us >= 0 && (first < 0 || items[i].sent_us < first))
			first = items[i].sent_us;
		if (items[i].call_us > last)
			last = items[i].call_us;
	}
	return s->n > 0 && last > first ? s->n / ((last - first) / 1e6) : -1;
}

/* ---- TCP between workbot and the fake ---- */

static bool
workbot_owns_inode(unsigned long inode)
{
	char dir[64], link[64], want[64];
	struct dirent *d;
	DIR *dp;
	bool found = false;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)bu_run.wb);
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	if ((dp = opendir(dir)) == NULL)
		return false;
	while (!found && (d = readdir(dp)) != NULL) {
		char p[sizeof(dir) + sizeof(d->d_name) + 1];
		ssize_t k;

		snprintf(p, sizeof(p), "%s/%s", dir, d->d_name);
		k = readlink(p, link, sizeof(link) - 1);
		if (k > 0) {
			link[k] = '\0';
			found = strcmp(link, want) == 0;
		}
	}
	closedir(dp);
	return found;
}

/* Established sockets of workbot to the fake's port; TIME_WAIT on that port. */
static void
tcp_to_fake(int *established, int *time_wait)
{
	char line[512];
	FILE *fp = fopen("/proc/net/tcp", "r");

	*established = *time_wait = 0;
	if (fp == NULL)
		return;
	while (fgets(line, sizeof(line), fp) != NULL) {
		unsigned lport, rport, st;
		unsigned long inode;

		if (sscanf(line, " %*d: %*x:%x %*x:%x %x %*s %*s %*s %*d %*d %lu", &lport, &rport, &st, &inode) != 4)
			continue;
		if (st == 0x06 && (lport == (unsigned)fsc_port(bu_run.f) || rport == (unsigned)fsc_port(bu_run.f)))
			(*time_wait)++;
		else if (st == 0x01 && rport == (unsigned)fsc_port(bu_run.f) && workbot_owns_inode(inode))
			(*established)++;
	}
	fclose(fp);
}

/* ---- main ---- */

static void
usage(void)
{
	fprintf(stderr, "usage: reply_bench [--workbot PATH] [--fake PATH] [--n N] [--conc-n N]\n"
	    "                   [--window W] [--warmup N] [--timeout-ms MS] [--poll-us US]\n"
	    "                   [--personal] [--settle S] [--keep]\n");
	exit(2);
}

static void
print_stats(const char *name, const struct stats *s)
{
	printf("%s_n %u\n", name, s->n);
	printf("%s_lost %u\n", name, s->lost);
	printf("%s_p50_us %.0f\n", name, s->p50);
	printf("%s_p90_us %.0f\n", name, s->p90);
	printf("%s_p99_us %.0f\n", name, s->p99);
	printf("%s_max_us %.0f\n", name, s->max);
	printf("%s_mean_us %.1f\n", name, s->mean);
	printf("%s_ack_p50_us %.0f\n", name, s->ack_p50);
	printf("%s_ack_p99_us %.0f\n", name, s->ack_p99);
}

#ifndef REPLY_BENCH_WORKBOT
#define REPLY_BENCH_WORKBOT ""
#endif
#ifndef REPLY_BENCH_FAKE
#define REPLY_BENCH_FAKE ""
#endif

int
main(int argc, char **argv)
{
	char wbuf[4096], fbuf[4096], key[256], conf[256], logp[256], extra[2048];
	const char *workbot = NULL, *fake = NULL;
	unsigned n = 2000, conc_n = 2000, window = 16, warmup = 50, settle_s = 1;
	int personal = 0, live = 0, est = 0, tw = 0, tw0 = 0, est0 = 0;
	long anon_idle = 0, rss_idle = 0, anon_after = 0, rss_after = 0;
	struct item *items;
	struct stats conn, help, conc, w;
	double rps;
	size_t conn_bytes, help_bytes;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--keep") == 0) {
			bu_run.keep = 1;
			continue;
		}
		if (strcmp(a, "--personal") == 0) {
			personal = 1;
			continue;
		}
		if (v == NULL)
			usage();
		i++;
		if (strcmp(a, "--workbot") == 0)
			workbot = v;
		else if (strcmp(a, "--fake") == 0)
			fake = v;
		else if (strcmp(a, "--n") == 0)
			n = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--conc-n") == 0)
			conc_n = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--window") == 0)
			window = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--warmup") == 0)
			warmup = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--timeout-ms") == 0)
			B.timeout_ms = strtol(v, NULL, 10);
		else if (strcmp(a, "--poll-us") == 0)
			B.poll_us = strtol(v, NULL, 10);
		else if (strcmp(a, "--settle") == 0)
			settle_s = (unsigned)strtoul(v, NULL, 10);
		else
			usage();
	}
	if (n == 0 || n > MAX_N || conc_n > MAX_N || warmup > 1000 || window == 0 || window > MAX_WINDOW ||
	    B.timeout_ms < 10 || B.timeout_ms > 30000 || B.poll_us < 0 || B.poll_us > 100000 || settle_s > 60)
		usage();
	/* Whatever the arguments, the per-item timeouts fit in the alarm. */
	if ((double)(n * 2 + warmup * 2) * B.timeout_ms / 1000 > OVERALL_S - 60)
		B.timeout_ms = (long)((OVERALL_S - 60) * 1000.0 / (n * 2 + warmup * 2));
	if (workbot == NULL)
		workbot = bu_default_path(REPLY_BENCH_WORKBOT, "workbot", wbuf, sizeof(wbuf));
	if (fake == NULL)
		fake = bu_default_path(REPLY_BENCH_FAKE, "tests/fakes/fake_slack", fbuf, sizeof(fbuf));
	if (access(workbot, X_OK) != 0 || access(fake, X_OK) != 0)
		bu_die("cannot run %s or %s (use --workbot / --fake)", workbot, fake);
	if ((items = calloc((n > conc_n ? n : conc_n) + warmup + 1, sizeof(*items))) == NULL)
		bu_die("out of memory");

	bu_run_start("reply_bench", OVERALL_S);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if ((bu_run.curl = curl_easy_init()) == NULL)
		bu_die("curl_easy_init failed");

	snprintf(bu_run.tmp, sizeof(bu_run.tmp), "/tmp/reply_bench.XXXXXX");
	if (mkdtemp(bu_run.tmp) == NULL)
		bu_die("mkdtemp: %s", strerror(errno));

	if ((bu_run.f = fsc_spawn(fake, NULL, 5000)) == NULL)
		bu_die("the fake Slack did not start (%s)", fake);
	bu_run.fake = fsc_pid(bu_run.f);
	fprintf(stderr, "reply_bench: fake Slack on port %d\n", fsc_port(bu_run.f));

	snprintf(key, sizeof(key), "%s/master.key", bu_run.tmp);
	snprintf(logp, sizeof(logp), "%s/workbot.log", bu_run.tmp);
	{
		const char *argv_k[] = { workbot, "keygen", "-o", key, NULL };

		if (bu_run_wait(argv_k, logp) != 0)
			bu_die("workbot keygen failed (see %s)", logp);
	}
	if ((bu_run.listen_port = bu_free_port()) < 0)
		bu_die("no free loopback port");
	/* One recipe, so `help` lists something. Port 9 (discard) is never called. */
	if (personal)
		snprintf(extra, sizeof(extra),
		    "\n[app crm]\ntitle = CRM\nauth = oauth2\nclient_id = bench\nclient_secret = bench-secret\n"
		    "authorize_url = http://127.0.0.1:9/authorize\ntoken_url = http://127.0.0.1:9/token\n"
		    "scopes = api\napi_url = http://127.0.0.1:9/crm\n\n"
		    "[recipe show-issue]\ncommand = show issue\ndescription = Show an issue\napp = crm\n"
		    "verify_user_access = true\nparams = key\nmethod = GET\npath = /issue/{{key}}\n"
		    "reply = Issue {{key}}: {{response.summary}}\n");
	else
		snprintf(extra, sizeof(extra),
		    "\n[app tracker]\ntitle = Tracker\nauth = token\ntoken = bench-static-token\n"
		    "api_url = http://127.0.0.1:9/tracker\n\n"
		    "[recipe show-issue]\ncommand = show issue\ndescription = Show an issue\napp = tracker\n"
		    "params = key\nmethod = GET\npath = /issue/{{key}}\n"
		    "reply = Issue {{key}}: {{response.summary}}\n");
	snprintf(conf, sizeof(conf), "%s/workbot.conf", bu_run.tmp);
	if (bu_write_conf(conf, fsc_api_url(bu_run.f), bu_run.tmp, key, bu_run.listen_port, extra) != 0)
		bu_die("%s: %s", conf, strerror(errno));
	setenv("WB_APP_TOKEN", APP_TOKEN, 1);
	setenv("WB_BOT_TOKEN", BOT_TOKEN, 1);

	if ((bu_run.wb = bu_spawn_workbot(workbot, conf, logp)) < 0)
		bu_die("fork: %s", strerror(errno));
	for (int64_t t_end = bu_now_ms() + 15000; bu_now_ms() < t_end; bu_sleep_ms(50)) {
		if (waitpid(bu_run.wb, NULL, WNOHANG) == bu_run.wb) {
			bu_run.wb = 0;
			bu_die("workbot exited during start-up (see %s; --keep keeps it)", logp);
		}
		if ((live = bu_sockets_live(bu_run.curl, bu_run.listen_port)) >= 2)
			break;
	}
	if (live < 2)
		bu_die("workbot did not get 2 live sockets in 15 s (see %s)", logp);
	fprintf(stderr, "reply_bench: workbot pid %d live on 2 sockets; settling %u s\n", (int)bu_run.wb, settle_s);
	bu_sleep_ms((long)settle_s * 1000);
	bu_proc_mem(bu_run.wb, &anon_idle, &rss_idle);
	/* The call cursor starts after what start-up left in the log. */
	poll_calls(items, 0, 1);

	if (warmup > 0) {
		fprintf(stderr, "reply_bench: warm-up, %u connections + %u help\n", warmup, warmup);
		serial("connections", warmup, items, &w);
		serial("help", warmup, items, &w);
	}
	tcp_to_fake(&est0, &tw0);

	fprintf(stderr, "reply_bench: serial, %u `connections`\n", n);
	serial("connections", n, items, &conn);
	conn_bytes = items[0].body_bytes;
	fprintf(stderr, "reply_bench: serial, %u `help`\n", n);
	serial("help", n, items, &help);
	help_bytes = items[0].body_bytes;
	memset(&conc, 0, sizeof(conc));
	rps = -1;
	if (conc_n > 0) {
		fprintf(stderr, "reply_bench: concurrent, %u `connections`, window %u\n", conc_n, window);
		rps = concurrent("connections", conc_n, window, items, &conc);
	}
	tcp_to_fake(&est, &tw);
	bu_sleep_ms(1000);
	bu_proc_mem(bu_run.wb, &anon_after, &rss_after);

	printf("# reply_bench: workbot %s, connections 2, workers 4, loopback, %s recipe\n", workbot,
	    personal ? "personal (oauth2)" : "shared (token)");
	printf("# latency: the fake's clock, envelope frame written -> chat.postMessage request recorded\n");
	print_stats("connections", &conn);
	print_stats("help", &help);
	printf("concurrent_window %u\n", window);
	print_stats("concurrent", &conc);
	printf("concurrent_replies_per_s %.0f\n", rps);
	printf("warmup_each %u\n", warmup);
	printf("connections_reply_bytes %zu\n", conn_bytes);
	printf("help_reply_bytes %zu\n", help_bytes);
	printf("rss_anon_idle_kib %ld\n", anon_idle);
	printf("rss_anon_after_kib %ld\n", anon_after);
	printf("vmrss_idle_kib %ld\n", rss_idle);
	printf("vmrss_after_kib %ld\n", rss_after);
	printf("tcp_workbot_to_fake_established %d\n", est);
	printf("tcp_fake_port_time_wait_before %d\n", tw0);
	printf("tcp_fake_port_time_wait_after %d\n", tw);
	fflush(stdout);
	return conn.lost || help.lost || conc.lost ? 1 : 0;
}
