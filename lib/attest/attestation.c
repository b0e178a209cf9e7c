/*
 * attestation.c — see attestation.h. Decoders are cursors over the input
 * (lib/codec); nothing is allocated before its length has been checked
 * against the bytes that remain.
 */
#include "attest/attestation.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "attest/td_quote.h"
#include "codec/msgpack.h"
#include "codec/scale.h"
#include "core/cleanup.h"

/* V0 quote enum variants. */
enum { V0_QUOTE_TDX = 0, V0_QUOTE_VARIANTS = 5 };
static const char *const v0_quote_names[V0_QUOTE_VARIANTS] = {"Tdx", "GcpTdx", "NitroEnclave", "AmdSevSnp",
							      "AwsNitroTpm"};
/* Smallest SCALE encodings: TdxEvent = u32 u32 + 3 empty vecs; RuntimeEvent = 2 empty vecs. */
#define V0_TDX_EVENT_MIN 11
#define V0_RUNTIME_EVENT_MIN 2

void attestation_init(struct attestation *a)
{
	memset(a, 0, sizeof(*a));
}

void attestation_free(struct attestation *a)
{
	free(a->quote);
	event_log_free(&a->event_log);
	event_log_free(&a->runtime_events);
	free(a->config);
	free(a->report_data_payload);
	attestation_init(a);
}

/* Strings held as C strings must not contain NUL (the re-encoding would
 * differ from the input). */
static int scale_read_cstr(struct scale_reader *r, char **out, struct err *e)
{
	size_t n;

	if (scale_read_str(r, out, &n, e) < 0)
		return -1;
	if (strlen(*out) != n) {
		free(*out);
		*out = NULL;
		return err_set(e, "string contains a NUL byte");
	}
	return 0;
}

static int mp_read_cstr(struct mp_reader *r, char **out, struct err *e)
{
	size_t n;

	if (mp_read_str_alloc(r, out, &n, e) < 0)
		return -1;
	if (strlen(*out) != n) {
		free(*out);
		*out = NULL;
		return err_set(e, "string contains a NUL byte");
	}
	return 0;
}

/* ---- V0: SCALE ---- */

static int v0_decode(struct scale_reader *r, struct attestation *a, struct err *e)
{
	uint8_t tag, variant;
	size_t n;

	if (scale_read_variant(r, 1, &tag, e) < 0)
		return err_wrap(e, "VersionedAttestation");
	if (scale_read_variant(r, V0_QUOTE_VARIANTS, &variant, e) < 0)
		return err_wrap(e, "attestation quote");
	if (variant != V0_QUOTE_TDX)
		return err_set(e, "unsupported attestation platform %s", v0_quote_names[variant]);
	if (scale_read_bytes_alloc(r, &a->quote, &a->quote_len, e) < 0)
		return err_wrap(e, "TDX quote");
	if (scale_read_len(r, V0_TDX_EVENT_MIN, &n, e) < 0)
		return err_wrap(e, "TDX event log");
	for (size_t i = 0; i < n; i++) {
		uint32_t imr, type;
		const uint8_t *digest, *payload;
		size_t dlen, plen;
		_cleanup_free_ char *name = NULL;

		if (scale_read_u32(r, &imr, e) < 0 || scale_read_u32(r, &type, e) < 0 ||
		    scale_read_bytes(r, &digest, &dlen, e) < 0 || scale_read_cstr(r, &name, e) < 0 ||
		    scale_read_bytes(r, &payload, &plen, e) < 0 ||
		    event_log_append(&a->event_log, imr, type, digest, dlen, name, payload, plen,
				     imr == RUNTIME_EVENT_IMR && type == EVENT_TYPE_RUNTIME ? 1 : 0, e) < 0)
			return err_wrap(e, "TDX event %zu", i);
	}
	if (scale_read_len(r, V0_RUNTIME_EVENT_MIN, &n, e) < 0)
		return err_wrap(e, "runtime events");
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *name = NULL;
		const uint8_t *payload;
		size_t plen;

		if (scale_read_cstr(r, &name, e) < 0 || scale_read_bytes(r, &payload, &plen, e) < 0 ||
		    event_log_append_runtime(&a->runtime_events, name, payload, plen, 1, e) < 0)
			return err_wrap(e, "runtime event %zu", i);
	}
	if (scale_read_fixed(r, a->report_data, 64, e) < 0)
		return err_wrap(e, "report_data");
	if (scale_read_cstr(r, &a->config, e) < 0)
		return err_wrap(e, "config");
	a->format = ATTESTATION_V0;
	a->stack = ATTESTATION_STACK_DSTACK;
	return scale_expect_end(r, e);
}

