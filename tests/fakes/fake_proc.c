/*
 * fake_proc: child process handling for the fakes' client helpers.
 * Every wait is bounded (the spawn timeout; 5 s for a stop).
 */
#include "fake_proc.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int
fake_proc_spawn(const char *path, const char *const *extra_args, int timeout_ms,
		pid_t *pid_out, int *port_out)
{
	const char *argv[32];
	int pfd[2], n = 0, port = -1;
	char line[64];
	size_t used = 0;
	pid_t pid;
	struct timespec t0, t1;

	argv[n++] = path;
	argv[n++] = "--port";
	argv[n++] = "0";
	while (extra_args && *extra_args && n < 30)
		argv[n++] = *extra_args++;
	argv[n] = NULL;
	if (pipe(pfd))
		return -1;
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(pfd[1], STDOUT_FILENO);
		close(pfd[0]);
		close(pfd[1]);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p = { pfd[0], POLLIN, 0 };
		long el;
		ssize_t r;

		clock_gettime(CLOCK_MONOTONIC, &t1);
		el = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		if (el >= timeout_ms || used >= sizeof(line) - 1)
			break;
		if (poll(&p, 1, (int)(timeout_ms - el)) <= 0)
			continue;
		r = read(pfd[0], line + used, sizeof(line) - 1 - used);
		if (r <= 0)
			break;
		used += (size_t)r;
		line[used] = '\0';
		if (strchr(line, '\n')) {
			if (sscanf(line, "PORT %d", &port) != 1)
				port = -1;
			break;
		}
	}
	close(pfd[0]);
	if (port <= 0 || port > 65535) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	*pid_out = pid;
	*port_out = port;
	return 0;
}

int
fake_proc_stop(pid_t pid)
{
	int status = 0, i;

	kill(pid, SIGTERM);
	for (i = 0; i < 500; i++) { /* 5 s */
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) :
				128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}
