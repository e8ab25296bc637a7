/*
 * workbot connect APP --shared: the admin's OAuth login for the shared
 * (owner) connection. This build checks the arguments and the app; the
 * OAuth flow itself is the next piece of work and is not in this build,
 * which says so and exits 1.
 */
#include <stdio.h>
#include <string.h>

#include "workbot/cmd.h"
#include "workbot/config.h"

static int
cmd_connect_exec(struct cmd_ctx *ctx, int argc, char **argv)
{
	const char *app_name = NULL;
	const struct config_app *app;
	struct config *cfg;
	int shared = 0;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--shared") == 0)
			shared = 1;
		else if (argv[i][0] != '-' && app_name == NULL)
			app_name = argv[i];
		else
			return cmd_usage_error(&cmd_connect_entry, "unexpected argument '%s'", argv[i]);
	}
	if (app_name == NULL)
		return cmd_usage_error(&cmd_connect_entry, "connect needs an app name");
	if (!shared)
		return cmd_usage_error(&cmd_connect_entry,
		    "only --shared is supported: users connect their own accounts from Slack");
	if ((cfg = cmd_load_config(ctx, 0)) == NULL)
		return EXIT_CONFIG;
	app = config_app_find(cfg, app_name);
	if (app == NULL || app->auth.v != CONFIG_AUTH_OAUTH2) {
		fprintf(stderr, "workbot connect: %s: %s\n", app_name,
		    app == NULL ? "no such [app] in the config" : "not an auth = oauth2 app");
		config_free(cfg);
		return EXIT_CONFIG;
	}
	fprintf(stderr, "workbot connect: the OAuth login flow is not part of this build yet\n");
	config_free(cfg);
	return EXIT_RUNTIME;
}

const struct cmd_entry cmd_connect_entry = {
	.name = "connect",
	.usage = "connect APP --shared [-c FILE]",
	.exec = cmd_connect_exec,
};
