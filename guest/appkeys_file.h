/*
 * appkeys_file.h — the guest's `.appkeys.json` (guest.md §2.1): the key
 * material dstack-util setup obtains at boot (from the KMS or a local seed)
 * and the guest agent serves from. Shared by both programs so the file has
 * one reader and one writer.
 *
 *   {disk_crypt_key, env_crypt_key, k256_key, k256_signature (hex),
 *    gateway_app_id, ca_cert (PEM),
 *    key_provider: {"None":{key}} | {"Local":{key,mr}} | {"Tpm":{key,pubkey}}
 *                  | {"Kms":{url,pubkey,tmp_ca_key,tmp_ca_cert}}}
 *
 * Secrets are zeroed by app_keys_free.
 */
#ifndef DSTACK_GUEST_APPKEYS_FILE_H
#define DSTACK_GUEST_APPKEYS_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

enum app_key_provider { AKP_NONE, AKP_LOCAL, AKP_TPM, AKP_KMS };

struct app_keys {
	uint8_t disk_crypt_key[32];
	bool has_env_crypt_key;
	uint8_t env_crypt_key[32];
	uint8_t k256_key[32];
	uint8_t k256_signature[65];
	bool has_k256_signature;
	char *gateway_app_id;
	char *ca_cert; /* PEM: the app CA (KMS provider: the KMS root CA from GetAppKey) */
	enum app_key_provider provider;
	char *provider_key;  /* None/Local/Tpm: PEM private key of the app CA */
	char *local_mr;      /* Local: hex MRENCLAVE */
	char *tpm_pubkey;    /* Tpm: hex */
	char *kms_url;       /* Kms */
	uint8_t *kms_pubkey; /* Kms: root CA SPKI DER (the key_provider_id) */
	size_t kms_pubkey_len;
	char *tmp_ca_key, *tmp_ca_cert; /* Kms: PEM */
};

void app_keys_free(struct app_keys *k);
int app_keys_parse(const char *text, size_t len, struct app_keys *out, struct err *e);
int app_keys_load(const char *path, struct app_keys *out, struct err *e);
/* Serialise (pretty JSON, the reference's field order). */
int app_keys_render(const struct app_keys *k, struct buf *out, struct err *e);
/* "none" | "local-sgx" | "tpm" | "kms": the key-provider event name. */
const char *app_key_provider_event_name(enum app_key_provider p);
/* key_provider_id bytes: KMS root-CA SPKI DER, Local MRENCLAVE, else empty.
 * *id is malloc'd (may be NULL with *len 0). */
int app_keys_provider_id(const struct app_keys *k, uint8_t **id, size_t *len, struct err *e);

#endif
