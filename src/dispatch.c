/*
 * dispatch: classify envelopes on the event thread, run their handlers on
 * workers.
 *
 * Classification is deliberately conservative about what counts as a
 * command: in a DM only plain user messages (no subtype: edits, deletions,
 * joins and bot posts all carry one; no bot_id; not from the bot itself);
 * everything else is acked and dropped without a job, so it costs the
 * event thread one parse and nothing more.
 */
#include <stdatomic.h>
#include <string.h>

#include "workbot/bot.h"
#include "workbot/dispatch.h"
#include "workbot/envelope.h"
#include "workbot/log.h"

static const char *const kind_names[DISPATCH_KINDS] = {
	[DISPATCH_NONE] = "none",
	[DISPATCH_MESSAGE_IM] = "message_im",
	[DISPATCH_APP_MENTION] = "app_mention",
	[DISPATCH_BLOCK_ACTIONS] = "block_actions",
	[DISPATCH_SLASH_COMMAND] = "slash_command",
};

/* One handler per kind (bot.c); NULL: nothing runs. */
static const dispatch_handler_fn handlers[DISPATCH_KINDS] = {
	[DISPATCH_NONE] = NULL,
	[DISPATCH_MESSAGE_IM] = bot_message_im,
	[DISPATCH_APP_MENTION] = bot_app_mention,
	[DISPATCH_BLOCK_ACTIONS] = bot_block_actions,
	[DISPATCH_SLASH_COMMAND] = bot_slash_command,
};

static atomic_uint_fast64_t runs[DISPATCH_KINDS];
static atomic_uint_fast64_t unhandled;

const char *
dispatch_kind_name(enum dispatch_kind kind)
{
	return (unsigned)kind < DISPATCH_KINDS ? kind_names[kind] : "other";
}

static enum dispatch_kind
classify_event(const cJSON *payload, const char *bot_user_id, const char **why)
{
	const cJSON *ev = envelope_obj(payload, "event");
	const char *type, *user;

	if (ev == NULL) {
		*why = "no inner event";
		return DISPATCH_NONE;
	}
	type = envelope_str(ev, "type");
	user = envelope_str(ev, "user");
	if (type == NULL) {
		*why = "event without type";
		return DISPATCH_NONE;
	}
	if (user == NULL || cJSON_GetObjectItemCaseSensitive(ev, "bot_id") != NULL ||
	    (bot_user_id[0] != '\0' && strcmp(user, bot_user_id) == 0)) {
		*why = "not from a person";
		return DISPATCH_NONE;
	}
	if (strcmp(type, "app_mention") == 0)
		return DISPATCH_APP_MENTION;
	if (strcmp(type, "message") == 0) {
		const char *ct = envelope_str(ev, "channel_type");

		if (ct == NULL || strcmp(ct, "im") != 0) {
			*why = "message outside a DM";
			return DISPATCH_NONE;
		}
		if (cJSON_GetObjectItemCaseSensitive(ev, "subtype") != NULL) {
			*why = "message subtype (edit, deletion, bot post ...)";
			return DISPATCH_NONE;
		}
		if (envelope_str(ev, "text") == NULL) {
			*why = "message without text";
			return DISPATCH_NONE;
		}
		return DISPATCH_MESSAGE_IM;
	}
	*why = "event type with no command";
	return DISPATCH_NONE;
}

enum dispatch_kind
dispatch_classify(const struct envelope *env, const char *bot_user_id, const char **why)
{
	const char *t;

	*why = "";
	if (env->payload == NULL) {
		*why = "no payload object";
		return DISPATCH_NONE;
	}
	switch (env->type) {
	case ENVELOPE_EVENTS_API:
		return classify_event(env->payload, bot_user_id ? bot_user_id : "", why);
	case ENVELOPE_INTERACTIVE:
		t = envelope_str(env->payload, "type");
		if (t != NULL && strcmp(t, "block_actions") == 0)
			return DISPATCH_BLOCK_ACTIONS;
		*why = "interactive type with no action";
		return DISPATCH_NONE;
	case ENVELOPE_SLASH_COMMANDS:
		return DISPATCH_SLASH_COMMAND;
	default:
		*why = "envelope type with no work";
		return DISPATCH_NONE;
	}
}

void
dispatch_run(const struct dispatch_ctx *ctx, enum dispatch_kind kind, const cJSON *payload)
{
	if ((unsigned)kind >= DISPATCH_KINDS || kind == DISPATCH_NONE)
		return;
	atomic_fetch_add(&runs[kind], 1);
	if (handlers[kind] == NULL) {
		atomic_fetch_add(&unhandled, 1);
		log_debug("dispatch", "no handler kind=%s", kind_names[kind]);
		return;
	}
	handlers[kind](ctx, payload);
}

uint64_t
dispatch_count(enum dispatch_kind kind)
{
	return (unsigned)kind < DISPATCH_KINDS ? atomic_load(&runs[kind]) : 0;
}

uint64_t
dispatch_unhandled(void)
{
	return atomic_load(&unhandled);
}
