/*
 * listener: the loopback HTTP vhost — route table, limits, deferred answers.
 *
 * How it works. One lws vhost on the loop's context, with one protocol whose
 * per-session data is a `struct conn` (one per TCP connection, reused for
 * each keep-alive request). lws parses the head into its header buffer
 * (context-wide max_http_header_data, which must be larger than our 8 KiB
 * limit so an oversized head reaches us and can be answered 431 instead of
 * being dropped by lws). LWS_CALLBACK_HTTP then: measures the head, finds
 * the method (lws lets every known method through; 405 is ours), looks the
 * path up in the route table, reads a bounded body if there is one, and
 * calls the route's handler. A reply is turned into a header block plus a
 * body copy, and both are written from LWS_CALLBACK_HTTP_WRITEABLE — one
 * lws_write per callback, the body in chunks, each with LWS_PRE in front.
 *
 * Deferred answers. A handler that needs a worker takes a generation id
 * (a counter, never reused) for its connection. The connection stays in a
 * list; listener_respond(gen) finds it there — or does not, because the
 * browser closed (CLOSED_HTTP unlinks it) or the 15 s timer already sent a
 * 504 — and then the answer is simply dropped. Ids, not pointers, cross
 * threads, so a late answer can never reach a freed or reused connection.
 *
 * Must never: listen anywhere but the configured numeric address (IPv4 gets
 * LWS_SERVER_OPTION_DISABLE_IPV6, or lws binds [::]); answer from a route
 * not in the table; log a query string, a cookie or a request path (an
 * OAuth start path carries an id); redirect to a URL taken from the request;
 * buffer more than the head space, the body bound and one reply per
 * connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "workbot/config.h"
#include "workbot/listener.h"
#include "workbot/log.h"
#include "workbot/loop.h"
#include "workbot/metrics.h"
#include "workbot/xmalloc.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

#define DEFAULT_HEAD_TIMEOUT_S	10
#define DEFAULT_DEFER_MS	15000
#define DEFAULT_MAX_DEFERRED	64
/* One lws_write per WRITEABLE: small enough to never sit long in lws's buffer. */
#define WRITE_CHUNK		4096
/* Big enough for any header lws can hold (max_http_header_data is 16-bit). */
#define SCRATCH_SIZE		65536

/* Per-connection state: lws's per-session data for our protocol. */
struct conn {
	struct lws *wsi;
	struct listener *l;		/* NULL once the listener is gone */
	struct conn *prev, *next;	/* l->conns, while linked */
	bool linked;

	/* The current request. */
	enum listener_method method;
	const struct listener_route *route;
	char *path;
	int64_t start_us;
	unsigned char *body;
	size_t body_len, body_want;
	bool reading_body;
	bool answered;			/* a reply is queued or being written */
	uint64_t gen;			/* nonzero while deferred */
	lws_sorted_usec_list_t sul;	/* deferral timeout */

	/* The reply being written. */
	int status;
	unsigned char *head;		/* LWS_PRE + header block */
	size_t head_len;
	unsigned char *out;		/* body copy */
	size_t out_len, out_pos;
	bool head_sent;
	bool close_after;
};

struct listener {
	struct loop *loop;
	struct lws_context *ctx;
	struct lws_vhost *vh;
	struct lws_protocols protocols[2];
	uint16_t port;
	char addr_text[INET6_ADDRSTRLEN + 8];

	const struct listener_route *routes;
	size_t nroutes;
	listener_health_fn health;
	void *health_arg;
	unsigned head_timeout_s;
	unsigned defer_timeout_ms;
	size_t body_max;
	unsigned max_deferred;

	bool freed;			/* listener_free() ran; memory kept for lws */
	bool destroyed;			/* lws sent PROTOCOL_DESTROY for the vhost */
	struct conn *conns;		/* every connection that reached a request */
	unsigned ndeferred;
	uint64_t next_gen;
	int64_t started_ms;
	char *scratch;			/* SCRATCH_SIZE, for header copies */
};

/* ---- Built-in routes ---- */

