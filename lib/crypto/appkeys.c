/*
 * appkeys.c — the derivation recipes of kms.md §3/§9 and guest.md §2.2 on
 * top of kdf.c and k256.c. Each recipe is a fixed list of context parts;
 * intermediate secrets are wiped before returning.
 */
#include <string.h>

#include "core/hex.h"
#include "core/mem.h"
#include "crypto/appkeys.h"
#include "crypto/ecx.h"
#include "crypto/k256.h"
#include "crypto/kdf.h"

int kms_disk_crypt_key(const uint8_t root_ca[32], const uint8_t app_id[20], const uint8_t *instance_id,
		       size_t instance_id_len, uint8_t out[32], struct err *e)
{
	struct span parts[] = {SPAN(app_id, APP_ID_LEN), SPAN(instance_id, instance_id_len),
			       SPAN_STR("app-disk-crypt-key")};

	if (dh_secret(root_ca, parts, 3, out, e) < 0)
		return err_wrap(e, "disk key");
	return 0;
}

int kms_env_crypt_key(const uint8_t root_ca[32], const uint8_t app_id[20], uint8_t out[32], struct err *e)
{
	struct span parts[] = {SPAN(app_id, APP_ID_LEN), SPAN_STR("env-encrypt-key")};

	if (dh_secret(root_ca, parts, 2, out, e) < 0)
		return err_wrap(e, "env key");
	return 0;
}

int kms_app_ca_key(const uint8_t root_ca[32], const uint8_t app_id[20], uint8_t out[32], struct err *e)
{
	struct span parts[] = {SPAN(app_id, APP_ID_LEN), SPAN_STR("app-ca")};

	if (p256_derive(root_ca, parts, 2, out, e) < 0)
		return err_wrap(e, "app CA key");
	return 0;
}

int kms_app_k256_key(const uint8_t root_k256[32], const uint8_t app_id[20], uint8_t out[32], struct err *e)
{
	struct span parts[] = {SPAN(app_id, APP_ID_LEN), SPAN_STR("app-key")};

	if (hkdf_ratls(root_k256, 32, parts, 2, out, 32, e) < 0)
		return err_wrap(e, "app k256 key");
	if (!k256_seckey_valid(out)) {
		secure_zero(out, 32);
		return err_set(e, "app k256 key: derived scalar out of range");
	}
	return 0;
}

int kms_app_k256_signature(const uint8_t root_k256[32], const uint8_t app_id[20], const uint8_t app_pub33[33],
			   uint8_t sig[65], struct err *e)
{
	struct span msg = SPAN(app_pub33, 33);

	return kms_sign(root_k256, KMS_SIGN_PREFIX_ISSUED, app_id, APP_ID_LEN, &msg, 1, sig, e);
}

int kms_env_pubkey_signatures(const uint8_t root_k256[32], const uint8_t app_id[20],
			      const uint8_t x25519_pub[32], uint64_t timestamp, uint8_t sig[65],
			      uint8_t sig_v1[65], struct err *e)
{
	uint8_t ts[8];
	struct span legacy = SPAN(x25519_pub, 32);
	struct span v1[] = {SPAN(ts, 8), SPAN(x25519_pub, 32)};

	for (int i = 0; i < 8; i++)
		ts[i] = (uint8_t)(timestamp >> (56 - 8 * i));
	if (kms_sign(root_k256, KMS_SIGN_PREFIX_ENV_PUBKEY, app_id, APP_ID_LEN, &legacy, 1, sig, e) < 0 ||
	    kms_sign(root_k256, KMS_SIGN_PREFIX_ENV_PUBKEY, app_id, APP_ID_LEN, v1, 2, sig_v1, e) < 0)
		return err_wrap(e, "env pubkey signature");
	return 0;
}

int kms_env_pubkey_recover(const uint8_t app_id[20], const uint8_t x25519_pub[32], bool with_timestamp,
			   uint64_t timestamp, const uint8_t sig[65], uint8_t signer33[33], struct err *e)
{
	uint8_t ts[8];
	struct span msg[] = {SPAN(ts, 8), SPAN(x25519_pub, 32)};

	for (int i = 0; i < 8; i++)
		ts[i] = (uint8_t)(timestamp >> (56 - 8 * i));
	if (with_timestamp)
		return kms_sign_recover(KMS_SIGN_PREFIX_ENV_PUBKEY, app_id, APP_ID_LEN, msg, 2, sig, signer33,
					e);
	return kms_sign_recover(KMS_SIGN_PREFIX_ENV_PUBKEY, app_id, APP_ID_LEN, msg + 1, 1, sig, signer33, e);
}

