/*
 * json.c — descriptor-driven protobuf-c ⇄ JSON (see json.h).
 *
 * Output is written straight into a buffer rather than through jansson so
 * uint64 values above INT64_MAX and serde_json's exact formatting survive.
 * Input goes through jansson (which validates UTF-8 and caps nesting at
 * 2048 levels without recursing on the C stack per byte), then a recursive
 * walk bounded by PRPC_MAX_DEPTH message levels.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/hex.h"
#include "prpc/json.h"

#define MEMBER(m, off, type) ((type *)((char *)(m) + (off)))
#define CMEMBER(m, off, type) ((const type *)((const char *)(m) + (off)))

ProtobufCMessage *prpc_msg_new(const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *m = calloc(1, d->sizeof_message);

	if (!m)
		abort();
	d->message_init(m);
	return m;
}

void prpc_msg_free(ProtobufCMessage *m)
{
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
}

bool prpc_desc_is_empty(const ProtobufCMessageDescriptor *d)
{
	return d && d->n_fields == 0 && strcmp(d->name, "google.protobuf.Empty") == 0;
}

/* A oneof with a single member is a proto3 `optional` field. */
static bool oneof_is_optional(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f)
{
	for (unsigned i = 0; i < d->n_fields; i++)
		if (&d->fields[i] != f && (d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    d->fields[i].quantifier_offset == f->quantifier_offset)
			return false;
	return true;
}

static bool is_map_entry(const ProtobufCMessageDescriptor *d)
{
	size_t nl = strlen(d->name);

	return d->n_fields == 2 && nl > 5 && strcmp(d->name + nl - 5, "Entry") == 0 && d->fields[0].id == 1 &&
	       strcmp(d->fields[0].name, "key") == 0 && d->fields[1].id == 2 &&
	       strcmp(d->fields[1].name, "value") == 0;
}

static size_t elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_ENUM:
		return 4;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	}
	return 0;
}

/* ------------------------------------------------------------------ output */

/* Length of a valid UTF-8 sequence at s (max n bytes), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

void prpc_json_put_string(struct buf *o, const char *s, size_t len)
{
	static const char hexd[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	buf_putc(o, '"');
	while (i < len) {
		unsigned char ch = p[i];
		size_t n;

		switch (ch) {
		case '"':
			buf_puts(o, "\\\"");
			i++;
			continue;
		case '\\':
			buf_puts(o, "\\\\");
			i++;
			continue;
		case '\n':
			buf_puts(o, "\\n");
			i++;
			continue;
		case '\r':
			buf_puts(o, "\\r");
			i++;
			continue;
		case '\t':
			buf_puts(o, "\\t");
			i++;
			continue;
		case '\b':
			buf_puts(o, "\\b");
			i++;
			continue;
		case '\f':
			buf_puts(o, "\\f");
			i++;
			continue;
		default:
			break;
		}
		if (ch < 0x20) {
			char esc[7] = {'\\', 'u', '0', '0', hexd[ch >> 4], hexd[ch & 15], 0};

			buf_puts(o, esc);
			i++;
			continue;
		}
		n = utf8_len(p + i, len - i);
		if (n == 0) {
			buf_puts(o, "\xef\xbf\xbd"); /* U+FFFD, as String::from_utf8_lossy would */
			i++;
			continue;
		}
		buf_append(o, p + i, n);
		i += n;
	}
	buf_putc(o, '"');
}

/*
 * Floats as serde_json prints them (ryu): the shortest digits that read back
 * to the same value, plain notation when the decimal point falls within
 * 16 digits (13 for f32), else d.ddde<exp>; integral values keep a ".0".
 */
