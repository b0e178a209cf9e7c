/*
 * acme_test.c — unit tests for lib/acme without a server: JOSE against the
 * RFCs' own vectors (RFC 7638 §3.1 thumbprint, RFC 7515 A.3 ES256 key and
 * signature), our ES256 signatures and JWS bodies checked with OpenSSL
 * directly, the CSR, the credentials JSON, and the ACME object parsers.
 * Issuance itself is tested against pebble (certbot/tests).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/x509v3.h>

#include "acme/acme.h"
#include "acme/cert.h"
#include "acme/jws.h"
#include "acme/msg.h"
#include "codec/base64.h"
#include "core/cleanup.h"
#include "core/tap.h"

/* RFC 7515 Appendix A.3 */
#define A3_X "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
#define A3_Y "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
#define A3_D "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"
#define A3_INPUT                                                                                             \
	"eyJhbGciOiJFUzI1NiJ9."                                                                              \
	"eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb2"                 \
	"90Ijp0cnVlfQ"
#define A3_SIG "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"

/* RFC 7638 §3.1 */
#define RFC7638_N                                                                                            \
	"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"            \
	"BJECPebWKRXjBZCiFV"                                                                                 \
	"4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"                             \
	"FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7"                                                                \
	"d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_"         \
	"xBniIqbw0Ls1jF4"                                                                                    \
	"4-csFCur-kEgU8awapJzKnqDKgw"

/* Verify a raw r||s ES256 signature with OpenSSL alone (not our verifier). */
static bool openssl_verifies(EVP_PKEY *key, const char *input, const uint8_t *raw, size_t raw_len)
{
	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
	ECDSA_SIG *sig = ECDSA_SIG_new();
	unsigned char *der = NULL;
	int der_len, rc;

	if (raw_len != 64 || !sig)
		return false;
	ECDSA_SIG_set0(sig, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL));
	der_len = i2d_ECDSA_SIG(sig, &der);
	ECDSA_SIG_free(sig);
	rc = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
	     EVP_DigestVerify(md, der, (size_t)der_len, (const uint8_t *)input, strlen(input)) == 1;
	OPENSSL_free(der);
	return rc;
}

static void test_thumbprints(void)
{
	struct err e = ERR_INIT;
	_cleanup_json_ json_t *rsa =
	    json_pack("{s:s, s:s, s:s, s:s}", "kty", "RSA", "n", RFC7638_N, "e", "AQAB", "kid", "2011-04-29");
	_cleanup_free_ char *t = acme_jwk_thumbprint(rsa, &e);
	_cleanup_json_ json_t *ec = json_pack("{s:s, s:s, s:s, s:s, s:s}", "y", A3_Y, "use", "sig", "x", A3_X,
					      "kty", "EC", "crv", "P-256");
	_cleanup_free_ char *te = acme_jwk_thumbprint(ec, &e);
	const char *canon = "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}";
	unsigned char digest[32];
	unsigned int dl = 0;
	_cleanup_free_ char *want = NULL;

	is_str(t, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
	       "RFC 7638 §3.1 thumbprint (extra kid ignored)");
	EVP_Digest(canon, strlen(canon), digest, &dl, EVP_sha256(), NULL);
	want = base64url_encode(digest, dl);
	is_str(te, want, "EC thumbprint hashes crv,kty,x,y in order without whitespace");
	json_object_del(ec, "x");
	ok(acme_jwk_thumbprint(ec, &e) == NULL, "EC JWK without x has no thumbprint");
}

static void test_rfc7515_a3(void)
{
	struct err e = ERR_INIT;
	_cleanup_json_ json_t *jwk = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256", "x",
					       A3_X, "y", A3_Y, "d", A3_D);
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = acme_key_of_jwk(jwk, &e);
	_cleanup_json_ json_t *back = NULL;
	_cleanup_free_ uint8_t *sig = NULL;
	size_t sig_len = 0;
	uint8_t mine[64];

	if (!ok(key != NULL, "RFC 7515 A.3 key loads from its JWK"))
		return;
	back = acme_jwk_of_key(key, &e);
	is_str(json_string_value(json_object_get(back, "x")), A3_X, "our JWK of the A.3 key: x");
	is_str(json_string_value(json_object_get(back, "y")), A3_Y, "our JWK of the A.3 key: y");
	ok(json_object_get(back, "d") == NULL, "the public JWK carries no d");
	base64url_decode(A3_SIG, strlen(A3_SIG), &sig, &sig_len, &e);
	ok(sig_len == 64 && acme_es256_verify(key, A3_INPUT, strlen(A3_INPUT), sig, &e) == 0,
	   "the RFC 7515 A.3 signature verifies with acme_es256_verify");
	sig[10] ^= 1;
	ok(acme_es256_verify(key, A3_INPUT, strlen(A3_INPUT), sig, &e) < 0,
	   "a one-bit change to it does not");
	ok(acme_es256_sign(key, A3_INPUT, strlen(A3_INPUT), mine, &e) == 0 &&
	       openssl_verifies(key, A3_INPUT, mine, 64),
	   "our ES256 signature with the A.3 private key verifies with OpenSSL");
}

