/*
 * config: reading workbot.conf into a checked, immutable struct config.
 *
 * How it works. The file is read whole (at most 1 MiB) and split into lines
 * by a small reader in this file; each `key = value` line is looked up in
 * its section's descriptor table (key, type, default, bounds, validator,
 * flags) and parsed by the type's function into a typed field that keeps its
 * line number. When the file is done, each section is checked as a whole
 * (missing required keys, defaults, templates against params) and then the
 * config as a whole (recipe -> app, button -> recipe, duplicate commands).
 * Every problem is collected, sorted by line and reported through the
 * caller's callback; any problem means no config.
 *
 * Why not inih. DESIGN §2 asks for inih, but Debian 12's build (55-1) cannot
 * do this safely, as a test program showed: a line longer than
 * ini_max_line is cut and its tail parsed as a new `key = value` line (so
 * the tail of a long secret could become a "key" quoted in an error
 * message); the handler is not called for a section header, so an empty
 * section, a repeated adjacent section and the header's line number (which
 * a "missing key" error must cite) are invisible; section and key names are
 * cut silently at 50 bytes; `key: value` is accepted as well; only the
 * first malformed line is reported; and its knobs are process-wide
 * globals, unsafe for a reload running beside other threads. The reader
 * here (parse_buffer, section_header, key_value) is a page of code and
 * implements DESIGN §5's rules exactly.
 *
 * What it must never do: echo a value in an error message (values may be
 * secrets; only names are quoted: keys, sections, env variables, paths,
 * params), leave secret bytes in memory it frees (the file buffer and the
 * line buffer are wiped), or keep global state (a reload may run on any
 * thread; the one exception is outside our hands: cJSON notes its last
 * parse error in a global, which this module never reads).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "workbot/config.h"
#include "workbot/log.h"
#include "workbot/secret.h"
#include "workbot/template.h"
#include "workbot/xmalloc.h"

#define MAX_FILE	(1024 * 1024)	/* a config is a few KiB; refuse a log file by mistake */
#define MAX_LINE	65536		/* a body template is "thousands of characters" */
#define MAX_ERRORS	100		/* then one "too many errors": a binary file is not a config */
#define MAX_NAME	32		/* app and recipe names */
#define MAX_ITEMS	64		/* words, params, ids, hosts, button params */
#define MAX_BUTTONS	25		/* Slack: elements per actions block */
#define MAX_LABEL	75		/* Slack: button text */
#define MAX_SECRET_FILE	65536
#define MAX_KEYS	24		/* keys of the largest section */

#define KiB	1024ULL
#define MiB	(1024 * KiB)
#define GiB	(1024 * MiB)
#define TiB	(1024 * GiB)

/* ---- the loader: state of one config_load() ---------------------------- */

struct error {
	unsigned line;		/* 0: file-wide, sorted last */
	size_t seq;		/* keeps file order among equal lines */
	char *msg;
};

enum key_state { K_ABSENT, K_SET, K_EMPTY, K_BAD };

struct section_kind;

struct section {
	const struct section_kind *kind;
	void *obj;
	char *label;			/* "slack", "app box" */
	unsigned line;
	unsigned seen[MAX_KEYS];	/* line a key was first set on */
	enum key_state state[MAX_KEYS];
	struct section *next;
};

struct loader {
	const char *file;
	struct config *cfg;
	struct error *errs;
	size_t nerrs, errcap;
	struct section *sections, **tail;
	struct section *cur;		/* NULL before any section or in a refused one */
	bool skipping;			/* in a refused section: ignore its keys */
	unsigned line;			/* line being parsed (0: a default) */
	const char *label;		/* section label for messages */
	/* The first inline or file: secret, for the file-mode check. */
	unsigned secret_line;
	const char *secret_label, *secret_key;
	struct config_app **apps;
	size_t napps, appcap;
	struct config_recipe **recipes;
	size_t nrecipes, recipecap;
};

static void
verr(struct loader *L, unsigned line, const char *label, const char *key,
    const char *fmt, va_list ap)
{
	char lbuf[24] = "", sbuf[128] = "", *what, *msg;

	if (L->nerrs > MAX_ERRORS)
		return;
	if (L->nerrs == MAX_ERRORS) {
		/* Line 0 sorts last, after the errors it cut short. */
		msg = xasprintf("%s: too many errors, giving up", L->file);
		line = 0;
	} else {
		if (vasprintf(&what, fmt, ap) < 0)
			fatal(1, "config", "out of memory");
		if (line != 0)
			snprintf(lbuf, sizeof(lbuf), ":%u", line);
		if (label != NULL)
			snprintf(sbuf, sizeof(sbuf), " [%s]%s%s:", label,
			    key != NULL ? " " : "", key != NULL ? key : "");
		/* FILE:LINE: [section] key: what */
		msg = xasprintf("%s%s:%s %s", L->file, lbuf, sbuf, what);
		free(what);
	}
	if (L->nerrs == L->errcap) {
		L->errcap = L->errcap ? 2 * L->errcap : 16;
		L->errs = xreallocarray(L->errs, L->errcap, sizeof(*L->errs));
	}
	L->errs[L->nerrs].line = line;
	L->errs[L->nerrs].seq = L->nerrs;
	L->errs[L->nerrs].msg = msg;
	L->nerrs++;
}

static void err_at(struct loader *L, unsigned line, const char *label,
    const char *key, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
err_at(struct loader *L, unsigned line, const char *label, const char *key,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(L, line, label, key, fmt, ap);
	va_end(ap);
}

static int
error_cmp(const void *a, const void *b)
{
	const struct error *x = a, *y = b;
	unsigned lx = x->line ? x->line : ~0U, ly = y->line ? y->line : ~0U;

	if (lx != ly)
		return lx < ly ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* ---- small helpers ---------------------------------------------------- */

static void
free_const(const void *p)
{
	free((void *)(uintptr_t)p);
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static bool
all_chars(const char *s, size_t max, const char *extra, bool upper, bool lower)
{
	size_t n = 0;

	for (; *s != '\0'; s++, n++) {
		unsigned char c = (unsigned char)*s;

		if (!(isdigit(c) || (lower && islower(c)) || (upper && isupper(c)) ||
		    (extra != NULL && c != '\0' && strchr(extra, c) != NULL)))
			return false;
	}
	return n > 0 && n <= max;
}

/* Safe to quote in a message: looks like a key, not like a secret's tail. */
static bool
plausible_key(const char *s)
{
	return islower((unsigned char)*s) && all_chars(s, 40, "_", false, true);
}

static bool
valid_name(const char *s)
{
	return all_chars(s, MAX_NAME, "_-", false, true);
}

static const char *
errstr(int e, char *buf, size_t size)
{
	/* GNU strerror_r: thread-safe, unlike strerror. */
	return strerror_r(e, buf, size);
}

/* Levenshtein distance, for "did you mean"; both strings are short. */
static size_t
distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[48], i, j;

	if (la >= 48 || lb >= 48)
		return 99;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/*
 * Split `s` at any byte of `seps` into fresh strings, at most MAX_ITEMS.
 * Returns the count, or -1 when there are more.
 */
static int
split(const char *s, const char *seps, char ***out)
{
	char **v = NULL;
	size_t n = 0;

	for (;;) {
		size_t len;

		s += strspn(s, seps);
		if (*s == '\0')
			break;
		len = strcspn(s, seps);
		if (n == MAX_ITEMS) {
			while (n > 0)
				free(v[--n]);
			free(v);
			*out = NULL;
			return -1;
		}
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n++] = xstrndup(s, len);
		s += len;
	}
	*out = v;
	return (int)n;
}

static void
free_strv(const char *const *v, size_t n)
{
	while (n > 0)
		free_const(v[--n]);
	free_const(v);
}

/* ---- URLs (curl's parser, so workbot and libcurl agree on the host) --- */

static bool
host_is_loopback(const char *host)
{
	char buf[64];
	size_t len = strlen(host);
	struct in_addr a4;
	struct in6_addr a6;

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (host[0] == '[' && len > 2 && len < sizeof(buf) && host[len - 1] == ']') {
		memcpy(buf, host + 1, len - 2);
		buf[len - 2] = '\0';
		if (inet_pton(AF_INET6, buf, &a6) != 1)
			return false;
		if (IN6_IS_ADDR_LOOPBACK(&a6))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
	}
	return inet_pton(AF_INET, host, &a4) == 1 &&
	    (ntohl(a4.s_addr) >> 24) == 127;
}

/*
 * NULL if `url` is https (or http to a loopback host) with a host, no
 * user:password and, when `bare`, no query or fragment; else the reason.
 */
static const char *
url_problem(const char *url, bool bare)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *part = NULL;
	const char *why = NULL;

	if (u == NULL)
		return "out of memory";
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		why = "not a URL";
	} else if (strcasecmp(scheme, "https") != 0 &&
	    !(strcasecmp(scheme, "http") == 0 && host_is_loopback(host))) {
		/* A token is never sent in clear text but to this machine. */
		why = "not an https URL";
	} else if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK) {
		why = "must not contain user:password@ (put secrets in secret keys)";
	} else if (bare && (curl_url_get(u, CURLUPART_QUERY, &part, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK)) {
		why = "must not have a query or fragment (paths are appended to it)";
	}
	curl_free(part);
	curl_free(host);
	curl_free(scheme);
	curl_url_cleanup(u);
	return why;
}

