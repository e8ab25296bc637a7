/*
 * config: workbot.conf, parsed and validated into an immutable struct.
 *
 * config_load() reads the whole file, reports every problem it finds (one
 * call of the error callback per problem, each shaped
 * `FILE:LINE: [section] key: what is wrong`) and returns NULL if there was
 * any; otherwise the returned config is complete: every default is filled
 * in, every cross-reference (recipe -> app, button -> recipe) is resolved
 * and every template has been checked against its recipe's params.
 *
 * Ownership and threads: the config owns everything reachable from it,
 * including the secrets. Once config_load() returns, nothing in it changes,
 * so any number of threads may read it without locks. SIGHUP reload parses
 * a fresh config and swaps the pointer; the old one may be freed only when
 * no thread still reads it (that is the swapper's business, not this
 * module's). config_load() may run on any thread, even two at once: it
 * keeps no state between calls (it reads the environment with getenv(), so
 * nobody may call setenv() meanwhile).
 *
 * The structs below are read-only data. Each value is wrapped with the line
 * it was set on (`.v` the value, `.line` the line; line 0 means the value is
 * the default) so later modules can cite `file:line` in their own errors.
 * Secrets are `struct secret` (see secret.h): never print them.
 */
#ifndef WORKBOT_CONFIG_H
#define WORKBOT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "workbot/secret.h"

/* Values, each with the line it came from (0: the default). */
struct config_str    { const char *v; unsigned line; };	/* v NULL: unset */
struct config_uint   { uint64_t v; unsigned line; };
struct config_bool   { bool v; unsigned line; };
struct config_enum   { int v; unsigned line; };		/* enum config_* below */
struct config_secret { struct secret *v; unsigned line; };	/* v NULL: unset */
/* A list of words: Slack ids, host patterns. */
struct config_list   { const char *const *v; size_t n; unsigned line; };

/* [listener] bind: a numeric address and port, never a host name. */
struct config_bind {
	struct sockaddr_storage addr;	/* AF_INET or AF_INET6, port set */
	socklen_t addrlen;
	uint16_t port;
	const char *v;			/* normalised text: 127.0.0.1:8085, [::1]:8085 */
	bool loopback;			/* 127.0.0.0/8 or ::1 */
	unsigned line;
};

/* A recipe's command: lower-cased words; `v` is them joined by one space. */
struct config_words { const char *const *words; size_t n; const char *v; unsigned line; };

/* A recipe's params: `name amount? close_date?` */
struct config_param  { const char *name; bool optional; };
struct config_params { const struct config_param *v; size_t n; unsigned line; };

/* key=value pairs: authorize_params (values literal: escaped when sent) and
 * button params (values are templates). */
struct config_kv  { const char *key; const char *value; };
struct config_kvs { const struct config_kv *v; size_t n; unsigned line; };

enum config_auth   { CONFIG_AUTH_OAUTH2, CONFIG_AUTH_TOKEN, CONFIG_AUTH_NONE };
enum config_client_auth { CONFIG_CLIENT_AUTH_BASIC, CONFIG_CLIENT_AUTH_BODY };
enum config_method {
	CONFIG_METHOD_GET, CONFIG_METHOD_POST, CONFIG_METHOD_PUT,
	CONFIG_METHOD_PATCH, CONFIG_METHOD_DELETE,
};
/* "oauth2", "basic", "POST", ... */
const char *config_auth_name(int auth);
const char *config_client_auth_name(int client_auth);
const char *config_method_name(int method);

struct config_slack {
	unsigned line;				/* of the [slack] header */
	struct config_secret app_token;		/* xapp-..., apps.connections.open */
	struct config_secret bot_token;		/* xoxb-..., Web API */
	struct config_str    api_url;		/* always ends with '/' */
	struct config_uint   connections;	/* 1..4, default 2 */
	struct config_uint   workers;		/* 1..64, default 4 */
	struct config_uint   ping_interval;	/* seconds, 1..60, default 5 */
	struct config_str    ca_file;		/* NULL: the system CA store */
};

struct config_store {
	unsigned line;
	struct config_str  path;		/* LMDB environment directory */
	struct config_str  key_file;
	struct config_uint map_size;		/* bytes, default 1 GiB */
	struct config_uint audit_days;		/* default 90 */
};

