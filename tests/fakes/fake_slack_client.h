/*
 * fake_slack_client: drive tests/fakes/fake_slack from C tests and
 * benchmarks (libcurl, blocking, loopback only).
 *
 * A `struct fsc` is one fake Slack: either started here (fsc_spawn: fork +
 * exec with --port 0, reads the "PORT N" line) or attached to a running one
 * (fsc_attach). It owns one curl easy handle: use it from one thread only.
 * Every call is bounded by a timeout; answers are parsed JSON (cJSON, caller
 * frees) and the HTTP status is returned (-1 on a transport error).
 *
 * Control API summary (see fake_slack.c / the README in the report):
 *   POST /_control/push?type=message_im|app_mention|message_channel|noop|
 *        block_actions|slash_command|raw|garbage&socket=any|newest|oldest|ID
 *        &user=&team=&channel=&text=&event_id=&action_id=&value=&fragment=
 *        &retry_attempt=&pad=&frame=text|binary
 *   POST /_control/disconnect?reason=&socket=&then=none|close|kill&delay_ms=
 *   POST /_control/kill?socket=&mode=fin|rst   POST /_control/silent?socket=&on=
 *   POST /_control/fail?method=&count=&status=&retry_after=&error=&body=html
 *   POST /_control/config?...   POST /_control/user?id=&team_id=&real_name=&email=
 *   POST /_control/burst?n=&window=&socket=&type=&timeout_ms=&wait=
 *   GET  /_control/stats | acks?since= | calls?since=&method= | blockkit | burst
 *   POST /_control/reset | shutdown
 */
#ifndef FAKE_SLACK_CLIENT_H
#define FAKE_SLACK_CLIENT_H

#include <stddef.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

struct fsc;

/* Start `fake_path` (argv: fake_path --port 0 extra_args...), wait for its
 * port (at most timeout_ms). NULL on failure. extra_args may be NULL. */
struct fsc *fsc_spawn(const char *fake_path, const char *const *extra_args,
		      int timeout_ms);
/* Use a fake that is already listening on 127.0.0.1:port. */
struct fsc *fsc_attach(int port);
/* Stop it (SIGTERM when spawned here, waits ≤ 5 s, then SIGKILL) and free.
 * Returns the child's exit status (0 = clean), 0 when attached, -1 on error. */
int fsc_stop(struct fsc *f);

int fsc_port(const struct fsc *f);
pid_t fsc_pid(const struct fsc *f);
/* "http://127.0.0.1:PORT/api/" (what workbot's [slack] api_url should be) */
const char *fsc_api_url(const struct fsc *f);

/* Plain requests. path includes the query ("/_control/stats", "/api/auth.test").
 * `bearer` may be NULL; `ctype` NULL means form. *out (may be NULL) gets the
 * parsed JSON answer or NULL; *retry_after (may be NULL) the Retry-After
 * seconds (0 if none). Return the HTTP status or -1. */
int fsc_get(struct fsc *f, const char *path, cJSON **out);
int fsc_post(struct fsc *f, const char *path, const char *bearer,
	     const char *body, const char *ctype, cJSON **out, long *retry_after);

/* URL-escape a value for a query string; free with fsc_free_str(). */
char *fsc_escape(struct fsc *f, const char *s);
void fsc_free_str(char *s);

/* Control helpers (0 ok, -1 error). */
int fsc_push(struct fsc *f, const char *query, char *envelope_id, size_t idlen);
int fsc_fail(struct fsc *f, const char *method, int count, int status,
	     int retry_after, const char *error);
int fsc_reset(struct fsc *f);
/* One number from /_control/stats (-1 on error or absent). */
double fsc_stat(struct fsc *f, const char *key);
/* Poll stats until key >= at_least (every 20 ms, ≤ timeout_ms): 0 / -1. */
int fsc_wait_stat(struct fsc *f, const char *key, double at_least, int timeout_ms);
/* apps.connections.open with an app token: the ws:// URL into url. */
int fsc_connections_open(struct fsc *f, const char *app_token, char *url,
			 size_t urllen);
/* Run /_control/burst synchronously; *out gets the stats object. */
int fsc_burst(struct fsc *f, unsigned n, unsigned window, const char *type,
	      long timeout_ms, cJSON **out);

#endif
