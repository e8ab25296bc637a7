/*
 * workbot rotate-key --new-key FILE: re-seal every record under a new master
 * key. The work (one transaction, then the key files swapped, the old key
 * kept as key_file.old) is records_rotate_key(); it refuses to run while a
 * daemon holds the store.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "workbot/cmd.h"
#include "workbot/config.h"
#include "workbot/records.h"

static int
cmd_rotate_key_exec(struct cmd_ctx *ctx, int argc, char **argv)
{
	const char *new_key = NULL;
	struct config *cfg;
	size_t count = 0;
	char err[1024];

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--new-key") == 0 && i + 1 < argc && *argv[i + 1])
			new_key = argv[++i];
		else
			return cmd_usage_error(&cmd_rotate_key_entry, "unexpected argument '%s'", argv[i]);
	}
	if (new_key == NULL)
		return cmd_usage_error(&cmd_rotate_key_entry, "rotate-key needs --new-key FILE");
	if ((cfg = cmd_load_config(ctx, 0)) == NULL)
		return EXIT_CONFIG;
	if (records_rotate_key(cfg->store.path.v, (size_t)cfg->store.map_size.v,
	    cfg->store.key_file.v, new_key, &count, err, sizeof(err)) != 0) {
		fprintf(stderr, "workbot rotate-key: %s\n", err);
		config_free(cfg);
		return EXIT_RUNTIME;
	}
	printf("re-sealed %zu records; %s is the new key, the old one is %s.old\n",
	    count, cfg->store.key_file.v, cfg->store.key_file.v);
	config_free(cfg);
	return EXIT_OK;
}

const struct cmd_entry cmd_rotate_key_entry = {
	.name = "rotate-key",
	.usage = "rotate-key --new-key FILE [-c FILE]",
	.exec = cmd_rotate_key_exec,
};
