/*
 * workbot version: our version and the versions of the libraries we run on,
 * as loaded at run time (what an operator needs in a bug report).
 */
#include <stdio.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <libwebsockets.h>
#include <lmdb.h>
#include <sodium.h>

#include "workbot/cmd.h"
#include "workbot_version.h"

static int
cmd_version_exec(struct cmd_ctx *ctx, int argc, char **argv)
{
	const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);

	(void)ctx;
	(void)argv;
	if (argc > 0)
		return cmd_usage_error(&cmd_version_entry, "version takes no arguments");
	printf("workbot %s\n", WORKBOT_VERSION);
	printf("libwebsockets %s\n", lws_get_library_version());
	printf("libcurl %s (%s)\n", cv->version, cv->ssl_version ? cv->ssl_version : "no TLS");
	printf("LMDB %s\n", mdb_version(NULL, NULL, NULL));
	printf("libsodium %s\n", sodium_version_string());
	printf("cJSON %s\n", cJSON_Version());
	return EXIT_OK;
}

const struct cmd_entry cmd_version_entry = {
	.name = "version",
	.usage = "version",
	.exec = cmd_version_exec,
};
