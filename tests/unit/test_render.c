/*
 * Unit tests for render: path escaping and the segments it refuses, the
 * base + path join that cannot leave the host, JSON bodies that stay valid
 * and round-trip hostile values exactly, mrkdwn replies that keep
 * `<!channel>` inert, `{{response…}}` lookups (string, number, object,
 * missing, array index, non-JSON answer), and button values made as JSON
 * and read back strictly.
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
#include <cjson/cJSON.h>

#include "workbot/cmdtext.h"
#include "workbot/config.h"
#include "workbot/render.h"
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
	"[app jira]\n" \
	"auth = token\n" \
	"token = t0ken\n" \
	"api_url = https://jira.example\n" \
	"[recipe create-opportunity]\n" \
	"command = create opportunity\n" \
	"app = box\n" \
	"verify_user_access = true\n" \
	"params = name amount?\n" \
	"method = POST\n" \
	"path = /opportunities\n" \
	"body = {\"Name\": \"{{name}}\", \"Amount\": \"{{amount}}\"}\n" \
	"reply = Created *{{name}}* (`{{response.id}}`)\n" \
	"buttons = Approve: approve id={{response.id}} note=\"by {{name}}\" | " \
	"Reject: reject id={{response.id}}\n" \
	"[recipe approve]\n" \
	"command = approve\n" \
	"app = box\n" \
	"verify_user_access = true\n" \
	"params = id note?\n" \
	"method = PATCH\n" \
	"path = /opportunities/{{id}}\n" \
	"[recipe reject]\n" \
	"command = reject\n" \
	"app = box\n" \
	"verify_user_access = true\n" \
	"params = id\n" \
	"path = /opportunities/{{id}}\n" \
	"[recipe status]\n" \
	"command = status\n" \
	"app = jira\n" \
	"params = key\n" \
	"path = /issue/{{key}}\n"

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

/* One param list from "name", "value" pairs. */
static struct cmdtext_params
params1(const char *name, const char *value)
{
	struct cmdtext_params p = { NULL, 0 };

	if (name != NULL)
		cmdtext_params_add(&p, name, value);
	return p;
}

/* ---- path --------------------------------------------------------------- */

static const struct {
	const char *tmpl, *value;	/* the value of param `id` (NULL: absent) */
	const char *out, *err;
} path_cases[] = {
	{ "/users/{{id}}/items", "42", "/users/42/items", NULL },
	{ "/users/{{id}}/items", "a/b", "/users/a%2Fb/items", NULL },
	{ "/users/{{id}}", "a b", "/users/a%20b", NULL },
	{ "/users/{{id}}", "caf\xc3\xa9 \xe2\x82\xac", "/users/caf%C3%A9%20%E2%82%AC", NULL },
	{ "/users/{{id}}", "?x#y%z&", "/users/%3Fx%23y%25z%26", NULL },
	{ "/users/{{id}}", "../../admin", "/users/..%2F..%2Fadmin", NULL },
	{ "/users/{{id}}", "%2e%2e", "/users/%252e%252e", NULL },
	{ "/users/{{id}}", "...", "/users/...", NULL },
	{ "/users/{{id}}", "a-b_c.d~e", "/users/a-b_c.d~e", NULL },
	{ "/users/{{id}}", "@evil.example", "/users/%40evil.example", NULL },
	{ "/v{{id}}/x", "", "/v/x", NULL },
	{ "/x/.{{id}}", "x", "/x/.x", NULL },
	/* after '?': query values, empty is fine */
	{ "/search?q={{id}}", "", "/search?q=", NULL },
	{ "/search?q={{id}}", "a&b=c d", "/search?q=a%26b%3Dc%20d", NULL },
	{ "/search?q={{id}}", "..", "/search?q=..", NULL },
	/* refused: a segment a value makes empty, `.` or `..` */
	{ "/users/{{id}}", ".", NULL,
	  "parameter `id` cannot make a URL path segment that is empty, `.` or `..`" },
	{ "/users/{{id}}/x", "..", NULL,
	  "parameter `id` cannot make a URL path segment that is empty, `.` or `..`" },
	{ "/users/{{id}}", "", NULL,
	  "parameter `id` cannot make a URL path segment that is empty, `.` or `..`" },
	{ "/users/{{id}}/x", NULL, NULL,
	  "parameter `id` cannot make a URL path segment that is empty, `.` or `..`" },
	{ "/{{id}}", "..", NULL,
	  "parameter `id` cannot make a URL path segment that is empty, `.` or `..`" },
	{ "/x/.{{id}}", ".", NULL,
	  "parameter `id` cannot make a URL path segment that is empty, `.` or `..`" },
	{ "/x/{{id}}{{id}}", ".", NULL,
	  "parameter `id` cannot make a URL path segment that is empty, `.` or `..`" },
	{ "/x/{{response.id}}", "1", NULL, "{{response.id}} cannot be used in a path" },
	{ "/x/{{id", "1", NULL,
	  "path template: malformed placeholder (expected {{param}} or {{response.field}})" },
};

