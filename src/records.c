/*
 * records: connections, pending logins, dedupe ids, audit, last-used times,
 * and the master-key rotation — the data model on top of store and vault.
 *
 * How it works. Every record is a byte string with a fixed big-endian
 * layout (below), checked field by field when read: the store is a file an
 * attacker or a disk may have changed, so a bad length is an error, never a
 * read past the end. Sealed parts go through vault with additional data
 *     tag (1: 'c' connection, 'p' pending) | key length (2) | key | header
 * so a record copied to another key or database, or with an edited
 * header (state, account, times), fails to open.
 *
 *   connection  fmt(1)=1 | state(1) | created(8) | updated(8) | key id(8) |
 *               account len(1) | account | sealed token set
 *   token set   ver(1)=1 | flags(1: has refresh) | expires_at(8) |
 *               access len(4) | access | refresh len(4) | refresh |
 *               scope len(2) | scope | url len(2) | url | type len(1) | type
 *   pending     fmt(1)=1 | expires_at(8) | key id(8) | sealed body
 *   event       id -> seen(8)
 *   lastused    team:user:app -> time(8)
 *   audit       key: time(8, sign bit flipped so it sorts) | counter(4)
 *               value: action(1) | len(1) team | len(1) user | len(1) app |
 *               len(1) detail
 *   meta        "schema" -> u32, "key_id" -> 8 bytes, "rotated_to" -> path,
 *               "rotated_from" -> 8 bytes, "rotated_at" -> time(8)
 *
 * Write transactions are callbacks that store_write() may run again after
 * growing the map: each callback resets its own outputs first.
 *
 * Key rotation (records_rotate_key) is built so that a crash at any point
 * leaves a store that opens with one of the two key files: the re-seal, the
 * key id switch and the path of the new key file commit together; only
 * then are the key files moved (a hard link keeps the old key as .old, one
 * rename puts the new key in place). records_check_key() finds the file.
 *
 * What it must never do: log; put a token, key or pending body in an error
 * text; return data from a record that did not authenticate; leave a
 * plaintext buffer it owns unwiped.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "workbot/util.h"
#include "workbot/records.h"
#include "workbot/store.h"
#include "workbot/xmalloc.h"

#define CONN_FMT	1
#define TOKENS_VER	1
#define PENDING_FMT	1
#define CONN_HDR_FIXED	27	/* fmt, state, created, updated, key id, account len */
#define PENDING_HDR	17	/* fmt, expires_at, key id */
#define CONN_KEY_MAX	(3 * RECORDS_ID_MAX + 2)
#define PENDING_ID_MAX	128
#define AD_MAX		(1 + 2 + STORE_KEY_MAX + CONN_HDR_FIXED + RECORDS_ACCOUNT_MAX)
#define STACK_PLAIN	4096	/* token sets up to this size are opened on the stack */
#define TOUCH_BUCKETS	256
#define SWEEP_DEFAULT	1000
#define AUDIT_LIST_DEFAULT 1000

#define META_SCHEMA	"schema"
#define META_KEY_ID	"key_id"
#define META_ROT_TO	"rotated_to"
#define META_ROT_FROM	"rotated_from"
#define META_ROT_AT	"rotated_at"

#if AD_MAX > VAULT_AD_MAX
#error "record additional data can exceed what the vault accepts"
#endif

struct touch {
	struct touch *next;
	int64_t       when;
	size_t        klen;
	char          key[];
};

struct conn_lock {
	struct conn_lock *next;
	unsigned          refs;
	bool              held;
	char              key[];
};

struct records {
	struct store    *store;
	struct vault    *vault;
	pthread_mutex_t  touch_mu;
	struct touch    *touches[TOUCH_BUCKETS];
	size_t           ntouches;
	pthread_mutex_t  lock_mu;
	pthread_cond_t   lock_cv;
	struct conn_lock *locks;
	size_t           events_cap;	/* read without a lock: set before threads */
};


/* ---- byte helpers ---- */

