/*
 * metrics: the counters behind GET /metrics.
 *
 * How: every series is a slot in a static array of relaxed atomics, indexed
 * by enums whose names live in the tables below; incrementing is one
 * atomic add, so any thread may count on the ack path without a lock.
 * Rendering walks one table of families (name, help, type, label names and
 * value tables) and prints every series, zeros included: the label sets are
 * fixed, so the output size is fixed too.
 *
 * Must never: create a series from a runtime string (unknown strings and
 * out-of-range enums become "other"), lock or allocate on the increment
 * path, or print anything but these names and numbers.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workbot/log.h"
#include "workbot/metrics.h"
#include "workbot/xmalloc.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *const envelope_names[METRICS_ENVELOPE_N] = {
	[METRICS_ENVELOPE_HELLO] = "hello",
	[METRICS_ENVELOPE_DISCONNECT] = "disconnect",
	[METRICS_ENVELOPE_EVENTS_API] = "events_api",
	[METRICS_ENVELOPE_INTERACTIVE] = "interactive",
	[METRICS_ENVELOPE_SLASH_COMMANDS] = "slash_commands",
	[METRICS_ENVELOPE_OTHER] = "other",
};

static const char *const reconnect_names[METRICS_RECONNECT_N] = {
	[METRICS_RECONNECT_REFRESH_REQUESTED] = "refresh_requested",
	[METRICS_RECONNECT_WARNING] = "warning",
	[METRICS_RECONNECT_LINK_DISABLED] = "link_disabled",
	[METRICS_RECONNECT_TOO_MANY_WEBSOCKETS] = "too_many_websockets",
	[METRICS_RECONNECT_PING_TIMEOUT] = "ping_timeout",
	[METRICS_RECONNECT_CLOSED] = "closed",
	[METRICS_RECONNECT_CONNECT_ERROR] = "connect_error",
	[METRICS_RECONNECT_OTHER] = "other",
};

static const char *const api_method_names[METRICS_API_METHOD_N] = {
	[METRICS_API_APPS_CONNECTIONS_OPEN] = "apps.connections.open",
	[METRICS_API_AUTH_TEST] = "auth.test",
	[METRICS_API_CHAT_POST_MESSAGE] = "chat.postMessage",
	[METRICS_API_CHAT_POST_EPHEMERAL] = "chat.postEphemeral",
	[METRICS_API_CHAT_UPDATE] = "chat.update",
	[METRICS_API_CONVERSATIONS_OPEN] = "conversations.open",
	[METRICS_API_USERS_INFO] = "users.info",
	[METRICS_API_RESPONSE_URL] = "response_url",
	[METRICS_API_OTHER] = "other",
};

static const char *const api_outcome_names[METRICS_API_OUTCOME_N] = {
	[METRICS_API_OK] = "ok",
	[METRICS_API_SLACK_ERROR] = "slack_error",
	[METRICS_API_RATE_LIMITED] = "rate_limited",
	[METRICS_API_HTTP_ERROR] = "http_error",
	[METRICS_API_NETWORK_ERROR] = "network_error",
	[METRICS_API_OUTCOME_OTHER] = "other",
};

static const char *const oauth_names[METRICS_OAUTH_N] = {
	[METRICS_OAUTH_CONNECTED] = "connected",
	[METRICS_OAUTH_CANCELLED] = "cancelled",
	[METRICS_OAUTH_DENIED] = "denied",
	[METRICS_OAUTH_EXPIRED] = "expired",
	[METRICS_OAUTH_STATE_MISMATCH] = "state_mismatch",
	[METRICS_OAUTH_EXCHANGE_FAILED] = "exchange_failed",
	[METRICS_OAUTH_OTHER] = "other",
};

static const char *const refresh_names[METRICS_REFRESH_N] = {
	[METRICS_REFRESH_OK] = "ok",
	[METRICS_REFRESH_INVALID_GRANT] = "invalid_grant",
	[METRICS_REFRESH_ERROR] = "error",
	[METRICS_REFRESH_OTHER] = "other",
};

/*
 * workbot_ack_seconds buckets, upper bounds in µs with the `le` text each
 * renders as. The ack path is tens of µs when healthy, so the low end is
 * fine-grained; anything over 1 s is a stall and only needs +Inf.
 */
