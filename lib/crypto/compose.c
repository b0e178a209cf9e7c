/*
 * compose.c — compose hash, ids, MR_CONFIG_ID and normalisation.
 *
 * The normaliser parses with jansson but serialises itself: jansson's dump
 * writes \u001F (upper case) where JSON.stringify and Python write \u001f,
 * prints reals with %.17g (0.1 → 0.10000000000000001, 1.0 → 1.0) where
 * JavaScript prints the shortest round-trip form (0.1, 1), and orders keys by
 * bytes. Numbers are parsed as doubles (JSON_DECODE_INT_AS_REAL) exactly as
 * JSON.parse does, keys are ordered as a sorted JavaScript object serialises
 * (array-index keys first numerically, then UTF-16 code-unit order), and
 * non-ASCII and '/' are emitted raw.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

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

/* Number.prototype.toString for finite doubles (ECMA-262 Number::toString). */
static void js_number(double v, struct buf *out)
{
	char tmp[40], digits[20];
	int k = 0, n, exp10;

	if (!isfinite(v)) {
		buf_puts(out, "null");
		return;
	}
	if (v == 0) {
		buf_putc(out, '0');
		return;
	}
	if (v < 0) {
		buf_putc(out, '-');
		v = -v;
	}
	/* Shortest precision that round-trips. */
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	/* tmp = d[.ddd]e±XX */
	for (const char *p = tmp; *p && *p != 'e'; p++)
		if (*p >= '0' && *p <= '9')
			digits[k++] = *p;
	while (k > 1 && digits[k - 1] == '0')
		k--;
	digits[k] = 0;
	exp10 = atoi(strchr(tmp, 'e') + 1);
	n = exp10 + 1; /* v = 0.d1d2..dk × 10^n */

	if (k <= n && n <= 21) {
		buf_append(out, digits, (size_t)k);
		for (int i = 0; i < n - k; i++)
			buf_putc(out, '0');
	} else if (0 < n && n <= 21) {
		buf_append(out, digits, (size_t)n);
		buf_putc(out, '.');
		buf_puts(out, digits + n);
	} else if (-6 < n && n <= 0) {
		buf_puts(out, "0.");
		for (int i = 0; i < -n; i++)
			buf_putc(out, '0');
		buf_puts(out, digits);
	} else {
		buf_putc(out, (uint8_t)digits[0]);
		if (k > 1) {
			buf_putc(out, '.');
			buf_puts(out, digits + 1);
		}
		buf_printf(out, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
	}
}

static void js_string(const char *s, size_t len, struct buf *out)
{
	buf_putc(out, '"');
	for (size_t i = 0; i < len; i++) {
		uint8_t c = (uint8_t)s[i];

		switch (c) {
		case '"':
			buf_puts(out, "\\\"");
			break;
		case '\\':
			buf_puts(out, "\\\\");
			break;
		case '\b':
			buf_puts(out, "\\b");
			break;
		case '\f':
			buf_puts(out, "\\f");
			break;
		case '\n':
			buf_puts(out, "\\n");
			break;
		case '\r':
			buf_puts(out, "\\r");
			break;
		case '\t':
			buf_puts(out, "\\t");
			break;
		default:
			if (c < 0x20)
				buf_printf(out, "\\u%04x", c);
			else
				buf_putc(out, c);
		}
	}
	buf_putc(out, '"');
}

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

/* Decode one UTF-8 sequence (input already validated by jansson). */
static uint32_t utf8_next(const uint8_t **p)
{
	const uint8_t *s = *p;
	uint32_t cp;
	int n;

	if (s[0] < 0x80) {
		cp = s[0];
		n = 1;
	} else if (s[0] < 0xe0) {
		cp = s[0] & 0x1f;
		n = 2;
	} else if (s[0] < 0xf0) {
		cp = s[0] & 0x0f;
		n = 3;
	} else {
		cp = s[0] & 0x07;
		n = 4;
	}
	for (int i = 1; i < n; i++)
		cp = (cp << 6) | (s[i] & 0x3f);
	*p = s + n;
	return cp;
}

/* First UTF-16 code unit of a code point, then the second (or 0). */
static void utf16_units(uint32_t cp, uint32_t u[2])
{
	if (cp < 0x10000) {
		u[0] = cp;
		u[1] = 0;
	} else {
		u[0] = 0xd800 + ((cp - 0x10000) >> 10);
		u[1] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
	}
}

static int utf16_cmp(const char *a, const char *b)
{
	const uint8_t *p = (const uint8_t *)a, *q = (const uint8_t *)b;

	while (*p && *q) {
		uint32_t ca = utf8_next(&p), cb = utf8_next(&q), ua[2], ub[2];

		if (ca == cb)
			continue;
		utf16_units(ca, ua);
		utf16_units(cb, ub);
		if (ua[0] != ub[0])
			return ua[0] < ub[0] ? -1 : 1;
		return ua[1] < ub[1] ? -1 : 1;
	}
	return *p ? 1 : *q ? -1 : 0;
}

static int js_key_cmp(const void *x, const void *y)
{
	const char *a = *(const char *const *)x, *b = *(const char *const *)y;
	uint64_t ia = 0, ib = 0;
	bool na = array_index(a, &ia), nb = array_index(b, &ib);

	if (na && nb)
		return ia < ib ? -1 : ia > ib;
	if (na != nb)
		return na ? -1 : 1;
	return utf16_cmp(a, b);
}

static int js_value(json_t *v, struct buf *out, int depth, struct err *e)
{
	if (depth > 512)
		return err_set(e, "JSON nested too deeply");
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		size_t n = json_object_size(v), i = 0;
		_cleanup_free_ const char **keys = malloc((n ? n : 1) * sizeof(*keys));
		const char *key;
		json_t *child;

		if (!keys)
			abort();
		json_object_foreach(v, key, child) keys[i++] = key;
		qsort(keys, n, sizeof(*keys), js_key_cmp);
		buf_putc(out, '{');
		for (i = 0; i < n; i++) {
			if (i)
				buf_putc(out, ',');
			js_string(keys[i], strlen(keys[i]), out);
			buf_putc(out, ':');
			if (js_value(json_object_get(v, keys[i]), out, depth + 1, e) < 0)
				return -1;
		}
		buf_putc(out, '}');
		return 0;
	}
	case JSON_ARRAY:
		buf_putc(out, '[');
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				buf_putc(out, ',');
			if (js_value(json_array_get(v, i), out, depth + 1, e) < 0)
				return -1;
		}
		buf_putc(out, ']');
		return 0;
	case JSON_STRING:
		js_string(json_string_value(v), json_string_length(v), out);
		return 0;
	case JSON_INTEGER:
		js_number((double)json_integer_value(v), out);
		return 0;
	case JSON_REAL:
		js_number(json_real_value(v), out);
		return 0;
	case JSON_TRUE:
		buf_puts(out, "true");
		return 0;
	case JSON_FALSE:
		buf_puts(out, "false");
		return 0;
	case JSON_NULL:
		buf_puts(out, "null");
		return 0;
	}
	return err_set(e, "unexpected JSON value");
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
	return js_value(root, out, 0, e);
}
