/*
 * keys_test.c — the KMS key set on disk: generation (file set, modes, raw
 * 32-byte k256 key, certificate profiles), load round trip, the crash-safe
 * store killed with SIGKILL at every step (restart must find either no keys
 * or the complete set, never a partial one), refusal of a partial set, and
 * the 365-day CA renewal rule.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/x509v3.h>

#include "certs.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/tap.h"
#include "crypto/k256.h"
#include "keys.h"
#include "ratls/ext.h"

static char tmp[] = "/tmp/kms-keys-test-XXXXXX";

static mode_t mode_of(const char *dir, const char *f)
{
	char p[512];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, f);
	return stat(p, &st) == 0 ? st.st_mode & 0777 : 0;
}

static void test_generate_store_load(void)
{
	char dir[256];
	struct kms_keys k, l;
	struct err e = ERR_INIT;
	uint8_t *raw = NULL;
	size_t len = 0;
	char p[512];

	snprintf(dir, sizeof(dir), "%s/a", tmp);
	if (!ok(kms_keys_generate(&k, "kms.example.com", &e) == 0, "generate"))
		diag("%s", err_str(&e));
	ok(!kms_keys_exist(dir), "no keys before store");
	ok(kms_keys_store(dir, &k, "{\"x\":1}", &e) == 0, "store");
	ok(kms_keys_exist(dir), "keys exist after store");
	ok(kms_keys_any_root(dir), "root files present");
	is_int(mode_of(dir, "root-ca.key"), 0600, "root-ca.key is 0600");
	is_int(mode_of(dir, "root-k256.key"), 0600, "root-k256.key is 0600");
	is_int(mode_of(dir, "tmp-ca.key"), 0600, "tmp-ca.key is 0600");
	is_int(mode_of(dir, "rpc.key"), 0600, "rpc.key is 0600");
	snprintf(p, sizeof(p), "%s/root-k256.key", dir);
	file_read_all(p, 100, &raw, &len, &e);
	ok(len == 32 && raw && !memcmp(raw, k.root_k256, 32), "root-k256.key holds the 32 raw bytes");
	free(raw);
	snprintf(p, sizeof(p), "%s/.staging", dir);
	ok(!file_exists(p), "staging folder removed");
	if (!ok(kms_keys_load(dir, &l, &e) == 0, "load"))
		diag("%s", err_str(&e));
	ok(!memcmp(k.root_ca_scalar, l.root_ca_scalar, 32), "root CA key round trip");
	ok(!memcmp(k.k256_pub, l.k256_pub, 33), "k256 round trip");
	is_str(l.domain, "kms.example.com", "rpc-domain round trip");
	{
		X509_NAME *n = X509_get_subject_name(l.root_ca_cert);
		char cn[128];
		X509_NAME_get_text_by_NID(n, NID_commonName, cn, sizeof(cn));
		is_str(cn, "Dstack KMS CA", "root CA subject CN");
		ok(X509_check_ca(l.root_ca_cert) > 0, "root CA is a CA");
		ok(X509_verify(l.rpc_cert, X509_get0_pubkey(l.root_ca_cert)) == 1,
		   "rpc.crt signed by root CA");
		ok(X509_check_host(l.rpc_cert, "kms.example.com", 0, 0, NULL) == 1, "rpc.crt SAN = domain");
		ASN1_OBJECT *o = OBJ_txt2obj(RATLS_OID_USAGE, 1);
		ok(X509_get_ext_by_OBJ(l.rpc_cert, o, -1) >= 0, "rpc.crt has usage ext");
		ASN1_OBJECT_free(o);
	}
	ok(kms_keys_recover(dir, &e) == 0, "recover on a complete set is a no-op");
	kms_keys_free(&k);
	kms_keys_free(&l);

	snprintf(p, sizeof(p), "%s/rpc.key", dir);
	unlink(p);
	ok(kms_keys_recover(dir, &e) < 0 && strstr(err_str(&e), "incomplete key set") &&
	       strstr(err_str(&e), "rpc.key"),
	   "partial set refused: %s", err_str(&e));
}

/* Kill the store at step n; then recover must give none or all. */
static void test_crash(void)
{
	int complete = 0, empty = 0;

	for (int n = 1; n <= 20; n++) {
		char dir[256], env[32];
		pid_t pid;
		int status;
		struct err e = ERR_INIT;
		uint8_t want_k256[32] = {0};

		snprintf(dir, sizeof(dir), "%s/crash%d", tmp, n);
		snprintf(env, sizeof(env), "%d", n);
		{
			struct kms_keys k;
			if (kms_keys_generate(&k, "crash.test", &e) < 0)
				break;
			memcpy(want_k256, k.root_k256, 32);
			pid = fork();
			if (pid == 0) {
				setenv("DSTACK_KMS_CRASH_AT", env, 1);
				kms_keys_store(dir, &k, "{}", &e);
				_exit(0);
			}
			kms_keys_free(&k);
		}
		waitpid(pid, &status, 0);
		bool killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
		if (!killed) {
			ok(kms_keys_exist(dir), "step %d: store ran to completion", n);
			break;
		}
		if (!ok(kms_keys_recover(dir, &e) == 0, "crash at step %d: recover succeeds", n))
			diag("%s", err_str(&e));
		if (kms_keys_exist(dir)) {
			struct kms_keys l;
			ok(kms_keys_load(dir, &l, &e) == 0 && !memcmp(l.root_k256, want_k256, 32),
			   "crash at step %d: rolled forward to the complete set", n);
			kms_keys_free(&l);
			complete++;
		} else {
			ok(!kms_keys_any_root(dir), "crash at step %d: rolled back to no keys", n);
			empty++;
		}
	}
	ok(complete > 0 && empty > 0, "crashes covered both roll-back (%d) and roll-forward (%d)", empty,
	   complete);
}

