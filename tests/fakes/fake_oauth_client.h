/*
 * fake_oauth_client: drive tests/fakes/fake_oauth from C tests (libcurl,
 * blocking, loopback only).
 *
 * A `struct foc` is one fake provider: started here (foc_spawn: fork + exec
 * with --port 0, reads the "PORT N" line) or attached to a running one
 * (foc_attach). It owns one curl easy handle: use it from one thread only.
 * Every call is bounded by a timeout (10 s); redirects are never followed.
 * Answers are parsed JSON (cJSON, caller frees); calls return the HTTP status
 * (-1 on a transport error). Nothing here prints a token.
 *
 * Control API summary (params as query, JSON object or form body):
 *   POST /_control/app  client_id client_secret client_auth=basic|body
 *        style=generic|salesforce|box redirect_uris scopes rotate_refresh
 *        issue_refresh refresh_echo expires_in=N|none lifetime code_ttl
 *        issuer instance_url default_account token_prefix salesforce
 *   POST /_control/next_login client_id account deny error description count clear
 *   POST /_control/account account sub name preferred_username email omit=a,b
 *   POST /_control/fail endpoint=authorize|token|revoke|userinfo|resource
 *        count status hang_ms error body content_type grant_type (count=0 clears)
 *   POST /_control/expire [account client_id]  POST /_control/kill_grants [...]
 *   GET  /_control/stats | apps | authorizations | token_requests | revocations
 *        | calls?account=&since=&limit= | tokens?client_id=&account= | health
 *   POST /_control/reset | shutdown
 */
#ifndef FAKE_OAUTH_CLIENT_H
#define FAKE_OAUTH_CLIENT_H

#include <stddef.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

struct foc;

/* Start `fake_path` (argv: fake_path --port 0 extra_args...), wait for its
 * port (at most timeout_ms). NULL on failure. extra_args may be NULL. */
struct foc *foc_spawn(const char *fake_path, const char *const *extra_args,
		      int timeout_ms);
struct foc *foc_attach(int port);
/* SIGTERM when spawned here (waits ≤ 5 s, then SIGKILL), free. Returns the
 * child's exit status (0 = clean), 0 when attached, -1 on error. */
int foc_stop(struct foc *f);

int foc_port(const struct foc *f);
pid_t foc_pid(const struct foc *f);
/* "http://127.0.0.1:PORT" (no trailing slash): authorize_url is base +
 * "/authorize", token_url + "/token", revoke_url + "/revoke", userinfo_url +
 * "/userinfo", a Salesforce-like api_url base + "/sf". */
const char *foc_base_url(const struct foc *f);

/* One request. `method` "GET"/"POST"/...; path includes the query;
 * `authorization` is the whole header value ("Bearer x", "Basic y") or NULL;
 * `ctype` NULL with a body means form-urlencoded. *body_out (may be NULL)
 * gets the raw answer (malloc'd, NUL-terminated; free()); *location (may be
 * NULL) the Location header of a redirect. Returns the HTTP status or -1. */
int foc_request(struct foc *f, const char *method, const char *path,
		const char *authorization, const char *body, const char *ctype,
		char **body_out, char *location, size_t loclen);

/* Control calls: POST with a JSON object body (may be NULL) / GET. */
int foc_control(struct foc *f, const char *route, const char *json, cJSON **out);
int foc_control_get(struct foc *f, const char *route_and_query, cJSON **out);

/* Helpers (0 ok, -1 error). */
int foc_app(struct foc *f, const char *json);
int foc_next_login(struct foc *f, const char *client_id, const char *account, int deny);
int foc_fail(struct foc *f, const char *endpoint, int count, int status, int hang_ms,
	     const char *error, const char *grant_type);
int foc_expire(struct foc *f, const char *account); /* NULL: every account */
int foc_reset(struct foc *f);
/* A counter from /_control/stats ("token.refresh_token", ...): its value,
 * 0 when absent, -1 on error. */
double foc_count(struct foc *f, const char *name);

/* PKCE pair: verifier (43 base64url chars) and its S256 challenge. */
void foc_pkce(char verifier[64], char challenge[64]);

/* A whole code flow as a browser + client would run it: authorize (as the
 * queued or default account) -> code -> token (PKCE, client auth `basic` or
 * body). *token (may be NULL) gets the token answer. Returns the token
 * endpoint's HTTP status, or -1 when the authorize step gave no code. */
int foc_login(struct foc *f, const char *client_id, const char *client_secret,
	      int basic, const char *redirect_uri, const char *scope, cJSON **token);

#endif
