/*
 * Unit tests for slack_api against tests/unit/http_stub on 127.0.0.1.
 *
 * Every line the module logs during the whole run goes to a temporary file;
 * the last test reads it and fails if a token, the socket URL's ticket or a
 * response_url's path shows up anywhere in it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "workbot/http.h"
#include "workbot/jobq.h"
#include "workbot/log.h"
#include "workbot/secret.h"
#include "workbot/slack_api.h"
#include "http_stub.h"

#define APP_TOKEN "xapp-1-A111-222-APPTOKENSECRET"
#define BOT_TOKEN "xoxb-111-222-BOTTOKENSECRET"
#define TICKET "TICKETSECRET42"
#define HOOK_PATH "HOOKPATHSECRET"

static char log_path[] = "/tmp/workbot-test-slack-api-XXXXXX";
static int log_fd = -1;

struct fixture {
	struct http_stub   *stub;
	struct http_client *client;
	struct slack_api   *api;
	struct secret      *app, *bot;
};

static int
group_setup(void **state)
{
	(void)state;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	log_fd = mkstemp(log_path);
	if (log_fd < 0)
		return -1;
	log_set_fd(log_fd);
	log_set_level(LOG_DEBUG);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	log_set_fd(-1);
	close(log_fd);
	unlink(log_path);
	curl_global_cleanup();
	return 0;
}

static struct slack_api *
make_api(struct fixture *f, unsigned timeout_ms)
{
	char url[128];
	const char *why = NULL;
	struct slack_api_config cfg = {
		.api_url = url, .app_token = f->app, .bot_token = f->bot,
		.timeout_ms = timeout_ms,
	};
	struct slack_api *api;

	snprintf(url, sizeof(url), "%s/api/", http_stub_base(f->stub));
	api = slack_api_new(&cfg, &why);
	assert_non_null(api);
	return api;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->stub = http_stub_start();
	if (!f->stub)
		return -1;
	f->client = http_client_new(NULL);
	f->app = secret_from_str(APP_TOKEN);
	f->bot = secret_from_str(BOT_TOKEN);
	f->api = make_api(f, 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	slack_api_free(f->api);
	http_client_free(f->client);
	http_stub_stop(f->stub);
	secret_free(f->app);
	secret_free(f->bot);
	free(f);
	return 0;
}

static void
test_connections_open(void **state)
{
	struct fixture *f = *state;
	struct slack_result res;
	struct secret *url = NULL;
	const struct http_stub_request *r;
	char v[256];

	http_stub_answer(f->stub, 200, "Content-Type: application/json\r\n",
	    "{\"ok\":true,\"url\":\"wss:\\/\\/wss-primary.slack.com\\/link\\/?ticket="
	    TICKET "&app_id=abc\"}");
	assert_int_equal(slack_apps_connections_open(f->api, f->client, &url, &res), 0);
	assert_int_equal(res.outcome, SLACK_OK);
	assert_int_equal(res.token, SLACK_TOKEN_APP);
	assert_non_null(url);
	assert_string_equal(secret_reveal(url),
	    "wss://wss-primary.slack.com/link/?ticket=" TICKET "&app_id=abc");
	assert_null(res.json);	/* the answer held the ticket: already wiped */
	slack_result_clear(&res);
	secret_free(url);

	r = http_stub_request(f->stub, 0);
	assert_string_equal(r->method, "POST");
	assert_string_equal(r->target, "/api/apps.connections.open");
	assert_string_equal(http_stub_header(r, "Authorization", v, sizeof(v)),
	    "Bearer " APP_TOKEN);
	assert_string_equal(http_stub_header(r, "Content-Type", v, sizeof(v)),
	    "application/x-www-form-urlencoded");
	/* The token is in the header and nowhere else. */
	assert_int_equal(r->body_len, 0);
	assert_null(strstr(r->target, "xapp"));
	assert_null(strstr(r->body, "xapp"));
	assert_null(strstr(r->headers, BOT_TOKEN));
	assert_int_equal(slack_api_calls(f->api, SLACK_APPS_CONNECTIONS_OPEN, SLACK_OK), 1);

	/* An answer without a usable URL is an error, not a crash. */
	http_stub_answer(f->stub, 200, NULL, "{\"ok\":true,\"url\":\"https://x/\"}");
	assert_int_equal(slack_apps_connections_open(f->api, f->client, &url, &res), -1);
	assert_null(url);
	assert_int_equal(res.outcome, SLACK_ERROR);
	assert_string_equal(res.error, "invalid_response");
	slack_result_clear(&res);
	assert_int_equal(slack_api_calls(f->api, SLACK_APPS_CONNECTIONS_OPEN, SLACK_OK), 1);
	assert_int_equal(slack_api_calls(f->api, SLACK_APPS_CONNECTIONS_OPEN, SLACK_ERROR), 1);
}

