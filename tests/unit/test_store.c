/*
 * Unit tests for store: directory and file modes, get/put/delete/iterate,
 * nested writes, map full and growth, corrupt files, the daemon lock.
 * Real LMDB files in a mkdtemp directory; one environment open at a time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "workbot/store.h"

static char tmpdir[64];
static char storedir[128];

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/wb-store-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(storedir, sizeof(storedir), "%s/db", tmpdir);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

struct kv {
	const char *k;
	const char *v;
};

static int
put_fn(struct store_txn *t, void *arg, char *err, size_t errsz)
{
	const struct kv *p;

	for (p = arg; p->k != NULL; p++)
		if (store_put(t, STORE_DB_META, p->k, strlen(p->k), p->v, strlen(p->v), err, errsz) != 0)
			return -1;
	return 0;
}

static int
get_str(struct store *s, enum store_db db, const char *k, char *out, size_t outsz)
{
	struct store_txn *t;
	const void *v;
	size_t vlen;
	char err[256];
	int rc;

	assert_int_equal(store_read_begin(s, &t, err, sizeof(err)), 0);
	rc = store_get(t, db, k, strlen(k), &v, &vlen, err, sizeof(err));
	if (rc == 1) {
		assert_true(vlen < outsz);
		memcpy(out, v, vlen);
		out[vlen] = '\0';
	}
	store_read_end(t);
	return rc;
}

static void
test_open_modes(void **state)
{
	struct store *s, *s2;
	struct stat st;
	char err[512], path[256];
	(void)state;

	assert_int_equal(store_open(storedir, 1 << 20, 0, &s, err, sizeof(err)), 0);
	assert_int_equal(stat(storedir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	snprintf(path, sizeof(path), "%s/data.mdb", storedir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 077, 0);
	snprintf(path, sizeof(path), "%s/lock.mdb", storedir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 077, 0);
	assert_string_equal(store_dir(s), storedir);

	/* one environment per process */
	assert_int_equal(store_open(storedir, 1 << 20, 0, &s2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "already open"));
	store_close(s);
	store_close(NULL);

	/* a directory others can enter is refused */
	assert_int_equal(chmod(storedir, 0750), 0);
	assert_int_equal(store_open(storedir, 1 << 20, 0, &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "accessible by group/others (mode 0750): chmod 700"));
	assert_int_equal(chmod(storedir, 0700), 0);

	/* a data file others can read is refused */
	snprintf(path, sizeof(path), "%s/data.mdb", storedir);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(store_open(storedir, 1 << 20, 0, &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "data.mdb is accessible by group/others (mode 0644)"));
	assert_int_equal(chmod(path, 0600), 0);

	/* STORE_OPEN_EXISTING on a missing directory */
	snprintf(path, sizeof(path), "%s/nothere", tmpdir);
	assert_int_equal(store_open(path, 1 << 20, STORE_OPEN_EXISTING, &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "nothere"));
	assert_int_equal(stat(path, &st), -1);

	/* the parent must exist */
	snprintf(path, sizeof(path), "%s/a/b", tmpdir);
	assert_int_equal(store_open(path, 1 << 20, 0, &s, err, sizeof(err)), -1);

	/* reopen works */
	assert_int_equal(store_open(storedir, 1 << 20, 0, &s, err, sizeof(err)), 0);
	store_close(s);
}