/* ---- the descriptor table ---------------------------------------------- */

enum type {
	T_STR, T_PATH, T_FILE, T_URL, T_SECRET, T_UINT, T_SIZE, T_BOOL, T_ENUM,
	T_BIND, T_WORDS, T_PARAMS, T_KVS, T_LIST, T_TEMPLATE, T_BUTTONS, T_APPREF,
	T_COUNT
};

enum {
	F_SECRET	= 1 << 0,	/* a secret: inline, env: or file: */
	F_REQUIRED	= 1 << 1,	/* for apps: required when `auths` matches */
	F_RELOADABLE	= 1 << 2,	/* SIGHUP applies it; else a restart is needed */
	F_URL_DIR	= 1 << 3,	/* a base URL that must end with '/' */
	F_URL_BASE	= 1 << 4,	/* a base URL stored without a trailing '/' */
	F_TPL_RESPONSE	= 1 << 5,	/* a template that may use {{response.x}} */
	F_TPL_JSON	= 1 << 6,	/* a template that must be JSON */
};

/* App keys: which `auth` kinds a key belongs to (0: all). */
#define A_OAUTH2	(1U << CONFIG_AUTH_OAUTH2)
#define A_TOKEN		(1U << CONFIG_AUTH_TOKEN)

struct key;
typedef void (*validate_fn)(struct loader *L, const struct key *k, void *field);

struct key {
	const char *name;
	enum type type;
	size_t off;		/* of the field in the section struct */
	const char *def;	/* parsed like a value from the file */
	uint64_t min, max;	/* T_UINT, T_SIZE */
	const void *arg;	/* T_ENUM names, T_KVS refused keys, T_LIST kind */
	validate_fn validate;	/* checks beyond the type, or NULL */
	unsigned flags;
	unsigned auths;
};

static const char *const auth_names[] = { "oauth2", "token", "none", NULL };
static const char *const client_auth_names[] = { "basic", "body", NULL };
static const char *const method_names[] = { "GET", "POST", "PUT", "PATCH", "DELETE", NULL };

/* RFC 6749 and PKCE parameters workbot sets itself: DESIGN §6. */
static const char *const refused_authorize_params[] = {
	"state", "redirect_uri", "code_challenge", "code_challenge_method",
	"client_id", "response_type", "scope", NULL,
};

struct list_kind {
	const char *what;		/* for messages */
	bool (*ok)(char *item);		/* may normalise the item in place */
};

static bool
slack_user_id(char *s)
{
	return (s[0] == 'U' || s[0] == 'W') && all_chars(s, 32, NULL, true, false);
}

static bool
slack_channel_id(char *s)
{
	return (s[0] == 'C' || s[0] == 'G' || s[0] == 'D') &&
	    all_chars(s, 32, NULL, true, false);
}

/* `host.example.com` or `*.example.com` (at least two labels after "*."). */
static bool
host_pattern(char *s)
{
	char *p = s, *label;
	size_t labels = 0;

	for (label = s; *label != '\0'; label++)
		*label = (char)tolower((unsigned char)*label);
	if (strncmp(p, "*.", 2) == 0)
		p += 2;
	for (;;) {
		size_t len = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789-");

		if (len == 0 || len > 63 || p[0] == '-' || p[len - 1] == '-')
			return false;
		labels++;
		p += len;
		if (*p == '\0')
			break;
		if (*p++ != '.')
			return false;
	}
	return p - s <= 253 && (strncmp(s, "*.", 2) != 0 || labels >= 2);
}

static const struct list_kind user_ids = { "a Slack user id (U... or W...)", slack_user_id };
static const struct list_kind channel_ids = { "a Slack channel id (C..., G... or D...)", slack_channel_id };
static const struct list_kind host_patterns = { "a host name or *.domain pattern", host_pattern };

static void validate_command(struct loader *L, const struct key *k, void *field);
static void validate_path(struct loader *L, const struct key *k, void *field);

#define SLACK(f)	offsetof(struct config_slack, f)
#define STORE(f)	offsetof(struct config_store, f)
#define LISTENER(f)	offsetof(struct config_listener, f)
#define APP(f)		offsetof(struct config_app, f)
#define RECIPE(f)	offsetof(struct config_recipe, f)
#define R		F_RELOADABLE

static const struct key slack_keys[] = {
	{ "app_token",     T_SECRET, SLACK(app_token),     NULL, 0, 0, NULL, NULL, F_SECRET | F_REQUIRED, 0 },
	{ "bot_token",     T_SECRET, SLACK(bot_token),     NULL, 0, 0, NULL, NULL, F_SECRET | F_REQUIRED, 0 },
	{ "api_url",       T_URL,    SLACK(api_url),       "https://slack.com/api/", 0, 0, NULL, NULL, F_URL_DIR, 0 },
	{ "connections",   T_UINT,   SLACK(connections),   "2", 1, 4, NULL, NULL, 0, 0 },
	{ "workers",       T_UINT,   SLACK(workers),       "4", 1, 64, NULL, NULL, 0, 0 },
	{ "ping_interval", T_UINT,   SLACK(ping_interval), "5", 1, 60, NULL, NULL, 0, 0 },
	{ "ca_file",       T_FILE,   SLACK(ca_file),       NULL, 0, 0, NULL, NULL, 0, 0 },
};

static const struct key store_keys[] = {
	{ "path",       T_PATH, STORE(path),       NULL, 0, 0, NULL, NULL, F_REQUIRED, 0 },
	{ "key_file",   T_PATH, STORE(key_file),   NULL, 0, 0, NULL, NULL, F_REQUIRED, 0 },
	{ "map_size",   T_SIZE, STORE(map_size),   "1GiB", MiB, TiB, NULL, NULL, 0, 0 },
	{ "audit_days", T_UINT, STORE(audit_days), "90", 1, 3650, NULL, NULL, 0, 0 },
};

static const struct key listener_keys[] = {
	{ "bind",       T_BIND, LISTENER(bind),       "127.0.0.1:8085", 0, 0, NULL, NULL, 0, 0 },
	/* Default http://<bind>: set in check_listener(), which knows bind. */
	{ "public_url", T_URL,  LISTENER(public_url), NULL, 0, 0, NULL, NULL, F_URL_BASE, 0 },
};

static const struct key app_keys[] = {
	/* Default: the app's name, set in check_app(). */
	{ "title",            T_STR,    APP(title),            NULL, 0, 0, NULL, NULL, R, 0 },
	{ "auth",             T_ENUM,   APP(auth),             NULL, 0, 0, auth_names, NULL, R | F_REQUIRED, 0 },
	{ "client_id",        T_STR,    APP(client_id),        NULL, 0, 0, NULL, NULL, R | F_REQUIRED, A_OAUTH2 },
	{ "client_secret",    T_SECRET, APP(client_secret),    NULL, 0, 0, NULL, NULL, R | F_REQUIRED | F_SECRET, A_OAUTH2 },
	{ "authorize_url",    T_URL,    APP(authorize_url),    NULL, 0, 0, NULL, NULL, R | F_REQUIRED, A_OAUTH2 },
	{ "token_url",        T_URL,    APP(token_url),        NULL, 0, 0, NULL, NULL, R | F_REQUIRED, A_OAUTH2 },
	{ "revoke_url",       T_URL,    APP(revoke_url),       NULL, 0, 0, NULL, NULL, R, A_OAUTH2 },
	{ "userinfo_url",     T_URL,    APP(userinfo_url),     NULL, 0, 0, NULL, NULL, R, A_OAUTH2 },
	{ "scopes",           T_STR,    APP(scopes),           NULL, 0, 0, NULL, NULL, R, A_OAUTH2 },
	{ "client_auth",      T_ENUM,   APP(client_auth),      "basic", 0, 0, client_auth_names, NULL, R, A_OAUTH2 },
	{ "authorize_params", T_KVS,    APP(authorize_params), NULL, 0, 0, refused_authorize_params, NULL, R, A_OAUTH2 },
	{ "issuer",           T_URL,    APP(issuer),           NULL, 0, 0, NULL, NULL, R, A_OAUTH2 },
	{ "instance_hosts",   T_LIST,   APP(instance_hosts),   NULL, 0, 0, &host_patterns, NULL, R, A_OAUTH2 },
	{ "token",            T_SECRET, APP(token),            NULL, 0, 0, NULL, NULL, R | F_REQUIRED | F_SECRET, A_TOKEN },
	{ "api_url",          T_URL,    APP(api_url),          NULL, 0, 0, NULL, NULL, R | F_REQUIRED | F_URL_BASE, 0 },
};

