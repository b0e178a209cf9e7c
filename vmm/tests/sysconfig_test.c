/*
 * sysconfig_test.c — vm_config field set/order/omissions, TDX variant
 * resolution, MRCONFIGID V1/V3, .instance_info, .sys-config.json (§5.4).
 */
#include "core/cleanup.h"
#include "core/hex.h"
#include "core/tap.h"
#include "testutil.h"
#include "vmm/sysconfig.h"

static void test_variant(void)
{
	const char *v;
	struct err e = ERR_INIT;

	ok(vmm_tdx_variant_resolve("auto", -1, 1024, true, &v, &e) == 0 && !strcmp(v, "legacy"),
	   "auto <3G legacy");
	ok(vmm_tdx_variant_resolve("auto", -1, 2048, true, &v, &e) == 0 && !strcmp(v, "lite"),
	   "auto 2048 lite");
	ok(vmm_tdx_variant_resolve("auto", -1, 3072, true, &v, &e) == 0 && !strcmp(v, "lite"),
	   "auto 3G lite");
	ok(vmm_tdx_variant_resolve("auto", -1, 4096, false, &v, &e) == 0 && !strcmp(v, "legacy"),
	   "auto without material legacy");
	ok(vmm_tdx_variant_resolve("lite", 1, 4096, true, &v, &e) == 0 && !strcmp(v, "legacy"),
	   "compose measure_acpi=true forces legacy");
	ok(vmm_tdx_variant_resolve("legacy", 0, 1024, true, &v, &e) == 0 && !strcmp(v, "lite"),
	   "compose measure_acpi=false forces lite");
	ok(vmm_tdx_variant_resolve("lite", -1, 4096, false, &v, &e) < 0, "lite without material errors");
	ok(vmm_tdx_variant_resolve("legacy", -1, 8192, true, &v, &e) == 0 && !strcmp(v, "legacy"),
	   "config legacy");
}

static void test_mr(void)
{
	uint8_t h[32], id[48];
	char b64want[128];

	memset(h, 0xab, 32);
	vmm_mrconfigid_v1(h, id);
	ok(id[0] == 1 && id[1] == 0xab && id[32] == 0xab && id[33] == 0 && id[47] == 0, "V1 layout");

	uint8_t app[20], ch[32], kp[32], inst[20];
	memset(app, 0x11, 20);
	memset(ch, 0x22, 32);
	memset(kp, 0x33, 32);
	memset(inst, 0x44, 20);
	struct vmm_mr_config_v3 in = {app, 20, ch, "kms", kp, 32, inst, 20, NULL, NULL};
	_cleanup_free_ char *doc = vmm_mr_config_v3_document(&in);
	is_str(doc,
	       "{\"app_id\":\"1111111111111111111111111111111111111111\","
	       "\"compose_hash\":\"2222222222222222222222222222222222222222222222222222222222222222\","
	       "\"instance_id\":\"4444444444444444444444444444444444444444\",\"key_provider\":\"kms\","
	       "\"key_provider_id\":\"3333333333333333333333333333333333333333333333333333333333333333\","
	       "\"version\":3}",
	       "V3 document is JCS (reference vector)");
	vmm_mrconfigid_v3(doc, id);
	/* independent: sha256("dstack-mr-config-v3:" 0x00 doc) */
	size_t dl = strlen(doc);
	_cleanup_free_ uint8_t *buf = malloc(21 + dl);
	memcpy(buf, "dstack-mr-config-v3:", 20);
	buf[20] = 0;
	memcpy(buf + 21, doc, dl);
	sha256_buf(buf, 21 + dl, h);
	ok(id[0] == 3 && !memcmp(id + 1, h, 32) && id[33] == 0 && id[47] == 0, "V3 layout and hash");
	struct strv hs = {0};
	strv_push(&hs, "aa");
	in.init_script_hashes = &hs;
	in.instance_id_len = 0;
	_cleanup_free_ char *doc2 = vmm_mr_config_v3_document(&in);
	ok(strstr(doc2, "\"init_script_hashes\":[\"aa\"]") && strstr(doc2, "\"instance_id\":\"\""),
	   "init_script_hashes and empty instance_id: %s", doc2);
	strv_free(&hs);
	(void)b64want;
}

