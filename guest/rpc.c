/*
 * rpc.c — DstackGuest, Tappd and Worker handlers: argument checks with the
 * reference's error strings, then agent.h operations, then the reply
 * message. Handlers that quote or sign certificates run on pool threads
 * (PRPC_METHOD_BLOCKING); agent.h serialises the TEE access.
 */
#include "rpc.h"

#include <stdlib.h>
#include <string.h>

#include "agent_rpc.pb-c.h"
#include "codec/base64.h"
#include "codec/pem.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/mem.h"
#include "crypto/appkeys.h"
#include "crypto/ecx.h"
#include "crypto/hash.h"
#include "crypto/k256.h"
#include "crypto/kdf.h"
#include "google/protobuf/empty.pb-c.h"
#include "ratls/cert.h"

#define AGENT_REV ""

/* ---- reply helpers ---- */

static int set_bytes(ProtobufCBinaryData *b, const void *p, size_t n, struct err *e)
{
	b->data = malloc(n ? n : 1);
	if (!b->data)
		return err_set(e, "out of memory");
	if (n)
		memcpy(b->data, p, n);
	b->len = n;
	return 0;
}

static int set_str(char **s, const char *v, struct err *e)
{
	*s = strdup(v ? v : "");
	return *s ? 0 : err_set(e, "out of memory");
}

static int bytes_list(ProtobufCBinaryData **arr, size_t *n, size_t count, struct err *e)
{
	*arr = calloc(count, sizeof(**arr));
	if (!*arr)
		return err_set(e, "out of memory");
	*n = count;
	return 0;
}

static struct agent *agent_of(struct prpc_call *call)
{
	return prpc_call_arg(call);
}

/* report_data of GetQuote / Attest: at most 64 bytes, right zero-padded. */
static int raw_report_data(const ProtobufCBinaryData *in, uint8_t out[64], struct err *e)
{
	if (in->len > 64)
		return err_set(e, "Report data is too long");
	memset(out, 0, 64);
	if (in->len)
		memcpy(out, in->data, in->len);
	return 0;
}

/* ---- key derivation ---- */

struct derived_key {
	uint8_t key[32];
	uint8_t pub[33];
	size_t pub_len;
	uint8_t sig0[65];
};

static int derive(struct agent *a, const char *path, const char *purpose, enum getkey_alg alg,
		  struct derived_key *d, struct err *e)
{
	if (guest_get_key(a->keys.k256_key, path, strlen(path), d->key, e) < 0 ||
	    getkey_public(alg, d->key, d->pub, &d->pub_len, e) < 0 ||
	    getkey_signature(a->keys.k256_key, purpose, d->pub, d->pub_len, d->sig0, e) < 0) {
		secure_zero(d, sizeof(*d));
		return -1;
	}
	return 0;
}

/* [sig0, k256_signature] */
static int key_chain(struct agent *a, const struct derived_key *d, ProtobufCBinaryData **arr, size_t *n,
		     struct err *e)
{
	if (bytes_list(arr, n, 2, e) < 0 || set_bytes(&(*arr)[0], d->sig0, 65, e) < 0 ||
	    set_bytes(&(*arr)[1], a->keys.k256_signature, a->keys.has_k256_signature ? 65 : 0, e) < 0)
		return -1;
	return 0;
}

/* Derive the key named by `in` and fill the key bytes and its signature
 * chain of a GetKey-shaped reply. */
static int key_reply(struct prpc_call *call, const DstackGuest__GetKeyArgs *in, ProtobufCBinaryData *key,
		     ProtobufCBinaryData **chain, size_t *n_chain, struct err *e)
{
	struct agent *a = agent_of(call);
	enum getkey_alg alg;
	struct derived_key d;
	int rc = -1;

	if (getkey_alg_parse(in->algorithm, &alg) < 0)
		return err_set(e, "Unsupported algorithm");
	if (derive(a, in->path, in->purpose, alg, &d, e) < 0)
		return err_wrap(e, "Failed to derive key");
	if (set_bytes(key, d.key, 32, e) == 0 && key_chain(a, &d, chain, n_chain, e) == 0)
		rc = 0;
	secure_zero(&d, sizeof(d));
	return rc;
}

static int get_key(struct prpc_call *call, const void *in, void *out_, struct err *e)
{
	DstackGuest__GetKeyResponse *out = out_;

	return key_reply(call, in, &out->key, &out->signature_chain, &out->n_signature_chain, e);
}

