/* Unit tests for metrics: render shape, labels, histogram, "other", threads. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "workbot/metrics.h"

static int
reset(void **state)
{
	(void)state;
	metrics_reset();
	return 0;
}

static char *
render(void)
{
	char *out;
	size_t len;

	assert_int_equal(metrics_render(&out, &len), 0);
	assert_int_equal(strlen(out), len);
	return out;
}

/* The value of the series line that starts with `series ` exactly; -1 if absent. */
static long long
value_of(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtoll(p + n + 1, NULL, 10);
	}
	return -1;
}

static void
test_shape(void **state)
{
	char *t;

	(void)state;
	t = render();
	/* Every family has HELP and TYPE, names are prefixed, zeros rendered. */
	const char *families[][2] = {
		{ "workbot_envelopes_total", "counter" },
		{ "workbot_duplicates_total", "counter" },
		{ "workbot_ack_seconds", "histogram" },
		{ "workbot_reconnects_total", "counter" },
		{ "workbot_slack_api_calls_total", "counter" },
		{ "workbot_jobs_queued", "gauge" },
		{ "workbot_jobs_rejected_total", "counter" },
		{ "workbot_oauth_logins_total", "counter" },
		{ "workbot_token_refreshes_total", "counter" },
		{ "workbot_sockets_live", "gauge" },
		{ "workbot_log_lines_dropped_total", "counter" },
	};
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		char line[128];

		snprintf(line, sizeof(line), "# HELP %s ", families[i][0]);
		assert_non_null(strstr(t, line));
		snprintf(line, sizeof(line), "# TYPE %s %s\n", families[i][0], families[i][1]);
		assert_non_null(strstr(t, line));
	}
	/* Every non-comment line starts with workbot_ and ends in a number. */
	for (char *p = t; *p;) {
		char *nl = strchr(p, '\n');

		assert_non_null(nl);
		if (*p != '#') {
			assert_memory_equal(p, "workbot_", 8);
			char *sp = memrchr(p, ' ', (size_t)(nl - p));
			assert_non_null(sp);
			char *end;
			(void)strtod(sp + 1, &end);
			assert_ptr_equal(end, nl);
		}
		p = nl + 1;
	}
	assert_int_equal(value_of(t, "workbot_envelopes_total{type=\"events_api\"}"), 0);
	assert_int_equal(value_of(t, "workbot_duplicates_total"), 0);
	free(t);
}

static void
test_labels(void **state)
{
	char *t;

	(void)state;
	metrics_envelope_inc(METRICS_ENVELOPE_EVENTS_API);
	metrics_envelope_inc(METRICS_ENVELOPE_EVENTS_API);
	metrics_envelope_inc(metrics_envelope_label("slash_commands"));
	metrics_duplicate_inc();
	metrics_reconnect_inc(metrics_reconnect_label("refresh_requested"));
	metrics_api_call_inc(METRICS_API_CHAT_POST_MESSAGE, METRICS_API_RATE_LIMITED);
	metrics_api_call_inc(metrics_api_method_label("users.info"), METRICS_API_OK);
	metrics_job_rejected_inc();
	metrics_oauth_login_inc(METRICS_OAUTH_CONNECTED);
	metrics_token_refresh_inc(METRICS_REFRESH_INVALID_GRANT);
	metrics_gauge_set(METRICS_GAUGE_JOBS_QUEUED, 7);
	metrics_gauge_add(METRICS_GAUGE_JOBS_QUEUED, -2);
	t = render();
	assert_int_equal(value_of(t, "workbot_envelopes_total{type=\"events_api\"}"), 2);
	assert_int_equal(value_of(t, "workbot_envelopes_total{type=\"slash_commands\"}"), 1);
	assert_int_equal(value_of(t, "workbot_duplicates_total"), 1);
	assert_int_equal(value_of(t, "workbot_reconnects_total{reason=\"refresh_requested\"}"), 1);
	assert_int_equal(value_of(t,
	    "workbot_slack_api_calls_total{method=\"chat.postMessage\",outcome=\"rate_limited\"}"), 1);
	assert_int_equal(value_of(t,
	    "workbot_slack_api_calls_total{method=\"users.info\",outcome=\"ok\"}"), 1);
	assert_int_equal(value_of(t, "workbot_jobs_rejected_total"), 1);
	assert_int_equal(value_of(t, "workbot_oauth_logins_total{outcome=\"connected\"}"), 1);
	assert_int_equal(value_of(t, "workbot_token_refreshes_total{outcome=\"invalid_grant\"}"), 1);
	assert_int_equal(value_of(t, "workbot_jobs_queued"), 5);
	free(t);
}

