/*
 * pp.h — HAProxy PROXY protocol v1 (text) and v2 (binary) headers: parsed on
 * inbound connections when `inbound_pp_enabled`, and written to backends
 * whose port policy asks for it (`pp`).
 */
#ifndef DSTACK_GATEWAY_PROXY_PP_H
#define DSTACK_GATEWAY_PROXY_PP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PP_V1_MAX 107
#define PP_V2_MAX 2048

struct pp_addrs {
	int version; /* 1 or 2 */
	bool local;  /* UNKNOWN / LOCAL: no addresses */
	struct sockaddr_storage src, dst;
};

enum pp_result { PP_NEED_MORE = 0, PP_OK = 1, PP_INVALID = -1 };

/* On PP_OK, *consumed is the header length to drop from the stream. */
enum pp_result pp_parse(const uint8_t *data, size_t len, struct pp_addrs *out, size_t *consumed);

/* Write a header of a->version into out (cap >= PP_V1_MAX+1 or 52); returns
 * its length. */
size_t pp_build(const struct pp_addrs *a, uint8_t *out, size_t cap);

#endif
