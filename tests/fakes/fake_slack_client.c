/*
 * C client for the fake Slack's HTTP side. See fake_slack_client.h.
 * Test code only. Never prints or logs a token.
 */
#include "fake_slack_client.h"
#include "fake_proc.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#define MAX_ANSWER (64u << 20)

struct fsc {
	pid_t pid;
	int port;
	CURL *curl;
	char base[64];
	char api[80];
};

struct sink {
	char *p;
	size_t len;
	int overflow;
};

static size_t
sink_write(char *data, size_t sz, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t add = sz * n;
	char *np;

	if (s->len + add > MAX_ANSWER) {
		s->overflow = 1;
		return 0;
	}
	np = realloc(s->p, s->len + add + 1);
	if (!np)
		return 0;
	s->p = np;
	memcpy(s->p + s->len, data, add);
	s->len += add;
	s->p[s->len] = '\0';
	return add;
}

static struct fsc *
fsc_new(int port)
{
	struct fsc *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	f->port = port;
	f->curl = curl_easy_init();
	if (!f->curl) {
		free(f);
		return NULL;
	}
	snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%d", port);
	snprintf(f->api, sizeof(f->api), "http://127.0.0.1:%d/api/", port);
	return f;
}

struct fsc *
fsc_attach(int port)
{
	if (port <= 0 || port > 65535)
		return NULL;
	return fsc_new(port);
}

struct fsc *
fsc_spawn(const char *fake_path, const char *const *extra_args, int timeout_ms)
{
	struct fsc *f;
	pid_t pid;
	int port;

	if (fake_proc_spawn(fake_path, extra_args, timeout_ms, &pid, &port) != 0)
		return NULL;
	f = fsc_new(port);
	if (!f) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return NULL;
	}
	f->pid = pid;
	return f;
}

int
fsc_stop(struct fsc *f)
{
	int rc = 0;

	if (!f)
		return -1;
	if (f->pid > 0)
		rc = fake_proc_stop(f->pid);
	curl_easy_cleanup(f->curl);
	free(f);
	curl_global_cleanup();
	return rc;
}

int
fsc_port(const struct fsc *f)
{
	return f->port;
}

pid_t
fsc_pid(const struct fsc *f)
{
	return f->pid;
}

const char *
fsc_api_url(const struct fsc *f)
{
	return f->api;
}