static void
be16_put(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static uint16_t
be16_get(const unsigned char *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static void
be32_put(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t
be32_get(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void
be64_put(unsigned char *p, int64_t sv)
{
	uint64_t v = (uint64_t)sv;
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = (unsigned char)v;
		v >>= 8;
	}
}

static int64_t
be64_get(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return (int64_t)v;
}

/* A bounded reader over an untrusted byte string. */
struct rd {
	const unsigned char *p;
	size_t               left;
	bool                 bad;
};

static const unsigned char *
rd_take(struct rd *r, size_t n)
{
	const unsigned char *p = r->p;

	if (r->bad || n > r->left) {
		r->bad = true;
		return NULL;
	}
	r->p += n;
	r->left -= n;
	return p;
}

static unsigned
rd_u8(struct rd *r)
{
	const unsigned char *p = rd_take(r, 1);
	return p ? p[0] : 0;
}

static uint16_t
rd_u16(struct rd *r)
{
	const unsigned char *p = rd_take(r, 2);
	return p ? be16_get(p) : 0;
}

static uint32_t
rd_u32(struct rd *r)
{
	const unsigned char *p = rd_take(r, 4);
	return p ? be32_get(p) : 0;
}

static int64_t
rd_i64(struct rd *r)
{
	const unsigned char *p = rd_take(r, 8);
	return p ? be64_get(p) : 0;
}

/* ---- names and keys ---- */

/*
 * Identifier fields: printable, no space, and — for the parts of a
 * connection key — no ':' (the key separator). Event ids are whole keys of
 * their own and may hold ':' ("ev:Ev123", "ia:U1:ts:action").
 */
static int
check_id_chars(const char *what, const char *s, size_t max, bool allow_colon, char *err, size_t errsz)
{
	size_t i, n;

	if (s == NULL || *s == '\0') {
		util_seterr(err, errsz, "records: %s is empty", what);
		return -1;
	}
	n = strnlen(s, max + 1);
	if (n > max) {
		util_seterr(err, errsz, "records: %s is longer than %zu bytes", what, max);
		return -1;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == 0x7f || (c == ':' && !allow_colon)) {
			util_seterr(err, errsz, "records: %s has a character that is not allowed (offset %zu)", what, i);
			return -1;
		}
	}
	return 0;
}

static int
check_id(const char *what, const char *s, size_t max, char *err, size_t errsz)
{
	return check_id_chars(what, s, max, false, err, errsz);
}

/* "team:user:app". Built by hand: it is on every lookup's path, snprintf is not cheap. */
static int
conn_key(const char *team, const char *user, const char *app, char key[CONN_KEY_MAX + 1],
    size_t *klen, char *err, size_t errsz)
{
	size_t lt, lu, la;

	if (check_id("team", team, RECORDS_ID_MAX, err, errsz) != 0 ||
	    check_id("user", user, RECORDS_ID_MAX, err, errsz) != 0 ||
	    check_id("app", app, RECORDS_ID_MAX, err, errsz) != 0)
		return -1;
	lt = strlen(team);
	lu = strlen(user);
	la = strlen(app);
	memcpy(key, team, lt);
	key[lt] = ':';
	memcpy(key + lt + 1, user, lu);
	key[lt + 1 + lu] = ':';
	memcpy(key + lt + 2 + lu, app, la);
	key[lt + 2 + lu + la] = '\0';
	*klen = lt + 2 + lu + la;
	return 0;
}

/* Split "team:user:app" from the store; 0, or -1 if it is not one. */
static int
split_key(const void *key, size_t klen, struct records_conn *c)
{
	const char *k = key, *c1, *c2, *end = k + klen;
	size_t lt, lu, la;

	c1 = memchr(k, ':', klen);
	if (c1 == NULL)
		return -1;
	c2 = memchr(c1 + 1, ':', (size_t)(end - c1 - 1));
	if (c2 == NULL || memchr(c2 + 1, ':', (size_t)(end - c2 - 1)) != NULL)
		return -1;
	lt = (size_t)(c1 - k);
	lu = (size_t)(c2 - c1 - 1);
	la = (size_t)(end - c2 - 1);
	if (lt == 0 || lu == 0 || la == 0 || lt > RECORDS_ID_MAX || lu > RECORDS_ID_MAX || la > RECORDS_ID_MAX)
		return -1;
	memcpy(c->team, k, lt);
	c->team[lt] = '\0';
	memcpy(c->user, c1 + 1, lu);
	c->user[lu] = '\0';
	memcpy(c->app, c2 + 1, la);
	c->app[la] = '\0';
	return 0;
}

/* Printable key text for error messages (store keys are not secrets). */
static const char *
key_text(char *buf, size_t bufsz, const void *key, size_t klen)
{
	const unsigned char *k = key;
	size_t i, o = 0;

	for (i = 0; i < klen && o + 1 < bufsz; i++)
		buf[o++] = (k[i] >= 0x20 && k[i] < 0x7f) ? (char)k[i] : '?';
	buf[o] = '\0';
	return buf;
}

/* AD = tag | key length | key | header. */
static size_t
make_ad(unsigned char ad[AD_MAX], char tag, const void *key, size_t klen,
    const unsigned char *hdr, size_t hlen)
{
	ad[0] = (unsigned char)tag;
	be16_put(ad + 1, (uint16_t)klen);
	memcpy(ad + 3, key, klen);
	memcpy(ad + 3 + klen, hdr, hlen);
	return 3 + klen + hlen;
}

/* ---- connection values ---- */

struct conn_hdr {
	unsigned      state;
	int64_t       created, updated;
	uint8_t       key_id[VAULT_KEY_ID_LEN];
	size_t        alen;
	const char   *account;	/* into the value */
	size_t        hlen;	/* header bytes */
	const unsigned char *sealed;
	size_t        slen;
};

static int
conn_parse(const void *val, size_t vlen, struct conn_hdr *h)
{
	struct rd r = { val, vlen, false };
	unsigned fmt;

	fmt = rd_u8(&r);
	h->state = rd_u8(&r);
	h->created = rd_i64(&r);
	h->updated = rd_i64(&r);
	{
		const unsigned char *id = rd_take(&r, VAULT_KEY_ID_LEN);
		if (id != NULL)
			memcpy(h->key_id, id, VAULT_KEY_ID_LEN);
	}
	h->alen = rd_u8(&r);
	h->account = (const char *)rd_take(&r, h->alen);
	if (r.bad || fmt != CONN_FMT || (h->state != RECORDS_ACTIVE && h->state != RECORDS_EXPIRED) ||
	    h->alen > RECORDS_ACCOUNT_MAX || r.left < VAULT_OVERHEAD)
		return -1;
	h->hlen = CONN_HDR_FIXED + h->alen;
	h->sealed = r.p;
	h->slen = r.left;
	return 0;
}

static size_t
conn_hdr_write(unsigned char *p, unsigned state, int64_t created, int64_t updated,
    const uint8_t *key_id, const char *account, size_t alen)
{
	p[0] = CONN_FMT;
	p[1] = (unsigned char)state;
	be64_put(p + 2, created);
	be64_put(p + 10, updated);
	memcpy(p + 18, key_id, VAULT_KEY_ID_LEN);
	p[26] = (unsigned char)alen;
	if (alen)
		memcpy(p + CONN_HDR_FIXED, account, alen);
	return CONN_HDR_FIXED + alen;
}

static void
conn_fill(struct records_conn *c, const struct conn_hdr *h, const struct vault *v)
{
	memcpy(c->account, h->account, h->alen);
	c->account[h->alen] = '\0';
	c->state = (enum records_state)h->state;
	c->created = h->created;
	c->updated = h->updated;
	c->last_used = 0;
	/* Nearly always the current key: reuse its hex. */
	if (memcmp(h->key_id, vault_key_id(v), VAULT_KEY_ID_LEN) == 0)
		memcpy(c->key_id, vault_key_id_hex(v), VAULT_KEY_ID_HEX);
	else
		vault_key_id_to_hex(h->key_id, c->key_id);
}

/*
 * Build a connection value: header + seal(plain). Returns a heap buffer
 * (free it) and its length.
 */
static unsigned char *
conn_build(const struct vault *v, const char *key, size_t klen, unsigned state,
    int64_t created, int64_t updated, const char *account, size_t alen,
    const unsigned char *plain, size_t plen, size_t *vlen, char *err, size_t errsz)
{
	unsigned char ad[AD_MAX];
	unsigned char *val;
	size_t hlen, adlen, total;

	total = CONN_HDR_FIXED + alen + vault_sealed_len(plen);
	val = xmalloc(total);
	hlen = conn_hdr_write(val, state, created, updated, vault_key_id(v), account, alen);
	adlen = make_ad(ad, 'c', key, klen, val, hlen);
	if (vault_seal(v, ad, adlen, plain, plen, val + hlen, total - hlen, err, errsz) != 0) {
		free(val);
		return NULL;
	}
	*vlen = total;
	return val;
}

/*
 * Open a connection's token set into buf (or a heap buffer when it does not
 * fit; *plain tells which). The caller wipes and frees.
 */
static int
conn_open(const struct vault *v, const void *key, size_t klen, const void *val,
    const struct conn_hdr *h, unsigned char *buf, size_t bufsz, unsigned char **plain,
    size_t *plen, char *err, size_t errsz)
{
	unsigned char ad[AD_MAX];
	size_t adlen, want = vault_plain_len(h->slen);
	unsigned char *out = want <= bufsz ? buf : xmalloc(want);
	char ktext[CONN_KEY_MAX + 1], verr[256];

	adlen = make_ad(ad, 'c', key, klen, val, h->hlen);
	if (vault_open(v, ad, adlen, h->sealed, h->slen, out, want, plen, verr, sizeof(verr)) != 0) {
		if (out != buf)
			free(out);
		util_seterr(err, errsz, "connection %s does not open: %s",
		    key_text(ktext, sizeof(ktext), key, klen), verr);
		return -1;
	}
	*plain = out;
	return 0;
}

static void
plain_release(unsigned char *plain, size_t len, const unsigned char *stackbuf)
{
	if (plain == NULL)
		return;
	sodium_memzero(plain, len);
	if (plain != stackbuf)
		free(plain);
}

/* ---- token set encoding ---- */

static size_t
opt_len(const char *s)
{
	return s ? strlen(s) : 0;
}

static int
tokens_check(const struct records_tokens *t, char *err, size_t errsz)
{
	if (t == NULL || t->access_token == NULL || secret_len(t->access_token) == 0) {
		util_seterr(err, errsz, "records: a connection needs an access token");
		return -1;
	}
	if (secret_len(t->access_token) > RECORDS_TOKEN_MAX ||
	    (t->refresh_token && secret_len(t->refresh_token) > RECORDS_TOKEN_MAX)) {
		util_seterr(err, errsz, "records: token longer than %d bytes", RECORDS_TOKEN_MAX);
		return -1;
	}
	if (opt_len(t->scope) > RECORDS_SCOPE_MAX || opt_len(t->instance_url) > RECORDS_URL_MAX ||
	    opt_len(t->token_type) > RECORDS_TYPE_MAX) {
		util_seterr(err, errsz, "records: scope, instance_url or token_type too long");
		return -1;
	}
	return 0;
}

static size_t
tokens_size(const struct records_tokens *t)
{
	return 1 + 1 + 8 + 4 + secret_len(t->access_token) + 4 +
	    (t->refresh_token ? secret_len(t->refresh_token) : 0) +
	    2 + opt_len(t->scope) + 2 + opt_len(t->instance_url) + 1 + opt_len(t->token_type);
}

static void
tokens_encode(const struct records_tokens *t, unsigned char *p)
{
	size_t n;

	*p++ = TOKENS_VER;
	*p++ = t->refresh_token ? 1 : 0;
	be64_put(p, t->expires_at);
	p += 8;
	n = secret_len(t->access_token);
	be32_put(p, (uint32_t)n);
	memcpy(p + 4, secret_reveal(t->access_token), n);
	p += 4 + n;
	n = t->refresh_token ? secret_len(t->refresh_token) : 0;
	be32_put(p, (uint32_t)n);
	if (n)
		memcpy(p + 4, secret_reveal(t->refresh_token), n);
	p += 4 + n;
	n = opt_len(t->scope);
	be16_put(p, (uint16_t)n);
	if (n)
		memcpy(p + 2, t->scope, n);
	p += 2 + n;
	n = opt_len(t->instance_url);
	be16_put(p, (uint16_t)n);
	if (n)
		memcpy(p + 2, t->instance_url, n);
	p += 2 + n;
	n = opt_len(t->token_type);
	*p = (unsigned char)n;
	if (n)
		memcpy(p + 1, t->token_type, n);
}

static char *
opt_dup(const unsigned char *p, size_t n)
{
	return n ? xstrndup((const char *)p, n) : NULL;
}

static int
tokens_decode(const unsigned char *plain, size_t plen, struct records_tokens *out)
{
	struct rd r = { plain, plen, false };
	const unsigned char *access, *refresh, *scope, *url, *type;
	unsigned ver, flags;
	uint32_t alen, rlen;
	uint16_t slen, ulen;
	unsigned tlen;
	int64_t exp;

	ver = rd_u8(&r);
	flags = rd_u8(&r);
	exp = rd_i64(&r);
	alen = rd_u32(&r);
	access = rd_take(&r, alen);
	rlen = rd_u32(&r);
	refresh = rd_take(&r, rlen);
	slen = rd_u16(&r);
	scope = rd_take(&r, slen);
	ulen = rd_u16(&r);
	url = rd_take(&r, ulen);
	tlen = rd_u8(&r);
	type = rd_take(&r, tlen);
	if (r.bad || r.left != 0 || ver != TOKENS_VER || alen == 0 || alen > RECORDS_TOKEN_MAX ||
	    rlen > RECORDS_TOKEN_MAX || ((flags & 1) == 0 && rlen != 0))
		return -1;
	memset(out, 0, sizeof(*out));
	out->access_token = secret_new(access, alen);
	out->refresh_token = (flags & 1) ? secret_new(refresh, rlen) : NULL;
	out->expires_at = exp;
	out->scope = opt_dup(scope, slen);
	out->instance_url = opt_dup(url, ulen);
	out->token_type = opt_dup(type, tlen);
	return 0;
}

void
records_tokens_clear(struct records_tokens *t)
{
	if (t == NULL)
		return;
	secret_free(t->access_token);
	secret_free(t->refresh_token);
	free(t->scope);
	free(t->instance_url);
	free(t->token_type);
	memset(t, 0, sizeof(*t));
}

const char *
records_state_name(enum records_state st)
{
	switch (st) {
	case RECORDS_ACTIVE:	return "active";
	case RECORDS_EXPIRED:	return "expired";
	}
	return "unknown";
}

/* ---- meta ---- */

struct meta_view {
	bool     has_schema;
	uint32_t schema;
	bool     has_key_id;
	uint8_t  key_id[VAULT_KEY_ID_LEN];
	char     rotated_to[PATH_MAX];
	bool     has_rotated_from;
	uint8_t  rotated_from[VAULT_KEY_ID_LEN];
};

static int
meta_read(struct store_txn *t, struct meta_view *m, char *err, size_t errsz)
{
	const void *v;
	size_t vlen;
	int rc;

	memset(m, 0, sizeof(*m));
	rc = store_get(t, STORE_DB_META, META_SCHEMA, strlen(META_SCHEMA), &v, &vlen, err, errsz);
	if (rc < 0)
		return -1;
	if (rc == 1) {
		if (vlen != 4) {
			util_seterr(err, errsz, "store meta: schema record is corrupt");
			return -1;
		}
		m->has_schema = true;
		m->schema = be32_get(v);
	}
	rc = store_get(t, STORE_DB_META, META_KEY_ID, strlen(META_KEY_ID), &v, &vlen, err, errsz);
	if (rc < 0)
		return -1;
	if (rc == 1) {
		if (vlen != VAULT_KEY_ID_LEN) {
			util_seterr(err, errsz, "store meta: key id record is corrupt");
			return -1;
		}
		m->has_key_id = true;
		memcpy(m->key_id, v, VAULT_KEY_ID_LEN);
	}
	rc = store_get(t, STORE_DB_META, META_ROT_TO, strlen(META_ROT_TO), &v, &vlen, err, errsz);
	if (rc < 0)
		return -1;
	if (rc == 1 && vlen > 0 && vlen < sizeof(m->rotated_to) && memchr(v, '\0', vlen) == NULL) {
		memcpy(m->rotated_to, v, vlen);
		m->rotated_to[vlen] = '\0';
	}
	rc = store_get(t, STORE_DB_META, META_ROT_FROM, strlen(META_ROT_FROM), &v, &vlen, err, errsz);
	if (rc < 0)
		return -1;
	if (rc == 1 && vlen == VAULT_KEY_ID_LEN) {
		m->has_rotated_from = true;
		memcpy(m->rotated_from, v, VAULT_KEY_ID_LEN);
	}
	return 0;
}

static int
meta_read_store(struct store *s, struct meta_view *m, char *err, size_t errsz)
{
	struct store_txn *t;
	int rc;

	if (store_read_begin(s, &t, err, errsz) != 0)
		return -1;
	rc = meta_read(t, m, err, errsz);
	store_read_end(t);
	return rc;
}

static void
mismatch_error(const char *key_file, const uint8_t *file_id, const uint8_t *store_id,
    char *err, size_t errsz)
{
	char a[VAULT_KEY_ID_HEX], b[VAULT_KEY_ID_HEX];

	vault_key_id_to_hex(file_id, a);
	vault_key_id_to_hex(store_id, b);
	util_seterr(err, errsz, "key file %s does not match this store (key id %s, store expects %s)",
	    key_file, a, b);
}

struct init_ctx {
	const struct vault *v;
	const char         *key_file;
};

/* First open of an empty store: record schema and key id (re-checked under the writer lock). */
static int
meta_init_fn(struct store_txn *t, void *arg, char *err, size_t errsz)
{
	struct init_ctx *c = arg;
	struct meta_view m;
	unsigned char sch[4];
	size_t n1, n2;

	if (meta_read(t, &m, err, errsz) != 0)
		return -1;
	if (m.has_key_id) {
		if (memcmp(m.key_id, vault_key_id(c->v), VAULT_KEY_ID_LEN) != 0) {
			mismatch_error(c->key_file, vault_key_id(c->v), m.key_id, err, errsz);
			return -1;
		}
		return 0;
	}
	if (store_count(t, STORE_DB_CONNECTIONS, &n1, err, errsz) != 0 ||
	    store_count(t, STORE_DB_PENDING, &n2, err, errsz) != 0)
		return -1;
	if (n1 + n2 > 0) {
		util_seterr(err, errsz, "store has %zu sealed records but no key id in meta: refusing to guess",
		    n1 + n2);
		return -1;
	}
	be32_put(sch, RECORDS_SCHEMA);
	if (store_put(t, STORE_DB_META, META_SCHEMA, strlen(META_SCHEMA), sch, 4, err, errsz) != 0 ||
	    store_put(t, STORE_DB_META, META_KEY_ID, strlen(META_KEY_ID), vault_key_id(c->v),
	    VAULT_KEY_ID_LEN, err, errsz) != 0)
		return -1;
	return 0;
}

/* ---- open / close ---- */

int
records_open(const char *dir, size_t map_size, const char *key_file, struct records **out,
    char *err, size_t errsz)
{
	struct records *r;
	struct meta_view m;
	struct init_ctx ic;

	r = xcalloc(1, sizeof(*r));
	pthread_mutex_init(&r->touch_mu, NULL);
	pthread_mutex_init(&r->lock_mu, NULL);
	pthread_cond_init(&r->lock_cv, NULL);
	r->events_cap = RECORDS_EVENTS_CAP;

	if (vault_load(key_file, &r->vault, err, errsz) != 0)
		goto fail;
	if (store_open(dir, map_size, 0, &r->store, err, errsz) != 0)
		goto fail;
	if (meta_read_store(r->store, &m, err, errsz) != 0)
		goto fail;
	if (!m.has_key_id) {
		ic.v = r->vault;
		ic.key_file = key_file;
		if (store_write(r->store, meta_init_fn, &ic, err, errsz) != 0)
			goto fail;
		if (meta_read_store(r->store, &m, err, errsz) != 0)
			goto fail;
	}
	if (!m.has_schema || m.schema != RECORDS_SCHEMA) {
		util_seterr(err, errsz, "store %s has schema %u; this workbot reads schema %d",
		    dir, m.has_schema ? m.schema : 0, RECORDS_SCHEMA);
		goto fail;
	}
	if (!m.has_key_id || memcmp(m.key_id, vault_key_id(r->vault), VAULT_KEY_ID_LEN) != 0) {
		if (m.has_key_id)
			mismatch_error(key_file, vault_key_id(r->vault), m.key_id, err, errsz);
		else
			util_seterr(err, errsz, "store %s: no key id in meta", dir);
		goto fail;
	}
	*out = r;
	return 0;
fail:
	records_close(r);
	return -1;
}

static void
touches_free(struct records *r)
{
	struct touch *t, *next;
	size_t i;

	for (i = 0; i < TOUCH_BUCKETS; i++) {
		for (t = r->touches[i]; t != NULL; t = next) {
			next = t->next;
			free(t);
		}
		r->touches[i] = NULL;
	}
	r->ntouches = 0;
}

void
records_close(struct records *r)
{
	struct conn_lock *l, *next;

	if (r == NULL)
		return;
	if (r->store != NULL && r->vault != NULL)
		(void)records_flush_touches(r, NULL, NULL, 0);
	touches_free(r);
	for (l = r->locks; l != NULL; l = next) {
		next = l->next;
		free(l);
	}
	store_close(r->store);
	vault_free(r->vault);
	pthread_cond_destroy(&r->lock_cv);
	pthread_mutex_destroy(&r->lock_mu);
	pthread_mutex_destroy(&r->touch_mu);
	free(r);
}

const char *
records_key_id(const struct records *r)
{
	return vault_key_id_hex(r->vault);
}

struct store *
records_store(struct records *r)
{
	return r->store;
}

/* ---- last used (in memory part) ---- */

static size_t
touch_bucket(const char *key, size_t klen)
{
	uint32_t h = 2166136261u;	/* FNV-1a: keys are ours, not attacker-chosen in bulk */
	size_t i;

	for (i = 0; i < klen; i++)
		h = (h ^ (unsigned char)key[i]) * 16777619u;
	return h % TOUCH_BUCKETS;
}

/* Buffered time for key, 0 if none. Caller holds touch_mu. */
static int64_t
touch_lookup_locked(struct records *r, const char *key, size_t klen)
{
	struct touch *t;

	for (t = r->touches[touch_bucket(key, klen)]; t != NULL; t = t->next)
		if (t->klen == klen && memcmp(t->key, key, klen) == 0)
			return t->when;
	return 0;
}

static void
touch_forget(struct records *r, const char *key, size_t klen)
{
	struct touch **pp, *t;

	pthread_mutex_lock(&r->touch_mu);
	for (pp = &r->touches[touch_bucket(key, klen)]; (t = *pp) != NULL; pp = &t->next) {
		if (t->klen == klen && memcmp(t->key, key, klen) == 0) {
			*pp = t->next;
			free(t);
			__atomic_store_n(&r->ntouches, r->ntouches - 1, __ATOMIC_RELEASE);
			break;
		}
	}
	pthread_mutex_unlock(&r->touch_mu);
}

int
records_touch(struct records *r, const char *team, const char *user, const char *app, int64_t when)
{
	char key[CONN_KEY_MAX + 1];
	struct touch *t;
	size_t klen, b;

	if (conn_key(team, user, app, key, &klen, NULL, 0) != 0)
		return -1;
	b = touch_bucket(key, klen);
	pthread_mutex_lock(&r->touch_mu);
	for (t = r->touches[b]; t != NULL; t = t->next) {
		if (t->klen == klen && memcmp(t->key, key, klen) == 0) {
			if (when > t->when)
				t->when = when;
			pthread_mutex_unlock(&r->touch_mu);
			return 0;
		}
	}
	if (r->ntouches >= RECORDS_TOUCH_MAX) {
		pthread_mutex_unlock(&r->touch_mu);
		return -1;
	}
	t = xmalloc(sizeof(*t) + klen);
	t->when = when;
	t->klen = klen;
	memcpy(t->key, key, klen);
	t->next = r->touches[b];
	r->touches[b] = t;
	__atomic_store_n(&r->ntouches, r->ntouches + 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&r->touch_mu);
	return 0;
}

struct flush_ctx {
	struct touch *list;
	size_t        written;
};

static int
flush_fn(struct store_txn *t, void *arg, char *err, size_t errsz)
{
	struct flush_ctx *c = arg;
	struct touch *e;
	const void *v;
	size_t vlen;
	unsigned char buf[8];
	int rc;

	c->written = 0;
	for (e = c->list; e != NULL; e = e->next) {
		/* A connection deleted since the use gets no last-used entry back. */
		rc = store_get(t, STORE_DB_CONNECTIONS, e->key, e->klen, &v, &vlen, err, errsz);
		if (rc < 0)
			return -1;
		if (rc == 0)
			continue;
		rc = store_get(t, STORE_DB_LASTUSED, e->key, e->klen, &v, &vlen, err, errsz);
		if (rc < 0)
			return -1;
		if (rc == 1 && vlen == 8 && be64_get(v) >= e->when)
			continue;
		be64_put(buf, e->when);
		if (store_put(t, STORE_DB_LASTUSED, e->key, e->klen, buf, 8, err, errsz) != 0)
			return -1;
		c->written++;
	}
	return 0;
}

int
records_flush_touches(struct records *r, size_t *written, char *err, size_t errsz)
{
	struct flush_ctx c = { NULL, 0 };
	struct touch *e, *next;
	size_t i;
	int rc;

	/* Take the whole buffer, so uses keep arriving while the batch commits. */
	pthread_mutex_lock(&r->touch_mu);
	for (i = 0; i < TOUCH_BUCKETS; i++) {
		for (e = r->touches[i]; e != NULL; e = next) {
			next = e->next;
			e->next = c.list;
			c.list = e;
		}
		r->touches[i] = NULL;
	}
	__atomic_store_n(&r->ntouches, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&r->touch_mu);

	if (written != NULL)
		*written = 0;
	if (c.list == NULL)
		return 0;
	rc = store_write(r->store, flush_fn, &c, err, errsz);
	for (e = c.list; e != NULL; e = next) {
		next = e->next;
		/* Failed: give the times back (bounded by records_touch's cap). */
		if (rc != 0) {
			struct records_conn tmp;
			if (split_key(e->key, e->klen, &tmp) == 0)
				(void)records_touch(r, tmp.team, tmp.user, tmp.app, e->when);
		}
		free(e);
	}
	if (rc == 0 && written != NULL)
		*written = c.written;
	return rc;
}

/* Persisted or buffered last use, whichever is newer. Inside a read txn. */
static int64_t
last_used(struct records *r, struct store_txn *t, const char *key, size_t klen)
{
	const void *v;
	size_t vlen;
	int64_t when = 0, mem;

	if (store_get(t, STORE_DB_LASTUSED, key, klen, &v, &vlen, NULL, 0) == 1 && vlen == 8)
		when = be64_get(v);
	/* Most reads find the buffer empty: skip the lock then (a use racing in is not lost, just not shown yet). */
	if (__atomic_load_n(&r->ntouches, __ATOMIC_ACQUIRE) == 0)
		return when;
	pthread_mutex_lock(&r->touch_mu);
	mem = touch_lookup_locked(r, key, klen);
	pthread_mutex_unlock(&r->touch_mu);
	return mem > when ? mem : when;
}

/* ---- connections ---- */

struct put_ctx {
	struct records              *r;
	const char                  *key;
	size_t                       klen;
	const char                  *account;
	const struct records_tokens *tok;
	const unsigned char         *plain;
	size_t                       plen;
	int64_t                      now;
	int                          flags;
	int                          result;
};

static int
put_fn(struct store_txn *t, void *arg, char *err, size_t errsz)
{
	struct put_ctx *c = arg;
	struct conn_hdr h;
	const void *old;
	size_t oldlen, alen, vlen;
	int64_t created = c->now;
	char account[RECORDS_ACCOUNT_MAX + 1] = "";
	unsigned char *val;
	int rc;

	c->result = 0;
	rc = store_get(t, STORE_DB_CONNECTIONS, c->key, c->klen, &old, &oldlen, err, errsz);
	if (rc < 0)
		return -1;
	if (rc == 0 && (c->flags & RECORDS_PUT_MUST_EXIST))
		return 0;
	if (rc == 1) {
		/* Keep created (and the label when none is given); a corrupt old record is replaced. */
		if (conn_parse(old, oldlen, &h) == 0) {
			created = h.created;
			memcpy(account, h.account, h.alen);
			account[h.alen] = '\0';
		} else if (c->flags & RECORDS_PUT_MUST_EXIST) {
			util_seterr(err, errsz, "connection %.*s is corrupt", (int)c->klen, c->key);
			return -1;
		}
	}
	if (c->account != NULL)
		snprintf(account, sizeof(account), "%s", c->account);
	alen = strlen(account);
	val = conn_build(c->r->vault, c->key, c->klen, RECORDS_ACTIVE, created, c->now,
	    account, alen, c->plain, c->plen, &vlen, err, errsz);
	if (val == NULL)
		return -1;
	rc = store_put(t, STORE_DB_CONNECTIONS, c->key, c->klen, val, vlen, err, errsz);
	free(val);
	if (rc != 0)
		return -1;
	c->result = 1;
	return 0;
}

int
records_conn_put(struct records *r, const char *team, const char *user, const char *app,
    const char *account, const struct records_tokens *tok, int64_t now, int flags,
    char *err, size_t errsz)
{
	char key[CONN_KEY_MAX + 1];
	struct put_ctx c;
	unsigned char *plain;
	size_t klen;
	int rc;

	if (conn_key(team, user, app, key, &klen, err, errsz) != 0 || tokens_check(tok, err, errsz) != 0)
		return -1;
	if (account != NULL && strlen(account) > RECORDS_ACCOUNT_MAX) {
		util_seterr(err, errsz, "records: account label longer than %d bytes", RECORDS_ACCOUNT_MAX);
		return -1;
	}
	memset(&c, 0, sizeof(c));
	c.r = r;
	c.key = key;
	c.klen = klen;
	c.account = account;
	c.tok = tok;
	c.now = now;
	c.flags = flags;
	c.plen = tokens_size(tok);
	plain = xmalloc(c.plen);
	tokens_encode(tok, plain);
	c.plain = plain;
	rc = store_write(r->store, put_fn, &c, err, errsz);
	sodium_memzero(plain, c.plen);
	free(plain);
	return rc != 0 ? -1 : c.result;
}

int
records_conn_get(struct records *r, const char *team, const char *user, const char *app,
    struct records_conn *hdr, struct records_tokens *tok, char *err, size_t errsz)
{
	char key[CONN_KEY_MAX + 1], ktext[CONN_KEY_MAX + 1];
	unsigned char stackbuf[STACK_PLAIN], *plain = NULL;
	struct store_txn *t;
	struct conn_hdr h;
	struct records_conn c;
	struct records_tokens out = { 0 };
	const void *val;
	size_t klen, vlen, plen = 0;
	int rc;

	if (conn_key(team, user, app, key, &klen, err, errsz) != 0)
		return -1;
	if (store_read_begin(r->store, &t, err, errsz) != 0)
		return -1;
	rc = store_get(t, STORE_DB_CONNECTIONS, key, klen, &val, &vlen, err, errsz);
	if (rc <= 0) {
		store_read_end(t);
		return rc;
	}
	if (conn_parse(val, vlen, &h) != 0) {
		store_read_end(t);
		util_seterr(err, errsz, "connection %s is corrupt", key_text(ktext, sizeof(ktext), key, klen));
		return -1;
	}
	if (tok != NULL) {
		if (conn_open(r->vault, key, klen, val, &h, stackbuf, sizeof(stackbuf), &plain, &plen,
		    err, errsz) != 0) {
			store_read_end(t);
			return -1;
		}
		if (tokens_decode(plain, plen, &out) != 0) {
			plain_release(plain, vault_plain_len(h.slen), stackbuf);
			store_read_end(t);
			util_seterr(err, errsz, "connection %s: token set is malformed", key_text(ktext, sizeof(ktext), key, klen));
			return -1;
		}
		plain_release(plain, vault_plain_len(h.slen), stackbuf);
	}
	if (hdr != NULL) {
		if (split_key(key, klen, &c) != 0)
			abort();	/* conn_key() made it: broken invariant */
		conn_fill(&c, &h, r->vault);
		c.last_used = last_used(r, t, key, klen);
	}
	store_read_end(t);
	if (hdr != NULL)
		*hdr = c;
	if (tok != NULL)
		*tok = out;
	return 1;
}

struct del_ctx {
	const char *key;
	size_t      klen;
	int         result;
};

static int
del_fn(struct store_txn *t, void *arg, char *err, size_t errsz)
{
	struct del_ctx *c = arg;
	int rc;

	c->result = 0;
	rc = store_del(t, STORE_DB_CONNECTIONS, c->key, c->klen, err, errsz);
	if (rc < 0)
		return -1;
	c->result = rc;
	if (store_del(t, STORE_DB_LASTUSED, c->key, c->klen, err, errsz) < 0)
		return -1;
	return 0;
}

int
records_conn_delete(struct records *r, const char *team, const char *user, const char *app,
    char *err, size_t errsz)
{
	char key[CONN_KEY_MAX + 1];
	struct del_ctx c;
	size_t klen;

	if (conn_key(team, user, app, key, &klen, err, errsz) != 0)
		return -1;
	c.key = key;
	c.klen = klen;
	c.result = 0;
	touch_forget(r, key, klen);
	if (store_write(r->store, del_fn, &c, err, errsz) != 0)
		return -1;
	return c.result;
}

/*
 * Re-seal one connection value: open with `from`, seal with `to`, optionally
 * with a new state and updated time (state 0 / now < 0: keep). Returns a new
 * heap value.
 */
static unsigned char *
conn_reseal(const struct vault *from, const struct vault *to, const void *key, size_t klen,
    const void *val, size_t vlen, unsigned state, int64_t now, size_t *newlen,
    char *err, size_t errsz)
{
	unsigned char stackbuf[STACK_PLAIN], *plain = NULL, *out;
	struct conn_hdr h;
	char ktext[CONN_KEY_MAX + 1];
	size_t plen = 0;

	if (conn_parse(val, vlen, &h) != 0) {
		util_seterr(err, errsz, "connection %s is corrupt", key_text(ktext, sizeof(ktext), key, klen));
		return NULL;
	}
	if (conn_open(from, key, klen, val, &h, stackbuf, sizeof(stackbuf), &plain, &plen, err, errsz) != 0)
		return NULL;
	out = conn_build(to, key, klen, state ? state : h.state, h.created, now >= 0 ? now : h.updated,
	    h.account, h.alen, plain, plen, newlen, err, errsz);
	plain_release(plain, vault_plain_len(h.slen), stackbuf);
	return out;
}

struct state_ctx {
	struct records *r;
	const char     *key;
	size_t          klen;
	unsigned        state;
	int64_t         now;
	int             result;
};

static int
state_fn(struct store_txn *t, void *arg, char *err, size_t errsz)
{
	struct state_ctx *c = arg;
	const void *val;
	unsigned char *nv;
	size_t vlen, nlen;
	int rc;

	c->result = 0;
	rc = store_get(t, STORE_DB_CONNECTIONS, c->key, c->klen, &val, &vlen, err, errsz);
	if (rc <= 0)
		return rc;
	nv = conn_reseal(c->r->vault, c->r->vault, c->key, c->klen, val, vlen, c->state, c->now,
	    &nlen, err, errsz);
	if (nv == NULL)
		return -1;
	rc = store_put(t, STORE_DB_CONNECTIONS, c->key, c->klen, nv, nlen, err, errsz);
	free(nv);
	if (rc != 0)
		return -1;
	c->result = 1;
	return 0;
}

int
records_conn_set_state(struct records *r, const char *team, const char *user, const char *app,
    enum records_state st, int64_t now, char *err, size_t errsz)
{
	char key[CONN_KEY_MAX + 1];
	struct state_ctx c;
	size_t klen;

	if (st != RECORDS_ACTIVE && st != RECORDS_EXPIRED) {
		util_seterr(err, errsz, "records: unknown connection state %d", (int)st);
		return -1;
	}
	if (conn_key(team, user, app, key, &klen, err, errsz) != 0)
		return -1;
	c.r = r;
	c.key = key;
	c.klen = klen;
	c.state = (unsigned)st;
	c.now = now < 0 ? 0 : now;
	c.result = 0;
	if (store_write(r->store, state_fn, &c, err, errsz) != 0)
		return -1;
	return c.result;
}

struct list_ctx {
	struct records            *r;
	struct store_txn          *t;
	const struct records_filter *f;
	struct records_conn       *items;
	size_t                     n, cap;
};

static int
list_fn(const void *key, size_t klen, const void *val, size_t vlen, void *arg, char *err, size_t errsz)
{
	struct list_ctx *c = arg;
	struct records_conn e;
	struct conn_hdr h;
	char ktext[CONN_KEY_MAX + 1];

	if (split_key(key, klen, &e) != 0 || conn_parse(val, vlen, &h) != 0) {
		util_seterr(err, errsz, "connection %s is corrupt", key_text(ktext, sizeof(ktext), key, klen));
		return -1;
	}
	if (c->f != NULL && ((c->f->team && strcmp(c->f->team, e.team) != 0) ||
	    (c->f->user && strcmp(c->f->user, e.user) != 0) ||
	    (c->f->app && strcmp(c->f->app, e.app) != 0)))
		return STORE_ITER_NEXT;
	conn_fill(&e, &h, c->r->vault);
	e.last_used = last_used(c->r, c->t, key, klen);
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 16;
		c->items = xreallocarray(c->items, c->cap, sizeof(*c->items));
	}
	c->items[c->n++] = e;
	return STORE_ITER_NEXT;
}

int
records_conn_list(struct records *r, const struct records_filter *f, struct records_conn **out,
    size_t *n, char *err, size_t errsz)
{
	struct list_ctx c;
	char prefix[CONN_KEY_MAX + 2];
	size_t plen = 0;
	int rc;

	memset(&c, 0, sizeof(c));
	c.r = r;
	c.f = f;
	/* Keys sort by team, then user: use the longest prefix the filter allows. */
	if (f != NULL && f->team != NULL) {
		if (check_id("team", f->team, RECORDS_ID_MAX, err, errsz) != 0)
			return -1;
		if (f->user != NULL) {
			if (check_id("user", f->user, RECORDS_ID_MAX, err, errsz) != 0)
				return -1;
			plen = (size_t)snprintf(prefix, sizeof(prefix), "%s:%s:", f->team, f->user);
		} else {
			plen = (size_t)snprintf(prefix, sizeof(prefix), "%s:", f->team);
		}
	}
	if (store_read_begin(r->store, &c.t, err, errsz) != 0)
		return -1;
	rc = store_iter(c.t, STORE_DB_CONNECTIONS, prefix, plen, 0, list_fn, &c, err, errsz);
	store_read_end(c.t);
	if (rc != 0) {
		free(c.items);
		return -1;
	}
	*out = c.items;
	*n = c.n;
	return 0;
}

/* ---- per-connection single-flight lock ---- */

void
records_conn_lock(struct records *r, const char *team, const char *user, const char *app)
{
	char key[CONN_KEY_MAX + 1];
	struct conn_lock *l;
	size_t klen;

	/* Invalid names cannot name a record; lock on the text anyway so callers stay paired. */
	if (conn_key(team, user, app, key, &klen, NULL, 0) != 0)
		snprintf(key, sizeof(key), "%.64s:%.64s:%.64s", team ? team : "", user ? user : "", app ? app : "");
	pthread_mutex_lock(&r->lock_mu);
	for (l = r->locks; l != NULL; l = l->next)
		if (strcmp(l->key, key) == 0)
			break;
	if (l == NULL) {
		l = xcalloc(1, sizeof(*l) + strlen(key) + 1);
		strcpy(l->key, key);
		l->next = r->locks;
		r->locks = l;
	}
	l->refs++;
	while (l->held)
		pthread_cond_wait(&r->lock_cv, &r->lock_mu);
	l->held = true;
	pthread_mutex_unlock(&r->lock_mu);
}

void
records_conn_unlock(struct records *r, const char *team, const char *user, const char *app)
{
	char key[CONN_KEY_MAX + 1];
	struct conn_lock **pp, *l;
	size_t klen;

	if (conn_key(team, user, app, key, &klen, NULL, 0) != 0)
		snprintf(key, sizeof(key), "%.64s:%.64s:%.64s", team ? team : "", user ? user : "", app ? app : "");
	pthread_mutex_lock(&r->lock_mu);
	for (pp = &r->locks; (l = *pp) != NULL; pp = &l->next) {
		if (strcmp(l->key, key) == 0) {
			l->held = false;
			if (--l->refs == 0) {
				*pp = l->next;
				free(l);
			}
			break;
		}
	}
	pthread_cond_broadcast(&r->lock_cv);
	pthread_mutex_unlock(&r->lock_mu);
}

/* ---- pending logins ---- */

static int
pending_parse(const void *val, size_t vlen, int64_t *expires_at)
{
	const unsigned char *p = val;

	if (vlen < PENDING_HDR + VAULT_OVERHEAD || p[0] != PENDING_FMT)
		return -1;
	*expires_at = be64_get(p + 1);
	return 0;
}

/* Open a pending value into a new secret. */
static int
pending_open(const struct vault *v, const char *id, size_t idlen, const void *val, size_t vlen,
    struct secret **body, char *err, size_t errsz)
{
	unsigned char ad[AD_MAX], *plain;
	size_t adlen, want = vault_plain_len(vlen - PENDING_HDR), plen = 0;
	char verr[256];

	adlen = make_ad(ad, 'p', id, idlen, val, PENDING_HDR);
	plain = xmalloc(want ? want : 1);
	if (vault_open(v, ad, adlen, (const unsigned char *)val + PENDING_HDR, vlen - PENDING_HDR,
	    plain, want, &plen, verr, sizeof(verr)) != 0) {
		free(plain);
		util_seterr(err, errsz, "pending login record does not open: %s", verr);
		return -1;
	}
	*body = secret_new(plain, plen);
	sodium_memzero(plain, want);
	free(plain);
	return 0;
}

static unsigned char *
pending_build(const struct vault *v, const char *id, size_t idlen, int64_t expires_at,
    const void *body, size_t len, size_t *vlen, char *err, size_t errsz)
{
	unsigned char ad[AD_MAX], *val;
	size_t adlen, total = PENDING_HDR + vault_sealed_len(len);

	val = xmalloc(total);
	val[0] = PENDING_FMT;
	be64_put(val + 1, expires_at);
	memcpy(val + 9, vault_key_id(v), VAULT_KEY_ID_LEN);
	adlen = make_ad(ad, 'p', id, idlen, val, PENDING_HDR);
	if (vault_seal(v, ad, adlen, body, len, val + PENDING_HDR, total - PENDING_HDR, err, errsz) != 0) {
		free(val);
		return NULL;
	}
	*vlen = total;
	return val;
}

struct pput_ctx {
	const char    *id;
	size_t         idlen;
	unsigned char *val;
	size_t         vlen;
};

static int
pput_fn(struct store_txn *t, void *arg, char *err, size_t errsz)
{
	struct pput_ctx *c = arg;

	return store_put(t, STORE_DB_PENDING, c->id, c->idlen, c->val, c->vlen, err, errsz);
}

int
records_pending_put(struct records *r, const char *id, int64_t expires_at, const void *body,
    size_t len, char *err, size_t errsz)
{
	struct pput_ctx c;
	int rc;

	if (check_id("pending id", id, PENDING_ID_MAX, err, errsz) != 0)
		return -1;
	if (len > RECORDS_PENDING_MAX) {
		util_seterr(err, errsz, "records: pending body of %zu bytes is over the %d-byte limit",
		    len, RECORDS_PENDING_MAX);
		return -1;
	}
	c.id = id;
	c.idlen = strlen(id);
	c.val = pending_build(r->vault, id, c.idlen, expires_at, body, len, &c.vlen, err, errsz);
	if (c.val == NULL)
		return -1;
	rc = store_write(r->store, pput_fn, &c, err, errsz);
	free(c.val);
	return rc;
}

int
records_pending_get(struct records *r, const char *id, int64_t now, struct secret **body,
    int64_t *expires_at, char *err, size_t errsz)
{
	struct store_txn *t;
	const void *val;
	size_t vlen, idlen;
	int64_t exp;
	int rc;

	if (check_id("pending id", id, PENDING_ID_MAX, err, errsz) != 0)
		return -1;
	idlen = strlen(id);
	if (store_read_begin(r->store, &t, err, errsz) != 0)
		return -1;
	rc = store_get(t, STORE_DB_PENDING, id, idlen, &val, &vlen, err, errsz);
	if (rc <= 0) {
		store_read_end(t);
		return rc < 0 ? -1 : RECORDS_PENDING_NONE;
	}
	if (pending_parse(val, vlen, &exp) != 0) {
		store_read_end(t);
		util_seterr(err, errsz, "pending login record is corrupt");
		return -1;
	}
	if (exp <= now) {
		store_read_end(t);
		if (expires_at != NULL)
			*expires_at = exp;
		return RECORDS_PENDING_EXPIRED;
	}
	rc = pending_open(r->vault, id, idlen, val, vlen, body, err, errsz);
	store_read_end(t);
	if (rc != 0)
		return -1;
	if (expires_at != NULL)
		*expires_at = exp;
	return RECORDS_PENDING_FOUND;
}

struct take_ctx {
	const char    *id;
	size_t         idlen;
	int64_t        now;
	int            result;
	int64_t        exp;
	unsigned char *copy;	/* the consumed value, opened after the commit */
	size_t         clen;
};

static int
take_fn(struct store_txn *t, void *arg, char *err, size_t errsz)
{
	struct take_ctx *c = arg;
	const void *val;
	size_t vlen;
	int rc;

	free(c->copy);
	c->copy = NULL;
	c->result = RECORDS_PENDING_NONE;
	rc = store_get(t, STORE_DB_PENDING, c->id, c->idlen, &val, &vlen, err, errsz);
	if (rc <= 0)
		return rc;
	/* Consumed on first use, whatever it holds: a corrupt record is deleted too. */
	if (pending_parse(val, vlen, &c->exp) != 0) {
		c->result = -1;
	} else if (c->exp <= c->now) {
		c->result = RECORDS_PENDING_EXPIRED;
	} else {
		c->result = RECORDS_PENDING_FOUND;
		c->copy = xmalloc(vlen);
		memcpy(c->copy, val, vlen);
		c->clen = vlen;
	}
	return store_del(t, STORE_DB_PENDING, c->id, c->idlen, err, errsz) < 0 ? -1 : 0;
}

int
records_pending_take(struct records *r, const char *id, int64_t now, struct secret **body,
    int64_t *expires_at, char *err, size_t errsz)
{
	struct take_ctx c;
	int rc;

	if (check_id("pending id", id, PENDING_ID_MAX, err, errsz) != 0)
		return -1;
	memset(&c, 0, sizeof(c));
	c.id = id;
	c.idlen = strlen(id);
	c.now = now;
	if (store_write(r->store, take_fn, &c, err, errsz) != 0) {
		free(c.copy);
		return -1;
	}
	if (c.result < 0) {
		util_seterr(err, errsz, "pending login record is corrupt (deleted)");
		return -1;
	}
	if (c.result == RECORDS_PENDING_FOUND) {
		rc = pending_open(r->vault, id, c.idlen, c.copy, c.clen, body, err, errsz);
		free(c.copy);
		if (rc != 0)
			return -1;
	}
	if (c.result != RECORDS_PENDING_NONE && expires_at != NULL)
		*expires_at = c.exp;
	return c.result;
}

struct swept {
	struct swept  *next;
	int64_t        exp;
	size_t         vlen;
	unsigned char *val;
	char           id[];
};

struct sweep_ctx {
	int64_t       now;
	size_t        max;
	size_t        n;
	struct swept *list;
};

static void
swept_free(struct swept *s)
{
	struct swept *next;

	for (; s != NULL; s = next) {
		next = s->next;
		free(s->val);
		free(s);
	}
}

static int
psweep_iter(const void *key, size_t klen, const void *val, size_t vlen, void *arg,
    char *err, size_t errsz)
{
	struct sweep_ctx *c = arg;
	struct swept *s;
	int64_t exp = 0;
	bool corrupt = pending_parse(val, vlen, &exp) != 0;

	(void)err;
	(void)errsz;
	if (!corrupt && exp > c->now)
		return STORE_ITER_NEXT;
	if (c->n >= c->max)
		return STORE_ITER_STOP;
	s = xcalloc(1, sizeof(*s) + klen + 1);
	memcpy(s->id, key, klen);
	s->exp = exp;
	if (!corrupt) {
		s->val = xmalloc(vlen);
		memcpy(s->val, val, vlen);
		s->vlen = vlen;
	}
	s->next = c->list;
	c->list = s;
	c->n++;
	return STORE_ITER_DELETE;
}

static int
psweep_fn(struct store_txn *t, void *arg, char *err, size_t errsz)
{
	struct sweep_ctx *c = arg;

	swept_free(c->list);
	c->list = NULL;
	c->n = 0;
	return store_iter(t, STORE_DB_PENDING, NULL, 0, 0, psweep_iter, c, err, errsz);
}

int
records_pending_sweep(struct records *r, int64_t now, size_t max, records_pending_cb cb, void *arg,
    size_t *swept, char *err, size_t errsz)
{
	struct sweep_ctx c;
	struct swept *s;

	memset(&c, 0, sizeof(c));
	c.now = now;
	c.max = max ? max : SWEEP_DEFAULT;
	if (store_write(r->store, psweep_fn, &c, err, errsz) != 0) {
		swept_free(c.list);
		return -1;
	}
	/* After the commit: the callback may revoke over the network. */
	for (s = c.list; s != NULL; s = s->next) {
		struct secret *body = NULL;
		if (s->val != NULL)
			(void)pending_open(r->vault, s->id, strlen(s->id), s->val, s->vlen, &body, NULL, 0);
		if (cb != NULL)
			cb(s->id, s->exp, body, arg);
		secret_free(body);
	}
	swept_free(c.list);
	if (swept != NULL)
		*swept = c.n;
	return 0;
}

/* ---- event dedupe ---- */

void
records_events_set_cap(struct records *r, size_t cap)
{
	r->events_cap = cap ? cap : RECORDS_EVENTS_CAP;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

struct trim_ctx {
	int64_t *times;
	size_t   n, cap;
	int64_t  cut;
	size_t   excess;	/* still to delete */
	bool     ties;	/* second pass: delete entries at exactly `cut` */
};

static int
trim_collect(const void *key, size_t klen, const void *val, size_t vlen, void *arg,
    char *err, size_t errsz)
{
	struct trim_ctx *c = arg;

	(void)key;
	(void)klen;
	(void)err;
	(void)errsz;
	if (c->n < c->cap)
		c->times[c->n++] = vlen == 8 ? be64_get(val) : INT64_MIN;
	return STORE_ITER_NEXT;
}

static int
trim_delete(const void *key, size_t klen, const void *val, size_t vlen, void *arg,
    char *err, size_t errsz)
{
	struct trim_ctx *c = arg;
	int64_t when = vlen == 8 ? be64_get(val) : INT64_MIN;

	(void)key;
	(void)klen;
	(void)err;
	(void)errsz;
	if (c->excess == 0)
		return STORE_ITER_STOP;
	if (when < c->cut || (c->ties && when == c->cut)) {
		c->excess--;
		return STORE_ITER_DELETE;
	}
	return STORE_ITER_NEXT;
}

/*
 * Over the cap: drop the oldest down to 90% of it, so the O(n) scan runs
 * once per tenth of the cap rather than on every batch.
 */
static int
events_trim(struct store_txn *t, size_t cap, char *err, size_t errsz)
{
	struct trim_ctx c;
	size_t count, target;
	int rc;

	if (store_count(t, STORE_DB_EVENTS, &count, err, errsz) != 0)
		return -1;
	if (count <= cap)
		return 0;
	target = cap - cap / 10;
	memset(&c, 0, sizeof(c));
	c.cap = count;
	c.times = xreallocarray(NULL, count, sizeof(int64_t));
	rc = store_iter(t, STORE_DB_EVENTS, NULL, 0, 0, trim_collect, &c, err, errsz);
	if (rc == 0 && c.n > target) {
		qsort(c.times, c.n, sizeof(int64_t), cmp_i64);
		c.excess = c.n - target;
		c.cut = c.times[c.excess - 1];
		rc = store_iter(t, STORE_DB_EVENTS, NULL, 0, 0, trim_delete, &c, err, errsz);
		if (rc == 0 && c.excess > 0) {
			c.ties = true;
			rc = store_iter(t, STORE_DB_EVENTS, NULL, 0, 0, trim_delete, &c, err, errsz);
		}
	}
	free(c.times);
	return rc;
}

struct mark_ctx {
	struct records     *r;
	const char *const  *ids;
	size_t              n;
	int64_t             now;
	int64_t             window;
	bool                check;	/* single id: report an id seen within the window */
	int                 result;
};

static int
mark_fn(struct store_txn *t, void *arg, char *err, size_t errsz)
{
	struct mark_ctx *c = arg;
	unsigned char buf[8];
	const void *v;
	size_t i, vlen;
	int rc;

	c->result = 0;
	be64_put(buf, c->now);
	for (i = 0; i < c->n; i++) {
		if (c->check) {
			rc = store_get(t, STORE_DB_EVENTS, c->ids[i], strlen(c->ids[i]), &v, &vlen, err, errsz);
			if (rc < 0)
				return -1;
			if (rc == 1 && vlen == 8 && be64_get(v) >= c->now - c->window) {
				c->result = 1;
				return 0;
			}
		}
		if (store_put(t, STORE_DB_EVENTS, c->ids[i], strlen(c->ids[i]), buf, 8, err, errsz) != 0)
			return -1;
	}
	return events_trim(t, c->r->events_cap, err, errsz);
}

static int
check_event_ids(const char *const *ids, size_t n, char *err, size_t errsz)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (check_id_chars("event id", ids[i], RECORDS_EVENT_ID_MAX, true, err, errsz) != 0)
			return -1;
	return 0;
}

int
records_seen_or_mark(struct records *r, const char *id, int64_t now, int64_t window_secs,
    char *err, size_t errsz)
{
	struct mark_ctx c;
	struct store_txn *t;
	const void *v;
	size_t vlen;
	int rc;

	if (check_event_ids(&id, 1, err, errsz) != 0)
		return -1;
	/* The common answer for a duplicate needs no writer lock and no fsync. */
	if (store_read_begin(r->store, &t, err, errsz) != 0)
		return -1;
	rc = store_get(t, STORE_DB_EVENTS, id, strlen(id), &v, &vlen, err, errsz);
	if (rc == 1 && vlen == 8 && be64_get(v) >= now - window_secs) {
		store_read_end(t);
		return 1;
	}
	store_read_end(t);
	if (rc < 0)
		return -1;
	memset(&c, 0, sizeof(c));
	c.r = r;
	c.ids = &id;
	c.n = 1;
	c.now = now;
	c.window = window_secs;
	c.check = true;
	if (store_write(r->store, mark_fn, &c, err, errsz) != 0)
		return -1;
	return c.result;
}

int
records_events_mark(struct records *r, const char *const *ids, size_t n, int64_t now,
    char *err, size_t errsz)
{
	struct mark_ctx c;

	if (n == 0)
		return 0;
	if (check_event_ids(ids, n, err, errsz) != 0)
		return -1;
	memset(&c, 0, sizeof(c));
	c.r = r;
	c.ids = ids;
	c.n = n;
	c.now = now;
	return store_write(r->store, mark_fn, &c, err, errsz);
}

struct eload_ctx {
	int64_t          since;
	records_event_cb cb;
	void            *arg;
	size_t           count;
};

static int
eload_iter(const void *key, size_t klen, const void *val, size_t vlen, void *arg,
    char *err, size_t errsz)
{
	struct eload_ctx *c = arg;
	char id[RECORDS_EVENT_ID_MAX + 1];
	int64_t when;

	(void)err;
	(void)errsz;
	if (vlen != 8 || klen > RECORDS_EVENT_ID_MAX)
		return STORE_ITER_NEXT;	/* not ours: the sweep will age it out */
	when = be64_get(val);
	if (when < c->since)
		return STORE_ITER_NEXT;
	memcpy(id, key, klen);
	id[klen] = '\0';
	if (c->cb != NULL)
		c->cb(id, when, c->arg);
	c->count++;
	return STORE_ITER_NEXT;
}

int
records_events_load(struct records *r, int64_t since, records_event_cb cb, void *arg,
    size_t *count, char *err, size_t errsz)
{
	struct eload_ctx c = { since, cb, arg, 0 };
	struct store_txn *t;
	int rc;

	if (store_read_begin(r->store, &t, err, errsz) != 0)
		return -1;
	rc = store_iter(t, STORE_DB_EVENTS, NULL, 0, 0, eload_iter, &c, err, errsz);
	store_read_end(t);
	if (rc == 0 && count != NULL)
		*count = c.count;
	return rc;
}

struct esweep_ctx {
	int64_t before;
	size_t  removed;
};

static int
esweep_iter(const void *key, size_t klen, const void *val, size_t vlen, void *arg,
    char *err, size_t errsz)
{
	struct esweep_ctx *c = arg;

	(void)key;
	(void)klen;
	(void)err;
	(void)errsz;
	if (vlen == 8 && be64_get(val) >= c->before)
		return STORE_ITER_NEXT;
	c->removed++;
	return STORE_ITER_DELETE;
}

static int
esweep_fn(struct store_txn *t, void *arg, char *err, size_t errsz)
{
	struct esweep_ctx *c = arg;

	c->removed = 0;
	return store_iter(t, STORE_DB_EVENTS, NULL, 0, 0, esweep_iter, c, err, errsz);
}

int
records_events_sweep(struct records *r, int64_t before, size_t *removed, char *err, size_t errsz)
{
	struct esweep_ctx c = { before, 0 };

	if (store_write(r->store, esweep_fn, &c, err, errsz) != 0)
		return -1;
	if (removed != NULL)
		*removed = c.removed;
	return 0;
}

/* ---- audit ---- */

static const char *const audit_names[] = {
	[RECORDS_AUDIT_CONNECTED]    = "connected",
	[RECORDS_AUDIT_REFRESHED]    = "refreshed",
	[RECORDS_AUDIT_USED]         = "used",
	[RECORDS_AUDIT_DISCONNECTED] = "disconnected",
	[RECORDS_AUDIT_REVOKED]      = "revoked",
	[RECORDS_AUDIT_EXPIRED]      = "expired",
	[RECORDS_AUDIT_ROTATED]      = "rotated",
};

const char *
records_audit_action_name(enum records_audit_action a)
{
	if ((int)a < RECORDS_AUDIT_CONNECTED || a > RECORDS_AUDIT_ROTATED)
		return "unknown";
	return audit_names[a];
}

/* Times sort as unsigned big-endian once the sign bit is flipped. */
static void
audit_time_put(unsigned char *p, int64_t when)
{
	be64_put(p, (int64_t)((uint64_t)when ^ (UINT64_C(1) << 63)));
}

static int64_t
audit_time_get(const unsigned char *p)
{
	return (int64_t)((uint64_t)be64_get(p) ^ (UINT64_C(1) << 63));
}

static size_t
audit_field(unsigned char *p, const char *s, size_t max, bool clean)
{
	size_t n = s ? strnlen(s, max) : 0, i;

	*p = (unsigned char)n;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		p[1 + i] = (clean && (ch < 0x20 || ch == 0x7f)) ? '?' : ch;
	}
	return 1 + n;
}

