/*
 * bot: the Slack-facing commands, on workers.
 *
 * Each entry point turns its payload into one `struct req` — who asked
 * (team, user), where (channel, thread, DM or not), how to answer
 * (response_url for slash commands and clicks) — and the rest of the file
 * works on that: read the text (cmdtext.c), pick help / connections / a
 * recipe, and answer through the outbox with a view (views.c).
 *
 * Who may run what: a payload from a user of another team than the
 * installing one (Slack Connect) gets a polite refusal and nothing runs.
 * Disconnect acts on the clicking user's own record: the user id always
 * comes from the payload, never from a button value.
 *
 * A recipe with verify_user_access runs with the requesting (or clicking)
 * user's own token; when there is none, the user gets a private Log in
 * button and the command is stored with the login so it resumes by itself
 * after Connect. App errors reach Slack as the HTTP status and the app's
 * error field, truncated and escaped — never the raw body, never a token.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "workbot/bot.h"
#include "workbot/cmdtext.h"
#include "workbot/config.h"
#include "workbot/dispatch.h"
#include "workbot/envelope.h"
#include "workbot/http.h"
#include "workbot/log.h"
#include "workbot/oauth.h"
#include "workbot/outbox.h"
#include "workbot/records.h"
#include "workbot/render.h"
#include "workbot/views.h"
#include "workbot/xmalloc.h"

#define APP_TIMEOUT_MS	15000
#define APP_BODY_MAX	(1024u * 1024u)
#define ERROR_SHOWN_MAX	300

struct req {
	const struct dispatch_ctx *ctx;
	enum dispatch_kind kind;
	const cJSON *payload;		/* for resuming after a login */
	const char *team;		/* the requesting user's team */
	const char *user;
	const char *channel;
	const char *thread_ts;		/* answer in this thread, or NULL */
	bool is_dm;
	const char *response_url;	/* slash commands and clicks, or NULL */
};

/* ---- answering ---- */

static void
put_str(cJSON *o, const char *k, const char *v)
{
	if (v != NULL && *v)
		cJSON_AddStringToObject(o, k, v);
}

/* Only the requester sees it: DM message, ephemeral in a channel, or the response_url. */
static void
reply_private(const struct req *r, cJSON *view)
{
	if (r->response_url != NULL && !r->is_dm) {
		cJSON_AddStringToObject(view, "response_type", "ephemeral");
		cJSON_AddBoolToObject(view, "replace_original", 0);
		outbox_send(r->ctx->outbox, OUTBOX_RESPONSE_URL, view, secret_from_str(r->response_url), NULL);
		return;
	}
	put_str(view, "channel", r->channel);
	put_str(view, "thread_ts", r->thread_ts);
	if (r->is_dm) {
		outbox_send(r->ctx->outbox, OUTBOX_POST_MESSAGE, view, NULL, NULL);
	} else {
		put_str(view, "user", r->user);
		outbox_send(r->ctx->outbox, OUTBOX_POST_EPHEMERAL, view, NULL, NULL);
	}
}

/* Where the command was asked: the channel (public) or the DM; slash commands in_channel. */
static void
reply_public(const struct req *r, cJSON *view)
{
	if (r->kind == DISPATCH_SLASH_COMMAND && r->response_url != NULL) {
		cJSON_AddStringToObject(view, "response_type", "in_channel");
		outbox_send(r->ctx->outbox, OUTBOX_RESPONSE_URL, view, secret_from_str(r->response_url), NULL);
		return;
	}
	put_str(view, "channel", r->channel);
	put_str(view, "thread_ts", r->thread_ts);
	outbox_send(r->ctx->outbox, OUTBOX_POST_MESSAGE, view, NULL, NULL);
}

static void
reply_text(const struct req *r, const char *mrkdwn)
{
	reply_private(r, views_text(mrkdwn));
}

/* ---- views that need the store ---- */

static const char *
app_title(const struct config *cfg, const char *app)
{
	const struct config_app *a = config_app_find(cfg, app);

	return a != NULL && a->title.v != NULL ? a->title.v : app;
}