static void
test_unknown_is_other(void **state)
{
	char *t;
	size_t before, after;

	(void)state;
	t = render();
	before = strlen(t);
	free(t);
	metrics_envelope_inc(metrics_envelope_label("evil\"} 1\nworkbot_fake 9"));
	metrics_envelope_inc(metrics_envelope_label(NULL));
	metrics_envelope_inc((enum metrics_envelope)1000);
	metrics_envelope_inc((enum metrics_envelope)-1);
	metrics_reconnect_inc(metrics_reconnect_label("made_up"));
	metrics_api_call_inc(metrics_api_method_label("admin.everything"), (enum metrics_api_outcome)77);
	metrics_oauth_login_inc((enum metrics_oauth)99);
	metrics_token_refresh_inc((enum metrics_refresh)99);
	metrics_gauge_set((enum metrics_gauge)99, 5);	/* ignored, not out of bounds */
	t = render();
	after = strlen(t);
	/* Same series, same length of text: no new series appeared. */
	assert_null(strstr(t, "evil"));
	assert_null(strstr(t, "workbot_fake"));
	assert_int_equal(value_of(t, "workbot_envelopes_total{type=\"other\"}"), 4);
	assert_int_equal(value_of(t, "workbot_reconnects_total{reason=\"other\"}"), 1);
	assert_int_equal(value_of(t,
	    "workbot_slack_api_calls_total{method=\"other\",outcome=\"other\"}"), 1);
	assert_int_equal(value_of(t, "workbot_oauth_logins_total{outcome=\"other\"}"), 1);
	assert_int_equal(value_of(t, "workbot_token_refreshes_total{outcome=\"other\"}"), 1);
	assert_true(after - before < 16);	/* only digits changed */
	free(t);
}

static void
test_histogram(void **state)
{
	static const char *const le[] = {
		"2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025",
		"0.005", "0.01", "0.05", "0.1", "0.25", "1", "+Inf",
	};
	/* Expected cumulative counts after the observations below. */
	static const long long want[] = { 2, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 5, 6 };
	char *t, series[96];
	long long prev = 0;

	(void)state;
	metrics_ack_observe_us(0);
	metrics_ack_observe_us(25);		/* on the bound: le is inclusive */
	metrics_ack_observe_us(26);
	metrics_ack_observe_us(200);
	metrics_ack_observe_us(1000000);
	metrics_ack_observe_us(5000000);	/* only +Inf */
	t = render();
	for (size_t i = 0; i < sizeof(le) / sizeof(le[0]); i++) {
		snprintf(series, sizeof(series), "workbot_ack_seconds_bucket{le=\"%s\"}", le[i]);
		long long v = value_of(t, series);
		assert_int_equal(v, want[i]);
		assert_true(v >= prev);		/* cumulative */
		prev = v;
	}
	assert_int_equal(value_of(t, "workbot_ack_seconds_count"), 6);
	assert_non_null(strstr(t, "workbot_ack_seconds_sum 6.000251\n"));
	free(t);
}

static int64_t
live_source(void *arg)
{
	return *(int *)arg;
}

static void
test_gauge_source(void **state)
{
	int live = 2;
	char *t;

	(void)state;
	metrics_gauge_set(METRICS_GAUGE_SOCKETS_LIVE, 9);
	metrics_gauge_source(METRICS_GAUGE_SOCKETS_LIVE, live_source, &live);
	t = render();
	assert_int_equal(value_of(t, "workbot_sockets_live"), 2);
	free(t);
	metrics_gauge_source(METRICS_GAUGE_SOCKETS_LIVE, NULL, NULL);
	t = render();
	assert_int_equal(value_of(t, "workbot_sockets_live"), 9);
	free(t);
}

#define THREADS 4
#define PER_THREAD 250000

static void *
hammer(void *arg)
{
	(void)arg;
	for (int i = 0; i < PER_THREAD; i++) {
		metrics_envelope_inc(METRICS_ENVELOPE_EVENTS_API);
		metrics_api_call_inc(METRICS_API_AUTH_TEST, METRICS_API_OK);
		metrics_ack_observe_us((uint64_t)(i % 300));
	}
	return NULL;
}

static void
test_threads(void **state)
{
	pthread_t th[THREADS];
	char *t;

	(void)state;
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hammer, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	t = render();
	assert_int_equal(value_of(t, "workbot_envelopes_total{type=\"events_api\"}"),
	    (long long)THREADS * PER_THREAD);
	assert_int_equal(value_of(t,
	    "workbot_slack_api_calls_total{method=\"auth.test\",outcome=\"ok\"}"),
	    (long long)THREADS * PER_THREAD);
	assert_int_equal(value_of(t, "workbot_ack_seconds_count"), (long long)THREADS * PER_THREAD);
	free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_shape, reset),
		cmocka_unit_test_setup(test_labels, reset),
		cmocka_unit_test_setup(test_unknown_is_other, reset),
		cmocka_unit_test_setup(test_histogram, reset),
		cmocka_unit_test_setup(test_gauge_source, reset),
		cmocka_unit_test_setup(test_threads, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
