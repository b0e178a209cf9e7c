/*
 * sni.h — find the server_name (and the ALPN offer) in the first bytes a TLS
 * client sends, without consuming them: the proxy peeks at the socket, so the
 * same bytes later reach OpenSSL (terminate) or the backend (passthrough).
 */
#ifndef DSTACK_GATEWAY_PROXY_SNI_H
#define DSTACK_GATEWAY_PROXY_SNI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROXY_SNI_MAX 255

enum sni_result { SNI_NEED_MORE = 0, SNI_FOUND = 1, SNI_INVALID = -1 };

struct sni_info {
	char host[PROXY_SNI_MAX + 1];
	bool has_alpn;
	bool alpn_h2;
};

/* Parse a (possibly partial) TLS ClientHello spread over one or more
 * handshake records. SNI_NEED_MORE means "read more and call again". */
enum sni_result sni_parse(const uint8_t *data, size_t len, struct sni_info *out);

#endif