static void listener_release(struct listener *l);
static void route_healthz(void *arg, struct listener_request *req);
static void route_metrics(void *arg, struct listener_request *req);

static const struct listener_route builtin_routes[] = {
	{ "/healthz", false, LISTENER_GET, route_healthz, NULL },
	{ "/metrics", false, LISTENER_GET, route_metrics, NULL },
};

/* Methods: the lws token that carries the URI for each, and the name for Allow. */
static const struct {
	enum lws_token_indexes token;
	enum listener_method method;
	const char *name;
} methods[] = {
	{ WSI_TOKEN_GET_URI, LISTENER_GET, "GET" },
	{ WSI_TOKEN_POST_URI, LISTENER_POST, "POST" },
	{ WSI_TOKEN_HEAD_URI, LISTENER_HEAD, "HEAD" },
	{ WSI_TOKEN_PUT_URI, LISTENER_PUT, "PUT" },
	{ WSI_TOKEN_PATCH_URI, LISTENER_PATCH, "PATCH" },
	{ WSI_TOKEN_DELETE_URI, LISTENER_DELETE, "DELETE" },
	{ WSI_TOKEN_OPTIONS_URI, LISTENER_OPTIONS, "OPTIONS" },
};

/* Sent on every response; see listener.h for why not only on pages. */
static const struct {
	const char *name;
	const char *value;
} security_headers[] = {
	{ "cache-control:", "no-store" },
	{ "referrer-policy:", "no-referrer" },
	{ "content-security-policy:", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'" },
	{ "x-frame-options:", "DENY" },
	{ "x-content-type-options:", "nosniff" },
};

/* Reason phrases lws 4.1.6 does not know; lws's own table covers the rest. */
static const struct {
	int status;
	const char *text;
} reasons[] = {
	{ 200, "OK" }, { 302, "Found" }, { 303, "See Other" }, { 400, "Bad Request" },
	{ 403, "Forbidden" }, { 404, "Not Found" }, { 405, "Method Not Allowed" },
	{ 411, "Length Required" }, { 413, "Content Too Large" },
	{ 431, "Request Header Fields Too Large" }, { 500, "Internal Server Error" },
	{ 503, "Service Unavailable" }, { 504, "Gateway Timeout" },
};

static const char *
reason_text(int status)
{
	for (size_t i = 0; i < NELEM(reasons); i++)
		if (reasons[i].status == status)
			return reasons[i].text;
	return "";
}

static const char *
method_name(enum listener_method m)
{
	for (size_t i = 0; i < NELEM(methods); i++)
		if (methods[i].method == m)
			return methods[i].name;
	return "-";
}

/* ---- Connection bookkeeping ---- */

static void
conn_link(struct listener *l, struct conn *c)
{
	if (c->linked)
		return;
	c->l = l;
	c->prev = NULL;
	c->next = l->conns;
	if (l->conns)
		l->conns->prev = c;
	l->conns = c;
	c->linked = true;
}

static void
conn_unlink(struct conn *c)
{
	if (!c->linked)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else if (c->l)
		c->l->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	c->linked = false;
}

static void
conn_undefer(struct conn *c)
{
	if (c->gen == 0)
		return;
	lws_sul_cancel(&c->sul);
	c->gen = 0;
	if (c->l != NULL && c->l->ndeferred > 0)
		c->l->ndeferred--;
}

/* Forget the current request and its reply (keep-alive: the next may follow). */
static void
conn_reset_request(struct conn *c)
{
	conn_undefer(c);
	free(c->path);
	free(c->body);
	free(c->head);
	free(c->out);
	c->path = NULL;
	c->body = NULL;
	c->head = NULL;
	c->out = NULL;
	c->body_len = c->body_want = c->head_len = c->out_len = c->out_pos = 0;
	c->reading_body = c->answered = c->head_sent = c->close_after = false;
	c->route = NULL;
	c->method = 0;
	c->status = 0;
}

static void
conn_gone(struct conn *c)
{
	conn_reset_request(c);
	conn_unlink(c);
	c->wsi = NULL;
}

/* ---- Replies ---- */

static bool
header_value_ok(const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static int
add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
    unsigned char *end)
{
	return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
	    (const unsigned char *)value, (int)strlen(value), p, end);
}

