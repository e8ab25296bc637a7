/*
 * workbot keygen -o FILE: a new 32-byte master key, written as 64 hex
 * characters and a newline, mode 0600, never over an existing file.
 */
#include <stdio.h>
#include <string.h>

#include "workbot/cmd.h"
#include "workbot/vault.h"

static int
cmd_keygen_exec(struct cmd_ctx *ctx, int argc, char **argv)
{
	const char *out = NULL;
	char err[512];

	(void)ctx;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) {
			if (i + 1 >= argc)
				return cmd_usage_error(&cmd_keygen_entry, "-o needs a file name");
			out = argv[++i];
		} else {
			return cmd_usage_error(&cmd_keygen_entry, "unexpected argument '%s'", argv[i]);
		}
	}
	if (out == NULL || *out == '\0')
		return cmd_usage_error(&cmd_keygen_entry, "keygen needs -o FILE");
	if (vault_keygen(out, err, sizeof(err)) != 0) {
		fprintf(stderr, "workbot keygen: %s\n", err);
		return EXIT_CONFIG;
	}
	printf("wrote %s (mode 0600)\n", out);
	return EXIT_OK;
}

const struct cmd_entry cmd_keygen_entry = {
	.name = "keygen",
	.usage = "keygen -o FILE",
	.exec = cmd_keygen_exec,
};