static void put_float(struct buf *o, double v, bool is_f32)
{
	char tmp[48], digits[24];
	int exp10 = 0, n = 0, kk;

	if (!isfinite(v)) {
		buf_puts(o, "null"); /* serde_json writes non-finite floats as null */
		return;
	}
	if (v == 0) {
		buf_puts(o, signbit(v) ? "-0.0" : "0.0");
		return;
	}
	if (v < 0) {
		buf_putc(o, '-');
		v = -v;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
		if (is_f32 ? strtof(tmp, NULL) == (float)v : strtod(tmp, NULL) == v)
			break;
	}
	/* tmp = "d[.ddd]e[+-]xx" */
	for (const char *p = tmp; *p && *p != 'e'; p++)
		if (*p >= '0' && *p <= '9' && n < (int)sizeof(digits) - 1)
			digits[n++] = *p;
	while (n > 1 && digits[n - 1] == '0')
		n--;
	digits[n] = '\0';
	exp10 = atoi(strchr(tmp, 'e') + 1);
	kk = exp10 + 1; /* position of the decimal point */
	int max_kk = is_f32 ? 13 : 16, min_kk = is_f32 ? -6 : -5;

	if (kk >= n && kk <= max_kk) {
		buf_puts(o, digits);
		for (int i = n; i < kk; i++)
			buf_putc(o, '0');
		buf_puts(o, ".0");
	} else if (kk > 0 && kk <= max_kk) {
		buf_printf(o, "%.*s.%s", kk, digits, digits + kk);
	} else if (kk > min_kk && kk <= 0) {
		buf_puts(o, "0.");
		for (int i = kk; i < 0; i++)
			buf_putc(o, '0');
		buf_puts(o, digits);
	} else if (n == 1) {
		buf_printf(o, "%se%d", digits, kk - 1);
	} else {
		buf_printf(o, "%c.%se%d", digits[0], digits + 1, kk - 1);
	}
}

static void enc_msg(const ProtobufCMessage *m, struct buf *o);

static void enc_value(const ProtobufCFieldDescriptor *f, const void *p, struct buf *o)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_ENUM:
		buf_printf(o, "%" PRId32, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		buf_printf(o, "%" PRIu32, *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		buf_printf(o, "%" PRId64, *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		buf_printf(o, "%" PRIu64, *(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		put_float(o, (double)*(const float *)p, true);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		put_float(o, *(const double *)p, false);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		buf_puts(o, *(const protobuf_c_boolean *)p ? "true" : "false");
		break;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;

		prpc_json_put_string(o, s ? s : "", s ? strlen(s) : 0);
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = p;

		buf_putc(o, '"');
		if (b->len)
			buf_put_hex(o, b->data, b->len);
		buf_putc(o, '"');
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		enc_msg(*(ProtobufCMessage *const *)p, o);
		break;
	}
}

/* Map keys are always JSON strings. */
static void enc_map_key(const ProtobufCFieldDescriptor *f, const void *p, struct buf *o)
{
	struct buf tmp = BUF_INIT;

	if (f->type == PROTOBUF_C_TYPE_STRING) {
		enc_value(f, p, o);
		return;
	}
	enc_value(f, p, &tmp);
	prpc_json_put_string(o, (const char *)tmp.data, tmp.len);
	buf_free(&tmp);
}

static void enc_field(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, struct buf *o)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		if (*CMEMBER(m, f->quantifier_offset, uint32_t) != f->id) {
			buf_puts(o, "null");
			return;
		}
	} else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		size_t n = *CMEMBER(m, f->quantifier_offset, size_t);
		const char *arr = *CMEMBER(m, f->offset, char *);
		size_t es = elem_size(f->type);
		bool map = f->type == PROTOBUF_C_TYPE_MESSAGE && is_map_entry(f->descriptor);

		buf_putc(o, map ? '{' : '[');
		for (size_t i = 0; i < n; i++) {
			if (i)
				buf_putc(o, ',');
			if (map) {
				const ProtobufCMessage *ent = *(ProtobufCMessage *const *)(arr + i * es);
				const ProtobufCMessageDescriptor *ed = f->descriptor;

				enc_map_key(&ed->fields[0], CMEMBER(ent, ed->fields[0].offset, char), o);
				buf_putc(o, ':');
				enc_value(&ed->fields[1], CMEMBER(ent, ed->fields[1].offset, char), o);
			} else {
				enc_value(f, arr + i * es, o);
			}
		}
		buf_putc(o, map ? '}' : ']');
		return;
	} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
		   f->type != PROTOBUF_C_TYPE_MESSAGE) {
		if (!*CMEMBER(m, f->quantifier_offset, protobuf_c_boolean)) {
			buf_puts(o, "null");
			return;
		}
	} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type == PROTOBUF_C_TYPE_STRING) {
		const char *s = *CMEMBER(m, f->offset, char *);

		if (!s) {
			buf_puts(o, "null");
			return;
		}
	}
	(void)d;
	enc_value(f, CMEMBER(m, f->offset, char), o);
}

