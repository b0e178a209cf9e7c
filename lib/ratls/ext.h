/*
 * ext.h — the RA-TLS certificate extensions (kms.md §4) under the arc
 * 1.3.6.1.4.1.62397.1:
 *
 *   .1  legacy raw TDX quote           .2  legacy event log JSON (or ELGZv1+gzip)
 *   .3  app_id (20 raw bytes)          .4  usage: "kms:rpc" | "app:ca" | "app:custom"
 *   .8  VersionedAttestation (stripped, preferred over .1+.2)
 *   .9  AppInfo (MessagePack, attest/appinfo.h)
 *
 * All are non-critical. The extnValue content is itself a DER OCTET STRING
 * wrapping the raw bytes (so the raw bytes sit in two nested OCTET STRINGs),
 * which is what the reference emits; readers require exactly that form.
 *
 * The report-data binding of a certificate key is
 * SHA-512("ratls-cert:" ‖ SubjectPublicKeyInfo DER) (ratls_cert_report_data).
 */
#ifndef DSTACK_RATLS_EXT_H
#define DSTACK_RATLS_EXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/buf.h"
#include "core/err.h"

#define RATLS_OID_QUOTE "1.3.6.1.4.1.62397.1.1"
#define RATLS_OID_EVENT_LOG "1.3.6.1.4.1.62397.1.2"
#define RATLS_OID_APP_ID "1.3.6.1.4.1.62397.1.3"
#define RATLS_OID_USAGE "1.3.6.1.4.1.62397.1.4"
#define RATLS_OID_ATTESTATION "1.3.6.1.4.1.62397.1.8"
#define RATLS_OID_APP_INFO "1.3.6.1.4.1.62397.1.9"

#define RATLS_USAGE_KMS_RPC "kms:rpc"
#define RATLS_USAGE_APP_CA "app:ca"
#define RATLS_USAGE_APP_CUSTOM "app:custom"

/* Compressed event-log form: "ELGZv1" ‖ gzip(JSON); at most 16 KiB once inflated. */
#define RATLS_ELGZ_MAGIC "ELGZv1"
#define RATLS_ELGZ_MAX (16 * 1024)
/* Largest extension payload accepted when reading a certificate. */
#define RATLS_EXT_MAX (10 * 1024 * 1024)

/* Add a non-critical extension `oid` (dotted text) carrying `data`. */
int ratls_ext_add(X509 *cert, const char *oid, const void *data, size_t len, struct err *e);
/* Read extension `oid`: 1 and a malloc'd copy (*out, non-NULL) when present,
 * 0 when absent, -1 when present but malformed. */
int ratls_ext_get(X509 *cert, const char *oid, uint8_t **out, size_t *len, struct err *e);

/* Every RA-TLS extension of a certificate (absent ones NULL / 0). */
struct ratls_ext {
	uint8_t *quote;
	size_t quote_len;
	char *event_log; /* JSON text, inflated if it was ELGZv1 */
	size_t event_log_len;
	uint8_t *app_id;
	size_t app_id_len;
	char *usage; /* NUL-terminated */
	uint8_t *attestation;
	size_t attestation_len;
	uint8_t *app_info;
	size_t app_info_len;
};

int ratls_ext_read(X509 *cert, struct ratls_ext *out, struct err *e);
void ratls_ext_free(struct ratls_ext *x);

/* Event-log extension bytes → JSON text: plain JSON passes through, the
 * ELGZv1 form is inflated (limit RATLS_ELGZ_MAX). */
int ratls_event_log_decode(const uint8_t *raw, size_t len, struct buf *json, struct err *e);
/* JSON → "ELGZv1" ‖ gzip(JSON); fails if the JSON exceeds RATLS_ELGZ_MAX. */
int ratls_event_log_compress(const char *json, size_t len, struct buf *out, struct err *e);

/* report_data binding a key: SHA-512("ratls-cert:" ‖ SPKI DER). */
int ratls_key_report_data(EVP_PKEY *key, uint8_t out[64], struct err *e);
int ratls_spki_report_data(const uint8_t *spki, size_t len, uint8_t out[64]);

#endif
