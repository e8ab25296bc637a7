/*
 * bench_util: the process, config and listener helpers shared by the
 * benchmarks that run a real `workbot run` against the fake Slack
 * (ack_bench, reply_bench). Test code only; loopback only; every wait is
 * bounded.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <curl/curl.h>

struct fsc;

/*
 * One benchmark run: its children and scratch directory, all a signal
 * handler or the exit clean-up needs. bu_run_start() installs SIGINT /
 * SIGTERM / SIGALRM handlers that kill the children at once, an alarm for
 * the whole run, and an atexit clean-up (workbot stopped, the fake stopped,
 * the directory removed unless `keep`).
 */
struct bu_run {
	const char *name;		/* "ack_bench": message prefix; tmp is /tmp/<name>.XXXXXX */
	pid_t wb;
	pid_t fake;			/* copy of fsc_pid, for the signal handler */
	struct fsc *f;
	char tmp[64];
	int keep;
	int listen_port;
	CURL *curl;			/* for workbot's listener */
};
extern struct bu_run bu_run;

void bu_run_start(const char *name, unsigned overall_s);
/* Print "<name>: ..." and exit(1) (the clean-up runs). */
void bu_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

int64_t bu_now_ms(void);
int64_t bu_now_us(void);		/* CLOCK_MONOTONIC, like the fake's t_us */
void bu_sleep_ms(long ms);
void bu_sleep_us(long us);

/* rm -rf dir, only when it starts with prefix (e.g. "/tmp/ack_bench."). */
void bu_rm_tree(const char *dir, const char *prefix);
/* A loopback port that was free a moment ago (the listener binds it next). */
int bu_free_port(void);
/* Run argv to completion, stdout+stderr appended to out_path: exit code or -1. */
int bu_run_wait(const char *const argv[], const char *out_path);
/* fork+exec `workbot run -c conf --log-level info`, output to log_path; the
 * child dies with the bench (PR_SET_PDEATHSIG). The pid, or -1. */
pid_t bu_spawn_workbot(const char *workbot, const char *conf, const char *log_path);
/* SIGTERM, wait ≤ 12 s (a clean stop closes its store properly), then KILL. */
void bu_stop_workbot(pid_t pid);
/* RssAnon and VmRSS (KiB) from /proc/PID/status: 0, or -1. */
int bu_proc_mem(pid_t pid, long *rss_anon, long *vmrss);
/* Baked-in path if executable, else rel under the build dir holding this
 * binary (build/tests/bench/X → build/rel). */
const char *bu_default_path(const char *baked, const char *rel, char *buf, size_t size);
/* The bench config: [slack] (connections 2, workers 4), [store], [listener]
 * on 127.0.0.1:port, then `extra` verbatim (NULL for none). Mode 0600. */
int bu_write_conf(const char *path, const char *api_url, const char *tmp, const char *key_file,
    int port, const char *extra);

/* workbot's listener over one curl handle. */
struct bu_sink {
	char buf[256 * 1024];
	size_t len;
};
/* GET http://127.0.0.1:port/path into s: the HTTP status or -1. */
int bu_wb_get(CURL *curl, int port, const char *path, struct bu_sink *s);
/* sockets_live from /healthz, or -1. */
int bu_sockets_live(CURL *curl, int port);

#endif