/*
 * Build the header block and copy the body; WRITEABLE sends them. Returns -1
 * (nothing queued) if the reply is malformed or does not fit.
 */
static int
build_reply(struct conn *c, const struct listener_reply *r, const char *allow)
{
	const char *ctype = r->content_type ? r->content_type : "text/plain; charset=utf-8";
	char status_line[96];
	size_t cap;
	unsigned char *start, *p, *end;

	if (!header_value_ok(ctype) ||
	    (r->set_cookie && !header_value_ok(r->set_cookie)) ||
	    (r->location && !header_value_ok(r->location)) ||
	    r->status < 100 || r->status > 599 || (r->body_len > 0 && r->body == NULL))
		return -1;

	cap = 1024 + strlen(ctype) + (r->set_cookie ? strlen(r->set_cookie) : 0) +
	    (r->location ? strlen(r->location) : 0) + (allow ? strlen(allow) : 0);
	for (size_t i = 0; i < NELEM(security_headers); i++)
		cap += strlen(security_headers[i].name) + strlen(security_headers[i].value) + 4;
	c->head = xmalloc(LWS_PRE + cap);
	start = p = c->head + LWS_PRE;
	end = start + cap - 1;

	/*
	 * lws_add_http_header_status() records the status for lws's keep-alive
	 * logic and picks the protocol (HTTP/1.0 or 1.1) but knows few reason
	 * phrases (none for 431): keep its "HTTP/1.x NNN", put ours after it.
	 */
	if (lws_add_http_header_status(c->wsi, (unsigned)r->status, &p, end))
		goto fail;
	{
		unsigned char *eol = memchr(start, '\x0a', (size_t)(p - start));
		unsigned char *sp1 = memchr(start, ' ', (size_t)(p - start));
		unsigned char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(p - sp1 - 1)) : NULL;
		size_t keep, rest;
		int n;

		if (eol == NULL || sp2 == NULL || sp2 > eol)
			goto fail;
		keep = (size_t)(sp2 - start);
		rest = (size_t)(p - (eol + 1));
		n = snprintf(status_line, sizeof(status_line), " %s\x0d\x0a", reason_text(r->status));
		if (n < 0 || keep + (size_t)n + rest > cap - 1)
			goto fail;
		memmove(start + keep + (size_t)n, eol + 1, rest);
		memcpy(start + keep, status_line, (size_t)n);
		p = start + keep + (size_t)n + rest;
	}
	if (add_header(c->wsi, "content-type:", ctype, &p, end) ||
	    lws_add_http_header_content_length(c->wsi, r->body_len, &p, end))
		goto fail;
	for (size_t i = 0; i < NELEM(security_headers); i++)
		if (add_header(c->wsi, security_headers[i].name, security_headers[i].value, &p, end))
			goto fail;
	if (r->set_cookie && add_header(c->wsi, "set-cookie:", r->set_cookie, &p, end))
		goto fail;
	if (r->location && add_header(c->wsi, "location:", r->location, &p, end))
		goto fail;
	if (allow && add_header(c->wsi, "allow:", allow, &p, end))
		goto fail;
	if (c->close_after && add_header(c->wsi, "connection:", "close", &p, end))
		goto fail;
	if (lws_finalize_http_header(c->wsi, &p, end))
		goto fail;
	c->head_len = (size_t)(p - start);
	if (r->body_len > 0) {
		c->out = xmalloc(r->body_len);
		memcpy(c->out, r->body, r->body_len);
	}
	c->out_len = r->body_len;
	c->out_pos = 0;
	c->head_sent = false;
	c->status = r->status;
	c->answered = true;
	lws_callback_on_writable(c->wsi);
	return 0;
fail:
	free(c->head);
	c->head = NULL;
	return -1;
}

static void
reply_simple(struct conn *c, int status, const char *text, const char *allow)
{
	struct listener_reply r = { .status = status, .body = text, .body_len = strlen(text) };

	if (build_reply(c, &r, allow) != 0)
		fatal(1, "listener", "cannot build a %d reply", status);
}

