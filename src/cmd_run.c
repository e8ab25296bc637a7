/*
 * workbot run: the daemon. This build validates the config, takes the
 * daemon lock and opens the sealed store, so an installation can be
 * prepared and checked end to end; the Socket Mode event loop is the next
 * piece of work and is not in this build, which says so and exits 1.
 */
#include <stdio.h>

#include "workbot/cmd.h"
#include "workbot/config.h"
#include "workbot/log.h"
#include "workbot/records.h"
#include "workbot/store.h"

static int
cmd_run_exec(struct cmd_ctx *ctx, int argc, char **argv)
{
	struct store_lock *lock = NULL;
	struct records *r = NULL;
	struct config *cfg;
	char err[1024];
	int rc = EXIT_CONFIG;

	if (argc > 0)
		return cmd_usage_error(&cmd_run_entry, "unexpected argument '%s'", argv[0]);
	if ((cfg = cmd_load_config(ctx, 1)) == NULL)
		return EXIT_CONFIG;
	if (records_open(cfg->store.path.v, (size_t)cfg->store.map_size.v, cfg->store.key_file.v,
	    &r, err, sizeof(err)) != 0) {
		log_error("store", "cannot open the store: %s", err);
		goto out;
	}
	if (store_lock_daemon(cfg->store.path.v, &lock, err, sizeof(err)) != 0) {
		log_error("store", "%s", err);
		goto out;
	}
	log_info("main", "store ready path=%s key_id=%s", cfg->store.path.v, records_key_id(r));
	log_error("main", "the Socket Mode daemon is not part of this build yet; nothing to run");
	rc = EXIT_RUNTIME;
out:
	store_lock_release(lock);
	records_close(r);
	config_free(cfg);
	return rc;
}

const struct cmd_entry cmd_run_entry = {
	.name = "run",
	.usage = "run [-c FILE]",
	.exec = cmd_run_exec,
};
