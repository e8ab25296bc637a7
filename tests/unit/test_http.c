/*
 * Unit tests for http: against tests/unit/http_stub on 127.0.0.1 only.
 * Refusals are tested with addresses that must never be contacted
 * (192.0.2.1, TEST-NET-1): the check happens before any socket exists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "workbot/http.h"
#include "workbot/secret.h"
#include "http_stub.h"

struct fixture {
	struct http_stub   *stub;
	struct http_shared *shared;
	struct http_client *client;
	char url[128];
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->stub = http_stub_start();
	if (!f->stub)
		return -1;
	f->shared = http_shared_new();
	f->client = http_client_new(f->shared);
	snprintf(f->url, sizeof(f->url), "%s/api/x", http_stub_base(f->stub));
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	http_client_free(f->client);
	http_shared_free(f->shared);
	http_stub_stop(f->stub);
	free(f);
	return 0;
}

static void
test_get(void **state)
{
	struct fixture *f = *state;
	struct http_req req = { .method = HTTP_GET, .url = f->url };
	struct http_resp resp;
	const struct http_stub_request *r;

	http_stub_answer(f->stub, 200, "Content-Type: text/plain\r\n", "hello");
	assert_int_equal(http_request(f->client, &req, &resp), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.body_len, 5);
	assert_string_equal(resp.body, "hello");
	assert_int_equal(resp.err, HTTP_ERR_NONE);
	assert_int_equal(resp.retry_after_s, 0);
	http_resp_clear(&resp);

	r = http_stub_request(f->stub, 0);
	assert_non_null(r);
	assert_string_equal(r->method, "GET");
	assert_string_equal(r->target, "/api/x");
}

static void
test_post_bearer_body(void **state)
{
	struct fixture *f = *state;
	struct secret *tok = secret_from_str("xoxb-test-123");
	const char *extra[] = { "X-Test: one", NULL };
	const char *body = "{\"channel\":\"C1\"}";
	struct http_req req = {
		.method = HTTP_POST, .url = f->url, .headers = extra,
		.content_type = "application/json; charset=utf-8",
		.body = body, .body_len = strlen(body), .bearer = tok,
	};
	struct http_resp resp;
	const struct http_stub_request *r;
	char v[256];

	http_stub_answer(f->stub, 200, NULL, "{\"ok\":true}");
	assert_int_equal(http_request(f->client, &req, &resp), 0);
	assert_int_equal(resp.status, 200);
	http_resp_clear(&resp);

	r = http_stub_request(f->stub, 0);
	assert_string_equal(r->method, "POST");
	assert_string_equal(http_stub_header(r, "Authorization", v, sizeof(v)),
	    "Bearer xoxb-test-123");
	assert_string_equal(http_stub_header(r, "content-type", v, sizeof(v)),
	    "application/json; charset=utf-8");
	assert_string_equal(http_stub_header(r, "X-Test", v, sizeof(v)), "one");
	assert_null(http_stub_header(r, "Expect", v, sizeof(v)));
	assert_string_equal(r->body, body);
	secret_free(tok);
}

static void
test_put_patch_delete(void **state)
{
	struct fixture *f = *state;
	static const enum http_method ms[] = { HTTP_PUT, HTTP_PATCH, HTTP_DELETE };
	struct http_resp resp;

	for (int i = 0; i < 3; i++) {
		struct http_req req = {
			.method = ms[i], .url = f->url,
			.content_type = i < 2 ? "application/json" : NULL,
			.body = i < 2 ? "{}" : NULL, .body_len = i < 2 ? 2 : 0,
		};

		http_stub_answer(f->stub, 204, NULL, NULL);
		assert_int_equal(http_request(f->client, &req, &resp), 0);
		assert_int_equal(resp.status, 204);
		http_resp_clear(&resp);
		assert_string_equal(http_stub_request(f->stub, (size_t)i)->method,
		    http_method_name(ms[i]));
	}
	assert_string_equal(http_stub_request(f->stub, 1)->body, "{}");
}

static void
test_status_and_retry_after(void **state)
{
	struct fixture *f = *state;
	struct http_req req = { .method = HTTP_POST, .url = f->url };
	struct http_resp resp;

	http_stub_answer(f->stub, 429, "Retry-After: 7\r\n", "{\"ok\":false,\"error\":\"ratelimited\"}");
	assert_int_equal(http_request(f->client, &req, &resp), 0);
	assert_int_equal(resp.status, 429);
	assert_int_equal(resp.retry_after_s, 7);
	http_resp_clear(&resp);

	/* Not carried over to the next request on the same handle. */
	http_stub_answer(f->stub, 503, NULL, "down");
	assert_int_equal(http_request(f->client, &req, &resp), 0);
	assert_int_equal(resp.status, 503);
	assert_int_equal(resp.retry_after_s, 0);
	assert_string_equal(resp.body, "down");
	http_resp_clear(&resp);
}

