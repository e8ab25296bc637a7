/*
 * template: the `{{name}}` / `{{response.a.b}}` placeholder syntax of recipe
 * templates (path, body, reply, button values), scanned in one place so the
 * config check and the renderer can never disagree about what a placeholder
 * is.
 *
 * A placeholder is `{{` + a param name `[a-z0-9_]+` + `}}`, or `{{response.`
 * + dot-separated segments of `[A-Za-z0-9_-]` + `}}`. Any other `{{` is an
 * error; a lone `}}` is plain text. Pure functions: any thread, no
 * allocation, no logging.
 */
#ifndef WORKBOT_TEMPLATE_H
#define WORKBOT_TEMPLATE_H

#include <stddef.h>

enum template_kind {
	TEMPLATE_TEXT,		/* literal bytes */
	TEMPLATE_PARAM,		/* s/len: the param name */
	TEMPLATE_RESPONSE,	/* s/len: the path after "response.", e.g. "a.b" */
};

struct template_part {
	enum template_kind kind;
	const char *s;
	size_t len;
	size_t off;		/* offset of the part (its "{{" for placeholders) */
	size_t end;		/* offset just past the part */
};

/* Return 0 to go on, or a positive value to stop the scan with it. */
typedef int (*template_fn)(void *arg, const struct template_part *part);

/*
 * Calls `fn` (NULL: only validate) for each part of `tmpl` in order.
 * Returns 0, fn's positive value, or -1 with `*err` set to a static
 * description of a malformed placeholder and `*err_off` to its offset (each
 * may be NULL). The whole template is checked before the first callback,
 * so a malformed template never produces a partial rendering.
 */
int template_scan(const char *tmpl, template_fn fn, void *arg,
    const char **err, size_t *err_off);

#endif
