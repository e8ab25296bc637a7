/*
 * fake_slack: the Slack stand-in used by workbot's integration tests and
 * benchmarks.
 *
 * One process, one libwebsockets context, one service thread, one TCP port
 * on 127.0.0.1 (never another interface: iface + DISABLE_IPV6). On that port:
 *
 *   /api/<method>      Slack Web API: apps.connections.open, auth.test,
 *                      chat.postMessage, chat.postEphemeral, chat.update,
 *                      conversations.open, users.info
 *   /response/<id>     response_url POSTs (URLs handed out in envelopes)
 *   /link/?ticket=...  Socket Mode WebSocket (single-use tickets)
 *   /_control/...      test control API (plain HTTP + JSON)
 *
 * TLS mode (--tls-cert FILE --tls-key FILE): the same port speaks only
 * HTTPS and WSS (ALPN http/1.1, no h2), and every URL the fake hands out
 * says so (wss:// socket URLs, https:// response_urls, the control API too).
 * The socket URL's host is 127.0.0.1 unless /_control/config ws_host says
 * otherwise (e.g. "localhost"): only the text of the URL changes, the fake
 * still listens on 127.0.0.1 only — tests use it to check the client's
 * certificate name check against a host the certificate lacks.
 *
 * How it works: every connection is served by one protocol callback (lws
 * sends HTTP and WebSocket upgrades without a sub-protocol to protocols[0]).
 * HTTP requests are collected into a `struct http_req`, answered from a
 * buffer in WRITEABLE (headers first, then body chunks). Each WebSocket has
 * a `struct sock` with an outgoing queue; WRITEABLE writes queued frames
 * (fragments one lws_write each, several small frames per callback only while
 * lws_partial_buffered() says lws holds nothing back). Every envelope sent is
 * stamped (CLOCK_MONOTONIC) in a tracker keyed by envelope_id; acks are
 * matched against it and recorded in a bounded ring with their round trip.
 *
 * Rules it keeps: all state is touched by the service thread only (signals
 * are taken by a sigwait thread that only calls lws_cancel_service); every
 * buffer, ring, queue and loop is bounded; tokens are never echoed back (the
 * call log keeps only the token type); it exits cleanly on SIGTERM/SIGINT or
 * POST /_control/shutdown.
 *
 * Test code only: never linked into workbot.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <libwebsockets.h>

#include "fs_blockkit.h"
#include "fs_util.h"

/* ---- bounds ------------------------------------------------------------ */

#define MAX_WS            64              /* concurrent WebSockets, hard */
#define MAX_HTTP_BODY     (8u << 20)      /* request body */
#define MAX_RX_MSG        (1u << 20)      /* client message reassembly */
#define MAX_FRAME         (16u << 20)     /* one message the fake sends */
#define MAX_QUEUE_BYTES   (64u << 20)     /* per socket */
#define MAX_QUEUE_ITEMS   100000u         /* per socket */
#define ACK_RING          100000u
#define CALL_RING         10000u
#define CALL_BYTES_MAX    (32u << 20)     /* recorded call bodies, total */
#define CALL_BODY_MAX     (1u << 20)      /* one recorded body */
#define ACK_PAYLOAD_MAX   (16u << 10)     /* recorded ack payload text */
#define TICKETS           1024u
#define USERS_MAX         1000u
#define FAIL_RULES        32u
#define BURST_MAX         1000000u
#define TRACK_CAP         65536u          /* power of two */
#define LIST_LIMIT_MAX    100000
#define WRITES_PER_CB     32              /* small frames per WRITEABLE */
#define HTTP_CHUNK        (64u << 10)

/* ---- state --------------------------------------------------------------- */

enum om_kind { OM_TEXT, OM_BINARY, OM_PING, OM_CLOSE, OM_KILL };

struct outmsg {
	struct outmsg *next;
	enum om_kind kind;
	size_t len, off, frag;
	uint16_t close_code;
	uint8_t track;               /* stamp `id` in the tracker when sent */
	char id[FS_ID_MAX];
	unsigned char buf[];         /* LWS_PRE + len + 1 */
};

enum then_action { THEN_NONE, THEN_CLOSE, THEN_KILL };

struct sock {
	uint32_t id;
	struct lws *wsi;
	uint64_t t_open_ns;
	int hello;                   /* hello queued */
	int silent;                  /* half-open simulation */
	int closing;                 /* close or kill requested */
	int refused;                 /* too_many_websockets before hello */
	int debug_reconnects;
	struct outmsg *qhead, *qtail;
	size_t qbytes;
	unsigned qcount;
	struct fs_buf rx;
	int rx_discard;
	uint64_t env_sent, acks, frames_in, blackholed;
	uint32_t burst_inflight;
	int peer_close_code;
	enum then_action then;
	uint16_t then_code;
	lws_sorted_usec_list_t sul_then;
};

struct ticket {
	char id[40];
	uint64_t t_issued_ns;
	int used;
};

struct user {
	char id[24], team_id[24], name[64], real_name[128], email[128];
	int is_bot;
};

struct fail_rule {
	char method[48];
	int remaining;
	int status;                  /* HTTP status, 200 = ok:false */
	int retry_after;
	int html;                    /* answer an HTML page instead of JSON */
	char error[64];
};

struct ack_rec {
	uint64_t seq;
	uint64_t t_ack_ns, t_sent_ns;  /* t_sent 0 = unknown envelope */
	uint32_t socket_id;
	uint32_t len;
	uint8_t known, dup, oversize;
	char id[FS_ID_MAX];
	char *payload;               /* JSON text or NULL */
};

struct call_rec {
	uint64_t seq;
	uint64_t t_ns;
	char method[48];
	char token_type[8];
	char token_source[8];
	char content_type[8];
	int http_status;
	int ok;
	char error[64];
	char *body;                  /* JSON text (no token) */
	char *violations;            /* JSON array text or NULL */
	int nviolations;
	size_t bytes;
};

struct http_req;

enum burst_state { B_IDLE, B_RUNNING, B_DONE, B_TIMEOUT, B_ABORTED };

struct burst {
	enum burst_state state;
	uint32_t n, window, sent, acked, inflight, lost;
	uint32_t target;             /* socket id, 0 = any */
	uint32_t gen;
	uint64_t t_start_ns, t_end_ns, timeout_ms;
	uint64_t *rtt;
	char evtype[24];
	char why[64];
	struct http_req *waiter;
	lws_sorted_usec_list_t sul;
};

struct config {
	char app_token[256];
	char bot_token[256];
	char app_id[32];
	char team_id[24];
	char team_name[64];
	char team_domain[64];
	char bot_user_id[24];
	char bot_id[24];
	int max_sockets;             /* Slack's per-app limit */
	int too_many_next;           /* refuse the next K sockets before hello */
	int ticket_ttl_s;
	int ack_limit;               /* Slack closes 1009 above 20480 */
	int ack_limit_close;
	int blockkit_enforce;        /* answer invalid_blocks */
	int ping_ms;                 /* server pings, 0 = off */
	int approx_conn_time;
	char ws_host[64];            /* host written in socket URLs */
};

static struct fake {
	struct lws_context *ctx;
	int port;
	int verbose;
	int stopping;
	int tls;                     /* --tls-cert/--tls-key: https + wss only */
	struct config cfg, cfg_initial;

	struct sock *socks[MAX_WS];
	uint32_t next_sock_id;
	uint32_t rr;

	struct ticket tickets[TICKETS];
	uint32_t ticket_pos;
	struct lws *upgrade_wsi;     /* accepted in CONFIRM_UPGRADE */
	int upgrade_debug;
	char upgrade_ticket[40];

	struct user users[USERS_MAX];
	unsigned nusers;

	struct fail_rule fails[FAIL_RULES];

	struct fs_track *track;

	struct ack_rec *acks;
	uint64_t ack_seq;            /* next seq */
	uint64_t acks_dropped;

	struct call_rec *calls;
	uint64_t call_seq;
	uint64_t calls_dropped;
	size_t call_bytes;

	struct burst burst;
	lws_sorted_usec_list_t sul_ping;
	lws_sorted_usec_list_t sul_stop;

	uint64_t last_ts_us;
	uint64_t t_start_ns;

	struct {
		uint64_t conn_open_calls, conn_open_ok, conn_open_err;
		uint64_t tickets_rejected, sockets_total, sockets_closed;
		uint64_t sockets_refused, hellos;
		uint64_t envelopes_sent, acks, acks_unknown, acks_dup;
		uint64_t acks_oversize, bad_frames, binary_in, rx_discarded;
		uint64_t api_calls, blockkit_violations, blockkit_messages;
		uint64_t disconnects_sent, kills, pings_sent, untracked;
		uint64_t queue_full, http_requests;
	} st;
	char last_bad_frame[128];
} F;

static atomic_int g_stop;

static void ping_cb(lws_sorted_usec_list_t *sul);

static void vlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
vlog(const char *fmt, ...)
{
	va_list ap;

	if (!F.verbose)
		return;
	fputs("fake_slack: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
copystr(char *dst, size_t dstlen, const char *src)
{
	snprintf(dst, dstlen, "%s", src ? src : "");
}

static double
ns_to_us(uint64_t ns)
{
	return (double)(ns / 100) / 10.0; /* 0.1 µs resolution */
}

/* A Slack-like message ts, unique and increasing. */
static void
make_ts(char out[32])
{
	struct timeval tv;
	uint64_t us;

	gettimeofday(&tv, NULL);
	us = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	if (us <= F.last_ts_us)
		us = F.last_ts_us + 1;
	F.last_ts_us = us;
	snprintf(out, 32, "%" PRIu64 ".%06" PRIu64, us / 1000000u, us % 1000000u);
}

/* ---- sockets and their queues -------------------------------------------- */

static unsigned
socks_open(void)
{
	unsigned i, n = 0;

	for (i = 0; i < MAX_WS; i++)
		if (F.socks[i])
			n++;
	return n;
}

static int
sock_live(const struct sock *s)
{
	return s && s->hello && !s->silent && !s->closing && !s->refused;
}

static struct sock *
sock_by_id(uint32_t id)
{
	unsigned i;

	for (i = 0; i < MAX_WS; i++)
		if (F.socks[i] && F.socks[i]->id == id)
			return F.socks[i];
	return NULL;
}

/* Round-robin over live sockets (hello sent, not silent, not closing). */
static struct sock *
sock_any(void)
{
	unsigned i;

	for (i = 0; i < MAX_WS; i++) {
		struct sock *s = F.socks[(F.rr + i) % MAX_WS];

		if (sock_live(s)) {
			F.rr = (F.rr + i + 1) % MAX_WS;
			return s;
		}
	}
	return NULL;
}

static struct sock *
sock_newest(int oldest)
{
	struct sock *best = NULL;
	unsigned i;

	for (i = 0; i < MAX_WS; i++) {
		struct sock *s = F.socks[i];

		if (!s || s->closing || s->refused)
			continue;
		if (!best || (oldest ? s->id < best->id : s->id > best->id))
			best = s;
	}
	return best;
}

static void
free_queue(struct sock *s)
{
	struct outmsg *m = s->qhead, *n;
	unsigned guard = 0;

	while (m && guard++ <= MAX_QUEUE_ITEMS + 8) {
		n = m->next;
		free(m);
		m = n;
	}
	s->qhead = s->qtail = NULL;
	s->qbytes = 0;
	s->qcount = 0;
}

static struct outmsg *
om_new(enum om_kind kind, const void *data, size_t len)
{
	struct outmsg *m;

	if (len > MAX_FRAME)
		return NULL;
	m = calloc(1, sizeof(*m) + LWS_PRE + len + 1);
	if (!m)
		return NULL;
	m->kind = kind;
	m->len = len;
	if (len)
		memcpy(m->buf + LWS_PRE, data, len);
	return m;
}

/* Queue a message on a socket; takes ownership of m in every case. */
static int
sock_enqueue(struct sock *s, struct outmsg *m)
{
	if (s->silent && m->kind != OM_KILL && m->kind != OM_CLOSE) {
		/* black hole: a half-open peer never gets it */
		s->blackholed++;
		free(m);
		return 0;
	}
	if (s->qcount >= MAX_QUEUE_ITEMS || s->qbytes + m->len > MAX_QUEUE_BYTES) {
		F.st.queue_full++;
		free(m);
		return -1;
	}
	if (s->qtail)
		s->qtail->next = m;
	else
		s->qhead = m;
	s->qtail = m;
	s->qbytes += m->len;
	s->qcount++;
	lws_callback_on_writable(s->wsi);
	return 0;
}

static int
sock_send_text(struct sock *s, const char *text, size_t len, size_t frag,
	       const char *track_id)
{
	struct outmsg *m = om_new(OM_TEXT, text, len);

	if (!m)
		return -1;
	m->frag = frag;
	if (track_id && *track_id && strlen(track_id) < FS_ID_MAX) {
		copystr(m->id, sizeof(m->id), track_id);
		m->track = 1;
	}
	return sock_enqueue(s, m);
}

static int
sock_send_json(struct sock *s, cJSON *o, size_t frag, const char *track_id)
{
	char *txt = cJSON_PrintUnformatted(o);
	int r;

	if (!txt)
		return -1;
	r = sock_send_text(s, txt, strlen(txt), frag, track_id);
	cJSON_free(txt);
	return r;
}

static void
kill_now(struct sock *s, int rst)
{
	int fd = lws_get_socket_fd(s->wsi);

	s->closing = 1;
	F.st.kills++;
	if (fd >= 0) {
		if (rst) {
			struct linger lg = { 1, 0 };

			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		} else {
			shutdown(fd, SHUT_RDWR);
		}
	}
	/* no Close frame: lws closes a timed-out wsi with NOSTATUS */
	lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static void
queue_then(struct sock *s, enum then_action a, uint16_t code)
{
	struct outmsg *m;

	if (a == THEN_NONE || s->closing)
		return;
	if (s->silent) {
		/* a silent socket reads and writes nothing: it can only be dropped */
		kill_now(s, 0);
		return;
	}
	m = om_new(a == THEN_KILL ? OM_KILL : OM_CLOSE, NULL, 0);
	if (!m)
		return;
	m->close_code = code;
	if (s->qtail)
		s->qtail->next = m;
	else
		s->qhead = m;
	s->qtail = m;
	s->qcount++;
	lws_callback_on_writable(s->wsi);
}

static void
sul_then_cb(lws_sorted_usec_list_t *sul)
{
	struct sock *s = lws_container_of(sul, struct sock, sul_then);

	queue_then(s, s->then, s->then_code);
	s->then = THEN_NONE;
}

/* ---- envelopes ------------------------------------------------------------ */

static const char *
pstr(const cJSON *params, const char *k, const char *def)
{
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(params, k));

	return v ? v : def;
}

static long
pint(const cJSON *params, const char *k, long def, long lo, long hi)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, k);
	long r = def;

	if (cJSON_IsNumber(v)) {
		r = (long)v->valuedouble;
	} else if (cJSON_IsString(v) && *v->valuestring) {
		char *end;

		errno = 0;
		r = strtol(v->valuestring, &end, 10);
		if (errno || *end)
			r = def;
	} else if (cJSON_IsBool(v)) {
		r = cJSON_IsTrue(v);
	}
	if (r < lo)
		r = lo;
	if (r > hi)
		r = hi;
	return r;
}

