/*
 * Self-test of fake_slack_client (and of the fake's burst machinery):
 *
 *   test_fake_slack_client FAKE_SLACK WS_PROBE
 *
 * Starts the fake on port 0, checks a few Web API answers through the
 * helper, runs ws_probe --ack as the Socket Mode client, runs a 2,000
 * envelope burst and checks its stats, then stops everything. Bounded: every
 * wait has a timeout. Prints "ok N - ..." lines; exit 0 when all passed.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fake_slack_client.h"

static int failures, checks;

static void
check(int cond, const char *what)
{
	checks++;
	printf("%s %d - %s\n", cond ? "ok" : "not ok", checks, what);
	if (!cond)
		failures++;
}

static const char *
jstr(const cJSON *o, const char *k)
{
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));

	return v ? v : "";
}

static double
jnum(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

int
main(int argc, char **argv)
{
	const char *app = "xapp-1-A0FAKEAPP01-1-fake", *bot = "xoxb-0001-fake";
	struct fsc *f;
	cJSON *o = NULL;
	char url[512], prefix[64];
	long ra = 0;
	int st;
	pid_t probe;

	if (argc != 3) {
		fprintf(stderr, "usage: test_fake_slack_client FAKE_SLACK WS_PROBE\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	f = fsc_spawn(argv[1], NULL, 5000);
	check(f != NULL, "fake started on port 0");
	if (!f)
		return 1;

	check(fsc_connections_open(f, app, url, sizeof(url)) == 0,
	      "apps.connections.open with the app token");
	snprintf(prefix, sizeof(prefix), "ws://127.0.0.1:%d/link/?ticket=", fsc_port(f));
	check(!strncmp(url, prefix, strlen(prefix)), "socket URL points at the fake");

	st = fsc_post(f, "/api/apps.connections.open", bot, "", NULL, &o, NULL);
	check(st == 200 && !strcmp(jstr(o, "error"), "not_allowed_token_type"),
	      "apps.connections.open refuses a bot token");
	cJSON_Delete(o);

	st = fsc_post(f, "/api/auth.test", bot, "", NULL, &o, NULL);
	check(st == 200 && !strcmp(jstr(o, "team"), "Acme") &&
	      !strcmp(jstr(o, "user_id"), "UBOT"), "auth.test answers like Slack");
	cJSON_Delete(o);

	check(fsc_fail(f, "chat.postMessage", 1, 429, 7, NULL) == 0, "inject one 429");
	st = fsc_post(f, "/api/chat.postMessage", bot,
		      "{\"channel\":\"C0001\",\"text\":\"hi\"}", "application/json", &o, &ra);
	check(st == 429 && ra == 7 && !strcmp(jstr(o, "error"), "ratelimited"),
	      "429 with Retry-After: 7");
	cJSON_Delete(o);
	st = fsc_post(f, "/api/chat.postMessage", bot,
		      "{\"channel\":\"C0001\",\"text\":\"hi\"}", "application/json", &o, &ra);
	check(st == 200 && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "ok")) &&
	      strlen(jstr(o, "ts")) > 10, "next chat.postMessage succeeds");
	cJSON_Delete(o);

	st = fsc_post(f, "/api/users.info", bot, "user=U0001", NULL, &o, NULL);
	check(st == 200 && !strcmp(jstr(cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(o, "user"), "profile"), "email"),
		"jane@acme.com"), "users.info (form body) has the email");
	cJSON_Delete(o);

	/* a Socket Mode client that acks everything */
	probe = fork();
	if (probe == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		if (devnull >= 0)
			dup2(devnull, STDOUT_FILENO);
		execl(argv[2], argv[2], "--ack", "--no-body", "--timeout", "30", url,
		      (char *)NULL);
		_exit(127);
	}
	check(probe > 0 && fsc_wait_stat(f, "hellos_sent", 1, 5000) == 0,
	      "probe connected and got hello");

	check(fsc_burst(f, 2000, 64, "noop", 20000, &o) == 0, "burst ran");
	check(!strcmp(jstr(o, "state"), "done") && jnum(o, "acked") == 2000,
	      "burst: 2000 envelopes acked");
	{
		const cJSON *rtt = cJSON_GetObjectItemCaseSensitive(o, "rtt_us");

		check(jnum(rtt, "p50") > 0 && jnum(rtt, "p99") >= jnum(rtt, "p50") &&
		      jnum(rtt, "max") >= jnum(rtt, "p99") && jnum(o, "acks_per_s") > 0,
		      "burst: percentiles ordered, rate reported");
		printf("# burst: %.0f acks/s, p50 %.1f us, p99 %.1f us\n",
		       jnum(o, "acks_per_s"), jnum(rtt, "p50"), jnum(rtt, "p99"));
	}
	cJSON_Delete(o);
	check(fsc_stat(f, "acks") >= 2000, "stats count the acks");

	if (probe > 0) {
		int i, status;

		kill(probe, SIGTERM);
		for (i = 0; i < 300 && waitpid(probe, &status, WNOHANG) != probe; i++)
			usleep(10000);
		if (i == 300) {
			kill(probe, SIGKILL);
			waitpid(probe, NULL, 0);
		}
	}
	check(fsc_stop(f) == 0, "fake exits 0 on SIGTERM");
	printf("1..%d\n", checks);
	return failures ? 1 : 0;
}