static void
test_path(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NITEMS(path_cases); i++) {
		struct cmdtext_params p = params1(path_cases[i].value ? "id" : NULL,
		    path_cases[i].value);
		char *out = NULL, err[256] = "";
		int rc = render_path(path_cases[i].tmpl, &p, &out, err, sizeof(err));

		if (path_cases[i].out != NULL) {
			if (rc != 0)
				fail_msg("case %zu: %s", i, err);
			if (strcmp(out, path_cases[i].out) != 0)
				fail_msg("case %zu: \"%s\", want \"%s\"", i, out, path_cases[i].out);
		} else {
			if (rc != -1 || out != NULL || strcmp(err, path_cases[i].err) != 0)
				fail_msg("case %zu: rc %d err \"%s\"", i, rc, err);
		}
		free(out);
		cmdtext_params_clear(&p);
	}
}

static void
test_path_too_long(void **state)
{
	char *v = xmalloc(RENDER_MAX_PATH), *out = NULL, err[256];
	struct cmdtext_params p;

	(void)state;
	/* 3000 bytes that escape to 9000: over the bound after escaping */
	memset(v, '/', 3000);
	v[3000] = '\0';
	p = params1("id", v);
	assert_int_equal(render_path("/x/{{id}}", &p, &out, err, sizeof(err)), -1);
	assert_null(out);
	assert_string_equal(err, "the URL path would be longer than 8192 bytes");
	cmdtext_params_clear(&p);
	free(v);
}

static const struct {
	const char *base, *path, *out;
} join_cases[] = {
	{ "https://h.example", "/x", "https://h.example/x" },
	{ "https://h.example/", "/x", "https://h.example/x" },
	{ "https://h.example//", "/x", "https://h.example/x" },
	{ "https://h.example/api/2.0", "/v1/x?q=1", "https://h.example/api/2.0/v1/x?q=1" },
	{ "https://h.example/api/2.0/", "/v1/x", "https://h.example/api/2.0/v1/x" },
	{ "http://127.0.0.1:8099", "/x", "http://127.0.0.1:8099/x" },
	{ "http://[::1]:8099/", "/x", "http://[::1]:8099/x" },
	/* an '@' after the host is only a path byte */
	{ "https://h.example", "/@evil.example/x", "https://h.example/@evil.example/x" },
	{ "https://h.example", "/x/%40evil.example", "https://h.example/x/%40evil.example" },
	/* refused */
	{ "https://h.example", "x", NULL },
	{ "https://h.example", "", NULL },
	{ "https://h.example", "//evil.example/x", NULL },
	{ "https://h.example", "/x\\@evil.example", NULL },
	{ "https://h.example", "/\\evil.example", NULL },
	{ "https://h.example", "/x#frag", NULL },
	{ "https://h.example", "/x y", NULL },
	{ "https://h.example", "/x\n", NULL },
	{ "https://u:p@h.example", "/x", NULL },
	{ "https://u@h.example", "/x", NULL },
	{ "https://h.example?x=1", "/x", NULL },
	{ "https://h.example#f", "/x", NULL },
	{ "ftp://h.example", "/x", NULL },
	{ "h.example", "/x", NULL },
	{ "", "/x", NULL },
	{ "https://", "/x", NULL },
};

