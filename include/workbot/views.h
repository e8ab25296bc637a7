/*
 * views: the Block Kit messages workbot posts, built as cJSON objects
 * {"text": fallback, "blocks": [...]} ready to become the body of
 * chat.postMessage / chat.postEphemeral / chat.update or a response_url post
 * (the caller adds channel, user, thread_ts, replace_original ...).
 *
 * Pure functions: no I/O, any thread. Every string that came from a user,
 * a provider or the config is mrkdwn-escaped (& < >) where it lands in
 * mrkdwn, and every view respects Slack's limits (at most 50 blocks,
 * section text 3000, button text 75, value 2000, url 3000, action_id 255):
 * long text is cut with "…", long lists are cut with a last line saying how
 * many more there are. Never NULL (OOM is fatal).
 *
 * Action ids (what block_actions handlers match on):
 *   wb_disconnect        value: the app name          (Disconnect, with a confirm dialog)
 *   wb_accounts          no value                     (Personal accounts, in help)
 *   wb_recipe:<n>        value: {"recipe":…,"params":…} (recipe reply buttons; n = button index)
 *   wb_link:<app>        url button (Log in / Log in again / Connect): acked and ignored
 *   wb_connect           value: the app name          (Log in again / Connect without a link:
 *                                                      the click starts the login)
 */
#ifndef WORKBOT_VIEWS_H
#define WORKBOT_VIEWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct views_conn {
	const char *app;		/* [app NAME] */
	const char *title;		/* "Salesforce" */
	const char *account;		/* "jane@acme.com", or "" when unknown */
	int64_t connected;		/* unix s; 0 unknown */
	int64_t last_used;		/* unix s; 0 never/unknown */
	bool expired;			/* the provider refused a refresh: needs a new login */
	const char *login_url;		/* expired: the Log in again link; NULL: a wb_connect button */
};

struct views_missing {			/* an app recipes need a personal connection for */
	const char *app;
	const char *title;
	const char *connect_url;	/* the Connect link, or NULL: a wb_connect button */
};

/*
 * The `connections` view: one section per connection (title, "connected as
 * <account>" when known, "connected since <date>", "last used <relative>")
 * with a Disconnect button (style danger, confirm dialog "Disconnect
 * <Title>? Commands that need it will ask you to log in again."); an
 * expired one shows as expired with a "Log in again" url button; then the
 * apps in `missing` with a Connect url button. With no connections: says
 * so and explains that commands that need one will ask you to log in.
 * `notice` (mrkdwn, already escaped; NULL: none) goes on top, e.g.
 * "Disconnected from Salesforce". `now` for "3 hours ago".
 */
cJSON *views_connections(const struct views_conn *c, size_t n, const struct views_missing *m, size_t nm,
    const char *notice, int64_t now);

struct views_help_item {
	const char *usage;		/* "create opportunity name=… [amount=…]" (plain text) */
	const char *description;	/* may be "" */
	const char *personal_title;	/* "Salesforce" when it runs as the user, else NULL */
};

/* `help`: the commands with usage and description, which run as the user
 * ("uses your own Salesforce account"), and a Personal accounts button. */
cJSON *views_help(const struct views_help_item *items, size_t n);

/* The login prompt: why ("This command runs as you in <Title>. Log in once;
 * workbot remembers until you disconnect.") and a "Log in to <Title>" url
 * button (action_id wb_link:<app>). */
cJSON *views_login(const char *app, const char *title, const char *url);

/* A plain message; `mrkdwn` is used as is (the caller escaped what needs it). */
cJSON *views_text(const char *mrkdwn);

struct views_button {
	const char *label;		/* plain text */
	const char *value;		/* the button value ({"recipe":…}) */
};

/* A recipe's reply (mrkdwn, already rendered and escaped) with its buttons
 * (action_id wb_recipe:<index>). */
cJSON *views_reply(const char *mrkdwn, const struct views_button *b, size_t nb);

/*
 * The same message after a decision: the reply text kept, the buttons
 * replaced by a context line `done` (mrkdwn, e.g. "Approved by <@U123>").
 */
cJSON *views_decided(const char *mrkdwn, const char *done);

/* "3 hours ago", "just now", "2 days ago" … (plain text) into buf. */
const char *views_ago(char *buf, size_t size, int64_t then, int64_t now);

#endif
