/*
 * jcs.c — see jcs.h.
 *
 * Shortest round-trip digits come from trying %.{p}e for p = 1..17 and
 * keeping the first that parses back to the same double (the correctly
 * rounded p-digit decimal is the closest candidate, so it is the one
 * ECMAScript picks). The digits are then laid out with ECMAScript's rules:
 * plain notation for exponents in [-6, 21), exponential otherwise.
 */
#include "codec/jcs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/utf8.h"
#include "core/cleanup.h"

void jcs_put_string(struct buf *out, const char *s, size_t len)
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

int jcs_put_double(struct buf *out, double d, struct err *e)
{
	char tmp[40], digits[20];
	int exp10, k = 0, n;
	char *p, *mant_end;

	if (!isfinite(d))
		return err_set(e, "cannot canonicalize a non-finite number");
	if (d == 0) {
		buf_putc(out, '0'); /* also -0 */
		return 0;
	}
	if (d < 0) {
		buf_putc(out, '-');
		d = -d;
	}
	for (int prec = 0; prec < 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	/* tmp = "D[.DDDD]e[+-]XX" */
	mant_end = strchr(tmp, 'e');
	exp10 = atoi(mant_end + 1);
	for (p = tmp; p < mant_end; p++)
		if (*p != '.')
			digits[k++] = *p;
	while (k > 1 && digits[k - 1] == '0')
		k--;
	digits[k] = '\0';
	n = exp10 + 1; /* value = 0.digits * 10^n */
	if (k <= n && n <= 21) {
		buf_append(out, digits, (size_t)k);
		for (int i = k; i < n; i++)
			buf_putc(out, '0');
	} else if (0 < n && n <= 21) {
		buf_append(out, digits, (size_t)n);
		buf_putc(out, '.');
		buf_append(out, digits + n, (size_t)(k - n));
	} else if (-6 < n && n <= 0) {
		buf_puts(out, "0.");
		for (int i = 0; i < -n; i++)
			buf_putc(out, '0');
		buf_append(out, digits, (size_t)k);
	} else {
		buf_putc(out, (uint8_t)digits[0]);
		if (k > 1) {
			buf_putc(out, '.');
			buf_append(out, digits + 1, (size_t)(k - 1));
		}
		buf_printf(out, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
	}
	return 0;
}

int jcs_utf16_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i = 0, j = 0;
	uint16_t ua[2], ub[2];
	int na = 0, nb = 0, ia = 0, ib = 0;

	for (;;) {
		if (ia == na && i < alen) {
			uint32_t cp = utf8_next((const uint8_t *)a, &i);

			if (cp >= 0x10000) {
				cp -= 0x10000;
				ua[0] = (uint16_t)(0xd800 + (cp >> 10));
				ua[1] = (uint16_t)(0xdc00 + (cp & 0x3ff));
				na = 2;
			} else {
				ua[0] = (uint16_t)cp;
				na = 1;
			}
			ia = 0;
		}
		if (ib == nb && j < blen) {
			uint32_t cp = utf8_next((const uint8_t *)b, &j);

			if (cp >= 0x10000) {
				cp -= 0x10000;
				ub[0] = (uint16_t)(0xd800 + (cp >> 10));
				ub[1] = (uint16_t)(0xdc00 + (cp & 0x3ff));
				nb = 2;
			} else {
				ub[0] = (uint16_t)cp;
				nb = 1;
			}
			ib = 0;
		}
		if (ia == na && ib == nb)
			return 0;
		if (ia == na)
			return -1;
		if (ib == nb)
			return 1;
		if (ua[ia] != ub[ib])
			return ua[ia] < ub[ib] ? -1 : 1;
		ia++;
		ib++;
	}
}

int jcs_key_order(const char *a, const char *b)
{
	return jcs_utf16_cmp(a, strlen(a), b, strlen(b));
}

static int key_cmp(const void *pa, const void *pb, void *order)
{
	return ((jcs_key_order_fn)order)(*(const char *const *)pa, *(const char *const *)pb);
}

static int serialize(const json_t *v, jcs_key_order_fn order, struct buf *out, int depth, struct err *e)
{
	if (depth > 512)
		return err_set(e, "JSON nesting too deep to canonicalize");
	switch (json_typeof(v)) {
	case JSON_NULL:
		buf_puts(out, "null");
		return 0;
	case JSON_TRUE:
		buf_puts(out, "true");
		return 0;
	case JSON_FALSE:
		buf_puts(out, "false");
		return 0;
	case JSON_INTEGER:
		buf_printf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return 0;
	case JSON_REAL:
		return jcs_put_double(out, json_real_value(v), e);
	case JSON_STRING:
		if (!utf8_valid(json_string_value(v), json_string_length(v)))
			return err_set(e, "invalid UTF-8 in JSON string");
		jcs_put_string(out, json_string_value(v), json_string_length(v));
		return 0;
	case JSON_ARRAY:
		buf_putc(out, '[');
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				buf_putc(out, ',');
			if (serialize(json_array_get(v, i), order, out, depth + 1, e) < 0)
				return -1;
		}
		buf_putc(out, ']');
		return 0;
	case JSON_OBJECT: {
		size_t n = json_object_size(v), i = 0;
		_cleanup_free_ const char **keys = malloc((n ? n : 1) * sizeof(*keys));
		const char *k;
		json_t *val;

		if (!keys)
			abort();
		json_object_foreach((json_t *)v, k, val)
		{
			if (!utf8_valid(k, strlen(k)))
				return err_set(e, "invalid UTF-8 in JSON object key");
			keys[i++] = k;
		}
		qsort_r(keys, n, sizeof(*keys), key_cmp, (void *)order);
		buf_putc(out, '{');
		for (i = 0; i < n; i++) {
			if (i)
				buf_putc(out, ',');
			jcs_put_string(out, keys[i], strlen(keys[i]));
			buf_putc(out, ':');
			if (serialize(json_object_get(v, keys[i]), order, out, depth + 1, e) < 0)
				return -1;
		}
		buf_putc(out, '}');
		return 0;
	}
	}
	return err_set(e, "unknown JSON value type");
}

int jcs_serialize_ordered(const json_t *v, jcs_key_order_fn order, struct buf *out, struct err *e)
{
	if (!v)
		return err_set(e, "no JSON value to canonicalize");
	return serialize(v, order, out, 0, e);
}

int jcs_serialize(const json_t *v, struct buf *out, struct err *e)
{
	return jcs_serialize_ordered(v, jcs_key_order, out, e);
}

char *jcs_dumps(const json_t *v, struct err *e)
{
	struct buf b = BUF_INIT;

	if (jcs_serialize(v, &b, e) < 0) {
		buf_free(&b);
		return NULL;
	}
	return (char *)buf_steal(&b, NULL);
}
