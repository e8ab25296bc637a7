/*
 * store: the LMDB environment, behind a small interface.
 *
 * store.c is the only file that knows LMDB. The rest of workbot sees named
 * databases (enum store_db), read transactions, write transactions run as a
 * callback, and get / put / delete / iterate-by-prefix on byte strings.
 *
 * Threads: a struct store may be used from any number of threads at once.
 * Read transactions are pooled (reset/renewed, never re-allocated) and may
 * overlap freely. Write transactions are serialized by LMDB (also across
 * processes: the CLI and the daemon share the environment). A thread must
 * never start a write while it already runs one (LMDB would deadlock):
 * store_write() refuses that with an error instead.
 *
 * Map growth: every transaction holds a store-wide read-write lock shared;
 * when a write hits MDB_MAP_FULL, store_write() aborts it, takes the lock
 * exclusively, doubles the map (bounded by store_set_map_max()) and runs the
 * callback again. The callback must therefore be restartable: it may only
 * change state through the transaction it is given. When the map cannot
 * grow, the error is "store is full (map_size …): raise [store] map_size"
 * and nothing that was committed before is lost.
 *
 * Errors: functions return 0 / -1 (lookups 1 found / 0 not found / -1) and
 * write a one-line reason into the caller's buffer. This module never logs.
 *
 * One store per process: LMDB must not open an environment twice in one
 * process, nor be used in a child after fork().
 */
#ifndef WORKBOT_STORE_H
#define WORKBOT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct store_txn;
struct store_lock;

/* The named databases, all opened (and created) at store_open(). */
enum store_db {
	STORE_DB_CONNECTIONS = 0,	/* "connections": team:user:app -> header + sealed tokens */
	STORE_DB_PENDING,		/* "pending": login id -> expiry + sealed body */
	STORE_DB_EVENTS,		/* "events": Slack event id -> time seen (dedupe) */
	STORE_DB_AUDIT,			/* "audit": time + counter -> entry (never a token) */
	STORE_DB_META,			/* "meta": schema version, key id, rotation record */
	STORE_DB_LASTUSED,		/* "lastused": team:user:app -> last use time */
	STORE_DB_COUNT
};

/* Largest key LMDB accepts with its default page size. */
#define STORE_KEY_MAX 511
/* Largest value this interface accepts. */
#define STORE_VALUE_MAX (1024u * 1024u)
/* Default growth bound: the map may grow to this many times the configured size. */
#define STORE_GROW_FACTOR 4

/* store_open() flags */
#define STORE_OPEN_EXISTING 0x1	/* fail if the directory or data.mdb does not exist */

/*
 * Open (creating if needed) the environment in directory `dir`.
 * The directory is created mode 0700 when missing (its parent must exist);
 * a directory that group or others can access is refused, so are database
 * files with a mode wider than 0600. Stale reader slots of dead processes
 * are cleared. `map_size` is the initial map size in bytes (0: 64 MiB); the
 * map may grow to STORE_GROW_FACTOR × map_size on demand (or to twice
 * the size the file already has, if that is more).
 */
int store_open(const char *dir, size_t map_size, int flags, struct store **out,
    char *err, size_t errsz);
/* Close. Every transaction must have ended. NULL is fine. */
void store_close(struct store *s);

/* Change the growth bound (bytes). A bound <= the current size disables growth. */
void store_set_map_max(struct store *s, size_t map_max);
/* Current map size, and bytes in use (last page × page size). */
int store_usage(struct store *s, size_t *map_size, size_t *used, char *err, size_t errsz);
const char *store_dir(const struct store *s);

/*
 * Read transaction: a consistent snapshot until store_read_end(). Values
 * returned by store_get() point into the map and stay valid until then.
 * Keep read transactions short and never hold one across network I/O.
 */
int store_read_begin(struct store *s, struct store_txn **out, char *err, size_t errsz);
void store_read_end(struct store_txn *txn);

/*
 * Write transaction: runs fn(txn, arg, err, errsz) and commits when it
 * returns 0; any other return aborts and store_write() returns -1 with the
 * callback's error text. On a full map fn may run again from the start
 * (see above). Never call store_write() from inside fn.
 */
typedef int (*store_write_fn)(struct store_txn *txn, void *arg, char *err, size_t errsz);
int store_write(struct store *s, store_write_fn fn, void *arg, char *err, size_t errsz);

/* Lookups: 1 found (*val, *vlen set), 0 not found, -1 error. */
int store_get(struct store_txn *txn, enum store_db db, const void *key, size_t klen,
    const void **val, size_t *vlen, char *err, size_t errsz);
/* Write-transaction only. */
int store_put(struct store_txn *txn, enum store_db db, const void *key, size_t klen,
    const void *val, size_t vlen, char *err, size_t errsz);
/* 1 deleted, 0 was not there, -1 error. */
int store_del(struct store_txn *txn, enum store_db db, const void *key, size_t klen,
    char *err, size_t errsz);
/* Number of entries in a database. */
int store_count(struct store_txn *txn, enum store_db db, size_t *count, char *err, size_t errsz);

/*
 * Iterate over the keys that start with `prefix` (plen 0: all), in key order
 * or, with STORE_ITER_REVERSE, in reverse key order. The callback returns one
 * of enum store_iter_action, or -1 to stop with an error (it fills err).
 * STORE_ITER_DELETE deletes the current entry and goes on (write
 * transaction, forward order only). The pointers given to the callback are
 * valid only during the call.
 */
enum store_iter_action {
	STORE_ITER_NEXT = 0,
	STORE_ITER_STOP = 1,
	STORE_ITER_DELETE = 2,
};
#define STORE_ITER_REVERSE 0x1
typedef int (*store_iter_fn)(const void *key, size_t klen, const void *val, size_t vlen,
    void *arg, char *err, size_t errsz);
int store_iter(struct store_txn *txn, enum store_db db, const void *prefix, size_t plen,
    int flags, store_iter_fn fn, void *arg, char *err, size_t errsz);

/*
 * The daemon lock: an exclusive flock(2) on `workbot.lock` in the store
 * directory. The daemon holds it for its whole life; `rotate-key` takes it
 * for the rotation, so neither can run while the other does.
 * store_lock_try(): 1 acquired (*out set), 0 another process holds it, -1 error.
 * store_lock_held(): 1 another open file holds it, 0 free, -1 error.
 */
#define STORE_LOCK_FILE "workbot.lock"
int store_lock_try(const char *dir, struct store_lock **out, char *err, size_t errsz);
int store_lock_held(const char *dir, char *err, size_t errsz);
/* For the daemon: like store_lock_try(), but "held by another process" is an error. */
int store_lock_daemon(const char *dir, struct store_lock **out, char *err, size_t errsz);
/* Release. NULL is fine. */
void store_lock_release(struct store_lock *lock);

/* LMDB version string, for `workbot version`. */
const char *store_lmdb_version(void);

#endif
