/*
 * Unit tests for config: the example config loads; DESIGN §5's reading
 * rules (long lines, ` ;` and `#` in values, indented lines); a table of bad
 * configs, each with its exact `file:line: [section] key: ...` message;
 * every problem reported in one run; no secret in any message; env: and
 * file: secrets; sizes; bind; buttons; the restart diff.
 *
 * Each test writes its config as t.conf in a private temporary directory
 * (the process chdirs there), so messages read `t.conf:LINE: ...`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "workbot/config.h"
#include "workbot/secret.h"
#include "workbot/template.h"
#include "workbot/xmalloc.h"

static char tmpdir[] = "/tmp/test_config.XXXXXX";
static char origdir[4096];

/* Every message of one load, one per line. */
struct errors {
	char buf[65536];
	size_t len;
	int count;
};

static void
collect(void *arg, const char *msg)
{
	struct errors *e = arg;
	int n = snprintf(e->buf + e->len, sizeof(e->buf) - e->len, "%s\n", msg);

	assert_true(n > 0 && (size_t)n < sizeof(e->buf) - e->len);
	e->len += (size_t)n;
	e->count++;
}

static void
write_file(const char *name, const char *text, mode_t mode)
{
	FILE *f;

	unlink(name);
	f = fopen(name, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(name, mode), 0);
}

/* Load `text` as t.conf (mode 0600); errors go to `e`. */
static struct config *
load(const char *text, struct errors *e)
{
	memset(e, 0, sizeof(*e));
	write_file("t.conf", text, 0600);
	return config_load("t.conf", collect, e);
}

/* Expect exactly one error, `msg`. */
static void
expect_error(const char *text, const char *msg)
{
	struct errors e;
	struct config *cfg = load(text, &e);
	char want[1024];

	snprintf(want, sizeof(want), "%s\n", msg);
	if (cfg != NULL || strcmp(e.buf, want) != 0)
		fail_msg("config:\n%s\nwant: %sgot (%d): %s", text, want, e.count, e.buf);
	config_free(cfg);
}

static struct config *
load_ok(const char *text)
{
	struct errors e;
	struct config *cfg = load(text, &e);

	if (cfg == NULL)
		fail_msg("config:\n%s\nunexpected errors:\n%s", text, e.buf);
	return cfg;
}

static int
group_setup(void **state)
{
	(void)state;
	if (getcwd(origdir, sizeof(origdir)) == NULL || mkdtemp(tmpdir) == NULL ||
	    chdir(tmpdir) != 0)
		return -1;
	setenv("WB_APP", "xapp-1-test", 1);
	setenv("WB_BOT", "xoxb-test", 1);
	setenv("WB_EMPTY", "", 1);
	unsetenv("WB_UNSET");
	return 0;
}

