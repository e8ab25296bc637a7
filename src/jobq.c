/*
 * jobq: a fixed pool of worker threads fed from bounded FIFOs and a bounded
 * min-heap of delayed jobs.
 *
 * Design. One mutex guards everything; the critical sections are a few
 * pointer moves, and the work itself runs unlocked. Each lane (general,
 * control) has an intrusive FIFO (jobs are linked through their embedded
 * `struct job`, so pushing never allocates and cannot fail for want of
 * memory), a min-heap of delayed jobs ordered by not-before time, and a
 * condition variable its idle workers wait on. An idle worker takes whichever
 * is ready first: the FIFO head (ready since its push) or the heap top (ready
 * at its not-before time, if that has passed). When neither is ready it
 * sleeps on the lane's condition variable until the heap top is due (a timed
 * wait on CLOCK_MONOTONIC, so a wall-clock step changes nothing) or a push
 * wakes it. Nobody polls and no worker ever sleeps on behalf of one job: a
 * 429 with Retry-After: 30 costs a heap slot, not a thread.
 *
 * Bounds: FIFOs hold at most `capacity` jobs per lane, the heaps at most
 * `delayed_capacity` jobs together; both are checked at push time and a
 * refusal is counted and reported to the caller, never swallowed.
 *
 * Stop: new pushes are refused; workers keep running ready jobs and delayed
 * jobs that fall due, and exit when their lane has nothing left to do
 * before the deadline. At the deadline the stopper takes every job still
 * queued, calls its cancel function (outside the lock: cancel may free,
 * log, anything) and joins the threads.
 *
 * Never: call a job's function with the lock held, drop a job without run
 * or cancel, or let a push block.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "workbot/jobq.h"
#include "workbot/log.h"
#include "workbot/xmalloc.h"

struct worker {
	struct jobq   *q;
	enum jobq_lane lane;
	unsigned       index;
	pthread_t      thread;
	bool           started;	/* pthread_create succeeded: join it */
};

struct lane {
	struct job    *head, *tail;
	size_t         count;
	struct job   **heap;	/* min-heap by (ready_ms, seq) */
	size_t         heap_n;
	pthread_cond_t wake;
};

struct jobq {
	pthread_mutex_t lock;
	pthread_cond_t  state;	/* init reports, worker exits */
	struct lane     lanes[JOBQ_LANES];
	size_t          capacity;
	size_t          delayed_capacity;
	size_t          delayed_n;	/* both heaps */
	uint64_t        seq;

	struct worker  *workers;
	unsigned        nworkers;
	unsigned        inited;		/* threads whose init has returned */
	unsigned        alive;		/* threads not yet exited from their loop */
	bool            init_failed;

	bool            stopping;	/* no new jobs */
	bool            hard_stop;	/* deadline passed: take nothing more */
	bool            stopped;	/* jobq_stop() has completed */
	uint64_t        deadline_ms;

	uint64_t        running, rejected, delayed_rejected, done, cancelled;

	jobq_worker_init_fn *init;
	jobq_worker_fini_fn *fini;
	void           *arg;
};

uint64_t
jobq_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Earlier ready time first; equal times in push order. */
static bool
job_before(const struct job *a, const struct job *b)
{
	if (a->q.ready_ms != b->q.ready_ms)
		return a->q.ready_ms < b->q.ready_ms;
	return a->q.seq < b->q.seq;
}

static void
heap_push(struct lane *l, struct job *job)
{
	size_t i = l->heap_n++;

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!job_before(job, l->heap[parent]))
			break;
		l->heap[i] = l->heap[parent];
		i = parent;
	}
	l->heap[i] = job;
}

static struct job *
heap_pop(struct lane *l)
{
	struct job *top = l->heap[0];
	struct job *last = l->heap[--l->heap_n];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= l->heap_n)
			break;
		if (c + 1 < l->heap_n && job_before(l->heap[c + 1], l->heap[c]))
			c++;
		if (!job_before(l->heap[c], last))
			break;
		l->heap[i] = l->heap[c];
		i = c;
	}
	if (l->heap_n > 0)
		l->heap[i] = last;
	return top;
}

static void
fifo_append(struct lane *l, struct job *job)
{
	job->q.next = NULL;
	if (l->tail)
		l->tail->q.next = job;
	else
		l->head = job;
	l->tail = job;
	l->count++;
}

static struct job *
fifo_pop(struct lane *l)
{
	struct job *job = l->head;

	l->head = job->q.next;
	if (!l->head)
		l->tail = NULL;
	l->count--;
	job->q.next = NULL;
	return job;
}