static int derive_k256_key(struct prpc_call *call, const void *in, void *out_, struct err *e)
{
	DstackGuest__DeriveK256KeyResponse *out = out_;

	return key_reply(call, in, &out->k256_key, &out->k256_signature_chain, &out->n_k256_signature_chain,
			 e);
}

/* ---- quotes ---- */

static int fill_quote(struct agent *a, const uint8_t rd[64], bool with_attestation,
		      DstackGuest__GetQuoteResponse *out, struct err *e)
{
	struct attestation att;
	int rc = -1;

	if (agent_attestation(a, rd, &att, e) < 0)
		return -1;
	out->event_log = agent_quote_event_log(&att, e);
	if (!out->event_log || set_bytes(&out->quote, att.quote, att.quote_len, e) < 0 ||
	    set_bytes(&out->report_data, rd, 64, e) < 0 || set_str(&out->vm_config, a->vm_config, e) < 0)
		goto done;
	if (with_attestation) {
		_cleanup_(buf_freep) struct buf b = {0};
		if (attestation_encode(&att, &b, e) < 0 || set_bytes(&out->attestation, b.data, b.len, e) < 0)
			goto done;
		out->_attestation_case = DSTACK_GUEST__GET_QUOTE_RESPONSE___ATTESTATION_ATTESTATION;
	}
	rc = 0;
done:
	attestation_free(&att);
	return rc;
}

static int get_quote(struct prpc_call *call, const void *in_, void *out_, struct err *e)
{
	const DstackGuest__RawQuoteArgs *in = in_;
	struct agent *a = agent_of(call);
	uint8_t rd[64];

	if (raw_report_data(&in->report_data, rd, e) < 0)
		return -1;
	/* The reference simulator also returns the attestation; so does ours. */
	return fill_quote(a, rd, a->simulator, out_, e);
}

static int attest(struct prpc_call *call, const void *in_, void *out_, struct err *e)
{
	const DstackGuest__RawQuoteArgs *in = in_;
	DstackGuest__AttestResponse *out = out_;
	uint8_t rd[64];
	struct attestation att;
	_cleanup_(buf_freep) struct buf b = {0};

	if (raw_report_data(&in->report_data, rd, e) < 0 ||
	    agent_attestation(agent_of(call), rd, &att, e) < 0)
		return -1;
	int rc = attestation_encode(&att, &b, e);
	attestation_free(&att);
	if (rc < 0)
		return -1;
	return set_bytes(&out->attestation, b.data, b.len, e);
}

/* ---- certificates ---- */

static int reply_cert(struct agent *a, EVP_PKEY *key, const struct tls_cert_req *r,
		      DstackGuest__GetTlsKeyResponse *out, struct err *e)
{
	char **chain = NULL;
	size_t n = 0;
	if (agent_issue_cert(a, key, r, &chain, &n, e) < 0)
		return err_wrap(e, "Failed to issue certificate");
	out->certificate_chain = chain;
	out->n_certificate_chain = n;
	out->key = pem_write_private_key(key, e);
	return out->key ? 0 : -1;
}

static int get_tls_key(struct prpc_call *call, const void *in_, void *out_, struct err *e)
{
	const DstackGuest__GetTlsKeyArgs *in = in_;
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = ratls_key_generate(e);
	struct tls_cert_req r = {
	    .subject = in->subject,
	    .alt_names = (const char *const *)in->alt_names,
	    .n_alt_names = in->n_alt_names,
	    .usage_ra_tls = in->usage_ra_tls,
	    .usage_server_auth = in->usage_server_auth,
	    .usage_client_auth = in->usage_client_auth,
	    .with_app_info = in->with_app_info,
	    .has_not_before = in->_not_before_case == DSTACK_GUEST__GET_TLS_KEY_ARGS___NOT_BEFORE_NOT_BEFORE,
	    .not_before = in->not_before,
	    .has_not_after = in->_not_after_case == DSTACK_GUEST__GET_TLS_KEY_ARGS___NOT_AFTER_NOT_AFTER,
	    .not_after = in->not_after,
	};
	if (!key)
		return -1;
	return reply_cert(agent_of(call), key, &r, out_, e);
}