static int
group_teardown(void **state)
{
	char cmd[256];

	(void)state;
	if (chdir(origdir) != 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Lines 1-6. */
#define HEAD \
	"[slack]\n" \
	"app_token = env:WB_APP\n" \
	"bot_token = env:WB_BOT\n" \
	"[store]\n" \
	"path = /tmp/wb\n" \
	"key_file = /tmp/wb/master.key\n"

/* Lines 7-13: an oauth2 app. */
#define BOX \
	"[app box]\n" \
	"auth = oauth2\n" \
	"client_id = abc\n" \
	"client_secret = env:WB_APP\n" \
	"authorize_url = https://box.example/authorize\n" \
	"token_url = https://box.example/token\n" \
	"api_url = https://api.box.example/2.0/\n"

/* Lines 14-17: a token app. */
#define JIRA \
	"[app jira]\n" \
	"auth = token\n" \
	"token = env:WB_BOT\n" \
	"api_url = https://jira.example\n"

/* HEAD BOX JIRA then this: lines 18-21. */
#define RECIPE(name, command, app) \
	"[recipe " name "]\n" \
	"command = " command "\n" \
	"app = " app "\n" \
	"path = /x\n"

static void
test_example(void **state)
{
	const char *data = getenv("WORKBOT_TEST_DATA");
	char path[4096];
	struct errors e = { .len = 0 };
	struct config *cfg;
	const struct config_recipe *r;
	const struct config_app *sf;

	(void)state;
	assert_non_null(data);
	snprintf(path, sizeof(path), "%s/../../workbot.conf.example", data);
	setenv("SLACK_APP_TOKEN", "xapp-example", 1);
	setenv("SLACK_BOT_TOKEN", "xoxb-example", 1);
	setenv("SALESFORCE_CLIENT_SECRET", "sf-secret", 1);
	setenv("JIRA_TOKEN", "jira-token", 1);
	cfg = config_load(path, collect, &e);
	if (cfg == NULL)
		fail_msg("%s", e.buf);
	assert_string_equal(secret_reveal(cfg->slack.app_token.v), "xapp-example");
	assert_string_equal(cfg->slack.api_url.v, "https://slack.com/api/");
	assert_int_equal(cfg->slack.connections.v, 2);
	assert_int_equal(cfg->store.map_size.v, 1ULL << 30);
	assert_string_equal(cfg->listener.public_url.v, "http://127.0.0.1:8085");
	assert_int_equal(cfg->napps, 2);
	assert_int_equal(cfg->nrecipes, 4);
	sf = config_app_find(cfg, "salesforce");
	assert_non_null(sf);
	assert_int_equal(sf->auth.v, CONFIG_AUTH_OAUTH2);
	assert_string_equal(secret_reveal(sf->client_secret.v), "sf-secret");
	assert_int_equal(sf->instance_hosts.n, 1);
	assert_string_equal(sf->instance_hosts.v[0], "*.my.salesforce.com");
	assert_int_equal(sf->authorize_params.n, 1);
	assert_string_equal(sf->authorize_params.v[0].key, "prompt");
	r = config_recipe_find(cfg, "create-opportunity");
	assert_non_null(r);
	assert_ptr_equal(r->app.app, sf);
	assert_true(r->verify_user_access.v);
	assert_int_equal(r->method.v, CONFIG_METHOD_POST);
	assert_int_equal(r->params.n, 3);
	assert_false(r->params.v[0].optional);
	assert_true(r->params.v[1].optional);
	assert_int_equal(r->buttons.n, 2);
	assert_string_equal(r->buttons.v[0].label, "Approve");
	assert_ptr_equal(r->buttons.v[0].target, config_recipe_find(cfg, "approve"));
	assert_ptr_equal(r->buttons.v[1].target, config_recipe_find(cfg, "reject"));
	assert_string_equal(r->buttons.v[1].params.v[0].value, "{{response.id}}");
	r = config_recipe_find(cfg, "jira-issue");
	assert_false(r->verify_user_access.v);
	assert_ptr_equal(r->app.app, config_app_find(cfg, "jira"));
	assert_string_equal(r->allowed_channels.v[0], "C0123456789");
	config_free(cfg);
}

/* A 4 KiB body, a secret with ` ;` and `#`, an indented line: read as written. */
static void
test_verbatim(void **state)
{
	size_t body_len = 4096, n;
	char *body = xmalloc(body_len + 1), *text;
	struct config *cfg;
	const struct config_recipe *r;

	(void)state;
	n = (size_t)snprintf(body, body_len + 1, "{\"Name\": \"{{name}}\", \"Note\": \"");
	memset(body + n, 'x', body_len - n - 2);
	memcpy(body + body_len - 2, "\"}", 3);
	assert_int_equal(strlen(body), 4096);
	text = xasprintf(
	    "[slack]\n"
	    "app_token =   xapp-a ;b #c ; d#   \n"
	    "   bot_token = xoxb-# not a comment\n"
	    "\tconnections = 3\n"
	    "; a comment\n"
	    "  # an indented comment\n"
	    "[store]\n"
	    "path = /tmp/wb\n"
	    "key_file = /tmp/wb/key\n"
	    BOX
	    "[recipe r]\n"
	    "command = Create   Opportunity\n"
	    "app = box\n"
	    "params = name\n"
	    "method = post\n"
	    "path = /x\n"
	    "body = %s\n", body);
	cfg = load_ok(text);
	assert_string_equal(secret_reveal(cfg->slack.app_token.v), "xapp-a ;b #c ; d#");
	assert_int_equal(cfg->slack.app_token.line, 2);
	assert_string_equal(secret_reveal(cfg->slack.bot_token.v), "xoxb-# not a comment");
	assert_int_equal(cfg->slack.bot_token.line, 3);
	assert_int_equal(cfg->slack.connections.v, 3);
	assert_int_equal(cfg->slack.connections.line, 4);
	assert_int_equal(cfg->slack.workers.v, 4);
	assert_int_equal(cfg->slack.workers.line, 0);
	r = cfg->recipes[0];
	assert_string_equal(r->body.v, body);
	assert_int_equal(r->body.line, 23);
	assert_string_equal(r->command.v, "create opportunity");
	assert_int_equal(r->command.n, 2);
	assert_int_equal(r->line, 17);
	assert_string_equal(cfg->apps[0]->api_url.v, "https://api.box.example/2.0");
	assert_string_equal(cfg->apps[0]->title.v, "box");
	config_free(cfg);
	free(text);
	free(body);
}

/* CRLF line ends and a UTF-8 BOM are tolerated; the rest of a value is kept. */
static void
test_crlf_bom(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok("\xEF\xBB\xBF[slack]\r\napp_token = env:WB_APP\r\nbot_token = a b\r\n"
	    "[store]\r\npath = /p\r\nkey_file = /k\r\n");
	assert_string_equal(secret_reveal(cfg->slack.bot_token.v), "a b");
	config_free(cfg);
}

/* `ca_file =` means none (DESIGN §5's example); a set one must be readable. */
static void
test_ca_file(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok("[slack]\napp_token = env:WB_APP\nbot_token = env:WB_BOT\nca_file =\n"
	    "[store]\npath = /p\nkey_file = /k\n");
	assert_null(cfg->slack.ca_file.v);
	config_free(cfg);
	write_file("ca.pem", "-----BEGIN CERTIFICATE-----\n", 0644);
	cfg = load_ok("[slack]\napp_token = env:WB_APP\nbot_token = env:WB_BOT\nca_file = ca.pem\n"
	    "[store]\npath = /p\nkey_file = /k\n");
	assert_string_equal(cfg->slack.ca_file.v, "ca.pem");
	assert_int_equal(cfg->slack.ca_file.line, 4);
	config_free(cfg);
	expect_error("[slack]\napp_token = env:WB_APP\nbot_token = env:WB_BOT\nca_file = .\n"
	    "[store]\npath = /p\nkey_file = /k\n",
	    "t.conf:4: [slack] ca_file: . is not a regular file");
}

static const struct bad {
	const char *text;
	const char *msg;
} bad_configs[] = {
	/* Syntax. */
	{ "app_token = x\n" HEAD, "t.conf:1: `key = value` before any [section]" },
	{ HEAD "just words\n", "t.conf:7: [store]: expected `key = value`" },
	{ HEAD "[store\n", "t.conf:7: malformed section header (expected [name])" },
	{ HEAD "[slack]\n", "t.conf:7: [slack]: duplicate section (first on line 1)" },
	{ HEAD BOX "[app box]\n", "t.conf:14: [app box]: duplicate section (first on line 7)" },
	{ HEAD "[slak]\n", "t.conf:7: [slak]: unknown section (did you mean [slack]?)" },
	{ HEAD "[apps x]\n", "t.conf:7: [apps x]: unknown section (did you mean [app NAME]?)" },
	{ HEAD "[frobnicate]\n",
	  "t.conf:7: [frobnicate]: unknown section (slack, store, listener, app NAME, recipe NAME)" },
	{ HEAD "[app Box]\n", "t.conf:7: [app Box]: app name must be [a-z0-9_-]{1,32}" },
	{ HEAD "[recipe]\n", "t.conf:7: [recipe]: recipe name must be [a-z0-9_-]{1,32}" },
	{ HEAD "[recipe aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n",
	  "t.conf:7: [recipe aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]: recipe name must be [a-z0-9_-]{1,32}" },
	{ HEAD "[store x]\n", "t.conf:7: [store x]: [store] takes no name" },
	{ "[slack]\napp_token = env:WB_APP\napp_token = env:WB_APP\nbot_token = env:WB_BOT\n"
	  "[store]\npath = /p\nkey_file = /k\n",
	  "t.conf:3: [slack] app_token: duplicate key (first set on line 2)" },
	{ HEAD "conections = 2\n", "t.conf:7: [store] conections: unknown key" },
	{ "[slack]\napp_token = env:WB_APP\nbot_token = env:WB_BOT\nconections = 2\n"
	  "[store]\npath = /p\nkey_file = /k\n",
	  "t.conf:4: [slack] conections: unknown key (did you mean connections?)" },
	{ HEAD "Path = /x\n", "t.conf:7: [store]: not a key name (keys are [a-z0-9_])" },
	/* Sections and required keys. */
	{ "[store]\npath = /p\nkey_file = /k\n", "t.conf: [slack]: missing section" },
	{ "[slack]\napp_token = env:WB_APP\nbot_token = env:WB_BOT\n", "t.conf: [store]: missing section" },
	{ "[slack]\nbot_token = env:WB_BOT\n[store]\npath = /p\nkey_file = /k\n",
	  "t.conf:1: [slack] app_token: missing" },
	{ "[slack]\napp_token =\nbot_token = env:WB_BOT\n[store]\npath = /p\nkey_file = /k\n",
	  "t.conf:2: [slack] app_token: empty" },
	/* [slack] values. */
	{ "[slack]\napp_token = env:WB_APP\nbot_token = env:WB_BOT\nconnections = 5\n"
	  "[store]\npath = /p\nkey_file = /k\n",
	  "t.conf:4: [slack] connections: must be between 1 and 4" },
	{ "[slack]\napp_token = env:WB_APP\nbot_token = env:WB_BOT\nconnections = 0\n"
	  "[store]\npath = /p\nkey_file = /k\n",
	  "t.conf:4: [slack] connections: must be between 1 and 4" },
	{ "[slack]\napp_token = env:WB_APP\nbot_token = env:WB_BOT\nworkers = -1\n"
	  "[store]\npath = /p\nkey_file = /k\n",
	  "t.conf:4: [slack] workers: not a number" },
	{ "[slack]\napp_token = env:WB_APP\nbot_token = env:WB_BOT\nping_interval = 99999999999999999999999\n"
	  "[store]\npath = /p\nkey_file = /k\n",
	  "t.conf:4: [slack] ping_interval: not a number" },
	{ "[slack]\napp_token = env:WB_APP\nbot_token = env:WB_BOT\napi_url = http://slack.com/api/\n"
	  "[store]\npath = /p\nkey_file = /k\n",
	  "t.conf:4: [slack] api_url: not an https URL" },
	{ "[slack]\napp_token = env:WB_APP\nbot_token = env:WB_BOT\nca_file = /nonexistent/ca.pem\n"
	  "[store]\npath = /p\nkey_file = /k\n",
	  "t.conf:4: [slack] ca_file: cannot read /nonexistent/ca.pem: No such file or directory" },
	{ "[slack]\napp_token = env:WB_UNSET\nbot_token = env:WB_BOT\n[store]\npath = /p\nkey_file = /k\n",
	  "t.conf:2: [slack] app_token: environment variable WB_UNSET is not set" },
	{ "[slack]\napp_token = env:WB_EMPTY\nbot_token = env:WB_BOT\n[store]\npath = /p\nkey_file = /k\n",
	  "t.conf:2: [slack] app_token: environment variable WB_EMPTY is empty" },
	{ "[slack]\napp_token = env:1X\nbot_token = env:WB_BOT\n[store]\npath = /p\nkey_file = /k\n",
	  "t.conf:2: [slack] app_token: env: needs a variable name ([A-Za-z_][A-Za-z0-9_]*)" },
	{ "[slack]\napp_token = file:/nonexistent/secret\nbot_token = env:WB_BOT\n[store]\npath = /p\nkey_file = /k\n",
	  "t.conf:2: [slack] app_token: cannot read secret file /nonexistent/secret: No such file or directory" },
	/* [store] */
	{ HEAD "map_size = 1KiB\n", "t.conf:7: [store] map_size: must be between 1MiB and 1TiB" },
	{ HEAD "map_size = 1PiB\n",
	  "t.conf:7: [store] map_size: not a size (bytes, or a number with KiB, MiB, GiB or TiB)" },
	{ HEAD "audit_days = 0\n", "t.conf:7: [store] audit_days: must be between 1 and 3650" },
	/* [listener] */
	{ HEAD "[listener]\nbind = localhost:8085\n",
	  "t.conf:8: [listener] bind: not a numeric IP address (host names are not resolved)" },
	{ HEAD "[listener]\nbind = 127.0.0.1\n",
	  "t.conf:8: [listener] bind: expected IPv4:port or [IPv6]:port" },
	{ HEAD "[listener]\nbind = ::1:8085\n",
	  "t.conf:8: [listener] bind: an IPv6 address must be in brackets: [::1]:8085" },
	{ HEAD "[listener]\nbind = 127.0.0.1:0\n",
	  "t.conf:8: [listener] bind: port must be between 1 and 65535" },
	{ HEAD "[listener]\nbind = 127.0.0.1:65536\n",
	  "t.conf:8: [listener] bind: port must be between 1 and 65535" },
	{ HEAD "[listener]\nbind = 0.0.0.0:8085\n",
	  "t.conf:7: [listener] public_url: missing (required when bind is not a loopback address; must be https)" },
	{ HEAD "[listener]\npublic_url = http://bot.example.com\n",
	  "t.conf:8: [listener] public_url: not an https URL" },
	{ HEAD "[listener]\npublic_url = https://bot.example.com/?x=1\n",
	  "t.conf:8: [listener] public_url: must not have a query or fragment (paths are appended to it)" },
	/* [app] */
	{ HEAD "[app box]\nauth = oauth2\nclient_id = abc\nclient_secret = env:WB_APP\n"
	  "authorize_url = https://box.example/authorize\napi_url = https://api.box.example\n",
	  "t.conf:7: [app box] token_url: missing (required when auth = oauth2)" },
	{ HEAD "[app box]\nauth = oauth2\nclient_id = abc\nclient_secret = env:WB_APP\n"
	  "authorize_url = https://box.example/authorize\ntoken_url = http://box.example/token\n"
	  "api_url = https://api.box.example\n",
	  "t.conf:12: [app box] token_url: not an https URL" },
	{ HEAD "[app box]\nauth = oauth2\nclient_id = abc\nclient_secret = env:WB_APP\n"
	  "authorize_url = ftp://box.example/authorize\ntoken_url = https://box.example/token\n"
	  "api_url = https://api.box.example\n",
	  "t.conf:11: [app box] authorize_url: not an https URL" },
	{ HEAD "[app box]\nauth = oauth2\nclient_id = abc\nclient_secret = env:WB_APP\n"
	  "authorize_url = box.example/authorize\ntoken_url = https://box.example/token\n"
	  "api_url = https://api.box.example\n",
	  "t.conf:11: [app box] authorize_url: not a URL" },
	{ HEAD "[app box]\nauth = oauth2\nclient_id = abc\nclient_secret = env:WB_APP\n"
	  "authorize_url = https://user:pw@box.example/authorize\ntoken_url = https://box.example/token\n"
	  "api_url = https://api.box.example\n",
	  "t.conf:11: [app box] authorize_url: must not contain user:password@ (put secrets in secret keys)" },
	{ HEAD "[app box]\napi_url = https://api.box.example\n", "t.conf:7: [app box] auth: missing" },
	{ HEAD "[app box]\nauth = saml\napi_url = https://api.box.example\n",
	  "t.conf:8: [app box] auth: must be one of oauth2 | token | none" },
	{ HEAD "[app box]\nauth = token\napi_url = https://api.box.example\n",
	  "t.conf:7: [app box] token: missing (required when auth = token)" },
	{ HEAD "[app box]\nauth = none\n", "t.conf:7: [app box] api_url: missing" },
	{ HEAD JIRA "client_id = x\n", "t.conf:11: [app jira] client_id: not used when auth = token" },
	{ HEAD BOX "token = env:WB_BOT\n", "t.conf:14: [app box] token: not used when auth = oauth2" },
	{ HEAD BOX "client_auth = post\n", "t.conf:14: [app box] client_auth: must be one of basic | body" },
	{ HEAD BOX "authorize_params = prompt=consent&state=x\n",
	  "t.conf:14: [app box] authorize_params: `state` is set by workbot and cannot be overridden" },
	{ HEAD BOX "authorize_params = redirect_uri=https://evil.example\n",
	  "t.conf:14: [app box] authorize_params: `redirect_uri` is set by workbot and cannot be overridden" },
	{ HEAD BOX "authorize_params = prompt\n",
	  "t.conf:14: [app box] authorize_params: expected name=value&name=value" },
	{ HEAD BOX "instance_hosts = *.my.salesforce.com *.com\n",
	  "t.conf:14: [app box] instance_hosts: entry 2 is not a host name or *.domain pattern" },
	/* [recipe] */
	{ HEAD BOX JIRA "[recipe r]\n",
	  "t.conf:18: [recipe r] command: missing\n"
	  "t.conf:18: [recipe r] app: missing\n"
	  "t.conf:18: [recipe r] path: missing" },
	{ HEAD BOX JIRA RECIPE("r", "do it", "nope"), "t.conf:20: [recipe r] app: no [app nope] is defined" },
	{ HEAD BOX JIRA RECIPE("r", "do it", "jira") "verify_user_access = true\n",
	  "t.conf:22: [recipe r] verify_user_access: [app jira] is auth = token; personal connections need auth = oauth2" },
	{ HEAD BOX JIRA RECIPE("r", "do it", "box") "verify_user_access = maybe\n",
	  "t.conf:22: [recipe r] verify_user_access: not a boolean (true/false, yes/no, on/off, 1/0)" },
	{ HEAD BOX JIRA RECIPE("a", "do it", "box") RECIPE("b", "Do  IT", "box"),
	  "t.conf:23: [recipe b] command: same command as [recipe a] (line 19)" },
	{ HEAD BOX JIRA RECIPE("r", "help me", "box"),
	  "t.conf:19: [recipe r] command: `help` is a built-in command" },
	{ HEAD BOX JIRA RECIPE("r", "do <it>", "box"),
	  "t.conf:19: [recipe r] command: words may contain only letters, digits, '-', '_' and '.'" },
	{ HEAD BOX JIRA RECIPE("r", "do it", "box") "params = Name\n",
	  "t.conf:22: [recipe r] params: a param name is [a-z0-9_]{1,32}, optionally followed by '?'" },
	{ HEAD BOX JIRA RECIPE("r", "do it", "box") "params = a b a?\n",
	  "t.conf:22: [recipe r] params: param `a` is listed twice" },
	{ HEAD BOX JIRA RECIPE("r", "do it", "box") "params = response\n",
	  "t.conf:22: [recipe r] params: `response` is reserved for {{response.field}}" },
	{ HEAD BOX JIRA "[recipe r]\ncommand = x\napp = box\npath = x/{{id}}\nparams = id\n",
	  "t.conf:21: [recipe r] path: must start with '/'" },
	{ HEAD BOX JIRA "[recipe r]\ncommand = x\napp = box\npath = /x/{{idd}}\nparams = id\n",
	  "t.conf:21: [recipe r] path: {{idd}} is not a declared param" },
	{ HEAD BOX JIRA "[recipe r]\ncommand = x\napp = box\npath = /x/{{response.id}}\n",
	  "t.conf:21: [recipe r] path: {{response.id}} is allowed only in reply and buttons" },
	{ HEAD BOX JIRA RECIPE("r", "do it", "box") "method = FETCH\n",
	  "t.conf:22: [recipe r] method: must be one of GET | POST | PUT | PATCH | DELETE" },
	{ HEAD BOX JIRA RECIPE("r", "do it", "box") "method = POST\nbody = {\"a\": 1,}\n",
	  "t.conf:23: [recipe r] body: not valid JSON" },
	{ HEAD BOX JIRA RECIPE("r", "do it", "box") "method = POST\nparams = n\nbody = {\"a\": {{n}}}\n",
	  "t.conf:24: [recipe r] body: {{n}} is outside a JSON string literal" },
	{ HEAD BOX JIRA RECIPE("r", "do it", "box") "method = POST\nparams = n\nbody = {\"a\": \"\\{{n}}x\"}\n",
	  "t.conf:24: [recipe r] body: {{n}} follows a backslash" },
	{ HEAD BOX JIRA RECIPE("r", "do it", "box") "method = POST\nparams = n\nbody = {\"a\": \"{{m}}\"}\n",
	  "t.conf:24: [recipe r] body: {{m}} is not a declared param" },
	{ HEAD BOX JIRA RECIPE("r", "do it", "box") "method = POST\nbody = {\"a\": \"{{response.id}}\"}\n",
	  "t.conf:23: [recipe r] body: {{response.id}} is allowed only in reply and buttons" },
	{ HEAD BOX JIRA RECIPE("r", "do it", "box") "method = POST\nbody = {\"a\": \"{{ x }}\"}\n",
	  "t.conf:23: [recipe r] body: malformed placeholder (expected {{param}} or {{response.field}})" },
	{ HEAD BOX JIRA RECIPE("r", "do it", "box") "body = {}\n",
	  "t.conf:22: [recipe r] body: not sent with method GET" },
	{ HEAD BOX JIRA RECIPE("r", "do it", "box") "reply = Hi {{nme}}\n",
	  "t.conf:22: [recipe r] reply: {{nme}} is not a declared param" },
	{ HEAD BOX JIRA RECIPE("r", "do it", "box") "reply = Hi {{response.}}\n",
	  "t.conf:22: [recipe r] reply: malformed {{response...}} placeholder" },
	{ HEAD BOX JIRA RECIPE("r", "do it", "box") "allowed_users = U123 C456\n",
	  "t.conf:22: [recipe r] allowed_users: entry 2 is not a Slack user id (U... or W...)" },
	{ HEAD BOX JIRA RECIPE("r", "do it", "box") "allowed_channels = U123\n",
	  "t.conf:22: [recipe r] allowed_channels: entry 1 is not a Slack channel id (C..., G... or D...)" },
	/* Buttons. */
	{ HEAD BOX JIRA RECIPE("r", "do it", "box") "buttons = Go: approve\n",
	  "t.conf:22: [recipe r] buttons: button \"Go\": `approve` is not a recipe command" },
	{ HEAD BOX JIRA RECIPE("r", "do it", "box") RECIPE("ok", "approve", "box") "params = id\n"
	  "[recipe r2]\ncommand = x\napp = box\npath = /x\nbuttons = Go: approve id=1\n",
	  "t.conf:31: [recipe r2] buttons: button \"Go\" runs [recipe ok], which needs verify_user_access = true" },
	{ HEAD BOX JIRA RECIPE("ok", "approve", "box") "params = id\nverify_user_access = yes\n"
	  "[recipe r]\ncommand = x\napp = box\npath = /x\nbuttons = Go: approve idd=1\n",
	  "t.conf:28: [recipe r] buttons: button \"Go\": [recipe ok] has no param `idd`\n"
	  "t.conf:28: [recipe r] buttons: button \"Go\": [recipe ok] needs param `id`" },
	{ HEAD BOX JIRA RECIPE("ok", "approve", "box") "params = id\nverify_user_access = on\n"
	  "[recipe r]\ncommand = x\napp = box\npath = /x\nbuttons = Go: approve id={{nope}}\n",
	  "t.conf:28: [recipe r] buttons: button \"Go\": {{nope}} is not a declared param" },
	{ HEAD BOX JIRA RECIPE("r", "do it", "box") "buttons = Go approve\n",
	  "t.conf:22: [recipe r] buttons: button 1: expected `Label: command key=value`" },
	{ HEAD BOX JIRA RECIPE("r", "do it", "box") "buttons = Go: approve id=1 now\n",
	  "t.conf:22: [recipe r] buttons: button \"Go\": command words come before key=value params" },
	{ HEAD BOX JIRA RECIPE("r", "do it", "box") "buttons = Go: approve id=\"x\n",
	  "t.conf:22: [recipe r] buttons: button \"Go\": unterminated quote" },
	{ HEAD BOX JIRA RECIPE("r", "do it", "box") "buttons = Go: | B: x\n",
	  "t.conf:22: [recipe r] buttons: button \"Go\": no command" },
};

static void
test_bad_configs(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_configs) / sizeof(bad_configs[0]); i++)
		expect_error(bad_configs[i].text, bad_configs[i].msg);
}

