/*
 * eventlog.c — see eventlog.h.
 */
#include "attest/eventlog.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "codec/jcs.h"
#include "codec/utf8.h"
#include "core/cleanup.h"
#include "core/hex.h"

static const char *const acpi_names[] = {"acpi-loader", "acpi-rsdp", "acpi-tables"};

static void *dup_bytes(const void *p, size_t len)
{
	uint8_t *q = malloc(len + 1);

	if (!q)
		abort();
	if (len)
		memcpy(q, p, len);
	q[len] = 0;
	return q;
}

static void event_clear(struct tdx_event *ev)
{
	free(ev->digest);
	free(ev->event);
	free(ev->payload);
	memset(ev, 0, sizeof(*ev));
}

void event_log_free(struct event_log *log)
{
	for (size_t i = 0; i < log->n; i++)
		event_clear(&log->ev[i]);
	free(log->ev);
	log->ev = NULL;
	log->n = log->cap = 0;
}

int event_log_append(struct event_log *log, uint32_t imr, uint32_t type, const uint8_t *digest,
		     size_t digest_len, const char *name, const uint8_t *payload, size_t payload_len,
		     uint32_t version, struct err *e)
{
	struct tdx_event *ev;

	if (log->n >= EVENT_LOG_MAX_EVENTS)
		return err_set(e, "event log has more than %d events", EVENT_LOG_MAX_EVENTS);
	if (payload_len > EVENT_PAYLOAD_MAX)
		return err_set(e, "event payload of %zu bytes is too large", payload_len);
	if (log->n == log->cap) {
		size_t cap = log->cap ? log->cap * 2 : 16;

		log->ev = realloc(log->ev, cap * sizeof(*log->ev));
		if (!log->ev)
			abort();
		log->cap = cap;
	}
	ev = &log->ev[log->n++];
	ev->imr = imr;
	ev->event_type = type;
	ev->digest = dup_bytes(digest, digest_len);
	ev->digest_len = digest_len;
	ev->event = dup_bytes(name ? name : "", name ? strlen(name) : 0);
	ev->payload = dup_bytes(payload, payload_len);
	ev->payload_len = payload_len;
	ev->version = version;
	return 0;
}

int event_log_append_runtime(struct event_log *log, const char *name, const uint8_t *payload,
			     size_t payload_len, uint32_t version, struct err *e)
{
	uint8_t digest[RTMR_LEN];

	if (runtime_event_digest(version, name, payload, payload_len, digest, e) < 0)
		return -1;
	return event_log_append(log, RUNTIME_EVENT_IMR, EVENT_TYPE_RUNTIME, digest, RTMR_LEN, name, payload,
				payload_len, version ? version : 1, e);
}

int event_log_copy(const struct event_log *src, struct event_log *dst, struct err *e)
{
	for (size_t i = 0; i < src->n; i++) {
		const struct tdx_event *ev = &src->ev[i];

		if (event_log_append(dst, ev->imr, ev->event_type, ev->digest, ev->digest_len, ev->event,
				     ev->payload, ev->payload_len, ev->version, e) < 0)
			return -1;
	}
	return 0;
}

bool event_is_acpi(const struct tdx_event *ev)
{
	if (ev->imr != 0 || ev->event_type != EVENT_TYPE_ACPI_DATA)
		return false;
	if (ev->payload_len == 9 && memcmp(ev->payload, "ACPI DATA", 9) == 0)
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(acpi_names); i++)
		if (strcmp(ev->event, acpi_names[i]) == 0)
			return true;
	return false;
}

void runtime_event_preimage(const char *name, const uint8_t *payload, size_t payload_len, struct buf *out)
{
	/* Keys are already in canonical order; values need only JCS escaping. */
	buf_puts(out, "{\"name\":");
	jcs_put_string(out, name, strlen(name));
	buf_puts(out, ",\"payload\":\"");
	buf_put_hex(out, payload, payload_len);
	buf_printf(out, "\",\"type\":%u}", EVENT_TYPE_RUNTIME);
}