static json_t *decode_json_b64(const char *b64)
{
	_cleanup_free_ uint8_t *raw = NULL;
	size_t len = 0;

	if (base64url_decode(b64, strlen(b64), &raw, &len, NULL) < 0)
		return NULL;
	return json_loadb((const char *)raw, len, 0, NULL);
}

static void test_jws_body(void)
{
	struct err e = ERR_INIT;
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = acme_p256_generate(&e);
	_cleanup_free_ char *with_jwk = acme_jws_build(key, NULL, "nonce-1", "https://ca.example/new-acct",
						       "{\"termsOfServiceAgreed\":true}", &e);
	_cleanup_free_ char *with_kid = acme_jws_build(key, "https://ca.example/acct/7", "nonce-2",
						       "https://ca.example/order/1", NULL, &e);
	_cleanup_json_ json_t *a = json_loads(with_jwk ? with_jwk : "", 0, NULL);
	_cleanup_json_ json_t *b = json_loads(with_kid ? with_kid : "", 0, NULL);
	_cleanup_json_ json_t *ha = decode_json_b64(json_string_value(json_object_get(a, "protected")));
	_cleanup_json_ json_t *hb = decode_json_b64(json_string_value(json_object_get(b, "protected")));
	_cleanup_json_ json_t *jwk = acme_jwk_of_key(key, &e);
	_cleanup_free_ char *input = NULL, *payload = NULL;
	_cleanup_free_ uint8_t *sig = NULL;
	size_t sig_len = 0, plen = 0;

	ok(json_object_size(a) == 3, "flattened JWS has protected, payload, signature");
	is_str(json_string_value(json_object_get(ha, "alg")), "ES256", "alg ES256");
	is_str(json_string_value(json_object_get(ha, "nonce")), "nonce-1", "nonce in the protected header");
	is_str(json_string_value(json_object_get(ha, "url")), "https://ca.example/new-acct",
	       "url in the header");
	ok(json_equal(json_object_get(ha, "jwk"), jwk) && !json_object_get(ha, "kid"),
	   "newAccount carries the jwk");
	is_str(json_string_value(json_object_get(hb, "kid")), "https://ca.example/acct/7",
	       "later requests: kid");
	ok(!json_object_get(hb, "jwk"), "and no jwk");
	is_str(json_string_value(json_object_get(b, "payload")), "", "POST-as-GET has an empty payload");
	base64url_decode(json_string_value(json_object_get(a, "payload")),
			 strlen(json_string_value(json_object_get(a, "payload"))), (uint8_t **)&payload,
			 &plen, &e);
	is_str(payload, "{\"termsOfServiceAgreed\":true}", "payload is base64url of the JSON");
	if (asprintf(&input, "%s.%s", json_string_value(json_object_get(a, "protected")),
		     json_string_value(json_object_get(a, "payload"))) < 0)
		abort();
	base64url_decode(json_string_value(json_object_get(a, "signature")),
			 strlen(json_string_value(json_object_get(a, "signature"))), &sig, &sig_len, &e);
	ok(openssl_verifies(key, input, sig, sig_len), "JWS signature (raw r||s) verifies with OpenSSL");
}

