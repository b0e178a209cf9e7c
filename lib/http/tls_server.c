/*
 * tls_server.c — server TLS context from files and the logged listener
 * (see tls_server.h).
 */
#include "http/tls_server.h"

#include <stdio.h>

#include "core/cleanup.h"
#include "core/log.h"

SSL_CTX *http_tls_server_ctx(const struct http_tls_files *f, struct err *e)
{
	_cleanup_(SSL_CTX_freep) SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx)
		return err_ssl(e, "SSL_CTX_new"), NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, f->certs) != 1)
		return err_ssl(e, "%s.certs %s", f->section, f->certs), NULL;
	if (SSL_CTX_use_PrivateKey_file(ctx, f->key, SSL_FILETYPE_PEM) != 1)
		return err_ssl(e, "%s.key %s", f->section, f->key), NULL;
	if (SSL_CTX_check_private_key(ctx) != 1)
		return err_ssl(e, "%s.key %s does not match %s.certs", f->section, f->key, f->section), NULL;
	if (f->ca_certs && *f->ca_certs) {
		if (SSL_CTX_load_verify_locations(ctx, f->ca_certs, NULL) != 1)
			return err_ssl(e, "%s.mutual.ca_certs %s", f->section, f->ca_certs), NULL;
		SSL_CTX_set_verify(
		    ctx, SSL_VERIFY_PEER | (f->mandatory ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
		SSL_CTX_set_verify_depth(ctx, f->verify_depth);
	}
	return TAKE_PTR(ctx);
}

static void describe(const struct http_listen_spec *s, uint16_t bound, char *out, size_t n)
{
	switch (s->kind) {
	case HTTP_LISTEN_UNIX:
		snprintf(out, n, "unix:%s", s->path);
		break;
	case HTTP_LISTEN_VSOCK:
		if (s->cid == HTTP_VSOCK_CID_ANY)
			snprintf(out, n, "vsock:any:%u", bound);
		else
			snprintf(out, n, "vsock:%u:%u", s->cid, bound);
		break;
	default:
		snprintf(out, n, "%s:%u", *s->host ? s->host : "0.0.0.0", bound);
	}
}

int http_server_listen_logged(struct http_server *srv, const struct http_listen_spec *spec, SSL_CTX *tls,
			      const char *what, struct err *e)
{
	char where[300];
	uint16_t bound = spec->port;

	if (http_server_listen(srv, spec, tls, &bound, e) < 0) {
		describe(spec, spec->port, where, sizeof(where));
		return err_wrap(e, "%s listener %s", what, where);
	}
	describe(spec, bound, where, sizeof(where));
	log_info("%s listening on %s", what, where);
	return 0;
}
