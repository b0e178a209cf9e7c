/*
 * test_hostcfg.c — build-config.sh parsing (defaults, syntax, refusals),
 * rendered configs, the app URL grammar, and the key-material rules: keys
 * created once and never replaced, certificates reissued when their names
 * change, WireGuard keys clamped with the matching public key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/base64.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/tap.h"
#include "crypto/ecx.h"
#include "hostcfg/hostcfg.h"

static int parse(const char *text, struct hostcfg *c, struct err *e)
{
	return hostcfg_parse(text, strlen(text), "/srv/dev", c, e);
}

static void test_parse(void)
{
	struct hostcfg c;
	struct err e = ERR_INIT;
	const char *def = hostcfg_default_script();

	ok(parse(def, &c, &e) == 0, "default build-config.sh parses: %s", err_str(&e));
	is_str(c.kms_domain, "kms.localhost", "default KMS_DOMAIN");
	is_int(c.gateway_serving_port, 9204, "default serving port");
	is_int(c.cid_pool_start, 10000, "default CID pool start");
	is_str(c.gateway_wg_endpoint, "127.0.0.1:9207", "empty WG endpoint defaults to loopback:port");
	ok(!c.certbot_enabled, "certbot off by default");
	is_str(c.vmm_backend, "process", "default VMM_BACKEND");
	hostcfg_free(&c);
	ok(parse("VMM_BACKEND=qemu\n", &c, &e) == 0, "VMM_BACKEND=qemu: %s", err_str(&e));
	is_str(c.gateway_wg_endpoint, "10.0.2.2:9207", "qemu: WG endpoint defaults to the user-net host");
	hostcfg_free(&c);

	ok(parse("# comment\nexport KMS_DOMAIN=\"kms.example.test\"\nGATEWAY_SERVING_PORT='443'\n"
		 "CERTBOT_ENABLED=true\nCF_API_TOKEN=tok\nCID_POOL_SIZE=8\n",
		 &c, &e) == 0,
	   "quotes, export and comments: %s", err_str(&e));
	is_str(c.kms_domain, "kms.example.test", "quoted value");
	is_int(c.gateway_serving_port, 443, "single-quoted port");
	ok(c.certbot_enabled, "CERTBOT_ENABLED=true");
	is_int(c.cid_pool_size, 8, "CID_POOL_SIZE");
	hostcfg_free(&c);

	static const struct {
		const char *text, *needle;
	} bad[] = {
	    {"KMS_DOMIAN=x\n", "unknown setting KMS_DOMIAN"},
	    {"KMS_RPC_LISTEN_PORT=0\n", "KMS_RPC_LISTEN_PORT"},
	    {"KMS_RPC_LISTEN_PORT=65536\n", "KMS_RPC_LISTEN_PORT"},
	    {"VMM_RPC_LISTEN_PORT=9x\n", "VMM_RPC_LISTEN_PORT"},
	    {"GATEWAY_SERVING_PORT=9201\n", "used twice"},
	    {"GATEWAY_DOMAIN=-bad.test\n", "GATEWAY_DOMAIN"},
	    {"GATEWAY_PUBLIC_DOMAIN=a..b\n", "GATEWAY_PUBLIC_DOMAIN"},
	    {"KMS_DOMAIN=\"x\\\"y\"\n", "KMS_DOMAIN"},
	    {"KMS_AUTH=maybe\n", "KMS_AUTH"},
	    {"CID_POOL_START=2\n", "CID_POOL_START"},
	    {"CID_POOL_START=4294967295\n", "CID_POOL_SIZE"},
	    {"GATEWAY_WG_INTERFACE=an-interface-name-too-long\n", "GATEWAY_WG_INTERFACE"},
	    {"GATEWAY_WG_IP=10.0.3\n", "GATEWAY_WG_IP"},
	    {"GATEWAY_WG_LISTEN_PORT=9182\n", "the CVMs' own WireGuard port"},
	    {"CERTBOT_ENABLED=true\n", "CF_API_TOKEN"},
	    {"CERTBOT_ENABLED=perhaps\n", "CERTBOT_ENABLED"},
	    {"VMM_BACKEND=kvm\n", "VMM_BACKEND"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		err_clear(&e);
		int rc = parse(bad[i].text, &c, &e);
		ok(rc < 0 && strstr(err_str(&e), bad[i].needle), "refused: %.*s -> %s",
		   (int)strcspn(bad[i].text, "\n"), bad[i].text, err_str(&e));
		if (rc == 0)
			hostcfg_free(&c);
	}
}

static void test_render(void)
{
	struct hostcfg c;
	struct err e = ERR_INIT;
	struct buf b = BUF_INIT;

	ok(parse("KMS_AUTH=webhook\nGATEWAY_WG_IP=10.9.8.1\n", &c, &e) == 0, "parse: %s", err_str(&e));
	hostcfg_render_kms(&c, &b);
	ok(strstr((char *)b.data, "type = \"webhook\"") &&
	       strstr((char *)b.data, "url = \"http://127.0.0.1:9205\""),
	   "kms.toml: webhook at auth-simple's port");
	ok(strstr((char *)b.data, "cert_dir = \"/srv/dev/kms-certs\""), "kms.toml: absolute cert_dir");
	ok(strstr((char *)b.data, "auto_bootstrap_domain = \"kms.localhost\""), "kms.toml: auto bootstrap");
	buf_reset(&b);
	hostcfg_render_gateway(&c, "PRIV", "PUB", "TOKEN", &b);
	ok(strstr((char *)b.data, "ip = \"10.9.8.1/24\"") &&
	       strstr((char *)b.data, "client_ip_range = \"10.9.8.0/25\"") &&
	       strstr((char *)b.data, "reserved_net = [\"10.9.8.1/32\"]"),
	   "gateway.toml: WireGuard subnet from GATEWAY_WG_IP");
	ok(strstr((char *)b.data, "private_key = \"PRIV\"") &&
	       strstr((char *)b.data, "auth_token = \"TOKEN\""),
	   "gateway.toml: key and token");
	ok(strstr((char *)b.data, "base_domain = \"app.localhost\""),
	   "gateway.toml: static wildcard base domain");
	buf_reset(&b);
	hostcfg_render_vmm(&c, "/opt/supervisor", &b);
	ok(strstr((char *)b.data, "exe = \"/opt/supervisor\"") && strstr((char *)b.data, "cid_start = 10000"),
	   "vmm.toml: supervisor and CID pool");
	ok(strstr((char *)b.data, "[cvm.process]\nsimtee_dir = \"") &&
	       strstr((char *)b.data, "/simtee/root_ca.pem\""),
	   "vmm.toml: process backend on the simtee PKI");
	ok(strstr((char *)b.data, "backend = \"process\"") &&
	       strstr((char *)b.data, "kms_urls = [\"https://kms.localhost:9201\"]"),
	   "vmm.toml: process backend, CVMs told the KMS domain");
	buf_free(&b);
	hostcfg_free(&c);
	ok(parse("VMM_BACKEND=qemu\n", &c, &e) == 0, "parse: %s", err_str(&e));
	hostcfg_render_vmm(&c, "/opt/supervisor", &b);
	ok(strstr((char *)b.data, "backend = \"qemu\"") &&
	       strstr((char *)b.data, "kms_urls = [\"https://10.0.2.2:9201\"]") &&
	       strstr((char *)b.data, "collateral_base_url = \"http://10.0.2.2:9206\""),
	   "vmm.toml: qemu backend, guests told the host's user-net address");
	buf_free(&b);

	static const struct {
		uint16_t port;
		char suffix;
		const char *want;
	} urls[] = {
	    {0, 0, "https://abc.app.localhost:9204/"},
	    {8080, 0, "https://abc-8080.app.localhost:9204/"},
	    {443, 's', "https://abc-443s.app.localhost:9204/"},
	    {50051, 'g', "https://abc-50051g.app.localhost:9204/"},
	    {0, 'g', "https://abc-g.app.localhost:9204/"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(urls); i++) {
		_cleanup_free_ char *u = hostcfg_app_url(&c, "abc", urls[i].port, urls[i].suffix);
		is_str(u, urls[i].want, "app URL %s", urls[i].want);
	}
	hostcfg_free(&c);
}

static char *slurp(const char *p)
{
	uint8_t *d = NULL;
	size_t n;
	return file_read_all(p, 1 << 20, &d, &n, NULL) == 0 ? (char *)d : NULL;
}

static void test_keys(void)
{
	char dir[] = "/tmp/hostcfg-test-XXXXXX";
	struct err e = ERR_INIT;
	bool created;
	if (!mkdtemp(dir)) {
		ok(0, "mkdtemp");
		return;
	}
	char ck[128], cc[128], lk[128], lc[128], wg[128], tk[128];
	snprintf(ck, sizeof ck, "%s/ca.key", dir);
	snprintf(cc, sizeof cc, "%s/ca.crt", dir);
	snprintf(lk, sizeof lk, "%s/leaf.key", dir);
	snprintf(lc, sizeof lc, "%s/leaf.crt", dir);
	snprintf(wg, sizeof wg, "%s/wg.key", dir);
	snprintf(tk, sizeof tk, "%s/token", dir);

	enum hostcfg_written w;
	ok(hostcfg_ensure_dev_ca(ck, cc, &w, &e) == 0 && w == HOSTCFG_CREATED, "dev CA created: %s",
	   err_str(&e));
	ok(hostcfg_ensure_dev_ca(ck, cc, &w, &e) == 0 && w == HOSTCFG_KEPT, "dev CA kept");
	const char *n1[] = {"gw.test"}, *n2[] = {"gw2.test"};
	ok(hostcfg_ensure_leaf(ck, cc, lk, lc, n1, 1, false, &w, &e) == 0 && w == HOSTCFG_CREATED,
	   "leaf created: %s", err_str(&e));
	_cleanup_free_ char *key1 = slurp(lk), *crt1 = slurp(lc);
	ok(hostcfg_ensure_leaf(ck, cc, lk, lc, n1, 1, false, &w, &e) == 0 && w == HOSTCFG_KEPT,
	   "same names: kept");
	ok(hostcfg_ensure_leaf(ck, cc, lk, lc, n2, 1, false, &w, &e) == 0 && w == HOSTCFG_REISSUED,
	   "new names: reported as reissued");
	ok(hostcfg_ensure_leaf(ck, cc, lk, lc, n2, 1, true, &w, &e) == 0 && w == HOSTCFG_REISSUED,
	   "forced: reported as reissued");
	_cleanup_free_ char *key2 = slurp(lk), *crt2 = slurp(lc);
	ok(key1 && key2 && !strcmp(key1, key2), "leaf key never replaced");
	ok(crt1 && crt2 && strcmp(crt1, crt2), "leaf certificate reissued");

	char priv[45], pub[45], priv2[45], pub2[45];
	ok(hostcfg_ensure_wg_key(wg, priv, pub, &created, &e) == 0 && created, "wg key created: %s",
	   err_str(&e));
	ok(hostcfg_ensure_wg_key(wg, priv2, pub2, &created, &e) == 0 && !created && !strcmp(priv, priv2) &&
	       !strcmp(pub, pub2),
	   "wg key kept");
	uint8_t *raw = NULL, *rawpub = NULL, calc[32];
	size_t n = 0, np = 0;
	ok(base64_decode(priv, strlen(priv), &raw, &n, &e) == 0 && n == 32,
	   "wg private key is base64 of 32 bytes");
	ok(raw && (raw[0] & 7) == 0 && (raw[31] & 0xc0) == 0x40, "wg private key clamped");
	ok(raw && x25519_public(raw, calc, &e) == 0 &&
	       base64_decode(pub, strlen(pub), &rawpub, &np, &e) == 0 && np == 32 &&
	       !memcmp(calc, rawpub, 32),
	   "wg public key matches");
	free(raw);
	free(rawpub);
	file_write_atomic(wg, "not base64!\n", 12, 0600, NULL);
	ok(hostcfg_ensure_wg_key(wg, priv2, pub2, &created, &e) < 0,
	   "corrupt wg key refused, not replaced: %s", err_str(&e));

	char t1[65], t2[65];
	ok(hostcfg_ensure_token(tk, t1, &created, &e) == 0 && created && strlen(t1) == 64, "token created");
	ok(hostcfg_ensure_token(tk, t2, &created, &e) == 0 && !created && !strcmp(t1, t2), "token kept");

	const char *files[] = {ck, cc, lk, lc, wg, tk};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++)
		unlink(files[i]);
	rmdir(dir);
}

static void test_script_set(void)
{
	static const struct {
		const char *in, *want;
		bool changed;
	} cases[] = {
	    {"# c\nA=1\nVMM_BACKEND=process\nB=2\n", "# c\nA=1\nVMM_BACKEND=qemu\nB=2\n", true},
	    {"A=1\nVMM_BACKEND=qemu\n", "A=1\nVMM_BACKEND=qemu\n", false},
	    {"A=1\n", "A=1\nVMM_BACKEND=qemu\n", true},
	    {"A=1", "A=1\nVMM_BACKEND=qemu\n", true},
	    {"export VMM_BACKEND = process\nVMM_BACKEND=x\n# VMM_BACKEND=y\n",
	     "VMM_BACKEND=qemu\n# VMM_BACKEND=y\n", true},
	    {"VMM_BACKEND_X=1\n", "VMM_BACKEND_X=1\nVMM_BACKEND=qemu\n", true},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct buf b = BUF_INIT;
		bool ch = hostcfg_script_set(cases[i].in, strlen(cases[i].in), "VMM_BACKEND", "qemu", &b);
		buf_putc(&b, 0);
		ok(ch == cases[i].changed && !strcmp((char *)b.data, cases[i].want),
		   "script_set case %zu: %s", i, (char *)b.data);
		buf_free(&b);
	}
}

int main(void)
{
	test_parse();
	test_script_set();
	test_render();
	test_keys();
	return tap_done();
}