static void sha384_parts(const void *a, size_t alen, const void *b, size_t blen, uint8_t out[RTMR_LEN])
{
	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha384(), NULL) || !EVP_DigestUpdate(ctx, a, alen) ||
	    !EVP_DigestUpdate(ctx, b, blen) || !EVP_DigestFinal_ex(ctx, out, NULL))
		abort(); /* SHA-384 cannot fail short of memory exhaustion */
}

int runtime_event_hash_input(uint32_t version, const char *name, const uint8_t *payload, size_t payload_len,
			     struct buf *out, struct err *e)
{
	if (!utf8_valid(name, strlen(name)))
		return err_set(e, "runtime event name is not UTF-8");
	if (version == 2) {
		runtime_event_preimage(name, payload, payload_len, out);
	} else if (version <= 1) {
		uint32_t type = EVENT_TYPE_RUNTIME;
		uint8_t le[4] = {(uint8_t)type, (uint8_t)(type >> 8), (uint8_t)(type >> 16),
				 (uint8_t)(type >> 24)};

		buf_append(out, le, 4);
		buf_putc(out, ':');
		buf_puts(out, name);
		buf_putc(out, ':');
		buf_append(out, payload, payload_len);
	} else {
		return err_set(e, "unsupported runtime event version %u", version);
	}
	return 0;
}

int runtime_event_digest(uint32_t version, const char *name, const uint8_t *payload, size_t payload_len,
			 uint8_t out[RTMR_LEN], struct err *e)
{
	struct buf b = BUF_INIT;

	if (runtime_event_hash_input(version, name, payload, payload_len, &b, e) < 0) {
		buf_free(&b);
		return -1;
	}
	sha384_parts(b.data, b.len, "", 0, out);
	buf_free(&b);
	return 0;
}

int event_digest(const struct tdx_event *ev, uint8_t out[RTMR_LEN], struct err *e)
{
	if (event_is_runtime(ev)) {
		if (runtime_event_digest(ev->version, ev->event, ev->payload, ev->payload_len, out, e) < 0)
			return -1;
		if (ev->digest_len && (ev->digest_len != RTMR_LEN || memcmp(ev->digest, out, RTMR_LEN) != 0))
			return err_set(e, "digest of runtime event '%s' does not match its payload",
				       ev->event);
		return 0;
	}
	if (ev->digest_len != RTMR_LEN)
		return err_set(e, "event of type 0x%x in IMR%u has a %zu-byte digest, want %d",
			       ev->event_type, ev->imr, ev->digest_len, RTMR_LEN);
	memcpy(out, ev->digest, RTMR_LEN);
	return 0;
}

int event_log_replay_imr(const struct event_log *log, uint32_t imr, const char *stop_after,
			 uint8_t out[RTMR_LEN], struct err *e)
{
	uint8_t mr[RTMR_LEN] = {0}, d[RTMR_LEN];

	for (size_t i = 0; i < log->n; i++) {
		const struct tdx_event *ev = &log->ev[i];

		if (ev->imr != imr)
			continue;
		if (event_digest(ev, d, e) < 0)
			return err_wrap(e, "event %zu", i);
		sha384_parts(mr, RTMR_LEN, d, RTMR_LEN, mr);
		if (stop_after && event_is_runtime(ev) && strcmp(ev->event, stop_after) == 0)
			break;
	}
	memcpy(out, mr, RTMR_LEN);
	return 0;
}

int event_log_replay(const struct event_log *log, uint8_t rtmr[RTMR_COUNT][RTMR_LEN], struct err *e)
{
	for (size_t i = 0; i < log->n; i++)
		if (log->ev[i].imr >= RTMR_COUNT)
			return err_set(e, "event %zu targets IMR%u, beyond RTMR3", i, log->ev[i].imr);
	for (uint32_t imr = 0; imr < RTMR_COUNT; imr++)
		if (event_log_replay_imr(log, imr, NULL, rtmr[imr], e) < 0)
			return err_wrap(e, "replaying RTMR%u", imr);
	return 0;
}