static int
request(struct fsc *f, const char *path, int post, const char *bearer,
	const char *body, const char *ctype, cJSON **out, long *retry_after,
	long timeout_ms)
{
	struct curl_slist *h = NULL;
	struct sink s = { NULL, 0, 0 };
	char url[4096], hdr[1100];
	long code = -1;
	CURLcode cr;

	if (out)
		*out = NULL;
	if (retry_after)
		*retry_after = 0;
	if (snprintf(url, sizeof(url), "%s%s", f->base, path) >= (int)sizeof(url))
		return -1;
	curl_easy_reset(f->curl);
	curl_easy_setopt(f->curl, CURLOPT_URL, url);
	curl_easy_setopt(f->curl, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(f->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(f->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(f->curl, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(f->curl, CURLOPT_WRITEFUNCTION, sink_write);
	curl_easy_setopt(f->curl, CURLOPT_WRITEDATA, &s);
	if (bearer) {
		if (strlen(bearer) > 1000)
			return -1;
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", bearer);
		h = curl_slist_append(h, hdr);
	}
	if (post) {
		snprintf(hdr, sizeof(hdr), "Content-Type: %s",
			 ctype ? ctype : "application/x-www-form-urlencoded");
		h = curl_slist_append(h, hdr);
		curl_easy_setopt(f->curl, CURLOPT_POST, 1L);
		curl_easy_setopt(f->curl, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(f->curl, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
	}
	if (h)
		curl_easy_setopt(f->curl, CURLOPT_HTTPHEADER, h);
	cr = curl_easy_perform(f->curl);
	if (cr == CURLE_OK) {
		curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &code);
		if (retry_after) {
			curl_off_t ra = 0;

			curl_easy_getinfo(f->curl, CURLINFO_RETRY_AFTER, &ra);
			*retry_after = (long)ra;
		}
		if (out && s.p)
			*out = cJSON_Parse(s.p);
	}
	/* the header list held a token: wipe it before freeing */
	memset(hdr, 0, sizeof(hdr));
	curl_slist_free_all(h);
	free(s.p);
	return cr == CURLE_OK ? (int)code : -1;
}

int
fsc_get(struct fsc *f, const char *path, cJSON **out)
{
	return request(f, path, 0, NULL, NULL, NULL, out, NULL, 10000);
}

int
fsc_post(struct fsc *f, const char *path, const char *bearer, const char *body,
	 const char *ctype, cJSON **out, long *retry_after)
{
	return request(f, path, 1, bearer, body, ctype, out, retry_after, 10000);
}

char *
fsc_escape(struct fsc *f, const char *s)
{
	return curl_easy_escape(f->curl, s, 0);
}

void
fsc_free_str(char *s)
{
	curl_free(s);
}

static int
ok_of(cJSON *o)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "ok"));
}

int
fsc_push(struct fsc *f, const char *query, char *envelope_id, size_t idlen)
{
	char path[4096];
	cJSON *o = NULL;
	int st, rc = -1;

	if (snprintf(path, sizeof(path), "/_control/push?%s", query ? query : "") >=
	    (int)sizeof(path))
		return -1;
	st = fsc_post(f, path, NULL, NULL, NULL, &o, NULL);
	if (st == 200 && ok_of(o)) {
		const char *id = cJSON_GetStringValue(
			cJSON_GetObjectItemCaseSensitive(o, "envelope_id"));

		if (envelope_id && idlen)
			snprintf(envelope_id, idlen, "%s", id ? id : "");
		rc = 0;
	}
	cJSON_Delete(o);
	return rc;
}

int
fsc_fail(struct fsc *f, const char *method, int count, int status,
	 int retry_after, const char *error)
{
	char path[512];
	char *m = fsc_escape(f, method), *e = error ? fsc_escape(f, error) : NULL;
	cJSON *o = NULL;
	int st;

	snprintf(path, sizeof(path),
		 "/_control/fail?method=%s&count=%d&status=%d&retry_after=%d%s%s",
		 m ? m : "", count, status, retry_after, e ? "&error=" : "", e ? e : "");
	fsc_free_str(m);
	fsc_free_str(e);
	st = fsc_post(f, path, NULL, NULL, NULL, &o, NULL);
	st = st == 200 && ok_of(o) ? 0 : -1;
	cJSON_Delete(o);
	return st;
}

int
fsc_reset(struct fsc *f)
{
	cJSON *o = NULL;
	int st = fsc_post(f, "/_control/reset", NULL, NULL, NULL, &o, NULL);

	st = st == 200 && ok_of(o) ? 0 : -1;
	cJSON_Delete(o);
	return st;
}

double
fsc_stat(struct fsc *f, const char *key)
{
	cJSON *o = NULL;
	double v = -1;

	if (fsc_get(f, "/_control/stats", &o) == 200) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, key);

		if (cJSON_IsNumber(n))
			v = n->valuedouble;
	}
	cJSON_Delete(o);
	return v;
}

int
fsc_wait_stat(struct fsc *f, const char *key, double at_least, int timeout_ms)
{
	int i;

	for (i = 0; i <= timeout_ms / 20; i++) {
		if (fsc_stat(f, key) >= at_least)
			return 0;
		usleep(20000);
	}
	return -1;
}

int
fsc_connections_open(struct fsc *f, const char *app_token, char *url,
		     size_t urllen)
{
	cJSON *o = NULL;
	int st = fsc_post(f, "/api/apps.connections.open", app_token, "", NULL, &o, NULL);
	const char *u = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "url"));
	int rc = -1;

	if (st == 200 && ok_of(o) && u && strlen(u) < urllen) {
		snprintf(url, urllen, "%s", u);
		rc = 0;
	}
	cJSON_Delete(o);
	return rc;
}

int
fsc_burst(struct fsc *f, unsigned n, unsigned window, const char *type,
	  long timeout_ms, cJSON **out)
{
	char path[256];
	int st;

	snprintf(path, sizeof(path),
		 "/_control/burst?n=%u&window=%u&type=%s&timeout_ms=%ld&wait=1",
		 n, window, type ? type : "noop", timeout_ms);
	st = request(f, path, 1, NULL, NULL, NULL, out, NULL, timeout_ms + 5000);
	return st == 200 ? 0 : -1;
}
