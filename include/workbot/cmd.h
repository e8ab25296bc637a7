/*
 * cmd: the command-line commands of the workbot binary.
 *
 * One table of entries (main.c), one file per command (src/cmd_*.c), tmux
 * style. main() strips the options every command accepts (-c FILE,
 * --log-level L) and hands the rest of argv, starting at the command's own
 * arguments, to exec(). Exit status: 0 ok, 1 runtime failure (a restart may
 * help), 2 usage or configuration error (a restart cannot help).
 */
#ifndef WORKBOT_CMD_H
#define WORKBOT_CMD_H

enum {
	EXIT_OK = 0,
	EXIT_RUNTIME = 1,
	EXIT_CONFIG = 2,
};

struct cmd_ctx {
	const char *config_path;	/* -c, else $WORKBOT_CONF, else the default */
	const char *progname;
};

struct cmd_entry {
	const char *name;
	const char *usage;	/* one line, after "workbot " */
	int (*exec)(struct cmd_ctx *ctx, int argc, char **argv);
};

/* Print "workbot: <msg> (usage: workbot <usage>)" on stderr; returns EXIT_CONFIG. */
int cmd_usage_error(const struct cmd_entry *entry, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

struct config;

/*
 * Load ctx->config_path. Each problem is printed to stderr as
 * `FILE:LINE: [section] key: what is wrong` (or logged, when `as_log`).
 * NULL after any problem.
 */
struct config *cmd_load_config(const struct cmd_ctx *ctx, int as_log);

extern const struct cmd_entry cmd_run_entry;
extern const struct cmd_entry cmd_check_entry;
extern const struct cmd_entry cmd_keygen_entry;
extern const struct cmd_entry cmd_connect_entry;
extern const struct cmd_entry cmd_connections_entry;
extern const struct cmd_entry cmd_rotate_key_entry;
extern const struct cmd_entry cmd_version_entry;

#endif