/* Field holds its type's zero value (empty string/bytes/list, 0, false, null). */
static bool field_is_empty(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	const void *p = CMEMBER(m, f->offset, char);

	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *CMEMBER(m, f->quantifier_offset, uint32_t) != f->id;
	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return *CMEMBER(m, f->quantifier_offset, size_t) == 0;
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		return !*(char *const *)p || !**(char *const *)p;
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)p)->len == 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return !*(ProtobufCMessage *const *)p;
	case PROTOBUF_C_TYPE_BOOL:
		return !*(const protobuf_c_boolean *)p;
	case PROTOBUF_C_TYPE_FLOAT:
		return *(const float *)p == 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		return *(const double *)p == 0;
	default:
		return elem_size(f->type) == 8 ? *(const uint64_t *)p == 0 : *(const uint32_t *)p == 0;
	}
}

static bool in_list(const char *const *list, const char *name)
{
	for (; list && *list; list++)
		if (strcmp(*list, name) == 0)
			return true;
	return false;
}

static void enc_msg_omit(const ProtobufCMessage *m, const char *const *omit, struct buf *o);

static void enc_msg(const ProtobufCMessage *m, struct buf *o)
{
	enc_msg_omit(m, NULL, o);
}

static void enc_msg_omit(const ProtobufCMessage *m, const char *const *omit, struct buf *o)
{
	const ProtobufCMessageDescriptor *d;
	bool first = true;

	if (!m || prpc_desc_is_empty(m->descriptor)) {
		buf_puts(o, "null");
		return;
	}
	d = m->descriptor;
	buf_putc(o, '{');
	/* Plain fields (and proto3 optionals) first, then real oneofs, as prost orders them. */
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < d->n_fields; i++) {
			const ProtobufCFieldDescriptor *f = &d->fields[i];
			bool real_oneof =
			    (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && !oneof_is_optional(d, f);

			if (real_oneof != (pass == 1))
				continue;
			if (real_oneof && *CMEMBER(m, f->quantifier_offset, uint32_t) != f->id)
				continue;
			if (omit && in_list(omit, f->name) && field_is_empty(m, f))
				continue;
			if (!first)
				buf_putc(o, ',');
			first = false;
			prpc_json_put_string(o, f->name, strlen(f->name));
			buf_putc(o, ':');
			enc_field(m, f, o);
		}
	}
	buf_putc(o, '}');
}

void prpc_json_encode(const ProtobufCMessage *m, struct buf *out)
{
	enc_msg(m, out);
}

void prpc_json_encode_ex(const ProtobufCMessage *m, const char *const *omit_if_empty, struct buf *out)
{
	enc_msg_omit(m, omit_if_empty, out);
}

static bool utf8_valid(const char *s)
{
	size_t n = strlen(s);

	for (size_t i = 0, l; i < n; i += l)
		if (!(l = utf8_len((const unsigned char *)s + i, n - i)))
			return false;
	return true;
}

static int check_utf8(const ProtobufCMessage *m, int depth, struct err *e)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	if (depth > PRPC_MAX_DEPTH)
		return err_set(e, "message nesting exceeds %d levels", PRPC_MAX_DEPTH);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		size_t n = 1;
		const char *base = CMEMBER(m, f->offset, char);

		if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *CMEMBER(m, f->quantifier_offset, uint32_t) != f->id)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			n = *CMEMBER(m, f->quantifier_offset, size_t);
			base = *(const char *const *)base;
		}
		for (size_t k = 0; k < n; k++) {
			const void *p = base + k * elem_size(f->type);

			if (f->type == PROTOBUF_C_TYPE_STRING) {
				const char *s = *(const char *const *)p;

				if (s && !utf8_valid(s))
					return err_set(e, "%s: invalid utf-8 sequence", f->name);
			} else {
				const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)p;

				if (sub && check_utf8(sub, depth + 1, e) < 0)
					return err_wrap(e, "%s", f->name);
			}
		}
	}
	return 0;
}

