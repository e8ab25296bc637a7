/*
 * Block Kit validation for the fake Slack. See fs_blockkit.h for the rules
 * and their sources. The checker never trusts a type: every member is looked
 * at with cJSON's typed accessors, and paths in messages are bounded.
 * Test code only.
 */
#include "fs_blockkit.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fs_util.h"

#define MAX_KEPT 64

struct bk {
	cJSON *errors;
	int count;
	const char *slack_error;
};

static void bk_err(struct bk *c, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
bk_err(struct bk *c, const char *path, const char *fmt, ...)
{
	char msg[256], line[512];
	va_list ap;

	c->count++;
	if (!c->slack_error)
		c->slack_error = "invalid_blocks";
	if (c->count > MAX_KEPT || !c->errors)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (snprintf(line, sizeof(line), "%s: %s", path, msg) < 0)
		return;
	cJSON_AddItemToArray(c->errors, cJSON_CreateString(line));
}

/* Paths are bounded; a long one is cut, which is fine for a message. */
static void mkpath(char *out, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
mkpath(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(out, n, fmt, ap) < 0)
		out[0] = '\0';
	va_end(ap);
}

static const char *
str(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

/* A string member no longer than max; `required` if it must be there. */
static void
check_str(struct bk *c, const char *path, const cJSON *o, const char *k,
	  size_t max, const char *what, int required)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	char p[300];
	size_t n;

	mkpath(p, sizeof(p), "%s.%s", path, k);
	if (!v) {
		if (required)
			bk_err(c, p, "missing (%s)", what);
		return;
	}
	if (!cJSON_IsString(v)) {
		bk_err(c, p, "not a string (%s)", what);
		return;
	}
	n = fs_utf8_len(v->valuestring);
	if (n > max)
		bk_err(c, p, "%zu chars > %zu (%s)", n, max, what);
}

/* A text object {type: plain_text|mrkdwn, text} with 1..max chars. */
static void
check_text_obj(struct bk *c, const char *path, const cJSON *o, const char *k,
	       size_t max, const char *what, int plain_only, int required)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, k);
	const char *type, *text;
	char p[300];
	size_t n;

	mkpath(p, sizeof(p), "%s.%s", path, k);
	if (!t) {
		if (required)
			bk_err(c, p, "missing (%s)", what);
		return;
	}
	if (!cJSON_IsObject(t)) {
		bk_err(c, p, "not a text object (%s)", what);
		return;
	}
	type = str(t, "type");
	if (!type || (strcmp(type, "plain_text") && strcmp(type, "mrkdwn"))) {
		bk_err(c, p, "type must be plain_text or mrkdwn (%s)", what);
	} else if (plain_only && strcmp(type, "plain_text")) {
		bk_err(c, p, "must be plain_text (%s)", what);
	}
	text = str(t, "text");
	if (!text) {
		bk_err(c, p, "text missing (%s)", what);
		return;
	}
	n = fs_utf8_len(text);
	if (n == 0)
		bk_err(c, p, "empty (%s)", what);
	else if (n > max)
		bk_err(c, p, "%zu chars > %zu (%s)", n, max, what);
}

static void
check_confirm(struct bk *c, const char *path, const cJSON *el)
{
	const cJSON *cf = cJSON_GetObjectItemCaseSensitive(el, "confirm");
	char p[300];

	if (!cf)
		return;
	mkpath(p, sizeof(p), "%s.confirm", path);
	if (!cJSON_IsObject(cf)) {
		bk_err(c, p, "not an object");
		return;
	}
	check_text_obj(c, p, cf, "title", 100, "confirm title", 1, 1);
	check_text_obj(c, p, cf, "text", 300, "confirm text", 0, 1);
	check_text_obj(c, p, cf, "confirm", 30, "confirm button", 1, 1);
	check_text_obj(c, p, cf, "deny", 30, "deny button", 1, 1);
}

static void
check_options(struct bk *c, const char *path, const cJSON *el, const char *k,
	      int max)
{
	const cJSON *opts = cJSON_GetObjectItemCaseSensitive(el, k), *o;
	char p[300];
	int i = 0;

	if (!opts)
		return;
	mkpath(p, sizeof(p), "%s.%s", path, k);
	if (!cJSON_IsArray(opts)) {
		bk_err(c, p, "not an array");
		return;
	}
	if (cJSON_GetArraySize(opts) > max)
		bk_err(c, p, "%d options > %d", cJSON_GetArraySize(opts), max);
	cJSON_ArrayForEach(o, opts) {
		char q[320];

		mkpath(q, sizeof(q), "%s[%d]", p, i++);
		if (!cJSON_IsObject(o)) {
			bk_err(c, q, "not an object");
			continue;
		}
		check_text_obj(c, q, o, "text", 75, "option text", 0, 1);
		check_str(c, q, o, "value", 150, "option value", 0);
		if (i > 200)
			break;
	}
}

static int
is_one_of(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(s, *list))
			return 1;
	return 0;
}