static int derive_key_tappd(struct prpc_call *call, const void *in_, void *out_, struct err *e)
{
	const DstackGuest__DeriveKeyArgs *in = in_;
	struct agent *a = agent_of(call);
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
	struct tls_cert_req r = {
	    .subject = in->subject,
	    .alt_names = (const char *const *)in->alt_names,
	    .n_alt_names = in->n_alt_names,
	    .usage_ra_tls = in->usage_ra_tls,
	    .usage_server_auth = in->usage_server_auth,
	    .usage_client_auth = in->usage_client_auth,
	};
	if (in->random_seed) {
		key = ratls_key_generate(e);
	} else {
		uint8_t d[32];
		if (guest_get_key(a->keys.k256_key, in->path, strlen(in->path), d, e) < 0)
			return err_wrap(e, "Failed to derive key");
		if (!p256_scalar_valid(d)) {
			secure_zero(d, sizeof(d));
			return err_set(e, "Failed to derive key: not a valid P-256 scalar");
		}
		key = p256_pkey_from_scalar(d, e);
		secure_zero(d, sizeof(d));
	}
	if (!key)
		return -1;
	return reply_cert(a, key, &r, out_, e);
}

/* ---- info ---- */

static int fill_info(struct agent *a, DstackGuest__AppInfo *out, bool worker, struct err *e)
{
	struct agent_info i;
	if (agent_info(a, &i, e) < 0)
		return err_wrap(e, "Failed to get app info");
	bool show = !worker || agent_compose_flag(a, "public_tcbinfo", true);
	int rc = -1;
	char *vendor = agent_dmi(a, "sys_vendor"), *product = agent_dmi(a, "product_name");
	if (set_bytes(&out->app_id, i.ai.app_id.p, i.ai.app_id.len, e) == 0 &&
	    set_bytes(&out->instance_id, i.ai.instance_id.p, i.ai.instance_id.len, e) == 0 &&
	    set_str(&out->app_cert, "", e) == 0 && set_str(&out->tcb_info, show ? i.tcb_info : "", e) == 0 &&
	    set_str(&out->app_name, agent_app_name(a), e) == 0 &&
	    set_bytes(&out->device_id, i.ai.device_id.p, i.ai.device_id.len, e) == 0 &&
	    set_bytes(&out->mr_aggregated, i.ai.mr_aggregated.p, i.ai.mr_aggregated.len, e) == 0 &&
	    set_bytes(&out->os_image_hash, i.ai.os_image_hash.p, i.ai.os_image_hash.len, e) == 0 &&
	    set_str(&out->key_provider_info, i.key_provider_info, e) == 0 &&
	    set_bytes(&out->compose_hash, i.ai.compose_hash.p, i.ai.compose_hash.len, e) == 0 &&
	    set_str(&out->vm_config, show ? a->vm_config : "", e) == 0)
		rc = 0;
	if (rc == 0) {
		out->cloud_vendor = vendor;
		out->cloud_product = product;
	} else {
		free(vendor);
		free(product);
	}
	agent_info_free(&i);
	return rc;
}

static int info(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	return fill_info(agent_of(call), out, false, e);
}

static int worker_info(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	return fill_info(agent_of(call), out, true, e);
}

static int version(struct prpc_call *call, const void *in, void *out_, struct err *e)
{
	DstackGuest__WorkerVersion *out = out_;
	if (set_str(&out->version, DSTACK_VERSION, e) < 0 || set_str(&out->rev, AGENT_REV, e) < 0)
		return -1;
	return 0;
}

static int gpu_info(struct prpc_call *call, const void *in, void *out_, struct err *e)
{
	DstackGuest__GpuInfoResponse *out = out_;
	uint8_t *d = NULL;
	size_t n = 0;
	if (file_read_all(agent_of(call)->cfg.gpu_attestation_file, 16 * 1024 * 1024, &d, &n, NULL) < 0)
		return set_str(&out->attestation, "", e);
	out->attestation = (char *)d;
	return 0;
}

static int emit_event(struct prpc_call *call, const void *in_, void *out, struct err *e)
{
	const DstackGuest__EmitEventArgs *in = in_;
	if (!in->event || !*in->event)
		return err_set(e, "Event name cannot be empty");
	if (agent_emit_event(agent_of(call), in->event, in->payload.data, in->payload.len, e) < 0)
		return err_wrap(e, "Failed to emit event");
	return 0;
}

/* ---- Sign / Verify ---- */

enum sign_alg { SIGN_ED25519, SIGN_K256, SIGN_K256_PREHASHED };

