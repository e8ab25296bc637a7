/*
 * store: LMDB, and nothing but LMDB.
 *
 * How it works. One MDB_env per process, opened with MDB_NOTLS so read
 * transactions are not tied to a thread: they are kept in a small pool and
 * reused with mdb_txn_reset()/mdb_txn_renew(), which makes a lookup cost no
 * allocation. All six named databases are opened in one write transaction
 * at open time; their handles are then shared by every thread.
 *
 * The map lock. mdb_env_set_mapsize() unmaps and remaps the file, and LMDB
 * only refuses it while a *write* transaction of this process is active: a
 * reader would be left on unmapped memory. So every transaction holds
 * `maplock` shared, and growing the map (our own MDB_MAP_FULL) or adopting a
 * size another process chose (MDB_MAP_RESIZED) holds it exclusively. The
 * lock prefers writers, so it must never be taken twice by one thread: a
 * thread-local depth counter takes it only on the outermost use.
 *
 * Write transactions run as a callback so that a full map can be handled
 * completely here: abort, grow, run the callback again. LMDB serializes
 * writers; a second write transaction begun by the thread that holds one
 * would deadlock, so a thread-local flag refuses it.
 *
 * What it must never do: log, print a value, crash on an LMDB error (each
 * one becomes a sentence through lmdb_text(), the one place LMDB codes are
 * translated), or hand out a pointer into the map after its transaction.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <lmdb.h>

#include "workbot/util.h"
#include "workbot/store.h"
#include "workbot/xmalloc.h"

#define STORE_DEFAULT_MAP	(64u * 1024u * 1024u)
#define STORE_MAXDBS		8	/* six used; room for one schema change */
#define STORE_POOL_MAX		32	/* idle read transactions kept for reuse */
#define STORE_WRITE_TRIES	12	/* grow-and-retry rounds before giving up */
#define STORE_RESIZE_TRIES	4	/* MDB_MAP_RESIZED adoptions per begin */

static const char *const db_names[STORE_DB_COUNT] = {
	[STORE_DB_CONNECTIONS] = "connections",
	[STORE_DB_PENDING]     = "pending",
	[STORE_DB_EVENTS]      = "events",
	[STORE_DB_AUDIT]       = "audit",
	[STORE_DB_META]        = "meta",
	[STORE_DB_LASTUSED]    = "lastused",
};

/*
 * Idle read transactions sit in slots taken and filled with atomic
 * exchanges, no mutex: each thread starts at its own slot, so threads that
 * read in turn keep reusing "their" slot and do not share a cache line.
 */
struct pool_slot {
	struct store_txn *txn;
	char              pad[64 - sizeof(struct store_txn *)];
};

struct store {
	MDB_env          *env;
	MDB_dbi           dbi[STORE_DB_COUNT];
	pthread_rwlock_t  maplock;	/* shared: any txn; exclusive: remap */
	struct pool_slot  pool[STORE_POOL_MAX];
	size_t            map_max;	/* growth bound, under maplock */
	char             *dir;
};

struct store_txn {
	struct store *s;
	MDB_txn      *txn;
	bool          write;
	bool          map_full;	/* a put hit MDB_MAP_FULL: grow and rerun */
};

struct store_lock {
	int fd;
};

/* LMDB allows one environment per process; see the header. */
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static bool store_is_open;

/* Per thread: how deep this thread holds maplock shared, and whether it writes. */
static __thread int tls_shared;
static __thread bool tls_writing;
static __thread unsigned tls_slot_hint;	/* 0: not assigned yet */
static unsigned slot_counter;


