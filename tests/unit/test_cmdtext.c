/*
 * Unit tests for cmdtext: tables of what Slack sends and what a command
 * must read — every markup form, entities decoded once, mentions kept, the
 * bot's mention stripped, tokens with quotes and escapes, built-ins and
 * recipes matched case-insensitively, each usage error with its exact
 * message and usage line, input over the limit refused — and the way back
 * out: mrkdwn escaping and UTF-8-safe truncation.
 *
 * Configs are built in memory with config_load_buffer().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "workbot/cmdtext.h"
#include "workbot/config.h"
#include "workbot/xmalloc.h"

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

#define CONF \
	"[slack]\n" \
	"app_token = xapp-1-test\n" \
	"bot_token = xoxb-test\n" \
	"[store]\n" \
	"path = /tmp/wb\n" \
	"key_file = /tmp/wb/master.key\n" \
	"[app box]\n" \
	"auth = oauth2\n" \
	"client_id = abc\n" \
	"client_secret = s3cret\n" \
	"authorize_url = https://box.example/authorize\n" \
	"token_url = https://box.example/token\n" \
	"api_url = https://api.box.example/2.0\n" \
	"[recipe create-opportunity]\n" \
	"command = create opportunity\n" \
	"app = box\n" \
	"params = name amount? close_date?\n" \
	"method = POST\n" \
	"path = /opportunities\n" \
	"[recipe create]\n" \
	"command = create\n" \
	"app = box\n" \
	"params = what\n" \
	"path = /things/{{what}}\n" \
	"[recipe ping]\n" \
	"command = ping\n" \
	"app = box\n" \
	"path = /ping\n"

static void
on_error(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "config: %s\n", msg);
}

static int
setup(void **state)
{
	struct config *cfg = config_load_buffer("t.conf", CONF, strlen(CONF), on_error, NULL);

	*state = cfg;
	return cfg != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	config_free(*state);
	return 0;
}

/* ---- normalising -------------------------------------------------------- */

static const struct {
	const char *in, *out;
} norm_cases[] = {
	{ "hello", "hello" },
	{ "", "" },
	/* links: the target, never the label */
	{ "<mailto:a@b.c|a@b.c>", "a@b.c" },
	{ "email=<mailto:a@b.c|a@b.c>", "email=a@b.c" },
	{ "<mailto:jane@acme.com|Jane>", "jane@acme.com" },
	{ "<MAILTO:X@Y.Z>", "X@Y.Z" },
	{ "<https://x.example|label>", "https://x.example" },
	{ "<https://x.example>", "https://x.example" },
	{ "<http://example.com|example.com>", "http://example.com" },
	{ "<https://x.example/a?b=1&amp;c=2|x.example>", "https://x.example/a?b=1&c=2" },
	{ "site=<https://a.b/c> next", "site=https://a.b/c next" },
	/* mentions: byte for byte, inner escaping included */
	{ "<@U123>", "<@U123>" },
	{ "<@U123|jane>", "<@U123|jane>" },
	{ "<#C123|general>", "<#C123|general>" },
	{ "<#C1|r&amp;d>", "<#C1|r&amp;d>" },
	{ "<!channel>", "<!channel>" },
	{ "<!here>", "<!here>" },
	{ "<!subteam^S123|@team>", "<!subteam^S123|@team>" },
	{ "hi <@U1> and <!everyone>!", "hi <@U1> and <!everyone>!" },
	/* entities: the three Slack uses, once */
	{ "&lt;b&gt; &amp; c", "<b> & c" },
	{ "&lt;!channel&gt;", "<!channel>" },
	{ "&amp;lt;", "&lt;" },
	{ "&amp;amp;", "&amp;" },
	{ "a &foo; &quot; &#60; b", "a &foo; &quot; &#60; b" },
	{ "&", "&" },
	{ "&am", "&am" },
	{ "name=\"&lt;b&gt;\"", "name=\"<b>\"" },
	/* a real '<' that is not markup is kept */
	{ "x < y", "x < y" },
	{ "x <y <@U1>", "x <y <@U1>" },
	{ "<>", "<>" },
	{ "a <b", "a <b" },
	/* all together */
	{ "create opportunity name=\"A &amp; B\" site=<https://a.b|a.b> cc=<@U9>",
	  "create opportunity name=\"A & B\" site=https://a.b cc=<@U9>" },
	{ "caf\xc3\xa9 &gt; th\xc3\xa9", "caf\xc3\xa9 > th\xc3\xa9" },
};

