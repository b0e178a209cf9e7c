/*
 * workdir_test.c — vm-manifest.json round trip (every field, legacy
 * networking), vm-state.json, shared files, .removing, scan, id rules.
 */
#include <sys/stat.h>

#include "core/cleanup.h"
#include "core/tap.h"
#include "testutil.h"
#include "vmm/workdir.h"

static void fill(struct vmm_manifest *m)
{
	struct vmm_port_map p[2] = {{"127.0.0.1", "tcp", 8080, 80}, {"0.0.0.0", "udp", 5353, 53}};
	struct vmm_net n = {"bridge", "br0", "02:ab", "10.0.2.0/24", "10.0.2.10", true, ""};

	memset(m, 0, sizeof(*m));
	m->id = xstrdup("0b5e6c4e-1d2f-4a3b-8c9d-0123456789ab");
	m->name = xstrdup("my app");
	m->app_id = xstrdup("5bb4ff9a3837357f19dc176407a5709c62eb6c56");
	m->vcpu = 4;
	m->memory = 4096;
	m->disk_size = 40;
	m->image = xstrdup("dstack-0.5.3");
	vmm_manifest_set_ports(m, p, 2);
	m->created_at_ms = 1732400000123ull;
	m->hugepages = true;
	m->pin_numa = true;
	m->has_gpus = true;
	strcpy(m->gpus.attach_mode, "listed");
	strv_push(&m->gpus.gpus, "18:00.0");
	strv_push(&m->gpus.bridges, "05:00.0");
	strv_push(&m->kms_urls, "https://kms:1");
	strv_push(&m->gateway_urls, "https://gw:2");
	m->no_tee = true;
	m->simulated_tee = xstrdup("dstack-tdx");
	m->swtpm = true;
	vmm_manifest_set_networks(m, &n, 1);
	strv_push(&m->volumes, "/vols/a.img");
}

static void test_manifest(void)
{
	char *root = tu_tmpdir();
	struct err e = ERR_INIT;
	struct vmm_manifest m, r;
	_cleanup_free_ char *dir = NULL;

	ok(vmm_workdir_create(root, "vm-1", &e) == 0, "create workdir");
	ok(vmm_workdir_create(root, "vm-1", &e) < 0, "create twice fails");
	dir = path_join(root, "vm-1");
	fill(&m);
	ok(vmm_manifest_save(dir, &m, &e) == 0, "save");
	ok(vmm_manifest_load(dir, &r, &e) == 0, "load: %s", e.msg);
	is_str(r.id, m.id, "id");
	is_str(r.name, "my app", "name");
	is_str(r.app_id, m.app_id, "app_id");
	ok(r.vcpu == 4 && r.memory == 4096 && r.disk_size == 40, "resources");
	is_str(r.image, "dstack-0.5.3", "image");
	ok(r.n_ports == 2 && !strcmp(r.ports[1].address, "0.0.0.0") && !strcmp(r.ports[1].protocol, "udp") &&
	       r.ports[1].from == 5353 && r.ports[1].to == 53,
	   "ports");
	ok(r.created_at_ms == 1732400000123ull, "created_at_ms");
	ok(r.hugepages && r.pin_numa && r.no_tee && r.swtpm, "flags");
	ok(r.has_gpus && !strcmp(r.gpus.attach_mode, "listed") && r.gpus.gpus.n == 1 &&
	       !strcmp(r.gpus.bridges.v[0], "05:00.0"),
	   "gpus");
	ok(r.kms_urls.n == 1 && !strcmp(r.gateway_urls.v[0], "https://gw:2"), "urls");
	is_str(r.simulated_tee, "dstack-tdx", "simulated_tee");
	ok(r.n_networks == 1 && !strcmp(r.networks[0].bridge, "br0") && r.networks[0].restrict_ &&
	       !strcmp(r.networks[0].mac_prefix, "02:ab"),
	   "networks");
	ok(r.volumes.n == 1 && !strcmp(r.volumes.v[0], "/vols/a.img"), "volumes");

	/* Exact on-disk key order. */
	_cleanup_free_ char *text = tu_read(dir, VMM_MANIFEST_FILE);
	_cleanup_json_ json_t *j = json_loads(text, 0, NULL);
	const char *want[] = {
	    "id",       "name",          "app_id",    "vcpu",     "memory",     "disk_size", "image",
	    "port_map", "created_at_ms", "hugepages", "pin_numa", "gpus",       "kms_urls",  "gateway_urls",
	    "no_tee",   "simulated_tee", "swtpm",     "networks", "networking", "volumes"};
	size_t i;
	bool order_ok = json_object_size(j) == ARRAY_SIZE(want);
	/* Check key positions in the text. */
	const char *prev = text;
	for (i = 0; i < ARRAY_SIZE(want); i++) {
		char key[64];
		snprintf(key, sizeof(key), "\"%s\":", want[i]);
		const char *at = strstr(prev, key);
		if (!at)
			order_ok = false;
		else
			prev = at;
	}
	ok(order_ok, "manifest keys in spec order");
	ok(json_equal(json_object_get(j, "networking"), json_array_get(json_object_get(j, "networks"), 0)),
	   "networking is a copy of networks[0]");
	vmm_manifest_free(&r);

	/* Legacy: only `networking`. */
	tu_write(
	    dir, VMM_MANIFEST_FILE,
	    "{\"id\":\"vm-1\",\"name\":\"x\",\"app_id\":\"aa\",\"vcpu\":1,\"memory\":1024,\"disk_size\":10,"
	    "\"image\":\"img\",\"port_map\":[],\"created_at_ms\":1,\"networks\":[],"
	    "\"networking\":{\"mode\":\"user\",\"net\":\"10.1.0.0/24\"}}");
	ok(vmm_manifest_load(dir, &r, &e) == 0, "legacy manifest loads: %s", e.msg);
	ok(r.n_networks == 1 && !strcmp(r.networks[0].mode, "user") &&
	       !strcmp(r.networks[0].net, "10.1.0.0/24") && !strcmp(r.networks[0].bridge, ""),
	   "networking used as networks");
	ok(!r.has_gpus && !r.simulated_tee && r.volumes.n == 0, "absent optionals");
	vmm_manifest_free(&r);

	tu_write(dir, VMM_MANIFEST_FILE, "{\"id\":\"vm-1\",\"app_id\":\"aa\"}");
	ok(vmm_manifest_load(dir, &r, &e) < 0, "missing image rejected");
	is_str(e.msg, "vm-manifest.json: missing field image", "message");
	tu_write(dir, VMM_MANIFEST_FILE,
		 "{\"id\":\"vm-1\",\"app_id\":\"aa\",\"image\":\"i\",\"port_map\":[{\"address\":\"1\","
		 "\"protocol\":"
		 "\"tcp\",\"from\":70000,\"to\":1}]}");
	ok(vmm_manifest_load(dir, &r, &e) < 0, "port > u16 rejected");
	tu_write(dir, VMM_MANIFEST_FILE, "[1,2");
	ok(vmm_manifest_load(dir, &r, &e) < 0, "malformed json rejected");

	vmm_manifest_free(&m);
	tu_rmrf(root);
}

