/*
 * unit_test.c — the gateway's pure parts: the WireGuard address plan
 * (gateway.md §6 validation and allocation, including the cluster subnet
 * plan), the wg(8) rendering, and the SQLite store (records, address
 * allocation, node status, UUID, certificates) on a temporary directory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/tap.h"
#include "ipnet.h"
#include "store.h"
#include "wg.h"

static bool none_used(void *arg, uint32_t ip)
{
	(void)arg;
	(void)ip;
	return false;
}

static bool first_two_used(void *arg, uint32_t ip)
{
	(void)arg;
	return ip == 0x0a000002 || ip == 0x0a000003;
}

static void test_pool(void)
{
	const char *res[] = {"10.0.0.1/32"};
	const char *res_bad[] = {"10.1.0.1/32"};
	const char *res_nogw[] = {"10.0.0.5/32"};
	struct ip_pool p;
	struct err e = ERR_INIT;
	uint32_t ip = 0;
	char s[16];

	ok(ip_pool_init(&p, "10.0.0.1/24", res, 1, "10.0.0.0/25", &e) == 0, "default plan is valid");
	ok(ip_pool_first_free(&p, none_used, NULL, &ip, &e) == 0, "allocates");
	ip4_format(ip, s);
	is_str(s, "10.0.0.2", "first host after the gateway");
	ip_pool_first_free(&p, first_two_used, NULL, &ip, &e);
	ip4_format(ip, s);
	is_str(s, "10.0.0.4", "skips allocated addresses");
	ok(!ip_pool_usable(&p, 0x0a00007f), "range broadcast 10.0.0.127 not usable");
	ok(ip_pool_usable(&p, 0x0a00007e), "10.0.0.126 is the last usable");
	ok(!ip_pool_usable(&p, 0x0a000080), "outside client_ip_range not usable");
	ok(!ip_pool_usable(&p, 0x0a000000), "network address not usable");
	ip_pool_free(&p);

	ok(ip_pool_init(&p, "10.0.0.1/24", res_bad, 1, "10.0.0.0/25", &e) < 0 &&
	       strstr(err_str(&e), "reserved_net"),
	   "reserved net outside the network refused: %s", err_str(&e));
	err_clear(&e);
	ok(ip_pool_init(&p, "10.0.0.1/24", res_nogw, 1, "10.0.0.0/25", &e) < 0 &&
	       strstr(err_str(&e), "not inside any core.wg.reserved_net"),
	   "gateway ip must be reserved: %s", err_str(&e));
	err_clear(&e);
	ok(ip_pool_init(&p, "10.0.0.1/24", res, 1, "10.0.1.0/25", &e) < 0 &&
	       strstr(err_str(&e), "client_ip_range"),
	   "client range outside the network refused: %s", err_str(&e));
	err_clear(&e);
	ok(ip_pool_init(&p, "10.0.0.1/33", res, 1, "10.0.0.0/25", &e) < 0, "prefix > 32 refused");
	err_clear(&e);
	ok(ip_pool_init(&p, "10.0.0/24", res, 1, "10.0.0.0/25", &e) < 0, "bad address refused");
	err_clear(&e);

	/* cluster plan, node 1: ip 10.8.64.1/16, reserved 10.8.64.1/32, range 10.8.64.0/18 */
	const char *cres[] = {"10.8.64.1/32"};
	ok(ip_pool_init(&p, "10.8.64.1/16", cres, 1, "10.8.64.0/18", &e) == 0, "cluster plan node 1 valid");
	ip_pool_first_free(&p, none_used, NULL, &ip, &e);
	ip4_format(ip, s);
	is_str(s, "10.8.64.2", "cluster node 1 allocates from its /18");
	ok(ip_pool_usable(&p, 0x0a087ffe) && !ip_pool_usable(&p, 0x0a087fff), "…up to 10.8.127.254");
	ip_pool_free(&p);

	/* exhaustion */
	const char *tiny_res[] = {"10.0.0.1/32"};
	ok(ip_pool_init(&p, "10.0.0.1/30", tiny_res, 1, "10.0.0.0/30", &e) == 0, "a /30 plan");
	ip_pool_first_free(&p, none_used, NULL, &ip, &e);
	is_int(ip, 0x0a000002, "one client address in a /30");
	ok(ip_pool_first_free(&p, first_two_used, NULL, &ip, &e) < 0 &&
	       strstr(err_str(&e), "no free address"),
	   "exhausted pool: %s", err_str(&e));
	ip_pool_free(&p);
}

