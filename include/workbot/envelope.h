/*
 * envelope: one Socket Mode frame, parsed and checked.
 *
 * The event thread parses every inbound text frame here before anything
 * else, so this file is on the ack path: one cJSON parse, a few lookups, no
 * allocation beyond the tree, no logging. It says what the frame is (hello,
 * disconnect, an envelope and its type), what to ack (`envelope_id`), and
 * the stable id used to run a piece of work once (`dedupe_key`):
 *
 *   events_api      "ev:" + payload.event_id
 *   interactive     "ia:" + user.id + ":" + actions[0].action_ts + ":" + actions[0].action_id
 *   slash_commands  "sc:" + payload.trigger_id
 *
 * Everything in the frame is hostile: types are checked, sizes bounded,
 * and a payload without an inner `event` (app_rate_limited) is fine.
 * Any thread may call these functions; an envelope belongs to one thread.
 */
#ifndef WORKBOT_ENVELOPE_H
#define WORKBOT_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

enum envelope_type {
	ENVELOPE_HELLO,
	ENVELOPE_DISCONNECT,
	ENVELOPE_EVENTS_API,
	ENVELOPE_INTERACTIVE,
	ENVELOPE_SLASH_COMMANDS,
	ENVELOPE_OTHER,		/* a type we do not know: acked if it has an id, else ignored */
	ENVELOPE_TYPE_COUNT
};

#define ENVELOPE_ID_MAX		128	/* envelope_id bytes (Slack's are ~36) */
#define ENVELOPE_DEDUPE_MAX	320

struct envelope {
	enum envelope_type type;
	cJSON *root;			/* owned: envelope_free() */
	const cJSON *payload;		/* root.payload when it is an object, else NULL */
	char envelope_id[ENVELOPE_ID_MAX + 1];	/* "" when absent */
	char dedupe_key[ENVELOPE_DEDUPE_MAX + 1];	/* "" when there is none */
	int retry_attempt;		/* events_api; 0 otherwise */
	const char *type_name;		/* as sent, for metrics and logs ("" if absent) */
	const char *disconnect_reason;	/* disconnect: the reason ("" if absent) */
	long num_connections;		/* hello; -1 when absent */
	long approximate_connection_time;	/* hello; -1 when absent */
	const char *frame;		/* the bytes parsed: the caller's buffer, valid while it is */
	size_t frame_len;
};

/*
 * Parse `len` bytes (not NUL-terminated). 0 with *out filled (free it with
 * envelope_free), or -1 with *why set to a static reason (not JSON, not an
 * object, no type, envelope_id too long or not a string ...).
 */
int envelope_parse(const char *buf, size_t len, struct envelope *out, const char **why);
void envelope_free(struct envelope *env);

/* "hello", "events_api" ... for metrics labels. */
const char *envelope_type_label(enum envelope_type t);

/*
 * Write the ack frame `{"envelope_id":"..."}` into buf (JSON-escaped).
 * Returns its length, or 0 when it does not fit.
 */
size_t envelope_ack(const char *envelope_id, char *buf, size_t size);

/* Small typed lookups on a cJSON object: NULL / the default when absent or mistyped. */
const char *envelope_str(const cJSON *obj, const char *key);
const cJSON *envelope_obj(const cJSON *obj, const char *key);

#endif
