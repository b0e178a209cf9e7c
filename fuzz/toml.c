/*
 * fuzz/toml.c — libFuzzer harness for the TOML parser (lib/toml) and the
 * configuration layer built on it (lib/config).
 *
 * Any byte string must either parse or fail with an error message naming
 * the source; never crash, hang, leak or read out of bounds. A document that
 * parses is pushed through both JSON conversions (which walk the whole
 * tree), every string in it through the config value parsers (durations,
 * sizes, addresses, port ranges), and the document itself through a config
 * layer and a schema with one field of every kind.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config/config.h"
#include "core/log.h"
#include "toml/toml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct every_kind {
	bool b;
	int32_t i;
	uint16_t u;
	double f;
	char *s;
	struct cfg_strings list;
	uint64_t dur, size;
	struct cfg_addr addr;
	struct cfg_ports ports;
	json_t *raw;
};

static const struct cfg_field schema[] = {
    {"b", CFG_BOOL, CFG_AT(struct every_kind, b)},
    {"i", CFG_INT, CFG_AT(struct every_kind, i), .min = -5, .max = 5},
    {"t.u", CFG_UINT, CFG_AT(struct every_kind, u)},
    {"t.f", CFG_FLOAT, CFG_AT(struct every_kind, f)},
    {"s", CFG_STRING, CFG_AT(struct every_kind, s)},
    {"l", CFG_STRINGS, CFG_AT(struct every_kind, list)},
    {"t.d", CFG_DURATION, CFG_AT(struct every_kind, dur)},
    {"t.z", CFG_SIZE, CFG_AT(struct every_kind, size)},
    {"a", CFG_ADDR, CFG_AT(struct every_kind, addr)},
    {"p", CFG_PORTS, CFG_AT(struct every_kind, ports)},
    {"r", CFG_JSON, CFG_AT(struct every_kind, raw)},
};

static void parse_strings(const struct toml_node *n)
{
	if (n->type == TOML_TABLE || n->type == TOML_ARRAY) {
		for (size_t i = 0; i < n->v.list.count; i++)
			parse_strings(n->v.list.items[i]);
	} else if (n->type == TOML_STRING) {
		uint64_t v;
		struct cfg_addr a;
		struct cfg_ports p;

		cfg_parse_duration(n->v.str.ptr, &v, NULL);
		cfg_parse_size(n->v.str.ptr, &v, NULL);
		cfg_parse_addr(n->v.str.ptr, &a, NULL);
		cfg_parse_ports(n->v.str.ptr, &p, NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err e = ERR_INIT;
	struct toml_node *doc;
	struct config c = CONFIG_INIT;
	struct every_kind k;

	log_init("fuzz", LOG_LVL_ERROR); /* unknown-key warnings are expected here */
	doc = toml_parse((const char *)data, size, "fuzz", &e);
	if (!doc) {
		if (!strstr(e.msg, "fuzz: "))
			__builtin_trap(); /* every failure names the source */
		return 0;
	}
	json_decref(toml_to_json(doc));
	json_decref(toml_to_tagged_json(doc));
	parse_strings(doc);
	toml_free(doc);

	memset(&k, 0, sizeof(k));
	if (config_add_toml(&c, (const char *)data, size, "fuzz.toml", &e) == 0)
		config_bind(&c, schema, sizeof(schema) / sizeof(schema[0]), &k, &e);
	config_unbind(schema, sizeof(schema) / sizeof(schema[0]), &k);
	config_free(&c);
	return 0;
}
