/*
 * Test of the C helper for the fake OAuth provider: spawn it, run a whole
 * code flow with foc_login (basic and body client auth), use the token on
 * the Salesforce-like API, expire it, refresh it, inject failures, read the
 * counters, stop it cleanly.
 *
 *   test_fake_oauth_client FAKE_OAUTH
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_oauth_client.h"

static int failures;

#define CHECK(cond, what) do { \
	if (cond) printf("ok - %s\n", what); \
	else { printf("not ok - %s (line %d)\n", what, __LINE__); failures++; } \
} while (0)

static const char *
str(const cJSON *o, const char *k)
{
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));

	return v ? v : "";
}

int
main(int argc, char **argv)
{
	static const char *const args[] = { "--max-runtime", "60", NULL };
	const char *ru = "http://127.0.0.1:8085/oauth/callback";
	struct foc *f;
	cJSON *tok = NULL, *tok2 = NULL;
	char auth[256], body[512], *ans = NULL;
	int st, rc;

	if (argc < 2) {
		fprintf(stderr, "usage: test_fake_oauth_client FAKE_OAUTH\n");
		return 2;
	}
	f = foc_spawn(argv[1], args, 5000);
	if (!f) {
		printf("not ok - spawn\n");
		return 1;
	}
	CHECK(foc_app(f, "{\"client_id\":\"sf\",\"client_secret\":\"x\","
		      "\"style\":\"salesforce\"}") == 0, "configure a Salesforce-like app");
	CHECK(foc_app(f, "{\"client_id\":\"gen\",\"client_secret\":\"y\","
		      "\"client_auth\":\"body\",\"expires_in\":60}") == 0, "configure a body-auth app");
	CHECK(foc_next_login(f, "sf", "jane@acme.com", 0) == 0, "queue a login");

	st = foc_login(f, "sf", "x", 1, ru, "api refresh_token", &tok);
	CHECK(st == 200, "login with basic auth");
	CHECK(!strncmp(str(tok, "access_token"), "fake-at-", 8), "access token");
	CHECK(!cJSON_GetObjectItemCaseSensitive(tok, "expires_in"), "salesforce: no expires_in");
	CHECK(strstr(str(tok, "instance_url"), "/sf") != NULL, "salesforce: instance_url");

	snprintf(auth, sizeof(auth), "Bearer %s", str(tok, "access_token"));
	st = foc_request(f, "POST", "/sf/services/data/v59.0/sobjects/Opportunity", auth,
			 "{\"Name\":\"x\"}", "application/json", &ans, NULL, 0);
	CHECK(st == 201 && ans && strstr(ans, "\"id\":\"006"), "resource call as the user");
	free(ans);
	ans = NULL;
	{
		cJSON *calls = NULL, *c0;

		foc_control_get(f, "calls", &calls);
		c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(calls, "calls"), 0);
		CHECK(!strcmp(str(c0, "account"), "jane@acme.com"), "call recorded with the account");
		cJSON_Delete(calls);
	}
	CHECK(foc_expire(f, "jane@acme.com") == 0, "expire jane's tokens");
	st = foc_request(f, "GET", "/sf/services/data/v59.0/limits", auth, NULL, NULL,
			 &ans, NULL, 0);
	CHECK(st == 401 && ans && strstr(ans, "INVALID_SESSION_ID"), "expired token: 401");
	free(ans);
	ans = NULL;

	snprintf(body, sizeof(body), "grant_type=refresh_token&refresh_token=%s",
		 str(tok, "refresh_token"));
	st = foc_request(f, "POST", "/token", "Basic c2Y6eA==", body, NULL, &ans, NULL, 0);
	CHECK(st == 200, "refresh (Basic sf:x)");
	tok2 = ans ? cJSON_Parse(ans) : NULL;
	free(ans);
	ans = NULL;
	CHECK(!cJSON_GetObjectItemCaseSensitive(tok2, "refresh_token"),
	      "salesforce refresh: no new refresh token");
	CHECK(foc_count(f, "token.refresh_token") == 1, "exactly one refresh counted");

	CHECK(foc_fail(f, "token", 1, 500, 0, NULL, NULL) == 0, "inject a 500");
	CHECK(foc_login(f, "gen", "y", 0, ru, NULL, NULL) == 500, "login gets the 500");
	cJSON_Delete(tok);
	tok = NULL;
	CHECK(foc_login(f, "gen", "y", 0, ru, NULL, &tok) == 200, "login with body auth");
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(tok, "expires_in")) == 60,
	      "expires_in as configured");
	CHECK(foc_login(f, "gen", "y", 1, ru, NULL, NULL) == 401, "basic on a body app: 401");
	CHECK(foc_next_login(f, "gen", NULL, 1) == 0, "queue a denial");
	CHECK(foc_login(f, "gen", "y", 0, ru, NULL, NULL) == -1, "denied: no code");
	CHECK(foc_count(f, "authorize.access_denied") == 1, "denial counted");
	CHECK(foc_reset(f) == 0, "reset");
	CHECK(foc_count(f, "token") == 0, "counters zeroed");

	cJSON_Delete(tok);
	cJSON_Delete(tok2);
	rc = foc_stop(f);
	CHECK(rc == 0, "clean exit on SIGTERM");
	return failures ? 1 : 0;
}
