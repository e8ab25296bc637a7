/*
 * dedupe: the in-memory set of work ids already run (event ids, action ids),
 * so a retried or duplicated envelope is acked but run once.
 *
 * Owned by the event thread (no locks). Ids are kept as keyed 64-bit
 * SipHash values (libsodium crypto_shorthash, random key per process), so
 * the set costs 16 bytes per id whatever the id's length and hostile ids
 * cannot force collisions. Entries live `window` seconds; at most `cap`
 * are kept, the oldest dropped first. Memory grows with use, from a small
 * start up to cap. The store keeps the ids across restarts; this set is
 * loaded from it at start (see records_events_load).
 */
#ifndef WORKBOT_DEDUPE_H
#define WORKBOT_DEDUPE_H

#include <stddef.h>
#include <stdint.h>

struct dedupe;

struct dedupe *dedupe_new(size_t cap, int64_t window_secs);
void dedupe_free(struct dedupe *d);

/* 1 when `key` was marked within the window before `now`, else 0. */
int dedupe_seen(struct dedupe *d, const char *key, int64_t now);
/* Remember `key` as run at `when` (unix seconds, non-decreasing in practice). */
void dedupe_mark(struct dedupe *d, const char *key, int64_t when);
size_t dedupe_count(const struct dedupe *d);

#endif