int kms_derive_app_keys(const uint8_t root_ca[32], const uint8_t *root_k256, const uint8_t app_id[20],
			const uint8_t *instance_id, size_t instance_id_len, struct kms_app_keys *out,
			struct err *e)
{
	memset(out, 0, sizeof(*out));
	if (instance_id_len != 0 && instance_id_len != INSTANCE_ID_LEN)
		return err_set(e, "instance_id must be empty or %d bytes", INSTANCE_ID_LEN);
	if (kms_disk_crypt_key(root_ca, app_id, instance_id, instance_id_len, out->disk_crypt_key, e) < 0 ||
	    kms_env_crypt_key(root_ca, app_id, out->env_crypt_key, e) < 0 ||
	    x25519_public(out->env_crypt_key, out->env_crypt_pub, e) < 0 ||
	    kms_app_ca_key(root_ca, app_id, out->app_ca_key, e) < 0)
		goto fail;
	if (root_k256) {
		if (kms_app_k256_key(root_k256, app_id, out->k256_key, e) < 0 ||
		    k256_pubkey(out->k256_key, true, out->k256_pub, e) < 0 ||
		    kms_app_k256_signature(root_k256, app_id, out->k256_pub, out->k256_signature, e) < 0)
			goto fail;
		out->has_k256 = true;
	}
	return 0;
fail:
	secure_zero(out, sizeof(*out));
	return -1;
}

int seed_derive_app_keys(const uint8_t *seed, size_t seed_len, struct seed_app_keys *out, struct err *e)
{
	struct span ca = SPAN_STR("app-key"), disk = SPAN_STR("app-disk-key"),
		    k256 = SPAN_STR("app-k256-key");
	uint8_t der[P256_PKCS8_LEN];

	memset(out, 0, sizeof(*out));
	if (hkdf_ratls(seed, seed_len, &ca, 1, out->ca_key, 32, e) < 0 ||
	    hkdf_ratls(seed, seed_len, &disk, 1, out->disk_key, 32, e) < 0 ||
	    hkdf_ratls(seed, seed_len, &k256, 1, out->k256_key, 32, e) < 0)
		goto fail;
	if (!p256_scalar_valid(out->ca_key) || !p256_scalar_valid(out->disk_key) ||
	    !k256_seckey_valid(out->k256_key)) {
		err_set(e, "derived scalar out of range");
		goto fail;
	}
	if (p256_pkcs8_fixed(out->disk_key, der, e) < 0)
		goto fail;
	sha256(der, sizeof(der), out->disk_crypt_key);
	secure_zero(der, sizeof(der));
	return 0;
fail:
	secure_zero(out, sizeof(*out));
	return err_wrap(e, "app keys from seed");
}

int guest_get_key(const uint8_t app_k256[32], const char *path, size_t path_len, uint8_t key[32],
		  struct err *e)
{
	struct span part = SPAN(path, path_len);

	return hkdf_ratls(app_k256, 32, &part, 1, key, 32, e);
}

int getkey_alg_parse(const char *name, enum getkey_alg *out)
{
	if (!name || !*name || !strcmp(name, "secp256k1") || !strcmp(name, "k256")) {
		*out = GETKEY_SECP256K1;
		return 0;
	}
	if (!strcmp(name, "ed25519")) {
		*out = GETKEY_ED25519;
		return 0;
	}
	return -1;
}

int getkey_public(enum getkey_alg alg, const uint8_t key[32], uint8_t pub[33], size_t *pub_len, struct err *e)
{
	if (alg == GETKEY_ED25519) {
		*pub_len = 32;
		return ed25519_public(key, pub, e);
	}
	*pub_len = 33;
	return k256_pubkey(key, true, pub, e);
}

static void getkey_digest(const char *purpose, const uint8_t *pub, size_t pub_len, uint8_t digest[32])
{
	char pub_hex[2 * 65 + 1];
	struct span parts[3];

	hex_encode(pub, pub_len, pub_hex);
	parts[0] = SPAN_STR(purpose);
	parts[1] = SPAN(":", 1);
	parts[2] = SPAN(pub_hex, 2 * pub_len);
	keccak256_parts(parts, 3, digest);
}

int getkey_signature(const uint8_t app_k256[32], const char *purpose, const uint8_t *pub, size_t pub_len,
		     uint8_t sig[65], struct err *e)
{
	uint8_t digest[32];

	if (pub_len > 65)
		return err_set(e, "public key too long");
	getkey_digest(purpose, pub, pub_len, digest);
	return k256_sign_recoverable(app_k256, digest, sig, e);
}

int getkey_chain_recover(const char *purpose, const uint8_t *pub, size_t pub_len, const uint8_t sig0[65],
			 const uint8_t app_id[20], const uint8_t sig1[65], uint8_t app_pub33[33],
			 uint8_t kms_pub33[33], struct err *e)
{
	uint8_t digest[32], app_pub[33], kms_pub[33];
	struct span msg = SPAN(app_pub, 33);

	if (pub_len > 65)
		return err_set(e, "public key too long");
	getkey_digest(purpose, pub, pub_len, digest);
	if (k256_recover(digest, sig0, app_pub, e) < 0)
		return err_wrap(e, "app signature");
	if (kms_sign_recover(KMS_SIGN_PREFIX_ISSUED, app_id, APP_ID_LEN, &msg, 1, sig1, kms_pub, e) < 0)
		return err_wrap(e, "KMS signature");
	if (app_pub33)
		memcpy(app_pub33, app_pub, 33);
	if (kms_pub33)
		memcpy(kms_pub33, kms_pub, 33);
	return 0;
}