static int
reply_or_500(struct conn *c, const struct listener_reply *r)
{
	if (build_reply(c, r, NULL) == 0)
		return 0;
	log_error("listener", "refused a malformed reply route=%s status=%d",
	    c->route ? c->route->path : "-", r->status);
	reply_simple(c, 500, "internal error\n", NULL);
	return -1;
}

struct listener_reply
listener_page(int status, const char *html, size_t len)
{
	struct listener_reply r = {
		.status = status,
		.content_type = "text/html; charset=utf-8",
		.body = html,
		.body_len = len,
	};
	return r;
}

int
listener_reply(struct listener_request *req, const struct listener_reply *reply)
{
	struct conn *c = (struct conn *)req;

	if (c->answered || c->gen != 0)
		fatal(1, "listener", "route %s answered twice", c->route ? c->route->path : "-");
	return reply_or_500(c, reply);
}

/*
 * Has the client closed? lws 4.1.6 stops reading a connection once its
 * request is being handled (it would not see the close until it writes),
 * so a deferred answer looks at the socket itself: a peeked EOF or reset
 * means the browser is gone. Pipelined bytes or EAGAIN mean it is there.
 */
static bool
peer_gone(struct conn *c)
{
	char b;
	ssize_t n = recv(lws_get_socket_fd(c->wsi), &b, 1, MSG_PEEK | MSG_DONTWAIT);

	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* Close a connection whose client has gone; lws calls CLOSED_HTTP soon after. */
static void
conn_kill(struct conn *c)
{
	conn_undefer(c);
	c->answered = true;	/* nothing more may be queued on it */
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static void
defer_expired(lws_sorted_usec_list_t *sul)
{
	struct conn *c = lws_container_of(sul, struct conn, sul);
	static const char page[] =
	    "<!doctype html><title>Timed out</title><p>This took too long. Please try again.</p>\n";
	struct listener_reply r = listener_page(504, page, sizeof(page) - 1);

	log_warn("listener", "deferred answer timed out route=%s", c->route ? c->route->path : "-");
	c->gen = 0;		/* the sul has fired: nothing to cancel */
	if (c->l != NULL && c->l->ndeferred > 0)
		c->l->ndeferred--;
	if (peer_gone(c)) {
		conn_kill(c);
		return;
	}
	reply_or_500(c, &r);
}

uint64_t
listener_request_defer(struct listener_request *req)
{
	struct conn *c = (struct conn *)req;
	struct listener *l = c->l;

	if (c->answered || c->gen != 0)
		fatal(1, "listener", "route %s deferred twice", c->route ? c->route->path : "-");
	if (l->ndeferred >= l->max_deferred) {
		log_warn("listener", "too many deferred requests limit=%u route=%s",
		    l->max_deferred, c->route ? c->route->path : "-");
		reply_simple(c, 503, "busy, try again\n", NULL);
		return 0;
	}
	c->gen = ++l->next_gen;
	l->ndeferred++;
	/*
	 * The head is complete: our own timer bounds the wait from here, so
	 * lws's head timeout must not kill the connection meanwhile.
	 */
	lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0);
	lws_sul_schedule(l->ctx, 0, &c->sul, defer_expired, (lws_usec_t)l->defer_timeout_ms * 1000);
	return c->gen;
}

int
listener_respond(struct listener *l, uint64_t gen, const struct listener_reply *reply)
{
	struct conn *c;

	if (gen == 0)
		return -1;
	for (c = l->conns; c != NULL; c = c->next)
		if (c->gen == gen)
			break;
	if (c == NULL) {
		log_debug("listener", "deferred answer dropped: request gone gen=%" PRIu64, gen);
		return -1;
	}
	if (peer_gone(c)) {
		log_debug("listener", "deferred answer dropped: client closed route=%s", c->route->path);
		conn_kill(c);
		return -1;
	}
	conn_undefer(c);
	reply_or_500(c, reply);
	return 0;
}

/* ---- Request accessors ---- */

enum listener_method
listener_request_method(const struct listener_request *req)
{
	return ((const struct conn *)req)->method;
}

const char *
listener_request_path(const struct listener_request *req)
{
	return ((const struct conn *)req)->path;
}

const void *
listener_request_body(const struct listener_request *req, size_t *len)
{
	const struct conn *c = (const struct conn *)req;

	*len = c->body_len;
	return c->body_len ? c->body : NULL;
}

static int
copy_value(const char *v, size_t n, char *buf, size_t size)
{
	if (n >= size) {
		if (size)
			buf[0] = '\0';
		return -1;
	}
	memcpy(buf, v, n);
	buf[n] = '\0';
	return 1;
}

int
listener_request_query(struct listener_request *req, const char *name, char *buf, size_t size)
{
	struct conn *c = (struct conn *)req;
	char *s = c->l->scratch;
	size_t nlen = strlen(name);

	if (size)
		buf[0] = '\0';
	/* lws splits the query at '&' into fragments, each already %-decoded. */
	for (int i = 0;; i++) {
		int n = lws_hdr_copy_fragment(c->wsi, s, SCRATCH_SIZE, WSI_TOKEN_HTTP_URI_ARGS, i);

		if (n == -1)
			return 0;
		if (n < 0)
			continue;
		if ((size_t)n > nlen && memcmp(s, name, nlen) == 0 && s[nlen] == '=')
			return copy_value(s + nlen + 1, (size_t)n - nlen - 1, buf, size);
	}
}

int
listener_request_cookie(struct listener_request *req, const char *name, char *buf, size_t size)
{
	struct conn *c = (struct conn *)req;
	char *s = c->l->scratch;
	size_t nlen = strlen(name);
	int n;

	if (size)
		buf[0] = '\0';
	/* Several Cookie headers come joined with ';'. */
	n = lws_hdr_copy(c->wsi, s, SCRATCH_SIZE, WSI_TOKEN_HTTP_COOKIE);
	if (n <= 0)
		return 0;
	for (char *p = s; *p;) {
		char *semi = strchr(p, ';');
		size_t plen = semi ? (size_t)(semi - p) : strlen(p);

		while (plen > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			plen--;
		}
		if (plen > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=') {
			size_t vlen = plen - nlen - 1;

			while (vlen > 0 && (p[nlen + 1 + vlen - 1] == ' ' || p[nlen + 1 + vlen - 1] == '\t'))
				vlen--;
			return copy_value(p + nlen + 1, vlen, buf, size);
		}
		if (semi == NULL)
			break;
		p = semi + 1;
	}
	return 0;
}

/* ---- Built-in handlers ---- */

static void
route_healthz(void *arg, struct listener_request *req)
{
	struct conn *c = (struct conn *)req;
	struct listener *l = c->l;
	struct listener_health h = { 0, 0 };
	char body[160];
	int n;

	(void)arg;
	if (l->health)
		l->health(l->health_arg, &h);
	n = snprintf(body, sizeof(body), "{\"sockets_live\":%u,\"sockets_wanted\":%u,\"uptime_s\":%" PRId64 "}\n",
	    h.sockets_live, h.sockets_wanted, (loop_now_ms() - l->started_ms) / 1000);
	struct listener_reply r = {
		.status = h.sockets_live > 0 ? 200 : 503,
		.content_type = "application/json",
		.body = body,
		.body_len = (size_t)n,
	};
	listener_reply(req, &r);
}

static void
route_metrics(void *arg, struct listener_request *req)
{
	char *text;
	size_t len;

	(void)arg;
	metrics_render(&text, &len);
	struct listener_reply r = {
		.status = 200,
		.content_type = "text/plain; version=0.0.4",
		.body = text,
		.body_len = len,
	};
	listener_reply(req, &r);
	free(text);
}

/* ---- Dispatch ---- */

/* Exact match wins; otherwise the longest prefix route. */
static const struct listener_route *
route_find(const struct listener *l, const char *path)
{
	const struct listener_route *best = NULL;
	size_t best_len = 0;

	for (size_t t = 0; t < 2; t++) {
		const struct listener_route *tab = t == 0 ? builtin_routes : l->routes;
		size_t n = t == 0 ? NELEM(builtin_routes) : l->nroutes;

		for (size_t i = 0; i < n; i++) {
			size_t plen = strlen(tab[i].path);

			if (!tab[i].prefix) {
				if (strcmp(path, tab[i].path) == 0)
					return &tab[i];
			} else if (strncmp(path, tab[i].path, plen) == 0 && plen > best_len) {
				best = &tab[i];
				best_len = plen;
			}
		}
	}
	return best;
}

static void
allow_list(unsigned mask, char *buf, size_t size)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < NELEM(methods); i++) {
		if (!(mask & methods[i].method))
			continue;
		int n = snprintf(buf + off, size - off, "%s%s", off ? ", " : "", methods[i].name);
		if (n < 0 || (size_t)n >= size - off)
			break;
		off += (size_t)n;
	}
}