static bool has_v2_event(const struct attestation *a)
{
	for (size_t i = 0; i < a->event_log.n; i++)
		if (a->event_log.ev[i].version == 2)
			return true;
	for (size_t i = 0; i < a->runtime_events.n; i++)
		if (a->runtime_events.ev[i].version == 2)
			return true;
	return false;
}

int attestation_encode_v0(const struct attestation *a, struct buf *out, struct err *e)
{
	if (has_v2_event(a))
		return err_set(e, "V2 runtime events cannot be encoded as a V0 attestation");
	if (a->stack != ATTESTATION_STACK_DSTACK)
		return err_set(e, "a dstack-pod attestation cannot be encoded as V0");
	scale_put_u8(out, 0);
	scale_put_u8(out, V0_QUOTE_TDX);
	scale_put_bytes(out, a->quote, a->quote_len);
	scale_put_compact(out, a->event_log.n);
	for (size_t i = 0; i < a->event_log.n; i++) {
		const struct tdx_event *ev = &a->event_log.ev[i];

		scale_put_u32(out, ev->imr);
		scale_put_u32(out, ev->event_type);
		scale_put_bytes(out, ev->digest, ev->digest_len);
		scale_put_str(out, ev->event);
		scale_put_bytes(out, ev->payload, ev->payload_len);
	}
	scale_put_compact(out, a->runtime_events.n);
	for (size_t i = 0; i < a->runtime_events.n; i++) {
		scale_put_str(out, a->runtime_events.ev[i].event);
		scale_put_bytes(out, a->runtime_events.ev[i].payload, a->runtime_events.ev[i].payload_len);
	}
	buf_append(out, a->report_data, 64);
	scale_put_str(out, a->config ? a->config : "");
	return 0;
}

/* ---- V1: MessagePack named maps ---- */

/* Walk a map whose values are parsed by field(); unknown keys are skipped.
 * The reader is left after the map. */
typedef int (*field_fn)(struct mp_reader *r, const struct mp_obj *key, void *ctx, struct err *e);

static int read_struct(struct mp_reader *r, field_fn field, void *ctx, struct err *e)
{
	uint32_t n;

	if (mp_read_map(r, &n, e) < 0)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		struct mp_obj key;
		int rc;

		if (mp_read(r, &key, e) < 0)
			return -1;
		if (key.type != MP_STR)
			return err_set(e, "map key must be a string, got %s", mp_type_name(key.type));
		rc = field(r, &key, ctx, e);
		if (rc < 0)
			return err_wrap(e, "field %.*s", (int)key.v.s.len, key.v.s.p);
		if (rc == 0 && mp_skip(r, e) < 0) /* 0 = not consumed: unknown field */
			return -1;
	}
	return 0;
}

struct v1_event {
	uint32_t imr, type, version;
	uint8_t *digest, *payload;
	size_t digest_len, payload_len;
	char *name;
	unsigned seen;
};

enum { SEEN_IMR = 1, SEEN_TYPE = 2, SEEN_DIGEST = 4, SEEN_NAME = 8, SEEN_PAYLOAD = 16 };

static void v1_event_free(struct v1_event *ev)
{
	free(ev->digest);
	free(ev->payload);
	free(ev->name);
}

