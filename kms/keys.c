/*
 * keys.c — generating, storing, loading and refreshing the KMS key set
 * (see keys.h for the file layout and the crash-safety protocol).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "certs.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/log.h"
#include "core/mem.h"
#include "crypto/k256.h"
#include "crypto/kdf.h"
#include "keys.h"
#include "ratls/cert.h"

#define STAGING ".staging"
#define COMPLETE "COMPLETE"
#define RENEW_WITHIN_S (365 * 86400LL)

static const char *const key_files[] = {"root-ca.key", "root-ca.crt", "root-k256.key", "tmp-ca.key",
					"tmp-ca.crt",  "rpc.key",     "rpc.crt"};
/* Everything a store may write, in the order it is moved into place:
 * bootstrap-info.json first (its presence alone already blocks a second
 * bootstrap), the root keys last of the secrets. */
static const char *const store_order[] = {"bootstrap-info.json", "rpc-domain",  "tmp-ca.key",
					  "tmp-ca.crt",          "rpc.key",     "rpc.crt",
					  "root-ca.crt",         "root-ca.key", "root-k256.key"};

static int crash_step; /* test hook only: steps since the last store began */

void kms_crash_point(void)
{
	int step;
	const char *at = getenv("DSTACK_KMS_CRASH_AT");

	step = ++crash_step;
	if (at && atoi(at) == step) {
		log_warn("DSTACK_KMS_CRASH_AT=%d: killing myself", step);
		raise(SIGKILL);
	}
}

static void path_in(char *out, size_t n, const char *dir, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

bool kms_keys_exist(const char *cert_dir)
{
	char p[4096];

	for (size_t i = 0; i < ARRAY_SIZE(key_files); i++) {
		path_in(p, sizeof(p), cert_dir, key_files[i]);
		if (!file_exists(p))
			return false;
	}
	return true;
}

bool kms_keys_any_root(const char *cert_dir)
{
	static const char *const roots[] = {"bootstrap-info.json", "root-ca.key", "root-k256.key"};
	char p[4096];

	for (size_t i = 0; i < ARRAY_SIZE(roots); i++) {
		path_in(p, sizeof(p), cert_dir, roots[i]);
		if (file_exists(p))
			return true;
	}
	return false;
}

static int fsync_dir(const char *dir, struct err *e)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0)
		return err_errno(e, "fsync %s", dir);
	return 0;
}

