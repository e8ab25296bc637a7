/* Unit tests for loop: posts from many threads all run once, in order per
 * thread, on the loop thread; signals become on_reload / on_stop calls. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "workbot/loop.h"

#define THREADS 4
#define POSTS 20000

struct state {
	struct loop *loop;
	pthread_t loop_thread;
	long count;
	long last[THREADS];
	int order_ok;
	int reloads, stops;
};

struct item {
	struct state *st;
	int thread;
	long seq;
};

static struct state S;
static struct item items[THREADS][POSTS];

static void
on_item(void *arg)
{
	struct item *it = arg;

	if (!pthread_equal(pthread_self(), S.loop_thread))
		S.order_ok = 0;
	if (it->seq != it->st->last[it->thread] + 1)
		S.order_ok = 0;
	it->st->last[it->thread] = it->seq;
	if (++S.count == THREADS * POSTS)
		loop_quit(S.loop);
}

static void *
poster(void *arg)
{
	int t = (int)(intptr_t)arg;

	for (long i = 0; i < POSTS; i++) {
		items[t][i] = (struct item){ &S, t, i };
		loop_post(S.loop, on_item, &items[t][i]);
	}
	return NULL;
}

static void
test_posts(void **state)
{
	struct loop_opts o = { 0 };
	pthread_t th[THREADS];
	char err[256];
	(void)state;

	S.order_ok = 1;
	for (int t = 0; t < THREADS; t++)
		S.last[t] = -1;
	S.loop = loop_new(&o, err, sizeof(err));
	assert_non_null(S.loop);
	S.loop_thread = pthread_self();
	for (int t = 0; t < THREADS; t++)
		pthread_create(&th[t], NULL, poster, (void *)(intptr_t)t);
	assert_int_equal(loop_run(S.loop), 0);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	assert_int_equal(S.count, THREADS * POSTS);
	assert_true(S.order_ok);
	loop_free(S.loop);
}

static void
on_reload(void *arg)
{
	(void)arg;
	S.reloads++;
	kill(getpid(), SIGTERM);
}

static void
on_stop(void *arg, int signo)
{
	(void)arg;
	assert_int_equal(signo, SIGTERM);
	S.stops++;
	loop_quit(S.loop);
}

static void
test_signals(void **state)
{
	struct loop_opts o = { .on_reload = on_reload, .on_stop = on_stop };
	char err[256];
	(void)state;

	S.loop = loop_new(&o, err, sizeof(err));
	assert_non_null(S.loop);
	kill(getpid(), SIGHUP);
	assert_int_equal(loop_run(S.loop), 0);
	assert_int_equal(S.reloads, 1);
	assert_int_equal(S.stops, 1);
	loop_free(S.loop);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_posts),
		cmocka_unit_test(test_signals),
	};
	loop_block_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