static void
check_element(struct bk *c, const char *path, const cJSON *el, int in_context)
{
	static const char *const selects[] = {
		"static_select", "external_select", "users_select",
		"conversations_select", "channels_select",
		"multi_static_select", "multi_external_select",
		"multi_users_select", "multi_conversations_select",
		"multi_channels_select", NULL };
	static const char *const others[] = {
		"datepicker", "timepicker", "datetimepicker", "checkboxes",
		"radio_buttons", "plain_text_input", "email_text_input",
		"url_text_input", "number_input", "rich_text_input",
		"file_input", "workflow_button", NULL };
	const char *type;

	if (!cJSON_IsObject(el)) {
		bk_err(c, path, "element is not an object");
		return;
	}
	type = str(el, "type");
	if (!type) {
		bk_err(c, path, "element type missing");
		return;
	}
	if (in_context) {
		if (!strcmp(type, "image")) {
			check_str(c, path, el, "image_url", 3000, "image url", 0);
			check_str(c, path, el, "alt_text", 2000, "alt text", 1);
		} else if (!strcmp(type, "plain_text") || !strcmp(type, "mrkdwn")) {
			check_str(c, path, el, "text", 3000, "context text", 1);
		} else {
			bk_err(c, path, "type %.40s not allowed in context", type);
		}
		return;
	}
	check_str(c, path, el, "action_id", 255, "action_id", 0);
	if (!strcmp(type, "button")) {
		const char *style = str(el, "style");

		check_text_obj(c, path, el, "text", 75, "button text", 1, 1);
		check_str(c, path, el, "value", 2000, "button value", 0);
		check_str(c, path, el, "url", 3000, "button url", 0);
		if (style && strcmp(style, "primary") && strcmp(style, "danger"))
			bk_err(c, path, "style must be primary or danger");
		check_confirm(c, path, el);
	} else if (is_one_of(type, selects)) {
		check_text_obj(c, path, el, "placeholder", 150, "placeholder", 1, 0);
		check_options(c, path, el, "options", 100);
		check_options(c, path, el, "option_groups", 100);
		check_confirm(c, path, el);
	} else if (!strcmp(type, "overflow")) {
		check_options(c, path, el, "options", 5);
		check_confirm(c, path, el);
	} else if (!strcmp(type, "image")) {
		check_str(c, path, el, "image_url", 3000, "image url", 0);
		check_str(c, path, el, "alt_text", 2000, "alt text", 1);
	} else if (is_one_of(type, others)) {
		check_text_obj(c, path, el, "placeholder", 150, "placeholder", 1, 0);
		check_options(c, path, el, "options", 10);
		check_confirm(c, path, el);
	} else {
		bk_err(c, path, "unknown element type %.40s", type);
	}
}

static void
check_elements(struct bk *c, const char *path, const cJSON *blk, int max,
	       int in_context)
{
	const cJSON *els = cJSON_GetObjectItemCaseSensitive(blk, "elements"), *el;
	char p[300];
	int i = 0;

	mkpath(p, sizeof(p), "%s.elements", path);
	if (!cJSON_IsArray(els)) {
		bk_err(c, p, "missing or not an array");
		return;
	}
	if (cJSON_GetArraySize(els) == 0)
		bk_err(c, p, "empty");
	if (cJSON_GetArraySize(els) > max)
		bk_err(c, p, "%d elements > %d", cJSON_GetArraySize(els), max);
	cJSON_ArrayForEach(el, els) {
		char q[320];

		mkpath(q, sizeof(q), "%s[%d]", p, i++);
		check_element(c, q, el, in_context);
		if (i > 100)
			break;
	}
}