/* The one place LMDB's codes become words. */
static const char *
lmdb_text(int rc)
{
	switch (rc) {
	case MDB_MAP_FULL:	return "the map is full";
	case MDB_MAP_RESIZED:	return "the map was resized by another process";
	case MDB_CORRUPTED:	return "the database is corrupted (a page has an unexpected type)";
	case MDB_PAGE_NOTFOUND:	return "the database is corrupted (a page was not found)";
	case MDB_INVALID:	return "not an LMDB data file";
	case MDB_VERSION_MISMATCH: return "the data file was written by an incompatible LMDB version";
	case MDB_PANIC:		return "LMDB hit a fatal error: the environment must be reopened";
	case MDB_READERS_FULL:	return "too many readers (stale reader slots?)";
	case MDB_TXN_FULL:	return "too many changes in one transaction";
	case MDB_DBS_FULL:	return "too many named databases";
	case MDB_BAD_VALSIZE:	return "key or value has an unsupported size";
	case MDB_BAD_TXN:	return "the transaction failed earlier and must be aborted";
	case MDB_BAD_RSLOT:	return "reader slot misuse";
	case MDB_NOTFOUND:	return "not found";
	case MDB_KEYEXIST:	return "key exists";
	case EACCES:		return "permission denied";
	case ENOSPC:		return "no space left on device";
	case ENOMEM:		return "out of memory (or address space for the map)";
	case EINVAL:		return "invalid argument";
	default:		return mdb_strerror(rc);
	}
}

/* "1 GiB", "64 KiB", or bytes when not a round figure. */
static void
size_text(char *buf, size_t bufsz, size_t n)
{
	if (n >= (1u << 30) && n % (1u << 30) == 0)
		snprintf(buf, bufsz, "%zu GiB", n >> 30);
	else if (n >= (1u << 20) && n % (1u << 20) == 0)
		snprintf(buf, bufsz, "%zu MiB", n >> 20);
	else if (n >= (1u << 10) && n % (1u << 10) == 0)
		snprintf(buf, bufsz, "%zu KiB", n >> 10);
	else
		snprintf(buf, bufsz, "%zu bytes", n);
}

static size_t
current_map_size(struct store *s)
{
	MDB_envinfo info;

	if (mdb_env_info(s->env, &info) != 0)
		return 0;
	return info.me_mapsize;
}

static void
full_error(struct store *s, char *err, size_t errsz, const char *why)
{
	char sz[64];

	size_text(sz, sizeof(sz), current_map_size(s));
	util_seterr(err, errsz, "store is full (map_size %s): raise [store] map_size%s", sz, why);
}

static void
lock_shared(struct store *s)
{
	if (tls_shared++ == 0)
		pthread_rwlock_rdlock(&s->maplock);
}

static void
unlock_shared(struct store *s)
{
	if (--tls_shared == 0)
		pthread_rwlock_unlock(&s->maplock);
}

/*
 * Remap with the whole map to ourselves. size 0 adopts the size another
 * process wrote into the meta page (MDB_MAP_RESIZED). The caller has
 * dropped its shared hold; if the thread still holds one from an outer
 * transaction, remapping would pull the map from under it: refuse.
 */
static int
remap(struct store *s, size_t size, char *err, size_t errsz)
{
	int rc;

	if (tls_shared != 0) {
		util_seterr(err, errsz, "store map must change size while this thread holds a transaction; retry later");
		return -1;
	}
	pthread_rwlock_wrlock(&s->maplock);
	rc = mdb_env_set_mapsize(s->env, size);
	pthread_rwlock_unlock(&s->maplock);
	if (rc != 0) {
		util_seterr(err, errsz, "store: resizing the map: %s", lmdb_text(rc));
		return -1;
	}
	return 0;
}

/* Double the map, up to map_max. -1 with the "store is full" text when it cannot. */
static int
grow(struct store *s, char *err, size_t errsz)
{
	size_t cur, want, max;
	char why[128];

	if (tls_shared != 0) {
		full_error(s, err, errsz, " (cannot grow while this thread holds a read transaction)");
		return -1;
	}
	pthread_rwlock_wrlock(&s->maplock);
	cur = current_map_size(s);
	max = s->map_max;
	if (cur == 0 || cur >= max) {
		pthread_rwlock_unlock(&s->maplock);
		full_error(s, err, errsz, "");
		return -1;
	}
	want = cur > max / 2 ? max : cur * 2;
	{
		int rc = mdb_env_set_mapsize(s->env, want);
		pthread_rwlock_unlock(&s->maplock);
		if (rc != 0) {
			snprintf(why, sizeof(why), " (growing to %zu bytes failed: %s)", want, lmdb_text(rc));
			full_error(s, err, errsz, why);
			return -1;
		}
	}
	return 0;
}