static void
test_normalise(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NITEMS(norm_cases); i++) {
		char *out = NULL, err[128] = "";

		if (cmdtext_normalise(norm_cases[i].in, &out, err, sizeof(err)) != 0)
			fail_msg("case %zu: %s", i, err);
		if (strcmp(out, norm_cases[i].out) != 0)
			fail_msg("case %zu: \"%s\" -> \"%s\", want \"%s\"", i, norm_cases[i].in,
			    out, norm_cases[i].out);
		free(out);
	}
}

static void
test_normalise_limit(void **state)
{
	char *text = xmalloc(CMDTEXT_MAX_INPUT + 2), *out = NULL, err[128] = "";

	(void)state;
	memset(text, 'a', CMDTEXT_MAX_INPUT);
	text[CMDTEXT_MAX_INPUT] = '\0';
	assert_int_equal(cmdtext_normalise(text, &out, err, sizeof(err)), 0);
	assert_int_equal(strlen(out), CMDTEXT_MAX_INPUT);
	free(out);
	out = NULL;

	text[CMDTEXT_MAX_INPUT] = 'a';
	text[CMDTEXT_MAX_INPUT + 1] = '\0';
	assert_int_equal(cmdtext_normalise(text, &out, err, sizeof(err)), -1);
	assert_null(out);
	assert_string_equal(err, "the message is too long (more than 40000 bytes)");
	free(text);
}

/* ---- the bot's mention -------------------------------------------------- */

static const struct {
	const char *in, *bot, *out;
	int rc;
} strip_cases[] = {
	{ "<@UBOT> help", "UBOT", "help", 1 },
	{ "  <@UBOT>   connections  ", "UBOT", "connections", 1 },
	{ "<@UBOT|workbot> help", "UBOT", "help", 1 },
	{ "<@UBOT>help", "UBOT", "help", 1 },
	{ "help <@UBOT>", "UBOT", "help", 1 },
	{ "create <@UBOT> opportunity name=x", "UBOT", "create opportunity name=x", 1 },
	{ "<@UBOT>", "UBOT", "", 1 },
	{ "<@U999> <@UBOT> help", "UBOT", "<@U999> help", 1 },
	{ "<@UBOT> assign owner=<@UBOT>", "UBOT", "assign owner=<@UBOT>", 1 },
	{ "help\xc2\xa0<@UBOT>", "UBOT", "help", 1 },
	{ "<@UBOTX> help", "UBOT", "<@UBOTX> help", 0 },
	{ "assign owner=<@UBOT>", "UBOT", "assign owner=<@UBOT>", 0 },
	{ "x<@UBOT> y", "UBOT", "x<@UBOT> y", 0 },
	{ "  help  ", "UBOT", "help", 0 },
	{ "<@UBOT> help", NULL, "<@UBOT> help", 0 },
	{ "<@UBOT> help", "", "<@UBOT> help", 0 },
};

static void
test_strip_mention(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NITEMS(strip_cases); i++) {
		char *out = NULL;
		int rc = cmdtext_strip_mention(strip_cases[i].in, strip_cases[i].bot, &out);

		if (rc != strip_cases[i].rc || strcmp(out, strip_cases[i].out) != 0)
			fail_msg("case %zu: \"%s\" -> %d \"%s\", want %d \"%s\"", i,
			    strip_cases[i].in, rc, out, strip_cases[i].rc, strip_cases[i].out);
		free(out);
	}
}

/* ---- tokens ------------------------------------------------------------- */

/* Tokens written as `word` or `key=value`, joined by '|'. */
static char *
tokens_text(const struct cmdtext_tokens *t)
{
	char *s = xstrdup(""), *n;
	size_t i;

	for (i = 0; i < t->n; i++) {
		n = xasprintf("%s%s%s%s%s", s, i > 0 ? "|" : "", t->v[i].key ? t->v[i].key : "",
		    t->v[i].key ? "=" : "", t->v[i].value);
		free(s);
		s = n;
	}
	return s;
}