static const struct user *
user_find(const char *id)
{
	unsigned i;

	for (i = 0; i < F.nusers; i++)
		if (!strcmp(F.users[i].id, id))
			return &F.users[i];
	return NULL;
}

static void
response_url(char *out, size_t outlen)
{
	char id[40];

	fs_slack_id(id, sizeof(id), "", 24);
	snprintf(out, outlen, "%s://127.0.0.1:%d/response/%s", F.tls ? "https" : "http",
		 F.port, id);
}

/* Rich text for a message: a leading <@U…> becomes a user element. */
static cJSON *
rich_text_blocks(const char *text)
{
	cJSON *blocks = cJSON_CreateArray(), *b = cJSON_CreateObject();
	cJSON *els = cJSON_CreateArray(), *sec = cJSON_CreateObject();
	cJSON *inner = cJSON_CreateArray(), *t;
	char bid[8];
	const char *rest = text;

	fs_slack_id(bid, sizeof(bid), "", 5);
	cJSON_AddStringToObject(b, "type", "rich_text");
	cJSON_AddStringToObject(b, "block_id", bid);
	cJSON_AddStringToObject(sec, "type", "rich_text_section");
	if (!strncmp(text, "<@", 2) && strchr(text, '>')) {
		const char *gt = strchr(text, '>');
		char uid[32];
		size_t n = (size_t)(gt - text - 2);

		if (n < sizeof(uid)) {
			memcpy(uid, text + 2, n);
			uid[n] = '\0';
			t = cJSON_CreateObject();
			cJSON_AddStringToObject(t, "type", "user");
			cJSON_AddStringToObject(t, "user_id", uid);
			cJSON_AddItemToArray(inner, t);
			rest = gt + 1;
		}
	}
	if (*rest) {
		t = cJSON_CreateObject();
		cJSON_AddStringToObject(t, "type", "text");
		cJSON_AddStringToObject(t, "text", rest);
		cJSON_AddItemToArray(inner, t);
	}
	cJSON_AddItemToObject(sec, "elements", inner);
	cJSON_AddItemToArray(els, sec);
	cJSON_AddItemToObject(b, "elements", els);
	cJSON_AddItemToArray(blocks, b);
	return blocks;
}

static cJSON *
authorizations(void)
{
	cJSON *a = cJSON_CreateArray(), *o = cJSON_CreateObject();

	cJSON_AddNullToObject(o, "enterprise_id");
	cJSON_AddStringToObject(o, "team_id", F.cfg.team_id);
	cJSON_AddStringToObject(o, "user_id", F.cfg.bot_user_id);
	cJSON_AddBoolToObject(o, "is_bot", 1);
	cJSON_AddBoolToObject(o, "is_enterprise_install", 0);
	cJSON_AddItemToArray(a, o);
	return a;
}

static void
add_padding(cJSON *payload, long pad)
{
	char *p;

	if (pad <= 0)
		return;
	p = malloc((size_t)pad + 1);
	if (!p)
		return;
	memset(p, 'x', (size_t)pad);
	p[pad] = '\0';
	cJSON_AddStringToObject(payload, "x_fake_padding", p);
	free(p);
}

/*
 * events_api envelope: message.im (kind "message_im"), a channel message
 * ("message_channel"), app_mention, or a no-work event ("noop":
 * reaction_added). Shapes per Slack's Events API docs and the python-slack-sdk
 * socket mode fixtures (research/slack-socket-mode.md §1.4, §4).
 */
static cJSON *
build_event_envelope(const char *kind, const cJSON *p, char *env_id,
		     char *ev_id_out, size_t ev_id_len)
{
	cJSON *env = cJSON_CreateObject(), *pl = cJSON_CreateObject();
	cJSON *ev = cJSON_CreateObject();
	const char *user = pstr(p, "user", "U0001");
	const char *team = pstr(p, "team", F.cfg.team_id);
	const char *uteam = pstr(p, "user_team", team);
	const char *text = pstr(p, "text", "help");
	const char *thread_ts = pstr(p, "thread_ts", NULL);
	const char *ev_id = pstr(p, "event_id", NULL);
	char ts[32], gen_ev[24], cmid[37], mention[1024];
	long retry = pint(p, "retry_attempt", 0, 0, 100);
	int is_mention = !strcmp(kind, "app_mention");
	int is_im = !strcmp(kind, "message_im");
	const char *channel = pstr(p, "channel", is_im ? "D0001" : "C0001");

	make_ts(ts);
	fs_uuid(cmid);
	if (!ev_id) {
		fs_slack_id(gen_ev, sizeof(gen_ev), "Ev", 10);
		ev_id = gen_ev;
	}
	copystr(ev_id_out, ev_id_len, ev_id);
	if (is_mention && strncmp(text, "<@", 2)) {
		snprintf(mention, sizeof(mention), "<@%s> %s", F.cfg.bot_user_id, text);
		text = mention;
	}

	cJSON_AddStringToObject(pl, "token", "fakeVerificationTok");
	cJSON_AddStringToObject(pl, "team_id", team);
	cJSON_AddStringToObject(pl, "context_team_id", team);
	cJSON_AddNullToObject(pl, "context_enterprise_id");
	cJSON_AddStringToObject(pl, "api_app_id", F.cfg.app_id);
	if (!strcmp(kind, "noop")) {
		cJSON *item = cJSON_CreateObject();

		cJSON_AddStringToObject(ev, "type", "reaction_added");
		cJSON_AddStringToObject(ev, "user", user);
		cJSON_AddStringToObject(ev, "reaction", "thumbsup");
		cJSON_AddStringToObject(item, "type", "message");
		cJSON_AddStringToObject(item, "channel", channel);
		cJSON_AddStringToObject(item, "ts", ts);
		cJSON_AddItemToObject(ev, "item", item);
		cJSON_AddStringToObject(ev, "item_user", F.cfg.bot_user_id);
		cJSON_AddStringToObject(ev, "event_ts", ts);
	} else {
		if (!is_mention)
			cJSON_AddStringToObject(ev, "client_msg_id", cmid);
		cJSON_AddStringToObject(ev, "type", is_mention ? "app_mention" : "message");
		cJSON_AddStringToObject(ev, "text", text);
		cJSON_AddStringToObject(ev, "user", user);
		cJSON_AddStringToObject(ev, "ts", ts);
		cJSON_AddItemToObject(ev, "blocks", rich_text_blocks(text));
		cJSON_AddStringToObject(ev, "team", uteam);
		if (strcmp(uteam, team)) {
			cJSON_AddStringToObject(ev, "user_team", uteam);
			cJSON_AddStringToObject(ev, "source_team", uteam);
		}
		if (thread_ts) {
			cJSON_AddStringToObject(ev, "thread_ts", thread_ts);
			cJSON_AddStringToObject(ev, "parent_user_id", pstr(p, "parent_user_id", user));
		}
		cJSON_AddStringToObject(ev, "channel", channel);
		cJSON_AddStringToObject(ev, "event_ts", ts);
		if (!is_mention)
			cJSON_AddStringToObject(ev, "channel_type",
						is_im ? "im" : pstr(p, "channel_type", "channel"));
	}
	cJSON_AddItemToObject(pl, "event", ev);
	cJSON_AddStringToObject(pl, "type", "event_callback");
	cJSON_AddStringToObject(pl, "event_id", ev_id);
	cJSON_AddNumberToObject(pl, "event_time", (double)time(NULL));
	cJSON_AddItemToObject(pl, "authorizations", authorizations());
	cJSON_AddBoolToObject(pl, "is_ext_shared_channel", strcmp(uteam, team) != 0);
	cJSON_AddStringToObject(pl, "event_context", "4-eyJldCI6Im1lc3NhZ2UiLCJ0aWQiOiJUMDAwMSJ9");
	add_padding(pl, pint(p, "pad", 0, 0, MAX_FRAME - 4096));

	cJSON_AddStringToObject(env, "envelope_id", env_id);
	cJSON_AddItemToObject(env, "payload", pl);
	cJSON_AddStringToObject(env, "type", "events_api");
	cJSON_AddBoolToObject(env, "accepts_response_payload", 0);
	cJSON_AddNumberToObject(env, "retry_attempt", (double)retry);
	cJSON_AddStringToObject(env, "retry_reason",
				pstr(p, "retry_reason", retry ? "timeout" : ""));
	return env;
}

/* interactive / block_actions (a button click), per Slack's interactivity docs. */
static cJSON *
build_block_actions(const cJSON *p, char *env_id)
{
	cJSON *env = cJSON_CreateObject(), *pl = cJSON_CreateObject();
	cJSON *u = cJSON_CreateObject(), *cont = cJSON_CreateObject();
	cJSON *team = cJSON_CreateObject(), *chan = cJSON_CreateObject();
	cJSON *acts = cJSON_CreateArray(), *a = cJSON_CreateObject();
	cJSON *txt = cJSON_CreateObject(), *state = cJSON_CreateObject();
	const char *user = pstr(p, "user", "U0001");
	const char *uteam = pstr(p, "user_team", pstr(p, "team", F.cfg.team_id));
	const char *channel = pstr(p, "channel", "C0001");
	const char *url = pstr(p, "url", NULL);
	const struct user *ur = user_find(user);
	int ephemeral = (int)pint(p, "ephemeral", 0, 0, 1);
	char ts[32], action_ts[32], trig[64], rurl[128], bid[8];
	const char *msg_ts;

	make_ts(ts);
	make_ts(action_ts);
	msg_ts = pstr(p, "message_ts", ts);
	fs_slack_id(trig, sizeof(trig), "1234567890123.", 12);
	response_url(rurl, sizeof(rurl));
	fs_slack_id(bid, sizeof(bid), "", 5);

	cJSON_AddStringToObject(pl, "type", "block_actions");
	cJSON_AddStringToObject(u, "id", user);
	cJSON_AddStringToObject(u, "username", ur ? ur->name : "user");
	cJSON_AddStringToObject(u, "name", ur ? ur->name : "user");
	cJSON_AddStringToObject(u, "team_id", uteam);
	cJSON_AddItemToObject(pl, "user", u);
	cJSON_AddStringToObject(pl, "api_app_id", F.cfg.app_id);
	cJSON_AddStringToObject(pl, "token", "fakeVerificationTok");
	cJSON_AddStringToObject(cont, "type", "message");
	cJSON_AddStringToObject(cont, "message_ts", msg_ts);
	cJSON_AddStringToObject(cont, "channel_id", channel);
	cJSON_AddBoolToObject(cont, "is_ephemeral", ephemeral);
	cJSON_AddItemToObject(pl, "container", cont);
	cJSON_AddStringToObject(pl, "trigger_id", trig);
	cJSON_AddStringToObject(team, "id", pstr(p, "team", F.cfg.team_id));
	cJSON_AddStringToObject(team, "domain", F.cfg.team_domain);
	cJSON_AddItemToObject(pl, "team", team);
	cJSON_AddNullToObject(pl, "enterprise");
	cJSON_AddBoolToObject(pl, "is_enterprise_install", 0);
	cJSON_AddStringToObject(chan, "id", channel);
	cJSON_AddStringToObject(chan, "name", channel[0] == 'D' ? "directmessage" : "general");
	cJSON_AddItemToObject(pl, "channel", chan);
	if (!ephemeral) {
		/* Slack omits the message for ephemeral containers */
		cJSON *m = cJSON_CreateObject();
		cJSON *mb = cJSON_CreateArray(), *sec = cJSON_CreateObject();
		cJSON *st = cJSON_CreateObject();

		cJSON_AddStringToObject(m, "bot_id", F.cfg.bot_id);
		cJSON_AddStringToObject(m, "type", "message");
		cJSON_AddStringToObject(m, "text", pstr(p, "message_text", "Pick one"));
		cJSON_AddStringToObject(m, "user", F.cfg.bot_user_id);
		cJSON_AddStringToObject(m, "ts", msg_ts);
		cJSON_AddStringToObject(m, "app_id", F.cfg.app_id);
		cJSON_AddStringToObject(sec, "type", "section");
		cJSON_AddStringToObject(sec, "block_id", "fake0");
		cJSON_AddStringToObject(st, "type", "mrkdwn");
		cJSON_AddStringToObject(st, "text", pstr(p, "message_text", "Pick one"));
		cJSON_AddBoolToObject(st, "verbatim", 0);
		cJSON_AddItemToObject(sec, "text", st);
		cJSON_AddItemToArray(mb, sec);
		cJSON_AddItemToObject(m, "blocks", mb);
		cJSON_AddStringToObject(m, "team", F.cfg.team_id);
		cJSON_AddItemToObject(pl, "message", m);
	}
	cJSON_AddItemToObject(state, "values", cJSON_CreateObject());
	cJSON_AddItemToObject(pl, "state", state);
	cJSON_AddStringToObject(pl, "response_url", rurl);
	cJSON_AddStringToObject(a, "action_id", pstr(p, "action_id", "approve"));
	cJSON_AddStringToObject(a, "block_id", pstr(p, "block_id", bid));
	cJSON_AddStringToObject(txt, "type", "plain_text");
	cJSON_AddStringToObject(txt, "text", pstr(p, "action_text", "Approve"));
	cJSON_AddBoolToObject(txt, "emoji", 1);
	cJSON_AddItemToObject(a, "text", txt);
	if (cJSON_GetObjectItemCaseSensitive(p, "value"))
		cJSON_AddStringToObject(a, "value", pstr(p, "value", ""));
	if (url)
		cJSON_AddStringToObject(a, "url", url);
	if (cJSON_GetObjectItemCaseSensitive(p, "style"))
		cJSON_AddStringToObject(a, "style", pstr(p, "style", "primary"));
	cJSON_AddStringToObject(a, "type", "button");
	/* A test may fix action_ts to replay the same click (dedupe). */
	cJSON_AddStringToObject(a, "action_ts", pstr(p, "action_ts", action_ts));
	cJSON_AddItemToArray(acts, a);
	cJSON_AddItemToObject(pl, "actions", acts);
	add_padding(pl, pint(p, "pad", 0, 0, MAX_FRAME - 4096));

	cJSON_AddStringToObject(env, "envelope_id", env_id);
	cJSON_AddItemToObject(env, "payload", pl);
	cJSON_AddStringToObject(env, "type", "interactive");
	cJSON_AddBoolToObject(env, "accepts_response_payload", 1);
	return env;
}

