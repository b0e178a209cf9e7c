/*
 * pck_cache.h — remembers PCK chains already verified against one checked
 * collateral (same root, same CRLs), keyed by SHA-256 of the PEM text in the
 * quote, with the chain's validity window. A platform sends the same chain in
 * every quote, so a warm verification skips the chain and CRL signatures and
 * the PEM/ASN.1 parsing. Internal to lib/tdx; thread-safe.
 */
#ifndef DSTACK_TDX_PCK_CACHE_H
#define DSTACK_TDX_PCK_CACHE_H

#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>

#include "tdx/pck.h"

struct pck_cache;

struct pck_cache *pck_cache_new(void);
void pck_cache_free(struct pck_cache *c);
/* Hit: returns the leaf public key (new reference) and fills ext/ca; miss: NULL. */
EVP_PKEY *pck_cache_get(struct pck_cache *c, const uint8_t digest[32], time_t now, struct pck_ext *ext,
			enum pck_ca_type *ca);
void pck_cache_put(struct pck_cache *c, const uint8_t digest[32], EVP_PKEY *pub, const struct pck_ext *ext,
		   enum pck_ca_type ca, time_t valid_from, time_t valid_until);

#endif