static void remove_staging(const char *staging)
{
	char p[4096];

	for (size_t i = 0; i < ARRAY_SIZE(store_order); i++) {
		path_in(p, sizeof(p), staging, store_order[i]);
		unlink(p);
	}
	path_in(p, sizeof(p), staging, COMPLETE);
	unlink(p);
	/* Temp files of an interrupted atomic write. */
	DIR *d = opendir(staging);
	if (d) {
		struct dirent *de;

		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			path_in(p, sizeof(p), staging, de->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(staging);
}

/* Move staged files into cert_dir; a file already moved is skipped. */
static int roll_forward(const char *cert_dir, const char *staging, struct err *e)
{
	char from[4096], to[4096];

	for (size_t i = 0; i < ARRAY_SIZE(store_order); i++) {
		path_in(from, sizeof(from), staging, store_order[i]);
		path_in(to, sizeof(to), cert_dir, store_order[i]);
		if (!file_exists(from))
			continue;
		if (rename(from, to) < 0)
			return err_errno(e, "rename %s", from);
		kms_crash_point();
	}
	if (fsync_dir(cert_dir, e) < 0)
		return -1;
	remove_staging(staging);
	return fsync_dir(cert_dir, e);
}

int kms_keys_recover(const char *cert_dir, struct err *e)
{
	char staging[4096], marker[4096], p[4096], missing[512] = "";
	size_t present = 0;
	struct stat st;

	path_in(staging, sizeof(staging), cert_dir, STAGING);
	if (stat(staging, &st) == 0) {
		path_in(marker, sizeof(marker), staging, COMPLETE);
		if (file_exists(marker)) {
			log_warn("completing an interrupted key store in %s", cert_dir);
			if (roll_forward(cert_dir, staging, e) < 0)
				return err_wrap(e, "complete interrupted key store");
		} else {
			log_warn("discarding an incomplete key store in %s (no keys were installed)",
				 staging);
			remove_staging(staging);
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(key_files); i++) {
		path_in(p, sizeof(p), cert_dir, key_files[i]);
		if (file_exists(p)) {
			present++;
		} else {
			if (missing[0])
				strncat(missing, ", ", sizeof(missing) - strlen(missing) - 1);
			strncat(missing, key_files[i], sizeof(missing) - strlen(missing) - 1);
		}
	}
	if (present && present < ARRAY_SIZE(key_files))
		return err_set(e,
			       "%s holds an incomplete key set (missing: %s); refusing to start. Restore the "
			       "directory from a backup, or move it away to bootstrap a new KMS",
			       cert_dir, missing);
	return 0;
}

int kms_keys_refresh_pem(struct kms_keys *k, struct err *e)
{
	free(k->root_ca_cert_pem);
	free(k->tmp_ca_cert_pem);
	if (k->root_ca_key_pem)
		secure_zero(k->root_ca_key_pem, strlen(k->root_ca_key_pem));
	free(k->root_ca_key_pem);
	if (k->tmp_ca_key_pem)
		secure_zero(k->tmp_ca_key_pem, strlen(k->tmp_ca_key_pem));
	free(k->tmp_ca_key_pem);
	k->root_ca_cert_pem = kms_cert_pem(k->root_ca_cert);
	k->tmp_ca_cert_pem = kms_cert_pem(k->tmp_ca_cert);
	k->root_ca_key_pem = kms_key_pem(k->root_ca_key);
	k->tmp_ca_key_pem = kms_key_pem(k->tmp_ca_key);
	if (!k->root_ca_cert_pem || !k->tmp_ca_cert_pem || !k->root_ca_key_pem || !k->tmp_ca_key_pem)
		return err_ssl(e, "encode PEM");
	if (p256_pkey_scalar(k->root_ca_key, k->root_ca_scalar, e) < 0)
		return err_wrap(e, "root CA key");
	if (k256_pubkey(k->root_k256, true, k->k256_pub, e) < 0)
		return err_wrap(e, "root k256 key");
	return 0;
}

static X509 *mint_root_ca(EVP_PKEY *key, struct err *e)
{
	return ratls_cert_root_ca(key, e);
}

static X509 *mint_tmp_ca(EVP_PKEY *key, struct err *e)
{
	return ratls_cert_temp_ca(key, e);
}

int kms_keys_issue_rpc_cert(struct kms_keys *k, const uint8_t *attestation, size_t attestation_len,
			    struct err *e)
{
	X509 *x = ratls_cert_kms_rpc(k->rpc_key, k->domain, attestation, attestation_len, k->root_ca_cert,
				     k->root_ca_key, e);

	if (!x)
		return err_wrap(e, "issue RPC certificate");
	X509_free(k->rpc_cert);
	k->rpc_cert = x;
	return 0;
}

static int random_k256(uint8_t out[32], struct err *e)
{
	for (int i = 0; i < 16; i++) {
		if (RAND_priv_bytes(out, 32) != 1)
			return err_ssl(e, "random k256 key");
		if (k256_seckey_valid(out))
			return 0;
	}
	return err_set(e, "could not draw a valid k256 key");
}

int kms_keys_generate(struct kms_keys *k, const char *domain, struct err *e)
{
	memset(k, 0, sizeof(*k));
	k->domain = strdup(domain);
	if (!k->domain || !(k->root_ca_key = ratls_key_generate(e)) ||
	    !(k->tmp_ca_key = ratls_key_generate(e)) || !(k->rpc_key = ratls_key_generate(e)) ||
	    random_k256(k->root_k256, e) < 0 || !(k->root_ca_cert = mint_root_ca(k->root_ca_key, e)) ||
	    !(k->tmp_ca_cert = mint_tmp_ca(k->tmp_ca_key, e)) || kms_keys_issue_rpc_cert(k, NULL, 0, e) < 0 ||
	    kms_keys_refresh_pem(k, e) < 0) {
		kms_keys_free(k);
		return err_wrap(e, "generate keys");
	}
	return 0;
}

int kms_keys_from_source(struct kms_keys *k, const char *root_ca_key_pem, const uint8_t k256[32],
			 const char *tmp_ca_key_pem, const char *domain, struct err *e)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->root_k256, k256, 32);
	k->domain = strdup(domain);
	if (!k->domain || !(k->root_ca_key = kms_key_from_pem(root_ca_key_pem, strlen(root_ca_key_pem), e)) ||
	    !(k->tmp_ca_key = kms_key_from_pem(tmp_ca_key_pem, strlen(tmp_ca_key_pem), e)) ||
	    !k256_seckey_valid(k->root_k256) || !(k->rpc_key = ratls_key_generate(e)) ||
	    !(k->root_ca_cert = mint_root_ca(k->root_ca_key, e)) ||
	    !(k->tmp_ca_cert = mint_tmp_ca(k->tmp_ca_key, e)) || kms_keys_issue_rpc_cert(k, NULL, 0, e) < 0 ||
	    kms_keys_refresh_pem(k, e) < 0) {
		if (!k256_seckey_valid(k->root_k256))
			err_set(e, "invalid k256 key");
		kms_keys_free(k);
		return err_wrap(e, "keys from source KMS");
	}
	return 0;
}

struct staged {
	const char *name;
	const void *data;
	size_t len;
	mode_t mode;
};

int kms_keys_store(const char *cert_dir, const struct kms_keys *k, const char *bootstrap_info_json,
		   struct err *e)
{
	char staging[4096], p[4096];
	_cleanup_free_ char *rpc_key_pem = kms_key_pem(k->rpc_key);
	_cleanup_free_ char *rpc_crt_pem = kms_cert_pem(k->rpc_cert);
	struct staged files[] = {
	    {"bootstrap-info.json", bootstrap_info_json,
	     bootstrap_info_json ? strlen(bootstrap_info_json) : 0, 0644},
	    {"rpc-domain", k->domain, strlen(k->domain), 0644},
	    {"tmp-ca.key", k->tmp_ca_key_pem, strlen(k->tmp_ca_key_pem), 0600},
	    {"tmp-ca.crt", k->tmp_ca_cert_pem, strlen(k->tmp_ca_cert_pem), 0644},
	    {"rpc.key", rpc_key_pem, rpc_key_pem ? strlen(rpc_key_pem) : 0, 0600},
	    {"rpc.crt", rpc_crt_pem, rpc_crt_pem ? strlen(rpc_crt_pem) : 0, 0644},
	    {"root-ca.crt", k->root_ca_cert_pem, strlen(k->root_ca_cert_pem), 0644},
	    {"root-ca.key", k->root_ca_key_pem, strlen(k->root_ca_key_pem), 0600},
	    {"root-k256.key", k->root_k256, 32, 0600},
	};
	int rc = -1;

	crash_step = 0;
	if (!rpc_key_pem || !rpc_crt_pem)
		return err_ssl(e, "encode RPC key");
	if (mkdir_p(cert_dir, 0700, e) < 0)
		return -1;
	path_in(staging, sizeof(staging), cert_dir, STAGING);
	remove_staging(staging);
	if (mkdir(staging, 0700) < 0) {
		err_errno(e, "mkdir %s", staging);
		goto out;
	}
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		if (!files[i].data)
			continue;
		path_in(p, sizeof(p), staging, files[i].name);
		if (file_write_atomic(p, files[i].data, files[i].len, files[i].mode, e) < 0)
			goto out;
		kms_crash_point();
	}
	path_in(p, sizeof(p), staging, COMPLETE);
	if (file_write_atomic(p, "", 0, 0600, e) < 0 || fsync_dir(cert_dir, e) < 0)
		goto out;
	kms_crash_point();
	rc = roll_forward(cert_dir, staging, e);
out:
	if (rpc_key_pem)
		secure_zero(rpc_key_pem, strlen(rpc_key_pem));
	if (rc < 0) {
		path_in(p, sizeof(p), staging, COMPLETE);
		if (!file_exists(p))
			remove_staging(staging);
		return err_wrap(e, "store keys in %s", cert_dir);
	}
	return 0;
}