/* slash_commands: the slash-command form fields as JSON strings. */
static cJSON *
build_slash(const cJSON *p, char *env_id)
{
	cJSON *env = cJSON_CreateObject(), *pl = cJSON_CreateObject();
	const char *user = pstr(p, "user", "U0001");
	const struct user *ur = user_find(user);
	const char *channel = pstr(p, "channel", "C0001");
	char rurl[128], trig[64];

	response_url(rurl, sizeof(rurl));
	fs_slack_id(trig, sizeof(trig), "1234567890123.", 12);
	cJSON_AddStringToObject(pl, "token", "fakeVerificationTok");
	cJSON_AddStringToObject(pl, "team_id", pstr(p, "team", F.cfg.team_id));
	cJSON_AddStringToObject(pl, "team_domain", F.cfg.team_domain);
	cJSON_AddStringToObject(pl, "channel_id", channel);
	cJSON_AddStringToObject(pl, "channel_name",
				channel[0] == 'D' ? "directmessage" : "general");
	cJSON_AddStringToObject(pl, "user_id", user);
	cJSON_AddStringToObject(pl, "user_name", ur ? ur->name : "user");
	cJSON_AddStringToObject(pl, "command", pstr(p, "command", "/workbot"));
	cJSON_AddStringToObject(pl, "text", pstr(p, "text", "help"));
	cJSON_AddStringToObject(pl, "api_app_id", F.cfg.app_id);
	cJSON_AddStringToObject(pl, "is_enterprise_install", "false");
	cJSON_AddStringToObject(pl, "response_url", rurl);
	cJSON_AddStringToObject(pl, "trigger_id", trig);
	add_padding(pl, pint(p, "pad", 0, 0, MAX_FRAME - 4096));

	cJSON_AddStringToObject(env, "envelope_id", env_id);
	cJSON_AddItemToObject(env, "payload", pl);
	cJSON_AddStringToObject(env, "type", "slash_commands");
	cJSON_AddBoolToObject(env, "accepts_response_payload", 1);
	return env;
}

static void
send_hello(struct sock *s)
{
	cJSON *o = cJSON_CreateObject(), *d = cJSON_CreateObject();
	cJSON *ci = cJSON_CreateObject();
	char host[64];

	snprintf(host, sizeof(host), "applink-fake-%u", s->id);
	cJSON_AddStringToObject(o, "type", "hello");
	cJSON_AddNumberToObject(o, "num_connections", (double)socks_open());
	cJSON_AddStringToObject(d, "host", host);
	cJSON_AddNumberToObject(d, "build_number", 118);
	cJSON_AddNumberToObject(d, "approximate_connection_time",
				s->debug_reconnects ? 360 : F.cfg.approx_conn_time);
	cJSON_AddItemToObject(o, "debug_info", d);
	cJSON_AddStringToObject(ci, "app_id", F.cfg.app_id);
	cJSON_AddItemToObject(o, "connection_info", ci);
	s->hello = 1;
	F.st.hellos++;
	sock_send_json(s, o, 0, NULL);
	cJSON_Delete(o);
}

static void
send_disconnect(struct sock *s, const char *reason)
{
	cJSON *o = cJSON_CreateObject(), *d = cJSON_CreateObject();
	char host[64];

	snprintf(host, sizeof(host), "applink-fake-%u", s->id);
	cJSON_AddStringToObject(o, "type", "disconnect");
	cJSON_AddStringToObject(o, "reason", reason);
	cJSON_AddStringToObject(d, "host", host);
	cJSON_AddItemToObject(o, "debug_info", d);
	F.st.disconnects_sent++;
	sock_send_json(s, o, 0, NULL);
	cJSON_Delete(o);
}

/* ---- recording ------------------------------------------------------------ */

static void
record_ack(struct sock *s, const char *id, const struct fs_track_ent *e,
	   int dup, int oversize, uint32_t len, const char *payload, uint64_t now)
{
	struct ack_rec *r = &F.acks[F.ack_seq % ACK_RING];

	if (F.ack_seq >= ACK_RING) {
		F.acks_dropped++;
		free(r->payload);
	}
	memset(r, 0, sizeof(*r));
	r->seq = F.ack_seq++;
	r->t_ack_ns = now;
	r->t_sent_ns = e ? e->t_sent_ns : 0;
	r->socket_id = s->id;
	r->len = len;
	r->known = e != NULL;
	r->dup = (uint8_t)dup;
	r->oversize = (uint8_t)oversize;
	copystr(r->id, sizeof(r->id), id);
	if (payload && strlen(payload) <= ACK_PAYLOAD_MAX)
		r->payload = strdup(payload);
}

static void
call_free(struct call_rec *c)
{
	F.call_bytes -= c->bytes;
	free(c->body);
	free(c->violations);
	memset(c, 0, sizeof(*c));
}

static uint64_t
call_first_seq(void)
{
	return F.call_seq > CALL_RING ? F.call_seq - CALL_RING : 0;
}

/* Record one Web API / response_url call; `body` must hold no token. */
static struct call_rec *
record_call(const char *method, const char *tok_type, const char *tok_src,
	    const char *ctype, const cJSON *body)
{
	struct call_rec *c = &F.calls[F.call_seq % CALL_RING];
	char *txt = body ? cJSON_PrintUnformatted(body) : NULL;
	uint64_t first;

	if (F.call_seq >= CALL_RING) {
		F.calls_dropped++;
		call_free(c);
	}
	memset(c, 0, sizeof(*c));
	c->seq = F.call_seq++;
	c->t_ns = fs_now_ns();
	copystr(c->method, sizeof(c->method), method);
	copystr(c->token_type, sizeof(c->token_type), tok_type);
	copystr(c->token_source, sizeof(c->token_source), tok_src);
	copystr(c->content_type, sizeof(c->content_type), ctype);
	if (txt && strlen(txt) > CALL_BODY_MAX) {
		char tmp[96];

		snprintf(tmp, sizeof(tmp), "{\"_truncated\":true,\"bytes\":%zu}", strlen(txt));
		cJSON_free(txt);
		txt = NULL;
		c->body = strdup(tmp);
	} else if (txt) {
		c->body = strdup(txt);
		cJSON_free(txt);
	}
	c->bytes = c->body ? strlen(c->body) : 0;
	F.call_bytes += c->bytes;
	/* keep recorded bodies under the byte budget: evict oldest */
	first = call_first_seq();
	while (F.call_bytes > CALL_BYTES_MAX && first < c->seq) {
		struct call_rec *o = &F.calls[first % CALL_RING];

		if (o->body) {
			F.calls_dropped++;
			F.call_bytes -= o->bytes;
			free(o->body);
			o->body = strdup("{\"_evicted\":true}");
			o->bytes = 0;
		}
		first++;
	}
	return c;
}

/* ---- HTTP requests and replies ------------------------------------------ */

enum req_state { RQ_READING, RQ_DEFERRED, RQ_REPLYING };

struct http_req {
	struct lws *wsi;
	enum req_state state;
	int is_post;
	char path[512];
	cJSON *params;               /* query args (+ body fields for control) */
	char auth[512];
	char ctype[128];
	size_t clen;
	struct fs_buf body;
	/* reply */
	int status;
	const char *reply_ctype;
	char *reply;                 /* LWS_PRE + len */
	size_t reply_len, reply_off;
	int headers_sent;
	int retry_after;
};

struct pss {
	struct sock *sock;
	struct http_req *req;
};

static void
req_free(struct http_req *r)
{
	if (!r)
		return;
	if (F.burst.waiter == r)
		F.burst.waiter = NULL;
	cJSON_Delete(r->params);
	fs_buf_free(&r->body);
	free(r->reply);
	free(r);
}

static void
reply_raw(struct http_req *r, int status, const char *ctype, const char *body,
	  size_t len)
{
	free(r->reply);
	r->reply = malloc(LWS_PRE + len + 1);
	if (!r->reply) {
		r->reply_len = 0;
	} else {
		memcpy(r->reply + LWS_PRE, body, len);
		r->reply[LWS_PRE + len] = '\0';
		r->reply_len = len;
	}
	r->reply_off = 0;
	r->status = status;
	r->reply_ctype = ctype;
	r->headers_sent = 0;
	r->state = RQ_REPLYING;
	lws_callback_on_writable(r->wsi);
}

/* Reply with a JSON object (deleted here). */
static void
reply_json(struct http_req *r, int status, cJSON *o)
{
	char *txt = cJSON_PrintUnformatted(o);

	cJSON_Delete(o);
	if (!txt) {
		reply_raw(r, 500, "application/json",
			  "{\"ok\":false,\"error\":\"oom\"}", 26);
		return;
	}
	reply_raw(r, status, "application/json; charset=utf-8", txt, strlen(txt));
	cJSON_free(txt);
}

static void
reply_error(struct http_req *r, int status, const char *err)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddBoolToObject(o, "ok", 0);
	cJSON_AddStringToObject(o, "error", err);
	reply_json(r, status, o);
}

static int
http_writeable(struct lws *wsi, struct http_req *r)
{
	unsigned char hb[LWS_PRE + 1024], *start = hb + LWS_PRE, *p = start;
	unsigned char *end = hb + sizeof(hb) - 1;
	size_t n;
	int final;

	if (!r || r->state != RQ_REPLYING)
		return 0;
	if (!r->headers_sent) {
		if (lws_add_http_common_headers(wsi, (unsigned)r->status,
						r->reply_ctype, r->reply_len, &p, end))
			return -1;
		if (r->retry_after > 0) {
			char v[16];
			int vl = snprintf(v, sizeof(v), "%d", r->retry_after);

			if (lws_add_http_header_by_name(wsi, (const unsigned char *)"retry-after:",
							(const unsigned char *)v, vl, &p, end))
				return -1;
		}
		if (lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
						(const unsigned char *)"no-store", 8, &p, end))
			return -1;
		if (lws_finalize_write_http_header(wsi, start, &p, end))
			return -1;
		r->headers_sent = 1;
		if (r->reply_len) {
			lws_callback_on_writable(wsi);
			return 0;
		}
		goto done;
	}
	n = r->reply_len - r->reply_off;
	if (n > HTTP_CHUNK)
		n = HTTP_CHUNK;
	final = r->reply_off + n == r->reply_len;
	if (lws_write(wsi, (unsigned char *)r->reply + LWS_PRE + r->reply_off, n,
		      final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
		return -1;
	r->reply_off += n;
	if (!final) {
		lws_callback_on_writable(wsi);
		return 0;
	}
done:
	free(r->reply);
	r->reply = NULL;
	r->state = RQ_READING;
	if (lws_http_transaction_completed(wsi))
		return -1;
	return 0;
}

/* ---- token handling ------------------------------------------------------- */

static const char *
token_type(const char *tok)
{
	if (!tok || !*tok)
		return "none";
	if (!strncmp(tok, "xapp-", 5))
		return "xapp";
	if (!strncmp(tok, "xoxb-", 5))
		return "xoxb";
	if (!strncmp(tok, "xoxp-", 5))
		return "xoxp";
	return "other";
}

/* Bearer token from the header (NULL if absent). */
static const char *
bearer(const struct http_req *r)
{
	if (!strncasecmp(r->auth, "Bearer ", 7) && r->auth[7])
		return r->auth + 7;
	return NULL;
}

static struct fail_rule *
fail_match(const char *method)
{
	unsigned i;

	for (i = 0; i < FAIL_RULES; i++) {
		struct fail_rule *f = &F.fails[i];

		if (f->remaining > 0 &&
		    (!strcmp(f->method, method) || !strcmp(f->method, "*")))
			return f;
	}
	return NULL;
}

/* Answer an injected failure; returns 1 if it did. */
static int
apply_fail(struct http_req *r, const char *method, struct call_rec *c)
{
	struct fail_rule *f = fail_match(method);

	if (!f)
		return 0;
	f->remaining--;
	c->http_status = f->status;
	c->ok = 0;
	copystr(c->error, sizeof(c->error), f->error);
	r->retry_after = f->status == 429 ? f->retry_after : 0;
	if (f->html) {
		static const char page[] =
			"<html><body><h1>Service unavailable</h1></body></html>";

		reply_raw(r, f->status, "text/html", page, sizeof(page) - 1);
	} else {
		reply_error(r, f->status, f->error);
	}
	return 1;
}

/* ---- Web API ------------------------------------------------------------- */

/* Parse a Web API body: JSON object or form (or empty). NULL = bad JSON. */
static cJSON *
parse_body(struct http_req *r, const char **ctype_out)
{
	const char *b = r->body.p ? r->body.p : "";
	cJSON *o;

	if (strstr(r->ctype, "application/json")) {
		*ctype_out = "json";
		o = cJSON_ParseWithLength(b, r->body.len);
		if (!cJSON_IsObject(o)) {
			cJSON_Delete(o);
			return NULL;
		}
		return o;
	}
	*ctype_out = r->body.len ? "form" : "none";
	return fs_form_parse(b, r->body.len);
}

static void
merge_params(cJSON *into, const cJSON *from)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, from) {
		if (!it->string || cJSON_GetObjectItemCaseSensitive(into, it->string))
			continue;
		cJSON_AddItemToObject(into, it->string, cJSON_Duplicate(it, 1));
	}
}

static void
api_ok_add(cJSON *o)
{
	cJSON_AddBoolToObject(o, "ok", 1);
}

