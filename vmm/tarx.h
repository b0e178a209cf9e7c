/*
 * tarx.h — unpack one OCI image layer (a tar, gzip-compressed or not) into
 * a directory, for images pulled from a registry (vmm/registry.c).
 *
 * Written for hostile input: entries are confined to the destination
 * (absolute names are made relative, any `..` component is an error), only
 * regular files and directories are created (symlinks, hard links and
 * device nodes are skipped and counted, so nothing can later redirect a
 * write outside the destination), file modes keep only the permission bits
 * 0755, and OCI whiteouts (`.wh.<name>`, `.wh..wh..opq`) delete what earlier
 * layers put there. Understands ustar, pax (`path`, `size`) and GNU long
 * names; sizes in octal or base-256.
 */
#ifndef DSTACK_VMM_TARX_H
#define DSTACK_VMM_TARX_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct tarx_stats {
	size_t files, dirs, skipped, whiteouts;
	uint64_t bytes;
};

/* Unpack the tar (or tar.gz) file `archive` into the existing directory `dest`. */
int tarx_unpack(const char *archive, const char *dest, struct tarx_stats *st, struct err *e);

#endif
