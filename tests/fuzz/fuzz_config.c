/*
 * fuzz_config: libFuzzer entry for the config reader and checks.
 *
 * Parses the input from memory with config_load_buffer() (no file, so no
 * file-mode check) and frees the result; errors are discarded. Not part of
 * the default build. Build by hand, e.g.:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude \
 *     tests/fuzz/fuzz_config.c src/config.c src/template.c src/secret.c \
 *     src/xmalloc.c src/log.c -lcjson -lcurl -lsodium -o fuzz_config
 *   ./fuzz_config -dict=... corpus/   (seed: workbot.conf.example)
 *
 * Inputs may name env: variables and file: paths; the fuzzer only reads
 * them, and never prints what it read.
 */
#include <stddef.h>
#include <stdint.h>

#include "workbot/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	config_free(config_load_buffer("fuzz.conf", (const char *)data, size, NULL, NULL));
	return 0;
}