struct last_ctx {
	uint32_t last;
	bool     found;
};

static int
audit_last_iter(const void *key, size_t klen, const void *val, size_t vlen, void *arg,
    char *err, size_t errsz)
{
	struct last_ctx *c = arg;

	(void)val;
	(void)vlen;
	(void)err;
	(void)errsz;
	if (klen == 12) {
		c->last = be32_get((const unsigned char *)key + 8);
		c->found = true;
	}
	return STORE_ITER_STOP;
}

struct aappend_ctx {
	const struct records_audit *e;
	size_t                      n;
};

static int
audit_put_one(struct store_txn *t, const struct records_audit *e, char *err, size_t errsz)
{
	unsigned char key[12], val[1 + 3 * (1 + RECORDS_ID_MAX) + 1 + RECORDS_DETAIL_MAX];
	struct last_ctx lc = { 0, false };
	size_t off = 0;

	/* Next counter for this second, found under the writer lock: unique across processes. */
	audit_time_put(key, e->time);
	if (store_iter(t, STORE_DB_AUDIT, key, 8, STORE_ITER_REVERSE, audit_last_iter, &lc, err, errsz) != 0)
		return -1;
	be32_put(key + 8, lc.found ? lc.last + 1 : 0);
	val[off++] = (unsigned char)e->action;
	off += audit_field(val + off, e->team, RECORDS_ID_MAX, true);
	off += audit_field(val + off, e->user, RECORDS_ID_MAX, true);
	off += audit_field(val + off, e->app, RECORDS_ID_MAX, true);
	off += audit_field(val + off, e->detail, RECORDS_DETAIL_MAX, true);
	return store_put(t, STORE_DB_AUDIT, key, sizeof(key), val, off, err, errsz);
}

