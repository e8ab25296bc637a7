/*
 * vault_bench: how fast is the sealed token store?
 *
 *   vault_bench [-n RECORDS] [-d DIR] [-s DISK_SAMPLE]
 *
 * Fills a fresh store with RECORDS connections (default 100,000) and
 * measures put ops/s, get+open ops/s (LMDB read + AEAD decrypt + copying the
 * tokens out) on one and two threads, header-only gets, and the data file
 * size per record. DESIGN §7 wants > 300,000 get+open/s on one thread.
 *
 * Every put is one committed transaction, and a commit fsyncs twice: on a
 * disk that is milliseconds. So the fill runs in DIR (default /dev/shm,
 * tmpfs, where fsync is free and the figure is our CPU cost) and a separate
 * sample of DISK_SAMPLE puts (default 200) in /tmp shows the fsync-bound
 * rate. Reads come from the page cache either way.
 *
 * Prints plain "name: value" lines. Never run by `meson test`.
 */
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "workbot/records.h"
#include "workbot/secret.h"
#include "workbot/store.h"
#include "workbot/vault.h"

static size_t nrec = 100000;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
die(const char *what, const char *err)
{
	fprintf(stderr, "vault_bench: %s: %s\n", what, err);
	exit(1);
}

static void
make_tokens(struct records_tokens *t, size_t i)
{
	char access[160], refresh[128];

	/* Salesforce-sized tokens: ~112 and ~87 characters. */
	snprintf(access, sizeof(access),
	    "00D5e000001N2xY!ARwAQJb6YxQq9d8pB1k7o2Zx3lXwP6Yv8rK4nT5uG0hC9mE1sD2fA3jL4qW5eR6tY7uI8oP9a%010zu", i);
	snprintf(refresh, sizeof(refresh),
	    "5Aep861TSESvWeug_xvFHRBTTbf_YrTWgEyjBJo7Z1oT3bJ4uUo6NQVfHw2iX9lK8jH7gF6dS5aQ%010zu", i);
	memset(t, 0, sizeof(*t));
	t->access_token = secret_from_str(access);
	t->refresh_token = secret_from_str(refresh);
	t->expires_at = 1700000000 + (int64_t)i;
	t->scope = strdup("api refresh_token");
	t->instance_url = strdup("https://acme.my.salesforce.com");
	t->token_type = strdup("Bearer");
}

static double
fill(struct records *r, size_t n, size_t first)
{
	struct records_tokens t;
	char user[32], err[512];
	double t0 = now_s();
	size_t i;

	for (i = first; i < first + n; i++) {
		snprintf(user, sizeof(user), "U%08zu", i);
		make_tokens(&t, i);
		if (records_conn_put(r, "T0123456", user, "salesforce", "user@acme.com", &t, 1700000000,
		    0, err, sizeof(err)) != 1)
			die("put", err);
		records_tokens_clear(&t);
	}
	return (double)n / (now_s() - t0);
}

struct reader {
	struct records *r;
	size_t          n;
	unsigned        seed;
	bool            tokens;
	double          secs;
};

static void *
read_main(void *arg)
{
	struct reader *rd = arg;
	struct records_tokens t;
	struct records_conn h;
	char user[32], err[512];
	double t0 = now_s();
	size_t i;

	for (i = 0; i < rd->n; i++) {
		size_t k = (size_t)rand_r(&rd->seed) % nrec;
		snprintf(user, sizeof(user), "U%08zu", k);
		if (records_conn_get(rd->r, "T0123456", user, "salesforce", &h, rd->tokens ? &t : NULL,
		    err, sizeof(err)) != 1)
			die("get", err);
		if (rd->tokens)
			records_tokens_clear(&t);
	}
	rd->secs = now_s() - t0;
	return NULL;
}