static void
test_invalid_auth_is_fatal(void **state)
{
	struct fixture *f = *state;
	struct slack_result res;
	struct secret *url = NULL;
	struct slack_auth auth;

	http_stub_answer(f->stub, 200, NULL, "{\"ok\":false,\"error\":\"invalid_auth\"}");
	assert_int_equal(slack_apps_connections_open(f->api, f->client, &url, &res), -1);
	assert_null(url);
	assert_int_equal(res.outcome, SLACK_FATAL_TOKEN);
	assert_string_equal(res.error, "invalid_auth");
	assert_string_equal(slack_token_setting(res.token), "[slack] app_token");
	slack_result_clear(&res);

	http_stub_answer(f->stub, 200, NULL, "{\"ok\":false,\"error\":\"not_allowed_token_type\"}");
	assert_int_equal(slack_auth_test(f->api, f->client, &auth, &res), -1);
	assert_int_equal(res.outcome, SLACK_FATAL_TOKEN);
	assert_string_equal(slack_token_setting(res.token), "[slack] bot_token");
	slack_result_clear(&res);
	assert_int_equal(slack_api_calls(f->api, SLACK_AUTH_TEST, SLACK_FATAL_TOKEN), 1);
}

static void
test_ratelimited_defers_only_that_method(void **state)
{
	struct fixture *f = *state;
	struct slack_result res;
	cJSON *body = cJSON_CreateObject();
	char channel[32];
	uint64_t t0 = jobq_now_ms(), retry_at, at;

	cJSON_AddStringToObject(body, "channel", "C1");
	cJSON_AddStringToObject(body, "text", "hi");
	http_stub_answer(f->stub, 429, "Retry-After: 2\r\n",
	    "{\"ok\":false,\"error\":\"ratelimited\"}");
	assert_int_equal(slack_chat_post_message(f->api, f->client, body, &res), -1);
	assert_int_equal(res.outcome, SLACK_RATE_LIMITED);
	assert_int_equal(res.retry_after_s, 2);
	assert_int_equal(res.http_status, 429);
	assert_true(res.retry_at_ms >= t0 + 2000 && res.retry_at_ms < t0 + 3000);
	retry_at = res.retry_at_ms;
	assert_true(slack_retry_at(&res, 1, jobq_now_ms(), &at));
	assert_true(at >= retry_at && at <= retry_at + 1000);
	slack_result_clear(&res);
	assert_int_equal(http_stub_count(f->stub), 1);

	/* Same method again: no request, told when to come back. */
	assert_int_equal(slack_chat_post_message(f->api, f->client, body, &res), -1);
	assert_int_equal(res.outcome, SLACK_DEFERRED);
	assert_int_equal(res.retry_at_ms, retry_at);
	assert_true(slack_retry_at(&res, 1, jobq_now_ms(), &at));
	assert_true(at >= retry_at);
	slack_result_clear(&res);
	assert_int_equal(http_stub_count(f->stub), 1);

	/* Another method goes through meanwhile. */
	http_stub_answer(f->stub, 200, NULL, "{\"ok\":true,\"channel\":{\"id\":\"D42\"}}");
	assert_int_equal(slack_conversations_open(f->api, f->client, "U1", channel,
	    sizeof(channel), &res), 0);
	assert_string_equal(channel, "D42");
	slack_result_clear(&res);
	assert_int_equal(http_stub_count(f->stub), 2);
	assert_string_equal(http_stub_request(f->stub, 1)->body, "{\"users\":\"U1\"}");

	/* After Retry-After the method is open again. */
	while (jobq_now_ms() < retry_at && jobq_now_ms() < t0 + 5000)
		usleep(20000);
	http_stub_answer(f->stub, 200, NULL, "{\"ok\":true,\"ts\":\"1.2\"}");
	assert_int_equal(slack_chat_post_message(f->api, f->client, body, &res), 0);
	assert_string_equal(slack_result_string(&res, "ts"), "1.2");
	slack_result_clear(&res);

	assert_int_equal(slack_api_calls(f->api, SLACK_CHAT_POST_MESSAGE, SLACK_RATE_LIMITED), 1);
	assert_int_equal(slack_api_calls(f->api, SLACK_CHAT_POST_MESSAGE, SLACK_DEFERRED), 1);
	assert_int_equal(slack_api_calls(f->api, SLACK_CHAT_POST_MESSAGE, SLACK_OK), 1);
	assert_int_equal(slack_api_calls(f->api, SLACK_CONVERSATIONS_OPEN, SLACK_OK), 1);
	cJSON_Delete(body);
}