static void test_dns01(void)
{
	_cleanup_free_ char *v = acme_dns01_value("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA",
						  "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
	const char *ka =
	    "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
	unsigned char digest[32];
	unsigned int dl = 0;
	_cleanup_free_ char *want = NULL;

	EVP_Digest(ka, strlen(ka), digest, &dl, EVP_sha256(), NULL);
	want = base64url_encode(digest, dl);
	is_str(v, want, "dns-01 value is base64url(SHA-256(token.thumbprint))");
	ok(v && strlen(v) == 43 && !strchr(v, '='), "43 characters, unpadded");
}

static void test_csr(void)
{
	struct err e = ERR_INIT;
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = acme_p256_generate(&e);
	const char *names[] = {"*.test.example", "*.other.example"};
	_cleanup_free_ uint8_t *der = NULL;
	size_t len = 0;
	const uint8_t *p;
	_cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
	STACK_OF(X509_EXTENSION) * exts;
	GENERAL_NAMES *gens = NULL;

	ok(acme_csr_der(key, names, 2, &der, &len, &e) == 0, "CSR built");
	p = der;
	req = d2i_X509_REQ(NULL, &p, (long)len);
	if (!ok(req && p == der + len, "CSR is one DER PKCS#10 request"))
		return;
	is_int(X509_NAME_entry_count(X509_REQ_get_subject_name(req)), 0, "subject DN is empty");
	ok(X509_REQ_verify(req, key) == 1, "CSR is signed by the new key");
	exts = X509_REQ_get_extensions(req);
	for (int i = 0; exts && i < sk_X509_EXTENSION_num(exts); i++) {
		X509_EXTENSION *x = sk_X509_EXTENSION_value(exts, i);

		if (OBJ_obj2nid(X509_EXTENSION_get_object(x)) == NID_subject_alt_name)
			gens = X509V3_EXT_d2i(x);
	}
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	if (ok(gens && sk_GENERAL_NAME_num(gens) == 2, "two SANs")) {
		GENERAL_NAME *g0 = sk_GENERAL_NAME_value(gens, 0), *g1 = sk_GENERAL_NAME_value(gens, 1);

		ok(g0->type == GEN_DNS &&
		       strcmp((const char *)ASN1_STRING_get0_data(g0->d.dNSName), "*.test.example") == 0,
		   "SAN 1 is DNS:*.test.example");
		ok(g1->type == GEN_DNS &&
		       strcmp((const char *)ASN1_STRING_get0_data(g1->d.dNSName), "*.other.example") == 0,
		   "SAN 2 is DNS:*.other.example");
	}
	GENERAL_NAMES_free(gens);
	ok(acme_csr_der(key, (const char *[]){"a,DNS:evil.example"}, 1, &der, &len, &e) < 0,
	   "a name that would inject another SAN is refused");
}

static void test_credentials(void)
{
	struct err e = ERR_INIT;
	struct acme_account a = {0}, b = {0};
	_cleanup_free_ char *dump = NULL;
	_cleanup_json_ json_t *root = NULL;

	a.key = acme_p256_generate(&e);
	a.account_url = strdup("https://ca.example/acme/acct/42");
	a.directory_url = strdup("https://ca.example/dir");
	dump = acme_account_dump(&a, &e);
	root = json_loads(dump ? dump : "", 0, NULL);
	is_str(json_string_value(json_object_get(root, "account_id")), "https://ca.example/acme/acct/42",
	       "credentials.json account_id");
	is_str(json_string_value(json_object_get(root, "acme_url")), "https://ca.example/dir", "acme_url");
	is_str(json_string_value(json_object_get(json_object_get(root, "credentials"), "id")),
	       "https://ca.example/acme/acct/42", "credentials.id (instant-acme's field)");
	is_str(json_string_value(json_object_get(json_object_get(root, "credentials"), "directory")),
	       "https://ca.example/dir", "credentials.directory");
	ok(json_is_string(json_object_get(json_object_get(root, "credentials"), "key_pkcs8")),
	   "credentials.key_pkcs8 is a string");
	ok(acme_account_load(dump, &b, &e) == 0 && EVP_PKEY_eq(a.key, b.key) == 1 &&
	       strcmp(b.account_url, a.account_url) == 0,
	   "the dump loads back to the same key and account");
	ok(acme_credentials_match(dump, "https://ca.example/dir"), "credentials match their acme_url");
	ok(!acme_credentials_match(dump, ACME_LE_STAGING), "and not another one");
	acme_account_clear(&b);
	{
		/* Only P-256 signs ES256: another key type is refused at load. */
		_cleanup_(EVP_PKEY_freep) EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		_cleanup_free_ char *b64 = NULL, *text = NULL;
		unsigned char *p = NULL;
		int len = i2d_PrivateKey(other, &p);

		b64 = base64url_encode(p, (size_t)len);
		OPENSSL_free(p);
		if (asprintf(&text,
			     "{\"account_id\":\"https://x/a\",\"acme_url\":\"https://x/d\",\"credentials\":"
			     "{\"id\":\"https://x/a\",\"key_pkcs8\":\"%s\"}}",
			     b64) < 0)
			abort();
		ok(acme_account_load(text, &b, &e) < 0, "an Ed25519 account key is refused");
	}
	ok(acme_account_load("{\"account_id\":\"x\"}", &b, &e) < 0, "credentials without a key are refused");
	acme_account_clear(&a);
}

static void test_parsers(void)
{
	struct err e = ERR_INIT;
	struct acme_order o;
	struct acme_authz az;
	struct acme_directory d;
	_cleanup_buf_ struct buf p = BUF_INIT;

	ok(acme_parse_directory(
	       "{\"newNonce\":\"https://ca/nonce\",\"newAccount\":\"https://ca/acct\","
	       "\"newOrder\":\"https://ca/order\",\"meta\":{\"termsOfService\":\"https://ca/tos\"}}",
	       &d, &e) == 0 &&
	       strcmp(d.new_order, "https://ca/order") == 0 &&
	       strcmp(d.terms_of_service, "https://ca/tos") == 0,
	   "directory parsed");
	acme_directory_clear(&d);
	ok(acme_parse_directory("{\"newNonce\":\"file:///etc/passwd\",\"newAccount\":\"https://ca/a\","
				"\"newOrder\":\"https://ca/o\"}",
				&d, &e) < 0,
	   "a directory URL that is not http(s) is refused");
	ok(acme_parse_order("{\"status\":\"pending\",\"authorizations\":[\"https://ca/authz/1\"],"
			    "\"finalize\":\"https://ca/finalize/1\",\"identifiers\":[]}",
			    &o, &e) == 0 &&
	       o.status == ACME_STATUS_PENDING && o.n_authorizations == 1 && !o.certificate,
	   "pending order parsed");
	acme_order_clear(&o);
	ok(acme_parse_order("{\"status\":\"valid\",\"authorizations\":[],\"finalize\":\"https://ca/f\","
			    "\"certificate\":\"https://ca/cert/9\"}",
			    &o, &e) == 0 &&
	       strcmp(o.certificate, "https://ca/cert/9") == 0,
	   "valid order has its certificate URL");
	acme_order_clear(&o);
	ok(acme_parse_order("{\"status\":\"pending\",\"authorizations\":[\"https://ca/a z\"],"
			    "\"finalize\":\"https://ca/f\"}",
			    &o, &e) < 0,
	   "an authorization URL with a space is refused (found by fuzz_acme_json)");
	ok(acme_parse_order("{\"status\":\"bogus\",\"authorizations\":[],\"finalize\":\"https://ca/f\"}", &o,
			    &e) < 0,
	   "unknown order status refused");
	ok(acme_parse_authz(
	       "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"test.example\"},"
	       "\"wildcard\":true,\"challenges\":[{\"type\":\"dns-01\",\"url\":\"https://ca/chal/1\","
	       "\"token\":\"abc_DEF-123\",\"status\":\"pending\"}]}",
	       &az, &e) == 0 &&
	       az.wildcard && strcmp(az.identifier, "test.example") == 0 && az.n_challenges == 1 &&
	       strcmp(az.challenges[0].token, "abc_DEF-123") == 0,
	   "wildcard authorization with a dns-01 challenge parsed");
	acme_authz_clear(&az);
	ok(acme_parse_authz(
	       "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"},"
	       "\"challenges\":[{\"type\":\"dns-01\",\"url\":\"https://ca/c\",\"token\":\"a.b\"}]}",
	       &az, &e) < 0,
	   "a token that is not base64url is refused");
	acme_problem_format(
	    "{\"type\":\"urn:ietf:params:acme:error:rejectedIdentifier\",\"detail\":\"no\\nway\","
	    "\"subproblems\":[{\"type\":\"urn:ietf:params:acme:error:caa\",\"detail\":\"CAA forbids\","
	    "\"identifier\":{\"type\":\"dns\",\"value\":\"x.example\"}}]}",
	    403, &p);
	is_str((const char *)p.data,
	       "urn:ietf:params:acme:error:rejectedIdentifier: no?way; x.example: "
	       "urn:ietf:params:acme:error:caa: "
	       "CAA forbids (HTTP 403)",
	       "problem document with a subproblem, control characters neutralised");
	buf_reset(&p);
	acme_problem_format("<html>", 502, &p);
	is_str((const char *)p.data, "HTTP 502", "a non-problem error body gives the status");
}

int main(void)
{
	test_thumbprints();
	test_rfc7515_a3();
	test_jws_body();
	test_dns01();
	test_csr();
	test_credentials();
	test_parsers();
	return tap_done();
}
