/*
 * oauth_http: the OAuth routes (/oauth/...) of the loopback listener, on top of
 * oauth.c. Used by the daemon and by `workbot connect APP --shared` when
 * no daemon holds the listener address.
 *
 *   GET  /oauth/start/<id>   answered on the event thread (store read only)
 *   GET  /oauth/callback     deferred: a worker runs oauth_callback()
 *   POST /oauth/confirm      deferred: a worker runs oauth_confirm(), then
 *                            hands the result to `on_confirmed`
 *
 * Deferred requests find their connection again by the listener's
 * generation id, so an answer for a browser that left is dropped.
 *
 * Threads: oauth_http_new/free and the routes on the event thread;
 * `on_confirmed` runs on the worker that ran the confirm.
 */
#ifndef WORKBOT_OAUTH_HTTP_H
#define WORKBOT_OAUTH_HTTP_H

#include <stddef.h>

struct config;
struct http_client;
struct jobq;
struct listener;
struct listener_route;
struct loop;
struct oauth;
struct oauth_confirmed;
struct oauth_http;

struct oauth_http_opts {
	struct loop *loop;
	struct jobq *jobq;
	struct oauth *oauth;
	/* The config to use for one request, held until released (any thread). */
	const struct config *(*cfg_get)(void *arg, void **hold);
	void (*cfg_put)(void *arg, void *hold);
	/* After Connect or Cancel (worker). NULL: nothing more to do. */
	void (*on_confirmed)(void *arg, struct http_client *c, const struct config *cfg,
	    struct oauth_confirmed *done);
	void *arg;
};

struct oauth_http *oauth_http_new(const struct oauth_http_opts *opts);
/* After the listener is freed and the job queue stopped. NULL is fine. */
void oauth_http_free(struct oauth_http *h);

/* The route table to pass to listener_new (lives as long as h). */
const struct listener_route *oauth_http_routes(struct oauth_http *h, size_t *n);
/* Tell it the listener (after listener_new), for deferred answers. */
void oauth_http_set_listener(struct oauth_http *h, struct listener *l);

#endif