static int
check_dir(const char *dir, int flags, char *err, size_t errsz)
{
	struct stat st;

	if (stat(dir, &st) != 0) {
		if (errno != ENOENT || (flags & STORE_OPEN_EXISTING)) {
			util_seterr(err, errsz, "store directory %s: %s", dir, strerror(errno));
			return -1;
		}
		/* mkdir's mode is filtered by umask, which can only narrow 0700. */
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			util_seterr(err, errsz, "store directory %s: cannot create: %s", dir, strerror(errno));
			return -1;
		}
		if (stat(dir, &st) != 0) {
			util_seterr(err, errsz, "store directory %s: %s", dir, strerror(errno));
			return -1;
		}
	}
	if (!S_ISDIR(st.st_mode)) {
		util_seterr(err, errsz, "store directory %s: not a directory", dir);
		return -1;
	}
	if (st.st_mode & 077) {
		util_seterr(err, errsz, "store directory %s is accessible by group/others (mode %04o): chmod 700",
		    dir, (unsigned)(st.st_mode & 07777));
		return -1;
	}
	return 0;
}

/* data.mdb and lock.mdb, when present, must be 0600 or narrower. */
static int
check_files(const char *dir, int flags, char *err, size_t errsz)
{
	static const char *const names[] = { "data.mdb", "lock.mdb" };
	char path[PATH_MAX];
	struct stat st;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= sizeof(path)) {
			util_seterr(err, errsz, "store directory %s: path too long", dir);
			return -1;
		}
		if (lstat(path, &st) != 0) {
			if (errno == ENOENT && !(i == 0 && (flags & STORE_OPEN_EXISTING)))
				continue;
			util_seterr(err, errsz, "store file %s: %s", path, strerror(errno));
			return -1;
		}
		if (!S_ISREG(st.st_mode)) {
			util_seterr(err, errsz, "store file %s: not a regular file", path);
			return -1;
		}
		if (st.st_mode & 077) {
			util_seterr(err, errsz, "store file %s is accessible by group/others (mode %04o): chmod 600",
			    path, (unsigned)(st.st_mode & 07777));
			return -1;
		}
	}
	return 0;
}

static int
open_dbs(struct store *s, char *err, size_t errsz)
{
	MDB_txn *txn;
	int rc, i;

	/* All handles in one write txn: a dbi must not be opened while another txn opens one. */
	rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc != 0) {
		util_seterr(err, errsz, "store %s: begin: %s", s->dir, lmdb_text(rc));
		return -1;
	}
	for (i = 0; i < STORE_DB_COUNT; i++) {
		rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &s->dbi[i]);
		if (rc != 0) {
			mdb_txn_abort(txn);
			util_seterr(err, errsz, "store %s: opening database %s: %s", s->dir, db_names[i], lmdb_text(rc));
			return -1;
		}
	}
	rc = mdb_txn_commit(txn);
	if (rc != 0) {
		util_seterr(err, errsz, "store %s: creating databases: %s", s->dir, lmdb_text(rc));
		return -1;
	}
	return 0;
}

