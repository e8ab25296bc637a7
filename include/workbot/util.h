/*
 * util: the few helpers the low-level modules share. Any thread.
 */
#ifndef WORKBOT_UTIL_H
#define WORKBOT_UTIL_H

#include <stddef.h>

/* Format an error into the caller's buffer (NULL or 0-sized: ignored). */
void util_seterr(char *err, size_t errsz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* fsync the directory that holds `path`, so a rename or create in it is durable. 0 / -1. */
int util_fsync_parent(const char *path);

#endif
