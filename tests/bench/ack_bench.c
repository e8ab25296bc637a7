/*
 * ack_bench: the DESIGN §7 ack and memory figures, from one run.
 *
 *   ack_bench [--workbot PATH] [--fake PATH] [--n N] [--serial N]
 *             [--windows W,W,...] [--im-n N] [--settle S] [--keep]
 *
 * Starts the fake Slack (port 0) and a real `workbot run` (connections = 2,
 * workers = 4, log level info) on 127.0.0.1 in a private temporary
 * directory, waits until /healthz says both sockets are live, lets the
 * daemon settle, samples its memory (RssAnon, VmRSS from /proc/PID/status),
 * then drives the fake's /_control/burst over one socket:
 *
 *   serial     window 1, --serial noop envelopes: the round trip of one
 *              envelope with nothing else in flight (ack_rtt_*)
 *   burst      --n noop envelopes for each --windows value; the best
 *              acks/s is reported (burst_*, acks_per_s), all are listed
 *   im         --im-n message_im envelopes (window 256): these go through
 *              dedupe, the job queue and a worker, and their ids are
 *              persisted in batches. Each one is also answered in Slack
 *              (a DM reply through the outbox), so workers fall behind the
 *              ack rate; once the job queue (1,024) is full workbot stops
 *              acking and relies on Slack's redelivery, which the fake's
 *              burst does not do. The default --im-n therefore stays below
 *              the queue size: it measures the job path, not a flood.
 *
 * Round trips are measured at the fake (envelope written → ack parsed).
 * "noop" envelopes are reaction_added events: workbot acks and drops them
 * on the event thread, so they are the pure ack path. A thread polls
 * /proc/PID/status every 50 ms during each phase for the peaks. workbot's
 * own workbot_ack_seconds histogram (frame complete → ack written) is read
 * from /metrics before and after each phase and summarised per phase.
 *
 * Output: one block of "name value" lines on stdout; progress on stderr.
 * Everything is bounded (alarm(), per-phase timeouts); children are killed
 * on every exit path (workbot also gets PR_SET_PDEATHSIG). 127.0.0.1 only.
 * Never run by `meson test`: it takes ~20 s and measures, not asserts.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
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
#define PHASE_MS	120000L		/* one burst at most */
#define MAX_WINDOWS	8
#define MAX_BUCKETS	32



/* workbot_ack_seconds from /metrics: cumulative bucket counts and the sum. */
struct hist {
	unsigned n;
	double le_us[MAX_BUCKETS];	/* upper bounds; +Inf as a huge number */
	double cum[MAX_BUCKETS];
	double sum_s, count;
};

static int
read_hist(struct hist *h)
{
	static struct bu_sink s;
	const char *p;

	memset(h, 0, sizeof(*h));
	if (bu_wb_get(bu_run.curl, bu_run.listen_port, "/metrics", &s) != 200)
		return -1;
	for (p = s.buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		char le[32];
		double v;

		if (sscanf(p, "workbot_ack_seconds_bucket{le=\"%31[^\"]\"} %lf", le, &v) == 2 &&
		    h->n < MAX_BUCKETS) {
			h->le_us[h->n] = strcmp(le, "+Inf") == 0 ? 1e300 : strtod(le, NULL) * 1e6;
			h->cum[h->n++] = v;
		} else if (sscanf(p, "workbot_ack_seconds_sum %lf", &v) == 1) {
			h->sum_s = v;
		} else if (sscanf(p, "workbot_ack_seconds_count %lf", &v) == 1) {
			h->count = v;
		}
	}
	return h->n > 0 ? 0 : -1;
}

/* The upper bound of the bucket holding quantile q of after - before. */
static double
hist_q(const struct hist *a, const struct hist *b, double q)
{
	double total = b->count - a->count;

	if (total <= 0 || a->n != b->n)
		return -1;
	for (unsigned i = 0; i < b->n; i++)
		if (b->cum[i] - a->cum[i] >= q * total)
			return b->le_us[i];
	return -1;
}

