/*
 * auth.c — API authentication of the external server (spec §2): admin
 * tokens (X-Admin-Token, Bearer, Basic password or user, GET ?token=) and
 * bcrypt htpasswd entries via crypt(3) from libxcrypt. Tokens are compared
 * as SHA-256 digests in constant time so their length does not leak.
 */
#include <crypt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codec/base64.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/mem.h"
#include "vmm/rpc/rpc.h"
#include "vmm/util.h"

static bool token_ok(const struct vmm_config *cfg, const char *t, size_t len)
{
	uint8_t a[32], b[32];
	bool any = false;

	sha256_buf(t, len, a);
	for (size_t i = 0; i < cfg->auth.tokens.n; i++) {
		const char *k = cfg->auth.tokens.v[i];

		sha256_buf(k, strlen(k), b);
		any |= ct_memeq(a, b, 32);
	}
	return any;
}

static bool htpasswd_ok(const char *file, const char *user, const char *pass)
{
	_cleanup_free_ uint8_t *text = NULL;
	size_t len, ulen = strlen(user);
	char *line, *save = NULL;
	bool ok = false;

	if (str_empty(file) || file_read_all(file, 1 << 20, &text, &len, NULL) < 0)
		return false;
	for (line = strtok_r((char *)text, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		const char *hash = line + ulen + 1;
		struct crypt_data cd;
		const char *got;

		if (strncmp(line, user, ulen) || line[ulen] != ':')
			continue;
		if (strncmp(hash, "$2a$", 4) && strncmp(hash, "$2b$", 4) && strncmp(hash, "$2y$", 4))
			continue;
		memset(&cd, 0, sizeof(cd));
		got = crypt_r(pass, hash, &cd);
		ok = got && strlen(got) == strlen(hash) && ct_memeq(got, hash, strlen(hash));
		secure_zero(&cd, sizeof(cd));
		break;
	}
	return ok;
}

static bool basic_ok(const struct vmm_config *cfg, const char *b64)
{
	_cleanup_free_ uint8_t *dec = NULL;
	size_t len;
	char *colon;
	bool ok;

	while (*b64 == ' ')
		b64++;
	if (base64_decode(b64, strlen(b64), &dec, &len, NULL) < 0)
		return false;
	dec = realloc(dec, len + 1);
	if (!dec)
		abort();
	dec[len] = 0;
	if (strlen((char *)dec) != len || !(colon = strchr((char *)dec, ':')))
		return false;
	*colon = 0;
	ok = htpasswd_ok(cfg->auth.htpasswd_file, (char *)dec, colon + 1) ||
	     (colon[1] && token_ok(cfg, colon + 1, strlen(colon + 1))) ||
	     (!colon[1] && *dec && token_ok(cfg, (char *)dec, strlen((char *)dec)));
	secure_zero(dec, len);
	return ok;
}

bool vmm_auth_check(const struct vmm_config *cfg, const char *admin_token, const char *authorization,
		    const char *query_token)
{
	if (!cfg->auth.enabled)
		return true;
	if (admin_token && token_ok(cfg, admin_token, strlen(admin_token)))
		return true;
	if (authorization && !strncasecmp(authorization, "Bearer ", 7) &&
	    token_ok(cfg, authorization + 7, strlen(authorization + 7)))
		return true;
	if (authorization && !strncasecmp(authorization, "Basic ", 6) && basic_ok(cfg, authorization + 6))
		return true;
	return query_token && token_ok(cfg, query_token, strlen(query_token));
}