/* Returns 1 when the value was consumed, 0 for unknown keys. */
static int v1_event_field(struct mp_reader *r, const struct mp_obj *k, void *ctx, struct err *e)
{
	struct v1_event *ev = ctx;

#define ONCE(bit)                                                                                            \
	do {                                                                                                 \
		if (ev->seen & (bit))                                                                        \
			return err_set(e, "duplicate field");                                                \
		ev->seen |= (bit);                                                                           \
	} while (0)
	if (mp_str_eq(k, "imr")) {
		ONCE(SEEN_IMR);
		return mp_read_u32(r, &ev->imr, e) < 0 ? -1 : 1;
	}
	if (mp_str_eq(k, "event_type")) {
		ONCE(SEEN_TYPE);
		return mp_read_u32(r, &ev->type, e) < 0 ? -1 : 1;
	}
	if (mp_str_eq(k, "digest")) {
		ONCE(SEEN_DIGEST);
		return mp_read_byte_vec(r, &ev->digest, &ev->digest_len, e) < 0 ? -1 : 1;
	}
	if (mp_str_eq(k, "event")) {
		ONCE(SEEN_NAME);
		return mp_read_cstr(r, &ev->name, e) < 0 ? -1 : 1;
	}
	if (mp_str_eq(k, "event_payload") || mp_str_eq(k, "payload")) {
		ONCE(SEEN_PAYLOAD);
		return mp_read_byte_vec(r, &ev->payload, &ev->payload_len, e) < 0 ? -1 : 1;
	}
	if (mp_str_eq(k, "version")) {
		struct mp_obj o;

		if (mp_peek(r, &o, e) < 0)
			return -1;
		if (o.type == MP_NIL)
			return 0;
		if (o.type == MP_STR) {
			/* Tolerate an enum written by name ("V1"/"V2"). */
			if (mp_read(r, &o, e) < 0)
				return -1;
			if (o.v.s.len == 2 && (o.v.s.p[0] == 'V' || o.v.s.p[0] == 'v') &&
			    (o.v.s.p[1] == '1' || o.v.s.p[1] == '2')) {
				ev->version = (uint32_t)(o.v.s.p[1] - '0');
				return 1;
			}
			return err_set(e, "unknown event version %.*s", (int)o.v.s.len, o.v.s.p);
		}
		return mp_read_u32(r, &ev->version, e) < 0 ? -1 : 1;
	}
#undef ONCE
	return 0;
}

static int v1_read_events(struct mp_reader *r, bool runtime, struct event_log *log, struct err *e)
{
	uint32_t n;
	unsigned need = runtime ? (SEEN_NAME | SEEN_PAYLOAD)
				: (SEEN_IMR | SEEN_TYPE | SEEN_DIGEST | SEEN_NAME | SEEN_PAYLOAD);

	if (mp_read_array(r, &n, e) < 0)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		struct v1_event ev = {0};
		int rc;

		rc = read_struct(r, v1_event_field, &ev, e);
		if (rc == 0 && (ev.seen & need) != need)
			rc = err_set(e, "missing field");
		if (rc == 0 && ev.version > 2)
			rc = err_set(e, "unsupported event version %u", ev.version);
		if (rc == 0 && runtime)
			rc = event_log_append_runtime(log, ev.name, ev.payload, ev.payload_len,
						      ev.version ? ev.version : 1, e);
		else if (rc == 0)
			rc = event_log_append(log, ev.imr, ev.type, ev.digest, ev.digest_len, ev.name,
					      ev.payload, ev.payload_len,
					      ev.imr == RUNTIME_EVENT_IMR && ev.type == EVENT_TYPE_RUNTIME
						  ? (ev.version ? ev.version : 1)
						  : ev.version,
					      e);
		v1_event_free(&ev);
		if (rc < 0)
			return err_wrap(e, "%s %u", runtime ? "runtime event" : "event", i);
	}
	return 0;
}

/* {kind, data} adjacently tagged enum: returns kind and leaves data_pos. */
struct tagged {
	const uint8_t *kind;
	uint32_t kind_len;
	size_t data_pos;
	bool has_data;
};

static int tagged_field(struct mp_reader *r, const struct mp_obj *k, void *ctx, struct err *e)
{
	struct tagged *t = ctx;
	struct mp_obj o;

	if (mp_str_eq(k, "kind")) {
		if (t->kind)
			return err_set(e, "duplicate field");
		if (mp_read(r, &o, e) < 0)
			return -1;
		if (o.type != MP_STR)
			return err_set(e, "kind must be a string");
		t->kind = o.v.s.p;
		t->kind_len = o.v.s.len;
		return 1;
	}
	if (mp_str_eq(k, "data")) {
		if (t->has_data)
			return err_set(e, "duplicate field");
		t->has_data = true;
		t->data_pos = r->pos;
		return 0; /* skipped now, parsed once kind is known */
	}
	return 0;
}

static bool kind_is(const struct tagged *t, const char *s)
{
	return t->kind && t->kind_len == strlen(s) && memcmp(t->kind, s, t->kind_len) == 0;
}

static int read_tagged(struct mp_reader *r, struct tagged *t, const char *what, struct err *e)
{
	memset(t, 0, sizeof(*t));
	if (read_struct(r, tagged_field, t, e) < 0)
		return err_wrap(e, "%s", what);
	if (!t->kind || !t->has_data)
		return err_set(e, "%s: missing kind or data", what);
	return 0;
}

