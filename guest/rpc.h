/*
 * rpc.h — the guest agent's prpc services (guest.md §1.3–1.5): DstackGuest
 * (bare /<Method> on dstack.sock), Tappd (legacy, /prpc/<Method> on
 * tappd.sock) and Worker (/prpc/<Method> on TCP 8090), plus the pure
 * helpers their handlers are built from (exposed for unit tests).
 */
#ifndef DSTACK_GUEST_RPC_H
#define DSTACK_GUEST_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "agent.h"
#include "core/buf.h"
#include "core/err.h"
#include "prpc/server.h"

extern const struct prpc_service agent_dstack_service;
extern const struct prpc_service agent_tappd_service;
extern const struct prpc_service agent_worker_service;

/* Mount DstackGuest at "/" (its arg is the agent). */
int agent_mount_dstack(struct http_server *srv, struct agent *a, struct err *e);
int agent_mount_tappd(struct http_server *srv, struct agent *a, struct err *e);
int agent_mount_worker(struct http_server *srv, struct agent *a, struct err *e);

/* Worker.GetAttestationForAppKey report_data: "dip1::ed25519-pk:" or
 * "dip1::secp256k1c-pk:" + base64url (no padding) of the public key of
 * GetKey("vms"), zero-padded to 64 bytes. */
int dip1_report_data(const uint8_t app_k256[32], const char *algorithm, uint8_t out[64], char *text,
		     size_t text_size, struct err *e);
/* Tappd.TdxQuote report_data; *algo_echo / *prefix_echo are what the reply
 * echoes (static or borrowed from the arguments). */
int tappd_report_data(const uint8_t *data, size_t len, const char *hash_algorithm, const char *prefix,
		      uint8_t out[64], const char **algo_echo, const char **prefix_echo, struct err *e);

#endif
