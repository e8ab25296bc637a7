/*
 * http: blocking HTTP(S) requests for worker threads, over libcurl 7.88.
 *
 * How. Each worker owns a client (one easy handle) for its lifetime, so
 * libcurl's per-handle connection cache gives keep-alive for free; all
 * clients share one CURLSH for DNS and TLS sessions, guarded by one mutex
 * per lock-data kind. Before every request the handle is reset
 * (curl_easy_reset keeps connections, DNS and sessions) and every option is
 * set again, so nothing from one request (a body, a header, a CA file)
 * leaks into the next. The URL is parsed once with curl's URL API, checked
 * (scheme, loopback host) and the very same parsed handle is given to the
 * transfer (CURLOPT_CURLU), so what was checked is what is fetched; the
 * allowed protocol list is then narrowed to that one scheme, as a second
 * lock on the same door.
 *
 * Never: follow a redirect, turn on CURLOPT_VERBOSE (it prints the
 * Authorization header), send a token over plain http to a host that is
 * not loopback, put curl's error text in a result when it could hold a
 * URL, or keep an Authorization header buffer that is not wiped.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "workbot/http.h"
#include "workbot/secret.h"
#include "workbot/xmalloc.h"
#include "workbot_version.h"

struct http_shared {
	CURLSH         *sh;
	pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
};

struct http_client {
	CURL               *easy;
	struct http_shared *shared;
	char                errbuf[CURL_ERROR_SIZE];
};

/* The response body as it arrives, capped. */
struct sink {
	char  *buf;
	size_t len, cap, max;
	bool   too_big;
	bool   sensitive;
};

static const char *const method_names[] = {
	[HTTP_GET] = "GET",
	[HTTP_POST] = "POST",
	[HTTP_PUT] = "PUT",
	[HTTP_PATCH] = "PATCH",
	[HTTP_DELETE] = "DELETE",
};

static const char *const error_names[] = {
	[HTTP_ERR_NONE] = "none",
	[HTTP_ERR_REFUSED] = "refused",
	[HTTP_ERR_TIMEOUT] = "timeout",
	[HTTP_ERR_CONNECT] = "connect",
	[HTTP_ERR_TLS] = "tls",
	[HTTP_ERR_TOO_BIG] = "too_big",
	[HTTP_ERR_OTHER] = "other",
};

const char *
http_method_name(enum http_method m)
{
	if ((unsigned)m >= sizeof(method_names) / sizeof(method_names[0]))
		return "?";
	return method_names[m];
}

const char *
http_error_name(enum http_error e)
{
	if ((unsigned)e >= sizeof(error_names) / sizeof(error_names[0]))
		return "?";
	return error_names[e];
}

static void
share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
	struct http_shared *s = ud;

	(void)h;
	(void)access;	/* one plain mutex: readers are short, contention low */
	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&s->locks[data]);
}

static void
share_unlock(CURL *h, curl_lock_data data, void *ud)
{
	struct http_shared *s = ud;

	(void)h;
	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&s->locks[data]);
}

struct http_shared *
http_shared_new(void)
{
	struct http_shared *s = xcalloc(1, sizeof(*s));

	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&s->locks[i], NULL);
	s->sh = curl_share_init();
	if (!s->sh)
		goto fail;
	if (curl_share_setopt(s->sh, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
	    curl_share_setopt(s->sh, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
	    curl_share_setopt(s->sh, CURLSHOPT_USERDATA, s) != CURLSHE_OK ||
	    curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
	    curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)
		goto fail;
	/* Deliberately not CURL_LOCK_DATA_CONNECT: unsafe across threads in 7.88. */
	return s;
fail:
	http_shared_free(s);
	return NULL;
}

void
http_shared_free(struct http_shared *s)
{
	if (!s)
		return;
	if (s->sh)
		curl_share_cleanup(s->sh);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&s->locks[i]);
	free(s);
}

struct http_client *
http_client_new(struct http_shared *shared)
{
	struct http_client *c = xcalloc(1, sizeof(*c));

	c->easy = curl_easy_init();
	if (!c->easy) {
		/* curl_easy_init fails only when it cannot allocate. */
		free(c);
		return NULL;
	}
	c->shared = shared;
	return c;
}

void
http_client_free(struct http_client *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->easy);
	free(c);
}