static const struct key recipe_keys[] = {
	{ "command",            T_WORDS,    RECIPE(command),            NULL, 0, 0, NULL, validate_command, R | F_REQUIRED, 0 },
	{ "description",        T_STR,      RECIPE(description),        "", 0, 0, NULL, NULL, R, 0 },
	{ "app",                T_APPREF,   RECIPE(app),                NULL, 0, 0, NULL, NULL, R | F_REQUIRED, 0 },
	{ "verify_user_access", T_BOOL,     RECIPE(verify_user_access), "false", 0, 0, NULL, NULL, R, 0 },
	{ "params",             T_PARAMS,   RECIPE(params),             NULL, 0, 0, NULL, NULL, R, 0 },
	{ "method",             T_ENUM,     RECIPE(method),             "GET", 0, 0, method_names, NULL, R, 0 },
	{ "path",               T_TEMPLATE, RECIPE(path),               NULL, 0, 0, NULL, validate_path, R | F_REQUIRED, 0 },
	{ "body",               T_TEMPLATE, RECIPE(body),               NULL, 0, 0, NULL, NULL, R | F_TPL_JSON, 0 },
	{ "reply",              T_TEMPLATE, RECIPE(reply),              NULL, 0, 0, NULL, NULL, R | F_TPL_RESPONSE, 0 },
	{ "buttons",            T_BUTTONS,  RECIPE(buttons),            NULL, 0, 0, NULL, NULL, R, 0 },
	{ "allowed_users",      T_LIST,     RECIPE(allowed_users),      NULL, 0, 0, &user_ids, NULL, R, 0 },
	{ "allowed_channels",   T_LIST,     RECIPE(allowed_channels),   NULL, 0, 0, &channel_ids, NULL, R, 0 },
};

#undef R

#define NKEYS(t) (sizeof(t) / sizeof((t)[0]))

/* struct section keeps per-key state in arrays of MAX_KEYS. */
_Static_assert(NKEYS(slack_keys) <= MAX_KEYS && NKEYS(store_keys) <= MAX_KEYS &&
    NKEYS(listener_keys) <= MAX_KEYS && NKEYS(app_keys) <= MAX_KEYS &&
    NKEYS(recipe_keys) <= MAX_KEYS, "raise MAX_KEYS");

/* ---- value types: parse, free, compare -------------------------------- */

static void kerr(struct loader *L, const struct key *k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* An error about key `k` on the line being parsed. */
static void
kerr(struct loader *L, const struct key *k, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(L, L->line, L->label, k->name, fmt, ap);
	va_end(ap);
}

/* Each parse function returns 0, or -1 after reporting (field untouched). */
typedef int (*parse_fn)(struct loader *L, const struct key *k, void *field, const char *value);

static int
parse_str(struct loader *L, const struct key *k, void *field, const char *value)
{
	struct config_str *f = field;

	(void)k;
	f->v = xstrdup(value);
	f->line = L->line;
	return 0;
}

static int
parse_file(struct loader *L, const struct key *k, void *field, const char *value)
{
	char ebuf[128];
	struct stat st;
	int fd = open(value, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		kerr(L, k, "cannot read %s: %s", value, errstr(errno, ebuf, sizeof(ebuf)));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		kerr(L, k, "%s is not a regular file", value);
		return -1;
	}
	close(fd);
	return parse_str(L, k, field, value);
}

static int
parse_url(struct loader *L, const struct key *k, void *field, const char *value)
{
	struct config_str *f = field;
	const char *why = url_problem(value, (k->flags & (F_URL_DIR | F_URL_BASE)) != 0);
	size_t len = strlen(value);

	if (why != NULL) {
		kerr(L, k, "%s", why);
		return -1;
	}
	if (k->flags & F_URL_DIR && value[len - 1] != '/')
		f->v = xasprintf("%s/", value);
	else if (k->flags & F_URL_BASE) {
		while (len > 0 && value[len - 1] == '/')
			len--;
		f->v = xstrndup(value, len);
	} else
		f->v = xstrdup(value);
	f->line = L->line;
	return 0;
}

/* file:PATH — read whole, trailing newline stripped, refused if others can read it. */
static struct secret *
read_secret_file(struct loader *L, const struct key *k, const char *path)
{
	char buf[MAX_SECRET_FILE + 1], ebuf[128];
	struct stat st;
	size_t len = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct secret *s = NULL;

	if (fd < 0) {
		kerr(L, k, "cannot read secret file %s: %s", path, errstr(errno, ebuf, sizeof(ebuf)));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		kerr(L, k, "secret file %s is not a regular file", path);
		goto out;
	}
	if (st.st_mode & (S_IRGRP | S_IROTH)) {
		kerr(L, k, "secret file %s is readable by group or others (mode %04o): chmod 600 it",
		    path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			kerr(L, k, "cannot read secret file %s: %s", path, errstr(errno, ebuf, sizeof(ebuf)));
			goto out;
		}
		len += (size_t)n;
	}
	if (len > MAX_SECRET_FILE) {
		kerr(L, k, "secret file %s is larger than %d bytes", path, MAX_SECRET_FILE);
		goto out;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (len == 0)
		kerr(L, k, "secret file %s is empty", path);
	else
		s = secret_new(buf, len);
out:
	secret_wipe(buf, sizeof(buf));
	close(fd);
	return s;
}

static int
parse_secret(struct loader *L, const struct key *k, void *field, const char *value)
{
	struct config_secret *f = field;
	struct secret *s;

	if (strncmp(value, "env:", 4) == 0) {
		const char *name = value + 4, *env;

		if (!(isalpha((unsigned char)*name) || *name == '_') ||
		    !all_chars(name, 128, "_", true, true)) {
			kerr(L, k, "env: needs a variable name ([A-Za-z_][A-Za-z0-9_]*)");
			return -1;
		}
		if ((env = getenv(name)) == NULL || *env == '\0') {
			kerr(L, k, "environment variable %s is %s", name, env == NULL ? "not set" : "empty");
			return -1;
		}
		s = secret_from_str(env);
	} else {
		if (L->secret_line == 0 && L->line != 0) {
			L->secret_line = L->line;
			L->secret_label = L->label;
			L->secret_key = k->name;
		}
		if (strncmp(value, "file:", 5) == 0) {
			if (value[5] == '\0') {
				kerr(L, k, "file: needs a path");
				return -1;
			}
			if ((s = read_secret_file(L, k, value + 5)) == NULL)
				return -1;
		} else
			s = secret_from_str(value);
	}
	f->v = s;
	f->line = L->line;
	return 0;
}

/* Digits only, no sign, no overflow. */
static int
parse_digits(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 20)
		return -1;
	for (i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]) || v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

static int
parse_uint(struct loader *L, const struct key *k, void *field, const char *value)
{
	struct config_uint *f = field;
	uint64_t v;

	if (parse_digits(value, strlen(value), &v) != 0) {
		kerr(L, k, "not a number");
		return -1;
	}
	if (v < k->min || v > k->max) {
		kerr(L, k, "must be between %llu and %llu", (unsigned long long)k->min,
		    (unsigned long long)k->max);
		return -1;
	}
	f->v = v;
	f->line = L->line;
	return 0;
}

static const struct { const char *suffix; uint64_t mult; } size_units[] = {
	{ "", 1 }, { "KiB", KiB }, { "MiB", MiB }, { "GiB", GiB }, { "TiB", TiB },
};

static const char *
fmt_size(uint64_t v, char *buf, size_t size)
{
	size_t i = NKEYS(size_units);

	while (--i > 0 && v % size_units[i].mult != 0)
		;
	snprintf(buf, size, "%llu%s", (unsigned long long)(v / size_units[i].mult),
	    size_units[i].suffix);
	return buf;
}

static int
parse_size(struct loader *L, const struct key *k, void *field, const char *value)
{
	struct config_uint *f = field;
	size_t digits = strspn(value, "0123456789"), i;
	const char *unit = value + digits;
	char lo[32], hi[32];
	uint64_t v;

	while (*unit == ' ')
		unit++;
	for (i = 0; i < NKEYS(size_units); i++)
		if (strcasecmp(unit, size_units[i].suffix) == 0)
			break;
	if (i == NKEYS(size_units) || parse_digits(value, digits, &v) != 0 ||
	    v > UINT64_MAX / size_units[i].mult) {
		kerr(L, k, "not a size (bytes, or a number with KiB, MiB, GiB or TiB)");
		return -1;
	}
	v *= size_units[i].mult;
	if (v < k->min || v > k->max) {
		kerr(L, k, "must be between %s and %s", fmt_size(k->min, lo, sizeof(lo)),
		    fmt_size(k->max, hi, sizeof(hi)));
		return -1;
	}
	f->v = v;
	f->line = L->line;
	return 0;
}

static int
parse_bool(struct loader *L, const struct key *k, void *field, const char *value)
{
	static const struct { const char *word; bool v; } words[] = {
		{ "true", true }, { "yes", true }, { "on", true }, { "1", true },
		{ "false", false }, { "no", false }, { "off", false }, { "0", false },
	};
	struct config_bool *f = field;
	size_t i;

	for (i = 0; i < NKEYS(words); i++) {
		if (strcasecmp(value, words[i].word) == 0) {
			f->v = words[i].v;
			f->line = L->line;
			return 0;
		}
	}
	kerr(L, k, "not a boolean (true/false, yes/no, on/off, 1/0)");
	return -1;
}

static int
parse_enum(struct loader *L, const struct key *k, void *field, const char *value)
{
	const char *const *names = k->arg;
	struct config_enum *f = field;
	char list[128] = "";
	int i;

	for (i = 0; names[i] != NULL; i++) {
		if (strcasecmp(value, names[i]) == 0) {
			f->v = i;
			f->line = L->line;
			return 0;
		}
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
		    i ? " | " : "", names[i]);
	}
	kerr(L, k, "must be one of %s", list);
	return -1;
}

