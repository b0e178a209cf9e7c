/*
 * fuzz/ratls_csr.c — libFuzzer harness for the SignCert CSR decoder (V2,
 * and V1 with its upgrade to V2). The first input byte picks the API
 * version; whatever decodes as V2 must re-encode to the same bytes, and the
 * signature check must reject without crashing.
 */
#include <stdlib.h>
#include <string.h>

#include "ratls/csr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ratls_csr c;
	struct buf out = BUF_INIT;

	if (size < 1)
		return 0;
	uint32_t api = data[0] & 1 ? 2 : 1;
	data++;
	size--;
	if (ratls_csr_decode(api, data, size, &c, NULL) < 0)
		return 0;
	if (api == 2) {
		ratls_csr_encode(&c, &out);
		if (out.len != size || memcmp(out.data, data, size) != 0)
			abort(); /* SCALE is canonical: decode ∘ encode = id */
	}
	(void)ratls_csr_verify(&c, data, size, data, size > 72 ? 72 : size, NULL);
	buf_free(&out);
	ratls_csr_free(&c);
	return 0;
}