static void
test_transient(void **state)
{
	struct fixture *f = *state;
	struct slack_result res;
	struct slack_auth auth;
	struct slack_api *quick;
	struct http_stub_response stall = { .status = 200, .body = "{}", .delay_ms = 3000 };
	uint64_t at, now;

	http_stub_answer(f->stub, 500, NULL, "oops");
	assert_int_equal(slack_auth_test(f->api, f->client, &auth, &res), -1);
	assert_int_equal(res.outcome, SLACK_TRANSIENT);
	assert_string_equal(res.error, "http_500");
	now = jobq_now_ms();
	assert_true(slack_retry_at(&res, 1, now, &at));
	assert_true(at >= now + 1000 && at <= now + 2000);
	assert_false(slack_retry_at(&res, SLACK_MAX_ATTEMPTS, now, &at));
	slack_result_clear(&res);

	http_stub_answer(f->stub, 200, NULL, "{\"ok\":false,\"error\":\"internal_error\"}");
	assert_int_equal(slack_auth_test(f->api, f->client, &auth, &res), -1);
	assert_int_equal(res.outcome, SLACK_TRANSIENT);
	slack_result_clear(&res);

	/* A stalled server: every call has a timeout. */
	quick = make_api(f, 300);
	http_stub_push(f->stub, &stall);
	assert_int_equal(slack_auth_test(quick, f->client, &auth, &res), -1);
	assert_int_equal(res.outcome, SLACK_TRANSIENT);
	assert_string_equal(res.error, "timeout");
	slack_result_clear(&res);
	slack_api_free(quick);
	assert_int_equal(slack_api_calls(f->api, SLACK_AUTH_TEST, SLACK_TRANSIENT), 2);
}

static void
test_slack_error(void **state)
{
	struct fixture *f = *state;
	struct slack_result res;
	cJSON *body = cJSON_CreateObject();
	uint64_t at;

	cJSON_AddStringToObject(body, "channel", "C404");
	http_stub_answer(f->stub, 200, NULL, "{\"ok\":false,\"error\":\"channel_not_found\"}");
	assert_int_equal(slack_chat_post_ephemeral(f->api, f->client, body, &res), -1);
	assert_int_equal(res.outcome, SLACK_ERROR);
	assert_string_equal(res.error, "channel_not_found");
	assert_false(slack_retry_at(&res, 1, jobq_now_ms(), &at));
	slack_result_clear(&res);

	http_stub_answer(f->stub, 200, NULL, "<html>captive portal</html>");
	assert_int_equal(slack_chat_update(f->api, f->client, body, &res), -1);
	assert_int_equal(res.outcome, SLACK_ERROR);
	assert_string_equal(res.error, "invalid_response");
	slack_result_clear(&res);
	cJSON_Delete(body);
}

static void
test_auth_test(void **state)
{
	struct fixture *f = *state;
	struct slack_result res;
	struct slack_auth auth;
	char v[128];

	http_stub_answer(f->stub, 200, NULL,
	    "{\"ok\":true,\"url\":\"https://acme.slack.com/\",\"team\":\"Acme Inc\","
	    "\"user\":\"workbot\",\"team_id\":\"T0G9PQBBK\",\"user_id\":\"W23456789\","
	    "\"bot_id\":\"BZYBOTHED\"}");
	assert_int_equal(slack_auth_test(f->api, f->client, &auth, &res), 0);
	assert_string_equal(auth.user_id, "W23456789");
	assert_string_equal(auth.team_id, "T0G9PQBBK");
	assert_string_equal(auth.team, "Acme Inc");
	assert_string_equal(auth.bot_id, "BZYBOTHED");
	slack_result_clear(&res);
	assert_string_equal(http_stub_header(http_stub_request(f->stub, 0), "Authorization",
	    v, sizeof(v)), "Bearer " BOT_TOKEN);

	http_stub_answer(f->stub, 200, NULL, "{\"ok\":true,\"team\":\"x\"}");
	assert_int_equal(slack_auth_test(f->api, f->client, &auth, &res), -1);
	assert_int_equal(res.outcome, SLACK_ERROR);
	slack_result_clear(&res);
}