/* A fresh login link for app (NULL on failure, logged). */
static char *
login_link(const struct req *r, const char *app, const void *resume, size_t resume_len)
{
	char link[OAUTH_LINK_MAX], err[256];

	if (oauth_begin(r->ctx->oauth, r->ctx->cfg, r->team, r->user, app, resume, resume_len, NULL, 0,
	    (int64_t)time(NULL), link, sizeof(link), err, sizeof(err)) != 0) {
		log_error("bot", "cannot start a login app=%s: %s", app, err);
		return NULL;
	}
	return xstrdup(link);
}

/* Does any recipe run as the user in this app? */
static bool
app_needs_personal(const struct config *cfg, const struct config_app *a)
{
	for (size_t i = 0; i < cfg->nrecipes; i++)
		if (cfg->recipes[i]->app.app == a && cfg->recipes[i]->verify_user_access.v)
			return true;
	return false;
}

static cJSON *
connections_view(const struct req *r, const char *notice)
{
	const struct config *cfg = r->ctx->cfg;
	struct records_filter f = { .team = r->team, .user = r->user };
	struct records_conn *list = NULL;
	struct views_conn *vc;
	struct views_missing *vm;
	size_t n = 0, nm = 0;
	char err[256];
	cJSON *view;

	if (records_conn_list(r->ctx->records, &f, &list, &n, err, sizeof(err)) != 0) {
		log_error("bot", "cannot list connections: %s", err);
		return views_text("Sorry — I could not read your connections just now. Please try again.");
	}
	vc = xcalloc(n + 1, sizeof(*vc));
	vm = xcalloc(cfg->napps + 1, sizeof(*vm));
	for (size_t i = 0; i < n; i++) {
		vc[i] = (struct views_conn){
			.app = list[i].app,
			.title = app_title(cfg, list[i].app),
			.account = list[i].account,
			.connected = list[i].created,
			.last_used = list[i].last_used,
			.expired = list[i].state == RECORDS_EXPIRED,
		};
	}
	for (size_t a = 0; a < cfg->napps; a++) {
		const struct config_app *app = cfg->apps[a];
		bool have = false;

		if (app->auth.v != CONFIG_AUTH_OAUTH2 || !app_needs_personal(cfg, app))
			continue;
		for (size_t i = 0; i < n && !have; i++)
			have = strcmp(list[i].app, app->name) == 0;
		if (have)
			continue;
		/* No link yet: the Connect button starts the login when clicked (no write per view). */
		vm[nm++] = (struct views_missing){ .app = app->name, .title = app->title.v };
	}
	view = views_connections(vc, n, vm, nm, notice, (int64_t)time(NULL));
	free(vm);
	free(vc);
	free(list);
	return view;
}

static bool
recipe_allowed_here(const struct config_recipe *rc, const struct req *r)
{
	bool ok_user = rc->allowed_users.n == 0, ok_chan = rc->allowed_channels.n == 0;

	for (size_t i = 0; i < rc->allowed_users.n && !ok_user; i++)
		ok_user = strcmp(rc->allowed_users.v[i], r->user) == 0;
	for (size_t i = 0; i < rc->allowed_channels.n && !ok_chan; i++)
		ok_chan = r->channel != NULL && strcmp(rc->allowed_channels.v[i], r->channel) == 0;
	return ok_user && ok_chan;
}

static cJSON *
help_view(const struct req *r)
{
	const struct config *cfg = r->ctx->cfg;
	struct views_help_item *items = xcalloc(cfg->nrecipes + 1, sizeof(*items));
	char **usages = xcalloc(cfg->nrecipes + 1, sizeof(*usages));
	size_t n = 0;
	cJSON *view;

	for (size_t i = 0; i < cfg->nrecipes; i++) {
		const struct config_recipe *rc = cfg->recipes[i];

		if (!recipe_allowed_here(rc, r))
			continue;
		usages[n] = cmdtext_usage(rc);
		items[n] = (struct views_help_item){
			.usage = usages[n],
			.description = rc->description.v ? rc->description.v : "",
			.personal_title = rc->verify_user_access.v ? rc->app.app->title.v : NULL,
		};
		n++;
	}
	view = views_help(items, n);
	for (size_t i = 0; i < n; i++)
		free(usages[i]);
	free(usages);
	free(items);
	return view;
}

