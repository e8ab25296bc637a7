/*
 * envelope: parse one Socket Mode frame and say what it is.
 *
 * This is the first thing the event thread does with a frame, before the
 * ack, so it stays small: one cJSON parse (the buffer is not NUL-terminated
 * and must be wholly JSON: trailing bytes are refused), typed lookups, and
 * fixed-size copies of the two ids that outlive the tree's use on this
 * thread. Never logs; the caller logs once with the reason returned.
 */
#include <stdio.h>
#include <string.h>

#include "workbot/envelope.h"

static const struct {
	const char *name;
	enum envelope_type type;
} type_table[] = {
	{ "hello", ENVELOPE_HELLO },
	{ "disconnect", ENVELOPE_DISCONNECT },
	{ "events_api", ENVELOPE_EVENTS_API },
	{ "interactive", ENVELOPE_INTERACTIVE },
	{ "slash_commands", ENVELOPE_SLASH_COMMANDS },
};

const char *
envelope_type_label(enum envelope_type t)
{
	for (size_t i = 0; i < sizeof(type_table) / sizeof(type_table[0]); i++)
		if (type_table[i].type == t)
			return type_table[i].name;
	return "other";
}

const char *
envelope_str(const cJSON *obj, const char *key)
{
	const cJSON *item = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;

	return cJSON_IsString(item) ? item->valuestring : NULL;
}

const cJSON *
envelope_obj(const cJSON *obj, const char *key)
{
	const cJSON *item = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;

	return cJSON_IsObject(item) ? item : NULL;
}

static long
get_long(const cJSON *obj, const char *key, long dflt)
{
	const cJSON *item = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;

	if (!cJSON_IsNumber(item) || item->valuedouble < -1e15 || item->valuedouble > 1e15)
		return dflt;
	return (long)item->valuedouble;
}

/* Copy `s` into dst if it fits, without control bytes. 0 ok, -1 not. */
static int
copy_id(char *dst, size_t size, const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= size)
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return -1;
	memcpy(dst, s, n + 1);
	return 0;
}

static void
set_dedupe_key(struct envelope *env)
{
	const cJSON *p = env->payload;
	const char *a = NULL, *b = NULL, *c = NULL;
	int n = -1;

	switch (env->type) {
	case ENVELOPE_EVENTS_API:
		if ((a = envelope_str(p, "event_id")) != NULL)
			n = snprintf(env->dedupe_key, sizeof(env->dedupe_key), "ev:%s", a);
		break;
	case ENVELOPE_INTERACTIVE: {
		const cJSON *actions = p ? cJSON_GetObjectItemCaseSensitive(p, "actions") : NULL;
		const cJSON *first = cJSON_IsArray(actions) ? cJSON_GetArrayItem(actions, 0) : NULL;

		a = envelope_str(envelope_obj(p, "user"), "id");
		b = envelope_str(first, "action_ts");
		c = envelope_str(first, "action_id");
		if (a && b && c)
			n = snprintf(env->dedupe_key, sizeof(env->dedupe_key), "ia:%s:%s:%s", a, b, c);
		break;
	}
	case ENVELOPE_SLASH_COMMANDS:
		if ((a = envelope_str(p, "trigger_id")) != NULL)
			n = snprintf(env->dedupe_key, sizeof(env->dedupe_key), "sc:%s", a);
		break;
	default:
		break;
	}
	/* Too long or absent: no key, so the work runs (better twice than never). */
	if (n < 0 || (size_t)n >= sizeof(env->dedupe_key))
		env->dedupe_key[0] = '\0';
}

int
envelope_parse(const char *buf, size_t len, struct envelope *env, const char **why)
{
	const char *end = NULL, *s;
	const cJSON *item;

	memset(env, 0, sizeof(*env));
	env->num_connections = env->approximate_connection_time = -1;
	env->type_name = env->disconnect_reason = "";

	env->root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
	if (env->root == NULL) {
		*why = "not JSON";
		return -1;
	}
	while (end != NULL && end < buf + len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
		end++;
	if (end != buf + len) {
		*why = "bytes after the JSON value";
		goto bad;
	}
	if (!cJSON_IsObject(env->root)) {
		*why = "not a JSON object";
		goto bad;
	}
	if ((s = envelope_str(env->root, "type")) == NULL) {
		*why = "no type";
		goto bad;
	}
	env->type_name = s;
	env->type = ENVELOPE_OTHER;
	for (size_t i = 0; i < sizeof(type_table) / sizeof(type_table[0]); i++)
		if (strcmp(s, type_table[i].name) == 0)
			env->type = type_table[i].type;

	item = cJSON_GetObjectItemCaseSensitive(env->root, "envelope_id");
	if (item != NULL) {
		if (!cJSON_IsString(item) || copy_id(env->envelope_id, sizeof(env->envelope_id), item->valuestring) != 0) {
			*why = "envelope_id is not a short string";
			goto bad;
		}
	}
	env->payload = envelope_obj(env->root, "payload");
	env->retry_attempt = (int)get_long(env->root, "retry_attempt", 0);

	switch (env->type) {
	case ENVELOPE_HELLO:
		env->num_connections = get_long(env->root, "num_connections", -1);
		env->approximate_connection_time = get_long(envelope_obj(env->root, "debug_info"),
		    "approximate_connection_time", -1);
		break;
	case ENVELOPE_DISCONNECT:
		if ((s = envelope_str(env->root, "reason")) != NULL)
			env->disconnect_reason = s;
		break;
	default:
		set_dedupe_key(env);
		break;
	}
	env->frame = buf;
	env->frame_len = len;
	return 0;
bad:
	cJSON_Delete(env->root);
	env->root = NULL;
	return -1;
}

void
envelope_free(struct envelope *env)
{
	if (env == NULL)
		return;
	cJSON_Delete(env->root);
	env->root = NULL;
	env->payload = NULL;
}

size_t
envelope_ack(const char *envelope_id, char *buf, size_t size)
{
	static const char head[] = "{\"envelope_id\":\"", tail[] = "\"}";
	size_t o = 0;

	if (size < sizeof(head) + sizeof(tail))
		return 0;
	memcpy(buf, head, sizeof(head) - 1);
	o = sizeof(head) - 1;
	for (const unsigned char *p = (const unsigned char *)envelope_id; *p; p++) {
		/* Ids are checked free of control bytes; escape what JSON needs. */
		if (*p == '"' || *p == '\\') {
			if (o + 2 >= size)
				return 0;
			buf[o++] = '\\';
		}
		if (o + 1 >= size)
			return 0;
		buf[o++] = (char)*p;
	}
	if (o + sizeof(tail) > size)
		return 0;
	memcpy(buf + o, tail, sizeof(tail));	/* with the NUL */
	return o + sizeof(tail) - 1;
}