static const struct {
	const char *in, *out, *err;
} tok_cases[] = {
	{ "", "", NULL },
	{ "   ", "", NULL },
	{ "a b", "a|b", NULL },
	{ " a\tb\r\nc\xc2\xa0" "d ", "a|b|c|d", NULL },
	{ "name=Acme amount=5000", "name=Acme|amount=5000", NULL },
	{ "name=\"Acme Corp\"", "name=Acme Corp", NULL },
	{ "n=\"say \\\"hi\\\" \\\\o/\"", "n=say \"hi\" \\o/", NULL },
	{ "p=\"C:\\temp\\x\"", "p=C:\\temp\\x", NULL },
	{ "n=\"two\nlines\" x=1", "n=two\nlines|x=1", NULL },
	{ "n=\"\" m=", "n=|m=", NULL },
	{ "n=a=b", "n=a=b", NULL },
	{ "n=a\"b", "n=a\"b", NULL },
	{ "Close-Date=x", "Close-Date=x", NULL },
	{ "=x", "=x", NULL },
	{ "https://x.example/?a=b", "https://x.example/?a=b", NULL },
	{ "\"quoted words\"", "\"quoted|words\"", NULL },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=1", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=1", NULL },
	{ "name=\"Acme", NULL, "unterminated quote after name=" },
	{ "name=\"Acme \\\"", NULL, "unterminated quote after name=" },
	{ "name=\"Acme\"corp", NULL,
	  "text right after the closing quote of name= (put a space after it)" },
};

static void
test_tokenise(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NITEMS(tok_cases); i++) {
		struct cmdtext_tokens t = { NULL, 0 };
		char err[128] = "", *got;
		int rc = cmdtext_tokenise(tok_cases[i].in, &t, err, sizeof(err));

		if (tok_cases[i].err != NULL) {
			if (rc != -1 || strcmp(err, tok_cases[i].err) != 0)
				fail_msg("case %zu: rc %d err \"%s\"", i, rc, err);
			continue;
		}
		if (rc != 0)
			fail_msg("case %zu: %s", i, err);
		got = tokens_text(&t);
		if (strcmp(got, tok_cases[i].out) != 0)
			fail_msg("case %zu: \"%s\" -> \"%s\", want \"%s\"", i, tok_cases[i].in, got,
			    tok_cases[i].out);
		free(got);
		cmdtext_tokens_free(&t);
	}
	/* key=value: the key is 1..32 of [A-Za-z0-9_-]; longer is a plain word. */
	{
		struct cmdtext_tokens t;

		assert_int_equal(cmdtext_tokenise("abcdefghijklmnopqrstuvwxyz012345=1", &t, NULL, 0), 0);
		assert_non_null(t.v[0].key);
		cmdtext_tokens_free(&t);
		assert_int_equal(cmdtext_tokenise("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=1", &t, NULL, 0), 0);
		assert_null(t.v[0].key);
		cmdtext_tokens_free(&t);
	}
}

/* ---- commands ----------------------------------------------------------- */

#define USAGE_OPP "create opportunity name=… [amount=…] [close_date=…]"

