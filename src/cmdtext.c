/*
 * cmdtext: from the text Slack delivers to a command, and back to mrkdwn.
 *
 * How it works. Normalising is one left-to-right scan: a real `<` opens
 * Slack markup up to the next `>` (Slack sends a typed `<` as `&lt;`, so a
 * real one inside markup cannot occur); a link becomes its target, a
 * mention is copied untouched, and `&lt;` `&gt;` `&amp;` are decoded as
 * they are met, so a decoded byte is never looked at again (one pass:
 * `&amp;lt;` is `&lt;`). Every step only shrinks the text, which bounds the
 * output by the input. Tokenising and parsing work on the normalised text;
 * matching commands is config_recipe_match()'s job, not repeated here.
 *
 * What it must never do: hand back user text in a form that could ping or
 * link in Slack (cmdtext_mrkdwn_escape() is the one way text goes out),
 * read past a NUL, or grow a buffer without a bound. Error messages quote
 * user text only in small, cut pieces (CMDTEXT_MAX_QUOTE).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "workbot/cmdtext.h"
#include "workbot/config.h"
#include "workbot/util.h"
#include "workbot/xmalloc.h"

#define MAX_KEY		32	/* longest `key` in key=value; param names are <= 32 */

/* Bytes of the blank at `s` (space, tab, CR, LF: 1; U+00A0: 2), else 0. */
static size_t
blank_len(const char *s)
{
	if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		return 1;
	if ((unsigned char)s[0] == 0xc2 && (unsigned char)s[1] == 0xa0)
		return 2;
	return 0;
}

static const char *
skip_blanks(const char *s)
{
	size_t n;

	while ((n = blank_len(s)) > 0)
		s += n;
	return s;
}

/* Length of s[0..len) without trailing blanks. */
static size_t
rtrim_len(const char *s, size_t len)
{
	for (;;) {
		if (len >= 1 && blank_len(s + len - 1) == 1)
			len--;
		else if (len >= 2 && (unsigned char)s[len - 2] == 0xc2 &&
		    (unsigned char)s[len - 1] == 0xa0)
			len -= 2;
		else
			return len;
	}
}

/* ---- normalising -------------------------------------------------------- */

static const struct {
	const char *entity;
	size_t len;
	char c;
} entities[] = {
	{ "&lt;", 4, '<' },
	{ "&gt;", 4, '>' },
	{ "&amp;", 5, '&' },
};

/* Copy s[0..len) to *o decoding entities; returns the new end. */
static char *
copy_decoded(char *o, const char *s, size_t len)
{
	size_t i = 0, k;

	while (i < len) {
		if (s[i] == '&') {
			for (k = 0; k < sizeof(entities) / sizeof(entities[0]); k++) {
				if (len - i >= entities[k].len &&
				    memcmp(s + i, entities[k].entity, entities[k].len) == 0)
					break;
			}
			if (k < sizeof(entities) / sizeof(entities[0])) {
				*o++ = entities[k].c;
				i += entities[k].len;
				continue;
			}
		}
		*o++ = s[i++];
	}
	return o;
}

int
cmdtext_normalise(const char *text, char **out, char *err, size_t errsize)
{
	size_t len = strnlen(text, CMDTEXT_MAX_INPUT + 1), i = 0, plain;
	char *buf, *o;

	if (len > CMDTEXT_MAX_INPUT) {
		util_seterr(err, errsize, "the message is too long (more than %d bytes)",
		    CMDTEXT_MAX_INPUT);
		return -1;
	}
	o = buf = xmalloc(len + 1);
	while (i < len) {
		const char *close;
		size_t clen, tlen;

		/* Plain text up to the next markup: entities decoded. */
		plain = strcspn(text + i, "<");
		o = copy_decoded(o, text + i, plain);
		i += plain;
		if (i == len)
			break;
		close = text + i + 1 + strcspn(text + i + 1, "<>");
		if (*close != '>') {
			/* Not markup after all: keep the `<` and read on. */
			*o++ = text[i++];
			continue;
		}
		clen = (size_t)(close - (text + i + 1));
		if (clen == 0 || text[i + 1] == '@' || text[i + 1] == '#' || text[i + 1] == '!') {
			/*
			 * A mention is Slack markup with its own escaping inside
			 * (`<#C1|r&amp;d>`): kept byte for byte, it can be sent
			 * back to Slack and still be the same mention.
			 */
			memcpy(o, text + i, clen + 2);
			o += clen + 2;
		} else {
			const char *target = text + i + 1;

			tlen = strcspn(target, "|>");
			if (tlen >= 7 && strncasecmp(target, "mailto:", 7) == 0) {
				target += 7;
				tlen -= 7;
			}
			o = copy_decoded(o, target, tlen);
		}
		i += clen + 2;
	}
	*o = '\0';
	*out = buf;
	return 0;
}

