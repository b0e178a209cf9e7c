/*
 * compose.c — see compose.h.
 */
#include "vmm/compose.h"

#include <stdlib.h>
#include <string.h>

#include "core/hex.h"

void vmm_compose_free(struct vmm_compose *c)
{
	free(c->raw_key_provider);
	free(c->key_provider_id);
	strv_free(&c->init_scripts);
	strv_free(&c->volume_sources);
	strv_free(&c->volume_roots);
	json_decref(c->gpu_policy);
	memset(c, 0, sizeof(*c));
}

void vmm_compose_app_id(const void *raw, size_t len, char out[41])
{
	uint8_t h[32];

	sha256_buf(raw, len, h);
	hex_encode(h, 20, out);
}

static int parse_manifest_version(const json_t *v, uint32_t *out, struct err *e)
{
	if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= UINT32_MAX) {
		*out = (uint32_t)json_integer_value(v);
		return 0;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;
		unsigned long n;

		/* canonical: digits only, no leading zero unless "0" */
		if (!*s || (s[0] == '0' && s[1]) || !str_charset_ok(s, ""))
			return err_set(e, "invalid manifest_version");
		n = strtoul(s, &end, 10);
		if (*end || n > UINT32_MAX)
			return err_set(e, "invalid manifest_version");
		*out = (uint32_t)n;
		return 0;
	}
	return err_set(e, "missing field `manifest_version`");
}

/* The static name for a validated key provider kind. */
static const char *kind_name(const char *s)
{
	static const char *const kinds[] = {"none", "kms", "local", "tpm"};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(s, kinds[i]))
			return kinds[i];
	return "none";
}

static bool get_flag(const json_t *doc, const char *k)
{
	return json_is_true(json_object_get(doc, k));
}

static int parse_inner(const json_t *doc, struct vmm_compose *c, struct err *e)
{
	json_t *v;
	const char *kp;
	size_t i;

	if (!json_is_object(doc))
		return err_set(e, "expected an object");
	if (parse_manifest_version(json_object_get(doc, "manifest_version"), &c->manifest_version, e) < 0)
		return -1;
	if (!json_is_string(json_object_get(doc, "name")))
		return err_set(e, "missing field `name`");
	if (!json_is_string(json_object_get(doc, "runner")))
		return err_set(e, "missing field `runner`");
	v = json_object_get(doc, "key_provider");
	if (v && !json_is_null(v)) {
		kp = json_string_value(v);
		if (!kp ||
		    (strcmp(kp, "none") && strcmp(kp, "kms") && strcmp(kp, "local") && strcmp(kp, "tpm")))
			return err_set(e, "invalid key_provider");
		c->raw_key_provider = xstrdup(kp);
	}
	if (c->raw_key_provider)
		c->key_provider = kind_name(c->raw_key_provider);
	else if (get_flag(doc, "kms_enabled"))
		c->key_provider = "kms";
	else if (get_flag(doc, "local_key_provider_enabled"))
		c->key_provider = "local";
	else
		c->key_provider = "none";
	v = json_object_get(doc, "key_provider_id");
	if (v && !json_is_null(v)) {
		const char *s = json_string_value(v);

		if (!s || hex_decode_alloc(s, strlen(s), &c->key_provider_id, &c->key_provider_id_len, e) < 0)
			return err_set(e, "invalid key_provider_id");
	}
	c->gateway_enabled = get_flag(doc, "gateway_enabled") || get_flag(doc, "tproxy_enabled");
	v = json_object_get(doc, "features");
	if (json_is_array(v)) {
		json_t *it;
		json_array_foreach(v, i,
				   it) if (json_is_string(it) && !strcmp(json_string_value(it), "tproxy-net"))
		    c->gateway_enabled = true;
	}
	c->no_instance_id = get_flag(doc, "no_instance_id");
	v = json_object_get(doc, "init_script");
	if (json_is_string(v)) {
		strv_push(&c->init_scripts, json_string_value(v));
	} else if (json_is_array(v)) {
		if (json_array_size(v) > 5)
			return err_set(e, "init_script: at most 5 scripts");
		if (strv_from_json(&c->init_scripts, v, "init_script", e) < 0)
			return -1;
	} else if (v && !json_is_null(v)) {
		return err_set(e, "init_script: expected a string or an array of strings");
	}
	v = json_object_get(doc, "verity_volumes");
	if (v && !json_is_null(v)) {
		json_t *it;

		if (!json_is_array(v))
			return err_set(e, "verity_volumes: expected an array");
		json_array_foreach(v, i, it)
		{
			const char *src = json_str(it, "source"), *root = json_str(it, "verity_root");

			if (!src || !root)
				return err_set(e, "verity_volumes[%zu]: source and verity_root are required",
					       i);
			strv_push(&c->volume_sources, src);
			strv_push(&c->volume_roots, root);
		}
	}
	c->tdx_measure_acpi_tables = -1;
	v = json_object_get(doc, "requirements");
	if (v && !json_is_null(v)) {
		json_t *t;

		if (!json_is_object(v))
			return err_set(e, "requirements: expected an object");
		t = json_object_get(v, "tdx_measure_acpi_tables");
		if (t && !json_is_null(t)) {
			if (!json_is_boolean(t))
				return err_set(e, "requirements.tdx_measure_acpi_tables: expected a boolean");
			c->tdx_measure_acpi_tables = json_is_true(t);
		}
		t = json_object_get(v, "gpu_policy");
		if (t && !json_is_null(t))
			c->gpu_policy = json_incref(t);
	}
	return 0;
}

int vmm_compose_parse(const void *raw, size_t len, struct vmm_compose *c, struct err *e)
{
	json_error_t jerr;
	json_t *doc;
	int r;

	memset(c, 0, sizeof(*c));
	doc = json_loadb(raw, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc)
		return err_set(e, "Invalid app compose: %s", jerr.text);
	r = parse_inner(doc, c, e);
	json_decref(doc);
	if (r < 0) {
		vmm_compose_free(c);
		return err_wrap(e, "Invalid app compose");
	}
	sha256_buf(raw, len, c->hash);
	return 0;
}
