/*
 * render: filling recipe templates, each value escaped for where it lands.
 *
 * How it works. template_scan() walks a template and calls back once per
 * part; each renderer appends text parts as written and escapes
 * placeholder values its own way into one bounded buffer (struct out). The
 * body renderer also follows JSON string state over the template's own
 * text, so it knows every value lands inside a string literal; its output
 * is parsed once more before it is handed back. Button values are built
 * with cJSON, never by pasting strings, and read back with a whitelist.
 *
 * What it must never do: let a value change the shape of what it lands in
 * (leave its path segment, close a JSON string, ping a channel in mrkdwn),
 * grow a buffer past its bound, or put a value in an error message.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "workbot/cmdtext.h"
#include "workbot/config.h"
#include "workbot/log.h"
#include "workbot/render.h"
#include "workbot/template.h"
#include "workbot/util.h"
#include "workbot/xmalloc.h"

#define MAX_INDEX_DIGITS	9	/* array indices below 10^9: no overflow */

/* ---- a bounded output buffer -------------------------------------------- */

struct out {
	char *buf;
	size_t len, cap;
	size_t max;		/* content beyond this is not kept */
	bool over;		/* something was dropped */
};

static void
out_add(struct out *o, const char *s, size_t n)
{
	if (n > o->max + 1 - o->len) {
		/* Keep one byte past max so that truncating can tell it was cut. */
		n = o->max + 1 - o->len;
		o->over = true;
	}
	if (o->len + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 256;

		while (cap < o->len + n + 1)
			cap *= 2;
		o->buf = xrealloc(o->buf, cap);
		o->cap = cap;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static void
out_init(struct out *o, size_t max)
{
	memset(o, 0, sizeof(*o));
	o->max = max;
	out_add(o, "", 0);
}

/* ---- the app's answer --------------------------------------------------- */

cJSON *
render_response_parse(const char *body, size_t len)
{
	char *copy;
	cJSON *doc;

	if (body == NULL || len == 0 || memchr(body, '\0', len) != NULL)
		return NULL;
	/*
	 * cJSON's "require the end" check needs a NUL inside its buffer; an
	 * HTTP body has none, so parse a terminated copy.
	 */
	copy = xstrndup(body, len);
	doc = cJSON_ParseWithOpts(copy, NULL, 1);
	free(copy);
	return doc;
}

/* A segment as an array index: digits only, no leading zero. -1: not one. */
static long
index_of(const char *s, size_t n)
{
	long v = 0;
	size_t i;

	if (n == 0 || n > MAX_INDEX_DIGITS || (n > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

const cJSON *
render_response_lookup(const cJSON *response, const char *path, size_t len)
{
	const cJSON *node = response;
	size_t i = 0;

	while (node != NULL && i <= len) {
		size_t n = 0;
		const cJSON *child;

		while (i + n < len && path[i + n] != '.')
			n++;
		if (cJSON_IsArray(node)) {
			long idx = index_of(path + i, n);

			node = idx < 0 ? NULL : cJSON_GetArrayItem(node, (int)idx);
		} else if (cJSON_IsObject(node)) {
			/* Exact names: cJSON's own lookup would need a NUL-terminated key. */
			for (child = node->child; child != NULL; child = child->next)
				if (child->string != NULL && strlen(child->string) == n &&
				    memcmp(child->string, path + i, n) == 0)
					break;
			node = child;
		} else {
			node = NULL;
		}
		i += n + 1;
	}
	return node;
}

/*
 * The text of `{{response.path}}`: a string as is, another value as
 * compact JSON, else "". Malloc'd.
 */
static char *
response_text(const cJSON *response, const char *path, size_t len)
{
	const cJSON *v = render_response_lookup(response, path, len);
	char *s;

	if (v == NULL)
		return xstrdup("");
	if (cJSON_IsString(v))
		return xstrdup(v->valuestring);
	if ((s = cJSON_PrintUnformatted(v)) == NULL)
		return xstrdup("");
	return s;
}

/* The value of a `{{param}}` part: "" when absent (an optional left out). */
static const char *
param_value(const struct cmdtext_params *params, const struct template_part *p)
{
	char name[64];
	const char *v;

	if (p->len >= sizeof(name))
		return "";
	memcpy(name, p->s, p->len);
	name[p->len] = '\0';
	if (params == NULL || (v = cmdtext_params_get(params, name)) == NULL)
		return "";
	return v;
}

/* ---- path --------------------------------------------------------------- */

/* Where a placeholder's output starts, and whose it is (for the message). */
struct placed {
	size_t off;
	const char *name;
	size_t nlen;
};

struct path_ctx {
	const struct cmdtext_params *params;
	struct out o;
	bool query;			/* past the template's first '?' */
	struct placed *ph;		/* path placeholders only */
	size_t nph;
	char *err;
	size_t errsize;
};

static int
path_part(void *arg, const struct template_part *p)
{
	struct path_ctx *c = arg;
	const char *v;
	char *esc;

	switch (p->kind) {
	case TEMPLATE_TEXT:
		if (!c->query && memchr(p->s, '?', p->len) != NULL)
			c->query = true;
		out_add(&c->o, p->s, p->len);
		return 0;
	case TEMPLATE_RESPONSE:
		util_seterr(c->err, c->errsize, "{{response.%.*s}} cannot be used in a path",
		    (int)p->len, p->s);
		return 1;
	case TEMPLATE_PARAM:
		break;
	}
	v = param_value(c->params, p);
	if (strlen(v) > RENDER_MAX_PATH) {
		util_seterr(c->err, c->errsize, "parameter `%.*s` is too long for a URL",
		    (int)p->len, p->s);
		return 1;
	}
	if (!c->query) {
		c->ph = xreallocarray(c->ph, c->nph + 1, sizeof(*c->ph));
		c->ph[c->nph].off = c->o.len;
		c->ph[c->nph].name = p->s;
		c->ph[c->nph].nlen = p->len;
		c->nph++;
	}
	/* curl ignores the handle here; NULL only on out of memory. */
	if ((esc = curl_easy_escape(NULL, v, (int)strlen(v))) == NULL)
		fatal(1, "render", "out of memory");
	out_add(&c->o, esc, strlen(esc));
	curl_free(esc);
	return 0;
}

/*
 * Each path segment a placeholder landed in (a value never holds '/': it
 * is escaped) must not be "", "." or "..": those would reach another
 * resource than the recipe names (`/users/{{id}}/delete` with id `..`).
 */
static int
path_check_segments(struct path_ctx *c)
{
	const char *s = c->o.buf;
	size_t end = strcspn(s, "?"), i;

	for (i = 0; i < c->nph; i++) {
		size_t a = c->ph[i].off, b = c->ph[i].off, n;

		while (a > 0 && s[a - 1] != '/')
			a--;
		while (b < end && s[b] != '/')
			b++;
		n = b - a;
		if (n == 0 || (n == 1 && s[a] == '.') || (n == 2 && s[a] == '.' && s[a + 1] == '.')) {
			util_seterr(c->err, c->errsize,
			    "parameter `%.*s` cannot make a URL path segment that is empty, `.` or `..`",
			    (int)c->ph[i].nlen, c->ph[i].name);
			return -1;
		}
	}
	return 0;
}

int
render_path(const char *tmpl, const struct cmdtext_params *params, char **out,
    char *err, size_t errsize)
{
	struct path_ctx c;
	const char *why;
	int rc;

	memset(&c, 0, sizeof(c));
	c.params = params;
	c.err = err;
	c.errsize = errsize;
	out_init(&c.o, RENDER_MAX_PATH);
	rc = template_scan(tmpl, path_part, &c, &why, NULL);
	if (rc < 0)
		util_seterr(err, errsize, "path template: %s", why);
	else if (rc == 0 && c.o.over) {
		util_seterr(err, errsize, "the URL path would be longer than %d bytes", RENDER_MAX_PATH);
		rc = -1;
	} else if (rc == 0 && path_check_segments(&c) != 0)
		rc = -1;
	free(c.ph);
	if (rc != 0) {
		free(c.o.buf);
		return -1;
	}
	*out = c.o.buf;
	return 0;
}

/* ---- joining base and path ---------------------------------------------- */

/* scheme, host and port of a URL handle; -1 if any is missing. */
static int
url_origin(CURLU *u, char **scheme, char **host, char **port)
{
	*scheme = *host = *port = NULL;
	if (curl_url_get(u, CURLUPART_SCHEME, scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		curl_free(*scheme);
		curl_free(*host);
		curl_free(*port);
		return -1;
	}
	return 0;
}

/* A part that must be absent from the base. */
static bool
url_has(CURLU *u, CURLUPart what)
{
	char *v = NULL;
	bool has = curl_url_get(u, what, &v, 0) == CURLUE_OK && v != NULL;

	curl_free(v);
	return has;
}

int
render_url_join(const char *base, const char *path, char **out, char *err, size_t errsize)
{
	CURLU *bu = NULL, *ju = NULL;
	char *bs = NULL, *bh = NULL, *bp = NULL, *js = NULL, *jh = NULL, *jp = NULL;
	char *joined = NULL;
	size_t blen = strlen(base), i;
	int rc = -1;

	if (path[0] != '/' || path[1] == '/') {
		util_seterr(err, errsize, "a recipe path must start with exactly one '/'");
		return -1;
	}
	for (i = 0; path[i] != '\0'; i++) {
		unsigned char ch = (unsigned char)path[i];

		if (ch <= ' ' || ch == 0x7f || ch == '\\' || ch == '#') {
			util_seterr(err, errsize,
			    "a recipe path must not contain blanks, control bytes, '\\' or '#'");
			return -1;
		}
	}
	if ((bu = curl_url()) == NULL || (ju = curl_url()) == NULL)
		fatal(1, "render", "out of memory");
	if (curl_url_set(bu, CURLUPART_URL, base, 0) != CURLUE_OK ||
	    url_origin(bu, &bs, &bh, &bp) != 0 ||
	    (strcmp(bs, "https") != 0 && strcmp(bs, "http") != 0) ||
	    url_has(bu, CURLUPART_USER) || url_has(bu, CURLUPART_PASSWORD) ||
	    url_has(bu, CURLUPART_QUERY) || url_has(bu, CURLUPART_FRAGMENT)) {
		util_seterr(err, errsize, "the app's base URL is not a plain http(s) URL");
		goto done;
	}
	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	joined = xmalloc(blen + strlen(path) + 1);
	memcpy(joined, base, blen);
	strcpy(joined + blen, path);
	/* The proof, not the hope: re-parse and compare the origin. */
	if (curl_url_set(ju, CURLUPART_URL, joined, 0) != CURLUE_OK ||
	    url_origin(ju, &js, &jh, &jp) != 0 ||
	    strcmp(bs, js) != 0 || strcmp(bh, jh) != 0 || strcmp(bp, jp) != 0 ||
	    url_has(ju, CURLUPART_USER) || url_has(ju, CURLUPART_FRAGMENT)) {
		util_seterr(err, errsize, "the joined URL would leave the app's host");
		goto done;
	}
	*out = joined;
	joined = NULL;
	rc = 0;
done:
	free(joined);
	curl_free(bs);
	curl_free(bh);
	curl_free(bp);
	curl_free(js);
	curl_free(jh);
	curl_free(jp);
	curl_url_cleanup(bu);
	curl_url_cleanup(ju);
	return rc;
}

/* ---- JSON body ---------------------------------------------------------- */

/*
 * Length of the valid UTF-8 sequence at s (n bytes available), or 0
 * (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
 */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t need, i;
	unsigned char lo = 0x80, hi = 0xbf;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		need = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		need = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (n < need || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < need; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return need;
}

/* Append `v` as the inside of a JSON string. */
static void
json_escape_into(struct out *o, const char *v)
{
	const unsigned char *s = (const unsigned char *)v;
	size_t n = strlen(v), i = 0, run = 0, k;
	char esc[8];

	while (i + run < n) {
		const unsigned char *c = s + i + run;

		if (*c >= 0x20 && *c != '"' && *c != '\\' && *c < 0x80) {
			run++;
			continue;
		}
		if (*c >= 0x80 && (k = utf8_len(c, n - i - run)) > 0) {
			run += k;
			continue;
		}
		out_add(o, v + i, run);
		i += run;
		run = 0;
		if (*c == '"' || *c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*c;
			out_add(o, esc, 2);
		} else if (*c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", *c);
			out_add(o, esc, 6);
		} else {
			out_add(o, "\\ufffd", 6);	/* a byte that is not UTF-8 */
		}
		i++;
	}
	out_add(o, v + i, run);
}

struct body_ctx {
	const struct cmdtext_params *params;
	struct out o;
	bool in_string, escaped;	/* JSON string state over the template text */
	char *err;
	size_t errsize;
};

static int
body_part(void *arg, const struct template_part *p)
{
	struct body_ctx *c = arg;
	size_t i;

	switch (p->kind) {
	case TEMPLATE_TEXT:
		for (i = 0; i < p->len; i++) {
			if (c->escaped)
				c->escaped = false;
			else if (c->in_string && p->s[i] == '\\')
				c->escaped = true;
			else if (p->s[i] == '"')
				c->in_string = !c->in_string;
		}
		out_add(&c->o, p->s, p->len);
		return 0;
	case TEMPLATE_RESPONSE:
		util_seterr(c->err, c->errsize, "{{response.%.*s}} cannot be used in a body",
		    (int)p->len, p->s);
		return 1;
	case TEMPLATE_PARAM:
		break;
	}
	/*
	 * Right after a backslash the value's first byte would be read as an
	 * escape: `\` + `\"` is `\\` and a closing quote.
	 */
	if (!c->in_string || c->escaped) {
		util_seterr(c->err, c->errsize, "{{%.*s}} is not inside a JSON string in the body",
		    (int)p->len, p->s);
		return 1;
	}
	json_escape_into(&c->o, param_value(c->params, p));
	return 0;
}

int
render_body(const char *tmpl, const struct cmdtext_params *params, char **out,
    char *err, size_t errsize)
{
	struct body_ctx c;
	const char *why;
	cJSON *doc;
	int rc;

	memset(&c, 0, sizeof(c));
	c.params = params;
	c.err = err;
	c.errsize = errsize;
	out_init(&c.o, RENDER_MAX_BODY);
	rc = template_scan(tmpl, body_part, &c, &why, NULL);
	if (rc < 0) {
		util_seterr(err, errsize, "body template: %s", why);
	} else if (rc == 0 && c.o.over) {
		util_seterr(err, errsize, "the request body would be larger than %d bytes",
		    RENDER_MAX_BODY);
		rc = -1;
	} else if (rc == 0) {
		if ((doc = cJSON_ParseWithOpts(c.o.buf, NULL, 1)) == NULL) {
			util_seterr(err, errsize, "the rendered body is not valid JSON");
			rc = -1;
		}
		cJSON_Delete(doc);
	}
	if (rc != 0) {
		free(c.o.buf);
		return -1;
	}
	*out = c.o.buf;
	return 0;
}

/* ---- reply (mrkdwn) and button values (raw) ----------------------------- */

struct text_ctx {
	const struct cmdtext_params *params;
	const cJSON *response;
	bool mrkdwn;			/* escape values for Slack mrkdwn */
	struct out o;
};

static int
text_part(void *arg, const struct template_part *p)
{
	struct text_ctx *c = arg;
	const char *v;
	char *owned = NULL, *esc;

	switch (p->kind) {
	case TEMPLATE_TEXT:
		out_add(&c->o, p->s, p->len);
		return 0;
	case TEMPLATE_RESPONSE:
		v = owned = response_text(c->response, p->s, p->len);
		break;
	case TEMPLATE_PARAM:
	default:
		v = param_value(c->params, p);
		break;
	}
	if (c->mrkdwn) {
		esc = cmdtext_mrkdwn_escape(v, strlen(v));
		out_add(&c->o, esc, strlen(esc));
		free(esc);
	} else {
		out_add(&c->o, v, strlen(v));
	}
	free(owned);
	/* Past the bound nothing more is kept: stop early. */
	return c->o.over ? 1 : 0;
}

static int
render_text(const char *tmpl, const struct cmdtext_params *params, const cJSON *response,
    bool mrkdwn, size_t max, struct out *o, const char **why)
{
	struct text_ctx c;
	int rc;

	memset(&c, 0, sizeof(c));
	c.params = params;
	c.response = response;
	c.mrkdwn = mrkdwn;
	out_init(&c.o, max);
	rc = template_scan(tmpl, text_part, &c, why, NULL);
	if (rc < 0) {
		free(c.o.buf);
		return -1;
	}
	*o = c.o;
	return 0;
}

int
render_reply(const char *tmpl, const struct cmdtext_params *params, const cJSON *response,
    char **out, char *err, size_t errsize)
{
	struct out o;
	const char *why;

	if (render_text(tmpl, params, response, true, RENDER_MAX_REPLY, &o, &why) != 0) {
		util_seterr(err, errsize, "reply template: %s", why);
		return -1;
	}
	if (o.over)
		cmdtext_truncate(o.buf, RENDER_MAX_REPLY);
	*out = o.buf;
	return 0;
}

int
render_button_value(const struct config_button *b, const struct cmdtext_params *params,
    const cJSON *response, char **out, char *err, size_t errsize)
{
	cJSON *doc, *ps;
	char *text;
	size_t i;
	int rc = -1;

	if (b->target == NULL) {
		util_seterr(err, errsize, "button \"%s\" names no recipe", b->label);
		return -1;
	}
	doc = cJSON_CreateObject();
	if (doc == NULL || cJSON_AddStringToObject(doc, "recipe", b->target->name) == NULL ||
	    (ps = cJSON_AddObjectToObject(doc, "params")) == NULL)
		fatal(1, "render", "out of memory");	/* cJSON fails only then */
	for (i = 0; i < b->params.n; i++) {
		struct out o;
		const char *why;

		/* Raw: the value goes into JSON, which cJSON escapes. */
		if (render_text(b->params.v[i].value, params, response, false,
		    RENDER_MAX_BUTTON_VALUE, &o, &why) != 0) {
			util_seterr(err, errsize, "button \"%s\": parameter `%s`: %s", b->label,
			    b->params.v[i].key, why);
			goto done;
		}
		if (o.over) {
			free(o.buf);
			util_seterr(err, errsize, "button \"%s\": its value would be longer than %d bytes",
			    b->label, RENDER_MAX_BUTTON_VALUE);
			goto done;
		}
		if (cJSON_AddStringToObject(ps, b->params.v[i].key, o.buf) == NULL)
			fatal(1, "render", "out of memory");
		free(o.buf);
	}
	if ((text = cJSON_PrintUnformatted(doc)) == NULL)
		fatal(1, "render", "out of memory");
	if (strlen(text) > RENDER_MAX_BUTTON_VALUE) {
		free(text);
		util_seterr(err, errsize, "button \"%s\": its value would be longer than %d bytes",
		    b->label, RENDER_MAX_BUTTON_VALUE);
		goto done;
	}
	*out = text;
	rc = 0;
done:
	cJSON_Delete(doc);
	return rc;
}

int
render_button_parse(const struct config *cfg, const char *value,
    const struct config_recipe **recipe, struct cmdtext_params *params,
    char *err, size_t errsize)
{
	const struct config_recipe *r = NULL;
	struct cmdtext_params got = { NULL, 0 };
	const cJSON *item, *rj = NULL, *pj = NULL, *p;
	cJSON *doc = NULL;
	size_t i, j;

	if (value == NULL || strnlen(value, RENDER_MAX_BUTTON_VALUE + 1) > RENDER_MAX_BUTTON_VALUE) {
		util_seterr(err, errsize, "button value missing or longer than %d bytes",
		    RENDER_MAX_BUTTON_VALUE);
		return -1;
	}
	if ((doc = cJSON_ParseWithOpts(value, NULL, 1)) == NULL || !cJSON_IsObject(doc)) {
		util_seterr(err, errsize, "button value is not a JSON object");
		goto fail;
	}
	/* Exactly two members, each once: cJSON keeps duplicate names. */
	cJSON_ArrayForEach(item, doc) {
		if (item->string != NULL && strcmp(item->string, "recipe") == 0 && rj == NULL)
			rj = item;
		else if (item->string != NULL && strcmp(item->string, "params") == 0 && pj == NULL)
			pj = item;
		else {
			util_seterr(err, errsize, "button value has a member other than recipe and params");
			goto fail;
		}
	}
	if (rj == NULL || pj == NULL) {
		util_seterr(err, errsize, "button value lacks recipe or params");
		goto fail;
	}
	if (!cJSON_IsString(rj) || (r = config_recipe_find(cfg, rj->valuestring)) == NULL) {
		util_seterr(err, errsize, "button value names no recipe of the current configuration");
		goto fail;
	}
	/* DESIGN §5: a click by anyone never acts with the shared token. */
	if (!r->verify_user_access.v) {
		util_seterr(err, errsize, "recipe %s cannot be run from a button", r->name);
		goto fail;
	}
	if (!cJSON_IsObject(pj)) {
		util_seterr(err, errsize, "button value params is not an object");
		goto fail;
	}
	cJSON_ArrayForEach(p, pj) {
		for (j = 0; j < r->params.n; j++)
			if (p->string != NULL && strcmp(r->params.v[j].name, p->string) == 0)
				break;
		if (j == r->params.n) {
			util_seterr(err, errsize, "button value has a parameter recipe %s does not declare",
			    r->name);
			goto fail;
		}
		if (!cJSON_IsString(p)) {
			util_seterr(err, errsize, "button value parameter `%s` is not a string",
			    r->params.v[j].name);
			goto fail;
		}
		if (cmdtext_params_get(&got, p->string) != NULL) {
			util_seterr(err, errsize, "button value parameter `%s` is given twice",
			    r->params.v[j].name);
			goto fail;
		}
		cmdtext_params_add(&got, r->params.v[j].name, p->valuestring);
	}
	for (i = 0; i < r->params.n; i++) {
		if (!r->params.v[i].optional &&
		    cmdtext_params_get(&got, r->params.v[i].name) == NULL) {
			util_seterr(err, errsize, "button value lacks parameter `%s` of recipe %s",
			    r->params.v[i].name, r->name);
			goto fail;
		}
	}
	cJSON_Delete(doc);
	*recipe = r;
	*params = got;
	return 0;
fail:
	cJSON_Delete(doc);
	cmdtext_params_clear(&got);
	return -1;
}
