/*
 * netport_test.c — CID pool bounds and reuse, the CIDs running processes
 * hold (a fake /proc), port mapping rules and exact errors, network
 * resolution, MAC and TAP naming (spec §6).
 */
#include "core/cleanup.h"
#include "core/tap.h"
#include "testutil.h"
#include "vmm/cid_pool.h"
#include "vmm/network.h"
#include "vmm/ports.h"

static void test_cid_pool(void)
{
	struct vmm_cid_pool p;
	struct err e = ERR_INIT;
	uint32_t cid = 0;

	vmm_cid_pool_init(&p, 1000, 3);
	ok(vmm_cid_alloc(&p, &cid, &e) == 0 && cid == 1000, "first CID is cid_start");
	ok(vmm_cid_alloc(&p, &cid, &e) == 0 && cid == 1001, "then 1001");
	ok(vmm_cid_alloc(&p, &cid, &e) == 0 && cid == 1002, "then 1002");
	ok(vmm_cid_alloc(&p, &cid, &e) < 0, "exhausted after pool size");
	is_str(e.msg, "CID pool exhausted", "exact message");
	vmm_cid_release(&p, 1001);
	ok(!vmm_cid_is_used(&p, 1001), "released");
	ok(vmm_cid_alloc(&p, &cid, &e) == 0 && cid == 1001, "lowest free reused");
	vmm_cid_pool_clear(&p);
	ok(vmm_cid_occupy(&p, 1001, &e) == 0, "occupy running process CID");
	ok(vmm_cid_occupy(&p, 1001, &e) < 0, "double occupy rejected");
	ok(vmm_cid_occupy(&p, 999, &e) < 0 && vmm_cid_occupy(&p, 1003, &e) < 0, "outside range rejected");
	ok(vmm_cid_alloc(&p, &cid, &e) == 0 && cid == 1000, "allocation skips around reserved");
	ok(vmm_cid_alloc(&p, &cid, &e) == 0 && cid == 1002, "and past it");
	vmm_cid_pool_free(&p);

	vmm_cid_pool_init(&p, 3, 1);
	ok(vmm_cid_alloc(&p, &cid, &e) == 0 && cid == 3, "pool of one");
	ok(vmm_cid_alloc(&p, &cid, &e) < 0, "pool of one exhausted");
	vmm_cid_pool_free(&p);
}

