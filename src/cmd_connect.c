/*
 * workbot connect APP --shared: the admin's OAuth login for the shared
 * (owner) connection that recipes without verify_user_access use.
 *
 * It writes an owner-slot pending login into the store and prints
 * <public_url>/oauth/start/<id>. If something already listens on the
 * listener address (a running daemon), the daemon serves the login and this
 * command waits (at most 10 minutes) for the connection to appear in the
 * store; otherwise it serves the listener itself, with the same routes as
 * the daemon, until the login is confirmed or cancelled.
 *
 * The shared slot is keyed by the installing team (auth.test with the bot
 * token), like the daemon's lookups.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "workbot/cmd.h"
#include "workbot/config.h"
#include "workbot/http.h"
#include "workbot/jobq.h"
#include "workbot/listener.h"
#include "workbot/log.h"
#include "workbot/loop.h"
#include "workbot/oauth.h"
#include "workbot/oauth_http.h"
#include "workbot/records.h"
#include "workbot/slack_api.h"

#define WAIT_S 600

struct connect_ctx {
	const struct config *cfg;
	struct loop *loop;
	enum oauth_confirm_action action;
	char account[RECORDS_ACCOUNT_MAX + 1];
	lws_sorted_usec_list_t sul_timeout;
	lws_sorted_usec_list_t sul_quit;
};

static struct connect_ctx *the_ctx;

static const struct config *
fixed_cfg(void *arg, void **hold)
{
	*hold = NULL;
	return ((struct connect_ctx *)arg)->cfg;
}

static void
no_put(void *arg, void *hold)
{
	(void)arg;
	(void)hold;
}

static void
quit_fired(lws_sorted_usec_list_t *sul)
{
	(void)sul;
	loop_quit(the_ctx->loop);
}

/* Event thread, after the confirm job: let its page reach the browser, then stop. */
static void
quit_post(void *arg)
{
	struct connect_ctx *x = arg;

	lws_sul_schedule(loop_context(x->loop), 0, &x->sul_quit, quit_fired, 500 * LWS_US_PER_MS);
}

static void
confirmed(void *arg, struct http_client *c, const struct config *cfg, struct oauth_confirmed *done)
{
	struct connect_ctx *x = arg;

	(void)c;
	(void)cfg;
	x->action = done->action;
	snprintf(x->account, sizeof(x->account), "%s", done->account);
	/* Let the confirm page reach the browser before the listener goes. */
	loop_post(x->loop, quit_post, x);
}

static void
timeout_fired(lws_sorted_usec_list_t *sul)
{
	(void)sul;
	fprintf(stderr, "workbot connect: the login was not completed within %d minutes\n", WAIT_S / 60);
	loop_quit(the_ctx->loop);
}

static void
on_stop(void *arg, int signo)
{
	(void)signo;
	loop_quit(((struct connect_ctx *)arg)->loop);
}

static int
winit(void *arg, enum jobq_lane lane, unsigned index, void **worker)
{
	(void)lane;
	(void)index;
	*worker = http_client_new(arg);
	return 0;
}

static void
wfini(void *arg, void *worker)
{
	(void)arg;
	http_client_free(worker);
}

