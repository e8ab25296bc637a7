/*
 * oauth: the personal-connection login (begin, start, callback, confirm,
 * sweep) and the use of a connection (access, refresh, revoke).
 *
 * How. A login lives in the store's `pending` database, sealed by records:
 * first a LOGIN record (state, PKCE verifier, cookie secret, who, which
 * app, that app's token_url pinned, what to resume) under a random id that
 * is the only thing in the Slack link; then, after the code exchange, a
 * WAITING record (the fresh tokens, a one-time form token) under another
 * random id, for the confirm page. Both bodies use one small tag-length-
 * value encoding (below) so that no token passes through a JSON library
 * that cannot wipe its copies. The browser is bound to the login by a
 * cookie "<login id>.<cookie secret>" set at start; the callback and the
 * confirm both check it in constant time. Only Connect writes a
 * connection; everything else that used up a WAITING record revokes its
 * tokens at the provider.
 *
 * Using a connection: a fresh token is returned without a lock; a refresh
 * takes the connection's single-flight lock (records_conn_lock), re-reads
 * the record (another worker may have refreshed it: Box rotates refresh
 * tokens, so two refreshes would lose the grant), refreshes only if still
 * needed and writes back with RECORDS_PUT_MUST_EXIST.
 *
 * Never: put a token, code, state, verifier, cookie value, client secret or
 * authorize URL in a log line, an error text or a page; follow a redirect
 * or send a code anywhere but the token_url pinned at begin; redirect to a
 * URL taken from a request; store a connection that was not confirmed;
 * write to the store or the network from oauth_start (event thread).
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sodium.h>

#include "workbot/config.h"
#include "workbot/http.h"
#include "workbot/log.h"
#include "workbot/metrics.h"
#include "workbot/oauth.h"
#include "workbot/util.h"
#include "workbot/records.h"
#include "workbot/secret.h"
#include "workbot/xmalloc.h"
#include "oauth_page.h"

#define COMP "oauth"

#define ID_BYTES	16	/* login / waiting record ids: 128 bits */
#define SECRET_BYTES	32	/* state, verifier, cookie secret, form token */
#define ID_B64		(((ID_BYTES * 4) + 2) / 3)		/* 22 */
#define SECRET_B64	(((SECRET_BYTES * 4) + 2) / 3)		/* 43 */
#define COOKIE_MAX	(ID_B64 + 1 + SECRET_B64)

#define BUDGET_DEFAULT_MS	12000u
#define HTTP_DEFAULT_MS		10000u
#define EXCHANGE_CAP_MS		8000u
#define USERINFO_CAP_MS		4000u
#define MIN_CALL_MS		250u

#define FORM_VALUE_MAX	8192		/* one decoded query/form value */
#define FORM_INPUT_MAX	(64u * 1024u)
#define EXPIRES_IN_MAX	(10LL * 366 * 24 * 3600)

struct oauth {
	struct records   *r;
	oauth_describe_fn describe;
	void             *describe_arg;
	unsigned          budget_ms;
	unsigned          http_ms;
};

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static unsigned
remaining_ms(uint64_t deadline)
{
	uint64_t now = mono_ms();

	return now >= deadline ? 0 : (unsigned)(deadline - now);
}

static unsigned
min_u(unsigned a, unsigned b)
{
	return a < b ? a : b;
}

static void
b64url(char *out, size_t outsz, const unsigned char *bin, size_t len)
{
	sodium_bin2base64(out, outsz, bin, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* `nbytes` random bytes as base64url into out (≥ sodium_base64_ENCODED_LEN). */
static void
rand_b64(char *out, size_t outsz, size_t nbytes)
{
	unsigned char bin[SECRET_BYTES];

	randombytes_buf(bin, nbytes);
	b64url(out, outsz, bin, nbytes);
	sodium_memzero(bin, sizeof(bin));
}

static bool
is_b64url(const char *s, size_t want)
{
	size_t n = 0;

	if (s == NULL)
		return false;
	for (; s[n] != '\0'; n++) {
		unsigned char ch = (unsigned char)s[n];

		if (n >= want || !(isalnum(ch) || ch == '-' || ch == '_'))
			return false;
	}
	return n == want;
}

/* Constant-time equality of two C strings (lengths are not secret). */
static bool
str_equal_ct(const char *a, const char *b)
{
	size_t n;

	if (a == NULL || b == NULL)
		return false;
	n = strlen(a);
	if (n != strlen(b) || n == 0)
		return false;
	return sodium_memcmp(a, b, n) == 0;
}

/* A provider's error code shown or logged only if it is a plain word. */
static const char *
safe_word(const char *s)
{
	size_t n = 0;

	if (s == NULL || *s == '\0')
		return NULL;
	for (; s[n] != '\0'; n++) {
		unsigned char ch = (unsigned char)s[n];

		if (n >= 64 || !(isalnum(ch) || ch == '_' || ch == '-' || ch == '.'))
			return NULL;
	}
	return s;
}

/* Names that go into record keys: what records accepts. */
static bool
name_ok(const char *s)
{
	size_t n;

	if (s == NULL || *s == '\0')
		return false;
	n = strnlen(s, RECORDS_ID_MAX + 1);
	if (n > RECORDS_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch <= 0x20 || ch == 0x7f || ch == ':')
			return false;
	}
	return true;
}

/* Truncating copy, always NUL-terminated (size > 0). */
static void
copy_str(char *dst, size_t size, const char *src)
{
	size_t n = src ? strnlen(src, size - 1) : 0;

	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

static const char *
app_title(const struct config_app *app, const char *fallback)
{
	if (app != NULL && app->title.v != NULL && app->title.v[0] != '\0')
		return app->title.v;
	return app != NULL ? app->name : fallback;
}

/* The oauth2 app `name` of cfg, or NULL. */
static const struct config_app *
oauth_app(const struct config *cfg, const char *name)
{
	const struct config_app *app = name ? config_app_find(cfg, name) : NULL;

	if (app == NULL || app->auth.v != CONFIG_AUTH_OAUTH2 || app->client_id.v == NULL ||
	    app->token_url.v == NULL || app->authorize_url.v == NULL)
		return NULL;
	return app;
}

static const char *
public_url(const struct config *cfg)
{
	return cfg->listener.public_url.v ? cfg->listener.public_url.v : "";
}

/* The cookie's Path: public_url's own path (a reverse proxy prefix) + /oauth/. */
static void
cookie_path(const struct config *cfg, char *out, size_t size)
{
	const char *u = public_url(cfg);
	const char *host = strstr(u, "://");
	const char *path = host ? strchr(host + 3, '/') : NULL;

	snprintf(out, size, "%s/oauth/", path ? path : "");
}

static bool
public_is_https(const struct config *cfg)
{
	return strncasecmp(public_url(cfg), "https://", 8) == 0;
}

static struct secret *
make_cookie(const struct config *cfg, const char *value, unsigned max_age)
{
	char path[RECORDS_URL_MAX], *line;
	struct secret *s;

	cookie_path(cfg, path, sizeof(path));
	line = xasprintf("%s=%s; Max-Age=%u; Path=%s; HttpOnly; SameSite=Lax%s", OAUTH_COOKIE_NAME,
	    value, max_age, path, public_is_https(cfg) ? "; Secure" : "");
	s = secret_from_str(line);
	secret_wipe(line, strlen(line));
	free(line);
	return s;
}

/* The value of our cookie in a Cookie header, into out[size]. */
static bool
cookie_find(const char *hdr, char *out, size_t size)
{
	static const char name[] = OAUTH_COOKIE_NAME "=";
	const char *p = hdr;

	while (p != NULL && *p != '\0') {
		size_t n;

		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		n = strcspn(p, ";");
		if (n > sizeof(name) - 1 && strncmp(p, name, sizeof(name) - 1) == 0) {
			const char *v = p + sizeof(name) - 1;
			size_t vlen = n - (sizeof(name) - 1);

			while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
				vlen--;
			if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
				v++;
				vlen -= 2;
			}
			if (vlen == 0 || vlen >= size)
				return false;
			memcpy(out, v, vlen);
			out[vlen] = '\0';
			return true;
		}
		p += n;
	}
	return false;
}

/* "<id>.<secret>" -> id and secret, both checked for shape. */
static bool
cookie_split(const char *value, char id[ID_B64 + 1], char sec[SECRET_B64 + 1])
{
	const char *dot = strchr(value, '.');

	if (dot == NULL || (size_t)(dot - value) != ID_B64 || strlen(dot + 1) != SECRET_B64)
		return false;
	memcpy(id, value, ID_B64);
	id[ID_B64] = '\0';
	memcpy(sec, dot + 1, SECRET_B64 + 1);
	return is_b64url(id, ID_B64) && is_b64url(sec, SECRET_B64);
}

/* Walk a cJSON tree and wipe every string value before freeing it. */
static void
json_wipe(cJSON *j)
{
	for (; j != NULL; j = j->next) {
		if (j->valuestring != NULL)
			sodium_memzero(j->valuestring, strlen(j->valuestring));
		json_wipe(j->child);
	}
}

static void
json_free_wiped(cJSON *j)
{
	json_wipe(j);
	cJSON_Delete(j);
}

static const char *
json_str(const cJSON *o, const char *key)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));

	return s != NULL && *s != '\0' ? s : NULL;
}

/* ------------------------------------------------------------------ */
/* sealed pending bodies: tag (1) | length (4, big endian) | bytes     */

enum pend_kind { PEND_LOGIN = 1, PEND_WAITING = 2 };

enum pend_tag {
	T_TEAM = 1, T_USER, T_APP, T_TOKEN_URL, T_STATE, T_VERIFIER, T_COOKIE,
	T_CREATED, T_RESUME, T_ANSWER_TO, T_SHARED, T_LOGIN_ID, T_FORM_TOKEN,
	T_ACCOUNT, T_ACCESS, T_REFRESH, T_EXPIRES_AT, T_SCOPE, T_INSTANCE_URL,
	T_TOKEN_TYPE,
	T_MAX
};

/* Which tags hold NUL-terminated text (checked when decoding). */
static const bool tag_is_text[T_MAX] = {
	[T_TEAM] = true, [T_USER] = true, [T_APP] = true, [T_TOKEN_URL] = true,
	[T_STATE] = true, [T_VERIFIER] = true, [T_COOKIE] = true, [T_LOGIN_ID] = true,
	[T_FORM_TOKEN] = true, [T_ACCOUNT] = true, [T_ACCESS] = true, [T_REFRESH] = true,
	[T_SCOPE] = true, [T_INSTANCE_URL] = true, [T_TOKEN_TYPE] = true,
};

static const unsigned char pend_magic[4] = { 'w', 'b', 'o', '1' };