struct platform_ctx {
	struct attestation *a;
	unsigned seen;
};

static int platform_field(struct mp_reader *r, const struct mp_obj *k, void *ctx, struct err *e)
{
	struct platform_ctx *p = ctx;

	if (mp_str_eq(k, "quote")) {
		if (p->seen & 1)
			return err_set(e, "duplicate field");
		p->seen |= 1;
		return mp_read_byte_vec(r, &p->a->quote, &p->a->quote_len, e) < 0 ? -1 : 1;
	}
	if (mp_str_eq(k, "event_log")) {
		if (p->seen & 2)
			return err_set(e, "duplicate field");
		p->seen |= 2;
		return v1_read_events(r, false, &p->a->event_log, e) < 0 ? -1 : 1;
	}
	return 0;
}

static int stack_field(struct mp_reader *r, const struct mp_obj *k, void *ctx, struct err *e)
{
	struct platform_ctx *p = ctx;

	if (mp_str_eq(k, "report_data")) {
		_cleanup_free_ uint8_t *rd = NULL;
		size_t n;

		if (p->seen & 1)
			return err_set(e, "duplicate field");
		p->seen |= 1;
		if (mp_read_byte_vec(r, &rd, &n, e) < 0)
			return -1;
		if (n != 64)
			return err_set(e, "stack.report_data must be 64 bytes, got %zu", n);
		memcpy(p->a->report_data, rd, 64);
		return 1;
	}
	if (mp_str_eq(k, "runtime_events")) {
		if (p->seen & 2)
			return err_set(e, "duplicate field");
		p->seen |= 2;
		return v1_read_events(r, true, &p->a->runtime_events, e) < 0 ? -1 : 1;
	}
	if (mp_str_eq(k, "config")) {
		if (p->seen & 4)
			return err_set(e, "duplicate field");
		p->seen |= 4;
		return mp_read_cstr(r, &p->a->config, e) < 0 ? -1 : 1;
	}
	if (mp_str_eq(k, "report_data_payload")) {
		if (p->seen & 8)
			return err_set(e, "duplicate field");
		p->seen |= 8;
		return mp_read_cstr(r, &p->a->report_data_payload, e) < 0 ? -1 : 1;
	}
	return 0;
}

struct top_ctx {
	bool version, platform, stack;
	struct tagged plat, stk;
	size_t plat_pos, stk_pos;
};

static int top_field(struct mp_reader *r, const struct mp_obj *k, void *ctx, struct err *e)
{
	struct top_ctx *t = ctx;

	if (mp_str_eq(k, "version")) {
		uint64_t v;

		if (t->version)
			return err_set(e, "duplicate field");
		t->version = true;
		if (mp_read_uint(r, &v, e) < 0)
			return -1;
		if (v != 1)
			return err_set(e, "unsupported attestation version %llu", (unsigned long long)v);
		return 1;
	}
	if (mp_str_eq(k, "platform")) {
		if (t->platform)
			return err_set(e, "duplicate field");
		t->platform = true;
		return read_tagged(r, &t->plat, "platform", e) < 0 ? -1 : 1;
	}
	if (mp_str_eq(k, "stack")) {
		if (t->stack)
			return err_set(e, "duplicate field");
		t->stack = true;
		return read_tagged(r, &t->stk, "stack", e) < 0 ? -1 : 1;
	}
	return 0;
}

