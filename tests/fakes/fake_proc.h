/*
 * fake_proc: start a fake server (fake_slack, fake_oauth) as a child on port
 * 0 and learn its port from its first stdout line "PORT n"; stop it.
 * Shared by the fakes' C client helpers.
 */
#ifndef FAKE_PROC_H
#define FAKE_PROC_H

#include <sys/types.h>

/* argv: path --port 0 extra_args... (at most 28 extra). 0 with *pid and *port
 * once the port line arrived within timeout_ms, else -1 (child killed). */
int fake_proc_spawn(const char *path, const char *const *extra_args, int timeout_ms,
		    pid_t *pid, int *port);

/* SIGTERM, wait at most 5 s, then SIGKILL. The child's exit status
 * (128 + signal when killed by one), -1 when it had to be killed. */
int fake_proc_stop(pid_t pid);

#endif