/* ---- recipes ---- */

/* The app's error field, never its raw body: "CODE: message" or "message". */
static void
app_error_text(const char *body, size_t len, char *out, size_t size)
{
	cJSON *j = cJSON_ParseWithLength(body, len);
	const cJSON *o = cJSON_IsArray(j) ? cJSON_GetArrayItem(j, 0) : j;
	const char *code = NULL, *msg = NULL;
	const cJSON *e;

	out[0] = '\0';
	if (cJSON_IsObject(o)) {
		code = envelope_str(o, "errorCode");
		if (code == NULL)
			code = envelope_str(o, "code");
		msg = envelope_str(o, "message");
		e = cJSON_GetObjectItemCaseSensitive(o, "error");
		if (cJSON_IsString(e))
			code = code ? code : e->valuestring;
		else if (cJSON_IsObject(e) && msg == NULL)
			msg = envelope_str(e, "message");
		if (msg == NULL)
			msg = envelope_str(o, "error_description");
		e = cJSON_GetObjectItemCaseSensitive(o, "errors");
		if (msg == NULL && cJSON_IsArray(e)) {
			const cJSON *first = cJSON_GetArrayItem(e, 0);
			msg = cJSON_IsString(first) ? first->valuestring : envelope_str(first, "message");
		}
	}
	if (code && msg)
		snprintf(out, size, "%s: %s", code, msg);
	else if (code || msg)
		snprintf(out, size, "%s", code ? code : msg);
	cJSON_Delete(j);
}

struct click {
	const char *label;		/* the button clicked */
	const char *channel;		/* the message it was on */
	const char *message_ts;
	const char *message_text;
};

/* "Approve" -> "Approved by <@U1>" (a plain label otherwise: "Escalate: by <@U1>"). */
static void
decided_text(const char *label, const char *user, char *out, size_t size)
{
	size_t n = strlen(label);
	char *esc = cmdtext_mrkdwn_escape(label, n);

	if (n > 0 && (label[n - 1] == 'e' || label[n - 1] == 'E'))
		snprintf(out, size, "%sd by <@%s>", esc, user);
	else if (n > 1 && label[n - 1] != 'd' && label[n - 1] != 's' && label[n - 1] != 'y')
		snprintf(out, size, "%sed by <@%s>", esc, user);
	else
		snprintf(out, size, "%s — by <@%s>", esc, user);
	free(esc);
}

static void
audit_use(const struct req *r, const struct config_recipe *rc, long status)
{
	struct records_audit a = { .time = (int64_t)time(NULL), .action = RECORDS_AUDIT_USED };
	char err[256];

	snprintf(a.team, sizeof(a.team), "%s", r->team);
	snprintf(a.user, sizeof(a.user), "%s", r->user);
	snprintf(a.app, sizeof(a.app), "%s", rc->app.app->name);
	snprintf(a.detail, sizeof(a.detail), "recipe %s status %ld", rc->name, status);
	if (records_audit_append(r->ctx->records, &a, 1, err, sizeof(err)) != 0)
		log_warn("bot", "audit append failed: %s", err);
}

/* The stored command to resume after a login: {"kind":N,"payload":{…}}. */
static char *
resume_blob(const struct req *r, size_t *len)
{
	cJSON *o = cJSON_CreateObject();
	char *s;

	cJSON_AddNumberToObject(o, "kind", r->kind);
	cJSON_AddItemToObject(o, "payload", cJSON_Duplicate(r->payload, 1));
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	*len = s ? strlen(s) : 0;
	if (*len > OAUTH_RESUME_MAX) {	/* a huge payload: resume is best effort */
		free(s);
		return NULL;
	}
	return s;
}

/* A private Log in button; with `resume`, the command runs by itself after Connect. */
static void
ask_login(const struct req *r, const struct config_app *app, bool resume)
{
	size_t len = 0;
	char *blob = resume ? resume_blob(r, &len) : NULL;
	char *link = login_link(r, app->name, blob, len);

	if (link != NULL)
		reply_private(r, views_login(app->name, app->title.v, link));
	else
		reply_text(r, "Sorry — I could not start a login just now. Please try again.");
	free(link);
	free(blob);
}