/* A line longer than the reader's limit is one error, not a split line. */
static void
test_line_too_long(void **state)
{
	size_t n = 70000;
	char *text = xmalloc(n + 200);

	(void)state;
	strcpy(text, HEAD "key_file2 = ");
	memset(text + strlen(text), 'a', n);
	strcpy(text + strlen(HEAD) + 12 + n, "=b\n");
	expect_error(text, "t.conf:7: line longer than 65536 bytes");
	free(text);
}

/* Every problem, in line order, in one run. */
static void
test_all_errors(void **state)
{
	struct errors e;
	struct config *cfg;

	(void)state;
	cfg = load(
	    "[slack]\n"				/* 1 */
	    "app_token = env:WB_UNSET\n"	/* 2 */
	    "connections = 9\n"			/* 3 */
	    "colour = blue\n"			/* 4 */
	    "[listener]\n"			/* 5 */
	    "bind = example.com:80\n"		/* 6 */
	    "[app box]\n"			/* 7 */
	    "auth = oauth2\n"			/* 8 */
	    "token_url = http://box.example\n"	/* 9 */
	    "api_url = https://box.example\n"	/* 10 */
	    "[recipe r]\n"			/* 11 */
	    "command = go\n"			/* 12 */
	    "app = nope\n"			/* 13 */
	    "path = /{{x}}\n",			/* 14 */
	    &e);
	assert_null(cfg);
	assert_string_equal(e.buf,
	    "t.conf:1: [slack] bot_token: missing\n"
	    "t.conf:2: [slack] app_token: environment variable WB_UNSET is not set\n"
	    "t.conf:3: [slack] connections: must be between 1 and 4\n"
	    "t.conf:4: [slack] colour: unknown key\n"
	    "t.conf:6: [listener] bind: not a numeric IP address (host names are not resolved)\n"
	    "t.conf:7: [app box] client_id: missing (required when auth = oauth2)\n"
	    "t.conf:7: [app box] client_secret: missing (required when auth = oauth2)\n"
	    "t.conf:7: [app box] authorize_url: missing (required when auth = oauth2)\n"
	    "t.conf:9: [app box] token_url: not an https URL\n"
	    "t.conf:13: [recipe r] app: no [app nope] is defined\n"
	    "t.conf:14: [recipe r] path: {{x}} is not a declared param\n"
	    "t.conf: [store]: missing section\n");
}

