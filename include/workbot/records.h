/*
 * records: what workbot keeps, on top of store (LMDB) and vault (sealing).
 *
 *   connections  team:user:app -> plaintext header + sealed token set
 *   lastused     team:user:app -> last use time (outside the sealed record)
 *   pending      login id      -> plaintext expiry + sealed body
 *   events       Slack event id -> time first seen (dedupe)
 *   audit        time|counter  -> who did what (never a token)
 *   meta         schema version, key id of the store, rotation record
 *
 * Each sealed record's additional data is its database, its key and its
 * plaintext header: a record copied under another key, edited, or sealed
 * under another master key fails to open; it is never used.
 *
 * Threads: every function may be called from any thread at once, except
 * records_open/close and records_rotate_key/records_check_key (which open
 * their own store: LMDB allows one environment per process, so call those
 * two only while no struct records is open). Functions that write commit
 * (and fsync): call them from workers, never from the event thread.
 *
 * Errors: 0 / -1 (lookups 1 found / 0 not found / -1) with a one-line reason
 * in the caller's buffer. Nothing here logs; callers log once. No error text
 * ever contains a token, a key or a pending body.
 */
#ifndef WORKBOT_RECORDS_H
#define WORKBOT_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "workbot/secret.h"
#include "workbot/vault.h"

struct records;
struct store;

/* Field limits (bytes, without the NUL). Longer values are refused. */
#define RECORDS_ID_MAX		64	/* team, user, app */
#define RECORDS_ACCOUNT_MAX	254	/* "connected as" label */
#define RECORDS_TOKEN_MAX	16384	/* access / refresh token */
#define RECORDS_SCOPE_MAX	4096
#define RECORDS_URL_MAX		2048
#define RECORDS_TYPE_MAX	64
#define RECORDS_PENDING_MAX	16384	/* pending body */
#define RECORDS_EVENT_ID_MAX	255
#define RECORDS_DETAIL_MAX	160	/* audit detail */
#define RECORDS_EVENTS_CAP	100000	/* dedupe ids kept at most */
#define RECORDS_TOUCH_MAX	10000	/* distinct connections buffered between flushes */
#define RECORDS_SHARED_USER	"*shared*"	/* the owner / shared slot */
#define RECORDS_SCHEMA		1

/* ---- opening ---- */

/*
 * Open the store at `dir` (created 0700 if missing) and load `key_file`.
 * The first open of an empty store records the schema version and the
 * key's id in `meta`. Opening with another key fails at once with
 *   key file PATH does not match this store (key id X, store expects Y)
 * `map_size` is [store] map_size (0: 64 MiB).
 */
int records_open(const char *dir, size_t map_size, const char *key_file,
    struct records **out, char *err, size_t errsz);
/* Flushes buffered last-used times (best effort), then closes. NULL is fine. */
void records_close(struct records *r);

const char *records_key_id(const struct records *r);	/* 16 hex chars */
/* Raw access for tests and tools (e.g. the map-size bound). */
struct store *records_store(struct records *r);

/* ---- connections ---- */

enum records_state {
	RECORDS_ACTIVE = 1,
	RECORDS_EXPIRED = 2,	/* refresh refused (invalid_grant): kept, needs a new login */
};
const char *records_state_name(enum records_state st);	/* "active" | "expired" */

/* The plaintext part of a connection: readable without opening anything. */
struct records_conn {
	char               team[RECORDS_ID_MAX + 1];
	char               user[RECORDS_ID_MAX + 1];
	char               app[RECORDS_ID_MAX + 1];
	char               account[RECORDS_ACCOUNT_MAX + 1];	/* "" when unknown */
	enum records_state state;
	int64_t            created;	/* unix seconds */
	int64_t            updated;
	int64_t            last_used;	/* 0 = unknown */
	char               key_id[VAULT_KEY_ID_HEX];
};

/* The sealed part. Owned by the struct; release with records_tokens_clear(). */
struct records_tokens {
	struct secret *access_token;	/* required */
	struct secret *refresh_token;	/* NULL: the provider gave none */
	int64_t        expires_at;	/* unix seconds; 0 = not given (Salesforce) */
	char          *scope;		/* NULL = none */
	char          *instance_url;	/* NULL = none */
	char          *token_type;	/* NULL = none */
};
/* Wipe and free the members, leave the struct zeroed. NULL is fine. */
void records_tokens_clear(struct records_tokens *t);

/* records_conn_put() flags */
#define RECORDS_PUT_MUST_EXIST	0x1	/* update only: 0 if the connection was deleted meanwhile */

