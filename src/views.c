/*
 * views: the Block Kit messages workbot posts (DESIGN §6 "Commands").
 *
 * How it works. Each view is built with cJSON into one `struct view`, which
 * counts its blocks and the actions it had to leave out. Every string that
 * lands in a message goes through one of two doors: esc_cut() for text from
 * a user, a provider or the config that lands in mrkdwn (escaped, then cut
 * with cmdtext_truncate(), which never splits a UTF-8 sequence or an
 * entity), and cut() for plain_text and for mrkdwn the caller already
 * escaped. Limits are counted in bytes, which are never fewer than the
 * characters Slack counts, so a byte bound is always safe. Lists are laid
 * out against a block budget that keeps one block free for the closing
 * context line ("…and 12 more connections", "One action could not be
 * shown"), so a view can never pass 50 blocks whatever the input.
 *
 * What it must never do: put unescaped user or provider text into mrkdwn
 * (an account label `<!channel>` must not ping anyone), produce a message
 * Slack refuses (over a limit, an empty text object), or cut a button
 * value or URL: one that does not fit is left out and said so, because a
 * cut value or link would do something else than its label says.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "workbot/cmdtext.h"
#include "workbot/log.h"
#include "workbot/views.h"
#include "workbot/xmalloc.h"

/* Slack's Block Kit limits (research/slack-socket-mode.md §5). */
#define MAX_BLOCKS		50
#define MAX_SECTION_TEXT	3000
#define MAX_CONTEXT_TEXT	3000
#define MAX_HEADER_TEXT		150
#define MAX_BUTTON_TEXT		75
#define MAX_BUTTON_VALUE	2000
#define MAX_URL			3000
#define MAX_ACTION_ID		255
#define MAX_CONFIRM_TITLE	100
#define MAX_ACTIONS_ELEMENTS	25

/*
 * Our own bounds. The fallback `text` is what notifications show; long
 * text there only repeats the blocks. Titles and labels are cut before
 * they are placed so that one huge value cannot push the rest of a
 * section (the date, the description) out of its 3000.
 */
#define MAX_FALLBACK		150
#define MAX_TITLE		100
#define MAX_ACCOUNT		300
#define MAX_USAGE		500
#define MAX_DESCRIPTION		1000

#define NO_TEXT			"(no text)"
#define NO_LABEL		"(no label)"

/* ---- cJSON that cannot fail ---------------------------------------------- */

/* cJSON answers NULL only when malloc does: fatal, as xmalloc is. */
static cJSON *
must(cJSON *o)
{
	if (o == NULL)
		fatal(1, "views", "out of memory building a message");
	return o;
}

static void
add(cJSON *obj, const char *key, cJSON *item)
{
	if (!cJSON_AddItemToObject(obj, key, must(item)))
		fatal(1, "views", "out of memory building a message");
}

static void
add_str(cJSON *obj, const char *key, const char *s)
{
	add(obj, key, cJSON_CreateString(s));
}

static void
push(cJSON *arr, cJSON *item)
{
	if (!cJSON_AddItemToArray(arr, must(item)))
		fatal(1, "views", "out of memory building a message");
}

/* ---- text ----------------------------------------------------------------- */

static const char *
nz(const char *s)
{
	return s != NULL ? s : "";
}

/* A copy of `s` cut to `max` bytes with "…" (plain text, or escaped mrkdwn). */
static char *
cut(const char *s, size_t max)
{
	char *t = xstrdup(nz(s));

	cmdtext_truncate(t, max);
	return t;
}

/* `s` escaped for mrkdwn, then cut to `max` bytes without splitting an entity. */
static char *
esc_cut(const char *s, size_t max)
{
	char *t;

	s = nz(s);
	t = cmdtext_mrkdwn_escape(s, strlen(s));
	cmdtext_truncate(t, max);
	return t;
}

/* The app's title, else its name: a connection is never shown nameless. */
static const char *
title_of(const char *title, const char *app)
{
	if (title != NULL && *title != '\0')
		return title;
	if (app != NULL && *app != '\0')
		return app;
	return "this app";
}

/* A growable string for section texts; callers cut it at the end. */
struct str {
	char *s;
	size_t len, cap;
};

static void
str_add(struct str *b, const char *s)
{
	size_t n = strlen(s);

	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;

		while (cap < b->len + n + 1)
			cap *= 2;
		b->s = xrealloc(b->s, cap);
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n + 1);
	b->len += n;
}

/* Appends an owned string and frees it. */
static void
str_take(struct str *b, char *s)
{
	str_add(b, s);
	free(s);
}