static bool
host_is_loopback(const char *host)
{
	char buf[INET6_ADDRSTRLEN + 2];
	struct in_addr a4;
	struct in6_addr a6;
	size_t n;

	if (!host)
		return false;
	if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0)
		return true;	/* curl resolves it to loopback itself, never via DNS */
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	n = strlen(host);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof(buf)) {
		memcpy(buf, host + 1, n - 2);
		buf[n - 2] = '\0';
		if (inet_pton(AF_INET6, buf, &a6) == 1)
			return IN6_IS_ADDR_LOOPBACK(&a6);
	}
	return false;
}

/*
 * Parse and check a URL: https anywhere, http only to loopback, no user
 * info. On success *out is the parsed handle to hand to the transfer.
 */
static int
url_check(const char *url, CURLU **out, bool *plain_http, const char **why)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *user = NULL;
	int rc = -1;

	if (!u) {
		*why = "out of memory";
		return -1;
	}
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		*why = "not a valid absolute URL";
		goto out;
	}
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
		*why = "credentials in a URL are refused";
		goto out;
	}
	if (strcmp(scheme, "https") == 0) {
		*plain_http = false;
	} else if (strcmp(scheme, "http") == 0 && host_is_loopback(host)) {
		*plain_http = true;
	} else if (strcmp(scheme, "http") == 0) {
		*why = "plain http is allowed only to a loopback host";
		goto out;
	} else {
		*why = "only https URLs are allowed";
		goto out;
	}
	*out = u;
	u = NULL;
	rc = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(user);
	curl_url_cleanup(u);
	return rc;
}

bool
http_url_is_loopback(const char *url)
{
	CURLU *u = curl_url();
	char *host = NULL;
	bool yes = false;

	if (!u)
		return false;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
		yes = host_is_loopback(host);
	curl_free(host);
	curl_url_cleanup(u);
	return yes;
}

static void
sink_free(struct sink *s)
{
	if (s->buf && s->sensitive)
		secret_wipe(s->buf, s->cap);
	free(s->buf);
	s->buf = NULL;
	s->len = s->cap = 0;
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct sink *s = ud;
	size_t n = size * nmemb;	/* size is always 1 (CURLOPT_WRITEFUNCTION) */

	if (n > s->max - s->len) {
		s->too_big = true;
		return 0;	/* aborts the transfer: CURLE_WRITE_ERROR */
	}
	if (s->len + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		char *nb;

		while (cap < s->len + n + 1)
			cap *= 2;
		if (cap > s->max + 1)
			cap = s->max + 1;
		if (s->sensitive) {
			/* realloc could leave a copy of a token behind */
			nb = xmalloc(cap);
			if (s->len)
				memcpy(nb, s->buf, s->len);
			sink_free(s);
		} else {
			nb = xrealloc(s->buf, cap);
		}
		s->buf = nb;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, data, n);
	s->len += n;
	return n;
}

static bool
has_crlf(const char *s, size_t n)
{
	return memchr(s, '\r', n) || memchr(s, '\n', n);
}

static void
slist_free_wiped(struct curl_slist *list)
{
	for (struct curl_slist *p = list; p; p = p->next)
		secret_wipe(p->data, strlen(p->data));
	curl_slist_free_all(list);
}

static struct curl_slist *
slist_add(struct curl_slist *list, const char *line)
{
	struct curl_slist *n = curl_slist_append(list, line);

	if (!n) {
		/* curl_slist_append fails only without memory: treat as xmalloc does. */
		slist_free_wiped(list);
		abort();
	}
	return n;
}

/* Curl's error text is used only when it cannot carry a URL or a token. */
static bool
errbuf_is_safe(const char *text, const struct http_req *req)
{
	if (!text[0] || strpbrk(text, "/?#@\r\n"))
		return false;
	if (req->bearer && secret_len(req->bearer) > 0 &&
	    strstr(text, secret_reveal(req->bearer)))
		return false;
	return true;
}