int prpc_msg_check_utf8(const ProtobufCMessage *m, struct err *e)
{
	return check_utf8(m, 0, e);
}

/* ------------------------------------------------------------------ input */

struct dec {
	bool strings; /* values come from a query string: parse scalars from text */
	struct err *e;
};

static int dec_msg(const ProtobufCMessageDescriptor *d, const json_t *j, ProtobufCMessage **out, int depth,
		   struct dec *x);

static const char *json_kind(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		return "map";
	case JSON_ARRAY:
		return "sequence";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "floating point";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	case JSON_NULL:
		return "null";
	}
	return "value";
}

/*
 * jansson stores integers as int64 and rejects larger literals, but uint64
 * fields use the full range. Before parsing, literals in (INT64_MAX,
 * UINT64_MAX] are rewritten to a string with this NUL-led marker, which no
 * real JSON string can reach a field with (strings with NUL are refused).
 */
#define BIG_U64_MARK "\\u0000u64:"
#define BIG_U64_MARK_DEC "\0u64:"

static bool is_big_u64(const char *s, size_t n, uint64_t *v)
{
	uint64_t acc = 0;

	if (n < 19 || n > 20 || s[0] == '0')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (acc > (UINT64_MAX - d) / 10)
			return false;
		acc = acc * 10 + d;
	}
	*v = acc;
	return acc > (uint64_t)INT64_MAX;
}

/* Returns a rewritten copy (caller frees) or NULL when nothing changed. */
static char *rewrite_big_ints(const char *s, size_t len, size_t *out_len)
{
	struct buf o = BUF_INIT;
	size_t i = 0, copied = 0;
	bool changed = false;

	while (i < len) {
		char ch = s[i];

		if (ch == '"') {
			for (i++; i < len && s[i] != '"'; i++)
				if (s[i] == '\\')
					i++;
			i++;
			continue;
		}
		if (ch >= '0' && ch <= '9' && (i == 0 || !strchr("-+.eE0123456789", s[i - 1]))) {
			size_t st = i;
			uint64_t v;

			while (i < len && s[i] >= '0' && s[i] <= '9')
				i++;
			if ((i == len || (s[i] && !strchr(".eE", s[i]))) && is_big_u64(s + st, i - st, &v)) {
				buf_append(&o, s + copied, st - copied);
				buf_printf(&o, "\"%s%" PRIu64 "\"", BIG_U64_MARK, v);
				copied = i;
				changed = true;
			}
			continue;
		}
		i++;
	}
	if (!changed)
		return NULL;
	buf_append(&o, s + copied, len - copied);
	return (char *)buf_steal(&o, out_len);
}

static bool big_u64_value(const json_t *j, uint64_t *v)
{
	const char *s;

	if (!json_is_string(j) || json_string_length(j) < 6 ||
	    memcmp(json_string_value(j), BIG_U64_MARK_DEC, 5) != 0)
		return false;
	s = json_string_value(j) + 5;
	*v = strtoull(s, NULL, 10);
	return true;
}

static int get_int(const json_t *j, bool is_unsigned, int64_t *sv, uint64_t *uv, struct dec *x)
{
	uint64_t big;

	if (big_u64_value(j, &big)) {
		if (!is_unsigned)
			return err_set(x->e, "invalid value: integer `%" PRIu64 "`, expected i64", big);
		*uv = big;
		*sv = (int64_t)big;
		return 0;
	}
	if (json_is_integer(j)) {
		json_int_t v = json_integer_value(j);

		if (is_unsigned && v < 0)
			return err_set(x->e,
				       "invalid value: integer `%" JSON_INTEGER_FORMAT
				       "`, expected an unsigned integer",
				       v);
		*sv = v;
		*uv = (uint64_t)v;
		return 0;
	}
	if (x->strings && json_is_string(j)) {
		const char *s = json_string_value(j);
		char *end;

		errno = 0;
		if (!*s)
			return err_set(x->e, "cannot parse integer from empty string");
		if (is_unsigned) {
			if (*s == '-' || *s == '+')
				return err_set(x->e, "invalid digit found in string");
			*uv = strtoull(s, &end, 10);
			*sv = (int64_t)*uv;
		} else {
			*sv = strtoll(s, &end, 10);
			*uv = (uint64_t)*sv;
		}
		if (*end)
			return err_set(x->e, "invalid digit found in string");
		if (errno)
			return err_set(x->e, "number too large to fit in target type");
		return 0;
	}
	return err_set(x->e, "invalid type: %s, expected an integer", json_kind(j));
}

