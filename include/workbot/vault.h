/*
 * vault: the master key and the sealing of records.
 *
 * vault.c is the only file that touches the master key. A struct vault
 * holds one key, loaded once into sodium_malloc memory (guard pages, no
 * swap, read-only after load); sealing and opening only read it, so one
 * vault may be used by any number of threads at once.
 *
 * A sealed blob is
 *     version (1) | key id (8) | nonce (24) | ciphertext + tag (16)
 * XChaCha20-Poly1305-IETF with a random nonce per seal. The additional data
 * is the blob's own version and key id followed by what the caller gives
 * (the record key and its plaintext header), so a blob that is moved to
 * another record, tampered with, or sealed under another key fails to open.
 *
 * The key id is the first 8 bytes of a keyed BLAKE2b (personalised for
 * workbot) under the key: it names a key without revealing it.
 *
 * Errors: 0 / -1 with a one-line reason in the caller's buffer. Never logs;
 * no function ever writes key bytes anywhere but the key file of keygen.
 */
#ifndef WORKBOT_VAULT_H
#define WORKBOT_VAULT_H

#include <stddef.h>
#include <stdint.h>

struct vault;

#define VAULT_KEY_ID_LEN	8
#define VAULT_KEY_ID_HEX	(2 * VAULT_KEY_ID_LEN + 1)	/* with the NUL */
#define VAULT_VERSION		1
#define VAULT_OVERHEAD		(1 + VAULT_KEY_ID_LEN + 24 + 16)
/* Largest additional data accepted from a caller (record key + header). */
#define VAULT_AD_MAX		1024

/*
 * Load a key file: 64 hex characters (an optional trailing newline) or
 * exactly 32 raw bytes. A file that group or others can read or write, or
 * that is not a regular file, is refused with the path and the reason.
 * sodium_init() must have succeeded (vault_load calls it, it is idempotent).
 */
int vault_load(const char *path, struct vault **out, char *err, size_t errsz);
/* Wipe and free. NULL is fine. */
void vault_free(struct vault *v);

/* The key id, raw (8 bytes) and as 16 lowercase hex characters. */
const uint8_t *vault_key_id(const struct vault *v);
const char *vault_key_id_hex(const struct vault *v);
/* Hex of a raw key id; `out` holds VAULT_KEY_ID_HEX bytes. */
void vault_key_id_to_hex(const uint8_t id[VAULT_KEY_ID_LEN], char out[VAULT_KEY_ID_HEX]);

/*
 * Write a new random key to `path` as 64 lowercase hex characters and a
 * newline, mode 0600, created exclusively (an existing file is never
 * overwritten), fsync'd with its directory.
 */
int vault_keygen(const char *path, char *err, size_t errsz);

/* Size of a sealed blob for `plain_len` bytes of plaintext, and back. */
size_t vault_sealed_len(size_t plain_len);
size_t vault_plain_len(size_t sealed_len);	/* 0 if too short to be a blob */

/*
 * Seal `plain` into `out` (outsz >= vault_sealed_len(plen)).
 * `ad` (adlen <= VAULT_AD_MAX) binds the blob to its record.
 */
int vault_seal(const struct vault *v, const void *ad, size_t adlen,
    const void *plain, size_t plen, void *out, size_t outsz, char *err, size_t errsz);

/*
 * Open a blob into `out` (outsz >= vault_plain_len(slen)); *plen gets the
 * plaintext length. Fails — never returning unauthenticated bytes — when the
 * blob is malformed, sealed under another key (the message names both key
 * ids), or does not authenticate with `ad`. `out` is wiped on failure.
 */
int vault_open(const struct vault *v, const void *ad, size_t adlen,
    const void *sealed, size_t slen, void *out, size_t outsz, size_t *plen,
    char *err, size_t errsz);

/* The key id a blob claims to be sealed under (not authenticated). 0 / -1. */
int vault_blob_key_id(const void *sealed, size_t slen, uint8_t id[VAULT_KEY_ID_LEN]);

/* libsodium version string, for `workbot version`. */
const char *vault_sodium_version(void);

#endif