static void
run_recipe(const struct req *r, const struct config_recipe *rc, const struct cmdtext_params *params,
    const struct click *click)
{
	const struct dispatch_ctx *ctx = r->ctx;
	const struct config_app *app = rc->app.app;
	struct oauth_access acc = { 0 };
	char *path = NULL, *url = NULL, *body = NULL, *reply = NULL;
	char err[512], msg[1024], *esc;
	struct http_resp resp = { 0 };
	int64_t now = (int64_t)time(NULL);
	cJSON *answer = NULL;
	int rc_access;

	if (!recipe_allowed_here(rc, r)) {
		reply_text(r, "Sorry — you can't run that command here.");
		return;
	}
	if (rc->verify_user_access.v)
		rc_access = oauth_access(ctx->oauth, ctx->cfg, ctx->http, r->team, r->user, app->name, now, &acc,
		    err, sizeof(err));
	else
		rc_access = oauth_shared_access(ctx->oauth, ctx->cfg, ctx->http, r->team, app->name, now, &acc,
		    err, sizeof(err));
	if (rc_access == OAUTH_NEEDS_LOGIN) {
		if (rc->verify_user_access.v) {
			ask_login(r, app, true);
		} else {
			snprintf(msg, sizeof(msg), "This command uses the shared %s connection, which is not set up yet: "
			    "an admin can run `workbot connect %s --shared`.", app->title.v, app->name);
			esc = cmdtext_mrkdwn_escape(msg, strlen(msg));
			reply_text(r, esc);
			free(esc);
		}
		goto out;
	}
	if (rc_access < 0) {
		log_warn("bot", "no usable token recipe=%s app=%s: %s", rc->name, app->name, err);
		snprintf(msg, sizeof(msg), "Sorry — I could not get a working %s login just now. Please try again.",
		    app->title.v);
		reply_text(r, msg);
		goto out;
	}
	if (render_path(rc->path.v, params, &path, err, sizeof(err)) != 0 ||
	    render_url_join(acc.api_url, path, &url, err, sizeof(err)) != 0 ||
	    (rc->body.v != NULL && render_body(rc->body.v, params, &body, err, sizeof(err)) != 0)) {
		esc = cmdtext_mrkdwn_escape(err, strlen(err));
		snprintf(msg, sizeof(msg), "I can't run that: %s", esc);
		free(esc);
		reply_text(r, msg);
		goto out;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		static const enum http_method methods[] = {
			[CONFIG_METHOD_GET] = HTTP_GET, [CONFIG_METHOD_POST] = HTTP_POST, [CONFIG_METHOD_PUT] = HTTP_PUT,
			[CONFIG_METHOD_PATCH] = HTTP_PATCH, [CONFIG_METHOD_DELETE] = HTTP_DELETE,
		};
		static const char *const headers[] = { "Accept: application/json", NULL };
		struct http_req hr = {
			.method = methods[rc->method.v],
			.url = url,
			.headers = headers,
			.content_type = body ? "application/json" : NULL,
			.body = body,
			.body_len = body ? strlen(body) : 0,
			.bearer = acc.token,
			.timeout_ms = APP_TIMEOUT_MS,
			.body_max = APP_BODY_MAX,
		};

		http_resp_clear(&resp);
		memset(&resp, 0, sizeof(resp));
		http_request(ctx->http, &hr, &resp);
		if (resp.status != 401 || acc.token == NULL || attempt == 1 || !rc->verify_user_access.v)
			break;
		/* Salesforce sends no expires_in: a 401 is how it says "refresh". Once. */
		{
			struct oauth_access fresh = { 0 };
			int a = oauth_refresh_after_401(ctx->oauth, ctx->cfg, ctx->http, r->team, r->user, app->name,
			    acc.token, now, &fresh, err, sizeof(err));

			if (a == OAUTH_NEEDS_LOGIN) {
				oauth_access_clear(&fresh);
				ask_login(r, app, true);
				goto out;
			}
			if (a != OAUTH_OK) {
				oauth_access_clear(&fresh);
				break;
			}
			oauth_access_clear(&acc);
			acc = fresh;
		}
	}
	audit_use(r, rc, resp.status);
	if (resp.status == 0) {
		esc = cmdtext_mrkdwn_escape(resp.error, strlen(resp.error));
		snprintf(msg, sizeof(msg), "I could not reach %s: %s", app->title.v, esc);
		free(esc);
		reply_text(r, msg);
		goto out;
	}
	if (resp.status < 200 || resp.status > 299) {
		char detail[ERROR_SHOWN_MAX + 8];

		app_error_text(resp.body, resp.body_len, detail, sizeof(detail));
		cmdtext_truncate(detail, ERROR_SHOWN_MAX);
		esc = cmdtext_mrkdwn_escape(detail, strlen(detail));
		snprintf(msg, sizeof(msg), "%s answered %ld%s%s", app->title.v, resp.status, *esc ? ": " : "", esc);
		free(esc);
		reply_text(r, msg);
		goto out;
	}
	answer = render_response_parse(resp.body, resp.body_len);
	if (rc->reply.v != NULL) {
		if (render_reply(rc->reply.v, params, answer, &reply, err, sizeof(err)) != 0)
			reply = xstrdup("Done.");
	} else {
		snprintf(msg, sizeof(msg), "Done: `%s` (%s answered %ld).", rc->command.v, app->title.v, resp.status);
		reply = xstrdup(msg);
	}
	{
		struct views_button *b = xcalloc(rc->buttons.n + 1, sizeof(*b));
		char **values = xcalloc(rc->buttons.n + 1, sizeof(*values));
		size_t nb = 0;
		cJSON *view;

		for (size_t i = 0; i < rc->buttons.n; i++) {
			if (render_button_value(&rc->buttons.v[i], params, answer, &values[nb], err, sizeof(err)) != 0) {
				log_warn("bot", "button left out recipe=%s: %s", rc->name, err);
				continue;
			}
			b[nb].label = rc->buttons.v[i].label;
			b[nb].value = values[nb];
			nb++;
		}
		view = views_reply(reply, b, nb);
		if (click != NULL)
			reply_private(r, view);	/* the clicker sees the result */
		else
			reply_public(r, view);
		for (size_t i = 0; i < nb; i++)
			free(values[i]);
		free(values);
		free(b);
	}
	if (click != NULL && click->channel != NULL && click->message_ts != NULL) {
		char done[512];
		cJSON *upd;

		decided_text(click->label, r->user, done, sizeof(done));
		upd = views_decided(click->message_text ? click->message_text : "", done);
		cJSON_AddStringToObject(upd, "channel", click->channel);
		cJSON_AddStringToObject(upd, "ts", click->message_ts);
		outbox_send(ctx->outbox, OUTBOX_UPDATE, upd, NULL, NULL);
	}
out:
	cJSON_Delete(answer);
	http_resp_clear(&resp);
	oauth_access_clear(&acc);
	free(reply);
	if (body != NULL)
		secret_wipe(body, strlen(body));
	free(body);
	free(url);
	free(path);
}