/*
 * Store a token set as the active connection team:user:app (user may be
 * RECORDS_SHARED_USER). `account` NULL keeps the stored label. `created`
 * is kept when the record exists, else set to `now`; `updated` = now.
 * Returns 1 written, 0 (only with RECORDS_PUT_MUST_EXIST) no such
 * connection, -1 error. A refresh uses MUST_EXIST, so a connection the user
 * disconnected during the refresh is not brought back.
 */
int records_conn_put(struct records *r, const char *team, const char *user, const char *app,
    const char *account, const struct records_tokens *tok, int64_t now, int flags,
    char *err, size_t errsz);

/*
 * Read a connection. `tok` NULL: the header only (nothing is decrypted).
 * Otherwise the token set is opened into *tok (clear it after use).
 * 1 found, 0 none, -1 error (including a record that fails to open).
 */
int records_conn_get(struct records *r, const char *team, const char *user, const char *app,
    struct records_conn *hdr, struct records_tokens *tok, char *err, size_t errsz);

/* Delete (also its last-used time). 1 deleted, 0 none, -1 error. */
int records_conn_delete(struct records *r, const char *team, const char *user, const char *app,
    char *err, size_t errsz);

/*
 * Change the state (e.g. mark expired on invalid_grant) without changing
 * the tokens (they are re-sealed under the new header). 1 / 0 / -1.
 */
int records_conn_set_state(struct records *r, const char *team, const char *user,
    const char *app, enum records_state st, int64_t now, char *err, size_t errsz);

/*
 * List headers (with last_used) without decrypting anything, in key order.
 * Each filter is NULL for "any". *out is an array of *n entries; free() it.
 */
struct records_filter {
	const char *team;
	const char *user;
	const char *app;
};
int records_conn_list(struct records *r, const struct records_filter *f,
    struct records_conn **out, size_t *n, char *err, size_t errsz);

/*
 * Single-flight lock per connection, for token refresh: hold it across the
 * HTTP call, and re-read the record after taking it (another thread may
 * have refreshed already). Not a store transaction: it blocks only other
 * holders of the same connection's lock. Not recursive: a thread must not
 * take the same connection's lock twice. Unlock with the same names.
 */
void records_conn_lock(struct records *r, const char *team, const char *user, const char *app);
void records_conn_unlock(struct records *r, const char *team, const char *user, const char *app);

/* ---- last used ---- */

/*
 * Note a use in memory (cheap, any thread). 0, or -1 when RECORDS_TOUCH_MAX
 * distinct connections are already waiting for a flush (the use is dropped).
 */
int records_touch(struct records *r, const char *team, const char *user, const char *app,
    int64_t when);
/* Write the buffered times in one transaction; connections deleted meanwhile are skipped. */
int records_flush_touches(struct records *r, size_t *written, char *err, size_t errsz);

/* ---- pending logins ---- */

enum records_pending_result {
	RECORDS_PENDING_NONE = 0,	/* unknown (or already used) */
	RECORDS_PENDING_FOUND = 1,
	RECORDS_PENDING_EXPIRED = 2,	/* was there, but expired: now deleted */
};

/* Store (or replace) a sealed body under `id` until `expires_at`. */
int records_pending_put(struct records *r, const char *id, int64_t expires_at,
    const void *body, size_t len, char *err, size_t errsz);
/*
 * Read without consuming (e.g. /oauth/start, which must be safe to fetch).
 * Returns enum records_pending_result or -1; *body only when FOUND.
 * An expired record is reported EXPIRED and left for the sweep.
 */
int records_pending_get(struct records *r, const char *id, int64_t now,
    struct secret **body, int64_t *expires_at, char *err, size_t errsz);
/*
 * Single use: read and delete in one write transaction. FOUND fills *body;
 * EXPIRED deletes the record and returns no body; NONE when unknown.
 */
int records_pending_take(struct records *r, const char *id, int64_t now,
    struct secret **body, int64_t *expires_at, char *err, size_t errsz);
/*
 * Delete records that expired before `now` (at most `max` per call, 0 = 1000)
 * in one transaction, then, after the commit, call cb once per swept record
 * with its opened body (NULL if it no longer opens), so tokens it held can
 * be revoked. *swept (may be NULL) gets the count.
 */
typedef void (*records_pending_cb)(const char *id, int64_t expires_at,
    const struct secret *body, void *arg);
int records_pending_sweep(struct records *r, int64_t now, size_t max,
    records_pending_cb cb, void *arg, size_t *swept, char *err, size_t errsz);

/* ---- event dedupe ---- */