static int
aappend_fn(struct store_txn *t, void *arg, char *err, size_t errsz)
{
	struct aappend_ctx *c = arg;
	size_t i;

	for (i = 0; i < c->n; i++)
		if (audit_put_one(t, &c->e[i], err, errsz) != 0)
			return -1;
	return 0;
}

int
records_audit_append(struct records *r, const struct records_audit *e, size_t n,
    char *err, size_t errsz)
{
	struct aappend_ctx c = { e, n };
	size_t i;

	for (i = 0; i < n; i++) {
		if ((int)e[i].action < RECORDS_AUDIT_CONNECTED || e[i].action > RECORDS_AUDIT_ROTATED) {
			util_seterr(err, errsz, "records: unknown audit action %d", (int)e[i].action);
			return -1;
		}
	}
	if (n == 0)
		return 0;
	return store_write(r->store, aappend_fn, &c, err, errsz);
}

static int
audit_decode(const void *key, size_t klen, const void *val, size_t vlen, struct records_audit *e)
{
	struct rd r = { val, vlen, false };
	char *fields[4] = { e->team, e->user, e->app, e->detail };
	size_t max[4] = { RECORDS_ID_MAX, RECORDS_ID_MAX, RECORDS_ID_MAX, RECORDS_DETAIL_MAX };
	unsigned action;
	int i;

	if (klen != 12)
		return -1;
	e->time = audit_time_get(key);
	action = rd_u8(&r);
	if (action < RECORDS_AUDIT_CONNECTED || action > RECORDS_AUDIT_ROTATED)
		return -1;
	e->action = (enum records_audit_action)action;
	for (i = 0; i < 4; i++) {
		unsigned n = rd_u8(&r);
		const unsigned char *p = rd_take(&r, n);
		if (r.bad || n > max[i])
			return -1;
		memcpy(fields[i], p, n);
		fields[i][n] = '\0';
	}
	return r.left == 0 ? 0 : -1;
}