static int sign_alg_parse(const char *s, enum sign_alg *out)
{
	if (strcmp(s, "ed25519") == 0)
		*out = SIGN_ED25519;
	else if (strcmp(s, "secp256k1") == 0 || strcmp(s, "k256") == 0)
		*out = SIGN_K256;
	else if (strcmp(s, "secp256k1_prehashed") == 0)
		*out = SIGN_K256_PREHASHED;
	else
		return -1;
	return 0;
}

static int prehashed_len(size_t n, struct err *e)
{
	if (n != 32)
		return err_set(e, "Pre-hashed signing requires a 32-byte digest, but received %zu bytes", n);
	return 0;
}

static int sign(struct prpc_call *call, const void *in_, void *out_, struct err *e)
{
	const DstackGuest__SignRequest *in = in_;
	DstackGuest__SignResponse *out = out_;
	struct agent *a = agent_of(call);
	enum sign_alg alg;
	struct derived_key d;
	uint8_t sig[64], digest[32];
	int rc = -1;

	if (sign_alg_parse(in->algorithm, &alg) < 0)
		return err_set(e, "Unsupported algorithm");
	if (alg == SIGN_K256_PREHASHED && prehashed_len(in->data.len, e) < 0)
		return -1;
	if (derive(a, "vms", "signing", alg == SIGN_ED25519 ? GETKEY_ED25519 : GETKEY_SECP256K1, &d, e) < 0)
		return err_wrap(e, "Failed to derive key");
	if (alg == SIGN_ED25519) {
		rc = ed25519_sign(d.key, in->data.data, in->data.len, sig, e);
	} else {
		if (alg == SIGN_K256)
			sha256(in->data.data, in->data.len, digest);
		else
			memcpy(digest, in->data.data, 32);
		rc = k256_sign(d.key, digest, sig, e);
	}
	if (rc == 0) {
		rc = -1;
		if (set_bytes(&out->signature, sig, 64, e) == 0 &&
		    set_bytes(&out->public_key, d.pub, d.pub_len, e) == 0 &&
		    bytes_list(&out->signature_chain, &out->n_signature_chain, 3, e) == 0 &&
		    set_bytes(&out->signature_chain[0], sig, 64, e) == 0 &&
		    set_bytes(&out->signature_chain[1], d.sig0, 65, e) == 0 &&
		    set_bytes(&out->signature_chain[2], a->keys.k256_signature,
			      a->keys.has_k256_signature ? 65 : 0, e) == 0)
			rc = 0;
	}
	secure_zero(&d, sizeof(d));
	return rc;
}

static int verify(struct prpc_call *call, const void *in_, void *out_, struct err *e)
{
	const DstackGuest__VerifyRequest *in = in_;
	DstackGuest__VerifyResponse *out = out_;
	enum sign_alg alg;
	uint8_t digest[32];
	int v;

	if (sign_alg_parse(in->algorithm, &alg) < 0)
		return err_set(e, "Unsupported algorithm");
	if (alg == SIGN_ED25519) {
		if (in->public_key.len != 32)
			return err_set(e, "Invalid public key: expected 32 bytes, got %zu",
				       in->public_key.len);
		if (in->signature.len != 64)
			return err_set(e, "Invalid signature: expected 64 bytes, got %zu", in->signature.len);
		v = ed25519_verify(in->public_key.data, in->data.data, in->data.len, in->signature.data, e);
	} else {
		if (alg == SIGN_K256_PREHASHED) {
			if (prehashed_len(in->data.len, e) < 0)
				return -1;
			memcpy(digest, in->data.data, 32);
		} else {
			sha256(in->data.data, in->data.len, digest);
		}
		if (in->public_key.len != 33 && in->public_key.len != 65)
			return err_set(e, "Invalid public key: expected 33 or 65 bytes, got %zu",
				       in->public_key.len);
		if (in->signature.len != 64 && in->signature.len != 65)
			return err_set(e, "Invalid signature: expected 64 bytes, got %zu", in->signature.len);
		v = k256_verify(in->public_key.data, in->public_key.len, digest, in->signature.data,
				in->signature.len, e);
	}
	if (v < 0)
		return err_wrap(e, "Verification failed");
	out->valid = v == 1;
	return 0;
}

/* ---- Tappd quotes ---- */

