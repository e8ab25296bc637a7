/*
 * Unit tests for listener: a real loop and listener on 127.0.0.1 (a free
 * port), the loop run on its own thread, and a plain-socket HTTP client in
 * the test thread. Covers the built-in routes, 404/405, the 8 KiB head limit,
 * the 10 s head timeout (the one slow test), deferred answers (answered from
 * another thread, client gone first, never answered -> 504), POST bodies,
 * the page security headers, and "listens there and nowhere else".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "workbot/config.h"
#include "workbot/listener.h"
#include "workbot/loop.h"
#include "workbot/metrics.h"

static struct loop *loop;
static struct listener *lis;
static struct config_bind bind_cfg;
static pthread_t loop_thread;
static atomic_int sockets_live;
static atomic_uint_fast64_t deferred_gen;	/* last gen a /defer handler took */
static atomic_int respond_result = 99;

/* ---- Routes the test adds ---- */

static void
route_defer(void *arg, struct listener_request *req)
{
	(void)arg;
	atomic_store(&deferred_gen, listener_request_defer(req));
}

static void
route_echo(void *arg, struct listener_request *req)
{
	size_t len;
	const void *body = listener_request_body(req, &len);
	struct listener_reply r = { .status = 200, .body = body, .body_len = len };

	(void)arg;
	listener_reply(req, &r);
}

static void
route_page(void *arg, struct listener_request *req)
{
	static const char html[] = "<!doctype html><p>hi</p>";
	char state[64], cookie[64], text[256];
	int qs = listener_request_query(req, "state", state, sizeof(state));
	int ck = listener_request_cookie(req, "wb", cookie, sizeof(cookie));
	struct listener_reply r;

	(void)arg;
	if (strcmp(listener_request_path(req), "/page/redirect") == 0) {
		r = listener_page(302, html, sizeof(html) - 1);
		r.location = "https://idp.example/authorize";
		r.set_cookie = "wb=abc; HttpOnly; SameSite=Lax; Path=/oauth/";
		listener_reply(req, &r);
		return;
	}
	snprintf(text, sizeof(text), "path=%s q=%d:%s c=%d:%s", listener_request_path(req),
	    qs, qs == 1 ? state : "", ck, ck == 1 ? cookie : "");
	r = listener_page(200, text, strlen(text));
	listener_reply(req, &r);
}

static void
route_big(void *arg, struct listener_request *req)
{
	size_t n = 200 * 1024;
	char *b = malloc(n);
	struct listener_reply r = { .status = 200, .body = b, .body_len = n };

	(void)arg;
	for (size_t i = 0; i < n; i++)
		b[i] = (char)('a' + i % 26);
	listener_reply(req, &r);
	free(b);
}

static const struct listener_route test_routes[] = {
	{ "/defer", false, LISTENER_GET, route_defer, NULL },
	{ "/echo", false, LISTENER_POST, route_echo, NULL },
	{ "/page/", true, LISTENER_GET, route_page, NULL },
	{ "/big", false, LISTENER_GET, route_big, NULL },
};

static void
health(void *arg, struct listener_health *out)
{
	(void)arg;
	out->sockets_live = (unsigned)atomic_load(&sockets_live);
	out->sockets_wanted = 2;
}

/* ---- Loop thread and posting ---- */

static void *
run_loop(void *arg)
{
	(void)arg;
	loop_run(loop);
	return NULL;
}

static void
post_quit(void *arg)
{
	(void)arg;
	loop_quit(loop);
}

struct respond_job {
	struct listener *l;
	uint64_t gen;
	const char *body;
};

static void
post_respond(void *arg)
{
	struct respond_job *j = arg;
	struct listener_reply r = { .status = 200, .body = j->body, .body_len = strlen(j->body) };

	atomic_store(&respond_result, listener_respond(j->l, j->gen, &r));
	free(j);
}