static void
test_users_info(void **state)
{
	struct fixture *f = *state;
	struct slack_result res;
	struct slack_user u;
	const struct http_stub_request *r;

	http_stub_answer(f->stub, 200, NULL,
	    "{\"ok\":true,\"user\":{\"id\":\"U123\",\"team_id\":\"T1\",\"name\":\"jane\","
	    "\"real_name\":\"Jane Doe\",\"is_bot\":false,"
	    "\"profile\":{\"real_name\":\"Jane D.\",\"email\":\"jane@acme.com\"}}}");
	assert_int_equal(slack_users_info(f->api, f->client, "U123", &u, &res), 0);
	assert_string_equal(u.id, "U123");
	assert_string_equal(u.team_id, "T1");
	assert_string_equal(u.real_name, "Jane Doe");
	assert_string_equal(u.email, "jane@acme.com");
	assert_false(u.is_bot);
	slack_result_clear(&res);
	r = http_stub_request(f->stub, 0);
	assert_string_equal(r->target, "/api/users.info");
	assert_string_equal(r->body, "user=U123");

	/* real_name only in the profile; a bot; no email scope. */
	http_stub_answer(f->stub, 200, NULL,
	    "{\"ok\":true,\"user\":{\"id\":\"B9\",\"is_bot\":true,"
	    "\"profile\":{\"real_name\":\"Deploy Bot\"}}}");
	assert_int_equal(slack_users_info(f->api, f->client, "B9", &u, &res), 0);
	assert_string_equal(u.real_name, "Deploy Bot");
	assert_string_equal(u.email, "");
	assert_true(u.is_bot);
	slack_result_clear(&res);

	/* Hostile input is escaped into the form, not spliced. */
	http_stub_answer(f->stub, 200, NULL, "{\"ok\":false,\"error\":\"user_not_found\"}");
	assert_int_equal(slack_users_info(f->api, f->client, "U1&token=x", &u, &res), -1);
	assert_int_equal(res.outcome, SLACK_ERROR);
	assert_string_equal(http_stub_request(f->stub, 2)->body, "user=U1%26token%3Dx");
	slack_result_clear(&res);
}

static void
test_response_url(void **state)
{
	struct fixture *f = *state;
	struct slack_result res;
	char url[160], v[64];
	struct secret *surl;
	cJSON *body = cJSON_CreateObject();
	const struct http_stub_request *r;

	snprintf(url, sizeof(url), "%s/actions/T1/1/" HOOK_PATH, http_stub_base(f->stub));
	surl = secret_from_str(url);
	cJSON_AddStringToObject(body, "text", "done");
	cJSON_AddTrueToObject(body, "replace_original");
	http_stub_answer(f->stub, 200, "Content-Type: text/html\r\n", "ok");
	assert_int_equal(slack_response_url_post(f->api, f->client, surl, body, &res), 0);
	slack_result_clear(&res);
	r = http_stub_request(f->stub, 0);
	assert_string_equal(r->target, "/actions/T1/1/" HOOK_PATH);
	assert_null(http_stub_header(r, "Authorization", v, sizeof(v)));
	assert_string_equal(r->body, "{\"text\":\"done\",\"replace_original\":true}");

	/* An expired hook: an error, logged without its URL. */
	http_stub_answer(f->stub, 404, NULL, "expired_url");
	assert_int_equal(slack_response_url_post(f->api, f->client, surl, body, &res), -1);
	assert_int_equal(res.outcome, SLACK_ERROR);
	assert_string_equal(res.error, "http_404");
	slack_result_clear(&res);
	secret_free(surl);
	cJSON_Delete(body);
}

