/*
 * config_test.c — §4 defaults, JSON overlay, validation, human sizes.
 */
#include "core/cleanup.h"
#include "core/tap.h"
#include "testutil.h"
#include "vmm/config.h"

static void test_defaults(void)
{
	struct vmm_config c;

	setenv("HOME", "/home/op", 1);
	vmm_config_init(&c);
	is_str(c.run_path, "/home/op/.dstack-vmm/vm", "run_path default");
	is_str(c.image_path, "/home/op/.dstack-vmm/image", "image.path default");
	is_str(c.kms_url, "http://127.0.0.1:8081", "kms_url");
	is_int(c.event_buffer_size, 20, "event_buffer_size");
	is_int(c.cvm.cid_start, 1000, "cid_start");
	is_int(c.cvm.cid_pool_size, 1000, "cid_pool_size");
	is_str(c.cvm.kms_urls.v[0], "http://127.0.0.1:8081", "cvm.kms_urls");
	is_str(c.cvm.gateway_urls.v[0], "http://127.0.0.1:8082", "cvm.gateway_urls");
	ok(c.cvm.use_mrconfigid, "use_mrconfigid");
	ok(c.cvm.has_qgs_port && c.cvm.qgs_port == 4050, "qgs_port 4050");
	is_str(c.cvm.host_share_mode, "9p", "host_share_mode");
	is_str(c.cvm.tdx_attestation_variant, "auto", "tdx_attestation_variant");
	is_str(c.cvm.product[SMB_SYS_VENDOR], "dstack", "sys_vendor");
	is_str(c.cvm.product[SMB_PRODUCT_NAME], "dstack", "product_name");
	ok(!c.cvm.product[SMB_BIOS_VENDOR], "bios_vendor unset");
	is_str(c.cvm.networking.mode, "user", "networking.mode");
	is_str(c.cvm.networking.net, "10.0.2.0/24", "networking.net");
	is_str(c.cvm.networking.dhcp_start, "10.0.2.10", "networking.dhcp_start");
	ok(!c.cvm.port_mapping.enabled, "port mapping disabled");
	is_str(c.cvm.port_mapping.address, "127.0.0.1", "port mapping address");
	ok(c.cvm.port_mapping.n_ranges == 1 && c.cvm.port_mapping.ranges[0].to == 20000, "range tcp 1-20000");
	ok(c.cvm.auto_restart.enabled && c.cvm.auto_restart.interval == 20 &&
	       c.cvm.auto_restart.max_retries == 5 && c.cvm.auto_restart.initial_backoff == 5 &&
	       c.cvm.auto_restart.max_backoff == 300 && c.cvm.auto_restart.reset_window == 300,
	   "auto_restart defaults");
	is_int(c.cvm.log.max_bytes, 4 << 20, "log.max_bytes 4M");
	is_int(c.cvm.log.max_backups, 3, "log.max_backups");
	is_str(c.cvm.gpu.listing.v[0], "10de:2335", "gpu.listing");
	is_str(c.supervisor.sock, "./run/supervisor.sock", "supervisor.sock");
	is_str(c.host_api.address, "vsock:2", "host_api.address");
	is_int(c.host_api.port, 10000, "host_api.port");
	is_int(c.gateway.agent_port, 8090, "gateway.agent_port");
	ok(vmm_config_validate(&c, NULL) == 0, "defaults validate");
	vmm_config_free(&c);
}

static void test_overlay(void)
{
	struct vmm_config c;
	struct err e = ERR_INIT;
	json_error_t je;
	_cleanup_json_ json_t *doc = json_loads(
	    "{\"run_path\":\"/r\",\"image\":{\"path\":\"/"
	    "i\"},\"cvm\":{\"cid_start\":30,\"tproxy_urls\":[\"g\"],"
	    "\"qgs_port\":null,\"qemu_pci_hole64_size\":\"1G\",\"product\":{\"bios_vendor\":\"ACME\"},"
	    "\"port_mapping\":{\"enabled\":true,\"range\":[{\"protocol\":\"udp\",\"from\":5,\"to\":6}]},"
	    "\"log\":{\"max_bytes\":\"0x100\"},\"networking\":{\"mode\":\"bridge\",\"bridge\":\"br0\"}}}",
	    0, &je);

	vmm_config_init(&c);
	ok(vmm_config_apply_json(&c, doc, &e) == 0, "overlay applies: %s", e.msg);
	is_str(c.run_path, "/r", "run_path");
	is_str(c.image_path, "/i", "image.path");
	is_int(c.cvm.cid_start, 30, "cid_start");
	is_str(c.cvm.gateway_urls.v[0], "g", "tproxy_urls alias");
	ok(!c.cvm.has_qgs_port, "qgs_port null disables");
	is_int(c.cvm.qemu_pci_hole64_size, 1ull << 30, "human size 1G");
	is_str(c.cvm.product[SMB_BIOS_VENDOR], "ACME", "product.bios_vendor");
	ok(c.cvm.port_mapping.enabled && !strcmp(c.cvm.port_mapping.ranges[0].protocol, "udp"),
	   "port ranges");
	is_int(c.cvm.log.max_bytes, 256, "hex size");
	is_str(c.cvm.networking.bridge, "br0", "bridge");
	ok(vmm_config_validate(&c, &e) == 0, "valid");
	c.cvm.cid_start = 2;
	ok(vmm_config_validate(&c, &e) < 0, "cid_start < 3 rejected");
	is_str(e.msg, "cvm.cid_start must be >= 3", "message");
	c.cvm.cid_start = 3;
	c.cvm.cid_pool_size = 0;
	ok(vmm_config_validate(&c, &e) < 0, "empty pool rejected");
	c.cvm.cid_pool_size = 10;
	c.cvm.auto_restart.initial_backoff = 400;
	ok(vmm_config_validate(&c, &e) < 0, "initial_backoff > max_backoff rejected");
	c.cvm.auto_restart.enabled = false;
	ok(vmm_config_validate(&c, &e) == 0, "disabled auto_restart skips its checks");
	str_set(&c.host_api.address, "tcp:1.2.3.4");
	ok(vmm_config_validate(&c, &e) < 0, "host_api must be vsock");
	vmm_config_free(&c);

	_cleanup_json_ json_t *bad = json_loads("{\"cvm\":{\"cid_start\":\"x\"}}", 0, &je);
	vmm_config_init(&c);
	ok(vmm_config_apply_json(&c, bad, &e) < 0, "wrong type rejected");
	is_str(e.msg, "cvm: cid_start: expected a non-negative integer", "type error message");
	vmm_config_free(&c);
}

