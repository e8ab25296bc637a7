/* bench_util: see bench_util.h. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cjson/cJSON.h>

#include <stdarg.h>
#include "bench_util.h"
#include "fake_slack_client.h"

int64_t
bu_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
bu_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
bu_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

void
bu_sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

void
bu_rm_tree(const char *dir, const char *prefix)
{
	pid_t p;

	if (dir[0] == '\0' || strncmp(dir, prefix, strlen(prefix)) != 0)
		return;
	p = fork();
	if (p == 0) {
		execlp("rm", "rm", "-rf", "--", dir, (char *)NULL);
		_exit(127);
	}
	if (p > 0)
		waitpid(p, NULL, 0);
}

int
bu_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &al) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

int
bu_run_wait(const char *const argv[], const char *out_path)
{
	int status;
	pid_t p = fork();

	if (p < 0)
		return -1;
	if (p == 0) {
		int fd = open(out_path, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (waitpid(p, &status, 0) != p)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

pid_t
bu_spawn_workbot(const char *workbot, const char *conf, const char *log_path)
{
	pid_t parent = getpid(), p = fork();

	if (p != 0)
		return p;
	/* If the bench dies without its clean-up, workbot must not outlive it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	{
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd >= 0) {
			dup2(fd, STDERR_FILENO);
			dup2(fd, STDOUT_FILENO);
		}
	}
	execl(workbot, workbot, "run", "-c", conf, "--log-level", "info", (char *)NULL);
	_exit(127);
}

void
bu_stop_workbot(pid_t pid)
{
	int i;

	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	for (i = 0; i < 120 && waitpid(pid, NULL, WNOHANG) != pid; i++)
		bu_sleep_ms(100);
	if (i == 120) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

int
bu_proc_mem(pid_t pid, long *rss_anon, long *vmrss)
{
	char path[64], line[256];
	FILE *fp;
	int got = 0;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (sscanf(line, "RssAnon: %ld", rss_anon) == 1)
			got |= 1;
		else if (sscanf(line, "VmRSS: %ld", vmrss) == 1)
			got |= 2;
	}
	fclose(fp);
	return got == 3 ? 0 : -1;
}

const char *
bu_default_path(const char *baked, const char *rel, char *buf, size_t size)
{
	char self[4096];
	ssize_t n;
	char *slash;

	if (baked[0] != '\0' && access(baked, X_OK) == 0)
		return baked;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return baked;
	self[n] = '\0';
	/* build/tests/bench/X → build/ */
	for (int i = 0; i < 3 && (slash = strrchr(self, '/')) != NULL; i++)
		*slash = '\0';
	if (snprintf(buf, size, "%s/%s", self, rel) >= (int)size)
		return baked;
	return buf;
}

int
bu_write_conf(const char *path, const char *api_url, const char *tmp, const char *key_file,
    int port, const char *extra)
{
	FILE *fp = fopen(path, "w");
	int bad;

	if (fp == NULL)
		return -1;
	fprintf(fp, "[slack]\napp_token = env:WB_APP_TOKEN\nbot_token = env:WB_BOT_TOKEN\n"
	    "api_url = %s\nconnections = 2\nworkers = 4\n\n"
	    "[store]\npath = %s/store\nkey_file = %s\nmap_size = 64MiB\n\n"
	    "[listener]\nbind = 127.0.0.1:%d\n",
	    api_url, tmp, key_file, port);
	if (extra != NULL)
		fputs(extra, fp);
	bad = ferror(fp);
	if (fclose(fp) != 0 || bad)
		return -1;
	return chmod(path, 0600);
}

static size_t
sink_write(char *data, size_t sz, size_t n, void *arg)
{
	struct bu_sink *s = arg;
	size_t add = sz * n;

	if (s->len + add >= sizeof(s->buf))
		return 0;
	memcpy(s->buf + s->len, data, add);
	s->len += add;
	s->buf[s->len] = '\0';
	return add;
}

int
bu_wb_get(CURL *curl, int port, const char *path, struct bu_sink *s)
{
	char url[128];
	long code = -1;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	s->len = 0;
	s->buf[0] = '\0';
	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 3000L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sink_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, s);
	if (curl_easy_perform(curl) != CURLE_OK)
		return -1;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
	return (int)code;
}

int
bu_sockets_live(CURL *curl, int port)
{
	static struct bu_sink s;
	cJSON *o;
	int n = -1;

	if (bu_wb_get(curl, port, "/healthz", &s) < 0)
		return -1;
	o = cJSON_Parse(s.buf);
	if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "sockets_live")))
		n = cJSON_GetObjectItemCaseSensitive(o, "sockets_live")->valueint;
	cJSON_Delete(o);
	return n;
}

/* ---- one run: children, clean-up, dying ---- */

struct bu_run bu_run;

static void
kill_children_now(void)
{
	if (bu_run.wb > 0)
		kill(bu_run.wb, SIGKILL);
	if (bu_run.fake > 0)
		kill(bu_run.fake, SIGKILL);
}

static void
on_signal(int sig)
{
	static const char msg[] = ": interrupted or timed out, children killed\n";

	kill_children_now();
	(void)!write(STDERR_FILENO, bu_run.name, strlen(bu_run.name));
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(128 + sig);
}

static void
cleanup(void)
{
	char prefix[80];

	if (bu_run.wb > 0) {
		bu_stop_workbot(bu_run.wb);
		bu_run.wb = 0;
	}
	if (bu_run.f != NULL) {
		fsc_stop(bu_run.f);
		bu_run.f = NULL;
		bu_run.fake = 0;
	}
	if (bu_run.curl != NULL) {
		curl_easy_cleanup(bu_run.curl);
		bu_run.curl = NULL;
	}
	snprintf(prefix, sizeof(prefix), "/tmp/%s.", bu_run.name);
	if (!bu_run.keep)
		bu_rm_tree(bu_run.tmp, prefix);
	else if (bu_run.tmp[0])
		fprintf(stderr, "%s: kept %s\n", bu_run.name, bu_run.tmp);
}

void
bu_run_start(const char *name, unsigned overall_s)
{
	bu_run.name = name;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGALRM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	alarm(overall_s);
	atexit(cleanup);
}

void
bu_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s: ", bu_run.name ? bu_run.name : "bench");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);	/* atexit: cleanup() */
}