/*
 * Size of the head as lws stored it: request line and every header lws
 * knows by name (its name, ": ", value, CRLF). See listener.h for what is
 * not counted.
 */
static size_t
head_size(struct lws *wsi)
{
	size_t total = 0;

	for (int t = 0; t < WSI_TOKEN_COUNT; t++) {
		int len = lws_hdr_total_length(wsi, (enum lws_token_indexes)t);
		const unsigned char *name;

		if (len <= 0)
			continue;
		name = lws_token_to_string((enum lws_token_indexes)t);
		total += (name ? strlen((const char *)name) : 0) + 1 + (size_t)len + 2;
	}
	return total;
}

static void
run_handler(struct conn *c)
{
	c->route->handler(c->route->arg, (struct listener_request *)c);
	if (!c->answered && c->gen == 0) {
		log_error("listener", "route %s neither answered nor deferred", c->route->path);
		reply_simple(c, 500, "internal error\n", NULL);
	}
}

/* Parse a Content-Length strictly: digits only, bounded. -1: malformed. */
static int64_t
content_length(struct lws *wsi)
{
	char v[24];
	int n = lws_hdr_copy(wsi, v, sizeof(v), WSI_TOKEN_HTTP_CONTENT_LENGTH);
	int64_t x = 0;

	if (n == 0)
		return 0;
	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9' || x > (INT64_MAX - 9) / 10)
			return -1;
		x = x * 10 + (v[i] - '0');
	}
	return x;
}

