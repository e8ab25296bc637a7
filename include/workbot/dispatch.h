/*
 * dispatch: which envelopes run work, and the table of handlers that run it.
 *
 * dispatch_classify() runs on the event thread, before the ack: it decides
 * from the parsed envelope alone (no I/O) whether there is anything to do —
 * a DM to the bot, a mention, a button click, a slash command — or whether
 * the envelope is acked and dropped there (other events, the bot's own
 * messages, edits, app_rate_limited). dispatch_run() runs on a worker with
 * the payload the event thread handed over, through one table of handlers
 * indexed by kind. A kind whose handler is not there yet is counted and
 * gets no reply.
 */
#ifndef WORKBOT_DISPATCH_H
#define WORKBOT_DISPATCH_H

#include <stdint.h>

#include <cjson/cJSON.h>

struct envelope;
struct http_client;
struct slack_api;
struct records;
struct config;
struct oauth;
struct outbox;

enum dispatch_kind {
	DISPATCH_NONE = 0,		/* ack and drop */
	DISPATCH_MESSAGE_IM,		/* events_api message in a DM with the bot */
	DISPATCH_APP_MENTION,		/* events_api app_mention */
	DISPATCH_BLOCK_ACTIONS,		/* interactive block_actions */
	DISPATCH_SLASH_COMMAND,		/* slash_commands */
	DISPATCH_KINDS
};

const char *dispatch_kind_name(enum dispatch_kind kind);

/*
 * Event thread. `bot_user_id` is auth.test's user id ("" if unknown).
 * Returns the kind, or DISPATCH_NONE with *why (static text) saying why
 * nothing runs.
 */
enum dispatch_kind dispatch_classify(const struct envelope *env, const char *bot_user_id,
    const char **why);

/* What a handler may use on its worker. */
struct dispatch_ctx {
	struct http_client *http;	/* this worker's client */
	struct slack_api *api;
	struct records *records;
	struct outbox *outbox;		/* replies to Slack, retried off-worker */
	struct oauth *oauth;		/* personal and shared connections */
	const struct config *cfg;	/* held for the job's life */
	const char *bot_user_id;
	const char *team_id;		/* the installing team */
};

typedef void (*dispatch_handler_fn)(const struct dispatch_ctx *ctx, const cJSON *payload);

/* Worker thread: run the handler for `kind` on `payload` (the envelope's payload object). */
void dispatch_run(const struct dispatch_ctx *ctx, enum dispatch_kind kind, const cJSON *payload);

/* Runs per kind so far, and runs that found no handler (for tests and /metrics). */
uint64_t dispatch_count(enum dispatch_kind kind);
uint64_t dispatch_unhandled(void);

#endif