static void
test_url_join(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NITEMS(join_cases); i++) {
		char *out = NULL, err[256] = "";
		int rc = render_url_join(join_cases[i].base, join_cases[i].path, &out, err,
		    sizeof(err));

		if (join_cases[i].out != NULL) {
			if (rc != 0)
				fail_msg("case %zu: %s", i, err);
			if (strcmp(out, join_cases[i].out) != 0)
				fail_msg("case %zu: \"%s\"", i, out);
		} else if (rc != -1 || out != NULL || err[0] == '\0') {
			fail_msg("case %zu: accepted \"%s\"", i, out ? out : "");
		}
		free(out);
	}
}

/* The result of render_path() joined: the recipe path as the app sees it. */
static void
test_path_and_join(void **state)
{
	struct cmdtext_params p = params1("id", "../../../admin?x=1#y");
	char *path, *url, err[256];

	(void)state;
	assert_int_equal(render_path("/opportunities/{{id}}", &p, &path, err, sizeof(err)), 0);
	assert_int_equal(render_url_join("https://acme.my.salesforce.com", path, &url, err,
	    sizeof(err)), 0);
	assert_string_equal(url,
	    "https://acme.my.salesforce.com/opportunities/..%2F..%2F..%2Fadmin%3Fx%3D1%23y");
	free(path);
	free(url);
	cmdtext_params_clear(&p);
}

/* ---- body --------------------------------------------------------------- */

static const char *const hostile[] = {
	"plain",
	"",
	"\"}, \"x\": \"",
	"\", \"admin\": true, \"z\": \"",
	"\\",
	"\\\"",
	"\\\\\"}",
	"\x01\x02\x1f\n\r\t\b\f\x7f",
	"</script><!--",
	"{{name}}",
	"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
	"\xe2\x80\xa8\xe2\x80\xa9",
	"\\u0000",
};

static void
test_body_hostile(void **state)
{
	const char *tmpl = "{\"Name\": \"{{name}}\", \"Amount\": \"{{amount}}\", "
	    "\"Note\": \"x: {{name}} \\\\ \\\"{{name}}\\\"\", \"Stage\": \"Prospecting\"}";
	size_t i;

	(void)state;
	for (i = 0; i < NITEMS(hostile); i++) {
		struct cmdtext_params p = params1("name", hostile[i]);
		char *out = NULL, err[256] = "", *note;
		cJSON *doc;

		if (render_body(tmpl, &p, &out, err, sizeof(err)) != 0)
			fail_msg("case %zu: %s", i, err);
		doc = cJSON_ParseWithOpts(out, NULL, 1);
		if (doc == NULL)
			fail_msg("case %zu: not JSON: %s", i, out);
		assert_int_equal(cJSON_GetArraySize(doc), 4);
		/* the value comes back exactly, byte for byte */
		assert_string_equal(cJSON_GetObjectItemCaseSensitive(doc, "Name")->valuestring,
		    hostile[i]);
		/* a missing optional param is "" */
		assert_string_equal(cJSON_GetObjectItemCaseSensitive(doc, "Amount")->valuestring, "");
		note = xasprintf("x: %s \\ \"%s\"", hostile[i], hostile[i]);
		assert_string_equal(cJSON_GetObjectItemCaseSensitive(doc, "Note")->valuestring, note);
		assert_string_equal(cJSON_GetObjectItemCaseSensitive(doc, "Stage")->valuestring,
		    "Prospecting");
		/* control bytes leave as \u00XX, never raw */
		assert_null(strchr(out, '\n'));
		assert_null(strchr(out, '\x01'));
		free(note);
		free(out);
		cJSON_Delete(doc);
		cmdtext_params_clear(&p);
	}
}