/* Whatever is wrong, a secret value never reaches a message. */
static void
test_secret_never_printed(void **state)
{
	static const char *const texts[] = {
		/* Inline in a file others can read (mode set below). */
		"[slack]\napp_token = xapp-LEAK-4242 ;#tail\nbot_token = env:WB_BOT\n"
		"[store]\npath = /p\nkey_file = /k\n",
		/* Wrapped over two lines: the tail is a line of its own. */
		"[slack]\napp_token = xapp-LEAK\n-4242 ;#tail\nbot_token = env:WB_BOT\n",
		"[slack]\napp_token = xapp\nLEAK-4242=tail\nbot_token = xoxb-LEAK-4242\n"
		"connections = 7\n",
		/* In a section that is refused, or given twice. */
		"[slak]\napp_token = xapp-LEAK-4242\n[slack]\nbot_token = xoxb-LEAK-4242\n"
		"bot_token = xoxb-LEAK-4242\n",
		/* On an app that does not use it, beside broken URLs. */
		HEAD "[app jira]\nauth = token\ntoken = LEAK-4242\nclient_secret = LEAK-4242\n"
		"api_url = http://LEAK-4242.example\n",
		HEAD "[app box]\nauth = oauth2\nclient_secret = LEAK-4242\n"
		"token_url = https://u:LEAK-4242@box.example\napi_url = https://x.example/?t=LEAK-4242\n",
		/* A value that is not what the key wants. */
		"[slack]\napp_token = env:LEAK-4242\nbot_token = LEAK-4242\nworkers = LEAK-4242\n"
		"api_url = LEAK-4242\n",
		HEAD "[listener]\nbind = LEAK-4242\npublic_url = LEAK-4242\n",
	};
	struct errors all = { .len = 0 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct errors e;
		struct config *cfg;

		memset(&e, 0, sizeof(e));
		write_file("t.conf", texts[i], 0644);
		cfg = config_load("t.conf", collect, &e);
		assert_null(cfg);
		assert_true(e.count > 0);
		assert_true(all.len + e.len < sizeof(all.buf));
		memcpy(all.buf + all.len, e.buf, e.len);
		all.len += e.len;
	}
	if (memmem(all.buf, all.len, "LEAK", 4) != NULL || memmem(all.buf, all.len, "4242", 4) != NULL)
		fail_msg("a secret reached a message:\n%.*s", (int)all.len, all.buf);
	/* The file-mode check did fire for the first text. */
	assert_non_null(strstr(all.buf,
	    "t.conf:2: [slack] app_token: inline or file: secret in a config file readable by group "
	    "or others (mode 0644): use env:NAME or chmod 600 t.conf\n"));
}

