/* Unit tests for jobq: bounds, lanes, delayed jobs, stop and cancel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "workbot/jobq.h"

/* A gate jobs can block on, opened by the test; never waits over 5 s. */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool open;
};

static struct gate gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false };

static void
gate_reset(void)
{
	pthread_mutex_lock(&gate.lock);
	gate.open = false;
	pthread_mutex_unlock(&gate.lock);
}

static void
gate_open(void)
{
	pthread_mutex_lock(&gate.lock);
	gate.open = true;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
}

static void
gate_wait(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&gate.lock);
	while (!gate.open)
		if (pthread_cond_timedwait(&gate.cond, &gate.lock, &ts) != 0)
			break;
	pthread_mutex_unlock(&gate.lock);
}

static atomic_int ran, cancelled, order_n;
static int order[16];

struct tjob {
	struct job job;
	int id;
	bool block;		/* wait on the gate */
	unsigned sleep_ms;	/* or sleep this long */
	uint64_t not_before;	/* for delayed jobs: checked when run */
	uint64_t *ran_at;	/* where to record when it ran, or NULL */
	void *expect_worker;	/* non-NULL: the worker state it must get */
};

static void
tjob_run(struct job *job, void *worker)
{
	struct tjob *t = (struct tjob *)((char *)job - offsetof(struct tjob, job));
	uint64_t now = jobq_now_ms();
	int slot;

	if (t->not_before)
		assert_true(now >= t->not_before);
	if (t->ran_at)
		*t->ran_at = now;
	if (t->expect_worker)
		assert_ptr_equal(worker, t->expect_worker);
	if (t->block)
		gate_wait();
	if (t->sleep_ms)
		usleep(t->sleep_ms * 1000u);
	slot = atomic_fetch_add(&order_n, 1);
	if (slot < 16)
		order[slot] = t->id;
	atomic_fetch_add(&ran, 1);
	free(t);
}

static void
tjob_cancel(struct job *job)
{
	struct tjob *t = (struct tjob *)((char *)job - offsetof(struct tjob, job));

	atomic_fetch_add(&cancelled, 1);
	free(t);
}

static struct tjob *
tjob_new(enum jobq_lane lane, int id)
{
	struct tjob *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->job.run = tjob_run;
	t->job.cancel = tjob_cancel;
	t->job.lane = lane;
	t->id = id;
	return t;
}

/* Bounded polling in the test only: the module itself never polls. */
static bool
wait_for_int(atomic_int *v, int want, unsigned timeout_ms)
{
	uint64_t end = jobq_now_ms() + timeout_ms;

	while (atomic_load(v) < want) {
		if (jobq_now_ms() > end)
			return false;
		usleep(1000);
	}
	return true;
}

static bool
wait_running(struct jobq *q, uint64_t want, unsigned timeout_ms)
{
	uint64_t end = jobq_now_ms() + timeout_ms;
	struct jobq_stats st;

	for (;;) {
		jobq_stats(q, &st);
		if (st.running >= want)
			return true;
		if (jobq_now_ms() > end)
			return false;
		usleep(1000);
	}
}

static int
reset(void **state)
{
	(void)state;
	atomic_store(&ran, 0);
	atomic_store(&cancelled, 0);
	atomic_store(&order_n, 0);
	memset(order, 0, sizeof(order));
	gate_reset();
	return 0;
}

static struct jobq *
make(unsigned workers, size_t capacity, size_t delayed)
{
	struct jobq_config cfg = {
		.workers = workers,
		.capacity = capacity,
		.delayed_capacity = delayed,
	};
	struct jobq *q = jobq_new(&cfg);

	assert_non_null(q);
	return q;
}

static void
test_runs_jobs(void **state)
{
	struct jobq *q = make(4, 200, 8);
	struct jobq_stats st;
	(void)state;

	for (int i = 0; i < 100; i++)
		assert_int_equal(jobq_push(q, &tjob_new(JOBQ_GENERAL, i)->job), 0);
	assert_true(wait_for_int(&ran, 100, 5000));
	jobq_stats(q, &st);
	assert_int_equal(st.done, 100);
	assert_int_equal(st.queued, 0);
	assert_int_equal(st.rejected, 0);
	jobq_free(q);
	assert_int_equal(atomic_load(&cancelled), 0);
}

static void
test_rejects_when_full(void **state)
{
	struct jobq *q = make(1, 2, 8);
	struct tjob *blocker = tjob_new(JOBQ_GENERAL, 0), *extra;
	struct jobq_stats st;
	(void)state;

	blocker->block = true;
	assert_int_equal(jobq_push(q, &blocker->job), 0);
	assert_true(wait_running(q, 1, 2000));
	assert_int_equal(jobq_push(q, &tjob_new(JOBQ_GENERAL, 1)->job), 0);
	assert_int_equal(jobq_push(q, &tjob_new(JOBQ_GENERAL, 2)->job), 0);
	extra = tjob_new(JOBQ_GENERAL, 3);
	assert_int_equal(jobq_push(q, &extra->job), -1);
	free(extra);	/* refused: still ours */
	jobq_stats(q, &st);
	assert_int_equal(st.queued, 2);
	assert_int_equal(st.running, 1);
	assert_int_equal(st.rejected, 1);

	/* The control lane has its own bound: a full general lane does not
	 * stop a reconnect. */
	assert_int_equal(jobq_push(q, &tjob_new(JOBQ_CONTROL, 9)->job), 0);

	gate_open();
	assert_true(wait_for_int(&ran, 4, 5000));
	jobq_free(q);
}

