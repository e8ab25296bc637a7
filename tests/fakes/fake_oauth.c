/*
 * fake_oauth: a fake OAuth2 provider plus a "Salesforce-like" resource API,
 * for workbot's personal-connection tests (issue 11, item 6).
 *
 * One process, one thread, one TCP port on 127.0.0.1 (never another
 * interface; --port 0 picks a free one, printed as "PORT n" on stdout):
 *
 *   GET  /authorize       approves as the account the test named (no login UI)
 *   POST /token           authorization_code (+ PKCE S256) and refresh_token
 *   POST /revoke          RFC 7009
 *   GET  /userinfo        OpenID-style profile of the token's account
 *   *    /sf/...  /api/...  resource API: bearer check, records the account
 *   /services/oauth2/{authorize,token,revoke,userinfo}  aliases (Salesforce paths)
 *   /_control/...         test control API (JSON), see control_routes[]
 *
 * Why a small poll() HTTP/1.1 server and not libwebsockets like fake_slack:
 * this fake needs no WebSocket, and an OAuth fake must see the request
 * byte-exact — the raw query string split on '&' *before* percent-decoding
 * (redirect_uri carries its own encoded '?'/'&'), the raw Authorization
 * header, a body parser that refuses repeated parameters (RFC 6749 §3.2) —
 * and must be able to hold one answer for N ms ("hang") while serving other
 * connections. In a single poll() loop that is a per-connection deadline; the
 * code stays short and has no lws version quirks to work around.
 *
 * Rules it keeps: one thread touches all state; SIGTERM/SIGINT arrive on a
 * signalfd and end the loop cleanly (everything freed: ASan-clean); the
 * process also ends by itself after --max-runtime seconds (default 3600, 0 =
 * never) and when its parent dies (PR_SET_PDEATHSIG). Every buffer, table,
 * ring and loop is bounded (see "bounds"). Tokens and codes live in memory
 * (they are fake) but the control API and the log show only a 12-hex-digit
 * SHA-256 prefix of a token and the first 6 characters of a code.
 *
 * Test code only: never linked into workbot.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "fs_util.h"

/* ---- bounds ------------------------------------------------------------ */

#define MAX_CONN        128
#define HEAD_MAX        (16u << 10)     /* request line + headers */
#define BODY_MAX        (1u << 20)      /* request body */
#define PATH_MAX_LEN    2048
#define AUTH_MAX        4096
#define IDLE_MS         30000           /* keep-alive idle, body, write stall */
#define HEAD_MS         10000           /* a started head must complete */
#define HANG_MAX_MS     120000
#define MAX_APPS        16
#define MAX_ACCOUNTS    64
#define LOGIN_Q         16
#define MAX_CODES       256
#define MAX_GRANTS      1024            /* power-of-two not needed: id % n */
#define MAX_TOKENS      4096
#define FAIL_RULES      32
#define AUTHZ_RING      256
#define TOKREQ_RING     512
#define REVOKE_RING     256
#define CALL_RING       1024
#define CALL_BODY_MAX   (64u << 10)     /* one recorded resource body */
#define RULE_BODY_MAX   (64u << 10)
#define COUNTERS        96
#define LIST_MAX        10000
#define ACCEPT_PER_LOOP 16

/* ---- state ------------------------------------------------------------- */

enum auth_method { AUTH_BASIC, AUTH_BODY };
enum ep { EP_AUTHORIZE, EP_TOKEN, EP_REVOKE, EP_USERINFO, EP_RESOURCE, EP_N };
static const char *const ep_names[EP_N] = { "authorize", "token", "revoke",
					    "userinfo", "resource" };

struct login {
	char account[128];
	char error[48];          /* "" = approve */
	char description[128];
};

struct app {
	int used;
	char client_id[128];
	char client_secret[128];
	enum auth_method auth;
	char redirect_uris[1024];  /* space separated; "" = any loopback */
	char scopes[256];          /* space separated; "" = anything */
	int rotate_refresh;        /* Box: every refresh returns a new one */
	int issue_refresh;         /* 0: no refresh token at all */
	int refresh_echo;          /* non-rotating: send it back on refresh */
	long expires_in;           /* advertised; -1 = omitted (Salesforce) */
	long lifetime;             /* real seconds; 0 = expires_in or 7200 */
	int code_ttl;              /* seconds */
	int salesforce;            /* id/issued_at/signature in answers */
	char issuer[256];          /* iss on the redirect when set */
	char instance_url[256];
	char default_account[128];
	char token_prefix[32];
	struct login q[LOGIN_Q];
	unsigned qhead, qlen;
};

struct account {
	int used;
	char account[128];
	char sub[64], name[128], username[128], email[128];
	int omit_email, omit_username, omit_name;
};

struct code {
	int live, used;
	char val[64];
	int app;
	char redirect_uri[1024];
	char challenge[128];
	char scope[256];
	char account[128];
	uint64_t t_ns;
};

struct grant {
	uint32_t id;               /* 0 = empty; slot = id % MAX_GRANTS */
	int app;
	int revoked;
	char account[128];
	char scope[256];
};

enum tok_kind { TK_ACCESS = 1, TK_REFRESH = 2 };

struct token {
	char val[96];              /* "" = empty slot */
	enum tok_kind kind;
	uint32_t grant;
	int revoked, rotated, expired_by_control;
	uint64_t exp_ns;           /* 0 = does not expire */
};

struct rule {
	int used;
	enum ep ep;
	char grant_type[32];       /* token only; "" = any */
	int remaining;
	int status;                /* 0 = default (400 with error, else 500) */
	int hang_ms;
	char error[48];
	char *body;
	char ctype[64];
};

struct authz_rec {
	uint64_t seq;
	char *json;                /* the record, as JSON text */
};

struct call_rec {
	uint64_t seq;
	uint64_t t_ms;
	char account[128];         /* "" = token refused */
	char client_id[128];
	char method[16];
	char path[PATH_MAX_LEN];
	char *body;
	size_t body_len;
	int body_truncated;
	int status;
	char ctype[64];
	char token_hash[16];
};

struct counter {
	char name[48];
	uint64_t n;
};

enum cstate { C_HEAD, C_BODY, C_HANG, C_WRITE };

struct conn {
	int fd;
	enum cstate state;
	struct fs_buf in;
	size_t head_len, clen;
	int close_after, kick, replay, expect;
	uint64_t deadline_ns;
	/* the parsed request */
	char method[16];
	char path[PATH_MAX_LEN];
	char *query;               /* points into a copy; NULL if none */
	char target[PATH_MAX_LEN];
	char auth[AUTH_MAX];
	char ctype[128];
	const char *body;
	/* a hang's deferred answer */
	int pend_status;
	char pend_error[48];
	char *pend_body;
	char pend_ctype[64];
	/* the answer */
	char *out;
	size_t out_len, out_off;
	int resp_status;
};

static struct fake {
	int port;
	int verbose;
	int listen_fd, sig_fd;
	uint64_t t_start_ns, stop_at_ns;
	int stop;
	struct conn *conns[MAX_CONN];
	struct app apps[MAX_APPS];
	struct account accounts[MAX_ACCOUNTS];
	struct code codes[MAX_CODES];
	unsigned code_pos;
	struct grant grants[MAX_GRANTS];
	uint32_t grant_seq;
	struct token tokens[MAX_TOKENS];
	unsigned token_pos;
	struct rule rules[FAIL_RULES];
	struct authz_rec authz[AUTHZ_RING], tokreq[TOKREQ_RING], revokes[REVOKE_RING];
	uint64_t authz_seq, tokreq_seq, revoke_seq;
	struct call_rec *calls;
	uint64_t call_seq;
	struct counter counters[COUNTERS];
	uint64_t id_seq;
} F;

/* ---- small helpers ------------------------------------------------------ */