/* LWS_CALLBACK_HTTP: a whole head has arrived. Returns what lws wants. */
static int
on_request(struct listener *l, struct conn *c, struct lws *wsi, const char *uri, size_t urilen)
{
	char allow[64];
	int64_t clen;

	conn_reset_request(c);
	c->wsi = wsi;
	conn_link(l, c);
	c->start_us = loop_now_us();
	c->path = xstrndup(uri ? uri : "", uri ? urilen : 0);

	if (head_size(wsi) > LISTENER_HEAD_MAX) {
		c->close_after = true;
		reply_simple(c, 431, "request header fields too large\n", NULL);
		return 0;
	}
	for (size_t i = 0; i < NELEM(methods); i++)
		if (lws_hdr_total_length(wsi, methods[i].token) > 0)
			c->method = methods[i].method;

	clen = content_length(wsi);
	if (clen < 0) {
		c->close_after = true;
		reply_simple(c, 400, "bad content-length\n", NULL);
		return 0;
	}
	c->route = route_find(l, c->path);
	if (c->route == NULL || !(c->route->methods & c->method)) {
		/* An unread body would be taken for the next request: close after. */
		c->close_after = clen > 0;
		if (c->route == NULL) {
			reply_simple(c, 404, "not found\n", NULL);
		} else {
			allow_list(c->route->methods, allow, sizeof(allow));
			reply_simple(c, 405, "method not allowed\n", allow);
		}
		return 0;
	}
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
		c->close_after = true;
		reply_simple(c, 411, "length required\n", NULL);
		return 0;
	}
	if ((uint64_t)clen > l->body_max) {
		c->close_after = true;
		reply_simple(c, 413, "body too large\n", NULL);
		return 0;
	}
	if (clen > 0) {
		c->body = xmalloc((size_t)clen);
		c->body_want = (size_t)clen;
		c->reading_body = true;
		return 0;	/* LWS_CALLBACK_HTTP_BODY follows */
	}
	run_handler(c);
	return 0;
}