/* The job of this lane that became ready first, if any is ready now. */
static struct job *
lane_take(struct jobq *q, struct lane *l, uint64_t now)
{
	struct job *f = l->head;
	struct job *h = l->heap_n ? l->heap[0] : NULL;

	if (h && h->q.ready_ms > now)
		h = NULL;
	if (h && (!f || job_before(h, f))) {
		q->delayed_n--;
		return heap_pop(l);
	}
	return f ? fifo_pop(l) : NULL;
}

static struct timespec
abs_timespec(uint64_t ms)
{
	struct timespec ts = {
		.tv_sec = (time_t)(ms / 1000u),
		.tv_nsec = (long)(ms % 1000u) * 1000000L,
	};
	return ts;
}

/* Sleep on `cond` until woken or until `until_ms` (UINT64_MAX: no limit). */
static void
wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, uint64_t until_ms)
{
	if (until_ms == UINT64_MAX) {
		pthread_cond_wait(cond, lock);
	} else {
		struct timespec ts = abs_timespec(until_ms);

		/* ETIMEDOUT and spurious wake-ups alike: the caller re-checks. */
		pthread_cond_timedwait(cond, lock, &ts);
	}
}

static void
worker_loop(struct worker *w, void *state)
{
	struct jobq *q = w->q;
	struct lane *l = &q->lanes[w->lane];

	pthread_mutex_lock(&q->lock);
	for (;;) {
		uint64_t now = jobq_now_ms();
		uint64_t until = UINT64_MAX;
		struct job *job;

		if (q->hard_stop || (q->stopping && now >= q->deadline_ms))
			break;
		job = lane_take(q, l, now);
		if (job) {
			q->running++;
			pthread_mutex_unlock(&q->lock);
			job->run(job, state);
			pthread_mutex_lock(&q->lock);
			q->running--;
			q->done++;
			continue;
		}
		if (l->heap_n)
			until = l->heap[0]->q.ready_ms;
		if (q->stopping) {
			/* Nothing ready, and nothing that falls due in time. */
			if (until == UINT64_MAX || until >= q->deadline_ms)
				break;
		}
		wait_until(&l->wake, &q->lock, until);
	}
	q->alive--;
	pthread_cond_broadcast(&q->state);
	pthread_mutex_unlock(&q->lock);
}

static void *
worker_main(void *p)
{
	struct worker *w = p;
	struct jobq *q = w->q;
	void *state = NULL;
	int rc = 0;
	char name[16];

	/* Names show in top -H and in gdb: which lane is stuck. */
	if (w->lane == JOBQ_CONTROL)
		snprintf(name, sizeof(name), "wb-control");
	else
		snprintf(name, sizeof(name), "wb-worker-%u", w->index);
	pthread_setname_np(pthread_self(), name);

	if (q->init)
		rc = q->init(q->arg, w->lane, w->index, &state);

	pthread_mutex_lock(&q->lock);
	q->inited++;
	if (rc != 0)
		q->init_failed = true;
	pthread_cond_broadcast(&q->state);
	pthread_mutex_unlock(&q->lock);

	if (rc != 0) {
		pthread_mutex_lock(&q->lock);
		q->alive--;
		pthread_cond_broadcast(&q->state);
		pthread_mutex_unlock(&q->lock);
		return NULL;
	}
	worker_loop(w, state);
	if (q->fini)
		q->fini(q->arg, state);
	return NULL;
}

struct jobq *
jobq_new(const struct jobq_config *cfg)
{
	struct jobq *q;
	pthread_condattr_t ca;
	unsigned n;

	if (!cfg || cfg->workers == 0 || cfg->capacity == 0 || cfg->delayed_capacity == 0)
		return NULL;
	q = xcalloc(1, sizeof(*q));
	q->capacity = cfg->capacity;
	q->delayed_capacity = cfg->delayed_capacity;
	q->init = cfg->init;
	q->fini = cfg->fini;
	q->arg = cfg->arg;

	pthread_mutex_init(&q->lock, NULL);
	/* Timed waits are against the monotonic clock (jobq_now_ms). */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->state, &ca);
	for (int i = 0; i < JOBQ_LANES; i++) {
		pthread_cond_init(&q->lanes[i].wake, &ca);
		q->lanes[i].heap = xcalloc(cfg->delayed_capacity, sizeof(struct job *));
	}
	pthread_condattr_destroy(&ca);

	n = cfg->workers + 1;
	q->workers = xcalloc(n, sizeof(*q->workers));
	pthread_mutex_lock(&q->lock);
	for (unsigned i = 0; i < n; i++) {
		struct worker *w = &q->workers[i];
		int err;

		w->q = q;
		w->lane = i == 0 ? JOBQ_CONTROL : JOBQ_GENERAL;
		w->index = i == 0 ? 0 : i - 1;
		q->alive++;
		err = pthread_create(&w->thread, NULL, worker_main, w);
		if (err != 0) {
			q->alive--;
			q->init_failed = true;
			log_error("jobq", "cannot start worker thread error=%s", strerror(err));
			break;
		}
		w->started = true;
		q->nworkers++;
	}
	while (q->inited < q->nworkers)
		pthread_cond_wait(&q->state, &q->lock);
	pthread_mutex_unlock(&q->lock);

	if (q->init_failed) {
		jobq_free(q);
		return NULL;
	}
	return q;
}