/* ---- text objects, buttons, blocks --------------------------------------- */

/* `s` must already be cut and non-empty. */
static cJSON *
text_obj(const char *type, const char *s)
{
	cJSON *t = must(cJSON_CreateObject());

	add_str(t, "type", type);
	add_str(t, "text", s);
	return t;
}

/* A plain_text object cut to `max`; an empty text is refused by Slack. */
static cJSON *
plain(const char *s, size_t max, const char *if_empty)
{
	char *t = cut(s != NULL && *s != '\0' ? s : if_empty, max);
	cJSON *o = text_obj("plain_text", t);

	free(t);
	return o;
}

/* A button without value or url yet; `action_id` is cut to its limit. */
static cJSON *
button(const char *label, const char *action_id, const char *style)
{
	cJSON *b = must(cJSON_CreateObject());
	char *id = cut(action_id, MAX_ACTION_ID);

	add_str(b, "type", "button");
	add(b, "text", plain(label, MAX_BUTTON_TEXT, NO_LABEL));
	add_str(b, "action_id", id);
	if (style != NULL)
		add_str(b, "style", style);
	free(id);
	return b;
}

static bool
has_url(const char *url)
{
	return url != NULL && *url != '\0';
}

/*
 * A url button (Log in, Log in again, Connect), action_id wb_link:<app>.
 * NULL when the link is missing or too long: a cut link goes elsewhere.
 * Only a link that was given but is too long counts as left out.
 * A long app name only shortens the action_id, which handlers ignore.
 */
static cJSON *
url_button(const char *label, const char *app, const char *url, const char *style)
{
	char *id;
	cJSON *b;

	if (!has_url(url) || strlen(url) > MAX_URL)
		return NULL;
	id = xasprintf("wb_link:%s", nz(app));
	b = button(label, id, style);
	free(id);
	add_str(b, "url", url);
	return b;
}

/* A value button; NULL when the value is too long to send whole. */
static cJSON *
value_button(const char *label, const char *action_id, const char *value, const char *style)
{
	cJSON *b;

	if (strlen(nz(value)) > MAX_BUTTON_VALUE)
		return NULL;
	b = button(label, action_id, style);
	add_str(b, "value", nz(value));
	return b;
}

/*
 * Log in again / Connect: a url button when the caller made a login link,
 * else a wb_connect button (value: the app) that starts the login when it
 * is clicked — so showing a view never has to write a pending login.
 */
static cJSON *
login_button(const char *label, const char *app, const char *url, const char *style)
{
	if (url != NULL)
		return url_button(label, app, url, style);
	return value_button(label, "wb_connect", app, style);
}

/*
 * The Disconnect button. Its value is the app name only: the handler takes
 * the user from the click, never from the button (DESIGN §6). The confirm
 * dialog is plain text, so the title needs no escaping, only cutting.
 */
static cJSON *
disconnect_button(const char *app, const char *title)
{
	cJSON *b, *cf;
	char *t = cut(title, MAX_TITLE), *s;

	if ((b = value_button("Disconnect", "wb_disconnect", app, "danger")) == NULL) {
		free(t);
		return NULL;
	}
	cf = must(cJSON_CreateObject());
	s = xasprintf("Disconnect %s?", t);
	add(cf, "title", plain(s, MAX_CONFIRM_TITLE, NULL));
	free(s);
	s = xasprintf("Disconnect %s? Commands that need it will ask you to log in again.", t);
	add(cf, "text", plain(s, 300, NULL));
	free(s);
	add(cf, "confirm", plain("Disconnect", 30, NULL));
	add(cf, "deny", plain("Cancel", 30, NULL));
	add(b, "confirm", cf);
	free(t);
	return b;
}

/* ---- a message under construction ----------------------------------------- */

struct view {
	cJSON *msg;
	cJSON *blocks;
	int nblocks;
	size_t hidden;		/* actions left out because they were too long */
	char *more[3];		/* "…and N more …" lines for the closing context */
	size_t nmore;
};

static void
view_init(struct view *v, const char *fallback)
{
	char *t = cut(fallback != NULL && *fallback != '\0' ? fallback : "workbot", MAX_FALLBACK);

	memset(v, 0, sizeof(*v));
	v->msg = must(cJSON_CreateObject());
	add_str(v->msg, "text", t);
	free(t);
	v->blocks = must(cJSON_CreateArray());
	add(v->msg, "blocks", v->blocks);
}

/*
 * Blocks still free for content. One is always held back for the closing
 * context line, so the list code never has to undo a block it placed.
 */
