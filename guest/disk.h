/*
 * disk.h — the CVM's encrypted data disk (guest.md §5 step g): LUKS2 with
 * the app's disk key, then ext4 or a ZFS pool, mounted for the app.
 *
 * The disk belongs to the host, so everything read from it is untrusted:
 * the LUKS2 header must match the one layout dstack creates before the key
 * is used on it (disk_luks2_check; cryptsetup then opens that very copy),
 * and a disk that carries a header, or any other signature, is never
 * formatted.
 */
#ifndef DSTACK_GUEST_DISK_H
#define DSTACK_GUEST_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define DISK_DEFAULT_MOUNT_POINT "/dstack/persistent"
#define DISK_DEFAULT_MAPPER "dstack_data_disk"
#define DISK_ZFS_POOL "dstack"
#define DISK_ZFS_DATASET "dstack/data"

struct disk_opts {
	const char *device;      /* block device holding the data disk */
	const char *mount_point; /* NULL → DISK_DEFAULT_MOUNT_POINT */
	const char *fs;          /* "ext4" or "zfs" (storage_fs) */
	const char *mapper;      /* dm-crypt name, NULL → DISK_DEFAULT_MAPPER */
	bool unencrypted;        /* dstack.storage_encrypted=0: no LUKS */
	const uint8_t *key;      /* disk_crypt_key; the passphrase is its hex text */
	size_t key_len;
	/* Boot progress ("initializing data disk", …); may be NULL. */
	void (*progress)(void *ctx, const char *msg);
	void *progress_ctx;
};

struct disk_result {
	bool luks_formatted; /* this call wrote a new LUKS2 header */
	bool fs_created;     /* this call made the file system / pool */
	char target[300];    /* what was mounted: /dev/mapper/<name> or the device */
};

/*
 * Open (or on first boot create) the data disk and mount it. A key that
 * does not open an existing header is an error; the disk is left as it was.
 */
int disk_setup(const struct disk_opts *o, struct disk_result *r, struct err *e);

/* Unmount and close the mapping made by disk_setup (shutdown, tests). */
int disk_teardown(const struct disk_opts *o, struct err *e);

/*
 * Check a LUKS2 header (the device's first bytes, both copies when `len`
 * covers them) against the layout of guest.md §5g: one pbkdf2-sha256
 * aes-xts keyslot inside the first 16 MiB, one aes-xts-plain64 segment at
 * 16 MiB with 512-byte sectors, one digest, no tokens, flags or
 * requirements, valid checksums.
 */
int disk_luks2_check(const uint8_t *hdr, size_t len, struct err *e);

/*
 * The device's first 16 MiB: both header copies and the keyslot area,
 * everything cryptsetup reads before the data segment.
 */
#define DISK_HEADER_REGION (16u * 1024 * 1024)

/* dstack.storage_encrypted on a kernel command line (default on). */
bool disk_cmdline_storage_encrypted(const char *cmdline);

#endif
