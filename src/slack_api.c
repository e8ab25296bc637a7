/*
 * slack_api: Slack Web API calls over http.c, for worker threads.
 *
 * How. A call is: check the method's rate-limit window (a table of
 * not-before times under one mutex) and answer SLACK_DEFERRED without any
 * traffic while it is closed; otherwise one blocking HTTP request with the
 * right token in the Authorization header; then slack_classify() turns
 * transport result + HTTP status + Slack's `ok`/`error` into one outcome, a
 * 429 closes the method's window, the outcome is counted and, unless it is
 * OK, logged once. Nothing here sleeps or retries: waiting is the caller's
 * re-queued job (see slack_retry_at), so a rate-limited method costs no
 * worker and never holds up another method.
 *
 * Never: put a token anywhere but the Authorization header (not in a body,
 * not in a URL), log a token, a socket URL or a response_url, or log Slack's
 * error text unquoted (it is input from the network).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

#include "workbot/http.h"
#include "workbot/jobq.h"
#include "workbot/log.h"
#include "workbot/secret.h"
#include "workbot/slack_api.h"
#include "workbot/xmalloc.h"

#define FORM_TYPE "application/x-www-form-urlencoded"
#define JSON_TYPE "application/json; charset=utf-8"

struct slack_api {
	char             *api_url;	/* ends with '/' */
	struct secret    *app_token;
	struct secret    *bot_token;
	char             *ca_file;
	unsigned          timeout_ms;
	unsigned          connect_timeout_ms;
	void            (*observe)(void *arg, const struct slack_result *res);
	void             *observe_arg;

	pthread_mutex_t   rl_lock;
	uint64_t          rl_until[SLACK_METHODS];	/* jobq_now_ms clock */

	atomic_uint_fast64_t calls[SLACK_METHODS][SLACK_OUTCOMES];
};

static const struct {
	const char      *name;
	enum slack_token token;
} methods[SLACK_METHODS] = {
	[SLACK_APPS_CONNECTIONS_OPEN] = { "apps.connections.open", SLACK_TOKEN_APP },
	[SLACK_AUTH_TEST]             = { "auth.test",             SLACK_TOKEN_BOT },
	[SLACK_CHAT_POST_MESSAGE]     = { "chat.postMessage",      SLACK_TOKEN_BOT },
	[SLACK_CHAT_POST_EPHEMERAL]   = { "chat.postEphemeral",    SLACK_TOKEN_BOT },
	[SLACK_CHAT_UPDATE]           = { "chat.update",           SLACK_TOKEN_BOT },
	[SLACK_CONVERSATIONS_OPEN]    = { "conversations.open",    SLACK_TOKEN_BOT },
	[SLACK_USERS_INFO]            = { "users.info",            SLACK_TOKEN_BOT },
	[SLACK_RESPONSE_URL]          = { "response_url",          SLACK_TOKEN_NONE },
};

static const char *const outcome_names[SLACK_OUTCOMES] = {
	[SLACK_OK] = "ok",
	[SLACK_ERROR] = "error",
	[SLACK_FATAL_TOKEN] = "fatal_token",
	[SLACK_RATE_LIMITED] = "rate_limited",
	[SLACK_DEFERRED] = "deferred",
	[SLACK_TRANSIENT] = "transient",
};

/* Slack refused the token itself: no retry can help; an operator must. */
static const char *const fatal_token_errors[] = {
	"account_inactive",
	"forbidden_team",
	"invalid_auth",
	"missing_args",
	"no_permission",
	"not_allowed_token_type",
	"not_authed",
	"team_disabled",
	"token_expired",
	"token_revoked",
	"user_removed_from_team",
};

/* Slack's own "try again later" errors, sent with HTTP 200. */
static const char *const transient_errors[] = {
	"fatal_error",
	"internal_error",
	"request_timeout",
	"service_unavailable",
};

const char *
slack_method_name(enum slack_method m)
{
	return (unsigned)m < SLACK_METHODS ? methods[m].name : "?";
}