static void
test_corrupt_file(void **state)
{
	struct store *s;
	char err[512], path[256], junk[8192];
	int fd;
	(void)state;

	assert_int_equal(mkdir(storedir, 0700), 0);
	snprintf(path, sizeof(path), "%s/data.mdb", storedir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	memset(junk, 0x5a, sizeof(junk));
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	assert_int_equal(store_open(storedir, 1 << 20, 0, &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, storedir));
	/* and the process can still open another store afterwards */
	snprintf(path, sizeof(path), "%s/other", tmpdir);
	assert_int_equal(store_open(path, 1 << 20, 0, &s, err, sizeof(err)), 0);
	store_close(s);
}

struct collect {
	char   keys[64][32];
	size_t n;
	int    delete_odd;
};

static int
collect_fn(const void *key, size_t klen, const void *val, size_t vlen, void *arg, char *err, size_t errsz)
{
	struct collect *c = arg;

	(void)val;
	(void)vlen;
	(void)err;
	(void)errsz;
	if (c->n < 64 && klen < 32) {
		memcpy(c->keys[c->n], key, klen);
		c->keys[c->n][klen] = '\0';
		c->n++;
	}
	if (c->delete_odd && (c->n % 2) == 1)
		return STORE_ITER_DELETE;
	return STORE_ITER_NEXT;
}

static int
iter_delete_fn(struct store_txn *t, void *arg, char *err, size_t errsz)
{
	return store_iter(t, STORE_DB_META, "b:", 2, 0, collect_fn, arg, err, errsz);
}

static int
del_fn(struct store_txn *t, void *arg, char *err, size_t errsz)
{
	int *result = arg;

	*result = store_del(t, STORE_DB_META, "a", 1, err, errsz);
	return *result < 0 ? -1 : 0;
}

static void
test_crud_iter(void **state)
{
	static const struct kv kvs[] = {
		{ "a", "1" }, { "b:1", "x" }, { "b:2", "y" }, { "b:3", "z" }, { "b:4", "w" }, { "c", "3" },
		{ NULL, NULL },
	};
	struct store *s;
	struct store_txn *t;
	struct collect c;
	char err[512], buf[64];
	size_t n;
	int result;
	(void)state;

	assert_int_equal(store_open(storedir, 1 << 20, 0, &s, err, sizeof(err)), 0);
	assert_int_equal(store_write(s, put_fn, (void *)kvs, err, sizeof(err)), 0);
	assert_int_equal(get_str(s, STORE_DB_META, "a", buf, sizeof(buf)), 1);
	assert_string_equal(buf, "1");
	assert_int_equal(get_str(s, STORE_DB_META, "zz", buf, sizeof(buf)), 0);
	/* databases are separate */
	assert_int_equal(get_str(s, STORE_DB_CONNECTIONS, "a", buf, sizeof(buf)), 0);

	/* prefix, forward and reverse */
	assert_int_equal(store_read_begin(s, &t, err, sizeof(err)), 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_iter(t, STORE_DB_META, "b:", 2, 0, collect_fn, &c, err, sizeof(err)), 0);
	assert_int_equal(c.n, 4);
	assert_string_equal(c.keys[0], "b:1");
	assert_string_equal(c.keys[3], "b:4");
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_iter(t, STORE_DB_META, "b:", 2, STORE_ITER_REVERSE, collect_fn, &c, err, sizeof(err)), 0);
	assert_int_equal(c.n, 4);
	assert_string_equal(c.keys[0], "b:4");
	assert_string_equal(c.keys[3], "b:1");
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_iter(t, STORE_DB_META, NULL, 0, STORE_ITER_REVERSE, collect_fn, &c, err, sizeof(err)), 0);
	assert_int_equal(c.n, 6);
	assert_string_equal(c.keys[0], "c");
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_iter(t, STORE_DB_META, "q", 1, 0, collect_fn, &c, err, sizeof(err)), 0);
	assert_int_equal(c.n, 0);
	/* a read transaction cannot write, and deleting while reading is refused */
	assert_int_equal(store_put(t, STORE_DB_META, "x", 1, "y", 1, err, sizeof(err)), -1);
	memset(&c, 0, sizeof(c));
	c.delete_odd = 1;
	assert_int_equal(store_iter(t, STORE_DB_META, "b:", 2, 0, collect_fn, &c, err, sizeof(err)), -1);
	assert_int_equal(store_count(t, STORE_DB_META, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 6);
	/* bad keys are errors, not crashes */
	assert_int_equal(store_get(t, STORE_DB_META, "", 0, NULL, NULL, err, sizeof(err)), -1);
	{
		char big[600];
		const void *v;
		size_t vlen;
		memset(big, 'k', sizeof(big));
		assert_int_equal(store_get(t, STORE_DB_META, big, sizeof(big), &v, &vlen, err, sizeof(err)), -1);
		assert_int_equal(store_get(t, (enum store_db)42, "a", 1, &v, &vlen, err, sizeof(err)), -1);
	}
	store_read_end(t);

	/* delete while iterating, forward, in a write transaction: b:1 and b:3 go */
	memset(&c, 0, sizeof(c));
	c.delete_odd = 1;
	assert_int_equal(store_write(s, iter_delete_fn, &c, err, sizeof(err)), 0);
	assert_int_equal(c.n, 4);
	assert_int_equal(get_str(s, STORE_DB_META, "b:1", buf, sizeof(buf)), 0);
	assert_int_equal(get_str(s, STORE_DB_META, "b:2", buf, sizeof(buf)), 1);
	assert_int_equal(get_str(s, STORE_DB_META, "b:3", buf, sizeof(buf)), 0);
	assert_int_equal(get_str(s, STORE_DB_META, "b:4", buf, sizeof(buf)), 1);

	assert_int_equal(store_write(s, del_fn, &result, err, sizeof(err)), 0);
	assert_int_equal(result, 1);
	assert_int_equal(store_write(s, del_fn, &result, err, sizeof(err)), 0);
	assert_int_equal(result, 0);
	store_close(s);
}