static const struct {
	uint64_t us;
	const char *le;
} ack_buckets[] = {
	{ 25, "2.5e-05" }, { 50, "5e-05" }, { 100, "0.0001" }, { 250, "0.00025" },
	{ 500, "0.0005" }, { 1000, "0.001" }, { 2500, "0.0025" }, { 5000, "0.005" },
	{ 10000, "0.01" }, { 50000, "0.05" }, { 100000, "0.1" }, { 250000, "0.25" },
	{ 1000000, "1" },
};
#define ACK_NBUCKETS NELEM(ack_buckets)

static _Atomic uint64_t envelopes[METRICS_ENVELOPE_N];
static _Atomic uint64_t duplicates[1];
static _Atomic uint64_t reconnects[METRICS_RECONNECT_N];
static _Atomic uint64_t api_calls[METRICS_API_METHOD_N * METRICS_API_OUTCOME_N];
static _Atomic uint64_t jobs_rejected[1];
static _Atomic uint64_t oauth_logins[METRICS_OAUTH_N];
static _Atomic uint64_t token_refreshes[METRICS_REFRESH_N];
/* Per bucket, not cumulative: one add per observation; render sums them. */
static _Atomic uint64_t ack_counts[ACK_NBUCKETS + 1];
static _Atomic uint64_t ack_sum_us;
static _Atomic int64_t gauges[METRICS_GAUGE_N];

static struct {
	metrics_gauge_fn fn;
	void *arg;
} gauge_sources[METRICS_GAUGE_N];

static const char *const gauge_names[METRICS_GAUGE_N][2] = {
	[METRICS_GAUGE_JOBS_QUEUED] = { "workbot_jobs_queued",
	    "Jobs waiting in the job queue." },
	[METRICS_GAUGE_SOCKETS_LIVE] = { "workbot_sockets_live",
	    "Socket Mode sockets that have received hello and are open." },
};

/* One counter family: up to two labels, each from a fixed name table. */
struct family {
	const char *name;
	const char *help;
	const char *label[2];			/* NULL: no such label */
	const char *const *values[2];
	size_t nvalues[2];
	_Atomic uint64_t *slots;		/* [i * nvalues[1] + j] */
};

static const struct family families[] = {
	{ "workbot_envelopes_total", "Socket Mode envelopes received, by type.",
	    { "type", NULL }, { envelope_names, NULL }, { METRICS_ENVELOPE_N, 0 }, envelopes },
	{ "workbot_duplicates_total", "Envelopes acked but not run again (already seen).",
	    { NULL, NULL }, { NULL, NULL }, { 0, 0 }, duplicates },
	{ "workbot_reconnects_total", "Socket Mode reconnects, by reason.",
	    { "reason", NULL }, { reconnect_names, NULL }, { METRICS_RECONNECT_N, 0 }, reconnects },
	{ "workbot_slack_api_calls_total", "Slack Web API calls, by method and outcome.",
	    { "method", "outcome" }, { api_method_names, api_outcome_names },
	    { METRICS_API_METHOD_N, METRICS_API_OUTCOME_N }, api_calls },
	{ "workbot_jobs_rejected_total", "Envelopes not acked because the job queue was full.",
	    { NULL, NULL }, { NULL, NULL }, { 0, 0 }, jobs_rejected },
	{ "workbot_oauth_logins_total", "OAuth logins, by outcome.",
	    { "outcome", NULL }, { oauth_names, NULL }, { METRICS_OAUTH_N, 0 }, oauth_logins },
	{ "workbot_token_refreshes_total", "OAuth token refreshes, by outcome.",
	    { "outcome", NULL }, { refresh_names, NULL }, { METRICS_REFRESH_N, 0 }, token_refreshes },
};

static inline void
bump(_Atomic uint64_t *slot)
{
	atomic_fetch_add_explicit(slot, 1, memory_order_relaxed);
}

/* Clamp an enum to its table; the last value of each table is "other". */
static inline size_t
clamp(int v, size_t n)
{
	return (v >= 0 && (size_t)v < n) ? (size_t)v : n - 1;
}

void
metrics_envelope_inc(enum metrics_envelope type)
{
	bump(&envelopes[clamp((int)type, METRICS_ENVELOPE_N)]);
}