int event_log_find_payload(const struct event_log *log, const char *name, const uint8_t **payload,
			   size_t *len, struct err *e)
{
	for (size_t i = 0; i < log->n; i++) {
		const struct tdx_event *ev = &log->ev[i];

		if (!event_is_runtime(ev))
			continue;
		if (strcmp(ev->event, "system-ready") == 0)
			break;
		if (strcmp(ev->event, name) == 0) {
			*payload = ev->payload;
			*len = ev->payload_len;
			return 0;
		}
	}
	return err_set(e, "event %s not found", name);
}

json_t *event_to_json(const struct tdx_event *ev)
{
	_cleanup_free_ char *digest = hex_encode_alloc(ev->digest, ev->digest_len);
	_cleanup_free_ char *payload = hex_encode_alloc(ev->payload, ev->payload_len);
	json_t *o = json_pack("{s:I,s:I,s:s,s:s,s:s}", "imr", (json_int_t)ev->imr, "event_type",
			      (json_int_t)ev->event_type, "digest", digest, "event", ev->event,
			      "event_payload", payload);

	if (!o)
		abort();
	if (event_is_runtime(ev) && ev->version == 2) {
		struct buf pre = BUF_INIT;
		_cleanup_free_ char *pre_hex = NULL;

		runtime_event_preimage(ev->event, ev->payload, ev->payload_len, &pre);
		pre_hex = hex_encode_alloc(pre.data, pre.len);
		buf_free(&pre);
		json_object_set_new(o, "version", json_integer(2));
		json_object_set_new(o, "preimage", json_string(pre_hex));
	}
	return o;
}

json_t *event_log_to_json(const struct event_log *log)
{
	json_t *arr = json_array();

	if (!arr)
		abort();
	for (size_t i = 0; i < log->n; i++)
		json_array_append_new(arr, event_to_json(&log->ev[i]));
	return arr;
}

static int json_u32(const json_t *o, const char *key, uint32_t *out, struct err *e)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX)
		return err_set(e, "field %s must be a u32", key);
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

static int json_hex(const json_t *o, const char *key, uint8_t **out, size_t *len, struct err *e)
{
	json_t *v = json_object_get(o, key);

	if (!v) {
		*out = dup_bytes("", 0);
		*len = 0;
		return 0;
	}
	if (!json_is_string(v))
		return err_set(e, "field %s must be a hex string", key);
	if (hex_decode_alloc(json_string_value(v), json_string_length(v), out, len, e) < 0)
		return err_wrap(e, "field %s", key);
	return 0;
}

/* A supplied preimage ("preimage", or "hash_input" as some reference
 * versions call it; hex) must be the event's own hash input and hash to its
 * digest. */
static int check_preimage(const json_t *o, const struct tdx_event *ev, struct err *e)
{
	json_t *v = json_object_get(o, "preimage");
	_cleanup_free_ uint8_t *pre = NULL;
	size_t pre_len;
	struct buf want = BUF_INIT;
	uint8_t d[RTMR_LEN];
	bool same;

	if (!v)
		v = json_object_get(o, "hash_input");
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) ||
	    hex_decode_alloc(json_string_value(v), json_string_length(v), &pre, &pre_len, e) < 0)
		return err_wrap(e, "preimage of event '%s' must be hex", ev->event);
	if (runtime_event_hash_input(ev->version, ev->event, ev->payload, ev->payload_len, &want, e) < 0)
		return -1;
	same = want.len == pre_len && memcmp(want.data, pre, pre_len) == 0;
	buf_free(&want);
	if (!same)
		return err_set(e, "preimage of event '%s' does not match its name and payload%s", ev->event,
			       ev->version == 2 ? " (canonical JSON)" : "");
	sha384_parts(pre, pre_len, "", 0, d);
	if (ev->digest_len && (ev->digest_len != RTMR_LEN || memcmp(d, ev->digest, RTMR_LEN) != 0))
		return err_set(e, "preimage of event '%s' does not hash to its digest", ev->event);
	return 0;
}