static cJSON *
message_object(const cJSON *body, const char *ts)
{
	cJSON *m = cJSON_CreateObject();
	const cJSON *blocks = cJSON_GetObjectItemCaseSensitive(body, "blocks");
	const char *thread = pstr(body, "thread_ts", NULL);

	cJSON_AddStringToObject(m, "user", F.cfg.bot_user_id);
	cJSON_AddStringToObject(m, "type", "message");
	cJSON_AddStringToObject(m, "ts", ts);
	cJSON_AddStringToObject(m, "bot_id", F.cfg.bot_id);
	cJSON_AddStringToObject(m, "app_id", F.cfg.app_id);
	cJSON_AddStringToObject(m, "text", pstr(body, "text", ""));
	cJSON_AddStringToObject(m, "team", F.cfg.team_id);
	if (thread)
		cJSON_AddStringToObject(m, "thread_ts", thread);
	if (cJSON_IsArray(blocks)) {
		cJSON_AddItemToObject(m, "blocks", cJSON_Duplicate(blocks, 1));
	} else if (cJSON_IsString(blocks)) {
		cJSON *pb = cJSON_Parse(blocks->valuestring);

		if (cJSON_IsArray(pb))
			cJSON_AddItemToObject(m, "blocks", pb);
		else
			cJSON_Delete(pb);
	}
	return m;
}

/* Validate blocks; on violations record them and maybe answer the error. */
static int
blockkit(struct http_req *r, struct call_rec *c, const cJSON *body, int need_text)
{
	cJSON *errs = cJSON_CreateArray();
	const char *serr = NULL;
	int n = fs_blockkit_check(body, need_text, errs, &serr);

	if (n > 0) {
		char *txt = cJSON_PrintUnformatted(errs);

		F.st.blockkit_violations += (uint64_t)n;
		F.st.blockkit_messages++;
		c->nviolations = n;
		c->violations = txt ? strdup(txt) : NULL;
		cJSON_free(txt);
		if (F.cfg.blockkit_enforce || (serr && !strcmp(serr, "no_text"))) {
			cJSON *o = cJSON_CreateObject(), *md = cJSON_CreateObject();

			cJSON_AddBoolToObject(o, "ok", 0);
			cJSON_AddStringToObject(o, "error", serr ? serr : "invalid_blocks");
			cJSON_AddItemToObject(o, "errors", cJSON_Duplicate(errs, 1));
			cJSON_AddItemToObject(md, "messages", errs);
			cJSON_AddItemToObject(o, "response_metadata", md);
			c->http_status = 200;
			copystr(c->error, sizeof(c->error), serr ? serr : "invalid_blocks");
			reply_json(r, 200, o);
			return 1;
		}
	}
	cJSON_Delete(errs);
	return 0;
}

static void
ticket_issue(char out[40])
{
	struct ticket *t = &F.tickets[F.ticket_pos++ % TICKETS];

	fs_uuid(t->id);
	t->t_issued_ns = fs_now_ns();
	t->used = 0;
	copystr(out, 40, t->id);
}

static struct ticket *
ticket_find(const char *id)
{
	unsigned i;

	for (i = 0; i < TICKETS; i++)
		if (F.tickets[i].id[0] && !strcmp(F.tickets[i].id, id))
			return &F.tickets[i];
	return NULL;
}

static void
api_connections_open(struct http_req *r, const cJSON *body, struct call_rec *c)
{
	const char *tok = bearer(r);
	const char *tt = token_type(tok);
	cJSON *o;
	char ticket[40], url[256];

	F.st.conn_open_calls++;
	if (cJSON_GetObjectItemCaseSensitive(body, "token")) {
		/* "send the token in the Authorization header, not as a parameter" */
		copystr(c->error, sizeof(c->error), "invalid_arguments");
		goto err;
	}
	if (!tok) {
		copystr(c->error, sizeof(c->error), "not_authed");
		goto err;
	}
	if (strcmp(tt, "xapp")) {
		copystr(c->error, sizeof(c->error), "not_allowed_token_type");
		goto err;
	}
	if (strcmp(tok, F.cfg.app_token)) {
		copystr(c->error, sizeof(c->error), "invalid_auth");
		goto err;
	}
	if (apply_fail(r, "apps.connections.open", c)) {
		F.st.conn_open_err++;
		return;
	}
	if ((int)socks_open() >= F.cfg.max_sockets) {
		copystr(c->error, sizeof(c->error), "too_many_websockets");
		goto err;
	}
	ticket_issue(ticket);
	snprintf(url, sizeof(url), "%s://%s:%d/link/?ticket=%s&app_id=%s",
		 F.tls ? "wss" : "ws", F.cfg.ws_host, F.port, ticket, F.cfg.app_id);
	F.st.conn_open_ok++;
	c->ok = 1;
	c->http_status = 200;
	o = cJSON_CreateObject();
	api_ok_add(o);
	cJSON_AddStringToObject(o, "url", url);
	reply_json(r, 200, o);
	return;
err:
	F.st.conn_open_err++;
	c->http_status = 200;
	reply_error(r, 200, c->error);
}

/* Bot-token methods: check the token; 1 = answered (error). */
static int
check_bot_token(struct http_req *r, const char *tok, struct call_rec *c)
{
	const char *err = NULL;

	if (!tok)
		err = "not_authed";
	else if (!strcmp(token_type(tok), "xapp"))
		err = "not_allowed_token_type";
	else if (strcmp(tok, F.cfg.bot_token))
		err = "invalid_auth";
	if (!err)
		return 0;
	copystr(c->error, sizeof(c->error), err);
	c->http_status = 200;
	reply_error(r, 200, err);
	return 1;
}

static cJSON *
user_json(const struct user *u)
{
	cJSON *o = cJSON_CreateObject(), *pr = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "id", u->id);
	cJSON_AddStringToObject(o, "team_id", u->team_id);
	cJSON_AddStringToObject(o, "name", u->name);
	cJSON_AddBoolToObject(o, "deleted", 0);
	cJSON_AddStringToObject(o, "real_name", u->real_name);
	cJSON_AddStringToObject(o, "tz", "Europe/Berlin");
	cJSON_AddStringToObject(pr, "real_name", u->real_name);
	cJSON_AddStringToObject(pr, "display_name", u->name);
	if (u->email[0])
		cJSON_AddStringToObject(pr, "email", u->email);
	cJSON_AddStringToObject(pr, "team", u->team_id);
	cJSON_AddItemToObject(o, "profile", pr);
	cJSON_AddBoolToObject(o, "is_bot", u->is_bot);
	cJSON_AddBoolToObject(o, "is_app_user", 0);
	return o;
}

static void
handle_api(struct http_req *r, const char *method)
{
	const char *ctype = "none", *tok, *tsrc;
	cJSON *body = parse_body(r, &ctype), *o;
	struct call_rec *c;
	char ts[32];

	F.st.api_calls++;
	if (!body) {
		c = record_call(method, token_type(bearer(r)), bearer(r) ? "header" : "none",
				ctype, NULL);
		copystr(c->error, sizeof(c->error), "invalid_json");
		c->http_status = 200;
		reply_error(r, 200, "invalid_json");
		return;
	}
	merge_params(body, r->params); /* GET-style query arguments */
	tok = bearer(r);
	tsrc = tok ? "header" : "none";
	if (!tok && pstr(body, "token", NULL)) {
		tok = pstr(body, "token", NULL);
		tsrc = "body";
	}
	{
		/* never keep a token in the record */
		cJSON *rec = cJSON_Duplicate(body, 1);

		cJSON_DeleteItemFromObjectCaseSensitive(rec, "token");
		c = record_call(method, token_type(tok), tsrc, ctype, rec);
		cJSON_Delete(rec);
	}

	if (!strcmp(method, "apps.connections.open")) {
		api_connections_open(r, body, c);
		goto out;
	}
	if (check_bot_token(r, tok, c))
		goto out;
	if (apply_fail(r, method, c))
		goto out;
	c->http_status = 200;
	o = cJSON_CreateObject();
	if (!strcmp(method, "auth.test")) {
		api_ok_add(o);
		cJSON_AddStringToObject(o, "url", "https://acme.slack.com/");
		cJSON_AddStringToObject(o, "team", F.cfg.team_name);
		cJSON_AddStringToObject(o, "user", "workbot");
		cJSON_AddStringToObject(o, "team_id", F.cfg.team_id);
		cJSON_AddStringToObject(o, "user_id", F.cfg.bot_user_id);
		cJSON_AddStringToObject(o, "bot_id", F.cfg.bot_id);
		cJSON_AddBoolToObject(o, "is_enterprise_install", 0);
	} else if (!strcmp(method, "chat.postMessage") ||
		   !strcmp(method, "chat.update")) {
		int upd = !strcmp(method, "chat.update");
		const char *ch = pstr(body, "channel", NULL);

		if (!ch || !*ch) {
			cJSON_Delete(o);
			copystr(c->error, sizeof(c->error), "channel_not_found");
			reply_error(r, 200, c->error);
			goto out;
		}
		if (upd && !pstr(body, "ts", NULL)) {
			cJSON_Delete(o);
			copystr(c->error, sizeof(c->error), "message_not_found");
			reply_error(r, 200, c->error);
			goto out;
		}
		if (blockkit(r, c, body, 1)) {
			cJSON_Delete(o);
			goto out;
		}
		if (upd)
			copystr(ts, sizeof(ts), pstr(body, "ts", ""));
		else
			make_ts(ts);
		api_ok_add(o);
		cJSON_AddStringToObject(o, "channel", ch);
		cJSON_AddStringToObject(o, "ts", ts);
		if (upd)
			cJSON_AddStringToObject(o, "text", pstr(body, "text", ""));
		cJSON_AddItemToObject(o, "message", message_object(body, ts));
	} else if (!strcmp(method, "chat.postEphemeral")) {
		const char *ch = pstr(body, "channel", NULL);
		const char *u = pstr(body, "user", NULL);

		if (!ch || !*ch || !u || !*u) {
			cJSON_Delete(o);
			copystr(c->error, sizeof(c->error),
				(!ch || !*ch) ? "channel_not_found" : "user_not_in_channel");
			reply_error(r, 200, c->error);
			goto out;
		}
		if (blockkit(r, c, body, 1)) {
			cJSON_Delete(o);
			goto out;
		}
		make_ts(ts);
		api_ok_add(o);
		cJSON_AddStringToObject(o, "message_ts", ts);
	} else if (!strcmp(method, "conversations.open")) {
		const char *users = pstr(body, "users", NULL);
		const char *ch = pstr(body, "channel", NULL);
		cJSON *chan = cJSON_CreateObject();
		char id[40];

		if (ch && *ch) {
			copystr(id, sizeof(id), ch);
		} else if (!users || !*users) {
			cJSON_Delete(o);
			cJSON_Delete(chan);
			copystr(c->error, sizeof(c->error), "users_list_not_supplied");
			reply_error(r, 200, c->error);
			goto out;
		} else if (strchr(users, ',')) {
			snprintf(id, sizeof(id), "G%08X", (unsigned)strlen(users) * 2654435761u);
		} else if (!user_find(users)) {
			cJSON_Delete(o);
			cJSON_Delete(chan);
			copystr(c->error, sizeof(c->error), "user_not_found");
			reply_error(r, 200, c->error);
			goto out;
		} else {
			snprintf(id, sizeof(id), "D%.30s", users + 1);
		}
		api_ok_add(o);
		cJSON_AddStringToObject(chan, "id", id);
		if (!strcmp(pstr(body, "return_im", "false"), "true") ||
		    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "return_im"))) {
			cJSON_AddNumberToObject(chan, "created", (double)time(NULL));
			cJSON_AddBoolToObject(chan, "is_im", 1);
			cJSON_AddBoolToObject(chan, "is_org_shared", 0);
			cJSON_AddStringToObject(chan, "user", users ? users : "");
			cJSON_AddBoolToObject(chan, "is_open", 1);
		}
		cJSON_AddItemToObject(o, "channel", chan);
	} else if (!strcmp(method, "users.info")) {
		const struct user *u = user_find(pstr(body, "user", ""));

		if (!u) {
			cJSON_Delete(o);
			copystr(c->error, sizeof(c->error), "user_not_found");
			reply_error(r, 200, c->error);
			goto out;
		}
		api_ok_add(o);
		cJSON_AddItemToObject(o, "user", user_json(u));
	} else {
		cJSON_Delete(o);
		copystr(c->error, sizeof(c->error), "unknown_method");
		reply_error(r, 200, c->error);
		goto out;
	}
	c->ok = 1;
	reply_json(r, 200, o);
out:
	cJSON_Delete(body);
}

static void
handle_response_url(struct http_req *r, const char *id)
{
	const char *ctype = "none";
	cJSON *body = parse_body(r, &ctype);
	struct call_rec *c;
	cJSON *o;
	int need_text;

	F.st.api_calls++;
	c = record_call("response_url", "none", "none", ctype, body);
	c->http_status = 200;
	if (!body || !*id || !r->is_post) {
		copystr(c->error, sizeof(c->error), body ? "invalid_request" : "invalid_json");
		reply_error(r, body ? 404 : 400, c->error);
		c->http_status = body ? 404 : 400;
		cJSON_Delete(body);
		return;
	}
	if (apply_fail(r, "response_url", c)) {
		cJSON_Delete(body);
		return;
	}
	need_text = !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "delete_original")) &&
		    strcmp(pstr(body, "delete_original", ""), "true");
	if (blockkit(r, c, body, need_text)) {
		cJSON_Delete(body);
		return;
	}
	c->ok = 1;
	o = cJSON_CreateObject();
	api_ok_add(o);
	reply_json(r, 200, o);
	cJSON_Delete(body);
}

/* ---- control API ------------------------------------------------------- */

/* Resolve socket=any|newest|oldest|all|<id>; all is handled by callers. */
static struct sock *
pick_socket(const cJSON *p)
{
	const char *s = pstr(p, "socket", "any");

	if (!strcmp(s, "any"))
		return sock_any();
	if (!strcmp(s, "newest"))
		return sock_newest(0);
	if (!strcmp(s, "oldest"))
		return sock_newest(1);
	return sock_by_id((uint32_t)pint(p, "socket", 0, 0, UINT32_MAX));
}

static int
want_all(const cJSON *p)
{
	return !strcmp(pstr(p, "socket", ""), "all");
}