int
store_open(const char *dir, size_t map_size, int flags, struct store **out, char *err, size_t errsz)
{
	struct store *s;
	pthread_rwlockattr_t attr;
	int rc, dead = 0;

	if (dir == NULL || *dir == '\0') {
		util_seterr(err, errsz, "store: no directory given");
		return -1;
	}
	if (map_size == 0)
		map_size = STORE_DEFAULT_MAP;
	if (check_dir(dir, flags, err, errsz) != 0 || check_files(dir, flags, err, errsz) != 0)
		return -1;

	pthread_mutex_lock(&open_mu);
	if (store_is_open) {
		pthread_mutex_unlock(&open_mu);
		util_seterr(err, errsz, "store %s: a store is already open in this process", dir);
		return -1;
	}
	store_is_open = true;
	pthread_mutex_unlock(&open_mu);

	s = xcalloc(1, sizeof(*s));
	s->dir = xstrdup(dir);
	s->map_max = map_size > SIZE_MAX / STORE_GROW_FACTOR ? SIZE_MAX : map_size * STORE_GROW_FACTOR;
	pthread_rwlockattr_init(&attr);
	/* Writers first, so a remap is not starved by a steady stream of readers. */
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->maplock, &attr);
	pthread_rwlockattr_destroy(&attr);

	if ((rc = mdb_env_create(&s->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(s->env, STORE_MAXDBS)) != 0 ||
	    (rc = mdb_env_set_mapsize(s->env, map_size)) != 0) {
		util_seterr(err, errsz, "store %s: %s", dir, lmdb_text(rc));
		store_close(s);
		return -1;
	}
	/* 0600: LMDB creates data.mdb/lock.mdb with this mode (less umask). */
	rc = mdb_env_open(s->env, dir, MDB_NOTLS, 0600);
	if (rc != 0) {
		util_seterr(err, errsz, "store %s: open: %s", dir, lmdb_text(rc));
		store_close(s);
		return -1;
	}
	/* Reader slots left by a crashed process pin old pages for ever. */
	rc = mdb_reader_check(s->env, &dead);
	if (rc != 0) {
		util_seterr(err, errsz, "store %s: reader check: %s", dir, lmdb_text(rc));
		store_close(s);
		return -1;
	}
	/*
	 * The data may already be larger than the configured size (LMDB then maps
	 * exactly what is used): leave room to grow past it.
	 */
	if (current_map_size(s) > SIZE_MAX / 2)
		s->map_max = SIZE_MAX;
	else if (2 * current_map_size(s) > s->map_max)
		s->map_max = 2 * current_map_size(s);
	if (open_dbs(s, err, errsz) != 0) {
		store_close(s);
		return -1;
	}
	*out = s;
	return 0;
}

void
store_close(struct store *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < STORE_POOL_MAX; i++) {
		struct store_txn *t = s->pool[i].txn;
		if (t != NULL) {
			mdb_txn_abort(t->txn);
			free(t);
		}
	}
	if (s->env != NULL)
		mdb_env_close(s->env);
	pthread_rwlock_destroy(&s->maplock);
	free(s->dir);
	free(s);
	pthread_mutex_lock(&open_mu);
	store_is_open = false;
	pthread_mutex_unlock(&open_mu);
}

void
store_set_map_max(struct store *s, size_t map_max)
{
	pthread_rwlock_wrlock(&s->maplock);
	s->map_max = map_max;
	pthread_rwlock_unlock(&s->maplock);
}

int
store_usage(struct store *s, size_t *map_size, size_t *used, char *err, size_t errsz)
{
	MDB_envinfo info;
	MDB_stat st;
	int rc;

	lock_shared(s);
	if ((rc = mdb_env_info(s->env, &info)) != 0 || (rc = mdb_env_stat(s->env, &st)) != 0) {
		unlock_shared(s);
		util_seterr(err, errsz, "store: %s", lmdb_text(rc));
		return -1;
	}
	unlock_shared(s);
	*map_size = info.me_mapsize;
	*used = (info.me_last_pgno + 1) * (size_t)st.ms_psize;
	return 0;
}

const char *
store_dir(const struct store *s)
{
	return s->dir;
}

const char *
store_lmdb_version(void)
{
	return mdb_version(NULL, NULL, NULL);
}

/* ---- read transactions ---- */

static unsigned
slot_hint(void)
{
	if (tls_slot_hint == 0)
		tls_slot_hint = __atomic_add_fetch(&slot_counter, 1, __ATOMIC_RELAXED) | 0x80000000u;
	return tls_slot_hint & 0x7fffffffu;
}

static struct store_txn *
pool_pop(struct store *s)
{
	unsigned h = slot_hint(), i;
	struct store_txn *t;

	for (i = 0; i < STORE_POOL_MAX; i++) {
		struct pool_slot *slot = &s->pool[(h + i) % STORE_POOL_MAX];
		if (__atomic_load_n(&slot->txn, __ATOMIC_RELAXED) == NULL)
			continue;
		t = __atomic_exchange_n(&slot->txn, NULL, __ATOMIC_ACQUIRE);
		if (t != NULL)
			return t;
	}
	return NULL;
}

/* 0 if parked, -1 if every slot is full. */
static int
pool_push(struct store *s, struct store_txn *t)
{
	unsigned h = slot_hint(), i;

	for (i = 0; i < STORE_POOL_MAX; i++) {
		struct pool_slot *slot = &s->pool[(h + i) % STORE_POOL_MAX];
		struct store_txn *expect = NULL;
		if (__atomic_compare_exchange_n(&slot->txn, &expect, t, false, __ATOMIC_RELEASE,
		    __ATOMIC_RELAXED))
			return 0;
	}
	return -1;
}

