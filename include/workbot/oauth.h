/*
 * oauth: personal (and shared) OAuth2 connections — the login flow from a
 * Slack button to a sealed connection, then using, refreshing and revoking
 * it. DESIGN §6 "Recipes and personal connections".
 *
 * The login, in the order a browser sees it:
 *
 *   oauth_begin()     worker: a pending LOGIN record under a fresh id (128
 *                     random bits); returns <public_url>/oauth/start/<id>
 *   GET /oauth/start/<id>      oauth_start(): reads (never consumes) the
 *                     record, answers 302 to the provider's authorize URL
 *                     with a cookie binding this browser to the login
 *   GET /oauth/callback        oauth_callback(): cookie -> record (consumed)
 *                     -> state; code exchange at the pinned token_url,
 *                     userinfo, Slack user; tokens go into a WAITING record
 *                     (new id, 5 minutes) and the answer is a confirm page
 *   POST /oauth/confirm        oauth_confirm(): Connect stores the
 *                     connection and hands back what to resume; Cancel
 *                     revokes and forgets
 *   oauth_sweep()     worker, periodic: WAITING records nobody answered
 *                     are revoked at the provider and forgotten
 *
 * Using a connection: oauth_access() (refresh before use, single flight per
 * connection), oauth_refresh_after_401(), oauth_disconnect() (RFC 7009 then
 * delete), oauth_shared_access() (the shared slot or a static token).
 *
 * Config: every call takes the caller's current `struct config` (apps are
 * reloadable; the caller keeps it alive for the call). Apps are named by
 * their [app NAME]. public_url and ca_file are read from it too.
 *
 * Threads: oauth_new/oauth_free on the main thread, before the workers start
 * and after they are joined. oauth_start() is the only call meant for the
 * event thread: it reads the store, never writes, never touches the network.
 * Everything else may block (store commits, HTTP) and belongs on a worker,
 * each worker with its own http_client; any number of workers at once.
 *
 * Secrets: tokens, codes, state, verifiers, cookie values and the authorize
 * URL are `struct secret` or stay inside this module; no error text, log
 * line or page ever holds one. Errors are short safe sentences.
 */
#ifndef WORKBOT_OAUTH_H
#define WORKBOT_OAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "workbot/records.h"
#include "workbot/secret.h"

struct config;
struct http_client;
struct oauth;

#define OAUTH_COOKIE_NAME	"wb_login"
#define OAUTH_LOGIN_TTL		600	/* s: login link and its cookie */
#define OAUTH_CONFIRM_TTL	300	/* s: tokens waiting for Connect */
#define OAUTH_REFRESH_MARGIN	300	/* s: refresh this long before expiry */
#define OAUTH_RESUME_MAX	4096	/* bytes of the command to resume */
#define OAUTH_ANSWER_TO_MAX	1024	/* bytes of "where to answer" */
#define OAUTH_LINK_MAX		(RECORDS_URL_MAX + 64)
#define OAUTH_REASON_MAX	160

/* ---- set-up ---- */

/* What the Slack side of the confirm page shows. "" for anything unknown. */
struct oauth_slack_user {
	char real_name[256];
	char email[256];
	char team_name[256];
};

/*
 * Describe a Slack user for the confirm page (users.info + the team name).
 * Runs on the callback's worker with its http_client; must return within
 * timeout_ms. 0 filled, -1 unknown (the page then shows the ids).
 */
typedef int (*oauth_describe_fn)(void *arg, struct http_client *c, const char *team,
    const char *user, unsigned timeout_ms, struct oauth_slack_user *out);

struct oauth_options {
	oauth_describe_fn describe_user;	/* NULL: the page shows the ids */
	void *describe_arg;
	/*
	 * The whole callback (exchange + userinfo + describe) stays within
	 * this budget, so the listener's 15 s deferral is never hit.
	 * 0: 12000 ms.
	 */
	unsigned callback_budget_ms;
	unsigned http_timeout_ms;		/* refresh, revoke; 0: 10000 ms */
};

/* Never NULL (OOM is fatal). `r` must outlive the struct. */
struct oauth *oauth_new(struct records *r, const struct oauth_options *opt);
void oauth_free(struct oauth *o);	/* NULL is fine */

/* ---- pages ---- */

