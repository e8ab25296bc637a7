/*
 * Helpers for the fake Slack server. See fs_util.h. Test code only.
 */
#include "fs_util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ---- capped buffer -------------------------------------------------- */

void
fs_buf_init(struct fs_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

static int
fs_buf_reserve(struct fs_buf *b, size_t extra)
{
	size_t need, ncap;
	char *np;

	if (extra > b->max || b->len > b->max - extra) {
		b->overflow = 1;
		return -1;
	}
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap *= 2;
	np = realloc(b->p, ncap);
	if (!np) {
		b->overflow = 1;
		return -1;
	}
	b->p = np;
	b->cap = ncap;
	return 0;
}

int
fs_buf_add(struct fs_buf *b, const void *data, size_t n)
{
	if (fs_buf_reserve(b, n))
		return -1;
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int
fs_buf_addf(struct fs_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || fs_buf_reserve(b, (size_t)n))
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

char *
fs_buf_steal(struct fs_buf *b)
{
	char *p = b->p;

	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

void
fs_buf_free(struct fs_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* ---- time, random ids ------------------------------------------------ */

uint64_t
fs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
fs_random(void *out, size_t n)
{
	unsigned char *p = out;

	while (n) {
		ssize_t r = getrandom(p, n, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "fake_slack: getrandom failed\n");
			abort();
		}
		p += r;
		n -= (size_t)r;
	}
}

void
fs_uuid(char out[37])
{
	unsigned char r[16];

	fs_random(r, sizeof(r));
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
		 r[10], r[11], r[12], r[13], r[14], r[15]);
}

void
fs_slack_id(char *out, size_t outlen, const char *prefix, size_t n)
{
	static const char al[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
	unsigned char r[64];
	size_t pl = strlen(prefix), i;

	if (!outlen)
		return;
	if (n > sizeof(r))
		n = sizeof(r);
	if (pl + n + 1 > outlen) {
		out[0] = '\0';
		return;
	}
	fs_random(r, n);
	memcpy(out, prefix, pl);
	for (i = 0; i < n; i++)
		out[pl + i] = al[r[i] % 36];
	out[pl + n] = '\0';
}

/* ---- text ------------------------------------------------------------- */

size_t
fs_utf8_len(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

size_t
fs_urldecode(char *s)
{
	char *w = s;
	const char *r = s;

	while (*r) {
		if (*r == '+') {
			*w++ = ' ';
			r++;
		} else if (*r == '%' && hexval(r[1]) >= 0 && hexval(r[2]) >= 0) {
			*w++ = (char)(hexval(r[1]) * 16 + hexval(r[2]));
			r += 3;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

cJSON *
fs_form_parse(const char *body, size_t len)
{
	cJSON *o = cJSON_CreateObject();
	char *copy, *p, *save = NULL, *tok;
	int fields = 0;

	if (!o)
		return NULL;
	copy = malloc(len + 1);
	if (!copy) {
		cJSON_Delete(o);
		return NULL;
	}
	memcpy(copy, body, len);
	copy[len] = '\0';
	for (p = copy; (tok = strtok_r(p, "&", &save)); p = NULL) {
		char *eq = strchr(tok, '=');
		char *val = eq ? eq + 1 : tok + strlen(tok);

		if (++fields > 1000)
			break; /* bounded */
		if (eq)
			*eq = '\0';
		fs_urldecode(tok);
		fs_urldecode(val);
		if (!*tok)
			continue;
		cJSON_DeleteItemFromObjectCaseSensitive(o, tok);
		cJSON_AddStringToObject(o, tok, val);
	}
	free(copy);
	return o;
}

/* ---- envelope tracker ------------------------------------------------- */

struct fs_track {
	struct fs_track_ent *ents;
	uint32_t *buckets;    /* index + 1, 0 = empty */
	uint32_t cap;         /* entries (power of two) */
	uint32_t nbuckets;    /* 2 * cap */
	uint32_t pos;         /* next ring slot */
	uint64_t evicted;
};

static uint32_t
fnv1a(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

struct fs_track *
fs_track_new(uint32_t cap_pow2)
{
	struct fs_track *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->cap = cap_pow2;
	t->nbuckets = cap_pow2 * 2;
	t->ents = calloc(t->cap, sizeof(*t->ents));
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	if (!t->ents || !t->buckets) {
		fs_track_free(t);
		return NULL;
	}
	return t;
}

void
fs_track_free(struct fs_track *t)
{
	if (!t)
		return;
	free(t->ents);
	free(t->buckets);
	free(t);
}

void
fs_track_clear(struct fs_track *t)
{
	memset(t->ents, 0, (size_t)t->cap * sizeof(*t->ents));
	memset(t->buckets, 0, (size_t)t->nbuckets * sizeof(*t->buckets));
	t->pos = 0;
	t->evicted = 0;
}

uint64_t
fs_track_evicted(const struct fs_track *t)
{
	return t->evicted;
}

static void
unlink_ent(struct fs_track *t, uint32_t idx)
{
	struct fs_track_ent *e = &t->ents[idx];
	uint32_t b = fnv1a(e->id, strlen(e->id)) & (t->nbuckets - 1);
	uint32_t *link = &t->buckets[b];
	unsigned guard = 0;

	while (*link && guard++ <= t->cap) {
		if (*link == idx + 1) {
			*link = e->next;
			break;
		}
		link = &t->ents[*link - 1].next;
	}
	memset(e, 0, sizeof(*e));
}

struct fs_track_ent *
fs_track_put(struct fs_track *t, const char *id)
{
	size_t n = strlen(id);
	uint32_t idx, b;
	struct fs_track_ent *e;

	if (n == 0 || n >= FS_ID_MAX)
		return NULL;
	e = fs_track_get(t, id, n);
	if (e) /* same envelope sent again (redelivery): refresh */
		return e;
	idx = t->pos;
	t->pos = (t->pos + 1) & (t->cap - 1);
	if (t->ents[idx].used) {
		unlink_ent(t, idx);
		t->evicted++;
	}
	e = &t->ents[idx];
	memcpy(e->id, id, n + 1);
	e->used = 1;
	b = fnv1a(id, n) & (t->nbuckets - 1);
	e->next = t->buckets[b];
	t->buckets[b] = idx + 1;
	return e;
}

struct fs_track_ent *
fs_track_get(struct fs_track *t, const char *id, size_t idlen)
{
	uint32_t i;
	unsigned guard = 0;

	if (idlen == 0 || idlen >= FS_ID_MAX)
		return NULL;
	i = t->buckets[fnv1a(id, idlen) & (t->nbuckets - 1)];
	while (i && guard++ <= t->cap) {
		struct fs_track_ent *e = &t->ents[i - 1];

		if (!strncmp(e->id, id, idlen) && e->id[idlen] == '\0')
			return e;
		i = e->next;
	}
	return NULL;
}

/* ---- percentiles ------------------------------------------------------ */

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void
fs_sort_u64(uint64_t *v, size_t n)
{
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_u64);
}

uint64_t
fs_pct(const uint64_t *sorted, size_t n, double p)
{
	double rank;
	size_t i;

	if (!n)
		return 0;
	if (p <= 0)
		return sorted[0];
	rank = ceil(p / 100.0 * (double)n);
	i = rank < 1 ? 0 : (size_t)rank - 1;
	if (i >= n)
		i = n - 1;
	return sorted[i];
}
