/*
 * name.c — parse `<id>[-[<port>][s|g]]` exactly like the reference gateway:
 * at most one `-`, a non-empty id, then one optional trailing `g`, then one
 * optional `s` (so `443gs` is invalid but `443sg` is not reachable either),
 * an empty port meaning 443 with `s` and 80 otherwise. The port is a u16
 * parsed the way Rust's `u16::from_str` does: an optional leading `+`.
 */
#include <string.h>

#include "name.h"

static int parse_u16(const char *s, size_t len, uint16_t *out)
{
	uint32_t v = 0;

	if (len && s[0] == '+') {
		s++;
		len--;
	}
	if (!len)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint32_t)(s[i] - '0');
		if (v > 65535)
			return -1;
	}
	*out = (uint16_t)v;
	return 0;
}

int proxy_name_parse(const char *sub, size_t len, struct proxy_name *out, struct err *e)
{
	const char *dash = memchr(sub, '-', len);
	size_t id_len = dash ? (size_t)(dash - sub) : len;

	memset(out, 0, sizeof(*out));
	out->port = 80;
	if (dash && memchr(dash + 1, '-', len - id_len - 1))
		return err_set(e, "invalid sni format: too many parts");
	if (id_len == 0)
		return err_set(e, "invalid sni format: empty id");
	if (id_len >= sizeof(out->id))
		return err_set(e, "invalid sni format: id too long");
	memcpy(out->id, sub, id_len);
	if (!dash)
		return 0;

	const char *p = dash + 1;
	size_t plen = len - id_len - 1;
	if (plen && p[plen - 1] == 'g') {
		out->h2 = true;
		plen--;
	}
	if (plen && p[plen - 1] == 's') {
		out->tls_passthrough = true;
		plen--;
	}
	if (out->h2 && out->tls_passthrough)
		return err_set(e, "invalid sni format: both s and g");
	if (plen == 0) {
		out->port = out->tls_passthrough ? 443 : 80;
		return 0;
	}
	if (parse_u16(p, plen, &out->port) < 0)
		return err_set(e, "invalid sni format: bad port");
	return 0;
}

int proxy_sni_split(const char *sni, const char **sub, size_t *sub_len, const char **base)
{
	const char *dot = strchr(sni, '.');

	if (!dot)
		return -1;
	*sub = sni;
	*sub_len = (size_t)(dot - sni);
	*base = dot + 1;
	return 0;
}
