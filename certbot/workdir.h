/*
 * workdir.h — the certbot's files under `workdir` (gateway.md §8.4):
 *
 *   credentials.json         the ACME account (0600)
 *   live/cert.pem            the chain the gateway serves (0644)
 *   live/key.pem             its key (0600)
 *   backup/<ISO 8601>/       what live/ held before each renewal
 *
 * Every write is atomic (temp file, fsync, rename), so a reader sees the old
 * file or the new one. On renewal the old pair is copied into backup/ first,
 * then key.pem and cert.pem are replaced; live/ is never empty meanwhile.
 */
#ifndef DSTACK_CERTBOT_WORKDIR_H
#define DSTACK_CERTBOT_WORKDIR_H

#include <stdbool.h>
#include <time.h>

#include "core/err.h"

struct workdir {
	char *root;
	char *credentials; /* <root>/credentials.json */
	char *live_dir, *cert, *key;
	char *backup_dir;
};

int workdir_init(struct workdir *w, const char *root, struct err *e);
void workdir_free(struct workdir *w);

/* Read credentials.json: 1 if it exists (*json malloc'd), 0 if not. */
int workdir_read_credentials(const struct workdir *w, char **json, struct err *e);
int workdir_write_credentials(const struct workdir *w, const char *json, struct err *e);
/* Copy credentials.json to backup/credentials-<ts>.json (before replacing
 * it with another account's). */
int workdir_backup_credentials(const struct workdir *w, struct err *e);

/* Both live files exist. */
bool workdir_has_live(const struct workdir *w);
/* Read live/cert.pem (malloc'd, NUL-terminated). */
int workdir_read_live_cert(const struct workdir *w, char **pem, size_t *len, struct err *e);
/* Back up the live pair (if any) to backup/<ts>/, then install the new one.
 * *backup gets the backup directory used (malloc'd) or NULL. */
int workdir_store(const struct workdir *w, const char *chain_pem, const char *key_pem, char **backup,
		  struct err *e);

/* "20261207T101500Z": ISO 8601 basic format, UTC (no colons in paths). */
void workdir_timestamp(time_t t, char out[32]);

#endif