void
metrics_duplicate_inc(void)
{
	bump(&duplicates[0]);
}

void
metrics_reconnect_inc(enum metrics_reconnect reason)
{
	bump(&reconnects[clamp((int)reason, METRICS_RECONNECT_N)]);
}

void
metrics_api_call_inc(enum metrics_api_method method, enum metrics_api_outcome outcome)
{
	size_t m = clamp((int)method, METRICS_API_METHOD_N);
	size_t o = clamp((int)outcome, METRICS_API_OUTCOME_N);

	bump(&api_calls[m * METRICS_API_OUTCOME_N + o]);
}

void
metrics_job_rejected_inc(void)
{
	bump(&jobs_rejected[0]);
}

void
metrics_oauth_login_inc(enum metrics_oauth outcome)
{
	bump(&oauth_logins[clamp((int)outcome, METRICS_OAUTH_N)]);
}

void
metrics_token_refresh_inc(enum metrics_refresh outcome)
{
	bump(&token_refreshes[clamp((int)outcome, METRICS_REFRESH_N)]);
}

void
metrics_ack_observe_us(uint64_t us)
{
	size_t i;

	for (i = 0; i < ACK_NBUCKETS; i++)
		if (us <= ack_buckets[i].us)
			break;
	bump(&ack_counts[i]);
	atomic_fetch_add_explicit(&ack_sum_us, us, memory_order_relaxed);
}

void
metrics_gauge_set(enum metrics_gauge g, int64_t value)
{
	if ((unsigned)g < METRICS_GAUGE_N)
		atomic_store_explicit(&gauges[g], value, memory_order_relaxed);
}

void
metrics_gauge_add(enum metrics_gauge g, int64_t delta)
{
	if ((unsigned)g < METRICS_GAUGE_N)
		atomic_fetch_add_explicit(&gauges[g], delta, memory_order_relaxed);
}

void
metrics_gauge_source(enum metrics_gauge g, metrics_gauge_fn fn, void *arg)
{
	if ((unsigned)g < METRICS_GAUGE_N) {
		gauge_sources[g].fn = fn;
		gauge_sources[g].arg = arg;
	}
}

/* Linear search: the tables have under ten entries. */
static size_t
label_lookup(const char *const *names, size_t n, const char *s)
{
	if (s != NULL)
		for (size_t i = 0; i + 1 < n; i++)
			if (strcmp(names[i], s) == 0)
				return i;
	return n - 1;
}

enum metrics_envelope
metrics_envelope_label(const char *type)
{
	return (enum metrics_envelope)label_lookup(envelope_names, METRICS_ENVELOPE_N, type);
}

enum metrics_reconnect
metrics_reconnect_label(const char *reason)
{
	return (enum metrics_reconnect)label_lookup(reconnect_names, METRICS_RECONNECT_N, reason);
}

enum metrics_api_method
metrics_api_method_label(const char *method)
{
	return (enum metrics_api_method)label_lookup(api_method_names, METRICS_API_METHOD_N, method);
}

/*
 * The render buffer. The label sets are fixed, so the text is a few KiB; the
 * cap only turns a broken invariant (a table grown by mistake) into a fatal
 * error instead of unbounded growth.
 */
#define RENDER_MAX (256u * 1024u)

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_printf(struct sbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
sb_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(sb->p + sb->len, sb->cap - sb->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			fatal(1, "metrics", "render: vsnprintf failed");
		if ((size_t)n < sb->cap - sb->len) {
			sb->len += (size_t)n;
			return;
		}
		if (sb->cap >= RENDER_MAX)
			fatal(1, "metrics", "render: output over %u bytes", RENDER_MAX);
		sb->cap *= 2;
		sb->p = xrealloc(sb->p, sb->cap);
	}
}

static uint64_t
load(_Atomic uint64_t *slot)
{
	return atomic_load_explicit(slot, memory_order_relaxed);
}

