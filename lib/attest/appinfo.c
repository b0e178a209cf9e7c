/*
 * appinfo.c — see appinfo.h.
 */
#include "attest/appinfo.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "codec/msgpack.h"
#include "core/cleanup.h"
#include "core/hex.h"

static const char *const app_info_fields[] = {"app_id",        "compose_hash",     "instance_id",
					      "device_id",     "mr_system",        "mr_aggregated",
					      "os_image_hash", "key_provider_info"};

static struct bytes *app_info_field(struct app_info *ai, size_t i)
{
	struct bytes *f[] = {&ai->app_id,    &ai->compose_hash,  &ai->instance_id,   &ai->device_id,
			     &ai->mr_system, &ai->mr_aggregated, &ai->os_image_hash, &ai->key_provider_info};

	return f[i];
}

static void bytes_set(struct bytes *b, const void *p, size_t len)
{
	free(b->p);
	b->p = malloc(len + 1);
	if (!b->p)
		abort();
	if (len)
		memcpy(b->p, p, len);
	b->len = len;
}

void app_info_free(struct app_info *ai)
{
	for (size_t i = 0; i < ARRAY_SIZE(app_info_fields); i++)
		free(app_info_field(ai, i)->p);
	memset(ai, 0, sizeof(*ai));
}

static void sha256_parts(const void *const *parts, const size_t *lens, size_t n, uint8_t out[32])
{
	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		abort();
	for (size_t i = 0; i < n; i++)
		if (!EVP_DigestUpdate(ctx, parts[i], lens[i]))
			abort();
	if (!EVP_DigestFinal_ex(ctx, out, NULL))
		abort();
}

int attestation_replay_rtmr3(const struct attestation *a, bool boot_time, uint8_t out[48], struct err *e)
{
	return event_log_replay_imr(&a->runtime_events, RUNTIME_EVENT_IMR, boot_time ? "boot-mr-done" : NULL,
				    out, e);
}

int attestation_td_fields(const struct attestation *a, struct td_fields *out, struct err *e)
{
	return td_quote_read(a->quote, a->quote_len, out, e);
}

static bool has_boot_events(const struct event_log *log)
{
	for (size_t i = 0; i < log->n; i++)
		if (log->ev[i].imr < RUNTIME_EVENT_IMR)
			return true;
	return false;
}

int attestation_check_event_log(const struct attestation *a, struct err *e)
{
	struct td_fields td;
	uint8_t rtmr3[48], replayed[RTMR_COUNT][RTMR_LEN];

	if (attestation_td_fields(a, &td, e) < 0)
		return -1;
	if (attestation_replay_rtmr3(a, false, rtmr3, e) < 0)
		return err_wrap(e, "replaying runtime events");
	if (memcmp(rtmr3, td.rtmr[3], 48) != 0)
		return err_set(e, "RTMR3 mismatch: replayed runtime events do not match the quote");
	if (memcmp(td.report_data, a->report_data, 64) != 0)
		return err_set(e, "report_data mismatch between quote and attestation");
	if (has_boot_events(&a->event_log)) {
		if (event_log_replay(&a->event_log, replayed, e) < 0)
			return -1;
		for (int i = 0; i < RTMR_COUNT; i++)
			if (memcmp(replayed[i], td.rtmr[i], 48) != 0)
				return err_set(e, "RTMR%d mismatch: event log does not replay to the quote",
					       i);
	}
	return 0;
}

int attestation_find_event(const struct attestation *a, const char *name, const uint8_t **payload,
			   size_t *len, struct err *e)
{
	return event_log_find_payload(&a->runtime_events, name, payload, len, e);
}