/* IPv4:port or [IPv6]:port, numeric only: a listener never resolves names. */
static int
parse_bind(struct loader *L, const struct key *k, void *field, const char *value)
{
	struct config_bind *f = field;
	char host[64], text[INET6_ADDRSTRLEN];
	const char *colon;
	size_t hostlen;
	uint64_t port;
	int family = AF_INET;
	union { struct in_addr a4; struct in6_addr a6; } a;

	if (value[0] == '[') {
		const char *close = strchr(value, ']');

		if (close == NULL || close[1] != ':') {
			kerr(L, k, "expected IPv4:port or [IPv6]:port");
			return -1;
		}
		family = AF_INET6;
		value++;
		hostlen = (size_t)(close - value);
		colon = close + 1;
	} else {
		colon = strrchr(value, ':');
		if (colon == NULL) {
			kerr(L, k, "expected IPv4:port or [IPv6]:port");
			return -1;
		}
		hostlen = (size_t)(colon - value);
		if (memchr(value, ':', hostlen) != NULL) {
			kerr(L, k, "an IPv6 address must be in brackets: [::1]:8085");
			return -1;
		}
	}
	if (hostlen >= sizeof(host)) {
		kerr(L, k, "not a numeric IP address (host names are not resolved)");
		return -1;
	}
	memcpy(host, value, hostlen);
	host[hostlen] = '\0';
	if (inet_pton(family, host, &a) != 1) {
		kerr(L, k, "not a numeric IP address (host names are not resolved)");
		return -1;
	}
	if (parse_digits(colon + 1, strlen(colon + 1), &port) != 0 || port < 1 || port > 65535) {
		kerr(L, k, "port must be between 1 and 65535");
		return -1;
	}
	memset(&f->addr, 0, sizeof(f->addr));
	f->port = (uint16_t)port;
	inet_ntop(family, &a, text, sizeof(text));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&f->addr;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(f->port);
		sin->sin_addr = a.a4;
		f->addrlen = sizeof(*sin);
		f->loopback = (ntohl(a.a4.s_addr) >> 24) == 127;
		f->v = xasprintf("%s:%u", text, (unsigned)f->port);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&f->addr;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(f->port);
		sin6->sin6_addr = a.a6;
		f->addrlen = sizeof(*sin6);
		f->loopback = IN6_IS_ADDR_LOOPBACK(&a.a6);
		f->v = xasprintf("[%s]:%u", text, (unsigned)f->port);
	}
	f->line = L->line;
	return 0;
}

static int
parse_words(struct loader *L, const struct key *k, void *field, const char *value)
{
	struct config_words *f = field;
	char **w, *joined;
	int n = split(value, " \t", &w), i;
	size_t len = 0;

	if (n < 0 || n > 8) {
		if (n > 0)
			free_strv((const char *const *)w, (size_t)n);
		kerr(L, k, "at most 8 words");
		return -1;
	}
	for (i = 0; i < n; i++) {
		char *p;

		/* '=' and '"' would read as a parameter, '<' '>' '&' as Slack markup. */
		if (!all_chars(w[i], 64, "-_.", true, true)) {
			free_strv((const char *const *)w, (size_t)n);
			kerr(L, k, "words may contain only letters, digits, '-', '_' and '.'");
			return -1;
		}
		for (p = w[i]; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		len += strlen(w[i]) + 1;
	}
	joined = xmalloc(len + 1);
	joined[0] = '\0';
	for (i = 0; i < n; i++) {
		if (i > 0)
			strcat(joined, " ");
		strcat(joined, w[i]);
	}
	f->words = (const char *const *)w;
	f->n = (size_t)n;
	f->v = joined;
	f->line = L->line;
	return 0;
}

static int
parse_params(struct loader *L, const struct key *k, void *field, const char *value)
{
	struct config_params *f = field;
	struct config_param *v;
	char **w;
	int n = split(value, " \t,", &w), i, j;

	if (n < 0) {
		kerr(L, k, "more than %d params", MAX_ITEMS);
		return -1;
	}
	v = xcalloc((size_t)n + 1, sizeof(*v));
	for (i = 0; i < n; i++) {
		size_t len = strlen(w[i]);

		v[i].optional = w[i][len - 1] == '?';
		if (v[i].optional)
			w[i][len - 1] = '\0';
		v[i].name = w[i];
		if (!all_chars(w[i], MAX_NAME, "_", false, true)) {
			kerr(L, k, "a param name is [a-z0-9_]{1,%d}, optionally followed by '?'", MAX_NAME);
			goto fail;
		}
		/* {{response.x}} is the app's answer, not a param. */
		if (strcmp(w[i], "response") == 0) {
			kerr(L, k, "`response` is reserved for {{response.field}}");
			goto fail;
		}
		for (j = 0; j < i; j++) {
			if (strcmp(v[j].name, w[i]) == 0) {
				kerr(L, k, "param `%s` is listed twice", w[i]);
				goto fail;
			}
		}
	}
	free(w);
	f->v = v;
	f->n = (size_t)n;
	f->line = L->line;
	return 0;
fail:
	free_strv((const char *const *)w, (size_t)n);
	free(v);
	return -1;
}

static void
free_kvs(struct config_kv *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free_const(v[i].key);
		free_const(v[i].value);
	}
	free(v);
}

/* authorize_params: k=v&k=v, taken literally (escaped when the URL is built). */
static int
parse_kvs(struct loader *L, const struct key *k, void *field, const char *value)
{
	const char *const *refused = k->arg;
	struct config_kvs *f = field;
	struct config_kv *v = NULL;
	size_t n = 0, i;
	const char *p = value;

	for (;;) {
		size_t len = strcspn(p, "&"), klen;
		const char *eq = memchr(p, '=', len);
		char *key;

		klen = eq != NULL ? (size_t)(eq - p) : len;
		key = xstrndup(p, klen);
		if (eq == NULL || !all_chars(key, 64, "_.-", true, true)) {
			kerr(L, k, "expected name=value&name=value");
			free(key);
			goto fail;
		}
		for (i = 0; refused[i] != NULL; i++)
			if (strcmp(key, refused[i]) == 0)
				break;
		if (refused[i] != NULL) {
			kerr(L, k, "`%s` is set by workbot and cannot be overridden", key);
			free(key);
			goto fail;
		}
		for (i = 0; i < n; i++)
			if (strcmp(v[i].key, key) == 0)
				break;
		if (i < n || n == MAX_ITEMS) {
			kerr(L, k, i < n ? "`%s` is given twice" : "too many parameters at `%s`", key);
			free(key);
			goto fail;
		}
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n].key = key;
		v[n].value = xstrndup(eq + 1, len - klen - 1);
		n++;
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	f->v = v;
	f->n = n;
	f->line = L->line;
	return 0;
fail:
	free_kvs(v, n);
	return -1;
}

static int
parse_list(struct loader *L, const struct key *k, void *field, const char *value)
{
	const struct list_kind *kind = k->arg;
	struct config_list *f = field;
	char **w;
	int n = split(value, " \t,", &w), i;

	if (n < 0) {
		kerr(L, k, "more than %d entries", MAX_ITEMS);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (!kind->ok(w[i])) {
			kerr(L, k, "entry %d is not %s", i + 1, kind->what);
			free_strv((const char *const *)w, (size_t)n);
			return -1;
		}
	}
	f->v = (const char *const *)w;
	f->n = (size_t)n;
	f->line = L->line;
	return 0;
}

static int
parse_template(struct loader *L, const struct key *k, void *field, const char *value)
{
	const char *why;

	if (template_scan(value, NULL, NULL, &why, NULL) != 0) {
		kerr(L, k, "%s", why);
		return -1;
	}
	return parse_str(L, k, field, value);
}

static int
parse_appref(struct loader *L, const struct key *k, void *field, const char *value)
{
	struct config_appref *f = field;

	if (!valid_name(value)) {
		kerr(L, k, "not an app name ([a-z0-9_-]{1,%d})", MAX_NAME);
		return -1;
	}
	f->v = xstrdup(value);
	f->line = L->line;
	return 0;
}

static void
free_buttons(struct config_button *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free_const(v[i].label);
		free_const(v[i].command);
		free_kvs((struct config_kv *)(uintptr_t)v[i].params.v, v[i].params.n);
	}
	free(v);
}

