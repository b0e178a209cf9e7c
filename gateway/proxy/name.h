/*
 * name.h — the SNI sub-domain grammar of the gateway: `<id>[-[<port>][s|g]]`.
 *
 * Kept separate from the engine so the whole edge-case table can be unit
 * tested without sockets, and fuzzed.
 */
#ifndef DSTACK_GATEWAY_PROXY_NAME_H
#define DSTACK_GATEWAY_PROXY_NAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define PROXY_ID_MAX 128

struct proxy_name {
	char id[PROXY_ID_MAX];
	uint16_t port;
	bool tls_passthrough; /* trailing `s` */
	bool h2;              /* trailing `g` */
};

/* Parse the part of an SNI before the first dot. */
int proxy_name_parse(const char *sub, size_t len, struct proxy_name *out, struct err *e);

/* Split "sub.base" at the first dot; returns -1 if there is no dot. */
int proxy_sni_split(const char *sni, const char **sub, size_t *sub_len, const char **base);

#endif