static void
test_redirect_not_followed(void **state)
{
	struct fixture *f = *state;
	struct http_req req = { .method = HTTP_GET, .url = f->url };
	struct http_resp resp;
	char loc[160];

	snprintf(loc, sizeof(loc), "Location: %s/elsewhere\r\n", http_stub_base(f->stub));
	http_stub_answer(f->stub, 302, loc, NULL);
	http_stub_answer(f->stub, 200, NULL, "followed!");
	assert_int_equal(http_request(f->client, &req, &resp), 0);
	assert_int_equal(resp.status, 302);
	http_resp_clear(&resp);
	/* Give a follow-up request a moment to show up if one were made. */
	assert_false(http_stub_wait(f->stub, 2, 200));
	assert_int_equal(http_stub_count(f->stub), 1);
}

static void
expect_refused(struct fixture *f, const struct http_req *req)
{
	struct http_resp resp;
	uint64_t t0 = now_ms();

	assert_int_equal(http_request(f->client, req, &resp), -1);
	assert_int_equal(resp.err, HTTP_ERR_REFUSED);
	assert_int_equal(resp.status, 0);
	assert_non_null(resp.body);
	assert_true(resp.error[0] != '\0');
	/* Refused by the check, not by a network timeout. */
	assert_true(now_ms() - t0 < 200);
	http_resp_clear(&resp);
}

static void
test_refusals(void **state)
{
	struct fixture *f = *state;
	struct secret *tok = secret_from_str("xoxb-1");
	struct secret *bad = secret_from_str("xoxb-1\r\nX-Evil: 1");
	char url[160];
	static const char *const urls[] = {
		"http://192.0.2.1/api/auth.test",	/* plain http off loopback */
		"http://192.0.2.1:80/",
		"HTTP://192.0.2.1/",
		"http://127.0.0.1.nip.io/",		/* looks local, is not */
		"ftp://127.0.0.1/",
		"file:///etc/passwd",
		"192.0.2.1/api",			/* no scheme */
		"https://user:pw@192.0.2.1/",	/* credentials in the URL */
		"",
	};
	const char *crlf[] = { "X-A: 1\r\nX-B: 2", NULL };

	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		struct http_req req = { .method = HTTP_GET, .url = urls[i], .bearer = tok };

		expect_refused(f, &req);
	}
	{
		struct http_req req = { .method = HTTP_GET, .url = NULL };

		expect_refused(f, &req);
	}

	/* Header injection, through a header or a token. */
	snprintf(url, sizeof(url), "%s/", http_stub_base(f->stub));
	{
		struct http_req req = { .method = HTTP_GET, .url = url, .headers = crlf };

		expect_refused(f, &req);
	}
	{
		struct http_req req = { .method = HTTP_GET, .url = url, .bearer = bad };

		expect_refused(f, &req);
	}
	assert_int_equal(http_stub_count(f->stub), 0);
	assert_int_equal(http_stub_accepts(f->stub), 0);
	secret_free(tok);
	secret_free(bad);
}