static void
test_classify_table(void **state)
{
	static const struct {
		int http_rc;
		enum http_error err;
		long status, retry_after;
		const char *body;
		enum slack_token token;
		enum slack_outcome want;
	} cases[] = {
		{ 0, 0, 200, 0, "{\"ok\":true}", SLACK_TOKEN_BOT, SLACK_OK },
		{ 0, 0, 200, 0, "{\"ok\":false,\"error\":\"token_revoked\"}", SLACK_TOKEN_BOT, SLACK_FATAL_TOKEN },
		{ 0, 0, 200, 0, "{\"ok\":false,\"error\":\"account_inactive\"}", SLACK_TOKEN_APP, SLACK_FATAL_TOKEN },
		{ 0, 0, 200, 0, "{\"ok\":false,\"error\":\"not_authed\"}", SLACK_TOKEN_NONE, SLACK_ERROR },
		{ 0, 0, 200, 0, "{\"ok\":false,\"error\":\"ratelimited\"}", SLACK_TOKEN_BOT, SLACK_RATE_LIMITED },
		{ 0, 0, 429, 3, "", SLACK_TOKEN_BOT, SLACK_RATE_LIMITED },
		{ 0, 0, 502, 0, "<html>", SLACK_TOKEN_BOT, SLACK_TRANSIENT },
		{ 0, 0, 200, 0, "{\"ok\":false,\"error\":\"service_unavailable\"}", SLACK_TOKEN_BOT, SLACK_TRANSIENT },
		{ 0, 0, 200, 0, "{\"ok\":false,\"error\":\"too_many_websockets\"}", SLACK_TOKEN_APP, SLACK_ERROR },
		{ 0, 0, 200, 0, "{\"ok\":false}", SLACK_TOKEN_BOT, SLACK_ERROR },
		{ 0, 0, 302, 0, "", SLACK_TOKEN_BOT, SLACK_ERROR },
		{ 0, 0, 200, 0, "[1]", SLACK_TOKEN_BOT, SLACK_ERROR },
		{ -1, HTTP_ERR_TIMEOUT, 0, 0, NULL, SLACK_TOKEN_BOT, SLACK_TRANSIENT },
		{ -1, HTTP_ERR_CONNECT, 0, 0, NULL, SLACK_TOKEN_BOT, SLACK_TRANSIENT },
		{ -1, HTTP_ERR_TLS, 0, 0, NULL, SLACK_TOKEN_BOT, SLACK_TRANSIENT },
		{ -1, HTTP_ERR_REFUSED, 0, 0, NULL, SLACK_TOKEN_BOT, SLACK_ERROR },
		{ -1, HTTP_ERR_TOO_BIG, 200, 0, NULL, SLACK_TOKEN_BOT, SLACK_ERROR },
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_resp resp = {
			.status = cases[i].status, .retry_after_s = cases[i].retry_after,
			.err = cases[i].err,
		};
		struct slack_result res = { .token = cases[i].token };
		cJSON *j = cases[i].body ? cJSON_Parse(cases[i].body) : NULL;

		slack_classify(cases[i].http_rc, &resp, j, false, &res);
		if (res.outcome != cases[i].want)
			fail_msg("case %zu: got %s want %s", i, slack_outcome_name(res.outcome),
			    slack_outcome_name(cases[i].want));
		if (cases[i].status == 429)
			assert_int_equal(res.retry_after_s, 3);
		cJSON_Delete(j);
	}
	assert_true(slack_error_is_fatal_token("user_removed_from_team"));
	assert_false(slack_error_is_fatal_token("channel_not_found"));
	assert_false(slack_error_is_fatal_token(NULL));
}

static void
test_backoff(void **state)
{
	uint64_t lo = UINT64_MAX, hi = 0;
	(void)state;

	assert_int_equal(slack_backoff_ms(0), 1000);
	for (unsigned a = 1; a < 40; a++) {
		for (int i = 0; i < 50; i++) {
			uint64_t b = slack_backoff_ms(a);
			uint64_t ceil = a < 5 ? 1000u << a : 30000;

			assert_true(b >= 1000 && b <= ceil);
			if (a == 10) {
				lo = b < lo ? b : lo;
				hi = b > hi ? b : hi;
			}
		}
	}
	/* Jittered, not a fixed step. */
	assert_true(hi - lo > 1000);
}

static void
test_api_url_checked(void **state)
{
	struct slack_api_config cfg = { .api_url = "http://192.0.2.1/api/" };
	const char *why = NULL;
	struct slack_api *api;
	(void)state;

	assert_null(slack_api_new(&cfg, &why));
	assert_non_null(why);
	cfg.api_url = "ftp://127.0.0.1/";
	assert_null(slack_api_new(&cfg, &why));
	cfg.api_url = "https://slack.com/api";	/* the slash is added */
	api = slack_api_new(&cfg, &why);
	assert_non_null(api);
	slack_api_free(api);
	slack_api_free(NULL);
	slack_result_clear(NULL);
}