static int load_pem_file(const char *dir, const char *name, bool key, void **out, struct err *e)
{
	char p[4096];
	_cleanup_free_ uint8_t *data = NULL;
	size_t len = 0;

	path_in(p, sizeof(p), dir, name);
	if (file_read_all(p, 1 << 20, &data, &len, e) < 0)
		return -1;
	*out = key ? (void *)kms_key_from_pem((char *)data, len, e)
		   : (void *)kms_cert_from_pem((char *)data, len, e);
	if (key)
		secure_zero(data, len);
	if (!*out)
		return err_wrap(e, "%s", p);
	return 0;
}

int kms_keys_load(const char *cert_dir, struct kms_keys *k, struct err *e)
{
	char p[4096];
	_cleanup_free_ uint8_t *raw = NULL, *dom = NULL;
	size_t len = 0, dlen = 0;

	memset(k, 0, sizeof(*k));
	path_in(p, sizeof(p), cert_dir, "root-k256.key");
	if (file_read_all(p, 64, &raw, &len, e) < 0)
		goto fail;
	if (len != 32 || !k256_seckey_valid(raw)) {
		secure_zero(raw, len);
		err_set(e, "%s: expected a 32-byte secp256k1 key", p);
		goto fail;
	}
	memcpy(k->root_k256, raw, 32);
	secure_zero(raw, len);
	path_in(p, sizeof(p), cert_dir, "rpc-domain");
	if (file_exists(p)) {
		if (file_read_all(p, 1024, &dom, &dlen, e) < 0)
			goto fail;
		while (dlen && strchr(" \t\r\n", dom[dlen - 1]))
			dom[--dlen] = 0;
		char *s = (char *)dom;
		while (*s && strchr(" \t\r\n", *s))
			s++;
		k->domain = strdup(s);
	} else {
		k->domain = strdup("localhost");
	}
	if (load_pem_file(cert_dir, "root-ca.key", true, (void **)&k->root_ca_key, e) < 0 ||
	    load_pem_file(cert_dir, "root-ca.crt", false, (void **)&k->root_ca_cert, e) < 0 ||
	    load_pem_file(cert_dir, "tmp-ca.key", true, (void **)&k->tmp_ca_key, e) < 0 ||
	    load_pem_file(cert_dir, "tmp-ca.crt", false, (void **)&k->tmp_ca_cert, e) < 0 ||
	    load_pem_file(cert_dir, "rpc.key", true, (void **)&k->rpc_key, e) < 0 ||
	    load_pem_file(cert_dir, "rpc.crt", false, (void **)&k->rpc_cert, e) < 0 ||
	    kms_keys_refresh_pem(k, e) < 0)
		goto fail;
	return 0;
fail:
	kms_keys_free(k);
	return err_wrap(e, "load keys");
}

