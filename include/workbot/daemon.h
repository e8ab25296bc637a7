/*
 * daemon: `workbot run` — wires config, store, workers, the event loop,
 * the Socket Mode sockets and the listener together, and runs until a
 * signal or a fatal error.
 *
 * Exit status: 0 after SIGTERM/SIGINT (sockets closed, queued jobs given up
 * to 10 s), 1 for a runtime failure a restart may fix, 2 for a
 * configuration problem a restart cannot fix (bad config, key or store
 * refused, a token Slack refuses, Socket Mode disabled for the app).
 */
#ifndef WORKBOT_DAEMON_H
#define WORKBOT_DAEMON_H

/* Main thread, once. */
int daemon_run(const char *config_path);

#endif
