/*
 * vault: the master key, and sealing with it.
 *
 * How it works. The key file is read into a stack buffer, decoded into a
 * sodium_malloc region (one per key, at load: the allocation costs tens of
 * microseconds and three pages, so never per record), and the stack copy
 * is wiped. From the master key two values are derived and kept in the same
 * region: the sealing key (crypto_kdf, so the master key itself never keys
 * a cipher) and the key id (keyed BLAKE2b with a workbot personalisation).
 * The region is then made read-only; sealing and opening only read it.
 *
 * Blob layout and additional data: see vault.h. The blob prefix (version and
 * key id) is authenticated along with the caller's AD, so a flipped prefix
 * byte fails like any other.
 *
 * What it must never do: write key bytes anywhere but keygen's file, put a
 * key in an error message, return plaintext that did not authenticate, or
 * leave a plaintext or key buffer it owns unwiped.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "workbot/util.h"
#include "workbot/vault.h"
#include "workbot/xmalloc.h"

#define KEY_LEN		32
#define NONCE_LEN	crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN		crypto_aead_xchacha20poly1305_ietf_ABYTES
#define PREFIX_LEN	(1 + VAULT_KEY_ID_LEN)
#define HEADER_LEN	(PREFIX_LEN + NONCE_LEN)
#define KEYFILE_MAX	128	/* read at most this much: a key file is 32..66 bytes */

/* Fixed context strings: changing them changes every key id and sealing key. */
static const char kdf_context[crypto_kdf_CONTEXTBYTES] = { 'w', 'b', 'v', 'a', 'u', 'l', 't', '1' };
static const unsigned char keyid_personal[crypto_generichash_blake2b_PERSONALBYTES] = "workbot-key-id-1";

/* Lives in sodium_malloc memory, read-only after load. */
struct vault_keys {
	unsigned char seal[KEY_LEN];
	uint8_t       id[VAULT_KEY_ID_LEN];
	char          id_hex[VAULT_KEY_ID_HEX];
};

struct vault {
	struct vault_keys *k;
};


void
vault_key_id_to_hex(const uint8_t id[VAULT_KEY_ID_LEN], char out[VAULT_KEY_ID_HEX])
{
	sodium_bin2hex(out, VAULT_KEY_ID_HEX, id, VAULT_KEY_ID_LEN);
}

/* Decode the file's bytes into exactly 32 key bytes. */
static int
decode_key(const char *path, const unsigned char *buf, size_t len, unsigned char key[KEY_LEN],
    char *err, size_t errsz)
{
	size_t binlen = 0, hexlen = len;
	const char *end = NULL;

	if (len == KEY_LEN) {
		memcpy(key, buf, KEY_LEN);
		return 0;
	}
	if (hexlen == 2 * KEY_LEN + 1 && buf[hexlen - 1] == '\n')
		hexlen--;
	else if (hexlen == 2 * KEY_LEN + 2 && buf[hexlen - 2] == '\r' && buf[hexlen - 1] == '\n')
		hexlen -= 2;
	if (hexlen != 2 * KEY_LEN) {
		util_seterr(err, errsz, "key file %s: %zu bytes: expected 64 hex characters (workbot keygen) "
		    "or exactly 32 raw bytes", path, len);
		return -1;
	}
	/* With an end pointer, hex2bin stops at the first non-hex byte and returns 0: check both. */
	if (sodium_hex2bin(key, KEY_LEN, (const char *)buf, hexlen, NULL, &binlen, &end) != 0 ||
	    binlen != KEY_LEN || end != (const char *)buf + hexlen) {
		size_t at = end != NULL ? (size_t)(end - (const char *)buf) : 0;
		sodium_memzero(key, KEY_LEN);
		util_seterr(err, errsz, "key file %s: not valid hex (bad character at offset %zu)", path, at);
		return -1;
	}
	return 0;
}