/* ---- text commands ---- */

static void
handle_text(const struct req *r, const char *raw)
{
	struct cmdtext_cmd cmd = { 0 };
	char *text = NULL, err[256], msg[1200];

	if (cmdtext_normalise(raw, &text, err, sizeof(err)) != 0) {
		reply_text(r, "That message is too long for me to read.");
		return;
	}
	if (cmdtext_parse(r->ctx->cfg, text, &cmd) != 0) {
		char *e = cmdtext_mrkdwn_escape(cmd.error ? cmd.error : "bad parameters",
		    strlen(cmd.error ? cmd.error : "bad parameters"));
		char *u = cmd.usage ? cmdtext_mrkdwn_escape(cmd.usage, strlen(cmd.usage)) : NULL;

		snprintf(msg, sizeof(msg), "%s%s%s%s", e, u ? "\nUsage: `" : "", u ? u : "", u ? "`" : "");
		reply_text(r, msg);
		free(e);
		free(u);
	} else {
		switch (cmd.kind) {
		case CMDTEXT_EMPTY:
		case CMDTEXT_HELP:
			reply_private(r, help_view(r));
			break;
		case CMDTEXT_CONNECTIONS:
			reply_private(r, connections_view(r, NULL));
			break;
		case CMDTEXT_RECIPE:
			run_recipe(r, cmd.recipe, &cmd.params, NULL);
			break;
		case CMDTEXT_UNKNOWN:
		default:
			reply_text(r, "I don't know that command — try `help`.");
			break;
		}
	}
	cmdtext_cmd_clear(&cmd);
	free(text);
}