struct alist_ctx {
	const struct records_filter *f;
	enum records_audit_action    action;
	size_t                       max;
	struct records_audit        *items;
	size_t                       n, cap;
};

static int
alist_iter(const void *key, size_t klen, const void *val, size_t vlen, void *arg,
    char *err, size_t errsz)
{
	struct alist_ctx *c = arg;
	struct records_audit e;

	if (audit_decode(key, klen, val, vlen, &e) != 0) {
		util_seterr(err, errsz, "audit entry is corrupt");
		return -1;
	}
	if ((c->action && e.action != c->action) ||
	    (c->f != NULL && ((c->f->team && strcmp(c->f->team, e.team) != 0) ||
	    (c->f->user && strcmp(c->f->user, e.user) != 0) ||
	    (c->f->app && strcmp(c->f->app, e.app) != 0))))
		return STORE_ITER_NEXT;
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 16;
		c->items = xreallocarray(c->items, c->cap, sizeof(*c->items));
	}
	c->items[c->n++] = e;
	return c->n >= c->max ? STORE_ITER_STOP : STORE_ITER_NEXT;
}

int
records_audit_list(struct records *r, const struct records_filter *f,
    enum records_audit_action action, size_t max, struct records_audit **out, size_t *n,
    char *err, size_t errsz)
{
	struct alist_ctx c;
	struct store_txn *t;
	int rc;

	memset(&c, 0, sizeof(c));
	c.f = f;
	c.action = action;
	c.max = max ? max : AUDIT_LIST_DEFAULT;
	if (store_read_begin(r->store, &t, err, errsz) != 0)
		return -1;
	rc = store_iter(t, STORE_DB_AUDIT, NULL, 0, STORE_ITER_REVERSE, alist_iter, &c, err, errsz);
	store_read_end(t);
	if (rc != 0) {
		free(c.items);
		return -1;
	}
	*out = c.items;
	*n = c.n;
	return 0;
}