static void
test_file_mode(void **state)
{
	static const char inline_secret[] =
	    "[slack]\napp_token = env:WB_APP\nbot_token = xoxb-inline\n[store]\npath = /p\nkey_file = /k\n";
	struct errors e = { .len = 0 };
	struct config *cfg;

	(void)state;
	/* Only env: secrets: any mode is fine. */
	write_file("t.conf", HEAD, 0644);
	cfg = config_load("t.conf", collect, &e);
	assert_non_null(cfg);
	config_free(cfg);
	write_file("t.conf", inline_secret, 0640);
	cfg = config_load("t.conf", collect, &e);
	assert_null(cfg);
	assert_string_equal(e.buf,
	    "t.conf:3: [slack] bot_token: inline or file: secret in a config file readable by group "
	    "or others (mode 0640): use env:NAME or chmod 600 t.conf\n");
	write_file("t.conf", inline_secret, 0600);
	cfg = config_load("t.conf", collect, &e);
	assert_non_null(cfg);
	assert_string_equal(secret_reveal(cfg->slack.bot_token.v), "xoxb-inline");
	config_free(cfg);
	/* No file at all. */
	memset(&e, 0, sizeof(e));
	assert_null(config_load("missing.conf", collect, &e));
	assert_string_equal(e.buf, "missing.conf: cannot open: No such file or directory\n");
}

