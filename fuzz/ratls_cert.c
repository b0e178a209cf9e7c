/*
 * fuzz/ratls_cert.c — libFuzzer harness for what a TLS peer controls in an
 * RA-TLS certificate: DER certificate → RA-TLS extensions (nested OCTET
 * STRINGs, ELGZv1 inflation) → attestation decode / legacy quote + event
 * log → key binding → AppInfo. No verification (that needs collateral).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "attest/appinfo.h"
#include "ratls/ext.h"
#include "ratls/verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const unsigned char *p = data;
	X509 *cert = d2i_X509(NULL, &p, (long)size);
	struct ratls_ext x;
	struct app_info ai;
	struct attestation a;

	if (!cert) {
		ERR_clear_error();
		return 0;
	}
	(void)ratls_cert_has_attestation(cert);
	if (ratls_ext_read(cert, &x, NULL) == 0) {
		if (x.attestation && attestation_decode(x.attestation, x.attestation_len, &a, NULL) == 0)
			attestation_free(&a);
		if (x.quote && ratls_attestation_from_quote(x.quote, x.quote_len, x.event_log,
							    x.event_log_len, NULL, &a, NULL) == 0)
			attestation_free(&a);
		ratls_ext_free(&x);
	}
	if (ratls_peer_app_info(NULL, cert, 0, &ai, NULL) == 0)
		app_info_free(&ai);
	X509_free(cert);
	ERR_clear_error();
	return 0;
}
