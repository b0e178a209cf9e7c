/*
 * wg_up.h — bring the CVM's WireGuard interface up in the current network
 * namespace after a gateway registration (guest.md §5 step j), without
 * wg-quick: kernel WireGuard when `ip link add IF type wireguard` works,
 * else a `wireguard-go IF` daemon (same UAPI, so wg(8) works unchanged);
 * then `wg setconf IF FILE` (the key stays in the 0600 file, never in argv),
 * the client address, link up and a route per peer.
 *
 * Idempotent: an existing link is reused, setconf replaces the whole peer
 * set, the address is replaced and routes use `ip route replace`, so a
 * re-registration can run it again.
 */
#ifndef DSTACK_GUEST_WG_UP_H
#define DSTACK_GUEST_WG_UP_H

#include <stddef.h>

#include "core/err.h"

struct wg_up_opts {
	const char *ifname;        /* e.g. "dstack-wg0" (≤ 15 characters) */
	const char *setconf_path;  /* wg(8) file: [Interface] PrivateKey/ListenPort, [Peer]s */
	const char *address;       /* "10.0.0.2/32" */
	const char *const *routes; /* peer AllowedIPs, "10.0.0.1/32" */
	size_t n_routes;
	const char *log_path; /* wireguard-go output (appended); NULL = /dev/null */
};

int wg_up(const struct wg_up_opts *o, struct err *e);

#endif
