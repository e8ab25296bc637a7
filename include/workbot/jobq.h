/*
 * jobq: the worker pool and its bounded job queue.
 *
 * The event thread (and workers themselves) hand work to a fixed set of
 * threads. A job is a `struct job` embedded in the caller's own struct (no
 * allocation here: get back to the outer struct with container_of-style
 * arithmetic). There are two lanes:
 *
 *   JOBQ_CONTROL  one reserved thread for Slack control calls
 *                 (apps.connections.open, auth.test), so a slow app API on
 *                 the general workers never delays a reconnect;
 *   JOBQ_GENERAL  `workers` threads for everything else.
 *
 * Each lane has a FIFO bounded by `capacity`: jobq_push() on a full lane
 * returns -1 and counts a rejection (the event thread then does not ack the
 * envelope, so Slack redelivers it). Waiting — a 429 Retry-After, a backoff —
 * is jobq_push_at(): the job sits in a bounded min-heap until its
 * not-before time and no thread sleeps for it; idle workers wait on a
 * condition variable with a timeout at the earliest due job.
 *
 * Ownership: after a push returns 0 the queue owns the job until it calls
 * exactly one of job->run (the job now belongs to run, which frees it or
 * pushes it again) or job->cancel (the queue is stopping and the job never
 * ran: cancel must free it). After a push returns -1 the caller still owns
 * the job.
 *
 * Threads: every function here may be called from any thread, including
 * from inside a running job, except jobq_new/jobq_stop/jobq_free, which
 * belong to the thread that owns the queue (main) and must never be called
 * from a worker. Workers never block on anything but the queue's own lock
 * and their job.
 */
#ifndef WORKBOT_JOBQ_H
#define WORKBOT_JOBQ_H

#include <stddef.h>
#include <stdint.h>

enum jobq_lane {
	JOBQ_GENERAL = 0,
	JOBQ_CONTROL,
	JOBQ_LANES
};

struct job;

/* Runs on a worker; `worker` is what the pool's init function made for
 * this thread (one libcurl easy handle, say). Owns `job` from here on. */
typedef void job_run_fn(struct job *job, void *worker);
/* The job will never run (queue stopped): release everything it holds. */
typedef void job_cancel_fn(struct job *job);

struct job {
	job_run_fn    *run;
	job_cancel_fn *cancel;
	enum jobq_lane lane;

	/* Private to jobq.c: set on push, never read by the caller. */
	struct {
		struct job *next;
		uint64_t    ready_ms;	/* not-before (delayed) or push time */
		uint64_t    seq;	/* FIFO order among equal times */
	} q;
};

/*
 * Per-worker state: init runs on the new worker thread before it takes any
 * job and stores its state in *worker (may be NULL); returning -1 makes
 * jobq_new() fail. fini runs on the same thread when it exits.
 */
typedef int  jobq_worker_init_fn(void *arg, enum jobq_lane lane, unsigned index, void **worker);
typedef void jobq_worker_fini_fn(void *arg, void *worker);

struct jobq_config {
	unsigned workers;		/* general lane threads, >= 1 */
	size_t   capacity;		/* per-lane FIFO bound, >= 1 */
	size_t   delayed_capacity;	/* bound on jobs waiting in jobq_push_at, >= 1 */
	jobq_worker_init_fn *init;	/* NULL: worker state is NULL */
	jobq_worker_fini_fn *fini;	/* NULL: nothing to do */
	void    *arg;			/* passed to init and fini */
};

struct jobq_stats {
	uint64_t queued;		/* in the FIFOs now, both lanes */
	uint64_t delayed;		/* waiting for their not-before time now */
	uint64_t running;		/* being run now */
	uint64_t rejected;		/* jobq_push on a full lane, ever */
	uint64_t delayed_rejected;	/* jobq_push_at on a full heap, ever */
	uint64_t done;			/* run functions that returned, ever */
	uint64_t cancelled;		/* cancel functions called, ever */
};

struct jobq;

/* Start the threads and wait until every init has run. NULL if a thread
 * could not be created or an init failed (everything already torn down). */
struct jobq *jobq_new(const struct jobq_config *cfg);

/* Queue a job to run as soon as a worker of its lane is free. 0, or -1 when
 * the lane is full or the queue is stopping (counted as rejected). */
int jobq_push(struct jobq *q, struct job *job);

/* Queue a job to run no earlier than `not_before_ms` (jobq_now_ms() clock).
 * A time already past runs it as soon as possible. 0, or -1 when the
 * delayed heap is full or the queue is stopping (counted: delayed_rejected). */
int jobq_push_at(struct jobq *q, struct job *job, uint64_t not_before_ms);

/* The monotonic clock jobq uses, in milliseconds. */
uint64_t jobq_now_ms(void);

void jobq_stats(struct jobq *q, struct jobq_stats *out);

/*
 * Stop: refuse new jobs at once; let workers run queued jobs (and delayed
 * ones that come due) until `deadline_ms` (jobq_now_ms() clock); then call
 * cancel on every job not started and join the threads. A job still running
 * at the deadline is waited for — every job must bound itself (HTTP
 * timeouts). Idempotent.
 */
void jobq_stop(struct jobq *q, uint64_t deadline_ms);

/* Stop with an immediate deadline if needed, then free. NULL is fine. */
void jobq_free(struct jobq *q);

#endif