int
jobq_push(struct jobq *q, struct job *job)
{
	struct lane *l;

	if ((unsigned)job->lane >= JOBQ_LANES)
		return -1;
	l = &q->lanes[job->lane];
	pthread_mutex_lock(&q->lock);
	if (q->stopping || l->count >= q->capacity) {
		q->rejected++;
		pthread_mutex_unlock(&q->lock);
		return -1;
	}
	job->q.ready_ms = jobq_now_ms();
	job->q.seq = q->seq++;
	fifo_append(l, job);
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&q->lock);
	return 0;
}

int
jobq_push_at(struct jobq *q, struct job *job, uint64_t not_before_ms)
{
	struct lane *l;

	if ((unsigned)job->lane >= JOBQ_LANES)
		return -1;
	l = &q->lanes[job->lane];
	pthread_mutex_lock(&q->lock);
	if (q->stopping || q->delayed_n >= q->delayed_capacity) {
		q->delayed_rejected++;
		pthread_mutex_unlock(&q->lock);
		return -1;
	}
	job->q.next = NULL;
	job->q.ready_ms = not_before_ms;
	job->q.seq = q->seq++;
	heap_push(l, job);
	q->delayed_n++;
	/* A waiting worker may be sleeping until a later time: let it re-aim. */
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&q->lock);
	return 0;
}

void
jobq_stats(struct jobq *q, struct jobq_stats *out)
{
	pthread_mutex_lock(&q->lock);
	out->queued = q->lanes[JOBQ_GENERAL].count + q->lanes[JOBQ_CONTROL].count;
	out->delayed = q->delayed_n;
	out->running = q->running;
	out->rejected = q->rejected;
	out->delayed_rejected = q->delayed_rejected;
	out->done = q->done;
	out->cancelled = q->cancelled;
	pthread_mutex_unlock(&q->lock);
}

void
jobq_stop(struct jobq *q, uint64_t deadline_ms)
{
	struct job *unrun = NULL;

	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	if (q->stopped || q->stopping) {
		/* Idempotent; a second concurrent stopper is a caller bug, and
		 * waiting here for the first would hide it less well than
		 * returning. */
		pthread_mutex_unlock(&q->lock);
		return;
	}
	q->stopping = true;
	q->deadline_ms = deadline_ms;
	for (int i = 0; i < JOBQ_LANES; i++)
		pthread_cond_broadcast(&q->lanes[i].wake);
	while (q->alive > 0 && jobq_now_ms() < deadline_ms)
		wait_until(&q->state, &q->lock, deadline_ms);

	q->hard_stop = true;
	for (int i = 0; i < JOBQ_LANES; i++) {
		struct lane *l = &q->lanes[i];

		pthread_cond_broadcast(&l->wake);
		while (l->head) {
			struct job *job = fifo_pop(l);

			job->q.next = unrun;
			unrun = job;
		}
		while (l->heap_n) {
			struct job *job = heap_pop(l);

			job->q.next = unrun;
			unrun = job;
		}
	}
	q->delayed_n = 0;
	pthread_mutex_unlock(&q->lock);

	/* Outside the lock: cancel functions may do anything, even push
	 * (which is refused now). */
	while (unrun) {
		struct job *job = unrun;

		unrun = job->q.next;
		job->q.next = NULL;
		if (job->cancel)
			job->cancel(job);
		pthread_mutex_lock(&q->lock);
		q->cancelled++;
		pthread_mutex_unlock(&q->lock);
	}

	for (unsigned i = 0; i < q->nworkers; i++) {
		if (q->workers[i].started)
			pthread_join(q->workers[i].thread, NULL);
		q->workers[i].started = false;
	}
	pthread_mutex_lock(&q->lock);
	q->stopped = true;
	pthread_mutex_unlock(&q->lock);
}

void
jobq_free(struct jobq *q)
{
	if (!q)
		return;
	jobq_stop(q, jobq_now_ms());
	for (int i = 0; i < JOBQ_LANES; i++) {
		pthread_cond_destroy(&q->lanes[i].wake);
		free(q->lanes[i].heap);
	}
	pthread_cond_destroy(&q->state);
	pthread_mutex_destroy(&q->lock);
	free(q->workers);
	free(q);
}