static int write_cert(const char *dir, const char *name, X509 *x, struct err *e)
{
	char p[4096];
	_cleanup_free_ char *pem = kms_cert_pem(x);

	if (!pem)
		return err_ssl(e, "encode %s", name);
	path_in(p, sizeof(p), dir, name);
	return file_write_atomic(p, pem, strlen(pem), 0644, e);
}

int kms_keys_update_certs(const char *cert_dir, struct kms_keys *k, const uint8_t *attestation,
			  size_t attestation_len, struct err *e)
{
	if (kms_cert_seconds_left(k->root_ca_cert) < RENEW_WITHIN_S) {
		X509 *x = mint_root_ca(k->root_ca_key, e);

		if (!x)
			return err_wrap(e, "renew root CA certificate");
		X509_free(k->root_ca_cert);
		k->root_ca_cert = x;
		if (write_cert(cert_dir, "root-ca.crt", x, e) < 0)
			return -1;
		log_info("renewed root-ca.crt (expired or expiring within 365 days)");
	}
	if (kms_cert_seconds_left(k->tmp_ca_cert) < RENEW_WITHIN_S) {
		X509 *x = mint_tmp_ca(k->tmp_ca_key, e);

		if (!x)
			return err_wrap(e, "renew temp CA certificate");
		X509_free(k->tmp_ca_cert);
		k->tmp_ca_cert = x;
		if (write_cert(cert_dir, "tmp-ca.crt", x, e) < 0)
			return -1;
		log_info("renewed tmp-ca.crt (expired or expiring within 365 days)");
	}
	if (kms_keys_issue_rpc_cert(k, attestation, attestation_len, e) < 0 ||
	    write_cert(cert_dir, "rpc.crt", k->rpc_cert, e) < 0)
		return -1;
	return kms_keys_refresh_pem(k, e);
}

void kms_keys_free(struct kms_keys *k)
{
	EVP_PKEY_free(k->root_ca_key);
	EVP_PKEY_free(k->tmp_ca_key);
	EVP_PKEY_free(k->rpc_key);
	X509_free(k->root_ca_cert);
	X509_free(k->tmp_ca_cert);
	X509_free(k->rpc_cert);
	free(k->root_ca_cert_pem);
	free(k->tmp_ca_cert_pem);
	if (k->root_ca_key_pem)
		secure_zero(k->root_ca_key_pem, strlen(k->root_ca_key_pem));
	if (k->tmp_ca_key_pem)
		secure_zero(k->tmp_ca_key_pem, strlen(k->tmp_ca_key_pem));
	free(k->root_ca_key_pem);
	free(k->tmp_ca_key_pem);
	free(k->domain);
	secure_zero(k, sizeof(*k));
}