struct fixture {
	char *root, *imgdir, *wd;
	struct vmm_config cfg;
	struct vmm_image img;
	struct vmm_manifest m;
};

static void fixture_init(struct fixture *f, const char *compose)
{
	f->root = tu_tmpdir();
	f->imgdir = path_join(f->root, "images");
	char *d = path_join(f->imgdir, "dstack-0.5.3");
	tu_write(d, "metadata.json",
		 "{\"kernel\":\"k\",\"initrd\":\"i\",\"bios\":\"b\",\"rootfs\":\"r.verity\",\"cmdline\":"
		 "\"console=ttyS0\","
		 "\"shared_ro\":true,\"version\":\"0.5.3\"}");
	tu_write(d, "k", "");
	tu_write(d, "i", "");
	tu_write(d, "b", "");
	tu_write(d, "r.verity", "");
	tu_write(d, "digest.txt", "64f0d1545cd510a8dfed7ad609d105b5d41f0cb2afcfdda8867ede00c88add7a\n");
	free(d);
	vmm_config_init(&f->cfg);
	str_set(&f->cfg.run_path, f->root);
	vmm_image_load(f->imgdir, "dstack-0.5.3", &f->img, NULL);
	memset(&f->m, 0, sizeof(f->m));
	f->m.id = xstrdup("vm1");
	f->m.name = xstrdup("app");
	f->m.app_id = xstrdup("5bb4ff9a3837357f19dc176407a5709c62eb6c56");
	f->m.vcpu = 1;
	f->m.memory = 2048;
	f->m.disk_size = 10;
	f->m.image = xstrdup("dstack-0.5.3");
	vmm_workdir_create(f->root, "vm1", NULL);
	f->wd = path_join(f->root, "vm1");
	vmm_shared_write(f->wd, VMM_APP_COMPOSE_FILE, compose, strlen(compose), NULL);
}

static void fixture_free(struct fixture *f)
{
	vmm_manifest_free(&f->m);
	vmm_image_free(&f->img);
	vmm_config_free(&f->cfg);
	free(f->imgdir);
	free(f->wd);
	tu_rmrf(f->root);
}

#define COMPOSE_V1                                                                                           \
	"{\"manifest_version\":2,\"name\":\"app\",\"runner\":\"docker-compose\",\"kms_enabled\":true}"