static int v1_decode(struct mp_reader *r, struct attestation *a, struct err *e)
{
	struct top_ctx top = {0};
	struct platform_ctx p = {a, 0};
	size_t end;

	if (read_struct(r, top_field, &top, e) < 0)
		return -1;
	end = r->pos;
	if (!top.version || !top.platform || !top.stack)
		return err_set(e, "missing field %s",
			       !top.version    ? "version"
			       : !top.platform ? "platform"
					       : "stack");
	if (!kind_is(&top.plat, "tdx"))
		return err_set(e, "unsupported attestation platform %.*s", (int)top.plat.kind_len,
			       top.plat.kind);
	r->pos = top.plat.data_pos;
	if (read_struct(r, platform_field, &p, e) < 0)
		return err_wrap(e, "platform");
	if (p.seen != 3)
		return err_set(e, "platform: missing field %s", p.seen & 1 ? "event_log" : "quote");

	if (kind_is(&top.stk, "dstack"))
		a->stack = ATTESTATION_STACK_DSTACK;
	else if (kind_is(&top.stk, "dstack-pod"))
		a->stack = ATTESTATION_STACK_DSTACK_POD;
	else
		return err_set(e, "unsupported attestation stack %.*s", (int)top.stk.kind_len, top.stk.kind);
	p.seen = 0;
	r->pos = top.stk.data_pos;
	if (read_struct(r, stack_field, &p, e) < 0)
		return err_wrap(e, "stack");
	if ((p.seen & 7) != 7)
		return err_set(e, "stack: missing field %s",
			       !(p.seen & 1)   ? "report_data"
			       : !(p.seen & 2) ? "runtime_events"
					       : "config");
	if (a->stack == ATTESTATION_STACK_DSTACK_POD && !(p.seen & 8))
		return err_set(e, "stack: missing field report_data_payload");
	if (a->stack == ATTESTATION_STACK_DSTACK && a->report_data_payload) {
		free(a->report_data_payload);
		a->report_data_payload = NULL;
	}
	r->pos = end;
	a->format = ATTESTATION_V1;
	return mp_expect_end(r, e);
}

static void v1_put_events(struct buf *out, const struct event_log *log, bool runtime)
{
	mp_put_array(out, (uint32_t)log->n);
	for (size_t i = 0; i < log->n; i++) {
		const struct tdx_event *ev = &log->ev[i];
		bool v2 = ev->version == 2;

		if (runtime) {
			mp_put_map(out, v2 ? 3 : 2);
			mp_put_cstr(out, "event");
			mp_put_cstr(out, ev->event);
			mp_put_cstr(out, "payload");
			mp_put_bin(out, ev->payload, ev->payload_len);
		} else {
			mp_put_map(out, v2 ? 6 : 5);
			mp_put_cstr(out, "imr");
			mp_put_uint(out, ev->imr);
			mp_put_cstr(out, "event_type");
			mp_put_uint(out, ev->event_type);
			mp_put_cstr(out, "digest");
			mp_put_bin(out, ev->digest, ev->digest_len);
			mp_put_cstr(out, "event");
			mp_put_cstr(out, ev->event);
			mp_put_cstr(out, "event_payload");
			mp_put_bin(out, ev->payload, ev->payload_len);
		}
		if (v2) {
			mp_put_cstr(out, "version");
			mp_put_uint(out, 2);
		}
	}
}

int attestation_encode_v1(const struct attestation *a, struct buf *out, struct err *e)
{
	bool pod = a->stack == ATTESTATION_STACK_DSTACK_POD;

	if (a->quote_len > UINT32_MAX || a->event_log.n > UINT32_MAX)
		return err_set(e, "attestation too large");
	mp_put_map(out, 3);
	mp_put_cstr(out, "version");
	mp_put_uint(out, 1);
	mp_put_cstr(out, "platform");
	mp_put_map(out, 2);
	mp_put_cstr(out, "kind");
	mp_put_cstr(out, "tdx");
	mp_put_cstr(out, "data");
	mp_put_map(out, 2);
	mp_put_cstr(out, "quote");
	mp_put_byte_array(out, a->quote, a->quote_len);
	mp_put_cstr(out, "event_log");
	v1_put_events(out, &a->event_log, false);
	mp_put_cstr(out, "stack");
	mp_put_map(out, 2);
	mp_put_cstr(out, "kind");
	mp_put_cstr(out, pod ? "dstack-pod" : "dstack");
	mp_put_cstr(out, "data");
	mp_put_map(out, pod ? 4 : 3);
	mp_put_cstr(out, "report_data");
	mp_put_byte_array(out, a->report_data, 64);
	mp_put_cstr(out, "runtime_events");
	v1_put_events(out, &a->runtime_events, true);
	mp_put_cstr(out, "config");
	mp_put_cstr(out, a->config ? a->config : "");
	if (pod) {
		mp_put_cstr(out, "report_data_payload");
		mp_put_cstr(out, a->report_data_payload ? a->report_data_payload : "");
	}
	return 0;
}

int attestation_encode(const struct attestation *a, struct buf *out, struct err *e)
{
	if (has_v2_event(a) || a->stack != ATTESTATION_STACK_DSTACK)
		return attestation_encode_v1(a, out, e);
	return attestation_encode_v0(a, out, e);
}

