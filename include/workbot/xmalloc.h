/*
 * xmalloc: allocation that cannot fail. Out of memory is fatal: a daemon that
 * keeps running with half-built state is worse than one systemd restarts.
 */
#ifndef WORKBOT_XMALLOC_H
#define WORKBOT_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