static void
test_loopback_hosts(void **state)
{
	(void)state;
	assert_true(http_url_is_loopback("http://127.0.0.1:1/"));
	assert_true(http_url_is_loopback("http://127.200.3.4/x"));
	assert_true(http_url_is_loopback("http://[::1]:8080/"));
	assert_true(http_url_is_loopback("http://localhost/"));
	assert_true(http_url_is_loopback("http://LOCALHOST:99/"));
	assert_false(http_url_is_loopback("http://128.0.0.1/"));
	assert_false(http_url_is_loopback("http://192.0.2.1/"));
	assert_false(http_url_is_loopback("http://[::2]/"));
	assert_false(http_url_is_loopback("http://example.com/"));
	assert_false(http_url_is_loopback("http://127.0.0.1.nip.io/"));
	assert_false(http_url_is_loopback("http://localhost.example.com/"));
	assert_false(http_url_is_loopback("not a url"));
}

static void
test_timeout(void **state)
{
	struct fixture *f = *state;
	struct http_stub_response slow = { .status = 200, .body = "late", .delay_ms = 3000 };
	struct http_req req = { .method = HTTP_GET, .url = f->url, .timeout_ms = 300 };
	struct http_resp resp;
	uint64_t t0 = now_ms(), dt;

	http_stub_push(f->stub, &slow);
	assert_int_equal(http_request(f->client, &req, &resp), -1);
	dt = now_ms() - t0;
	assert_int_equal(resp.err, HTTP_ERR_TIMEOUT);
	assert_true(dt >= 250 && dt < 2000);
	http_resp_clear(&resp);
}

static void
test_body_cap(void **state)
{
	struct fixture *f = *state;
	size_t big = 2u * 1024u * 1024u;
	char *body = malloc(big + 1);
	struct http_stub_response r = { .status = 200, .body = body, .body_len = big };
	struct http_req req = { .method = HTTP_GET, .url = f->url };
	struct http_resp resp;

	memset(body, 'a', big);
	body[big] = '\0';
	http_stub_push(f->stub, &r);
	assert_int_equal(http_request(f->client, &req, &resp), -1);
	assert_int_equal(resp.err, HTTP_ERR_TOO_BIG);
	assert_int_equal(resp.body_len, 0);
	http_resp_clear(&resp);

	/* A smaller cap, exactly met, is fine; one byte over is not. */
	r.body_len = 1000;
	http_stub_push(f->stub, &r);
	req.body_max = 1000;
	assert_int_equal(http_request(f->client, &req, &resp), 0);
	assert_int_equal(resp.body_len, 1000);
	http_resp_clear(&resp);
	r.body_len = 1001;
	http_stub_push(f->stub, &r);
	assert_int_equal(http_request(f->client, &req, &resp), -1);
	assert_int_equal(resp.err, HTTP_ERR_TOO_BIG);
	http_resp_clear(&resp);
	free(body);
}

static void
test_connection_reused(void **state)
{
	struct fixture *f = *state;
	struct http_req req = { .method = HTTP_GET, .url = f->url };
	struct http_resp resp;

	for (int i = 0; i < 5; i++) {
		http_stub_answer(f->stub, 200, NULL, "ok");
		assert_int_equal(http_request(f->client, &req, &resp), 0);
		http_resp_clear(&resp);
	}
	assert_int_equal(http_stub_count(f->stub), 5);
	assert_int_equal(http_stub_accepts(f->stub), 1);
}