static const struct {
	const char *in;
	int rc;
	enum cmdtext_kind kind;
	const char *recipe;	/* on success or usage error */
	const char *params;	/* RECIPE: name=value|... in typed order */
	const char *error, *usage;
} parse_cases[] = {
	{ "", 0, CMDTEXT_EMPTY, NULL, NULL, NULL, NULL },
	{ " \t\n", 0, CMDTEXT_EMPTY, NULL, NULL, NULL, NULL },
	{ "help", 0, CMDTEXT_HELP, NULL, NULL, NULL, NULL },
	{ "  HeLp  ", 0, CMDTEXT_HELP, NULL, NULL, NULL, NULL },
	{ "Connections", 0, CMDTEXT_CONNECTIONS, NULL, NULL, NULL, NULL },
	{ "CONNECTIONS\n", 0, CMDTEXT_CONNECTIONS, NULL, NULL, NULL, NULL },
	{ "connections please", 0, CMDTEXT_UNKNOWN, NULL, NULL, NULL, NULL },
	{ "help me", 0, CMDTEXT_UNKNOWN, NULL, NULL, NULL, NULL },
	{ "helpful", 0, CMDTEXT_UNKNOWN, NULL, NULL, NULL, NULL },
	{ "frobnicate the thing", 0, CMDTEXT_UNKNOWN, NULL, NULL, NULL, NULL },
	{ "name=x", 0, CMDTEXT_UNKNOWN, NULL, NULL, NULL, NULL },
	{ "pingpong", 0, CMDTEXT_UNKNOWN, NULL, NULL, NULL, NULL },
	{ "frob name=\"open", 0, CMDTEXT_UNKNOWN, NULL, NULL, NULL, NULL },
	{ "ping", 0, CMDTEXT_RECIPE, "ping", "", NULL, NULL },
	{ "PING ", 0, CMDTEXT_RECIPE, "ping", "", NULL, NULL },
	{ "create opportunity name=Acme", 0, CMDTEXT_RECIPE, "create-opportunity",
	  "name=Acme", NULL, NULL },
	{ "CREATE Opportunity amount=5000 name=\"Acme \\\"Big\\\" Corp\"", 0, CMDTEXT_RECIPE,
	  "create-opportunity", "amount=5000|name=Acme \"Big\" Corp", NULL, NULL },
	{ "create opportunity Name=Acme CLOSE_DATE=2024-12-31", 0, CMDTEXT_RECIPE,
	  "create-opportunity", "name=Acme|close_date=2024-12-31", NULL, NULL },
	{ "create opportunity name=", 0, CMDTEXT_RECIPE, "create-opportunity", "name=", NULL, NULL },
	{ "create what=thing", 0, CMDTEXT_RECIPE, "create", "what=thing", NULL, NULL },
	/* longest prefix: `create opportunity` beats `create` */
	{ "create opportunity", -1, CMDTEXT_UNKNOWN, "create-opportunity", NULL,
	  "missing parameter `name`", USAGE_OPP },
	{ "create opportunity amount=1", -1, CMDTEXT_UNKNOWN, "create-opportunity", NULL,
	  "missing parameter `name`", USAGE_OPP },
	{ "create opportunity name=a colour=red", -1, CMDTEXT_UNKNOWN, "create-opportunity", NULL,
	  "unknown parameter `colour`", USAGE_OPP },
	{ "create opportunity name=a NAME=b", -1, CMDTEXT_UNKNOWN, "create-opportunity", NULL,
	  "parameter `name` given twice", USAGE_OPP },
	{ "create opportunity Acme", -1, CMDTEXT_UNKNOWN, "create-opportunity", NULL,
	  "`Acme` is not a name=value parameter", USAGE_OPP },
	{ "create opportunity name=a <@U1>", -1, CMDTEXT_UNKNOWN, "create-opportunity", NULL,
	  "`<@U1>` is not a name=value parameter", USAGE_OPP },
	{ "create opportunity name=\"Acme", -1, CMDTEXT_UNKNOWN, "create-opportunity", NULL,
	  "unterminated quote after name=", USAGE_OPP },
	{ "create opportunity name=\"Acme\"x", -1, CMDTEXT_UNKNOWN, "create-opportunity", NULL,
	  "text right after the closing quote of name= (put a space after it)", USAGE_OPP },
	{ "create thing=1", -1, CMDTEXT_UNKNOWN, "create", NULL,
	  "unknown parameter `thing`", "create what=…" },
	{ "create opportunities name=x", -1, CMDTEXT_UNKNOWN, "create", NULL,
	  "`opportunities` is not a name=value parameter", "create what=…" },
	{ "ping pong", -1, CMDTEXT_UNKNOWN, "ping", NULL,
	  "`pong` is not a name=value parameter", "ping" },
	/* a long positional word is quoted cut, at a character boundary */
	{ "ping \xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
	  -1, CMDTEXT_UNKNOWN, "ping", NULL,
	  "`\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xe2\x80\xa6` is not a "
	  "name=value parameter", "ping" },
};