/* 1 seen at or after now - window_secs; 0 newly marked (persisted); -1 error. */
int records_seen_or_mark(struct records *r, const char *id, int64_t now, int64_t window_secs,
    char *err, size_t errsz);
/* Persist many ids as seen at `now` in one transaction (the daemon's batch). */
int records_events_mark(struct records *r, const char *const *ids, size_t n, int64_t now,
    char *err, size_t errsz);
/*
 * Call cb for every id seen at or after `since` (for the in-memory set at
 * start). cb runs inside a read transaction: it must not call records_*.
 */
typedef void (*records_event_cb)(const char *id, int64_t seen, void *arg);
int records_events_load(struct records *r, int64_t since, records_event_cb cb, void *arg,
    size_t *count, char *err, size_t errsz);
/* Delete ids seen before `before`. */
int records_events_sweep(struct records *r, int64_t before, size_t *removed, char *err, size_t errsz);
/* Cap (default RECORDS_EVENTS_CAP); over it, the oldest ids are dropped when marking. */
void records_events_set_cap(struct records *r, size_t cap);

/* ---- audit ---- */

enum records_audit_action {
	RECORDS_AUDIT_CONNECTED = 1,
	RECORDS_AUDIT_REFRESHED,
	RECORDS_AUDIT_USED,
	RECORDS_AUDIT_DISCONNECTED,
	RECORDS_AUDIT_REVOKED,
	RECORDS_AUDIT_EXPIRED,
	RECORDS_AUDIT_ROTATED,
};
const char *records_audit_action_name(enum records_audit_action a);

struct records_audit {
	int64_t                   time;
	enum records_audit_action action;
	char                      team[RECORDS_ID_MAX + 1];
	char                      user[RECORDS_ID_MAX + 1];
	char                      app[RECORDS_ID_MAX + 1];
	char                      detail[RECORDS_DETAIL_MAX + 1];	/* NEVER a token */
};

/* Append entries (one transaction). Over-long detail is cut; control bytes become '?'. */
int records_audit_append(struct records *r, const struct records_audit *e, size_t n,
    char *err, size_t errsz);
/*
 * Newest first, at most `max` (0 = 1000) entries matching the filter
 * (NULL fields = any; action 0 = any). *out: free().
 */
int records_audit_list(struct records *r, const struct records_filter *f,
    enum records_audit_action action, size_t max, struct records_audit **out, size_t *n,
    char *err, size_t errsz);
/* Delete entries older than `before`. */
int records_audit_sweep(struct records *r, int64_t before, size_t *removed, char *err, size_t errsz);

/* ---- key rotation and the key check ---- */

/*
 * Re-seal every sealed record (connections and pending) under the key in
 * `new_key_file`, in one write transaction that also switches the store's
 * key id and records the new key file's absolute path in meta; then keep
 * the old key as `key_file`.old and rename `new_key_file` over `key_file`
 * (same filesystem; directories fsync'd). Refused while a daemon holds the
 * store's lock (it is held for the whole rotation). `key_file` must match
 * the store. A rotation that crashed after its commit is finished by
 * running it again with the same arguments.
 * *count (may be NULL) gets the number of records re-sealed.
 * Test hook: WORKBOT_TEST_CRASH_AT = before_commit | after_commit |
 * after_backup | after_rename makes the process _exit(99) at that step.
 */
int records_rotate_key(const char *dir, size_t map_size, const char *key_file,
    const char *new_key_file, size_t *count, char *err, size_t errsz);

enum records_key_match {
	RECORDS_KEY_MATCHES = 0,	/* key_file opens this store */
	RECORDS_KEY_NEW_STORE,		/* store has no key id yet: any key will do */
	RECORDS_KEY_OTHER_FILE,		/* key_file does not; `path` does */
	RECORDS_KEY_NO_MATCH,		/* neither key_file nor the candidates do */
};
struct records_key_check {
	enum records_key_match match;
	char store_key_id[VAULT_KEY_ID_HEX];	/* "" for a new store */
	char file_key_id[VAULT_KEY_ID_HEX];	/* "" if key_file could not be read */
	char path[4096];			/* the file that matches, when OTHER_FILE */
	char file_error[512];			/* why key_file could not be loaded, or "" */
};
/*
 * For `workbot check` (and after a crashed rotation): which key file opens
 * the store at `dir`? Tries key_file, then key_file.old, then the new key
 * path recorded by the last rotation. 0 with *out filled, -1 error (no
 * store, unreadable meta). Opens the store itself: see "Threads" above.
 */
int records_check_key(const char *dir, size_t map_size, const char *key_file,
    struct records_key_check *out, char *err, size_t errsz);

#endif
