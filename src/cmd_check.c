/*
 * workbot check: is this installation ready to run? The config (every
 * problem, each as FILE:LINE), the key file, and whether that key opens the
 * store. Prints `FILE: OK` and exits 0, or the problems and exits 2. Never
 * prints a secret value: errors come from modules that do not know how.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "workbot/cmd.h"
#include "workbot/config.h"
#include "workbot/records.h"
#include "workbot/vault.h"

/* 0 ok, -1 problem printed. */
static int
check_key_and_store(const struct config *cfg)
{
	const char *dir = cfg->store.path.v, *key_file = cfg->store.key_file.v;
	struct records_key_check kc;
	struct vault *v = NULL;
	struct stat st;
	char err[1024];

	if (vault_load(key_file, &v, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s:%u: [store] key_file: %s\n", cfg->file,
		    cfg->store.key_file.line ? cfg->store.key_file.line : cfg->store.line, err);
		return -1;
	}
	vault_free(v);

	if (stat(dir, &st) != 0 && errno == ENOENT) {
		/* Not an error: `workbot run` creates it (its parent must exist). */
		fprintf(stderr, "note: store %s does not exist yet; workbot run creates it\n", dir);
		return 0;
	}
	if (records_check_key(dir, (size_t)cfg->store.map_size.v, key_file, &kc, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s:%u: [store] path: %s\n", cfg->file,
		    cfg->store.path.line ? cfg->store.path.line : cfg->store.line, err);
		return -1;
	}
	switch (kc.match) {
	case RECORDS_KEY_MATCHES:
	case RECORDS_KEY_NEW_STORE:
		return 0;
	case RECORDS_KEY_OTHER_FILE:
		fprintf(stderr, "%s:%u: [store] key_file: key file %s does not match this store "
		    "(key id %s, store expects %s); %s matches it (an interrupted rotate-key? "
		    "run it again, or point key_file at that file)\n",
		    cfg->file, cfg->store.key_file.line, key_file, kc.file_key_id,
		    kc.store_key_id, kc.path);
		return -1;
	case RECORDS_KEY_NO_MATCH:
	default:
		fprintf(stderr, "%s:%u: [store] key_file: key file %s does not match this store "
		    "(key id %s, store expects %s); no known key file matches\n",
		    cfg->file, cfg->store.key_file.line, key_file,
		    kc.file_key_id[0] ? kc.file_key_id : "unreadable", kc.store_key_id);
		return -1;
	}
}

static int
cmd_check_exec(struct cmd_ctx *ctx, int argc, char **argv)
{
	struct config *cfg;
	int bad;

	if (argc > 0)
		return cmd_usage_error(&cmd_check_entry, "unexpected argument '%s'", argv[0]);
	cfg = cmd_load_config(ctx, 0);
	if (cfg == NULL)
		return EXIT_CONFIG;
	bad = check_key_and_store(cfg);
	config_free(cfg);
	if (bad)
		return EXIT_CONFIG;
	printf("%s: OK\n", ctx->config_path);
	return EXIT_OK;
}

const struct cmd_entry cmd_check_entry = {
	.name = "check",
	.usage = "check [-c FILE]",
	.exec = cmd_check_exec,
};