int
store_read_begin(struct store *s, struct store_txn **out, char *err, size_t errsz)
{
	struct store_txn *t;
	MDB_txn *mt;
	int rc = 0, tries;

	lock_shared(s);
	for (tries = 0; tries < STORE_RESIZE_TRIES; tries++) {
		t = pool_pop(s);
		if (t != NULL) {
			rc = mdb_txn_renew(t->txn);
			if (rc == 0) {
				*out = t;
				return 0;
			}
			mdb_txn_abort(t->txn);
			free(t);
		} else {
			rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &mt);
			if (rc == 0) {
				t = xcalloc(1, sizeof(*t));
				t->s = s;
				t->txn = mt;
				*out = t;
				return 0;
			}
		}
		if (rc != MDB_MAP_RESIZED)
			break;
		/* Another process grew the map: adopt its size, then try again. */
		unlock_shared(s);
		if (remap(s, 0, err, errsz) != 0)
			return -1;
		lock_shared(s);
	}
	unlock_shared(s);
	util_seterr(err, errsz, "store: read transaction: %s", lmdb_text(rc));
	return -1;
}

void
store_read_end(struct store_txn *t)
{
	struct store *s;

	if (t == NULL)
		return;
	s = t->s;
	/* Reset keeps the reader slot (MDB_NOTLS) and the allocation for the next reader. */
	mdb_txn_reset(t->txn);
	if (pool_push(s, t) != 0) {
		mdb_txn_abort(t->txn);
		free(t);
	}
	unlock_shared(s);
}

/* ---- write transactions ---- */

int
store_write(struct store *s, store_write_fn fn, void *arg, char *err, size_t errsz)
{
	struct store_txn t;
	int rc, frc, tries, resized = 0;

	if (tls_writing) {
		/* LMDB would block for ever on its own writer lock. */
		util_seterr(err, errsz, "store: nested write transaction refused (it would deadlock)");
		return -1;
	}
	for (tries = 0; tries < STORE_WRITE_TRIES; tries++) {
		memset(&t, 0, sizeof(t));
		t.s = s;
		t.write = true;
		lock_shared(s);
		rc = mdb_txn_begin(s->env, NULL, 0, &t.txn);
		if (rc == MDB_MAP_RESIZED && resized++ < STORE_RESIZE_TRIES) {
			unlock_shared(s);
			if (remap(s, 0, err, errsz) != 0)
				return -1;
			continue;
		}
		if (rc != 0) {
			unlock_shared(s);
			util_seterr(err, errsz, "store: write transaction: %s", lmdb_text(rc));
			return -1;
		}
		tls_writing = true;
		if (err != NULL && errsz > 0)
			err[0] = '\0';
		frc = fn(&t, arg, err, errsz);
		tls_writing = false;
		if (frc == 0 && !t.map_full) {
			rc = mdb_txn_commit(t.txn);	/* frees the txn, also on failure */
			if (rc == 0) {
				unlock_shared(s);
				return 0;
			}
			if (rc == MDB_MAP_FULL) {
				t.map_full = true;
			} else {
				unlock_shared(s);
				util_seterr(err, errsz, "store: commit: %s", lmdb_text(rc));
				return -1;
			}
		} else {
			mdb_txn_abort(t.txn);
		}
		unlock_shared(s);
		if (!t.map_full) {
			if (err != NULL && errsz > 0 && err[0] == '\0')
				util_seterr(err, errsz, "store: write aborted");
			return -1;
		}
		/* Nothing was written: make room and run the whole callback again. */
		if (grow(s, err, errsz) != 0)
			return -1;
	}
	full_error(s, err, errsz, " (still full after growing)");
	return -1;
}

/* ---- operations ---- */

static int
check_key(size_t klen, char *err, size_t errsz)
{
	if (klen == 0 || klen > STORE_KEY_MAX) {
		util_seterr(err, errsz, "store: key length %zu outside 1..%d", klen, STORE_KEY_MAX);
		return -1;
	}
	return 0;
}

