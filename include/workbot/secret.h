/*
 * secret: a byte string that must never be printed.
 *
 * Tokens, client secrets, authorization codes, state values and keys are held
 * in a `struct secret`, never a bare `char *`, so they cannot slip into a
 * printf-style log call by accident: reading one takes secret_reveal(), which
 * is greppable and never appears next to a log call. The buffer is wiped with
 * sodium_memzero() when freed. The bytes are always followed by a NUL so a
 * revealed secret can be handed to libraries that want a C string.
 *
 * Plain heap memory is used (sodium_malloc costs tens of microseconds and
 * three pages per allocation); only the vault's master key lives in
 * sodium_malloc memory.
 */
#ifndef WORKBOT_SECRET_H
#define WORKBOT_SECRET_H

#include <stddef.h>

struct secret;

/* Copy `len` bytes. Never NULL (fails only on OOM, which is fatal). */
struct secret *secret_new(const void *data, size_t len);
struct secret *secret_from_str(const char *s);
struct secret *secret_dup(const struct secret *s);
/* Wipe and free. NULL is fine. */
void secret_free(struct secret *s);

const char *secret_reveal(const struct secret *s);
size_t secret_len(const struct secret *s);
/* Constant-time equality (lengths are not secret). 1 equal, 0 not. */
int secret_equal(const struct secret *a, const struct secret *b);

/* Wipe a buffer the program owns that held secret bytes. */
void secret_wipe(void *p, size_t len);

#endif