static void
ctl_push(struct http_req *r)
{
	const cJSON *p = r->params;
	const char *type = pstr(p, "type", "message_im");
	const char *frame = pstr(p, "frame", "text");
	size_t frag = (size_t)pint(p, "fragment", 0, 0, MAX_FRAME);
	struct sock *s = pick_socket(p);
	char env_id[FS_ID_MAX], ev_id[32] = "";
	cJSON *env = NULL, *o;
	char *txt = NULL;
	size_t len;
	int rc;

	if (!s || s->refused) {
		reply_error(r, 409, "no_socket");
		return;
	}
	copystr(env_id, sizeof(env_id), pstr(p, "envelope_id", ""));
	if (!env_id[0])
		fs_uuid(env_id);
	if (!strcmp(type, "raw")) {
		const cJSON *id;

		if (!r->body.len) {
			reply_error(r, 400, "raw_needs_body");
			return;
		}
		txt = malloc(r->body.len + 1);
		if (!txt) {
			reply_error(r, 500, "oom");
			return;
		}
		memcpy(txt, r->body.p, r->body.len);
		txt[r->body.len] = '\0';
		len = r->body.len;
		env = cJSON_ParseWithLength(txt, len);
		id = cJSON_GetObjectItemCaseSensitive(env, "envelope_id");
		copystr(env_id, sizeof(env_id), cJSON_IsString(id) ? id->valuestring : "");
		cJSON_Delete(env);
		env = NULL;
	} else if (!strcmp(type, "garbage")) {
		size_t i, glen = (size_t)pint(p, "bytes", 64, 1, MAX_FRAME);

		txt = malloc(glen + 1);
		if (!txt) {
			reply_error(r, 500, "oom");
			return;
		}
		fs_random(txt, glen);
		for (i = 0; i < glen; i++)
			txt[i] = (char)(' ' + 1 + ((unsigned char)txt[i] % 90)); /* printable */
		txt[0] = '}';
		txt[glen] = '\0';
		len = glen;
		env_id[0] = '\0';
	} else {
		if (!strcmp(type, "message_im") || !strcmp(type, "app_mention") ||
		    !strcmp(type, "message_channel") || !strcmp(type, "noop"))
			env = build_event_envelope(type, p, env_id, ev_id, sizeof(ev_id));
		else if (!strcmp(type, "block_actions"))
			env = build_block_actions(p, env_id);
		else if (!strcmp(type, "slash_command") || !strcmp(type, "slash_commands"))
			env = build_slash(p, env_id);
		if (!env) {
			reply_error(r, 400, "unknown_type");
			return;
		}
		txt = cJSON_PrintUnformatted(env);
		cJSON_Delete(env);
		if (!txt) {
			reply_error(r, 500, "oom");
			return;
		}
		len = strlen(txt);
	}
	if (len > MAX_FRAME) {
		free(txt);
		reply_error(r, 413, "frame_too_large");
		return;
	}
	if (frag && frag < 16)
		frag = 16; /* bounds the fragment count */
	{
		struct outmsg *m = om_new(strcmp(frame, "binary") ? OM_TEXT : OM_BINARY,
					  txt, len);

		free(txt);
		if (!m) {
			reply_error(r, 500, "oom");
			return;
		}
		m->frag = frag;
		if (env_id[0] && strlen(env_id) < FS_ID_MAX && m->kind == OM_TEXT) {
			struct fs_track_ent *e = fs_track_put(F.track, env_id);

			if (e) {
				e->socket_id = s->id;
				e->burst = 0;
				e->acked = 0;
				e->t_sent_ns = 0;
				copystr(m->id, sizeof(m->id), env_id);
				m->track = 1;
			}
		} else if (env_id[0]) {
			F.st.untracked++;
		}
		rc = sock_enqueue(s, m);
	}
	if (rc) {
		reply_error(r, 503, "queue_full");
		return;
	}
	o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", 1);
	cJSON_AddStringToObject(o, "envelope_id", env_id);
	if (ev_id[0])
		cJSON_AddStringToObject(o, "event_id", ev_id);
	cJSON_AddNumberToObject(o, "socket", s->id);
	cJSON_AddNumberToObject(o, "bytes", (double)len);
	cJSON_AddBoolToObject(o, "silent", s->silent);
	reply_json(r, 200, o);
}

static enum then_action
parse_then(const char *t)
{
	if (!strcmp(t, "close"))
		return THEN_CLOSE;
	if (!strcmp(t, "kill"))
		return THEN_KILL;
	return THEN_NONE;
}

static void
disconnect_one(struct sock *s, const cJSON *p)
{
	const char *reason = pstr(p, "reason", "refresh_requested");
	enum then_action then = parse_then(pstr(p, "then", "none"));
	long delay = pint(p, "delay_ms", 0, 0, 600000);
	uint16_t code = (uint16_t)pint(p, "code", 1000, 1000, 4999);

	send_disconnect(s, reason);
	if (then == THEN_NONE)
		return;
	if (!delay) {
		queue_then(s, then, code);
		return;
	}
	s->then = then;
	s->then_code = code;
	lws_sul_schedule(F.ctx, 0, &s->sul_then, sul_then_cb,
			 (lws_usec_t)delay * LWS_US_PER_MS);
}

/* Apply fn to the chosen socket(s); answer with how many were hit. */
static void
for_sockets(struct http_req *r, void (*fn)(struct sock *, const cJSON *))
{
	cJSON *o, *ids;
	unsigned i, n = 0;

	ids = cJSON_CreateArray();
	if (want_all(r->params)) {
		for (i = 0; i < MAX_WS; i++) {
			struct sock *s = F.socks[i];

			if (s && !s->closing) {
				fn(s, r->params);
				cJSON_AddItemToArray(ids, cJSON_CreateNumber(s->id));
				n++;
			}
		}
	} else {
		struct sock *s = pick_socket(r->params);

		if (!s && !strcmp(pstr(r->params, "socket", "any"), "any"))
			s = sock_newest(0); /* silent sockets too */
		if (s) {
			fn(s, r->params);
			cJSON_AddItemToArray(ids, cJSON_CreateNumber(s->id));
			n++;
		}
	}
	if (!n) {
		cJSON_Delete(ids);
		reply_error(r, 409, "no_socket");
		return;
	}
	o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", 1);
	cJSON_AddNumberToObject(o, "count", n);
	cJSON_AddItemToObject(o, "sockets", ids);
	reply_json(r, 200, o);
}

static void
do_kill(struct sock *s, const cJSON *p)
{
	kill_now(s, !strcmp(pstr(p, "mode", "fin"), "rst"));
}

static void
do_close(struct sock *s, const cJSON *p)
{
	queue_then(s, THEN_CLOSE, (uint16_t)pint(p, "code", 1000, 1000, 4999));
}

static void
do_silent(struct sock *s, const cJSON *p)
{
	int on = (int)pint(p, "on", 1, 0, 1);

	if (on == s->silent)
		return;
	s->silent = on;
	/* stop reading: pings stay unanswered, acks unread, TCP stays open */
	lws_rx_flow_control(s->wsi, on ? 0 : 1);
	if (!on && s->qhead)
		lws_callback_on_writable(s->wsi);
}

static void ctl_disconnect(struct http_req *r) { for_sockets(r, disconnect_one); }
static void ctl_kill(struct http_req *r) { for_sockets(r, do_kill); }
static void ctl_close(struct http_req *r) { for_sockets(r, do_close); }
static void ctl_silent(struct http_req *r) { for_sockets(r, do_silent); }

static void
ctl_fail(struct http_req *r)
{
	const cJSON *p = r->params;
	const char *method = pstr(p, "method", NULL);
	struct fail_rule *f = NULL;
	unsigned i;
	long status = pint(p, "status", 0, 0, 599);
	cJSON *o;

	if (!method || strlen(method) >= sizeof(f->method)) {
		reply_error(r, 400, "method_required");
		return;
	}
	for (i = 0; i < FAIL_RULES; i++)
		if (!strcmp(F.fails[i].method, method) || F.fails[i].remaining <= 0) {
			f = &F.fails[i];
			break;
		}
	if (!f) {
		reply_error(r, 409, "too_many_rules");
		return;
	}
	memset(f, 0, sizeof(*f));
	copystr(f->method, sizeof(f->method), method);
	f->remaining = (int)pint(p, "count", 1, 0, 1000000);
	copystr(f->error, sizeof(f->error),
		pstr(p, "error", status == 429 ? "ratelimited" : "internal_error"));
	if (!status)
		status = !strcmp(f->error, "ratelimited") ? 429 : 200;
	f->status = (int)status;
	f->retry_after = (int)pint(p, "retry_after", 1, 0, 3600);
	f->html = !strcmp(pstr(p, "body", "json"), "html");
	o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", 1);
	cJSON_AddStringToObject(o, "method", f->method);
	cJSON_AddNumberToObject(o, "count", f->remaining);
	cJSON_AddNumberToObject(o, "status", f->status);
	cJSON_AddStringToObject(o, "error", f->error);
	reply_json(r, 200, o);
}

static void
ctl_user(struct http_req *r)
{
	const cJSON *p = r->params;
	const char *id = pstr(p, "id", NULL);
	struct user *u = NULL;
	unsigned i;

	if (!id || !*id || strlen(id) >= sizeof(u->id)) {
		reply_error(r, 400, "id_required");
		return;
	}
	for (i = 0; i < F.nusers; i++)
		if (!strcmp(F.users[i].id, id))
			u = &F.users[i];
	if (!u) {
		if (F.nusers >= USERS_MAX) {
			reply_error(r, 409, "too_many_users");
			return;
		}
		u = &F.users[F.nusers++];
	}
	memset(u, 0, sizeof(*u));
	copystr(u->id, sizeof(u->id), id);
	copystr(u->team_id, sizeof(u->team_id), pstr(p, "team_id", F.cfg.team_id));
	copystr(u->name, sizeof(u->name), pstr(p, "name", id));
	copystr(u->real_name, sizeof(u->real_name), pstr(p, "real_name", id));
	copystr(u->email, sizeof(u->email), pstr(p, "email", ""));
	u->is_bot = (int)pint(p, "is_bot", 0, 0, 1);
	reply_json(r, 200, user_json(u));
}

static void
cfg_str(char *dst, size_t n, const cJSON *p, const char *k)
{
	const char *v = pstr(p, k, NULL);

	if (v)
		copystr(dst, n, v);
}

