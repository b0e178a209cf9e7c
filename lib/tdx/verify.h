/*
 * verify.h — DCAP quote verification (TDX v4/v5 and SGX v3) against checked
 * collateral (collateral.h) at a caller-supplied time.
 *
 * Per quote: PCK chain from the quote verified to the collateral's root with
 * the root and PCK CRLs; SGX extension of the PCK leaf (PPID, FMSPC, TCB);
 * FMSPC/PCE-ID match the TCB Info; QE report signed by the PCK key; QE report
 * data = SHA-256(attestation key ‖ QE auth data); QE identity policy and QE
 * TCB level; quote signature by the attestation key over header‖body;
 * platform TCB level (SGX components + PCESVN, TDX components), TDX module
 * identity; TD attributes. The status is the worst of platform / QE / module;
 * advisory IDs are the union. Only Revoked fails: everything else is reported
 * for the caller's policy.
 *
 * `dcap_verify` is thread-safe for a shared collateral. A PCK chain verified
 * once against a collateral is remembered there (keyed by the SHA-256 of its
 * PEM text, bounded by the certificates' validity), so warm verifications of
 * the same platform check only the QE report and quote signatures.
 *
 * Usage (a verifier service):
 *     X509 *root;   dcap_trust_anchor_select(cfg.insecure, cfg.root_ca_tdx, &root, &e);
 *     pccs_client_new(&pc, cfg.pccs_url, cache_dir, root, &e);          // pccs.h
 *     pccs_verify_quote(pc, quote, len, time(NULL), &result, &q, &e);   // parse + collateral + verify
 *     ... tcb_status_name(result.status), result.advisory_ids, q.td.rtmr[3], result.pck.ppid ...
 */
#ifndef DSTACK_TDX_VERIFY_H
#define DSTACK_TDX_VERIFY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/err.h"
#include "tdx/collateral.h"
#include "tdx/pck.h"
#include "tdx/quote.h"

struct dcap_result {
	enum tcb_status status; /* merged */
	enum tcb_status platform_status, qe_status, module_status;
	struct dcap_strings advisory_ids; /* union, first-seen order, no duplicates */
	struct pck_ext pck;               /* PPID, FMSPC, PCE-ID, TCB of the PCK leaf */
	enum pck_ca_type pck_ca;
};

/* Verify a parsed quote. On success fills `r` (free with dcap_result_free). */
int dcap_verify(const struct quote *q, const struct dcap_collateral *c, time_t now, struct dcap_result *r,
		struct err *e);
void dcap_result_free(struct dcap_result *r);

/* Read the PCK leaf of a quote without verifying anything: FMSPC and CA type
 * select which collateral to fetch (pccs.h). */
int dcap_quote_pck_info(const struct quote *q, struct pck_ext *ext, enum pck_ca_type *ca, struct err *e);

/* TD attribute bits checked by dcap_verify. */
#define TD_ATTR_DEBUG (1ull << 0)
#define TD_ATTR_SEPT_VE_DISABLE (1ull << 28)

#endif