static void
check_block(struct bk *c, const char *path, const cJSON *blk)
{
	static const char *const plain_types[] = {
		"divider", "rich_text", "file", "video", "call", "input",
		"context_actions", "table", NULL };
	const char *type;

	if (!cJSON_IsObject(blk)) {
		bk_err(c, path, "block is not an object");
		return;
	}
	type = str(blk, "type");
	if (!type) {
		bk_err(c, path, "block type missing");
		return;
	}
	check_str(c, path, blk, "block_id", 255, "block_id", 0);
	if (!strcmp(type, "section")) {
		const cJSON *fields = cJSON_GetObjectItemCaseSensitive(blk, "fields"), *f;
		const cJSON *acc = cJSON_GetObjectItemCaseSensitive(blk, "accessory");
		int i = 0;

		if (!cJSON_GetObjectItemCaseSensitive(blk, "text") && !fields)
			bk_err(c, path, "section needs text or fields");
		check_text_obj(c, path, blk, "text", 3000, "section text", 0, 0);
		if (fields) {
			char p[300];

			mkpath(p, sizeof(p), "%s.fields", path);
			if (!cJSON_IsArray(fields))
				bk_err(c, p, "not an array");
			else if (cJSON_GetArraySize(fields) > 10)
				bk_err(c, p, "%d fields > 10", cJSON_GetArraySize(fields));
			cJSON_ArrayForEach(f, fields) {
				char q[320];

				mkpath(q, sizeof(q), "%s[%d]", p, i++);
				if (!cJSON_IsObject(f)) {
					bk_err(c, q, "not a text object");
					continue;
				}
				check_str(c, q, f, "text", 2000, "field text", 1);
				if (i > 50)
					break;
			}
		}
		if (acc) {
			char p[300];

			mkpath(p, sizeof(p), "%s.accessory", path);
			check_element(c, p, acc, 0);
		}
	} else if (!strcmp(type, "header")) {
		check_text_obj(c, path, blk, "text", 150, "header text", 1, 1);
	} else if (!strcmp(type, "actions")) {
		check_elements(c, path, blk, 25, 0);
	} else if (!strcmp(type, "context")) {
		check_elements(c, path, blk, 10, 1);
	} else if (!strcmp(type, "markdown")) {
		check_str(c, path, blk, "text", 12000, "markdown text", 1);
	} else if (!strcmp(type, "image")) {
		check_str(c, path, blk, "image_url", 3000, "image url", 0);
		check_str(c, path, blk, "alt_text", 2000, "alt text", 1);
		check_text_obj(c, path, blk, "title", 2000, "image title", 1, 0);
	} else if (!is_one_of(type, plain_types)) {
		bk_err(c, path, "unknown block type %.40s", type);
	}
}

static void
check_blocks(struct bk *c, const char *path, const cJSON *blocks, int max)
{
	const cJSON *b;
	int i = 0;

	if (cJSON_GetArraySize(blocks) > max)
		bk_err(c, path, "%d blocks > %d", cJSON_GetArraySize(blocks), max);
	cJSON_ArrayForEach(b, blocks) {
		char p[300];

		mkpath(p, sizeof(p), "%s[%d]", path, i++);
		check_block(c, p, b);
		if (i > 200)
			break;
	}
}

int
fs_blockkit_check(const cJSON *msg, int need_text, cJSON *errors,
		  const char **slack_error)
{
	struct bk c = { errors, 0, NULL };
	const cJSON *blocks = cJSON_GetObjectItemCaseSensitive(msg, "blocks");
	const cJSON *atts = cJSON_GetObjectItemCaseSensitive(msg, "attachments");
	cJSON *parsed = NULL;
	const char *text = str(msg, "text");
	int has_blocks = 0, has_atts = 0;

	if (blocks && cJSON_IsString(blocks)) {
		/* form bodies carry blocks as JSON text */
		parsed = cJSON_Parse(blocks->valuestring);
		blocks = parsed;
		if (!parsed) {
			c.count++;
			c.slack_error = "invalid_blocks_format";
			if (errors)
				cJSON_AddItemToArray(errors, cJSON_CreateString(
					"blocks: not valid JSON"));
			goto out;
		}
	}
	if (atts && cJSON_IsString(atts)) {
		/* attachments as JSON text: only counted */
		cJSON *pa = cJSON_Parse(atts->valuestring);

		has_atts = cJSON_IsArray(pa) && cJSON_GetArraySize(pa) > 0;
		if (cJSON_IsArray(pa) && cJSON_GetArraySize(pa) > 100)
			bk_err(&c, "attachments", "%d attachments > 100",
			       cJSON_GetArraySize(pa));
		cJSON_Delete(pa);
	} else if (cJSON_IsArray(atts)) {
		const cJSON *a;
		int i = 0;

		has_atts = cJSON_GetArraySize(atts) > 0;
		if (cJSON_GetArraySize(atts) > 100)
			bk_err(&c, "attachments", "%d attachments > 100",
			       cJSON_GetArraySize(atts));
		cJSON_ArrayForEach(a, atts) {
			const cJSON *ab = cJSON_GetObjectItemCaseSensitive(a, "blocks");
			char p[64];

			mkpath(p, sizeof(p), "attachments[%d].blocks", i++);
			if (cJSON_IsArray(ab))
				check_blocks(&c, p, ab, 50);
			if (i > 100)
				break;
		}
	}
	if (blocks && !cJSON_IsNull(blocks)) {
		if (!cJSON_IsArray(blocks)) {
			c.count++;
			c.slack_error = "invalid_blocks_format";
			if (errors)
				cJSON_AddItemToArray(errors, cJSON_CreateString(
					"blocks: not an array"));
			goto out;
		}
		has_blocks = cJSON_GetArraySize(blocks) > 0;
		check_blocks(&c, "blocks", blocks, 50);
	}
	if (need_text && !has_blocks && !has_atts && (!text || !*text)) {
		c.count++;
		if (!c.slack_error)
			c.slack_error = "no_text";
		if (errors && c.count <= MAX_KEPT)
			cJSON_AddItemToArray(errors, cJSON_CreateString(
				"text: neither text nor blocks nor attachments"));
	}
out:
	cJSON_Delete(parsed);
	if (slack_error)
		*slack_error = c.slack_error;
	return c.count;
}