static int dec_value(const ProtobufCFieldDescriptor *f, const json_t *j, void *p, int depth, struct dec *x)
{
	int64_t sv = 0;
	uint64_t uv = 0;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if (get_int(j, false, &sv, &uv, x) < 0)
			return -1;
		if (sv < INT32_MIN || sv > INT32_MAX)
			return err_set(x->e, "invalid value: integer `%" PRId64 "`, expected i32", sv);
		*(int32_t *)p = (int32_t)sv;
		return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if (get_int(j, true, &sv, &uv, x) < 0)
			return -1;
		if (uv > UINT32_MAX)
			return err_set(x->e, "invalid value: integer `%" PRIu64 "`, expected u32", uv);
		*(uint32_t *)p = (uint32_t)uv;
		return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if (get_int(j, false, &sv, &uv, x) < 0)
			return -1;
		*(int64_t *)p = sv;
		return 0;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if (get_int(j, true, &sv, &uv, x) < 0)
			return -1;
		*(uint64_t *)p = uv;
		return 0;
	case PROTOBUF_C_TYPE_ENUM:
		if (json_is_string(j) && !x->strings) {
			const ProtobufCEnumValue *ev =
			    protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, json_string_value(j));

			if (!ev)
				return err_set(x->e, "unknown variant `%s`", json_string_value(j));
			*(int32_t *)p = ev->value;
			return 0;
		}
		if (get_int(j, false, &sv, &uv, x) < 0)
			return -1;
		if (sv < INT32_MIN || sv > INT32_MAX)
			return err_set(x->e, "invalid value: integer `%" PRId64 "`, expected i32", sv);
		*(int32_t *)p = (int32_t)sv;
		return 0;
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE: {
		double v;

		if (json_is_number(j)) {
			v = json_number_value(j);
		} else if (x->strings && json_is_string(j)) {
			char *end;

			v = strtod(json_string_value(j), &end);
			if (!*json_string_value(j) || *end)
				return err_set(x->e, "invalid float literal");
		} else {
			return err_set(x->e, "invalid type: %s, expected a number", json_kind(j));
		}
		if (f->type == PROTOBUF_C_TYPE_FLOAT)
			*(float *)p = (float)v;
		else
			*(double *)p = v;
		return 0;
	}
	case PROTOBUF_C_TYPE_BOOL:
		if (json_is_boolean(j)) {
			*(protobuf_c_boolean *)p = json_is_true(j);
			return 0;
		}
		if (x->strings && json_is_string(j)) {
			if (strcmp(json_string_value(j), "true") == 0)
				*(protobuf_c_boolean *)p = 1;
			else if (strcmp(json_string_value(j), "false") == 0)
				*(protobuf_c_boolean *)p = 0;
			else
				return err_set(x->e, "provided string was not `true` or `false`");
			return 0;
		}
		return err_set(x->e, "invalid type: %s, expected a boolean", json_kind(j));
	case PROTOBUF_C_TYPE_STRING: {
		char *s;

		if (!json_is_string(j))
			return err_set(x->e, "invalid type: %s, expected a string", json_kind(j));
		if (memchr(json_string_value(j), '\0', json_string_length(j)))
			return err_set(x->e, "string contains a NUL character");
		s = strdup(json_string_value(j));
		if (!s)
			abort();
		*(char **)p = s;
		return 0;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData *b = p;
		uint8_t *data;
		size_t len;

		if (!json_is_string(j))
			return err_set(x->e, "invalid type: %s, expected a hex string", json_kind(j));
		if (hex_decode_alloc(json_string_value(j), json_string_length(j), &data, &len, x->e) < 0)
			return -1;
		if (len == 0) {
			free(data);
			data = NULL;
		}
		b->data = data;
		b->len = len;
		return 0;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		ProtobufCMessage *sub = NULL;

		if (dec_msg(f->descriptor, j, &sub, depth + 1, x) < 0)
			return -1;
		*(ProtobufCMessage **)p = sub;
		return 0;
	}
	}
	return err_set(x->e, "unsupported field type");
}

