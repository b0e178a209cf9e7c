/*
 * der.h — a minimal bounds-checked DER reader and writer, enough for the
 * Intel SGX PCK certificate extension (SEQUENCEs of {OID, value}). OpenSSL has
 * no template for that private extension, and a hand reader is far smaller
 * than an ASN.1 module; the writer lets the simulated PKI emit the same shape.
 */
#ifndef DSTACK_TDX_DER_H
#define DSTACK_TDX_DER_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define DER_INTEGER 0x02
#define DER_OCTET_STRING 0x04
#define DER_OID 0x06
#define DER_ENUMERATED 0x0a
#define DER_SEQUENCE 0x30

struct der {
	const uint8_t *p;
	size_t left;
};

/* Read one TLV (single-byte tags only); content points into the input. */
int der_next(struct der *d, uint8_t *tag, const uint8_t **content, size_t *len, struct err *e);
/* Read one TLV and require the tag. */
int der_expect(struct der *d, uint8_t tag, struct der *inner, struct err *e);
/* Unsigned INTEGER/ENUMERATED content of at most 4 significant bytes. */
int der_uint(const uint8_t *content, size_t len, uint32_t *out, struct err *e);

/* Writer: append tag, definite length, content. */
void der_put(struct buf *b, uint8_t tag, const void *content, size_t len);
void der_put_uint(struct buf *b, uint8_t tag, uint32_t v);

#endif
