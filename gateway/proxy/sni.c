/*
 * sni.c — a strict, allocation-free ClientHello reader.
 *
 * The handshake message may be split over several TLS records (large
 * post-quantum key shares), so the record fragments are first gathered into a
 * stack buffer bounded by the sniff window (4096 bytes), then the message is
 * walked with explicit length checks. A host_name with bytes outside
 * printable ASCII, or containing NUL, is rejected: it becomes a routing key.
 */
#include <string.h>

#include "sni.h"

#define SNIFF_MAX 4096

struct rd {
	const uint8_t *p;
	size_t n;
};

static int take(struct rd *r, size_t k, struct rd *sub)
{
	if (r->n < k)
		return -1;
	if (sub) {
		sub->p = r->p;
		sub->n = k;
	}
	r->p += k;
	r->n -= k;
	return 0;
}

static int u8(struct rd *r, size_t *v)
{
	if (r->n < 1)
		return -1;
	*v = r->p[0];
	return take(r, 1, NULL);
}

static int u16(struct rd *r, size_t *v)
{
	if (r->n < 2)
		return -1;
	*v = (size_t)r->p[0] << 8 | r->p[1];
	return take(r, 2, NULL);
}

static int vec8(struct rd *r, struct rd *sub)
{
	size_t l;
	return u8(r, &l) < 0 ? -1 : take(r, l, sub);
}

static int vec16(struct rd *r, struct rd *sub)
{
	size_t l;
	return u16(r, &l) < 0 ? -1 : take(r, l, sub);
}

static int parse_server_name(struct rd ext, struct sni_info *out)
{
	struct rd list, name;
	size_t type;

	if (vec16(&ext, &list) < 0)
		return -1;
	while (list.n) {
		if (u8(&list, &type) < 0 || vec16(&list, &name) < 0)
			return -1;
		if (type != 0)
			continue;
		if (name.n == 0 || name.n > PROXY_SNI_MAX)
			return -1;
		for (size_t i = 0; i < name.n; i++)
			if (name.p[i] <= 0x20 || name.p[i] >= 0x7f)
				return -1;
		memcpy(out->host, name.p, name.n);
		out->host[name.n] = '\0';
		return 0;
	}
	return -1;
}

static int parse_alpn(struct rd ext, struct sni_info *out)
{
	struct rd list, proto;

	if (vec16(&ext, &list) < 0)
		return -1;
	out->has_alpn = true;
	while (list.n) {
		if (vec8(&list, &proto) < 0)
			return -1;
		if (proto.n == 2 && memcmp(proto.p, "h2", 2) == 0)
			out->alpn_h2 = true;
	}
	return 0;
}

static enum sni_result parse_hello(struct rd r, struct sni_info *out)
{
	struct rd skip, exts, ext;
	size_t type;

	/* client_version, random, session_id, cipher_suites, compression */
	if (take(&r, 2 + 32, NULL) < 0 || vec8(&r, &skip) < 0 || vec16(&r, &skip) < 0 || vec8(&r, &skip) < 0)
		return SNI_INVALID;
	if (r.n == 0 || vec16(&r, &exts) < 0)
		return SNI_INVALID; /* no extensions: no SNI */
	out->host[0] = '\0';
	while (exts.n) {
		if (u16(&exts, &type) < 0 || vec16(&exts, &ext) < 0)
			return SNI_INVALID;
		if (type == 0 && parse_server_name(ext, out) < 0)
			return SNI_INVALID;
		if (type == 16 && parse_alpn(ext, out) < 0)
			return SNI_INVALID;
	}
	return out->host[0] ? SNI_FOUND : SNI_INVALID;
}

enum sni_result sni_parse(const uint8_t *data, size_t len, struct sni_info *out)
{
	uint8_t msg[SNIFF_MAX];
	size_t mlen = 0, off = 0;

	memset(out, 0, sizeof(*out));
	while (off < len) {
		if (len - off < 5)
			return SNI_NEED_MORE;
		if (data[off] != 22 || data[off + 1] != 3)
			return SNI_INVALID; /* not a TLS handshake record */
		size_t rlen = (size_t)data[off + 3] << 8 | data[off + 4];
		if (rlen == 0)
			return SNI_INVALID;
		size_t have = len - off - 5 < rlen ? len - off - 5 : rlen;
		if (mlen + have > sizeof(msg))
			return SNI_INVALID;
		memcpy(msg + mlen, data + off + 5, have);
		mlen += have;
		off += 5 + have;
		if (mlen >= 4) {
			if (msg[0] != 1)
				return SNI_INVALID; /* not a ClientHello */
			size_t hlen = (size_t)msg[1] << 16 | (size_t)msg[2] << 8 | msg[3];
			if (hlen + 4 > sizeof(msg))
				return SNI_INVALID;
			if (mlen >= hlen + 4)
				return parse_hello((struct rd){msg + 4, hlen}, out);
		}
		if (have < rlen)
			return SNI_NEED_MORE;
	}
	return SNI_NEED_MORE;
}