static void test_sizes(void)
{
	uint64_t v;

	ok(vmm_parse_human_size("4M", &v, NULL) == 0 && v == 4u << 20, "4M");
	ok(vmm_parse_human_size("2g", &v, NULL) == 0 && v == 2ull << 30, "2g");
	ok(vmm_parse_human_size("1T", &v, NULL) == 0 && v == 1ull << 40, "1T");
	ok(vmm_parse_human_size("0", &v, NULL) == 0 && v == 0, "0");
	ok(vmm_parse_human_size("0x10", &v, NULL) == 0 && v == 16, "0x10");
	ok(vmm_parse_human_size("12345", &v, NULL) == 0 && v == 12345, "plain");
	ok(vmm_parse_human_size("M", &v, NULL) < 0, "bare unit rejected");
	ok(vmm_parse_human_size("4MB", &v, NULL) < 0, "MB rejected");
	ok(vmm_parse_human_size("-1", &v, NULL) < 0, "negative rejected");
	ok(vmm_parse_human_size("99999999999999999T", &v, NULL) < 0, "overflow rejected");
}

static void test_instance_id(void)
{
	struct vmm_config c;
	char *id;

	vmm_config_init(&c);
	str_set(&c.run_path, "/var/lib/vm");
	id = vmm_config_instance_id(&c);
	/* sha256("/var/lib/vm")[:8] */
	uint8_t h[32];
	char want[64];
	sha256_buf("/var/lib/vm", 11, h);
	snprintf(want, sizeof(want), "path-%02x%02x%02x%02x%02x%02x%02x%02x", h[0], h[1], h[2], h[3], h[4],
		 h[5], h[6], h[7]);
	is_str(id, want, "derived instance id");
	ok(strlen(id) == 21, "path- plus 16 hex");
	free(id);
	str_set(&c.cvm.instance_id, "node1");
	id = vmm_config_instance_id(&c);
	is_str(id, "node1", "configured instance id");
	free(id);
	vmm_config_free(&c);
}

static void test_layers(void)
{
	char *d = tu_tmpdir();
	_cleanup_free_ char *etc = path_join(d, "etc"), *cwd = path_join(d, "cwd"),
			    *cfile = path_join(d, "x.json");
	struct vmm_config c;
	struct err e = ERR_INIT;

	tu_write(etc, "vmm.toml",
		 "run_path = \"/srv/vm\"\nevent_buffer_size = 5\n[cvm]\ncid_start = 50\n"
		 "[cvm.log]\nmax_bytes = \"8M\"\n[[cvm.port_mapping.range]]\nprotocol = \"udp\"\nfrom = "
		 "1\nto = 2\n");
	tu_write(cwd, "vmm.toml", "[cvm]\ncid_pool_size = 7\n[image]\npath = \"/srv/img\"\n");
	tu_write(d, "x.json", "{\"cvm\":{\"cid_start\":60},\"node_name\":\"n1\"}");
	ok(vmm_config_load(&c, cfile, etc, cwd, &e) == 0, "layers load: %s", e.msg);
	is_str(c.run_path, "/srv/vm", "etc layer");
	is_int(c.event_buffer_size, 5, "etc layer int");
	is_int(c.cvm.cid_start, 60, "-c overrides etc");
	is_int(c.cvm.cid_pool_size, 7, "cwd layer");
	is_str(c.image_path, "/srv/img", "image.path");
	is_str(c.node_name, "n1", "json -c layer");
	is_int(c.cvm.log.max_bytes, 8 << 20, "size string from TOML");
	ok(c.cvm.port_mapping.n_ranges == 1 && !strcmp(c.cvm.port_mapping.ranges[0].protocol, "udp"),
	   "array of tables");
	vmm_config_free(&c);
	tu_write(cwd, "vmm.toml", "[cvm]\ncid_start = 1\n");
	_cleanup_free_ char *none = path_join(d, "missing.json");
	ok(vmm_config_load(&c, none, etc, cwd, &e) < 0, "missing -c file is an error");
	vmm_config_free(&c);
	ok(vmm_config_load(&c, NULL, etc, cwd, &e) < 0, "validation runs");
	is_str(e.msg, "Invalid configuration: cvm.cid_start must be >= 3", "validation message");
	vmm_config_free(&c);
	tu_write(cwd, "vmm.toml", "run_path = \"rel/vm\"\n");
	ok(vmm_config_load(&c, NULL, etc, cwd, &e) == 0 && c.run_path[0] == '/',
	   "relative run_path made absolute");
	vmm_config_free(&c);
	tu_rmrf(d);
}

int main(void)
{
	test_layers();
	test_defaults();
	test_overlay();
	test_sizes();
	test_instance_id();
	return tap_done();
}
