/*
 * fileio.h — whole-file reads with a size cap, and atomic writes.
 *
 * Every state or key file the services write goes through file_write_atomic:
 * write to a temp file in the same directory, fsync, rename, fsync the
 * directory. A crash leaves either the old or the new content, never a torn
 * file. Secrets are written with mode 0600 from the first byte.
 */
#ifndef DSTACK_CORE_FILEIO_H
#define DSTACK_CORE_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"

/* Read a whole file (NUL-terminated) of at most max_len bytes. */
int file_read_all(const char *path, size_t max_len, uint8_t **out, size_t *out_len, struct err *e);
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, struct err *e);
bool file_exists(const char *path);
/* mkdir -p with the given mode for created components. */
int mkdir_p(const char *path, mode_t mode, struct err *e);

#endif