static void test_vm_config(void)
{
	struct fixture f;
	struct err e = ERR_INIT;

	fixture_init(&f, COMPOSE_V1);
	struct vmm_vm_config_in in = {&f.cfg, &f.img, &f.m, 1, 2048, 1, "legacy"};
	_cleanup_free_ char *s = vmm_vm_config_string(&in, &e);
	is_str(s,
	       "{\"os_image_hash\":\"64f0d1545cd510a8dfed7ad609d105b5d41f0cb2afcfdda8867ede00c88add7a\","
	       "\"cpu_count\":1,\"memory_size\":2147483648,\"pci_hole64_size\":0,\"hugepages\":false,\"num_"
	       "gpus\":0,"
	       "\"num_nvswitches\":0,\"hotplug_off\":false,\"image\":\"dstack-0.5.3\",\"host_share_mode\":"
	       "\"9p\","
	       "\"spec_version\":1}",
	       "minimal vm_config: 1 NIC, no volumes, no swtpm, legacy omitted");

	/* Every optional field present. */
	f.cfg.cvm.qemu_single_pass_add_pages = 1;
	f.cfg.cvm.qemu_pic = 0;
	str_set(&f.cfg.cvm.qemu_version, "8.2.2");
	f.cfg.cvm.qemu_pci_hole64_size = 1ull << 40;
	f.cfg.cvm.qemu_hotplug_off = true;
	f.m.hugepages = true;
	f.m.has_gpus = true;
	strcpy(f.m.gpus.attach_mode, "listed");
	strv_push(&f.m.gpus.gpus, "18:00.0");
	strv_push(&f.m.gpus.gpus, "2a:00.0");
	strv_push(&f.m.gpus.bridges, "05:00.0");
	strv_push(&f.m.volumes, "/v/a");
	f.m.swtpm = true;
	str_set(&f.img.ovmf_variant, "pre202505");
	char *d = path_join(f.imgdir, "dstack-0.5.3");
	tu_write(d, "sha256sum.txt", "abc");
	tu_write(d, "measurement.tdx.cbor", "\x01\x02");
	free(d);
	vmm_image_free(&f.img);
	vmm_image_load(f.imgdir, "dstack-0.5.3", &f.img, NULL);
	str_set(&f.img.ovmf_variant, "pre202505");
	struct vmm_vm_config_in in2 = {&f.cfg, &f.img, &f.m, 4, 4096, 2, "lite"};
	_cleanup_free_ char *s2 = vmm_vm_config_string(&in2, &e);
	is_str(
	    s2,
	    "{\"os_image_hash\":\"64f0d1545cd510a8dfed7ad609d105b5d41f0cb2afcfdda8867ede00c88add7a\","
	    "\"cpu_count\":4,\"memory_size\":4294967296,\"qemu_single_pass_add_pages\":true,\"pic\":false,"
	    "\"qemu_version\":\"8.2.2\",\"pci_hole64_size\":1099511627776,\"hugepages\":true,\"num_gpus\":2,"
	    "\"num_nvswitches\":1,\"num_nics\":2,\"num_verity_volumes\":1,\"swtpm\":true,\"hotplug_off\":"
	    "true,"
	    "\"image\":\"dstack-0.5.3\",\"host_share_mode\":\"9p\",\"ovmf_variant\":\"pre202505\","
	    "\"tdx_attestation_variant\":\"lite\",\"tdx_measurement\":{\"checksum_file\":\"YWJj\","
	    "\"measurement\":\"AQI=\"},\"spec_version\":1}",
	    "full vm_config in spec order");
	fixture_free(&f);
}

static void test_prepare_v1(void)
{
	struct fixture f;
	struct err e = ERR_INIT;
	struct vmm_boot_prep p;

	fixture_init(&f, COMPOSE_V1);
	struct vmm_vm_config_in in = {&f.cfg, &f.img, &f.m, 1, 2048, 1, "legacy"};
	ok(vmm_prepare_shared(&in, f.wd, true, &p, &e) == 0, "prepare V1: %s", e.msg);
	uint8_t h[32], id[48];
	sha256_buf(COMPOSE_V1, strlen(COMPOSE_V1), h);
	vmm_mrconfigid_v1(h, id);
	_cleanup_free_ char *b64 = base64_encode_alloc(id, 48);
	is_str(p.mrconfigid_b64, b64, "MRCONFIGID V1 = 01 || sha256(compose) || 0*15, base64");
	ok(!p.mr_config, "no mr_config for V1");
	_cleanup_free_ char *sys = tu_read(f.wd, "shared/.sys-config.json");
	_cleanup_json_ json_t *j = json_loads(sys, 0, NULL);
	is_str(json_str(j, "vm_config"), p.vm_config, "sys-config embeds vm_config");
	is_str(json_str(j, "host_api_url"), "vsock://2:10000/api", "host_api_url");
	is_str(json_string_value(json_array_get(json_object_get(j, "kms_urls"), 0)), "http://127.0.0.1:8081",
	       "kms_urls default from [cvm]");
	ok(json_is_null(json_object_get(j, "nvidia_attestation_proxy_url")), "nvidia proxy null");
	ok(json_object_get(j, "mr_config") == NULL, "mr_config omitted");
	is_str(json_str(json_object_get(j, "collateral_urls"), "pccs"), "", "collateral_urls.pccs");
	const char *order[] = {"\"kms_urls\"",
			       "\"gateway_urls\"",
			       "\"pccs_url\"",
			       "\"collateral_urls\"",
			       "\"nvidia_attestation_proxy_url\"",
			       "\"docker_registry\"",
			       "\"host_api_url\"",
			       "\"vm_config\""};
	const char *prev = sys;
	bool in_order = true;
	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		const char *at = strstr(prev, order[i]);
		if (!at)
			in_order = false;
		else
			prev = at;
	}
	ok(in_order, "sys-config key order");
	vmm_boot_prep_free(&p);

	/* no_tee: no MRCONFIGID */
	f.m.no_tee = true;
	ok(vmm_prepare_shared(&in, f.wd, true, &p, &e) == 0 && !p.mrconfigid_b64, "no_tee: no MRCONFIGID");
	vmm_boot_prep_free(&p);
	f.m.no_tee = false;
	f.cfg.cvm.use_mrconfigid = false;
	ok(vmm_prepare_shared(&in, f.wd, true, &p, &e) == 0 && !p.mrconfigid_b64, "use_mrconfigid=false");
	vmm_boot_prep_free(&p);
	f.cfg.cvm.use_mrconfigid = true;
	f.img.version.patch = 1;
	f.img.version.minor = 5;
	ok(vmm_prepare_shared(&in, f.wd, true, &p, &e) == 0 && !p.mrconfigid_b64,
	   "image 0.5.1: no MRCONFIGID");
	vmm_boot_prep_free(&p);
	fixture_free(&f);
}