static void
ctl_config(struct http_req *r)
{
	const cJSON *p = r->params;
	struct config *c = &F.cfg;
	cJSON *o;

	cfg_str(c->app_token, sizeof(c->app_token), p, "app_token");
	cfg_str(c->bot_token, sizeof(c->bot_token), p, "bot_token");
	cfg_str(c->app_id, sizeof(c->app_id), p, "app_id");
	{
		/* a host name or IPv4 literal only: it is pasted into a URL */
		const char *h = pstr(p, "ws_host", NULL);

		if (h && *h && strlen(h) < sizeof(c->ws_host) &&
		    strspn(h, "abcdefghijklmnopqrstuvwxyz"
			      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == strlen(h))
			copystr(c->ws_host, sizeof(c->ws_host), h);
	}
	c->max_sockets = (int)pint(p, "max_sockets", c->max_sockets, 1, MAX_WS);
	c->too_many_next = (int)pint(p, "too_many_next", c->too_many_next, 0, 1000);
	c->ticket_ttl_s = (int)pint(p, "ticket_ttl_s", c->ticket_ttl_s, 1, 86400);
	c->ack_limit = (int)pint(p, "ack_limit", c->ack_limit, 16, (long)MAX_RX_MSG);
	c->ack_limit_close = (int)pint(p, "ack_limit_close", c->ack_limit_close, 0, 1);
	c->blockkit_enforce = (int)pint(p, "blockkit_enforce", c->blockkit_enforce, 0, 1);
	c->approx_conn_time = (int)pint(p, "approximate_connection_time",
					c->approx_conn_time, 1, 1000000);
	if (cJSON_GetObjectItemCaseSensitive(p, "ping_ms")) {
		c->ping_ms = (int)pint(p, "ping_ms", 0, 0, 3600000);
		lws_sul_cancel(&F.sul_ping);
		if (c->ping_ms)
			lws_sul_schedule(F.ctx, 0, &F.sul_ping, ping_cb,
					 (lws_usec_t)c->ping_ms * LWS_US_PER_MS);
	}
	o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", 1);
	cJSON_AddStringToObject(o, "app_id", c->app_id);
	cJSON_AddStringToObject(o, "ws_host", c->ws_host);
	cJSON_AddNumberToObject(o, "max_sockets", c->max_sockets);
	cJSON_AddNumberToObject(o, "too_many_next", c->too_many_next);
	cJSON_AddNumberToObject(o, "ticket_ttl_s", c->ticket_ttl_s);
	cJSON_AddNumberToObject(o, "ack_limit", c->ack_limit);
	cJSON_AddNumberToObject(o, "ack_limit_close", c->ack_limit_close);
	cJSON_AddNumberToObject(o, "blockkit_enforce", c->blockkit_enforce);
	cJSON_AddNumberToObject(o, "ping_ms", c->ping_ms);
	cJSON_AddNumberToObject(o, "approximate_connection_time", c->approx_conn_time);
	reply_json(r, 200, o);
}

/* Server pings to every live socket (Slack pings; interval undocumented). */
static void
ping_cb(lws_sorted_usec_list_t *sul)
{
	unsigned i;

	(void)sul;
	for (i = 0; i < MAX_WS; i++) {
		struct sock *s = F.socks[i];
		struct outmsg *m;

		if (!sock_live(s))
			continue;
		m = om_new(OM_PING, "fake-slack", 10);
		if (m && !sock_enqueue(s, m))
			F.st.pings_sent++;
	}
	if (F.cfg.ping_ms && !F.stopping)
		lws_sul_schedule(F.ctx, 0, &F.sul_ping, ping_cb,
				 (lws_usec_t)F.cfg.ping_ms * LWS_US_PER_MS);
}

static cJSON *
stats_json(void)
{
	cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray(), *rec;
	unsigned i, live = 0, silent = 0;
	uint64_t now = fs_now_ns();

	for (i = 0; i < MAX_WS; i++) {
		struct sock *s = F.socks[i];
		cJSON *so;

		if (!s)
			continue;
		live += (unsigned)sock_live(s);
		silent += (unsigned)s->silent;
		so = cJSON_CreateObject();
		cJSON_AddNumberToObject(so, "id", s->id);
		cJSON_AddStringToObject(so, "state",
			s->refused ? "refused" : s->closing ? "closing" :
			s->silent ? "silent" : s->hello ? "live" : "connecting");
		cJSON_AddNumberToObject(so, "age_ms", (double)((now - s->t_open_ns) / 1000000u));
		cJSON_AddNumberToObject(so, "envelopes_sent", (double)s->env_sent);
		cJSON_AddNumberToObject(so, "acks", (double)s->acks);
		cJSON_AddNumberToObject(so, "frames_in", (double)s->frames_in);
		cJSON_AddNumberToObject(so, "queued", s->qcount);
		cJSON_AddNumberToObject(so, "blackholed", (double)s->blackholed);
		cJSON_AddItemToArray(arr, so);
	}
	cJSON_AddBoolToObject(o, "ok", 1);
	cJSON_AddNumberToObject(o, "port", F.port);
	cJSON_AddNumberToObject(o, "uptime_ms", (double)((now - F.t_start_ns) / 1000000u));
	cJSON_AddNumberToObject(o, "sockets_open", socks_open());
	cJSON_AddNumberToObject(o, "sockets_live", live);
	cJSON_AddNumberToObject(o, "sockets_silent", silent);
	cJSON_AddNumberToObject(o, "sockets_total", (double)F.st.sockets_total);
	cJSON_AddNumberToObject(o, "sockets_closed", (double)F.st.sockets_closed);
	cJSON_AddNumberToObject(o, "sockets_refused", (double)F.st.sockets_refused);
	cJSON_AddNumberToObject(o, "hellos_sent", (double)F.st.hellos);
	cJSON_AddNumberToObject(o, "connections_open_calls", (double)F.st.conn_open_calls);
	cJSON_AddNumberToObject(o, "connections_open_ok", (double)F.st.conn_open_ok);
	cJSON_AddNumberToObject(o, "connections_open_errors", (double)F.st.conn_open_err);
	cJSON_AddNumberToObject(o, "tickets_rejected", (double)F.st.tickets_rejected);
	cJSON_AddNumberToObject(o, "envelopes_sent", (double)F.st.envelopes_sent);
	cJSON_AddNumberToObject(o, "acks", (double)F.st.acks);
	cJSON_AddNumberToObject(o, "acks_unknown", (double)F.st.acks_unknown);
	cJSON_AddNumberToObject(o, "acks_duplicate", (double)F.st.acks_dup);
	cJSON_AddNumberToObject(o, "acks_oversize", (double)F.st.acks_oversize);
	cJSON_AddNumberToObject(o, "bad_frames", (double)F.st.bad_frames);
	cJSON_AddNumberToObject(o, "binary_frames_in", (double)F.st.binary_in);
	cJSON_AddNumberToObject(o, "rx_discarded", (double)F.st.rx_discarded);
	cJSON_AddStringToObject(o, "last_bad_frame", F.last_bad_frame);
	cJSON_AddNumberToObject(o, "disconnects_sent", (double)F.st.disconnects_sent);
	cJSON_AddNumberToObject(o, "kills", (double)F.st.kills);
	cJSON_AddNumberToObject(o, "pings_sent", (double)F.st.pings_sent);
	cJSON_AddNumberToObject(o, "untracked_envelopes", (double)F.st.untracked);
	cJSON_AddNumberToObject(o, "queue_full", (double)F.st.queue_full);
	cJSON_AddNumberToObject(o, "api_calls", (double)F.st.api_calls);
	cJSON_AddNumberToObject(o, "blockkit_violations", (double)F.st.blockkit_violations);
	cJSON_AddNumberToObject(o, "blockkit_bad_messages", (double)F.st.blockkit_messages);
	cJSON_AddNumberToObject(o, "http_requests", (double)F.st.http_requests);
	rec = cJSON_AddObjectToObject(o, "recorded");
	{
		cJSON *a = cJSON_AddObjectToObject(rec, "acks");
		cJSON *c = cJSON_AddObjectToObject(rec, "calls");

		cJSON_AddNumberToObject(a, "next", (double)F.ack_seq);
		cJSON_AddNumberToObject(a, "dropped", (double)F.acks_dropped);
		cJSON_AddNumberToObject(c, "next", (double)F.call_seq);
		cJSON_AddNumberToObject(c, "dropped", (double)F.calls_dropped);
		cJSON_AddNumberToObject(rec, "tracker_evicted",
					(double)fs_track_evicted(F.track));
	}
	cJSON_AddItemToObject(o, "sockets", arr);
	return o;
}

static void
ctl_stats(struct http_req *r)
{
	reply_json(r, 200, stats_json());
}

static void
ctl_acks(struct http_req *r)
{
	const cJSON *p = r->params;
	uint64_t first = F.ack_seq > ACK_RING ? F.ack_seq - ACK_RING : 0;
	uint64_t since = (uint64_t)pint(p, "since", 0, 0, LONG_MAX), seq;
	long limit = pint(p, "limit", 1000, 1, LIST_LIMIT_MAX);
	long sockf = pint(p, "socket", 0, 0, UINT32_MAX);
	const char *idf = pstr(p, "envelope_id", NULL);
	cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray();
	long n = 0;

	if (since < first)
		since = first;
	for (seq = since; seq < F.ack_seq && n < limit; seq++) {
		const struct ack_rec *a = &F.acks[seq % ACK_RING];
		cJSON *e;

		if (sockf && a->socket_id != (uint32_t)sockf)
			continue;
		if (idf && strcmp(idf, a->id))
			continue;
		e = cJSON_CreateObject();
		cJSON_AddNumberToObject(e, "seq", (double)a->seq);
		cJSON_AddStringToObject(e, "envelope_id", a->id);
		cJSON_AddNumberToObject(e, "socket", a->socket_id);
		cJSON_AddBoolToObject(e, "known", a->known);
		cJSON_AddBoolToObject(e, "duplicate", a->dup);
		cJSON_AddBoolToObject(e, "oversize", a->oversize);
		cJSON_AddNumberToObject(e, "bytes", a->len);
		if (a->t_sent_ns && a->t_ack_ns >= a->t_sent_ns)
			cJSON_AddNumberToObject(e, "rtt_us", ns_to_us(a->t_ack_ns - a->t_sent_ns));
		else
			cJSON_AddNullToObject(e, "rtt_us");
		cJSON_AddNumberToObject(e, "sent_us", (double)(a->t_sent_ns / 1000u));
		cJSON_AddNumberToObject(e, "ack_us", (double)(a->t_ack_ns / 1000u));
		if (a->payload) {
			cJSON *pl = cJSON_Parse(a->payload);

			cJSON_AddItemToObject(e, "payload", pl ? pl : cJSON_CreateString(a->payload));
		}
		cJSON_AddItemToArray(arr, e);
		n++;
	}
	cJSON_AddBoolToObject(o, "ok", 1);
	cJSON_AddItemToObject(o, "acks", arr);
	cJSON_AddNumberToObject(o, "next", (double)seq);
	cJSON_AddNumberToObject(o, "dropped", (double)F.acks_dropped);
	reply_json(r, 200, o);
}

static cJSON *
call_json(const struct call_rec *c)
{
	cJSON *e = cJSON_CreateObject();

	cJSON_AddNumberToObject(e, "seq", (double)c->seq);
	cJSON_AddStringToObject(e, "method", c->method);
	cJSON_AddNumberToObject(e, "t_us", (double)(c->t_ns / 1000u));
	cJSON_AddNumberToObject(e, "http_status", c->http_status);
	cJSON_AddStringToObject(e, "token_type", c->token_type);
	cJSON_AddStringToObject(e, "token_source", c->token_source);
	cJSON_AddStringToObject(e, "content_type", c->content_type);
	cJSON_AddBoolToObject(e, "ok", c->ok);
	if (c->error[0])
		cJSON_AddStringToObject(e, "error", c->error);
	if (c->body) {
		cJSON *b = cJSON_Parse(c->body);

		cJSON_AddItemToObject(e, "body", b ? b : cJSON_CreateNull());
	}
	cJSON_AddNumberToObject(e, "violations", c->nviolations);
	if (c->violations) {
		cJSON *v = cJSON_Parse(c->violations);

		if (v)
			cJSON_AddItemToObject(e, "violation_messages", v);
	}
	return e;
}

static void
ctl_calls(struct http_req *r)
{
	const cJSON *p = r->params;
	uint64_t first = call_first_seq();
	uint64_t since = (uint64_t)pint(p, "since", 0, 0, LONG_MAX), seq;
	long limit = pint(p, "limit", 1000, 1, LIST_LIMIT_MAX);
	const char *mf = pstr(p, "method", NULL);
	int only_bad = (int)pint(p, "violations", 0, 0, 1);
	cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray();
	long n = 0;

	if (since < first)
		since = first;
	for (seq = since; seq < F.call_seq && n < limit; seq++) {
		const struct call_rec *c = &F.calls[seq % CALL_RING];

		if (mf && strcmp(mf, c->method))
			continue;
		if (only_bad && !c->nviolations)
			continue;
		cJSON_AddItemToArray(arr, call_json(c));
		n++;
	}
	cJSON_AddBoolToObject(o, "ok", 1);
	cJSON_AddItemToObject(o, "calls", arr);
	cJSON_AddNumberToObject(o, "next", (double)seq);
	cJSON_AddNumberToObject(o, "dropped", (double)F.calls_dropped);
	reply_json(r, 200, o);
}

/* Block Kit summary: totals and the violation messages still recorded. */
static void
ctl_blockkit(struct http_req *r)
{
	cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray();
	uint64_t seq;

	for (seq = call_first_seq(); seq < F.call_seq; seq++) {
		const struct call_rec *c = &F.calls[seq % CALL_RING];
		cJSON *e, *v;

		if (!c->nviolations)
			continue;
		e = cJSON_CreateObject();
		cJSON_AddNumberToObject(e, "call_seq", (double)c->seq);
		cJSON_AddStringToObject(e, "method", c->method);
		cJSON_AddNumberToObject(e, "count", c->nviolations);
		v = c->violations ? cJSON_Parse(c->violations) : NULL;
		cJSON_AddItemToObject(e, "messages", v ? v : cJSON_CreateArray());
		cJSON_AddItemToArray(arr, e);
	}
	cJSON_AddBoolToObject(o, "ok", 1);
	cJSON_AddNumberToObject(o, "violations", (double)F.st.blockkit_violations);
	cJSON_AddNumberToObject(o, "bad_messages", (double)F.st.blockkit_messages);
	cJSON_AddItemToObject(o, "calls", arr);
	reply_json(r, 200, o);
}

/* ---- burst (ack benchmark) ----------------------------------------------- */

static const char *
burst_state_name(enum burst_state s)
{
	switch (s) {
	case B_IDLE: return "idle";
	case B_RUNNING: return "running";
	case B_DONE: return "done";
	case B_TIMEOUT: return "timeout";
	case B_ABORTED: return "aborted";
	}
	return "?";
}

static cJSON *
burst_json(void)
{
	struct burst *b = &F.burst;
	cJSON *o = cJSON_CreateObject(), *rtt;
	uint64_t end = b->state == B_RUNNING ? fs_now_ns() : b->t_end_ns;
	uint64_t el = b->t_start_ns && end > b->t_start_ns ? end - b->t_start_ns : 0;
	uint64_t sum = 0;
	uint32_t i;

	cJSON_AddBoolToObject(o, "ok", b->state == B_DONE || b->state == B_RUNNING);
	cJSON_AddStringToObject(o, "state", burst_state_name(b->state));
	if (b->why[0])
		cJSON_AddStringToObject(o, "error", b->why);
	cJSON_AddNumberToObject(o, "n", b->n);
	cJSON_AddNumberToObject(o, "window", b->window);
	cJSON_AddStringToObject(o, "type", b->evtype);
	cJSON_AddNumberToObject(o, "sent", b->sent);
	cJSON_AddNumberToObject(o, "acked", b->acked);
	cJSON_AddNumberToObject(o, "lost", b->lost);
	cJSON_AddNumberToObject(o, "elapsed_us", ns_to_us(el));
	cJSON_AddNumberToObject(o, "acks_per_s",
				el ? (double)(uint64_t)((double)b->acked * 1e9 / (double)el) : 0);
	rtt = cJSON_AddObjectToObject(o, "rtt_us");
	if (b->state != B_RUNNING && b->acked && b->rtt) {
		/* sorted in burst_finish */
		for (i = 0; i < b->acked; i++)
			sum += b->rtt[i];
		cJSON_AddNumberToObject(rtt, "min", ns_to_us(b->rtt[0]));
		cJSON_AddNumberToObject(rtt, "p50", ns_to_us(fs_pct(b->rtt, b->acked, 50)));
		cJSON_AddNumberToObject(rtt, "p90", ns_to_us(fs_pct(b->rtt, b->acked, 90)));
		cJSON_AddNumberToObject(rtt, "p99", ns_to_us(fs_pct(b->rtt, b->acked, 99)));
		cJSON_AddNumberToObject(rtt, "p999", ns_to_us(fs_pct(b->rtt, b->acked, 99.9)));
		cJSON_AddNumberToObject(rtt, "max", ns_to_us(b->rtt[b->acked - 1]));
		cJSON_AddNumberToObject(rtt, "mean", ns_to_us(sum / b->acked));
	}
	return o;
}

static void
burst_finish(enum burst_state st, const char *why)
{
	struct burst *b = &F.burst;

	if (b->state != B_RUNNING)
		return;
	b->state = st;
	b->t_end_ns = fs_now_ns();
	copystr(b->why, sizeof(b->why), why);
	lws_sul_cancel(&b->sul);
	fs_sort_u64(b->rtt, b->acked);
	if (b->waiter) {
		struct http_req *w = b->waiter;

		b->waiter = NULL;
		reply_json(w, 200, burst_json());
	}
}

static void
burst_timeout_cb(lws_sorted_usec_list_t *sul)
{
	(void)sul;
	burst_finish(B_TIMEOUT, "timeout");
}

static void
burst_pump(void)
{
	struct burst *b = &F.burst;
	unsigned guard = 0;

	if (F.stopping)
		return;
	while (b->state == B_RUNNING && b->inflight < b->window && b->sent < b->n &&
	       guard++ < 100000) {
		struct sock *s = b->target ? sock_by_id(b->target) : sock_any();
		char id[FS_ID_MAX], ev[24], txt[1024], ts[32];
		struct fs_track_ent *e;
		int n;

		if (s && !sock_live(s))
			s = NULL;
		if (!s) {
			if (!b->inflight)
				burst_finish(B_ABORTED, "no_socket");
			return;
		}
		snprintf(id, sizeof(id), "%08x-%04x-4%03x-8%03x-%012x", b->gen,
			 (b->sent >> 24) & 0xffff, (b->sent >> 12) & 0xfff,
			 b->sent & 0xfff, b->sent);
		snprintf(ev, sizeof(ev), "Ev%02X%08X", b->gen & 0xff, b->sent);
		make_ts(ts);
		if (!strcmp(b->evtype, "message_im"))
			n = snprintf(txt, sizeof(txt),
				"{\"envelope_id\":\"%s\",\"payload\":{\"token\":\"fakeVerificationTok\","
				"\"team_id\":\"%s\",\"api_app_id\":\"%s\",\"event\":{\"client_msg_id\":\"%s\","
				"\"type\":\"message\",\"text\":\"help\",\"user\":\"U0001\",\"ts\":\"%s\","
				"\"team\":\"%s\",\"channel\":\"D0001\",\"event_ts\":\"%s\",\"channel_type\":\"im\"},"
				"\"type\":\"event_callback\",\"event_id\":\"%s\",\"event_time\":%ld,"
				"\"authorizations\":[{\"enterprise_id\":null,\"team_id\":\"%s\",\"user_id\":\"%s\","
				"\"is_bot\":true,\"is_enterprise_install\":false}],\"is_ext_shared_channel\":false},"
				"\"type\":\"events_api\",\"accepts_response_payload\":false,"
				"\"retry_attempt\":0,\"retry_reason\":\"\"}",
				id, F.cfg.team_id, F.cfg.app_id, id, ts, F.cfg.team_id, ts, ev,
				(long)time(NULL), F.cfg.team_id, F.cfg.bot_user_id);
		else
			n = snprintf(txt, sizeof(txt),
				"{\"envelope_id\":\"%s\",\"payload\":{\"token\":\"fakeVerificationTok\","
				"\"team_id\":\"%s\",\"api_app_id\":\"%s\",\"event\":{\"type\":\"reaction_added\","
				"\"user\":\"U0001\",\"reaction\":\"thumbsup\",\"item\":{\"type\":\"message\","
				"\"channel\":\"C0001\",\"ts\":\"%s\"},\"item_user\":\"%s\",\"event_ts\":\"%s\"},"
				"\"type\":\"event_callback\",\"event_id\":\"%s\",\"event_time\":%ld,"
				"\"authorizations\":[{\"enterprise_id\":null,\"team_id\":\"%s\",\"user_id\":\"%s\","
				"\"is_bot\":true,\"is_enterprise_install\":false}],\"is_ext_shared_channel\":false},"
				"\"type\":\"events_api\",\"accepts_response_payload\":false,"
				"\"retry_attempt\":0,\"retry_reason\":\"\"}",
				id, F.cfg.team_id, F.cfg.app_id, ts, F.cfg.bot_user_id, ts, ev,
				(long)time(NULL), F.cfg.team_id, F.cfg.bot_user_id);
		if (n <= 0 || (size_t)n >= sizeof(txt)) {
			burst_finish(B_ABORTED, "template");
			return;
		}
		e = fs_track_put(F.track, id);
		if (!e) {
			burst_finish(B_ABORTED, "tracker");
			return;
		}
		e->socket_id = s->id;
		e->burst = 1;
		e->acked = 0;
		e->t_sent_ns = 0;
		if (sock_send_text(s, txt, (size_t)n, 0, id)) {
			burst_finish(B_ABORTED, "queue_full");
			return;
		}
		s->burst_inflight++;
		b->sent++;
		b->inflight++;
	}
}

static void
burst_on_ack(struct sock *s, uint64_t rtt_ns)
{
	struct burst *b = &F.burst;

	if (s->burst_inflight)
		s->burst_inflight--;
	if (b->state != B_RUNNING)
		return;
	if (b->inflight)
		b->inflight--;
	if (b->acked < b->n)
		b->rtt[b->acked++] = rtt_ns;
	if (b->acked >= b->n)
		burst_finish(B_DONE, "");
	else
		burst_pump();
}

static void
ctl_burst(struct http_req *r)
{
	const cJSON *p = r->params;
	struct burst *b = &F.burst;
	long n, timeout_ms;

	if (!r->is_post) {
		reply_json(r, 200, burst_json());
		return;
	}
	if (b->state == B_RUNNING) {
		reply_error(r, 409, "burst_running");
		return;
	}
	n = pint(p, "n", 1000, 1, BURST_MAX);
	free(b->rtt);
	memset(b, 0, sizeof(*b));
	b->rtt = calloc((size_t)n, sizeof(*b->rtt));
	if (!b->rtt) {
		reply_error(r, 500, "oom");
		return;
	}
	b->n = (uint32_t)n;
	b->window = (uint32_t)pint(p, "window", 256, 1, 65536);
	b->target = !strcmp(pstr(p, "socket", "any"), "any") ? 0 :
		(uint32_t)pint(p, "socket", 0, 0, UINT32_MAX);
	copystr(b->evtype, sizeof(b->evtype), pstr(p, "type", "noop"));
	if (strcmp(b->evtype, "noop") && strcmp(b->evtype, "message_im")) {
		reply_error(r, 400, "type_must_be_noop_or_message_im");
		return;
	}
	timeout_ms = pint(p, "timeout_ms", 60000, 1, 3600000);
	fs_random(&b->gen, sizeof(b->gen));
	b->state = B_RUNNING;
	b->t_start_ns = fs_now_ns();
	if (pint(p, "wait", 1, 0, 1)) {
		b->waiter = r;
		r->state = RQ_DEFERRED;
		/* the reply comes when the burst ends; lws must not time us out */
		lws_set_timeout(r->wsi, NO_PENDING_TIMEOUT, 0);
	}
	lws_sul_schedule(F.ctx, 0, &b->sul, burst_timeout_cb,
			 (lws_usec_t)timeout_ms * LWS_US_PER_MS);
	burst_pump();
	if (!b->waiter && r->state != RQ_REPLYING)
		reply_json(r, 200, burst_json());
}

/* ---- reset, health, shutdown ------------------------------------------- */

static void
defaults_users(void)
{
	static const struct user def[] = {
		{ "UBOT", "T0001", "workbot", "Workbot", "", 1 },
		{ "U0001", "T0001", "jane", "Jane Doe", "jane@acme.com", 0 },
		{ "U0002", "T0001", "john", "John Smith", "john@acme.com", 0 },
		{ "W0003", "T0999", "guest", "Gus Guest", "gus@other.example", 0 },
	};
	size_t i;

	F.nusers = 0;
	for (i = 0; i < sizeof(def) / sizeof(def[0]); i++)
		F.users[F.nusers++] = def[i];
	copystr(F.users[0].id, sizeof(F.users[0].id), F.cfg.bot_user_id);
	copystr(F.users[0].team_id, sizeof(F.users[0].team_id), F.cfg.team_id);
	copystr(F.users[1].team_id, sizeof(F.users[1].team_id), F.cfg.team_id);
	copystr(F.users[2].team_id, sizeof(F.users[2].team_id), F.cfg.team_id);
}

static void
clear_records(void)
{
	uint64_t i;

	for (i = 0; i < ACK_RING; i++) {
		free(F.acks[i].payload);
		F.acks[i].payload = NULL;
	}
	for (i = 0; i < CALL_RING; i++) {
		free(F.calls[i].body);
		free(F.calls[i].violations);
		memset(&F.calls[i], 0, sizeof(F.calls[i]));
	}
	F.ack_seq = F.acks_dropped = 0;
	F.call_seq = F.calls_dropped = 0;
	F.call_bytes = 0;
}

static void
ctl_reset(struct http_req *r)
{
	unsigned i;
	cJSON *o;

	if (F.burst.state == B_RUNNING)
		burst_finish(B_ABORTED, "reset");
	if (!strcmp(pstr(r->params, "sockets", "keep"), "kill"))
		for (i = 0; i < MAX_WS; i++)
			if (F.socks[i] && !F.socks[i]->closing)
				kill_now(F.socks[i], 0);
	clear_records();
	fs_track_clear(F.track);
	memset(F.fails, 0, sizeof(F.fails));
	memset(&F.st, 0, sizeof(F.st));
	F.last_bad_frame[0] = '\0';
	lws_sul_cancel(&F.sul_ping);
	F.cfg = F.cfg_initial;
	defaults_users();
	o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", 1);
	reply_json(r, 200, o);
}

static void
ctl_health(struct http_req *r)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddBoolToObject(o, "ok", 1);
	cJSON_AddNumberToObject(o, "port", F.port);
	reply_json(r, 200, o);
}

