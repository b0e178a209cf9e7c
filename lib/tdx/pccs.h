/*
 * pccs.h — DCAP collateral from a PCCS-compatible service, cached.
 *
 * Paths under {base}/{sgx|tdx}/certification/v4/:
 *   sgx/…/pckcrl?ca=processor|platform&encoding=der  (header SGX-PCK-CRL-Issuer-Chain)
 *   sgx/…/rootcacrl
 *   {tdx|sgx}/…/tcb?fmspc=HEX                        (header TCB-Info-Issuer-Chain)
 *   {tdx|sgx}/…/qe/identity?update=standard          (header SGX-Enclave-Identity-Issuer-Chain)
 * Issuer-chain headers carry URL-encoded PEM. TCB Info and QE Identity come
 * as {tcbInfo|enclaveIdentity: {...}, signature: hex}; the signed text is the
 * raw inner object, so it is cut out of the body byte for byte.
 *
 * Caching: per (tdx|sgx, FMSPC, CA type) the raw collateral lives in memory
 * and, with a cache directory, on disk (collateral-<key>.json, the JSON form
 * of collateral.h); the checked form (dcap_collateral) is kept in memory. An
 * entry is used while `now` is inside its validity window, so a warm
 * verification does no network I/O and no collateral signature checks.
 * The client is thread-safe.
 */
#ifndef DSTACK_TDX_PCCS_H
#define DSTACK_TDX_PCCS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "core/err.h"
#include "tdx/collateral.h"
#include "tdx/pck.h"
#include "tdx/quote.h"
#include "tdx/verify.h"

#define PCCS_DEFAULT_URL "https://pccs.phala.network"

struct pccs_client;

/*
 * base_url: PCCS root (NULL → PCCS_DEFAULT_URL); cache_dir may be NULL (memory
 * only); root: trust anchor for checking collateral (NULL → Intel root; the
 * caller picks it with dcap_trust_anchor_select). `root` is up-referenced.
 */
int pccs_client_new(struct pccs_client **out, const char *base_url, const char *cache_dir, X509 *root,
		    struct err *e);
void pccs_client_free(struct pccs_client *c);

/* Raw collateral for a platform (network only if not cached and valid at `now`). */
int pccs_fetch_raw(struct pccs_client *c, bool tdx, const uint8_t fmspc[6], enum pck_ca_type ca, time_t now,
		   struct dcap_collateral_raw *out, struct err *e);

/* Checked collateral for a quote; borrowed, valid until the client is freed. */
int pccs_collateral_for_quote(struct pccs_client *c, const struct quote *q, time_t now,
			      const struct dcap_collateral **out, struct err *e);

/* Parse + fetch collateral + dcap_verify. `q` (may be NULL) receives the parsed quote. */
int pccs_verify_quote(struct pccs_client *c, const uint8_t *quote, size_t len, time_t now,
		      struct dcap_result *r, struct quote *q, struct err *e);

/* Number of network fetches so far (for tests and metrics). */
unsigned long pccs_client_fetch_count(struct pccs_client *c);

#endif
