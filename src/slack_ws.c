/*
 * slack_ws: Socket Mode sockets on the event thread.
 *
 * Each `struct sock` is one WebSocket and belongs to a slot; a slot wants
 * one live socket. Sockets are identified to the outside (the URL job) by
 * a 64-bit id, never by pointer, so an answer that arrives after its socket
 * is gone is simply not found. lws callbacks find their sock through the
 * wsi's opaque user data; a sock that ended clears it, so late callbacks
 * for that wsi are ignored.
 *
 * The ack path: frame chunks are appended to the socket's buffer; when the
 * final chunk of a message arrives it is parsed (envelope.c), handed to the
 * daemon (which queues work or drops a duplicate), and its ack is queued on
 * the same socket and written from WRITEABLE — as many acks per callback as
 * the socket takes without choking. Nothing here blocks or allocates per
 * envelope beyond the parse tree (ack buffers are a reused ring).
 *
 * Must never: log a socket URL (its ticket is a credential), reuse a URL,
 * write outside WRITEABLE, or reconnect without a delay.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>
#include <sodium.h>

#include "workbot/envelope.h"
#include "workbot/log.h"
#include "workbot/loop.h"
#include "workbot/metrics.h"
#include "workbot/secret.h"
#include "workbot/slack_ws.h"
#include "workbot/xmalloc.h"

#define ACK_MAX		(ENVELOPE_ID_MAX * 2 + 32)	/* worst case escaped id + braces */
#define ACK_QUEUE_MAX	65536				/* per socket; beyond it: no ack, Slack redelivers */
#define RX_KEEP		(64u * 1024u)			/* buffer kept between messages; bigger ones are freed */
#define BACKOFF_MIN_MS	1000
#define BACKOFF_MAX_MS	30000
#define CLOSE_KILL_US	(1 * LWS_US_PER_SEC)
#define LIVE_RESET_MS	60000	/* a socket live this long clears the too_many backoff */

enum sock_state {
	SOCK_OPENING,		/* waiting for a URL (maybe after a backoff delay) */
	SOCK_CONNECTING,
	SOCK_UPGRADED,		/* WebSocket up, no hello yet */
	SOCK_LIVE,
	SOCK_CLOSING,
};

static const char *const state_names[] = {
	"opening", "connecting", "upgraded", "live", "closing",
};

struct ack {
	int64_t t0_us;		/* when its frame was complete */
	uint16_t len;
	unsigned char buf[LWS_PRE + ACK_MAX];
};

struct sock {
	struct sock *next;
	struct slack_ws *ws;
	uint64_t id;
	unsigned slot;
	enum sock_state state;
	struct lws *wsi;
	bool retiring;		/* a replacement was asked for: close after its hello */
	bool want_close;
	bool closing_reported;
	int64_t live_since_ms;
	int64_t last_rx_ms;
	const char *end_reason;	/* static, for the reconnect metric and log */

	char *rx;
	size_t rx_len, rx_cap;
	bool rx_discard, rx_binary;

	struct ack *acks;
	size_t ack_head, ack_count, ack_cap;

	char *url_buf;		/* the socket URL, parsed in place; wiped after connect */
	size_t url_size;

	lws_sorted_usec_list_t sul_retry;	/* OPENING: ask for a URL when it fires */
	lws_sorted_usec_list_t sul_watch;	/* no frame for 4 x ping_interval: drop */
	lws_sorted_usec_list_t sul_kill;	/* 1 s after our Close: cut TCP */
};

struct slot {
	unsigned attempt;	/* failures since the last hello */
	unsigned too_many;	/* too_many_websockets since the last long-lived socket */
	bool disabled;		/* link_disabled */
};

struct slack_ws {
	struct slack_ws_opts o;
	struct lws_vhost *vhost;
	lws_retry_bo_t policy;	/* lws keeps the pointer: lives as long as ws */
	struct slot *slots;
	struct sock *socks;
	uint64_t next_id;
	unsigned live;
	bool stopping, fatal;
};

static void sock_request_url(struct sock *s);
static void sock_close(struct sock *s, const char *why);