/*
 * One button: `Label: command words key=value key="quoted value"`, up to
 * an unquoted '|' or the end. Returns the position after it, or NULL after
 * reporting.
 */
static const char *
parse_button(struct loader *L, const struct key *k, const char *p, size_t nth,
    struct config_button *b)
{
	const char *colon = p + strcspn(p, ":|"), *why;
	struct config_kv *kv = NULL;
	size_t nkv = 0, cmdlen = 0, nwords = 0, i;
	char *label, *cmd = xmalloc(strlen(p) + 1), *val = NULL;

	memset(b, 0, sizeof(*b));
	cmd[0] = '\0';
	label = xstrndup(p, (size_t)(colon - p));
	memmove(label, trim(label), strlen(trim(label)) + 1);
	if (*colon != ':' || *label == '\0') {
		kerr(L, k, "button %zu: expected `Label: command key=value`", nth);
		goto fail;
	}
	if (strlen(label) > MAX_LABEL || strstr(label, "{{") != NULL) {
		kerr(L, k, "button %zu: a label is plain text of at most %d bytes", nth, MAX_LABEL);
		goto fail;
	}
	p = colon + 1;
	for (;;) {
		const char *tok, *eq;
		size_t klen, vlen = 0;

		p += strspn(p, " \t");
		if (*p == '\0' || *p == '|')
			break;
		tok = p;
		klen = strcspn(tok, " \t|=\"");
		eq = tok + klen;
		if (*eq != '=') {
			char *word = xstrndup(tok, klen);
			bool ok = *eq != '"' && all_chars(word, 64, "-_.", true, true);

			/* A command word: the same alphabet as a recipe's command. */
			if (!ok || nkv > 0 || ++nwords > 8) {
				if (!ok)
					kerr(L, k, "button \"%s\": a command word or key=value expected",
					    label);
				else if (nkv > 0)
					kerr(L, k, "button \"%s\": command words come before key=value params",
					    label);
				else
					kerr(L, k, "button \"%s\": at most 8 command words", label);
				free(word);
				goto fail;
			}
			free(word);
			if (cmdlen > 0)
				cmd[cmdlen++] = ' ';
			for (i = 0; i < klen; i++)
				cmd[cmdlen++] = (char)tolower((unsigned char)tok[i]);
			cmd[cmdlen] = '\0';
			p = eq;
			continue;
		}
		val = xmalloc(strlen(eq) + 1);
		p = eq + 1;
		if (*p == '"') {
			/* The same quoting as typed commands: \" and \\ inside. */
			for (p++; *p != '"'; p++) {
				if (*p == '\0') {
					kerr(L, k, "button \"%s\": unterminated quote", label);
					goto fail;
				}
				if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
					p++;
				val[vlen++] = *p;
			}
			p++;
		} else {
			while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '|')
				val[vlen++] = *p++;
		}
		val[vlen] = '\0';
		{
			char *key = xstrndup(tok, klen);

			if (!all_chars(key, MAX_NAME, "_", false, true)) {
				kerr(L, k, "button \"%s\": a param name is [a-z0-9_]+", label);
				free(key);
				goto fail;
			}
			for (i = 0; i < nkv; i++)
				if (strcmp(kv[i].key, key) == 0)
					break;
			if (i < nkv || nkv == MAX_ITEMS) {
				kerr(L, k, "button \"%s\": param `%s` given twice", label, key);
				free(key);
				goto fail;
			}
			if (template_scan(val, NULL, NULL, &why, NULL) != 0) {
				kerr(L, k, "button \"%s\": param `%s`: %s", label, key, why);
				free(key);
				goto fail;
			}
			kv = xreallocarray(kv, nkv + 1, sizeof(*kv));
			kv[nkv].key = key;
			kv[nkv].value = val;
			val = NULL;
			nkv++;
		}
	}
	if (cmdlen == 0) {
		kerr(L, k, "button \"%s\": no command", label);
		goto fail;
	}
	b->label = label;
	b->command = cmd;
	b->params.v = kv;
	b->params.n = nkv;
	b->params.line = L->line;
	return *p == '|' ? p + 1 : p;
fail:
	free(val);
	free(label);
	free(cmd);
	free_kvs(kv, nkv);
	return NULL;
}

static int
parse_buttons(struct loader *L, const struct key *k, void *field, const char *value)
{
	struct config_buttons *f = field;
	struct config_button *v = NULL;
	size_t n = 0;
	const char *p = value;

	while (*p != '\0') {
		if (n == MAX_BUTTONS) {
			kerr(L, k, "at most %d buttons", MAX_BUTTONS);
			goto fail;
		}
		v = xreallocarray(v, n + 1, sizeof(*v));
		if ((p = parse_button(L, k, p, n + 1, &v[n])) == NULL)
			goto fail;
		n++;
	}
	f->v = v;
	f->n = n;
	f->line = L->line;
	return 0;
fail:
	free_buttons(v, n);
	return -1;
}

static void
free_str(void *field)
{
	free_const(((struct config_str *)field)->v);
}

static void
free_secret(void *field)
{
	secret_free(((struct config_secret *)field)->v);
}

static void
free_none(void *field)
{
	(void)field;
}

static void
free_bind(void *field)
{
	free_const(((struct config_bind *)field)->v);
}

static void
free_words(void *field)
{
	struct config_words *f = field;

	free_strv(f->words, f->n);
	free_const(f->v);
}

static void
free_params(void *field)
{
	struct config_params *f = field;
	size_t i;

	for (i = 0; i < f->n; i++)
		free_const(f->v[i].name);
	free_const(f->v);
}

static void
free_kvs_field(void *field)
{
	struct config_kvs *f = field;

	free_kvs((struct config_kv *)(uintptr_t)f->v, f->n);
}

static void
free_list(void *field)
{
	struct config_list *f = field;

	free_strv(f->v, f->n);
}

static void
free_buttons_field(void *field)
{
	struct config_buttons *f = field;

	free_buttons((struct config_button *)(uintptr_t)f->v, f->n);
}

static void
free_appref(void *field)
{
	free_const(((struct config_appref *)field)->v);
}

static bool
equal_str(const void *a, const void *b)
{
	const char *x = ((const struct config_str *)a)->v, *y = ((const struct config_str *)b)->v;

	return x == y || (x != NULL && y != NULL && strcmp(x, y) == 0);
}

static bool
equal_secret(const void *a, const void *b)
{
	const struct secret *x = ((const struct config_secret *)a)->v;
	const struct secret *y = ((const struct config_secret *)b)->v;

	return x == y || secret_equal(x, y);
}

static bool
equal_uint(const void *a, const void *b)
{
	return ((const struct config_uint *)a)->v == ((const struct config_uint *)b)->v;
}

static bool
equal_bind(const void *a, const void *b)
{
	return strcmp(((const struct config_bind *)a)->v, ((const struct config_bind *)b)->v) == 0;
}

/* Per type: how to parse a value, free a field, and compare two fields. */
static const struct type_ops {
	parse_fn parse;
	void (*free)(void *field);
	bool (*equal)(const void *a, const void *b);	/* [slack] [store] [listener] types */
} types[T_COUNT] = {
	[T_STR]      = { parse_str,      free_str,           equal_str },
	[T_PATH]     = { parse_str,      free_str,           equal_str },
	[T_FILE]     = { parse_file,     free_str,           equal_str },
	[T_URL]      = { parse_url,      free_str,           equal_str },
	[T_SECRET]   = { parse_secret,   free_secret,        equal_secret },
	[T_UINT]     = { parse_uint,     free_none,          equal_uint },
	[T_SIZE]     = { parse_size,     free_none,          equal_uint },
	[T_BOOL]     = { parse_bool,     free_none,          NULL },
	[T_ENUM]     = { parse_enum,     free_none,          NULL },
	[T_BIND]     = { parse_bind,     free_bind,          equal_bind },
	[T_WORDS]    = { parse_words,    free_words,         NULL },
	[T_PARAMS]   = { parse_params,   free_params,        NULL },
	[T_KVS]      = { parse_kvs,      free_kvs_field,     NULL },
	[T_LIST]     = { parse_list,     free_list,          NULL },
	[T_TEMPLATE] = { parse_template, free_str,           NULL },
	[T_BUTTONS]  = { parse_buttons,  free_buttons_field, NULL },
	[T_APPREF]   = { parse_appref,   free_appref,        NULL },
};

/* ---- key validators ----------------------------------------------------- */

/* `help` and `connections` are built in; a recipe cannot take them over. */
static void
validate_command(struct loader *L, const struct key *k, void *field)
{
	static const char *const builtin[] = { "help", "connections" };
	struct config_words *f = field;
	size_t i;

	if (f->n == 0) {
		kerr(L, k, "no words");
		return;
	}
	for (i = 0; i < NKEYS(builtin); i++)
		if (strcmp(f->words[0], builtin[i]) == 0)
			kerr(L, k, "`%s` is a built-in command", builtin[i]);
}