static void vlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
vlog(const char *fmt, ...)
{
	va_list ap;

	if (!F.verbose)
		return;
	fputs("fake_oauth: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* bounded copy, always NUL-terminated (src may be NULL) */
static void
copystr(char *dst, size_t dstlen, const char *src)
{
	size_t n = src ? strnlen(src, dstlen - 1) : 0;

	if (n)
		memmove(dst, src, n);
	dst[n] = '\0';
}

static uint64_t
ms_since_start(void)
{
	return (fs_now_ns() - F.t_start_ns) / 1000000u;
}

static void
count(const char *name)
{
	int i;

	for (i = 0; i < COUNTERS && F.counters[i].name[0]; i++)
		if (!strcmp(F.counters[i].name, name)) {
			F.counters[i].n++;
			return;
		}
	if (i < COUNTERS) {
		copystr(F.counters[i].name, sizeof(F.counters[i].name), name);
		F.counters[i].n = 1;
	}
}

static void
countf(const char *a, const char *b)
{
	char n[128];

	snprintf(n, sizeof(n), "%s.%s", a, b);
	count(n);
}

/* 12 hex digits of SHA-256(token): what the control API shows of a token */
static void
token_hash(const char *tok, char out[16])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char hex[crypto_hash_sha256_BYTES * 2 + 1];

	crypto_hash_sha256(h, (const unsigned char *)tok, strlen(tok));
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	snprintf(out, 16, "%.12s", hex);
}

/* base64url (no padding) of n random bytes */
static void
rand_b64(char *out, size_t outlen, size_t n)
{
	unsigned char raw[48];

	if (n > sizeof(raw))
		n = sizeof(raw);
	fs_random(raw, n);
	sodium_bin2base64(out, outlen, raw, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static int
streq_ct(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	return la == lb && sodium_memcmp(a, b, la) == 0;
}

static int
truthy(const char *v)
{
	return v && (!strcmp(v, "1") || !strcasecmp(v, "true") ||
		     !strcasecmp(v, "yes") || !strcasecmp(v, "on"));
}

/* Word in a space/comma separated list? */
static int
in_list(const char *list, const char *word, size_t wlen)
{
	const char *p = list;

	while (*p) {
		size_t n;

		while (*p == ' ' || *p == ',')
			p++;
		n = strcspn(p, " ,");
		if (n && n == wlen && !strncmp(p, word, n))
			return 1;
		p += n;
	}
	return 0;
}

/* Split "a&b=c" on '&' first, then decode each half. Repeated names set
 * *dup (RFC 6749 §3.1/§3.2: parameters must not be included more than once). */
static cJSON *
parse_pairs(const char *s, size_t len, int *dup)
{
	cJSON *o = cJSON_CreateObject();
	char *copy, *p, *save = NULL, *tok;
	int fields = 0;

	*dup = 0;
	if (!o)
		return NULL;
	copy = malloc(len + 1);
	if (!copy) {
		cJSON_Delete(o);
		return NULL;
	}
	memcpy(copy, s, len);
	copy[len] = '\0';
	for (p = copy; (tok = strtok_r(p, "&", &save)); p = NULL) {
		char *eq = strchr(tok, '=');
		char *val = eq ? eq + 1 : tok + strlen(tok);

		if (++fields > 200)
			break;
		if (eq)
			*eq = '\0';
		fs_urldecode(tok);
		fs_urldecode(val);
		if (!*tok)
			continue;
		if (cJSON_GetObjectItemCaseSensitive(o, tok)) {
			*dup = 1;
			continue;
		}
		cJSON_AddStringToObject(o, tok, val);
	}
	free(copy);
	return o;
}

static const char *
pstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *
pdef(const cJSON *o, const char *k, const char *def)
{
	const char *v = pstr(o, k);

	return v ? v : def;
}

static long
plong(const cJSON *o, const char *k, long def)
{
	const char *v = pstr(o, k);
	char *end;
	long n;

	if (!v || !*v)
		return def;
	errno = 0;
	n = strtol(v, &end, 10);
	return errno || *end ? def : n;
}

/* application/x-www-form-urlencoded value escaping (unreserved kept) */
static void
url_escape(struct fs_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			fs_buf_add(b, s, 1);
		} else {
			char e[3] = { '%', hex[ch >> 4], hex[ch & 15] };

			fs_buf_add(b, e, 3);
		}
	}
}

/* ---- records ------------------------------------------------------------ */

static void
ring_put(struct authz_rec *ring, unsigned cap, uint64_t *seq, cJSON *o)
{
	struct authz_rec *r = &ring[*seq % cap];

	cJSON_AddNumberToObject(o, "seq", (double)*seq);
	cJSON_AddNumberToObject(o, "t_ms", (double)ms_since_start());
	free(r->json);
	r->json = cJSON_PrintUnformatted(o);
	r->seq = *seq;
	(*seq)++;
	cJSON_Delete(o);
}

static void
ring_clear(struct authz_rec *ring, unsigned cap, uint64_t *seq)
{
	unsigned i;

	for (i = 0; i < cap; i++) {
		free(ring[i].json);
		ring[i].json = NULL;
	}
	*seq = 0;
}

static void
calls_clear(void)
{
	unsigned i;

	for (i = 0; i < CALL_RING; i++) {
		free(F.calls[i].body);
		memset(&F.calls[i], 0, sizeof(F.calls[i]));
	}
	F.call_seq = 0;
}

/* ---- apps, accounts, codes, grants, tokens ------------------------------ */

static struct app *
app_find(const char *client_id)
{
	int i;

	if (!client_id || !*client_id)
		return NULL;
	for (i = 0; i < MAX_APPS; i++)
		if (F.apps[i].used && !strcmp(F.apps[i].client_id, client_id))
			return &F.apps[i];
	return NULL;
}

static int
app_index(const struct app *a)
{
	return (int)(a - F.apps);
}

static const struct account *
account_find(const char *name)
{
	int i;

	for (i = 0; i < MAX_ACCOUNTS; i++)
		if (F.accounts[i].used && !strcmp(F.accounts[i].account, name))
			return &F.accounts[i];
	return NULL;
}

/* The profile userinfo shows: configured, or derived from the account name
 * ("jane@acme.com" -> sub opaque-<hash>, preferred_username jane, name Jane Doe). */
static void
profile_of(const char *name, struct account *out)
{
	const struct account *a = account_find(name);
	unsigned char h[crypto_hash_sha256_BYTES];
	char hex[crypto_hash_sha256_BYTES * 2 + 1];
	size_t local;

	memset(out, 0, sizeof(*out));
	copystr(out->account, sizeof(out->account), name);
	crypto_hash_sha256(h, (const unsigned char *)name, strlen(name));
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	snprintf(out->sub, sizeof(out->sub), "opaque-%.16s", hex);
	local = strcspn(name, "@");
	snprintf(out->username, sizeof(out->username), "%.*s", (int)local, name);
	if (strchr(name, '@'))
		copystr(out->email, sizeof(out->email), name);
	snprintf(out->name, sizeof(out->name), "%c%.*s Doe",
		 toupper((unsigned char)out->username[0]),
		 local > 1 ? (int)local - 1 : 0, local > 1 ? name + 1 : "");
	if (!a)
		return;
	if (a->sub[0])
		copystr(out->sub, sizeof(out->sub), a->sub);
	if (a->name[0])
		copystr(out->name, sizeof(out->name), a->name);
	if (a->username[0])
		copystr(out->username, sizeof(out->username), a->username);
	if (a->email[0])
		copystr(out->email, sizeof(out->email), a->email);
	out->omit_email = a->omit_email;
	out->omit_username = a->omit_username;
	out->omit_name = a->omit_name;
}

static struct grant *
grant_get(uint32_t id)
{
	struct grant *g;

	if (!id)
		return NULL;
	g = &F.grants[id % MAX_GRANTS];
	return g->id == id ? g : NULL;
}

static struct grant *
grant_new(int app, const char *account, const char *scope)
{
	struct grant *g;
	uint32_t id = ++F.grant_seq;

	if (!id)
		id = ++F.grant_seq;
	g = &F.grants[id % MAX_GRANTS];
	memset(g, 0, sizeof(*g));
	g->id = id;
	g->app = app;
	copystr(g->account, sizeof(g->account), account);
	copystr(g->scope, sizeof(g->scope), scope);
	return g;
}

static struct token *
token_find(const char *val)
{
	unsigned i;

	if (!val || !*val)
		return NULL;
	for (i = 0; i < MAX_TOKENS; i++)
		if (F.tokens[i].val[0] && streq_ct(F.tokens[i].val, val))
			return &F.tokens[i];
	return NULL;
}

/* Declared here, defined below: a slot may be reused when it is dead. */
static const char *token_dead(const struct token *t, struct grant **gout);

/* A new token in an empty slot, else a dead one (never `keep`); when every
 * slot holds a live token the next one in line is forgotten (bounded table). */
static struct token *
token_new(const struct app *a, uint32_t grant, enum tok_kind kind, long lifetime_s,
	  const struct token *keep)
{
	struct token *t = NULL;
	char rnd[48];
	unsigned i;

	/* empty slots first: a dead (rotated, revoked) token stays known as
	 * long as possible, so its reuse is told apart from an unknown token */
	for (i = 0; i < 2 * MAX_TOKENS && !t; i++) {
		struct token *x = &F.tokens[(F.token_pos + i) % MAX_TOKENS];

		if (x != keep && (!x->val[0] || (i >= MAX_TOKENS && token_dead(x, NULL))))
			t = x;
	}
	if (!t) {
		t = &F.tokens[F.token_pos % MAX_TOKENS];
		if (t == keep)
			t = &F.tokens[(F.token_pos + 1) % MAX_TOKENS];
	}
	F.token_pos = (unsigned)(t - F.tokens + 1) % MAX_TOKENS;
	memset(t, 0, sizeof(*t));
	rand_b64(rnd, sizeof(rnd), 24);
	snprintf(t->val, sizeof(t->val), "%s-%s-%s", a->token_prefix,
		 kind == TK_ACCESS ? "at" : "rt", rnd);
	t->kind = kind;
	t->grant = grant;
	t->exp_ns = lifetime_s > 0 ? fs_now_ns() + (uint64_t)lifetime_s * 1000000000u : 0;
	return t;
}

/* Why a token is not usable, or NULL if it is. */
static const char *
token_dead(const struct token *t, struct grant **gout)
{
	struct grant *g = grant_get(t->grant);

	if (gout)
		*gout = g;
	if (!g)
		return "grant_forgotten";
	if (g->revoked)
		return "grant_revoked";
	if (t->revoked)
		return "revoked";
	if (t->rotated)
		return "rotated";
	if (t->expired_by_control || (t->exp_ns && fs_now_ns() >= t->exp_ns))
		return "expired";
	return NULL;
}

static long
app_lifetime(const struct app *a)
{
	if (a->lifetime > 0)
		return a->lifetime;
	return a->expires_in > 0 ? a->expires_in : 7200;
}

/* ---- connections: answering ---------------------------------------------- */

static const char *
reason(int st)
{
	switch (st) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 302: return "Found";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Status";
	}
}

static void conn_try_write(struct conn *c);

/* extra: "Name: value\r\n" lines or NULL */
static void
reply_raw(struct conn *c, int status, const char *ctype, const char *body,
	  size_t blen, const char *extra)
{
	struct fs_buf b;

	fs_buf_init(&b, (size_t)BODY_MAX + 8192);
	fs_buf_addf(&b, "HTTP/1.1 %d %s\r\n", status, reason(status));
	if (blen || ctype)
		fs_buf_addf(&b, "Content-Type: %s\r\n",
			    ctype ? ctype : "application/json");
	fs_buf_addf(&b, "Content-Length: %zu\r\nCache-Control: no-store\r\n"
		    "Pragma: no-cache\r\n%s%s\r\n", blen, extra ? extra : "",
		    c->close_after ? "Connection: close\r\n" : "");
	if (blen)
		fs_buf_add(&b, body, blen);
	if (b.overflow) {
		fs_buf_free(&b);
		c->close_after = 1;
		fs_buf_init(&b, 256);
		fs_buf_addf(&b, "HTTP/1.1 500 Internal Server Error\r\n"
			    "Content-Length: 0\r\nConnection: close\r\n\r\n");
		status = 500;
	}
	free(c->out);
	c->out_len = b.len;
	c->out = fs_buf_steal(&b);
	c->out_off = 0;
	c->resp_status = status;
	c->state = C_WRITE;
	c->deadline_ns = fs_now_ns() + (uint64_t)IDLE_MS * 1000000u;
	vlog("%s %s -> %d", c->method, c->path, status);
	conn_try_write(c);
}

static void
reply_json(struct conn *c, int status, cJSON *o, const char *extra)
{
	char *t = cJSON_PrintUnformatted(o);

	cJSON_Delete(o);
	if (!t) {
		reply_raw(c, 500, NULL, NULL, 0, NULL);
		return;
	}
	reply_raw(c, status, "application/json", t, strlen(t), extra);
	cJSON_free(t);
}

static void
reply_oauth_error(struct conn *c, int status, const char *error,
		  const char *description, const char *extra)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "error", error);
	if (description)
		cJSON_AddStringToObject(o, "error_description", description);
	reply_json(c, status, o, extra);
}

static void
reply_ok(struct conn *c, cJSON *o)
{
	if (!o)
		o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", 1);
	reply_json(c, 200, o, NULL);
}

static void
reply_ctl_error(struct conn *c, int status, const char *error)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddBoolToObject(o, "ok", 0);
	cJSON_AddStringToObject(o, "error", error);
	reply_json(c, status, o, NULL);
}

static const char sf_invalid_session[] =
	"[{\"errorCode\":\"INVALID_SESSION_ID\",\"message\":\"Session expired or invalid\"}]";

/* ---- failure injection --------------------------------------------------- */