int tappd_report_data(const uint8_t *data, size_t len, const char *hash_algorithm, const char *prefix,
		      uint8_t out[64], const char **algo_echo, const char **prefix_echo, struct err *e)
{
	enum hash_alg alg;
	const char *name = hash_algorithm && *hash_algorithm ? hash_algorithm : "sha512";

	if (strcmp(name, "raw") == 0) {
		if (len != 64)
			return err_set(
			    e, "Report data must be exactly 64 bytes for the raw hash algorithm, got %zu",
			    len);
		memcpy(out, data, 64);
		*algo_echo = "raw";
		*prefix_echo = "";
		return 0;
	}
	if (hash_alg_parse(name, &alg) < 0)
		return err_set(e, "Unsupported hash algorithm: %s", name);
	const char *tag = prefix && *prefix ? prefix : "app-data";
	if (report_data_tagged(alg, tag, data, len, out, e) < 0)
		return -1;
	*algo_echo = name;
	*prefix_echo = tag;
	return 0;
}

static int tappd_fill(struct agent *a, const uint8_t rd[64], const char *algo, const char *prefix,
		      DstackGuest__TdxQuoteResponse *out, struct err *e)
{
	struct attestation att;
	if (agent_attestation(a, rd, &att, e) < 0)
		return -1;
	int rc = -1;
	out->event_log = agent_quote_event_log(&att, e);
	if (out->event_log && set_bytes(&out->quote, att.quote, att.quote_len, e) == 0 &&
	    set_str(&out->hash_algorithm, algo, e) == 0 && set_str(&out->prefix, prefix, e) == 0)
		rc = 0;
	attestation_free(&att);
	return rc;
}

static int tdx_quote(struct prpc_call *call, const void *in_, void *out_, struct err *e)
{
	const DstackGuest__TdxQuoteArgs *in = in_;
	uint8_t rd[64];
	const char *algo, *prefix;
	if (tappd_report_data(in->report_data.data, in->report_data.len, in->hash_algorithm, in->prefix, rd,
			      &algo, &prefix, e) < 0)
		return -1;
	return tappd_fill(agent_of(call), rd, algo, prefix, out_, e);
}

/* TdxQuote with hash_algorithm "raw" (guest.md §1.4): exactly 64 bytes. */
static int raw_quote(struct prpc_call *call, const void *in_, void *out_, struct err *e)
{
	const DstackGuest__RawQuoteArgs *in = in_;
	uint8_t rd[64];
	const char *algo, *prefix;
	if (tappd_report_data(in->report_data.data, in->report_data.len, "raw", NULL, rd, &algo, &prefix, e) <
	    0)
		return -1;
	return tappd_fill(agent_of(call), rd, algo, prefix, out_, e);
}

/* ---- Worker ---- */

int dip1_report_data(const uint8_t app_k256[32], const char *algorithm, uint8_t out[64], char *text,
		     size_t text_size, struct err *e)
{
	enum getkey_alg alg;
	uint8_t key[32], pub[33];
	size_t pub_len;
	const char *prefix;

	if (getkey_alg_parse(algorithm, &alg) < 0)
		return err_set(e, "Unsupported algorithm");
	prefix = alg == GETKEY_ED25519 ? "dip1::ed25519-pk:" : "dip1::secp256k1c-pk:";
	if (guest_get_key(app_k256, "vms", 3, key, e) < 0 || getkey_public(alg, key, pub, &pub_len, e) < 0) {
		secure_zero(key, sizeof(key));
		return -1;
	}
	secure_zero(key, sizeof(key));
	_cleanup_free_ char *b64 = base64url_encode(pub, pub_len);
	if (!b64)
		return err_set(e, "out of memory");
	size_t bl = strlen(b64);
	while (bl && b64[bl - 1] == '=')
		b64[--bl] = 0;
	size_t pl = strlen(prefix);
	if (pl + bl > 64)
		return err_set(e, "report data too long");
	memset(out, 0, 64);
	memcpy(out, prefix, pl);
	memcpy(out + pl, b64, bl);
	if (text && text_size)
		snprintf(text, text_size, "%s%s", prefix, b64);
	return 0;
}

static int attestation_for_app_key(struct prpc_call *call, const void *in_, void *out_, struct err *e)
{
	const DstackGuest__GetAttestationForAppKeyRequest *in = in_;
	struct agent *a = agent_of(call);
	uint8_t rd[64];
	if (dip1_report_data(a->keys.k256_key, in->algorithm, rd, NULL, 0, e) < 0)
		return -1;
	return fill_quote(a, rd, false, out_, e);
}

/* ---- tables ---- */