/* ---- the bot's own mention ---------------------------------------------- */

/*
 * If `p` is `<@ID>` or `<@ID|name>`, its length, else 0.
 */
static size_t
mention_len(const char *p, const char *id, size_t idlen)
{
	const char *q;

	if (p[0] != '<' || p[1] != '@' || strncmp(p + 2, id, idlen) != 0)
		return 0;
	q = p + 2 + idlen;
	if (*q == '|')
		q += strcspn(q, "<>");
	if (*q != '>')
		return 0;
	return (size_t)(q + 1 - p);
}

int
cmdtext_strip_mention(const char *text, const char *bot_user_id, char **out)
{
	size_t idlen = bot_user_id != NULL ? strlen(bot_user_id) : 0, n = 0, blen;
	const char *s = skip_blanks(text), *p = NULL, *after;
	char *buf;

	if (idlen > 0) {
		if ((n = mention_len(s, bot_user_id, idlen)) > 0) {
			p = s;
		} else {
			for (p = strstr(s, "<@"); p != NULL; p = strstr(p + 2, "<@")) {
				/* A whole word only: `owner=<@UBOT>` is a value. */
				if (p > s && blank_len(p - 1) == 0 &&
				    !(p - s >= 2 && (unsigned char)p[-2] == 0xc2 &&
				    (unsigned char)p[-1] == 0xa0))
					continue;
				n = mention_len(p, bot_user_id, idlen);
				if (n > 0 && (p[n] == '\0' || blank_len(p + n) > 0))
					break;
			}
		}
	}
	if (p == NULL) {
		blen = rtrim_len(s, strlen(s));
		*out = xstrndup(s, blen);
		return 0;
	}
	/* Before the mention, one space if both sides have words, after it. */
	blen = rtrim_len(s, (size_t)(p - s));
	after = skip_blanks(p + n);
	buf = xmalloc(blen + 1 + strlen(after) + 1);
	memcpy(buf, s, blen);
	if (blen > 0 && *after != '\0')
		buf[blen++] = ' ';
	strcpy(buf + blen, after);
	buf[rtrim_len(buf, strlen(buf))] = '\0';
	*out = buf;
	return 1;
}

/* ---- tokens ------------------------------------------------------------- */

static bool
key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '_' || c == '-';
}

/* Bytes up to the next blank or the end. */
static size_t
word_len(const char *p)
{
	size_t n = 0;

	while (p[n] != '\0' && blank_len(p + n) == 0)
		n++;
	return n;
}

/*
 * Tokenise into `out`; on error the tokens before the bad one are kept in
 * `out` (cmdtext_parse() still wants the command words to name the recipe
 * whose usage to show).
 */
static int
tokenise(const char *text, struct cmdtext_tokens *out, char *err, size_t errsize)
{
	const char *p = text;
	size_t cap = 0;

	memset(out, 0, sizeof(*out));
	if (strnlen(text, CMDTEXT_MAX_INPUT + 1) > CMDTEXT_MAX_INPUT) {
		util_seterr(err, errsize, "the message is too long (more than %d bytes)",
		    CMDTEXT_MAX_INPUT);
		return -1;
	}
	for (;;) {
		struct cmdtext_token t = { NULL, NULL };
		size_t k = 0, vlen = 0;

		p = skip_blanks(p);
		if (*p == '\0')
			return 0;
		while (k <= MAX_KEY && key_char(p[k]))
			k++;
		if (k >= 1 && k <= MAX_KEY && p[k] == '=') {
			const char *v = p + k + 1;

			t.key = xstrndup(p, k);
			if (*v == '"') {
				char *o = t.value = xmalloc(strlen(v));

				for (v++; *v != '"'; v++) {
					if (*v == '\0') {
						util_seterr(err, errsize, "unterminated quote after %s=", t.key);
						goto fail;
					}
					if (*v == '\\' && (v[1] == '"' || v[1] == '\\'))
						v++;
					*o++ = *v;
				}
				*o = '\0';
				v++;
				if (*v != '\0' && blank_len(v) == 0) {
					util_seterr(err, errsize,
					    "text right after the closing quote of %s= (put a space after it)",
					    t.key);
					goto fail;
				}
			} else {
				vlen = word_len(v);
				t.value = xstrndup(v, vlen);
				v += vlen;
			}
			p = v;
		} else {
			vlen = word_len(p);
			t.value = xstrndup(p, vlen);
			p += vlen;
		}
		if (out->n == cap) {
			cap = cap ? cap * 2 : 8;
			out->v = xreallocarray(out->v, cap, sizeof(*out->v));
		}
		out->v[out->n++] = t;
		continue;
fail:
		free(t.key);
		free(t.value);
		return -1;
	}
}