static void
stop_cb(lws_sorted_usec_list_t *sul)
{
	(void)sul;
	atomic_store(&g_stop, 1);
	/* ripe timers run before lws's poll: wake it so the loop sees the flag */
	lws_cancel_service(F.ctx);
}

/* Answer first, stop 200 ms later (the reply needs the loop to leave). */
static void
ctl_shutdown(struct http_req *r)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddBoolToObject(o, "ok", 1);
	reply_json(r, 200, o);
	lws_sul_schedule(F.ctx, 0, &F.sul_stop, stop_cb, 200 * LWS_US_PER_MS);
}

static const struct route {
	const char *name;
	int post_only;
	void (*fn)(struct http_req *);
} ctl_routes[] = {
	{ "push", 1, ctl_push },
	{ "disconnect", 1, ctl_disconnect },
	{ "kill", 1, ctl_kill },
	{ "close", 1, ctl_close },
	{ "silent", 1, ctl_silent },
	{ "fail", 1, ctl_fail },
	{ "user", 1, ctl_user },
	{ "config", 1, ctl_config },
	{ "reset", 1, ctl_reset },
	{ "burst", 0, ctl_burst },
	{ "stats", 0, ctl_stats },
	{ "acks", 0, ctl_acks },
	{ "calls", 0, ctl_calls },
	{ "blockkit", 0, ctl_blockkit },
	{ "health", 0, ctl_health },
	{ "shutdown", 1, ctl_shutdown },
};

static void
handle_control(struct http_req *r, const char *name)
{
	size_t i;

	/* control params may also come as a JSON object or form body */
	if (r->body.len && strcmp(pstr(r->params, "type", ""), "raw")) {
		const char *ct = "none";
		cJSON *b = parse_body(r, &ct);

		if (b)
			merge_params(r->params, b);
		cJSON_Delete(b);
	}
	for (i = 0; i < sizeof(ctl_routes) / sizeof(ctl_routes[0]); i++) {
		if (strcmp(name, ctl_routes[i].name))
			continue;
		if (ctl_routes[i].post_only && !r->is_post) {
			reply_error(r, 405, "use_post");
			return;
		}
		ctl_routes[i].fn(r);
		return;
	}
	reply_error(r, 404, "unknown_control_route");
}

static void
dispatch(struct http_req *r)
{
	F.st.http_requests++;
	vlog("%s %s", r->is_post ? "POST" : "GET", r->path);
	if (!strncmp(r->path, "/api/", 5))
		handle_api(r, r->path + 5);
	else if (!strncmp(r->path, "/response/", 10))
		handle_response_url(r, r->path + 10);
	else if (!strncmp(r->path, "/_control/", 10))
		handle_control(r, r->path + 10);
	else
		reply_error(r, 404, "not_found");
}

/* ---- WebSocket receive ------------------------------------------------- */

static int
ws_message(struct sock *s, const char *buf, size_t len)
{
	uint64_t now = fs_now_ns();
	const cJSON *id, *pl;
	cJSON *o;
	struct fs_track_ent *e;
	char *ptxt = NULL;
	int dup = 0, oversize = (int)len > F.cfg.ack_limit;

	s->frames_in++;
	o = cJSON_ParseWithLength(buf, len);
	id = cJSON_GetObjectItemCaseSensitive(o, "envelope_id");
	if (!cJSON_IsString(id) || !*id->valuestring) {
		F.st.bad_frames++;
		snprintf(F.last_bad_frame, sizeof(F.last_bad_frame), "%.*s",
			 (int)(len > 100 ? 100 : len), buf);
		cJSON_Delete(o);
		goto size_check;
	}
	e = fs_track_get(F.track, id->valuestring, strlen(id->valuestring));
	if (e) {
		dup = e->acked;
		e->acked = 1;
	}
	F.st.acks++;
	s->acks++;
	if (!e)
		F.st.acks_unknown++;
	if (dup)
		F.st.acks_dup++;
	if (e && e->burst && !dup && e->t_sent_ns) {
		burst_on_ack(s, now - e->t_sent_ns);
	} else {
		pl = cJSON_GetObjectItemCaseSensitive(o, "payload");
		if (pl)
			ptxt = cJSON_PrintUnformatted(pl);
		record_ack(s, id->valuestring, e, dup, oversize, (uint32_t)len, ptxt, now);
		cJSON_free(ptxt);
	}
	cJSON_Delete(o);
size_check:
	if (oversize) {
		static const char msg[] = "Max frame length of 20480 has been exceeded.";

		F.st.acks_oversize++;
		if (F.cfg.ack_limit_close) {
			lws_close_reason(s->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
					 (unsigned char *)msg, sizeof(msg) - 1);
			s->closing = 1;
			return -1;
		}
	}
	return 0;
}

static int
ws_receive(struct sock *s, struct lws *wsi, const void *in, size_t len)
{
	int r = 0;

	if (s->silent)
		return 0;
	if (lws_frame_is_binary(wsi)) {
		if (lws_is_final_fragment(wsi))
			F.st.binary_in++;
		return 0;
	}
	if (!s->rx_discard && fs_buf_add(&s->rx, in, len)) {
		s->rx_discard = 1;
		F.st.rx_discarded++;
		fs_buf_free(&s->rx);
	}
	if (!lws_is_final_fragment(wsi))
		return 0;
	if (!s->rx_discard)
		r = ws_message(s, s->rx.p ? s->rx.p : "", s->rx.len);
	s->rx_discard = 0;
	s->rx.len = 0;
	if (s->rx.cap > 65536)
		fs_buf_free(&s->rx); /* don't keep a big buffer per socket */
	return r;
}