/* A query string gives repeated fields as arrays, {"0":..,"1":..} or one scalar. */
static json_t *as_array(const json_t *j, struct dec *x)
{
	if (json_is_array(j))
		return json_incref((json_t *)j);
	if (json_is_object(j) && x->strings) {
		json_t *arr = json_array();
		size_t n = json_object_size(j);

		for (size_t i = 0; i < n; i++) {
			char key[24];
			json_t *v;

			snprintf(key, sizeof(key), "%zu", i);
			v = json_object_get(j, key);
			if (!v) {
				json_decref(arr);
				return NULL;
			}
			json_array_append(arr, v);
		}
		return arr;
	}
	if (x->strings && json_is_string(j)) {
		json_t *arr = json_array();

		json_array_append(arr, (json_t *)j);
		return arr;
	}
	return NULL;
}

static int dec_repeated(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, const json_t *j, int depth,
			struct dec *x)
{
	size_t es = elem_size(f->type), *np = MEMBER(m, f->quantifier_offset, size_t);
	char **arrp = MEMBER(m, f->offset, char *);
	bool map = f->type == PROTOBUF_C_TYPE_MESSAGE && is_map_entry(f->descriptor);

	if (map) {
		const ProtobufCMessageDescriptor *ed = f->descriptor;
		const char *key;
		json_t *val;

		if (!json_is_object(j))
			return err_set(x->e, "invalid type: %s, expected a map", json_kind(j));
		*arrp = calloc(json_object_size(j) + 1, es);
		if (!*arrp)
			abort();
		json_object_foreach((json_t *)j, key, val)
		{
			ProtobufCMessage *ent = prpc_msg_new(ed);
			_cleanup_json_ json_t *kj = json_string(key);

			((ProtobufCMessage **)*arrp)[(*np)++] = ent;
			/* Keys are strings in JSON; parse them into the key type. */
			struct dec kx = {.strings = true, .e = x->e};

			if (dec_value(&ed->fields[0], kj, MEMBER(ent, ed->fields[0].offset, char), depth,
				      &kx) < 0)
				return err_wrap(x->e, "key `%s`", key);
			if (!json_is_null(val) &&
			    dec_value(&ed->fields[1], val, MEMBER(ent, ed->fields[1].offset, char), depth,
				      x) < 0)
				return err_wrap(x->e, "key `%s`", key);
		}
		return 0;
	}

	_cleanup_json_ json_t *arr = as_array(j, x);
	size_t n;

	if (!arr)
		return err_set(x->e, "invalid type: %s, expected a sequence", json_kind(j));
	n = json_array_size(arr);
	*arrp = calloc(n + 1, es);
	if (!*arrp)
		abort();
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_array_get(arr, i);

		if (json_is_null(v) && f->type != PROTOBUF_C_TYPE_MESSAGE)
			return err_set(x->e, "invalid type: null in sequence");
		if (f->type == PROTOBUF_C_TYPE_MESSAGE && json_is_null(v))
			return err_set(x->e, "invalid type: null, expected a message");
		if (dec_value(f, v, *arrp + i * es, depth, x) < 0)
			return err_wrap(x->e, "element %zu", i);
		(*np)++;
	}
	return 0;
}

static int dec_field(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, const json_t *j, int depth,
		     struct dec *x)
{
	void *p = MEMBER(m, f->offset, char);

	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return dec_repeated(m, f, j, depth, x);
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		uint32_t *casep = MEMBER(m, f->quantifier_offset, uint32_t);
		char tmp[sizeof(ProtobufCBinaryData)] = {0};