static void
rule_clear(struct rule *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* The answer of an injected failure (or a hang's deferred answer). */
static void
reply_injected(struct conn *c, enum ep ep, int status, const char *error,
	       const char *body, const char *ctype)
{
	if (!status)
		status = *error ? 400 : 500;
	if (body && *body) {
		reply_raw(c, status, *ctype ? ctype : "application/json", body,
			  strlen(body), NULL);
	} else if (*error) {
		reply_oauth_error(c, status, error, "injected by the test",
				  status == 401 && ep == EP_TOKEN ?
				  "WWW-Authenticate: Basic realm=\"fake_oauth\"\r\n" : NULL);
	} else if (ep == EP_RESOURCE && status == 401) {
		reply_raw(c, 401, "application/json", sf_invalid_session,
			  strlen(sf_invalid_session),
			  "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n");
	} else {
		reply_oauth_error(c, status, "server_error", "injected by the test", NULL);
	}
}

/* 1 when a rule answered or parked the request (the caller returns). */
static int
injected(struct conn *c, enum ep ep, const char *grant_type)
{
	int i;
	struct rule *r = NULL;

	if (c->replay) {
		/* second pass after a hang */
		if (!c->pend_status && !c->pend_error[0] && !c->pend_body)
			return 0;
		reply_injected(c, ep, c->pend_status, c->pend_error, c->pend_body,
			       c->pend_ctype);
		return 1;
	}
	for (i = 0; i < FAIL_RULES; i++) {
		struct rule *x = &F.rules[i];

		if (!x->used || x->ep != ep || x->remaining <= 0)
			continue;
		if (x->grant_type[0] && (!grant_type || strcmp(x->grant_type, grant_type)))
			continue;
		r = x;
		break;
	}
	if (!r)
		return 0;
	r->remaining--;
	countf("injected", ep_names[ep]);
	if (r->hang_ms > 0) {
		countf("hung", ep_names[ep]);
		c->pend_status = r->status;
		copystr(c->pend_error, sizeof(c->pend_error), r->error);
		free(c->pend_body);
		c->pend_body = r->body ? strdup(r->body) : NULL;
		copystr(c->pend_ctype, sizeof(c->pend_ctype), r->ctype);
		c->state = C_HANG;
		c->deadline_ns = fs_now_ns() + (uint64_t)r->hang_ms * 1000000u;
		vlog("%s %s: hanging %d ms", c->method, c->path, r->hang_ms);
	} else {
		reply_injected(c, ep, r->status, r->error, r->body, r->ctype);
	}
	if (r->remaining <= 0)
		rule_clear(r);
	return 1;
}

/* ---- client authentication ---------------------------------------------- */

/* Returns the app, or NULL after answering 401/400 itself. *used gets the
 * method the client used: basic | body | both | none. */
static struct app *
client_auth(struct conn *c, const cJSON *form, const char **used)
{
	const char *fid = pstr(form, "client_id"), *fsec = pstr(form, "client_secret");
	char id[256] = "", secret[256] = "";
	int basic = !strncasecmp(c->auth, "Basic ", 6);
	struct app *a;
	static const char www[] = "WWW-Authenticate: Basic realm=\"fake_oauth\"\r\n";

	*used = basic && fsec ? "both" : basic ? "basic" : fsec ? "body" : "none";
	if (basic) {
		unsigned char raw[600];
		size_t rlen = 0;
		const char *b64 = c->auth + 6, *colon;

		while (*b64 == ' ')
			b64++;
		if (sodium_base642bin(raw, sizeof(raw) - 1, b64, strlen(b64), " ", &rlen,
				      NULL, sodium_base64_VARIANT_ORIGINAL) ||
		    !(colon = memchr(raw, ':', rlen))) {
			reply_oauth_error(c, 401, "invalid_client", "malformed Basic credentials", www);
			return NULL;
		}
		raw[rlen] = '\0';
		snprintf(id, sizeof(id), "%.*s", (int)(colon - (const char *)raw), (const char *)raw);
		snprintf(secret, sizeof(secret), "%s", colon + 1);
		/* RFC 6749 §2.3.1: both halves are form-urlencoded first */
		fs_urldecode(id);
		fs_urldecode(secret);
	}
	if (basic && fsec) {
		reply_oauth_error(c, 401, "invalid_client",
				  "more than one client authentication method", www);
		return NULL;
	}
	if (!basic && !fsec) {
		reply_oauth_error(c, 401, "invalid_client", "no client authentication", NULL);
		return NULL;
	}
	if (basic && fid && strcmp(fid, id)) {
		reply_oauth_error(c, 401, "invalid_client", "client_id differs", www);
		return NULL;
	}
	a = app_find(basic ? id : fid);
	if (!a) {
		reply_oauth_error(c, 401, "invalid_client", "unknown client", basic ? www : NULL);
		return NULL;
	}
	if (a->auth == AUTH_BASIC && !basic) {
		reply_oauth_error(c, 401, "invalid_client",
				  "this client must use HTTP Basic", NULL);
		return NULL;
	}
	if (a->auth == AUTH_BODY && basic) {
		reply_oauth_error(c, 401, "invalid_client",
				  "this client must send its credentials in the body", www);
		return NULL;
	}
	if (!streq_ct(basic ? secret : fsec, a->client_secret)) {
		sodium_memzero(secret, sizeof(secret));
		reply_oauth_error(c, 401, "invalid_client", "bad client secret",
				  basic ? www : NULL);
		return NULL;
	}
	sodium_memzero(secret, sizeof(secret));
	return a;
}

/* ---- /authorize ------------------------------------------------------------ */

static int
loopback_uri(const char *u)
{
	static const char *const pre[] = { "http://127.0.0.1", "http://localhost",
					   "http://[::1]" };
	size_t i;

	for (i = 0; i < sizeof(pre) / sizeof(pre[0]); i++) {
		size_t n = strlen(pre[i]);

		if (!strncmp(u, pre[i], n) && (u[n] == ':' || u[n] == '/' || !u[n]))
			return 1;
	}
	return 0;
}

static int
redirect_allowed(const struct app *a, const char *u)
{
	if (strchr(u, '#'))
		return 0;
	if (!a->redirect_uris[0])
		return loopback_uri(u);
	return in_list(a->redirect_uris, u, strlen(u));
}

static int
b64url_ok(const char *s, size_t min, size_t max, int allow_dot_tilde)
{
	size_t n = strlen(s), i;

	if (n < min || n > max)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (!isalnum(ch) && ch != '-' && ch != '_' &&
		    !(allow_dot_tilde && (ch == '.' || ch == '~')))
			return 0;
	}
	return 1;
}

static void
redirect_to(struct conn *c, const char *uri, const char *const *kv)
{
	struct fs_buf b;
	char *loc;
	size_t i;

	fs_buf_init(&b, 8192);
	fs_buf_addf(&b, "Location: %s", uri);
	for (i = 0; kv[i]; i += 2) {
		if (!kv[i + 1])
			continue;
		fs_buf_addf(&b, "%c%s=", i == 0 && !strchr(uri, '?') ? '?' : '&', kv[i]);
		url_escape(&b, kv[i + 1]);
	}
	fs_buf_addf(&b, "\r\n");
	loc = b.overflow ? NULL : fs_buf_steal(&b);
	fs_buf_free(&b);
	if (!loc) {
		reply_oauth_error(c, 500, "server_error", "redirect too long", NULL);
		return;
	}
	reply_raw(c, 302, NULL, NULL, 0, loc);
	free(loc);
}

static int
scope_ok(const struct app *a, const char *scope)
{
	const char *p = scope;

	if (!a->scopes[0])
		return 1;
	while (*p) {
		size_t n;

		while (*p == ' ')
			p++;
		n = strcspn(p, " ");
		if (n && !in_list(a->scopes, p, n))
			return 0;
		p += n;
	}
	return 1;
}

static void
ep_authorize(struct conn *c)
{
	static const char *const std[] = { "response_type", "client_id", "redirect_uri",
					   "scope", "state", "code_challenge",
					   "code_challenge_method" };
	cJSON *q, *rec, *extra, *it;
	const char *client_id, *ru, *state, *rt, *cc, *ccm, *scope, *err = NULL, *desc = NULL;
	struct app *a;
	struct login login;
	int dup = 0;
	size_t i;

	if (!c->replay)
		count("authorize");
	if (strcmp(c->method, "GET")) {
		reply_oauth_error(c, 405, "invalid_request", "use GET", "Allow: GET\r\n");
		return;
	}
	if (injected(c, EP_AUTHORIZE, NULL))
		return;
	q = parse_pairs(c->query ? c->query : "", c->query ? strlen(c->query) : 0, &dup);
	if (!q) {
		reply_raw(c, 500, NULL, NULL, 0, NULL);
		return;
	}
	client_id = pdef(q, "client_id", "");
	ru = pdef(q, "redirect_uri", "");
	state = pstr(q, "state");
	rt = pdef(q, "response_type", "");
	cc = pdef(q, "code_challenge", "");
	ccm = pdef(q, "code_challenge_method", "");
	scope = pstr(q, "scope");

	rec = cJSON_CreateObject();
	extra = cJSON_CreateObject();
	cJSON_ArrayForEach(it, q) {
		int known = 0;

		for (i = 0; i < sizeof(std) / sizeof(std[0]); i++)
			known |= !strcmp(it->string, std[i]);
		if (!known)
			cJSON_AddStringToObject(extra, it->string, it->valuestring);
	}
	for (i = 0; i < sizeof(std) / sizeof(std[0]); i++) {
		const char *v = pstr(q, std[i]);

		if (v)
			cJSON_AddStringToObject(rec, std[i], v);
		else
			cJSON_AddNullToObject(rec, std[i]);
	}
	cJSON_AddItemToObject(rec, "extra", extra);

	a = app_find(client_id);
	/* RFC 6749 §4.1.2.1: a bad client or redirect_uri is never redirected to */
	if (!a || !*ru || !redirect_allowed(a, ru) || dup) {
		const char *why = dup ? "repeated parameter" : !a ? "unknown client_id" :
			!*ru ? "redirect_uri missing" : "redirect_uri not allowed";

		count(dup ? "authorize.invalid_request" : !a ? "authorize.invalid_client" :
		      "authorize.bad_redirect_uri");
		cJSON_AddStringToObject(rec, "outcome", "refused");
		cJSON_AddStringToObject(rec, "error", why);
		ring_put(F.authz, AUTHZ_RING, &F.authz_seq, rec);
		reply_oauth_error(c, 400, a || dup ? "invalid_request" : "invalid_client", why, NULL);
		cJSON_Delete(q);
		return;
	}
	if (strcmp(rt, "code")) {
		err = "unsupported_response_type"; desc = "response_type must be code";
	} else if (!state || !*state) {
		err = "invalid_request"; desc = "state is required";
	} else if (!*cc) {
		err = "invalid_request"; desc = "code_challenge is required";
	} else if (strcmp(ccm, "S256")) {
		err = "invalid_request"; desc = "code_challenge_method must be S256";
	} else if (!b64url_ok(cc, 43, 43, 0)) {
		err = "invalid_request"; desc = "code_challenge is not BASE64URL(SHA-256)";
	} else if (scope && !scope_ok(a, scope)) {
		err = "invalid_scope"; desc = "scope not allowed for this client";
	}
	memset(&login, 0, sizeof(login));
	if (!err) {
		if (a->qlen) {
			login = a->q[a->qhead];
			a->qhead = (a->qhead + 1) % LOGIN_Q;
			a->qlen--;
		} else {
			copystr(login.account, sizeof(login.account), a->default_account);
		}
		if (login.error[0]) {
			err = login.error;
			desc = login.description[0] ? login.description : "The user denied access";
		}
	}
	if (err) {
		const char *kv[] = { "error", err, "error_description", desc, "state", state,
				     "iss", a->issuer[0] ? a->issuer : NULL, NULL };

		countf("authorize", err);
		cJSON_AddStringToObject(rec, "outcome", "error");
		cJSON_AddStringToObject(rec, "error", err);
		if (login.account[0])
			cJSON_AddStringToObject(rec, "account", login.account);
		ring_put(F.authz, AUTHZ_RING, &F.authz_seq, rec);
		redirect_to(c, ru, kv);
	} else {
		struct code *cd = &F.codes[F.code_pos++ % MAX_CODES];
		char prefix[16];

		memset(cd, 0, sizeof(*cd));
		cd->live = 1;
		rand_b64(cd->val, sizeof(cd->val), 32);
		cd->app = app_index(a);
		copystr(cd->redirect_uri, sizeof(cd->redirect_uri), ru);
		copystr(cd->challenge, sizeof(cd->challenge), cc);
		copystr(cd->scope, sizeof(cd->scope), scope ? scope : a->scopes);
		copystr(cd->account, sizeof(cd->account), login.account);
		cd->t_ns = fs_now_ns();
		snprintf(prefix, sizeof(prefix), "%.6s", cd->val);
		count("authorize.code");
		cJSON_AddStringToObject(rec, "outcome", "code");
		cJSON_AddStringToObject(rec, "account", login.account);
		cJSON_AddStringToObject(rec, "code_prefix", prefix);
		ring_put(F.authz, AUTHZ_RING, &F.authz_seq, rec);
		{
			const char *kv[] = { "code", cd->val, "state", state,
					     "iss", a->issuer[0] ? a->issuer : NULL, NULL };

			redirect_to(c, ru, kv);
		}
	}
	cJSON_Delete(q);
}

/* ---- /token ----------------------------------------------------------------- */

static void
token_answer(struct conn *c, const struct app *a, const struct grant *g,
	     const struct token *at, const struct token *rt)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "access_token", at->val);
	cJSON_AddStringToObject(o, "token_type", "Bearer");
	if (a->expires_in >= 0)
		cJSON_AddNumberToObject(o, "expires_in", (double)a->expires_in);
	if (rt)
		cJSON_AddStringToObject(o, "refresh_token", rt->val);
	cJSON_AddStringToObject(o, "scope", g->scope);
	if (a->instance_url[0])
		cJSON_AddStringToObject(o, "instance_url", a->instance_url);
	if (a->salesforce) {
		char buf[64], id[320];
		struct timeval tv;

		gettimeofday(&tv, NULL);
		snprintf(buf, sizeof(buf), "%lld",
			 (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000);
		cJSON_AddStringToObject(o, "issued_at", buf);
		snprintf(id, sizeof(id), "%s/id/00DFAKE/005FAKE%06u",
			 a->instance_url[0] ? a->instance_url : "http://127.0.0.1", g->id);
		cJSON_AddStringToObject(o, "id", id);
		rand_b64(buf, sizeof(buf), 32);
		cJSON_AddStringToObject(o, "signature", buf);
	}
	reply_json(c, 200, o, NULL);
}

