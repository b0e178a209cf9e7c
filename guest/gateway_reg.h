/*
 * gateway_reg.h — the local half of gateway registration in `dstack-util
 * setup` (guest.md §5 step j): the CVM's WireGuard key pair, created once
 * and kept in the work dir so a re-registration keeps the same identity, and
 * the wg-quick file rendered from a RegisterCvm reply, and the RegisterCvm
 * call over mTLS. Not here yet: obtaining the client certificate (KMS
 * SignCert), the gateway app-id check, bringing wg0 up, and the call from
 * guest_setup().
 */
#ifndef DSTACK_GUEST_GATEWAY_REG_H
#define DSTACK_GUEST_GATEWAY_REG_H

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"

#define GW_WG_KEY_FILE "wg-private.key"
#define GW_WG_CONF_FILE "dstack-wg0.conf"
#define GW_WG_LISTEN_PORT 9182

/* Load `<work_dir>/wg-private.key` (base64, 0600) or create it; both keys
 * come back base64 (caller frees; *priv_b64 is a secret). */
int gw_wg_key_load_or_create(const char *work_dir, char **priv_b64, char **pub_b64, struct err *e);

/* Render wg-quick text from a RegisterCvmResponse in JSON form
 * ({"wg": {"client_ip": .., "servers": [{"pk","ip","endpoint"}]}}):
 * peers sorted by public key, AllowedIPs = server ip/32 (any prefix the
 * gateway sent is dropped). */
int gw_wg_conf_render(const char *priv_b64, const json_t *reply, struct buf *out, struct err *e);

/* RegisterCvm at each URL in `urls` (JSON array of strings) in turn over
 * mTLS (client cert/key PEM, trusting only `ca_pem`); the first success
 * wins and its reply lands in *reply. `port_policy` may be NULL.
 * Not done yet: the gateway certificate's app id check. */
int gw_register(const json_t *urls, const char *cert_pem, const char *key_pem, const char *ca_pem,
		const char *pub_b64, const json_t *port_policy, json_t **reply, struct err *e);

/* Render and write `<work_dir>/dstack-wg0.conf` (0600). */
int gw_wg_conf_write(const char *work_dir, const char *priv_b64, const json_t *reply, struct err *e);

#endif