static void
respond_on(struct listener *l, uint64_t gen, const char *body)
{
	struct respond_job *j = malloc(sizeof(*j));

	j->l = l;
	j->gen = gen;
	j->body = body;
	loop_post(loop, post_respond, j);
}

/* What a worker does: post the answer to the event thread. */
static void
respond_from_worker(uint64_t gen, const char *body)
{
	respond_on(lis, gen, body);
}

static uint64_t
wait_gen(uint64_t old)
{
	for (int i = 0; i < 500; i++) {
		uint64_t g = atomic_load(&deferred_gen);
		if (g != old)
			return g;
		usleep(10000);
	}
	fail_msg("no deferred request arrived");
	return 0;
}

static int
wait_respond_result(void)
{
	for (int i = 0; i < 500; i++) {
		int r = atomic_load(&respond_result);
		if (r != 99)
			return r;
		usleep(10000);
	}
	fail_msg("respond never ran");
	return 99;
}

/* ---- A small HTTP client ---- */

static uint16_t
free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static int
connect_to(const char *ip, uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 15 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, ip, &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void
send_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;	/* the server may have closed: the reply tells */
		s += w;
		n -= (size_t)w;
	}
}

struct resp {
	int status;		/* 0: connection closed with no answer */
	char head[4096];
	char *body;
	size_t body_len;
	bool closed;		/* the server closed after the response */
};

/* Read one response (Content-Length framed) from fd. */
static void
read_resp(int fd, struct resp *r)
{
	static char buf[512 * 1024];
	size_t len = 0;
	char *eoh = NULL;
	size_t want = 0;

	memset(r, 0, sizeof(*r));
	for (;;) {
		ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);

		if (n <= 0) {
			r->closed = true;
			break;
		}
		len += (size_t)n;
		buf[len] = '\0';
		if (eoh == NULL && (eoh = strstr(buf, "\r\n\r\n")) != NULL) {
			char *cl = strcasestr(buf, "\r\ncontent-length:");
			want = (size_t)(eoh + 4 - buf) + (cl ? strtoul(cl + 17, NULL, 10) : 0);
		}
		if (eoh != NULL && len >= want)
			break;
	}
	if (eoh == NULL)
		return;
	assert_true(sscanf(buf, "HTTP/1.%*d %d", &r->status) == 1);
	size_t hl = (size_t)(eoh - buf);
	assert_true(hl < sizeof(r->head));
	memcpy(r->head, buf, hl);
	r->head[hl] = '\0';
	r->body_len = len - (hl + 4);
	r->body = malloc(r->body_len + 1);
	memcpy(r->body, eoh + 4, r->body_len);
	r->body[r->body_len] = '\0';
}

static void
request_to(uint16_t port, const char *req, struct resp *r)
{
	int fd = connect_to("127.0.0.1", port);

	assert_true(fd >= 0);
	send_all(fd, req, strlen(req));
	read_resp(fd, r);
	close(fd);
}

static void
request(const char *req, struct resp *r)
{
	request_to(bind_cfg.port, req, r);
}

/* Same, and then wait up to 2 s for the server to close the connection. */
static void
request_expect_close(const char *req, struct resp *r)
{
	struct timeval tv = { .tv_sec = 2 };
	int fd = connect_to("127.0.0.1", bind_cfg.port);
	char b;

	assert_true(fd >= 0);
	send_all(fd, req, strlen(req));
	read_resp(fd, r);
	if (!r->closed) {
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		r->closed = recv(fd, &b, 1, 0) == 0;
	}
	close(fd);
}

static bool
has_header(const struct resp *r, const char *line)
{
	return strcasestr(r->head, line) != NULL;
}

/* ---- Set-up ---- */