static void
test_control_lane_while_general_busy(void **state)
{
	struct jobq *q = make(2, 8, 8);
	struct jobq_stats st;
	(void)state;

	for (int i = 0; i < 3; i++) {
		struct tjob *t = tjob_new(JOBQ_GENERAL, i);

		t->block = true;
		assert_int_equal(jobq_push(q, &t->job), 0);
	}
	assert_true(wait_running(q, 2, 2000));
	assert_int_equal(jobq_push(q, &tjob_new(JOBQ_CONTROL, 42)->job), 0);
	/* Runs although both general workers are stuck and one job waits. */
	assert_true(wait_for_int(&ran, 1, 2000));
	assert_int_equal(order[0], 42);
	jobq_stats(q, &st);
	assert_int_equal(st.running, 2);
	assert_int_equal(st.queued, 1);
	gate_open();
	assert_true(wait_for_int(&ran, 4, 5000));
	jobq_free(q);
}

static void
test_delayed_does_not_block_worker(void **state)
{
	struct jobq *q = make(1, 16, 8);
	struct tjob *late = tjob_new(JOBQ_GENERAL, 100);
	uint64_t t0 = jobq_now_ms(), ran_at = 0;
	(void)state;

	late->not_before = t0 + 500;
	late->ran_at = &ran_at;
	assert_int_equal(jobq_push_at(q, &late->job, t0 + 500), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(jobq_push(q, &tjob_new(JOBQ_GENERAL, i)->job), 0);
	/* The one worker is free for immediate jobs while the late one waits. */
	assert_true(wait_for_int(&ran, 5, 2000));
	assert_true(jobq_now_ms() < t0 + 450);
	assert_true(wait_for_int(&ran, 6, 3000));
	assert_true(ran_at >= t0 + 500);
	assert_true(ran_at < t0 + 1500);
	assert_int_equal(order[5], 100);
	jobq_free(q);
}

static void
test_delayed_order(void **state)
{
	struct jobq *q = make(1, 16, 8);
	uint64_t t0 = jobq_now_ms();
	static const unsigned delays[] = { 300, 100, 200, 0 };
	(void)state;

	for (int i = 0; i < 4; i++) {
		struct tjob *t = tjob_new(JOBQ_GENERAL, (int)delays[i]);

		t->not_before = t0 + delays[i];
		assert_int_equal(jobq_push_at(q, &t->job, t0 + delays[i]), 0);
	}
	assert_true(wait_for_int(&ran, 4, 3000));
	assert_int_equal(order[0], 0);
	assert_int_equal(order[1], 100);
	assert_int_equal(order[2], 200);
	assert_int_equal(order[3], 300);
	jobq_free(q);
}

static void
test_delayed_bound(void **state)
{
	struct jobq *q = make(1, 16, 2);
	uint64_t later = jobq_now_ms() + 60000;
	struct tjob *third = tjob_new(JOBQ_GENERAL, 3);
	struct jobq_stats st;
	(void)state;

	assert_int_equal(jobq_push_at(q, &tjob_new(JOBQ_GENERAL, 1)->job, later), 0);
	assert_int_equal(jobq_push_at(q, &tjob_new(JOBQ_GENERAL, 2)->job, later), 0);
	assert_int_equal(jobq_push_at(q, &third->job, later), -1);
	free(third);
	jobq_stats(q, &st);
	assert_int_equal(st.delayed, 2);
	assert_int_equal(st.delayed_rejected, 1);
	/* Freed with two jobs a minute away: cancelled at once, not awaited. */
	jobq_free(q);
	assert_int_equal(atomic_load(&cancelled), 2);
	assert_int_equal(atomic_load(&ran), 0);
}

static void
test_stop_deadline_cancels(void **state)
{
	struct jobq *q = make(1, 16, 8);
	struct tjob *slow = tjob_new(JOBQ_GENERAL, 0);
	uint64_t t0, t1;
	struct jobq_stats st;
	(void)state;

	slow->sleep_ms = 300;
	assert_int_equal(jobq_push(q, &slow->job), 0);
	assert_true(wait_running(q, 1, 2000));
	for (int i = 1; i <= 5; i++)
		assert_int_equal(jobq_push(q, &tjob_new(JOBQ_GENERAL, i)->job), 0);
	assert_int_equal(jobq_push(q, &tjob_new(JOBQ_CONTROL, 6)->job), 0);
	assert_int_equal(jobq_push_at(q, &tjob_new(JOBQ_GENERAL, 7)->job,
	    jobq_now_ms() + 10000), 0);
	assert_int_equal(jobq_push_at(q, &tjob_new(JOBQ_CONTROL, 8)->job,
	    jobq_now_ms() + 10000), 0);

	t0 = jobq_now_ms();
	jobq_stop(q, t0 + 100);
	t1 = jobq_now_ms();
	/* The running job was let finish; nothing else started after. */
	assert_true(t1 - t0 < 2000);
	jobq_stats(q, &st);
	assert_int_equal(atomic_load(&ran) + atomic_load(&cancelled), 9);
	assert_true(atomic_load(&cancelled) >= 7);
	assert_int_equal(st.cancelled, (uint64_t)atomic_load(&cancelled));
	assert_int_equal(st.queued, 0);
	assert_int_equal(st.delayed, 0);

	/* Stopped: pushes are refused, and the caller keeps its job. */
	{
		struct tjob *t = tjob_new(JOBQ_GENERAL, 99);

		assert_int_equal(jobq_push(q, &t->job), -1);
		assert_int_equal(jobq_push_at(q, &t->job, 0), -1);
		free(t);
	}
	jobq_free(q);
}

static void
test_stop_drains_before_deadline(void **state)
{
	struct jobq *q = make(2, 64, 8);
	uint64_t t0 = jobq_now_ms(), t1;
	(void)state;

	for (int i = 0; i < 20; i++) {
		struct tjob *t = tjob_new(JOBQ_GENERAL, i);

		t->sleep_ms = 5;
		assert_int_equal(jobq_push(q, &t->job), 0);
	}
	/* Falls due before the deadline: runs. Due after it: cancelled. */
	assert_int_equal(jobq_push_at(q, &tjob_new(JOBQ_GENERAL, 50)->job, t0 + 150), 0);
	assert_int_equal(jobq_push_at(q, &tjob_new(JOBQ_GENERAL, 51)->job, t0 + 60000), 0);
	jobq_stop(q, t0 + 3000);
	t1 = jobq_now_ms();
	assert_int_equal(atomic_load(&ran), 21);
	assert_int_equal(atomic_load(&cancelled), 1);
	/* It did not sit out the deadline once only the far job was left. */
	assert_true(t1 - t0 < 1500);
	jobq_free(q);
}

static atomic_int inits, finis;
static int states[8];

static int
winit(void *arg, enum jobq_lane lane, unsigned index, void **worker)
{
	int n = atomic_fetch_add(&inits, 1);

	assert_ptr_equal(arg, states);
	(void)lane;
	(void)index;
	if (n >= 8)
		return -1;
	*worker = &states[n];
	return 0;
}

static void
wfini(void *arg, void *worker)
{
	(void)arg;
	assert_non_null(worker);
	atomic_fetch_add(&finis, 1);
}

static atomic_int seen_worker;

static void
state_run(struct job *job, void *worker)
{
	bool ok = false;

	for (int i = 0; i < 8; i++)
		if (worker == &states[i])
			ok = true;
	if (ok)
		atomic_fetch_add(&seen_worker, 1);
	free(job);
}

static void
test_worker_state(void **state)
{
	struct jobq_config cfg = {
		.workers = 3, .capacity = 8, .delayed_capacity = 8,
		.init = winit, .fini = wfini, .arg = states,
	};
	struct jobq *q;
	(void)state;

	atomic_store(&inits, 0);
	atomic_store(&finis, 0);
	q = jobq_new(&cfg);
	assert_non_null(q);
	assert_int_equal(atomic_load(&inits), 4);	/* 3 general + 1 control */
	for (int i = 0; i < 6; i++) {
		struct job *j = calloc(1, sizeof(*j));

		j->run = state_run;
		j->lane = i % 2 ? JOBQ_CONTROL : JOBQ_GENERAL;
		assert_int_equal(jobq_push(q, j), 0);
	}
	assert_true(wait_for_int(&seen_worker, 6, 3000));
	jobq_free(q);
	assert_int_equal(atomic_load(&finis), 4);

	/* An init failure fails jobq_new, and the others are torn down. */
	atomic_store(&inits, 6);
	atomic_store(&finis, 0);
	assert_null(jobq_new(&cfg));
	assert_int_equal(atomic_load(&finis), 2);
}

static void
test_bad_config(void **state)
{
	struct jobq_config cfg = { .workers = 0, .capacity = 1, .delayed_capacity = 1 };
	(void)state;

	assert_null(jobq_new(&cfg));
	cfg.workers = 1;
	cfg.capacity = 0;
	assert_null(jobq_new(&cfg));
	jobq_free(NULL);
	jobq_stop(NULL, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_runs_jobs, reset),
		cmocka_unit_test_setup(test_rejects_when_full, reset),
		cmocka_unit_test_setup(test_control_lane_while_general_busy, reset),
		cmocka_unit_test_setup(test_delayed_does_not_block_worker, reset),
		cmocka_unit_test_setup(test_delayed_order, reset),
		cmocka_unit_test_setup(test_delayed_bound, reset),
		cmocka_unit_test_setup(test_stop_deadline_cancels, reset),
		cmocka_unit_test_setup(test_stop_drains_before_deadline, reset),
		cmocka_unit_test_setup(test_worker_state, reset),
		cmocka_unit_test(test_bad_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
