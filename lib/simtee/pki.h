/*
 * pki.h — the development PKI of the simulated TDX: a stand-in for Intel's
 * SGX root CA, PCK platform CA, PCK leaf (with a real SGX extension), TCB
 * signing certificate, CRLs, and signed TCB Info / QE Identity, all in one
 * directory so the production verifier (lib/tdx/verify.h) can check
 * simulated quotes with only the trust anchor changed.
 *
 * Files written by simtee_pki_init (private keys 0600):
 *   root_ca.pem root_ca.key  pck_ca.pem pck_ca.key  pck.pem pck.key
 *   tcb_signing.pem tcb_signing.key  attestation.key
 *   root_ca.crl pck_ca.crl            (DER)
 *   tcb_info.json qe_identity.json    (PCCS response bodies: {tcbInfo|enclaveIdentity, signature})
 *   collateral.json                   (dcap collateral JSON, see collateral.h)
 *
 * Keys derive from a seed: P-256 scalar = SHA-256("dstack-simtee-p256-v1" ‖
 * seed ‖ label ‖ ctr_be32), first counter giving a valid scalar. With the same
 * seed the keys, names and serials are identical across runs.
 */
#ifndef DSTACK_SIMTEE_PKI_H
#define DSTACK_SIMTEE_PKI_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>

#include "core/err.h"
#include "tdx/collateral.h"

/* Identity of the simulated platform and quoting enclave. */
#define SIMTEE_FMSPC "00806F050000"
#define SIMTEE_PCESVN 11
#define SIMTEE_QE_ISVPRODID 2
#define SIMTEE_QE_ISVSVN 4
#define SIMTEE_TDX_MODULE_VERSION 1 /* tee_tcb_svn[1] → TDX_01 */
#define SIMTEE_TDX_MODULE_SVN 3     /* tee_tcb_svn[0] */
extern const uint8_t SIMTEE_SGX_COMPONENTS[16];
extern const uint8_t SIMTEE_TDX_COMPONENTS[16];
extern const uint8_t SIMTEE_QE_MRSIGNER[32];

struct simtee_pki_opts {
	const uint8_t *seed; /* NULL: random */
	size_t seed_len;
	time_t now;        /* 0: time(NULL); collateral issueDate/CRL thisUpdate = now - 1 day */
	int validity_days; /* 0: 365; collateral nextUpdate = now + validity */
};

int simtee_pki_init(const char *dir, const struct simtee_pki_opts *opts, struct err *e);

/* What the simulated TD needs to produce quotes. */
struct simtee_pki {
	EVP_PKEY *pck_key;
	EVP_PKEY *att_key;
	char *pck_chain_pem; /* leaf ‖ PCK CA ‖ root */
	size_t pck_chain_len;
};

int simtee_pki_load(const char *dir, struct simtee_pki *out, struct err *e);
void simtee_pki_free(struct simtee_pki *p);

/* The collateral of DIR (collateral.json). */
int simtee_pki_collateral(const char *dir, struct dcap_collateral_raw *out, struct err *e);

#endif
