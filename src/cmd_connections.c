/*
 * workbot connections list|revoke: what personal (and shared) connections
 * the store holds, and removing them.
 *
 * list prints a table, TEAM USER APP ACCOUNT STATE CONNECTED LAST_USED
 * (times RFC 3339 UTC, "-" when unknown; only the header when empty), or
 * with --json an array of objects with those fields in lower case. Nothing
 * is decrypted to list: the header of a record is plaintext.
 *
 * revoke revokes each matching connection at its provider (RFC 7009, when
 * the app has a revoke_url), deletes it whatever the provider said, writes
 * an audit entry, and prints one line per connection saying whether the
 * provider revocation worked; exit 1 when nothing matched.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "workbot/cmd.h"
#include "workbot/config.h"
#include "workbot/http.h"
#include "workbot/oauth.h"
#include "workbot/records.h"

/* --user U123 or T123:U123 */
static int
parse_user(const char *arg, struct records_filter *f, char *team, size_t teamsz)
{
	const char *colon = strchr(arg, ':');

	if (*arg == '\0')
		return -1;
	if (colon == NULL) {
		f->user = arg;
		return 0;
	}
	if (colon == arg || colon[1] == '\0' || (size_t)(colon - arg) >= teamsz || strchr(colon + 1, ':'))
		return -1;
	memcpy(team, arg, (size_t)(colon - arg));
	team[colon - arg] = '\0';
	f->team = team;
	f->user = colon + 1;
	return 0;
}

static const char *
fmt_time(char *buf, size_t size, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL) {
		snprintf(buf, size, "-");
		return buf;
	}
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

static void
print_table(const struct records_conn *c, size_t n)
{
	static const char *const head[] = {
		"TEAM", "USER", "APP", "ACCOUNT", "STATE", "CONNECTED", "LAST_USED",
	};
	enum { NCOL = 7 };
	size_t w[NCOL];
	char t1[32], t2[32];

	for (int i = 0; i < NCOL; i++)
		w[i] = strlen(head[i]);
	for (size_t i = 0; i < n; i++) {
		const char *cols[NCOL] = {
			c[i].team, c[i].user, c[i].app, c[i].account[0] ? c[i].account : "-",
			records_state_name(c[i].state), fmt_time(t1, sizeof(t1), c[i].created),
			fmt_time(t2, sizeof(t2), c[i].last_used),
		};
		for (int j = 0; j < NCOL; j++)
			if (strlen(cols[j]) > w[j])
				w[j] = strlen(cols[j]);
	}
	for (size_t i = 0; i <= n; i++) {
		const char *cols[NCOL];

		if (i == 0) {
			memcpy(cols, head, sizeof(cols));
		} else {
			const struct records_conn *r = &c[i - 1];
			cols[0] = r->team;
			cols[1] = r->user;
			cols[2] = r->app;
			cols[3] = r->account[0] ? r->account : "-";
			cols[4] = records_state_name(r->state);
			cols[5] = fmt_time(t1, sizeof(t1), r->created);
			cols[6] = fmt_time(t2, sizeof(t2), r->last_used);
		}
		for (int j = 0; j < NCOL; j++) {
			if (j == NCOL - 1)
				printf("%s\n", cols[j]);
			else
				printf("%-*s  ", (int)w[j], cols[j]);
		}
	}
}

static int
print_json(const struct records_conn *c, size_t n)
{
	cJSON *arr = cJSON_CreateArray();
	char t[32], *text;

	for (size_t i = 0; arr != NULL && i < n; i++) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddItemToArray(arr, o);
		cJSON_AddStringToObject(o, "team", c[i].team);
		cJSON_AddStringToObject(o, "user", c[i].user);
		cJSON_AddStringToObject(o, "app", c[i].app);
		if (c[i].account[0])
			cJSON_AddStringToObject(o, "account", c[i].account);
		else
			cJSON_AddNullToObject(o, "account");
		cJSON_AddStringToObject(o, "state", records_state_name(c[i].state));
		if (c[i].created > 0)
			cJSON_AddStringToObject(o, "connected", fmt_time(t, sizeof(t), c[i].created));
		else
			cJSON_AddNullToObject(o, "connected");
		if (c[i].last_used > 0)
			cJSON_AddStringToObject(o, "last_used", fmt_time(t, sizeof(t), c[i].last_used));
		else
			cJSON_AddNullToObject(o, "last_used");
	}
	text = arr ? cJSON_Print(arr) : NULL;
	cJSON_Delete(arr);
	if (text == NULL) {
		fprintf(stderr, "workbot connections: out of memory\n");
		return EXIT_RUNTIME;
	}
	printf("%s\n", text);
	free(text);
	return EXIT_OK;
}

static int
open_records(const struct cmd_ctx *ctx, struct config **cfg, struct records **r)
{
	char err[1024];

	*cfg = cmd_load_config(ctx, 0);
	if (*cfg == NULL)
		return EXIT_CONFIG;
	if (records_open((*cfg)->store.path.v, (size_t)(*cfg)->store.map_size.v,
	    (*cfg)->store.key_file.v, r, err, sizeof(err)) != 0) {
		fprintf(stderr, "workbot connections: %s\n", err);
		config_free(*cfg);
		*cfg = NULL;
		return EXIT_CONFIG;
	}
	return EXIT_OK;
}

