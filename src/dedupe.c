/*
 * dedupe: a bounded, time-windowed set of 64-bit keyed hashes.
 *
 * Entries sit in a ring in the order they were marked (so the oldest is
 * always at the head, which makes both the window and the cap a matter of
 * popping the head); a power-of-two bucket array of chains indexes them.
 * Chains link ring slots by index. The ring and the buckets double when
 * full until `cap`; at cap the oldest entry is evicted to make room.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "workbot/dedupe.h"
#include "workbot/xmalloc.h"

#define NIL UINT32_MAX
#define START_CAP 1024

/*
 * 16 bytes, as dedupe.h promises: `when` is unix seconds in 32 unsigned
 * bits (good until 2106; clamped), not int64_t, whose alignment made the
 * entry 24. At the cap of 100,000 ids that is 0.8 MiB of RssAnon less.
 */
struct entry {
	uint64_t hash;
	uint32_t when;
	uint32_t next;		/* next slot in the bucket chain */
};

static uint32_t
when32(int64_t when)
{
	return when < 0 ? 0 : when > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)when;
}

struct dedupe {
	unsigned char key[crypto_shorthash_KEYBYTES];
	struct entry *ring;
	uint32_t *buckets;
	size_t ring_cap, cap, head, count, nbuckets;
	int64_t window;
};

static uint64_t
hash_of(const struct dedupe *d, const char *key)
{
	unsigned char out[crypto_shorthash_BYTES];
	uint64_t h;

	crypto_shorthash(out, (const unsigned char *)key, strlen(key), d->key);
	memcpy(&h, out, sizeof(h));
	return h;
}

static void
index_all(struct dedupe *d)
{
	for (size_t i = 0; i < d->nbuckets; i++)
		d->buckets[i] = NIL;
	for (size_t i = 0; i < d->count; i++) {
		size_t slot = (d->head + i) % d->ring_cap;
		size_t b = d->ring[slot].hash & (d->nbuckets - 1);

		d->ring[slot].next = d->buckets[b];
		d->buckets[b] = (uint32_t)slot;
	}
}

struct dedupe *
dedupe_new(size_t cap, int64_t window_secs)
{
	struct dedupe *d = xcalloc(1, sizeof(*d));

	randombytes_buf(d->key, sizeof(d->key));
	d->cap = cap ? cap : 1;
	d->window = window_secs;
	d->ring_cap = d->cap < START_CAP ? d->cap : START_CAP;
	d->ring = xcalloc(d->ring_cap, sizeof(*d->ring));
	/* One bucket per slot at least: chains stay short (≤ 1 on average) at
	 * 4 bytes per slot, where two per slot cost 1 MiB at the cap. */
	for (d->nbuckets = 1; d->nbuckets < d->ring_cap; d->nbuckets <<= 1)
		;
	d->buckets = xmalloc(d->nbuckets * sizeof(*d->buckets));
	index_all(d);
	return d;
}

void
dedupe_free(struct dedupe *d)
{
	if (d == NULL)
		return;
	free(d->ring);
	free(d->buckets);
	free(d);
}

size_t
dedupe_count(const struct dedupe *d)
{
	return d->count;
}

/* Drop the oldest entry from its chain and the ring. */
static void
pop_head(struct dedupe *d)
{
	uint32_t slot = (uint32_t)d->head;
	uint32_t *p = &d->buckets[d->ring[slot].hash & (d->nbuckets - 1)];

	while (*p != NIL && *p != slot)
		p = &d->ring[*p].next;
	if (*p == slot)
		*p = d->ring[slot].next;
	d->head = (d->head + 1) % d->ring_cap;
	d->count--;
}

static void
expire(struct dedupe *d, int64_t now)
{
	while (d->count > 0 && (int64_t)d->ring[d->head].when < now - d->window)
		pop_head(d);
}

int
dedupe_seen(struct dedupe *d, const char *key, int64_t now)
{
	uint64_t h = hash_of(d, key);

	expire(d, now);
	for (uint32_t s = d->buckets[h & (d->nbuckets - 1)]; s != NIL; s = d->ring[s].next)
		if (d->ring[s].hash == h && (int64_t)d->ring[s].when >= now - d->window)
			return 1;
	return 0;
}

static void
grow(struct dedupe *d)
{
	size_t ncap = d->ring_cap * 2 > d->cap ? d->cap : d->ring_cap * 2;
	struct entry *ring = xcalloc(ncap, sizeof(*ring));

	/* Unroll the ring so the head is at 0. */
	for (size_t i = 0; i < d->count; i++)
		ring[i] = d->ring[(d->head + i) % d->ring_cap];
	free(d->ring);
	d->ring = ring;
	d->ring_cap = ncap;
	d->head = 0;
	while (d->nbuckets < ncap)
		d->nbuckets <<= 1;
	d->buckets = xreallocarray(d->buckets, d->nbuckets, sizeof(*d->buckets));
	index_all(d);
}

void
dedupe_mark(struct dedupe *d, const char *key, int64_t when)
{
	uint64_t h = hash_of(d, key);
	size_t slot, b;

	if (d->count == d->ring_cap) {
		if (d->ring_cap < d->cap)
			grow(d);
		else
			pop_head(d);
	}
	slot = (d->head + d->count) % d->ring_cap;
	b = h & (d->nbuckets - 1);
	d->ring[slot] = (struct entry){ .hash = h, .when = when32(when), .next = d->buckets[b] };
	d->buckets[b] = (uint32_t)slot;
	d->count++;
}