static void
tokreq_record(const char *grant_type, const char *client_id, const char *used,
	      const char *outcome, const char *account, const char *detail)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "grant_type", grant_type);
	cJSON_AddStringToObject(o, "client_id", client_id ? client_id : "");
	cJSON_AddStringToObject(o, "client_auth", used);
	cJSON_AddStringToObject(o, "outcome", outcome);
	if (account)
		cJSON_AddStringToObject(o, "account", account);
	if (detail)
		cJSON_AddStringToObject(o, "detail", detail);
	ring_put(F.tokreq, TOKREQ_RING, &F.tokreq_seq, o);
}

static int
pkce_ok(const char *verifier, const char *challenge)
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char b64[64];

	crypto_hash_sha256(h, (const unsigned char *)verifier, strlen(verifier));
	sodium_bin2base64(b64, sizeof(b64), h, sizeof(h),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return streq_ct(b64, challenge);
}

/* answer an OAuth error and record it */
static void
token_fail(struct conn *c, const char *gt, const struct app *a, const char *used,
	   const char *err, const char *desc, const char *account)
{
	countf("token", err);
	tokreq_record(gt, a ? a->client_id : NULL, used, err, account, desc);
	reply_oauth_error(c, 400, err, desc, NULL);
}

static void
grant_code(struct conn *c, const cJSON *f, struct app *a, const char *used)
{
	const char *code = pstr(f, "code"), *ru = pstr(f, "redirect_uri");
	const char *ver = pstr(f, "code_verifier");
	struct code *cd = NULL;
	struct grant *g;
	struct token *at, *rt = NULL;
	unsigned i;
	char prefix[16];

	if (!code || !*code) {
		token_fail(c, "authorization_code", a, used, "invalid_request", "code missing", NULL);
		return;
	}
	for (i = 0; i < MAX_CODES; i++)
		if (F.codes[i].live && streq_ct(F.codes[i].val, code)) {
			cd = &F.codes[i];
			break;
		}
	snprintf(prefix, sizeof(prefix), "%.6s", code);
	if (!cd) {
		token_fail(c, "authorization_code", a, used, "invalid_grant", "unknown code", NULL);
		return;
	}
	if (cd->app != app_index(a)) {
		token_fail(c, "authorization_code", a, used, "invalid_grant",
			   "code was issued to another client", NULL);
		return;
	}
	if (cd->used) {
		count("token.code_replay");
		token_fail(c, "authorization_code", a, used, "invalid_grant",
			   "code already used", cd->account);
		return;
	}
	/* from here on the code is spent, whatever the outcome */
	cd->used = 1;
	if (fs_now_ns() - cd->t_ns > (uint64_t)a->code_ttl * 1000000000u) {
		token_fail(c, "authorization_code", a, used, "invalid_grant", "code expired",
			   cd->account);
		return;
	}
	if (!ru || strcmp(ru, cd->redirect_uri)) {
		token_fail(c, "authorization_code", a, used, "invalid_grant",
			   "redirect_uri differs from the authorization request", cd->account);
		return;
	}
	if (!ver || !*ver) {
		token_fail(c, "authorization_code", a, used, "invalid_request",
			   "code_verifier missing", cd->account);
		return;
	}
	if (!b64url_ok(ver, 43, 128, 1) || !pkce_ok(ver, cd->challenge)) {
		count("token.pkce_mismatch");
		token_fail(c, "authorization_code", a, used, "invalid_grant",
			   "PKCE verification failed", cd->account);
		return;
	}
	g = grant_new(app_index(a), cd->account, cd->scope);
	at = token_new(a, g->id, TK_ACCESS, app_lifetime(a), NULL);
	if (a->issue_refresh)
		rt = token_new(a, g->id, TK_REFRESH, 0, at);
	count("token.ok");
	tokreq_record("authorization_code", a->client_id, used, "ok", g->account, prefix);
	token_answer(c, a, g, at, rt);
}

static void
grant_refresh(struct conn *c, const cJSON *f, struct app *a, const char *used)
{
	const char *rv = pstr(f, "refresh_token");
	struct token *old, *at, *rt = NULL;
	struct grant *g = NULL;
	const char *dead;
	char h[16];

	if (!rv || !*rv) {
		token_fail(c, "refresh_token", a, used, "invalid_request",
			   "refresh_token missing", NULL);
		return;
	}
	old = token_find(rv);
	if (!old || old->kind != TK_REFRESH) {
		token_fail(c, "refresh_token", a, used, "invalid_grant",
			   "unknown refresh token", NULL);
		return;
	}
	dead = token_dead(old, &g);
	if (g && g->app != app_index(a)) {
		token_fail(c, "refresh_token", a, used, "invalid_grant",
			   "refresh token was issued to another client", NULL);
		return;
	}
	if (dead) {
		char d[64];

		if (old->rotated)
			count("token.refresh_reuse");
		snprintf(d, sizeof(d), "refresh token %s", dead);
		token_fail(c, "refresh_token", a, used, "invalid_grant", d,
			   g ? g->account : NULL);
		return;
	}
	token_hash(rv, h);
	if (a->rotate_refresh)
		old->rotated = 1; /* dead now: its slot may be reused below */
	at = token_new(a, g->id, TK_ACCESS, app_lifetime(a), old);
	if (a->rotate_refresh)
		rt = token_new(a, g->id, TK_REFRESH, 0, at);
	else if (a->refresh_echo)
		rt = old;
	count("token.ok");
	tokreq_record("refresh_token", a->client_id, used, "ok", g->account, h);
	token_answer(c, a, g, at, rt);
}

static int
form_request(struct conn *c, cJSON **form, int *dup)
{
	*form = NULL;
	if (strcmp(c->method, "POST")) {
		reply_oauth_error(c, 405, "invalid_request", "use POST", "Allow: POST\r\n");
		return -1;
	}
	if (strncasecmp(c->ctype, "application/x-www-form-urlencoded", 33)) {
		reply_oauth_error(c, 400, "invalid_request",
				  "Content-Type must be application/x-www-form-urlencoded", NULL);
		return -1;
	}
	*form = parse_pairs(c->body ? c->body : "", c->clen, dup);
	if (!*form) {
		reply_raw(c, 500, NULL, NULL, 0, NULL);
		return -1;
	}
	return 0;
}

static void
ep_token(struct conn *c)
{
	cJSON *f = NULL;
	const char *gt, *used = "none";
	struct app *a;
	int dup = 0;

	if (!c->replay)
		count("token");
	if (form_request(c, &f, &dup))
		return;
	gt = pdef(f, "grant_type", "");
	if (!c->replay)
		countf("token", !strcmp(gt, "authorization_code") ? "authorization_code" :
		       !strcmp(gt, "refresh_token") ? "refresh_token" : "other_grant");
	if (injected(c, EP_TOKEN, gt))
		goto out;
	if (dup) {
		token_fail(c, gt, NULL, used, "invalid_request", "repeated parameter", NULL);
		goto out;
	}
	a = client_auth(c, f, &used);
	if (!a) {
		count("token.invalid_client");
		tokreq_record(gt, pstr(f, "client_id"), used, "invalid_client", NULL, NULL);
		goto out;
	}
	if (!strcmp(gt, "authorization_code"))
		grant_code(c, f, a, used);
	else if (!strcmp(gt, "refresh_token"))
		grant_refresh(c, f, a, used);
	else
		token_fail(c, "other", a, used, "unsupported_grant_type", NULL, NULL);
out:
	cJSON_Delete(f);
}

/* ---- /revoke ------------------------------------------------------------------ */