		/* Another member may already be set (a real oneof given twice). */
		if (*casep != 0)
			return err_set(x->e, "more than one member of a oneof is set");
		if (dec_value(f, j, tmp, depth, x) < 0)
			return -1;
		memcpy(p, tmp, elem_size(f->type));
		*casep = f->id;
		return 0;
	}
	/* Field is at its default: free the default string only if it was allocated. */
	if (f->type == PROTOBUF_C_TYPE_STRING) {
		char *old = *(char **)p;

		if (dec_value(f, j, p, depth, x) < 0)
			return -1;
		if (old && old != f->default_value && old != protobuf_c_empty_string)
			free(old);
	} else if (f->type == PROTOBUF_C_TYPE_BYTES) {
		ProtobufCBinaryData old = *(ProtobufCBinaryData *)p;

		if (dec_value(f, j, p, depth, x) < 0)
			return -1;
		(void)old; /* defaults of bytes fields are static */
	} else if (dec_value(f, j, p, depth, x) < 0) {
		return -1;
	}
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
	    f->type != PROTOBUF_C_TYPE_MESSAGE)
		*MEMBER(m, f->quantifier_offset, protobuf_c_boolean) = 1;
	return 0;
}

static int dec_msg(const ProtobufCMessageDescriptor *d, const json_t *j, ProtobufCMessage **out, int depth,
		   struct dec *x)
{
	ProtobufCMessage *m;

	*out = NULL;
	if (depth > PRPC_MAX_DEPTH)
		return err_set(x->e, "message nesting exceeds %d levels", PRPC_MAX_DEPTH);
	if (j && !json_is_null(j) && !json_is_object(j))
		return err_set(x->e, "invalid type: %s, expected struct %s", json_kind(j), d->short_name);
	m = prpc_msg_new(d);
	if (prpc_desc_is_empty(d) || !j || json_is_null(j)) {
		*out = m;
		return 0;
	}
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const json_t *v = json_object_get(j, f->name);

		if (!v || json_is_null(v))
			continue;
		if (dec_field(m, f, v, depth, x) < 0) {
			prpc_msg_free(m);
			return err_wrap(x->e, "%s", f->name);
		}
	}
	*out = m;
	return 0;
}

ProtobufCMessage *prpc_json_decode(const ProtobufCMessageDescriptor *d, const json_t *j, struct err *e)
{
	struct dec x = {.strings = false, .e = e};
	ProtobufCMessage *m;

	if (dec_msg(d, j, &m, 0, &x) < 0)
		return NULL;
	return m;
}

ProtobufCMessage *prpc_json_decode_text(const ProtobufCMessageDescriptor *d, const void *text, size_t len,
					struct err *e)
{
	const char *s = text;
	json_error_t je;
	size_t i = 0;

	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
		i++;
	if (i == len)
		return prpc_json_decode(d, NULL, e);
	size_t rl = 0;
	_cleanup_free_ char *rewritten = rewrite_big_ints(s, len, &rl);
	_cleanup_json_ json_t *j = rewritten
				       ? json_loadb(rewritten, rl, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je)
				       : json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);

	if (!j) {
		err_set(e, "%s at line %d column %d", je.text, je.line, je.column);
		return NULL;
	}
	return prpc_json_decode(d, j, e);
}

/* ------------------------------------------------------------------ query strings */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode s[0..len) ('+' is a space) into a malloc'd string. */
static char *url_decode(const char *s, size_t len, size_t *out_len, struct err *e)
{
	char *o = malloc(len + 1);
	size_t n = 0;

	if (!o)
		abort();
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '+') {
			o[n++] = ' ';
		} else if (s[i] == '%') {
			int hi, lo;

			if (i + 2 >= len || (hi = hexval((unsigned char)s[i + 1])) < 0 ||
			    (lo = hexval((unsigned char)s[i + 2])) < 0) {
				free(o);
				err_set(e, "invalid percent-encoding in query string");
				return NULL;
			}
			o[n++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			o[n++] = s[i];
		}
	}
	o[n] = '\0';
	*out_len = n;
	return o;
}

