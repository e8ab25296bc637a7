/*
 * C client for the fake OAuth provider (tests/fakes/fake_oauth.c). See
 * fake_oauth_client.h. Test code only. Never prints or logs a token; header
 * buffers that held a credential are wiped before they are freed.
 */
#include "fake_oauth_client.h"
#include "fake_proc.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#define MAX_ANSWER (8u << 20)

struct foc {
	pid_t pid;
	int port;
	CURL *curl;
	char base[64];
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

struct loc {
	char *buf;
	size_t len;
};

/* keeps the Location header's value exactly as sent */
static size_t
header_cb(char *data, size_t sz, size_t n, void *arg)
{
	struct loc *l = arg;
	size_t len = sz * n;

	if (l->buf && l->len && len > 9 && !strncasecmp(data, "Location:", 9)) {
		const char *v = data + 9;
		size_t vl = len - 9;

		while (vl && (*v == ' ' || *v == '\t')) {
			v++;
			vl--;
		}
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
			vl--;
		snprintf(l->buf, l->len, "%.*s", (int)vl, v);
	}
	return len;
}

static struct foc *
foc_new(int port)
{
	struct foc *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	if (sodium_init() < 0) {
		free(f);
		return NULL;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	f->port = port;
	f->curl = curl_easy_init();
	if (!f->curl) {
		free(f);
		curl_global_cleanup();
		return NULL;
	}
	snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%d", port);
	return f;
}

struct foc *
foc_attach(int port)
{
	if (port <= 0 || port > 65535)
		return NULL;
	return foc_new(port);
}

struct foc *
foc_spawn(const char *fake_path, const char *const *extra_args, int timeout_ms)
{
	struct foc *f;
	pid_t pid;
	int port;

	if (fake_proc_spawn(fake_path, extra_args, timeout_ms, &pid, &port) != 0)
		return NULL;
	f = foc_new(port);
	if (!f) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return NULL;
	}
	f->pid = pid;
	return f;
}

int
foc_stop(struct foc *f)
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
foc_port(const struct foc *f)
{
	return f->port;
}

pid_t
foc_pid(const struct foc *f)
{
	return f->pid;
}

const char *
foc_base_url(const struct foc *f)
{
	return f->base;
}

int
foc_request(struct foc *f, const char *method, const char *path,
	    const char *authorization, const char *body, const char *ctype,
	    char **body_out, char *location, size_t loclen)
{
	struct curl_slist *h = NULL;
	struct sink s = { NULL, 0, 0 };
	struct loc l = { location, loclen };
	char url[4096], hdr[4200];
	long code = -1;
	CURLcode cr;

	if (body_out)
		*body_out = NULL;
	if (location && loclen)
		location[0] = '\0';
	if (snprintf(url, sizeof(url), "%s%s", f->base, path) >= (int)sizeof(url))
		return -1;
	curl_easy_reset(f->curl);
	curl_easy_setopt(f->curl, CURLOPT_URL, url);
	curl_easy_setopt(f->curl, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(f->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(f->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(f->curl, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(f->curl, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(f->curl, CURLOPT_WRITEFUNCTION, sink_write);
	curl_easy_setopt(f->curl, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(f->curl, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(f->curl, CURLOPT_HEADERDATA, &l);
	if (strcmp(method, "GET"))
		curl_easy_setopt(f->curl, CURLOPT_CUSTOMREQUEST, method);
	if (authorization) {
		if (snprintf(hdr, sizeof(hdr), "Authorization: %s", authorization) >=
		    (int)sizeof(hdr))
			return -1;
		h = curl_slist_append(h, hdr);
		sodium_memzero(hdr, sizeof(hdr));
	}
	if (body) {
		snprintf(hdr, sizeof(hdr), "Content-Type: %s",
			 ctype ? ctype : "application/x-www-form-urlencoded");
		h = curl_slist_append(h, hdr);
		curl_easy_setopt(f->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(f->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	if (h)
		curl_easy_setopt(f->curl, CURLOPT_HTTPHEADER, h);
	cr = curl_easy_perform(f->curl);
	if (cr == CURLE_OK)
		curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &code);
	/* the header list may hold a credential: wipe it before freeing */
	for (struct curl_slist *x = h; x; x = x->next)
		sodium_memzero(x->data, strlen(x->data));
	curl_slist_free_all(h);
	if (cr == CURLE_OK && body_out)
		*body_out = s.p;
	else
		free(s.p);
	return cr == CURLE_OK ? (int)code : -1;
}

static int
json_request(struct foc *f, const char *method, const char *path, const char *body,
	     const char *ctype, cJSON **out)
{
	char *b = NULL;
	int st = foc_request(f, method, path, NULL, body, ctype, &b, NULL, 0);

	if (out)
		*out = b ? cJSON_Parse(b) : NULL;
	free(b);
	return st;
}

int
foc_control(struct foc *f, const char *route, const char *json, cJSON **out)
{
	char path[512];

	if (snprintf(path, sizeof(path), "/_control/%s", route) >= (int)sizeof(path))
		return -1;
	return json_request(f, "POST", path, json ? json : "{}", "application/json", out);
}

int
foc_control_get(struct foc *f, const char *route_and_query, cJSON **out)
{
	char path[2048];

	if (snprintf(path, sizeof(path), "/_control/%s", route_and_query) >= (int)sizeof(path))
		return -1;
	return json_request(f, "GET", path, NULL, NULL, out);
}

static int
ok_of(cJSON *o)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "ok"));
}

static int
control_obj(struct foc *f, const char *route, cJSON *req)
{
	char *t = cJSON_PrintUnformatted(req);
	cJSON *o = NULL;
	int rc = -1;

	cJSON_Delete(req);
	if (t && foc_control(f, route, t, &o) == 200 && ok_of(o))
		rc = 0;
	cJSON_free(t);
	cJSON_Delete(o);
	return rc;
}

int
foc_app(struct foc *f, const char *json)
{
	cJSON *o = NULL;
	int rc = foc_control(f, "app", json, &o) == 200 && ok_of(o) ? 0 : -1;

	cJSON_Delete(o);
	return rc;
}

int
foc_next_login(struct foc *f, const char *client_id, const char *account, int deny)
{
	cJSON *r = cJSON_CreateObject();

	cJSON_AddStringToObject(r, "client_id", client_id);
	if (account)
		cJSON_AddStringToObject(r, "account", account);
	if (deny)
		cJSON_AddBoolToObject(r, "deny", 1);
	return control_obj(f, "next_login", r);
}

int
foc_fail(struct foc *f, const char *endpoint, int count, int status, int hang_ms,
	 const char *error, const char *grant_type)
{
	cJSON *r = cJSON_CreateObject();

	cJSON_AddStringToObject(r, "endpoint", endpoint);
	cJSON_AddNumberToObject(r, "count", count);
	if (status)
		cJSON_AddNumberToObject(r, "status", status);
	if (hang_ms)
		cJSON_AddNumberToObject(r, "hang_ms", hang_ms);
	if (error)
		cJSON_AddStringToObject(r, "error", error);
	if (grant_type)
		cJSON_AddStringToObject(r, "grant_type", grant_type);
	return control_obj(f, "fail", r);
}

int
foc_expire(struct foc *f, const char *account)
{
	cJSON *r = cJSON_CreateObject();

	if (account)
		cJSON_AddStringToObject(r, "account", account);
	return control_obj(f, "expire", r);
}

int
foc_reset(struct foc *f)
{
	return control_obj(f, "reset", cJSON_CreateObject());
}

double
foc_count(struct foc *f, const char *name)
{
	cJSON *o = NULL;
	double v = -1;

	if (foc_control_get(f, "stats", &o) == 200 && ok_of(o)) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(o, "counts"), name);

		v = cJSON_IsNumber(n) ? n->valuedouble : 0;
	}
	cJSON_Delete(o);
	return v;
}

void
foc_pkce(char verifier[64], char challenge[64])
{
	unsigned char raw[32], h[crypto_hash_sha256_BYTES];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(verifier, 64, raw, sizeof(raw),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	crypto_hash_sha256(h, (const unsigned char *)verifier, strlen(verifier));
	sodium_bin2base64(challenge, 64, h, sizeof(h),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
}

/* value of `name` in the query of `url` (decoded), or -1 */
static int
query_param(CURL *c, const char *url, const char *name, char *out, size_t outlen)
{
	const char *q = strchr(url, '?');
	size_t nl = strlen(name);

	while (q && *q) {
		q++;
		if (!strncmp(q, name, nl) && q[nl] == '=') {
			size_t vl = strcspn(q + nl + 1, "&#");
			int dl = 0;
			char *d = curl_easy_unescape(c, q + nl + 1, (int)vl, &dl);

			if (!d || (size_t)dl >= outlen) {
				curl_free(d);
				return -1;
			}
			memcpy(out, d, (size_t)dl);
			out[dl] = '\0';
			curl_free(d);
			return 0;
		}
		q = strchr(q, '&');
	}
	return -1;
}

int
foc_login(struct foc *f, const char *client_id, const char *client_secret,
	  int basic, const char *redirect_uri, const char *scope, cJSON **token)
{
	char ver[64], cc[64], loc[4096], code[256], state[64], got_state[64];
	char path[4096], *body = NULL, *b = NULL, *auth = NULL;
	char *e_cid = NULL, *e_ru = NULL, *e_sc = NULL, *e_sec = NULL, *e_code = NULL;
	int st = -1;
	unsigned char rs[16];

	if (token)
		*token = NULL;
	foc_pkce(ver, cc);
	randombytes_buf(rs, sizeof(rs));
	sodium_bin2hex(state, sizeof(state), rs, sizeof(rs));
	e_cid = curl_easy_escape(f->curl, client_id, 0);
	e_ru = curl_easy_escape(f->curl, redirect_uri, 0);
	e_sc = curl_easy_escape(f->curl, scope ? scope : "", 0);
	e_sec = curl_easy_escape(f->curl, client_secret, 0);
	if (!e_cid || !e_ru || !e_sc || !e_sec)
		goto out;
	if (snprintf(path, sizeof(path),
		     "/authorize?response_type=code&client_id=%s&redirect_uri=%s&scope=%s"
		     "&state=%s&code_challenge=%s&code_challenge_method=S256",
		     e_cid, e_ru, e_sc, state, cc) >= (int)sizeof(path))
		goto out;
	if (foc_request(f, "GET", path, NULL, NULL, NULL, NULL, loc, sizeof(loc)) != 302 ||
	    query_param(f->curl, loc, "code", code, sizeof(code)) ||
	    query_param(f->curl, loc, "state", got_state, sizeof(got_state)) ||
	    strcmp(state, got_state))
		goto out;
	e_code = curl_easy_escape(f->curl, code, 0);
	if (!e_code)
		goto out;
	if (basic) {
		char raw[600];
		size_t need;

		if ((size_t)snprintf(raw, sizeof(raw), "%s:%s", e_cid, e_sec) >= sizeof(raw))
			goto out;
		need = sodium_base64_ENCODED_LEN(strlen(raw), sodium_base64_VARIANT_ORIGINAL);
		auth = malloc(need + 6);
		if (!auth)
			goto out;
		memcpy(auth, "Basic ", 6);
		sodium_bin2base64(auth + 6, need, (const unsigned char *)raw, strlen(raw),
				  sodium_base64_VARIANT_ORIGINAL);
		sodium_memzero(raw, sizeof(raw));
		if (asprintf(&body, "grant_type=authorization_code&code=%s&redirect_uri=%s"
			     "&code_verifier=%s", e_code, e_ru, ver) < 0)
			body = NULL;
	} else if (asprintf(&body, "grant_type=authorization_code&code=%s&redirect_uri=%s"
			    "&code_verifier=%s&client_id=%s&client_secret=%s",
			    e_code, e_ru, ver, e_cid, e_sec) < 0) {
		body = NULL;
	}
	if (!body)
		goto out;
	st = foc_request(f, "POST", "/token", auth, body, NULL, &b, NULL, 0);
	if (token && b)
		*token = cJSON_Parse(b);
out:
	if (b)
		sodium_memzero(b, strlen(b));
	free(b);
	if (body)
		sodium_memzero(body, strlen(body));
	free(body);
	if (auth)
		sodium_memzero(auth, strlen(auth));
	free(auth);
	curl_free(e_cid);
	curl_free(e_ru);
	curl_free(e_sc);
	if (e_sec)
		sodium_memzero(e_sec, strlen(e_sec));
	curl_free(e_sec);
	curl_free(e_code);
	sodium_memzero(ver, sizeof(ver));
	return st;
}