struct enc {
	unsigned char *buf;
	size_t         len, cap;
	bool           over;
};

static void
enc_put(struct enc *e, enum pend_tag tag, const void *p, size_t n)
{
	size_t need = 5 + n;

	if (e->over)
		return;
	if (n > UINT32_MAX || e->len + need > RECORDS_PENDING_MAX) {
		e->over = true;
		return;
	}
	if (e->len + need > e->cap) {
		size_t cap = e->cap ? e->cap : 1024;
		unsigned char *nb;

		while (cap < e->len + need)
			cap *= 2;
		/* Grow by hand so the old copy (it holds secrets) is wiped, not leaked. */
		nb = xmalloc(cap);
		if (e->len)
			memcpy(nb, e->buf, e->len);
		if (e->buf != NULL) {
			sodium_memzero(e->buf, e->cap);
			free(e->buf);
		}
		e->buf = nb;
		e->cap = cap;
	}
	e->buf[e->len++] = (unsigned char)tag;
	e->buf[e->len++] = (unsigned char)(n >> 24);
	e->buf[e->len++] = (unsigned char)(n >> 16);
	e->buf[e->len++] = (unsigned char)(n >> 8);
	e->buf[e->len++] = (unsigned char)n;
	if (n)
		memcpy(e->buf + e->len, p, n);
	e->len += n;
}

static void
enc_start(struct enc *e, enum pend_kind kind)
{
	memset(e, 0, sizeof(*e));
	e->cap = 1024;
	e->buf = xmalloc(e->cap);
	memcpy(e->buf, pend_magic, sizeof(pend_magic));
	e->buf[4] = (unsigned char)kind;
	e->len = 5;
}

static void
enc_str(struct enc *e, enum pend_tag tag, const char *s)
{
	if (s != NULL)
		enc_put(e, tag, s, strlen(s) + 1);
}

static void
enc_i64(struct enc *e, enum pend_tag tag, int64_t v)
{
	unsigned char b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)((uint64_t)v >> (56 - 8 * i));
	enc_put(e, tag, b, sizeof(b));
}

static void
enc_free(struct enc *e)
{
	if (e->buf != NULL) {
		sodium_memzero(e->buf, e->cap);
		free(e->buf);
	}
	memset(e, 0, sizeof(*e));
}

struct field {
	const unsigned char *p;
	size_t               n;
	bool                 set;
};

/* A decoded body: pointers into the (still owned) secret it came from. */
struct pend {
	enum pend_kind kind;
	struct field   f[T_MAX];
};

static const char *
pstr(const struct pend *pd, enum pend_tag t)
{
	return pd->f[t].set ? (const char *)pd->f[t].p : NULL;
}

static int64_t
pi64(const struct pend *pd, enum pend_tag t)
{
	uint64_t v = 0;

	if (!pd->f[t].set || pd->f[t].n != 8)
		return 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | pd->f[t].p[i];
	return (int64_t)v;
}

static int
pend_decode(const struct secret *body, struct pend *pd)
{
	const unsigned char *p = (const unsigned char *)secret_reveal(body);
	size_t len = secret_len(body), off = 5;
	static const enum pend_tag login_need[] = {
		T_TEAM, T_USER, T_APP, T_TOKEN_URL, T_STATE, T_VERIFIER, T_COOKIE,
	};
	static const enum pend_tag wait_need[] = {
		T_TEAM, T_USER, T_APP, T_LOGIN_ID, T_COOKIE, T_FORM_TOKEN, T_ACCESS,
	};
	const enum pend_tag *need;
	size_t nneed;

	memset(pd, 0, sizeof(*pd));
	if (len < 5 || memcmp(p, pend_magic, sizeof(pend_magic)) != 0 ||
	    (p[4] != PEND_LOGIN && p[4] != PEND_WAITING))
		return -1;
	pd->kind = p[4];
	while (off < len) {
		unsigned tag;
		size_t n;

		if (len - off < 5)
			return -1;
		tag = p[off];
		n = ((size_t)p[off + 1] << 24) | ((size_t)p[off + 2] << 16) |
		    ((size_t)p[off + 3] << 8) | p[off + 4];
		off += 5;
		if (n > len - off)
			return -1;
		if (tag > 0 && tag < T_MAX) {
			if (pd->f[tag].set)
				return -1;
			if (tag_is_text[tag] && (n == 0 || p[off + n - 1] != '\0' ||
			    memchr(p + off, '\0', n - 1) != NULL))
				return -1;
			pd->f[tag] = (struct field){ .p = p + off, .n = n, .set = true };
		}
		off += n;
	}
	need = pd->kind == PEND_LOGIN ? login_need : wait_need;
	nneed = pd->kind == PEND_LOGIN ? sizeof(login_need) / sizeof(login_need[0]) :
	    sizeof(wait_need) / sizeof(wait_need[0]);
	for (size_t i = 0; i < nneed; i++)
		if (!pd->f[need[i]].set)
			return -1;
	return 0;
}

static struct secret *
pbytes(const struct pend *pd, enum pend_tag t)
{
	return pd->f[t].set && pd->f[t].n > 0 ? secret_new(pd->f[t].p, pd->f[t].n) : NULL;
}

/* ------------------------------------------------------------------ */
/* urlencoded forms: building (wiped) and parsing                      */

struct form {
	char  *buf;
	size_t len, cap;
};

static void
form_grow(struct form *f, size_t more)
{
	size_t cap;
	char *nb;

	if (f->len + more + 1 <= f->cap)
		return;
	cap = f->cap ? f->cap : 512;
	while (cap < f->len + more + 1)
		cap *= 2;
	nb = xmalloc(cap);
	if (f->len)
		memcpy(nb, f->buf, f->len);
	if (f->buf != NULL) {
		sodium_memzero(f->buf, f->cap);
		free(f->buf);
	}
	f->buf = nb;
	f->cap = cap;
}

/* RFC 3986 unreserved characters stay, everything else is %XX. */
static void
form_add(struct form *f, const char *name, const char *value, size_t vlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t nlen = strlen(name);

	form_grow(f, 1 + nlen + 1 + 3 * vlen);
	if (f->len)
		f->buf[f->len++] = '&';
	memcpy(f->buf + f->len, name, nlen);
	f->len += nlen;
	f->buf[f->len++] = '=';
	for (size_t i = 0; i < vlen; i++) {
		unsigned char ch = (unsigned char)value[i];

		if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			f->buf[f->len++] = (char)ch;
		} else {
			f->buf[f->len++] = '%';
			f->buf[f->len++] = hex[ch >> 4];
			f->buf[f->len++] = hex[ch & 15];
		}
	}
	f->buf[f->len] = '\0';
}

static void
form_adds(struct form *f, const char *name, const char *value)
{
	form_add(f, name, value, strlen(value));
}

static void
form_free(struct form *f)
{
	if (f->buf != NULL) {
		sodium_memzero(f->buf, f->cap);
		free(f->buf);
	}
	memset(f, 0, sizeof(*f));
}

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Decode one form value; NULL if malformed, holds a NUL, or is too long. */
static char *
form_decode(const char *s, size_t n)
{
	char *out;
	size_t o = 0;

	if (n > 3 * FORM_VALUE_MAX)
		return NULL;
	out = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		int ch = (unsigned char)s[i];

		if (ch == '+') {
			ch = ' ';
		} else if (ch == '%') {
			if (n - i < 3 || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
				goto bad;
			ch = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
			i += 2;
		}
		if (ch == '\0')
			goto bad;
		out[o++] = (char)ch;
	}
	out[o] = '\0';
	if (o > FORM_VALUE_MAX)
		goto bad;
	return out;
bad:
	sodium_memzero(out, n + 1);
	free(out);
	return NULL;
}

static void
free_wiped(char *s)
{
	if (s != NULL) {
		sodium_memzero(s, strlen(s));
		free(s);
	}
}

/*
 * Pick the named fields out of "a=b&c=d". vals[i] gets a malloc'd decoded
 * value (free_wiped) or stays NULL. -1 on a malformed or repeated field.
 */
static int
form_fields(const char *s, size_t len, const char *const *names, char **vals, size_t n)
{
	size_t off = 0;

	for (size_t i = 0; i < n; i++)
		vals[i] = NULL;
	if (s == NULL)
		return 0;
	if (len > FORM_INPUT_MAX)
		return -1;
	while (off < len) {
		const char *p = s + off, *amp = memchr(p, '&', len - off), *eq;
		size_t plen = amp ? (size_t)(amp - p) : len - off;

		off += plen + (amp ? 1 : 0);
		if (plen == 0)
			continue;
		eq = memchr(p, '=', plen);
		for (size_t i = 0; i < n; i++) {
			size_t nlen = strlen(names[i]);
			size_t klen = eq ? (size_t)(eq - p) : plen;

			if (klen != nlen || memcmp(p, names[i], nlen) != 0)
				continue;
			if (vals[i] != NULL)
				goto bad;
			vals[i] = eq ? form_decode(eq + 1, plen - klen - 1) : xstrdup("");
			if (vals[i] == NULL)
				goto bad;
			break;
		}
	}
	return 0;
bad:
	for (size_t i = 0; i < n; i++) {
		free_wiped(vals[i]);
		vals[i] = NULL;
	}
	return -1;
}

int
oauth_query_parse(const char *query, size_t len, struct oauth_query *st,
    struct oauth_callback_params *out)
{
	static const char *const names[] = { "code", "state", "error", "error_description", "iss" };
	char *v[5];

	memset(st, 0, sizeof(*st));
	memset(out, 0, sizeof(*out));
	if (form_fields(query, len, names, v, 5) != 0)
		return -1;
	st->code = v[0];
	st->state = v[1];
	st->error = v[2];
	st->error_description = v[3];
	st->iss = v[4];
	out->code = st->code;
	out->state = st->state;
	out->error = st->error;
	out->error_description = st->error_description;
	out->iss = st->iss;
	return 0;
}

void
oauth_query_free(struct oauth_query *st)
{
	if (st == NULL)
		return;
	free_wiped(st->code);
	free_wiped(st->state);
	free_wiped(st->error);
	free_wiped(st->error_description);
	free_wiped(st->iss);
	memset(st, 0, sizeof(*st));
}

/* ------------------------------------------------------------------ */
/* talking to the provider                                             */

/*
 * Client authentication, one way only (DESIGN §6): `basic` puts the
 * credentials in an Authorization header (form-urlencoded first, RFC 6749
 * §2.3.1) and only client_id in the form; `body` puts client_id and
 * client_secret in the form. *hdr (wiped by the caller) or NULL.
 */
