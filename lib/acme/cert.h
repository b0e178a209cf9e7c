/*
 * cert.h — the certificate side of issuance: the PKCS#10 request sent at
 * finalize (empty subject, the names as DNS SANs, signed by the new key),
 * checking what the CA returned, and reading a stored certificate's expiry
 * and names to decide whether it needs renewing.
 */
#ifndef DSTACK_ACME_CERT_H
#define DSTACK_ACME_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>

#include "core/err.h"

/* DER of a CSR for names signed by key (SHA-256), malloc'd. */
int acme_csr_der(EVP_PKEY *key, const char *const *names, size_t n_names, uint8_t **der, size_t *len,
		 struct err *e);

/* The chain parses, its leaf holds key's public key and names every one of
 * names as a DNS SAN. */
int acme_check_chain(const char *chain_pem, EVP_PKEY *key, const char *const *names, size_t n_names,
		     struct err *e);

struct acme_cert_info {
	time_t not_before, not_after;
	char **dns_names; /* the leaf's DNS SANs */
	size_t n_dns_names;
};

/* The first certificate of a PEM chain. */
int acme_cert_info_read(const char *pem, size_t len, struct acme_cert_info *out, struct err *e);
/* Every name is among the SANs (ASCII case-insensitive). */
bool acme_cert_info_covers(const struct acme_cert_info *ci, const char *const *names, size_t n_names);
void acme_cert_info_clear(struct acme_cert_info *ci);

#endif