const char *
slack_outcome_name(enum slack_outcome o)
{
	return (unsigned)o < SLACK_OUTCOMES ? outcome_names[o] : "?";
}

const char *
slack_token_setting(enum slack_token token)
{
	switch (token) {
	case SLACK_TOKEN_APP:
		return "[slack] app_token";
	case SLACK_TOKEN_BOT:
		return "[slack] bot_token";
	case SLACK_TOKEN_NONE:
		break;
	}
	return "";
}

static bool
in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

bool
slack_error_is_fatal_token(const char *error)
{
	return error && in_list(error, fatal_token_errors,
	    sizeof(fatal_token_errors) / sizeof(fatal_token_errors[0]));
}

void
slack_classify(int http_rc, const struct http_resp *resp, const cJSON *answer,
    bool json_optional, struct slack_result *res)
{
	const cJSON *ok = answer ? cJSON_GetObjectItemCaseSensitive(answer, "ok") : NULL;
	const char *err = answer ? cJSON_GetStringValue(
	    cJSON_GetObjectItemCaseSensitive(answer, "error")) : NULL;

	res->http_status = resp->status;
	res->retry_after_s = 0;
	res->error[0] = '\0';
	res->detail[0] = '\0';

	if (http_rc != 0) {
		snprintf(res->error, sizeof(res->error), "%s", http_error_name(resp->err));
		snprintf(res->detail, sizeof(res->detail), "%s", resp->error);
		/* A refused URL or an oversized answer will be the same next time. */
		res->outcome = resp->err == HTTP_ERR_REFUSED || resp->err == HTTP_ERR_TOO_BIG
		    ? SLACK_ERROR : SLACK_TRANSIENT;
		return;
	}
	if (resp->status == 429 || (err && strcmp(err, "ratelimited") == 0)) {
		res->outcome = SLACK_RATE_LIMITED;
		snprintf(res->error, sizeof(res->error), "ratelimited");
		res->retry_after_s = resp->retry_after_s > 0 ? (unsigned)resp->retry_after_s : 0;
		return;
	}
	if (cJSON_IsFalse(ok)) {
		snprintf(res->error, sizeof(res->error), "%s", err ? err : "unknown_error");
		if (res->token != SLACK_TOKEN_NONE && slack_error_is_fatal_token(err))
			res->outcome = SLACK_FATAL_TOKEN;
		else if (err && in_list(err, transient_errors,
		    sizeof(transient_errors) / sizeof(transient_errors[0])))
			res->outcome = SLACK_TRANSIENT;
		else if (resp->status >= 500)
			res->outcome = SLACK_TRANSIENT;
		else
			res->outcome = SLACK_ERROR;
		return;
	}
	if (resp->status >= 500) {
		res->outcome = SLACK_TRANSIENT;
		snprintf(res->error, sizeof(res->error), "http_%ld", resp->status);
		return;
	}
	if (resp->status < 200 || resp->status > 299) {
		/* 3xx (never followed), 4xx: not Slack's answer shape. */
		res->outcome = SLACK_ERROR;
		snprintf(res->error, sizeof(res->error), "http_%ld", resp->status);
		return;
	}
	if (cJSON_IsTrue(ok) || (!answer && json_optional)) {
		res->outcome = SLACK_OK;
		return;
	}
	res->outcome = SLACK_ERROR;
	snprintf(res->error, sizeof(res->error), "invalid_response");
}

uint64_t
slack_backoff_ms(unsigned attempt)
{
	uint64_t ceil = SLACK_BACKOFF_MAX_MS;

	if (attempt < 16 && ((uint64_t)SLACK_BACKOFF_MIN_MS << attempt) < ceil)
		ceil = (uint64_t)SLACK_BACKOFF_MIN_MS << attempt;
	if (ceil <= SLACK_BACKOFF_MIN_MS)
		return SLACK_BACKOFF_MIN_MS;
	/* Full jitter: spread retries of many jobs over the whole window. */
	return SLACK_BACKOFF_MIN_MS +
	    randombytes_uniform((uint32_t)(ceil - SLACK_BACKOFF_MIN_MS) + 1);
}

