/*
 * quote.h — Intel DCAP quotes: TDX v4/v5 (TD 1.0 and TD 1.5 bodies) and SGX
 * v3 (enclave report body), all little-endian.
 *
 * The parser copies the input once and exposes every field by name; variable
 * parts (signed region, QE auth data, PEM chain) point into that copy, so a
 * parsed quote is self-contained and freed with quote_free(). Every length is
 * checked against what remains before it is used: a truncated or inconsistent
 * quote is rejected with a message naming the field. Zero bytes after the
 * signature data are accepted (real quotes are padded); anything else is not.
 *
 * Parsing checks structure only. Signatures, certificates and policy are the
 * business of dcap_verify() in verify.h.
 */
#ifndef DSTACK_TDX_QUOTE_H
#define DSTACK_TDX_QUOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define QUOTE_HEADER_LEN 48
#define SGX_REPORT_LEN 384
#define TD10_REPORT_LEN 584
#define TD15_REPORT_LEN 648
#define QUOTE_TEE_SGX 0x00000000u
#define QUOTE_TEE_TDX 0x00000081u
#define QUOTE_ATT_KEY_ECDSA_P256 2
#define QUOTE_CERT_PCK_CHAIN 5
#define QUOTE_CERT_QE_REPORT 6
/* Largest quote accepted (configfs-tsm rejects >= 8 KiB; allow headroom). */
#define QUOTE_MAX_LEN (64 * 1024)

/* Intel's QE vendor id. */
extern const uint8_t QUOTE_INTEL_QE_VENDOR_ID[16];

struct quote_header {
	uint16_t version;      /* 3 (SGX), 4 or 5 (TDX) */
	uint16_t att_key_type; /* 2 = ECDSA P-256 */
	uint32_t tee_type;     /* 0 = SGX, 0x81 = TDX */
	uint16_t qe_svn;
	uint16_t pce_svn;
	uint8_t qe_vendor_id[16];
	uint8_t user_data[20];
};

/* SGX enclave report (the SGX quote body, and the QE report of every quote). */
struct sgx_report {
	uint8_t cpu_svn[16];
	uint32_t misc_select;
	uint8_t attributes[16];
	uint8_t mr_enclave[32];
	uint8_t mr_signer[32];
	uint16_t isv_prod_id;
	uint16_t isv_svn;
	uint8_t report_data[64];
	uint8_t raw[SGX_REPORT_LEN]; /* the exact signed bytes */
};

/* TD report body. tee_tcb_svn2 and mr_service_td are zero for TD 1.0. */
struct td_report {
	uint8_t tee_tcb_svn[16];
	uint8_t mr_seam[48];
	uint8_t mr_signer_seam[48];
	uint8_t seam_attributes[8];
	uint8_t td_attributes[8];
	uint8_t xfam[8];
	uint8_t mr_td[48];
	uint8_t mr_config_id[48];
	uint8_t mr_owner[48];
	uint8_t mr_owner_config[48];
	uint8_t rtmr[4][48];
	uint8_t report_data[64];
	uint8_t tee_tcb_svn2[16];
	uint8_t mr_service_td[48];
};

enum quote_body_kind {
	QUOTE_BODY_SGX, /* SGX v3: enclave report */
	QUOTE_BODY_TD10,
	QUOTE_BODY_TD15,
};

struct quote {
	struct quote_header header;
	enum quote_body_kind kind;
	struct td_report td;       /* valid for TD10/TD15 */
	struct sgx_report enclave; /* valid for SGX */

	/* Region covered by the attestation-key signature: header‖[v5 body desc]‖body. */
	const uint8_t *signed_data;
	size_t signed_len;

	uint8_t signature[64]; /* ECDSA r‖s over signed_data */
	uint8_t att_key[64];   /* attestation public key x‖y */

	struct sgx_report qe_report;
	uint8_t qe_report_signature[64]; /* by the PCK key, over qe_report.raw */
	const uint8_t *qe_auth;
	size_t qe_auth_len;

	/* Certification data type 5: PEM PCK leaf‖intermediate‖root (may end in NUL). */
	const char *pck_chain_pem;
	size_t pck_chain_len;

	uint8_t *raw; /* owned copy of the input */
	size_t raw_len;
};

/* Parse a quote; on success the caller frees with quote_free(). */
int quote_parse(struct quote *q, const void *data, size_t len, struct err *e);
void quote_free(struct quote *q);

static inline bool quote_is_tdx(const struct quote *q)
{
	return q->kind != QUOTE_BODY_SGX;
}

/* The 64-byte report data of the body (TD or enclave). */
const uint8_t *quote_report_data(const struct quote *q);

/* Body byte offsets inside a v4 TDX quote (used by tools that patch fields). */
#define QUOTE_V4_REPORT_DATA_OFFSET 568

#endif