int
cmdtext_tokenise(const char *text, struct cmdtext_tokens *out, char *err, size_t errsize)
{
	struct cmdtext_tokens t;

	if (tokenise(text, &t, err, errsize) != 0) {
		cmdtext_tokens_free(&t);
		return -1;
	}
	*out = t;
	return 0;
}

void
cmdtext_tokens_free(struct cmdtext_tokens *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++) {
		free(t->v[i].key);
		free(t->v[i].value);
	}
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

/* ---- params ------------------------------------------------------------- */

const char *
cmdtext_params_get(const struct cmdtext_params *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (strcmp(p->v[i].name, name) == 0)
			return p->v[i].value;
	return NULL;
}

void
cmdtext_params_add(struct cmdtext_params *p, const char *name, const char *value)
{
	p->v = xreallocarray(p->v, p->n + 1, sizeof(*p->v));
	p->v[p->n].name = xstrdup(name);
	p->v[p->n].value = xstrdup(value);
	p->n++;
}

void
cmdtext_params_clear(struct cmdtext_params *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->n; i++) {
		free(p->v[i].name);
		free(p->v[i].value);
	}
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

/* ---- commands ----------------------------------------------------------- */

/* The built-ins: the whole text, case-insensitively. Recipes cannot take these words (config). */
static const struct {
	const char *word;
	enum cmdtext_kind kind;
} builtins[] = {
	{ "help", CMDTEXT_HELP },
	{ "connections", CMDTEXT_CONNECTIONS },
};

char *
cmdtext_usage(const struct config_recipe *r)
{
	size_t len = strlen(r->command.v) + 1, i;
	char *u, *o;

	/* " [" name "=…]": 2 + name + 1 + 3 ("…" is three bytes) + 1. */
	for (i = 0; i < r->params.n; i++)
		len += strlen(r->params.v[i].name) + 7;
	o = u = xmalloc(len);
	o += sprintf(o, "%s", r->command.v);
	for (i = 0; i < r->params.n; i++) {
		const struct config_param *p = &r->params.v[i];

		o += sprintf(o, p->optional ? " [%s=…]" : " %s=…", p->name);
	}
	return u;
}

/*
 * A piece of user text for an error message: at most CMDTEXT_MAX_QUOTE
 * bytes, cut at a character boundary.
 */
static char *
quote_cut(const char *s)
{
	char *q = xstrndup(s, CMDTEXT_MAX_QUOTE + 4);

	cmdtext_truncate(q, CMDTEXT_MAX_QUOTE);
	return q;
}

static void __attribute__((format(printf, 2, 3)))
cmd_error(struct cmdtext_cmd *cmd, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	cmd->error = xmalloc((size_t)(n < 0 ? 0 : n) + 1);
	va_start(ap, fmt);
	vsnprintf(cmd->error, (size_t)(n < 0 ? 0 : n) + 1, fmt, ap);
	va_end(ap);
	if (cmd->recipe != NULL)
		cmd->usage = cmdtext_usage(cmd->recipe);
}

static const struct config_param *
declared(const struct config_recipe *r, const char *key)
{
	size_t i;

	for (i = 0; i < r->params.n; i++)
		if (strcasecmp(r->params.v[i].name, key) == 0)
			return &r->params.v[i];
	return NULL;
}

