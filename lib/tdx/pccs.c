/*
 * pccs.c — PCCS collateral client with memory and disk caches (see pccs.h).
 *
 * One mutex guards the cache; a cold fetch holds it, so concurrent
 * verifications of the same new platform fetch once. Checked collateral that
 * gets replaced is retired, not freed, because other threads may still hold
 * the pointer; retired entries are freed with the client.
 */
#include "tdx/pccs.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/log.h"
#include "http/client.h"

struct entry {
	char key[48];
	struct dcap_collateral *checked;
};

struct pccs_client {
	char *base;
	char *cache_dir;
	X509 *root;
	pthread_mutex_t mu;
	bool mu_ready;
	struct entry *entries;
	size_t n_entries;
	struct dcap_collateral **retired;
	size_t n_retired;
	unsigned long fetches;
};

int pccs_client_new(struct pccs_client **out, const char *base_url, const char *cache_dir, X509 *root,
		    struct err *e)
{
	struct pccs_client *c = calloc(1, sizeof(*c));
	const char *b = base_url && *base_url ? base_url : PCCS_DEFAULT_URL;

	*out = NULL;
	if (!c || !(c->base = strdup(b)) || (cache_dir && !(c->cache_dir = strdup(cache_dir)))) {
		pccs_client_free(c);
		return err_set(e, "out of memory");
	}
	size_t bl = strlen(c->base);
	while (bl > 0 && c->base[bl - 1] == '/')
		c->base[--bl] = '\0';
	if (root) {
		X509_up_ref(root);
		c->root = root;
	}
	if (cache_dir && mkdir_p(cache_dir, 0700, e) < 0) {
		pccs_client_free(c);
		return err_wrap(e, "PCCS cache");
	}
	pthread_mutex_init(&c->mu, NULL);
	c->mu_ready = true;
	*out = c;
	return 0;
}

void pccs_client_free(struct pccs_client *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_entries; i++)
		dcap_collateral_free(c->entries[i].checked);
	for (size_t i = 0; i < c->n_retired; i++)
		dcap_collateral_free(c->retired[i]);
	free(c->entries);
	free(c->retired);
	X509_free(c->root);
	free(c->base);
	free(c->cache_dir);
	if (c->mu_ready)
		pthread_mutex_destroy(&c->mu);
	free(c);
}

unsigned long pccs_client_fetch_count(struct pccs_client *c)
{
	pthread_mutex_lock(&c->mu);
	unsigned long n = c->fetches;
	pthread_mutex_unlock(&c->mu);
	return n;
}

/* ---- network ---- */

static char *url_decode(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(n + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
		    isxdigit((unsigned char)s[i + 2])) {
			char h[3] = {s[i + 1], s[i + 2], 0};
			*o++ = (char)strtol(h, NULL, 16);
			i += 2;
		} else {
			*o++ = s[i]; /* '+' stays: base64 uses it */
		}
	}
	*o = '\0';
	return out;
}

static int get(struct pccs_client *c, const char *path, const char *chain_header,
	       const char *chain_header_alt, struct http_response *resp, char **chain, struct err *e)
{
	char url[2048];
	struct http_client_opts o = {.connect_timeout_ms = 5000, .timeout_ms = 30000, .max_body = 4 << 20};

	snprintf(url, sizeof(url), "%s%s", c->base, path);
	memset(resp, 0, sizeof(*resp));
	c->fetches++;
	if (http_fetch(&o, "GET", url, NULL, NULL, 0, resp, e) < 0)
		return err_wrap(e, "GET %s", url);
	if (resp->status != 200) {
		err_set(e, "GET %s: HTTP %ld", url, resp->status);
		http_response_free(resp);
		return -1;
	}
	if (chain_header) {
		_cleanup_free_ char *h = http_response_header(resp, chain_header);
		if (!h && chain_header_alt)
			h = http_response_header(resp, chain_header_alt);
		if (!h || !(*chain = url_decode(h))) {
			http_response_free(resp);
			return err_set(e, "GET %s: missing %s header", url, chain_header);
		}
	}
	return 0;
}

/* CRL body: DER, PEM, or hex text of DER (PCCS variants). */
static int crl_body(const struct buf *b, uint8_t **out, size_t *len, struct err *e)
{
	if (b->len > 0 && b->data[0] == 0x30) {
		*out = malloc(b->len);
		if (!*out)
			return err_set(e, "out of memory");
		memcpy(*out, b->data, b->len);
		*len = b->len;
		return 0;
	}
	if (b->len > 10 && memcmp(b->data, "-----BEGIN", 10) == 0) {
		_cleanup_(BIO_free_allp) BIO *bio = BIO_new_mem_buf(b->data, (int)b->len);
		_cleanup_(X509_CRL_freep) X509_CRL *crl =
		    bio ? PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL) : NULL;
		unsigned char *der = NULL;
		int n = crl ? i2d_X509_CRL(crl, &der) : -1;
		if (n <= 0)
			return err_ssl(e, "PEM CRL");
		*out = der;
		*len = (size_t)n;
		return 0;
	}
	size_t n = b->len;
	while (n > 0 && isspace(b->data[n - 1]))
		n--;
	return hex_decode_alloc((const char *)b->data, n, out, len, e);
}

