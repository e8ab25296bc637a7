/*
 * oauth_http: the OAuth routes (/oauth/...). The start route answers at once; callback
 * and confirm copy what they need out of the request (code and state as
 * secrets), defer, and run on a worker; the page comes back to the event
 * thread through loop_post and listener_respond.
 *
 * Must never log a query string, a cookie or a form body, and never send a
 * Location that came from the request (only oauth_start's, built from
 * config).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "workbot/jobq.h"
#include "workbot/listener.h"
#include "workbot/log.h"
#include "workbot/loop.h"
#include "workbot/oauth.h"
#include "workbot/oauth_http.h"
#include "workbot/xmalloc.h"

#define CODE_MAX	4096
#define STATE_MAX	512
#define SMALL_MAX	512
#define COOKIE_MAX	1024

struct oauth_http {
	struct oauth_http_opts o;
	struct listener *listener;
	struct listener_route routes[3];
};

enum req_kind { REQ_CALLBACK, REQ_CONFIRM };

struct req_job {
	struct job job;
	struct oauth_http *h;
	enum req_kind kind;
	uint64_t gen;
	struct secret *cookie;	/* "wb_login=<value>" or NULL */
	struct secret *code, *state;
	char *error, *error_description, *iss;
	struct secret *body;	/* confirm form */
	struct oauth_page page;	/* the answer, made on the worker */
};

static void
req_free(struct req_job *j)
{
	secret_free(j->cookie);
	secret_free(j->code);
	secret_free(j->state);
	free(j->error);
	free(j->error_description);
	free(j->iss);
	secret_free(j->body);
	oauth_page_clear(&j->page);
	free(j);
}

static void
reply_page(struct listener_request *req, struct listener *l, uint64_t gen, const struct oauth_page *p)
{
	struct listener_reply r = listener_page(p->status, p->html, p->len);

	r.set_cookie = p->set_cookie ? secret_reveal(p->set_cookie) : NULL;
	r.location = p->location ? secret_reveal(p->location) : NULL;
	if (req != NULL)
		listener_reply(req, &r);
	else
		(void)listener_respond(l, gen, &r);	/* -1: the browser left; fine */
}

static void
simple_page(struct listener_request *req, struct listener *l, uint64_t gen, int status, const char *msg)
{
	char html[512];
	int n = snprintf(html, sizeof(html),
	    "<!doctype html><meta charset=utf-8><title>workbot</title>"
	    "<body style=\"font-family:sans-serif;max-width:32em;margin:3em auto\"><p>%s</p>", msg);
	struct oauth_page p = { .status = status, .html = html, .len = (size_t)n };

	reply_page(req, l, gen, &p);
}

/* ---- start: event thread ---- */

static void
route_start(void *arg, struct listener_request *req)
{
	struct oauth_http *h = arg;
	const char *path = listener_request_path(req);
	const char *id = path + strlen("/oauth/start/");
	struct oauth_page page = { 0 };
	void *hold = NULL;
	const struct config *cfg = h->o.cfg_get(h->o.arg, &hold);

	oauth_start(h->o.oauth, cfg, id, (int64_t)time(NULL), &page);
	h->o.cfg_put(h->o.arg, hold);
	reply_page(req, NULL, 0, &page);
	oauth_page_clear(&page);
}

/* ---- callback and confirm: workers ---- */

static void
deliver(void *arg)
{
	struct req_job *j = arg;

	if (j->h->listener != NULL)
		reply_page(NULL, j->h->listener, j->gen, &j->page);
	req_free(j);
}

static void
req_run(struct job *job, void *worker)
{
	struct req_job *j = (struct req_job *)job;
	struct oauth_http *h = j->h;
	void *hold = NULL;
	const struct config *cfg = h->o.cfg_get(h->o.arg, &hold);
	const char *cookie = j->cookie ? secret_reveal(j->cookie) : NULL;
	int64_t now = (int64_t)time(NULL);

	if (j->kind == REQ_CALLBACK) {
		struct oauth_callback_params q = {
			.code = j->code ? secret_reveal(j->code) : NULL,
			.state = j->state ? secret_reveal(j->state) : NULL,
			.error = j->error,
			.error_description = j->error_description,
			.iss = j->iss,
		};
		oauth_callback(h->o.oauth, cfg, worker, cookie, &q, now, &j->page);
	} else {
		struct oauth_confirmed done = { 0 };

		oauth_confirm(h->o.oauth, cfg, worker, cookie, j->body ? secret_reveal(j->body) : "",
		    j->body ? secret_len(j->body) : 0, now, &j->page, &done);
		if (done.action != OAUTH_CONFIRM_NONE && h->o.on_confirmed != NULL)
			h->o.on_confirmed(h->o.arg, worker, cfg, &done);
		oauth_confirmed_clear(&done);
	}
	h->o.cfg_put(h->o.arg, hold);
	loop_post(h->o.loop, deliver, j);
}

