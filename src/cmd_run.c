/*
 * workbot run: the daemon (daemon.c). Takes no arguments of its own.
 */
#include "workbot/cmd.h"
#include "workbot/daemon.h"

static int
cmd_run_exec(struct cmd_ctx *ctx, int argc, char **argv)
{
	if (argc > 0)
		return cmd_usage_error(&cmd_run_entry, "unexpected argument '%s'", argv[0]);
	return daemon_run(ctx->config_path);
}

const struct cmd_entry cmd_run_entry = {
	.name = "run",
	.usage = "run [-c FILE]",
	.exec = cmd_run_exec,
};