static void
render_family(struct sbuf *sb, const struct family *f)
{
	size_t n0 = f->label[0] ? f->nvalues[0] : 1;
	size_t n1 = f->label[1] ? f->nvalues[1] : 1;

	sb_printf(sb, "# HELP %s %s\n# TYPE %s counter\n", f->name, f->help, f->name);
	for (size_t i = 0; i < n0; i++) {
		for (size_t j = 0; j < n1; j++) {
			uint64_t v = load(&f->slots[i * n1 + j]);

			if (f->label[1] != NULL)
				sb_printf(sb, "%s{%s=\"%s\",%s=\"%s\"} %" PRIu64 "\n", f->name,
				    f->label[0], f->values[0][i], f->label[1], f->values[1][j], v);
			else if (f->label[0] != NULL)
				sb_printf(sb, "%s{%s=\"%s\"} %" PRIu64 "\n", f->name,
				    f->label[0], f->values[0][i], v);
			else
				sb_printf(sb, "%s %" PRIu64 "\n", f->name, v);
		}
	}
}

static void
render_ack(struct sbuf *sb)
{
	uint64_t cum = 0;
	uint64_t sum_us = atomic_load_explicit(&ack_sum_us, memory_order_relaxed);

	sb_printf(sb, "# HELP workbot_ack_seconds Time from an envelope's arrival to its ack.\n"
	    "# TYPE workbot_ack_seconds histogram\n");
	for (size_t i = 0; i < ACK_NBUCKETS; i++) {
		cum += load(&ack_counts[i]);
		sb_printf(sb, "workbot_ack_seconds_bucket{le=\"%s\"} %" PRIu64 "\n",
		    ack_buckets[i].le, cum);
	}
	cum += load(&ack_counts[ACK_NBUCKETS]);
	sb_printf(sb, "workbot_ack_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
	sb_printf(sb, "workbot_ack_seconds_sum %" PRIu64 ".%06" PRIu64 "\n",
	    sum_us / 1000000, sum_us % 1000000);
	/* The count is what the buckets said, so +Inf == count in every render. */
	sb_printf(sb, "workbot_ack_seconds_count %" PRIu64 "\n", cum);
}

static void
render_gauges(struct sbuf *sb)
{
	for (size_t g = 0; g < METRICS_GAUGE_N; g++) {
		int64_t v = gauge_sources[g].fn != NULL
		    ? gauge_sources[g].fn(gauge_sources[g].arg)
		    : atomic_load_explicit(&gauges[g], memory_order_relaxed);

		sb_printf(sb, "# HELP %s %s\n# TYPE %s gauge\n%s %" PRId64 "\n",
		    gauge_names[g][0], gauge_names[g][1], gauge_names[g][0],
		    gauge_names[g][0], v);
	}
}

int
metrics_render(char **out, size_t *len)
{
	struct sbuf sb = { .p = xmalloc(8192), .len = 0, .cap = 8192 };

	sb.p[0] = '\0';
	for (size_t i = 0; i < NELEM(families); i++)
		render_family(&sb, &families[i]);
	render_ack(&sb);
	render_gauges(&sb);
	sb_printf(&sb, "# HELP workbot_log_lines_dropped_total Log lines dropped because stderr would block.\n"
	    "# TYPE workbot_log_lines_dropped_total counter\n"
	    "workbot_log_lines_dropped_total %" PRIu64 "\n", log_dropped());
	*out = sb.p;
	*len = sb.len;
	return 0;
}

static void
zero(_Atomic uint64_t *slots, size_t n)
{
	for (size_t i = 0; i < n; i++)
		atomic_store_explicit(&slots[i], 0, memory_order_relaxed);
}

void
metrics_reset(void)
{
	zero(envelopes, NELEM(envelopes));
	zero(duplicates, NELEM(duplicates));
	zero(reconnects, NELEM(reconnects));
	zero(api_calls, NELEM(api_calls));
	zero(jobs_rejected, NELEM(jobs_rejected));
	zero(oauth_logins, NELEM(oauth_logins));
	zero(token_refreshes, NELEM(token_refreshes));
	zero(ack_counts, NELEM(ack_counts));
	atomic_store_explicit(&ack_sum_us, 0, memory_order_relaxed);
	for (size_t g = 0; g < METRICS_GAUGE_N; g++) {
		atomic_store_explicit(&gauges[g], 0, memory_order_relaxed);
		gauge_sources[g].fn = NULL;
		gauge_sources[g].arg = NULL;
	}
}
