/*
 * secret: byte strings that are never printed and are wiped when freed.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "workbot/secret.h"
#include "workbot/xmalloc.h"

struct secret {
	size_t len;
	char   bytes[];	/* len bytes, then a NUL */
};

struct secret *
secret_new(const void *data, size_t len)
{
	struct secret *s = xmalloc(sizeof(*s) + len + 1);

	s->len = len;
	if (len)
		memcpy(s->bytes, data, len);
	s->bytes[len] = '\0';
	return s;
}

struct secret *
secret_from_str(const char *str)
{
	return secret_new(str, strlen(str));
}

struct secret *
secret_dup(const struct secret *s)
{
	return s ? secret_new(s->bytes, s->len) : NULL;
}

void
secret_free(struct secret *s)
{
	if (s == NULL)
		return;
	sodium_memzero(s->bytes, s->len + 1);
	free(s);
}

const char *
secret_reveal(const struct secret *s)
{
	return s->bytes;
}

size_t
secret_len(const struct secret *s)
{
	return s->len;
}

int
secret_equal(const struct secret *a, const struct secret *b)
{
	if (a == NULL || b == NULL || a->len != b->len)
		return 0;
	return sodium_memcmp(a->bytes, b->bytes, a->len) == 0;
}

void
secret_wipe(void *p, size_t len)
{
	if (p != NULL && len)
		sodium_memzero(p, len);
}
