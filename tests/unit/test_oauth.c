/*
 * Unit tests for oauth: the login (begin, start, callback, confirm,
 * sweep), access with refresh (single flight, rotation, invalid_grant, the
 * 401 path), disconnect, the shared slot, instance_url checks, and that no
 * token reaches a page, a log line or the raw LMDB file.
 *
 * The provider is tests/unit/http_stub on 127.0.0.1 (scripted answers,
 * recorded requests); the store is a real LMDB environment in a fresh
 * mkdtemp directory per test (LMDB allows one environment per process:
 * each test closes its own); libsodium is real. Every log line of the
 * whole run goes to a temporary file that the last test searches.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sodium.h>

#include "workbot/config.h"
#include "workbot/http.h"
#include "workbot/log.h"
#include "workbot/oauth.h"
#include "workbot/records.h"
#include "workbot/secret.h"
#include "workbot/vault.h"
#include "http_stub.h"

/* Distinctive values: none may appear in a page, a log line or data.mdb. */
#define AT1	"AT-DISTINCT-0a1b2c3d4e5f"
#define RT1	"RT-DISTINCT-6a7b8c9d0e1f"
#define AT2	"AT-DISTINCT-NEW-99887766"
#define RT2	"RT-DISTINCT-NEW-55443322"
#define CODE	"CODE-DISTINCT-13579bdf"
#define CSECRET	"CS-DISTINCT-client-secret"
#define STATIC	"STATIC-DISTINCT-jira-token"

static const char *const distinct[] = { AT1, RT1, AT2, RT2, CODE, CSECRET, STATIC };

#define NOW ((int64_t)1700000000)
#define PUBLIC "http://127.0.0.1:8085"

static char log_path[] = "/tmp/wb-test-oauth-log-XXXXXX";
static int log_fd = -1;

struct fixture {
	char                 dir[64];
	char                 store[128];
	struct records      *r;
	struct http_stub    *stub;
	struct http_client  *client;
	struct config       *cfg;
	struct oauth        *o;
	int                  describe_calls;
};

/* ---- helpers ---- */

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
cfg_error(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "config: %s\n", msg);
}

static struct config *
make_config(struct fixture *f, const char *public_url)
{
	const char *b = http_stub_base(f->stub);
	char *text;
	struct config *cfg;
	int n;

	n = asprintf(&text,
	    "[slack]\napp_token = env:WB_T_APP\nbot_token = env:WB_T_BOT\n"
	    "[store]\npath = %s\nkey_file = %s/master.key\n"
	    "[listener]\npublic_url = %s\n"
	    "[app sf]\ntitle = Salesforce\nauth = oauth2\nclient_id = cid-123\n"
	    "client_secret = env:WB_T_CS\n"
	    "authorize_url = https://login.example/authorize?existing=1\n"
	    "token_url = %s/token\nrevoke_url = %s/revoke\nuserinfo_url = %s/userinfo\n"
	    "scopes = api refresh_token\napi_url = https://acme.example\nclient_auth = basic\n"
	    "authorize_params = prompt=consent&display=page\n"
	    "issuer = https://login.example\ninstance_hosts = *.my.salesforce.com\n"
	    "[app box]\ntitle = Box\nauth = oauth2\nclient_id = box-id\nclient_secret = env:WB_T_CS\n"
	    "authorize_url = https://account.box.example/authorize\ntoken_url = %s/token\n"
	    "revoke_url = %s/revoke\napi_url = https://api.box.example\nclient_auth = body\n"
	    "[app plain]\nauth = oauth2\nclient_id = p-id\nclient_secret = env:WB_T_CS\n"
	    "authorize_url = https://p.example/authorize\ntoken_url = %s/token\n"
	    "api_url = https://p.example/api\n"
	    "[app jira]\nauth = token\ntoken = env:WB_T_JIRA\napi_url = https://jira.example\n",
	    f->store, f->dir, public_url, b, b, b, b, b, b);
	assert_true(n > 0);
	cfg = config_load_buffer("test.conf", text, strlen(text), cfg_error, NULL);
	free(text);
	assert_non_null(cfg);
	return cfg;
}

static int
describe(void *arg, struct http_client *c, const char *team, const char *user, unsigned timeout_ms,
    struct oauth_slack_user *out)
{
	struct fixture *f = arg;

	(void)c;
	(void)timeout_ms;
	f->describe_calls++;
	if (strcmp(team, "T1") != 0 || strcmp(user, "U1") != 0)
		return -1;
	snprintf(out->real_name, sizeof(out->real_name), "<script>alert(1)</script> Jane Doe");
	snprintf(out->email, sizeof(out->email), "jane@acme.com");
	snprintf(out->team_name, sizeof(out->team_name), "Acme");
	return 0;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[512];
	struct oauth_options opt;

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/wb-oauth-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->store, sizeof(f->store), "%s/store", f->dir);
	snprintf(err, sizeof(err), "%s/master.key", f->dir);
	if (vault_keygen(err, err, sizeof(err)) != 0)
		return -1;
	snprintf(err, sizeof(err), "%s/master.key", f->dir);
	if (records_open(f->store, 1 << 22, err, &f->r, err, sizeof(err)) != 0) {
		fprintf(stderr, "records_open: %s\n", err);
		return -1;
	}
	f->stub = http_stub_start();
	if (f->stub == NULL)
		return -1;
	f->client = http_client_new(NULL);
	f->cfg = make_config(f, PUBLIC);
	memset(&opt, 0, sizeof(opt));
	opt.describe_user = describe;
	opt.describe_arg = f;
	opt.callback_budget_ms = 1500;
	opt.http_timeout_ms = 1500;
	f->o = oauth_new(f->r, &opt);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	oauth_free(f->o);
	config_free(f->cfg);
	http_client_free(f->client);
	http_stub_stop(f->stub);
	records_close(f->r);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void
page_clean(const struct oauth_page *p)
{
	assert_non_null(p->html);
	assert_int_equal(strlen(p->html), p->len);
	assert_non_null(strstr(p->html, "<title>"));
	assert_null(strstr(p->html, "<script"));
	for (size_t i = 0; i < sizeof(distinct) / sizeof(distinct[0]); i++)
		if (strstr(p->html, distinct[i]) != NULL)
			fail_msg("page holds %s", distinct[i]);
}