struct asweep_ctx {
	unsigned char before[8];
	size_t        removed;
};

static int
asweep_iter(const void *key, size_t klen, const void *val, size_t vlen, void *arg,
    char *err, size_t errsz)
{
	struct asweep_ctx *c = arg;

	(void)val;
	(void)vlen;
	(void)err;
	(void)errsz;
	/* Keys sort by time: the first one not older ends the sweep. */
	if (klen >= 8 && memcmp(key, c->before, 8) >= 0)
		return STORE_ITER_STOP;
	c->removed++;
	return STORE_ITER_DELETE;
}

static int
asweep_fn(struct store_txn *t, void *arg, char *err, size_t errsz)
{
	struct asweep_ctx *c = arg;

	c->removed = 0;
	return store_iter(t, STORE_DB_AUDIT, NULL, 0, 0, asweep_iter, c, err, errsz);
}

int
records_audit_sweep(struct records *r, int64_t before, size_t *removed, char *err, size_t errsz)
{
	struct asweep_ctx c;

	audit_time_put(c.before, before);
	c.removed = 0;
	if (store_write(r->store, asweep_fn, &c, err, errsz) != 0)
		return -1;
	if (removed != NULL)
		*removed = c.removed;
	return 0;
}

/* ---- key rotation ---- */