bool
slack_retry_at(const struct slack_result *res, unsigned attempts, uint64_t now_ms,
    uint64_t *not_before_ms)
{
	uint64_t at;

	if (attempts >= SLACK_MAX_ATTEMPTS)
		return false;
	switch (res->outcome) {
	case SLACK_RATE_LIMITED:
		if (res->retry_after_s == 0) {
			at = now_ms + slack_backoff_ms(attempts);
			break;
		}
		/* fall through */
	case SLACK_DEFERRED:
		at = res->retry_at_ms > now_ms ? res->retry_at_ms : now_ms;
		at += randombytes_uniform(1001);
		break;
	case SLACK_TRANSIENT:
		at = now_ms + slack_backoff_ms(attempts);
		break;
	default:
		return false;
	}
	*not_before_ms = at;
	return true;
}

struct slack_api *
slack_api_new(const struct slack_api_config *cfg, const char **why)
{
	struct slack_api *api;
	size_t n;

	if (!cfg->api_url || !*cfg->api_url) {
		*why = "no api_url";
		return NULL;
	}
	if (strncmp(cfg->api_url, "https://", 8) != 0 &&
	    !(strncmp(cfg->api_url, "http://", 7) == 0 && http_url_is_loopback(cfg->api_url))) {
		*why = "api_url must be https (http only to a loopback host)";
		return NULL;
	}
	api = xcalloc(1, sizeof(*api));
	n = strlen(cfg->api_url);
	api->api_url = cfg->api_url[n - 1] == '/' ? xstrdup(cfg->api_url)
	    : xasprintf("%s/", cfg->api_url);
	api->app_token = secret_dup(cfg->app_token);
	api->bot_token = secret_dup(cfg->bot_token);
	api->ca_file = cfg->ca_file ? xstrdup(cfg->ca_file) : NULL;
	api->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : HTTP_TIMEOUT_DEFAULT_MS;
	api->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms
	    : HTTP_CONNECT_TIMEOUT_DEFAULT_MS;
	api->observe = cfg->observe;
	api->observe_arg = cfg->observe_arg;
	pthread_mutex_init(&api->rl_lock, NULL);
	for (int m = 0; m < SLACK_METHODS; m++)
		for (int o = 0; o < SLACK_OUTCOMES; o++)
			atomic_init(&api->calls[m][o], 0);
	return api;
}

void
slack_api_free(struct slack_api *api)
{
	if (!api)
		return;
	free(api->api_url);
	secret_free(api->app_token);
	secret_free(api->bot_token);
	free(api->ca_file);
	pthread_mutex_destroy(&api->rl_lock);
	free(api);
}

uint64_t
slack_api_calls(struct slack_api *api, enum slack_method m, enum slack_outcome o)
{
	if ((unsigned)m >= SLACK_METHODS || (unsigned)o >= SLACK_OUTCOMES)
		return 0;
	return atomic_load(&api->calls[m][o]);
}

/* Wipe every string in a tree, then free it: answers that held a secret. */
static void
json_wipe(cJSON *j)
{
	for (; j; j = j->next) {
		if (j->valuestring)
			secret_wipe(j->valuestring, strlen(j->valuestring));
		json_wipe(j->child);
	}
}

static void
json_free_wiped(cJSON *j)
{
	json_wipe(j);
	cJSON_Delete(j);
}

void
slack_result_clear(struct slack_result *res)
{
	if (!res)
		return;
	cJSON_Delete(res->json);
	res->json = NULL;
}

const char *
slack_result_string(const struct slack_result *res, const char *key)
{
	if (!res->json)
		return NULL;
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res->json, key));
}