static unsigned
closed_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static void
test_error_text_is_safe(void **state)
{
	struct fixture *f = *state;
	struct secret *tok = secret_from_str("xoxb-SECRETTOKEN");
	struct secret *surl;
	char url[160];
	struct http_resp resp;
	(void)f;

	snprintf(url, sizeof(url),
	    "http://127.0.0.1:%u/hooks/T1/B2/SECRETPATH?token=SECRETQUERY", closed_port());
	surl = secret_from_str(url);
	{
		struct http_req req = { .method = HTTP_POST, .secret_url = surl, .bearer = tok };

		assert_int_equal(http_request(f->client, &req, &resp), -1);
	}
	assert_int_equal(resp.err, HTTP_ERR_CONNECT);
	assert_true(resp.error[0] != '\0');
	assert_null(strstr(resp.error, "SECRET"));
	assert_null(strchr(resp.error, '?'));
	assert_null(strchr(resp.error, '/'));
	http_resp_clear(&resp);
	secret_free(surl);
	secret_free(tok);
}

static void
test_secret_url_and_wipe(void **state)
{
	struct fixture *f = *state;
	char url[160], body[] = "client_secret=hunter2&code=abc";
	struct secret *surl;
	struct http_resp resp;
	size_t blen = strlen(body);

	snprintf(url, sizeof(url), "%s/actions/T1/123/xyz", http_stub_base(f->stub));
	surl = secret_from_str(url);
	http_stub_answer(f->stub, 200, NULL, "{\"access_token\":\"tok\"}");
	{
		struct http_req req = {
			.method = HTTP_POST, .secret_url = surl,
			.content_type = "application/x-www-form-urlencoded",
			.body = body, .body_len = blen, .sensitive = true,
		};

		assert_int_equal(http_request(f->client, &req, &resp), 0);
	}
	assert_int_equal(resp.status, 200);
	assert_true(resp.sensitive);
	assert_string_equal(resp.body, "{\"access_token\":\"tok\"}");
	http_resp_clear(&resp);
	assert_null(resp.body);
	/* The caller's body was wiped after the transfer. */
	for (size_t i = 0; i < blen; i++)
		assert_int_equal(body[i], 0);
	assert_string_equal(http_stub_request(f->stub, 0)->target, "/actions/T1/123/xyz");
	assert_string_equal(http_stub_request(f->stub, 0)->body,
	    "client_secret=hunter2&code=abc");
	secret_free(surl);
}

static void
test_resolve(void **state)
{
	char buf[64];
	const char *why = NULL;
	(void)state;

	/* Loopback names only: no query may leave this machine. */
	assert_int_equal(http_resolve("127.0.0.1", 443, buf, sizeof(buf), &why), 0);
	assert_string_equal(buf, "127.0.0.1");
	assert_int_equal(http_resolve("::1", 443, buf, sizeof(buf), &why), 0);
	assert_string_equal(buf, "::1");
	assert_int_equal(http_resolve("localhost", 443, buf, sizeof(buf), &why), 0);
	assert_string_equal(buf, "127.0.0.1");	/* IPv4 preferred */
	assert_int_equal(http_resolve("127.0.0.1", 0, buf, sizeof(buf), &why), -1);
	assert_non_null(why);
	assert_int_equal(http_resolve("", 443, buf, sizeof(buf), &why), -1);
}

static void
test_no_shared(void **state)
{
	struct fixture *f = *state;
	struct http_client *c = http_client_new(NULL);
	struct http_req req = { .method = HTTP_GET, .url = f->url };
	struct http_resp resp;

	http_stub_answer(f->stub, 200, NULL, "x");
	assert_int_equal(http_request(c, &req, &resp), 0);
	assert_string_equal(resp.body, "x");
	http_resp_clear(&resp);
	http_client_free(c);
	http_client_free(NULL);
	http_shared_free(NULL);
	http_resp_clear(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_post_bearer_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_patch_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_and_retry_after, setup, teardown),
		cmocka_unit_test_setup_teardown(test_redirect_not_followed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test(test_loopback_hosts),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_text_is_safe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secret_url_and_wipe, setup, teardown),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test_setup_teardown(test_no_shared, setup, teardown),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