static double
run_readers(struct records *r, int threads, size_t per_thread, bool tokens)
{
	struct reader rd[8];
	pthread_t th[8];
	double t0 = now_s();
	int i;

	for (i = 0; i < threads; i++) {
		rd[i].r = r;
		rd[i].n = per_thread;
		rd[i].seed = (unsigned)i * 2654435761u + 1;
		rd[i].tokens = tokens;
		if (pthread_create(&th[i], NULL, read_main, &rd[i]) != 0)
			die("pthread_create", "failed");
	}
	for (i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	return (double)(per_thread * (size_t)threads) / (now_s() - t0);
}

static void
new_store(const char *parent, char *dir, size_t dirsz, char *key, size_t keysz)
{
	char err[512];

	snprintf(dir, dirsz, "%s/wb-bench-XXXXXX", parent);
	if (mkdtemp(dir) == NULL)
		die("mkdtemp", parent);
	snprintf(key, keysz, "%s/master.key", dir);
	if (vault_keygen(key, err, sizeof(err)) != 0)
		die("keygen", err);
	strncat(dir, "/store", dirsz - strlen(dir) - 1);
}

int
main(int argc, char **argv)
{
	const char *parent = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	size_t disk_sample = 200, reads, map, used;
	char dir[256], key[256], root[256], err[512], path[300];
	struct records *r;
	struct stat st;
	double rate;
	int opt, round;

	while ((opt = getopt(argc, argv, "n:d:s:")) != -1) {
		switch (opt) {
		case 'n': nrec = strtoul(optarg, NULL, 10); break;
		case 'd': parent = optarg; break;
		case 's': disk_sample = strtoul(optarg, NULL, 10); break;
		default:
			fprintf(stderr, "usage: vault_bench [-n RECORDS] [-d DIR] [-s DISK_SAMPLE]\n");
			return 2;
		}
	}
	if (nrec == 0)
		nrec = 1;
	if (sodium_init() < 0)
		die("sodium_init", "failed");

	/* fsync-bound puts on a real disk, a small sample */
	if (disk_sample > 0) {
		new_store("/tmp", dir, sizeof(dir), key, sizeof(key));
		if (records_open(dir, (size_t)1 << 30, key, &r, err, sizeof(err)) != 0)
			die("open", err);
		rate = fill(r, disk_sample, 0);
		printf("put_disk_ops_per_s: %.0f (%zu puts in /tmp, one fsync'd commit each)\n", rate, disk_sample);
		records_close(r);
		snprintf(root, sizeof(root), "%s", dir);
		*strrchr(root, '/') = '\0';
		nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	}

	new_store(parent, dir, sizeof(dir), key, sizeof(key));
	snprintf(root, sizeof(root), "%s", dir);
	*strrchr(root, '/') = '\0';
	if (records_open(dir, (size_t)1 << 30, key, &r, err, sizeof(err)) != 0)
		die("open", err);
	printf("records: %zu\n", nrec);
	printf("dir: %s\n", parent);
	rate = fill(r, nrec, 0);
	printf("put_ops_per_s: %.0f\n", rate);

	reads = nrec > 200000 ? nrec : 200000;
	for (round = 0; round < 3; round++) {
		printf("round %d:\n", round + 1);
		printf("  get_open_1thread_ops_per_s: %.0f\n", run_readers(r, 1, reads, true));
		printf("  get_open_2threads_ops_per_s: %.0f\n", run_readers(r, 2, reads, true));
		printf("  get_header_1thread_ops_per_s: %.0f\n", run_readers(r, 1, reads, false));
	}
	if (store_usage(records_store(r), &map, &used, err, sizeof(err)) != 0)
		die("usage", err);
	records_close(r);
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	if (stat(path, &st) != 0)
		die("stat", path);
	printf("data_file_bytes: %lld\n", (long long)st.st_size);
	printf("data_bytes_per_record: %.0f\n", (double)st.st_size / (double)nrec);
	printf("used_bytes_per_record: %.0f\n", (double)used / (double)nrec);
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
