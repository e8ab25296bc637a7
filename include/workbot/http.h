/*
 * http: the one place workbot talks HTTP(S) as a client, over libcurl.
 *
 * One `struct http_client` (one curl easy handle) per worker thread, reused
 * for every request so it keeps its own connections alive; one
 * `struct http_shared` for the process, shared by every client for the DNS
 * cache and TLS session ids only. libcurl 7.88 cannot share its connection
 * cache across threads safely (KNOWN_BUGS 11.11), so that is never shared.
 *
 * Every request: https only (plain http only when the URL's host is
 * loopback: 127.0.0.0/8, ::1, localhost — checked before anything is sent),
 * redirects never followed (a 3xx is returned as is), a total and a connect
 * timeout, no signals, a capped response body. A bearer token is a
 * `struct secret`; the Authorization header built from it is wiped after the
 * transfer. Error texts are translated here, in one function, and never
 * contain a token, a URL's query, or a secret URL at all.
 *
 * Threads: http_shared_* on the main thread (create before the workers,
 * free after they are joined). A client belongs to one thread at a time;
 * http_request() blocks that thread for at most the request's timeout.
 * http_resolve() may be called from any thread but the event thread (it
 * blocks on DNS). curl_global_init() is main()'s job, before any thread.
 */
#ifndef WORKBOT_HTTP_H
#define WORKBOT_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "workbot/secret.h"

#define HTTP_BODY_MAX_DEFAULT (1024u * 1024u)	/* response body cap */
#define HTTP_TIMEOUT_DEFAULT_MS 10000u
#define HTTP_CONNECT_TIMEOUT_DEFAULT_MS 5000u

enum http_method {
	HTTP_GET = 0,
	HTTP_POST,
	HTTP_PUT,
	HTTP_PATCH,
	HTTP_DELETE,
};

struct http_req {
	enum http_method method;
	const char *url;			/* or: */
	const struct secret *secret_url;	/* a URL that must never be shown (response_url) */
	const char *const *headers;		/* "Name: value", NULL-terminated; may be NULL */
	const char *content_type;		/* with a body; NULL: none sent */
	const void *body;			/* may be NULL */
	size_t body_len;
	const struct secret *bearer;		/* Authorization: Bearer ...; may be NULL */
	unsigned timeout_ms;			/* 0: HTTP_TIMEOUT_DEFAULT_MS */
	unsigned connect_timeout_ms;		/* 0: HTTP_CONNECT_TIMEOUT_DEFAULT_MS */
	size_t body_max;			/* 0: HTTP_BODY_MAX_DEFAULT */
	const char *ca_file;			/* NULL: system CA store only */
	/*
	 * The request body and the response carry secrets (token requests,
	 * socket URLs): the body (then writable memory) is wiped after the
	 * transfer, and the response body whenever it is freed or moved.
	 */
	bool sensitive;
};

enum http_error {
	HTTP_ERR_NONE = 0,
	HTTP_ERR_REFUSED,	/* URL refused before any traffic: scheme, host, header */
	HTTP_ERR_TIMEOUT,
	HTTP_ERR_CONNECT,	/* DNS, refused, unreachable */
	HTTP_ERR_TLS,
	HTTP_ERR_TOO_BIG,	/* response body over body_max */
	HTTP_ERR_OTHER,		/* any other transfer failure */
};

struct http_resp {
	long status;			/* 0 when no response arrived */
	long retry_after_s;		/* Retry-After in seconds; 0 when absent */
	char *body;			/* NUL-terminated, body_len bytes; never NULL after http_request */
	size_t body_len;
	enum http_error err;
	char error[256];		/* empty, or a short safe text */
	bool sensitive;			/* set from the request: wipe body on clear */
};

struct http_shared;
struct http_client;

struct http_shared *http_shared_new(void);
void http_shared_free(struct http_shared *shared);	/* NULL is fine; after every client */

/* One easy handle; shared may be NULL. Never NULL (OOM is fatal). */
struct http_client *http_client_new(struct http_shared *shared);
void http_client_free(struct http_client *client);	/* NULL is fine */

/*
 * Perform one request. 0 when an HTTP response arrived (whatever its
 * status: read resp->status), -1 when none did or it was refused or too
 * big (resp->err, resp->error). `resp` is filled either way and must be
 * released with http_resp_clear().
 */
int http_request(struct http_client *client, const struct http_req *req, struct http_resp *resp);
void http_resp_clear(struct http_resp *resp);

/* The host part of a URL is loopback (127.0.0.0/8, ::1, localhost). */
bool http_url_is_loopback(const char *url);

/*
 * Resolve host for a socket another thread will open: writes the numeric
 * address (IPv4 preferred, IPv6 otherwise) into `numeric`. 0, or -1 with a
 * short reason in *why (static text).
 */
int http_resolve(const char *host, unsigned port, char *numeric, size_t size, const char **why);

const char *http_method_name(enum http_method m);
const char *http_error_name(enum http_error e);

#endif