/* Relative to the app's api_url: a recipe can never reach another host. */
static void
validate_path(struct loader *L, const struct key *k, void *field)
{
	const char *p = ((struct config_str *)field)->v;

	if (p[0] != '/') {
		kerr(L, k, "must start with '/'");
		return;
	}
	for (; *p != '\0'; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '#') {
			kerr(L, k, "must not contain spaces, control characters or '#'");
			return;
		}
	}
}

/* ---- sections ----------------------------------------------------------- */

enum section_type { S_SINGLE, S_APP, S_RECIPE };

struct section_kind {
	const char *name;
	enum section_type type;	/* S_APP, S_RECIPE: [app NAME], [recipe NAME] */
	const struct key *keys;
	size_t nkeys;
	size_t cfg_off;		/* S_SINGLE: where the struct lives in struct config */
	size_t line_off;	/* of the header line field */
	void (*check)(struct loader *L, struct section *s);
};

static void check_plain(struct loader *L, struct section *s);
static void check_listener(struct loader *L, struct section *s);
static void check_app(struct loader *L, struct section *s);
static void check_recipe(struct loader *L, struct section *s);

static const struct section_kind section_kinds[] = {
	{ "slack", S_SINGLE, slack_keys, NKEYS(slack_keys), offsetof(struct config, slack),
	  offsetof(struct config_slack, line), check_plain },
	{ "store", S_SINGLE, store_keys, NKEYS(store_keys), offsetof(struct config, store),
	  offsetof(struct config_store, line), check_plain },
	{ "listener", S_SINGLE, listener_keys, NKEYS(listener_keys), offsetof(struct config, listener),
	  offsetof(struct config_listener, line), check_listener },
	{ "app", S_APP, app_keys, NKEYS(app_keys), 0,
	  offsetof(struct config_app, line), check_app },
	{ "recipe", S_RECIPE, recipe_keys, NKEYS(recipe_keys), 0,
	  offsetof(struct config_recipe, line), check_recipe },
};

static void *
field_of(void *obj, const struct key *k)
{
	return (char *)obj + k->off;
}

static void
free_fields(const struct section_kind *kind, void *obj)
{
	size_t i;

	for (i = 0; i < kind->nkeys; i++)
		types[kind->keys[i].type].free(field_of(obj, &kind->keys[i]));
}

static const struct section_kind *
kind_by_name(const char *name)
{
	size_t i;

	for (i = 0; i < NKEYS(section_kinds); i++)
		if (strcmp(section_kinds[i].name, name) == 0)
			return &section_kinds[i];
	return NULL;
}

/* Section label safe to print: a name, not whatever bytes were there. */
static char *
printable_label(const char *s)
{
	const char *p;

	for (p = s; *p != '\0'; p++)
		if (!isprint((unsigned char)*p))
			return xstrdup("?");
	return p - s > 64 ? xstrdup("?") : xstrdup(s);
}

static void
section_header(struct loader *L, char *inner)
{
	const struct section_kind *kind;
	struct section *s;
	char *name, *label;
	size_t split_at = strcspn(inner, " \t"), i;

	name = trim(inner + split_at);
	inner[split_at] = '\0';
	L->cur = NULL;
	L->skipping = true;
	label = *name != '\0' ? xasprintf("%s %s", inner, name) : xstrdup(inner);
	L->label = NULL;
	kind = kind_by_name(inner);
	if (kind == NULL) {
		char *shown = printable_label(label);
		const struct section_kind *best = NULL;

		for (i = 0; i < NKEYS(section_kinds); i++)
			if (distance(inner, section_kinds[i].name) <= 2)
				best = &section_kinds[i];
		if (best != NULL)
			err_at(L, L->line, shown, NULL, "unknown section (did you mean [%s%s]?)",
			    best->name, best->type != S_SINGLE ? " NAME" : "");
		else
			err_at(L, L->line, shown, NULL,
			    "unknown section (slack, store, listener, app NAME, recipe NAME)");
		free(shown);
		free(label);
		return;
	}
	if ((kind->type != S_SINGLE) != (*name != '\0') ||
	    (kind->type != S_SINGLE && !valid_name(name))) {
		char *shown = printable_label(label);

		if (kind->type != S_SINGLE)
			err_at(L, L->line, shown, NULL, "%s name must be [a-z0-9_-]{1,%d}",
			    kind->name, MAX_NAME);
		else
			err_at(L, L->line, shown, NULL, "[%s] takes no name", kind->name);
		free(shown);
		free(label);
		return;
	}
	for (s = L->sections; s != NULL; s = s->next) {
		if (strcmp(s->label, label) == 0) {
			err_at(L, L->line, label, NULL, "duplicate section (first on line %u)", s->line);
			free(label);
			return;
		}
	}
	s = xcalloc(1, sizeof(*s));
	s->kind = kind;
	s->label = label;
	s->line = L->line;
	if (kind->type == S_APP) {
		struct config_app *a = xcalloc(1, sizeof(*a));

		a->name = xstrdup(name);
		L->apps = xreallocarray(L->apps, L->napps + 1, sizeof(*L->apps));
		L->apps[L->napps++] = a;
		s->obj = a;
	} else if (kind->type == S_RECIPE) {
		struct config_recipe *r = xcalloc(1, sizeof(*r));

		r->name = xstrdup(name);
		L->recipes = xreallocarray(L->recipes, L->nrecipes + 1, sizeof(*L->recipes));
		L->recipes[L->nrecipes++] = r;
		s->obj = r;
	} else {
		s->obj = (char *)L->cfg + kind->cfg_off;
	}
	*(unsigned *)((char *)s->obj + kind->line_off) = L->line;
	*L->tail = s;
	L->tail = &s->next;
	L->cur = s;
	L->skipping = false;
	L->label = s->label;
}

static void
key_value(struct loader *L, char *line, char *eq)
{
	struct section *s = L->cur;
	const struct key *k = NULL;
	char *key, *value;
	size_t i;

	*eq = '\0';
	key = trim(line);
	value = trim(eq + 1);
	if (L->skipping)
		return;		/* the refused section was reported once */
	if (s == NULL) {
		err_at(L, L->line, NULL, NULL, "`key = value` before any [section]");
		return;
	}
	for (i = 0; i < s->kind->nkeys; i++) {
		if (strcmp(s->kind->keys[i].name, key) == 0) {
			k = &s->kind->keys[i];
			break;
		}
	}
	if (k == NULL) {
		const char *best = NULL;
		size_t j;

		if (!plausible_key(key)) {
			/* Possibly the tail of a wrapped secret: do not quote it. */
			err_at(L, L->line, s->label, NULL, "not a key name (keys are [a-z0-9_])");
			return;
		}
		for (j = 0; j < s->kind->nkeys; j++)
			if (distance(key, s->kind->keys[j].name) <= 2)
				best = s->kind->keys[j].name;
		if (best != NULL)
			err_at(L, L->line, s->label, key, "unknown key (did you mean %s?)", best);
		else
			err_at(L, L->line, s->label, key, "unknown key");
		return;
	}
	if (s->seen[i] != 0) {
		kerr(L, k, "duplicate key (first set on line %u)", s->seen[i]);
		return;
	}
	s->seen[i] = L->line;
	if (*value == '\0') {
		/* `ca_file =` reads as "not set": the default applies. */
		s->state[i] = K_EMPTY;
		return;
	}
	if (types[k->type].parse(L, k, field_of(s->obj, k), value) != 0) {
		s->state[i] = K_BAD;
		return;
	}
	s->state[i] = K_SET;
	if (k->validate != NULL) {
		size_t before = L->nerrs;

		k->validate(L, k, field_of(s->obj, k));
		if (L->nerrs != before)
			s->state[i] = K_BAD;
	}
}

/* The reader: DESIGN §5, line by line, nothing joined, nothing cut. */
static void
parse_buffer(struct loader *L, const char *data, size_t len)
{
	char *buf = xmalloc(MAX_LINE + 1);
	size_t pos = 0;

	if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
		pos = 3;
	while (pos < len) {
		const char *start = data + pos, *nl = memchr(start, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - start) : len - pos;
		char *line, *eq;

		pos += n + (nl != NULL);
		L->line++;
		L->label = L->cur != NULL ? L->cur->label : NULL;
		if (n > MAX_LINE) {
			err_at(L, L->line, NULL, NULL, "line longer than %d bytes", MAX_LINE);
			continue;
		}
		if (memchr(start, '\0', n) != NULL) {
			err_at(L, L->line, NULL, NULL, "NUL byte in line");
			continue;
		}
		memcpy(buf, start, n);
		buf[n] = '\0';
		line = trim(buf);
		if (*line == '\0' || *line == '#' || *line == ';')
			continue;
		if (*line == '[') {
			size_t ll = strlen(line);

			if (line[ll - 1] != ']') {
				err_at(L, L->line, NULL, NULL, "malformed section header (expected [name])");
				L->cur = NULL;
				L->skipping = true;
				continue;
			}
			line[ll - 1] = '\0';
			section_header(L, trim(line + 1));
			continue;
		}
		if ((eq = strchr(line, '=')) == NULL) {
			/* Never quote the line: it may be the tail of a secret. */
			err_at(L, L->line, L->label, NULL, "expected `key = value`");
			continue;
		}
		key_value(L, line, eq);
	}
	secret_wipe(buf, MAX_LINE + 1);
	free(buf);
}

