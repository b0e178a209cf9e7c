/*
 * jws.h — the JOSE pieces ACME (RFC 8555 §6.2) needs, for ECDSA P-256
 * account keys: the public JWK, its RFC 7638 thumbprint, ES256 signatures
 * (raw r‖s, RFC 7518 §3.4) and the flattened-JSON JWS request body, plus the
 * dns-01 TXT value (RFC 8555 §8.4).
 *
 * The thumbprint takes any JWK object (EC, RSA, OKP) so it can be checked
 * against RFC 7638's own example, which is an RSA key.
 */
#ifndef DSTACK_ACME_JWS_H
#define DSTACK_ACME_JWS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "core/err.h"

/* {"crv":"P-256","kty":"EC","x":...,"y":...} of a P-256 key (new reference). */
json_t *acme_jwk_of_key(EVP_PKEY *key, struct err *e);
/* A P-256 key from a JWK: public from x/y, private too when d is present. */
EVP_PKEY *acme_key_of_jwk(const json_t *jwk, struct err *e);
/* base64url(SHA-256(canonical JWK)) per RFC 7638, malloc'd. */
char *acme_jwk_thumbprint(const json_t *jwk, struct err *e);

/* ES256 over data: 64 bytes r‖s. */
int acme_es256_sign(EVP_PKEY *key, const void *data, size_t len, uint8_t sig[64], struct err *e);
/* 0 if sig is a valid ES256 signature of data by key. */
int acme_es256_verify(EVP_PKEY *key, const void *data, size_t len, const uint8_t sig[64], struct err *e);

/*
 * The body of an ACME POST: {"protected","payload","signature"} where the
 * protected header is {"alg":"ES256", "jwk" or "kid", "nonce", "url"}. kid
 * NULL puts the jwk (newAccount); payload NULL is POST-as-GET (""). Returns
 * malloc'd JSON text.
 */
char *acme_jws_build(EVP_PKEY *key, const char *kid, const char *nonce, const char *url, const char *payload,
		     struct err *e);

/* dns-01: base64url(SHA-256(token "." thumbprint)), malloc'd. */
char *acme_dns01_value(const char *token, const char *thumbprint);

/* A fresh P-256 key (account keys and certificate keys). */
EVP_PKEY *acme_p256_generate(struct err *e);

#endif