/* Decode %XX and '+' in place. */
static void
url_decode(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s == '+') {
			*o++ = ' ';
		} else if (*s == '%' && s[1] && s[2]) {
			char hex[3] = { s[1], s[2], 0 };

			*o++ = (char)strtol(hex, NULL, 16);
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* Every value of `name` in a query or form (after '?' if any); returns the count. */
static int
param_all(const char *text, const char *name, char out[][512], int max)
{
	const char *q = strchr(text, '?');
	size_t nlen = strlen(name);
	int n = 0;

	q = q ? q + 1 : text;
	while (*q) {
		size_t len = strcspn(q, "&");

		if (len > nlen && strncmp(q, name, nlen) == 0 && q[nlen] == '=' && n < max) {
			size_t vlen = len - nlen - 1;

			assert_true(vlen < 512);
			memcpy(out[n], q + nlen + 1, vlen);
			out[n][vlen] = '\0';
			url_decode(out[n]);
			n++;
		}
		q += len;
		if (*q == '&')
			q++;
	}
	return n;
}

static const char *
param(const char *text, const char *name, char *buf)
{
	static char vals[4][512];
	int n = param_all(text, name, vals, 4);

	if (n != 1)
		return NULL;
	strcpy(buf, vals[0]);
	return buf;
}

/* A hidden field's value in a page. */
static void
hidden(const char *html, const char *name, char *out, size_t size)
{
	char pat[64];
	const char *p, *e;

	snprintf(pat, sizeof(pat), "name=\"%s\" value=\"", name);
	p = strstr(html, pat);
	assert_non_null(p);
	p += strlen(pat);
	e = strchr(p, '"');
	assert_non_null(e);
	assert_true((size_t)(e - p) < size);
	memcpy(out, p, (size_t)(e - p));
	out[e - p] = '\0';
}

/* "wb_login=VALUE; ..." -> "wb_login=VALUE" (a Cookie header). */
static void
cookie_header(const struct oauth_page *p, char *out, size_t size)
{
	const char *sc = secret_reveal(p->set_cookie);
	size_t n = strcspn(sc, ";");

	assert_true(n < size);
	memcpy(out, sc, n);
	out[n] = '\0';
}

static void
stub_token(struct fixture *f, const char *access, const char *refresh, const char *extra)
{
	char body[1024];

	snprintf(body, sizeof(body),
	    "{\"access_token\":\"%s\"%s%s%s,\"token_type\":\"Bearer\",\"scope\":\"api refresh_token\"%s}",
	    access, refresh ? ",\"refresh_token\":\"" : "", refresh ? refresh : "", refresh ? "\"" : "",
	    extra ? extra : "");
	http_stub_answer(f->stub, 200, "Content-Type: application/json\r\n", body);
}

struct login {
	char cookie[256];	/* Cookie header */
	char state[512];
	char id[64];		/* waiting id from the confirm page */
	char form_token[128];
	char link[OAUTH_LINK_MAX];
};

static void
begin_and_start(struct fixture *f, const char *app, bool shared, struct login *L)
{
	struct oauth_page p;
	char err[256];
	const char *id;

	if (shared)
		assert_int_equal(oauth_begin_shared(f->o, f->cfg, "T1", app, NOW, L->link,
		    sizeof(L->link), err, sizeof(err)), 0);
	else
		assert_int_equal(oauth_begin(f->o, f->cfg, "T1", "U1", app, "resume-me", 9, "C1:ts", 5,
		    NOW, L->link, sizeof(L->link), err, sizeof(err)), 0);
	id = strrchr(L->link, '/') + 1;
	assert_int_equal(oauth_start(f->o, f->cfg, id, NOW + 1, &p), 0);
	assert_int_equal(p.status, 302);
	cookie_header(&p, L->cookie, sizeof(L->cookie));
	assert_non_null(param(secret_reveal(p.location), "state", L->state));
	page_clean(&p);
	oauth_page_clear(&p);
}

/* begin -> start -> callback with a scripted provider: the confirm page. */
static void
login_to_confirm(struct fixture *f, const char *app, bool shared, struct login *L,
    struct oauth_page *page)
{
	struct oauth_callback_params q = { 0 };

	begin_and_start(f, app, shared, L);
	stub_token(f, AT1, RT1, ",\"expires_in\":3600,\"instance_url\":\"https://acme.my.salesforce.com/\"");
	if (strcmp(app, "sf") == 0)
		http_stub_answer(f->stub, 200, "Content-Type: application/json\r\n",
		    "{\"sub\":\"005xx\",\"email\":\"jane@acme.com\",\"name\":\"Jane\"}");
	q.code = CODE;
	q.state = L->state;
	q.iss = strcmp(app, "sf") == 0 ? "https://login.example" : NULL;
	assert_int_equal(oauth_callback(f->o, f->cfg, f->client, L->cookie, &q, NOW + 5, page), 0);
	assert_int_equal(page->status, 200);
	page_clean(page);
	hidden(page->html, "id", L->id, sizeof(L->id));
	hidden(page->html, "form_token", L->form_token, sizeof(L->form_token));
}

static void
confirm(struct fixture *f, struct login *L, const char *action, int64_t now, int want_rc,
    struct oauth_page *p, struct oauth_confirmed *done)
{
	char body[512];

	snprintf(body, sizeof(body), "id=%s&form_token=%s&action=%s", L->id, L->form_token, action);
	assert_int_equal(oauth_confirm(f->o, f->cfg, f->client, L->cookie, body, strlen(body), now, p,
	    done), want_rc);
	page_clean(p);
}

static size_t
conn_count(struct fixture *f)
{
	struct records_conn *list = NULL;
	size_t n = 0;
	char err[256];

	assert_int_equal(records_conn_list(f->r, NULL, &list, &n, err, sizeof(err)), 0);
	free(list);
	return n;
}

static void
put_conn(struct fixture *f, const char *user, const char *app, const char *access,
    const char *refresh, int64_t expires_at, const char *instance)
{
	struct records_tokens t = { 0 };
	char err[256];

	t.access_token = secret_from_str(access);
	t.refresh_token = refresh ? secret_from_str(refresh) : NULL;
	t.expires_at = expires_at;
	t.instance_url = instance ? strdup(instance) : NULL;
	assert_int_equal(records_conn_put(f->r, "T1", user, app, "jane@acme.com", &t, NOW - 100, 0,
	    err, sizeof(err)), 1);
	records_tokens_clear(&t);
}

static void
stored_tokens(struct fixture *f, const char *user, const char *app, struct records_conn *h,
    struct records_tokens *t)
{
	char err[256];

	memset(t, 0, sizeof(*t));
	assert_int_equal(records_conn_get(f->r, "T1", user, app, h, t, err, sizeof(err)), 1);
}

static size_t
audit_count(struct fixture *f, enum records_audit_action a)
{
	struct records_audit *list = NULL;
	size_t n = 0;
	char err[256];

	assert_int_equal(records_audit_list(f->r, NULL, a, 0, &list, &n, err, sizeof(err)), 0);
	free(list);
	return n;
}

static bool
file_contains(const char *path, const char *needle)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long len;
	bool found;

	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	len = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = malloc((size_t)len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, fp), (size_t)len);
	fclose(fp);
	found = memmem(buf, (size_t)len, needle, strlen(needle)) != NULL;
	free(buf);
	return found;
}

/* ---- tests ---- */

static void
test_html_escape(void **state)
{
	char buf[64];

	(void)state;
	assert_int_equal(oauth_html_escape(buf, sizeof(buf), "<a href=\"x\">'&'</a>"), 53);
	assert_string_equal(buf, "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
	/* Never a cut entity. */
	assert_int_equal(oauth_html_escape(buf, 5, "a<b"), 6);
	assert_string_equal(buf, "a");
	assert_int_equal(oauth_html_escape(buf, sizeof(buf), NULL), 0);
	assert_string_equal(buf, "");
}

/* The pending LOGIN record's verifier (tag 6 in oauth.c's body encoding). */
static void
read_verifier(struct fixture *f, const char *id, char *out, size_t size)
{
	struct secret *body = NULL;
	const unsigned char *p;
	size_t len, off = 5;
	char err[256];

	assert_int_equal(records_pending_get(f->r, id, NOW, &body, NULL, err, sizeof(err)),
	    RECORDS_PENDING_FOUND);
	p = (const unsigned char *)secret_reveal(body);
	len = secret_len(body);
	out[0] = '\0';
	while (off + 5 <= len) {
		size_t n = ((size_t)p[off + 1] << 24) | ((size_t)p[off + 2] << 16) |
		    ((size_t)p[off + 3] << 8) | p[off + 4];

		if (p[off] == 6) {
			assert_true(n <= size);
			memcpy(out, p + off + 5, n);
		}
		off += 5 + n;
	}
	secret_free(body);
	assert_true(out[0] != '\0');
}

static void
test_begin_start(void **state)
{
	struct fixture *f = *state;
	struct oauth_page p;
	char link[OAUTH_LINK_MAX], err[256], v[512], verifier[128], sc[512];
	char vals[4][512];
	unsigned char hash[32];
	char challenge[64];
	const char *id, *loc;

	assert_int_equal(oauth_begin(f->o, f->cfg, "T1", "U1", "sf", "cmd", 3, "C1", 2, NOW, link,
	    sizeof(link), err, sizeof(err)), 0);
	assert_int_equal(strncmp(link, PUBLIC "/oauth/start/", strlen(PUBLIC "/oauth/start/")), 0);
	id = strrchr(link, '/') + 1;
	assert_int_equal(strlen(id), 22);

	/* Link previews: five fetches, each one still a working redirect. */
	for (int i = 0; i < 5; i++) {
		assert_int_equal(oauth_start(f->o, f->cfg, id, NOW + i, &p), 0);
		assert_int_equal(p.status, 302);
		page_clean(&p);
		if (i < 4)
			oauth_page_clear(&p);
	}
	loc = secret_reveal(p.location);
	assert_int_equal(strncmp(loc, "https://login.example/authorize?", 32), 0);
	assert_string_equal(param(loc, "existing", v), "1");
	assert_string_equal(param(loc, "response_type", v), "code");
	assert_string_equal(param(loc, "client_id", v), "cid-123");
	assert_string_equal(param(loc, "redirect_uri", v), PUBLIC "/oauth/callback");
	assert_string_equal(param(loc, "scope", v), "api refresh_token");
	assert_string_equal(param(loc, "code_challenge_method", v), "S256");
	assert_string_equal(param(loc, "prompt", v), "consent");
	assert_string_equal(param(loc, "display", v), "page");
	assert_non_null(param(loc, "state", v));
	assert_true(strlen(v) >= 22);
	assert_int_equal(strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
	    strlen(v));
	read_verifier(f, id, verifier, sizeof(verifier));
	assert_true(strlen(verifier) >= 43);
	assert_non_null(param(loc, "code_challenge", v));
	crypto_hash_sha256(hash, (const unsigned char *)verifier, strlen(verifier));
	sodium_bin2base64(challenge, sizeof(challenge), hash, sizeof(hash),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	assert_string_equal(v, challenge);
	/* The state is not the id. */
	assert_null(strstr(loc, id));

	/* Cookie: id.secret, attributes, no Secure over http. */
	snprintf(sc, sizeof(sc), "%s", secret_reveal(p.set_cookie));
	assert_int_equal(strncmp(sc, "wb_login=", 9), 0);
	assert_int_equal(strncmp(sc + 9, id, 22), 0);
	assert_int_equal(sc[9 + 22], '.');
	assert_int_equal(strcspn(sc + 9 + 23, ";"), 43);
	assert_non_null(strstr(sc, "; HttpOnly"));
	assert_non_null(strstr(sc, "; SameSite=Lax"));
	assert_non_null(strstr(sc, "; Path=/oauth/"));
	assert_non_null(strstr(sc, "; Max-Age=600"));
	assert_null(strstr(sc, "Secure"));
	oauth_page_clear(&p);

	/* Unknown, malformed and expired ids: failure pages. */
	assert_int_equal(oauth_start(f->o, f->cfg, "AAAAAAAAAAAAAAAAAAAAAA", NOW, &p), -1);
	assert_int_equal(p.status, 404);
	assert_null(p.location);
	assert_null(p.set_cookie);
	page_clean(&p);
	oauth_page_clear(&p);
	assert_int_equal(oauth_start(f->o, f->cfg, "../../etc", NOW, &p), -1);
	assert_int_equal(p.status, 404);
	oauth_page_clear(&p);
	assert_int_equal(oauth_start(f->o, f->cfg, id, NOW + OAUTH_LOGIN_TTL, &p), -1);
	assert_int_equal(p.status, 410);
	page_clean(&p);
	oauth_page_clear(&p);

	/* authorize_params can never override ours, even past config's own check. */
	{
		static const struct config_kv evil[] = {
			{ "state", "evil" }, { "redirect_uri", "https://evil.example/" },
			{ "SCOPE", "all" }, { "code_challenge_method", "plain" }, { "extra", "a b&c" },
		};
		struct config_app *app = (struct config_app *)config_app_find(f->cfg, "sf");
		struct config_kvs saved = app->authorize_params;

		app->authorize_params.v = evil;
		app->authorize_params.n = 5;
		assert_int_equal(oauth_begin(f->o, f->cfg, "T1", "U1", "sf", NULL, 0, NULL, 0, NOW, link,
		    sizeof(link), err, sizeof(err)), 0);
		assert_int_equal(oauth_start(f->o, f->cfg, strrchr(link, '/') + 1, NOW, &p), 0);
		loc = secret_reveal(p.location);
		assert_int_equal(param_all(loc, "state", vals, 4), 1);
		assert_string_not_equal(vals[0], "evil");
		assert_int_equal(param_all(loc, "redirect_uri", vals, 4), 1);
		assert_string_equal(vals[0], PUBLIC "/oauth/callback");
		assert_int_equal(param_all(loc, "SCOPE", vals, 4), 0);
		assert_int_equal(param_all(loc, "code_challenge_method", vals, 4), 1);
		assert_string_equal(vals[0], "S256");
		assert_string_equal(param(loc, "extra", v), "a b&c");
		app->authorize_params = saved;
		oauth_page_clear(&p);
	}

	/* Not an oauth2 app, over-long resume: refused at begin. */
	assert_int_equal(oauth_begin(f->o, f->cfg, "T1", "U1", "jira", NULL, 0, NULL, 0, NOW, link,
	    sizeof(link), err, sizeof(err)), -1);
	{
		static char big[OAUTH_RESUME_MAX + 1];

		assert_int_equal(oauth_begin(f->o, f->cfg, "T1", "U1", "sf", big, sizeof(big), NULL, 0,
		    NOW, link, sizeof(link), err, sizeof(err)), -1);
	}
}

static void
test_cookie_https_prefix(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = make_config(f, "https://bot.acme.example/workbot");
	struct oauth_page p;
	char link[OAUTH_LINK_MAX], err[256], v[512];
	const char *sc;

	assert_int_equal(oauth_begin(f->o, cfg, "T1", "U1", "sf", NULL, 0, NULL, 0, NOW, link,
	    sizeof(link), err, sizeof(err)), 0);
	assert_int_equal(strncmp(link, "https://bot.acme.example/workbot/oauth/start/", 45), 0);
	assert_int_equal(oauth_start(f->o, cfg, strrchr(link, '/') + 1, NOW, &p), 0);
	sc = secret_reveal(p.set_cookie);
	assert_non_null(strstr(sc, "; Secure"));
	assert_non_null(strstr(sc, "; Path=/workbot/oauth/"));
	assert_string_equal(param(secret_reveal(p.location), "redirect_uri", v),
	    "https://bot.acme.example/workbot/oauth/callback");
	oauth_page_clear(&p);
	config_free(cfg);
}

static void
test_callback_happy(void **state)
{
	struct fixture *f = *state;
	struct oauth_page p;
	struct login L;
	const struct http_stub_request *tr, *ur;
	char v[512], hdr[512], expect[512];

	login_to_confirm(f, "sf", false, &L, &p);
	assert_non_null(strstr(p.html, "Connect Salesforce account <strong>jane@acme.com</strong> to "
	    "Slack user <strong>&lt;script&gt;alert(1)&lt;/script&gt; Jane Doe (jane@acme.com)"
	    "</strong> in <strong>Acme</strong>?"));
	assert_non_null(strstr(p.html, "<form method=\"post\" action=\"" PUBLIC "/oauth/confirm\">"));
	assert_non_null(strstr(p.html, "value=\"connect\""));
	assert_non_null(strstr(p.html, "value=\"cancel\""));
	assert_int_equal(strlen(L.id), 22);
	assert_int_equal(strlen(L.form_token), 43);
	/* The cookie is kept alive for the confirm window. */
	assert_non_null(p.set_cookie);
	assert_non_null(strstr(secret_reveal(p.set_cookie), "; Max-Age=300"));
	oauth_page_clear(&p);

	/* The exchange: at the pinned token_url, the form, Basic auth only. */
	assert_int_equal(http_stub_count(f->stub), 2);
	tr = http_stub_request(f->stub, 0);
	assert_string_equal(tr->method, "POST");
	assert_string_equal(tr->target, "/token");
	assert_string_equal(param(tr->body, "grant_type", v), "authorization_code");
	assert_string_equal(param(tr->body, "code", v), CODE);
	assert_string_equal(param(tr->body, "redirect_uri", v), PUBLIC "/oauth/callback");
	assert_int_equal(strlen(param(tr->body, "code_verifier", v)), 43);
	assert_string_equal(param(tr->body, "client_id", v), "cid-123");
	assert_null(strstr(tr->body, "client_secret"));
	assert_null(strstr(tr->body, CSECRET));
	{
		char raw[128], b64[256];

		snprintf(raw, sizeof(raw), "cid-123:%s", CSECRET);
		sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)raw, strlen(raw),
		    sodium_base64_VARIANT_ORIGINAL);
		snprintf(expect, sizeof(expect), "Basic %s", b64);
	}
	assert_string_equal(http_stub_header(tr, "Authorization", hdr, sizeof(hdr)), expect);
	ur = http_stub_request(f->stub, 1);
	assert_string_equal(ur->method, "GET");
	assert_string_equal(ur->target, "/userinfo");
	assert_string_equal(http_stub_header(ur, "Authorization", hdr, sizeof(hdr)), "Bearer " AT1);
	assert_int_equal(f->describe_calls, 1);
	/* Nothing is a connection before Connect. */
	assert_int_equal(conn_count(f), 0);
}