/* Insert value under the key path segs[0..n) of obj (see prpc_query_to_json). */
static int qs_insert(json_t *obj, char **segs, size_t n, json_t *val, struct err *e)
{
	for (size_t i = 0; i + 1 < n; i++) {
		json_t *next = json_object_get(obj, segs[i]);

		if (!next) {
			next = json_object();
			json_object_set_new(obj, segs[i], next);
		}
		if (!json_is_object(next))
			return err_set(e, "query key `%s` used both as a value and a map", segs[i]);
		obj = next;
	}
	const char *k = segs[n - 1];
	json_t *old = json_object_get(obj, k);

	if (!old) {
		json_object_set(obj, k, val);
	} else if (json_is_array(old)) {
		json_array_append(old, val);
	} else if (json_is_string(old)) {
		json_t *arr = json_array();

		json_array_append(arr, old);
		json_array_append(arr, val);
		json_object_set_new(obj, k, arr);
	} else {
		return err_set(e, "query key `%s` used both as a value and a map", k);
	}
	return 0;
}

json_t *prpc_query_to_json(const char *query, struct err *e)
{
	_cleanup_json_ json_t *root = json_object();
	const char *p = query ? query : "";

	while (*p) {
		const char *amp = strchr(p, '&'), *eq;
		size_t plen = amp ? (size_t)(amp - p) : strlen(p), klen, vlen, kl, vl;

		eq = memchr(p, '=', plen);
		klen = eq ? (size_t)(eq - p) : plen;
		vlen = eq ? plen - klen - 1 : 0;
		if (klen) {
			_cleanup_free_ char *key = url_decode(p, klen, &kl, e);
			_cleanup_free_ char *val = NULL;
			char *segs[16];
			size_t n = 0;
			bool append = false;

			if (!key)
				return NULL;
			if (memchr(key, '\0', kl))
				return err_set(e, "invalid query key"), NULL;
			/* jansson refuses (and frees the value of) non-UTF-8 keys. */
			for (size_t i = 0, l; i < kl; i += l)
				if (!(l = utf8_len((const unsigned char *)key + i, kl - i)))
					return err_set(e, "query key is not valid UTF-8"), NULL;
			val = url_decode(eq ? eq + 1 : "", vlen, &vl, e);
			if (!val)
				return NULL;
			/* Split "a[b][c]" into a, b, c; a trailing "[]" appends. */
			char *br = strchr(key, '[');

			segs[n++] = key;
			while (br) {
				char *close = strchr(br, ']');

				if (!close)
					break;
				*br = '\0';
				*close = '\0';
				if (br + 1 == close) {
					append = true;
					break;
				}
				if (n == ARRAY_SIZE(segs))
					return err_set(e, "query key nests too deeply"), NULL;
				segs[n++] = br + 1;
				br = close[1] == '[' ? close + 1 : NULL;
			}
			_cleanup_json_ json_t *v = json_stringn(val, vl);

			if (!v)
				return err_set(e, "query value is not valid UTF-8"), NULL;
			if (append) {
				json_t *parent = root;

				for (size_t i = 0; i + 1 < n; i++) {
					json_t *next = json_object_get(parent, segs[i]);

					if (!next) {
						next = json_object();
						json_object_set_new(parent, segs[i], next);
					}
					if (!json_is_object(next))
						return err_set(e, "query key `%s` used both ways", segs[i]),
						       NULL;
					parent = next;
				}
				json_t *arr = json_object_get(parent, segs[n - 1]);

				if (!arr) {
					arr = json_array();
					json_object_set_new(parent, segs[n - 1], arr);
				} else if (json_is_string(arr)) {
					json_t *a2 = json_array();

					json_array_append(a2, arr);
					json_object_set_new(parent, segs[n - 1], a2);
					arr = a2;
				}
				if (!json_is_array(arr))
					return err_set(e, "query key `%s` used both ways", segs[n - 1]), NULL;
				json_array_append(arr, v);
			} else if (qs_insert(root, segs, n, v, e) < 0) {
				return NULL;
			}
		}
		if (!amp)
			break;
		p = amp + 1;
	}
	return TAKE_PTR(root);
}

ProtobufCMessage *prpc_query_decode(const ProtobufCMessageDescriptor *d, const char *query, struct err *e)
{
	struct dec x = {.strings = true, .e = e};
	ProtobufCMessage *m;
	_cleanup_json_ json_t *j = prpc_query_to_json(query, e);

	if (!j)
		return NULL;
	if (dec_msg(d, j, &m, 0, &x) < 0)
		return NULL;
	return m;
}