struct config_listener {
	unsigned line;				/* 0 when the section is absent */
	struct config_bind bind;		/* default 127.0.0.1:8085 */
	struct config_str  public_url;		/* no trailing '/'; default http://<bind> */
};

struct config_app {
	const char *name;			/* [a-z0-9_-]{1,32} */
	unsigned line;				/* of the [app NAME] header */
	struct config_str    title;		/* default: the name */
	struct config_enum   auth;		/* enum config_auth */
	struct config_str    client_id;		/* oauth2 */
	struct config_secret client_secret;	/* oauth2 */
	struct config_str    authorize_url;	/* oauth2 */
	struct config_str    token_url;		/* oauth2 */
	struct config_str    revoke_url;	/* oauth2, optional */
	struct config_str    userinfo_url;	/* oauth2, optional */
	struct config_str    scopes;		/* oauth2, optional, as written */
	struct config_enum   client_auth;	/* enum config_client_auth, default basic */
	struct config_kvs    authorize_params;	/* oauth2, optional */
	struct config_str    issuer;		/* oauth2, optional (RFC 9207) */
	struct config_list   instance_hosts;	/* oauth2, optional: host or *.suffix, lower case */
	struct config_secret token;		/* auth = token */
	struct config_str    api_url;		/* no trailing '/' */
};

struct config_recipe;

struct config_button {
	const char *label;
	const char *command;			/* as written, lower-cased */
	const struct config_recipe *target;	/* by longest command prefix */
	struct config_kvs params;		/* values are templates */
};
struct config_buttons { const struct config_button *v; size_t n; unsigned line; };

/* [recipe] app: the name as written and the app it names. */
struct config_appref { const char *v; const struct config_app *app; unsigned line; };

struct config_recipe {
	const char *name;
	unsigned line;
	struct config_words  command;
	struct config_str    description;	/* default "" */
	struct config_appref app;
	struct config_bool   verify_user_access;	/* default false */
	struct config_params params;
	struct config_enum   method;		/* enum config_method, default GET */
	struct config_str    path;		/* template, starts with '/' */
	struct config_str    body;		/* JSON template, NULL: none */
	struct config_str    reply;		/* template, NULL: none */
	struct config_buttons buttons;
	struct config_list   allowed_users;	/* U.../W... ids, n 0: anyone */
	struct config_list   allowed_channels;	/* C.../G.../D... ids, n 0: anywhere */
};

struct config {
	const char *file;			/* as passed to config_load() */
	struct config_slack    slack;
	struct config_store    store;
	struct config_listener listener;
	const struct config_app *const *apps;		/* in file order */
	size_t napps;
	const struct config_recipe *const *recipes;	/* in file order */
	size_t nrecipes;
};

/* One call per problem; `msg` has no trailing newline and no secret. */
typedef void (*config_error_fn)(void *arg, const char *msg);

/*
 * Parse and validate `path`. Returns the config, or NULL after reporting
 * every problem through `on_error` (which may be NULL).
 */
struct config *config_load(const char *path, config_error_fn on_error, void *arg);

/*
 * Same, from memory (`name` is used in messages). There is no file, so the
 * check that a file holding inline or file: secrets is not readable by
 * group or others is the caller's; the fuzzer and tests use this.
 */
struct config *config_load_buffer(const char *name, const char *data, size_t len,
    config_error_fn on_error, void *arg);

/* NULL is fine. */
void config_free(struct config *cfg);

/* Lookups by name; NULL when absent. */
const struct config_app *config_app_find(const struct config *cfg, const char *name);
const struct config_recipe *config_recipe_find(const struct config *cfg, const char *name);

/*
 * The recipe whose command is the longest prefix of `words` (compared
 * case-insensitively); `*used` gets its number of words. NULL: none.
 */
const struct config_recipe *config_recipe_match(const struct config *cfg,
    const char *const *words, size_t nwords, size_t *used);

/*
 * Calls `fn(arg, section, key)` for every [slack], [store] or [listener]
 * value that differs between `a` and `b` (these need a restart; apps and
 * recipes are reloadable). Returns the number of differences.
 */
typedef void (*config_diff_fn)(void *arg, const char *section, const char *key);
size_t config_restart_diff(const struct config *a, const struct config *b,
    config_diff_fn fn, void *arg);

#endif
