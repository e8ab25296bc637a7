/*
 * ws_probe: a tiny Socket Mode client for shell tests of the fake Slack.
 *
 *   ws_probe [--ack] [--ack-pad N] [--max N] [--timeout S] [--no-body] URL
 *
 * Connects to a ws:// URL (loopback only), prints one line per event on
 * stdout (line-buffered, so a test can poll the file):
 *
 *   OPEN
 *   MSG n=1 len=180 frames=1 binary=0 json=1 type=hello envelope_id=-
 *   BODY {"type":"hello",...}          (text messages up to 4096 bytes)
 *   ACK <envelope_id>                   (with --ack: every envelope is acked)
 *   CLOSE code=1000                     (the server sent a Close frame)
 *   CLOSED | ERROR <why> | TIMEOUT
 *
 * --max N: close (1000) after N messages. --ack-pad N: acks carry a payload
 * of N bytes (to test Slack's 20,480-byte ack limit). Exit: 0 closed / done,
 * 1 connection error, 2 usage, 3 timeout. Test code only.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <libwebsockets.h>

#include "fs_util.h"

#define MAX_MSG   (32u << 20)
#define MAX_ACKS  4096u

static struct probe {
	int ack, no_body, done, rc, want_close;
	long ack_pad, max, timeout_s, count;
	struct fs_buf msg;
	int discard;
	unsigned frames;
	char *acks[MAX_ACKS];
	unsigned ack_head, ack_n;
	struct lws_context *ctx;
	lws_sorted_usec_list_t sul;
} P;

static void
queue_ack(struct lws *wsi, const char *id)
{
	struct fs_buf b;

	if (P.ack_n >= MAX_ACKS)
		return;
	fs_buf_init(&b, (size_t)P.ack_pad + 4096);
	fs_buf_add(&b, "0123456789abcdef0123456789abcdef", LWS_PRE); /* headroom */
	fs_buf_addf(&b, "{\"envelope_id\":\"%s\"", id);
	if (P.ack_pad > 0) {
		long i;

		fs_buf_addf(&b, ",\"payload\":{\"text\":\"");
		for (i = 0; i < P.ack_pad; i++)
			fs_buf_add(&b, "x", 1);
		fs_buf_addf(&b, "\"}");
	}
	fs_buf_add(&b, "}", 1);
	if (b.overflow) {
		fs_buf_free(&b);
		return;
	}
	P.acks[(P.ack_head + P.ack_n++) % MAX_ACKS] = fs_buf_steal(&b);
	printf("ACK %s\n", id);
	lws_callback_on_writable(wsi);
}

static void
on_message(struct lws *wsi, int binary)
{
	const char *type = "-", *id = "-";
	cJSON *o = NULL;
	size_t i;

	P.count++;
	if (!binary)
		o = cJSON_ParseWithLength(P.msg.p ? P.msg.p : "", P.msg.len);
	if (o) {
		const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "type"));
		const char *e = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "envelope_id"));

		type = t ? t : "-";
		id = e ? e : "-";
	}
	printf("MSG n=%ld len=%zu frames=%u binary=%d json=%d type=%s envelope_id=%s\n",
	       P.count, P.discard ? 0 : P.msg.len, P.frames, binary, o != NULL,
	       type, id);
	if (!binary && !P.no_body && P.msg.len <= 4096 && P.msg.p) {
		for (i = 0; i < P.msg.len; i++)
			if (P.msg.p[i] == '\n' || P.msg.p[i] == '\r')
				P.msg.p[i] = ' ';
		printf("BODY %.*s\n", (int)P.msg.len, P.msg.p);
	}
	if (P.ack && o && strcmp(id, "-"))
		queue_ack(wsi, id);
	cJSON_Delete(o);
	if (P.max && P.count >= P.max) {
		P.want_close = 1;
		lws_callback_on_writable(wsi);
	}
}