static int
check_db(enum store_db db, char *err, size_t errsz)
{
	if ((int)db < 0 || db >= STORE_DB_COUNT) {
		util_seterr(err, errsz, "store: no such database %d", (int)db);
		return -1;
	}
	return 0;
}

/* A put that hit the map limit marks the txn so store_write() grows and reruns. */
static void
op_error(struct store_txn *t, int rc, const char *op, enum store_db db, char *err, size_t errsz)
{
	if (rc == MDB_MAP_FULL) {
		t->map_full = true;
		full_error(t->s, err, errsz, "");
		return;
	}
	util_seterr(err, errsz, "store: %s in %s: %s", op, db_names[db], lmdb_text(rc));
}

int
store_get(struct store_txn *t, enum store_db db, const void *key, size_t klen,
    const void **val, size_t *vlen, char *err, size_t errsz)
{
	MDB_val k, v;
	int rc;

	if (check_db(db, err, errsz) != 0 || check_key(klen, err, errsz) != 0)
		return -1;
	k.mv_size = klen;
	k.mv_data = (void *)(uintptr_t)key;
	rc = mdb_get(t->txn, t->s->dbi[db], &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0) {
		op_error(t, rc, "get", db, err, errsz);
		return -1;
	}
	*val = v.mv_data;
	*vlen = v.mv_size;
	return 1;
}

int
store_put(struct store_txn *t, enum store_db db, const void *key, size_t klen,
    const void *val, size_t vlen, char *err, size_t errsz)
{
	MDB_val k, v;
	int rc;

	if (check_db(db, err, errsz) != 0 || check_key(klen, err, errsz) != 0)
		return -1;
	if (!t->write) {
		util_seterr(err, errsz, "store: put in a read transaction");
		return -1;
	}
	if (vlen > STORE_VALUE_MAX) {
		util_seterr(err, errsz, "store: value of %zu bytes is over the %u-byte limit", vlen, STORE_VALUE_MAX);
		return -1;
	}
	k.mv_size = klen;
	k.mv_data = (void *)(uintptr_t)key;
	v.mv_size = vlen;
	v.mv_data = (void *)(uintptr_t)val;
	rc = mdb_put(t->txn, t->s->dbi[db], &k, &v, 0);
	if (rc != 0) {
		op_error(t, rc, "put", db, err, errsz);
		return -1;
	}
	return 0;
}

int
store_del(struct store_txn *t, enum store_db db, const void *key, size_t klen, char *err, size_t errsz)
{
	MDB_val k;
	int rc;

	if (check_db(db, err, errsz) != 0 || check_key(klen, err, errsz) != 0)
		return -1;
	if (!t->write) {
		util_seterr(err, errsz, "store: delete in a read transaction");
		return -1;
	}
	k.mv_size = klen;
	k.mv_data = (void *)(uintptr_t)key;
	rc = mdb_del(t->txn, t->s->dbi[db], &k, NULL);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0) {
		op_error(t, rc, "delete", db, err, errsz);
		return -1;
	}
	return 1;
}

int
store_count(struct store_txn *t, enum store_db db, size_t *count, char *err, size_t errsz)
{
	MDB_stat st;
	int rc;

	if (check_db(db, err, errsz) != 0)
		return -1;
	rc = mdb_stat(t->txn, t->s->dbi[db], &st);
	if (rc != 0) {
		op_error(t, rc, "stat", db, err, errsz);
		return -1;
	}
	*count = st.ms_entries;
	return 0;
}

static bool
has_prefix(const MDB_val *k, const void *prefix, size_t plen)
{
	return k->mv_size >= plen && (plen == 0 || memcmp(k->mv_data, prefix, plen) == 0);
}

/*
 * Position a reverse cursor on the last key that starts with prefix: the
 * first key >= the prefix's successor, then one back (or the very last key).
 */
