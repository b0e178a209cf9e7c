/*
 * workdir.c — the certbot's files (see workdir.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "workdir.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/mem.h"

#define PEM_MAX (1u << 20)

static char *join(const char *a, const char *b)
{
	char *s;

	if (asprintf(&s, "%s/%s", a, b) < 0)
		abort();
	return s;
}

int workdir_init(struct workdir *w, const char *root, struct err *e)
{
	size_t len = strlen(root);

	memset(w, 0, sizeof(*w));
	if (len == 0)
		return err_set(e, "workdir is empty");
	w->root = strdup(root);
	if (!w->root)
		abort();
	while (len > 1 && w->root[len - 1] == '/')
		w->root[--len] = '\0';
	w->credentials = join(w->root, "credentials.json");
	w->live_dir = join(w->root, "live");
	w->cert = join(w->live_dir, "cert.pem");
	w->key = join(w->live_dir, "key.pem");
	w->backup_dir = join(w->root, "backup");
	return 0;
}

void workdir_free(struct workdir *w)
{
	free(w->root);
	free(w->credentials);
	free(w->live_dir);
	free(w->cert);
	free(w->key);
	free(w->backup_dir);
	memset(w, 0, sizeof(*w));
}

void workdir_timestamp(time_t t, char out[32])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y%m%dT%H%M%SZ", &tm);
}

int workdir_read_credentials(const struct workdir *w, char **json, struct err *e)
{
	uint8_t *data = NULL;
	size_t len = 0;

	*json = NULL;
	if (access(w->credentials, F_OK) < 0) {
		if (errno == ENOENT)
			return 0;
		return err_errno(e, "%s", w->credentials);
	}
	if (file_read_all(w->credentials, 1u << 20, &data, &len, e) < 0)
		return -1;
	*json = (char *)data;
	return 1;
}

int workdir_write_credentials(const struct workdir *w, const char *json, struct err *e)
{
	if (mkdir_p(w->root, 0700, e) < 0)
		return -1;
	return file_write_atomic(w->credentials, json, strlen(json), 0600, e);
}

/* A fresh directory under backup/ named by the time (suffixed if taken). */
static int new_backup_dir(const struct workdir *w, char **out, struct err *e)
{
	char ts[32];

	if (mkdir_p(w->backup_dir, 0700, e) < 0)
		return -1;
	workdir_timestamp(time(NULL), ts);
	for (int i = 0; i < 100; i++) {
		_cleanup_free_ char *dir = NULL;

		if (i == 0 ? asprintf(&dir, "%s/%s", w->backup_dir, ts) < 0
			   : asprintf(&dir, "%s/%s-%d", w->backup_dir, ts, i) < 0)
			abort();
		if (mkdir(dir, 0700) == 0) {
			*out = TAKE_PTR(dir);
			return 0;
		}
		if (errno != EEXIST)
			return err_errno(e, "mkdir %s", dir);
	}
	return err_set(e, "no free backup directory for %s", ts);
}

static int copy_file(const char *from, const char *to, mode_t mode, struct err *e)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int rc;

	if (file_read_all(from, PEM_MAX, &data, &len, e) < 0)
		return -1;
	rc = file_write_atomic(to, data, len, mode, e);
	secure_zero(data, len);
	free(data);
	return rc;
}

int workdir_backup_credentials(const struct workdir *w, struct err *e)
{
	_cleanup_free_ char *to = NULL;
	char ts[32];

	if (mkdir_p(w->backup_dir, 0700, e) < 0)
		return -1;
	workdir_timestamp(time(NULL), ts);
	if (asprintf(&to, "%s/credentials-%s.json", w->backup_dir, ts) < 0)
		abort();
	return copy_file(w->credentials, to, 0600, e);
}

bool workdir_has_live(const struct workdir *w)
{
	return file_exists(w->cert) && file_exists(w->key);
}

int workdir_read_live_cert(const struct workdir *w, char **pem, size_t *len, struct err *e)
{
	uint8_t *data = NULL;

	if (file_read_all(w->cert, PEM_MAX, &data, len, e) < 0)
		return -1;
	*pem = (char *)data;
	return 0;
}

int workdir_store(const struct workdir *w, const char *chain_pem, const char *key_pem, char **backup,
		  struct err *e)
{
	_cleanup_free_ char *dir = NULL, *bcert = NULL, *bkey = NULL;
	bool have_cert = file_exists(w->cert), have_key = file_exists(w->key);

	*backup = NULL;
	if (mkdir_p(w->live_dir, 0755, e) < 0)
		return -1;
	if (have_cert || have_key) {
		if (new_backup_dir(w, &dir, e) < 0)
			return -1;
		bcert = join(dir, "cert.pem");
		bkey = join(dir, "key.pem");
		if ((have_cert && copy_file(w->cert, bcert, 0644, e) < 0) ||
		    (have_key && copy_file(w->key, bkey, 0600, e) < 0))
			return err_wrap(e, "backing up the live certificate to %s", dir);
	}
	/* Key first: a reader that sees the new chain also finds its key. */
	if (file_write_atomic(w->key, key_pem, strlen(key_pem), 0600, e) < 0 ||
	    file_write_atomic(w->cert, chain_pem, strlen(chain_pem), 0644, e) < 0)
		return err_wrap(e, "installing the new certificate in %s", w->live_dir);
	*backup = TAKE_PTR(dir);
	return 0;
}