static int
on_body(struct conn *c, const void *in, size_t len)
{
	if (!c->reading_body)
		return 0;	/* a body after an error answer: ignored, we close */
	if (len > c->body_want - c->body_len)
		return -1;	/* more than Content-Length said: lws bug or attack */
	memcpy(c->body + c->body_len, in, len);
	c->body_len += len;
	return 0;
}

static int
on_writeable(struct conn *c, struct lws *wsi)
{
	unsigned char chunk[LWS_PRE + WRITE_CHUNK];
	size_t n;
	int final;

	if (!c->answered || c->head == NULL)
		return 0;	/* nothing queued: lws may ask anyway */
	if (!c->head_sent) {
		if (lws_write(wsi, c->head + LWS_PRE, c->head_len, LWS_WRITE_HTTP_HEADERS) !=
		    (int)c->head_len)
			return -1;
		c->head_sent = true;
		if (c->out_len > 0) {
			lws_callback_on_writable(wsi);
			return 0;
		}
	} else {
		n = c->out_len - c->out_pos;
		if (n > WRITE_CHUNK)
			n = WRITE_CHUNK;
		final = c->out_pos + n == c->out_len;
		memcpy(chunk + LWS_PRE, c->out + c->out_pos, n);
		if (lws_write(wsi, chunk + LWS_PRE, n, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
			return -1;
		c->out_pos += n;
		if (!final) {
			lws_callback_on_writable(wsi);
			return 0;
		}
	}
	log_debug("listener", "%s route=%s status=%d us=%" PRId64, method_name(c->method),
	    c->route ? c->route->path : "-", c->status, loop_now_us() - c->start_us);
	if (c->close_after)
		return -1;
	conn_reset_request(c);
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int
listener_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct conn *c = user;
	struct listener *l;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		l = lws_get_vhost_user(lws_get_vhost(wsi));
		if (c == NULL || l == NULL || l->freed)
			return -1;
		return on_request(l, c, wsi, in, len);
	case LWS_CALLBACK_HTTP_BODY:
		return c ? on_body(c, in, len) : -1;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (c == NULL)
			return -1;
		if (c->reading_body) {
			c->reading_body = false;
			if (c->l == NULL)
				return -1;	/* the listener is being freed */
			if (c->body_len != c->body_want)
				return -1;
			run_handler(c);
		}
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return c ? on_writeable(c, wsi) : 0;
	case LWS_CALLBACK_PROTOCOL_DESTROY:
		/* The vhost is gone: nothing can call back any more. */
		l = lws_get_vhost_user(lws_get_vhost(wsi));
		if (l != NULL) {
			l->destroyed = true;
			if (l->freed)
				listener_release(l);
		}
		return 0;
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		if (c != NULL)
			conn_gone(c);
		break;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- Set-up ---- */


/*
 * Try to bind addr:port ourselves, as lws will (SO_REUSEADDR). Returns 0
 * when it could bind (nobody listens there), else the errno.
 */
static int
probe_bind(const struct config_bind *b)
{
	int fd = socket(b->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1, rc = 0;

	if (fd < 0)
		return errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&b->addr, b->addrlen) != 0)
		rc = errno;
	close(fd);
	return rc;
}

struct listener *
listener_new(struct loop *loop, const struct listener_opts *opts, char *err, size_t errsz)
{
	struct lws_context_creation_info info;
	struct listener *l;
	const struct config_bind *b = opts->bind;
	char iface[INET6_ADDRSTRLEN];
	const void *ap;
	int e;

	if (b->addr.ss_family == AF_INET)
		ap = &((const struct sockaddr_in *)&b->addr)->sin_addr;
	else if (b->addr.ss_family == AF_INET6)
		ap = &((const struct sockaddr_in6 *)&b->addr)->sin6_addr;
	else {
		snprintf(err, errsz, "listener: bind is not an IPv4 or IPv6 address");
		return NULL;
	}
	if (inet_ntop(b->addr.ss_family, ap, iface, sizeof(iface)) == NULL) {
		snprintf(err, errsz, "listener: cannot format the bind address");
		return NULL;
	}

	/* lws says only "NULL" when it cannot bind; find out why first. */
	e = probe_bind(b);
	if (e != 0) {
		snprintf(err, errsz, "listener: cannot listen on %s: %s", b->v ? b->v : iface,
		    e == EADDRINUSE ? "address already in use" : strerror(e));
		return NULL;
	}

	l = xcalloc(1, sizeof(*l));
	l->loop = loop;
	l->ctx = loop_context(loop);
	l->port = b->port;
	if (b->v != NULL)
		snprintf(l->addr_text, sizeof(l->addr_text), "%s", b->v);
	else
		snprintf(l->addr_text, sizeof(l->addr_text), b->addr.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u",
		    iface, b->port);
	l->routes = opts->routes;
	l->nroutes = opts->routes ? opts->nroutes : 0;
	l->health = opts->health;
	l->health_arg = opts->health_arg;
	l->head_timeout_s = opts->head_timeout_s ? opts->head_timeout_s : DEFAULT_HEAD_TIMEOUT_S;
	l->defer_timeout_ms = opts->defer_timeout_ms ? opts->defer_timeout_ms : DEFAULT_DEFER_MS;
	l->body_max = opts->body_max ? opts->body_max : LISTENER_BODY_MAX;
	l->max_deferred = opts->max_deferred ? opts->max_deferred : DEFAULT_MAX_DEFERRED;
	l->started_ms = loop_now_ms();
	l->scratch = xmalloc(SCRATCH_SIZE);

	l->protocols[0].name = "workbot-http";
	l->protocols[0].callback = listener_callback;
	l->protocols[0].per_session_data_size = sizeof(struct conn);

	memset(&info, 0, sizeof(info));
	info.vhost_name = "workbot-listener";
	info.port = b->port;
	info.iface = iface;	/* numeric only: lws takes a name as an interface */
	info.protocols = l->protocols;
	info.user = l;
	info.keepalive_timeout = (int)l->head_timeout_s;
	info.timeout_secs_ah_idle = l->head_timeout_s;
	/* Without this an IPv4 address is bound as [::]: every interface. */
	if (b->addr.ss_family == AF_INET)
		info.options = LWS_SERVER_OPTION_DISABLE_IPV6;

	l->vh = lws_create_vhost(l->ctx, &info);
	if (l->vh == NULL) {
		snprintf(err, errsz, "listener: cannot listen on %s", l->addr_text);
		goto fail;
	}
	/* lws can return a vhost that listens nowhere: prove the port is held. */
	e = probe_bind(b);
	if (e != EADDRINUSE) {
		snprintf(err, errsz, "listener: %s is not listening after set-up", l->addr_text);
		goto fail;
	}
	log_debug("listener", "listening addr=%s", l->addr_text);	/* the daemon says it at info */
	return l;
fail:
	listener_free(l);
	return NULL;
}

static void
listener_release(struct listener *l)
{
	free(l->scratch);
	free(l);
}

void
listener_free(struct listener *l)
{
	struct conn *c, *next;

	if (l == NULL)
		return;
	/*
	 * Detach every connection first: lws calls back for them when they
	 * close, after this returns, and they must find no listener to touch.
	 */
	for (c = l->conns; c != NULL; c = next) {
		next = c->next;
		conn_undefer(c);
		/* lws_vhost_destroy() leaves accepted connections open: close them. */
		if (c->wsi != NULL)
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		c->linked = false;
		c->prev = c->next = NULL;
		c->l = NULL;
	}
	l->conns = NULL;
	l->freed = true;
	/*
	 * lws may call back for this vhost until it sends PROTOCOL_DESTROY
	 * (a connection whose head completes late, for one), and the callback
	 * finds the listener through the vhost: keep the memory until then.
	 */
	if (l->vh != NULL && !l->destroyed)
		lws_vhost_destroy(l->vh);
	else
		listener_release(l);
}

uint16_t
listener_port(const struct listener *l)
{
	return l->port;
}