static int
nested_fn(struct store_txn *t, void *arg, char *err, size_t errsz)
{
	struct store *s = arg;
	char inner[256];

	(void)t;
	/* This would deadlock in LMDB; store refuses it. */
	if (store_write(s, put_fn, NULL, inner, sizeof(inner)) != -1)
		return -1;
	snprintf(err, errsz, "%s", inner);
	return -1;
}

static int
abort_fn(struct store_txn *t, void *arg, char *err, size_t errsz)
{
	(void)arg;
	if (store_put(t, STORE_DB_META, "gone", 4, "x", 1, err, errsz) != 0)
		return -1;
	snprintf(err, errsz, "changed my mind");
	return -1;
}

static void
test_nested_and_abort(void **state)
{
	struct store *s;
	char err[512], buf[64];
	(void)state;

	assert_int_equal(store_open(storedir, 1 << 20, 0, &s, err, sizeof(err)), 0);
	assert_int_equal(store_write(s, nested_fn, s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "nested write transaction"));
	assert_int_equal(store_write(s, abort_fn, NULL, err, sizeof(err)), -1);
	assert_string_equal(err, "changed my mind");
	assert_int_equal(get_str(s, STORE_DB_META, "gone", buf, sizeof(buf)), 0);
	store_close(s);
}

struct fill {
	int    start;
	int    count;
	size_t vsize;
};

static int
fill_fn(struct store_txn *t, void *arg, char *err, size_t errsz)
{
	struct fill *f = arg;
	char key[32], val[4096];
	int i;

	memset(val, 'v', sizeof(val));
	for (i = f->start; i < f->start + f->count; i++) {
		snprintf(key, sizeof(key), "k%08d", i);
		if (store_put(t, STORE_DB_EVENTS, key, strlen(key), val, f->vsize, err, errsz) != 0)
			return -1;
	}
	return 0;
}

static void
test_map_full(void **state)
{
	struct store *s;
	struct fill f = { 0, 1, 4000 };
	char err[512], buf[64];
	size_t map, used;
	int i, ok = 0;
	(void)state;

	assert_int_equal(store_open(storedir, 256 * 1024, 0, &s, err, sizeof(err)), 0);
	store_set_map_max(s, 0);	/* growth disabled */
	for (i = 0; i < 1000; i++) {
		f.start = i;
		if (store_write(s, fill_fn, &f, err, sizeof(err)) != 0)
			break;
		ok++;
	}
	assert_true(ok > 5);
	assert_true(ok < 1000);
	assert_string_equal(err, "store is full (map_size 256 KiB): raise [store] map_size");
	/* what was committed before is all there, and reads still work */
	for (i = 0; i < ok; i++) {
		static char big[8192];
		char key[32];
		snprintf(key, sizeof(key), "k%08d", i);
		assert_int_equal(get_str(s, STORE_DB_EVENTS, key, big, sizeof(big)), 1);
		assert_int_equal(strlen(big), 4000);
	}
	{
		struct store_txn *t;
		size_t n;
		assert_int_equal(store_read_begin(s, &t, err, sizeof(err)), 0);
		assert_int_equal(store_count(t, STORE_DB_EVENTS, &n, err, sizeof(err)), 0);
		assert_int_equal(n, (size_t)ok);
		store_read_end(t);
	}
	/* small writes elsewhere may still fit; a big one still fails cleanly */
	f.start = 5000;
	f.count = 50;
	assert_int_equal(store_write(s, fill_fn, &f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "store is full (map_size"));

	/* allowing growth makes the same write succeed: the map doubles (up to 4x) */
	store_set_map_max(s, 4 * 256 * 1024);
	f.count = 40;
	assert_int_equal(store_write(s, fill_fn, &f, err, sizeof(err)), 0);
	assert_int_equal(store_usage(s, &map, &used, err, sizeof(err)), 0);
	assert_true(map > 256 * 1024);
	assert_true(map <= 4 * 256 * 1024);
	assert_true(used <= map);
	/* and past the bound the error again */
	for (i = 0; i < 1000; i++) {
		f.start = 10000 + i * 40;
		if (store_write(s, fill_fn, &f, err, sizeof(err)) != 0)
			break;
	}
	assert_true(i < 1000);
	assert_string_equal(err, "store is full (map_size 1 MiB): raise [store] map_size");
	store_close(s);

	/* a reopen with a configured size below the data in it still maps all of it */
	assert_int_equal(store_open(storedir, 256 * 1024, 0, &s, err, sizeof(err)), 0);
	assert_int_equal(store_usage(s, &map, &used, err, sizeof(err)), 0);
	assert_true(map >= used);
	assert_true(used > 512 * 1024);
	assert_int_equal(get_str(s, STORE_DB_META, "none", buf, sizeof(buf)), 0);
	store_close(s);
}

