/*
 * http_stub: a tiny HTTP/1.1 server for unit tests, on 127.0.0.1 only.
 *
 * A thread listens on 127.0.0.1 (port chosen by the kernel), answers each
 * request with the next canned response from a script (FIFO; when the
 * script is empty: 404 "no scripted response") and records every request's
 * method, target, header block and body. Keep-alive is honoured, so a
 * client that reuses its connection is served on it. A response may be
 * delayed (a stalled server) without blocking other connections.
 *
 * Threads: every function may be called from the test thread while the
 * server thread runs. Recorded requests stay valid until http_stub_stop().
 * Bounds: 16 connections, 256 recorded requests, 4 MiB per request.
 */
#ifndef WORKBOT_TEST_HTTP_STUB_H
#define WORKBOT_TEST_HTTP_STUB_H

#include <stdbool.h>
#include <stddef.h>

struct http_stub_response {
	int status;
	const char *headers;	/* extra lines, each ending "\r\n"; may be NULL */
	const char *body;	/* may be NULL */
	size_t body_len;	/* 0: strlen(body) */
	unsigned delay_ms;	/* wait this long before answering */
};

struct http_stub_request {
	char   method[16];
	char  *target;		/* path and query as sent */
	char  *headers;		/* the header lines, "Name: value\r\n" each */
	char  *body;		/* NUL-terminated */
	size_t body_len;
};

struct http_stub;

/* NULL if the socket or thread cannot be made. */
struct http_stub *http_stub_start(void);
void http_stub_stop(struct http_stub *stub);	/* NULL is fine */

unsigned http_stub_port(struct http_stub *stub);
/* "http://127.0.0.1:PORT" (no trailing slash) */
const char *http_stub_base(struct http_stub *stub);

/* Append a response to the script (strings are copied). */
void http_stub_push(struct http_stub *stub, const struct http_stub_response *resp);
/* Shorthand: status, extra headers (or NULL), body (or NULL). */
void http_stub_answer(struct http_stub *stub, int status, const char *headers, const char *body);

size_t http_stub_count(struct http_stub *stub);		/* requests recorded */
size_t http_stub_accepts(struct http_stub *stub);	/* connections accepted */
const struct http_stub_request *http_stub_request(struct http_stub *stub, size_t i);
/* Wait up to timeout_ms for at least n requests; true if they came. */
bool http_stub_wait(struct http_stub *stub, size_t n, unsigned timeout_ms);

/* A header's value (case-insensitive name) copied into buf; NULL if absent. */
const char *http_stub_header(const struct http_stub_request *req, const char *name,
    char *buf, size_t size);

#endif