/* The one place curl's failures become workbot's words. */
static void
translate(CURLcode rc, const struct sink *sink, const char *errbuf,
    const struct http_req *req, struct http_resp *resp)
{
	const char *text;

	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		resp->err = HTTP_ERR_TIMEOUT;
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
		resp->err = HTTP_ERR_CONNECT;
		break;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_SHUTDOWN_FAILED:
		resp->err = HTTP_ERR_TLS;
		break;
	case CURLE_FILESIZE_EXCEEDED:
		resp->err = HTTP_ERR_TOO_BIG;
		break;
	case CURLE_WRITE_ERROR:
		resp->err = sink->too_big ? HTTP_ERR_TOO_BIG : HTTP_ERR_OTHER;
		break;
	case CURLE_UNSUPPORTED_PROTOCOL:
		resp->err = HTTP_ERR_REFUSED;
		break;
	default:
		resp->err = HTTP_ERR_OTHER;
		break;
	}
	if (resp->err == HTTP_ERR_TOO_BIG) {
		snprintf(resp->error, sizeof(resp->error),
		    "response body over %zu bytes", sink->max);
		return;
	}
	text = errbuf_is_safe(errbuf, req) ? errbuf : curl_easy_strerror(rc);
	snprintf(resp->error, sizeof(resp->error), "%s", text);
}

static void
refuse(struct http_resp *resp, const char *why)
{
	resp->err = HTTP_ERR_REFUSED;
	snprintf(resp->error, sizeof(resp->error), "%s", why);
}

/* Set every per-request option; 0 or -1 (why). */
static int
set_options(CURL *e, const struct http_req *req, CURLU *u, bool plain_http,
    struct curl_slist *headers, struct sink *sink, char *errbuf)
{
	const char *proto = plain_http ? "http" : "https";
	long timeout = req->timeout_ms ? (long)req->timeout_ms : (long)HTTP_TIMEOUT_DEFAULT_MS;
	long ctimeout = req->connect_timeout_ms ? (long)req->connect_timeout_ms
	    : (long)HTTP_CONNECT_TIMEOUT_DEFAULT_MS;
	CURLcode rc = CURLE_OK;

#define SET(opt, val) do { if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val); } while (0)
	SET(CURLOPT_CURLU, u);
	SET(CURLOPT_PROTOCOLS_STR, proto);
	SET(CURLOPT_REDIR_PROTOCOLS_STR, proto);
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_TIMEOUT_MS, timeout);
	SET(CURLOPT_CONNECTTIMEOUT_MS, ctimeout < timeout ? ctimeout : timeout);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, sink);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)sink->max);
	SET(CURLOPT_USERAGENT, "workbot/" WORKBOT_VERSION);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_HTTPHEADER, headers);
	/* A loopback request must never go through an environment proxy. */
	if (plain_http)
		SET(CURLOPT_NOPROXY, "*");
	if (req->ca_file)
		SET(CURLOPT_CAINFO, req->ca_file);

	switch (req->method) {
	case HTTP_GET:
		SET(CURLOPT_HTTPGET, 1L);
		break;
	case HTTP_POST:
		SET(CURLOPT_POST, 1L);
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		SET(CURLOPT_POSTFIELDS, req->body ? req->body : "");
		break;
	case HTTP_PUT:
	case HTTP_PATCH:
	case HTTP_DELETE:
		SET(CURLOPT_CUSTOMREQUEST, http_method_name(req->method));
		if (req->body || req->method != HTTP_DELETE) {
			SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
			SET(CURLOPT_POSTFIELDS, req->body ? req->body : "");
		}
		break;
	}
#undef SET
	return rc == CURLE_OK ? 0 : -1;
}

static struct curl_slist *
build_headers(const struct http_req *req, const char **why)
{
	struct curl_slist *list = NULL;

	/* No 100-continue round trip: our bodies are small. */
	list = slist_add(list, "Expect:");
	if (req->content_type) {
		char *line;

		if (has_crlf(req->content_type, strlen(req->content_type)))
			goto bad;
		line = xasprintf("Content-Type: %s", req->content_type);
		list = slist_add(list, line);
		free(line);
	}
	for (const char *const *h = req->headers; h && *h; h++) {
		if (has_crlf(*h, strlen(*h)) || !strchr(*h, ':'))
			goto bad;
		list = slist_add(list, *h);
	}
	if (req->bearer) {
		static const char prefix[] = "Authorization: Bearer ";
		size_t tlen = secret_len(req->bearer);
		size_t n = sizeof(prefix) + tlen;
		char *line;

		if (tlen == 0 || has_crlf(secret_reveal(req->bearer), tlen) ||
		    memchr(secret_reveal(req->bearer), '\0', tlen))
			goto bad;
		line = xmalloc(n);
		memcpy(line, prefix, sizeof(prefix) - 1);
		memcpy(line + sizeof(prefix) - 1, secret_reveal(req->bearer), tlen);
		line[n - 1] = '\0';
		list = slist_add(list, line);
		secret_wipe(line, n);
		free(line);
	}
	return list;
bad:
	slist_free_wiped(list);
	*why = "a header or token holds a line break";
	return NULL;
}