static int
do_list(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct cmd_entry usage = {
		.usage = "connections list [--user U|T:U] [--app A] [--json]",
	};
	struct records_filter f = { 0 };
	char team[RECORDS_ID_MAX + 1], err[1024];
	struct records_conn *list = NULL;
	struct config *cfg;
	struct records *r;
	size_t n = 0;
	int json = 0, rc;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = 1;
		} else if (strcmp(argv[i], "--user") == 0 && i + 1 < argc) {
			if (parse_user(argv[++i], &f, team, sizeof(team)) != 0)
				return cmd_usage_error(&usage, "--user takes U123 or T123:U123");
		} else if (strcmp(argv[i], "--app") == 0 && i + 1 < argc && *argv[i + 1]) {
			f.app = argv[++i];
		} else {
			return cmd_usage_error(&usage, "unexpected argument '%s'", argv[i]);
		}
	}
	if ((rc = open_records(ctx, &cfg, &r)) != EXIT_OK)
		return rc;
	if (records_conn_list(r, &f, &list, &n, err, sizeof(err)) != 0) {
		fprintf(stderr, "workbot connections list: %s\n", err);
		rc = EXIT_RUNTIME;
	} else if (json) {
		rc = print_json(list, n);
	} else {
		print_table(list, n);
		rc = EXIT_OK;
	}
	free(list);
	records_close(r);
	config_free(cfg);
	return rc;
}

static int
do_revoke(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct cmd_entry usage = {
		.usage = "connections revoke --user U --app A | --all-for-user U | --all-for-app A",
	};
	struct records_filter f = { 0 };
	char team[RECORDS_ID_MAX + 1], err[1024];
	struct records_conn *list = NULL;
	int have_user = 0, have_app = 0, all_user = 0, all_app = 0;
	struct http_client *http = NULL;
	struct oauth *o = NULL;
	struct config *cfg;
	struct records *r;
	size_t n = 0, done = 0;
	int rc;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (i + 1 >= argc || *argv[i + 1] == '\0')
			return cmd_usage_error(&usage, "%s needs a value", a);
		if (strcmp(a, "--user") == 0 || strcmp(a, "--all-for-user") == 0) {
			if (have_user++ || parse_user(argv[++i], &f, team, sizeof(team)) != 0)
				return cmd_usage_error(&usage, "%s takes one U123 or T123:U123", a);
			all_user = strcmp(a, "--all-for-user") == 0;
		} else if (strcmp(a, "--app") == 0 || strcmp(a, "--all-for-app") == 0) {
			if (have_app++)
				return cmd_usage_error(&usage, "%s given twice", a);
			f.app = argv[++i];
			all_app = strcmp(a, "--all-for-app") == 0;
		} else {
			return cmd_usage_error(&usage, "unexpected argument '%s'", a);
		}
	}
	/* Exactly one of the three forms: a typo must not revoke more than asked. */
	if (!((have_user && have_app && !all_user && !all_app) ||
	    (all_user && !have_app) || (all_app && !have_user)))
		return cmd_usage_error(&usage, "say which connections");

	if ((rc = open_records(ctx, &cfg, &r)) != EXIT_OK)
		return rc;
	if (records_conn_list(r, &f, &list, &n, err, sizeof(err)) != 0) {
		fprintf(stderr, "workbot connections revoke: %s\n", err);
		rc = EXIT_RUNTIME;
		goto out;
	}
	http = http_client_new(NULL);
	o = oauth_new(r, &(struct oauth_options){ 0 });
	for (size_t i = 0; i < n; i++) {
		const struct records_conn *c = &list[i];
		struct oauth_disconnect_result res = { 0 };
		const struct config_app *app = config_app_find(cfg, c->app);
		int d = oauth_disconnect(o, cfg, http, c->team, c->user, c->app, RECORDS_AUDIT_REVOKED,
		    (int64_t)time(NULL), &res, err, sizeof(err));

		if (d < 0) {
			fprintf(stderr, "workbot connections revoke: %s %s %s: %s\n", c->team, c->user, c->app, err);
			rc = EXIT_RUNTIME;
			continue;
		}
		if (d == 0)
			continue;	/* deleted meanwhile by someone else */
		done++;
		if (res.revoked)
			printf("revoked %s %s %s: deleted; revoked at the provider\n", c->team, c->user, c->app);
		else if (app == NULL || app->revoke_url.v == NULL)
			printf("revoked %s %s %s: deleted; no revoke_url configured, nothing to revoke at the provider\n",
			    c->team, c->user, c->app);
		else
			printf("revoked %s %s %s: deleted; NOT revoked at the provider: %s\n", c->team, c->user,
			    c->app, res.reason[0] ? res.reason : "unknown error");
	}
	if (done == 0 && rc == EXIT_OK) {
		fprintf(stderr, "workbot connections revoke: no connection matched\n");
		rc = EXIT_RUNTIME;
	}
out:
	oauth_free(o);
	http_client_free(http);
	free(list);
	records_close(r);
	config_free(cfg);
	return rc;
}

static int
cmd_connections_exec(struct cmd_ctx *ctx, int argc, char **argv)
{
	if (argc < 1)
		return cmd_usage_error(&cmd_connections_entry, "connections needs list or revoke");
	if (strcmp(argv[0], "list") == 0)
		return do_list(ctx, argc - 1, argv + 1);
	if (strcmp(argv[0], "revoke") == 0)
		return do_revoke(ctx, argc - 1, argv + 1);
	return cmd_usage_error(&cmd_connections_entry, "unknown subcommand '%s'", argv[0]);
}

const struct cmd_entry cmd_connections_entry = {
	.name = "connections",
	.usage = "connections list [--user U] [--app A] [--json] | revoke --user U --app A | --all-for-user U | --all-for-app A",
	.exec = cmd_connections_exec,
};
