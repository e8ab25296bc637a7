/*
 * oauth_page: the HTML pages of the login flow (internal to oauth.c).
 *
 * Each page is short, self-contained (inline style attributes only: the
 * CSP is default-src 'none'; style-src 'unsafe-inline'), has a title, no
 * script, no link to anywhere and no redirect. Every value that reaches a
 * page goes through oauth_html_escape(); the callers pass plain text.
 */
#ifndef WORKBOT_OAUTH_PAGE_H
#define WORKBOT_OAUTH_PAGE_H

#include <stdbool.h>

struct oauth_page;

/* A page with one heading and one sentence (plain text, escaped here). */
void oauth_page_message(struct oauth_page *p, int status, const char *title,
    const char *heading, const char *text);

struct oauth_page_confirm {
	const char *app_title;
	const char *account;		/* "" when the provider did not say */
	bool        shared;
	const char *slack_name;		/* real name, else the user id */
	const char *slack_email;	/* "" when unknown */
	const char *workspace;		/* team name, else the team id */
	const char *action_url;		/* <public_url>/oauth/confirm */
	const char *id;			/* the waiting record's id */
	const char *form_token;
	unsigned    minutes;		/* how long the page stays valid */
};
void oauth_page_confirm(struct oauth_page *p, const struct oauth_page_confirm *a);

#endif