static void
test_env_and_file_secrets(void **state)
{
	struct config *cfg;
	struct errors e;

	(void)state;
	setenv("WB_SPACEY", "  a ;b#c  ", 1);
	write_file("bot.secret", "xoxb-from-file\n", 0600);
	write_file("loose.secret", "xoxb-loose\n", 0644);
	write_file("empty.secret", "\n", 0600);
	cfg = load_ok("[slack]\napp_token = env:WB_SPACEY\nbot_token = file:bot.secret\n"
	    "[store]\npath = /p\nkey_file = /k\n");
	/* The environment's value is taken as is. */
	assert_string_equal(secret_reveal(cfg->slack.app_token.v), "  a ;b#c  ");
	assert_string_equal(secret_reveal(cfg->slack.bot_token.v), "xoxb-from-file");
	assert_int_equal(secret_len(cfg->slack.bot_token.v), 14);
	config_free(cfg);
	expect_error("[slack]\napp_token = env:WB_APP\nbot_token = file:loose.secret\n"
	    "[store]\npath = /p\nkey_file = /k\n",
	    "t.conf:3: [slack] bot_token: secret file loose.secret is readable by group or others "
	    "(mode 0644): chmod 600 it");
	expect_error("[slack]\napp_token = env:WB_APP\nbot_token = file:empty.secret\n"
	    "[store]\npath = /p\nkey_file = /k\n",
	    "t.conf:3: [slack] bot_token: secret file empty.secret is empty");
	expect_error("[slack]\napp_token = env:WB_APP\nbot_token = file:\n"
	    "[store]\npath = /p\nkey_file = /k\n",
	    "t.conf:3: [slack] bot_token: file: needs a path");
	/* file: in a readable config is refused like an inline secret. */
	memset(&e, 0, sizeof(e));
	write_file("t.conf", "[slack]\napp_token = env:WB_APP\nbot_token = file:bot.secret\n"
	    "[store]\npath = /p\nkey_file = /k\n", 0604);
	assert_null(config_load("t.conf", collect, &e));
	assert_int_equal(e.count, 1);
}