static void
client_auth(const struct config_app *app, struct form *f, char **hdr)
{
	const struct secret *sec = app->client_secret.v;

	*hdr = NULL;
	form_adds(f, "client_id", app->client_id.v);
	if (sec == NULL || secret_len(sec) == 0)
		return;
	if (app->client_auth.v == CONFIG_CLIENT_AUTH_BODY) {
		form_add(f, "client_secret", secret_reveal(sec), secret_len(sec));
	} else {
		static const char prefix[] = "Authorization: Basic ";
		struct form id = { 0 }, pw = { 0 };
		size_t rawlen, b64len;
		char *raw;

		/* form_add writes "x=<escaped>": skip the "x=" to get the escaped text. */
		form_adds(&id, "x", app->client_id.v);
		form_add(&pw, "x", secret_reveal(sec), secret_len(sec));
		rawlen = (id.len - 2) + 1 + (pw.len - 2);
		raw = xmalloc(rawlen + 1);
		memcpy(raw, id.buf + 2, id.len - 2);
		raw[id.len - 2] = ':';
		memcpy(raw + id.len - 1, pw.buf + 2, pw.len - 2);
		raw[rawlen] = '\0';
		b64len = sodium_base64_ENCODED_LEN(rawlen, sodium_base64_VARIANT_ORIGINAL);
		*hdr = xmalloc(sizeof(prefix) - 1 + b64len);
		memcpy(*hdr, prefix, sizeof(prefix) - 1);
		sodium_bin2base64(*hdr + sizeof(prefix) - 1, b64len, (const unsigned char *)raw,
		    rawlen, sodium_base64_VARIANT_ORIGINAL);
		sodium_memzero(raw, rawlen);
		free(raw);
		form_free(&id);
		form_free(&pw);
	}
}

static void
describe_http_failure(const struct http_resp *resp, char *why, size_t whysz, bool *timed_out)
{
	if (resp->err == HTTP_ERR_TIMEOUT) {
		if (timed_out != NULL)
			*timed_out = true;
		snprintf(why, whysz, "no answer in time");
	} else {
		copy_str(why, whysz, resp->error[0] ? resp->error : http_error_name(resp->err));
	}
}

/* POST a form to url with the app's client authentication. */
static int
provider_post(const struct config *cfg, const struct config_app *app, struct http_client *c,
    const char *url, struct form *f, unsigned timeout_ms, struct http_resp *resp)
{
	const char *headers[3] = { "Accept: application/json", NULL, NULL };
	char *auth = NULL;
	struct http_req req;
	int rc;

	client_auth(app, f, &auth);
	headers[1] = auth;
	memset(&req, 0, sizeof(req));
	req.method = HTTP_POST;
	req.url = url;
	req.headers = headers;
	req.content_type = "application/x-www-form-urlencoded";
	req.body = f->buf;
	req.body_len = f->len;
	req.timeout_ms = timeout_ms;
	req.connect_timeout_ms = min_u(timeout_ms, HTTP_CONNECT_TIMEOUT_DEFAULT_MS);
	req.body_max = 256u * 1024u;
	req.ca_file = cfg->slack.ca_file.v;
	req.sensitive = true;
	rc = http_request(c, &req, resp);
	if (auth != NULL) {
		sodium_memzero(auth, strlen(auth));
		free(auth);
	}
	return rc;
}

static bool
host_matches(const char *host, const char *pattern)
{
	size_t hl = strlen(host), pl;

	if (strncmp(pattern, "*.", 2) != 0)
		return strcasecmp(host, pattern) == 0;
	pattern += 1;		/* ".suffix" */
	pl = strlen(pattern);
	return hl > pl && strcasecmp(host + hl - pl, pattern) == 0;
}

/*
 * A token response's instance_url is used as the API base only if it is
 * https (http only to loopback), has no credentials, query or fragment,
 * and matches [app] instance_hosts when that is set. Normalised (no
 * trailing '/') into out[size].
 */
static bool
instance_url_ok(const struct config_app *app, const char *url, char *out, size_t size)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *x = NULL, *full = NULL;
	bool ok = false;
	size_t n;

	if (u == NULL || url == NULL || strlen(url) > RECORDS_URL_MAX)
		goto done;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		goto done;
	if (strcasecmp(scheme, "https") != 0 &&
	    !(strcasecmp(scheme, "http") == 0 && http_url_is_loopback(url)))
		goto done;
	if (curl_url_get(u, CURLUPART_USER, &x, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_QUERY, &x, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_FRAGMENT, &x, 0) == CURLUE_OK)
		goto done;
	if (app->instance_hosts.n > 0) {
		bool any = false;

		for (size_t i = 0; i < app->instance_hosts.n && !any; i++)
			any = host_matches(host, app->instance_hosts.v[i]);
		if (!any)
			goto done;
	}
	if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK)
		goto done;
	n = strlen(full);
	while (n > 0 && full[n - 1] == '/')
		n--;
	if (n == 0 || n >= size)
		goto done;
	memcpy(out, full, n);
	out[n] = '\0';
	ok = true;
done:
	curl_free(scheme);
	curl_free(host);
	curl_free(x);
	curl_free(full);
	curl_url_cleanup(u);
	return ok;
}

enum tok_result { TOK_OK, TOK_INVALID_GRANT, TOK_FAILED };

/*
 * Send a token request (authorization_code or refresh_token grant) and read
 * the answer into *tok. Fields the answer lacks stay as they were in *tok
 * (a refresh answer without refresh_token keeps the old one). `why` gets a
 * safe reason on failure: a status, the provider's error code, never a body.
 */
static enum tok_result
token_request(const struct config *cfg, const struct config_app *app, struct http_client *c,
    const char *url, struct form *f, unsigned timeout_ms, int64_t now,
    struct records_tokens *tok, char *why, size_t whysz, bool *timed_out)
{
	struct http_resp resp;
	cJSON *j = NULL;
	const char *access, *refresh, *scope, *type, *inst, *error;
	const cJSON *exp;
	enum tok_result res = TOK_FAILED;
	char norm[RECORDS_URL_MAX + 1];

	if (provider_post(cfg, app, c, url, f, timeout_ms, &resp) != 0) {
		describe_http_failure(&resp, why, whysz, timed_out);
		goto done;
	}
	j = cJSON_ParseWithLength(resp.body, resp.body_len);
	error = cJSON_IsObject(j) ? safe_word(json_str(j, "error")) : NULL;
	if (resp.status < 200 || resp.status > 299 || (cJSON_IsObject(j) && json_str(j, "error"))) {
		if (error != NULL && strcmp(error, "invalid_grant") == 0)
			res = TOK_INVALID_GRANT;
		if (error != NULL)
			snprintf(why, whysz, "HTTP %ld, error %s", resp.status, error);
		else
			snprintf(why, whysz, "HTTP %ld", resp.status);
		goto done;
	}
	if (!cJSON_IsObject(j)) {
		snprintf(why, whysz, "HTTP %ld, the answer is not a JSON object", resp.status);
		goto done;
	}
	access = json_str(j, "access_token");
	refresh = json_str(j, "refresh_token");
	if (access == NULL) {
		snprintf(why, whysz, "the answer has no access_token");
		goto done;
	}
	if (strlen(access) > RECORDS_TOKEN_MAX || (refresh && strlen(refresh) > RECORDS_TOKEN_MAX)) {
		snprintf(why, whysz, "a token in the answer is too long");
		goto done;
	}
	secret_free(tok->access_token);
	tok->access_token = secret_from_str(access);
	if (refresh != NULL) {
		secret_free(tok->refresh_token);
		tok->refresh_token = secret_from_str(refresh);
	}
	/* expires_in: a number, or a numeric string at some providers; absent (Salesforce): unknown. */
	exp = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
	tok->expires_at = 0;
	if (cJSON_IsNumber(exp) && exp->valuedouble >= 1 && exp->valuedouble <= (double)EXPIRES_IN_MAX) {
		tok->expires_at = now + (int64_t)exp->valuedouble;
	} else if (cJSON_IsString(exp)) {
		char *end;
		long long v = strtoll(exp->valuestring, &end, 10);

		if (end != exp->valuestring && *end == '\0' && v >= 1 && v <= EXPIRES_IN_MAX)
			tok->expires_at = now + v;
	}
	if ((scope = json_str(j, "scope")) != NULL && strlen(scope) <= RECORDS_SCOPE_MAX) {
		free(tok->scope);
		tok->scope = xstrdup(scope);
	}
	if ((type = json_str(j, "token_type")) != NULL && strlen(type) <= RECORDS_TYPE_MAX) {
		free(tok->token_type);
		tok->token_type = xstrdup(type);
	}
	if ((inst = json_str(j, "instance_url")) != NULL) {
		if (instance_url_ok(app, inst, norm, sizeof(norm))) {
			free(tok->instance_url);
			tok->instance_url = xstrdup(norm);
		} else {
			char q[RECORDS_URL_MAX];

			log_warn(COMP, "instance_url ignored: not https (or loopback http), or not in "
			    "instance_hosts app=%s url=%s", app->name, log_quote(q, sizeof(q), inst));
		}
	}
	res = TOK_OK;
done:
	json_free_wiped(j);
	http_resp_clear(&resp);
	return res;
}

/*
 * RFC 7009 revocation of one token with the app's client authentication.
 * 0 revoked (2xx), -1 with a safe reason (also when there is no revoke_url).
 */
static int
revoke_token(const struct config *cfg, const struct config_app *app, struct http_client *c,
    const char *token, size_t len, bool is_refresh, unsigned timeout_ms,
    char *why, size_t whysz)
{
	struct form f = { 0 };
	struct http_resp resp;
	int rc = -1;

	if (app == NULL) {
		snprintf(why, whysz, "the app is no longer configured");
		return -1;
	}
	if (app->revoke_url.v == NULL) {
		snprintf(why, whysz, "no revoke_url is configured for %s", app->name);
		return -1;
	}
	form_add(&f, "token", token, len);
	form_adds(&f, "token_type_hint", is_refresh ? "refresh_token" : "access_token");
	if (provider_post(cfg, app, c, app->revoke_url.v, &f, timeout_ms, &resp) != 0) {
		describe_http_failure(&resp, why, whysz, NULL);
	} else if (resp.status >= 200 && resp.status <= 299) {
		rc = 0;
		why[0] = '\0';
	} else {
		cJSON *j = cJSON_ParseWithLength(resp.body, resp.body_len);
		const char *e = cJSON_IsObject(j) ? safe_word(json_str(j, "error")) : NULL;

		if (e != NULL)
			snprintf(why, whysz, "the provider answered HTTP %ld, error %s", resp.status, e);
		else
			snprintf(why, whysz, "the provider answered HTTP %ld", resp.status);
		json_free_wiped(j);
	}
	form_free(&f);
	http_resp_clear(&resp);
	return rc;
}

