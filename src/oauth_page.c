/*
 * oauth_page: HTML for the login flow's pages, and the one HTML escaper.
 *
 * How: a small capped string builder; fixed markup is appended raw, every
 * value (app title, account, Slack names, ids, tokens for hidden fields,
 * sentences that quote any of those) through oauth_html_escape(). A page
 * that would outgrow the cap (it cannot with the bounded inputs oauth.c
 * passes) becomes a fixed error page rather than a cut-off one.
 *
 * Never: emit script, an external resource, a link or a redirect; put a
 * value in an attribute or text without escaping it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workbot/oauth.h"
#include "workbot/xmalloc.h"
#include "oauth_page.h"

#define PAGE_CAP (32u * 1024u)

size_t
oauth_html_escape(char *dst, size_t size, const char *src)
{
	size_t need = 0, out = 0;
	bool full = false;

	for (const char *s = src ? src : ""; *s != '\0'; s++) {
		const char *rep;
		char one[2] = { *s, '\0' };
		size_t n;

		switch (*s) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		default: rep = one; break;
		}
		n = strlen(rep);
		need += n;
		/* Whole entities only: stop at the first one that does not fit. */
		if (!full && size > 0 && out + n < size) {
			memcpy(dst + out, rep, n);
			out += n;
		} else {
			full = true;
		}
	}
	if (size > 0)
		dst[out] = '\0';
	return need;
}

struct pb {
	char  *buf;
	size_t len, cap;
	bool   over;
};

static void
pb_raw(struct pb *b, const char *s)
{
	size_t n = strlen(s);

	if (b->over)
		return;
	if (b->len + n + 1 > PAGE_CAP) {
		b->over = true;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 2048;

		while (cap < b->len + n + 1)
			cap *= 2;
		if (cap > PAGE_CAP)
			cap = PAGE_CAP;
		b->buf = xrealloc(b->buf, cap);
		b->cap = cap;
	}
	memcpy(b->buf + b->len, s, n + 1);
	b->len += n;
}

static void
pb_text(struct pb *b, const char *s)
{
	size_t need = oauth_html_escape(NULL, 0, s);
	char *tmp = xmalloc(need + 1);

	oauth_html_escape(tmp, need + 1, s);
	pb_raw(b, tmp);
	free(tmp);
}

static void
pb_head(struct pb *b, const char *title)
{
	pb_raw(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
	    "<meta name=\"referrer\" content=\"no-referrer\"><title>");
	pb_text(b, title);
	pb_raw(b, "</title></head>\n<body style=\"font-family:system-ui,-apple-system,'Segoe UI',"
	    "sans-serif;max-width:34em;margin:4em auto;padding:0 1em;color:#1d1c1d;"
	    "line-height:1.5\">\n");
}

static void
pb_finish(struct pb *b, struct oauth_page *p, int status)
{
	static const char fallback[] =
	    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	    "<title>Error</title></head><body><p>workbot could not show this page.</p>"
	    "</body></html>\n";

	pb_raw(b, "</body></html>\n");
	free(p->html);
	if (b->over) {
		free(b->buf);
		p->html = xstrdup(fallback);
		p->len = sizeof(fallback) - 1;
		p->status = 500;
		return;
	}
	p->html = b->buf;
	p->len = b->len;
	p->status = status;
}

void
oauth_page_message(struct oauth_page *p, int status, const char *title, const char *heading,
    const char *text)
{
	struct pb b = { 0 };

	pb_head(&b, title);
	pb_raw(&b, "<h1 style=\"font-size:1.4em;font-weight:600\">");
	pb_text(&b, heading);
	pb_raw(&b, "</h1>\n<p>");
	pb_text(&b, text);
	pb_raw(&b, "</p>\n");
	pb_finish(&b, p, status);
}

static void
pb_strong(struct pb *b, const char *s)
{
	pb_raw(b, "<strong>");
	pb_text(b, s);
	pb_raw(b, "</strong>");
}

void
oauth_page_confirm(struct oauth_page *p, const struct oauth_page_confirm *a)
{
	static const char button[] =
	    "padding:.5em 1.4em;margin-right:.8em;font-size:1em;border-radius:4px;cursor:pointer;";
	struct pb b = { 0 };
	char line[96];

	pb_head(&b, "Confirm connection");
	pb_raw(&b, "<h1 style=\"font-size:1.4em;font-weight:600\">Confirm connection</h1>\n<p>Connect ");
	pb_text(&b, a->app_title);
	if (a->account[0] != '\0') {
		pb_raw(&b, " account ");
		pb_strong(&b, a->account);
	} else {
		pb_raw(&b, " account <em>(");
		pb_text(&b, a->app_title);
		pb_raw(&b, " did not say which one)</em>");
	}
	if (a->shared) {
		pb_raw(&b, " as the <strong>shared connection used by every recipe without personal "
		    "access</strong> in ");
		pb_strong(&b, a->workspace);
		pb_raw(&b, "?</p>\n");
	} else {
		pb_raw(&b, " to Slack user <strong>");
		pb_text(&b, a->slack_name);
		if (a->slack_email[0] != '\0') {
			pb_raw(&b, " (");
			pb_text(&b, a->slack_email);
			pb_raw(&b, ")");
		}
		pb_raw(&b, "</strong> in ");
		pb_strong(&b, a->workspace);
		pb_raw(&b, "?</p>\n");
	}
	pb_raw(&b, "<p style=\"color:#616061\">If you did not start this login from Slack yourself, "
	    "press Cancel: nothing will be stored.</p>\n<form method=\"post\" action=\"");
	pb_text(&b, a->action_url);
	pb_raw(&b, "\">\n<input type=\"hidden\" name=\"id\" value=\"");
	pb_text(&b, a->id);
	pb_raw(&b, "\">\n<input type=\"hidden\" name=\"form_token\" value=\"");
	pb_text(&b, a->form_token);
	pb_raw(&b, "\">\n<button type=\"submit\" name=\"action\" value=\"connect\" style=\"");
	pb_raw(&b, button);
	pb_raw(&b, "background:#007a5a;color:#fff;border:0\">Connect</button>\n"
	    "<button type=\"submit\" name=\"action\" value=\"cancel\" style=\"");
	pb_raw(&b, button);
	pb_raw(&b, "background:#fff;color:#1d1c1d;border:1px solid #868686\">Cancel</button>\n</form>\n");
	snprintf(line, sizeof(line), "This page is valid for %u minutes.", a->minutes);
	pb_raw(&b, "<p style=\"color:#616061;font-size:.9em\">");
	pb_text(&b, line);
	pb_raw(&b, "</p>\n");
	pb_finish(&b, p, 200);
}