static int
group_setup(void **state)
{
	struct loop_opts lo = { .max_http_header_data = LISTENER_HEADER_SPACE };
	struct listener_opts opts = {
		.bind = &bind_cfg,
		.routes = test_routes,
		.nroutes = sizeof(test_routes) / sizeof(test_routes[0]),
		.health = health,
		.defer_timeout_ms = 1000,
	};
	struct sockaddr_in *sa = (struct sockaddr_in *)&bind_cfg.addr;
	static char text[32];
	char err[256];

	(void)state;
	loop_block_signals();
	loop = loop_new(&lo, err, sizeof(err));
	if (loop == NULL)
		return -1;
	bind_cfg.port = free_port();
	sa->sin_family = AF_INET;
	sa->sin_port = htons(bind_cfg.port);
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind_cfg.addrlen = sizeof(*sa);
	bind_cfg.loopback = true;
	snprintf(text, sizeof(text), "127.0.0.1:%u", bind_cfg.port);
	bind_cfg.v = text;
	lis = listener_new(loop, &opts, err, sizeof(err));
	if (lis == NULL) {
		fprintf(stderr, "listener_new: %s\n", err);
		return -1;
	}
	/* A second listener on the same address must fail, saying why. */
	if (listener_new(loop, &opts, err, sizeof(err)) != NULL || strstr(err, "already in use") == NULL) {
		fprintf(stderr, "second listener: %s\n", err);
		return -1;
	}
	return pthread_create(&loop_thread, NULL, run_loop, NULL) == 0 ? 0 : -1;
}

static int
group_teardown(void **state)
{
	(void)state;
	loop_post(loop, post_quit, NULL);
	pthread_join(loop_thread, NULL);
	listener_free(lis);
	loop_free(loop);
	return 0;
}

/* ---- Tests ---- */

static void
test_healthz(void **state)
{
	struct resp r;
	unsigned live, wanted;
	long up;

	(void)state;
	atomic_store(&sockets_live, 0);
	request("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", &r);
	assert_int_equal(r.status, 503);
	assert_true(has_header(&r, "\r\ncontent-type: application/json"));
	assert_int_equal(sscanf(r.body, "{\"sockets_live\":%u,\"sockets_wanted\":%u,\"uptime_s\":%ld}",
	    &live, &wanted, &up), 3);
	assert_int_equal(live, 0);
	assert_int_equal(wanted, 2);
	assert_true(up >= 0 && up < 600);
	free(r.body);

	atomic_store(&sockets_live, 1);
	request("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(sscanf(r.body, "{\"sockets_live\":%u,\"sockets_wanted\":%u,\"uptime_s\":%ld}",
	    &live, &wanted, &up), 3);
	assert_int_equal(live, 1);
	free(r.body);
}

