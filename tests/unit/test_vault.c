/* Unit tests for vault: key file formats and modes, keygen, seal/open, key ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "workbot/vault.h"

static char tmpdir[64];

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/wb-vault-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void
path_in(char *out, size_t outsz, const char *name)
{
	snprintf(out, outsz, "%s/%s", tmpdir, name);
}

static const unsigned char raw_key[32] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0xff,
};

static void
test_key_formats(void **state)
{
	char path[256], hex[80], err[512], id_raw[VAULT_KEY_ID_HEX];
	struct vault *v;
	(void)state;

	sodium_bin2hex(hex, sizeof(hex), raw_key, sizeof(raw_key));
	path_in(path, sizeof(path), "k");

	/* raw 32 bytes */
	write_file(path, raw_key, 32, 0600);
	assert_int_equal(vault_load(path, &v, err, sizeof(err)), 0);
	snprintf(id_raw, sizeof(id_raw), "%s", vault_key_id_hex(v));
	assert_int_equal(strlen(id_raw), 16);
	vault_free(v);

	/* 64 hex, no newline: the same key, the same id */
	write_file(path, hex, 64, 0600);
	assert_int_equal(vault_load(path, &v, err, sizeof(err)), 0);
	assert_string_equal(vault_key_id_hex(v), id_raw);
	vault_free(v);

	/* 64 hex + newline; uppercase hex too */
	hex[64] = '\n';
	write_file(path, hex, 65, 0600);
	assert_int_equal(vault_load(path, &v, err, sizeof(err)), 0);
	assert_string_equal(vault_key_id_hex(v), id_raw);
	vault_free(v);
	hex[0] = 'A';
	hex[1] = 'B';
	write_file(path, hex, 65, 0400);
	assert_int_equal(vault_load(path, &v, err, sizeof(err)), 0);
	vault_free(v);
	sodium_bin2hex(hex, sizeof(hex), raw_key, sizeof(raw_key));

	/* wrong lengths */
	write_file(path, hex, 63, 0600);
	assert_int_equal(vault_load(path, &v, err, sizeof(err)), -1);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "63 bytes"));
	write_file(path, raw_key, 31, 0600);
	assert_int_equal(vault_load(path, &v, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "expected 64 hex characters"));
	write_file(path, "", 0, 0600);
	assert_int_equal(vault_load(path, &v, err, sizeof(err)), -1);
	{
		char big[300];
		memset(big, 'a', sizeof(big));
		write_file(path, big, sizeof(big), 0600);
		assert_int_equal(vault_load(path, &v, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "300 bytes"));
	}
	/* 64 hex + two newlines is not a key */
	hex[64] = '\n';
	hex[65] = '\n';
	write_file(path, hex, 66, 0600);
	assert_int_equal(vault_load(path, &v, err, sizeof(err)), -1);

	/* bad hex */
	sodium_bin2hex(hex, sizeof(hex), raw_key, sizeof(raw_key));
	hex[10] = 'g';
	write_file(path, hex, 64, 0600);
	assert_int_equal(vault_load(path, &v, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not valid hex"));
	assert_non_null(strstr(err, path));
	/* the error never quotes key material */
	assert_null(strstr(err, "0001020304"));

	/* group/world readable */
	sodium_bin2hex(hex, sizeof(hex), raw_key, sizeof(raw_key));
	write_file(path, hex, 64, 0644);
	assert_int_equal(vault_load(path, &v, err, sizeof(err)), -1);
	{
		char want[512];
		snprintf(want, sizeof(want), "key file %s is readable by group/others (mode 0644): chmod 600", path);
		assert_string_equal(err, want);
	}
	write_file(path, hex, 64, 0640);
	assert_int_equal(vault_load(path, &v, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "mode 0640"));
	write_file(path, hex, 64, 0620);
	assert_int_equal(vault_load(path, &v, err, sizeof(err)), -1);

	/* missing file, directory */
	path_in(path, sizeof(path), "missing");
	assert_int_equal(vault_load(path, &v, err, sizeof(err)), -1);
	assert_non_null(strstr(err, path));
	assert_int_equal(vault_load(tmpdir, &v, err, sizeof(err)), -1);
}

static void
test_keygen(void **state)
{
	char path[256], err[512], buf[128];
	struct stat st;
	struct vault *v, *w;
	ssize_t n;
	int fd, i;
	mode_t old = umask(0);
	(void)state;

	path_in(path, sizeof(path), "master.key");
	assert_int_equal(vault_keygen(path, err, sizeof(err)), 0);
	umask(old);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	fd = open(path, O_RDONLY);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_int_equal(n, 65);
	buf[n] = '\0';
	for (i = 0; i < 64; i++)
		assert_true((buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f'));
	assert_int_equal(buf[64], '\n');
	assert_int_equal(vault_load(path, &v, err, sizeof(err)), 0);

	/* never overwrite */
	assert_int_equal(vault_keygen(path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "already exists"));
	assert_non_null(strstr(err, path));
	assert_int_equal(vault_load(path, &w, err, sizeof(err)), 0);
	assert_string_equal(vault_key_id_hex(v), vault_key_id_hex(w));
	vault_free(w);

	/* two keys differ */
	path_in(path, sizeof(path), "second.key");
	assert_int_equal(vault_keygen(path, err, sizeof(err)), 0);
	assert_int_equal(vault_load(path, &w, err, sizeof(err)), 0);
	assert_string_not_equal(vault_key_id_hex(v), vault_key_id_hex(w));
	/* the key id is not a prefix of the key's hex */
	assert_null(strstr(buf, vault_key_id_hex(v)));
	vault_free(v);
	vault_free(w);

	/* no such directory */
	path_in(path, sizeof(path), "nodir/x.key");
	assert_int_equal(vault_keygen(path, err, sizeof(err)), -1);
}

static struct vault *
load_raw(const unsigned char key[32], const char *name)
{
	char path[256], err[512];
	struct vault *v;

	path_in(path, sizeof(path), name);
	write_file(path, key, 32, 0600);
	assert_int_equal(vault_load(path, &v, err, sizeof(err)), 0);
	return v;
}

static void
test_seal_open(void **state)
{
	static const char plain[] = "xoxp-very-secret-token-1234567890";
	static const char ad[] = "c:T1:U1:salesforce|header";
	unsigned char key2[32], sealed[256], out[256];
	struct vault *v, *w;
	size_t slen = vault_sealed_len(sizeof(plain)), plen = 0, i;
	char err[512];
	(void)state;

	v = load_raw(raw_key, "k1");
	memcpy(key2, raw_key, 32);
	key2[0] ^= 1;
	w = load_raw(key2, "k2");
	assert_string_not_equal(vault_key_id_hex(v), vault_key_id_hex(w));

	assert_int_equal(slen, sizeof(plain) + VAULT_OVERHEAD);
	assert_int_equal(vault_seal(v, ad, sizeof(ad), plain, sizeof(plain), sealed, slen - 1, err, sizeof(err)), -1);
	assert_int_equal(vault_seal(v, ad, sizeof(ad), plain, sizeof(plain), sealed, sizeof(sealed), err, sizeof(err)), 0);
	assert_null(memmem(sealed, slen, "very-secret", 11));
	assert_int_equal(vault_open(v, ad, sizeof(ad), sealed, slen, out, sizeof(out), &plen, err, sizeof(err)), 0);
	assert_int_equal(plen, sizeof(plain));
	assert_memory_equal(out, plain, sizeof(plain));

	/* two seals of the same plaintext differ (random nonce) */
	{
		unsigned char s2[256];
		assert_int_equal(vault_seal(v, ad, sizeof(ad), plain, sizeof(plain), s2, sizeof(s2), err, sizeof(err)), 0);
		assert_memory_not_equal(s2, sealed, slen);
	}

	/* the blob names its key */
	{
		uint8_t id[VAULT_KEY_ID_LEN];
		assert_int_equal(vault_blob_key_id(sealed, slen, id), 0);
		assert_memory_equal(id, vault_key_id(v), VAULT_KEY_ID_LEN);
	}

	/* other AD: moved record */
	assert_int_equal(vault_open(v, "c:T1:U2:salesforce|header", sizeof(ad), sealed, slen, out, sizeof(out),
	    &plen, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not authenticate"));

	/* other key: the message names both key ids */
	assert_int_equal(vault_open(w, ad, sizeof(ad), sealed, slen, out, sizeof(out), &plen, err, sizeof(err)), -1);
	assert_non_null(strstr(err, vault_key_id_hex(v)));
	assert_non_null(strstr(err, vault_key_id_hex(w)));

	/* every single flipped byte fails */
	for (i = 0; i < slen; i++) {
		sealed[i] ^= 0x01;
		assert_int_equal(vault_open(v, ad, sizeof(ad), sealed, slen, out, sizeof(out), &plen, err,
		    sizeof(err)), -1);
		sealed[i] ^= 0x01;
	}
	/* truncated */
	assert_int_equal(vault_open(v, ad, sizeof(ad), sealed, slen - 1, out, sizeof(out), &plen, err, sizeof(err)), -1);
	assert_int_equal(vault_open(v, ad, sizeof(ad), sealed, 10, out, sizeof(out), &plen, err, sizeof(err)), -1);
	assert_int_equal(vault_open(v, ad, sizeof(ad), sealed, slen, out, sizeof(out), &plen, err, sizeof(err)), 0);

	/* empty plaintext and empty AD work */
	assert_int_equal(vault_seal(v, NULL, 0, "", 0, sealed, sizeof(sealed), err, sizeof(err)), 0);
	assert_int_equal(vault_open(v, NULL, 0, sealed, VAULT_OVERHEAD, out, sizeof(out), &plen, err, sizeof(err)), 0);
	assert_int_equal(plen, 0);

	/* oversized AD refused */
	{
		static unsigned char bigad[VAULT_AD_MAX + 1];
		assert_int_equal(vault_seal(v, bigad, sizeof(bigad), plain, sizeof(plain), sealed, sizeof(sealed),
		    err, sizeof(err)), -1);
	}
	vault_free(v);
	vault_free(w);
	vault_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_key_formats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keygen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seal_open, setup, teardown),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