/* Revoke a token set: the refresh token (ends the grant), else the access token. */
static int
revoke_pair(const struct config *cfg, const struct config_app *app, struct http_client *c,
    const char *access, size_t alen, const char *refresh, size_t rlen, unsigned timeout_ms,
    char *why, size_t whysz)
{
	if (refresh != NULL && rlen > 0)
		return revoke_token(cfg, app, c, refresh, rlen, true, timeout_ms, why, whysz);
	return revoke_token(cfg, app, c, access, alen, false, timeout_ms, why, whysz);
}

/* Clean a display label: no control bytes, at most RECORDS_ACCOUNT_MAX, whole UTF-8 characters. */
static void
label_copy(char *dst, size_t size, const char *src)
{
	size_t n = 0;

	for (const char *s = src; *s != '\0' && n + 1 < size && n < RECORDS_ACCOUNT_MAX; s++) {
		unsigned char ch = (unsigned char)*s;

		dst[n++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
	}
	/* Do not end inside a multi-byte character. */
	if (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80) {
		while (n > 0 && ((unsigned char)dst[n - 1] & 0xc0) == 0x80)
			n--;
		if (n > 0 && ((unsigned char)dst[n - 1] & 0xc0) == 0xc0)
			n--;
	}
	dst[n] = '\0';
}

/*
 * userinfo -> the account label: email, else preferred_username, else
 * name; never `sub` (opaque). "" when the call fails or says nothing.
 */
static void
userinfo_label(const struct config *cfg, const struct config_app *app, struct http_client *c,
    const struct secret *access, unsigned timeout_ms, char *out, size_t size)
{
	struct http_req req;
	struct http_resp resp;
	const char *headers[] = { "Accept: application/json", NULL };
	cJSON *j = NULL;
	const char *v = NULL;

	out[0] = '\0';
	memset(&req, 0, sizeof(req));
	req.method = HTTP_GET;
	req.url = app->userinfo_url.v;
	req.headers = headers;
	req.bearer = access;
	req.timeout_ms = timeout_ms;
	req.connect_timeout_ms = min_u(timeout_ms, HTTP_CONNECT_TIMEOUT_DEFAULT_MS);
	req.body_max = 256u * 1024u;
	req.ca_file = cfg->slack.ca_file.v;
	req.sensitive = true;
	if (http_request(c, &req, &resp) != 0 || resp.status != 200) {
		log_warn(COMP, "userinfo failed app=%s status=%ld error=%s", app->name, resp.status,
		    resp.error[0] ? resp.error : "-");
		http_resp_clear(&resp);
		return;
	}
	j = cJSON_ParseWithLength(resp.body, resp.body_len);
	if (cJSON_IsObject(j) && ((v = json_str(j, "email")) != NULL ||
	    (v = json_str(j, "preferred_username")) != NULL || (v = json_str(j, "name")) != NULL))
		label_copy(out, size, v);
	else
		log_warn(COMP, "userinfo gave no email, preferred_username or name app=%s", app->name);
	json_free_wiped(j);
	http_resp_clear(&resp);
}

/* ------------------------------------------------------------------ */
/* audit                                                               */

static void
audit(struct oauth *o, enum records_audit_action action, const char *team, const char *user,
    const char *app, int64_t now, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

static void
audit(struct oauth *o, enum records_audit_action action, const char *team, const char *user,
    const char *app, int64_t now, const char *fmt, ...)
{
	struct records_audit e;
	char err[256];
	va_list ap;

	memset(&e, 0, sizeof(e));
	e.time = now;
	e.action = action;
	copy_str(e.team, sizeof(e.team), team);
	copy_str(e.user, sizeof(e.user), user);
	copy_str(e.app, sizeof(e.app), app);
	va_start(ap, fmt);
	vsnprintf(e.detail, sizeof(e.detail), fmt, ap);
	va_end(ap);
	if (records_audit_append(o->r, &e, 1, err, sizeof(err)) != 0)
		log_error(COMP, "audit entry not written action=%s app=%s: %s",
		    records_audit_action_name(action), app, err);
}

/* ------------------------------------------------------------------ */
/* set-up, pages                                                       */

struct oauth *
oauth_new(struct records *r, const struct oauth_options *opt)
{
	struct oauth *o = xcalloc(1, sizeof(*o));

	o->r = r;
	o->budget_ms = BUDGET_DEFAULT_MS;
	o->http_ms = HTTP_DEFAULT_MS;
	if (opt != NULL) {
		o->describe = opt->describe_user;
		o->describe_arg = opt->describe_arg;
		if (opt->callback_budget_ms)
			o->budget_ms = opt->callback_budget_ms;
		if (opt->http_timeout_ms)
			o->http_ms = opt->http_timeout_ms;
	}
	return o;
}

void
oauth_free(struct oauth *o)
{
	free(o);
}

void
oauth_page_clear(struct oauth_page *p)
{
	if (p == NULL)
		return;
	free(p->html);
	secret_free(p->location);
	secret_free(p->set_cookie);
	memset(p, 0, sizeof(*p));
}

void
oauth_confirmed_clear(struct oauth_confirmed *d)
{
	if (d == NULL)
		return;
	secret_free(d->resume);
	secret_free(d->answer_to);
	memset(d, 0, sizeof(*d));
}

void
oauth_access_clear(struct oauth_access *a)
{
	if (a == NULL)
		return;
	secret_free(a->token);
	memset(a, 0, sizeof(*a));
}

/*
 * Why a login step failed: one row per reason — the page's status and
 * sentence, and the metric. %s in a sentence is the app's title.
 */
enum fail {
	F_LINK_UNKNOWN,
	F_LINK_EXPIRED,
	F_LINK_USED,
	F_COOKIE_MISSING,
	F_MISMATCH,
	F_DENIED,
	F_PROVIDER_ERROR,
	F_ISSUER,
	F_NO_CODE,
	F_APP_GONE,
	F_EXCHANGE,
	F_TIMEOUT,
	F_CONFIRM_EXPIRED,
	F_CONFIRM_REFUSED,
	F_BAD_REQUEST,
	F_INTERNAL,
};

static const struct {
	int                status;
	const char        *heading;
	const char        *text;
	enum metrics_oauth metric;
} fails[] = {
	[F_LINK_UNKNOWN] = { 404, "Login link not found",
	    "This login link is unknown or has already been used. Ask workbot in Slack for a new one.",
	    METRICS_OAUTH_EXPIRED },
	[F_LINK_EXPIRED] = { 410, "Login link expired",
	    "This login link has expired (links work for 10 minutes). Ask workbot in Slack for a new one.",
	    METRICS_OAUTH_EXPIRED },
	[F_LINK_USED] = { 400, "Login already used",
	    "This login has expired or was already used. Nothing was stored. Start again from Slack.",
	    METRICS_OAUTH_EXPIRED },
	[F_COOKIE_MISSING] = { 400, "Login not started in this browser",
	    "This browser did not start this login (its login cookie is missing). Open the login link "
	    "from Slack in this browser and try again. Nothing was stored.",
	    METRICS_OAUTH_STATE_MISMATCH },
	[F_MISMATCH] = { 403, "Login does not match",
	    "This login does not belong to this browser (the login cookie or state did not match). "
	    "Nothing was stored. Start again from Slack.",
	    METRICS_OAUTH_STATE_MISMATCH },
	[F_DENIED] = { 403, "Access declined",
	    "Access was declined at %s. Nothing was stored.", METRICS_OAUTH_DENIED },
	[F_PROVIDER_ERROR] = { 400, "Login refused",
	    "%s refused the login. Nothing was stored. Start again from Slack.", METRICS_OAUTH_OTHER },
	[F_ISSUER] = { 400, "Login refused",
	    "The answer did not come from the expected %s login server. Nothing was stored.",
	    METRICS_OAUTH_OTHER },
	[F_NO_CODE] = { 400, "Login incomplete",
	    "%s sent no authorization code. Nothing was stored. Start again from Slack.",
	    METRICS_OAUTH_OTHER },
	[F_APP_GONE] = { 400, "App not configured",
	    "This app is no longer configured in workbot. Nothing was stored.", METRICS_OAUTH_OTHER },
	[F_EXCHANGE] = { 400, "Login failed",
	    "workbot could not complete the login with %s (the token exchange failed). Nothing was "
	    "stored. Start again from Slack.", METRICS_OAUTH_EXCHANGE_FAILED },
	[F_TIMEOUT] = { 400, "Login failed",
	    "%s did not answer in time. Nothing was stored. Start again from Slack.",
	    METRICS_OAUTH_EXCHANGE_FAILED },
	[F_CONFIRM_EXPIRED] = { 410, "Confirmation expired",
	    "This confirmation has expired or was already answered. Nothing was stored. Start again "
	    "from Slack.", METRICS_OAUTH_EXPIRED },
	[F_CONFIRM_REFUSED] = { 403, "Confirmation refused",
	    "This confirmation does not belong to this browser. It was refused and nothing was stored.",
	    METRICS_OAUTH_STATE_MISMATCH },
	[F_BAD_REQUEST] = { 400, "Bad request",
	    "This request is malformed. Nothing was stored.", METRICS_OAUTH_OTHER },
	[F_INTERNAL] = { 500, "Something went wrong",
	    "workbot could not finish this step. Nothing was stored. Please try again from Slack.",
	    METRICS_OAUTH_OTHER },
};

static int
fail_page(struct oauth_page *out, enum fail why, const char *title, bool count)
{
	const char *tmpl = fails[why].text, *at = strstr(tmpl, "%s");
	char text[512];

	/* The sentences are fixed; the one value in them (%s) is the app's title. */
	if (at != NULL)
		snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - tmpl), tmpl,
		    title ? title : "The provider", at + 2);
	else
		copy_str(text, sizeof(text), tmpl);
	oauth_page_clear(out);
	oauth_page_message(out, fails[why].status, fails[why].heading, fails[why].heading, text);
	if (count)
		metrics_oauth_login_inc(fails[why].metric);
	return -1;
}

/* ------------------------------------------------------------------ */
/* begin, start                                                        */