static void
ep_revoke(struct conn *c)
{
	cJSON *f = NULL, *rec;
	const char *used = "none", *tv, *hint;
	struct app *a;
	struct token *t;
	struct grant *g;
	int dup = 0;
	char h[16];

	if (!c->replay)
		count("revoke");
	if (form_request(c, &f, &dup))
		return;
	if (injected(c, EP_REVOKE, NULL))
		goto out;
	if (dup) {
		reply_oauth_error(c, 400, "invalid_request", "repeated parameter", NULL);
		goto out;
	}
	a = client_auth(c, f, &used);
	if (!a) {
		count("revoke.invalid_client");
		goto out;
	}
	tv = pstr(f, "token");
	hint = pstr(f, "token_type_hint");
	if (!tv || !*tv) {
		reply_oauth_error(c, 400, "invalid_request", "token missing", NULL);
		goto out;
	}
	t = token_find(tv);
	g = t ? grant_get(t->grant) : NULL;
	rec = cJSON_CreateObject();
	token_hash(tv, h);
	cJSON_AddStringToObject(rec, "client_id", a->client_id);
	cJSON_AddStringToObject(rec, "client_auth", used);
	if (hint)
		cJSON_AddStringToObject(rec, "token_type_hint", hint);
	else
		cJSON_AddNullToObject(rec, "token_type_hint");
	cJSON_AddStringToObject(rec, "token_hash", h);
	if (t && g && g->app != app_index(a)) {
		cJSON_AddStringToObject(rec, "token_type", t->kind == TK_ACCESS ?
					"access_token" : "refresh_token");
		cJSON_AddStringToObject(rec, "outcome", "other_client");
		ring_put(F.revokes, REVOKE_RING, &F.revoke_seq, rec);
		count("revoke.other_client");
		reply_oauth_error(c, 400, "unauthorized_client",
				  "token was issued to another client", NULL);
		goto out;
	}
	if (!t || !g) {
		/* RFC 7009 §2.2: an invalid token is not an error */
		cJSON_AddStringToObject(rec, "token_type", "unknown");
		cJSON_AddStringToObject(rec, "outcome", "unknown_token");
		count("revoke.unknown");
	} else {
		int was_live = !token_dead(t, NULL);

		cJSON_AddStringToObject(rec, "token_type", t->kind == TK_ACCESS ?
					"access_token" : "refresh_token");
		cJSON_AddStringToObject(rec, "account", g->account);
		if (t->kind == TK_REFRESH) {
			g->revoked = 1; /* ends the grant: its access tokens die too */
			count("revoke.refresh_token");
		} else {
			t->revoked = 1;
			count("revoke.access_token");
		}
		cJSON_AddBoolToObject(rec, "grant_ended", t->kind == TK_REFRESH);
		cJSON_AddStringToObject(rec, "outcome", was_live ? "revoked" : "already_dead");
	}
	ring_put(F.revokes, REVOKE_RING, &F.revoke_seq, rec);
	reply_raw(c, 200, NULL, NULL, 0, NULL);
out:
	cJSON_Delete(f);
}

/* ---- bearer check, /userinfo, resource API ------------------------------------ */

/* The token's grant when it is a live access token; NULL otherwise. */
static struct grant *
bearer(struct conn *c, char hash[16])
{
	const char *v = c->auth;
	struct token *t;
	struct grant *g = NULL;

	hash[0] = '\0';
	if (strncasecmp(v, "Bearer ", 7))
		return NULL;
	v += 7;
	while (*v == ' ')
		v++;
	token_hash(v, hash);
	t = token_find(v);
	if (!t || t->kind != TK_ACCESS || token_dead(t, &g))
		return NULL;
	return g;
}

static void
ep_userinfo(struct conn *c)
{
	struct grant *g;
	struct account p;
	cJSON *o;
	char h[16];

	if (!c->replay)
		count("userinfo");
	if (strcmp(c->method, "GET") && strcmp(c->method, "POST")) {
		reply_oauth_error(c, 405, "invalid_request", "use GET", "Allow: GET, POST\r\n");
		return;
	}
	if (injected(c, EP_USERINFO, NULL))
		return;
	g = bearer(c, h);
	if (!g) {
		count("userinfo.401");
		reply_oauth_error(c, 401, "invalid_token", "access token expired or invalid",
				  "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n");
		return;
	}
	profile_of(g->account, &p);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "sub", p.sub);
	if (!p.omit_email && p.email[0])
		cJSON_AddStringToObject(o, "email", p.email);
	if (!p.omit_username)
		cJSON_AddStringToObject(o, "preferred_username", p.username);
	if (!p.omit_name)
		cJSON_AddStringToObject(o, "name", p.name);
	reply_json(c, 200, o, NULL);
}

static void
call_record(struct conn *c, const struct grant *g, const char *hash)
{
	struct call_rec *r = &F.calls[F.call_seq % CALL_RING];
	size_t n = c->clen;

	free(r->body);
	memset(r, 0, sizeof(*r));
	r->seq = F.call_seq++;
	r->t_ms = ms_since_start();
	if (g) {
		copystr(r->account, sizeof(r->account), g->account);
		if (g->app >= 0 && g->app < MAX_APPS)
			copystr(r->client_id, sizeof(r->client_id), F.apps[g->app].client_id);
	}
	copystr(r->method, sizeof(r->method), c->method);
	copystr(r->path, sizeof(r->path), c->target);
	copystr(r->ctype, sizeof(r->ctype), c->ctype);
	copystr(r->token_hash, sizeof(r->token_hash), hash);
	r->status = c->resp_status;
	if (n > CALL_BODY_MAX) {
		n = CALL_BODY_MAX;
		r->body_truncated = 1;
	}
	if (n && c->body) {
		r->body = malloc(n + 1);
		if (r->body) {
			memcpy(r->body, c->body, n);
			r->body[n] = '\0';
			r->body_len = n;
		}
	}
}

/* Salesforce-ish record id: key prefix by sObject + 15 characters */
static void
sf_id(const char *sobject, char out[24])
{
	static const struct { const char *name, *prefix; } map[] = {
		{ "Opportunity", "006" }, { "Account", "001" }, { "Contact", "003" },
		{ "Lead", "00Q" }, { "Case", "500" }, { "Task", "00T" },
	};
	const char *pre = "a00";
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(sobject, map[i].name))
			pre = map[i].prefix;
	F.id_seq++;
	snprintf(out, 24, "%s%s%09" PRIu64, pre, "FAK", F.id_seq % 1000000000u);
}

static void
ep_resource(struct conn *c)
{
	struct grant *g;
	char h[16];
	const char *so;

	if (!c->replay)
		count("resource");
	g = bearer(c, h);
	if (!g) {
		count("resource.401");
		reply_raw(c, 401, "application/json", sf_invalid_session,
			  strlen(sf_invalid_session),
			  "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n");
		call_record(c, NULL, h);
		return;
	}
	if (injected(c, EP_RESOURCE, NULL)) {
		if (c->state != C_HANG)
			call_record(c, g, h);
		return;
	}
	so = strstr(c->path, "/sobjects/");
	if (!strncmp(c->path, "/sf/", 4) && !strcmp(c->method, "POST") && so &&
	    so[10] && !strchr(so + 10, '/')) {
		char id[24];
		cJSON *o = cJSON_CreateObject();

		sf_id(so + 10, id);
		cJSON_AddStringToObject(o, "id", id);
		cJSON_AddBoolToObject(o, "success", 1);
		cJSON_AddItemToObject(o, "errors", cJSON_CreateArray());
		reply_json(c, 201, o, NULL);
	} else {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddBoolToObject(o, "ok", 1);
		cJSON_AddStringToObject(o, "method", c->method);
		cJSON_AddStringToObject(o, "path", c->path);
		cJSON_AddStringToObject(o, "account", g->account);
		reply_json(c, 200, o, NULL);
	}
	count("resource.ok");
	call_record(c, g, h);
}

/* ---- control API ------------------------------------------------------------- */

static cJSON *
app_json(const struct app *a)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "client_id", a->client_id);
	cJSON_AddStringToObject(o, "client_auth", a->auth == AUTH_BASIC ? "basic" : "body");
	cJSON_AddStringToObject(o, "redirect_uris", a->redirect_uris);
	cJSON_AddStringToObject(o, "scopes", a->scopes);
	cJSON_AddBoolToObject(o, "rotate_refresh", a->rotate_refresh);
	cJSON_AddBoolToObject(o, "issue_refresh", a->issue_refresh);
	cJSON_AddBoolToObject(o, "refresh_echo", a->refresh_echo);
	if (a->expires_in >= 0)
		cJSON_AddNumberToObject(o, "expires_in", (double)a->expires_in);
	else
		cJSON_AddNullToObject(o, "expires_in");
	cJSON_AddNumberToObject(o, "lifetime", (double)app_lifetime(a));
	cJSON_AddNumberToObject(o, "code_ttl", a->code_ttl);
	cJSON_AddBoolToObject(o, "salesforce", a->salesforce);
	cJSON_AddStringToObject(o, "issuer", a->issuer);
	cJSON_AddStringToObject(o, "instance_url", a->instance_url);
	cJSON_AddStringToObject(o, "default_account", a->default_account);
	cJSON_AddStringToObject(o, "token_prefix", a->token_prefix);
	cJSON_AddNumberToObject(o, "queued_logins", a->qlen);
	return o;
}

static void
ctl_app(struct conn *c, const cJSON *p)
{
	const char *id = pdef(p, "client_id", ""), *v;
	struct app *a = app_find(id);
	int i, fresh = 0;

	if (!*id || strlen(id) >= sizeof(a->client_id)) {
		reply_ctl_error(c, 400, "client_id required (< 128 bytes)");
		return;
	}
	/* refuse bad values before anything changes */
	v = pstr(p, "style");
	if (v && strcmp(v, "salesforce") && strcmp(v, "box") && strcmp(v, "generic")) {
		reply_ctl_error(c, 400, "style: salesforce | box | generic");
		return;
	}
	v = pstr(p, "client_auth");
	if (v && strcmp(v, "basic") && strcmp(v, "body")) {
		reply_ctl_error(c, 400, "client_auth: basic | body");
		return;
	}
	v = pstr(p, "token_prefix");
	if (v && !b64url_ok(v, 1, sizeof(a->token_prefix) - 1, 0)) {
		reply_ctl_error(c, 400, "token_prefix: [A-Za-z0-9_-]{1,31}");
		return;
	}
	if (!a) {
		for (i = 0; i < MAX_APPS && F.apps[i].used; i++)
			;
		if (i == MAX_APPS) {
			reply_ctl_error(c, 409, "too many apps");
			return;
		}
		a = &F.apps[i];
		memset(a, 0, sizeof(*a));
		a->used = 1;
		fresh = 1;
		copystr(a->client_id, sizeof(a->client_id), id);
		copystr(a->client_secret, sizeof(a->client_secret), "secret");
		a->auth = AUTH_BASIC;
		a->issue_refresh = 1;
		a->refresh_echo = 1;
		a->expires_in = 3600;
		a->code_ttl = 60;
		copystr(a->default_account, sizeof(a->default_account), "jane@acme.com");
		copystr(a->token_prefix, sizeof(a->token_prefix), "fake");
	}
	v = pstr(p, "style");
	if (v && !strcmp(v, "salesforce")) {
		/* no expires_in, same refresh token (not echoed), instance_url */
		a->salesforce = 1;
		a->expires_in = -1;
		a->rotate_refresh = 0;
		a->refresh_echo = 0;
		snprintf(a->instance_url, sizeof(a->instance_url), "http://127.0.0.1:%d/sf", F.port);
	} else if (v && !strcmp(v, "box")) {
		a->rotate_refresh = 1;
		a->expires_in = 3600;
	}
	if ((v = pstr(p, "client_secret")))
		copystr(a->client_secret, sizeof(a->client_secret), v);
	if ((v = pstr(p, "client_auth")))
		a->auth = !strcmp(v, "body") ? AUTH_BODY : AUTH_BASIC;
	if ((v = pstr(p, "redirect_uris")))
		copystr(a->redirect_uris, sizeof(a->redirect_uris), v);
	if ((v = pstr(p, "scopes")))
		copystr(a->scopes, sizeof(a->scopes), v);
	if ((v = pstr(p, "rotate_refresh")))
		a->rotate_refresh = truthy(v);
	if ((v = pstr(p, "issue_refresh")))
		a->issue_refresh = truthy(v);
	if ((v = pstr(p, "refresh_echo")))
		a->refresh_echo = truthy(v);
	if ((v = pstr(p, "expires_in")))
		a->expires_in = (!strcmp(v, "none") || !*v) ? -1 : plong(p, "expires_in", 3600);
	if (pstr(p, "lifetime"))
		a->lifetime = plong(p, "lifetime", 0);
	if (pstr(p, "code_ttl"))
		a->code_ttl = (int)plong(p, "code_ttl", 60);
	if ((v = pstr(p, "salesforce")))
		a->salesforce = truthy(v);
	if ((v = pstr(p, "issuer")))
		copystr(a->issuer, sizeof(a->issuer), v);
	if ((v = pstr(p, "instance_url")))
		copystr(a->instance_url, sizeof(a->instance_url), v);
	if ((v = pstr(p, "default_account")) && *v)
		copystr(a->default_account, sizeof(a->default_account), v);
	if ((v = pstr(p, "token_prefix")))
		copystr(a->token_prefix, sizeof(a->token_prefix), v);
	if (a->code_ttl < 1)
		a->code_ttl = 1;
	{
		cJSON *o = cJSON_CreateObject();

		cJSON_AddBoolToObject(o, "created", fresh);
		cJSON_AddItemToObject(o, "app", app_json(a));
		reply_ok(c, o);
	}
}

