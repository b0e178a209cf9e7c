/*
 * gateway_setup.h — step j of the boot (guest.md §5, gateway.md §4) as one
 * call for guest_setup(): a KMS-issued client certificate
 * ("dstack-guest-agent", clientAuth, AppInfo extension, 10 days) for a
 * fresh P-256 key, RegisterCvm at the first gateway that answers (trusting
 * only the KMS root, gateway app id checked), the WireGuard files written
 * and — unless told not to — the interface brought up in the current
 * network namespace.
 */
#ifndef DSTACK_GUEST_GATEWAY_SETUP_H
#define DSTACK_GUEST_GATEWAY_SETUP_H

#include <stdbool.h>

#include <jansson.h>

#include "appkeys_file.h"
#include "core/err.h"
#include "tdx/tee.h"

struct gw_setup_in {
	const char *work_dir;         /* WireGuard key and config files */
	const json_t *urls;           /* sys-config gateway_urls */
	const json_t *port_policy;    /* reported to the gateway; NULL = none */
	const struct app_keys *keys;  /* KMS provider: kms_url, ca_cert, gateway_app_id */
	const char *vm_config;        /* sys-config vm_config (SignCert) */
	struct tee *tee;              /* attestation of the certificate key */
	const char *rt_log, *rt_lock; /* runtime event log and its lock */
	const char *wg_interface;     /* NULL = "dstack-wg0" */
	bool wg_up;                   /* bring the interface up */
};

struct gw_setup_out {
	char client_ip[64]; /* the address the gateway gave this CVM */
};

int gw_setup(const struct gw_setup_in *in, struct gw_setup_out *out, struct err *e);

#endif