static int
seek_last(MDB_cursor *cur, const void *prefix, size_t plen, MDB_val *k, MDB_val *v)
{
	unsigned char succ[STORE_KEY_MAX];
	size_t n = plen;
	int rc;

	if (plen == 0)
		return mdb_cursor_get(cur, k, v, MDB_LAST);
	memcpy(succ, prefix, plen);
	while (n > 0 && succ[n - 1] == 0xff)
		n--;
	if (n == 0)	/* prefix is all 0xff: nothing sorts after it but its own keys */
		return mdb_cursor_get(cur, k, v, MDB_LAST);
	succ[n - 1]++;
	k->mv_size = n;
	k->mv_data = succ;
	rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
	if (rc == MDB_NOTFOUND)
		return mdb_cursor_get(cur, k, v, MDB_LAST);
	if (rc != 0)
		return rc;
	return mdb_cursor_get(cur, k, v, MDB_PREV);
}

int
store_iter(struct store_txn *t, enum store_db db, const void *prefix, size_t plen, int flags,
    store_iter_fn fn, void *arg, char *err, size_t errsz)
{
	MDB_cursor *cur;
	MDB_val k, v;
	bool reverse = (flags & STORE_ITER_REVERSE) != 0;
	int rc, act;

	if (check_db(db, err, errsz) != 0)
		return -1;
	if (plen > STORE_KEY_MAX) {
		util_seterr(err, errsz, "store: prefix too long");
		return -1;
	}
	rc = mdb_cursor_open(t->txn, t->s->dbi[db], &cur);
	if (rc != 0) {
		op_error(t, rc, "cursor", db, err, errsz);
		return -1;
	}
	if (reverse) {
		rc = seek_last(cur, prefix, plen, &k, &v);
	} else if (plen == 0) {
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	} else {
		k.mv_size = plen;
		k.mv_data = (void *)(uintptr_t)prefix;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	}
	while (rc == 0 && has_prefix(&k, prefix, plen)) {
		act = fn(k.mv_data, k.mv_size, v.mv_data, v.mv_size, arg, err, errsz);
		if (act < 0) {
			mdb_cursor_close(cur);
			return -1;
		}
		if (act == STORE_ITER_STOP)
			break;
		if (act == STORE_ITER_DELETE) {
			if (!t->write || reverse) {
				mdb_cursor_close(cur);
				util_seterr(err, errsz, "store: delete while iterating needs a forward write transaction");
				return -1;
			}
			/* After a cursor delete, MDB_NEXT lands on the entry that followed. */
			rc = mdb_cursor_del(cur, 0);
			if (rc != 0)
				break;
		}
		rc = mdb_cursor_get(cur, &k, &v, reverse ? MDB_PREV : MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		op_error(t, rc, "iterate", db, err, errsz);
		return -1;
	}
	return 0;
}

/* ---- the daemon lock ---- */

static int
lock_open(const char *dir, char *err, size_t errsz)
{
	char path[PATH_MAX];
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, STORE_LOCK_FILE) >= sizeof(path)) {
		util_seterr(err, errsz, "store directory %s: path too long", dir);
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		util_seterr(err, errsz, "lock file %s: %s", path, strerror(errno));
	return fd;
}

int
store_lock_try(const char *dir, struct store_lock **out, char *err, size_t errsz)
{
	struct store_lock *l;
	int fd = lock_open(dir, err, errsz);

	if (fd < 0)
		return -1;
	/* flock, not fcntl: it belongs to this open file, so LMDB's own fcntl locks are untouched. */
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return 0;
		util_seterr(err, errsz, "lock file %s/%s: %s", dir, STORE_LOCK_FILE, strerror(e));
		return -1;
	}
	l = xmalloc(sizeof(*l));
	l->fd = fd;
	*out = l;
	return 1;
}

int
store_lock_daemon(const char *dir, struct store_lock **out, char *err, size_t errsz)
{
	int rc = store_lock_try(dir, out, err, errsz);

	if (rc == 0)
		util_seterr(err, errsz, "store %s is in use by another workbot process (%s is locked)",
		    dir, STORE_LOCK_FILE);
	return rc == 1 ? 0 : -1;
}

int
store_lock_held(const char *dir, char *err, size_t errsz)
{
	struct store_lock *l;
	int rc = store_lock_try(dir, &l, err, errsz);

	if (rc == 1) {
		store_lock_release(l);
		return 0;
	}
	return rc == 0 ? 1 : -1;
}

void
store_lock_release(struct store_lock *l)
{
	if (l == NULL)
		return;
	close(l->fd);	/* drops the flock */
	free(l);
}