/* Is something listening on the listener address already? */
static int
address_taken(const struct config_bind *b)
{
	int fd = socket(b->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1, taken;

	if (fd < 0)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	taken = bind(fd, (const struct sockaddr *)&b->addr, b->addrlen) != 0 && errno == EADDRINUSE;
	close(fd);
	return taken;
}

/* The daemon serves the login: wait for the shared connection to be (re)written. */
static int
wait_for_daemon(struct records *r, const char *team, const char *app, int64_t since)
{
	char err[512];

	fprintf(stderr, "A running workbot serves the login; waiting up to %d minutes for it...\n", WAIT_S / 60);
	for (int i = 0; i < WAIT_S * 2; i++) {
		struct records_conn c;
		int g = records_conn_get(r, team, RECORDS_SHARED_USER, app, &c, NULL, err, sizeof(err));

		if (g < 0) {
			fprintf(stderr, "workbot connect: %s\n", err);
			return EXIT_RUNTIME;
		}
		if (g == 1 && c.updated >= since && c.state == RECORDS_ACTIVE) {
			printf("Connected: the shared %s connection%s%s\n", app, c.account[0] ? " as " : "", c.account);
			return EXIT_OK;
		}
		struct timespec ts = { 0, 500 * 1000000L };
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "workbot connect: the login was not completed within %d minutes\n", WAIT_S / 60);
	return EXIT_RUNTIME;
}

/* No daemon: serve the listener here until the login is done. */
static int
serve_login(const struct config *cfg, struct oauth *o, struct http_shared *shared)
{
	struct connect_ctx x = { .cfg = cfg };
	struct loop_opts lo = { .max_http_header_data = LISTENER_HEAD_MAX, .fd_limit = 64, .on_stop = on_stop, .arg = &x };
	struct jobq_config jc = { .workers = 1, .capacity = 16, .delayed_capacity = 16, .init = winit, .fini = wfini,
		.arg = shared };
	struct oauth_http_opts ho = { .oauth = o, .cfg_get = fixed_cfg, .cfg_put = no_put, .on_confirmed = confirmed,
		.arg = &x };
	struct listener_opts lso = { .bind = &cfg->listener.bind };
	struct oauth_http *h = NULL;
	struct listener *l = NULL;
	struct jobq *q = NULL;
	char err[512];
	int rc = EXIT_RUNTIME;

	the_ctx = &x;
	loop_block_signals();
	if ((x.loop = loop_new(&lo, err, sizeof(err))) == NULL || (q = jobq_new(&jc)) == NULL) {
		fprintf(stderr, "workbot connect: %s\n", x.loop ? "cannot start a worker" : err);
		goto out;
	}
	ho.loop = x.loop;
	ho.jobq = q;
	h = oauth_http_new(&ho);
	lso.routes = oauth_http_routes(h, &lso.nroutes);
	if ((l = listener_new(x.loop, &lso, err, sizeof(err))) == NULL) {
		fprintf(stderr, "workbot connect: [listener] bind: %s\n", err);
		rc = EXIT_CONFIG;
		goto out;
	}
	oauth_http_set_listener(h, l);
	fprintf(stderr, "Serving the login on %s until it is done (at most %d minutes)...\n", cfg->listener.bind.v,
	    WAIT_S / 60);
	lws_sul_schedule(loop_context(x.loop), 0, &x.sul_timeout, timeout_fired, (lws_usec_t)WAIT_S * LWS_US_PER_SEC);
	loop_run(x.loop);
	lws_sul_cancel(&x.sul_timeout);
	lws_sul_cancel(&x.sul_quit);
	if (x.action == OAUTH_CONFIRM_CONNECTED) {
		printf("Connected: the shared connection%s%s\n", x.account[0] ? " as " : "", x.account);
		rc = EXIT_OK;
	} else if (x.action == OAUTH_CONFIRM_CANCELLED) {
		fprintf(stderr, "workbot connect: cancelled in the browser; nothing was stored\n");
	}
out:
	if (q != NULL)
		jobq_stop(q, jobq_now_ms() + 5000);
	if (x.loop != NULL)
		loop_drain(x.loop);
	jobq_free(q);
	oauth_http_set_listener(h, NULL);
	listener_free(l);
	oauth_http_free(h);
	loop_free(x.loop);
	the_ctx = NULL;
	return rc;
}

static int
team_of_bot(const struct config *cfg, struct http_shared *shared, char *team, size_t size)
{
	struct slack_api_config ac = { .api_url = cfg->slack.api_url.v, .bot_token = cfg->slack.bot_token.v,
		.ca_file = cfg->slack.ca_file.v };
	struct slack_result res = { 0 };
	struct slack_auth auth;
	const char *why = NULL;
	struct slack_api *api = slack_api_new(&ac, &why);
	struct http_client *c = http_client_new(shared);
	int rc = -1;

	if (api == NULL) {
		fprintf(stderr, "workbot connect: [slack] api_url: %s\n", why);
	} else if (slack_auth_test(api, c, &auth, &res) == 0) {
		snprintf(team, size, "%s", auth.team_id);
		rc = 0;
	} else {
		fprintf(stderr, "workbot connect: auth.test failed (%s)%s\n", res.error,
		    res.outcome == SLACK_FATAL_TOKEN ? ": check [slack] bot_token" : "");
	}
	slack_result_clear(&res);
	http_client_free(c);
	slack_api_free(api);
	return rc;
}

static int
cmd_connect_exec(struct cmd_ctx *ctx, int argc, char **argv)
{
	const char *app_name = NULL;
	const struct config_app *app;
	struct http_shared *shared = NULL;
	struct records *r = NULL;
	struct oauth *o = NULL;
	struct config *cfg;
	char team[RECORDS_ID_MAX + 1], link[OAUTH_LINK_MAX], err[1024];
	int64_t start = (int64_t)time(NULL);
	int shared_flag = 0, rc = EXIT_CONFIG;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--shared") == 0)
			shared_flag = 1;
		else if (argv[i][0] != '-' && app_name == NULL)
			app_name = argv[i];
		else
			return cmd_usage_error(&cmd_connect_entry, "unexpected argument '%s'", argv[i]);
	}
	if (app_name == NULL)
		return cmd_usage_error(&cmd_connect_entry, "connect needs an app name");
	if (!shared_flag)
		return cmd_usage_error(&cmd_connect_entry,
		    "only --shared is supported: users connect their own accounts from Slack");
	if ((cfg = cmd_load_config(ctx, 0)) == NULL)
		return EXIT_CONFIG;
	app = config_app_find(cfg, app_name);
	if (app == NULL || app->auth.v != CONFIG_AUTH_OAUTH2) {
		fprintf(stderr, "workbot connect: %s: %s\n", app_name,
		    app == NULL ? "no such [app] in the config" : "not an auth = oauth2 app");
		goto out;
	}
	shared = http_shared_new();
	if (team_of_bot(cfg, shared, team, sizeof(team)) != 0) {
		rc = EXIT_RUNTIME;
		goto out;
	}
	if (records_open(cfg->store.path.v, (size_t)cfg->store.map_size.v, cfg->store.key_file.v, &r, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "workbot connect: %s\n", err);
		goto out;
	}
	o = oauth_new(r, &(struct oauth_options){ 0 });
	if (oauth_begin_shared(o, cfg, team, app_name, start, link, sizeof(link), err, sizeof(err)) != 0) {
		fprintf(stderr, "workbot connect: %s\n", err);
		rc = EXIT_RUNTIME;
		goto out;
	}
	printf("Open this link in a browser to connect the shared %s account:\n%s\n", app->title.v, link);
	fflush(stdout);
	if (address_taken(&cfg->listener.bind))
		rc = wait_for_daemon(r, team, app_name, start);
	else
		rc = serve_login(cfg, o, shared);
out:
	oauth_free(o);
	records_close(r);
	http_shared_free(shared);
	config_free(cfg);
	return rc;
}

const struct cmd_entry cmd_connect_entry = {
	.name = "connect",
	.usage = "connect APP --shared [-c FILE]",
	.exec = cmd_connect_exec,
};