static void test_render(void)
{
	struct wg_settings w = {"", "PRIVKEY=", 51820, "10.0.0.1/24", "/nonexistent"};
	struct gw_instance v[2] = {0};
	struct buf b = BUF_INIT;

	strcpy(v[0].instance_id, "aa");
	strcpy(v[0].public_key, "KEYA=");
	v[0].ip = 0x0a000002;
	strcpy(v[1].instance_id, "bb");
	strcpy(v[1].public_key, "KEYB=");
	v[1].ip = 0x0a000003;
	wg_render(&w, v, 2, &b);
	buf_putc(&b, 0);
	is_str((char *)b.data,
	       "[Interface]\nPrivateKey = PRIVKEY=\nListenPort = 51820\n"
	       "\n[Peer]\nPublicKey = KEYA=\nAllowedIPs = 10.0.0.2/32\nPersistentKeepalive = 25\n"
	       "\n[Peer]\nPublicKey = KEYB=\nAllowedIPs = 10.0.0.3/32\nPersistentKeepalive = 25\n",
	       "wg(8) rendering");
	buf_free(&b);
}

static void test_store(void)
{
	char tmpl[] = "/tmp/gateway-store-XXXXXX", cmd[128], status[16];
	const char *res[] = {"10.0.0.1/32"};
	struct gw_port_attrs ports[] = {{8080, true}, {443, false}};
	struct err e = ERR_INIT;
	struct gw_store *s;
	struct gw_instance in = {0}, out = {0}, *list = NULL;
	struct ip_pool pool;
	size_t n = 0;
	bool found = false;
	uint8_t u1[16], u2[16];
	uint32_t ip = 0;

	if (!mkdtemp(tmpl))
		return;
	ok((s = gw_store_sqlite_open(tmpl, &e)) != NULL, "open store (%s)", err_str(&e));
	if (!s)
		return;
	ip_pool_init(&pool, "10.0.0.1/24", res, 1, "10.0.0.0/25", &e);
	strcpy(in.instance_id, "bb01");
	strcpy(in.app_id, "aa01");
	strcpy(in.public_key, "KEY1=");
	in.ip = 0x0a000002;
	in.reg_time = 1234;
	in.policy = (struct gw_port_policy){true, true, 2, ports};
	ok(s->ops->put_instance(s, &in, &e) == 0, "put");
	ok(s->ops->get_instance(s, "bb01", &out, &found, &e) == 0 && found, "get");
	is_str(out.app_id, "aa01", "app id kept");
	is_int(out.reg_time, 1234, "reg_time kept");
	ok(out.policy.present && out.policy.restrict_mode && out.policy.n_ports == 2 &&
	       out.policy.ports[0].port == 8080 && out.policy.ports[0].pp && !out.policy.ports[1].pp,
	   "port policy round trip");
	ok(!out.admin_policy.present, "no admin policy");
	gw_instance_clear(&out);
	ok(s->ops->allocate_ip(s, &pool, &ip, &e) == 0 && ip == 0x0a000003,
	   "allocation skips stored addresses");
	s->ops->get_instance(s, "nope", &out, &found, &e);
	ok(!found, "absent instance not found");
	ok(s->ops->list_instances(s, &list, &n, &e) == 0 && n == 1, "list");
	gw_instances_free(list, n);
	ok(s->ops->get_node_status(s, 0, status, sizeof(status), &e) == 0 && !strcmp(status, "up"),
	   "default up");
	s->ops->set_node_status(s, 0, "down", &e);
	s->ops->get_node_status(s, 0, status, sizeof(status), &e);
	is_str(status, "down", "status stored");
	s->ops->node_uuid(s, u1, &e);
	s->ops->node_uuid(s, u2, &e);
	ok(!memcmp(u1, u2, 16) && (u1[6] >> 4) == 4, "node UUID v4, stable");
	struct gw_cert c = {"example.com", "CHAIN", "KEY", 99, 1};
	struct gw_cert *cl = NULL;
	ok(s->ops->put_cert(s, &c, &e) == 0, "put cert");
	ok(s->ops->list_certs(s, &cl, &n, &e) == 0 && n == 1 && !strcmp(cl[0].chain_pem, "CHAIN") &&
	       cl[0].not_after == 99,
	   "list certs");
	gw_certs_free(cl, n);
	ok(s->ops->delete_instance(s, "bb01", &e) == 0, "delete");
	s->ops->list_instances(s, &list, &n, &e);
	is_int(n, 0, "deleted");
	gw_instances_free(list, n);
	s->ops->close(s);
	ok((s = gw_store_sqlite_open(tmpl, &e)) != NULL, "reopen");
	s->ops->get_node_status(s, 0, status, sizeof(status), &e);
	is_str(status, "down", "status survives reopening");
	s->ops->node_uuid(s, u2, &e);
	ok(!memcmp(u1, u2, 16), "UUID survives reopening");
	s->ops->close(s);
	ip_pool_free(&pool);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
	if (system(cmd) != 0)
		diag("cleanup failed");
}

int main(void)
{
	test_pool();
	test_render();
	test_store();
	return tap_done();
}
