/*
 * listener: the loopback HTTP listener (/healthz, /metrics, and the routes
 * other modules add, such as the /oauth/ ones), one vhost on the loop's lws context.
 *
 * It listens on exactly the configured numeric address and port and nowhere
 * else. Requests are matched against one route table (built-in routes
 * first, then the caller's); anything else is 404, a known path with a
 * method it does not allow is 405 with `Allow`. A handler either answers at
 * once (listener_reply) or defers: it takes the connection's generation id
 * (listener_request_defer), hands the work to a worker, and the answer comes
 * back later on the event thread through listener_respond(). If the browser
 * has gone meanwhile the answer is dropped; a deferred request not answered
 * within the deferral timeout (15 s) gets a 504 page.
 *
 * Limits (all hostile input is bounded):
 *  - request line + headers over LISTENER_HEAD_MAX (8 KiB) are answered 431
 *    and the connection closed — provided the loop's lws context was made
 *    with loop_opts.max_http_header_data >= LISTENER_HEADER_SPACE. lws 4.1.6
 *    keeps a head in that one buffer; a head that does not fit in it at all
 *    is dropped by lws without any answer. The 8 KiB is measured over the
 *    request line and every header lws knows by name; lws 4.1.6 has no API
 *    to list unknown ("custom") headers, so those count only against the
 *    LISTENER_HEADER_SPACE hard cap.
 *  - a client that has not sent a whole head within 10 s is dropped (lws's
 *    ah idle timeout); an idle keep-alive connection too.
 *  - POST bodies up to 16 KiB (413 beyond, chunked uploads 411).
 *  - at most 64 deferred requests at once (503 beyond).
 *
 * Every response carries Content-Length (keep-alive works) and the page
 * security headers: Cache-Control: no-store, Referrer-Policy: no-referrer,
 * Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline';
 * frame-ancestors 'none', X-Frame-Options: DENY, X-Content-Type-Options:
 * nosniff — on every response, not only HTML, so no route can forget them.
 *
 * Logging: one debug line per request with the method, the matched route's
 * path (never the request's path, which may carry an id), status and time.
 * Query strings (OAuth code and state) and cookies are never logged.
 *
 * Threads: everything here runs on the event thread (handlers are called
 * from lws callbacks), except that a worker may hold a generation id and
 * post a function that calls listener_respond() with loop_post().
 */
#ifndef WORKBOT_LISTENER_H
#define WORKBOT_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config_bind;
struct listener;
struct listener_request;
struct loop;

#define LISTENER_HEAD_MAX	8192u	/* request line + headers */
#define LISTENER_HEADER_SPACE	12288u	/* minimum loop_opts.max_http_header_data */
#define LISTENER_BODY_MAX	16384u	/* default POST body bound */

/* Methods, as bits so a route can allow a set. */
enum listener_method {
	LISTENER_GET = 1u << 0,
	LISTENER_POST = 1u << 1,
	LISTENER_HEAD = 1u << 2,
	LISTENER_PUT = 1u << 3,
	LISTENER_PATCH = 1u << 4,
	LISTENER_DELETE = 1u << 5,
	LISTENER_OPTIONS = 1u << 6,
};

/*
 * Called on the event thread with a request that is valid only during the
 * call. The handler must, exactly once, either listener_reply() or
 * listener_request_defer(); if it does neither the client gets a 500.
 */
typedef void (*listener_handler_fn)(void *arg, struct listener_request *req);

struct listener_route {
	const char *path;		/* "/healthz", or a prefix such as "/oauth/start/" */
	bool prefix;			/* match any path that starts with `path` */
	unsigned methods;		/* enum listener_method bits */
	listener_handler_fn handler;
	void *arg;
};

/* /healthz: filled by the daemon's callback at each request. */
struct listener_health {
	unsigned sockets_live;
	unsigned sockets_wanted;
};
typedef void (*listener_health_fn)(void *arg, struct listener_health *out);

struct listener_opts {
	const struct config_bind *bind;	/* numeric address and port */
	/* Extra routes, after the built-in ones; the table must outlive the listener. */
	const struct listener_route *routes;
	size_t nroutes;
	listener_health_fn health;	/* NULL: 0 live, 0 wanted (503) */
	void *health_arg;
	/* 0 means the default; tests shorten them. */
	unsigned head_timeout_s;	/* 10: whole head within this, else dropped */
	unsigned defer_timeout_ms;	/* 15000: deferred answer within this, else 504 */
	size_t body_max;		/* LISTENER_BODY_MAX */
	unsigned max_deferred;		/* 64 */
};

/*
 * Event thread, after loop_new(). Adds the vhost and checks that it really
 * listens. On failure returns NULL with a message in err (e.g. "127.0.0.1:8085:
 * address already in use").
 */
struct listener *listener_new(struct loop *loop, const struct listener_opts *opts,
    char *err, size_t errsz);
/*
 * Event thread, before loop_free(). Closes the vhost and its connections
 * (pending deferred requests get no answer; later listener_respond() calls
 * must not be made with this pointer). lws may still call back for the
 * vhost's last connections, so the memory is released when lws says the
 * vhost is gone (at the latest in loop_free()). NULL is fine.
 */
void listener_free(struct listener *l);

/* The port it listens on. */
uint16_t listener_port(const struct listener *l);

/* ---- Request accessors: event thread, during the handler call only. ---- */

enum listener_method listener_request_method(const struct listener_request *req);
/* The path, %-decoded and normalised by lws, without the query. */
const char *listener_request_path(const struct listener_request *req);
/*
 * Query parameter `name` (%-decoded) into buf. Returns 1 found, 0 absent,
 * -1 too long for buf (buf then holds "").
 */
int listener_request_query(struct listener_request *req, const char *name,
    char *buf, size_t size);
/* Cookie `name` from the Cookie header(s); same returns as the query lookup. */
int listener_request_cookie(struct listener_request *req, const char *name,
    char *buf, size_t size);
/* The POST body (not NUL-terminated); NULL and 0 when there was none. */
const void *listener_request_body(const struct listener_request *req, size_t *len);

/* ---- Answers ---- */

struct listener_reply {
	int status;			/* 200, 302, 404, ... */
	const char *content_type;	/* NULL: text/plain; charset=utf-8 */
	const void *body;		/* copied; may be NULL when body_len is 0 */
	size_t body_len;
	const char *set_cookie;		/* NULL, or a Set-Cookie value */
	/*
	 * NULL, or the Location of a redirect: only a URL the program built
	 * (from config), never one taken from the request. Values with control
	 * bytes are refused (the client gets a 500 instead).
	 */
	const char *location;
};

/* An HTML page reply (text/html; charset=utf-8); set .set_cookie / .location after. */
struct listener_reply listener_page(int status, const char *html, size_t len);

/* Answer now. 0, or -1 if the reply was refused (a 500 is sent instead). */
int listener_reply(struct listener_request *req, const struct listener_reply *reply);

/*
 * Defer the answer: returns the connection's generation id (never 0). Returns
 * 0 when too many requests are already waiting; the listener has then
 * answered 503 itself and the handler must just return.
 */
uint64_t listener_request_defer(struct listener_request *req);

/*
 * Event thread: deliver a deferred answer. Returns 0 when it is being sent,
 * -1 when the request is gone (client closed, timed out with 504, or an
 * unknown id) — the answer is then dropped, which is not an error. lws 4.1.6
 * does not read a connection while its request is handled, so a client
 * that closed is noticed here (a peek at the socket) and its connection
 * closed then; until then it holds one deferral slot (at most 15 s).
 */
int listener_respond(struct listener *l, uint64_t gen, const struct listener_reply *reply);

#endif
