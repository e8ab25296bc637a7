/*
 * slack_api: the Slack Web API client the workers use.
 *
 * One `struct slack_api` per daemon holds the base URL, both tokens, the
 * per-method rate-limit state and the call counters; every call borrows the
 * calling worker's `struct http_client` (http.h). A call never waits: after
 * a 429 on method M, further calls of M before its Retry-After time return
 * SLACK_DEFERRED at once, without a request and without delaying any other
 * method; the caller re-queues its job (jobq_push_at) at the time
 * slack_retry_at() gives it.
 *
 * Every answer is classified in one function, slack_classify():
 *   SLACK_OK            ok:true
 *   SLACK_ERROR         ok:false with an error the caller handles
 *                       (channel_not_found ...), or an answer that is not
 *                       Slack's; not worth retrying
 *   SLACK_FATAL_TOKEN   the token was refused (invalid_auth, token_revoked
 *                       ...): the daemon exits 2 naming
 *                       slack_token_setting(result.token)
 *   SLACK_RATE_LIMITED  HTTP 429 or `ratelimited` (retry_after_s, 0: none)
 *   SLACK_DEFERRED      not sent: the method is still rate limited
 *   SLACK_TRANSIENT     5xx, Slack's internal_error family, timeouts,
 *                       connection and TLS failures: back off and retry
 *
 * Tokens travel only in the Authorization header, and the socket URL and
 * response_url are `struct secret`: none of them is ever logged. This module
 * logs each failed call once (method, outcome, Slack's error, status);
 * callers log only what they decide to do about it.
 *
 * Threads: slack_api_new/free on the main thread, before the workers start
 * and after they are joined. Everything else from any worker thread, each
 * with its own http_client; the rate-limit table and counters are shared
 * (a mutex, atomics). Calls block for at most the configured timeout.
 */
#ifndef WORKBOT_SLACK_API_H
#define WORKBOT_SLACK_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "workbot/http.h"
#include "workbot/secret.h"

/* Calls per job before giving up (slack_retry_at). */
#define SLACK_MAX_ATTEMPTS 5u
#define SLACK_BACKOFF_MIN_MS 1000u
#define SLACK_BACKOFF_MAX_MS 30000u

enum slack_method {
	SLACK_APPS_CONNECTIONS_OPEN = 0,
	SLACK_AUTH_TEST,
	SLACK_CHAT_POST_MESSAGE,
	SLACK_CHAT_POST_EPHEMERAL,
	SLACK_CHAT_UPDATE,
	SLACK_CONVERSATIONS_OPEN,
	SLACK_USERS_INFO,
	SLACK_RESPONSE_URL,		/* POST to an interaction's response_url */
	SLACK_METHODS
};

enum slack_outcome {
	SLACK_OK = 0,
	SLACK_ERROR,
	SLACK_FATAL_TOKEN,
	SLACK_RATE_LIMITED,
	SLACK_DEFERRED,
	SLACK_TRANSIENT,
	SLACK_OUTCOMES
};

enum slack_token {
	SLACK_TOKEN_NONE = 0,		/* response_url: no token */
	SLACK_TOKEN_APP,		/* xapp-: apps.connections.open */
	SLACK_TOKEN_BOT,		/* xoxb-: everything else */
};

struct slack_result {
	enum slack_outcome outcome;
	enum slack_method  method;
	enum slack_token   token;	/* the token this call carried */
	long     http_status;		/* 0: no HTTP answer (or not sent) */
	char     error[64];		/* Slack's `error`, or "timeout", "http_503" ...; "" when ok */
	char     detail[256];		/* transport detail (safe text), may be "" */
	unsigned retry_after_s;		/* RATE_LIMITED: Retry-After seconds, 0 if none */
	uint64_t retry_at_ms;		/* RATE_LIMITED, DEFERRED: method free again (jobq_now_ms clock) */
	cJSON   *json;			/* OK: Slack's answer, owned; slack_result_clear() */
};

struct slack_api_config {
	const char *api_url;		/* "https://slack.com/api/"; http only to loopback */
	const struct secret *app_token;	/* copied; may be NULL (then no socket calls) */
	const struct secret *bot_token;	/* copied; may be NULL (then no Web API calls) */
	const char *ca_file;		/* NULL: system CA store */
	unsigned timeout_ms;		/* 0: 10 s */
	unsigned connect_timeout_ms;	/* 0: 5 s */
	/*
	 * Called once per call, on the calling worker, after classification
	 * (deferred calls included): feeds /metrics with whatever labels that
	 * module uses (res->http_status tells 5xx from network failures). Must
	 * be quick and must not call back into slack_api. NULL: none.
	 */
	void (*observe)(void *arg, const struct slack_result *res);
	void *observe_arg;
};