int
http_request(struct http_client *c, const struct http_req *req, struct http_resp *resp)
{
	struct sink sink = { 0 };
	struct curl_slist *headers = NULL;
	const char *url, *why = NULL;
	bool plain_http = false;
	CURLU *u = NULL;
	CURLcode rc;
	curl_off_t retry = 0;
	int ret = -1;

	memset(resp, 0, sizeof(*resp));
	resp->sensitive = req->sensitive;
	sink.max = req->body_max ? req->body_max : HTTP_BODY_MAX_DEFAULT;
	sink.sensitive = req->sensitive;

	url = req->secret_url ? secret_reveal(req->secret_url) : req->url;
	if (!url) {
		refuse(resp, "no URL");
		goto out;
	}
	if ((unsigned)req->method >= sizeof(method_names) / sizeof(method_names[0])) {
		refuse(resp, "unknown method");
		goto out;
	}
	if (url_check(url, &u, &plain_http, &why) != 0) {
		refuse(resp, why);
		goto out;
	}
	headers = build_headers(req, &why);
	if (!headers) {
		refuse(resp, why);
		goto out;
	}

	curl_easy_reset(c->easy);
	c->errbuf[0] = '\0';
	if (c->shared)
		curl_easy_setopt(c->easy, CURLOPT_SHARE, c->shared->sh);
	if (set_options(c->easy, req, u, plain_http, headers, &sink, c->errbuf) != 0) {
		resp->err = HTTP_ERR_OTHER;
		snprintf(resp->error, sizeof(resp->error), "cannot set request options");
		goto out;
	}
	rc = curl_easy_perform(c->easy);
	curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &resp->status);
	if (rc != CURLE_OK) {
		translate(rc, &sink, c->errbuf, req, resp);
		goto out;
	}
	if (curl_easy_getinfo(c->easy, CURLINFO_RETRY_AFTER, &retry) == CURLE_OK && retry > 0)
		resp->retry_after_s = retry > 86400 ? 86400 : (long)retry;
	ret = 0;
out:
	/* The handle still points at our URL handle, headers and sink: drop
	 * those references before they are freed. */
	curl_easy_reset(c->easy);
	slist_free_wiped(headers);
	curl_url_cleanup(u);
	if (req->sensitive && req->body && req->body_len)
		secret_wipe((void *)(uintptr_t)req->body, req->body_len);
	if (ret == 0) {
		if (!sink.buf) {
			sink.buf = xmalloc(1);
			sink.cap = 1;
		}
		sink.buf[sink.len] = '\0';
		resp->body = sink.buf;
		resp->body_len = sink.len;
	} else {
		sink_free(&sink);
		resp->body = xcalloc(1, 1);
		resp->body_len = 0;
	}
	return ret;
}

void
http_resp_clear(struct http_resp *resp)
{
	if (!resp)
		return;
	if (resp->body && resp->sensitive)
		secret_wipe(resp->body, resp->body_len);
	free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
}

int
http_resolve(const char *host, unsigned port, char *numeric, size_t size, const char **why)
{
	struct addrinfo hints = { 0 }, *res = NULL, *pick = NULL;
	char service[8];
	int rc;

	if (!host || !*host || port == 0 || port > 65535) {
		*why = "bad host or port";
		return -1;
	}
	snprintf(service, sizeof(service), "%u", port);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(host, service, &hints, &res);
	if (rc != 0) {
		*why = gai_strerror(rc);
		return -1;
	}
	/* IPv4 first: hosts with a broken IPv6 route are the common case. */
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET) {
			pick = ai;
			break;
		}
		if (!pick && ai->ai_family == AF_INET6)
			pick = ai;
	}
	if (!pick) {
		freeaddrinfo(res);
		*why = "no IPv4 or IPv6 address";
		return -1;
	}
	rc = getnameinfo(pick->ai_addr, pick->ai_addrlen, numeric, (socklen_t)size,
	    NULL, 0, NI_NUMERICHOST);
	freeaddrinfo(res);
	if (rc != 0) {
		*why = gai_strerror(rc);
		return -1;
	}
	return 0;
}
