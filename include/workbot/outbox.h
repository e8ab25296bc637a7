/*
 * outbox: messages to Slack, sent from workers and retried without a
 * sleeping worker.
 *
 * A message is a job on the general lane. When Slack answers 429 (or the
 * method is still rate limited from an earlier 429, or a 5xx/timeout
 * happens) the job is put back with jobq_push_at() at the time
 * slack_retry_at() gives — Retry-After honoured, per method, other methods
 * unaffected — up to SLACK_MAX_ATTEMPTS calls; then it is dropped with one
 * log line. A message to a user's DM first opens the conversation.
 *
 * Threads: outbox_new/free on the main thread (free after the job queue is
 * stopped); outbox_send from any thread. It takes ownership of what it is
 * given, also on failure.
 */
#ifndef WORKBOT_OUTBOX_H
#define WORKBOT_OUTBOX_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "workbot/secret.h"

struct jobq;
struct outbox;
struct slack_api;

enum outbox_kind {
	OUTBOX_POST_MESSAGE,	/* chat.postMessage: body has channel, text/blocks, thread_ts? */
	OUTBOX_POST_EPHEMERAL,	/* chat.postEphemeral: body has channel, user, ... */
	OUTBOX_UPDATE,		/* chat.update: body has channel, ts, ... */
	OUTBOX_RESPONSE_URL,	/* POST body to an interaction's response_url */
	OUTBOX_DM,		/* conversations.open with `dm_user`, then chat.postMessage */
};

struct outbox *outbox_new(struct jobq *q, struct slack_api *api);
void outbox_free(struct outbox *o);	/* NULL is fine */

/*
 * Queue a message. `body` (owned) is the method's JSON arguments;
 * `response_url` (owned) only for OUTBOX_RESPONSE_URL; `dm_user` (copied)
 * only for OUTBOX_DM. 0 queued, -1 dropped (queue full; logged).
 */
int outbox_send(struct outbox *o, enum outbox_kind kind, cJSON *body,
    struct secret *response_url, const char *dm_user);

/* Messages delivered, and given up, since start (tests, /metrics). */
uint64_t outbox_sent(const struct outbox *o);
uint64_t outbox_failed(const struct outbox *o);

#endif
