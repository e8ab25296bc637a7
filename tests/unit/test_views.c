/*
 * Unit tests for views: every view built with ordinary and hostile inputs
 * and read back with cJSON — block types, action ids, styles, the confirm
 * dialog, url buttons, the empty state, expired and missing apps, help,
 * the login prompt, reply buttons and the decided message — plus views_ago.
 *
 * check_limits() walks any message and asserts every Block Kit limit the
 * fake Slack's validator (tests/fakes/fs_blockkit.c) enforces, counting
 * characters as Slack does, and that every string is whole UTF-8 (a cut
 * must never split a sequence). Every test passes its views through it,
 * the giant-input tests included.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "workbot/views.h"
#include "workbot/xmalloc.h"

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

/* 6 Dec 2026 10:00:00 UTC */
#define T_DEC6 1796551200

/* ---- helpers ------------------------------------------------------------- */

static char *
repeat(const char *unit, size_t times)
{
	size_t n = strlen(unit), i;
	char *s = xmalloc(n * times + 1);

	for (i = 0; i < times; i++)
		memcpy(s + i * n, unit, n);
	s[n * times] = '\0';
	return s;
}

/* Code points, as Slack and fs_utf8_len count; -1 if not valid UTF-8. */
static long
utf8_chars(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	long n = 0;
	int need, k;

	while (*p) {
		if (*p < 0x80)
			need = 0;
		else if ((*p & 0xe0) == 0xc0)
			need = 1;
		else if ((*p & 0xf0) == 0xe0)
			need = 2;
		else if ((*p & 0xf8) == 0xf0)
			need = 3;
		else
			return -1;
		for (k = 1; k <= need; k++)
			if ((p[k] & 0xc0) != 0x80)
				return -1;
		p += need + 1;
		n++;
	}
	return n;
}

