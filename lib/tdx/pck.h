/*
 * pck.h — the Intel SGX PCK certificate: its private extension
 * (OID 1.2.840.113741.1.13.1) with PPID, TCB component SVNs, CPUSVN, PCESVN,
 * PCE-ID and FMSPC, plus PEM chain helpers shared by verification and the
 * simulated PKI.
 */
#ifndef DSTACK_TDX_PCK_H
#define DSTACK_TDX_PCK_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "core/buf.h"
#include "core/err.h"

/* DER content bytes of OID 1.2.840.113741.1.13.1 (the SGX extension). */
extern const uint8_t PCK_SGX_EXT_OID[9];
#define PCK_SGX_EXT_OID_TEXT "1.2.840.113741.1.13.1"

enum pck_ca_type { PCK_CA_PROCESSOR, PCK_CA_PLATFORM };

struct pck_ext {
	uint8_t ppid[16];
	uint8_t comp_svn[16]; /* .2.1 ... .2.16 */
	uint16_t pcesvn;      /* .2.17 */
	uint8_t cpusvn[16];   /* .2.18 */
	uint8_t pce_id[2];    /* .3 */
	uint8_t fmspc[6];     /* .4 */
	uint32_t sgx_type;    /* .5: 0 standard, 1 scalable */
};

/* Parse the extension value (the DER SEQUENCE inside the OCTET STRING). */
int pck_ext_parse_der(const uint8_t *der, size_t len, struct pck_ext *out, struct err *e);
/* Find and parse the extension in a certificate. */
int pck_ext_from_cert(X509 *cert, struct pck_ext *out, struct err *e);
/* Encode the extension value (for the simulated PKI). */
void pck_ext_encode(const struct pck_ext *x, struct buf *out);

/* PCK CA type from the issuer CN ("... PCK Platform CA" / "... Processor CA"). */
int pck_ca_type_of(X509 *cert, enum pck_ca_type *out, struct err *e);
const char *pck_ca_type_name(enum pck_ca_type t); /* "platform" / "processor" */

/* Parse every certificate of a PEM text (NUL bytes at the end ignored). */
STACK_OF(X509) * pem_chain_parse(const char *pem, size_t len, struct err *e);

#endif