void mr_system_compute(const struct td_fields *td, const uint8_t *kp_info, size_t kp_len, uint8_t out[32])
{
	uint8_t kp[32] = {0};

	if (kp_len) {
		const void *p[] = {kp_info};
		size_t l[] = {kp_len};

		sha256_parts(p, l, 1, kp);
	}
	{
		const void *p[] = {td->mr_td, td->rtmr[0], td->rtmr[1], td->rtmr[2], kp};
		size_t l[] = {48, 48, 48, 48, 32};

		sha256_parts(p, l, 5, out);
	}
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

void mr_aggregated_compute(const struct td_fields *td, const uint8_t rtmr3[48], uint8_t out[32])
{
	const void *p[] = {td->mr_td, td->rtmr[0],      td->rtmr[1],  td->rtmr[2],
			   rtmr3,     td->mr_config_id, td->mr_owner, td->mr_owner_config};
	size_t l[] = {48, 48, 48, 48, 48, 48, 48, 48};
	bool extra = !all_zero(td->mr_config_id, 48) || !all_zero(td->mr_owner, 48) ||
		     !all_zero(td->mr_owner_config, 48);

	sha256_parts(p, l, extra ? 8 : 5, out);
}

void device_id_compute(const uint8_t *ppid, size_t ppid_len, uint8_t out[32])
{
	const void *p[] = {ppid ? (const void *)ppid : (const void *)""};
	size_t l[] = {ppid ? ppid_len : 0};

	sha256_parts(p, l, 1, out);
}

static int os_image_hash_from_config(const char *config, struct bytes *out, struct err *e)
{
	json_error_t jerr;
	_cleanup_json_ json_t *cfg = NULL;
	json_t *h;
	uint8_t *p;
	size_t n;

	if (!config || !*config)
		config = "{}";
	cfg = json_loads(config, 0, &jerr);
	if (!json_is_object(cfg))
		return err_set(e, "Failed to parse vm config: %s", cfg ? "not an object" : jerr.text);
	h = json_object_get(cfg, "os_image_hash");
	if (!h || json_is_null(h)) {
		bytes_set(out, "", 0);
		return 0;
	}
	if (!json_is_string(h) ||
	    hex_decode_alloc(json_string_value(h), json_string_length(h), &p, &n, e) < 0)
		return err_wrap(e, "vm config os_image_hash");
	free(out->p);
	out->p = p;
	out->len = n;
	return 0;
}

int attestation_app_info(const struct attestation *a, bool boot_time, const char *vm_config,
			 const uint8_t *ppid, size_t ppid_len, struct app_info *out, struct err *e)
{
	struct td_fields td;
	uint8_t rtmr3[48], digest[32];
	const uint8_t *p;
	size_t n;

	memset(out, 0, sizeof(*out));
	if (attestation_td_fields(a, &td, e) < 0 || attestation_replay_rtmr3(a, boot_time, rtmr3, e) < 0)
		return err_wrap(e, "decode app info");
	if (os_image_hash_from_config(vm_config && *vm_config ? vm_config : a->config, &out->os_image_hash,
				      e) < 0)
		goto fail;
	if (!boot_time && attestation_find_event(a, "key-provider", &p, &n, NULL) == 0)
		bytes_set(&out->key_provider_info, p, n);
	else
		bytes_set(&out->key_provider_info, "", 0);
	mr_system_compute(&td, out->key_provider_info.p, out->key_provider_info.len, digest);
	bytes_set(&out->mr_system, digest, 32);
	mr_aggregated_compute(&td, rtmr3, digest);
	bytes_set(&out->mr_aggregated, digest, 32);
	device_id_compute(ppid, ppid_len, digest);
	bytes_set(&out->device_id, digest, 32);
	if (attestation_find_event(a, "app-id", &p, &n, NULL) == 0)
		bytes_set(&out->app_id, p, n);
	else
		bytes_set(&out->app_id, "", 0);
	if (attestation_find_event(a, "instance-id", &p, &n, NULL) == 0)
		bytes_set(&out->instance_id, p, n);
	else
		bytes_set(&out->instance_id, "", 0);
	if (attestation_find_event(a, "compose-hash", &p, &n, NULL) == 0)
		bytes_set(&out->compose_hash, p, n);
	else
		bytes_set(&out->compose_hash, "", 0);
	return 0;
fail:
	app_info_free(out);
	return err_wrap(e, "decode app info");
}

void app_info_encode(const struct app_info *ai, struct buf *out)
{
	mp_put_array(out, ARRAY_SIZE(app_info_fields));
	for (size_t i = 0; i < ARRAY_SIZE(app_info_fields); i++) {
		const struct bytes *b = app_info_field((struct app_info *)ai, i);

		mp_put_bin(out, b->p, b->len);
	}
}

static int read_field(struct mp_reader *r, struct app_info *ai, size_t i, struct err *e)
{
	struct bytes *b = app_info_field(ai, i);

	free(b->p);
	b->p = NULL;
	if (mp_read_byte_vec(r, &b->p, &b->len, e) < 0)
		return err_wrap(e, "AppInfo.%s", app_info_fields[i]);
	return 0;
}

int app_info_decode(const uint8_t *data, size_t len, struct app_info *out, struct err *e)
{
	struct mp_reader r;
	struct mp_obj o;
	unsigned seen = 0;

	memset(out, 0, sizeof(*out));
	mp_reader_init(&r, data, len);
	if (mp_read(&r, &o, e) < 0)
		goto fail;
	if (o.type == MP_ARRAY) {
		if (o.v.n < ARRAY_SIZE(app_info_fields) || o.v.n > ARRAY_SIZE(app_info_fields) + 1) {
			err_set(e, "AppInfo array has %u fields", o.v.n);
			goto fail;
		}
		for (size_t i = 0; i < ARRAY_SIZE(app_info_fields); i++)
			if (read_field(&r, out, i, e) < 0)
				goto fail;
		if (o.v.n > ARRAY_SIZE(app_info_fields) && mp_skip(&r, e) < 0)
			goto fail;
	} else if (o.type == MP_MAP) {
		for (uint32_t k = 0; k < o.v.n; k++) {
			struct mp_obj key;
			size_t i;

			if (mp_read(&r, &key, e) < 0)
				goto fail;
			for (i = 0; i < ARRAY_SIZE(app_info_fields) && !mp_str_eq(&key, app_info_fields[i]);
			     i++)
				;
			if (i == ARRAY_SIZE(app_info_fields)) {
				if (mp_skip(&r, e) < 0)
					goto fail;
				continue;
			}
			if (seen & (1u << i)) {
				err_set(e, "duplicate AppInfo field %s", app_info_fields[i]);
				goto fail;
			}
			seen |= 1u << i;
			if (read_field(&r, out, i, e) < 0)
				goto fail;
		}
		if (seen != (1u << ARRAY_SIZE(app_info_fields)) - 1) {
			err_set(e, "AppInfo map is missing fields");
			goto fail;
		}
	} else {
		err_set(e, "AppInfo must be an array or map, got %s", mp_type_name(o.type));
		goto fail;
	}
	if (mp_expect_end(&r, e) < 0)
		goto fail;
	if (out->mr_system.len != 32 || out->mr_aggregated.len != 32) {
		err_set(e, "AppInfo mr_system/mr_aggregated must be 32 bytes");
		goto fail;
	}
	return 0;
fail:
	app_info_free(out);
	return err_wrap(e, "invalid AppInfo");
}

json_t *app_info_to_json(const struct app_info *ai)
{
	json_t *o = json_object();

	if (!o)
		abort();
	for (size_t i = 0; i < ARRAY_SIZE(app_info_fields); i++) {
		const struct bytes *b = app_info_field((struct app_info *)ai, i);
		_cleanup_free_ char *hex = hex_encode_alloc(b->p, b->len);

		json_object_set_new(o, app_info_fields[i], json_string(hex));
	}
	return o;
}