#define COMPOSE_V3                                                                                           \
	"{\"manifest_version\":\"3\",\"name\":\"app\",\"runner\":\"docker-compose\",\"key_provider\":"       \
	"\"kms\","                                                                                           \
	"\"key_provider_id\":\"0x3333\",\"init_script\":[\"echo hi\"]}"

static void test_prepare_v3(void)
{
	struct fixture f;
	struct err e = ERR_INIT;
	struct vmm_boot_prep p;

	fixture_init(&f, COMPOSE_V3);
	struct vmm_vm_config_in in = {&f.cfg, &f.img, &f.m, 1, 2048, 1, "legacy"};
	ok(vmm_prepare_shared(&in, f.wd, true, &p, &e) == 0, "prepare V3: %s", e.msg);
	ok(p.mr_config != NULL, "mr_config present");
	_cleanup_free_ char *info = tu_read(f.wd, "shared/.instance_info");
	_cleanup_json_ json_t *ij = json_loads(info, 0, NULL);
	const char *seed = json_str(ij, "instance_id_seed"), *iid = json_str(ij, "instance_id");
	ok(seed && strlen(seed) == 40, "20-byte seed");
	is_str(json_str(ij, "app_id"), f.m.app_id, "app_id from manifest");
	uint8_t sb[20], buf[40], h[32];
	hex_decode_exact(seed, sb, 20, NULL);
	memcpy(buf, sb, 20);
	hex_decode_exact(f.m.app_id, buf + 20, 20, NULL);
	sha256_buf(buf, 40, h);
	char want[41];
	hex_encode(h, 20, want);
	is_str(iid, want, "instance_id = sha256(seed || app_id)[:20]");
	uint8_t ch[32];
	char chhex[65], ish[65];
	sha256_buf(COMPOSE_V3, strlen(COMPOSE_V3), ch);
	hex_encode(ch, 32, chhex);
	sha256_buf("echo hi", 7, h);
	hex_encode(h, 32, ish);
	_cleanup_free_ char *want_doc =
	    xasprintf("{\"app_id\":\"%s\",\"compose_hash\":\"%s\",\"init_script_hashes\":[\"%s\"],\"instance_"
		      "id\":\"%s\","
		      "\"key_provider\":\"kms\",\"key_provider_id\":\"3333\",\"version\":3}",
		      f.m.app_id, chhex, ish, want);
	is_str(p.mr_config, want_doc, "V3 document fields");
	uint8_t id[48];
	vmm_mrconfigid_v3(p.mr_config, id);
	_cleanup_free_ char *b64 = base64_encode_alloc(id, 48);
	is_str(p.mrconfigid_b64, b64, "MRCONFIGID from the V3 document");
	_cleanup_free_ char *sys = tu_read(f.wd, "shared/.sys-config.json");
	_cleanup_json_ json_t *sj = json_loads(sys, 0, NULL);
	is_str(json_str(sj, "mr_config"), p.mr_config, "sys-config carries mr_config");
	_cleanup_free_ char *seed1 = xstrdup(seed);
	vmm_boot_prep_free(&p);

	ok(vmm_prepare_shared(&in, f.wd, true, &p, &e) == 0, "prepare again");
	_cleanup_free_ char *info2 = tu_read(f.wd, "shared/.instance_info");
	ok(strstr(info2, seed1) != NULL, "seed kept when a key provider is set");
	vmm_boot_prep_free(&p);

	f.cfg.cvm.use_mrconfigid = false;
	ok(vmm_prepare_shared(&in, f.wd, true, &p, &e) < 0, "key_provider_id with use_mrconfigid=false");
	f.cfg.cvm.use_mrconfigid = true;
	fixture_free(&f);

	fixture_init(&f,
		     "{\"manifest_version\":2,\"name\":\"a\",\"runner\":\"none\",\"key_provider_id\":\"aa\","
		     "\"no_instance_id\":true,\"init_script\":\"x\"}");
	struct vmm_vm_config_in in3 = {&f.cfg, &f.img, &f.m, 1, 2048, 1, "legacy"};
	ok(vmm_prepare_shared(&in3, f.wd, true, &p, &e) == 0, "V3 no_instance_id");
	ok(strstr(p.mr_config, "\"instance_id\":\"\"") && !strstr(p.mr_config, "init_script_hashes") &&
	       strstr(p.mr_config, "\"key_provider\":\"none\""),
	   "empty instance_id, no init hashes below v3: %s", p.mr_config);
	vmm_boot_prep_free(&p);

	f.m.simulated_tee = xstrdup("dstack-tdx");
	f.m.no_tee = true;
	f.cfg.cvm.tee_simulator.present = true;
	ok(vmm_prepare_shared(&in3, f.wd, true, &p, &e) == 0 && !p.mrconfigid_b64, "simulated tee");
	_cleanup_free_ char *sim = tu_read(f.wd, "shared/.tee-simulator.json");
	_cleanup_json_ json_t *simj = json_loads(sim, 0, NULL);
	is_str(json_str(simj, "platform"), "dstack-tdx", "simulator platform");
	is_str(json_str(simj, "vm_config"), p.vm_config, "simulator vm_config");
	vmm_boot_prep_free(&p);
	fixture_free(&f);
}