static void
ctl_apps(struct conn *c, const cJSON *p)
{
	cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "apps");
	int i;

	(void)p;
	for (i = 0; i < MAX_APPS; i++)
		if (F.apps[i].used)
			cJSON_AddItemToArray(arr, app_json(&F.apps[i]));
	reply_ok(c, o);
}

static void
ctl_next_login(struct conn *c, const cJSON *p)
{
	struct app *a = app_find(pstr(p, "client_id"));
	struct login *l;
	long n = plong(p, "count", 1), k;

	if (!a) {
		reply_ctl_error(c, 404, "unknown client_id");
		return;
	}
	if (truthy(pstr(p, "clear"))) {
		a->qlen = 0;
		reply_ok(c, NULL);
		return;
	}
	for (k = 0; k < n && k < LOGIN_Q; k++) {
		if (a->qlen >= LOGIN_Q) {
			reply_ctl_error(c, 409, "login queue full (16)");
			return;
		}
		l = &a->q[(a->qhead + a->qlen) % LOGIN_Q];
		memset(l, 0, sizeof(*l));
		copystr(l->account, sizeof(l->account),
			pdef(p, "account", a->default_account));
		if (truthy(pstr(p, "deny")))
			copystr(l->error, sizeof(l->error), pdef(p, "error", "access_denied"));
		else if (pstr(p, "error"))
			copystr(l->error, sizeof(l->error), pstr(p, "error"));
		copystr(l->description, sizeof(l->description), pdef(p, "description", ""));
		a->qlen++;
	}
	{
		cJSON *o = cJSON_CreateObject();

		cJSON_AddNumberToObject(o, "queued_logins", a->qlen);
		reply_ok(c, o);
	}
}

static void
ctl_account(struct conn *c, const cJSON *p)
{
	const char *name = pdef(p, "account", ""), *v;
	struct account *a = (struct account *)account_find(name);
	int i;

	if (!*name) {
		reply_ctl_error(c, 400, "account required");
		return;
	}
	if (!a) {
		for (i = 0; i < MAX_ACCOUNTS && F.accounts[i].used; i++)
			;
		if (i == MAX_ACCOUNTS) {
			reply_ctl_error(c, 409, "too many accounts");
			return;
		}
		a = &F.accounts[i];
		memset(a, 0, sizeof(*a));
		a->used = 1;
		copystr(a->account, sizeof(a->account), name);
	}
	if ((v = pstr(p, "sub")))
		copystr(a->sub, sizeof(a->sub), v);
	if ((v = pstr(p, "name")))
		copystr(a->name, sizeof(a->name), v);
	if ((v = pstr(p, "preferred_username")))
		copystr(a->username, sizeof(a->username), v);
	if ((v = pstr(p, "email")))
		copystr(a->email, sizeof(a->email), v);
	if ((v = pstr(p, "omit"))) {
		a->omit_email = in_list(v, "email", 5);
		a->omit_username = in_list(v, "preferred_username", 18);
		a->omit_name = in_list(v, "name", 4);
	}
	{
		struct account pr;
		cJSON *o = cJSON_CreateObject();

		profile_of(name, &pr);
		cJSON_AddStringToObject(o, "sub", pr.sub);
		if (!pr.omit_email && pr.email[0])
			cJSON_AddStringToObject(o, "email", pr.email);
		if (!pr.omit_username)
			cJSON_AddStringToObject(o, "preferred_username", pr.username);
		if (!pr.omit_name)
			cJSON_AddStringToObject(o, "name", pr.name);
		reply_ok(c, o);
	}
}

static int
ep_from_name(const char *n)
{
	int i;

	for (i = 0; i < EP_N; i++)
		if (n && !strcmp(n, ep_names[i]))
			return i;
	return -1;
}

static void
ctl_fail(struct conn *c, const cJSON *p)
{
	int ep = ep_from_name(pstr(p, "endpoint")), i;
	long n = plong(p, "count", 1), hang = plong(p, "hang_ms", 0), st = plong(p, "status", 0);
	const char *body = pstr(p, "body");
	struct rule *r = NULL;

	if (ep < 0) {
		reply_ctl_error(c, 400, "endpoint: authorize | token | revoke | userinfo | resource");
		return;
	}
	if (n <= 0) {
		for (i = 0; i < FAIL_RULES; i++)
			if (F.rules[i].used && (int)F.rules[i].ep == ep)
				rule_clear(&F.rules[i]);
		reply_ok(c, NULL);
		return;
	}
	if (hang < 0 || hang > HANG_MAX_MS || (st && (st < 200 || st > 599)) ||
	    (body && strlen(body) > RULE_BODY_MAX) || n > 1000000) {
		reply_ctl_error(c, 400, "hang_ms 0..120000, status 200..599, body <= 64 KiB");
		return;
	}
	for (i = 0; i < FAIL_RULES; i++)
		if (!F.rules[i].used) {
			r = &F.rules[i];
			break;
		}
	if (!r) {
		reply_ctl_error(c, 409, "too many fail rules (32)");
		return;
	}
	memset(r, 0, sizeof(*r));
	r->used = 1;
	r->ep = (enum ep)ep;
	r->remaining = (int)n;
	r->status = (int)st;
	r->hang_ms = (int)hang;
	copystr(r->grant_type, sizeof(r->grant_type), pdef(p, "grant_type", ""));
	copystr(r->error, sizeof(r->error), pdef(p, "error", ""));
	copystr(r->ctype, sizeof(r->ctype), pdef(p, "content_type", ""));
	r->body = body && *body ? strdup(body) : NULL;
	reply_ok(c, NULL);
}

static int
grant_matches(const struct grant *g, const cJSON *p)
{
	const char *acc = pstr(p, "account"), *cid = pstr(p, "client_id");

	if (!g)
		return 0;
	if (acc && strcmp(acc, g->account))
		return 0;
	if (cid && (g->app < 0 || strcmp(cid, F.apps[g->app].client_id)))
		return 0;
	return 1;
}

/* expire: every matching live access token is expired now */
static void
ctl_expire(struct conn *c, const cJSON *p)
{
	unsigned i, n = 0;
	cJSON *o = cJSON_CreateObject();

	for (i = 0; i < MAX_TOKENS; i++) {
		struct token *t = &F.tokens[i];
		struct grant *g;

		if (!t->val[0] || t->kind != TK_ACCESS || token_dead(t, &g) ||
		    !grant_matches(g, p))
			continue;
		t->expired_by_control = 1;
		n++;
	}
	cJSON_AddNumberToObject(o, "expired", n);
	reply_ok(c, o);
}

/* kill_grants: the provider forgets the grants (user revoked the app there):
 * refresh -> invalid_grant, access -> 401 */
static void
ctl_kill_grants(struct conn *c, const cJSON *p)
{
	unsigned i, n = 0;
	cJSON *o = cJSON_CreateObject();

	for (i = 0; i < MAX_GRANTS; i++) {
		struct grant *g = &F.grants[i];

		if (!g->id || g->revoked || !grant_matches(g, p))
			continue;
		g->revoked = 1;
		n++;
	}
	cJSON_AddNumberToObject(o, "grants", n);
	reply_ok(c, o);
}

static void
ctl_stats(struct conn *c, const cJSON *p)
{
	cJSON *o = cJSON_CreateObject(), *cn = cJSON_AddObjectToObject(o, "counts");
	cJSON *live = cJSON_AddObjectToObject(o, "live");
	unsigned i, codes = 0, at = 0, rt = 0, grants = 0, rules = 0;

	(void)p;
	for (i = 0; i < COUNTERS && F.counters[i].name[0]; i++)
		cJSON_AddNumberToObject(cn, F.counters[i].name, (double)F.counters[i].n);
	for (i = 0; i < MAX_CODES; i++)
		codes += F.codes[i].live && !F.codes[i].used;
	for (i = 0; i < MAX_TOKENS; i++)
		if (F.tokens[i].val[0] && !token_dead(&F.tokens[i], NULL)) {
			at += F.tokens[i].kind == TK_ACCESS;
			rt += F.tokens[i].kind == TK_REFRESH;
		}
	for (i = 0; i < MAX_GRANTS; i++)
		grants += F.grants[i].id && !F.grants[i].revoked;
	for (i = 0; i < FAIL_RULES; i++)
		rules += F.rules[i].used;
	cJSON_AddNumberToObject(live, "codes", codes);
	cJSON_AddNumberToObject(live, "access_tokens", at);
	cJSON_AddNumberToObject(live, "refresh_tokens", rt);
	cJSON_AddNumberToObject(live, "grants", grants);
	cJSON_AddNumberToObject(o, "fail_rules", rules);
	cJSON_AddNumberToObject(o, "port", F.port);
	cJSON_AddNumberToObject(o, "uptime_ms", (double)ms_since_start());
	reply_ok(c, o);
}

/* authorizations / token_requests / revocations: ?since=SEQ&limit=N */
static void
ring_list(struct conn *c, const cJSON *p, const char *key, struct authz_rec *ring,
	  unsigned cap, uint64_t seq)
{
	long since = plong(p, "since", 0), lim = plong(p, "limit", LIST_MAX);
	cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, key);
	uint64_t s = seq > cap ? seq - cap : 0;
	long n = 0;

	if (since > 0 && (uint64_t)since > s)
		s = (uint64_t)since;
	for (; s < seq && n < lim; s++, n++) {
		struct authz_rec *r = &ring[s % cap];
		cJSON *it = r->json ? cJSON_Parse(r->json) : NULL;

		if (it)
			cJSON_AddItemToArray(arr, it);
	}
	cJSON_AddNumberToObject(o, "next", (double)seq);
	reply_ok(c, o);
}