int attestation_decode(const uint8_t *data, size_t len, struct attestation *a, struct err *e)
{
	int rc;

	attestation_init(a);
	if (len == 0)
		return err_set(e, "empty attestation");
	if (len > ATTESTATION_MAX_LEN)
		return err_set(e, "attestation of %zu bytes exceeds the %d byte limit", len,
			       ATTESTATION_MAX_LEN);
	if (data[0] == 0x00) {
		struct scale_reader r;

		scale_reader_init(&r, data, len);
		rc = v0_decode(&r, a, e);
	} else if ((data[0] & 0xf0) == 0x80 || data[0] == 0xde || data[0] == 0xdf) {
		struct mp_reader r;

		mp_reader_init(&r, data, len);
		rc = v1_decode(&r, a, e);
	} else {
		rc = err_set(e, "unknown attestation format (first byte 0x%02x)", data[0]);
	}
	if (rc < 0) {
		attestation_free(a);
		return err_wrap(e, "invalid attestation");
	}
	if (!a->config) {
		a->config = strdup("");
		if (!a->config)
			abort();
	}
	return 0;
}

int attestation_from_quote(const uint8_t *quote, size_t quote_len, const char *event_log_json,
			   size_t json_len, struct attestation *a, struct err *e)
{
	struct td_fields td;

	attestation_init(a);
	if (td_quote_read(quote, quote_len, &td, e) < 0)
		return -1;
	if (event_log_from_json_str(event_log_json, json_len, &a->event_log, e) < 0)
		goto fail;
	for (size_t i = 0; i < a->event_log.n; i++) {
		const struct tdx_event *ev = &a->event_log.ev[i];

		if (event_is_runtime(ev) &&
		    event_log_append(&a->runtime_events, ev->imr, ev->event_type, ev->digest, ev->digest_len,
				     ev->event, ev->payload, ev->payload_len, ev->version, e) < 0)
			goto fail;
	}
	a->quote = malloc(quote_len + 1);
	if (!a->quote)
		abort();
	memcpy(a->quote, quote, quote_len);
	a->quote_len = quote_len;
	memcpy(a->report_data, td.report_data, 64);
	a->config = strdup("");
	if (!a->config)
		abort();
	a->format = ATTESTATION_V0;
	a->stack = ATTESTATION_STACK_DSTACK;
	return 0;
fail:
	attestation_free(a);
	return -1;
}

int attestation_copy(const struct attestation *src, struct attestation *dst, struct err *e)
{
	attestation_init(dst);
	dst->format = src->format;
	dst->stack = src->stack;
	dst->quote = malloc(src->quote_len + 1);
	if (!dst->quote)
		abort();
	if (src->quote_len)
		memcpy(dst->quote, src->quote, src->quote_len);
	dst->quote_len = src->quote_len;
	memcpy(dst->report_data, src->report_data, 64);
	dst->config = strdup(src->config ? src->config : "");
	dst->report_data_payload = src->report_data_payload ? strdup(src->report_data_payload) : NULL;
	if (!dst->config || (src->report_data_payload && !dst->report_data_payload))
		abort();
	if (event_log_copy(&src->event_log, &dst->event_log, e) < 0 ||
	    event_log_copy(&src->runtime_events, &dst->runtime_events, e) < 0) {
		attestation_free(dst);
		return -1;
	}
	return 0;
}

/* vm_config.tdx_attestation_variant selects the measurement ("lite") mode,
 * in which verifiers need the ACPI event digests. */
static bool config_is_measurement(const char *config)
{
	json_error_t jerr;
	_cleanup_json_ json_t *cfg = config && *config ? json_loads(config, 0, &jerr) : NULL;
	const char *variant = json_string_value(json_object_get(cfg, "tdx_attestation_variant"));

	return variant && (strcmp(variant, "lite") == 0 || strcmp(variant, "measurement") == 0);
}

int attestation_strip_for_cert(struct attestation *a, struct err *e)
{
	event_log_strip_for_cert(&a->event_log, config_is_measurement(a->config));
	return 0;
}

void attestation_set_report_data(struct attestation *a, const uint8_t report_data[64])
{
	memcpy(a->report_data, report_data, 64);
	if (a->quote_len >= TD_QUOTE_REPORT_DATA_OFFSET + 64)
		memcpy(a->quote + TD_QUOTE_REPORT_DATA_OFFSET, report_data, 64);
}
