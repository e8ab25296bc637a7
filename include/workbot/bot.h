/*
 * bot: what Slack users see — the handlers dispatch.c runs on workers for
 * DMs, mentions, slash commands and button clicks: `help`, `connections`,
 * Disconnect, login prompts, recipes and their approval buttons.
 *
 * Worker threads only. Every answer leaves through the outbox (retried,
 * never blocking on a 429). Private answers (help, connections, login
 * prompts, errors) are ephemeral in a channel and plain messages in a DM;
 * a recipe's reply goes where the command was asked.
 */
#ifndef WORKBOT_BOT_H
#define WORKBOT_BOT_H

#include <cjson/cJSON.h>

struct dispatch_ctx;

void bot_message_im(const struct dispatch_ctx *ctx, const cJSON *payload);
void bot_app_mention(const struct dispatch_ctx *ctx, const cJSON *payload);
void bot_slash_command(const struct dispatch_ctx *ctx, const cJSON *payload);
void bot_block_actions(const struct dispatch_ctx *ctx, const cJSON *payload);

#endif