static void
ctl_authorizations(struct conn *c, const cJSON *p)
{
	ring_list(c, p, "authorizations", F.authz, AUTHZ_RING, F.authz_seq);
}

static void
ctl_token_requests(struct conn *c, const cJSON *p)
{
	ring_list(c, p, "token_requests", F.tokreq, TOKREQ_RING, F.tokreq_seq);
}

static void
ctl_revocations(struct conn *c, const cJSON *p)
{
	ring_list(c, p, "revocations", F.revokes, REVOKE_RING, F.revoke_seq);
}

/* calls: ?since=SEQ&limit=N&account=A */
static void
ctl_calls(struct conn *c, const cJSON *p)
{
	long since = plong(p, "since", 0), lim = plong(p, "limit", LIST_MAX);
	const char *acc = pstr(p, "account");
	cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "calls");
	uint64_t s = F.call_seq > CALL_RING ? F.call_seq - CALL_RING : 0;
	long n = 0;

	if (since > 0 && (uint64_t)since > s)
		s = (uint64_t)since;
	for (; s < F.call_seq && n < lim; s++) {
		const struct call_rec *r = &F.calls[s % CALL_RING];
		cJSON *it;

		if (acc && strcmp(acc, r->account))
			continue;
		it = cJSON_CreateObject();
		cJSON_AddNumberToObject(it, "seq", (double)r->seq);
		cJSON_AddNumberToObject(it, "t_ms", (double)r->t_ms);
		if (r->account[0])
			cJSON_AddStringToObject(it, "account", r->account);
		else
			cJSON_AddNullToObject(it, "account");
		cJSON_AddStringToObject(it, "client_id", r->client_id);
		cJSON_AddStringToObject(it, "method", r->method);
		cJSON_AddStringToObject(it, "path", r->path);
		cJSON_AddStringToObject(it, "content_type", r->ctype);
		cJSON_AddStringToObject(it, "body", r->body ? r->body : "");
		cJSON_AddBoolToObject(it, "body_truncated", r->body_truncated);
		cJSON_AddNumberToObject(it, "status", r->status);
		cJSON_AddStringToObject(it, "token_hash", r->token_hash);
		cJSON_AddItemToArray(arr, it);
		n++;
	}
	cJSON_AddNumberToObject(o, "next", (double)F.call_seq);
	reply_ok(c, o);
}

/* tokens: what the fake holds, hashes only */
static void
ctl_tokens(struct conn *c, const cJSON *p)
{
	cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "tokens");
	uint64_t now = fs_now_ns();
	unsigned i;

	for (i = 0; i < MAX_TOKENS; i++) {
		const struct token *t = &F.tokens[i];
		struct grant *g;
		const char *dead;
		cJSON *it;
		char h[16];

		if (!t->val[0])
			continue;
		dead = token_dead(t, &g);
		if (!grant_matches(g, p))
			continue;
		it = cJSON_CreateObject();
		token_hash(t->val, h);
		cJSON_AddStringToObject(it, "hash", h);
		cJSON_AddStringToObject(it, "type", t->kind == TK_ACCESS ?
					"access_token" : "refresh_token");
		cJSON_AddStringToObject(it, "account", g ? g->account : "");
		cJSON_AddStringToObject(it, "client_id", g && g->app >= 0 ?
					F.apps[g->app].client_id : "");
		cJSON_AddNumberToObject(it, "grant", t->grant);
		cJSON_AddStringToObject(it, "state", dead ? dead : "live");
		if (t->exp_ns)
			cJSON_AddNumberToObject(it, "expires_in_ms", t->exp_ns > now ?
						(double)((t->exp_ns - now) / 1000000u) : 0.0);
		cJSON_AddItemToArray(arr, it);
	}
	reply_ok(c, o);
}

static void
reset_all(void)
{
	unsigned i;

	memset(F.apps, 0, sizeof(F.apps));
	memset(F.accounts, 0, sizeof(F.accounts));
	sodium_memzero(F.codes, sizeof(F.codes));
	sodium_memzero(F.tokens, sizeof(F.tokens));
	memset(F.grants, 0, sizeof(F.grants));
	for (i = 0; i < FAIL_RULES; i++)
		rule_clear(&F.rules[i]);
	ring_clear(F.authz, AUTHZ_RING, &F.authz_seq);
	ring_clear(F.tokreq, TOKREQ_RING, &F.tokreq_seq);
	ring_clear(F.revokes, REVOKE_RING, &F.revoke_seq);
	calls_clear();
	memset(F.counters, 0, sizeof(F.counters));
	F.code_pos = F.token_pos = 0;
}

static void
ctl_reset(struct conn *c, const cJSON *p)
{
	(void)p;
	reset_all();
	reply_ok(c, NULL);
}

static void
ctl_health(struct conn *c, const cJSON *p)
{
	cJSON *o = cJSON_CreateObject();

	(void)p;
	cJSON_AddNumberToObject(o, "port", F.port);
	reply_ok(c, o);
}

static void
ctl_shutdown(struct conn *c, const cJSON *p)
{
	(void)p;
	c->close_after = 1;
	reply_ok(c, NULL);
	F.stop_at_ns = fs_now_ns() + 200u * 1000000u; /* let the answer leave */
}

static const struct ctl_route {
	const char *name;
	int post_only;
	void (*fn)(struct conn *, const cJSON *);
} ctl_routes[] = {
	{ "app", 1, ctl_app },
	{ "apps", 0, ctl_apps },
	{ "next_login", 1, ctl_next_login },
	{ "account", 1, ctl_account },
	{ "fail", 1, ctl_fail },
	{ "expire", 1, ctl_expire },
	{ "kill_grants", 1, ctl_kill_grants },
	{ "stats", 0, ctl_stats },
	{ "authorizations", 0, ctl_authorizations },
	{ "token_requests", 0, ctl_token_requests },
	{ "revocations", 0, ctl_revocations },
	{ "calls", 0, ctl_calls },
	{ "tokens", 0, ctl_tokens },
	{ "reset", 1, ctl_reset },
	{ "health", 0, ctl_health },
	{ "shutdown", 1, ctl_shutdown },
};

/* Params: the query string, then a JSON object or form body (body wins).
 * JSON numbers and booleans become strings ("3", "true"). */
static void
ep_control(struct conn *c, const char *name)
{
	cJSON *p;
	int dup = 0;
	size_t i;

	count("control");
	p = parse_pairs(c->query ? c->query : "", c->query ? strlen(c->query) : 0, &dup);
	if (!p) {
		reply_raw(c, 500, NULL, NULL, 0, NULL);
		return;
	}
	if (c->clen && c->body) {
		cJSON *b = NULL, *it;

		if (c->body[0] == '{')
			b = cJSON_ParseWithLength(c->body, c->clen);
		else
			b = parse_pairs(c->body, c->clen, &dup);
		if (!cJSON_IsObject(b)) {
			cJSON_Delete(b);
			cJSON_Delete(p);
			reply_ctl_error(c, 400, "body must be a JSON object or a form");
			return;
		}
		cJSON_ArrayForEach(it, b) {
			char num[64];
			const char *s = NULL;

			if (cJSON_IsString(it))
				s = it->valuestring;
			else if (cJSON_IsBool(it))
				s = cJSON_IsTrue(it) ? "true" : "false";
			else if (cJSON_IsNumber(it)) {
				snprintf(num, sizeof(num), "%.0f", it->valuedouble);
				s = num;
			} else if (cJSON_IsNull(it))
				s = "none";
			if (!s || !it->string)
				continue;
			cJSON_DeleteItemFromObjectCaseSensitive(p, it->string);
			cJSON_AddStringToObject(p, it->string, s);
		}
		cJSON_Delete(b);
	}
	for (i = 0; i < sizeof(ctl_routes) / sizeof(ctl_routes[0]); i++) {
		if (strcmp(name, ctl_routes[i].name))
			continue;
		if (ctl_routes[i].post_only && strcmp(c->method, "POST"))
			reply_ctl_error(c, 405, "use POST");
		else
			ctl_routes[i].fn(c, p);
		cJSON_Delete(p);
		return;
	}
	cJSON_Delete(p);
	reply_ctl_error(c, 404, "unknown control route");
}

/* ---- routing ---------------------------------------------------------------- */

static void
route(struct conn *c)
{
	const char *p = c->path;

	if (!strncmp(p, "/_control/", 10))
		ep_control(c, p + 10);
	else if (!strcmp(p, "/authorize") || !strcmp(p, "/services/oauth2/authorize"))
		ep_authorize(c);
	else if (!strcmp(p, "/token") || !strcmp(p, "/services/oauth2/token"))
		ep_token(c);
	else if (!strcmp(p, "/revoke") || !strcmp(p, "/services/oauth2/revoke"))
		ep_revoke(c);
	else if (!strcmp(p, "/userinfo") || !strcmp(p, "/services/oauth2/userinfo"))
		ep_userinfo(c);
	else if (!strcmp(p, "/sf") || !strncmp(p, "/sf/", 4) || !strncmp(p, "/api/", 5))
		ep_resource(c);
	else {
		count("not_found");
		reply_oauth_error(c, 404, "not_found", NULL, NULL);
	}
}

/* ---- connections: reading and writing ----------------------------------------- */

static void
conn_close(struct conn *c)
{
	unsigned i;

	for (i = 0; i < MAX_CONN; i++)
		if (F.conns[i] == c)
			F.conns[i] = NULL;
	close(c->fd);
	fs_buf_free(&c->in);
	free(c->out);
	free(c->pend_body);
	sodium_memzero(c->auth, sizeof(c->auth));
	free(c);
}

static void
conn_reset_request(struct conn *c)
{
	size_t used = c->head_len + c->clen;

	if (used > c->in.len)
		used = c->in.len;
	memmove(c->in.p, c->in.p + used, c->in.len - used);
	c->in.len -= used;
	if (c->in.p)
		c->in.p[c->in.len] = '\0';
	c->head_len = c->clen = 0;
	c->query = NULL;
	c->body = NULL;
	c->auth[0] = c->ctype[0] = '\0';
	c->replay = 0;
	c->expect = 0;
	c->pend_status = 0;
	c->pend_error[0] = '\0';
	free(c->pend_body);
	c->pend_body = NULL;
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	c->state = C_HEAD;
	c->deadline_ns = fs_now_ns() + (uint64_t)IDLE_MS * 1000000u;
	c->kick = c->in.len > 0;
}

static void
conn_try_write(struct conn *c)
{
	int i;

	for (i = 0; i < 64 && c->out_off < c->out_len; i++) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			c->close_after = 2; /* broken: close without more */
			c->out_off = c->out_len;
			return;
		}
		c->out_off += (size_t)n;
		c->deadline_ns = fs_now_ns() + (uint64_t)IDLE_MS * 1000000u;
	}
}

/* Simple answer before a request is fully parsed: always closes. */
static void
early_error(struct conn *c, int status)
{
	c->close_after = 1;
	copystr(c->method, sizeof(c->method), "-");
	copystr(c->path, sizeof(c->path), "-");
	reply_oauth_error(c, status, "invalid_request", reason(status), NULL);
}