static int
begin(struct oauth *o, const struct config *cfg, const char *team, const char *user,
    const char *app_name, bool shared, const void *resume, size_t resume_len,
    const void *answer_to, size_t answer_to_len, int64_t now, char *link, size_t linksz,
    char *err, size_t errsz)
{
	const struct config_app *app;
	char id[ID_B64 + 2], state[SECRET_B64 + 2], verifier[SECRET_B64 + 2], cookie[SECRET_B64 + 2];
	struct enc e;
	int n, rc = -1;

	if (!name_ok(team) || !name_ok(user) || !name_ok(app_name)) {
		util_seterr(err, errsz, "oauth: team, user or app name is empty, too long or has a "
		    "character that is not allowed");
		return -1;
	}
	if ((app = oauth_app(cfg, app_name)) == NULL) {
		util_seterr(err, errsz, "oauth: %s is not an oauth2 app of this config", app_name);
		return -1;
	}
	if (resume_len > OAUTH_RESUME_MAX || answer_to_len > OAUTH_ANSWER_TO_MAX) {
		util_seterr(err, errsz, "oauth: the command to resume (%zu bytes) or where to answer "
		    "(%zu bytes) is too long", resume_len, answer_to_len);
		return -1;
	}
	rand_b64(id, sizeof(id), ID_BYTES);
	rand_b64(state, sizeof(state), SECRET_BYTES);
	rand_b64(verifier, sizeof(verifier), SECRET_BYTES);
	rand_b64(cookie, sizeof(cookie), SECRET_BYTES);
	n = snprintf(link, linksz, "%s/oauth/start/%s", public_url(cfg), id);
	if (n < 0 || (size_t)n >= linksz) {
		util_seterr(err, errsz, "oauth: the link buffer is too small");
		goto out;
	}
	enc_start(&e, PEND_LOGIN);
	enc_str(&e, T_TEAM, team);
	enc_str(&e, T_USER, user);
	enc_str(&e, T_APP, app->name);
	/* Pinned: the code from this login goes to this endpoint and no other. */
	enc_str(&e, T_TOKEN_URL, app->token_url.v);
	enc_str(&e, T_STATE, state);
	enc_str(&e, T_VERIFIER, verifier);
	enc_str(&e, T_COOKIE, cookie);
	enc_i64(&e, T_CREATED, now);
	if (shared)
		enc_put(&e, T_SHARED, "\1", 1);
	if (resume_len)
		enc_put(&e, T_RESUME, resume, resume_len);
	if (answer_to_len)
		enc_put(&e, T_ANSWER_TO, answer_to, answer_to_len);
	if (e.over)
		util_seterr(err, errsz, "oauth: the login record is too large");
	else if (records_pending_put(o->r, id, now + OAUTH_LOGIN_TTL, e.buf, e.len, err, errsz) == 0)
		rc = 0;
	enc_free(&e);
	if (rc == 0)
		log_debug(COMP, "login link made team=%s user=%s app=%s", team, user, app->name);
out:
	if (rc != 0 && linksz > 0)
		link[0] = '\0';
	sodium_memzero(state, sizeof(state));
	sodium_memzero(verifier, sizeof(verifier));
	sodium_memzero(cookie, sizeof(cookie));
	sodium_memzero(id, sizeof(id));
	return rc;
}

int
oauth_begin(struct oauth *o, const struct config *cfg, const char *team, const char *user,
    const char *app, const void *resume, size_t resume_len, const void *answer_to,
    size_t answer_to_len, int64_t now, char *link, size_t linksz, char *err, size_t errsz)
{
	if (user != NULL && strcmp(user, RECORDS_SHARED_USER) == 0) {
		util_seterr(err, errsz, "oauth: use oauth_begin_shared for the shared slot");
		return -1;
	}
	return begin(o, cfg, team, user, app, false, resume, resume_len, answer_to, answer_to_len,
	    now, link, linksz, err, errsz);
}

int
oauth_begin_shared(struct oauth *o, const struct config *cfg, const char *team, const char *app,
    int64_t now, char *link, size_t linksz, char *err, size_t errsz)
{
	return begin(o, cfg, team, RECORDS_SHARED_USER, app, true, NULL, 0, NULL, 0, now, link,
	    linksz, err, errsz);
}

static bool
param_reserved(const char *key)
{
	static const char *const reserved[] = {
		"response_type", "client_id", "redirect_uri", "scope", "state",
		"code_challenge", "code_challenge_method",
	};

	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strcasecmp(key, reserved[i]) == 0)
			return true;
	/* Any PKCE variant too (code_challenge_anything). */
	return strncasecmp(key, "code_challenge", 14) == 0;
}

static bool
url_add(CURLU *u, const char *name, const char *value)
{
	char *kv = xasprintf("%s=%s", name, value);
	CURLUcode uc = curl_url_set(u, CURLUPART_QUERY, kv, CURLU_APPENDQUERY | CURLU_URLENCODE);

	sodium_memzero(kv, strlen(kv));
	free(kv);
	return uc == CURLUE_OK;
}