/* ---- checks on whole sections ------------------------------------------ */

/* Required keys and defaults; `auth` < 0: not an app, or its auth unknown. */
static void
check_keys(struct loader *L, struct section *s, int auth)
{
	size_t i;

	L->label = s->label;
	for (i = 0; i < s->kind->nkeys; i++) {
		const struct key *k = &s->kind->keys[i];
		bool applies = k->auths == 0 || (auth >= 0 && (k->auths & (1U << auth)));
		char when[64] = "";

		if (k->auths != 0 && auth >= 0)
			snprintf(when, sizeof(when), " (required when auth = %s)", auth_names[auth]);
		if (k->auths != 0 && auth >= 0 && !applies && s->state[i] == K_SET) {
			err_at(L, s->seen[i], s->label, k->name, "not used when auth = %s",
			    auth_names[auth]);
			continue;
		}
		if (s->state[i] == K_SET || s->state[i] == K_BAD)
			continue;
		if (k->flags & F_REQUIRED) {
			if (!applies)
				continue;
			if (s->state[i] == K_EMPTY)
				err_at(L, s->seen[i], s->label, k->name, "empty%s", when);
			else
				err_at(L, s->line, s->label, k->name, "missing%s", when);
			continue;
		}
		if (k->def != NULL) {
			L->line = 0;
			if (types[k->type].parse(L, k, field_of(s->obj, k), k->def) != 0)
				fatal(1, "config", "default of %s does not parse", k->name);
		}
	}
}

static void
check_plain(struct loader *L, struct section *s)
{
	check_keys(L, s, -1);
}

static void
check_listener(struct loader *L, struct section *s)
{
	struct config_listener *l = s->obj;

	check_keys(L, s, -1);
	if (l->public_url.v != NULL || l->bind.v == NULL)
		return;
	if (!l->bind.loopback) {
		/* The browser cannot be sent to http://0.0.0.0:8085. */
		err_at(L, s->line, s->label, "public_url",
		    "missing (required when bind is not a loopback address; must be https)");
		return;
	}
	l->public_url.v = xasprintf("http://%s", l->bind.v);
}

static void
check_app(struct loader *L, struct section *s)
{
	struct config_app *a = s->obj;
	size_t i;
	int auth = -1;

	for (i = 0; i < s->kind->nkeys; i++)
		if (strcmp(s->kind->keys[i].name, "auth") == 0 && s->state[i] == K_SET)
			auth = a->auth.v;
	check_keys(L, s, auth);
	if (a->title.v == NULL)
		a->title.v = xstrdup(a->name);
}

struct tplcheck {
	struct loader *L;
	const struct config_recipe *r;
	const char *key;
	unsigned line;
	const char *prefix;		/* "" or `button "Approve": ` */
	bool response_ok;
	bool json;
	bool in_string, escaped;	/* JSON string state over the text so far */
	char *stripped;			/* json: the body without placeholders */
	size_t slen;
	int bad;
};

static bool
has_param(const struct config_recipe *r, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < r->params.n; i++)
		if (strlen(r->params.v[i].name) == len && memcmp(r->params.v[i].name, name, len) == 0)
			return true;
	return false;
}

static int
tpl_part(void *arg, const struct template_part *p)
{
	struct tplcheck *t = arg;
	size_t i;

	if (p->kind == TEMPLATE_TEXT) {
		if (!t->json)
			return 0;
		for (i = 0; i < p->len; i++) {
			char c = p->s[i];

			if (t->escaped)
				t->escaped = false;
			else if (t->in_string && c == '\\')
				t->escaped = true;
			else if (c == '"')
				t->in_string = !t->in_string;
			t->stripped[t->slen++] = c;
		}
		return 0;
	}
	if (t->json && !t->in_string) {
		err_at(t->L, t->line, t->L->label, t->key,
		    "%s{{%.*s%.*s}} is outside a JSON string literal", t->prefix,
		    p->kind == TEMPLATE_RESPONSE ? 9 : 0, "response.", (int)p->len, p->s);
		t->bad = 1;
	} else if (t->json && t->escaped) {
		/* "\{{x}}": the value's first byte would complete an escape the renderer cannot make safe. */
		err_at(t->L, t->line, t->L->label, t->key,
		    "%s{{%.*s%.*s}} follows a backslash", t->prefix,
		    p->kind == TEMPLATE_RESPONSE ? 9 : 0, "response.", (int)p->len, p->s);
		t->bad = 1;
		t->escaped = false;
	} else if (p->kind == TEMPLATE_RESPONSE && !t->response_ok) {
		err_at(t->L, t->line, t->L->label, t->key,
		    "%s{{response.%.*s}} is allowed only in reply and buttons",
		    t->prefix, (int)p->len, p->s);
		t->bad = 1;
	} else if (p->kind == TEMPLATE_PARAM && !has_param(t->r, p->s, p->len)) {
		err_at(t->L, t->line, t->L->label, t->key, "%s{{%.*s}} is not a declared param",
		    t->prefix, (int)p->len, p->s);
		t->bad = 1;
	}
	return 0;
}

static void
check_template(struct loader *L, const struct config_recipe *r, const char *key,
    const char *tmpl, unsigned line, const char *prefix, bool response_ok, bool json)
{
	struct tplcheck t = { L, r, key, line, prefix, response_ok, json, false, false,
	    NULL, 0, 0 };

	if (tmpl == NULL)
		return;
	if (json)
		t.stripped = xmalloc(strlen(tmpl) + 1);
	template_scan(tmpl, tpl_part, &t, NULL, NULL);
	if (json) {
		cJSON *doc;

		t.stripped[t.slen] = '\0';
		/* Only when every placeholder is in a string: else one error is enough. */
		if (!t.bad) {
			doc = cJSON_ParseWithOpts(t.stripped, NULL, 1);
			if (doc == NULL)
				err_at(L, line, L->label, key, "not valid JSON");
			cJSON_Delete(doc);
		}
		free(t.stripped);
	}
}

static void
check_recipe(struct loader *L, struct section *s)
{
	struct config_recipe *r = s->obj;
	size_t i;

	check_keys(L, s, -1);
	for (i = 0; i < s->kind->nkeys; i++) {
		const struct key *k = &s->kind->keys[i];
		const struct config_str *f = field_of(r, k);

		if (k->type != T_TEMPLATE || s->state[i] != K_SET)
			continue;
		check_template(L, r, k->name, f->v, f->line, "", k->flags & F_TPL_RESPONSE,
		    k->flags & F_TPL_JSON);
	}
	if (r->body.v != NULL && r->method.v == CONFIG_METHOD_GET)
		err_at(L, r->body.line, s->label, "body", "not sent with method GET");
}

/* ---- checks across sections --------------------------------------------- */

static void
resolve_buttons(struct loader *L, struct section *s)
{
	struct config_recipe *r = s->obj;
	struct config_button *b = (struct config_button *)(uintptr_t)r->buttons.v;
	size_t i, j, n;

	L->label = s->label;
	for (i = 0; i < r->buttons.n; i++, b++) {
		char **words, *prefix;
		const struct config_recipe *t;
		size_t used = 0;

		n = (size_t)split(b->command, " ", &words);
		t = config_recipe_match(L->cfg, (const char *const *)words, n, &used);
		free_strv((const char *const *)words, n);
		if (t == NULL || used != n) {
			err_at(L, r->buttons.line, s->label, "buttons",
			    "button \"%s\": `%s` is not a recipe command", b->label, b->command);
			continue;
		}
		b->target = t;
		/* One click by anyone must not act with the shared token. */
		if (!t->verify_user_access.v)
			err_at(L, r->buttons.line, s->label, "buttons",
			    "button \"%s\" runs [recipe %s], which needs verify_user_access = true",
			    b->label, t->name);
		for (j = 0; j < b->params.n; j++) {
			const char *key = b->params.v[j].key;

			if (!has_param(t, key, strlen(key)))
				err_at(L, r->buttons.line, s->label, "buttons",
				    "button \"%s\": [recipe %s] has no param `%s`", b->label, t->name, key);
		}
		for (j = 0; j < t->params.n; j++) {
			size_t m;

			if (t->params.v[j].optional)
				continue;
			for (m = 0; m < b->params.n; m++)
				if (strcmp(b->params.v[m].key, t->params.v[j].name) == 0)
					break;
			if (m == b->params.n)
				err_at(L, r->buttons.line, s->label, "buttons",
				    "button \"%s\": [recipe %s] needs param `%s`", b->label, t->name,
				    t->params.v[j].name);
		}
		prefix = xasprintf("button \"%s\": ", b->label);
		for (j = 0; j < b->params.n; j++)
			check_template(L, r, "buttons", b->params.v[j].value, r->buttons.line,
			    prefix, true, false);
		free(prefix);
	}
}