static int
hdr_is(const char *line, size_t len, const char *name, const char **val)
{
	size_t n = strlen(name);

	if (len <= n || strncasecmp(line, name, n) || line[n] != ':')
		return 0;
	*val = line + n + 1;
	while (**val == ' ' || **val == '\t')
		(*val)++;
	return 1;
}

/* Parse the head in c->in[0..head_len). 0 ok, or an HTTP status to answer. */
static int
parse_head(struct conn *c)
{
	char *p = c->in.p, *end = c->in.p + c->head_len - 2; /* at the blank line */
	char *eol = strstr(p, "\r\n"), *sp1, *sp2, *q;
	int have_len = 0, http10;

	if (!eol || eol > end)
		return 400;
	*eol = '\0';
	sp1 = strchr(p, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || (size_t)(sp1 - p) >= sizeof(c->method) ||
	    strncmp(sp2 + 1, "HTTP/1.", 7))
		return 400;
	http10 = !strcmp(sp2 + 1, "HTTP/1.0");
	*sp1 = *sp2 = '\0';
	copystr(c->method, sizeof(c->method), p);
	if (sp1[1] != '/')
		return 400;
	if ((size_t)(sp2 - sp1 - 1) >= sizeof(c->target))
		return 414;
	copystr(c->target, sizeof(c->target), sp1 + 1);
	copystr(c->path, sizeof(c->path), sp1 + 1);
	q = strchr(c->path, '?');
	if (q) {
		*q = '\0';
		c->query = q + 1; /* points into c->path's tail, which is ours */
	}
	c->close_after = http10;
	for (p = eol + 2; p < end;) {
		const char *v;
		size_t len;

		eol = strstr(p, "\r\n");
		if (!eol || eol > end)
			break;
		*eol = '\0';
		len = (size_t)(eol - p);
		if (*p == ' ' || *p == '\t')
			return 400; /* obsolete line folding */
		if (hdr_is(p, len, "Content-Length", &v)) {
			char *e;
			unsigned long n;

			errno = 0;
			n = strtoul(v, &e, 10);
			if (have_len || errno || e == v || *e || *v == '-')
				return 400;
			have_len = 1;
			if (n > BODY_MAX)
				return 413;
			c->clen = n;
		} else if (hdr_is(p, len, "Transfer-Encoding", &v)) {
			return 501;
		} else if (hdr_is(p, len, "Authorization", &v)) {
			if (strlen(v) >= sizeof(c->auth))
				return 431;
			copystr(c->auth, sizeof(c->auth), v);
		} else if (hdr_is(p, len, "Content-Type", &v)) {
			copystr(c->ctype, sizeof(c->ctype), v);
		} else if (hdr_is(p, len, "Connection", &v)) {
			if (!strcasecmp(v, "close"))
				c->close_after = 1;
			else if (http10 && !strcasecmp(v, "keep-alive"))
				c->close_after = 0;
		} else if (hdr_is(p, len, "Expect", &v)) {
			c->expect = !strcasecmp(v, "100-continue");
		}
		p = eol + 2;
	}
	return 0;
}

/* Try to parse and run one request from what is buffered. */
static void
conn_process(struct conn *c)
{
	char *hend;
	int st;

	c->kick = 0;
	if (c->state == C_HEAD) {
		if (!c->in.len)
			return;
		hend = c->in.p ? strstr(c->in.p, "\r\n\r\n") : NULL;
		if (!hend) {
			if (c->in.len > HEAD_MAX)
				early_error(c, 431);
			return;
		}
		c->head_len = (size_t)(hend - c->in.p) + 4;
		if (c->head_len > HEAD_MAX) {
			early_error(c, 431);
			return;
		}
		/* parse_head writes NULs into the head: keep the body intact */
		st = parse_head(c);
		if (st) {
			early_error(c, st);
			return;
		}
		c->state = C_BODY;
		c->deadline_ns = fs_now_ns() + (uint64_t)IDLE_MS * 1000000u;
		if (c->expect && c->in.len < c->head_len + c->clen) {
			static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

			/* 25 bytes on an idle socket: not worth queueing */
			if (send(c->fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL) < 0) {
				c->close_after = 2;
				return;
			}
		}
	}
	if (c->state == C_BODY) {
		if (c->in.len < c->head_len + c->clen)
			return;
		c->body = c->in.p + c->head_len;
		/* body text is NUL-terminated for parsers: fs_buf keeps a spare byte,
		 * and a pipelined next request is not touched (we only read clen) */
		route(c);
	}
}

static void
conn_read(struct conn *c)
{
	char buf[16384];
	int i;

	for (i = 0; i < 8; i++) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				c->close_after = 2;
			break;
		}
		if (n == 0) {
			c->close_after = 2; /* peer closed: drop whatever we hold */
			break;
		}
		if (fs_buf_add(&c->in, buf, (size_t)n)) {
			early_error(c, 413);
			return;
		}
		if (c->state == C_HEAD && c->in.len == (size_t)n)
			c->deadline_ns = fs_now_ns() + (uint64_t)HEAD_MS * 1000000u;
	}
	if (c->state == C_HEAD || c->state == C_BODY)
		conn_process(c);
}

static void
accept_some(void)
{
	int k;

	for (k = 0; k < ACCEPT_PER_LOOP; k++) {
		int fd = accept4(F.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;
		unsigned i;

		if (fd < 0)
			return;
		for (i = 0; i < MAX_CONN && F.conns[i]; i++)
			;
		c = i < MAX_CONN ? calloc(1, sizeof(*c)) : NULL;
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->state = C_HEAD;
		fs_buf_init(&c->in, (size_t)HEAD_MAX + BODY_MAX);
		c->deadline_ns = fs_now_ns() + (uint64_t)IDLE_MS * 1000000u;
		F.conns[i] = c;
	}
}

/* After a write finished, or a hang ended. */
static void
conn_step(struct conn *c)
{
	if (c->state == C_WRITE && c->out_off >= c->out_len) {
		if (c->close_after)
			conn_close(c);
		else
			conn_reset_request(c);
	}
}

static int
listen_on(int port)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 128) ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl)) {
		close(fd);
		return -1;
	}
	F.port = ntohs(sa.sin_port);
	return fd;
}

static void
usage(void)
{
	fprintf(stderr,
		"usage: fake_oauth [--port N] [--max-runtime S] [--verbose]\n"
		"Listens on 127.0.0.1:N (0 = any free port) and prints \"PORT N\".\n"
		"Ends on SIGTERM/SIGINT, POST /_control/shutdown, after S seconds\n"
		"(default 3600, 0 = never) or when its parent dies.\n");
}

int
main(int argc, char **argv)
{
	struct pollfd pfd[MAX_CONN + 2];
	struct conn *pc[MAX_CONN + 2];
	sigset_t set;
	long max_runtime = 3600;
	int i, port = 0;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
			F.verbose = 1;
			continue;
		}
		if (!v) {
			usage();
			return 2;
		}
		if (!strcmp(a, "--port"))
			port = atoi(v);
		else if (!strcmp(a, "--max-runtime"))
			max_runtime = atol(v);
		else {
			usage();
			return 2;
		}
		i++;
	}
	if (port < 0 || port > 65535 || max_runtime < 0) {
		usage();
		return 2;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "fake_oauth: sodium_init failed\n");
		return 1;
	}
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	F.sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	F.calls = calloc(CALL_RING, sizeof(*F.calls));
	F.listen_fd = listen_on(port);
	if (F.sig_fd < 0 || !F.calls || F.listen_fd < 0) {
		fprintf(stderr, "fake_oauth: cannot listen on 127.0.0.1:%d\n", port);
		free(F.calls);
		return 1;
	}
	F.t_start_ns = fs_now_ns();
	if (max_runtime)
		F.stop_at_ns = F.t_start_ns + (uint64_t)max_runtime * 1000000000u;
	printf("PORT %d\n", F.port);
	fflush(stdout);

	while (!F.stop) {
		uint64_t now = fs_now_ns(), next = now + 1000000000u;
		int n = 0, kick = 0, r, timeout;
		unsigned k;

		if (F.stop_at_ns && now >= F.stop_at_ns)
			break;
		if (F.stop_at_ns && F.stop_at_ns < next)
			next = F.stop_at_ns;
		pfd[n].fd = F.sig_fd;
		pfd[n].events = POLLIN;
		pc[n++] = NULL;
		pfd[n].fd = F.listen_fd;
		pfd[n].events = POLLIN;
		pc[n++] = NULL;
		for (k = 0; k < MAX_CONN; k++) {
			struct conn *c = F.conns[k];

			if (!c)
				continue;
			if (c->close_after == 2 ||
			    (c->state == C_WRITE && c->out_off >= c->out_len)) {
				/* broken, or an answer that completed inside a callback */
				if (c->close_after == 2) {
					conn_close(c);
					continue;
				}
				conn_step(c);
				if (!F.conns[k])
					continue;
			}
			kick |= c->kick;
			if (c->deadline_ns < next)
				next = c->deadline_ns;
			pfd[n].fd = c->fd;
			pfd[n].events = c->state == C_WRITE ? POLLOUT : POLLIN;
			pc[n++] = c;
		}
		timeout = kick ? 0 : next > now ? (int)((next - now) / 1000000u) + 1 : 0;
		r = poll(pfd, (nfds_t)n, timeout);
		if (r < 0 && errno != EINTR)
			break;
		if (r > 0 && (pfd[0].revents & POLLIN)) {
			struct signalfd_siginfo si;

			if (read(F.sig_fd, &si, sizeof(si)) > 0)
				F.stop = 1;
		}
		if (r > 0 && (pfd[1].revents & POLLIN))
			accept_some();
		now = fs_now_ns();
		for (i = 2; i < n; i++) {
			struct conn *c = pc[i];
			short re = r > 0 ? pfd[i].revents : 0;

			if (c->state == C_WRITE && (re & (POLLOUT | POLLERR | POLLHUP))) {
				conn_try_write(c);
			} else if (c->state != C_WRITE && (re & (POLLIN | POLLERR | POLLHUP))) {
				if (c->state == C_HANG) {
					/* only to notice a close; keep a pipelined request */
					char tmp[4096];
					ssize_t m = recv(c->fd, tmp, sizeof(tmp), 0);

					if (m == 0 || (m < 0 && errno != EAGAIN && errno != EINTR))
						c->close_after = 2;
					else if (m > 0 && fs_buf_add(&c->in, tmp, (size_t)m))
						c->close_after = 2;
				} else {
					conn_read(c);
				}
			} else if (c->kick && (c->state == C_HEAD || c->state == C_BODY)) {
				conn_process(c);
			}
			if (c->close_after == 2)
				continue;
			if (c->state == C_HANG && now >= c->deadline_ns) {
				c->replay = 1;
				c->state = C_BODY;
				route(c);
			} else if (c->state != C_HANG && now >= c->deadline_ns) {
				vlog("connection timed out");
				c->close_after = 2;
			}
		}
	}

	for (i = 0; i < MAX_CONN; i++)
		if (F.conns[i])
			conn_close(F.conns[i]);
	close(F.listen_fd);
	close(F.sig_fd);
	reset_all();
	free(F.calls);
	return 0;
}