int64_t
slack_ws_backoff_ms(unsigned attempt)
{
	int64_t cap = BACKOFF_MAX_MS;

	if (attempt < 5)
		cap = (int64_t)BACKOFF_MIN_MS << attempt;
	if (cap > BACKOFF_MAX_MS)
		cap = BACKOFF_MAX_MS;
	if (cap <= BACKOFF_MIN_MS)
		return BACKOFF_MIN_MS;
	return BACKOFF_MIN_MS + (int64_t)randombytes_uniform((uint32_t)(cap - BACKOFF_MIN_MS + 1));
}

static struct sock *
sock_find(struct slack_ws *ws, uint64_t id)
{
	for (struct sock *s = ws->socks; s != NULL; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

static void
set_live(struct slack_ws *ws, int delta)
{
	ws->live = (unsigned)((int)ws->live + delta);
	metrics_gauge_set(METRICS_GAUGE_SOCKETS_LIVE, ws->live);
	if (ws->o.on_live_change)
		ws->o.on_live_change(ws->o.arg, ws->live);
}

static void
wipe_url(struct sock *s)
{
	if (s->url_buf != NULL) {
		secret_wipe(s->url_buf, s->url_size);
		free(s->url_buf);
		s->url_buf = NULL;
		s->url_size = 0;
	}
}

static void
sock_unlink_free(struct sock *s)
{
	struct slack_ws *ws = s->ws;

	for (struct sock **p = &ws->socks; *p != NULL; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			break;
		}
	}
	lws_sul_cancel(&s->sul_retry);
	lws_sul_cancel(&s->sul_watch);
	lws_sul_cancel(&s->sul_kill);
	if (s->wsi != NULL)
		lws_set_opaque_user_data(s->wsi, NULL);
	wipe_url(s);
	free(s->rx);
	free(s->acks);
	free(s);
}

static struct sock *
sock_new(struct slack_ws *ws, unsigned slot)
{
	struct sock *s = xcalloc(1, sizeof(*s));

	s->ws = ws;
	s->id = ++ws->next_id;
	s->slot = slot;
	s->state = SOCK_OPENING;
	s->next = ws->socks;
	ws->socks = s;
	return s;
}

static void
retry_fired(lws_sorted_usec_list_t *sul)
{
	struct sock *s = lws_container_of(sul, struct sock, sul_retry);

	sock_request_url(s);
}

static void
sock_request_url(struct sock *s)
{
	log_debug("slack", "asking for a socket URL id=%llu slot=%u", (unsigned long long)s->id, s->slot);
	s->ws->o.need_url(s->ws->o.arg, s->id);
}

/* A new socket for `slot`, asking for its URL after `delay_ms`. */
static void
slot_open(struct slack_ws *ws, unsigned slot, int64_t delay_ms, const char *reason)
{
	struct sock *s;

	if (ws->stopping || ws->fatal || ws->slots[slot].disabled)
		return;
	s = sock_new(ws, slot);
	if (reason != NULL) {
		metrics_reconnect_inc(metrics_reconnect_label(strcmp(reason, "dropped") == 0 ? "closed" : reason));
		log_info("slack", "reconnecting slot=%u in_ms=%lld reason=%s", slot, (long long)delay_ms, reason);
	}
	if (delay_ms <= 0)
		sock_request_url(s);
	else
		lws_sul_schedule(loop_context(ws->o.loop), 0, &s->sul_retry, retry_fired,
		    (lws_usec_t)delay_ms * LWS_US_PER_MS);
}

/* Does the slot have a socket that is (or will be) its working one? */
static bool
slot_covered(const struct slack_ws *ws, unsigned slot, const struct sock *except)
{
	for (const struct sock *s = ws->socks; s != NULL; s = s->next)
		if (s != except && s->slot == slot && !s->retiring && s->state != SOCK_CLOSING)
			return true;
	return false;
}

static bool
all_disabled(const struct slack_ws *ws)
{
	for (unsigned i = 0; i < ws->o.connections; i++)
		if (!ws->slots[i].disabled)
			return false;
	return true;
}

static void
go_fatal(struct slack_ws *ws, const char *message)
{
	if (ws->fatal)
		return;
	ws->fatal = true;
	ws->o.on_fatal(ws->o.arg, message);
}

/* The socket is gone (closed, failed, or never connected): account, maybe reconnect. */
static void
sock_ended(struct sock *s, const char *reason)
{
	struct slack_ws *ws = s->ws;
	struct slot *slot = &ws->slots[s->slot];
	unsigned slot_no = s->slot;
	bool was_live = s->live_since_ms != 0;
	int64_t now = loop_now_ms();

	if (s->end_reason != NULL)
		reason = s->end_reason;
	if (s->state == SOCK_LIVE)
		set_live(ws, -1);
	log_info("slack", "socket closed id=%llu slot=%u state=%s reason=%s", (unsigned long long)s->id,
	    slot_no, state_names[s->state], reason);
	if (was_live && now - s->live_since_ms >= LIVE_RESET_MS)
		slot->too_many = 0;
	sock_unlink_free(s);

	if (ws->stopping || ws->fatal)
		return;
	if (slot->disabled) {
		if (all_disabled(ws) && ws->socks == NULL)
			go_fatal(ws, "Socket Mode is disabled for this app (disconnect reason link_disabled): "
			    "turn Socket Mode on in the Slack app settings, then start workbot again");
		return;
	}
	if (slot_covered(ws, slot_no, NULL))
		return;
	{
		unsigned n = slot->attempt++;
		if (slot->too_many > 0 && n < slot->too_many + 2)
			n = slot->too_many + 2;
		slot_open(ws, slot_no, slack_ws_backoff_ms(n), reason);
	}
}

static void
kill_fired(lws_sorted_usec_list_t *sul)
{
	struct sock *s = lws_container_of(sul, struct sock, sul_kill);

	/* Slack may leave TCP open after the close handshake: cut it. */
	if (s->wsi != NULL)
		lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static void
watch_fired(lws_sorted_usec_list_t *sul)
{
	struct sock *s = lws_container_of(sul, struct sock, sul_watch);
	struct slack_ws *ws = s->ws;
	int64_t limit = 4 * (int64_t)ws->o.ping_interval * 1000;
	int64_t idle = loop_now_ms() - s->last_rx_ms;

	if (s->wsi != NULL && idle >= limit) {
		log_warn("slack", "no frame for %lld ms: dropping socket id=%llu", (long long)idle,
		    (unsigned long long)s->id);
		s->end_reason = "ping_timeout";
		lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		return;
	}
	lws_sul_schedule(loop_context(ws->o.loop), 0, &s->sul_watch, watch_fired,
	    (lws_usec_t)ws->o.ping_interval * LWS_US_PER_SEC);
}

static void
sock_close(struct sock *s, const char *why)
{
	if (s->state == SOCK_CLOSING)
		return;
	if (s->end_reason == NULL)
		s->end_reason = why;
	if (s->state == SOCK_LIVE)
		set_live(s->ws, -1);
	if (s->state == SOCK_OPENING) {
		/* No connection yet: nothing to close. A URL answer for it will find nothing. */
		s->state = SOCK_CLOSING;
		sock_ended(s, why);
		return;
	}
	s->state = SOCK_CLOSING;
	if (s->wsi == NULL)
		return;
	s->want_close = true;
	lws_callback_on_writable(s->wsi);
	lws_sul_schedule(loop_context(s->ws->o.loop), 0, &s->sul_kill, kill_fired, CLOSE_KILL_US);
}

static int
is_loopback_host(const char *h)
{
	return strcmp(h, "localhost") == 0 || strncmp(h, "127.", 4) == 0 || strcmp(h, "::1") == 0 ||
	    strcmp(h, "[::1]") == 0;
}

/* Connect socket `s` to `url`. 0, or -1 with a reason (never containing the URL). */
static int
sock_connect(struct sock *s, const struct secret *url, const char *address, const char **why)
{
	struct slack_ws *ws = s->ws;
	struct lws_client_connect_info ci;
	const char *prot = NULL, *host = NULL, *path = NULL;
	int port = 0;
	size_t n = secret_len(url);

	wipe_url(s);
	/* Room for the URL and for "/" + path after it (lws_parse_uri drops the path's '/'). */
	s->url_size = 2 * n + 4;
	s->url_buf = xmalloc(s->url_size);
	memcpy(s->url_buf, secret_reveal(url), n + 1);
	if (lws_parse_uri(s->url_buf, &prot, &host, &port, &path) != 0 || host == NULL || *host == '\0') {
		*why = "socket URL does not parse";
		return -1;
	}
	memset(&ci, 0, sizeof(ci));
	if (strcmp(prot, "wss") == 0) {
		ci.ssl_connection = LCCSCF_USE_SSL;
	} else if (strcmp(prot, "ws") == 0) {
		if (!is_loopback_host(host)) {
			*why = "socket URL is ws:// to a host that is not loopback (wss:// required)";
			return -1;
		}
	} else {
		*why = "socket URL is not ws:// or wss://";
		return -1;
	}
	{
		char *p = s->url_buf + n + 1;
		snprintf(p, s->url_size - n - 1, "/%s", path ? path : "");
		path = p;
	}
	ci.context = loop_context(ws->o.loop);
	ci.vhost = ws->vhost;
	ci.address = (address != NULL && *address) ? address : host;
	ci.port = port;
	ci.path = path;
	ci.host = host;
	ci.origin = host;
	ci.protocol = NULL;
	ci.local_protocol_name = "workbot-slack";
	ci.pwsi = &s->wsi;
	ci.opaque_user_data = s;
	ci.retry_and_idle_policy = &ws->policy;

	s->state = SOCK_CONNECTING;
	if (lws_client_connect_via_info(&ci) == NULL) {
		/* lws may already have called CONNECTION_ERROR (which ends the sock). */
		*why = "connect failed";
		return -1;
	}
	return 0;
}

void
slack_ws_url_result(struct slack_ws *ws, uint64_t id, const struct slack_ws_url *res)
{
	struct sock *s = sock_find(ws, id);
	struct slot *slot;
	const char *why = NULL;
	int64_t delay;
	unsigned slot_no;

	if (s == NULL || s->state != SOCK_OPENING)
		return;
	slot_no = s->slot;
	slot = &ws->slots[slot_no];
	if (ws->stopping) {
		sock_unlink_free(s);
		return;
	}
	switch (res->status) {
	case SLACK_WS_URL_OK:
		if (sock_connect(s, res->url, res->address, &why) == 0)
			return;
		log_warn("slack", "cannot connect socket id=%llu: %s", (unsigned long long)id, why);
		/* CONNECTION_ERROR may have ended it already. */
		if ((s = sock_find(ws, id)) != NULL) {
			s->state = SOCK_CLOSING;
			sock_ended(s, "connect_error");
		}
		return;
	case SLACK_WS_URL_FATAL:
		sock_unlink_free(s);
		go_fatal(ws, res->message ? res->message : "apps.connections.open refused the app token");
		return;
	case SLACK_WS_URL_RATE_LIMITED:
		delay = res->retry_after_ms > 0 ? res->retry_after_ms : slack_ws_backoff_ms(slot->attempt++);
		log_warn("slack", "apps.connections.open rate limited: retrying slot=%u in_ms=%lld",
		    slot_no, (long long)delay);
		break;
	case SLACK_WS_URL_TOO_MANY:
		slot->too_many++;
		delay = slack_ws_backoff_ms(slot->attempt++ + slot->too_many + 1);
		log_warn("slack", "too_many_websockets from apps.connections.open: retrying slot=%u in_ms=%lld",
		    slot_no, (long long)delay);
		break;
	case SLACK_WS_URL_RETRY:
	default:
		delay = slack_ws_backoff_ms(slot->attempt++);
		log_warn("slack", "apps.connections.open failed: %s; retrying slot=%u in_ms=%lld",
		    res->message ? res->message : "error", slot_no, (long long)delay);
		break;
	}
	metrics_reconnect_inc(res->status == SLACK_WS_URL_TOO_MANY ? METRICS_RECONNECT_TOO_MANY_WEBSOCKETS :
	    METRICS_RECONNECT_CONNECT_ERROR);
	/* Same sock, same id: wait, then ask again for a fresh URL. */
	lws_sul_schedule(loop_context(ws->o.loop), 0, &s->sul_retry, retry_fired,
	    (lws_usec_t)delay * LWS_US_PER_MS);
}

/* ---- frames ---- */

static void
queue_ack(struct sock *s, const char *envelope_id, int64_t t0_us)
{
	struct ack *a;
	size_t len;

	if (s->ack_count == s->ack_cap) {
		size_t ncap = s->ack_cap ? s->ack_cap * 2 : 8;
		struct ack *na;

		if (ncap > ACK_QUEUE_MAX) {
			log_warn("slack", "ack queue full on socket id=%llu: not acking (Slack will redeliver)",
			    (unsigned long long)s->id);
			return;
		}
		na = xreallocarray(NULL, ncap, sizeof(*na));
		for (size_t i = 0; i < s->ack_count; i++)
			na[i] = s->acks[(s->ack_head + i) % s->ack_cap];
		free(s->acks);
		s->acks = na;
		s->ack_cap = ncap;
		s->ack_head = 0;
	}
	a = &s->acks[(s->ack_head + s->ack_count) % s->ack_cap];
	len = envelope_ack(envelope_id, (char *)a->buf + LWS_PRE, ACK_MAX);
	if (len == 0)
		return;
	a->len = (uint16_t)len;
	a->t0_us = t0_us;
	s->ack_count++;
	lws_callback_on_writable(s->wsi);
}

static void
on_hello(struct sock *s, const struct envelope *env)
{
	struct slack_ws *ws = s->ws;

	if (s->state != SOCK_UPGRADED)
		return;
	if (ws->stopping) {
		sock_close(s, "stopping");
		return;
	}
	s->state = SOCK_LIVE;
	s->live_since_ms = loop_now_ms();
	ws->slots[s->slot].attempt = 0;
	set_live(ws, +1);
	log_info("slack", "socket live id=%llu slot=%u num_connections=%ld approximate_connection_time=%ld",
	    (unsigned long long)s->id, s->slot, env->num_connections, env->approximate_connection_time);
	if (env->num_connections > (long)ws->o.connections * 2)
		log_warn("slack", "Slack counts %ld sockets for this app, more than workbot opens: "
		    "is another process using the same app token?", env->num_connections);
	/* Make before break: the socket this one replaces can go now. */
	for (struct sock *o = ws->socks; o != NULL; o = o->next)
		if (o != s && o->slot == s->slot && o->retiring && o->state != SOCK_CLOSING)
			sock_close(o, "refreshed");
}

static void
on_disconnect(struct sock *s, const struct envelope *env)
{
	struct slack_ws *ws = s->ws;
	const char *reason = env->disconnect_reason;

	log_info("slack", "disconnect id=%llu slot=%u reason=%s", (unsigned long long)s->id, s->slot,
	    *reason ? reason : "none");
	if (strcmp(reason, "link_disabled") == 0) {
		log_error("slack", "Socket Mode was turned off for this app (link_disabled): not reconnecting slot=%u",
		    s->slot);
		ws->slots[s->slot].disabled = true;
		s->retiring = true;
		sock_close(s, "link_disabled");
		return;
	}
	if (strcmp(reason, "too_many_websockets") == 0) {
		ws->slots[s->slot].too_many++;
		s->retiring = true;
		sock_close(s, "too_many_websockets");
		return;
	}
	/* warning, refresh_requested, or anything new: replace, then close. */
	if (s->retiring || s->state == SOCK_CLOSING)
		return;
	s->retiring = true;
	if (s->state != SOCK_LIVE) {
		sock_close(s, reason);	/* no hello yet: nothing to keep */
		return;
	}
	slot_open(ws, s->slot, 0, *reason ? reason : "disconnect");
}

static void
on_message(struct sock *s, const char *buf, size_t len)
{
	struct slack_ws *ws = s->ws;
	int64_t t0 = loop_now_us();
	struct envelope env;
	const char *why = "?";

	if (envelope_parse(buf, len, &env, &why) != 0) {
		log_warn("slack", "dropped a frame that is not an envelope id=%llu bytes=%zu reason=%s",
		    (unsigned long long)s->id, len, why);
		metrics_envelope_inc(METRICS_ENVELOPE_OTHER);
		return;
	}
	metrics_envelope_inc(metrics_envelope_label(envelope_type_label(env.type)));
	switch (env.type) {
	case ENVELOPE_HELLO:
		on_hello(s, &env);
		break;
	case ENVELOPE_DISCONNECT:
		on_disconnect(s, &env);
		break;
	default:
		if (env.envelope_id[0] == '\0') {
			log_debug("slack", "ignored a frame without envelope_id type=%s", env.type_name);
			break;
		}
		if (ws->o.on_envelope(ws->o.arg, &env) == SLACK_WS_ACK)
			queue_ack(s, env.envelope_id, t0);
		break;
	}
	envelope_free(&env);
}

static void
on_receive(struct sock *s, const void *in, size_t len)
{
	struct lws *wsi = s->wsi;

	s->last_rx_ms = loop_now_ms();
	if (lws_is_first_fragment(wsi)) {
		s->rx_len = 0;
		s->rx_discard = false;
		s->rx_binary = lws_frame_is_binary(wsi) != 0;
	}
	if (!s->rx_discard && !s->rx_binary) {
		if (s->rx_len + len > SLACK_WS_FRAME_MAX) {
			log_warn("slack", "dropped a message over %u bytes id=%llu", SLACK_WS_FRAME_MAX,
			    (unsigned long long)s->id);
			s->rx_discard = true;
		} else {
			if (s->rx_len + len > s->rx_cap) {
				size_t ncap = s->rx_cap ? s->rx_cap : 4096;
				while (ncap < s->rx_len + len)
					ncap *= 2;
				s->rx = xrealloc(s->rx, ncap);
				s->rx_cap = ncap;
			}
			memcpy(s->rx + s->rx_len, in, len);
			s->rx_len += len;
		}
	}
	if (!lws_is_final_fragment(wsi))
		return;
	if (s->rx_binary)
		log_warn("slack", "ignored a binary frame id=%llu", (unsigned long long)s->id);
	else if (!s->rx_discard)
		on_message(s, s->rx, s->rx_len);
	s->rx_len = 0;
	s->rx_discard = s->rx_binary = false;
	if (s->rx_cap > RX_KEEP) {
		free(s->rx);
		s->rx = NULL;
		s->rx_cap = 0;
	}
}

static int
on_writeable(struct sock *s)
{
	struct lws *wsi = s->wsi;

	while (s->ack_count > 0) {
		struct ack *a = &s->acks[s->ack_head];

		if (lws_write(wsi, a->buf + LWS_PRE, a->len, LWS_WRITE_TEXT) < (int)a->len) {
			log_warn("slack", "ack write failed id=%llu", (unsigned long long)s->id);
			return -1;
		}
		metrics_ack_observe_us((uint64_t)(loop_now_us() - a->t0_us));
		s->ack_head = (s->ack_head + 1) % s->ack_cap;
		s->ack_count--;
		if (lws_send_pipe_choked(wsi))
			break;
	}
	if (s->ack_count > 0) {
		lws_callback_on_writable(wsi);
		return 0;
	}
	if (s->want_close) {
		/* Clear first: lws may call WRITEABLE again during the close, and a
		 * second -1 would cut TCP right after our Close frame. */
		s->want_close = false;
		lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
		return -1;
	}
	return 0;
}

static int
slack_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct sock *s = wsi ? lws_get_opaque_user_data(wsi) : NULL;

	(void)user;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (s == NULL)
			return 0;
		/* `in` is a short text from lws ("Unable to connect", "connect SSL err ..."): no URL. */
		log_warn("slack", "socket connect error id=%llu: %.*s", (unsigned long long)s->id,
		    in ? (int)strnlen(in, 200) : 0, in ? (const char *)in : "");
		s->wsi = NULL;
		lws_set_opaque_user_data(wsi, NULL);
		sock_ended(s, "connect_error");
		return 0;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (s == NULL)
			return -1;
		wipe_url(s);
		s->last_rx_ms = loop_now_ms();
		if (s->state == SOCK_CLOSING) {
			s->want_close = true;
			lws_callback_on_writable(wsi);
			return 0;
		}
		s->state = SOCK_UPGRADED;
		lws_sul_schedule(lws_get_context(wsi), 0, &s->sul_watch, watch_fired,
		    (lws_usec_t)s->ws->o.ping_interval * LWS_US_PER_SEC);
		log_debug("slack", "socket upgraded id=%llu", (unsigned long long)s->id);
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (s != NULL)
			on_receive(s, in, len);
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
		if (s != NULL)
			s->last_rx_ms = loop_now_ms();
		return 0;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return s != NULL ? on_writeable(s) : 0;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (s != NULL && len >= 2) {
			const unsigned char *p = in;
			log_info("slack", "Slack closed socket id=%llu code=%u", (unsigned long long)s->id,
			    (unsigned)(p[0] << 8 | p[1]));
		}
		return 0;
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (s == NULL)
			return 0;
		s->wsi = NULL;
		lws_set_opaque_user_data(wsi, NULL);
		sock_ended(s, s->state == SOCK_CLOSING ? "closed" : "dropped");
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static const struct lws_protocols slack_protocols[] = {
	{ .name = "workbot-slack", .callback = slack_callback, .rx_buffer_size = 0 },
	{ 0 },
};

struct slack_ws *
slack_ws_new(const struct slack_ws_opts *opts, char *err, size_t errsz)
{
	struct lws_context_creation_info vi;
	struct slack_ws *ws = xcalloc(1, sizeof(*ws));
	unsigned ping = opts->ping_interval ? opts->ping_interval : 5;

	ws->o = *opts;
	ws->o.ping_interval = ping;
	ws->slots = xcalloc(opts->connections ? opts->connections : 1, sizeof(*ws->slots));
	/* lws: one PING `ping` s after the last pong; hang up when none comes for 4 x ping. */
	ws->policy.secs_since_valid_ping = (uint16_t)ping;
	ws->policy.secs_since_valid_hangup = (uint16_t)(4 * ping);

	memset(&vi, 0, sizeof(vi));
	vi.vhost_name = "workbot-slack";
	vi.port = CONTEXT_PORT_NO_LISTEN;
	vi.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	vi.protocols = slack_protocols;
	vi.client_ssl_ca_filepath = opts->ca_file;
	vi.connect_timeout_secs = 20;
	ws->vhost = lws_create_vhost(loop_context(opts->loop), &vi);
	if (ws->vhost == NULL) {
		snprintf(err, errsz, "libwebsockets: cannot create the Socket Mode client vhost");
		free(ws->slots);
		free(ws);
		return NULL;
	}
	return ws;
}

void
slack_ws_free(struct slack_ws *ws)
{
	if (ws == NULL)
		return;
	while (ws->socks != NULL) {
		struct sock *s = ws->socks;
		if (s->wsi != NULL)
			lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
		sock_unlink_free(s);
	}
	free(ws->slots);
	free(ws);
}

void
slack_ws_start(struct slack_ws *ws)
{
	for (unsigned i = 0; i < ws->o.connections; i++)
		slot_open(ws, i, 0, NULL);
}

void
slack_ws_stop(struct slack_ws *ws)
{
	struct sock *s, *next;

	ws->stopping = true;
	for (s = ws->socks; s != NULL; s = next) {
		next = s->next;
		if (s->state == SOCK_OPENING)
			sock_unlink_free(s);
		else
			sock_close(s, "stopping");
	}
}

bool
slack_ws_stopped(const struct slack_ws *ws)
{
	return ws->stopping && ws->socks == NULL;
}

unsigned
slack_ws_live(const struct slack_ws *ws)
{
	return ws->live;
}

unsigned
slack_ws_wanted(const struct slack_ws *ws)
{
	return ws->o.connections;
}