static void
test_no_token_configured(void **state)
{
	struct fixture *f = *state;
	struct slack_api_config cfg = { .api_url = "http://127.0.0.1:1/api/" };
	const char *why = NULL;
	struct slack_api *api = slack_api_new(&cfg, &why);
	struct slack_auth auth;
	struct slack_result res;

	assert_int_equal(slack_auth_test(api, f->client, &auth, &res), -1);
	assert_int_equal(res.outcome, SLACK_FATAL_TOKEN);
	assert_string_equal(slack_token_setting(res.token), "[slack] bot_token");
	slack_result_clear(&res);
	slack_api_free(api);
}

static int observed[SLACK_OUTCOMES];

static void
observe(void *arg, const struct slack_result *res)
{
	assert_ptr_equal(arg, observed);
	observed[res->outcome]++;
}

static void
test_observer_once_per_call(void **state)
{
	struct fixture *f = *state;
	char url[128];
	const char *why = NULL;
	struct slack_api_config cfg = {
		.api_url = url, .bot_token = f->bot, .observe = observe, .observe_arg = observed,
	};
	struct slack_api *api;
	struct slack_result res;
	struct slack_auth auth;

	snprintf(url, sizeof(url), "%s/api/", http_stub_base(f->stub));
	api = slack_api_new(&cfg, &why);
	memset(observed, 0, sizeof(observed));
	http_stub_answer(f->stub, 200, NULL, "{\"ok\":true,\"user_id\":\"U1\",\"team_id\":\"T1\"}");
	assert_int_equal(slack_auth_test(api, f->client, &auth, &res), 0);
	slack_result_clear(&res);
	/* ok:true but the shape is wrong: one call, counted once, as an error. */
	http_stub_answer(f->stub, 200, NULL, "{\"ok\":true}");
	assert_int_equal(slack_auth_test(api, f->client, &auth, &res), -1);
	slack_result_clear(&res);
	http_stub_answer(f->stub, 429, "Retry-After: 30\r\n", "");
	assert_int_equal(slack_auth_test(api, f->client, &auth, &res), -1);
	slack_result_clear(&res);
	assert_int_equal(slack_auth_test(api, f->client, &auth, &res), -1);
	assert_int_equal(res.outcome, SLACK_DEFERRED);
	slack_result_clear(&res);

	assert_int_equal(observed[SLACK_OK], 1);
	assert_int_equal(observed[SLACK_ERROR], 1);
	assert_int_equal(observed[SLACK_RATE_LIMITED], 1);
	assert_int_equal(observed[SLACK_DEFERRED], 1);
	for (int o = 0; o < SLACK_OUTCOMES; o++)
		assert_int_equal(slack_api_calls(api, SLACK_AUTH_TEST, (enum slack_outcome)o),
		    (uint64_t)observed[o]);
	assert_int_equal(http_stub_count(f->stub), 3);
	slack_api_free(api);
}

/* Runs last: everything the tests above made the module log. */
static void
test_zz_nothing_secret_logged(void **state)
{
	static const char *const secrets[] = {
		APP_TOKEN, BOT_TOKEN, "APPTOKENSECRET", "BOTTOKENSECRET", TICKET, HOOK_PATH,
		"xapp-", "xoxb-",
	};
	char *buf;
	off_t size = lseek(log_fd, 0, SEEK_END);
	(void)state;

	assert_true(size > 0);
	buf = calloc(1, (size_t)size + 1);
	assert_int_equal(pread(log_fd, buf, (size_t)size, 0), size);
	/* The failures above were logged, with the setting named... */
	assert_non_null(strstr(buf, "invalid_auth"));
	assert_non_null(strstr(buf, "[slack] app_token"));
	assert_non_null(strstr(buf, "method=chat.postMessage outcome=rate_limited"));
	/* ...and no secret, whole or in part. */
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		if (strstr(buf, secrets[i]))
			fail_msg("log contains %s", secrets[i]);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_connections_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_auth_is_fatal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ratelimited_defers_only_that_method, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transient, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slack_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auth_test, setup, teardown),
		cmocka_unit_test_setup_teardown(test_users_info, setup, teardown),
		cmocka_unit_test_setup_teardown(test_response_url, setup, teardown),
		cmocka_unit_test(test_classify_table),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_api_url_checked),
		cmocka_unit_test_setup_teardown(test_no_token_configured, setup, teardown),
		cmocka_unit_test_setup_teardown(test_observer_once_per_call, setup, teardown),
		cmocka_unit_test(test_zz_nothing_secret_logged),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
