/*
 * setup.h — `dstack-util setup`: the CVM boot flow of guest.md §5 (steps
 * a–i; no real mounts) for a work dir, given the host-shared files.
 */
#ifndef DSTACK_GUEST_SETUP_H
#define DSTACK_GUEST_SETUP_H

#include "core/err.h"
#include "tdx/tee.h"

struct setup_opts {
	const char *work_dir;    /* e.g. /var/volatile/dstack */
	const char *host_shared; /* directory holding the host-shared files */
	const char *device;      /* data disk, NULL/"" = none (encryption skipped) */
	const char *mount_point;
	struct tee_config tee;
	const char *rt_dir; /* runtime event log directory (/run/log/dstack) */
	/* Verifying the KMS's RA-TLS certificate. */
	const char *pccs_url;    /* override sys-config collateral_urls.pccs / pccs_url */
	const char *dev_root_ca; /* development trust anchor (simulated TDX only) */
	const char *pccs_cache;  /* collateral cache dir, may be NULL */
};

int guest_setup(const struct setup_opts *o, struct err *e);

#endif