static void
test_body(void **state)
{
	static const struct {
		const char *tmpl, *value, *out, *err;
	} cases[] = {
		{ "{\"a\": \"{{v}}\"}", "x\x01y", "{\"a\": \"x\\u0001y\"}", NULL },
		{ "{\"a\": \"{{v}}\"}", "q\"b\\", "{\"a\": \"q\\\"b\\\\\"}", NULL },
		/* invalid UTF-8 becomes U+FFFD, valid passes through */
		{ "{\"a\": \"{{v}}\"}", "a\xff" "b\xc3(\xed\xa0\x80\xc3\xa9",
		  "{\"a\": \"a\\ufffdb\\ufffd(\\ufffd\\ufffd\\ufffd\xc3\xa9\"}", NULL },
		{ "[\"{{v}}\", {\"k\": [\"{{v}}\"]}]", "1", "[\"1\", {\"k\": [\"1\"]}]", NULL },
		{ "{\"a\": {{v}}}", "1", NULL, "{{v}} is not inside a JSON string in the body" },
		{ "{\"a\": \"\\{{v}}n\"}", "\"", NULL,
		  "{{v}} is not inside a JSON string in the body" },
		{ "{\"a\": \"\\\\{{v}}\"}", "x", "{\"a\": \"\\\\x\"}", NULL },
		{ "{\"a\": \"{{response.id}}\"}", "x", NULL,
		  "{{response.id}} cannot be used in a body" },
		{ "{\"a\": \"{{v}}\"", "x", NULL, "the rendered body is not valid JSON" },
		{ "{\"a\": \"{{v}}\"} x", "x", NULL, "the rendered body is not valid JSON" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < NITEMS(cases); i++) {
		struct cmdtext_params p = params1("v", cases[i].value);
		char *out = NULL, err[256] = "";
		int rc = render_body(cases[i].tmpl, &p, &out, err, sizeof(err));

		if (cases[i].out != NULL) {
			if (rc != 0)
				fail_msg("case %zu: %s", i, err);
			if (strcmp(out, cases[i].out) != 0)
				fail_msg("case %zu: %s", i, out);
		} else if (rc != -1 || out != NULL || strcmp(err, cases[i].err) != 0) {
			fail_msg("case %zu: rc %d err \"%s\"", i, rc, err);
		}
		free(out);
		cmdtext_params_clear(&p);
	}
}

static void
test_body_too_large(void **state)
{
	char *v = xmalloc(RENDER_MAX_BODY), *out = NULL, err[256];
	struct cmdtext_params p;

	(void)state;
	/* 30,000 control bytes become 180,000 bytes of \u00XX */
	memset(v, '\x01', 30000);
	v[30000] = '\0';
	p = params1("v", v);
	assert_int_equal(render_body("{\"a\": \"{{v}}\"}", &p, &out, err, sizeof(err)), -1);
	assert_null(out);
	assert_string_equal(err, "the request body would be larger than 65536 bytes");
	cmdtext_params_clear(&p);
	free(v);
}

/* ---- reply and response paths ------------------------------------------ */

static const char answer[] =
	"{\"id\": \"006A\", \"n\": 5000, \"f\": 1.5, \"t\": true, \"z\": null,"
	" \"s\": \"<!channel> & <@U1>\","
	" \"obj\": {\"a\": [1, \"x\"], \"b\": {\"c\": \"deep\"}},"
	" \"items\": [{\"id\": \"i0\"}, {\"id\": \"i1\"}],"
	" \"0\": \"zero key\", \"we-ird_Key\": \"w\"}";

static const struct {
	const char *tmpl, *out;
} reply_cases[] = {
	{ "{{response.id}}", "006A" },
	{ "{{response.n}}", "5000" },
	{ "{{response.f}}", "1.5" },
	{ "{{response.t}} {{response.z}}", "true null" },
	{ "{{response.s}}", "&lt;!channel&gt; &amp; &lt;@U1&gt;" },
	{ "{{response.obj}}", "{\"a\":[1,\"x\"],\"b\":{\"c\":\"deep\"}}" },
	{ "{{response.obj.b.c}}", "deep" },
	{ "{{response.obj.a}}", "[1,\"x\"]" },
	{ "{{response.obj.a.1}}", "x" },
	{ "{{response.obj.a.0}}", "1" },
	{ "{{response.items.1.id}}", "i1" },
	{ "{{response.items.01.id}}", "" },
	{ "{{response.items.2.id}}", "" },
	{ "{{response.items.x}}", "" },
	{ "{{response.0}}", "zero key" },
	{ "{{response.we-ird_Key}}", "w" },
	{ "[{{response.missing}}] [{{response.missing.deeper}}]", "[] []" },
	{ "[{{response.id.x}}] [{{response.n.0}}]", "[] []" },
	{ "[{{response.ID}}]", "[]" },
	/* the template's own text is the admin's mrkdwn, as written */
	{ "Created *{{name}}* (`{{response.id}}`) <https://x|link> &amp;",
	  "Created *&lt;!channel&gt; &amp; co* (`006A`) <https://x|link> &amp;" },
	{ "{{amount}}|{{name}}", "|&lt;!channel&gt; &amp; co" },
};

static void
test_reply(void **state)
{
	cJSON *resp = render_response_parse(answer, strlen(answer));
	struct cmdtext_params p = params1("name", "<!channel> & co");
	size_t i;

	(void)state;
	assert_non_null(resp);
	for (i = 0; i < NITEMS(reply_cases); i++) {
		char *out = NULL, err[256] = "";

		if (render_reply(reply_cases[i].tmpl, &p, resp, &out, err, sizeof(err)) != 0)
			fail_msg("case %zu: %s", i, err);
		if (strcmp(out, reply_cases[i].out) != 0)
			fail_msg("case %zu: \"%s\", want \"%s\"", i, out, reply_cases[i].out);
		free(out);
	}
	cJSON_Delete(resp);
	cmdtext_params_clear(&p);
}

static void
test_reply_no_json(void **state)
{
	static const char *const bodies[] = {
		"<html>502 Bad Gateway</html>", "", "{\"id\": \"1\"} trailing", "{\"id\": ",
	};
	size_t i;
	char *out, err[256];

	(void)state;
	for (i = 0; i < NITEMS(bodies); i++) {
		cJSON *resp = render_response_parse(bodies[i], strlen(bodies[i]));

		assert_null(resp);
		assert_int_equal(render_reply("id=[{{response.id}}]", NULL, resp, &out, err,
		    sizeof(err)), 0);
		assert_string_equal(out, "id=[]");
		free(out);
	}
	/* a NUL inside is not JSON; a body without a NUL after it is fine */
	assert_null(render_response_parse("{\"a\":\"b\0\"}", 10));
	{
		char raw[8] = { '{', '"', 'a', '"', ':', '1', '}', 'X' };
		cJSON *doc = render_response_parse(raw, 7);

		assert_non_null(doc);
		assert_true(cJSON_IsNumber(render_response_lookup(doc, "a", 1)));
		assert_null(render_response_lookup(NULL, "a", 1));
		cJSON_Delete(doc);
	}
	/* a malformed template is the one error */
	assert_int_equal(render_reply("{{oops", NULL, NULL, &out, err, sizeof(err)), -1);
	assert_string_equal(err,
	    "reply template: malformed placeholder (expected {{param}} or {{response.field}})");
}

static void
test_reply_bounded(void **state)
{
	char *v = xmalloc(30001), *out, err[256];
	struct cmdtext_params p;
	size_t len;

	(void)state;
	/* 30,000 '<' escape to 120,000 bytes: cut, at an entity boundary, not refused */
	memset(v, '<', 30000);
	v[30000] = '\0';
	p = params1("name", v);
	assert_int_equal(render_reply("x {{name}} {{name}}", &p, NULL, &out, err, sizeof(err)), 0);
	len = strlen(out);
	assert_true(len <= RENDER_MAX_REPLY);
	assert_true(len > RENDER_MAX_REPLY - 8);
	assert_string_equal(out + len - 3, "\xe2\x80\xa6");
	assert_memory_equal(out + len - 7, "&lt;", 4);
	free(out);
	cmdtext_params_clear(&p);
	free(v);
}

/* ---- buttons ------------------------------------------------------------ */

static void
test_button_roundtrip(void **state)
{
	const struct config *cfg = *state;
	const struct config_recipe *r = config_recipe_find(cfg, "create-opportunity");
	const struct config_recipe *target = NULL;
	static const char ans[] = "{\"id\": \"006A\\\"}\"}";
	cJSON *resp = render_response_parse(ans, strlen(ans));
	struct cmdtext_params p = params1("name", "Acme \"Q\" <!channel> & \\"), got;
	char *out = NULL, err[256] = "";

	assert_non_null(resp);
	assert_int_equal(r->buttons.n, 2);
	assert_int_equal(render_button_value(&r->buttons.v[0], &p, resp, &out, err,
	    sizeof(err)), 0);
	/* not mrkdwn-escaped: JSON-escaped by cJSON */
	assert_string_equal(out, "{\"recipe\":\"approve\",\"params\":{\"id\":\"006A\\\"}\","
	    "\"note\":\"by Acme \\\"Q\\\" <!channel> & \\\\\"}}");
	assert_int_equal(render_button_parse(cfg, out, &target, &got, err, sizeof(err)), 0);
	assert_ptr_equal(target, config_recipe_find(cfg, "approve"));
	assert_int_equal(got.n, 2);
	assert_string_equal(cmdtext_params_get(&got, "id"), "006A\"}");
	assert_string_equal(cmdtext_params_get(&got, "note"), "by Acme \"Q\" <!channel> & \\");
	cmdtext_params_clear(&got);
	free(out);

	/* no answer: the value renders empty, the button still names its recipe */
	assert_int_equal(render_button_value(&r->buttons.v[1], &p, NULL, &out, err,
	    sizeof(err)), 0);
	assert_string_equal(out, "{\"recipe\":\"reject\",\"params\":{\"id\":\"\"}}");
	free(out);
	cJSON_Delete(resp);
	cmdtext_params_clear(&p);
}

static void
test_button_too_long(void **state)
{
	const struct config *cfg = *state;
	const struct config_recipe *r = config_recipe_find(cfg, "create-opportunity");
	char *v = xmalloc(2001), *out = NULL, err[256];
	struct cmdtext_params p;

	memset(v, 'a', 1980);
	v[1980] = '\0';
	p = params1("name", v);
	/* 1983 bytes of note fit alone, not with the JSON around them */
	assert_int_equal(render_button_value(&r->buttons.v[0], &p, NULL, &out, err,
	    sizeof(err)), -1);
	assert_null(out);
	assert_string_equal(err, "button \"Approve\": its value would be longer than 2000 bytes");
	cmdtext_params_clear(&p);
	/* far too long: stopped while rendering */
	v[0] = '\0';
	memset(v, 'b', 2000);
	v[2000] = '\0';
	p = params1("name", v);
	assert_int_equal(render_button_value(&r->buttons.v[0], &p, NULL, &out, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "button \"Approve\": its value would be longer than 2000 bytes");
	cmdtext_params_clear(&p);
	/* quotes grow when escaped: 1000 of them are 2000 bytes in JSON */
	memset(v, '"', 1000);
	v[1000] = '\0';
	p = params1("name", v);
	assert_int_equal(render_button_value(&r->buttons.v[0], &p, NULL, &out, err,
	    sizeof(err)), -1);
	cmdtext_params_clear(&p);
	free(v);
}

static const struct {
	const char *value, *err;
} bad_values[] = {
	{ "", "button value is not a JSON object" },
	{ "approve id=1", "button value is not a JSON object" },
	{ "[]", "button value is not a JSON object" },
	{ "\"approve\"", "button value is not a JSON object" },
	{ "{\"recipe\":\"approve\",\"params\":{\"id\":\"1\"}} x", "button value is not a JSON object" },
	{ "{\"recipe\":\"approve\"}", "button value lacks recipe or params" },
	{ "{\"params\":{\"id\":\"1\"}}", "button value lacks recipe or params" },
	{ "{}", "button value lacks recipe or params" },
	{ "{\"recipe\":\"approve\",\"params\":{\"id\":\"1\"},\"user\":\"U1\"}",
	  "button value has a member other than recipe and params" },
	{ "{\"Recipe\":\"approve\",\"params\":{\"id\":\"1\"}}",
	  "button value has a member other than recipe and params" },
	{ "{\"recipe\":\"approve\",\"recipe\":\"status\",\"params\":{\"id\":\"1\"}}",
	  "button value has a member other than recipe and params" },
	{ "{\"recipe\":\"approve\",\"params\":{\"id\":\"1\"},\"params\":{}}",
	  "button value has a member other than recipe and params" },
	{ "{\"recipe\":\"nope\",\"params\":{\"id\":\"1\"}}",
	  "button value names no recipe of the current configuration" },
	{ "{\"recipe\":\"Approve\",\"params\":{\"id\":\"1\"}}",
	  "button value names no recipe of the current configuration" },
	{ "{\"recipe\":1,\"params\":{\"id\":\"1\"}}",
	  "button value names no recipe of the current configuration" },
	{ "{\"recipe\":null,\"params\":{\"id\":\"1\"}}",
	  "button value names no recipe of the current configuration" },
	{ "{\"recipe\":\"status\",\"params\":{\"key\":\"1\"}}",
	  "recipe status cannot be run from a button" },
	{ "{\"recipe\":\"approve\",\"params\":[\"1\"]}", "button value params is not an object" },
	{ "{\"recipe\":\"approve\",\"params\":\"id=1\"}", "button value params is not an object" },
	{ "{\"recipe\":\"approve\",\"params\":{\"id\":\"1\",\"owner\":\"U1\"}}",
	  "button value has a parameter recipe approve does not declare" },
	{ "{\"recipe\":\"approve\",\"params\":{\"ID\":\"1\"}}",
	  "button value has a parameter recipe approve does not declare" },
	{ "{\"recipe\":\"approve\",\"params\":{\"id\":1}}",
	  "button value parameter `id` is not a string" },
	{ "{\"recipe\":\"approve\",\"params\":{\"id\":null}}",
	  "button value parameter `id` is not a string" },
	{ "{\"recipe\":\"approve\",\"params\":{\"id\":{\"a\":\"b\"}}}",
	  "button value parameter `id` is not a string" },
	{ "{\"recipe\":\"approve\",\"params\":{\"id\":\"1\",\"id\":\"2\"}}",
	  "button value parameter `id` is given twice" },
	{ "{\"recipe\":\"approve\",\"params\":{}}", "button value lacks parameter `id` of recipe approve" },
	{ "{\"recipe\":\"approve\",\"params\":{\"note\":\"x\"}}",
	  "button value lacks parameter `id` of recipe approve" },
};

static void
test_button_parse_strict(void **state)
{
	const struct config *cfg = *state;
	size_t i;
	char *big;

	for (i = 0; i < NITEMS(bad_values); i++) {
		const struct config_recipe *r = NULL;
		struct cmdtext_params p = { NULL, 0 };
		char err[256] = "";
		int rc = render_button_parse(cfg, bad_values[i].value, &r, &p, err, sizeof(err));

		if (rc != -1 || r != NULL || p.n != 0 || strcmp(err, bad_values[i].err) != 0)
			fail_msg("case %zu: rc %d err \"%s\", want \"%s\"", i, rc, err,
			    bad_values[i].err);
	}
	/* too long, even if it would parse */
	big = xasprintf("{\"recipe\":\"approve\",\"params\":{\"id\":\"%01980d\"}}", 0);
	assert_true(strlen(big) > RENDER_MAX_BUTTON_VALUE);
	{
		const struct config_recipe *r = NULL;
		struct cmdtext_params p = { NULL, 0 };
		char err[256] = "";

		assert_int_equal(render_button_parse(cfg, big, &r, &p, err, sizeof(err)), -1);
		assert_string_equal(err, "button value missing or longer than 2000 bytes");
		assert_int_equal(render_button_parse(cfg, NULL, &r, &p, err, sizeof(err)), -1);
	}
	free(big);
	/* member order does not matter; an optional param may be left out */
	{
		const struct config_recipe *r = NULL;
		struct cmdtext_params p = { NULL, 0 };
		char err[256] = "";

		assert_int_equal(render_button_parse(cfg,
		    " {\"params\": {\"id\": \"7\"}, \"recipe\": \"approve\"} ", &r, &p, err,
		    sizeof(err)), 0);
		assert_string_equal(r->name, "approve");
		assert_int_equal(p.n, 1);
		assert_string_equal(cmdtext_params_get(&p, "id"), "7");
		cmdtext_params_clear(&p);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path),
		cmocka_unit_test(test_path_too_long),
		cmocka_unit_test(test_url_join),
		cmocka_unit_test(test_path_and_join),
		cmocka_unit_test(test_body_hostile),
		cmocka_unit_test(test_body),
		cmocka_unit_test(test_body_too_large),
		cmocka_unit_test(test_reply),
		cmocka_unit_test(test_reply_no_json),
		cmocka_unit_test(test_reply_bounded),
		cmocka_unit_test(test_button_roundtrip),
		cmocka_unit_test(test_button_too_long),
		cmocka_unit_test(test_button_parse_strict),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