/* Same organisation as the bot? Slack Connect guests get a refusal. */
static bool
same_team(const struct req *r)
{
	if (r->team != NULL && r->ctx->team_id != NULL && r->ctx->team_id[0] != '\0' &&
	    strcmp(r->team, r->ctx->team_id) == 0)
		return true;
	log_info("bot", "refused a request from another team team=%s", r->team ? r->team : "?");
	reply_text(r, "Sorry — I only work for members of this workspace's organisation.");
	return false;
}

static void
message_event(const struct dispatch_ctx *ctx, const cJSON *payload, enum dispatch_kind kind)
{
	const cJSON *ev = envelope_obj(payload, "event");
	const char *text = envelope_str(ev, "text");
	const char *team = envelope_str(ev, "user_team");
	struct req r = {
		.ctx = ctx,
		.kind = kind,
		.payload = payload,
		.user = envelope_str(ev, "user"),
		.channel = envelope_str(ev, "channel"),
		.thread_ts = envelope_str(ev, "thread_ts"),
		.is_dm = kind == DISPATCH_MESSAGE_IM,
	};
	char *stripped = NULL;

	if (team == NULL)
		team = envelope_str(ev, "team");
	r.team = team ? team : envelope_str(payload, "team_id");
	if (r.user == NULL || r.channel == NULL || text == NULL || !same_team(&r))
		return;
	if (kind == DISPATCH_APP_MENTION && cmdtext_strip_mention(text, ctx->bot_user_id, &stripped) >= 0 &&
	    stripped != NULL)
		text = stripped;
	handle_text(&r, text);
	free(stripped);
}

void
bot_message_im(const struct dispatch_ctx *ctx, const cJSON *payload)
{
	message_event(ctx, payload, DISPATCH_MESSAGE_IM);
}

void
bot_app_mention(const struct dispatch_ctx *ctx, const cJSON *payload)
{
	message_event(ctx, payload, DISPATCH_APP_MENTION);
}

void
bot_slash_command(const struct dispatch_ctx *ctx, const cJSON *payload)
{
	const char *channel = envelope_str(payload, "channel_id");
	struct req r = {
		.ctx = ctx,
		.kind = DISPATCH_SLASH_COMMAND,
		.payload = payload,
		.team = envelope_str(payload, "team_id"),
		.user = envelope_str(payload, "user_id"),
		.channel = channel,
		.is_dm = false,
		.response_url = envelope_str(payload, "response_url"),
	};
	const char *text = envelope_str(payload, "text");

	if (r.user == NULL || r.response_url == NULL || !same_team(&r))
		return;
	handle_text(&r, text ? text : "");
}