/* The provider's authorize URL for a LOGIN record (a secret: it holds the state). */
static struct secret *
authorize_url(const struct config *cfg, const struct config_app *app, const struct pend *pd)
{
	unsigned char hash[crypto_hash_sha256_BYTES];
	char challenge[sodium_base64_ENCODED_LEN(crypto_hash_sha256_BYTES,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
	char *redirect = xasprintf("%s/oauth/callback", public_url(cfg));
	const char *verifier = pstr(pd, T_VERIFIER);
	CURLU *u = curl_url();
	char *out = NULL;
	struct secret *s = NULL;
	bool ok;

	/* RFC 7636 S256: BASE64URL(SHA256(ASCII(code_verifier))). */
	crypto_hash_sha256(hash, (const unsigned char *)verifier, strlen(verifier));
	b64url(challenge, sizeof(challenge), hash, sizeof(hash));
	ok = u != NULL && curl_url_set(u, CURLUPART_URL, app->authorize_url.v, 0) == CURLUE_OK &&
	    url_add(u, "response_type", "code") &&
	    url_add(u, "client_id", app->client_id.v) &&
	    url_add(u, "redirect_uri", redirect) &&
	    (app->scopes.v == NULL || app->scopes.v[0] == '\0' || url_add(u, "scope", app->scopes.v)) &&
	    url_add(u, "state", pstr(pd, T_STATE)) &&
	    url_add(u, "code_challenge", challenge) &&
	    url_add(u, "code_challenge_method", "S256");
	for (size_t i = 0; ok && i < app->authorize_params.n; i++) {
		const struct config_kv *kv = &app->authorize_params.v[i];

		/* config refuses these already; a second lock on the same door. */
		if (param_reserved(kv->key))
			continue;
		ok = url_add(u, kv->key, kv->value);
	}
	if (ok && curl_url_get(u, CURLUPART_URL, &out, 0) == CURLUE_OK) {
		s = secret_from_str(out);
		sodium_memzero(out, strlen(out));
	}
	curl_free(out);
	curl_url_cleanup(u);
	free(redirect);
	sodium_memzero(hash, sizeof(hash));
	return s;
}

int
oauth_start(struct oauth *o, const struct config *cfg, const char *id, int64_t now,
    struct oauth_page *out)
{
	const struct config_app *app;
	struct secret *body = NULL;
	struct pend pd;
	char err[256], cookie[COOKIE_MAX + 1], text[256];
	int rc;

	memset(out, 0, sizeof(*out));
	if (!is_b64url(id, ID_B64))
		return fail_page(out, F_LINK_UNKNOWN, NULL, false);
	rc = records_pending_get(o->r, id, now, &body, NULL, err, sizeof(err));
	if (rc < 0) {
		log_error(COMP, "login start: store: %s", err);
		return fail_page(out, F_INTERNAL, NULL, false);
	}
	if (rc == RECORDS_PENDING_EXPIRED)
		return fail_page(out, F_LINK_EXPIRED, NULL, false);
	if (rc != RECORDS_PENDING_FOUND || pend_decode(body, &pd) != 0 || pd.kind != PEND_LOGIN) {
		secret_free(body);
		return fail_page(out, F_LINK_UNKNOWN, NULL, false);
	}
	if ((app = oauth_app(cfg, pstr(&pd, T_APP))) == NULL) {
		log_warn(COMP, "login start for an app no longer configured app=%s", pstr(&pd, T_APP));
		secret_free(body);
		return fail_page(out, F_APP_GONE, NULL, false);
	}
	out->location = authorize_url(cfg, app, &pd);
	if (out->location == NULL) {
		log_error(COMP, "login start: authorize URL could not be built app=%s", app->name);
		secret_free(body);
		return fail_page(out, F_INTERNAL, NULL, false);
	}
	snprintf(cookie, sizeof(cookie), "%s.%s", id, pstr(&pd, T_COOKIE));
	out->set_cookie = make_cookie(cfg, cookie, OAUTH_LOGIN_TTL);
	sodium_memzero(cookie, sizeof(cookie));
	snprintf(text, sizeof(text), "Taking you to %s to log in.", app_title(app, NULL));
	oauth_page_message(out, 302, "Log in", "Log in", text);
	log_debug(COMP, "login start app=%s", app->name);
	secret_free(body);
	return 0;
}

/* ------------------------------------------------------------------ */
/* callback                                                            */

/* A WAITING record was used up without a Connect: revoke its tokens. */
static void
revoke_waiting(struct oauth *o, const struct config *cfg, struct http_client *c,
    const struct pend *pd, const char *why_forgotten)
{
	const struct config_app *app = oauth_app(cfg, pstr(pd, T_APP));
	const char *refresh = pstr(pd, T_REFRESH);
	char why[OAUTH_REASON_MAX];

	if (revoke_pair(cfg, app, c, pstr(pd, T_ACCESS), strlen(pstr(pd, T_ACCESS)), refresh,
	    refresh ? strlen(refresh) : 0, o->http_ms, why, sizeof(why)) == 0)
		log_info(COMP, "unconfirmed tokens revoked (%s) team=%s user=%s app=%s",
		    why_forgotten, pstr(pd, T_TEAM), pstr(pd, T_USER), pstr(pd, T_APP));
	else
		log_warn(COMP, "unconfirmed tokens forgotten but not revoked (%s) team=%s user=%s "
		    "app=%s: %s", why_forgotten, pstr(pd, T_TEAM), pstr(pd, T_USER), pstr(pd, T_APP), why);
}

static void
log_fail(const char *step, const char *reason, const struct pend *pd)
{
	if (pd != NULL)
		log_warn(COMP, "%s failed reason=%s team=%s user=%s app=%s", step, reason,
		    pstr(pd, T_TEAM), pstr(pd, T_USER), pstr(pd, T_APP));
	else
		log_warn(COMP, "%s failed reason=%s", step, reason);
}

int
oauth_callback(struct oauth *o, const struct config *cfg, struct http_client *c,
    const char *cookie_hdr, const struct oauth_callback_params *q, int64_t now,
    struct oauth_page *out)
{
	uint64_t deadline = mono_ms() + o->budget_ms;
	const struct config_app *app;
	struct secret *body = NULL;
	struct records_tokens tok;
	struct oauth_slack_user su;
	struct pend pd;
	struct form f = { 0 };
	struct enc e = { 0 };
	char cookie[COOKIE_MAX + 2], id[ID_B64 + 1], csec[SECRET_B64 + 1];
	char wait_id[ID_B64 + 2], form_token[SECRET_B64 + 2];
	char account[RECORDS_ACCOUNT_MAX + 1], why[OAUTH_REASON_MAX], err[256];
	char slack_name[300], workspace[300], *action_url = NULL;
	const char *title;
	bool shared, timed_out = false;
	enum tok_result tr;
	unsigned left;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	memset(&tok, 0, sizeof(tok));
	if (cookie_hdr == NULL || !cookie_find(cookie_hdr, cookie, sizeof(cookie))) {
		log_fail("login callback", "cookie_missing", NULL);
		return fail_page(out, F_COOKIE_MISSING, NULL, true);
	}
	if (!cookie_split(cookie, id, csec)) {
		sodium_memzero(cookie, sizeof(cookie));
		log_fail("login callback", "cookie_malformed", NULL);
		return fail_page(out, F_MISMATCH, NULL, true);
	}
	sodium_memzero(cookie, sizeof(cookie));

	/* Consumed on first use, whatever happens next. */
	rc = records_pending_take(o->r, id, now, &body, NULL, err, sizeof(err));
	if (rc < 0) {
		log_error(COMP, "login callback: store: %s", err);
		rc = fail_page(out, F_INTERNAL, NULL, true);
		goto done;
	}
	if (rc != RECORDS_PENDING_FOUND) {
		log_fail("login callback", rc == RECORDS_PENDING_EXPIRED ? "expired" : "unknown_or_used",
		    NULL);
		rc = fail_page(out, rc == RECORDS_PENDING_EXPIRED ? F_LINK_EXPIRED : F_LINK_USED, NULL,
		    true);
		goto done;
	}
	if (pend_decode(body, &pd) != 0) {
		log_fail("login callback", "record_unreadable", NULL);
		rc = fail_page(out, F_LINK_USED, NULL, true);
		goto done;
	}
	if (pd.kind != PEND_LOGIN) {
		/* Someone named a waiting record: it is used up now, so revoke its tokens. */
		revoke_waiting(o, cfg, c, &pd, "named by a callback");
		log_fail("login callback", "wrong_record", &pd);
		rc = fail_page(out, F_MISMATCH, NULL, true);
		goto done;
	}
	app = oauth_app(cfg, pstr(&pd, T_APP));
	title = app_title(app, pstr(&pd, T_APP));
	if (!str_equal_ct(csec, pstr(&pd, T_COOKIE)) || q == NULL ||
	    !str_equal_ct(q->state, pstr(&pd, T_STATE))) {
		log_fail("login callback", "state_mismatch", &pd);
		rc = fail_page(out, F_MISMATCH, title, true);
		goto done;
	}
	if (q->error != NULL) {
		const char *code = safe_word(q->error);

		log_fail("login callback", code ? code : "provider_error", &pd);
		rc = fail_page(out, code && strcmp(code, "access_denied") == 0 ? F_DENIED :
		    F_PROVIDER_ERROR, title, true);
		goto done;
	}
	if (app == NULL) {
		log_fail("login callback", "app_gone", &pd);
		rc = fail_page(out, F_APP_GONE, title, true);
		goto done;
	}
	/* RFC 9207: an iss that is not the configured issuer is a mix-up; an absent one is tolerated. */
	if (app->issuer.v != NULL && q->iss != NULL && strcmp(q->iss, app->issuer.v) != 0) {
		log_fail("login callback", "issuer_mismatch", &pd);
		rc = fail_page(out, F_ISSUER, title, true);
		goto done;
	}
	if (q->code == NULL || q->code[0] == '\0') {
		log_fail("login callback", "no_code", &pd);
		rc = fail_page(out, F_NO_CODE, title, true);
		goto done;
	}

	/* The exchange, at the endpoint pinned when the login began. */
	left = remaining_ms(deadline);
	if (left < MIN_CALL_MS) {
		log_fail("login callback", "no_time_left", &pd);
		rc = fail_page(out, F_TIMEOUT, title, true);
		goto done;
	}
	action_url = xasprintf("%s/oauth/callback", public_url(cfg));
	form_adds(&f, "grant_type", "authorization_code");
	form_adds(&f, "code", q->code);
	form_adds(&f, "redirect_uri", action_url);
	form_adds(&f, "code_verifier", pstr(&pd, T_VERIFIER));
	free(action_url);
	action_url = NULL;
	tr = token_request(cfg, app, c, pstr(&pd, T_TOKEN_URL), &f, min_u(left, EXCHANGE_CAP_MS), now,
	    &tok, why, sizeof(why), &timed_out);
	form_free(&f);
	if (tr != TOK_OK) {
		log_warn(COMP, "login callback failed reason=exchange team=%s user=%s app=%s: %s",
		    pstr(&pd, T_TEAM), pstr(&pd, T_USER), app->name, why);
		rc = fail_page(out, timed_out ? F_TIMEOUT : F_EXCHANGE, title, true);
		goto done;
	}

	account[0] = '\0';
	left = remaining_ms(deadline);
	if (app->userinfo_url.v != NULL && left >= MIN_CALL_MS)
		userinfo_label(cfg, app, c, tok.access_token, min_u(left, USERINFO_CAP_MS), account,
		    sizeof(account));

	shared = pd.f[T_SHARED].set;
	memset(&su, 0, sizeof(su));
	left = remaining_ms(deadline);
	if (!shared && o->describe != NULL && left >= MIN_CALL_MS &&
	    o->describe(o->describe_arg, c, pstr(&pd, T_TEAM), pstr(&pd, T_USER), left, &su) != 0) {
		memset(&su, 0, sizeof(su));
		log_warn(COMP, "Slack user could not be described team=%s user=%s",
		    pstr(&pd, T_TEAM), pstr(&pd, T_USER));
	}
	su.real_name[sizeof(su.real_name) - 1] = '\0';
	su.email[sizeof(su.email) - 1] = '\0';
	su.team_name[sizeof(su.team_name) - 1] = '\0';

	/* The tokens wait, sealed, for Connect; only Connect makes them a connection. */
	rand_b64(wait_id, sizeof(wait_id), ID_BYTES);
	rand_b64(form_token, sizeof(form_token), SECRET_BYTES);
	enc_start(&e, PEND_WAITING);
	enc_str(&e, T_TEAM, pstr(&pd, T_TEAM));
	enc_str(&e, T_USER, pstr(&pd, T_USER));
	enc_str(&e, T_APP, app->name);
	enc_str(&e, T_LOGIN_ID, id);
	enc_str(&e, T_COOKIE, pstr(&pd, T_COOKIE));
	enc_str(&e, T_FORM_TOKEN, form_token);
	enc_str(&e, T_ACCOUNT, account);
	enc_i64(&e, T_CREATED, now);
	if (shared)
		enc_put(&e, T_SHARED, "\1", 1);
	enc_put(&e, T_ACCESS, secret_reveal(tok.access_token), secret_len(tok.access_token) + 1);
	if (tok.refresh_token != NULL)
		enc_put(&e, T_REFRESH, secret_reveal(tok.refresh_token),
		    secret_len(tok.refresh_token) + 1);
	enc_i64(&e, T_EXPIRES_AT, tok.expires_at);
	enc_str(&e, T_SCOPE, tok.scope);
	enc_str(&e, T_INSTANCE_URL, tok.instance_url);
	enc_str(&e, T_TOKEN_TYPE, tok.token_type);
	if (pd.f[T_RESUME].set)
		enc_put(&e, T_RESUME, pd.f[T_RESUME].p, pd.f[T_RESUME].n);
	if (pd.f[T_ANSWER_TO].set)
		enc_put(&e, T_ANSWER_TO, pd.f[T_ANSWER_TO].p, pd.f[T_ANSWER_TO].n);
	if (e.over || records_pending_put(o->r, wait_id, now + OAUTH_CONFIRM_TTL, e.buf, e.len, err,
	    sizeof(err)) != 0) {
		const char *rt = tok.refresh_token ? secret_reveal(tok.refresh_token) : NULL;

		log_error(COMP, "login callback: tokens could not be kept for the confirm step "
		    "team=%s user=%s app=%s: %s", pstr(&pd, T_TEAM), pstr(&pd, T_USER), app->name,
		    e.over ? "record too large" : err);
		if (revoke_pair(cfg, app, c, secret_reveal(tok.access_token),
		    secret_len(tok.access_token), rt, rt ? secret_len(tok.refresh_token) : 0,
		    min_u(o->http_ms, 3000), why, sizeof(why)) != 0)
			log_warn(COMP, "fresh tokens not revoked app=%s: %s", app->name, why);
		rc = fail_page(out, F_INTERNAL, title, true);
		goto done;
	}

	if (su.real_name[0] != '\0')
		copy_str(slack_name, sizeof(slack_name), su.real_name);
	else
		copy_str(slack_name, sizeof(slack_name), pstr(&pd, T_USER));
	copy_str(workspace, sizeof(workspace), su.team_name[0] ? su.team_name : pstr(&pd, T_TEAM));
	action_url = xasprintf("%s/oauth/confirm", public_url(cfg));
	{
		struct oauth_page_confirm pc = {
			.app_title = title,
			.account = account,
			.shared = shared,
			.slack_name = slack_name,
			.slack_email = su.email,
			.workspace = workspace,
			.action_url = action_url,
			.id = wait_id,
			.form_token = form_token,
			.minutes = OAUTH_CONFIRM_TTL / 60,
		};
		char cv[COOKIE_MAX + 1];

		oauth_page_confirm(out, &pc);
		/* Keep the cookie alive for the whole confirm window. */
		snprintf(cv, sizeof(cv), "%s.%s", id, pstr(&pd, T_COOKIE));
		out->set_cookie = make_cookie(cfg, cv, OAUTH_CONFIRM_TTL);
		sodium_memzero(cv, sizeof(cv));
	}
	log_info(COMP, "login waiting for confirmation team=%s user=%s app=%s",
	    pstr(&pd, T_TEAM), pstr(&pd, T_USER), app->name);
	rc = 0;
done:
	free(action_url);
	enc_free(&e);
	records_tokens_clear(&tok);
	secret_free(body);
	sodium_memzero(csec, sizeof(csec));
	sodium_memzero(form_token, sizeof(form_token));
	return rc;
}

/* ------------------------------------------------------------------ */
/* confirm, sweep                                                      */

static void
clear_cookie(const struct config *cfg, struct oauth_page *p)
{
	secret_free(p->set_cookie);
	p->set_cookie = make_cookie(cfg, "", 0);
}

int
oauth_confirm(struct oauth *o, const struct config *cfg, struct http_client *c,
    const char *cookie_hdr, const char *body_text, size_t body_len, int64_t now,
    struct oauth_page *out, struct oauth_confirmed *done)
{
	static const char *const names[] = { "id", "form_token", "action" };
	char *v[3] = { NULL, NULL, NULL };
	char cookie[COOKIE_MAX + 2], cid[ID_B64 + 1], csec[SECRET_B64 + 1], err[256], text[512];
	struct secret *body = NULL;
	struct records_tokens tok;
	struct records_conn old;
	const struct config_app *app;
	const char *title;
	struct pend pd;
	bool connect, had_cookie;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(done, 0, sizeof(*done));
	memset(&tok, 0, sizeof(tok));
	csec[0] = '\0';
	if (form_fields(body_text, body_len, names, v, 3) != 0 || v[0] == NULL || v[1] == NULL ||
	    v[2] == NULL || (strcmp(v[2], "connect") != 0 && strcmp(v[2], "cancel") != 0)) {
		log_fail("confirm", "bad_form", NULL);
		rc = fail_page(out, F_BAD_REQUEST, NULL, false);
		goto out;
	}
	connect = strcmp(v[2], "connect") == 0;
	/*
	 * No cookie at all: most likely a cross-site POST (SameSite=Lax keeps
	 * the cookie off those). Refuse without touching the record, so a
	 * forged form cannot even spoil the user's pending confirmation.
	 */
	had_cookie = cookie_hdr != NULL && cookie_find(cookie_hdr, cookie, sizeof(cookie));
	if (!had_cookie || !cookie_split(cookie, cid, csec)) {
		if (had_cookie)
			sodium_memzero(cookie, sizeof(cookie));
		log_fail("confirm", "cookie_missing", NULL);
		rc = fail_page(out, F_CONFIRM_REFUSED, NULL, true);
		goto out;
	}
	sodium_memzero(cookie, sizeof(cookie));
	if (!is_b64url(v[0], ID_B64)) {
		log_fail("confirm", "unknown", NULL);
		rc = fail_page(out, F_CONFIRM_EXPIRED, NULL, true);
		goto out;
	}
	/*
	 * Look before taking: an expired record is left for the sweep (taking
	 * it would delete it without its tokens, which then could not be
	 * revoked), and a LOGIN record is not a confirmation.
	 */
	rc = records_pending_get(o->r, v[0], now, &body, NULL, err, sizeof(err));
	if (rc == RECORDS_PENDING_FOUND && (pend_decode(body, &pd) != 0 || pd.kind != PEND_WAITING))
		rc = RECORDS_PENDING_NONE;
	secret_free(body);
	body = NULL;
	if (rc == RECORDS_PENDING_FOUND)
		rc = records_pending_take(o->r, v[0], now, &body, NULL, err, sizeof(err));
	if (rc < 0) {
		log_error(COMP, "confirm: store: %s", err);
		rc = fail_page(out, F_INTERNAL, NULL, true);
		goto out;
	}
	if (rc != RECORDS_PENDING_FOUND || pend_decode(body, &pd) != 0 || pd.kind != PEND_WAITING) {
		log_fail("confirm", "expired_or_used", NULL);
		rc = fail_page(out, F_CONFIRM_EXPIRED, NULL, true);
		goto out;
	}
	app = oauth_app(cfg, pstr(&pd, T_APP));
	title = app_title(app, pstr(&pd, T_APP));
	/* Used up from here on: every way out but Connect revokes the tokens. */
	if (strcmp(cid, pstr(&pd, T_LOGIN_ID)) != 0 || !str_equal_ct(csec, pstr(&pd, T_COOKIE)) ||
	    !str_equal_ct(v[1], pstr(&pd, T_FORM_TOKEN))) {
		revoke_waiting(o, cfg, c, &pd, "confirm refused");
		log_fail("confirm", "form_token_or_cookie_mismatch", &pd);
		rc = fail_page(out, F_CONFIRM_REFUSED, title, true);
		clear_cookie(cfg, out);
		goto out;
	}
	done->shared = pd.f[T_SHARED].set;
	copy_str(done->team, sizeof(done->team), pstr(&pd, T_TEAM));
	copy_str(done->user, sizeof(done->user), pstr(&pd, T_USER));
	copy_str(done->app, sizeof(done->app), pstr(&pd, T_APP));
	copy_str(done->account, sizeof(done->account), pstr(&pd, T_ACCOUNT));
	if (!connect) {
		revoke_waiting(o, cfg, c, &pd, "cancelled");
		metrics_oauth_login_inc(METRICS_OAUTH_CANCELLED);
		oauth_page_message(out, 200, "Cancelled", "Cancelled \xe2\x80\x94 nothing was stored",
		    "The login was cancelled and the new tokens were discarded. You can close this page.");
		clear_cookie(cfg, out);
		done->action = OAUTH_CONFIRM_CANCELLED;
		log_info(COMP, "login cancelled team=%s user=%s app=%s", done->team, done->user, done->app);
		rc = 0;
		goto out;
	}

	tok.access_token = secret_from_str(pstr(&pd, T_ACCESS));
	tok.refresh_token = pstr(&pd, T_REFRESH) ? secret_from_str(pstr(&pd, T_REFRESH)) : NULL;
	tok.expires_at = pi64(&pd, T_EXPIRES_AT);
	tok.scope = pstr(&pd, T_SCOPE) ? xstrdup(pstr(&pd, T_SCOPE)) : NULL;
	tok.instance_url = pstr(&pd, T_INSTANCE_URL) ? xstrdup(pstr(&pd, T_INSTANCE_URL)) : NULL;
	tok.token_type = pstr(&pd, T_TOKEN_TYPE) ? xstrdup(pstr(&pd, T_TOKEN_TYPE)) : NULL;
	memset(&old, 0, sizeof(old));
	if (records_conn_get(o->r, done->team, done->user, done->app, &old, NULL, err, sizeof(err)) != 1)
		old.account[0] = '\0';
	if (records_conn_put(o->r, done->team, done->user, done->app, done->account, &tok, now, 0,
	    err, sizeof(err)) != 1) {
		log_error(COMP, "confirm: connection not stored team=%s user=%s app=%s: %s",
		    done->team, done->user, done->app, err);
		revoke_waiting(o, cfg, c, &pd, "could not be stored");
		memset(done, 0, sizeof(*done));
		rc = fail_page(out, F_INTERNAL, title, true);
		clear_cookie(cfg, out);
		goto out;
	}
	if (old.account[0] != '\0' && strcmp(old.account, done->account) != 0)
		audit(o, RECORDS_AUDIT_CONNECTED, done->team, done->user, done->app, now,
		    "%saccount %s (was %s)", done->shared ? "shared, " : "", done->account, old.account);
	else
		audit(o, RECORDS_AUDIT_CONNECTED, done->team, done->user, done->app, now,
		    "%saccount %s", done->shared ? "shared, " : "", done->account[0] ? done->account : "-");
	metrics_oauth_login_inc(METRICS_OAUTH_CONNECTED);
	done->action = OAUTH_CONFIRM_CONNECTED;
	done->resume = pbytes(&pd, T_RESUME);
	done->answer_to = pbytes(&pd, T_ANSWER_TO);
	if (done->account[0] != '\0')
		snprintf(text, sizeof(text), "workbot is now connected to %s as %s%s.", title,
		    done->account, done->shared ? " (shared connection)" : "");
	else
		snprintf(text, sizeof(text), "workbot is now connected to %s%s.", title,
		    done->shared ? " (shared connection)" : "");
	oauth_page_message(out, 200, "Connected", "Connected \xe2\x80\x94 you can return to Slack", text);
	clear_cookie(cfg, out);
	log_info(COMP, "connection stored team=%s user=%s app=%s", done->team, done->user, done->app);
	rc = 0;
out:
	for (int i = 0; i < 3; i++)
		free_wiped(v[i]);
	records_tokens_clear(&tok);
	secret_free(body);
	sodium_memzero(csec, sizeof(csec));
	return rc;
}

struct sweep_arg {
	struct oauth         *o;
	const struct config  *cfg;
	struct http_client   *c;
	size_t                revoked;
};

static void
sweep_one(const char *id, int64_t expires_at, const struct secret *body, void *arg)
{
	struct sweep_arg *s = arg;
	struct pend pd;

	(void)id;
	(void)expires_at;
	if (body == NULL || pend_decode(body, &pd) != 0 || pd.kind != PEND_WAITING)
		return;
	revoke_waiting(s->o, s->cfg, s->c, &pd, "not confirmed in time");
	metrics_oauth_login_inc(METRICS_OAUTH_CANCELLED);
	s->revoked++;
}

int
oauth_sweep(struct oauth *o, const struct config *cfg, struct http_client *c, int64_t now,
    size_t *revoked, char *err, size_t errsz)
{
	struct sweep_arg s = { .o = o, .cfg = cfg, .c = c, .revoked = 0 };
	size_t n = 0;

	if (records_pending_sweep(o->r, now, 0, sweep_one, &s, &n, err, errsz) != 0)
		return -1;
	if (revoked != NULL)
		*revoked = s.revoked;
	if (n > 0)
		log_debug(COMP, "pending logins swept count=%zu revoked=%zu", n, s.revoked);
	return 0;
}

/* ------------------------------------------------------------------ */
/* access, refresh                                                     */

static bool
needs_refresh(const struct records_tokens *t, int64_t now)
{
	return t->expires_at != 0 && t->expires_at - now <= OAUTH_REFRESH_MARGIN;
}

static void
fill_access(const struct config_app *app, const struct records_conn *hdr,
    const struct records_tokens *t, struct oauth_access *out)
{
	char norm[RECORDS_URL_MAX + 1];

	out->token = secret_dup(t->access_token);
	/* Checked again at use: instance_hosts may have changed on reload. */
	if (t->instance_url != NULL && instance_url_ok(app, t->instance_url, norm, sizeof(norm)))
		copy_str(out->api_url, sizeof(out->api_url), norm);
	else
		copy_str(out->api_url, sizeof(out->api_url), app->api_url.v);
	copy_str(out->account, sizeof(out->account), hdr->account);
}

static int
mark_expired(struct oauth *o, const char *team, const char *user, const char *app, int64_t now,
    const char *why)
{
	char err[256];

	if (records_conn_set_state(o->r, team, user, app, RECORDS_EXPIRED, now, err, sizeof(err)) < 0)
		log_error(COMP, "connection not marked expired team=%s user=%s app=%s: %s",
		    team, user, app, err);
	audit(o, RECORDS_AUDIT_EXPIRED, team, user, app, now, "%s", why);
	log_info(COMP, "connection expired team=%s user=%s app=%s: %s", team, user, app, why);
	return OAUTH_NEEDS_LOGIN;
}

/*
 * The locked part: re-read, decide, refresh, write back. `used` non-NULL:
 * the 401 path (refresh unless the stored token already differs).
 */
static int
refresh_locked(struct oauth *o, const struct config *cfg, struct http_client *c,
    const struct config_app *app, const char *team, const char *user, int64_t now,
    const struct secret *used, struct oauth_access *out, char *err, size_t errsz)
{
	struct records_conn hdr;
	struct records_tokens tok;
	struct form f = { 0 };
	char why[OAUTH_REASON_MAX], e2[256];
	enum tok_result tr;
	int rc;

	memset(&tok, 0, sizeof(tok));
	rc = records_conn_get(o->r, team, user, app->name, &hdr, &tok, err, errsz);
	if (rc <= 0)
		return rc < 0 ? -1 : OAUTH_NEEDS_LOGIN;
	if (hdr.state != RECORDS_ACTIVE) {
		rc = OAUTH_NEEDS_LOGIN;
		goto done;
	}
	/* Someone else refreshed while we waited for the lock (or since the caller's token). */
	if ((used != NULL && !secret_equal(used, tok.access_token)) ||
	    (used == NULL && !needs_refresh(&tok, now))) {
		fill_access(app, &hdr, &tok, out);
		rc = OAUTH_OK;
		goto done;
	}
	if (tok.refresh_token == NULL) {
		/* Nothing to refresh with: fine while the token lasts, a new login after. */
		if (used == NULL && tok.expires_at > now) {
			fill_access(app, &hdr, &tok, out);
			rc = OAUTH_OK;
		} else {
			rc = mark_expired(o, team, user, app->name, now, "expired (no refresh token)");
		}
		goto done;
	}
	form_adds(&f, "grant_type", "refresh_token");
	form_add(&f, "refresh_token", secret_reveal(tok.refresh_token), secret_len(tok.refresh_token));
	tr = token_request(cfg, app, c, app->token_url.v, &f, o->http_ms, now, &tok, why, sizeof(why),
	    NULL);
	form_free(&f);
	if (tr == TOK_INVALID_GRANT) {
		metrics_token_refresh_inc(METRICS_REFRESH_INVALID_GRANT);
		rc = mark_expired(o, team, user, app->name, now, "expired by provider (invalid_grant)");
		goto done;
	}
	if (tr != TOK_OK) {
		metrics_token_refresh_inc(METRICS_REFRESH_ERROR);
		log_warn(COMP, "token refresh failed team=%s user=%s app=%s: %s", team, user, app->name,
		    why);
		/* Still valid for a while (inside the margin): use it rather than fail. */
		if (used == NULL && tok.expires_at > now) {
			fill_access(app, &hdr, &tok, out);
			rc = OAUTH_OK;
		} else {
			util_seterr(err, errsz, "token refresh for %s failed: %s", app->name, why);
			rc = -1;
		}
		goto done;
	}
	/* Persist before use: a rotated refresh token lost here is a lost connection. */
	rc = records_conn_put(o->r, team, user, app->name, NULL, &tok, now, RECORDS_PUT_MUST_EXIST,
	    e2, sizeof(e2));
	if (rc == 0) {
		/* Disconnected during the refresh: do not bring it back. */
		metrics_token_refresh_inc(METRICS_REFRESH_OTHER);
		rc = OAUTH_NEEDS_LOGIN;
		goto done;
	}
	if (rc < 0) {
		metrics_token_refresh_inc(METRICS_REFRESH_ERROR);
		log_error(COMP, "refreshed tokens not stored team=%s user=%s app=%s: %s", team, user,
		    app->name, e2);
		util_seterr(err, errsz, "refreshed tokens for %s could not be stored", app->name);
		rc = -1;
		goto done;
	}
	metrics_token_refresh_inc(METRICS_REFRESH_OK);
	audit(o, RECORDS_AUDIT_REFRESHED, team, user, app->name, now, "%s",
	    used ? "after a 401" : "before expiry");
	log_debug(COMP, "token refreshed team=%s user=%s app=%s", team, user, app->name);
	fill_access(app, &hdr, &tok, out);
	rc = OAUTH_OK;
done:
	records_tokens_clear(&tok);
	return rc;
}

static int
static_access(const struct config_app *app, struct oauth_access *out)
{
	if (app->auth.v == CONFIG_AUTH_TOKEN && app->token.v != NULL)
		out->token = secret_dup(app->token.v);
	copy_str(out->api_url, sizeof(out->api_url), app->api_url.v);
	return OAUTH_OK;
}

static int
access_conn(struct oauth *o, const struct config *cfg, struct http_client *c, const char *team,
    const char *user, const char *app_name, int64_t now, const struct secret *used,
    struct oauth_access *out, char *err, size_t errsz)
{
	const struct config_app *app = app_name ? config_app_find(cfg, app_name) : NULL;
	struct records_conn hdr;
	struct records_tokens tok;
	int rc;

	memset(out, 0, sizeof(*out));
	if (app == NULL) {
		util_seterr(err, errsz, "oauth: no app %s in the config", app_name ? app_name : "(null)");
		return -1;
	}
	if (app->auth.v != CONFIG_AUTH_OAUTH2)
		return static_access(app, out);
	if (!name_ok(team) || !name_ok(user)) {
		util_seterr(err, errsz, "oauth: team or user name is not valid");
		return -1;
	}
	if (used == NULL) {
		/* The common case takes no lock: a token that is not about to expire. */
		memset(&tok, 0, sizeof(tok));
		rc = records_conn_get(o->r, team, user, app->name, &hdr, &tok, err, errsz);
		if (rc <= 0)
			return rc < 0 ? -1 : OAUTH_NEEDS_LOGIN;
		if (hdr.state != RECORDS_ACTIVE) {
			records_tokens_clear(&tok);
			return OAUTH_NEEDS_LOGIN;
		}
		if (!needs_refresh(&tok, now)) {
			fill_access(app, &hdr, &tok, out);
			records_tokens_clear(&tok);
			(void)records_touch(o->r, team, user, app->name, now);
			return OAUTH_OK;
		}
		records_tokens_clear(&tok);
	}
	records_conn_lock(o->r, team, user, app->name);
	rc = refresh_locked(o, cfg, c, app, team, user, now, used, out, err, errsz);
	records_conn_unlock(o->r, team, user, app->name);
	if (rc == OAUTH_OK)
		(void)records_touch(o->r, team, user, app->name, now);
	else
		oauth_access_clear(out);
	return rc;
}

int
oauth_access(struct oauth *o, const struct config *cfg, struct http_client *c, const char *team,
    const char *user, const char *app, int64_t now, struct oauth_access *out, char *err,
    size_t errsz)
{
	return access_conn(o, cfg, c, team, user, app, now, NULL, out, err, errsz);
}

int
oauth_refresh_after_401(struct oauth *o, const struct config *cfg, struct http_client *c,
    const char *team, const char *user, const char *app, const struct secret *used, int64_t now,
    struct oauth_access *out, char *err, size_t errsz)
{
	if (used == NULL) {
		memset(out, 0, sizeof(*out));
		util_seterr(err, errsz, "oauth: the token that got the 401 is needed");
		return -1;
	}
	return access_conn(o, cfg, c, team, user, app, now, used, out, err, errsz);
}

int
oauth_shared_access(struct oauth *o, const struct config *cfg, struct http_client *c,
    const char *team, const char *app, int64_t now, struct oauth_access *out, char *err,
    size_t errsz)
{
	return access_conn(o, cfg, c, team, RECORDS_SHARED_USER, app, now, NULL, out, err, errsz);
}

/* ------------------------------------------------------------------ */
/* disconnect                                                          */

int
oauth_disconnect(struct oauth *o, const struct config *cfg, struct http_client *c,
    const char *team, const char *user, const char *app_name, enum records_audit_action action,
    int64_t now, struct oauth_disconnect_result *res, char *err, size_t errsz)
{
	const struct config_app *app;
	struct records_tokens tok;
	struct records_conn hdr;
	int rc, got;

	memset(res, 0, sizeof(*res));
	if (action != RECORDS_AUDIT_DISCONNECTED && action != RECORDS_AUDIT_REVOKED) {
		util_seterr(err, errsz, "oauth: disconnect audits as disconnected or revoked only");
		return -1;
	}
	if (!name_ok(team) || !name_ok(user) || !name_ok(app_name)) {
		util_seterr(err, errsz, "oauth: team, user or app name is not valid");
		return -1;
	}
	app = config_app_find(cfg, app_name);
	memset(&tok, 0, sizeof(tok));
	/* Under the refresh lock: a refresh in flight cannot write a rotated token after us. */
	records_conn_lock(o->r, team, user, app_name);
	got = records_conn_get(o->r, team, user, app_name, &hdr, &tok, err, errsz);
	if (got == 0) {
		records_conn_unlock(o->r, team, user, app_name);
		return 0;
	}
	if (got < 0) {
		/* A record that does not open is still deleted: it is useless to everyone. */
		log_warn(COMP, "disconnect: record unreadable team=%s user=%s app=%s: %s", team, user,
		    app_name, err);
		copy_str(res->reason, sizeof(res->reason),
		    "the stored record could not be read, so it was not revoked at the provider");
	} else if (app == NULL || app->auth.v != CONFIG_AUTH_OAUTH2) {
		copy_str(res->reason, sizeof(res->reason), "the app is no longer configured as oauth2");
	} else {
		const char *rt = tok.refresh_token ? secret_reveal(tok.refresh_token) : NULL;

		res->revoked = revoke_pair(cfg, app, c, secret_reveal(tok.access_token),
		    secret_len(tok.access_token), rt, rt ? secret_len(tok.refresh_token) : 0,
		    o->http_ms, res->reason, sizeof(res->reason)) == 0;
	}
	records_tokens_clear(&tok);
	rc = records_conn_delete(o->r, team, user, app_name, err, errsz);
	records_conn_unlock(o->r, team, user, app_name);
	if (rc < 0) {
		log_error(COMP, "disconnect: not deleted team=%s user=%s app=%s: %s", team, user,
		    app_name, err);
		return -1;
	}
	res->deleted = rc == 1;
	if (res->deleted) {
		audit(o, action, team, user, app_name, now, "%s",
		    res->revoked ? "revoked at the provider" : res->reason);
		log_info(COMP, "connection %s team=%s user=%s app=%s revoked_at_provider=%s",
		    action == RECORDS_AUDIT_REVOKED ? "revoked" : "disconnected", team, user, app_name,
		    res->revoked ? "yes" : "no");
	}
	return res->deleted ? 1 : 0;
}