/* A recipe's app, personal access and command against the rest of the file. */
static void
check_recipe_refs(struct loader *L, struct section *s)
{
	struct config_recipe *r = s->obj;
	const struct config_app *a;
	size_t j;

	if (r->app.v != NULL) {
		a = config_app_find(L->cfg, r->app.v);
		if (a == NULL) {
			err_at(L, r->app.line, s->label, "app", "no [app %s] is defined", r->app.v);
		} else {
			r->app.app = a;
			/* Personal connections exist for OAuth2 apps only. */
			if (r->verify_user_access.v && a->auth.line != 0 &&
			    a->auth.v != CONFIG_AUTH_OAUTH2)
				err_at(L, r->verify_user_access.line, s->label, "verify_user_access",
				    "[app %s] is auth = %s; personal connections need auth = oauth2",
				    a->name, auth_names[a->auth.v]);
		}
	}
	for (j = 0; r->command.v != NULL && L->recipes[j] != r; j++) {
		const struct config_recipe *o = L->recipes[j];

		if (o->command.v != NULL && strcmp(r->command.v, o->command.v) == 0) {
			err_at(L, r->command.line, s->label, "command",
			    "same command as [recipe %s] (line %u)", o->name, o->command.line);
			break;
		}
	}
}

static void
check_all(struct loader *L)
{
	struct config *cfg = L->cfg;
	struct section *s;

	if (cfg->slack.line == 0)
		err_at(L, 0, "slack", NULL, "missing section");
	if (cfg->store.line == 0)
		err_at(L, 0, "store", NULL, "missing section");
	if (cfg->listener.line == 0) {
		/* No [listener]: every default applies. */
		struct section dflt = {
			.kind = &section_kinds[2], .obj = &cfg->listener, .label = (char *)"listener",
		};

		check_listener(L, &dflt);
	}
	for (s = L->sections; s != NULL; s = s->next)
		s->kind->check(L, s);
	for (s = L->sections; s != NULL; s = s->next)
		if (s->kind->type == S_RECIPE)
			check_recipe_refs(L, s);
	/* After every recipe's own checks: a button names another recipe. */
	for (s = L->sections; s != NULL; s = s->next)
		if (s->kind->type == S_RECIPE)
			resolve_buttons(L, s);
}

/* ---- entry points ------------------------------------------------------- */

static struct config *
finish(struct loader *L, config_error_fn on_error, void *arg)
{
	struct section *s, *next;
	struct config *cfg = L->cfg;
	size_t i;

	if (L->nerrs > 0)
		qsort(L->errs, L->nerrs, sizeof(*L->errs), error_cmp);
	for (i = 0; i < L->nerrs; i++) {
		if (on_error != NULL)
			on_error(arg, L->errs[i].msg);
		free(L->errs[i].msg);
	}
	free(L->errs);
	for (s = L->sections; s != NULL; s = next) {
		next = s->next;
		free(s->label);
		free(s);
	}
	if (L->nerrs > 0) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

static void
loader_init(struct loader *L, const char *file)
{
	memset(L, 0, sizeof(*L));
	L->file = file;
	L->tail = &L->sections;
	L->cfg = xcalloc(1, sizeof(*L->cfg));
	L->cfg->file = xstrdup(file);
}

/* Parse and check; the arrays move into the config either way, for config_free(). */
static void
load(struct loader *L, const char *data, size_t len)
{
	parse_buffer(L, data, len);
	L->cfg->apps = (const struct config_app *const *)L->apps;
	L->cfg->napps = L->napps;
	L->cfg->recipes = (const struct config_recipe *const *)L->recipes;
	L->cfg->nrecipes = L->nrecipes;
	check_all(L);
}

struct config *
config_load_buffer(const char *name, const char *data, size_t len,
    config_error_fn on_error, void *arg)
{
	struct loader L;

	loader_init(&L, name);
	if (len > MAX_FILE)
		err_at(&L, 0, NULL, NULL, "larger than %d bytes", MAX_FILE);
	else
		load(&L, data, len);
	return finish(&L, on_error, arg);
}

struct config *
config_load(const char *path, config_error_fn on_error, void *arg)
{
	struct loader L;
	struct stat st;
	char *data = NULL, ebuf[128];
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd;

	loader_init(&L, path);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		err_at(&L, 0, NULL, NULL, "cannot open: %s", errstr(errno, ebuf, sizeof(ebuf)));
		return finish(&L, on_error, arg);
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		err_at(&L, 0, NULL, NULL, "not a regular file");
		goto out;
	}
	for (;;) {
		if (len == cap) {
			if (cap > MAX_FILE) {
				err_at(&L, 0, NULL, NULL, "larger than %d bytes", MAX_FILE);
				goto out;
			}
			cap = cap ? 2 * cap : 16384;
			/* Not realloc: the old buffer may hold secrets and must be wiped. */
			{
				char *bigger = xmalloc(cap + 1);

				if (len)
					memcpy(bigger, data, len);
				secret_wipe(data, len);
				free(data);
				data = bigger;
			}
		}
		n = read(fd, data + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err_at(&L, 0, NULL, NULL, "cannot read: %s", errstr(errno, ebuf, sizeof(ebuf)));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	load(&L, data, len);
	if (L.secret_line != 0 && (st.st_mode & (S_IRGRP | S_IROTH)))
		err_at(&L, L.secret_line, L.secret_label, L.secret_key,
		    "inline or file: secret in a config file readable by group or others "
		    "(mode %04o): use env:NAME or chmod 600 %s", (unsigned)(st.st_mode & 07777), path);
out:
	close(fd);
	secret_wipe(data, len);
	free(data);
	return finish(&L, on_error, arg);
}

void
config_free(struct config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	free_fields(&section_kinds[0], &cfg->slack);
	free_fields(&section_kinds[1], &cfg->store);
	free_fields(&section_kinds[2], &cfg->listener);
	for (i = 0; i < cfg->napps; i++) {
		struct config_app *a = (struct config_app *)(uintptr_t)cfg->apps[i];

		free_fields(&section_kinds[3], a);
		free_const(a->name);
		free(a);
	}
	for (i = 0; i < cfg->nrecipes; i++) {
		struct config_recipe *r = (struct config_recipe *)(uintptr_t)cfg->recipes[i];

		free_fields(&section_kinds[4], r);
		free_const(r->name);
		free(r);
	}
	free_const(cfg->apps);
	free_const(cfg->recipes);
	free_const(cfg->file);
	free(cfg);
}

const struct config_app *
config_app_find(const struct config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->napps; i++)
		if (strcmp(cfg->apps[i]->name, name) == 0)
			return cfg->apps[i];
	return NULL;
}

const struct config_recipe *
config_recipe_find(const struct config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->nrecipes; i++)
		if (strcmp(cfg->recipes[i]->name, name) == 0)
			return cfg->recipes[i];
	return NULL;
}

const struct config_recipe *
config_recipe_match(const struct config *cfg, const char *const *words, size_t nwords,
    size_t *used)
{
	const struct config_recipe *best = NULL;
	size_t i, j;

	for (i = 0; i < cfg->nrecipes; i++) {
		const struct config_recipe *r = cfg->recipes[i];

		if (r->command.n == 0 || r->command.n > nwords ||
		    (best != NULL && r->command.n <= best->command.n))
			continue;
		for (j = 0; j < r->command.n; j++)
			if (strcasecmp(r->command.words[j], words[j]) != 0)
				break;
		if (j == r->command.n)
			best = r;
	}
	if (used != NULL)
		*used = best != NULL ? best->command.n : 0;
	return best;
}

size_t
config_restart_diff(const struct config *a, const struct config *b, config_diff_fn fn,
    void *arg)
{
	size_t i, k, n = 0;

	for (i = 0; i < NKEYS(section_kinds); i++) {
		const struct section_kind *kind = &section_kinds[i];

		if (kind->type != S_SINGLE)
			continue;
		for (k = 0; k < kind->nkeys; k++) {
			const struct key *key = &kind->keys[k];
			const void *fa = (const char *)a + kind->cfg_off + key->off;
			const void *fb = (const char *)b + kind->cfg_off + key->off;

			if (key->flags & F_RELOADABLE || types[key->type].equal(fa, fb))
				continue;
			if (fn != NULL)
				fn(arg, kind->name, key->name);
			n++;
		}
	}
	return n;
}

static const char *
enum_name(const char *const *names, size_t n, int v)
{
	return v >= 0 && (size_t)v < n ? names[v] : "?";
}

const char *
config_auth_name(int auth)
{
	return enum_name(auth_names, NKEYS(auth_names) - 1, auth);
}

const char *
config_client_auth_name(int client_auth)
{
	return enum_name(client_auth_names, NKEYS(client_auth_names) - 1, client_auth);
}

const char *
config_method_name(int method)
{
	return enum_name(method_names, NKEYS(method_names) - 1, method);
}