enum crash_point {
	CRASH_NONE = 0,
	CRASH_BEFORE_COMMIT,
	CRASH_AFTER_COMMIT,
	CRASH_AFTER_BACKUP,
	CRASH_AFTER_RENAME,
};

/* The test hook: read only here, by records_rotate_key(). */
static enum crash_point
crash_point_from_env(void)
{
	const char *s = getenv("WORKBOT_TEST_CRASH_AT");

	if (s == NULL)
		return CRASH_NONE;
	if (strcmp(s, "before_commit") == 0)
		return CRASH_BEFORE_COMMIT;
	if (strcmp(s, "after_commit") == 0)
		return CRASH_AFTER_COMMIT;
	if (strcmp(s, "after_backup") == 0)
		return CRASH_AFTER_BACKUP;
	if (strcmp(s, "after_rename") == 0)
		return CRASH_AFTER_RENAME;
	return CRASH_NONE;
}

static void
crash_if(enum crash_point want, enum crash_point here)
{
	if (want == here)
		_exit(99);
}

struct keylist {
	char  **keys;
	size_t *lens;
	size_t  n, cap;
};

static void
keylist_clear(struct keylist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->keys[i]);
	free(l->keys);
	free(l->lens);
	memset(l, 0, sizeof(*l));
}

static int
keylist_iter(const void *key, size_t klen, const void *val, size_t vlen, void *arg,
    char *err, size_t errsz)
{
	struct keylist *l = arg;

	(void)val;
	(void)vlen;
	(void)err;
	(void)errsz;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->keys = xreallocarray(l->keys, l->cap, sizeof(*l->keys));
		l->lens = xreallocarray(l->lens, l->cap, sizeof(*l->lens));
	}
	l->keys[l->n] = xmalloc(klen);
	memcpy(l->keys[l->n], key, klen);
	l->lens[l->n] = klen;
	l->n++;
	return STORE_ITER_NEXT;
}

struct rotate_ctx {
	const struct vault *from;
	const struct vault *to;
	const char         *new_path;	/* absolute */
	int64_t             now;
	enum crash_point    crash;
	size_t              count;
};

/* Pending values are re-sealed with the same expiry; AD binds the id and header. */
static unsigned char *
pending_reseal(const struct vault *from, const struct vault *to, const char *id, size_t idlen,
    const void *val, size_t vlen, size_t *newlen, char *err, size_t errsz)
{
	struct secret *body = NULL;
	unsigned char *out;
	char idtext[PENDING_ID_MAX + 1];
	int64_t exp;

	if (pending_parse(val, vlen, &exp) != 0 ||
	    pending_open(from, id, idlen, val, vlen, &body, NULL, 0) != 0) {
		util_seterr(err, errsz, "pending login %s does not open with the old key",
		    key_text(idtext, sizeof(idtext), id, idlen));
		return NULL;
	}
	out = pending_build(to, id, idlen, exp, secret_reveal(body), secret_len(body), newlen, err, errsz);
	secret_free(body);
	return out;
}

