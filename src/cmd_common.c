/*
 * cmd_common: what several commands share: loading the config with its
 * errors shown the way an admin reads them.
 */
#include <stdio.h>

#include "workbot/cmd.h"
#include "workbot/config.h"
#include "workbot/log.h"

static void
print_error(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "%s\n", msg);
}

static void
log_config_error(void *arg, const char *msg)
{
	(void)arg;
	log_error("config", "%s", msg);
}

struct config *
cmd_load_config(const struct cmd_ctx *ctx, int as_log)
{
	return config_load(ctx->config_path, as_log ? log_config_error : print_error, NULL);
}