static void
log_outcome(const struct slack_result *r)
{
	char err[96];

	if (r->outcome == SLACK_OK)
		return;
	log_quote(err, sizeof(err), r->error);
	if (r->outcome == SLACK_DEFERRED) {
		log_debug("slack_api", "call deferred method=%s", slack_method_name(r->method));
		return;
	}
	if (r->outcome == SLACK_FATAL_TOKEN) {
		log_error("slack_api", "token refused method=%s error=%s status=%ld setting=\"%s\"",
		    slack_method_name(r->method), err, r->http_status,
		    slack_token_setting(r->token));
		return;
	}
	if (r->detail[0]) {
		char detail[300];

		log_warn("slack_api", "call failed method=%s outcome=%s error=%s status=%ld detail=%s",
		    slack_method_name(r->method), slack_outcome_name(r->outcome), err,
		    r->http_status, log_quote(detail, sizeof(detail), r->detail));
	} else {
		log_warn("slack_api", "call failed method=%s outcome=%s error=%s status=%ld retry_after=%u",
		    slack_method_name(r->method), slack_outcome_name(r->outcome), err,
		    r->http_status, r->retry_after_s);
	}
}

/*
 * Count, tell the observer, log: once per call, whatever its outcome, after
 * the method has checked the answer's shape. Returns the method's result.
 */
static int
finish(struct slack_api *api, const struct slack_result *r)
{
	atomic_fetch_add(&api->calls[r->method][r->outcome], 1);
	if (api->observe)
		api->observe(api->observe_arg, r);
	log_outcome(r);
	return r->outcome == SLACK_OK ? 0 : -1;
}

struct call {
	enum slack_method    method;
	const char          *content_type;
	const char          *body;
	size_t               body_len;
	const struct secret *secret_url;	/* response_url; else api_url + method */
	bool                 sensitive;	/* answer holds a secret: wipe it */
	bool                 json_optional;
};

/* Is the method's rate-limit window closed? Then fill a DEFERRED result. */
static bool
deferred(struct slack_api *api, enum slack_method m, struct slack_result *r)
{
	uint64_t now = jobq_now_ms(), until;

	pthread_mutex_lock(&api->rl_lock);
	until = api->rl_until[m];
	pthread_mutex_unlock(&api->rl_lock);
	if (now >= until)
		return false;
	r->outcome = SLACK_DEFERRED;
	r->retry_at_ms = until;
	snprintf(r->error, sizeof(r->error), "deferred");
	return true;
}

static void
rate_limit(struct slack_api *api, enum slack_method m, struct slack_result *r)
{
	/* No Retry-After: close the window briefly so a burst of jobs does
	 * not hammer the method; the caller backs off on top. */
	uint64_t wait = r->retry_after_s ? (uint64_t)r->retry_after_s * 1000u : SLACK_BACKOFF_MIN_MS;
	uint64_t until = jobq_now_ms() + wait;

	pthread_mutex_lock(&api->rl_lock);
	if (until > api->rl_until[m])
		api->rl_until[m] = until;
	pthread_mutex_unlock(&api->rl_lock);
	r->retry_at_ms = until;
}

