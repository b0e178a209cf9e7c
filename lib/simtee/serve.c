/*
 * serve.c — PCCS-shaped collateral server for a simtee PKI (see serve.h).
 *
 * Everything is read once at start; handlers only copy bytes. The TCB Info
 * and QE Identity bodies are served exactly as written by `simtee init`, so
 * the signed text reaches the client byte for byte. Root CRL is served as hex
 * text, as PCCS does; the PCK CRL as DER (the client asks encoding=der).
 */
#include "simtee/serve.h"

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/log.h"
#include "simtee/pki.h"

struct simtee_pccs {
	struct buf pck_crl, root_crl_hex, tcb_info, qe_identity;
	char *pck_chain_hdr, *tcb_chain_hdr;
};

static void pccs_free(void *p)
{
	struct simtee_pccs *s = p;

	buf_free(&s->pck_crl);
	buf_free(&s->root_crl_hex);
	buf_free(&s->tcb_info);
	buf_free(&s->qe_identity);
	free(s->pck_chain_hdr);
	free(s->tcb_chain_hdr);
	free(s);
}

static int slurp(struct buf *b, const char *dir, const char *name, struct err *e)
{
	char path[4096];
	_cleanup_free_ uint8_t *d = NULL;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (file_read_all(path, 4 << 20, &d, &n, e) < 0)
		return -1;
	buf_append(b, d, n);
	return 0;
}

/* Percent-encode everything but unreserved characters (RFC 3986). */
static char *url_encode(const struct buf *b)
{
	struct buf o = BUF_INIT;

	for (size_t i = 0; i < b->len; i++) {
		uint8_t c = b->data[i];
		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
			buf_putc(&o, c);
		else
			buf_printf(&o, "%%%02X", c);
	}
	size_t n;
	return (char *)buf_steal(&o, &n);
}

static int chain_header(const char *dir, const char *leaf, char **out, struct err *e)
{
	_cleanup_buf_ struct buf b = BUF_INIT;

	if (slurp(&b, dir, leaf, e) < 0 || slurp(&b, dir, "root_ca.pem", e) < 0)
		return -1;
	*out = url_encode(&b);
	return 0;
}

/* Value of `name` in a query string ("a=1&b=2"), copied into out. */
static bool query_param(const char *q, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);

	while (q && *q) {
		if (strncmp(q, name, nl) == 0 && q[nl] == '=') {
			const char *v = q + nl + 1;
			size_t l = strcspn(v, "&");
			if (l >= cap)
				return false;
			memcpy(out, v, l);
			out[l] = '\0';
			return true;
		}
		q = strchr(q, '&');
		if (q)
			q++;
	}
	return false;
}

static void handle(struct http_request *req, void *arg)
{
	struct simtee_pccs *s = arg;
	const char *path = http_req_path(req), *q = http_req_query(req);
	char v[64];

	if (strcmp(path, "/sgx/certification/v4/pckcrl") == 0) {
		if (!query_param(q, "ca", v, sizeof(v)) || strcasecmp(v, "platform") != 0) {
			http_respond_text(req, 404, "only ca=platform exists in this simulated PKI\n");
			return;
		}
		http_resp_header(req, "SGX-PCK-CRL-Issuer-Chain", s->pck_chain_hdr);
		http_respond(req, 200, "application/pkix-crl", s->pck_crl.data, s->pck_crl.len);
	} else if (strcmp(path, "/sgx/certification/v4/rootcacrl") == 0) {
		http_respond(req, 200, "text/plain", s->root_crl_hex.data, s->root_crl_hex.len);
	} else if (strcmp(path, "/tdx/certification/v4/tcb") == 0) {
		if (!query_param(q, "fmspc", v, sizeof(v)) || strcasecmp(v, SIMTEE_FMSPC) != 0) {
			http_respond_text(req, 404, "unknown FMSPC\n");
			return;
		}
		http_resp_header(req, "TCB-Info-Issuer-Chain", s->tcb_chain_hdr);
		http_respond(req, 200, "application/json", s->tcb_info.data, s->tcb_info.len);
	} else if (strcmp(path, "/tdx/certification/v4/qe/identity") == 0) {
		http_resp_header(req, "SGX-Enclave-Identity-Issuer-Chain", s->tcb_chain_hdr);
		http_respond(req, 200, "application/json", s->qe_identity.data, s->qe_identity.len);
	} else {
		http_respond_text(req, 404, "not found\n");
	}
}

int simtee_pccs_attach(struct http_server *srv, const char *dir, struct err *e)
{
	struct simtee_pccs *s = calloc(1, sizeof(*s));
	_cleanup_buf_ struct buf rcl = BUF_INIT;

	if (!s)
		return err_set(e, "out of memory");
	if (slurp(&s->pck_crl, dir, "pck_ca.crl", e) < 0 || slurp(&rcl, dir, "root_ca.crl", e) < 0 ||
	    slurp(&s->tcb_info, dir, "tcb_info.json", e) < 0 ||
	    slurp(&s->qe_identity, dir, "qe_identity.json", e) < 0 ||
	    chain_header(dir, "pck_ca.pem", &s->pck_chain_hdr, e) < 0 ||
	    chain_header(dir, "tcb_signing.pem", &s->tcb_chain_hdr, e) < 0) {
		pccs_free(s);
		return err_wrap(e, "simtee collateral in '%s'", dir);
	}
	buf_put_hex(&s->root_crl_hex, rcl.data, rcl.len);
	http_server_route_owned(srv, "GET", "/sgx/", true, handle, s, NULL);
	http_server_route_owned(srv, "GET", "/tdx/", true, handle, s, pccs_free);
	http_server_add_health(srv);
	return 0;
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopexit(arg, NULL);
}

int simtee_pccs_run(const char *dir, const char *listen, struct err *e)
{
	struct http_listen_spec spec;
	uint16_t port = 0;
	int rc = -1;

	if (http_listen_parse(listen, &spec, e) < 0)
		return err_wrap(e, "--listen");
	struct event_base *base = event_base_new();
	if (!base)
		return err_set(e, "event_base_new failed");
	struct http_server *srv = http_server_new(base, NULL, e);
	struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
	struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
	if (!srv || !sigint || !sigterm)
		goto out;
	if (simtee_pccs_attach(srv, dir, e) < 0 || http_server_listen(srv, &spec, NULL, &port, e) < 0)
		goto out;
	evsignal_add(sigint, NULL);
	evsignal_add(sigterm, NULL);
	/* One line on stdout so scripts and tests can learn the bound port. */
	printf("listening on %s (port %u)\n", listen, port);
	fflush(stdout);
	log_info("simtee PCCS serving %s on %s", dir, listen);
	event_base_dispatch(base);
	rc = 0;
out:
	if (sigint)
		event_free(sigint);
	if (sigterm)
		event_free(sigterm);
	http_server_free(srv);
	event_base_free(base);
	return rc;
}