static int
cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
   size_t len)
{
	(void)user;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		printf("ERROR %s\n", in ? (const char *)in : "connect failed");
		P.rc = 1;
		P.done = 1;
		break;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		printf("OPEN\n");
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (lws_is_first_fragment(wsi) && !P.msg.len) {
			P.frames = 0;
			P.discard = 0;
		}
		if (!lws_remaining_packet_payload(wsi))
			P.frames++;
		if (!P.discard && fs_buf_add(&P.msg, in, len))
			P.discard = 1;
		if (lws_is_final_fragment(wsi)) {
			on_message(wsi, lws_frame_is_binary(wsi));
			P.msg.len = 0;
			P.discard = 0;
			P.frames = 0;
		}
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (P.ack_n) {
			int budget = 32;

			/* several small frames per callback while the socket takes them */
			while (P.ack_n && budget-- > 0) {
				char *a = P.acks[P.ack_head];

				P.acks[P.ack_head] = NULL;
				P.ack_head = (P.ack_head + 1) % MAX_ACKS;
				P.ack_n--;
				if (lws_write(wsi, (unsigned char *)a + LWS_PRE,
					      strlen(a + LWS_PRE), LWS_WRITE_TEXT) < 0) {
					free(a);
					return -1;
				}
				free(a);
				if (lws_partial_buffered(wsi))
					break;
			}
			if (P.ack_n || P.want_close)
				lws_callback_on_writable(wsi);
			break;
		}
		if (P.want_close) {
			P.want_close = 0; /* clear before -1: lws may call again */
			lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
			return -1;
		}
		break;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		printf("CLOSE code=%d\n", len >= 2 ?
		       ((const unsigned char *)in)[0] << 8 | ((const unsigned char *)in)[1] : 0);
		break;
	case LWS_CALLBACK_CLIENT_CLOSED:
		printf("CLOSED\n");
		P.done = 1;
		break;
	default:
		break;
	}
	return 0;
}

static void
timeout_cb(lws_sorted_usec_list_t *sul)
{
	(void)sul;
	printf("TIMEOUT\n");
	P.rc = 3;
	P.done = 1;
}

static const struct lws_protocols protocols[] = {
	{ "probe", cb, 0, 65536, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static const lws_retry_bo_t no_validity = { .secs_since_valid_ping = 0,
					    .secs_since_valid_hangup = 0 };

int
main(int argc, char **argv)
{
	struct lws_context_creation_info info;
	struct lws_client_connect_info ci;
	const char *prot, *addr, *path, *url = NULL;
	char urlbuf[2048], pathbuf[2100];
	int i, port;
	unsigned guard;

	P.timeout_s = 10;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--ack"))
			P.ack = 1;
		else if (!strcmp(a, "--no-body"))
			P.no_body = 1;
		else if (!strcmp(a, "--ack-pad") && i + 1 < argc)
			P.ack_pad = strtol(argv[++i], NULL, 10);
		else if (!strcmp(a, "--max") && i + 1 < argc)
			P.max = strtol(argv[++i], NULL, 10);
		else if (!strcmp(a, "--timeout") && i + 1 < argc)
			P.timeout_s = strtol(argv[++i], NULL, 10);
		else if (a[0] != '-' && !url)
			url = a;
		else
			url = NULL, i = argc;
	}
	if (!url || strlen(url) >= sizeof(urlbuf) || P.timeout_s < 1 ||
	    P.timeout_s > 600 || P.ack_pad < 0 || P.ack_pad > (1 << 20)) {
		fprintf(stderr, "usage: ws_probe [--ack] [--ack-pad N] [--max N] "
			"[--timeout S] [--no-body] ws://127.0.0.1:PORT/path\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	fs_buf_init(&P.msg, MAX_MSG);
	snprintf(urlbuf, sizeof(urlbuf), "%s", url);
	if (lws_parse_uri(urlbuf, &prot, &addr, &port, &path) || strcmp(prot, "ws")) {
		fprintf(stderr, "ws_probe: need a ws:// URL\n");
		return 2;
	}
	if (strcmp(addr, "127.0.0.1")) {
		fprintf(stderr, "ws_probe: loopback (127.0.0.1) only\n");
		return 2;
	}
	/* lws_parse_uri drops the path's leading '/' */
	snprintf(pathbuf, sizeof(pathbuf), "/%s", path);

	lws_set_log_level(LLL_ERR, NULL);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.retry_and_idle_policy = &no_validity;
	info.fd_limit_per_thread = 64;
	P.ctx = lws_create_context(&info);
	if (!P.ctx)
		return 1;
	memset(&ci, 0, sizeof(ci));
	ci.context = P.ctx;
	ci.address = addr;
	ci.port = port;
	ci.path = pathbuf;
	ci.host = addr;
	ci.origin = addr;
	ci.protocol = NULL;
	ci.local_protocol_name = "probe";
	ci.ssl_connection = 0;
	lws_sul_schedule(P.ctx, 0, &P.sul, timeout_cb,
			 (lws_usec_t)P.timeout_s * LWS_US_PER_SEC);
	if (!lws_client_connect_via_info(&ci)) {
		printf("ERROR connect\n");
		P.rc = 1;
		P.done = 1;
	}
	/* bounded: the timeout sul ends the loop at the latest */
	for (guard = 0; !P.done && guard < 100000000u; guard++)
		if (lws_service(P.ctx, 0) < 0)
			break;
	lws_sul_cancel(&P.sul);
	lws_context_destroy(P.ctx);
	while (P.ack_n) {
		free(P.acks[P.ack_head]);
		P.ack_head = (P.ack_head + 1) % MAX_ACKS;
		P.ack_n--;
	}
	fs_buf_free(&P.msg);
	return P.rc;
}
