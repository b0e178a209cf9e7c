/*
 * settings.c — build-config.sh: the default text, and parsing it into
 * struct hostcfg (see hostcfg.h).
 *
 * The file is shell syntax so operators can `source` it from their own
 * scripts, but it is read here as plain KEY=VALUE lines (no expansion): a
 * generator that ran a shell on its input would execute whatever the file
 * holds. One table lists every key with its kind and destination.
 */
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "crypto/envlist.h"
#include "hostcfg/hostcfg.h"

static const char default_script[] =
    "# build-config.sh — settings for `dstack hostcfg` (dev deployment).\n"
    "#\n"
    "# Edit, then run `dstack hostcfg` again to generate kms.toml, gateway.toml,\n"
    "# vmm.toml, auth-config.json and the development certificates next to this\n"
    "# file. Plain KEY=VALUE lines: no shell expansion is performed.\n"
    "\n"
    "# Domain of the KMS RPC endpoint. The KMS creates its root keys on first\n"
    "# start and issues its RPC certificate for this name (auto-bootstrap).\n"
    "# Names under .localhost resolve to 127.0.0.1 in curl without DNS set-up.\n"
    "KMS_DOMAIN=kms.localhost\n"
    "\n"
    "# Domain of the gateway RPC endpoint (CVMs register here); the gateway RPC\n"
    "# certificate is issued for it.\n"
    "GATEWAY_DOMAIN=gateway.localhost\n"
    "\n"
    "# Base domain of app URLs: https://<app_id>[-<port>][s|g].<this>:<serving port>/\n"
    "# A wildcard certificate *.<this> is issued by the dev CA.\n"
    "GATEWAY_PUBLIC_DOMAIN=app.localhost\n"
    "\n"
    "# Address the host services listen on (0.0.0.0 exposes them to the network).\n"
    "BIND_IP=127.0.0.1\n"
    "\n"
    "# Ports.\n"
    "KMS_RPC_LISTEN_PORT=9201\n"
    "GATEWAY_RPC_LISTEN_PORT=9202\n"
    "GATEWAY_ADMIN_LISTEN_PORT=9203\n"
    "# The port clients use in app URLs.\n"
    "GATEWAY_SERVING_PORT=9204\n"
    "VMM_RPC_LISTEN_PORT=9080\n"
    "# auth-simple (the KMS's webhook when KMS_AUTH=webhook)\n"
    "AUTH_LISTEN_PORT=9205\n"
    "# simulated-TDX collateral service (dstack simtee serve)\n"
    "SIMTEE_LISTEN_PORT=9206\n"
    "# guest agent port inside CVMs (the gateway fetches port policies there)\n"
    "GUEST_AGENT_PORT=8090\n"
    "\n"
    "# WireGuard between the gateway and the CVMs (wireguard-go if the kernel\n"
    "# module is missing). Interface names are at most 15 characters.\n"
    "GATEWAY_WG_INTERFACE=dstack-wg0\n"
    "# Not 9182 with a loopback endpoint: that is the CVMs' own WireGuard port,\n"
    "# and simulated CVMs reach the gateway through their loopback.\n"
    "GATEWAY_WG_LISTEN_PORT=9207\n"
    "GATEWAY_WG_IP=10.0.3.1\n"
    "# The endpoint CVMs dial; defaults to 127.0.0.1:<GATEWAY_WG_LISTEN_PORT>, or\n"
    "# with VMM_BACKEND=qemu 10.0.2.2:<port> (the host as QEMU user networking\n"
    "# shows it to guests).\n"
    "GATEWAY_WG_ENDPOINT=\n"
    "\n"
    "# CIDs given to CVMs: [CID_POOL_START, CID_POOL_START + CID_POOL_SIZE).\n"
    "# Two VMMs on one host need disjoint pools.\n"
    "CID_POOL_START=10000\n"
    "CID_POOL_SIZE=1000\n"
    "\n"
    "# How the VMM runs CVMs. process: simulated CVMs, the guest's programs as\n"
    "# processes on the host in network namespaces of their own (no KVM or TDX\n"
    "# needed). qemu: real VMs under QEMU (KVM when /dev/kvm opens, else TCG)\n"
    "# booting a dstack guest image given to `dstack dev up --image DIR` (a\n"
    "# directory with metadata.json, kernel, initrd, rootfs, as the reference\n"
    "# project's releases ship them); their simulated TDX is the same.\n"
    "VMM_BACKEND=process\n"
    "\n"
    "# KMS authorization: \"dev\" allows every app whose attestation verifies;\n"
    "# \"webhook\" asks auth-simple, which reads auth-config.json.\n"
    "KMS_AUTH=dev\n"
    "\n"
    "# Let's Encrypt certificates for GATEWAY_PUBLIC_DOMAIN via Cloudflare DNS-01\n"
    "# (configured through the gateway admin API). false = the dev wildcard cert.\n"
    "CERTBOT_ENABLED=false\n"
    "CF_API_TOKEN=\n"
    "ACME_URL=https://acme-staging-v02.api.letsencrypt.org/directory\n";