static void
req_cancel(struct job *job)
{
	struct req_job *j = (struct req_job *)job;

	/* Stopping: the browser gets a 504 from the listener's own timeout, or nothing. */
	req_free(j);
}

/* Copy query parameter `name` (NULL when absent or too long). */
static char *
query_dup(struct listener_request *req, const char *name, size_t max)
{
	char *buf = xmalloc(max);
	int r = listener_request_query(req, name, buf, max);

	if (r != 1) {
		free(buf);
		return NULL;
	}
	return buf;
}

static struct secret *
query_secret(struct listener_request *req, const char *name, size_t max)
{
	char *v = query_dup(req, name, max);
	struct secret *s;

	if (v == NULL)
		return NULL;
	s = secret_from_str(v);
	secret_wipe(v, strlen(v));
	free(v);
	return s;
}

static struct secret *
cookie_secret(struct listener_request *req)
{
	char buf[COOKIE_MAX];
	char line[COOKIE_MAX + sizeof(OAUTH_COOKIE_NAME) + 2];
	struct secret *s;

	if (listener_request_cookie(req, OAUTH_COOKIE_NAME, buf, sizeof(buf)) != 1)
		return NULL;
	snprintf(line, sizeof(line), "%s=%s", OAUTH_COOKIE_NAME, buf);
	s = secret_from_str(line);
	secret_wipe(buf, sizeof(buf));
	secret_wipe(line, sizeof(line));
	return s;
}

static void
defer_job(struct oauth_http *h, struct listener_request *req, struct req_job *j)
{
	j->job.run = req_run;
	j->job.cancel = req_cancel;
	j->job.lane = JOBQ_GENERAL;
	j->h = h;
	j->gen = listener_request_defer(req);
	if (j->gen == 0) {	/* too many waiting: the listener answered 503 */
		req_free(j);
		return;
	}
	if (jobq_push(h->o.jobq, &j->job) != 0) {
		log_warn("oauth", "job queue full: login request refused");
		simple_page(NULL, h->listener, j->gen, 503, "workbot is busy. Please try again in a moment.");
		req_free(j);
	}
}

static void
route_callback(void *arg, struct listener_request *req)
{
	struct oauth_http *h = arg;
	struct req_job *j = xcalloc(1, sizeof(*j));

	j->kind = REQ_CALLBACK;
	j->cookie = cookie_secret(req);
	j->code = query_secret(req, "code", CODE_MAX);
	j->state = query_secret(req, "state", STATE_MAX);
	j->error = query_dup(req, "error", SMALL_MAX);
	j->error_description = query_dup(req, "error_description", SMALL_MAX);
	j->iss = query_dup(req, "iss", SMALL_MAX);
	defer_job(h, req, j);
}

static void
route_confirm(void *arg, struct listener_request *req)
{
	struct oauth_http *h = arg;
	struct req_job *j = xcalloc(1, sizeof(*j));
	size_t len = 0;
	const void *body = listener_request_body(req, &len);

	j->kind = REQ_CONFIRM;
	j->cookie = cookie_secret(req);
	j->body = body ? secret_new(body, len) : NULL;
	defer_job(h, req, j);
}

struct oauth_http *
oauth_http_new(const struct oauth_http_opts *opts)
{
	struct oauth_http *h = xcalloc(1, sizeof(*h));

	h->o = *opts;
	h->routes[0] = (struct listener_route){ "/oauth/start/", true, LISTENER_GET, route_start, h };
	h->routes[1] = (struct listener_route){ "/oauth/callback", false, LISTENER_GET, route_callback, h };
	h->routes[2] = (struct listener_route){ "/oauth/confirm", false, LISTENER_POST, route_confirm, h };
	return h;
}

void
oauth_http_free(struct oauth_http *h)
{
	free(h);
}

const struct listener_route *
oauth_http_routes(struct oauth_http *h, size_t *n)
{
	*n = sizeof(h->routes) / sizeof(h->routes[0]);
	return h->routes;
}

void
oauth_http_set_listener(struct oauth_http *h, struct listener *l)
{
	if (h != NULL)
		h->listener = l;
}