static int
read_key_file(const char *path, unsigned char key[KEY_LEN], char *err, size_t errsz)
{
	unsigned char buf[KEYFILE_MAX];
	struct stat st;
	size_t len = 0;
	ssize_t n;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		util_seterr(err, errsz, "key file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		util_seterr(err, errsz, "key file %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		util_seterr(err, errsz, "key file %s: not a regular file", path);
		close(fd);
		return -1;
	}
	if (st.st_mode & (S_IRGRP | S_IROTH)) {
		util_seterr(err, errsz, "key file %s is readable by group/others (mode %04o): chmod 600",
		    path, (unsigned)(st.st_mode & 07777));
		close(fd);
		return -1;
	}
	if (st.st_mode & 077) {
		util_seterr(err, errsz, "key file %s is accessible by group/others (mode %04o): chmod 600",
		    path, (unsigned)(st.st_mode & 07777));
		close(fd);
		return -1;
	}
	if (st.st_size > KEYFILE_MAX) {
		util_seterr(err, errsz, "key file %s: %lld bytes: expected 64 hex characters (workbot keygen) "
		    "or exactly 32 raw bytes", path, (long long)st.st_size);
		close(fd);
		return -1;
	}
	for (;;) {
		n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf))
			break;
	}
	if (n < 0) {
		util_seterr(err, errsz, "key file %s: %s", path, strerror(errno));
		sodium_memzero(buf, sizeof(buf));
		close(fd);
		return -1;
	}
	close(fd);
	rc = decode_key(path, buf, len, key, err, errsz);
	sodium_memzero(buf, sizeof(buf));
	return rc;
}

int
vault_load(const char *path, struct vault **out, char *err, size_t errsz)
{
	unsigned char master[KEY_LEN], idhash[crypto_generichash_blake2b_BYTES_MIN];
	static const unsigned char idmsg[] = "workbot key id";
	struct vault_keys *k;
	struct vault *v;

	if (sodium_init() < 0) {
		util_seterr(err, errsz, "libsodium failed to initialise");
		return -1;
	}
	if (read_key_file(path, master, err, errsz) != 0)
		return -1;
	k = sodium_malloc(sizeof(*k));
	if (k == NULL) {
		sodium_memzero(master, sizeof(master));
		util_seterr(err, errsz, "key file %s: cannot allocate protected memory", path);
		return -1;
	}
	crypto_kdf_derive_from_key(k->seal, sizeof(k->seal), 1, kdf_context, master);
	crypto_generichash_blake2b_salt_personal(idhash, sizeof(idhash), idmsg, sizeof(idmsg) - 1,
	    master, sizeof(master), NULL, keyid_personal);
	sodium_memzero(master, sizeof(master));
	memcpy(k->id, idhash, VAULT_KEY_ID_LEN);
	vault_key_id_to_hex(k->id, k->id_hex);
	sodium_mprotect_readonly(k);

	v = xmalloc(sizeof(*v));
	v->k = k;
	*out = v;
	return 0;
}

void
vault_free(struct vault *v)
{
	if (v == NULL)
		return;
	/* sodium_free wipes the region (it makes it writable first). */
	sodium_free(v->k);
	free(v);
}

const uint8_t *
vault_key_id(const struct vault *v)
{
	return v->k->id;
}

const char *
vault_key_id_hex(const struct vault *v)
{
	return v->k->id_hex;
}

const char *
vault_sodium_version(void)
{
	return sodium_version_string();
}

int
vault_keygen(const char *path, char *err, size_t errsz)
{
	unsigned char key[KEY_LEN];
	char hex[2 * KEY_LEN + 2];
	size_t off = 0, len;
	ssize_t n;
	int fd;

	if (sodium_init() < 0) {
		util_seterr(err, errsz, "libsodium failed to initialise");
		return -1;
	}
	/* O_EXCL: an existing key may be the only way to open a store; never overwrite it. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			util_seterr(err, errsz, "key file %s already exists: refusing to overwrite it", path);
		else
			util_seterr(err, errsz, "key file %s: %s", path, strerror(errno));
		return -1;
	}
	randombytes_buf(key, sizeof(key));
	sodium_bin2hex(hex, sizeof(hex), key, sizeof(key));
	sodium_memzero(key, sizeof(key));
	hex[2 * KEY_LEN] = '\n';
	len = 2 * KEY_LEN + 1;
	while (off < len) {
		n = write(fd, hex + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	sodium_memzero(hex, sizeof(hex));
	/* umask may have narrowed 0600 further; it can never have widened it. */
	if (off != len || fchmod(fd, 0600) != 0 || fsync(fd) != 0) {
		int e = errno;
		close(fd);
		unlink(path);
		util_seterr(err, errsz, "key file %s: writing: %s", path, strerror(e));
		return -1;
	}
	if (close(fd) != 0 || util_fsync_parent(path) != 0) {
		int e = errno;
		unlink(path);
		util_seterr(err, errsz, "key file %s: syncing: %s", path, strerror(e));
		return -1;
	}
	return 0;
}