/* Cut the raw text of the object under `key` out of a JSON body. */
static char *raw_member(const char *body, const char *key, struct err *e)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	if (!(p = strstr(body, pat)))
		goto bad;
	p += strlen(pat);
	while (isspace((unsigned char)*p))
		p++;
	if (*p++ != ':')
		goto bad;
	while (isspace((unsigned char)*p))
		p++;
	if (*p != '{')
		goto bad;
	const char *start = p;
	int depth = 0;
	bool in_str = false;
	for (; *p; p++) {
		if (in_str) {
			if (*p == '\\' && p[1])
				p++;
			else if (*p == '"')
				in_str = false;
		} else if (*p == '"') {
			in_str = true;
		} else if (*p == '{') {
			depth++;
		} else if (*p == '}' && --depth == 0) {
			return strndup(start, (size_t)(p - start + 1));
		}
	}
bad:
	err_set(e, "response has no '%s' object", key);
	return NULL;
}

static int signed_doc(const struct buf *b, const char *key, char **text, char **sig, struct err *e)
{
	json_error_t je;
	_cleanup_json_ json_t *o = json_loadb((const char *)b->data, b->len, 0, &je);
	json_t *s = json_object_get(o, "signature");

	if (!json_is_string(s))
		return err_set(e, "response is not {%s, signature}", key);
	if (!(*text = raw_member((const char *)b->data, key, e)))
		return -1;
	if (!(*sig = strdup(json_string_value(s))))
		return err_set(e, "out of memory");
	return 0;
}

static int fetch_network(struct pccs_client *c, bool tdx, const char *fmspc, enum pck_ca_type ca,
			 struct dcap_collateral_raw *r, struct err *e)
{
	char path[256];
	const char *tee = tdx ? "tdx" : "sgx";
	struct http_response resp;

	memset(r, 0, sizeof(*r));
	snprintf(path, sizeof(path), "/sgx/certification/v4/pckcrl?ca=%s&encoding=der", pck_ca_type_name(ca));
	if (get(c, path, "SGX-PCK-CRL-Issuer-Chain", NULL, &resp, &r->pck_crl_issuer_chain, e) < 0)
		goto fail;
	int rc = crl_body(&resp.body, &r->pck_crl, &r->pck_crl_len, e);
	http_response_free(&resp);
	if (rc < 0)
		goto fail;

	if (get(c, "/sgx/certification/v4/rootcacrl", NULL, NULL, &resp, NULL, e) < 0)
		goto fail;
	rc = crl_body(&resp.body, &r->root_ca_crl, &r->root_ca_crl_len, e);
	http_response_free(&resp);
	if (rc < 0)
		goto fail;

	snprintf(path, sizeof(path), "/%s/certification/v4/tcb?fmspc=%s", tee, fmspc);
	if (get(c, path, "TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain", &resp,
		&r->tcb_info_issuer_chain, e) < 0)
		goto fail;
	rc = signed_doc(&resp.body, "tcbInfo", &r->tcb_info, &r->tcb_info_signature, e);
	http_response_free(&resp);
	if (rc < 0)
		goto fail;

	snprintf(path, sizeof(path), "/%s/certification/v4/qe/identity?update=standard", tee);
	if (get(c, path, "SGX-Enclave-Identity-Issuer-Chain", NULL, &resp, &r->qe_identity_issuer_chain, e) <
	    0)
		goto fail;
	rc = signed_doc(&resp.body, "enclaveIdentity", &r->qe_identity, &r->qe_identity_signature, e);
	http_response_free(&resp);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	dcap_collateral_raw_free(r);
	return err_wrap(e, "PCCS %s", c->base);
}

/* ---- cache ---- */

static void cache_path(const struct pccs_client *c, const char *key, char *out, size_t cap)
{
	snprintf(out, cap, "%s/collateral-%s.json", c->cache_dir, key);
}

static int disk_load(struct pccs_client *c, const char *key, struct dcap_collateral_raw *r)
{
	char path[4096];
	_cleanup_free_ uint8_t *d = NULL;
	size_t n;

	if (!c->cache_dir)
		return -1;
	cache_path(c, key, path, sizeof(path));
	if (file_read_all(path, 4 << 20, &d, &n, NULL) < 0)
		return -1;
	return dcap_collateral_raw_from_json((const char *)d, n, r, NULL);
}

static void disk_store(struct pccs_client *c, const char *key, const struct dcap_collateral_raw *r)
{
	char path[4096];
	struct err e = ERR_INIT;
	_cleanup_free_ char *j = NULL;

	if (!c->cache_dir || !(j = dcap_collateral_raw_to_json(r)))
		return;
	cache_path(c, key, path, sizeof(path));
	if (file_write_atomic(path, j, strlen(j), 0644, &e) < 0)
		log_warn("PCCS cache: %s", e.msg);
}