static int
ws_writeable(struct sock *s, struct lws *wsi)
{
	int budget = WRITES_PER_CB;

	if (s->silent)
		return 0;
	while (s->qhead && budget-- > 0) {
		struct outmsg *m = s->qhead;

		if (m->kind == OM_CLOSE) {
			s->qhead = m->next;
			if (!s->qhead)
				s->qtail = NULL;
			s->qcount--;
			lws_close_reason(wsi, (enum lws_close_status)m->close_code, NULL, 0);
			free(m);
			s->closing = 1;
			return -1;
		}
		if (m->kind == OM_KILL) {
			s->qhead = m->next;
			if (!s->qhead)
				s->qtail = NULL;
			s->qcount--;
			free(m);
			kill_now(s, 0);
			return 0;
		}
		if (m->kind == OM_PING) {
			if (lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_PING) < 0)
				return -1;
		} else {
			size_t chunk = m->len - m->off;
			int base = m->kind == OM_BINARY ? LWS_WRITE_BINARY : LWS_WRITE_TEXT;
			int flags;

			if (m->frag && chunk > m->frag)
				chunk = m->frag;
			if (m->track && m->off + chunk == m->len) {
				/* stamp before the last write: the ack cannot beat it */
				struct fs_track_ent *e =
					fs_track_get(F.track, m->id, strlen(m->id));

				if (e)
					e->t_sent_ns = fs_now_ns();
				F.st.envelopes_sent++;
				s->env_sent++;
			}
			flags = lws_write_ws_flags(base, m->off == 0, m->off + chunk == m->len);
			if (lws_write(wsi, m->buf + LWS_PRE + m->off, chunk,
				      (enum lws_write_protocol)flags) < (int)chunk)
				return -1;
			m->off += chunk;
			if (m->off < m->len) {
				/* one fragment per callback: come back for the next */
				lws_callback_on_writable(wsi);
				return 0;
			}
		}
		s->qhead = m->next;
		if (!s->qhead)
			s->qtail = NULL;
		s->qbytes -= m->len;
		s->qcount--;
		free(m);
		if (lws_partial_buffered(wsi))
			break;
	}
	if (s->qhead)
		lws_callback_on_writable(wsi);
	return 0;
}

/* ---- the protocol callback --------------------------------------------- */

static int
confirm_upgrade(struct lws *wsi)
{
	char uri[256], buf[128];
	const char *ticket;
	struct ticket *t;

	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 ||
	    strncmp(uri, "/link", 5)) {
		lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
		return 1;
	}
	if (socks_open() >= MAX_WS) {
		lws_return_http_status(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, NULL);
		return 1;
	}
	ticket = lws_get_urlarg_by_name(wsi, "ticket=", buf, sizeof(buf));
	t = ticket ? ticket_find(ticket) : NULL;
	if (!t || t->used ||
	    fs_now_ns() - t->t_issued_ns > (uint64_t)F.cfg.ticket_ttl_s * 1000000000u) {
		F.st.tickets_rejected++;
		if (t)
			t->used = 1;
		vlog("refused ticket (%s)", !t ? "unknown" : "used or expired");
		/* like Slack refusing an old URL: 401 and no upgrade */
		lws_return_http_status(wsi, HTTP_STATUS_UNAUTHORIZED, NULL);
		return 1;
	}
	t->used = 1;
	F.upgrade_wsi = wsi;
	copystr(F.upgrade_ticket, sizeof(F.upgrade_ticket), t->id);
	{
		const char *dbg = lws_get_urlarg_by_name(wsi, "debug_reconnects=",
							 buf, sizeof(buf));

		F.upgrade_debug = dbg && !strcmp(dbg, "true");
	}
	return 0;
}

static int
ws_established(struct lws *wsi, struct pss *pss)
{
	struct sock *s;
	unsigned i;

	if (F.upgrade_wsi != wsi)
		return -1; /* not through confirm_upgrade: refuse */
	F.upgrade_wsi = NULL;
	for (i = 0; i < MAX_WS && F.socks[i]; i++)
		;
	if (i == MAX_WS)
		return -1;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	s->id = ++F.next_sock_id;
	s->wsi = wsi;
	s->t_open_ns = fs_now_ns();
	s->debug_reconnects = F.upgrade_debug;
	fs_buf_init(&s->rx, MAX_RX_MSG);
	F.socks[i] = s;
	pss->sock = s;
	F.st.sockets_total++;
	if (F.cfg.too_many_next > 0 || (int)socks_open() > F.cfg.max_sockets) {
		/* Slack: disconnect before hello, then close */
		if (F.cfg.too_many_next > 0)
			F.cfg.too_many_next--;
		s->refused = 1;
		F.st.sockets_refused++;
		send_disconnect(s, "too_many_websockets");
		queue_then(s, THEN_CLOSE, 1000);
		vlog("socket %u refused: too_many_websockets", s->id);
		return 0;
	}
	send_hello(s);
	vlog("socket %u open", s->id);
	return 0;
}

static void
ws_closed(struct pss *pss)
{
	struct sock *s = pss->sock;
	unsigned i;

	if (!s)
		return;
	pss->sock = NULL;
	for (i = 0; i < MAX_WS; i++)
		if (F.socks[i] == s)
			F.socks[i] = NULL;
	F.st.sockets_closed++;
	lws_sul_cancel(&s->sul_then);
	vlog("socket %u closed", s->id);
	if (s->burst_inflight && F.burst.state == B_RUNNING) {
		F.burst.lost += s->burst_inflight;
		F.burst.inflight -= s->burst_inflight < F.burst.inflight ?
			s->burst_inflight : F.burst.inflight;
		s->burst_inflight = 0;
		burst_pump();
	}
	free_queue(s);
	fs_buf_free(&s->rx);
	free(s);
}

static int
http_start(struct lws *wsi, struct pss *pss, const char *path)
{
	struct http_req *r;
	char buf[1024];
	int n, i;

	req_free(pss->req);
	pss->req = r = calloc(1, sizeof(*r));
	if (!r)
		return -1;
	r->wsi = wsi;
	r->state = RQ_READING;
	fs_buf_init(&r->body, MAX_HTTP_BODY);
	copystr(r->path, sizeof(r->path), path);
	r->is_post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
	if (!r->is_post && !lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI)) {
		reply_error(r, 405, "method_not_allowed");
		return 0;
	}
	r->params = cJSON_CreateObject();
	for (i = 0; i < 64; i++) {
		char *eq;

		n = lws_hdr_copy_fragment(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_URI_ARGS, i);
		if (n <= 0)
			break;
		eq = strchr(buf, '=');
		if (eq)
			*eq = '\0';
		if (!buf[0] || cJSON_GetObjectItemCaseSensitive(r->params, buf))
			continue;
		cJSON_AddStringToObject(r->params, buf, eq ? eq + 1 : "");
	}
	if (lws_hdr_copy(wsi, r->auth, sizeof(r->auth), WSI_TOKEN_HTTP_AUTHORIZATION) < 0)
		r->auth[0] = '\0';
	if (lws_hdr_copy(wsi, r->ctype, sizeof(r->ctype), WSI_TOKEN_HTTP_CONTENT_TYPE) < 0)
		r->ctype[0] = '\0';
	if (lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
		r->clen = strtoul(buf, NULL, 10);
	if (r->clen > MAX_HTTP_BODY) {
		reply_error(r, 413, "body_too_large");
		return 0;
	}
	if (!r->is_post || !r->clen)
		dispatch(r);
	return 0;
}

static int
callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
	 void *in, size_t len)
{
	struct pss *pss = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return http_start(wsi, pss, in ? (const char *)in : "/");

	case LWS_CALLBACK_HTTP_BODY:
		if (pss && pss->req && pss->req->state == RQ_READING &&
		    fs_buf_add(&pss->req->body, in, len)) {
			reply_error(pss->req, 413, "body_too_large");
		}
		return 0;

	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (pss && pss->req && pss->req->state == RQ_READING)
			dispatch(pss->req);
		return 0;

	case LWS_CALLBACK_HTTP_WRITEABLE:
		return pss ? http_writeable(wsi, pss->req) : 0;

	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		if (pss) {
			req_free(pss->req);
			pss->req = NULL;
		}
		return 0;

	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return confirm_upgrade(wsi);

	case LWS_CALLBACK_ESTABLISHED:
		return ws_established(wsi, pss);

	case LWS_CALLBACK_RECEIVE:
		return pss && pss->sock ? ws_receive(pss->sock, wsi, in, len) : 0;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		return pss && pss->sock ? ws_writeable(pss->sock, wsi) : 0;

	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (pss && pss->sock && len >= 2)
			pss->sock->peer_close_code = ((const unsigned char *)in)[0] << 8 |
						     ((const unsigned char *)in)[1];
		return 0;

	case LWS_CALLBACK_CLOSED:
		if (pss)
			ws_closed(pss);
		return 0;

	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		return 0; /* nonzero would close the cancel pipe */

	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
	{ "fake-slack", callback, sizeof(struct pss), 65536, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* No lws-level liveness: the fake pings only when asked (ping_ms). */
static const lws_retry_bo_t no_validity = { .secs_since_valid_ping = 0,
					    .secs_since_valid_hangup = 0 };

/* ---- main -------------------------------------------------------------- */

static void *
signal_thread(void *arg)
{
	sigset_t *set = arg;
	int sig = 0;

	if (sigwait(set, &sig) == 0) {
		atomic_store(&g_stop, 1);
		if (F.ctx)
			lws_cancel_service(F.ctx);
	}
	return NULL;
}

static void
lws_log_emit(int level, const char *line)
{
	(void)level;
	fprintf(stderr, "fake_slack: lws: %s", line);
}

static void
usage(void)
{
	fprintf(stderr,
		"usage: fake_slack [--port N] [--app-token T] [--bot-token T]\n"
		"                  [--app-id A] [--max-sockets N] [--verbose]\n"
		"                  [--tls-cert PEM --tls-key PEM]\n"
		"Listens on 127.0.0.1:N (0 = any free port) and prints \"PORT N\".\n"
		"With --tls-cert/--tls-key the port serves HTTPS and WSS only.\n");
}

static void
config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	copystr(c->app_token, sizeof(c->app_token), "xapp-1-A0FAKEAPP01-1-fake");
	copystr(c->bot_token, sizeof(c->bot_token), "xoxb-0001-fake");
	copystr(c->app_id, sizeof(c->app_id), "A0FAKEAPP01");
	copystr(c->team_id, sizeof(c->team_id), "T0001");
	copystr(c->team_name, sizeof(c->team_name), "Acme");
	copystr(c->team_domain, sizeof(c->team_domain), "acme");
	copystr(c->bot_user_id, sizeof(c->bot_user_id), "UBOT");
	copystr(c->bot_id, sizeof(c->bot_id), "B0001");
	copystr(c->ws_host, sizeof(c->ws_host), "127.0.0.1");
	c->max_sockets = 10;
	c->ticket_ttl_s = 60;
	c->ack_limit = 20480;
	c->ack_limit_close = 1;
	c->blockkit_enforce = 1;
	c->approx_conn_time = 18060;
}

int
main(int argc, char **argv)
{
	struct lws_context_creation_info info;
	struct lws_vhost *vh;
	sigset_t set;
	pthread_t sig_tid;
	const char *tls_cert = NULL, *tls_key = NULL;
	int i, port = 0;
	unsigned k;

	config_defaults(&F.cfg);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
			F.verbose = 1;
			continue;
		}
		if (!v) {
			usage();
			return 2;
		}
		if (!strcmp(a, "--port"))
			port = atoi(v);
		else if (!strcmp(a, "--app-token"))
			copystr(F.cfg.app_token, sizeof(F.cfg.app_token), v);
		else if (!strcmp(a, "--bot-token"))
			copystr(F.cfg.bot_token, sizeof(F.cfg.bot_token), v);
		else if (!strcmp(a, "--app-id"))
			copystr(F.cfg.app_id, sizeof(F.cfg.app_id), v);
		else if (!strcmp(a, "--max-sockets"))
			F.cfg.max_sockets = atoi(v) < 1 ? 1 : atoi(v) > MAX_WS ? MAX_WS : atoi(v);
		else if (!strcmp(a, "--tls-cert"))
			tls_cert = v;
		else if (!strcmp(a, "--tls-key"))
			tls_key = v;
		else {
			usage();
			return 2;
		}
		i++;
	}
	if (port < 0 || port > 65535 || !tls_cert != !tls_key) {
		usage();
		return 2;
	}
	F.cfg_initial = F.cfg;
	F.t_start_ns = fs_now_ns();
	defaults_users();
	F.track = fs_track_new(TRACK_CAP);
	F.acks = calloc(ACK_RING, sizeof(*F.acks));
	F.calls = calloc(CALL_RING, sizeof(*F.calls));
	if (!F.track || !F.acks || !F.calls) {
		fprintf(stderr, "fake_slack: out of memory\n");
		return 1;
	}

	/* signals go to one thread that only flags and wakes the loop */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);
	memset(&info, 0, sizeof(info));
	info.port = port;
	info.iface = "127.0.0.1";
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
	info.protocols = protocols;
	info.max_http_header_data = 8192;
	info.pt_serv_buf_size = 65536;
	info.timeout_secs = 30;
	info.keepalive_timeout = 30;
	info.retry_and_idle_policy = &no_validity;
	info.fd_limit_per_thread = 1024;
	if (tls_cert) {
		/* an unreadable file would surface only as "cannot listen"
		 * below (lws's reason goes to its log): name the file */
		if (access(tls_cert, R_OK) || access(tls_key, R_OK)) {
			fprintf(stderr, "fake_slack: cannot read %s or %s\n", tls_cert, tls_key);
			return 1;
		}
		F.tls = 1;
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = tls_cert;
		info.ssl_private_key_filepath = tls_key;
		/* h1 only: the request handling here is written for HTTP/1.1 */
		info.alpn = "http/1.1";
	}
	F.ctx = lws_create_context(&info);
	if (!F.ctx) {
		fprintf(stderr, "fake_slack: cannot listen on 127.0.0.1:%d\n", port);
		return 1;
	}
	vh = lws_get_vhost_by_name(F.ctx, "default");
	F.port = vh ? lws_get_vhost_listen_port(vh) : -1;
	if (F.port <= 0) {
		fprintf(stderr, "fake_slack: no listen port\n");
		lws_context_destroy(F.ctx);
		return 1;
	}
	if (pthread_create(&sig_tid, NULL, signal_thread, &set)) {
		fprintf(stderr, "fake_slack: pthread_create failed\n");
		lws_context_destroy(F.ctx);
		return 1;
	}
	printf("PORT %d\n", F.port);
	fflush(stdout);

	while (!atomic_load(&g_stop))
		if (lws_service(F.ctx, 0) < 0)
			break;

	F.stopping = 1;
	/* the signal thread may call lws_cancel_service(): end it first */
	pthread_kill(sig_tid, SIGTERM); /* blocked here, taken by its sigwait */
	pthread_join(sig_tid, NULL);
	lws_sul_cancel(&F.sul_ping);
	lws_sul_cancel(&F.sul_stop);
	lws_sul_cancel(&F.burst.sul);
	for (k = 0; k < MAX_WS; k++)
		if (F.socks[k])
			lws_sul_cancel(&F.socks[k]->sul_then);
	lws_context_destroy(F.ctx);
	F.ctx = NULL;

	clear_records();
	free(F.acks);
	free(F.calls);
	free(F.burst.rtt);
	fs_track_free(F.track);
	return 0;
}
