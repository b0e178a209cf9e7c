/*
 * shared_img.h — host_share_mode "vhd" (spec §5.2): the guest gets shared/
 * as a read-only 128 MiB FAT32 disk labelled DSTACKSHR, rebuilt on every
 * start. Built with mtools (mformat, mcopy) so no loop mount or root is
 * needed.
 */
#ifndef DSTACK_VMM_SHARED_IMG_H
#define DSTACK_VMM_SHARED_IMG_H

#include "core/err.h"

#define VMM_SHARED_IMG_LABEL "DSTACKSHR"
#define VMM_SHARED_IMG_BYTES (128u << 20)

/* (Re)create <workdir>/shared.img holding the regular files of shared/. */
int vmm_build_shared_img(const char *workdir, struct err *e);

#endif