/*
 * An answer for the listener: a self-contained HTML page (inline style,
 * a title, no script, no external resource). The caller adds the security
 * headers of DESIGN §6. `location` is set only for oauth_start's 302 (it
 * carries the state: a secret); `set_cookie` is the Set-Cookie header
 * value, when there is one.
 */
struct oauth_page {
	int            status;
	char          *html;		/* NUL-terminated, `len` bytes; never NULL once filled */
	size_t         len;
	struct secret *location;	/* NULL unless status is 302 */
	struct secret *set_cookie;	/* NULL: none */
};
void oauth_page_clear(struct oauth_page *p);	/* frees, leaves it zeroed */

/*
 * HTML-escape `src` (& < > " ') into dst[size], always NUL-terminated and
 * never cut inside an entity. Returns the length the whole escaped text
 * needs (without the NUL), like snprintf.
 */
size_t oauth_html_escape(char *dst, size_t size, const char *src);

/* ---- the login ---- */

/*
 * Start a personal login for Slack user team/user and `app` (an oauth2
 * app of cfg). `resume` (≤ OAUTH_RESUME_MAX) and `answer_to`
 * (≤ OAUTH_ANSWER_TO_MAX) are opaque bytes sealed with the record and
 * handed back by oauth_confirm() after Connect. Writes the start link
 * (<public_url>/oauth/start/<id>) into link[linksz]. 0 / -1 (err).
 * The link is not a token, but it starts this user's login: post it
 * privately and do not log it.
 */
int oauth_begin(struct oauth *o, const struct config *cfg, const char *team, const char *user,
    const char *app, const void *resume, size_t resume_len, const void *answer_to,
    size_t answer_to_len, int64_t now, char *link, size_t linksz, char *err, size_t errsz);

/*
 * The same for the shared (owner) slot of `app` (`workbot connect APP
 * --shared`): user RECORDS_SHARED_USER, no Slack user on the confirm page.
 */
int oauth_begin_shared(struct oauth *o, const struct config *cfg, const char *team,
    const char *app, int64_t now, char *link, size_t linksz, char *err, size_t errsz);

/*
 * GET /oauth/start/<id> (event thread). Safe to call any number of times
 * (link previews): reads the record without consuming it. 0: a 302 with
 * `location` and `set_cookie`; -1: a 4xx failure page (unknown or expired
 * link, app gone) or 500.
 */
int oauth_start(struct oauth *o, const struct config *cfg, const char *id, int64_t now,
    struct oauth_page *out);

/* The callback's query parameters, already URL-decoded; NULL when absent. */
struct oauth_callback_params {
	const char *code;
	const char *state;
	const char *error;
	const char *error_description;	/* never shown: provider text */
	const char *iss;
};

/*
 * Decode a raw query string (or form body) "a=b&c=d" into the params
 * above. The strings live in *storage until oauth_query_free(). Unknown
 * names are ignored; a name given twice makes it -1 (an attempt to smuggle
 * a second state or code).
 */
struct oauth_query {
	char *code, *state, *error, *error_description, *iss;
};
int oauth_query_parse(const char *query, size_t len, struct oauth_query *storage,
    struct oauth_callback_params *out);
void oauth_query_free(struct oauth_query *storage);	/* wipes the code and state */

/*
 * GET /oauth/callback (worker; blocks at most callback_budget_ms).
 * `cookie` is the request's Cookie header (NULL: none). 0: the confirm page
 * (200, with a Set-Cookie that keeps the login cookie alive for the
 * confirm window); -1: a failure page, and nothing is stored.
 */
int oauth_callback(struct oauth *o, const struct config *cfg, struct http_client *c,
    const char *cookie, const struct oauth_callback_params *q, int64_t now,
    struct oauth_page *out);

enum oauth_confirm_action {
	OAUTH_CONFIRM_NONE = 0,		/* refused: nothing happened */
	OAUTH_CONFIRM_CONNECTED,
	OAUTH_CONFIRM_CANCELLED,
};

