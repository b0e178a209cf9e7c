/*
 * collateral.h — DCAP collateral: the PCCS artefacts a quote is judged
 * against (root CA CRL, PCK CRL, TCB Info, QE Identity, their issuer chains).
 *
 * Two forms. `dcap_collateral_raw` is what PCCS serves and what is cached on
 * disk (JSON with the field names of the dcap-qvl collateral format).
 * `dcap_collateral` is the result of checking it once: every issuer chain
 * verified to the trust anchor with CRLs, every signature checked, the TCB
 * Info / QE Identity JSON parsed into structs, and the intersection of all
 * validity windows computed. It is immutable after load, so one instance can
 * be shared by threads and a warm verification only checks the per-quote
 * signatures (see verify.h).
 */
#ifndef DSTACK_TDX_COLLATERAL_H
#define DSTACK_TDX_COLLATERAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "core/err.h"

struct pck_cache;

extern const unsigned char DCAP_INTEL_ROOT_CA_DER[];
extern const size_t DCAP_INTEL_ROOT_CA_DER_LEN;

/* ---- raw form (wire / cache) ---- */
struct dcap_collateral_raw {
	char *pck_crl_issuer_chain; /* PEM */
	uint8_t *root_ca_crl;       /* DER */
	size_t root_ca_crl_len;
	uint8_t *pck_crl; /* DER */
	size_t pck_crl_len;
	char *tcb_info_issuer_chain; /* PEM */
	char *tcb_info;              /* raw JSON text of the tcbInfo object (what was signed) */
	char *tcb_info_signature;    /* hex r‖s */
	char *qe_identity_issuer_chain;
	char *qe_identity; /* raw JSON text of the enclaveIdentity object */
	char *qe_identity_signature;
};

/* The JSON form: {pck_crl_issuer_chain, root_ca_crl (hex), pck_crl (hex), tcb_info_issuer_chain,
 * tcb_info, tcb_info_signature, qe_identity_issuer_chain, qe_identity, qe_identity_signature}. */
int dcap_collateral_raw_from_json(const char *text, size_t len, struct dcap_collateral_raw *out,
				  struct err *e);
char *dcap_collateral_raw_to_json(const struct dcap_collateral_raw *raw);
void dcap_collateral_raw_free(struct dcap_collateral_raw *raw);

/* ---- trust anchor ---- */
/* The embedded Intel SGX Root CA (new reference each call). */
X509 *dcap_intel_root_ca(void);
/*
 * Choose the trust anchor the way KMS config does: the Intel root unless
 * `root_ca_path` is set, which is honoured only with `insecure_allow_external`
 * (config `insecure_allow_external_trust_anchors`). PEM or DER.
 */
int dcap_trust_anchor_select(bool insecure_allow_external, const char *root_ca_path, X509 **out,
			     struct err *e);

/* ---- parsed, checked form ---- */
enum tcb_status {
	TCB_UP_TO_DATE,
	TCB_SW_HARDENING_NEEDED,
	TCB_CONFIGURATION_NEEDED,
	TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED,
	TCB_OUT_OF_DATE,
	TCB_OUT_OF_DATE_CONFIGURATION_NEEDED,
	TCB_REVOKED,
};
const char *tcb_status_name(enum tcb_status s); /* "UpToDate", ... */
int tcb_status_parse(const char *s, enum tcb_status *out);

struct dcap_strings {
	char **v;
	size_t n;
};

struct dcap_platform_level {
	uint8_t sgx_svn[16];
	uint16_t pcesvn;
	uint8_t tdx_svn[16];
	enum tcb_status status;
	struct dcap_strings advisories;
};

struct dcap_isv_level {
	uint16_t isvsvn;
	enum tcb_status status;
	struct dcap_strings advisories;
};

struct dcap_module_identity {
	char id[32]; /* "TDX_01" */
	uint8_t mrsigner[48];
	uint8_t attributes[8];
	uint8_t attributes_mask[8];
	struct dcap_isv_level *levels;
	size_t n_levels;
};

struct dcap_tcb_info {
	char id[8]; /* "TDX" or "SGX" */
	int version;
	time_t issue_date, next_update;
	uint8_t fmspc[6];
	uint8_t pce_id[2];
	bool has_tdx_module;
	uint8_t module_mrsigner[48];
	uint8_t module_attributes[8];
	uint8_t module_attributes_mask[8];
	struct dcap_module_identity *modules;
	size_t n_modules;
	struct dcap_platform_level *levels;
	size_t n_levels;
};

struct dcap_qe_identity {
	char id[8]; /* "TD_QE" or "QE" */
	int version;
	time_t issue_date, next_update;
	uint32_t miscselect, miscselect_mask;
	uint8_t attributes[16], attributes_mask[16];
	uint8_t mrsigner[32];
	uint16_t isvprodid;
	struct dcap_isv_level *levels;
	size_t n_levels;
};

struct dcap_collateral {
	X509 *root;
	X509_STORE *store;           /* root + root CRL + PCK CRL, for per-quote PCK chains */
	struct pck_cache *pck_cache; /* PCK chains already verified against this collateral */
	struct dcap_tcb_info tcb;
	struct dcap_qe_identity qe;
	/* Intersection of every validity window (certificates, CRLs, TCB Info, QE Identity). */
	time_t valid_from, valid_until;
};

/*
 * Check raw collateral at time `now` against `root` (NULL = Intel root) and
 * build the checked form. Fails if any chain, CRL or signature is bad or if
 * `now` lies outside any validity window.
 */
int dcap_collateral_load(struct dcap_collateral **out, const struct dcap_collateral_raw *raw, X509 *root,
			 time_t now, struct err *e);
void dcap_collateral_free(struct dcap_collateral *c);

/* Parse the signed JSON documents alone (used by load; exposed for tests/fuzzing). */
int dcap_tcb_info_parse(const char *json, struct dcap_tcb_info *out, struct err *e);
void dcap_tcb_info_clear(struct dcap_tcb_info *t);
int dcap_qe_identity_parse(const char *json, struct dcap_qe_identity *out, struct err *e);
void dcap_qe_identity_clear(struct dcap_qe_identity *q);

/* "2025-06-19T10:16:03Z" → time_t (UTC). */
int dcap_parse_time(const char *s, time_t *out, struct err *e);

#endif