static void
print_hist(const char *phase, const struct hist *a, const struct hist *b)
{
	double n = b->count - a->count;

	printf("workbot_ack_%s_count %.0f\n", phase, n);
	printf("workbot_ack_%s_mean_us %.1f\n", phase, n > 0 ? (b->sum_s - a->sum_s) * 1e6 / n : -1.0);
	printf("workbot_ack_%s_p50_le_us %.0f\n", phase, hist_q(a, b, 0.50));
	printf("workbot_ack_%s_p99_le_us %.0f\n", phase, hist_q(a, b, 0.99));
}

/* ---- memory ---- */

static struct {
	atomic_bool stop;
	atomic_long anon_peak, rss_peak;
	pthread_t th;
} M;

static void *
sampler(void *arg)
{
	(void)arg;
	while (!atomic_load(&M.stop)) {
		long a, r;

		if (bu_proc_mem(bu_run.wb, &a, &r) == 0) {
			if (a > atomic_load(&M.anon_peak))
				atomic_store(&M.anon_peak, a);
			if (r > atomic_load(&M.rss_peak))
				atomic_store(&M.rss_peak, r);
		}
		bu_sleep_ms(50);
	}
	return NULL;
}

static void
sampler_reset(void)
{
	atomic_store(&M.anon_peak, 0);
	atomic_store(&M.rss_peak, 0);
}

/* ---- bursts ---- */

struct result {
	double acked, lost, acks_per_s, p50, p90, p99, p999, max, mean;
	long anon_peak, rss_peak;
	struct hist h0, h1;
	int ok;
};

static double
num(const cJSON *o, const char *k)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(n) ? n->valuedouble : -1;
}

static int
one_live_socket(void)
{
	cJSON *o = NULL, *s;
	int id = -1;

	if (fsc_get(bu_run.f, "/_control/stats", &o) != 200)
		return -1;
	cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(o, "sockets")) {
		const char *st = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "state"));

		if (st && strcmp(st, "live") == 0) {
			id = (int)num(s, "id");
			break;
		}
	}
	cJSON_Delete(o);
	return id;
}

/* One burst over one socket; polls the fake until it is over (≤ PHASE_MS). */
static int
burst(const char *type, unsigned n, unsigned window, struct result *r)
{
	char path[256];
	cJSON *o = NULL;
	int sock = one_live_socket(), st;
	int64_t t_end;
	const char *state = "running";

	memset(r, 0, sizeof(*r));
	if (sock < 0) {
		fprintf(stderr, "ack_bench: no live socket at the fake\n");
		return -1;
	}
	read_hist(&r->h0);
	sampler_reset();
	snprintf(path, sizeof(path), "/_control/burst?n=%u&window=%u&type=%s&socket=%d&timeout_ms=%ld&wait=0",
	    n, window, type, sock, PHASE_MS);
	st = fsc_post(bu_run.f, path, NULL, NULL, NULL, &o, NULL);
	if (st != 200) {
		fprintf(stderr, "ack_bench: burst refused: HTTP %d\n", st);
		cJSON_Delete(o);
		return -1;
	}
	cJSON_Delete(o);
	o = NULL;
	t_end = bu_now_ms() + PHASE_MS + 5000;
	while (bu_now_ms() < t_end) {
		bu_sleep_ms(100);
		cJSON_Delete(o);
		o = NULL;
		if (fsc_get(bu_run.f, "/_control/burst", &o) != 200)
			continue;
		state = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "state"));
		if (state == NULL || strcmp(state, "running") != 0)
			break;
	}
	/* One more sample after the last ack, then the histogram. */
	bu_sleep_ms(60);
	r->anon_peak = atomic_load(&M.anon_peak);
	r->rss_peak = atomic_load(&M.rss_peak);
	read_hist(&r->h1);
	if (o != NULL) {
		const cJSON *rtt = cJSON_GetObjectItemCaseSensitive(o, "rtt_us");

		r->acked = num(o, "acked");
		r->lost = num(o, "lost");
		r->acks_per_s = num(o, "acks_per_s");
		r->p50 = num(rtt, "p50");
		r->p90 = num(rtt, "p90");
		r->p99 = num(rtt, "p99");
		r->p999 = num(rtt, "p999");
		r->max = num(rtt, "max");
		r->mean = num(rtt, "mean");
		r->ok = state != NULL && strcmp(state, "done") == 0 && r->acked == n;
		if (!r->ok)
			fprintf(stderr, "ack_bench: %s burst window %u ended %s: acked %.0f of %u (%s)\n",
			    type, window, state ? state : "?", r->acked, n,
			    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "error")) ?
			    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "error")) : "");
	}
	cJSON_Delete(o);
	return r->ok ? 0 : -1;
}

