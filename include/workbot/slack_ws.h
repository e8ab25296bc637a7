/*
 * slack_ws: the Socket Mode client — N outbound WebSockets to Slack, kept
 * alive, acking every envelope on the socket it came from at once.
 *
 * Event thread only (every function here, and every callback it makes),
 * except where noted. It does no network I/O of its own beyond the sockets:
 * a socket URL comes from apps.connections.open, which is a blocking HTTP
 * call, so the module asks for one through `need_url` (the daemon runs it as
 * a control job on a worker, which also resolves the host) and the answer
 * comes back through slack_ws_url_result() on the event thread. A socket URL
 * is used once: every connect and reconnect asks for a new one.
 *
 * Life of a socket: OPENING (waiting for a URL) -> CONNECTING -> UPGRADED
 * (waiting for hello) -> LIVE -> CLOSING. Each of the `connections` slots
 * wants one live socket. On `disconnect` warning/refresh_requested the slot
 * opens a replacement first and closes the old socket once the new one says
 * hello (make before break). Failures reconnect with exponential backoff
 * and full jitter, 1 s .. 30 s, or after Retry-After; `too_many_websockets`
 * backs off the same way (never a storm); `link_disabled` retires the slot
 * and, with no slot left, reports a fatal error (exit 2).
 *
 * Liveness: lws pings every ping_interval and hangs up when no pong comes
 * within 4 x ping_interval; independently, a socket that has received no
 * frame of any kind for 4 x ping_interval is dropped and reconnected.
 * Frames are reassembled up to 1 MiB; larger ones are dropped (logged once)
 * and the socket stays. After we send a Close, TCP is cut 1 s later even if
 * Slack leaves it open.
 */
#ifndef WORKBOT_SLACK_WS_H
#define WORKBOT_SLACK_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct envelope;
struct loop;
struct secret;
struct slack_ws;

#define SLACK_WS_FRAME_MAX (1024u * 1024u)

/* What the envelope handler decided. */
enum slack_ws_verdict {
	SLACK_WS_ACK,		/* handled (queued, duplicate, or nothing to do): ack it */
	SLACK_WS_NO_ACK,	/* could not take it (queue full): do not ack, Slack redelivers */
};

/* The outcome of an apps.connections.open job. */
enum slack_ws_url_status {
	SLACK_WS_URL_OK,
	SLACK_WS_URL_RETRY,		/* transient: back off */
	SLACK_WS_URL_RATE_LIMITED,	/* retry_after_ms (0: back off) */
	SLACK_WS_URL_TOO_MANY,		/* too_many_websockets: back off */
	SLACK_WS_URL_FATAL,		/* a token Slack refuses: exit 2 with `message` */
};

struct slack_ws_url {
	enum slack_ws_url_status status;
	const struct secret *url;	/* OK: ws(s)://host[:port]/path?ticket=... (never logged) */
	const char *address;		/* OK: the host, resolved to a numeric address by the worker */
	int64_t retry_after_ms;		/* RATE_LIMITED */
	const char *message;		/* FATAL / RETRY: what went wrong (no secret) */
};

struct slack_ws_opts {
	struct loop *loop;
	unsigned connections;		/* slots, 1..4 */
	unsigned ping_interval;		/* seconds */
	const char *ca_file;		/* NULL: the system trust store */
	/* Ask for a socket URL for socket `id` (event thread; run it on a worker). */
	void (*need_url)(void *arg, uint64_t id);
	/*
	 * A parsed envelope that carries an envelope_id or work (events_api,
	 * interactive, slash_commands, unknown types). The handler may take
	 * env->root (set it NULL) to keep the payload.
	 */
	enum slack_ws_verdict (*on_envelope)(void *arg, struct envelope *env);
	/* Socket Mode cannot go on (link_disabled everywhere, refused token): exit(2). */
	void (*on_fatal)(void *arg, const char *message);
	/* A socket said hello / went down (for /healthz). */
	void (*on_live_change)(void *arg, unsigned live);
	void *arg;
};

/* Creates the client vhost on the loop's context. NULL with err on failure. */
struct slack_ws *slack_ws_new(const struct slack_ws_opts *opts, char *err, size_t errsz);
/* Closes every socket at once (no handshake). Call before the loop is freed. NULL ok. */
void slack_ws_free(struct slack_ws *ws);

/* Start: each slot asks for its first URL. */
void slack_ws_start(struct slack_ws *ws);
/* Graceful stop: Close 1000 on every socket, no reconnects. */
void slack_ws_stop(struct slack_ws *ws);
/* True once stop was called and every socket is gone. */
bool slack_ws_stopped(const struct slack_ws *ws);

/* Answer to need_url for socket `id`; unknown ids (gone meanwhile) are ignored. */
void slack_ws_url_result(struct slack_ws *ws, uint64_t id, const struct slack_ws_url *res);

unsigned slack_ws_live(const struct slack_ws *ws);
unsigned slack_ws_wanted(const struct slack_ws *ws);

/* Full-jitter backoff for attempt n (0-based): uniform in [1 s, min(30 s, 2^n s)]. */
int64_t slack_ws_backoff_ms(unsigned attempt);

#endif