static void test_compose(void)
{
	struct vmm_compose c;
	struct err e = ERR_INIT;
	const char *bad[] = {
	    "{}", "{\"manifest_version\":\"03\",\"name\":\"a\",\"runner\":\"x\"}",
	    "{\"manifest_version\":2,\"runner\":\"x\"}", "[",
	    "{\"manifest_version\":2,\"name\":\"a\",\"runner\":\"x\",\"key_provider\":\"bogus\"}"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		ok(vmm_compose_parse(bad[i], strlen(bad[i]), &c, &e) < 0, "invalid compose %zu rejected", i);
	const char *g = "{\"manifest_version\":1,\"name\":\"a\",\"runner\":\"x\",\"tproxy_enabled\":true,"
			"\"local_key_provider_enabled\":true}";
	ok(vmm_compose_parse(g, strlen(g), &c, &e) == 0, "legacy compose parses");
	ok(c.gateway_enabled && !strcmp(c.key_provider, "local") && !c.raw_key_provider, "legacy flags");
	vmm_compose_free(&c);
	char app_id[41];
	vmm_compose_app_id("abc", 3, app_id);
	is_str(app_id, "ba7816bf8f01cfea414140de5dae2223b00361a3", "default app_id = sha256[:20]");
}

int main(void)
{
	test_variant();
	test_mr();
	test_vm_config();
	test_prepare_v1();
	test_prepare_v3();
	test_compose();
	return tap_done();
}