static void test_ports(void)
{
	struct vmm_config c;
	struct err e = ERR_INIT;
	struct vmm_port_map *m = NULL;

	vmm_config_init(&c);
	struct vmm_port_req one[] = {{"tcp", 8080, 80, ""}};
	ok(vmm_ports_for_create(&c, NULL, 0, NULL, 0, &m, &e) == 0, "no ports while disabled is fine");
	free(m);
	ok(vmm_ports_for_create(&c, one, 1, NULL, 0, &m, &e) < 0, "ports while disabled");
	is_str(e.msg, "Port mapping is disabled", "disabled message");
	c.cvm.port_mapping.enabled = true;
	ok(vmm_ports_for_create(&c, one, 1, NULL, 0, &m, &e) == 0, "allowed: %s", e.msg);
	is_str(m[0].address, "127.0.0.1", "default host address");
	ok(m[0].from == 8080 && m[0].to == 80 && !strcmp(m[0].protocol, "tcp"), "fields");
	free(m);

	struct vmm_port_req udp[] = {{"udp", 53, 53, ""}};
	ok(vmm_ports_for_create(&c, udp, 1, NULL, 0, &m, &e) < 0, "udp not in tcp-only ranges");
	is_str(e.msg, "Port mapping is not allowed for udp:53", "range message");
	struct vmm_port_req high[] = {{"tcp", 20001, 80, ""}};
	ok(vmm_ports_for_create(&c, high, 1, NULL, 0, &m, &e) < 0, "above range");
	is_str(e.msg, "Port mapping is not allowed for tcp:20001", "range message tcp");
	struct vmm_port_req big[] = {{"tcp", 70000, 80, ""}};
	ok(vmm_ports_for_create(&c, big, 1, NULL, 0, &m, &e) < 0, "host port > u16");
	is_str(e.msg, "Invalid host port: out of range integral type conversion attempted", "u16 message");
	struct vmm_port_req bigvm[] = {{"tcp", 80, 65536, ""}};
	ok(vmm_ports_for_create(&c, bigvm, 1, NULL, 0, &m, &e) < 0, "vm port > u16");
	struct vmm_port_req badaddr[] = {{"tcp", 80, 80, "localhost"}};
	ok(vmm_ports_for_create(&c, badaddr, 1, NULL, 0, &m, &e) < 0, "hostname is not an address");
	is_str(e.msg, "Invalid host address: invalid IP address syntax", "address message");

	struct vmm_port_req dup[] = {{"tcp", 80, 80, "127.0.0.1"}, {"tcp", 80, 81, "0.0.0.0"}};
	ok(vmm_ports_for_create(&c, dup, 2, NULL, 0, &m, &e) < 0, "unspecified conflicts within request");
	is_str(e.msg, "duplicate host port mapping: tcp 0.0.0.0:80", "dup message");
	struct vmm_port_req two[] = {{"tcp", 80, 80, "127.0.0.1"}, {"tcp", 80, 81, "127.0.0.2"}};
	ok(vmm_ports_for_create(&c, two, 2, NULL, 0, &m, &e) == 0, "distinct addresses do not conflict");
	free(m);
	struct vmm_port_req proto[] = {{"tcp", 80, 80, ""}, {"udp", 80, 80, ""}};
	struct vmm_port_range r2[2] = {{"tcp", 1, 100}, {"udp", 1, 100}};
	struct vmm_port_range *saved = c.cvm.port_mapping.ranges;
	c.cvm.port_mapping.ranges = r2;
	c.cvm.port_mapping.n_ranges = 2;
	ok(vmm_ports_for_create(&c, proto, 2, NULL, 0, &m, &e) == 0, "tcp and udp on one port is fine");
	free(m);
	c.cvm.port_mapping.ranges = saved;
	c.cvm.port_mapping.n_ranges = 1;

	struct vmm_port_map held[] = {{"::", "tcp", 443, 443}};
	struct vmm_port_holder other = {"vm-other", held, 1};
	struct vmm_port_req v6[] = {{"tcp", 443, 8443, "127.0.0.1"}};
	ok(vmm_ports_for_create(&c, v6, 1, &other, 1, &m, &e) < 0, "conflict with :: held by another VM");
	is_str(e.msg, "host port tcp 127.0.0.1:443 is already used by VM vm-other", "cross-VM message");

	/* Update: no enabled/range checks, self excluded, empty address fails. */
	c.cvm.port_mapping.enabled = false;
	struct vmm_port_req upd[] = {{"udp", 30000, 1, "::0"}};
	ok(vmm_ports_for_update(upd, 1, "vm-self", &other, 1, &m, &e) == 0, "update skips policy");
	is_str(m[0].address, "::", "address canonicalised");
	free(m);
	struct vmm_port_req upd_empty[] = {{"tcp", 1, 1, ""}};
	ok(vmm_ports_for_update(upd_empty, 1, "vm-self", NULL, 0, &m, &e) < 0, "update: empty address fails");
	struct vmm_port_req upd_c[] = {{"tcp", 443, 1, "10.0.0.1"}};
	ok(vmm_ports_for_update(upd_c, 1, "vm-self", &other, 1, &m, &e) < 0, "update: conflict checked");
	ok(vmm_ports_for_update(upd_c, 1, "vm-other", &other, 1, &m, &e) == 0, "update: own ports ignored");
	free(m);
	vmm_config_free(&c);
}

static void test_networks(void)
{
	struct vmm_config c;
	struct err e = ERR_INIT;
	struct vmm_net *v;
	size_t n;
	char *sys = tu_tmpdir();

	tu_write(sys, "br0/bridge/x", "");
	vmm_config_init(&c);
	c.cvm.networking.restrict_ = true;
	ok(vmm_networks_resolve(&c, NULL, 0, NULL, sys, &v, &n, &e) == 0 && n == 0,
	   "no networks: node default");
	struct vmm_net_req reqs[] = {{"user", ""}, {"bridge", "br0"}};
	ok(vmm_networks_resolve(&c, reqs, 2, NULL, sys, &v, &n, &e) == 0 && n == 2, "two NICs: %s", e.msg);
	is_str(v[0].mode, "user", "nic0 user");
	is_str(v[0].net, "10.0.2.0/24", "net inherited");
	ok(v[0].restrict_, "restrict ORed from global");
	is_str(v[1].mode, "bridge", "nic1 bridge");
	is_str(v[1].bridge, "br0", "bridge name");
	vmm_networks_free(v, n);
	struct vmm_net_req single = {"user", ""};
	ok(vmm_networks_resolve(&c, NULL, 0, &single, sys, &v, &n, &e) == 0 && n == 1,
	   "legacy single networking");
	vmm_networks_free(v, n);
	struct vmm_net_req custom[] = {{"custom", ""}};
	ok(vmm_networks_resolve(&c, custom, 1, NULL, sys, &v, &n, &e) < 0, "custom rejected over RPC");
	is_str(e.msg, "networks[0]: Unsupported network mode: custom", "message");
	struct vmm_net_req ubr[] = {{"user", "br0"}};
	ok(vmm_networks_resolve(&c, ubr, 1, NULL, sys, &v, &n, &e) < 0, "bridge_name with user rejected");
	struct vmm_net_req nobr[] = {{"bridge", "br9"}};
	ok(vmm_networks_resolve(&c, nobr, 1, NULL, sys, &v, &n, &e) < 0, "missing bridge rejected");
	is_str(e.msg, "networks[0]: Bridge br9 does not exist", "message");
	struct vmm_net_req nobrname[] = {{"bridge", ""}};
	ok(vmm_networks_resolve(&c, nobrname, 1, NULL, sys, &v, &n, &e) < 0, "bridge without any name");
	str_set(&c.cvm.networking.bridge, "br0");
	ok(vmm_networks_resolve(&c, nobrname, 1, NULL, sys, &v, &n, &e) == 0 && !strcmp(v[0].bridge, "br0"),
	   "global bridge used when entry has none");
	vmm_networks_free(v, n);
	vmm_config_free(&c);
	tu_rmrf(sys);
}