static void
test_sizes(void **state)
{
	static const struct { const char *text; uint64_t bytes; } sizes[] = {
		{ "1GiB", 1ULL << 30 }, { "512MiB", 512ULL << 20 }, { "1 TiB", 1ULL << 40 },
		{ "1048576", 1ULL << 20 }, { "2048KiB", 2ULL << 20 }, { "3gib", 3ULL << 30 },
	};
	static const char *const bad[] = { "64KiB", "2TiB", "1.5GiB", "GiB", "-1", "1 GB", "1048575" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *text = xasprintf(HEAD "map_size = %s\n", sizes[i].text);
		struct config *cfg = load_ok(text);

		assert_int_equal(cfg->store.map_size.v, sizes[i].bytes);
		assert_int_equal(cfg->store.map_size.line, 7);
		config_free(cfg);
		free(text);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct errors e;
		char *text = xasprintf(HEAD "map_size = %s\n", bad[i]);

		assert_null(load(text, &e));
		assert_int_equal(e.count, 1);
		assert_non_null(strstr(e.buf, "t.conf:7: [store] map_size: "));
		free(text);
	}
}

static void
test_bind(void **state)
{
	struct config *cfg;
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;

	(void)state;
	cfg = load_ok(HEAD);
	assert_string_equal(cfg->listener.bind.v, "127.0.0.1:8085");
	assert_int_equal(cfg->listener.bind.line, 0);
	assert_true(cfg->listener.bind.loopback);
	assert_string_equal(cfg->listener.public_url.v, "http://127.0.0.1:8085");
	config_free(cfg);

	cfg = load_ok(HEAD "[listener]\nbind = 127.0.0.2:9000\n");
	sin = (const struct sockaddr_in *)&cfg->listener.bind.addr;
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 9000);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x7f000002);
	assert_int_equal(cfg->listener.bind.addrlen, sizeof(*sin));
	assert_int_equal(cfg->listener.bind.port, 9000);
	assert_string_equal(cfg->listener.public_url.v, "http://127.0.0.2:9000");
	config_free(cfg);

	cfg = load_ok(HEAD "[listener]\nbind = [::1]:65535\n");
	sin6 = (const struct sockaddr_in6 *)&cfg->listener.bind.addr;
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 65535);
	assert_true(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
	assert_int_equal(cfg->listener.bind.addrlen, sizeof(*sin6));
	assert_string_equal(cfg->listener.bind.v, "[::1]:65535");
	assert_string_equal(cfg->listener.public_url.v, "http://[::1]:65535");
	config_free(cfg);

	/* Anything but loopback needs an https public_url; its '/' is dropped. */
	cfg = load_ok(HEAD "[listener]\nbind = 0.0.0.0:8085\npublic_url = https://bot.example.com/wb/\n");
	assert_false(cfg->listener.bind.loopback);
	assert_string_equal(cfg->listener.public_url.v, "https://bot.example.com/wb");
	config_free(cfg);

	cfg = load_ok(HEAD "[listener]\nbind = [2001:db8::1]:443\npublic_url = http://localhost:8085\n");
	assert_string_equal(cfg->listener.bind.v, "[2001:db8::1]:443");
	assert_false(cfg->listener.bind.loopback);
	config_free(cfg);

	expect_error(HEAD "[listener]\nbind = [::1:8085\n",
	    "t.conf:8: [listener] bind: expected IPv4:port or [IPv6]:port");
	expect_error(HEAD "[listener]\nbind = [fe80::1%lo]:80\n",
	    "t.conf:8: [listener] bind: not a numeric IP address (host names are not resolved)");
	expect_error(HEAD "[listener]\nbind = 127.0.0.1:80x\n",
	    "t.conf:8: [listener] bind: port must be between 1 and 65535");
}

/* URLs: https anywhere, http only to loopback. */
static void
test_urls(void **state)
{
	static const char *const ok[] = {
		"https://api.example.com", "http://127.0.0.1:9000/api", "http://127.1.2.3",
		"http://localhost:8080", "http://[::1]:8080/x", "HTTPS://API.EXAMPLE.COM/",
	};
	static const char *const bad[] = {
		"http://example.com", "http://10.0.0.1", "http://[::2]", "ftp://127.0.0.1",
		"file:///etc/passwd", "javascript:alert(1)", "http://localhost.example.com",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char *text = xasprintf(HEAD JIRA "[app n]\nauth = none\napi_url = %s\n", ok[i]);
		struct config *cfg = load_ok(text);

		config_free(cfg);
		free(text);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *text = xasprintf(HEAD "[app n]\nauth = none\napi_url = %s\n", bad[i]);
		struct errors e;

		assert_null(load(text, &e));
		if (strcmp(e.buf, "t.conf:9: [app n] api_url: not an https URL\n") != 0 &&
		    strcmp(e.buf, "t.conf:9: [app n] api_url: not a URL\n") != 0)
			fail_msg("%s: %s", bad[i], e.buf);
		free(text);
	}
}