size_t
vault_sealed_len(size_t plain_len)
{
	return plain_len + VAULT_OVERHEAD;
}

size_t
vault_plain_len(size_t sealed_len)
{
	return sealed_len < VAULT_OVERHEAD ? 0 : sealed_len - VAULT_OVERHEAD;
}

int
vault_blob_key_id(const void *sealed, size_t slen, uint8_t id[VAULT_KEY_ID_LEN])
{
	const unsigned char *b = sealed;

	if (slen < VAULT_OVERHEAD || b[0] != VAULT_VERSION)
		return -1;
	memcpy(id, b + 1, VAULT_KEY_ID_LEN);
	return 0;
}

/* Full AD = blob prefix | caller AD, in a bounded stack buffer. */
static int
build_ad(unsigned char *full, const unsigned char *prefix, const void *ad, size_t adlen,
    char *err, size_t errsz)
{
	if (adlen > VAULT_AD_MAX) {
		util_seterr(err, errsz, "vault: additional data of %zu bytes is over the %d-byte limit",
		    adlen, VAULT_AD_MAX);
		return -1;
	}
	memcpy(full, prefix, PREFIX_LEN);
	if (adlen)
		memcpy(full + PREFIX_LEN, ad, adlen);
	return 0;
}

int
vault_seal(const struct vault *v, const void *ad, size_t adlen, const void *plain, size_t plen,
    void *out, size_t outsz, char *err, size_t errsz)
{
	unsigned char full[PREFIX_LEN + VAULT_AD_MAX];
	unsigned char *o = out;
	unsigned long long clen = 0;

	if (plen > SIZE_MAX - VAULT_OVERHEAD || outsz < vault_sealed_len(plen)) {
		util_seterr(err, errsz, "vault: output buffer too small");
		return -1;
	}
	o[0] = VAULT_VERSION;
	memcpy(o + 1, v->k->id, VAULT_KEY_ID_LEN);
	randombytes_buf(o + PREFIX_LEN, NONCE_LEN);
	if (build_ad(full, o, ad, adlen, err, errsz) != 0)
		return -1;
	crypto_aead_xchacha20poly1305_ietf_encrypt(o + HEADER_LEN, &clen, plain, plen,
	    full, PREFIX_LEN + adlen, NULL, o + PREFIX_LEN, v->k->seal);
	return 0;
}

int
vault_open(const struct vault *v, const void *ad, size_t adlen, const void *sealed, size_t slen,
    void *out, size_t outsz, size_t *plen, char *err, size_t errsz)
{
	unsigned char full[PREFIX_LEN + VAULT_AD_MAX];
	const unsigned char *b = sealed;
	unsigned long long mlen = 0;
	size_t want;

	if (slen < VAULT_OVERHEAD) {
		util_seterr(err, errsz, "vault: sealed data too short (%zu bytes)", slen);
		return -1;
	}
	if (b[0] != VAULT_VERSION) {
		util_seterr(err, errsz, "vault: unknown sealed format version %u", (unsigned)b[0]);
		return -1;
	}
	if (sodium_memcmp(b + 1, v->k->id, VAULT_KEY_ID_LEN) != 0) {
		char other[VAULT_KEY_ID_HEX];
		vault_key_id_to_hex(b + 1, other);
		util_seterr(err, errsz, "vault: sealed under key id %s, not this key (key id %s)",
		    other, v->k->id_hex);
		return -1;
	}
	want = vault_plain_len(slen);
	if (outsz < want) {
		util_seterr(err, errsz, "vault: output buffer too small");
		return -1;
	}
	if (build_ad(full, b, ad, adlen, err, errsz) != 0)
		return -1;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &mlen, NULL, b + HEADER_LEN,
	    slen - HEADER_LEN, full, PREFIX_LEN + adlen, b + PREFIX_LEN, v->k->seal) != 0) {
		sodium_memzero(out, want);
		util_seterr(err, errsz, "vault: sealed data does not authenticate (tampered, moved or corrupt)");
		return -1;
	}
	*plen = (size_t)mlen;
	return 0;
}