static int
call(struct slack_api *api, struct http_client *c, const struct call *k, struct slack_result *r)
{
	struct http_req req = { 0 };
	struct http_resp resp;
	char *url = NULL;
	cJSON *answer = NULL;
	int rc;

	memset(r, 0, sizeof(*r));
	r->method = k->method;
	r->token = methods[k->method].token;

	if (deferred(api, k->method, r))
		goto done;

	req.method = HTTP_POST;
	if (k->secret_url) {
		req.secret_url = k->secret_url;
	} else {
		url = xasprintf("%s%s", api->api_url, methods[k->method].name);
		req.url = url;
	}
	req.bearer = r->token == SLACK_TOKEN_APP ? api->app_token
	    : r->token == SLACK_TOKEN_BOT ? api->bot_token : NULL;
	if (r->token != SLACK_TOKEN_NONE && !req.bearer) {
		r->outcome = SLACK_FATAL_TOKEN;
		snprintf(r->error, sizeof(r->error), "not_authed");
		snprintf(r->detail, sizeof(r->detail), "no token configured");
		goto done;
	}
	req.content_type = k->content_type;
	req.body = k->body;
	req.body_len = k->body_len;
	req.timeout_ms = api->timeout_ms;
	req.connect_timeout_ms = api->connect_timeout_ms;
	req.ca_file = api->ca_file;
	req.sensitive = k->sensitive;

	rc = http_request(c, &req, &resp);
	if (rc == 0 && resp.body_len > 0)
		answer = cJSON_ParseWithLength(resp.body, resp.body_len);
	slack_classify(rc, &resp, answer, k->json_optional, r);
	http_resp_clear(&resp);
	if (r->outcome == SLACK_RATE_LIMITED)
		rate_limit(api, k->method, r);
	if (r->outcome == SLACK_OK)
		r->json = answer;
	else if (k->sensitive)
		json_free_wiped(answer);
	else
		cJSON_Delete(answer);
done:
	free(url);
	return r->outcome == SLACK_OK ? 0 : -1;
}

/* An OK answer that lacks what we need is Slack's bug or not Slack. */
static void
malformed(struct slack_result *r)
{
	cJSON_Delete(r->json);
	r->json = NULL;
	r->outcome = SLACK_ERROR;
	snprintf(r->error, sizeof(r->error), "invalid_response");
}

static int
copy_field(char *dst, size_t size, const cJSON *obj, const char *key, bool required)
{
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));

	dst[0] = '\0';
	if (!v)
		return required ? -1 : 0;
	if (strlen(v) >= size)
		return -1;
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

int
slack_apps_connections_open(struct slack_api *api, struct http_client *c,
    struct secret **url, struct slack_result *res)
{
	struct call k = {
		.method = SLACK_APPS_CONNECTIONS_OPEN,
		.content_type = FORM_TYPE,
		.body = "",
		.body_len = 0,
		.sensitive = true,
	};
	const char *u;

	*url = NULL;
	if (call(api, c, &k, res) == 0) {
		u = slack_result_string(res, "url");
		if (u && (strncmp(u, "wss://", 6) == 0 || strncmp(u, "ws://", 5) == 0))
			*url = secret_from_str(u);
		/* The ticket must not linger in freed heap. */
		json_free_wiped(res->json);
		res->json = NULL;
		if (!*url)
			malformed(res);
	}
	return finish(api, res);
}

int
slack_auth_test(struct slack_api *api, struct http_client *c, struct slack_auth *out,
    struct slack_result *res)
{
	struct call k = {
		.method = SLACK_AUTH_TEST,
		.content_type = FORM_TYPE,
		.body = "",
	};

	memset(out, 0, sizeof(*out));
	if (call(api, c, &k, res) == 0 &&
	    (copy_field(out->user_id, sizeof(out->user_id), res->json, "user_id", true) != 0 ||
	    copy_field(out->team_id, sizeof(out->team_id), res->json, "team_id", true) != 0 ||
	    copy_field(out->team, sizeof(out->team), res->json, "team", false) != 0 ||
	    copy_field(out->bot_id, sizeof(out->bot_id), res->json, "bot_id", false) != 0)) {
		memset(out, 0, sizeof(*out));
		malformed(res);
	}
	return finish(api, res);
}

/* One JSON POST; the caller finishes (it may still find the answer malformed). */
static int
post_json(struct slack_api *api, struct http_client *c, enum slack_method m,
    const struct secret *secret_url, const cJSON *body, struct slack_result *res)
{
	char *text = cJSON_PrintUnformatted(body);
	struct call k = {
		.method = m,
		.content_type = JSON_TYPE,
		.secret_url = secret_url,
		.json_optional = m == SLACK_RESPONSE_URL,
	};
	int rc;

	if (!text) {
		memset(res, 0, sizeof(*res));
		res->method = m;
		res->token = methods[m].token;
		res->outcome = SLACK_ERROR;
		snprintf(res->error, sizeof(res->error), "invalid_arguments");
		return -1;
	}
	k.body = text;
	k.body_len = strlen(text);
	rc = call(api, c, &k, res);
	cJSON_free(text);
	return rc;
}