static void test_renewal(void)
{
	char dir[256], p[512];
	struct kms_keys k;
	struct err e = ERR_INIT;
	_cleanup_free_ char *before_root = NULL, *before_tmp = NULL;

	snprintf(dir, sizeof(dir), "%s/renew", tmp);
	kms_keys_generate(&k, "renew.test", &e);
	/* Root CA expiring in 100 days; temp CA good for 10 years. */
	X509_time_adj_ex(X509_getm_notAfter(k.root_ca_cert), 100, 0, NULL);
	X509_sign(k.root_ca_cert, k.root_ca_key, EVP_sha256());
	kms_keys_refresh_pem(&k, &e);
	kms_keys_store(dir, &k, NULL, &e);
	kms_keys_free(&k);
	kms_keys_load(dir, &k, &e);
	before_root = strdup(k.root_ca_cert_pem);
	before_tmp = strdup(k.tmp_ca_cert_pem);
	ok(kms_cert_seconds_left(k.root_ca_cert) < 101 * 86400, "root CA expires soon");
	ok(kms_keys_update_certs(dir, &k, (const uint8_t *)"att", 3, &e) == 0, "update certs");
	ok(strcmp(before_root, k.root_ca_cert_pem) != 0, "expiring root CA re-minted");
	ok(kms_cert_seconds_left(k.root_ca_cert) > 3000LL * 86400, "new root CA valid ~10 years");
	is_str(k.tmp_ca_cert_pem, before_tmp, "temp CA valid > 365 days kept");
	{
		ASN1_OBJECT *o = OBJ_txt2obj(RATLS_OID_ATTESTATION, 1);
		ok(X509_get_ext_by_OBJ(k.rpc_cert, o, -1) >= 0, "reissued rpc.crt carries the attestation");
		ASN1_OBJECT_free(o);
	}
	kms_keys_free(&k);
	kms_keys_load(dir, &k, &e);
	ok(strcmp(before_root, k.root_ca_cert_pem) != 0, "re-minted root CA persisted");
	kms_keys_free(&k);
	snprintf(p, sizeof(p), "%s/bootstrap-info.json", dir);
	ok(!file_exists(p), "no bootstrap-info.json when not given");
}

int main(void)
{
	if (!mkdtemp(tmp))
		return 1;
	test_generate_store_load();
	test_crash();
	test_renewal();
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
		if (system(cmd) != 0)
			diag("cleanup failed");
	}
	return tap_done();
}