/*
 * Another process grows the map while this one has the store open: the
 * next transaction here gets MDB_MAP_RESIZED, adopts the new size, and
 * sees the other process's data. The child is forked before this process
 * opens LMDB, so it never inherits an open environment.
 */
static void
test_map_resized_elsewhere(void **state)
{
	struct store *s;
	struct store_txn *t;
	struct fill f = { 0, 150, 4000 };
	char err[512], c;
	int p1[2], p2[2], status;
	size_t n, map, used;
	pid_t pid;
	(void)state;

	assert_int_equal(pipe(p1), 0);
	assert_int_equal(pipe(p2), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *cs;
		if (read(p1[0], &c, 1) != 1)
			_exit(2);
		if (store_open(storedir, 256 * 1024, 0, &cs, err, sizeof(err)) != 0)
			_exit(3);
		if (store_write(cs, fill_fn, &f, err, sizeof(err)) != 0)	/* grows past 256 KiB */
			_exit(4);
		store_close(cs);
		_exit(write(p2[1], "d", 1) == 1 ? 0 : 5);
	}
	assert_int_equal(store_open(storedir, 256 * 1024, 0, &s, err, sizeof(err)), 0);
	assert_int_equal(store_usage(s, &map, &used, err, sizeof(err)), 0);
	assert_int_equal(map, 256 * 1024);
	assert_int_equal(write(p1[1], "g", 1), 1);
	assert_int_equal(read(p2[0], &c, 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	assert_int_equal(store_read_begin(s, &t, err, sizeof(err)), 0);
	assert_int_equal(store_count(t, STORE_DB_EVENTS, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 150);
	store_read_end(t);
	assert_int_equal(store_usage(s, &map, &used, err, sizeof(err)), 0);
	assert_true(map > 256 * 1024);
	/* and writes work here too */
	f.start = 1000;
	f.count = 5;
	assert_int_equal(store_write(s, fill_fn, &f, err, sizeof(err)), 0);
	store_close(s);
	close(p1[0]);
	close(p1[1]);
	close(p2[0]);
	close(p2[1]);
}

static void
test_daemon_lock(void **state)
{
	struct store_lock *l, *l2;
	struct store *s;
	char err[512], c;
	int p1[2], p2[2], status;
	pid_t pid;
	(void)state;

	assert_int_equal(store_open(storedir, 1 << 20, 0, &s, err, sizeof(err)), 0);
	store_close(s);

	assert_int_equal(store_lock_held(storedir, err, sizeof(err)), 0);
	assert_int_equal(store_lock_daemon(storedir, &l, err, sizeof(err)), 0);
	/* another open file description, even in this process, sees it held */
	assert_int_equal(store_lock_held(storedir, err, sizeof(err)), 1);
	assert_int_equal(store_lock_try(storedir, &l2, err, sizeof(err)), 0);
	assert_int_equal(store_lock_daemon(storedir, &l2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "in use by another workbot process"));
	store_lock_release(l);
	assert_int_equal(store_lock_held(storedir, err, sizeof(err)), 0);
	store_lock_release(NULL);

	/* held by another process */
	assert_int_equal(pipe(p1), 0);
	assert_int_equal(pipe(p2), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store_lock *cl;
		if (store_lock_daemon(storedir, &cl, err, sizeof(err)) != 0)
			_exit(2);
		if (write(p1[1], "r", 1) != 1)
			_exit(3);
		if (read(p2[0], &c, 1) != 1)
			_exit(4);
		_exit(0);
	}
	assert_int_equal(read(p1[0], &c, 1), 1);
	assert_int_equal(store_lock_held(storedir, err, sizeof(err)), 1);
	assert_int_equal(store_lock_try(storedir, &l, err, sizeof(err)), 0);
	assert_int_equal(write(p2[1], "q", 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* the lock dies with its process */
	assert_int_equal(store_lock_held(storedir, err, sizeof(err)), 0);
	close(p1[0]);
	close(p1[1]);
	close(p2[0]);
	close(p2[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crud_iter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nested_and_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_resized_elsewhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_daemon_lock, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
