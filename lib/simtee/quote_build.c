/*
 * quote_build.c — assemble a genuine TDX v4 quote for a simulated TD: the
 * header and TD report body from the TD state, a QE report binding the
 * attestation key (report_data = SHA-256(att_pub ‖ qe_auth)), the QE report
 * signed by the PCK key, the body signed by the attestation key, and
 * certification data type 6 with the nested type 5 PEM PCK chain.
 */
#include <string.h>

#include <openssl/evp.h>

#include "core/cleanup.h"
#include "simtee/pki.h"
#include "simtee/td.h"
#include "tdx/ecdsa.h"
#include "tdx/quote.h"

static void put16(struct buf *b, uint16_t v)
{
	uint8_t p[2] = {(uint8_t)v, (uint8_t)(v >> 8)};

	buf_append(b, p, 2);
}

static void put32(struct buf *b, uint32_t v)
{
	uint8_t p[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	buf_append(b, p, 4);
}

static void fill(struct buf *b, uint8_t byte, size_t n)
{
	uint8_t tmp[64];

	memset(tmp, byte, sizeof(tmp));
	while (n) {
		size_t k = n < sizeof(tmp) ? n : sizeof(tmp);
		buf_append(b, tmp, k);
		n -= k;
	}
}

static int qe_report(const uint8_t att_pub[64], const uint8_t auth[32], uint8_t out[SGX_REPORT_LEN],
		     struct err *e)
{
	uint8_t digest[32];
	unsigned int dl = 0;
	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();

	memset(out, 0, SGX_REPORT_LEN);
	memcpy(out, SIMTEE_SGX_COMPONENTS, 16); /* cpu_svn */
	out[48] = 0x11;                         /* attributes: INIT | MODE64BIT, not DEBUG */
	memset(out + 64, 0x33, 32);             /* mr_enclave */
	memcpy(out + 128, SIMTEE_QE_MRSIGNER, 32);
	out[256] = SIMTEE_QE_ISVPRODID;
	out[258] = SIMTEE_QE_ISVSVN;
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL) || !EVP_DigestUpdate(md, att_pub, 64) ||
	    !EVP_DigestUpdate(md, auth, 32) || !EVP_DigestFinal_ex(md, digest, &dl))
		return err_ssl(e, "SHA-256");
	memcpy(out + 320, digest, 32);
	return 0;
}

int simtee_build_quote(const struct simtee_pki *pki, const struct simtee_td_state *st,
		       const uint8_t report_data[64], struct buf *out, struct err *e)
{
	uint8_t att_pub[64], auth[32], qr[SGX_REPORT_LEN], qe_sig[64], sig[64];

	buf_reset(out);
	/* Header. */
	put16(out, 4);
	put16(out, QUOTE_ATT_KEY_ECDSA_P256);
	put32(out, QUOTE_TEE_TDX);
	put16(out, SIMTEE_QE_ISVSVN);
	put16(out, SIMTEE_PCESVN);
	buf_append(out, QUOTE_INTEL_QE_VENDOR_ID, 16);
	fill(out, 0, 20);
	/* TD 1.0 body. */
	buf_append(out, SIMTEE_TDX_COMPONENTS, 16);
	fill(out, 0x5e, 48); /* mr_seam */
	fill(out, 0, 48);    /* mr_signer_seam: Intel-signed module */
	fill(out, 0, 8);     /* seam_attributes */
	buf_append(out, st->td_attributes, 8);
	buf_append(out, st->xfam, 8);
	buf_append(out, st->mr_td, 48);
	buf_append(out, st->mr_config_id, 48);
	buf_append(out, st->mr_owner, 48);
	buf_append(out, st->mr_owner_config, 48);
	for (int i = 0; i < 4; i++)
		buf_append(out, st->rtmr[i], 48);
	buf_append(out, report_data, 64);

	if (ecdsa_p256_sign_raw(pki->att_key, out->data, out->len, sig, e) < 0 ||
	    ecdsa_p256_pub_to_raw(pki->att_key, att_pub, e) < 0)
		return err_wrap(e, "simulated quote");
	for (int i = 0; i < 32; i++)
		auth[i] = (uint8_t)i;
	if (qe_report(att_pub, auth, qr, e) < 0 ||
	    ecdsa_p256_sign_raw(pki->pck_key, qr, sizeof(qr), qe_sig, e) < 0)
		return err_wrap(e, "simulated QE report");

	size_t cert5 = 2 + 4 + pki->pck_chain_len;
	size_t cert6 = SGX_REPORT_LEN + 64 + 2 + sizeof(auth) + cert5;
	size_t sig_data = 64 + 64 + 2 + 4 + cert6;
	put32(out, (uint32_t)sig_data);
	buf_append(out, sig, 64);
	buf_append(out, att_pub, 64);
	put16(out, QUOTE_CERT_QE_REPORT);
	put32(out, (uint32_t)cert6);
	buf_append(out, qr, sizeof(qr));
	buf_append(out, qe_sig, 64);
	put16(out, sizeof(auth));
	buf_append(out, auth, sizeof(auth));
	put16(out, QUOTE_CERT_PCK_CHAIN);
	put32(out, (uint32_t)pki->pck_chain_len);
	buf_append(out, pki->pck_chain_pem, pki->pck_chain_len);
	return 0;
}
