/*
 * wg.h — the gateway's WireGuard side (gateway.md §6): bring up the link
 * (kernel WireGuard, else a wireguard-go daemon), render the peer set in
 * wg(8) format and apply it atomically with `wg syncconf`, and read the
 * peers' latest handshakes. Every operation runs external tools (ip, wg,
 * wireguard-go) without a shell; none of it is on the proxy's connection
 * path. Secrets go through the 0600 config file, never argv.
 */
#ifndef DSTACK_GATEWAY_WG_H
#define DSTACK_GATEWAY_WG_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "store.h"

struct wg_settings {
	const char *interface; /* "" = do not manage a link */
	const char *private_key;
	uint16_t listen_port;
	const char *ip;          /* "10.0.0.1/24" */
	const char *config_path; /* written 0600 */
};

/* Create the link if absent (never removed). */
int wg_link_setup(const struct wg_settings *w, struct err *e);
/* Render [Interface] + one [Peer] per instance (instances sorted by id). */
void wg_render(const struct wg_settings *w, const struct gw_instance *v, size_t n, struct buf *out);
/* Write config_path atomically (0600) and `wg syncconf` it (if a link is managed). */
int wg_apply(const struct wg_settings *w, const char *text, size_t len, struct err *e);

struct wg_handshake {
	char public_key[GW_WG_KEY_MAX + 1];
	uint64_t time; /* unix seconds, 0 = never */
};
/* `wg show <if> latest-handshakes`. */
int wg_read_handshakes(const struct wg_settings *w, struct wg_handshake **out, size_t *n, struct err *e);

/* Run argv (no shell), capture stdout (≤ 1 MiB) into out (may be NULL);
 * non-zero exit is an error naming the command and its stderr. */
int wg_run(const char *const *argv, struct buf *out, struct err *e);

#endif