static const char *const quote_omit[] = {"attestation", NULL};

static const struct prpc_method dstack_methods[] = {
    PRPC_METHOD_BLOCKING("GetTlsKey", dstack_guest__get_tls_key_args, dstack_guest__get_tls_key_response,
			 get_tls_key),
    PRPC_METHOD("GetKey", dstack_guest__get_key_args, dstack_guest__get_key_response, get_key),
    {.name = "GetQuote",
     .input = &dstack_guest__raw_quote_args__descriptor,
     .output = &dstack_guest__get_quote_response__descriptor,
     .handler = get_quote,
     .blocking = true,
     .omit_if_empty = quote_omit},
    PRPC_METHOD_BLOCKING("Attest", dstack_guest__raw_quote_args, dstack_guest__attest_response, attest),
    PRPC_METHOD_BLOCKING("EmitEvent", dstack_guest__emit_event_args, google__protobuf__empty, emit_event),
    PRPC_METHOD_BLOCKING("Info", google__protobuf__empty, dstack_guest__app_info, info),
    PRPC_METHOD_BLOCKING("GpuInfo", google__protobuf__empty, dstack_guest__gpu_info_response, gpu_info),
    PRPC_METHOD("Sign", dstack_guest__sign_request, dstack_guest__sign_response, sign),
    PRPC_METHOD("Verify", dstack_guest__verify_request, dstack_guest__verify_response, verify),
    PRPC_METHOD("Version", google__protobuf__empty, dstack_guest__worker_version, version),
};

static const struct prpc_method tappd_methods[] = {
    PRPC_METHOD_BLOCKING("DeriveKey", dstack_guest__derive_key_args, dstack_guest__get_tls_key_response,
			 derive_key_tappd),
    PRPC_METHOD("DeriveK256Key", dstack_guest__get_key_args, dstack_guest__derive_k256_key_response,
		derive_k256_key),
    PRPC_METHOD_BLOCKING("TdxQuote", dstack_guest__tdx_quote_args, dstack_guest__tdx_quote_response,
			 tdx_quote),
    PRPC_METHOD_BLOCKING("RawQuote", dstack_guest__raw_quote_args, dstack_guest__tdx_quote_response,
			 raw_quote),
    PRPC_METHOD_BLOCKING("Info", google__protobuf__empty, dstack_guest__app_info, info),
    PRPC_METHOD("Version", google__protobuf__empty, dstack_guest__worker_version, version),
};

static const struct prpc_method worker_methods[] = {
    PRPC_METHOD_BLOCKING("Info", google__protobuf__empty, dstack_guest__app_info, worker_info),
    PRPC_METHOD("Version", google__protobuf__empty, dstack_guest__worker_version, version),
    {.name = "GetAttestationForAppKey",
     .input = &dstack_guest__get_attestation_for_app_key_request__descriptor,
     .output = &dstack_guest__get_quote_response__descriptor,
     .handler = attestation_for_app_key,
     .blocking = true,
     .omit_if_empty = quote_omit},
};

static const char *const dstack_prefixes[] = {"DstackGuest.", NULL};
static const char *const tappd_prefixes[] = {"Tappd.", NULL};
static const char *const worker_prefixes[] = {"Worker.", NULL};

static int mount(struct http_server *srv, const char *at, size_t slot, const char *name,
		 const char *const *prefixes, const struct prpc_method *m, size_t n, struct agent *a,
		 struct err *e)
{
	a->svc[slot] = (struct prpc_service){name, prefixes, m, n, a};
	a->svc_list[slot] = &a->svc[slot];
	return prpc_mount(srv, at, &a->svc_list[slot], 1, e);
}

int agent_mount_dstack(struct http_server *srv, struct agent *a, struct err *e)
{
	return mount(srv, "/", 0, "DstackGuest", dstack_prefixes, dstack_methods, ARRAY_SIZE(dstack_methods),
		     a, e);
}

int agent_mount_tappd(struct http_server *srv, struct agent *a, struct err *e)
{
	return mount(srv, "/prpc/", 1, "Tappd", tappd_prefixes, tappd_methods, ARRAY_SIZE(tappd_methods), a,
		     e);
}

int agent_mount_worker(struct http_server *srv, struct agent *a, struct err *e)
{
	return mount(srv, "/prpc/", 2, "Worker", worker_prefixes, worker_methods, ARRAY_SIZE(worker_methods),
		     a, e);
}
