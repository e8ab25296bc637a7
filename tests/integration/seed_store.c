/*
 * seed_store: a test helper that writes into a store through the records
 * API, so CLI tests can run `workbot connections …` against known data.
 *
 *   seed_store DIR KEYFILE conn TEAM USER APP ACCOUNT ACCESS REFRESH [expired]
 *   seed_store DIR KEYFILE touch TEAM USER APP UNIXTIME
 *   seed_store DIR KEYFILE pending ID SECONDS_TO_LIVE BODY
 *   seed_store DIR KEYFILE get TEAM USER APP      prints account, tokens (tests only)
 *   seed_store DIR KEYFILE audit                  prints the audit log, newest first
 *   seed_store DIR - hold-lock SECONDS            holds the daemon lock, prints "locked"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "workbot/records.h"
#include "workbot/store.h"

static int
usage(void)
{
	fprintf(stderr, "seed_store: bad arguments (see the file's header)\n");
	return 2;
}

int
main(int argc, char **argv)
{
	struct records *r = NULL;
	char err[1024];
	const char *cmd;
	int rc = 0;

	if (argc < 4 || sodium_init() < 0)
		return usage();
	cmd = argv[3];
	if (strcmp(cmd, "hold-lock") == 0) {
		struct store_lock *lock;

		if (argc != 5 || store_lock_try(argv[1], &lock, err, sizeof(err)) != 1) {
			fprintf(stderr, "seed_store: lock: %s\n", err);
			return 1;
		}
		printf("locked\n");
		fflush(stdout);
		sleep((unsigned)atoi(argv[4]));
		store_lock_release(lock);
		return 0;
	}
	if (records_open(argv[1], 0, argv[2], &r, err, sizeof(err)) != 0) {
		fprintf(stderr, "seed_store: %s\n", err);
		return 1;
	}
	if (strcmp(cmd, "conn") == 0 && (argc == 10 || argc == 11)) {
		struct records_tokens t = {
			.access_token = secret_from_str(argv[8]),
			.refresh_token = secret_from_str(argv[9]),
			.expires_at = (int64_t)time(NULL) + 3600,
			.token_type = strdup("Bearer"),
		};
		if (records_conn_put(r, argv[4], argv[5], argv[6], argv[7], &t, (int64_t)time(NULL), 0,
		    err, sizeof(err)) != 1)
			rc = 1;
		else if (argc == 11 && records_conn_set_state(r, argv[4], argv[5], argv[6],
		    RECORDS_EXPIRED, (int64_t)time(NULL), err, sizeof(err)) != 1)
			rc = 1;
		records_tokens_clear(&t);
	} else if (strcmp(cmd, "touch") == 0 && argc == 8) {
		size_t n;
		if (records_touch(r, argv[4], argv[5], argv[6], strtoll(argv[7], NULL, 10)) != 0 ||
		    records_flush_touches(r, &n, err, sizeof(err)) != 0)
			rc = 1;
	} else if (strcmp(cmd, "pending") == 0 && argc == 7) {
		if (records_pending_put(r, argv[4], (int64_t)time(NULL) + atoi(argv[5]), argv[6],
		    strlen(argv[6]), err, sizeof(err)) != 0)
			rc = 1;
	} else if (strcmp(cmd, "get") == 0 && argc == 7) {
		struct records_conn c;
		struct records_tokens t = { 0 };
		int g = records_conn_get(r, argv[4], argv[5], argv[6], &c, &t, err, sizeof(err));
		if (g == 1)
			printf("%s %s %s %s\n", c.account, records_state_name(c.state),
			    secret_reveal(t.access_token), t.refresh_token ? secret_reveal(t.refresh_token) : "-");
		else if (g == 0)
			printf("none\n");
		rc = g < 0;
		records_tokens_clear(&t);
	} else if (strcmp(cmd, "audit") == 0 && argc == 4) {
		struct records_audit *a = NULL;
		size_t n = 0;
		if (records_audit_list(r, NULL, 0, 0, &a, &n, err, sizeof(err)) != 0)
			rc = 1;
		for (size_t i = 0; i < n; i++)
			printf("%s %s %s %s %s\n", records_audit_action_name(a[i].action), a[i].team,
			    a[i].user, a[i].app, a[i].detail);
		free(a);
	} else {
		rc = usage();
	}
	if (rc == 1)
		fprintf(stderr, "seed_store: %s: %s\n", cmd, err);
	records_close(r);
	return rc;
}