static int
rotate_fn(struct store_txn *t, void *arg, char *err, size_t errsz)
{
	struct rotate_ctx *c = arg;
	static const enum store_db dbs[] = { STORE_DB_CONNECTIONS, STORE_DB_PENDING };
	struct keylist l;
	struct records_audit e;
	char from_hex[VAULT_KEY_ID_HEX];
	unsigned char when[8];
	size_t d, i;
	int rc = 0;

	c->count = 0;
	for (d = 0; d < sizeof(dbs) / sizeof(dbs[0]) && rc == 0; d++) {
		/* Keys first, then rewrite: no cursor is open while values change. */
		memset(&l, 0, sizeof(l));
		rc = store_iter(t, dbs[d], NULL, 0, 0, keylist_iter, &l, err, errsz);
		for (i = 0; i < l.n && rc == 0; i++) {
			const void *val;
			unsigned char *nv;
			size_t vlen, nlen;

			if (store_get(t, dbs[d], l.keys[i], l.lens[i], &val, &vlen, err, errsz) != 1) {
				rc = -1;
				break;
			}
			if (dbs[d] == STORE_DB_CONNECTIONS)
				nv = conn_reseal(c->from, c->to, l.keys[i], l.lens[i], val, vlen, 0, -1,
				    &nlen, err, errsz);
			else
				nv = pending_reseal(c->from, c->to, l.keys[i], l.lens[i], val, vlen,
				    &nlen, err, errsz);
			if (nv == NULL) {
				rc = -1;
				break;
			}
			rc = store_put(t, dbs[d], l.keys[i], l.lens[i], nv, nlen, err, errsz);
			free(nv);
			c->count++;
		}
		keylist_clear(&l);
	}
	if (rc != 0)
		return -1;
	be64_put(when, c->now);
	if (store_put(t, STORE_DB_META, META_KEY_ID, strlen(META_KEY_ID), vault_key_id(c->to),
	    VAULT_KEY_ID_LEN, err, errsz) != 0 ||
	    store_put(t, STORE_DB_META, META_ROT_FROM, strlen(META_ROT_FROM), vault_key_id(c->from),
	    VAULT_KEY_ID_LEN, err, errsz) != 0 ||
	    store_put(t, STORE_DB_META, META_ROT_TO, strlen(META_ROT_TO), c->new_path,
	    strlen(c->new_path), err, errsz) != 0 ||
	    store_put(t, STORE_DB_META, META_ROT_AT, strlen(META_ROT_AT), when, 8, err, errsz) != 0)
		return -1;
	memset(&e, 0, sizeof(e));
	e.time = c->now;
	e.action = RECORDS_AUDIT_ROTATED;
	snprintf(e.team, sizeof(e.team), "-");
	snprintf(e.user, sizeof(e.user), "-");
	snprintf(e.app, sizeof(e.app), "-");
	vault_key_id_to_hex(vault_key_id(c->from), from_hex);
	snprintf(e.detail, sizeof(e.detail), "key id %s -> %s, %zu records re-sealed",
	    from_hex, vault_key_id_hex(c->to), c->count);
	if (audit_put_one(t, &e, err, errsz) != 0)
		return -1;
	crash_if(c->crash, CRASH_BEFORE_COMMIT);
	return 0;
}

/* Absolute path of a file that exists (its directory resolved, the name kept). */
static int
absolute_path(const char *path, char out[PATH_MAX], char *err, size_t errsz)
{
	char dcopy[PATH_MAX], bcopy[PATH_MAX], real[PATH_MAX];

	if (strlen(path) >= PATH_MAX) {
		util_seterr(err, errsz, "%s: path too long", path);
		return -1;
	}
	strcpy(dcopy, path);
	strcpy(bcopy, path);
	if (realpath(dirname(dcopy), real) == NULL) {
		util_seterr(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	if ((size_t)snprintf(out, PATH_MAX, "%s/%s", real, basename(bcopy)) >= PATH_MAX) {
		util_seterr(err, errsz, "%s: path too long", path);
		return -1;
	}
	return 0;
}

/* After the commit: key_file -> key_file.old (hard link), new_key_file -> key_file (rename). */
static int
rotate_files(const char *key_file, const char *new_abs, enum crash_point crash,
    char *err, size_t errsz)
{
	char old[PATH_MAX];

	if ((size_t)snprintf(old, sizeof(old), "%s.old", key_file) >= sizeof(old)) {
		util_seterr(err, errsz, "%s: path too long", key_file);
		return -1;
	}
	/* A .old from an earlier rotation is obsolete: the store never used it since. */
	if (unlink(old) != 0 && errno != ENOENT) {
		util_seterr(err, errsz, "rotate-key: store re-keyed to %s, but removing %s failed: %s "
		    "(move the key files by hand)", new_abs, old, strerror(errno));
		return -1;
	}
	if (link(key_file, old) != 0) {
		util_seterr(err, errsz, "rotate-key: store re-keyed to %s, but keeping the old key as %s "
		    "failed: %s (move the key files by hand)", new_abs, old, strerror(errno));
		return -1;
	}
	(void)util_fsync_parent(old);
	crash_if(crash, CRASH_AFTER_BACKUP);
	if (rename(new_abs, key_file) != 0) {
		util_seterr(err, errsz, "rotate-key: store re-keyed to %s, but renaming it over %s failed: %s",
		    new_abs, key_file, strerror(errno));
		return -1;
	}
	(void)util_fsync_parent(key_file);
	(void)util_fsync_parent(new_abs);
	crash_if(crash, CRASH_AFTER_RENAME);
	return 0;
}

int
records_rotate_key(const char *dir, size_t map_size, const char *key_file, const char *new_key_file,
    size_t *count, char *err, size_t errsz)
{
	enum crash_point crash = crash_point_from_env();
	struct store_lock *lock = NULL;
	struct vault *from = NULL, *to = NULL;
	struct store *s = NULL;
	struct meta_view m;
	struct rotate_ctx c;
	char new_abs[PATH_MAX], kdir[PATH_MAX];
	struct stat st_new, st_dir;
	int rc;

	rc = store_lock_try(dir, &lock, err, errsz);
	if (rc == 0)
		util_seterr(err, errsz, "rotate-key: a workbot daemon holds the store %s (%s is locked): stop it first",
		    dir, STORE_LOCK_FILE);
	if (rc != 1)
		return -1;
	rc = -1;
	if (vault_load(key_file, &from, err, errsz) != 0 || vault_load(new_key_file, &to, err, errsz) != 0)
		goto out;
	if (memcmp(vault_key_id(from), vault_key_id(to), VAULT_KEY_ID_LEN) == 0) {
		util_seterr(err, errsz, "rotate-key: %s holds the same key as %s", new_key_file, key_file);
		goto out;
	}
	if (absolute_path(new_key_file, new_abs, err, errsz) != 0)
		goto out;
	/* rename(2) cannot cross filesystems: find out before anything is changed. */
	if (strlen(key_file) >= sizeof(kdir)) {
		util_seterr(err, errsz, "%s: path too long", key_file);
		goto out;
	}
	strcpy(kdir, key_file);
	if (stat(new_abs, &st_new) != 0 || stat(dirname(kdir), &st_dir) != 0) {
		util_seterr(err, errsz, "rotate-key: %s", strerror(errno));
		goto out;
	}
	if (st_new.st_dev != st_dir.st_dev) {
		util_seterr(err, errsz, "rotate-key: %s must be on the same filesystem as %s", new_key_file, key_file);
		goto out;
	}
	if (store_open(dir, map_size, STORE_OPEN_EXISTING, &s, err, errsz) != 0 ||
	    meta_read_store(s, &m, err, errsz) != 0)
		goto out;
	if (!m.has_key_id) {
		util_seterr(err, errsz, "rotate-key: store %s has no key id yet: nothing to rotate", dir);
		goto out;
	}
	memset(&c, 0, sizeof(c));
	if (memcmp(m.key_id, vault_key_id(from), VAULT_KEY_ID_LEN) == 0) {
		c.from = from;
		c.to = to;
		c.new_path = new_abs;
		c.now = (int64_t)time(NULL);
		c.crash = crash;
		if (store_write(s, rotate_fn, &c, err, errsz) != 0)
			goto out;
	} else if (memcmp(m.key_id, vault_key_id(to), VAULT_KEY_ID_LEN) != 0 || !m.has_rotated_from ||
	    memcmp(m.rotated_from, vault_key_id(from), VAULT_KEY_ID_LEN) != 0 ||
	    strcmp(m.rotated_to, new_abs) != 0) {
		mismatch_error(key_file, vault_key_id(from), m.key_id, err, errsz);
		goto out;
	}
	/*
	 * else: a rotation from exactly this key to exactly this file committed
	 * and stopped before the files moved: finish it.
	 */
	store_close(s);
	s = NULL;
	crash_if(crash, CRASH_AFTER_COMMIT);
	if (rotate_files(key_file, new_abs, crash, err, errsz) != 0)
		goto out;
	if (count != NULL)
		*count = c.count;
	rc = 0;
out:
	store_close(s);
	vault_free(from);
	vault_free(to);
	store_lock_release(lock);
	return rc;
}

/* 1 if the key in `path` has id `want`, 0 if not or unreadable. */
static int
file_matches(const char *path, const uint8_t *want)
{
	struct vault *v;
	int ok;

	if (path == NULL || *path == '\0' || vault_load(path, &v, NULL, 0) != 0)
		return 0;
	ok = memcmp(vault_key_id(v), want, VAULT_KEY_ID_LEN) == 0;
	vault_free(v);
	return ok;
}

int
records_check_key(const char *dir, size_t map_size, const char *key_file,
    struct records_key_check *out, char *err, size_t errsz)
{
	struct store *s;
	struct meta_view m;
	struct vault *v;
	char old[PATH_MAX];
	const char *cands[2];
	size_t i;

	memset(out, 0, sizeof(*out));
	if (store_open(dir, map_size, STORE_OPEN_EXISTING, &s, err, errsz) != 0)
		return -1;
	if (meta_read_store(s, &m, err, errsz) != 0) {
		store_close(s);
		return -1;
	}
	store_close(s);

	if (vault_load(key_file, &v, out->file_error, sizeof(out->file_error)) == 0) {
		snprintf(out->file_key_id, sizeof(out->file_key_id), "%s", vault_key_id_hex(v));
		if (m.has_key_id && memcmp(vault_key_id(v), m.key_id, VAULT_KEY_ID_LEN) == 0)
			out->match = RECORDS_KEY_MATCHES;
		else
			out->match = RECORDS_KEY_NO_MATCH;
		vault_free(v);
	} else {
		out->match = RECORDS_KEY_NO_MATCH;
	}
	if (!m.has_key_id) {
		out->match = RECORDS_KEY_NEW_STORE;
		return 0;
	}
	vault_key_id_to_hex(m.key_id, out->store_key_id);
	if (out->match == RECORDS_KEY_MATCHES)
		return 0;
	snprintf(old, sizeof(old), "%s.old", key_file);
	cands[0] = old;
	cands[1] = m.rotated_to;
	for (i = 0; i < 2; i++) {
		if (file_matches(cands[i], m.key_id)) {
			out->match = RECORDS_KEY_OTHER_FILE;
			snprintf(out->path, sizeof(out->path), "%s", cands[i]);
			break;
		}
	}
	return 0;
}