static int
view_room(const struct view *v)
{
	return MAX_BLOCKS - 1 - v->nblocks;
}

static void
view_block(struct view *v, cJSON *blk)
{
	if (v->nblocks >= MAX_BLOCKS)
		fatal(1, "views", "block budget broken: %d blocks", v->nblocks);
	push(v->blocks, blk);
	v->nblocks++;
}

/* A section; `mrkdwn` is escaped already and is cut to the section limit. */
static cJSON *
view_section(struct view *v, const char *mrkdwn, cJSON *accessory)
{
	cJSON *s = must(cJSON_CreateObject());
	char *t = cut(mrkdwn != NULL && *mrkdwn != '\0' ? mrkdwn : NO_TEXT, MAX_SECTION_TEXT);

	add_str(s, "type", "section");
	add(s, "text", text_obj("mrkdwn", t));
	if (accessory != NULL)
		add(s, "accessory", accessory);
	free(t);
	view_block(v, s);
	return s;
}

static void
view_header(struct view *v, const char *plain_text)
{
	cJSON *h = must(cJSON_CreateObject());

	add_str(h, "type", "header");
	add(h, "text", plain(plain_text, MAX_HEADER_TEXT, NO_TEXT));
	view_block(v, h);
}

/* A context block with up to three mrkdwn lines (Slack allows ten). */
static void
view_context(struct view *v, char *const *lines, size_t n)
{
	cJSON *c = must(cJSON_CreateObject()), *els = must(cJSON_CreateArray());
	size_t i;

	add_str(c, "type", "context");
	for (i = 0; i < n; i++) {
		char *t = cut(*lines[i] != '\0' ? lines[i] : NO_TEXT, MAX_CONTEXT_TEXT);

		push(els, text_obj("mrkdwn", t));
		free(t);
	}
	add(c, "elements", els);
	view_block(v, c);
}

static void
view_more(struct view *v, size_t n, const char *one, const char *many)
{
	if (n == 0 || v->nmore >= sizeof(v->more) / sizeof(v->more[0]))
		return;
	v->more[v->nmore++] = xasprintf("…and %zu more %s", n, n == 1 ? one : many);
}

/* The closing context line (in the block held back), and the message. */
static cJSON *
view_finish(struct view *v)
{
	size_t i;

	if (v->hidden > 0 && v->nmore < sizeof(v->more) / sizeof(v->more[0])) {
		v->more[v->nmore++] = v->hidden == 1 ?
		    xstrdup("One action could not be shown: it is too long for Slack.") :
		    xasprintf("%zu actions could not be shown: they are too long for Slack.", v->hidden);
	}
	if (v->nmore > 0)
		view_context(v, v->more, v->nmore);
	for (i = 0; i < v->nmore; i++)
		free(v->more[i]);
	return v->msg;
}

/* ---- dates ----------------------------------------------------------------- */

/* "6 Dec 2026" (UTC); English month names whatever the locale. */
static const char *
date_text(char *buf, size_t size, int64_t t)
{
	static const char months[12][4] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
	};
	time_t tt = (time_t)t;
	struct tm tm;

	if ((int64_t)tt != t || gmtime_r(&tt, &tm) == NULL || tm.tm_mon < 0 || tm.tm_mon > 11)
		return NULL;
	snprintf(buf, size, "%d %s %lld", tm.tm_mday, months[tm.tm_mon], (long long)tm.tm_year + 1900);
	return buf;
}

const char *
views_ago(char *buf, size_t size, int64_t then, int64_t now)
{
	static const struct {
		uint64_t secs;
		const char *one, *many;
	} units[] = {
		{ 365 * 86400ULL, "year", "years" },
		{ 30 * 86400ULL, "month", "months" },
		{ 86400, "day", "days" },
		{ 3600, "hour", "hours" },
		{ 60, "minute", "minutes" },
	};
	uint64_t d, k;
	size_t i;

	if (size == 0)
		return "";
	if (then == 0) {
		snprintf(buf, size, "never");
		return buf;
	}
	/* A time in the future is clock skew, not news: "just now". */
	if (then >= now) {
		snprintf(buf, size, "just now");
		return buf;
	}
	d = (uint64_t)now - (uint64_t)then;	/* then < now: no overflow in unsigned */
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (d < units[i].secs)
			continue;
		k = d / units[i].secs;
		snprintf(buf, size, "%" PRIu64 " %s ago", k, k == 1 ? units[i].one : units[i].many);
		return buf;
	}
	snprintf(buf, size, "just now");
	return buf;
}