static char *
params_text(const struct cmdtext_params *p)
{
	char *s = xstrdup(""), *n;
	size_t i;

	for (i = 0; i < p->n; i++) {
		n = xasprintf("%s%s%s=%s", s, i > 0 ? "|" : "", p->v[i].name, p->v[i].value);
		free(s);
		s = n;
	}
	return s;
}

static void
test_parse(void **state)
{
	const struct config *cfg = *state;
	size_t i;

	for (i = 0; i < NITEMS(parse_cases); i++) {
		struct cmdtext_cmd cmd;
		int rc = cmdtext_parse(cfg, parse_cases[i].in, &cmd);
		const char *rname = cmd.recipe != NULL ? cmd.recipe->name : NULL;

		if (rc != parse_cases[i].rc)
			fail_msg("case %zu \"%s\": rc %d error \"%s\"", i, parse_cases[i].in, rc,
			    cmd.error ? cmd.error : "");
		if (rc == 0 && cmd.kind != parse_cases[i].kind)
			fail_msg("case %zu: kind %d, want %d", i, cmd.kind, parse_cases[i].kind);
		if ((rname == NULL) != (parse_cases[i].recipe == NULL) ||
		    (rname != NULL && strcmp(rname, parse_cases[i].recipe) != 0))
			fail_msg("case %zu: recipe %s", i, rname ? rname : "(none)");
		if (rc == 0 && cmd.kind == CMDTEXT_RECIPE) {
			char *got = params_text(&cmd.params);

			if (strcmp(got, parse_cases[i].params) != 0)
				fail_msg("case %zu: params \"%s\", want \"%s\"", i, got,
				    parse_cases[i].params);
			free(got);
			assert_null(cmd.error);
		}
		if (rc != 0) {
			assert_non_null(cmd.error);
			if (strcmp(cmd.error, parse_cases[i].error) != 0)
				fail_msg("case %zu: error \"%s\", want \"%s\"", i, cmd.error,
				    parse_cases[i].error);
			assert_non_null(cmd.usage);
			if (strcmp(cmd.usage, parse_cases[i].usage) != 0)
				fail_msg("case %zu: usage \"%s\", want \"%s\"", i, cmd.usage,
				    parse_cases[i].usage);
			assert_int_equal(cmd.params.n, 0);
		}
		cmdtext_cmd_clear(&cmd);
	}
}

/* From Slack's bytes to a command: the whole pipeline. */
static void
test_pipeline(void **state)
{
	const struct config *cfg = *state;
	const char *slack = "<@UBOT> create opportunity name=\"A &amp; B &lt;!channel&gt;\" "
	    "close_date=<mailto:x@y.z|x@y.z>";
	char *norm, *text, err[128];
	struct cmdtext_cmd cmd;

	assert_int_equal(cmdtext_normalise(slack, &norm, err, sizeof(err)), 0);
	assert_int_equal(cmdtext_strip_mention(norm, "UBOT", &text), 1);
	assert_int_equal(cmdtext_parse(cfg, text, &cmd), 0);
	assert_int_equal(cmd.kind, CMDTEXT_RECIPE);
	assert_string_equal(cmdtext_params_get(&cmd.params, "name"), "A & B <!channel>");
	assert_string_equal(cmdtext_params_get(&cmd.params, "close_date"), "x@y.z");
	assert_null(cmdtext_params_get(&cmd.params, "amount"));
	cmdtext_cmd_clear(&cmd);
	cmdtext_cmd_clear(NULL);
	free(norm);
	free(text);
}

static void
test_usage(void **state)
{
	const struct config *cfg = *state;
	char *u;

	u = cmdtext_usage(config_recipe_find(cfg, "create-opportunity"));
	assert_string_equal(u, USAGE_OPP);
	free(u);
	u = cmdtext_usage(config_recipe_find(cfg, "ping"));
	assert_string_equal(u, "ping");
	free(u);
}

/* ---- back out ----------------------------------------------------------- */

