/*
 * appkeys.h — per-app key material as the KMS derives it from its root keys
 * (kms.md §3), as a guest derives it from a local seed when no KMS is used
 * (kms.md §9, guest.md §2.2), and the guest agent's GetKey derivation and
 * signature chain. All outputs are bit-exact with the reference.
 */
#ifndef DSTACK_CRYPTO_APPKEYS_H
#define DSTACK_CRYPTO_APPKEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define APP_ID_LEN 20
#define INSTANCE_ID_LEN 20

/* Signature prefixes of the KMS Sign scheme. */
#define KMS_SIGN_PREFIX_ISSUED "dstack-kms-issued"
#define KMS_SIGN_PREFIX_ENV_PUBKEY "dstack-env-encrypt-pubkey"

/* disk = DhSecret(rootCA, [app_id, instance_id, "app-disk-crypt-key"]);
 * instance_id may be empty (shared across instances). */
int kms_disk_crypt_key(const uint8_t root_ca[32], const uint8_t app_id[20], const uint8_t *instance_id,
		       size_t instance_id_len, uint8_t out[32], struct err *e);
/* env = DhSecret(rootCA, [app_id, "env-encrypt-key"]) (raw, unclamped). */
int kms_env_crypt_key(const uint8_t root_ca[32], const uint8_t app_id[20], uint8_t out[32], struct err *e);
/* App CA P-256 scalar = P256Derive(rootCA, [app_id, "app-ca"]). */
int kms_app_ca_key(const uint8_t root_ca[32], const uint8_t app_id[20], uint8_t out[32], struct err *e);
/* App secp256k1 key = HKDF_RATLS(rootK, [app_id, "app-key"], 32). */
int kms_app_k256_key(const uint8_t root_k256[32], const uint8_t app_id[20], uint8_t out[32], struct err *e);
/* k256_signature = Sign(rootK, "dstack-kms-issued", app_id, app_pub33). */
int kms_app_k256_signature(const uint8_t root_k256[32], const uint8_t app_id[20], const uint8_t app_pub33[33],
			   uint8_t sig[65], struct err *e);
/* GetAppEnvEncryptPubKey signatures over the X25519 public key: legacy
 * (no timestamp) and v1 (u64 big-endian timestamp before the key). */
int kms_env_pubkey_signatures(const uint8_t root_k256[32], const uint8_t app_id[20],
			      const uint8_t x25519_pub[32], uint64_t timestamp, uint8_t sig[65],
			      uint8_t sig_v1[65], struct err *e);

/* Client side (vmm-cli): recover the signer of a GetAppEnvEncryptPubKey
 * signature. with_timestamp selects signature_v1 (timestamp used) or the
 * legacy signature. Compare the result with GetMeta.k256_pubkey / a
 * whitelist. */
int kms_env_pubkey_recover(const uint8_t app_id[20], const uint8_t x25519_pub[32], bool with_timestamp,
			   uint64_t timestamp, const uint8_t sig[65], uint8_t signer33[33], struct err *e);

/* Everything GetAppKey hands out, plus derived public values. */
struct kms_app_keys {
	uint8_t disk_crypt_key[32];
	uint8_t env_crypt_key[32];
	uint8_t env_crypt_pub[32];
	uint8_t app_ca_key[32];
	bool has_k256;
	uint8_t k256_key[32];
	uint8_t k256_pub[33];
	uint8_t k256_signature[65];
};

/* root_k256 may be NULL (then has_k256 = false). */
int kms_derive_app_keys(const uint8_t root_ca[32], const uint8_t *root_k256, const uint8_t app_id[20],
			const uint8_t *instance_id, size_t instance_id_len, struct kms_app_keys *out,
			struct err *e);

/* Keys a guest derives from a 32-byte local seed (no KMS). */
struct seed_app_keys {
	uint8_t ca_key[32];         /* P-256 scalar from "app-key" */
	uint8_t disk_key[32];       /* P-256 scalar from "app-disk-key" */
	uint8_t disk_crypt_key[32]; /* SHA-256 of disk_key's PKCS#8 */
	uint8_t k256_key[32];       /* from "app-k256-key" */
};

int seed_derive_app_keys(const uint8_t *seed, size_t seed_len, struct seed_app_keys *out, struct err *e);

/* Guest GetKey: key = HKDF_RATLS(app_k256, [path], 32), used as secp256k1
 * scalar or Ed25519 seed. */
int guest_get_key(const uint8_t app_k256[32], const char *path, size_t path_len, uint8_t key[32],
		  struct err *e);

enum getkey_alg { GETKEY_SECP256K1, GETKEY_ED25519 };

/* Parse the GetKey algorithm names: "", secp256k1, k256 -> SECP256K1;
 * ed25519 -> ED25519. Others (incl. secp256k1_prehashed) are -1. */
int getkey_alg_parse(const char *name, enum getkey_alg *out);

/* Public key of a derived GetKey key: 33 B compressed (secp256k1) or 32 B
 * (Ed25519). *pub_len set accordingly; pub must hold 33 bytes. */
int getkey_public(enum getkey_alg alg, const uint8_t key[32], uint8_t pub[33], size_t *pub_len,
		  struct err *e);

/* sig0 of the chain: app k256 signs keccak256(purpose ‖ ":" ‖ hex(pub)). */
int getkey_signature(const uint8_t app_k256[32], const char *purpose, const uint8_t *pub, size_t pub_len,
		     uint8_t sig[65], struct err *e);

/* Walk a GetKey chain: recover the app key from sig0 and the KMS key from
 * sig1 (= k256_signature). Either out pointer may be NULL. */
int getkey_chain_recover(const char *purpose, const uint8_t *pub, size_t pub_len, const uint8_t sig0[65],
			 const uint8_t app_id[20], const uint8_t sig1[65], uint8_t app_pub33[33],
			 uint8_t kms_pub33[33], struct err *e);

#endif
