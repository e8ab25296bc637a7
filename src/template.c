/*
 * template: scanning `{{...}}` placeholders.
 *
 * Two passes over the string: the first only validates, so that callers that
 * render (and may write output as they go) never see half a template before
 * an error. It never reads past the terminating NUL and never allocates.
 */
#include <stdbool.h>
#include <string.h>

#include "workbot/template.h"

static bool
param_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static bool
segment_char(char c)
{
	return param_char(c) || (c >= 'A' && c <= 'Z') || c == '-';
}

/*
 * The placeholder starting at tmpl[i] ("{{"): its part, and 0; or -1 with
 * a reason.
 */
static int
placeholder(const char *tmpl, size_t i, struct template_part *p, const char **err)
{
	static const char resp[] = "response.";
	const char *name = tmpl + i + 2;
	size_t n = 0;

	p->off = i;
	if (strncmp(name, resp, sizeof(resp) - 1) == 0) {
		const char *seg = name + sizeof(resp) - 1;
		size_t seglen = 0;

		for (n = 0; seg[n] != '\0' && seg[n] != '}'; n++) {
			if (seg[n] == '.') {
				if (seglen == 0)
					break;
				seglen = 0;
			} else if (segment_char(seg[n])) {
				seglen++;
			} else {
				break;
			}
		}
		if (seg[n] != '}' || seg[n + 1] != '}' || seglen == 0) {
			*err = "malformed {{response...}} placeholder";
			return -1;
		}
		p->kind = TEMPLATE_RESPONSE;
		p->s = seg;
		p->len = n;
		p->end = (size_t)(seg + n + 2 - tmpl);
		return 0;
	}
	while (param_char(name[n]))
		n++;
	if (n == 0 || name[n] != '}' || name[n + 1] != '}') {
		*err = "malformed placeholder (expected {{param}} or {{response.field}})";
		return -1;
	}
	p->kind = TEMPLATE_PARAM;
	p->s = name;
	p->len = n;
	p->end = (size_t)(name + n + 2 - tmpl);
	return 0;
}

static int
walk(const char *tmpl, template_fn fn, void *arg, const char **err, size_t *err_off)
{
	size_t i = 0, text = 0;
	struct template_part p;
	int rc;

	while (tmpl[i] != '\0') {
		if (tmpl[i] != '{' || tmpl[i + 1] != '{') {
			i++;
			continue;
		}
		if (placeholder(tmpl, i, &p, err) < 0) {
			if (err_off != NULL)
				*err_off = i;
			return -1;
		}
		if (fn != NULL && i > text) {
			struct template_part t = {
				TEMPLATE_TEXT, tmpl + text, i - text, text, i,
			};
			if ((rc = fn(arg, &t)) != 0)
				return rc;
		}
		if (fn != NULL && (rc = fn(arg, &p)) != 0)
			return rc;
		i = text = p.end;
	}
	if (fn != NULL && i > text) {
		struct template_part t = { TEMPLATE_TEXT, tmpl + text, i - text, text, i };
		if ((rc = fn(arg, &t)) != 0)
			return rc;
	}
	return 0;
}

int
template_scan(const char *tmpl, template_fn fn, void *arg, const char **err,
    size_t *err_off)
{
	const char *dummy;

	if (err == NULL)
		err = &dummy;
	if (walk(tmpl, NULL, NULL, err, err_off) != 0)
		return -1;
	return walk(tmpl, fn, arg, err, err_off);
}
