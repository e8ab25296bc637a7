/*
 * log: one line per event on stderr, `ts level component msg key=value ...`.
 *
 * Any thread may call these functions. Each line leaves in a single write(2),
 * so lines from different threads never interleave. The format string is
 * checked by the compiler; secrets are `struct secret`, not `char *`, so a
 * secret cannot be passed to "%s" without an explicit secret_reveal() — which
 * must never appear in a log call.
 *
 * When stderr is non-blocking (the daemon sets it so that a stalled journal
 * never stalls the event thread) a line that would block is dropped and
 * counted: log_dropped().
 */
#ifndef WORKBOT_LOG_H
#define WORKBOT_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

enum log_level {
	LOG_DEBUG = 0,
	LOG_INFO,
	LOG_WARN,
	LOG_ERROR,
};

/* "debug" | "info" | "warn" | "error" -> level. Returns 0, or -1 if unknown. */
int log_level_parse(const char *name, enum log_level *out);
const char *log_level_name(enum log_level level);

/* Level from WORKBOT_LOG, else info. Call once in main() before threads. */
void log_init(void);
void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);

/* Lines dropped because stderr would have blocked. */
uint64_t log_dropped(void);

/* Redirect output (tests): fd to write lines to; -1 restores stderr. */
void log_set_fd(int fd);

void log_msg(enum log_level level, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_level level, const char *component, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

#define log_debug(comp, ...) \
	do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, comp, __VA_ARGS__); } while (0)
#define log_info(comp, ...)  log_msg(LOG_INFO, comp, __VA_ARGS__)
#define log_warn(comp, ...)  log_msg(LOG_WARN, comp, __VA_ARGS__)
#define log_error(comp, ...) log_msg(LOG_ERROR, comp, __VA_ARGS__)

/* Log at error level and exit(status). Start-up, OOM and broken invariants only. */
void fatal(int status, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));

/*
 * Quote a value for key=value output: returned as is when it is a plain
 * token, else in double quotes with `"` `\` and control bytes escaped.
 * Writes at most `size` bytes (always NUL-terminated) and returns `buf`.
 */
const char *log_quote(char *buf, size_t size, const char *value);

#endif