static void
test_mrkdwn_escape(void **state)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "", "" },
		{ "plain *bold* _x_", "plain *bold* _x_" },
		{ "<!channel>", "&lt;!channel&gt;" },
		{ "<@U123> & <#C1|x>", "&lt;@U123&gt; &amp; &lt;#C1|x&gt;" },
		{ "&amp;", "&amp;amp;" },
		{ "<https://evil.example|click>", "&lt;https://evil.example|click&gt;" },
		{ "caf\xc3\xa9", "caf\xc3\xa9" },
	};
	size_t i;
	char *s;

	(void)state;
	for (i = 0; i < NITEMS(cases); i++) {
		s = cmdtext_mrkdwn_escape(cases[i].in, strlen(cases[i].in));
		if (strcmp(s, cases[i].out) != 0)
			fail_msg("case %zu: \"%s\"", i, s);
		free(s);
	}
	/* `len` bounds it: a prefix, not a C string */
	s = cmdtext_mrkdwn_escape("<a>", 2);
	assert_string_equal(s, "&lt;a");
	free(s);
}

static void
test_truncate(void **state)
{
	static const struct {
		const char *in;
		size_t max;
		const char *out;
	} cases[] = {
		{ "hello", 5, "hello" },
		{ "hello", 10, "hello" },
		{ "hello world", 8, "hello\xe2\x80\xa6" },
		/* never inside a UTF-8 sequence */
		{ "ab\xc3\xa9\xc3\xa9", 6, "ab\xc3\xa9\xc3\xa9" },
		{ "ab\xc3\xa9\xc3\xa9\xc3\xa9", 6, "ab\xe2\x80\xa6" },
		{ "ab\xc3\xa9\xc3\xa9\xc3\xa9", 7, "ab\xc3\xa9\xe2\x80\xa6" },
		{ "\xf0\x9f\x98\x80\xf0\x9f\x98\x80", 6, "\xe2\x80\xa6" },
		{ "\xf0\x9f\x98\x80\xf0\x9f\x98\x80", 7, "\xf0\x9f\x98\x80\xe2\x80\xa6" },
		/* never inside an entity */
		{ "ab&amp;cdef", 8, "ab\xe2\x80\xa6" },
		{ "ab&amp;cdef", 10, "ab&amp;\xe2\x80\xa6" },
		{ "abc&lt;def", 8, "abc\xe2\x80\xa6" },
		{ "abc&gt;def", 9, "abc\xe2\x80\xa6" },
		{ "abc&gt;defgh", 10, "abc&gt;\xe2\x80\xa6" },
		{ "a&b cdefgh", 6, "a&b\xe2\x80\xa6" },
		/* too small for the ellipsis */
		{ "abcdef", 2, "ab" },
	};
	size_t i, n;

	(void)state;
	for (i = 0; i < NITEMS(cases); i++) {
		char *s = xstrdup(cases[i].in);

		n = cmdtext_truncate(s, cases[i].max);
		if (strcmp(s, cases[i].out) != 0 || n != strlen(s) || n > cases[i].max)
			fail_msg("case %zu: \"%s\" (%zu)", i, s, n);
		free(s);
	}
}

static void
test_params(void **state)
{
	struct cmdtext_params p = { NULL, 0 };

	(void)state;
	assert_null(cmdtext_params_get(&p, "a"));
	cmdtext_params_add(&p, "a", "1");
	cmdtext_params_add(&p, "b", "");
	assert_string_equal(cmdtext_params_get(&p, "a"), "1");
	assert_string_equal(cmdtext_params_get(&p, "b"), "");
	assert_null(cmdtext_params_get(&p, "A"));
	cmdtext_params_clear(&p);
	assert_int_equal(p.n, 0);
	cmdtext_params_clear(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalise),
		cmocka_unit_test(test_normalise_limit),
		cmocka_unit_test(test_strip_mention),
		cmocka_unit_test(test_tokenise),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_pipeline),
		cmocka_unit_test(test_usage),
		cmocka_unit_test(test_mrkdwn_escape),
		cmocka_unit_test(test_truncate),
		cmocka_unit_test(test_params),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