static void
test_metrics(void **state)
{
	struct resp r;

	(void)state;
	metrics_envelope_inc(METRICS_ENVELOPE_HELLO);
	request("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_true(has_header(&r, "\r\ncontent-type: text/plain; version=0.0.4"));
	assert_non_null(strstr(r.body, "# TYPE workbot_envelopes_total counter\n"));
	assert_non_null(strstr(r.body, "workbot_envelopes_total{type=\"hello\"} "));
	free(r.body);
}

static void
test_not_found_and_method(void **state)
{
	struct resp r;

	(void)state;
	request("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", &r);
	assert_int_equal(r.status, 404);
	free(r.body);
	request("GET /healthzz HTTP/1.1\r\nHost: x\r\n\r\n", &r);
	assert_int_equal(r.status, 404);
	free(r.body);
	request("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &r);
	assert_int_equal(r.status, 405);
	assert_true(has_header(&r, "\r\nallow: GET"));
	free(r.body);
	request("PUT /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", &r);
	assert_int_equal(r.status, 405);
	free(r.body);
	request("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &r);
	assert_int_equal(r.status, 405);
	assert_true(has_header(&r, "\r\nallow: POST"));
	free(r.body);
}

static void
test_keepalive(void **state)
{
	int fd = connect_to("127.0.0.1", bind_cfg.port);
	struct resp r;

	(void)state;
	assert_true(fd >= 0);
	for (int i = 0; i < 3; i++) {
		const char *q = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
		send_all(fd, q, strlen(q));
		read_resp(fd, &r);
		assert_int_equal(r.status, 200);
		assert_false(r.closed);
		free(r.body);
	}
	close(fd);
}

static void
test_big_body_chunks(void **state)
{
	struct resp r;

	(void)state;
	request("GET /big HTTP/1.1\r\nHost: x\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 200 * 1024);
	for (size_t i = 0; i < r.body_len; i++)
		assert_int_equal(r.body[i], 'a' + i % 26);
	free(r.body);
}

static void
test_post_body(void **state)
{
	struct resp r;
	char *req, *big;
	size_t n = 17 * 1024;

	(void)state;
	request("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
	    "Content-Length: 11\r\n\r\nhello=world", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "hello=world");
	free(r.body);

	/* Over the 16 KiB bound: 413 and the connection closed. */
	big = malloc(n + 1);
	memset(big, 'x', n);
	big[n] = '\0';
	assert_true(asprintf(&req, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s", n, big) > 0);
	request_expect_close(req, &r);
	assert_int_equal(r.status, 413);
	assert_true(r.closed);
	free(r.body);
	free(req);
	free(big);

	request("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", &r);
	assert_true(r.status == 411 || r.status == 0);
	free(r.body);
}

static void
test_page_headers(void **state)
{
	struct resp r;

	(void)state;
	request("GET /page/redirect HTTP/1.1\r\nHost: x\r\n\r\n", &r);
	assert_int_equal(r.status, 302);
	assert_true(has_header(&r, "\r\ncache-control: no-store"));
	assert_true(has_header(&r, "\r\nreferrer-policy: no-referrer"));
	assert_true(has_header(&r, "\r\ncontent-security-policy: default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"));
	assert_true(has_header(&r, "\r\nx-frame-options: DENY"));
	assert_true(has_header(&r, "\r\ncontent-type: text/html; charset=utf-8"));
	assert_true(has_header(&r, "\r\nlocation: https://idp.example/authorize"));
	assert_true(has_header(&r, "\r\nset-cookie: wb=abc; HttpOnly; SameSite=Lax; Path=/oauth/"));
	free(r.body);

	/* Prefix route, %-decoded query, cookie by name among several. */
	request("GET /page/x?code=c0de&state=s%41b HTTP/1.1\r\nHost: x\r\nCookie: a=1; wb=tok; z=2\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "path=/page/x q=1:sAb c=1:tok");
	assert_true(has_header(&r, "\r\ncontent-security-policy: "));
	free(r.body);
	request("GET /page/y HTTP/1.1\r\nHost: x\r\n\r\n", &r);
	assert_string_equal(r.body, "path=/page/y q=0: c=0:");
	free(r.body);
}

static void
test_head_too_large(void **state)
{
	struct resp r;
	char *req, *pad;
	size_t n = 9 * 1024;

	(void)state;
	/* 9 KiB: fits lws's header space, over our 8 KiB: answered 431, closed. */
	pad = malloc(n + 1);
	memset(pad, 'c', n);
	pad[n] = '\0';
	assert_true(asprintf(&req, "GET /healthz HTTP/1.1\r\nHost: x\r\nCookie: a=%s\r\n\r\n", pad) > 0);
	request_expect_close(req, &r);
	assert_int_equal(r.status, 431);
	assert_true(r.closed);
	free(r.body);
	free(req);
	free(pad);

	/* Just under the limit is served. */
	n = 7 * 1024;
	pad = malloc(n + 1);
	memset(pad, 'c', n);
	pad[n] = '\0';
	assert_true(asprintf(&req, "GET /metrics HTTP/1.1\r\nHost: x\r\nCookie: a=%s\r\n\r\n", pad) > 0);
	request(req, &r);
	assert_int_equal(r.status, 200);
	free(r.body);
	free(req);
	free(pad);

	/* 20 KiB: beyond lws's header space: closed with no answer at all. */
	n = 20 * 1024;
	pad = malloc(n + 1);
	memset(pad, 'c', n);
	pad[n] = '\0';
	assert_true(asprintf(&req, "GET /healthz HTTP/1.1\r\nHost: x\r\nCookie: a=%s\r\n\r\n", pad) > 0);
	request(req, &r);
	assert_int_equal(r.status, 0);
	assert_true(r.closed);
	free(r.body);
	free(req);
	free(pad);
}

static void
test_deferred_answered(void **state)
{
	uint64_t old = atomic_load(&deferred_gen), gen;
	int fd = connect_to("127.0.0.1", bind_cfg.port);
	const char *q = "GET /defer HTTP/1.1\r\nHost: x\r\n\r\n";
	struct resp r;

	(void)state;
	assert_true(fd >= 0);
	send_all(fd, q, strlen(q));
	gen = wait_gen(old);
	assert_true(gen != 0);
	usleep(100000);
	atomic_store(&respond_result, 99);
	respond_from_worker(gen, "done by a worker");
	read_resp(fd, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "done by a worker");
	assert_int_equal(wait_respond_result(), 0);
	assert_true(has_header(&r, "\r\nx-frame-options: DENY"));
	free(r.body);

	/* The id is spent: a second answer is dropped. */
	atomic_store(&respond_result, 99);
	respond_from_worker(gen, "again");
	assert_int_equal(wait_respond_result(), -1);

	/* Keep-alive still works after a deferred answer. */
	q = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	send_all(fd, q, strlen(q));
	read_resp(fd, &r);
	assert_true(r.status == 200 || r.status == 503);
	free(r.body);
	close(fd);
}

static void
test_deferred_client_gone(void **state)
{
	uint64_t old = atomic_load(&deferred_gen), gen;
	int fd = connect_to("127.0.0.1", bind_cfg.port);
	const char *q = "GET /defer HTTP/1.1\r\nHost: x\r\n\r\n";

	(void)state;
	assert_true(fd >= 0);
	send_all(fd, q, strlen(q));
	gen = wait_gen(old);
	close(fd);
	usleep(300000);		/* let the loop see the close */
	atomic_store(&respond_result, 99);
	respond_from_worker(gen, "nobody is listening");
	assert_int_equal(wait_respond_result(), -1);
	/* Still serving. */
	struct resp r;
	request("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	free(r.body);
}

static void
test_deferred_timeout(void **state)
{
	uint64_t old = atomic_load(&deferred_gen), gen;
	struct timespec t0, t1;
	struct resp r;
	double dt;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	request("GET /defer HTTP/1.1\r\nHost: x\r\n\r\n", &r);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_int_equal(r.status, 504);
	assert_true(has_header(&r, "\r\ncontent-type: text/html"));
	assert_true(has_header(&r, "\r\ncache-control: no-store"));
	assert_true(dt >= 0.9 && dt < 3.0);
	free(r.body);
	gen = wait_gen(old);
	/* A worker answering after the 504 is dropped. */
	atomic_store(&respond_result, 99);
	respond_from_worker(gen, "too late");
	assert_int_equal(wait_respond_result(), -1);
}

static void
test_listens_nowhere_else(void **state)
{
	char line[512];
	char want[16];
	FILE *f;
	int fd;

	(void)state;
	/* All of 127/8 is local on Linux: another loopback address is refused. */
	fd = connect_to("127.0.0.2", bind_cfg.port);
	assert_int_equal(fd, -1);
	assert_int_equal(errno, ECONNREFUSED);

	/* No IPv6 socket listens on the port (the [::] pitfall). */
	snprintf(want, sizeof(want), ":%04X ", bind_cfg.port);
	f = fopen("/proc/net/tcp6", "r");
	if (f != NULL) {
		while (fgets(line, sizeof(line), f)) {
			char local[64], remote[64], st[8];
			if (sscanf(line, " %*s %63s %63s %7s", local, remote, st) != 3)
				continue;
			strcat(local, " ");
			if (strstr(local, want) && strcmp(st, "0A") == 0)
				fail_msg("an IPv6 socket listens on port %u: %s", bind_cfg.port, line);
		}
		fclose(f);
	}
	/* And the IPv4 listener is 127.0.0.1 exactly. */
	f = fopen("/proc/net/tcp", "r");
	assert_non_null(f);
	int found = 0;
	while (fgets(line, sizeof(line), f)) {
		char local[64], remote[64], st[8];
		if (sscanf(line, " %*s %63s %63s %7s", local, remote, st) != 3 || strcmp(st, "0A") != 0)
			continue;
		strcat(local, " ");
		if (strstr(local, want)) {
			assert_memory_equal(local, "0100007F:", 9);
			found++;
		}
	}
	fclose(f);
	assert_int_equal(found, 1);
}

struct newlis {
	struct listener_opts opts;
	struct listener *l;
	char err[256];
	atomic_int done;
};

static void
post_new_listener(void *arg)
{
	struct newlis *n = arg;

	n->l = listener_new(loop, &n->opts, n->err, sizeof(n->err));
	atomic_store(&n->done, 1);
}

static void
test_port_in_use(void **state)
{
	struct config_bind b = { 0 };
	struct sockaddr_in *sa = (struct sockaddr_in *)&b.addr;
	struct sockaddr_in got;
	socklen_t gl = sizeof(got);
	struct newlis n = { .opts = { .bind = &b } };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	(void)state;
	/* Someone else holds a port. */
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)sa, sizeof(*sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&got, &gl), 0);
	sa->sin_port = got.sin_port;
	b.port = ntohs(got.sin_port);
	b.addrlen = sizeof(*sa);
	b.v = "127.0.0.1:busy";
	loop_post(loop, post_new_listener, &n);
	for (int i = 0; i < 500 && !atomic_load(&n.done); i++)
		usleep(10000);
	assert_true(atomic_load(&n.done));
	assert_null(n.l);
	assert_non_null(strstr(n.err, "127.0.0.1:busy"));
	assert_non_null(strstr(n.err, "address already in use"));
	close(fd);
}

static void
post_free_listener(void *arg)
{
	struct newlis *n = arg;

	listener_free(n->l);
	n->l = NULL;
	atomic_store(&n->done, 1);
}

static void
on_loop(loop_fn fn, struct newlis *n)
{
	atomic_store(&n->done, 0);
	loop_post(loop, fn, n);
	for (int i = 0; i < 500 && !atomic_load(&n->done); i++)
		usleep(10000);
	assert_true(atomic_load(&n->done));
}

/*
 * A second listener with a 1 s head timeout, a 3 s deferral and room for
 * one deferred request: a deferred answer may take longer than the head
 * timeout (lws's own timer is off once the head is in), and a second
 * deferral while one waits gets 503.
 */
static void
test_defer_outlives_head_timeout(void **state)
{
	struct config_bind b = { 0 };
	struct sockaddr_in *sa = (struct sockaddr_in *)&b.addr;
	struct newlis n = { .opts = {
		.bind = &b, .routes = test_routes,
		.nroutes = sizeof(test_routes) / sizeof(test_routes[0]),
		.head_timeout_s = 1, .defer_timeout_ms = 3000, .max_deferred = 1,
	} };
	const char *q = "GET /defer HTTP/1.1\r\nHost: x\r\n\r\n";
	uint64_t old = atomic_load(&deferred_gen), gen;
	struct resp r;
	int fd;

	(void)state;
	b.port = free_port();
	sa->sin_family = AF_INET;
	sa->sin_port = htons(b.port);
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	b.addrlen = sizeof(*sa);
	on_loop(post_new_listener, &n);
	assert_non_null(n.l);

	fd = connect_to("127.0.0.1", b.port);
	assert_true(fd >= 0);
	send_all(fd, q, strlen(q));
	gen = wait_gen(old);
	assert_true(gen != 0);

	/* Room for one deferral only: the next gets 503 at once. */
	request_to(b.port, q, &r);
	assert_int_equal(r.status, 503);
	free(r.body);

	usleep(1600000);	/* past the 1 s head timeout */
	atomic_store(&respond_result, 99);
	respond_on(n.l, gen, "slow but fine");
	read_resp(fd, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "slow but fine");
	assert_int_equal(wait_respond_result(), 0);
	free(r.body);

	/* Freed with a request still deferred: no answer, no crash, no leak. */
	old = atomic_load(&deferred_gen);
	send_all(fd, q, strlen(q));
	gen = wait_gen(old);
	on_loop(post_free_listener, &n);
	read_resp(fd, &r);
	assert_int_equal(r.status, 0);
	close(fd);
	atomic_store(&respond_result, 99);
	respond_from_worker(gen, "to the other listener: unknown id");
	assert_int_equal(wait_respond_result(), -1);
}

/* An IPv6 bind listens on [::1] only: IPv4 loopback on that port is refused. */
static void
test_ipv6_bind(void **state)
{
	struct config_bind b = { 0 };
	struct sockaddr_in6 *sa6 = (struct sockaddr_in6 *)&b.addr;
	struct newlis n = { .opts = { .bind = &b } };
	struct sockaddr_in6 peer = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	socklen_t sl = sizeof(*sa6);
	int fd = socket(AF_INET6, SOCK_STREAM, 0);

	(void)state;
	if (fd < 0 || bind(fd, (struct sockaddr *)&peer, sizeof(peer)) != 0) {
		if (fd >= 0)
			close(fd);
		skip();	/* no IPv6 loopback here */
	}
	assert_int_equal(getsockname(fd, (struct sockaddr *)sa6, &sl), 0);
	close(fd);
	b.port = ntohs(sa6->sin6_port);
	b.addrlen = sizeof(*sa6);
	b.v = "[::1]:test";
	on_loop(post_new_listener, &n);
	assert_non_null(n.l);

	peer.sin6_port = sa6->sin6_port;
	fd = socket(AF_INET6, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&peer, sizeof(peer)), 0);
	close(fd);
	assert_int_equal(connect_to("127.0.0.1", b.port), -1);
	assert_int_equal(errno, ECONNREFUSED);
	on_loop(post_free_listener, &n);
}

static void
test_half_head_dropped(void **state)
{
	int fd = connect_to("127.0.0.1", bind_cfg.port);
	const char *q = "GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Ag";
	struct timespec t0, t1;
	char buf[256];
	ssize_t n;
	double dt;

	(void)state;
	assert_true(fd >= 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	send_all(fd, q, strlen(q));
	n = recv(fd, buf, sizeof(buf), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(n <= 0);		/* closed, nothing sent */
	assert_true(dt >= 9.0 && dt < 12.5);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_healthz),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_not_found_and_method),
		cmocka_unit_test(test_keepalive),
		cmocka_unit_test(test_big_body_chunks),
		cmocka_unit_test(test_post_body),
		cmocka_unit_test(test_page_headers),
		cmocka_unit_test(test_head_too_large),
		cmocka_unit_test(test_deferred_answered),
		cmocka_unit_test(test_deferred_client_gone),
		cmocka_unit_test(test_deferred_timeout),
		cmocka_unit_test(test_listens_nowhere_else),
		cmocka_unit_test(test_port_in_use),
		cmocka_unit_test(test_defer_outlives_head_timeout),
		cmocka_unit_test(test_ipv6_bind),
		cmocka_unit_test(test_half_head_dropped),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
