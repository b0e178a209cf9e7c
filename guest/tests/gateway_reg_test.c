/*
 * gateway_reg_test.c — WireGuard key persistence (created once, 0600,
 * reused; public key matches X25519 of the stored secret) and wg-quick
 * rendering from a RegisterCvm reply (peers sorted, prefixes stripped,
 * malformed replies rejected).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec/base64.h"
#include "core/tap.h"
#include "crypto/ecx.h"
#include "gateway_reg.h"

static const char *REPLY = "{\"wg\":{\"client_ip\":\"10.4.0.7\",\"servers\":["
			   "{\"pk\":\"ZZZpub=\",\"ip\":\"10.4.0.1/16\",\"endpoint\":\"127.0.0.1:51820\"},"
			   "{\"pk\":\"AAApub=\",\"ip\":\"10.4.0.2\",\"endpoint\":\"127.0.0.2:51820\"}]}}";

int main(void)
{
	char dir[] = "/tmp/gwreg.XXXXXX";
	char path[256];
	struct err e = {0};
	char *priv = NULL, *pub = NULL, *priv2 = NULL, *pub2 = NULL;
	struct stat st;

	if (!mkdtemp(dir))
		return 1;
	ok(gw_wg_key_load_or_create(dir, &priv, &pub, &e) == 0, "key created");
	snprintf(path, sizeof(path), "%s/%s", dir, GW_WG_KEY_FILE);
	ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "key file is 0600");
	ok(gw_wg_key_load_or_create(dir, &priv2, &pub2, &e) == 0, "key reloaded");
	is_str(priv2, priv, "same private key");
	is_str(pub2, pub, "same public key");

	uint8_t *sk = NULL, *pk = NULL;
	size_t skn = 0, pkn = 0;
	uint8_t want[32];
	ok(base64_decode(priv, strlen(priv), &sk, &skn, &e) == 0 && skn == 32, "private key is 32 bytes b64");
	ok(base64_decode(pub, strlen(pub), &pk, &pkn, &e) == 0 && pkn == 32, "public key is 32 bytes b64");
	ok((sk[0] & 7) == 0 && (sk[31] & 0xc0) == 0x40, "private key clamped");
	ok(x25519_public(sk, want, &e) == 0 && memcmp(want, pk, 32) == 0, "public = X25519(private)");
	free(sk);
	free(pk);

	json_t *reply = json_loads(REPLY, 0, NULL);
	ok(gw_wg_conf_write(dir, priv, reply, &e) == 0, "conf written");
	snprintf(path, sizeof(path), "%s/%s", dir, GW_WG_CONF_FILE);
	char expect[1024];
	snprintf(expect, sizeof(expect),
		 "[Interface]\nPrivateKey = %s\nListenPort = 9182\nAddress = 10.4.0.7/32\n"
		 "\n[Peer]\nPublicKey = AAApub=\nAllowedIPs = 10.4.0.2/32\nEndpoint = 127.0.0.2:51820\n"
		 "PersistentKeepalive = 25\n"
		 "\n[Peer]\nPublicKey = ZZZpub=\nAllowedIPs = 10.4.0.1/32\nEndpoint = 127.0.0.1:51820\n"
		 "PersistentKeepalive = 25\n",
		 priv);
	FILE *f = fopen(path, "r");
	char got[1024] = {0};
	size_t gn = f ? fread(got, 1, sizeof(got) - 1, f) : 0;
	if (f)
		fclose(f);
	got[gn] = 0;
	is_str(got, expect, "wg-quick file contents");
	ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "conf file is 0600");
	json_decref(reply);

	struct buf b = {0};
	reply = json_loads("{\"wg\":{\"servers\":[]}}", 0, NULL);
	ok(gw_wg_conf_render(priv, reply, &b, &e) < 0, "no client_ip rejected");
	json_decref(reply);
	reply = json_loads(
	    "{\"wg\":{\"client_ip\":\"10.4.0.7\",\"servers\":[{\"pk\":\"x\\n[Peer]\",\"ip\":\"1.2.3.4\","
	    "\"endpoint\":\"e:1\"}]}}",
	    0, NULL);
	ok(gw_wg_conf_render(priv, reply, &b, &e) < 0, "newline injection rejected");
	json_decref(reply);
	ok(gw_wg_conf_render(priv, NULL, &b, &e) < 0, "null reply rejected");
	buf_free(&b);

	snprintf(path, sizeof(path), "%s/%s", dir, GW_WG_KEY_FILE);
	f = fopen(path, "w");
	if (f) {
		fputs("c2hvcnQ=\n", f);
		fclose(f);
	}
	free(priv2);
	free(pub2);
	priv2 = pub2 = NULL;
	ok(gw_wg_key_load_or_create(dir, &priv2, &pub2, &e) < 0, "short stored key rejected");

	free(priv);
	free(pub);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s", dir, GW_WG_CONF_FILE);
	unlink(path);
	rmdir(dir);
	return tap_done();
}
