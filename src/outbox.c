/*
 * outbox: Slack messages as retrying jobs.
 *
 * Each message is one heap object holding its job, its JSON body and how
 * many calls it has made. run() makes one call; on a retryable answer it
 * pushes itself back with a not-before time and returns, so waiting never
 * holds a worker. Must never log a message body (it may quote a user) or a
 * response_url (it is a credential).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workbot/jobq.h"
#include "workbot/log.h"
#include "workbot/outbox.h"
#include "workbot/slack_api.h"
#include "workbot/xmalloc.h"

struct outbox {
	struct jobq *q;
	struct slack_api *api;
	atomic_uint_fast64_t sent, failed;
};

struct msg {
	struct job job;
	struct outbox *o;
	enum outbox_kind kind;
	cJSON *body;
	struct secret *url;
	char dm_user[32];
	char dm_channel[32];	/* opened once, kept across retries */
	unsigned attempts;
};

static const char *const kind_names[] = {
	[OUTBOX_POST_MESSAGE] = "chat.postMessage",
	[OUTBOX_POST_EPHEMERAL] = "chat.postEphemeral",
	[OUTBOX_UPDATE] = "chat.update",
	[OUTBOX_RESPONSE_URL] = "response_url",
	[OUTBOX_DM] = "dm",
};

static void
msg_free(struct msg *m)
{
	cJSON_Delete(m->body);
	secret_free(m->url);
	free(m);
}

static void
msg_cancel(struct job *job)
{
	struct msg *m = (struct msg *)job;

	atomic_fetch_add(&m->o->failed, 1);
	msg_free(m);
}

/* One call. 0 sent, else the result says whether to retry. */
static int
msg_call(struct msg *m, struct http_client *c, struct slack_result *res)
{
	struct slack_api *api = m->o->api;

	switch (m->kind) {
	case OUTBOX_POST_MESSAGE:
		return slack_chat_post_message(api, c, m->body, res);
	case OUTBOX_POST_EPHEMERAL:
		return slack_chat_post_ephemeral(api, c, m->body, res);
	case OUTBOX_UPDATE:
		return slack_chat_update(api, c, m->body, res);
	case OUTBOX_RESPONSE_URL:
		return slack_response_url_post(api, c, m->url, m->body, res);
	case OUTBOX_DM:
	default:
		if (m->dm_channel[0] == '\0') {
			if (slack_conversations_open(api, c, m->dm_user, m->dm_channel, sizeof(m->dm_channel), res) != 0)
				return -1;
			slack_result_clear(res);
			memset(res, 0, sizeof(*res));
			cJSON_DeleteItemFromObjectCaseSensitive(m->body, "channel");
			cJSON_AddStringToObject(m->body, "channel", m->dm_channel);
		}
		return slack_chat_post_message(api, c, m->body, res);
	}
}

static void
msg_run(struct job *job, void *worker)
{
	struct msg *m = (struct msg *)job;
	struct slack_result res = { 0 };
	uint64_t not_before;

	m->attempts++;
	if (msg_call(m, worker, &res) == 0) {
		atomic_fetch_add(&m->o->sent, 1);
		slack_result_clear(&res);
		msg_free(m);
		return;
	}
	if (slack_retry_at(&res, m->attempts, jobq_now_ms(), &not_before)) {
		log_debug("outbox", "retrying %s attempt=%u in_ms=%llu error=%s", kind_names[m->kind], m->attempts,
		    (unsigned long long)(not_before - jobq_now_ms()), res.error);
		slack_result_clear(&res);
		if (jobq_push_at(m->o->q, &m->job, not_before) == 0)
			return;
		log_warn("outbox", "retry queue full: dropping a %s message", kind_names[m->kind]);
	} else {
		log_warn("outbox", "giving up on a %s message after %u calls: %s", kind_names[m->kind], m->attempts,
		    res.error[0] ? res.error : slack_outcome_name(res.outcome));
		slack_result_clear(&res);
	}
	atomic_fetch_add(&m->o->failed, 1);
	msg_free(m);
}

struct outbox *
outbox_new(struct jobq *q, struct slack_api *api)
{
	struct outbox *o = xcalloc(1, sizeof(*o));

	o->q = q;
	o->api = api;
	return o;
}

void
outbox_free(struct outbox *o)
{
	free(o);
}

int
outbox_send(struct outbox *o, enum outbox_kind kind, cJSON *body, struct secret *response_url,
    const char *dm_user)
{
	struct msg *m = xcalloc(1, sizeof(*m));

	m->job.run = msg_run;
	m->job.cancel = msg_cancel;
	m->job.lane = JOBQ_GENERAL;
	m->o = o;
	m->kind = kind;
	m->body = body != NULL ? body : cJSON_CreateObject();
	m->url = response_url;
	if (dm_user != NULL)
		snprintf(m->dm_user, sizeof(m->dm_user), "%s", dm_user);
	if ((kind == OUTBOX_RESPONSE_URL && m->url == NULL) || (kind == OUTBOX_DM && m->dm_user[0] == '\0') ||
	    jobq_push(o->q, &m->job) != 0) {
		log_warn("outbox", "cannot queue a %s message (queue full or bad arguments)", kind_names[kind]);
		atomic_fetch_add(&o->failed, 1);
		msg_free(m);
		return -1;
	}
	return 0;
}

uint64_t
outbox_sent(const struct outbox *o)
{
	return atomic_load(&o->sent);
}

uint64_t
outbox_failed(const struct outbox *o)
{
	return atomic_load(&o->failed);
}