struct slack_auth {
	char user_id[32];		/* the bot's user id: <@U...> mentions */
	char team_id[32];
	char team[256];
	char bot_id[32];		/* "" if absent */
};

struct slack_user {
	char id[32];
	char team_id[32];
	char real_name[256];		/* "" if absent */
	char email[256];		/* "" without users:read.email */
	bool is_bot;
};

struct slack_api;
struct http_client;

/* NULL with *why when the URL is not https (or http to loopback). */
struct slack_api *slack_api_new(const struct slack_api_config *cfg, const char **why);
void slack_api_free(struct slack_api *api);	/* NULL is fine */

/*
 * The methods. Each returns 0 when the outcome is SLACK_OK, else -1; `res`
 * is filled either way and must be released with slack_result_clear().
 */

/* POST, app token in the header only, empty form body. *url gets the wss
 * URL (it carries a ticket: a secret, never logged); caller frees it. */
int slack_apps_connections_open(struct slack_api *api, struct http_client *c,
    struct secret **url, struct slack_result *res);
int slack_auth_test(struct slack_api *api, struct http_client *c,
    struct slack_auth *out, struct slack_result *res);
/* body: the JSON arguments (channel, text, blocks, thread_ts, ts, user ...).
 * Read fields of the answer with slack_result_string (e.g. "ts"). */
int slack_chat_post_message(struct slack_api *api, struct http_client *c,
    const cJSON *body, struct slack_result *res);
int slack_chat_post_ephemeral(struct slack_api *api, struct http_client *c,
    const cJSON *body, struct slack_result *res);
int slack_chat_update(struct slack_api *api, struct http_client *c,
    const cJSON *body, struct slack_result *res);
/* The DM channel with one user: channel id into channel[size]. */
int slack_conversations_open(struct slack_api *api, struct http_client *c,
    const char *user_id, char *channel, size_t size, struct slack_result *res);
int slack_users_info(struct slack_api *api, struct http_client *c,
    const char *user_id, struct slack_user *out, struct slack_result *res);
/* POST JSON to a response_url (no token; the URL itself is the secret). */
int slack_response_url_post(struct slack_api *api, struct http_client *c,
    const struct secret *url, const cJSON *body, struct slack_result *res);

/* A top-level string of an OK answer ("ts", "message_ts"), or NULL. */
const char *slack_result_string(const struct slack_result *res, const char *key);
void slack_result_clear(struct slack_result *res);

/*
 * The one classification of an answer. http_rc and resp as http_request()
 * left them; answer: the parsed body or NULL; json_optional: a 2xx answer
 * that is not JSON counts as OK (response_url answers "ok"). Fills outcome,
 * http_status, error, detail, retry_after_s of `res` (token and method are
 * the caller's).
 */
void slack_classify(int http_rc, const struct http_resp *resp, const cJSON *answer,
    bool json_optional, struct slack_result *res);

/* Is this Slack error a refused token? */
bool slack_error_is_fatal_token(const char *error);

/* "[slack] app_token" / "[slack] bot_token" / "" */
const char *slack_token_setting(enum slack_token token);

/*
 * Backoff with full jitter: uniform in [1 s, min(30 s, 1 s * 2^attempt)];
 * attempt 0 is 1 s.
 */
uint64_t slack_backoff_ms(unsigned attempt);

/*
 * Should the caller try again, and when? `attempts` is how many times this
 * job has called so far (1 after the first call). True with *not_before_ms
 * (jobq_now_ms clock) for RATE_LIMITED, DEFERRED and TRANSIENT while
 * attempts < SLACK_MAX_ATTEMPTS; false otherwise. Waits after a Retry-After
 * get up to 1 s of jitter so deferred jobs do not return all at once.
 */
bool slack_retry_at(const struct slack_result *res, unsigned attempts, uint64_t now_ms,
    uint64_t *not_before_ms);

/* workbot_slack_api_calls_total{method,outcome} */
uint64_t slack_api_calls(struct slack_api *api, enum slack_method m, enum slack_outcome o);
const char *slack_method_name(enum slack_method m);
const char *slack_outcome_name(enum slack_outcome o);

#endif