static const char *
sget(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static const cJSON *
oget(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

/* ---- the generic Block Kit checker --------------------------------------- */

static void
check_string(const char *s, long min, long max, const char *what)
{
	long n;

	if (s == NULL)
		fail_msg("%s: missing", what);
	n = utf8_chars(s);
	if (n < 0)
		fail_msg("%s: not valid UTF-8", what);
	if (n < min || n > max)
		fail_msg("%s: %ld chars, not in %ld..%ld", what, n, min, max);
}

/* A text object of 1..max characters; plain_only: must be plain_text. */
static void
check_text(const cJSON *t, long max, bool plain_only, const char *what)
{
	const char *type;

	if (!cJSON_IsObject(t))
		fail_msg("%s: not a text object", what);
	type = sget(t, "type");
	assert_non_null(type);
	if (plain_only)
		assert_string_equal(type, "plain_text");
	else if (strcmp(type, "plain_text") != 0 && strcmp(type, "mrkdwn") != 0)
		fail_msg("%s: type %s", what, type);
	check_string(sget(t, "text"), 1, max, what);
}

static void
check_element(const cJSON *el)
{
	const char *style = sget(el, "style");
	const cJSON *cf = oget(el, "confirm");

	assert_true(cJSON_IsObject(el));
	assert_string_equal(sget(el, "type"), "button");
	check_text(oget(el, "text"), 75, true, "button text");
	check_string(sget(el, "action_id"), 1, 255, "action_id");
	if (oget(el, "value") != NULL)
		check_string(sget(el, "value"), 0, 2000, "button value");
	if (oget(el, "url") != NULL)
		check_string(sget(el, "url"), 1, 3000, "button url");
	if (style != NULL && strcmp(style, "primary") != 0 && strcmp(style, "danger") != 0)
		fail_msg("style %s", style);
	if (cf != NULL) {
		check_text(oget(cf, "title"), 100, true, "confirm title");
		check_text(oget(cf, "text"), 300, false, "confirm text");
		check_text(oget(cf, "confirm"), 30, true, "confirm button");
		check_text(oget(cf, "deny"), 30, true, "deny button");
	}
}

/*
 * Every limit of fs_blockkit.c for what views produce, plus our own: a
 * short fallback text, and the whole message round-trips through JSON.
 */
static void
check_limits(const cJSON *msg)
{
	const cJSON *blocks = oget(msg, "blocks"), *b, *el;
	char *printed;
	cJSON *back;

	assert_true(cJSON_IsObject(msg));
	check_string(sget(msg, "text"), 1, 150, "fallback text");
	assert_true(cJSON_IsArray(blocks));
	assert_true(cJSON_GetArraySize(blocks) >= 1);
	assert_true(cJSON_GetArraySize(blocks) <= 50);
	cJSON_ArrayForEach(b, blocks) {
		const char *type = sget(b, "type");
		const cJSON *els = oget(b, "elements");

		assert_non_null(type);
		if (strcmp(type, "section") == 0) {
			check_text(oget(b, "text"), 3000, false, "section text");
			if (oget(b, "accessory") != NULL)
				check_element(oget(b, "accessory"));
		} else if (strcmp(type, "header") == 0) {
			check_text(oget(b, "text"), 150, true, "header text");
		} else if (strcmp(type, "actions") == 0) {
			assert_true(cJSON_IsArray(els));
			assert_true(cJSON_GetArraySize(els) >= 1);
			assert_true(cJSON_GetArraySize(els) <= 25);
			cJSON_ArrayForEach(el, els)
				check_element(el);
		} else if (strcmp(type, "context") == 0) {
			assert_true(cJSON_IsArray(els));
			assert_true(cJSON_GetArraySize(els) >= 1);
			assert_true(cJSON_GetArraySize(els) <= 10);
			cJSON_ArrayForEach(el, els)
				check_text(el, 3000, false, "context element");
		} else {
			fail_msg("unexpected block type %s", type);
		}
	}
	printed = cJSON_PrintUnformatted(msg);
	assert_non_null(printed);
	back = cJSON_Parse(printed);
	assert_non_null(back);
	cJSON_Delete(back);
	free(printed);
}

/* ---- reading a view back ------------------------------------------------- */

static int
nblocks(const cJSON *msg)
{
	return cJSON_GetArraySize(oget(msg, "blocks"));
}

static const cJSON *
block(const cJSON *msg, int i)
{
	return cJSON_GetArrayItem(oget(msg, "blocks"), i);
}

static const char *
btype(const cJSON *msg, int i)
{
	return sget(block(msg, i), "type");
}

static const char *
section_text(const cJSON *msg, int i)
{
	assert_string_equal(btype(msg, i), "section");
	return sget(oget(block(msg, i), "text"), "text");
}

static const char *
button_label(const cJSON *btn)
{
	return sget(oget(btn, "text"), "text");
}

static int
count_type(const cJSON *msg, const char *type)
{
	int i, n = 0;

	for (i = 0; i < nblocks(msg); i++)
		n += strcmp(btype(msg, i), type) == 0;
	return n;
}

/* The text of the last block, which must be a context with one element. */
static const char *
last_context(const cJSON *msg, int element)
{
	const cJSON *b = block(msg, nblocks(msg) - 1);

	assert_string_equal(sget(b, "type"), "context");
	return sget(cJSON_GetArrayItem(oget(b, "elements"), element), "text");
}

/* The number in "…and N more <what>" anywhere in the last context, or -1. */
static long
more_count(const cJSON *msg, const char *what)
{
	const cJSON *b = block(msg, nblocks(msg) - 1), *el;
	char pat[64];

	if (strcmp(sget(b, "type"), "context") != 0)
		return -1;
	snprintf(pat, sizeof(pat), " more %s", what);
	cJSON_ArrayForEach(el, oget(b, "elements")) {
		const char *t = sget(el, "text"), *p;

		if (strstr(t, pat) != NULL && (p = strstr(t, "…and ")) != NULL)
			return strtol(p + strlen("…and "), NULL, 10);
	}
	return -1;
}

/* Every button of a view, in order (accessories and actions elements). */
static int
buttons(const cJSON *msg, const cJSON **out, int max)
{
	int i, n = 0;
	const cJSON *el;

	for (i = 0; i < nblocks(msg); i++) {
		const cJSON *b = block(msg, i);

		if (oget(b, "accessory") != NULL && n < max)
			out[n++] = oget(b, "accessory");
		if (strcmp(sget(b, "type"), "actions") == 0)
			cJSON_ArrayForEach(el, oget(b, "elements"))
				if (n < max)
					out[n++] = el;
	}
	return n;
}

/* No raw `<` anywhere in a mrkdwn text of the view: nothing can ping or link. */
static void
assert_inert(const cJSON *msg)
{
	int i;
	const cJSON *el;

	assert_null(strchr(sget(msg, "text"), '<'));
	for (i = 0; i < nblocks(msg); i++) {
		const cJSON *b = block(msg, i);

		if (strcmp(sget(b, "type"), "section") == 0)
			assert_null(strchr(section_text(msg, i), '<'));
		if (strcmp(sget(b, "type"), "context") == 0)
			cJSON_ArrayForEach(el, oget(b, "elements"))
				assert_null(strchr(sget(el, "text"), '<'));
	}
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* ---- views_ago ----------------------------------------------------------- */

static void
test_ago_table(void **state)
{
	static const struct {
		int64_t then, now;
		const char *want;
	} cases[] = {
		{ 0, T_DEC6, "never" },
		{ T_DEC6, T_DEC6, "just now" },
		{ T_DEC6 - 59, T_DEC6, "just now" },
		{ T_DEC6 + 3600, T_DEC6, "just now" },		/* clock skew */
		{ T_DEC6 - 60, T_DEC6, "1 minute ago" },
		{ T_DEC6 - 119, T_DEC6, "1 minute ago" },
		{ T_DEC6 - 120, T_DEC6, "2 minutes ago" },
		{ T_DEC6 - 3599, T_DEC6, "59 minutes ago" },
		{ T_DEC6 - 3600, T_DEC6, "1 hour ago" },
		{ T_DEC6 - 3 * 3600, T_DEC6, "3 hours ago" },
		{ T_DEC6 - 86399, T_DEC6, "23 hours ago" },
		{ T_DEC6 - 86400, T_DEC6, "1 day ago" },
		{ T_DEC6 - 2 * 86400, T_DEC6, "2 days ago" },
		{ T_DEC6 - 29 * 86400, T_DEC6, "29 days ago" },
		{ T_DEC6 - 30 * 86400, T_DEC6, "1 month ago" },
		{ T_DEC6 - 95 * 86400, T_DEC6, "3 months ago" },
		{ T_DEC6 - 364 * 86400, T_DEC6, "12 months ago" },
		{ T_DEC6 - 365 * 86400, T_DEC6, "1 year ago" },
		{ T_DEC6 - 800 * 86400, T_DEC6, "2 years ago" },
		{ -1, 0, "just now" },
		{ INT64_MIN, INT64_MAX, "584942417355 years ago" },
	};
	char buf[64], small[5];
	size_t i;

	(void)state;
	for (i = 0; i < NITEMS(cases); i++)
		assert_string_equal(views_ago(buf, sizeof(buf), cases[i].then, cases[i].now),
		    cases[i].want);
	/* A small buffer is filled, not overrun; a zero-sized one is not touched. */
	assert_string_equal(views_ago(small, sizeof(small), T_DEC6 - 3 * 3600, T_DEC6), "3 ho");
	assert_string_equal(views_ago(NULL, 0, 0, T_DEC6), "");
}

/* ---- connections --------------------------------------------------------- */

static void
test_connections_empty(void **state)
{
	cJSON *v;

	(void)state;
	v = views_connections(NULL, 0, NULL, 0, NULL, T_DEC6);
	check_limits(v);
	assert_int_equal(nblocks(v), 2);
	assert_string_equal(btype(v, 0), "header");
	assert_non_null(strstr(section_text(v, 1), "no personal connections yet"));
	assert_non_null(strstr(section_text(v, 1), "will ask you to log in"));
	assert_int_equal(count_type(v, "actions"), 0);
	assert_null(oget(block(v, 1), "accessory"));
	cJSON_Delete(v);
}

static void
test_connections_one(void **state)
{
	const struct views_conn c = {
		.app = "salesforce", .title = "Salesforce", .account = "jane@acme.com",
		.connected = T_DEC6 - 4 * 3600, .last_used = T_DEC6 - 3 * 3600,
	};
	const cJSON *btn, *cf;
	const char *t;
	cJSON *v;

	(void)state;
	v = views_connections(&c, 1, NULL, 0, NULL, T_DEC6);
	check_limits(v);
	assert_string_equal(sget(v, "text"), "Your personal connections");
	assert_int_equal(nblocks(v), 2);
	assert_string_equal(btype(v, 0), "header");
	t = section_text(v, 1);
	assert_non_null(strstr(t, "*Salesforce*"));
	assert_non_null(strstr(t, "connected as jane@acme.com"));
	assert_non_null(strstr(t, "connected since 6 Dec 2026"));
	assert_non_null(strstr(t, "last used 3 hours ago"));
	assert_null(strstr(t, "expired"));

	btn = oget(block(v, 1), "accessory");
	assert_string_equal(sget(btn, "type"), "button");
	assert_string_equal(button_label(btn), "Disconnect");
	assert_string_equal(sget(btn, "action_id"), "wb_disconnect");
	assert_string_equal(sget(btn, "value"), "salesforce");
	assert_string_equal(sget(btn, "style"), "danger");
	assert_null(oget(btn, "url"));
	cf = oget(btn, "confirm");
	assert_string_equal(sget(oget(cf, "title"), "text"), "Disconnect Salesforce?");
	assert_string_equal(sget(oget(cf, "text"), "text"),
	    "Disconnect Salesforce? Commands that need it will ask you to log in again.");
	assert_string_equal(sget(oget(cf, "confirm"), "text"), "Disconnect");
	assert_string_equal(sget(oget(cf, "deny"), "text"), "Cancel");
	cJSON_Delete(v);
}

static void
test_connections_several(void **state)
{
	const struct views_conn c[] = {
		{ .app = "salesforce", .title = "Salesforce", .account = "jane@acme.com",
		  .connected = T_DEC6 - 86400, .last_used = T_DEC6 - 120 },
		{ .app = "box", .title = "Box", .account = "",
		  .connected = T_DEC6 - 40 * 86400, .last_used = 0, .expired = true,
		  .login_url = "https://wb.example/oauth/start/abc" },
		{ .app = "okta", .title = "Okta", .account = "j@acme.com",
		  .connected = 0, .last_used = T_DEC6 - 2 * 86400, .expired = true },
	};
	const struct views_missing m[] = {
		{ .app = "jira", .title = "Jira", .connect_url = "https://wb.example/oauth/start/def" },
	};
	const cJSON *btn, *els;
	const char *t;
	cJSON *v;

	(void)state;
	v = views_connections(c, NITEMS(c), m, NITEMS(m), "Disconnected from Salesforce", T_DEC6);
	check_limits(v);
	/* The notice is on top and is the notification text. */
	assert_string_equal(sget(v, "text"), "Disconnected from Salesforce");
	assert_string_equal(section_text(v, 0), "Disconnected from Salesforce");
	assert_string_equal(btype(v, 1), "header");

	t = section_text(v, 2);
	assert_non_null(strstr(t, "last used 2 minutes ago"));
	assert_string_equal(sget(oget(block(v, 2), "accessory"), "action_id"), "wb_disconnect");

	/* Expired with a link: the section says so, then Log in again + Disconnect. */
	t = section_text(v, 3);
	assert_non_null(strstr(t, "*Box*"));
	assert_non_null(strstr(t, "expired"));
	assert_non_null(strstr(t, "connected since"));
	assert_non_null(strstr(t, "not used yet"));
	assert_null(strstr(t, "connected as"));
	assert_null(oget(block(v, 3), "accessory"));
	assert_string_equal(btype(v, 4), "actions");
	els = oget(block(v, 4), "elements");
	assert_int_equal(cJSON_GetArraySize(els), 2);
	btn = cJSON_GetArrayItem(els, 0);
	assert_string_equal(button_label(btn), "Log in again");
	assert_string_equal(sget(btn, "url"), "https://wb.example/oauth/start/abc");
	assert_string_equal(sget(btn, "action_id"), "wb_link:box");
	assert_null(oget(btn, "value"));
	btn = cJSON_GetArrayItem(els, 1);
	assert_string_equal(sget(btn, "action_id"), "wb_disconnect");
	assert_string_equal(sget(btn, "value"), "box");

	/* Expired without a link: still shown as expired; Log in again is a
	 * wb_connect button (the click starts the login), then Disconnect. */
	t = section_text(v, 5);
	assert_non_null(strstr(t, "*Okta*"));
	assert_non_null(strstr(t, "expired"));
	assert_null(strstr(t, "connected since"));
	assert_non_null(strstr(t, "last used 2 days ago"));
	assert_null(oget(block(v, 5), "accessory"));
	els = oget(block(v, 6), "elements");
	assert_int_equal(cJSON_GetArraySize(els), 2);
	btn = cJSON_GetArrayItem(els, 0);
	assert_string_equal(button_label(btn), "Log in again");
	assert_string_equal(sget(btn, "action_id"), "wb_connect");
	assert_string_equal(sget(btn, "value"), "okta");
	assert_null(oget(btn, "url"));
	assert_string_equal(sget(cJSON_GetArrayItem(els, 1), "action_id"), "wb_disconnect");

	/* A missing app: Connect. */
	t = section_text(v, 7);
	assert_non_null(strstr(t, "*Jira*"));
	assert_non_null(strstr(t, "not connected"));
	btn = oget(block(v, 7), "accessory");
	assert_string_equal(button_label(btn), "Connect");
	assert_string_equal(sget(btn, "url"), "https://wb.example/oauth/start/def");
	assert_string_equal(sget(btn, "action_id"), "wb_link:jira");
	assert_int_equal(nblocks(v), 8);
	cJSON_Delete(v);
}

static void
test_connections_missing_only(void **state)
{
	const struct views_missing m[] = {
		{ .app = "box", .title = "", .connect_url = "https://wb.example/oauth/start/1" },
	};
	cJSON *v;

	(void)state;
	v = views_connections(NULL, 0, m, 1, NULL, T_DEC6);
	check_limits(v);
	assert_non_null(strstr(section_text(v, 1), "no personal connections yet"));
	/* No title: the app name stands in, never an empty bold. */
	assert_non_null(strstr(section_text(v, 2), "*box*"));
	assert_string_equal(button_label(oget(block(v, 2), "accessory")), "Connect");
	cJSON_Delete(v);

	/* No link made (the usual case): a wb_connect button carrying the app. */
	{
		const struct views_missing m2[] = { { .app = "box", .title = "Box", .connect_url = NULL } };
		const cJSON *b;

		v = views_connections(NULL, 0, m2, 1, NULL, T_DEC6);
		check_limits(v);
		b = oget(block(v, 2), "accessory");
		assert_string_equal(button_label(b), "Connect");
		assert_string_equal(sget(b, "action_id"), "wb_connect");
		assert_string_equal(sget(b, "value"), "box");
		cJSON_Delete(v);
	}
}

static void
test_connections_escaped(void **state)
{
	const struct views_conn c = {
		.app = "rd", .title = "R&D <b>", .account = "<!channel>",
		.connected = T_DEC6, .last_used = T_DEC6,
	};
	const struct views_missing m = {
		.app = "x", .title = "<@U999> & co", .connect_url = "https://wb.example/s/1",
	};
	const cJSON *cf;
	const char *t;
	cJSON *v;

	(void)state;
	v = views_connections(&c, 1, &m, 1, NULL, T_DEC6);
	check_limits(v);
	assert_inert(v);
	t = section_text(v, 1);
	assert_non_null(strstr(t, "*R&amp;D &lt;b&gt;*"));
	assert_non_null(strstr(t, "connected as &lt;!channel&gt;"));
	assert_non_null(strstr(t, "last used just now"));
	assert_non_null(strstr(section_text(v, 2), "&lt;@U999&gt; &amp; co"));
	/* The confirm dialog is plain text: shown as typed, nothing to escape. */
	cf = oget(oget(block(v, 1), "accessory"), "confirm");
	assert_string_equal(sget(oget(cf, "title"), "type"), "plain_text");
	assert_string_equal(sget(oget(cf, "title"), "text"), "Disconnect R&D <b>?");
	assert_string_equal(sget(oget(cf, "text"), "type"), "plain_text");
	cJSON_Delete(v);
}

/* 200 connections (and as many expired, and missing apps): 50 blocks at most. */
static void
test_connections_many(void **state)
{
	struct views_conn *c = xcalloc(200, sizeof(*c));
	struct views_missing *m = xcalloc(200, sizeof(*m));
	char names[200][16];
	size_t i;
	long more;
	cJSON *v;

	(void)state;
	for (i = 0; i < 200; i++) {
		snprintf(names[i], sizeof(names[i]), "app%zu", i);
		c[i] = (struct views_conn){ .app = names[i], .title = names[i], .account = "a@b.c",
		    .connected = T_DEC6 - 86400, .last_used = T_DEC6 - 60 };
		m[i] = (struct views_missing){ .app = names[i], .title = names[i],
		    .connect_url = "https://wb.example/oauth/start/x" };
	}

	v = views_connections(c, 200, NULL, 0, "Disconnected from X", T_DEC6);
	check_limits(v);
	assert_int_equal(nblocks(v), 50);
	/* notice + header + 47 connections + the closing line */
	assert_int_equal(count_type(v, "section") - 1, 47);
	assert_int_equal(more_count(v, "connections"), 200 - 47);
	assert_non_null(strstr(last_context(v, 0), "…and 153 more connections"));
	cJSON_Delete(v);

	/* Expired ones take two blocks each; missing apps come only after them all. */
	for (i = 0; i < 200; i++) {
		c[i].expired = true;
		c[i].login_url = "https://wb.example/oauth/start/y";
	}
	v = views_connections(c, 200, m, 200, NULL, T_DEC6);
	check_limits(v);
	assert_true(nblocks(v) <= 50);
	assert_int_equal(count_type(v, "actions"), 24);
	assert_int_equal(more_count(v, "connections"), 200 - 24);
	assert_int_equal(more_count(v, "apps to connect"), 200);
	cJSON_Delete(v);

	/* Few connections, many missing apps. */
	v = views_connections(c, 3, m, 200, NULL, T_DEC6);
	check_limits(v);
	assert_int_equal(nblocks(v), 50);
	more = more_count(v, "apps to connect");
	assert_int_equal(more, 200 - (50 - 1 - 1 - 6));
	assert_int_equal(more_count(v, "connections"), -1);
	cJSON_Delete(v);

	/* Exactly filling the budget leaves no closing line. */
	for (i = 0; i < 200; i++)
		c[i].expired = false;
	v = views_connections(c, 48, NULL, 0, NULL, T_DEC6);
	check_limits(v);
	assert_int_equal(nblocks(v), 49);
	assert_string_equal(btype(v, 48), "section");
	cJSON_Delete(v);
	free(c);
	free(m);
}

/* Giant and hostile everything: still a valid message, said what it left out. */
static void
test_connections_giant(void **state)
{
	char *huge = repeat("é<&", 4000), *app = repeat("a", 300);
	char *url = repeat("u", 3001), *notice = repeat("n", 10000);
	struct views_conn c[] = {
		{ .app = app, .title = huge, .account = huge, .connected = INT64_MAX,
		  .last_used = INT64_MIN, .expired = true, .login_url = url },
		{ .app = huge, .title = huge, .account = huge, .connected = T_DEC6,
		  .last_used = T_DEC6 },
		{ .app = app, .title = NULL, .account = NULL, .expired = true,
		  .login_url = "https://ok.example/" },
	};
	struct views_missing m[] = {
		{ .app = huge, .title = huge, .connect_url = url },
		{ .app = app, .title = "T", .connect_url = NULL },
	};
	const cJSON *btn[16];
	int n, i;
	cJSON *v;

	(void)state;
	v = views_connections(c, NITEMS(c), m, NITEMS(m), notice, T_DEC6);
	check_limits(v);
	assert_inert(v);
	assert_true(ends_with(section_text(v, 0), "…"));
	assert_true(ends_with(sget(v, "text"), "…"));
	/* The long login link, the long Disconnect value (app name 12000 bytes)
	 * and the long Connect link are left out; a missing link is not an error. */
	assert_non_null(strstr(last_context(v, 0), "3 actions could not be shown"));
	n = buttons(v, btn, 16);
	for (i = 0; i < n; i++)
		assert_true(strlen(sget(btn[i], "action_id")) <= 255);
	/* The third connection: NULL title shows the app, its link is kept;
	 * the last missing app has no link: a wb_connect button. */
	assert_string_equal(button_label(btn[n - 3]), "Log in again");
	assert_true(ends_with(sget(btn[n - 3], "action_id"), "…"));
	assert_string_equal(sget(btn[n - 1], "action_id"), "wb_connect");
	cJSON_Delete(v);
	free(huge);
	free(app);
	free(url);
	free(notice);
}

/* ---- help ------------------------------------------------------------------ */

static void
test_help(void **state)
{
	const struct views_help_item items[] = {
		{ "create opportunity name=… [amount=…]", "Create an opportunity", "Salesforce" },
		{ "status", "", NULL },
		{ "approve id=…", "R&D <!here>", "Box & <Co>" },
	};
	const cJSON *btn[4];
	const char *t, *p, *q, *marked;
	cJSON *v;

	(void)state;
	v = views_help(items, NITEMS(items));
	check_limits(v);
	assert_inert(v);
	assert_string_equal(btype(v, 0), "header");
	t = section_text(v, 1);
	assert_non_null(strstr(t, "`create opportunity name=… [amount=…]`\nCreate an opportunity\n"
	    "_uses your own Salesforce account_"));
	assert_non_null(strstr(t, "`status`\n\n"));
	assert_non_null(strstr(t, "R&amp;D &lt;!here&gt;\n_uses your own Box &amp; &lt;Co&gt; account_"));
	/* Only the personal recipes are marked. */
	p = strstr(t, "`status`");
	q = strstr(t, "`approve");
	assert_true(p != NULL && q != NULL && p < q);
	marked = strstr(p, "uses your own");
	assert_true(marked == NULL || marked > q);
	assert_int_equal(buttons(v, btn, 4), 1);
	assert_string_equal(btype(v, nblocks(v) - 1), "actions");
	assert_string_equal(sget(btn[0], "action_id"), "wb_accounts");
	assert_string_equal(button_label(btn[0]), "Personal accounts");
	assert_null(oget(btn[0], "url"));
	cJSON_Delete(v);

	v = views_help(NULL, 0);
	check_limits(v);
	assert_non_null(strstr(section_text(v, 1), "No commands"));
	assert_int_equal(buttons(v, btn, 4), 1);
	assert_string_equal(sget(btn[0], "action_id"), "wb_accounts");
	cJSON_Delete(v);
}

static void
test_help_many(void **state)
{
	enum { N = 2000 };
	struct views_help_item *items = xcalloc(N, sizeof(*items));
	char (*usage)[600] = xcalloc(N, sizeof(*usage));
	char *desc = repeat("d<", 3000), *title = repeat("T", 500), *big = repeat("x", 10000);
	const cJSON *btn[4];
	long shown = 0, more;
	int i;
	cJSON *v;

	(void)state;
	for (i = 0; i < N; i++) {
		snprintf(usage[i], sizeof(usage[i]), "cmd%d %s", i, i % 3 ? "a=…" : big + 9500);
		items[i] = (struct views_help_item){ usage[i], i % 2 ? desc : "", i % 5 ? NULL : title };
	}
	v = views_help(items, N);
	check_limits(v);
	assert_inert(v);
	assert_int_equal(nblocks(v), 50);
	for (i = 0; i < nblocks(v); i++) {
		const char *t;

		if (strcmp(btype(v, i), "section") != 0)
			continue;
		for (t = section_text(v, i); (t = strstr(t, "`cmd")) != NULL; t++)
			shown++;
	}
	more = more_count(v, "commands");
	assert_true(shown > 47);
	assert_int_equal(shown + more, N);
	assert_string_equal(btype(v, nblocks(v) - 2), "actions");
	assert_int_equal(buttons(v, btn, 4), 1);
	cJSON_Delete(v);
	free(items);
	free(usage);
	free(desc);
	free(title);
	free(big);
}

/* ---- login ------------------------------------------------------------------ */

static void
test_login(void **state)
{
	char *long_title = repeat("T", 200), *long_url = repeat("h", 3001);
	const cJSON *btn;
	cJSON *v;

	(void)state;
	v = views_login("salesforce", "Salesforce", "https://wb.example/oauth/start/abc");
	check_limits(v);
	assert_int_equal(nblocks(v), 1);
	assert_string_equal(sget(v, "text"), "Log in to Salesforce");
	assert_string_equal(section_text(v, 0), "This command runs as you in Salesforce. Log in once; "
	    "workbot remembers until you disconnect.");
	btn = oget(block(v, 0), "accessory");
	assert_string_equal(button_label(btn), "Log in to Salesforce");
	assert_string_equal(sget(btn, "url"), "https://wb.example/oauth/start/abc");
	assert_string_equal(sget(btn, "action_id"), "wb_link:salesforce");
	assert_string_equal(sget(btn, "style"), "primary");
	cJSON_Delete(v);

	/* Hostile title: escaped in mrkdwn and fallback; the label is plain text. */
	v = views_login("x", "<!here> & co", "https://wb.example/s");
	check_limits(v);
	assert_inert(v);
	assert_string_equal(sget(v, "text"), "Log in to &lt;!here&gt; &amp; co");
	assert_string_equal(button_label(oget(block(v, 0), "accessory")), "Log in to <!here> & co");
	cJSON_Delete(v);

	/* A 200-char title: the label is cut to 75 with "…". */
	v = views_login("x", long_title, "https://wb.example/s");
	check_limits(v);
	btn = oget(block(v, 0), "accessory");
	assert_true(ends_with(button_label(btn), "…"));
	assert_true(strlen(button_label(btn)) <= 75);
	assert_int_equal(strncmp(button_label(btn), "Log in to TTT", 13), 0);
	cJSON_Delete(v);

	/* A link too long to send: no button, and the message says so. */
	v = views_login("x", "X", long_url);
	check_limits(v);
	assert_null(oget(block(v, 0), "accessory"));
	assert_non_null(strstr(last_context(v, 0), "One action could not be shown"));
	cJSON_Delete(v);

	/* No link at all: nothing was cut, so nothing to apologise for. */
	v = views_login("x", "X", NULL);
	check_limits(v);
	assert_int_equal(nblocks(v), 1);
	assert_null(oget(block(v, 0), "accessory"));
	cJSON_Delete(v);
	free(long_title);
	free(long_url);
}

/* ---- text, reply, decided -------------------------------------------------- */

static void
test_text(void **state)
{
	char *big = repeat("€", 5000);
	cJSON *v;

	(void)state;
	v = views_text("I don't know that command — try `help`");
	check_limits(v);
	assert_int_equal(nblocks(v), 1);
	assert_string_equal(section_text(v, 0), "I don't know that command — try `help`");
	assert_string_equal(sget(v, "text"), "I don't know that command — try `help`");
	cJSON_Delete(v);

	v = views_text("");
	check_limits(v);
	cJSON_Delete(v);
	v = views_text(NULL);
	check_limits(v);
	cJSON_Delete(v);

	v = views_text(big);
	check_limits(v);
	assert_true(strlen(section_text(v, 0)) <= 3000);
	assert_true(ends_with(section_text(v, 0), "…"));
	cJSON_Delete(v);
	free(big);
}

static void
test_reply(void **state)
{
	const struct views_button b[] = {
		{ "Approve", "{\"recipe\":\"approve\",\"params\":{\"id\":\"7\"}}" },
		{ "Reject", "{\"recipe\":\"reject\",\"params\":{\"id\":\"7\"}}" },
		{ "", "{}" },
	};
	const cJSON *btn[8];
	char id[32];
	int i;
	cJSON *v;

	(void)state;
	v = views_reply("Opportunity *Acme* created", b, NITEMS(b));
	check_limits(v);
	assert_int_equal(nblocks(v), 2);
	assert_string_equal(section_text(v, 0), "Opportunity *Acme* created");
	assert_string_equal(btype(v, 1), "actions");
	assert_int_equal(buttons(v, btn, 8), 3);
	for (i = 0; i < 3; i++) {
		snprintf(id, sizeof(id), "wb_recipe:%d", i);
		assert_string_equal(sget(btn[i], "action_id"), id);
		assert_string_equal(sget(btn[i], "value"), b[i].value);
		assert_null(oget(btn[i], "url"));
	}
	assert_string_equal(button_label(btn[0]), "Approve");
	assert_string_equal(button_label(btn[1]), "Reject");
	assert_true(*button_label(btn[2]) != '\0');
	cJSON_Delete(v);

	/* No buttons: just the text. */
	v = views_reply("done", NULL, 0);
	check_limits(v);
	assert_int_equal(nblocks(v), 1);
	cJSON_Delete(v);
}

static void
test_reply_limits(void **state)
{
	char *text = repeat("é", 5000), *label = repeat("L", 200);
	char *value_ok = repeat("v", 2000), *value_long = repeat("v", 2001);
	struct views_button b[] = {
		{ label, value_ok },
		{ "Too long", value_long },
		{ "Fine", "{}" },
	};
	struct views_button *many = xcalloc(2000, sizeof(*many));
	const cJSON *btn[1300];
	const char *t;
	size_t i;
	int n;
	cJSON *v;

	(void)state;
	/* 10,000 bytes of two-byte characters: cut to 3000, "…", whole UTF-8. */
	v = views_reply(text, b, NITEMS(b));
	check_limits(v);
	t = section_text(v, 0);
	assert_true(strlen(t) <= 3000);
	assert_true(strlen(t) > 2990);
	assert_true(ends_with(t, "…"));
	assert_true(strlen(sget(v, "text")) <= 150);
	/* The 200-char label is cut to 75; the value over 2000 leaves its button
	 * out, the others keep their own index. */
	n = buttons(v, btn, 8);
	assert_int_equal(n, 2);
	assert_true(strlen(button_label(btn[0])) <= 75);
	assert_true(ends_with(button_label(btn[0]), "…"));
	assert_string_equal(sget(btn[0], "action_id"), "wb_recipe:0");
	assert_int_equal(strlen(sget(btn[0], "value")), 2000);
	assert_string_equal(sget(btn[1], "action_id"), "wb_recipe:2");
	assert_string_equal(btype(v, nblocks(v) - 1), "context");
	assert_non_null(strstr(last_context(v, 0), "One action could not be shown"));
	cJSON_Delete(v);

	/* 60 buttons: rows of 25. */
	for (i = 0; i < 2000; i++)
		many[i] = (struct views_button){ "B", "{}" };
	v = views_reply("x", many, 60);
	check_limits(v);
	assert_int_equal(count_type(v, "actions"), 3);
	assert_int_equal(cJSON_GetArraySize(oget(block(v, 1), "elements")), 25);
	assert_int_equal(cJSON_GetArraySize(oget(block(v, 3), "elements")), 10);
	assert_int_equal(buttons(v, btn, 1300), 60);
	assert_string_equal(sget(btn[59], "action_id"), "wb_recipe:59");
	cJSON_Delete(v);

	/* 2000 buttons: 48 full rows, then how many more. */
	v = views_reply("x", many, 2000);
	check_limits(v);
	assert_int_equal(nblocks(v), 50);
	n = buttons(v, btn, 1300);
	assert_int_equal(n, 48 * 25);
	assert_int_equal(more_count(v, "buttons"), 2000 - 48 * 25);
	cJSON_Delete(v);

	/* Every button too long: no empty actions block, one line saying so. */
	for (i = 0; i < 30; i++)
		many[i].value = value_long;
	v = views_reply("x", many, 30);
	check_limits(v);
	assert_int_equal(count_type(v, "actions"), 0);
	assert_non_null(strstr(last_context(v, 0), "30 actions could not be shown"));
	cJSON_Delete(v);
	free(many);
	free(text);
	free(label);
	free(value_ok);
	free(value_long);
}

static void
test_decided(void **state)
{
	char *big = repeat("x", 10000);
	cJSON *v;

	(void)state;
	v = views_decided("Expense *42* for approval", "Approved by <@U123>");
	check_limits(v);
	assert_int_equal(nblocks(v), 2);
	assert_string_equal(section_text(v, 0), "Expense *42* for approval");
	assert_int_equal(count_type(v, "actions"), 0);
	assert_string_equal(last_context(v, 0), "Approved by <@U123>");
	assert_string_equal(sget(v, "text"), "Expense *42* for approval");
	cJSON_Delete(v);

	v = views_decided(big, big);
	check_limits(v);
	assert_true(ends_with(last_context(v, 0), "…"));
	cJSON_Delete(v);
	v = views_decided("", NULL);
	check_limits(v);
	cJSON_Delete(v);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ago_table),
		cmocka_unit_test(test_connections_empty),
		cmocka_unit_test(test_connections_one),
		cmocka_unit_test(test_connections_several),
		cmocka_unit_test(test_connections_missing_only),
		cmocka_unit_test(test_connections_escaped),
		cmocka_unit_test(test_connections_many),
		cmocka_unit_test(test_connections_giant),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_help_many),
		cmocka_unit_test(test_login),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_reply),
		cmocka_unit_test(test_reply_limits),
		cmocka_unit_test(test_decided),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