const char *hostcfg_default_script(void)
{
	return default_script;
}

const char *hostcfg_host_for_cvms(const struct hostcfg *c)
{
	return !strcmp(c->vmm_backend, "qemu") ? "10.0.2.2" : "127.0.0.1";
}

/* Is line (up to its end) the setting `key`, as the parser reads it:
 * optional blanks and `export `, then KEY=? */
static bool line_sets(const char *line, size_t n, const char *key)
{
	size_t i = 0, kl = strlen(key);
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (n - i > 7 && !strncmp(line + i, "export ", 7)) {
		i += 7;
		while (i < n && (line[i] == ' ' || line[i] == '\t'))
			i++;
	}
	if (n - i <= kl || strncmp(line + i, key, kl))
		return false;
	i += kl;
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	return i < n && line[i] == '=';
}

bool hostcfg_script_set(const char *text, size_t len, const char *key, const char *value, struct buf *out)
{
	bool set = false, changed = false;
	for (size_t pos = 0; pos < len;) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		if (line_sets(text + pos, n, key)) {
			/* the parser keeps the last assignment: the new one replaces the
			 * first, later ones go */
			if (!set) {
				struct buf want = BUF_INIT;
				buf_printf(&want, "%s=%s", key, value);
				changed |= want.len != n || memcmp(want.data, text + pos, n);
				buf_append(out, want.data, want.len);
				buf_putc(out, '\n');
				buf_free(&want);
				set = true;
			} else {
				changed = true;
			}
		} else {
			buf_append(out, text + pos, n);
			buf_putc(out, '\n');
		}
		pos += n + 1;
	}
	if (!set) {
		buf_printf(out, "%s=%s\n", key, value);
		changed = true;
	}
	return changed;
}

enum kind { K_STR, K_PORT, K_U32, K_BOOL, K_DOMAIN };

static const struct key {
	const char *name;
	enum kind kind;
	size_t off;
	const char *def; /* NULL = required */
} keys[] = {
#define S(n, m, d)                                                                                           \
	{                                                                                                    \
		n, K_STR, offsetof(struct hostcfg, m), d                                                     \
	}
#define D(n, m, d)                                                                                           \
	{                                                                                                    \
		n, K_DOMAIN, offsetof(struct hostcfg, m), d                                                  \
	}
#define P(n, m, d)                                                                                           \
	{                                                                                                    \
		n, K_PORT, offsetof(struct hostcfg, m), d                                                    \
	}
    D("KMS_DOMAIN", kms_domain, "kms.localhost"),
    D("GATEWAY_DOMAIN", gateway_domain, "gateway.localhost"),
    D("GATEWAY_PUBLIC_DOMAIN", gateway_public_domain, "app.localhost"),
    S("BIND_IP", bind_ip, "127.0.0.1"),
    P("KMS_RPC_LISTEN_PORT", kms_rpc_port, "9201"),
    P("GATEWAY_RPC_LISTEN_PORT", gateway_rpc_port, "9202"),
    P("GATEWAY_ADMIN_LISTEN_PORT", gateway_admin_port, "9203"),
    P("GATEWAY_SERVING_PORT", gateway_serving_port, "9204"),
    P("VMM_RPC_LISTEN_PORT", vmm_rpc_port, "9080"),
    P("AUTH_LISTEN_PORT", auth_port, "9205"),
    P("SIMTEE_LISTEN_PORT", simtee_port, "9206"),
    P("GUEST_AGENT_PORT", guest_agent_port, "8090"),
    S("GATEWAY_WG_INTERFACE", gateway_wg_interface, "dstack-wg0"),
    P("GATEWAY_WG_LISTEN_PORT", gateway_wg_port, "9207"),
    S("GATEWAY_WG_IP", gateway_wg_ip, "10.0.3.1"),
    S("GATEWAY_WG_ENDPOINT", gateway_wg_endpoint, ""),
    {"CID_POOL_START", K_U32, offsetof(struct hostcfg, cid_pool_start), "10000"},
    {"CID_POOL_SIZE", K_U32, offsetof(struct hostcfg, cid_pool_size), "1000"},
    S("VMM_BACKEND", vmm_backend, "process"),
    S("KMS_AUTH", kms_auth, "dev"),
    {"CERTBOT_ENABLED", K_BOOL, offsetof(struct hostcfg, certbot_enabled), "false"},
    S("CF_API_TOKEN", cf_api_token, ""),
    S("ACME_URL", acme_url, "https://acme-staging-v02.api.letsencrypt.org/directory"),
#undef S
#undef D
#undef P
};

