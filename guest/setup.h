/*
 * setup.h — `dstack-util setup`: the CVM boot flow of guest.md §5 (steps
 * a–j; no real mounts or disk encryption) for a work dir, given the
 * host-shared files.
 *
 * Gateway registration (step j) runs when app-compose sets gateway_enabled
 * (or the legacy tproxy_enabled): it needs the KMS key provider and
 * sys-config gateway_urls, and brings WireGuard up in the caller's network
 * namespace (kernel link, else wireguard-go). As in the reference a failure
 * there is logged and reported to the host as boot.progress but does not
 * stop the boot, unless gateway_required is set.
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
	/* Gateway registration (step j). */
	const char *wg_interface; /* --wg-interface: NULL = "dstack-wg0"; ≤ 15 chars. A
				   * wireguard-go UAPI socket is /var/run/wireguard/<name>.sock,
				   * so CVMs sharing a host's /var/run need distinct names */
	bool no_wg_up;            /* --no-wg-up: register and write the files only */
	bool gateway_required;    /* --gateway-required: a failure stops the boot */
};

int guest_setup(const struct setup_opts *o, struct err *e);

#endif