static void test_mac(void)
{
	char mac[18], tap[16];
	struct err e = ERR_INIT;

	ok(vmm_mac_address("vm-123", 0, "", mac, &e) == 0, "mac");
	is_str(mac, "96:b1:d8:b9:08:e6", "spec vector vm-123");
	ok(vmm_mac_address("vm-123", 0, "52:54:00", mac, &e) == 0, "mac with prefix");
	ok(!strncmp(mac, "52:54:00:", 9), "prefix kept (0x52 already local, unicast): %s", mac);
	is_str(mac + 9, "97:b1:d8", "rest is the first raw hash bytes");
	ok(vmm_mac_address("vm-123", 0, "01", mac, &e) == 0 && !strncmp(mac, "02:", 3),
	   "multicast bit cleared");
	ok(vmm_mac_address("vm-123", 1, "", mac, &e) == 0, "second NIC");
	uint8_t h[32];
	sha256_buf("vm-123:1", 8, h);
	char want[18];
	snprintf(want, sizeof(want), "%02x:%02x:%02x:%02x:%02x:%02x", (h[0] & 0xfe) | 2, h[1], h[2], h[3],
		 h[4], h[5]);
	is_str(mac, want, "NIC 1 hashes \"vm-123:1\"");
	ok(vmm_mac_address("vm-123", 0, "01020304", mac, &e) < 0, "prefix > 3 bytes rejected");
	ok(vmm_mac_address("vm-123", 0, "zz", mac, &e) < 0, "non-hex prefix rejected");
	vmm_tap_name("inst", "vm", 0, tap);
	sha256_buf("inst\0vm\0"
		   "0",
		   9, h);
	snprintf(want, sizeof(want), "dt%02x%02x%02x%02x%02x%02x", h[0], h[1], h[2], h[3], h[4], h[5]);
	is_str(tap, want, "tap name");
	is_int(strlen(tap), 14, "tap name fits IFNAMSIZ");
}

/* guest-cid= in /proc/<pid>/cmdline (NUL-separated arguments) */
#define CMDLINE(lit) lit, sizeof(lit) - 1
static void test_cid_scan(void)
{
	char *root = tu_tmpdir();
	static const struct {
		const char *pid;
		const char *cmdline;
		size_t len;
	} procs[] = {
	    {"101", CMDLINE("qemu\0-device\0vhost-vsock-pci,guest-cid=1000\0-m\0512M")},
	    {"202", CMDLINE("qemu\0-device\0vhost-vsock-pci,guest-cid=1003,id=v\0")},
	    {"303", CMDLINE("bash\0-c\0echo guest-cid=\0")},          /* no digits */
	    {"404", CMDLINE("x\0guest-cid=99999999999\0")},           /* over u32 */
	    {"self", CMDLINE("qemu\0vhost-vsock-pci,guest-cid=7\0")}, /* not a pid */
	};
	uint32_t *cids = NULL;
	size_t n;

	for (size_t i = 0; i < ARRAY_SIZE(procs); i++) {
		_cleanup_free_ char *d = path_join(root, procs[i].pid), *f = NULL;

		mkdir_p(d, 0755, NULL);
		f = path_join(d, "cmdline");
		file_write_atomic(f, procs[i].cmdline, procs[i].len, 0644, NULL);
	}
	n = vmm_cids_in_use_scan(root, &cids);
	if (n == 2 && cids[0] > cids[1]) {
		uint32_t t = cids[0];

		cids[0] = cids[1];
		cids[1] = t;
	}
	ok(n == 2 && cids[0] == 1000 && cids[1] == 1003,
	   "cids in use: 1000 and 1003 (no digits, too large, not a pid: ignored)");
	free(cids);
	n = vmm_cids_in_use_scan("/nonexistent-proc", &cids);
	ok(n == 0 && !cids, "no /proc: none");
	tu_rmrf(root);
}

int main(void)
{
	test_cid_pool();
	test_cid_scan();
	test_ports();
	test_networks();
	test_mac();
	return tap_done();
}
