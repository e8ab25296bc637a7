/*
 * Small helpers for the fake Slack server (tests/fakes/fake_slack.c) and its
 * probes: a capped growable buffer, monotonic time, random ids, URL/form
 * decoding, UTF-8 length, an envelope tracker (envelope_id -> send time, a
 * fixed-size ring with a hash index) and percentiles.
 *
 * Test code only: nothing here is linked into workbot. Every growable thing
 * has a hard cap; a caller that hits it gets -1, never an unbounded
 * allocation. Not thread-safe: the fake runs one service thread.
 */
#ifndef FS_UTIL_H
#define FS_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* ---- capped buffer -------------------------------------------------- */

struct fs_buf {
	char *p;      /* NUL-terminated when len > 0 or after any add */
	size_t len;
	size_t cap;
	size_t max;   /* hard cap on len */
	int overflow; /* set once an add was refused */
};

void fs_buf_init(struct fs_buf *b, size_t max);
int fs_buf_add(struct fs_buf *b, const void *data, size_t n);
int fs_buf_addf(struct fs_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Hand the storage to the caller (NUL-terminated; NULL if empty). */
char *fs_buf_steal(struct fs_buf *b);
void fs_buf_free(struct fs_buf *b);

/* ---- time, random ids ------------------------------------------------ */

uint64_t fs_now_ns(void);              /* CLOCK_MONOTONIC */
void fs_random(void *out, size_t n);   /* getrandom(); aborts on failure */
void fs_uuid(char out[37]);            /* lower-case v4 uuid text */
/* Slack-like id: prefix + n upper-case alphanumerics (out >= strlen(prefix)+n+1) */
void fs_slack_id(char *out, size_t outlen, const char *prefix, size_t n);

/* ---- text ------------------------------------------------------------- */

size_t fs_utf8_len(const char *s);     /* code points (Slack counts chars) */
/* application/x-www-form-urlencoded -> object of strings (NULL on a cap) */
cJSON *fs_form_parse(const char *body, size_t len);
/* Decode %XX and '+' in place; returns the new length. */
size_t fs_urldecode(char *s);

/* ---- envelope tracker ------------------------------------------------- */

#define FS_ID_MAX 64 /* envelope ids longer than 63 bytes are not tracked */

struct fs_track_ent {
	char id[FS_ID_MAX];
	uint64_t t_sent_ns;   /* 0 until the frame left */
	uint32_t socket_id;
	uint32_t next;        /* hash chain (index + 1, 0 = end) */
	uint8_t used;
	uint8_t burst;        /* sent by /_control/burst */
	uint8_t acked;        /* an ack was seen */
};

struct fs_track;

struct fs_track *fs_track_new(uint32_t cap_pow2);
void fs_track_free(struct fs_track *t);
/* Insert (evicting the oldest entry when the ring is full). NULL if id too long. */
struct fs_track_ent *fs_track_put(struct fs_track *t, const char *id);
struct fs_track_ent *fs_track_get(struct fs_track *t, const char *id, size_t idlen);
void fs_track_clear(struct fs_track *t);
uint64_t fs_track_evicted(const struct fs_track *t);

/* ---- percentiles ------------------------------------------------------ */

void fs_sort_u64(uint64_t *v, size_t n);
/* Nearest-rank percentile of a sorted array, p in [0, 100]. 0 if n == 0. */
uint64_t fs_pct(const uint64_t *sorted, size_t n, double p);

#endif