static void
callback_fails(struct fixture *f, const char *cookie, const char *state, const char *code,
    const char *error, int64_t now, int status, const char *text)
{
	struct oauth_callback_params q = { .code = code, .state = state, .error = error };
	struct oauth_page p;

	assert_int_equal(oauth_callback(f->o, f->cfg, f->client, cookie, &q, now, &p), -1);
	assert_int_equal(p.status, status);
	page_clean(&p);
	if (strstr(p.html, text) == NULL)
		fail_msg("page lacks \"%s\": %s", text, p.html);
	assert_null(p.location);
	oauth_page_clear(&p);
	assert_int_equal(conn_count(f), 0);
}

static void
test_callback_failures(void **state)
{
	struct fixture *f = *state;
	struct login L;
	char bad[256];
	struct oauth_page p;

	/* No cookie: nothing to go on, nothing sent to the provider. */
	begin_and_start(f, "sf", false, &L);
	callback_fails(f, NULL, L.state, CODE, NULL, NOW + 5, 400, "login cookie is missing");
	callback_fails(f, "other=1; x=2", L.state, CODE, NULL, NOW + 5, 400, "login cookie is missing");
	/* A wrong cookie secret: refused, and the login is used up. */
	snprintf(bad, sizeof(bad), "%s", L.cookie);
	bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == 'A' ? 'B' : 'A';
	callback_fails(f, bad, L.state, CODE, NULL, NOW + 5, 403, "did not match");
	callback_fails(f, L.cookie, L.state, CODE, NULL, NOW + 5, 400, "already used");

	/* A wrong state with the right cookie. */
	begin_and_start(f, "sf", false, &L);
	callback_fails(f, L.cookie, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", CODE, NULL, NOW + 5,
	    403, "did not match");
	/* No state at all. */
	begin_and_start(f, "sf", false, &L);
	callback_fails(f, L.cookie, NULL, CODE, NULL, NOW + 5, 403, "did not match");

	/* Expired: 10 minutes after begin. */
	begin_and_start(f, "sf", false, &L);
	callback_fails(f, L.cookie, L.state, CODE, NULL, NOW + OAUTH_LOGIN_TTL, 410, "expired");
	/* Unknown id in the cookie. */
	callback_fails(f, "wb_login=AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	    "x", CODE, NULL, NOW + 5, 400, "already used");
	/* Malformed cookie. */
	callback_fails(f, "wb_login=garbage", "x", CODE, NULL, NOW + 5, 403, "did not match");

	/* access_denied and another provider error (its text never shown unescaped). */
	begin_and_start(f, "sf", false, &L);
	callback_fails(f, L.cookie, L.state, NULL, "access_denied", NOW + 5, 403,
	    "Access was declined at Salesforce");
	begin_and_start(f, "sf", false, &L);
	callback_fails(f, L.cookie, L.state, NULL, "<b>server_error</b>", NOW + 5, 400,
	    "Salesforce refused the login");
	assert_int_equal(http_stub_count(f->stub), 0);

	/* Replay of a callback that worked. */
	login_to_confirm(f, "sf", false, &L, &p);
	oauth_page_clear(&p);
	callback_fails(f, L.cookie, L.state, CODE, NULL, NOW + 6, 400, "already used");
	assert_int_equal(http_stub_count(f->stub), 2);

	/* iss that is not the configured issuer. */
	begin_and_start(f, "sf", false, &L);
	{
		struct oauth_callback_params q = { .code = CODE, .state = L.state,
		    .iss = "https://evil.example" };

		assert_int_equal(oauth_callback(f->o, f->cfg, f->client, L.cookie, &q, NOW + 5, &p), -1);
		assert_int_equal(p.status, 400);
		assert_non_null(strstr(p.html, "expected Salesforce login server"));
		oauth_page_clear(&p);
	}
	assert_int_equal(http_stub_count(f->stub), 2);
}

static void
test_exchange_failures(void **state)
{
	struct fixture *f = *state;
	struct login L;
	struct oauth_callback_params q = { .code = CODE };
	struct oauth_page p;
	struct http_stub_response slow = { .status = 200, .body = "{\"access_token\":\"" AT1 "\"}",
	    .delay_ms = 4000 };
	struct timespec t0, t1;
	double secs;

	/* The token endpoint answers 500. */
	begin_and_start(f, "sf", false, &L);
	http_stub_answer(f->stub, 500, NULL, "{\"error\":\"server_error\",\"secret\":\"" AT1 "\"}");
	q.state = L.state;
	assert_int_equal(oauth_callback(f->o, f->cfg, f->client, L.cookie, &q, NOW + 5, &p), -1);
	assert_int_equal(p.status, 400);
	assert_non_null(strstr(p.html, "token exchange failed"));
	page_clean(&p);
	oauth_page_clear(&p);

	/* invalid_grant (a PKCE mismatch at the provider looks like this). */
	begin_and_start(f, "sf", false, &L);
	http_stub_answer(f->stub, 400, NULL, "{\"error\":\"invalid_grant\"}");
	q.state = L.state;
	assert_int_equal(oauth_callback(f->o, f->cfg, f->client, L.cookie, &q, NOW + 5, &p), -1);
	assert_int_equal(p.status, 400);
	oauth_page_clear(&p);

	/* 200 without an access token. */
	begin_and_start(f, "sf", false, &L);
	http_stub_answer(f->stub, 200, NULL, "{\"token_type\":\"Bearer\"}");
	q.state = L.state;
	assert_int_equal(oauth_callback(f->o, f->cfg, f->client, L.cookie, &q, NOW + 5, &p), -1);
	oauth_page_clear(&p);

	/* A token endpoint that hangs: the page comes within the budget (1.5 s here). */
	begin_and_start(f, "sf", false, &L);
	http_stub_push(f->stub, &slow);
	q.state = L.state;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(oauth_callback(f->o, f->cfg, f->client, L.cookie, &q, NOW + 5, &p), -1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(secs < 2.5);
	assert_int_equal(p.status, 400);
	assert_non_null(strstr(p.html, "did not answer in time"));
	page_clean(&p);
	oauth_page_clear(&p);
	assert_int_equal(conn_count(f), 0);
}

static void
test_client_auth_body(void **state)
{
	struct fixture *f = *state;
	struct login L;
	struct oauth_page p;
	const struct http_stub_request *tr;
	char v[512], hdr[256];

	login_to_confirm(f, "box", false, &L, &p);
	oauth_page_clear(&p);
	/* No userinfo_url for box: one request, the exchange. */
	assert_int_equal(http_stub_count(f->stub), 1);
	tr = http_stub_request(f->stub, 0);
	assert_string_equal(param(tr->body, "client_id", v), "box-id");
	assert_string_equal(param(tr->body, "client_secret", v), CSECRET);
	assert_null(http_stub_header(tr, "Authorization", hdr, sizeof(hdr)));
	/* No account label: the page says the provider did not tell. */
	(void)p;
}

static void
test_confirm_connect(void **state)
{
	struct fixture *f = *state;
	struct login L;
	struct oauth_page p;
	struct oauth_confirmed done;
	struct records_conn h;
	struct records_tokens t;
	char path[256];

	login_to_confirm(f, "sf", false, &L, &p);
	oauth_page_clear(&p);
	confirm(f, &L, "connect", NOW + 30, 0, &p, &done);
	assert_int_equal(p.status, 200);
	assert_non_null(strstr(p.html, "Connected \xe2\x80\x94 you can return to Slack"));
	assert_non_null(strstr(p.html, "jane@acme.com"));
	assert_non_null(strstr(secret_reveal(p.set_cookie), "Max-Age=0"));
	oauth_page_clear(&p);
	assert_int_equal(done.action, OAUTH_CONFIRM_CONNECTED);
	assert_false(done.shared);
	assert_string_equal(done.team, "T1");
	assert_string_equal(done.user, "U1");
	assert_string_equal(done.app, "sf");
	assert_string_equal(done.account, "jane@acme.com");
	assert_int_equal(secret_len(done.resume), 9);
	assert_memory_equal(secret_reveal(done.resume), "resume-me", 9);
	assert_memory_equal(secret_reveal(done.answer_to), "C1:ts", 5);
	oauth_confirmed_clear(&done);

	stored_tokens(f, "U1", "sf", &h, &t);
	assert_string_equal(secret_reveal(t.access_token), AT1);
	assert_string_equal(secret_reveal(t.refresh_token), RT1);
	assert_int_equal(t.expires_at, NOW + 5 + 3600);
	assert_string_equal(t.instance_url, "https://acme.my.salesforce.com");
	assert_string_equal(h.account, "jane@acme.com");
	assert_int_equal(h.state, RECORDS_ACTIVE);
	records_tokens_clear(&t);
	assert_int_equal(audit_count(f, RECORDS_AUDIT_CONNECTED), 1);

	/* Replayed: refused, nothing changes. */
	confirm(f, &L, "connect", NOW + 31, -1, &p, &done);
	assert_int_equal(p.status, 410);
	assert_int_equal(done.action, OAUTH_CONFIRM_NONE);
	oauth_page_clear(&p);
	assert_int_equal(conn_count(f), 1);

	/* Sealed: the raw LMDB file holds no token bytes. */
	snprintf(path, sizeof(path), "%s/data.mdb", f->store);
	for (size_t i = 0; i < sizeof(distinct) / sizeof(distinct[0]); i++)
		assert_false(file_contains(path, distinct[i]));
}

static void
test_confirm_cancel(void **state)
{
	struct fixture *f = *state;
	struct login L;
	struct oauth_page p;
	struct oauth_confirmed done;
	const struct http_stub_request *rr;
	char v[512], hdr[256];

	login_to_confirm(f, "sf", false, &L, &p);
	oauth_page_clear(&p);
	http_stub_answer(f->stub, 200, NULL, NULL);
	confirm(f, &L, "cancel", NOW + 30, 0, &p, &done);
	assert_int_equal(p.status, 200);
	assert_non_null(strstr(p.html, "Cancelled \xe2\x80\x94 nothing was stored"));
	oauth_page_clear(&p);
	assert_int_equal(done.action, OAUTH_CONFIRM_CANCELLED);
	oauth_confirmed_clear(&done);
	assert_int_equal(conn_count(f), 0);
	assert_int_equal(http_stub_count(f->stub), 3);
	rr = http_stub_request(f->stub, 2);
	assert_string_equal(rr->target, "/revoke");
	assert_string_equal(param(rr->body, "token", v), RT1);
	assert_string_equal(param(rr->body, "token_type_hint", v), "refresh_token");
	assert_non_null(http_stub_header(rr, "Authorization", hdr, sizeof(hdr)));
	assert_int_equal(strncmp(hdr, "Basic ", 6), 0);
}

static void
test_confirm_forged(void **state)
{
	struct fixture *f = *state;
	struct login L;
	struct oauth_page p;
	struct oauth_confirmed done;
	char real[128], body[512];

	login_to_confirm(f, "sf", false, &L, &p);
	oauth_page_clear(&p);

	/* No cookie (a cross-site POST): refused, the record is not touched. */
	snprintf(body, sizeof(body), "id=%s&form_token=%s&action=connect", L.id, L.form_token);
	assert_int_equal(oauth_confirm(f->o, f->cfg, f->client, NULL, body, strlen(body), NOW + 30,
	    &p, &done), -1);
	assert_int_equal(p.status, 403);
	oauth_page_clear(&p);
	/* Malformed form: refused, record kept. */
	assert_int_equal(oauth_confirm(f->o, f->cfg, f->client, L.cookie, "id=1&id=2", 9, NOW + 30,
	    &p, &done), -1);
	assert_int_equal(p.status, 400);
	oauth_page_clear(&p);

	/* A forged form token: refused, the tokens revoked and forgotten. */
	snprintf(real, sizeof(real), "%s", L.form_token);
	L.form_token[0] = L.form_token[0] == 'A' ? 'B' : 'A';
	http_stub_answer(f->stub, 200, NULL, NULL);
	confirm(f, &L, "connect", NOW + 30, -1, &p, &done);
	assert_int_equal(p.status, 403);
	assert_int_equal(done.action, OAUTH_CONFIRM_NONE);
	oauth_page_clear(&p);
	assert_int_equal(http_stub_count(f->stub), 3);
	assert_string_equal(http_stub_request(f->stub, 2)->target, "/revoke");
	/* Then the real one: used up already. */
	snprintf(L.form_token, sizeof(L.form_token), "%s", real);
	confirm(f, &L, "connect", NOW + 31, -1, &p, &done);
	assert_int_equal(p.status, 410);
	oauth_page_clear(&p);
	assert_int_equal(conn_count(f), 0);

	/* A login id posted as a confirmation: not one, and left alone. */
	{
		struct login L2;

		begin_and_start(f, "sf", false, &L2);
		snprintf(L2.id, sizeof(L2.id), "%.22s", strchr(L2.cookie, '=') + 1);
		snprintf(L2.form_token, sizeof(L2.form_token), "x");
		confirm(f, &L2, "connect", NOW + 30, -1, &p, &done);
		assert_int_equal(p.status, 410);
		oauth_page_clear(&p);
	}
}

static void
test_sweep(void **state)
{
	struct fixture *f = *state;
	struct login L;
	struct oauth_page p;
	struct oauth_confirmed done;
	char err[256];
	size_t revoked = 99;

	login_to_confirm(f, "sf", false, &L, &p);
	oauth_page_clear(&p);
	/* Before the 5 minutes: nothing to do. */
	assert_int_equal(oauth_sweep(f->o, f->cfg, f->client, NOW + 60, &revoked, err, sizeof(err)), 0);
	assert_int_equal(revoked, 0);
	assert_int_equal(http_stub_count(f->stub), 2);
	/* After: revoked at the provider and forgotten. */
	http_stub_answer(f->stub, 200, NULL, NULL);
	assert_int_equal(oauth_sweep(f->o, f->cfg, f->client, NOW + 5 + OAUTH_CONFIRM_TTL, &revoked,
	    err, sizeof(err)), 0);
	assert_int_equal(revoked, 1);
	assert_int_equal(http_stub_count(f->stub), 3);
	assert_string_equal(http_stub_request(f->stub, 2)->target, "/revoke");
	/* A late Connect finds nothing. */
	confirm(f, &L, "connect", NOW + 5 + OAUTH_CONFIRM_TTL + 1, -1, &p, &done);
	assert_int_equal(p.status, 410);
	oauth_page_clear(&p);
	assert_int_equal(conn_count(f), 0);

	/* A confirm that arrives after expiry but before the sweep leaves the record to it. */
	login_to_confirm(f, "sf", false, &L, &p);
	oauth_page_clear(&p);
	confirm(f, &L, "connect", NOW + 5 + OAUTH_CONFIRM_TTL, -1, &p, &done);
	assert_int_equal(p.status, 410);
	oauth_page_clear(&p);
	http_stub_answer(f->stub, 200, NULL, NULL);
	assert_int_equal(oauth_sweep(f->o, f->cfg, f->client, NOW + 5 + OAUTH_CONFIRM_TTL, &revoked,
	    err, sizeof(err)), 0);
	assert_int_equal(revoked, 1);
	assert_string_equal(http_stub_request(f->stub, http_stub_count(f->stub) - 1)->target, "/revoke");
}

static void
test_access_fresh_and_refresh(void **state)
{
	struct fixture *f = *state;
	struct oauth_access a;
	struct records_conn h;
	struct records_tokens t;
	char err[256], v[512];
	const struct http_stub_request *rq;

	/* Fresh: no request, instance_url is the base. */
	put_conn(f, "U1", "sf", AT1, RT1, NOW + 3600, "https://acme.my.salesforce.com");
	assert_int_equal(oauth_access(f->o, f->cfg, f->client, "T1", "U1", "sf", NOW, &a, err,
	    sizeof(err)), OAUTH_OK);
	assert_string_equal(secret_reveal(a.token), AT1);
	assert_string_equal(a.api_url, "https://acme.my.salesforce.com");
	assert_string_equal(a.account, "jane@acme.com");
	oauth_access_clear(&a);
	assert_int_equal(http_stub_count(f->stub), 0);

	/* Within 5 minutes of expiry: refreshed first; rotated refresh token kept. */
	stub_token(f, AT2, RT2, ",\"expires_in\":\"7200\"");
	assert_int_equal(oauth_access(f->o, f->cfg, f->client, "T1", "U1", "sf", NOW + 3600 - 299, &a,
	    err, sizeof(err)), OAUTH_OK);
	assert_string_equal(secret_reveal(a.token), AT2);
	assert_string_equal(a.api_url, "https://acme.my.salesforce.com");
	oauth_access_clear(&a);
	assert_int_equal(http_stub_count(f->stub), 1);
	rq = http_stub_request(f->stub, 0);
	assert_string_equal(param(rq->body, "grant_type", v), "refresh_token");
	assert_string_equal(param(rq->body, "refresh_token", v), RT1);
	assert_string_equal(param(rq->body, "client_id", v), "cid-123");
	stored_tokens(f, "U1", "sf", &h, &t);
	assert_string_equal(secret_reveal(t.refresh_token), RT2);
	assert_int_equal(t.expires_at, NOW + 3600 - 299 + 7200);
	records_tokens_clear(&t);
	assert_int_equal(audit_count(f, RECORDS_AUDIT_REFRESHED), 1);

	/* An answer without refresh_token keeps the stored one. */
	stub_token(f, AT1, NULL, ",\"expires_in\":3600");
	assert_int_equal(oauth_access(f->o, f->cfg, f->client, "T1", "U1", "sf", NOW + 20000, &a,
	    err, sizeof(err)), OAUTH_OK);
	assert_string_equal(secret_reveal(a.token), AT1);
	oauth_access_clear(&a);
	stored_tokens(f, "U1", "sf", &h, &t);
	assert_string_equal(secret_reveal(t.refresh_token), RT2);
	assert_string_equal(secret_reveal(t.access_token), AT1);
	records_tokens_clear(&t);

	/* A refresh that fails for another reason: error, record kept. */
	http_stub_answer(f->stub, 503, NULL, "busy");
	assert_int_equal(oauth_access(f->o, f->cfg, f->client, "T1", "U1", "sf", NOW + 30000, &a,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "503"));
	assert_null(a.token);
	assert_int_equal(conn_count(f), 1);

	/* No connection: needs login. */
	assert_int_equal(oauth_access(f->o, f->cfg, f->client, "T1", "U2", "sf", NOW, &a, err,
	    sizeof(err)), OAUTH_NEEDS_LOGIN);
}

static void
test_invalid_grant(void **state)
{
	struct fixture *f = *state;
	struct oauth_access a;
	struct records_conn h;
	struct records_tokens t;
	char err[256];

	put_conn(f, "U1", "sf", AT1, RT1, NOW + 10, NULL);
	http_stub_answer(f->stub, 400, NULL, "{\"error\":\"invalid_grant\",\"error_description\":\"x\"}");
	assert_int_equal(oauth_access(f->o, f->cfg, f->client, "T1", "U1", "sf", NOW, &a, err,
	    sizeof(err)), OAUTH_NEEDS_LOGIN);
	stored_tokens(f, "U1", "sf", &h, &t);
	assert_int_equal(h.state, RECORDS_EXPIRED);
	assert_string_equal(h.account, "jane@acme.com");
	records_tokens_clear(&t);
	assert_int_equal(audit_count(f, RECORDS_AUDIT_EXPIRED), 1);
	/* Expired: no more requests. */
	assert_int_equal(oauth_access(f->o, f->cfg, f->client, "T1", "U1", "sf", NOW, &a, err,
	    sizeof(err)), OAUTH_NEEDS_LOGIN);
	assert_int_equal(http_stub_count(f->stub), 1);

	/* No refresh token and expired: needs login too. */
	put_conn(f, "U3", "sf", AT1, NULL, NOW - 1, NULL);
	assert_int_equal(oauth_access(f->o, f->cfg, f->client, "T1", "U3", "sf", NOW, &a, err,
	    sizeof(err)), OAUTH_NEEDS_LOGIN);
	/* No refresh token but still valid (inside the margin): used as is. */
	put_conn(f, "U4", "sf", AT1, NULL, NOW + 100, NULL);
	assert_int_equal(oauth_access(f->o, f->cfg, f->client, "T1", "U4", "sf", NOW, &a, err,
	    sizeof(err)), OAUTH_OK);
	oauth_access_clear(&a);
	assert_int_equal(http_stub_count(f->stub), 1);
}

struct flight {
	struct fixture *f;
	pthread_barrier_t *bar;
	char token[64];
	int rc;
};

static void *
flight_main(void *p)
{
	struct flight *fl = p;
	struct http_client *c = http_client_new(NULL);
	struct oauth_access a;
	char err[256];

	pthread_barrier_wait(fl->bar);
	fl->rc = oauth_access(fl->f->o, fl->f->cfg, c, "T1", "U1", "sf", NOW, &a, err, sizeof(err));
	if (fl->rc == OAUTH_OK)
		snprintf(fl->token, sizeof(fl->token), "%s", secret_reveal(a.token));
	oauth_access_clear(&a);
	http_client_free(c);
	return NULL;
}

static void
test_single_flight(void **state)
{
	struct fixture *f = *state;
	struct http_stub_response slow = { .status = 200,
	    .body = "{\"access_token\":\"" AT2 "\",\"refresh_token\":\"" RT2 "\",\"expires_in\":3600}",
	    .delay_ms = 300 };
	pthread_barrier_t bar;
	pthread_t th[8];
	struct flight fl[8];

	put_conn(f, "U1", "sf", AT1, RT1, NOW + 60, NULL);
	http_stub_push(f->stub, &slow);
	/* A second answer that would give a different token: it must never be asked for. */
	stub_token(f, "AT-SHOULD-NOT-BE-USED", "RT-SHOULD-NOT", ",\"expires_in\":3600");
	pthread_barrier_init(&bar, NULL, 8);
	for (int i = 0; i < 8; i++) {
		fl[i] = (struct flight){ .f = f, .bar = &bar };
		assert_int_equal(pthread_create(&th[i], NULL, flight_main, &fl[i]), 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(fl[i].rc, OAUTH_OK);
		assert_string_equal(fl[i].token, AT2);
	}
	assert_int_equal(http_stub_count(f->stub), 1);
}

static void
test_refresh_after_401(void **state)
{
	struct fixture *f = *state;
	struct oauth_access a, b;
	struct secret *old;
	char err[256];

	/* Salesforce: no expires_in, so no refresh before use. */
	put_conn(f, "U1", "sf", AT1, RT1, 0, NULL);
	assert_int_equal(oauth_access(f->o, f->cfg, f->client, "T1", "U1", "sf", NOW, &a, err,
	    sizeof(err)), OAUTH_OK);
	assert_string_equal(secret_reveal(a.token), AT1);
	assert_string_equal(a.api_url, "https://acme.example");
	assert_int_equal(http_stub_count(f->stub), 0);
	old = secret_dup(a.token);
	oauth_access_clear(&a);

	/* The app said 401: one refresh. */
	stub_token(f, AT2, NULL, NULL);
	assert_int_equal(oauth_refresh_after_401(f->o, f->cfg, f->client, "T1", "U1", "sf", old, NOW,
	    &a, err, sizeof(err)), OAUTH_OK);
	assert_string_equal(secret_reveal(a.token), AT2);
	assert_int_equal(http_stub_count(f->stub), 1);
	/* Another worker that also got a 401 with the old token: no second refresh. */
	assert_int_equal(oauth_refresh_after_401(f->o, f->cfg, f->client, "T1", "U1", "sf", old, NOW,
	    &b, err, sizeof(err)), OAUTH_OK);
	assert_string_equal(secret_reveal(b.token), AT2);
	assert_int_equal(http_stub_count(f->stub), 1);
	oauth_access_clear(&b);
	/* A 401 on the new token with the provider refusing: needs login. */
	http_stub_answer(f->stub, 400, NULL, "{\"error\":\"invalid_grant\"}");
	assert_int_equal(oauth_refresh_after_401(f->o, f->cfg, f->client, "T1", "U1", "sf", a.token,
	    NOW, &b, err, sizeof(err)), OAUTH_NEEDS_LOGIN);
	oauth_access_clear(&a);
	secret_free(old);
}

static void
test_disconnect(void **state)
{
	struct fixture *f = *state;
	struct oauth_disconnect_result res;
	const struct http_stub_request *rr;
	char err[256], v[512], hdr[256];

	put_conn(f, "U1", "sf", AT1, RT1, NOW + 3600, NULL);
	http_stub_answer(f->stub, 200, NULL, NULL);
	assert_int_equal(oauth_disconnect(f->o, f->cfg, f->client, "T1", "U1", "sf",
	    RECORDS_AUDIT_DISCONNECTED, NOW, &res, err, sizeof(err)), 1);
	assert_true(res.deleted);
	assert_true(res.revoked);
	assert_string_equal(res.reason, "");
	rr = http_stub_request(f->stub, 0);
	assert_string_equal(rr->target, "/revoke");
	assert_string_equal(param(rr->body, "token", v), RT1);
	assert_string_equal(param(rr->body, "token_type_hint", v), "refresh_token");
	assert_non_null(http_stub_header(rr, "Authorization", hdr, sizeof(hdr)));
	assert_int_equal(conn_count(f), 0);
	assert_int_equal(audit_count(f, RECORDS_AUDIT_DISCONNECTED), 1);
	/* Again: nothing there. */
	assert_int_equal(oauth_disconnect(f->o, f->cfg, f->client, "T1", "U1", "sf",
	    RECORDS_AUDIT_DISCONNECTED, NOW, &res, err, sizeof(err)), 0);

	/* Revocation fails: still deleted, and says why (no body). */
	put_conn(f, "U1", "sf", AT1, NULL, NOW + 3600, NULL);
	http_stub_answer(f->stub, 503, NULL, "{\"error\":\"temporarily_unavailable\",\"x\":\"" AT1 "\"}");
	assert_int_equal(oauth_disconnect(f->o, f->cfg, f->client, "T1", "U1", "sf",
	    RECORDS_AUDIT_REVOKED, NOW, &res, err, sizeof(err)), 1);
	assert_true(res.deleted);
	assert_false(res.revoked);
	assert_non_null(strstr(res.reason, "503"));
	assert_non_null(strstr(res.reason, "temporarily_unavailable"));
	assert_null(strstr(res.reason, AT1));
	rr = http_stub_request(f->stub, 1);
	assert_string_equal(param(rr->body, "token", v), AT1);
	assert_string_equal(param(rr->body, "token_type_hint", v), "access_token");
	assert_int_equal(conn_count(f), 0);
	assert_int_equal(audit_count(f, RECORDS_AUDIT_REVOKED), 1);

	/* No revoke_url: deleted, reason given, no request. */
	put_conn(f, "U1", "plain", AT1, RT1, NOW + 3600, NULL);
	assert_int_equal(oauth_disconnect(f->o, f->cfg, f->client, "T1", "U1", "plain",
	    RECORDS_AUDIT_DISCONNECTED, NOW, &res, err, sizeof(err)), 1);
	assert_false(res.revoked);
	assert_non_null(strstr(res.reason, "revoke_url"));
	assert_int_equal(http_stub_count(f->stub), 2);
}

static void
test_instance_url(void **state)
{
	struct fixture *f = *state;
	struct oauth_access a;
	struct records_conn h;
	struct records_tokens t;
	char err[256];
	static const struct {
		const char *app, *url, *want;
	} cases[] = {
		{ "sf", "http://acme.my.salesforce.com", NULL },		/* http, not loopback */
		{ "sf", "https://evil.example", NULL },			/* not in instance_hosts */
		{ "sf", "https://my.salesforce.com", NULL },			/* the suffix itself */
		{ "sf", "https://eu1.my.salesforce.com/", "https://eu1.my.salesforce.com" },
		{ "sf", "https://u:p@eu1.my.salesforce.com", NULL },		/* credentials */
		{ "plain", "http://127.0.0.1:9/x/", "http://127.0.0.1:9/x" },	/* loopback http */
		{ "plain", "http://10.0.0.1", NULL },
		{ "plain", "ftp://files.example", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char extra[256];

		put_conn(f, "U1", cases[i].app, AT1, RT1, NOW + 10, NULL);
		snprintf(extra, sizeof(extra), ",\"expires_in\":3600,\"instance_url\":\"%s\"", cases[i].url);
		stub_token(f, AT2, NULL, extra);
		assert_int_equal(oauth_access(f->o, f->cfg, f->client, "T1", "U1", cases[i].app, NOW, &a,
		    err, sizeof(err)), OAUTH_OK);
		if (cases[i].want)
			assert_string_equal(a.api_url, cases[i].want);
		else
			assert_string_equal(a.api_url, strcmp(cases[i].app, "sf") == 0 ?
			    "https://acme.example" : "https://p.example/api");
		oauth_access_clear(&a);
		stored_tokens(f, "U1", cases[i].app, &h, &t);
		if (cases[i].want)
			assert_string_equal(t.instance_url, cases[i].want);
		else
			assert_null(t.instance_url);
		records_tokens_clear(&t);
	}
}

static void
test_shared(void **state)
{
	struct fixture *f = *state;
	struct login L;
	struct oauth_page p;
	struct oauth_confirmed done;
	struct oauth_access a;
	char err[256];

	login_to_confirm(f, "sf", true, &L, &p);
	assert_non_null(strstr(p.html, "shared connection used by every recipe without personal access"));
	assert_null(strstr(p.html, "Slack user"));
	oauth_page_clear(&p);
	assert_int_equal(f->describe_calls, 0);
	confirm(f, &L, "connect", NOW + 30, 0, &p, &done);
	oauth_page_clear(&p);
	assert_true(done.shared);
	assert_string_equal(done.user, RECORDS_SHARED_USER);
	assert_null(done.resume);
	oauth_confirmed_clear(&done);
	assert_int_equal(oauth_shared_access(f->o, f->cfg, f->client, "T1", "sf", NOW, &a, err,
	    sizeof(err)), OAUTH_OK);
	assert_string_equal(secret_reveal(a.token), AT1);
	oauth_access_clear(&a);
	/* The user slot is separate. */
	assert_int_equal(oauth_access(f->o, f->cfg, f->client, "T1", "U1", "sf", NOW, &a, err,
	    sizeof(err)), OAUTH_NEEDS_LOGIN);
	/* A static token app. */
	assert_int_equal(oauth_shared_access(f->o, f->cfg, f->client, "T1", "jira", NOW, &a, err,
	    sizeof(err)), OAUTH_OK);
	assert_string_equal(secret_reveal(a.token), STATIC);
	assert_string_equal(a.api_url, "https://jira.example");
	oauth_access_clear(&a);
	/* oauth_begin refuses the shared slot name. */
	assert_int_equal(oauth_begin(f->o, f->cfg, "T1", RECORDS_SHARED_USER, "sf", NULL, 0, NULL, 0,
	    NOW, L.link, sizeof(L.link), err, sizeof(err)), -1);
}

static void
test_query_parse(void **state)
{
	struct oauth_query st;
	struct oauth_callback_params q;
	static const char good[] = "code=a%2Bb+c&state=xyz&iss=https%3A%2F%2Fl.example&other=1";

	(void)state;
	assert_int_equal(oauth_query_parse(good, strlen(good), &st, &q), 0);
	assert_string_equal(q.code, "a+b c");
	assert_string_equal(q.state, "xyz");
	assert_string_equal(q.iss, "https://l.example");
	assert_null(q.error);
	oauth_query_free(&st);
	assert_int_equal(oauth_query_parse("state=a&state=b", 15, &st, &q), -1);
	assert_int_equal(oauth_query_parse("code=%00x", 9, &st, &q), -1);
	assert_int_equal(oauth_query_parse("code=%zz", 8, &st, &q), -1);
	assert_int_equal(oauth_query_parse("code=%4", 7, &st, &q), -1);
}


/* ---- against tests/fakes/fake_oauth (skipped when it is not built) ---- */

struct fake {
	pid_t pid;
	int   port;
	char  base[64];
};

static struct fake the_fake;

static size_t
curl_sink(char *data, size_t size, size_t nmemb, void *ud)
{
	char **buf = ud;
	size_t old = *buf ? strlen(*buf) : 0, n = size * nmemb;
	char *nb = realloc(*buf, old + n + 1);

	assert_non_null(nb);
	memcpy(nb + old, data, n);
	nb[old + n] = '\0';
	*buf = nb;
	return n;
}

/*
 * One request to the fake (control API, authorize). Returns the status;
 * *body (may be NULL) the answer, *location the redirect target if any.
 */
static long
fake_http(const char *method, const char *url, const char *form, const char *bearer, char **body,
    char *location, size_t locsz)
{
	CURL *e = curl_easy_init();
	struct curl_slist *h = NULL;
	char *buf = NULL, auth[512];
	long status = 0;
	char *loc = NULL;

	assert_non_null(e);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, curl_sink);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &buf);
	if (form != NULL)
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, form);
	if (bearer != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer);
		h = curl_slist_append(h, auth);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	}
	assert_int_equal(curl_easy_perform(e), CURLE_OK);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	if (location != NULL) {
		location[0] = '\0';
		if (curl_easy_getinfo(e, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc != NULL)
			snprintf(location, locsz, "%s", loc);
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	if (body != NULL)
		*body = buf ? buf : strdup("");
	else
		free(buf);
	return status;
}

static void
fake_ctl(const char *route, const char *form)
{
	char url[256], *body = NULL;
	long st;

	snprintf(url, sizeof(url), "%s/_control/%s", the_fake.base, route);
	st = fake_http(form ? "POST" : "GET", url, form, NULL, &body, NULL, 0);
	if (st != 200)
		fail_msg("control %s: %ld %s", route, st, body);
	free(body);
}

/* A counter of /_control/stats (0 when absent). */
static long
fake_count(const char *name)
{
	char url[256], *body = NULL;
	cJSON *j, *n;
	long v = 0;

	snprintf(url, sizeof(url), "%s/_control/stats", the_fake.base);
	assert_int_equal(fake_http("GET", url, NULL, NULL, &body, NULL, 0), 200);
	j = cJSON_Parse(body);
	n = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "counts"), name);
	if (cJSON_IsNumber(n))
		v = (long)n->valuedouble;
	cJSON_Delete(j);
	free(body);
	return v;
}