/* ---- connections ------------------------------------------------------------ */

static char *
conn_text(const struct views_conn *c, int64_t now)
{
	struct str b = { 0 };
	char date[64], ago[64];
	const char *since;

	str_add(&b, "*");
	str_take(&b, esc_cut(title_of(c->title, c->app), MAX_TITLE));
	str_add(&b, "*");
	if (c->expired)
		str_add(&b, " — expired: the provider no longer accepts this login");
	if (c->account != NULL && *c->account != '\0') {
		str_add(&b, "\nconnected as ");
		str_take(&b, esc_cut(c->account, MAX_ACCOUNT));
	}
	str_add(&b, "\n");
	if (c->connected != 0 && (since = date_text(date, sizeof(date), c->connected)) != NULL) {
		str_add(&b, "connected since ");
		str_add(&b, since);
		str_add(&b, " · ");
	}
	if (c->last_used == 0) {
		str_add(&b, "not used yet");
	} else {
		str_add(&b, "last used ");
		str_add(&b, views_ago(ago, sizeof(ago), c->last_used, now));
	}
	return b.s;
}

/*
 * One connection: a section with Disconnect, or for an expired one with a
 * link, a section and an actions block with Log in again and Disconnect
 * (disconnecting an expired connection is how a user forgets it).
 * Returns false, placing nothing, when its blocks no longer fit.
 */
static bool
add_conn(struct view *v, const struct views_conn *c, int64_t now)
{
	const char *title = title_of(c->title, c->app);
	cJSON *login = NULL, *disc, *actions, *els;
	bool has_link = c->expired;
	char *text;

	if (view_room(v) < (has_link ? 2 : 1))
		return false;
	if (has_link && (login = login_button("Log in again", c->app, c->login_url, "primary")) == NULL)
		v->hidden++;
	if ((disc = disconnect_button(c->app, title)) == NULL)
		v->hidden++;
	text = conn_text(c, now);
	if (login == NULL) {
		view_section(v, text, disc);
	} else {
		view_section(v, text, NULL);
		actions = must(cJSON_CreateObject());
		els = must(cJSON_CreateArray());
		add_str(actions, "type", "actions");
		push(els, login);
		if (disc != NULL)
			push(els, disc);
		add(actions, "elements", els);
		view_block(v, actions);
	}
	free(text);
	return true;
}

static bool
add_missing(struct view *v, const struct views_missing *m)
{
	char *title, *text;
	cJSON *b;

	if (view_room(v) < 1)
		return false;
	title = esc_cut(title_of(m->title, m->app), MAX_TITLE);
	text = xasprintf("*%s* — not connected yet. Some commands run as you there; connect once "
	    "and workbot remembers until you disconnect.", title);
	b = login_button("Connect", m->app, m->connect_url, "primary");
	if (b == NULL)
		v->hidden++;
	view_section(v, text, b);
	free(title);
	free(text);
	return true;
}

cJSON *
views_connections(const struct views_conn *c, size_t n, const struct views_missing *m, size_t nm,
    const char *notice, int64_t now)
{
	struct view v;
	size_t i = 0, j = 0;

	view_init(&v, notice != NULL && *notice != '\0' ? notice : "Your personal connections");
	if (notice != NULL && *notice != '\0')
		view_section(&v, notice, NULL);
	view_header(&v, "Your personal connections");
	if (n == 0)
		view_section(&v, "You have no personal connections yet. Commands that need one will "
		    "ask you to log in the first time you run them; workbot then remembers until "
		    "you disconnect.", NULL);
	for (i = 0; i < n; i++)
		if (!add_conn(&v, &c[i], now))
			break;
	/* Missing apps come after every connection, never in a gap between them. */
	if (i == n)
		for (j = 0; j < nm; j++)
			if (!add_missing(&v, &m[j]))
				break;
	view_more(&v, n - i, "connection", "connections");
	view_more(&v, nm - j, "app to connect", "apps to connect");
	return view_finish(&v);
}

/* ---- help -------------------------------------------------------------------- */

static char *
help_item_text(const struct views_help_item *it)
{
	struct str b = { 0 };

	str_add(&b, "`");
	str_take(&b, esc_cut(it->usage != NULL && *it->usage != '\0' ? it->usage : "?", MAX_USAGE));
	str_add(&b, "`");
	if (it->description != NULL && *it->description != '\0') {
		str_add(&b, "\n");
		str_take(&b, esc_cut(it->description, MAX_DESCRIPTION));
	}
	if (it->personal_title != NULL) {
		str_add(&b, "\n_uses your own ");
		str_take(&b, esc_cut(title_of(it->personal_title, NULL), MAX_TITLE));
		str_add(&b, " account_");
	}
	return b.s;
}

