/*
 * compose.c — compose hash, ids, MR_CONFIG_ID and normalisation.
 *
 * The normaliser parses with jansson (numbers as doubles,
 * JSON_DECODE_INT_AS_REAL, exactly as JSON.parse does) and writes with the
 * JCS serialiser of codec/jcs.h, not jansson's dump: jansson writes \u001F
 * where JSON.stringify and Python write \u001f and prints 0.1 as
 * 0.10000000000000001. The only local rule is the key order of a sorted
 * JavaScript object (array-index keys first numerically, then UTF-16
 * code-unit order); non-ASCII and '/' are emitted raw.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "codec/jcs.h"
#include "core/cleanup.h"
#include "crypto/compose.h"
#include "crypto/hash.h"

void compose_hash(const void *raw, size_t len, uint8_t out[32])
{
	sha256(raw, len, out);
}

void compose_default_app_id(const uint8_t hash[32], uint8_t app_id[20])
{
	memcpy(app_id, hash, 20);
}

void compose_instance_id(const uint8_t *seed, size_t seed_len, const uint8_t app_id[20], const uint8_t *extra,
			 size_t extra_len, uint8_t out[20])
{
	struct span parts[] = {SPAN(seed, seed_len), SPAN(app_id, 20), SPAN(extra, extra_len)};
	uint8_t h[32];

	hash_parts(HASH_SHA256, parts, 3, h, NULL);
	memcpy(out, h, 20);
}

int key_provider_kind_parse(const char *name, enum key_provider_kind *out)
{
	static const char *const names[] = {"none", "local", "kms", "tpm"};

	for (int i = 0; i < 4; i++)
		if (!strcmp(name, names[i])) {
			*out = (enum key_provider_kind)i;
			return 0;
		}
	return -1;
}

void mr_config_id_v1(const uint8_t compose_hash_[32], uint8_t out[MR_CONFIG_ID_LEN])
{
	memset(out, 0, MR_CONFIG_ID_LEN);
	out[0] = 1;
	memcpy(out + 1, compose_hash_, 32);
}

void mr_config_id_v2(const uint8_t compose_hash_[32], const uint8_t app_id[20], enum key_provider_kind kp,
		     const uint8_t *kp_id, size_t kp_id_len, uint8_t out[MR_CONFIG_ID_LEN])
{
	uint8_t kp_byte = (uint8_t)kp;
	struct span parts[] = {SPAN(compose_hash_, 32), SPAN(app_id, 20), SPAN(&kp_byte, 1),
			       SPAN(kp_id, kp_id_len)};

	memset(out, 0, MR_CONFIG_ID_LEN);
	out[0] = 2;
	keccak256_parts(parts, 4, out + 1);
}

void mr_config_id_v3(const char *document, size_t len, uint8_t out[MR_CONFIG_ID_LEN])
{
	static const char tag[] = "dstack-mr-config-v3:";
	static const uint8_t zero = 0;
	struct span parts[] = {SPAN(tag, sizeof(tag) - 1), SPAN(&zero, 1), SPAN(document, len)};

	memset(out, 0, MR_CONFIG_ID_LEN);
	out[0] = 3;
	hash_parts(HASH_SHA256, parts, 3, out + 1, NULL);
}

void launch_token_hash(const void *token, size_t len, uint8_t out[32])
{
	static const char tag[] = "dstack-launch-token/v1:";
	struct span parts[] = {SPAN(tag, sizeof(tag) - 1), SPAN(token, len)};

	hash_parts(HASH_SHA256, parts, 2, out, NULL);
}

/* ---- JavaScript-compatible serialisation ---- */

/* Canonical array index: "0" or [1-9][0-9]* below 2^32-1. */
static bool array_index(const char *k, uint64_t *idx)
{
	uint64_t v = 0;

	if (!*k || (k[0] == '0' && k[1]) || strlen(k) > 10)
		return false;
	for (const char *p = k; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*idx = v;
	return v < 0xffffffffULL;
}

/* A sorted JavaScript object's key order: array indices first, numerically. */
static int js_key_order(const char *a, const char *b)
{
	uint64_t ia = 0, ib = 0;
	bool na = array_index(a, &ia), nb = array_index(b, &ib);

	if (na && nb)
		return ia < ib ? -1 : ia > ib;
	if (na != nb)
		return na ? -1 : 1;
	return jcs_key_order(a, b);
}

static bool is_str(json_t *v, const char *s)
{
	return json_is_string(v) && !strcmp(json_string_value(v), s);
}

int compose_normalize(const void *raw, size_t len, unsigned flags, struct buf *out, struct err *e)
{
	json_error_t jerr;
	_cleanup_json_ json_t *root = json_loadb(raw, len, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &jerr);

	if (!root)
		return err_set(e, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
	if (!json_is_object(root))
		return err_set(e, "app compose must be a JSON object");
	if (flags & COMPOSE_NORM_DROP_UNUSED) {
		json_t *runner = json_object_get(root, "runner");

		if (is_str(runner, "bash"))
			json_object_del(root, "docker_compose_file");
		if (is_str(runner, "docker-compose") || is_str(runner, "nerdctl-compose"))
			json_object_del(root, "bash_script");
		if (is_str(json_object_get(root, "pre_launch_script"), ""))
			json_object_del(root, "pre_launch_script");
	}
	return jcs_serialize_ordered(root, js_key_order, out, e);
}
