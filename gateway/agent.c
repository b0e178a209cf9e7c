/*
 * agent.c — start-up calls to the guest agent of the gateway's own CVM
 * (gateway.md §1): with core.rpc_domain set, GetTlsKey issues the RPC
 * certificate (RA-TLS, server + client usage, with AppInfo) and the gateway
 * writes chain → tls.certs, key → tls.key and the chain's last certificate
 * (the KMS root) → tls.mutual.ca_certs, all 0600. Info gives the gateway's
 * own app id, which GetPeers requires of its callers (gateway.md §2), and is
 * served as is at gateway.<base>/app-info (§5).
 *
 * The agent is reached over $DSTACK_AGENT_ADDRESS (unix path, unix:PATH or
 * an http:// base URL), else /var/run/dstack/dstack.sock, else
 * /var/run/dstack.sock. Outside a CVM no socket exists: the caller then keeps
 * the configured files.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/mem.h"
#include "gateway.h"
#include "prpc/agent.h"

/* host of "https://host:port/path" (empty when none). */
static void url_host(const char *url, char *out, size_t n)
{
	const char *p = strstr(url, "://");
	size_t len;

	out[0] = 0;
	if (!p)
		return;
	p += 3;
	len = strcspn(p, ":/");
	if (len < n) {
		memcpy(out, p, len);
		out[len] = 0;
	}
}

int gw_agent_fetch_tls(const struct gw_config *cfg, struct err *e)
{
	struct prpc_client c;
	char path[256], host[256];
	_cleanup_json_ json_t *in = NULL, *out = NULL;
	_cleanup_buf_ struct buf chain = BUF_INIT;
	json_t *certs, *v, *alt;
	const char *key;
	size_t i, n;
	int rc;

	prpc_agent_client(&c, path, sizeof(path));
	url_host(cfg->my_url, host, sizeof(host));
	alt = json_pack("[s]", cfg->rpc_domain);
	if (*host && strcmp(host, cfg->rpc_domain))
		json_array_append_new(alt, json_string(host));
	in = json_pack("{s:s,s:o,s:b,s:b,s:b,s:b}", "subject", "dstack-gateway", "alt_names", alt,
		       "usage_ra_tls", 1, "usage_server_auth", 1, "usage_client_auth", 1, "with_app_info", 1);
	if (!in)
		return err_set(e, "out of memory");
	if (prpc_client_call_json(&c, "GetTlsKey", in, &out, e) < 0)
		return err_wrap(e, "guest agent GetTlsKey");
	key = json_string_value(json_object_get(out, "key"));
	certs = json_object_get(out, "certificate_chain");
	n = json_array_size(certs);
	if (!key || !n)
		return err_set(e, "guest agent GetTlsKey: reply has no key or certificate chain");
	json_array_foreach(certs, i, v)
	{
		if (!json_is_string(v))
			return err_set(e, "guest agent GetTlsKey: bad certificate chain");
		buf_puts(&chain, json_string_value(v));
		if (chain.len && chain.data[chain.len - 1] != '\n')
			buf_putc(&chain, '\n');
	}
	const char *root = json_string_value(json_array_get(certs, n - 1));
	if (file_write_atomic(cfg->tls_certs, chain.data, chain.len, 0600, e) < 0 ||
	    file_write_atomic(cfg->tls_ca_certs, root, strlen(root), 0600, e) < 0)
		return err_wrap(e, "write the RPC certificate");
	rc = file_write_atomic(cfg->tls_key, key, strlen(key), 0600, e);
	secure_zero((char *)key, strlen(key));
	return rc < 0 ? err_wrap(e, "write the RPC key") : 0;
}

int gw_agent_info(char app_id[41], char **info_json, struct err *e)
{
	struct prpc_client c;
	char path[256];
	_cleanup_json_ json_t *in = json_object(), *reply = NULL;
	const char *id;

	prpc_agent_client(&c, path, sizeof(path));
	if (!in)
		return err_set(e, "out of memory");
	if (prpc_client_call_json(&c, "Info", in, &reply, e) < 0)
		return err_wrap(e, "guest agent Info");
	id = json_string_value(json_object_get(reply, "app_id"));
	if (id && !strncmp(id, "0x", 2))
		id += 2;
	if (!id || strlen(id) != 40 || strspn(id, "0123456789abcdefABCDEF") != 40)
		return err_set(e, "guest agent Info: no 20-byte hex app_id in the reply");
	for (int i = 0; i < 41; i++)
		app_id[i] = (char)tolower((unsigned char)id[i]);
	if (info_json && !(*info_json = json_dumps(reply, JSON_COMPACT)))
		return err_set(e, "out of memory");
	return 0;
}
