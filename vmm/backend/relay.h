/*
 * relay.h — TCP and UDP relays between the host's network namespace and a
 * process-backend VM's own namespace (loopback only). A socket belongs to
 * the namespace it was created in, whatever thread later uses it, so each
 * relay makes its listening socket on one side and its outgoing sockets on
 * the other (switching the calling thread's namespace only around
 * socket()). Used both ways: host ports mapped into the VM (port_map), and
 * the VM reaching host services on loopback (KMS, gateway, PCCS, the
 * gateway's WireGuard endpoint), the way QEMU user networking lets a guest
 * reach the host. Blocking I/O on detached threads: a VM has a handful of
 * relays and they live as long as its process.
 */
#ifndef DSTACK_VMM_BACKEND_RELAY_H
#define DSTACK_VMM_BACKEND_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

struct relay_ns {
	int host_fd; /* /proc/self/ns/net at start */
	int vm_fd;   /* the VM's namespace, or -1: the VM shares the host's */
};

/* A socket of `type` (SOCK_STREAM | SOCK_DGRAM) in the VM's namespace
 * (in_vm) or the host's. */
int relay_socket(const struct relay_ns *ns, bool in_vm, int type);

/* Listen on `laddr:lport` on one side (in the VM when listen_in_vm) and
 * relay each TCP connection / UDP peer to `caddr:cport` on the other. */
int relay_tcp_start(const struct relay_ns *ns, bool listen_in_vm, const char *laddr, unsigned lport,
		    const char *caddr, unsigned cport, struct err *e);
int relay_udp_start(const struct relay_ns *ns, bool listen_in_vm, const char *laddr, unsigned lport,
		    const char *caddr, unsigned cport, struct err *e);

/* If `url` (scheme://host[:port]/..., or unix:… which is not) names a
 * host on loopback (127.0.0.0/8, localhost, *.localhost), its IPv4 address
 * and port (scheme default when absent) and true. */
bool relay_loopback_url(const char *url, char ip[16], unsigned *port);
/* Same for a `host:port` endpoint (WireGuard's Endpoint). */
bool relay_loopback_endpoint(const char *ep, char ip[16], unsigned *port);

#endif