static int
fake_setup(void **state)
{
	const char *path = getenv("WORKBOT_FAKE_OAUTH");
	int out[2];
	FILE *fp;
	char line[128], *text;
	struct fixture *f;
	const char *b;

	if (setup(state) != 0)
		return -1;
	f = *state;
	memset(&the_fake, 0, sizeof(the_fake));
	if (path == NULL || access(path, X_OK) != 0)
		return 0;	/* the tests skip */
	if (pipe(out) != 0)
		return -1;
	the_fake.pid = fork();
	if (the_fake.pid == 0) {
		dup2(out[1], 1);
		close(out[0]);
		close(out[1]);
		execl(path, path, "--port", "0", (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	fp = fdopen(out[0], "r");
	while (fp != NULL && fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "PORT %d", &the_fake.port) == 1)
			break;
	if (fp != NULL)
		fclose(fp);
	if (the_fake.port <= 0)
		return -1;
	snprintf(the_fake.base, sizeof(the_fake.base), "http://127.0.0.1:%d", the_fake.port);
	b = the_fake.base;
	/* Three apps: Basic + userinfo + issuer, Box-like (body, rotation), Salesforce-like. */
	assert_true(asprintf(&text,
	    "client_id=fk&client_secret=%s&client_auth=basic&redirect_uris=%s/oauth/callback"
	    "&scopes=api+refresh_token&issuer=%s", CSECRET, PUBLIC, b) > 0);
	fake_ctl("app", text);
	free(text);
	assert_true(asprintf(&text, "client_id=fkbox&client_secret=%s&client_auth=body&style=box"
	    "&redirect_uris=%s/oauth/callback&default_account=bob@acme.com", CSECRET, PUBLIC) > 0);
	fake_ctl("app", text);
	free(text);
	assert_true(asprintf(&text, "client_id=fksf&client_secret=%s&client_auth=basic"
	    "&style=salesforce&redirect_uris=%s/oauth/callback", CSECRET, PUBLIC) > 0);
	fake_ctl("app", text);
	free(text);
	assert_true(asprintf(&text,
	    "[slack]\napp_token = env:WB_T_APP\nbot_token = env:WB_T_BOT\n"
	    "[store]\npath = %s\nkey_file = %s/master.key\n"
	    "[listener]\npublic_url = %s\n"
	    "[app fk]\ntitle = Fake\nauth = oauth2\nclient_id = fk\nclient_secret = env:WB_T_CS\n"
	    "authorize_url = %s/authorize\ntoken_url = %s/token\nrevoke_url = %s/revoke\n"
	    "userinfo_url = %s/userinfo\nscopes = api refresh_token\napi_url = %s/api\n"
	    "issuer = %s\n"
	    "[app fkbox]\ntitle = Box\nauth = oauth2\nclient_id = fkbox\nclient_secret = env:WB_T_CS\n"
	    "client_auth = body\nauthorize_url = %s/authorize\ntoken_url = %s/token\n"
	    "revoke_url = %s/revoke\nuserinfo_url = %s/userinfo\napi_url = %s/api\n"
	    "[app fksf]\ntitle = Salesforce\nauth = oauth2\nclient_id = fksf\n"
	    "client_secret = env:WB_T_CS\nauthorize_url = %s/services/oauth2/authorize\n"
	    "token_url = %s/services/oauth2/token\nrevoke_url = %s/services/oauth2/revoke\n"
	    "userinfo_url = %s/services/oauth2/userinfo\napi_url = https://login.example\n",
	    f->store, f->dir, PUBLIC, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b) > 0);
	config_free(f->cfg);
	f->cfg = config_load_buffer("fake.conf", text, strlen(text), cfg_error, NULL);
	free(text);
	return f->cfg != NULL ? 0 : -1;
}

static int
fake_teardown(void **state)
{
	if (the_fake.pid > 0) {
		int st;

		kill(the_fake.pid, SIGTERM);
		waitpid(the_fake.pid, &st, 0);
		the_fake.pid = 0;
	}
	return teardown(state);
}

#define NEED_FAKE() do { if (the_fake.port <= 0) { skip(); } } while (0)

/* Like a browser: start (5 times: previews), the provider, back to the callback. */
static int
fake_login(struct fixture *f, const char *app, struct login *L, struct oauth_page *page,
    char *replace_challenge)
{
	struct oauth_page p;
	struct oauth_query st;
	struct oauth_callback_params q;
	char err[256], loc[4096], back[4096], *body = NULL;
	const char *id, *qs;
	int rc;

	assert_int_equal(oauth_begin(f->o, f->cfg, "T1", "U1", app, "resume", 6, NULL, 0, NOW,
	    L->link, sizeof(L->link), err, sizeof(err)), 0);
	id = strrchr(L->link, '/') + 1;
	for (int i = 0; i < 5; i++) {
		assert_int_equal(oauth_start(f->o, f->cfg, id, NOW + 1, &p), 0);
		if (i < 4)
			oauth_page_clear(&p);
	}
	cookie_header(&p, L->cookie, sizeof(L->cookie));
	snprintf(loc, sizeof(loc), "%s", secret_reveal(p.location));
	oauth_page_clear(&p);
	if (replace_challenge != NULL) {
		/* Swap in another login's code_challenge (same length): a PKCE mismatch. */
		char *cc = strstr(loc, "code_challenge=");

		assert_non_null(cc);
		memcpy(cc + 15, replace_challenge, 43);
	}
	assert_int_equal(fake_http("GET", loc, NULL, NULL, &body, back, sizeof(back)), 302);
	free(body);
	assert_int_equal(strncmp(back, PUBLIC "/oauth/callback?", strlen(PUBLIC) + 16), 0);
	qs = strchr(back, '?') + 1;
	assert_int_equal(oauth_query_parse(qs, strlen(qs), &st, &q), 0);
	rc = oauth_callback(f->o, f->cfg, f->client, L->cookie, &q, NOW + 5, page);
	oauth_query_free(&st);
	page_clean(page);
	if (rc == 0) {
		hidden(page->html, "id", L->id, sizeof(L->id));
		hidden(page->html, "form_token", L->form_token, sizeof(L->form_token));
	}
	return rc;
}

static void
fake_connect(struct fixture *f, const char *app)
{
	struct login L;
	struct oauth_page p;
	struct oauth_confirmed done;

	assert_int_equal(fake_login(f, app, &L, &p, NULL), 0);
	oauth_page_clear(&p);
	confirm(f, &L, "connect", NOW + 20, 0, &p, &done);
	oauth_page_clear(&p);
	assert_int_equal(done.action, OAUTH_CONFIRM_CONNECTED);
	oauth_confirmed_clear(&done);
}

/* Call the resource API as the connection; the status, and the account it saw into acc. */
static long
fake_resource(const struct oauth_access *a, char *acc, size_t size)
{
	char url[RECORDS_URL_MAX + 64], *body = NULL;
	long st;
	cJSON *j;

	snprintf(url, sizeof(url), "%s/whoami", a->api_url);
	st = fake_http("GET", url, NULL, secret_reveal(a->token), &body, NULL, 0);
	j = cJSON_Parse(body);
	if (acc != NULL)
		snprintf(acc, size, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(j, "account")) ?
		    cJSON_GetStringValue(cJSON_GetObjectItem(j, "account")) : "");
	cJSON_Delete(j);
	free(body);
	return st;
}

static void
test_fake_full_login(void **state)
{
	struct fixture *f = *state;
	struct login L;
	struct oauth_page p;
	struct oauth_confirmed done;
	struct oauth_access a;
	char err[256], acc[128];

	NEED_FAKE();
	assert_int_equal(fake_login(f, "fk", &L, &p, NULL), 0);
	assert_non_null(strstr(p.html, "Connect Fake account <strong>jane@acme.com</strong> to Slack user"));
	oauth_page_clear(&p);
	assert_int_equal(conn_count(f), 0);
	confirm(f, &L, "connect", NOW + 20, 0, &p, &done);
	oauth_page_clear(&p);
	assert_int_equal(done.action, OAUTH_CONFIRM_CONNECTED);
	assert_string_equal(done.account, "jane@acme.com");
	assert_memory_equal(secret_reveal(done.resume), "resume", 6);
	oauth_confirmed_clear(&done);
	assert_int_equal(fake_count("token.authorization_code"), 1);

	/* The resumed job calls the resource API as the user's own account. */
	assert_int_equal(oauth_access(f->o, f->cfg, f->client, "T1", "U1", "fk", NOW + 30, &a, err,
	    sizeof(err)), OAUTH_OK);
	assert_int_equal(fake_resource(&a, acc, sizeof(acc)), 200);
	assert_string_equal(acc, "jane@acme.com");
	oauth_access_clear(&a);

	/* Disconnect: revoked at the provider (refresh token, Basic), deleted. */
	{
		struct oauth_disconnect_result res;

		assert_int_equal(oauth_disconnect(f->o, f->cfg, f->client, "T1", "U1", "fk",
		    RECORDS_AUDIT_DISCONNECTED, NOW + 40, &res, err, sizeof(err)), 1);
		assert_true(res.revoked);
		assert_int_equal(fake_count("revoke.refresh_token"), 1);
		assert_int_equal(conn_count(f), 0);
	}
}

static void
test_fake_refusals(void **state)
{
	struct fixture *f = *state;
	struct login A, B;
	struct oauth_page p;
	char challenge[64], *cc;
	struct oauth_page pb;
	const char *id;
	char err[256];

	NEED_FAKE();
	/* The user says no at the provider. */
	fake_ctl("next_login", "client_id=fk&deny=1");
	assert_int_equal(fake_login(f, "fk", &A, &p, NULL), -1);
	assert_int_equal(p.status, 403);
	assert_non_null(strstr(p.html, "declined"));
	oauth_page_clear(&p);

	/* PKCE mismatch: login A carries login B's challenge. */
	assert_int_equal(oauth_begin(f->o, f->cfg, "T1", "U1", "fk", NULL, 0, NULL, 0, NOW, B.link,
	    sizeof(B.link), err, sizeof(err)), 0);
	id = strrchr(B.link, '/') + 1;
	assert_int_equal(oauth_start(f->o, f->cfg, id, NOW, &pb), 0);
	cc = strstr(secret_reveal(pb.location), "code_challenge=");
	assert_non_null(cc);
	snprintf(challenge, sizeof(challenge), "%.43s", cc + 15);
	oauth_page_clear(&pb);
	assert_int_equal(fake_login(f, "fk", &A, &p, challenge), -1);
	assert_int_equal(p.status, 400);
	assert_non_null(strstr(p.html, "token exchange failed"));
	oauth_page_clear(&p);
	assert_int_equal(fake_count("token.pkce_mismatch"), 1);
	assert_int_equal(conn_count(f), 0);

	/* Cancel: the fresh tokens are revoked, nothing stored. */
	{
		struct oauth_confirmed done;

		assert_int_equal(fake_login(f, "fk", &A, &p, NULL), 0);
		oauth_page_clear(&p);
		confirm(f, &A, "cancel", NOW + 20, 0, &p, &done);
		oauth_page_clear(&p);
		assert_int_equal(done.action, OAUTH_CONFIRM_CANCELLED);
		oauth_confirmed_clear(&done);
		assert_int_equal(fake_count("revoke.refresh_token"), 1);
		assert_int_equal(conn_count(f), 0);
	}
	/* Not confirmed in time: swept and revoked. */
	{
		size_t n = 0;

		assert_int_equal(fake_login(f, "fk", &A, &p, NULL), 0);
		oauth_page_clear(&p);
		assert_int_equal(oauth_sweep(f->o, f->cfg, f->client, NOW + 5 + OAUTH_CONFIRM_TTL, &n,
		    err, sizeof(err)), 0);
		assert_int_equal(n, 1);
		assert_int_equal(fake_count("revoke.refresh_token"), 2);
		assert_int_equal(conn_count(f), 0);
	}
}

struct fflight {
	struct fixture *f;
	pthread_barrier_t *bar;
	int64_t now;
	char token[256];
	int rc;
};

static void *
fflight_main(void *p)
{
	struct fflight *fl = p;
	struct http_client *c = http_client_new(NULL);
	struct oauth_access a;
	char err[256];

	pthread_barrier_wait(fl->bar);
	fl->rc = oauth_access(fl->f->o, fl->f->cfg, c, "T1", "U1", "fkbox", fl->now, &a, err,
	    sizeof(err));
	if (fl->rc == OAUTH_OK)
		snprintf(fl->token, sizeof(fl->token), "%s", secret_reveal(a.token));
	oauth_access_clear(&a);
	http_client_free(c);
	return NULL;
}

static void
test_fake_rotation_single_flight(void **state)
{
	struct fixture *f = *state;
	pthread_barrier_t bar;
	pthread_t th[8];
	struct fflight fl[8];
	struct oauth_access a;
	char err[256], acc[128];

	NEED_FAKE();
	fake_connect(f, "fkbox");
	assert_int_equal(fake_count("token.authorization_code"), 1);
	/* Eight workers, one connection about to expire: one refresh, one new token. */
	pthread_barrier_init(&bar, NULL, 8);
	for (int i = 0; i < 8; i++) {
		fl[i] = (struct fflight){ .f = f, .bar = &bar, .now = NOW + 5 + 3600 - 60 };
		assert_int_equal(pthread_create(&th[i], NULL, fflight_main, &fl[i]), 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(fl[i].rc, OAUTH_OK);
		assert_string_equal(fl[i].token, fl[0].token);
	}
	assert_int_equal(fake_count("token.refresh_token"), 1);
	assert_int_equal(fake_count("token.refresh_reuse"), 0);
	/* The rotated refresh token was kept: a later refresh works (reuse would be invalid_grant). */
	assert_int_equal(oauth_access(f->o, f->cfg, f->client, "T1", "U1", "fkbox",
	    NOW + 5 + 2 * 3600, &a, err, sizeof(err)), OAUTH_OK);
	assert_string_not_equal(secret_reveal(a.token), fl[0].token);
	assert_int_equal(fake_resource(&a, acc, sizeof(acc)), 200);
	assert_string_equal(acc, "bob@acme.com");
	oauth_access_clear(&a);
	assert_int_equal(fake_count("token.refresh_token"), 2);
	assert_int_equal(fake_count("token.refresh_reuse"), 0);

	/* The user revoked the app at the provider: invalid_grant -> expired, needs login. */
	fake_ctl("kill_grants", "client_id=fkbox");
	assert_int_equal(oauth_access(f->o, f->cfg, f->client, "T1", "U1", "fkbox",
	    NOW + 5 + 4 * 3600, &a, err, sizeof(err)), OAUTH_NEEDS_LOGIN);
	{
		struct records_conn h;
		struct records_tokens t;

		stored_tokens(f, "U1", "fkbox", &h, &t);
		assert_int_equal(h.state, RECORDS_EXPIRED);
		records_tokens_clear(&t);
	}
}

static void
test_fake_salesforce_401(void **state)
{
	struct fixture *f = *state;
	struct oauth_access a, b;
	char err[256], acc[128];

	NEED_FAKE();
	fake_connect(f, "fksf");
	/* No expires_in: used as is; instance_url (loopback http) is the API base. */
	assert_int_equal(oauth_access(f->o, f->cfg, f->client, "T1", "U1", "fksf", NOW + 100000, &a,
	    err, sizeof(err)), OAUTH_OK);
	assert_int_equal(strncmp(a.api_url, the_fake.base, strlen(the_fake.base)), 0);
	assert_int_equal(fake_resource(&a, acc, sizeof(acc)), 200);
	assert_int_equal(fake_count("token.refresh_token"), 0);
	/* The session ends at the provider: 401, refresh once, retry once. */
	fake_ctl("expire", "client_id=fksf");
	assert_int_equal(fake_resource(&a, NULL, 0), 401);
	assert_int_equal(oauth_refresh_after_401(f->o, f->cfg, f->client, "T1", "U1", "fksf", a.token,
	    NOW + 100000, &b, err, sizeof(err)), OAUTH_OK);
	assert_int_equal(fake_count("token.refresh_token"), 1);
	assert_int_equal(fake_resource(&b, acc, sizeof(acc)), 200);
	assert_string_equal(acc, "jane@acme.com");
	oauth_access_clear(&a);
	oauth_access_clear(&b);
}

/* Last: nothing distinctive in any log line of the whole run. */
static void
test_no_secret_in_log(void **state)
{
	(void)state;
	fsync(log_fd);
	for (size_t i = 0; i < sizeof(distinct) / sizeof(distinct[0]); i++)
		if (file_contains(log_path, distinct[i]))
			fail_msg("log holds %s", distinct[i]);
	/* The run did log (so the check is not vacuous). */
	assert_true(file_contains(log_path, "oauth"));
}

static int
group_setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	setenv("WB_T_APP", "xapp-test", 1);
	setenv("WB_T_BOT", "xoxb-test", 1);
	setenv("WB_T_CS", CSECRET, 1);
	setenv("WB_T_JIRA", STATIC, 1);
	log_fd = mkstemp(log_path);
	if (log_fd < 0)
		return -1;
	log_set_fd(log_fd);
	log_set_level(LOG_DEBUG);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	log_set_fd(-1);
	close(log_fd);
	unlink(log_path);
	curl_global_cleanup();
	return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_html_escape),
		cmocka_unit_test(test_query_parse),
		T(test_begin_start),
		T(test_cookie_https_prefix),
		T(test_callback_happy),
		T(test_callback_failures),
		T(test_exchange_failures),
		T(test_client_auth_body),
		T(test_confirm_connect),
		T(test_confirm_cancel),
		T(test_confirm_forged),
		T(test_sweep),
		T(test_access_fresh_and_refresh),
		T(test_invalid_grant),
		T(test_single_flight),
		T(test_refresh_after_401),
		T(test_disconnect),
		T(test_instance_url),
		T(test_shared),
		cmocka_unit_test_setup_teardown(test_fake_full_login, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_fake_refusals, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_fake_rotation_single_flight, fake_setup,
		    fake_teardown),
		cmocka_unit_test_setup_teardown(test_fake_salesforce_401, fake_setup, fake_teardown),
		cmocka_unit_test(test_no_secret_in_log),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