/* Domain rule shared with the KMS: 1–253 ASCII, labels 1–63 of [A-Za-z0-9-]
 * not starting or ending with '-'. */
static bool domain_valid(const char *d)
{
	size_t n = strlen(d), label = 0;
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i <= n; i++) {
		char ch = d[i];
		if (ch == '.' || ch == '\0') {
			if (label == 0 || label > 63 || d[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
			  ch == '-';
		if (!ok || (label == 0 && ch == '-'))
			return false;
		label++;
	}
	return true;
}

static int parse_u32(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	if (!*s || *s < '0' || *s > '9')
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end || v > max)
		return -1;
	*out = v;
	return 0;
}

static int set_key(struct hostcfg *c, const struct key *k, const char *v, struct err *e)
{
	void *dst = (char *)c + k->off;
	uint64_t n;
	switch (k->kind) {
	case K_DOMAIN:
		if (!domain_valid(v))
			return err_set(e, "%s: '%s' is not a valid domain name", k->name, v);
		__attribute__((fallthrough));
	case K_STR:
		free(*(char **)dst);
		*(char **)dst = strdup(v);
		return 0;
	case K_PORT:
		if (parse_u32(v, 65535, &n) < 0 || n == 0)
			return err_set(e, "%s: '%s' is not a port (1-65535)", k->name, v);
		*(uint16_t *)dst = (uint16_t)n;
		return 0;
	case K_U32:
		if (parse_u32(v, UINT32_MAX, &n) < 0)
			return err_set(e, "%s: '%s' is not an unsigned 32-bit number", k->name, v);
		*(uint32_t *)dst = (uint32_t)n;
		return 0;
	case K_BOOL:
		if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"))
			*(bool *)dst = true;
		else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no") || !*v)
			*(bool *)dst = false;
		else
			return err_set(e, "%s: '%s' is not true or false", k->name, v);
		return 0;
	}
	return err_set(e, "%s: internal: unknown kind", k->name);
}

static const struct key *find_key(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (!strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

static int check(struct hostcfg *c, struct err *e)
{
	if (strcmp(c->kms_auth, "dev") && strcmp(c->kms_auth, "webhook"))
		return err_set(e, "KMS_AUTH: '%s' is neither dev nor webhook", c->kms_auth);
	if (strcmp(c->vmm_backend, "process") && strcmp(c->vmm_backend, "qemu"))
		return err_set(e, "VMM_BACKEND: '%s' is neither process nor qemu", c->vmm_backend);
	if (c->cid_pool_start < 3)
		return err_set(e, "CID_POOL_START: must be at least 3 (0-2 are reserved)");
	if (c->cid_pool_size == 0 || (uint64_t)c->cid_pool_start + c->cid_pool_size > UINT32_MAX)
		return err_set(e, "CID_POOL_SIZE: must be > 0 and the pool must fit in 32 bits");
	size_t ifl = strlen(c->gateway_wg_interface);
	if (ifl == 0 || ifl > 15 || strchr(c->gateway_wg_interface, '/') ||
	    strchr(c->gateway_wg_interface, ' '))
		return err_set(e, "GATEWAY_WG_INTERFACE: 1-15 characters without '/' or spaces");
	unsigned a, b, cc, d;
	char tail;
	if (sscanf(c->gateway_wg_ip, "%u.%u.%u.%u%c", &a, &b, &cc, &d, &tail) != 4 || a > 255 || b > 255 ||
	    cc > 255 || d == 0 || d >= 127)
		return err_set(e,
			       "GATEWAY_WG_IP: '%s' is not an IPv4 address with a host part 1-126 in its /24",
			       c->gateway_wg_ip);
	if (c->certbot_enabled && !*c->cf_api_token)
		return err_set(e, "CERTBOT_ENABLED=true needs CF_API_TOKEN");
	uint16_t ports[] = {c->kms_rpc_port,         c->gateway_rpc_port, c->gateway_admin_port,
			    c->gateway_serving_port, c->vmm_rpc_port,     c->auth_port,
			    c->simtee_port};
	for (size_t i = 0; i < ARRAY_SIZE(ports); i++)
		for (size_t j = i + 1; j < ARRAY_SIZE(ports); j++)
			if (ports[i] == ports[j])
				return err_set(e, "port %u is used twice: every *_PORT must differ",
					       ports[i]);
	if (!*c->gateway_wg_endpoint) {
		char ep[64];
		snprintf(ep, sizeof ep, "%s:%u", hostcfg_host_for_cvms(c), c->gateway_wg_port);
		free(c->gateway_wg_endpoint);
		c->gateway_wg_endpoint = strdup(ep);
	}
	/* A simulated CVM's loopback relays to the host's: the endpoint's port
	 * must not be the one the CVM's own WireGuard listens on. */
	const char *colon = strrchr(c->gateway_wg_endpoint, ':');
	if (colon && !strcmp(colon, ":9182") &&
	    (!strncmp(c->gateway_wg_endpoint, "127.", 4) ||
	     !strncmp(c->gateway_wg_endpoint, "localhost:", 10)))
		return err_set(
		    e,
		    "GATEWAY_WG_ENDPOINT %s: port 9182 is the CVMs' own WireGuard port, and simulated "
		    "CVMs reach a loopback endpoint through their own loopback; pick another "
		    "GATEWAY_WG_LISTEN_PORT",
		    c->gateway_wg_endpoint);
	return 0;
}

int hostcfg_parse(const char *text, size_t len, const char *dir, struct hostcfg *c, struct err *e)
{
	struct env_list l = ENV_LIST_INIT;
	memset(c, 0, sizeof *c);
	c->dir = strdup(dir);
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (set_key(c, &keys[i], keys[i].def, e) < 0)
			goto fail;
	if (env_file_parse(text, len, &l, e) < 0) {
		err_wrap(e, "build-config.sh");
		goto fail;
	}
	for (size_t i = 0; i < l.n; i++) {
		const struct key *k = find_key(l.items[i].key);
		if (!k) {
			err_set(e, "build-config.sh: unknown setting %s", l.items[i].key);
			goto fail;
		}
		if (set_key(c, k, l.items[i].value, e) < 0) {
			err_wrap(e, "build-config.sh");
			goto fail;
		}
	}
	env_list_free(&l);
	if (check(c, e) < 0) {
		err_wrap(e, "build-config.sh");
		hostcfg_free(c);
		return -1;
	}
	return 0;
fail:
	env_list_free(&l);
	hostcfg_free(c);
	return -1;
}

void hostcfg_free(struct hostcfg *c)
{
	free(c->dir);
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (keys[i].kind == K_STR || keys[i].kind == K_DOMAIN) {
			char **p = (char **)((char *)c + keys[i].off);
			if (*p && keys[i].off == offsetof(struct hostcfg, cf_api_token))
				explicit_bzero(*p, strlen(*p));
			free(*p);
			*p = NULL;
		}
	c->dir = NULL;
}
