/*
 * metrics: process-wide counters, gauges and one histogram, rendered as
 * Prometheus text (exposition format 0.0.4) for GET /metrics.
 *
 * Every label comes from a small fixed set: an enum here with a name table
 * in metrics.c. Strings from the wire (an envelope type, a disconnect
 * reason, a Web API method) are mapped with the *_label() lookups, and
 * anything unknown becomes "other" — so hostile input can never create a
 * new series, and the rendered text has a fixed, small size.
 *
 * Threads: every *_inc/observe/gauge_set/gauge_add function may be called
 * from any thread at any time; each is one relaxed atomic add (no lock, no
 * allocation), cheap enough for the ack path. metrics_gauge_source() is
 * for start-up, before another thread renders. metrics_render() may run on
 * any thread (the listener calls it on the event thread); it reads each
 * value once, so a render taken during increments is a consistent-enough
 * snapshot (a histogram's count is the sum of the buckets it rendered).
 */
#ifndef WORKBOT_METRICS_H
#define WORKBOT_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* workbot_envelopes_total{type} */
enum metrics_envelope {
	METRICS_ENVELOPE_HELLO,
	METRICS_ENVELOPE_DISCONNECT,
	METRICS_ENVELOPE_EVENTS_API,
	METRICS_ENVELOPE_INTERACTIVE,
	METRICS_ENVELOPE_SLASH_COMMANDS,
	METRICS_ENVELOPE_OTHER,
	METRICS_ENVELOPE_N
};

/* workbot_reconnects_total{reason} */
enum metrics_reconnect {
	METRICS_RECONNECT_REFRESH_REQUESTED,	/* disconnect reason=refresh_requested */
	METRICS_RECONNECT_WARNING,		/* disconnect reason=warning */
	METRICS_RECONNECT_LINK_DISABLED,
	METRICS_RECONNECT_TOO_MANY_WEBSOCKETS,
	METRICS_RECONNECT_PING_TIMEOUT,		/* no frame for 4 x ping_interval */
	METRICS_RECONNECT_CLOSED,		/* peer closed or TCP dropped */
	METRICS_RECONNECT_CONNECT_ERROR,	/* connect, TLS or open failed */
	METRICS_RECONNECT_OTHER,
	METRICS_RECONNECT_N
};

/* workbot_slack_api_calls_total{method,...} */
enum metrics_api_method {
	METRICS_API_APPS_CONNECTIONS_OPEN,
	METRICS_API_AUTH_TEST,
	METRICS_API_CHAT_POST_MESSAGE,
	METRICS_API_CHAT_POST_EPHEMERAL,
	METRICS_API_CHAT_UPDATE,
	METRICS_API_CONVERSATIONS_OPEN,
	METRICS_API_USERS_INFO,
	METRICS_API_RESPONSE_URL,		/* a POST to an interaction's response_url */
	METRICS_API_OTHER,
	METRICS_API_METHOD_N
};

/* workbot_slack_api_calls_total{...,outcome} */
enum metrics_api_outcome {
	METRICS_API_OK,
	METRICS_API_SLACK_ERROR,		/* HTTP 200 with ok:false */
	METRICS_API_RATE_LIMITED,		/* HTTP 429 */
	METRICS_API_HTTP_ERROR,			/* other HTTP status */
	METRICS_API_NETWORK_ERROR,		/* DNS, connect, TLS, timeout */
	METRICS_API_OUTCOME_OTHER,
	METRICS_API_OUTCOME_N
};

/* workbot_oauth_logins_total{outcome} */
enum metrics_oauth {
	METRICS_OAUTH_CONNECTED,		/* Connect pressed, tokens stored */
	METRICS_OAUTH_CANCELLED,		/* Cancel pressed or no answer in time */
	METRICS_OAUTH_DENIED,			/* provider said access_denied */
	METRICS_OAUTH_EXPIRED,			/* unknown, used or expired link/state */
	METRICS_OAUTH_STATE_MISMATCH,		/* cookie or state did not match */
	METRICS_OAUTH_EXCHANGE_FAILED,		/* token endpoint refused or failed */
	METRICS_OAUTH_OTHER,
	METRICS_OAUTH_N
};

/* workbot_token_refreshes_total{outcome} */
enum metrics_refresh {
	METRICS_REFRESH_OK,
	METRICS_REFRESH_INVALID_GRANT,		/* connection marked expired */
	METRICS_REFRESH_ERROR,			/* network or other provider error */
	METRICS_REFRESH_OTHER,
	METRICS_REFRESH_N
};

/* Gauges: workbot_jobs_queued, workbot_sockets_live. */
enum metrics_gauge {
	METRICS_GAUGE_JOBS_QUEUED,
	METRICS_GAUGE_SOCKETS_LIVE,
	METRICS_GAUGE_N
};

/* Out-of-range enum values are counted as "other", never out of bounds. */
void metrics_envelope_inc(enum metrics_envelope type);
void metrics_duplicate_inc(void);
void metrics_reconnect_inc(enum metrics_reconnect reason);
void metrics_api_call_inc(enum metrics_api_method method, enum metrics_api_outcome outcome);
void metrics_job_rejected_inc(void);
void metrics_oauth_login_inc(enum metrics_oauth outcome);
void metrics_token_refresh_inc(enum metrics_refresh outcome);

/* workbot_ack_seconds: time from a frame's arrival to its ack, in µs. */
void metrics_ack_observe_us(uint64_t us);

void metrics_gauge_set(enum metrics_gauge g, int64_t value);
void metrics_gauge_add(enum metrics_gauge g, int64_t delta);
/*
 * Let a module supply a gauge's value at render time instead (fn runs on
 * the rendering thread; it must be quick and not block). NULL fn: back to
 * the value set with metrics_gauge_set/add. Call at start-up only.
 */
typedef int64_t (*metrics_gauge_fn)(void *arg);
void metrics_gauge_source(enum metrics_gauge g, metrics_gauge_fn fn, void *arg);

/* Wire strings to labels; NULL or unknown -> the "other" value. */
enum metrics_envelope metrics_envelope_label(const char *type);
enum metrics_reconnect metrics_reconnect_label(const char *reason);
enum metrics_api_method metrics_api_method_label(const char *method);

/*
 * Render every series (zeros included: the label sets are fixed) with HELP
 * and TYPE lines. workbot_log_lines_dropped_total is read from log.c.
 * *out is malloc'd and NUL-terminated; the caller frees it. Returns 0.
 */
int metrics_render(char **out, size_t *len);

/* Tests: zero every counter and gauge, drop gauge sources. */
void metrics_reset(void);

#endif
