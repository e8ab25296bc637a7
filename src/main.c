/*
 * main: process set-up shared by every command, then dispatch.
 *
 * Before anything reads a secret: core dumps off (PR_SET_DUMPABLE 0, so a
 * crash never writes decrypted tokens to disk), umask 077 (nothing workbot
 * creates is readable by others), libsodium initialised. Options every
 * command accepts (-c FILE, --log-level LEVEL) may appear anywhere and are
 * removed before the command sees argv.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include <curl/curl.h>
#include <sodium.h>

#include "workbot/cmd.h"
#include "workbot/log.h"

#define DEFAULT_CONFIG "/etc/workbot/workbot.conf"

static const struct cmd_entry *const cmd_table[] = {
	&cmd_run_entry,
	&cmd_check_entry,
	&cmd_keygen_entry,
	&cmd_connect_entry,
	&cmd_connections_entry,
	&cmd_rotate_key_entry,
	&cmd_version_entry,
};
#define CMD_COUNT (sizeof(cmd_table) / sizeof(cmd_table[0]))

int
cmd_usage_error(const struct cmd_entry *entry, const char *fmt, ...)
{
	va_list ap;

	fputs("workbot: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (entry != NULL)
		fprintf(stderr, " (usage: workbot %s)\n", entry->usage);
	else
		fputs(" (try 'workbot --help')\n", stderr);
	return EXIT_CONFIG;
}

static void
print_help(FILE *f)
{
	fputs("usage: workbot [COMMAND] [-c FILE] [--log-level debug|info|warn|error]\n\ncommands:\n", f);
	for (size_t i = 0; i < CMD_COUNT; i++)
		fprintf(f, "  workbot %s\n", cmd_table[i]->usage);
	fprintf(f, "\nThe config file is -c FILE, else $WORKBOT_CONF, else %s.\n", DEFAULT_CONFIG);
}

/*
 * Take the shared options out of argv, in place. Returns 0, or an exit
 * status for a usage error.
 */
static int
strip_common_options(struct cmd_ctx *ctx, int *argc, char **argv)
{
	int out = 1;

	for (int i = 1; i < *argc; i++) {
		const char *a = argv[i];
		const char *val = NULL;
		enum log_level level;

		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0 || strcmp(a, "--log-level") == 0) {
			if (i + 1 >= *argc)
				return cmd_usage_error(NULL, "%s needs a value", a);
			val = argv[++i];
		} else if (strncmp(a, "--config=", 9) == 0) {
			val = a + 9;
			a = "-c";
		} else if (strncmp(a, "--log-level=", 12) == 0) {
			val = a + 12;
			a = "--log-level";
		} else {
			argv[out++] = argv[i];
			continue;
		}
		if (strcmp(a, "--log-level") == 0) {
			if (log_level_parse(val, &level) != 0)
				return cmd_usage_error(NULL, "unknown log level '%s' (debug|info|warn|error)", val);
			log_set_level(level);
		} else {
			if (*val == '\0')
				return cmd_usage_error(NULL, "-c needs a file name");
			ctx->config_path = val;
		}
	}
	argv[out] = NULL;
	*argc = out;
	return 0;
}

int
main(int argc, char **argv)
{
	struct cmd_ctx ctx = { .progname = "workbot" };
	const struct cmd_entry *entry = NULL;
	const char *name;
	int args, rc;

	/* No core dumps and no ptrace by other users: memory may hold tokens. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	umask(077);
	log_init();

	if ((rc = strip_common_options(&ctx, &argc, argv)) != 0)
		return rc;
	if (ctx.config_path == NULL) {
		const char *env = getenv("WORKBOT_CONF");
		ctx.config_path = (env != NULL && *env != '\0') ? env : DEFAULT_CONFIG;
	}

	name = argc > 1 ? argv[1] : "run";
	args = 2;
	if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "help") == 0) {
		print_help(stdout);
		return EXIT_OK;
	}
	if (strcmp(name, "--version") == 0)
		name = "version";
	if (name[0] == '-') {
		/* Options but no command: the default command is run. */
		name = "run";
		args = 1;
	}
	for (size_t i = 0; i < CMD_COUNT; i++)
		if (strcmp(cmd_table[i]->name, name) == 0)
			entry = cmd_table[i];
	if (entry == NULL)
		return cmd_usage_error(NULL, "unknown command '%s'", name);

	if (sodium_init() < 0)
		fatal(EXIT_RUNTIME, "main", "libsodium failed to initialise");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		fatal(EXIT_RUNTIME, "main", "libcurl failed to initialise");

	rc = entry->exec(&ctx, argc > args ? argc - args : 0, argv + (argc > args ? args : argc));
	curl_global_cleanup();
	return rc;
}
