/*
 * loop: the event thread — one libwebsockets context, a queue of functions
 * posted from other threads, and signals turned into ordinary calls.
 *
 * How a post reaches the event thread: loop_post() appends to a mutex-held
 * list and calls lws_cancel_service(), the one lws call that is safe from
 * any thread. lws then sends LWS_CALLBACK_EVENT_WAIT_CANCELLED to every
 * protocol of every vhost (a broadcast); only the protocol of our own small
 * internal vhost drains the list, so a wake runs the posts once however many
 * vhosts the listener and the sockets add. Wakes coalesce: each drain takes
 * the whole list. The callback must return 0, or lws closes its cancel pipe
 * and no worker could wake the loop again.
 *
 * lws_service() ignores its timeout and sleeps until I/O or a scheduled
 * sul, so every timer in workbot is an lws_sul and loop_quit() is only ever
 * called from the event thread itself (from a post or a callback).
 *
 * lws logs (errors and warnings only) are routed into log.c, component lws.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

#include "workbot/log.h"
#include "workbot/loop.h"
#include "workbot/xmalloc.h"

struct post {
	struct post *next;
	loop_fn fn;
	void *arg;
};

struct loop {
	struct lws_context *ctx;
	struct loop_opts opts;
	bool quit;

	pthread_mutex_t mu;
	struct post *head, *tail;

	pthread_t sig_thread;
	bool sig_started;
	volatile sig_atomic_t sig_stopping;
};

/* Signals the loop handles; SIGUSR2 only wakes the signal thread to stop. */
static void
handled_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR2);
}

void
loop_block_signals(void)
{
	sigset_t set;

	handled_signals(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int64_t
loop_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
loop_now_ms(void)
{
	return loop_now_us() / 1000;
}

static void
lws_log_emit(int level, const char *line)
{
	char buf[512];
	size_t n;

	snprintf(buf, sizeof(buf), "%s", line);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	log_msg(level == LLL_ERR ? LOG_ERROR : LOG_WARN, "lws", "%s", buf);
}

static void
drain(struct loop *loop)
{
	struct post *p, *next;

	pthread_mutex_lock(&loop->mu);
	p = loop->head;
	loop->head = loop->tail = NULL;
	pthread_mutex_unlock(&loop->mu);
	for (; p != NULL; p = next) {
		next = p->next;
		p->fn(p->arg);
		free(p);
	}
}

static int
loop_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct loop *loop;

	(void)user;
	(void)in;
	(void)len;
	if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED) {
		loop = lws_context_user(lws_get_context(wsi));
		if (loop != NULL)
			drain(loop);
		return 0;	/* never nonzero: it would close the cancel pipe */
	}
	return 0;
}

static const struct lws_protocols loop_protocols[] = {
	{ .name = "workbot-loop", .callback = loop_callback },
	{ 0 },
};

struct signal_post {
	struct loop *loop;
	int signo;
};

static void
run_signal(void *arg)
{
	struct signal_post *sp = arg;
	struct loop *loop = sp->loop;

	if (sp->signo == SIGHUP) {
		log_info("main", "SIGHUP: reloading");
		if (loop->opts.on_reload)
			loop->opts.on_reload(loop->opts.arg);
	} else {
		log_info("main", "signal %s: stopping", sp->signo == SIGTERM ? "SIGTERM" : "SIGINT");
		if (loop->opts.on_stop)
			loop->opts.on_stop(loop->opts.arg, sp->signo);
		else
			loop_quit(loop);
	}
	free(sp);
}

static void *
signal_thread(void *arg)
{
	struct loop *loop = arg;
	sigset_t set;
	int signo;

	handled_signals(&set);
	for (;;) {
		if (sigwait(&set, &signo) != 0)
			continue;
		if (loop->sig_stopping)
			return NULL;
		if (signo == SIGUSR2)
			continue;
		struct signal_post *sp = xmalloc(sizeof(*sp));
		sp->loop = loop;
		sp->signo = signo;
		loop_post(loop, run_signal, sp);
	}
}

struct loop *
loop_new(const struct loop_opts *opts, char *err, size_t errsz)
{
	struct lws_context_creation_info info;
	struct lws_context_creation_info vinfo;
	struct loop *loop = xcalloc(1, sizeof(*loop));

	loop->opts = *opts;
	pthread_mutex_init(&loop->mu, NULL);
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);

	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.user = loop;
	info.max_http_header_data = (unsigned short)(opts->max_http_header_data ? opts->max_http_header_data : 4096);
	if (opts->fd_limit)
		info.fd_limit_per_thread = opts->fd_limit;
	loop->ctx = lws_create_context(&info);
	if (loop->ctx == NULL) {
		snprintf(err, errsz, "libwebsockets: cannot create a context");
		goto fail;
	}

	memset(&vinfo, 0, sizeof(vinfo));
	vinfo.vhost_name = "workbot-loop";
	vinfo.port = CONTEXT_PORT_NO_LISTEN;
	vinfo.protocols = loop_protocols;
	if (lws_create_vhost(loop->ctx, &vinfo) == NULL) {
		snprintf(err, errsz, "libwebsockets: cannot create the internal vhost");
		goto fail;
	}

	if (pthread_create(&loop->sig_thread, NULL, signal_thread, loop) != 0) {
		snprintf(err, errsz, "cannot start the signal thread: %s", strerror(errno));
		goto fail;
	}
	loop->sig_started = true;
	return loop;
fail:
	loop_free(loop);
	return NULL;
}

void
loop_free(struct loop *loop)
{
	struct post *p, *next;

	if (loop == NULL)
		return;
	if (loop->sig_started) {
		loop->sig_stopping = 1;
		pthread_kill(loop->sig_thread, SIGUSR2);
		pthread_join(loop->sig_thread, NULL);
	}
	if (loop->ctx != NULL)
		lws_context_destroy(loop->ctx);
	/* Posts that never ran: their owners are gone with the context. */
	for (p = loop->head; p != NULL; p = next) {
		next = p->next;
		free(p);
	}
	pthread_mutex_destroy(&loop->mu);
	free(loop);
}

void
loop_drain(struct loop *loop)
{
	drain(loop);
}

struct lws_context *
loop_context(struct loop *loop)
{
	return loop->ctx;
}

int
loop_run(struct loop *loop)
{
	loop->quit = false;
	while (!loop->quit) {
		if (lws_service(loop->ctx, 0) < 0)
			return -1;
	}
	return 0;
}

void
loop_quit(struct loop *loop)
{
	loop->quit = true;
	/* lws_service() may be about to sleep with nothing scheduled: wake it. */
	lws_cancel_service(loop->ctx);
}

void
loop_post(struct loop *loop, loop_fn fn, void *arg)
{
	struct post *p = xmalloc(sizeof(*p));

	p->next = NULL;
	p->fn = fn;
	p->arg = arg;
	pthread_mutex_lock(&loop->mu);
	if (loop->tail)
		loop->tail->next = p;
	else
		loop->head = p;
	loop->tail = p;
	pthread_mutex_unlock(&loop->mu);
	lws_cancel_service(loop->ctx);
}