static int event_from_json(const json_t *o, struct event_log *out, struct err *e)
{
	uint32_t imr = 0, type = 0, version = 0;
	_cleanup_free_ uint8_t *digest = NULL, *payload = NULL;
	size_t digest_len, payload_len;
	json_t *name = json_object_get(o, "event"), *ver = json_object_get(o, "version");

	if (!json_is_object(o))
		return err_set(e, "event must be an object");
	if (json_u32(o, "imr", &imr, e) < 0 || json_u32(o, "event_type", &type, e) < 0 ||
	    json_hex(o, "digest", &digest, &digest_len, e) < 0 ||
	    json_hex(o, "event_payload", &payload, &payload_len, e) < 0)
		return -1;
	if (name && !json_is_string(name))
		return err_set(e, "field event must be a string");
	if (ver && !json_is_null(ver) && json_u32(o, "version", &version, e) < 0)
		return -1;
	if (imr >= RTMR_COUNT)
		return err_set(e, "imr %u out of range", imr);
	if (digest_len != 0 && digest_len != RTMR_LEN)
		return err_set(e, "digest must be %d bytes, got %zu", RTMR_LEN, digest_len);
	if (imr == RUNTIME_EVENT_IMR && type == EVENT_TYPE_RUNTIME && version == 0)
		version = 1;
	if (version > 2)
		return err_set(e, "unsupported event version %u", version);
	if (event_log_append(out, imr, type, digest, digest_len, name ? json_string_value(name) : "", payload,
			     payload_len, version, e) < 0)
		return -1;
	if (event_is_runtime(&out->ev[out->n - 1])) {
		if (check_preimage(o, &out->ev[out->n - 1], e) < 0)
			return -1;
	}
	return 0;
}

int event_log_from_json(const json_t *arr, struct event_log *out, struct err *e)
{
	size_t i;
	json_t *v;

	if (!json_is_array(arr))
		return err_set(e, "event log must be a JSON array");
	json_array_foreach(arr, i, v)
	{
		if (event_from_json(v, out, e) < 0)
			return err_wrap(e, "event log entry %zu", i);
	}
	return 0;
}

int event_log_from_json_str(const char *text, size_t len, struct event_log *out, struct err *e)
{
	json_error_t jerr;
	_cleanup_json_ json_t *arr = json_loadb(text, len, 0, &jerr);

	if (!arr)
		return err_set(e, "invalid event log JSON: %s (line %d)", jerr.text, jerr.line);
	return event_log_from_json(arr, out, e);
}

static void drop_payload(struct tdx_event *ev)
{
	ev->payload_len = 0;
	ev->payload[0] = 0;
}

static void drop_digest(struct tdx_event *ev)
{
	ev->digest_len = 0;
}

void event_log_strip_for_quote(struct event_log *log)
{
	for (size_t i = 0; i < log->n; i++) {
		struct tdx_event *ev = &log->ev[i];

		if (event_is_runtime(ev))
			drop_digest(ev); /* recomputable from the payload */
		else if (!event_is_acpi(ev))
			drop_payload(ev);
	}
}

void event_log_strip_for_cert(struct event_log *log, bool keep_acpi)
{
	size_t out = 0;

	for (size_t i = 0; i < log->n; i++) {
		struct tdx_event *ev = &log->ev[i];

		if (event_is_runtime(ev)) {
			drop_digest(ev);
		} else if (ev->imr == RUNTIME_EVENT_IMR || (keep_acpi && event_is_acpi(ev))) {
			drop_payload(ev);
		} else {
			event_clear(ev);
			continue;
		}
		log->ev[out++] = *ev;
	}
	log->n = out;
}
