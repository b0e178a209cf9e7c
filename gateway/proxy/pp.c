/*
 * pp.c — PROXY protocol codec. v1 is parsed strictly (single spaces, decimal
 * ports, CRLF within 107 bytes); v2 accepts PROXY and LOCAL commands over
 * TCP/IPv4 and TCP/IPv6 and skips TLVs. Anything else is rejected: a peer that
 * is configured to send PROXY headers and does not is misconfigured or hostile.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pp.h"

static const uint8_t v2sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

static int parse_port(const char *s, uint16_t *out)
{
	char *end;
	unsigned long v;

	if (!*s || *s < '0' || *s > '9' || (s[0] == '0' && s[1]))
		return -1;
	v = strtoul(s, &end, 10);
	if (*end || v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

static int set_addr(struct sockaddr_storage *ss, int fam, const char *ip, const char *port)
{
	uint16_t p;

	memset(ss, 0, sizeof(*ss));
	if (parse_port(port, &p) < 0)
		return -1;
	if (fam == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(p);
		return inet_pton(AF_INET, ip, &s4->sin_addr) == 1 ? 0 : -1;
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(p);
	return inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1 ? 0 : -1;
}

static enum pp_result parse_v1(const uint8_t *data, size_t len, struct pp_addrs *out, size_t *consumed)
{
	char line[PP_V1_MAX + 1], *f[6], *save = NULL;
	const uint8_t *crlf = NULL;
	int n = 0;

	for (size_t i = 0; i + 1 < len && i + 2 <= PP_V1_MAX; i++)
		if (data[i] == '\r' && data[i + 1] == '\n') {
			crlf = data + i;
			break;
		}
	if (!crlf)
		return len >= PP_V1_MAX ? PP_INVALID : PP_NEED_MORE;
	size_t l = (size_t)(crlf - data);
	memcpy(line, data, l);
	line[l] = '\0';
	if (strlen(line) != l)
		return PP_INVALID;
	for (char *t = strtok_r(line, " ", &save); t && n < 6; t = strtok_r(NULL, " ", &save))
		f[n++] = t;
	out->version = 1;
	*consumed = l + 2;
	if (n >= 2 && strcmp(f[1], "UNKNOWN") == 0) {
		out->local = true;
		return PP_OK;
	}
	if (n != 6 || (strcmp(f[1], "TCP4") && strcmp(f[1], "TCP6")))
		return PP_INVALID;
	int fam = f[1][3] == '4' ? AF_INET : AF_INET6;
	if (set_addr(&out->src, fam, f[2], f[4]) < 0 || set_addr(&out->dst, fam, f[3], f[5]) < 0)
		return PP_INVALID;
	return PP_OK;
}

static enum pp_result parse_v2(const uint8_t *data, size_t len, struct pp_addrs *out, size_t *consumed)
{
	if (len < 16)
		return PP_NEED_MORE;
	size_t body = (size_t)data[14] << 8 | data[15];
	if (16 + body > PP_V2_MAX || (data[12] & 0xf0) != 0x20)
		return PP_INVALID;
	if (len < 16 + body)
		return PP_NEED_MORE;
	out->version = 2;
	*consumed = 16 + body;
	uint8_t cmd = data[12] & 0x0f, fam = data[13];
	if (cmd == 0) {
		out->local = true;
		return PP_OK;
	}
	if (cmd != 1)
		return PP_INVALID;
	const uint8_t *a = data + 16;
	if (fam == 0x11 && body >= 12) {
		struct sockaddr_in *s = (struct sockaddr_in *)&out->src, *d = (struct sockaddr_in *)&out->dst;
		s->sin_family = d->sin_family = AF_INET;
		memcpy(&s->sin_addr, a, 4);
		memcpy(&d->sin_addr, a + 4, 4);
		memcpy(&s->sin_port, a + 8, 2);
		memcpy(&d->sin_port, a + 10, 2);
		return PP_OK;
	}
	if (fam == 0x21 && body >= 36) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src,
				    *d = (struct sockaddr_in6 *)&out->dst;
		s->sin6_family = d->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, a, 16);
		memcpy(&d->sin6_addr, a + 16, 16);
		memcpy(&s->sin6_port, a + 32, 2);
		memcpy(&d->sin6_port, a + 34, 2);
		return PP_OK;
	}
	if (fam == 0x00) {
		out->local = true;
		return PP_OK;
	}
	return PP_INVALID;
}

enum pp_result pp_parse(const uint8_t *data, size_t len, struct pp_addrs *out, size_t *consumed)
{
	memset(out, 0, sizeof(*out));
	size_t cmp = len < 12 ? len : 12;
	if (memcmp(data, v2sig, cmp) == 0)
		return len < 12 ? PP_NEED_MORE : parse_v2(data, len, out, consumed);
	cmp = len < 6 ? len : 6;
	if (memcmp(data, "PROXY ", cmp) == 0)
		return len < 6 ? PP_NEED_MORE : parse_v1(data, len, out, consumed);
	return PP_INVALID;
}

static size_t build_v1(const struct pp_addrs *a, uint8_t *out, size_t cap)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	int n;

	if (a->local || a->src.ss_family != a->dst.ss_family) {
		n = snprintf((char *)out, cap, "PROXY UNKNOWN\r\n");
	} else if (a->src.ss_family == AF_INET) {
		const struct sockaddr_in *si = (const void *)&a->src, *di = (const void *)&a->dst;
		inet_ntop(AF_INET, &si->sin_addr, s, sizeof(s));
		inet_ntop(AF_INET, &di->sin_addr, d, sizeof(d));
		n = snprintf((char *)out, cap, "PROXY TCP4 %s %s %u %u\r\n", s, d, ntohs(si->sin_port),
			     ntohs(di->sin_port));
	} else {
		const struct sockaddr_in6 *si = (const void *)&a->src, *di = (const void *)&a->dst;
		inet_ntop(AF_INET6, &si->sin6_addr, s, sizeof(s));
		inet_ntop(AF_INET6, &di->sin6_addr, d, sizeof(d));
		n = snprintf((char *)out, cap, "PROXY TCP6 %s %s %u %u\r\n", s, d, ntohs(si->sin6_port),
			     ntohs(di->sin6_port));
	}
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

size_t pp_build(const struct pp_addrs *a, uint8_t *out, size_t cap)
{
	if (a->version == 1)
		return build_v1(a, out, cap);
	if (cap < 16 + 36)
		return 0;
	memcpy(out, v2sig, 12);
	bool v4 = a->src.ss_family == AF_INET && a->dst.ss_family == AF_INET;
	bool v6 = a->src.ss_family == AF_INET6 && a->dst.ss_family == AF_INET6;
	if (a->local || (!v4 && !v6)) {
		out[12] = 0x20;
		out[13] = 0;
		out[14] = out[15] = 0;
		return 16;
	}
	out[12] = 0x21;
	if (v4) {
		const struct sockaddr_in *s = (const void *)&a->src, *d = (const void *)&a->dst;
		out[13] = 0x11;
		out[14] = 0;
		out[15] = 12;
		memcpy(out + 16, &s->sin_addr, 4);
		memcpy(out + 20, &d->sin_addr, 4);
		memcpy(out + 24, &s->sin_port, 2);
		memcpy(out + 26, &d->sin_port, 2);
		return 28;
	}
	const struct sockaddr_in6 *s = (const void *)&a->src, *d = (const void *)&a->dst;
	out[13] = 0x21;
	out[14] = 0;
	out[15] = 36;
	memcpy(out + 16, &s->sin6_addr, 16);
	memcpy(out + 32, &d->sin6_addr, 16);
	memcpy(out + 48, &s->sin6_port, 2);
	memcpy(out + 50, &d->sin6_port, 2);
	return 52;
}
