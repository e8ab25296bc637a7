/*
 * Block Kit checks the fake Slack applies to posted messages
 * (chat.postMessage, chat.postEphemeral, chat.update, response_url).
 *
 * Limits follow research/slack-socket-mode.md §5 (python-slack-sdk
 * validators and Slack's block reference): 50 blocks per message, section
 * text 3000, fields 10 x 2000, header 150, button text 75 / value 2000 /
 * url 3000, action_id and block_id 255, 25 elements per actions block, 10
 * per context block, confirm dialog 100/300/30/30, option text 75 / value
 * 150, and "text or blocks (or attachments) present". Lengths are counted
 * in characters (UTF-8 code points), as Slack does.
 *
 * Test code only.
 */
#ifndef FS_BLOCKKIT_H
#define FS_BLOCKKIT_H

#include <cjson/cJSON.h>

/*
 * Check one message body (a JSON object with text / blocks / attachments).
 * `blocks` may be an array or a string holding a JSON array (form bodies).
 * Each violation is appended to `errors` (a cJSON array) as a string such as
 * "blocks[2].elements[0].text: 80 chars > 75 (button text)", at most 64 of
 * them. `need_text`: 0 for chat.update / response_url bodies that may only
 * change flags (e.g. delete_original). Returns the number of violations
 * (also those beyond the 64 kept). `*slack_error` is set to the error code
 * Slack would answer ("invalid_blocks", "invalid_blocks_format", "no_text",
 * "msg_too_long") or NULL.
 */
int fs_blockkit_check(const cJSON *msg, int need_text, cJSON *errors,
		      const char **slack_error);

#endif
