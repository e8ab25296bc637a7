/* Unit tests for log: line shape, levels, quoting, truncation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "workbot/log.h"
#include "workbot/secret.h"

static int pipefd[2];

static int
setup(void **state)
{
	(void)state;
	if (pipe(pipefd) != 0)
		return -1;
	log_set_fd(pipefd[1]);
	log_set_level(LOG_INFO);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	log_set_fd(-1);
	close(pipefd[0]);
	close(pipefd[1]);
	return 0;
}

static size_t
drain(char *buf, size_t size)
{
	ssize_t n;

	close(pipefd[1]);
	n = read(pipefd[0], buf, size - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	close(pipefd[0]);
	assert_int_equal(pipe(pipefd), 0);
	log_set_fd(pipefd[1]);
	return (size_t)n;
}

static void
test_line_shape(void **state)
{
	char buf[4096];
	(void)state;

	log_info("store", "opened path=%s", "/var/lib/workbot");
	drain(buf, sizeof(buf));
	/* 2026-12-06T17:10:42.123Z info store opened path=/var/lib/workbot\n */
	assert_int_equal(strlen(buf), 24 + 1 + strlen("info store opened path=/var/lib/workbot") + 1);
	assert_int_equal(buf[10], 'T');
	assert_int_equal(buf[23], 'Z');
	assert_string_equal(buf + 25, "info store opened path=/var/lib/workbot\n");
}

static void
test_levels(void **state)
{
	char buf[4096];
	enum log_level l;
	(void)state;

	log_set_level(LOG_WARN);
	log_info("x", "hidden");
	log_debug("x", "hidden");
	log_warn("x", "shown");
	drain(buf, sizeof(buf));
	assert_null(strstr(buf, "hidden"));
	assert_non_null(strstr(buf, "warn x shown"));
	log_set_level(LOG_INFO);

	assert_int_equal(log_level_parse("DEBUG", &l), 0);
	assert_int_equal(l, LOG_DEBUG);
	assert_int_equal(log_level_parse("error", &l), 0);
	assert_int_equal(l, LOG_ERROR);
	assert_int_equal(log_level_parse("verbose", &l), -1);
}

static void
test_one_line_and_truncation(void **state)
{
	char buf[8192];
	char big[5000];
	(void)state;

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_error("x", "multi\nline value=%s", big);
	drain(buf, sizeof(buf));
	assert_int_equal(strchr(buf, '\n') - buf, (ptrdiff_t)strlen(buf) - 1);
	assert_true(strlen(buf) <= 2048);
	assert_non_null(strstr(buf, "...\n"));
}

static void
test_quote(void **state)
{
	char q[64];
	(void)state;

	assert_string_equal(log_quote(q, sizeof(q), "plain"), "plain");
	assert_string_equal(log_quote(q, sizeof(q), "two words"), "\"two words\"");
	assert_string_equal(log_quote(q, sizeof(q), "a\"b\\c\n"), "\"a\\\"b\\\\c\\x0a\"");
	assert_string_equal(log_quote(q, sizeof(q), ""), "\"\"");
	assert_string_equal(log_quote(q, 6, "hello world"), "\"hel\"");
}

static void
test_secret(void **state)
{
	struct secret *a = secret_from_str("xoxb-1"), *b = secret_from_str("xoxb-1"), *c = secret_from_str("xoxb-2");
	(void)state;

	assert_int_equal(secret_len(a), 6);
	assert_string_equal(secret_reveal(a), "xoxb-1");
	assert_true(secret_equal(a, b));
	assert_false(secret_equal(a, c));
	assert_false(secret_equal(a, NULL));
	secret_free(a);
	secret_free(b);
	secret_free(c);
	secret_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_line_shape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_line_and_truncation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quote, setup, teardown),
		cmocka_unit_test(test_secret),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
