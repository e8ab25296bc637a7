/*
 * Unit tests for records: connections (round trip, tamper, move, wrong key),
 * last-used, pending logins, dedupe, audit, rotate-key (round trip, crash at
 * each step, refused while a daemon holds the store), concurrency, map full,
 * and no plaintext token in the LMDB files.
 *
 * Real LMDB files in a mkdtemp directory, real libsodium. LMDB allows one
 * environment per process: each test closes what it opened, and the
 * crash tests run the rotation in a forked child that never shares an env.
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
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "workbot/records.h"
#include "workbot/secret.h"
#include "workbot/store.h"
#include "workbot/vault.h"

static char tmpdir[64];
static char storedir[128];
static char keyfile[128];
static char key2file[128];

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
	char err[256];

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/wb-records-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(storedir, sizeof(storedir), "%s/store", tmpdir);
	snprintf(keyfile, sizeof(keyfile), "%s/master.key", tmpdir);
	snprintf(key2file, sizeof(key2file), "%s/new.key", tmpdir);
	if (vault_keygen(keyfile, err, sizeof(err)) != 0 || vault_keygen(key2file, err, sizeof(err)) != 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static struct records *
open_ok(const char *key)
{
	struct records *r = NULL;
	char err[512];

	if (records_open(storedir, 1 << 22, key, &r, err, sizeof(err)) != 0)
		fail_msg("records_open: %s", err);
	return r;
}

static void
tokens_make(struct records_tokens *t, const char *access, const char *refresh, int64_t exp)
{
	memset(t, 0, sizeof(*t));
	t->access_token = secret_from_str(access);
	t->refresh_token = refresh ? secret_from_str(refresh) : NULL;
	t->expires_at = exp;
	t->scope = strdup("api refresh_token");
	t->instance_url = strdup("https://acme.my.salesforce.com");
	t->token_type = strdup("Bearer");
}

static void
put_ok(struct records *r, const char *team, const char *user, const char *app, const char *account,
    const char *access, const char *refresh, int64_t now)
{
	struct records_tokens t;
	char err[512];
	int rc;

	tokens_make(&t, access, refresh, now + 3600);
	rc = records_conn_put(r, team, user, app, account, &t, now, 0, err, sizeof(err));
	if (rc != 1)
		fail_msg("put: %s", err);
	records_tokens_clear(&t);
}

static void
expect_access(struct records *r, const char *team, const char *user, const char *app, const char *access)
{
	struct records_tokens t;
	struct records_conn h;
	char err[512];

	if (records_conn_get(r, team, user, app, &h, &t, err, sizeof(err)) != 1)
		fail_msg("get %s:%s:%s: %s", team, user, app, err);
	assert_string_equal(secret_reveal(t.access_token), access);
	records_tokens_clear(&t);
}

static void
test_conn_round_trip(void **state)
{
	struct records *r = open_ok(keyfile);
	struct records_tokens t;
	struct records_conn h, *list;
	struct records_filter f;
	char err[512];
	size_t n;
	(void)state;

	assert_int_equal(strlen(records_key_id(r)), 16);
	put_ok(r, "T1", "U1", "salesforce", "jane@acme.com", "00Dxx!access-one", "refresh-one", 1000);
	put_ok(r, "T1", "U2", "salesforce", "bob@acme.com", "access-two", NULL, 1001);
	put_ok(r, "T1", "U1", "box", NULL, "access-three", "refresh-three", 1002);
	put_ok(r, "T1", RECORDS_SHARED_USER, "salesforce", "admin@acme.com", "access-shared", "r", 1003);
	put_ok(r, "T2", "U1", "salesforce", "x@y.z", "access-other-team", "r", 1004);

	assert_int_equal(records_conn_get(r, "T1", "U1", "salesforce", &h, &t, err, sizeof(err)), 1);
	assert_string_equal(h.team, "T1");
	assert_string_equal(h.user, "U1");
	assert_string_equal(h.app, "salesforce");
	assert_string_equal(h.account, "jane@acme.com");
	assert_int_equal(h.state, RECORDS_ACTIVE);
	assert_int_equal(h.created, 1000);
	assert_int_equal(h.updated, 1000);
	assert_int_equal(h.last_used, 0);
	assert_string_equal(h.key_id, records_key_id(r));
	assert_string_equal(secret_reveal(t.access_token), "00Dxx!access-one");
	assert_string_equal(secret_reveal(t.refresh_token), "refresh-one");
	assert_int_equal(t.expires_at, 1000 + 3600);
	assert_string_equal(t.scope, "api refresh_token");
	assert_string_equal(t.instance_url, "https://acme.my.salesforce.com");
	assert_string_equal(t.token_type, "Bearer");
	records_tokens_clear(&t);
	records_tokens_clear(NULL);

	/* no refresh token stays none */
	assert_int_equal(records_conn_get(r, "T1", "U2", "salesforce", NULL, &t, err, sizeof(err)), 1);
	assert_null(t.refresh_token);
	records_tokens_clear(&t);

	/* header only */
	assert_int_equal(records_conn_get(r, "T1", "U1", "box", &h, NULL, err, sizeof(err)), 1);
	assert_string_equal(h.account, "");
	assert_int_equal(records_conn_get(r, "T1", "U9", "box", &h, NULL, err, sizeof(err)), 0);

	/* an update keeps created and (with NULL) the account label */
	{
		struct records_tokens u;
		tokens_make(&u, "00Dxx!access-one-b", NULL, 9999);
		assert_int_equal(records_conn_put(r, "T1", "U1", "salesforce", NULL, &u, 2000,
		    RECORDS_PUT_MUST_EXIST, err, sizeof(err)), 1);
		/* MUST_EXIST does not bring back a deleted connection */
		assert_int_equal(records_conn_put(r, "T1", "U7", "salesforce", NULL, &u, 2000,
		    RECORDS_PUT_MUST_EXIST, err, sizeof(err)), 0);
		records_tokens_clear(&u);
	}
	assert_int_equal(records_conn_get(r, "T1", "U1", "salesforce", &h, &t, err, sizeof(err)), 1);
	assert_int_equal(h.created, 1000);
	assert_int_equal(h.updated, 2000);
	assert_string_equal(h.account, "jane@acme.com");
	assert_string_equal(secret_reveal(t.access_token), "00Dxx!access-one-b");
	records_tokens_clear(&t);
	assert_int_equal(records_conn_get(r, "T1", "U7", "salesforce", &h, NULL, err, sizeof(err)), 0);

	/* lists */
	assert_int_equal(records_conn_list(r, NULL, &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 5);
	free(list);
	memset(&f, 0, sizeof(f));
	f.team = "T1";
	f.user = "U1";
	assert_int_equal(records_conn_list(r, &f, &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].app, "box");
	assert_string_equal(list[1].app, "salesforce");
	free(list);
	memset(&f, 0, sizeof(f));
	f.user = "U1";
	assert_int_equal(records_conn_list(r, &f, &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	free(list);
	memset(&f, 0, sizeof(f));
	f.app = "salesforce";
	assert_int_equal(records_conn_list(r, &f, &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 4);
	free(list);
	memset(&f, 0, sizeof(f));
	f.team = "T1";
	f.user = RECORDS_SHARED_USER;
	assert_int_equal(records_conn_list(r, &f, &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].account, "admin@acme.com");
	free(list);

	/* mark expired without touching the tokens */
	assert_int_equal(records_conn_set_state(r, "T1", "U2", "salesforce", RECORDS_EXPIRED, 3000, err, sizeof(err)), 1);
	assert_int_equal(records_conn_get(r, "T1", "U2", "salesforce", &h, &t, err, sizeof(err)), 1);
	assert_int_equal(h.state, RECORDS_EXPIRED);
	assert_int_equal(h.updated, 3000);
	assert_string_equal(secret_reveal(t.access_token), "access-two");
	records_tokens_clear(&t);
	assert_int_equal(records_conn_set_state(r, "T1", "U8", "salesforce", RECORDS_EXPIRED, 3000, err, sizeof(err)), 0);
	assert_string_equal(records_state_name(RECORDS_EXPIRED), "expired");

	/* delete */
	assert_int_equal(records_conn_delete(r, "T1", "U2", "salesforce", err, sizeof(err)), 1);
	assert_int_equal(records_conn_delete(r, "T1", "U2", "salesforce", err, sizeof(err)), 0);
	assert_int_equal(records_conn_get(r, "T1", "U2", "salesforce", &h, NULL, err, sizeof(err)), 0);

	/* names are checked */
	assert_int_equal(records_conn_get(r, "T1", "U:1", "salesforce", &h, NULL, err, sizeof(err)), -1);
	assert_int_equal(records_conn_get(r, "", "U1", "salesforce", &h, NULL, err, sizeof(err)), -1);
	{
		struct records_tokens bad;
		memset(&bad, 0, sizeof(bad));
		assert_int_equal(records_conn_put(r, "T1", "U1", "x", NULL, &bad, 1, 0, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "access token"));
	}
	records_close(r);

	/* everything is still there after a reopen */
	r = open_ok(keyfile);
	expect_access(r, "T1", RECORDS_SHARED_USER, "salesforce", "access-shared");
	records_close(r);
}

struct raw {
	unsigned char *val;
	size_t         len;
	const char    *key;
};

static int
raw_get(struct store *s, const char *key, struct raw *out)
{
	struct store_txn *t;
	const void *v;
	char err[256];
	int rc;

	assert_int_equal(store_read_begin(s, &t, err, sizeof(err)), 0);
	rc = store_get(t, STORE_DB_CONNECTIONS, key, strlen(key), &v, &out->len, err, sizeof(err));
	if (rc == 1) {
		out->val = malloc(out->len);
		memcpy(out->val, v, out->len);
	}
	store_read_end(t);
	return rc;
}

static int
raw_put_fn(struct store_txn *t, void *arg, char *err, size_t errsz)
{
	struct raw *r = arg;

	return store_put(t, STORE_DB_CONNECTIONS, r->key, strlen(r->key), r->val, r->len, err, errsz);
}

static void
test_tamper_and_move(void **state)
{
	struct records *r = open_ok(keyfile);
	struct records_tokens t;
	struct records_conn h;
	struct raw raw, moved;
	char err[512];
	size_t i;
	int rc;
	(void)state;

	put_ok(r, "T1", "U1", "salesforce", "jane@acme.com", "tamper-access-token", "tamper-refresh", 100);
	assert_int_equal(raw_get(records_store(r), "T1:U1:salesforce", &raw), 1);
	raw.key = "T1:U1:salesforce";

	/* every single byte of the raw LMDB value, flipped, makes it fail to open */
	for (i = 0; i < raw.len; i++) {
		raw.val[i] ^= 0x20;
		assert_int_equal(store_write(records_store(r), raw_put_fn, &raw, err, sizeof(err)), 0);
		memset(&t, 0, sizeof(t));
		rc = records_conn_get(r, "T1", "U1", "salesforce", &h, &t, err, sizeof(err));
		if (rc != -1)
			fail_msg("flipping byte %zu of %zu was not detected", i, raw.len);
		assert_null(t.access_token);
		/* the error text never carries the token */
		assert_null(strstr(err, "tamper-access"));
		raw.val[i] ^= 0x20;
	}
	assert_int_equal(store_write(records_store(r), raw_put_fn, &raw, err, sizeof(err)), 0);
	expect_access(r, "T1", "U1", "salesforce", "tamper-access-token");

	/* truncated value */
	raw.len--;
	assert_int_equal(store_write(records_store(r), raw_put_fn, &raw, err, sizeof(err)), 0);
	assert_int_equal(records_conn_get(r, "T1", "U1", "salesforce", &h, &t, err, sizeof(err)), -1);
	raw.len = 5;
	assert_int_equal(store_write(records_store(r), raw_put_fn, &raw, err, sizeof(err)), 0);
	assert_int_equal(records_conn_get(r, "T1", "U1", "salesforce", &h, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "corrupt"));

	/* a record copied under another user, app or team fails to open */
	put_ok(r, "T1", "U1", "salesforce", "jane@acme.com", "tamper-access-token", "tamper-refresh", 100);
	free(raw.val);
	assert_int_equal(raw_get(records_store(r), "T1:U1:salesforce", &raw), 1);
	moved = raw;
	moved.key = "T1:U2:salesforce";
	assert_int_equal(store_write(records_store(r), raw_put_fn, &moved, err, sizeof(err)), 0);
	assert_int_equal(records_conn_get(r, "T1", "U2", "salesforce", &h, &t, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "T1:U2:salesforce"));
	moved.key = "T1:U1:box";
	assert_int_equal(store_write(records_store(r), raw_put_fn, &moved, err, sizeof(err)), 0);
	assert_int_equal(records_conn_get(r, "T1", "U1", "box", &h, &t, err, sizeof(err)), -1);
	moved.key = "T9:U1:salesforce";
	assert_int_equal(store_write(records_store(r), raw_put_fn, &moved, err, sizeof(err)), 0);
	assert_int_equal(records_conn_get(r, "T9", "U1", "salesforce", &h, &t, err, sizeof(err)), -1);
	/* the original still opens */
	expect_access(r, "T1", "U1", "salesforce", "tamper-access-token");
	/* a swapped pair: both fail */
	{
		struct raw other;
		put_ok(r, "T1", "U3", "salesforce", "c@acme.com", "third-token", NULL, 100);
		assert_int_equal(raw_get(records_store(r), "T1:U3:salesforce", &other), 1);
		other.key = "T1:U1:salesforce";
		raw.key = "T1:U3:salesforce";
		assert_int_equal(store_write(records_store(r), raw_put_fn, &other, err, sizeof(err)), 0);
		assert_int_equal(store_write(records_store(r), raw_put_fn, &raw, err, sizeof(err)), 0);
		assert_int_equal(records_conn_get(r, "T1", "U1", "salesforce", &h, &t, err, sizeof(err)), -1);
		assert_int_equal(records_conn_get(r, "T1", "U3", "salesforce", &h, &t, err, sizeof(err)), -1);
		free(other.val);
	}
	free(raw.val);
	records_close(r);
}

static void
test_wrong_key(void **state)
{
	struct records *r = open_ok(keyfile), *r2;
	struct vault *v;
	char err[512], want[1024], store_id[VAULT_KEY_ID_HEX];
	struct records_key_check kc;
	(void)state;

	put_ok(r, "T1", "U1", "app", NULL, "wrong-key-test", NULL, 1);
	snprintf(store_id, sizeof(store_id), "%s", records_key_id(r));
	records_close(r);

	assert_int_equal(vault_load(key2file, &v, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "key file %s does not match this store (key id %s, store expects %s)",
	    key2file, vault_key_id_hex(v), store_id);
	vault_free(v);
	assert_int_equal(records_open(storedir, 1 << 22, key2file, &r2, err, sizeof(err)), -1);
	assert_string_equal(err, want);

	/* and the check names nothing better (no rotation happened) */
	assert_int_equal(records_check_key(storedir, 1 << 22, key2file, &kc, err, sizeof(err)), 0);
	assert_int_equal(kc.match, RECORDS_KEY_NO_MATCH);
	assert_string_equal(kc.store_key_id, store_id);
	assert_int_equal(records_check_key(storedir, 1 << 22, keyfile, &kc, err, sizeof(err)), 0);
	assert_int_equal(kc.match, RECORDS_KEY_MATCHES);
	assert_string_equal(kc.file_key_id, store_id);

	/* a key file with bad permissions is refused before the store is touched */
	assert_int_equal(chmod(keyfile, 0644), 0);
	assert_int_equal(records_open(storedir, 1 << 22, keyfile, &r2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "readable by group/others (mode 0644): chmod 600"));
	assert_int_equal(chmod(keyfile, 0600), 0);

	/* a new store: the check says so */
	{
		char d[256];
		snprintf(d, sizeof(d), "%s/store2", tmpdir);
		assert_int_equal(records_check_key(d, 1 << 22, keyfile, &kc, err, sizeof(err)), -1);
	}
}

static void
test_last_used(void **state)
{
	struct records *r = open_ok(keyfile);
	struct records_conn h, *list;
	char err[512];
	size_t n, written;
	(void)state;

	put_ok(r, "T1", "U1", "salesforce", NULL, "lu-a", NULL, 10);
	put_ok(r, "T1", "U2", "salesforce", NULL, "lu-b", NULL, 10);
	assert_int_equal(records_touch(r, "T1", "U1", "salesforce", 500), 0);
	assert_int_equal(records_touch(r, "T1", "U1", "salesforce", 400), 0);	/* older: ignored */
	assert_int_equal(records_touch(r, "T1", "U9", "salesforce", 450), 0);	/* no such connection */
	/* buffered uses already show */
	assert_int_equal(records_conn_get(r, "T1", "U1", "salesforce", &h, NULL, err, sizeof(err)), 1);
	assert_int_equal(h.last_used, 500);
	assert_int_equal(records_flush_touches(r, &written, err, sizeof(err)), 0);
	assert_int_equal(written, 1);
	assert_int_equal(records_flush_touches(r, &written, err, sizeof(err)), 0);
	assert_int_equal(written, 0);
	assert_int_equal(records_conn_list(r, NULL, &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_int_equal(list[0].last_used, 500);
	assert_int_equal(list[1].last_used, 0);
	free(list);
	/* the sealed record was not rewritten */
	assert_int_equal(records_conn_get(r, "T1", "U1", "salesforce", &h, NULL, err, sizeof(err)), 1);
	assert_int_equal(h.updated, 10);
	/* close flushes */
	assert_int_equal(records_touch(r, "T1", "U2", "salesforce", 700), 0);
	records_close(r);
	r = open_ok(keyfile);
	assert_int_equal(records_conn_get(r, "T1", "U2", "salesforce", &h, NULL, err, sizeof(err)), 1);
	assert_int_equal(h.last_used, 700);
	/* delete forgets it */
	assert_int_equal(records_conn_delete(r, "T1", "U2", "salesforce", err, sizeof(err)), 1);
	put_ok(r, "T1", "U2", "salesforce", NULL, "lu-b2", NULL, 800);
	assert_int_equal(records_conn_get(r, "T1", "U2", "salesforce", &h, NULL, err, sizeof(err)), 1);
	assert_int_equal(h.last_used, 0);
	records_close(r);
}

struct swept_seen {
	int  n;
	char ids[8][32];
	char bodies[8][64];
};

static void
swept_cb(const char *id, int64_t exp, const struct secret *body, void *arg)
{
	struct swept_seen *s = arg;

	(void)exp;
	if (s->n < 8) {
		snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", id);
		snprintf(s->bodies[s->n], sizeof(s->bodies[0]), "%s", body ? secret_reveal(body) : "(none)");
		s->n++;
	}
}

static void
test_pending(void **state)
{
	struct records *r = open_ok(keyfile);
	struct secret *body = NULL;
	struct swept_seen sw;
	int64_t exp = 0;
	char err[512];
	size_t swept;
	(void)state;

	assert_int_equal(records_pending_put(r, "id-one", 1600, "state=abc;verifier=xyz", 22, err, sizeof(err)), 0);
	assert_int_equal(records_pending_put(r, "id-two", 1100, "two-body", 8, err, sizeof(err)), 0);
	assert_int_equal(records_pending_put(r, "id-three", 1200, "three-body", 10, err, sizeof(err)), 0);

	/* peek does not consume */
	assert_int_equal(records_pending_get(r, "id-one", 1000, &body, &exp, err, sizeof(err)), RECORDS_PENDING_FOUND);
	assert_string_equal(secret_reveal(body), "state=abc;verifier=xyz");
	assert_int_equal(exp, 1600);
	secret_free(body);
	body = NULL;
	/* single use */
	assert_int_equal(records_pending_take(r, "id-one", 1000, &body, &exp, err, sizeof(err)), RECORDS_PENDING_FOUND);
	assert_string_equal(secret_reveal(body), "state=abc;verifier=xyz");
	secret_free(body);
	body = NULL;
	assert_int_equal(records_pending_take(r, "id-one", 1000, &body, &exp, err, sizeof(err)), RECORDS_PENDING_NONE);
	assert_null(body);
	assert_int_equal(records_pending_get(r, "id-one", 1000, &body, &exp, err, sizeof(err)), RECORDS_PENDING_NONE);
	/* expired: reported as such, deleted, then unknown */
	assert_int_equal(records_pending_get(r, "id-two", 1150, &body, &exp, err, sizeof(err)), RECORDS_PENDING_EXPIRED);
	assert_int_equal(records_pending_take(r, "id-two", 1150, &body, &exp, err, sizeof(err)), RECORDS_PENDING_EXPIRED);
	assert_null(body);
	assert_int_equal(exp, 1100);
	assert_int_equal(records_pending_take(r, "id-two", 1150, &body, &exp, err, sizeof(err)), RECORDS_PENDING_NONE);
	/* unknown id */
	assert_int_equal(records_pending_take(r, "nope", 1150, &body, &exp, err, sizeof(err)), RECORDS_PENDING_NONE);
	assert_int_equal(records_pending_take(r, "bad id", 1150, &body, &exp, err, sizeof(err)), -1);

	/* sweep hands over the bodies after deleting */
	assert_int_equal(records_pending_put(r, "id-four", 5000, "four-body", 9, err, sizeof(err)), 0);
	memset(&sw, 0, sizeof(sw));
	assert_int_equal(records_pending_sweep(r, 1300, 0, swept_cb, &sw, &swept, err, sizeof(err)), 0);
	assert_int_equal(swept, 1);
	assert_int_equal(sw.n, 1);
	assert_string_equal(sw.ids[0], "id-three");
	assert_string_equal(sw.bodies[0], "three-body");
	assert_int_equal(records_pending_get(r, "id-three", 0, &body, &exp, err, sizeof(err)), RECORDS_PENDING_NONE);
	assert_int_equal(records_pending_get(r, "id-four", 1300, &body, &exp, err, sizeof(err)), RECORDS_PENDING_FOUND);
	secret_free(body);
	/* across a restart */
	records_close(r);
	r = open_ok(keyfile);
	memset(&sw, 0, sizeof(sw));
	assert_int_equal(records_pending_sweep(r, 6000, 0, swept_cb, &sw, &swept, err, sizeof(err)), 0);
	assert_int_equal(swept, 1);
	assert_string_equal(sw.bodies[0], "four-body");
	records_close(r);
}

static void
count_cb(const char *id, int64_t seen, void *arg)
{
	size_t *n = arg;

	(void)id;
	(void)seen;
	(*n)++;
}

static void
test_dedupe(void **state)
{
	struct records *r = open_ok(keyfile);
	const char *batch[3] = { "Ev1", "Ev2", "Ev3" };
	char err[512], id[32];
	const char *ids[50];
	char idbuf[50][32];
	size_t n, cb_n, removed;
	int i;
	(void)state;

	assert_int_equal(records_seen_or_mark(r, "Ev0", 1000, 3600, err, sizeof(err)), 0);
	assert_int_equal(records_seen_or_mark(r, "Ev0", 1001, 3600, err, sizeof(err)), 1);
	assert_int_equal(records_seen_or_mark(r, "Ev0", 4600, 3600, err, sizeof(err)), 1);
	/* out of the window: run again (and re-marked) */
	assert_int_equal(records_seen_or_mark(r, "Ev0", 4601, 3600, err, sizeof(err)), 0);
	assert_int_equal(records_seen_or_mark(r, "Ev0", 4602, 3600, err, sizeof(err)), 1);

	assert_int_equal(records_events_mark(r, batch, 3, 2000, err, sizeof(err)), 0);
	assert_int_equal(records_seen_or_mark(r, "Ev2", 2001, 3600, err, sizeof(err)), 1);
	cb_n = 0;
	assert_int_equal(records_events_load(r, 1500, count_cb, &cb_n, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 4);
	assert_int_equal(cb_n, 4);
	assert_int_equal(records_events_load(r, 3000, NULL, NULL, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(records_events_sweep(r, 3000, &removed, err, sizeof(err)), 0);
	assert_int_equal(removed, 3);
	assert_int_equal(records_seen_or_mark(r, "Ev2", 2001, 3600, err, sizeof(err)), 0);

	/* the cap drops the oldest */
	records_events_set_cap(r, 100);
	for (i = 0; i < 4; i++) {
		int j;
		for (j = 0; j < 50; j++) {
			snprintf(idbuf[j], sizeof(idbuf[j]), "cap-%d-%d", i, j);
			ids[j] = idbuf[j];
		}
		assert_int_equal(records_events_mark(r, ids, 50, 10000 + i, err, sizeof(err)), 0);
	}
	assert_int_equal(records_events_load(r, 0, NULL, NULL, &n, err, sizeof(err)), 0);
	assert_true(n <= 100);
	assert_true(n >= 50);
	/* the newest batch is all there, the oldest is gone */
	assert_int_equal(records_events_load(r, 10003, NULL, NULL, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 50);
	snprintf(id, sizeof(id), "cap-0-0");
	assert_int_equal(records_seen_or_mark(r, id, 10004, 3600, err, sizeof(err)), 0);
	records_close(r);
}

static void
test_audit(void **state)
{
	struct records *r = open_ok(keyfile);
	struct records_audit e[4], *list;
	struct records_filter f;
	char err[512];
	size_t n, removed;
	int i;
	(void)state;

	memset(e, 0, sizeof(e));
	for (i = 0; i < 4; i++) {
		e[i].time = 1000 + (i / 2);	/* two entries per second: the counter orders them */
		snprintf(e[i].team, sizeof(e[i].team), "T1");
		snprintf(e[i].user, sizeof(e[i].user), "U%d", i % 2);
		snprintf(e[i].app, sizeof(e[i].app), "salesforce");
		snprintf(e[i].detail, sizeof(e[i].detail), "entry %d\n", i);
	}
	e[0].action = RECORDS_AUDIT_CONNECTED;
	e[1].action = RECORDS_AUDIT_USED;
	e[2].action = RECORDS_AUDIT_REFRESHED;
	e[3].action = RECORDS_AUDIT_DISCONNECTED;
	assert_int_equal(records_audit_append(r, e, 2, err, sizeof(err)), 0);
	assert_int_equal(records_audit_append(r, e + 2, 2, err, sizeof(err)), 0);
	assert_int_equal(records_audit_list(r, NULL, 0, 0, &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 4);
	assert_int_equal(list[0].action, RECORDS_AUDIT_DISCONNECTED);
	assert_int_equal(list[1].action, RECORDS_AUDIT_REFRESHED);
	assert_int_equal(list[3].action, RECORDS_AUDIT_CONNECTED);
	assert_int_equal(list[0].time, 1001);
	assert_string_equal(list[3].detail, "entry 0?");	/* control bytes replaced */
	free(list);
	memset(&f, 0, sizeof(f));
	f.user = "U1";
	assert_int_equal(records_audit_list(r, &f, 0, 0, &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	free(list);
	assert_int_equal(records_audit_list(r, NULL, RECORDS_AUDIT_USED, 0, &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_string_equal(records_audit_action_name(list[0].action), "used");
	free(list);
	assert_int_equal(records_audit_list(r, NULL, 0, 3, &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	free(list);
	assert_int_equal(records_audit_sweep(r, 1001, &removed, err, sizeof(err)), 0);
	assert_int_equal(removed, 2);
	assert_int_equal(records_audit_list(r, NULL, 0, 0, &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	free(list);
	e[0].action = (enum records_audit_action)99;
	assert_int_equal(records_audit_append(r, e, 1, err, sizeof(err)), -1);
	records_close(r);
}

/* ---- rotation ---- */

static void
populate(void)
{
	struct records *r = open_ok(keyfile);
	char err[512];

	put_ok(r, "T1", "U1", "salesforce", "jane@acme.com", "rot-access-1", "rot-refresh-1", 100);
	put_ok(r, "T1", "U2", "box", "bob@acme.com", "rot-access-2", NULL, 100);
	put_ok(r, "T1", RECORDS_SHARED_USER, "salesforce", NULL, "rot-access-3", "rot-refresh-3", 100);
	assert_int_equal(records_conn_set_state(r, "T1", "U2", "box", RECORDS_EXPIRED, 200, err, sizeof(err)), 0 + 1);
	assert_int_equal(records_pending_put(r, "pend-1", INT64_MAX / 2, "pending-body", 12, err, sizeof(err)), 0);
	records_close(r);
}

static void
verify_all(const char *key)
{
	struct records *r = open_ok(key);
	struct records_conn h;
	struct secret *body = NULL;
	char err[512];

	expect_access(r, "T1", "U1", "salesforce", "rot-access-1");
	expect_access(r, "T1", "U2", "box", "rot-access-2");
	expect_access(r, "T1", RECORDS_SHARED_USER, "salesforce", "rot-access-3");
	assert_int_equal(records_conn_get(r, "T1", "U2", "box", &h, NULL, err, sizeof(err)), 1);
	assert_int_equal(h.state, RECORDS_EXPIRED);
	assert_int_equal(h.created, 100);
	assert_string_equal(h.key_id, records_key_id(r));
	assert_int_equal(records_pending_get(r, "pend-1", 0, &body, NULL, err, sizeof(err)), RECORDS_PENDING_FOUND);
	assert_string_equal(secret_reveal(body), "pending-body");
	secret_free(body);
	records_close(r);
}

static void
key_id_of(const char *path, char out[VAULT_KEY_ID_HEX])
{
	struct vault *v;
	char err[512];

	assert_int_equal(vault_load(path, &v, err, sizeof(err)), 0);
	snprintf(out, VAULT_KEY_ID_HEX, "%s", vault_key_id_hex(v));
	vault_free(v);
}

static void
test_rotate_round_trip(void **state)
{
	char err[512], old_id[VAULT_KEY_ID_HEX], new_id[VAULT_KEY_ID_HEX], id[VAULT_KEY_ID_HEX], path[256];
	struct records_audit *list;
	struct records *r;
	size_t count, n;
	(void)state;

	populate();
	key_id_of(keyfile, old_id);
	key_id_of(key2file, new_id);
	assert_int_equal(records_rotate_key(storedir, 1 << 22, keyfile, key2file, &count, err, sizeof(err)), 0);
	assert_int_equal(count, 4);
	/* key_file is now the new key, the old one kept as .old, the new file moved */
	key_id_of(keyfile, id);
	assert_string_equal(id, new_id);
	snprintf(path, sizeof(path), "%s.old", keyfile);
	key_id_of(path, id);
	assert_string_equal(id, old_id);
	assert_int_equal(access(key2file, F_OK), -1);
	verify_all(keyfile);
	/* the old key no longer opens the store */
	assert_int_equal(records_open(storedir, 1 << 22, path, &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not match this store"));
	/* the rotation is audited, with key ids only */
	r = open_ok(keyfile);
	assert_int_equal(records_audit_list(r, NULL, RECORDS_AUDIT_ROTATED, 0, &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_non_null(strstr(list[0].detail, old_id));
	assert_non_null(strstr(list[0].detail, new_id));
	free(list);
	records_close(r);

	/* same key twice is refused; a wrong old key too */
	snprintf(path, sizeof(path), "%s/third.key", tmpdir);
	assert_int_equal(vault_keygen(path, err, sizeof(err)), 0);
	assert_int_equal(records_rotate_key(storedir, 1 << 22, path, keyfile, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not match this store"));
	assert_int_equal(records_rotate_key(storedir, 1 << 22, keyfile, keyfile, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "same key"));
	verify_all(keyfile);
}

static void
test_rotate_crash(void **state)
{
	static const char *const points[] = { "before_commit", "after_commit", "after_backup", "after_rename" };
	char err[512], new_id[VAULT_KEY_ID_HEX], id[VAULT_KEY_ID_HEX];
	struct records_key_check kc;
	size_t i;
	int status;
	pid_t pid;
	(void)state;

	for (i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		const char *use = NULL;

		/* fresh store and keys for each crash point */
		assert_int_equal(teardown(NULL), 0);
		assert_int_equal(setup(NULL), 0);
		populate();
		key_id_of(key2file, new_id);

		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			setenv("WORKBOT_TEST_CRASH_AT", points[i], 1);
			(void)records_rotate_key(storedir, 1 << 22, keyfile, key2file, NULL, err, sizeof(err));
			_exit(1);	/* the hook should have ended us first */
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 99);

		/* the check names a key file that opens the store, and every record reads */
		assert_int_equal(records_check_key(storedir, 1 << 22, keyfile, &kc, err, sizeof(err)), 0);
		if (kc.match == RECORDS_KEY_MATCHES)
			use = keyfile;
		else if (kc.match == RECORDS_KEY_OTHER_FILE)
			use = kc.path;
		else
			fail_msg("crash at %s: no key file matches (store %s)", points[i], kc.store_key_id);
		if (i == 0)
			assert_int_equal(kc.match, RECORDS_KEY_MATCHES);	/* nothing committed */
		if (i == 1 || i == 2) {
			assert_int_equal(kc.match, RECORDS_KEY_OTHER_FILE);
			assert_string_equal(kc.store_key_id, new_id);
			assert_non_null(strstr(kc.path, "new.key"));
		}
		if (i == 3)
			assert_int_equal(kc.match, RECORDS_KEY_MATCHES);
		verify_all(use);

		/* running rotate-key again finishes the job (or, before the commit, does it) */
		if (i < 3) {
			assert_int_equal(records_rotate_key(storedir, 1 << 22, keyfile, key2file, NULL, err, sizeof(err)), 0);
			key_id_of(keyfile, id);
			assert_string_equal(id, new_id);
			assert_int_equal(records_check_key(storedir, 1 << 22, keyfile, &kc, err, sizeof(err)), 0);
			assert_int_equal(kc.match, RECORDS_KEY_MATCHES);
			verify_all(keyfile);
		}
	}
}

static void
test_rotate_refused_with_daemon(void **state)
{
	struct store_lock *l;
	char err[512], c;
	int p1[2], p2[2], status;
	pid_t pid;
	(void)state;

	populate();
	assert_int_equal(pipe(p1), 0);
	assert_int_equal(pipe(p2), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* the "daemon": holds the lock, touches no LMDB */
		if (store_lock_daemon(storedir, &l, err, sizeof(err)) != 0)
			_exit(2);
		if (write(p1[1], "r", 1) != 1 || read(p2[0], &c, 1) != 1)
			_exit(3);
		_exit(0);
	}
	assert_int_equal(read(p1[0], &c, 1), 1);
	assert_int_equal(records_rotate_key(storedir, 1 << 22, keyfile, key2file, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "daemon holds the store"));
	/* nothing moved */
	assert_int_equal(access(key2file, F_OK), 0);
	assert_int_equal(write(p2[1], "q", 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	verify_all(keyfile);
	/* once the daemon is gone it runs */
	assert_int_equal(records_rotate_key(storedir, 1 << 22, keyfile, key2file, NULL, err, sizeof(err)), 0);
	verify_all(keyfile);
	close(p1[0]);
	close(p1[1]);
	close(p2[0]);
	close(p2[1]);
}

/* ---- concurrency ---- */

#define NTHREADS 4
#define NKEYS    12

struct worker {
	struct records *r;
	int             id;
	int             version[NKEYS];	/* 0 = absent, else the token version stored */
	long            ops;
	int             failed;
	char            err[512];
};

static volatile int stop_flag;

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	char user[16], app[16], tok[64];
	unsigned seed = (unsigned)w->id * 7919u + 1;

	snprintf(user, sizeof(user), "U%d", w->id);
	while (!__atomic_load_n(&stop_flag, __ATOMIC_RELAXED) && !w->failed) {
		int k = (int)(rand_r(&seed) % NKEYS), op = (int)(rand_r(&seed) % 10);
		struct records_tokens t;
		int rc;

		snprintf(app, sizeof(app), "app%d", k);
		if (op < 4) {
			int v = w->version[k] + 1;
			snprintf(tok, sizeof(tok), "tok-%d-%d-%d", w->id, k, v);
			tokens_make(&t, tok, "refresh", 0);
			rc = records_conn_put(w->r, "T1", user, app, "acct", &t, 1, 0, w->err, sizeof(w->err));
			records_tokens_clear(&t);
			if (rc != 1)
				w->failed = 1;
			else
				w->version[k] = v;
		} else if (op < 8) {
			rc = records_conn_get(w->r, "T1", user, app, NULL, &t, w->err, sizeof(w->err));
			if (rc < 0 || (rc == 0) != (w->version[k] == 0)) {
				w->failed = 2;
			} else if (rc == 1) {
				snprintf(tok, sizeof(tok), "tok-%d-%d-%d", w->id, k, w->version[k]);
				if (strcmp(secret_reveal(t.access_token), tok) != 0)
					w->failed = 3;
				records_tokens_clear(&t);
			}
			(void)records_touch(w->r, "T1", user, app, 5);
		} else if (op < 9) {
			rc = records_conn_delete(w->r, "T1", user, app, w->err, sizeof(w->err));
			if (rc < 0 || rc != (w->version[k] != 0))
				w->failed = 4;
			w->version[k] = 0;
		} else {
			struct records_conn *list;
			size_t n;
			if (records_conn_list(w->r, NULL, &list, &n, w->err, sizeof(w->err)) != 0)
				w->failed = 5;
			else
				free(list);
			if (w->id == 0 && records_flush_touches(w->r, NULL, w->err, sizeof(w->err)) != 0)
				w->failed = 6;
		}
		w->ops++;
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct records *r = open_ok(keyfile);
	struct worker w[NTHREADS];
	pthread_t th[NTHREADS];
	struct records_conn *list;
	size_t n, expect = 0;
	char err[512];
	int i, k;
	(void)state;

	memset(w, 0, sizeof(w));
	stop_flag = 0;
	for (i = 0; i < NTHREADS; i++) {
		w[i].r = r;
		w[i].id = i;
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	sleep(2);
	__atomic_store_n(&stop_flag, 1, __ATOMIC_RELAXED);
	for (i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < NTHREADS; i++) {
		if (w[i].failed)
			fail_msg("thread %d failed (%d) after %ld ops: %s", i, w[i].failed, w[i].ops, w[i].err);
		assert_true(w[i].ops > 10);
	}
	records_close(r);

	/* after a reopen, exactly what each thread last wrote */
	r = open_ok(keyfile);
	for (i = 0; i < NTHREADS; i++) {
		char user[16], app[16], tok[64];
		snprintf(user, sizeof(user), "U%d", i);
		for (k = 0; k < NKEYS; k++) {
			struct records_tokens t;
			int rc;
			snprintf(app, sizeof(app), "app%d", k);
			rc = records_conn_get(r, "T1", user, app, NULL, &t, err, sizeof(err));
			assert_int_equal(rc, w[i].version[k] ? 1 : 0);
			if (rc == 1) {
				snprintf(tok, sizeof(tok), "tok-%d-%d-%d", i, k, w[i].version[k]);
				assert_string_equal(secret_reveal(t.access_token), tok);
				records_tokens_clear(&t);
				expect++;
			}
		}
	}
	assert_int_equal(records_conn_list(r, NULL, &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, expect);
	free(list);
	records_close(r);
}

static void
test_conn_lock(void **state)
{
	struct records *r = open_ok(keyfile);
	(void)state;

	/* different connections do not block each other; the same one is re-entrant after unlock */
	records_conn_lock(r, "T1", "U1", "salesforce");
	records_conn_lock(r, "T1", "U2", "salesforce");
	records_conn_unlock(r, "T1", "U1", "salesforce");
	records_conn_lock(r, "T1", "U1", "salesforce");
	records_conn_unlock(r, "T1", "U1", "salesforce");
	records_conn_unlock(r, "T1", "U2", "salesforce");
	records_close(r);
}

/* ---- map full, and no plaintext on disk ---- */

static void
test_map_full(void **state)
{
	struct records *r;
	char err[512], big[8000], user[16];
	struct records_tokens t;
	int i, ok = 0, rc = 0;
	(void)state;

	assert_int_equal(records_open(storedir, 256 * 1024, keyfile, &r, err, sizeof(err)), 0);
	store_set_map_max(records_store(r), 0);	/* growth disabled */
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (i = 0; i < 1000; i++) {
		snprintf(user, sizeof(user), "U%d", i);
		tokens_make(&t, big, NULL, 0);
		rc = records_conn_put(r, "T1", user, "app", NULL, &t, 1, 0, err, sizeof(err));
		records_tokens_clear(&t);
		if (rc != 1)
			break;
		ok++;
	}
	assert_int_equal(rc, -1);
	assert_true(ok > 3);
	assert_string_equal(err, "store is full (map_size 256 KiB): raise [store] map_size");
	/* reads still work, and nothing committed was lost */
	for (i = 0; i < ok; i++) {
		snprintf(user, sizeof(user), "U%d", i);
		assert_int_equal(records_conn_get(r, "T1", user, "app", NULL, &t, err, sizeof(err)), 1);
		assert_int_equal(secret_len(t.access_token), sizeof(big) - 1);
		records_tokens_clear(&t);
	}
	/* deleting makes room again */
	assert_int_equal(records_conn_delete(r, "T1", "U0", "app", err, sizeof(err)), 1);
	assert_int_equal(records_conn_delete(r, "T1", "U1", "app", err, sizeof(err)), 1);
	put_ok(r, "T1", "Unew", "app", NULL, "small", NULL, 1);
	records_close(r);
}

static int
file_contains(const char *path, const char *needle)
{
	struct stat st;
	char *buf;
	int fd, found;

	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	found = memmem(buf, (size_t)st.st_size, needle, strlen(needle)) != NULL;
	free(buf);
	return found;
}

static void
test_no_plaintext_on_disk(void **state)
{
	static const char *const tokens[] = {
		"ACCESS-Zq7xK2mP9vR4tL8w", "REFRESH-Hb3nY6cJ1dF5gS0e", "PENDING-Wq2eR4tY6uI8oP0a",
	};
	struct records *r = open_ok(keyfile);
	char path[256], err[512];
	size_t i;
	(void)state;

	put_ok(r, "T1", "U1", "salesforce", "jane@acme.com", tokens[0], tokens[1], 100);
	assert_int_equal(records_pending_put(r, "p1", 9999, tokens[2], strlen(tokens[2]), err, sizeof(err)), 0);
	/* rewrite a few times so freed pages exist too */
	assert_int_equal(records_conn_set_state(r, "T1", "U1", "salesforce", RECORDS_EXPIRED, 200, err, sizeof(err)), 1);
	records_close(r);
	snprintf(path, sizeof(path), "%s/data.mdb", storedir);
	for (i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
		assert_false(file_contains(path, tokens[i]));
		assert_false(file_contains(path, tokens[i] + 8));	/* no tail either */
	}
	/* the account label is plaintext by design: the scan does find what is there */
	assert_true(file_contains(path, "jane@acme.com"));
	snprintf(path, sizeof(path), "%s/lock.mdb", storedir);
	for (i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++)
		assert_false(file_contains(path, tokens[i]));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_conn_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_and_move, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_last_used, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dedupe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotate_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotate_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotate_refused_with_daemon, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conn_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_plaintext_on_disk, setup, teardown),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