/* What the daemon needs after a Connect (or Cancel). */
struct oauth_confirmed {
	enum oauth_confirm_action action;
	bool           shared;
	char           team[RECORDS_ID_MAX + 1];
	char           user[RECORDS_ID_MAX + 1];	/* RECORDS_SHARED_USER when shared */
	char           app[RECORDS_ID_MAX + 1];
	char           account[RECORDS_ACCOUNT_MAX + 1];	/* "" when unknown */
	struct secret *resume;		/* as given to oauth_begin; NULL if none */
	struct secret *answer_to;	/* as given to oauth_begin; NULL if none */
};
void oauth_confirmed_clear(struct oauth_confirmed *d);

/*
 * POST /oauth/confirm (worker). `body` is the urlencoded form (id,
 * form_token, action=connect|cancel). 0 with done->action CONNECTED (the
 * connection is stored; re-queue done->resume and DM "Connected to <App>
 * as <account>") or CANCELLED (tokens revoked, nothing stored); -1: a
 * refused or failure page and done->action NONE. The page clears the
 * login cookie whenever the waiting record was used up.
 */
int oauth_confirm(struct oauth *o, const struct config *cfg, struct http_client *c,
    const char *cookie, const char *body, size_t body_len, int64_t now,
    struct oauth_page *out, struct oauth_confirmed *done);

/*
 * Periodic (worker): forget every pending record expired at `now`, and
 * revoke at the provider the tokens of those that were waiting for a
 * Connect. *revoked (may be NULL) gets how many waiting records were
 * revoked (or, with no revoke_url, dropped). 0 / -1 (err: the store).
 */
int oauth_sweep(struct oauth *o, const struct config *cfg, struct http_client *c, int64_t now,
    size_t *revoked, char *err, size_t errsz);

/* ---- using a connection ---- */

enum {
	OAUTH_OK = 0,
	OAUTH_NEEDS_LOGIN = 1,	/* none, expired, or refused by the provider */
};

struct oauth_access {
	struct secret *token;		/* bearer token; NULL for auth = none */
	char api_url[RECORDS_URL_MAX + 1];	/* instance_url if valid, else [app] api_url */
	char account[RECORDS_ACCOUNT_MAX + 1];
};
void oauth_access_clear(struct oauth_access *a);

/*
 * A usable access token for team/user/app. Refreshes first when the token
 * expires within OAUTH_REFRESH_MARGIN (one refresh per connection at a
 * time: others wait and use its result). OAUTH_OK (out filled),
 * OAUTH_NEEDS_LOGIN, or -1 (err: the refresh failed for another reason;
 * the connection is kept).
 */
int oauth_access(struct oauth *o, const struct config *cfg, struct http_client *c,
    const char *team, const char *user, const char *app, int64_t now,
    struct oauth_access *out, char *err, size_t errsz);

/*
 * The app answered 401 to `used` (the token the caller sent): refresh once
 * — unless another thread already did, in which case its token is
 * returned — then the caller retries once. Same results as oauth_access.
 */
int oauth_refresh_after_401(struct oauth *o, const struct config *cfg, struct http_client *c,
    const char *team, const char *user, const char *app, const struct secret *used,
    int64_t now, struct oauth_access *out, char *err, size_t errsz);

/*
 * For recipes without verify_user_access: the shared slot of an oauth2 app
 * (team/RECORDS_SHARED_USER/app), the configured token of an auth = token
 * app, nothing (token NULL) for auth = none.
 */
int oauth_shared_access(struct oauth *o, const struct config *cfg, struct http_client *c,
    const char *team, const char *app, int64_t now, struct oauth_access *out,
    char *err, size_t errsz);

struct oauth_disconnect_result {
	bool deleted;
	bool revoked;				/* the provider accepted the revocation */
	char reason[OAUTH_REASON_MAX];		/* why not revoked; safe text, "" when revoked */
};

/*
 * Disconnect: revoke at the app's revoke_url (RFC 7009: the refresh token,
 * else the access token, with the app's client authentication), then
 * delete locally whatever the provider said, and audit `action`
 * (RECORDS_AUDIT_DISCONNECTED from Slack, RECORDS_AUDIT_REVOKED from the
 * CLI). 1 deleted, 0 no such connection, -1 error (err).
 */
int oauth_disconnect(struct oauth *o, const struct config *cfg, struct http_client *c,
    const char *team, const char *user, const char *app, enum records_audit_action action,
    int64_t now, struct oauth_disconnect_result *res, char *err, size_t errsz);

#endif
