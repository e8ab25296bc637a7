/*
 * render: recipe templates filled in, each value escaped for where it
 * lands (DESIGN §5): URL path segments, JSON strings, Slack mrkdwn, and
 * button values made by workbot as JSON `{recipe, params}`.
 *
 * Placeholders are whatever template_scan() says they are; nothing here
 * parses `{{` itself. Params are a struct cmdtext_params (cmdtext_parse()
 * or render_button_parse()); a param that is absent renders as "".
 * `response` is the app's answer parsed once by render_response_parse()
 * (NULL: there was none, or it was not JSON; then every
 * `{{response.…}}` renders as "").
 *
 * Response paths: `{{response.a.b}}` walks object members by exact name;
 * at an array a segment of decimal digits (no sign, no leading zero) is an
 * index (`response.items.0.id`); anything else is a missing path. A string
 * renders as is, any other JSON value as its compact JSON text.
 *
 * Pure functions: no I/O, no logging, no global state (cJSON's hooks are
 * left at their defaults); any thread may call them. Outputs are malloc'd
 * and owned by the caller; they are written only on success. Errors go to
 * the caller's buffer `err` (size `errsize`) as one plain sentence that
 * names params, never values (a value may be a user's secret-ish text).
 */
#ifndef WORKBOT_RENDER_H
#define WORKBOT_RENDER_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "workbot/cmdtext.h"

struct config;
struct config_button;
struct config_recipe;

#define RENDER_MAX_PATH		8192		/* rendered path and query */
#define RENDER_MAX_BODY		(64 * 1024)	/* rendered JSON body */
#define RENDER_MAX_REPLY	40000		/* Slack's message text limit */
#define RENDER_MAX_BUTTON_VALUE	2000		/* Block Kit: button value */

/*
 * The app's answer as JSON, or NULL when `len` bytes of `body` are not
 * exactly one JSON document (an HTML error page, empty, a NUL inside).
 * Free with cJSON_Delete().
 */
cJSON *render_response_parse(const char *body, size_t len);

/* The value at `path` (`a.b.0.c`, `len` bytes), or NULL. `response` may be NULL. */
const cJSON *render_response_lookup(const cJSON *response, const char *path, size_t len);

/*
 * A recipe `path`: each `{{param}}` URL-escaped as one path segment
 * (curl_easy_escape: everything but A-Z a-z 0-9 - . _ ~ is %XX, so `/`,
 * `?`, `#` and `%` in a value stay inside it). A path segment that a
 * placeholder touches must not end up empty, `.` or `..` (a value glued to
 * text, `/v{{n}}`, may be empty). After the first `?` of the template the
 * values are query values: escaped the same way, and empty is fine there.
 * Returns 0 and `*out`, or -1 (bad segment, over RENDER_MAX_PATH,
 * `{{response…}}` in a path, malformed template).
 */
int render_path(const char *tmpl, const struct cmdtext_params *params, char **out,
    char *err, size_t errsize);

/*
 * `base` (an app's api_url or a checked instance_url: http(s), a host, an
 * optional path, no user info, query or fragment; trailing `/` ignored) +
 * `path` (from render_path(): starts with exactly one `/`, no `\`, `#`,
 * blanks or control bytes), with exactly one `/` between them. The joined
 * URL is re-parsed with curl's URL API and must have the base's scheme,
 * host and port, so the result can never leave the app's host.
 * Returns 0 and `*out`, or -1.
 */
int render_url_join(const char *base, const char *path, char **out, char *err,
    size_t errsize);

/*
 * A recipe `body` (JSON): each `{{param}}` JSON-string-escaped (`"` `\`,
 * control bytes as \u00XX, invalid UTF-8 as U+FFFD). A placeholder outside
 * a string literal, or right after a backslash, is refused (the config
 * check should have caught it; this is the last line). The result is
 * parsed with cJSON before it is returned: it is always one valid JSON
 * document of at most RENDER_MAX_BODY bytes, or an error.
 */
int render_body(const char *tmpl, const struct cmdtext_params *params, char **out,
    char *err, size_t errsize);

/*
 * A recipe `reply` (Slack mrkdwn): the template's own text as written (the
 * admin's markup), `{{param}}` and `{{response.…}}` mrkdwn-escaped, so a
 * value holding `<!channel>` shows as text. A result over RENDER_MAX_REPLY
 * bytes is cut with "…" (cmdtext_truncate()), not refused: the app call
 * has already happened and its reply must still be shown.
 * Returns 0 and `*out`, or -1 on a malformed template.
 */
int render_reply(const char *tmpl, const struct cmdtext_params *params,
    const cJSON *response, char **out, char *err, size_t errsize);

/*
 * A recipe button's value: `{"recipe":"<target name>","params":{…}}`,
 * each param template rendered with the invoking `params` and `response`
 * and NOT escaped (cJSON escapes it as JSON). Labels need no rendering:
 * they are plain text in the config (no placeholders). Over
 * RENDER_MAX_BUTTON_VALUE bytes is an error. Returns 0 and `*out`, or -1.
 */
int render_button_value(const struct config_button *b, const struct cmdtext_params *params,
    const cJSON *response, char **out, char *err, size_t errsize);

/*
 * The inverse, for a clicked button's `value`, strictly: at most
 * RENDER_MAX_BUTTON_VALUE bytes of one JSON object with exactly the keys
 * `recipe` and `params`; `recipe` a string naming a recipe of `cfg` that
 * has verify_user_access = true (buttons run as the clicker only);
 * `params` an object of string values whose names that recipe declares,
 * none twice, every required one present. Anything else is refused.
 * Returns 0 with `*recipe` and `*params` (cmdtext_params_clear()), or -1.
 */
int render_button_parse(const struct config *cfg, const char *value,
    const struct config_recipe **recipe, struct cmdtext_params *params,
    char *err, size_t errsize);

#endif