/*
 * Commands are packed several to a section (each item is far below 3000
 * bytes by the cuts above), so a long recipe list costs few blocks.
 */
cJSON *
views_help(const struct views_help_item *items, size_t n)
{
	struct view v;
	struct str sec = { 0 };
	cJSON *actions, *els;
	size_t i, shown = 0;
	char *t;

	view_init(&v, "workbot commands");
	view_header(&v, "workbot commands");
	if (n == 0)
		view_section(&v, "No commands are set up yet: the workbot admin adds them in workbot.conf.",
		    NULL);
	/* The Personal accounts actions block is the one block held back here. */
	for (i = 0; i < n; i++) {
		t = help_item_text(&items[i]);
		if (sec.len > 0 && sec.len + 2 + strlen(t) > MAX_SECTION_TEXT) {
			view_section(&v, sec.s, NULL);
			sec.len = 0;
			sec.s[0] = '\0';
		}
		if (sec.len == 0 && view_room(&v) < 2) {
			free(t);
			break;
		}
		if (sec.len > 0)
			str_add(&sec, "\n\n");
		str_take(&sec, t);
		shown++;
	}
	if (sec.len > 0)
		view_section(&v, sec.s, NULL);
	free(sec.s);

	/* The value is left out: the handler matches the action_id, and Slack
	 * has no use for an empty value. */
	actions = must(cJSON_CreateObject());
	els = must(cJSON_CreateArray());
	add_str(actions, "type", "actions");
	push(els, button("Personal accounts", "wb_accounts", NULL));
	add(actions, "elements", els);
	view_block(&v, actions);
	view_more(&v, n - shown, "command", "commands");
	return view_finish(&v);
}

/* ---- login, text, reply, decided ---------------------------------------------- */

cJSON *
views_login(const char *app, const char *title, const char *url)
{
	struct view v;
	const char *name = title_of(title, app);
	char *esc = esc_cut(name, MAX_TITLE), *fallback, *text, *label;
	cJSON *b;

	fallback = xasprintf("Log in to %s", esc);
	view_init(&v, fallback);
	label = xasprintf("Log in to %s", name);
	if ((b = url_button(label, app, url, "primary")) == NULL && has_url(url))
		v.hidden++;
	text = xasprintf("This command runs as you in %s. Log in once; workbot remembers until "
	    "you disconnect.", esc);
	view_section(&v, text, b);
	free(esc);
	free(fallback);
	free(label);
	free(text);
	return view_finish(&v);
}

cJSON *
views_text(const char *mrkdwn)
{
	struct view v;

	view_init(&v, mrkdwn);
	view_section(&v, mrkdwn, NULL);
	return view_finish(&v);
}

cJSON *
views_reply(const char *mrkdwn, const struct views_button *b, size_t nb)
{
	struct view v;
	cJSON *actions = NULL, *els = NULL, *btn;
	size_t i, done = 0;	/* placed or left out as too long */
	int inrow = 0;
	char *id;

	view_init(&v, mrkdwn);
	view_section(&v, mrkdwn, NULL);
	for (i = 0; i < nb; i++) {
		id = xasprintf("wb_recipe:%zu", i);
		btn = value_button(b[i].label, id, b[i].value, NULL);
		free(id);
		if (btn == NULL) {
			v.hidden++;
			done++;
			continue;
		}
		/* A row is opened only for a button that exists: never an empty one. */
		if (actions == NULL || inrow == MAX_ACTIONS_ELEMENTS) {
			if (view_room(&v) < 1) {
				cJSON_Delete(btn);
				break;
			}
			actions = must(cJSON_CreateObject());
			els = must(cJSON_CreateArray());
			add_str(actions, "type", "actions");
			add(actions, "elements", els);
			view_block(&v, actions);
			inrow = 0;
		}
		push(els, btn);
		inrow++;
		done++;
	}
	view_more(&v, nb - done, "button", "buttons");
	return view_finish(&v);
}

cJSON *
views_decided(const char *mrkdwn, const char *done)
{
	struct view v;
	char *line = xstrdup(done != NULL && *done != '\0' ? done : "Done.");

	view_init(&v, mrkdwn);
	view_section(&v, mrkdwn, NULL);
	view_context(&v, &line, 1);
	free(line);
	return view_finish(&v);
}