static struct entry *find(struct pccs_client *c, const char *key)
{
	for (size_t i = 0; i < c->n_entries; i++)
		if (strcmp(c->entries[i].key, key) == 0)
			return &c->entries[i];
	return NULL;
}

static int store(struct pccs_client *c, const char *key, struct dcap_collateral *checked, struct err *e)
{
	struct entry *en = find(c, key);

	if (!en) {
		struct entry *ne = realloc(c->entries, (c->n_entries + 1) * sizeof(*ne));
		if (!ne)
			return err_set(e, "out of memory");
		c->entries = ne;
		en = &c->entries[c->n_entries++];
		memset(en, 0, sizeof(*en));
		snprintf(en->key, sizeof(en->key), "%s", key);
	}
	if (en->checked) {
		struct dcap_collateral **nr = realloc(c->retired, (c->n_retired + 1) * sizeof(*nr));
		if (!nr)
			return err_set(e, "out of memory");
		c->retired = nr;
		c->retired[c->n_retired++] = en->checked;
	}
	en->checked = checked;
	return 0;
}

static void make_key(bool tdx, const uint8_t fmspc[6], enum pck_ca_type ca, char *key, char *fmspc_hex)
{
	hex_encode(fmspc, 6, fmspc_hex);
	for (char *p = fmspc_hex; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	snprintf(key, 48, "%s-%s-%s", tdx ? "tdx" : "sgx", fmspc_hex, pck_ca_type_name(ca));
}

/* With c->mu held: checked collateral for key, loading from disk or network as needed. */
static int get_checked(struct pccs_client *c, bool tdx, const uint8_t fmspc[6], enum pck_ca_type ca,
		       time_t now, const struct dcap_collateral **out, struct dcap_collateral_raw *raw_out,
		       struct err *e)
{
	char key[48], fmspc_hex[13];
	struct dcap_collateral_raw raw;
	struct dcap_collateral *checked = NULL;
	bool from_net = false;

	make_key(tdx, fmspc, ca, key, fmspc_hex);
	struct entry *en = find(c, key);
	if (en && en->checked && now >= en->checked->valid_from && now <= en->checked->valid_until &&
	    !raw_out) {
		*out = en->checked;
		return 0;
	}
	if (disk_load(c, key, &raw) == 0) {
		if (dcap_collateral_load(&checked, &raw, c->root, now, NULL) < 0) {
			dcap_collateral_raw_free(&raw);
			checked = NULL;
		}
	}
	if (!checked) {
		if (fetch_network(c, tdx, fmspc_hex, ca, &raw, e) < 0)
			return -1;
		from_net = true;
		if (dcap_collateral_load(&checked, &raw, c->root, now, e) < 0) {
			dcap_collateral_raw_free(&raw);
			return err_wrap(e, "collateral from PCCS %s", c->base);
		}
	}
	if (from_net)
		disk_store(c, key, &raw);
	if (store(c, key, checked, e) < 0) {
		dcap_collateral_free(checked);
		dcap_collateral_raw_free(&raw);
		return -1;
	}
	*out = checked;
	if (raw_out)
		*raw_out = raw;
	else
		dcap_collateral_raw_free(&raw);
	return 0;
}

int pccs_fetch_raw(struct pccs_client *c, bool tdx, const uint8_t fmspc[6], enum pck_ca_type ca, time_t now,
		   struct dcap_collateral_raw *out, struct err *e)
{
	const struct dcap_collateral *unused;

	pthread_mutex_lock(&c->mu);
	int rc = get_checked(c, tdx, fmspc, ca, now, &unused, out, e);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

int pccs_collateral_for_quote(struct pccs_client *c, const struct quote *q, time_t now,
			      const struct dcap_collateral **out, struct err *e)
{
	struct pck_ext x;
	enum pck_ca_type ca;

	if (dcap_quote_pck_info(q, &x, &ca, e) < 0)
		return err_wrap(e, "PCK certificate");
	pthread_mutex_lock(&c->mu);
	int rc = get_checked(c, quote_is_tdx(q), x.fmspc, ca, now, out, NULL, e);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

int pccs_verify_quote(struct pccs_client *c, const uint8_t *quote, size_t len, time_t now,
		      struct dcap_result *r, struct quote *qout, struct err *e)
{
	struct quote q;
	const struct dcap_collateral *col;

	if (quote_parse(&q, quote, len, e) < 0)
		return -1;
	if (pccs_collateral_for_quote(c, &q, now, &col, e) < 0 || dcap_verify(&q, col, now, r, e) < 0) {
		quote_free(&q);
		return -1;
	}
	if (qout)
		*qout = q;
	else
		quote_free(&q);
	return 0;
}
