/*
 * cmdtext: reading what a Slack user typed (DESIGN §6 "Commands").
 *
 * The pipeline for a message is
 *
 *	cmdtext_normalise()       Slack markup and entities -> plain text
 *	cmdtext_strip_mention()   app_mention only: drop the bot's <@U…>
 *	cmdtext_parse()           built-in, recipe + params, usage error, unknown
 *
 * and, on the way back out, cmdtext_mrkdwn_escape() and cmdtext_truncate()
 * for anything that lands in a Slack message.
 *
 * Pure functions: no I/O, no logging, no global state; any thread may call
 * any of them at any time. Every string they return is malloc'd and owned
 * by the caller (free(), or the matching _free/_clear function). Error
 * messages are plain text for a Slack user: they may quote a few bytes of
 * what the user typed, so mrkdwn-escape them before sending.
 */
#ifndef WORKBOT_CMDTEXT_H
#define WORKBOT_CMDTEXT_H

#include <stddef.h>

struct config;
struct config_recipe;

/*
 * Longer input is refused, not cut. Slack's own limit is 40,000
 * characters; counting bytes may refuse a huge multi-byte message, which
 * is never a command anyway, and keeps every buffer here small.
 */
#define CMDTEXT_MAX_INPUT	40000

/* A quoted piece of user text inside an error message is cut to this. */
#define CMDTEXT_MAX_QUOTE	40

/*
 * Normalise message text as Slack sends it, in DESIGN §6's order:
 * (1) links `<https://x|label>`, `<https://x>` become the URL and
 * `<mailto:a@b.c|label>` the address (the target, never the label); user,
 * channel and special mentions (`<@U…>`, `<#C…|name>`, `<!here>`,
 * `<!subteam^S…|@team>`, `<!date^…>`) are kept byte for byte; (2) `&lt;`
 * `&gt;` `&amp;` become `<` `>` `&`, in one pass (`&amp;lt;` -> `&lt;`).
 * A `<` without a closing `>` is kept as is.
 *
 * Returns 0 and `*out` (malloc'd, never longer than `text`), or -1 with
 * `err` (size `errsize`) when `text` is longer than CMDTEXT_MAX_INPUT bytes.
 */
int cmdtext_normalise(const char *text, char **out, char *err, size_t errsize);

/*
 * For `app_mention` text: remove the bot's own mention (`<@BOTID>` or
 * `<@BOTID|name>`) and the blanks around it. The leading one if the text
 * starts with it, else the first one that stands as a whole word (a
 * mention glued to other text, as in `owner=<@BOTID>`, is a value and is
 * left alone). The text is then trimmed. Always succeeds: `*out` (malloc'd)
 * is the trimmed text when there is no such mention.
 * Returns 1 if a mention was removed, 0 if not.
 */
int cmdtext_strip_mention(const char *text, const char *bot_user_id, char **out);

/* One token: a word, or `key=value` / `key="quoted value"`. */
struct cmdtext_token {
	char *key;		/* NULL: a plain word */
	char *value;		/* the word, or the (unquoted) value */
};

struct cmdtext_tokens {
	struct cmdtext_token *v;
	size_t n;
};

/*
 * Split `text` into tokens on blanks (space, tab, CR, LF and the no-break
 * space U+00A0 that Slack clients insert). A word is `key=value` when the
 * bytes before its first '=' are 1..32 of [A-Za-z0-9_-]; the value runs to
 * the next blank, or, when it starts with '"', to the closing quote, with
 * `\"` and `\\` standing for `"` and `\` (any other backslash is literal)
 * and blanks kept. A closing quote must end the word.
 *
 * Returns 0 and fills `*out` (cmdtext_tokens_free()), or -1 with `err`
 * (unterminated quote, text after a closing quote, too long).
 */
int cmdtext_tokenise(const char *text, struct cmdtext_tokens *out, char *err, size_t errsize);
void cmdtext_tokens_free(struct cmdtext_tokens *t);

/* Parameter values by name: a typed command, or a clicked button's value. */
struct cmdtext_param {
	char *name;		/* the recipe's declared (lower-case) name */
	char *value;
};

struct cmdtext_params {
	struct cmdtext_param *v;
	size_t n;
};

/* The value of `name`, or NULL when it was not given. */
const char *cmdtext_params_get(const struct cmdtext_params *p, const char *name);
/* Append a copy of name and value (no duplicate check: callers do that). */
void cmdtext_params_add(struct cmdtext_params *p, const char *name, const char *value);
/* Frees the entries and zeroes `p`; NULL is fine. */
void cmdtext_params_clear(struct cmdtext_params *p);

enum cmdtext_kind {
	CMDTEXT_EMPTY,		/* nothing but blanks (e.g. a bare @mention) */
	CMDTEXT_HELP,
	CMDTEXT_CONNECTIONS,
	CMDTEXT_RECIPE,
	CMDTEXT_UNKNOWN,	/* no built-in, no recipe command */
};

struct cmdtext_cmd {
	enum cmdtext_kind kind;
	const struct config_recipe *recipe;	/* RECIPE; also on a usage error */
	struct cmdtext_params params;		/* RECIPE: in the order typed */
	char *error;				/* after -1: what is wrong */
	char *usage;				/* after -1, when recipe is set */
};

/*
 * Parse normalised (and mention-stripped) text against `cfg`.
 *
 * `help` and `connections` are recognised first, case-insensitively, and
 * only as the whole text (`help me` is not `help`). Else the leading plain
 * words select the recipe with the longest matching command
 * (config_recipe_match()); every token after them must be `key=value` with
 * a key the recipe declares (compared case-insensitively), each at most
 * once, and every required param must be present. An empty value
 * (`name=` or `name=""`) counts as given.
 *
 * Returns 0 with `cmd->kind` set (RECIPE: `recipe` and `params` filled), or
 * -1 on a usage error: `cmd->error` names the first problem and, when a
 * recipe command matched, `cmd->recipe` and `cmd->usage` (its usage line,
 * cmdtext_usage()) are set. Unknown text is not an error: kind UNKNOWN.
 * `cmd` is always initialised; release it with cmdtext_cmd_clear().
 */
int cmdtext_parse(const struct config *cfg, const char *text, struct cmdtext_cmd *cmd);
void cmdtext_cmd_clear(struct cmdtext_cmd *cmd);

/* `create opportunity name=… [amount=…] [close_date=…]` (malloc'd). */
char *cmdtext_usage(const struct config_recipe *r);

/*
 * Slack mrkdwn escaping: `&` -> `&amp;`, `<` -> `&lt;`, `>` -> `&gt;`, so
 * that text a user typed (`<!channel>`) can never ping or link anyone.
 * `len` bytes of `s`; the result is malloc'd and NUL-terminated.
 */
char *cmdtext_mrkdwn_escape(const char *s, size_t len);

/*
 * Cut `s` in place so that it is at most `max` bytes (max >= 4), ending in
 * "…" when cut. The cut never splits a UTF-8 sequence or an `&amp;`
 * `&lt;` `&gt;` entity, so it is safe on escaped mrkdwn. Block Kit's limits
 * are in characters; bytes are never fewer, so a byte limit is safe.
 * Returns the new length.
 */
size_t cmdtext_truncate(char *s, size_t max);

#endif