/* ---- main ---- */

static void
usage(void)
{
	fprintf(stderr, "usage: ack_bench [--workbot PATH] [--fake PATH] [--n N] [--serial N]\n"
	    "                 [--windows W,W,...] [--im-n N] [--settle S] [--keep]\n");
	exit(2);
}

#ifndef ACK_BENCH_WORKBOT
#define ACK_BENCH_WORKBOT ""
#endif
#ifndef ACK_BENCH_FAKE
#define ACK_BENCH_FAKE ""
#endif

int
main(int argc, char **argv)
{
	char wbuf[4096], fbuf[4096], path[256], conf[256], logp[256];
	const char *workbot = NULL, *fake = NULL;
	unsigned n = 100000, serial_n = 2000, im_n = 1000, settle_s = 3;
	unsigned windows[MAX_WINDOWS] = { 64, 256, 1024 }, nwin = 3, best = 0;
	struct result serial, bursts[MAX_WINDOWS], im;
	long anon_idle = 0, rss_idle = 0, anon_after = 0, rss_after = 0, anon_load, rss_load;
	int live = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--keep") == 0) {
			bu_run.keep = 1;
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
		else if (strcmp(a, "--serial") == 0)
			serial_n = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--im-n") == 0)
			im_n = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--settle") == 0)
			settle_s = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--windows") == 0) {
			char *end;
			const char *p = v;

			for (nwin = 0; *p && nwin < MAX_WINDOWS; p = *end ? end + 1 : end) {
				windows[nwin] = (unsigned)strtoul(p, &end, 10);
				if (end == p || windows[nwin] == 0 || windows[nwin] > 65536)
					usage();
				nwin++;
			}
		} else
			usage();
	}
	if (n == 0 || n > 1000000 || serial_n == 0 || serial_n > 1000000 || im_n > 1000000 ||
	    settle_s > 60 || nwin == 0)
		usage();
	if (workbot == NULL)
		workbot = bu_default_path(ACK_BENCH_WORKBOT, "workbot", wbuf, sizeof(wbuf));
	if (fake == NULL)
		fake = bu_default_path(ACK_BENCH_FAKE, "tests/fakes/fake_slack", fbuf, sizeof(fbuf));
	if (access(workbot, X_OK) != 0 || access(fake, X_OK) != 0)
		bu_die("cannot run %s or %s (use --workbot / --fake)", workbot, fake);

	bu_run_start("ack_bench", OVERALL_S);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if ((bu_run.curl = curl_easy_init()) == NULL)
		bu_die("curl_easy_init failed");

	snprintf(bu_run.tmp, sizeof(bu_run.tmp), "/tmp/ack_bench.XXXXXX");
	if (mkdtemp(bu_run.tmp) == NULL)
		bu_die("mkdtemp: %s", strerror(errno));

	if ((bu_run.f = fsc_spawn(fake, NULL, 5000)) == NULL)
		bu_die("the fake Slack did not start (%s)", fake);
	bu_run.fake = fsc_pid(bu_run.f);
	fprintf(stderr, "ack_bench: fake Slack on port %d\n", fsc_port(bu_run.f));

	snprintf(path, sizeof(path), "%s/master.key", bu_run.tmp);
	snprintf(logp, sizeof(logp), "%s/workbot.log", bu_run.tmp);
	{
		const char *argv_k[] = { workbot, "keygen", "-o", path, NULL };

		if (bu_run_wait(argv_k, logp) != 0)
			bu_die("workbot keygen failed (see %s)", logp);
	}
	if ((bu_run.listen_port = bu_free_port()) < 0)
		bu_die("no free loopback port");
	snprintf(conf, sizeof(conf), "%s/workbot.conf", bu_run.tmp);
	if (bu_write_conf(conf, fsc_api_url(bu_run.f), bu_run.tmp, path, bu_run.listen_port, NULL) != 0)
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
	fprintf(stderr, "ack_bench: workbot pid %d live on 2 sockets; settling %u s\n", (int)bu_run.wb, settle_s);

	bu_sleep_ms((long)settle_s * 1000);
	for (int i = 0; i < 10; i++, bu_sleep_ms(100)) {	/* idle: the largest of 1 s of samples */
		long a = 0, r = 0;

		if (bu_proc_mem(bu_run.wb, &a, &r) == 0) {
			anon_idle = a > anon_idle ? a : anon_idle;
			rss_idle = r > rss_idle ? r : rss_idle;
		}
	}

	if (pthread_create(&M.th, NULL, sampler, NULL) != 0)
		bu_die("pthread_create failed");

	fprintf(stderr, "ack_bench: serial, %u noop envelopes, window 1\n", serial_n);
	if (burst("noop", serial_n, 1, &serial) != 0)
		bu_die("the serial run failed");
	for (unsigned i = 0; i < nwin; i++) {
		fprintf(stderr, "ack_bench: burst, %u noop envelopes, window %u\n", n, windows[i]);
		if (burst("noop", n, windows[i], &bursts[i]) != 0)
			bu_die("the burst at window %u failed", windows[i]);
		if (bursts[i].acks_per_s > bursts[best].acks_per_s)
			best = i;
	}
	memset(&im, 0, sizeof(im));
	if (im_n > 0) {
		fprintf(stderr, "ack_bench: burst, %u message_im envelopes, window 256\n", im_n);
		if (burst("message_im", im_n, 256, &im) != 0)
			bu_die("the message_im burst failed");
	}
	atomic_store(&M.stop, true);
	pthread_join(M.th, NULL);
	bu_sleep_ms(1500);		/* let the last dedupe batch be persisted */
	bu_proc_mem(bu_run.wb, &anon_after, &rss_after);

	anon_load = serial.anon_peak;
	rss_load = serial.rss_peak;
	for (unsigned i = 0; i < nwin; i++) {
		anon_load = bursts[i].anon_peak > anon_load ? bursts[i].anon_peak : anon_load;
		rss_load = bursts[i].rss_peak > rss_load ? bursts[i].rss_peak : rss_load;
	}

	printf("# ack_bench: workbot %s, connections 2, workers 4, loopback\n", workbot);
	printf("ack_rtt_p50_us %.1f\n", serial.p50);
	printf("ack_rtt_p99_us %.1f\n", serial.p99);
	printf("ack_rtt_p999_us %.1f\n", serial.p999);
	printf("ack_rtt_envelopes %.0f\n", serial.acked);
	printf("burst_window %u\n", windows[best]);
	printf("burst_envelopes %.0f\n", bursts[best].acked);
	printf("burst_p50_us %.1f\n", bursts[best].p50);
	printf("burst_p99_us %.1f\n", bursts[best].p99);
	printf("acks_per_s %.0f\n", bursts[best].acks_per_s);
	for (unsigned i = 0; i < nwin; i++)
		printf("burst_w%u acks_per_s=%.0f p50_us=%.1f p99_us=%.1f rss_anon_peak_kib=%ld\n",
		    windows[i], bursts[i].acks_per_s, bursts[i].p50, bursts[i].p99, bursts[i].anon_peak);
	printf("rss_anon_idle_kib %ld\n", anon_idle);
	printf("rss_anon_load_kib %ld\n", anon_load);
	printf("vmrss_idle_kib %ld\n", rss_idle);
	printf("vmrss_load_kib %ld\n", rss_load);
	print_hist("serial", &serial.h0, &serial.h1);
	print_hist("burst", &bursts[best].h0, &bursts[best].h1);
	if (im_n > 0) {
		printf("im_envelopes %.0f\n", im.acked);
		printf("im_acks_per_s %.0f\n", im.acks_per_s);
		printf("im_p50_us %.1f\n", im.p50);
		printf("im_p99_us %.1f\n", im.p99);
		printf("im_rss_anon_load_kib %ld\n", im.anon_peak);
		printf("im_vmrss_load_kib %ld\n", im.rss_peak);
		print_hist("im", &im.h0, &im.h1);
	}
	printf("rss_anon_after_kib %ld\n", anon_after);
	printf("vmrss_after_kib %ld\n", rss_after);
	fflush(stdout);
	return 0;
}
