/* Unit tests for envelope (Socket Mode frame parsing) and dedupe (the in-memory set). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "workbot/dedupe.h"
#include "workbot/envelope.h"

static char *
load(const char *name, size_t *len)
{
	const char *dir = getenv("WORKBOT_TEST_DATA");
	char path[1024];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/envelopes/%s", dir ? dir : "tests/data", name);
	f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	/* Not NUL-terminated on purpose, like a frame: parse must not need it. */
	buf = malloc((size_t)n);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void
parse_file(const char *name, struct envelope *env)
{
	const char *why = NULL;
	size_t len;
	char *buf = load(name, &len);

	assert_int_equal(envelope_parse(buf, len, env, &why), 0);
	free(buf);
}

static void
test_hello(void **state)
{
	struct envelope env;
	(void)state;

	parse_file("hello.json", &env);
	assert_int_equal(env.type, ENVELOPE_HELLO);
	assert_string_equal(env.envelope_id, "");
	assert_int_equal(env.num_connections, 2);
	assert_int_equal(env.approximate_connection_time, 18060);
	envelope_free(&env);
}

static void
test_events(void **state)
{
	struct envelope env;
	(void)state;

	parse_file("message_im.json", &env);
	assert_int_equal(env.type, ENVELOPE_EVENTS_API);
	assert_string_equal(env.envelope_id, "4ef4e7c2-8a8a-4ca1-9a8f-3bd2c1b0a001");
	assert_string_equal(env.dedupe_key, "ev:Ev0001");
	assert_int_equal(env.retry_attempt, 0);
	assert_string_equal(envelope_str(envelope_obj(env.payload, "event"), "channel_type"), "im");
	envelope_free(&env);

	parse_file("app_mention.json", &env);
	assert_string_equal(env.dedupe_key, "ev:Ev0002");
	assert_int_equal(env.retry_attempt, 1);
	envelope_free(&env);

	/* No inner event: fine, and still has its event id (none here: no dedupe key). */
	parse_file("app_rate_limited.json", &env);
	assert_int_equal(env.type, ENVELOPE_EVENTS_API);
	assert_null(envelope_obj(env.payload, "event"));
	assert_string_equal(env.dedupe_key, "");
	envelope_free(&env);
}

static void
test_interactive_and_slash(void **state)
{
	struct envelope env;
	(void)state;

	parse_file("block_actions.json", &env);
	assert_int_equal(env.type, ENVELOPE_INTERACTIVE);
	assert_string_equal(env.dedupe_key, "ia:U0003:1733500003.123456:wb_recipe_0");
	envelope_free(&env);

	parse_file("slash_command.json", &env);
	assert_int_equal(env.type, ENVELOPE_SLASH_COMMANDS);
	assert_string_equal(env.dedupe_key, "sc:456.789.def");
	envelope_free(&env);

	parse_file("disconnect_warning.json", &env);
	assert_int_equal(env.type, ENVELOPE_DISCONNECT);
	assert_string_equal(env.disconnect_reason, "warning");
	envelope_free(&env);
}

static void
test_malformed(void **state)
{
	static const char *const bad[] = {
		"", "not json", "[1,2]", "\"str\"", "{}", "{\"type\":5}",
		"{\"type\":\"events_api\",\"envelope_id\":7}",
		"{\"type\":\"events_api\",\"envelope_id\":\"\"}",
		"{\"type\":\"events_api\",\"envelope_id\":\"a\\nb\"}",
		"{\"type\":\"hello\"} trailing",
		"{\"type\":\"hello\"",
	};
	struct envelope env;
	const char *why;
	char *deep;
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_int_equal(envelope_parse(bad[i], strlen(bad[i]), &env, &why), -1);
		assert_non_null(why);
		assert_null(env.root);
	}
	/* Over-long envelope_id. */
	deep = malloc(4096);
	if (deep == NULL)
		abort();
	snprintf(deep, 4096, "{\"type\":\"events_api\",\"envelope_id\":\"%0300d\"}", 1);
	assert_int_equal(envelope_parse(deep, strlen(deep), &env, &why), -1);
	/* Nesting bomb: refused by cJSON's limit, not a crash. */
	memset(deep, '[', 3000);
	assert_int_equal(envelope_parse(deep, 3000, &env, &why), -1);
	free(deep);

	/* Unknown type: parsed, typed OTHER, id kept so it can be acked. */
	deep = malloc(256);
	if (deep == NULL)
		abort();
	snprintf(deep, 256, "{\"type\":\"new_thing\",\"envelope_id\":\"e1\"} ");
	assert_int_equal(envelope_parse(deep, strlen(deep), &env, &why), 0);
	assert_int_equal(env.type, ENVELOPE_OTHER);
	assert_string_equal(env.envelope_id, "e1");
	envelope_free(&env);
	/* payload that is not an object */
	snprintf(deep, 256, "{\"type\":\"events_api\",\"envelope_id\":\"e2\",\"payload\":\"x\"}");
	assert_int_equal(envelope_parse(deep, strlen(deep), &env, &why), 0);
	assert_null(env.payload);
	assert_string_equal(env.dedupe_key, "");
	envelope_free(&env);
	free(deep);
}

static void
test_ack(void **state)
{
	char buf[64];
	(void)state;

	assert_int_equal(envelope_ack("abc-123", buf, sizeof(buf)), strlen("{\"envelope_id\":\"abc-123\"}"));
	assert_string_equal(buf, "{\"envelope_id\":\"abc-123\"}");
	envelope_ack("a\"b\\c", buf, sizeof(buf));
	assert_string_equal(buf, "{\"envelope_id\":\"a\\\"b\\\\c\"}");
	assert_int_equal(envelope_ack("0123456789012345678901234567890123456789012345678901234567", buf, sizeof(buf)), 0);
}

static void
test_dedupe_window_and_cap(void **state)
{
	struct dedupe *d = dedupe_new(1000, 3600);
	char key[32];
	(void)state;

	assert_int_equal(dedupe_seen(d, "ev:1", 100), 0);
	dedupe_mark(d, "ev:1", 100);
	assert_int_equal(dedupe_seen(d, "ev:1", 101), 1);
	assert_int_equal(dedupe_seen(d, "ev:2", 101), 0);
	assert_int_equal(dedupe_seen(d, "ev:1", 100 + 3600), 1);
	/* Past the window: forgotten. */
	assert_int_equal(dedupe_seen(d, "ev:1", 100 + 3601), 0);
	assert_int_equal(dedupe_count(d), 0);

	/* Cap: 2,500 marks keep the newest 1,000 (growing from the small start). */
	for (int i = 0; i < 2500; i++) {
		snprintf(key, sizeof(key), "ev:%d", i);
		dedupe_mark(d, key, 5000);
	}
	assert_int_equal(dedupe_count(d), 1000);
	for (int i = 0; i < 2500; i++) {
		snprintf(key, sizeof(key), "ev:%d", i);
		assert_int_equal(dedupe_seen(d, key, 5000), i >= 1500);
	}
	dedupe_free(d);
	dedupe_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_interactive_and_slash),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_ack),
		cmocka_unit_test(test_dedupe_window_and_cap),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