int
slack_chat_post_message(struct slack_api *api, struct http_client *c, const cJSON *body,
    struct slack_result *res)
{
	post_json(api, c, SLACK_CHAT_POST_MESSAGE, NULL, body, res);
	return finish(api, res);
}

int
slack_chat_post_ephemeral(struct slack_api *api, struct http_client *c, const cJSON *body,
    struct slack_result *res)
{
	post_json(api, c, SLACK_CHAT_POST_EPHEMERAL, NULL, body, res);
	return finish(api, res);
}

int
slack_chat_update(struct slack_api *api, struct http_client *c, const cJSON *body,
    struct slack_result *res)
{
	post_json(api, c, SLACK_CHAT_UPDATE, NULL, body, res);
	return finish(api, res);
}

int
slack_response_url_post(struct slack_api *api, struct http_client *c,
    const struct secret *url, const cJSON *body, struct slack_result *res)
{
	post_json(api, c, SLACK_RESPONSE_URL, url, body, res);
	return finish(api, res);
}

int
slack_conversations_open(struct slack_api *api, struct http_client *c, const char *user_id,
    char *channel, size_t size, struct slack_result *res)
{
	cJSON *body = cJSON_CreateObject();
	const cJSON *ch;

	if (size)
		channel[0] = '\0';
	cJSON_AddStringToObject(body, "users", user_id);
	if (post_json(api, c, SLACK_CONVERSATIONS_OPEN, NULL, body, res) == 0) {
		ch = cJSON_GetObjectItemCaseSensitive(res->json, "channel");
		if (!cJSON_IsObject(ch) || copy_field(channel, size, ch, "id", true) != 0)
			malformed(res);
	}
	cJSON_Delete(body);
	return finish(api, res);
}

/* users.info's answer into *out; -1 if it lacks the user's id. */
static int
parse_user(const cJSON *answer, struct slack_user *out)
{
	const cJSON *user = cJSON_GetObjectItemCaseSensitive(answer, "user");
	const cJSON *profile;

	if (!cJSON_IsObject(user) ||
	    copy_field(out->id, sizeof(out->id), user, "id", true) != 0 ||
	    copy_field(out->team_id, sizeof(out->team_id), user, "team_id", false) != 0 ||
	    copy_field(out->real_name, sizeof(out->real_name), user, "real_name", false) != 0)
		return -1;
	profile = cJSON_GetObjectItemCaseSensitive(user, "profile");
	if (cJSON_IsObject(profile)) {
		/* real_name lives at the top and in profile; prefer the top one. */
		if (!out->real_name[0] &&
		    copy_field(out->real_name, sizeof(out->real_name), profile, "real_name", false) != 0)
			return -1;
		if (copy_field(out->email, sizeof(out->email), profile, "email", false) != 0)
			return -1;
	}
	out->is_bot = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(user, "is_bot"));
	return 0;
}

int
slack_users_info(struct slack_api *api, struct http_client *c, const char *user_id,
    struct slack_user *out, struct slack_result *res)
{
	/* users.info takes form arguments, not JSON. */
	char *esc = curl_easy_escape(NULL, user_id, 0);
	char *form;
	struct call k = {
		.method = SLACK_USERS_INFO,
		.content_type = FORM_TYPE,
	};

	memset(out, 0, sizeof(*out));
	if (!esc)
		fatal(1, "slack_api", "out of memory");
	form = xasprintf("user=%s", esc);
	curl_free(esc);
	k.body = form;
	k.body_len = strlen(form);
	if (call(api, c, &k, res) == 0 && parse_user(res->json, out) != 0) {
		memset(out, 0, sizeof(*out));
		malformed(res);
	}
	free(form);
	return finish(api, res);
}