void
bot_block_actions(const struct dispatch_ctx *ctx, const cJSON *payload)
{
	const cJSON *user = envelope_obj(payload, "user");
	const cJSON *container = envelope_obj(payload, "container");
	const cJSON *actions = cJSON_GetObjectItemCaseSensitive(payload, "actions");
	const cJSON *action = cJSON_IsArray(actions) ? cJSON_GetArrayItem(actions, 0) : NULL;
	const char *action_id = envelope_str(action, "action_id");
	const char *value = envelope_str(action, "value");
	const char *channel = envelope_str(container, "channel_id");
	bool ephemeral = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(container, "is_ephemeral"));
	struct req r = {
		.ctx = ctx,
		.kind = DISPATCH_BLOCK_ACTIONS,
		.payload = payload,
		.team = envelope_str(user, "team_id"),
		.user = envelope_str(user, "id"),	/* the clicker: never from a button value */
		.channel = channel ? channel : envelope_str(envelope_obj(payload, "channel"), "id"),
		.is_dm = channel != NULL && channel[0] == 'D',
		.response_url = envelope_str(payload, "response_url"),
	};

	if (r.team == NULL)
		r.team = envelope_str(envelope_obj(payload, "team"), "id");
	if (action_id == NULL || r.user == NULL || strncmp(action_id, "wb_link:", 8) == 0)
		return;	/* url buttons (Log in, Connect) also send block_actions: nothing to do */
	if (!same_team(&r))
		return;
	if (strcmp(action_id, "wb_accounts") == 0) {
		reply_private(&r, connections_view(&r, NULL));
	} else if (strcmp(action_id, "wb_connect") == 0 && value != NULL) {
		/* Connect / Log in again: the same login a recipe starts, for the clicking user. */
		const struct config_app *app = config_app_find(ctx->cfg, value);

		if (app == NULL || app->auth.v != CONFIG_AUTH_OAUTH2)
			reply_text(&r, "Sorry — that app is no longer configured.");
		else
			ask_login(&r, app, false);
	} else if (strcmp(action_id, "wb_disconnect") == 0 && value != NULL) {
		struct oauth_disconnect_result res = { 0 };
		const char *title = app_title(ctx->cfg, value);
		char err[256], notice[600], *t = cmdtext_mrkdwn_escape(title, strlen(title));
		int d = oauth_disconnect(ctx->oauth, ctx->cfg, ctx->http, r.team, r.user, value,
		    RECORDS_AUDIT_DISCONNECTED, (int64_t)time(NULL), &res, err, sizeof(err));
		cJSON *view;

		if (d < 0) {
			log_error("bot", "disconnect failed app=%s: %s", value, err);
			snprintf(notice, sizeof(notice), "Sorry — I could not disconnect %s just now.", t);
		} else if (d == 0) {
			snprintf(notice, sizeof(notice), "You were not connected to %s.", t);
		} else if (res.revoked || config_app_find(ctx->cfg, value) == NULL ||
		    config_app_find(ctx->cfg, value)->revoke_url.v == NULL) {
			snprintf(notice, sizeof(notice), "Disconnected from %s.", t);
		} else {
			char *why = cmdtext_mrkdwn_escape(res.reason, strlen(res.reason));
			snprintf(notice, sizeof(notice), "Disconnected from %s, but it could not be revoked at %s: %s",
			    t, t, why);
			free(why);
		}
		free(t);
		view = connections_view(&r, notice);
		if (!ephemeral && channel != NULL && envelope_str(container, "message_ts") != NULL) {
			cJSON_AddStringToObject(view, "channel", channel);
			cJSON_AddStringToObject(view, "ts", envelope_str(container, "message_ts"));
			outbox_send(ctx->outbox, OUTBOX_UPDATE, view, NULL, NULL);
		} else if (r.response_url != NULL) {
			cJSON_AddBoolToObject(view, "replace_original", 1);
			outbox_send(ctx->outbox, OUTBOX_RESPONSE_URL, view, secret_from_str(r.response_url), NULL);
		} else {
			reply_private(&r, view);
		}
	} else if (strncmp(action_id, "wb_recipe:", 10) == 0 && value != NULL) {
		const struct config_recipe *rc = NULL;
		struct cmdtext_params params = { 0 };
		char err[256];
		struct click click = {
			.label = envelope_str(envelope_obj(action, "text"), "text"),
			.channel = channel,
			.message_ts = ephemeral ? NULL : envelope_str(container, "message_ts"),
			.message_text = envelope_str(envelope_obj(payload, "message"), "text"),
		};

		if (click.label == NULL)
			click.label = "Done";
		if (render_button_parse(ctx->cfg, value, &rc, &params, err, sizeof(err)) != 0) {
			log_warn("bot", "refused a button value: %s", err);
			reply_text(&r, "Sorry — that button is no longer valid.");
		} else {
			run_recipe(&r, rc, &params, &click);
		}
		cmdtext_params_clear(&params);
	} else {
		log_debug("bot", "ignored action action_id=%s", action_id);
	}
}
