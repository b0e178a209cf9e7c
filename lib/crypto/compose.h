/*
 * compose.h — app identity derived from app-compose.json (guest.md §3.1,
 * §3.2, §3.5; vmm.md §5.4, §12): compose hash, default app id, instance id,
 * MR_CONFIG_ID v1/v2/v3, launch-token hash, and the optional client-side
 * normalisation that SDKs apply before hashing.
 */
#ifndef DSTACK_CRYPTO_COMPOSE_H
#define DSTACK_CRYPTO_COMPOSE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define MR_CONFIG_ID_LEN 48

/* SHA-256 of the raw bytes, exactly as stored (the guest never normalises). */
void compose_hash(const void *raw, size_t len, uint8_t out[32]);
/* Default app id: the first 20 bytes of the compose hash. */
void compose_default_app_id(const uint8_t hash[32], uint8_t app_id[20]);
/* instance_id = SHA-256(seed ‖ app_id [‖ extra])[0..20]; extra (the TPM key
 * digest on GCP/AWS) may be NULL/0. */
void compose_instance_id(const uint8_t *seed, size_t seed_len, const uint8_t app_id[20], const uint8_t *extra,
			 size_t extra_len, uint8_t out[20]);

enum compose_norm_flags {
	/* Drop fields the runner ignores: docker_compose_file for runner
	 * "bash", bash_script for compose runners, an empty pre_launch_script. */
	COMPOSE_NORM_DROP_UNUSED = 1 << 0,
};

/*
 * Client-side normalisation (docs/normalized-app-compose.md, JS SDK
 * getComposeHash): recursively sorted keys, compact, raw UTF-8, numbers
 * formatted as JavaScript does, NaN/Infinity as null. Output is appended to
 * out (not NUL-counted). Input must be a JSON object.
 */
int compose_normalize(const void *raw, size_t len, unsigned flags, struct buf *out, struct err *e);

/* Key-provider kinds as encoded in MR_CONFIG_ID v2. */
enum key_provider_kind { KP_NONE = 0, KP_LOCAL = 1, KP_KMS = 2, KP_TPM = 3 };
int key_provider_kind_parse(const char *name, enum key_provider_kind *out);

/* 0x01 ‖ compose_hash ‖ zero padding. */
void mr_config_id_v1(const uint8_t compose_hash[32], uint8_t out[MR_CONFIG_ID_LEN]);
/* 0x02 ‖ keccak256(compose_hash ‖ app_id ‖ kp_byte ‖ kp_id) ‖ padding. */
void mr_config_id_v2(const uint8_t compose_hash[32], const uint8_t app_id[20], enum key_provider_kind kp,
		     const uint8_t *kp_id, size_t kp_id_len, uint8_t out[MR_CONFIG_ID_LEN]);
/* 0x03 ‖ SHA-256("dstack-mr-config-v3:" ‖ 0x00 ‖ document) ‖ padding; the
 * document is the already-canonical (JCS) MrConfigV3 string. */
void mr_config_id_v3(const char *document, size_t len, uint8_t out[MR_CONFIG_ID_LEN]);

/* requirements.launch_token_hash = SHA-256("dstack-launch-token/v1:" ‖ token). */
void launch_token_hash(const void *token, size_t len, uint8_t out[32]);

#endif
