/*
 * loop: the event thread. One libwebsockets context, owned here; the Slack
 * sockets (slack_ws) and the loopback HTTP listener (listener) each add
 * their own vhost to it. Nothing on this thread may block: no DNS, no
 * libcurl, no LMDB commit, no blocking write.
 *
 * Threads: loop_new/loop_run/loop_free run on the main (event) thread, and
 * so do all callbacks lws makes. From any other thread exactly one thing is
 * allowed: loop_post(), which queues a function to run on the event thread
 * and wakes it with lws_cancel_service() — the only lws call that is safe
 * off the event thread. Posts are run in order; wakes coalesce, so each wake
 * drains the whole queue.
 *
 * Signals: loop_new() expects SIGTERM, SIGINT, SIGHUP (and SIGPIPE) to be
 * blocked in every thread (call loop_block_signals() in main before any
 * thread starts); a small thread sigwait()s for them and posts the
 * registered handler to the event thread, so handlers run as ordinary code.
 */
#ifndef WORKBOT_LOOP_H
#define WORKBOT_LOOP_H

#include <stdint.h>

struct loop;
struct lws_context;

typedef void (*loop_fn)(void *arg);

struct loop_opts {
	/* Context-wide header space (lws max_http_header_data): must exceed the
	 * listener's 8 KiB head limit, or lws drops big heads with no answer. */
	unsigned max_http_header_data;
	/* Per-thread fd table size (lws fd_limit_per_thread); 0: lws default. */
	unsigned fd_limit;
	/* Called on the event thread for SIGTERM/SIGINT and SIGHUP. */
	void (*on_stop)(void *arg, int signo);
	void (*on_reload)(void *arg);
	void *arg;
};

/* Block the signals the loop handles, in the calling thread (and so in every thread it starts later). */
void loop_block_signals(void);

struct loop *loop_new(const struct loop_opts *opts, char *err, size_t errsz);
/* Stops the signal thread, destroys the context (closing every vhost). NULL is fine. */
void loop_free(struct loop *loop);

struct lws_context *loop_context(struct loop *loop);

/* Run until loop_quit(); 0, or -1 if the service loop failed. */
int loop_run(struct loop *loop);
/* Event thread: make loop_run() return after the current service pass. */
void loop_quit(struct loop *loop);

/* Any thread: run fn(arg) on the event thread soon. Never fails (allocates; OOM is fatal). */
void loop_post(struct loop *loop, loop_fn fn, void *arg);

/*
 * Event (main) thread, after loop_run() returned and the workers are
 * joined: run the posts that arrived since, so their owners free what
 * they carry. Posts still pending at loop_free() are discarded unrun.
 */
void loop_drain(struct loop *loop);

/* Monotonic clock in milliseconds and microseconds. */
int64_t loop_now_ms(void);
int64_t loop_now_us(void);

#endif