static void
test_buttons(void **state)
{
	struct config *cfg;
	const struct config_recipe *r, *words[3];
	const char *cmd[] = { "APPROVE", "Now", "x=1" };
	size_t used;

	(void)state;
	cfg = load_ok(HEAD BOX
	    "[recipe make]\ncommand = make\napp = box\npath = /m\nparams = who\n"
	    "reply = made {{response.a.b-c.0}}\n"
	    "buttons = Approve it: approve now id={{response.id}} note=\"a | \\\"b\\\"\" by={{who}} |"
	    " Just approve: APPROVE id=7 | Quick: approve   id=x\n"
	    "[recipe approve]\ncommand = approve\napp = box\npath = /a/{{id}}\nparams = id note?\n"
	    "verify_user_access = 1\n"
	    "[recipe approve-now]\ncommand = approve now\napp = box\npath = /n/{{id}}\n"
	    "params = id note? by?\nverify_user_access = true\n");
	r = config_recipe_find(cfg, "make");
	assert_int_equal(r->buttons.n, 3);
	/* Longest command prefix: "approve now" beats "approve". */
	assert_ptr_equal(r->buttons.v[0].target, config_recipe_find(cfg, "approve-now"));
	assert_string_equal(r->buttons.v[0].label, "Approve it");
	assert_string_equal(r->buttons.v[0].command, "approve now");
	assert_int_equal(r->buttons.v[0].params.n, 3);
	assert_string_equal(r->buttons.v[0].params.v[1].key, "note");
	assert_string_equal(r->buttons.v[0].params.v[1].value, "a | \"b\"");
	assert_string_equal(r->buttons.v[0].params.v[2].value, "{{who}}");
	assert_ptr_equal(r->buttons.v[1].target, config_recipe_find(cfg, "approve"));
	assert_string_equal(r->buttons.v[1].label, "Just approve");
	assert_string_equal(r->buttons.v[2].params.v[0].value, "x");

	words[0] = config_recipe_match(cfg, cmd, 3, &used);
	assert_ptr_equal(words[0], config_recipe_find(cfg, "approve-now"));
	assert_int_equal(used, 2);
	words[1] = config_recipe_match(cfg, cmd, 1, &used);
	assert_ptr_equal(words[1], config_recipe_find(cfg, "approve"));
	assert_int_equal(used, 1);
	words[2] = config_recipe_match(cfg, cmd + 1, 2, &used);
	assert_null(words[2]);
	assert_int_equal(used, 0);
	config_free(cfg);

	/* A button whose command is only partly a recipe's. */
	expect_error(HEAD BOX
	    "[recipe approve]\ncommand = approve\napp = box\npath = /a\nverify_user_access = true\n"
	    "[recipe r]\ncommand = r\napp = box\npath = /r\nbuttons = Go: approve later\n",
	    "t.conf:23: [recipe r] buttons: button \"Go\": `approve later` is not a recipe command");
}

struct diffs {
	char buf[512];
	size_t len;
};

static void
record_diff(void *arg, const char *section, const char *key)
{
	struct diffs *d = arg;

	d->len += (size_t)snprintf(d->buf + d->len, sizeof(d->buf) - d->len, "%s.%s ", section, key);
}

static void
test_restart_diff(void **state)
{
	struct config *a, *b;
	struct diffs d = { .len = 0 };

	(void)state;
	a = load_ok(HEAD BOX "[recipe r]\ncommand = r\napp = box\npath = /r\n");
	b = load_ok(HEAD BOX "[recipe r]\ncommand = r\napp = box\npath = /other\n");
	/* Apps and recipes are reloadable: no restart. */
	assert_int_equal(config_restart_diff(a, b, record_diff, &d), 0);
	config_free(b);
	b = load_ok("[slack]\napp_token = env:WB_APP\nbot_token = env:WB_APP\nconnections = 3\n"
	    "[store]\npath = /tmp/wb\nkey_file = /tmp/wb/master.key\nmap_size = 1024MiB\n"
	    "[listener]\nbind = [::1]:8085\n");
	assert_int_equal(config_restart_diff(a, b, record_diff, &d), 4);
	/* map_size is the same number of bytes; public_url follows bind. */
	assert_string_equal(d.buf, "slack.bot_token slack.connections listener.bind listener.public_url ");
	assert_int_equal(config_restart_diff(b, b, NULL, NULL), 0);
	config_free(a);
	config_free(b);
}

/* The placeholder scanner the renderer shares. */
static int
count_parts(void *arg, const struct template_part *p)
{
	int *counts = arg;

	counts[p->kind]++;
	return 0;
}

static void
test_template_scan(void **state)
{
	int counts[3] = { 0, 0, 0 };
	const char *err = NULL;
	size_t off = 0;

	(void)state;
	assert_int_equal(template_scan("a {{x}} b {{response.a.b}}}} c", count_parts, counts,
	    &err, &off), 0);
	assert_int_equal(counts[TEMPLATE_TEXT], 3);
	assert_int_equal(counts[TEMPLATE_PARAM], 1);
	assert_int_equal(counts[TEMPLATE_RESPONSE], 1);
	assert_int_equal(template_scan("ok {{x", count_parts, counts, &err, &off), -1);
	assert_int_equal(off, 3);
	assert_int_equal(template_scan("{{response..a}}", NULL, NULL, &err, NULL), -1);
	assert_int_equal(template_scan("{{X}}", NULL, NULL, &err, NULL), -1);
	assert_int_equal(template_scan("", NULL, NULL, &err, NULL), 0);
}

static void
test_load_buffer(void **state)
{
	static const char text[] = HEAD "[app none]\nauth = none\napi_url = https://x.example\n";
	struct errors e = { .len = 0 };
	struct config *cfg;

	(void)state;
	/* Not NUL-terminated where it ends. */
	cfg = config_load_buffer("mem", text, sizeof(text) - 1, collect, &e);
	assert_non_null(cfg);
	assert_string_equal(cfg->apps[0]->title.v, "none");
	config_free(cfg);
	cfg = config_load_buffer("mem", "[slack]\nx\0y = 1\n", 16, collect, &e);
	assert_null(cfg);
	assert_non_null(strstr(e.buf, "mem:2: NUL byte in line\n"));
	config_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example),
		cmocka_unit_test(test_verbatim),
		cmocka_unit_test(test_crlf_bom),
		cmocka_unit_test(test_ca_file),
		cmocka_unit_test(test_bad_configs),
		cmocka_unit_test(test_line_too_long),
		cmocka_unit_test(test_all_errors),
		cmocka_unit_test(test_secret_never_printed),
		cmocka_unit_test(test_file_mode),
		cmocka_unit_test(test_env_and_file_secrets),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_bind),
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_buttons),
		cmocka_unit_test(test_restart_diff),
		cmocka_unit_test(test_template_scan),
		cmocka_unit_test(test_load_buffer),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
