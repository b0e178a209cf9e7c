/*
 * gateway_reg.h — gateway registration in `dstack-util setup` (guest.md §5
 * step j, gateway.md §4):
 *
 *   - the CVM's WireGuard key pair, created once and kept in the work dir so
 *     a re-registration keeps the same identity (and the gateway its IP);
 *   - RegisterCvm over mTLS with a KMS-issued client certificate, trusting
 *     only the KMS root and requiring the gateway certificate's app id to be
 *     the KMS's gateway_app_id ("any" turns that check off, with a warning);
 *   - the reply rendered as dstack-wg0.conf (wg-quick form, for people and
 *     tools) and dstack-wg0.setconf (wg(8) form, without Address, for
 *     `wg setconf`), both 0600.
 *
 * gw_setup() (gateway_setup.c) runs the whole step; wg_up.h brings the link
 * up. Not done: the periodic re-registration (dstack-gateway-checker), the
 * DSTACK_WG iptables chain, the /run/dstack/gateway-cache.json certificate
 * cache and the quote-bearing fallback certificate for pre-0.5.6 gateways.
 */
#ifndef DSTACK_GUEST_GATEWAY_REG_H
#define DSTACK_GUEST_GATEWAY_REG_H

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"

#define GW_WG_KEY_FILE "wg-private.key"
#define GW_WG_CONF_FILE "dstack-wg0.conf"
#define GW_WG_SETCONF_FILE "dstack-wg0.setconf"
#define GW_WG_LISTEN_PORT 9182

/* Load `<work_dir>/wg-private.key` (base64, 0600) or create it; both keys
 * come back base64 (caller frees; *priv_b64 is a secret). */
int gw_wg_key_load_or_create(const char *work_dir, char **priv_b64, char **pub_b64, struct err *e);

/* Render wg-quick text from a RegisterCvmResponse in JSON form
 * ({"wg": {"client_ip": .., "servers": [{"pk","ip","endpoint"}]}}):
 * peers sorted by public key, AllowedIPs = server ip/32 (any prefix the
 * gateway sent is dropped). */
int gw_wg_conf_render(const char *priv_b64, const json_t *reply, struct buf *out, struct err *e);
/* The same without the wg-quick-only Address line (for `wg setconf`). */
int gw_wg_setconf_render(const char *priv_b64, const json_t *reply, struct buf *out, struct err *e);

/*
 * RegisterCvm at each URL in `urls` (JSON array of strings) in turn over
 * mTLS (client cert chain / key PEM); the gateway's certificate must chain
 * to `ca_pem` (the KMS root) and carry app id `gateway_app_id` (hex, "0x"
 * optional; "any" = no app id check; NULL or "" is refused). The first
 * success wins and its reply lands in *reply. `port_policy` may be NULL.
 */
int guest_register_cvm(const json_t *urls, const char *cert_pem, const char *key_pem, const char *ca_pem,
		       const char *gateway_app_id, const char *pub_b64, const json_t *port_policy,
		       json_t **reply, struct err *e);

/* Write `<work_dir>/dstack-wg0.conf` and `<work_dir>/dstack-wg0.setconf`
 * (both 0600). */
int gw_wg_conf_write(const char *work_dir, const char *priv_b64, const json_t *reply, struct err *e);

#endif
