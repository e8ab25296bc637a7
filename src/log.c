/*
 * log: `ts level component msg key=value ...` lines on stderr.
 *
 * A line is formatted into a stack buffer and leaves in one write(2), so
 * threads never interleave and nothing here allocates. Lines longer than the
 * buffer are cut and end in "...". When the descriptor is non-blocking (the
 * daemon makes stderr so) and the reader is slow, the line is dropped and
 * counted instead of stalling the event thread.
 *
 * Never log a secret: secrets are `struct secret`, and nothing in this file
 * knows how to print one.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "workbot/log.h"

#define LOG_LINE_MAX 2048

static atomic_int log_level = LOG_INFO;
static atomic_int log_fd = STDERR_FILENO;
static atomic_uint_fast64_t log_drops;

static const char *const level_names[] = {
	[LOG_DEBUG] = "debug",
	[LOG_INFO] = "info",
	[LOG_WARN] = "warn",
	[LOG_ERROR] = "error",
};

int
log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

const char *
log_level_name(enum log_level level)
{
	if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
		return "?";
	return level_names[level];
}

void
log_init(void)
{
	const char *env = getenv("WORKBOT_LOG");
	enum log_level level;

	if (env != NULL && *env != '\0') {
		if (log_level_parse(env, &level) == 0)
			log_set_level(level);
		else
			log_warn("main", "ignoring unknown WORKBOT_LOG level=%s (debug|info|warn|error)", env);
	}
}

void
log_set_level(enum log_level level)
{
	atomic_store(&log_level, (int)level);
}

bool
log_enabled(enum log_level level)
{
	return (int)level >= atomic_load_explicit(&log_level, memory_order_relaxed);
}

uint64_t
log_dropped(void)
{
	return atomic_load(&log_drops);
}

void
log_set_fd(int fd)
{
	atomic_store(&log_fd, fd < 0 ? STDERR_FILENO : fd);
}

void
log_vmsg(enum log_level level, const char *component, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	size_t len;
	int n;

	if (!log_enabled(level))
		return;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	len = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line + len, sizeof(line) - len, ".%03ldZ %s %s ",
	    ts.tv_nsec / 1000000L, log_level_name(level), component);
	len += (size_t)n;
	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(line) - len - 1) {
		/* Cut: leave room for "...\n". */
		len = sizeof(line) - 5;
		memcpy(line + len, "...", 3);
		len += 3;
	} else {
		len += (size_t)n;
	}
	/* One event, one line: a message never carries its own newlines. */
	for (size_t i = 0; i < len; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[len++] = '\n';

	for (size_t off = 0; off < len;) {
		ssize_t w = write(atomic_load(&log_fd), line + off, len - off);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		/* EAGAIN on a non-blocking stderr, or a closed one. */
		atomic_fetch_add(&log_drops, 1);
		break;
	}
}

void
log_msg(enum log_level level, const char *component, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, component, fmt, ap);
	va_end(ap);
}

void
fatal(int status, const char *component, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_ERROR, component, fmt, ap);
	va_end(ap);
	exit(status);
}

const char *
log_quote(char *buf, size_t size, const char *value)
{
	static const char hex[] = "0123456789abcdef";
	bool plain = *value != '\0';
	size_t o = 0;

	if (size == 0)
		return buf;
	for (const char *p = value; *p && plain; p++)
		if (*p == ' ' || *p == '"' || *p == '\\' || *p == '=' || (unsigned char)*p < 0x20 || *p == 0x7f)
			plain = false;
	if (plain) {
		snprintf(buf, size, "%s", value);
		return buf;
	}
	if (o + 1 < size)
		buf[o++] = '"';
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		char esc[5];
		size_t n;

		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			n = 2;
		} else if (*p < 0x20 || *p == 0x7f) {
			esc[0] = '\\';
			esc[1] = 'x';
			esc[2] = hex[*p >> 4];
			esc[3] = hex[*p & 15];
			n = 4;
		} else {
			esc[0] = (char)*p;
			n = 1;
		}
		if (o + n + 2 > size)
			break;
		memcpy(buf + o, esc, n);
		o += n;
	}
	if (o + 1 < size)
		buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}