static void test_state_and_shared(void)
{
	char *root = tu_tmpdir();
	struct err e = ERR_INIT;
	_cleanup_free_ char *dir = NULL;
	bool started = true, exists;
	uint8_t *data;
	size_t len;
	struct stat st;

	vmm_workdir_create(root, "a", &e);
	dir = path_join(root, "a");
	ok(vmm_state_load(dir, &started, &e) == 0 && !started, "missing state = not started");
	ok(vmm_state_save(dir, true, &e) == 0, "save state");
	_cleanup_free_ char *s = tu_read(dir, VMM_STATE_FILE);
	is_str(s, "{\"started\":true}", "state file content");
	ok(vmm_state_load(dir, &started, &e) == 0 && started, "started read back");

	const char compose[] = "{ \"name\" : \"x\" }\n";
	ok(vmm_shared_write(dir, VMM_APP_COMPOSE_FILE, compose, sizeof(compose) - 1, &e) == 0,
	   "write compose");
	ok(vmm_shared_read(dir, VMM_APP_COMPOSE_FILE, &data, &len, &exists, &e) == 0 && exists &&
	       len == sizeof(compose) - 1 && !memcmp(data, compose, len),
	   "compose raw bytes preserved");
	free(data);
	const uint8_t env[] = {0, 1, 2, 0xff};
	ok(vmm_shared_write(dir, VMM_ENCRYPTED_ENV_FILE, env, 4, &e) == 0, "write env");
	_cleanup_free_ char *envp = xasprintf("%s/shared/.encrypted-env", dir);
	ok(stat(envp, &st) == 0 && (st.st_mode & 0777) == 0600, "encrypted env is 0600");
	ok(vmm_shared_read(dir, VMM_USER_CONFIG_FILE, &data, &len, &exists, &e) == 0 && !exists && !data,
	   "missing shared file reports !exists");

	ok(!vmm_workdir_is_removing(dir), "not removing");
	ok(vmm_workdir_mark_removing(dir, &e) == 0 && vmm_workdir_is_removing(dir), ".removing marker");

	struct vmm_net n = {"user", "", "", "10.0.2.0/24", "10.0.2.10", false, ""};
	ok(vmm_runtime_networks_save(dir, &n, 1, &e) == 0, "runtime networks written");
	_cleanup_free_ char *rn = tu_read(dir, VMM_RUNTIME_NETWORKS_FILE);
	ok(rn && strstr(rn, "\"mode\":\"user\""), "runtime networks content");
	ok(vmm_runtime_networks_save(dir, NULL, 0, &e) == 0, "cleared");
	_cleanup_free_ char *rnp = path_join(dir, VMM_RUNTIME_NETWORKS_FILE);
	ok(!file_exists(rnp), "runtime networks removed");

	vmm_workdir_create(root, "b", &e);
	tu_write(root, "not-a-dir", "x");
	_cleanup_free_ char *bad = xasprintf("%s/bad.id", root);
	mkdir_p(bad, 0755, NULL);
	struct strv ids;
	ok(vmm_workdir_scan(root, &ids, &e) == 0, "scan");
	ok(ids.n == 2 && !strcmp(ids.v[0], "a") && !strcmp(ids.v[1], "b"), "scan finds valid dirs only");
	strv_free(&ids);
	ok(vmm_workdir_remove(dir, &e) == 0 && !file_exists(dir), "rm -rf");
	ok(vmm_workdir_remove(dir, &e) == 0, "removing again is fine");
	tu_rmrf(root);
}

static void test_ids(void)
{
	ok(vmm_id_valid("0b5e6c4e-1d2f-4a3b-8c9d-0123456789ab"), "uuid valid");
	ok(vmm_id_valid("a_b-C"), "charset");
	ok(!vmm_id_valid(""), "empty invalid");
	ok(!vmm_id_valid("a.b"), "dot invalid");
	ok(!vmm_id_valid("../x"), "traversal invalid");
	char l[66];
	memset(l, 'x', 65);
	l[65] = 0;
	ok(!vmm_id_valid(l), "65 chars invalid");
	struct err e = ERR_INIT;
	ok(vmm_workdir_path("/r", "../etc", &e) == NULL, "path refuses bad id");
	is_str(e.msg, "Invalid VM id", "message");
}

int main(void)
{
	test_manifest();
	test_state_and_shared();
	test_ids();
	return tap_done();
}
