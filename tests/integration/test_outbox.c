/*
 * outbox against the fake Slack: a 429 with Retry-After on chat.postMessage
 * is honoured (the message arrives no sooner, after one retry), while the
 * single worker stays free for other methods meanwhile; a DM opens the
 * conversation first; a message that keeps failing is given up after
 * SLACK_MAX_ATTEMPTS calls; a response_url post carries no token.
 *
 *   test_outbox FAKE_SLACK_PATH
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <sodium.h>

#include "fake_slack_client.h"
#include "workbot/http.h"
#include "workbot/jobq.h"
#include "workbot/outbox.h"
#include "workbot/slack_api.h"

static const char *fake_path;

struct env {
	struct fsc *fake;
	struct http_shared *shared;
	struct slack_api *api;
	struct jobq *q;
	struct outbox *o;
};

static int
winit(void *arg, enum jobq_lane lane, unsigned index, void **worker)
{
	(void)lane;
	(void)index;
	*worker = http_client_new(arg);
	return 0;
}

static void
wfini(void *arg, void *worker)
{
	(void)arg;
	http_client_free(worker);
}

static int
setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	struct secret *bot = secret_from_str("xoxb-0001-fake");
	const char *why = NULL;

	e->fake = fsc_spawn(fake_path, NULL, 5000);
	if (e->fake == NULL)
		return -1;
	e->shared = http_shared_new();
	{
		struct slack_api_config c = { .api_url = fsc_api_url(e->fake), .bot_token = bot };
		e->api = slack_api_new(&c, &why);
	}
	secret_free(bot);
	{
		/* One general worker: proves a waiting message does not hold it. */
		struct jobq_config jc = { .workers = 1, .capacity = 64, .delayed_capacity = 64,
			.init = winit, .fini = wfini, .arg = e->shared };
		e->q = jobq_new(&jc);
	}
	e->o = outbox_new(e->q, e->api);
	*state = e;
	return e->api && e->q ? 0 : -1;
}

static int
teardown(void **state)
{
	struct env *e = *state;

	jobq_free(e->q);
	outbox_free(e->o);
	slack_api_free(e->api);
	http_shared_free(e->shared);
	fsc_stop(e->fake);
	free(e);
	return 0;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Number of recorded calls of `method` answered ok. */
static int
ok_calls(struct env *e, const char *method)
{
	char path[128];
	cJSON *out = NULL, *calls, *c;
	int n = 0;

	snprintf(path, sizeof(path), "/_control/calls?method=%s&limit=1000", method);
	if (fsc_get(e->fake, path, &out) != 200)
		return -1;
	calls = cJSON_GetObjectItem(out, "calls");
	cJSON_ArrayForEach(c, calls)
		if (cJSON_IsTrue(cJSON_GetObjectItem(c, "ok")))
			n++;
	cJSON_Delete(out);
	return n;
}

static int
wait_calls(struct env *e, const char *method, int want, double timeout_s)
{
	double t0 = now_s();

	while (now_s() - t0 < timeout_s) {
		if (ok_calls(e, method) >= want)
			return 0;
		struct timespec ts = { 0, 20 * 1000000L };
		nanosleep(&ts, NULL);
	}
	return -1;
}

static cJSON *
msg(const char *channel, const char *text)
{
	cJSON *b = cJSON_CreateObject();

	cJSON_AddStringToObject(b, "channel", channel);
	cJSON_AddStringToObject(b, "text", text);
	return b;
}

static void
test_retry_after_honoured(void **state)
{
	struct env *e = *state;
	double t0, t_post, t_eph;

	assert_int_equal(fsc_fail(e->fake, "chat.postMessage", 1, 429, 2, NULL), 0);
	t0 = now_s();
	assert_int_equal(outbox_send(e->o, OUTBOX_POST_MESSAGE, msg("C0001", "hello"), NULL, NULL), 0);
	/* The 429 arrives; meanwhile another method goes through on the same single worker. */
	assert_int_equal(wait_calls(e, "chat.postMessage", 0, 1), 0);
	{
		struct timespec ts = { 0, 300 * 1000000L };
		nanosleep(&ts, NULL);
	}
	cJSON *eph = msg("C0001", "just for you");
	cJSON_AddStringToObject(eph, "user", "U0001");
	assert_int_equal(outbox_send(e->o, OUTBOX_POST_EPHEMERAL, eph, NULL, NULL), 0);
	assert_int_equal(wait_calls(e, "chat.postEphemeral", 1, 1.5), 0);
	t_eph = now_s() - t0;
	assert_true(t_eph < 1.9);	/* not stuck behind the waiting message */
	assert_int_equal(wait_calls(e, "chat.postMessage", 1, 6), 0);
	t_post = now_s() - t0;
	assert_true(t_post >= 1.9);	/* Retry-After: 2 */
	assert_true(t_post < 5.0);
	assert_int_equal(outbox_sent(e->o), 2);
	assert_int_equal(outbox_failed(e->o), 0);
}

static void
test_dm_opens_conversation(void **state)
{
	struct env *e = *state;

	assert_int_equal(outbox_send(e->o, OUTBOX_DM, msg("", "Connected to Salesforce"), NULL, "U0001"), 0);
	assert_int_equal(wait_calls(e, "chat.postMessage", 2, 3), 0);
	assert_true(ok_calls(e, "conversations.open") >= 1);
}

static void
test_gives_up(void **state)
{
	struct env *e = *state;
	uint64_t failed0 = outbox_failed(e->o);
	double t0 = now_s();

	/* 500s until the attempts run out: bounded, then dropped with a log line. */
	assert_int_equal(fsc_fail(e->fake, "chat.update", 100, 500, 0, NULL), 0);
	cJSON *u = msg("C0001", "edit");
	cJSON_AddStringToObject(u, "ts", "1.2");
	assert_int_equal(outbox_send(e->o, OUTBOX_UPDATE, u, NULL, NULL), 0);
	while (outbox_failed(e->o) == failed0 && now_s() - t0 < 60) {
		struct timespec ts = { 0, 50 * 1000000L };
		nanosleep(&ts, NULL);
	}
	assert_int_equal(outbox_failed(e->o), failed0 + 1);
	fsc_reset(e->fake);
}

static void
test_response_url(void **state)
{
	struct env *e = *state;
	char url[256];
	cJSON *out = NULL, *calls, *last;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/response/abc123", fsc_port(e->fake));
	assert_int_equal(outbox_send(e->o, OUTBOX_RESPONSE_URL, msg("", "replaced"), secret_from_str(url), NULL), 0);
	assert_int_equal(wait_calls(e, "response_url", 1, 3), 0);
	assert_int_equal(fsc_get(e->fake, "/_control/calls?method=response_url&limit=10", &out), 200);
	calls = cJSON_GetObjectItem(out, "calls");
	last = cJSON_GetArrayItem(calls, cJSON_GetArraySize(calls) - 1);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(last, "token_type")), "none");
	cJSON_Delete(out);
	/* A response_url kind without a URL is refused, not sent. */
	assert_int_equal(outbox_send(e->o, OUTBOX_RESPONSE_URL, msg("", "x"), NULL, NULL), -1);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retry_after_honoured),
		cmocka_unit_test(test_dm_opens_conversation),
		cmocka_unit_test(test_gives_up),
		cmocka_unit_test(test_response_url),
	};
	int rc;

	if (argc < 2 || sodium_init() < 0)
		return 2;
	fake_path = argv[1];
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, setup, teardown);
	curl_global_cleanup();
	return rc;
}