int
cmdtext_parse(const struct config *cfg, const char *text, struct cmdtext_cmd *cmd)
{
	struct cmdtext_tokens t;
	const struct config_recipe *r;
	const char **words;
	const char *s = skip_blanks(text);
	char terr[128];
	size_t len, i, nwords, used = 0;
	int trc, rc = -1;

	memset(cmd, 0, sizeof(*cmd));
	len = rtrim_len(s, strnlen(s, CMDTEXT_MAX_INPUT + 1));
	if (len == 0) {
		cmd->kind = CMDTEXT_EMPTY;
		return 0;
	}
	for (i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
		if (strlen(builtins[i].word) == len && strncasecmp(s, builtins[i].word, len) == 0) {
			cmd->kind = builtins[i].kind;
			return 0;
		}
	}

	trc = tokenise(text, &t, terr, sizeof(terr));
	words = xcalloc(t.n + 1, sizeof(*words));
	for (nwords = 0; nwords < t.n && t.v[nwords].key == NULL; nwords++)
		words[nwords] = t.v[nwords].value;
	r = config_recipe_match(cfg, words, nwords, &used);
	free(words);
	if (r == NULL) {
		/* Even a quoting mistake: the command itself is what is unknown. */
		cmd->kind = CMDTEXT_UNKNOWN;
		rc = 0;
		goto out;
	}
	cmd->recipe = r;
	if (trc != 0) {
		cmd_error(cmd, "%s", terr);
		goto out;
	}
	for (i = used; i < t.n; i++) {
		const struct config_param *p;

		if (t.v[i].key == NULL) {
			char *q = quote_cut(t.v[i].value);

			cmd_error(cmd, "`%s` is not a name=value parameter", q);
			free(q);
			goto out;
		}
		if ((p = declared(r, t.v[i].key)) == NULL) {
			cmd_error(cmd, "unknown parameter `%s`", t.v[i].key);
			goto out;
		}
		if (cmdtext_params_get(&cmd->params, p->name) != NULL) {
			cmd_error(cmd, "parameter `%s` given twice", p->name);
			goto out;
		}
		cmdtext_params_add(&cmd->params, p->name, t.v[i].value);
	}
	for (i = 0; i < r->params.n; i++) {
		const struct config_param *p = &r->params.v[i];

		if (!p->optional && cmdtext_params_get(&cmd->params, p->name) == NULL) {
			cmd_error(cmd, "missing parameter `%s`", p->name);
			goto out;
		}
	}
	cmd->kind = CMDTEXT_RECIPE;
	rc = 0;
out:
	if (rc != 0)
		cmdtext_params_clear(&cmd->params);
	cmdtext_tokens_free(&t);
	return rc;
}

void
cmdtext_cmd_clear(struct cmdtext_cmd *cmd)
{
	if (cmd == NULL)
		return;
	cmdtext_params_clear(&cmd->params);
	free(cmd->error);
	free(cmd->usage);
	memset(cmd, 0, sizeof(*cmd));
}

/* ---- back out to Slack -------------------------------------------------- */

char *
cmdtext_mrkdwn_escape(const char *s, size_t len)
{
	char *buf, *o;
	size_t i;

	/* Each byte becomes at most 5 ("&amp;"); the multiplication is checked. */
	o = buf = xreallocarray(NULL, len + 1, 5);
	for (i = 0; i < len; i++) {
		switch (s[i]) {
		case '&':
			memcpy(o, "&amp;", 5);
			o += 5;
			break;
		case '<':
			memcpy(o, "&lt;", 4);
			o += 4;
			break;
		case '>':
			memcpy(o, "&gt;", 4);
			o += 4;
			break;
		default:
			*o++ = s[i];
			break;
		}
	}
	*o = '\0';
	return buf;
}

size_t
cmdtext_truncate(char *s, size_t max)
{
	static const char ellipsis[] = "…";
	size_t len = strlen(s), ell = sizeof(ellipsis) - 1, cut, k, e;

	if (len <= max)
		return len;
	if (max < ell)
		ell = 0;
	cut = max - ell;
	/* Not inside a UTF-8 sequence: s[cut] is the first byte dropped. */
	while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
		cut--;
	/* Not inside an entity: `&am` alone would show as text. */
	for (k = cut; k > 0 && cut - k < 5; k--) {
		if (s[k - 1] != '&')
			continue;
		for (e = 0; e < sizeof(entities) / sizeof(entities[0]); e++)
			if (cut - (k - 1) < entities[e].len &&
			    strncmp(s + k - 1, entities[e].entity, cut - (k - 1)) == 0)
				cut = k - 1;
		break;
	}
	memcpy(s + cut, ellipsis, ell);
	s[cut + ell] = '\0';
	return cut + ell;
}
