/*
 * meta_test.c — GetMeta: URLs, resources, bridge-mode detection.
 */
#include "core/cleanup.h"
#include "core/tap.h"
#include "testutil.h"
#include "vmm/meta.h"

int main(void)
{
	char *sys = tu_tmpdir();
	struct vmm_config c;

	tu_write(sys, "eth0/address", "x");
	vmm_config_init(&c);
	_cleanup_json_ json_t *m = vmm_meta_json(&c, sys);
	_cleanup_free_ char *s = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
	is_str(s,
	       "{\"gateway\":{\"agent_port\":8090,\"base_domain\":\"localhost\",\"port\":8082,\"url\":"
	       "\"http://127.0.0.1:8082\",\"urls\":[\"http://127.0.0.1:8082\"]},\"kms\":{\"url\":\"http://"
	       "127.0.0.1:8081\","
	       "\"urls\":[\"http://"
	       "127.0.0.1:8081\"]},\"networking\":{\"default_bridge\":\"\",\"default_mode\":\"user\","
	       "\"supported_modes\":[\"user\"]},\"resources\":{\"max_allocable_memory_in_mb\":100000,"
	       "\"max_allocable_vcpu\":20,\"max_cvm_number\":1000}}",
	       "defaults");
	tu_write(sys, "virbr0/bridge/bridge_id", "x");
	_cleanup_json_ json_t *m2 = vmm_meta_json(&c, sys);
	is_int(json_array_size(json_object_get(json_object_get(m2, "networking"), "supported_modes")), 2,
	       "bridge offered when a bridge exists");
	strv_free(&c.cvm.kms_urls);
	_cleanup_json_ json_t *m3 = vmm_meta_json(&c, "/nonexistent");
	is_str(json_string_value(json_object_get(json_object_get(m3, "kms"), "url")), "", "no kms url");
	vmm_config_free(&c);
	tu_rmrf(sys);
	return tap_done();
}
