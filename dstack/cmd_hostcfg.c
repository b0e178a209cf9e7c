/*
 * cmd_hostcfg.c — `dstack hostcfg [--dir DIR] [--force]`: the operators'
 * guide's dev deployment configuration step.
 *
 * First run: write a commented build-config.sh and stop, so the operator
 * reviews the settings. Later runs: create missing key material (dev CA,
 * gateway RPC and wildcard certificates, WireGuard key, admin token; never
 * replacing a key) and regenerate kms.toml, gateway.toml, vmm.toml and
 * auth-config.json when build-config.sh changed since the last run (a
 * SHA-256 stamp), or with --force. Rendering lives in lib/hostcfg.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "cmd.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/mem.h"
#include "crypto/hash.h"
#include "hostcfg/hostcfg.h"

#define SCRIPT_MAX (256 * 1024)

static void usage(FILE *f)
{
	fprintf(f, "Usage: dstack hostcfg [--dir DIR] [--force]\n"
		   "\n"
		   "Generate the host configuration of a dstack dev deployment in DIR (default .).\n"
		   "The first run writes DIR/build-config.sh with local defaults; edit it and run\n"
		   "again to generate kms.toml, gateway.toml, vmm.toml, auth-config.json and the\n"
		   "development certificates (dev CA, gateway RPC and wildcard certificates,\n"
		   "WireGuard key) under DIR/certs. Existing keys are never replaced; configs are\n"
		   "regenerated only when build-config.sh changed, or with --force.\n"
		   "\n"
		   "  --dir DIR   output directory\n"
		   "  --force     regenerate the configs and reissue the certificates (keys kept)\n"
		   "  -h, --help  show this help\n");
}

static int fail(const char *what, struct err *e)
{
	fprintf(stderr, "dstack hostcfg: %s%s%s\n", what, e ? ": " : "", e ? err_str(e) : "");
	return 1;
}

static int write_file(const struct hostcfg *c, const char *name, const struct buf *b, mode_t mode,
		      struct err *e)
{
	_cleanup_free_ char *p = hostcfg_path(c, name);
	if (file_write_atomic(p, b->data, b->len, mode, e) < 0)
		return err_wrap(e, "%s", p);
	printf("  wrote   %s\n", p);
	return 0;
}

static void report(const struct hostcfg *c, const char *name, bool created)
{
	_cleanup_free_ char *p = hostcfg_path(c, name);
	printf("  %s %s\n", created ? "created" : "kept   ", p);
}

static void report_cert(const struct hostcfg *c, const char *name, enum hostcfg_written w)
{
	_cleanup_free_ char *p = hostcfg_path(c, name);
	printf("  %s %s\n",
	       w == HOSTCFG_CREATED    ? "created"
	       : w == HOSTCFG_REISSUED ? "reissued"
				       : "kept   ",
	       p);
}

static int make_dirs(const struct hostcfg *c, struct err *e)
{
	static const struct {
		const char *name;
		mode_t mode;
	} dirs[] = {{"certs", 0700},  {"kms-certs", 0700}, {"gateway-data", 0700},
		    {"vmm/vm", 0755}, {"vmm/image", 0755}, {"vmm/run", 0755}};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		_cleanup_free_ char *p = hostcfg_path(c, dirs[i].name);
		if (mkdir_p(p, dirs[i].mode, e) < 0)
			return -1;
	}
	return 0;
}

static int ensure_keys(const struct hostcfg *c, bool force, char wg_priv[45], char wg_pub[45], char token[65],
		       struct err *e)
{
	_cleanup_free_ char *ca_key = hostcfg_path(c, "certs/dev-ca.key");
	_cleanup_free_ char *ca_crt = hostcfg_path(c, "certs/dev-ca.crt");
	_cleanup_free_ char *rpc_key = hostcfg_path(c, "certs/gateway-rpc.key");
	_cleanup_free_ char *rpc_crt = hostcfg_path(c, "certs/gateway-rpc.crt");
	_cleanup_free_ char *wc_key = hostcfg_path(c, "certs/wildcard.key");
	_cleanup_free_ char *wc_crt = hostcfg_path(c, "certs/wildcard.crt");
	_cleanup_free_ char *wg = hostcfg_path(c, "certs/gateway-wg.key");
	_cleanup_free_ char *tok = hostcfg_path(c, "certs/gateway-admin.token");
	enum hostcfg_written w;
	bool created;

	if (hostcfg_ensure_dev_ca(ca_key, ca_crt, &w, e) < 0)
		return -1;
	report_cert(c, "certs/dev-ca.crt", w);
	/* A new CA certificate invalidates every certificate it signed. */
	bool reissue = force || w != HOSTCFG_KEPT;
	const char *rpc_names[] = {c->gateway_domain};
	if (hostcfg_ensure_leaf(ca_key, ca_crt, rpc_key, rpc_crt, rpc_names, 1, reissue, &w, e) < 0)
		return -1;
	report_cert(c, "certs/gateway-rpc.crt", w);
	_cleanup_free_ char *wild = NULL;
	if (asprintf(&wild, "*.%s", c->gateway_public_domain) < 0)
		return err_set(e, "out of memory");
	const char *wc_names[] = {wild, c->gateway_public_domain};
	if (hostcfg_ensure_leaf(ca_key, ca_crt, wc_key, wc_crt, wc_names, 2, reissue, &w, e) < 0)
		return -1;
	report_cert(c, "certs/wildcard.crt", w);
	if (hostcfg_ensure_wg_key(wg, wg_priv, wg_pub, &created, e) < 0)
		return -1;
	report(c, "certs/gateway-wg.key", created);
	if (hostcfg_ensure_token(tok, token, &created, e) < 0)
		return -1;
	report(c, "certs/gateway-admin.token", created);
	_cleanup_free_ char *images = hostcfg_path(c, "vmm/image");
	if (hostcfg_ensure_dev_image(images, &created, e) < 0)
		return -1;
	report(c, "vmm/image/" HOSTCFG_DEV_IMAGE, created);
	return 0;
}

static bool configs_exist(const struct hostcfg *c)
{
	static const char *const names[] = {"kms.toml", "gateway.toml", "vmm.toml", "auth-config.json"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		_cleanup_free_ char *p = hostcfg_path(c, names[i]);
		if (!file_exists(p))
			return false;
	}
	return true;
}

/* JSON text of obj (jansson escapes every string), newline-terminated. */
static int json_text(json_t *obj, struct buf *out, struct err *e)
{
	char *s = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	if (!s)
		return err_set(e, "out of memory");
	buf_printf(out, "%s\n", s);
	secure_zero(s, strlen(s));
	free(s);
	return 0;
}

static int write_acme(const struct hostcfg *c, struct err *e)
{
	_cleanup_buf_ struct buf cred = BUF_INIT;
	struct buf zt = BUF_INIT;
	_cleanup_json_ json_t *cj =
	    json_pack("{s:s, s:s, s:s, s:b}", "name", "cloudflare", "provider_type", "cloudflare",
		      "cf_api_token", c->cf_api_token, "set_as_default", 1);
	_cleanup_json_ json_t *zj = json_pack("{s:s, s:i, s:i}", "domain", c->gateway_public_domain, "port",
					      (int)c->gateway_serving_port, "priority", 0);
	int rc = json_text(cj, &cred, e);
	if (cj) {
		/* the token's copy inside the JSON object */
		json_t *tok = json_object_get(cj, "cf_api_token");
		if (json_is_string(tok))
			secure_zero((char *)json_string_value(tok), json_string_length(tok));
	}
	if (rc == 0)
		rc = write_file(c, "acme-dns-credential.json", &cred, 0600, e);
	secure_zero(cred.data, cred.len);
	if (rc < 0)
		return -1;
	rc = json_text(zj, &zt, e);
	if (rc == 0)
		rc = write_file(c, "acme-zt-domain.json", &zt, 0644, e);
	buf_free(&zt);
	if (rc < 0)
		return -1;
	printf("\nCERTBOT_ENABLED: once the gateway runs, register the DNS credential and the domain\n"
	       "(the certificate is then requested from %s):\n"
	       "  T=$(cat %s/certs/gateway-admin.token)\n"
	       "  curl -H \"Authorization: Bearer $T\" -H 'Content-Type: application/json' \\\n"
	       "    --data @%s/acme-dns-credential.json http://127.0.0.1:%u/prpc/CreateDnsCredential\n"
	       "  curl -H \"Authorization: Bearer $T\" -H 'Content-Type: application/json' \\\n"
	       "    --data @%s/acme-zt-domain.json http://127.0.0.1:%u/prpc/AddZtDomain\n",
	       c->acme_url, c->dir, c->dir, c->gateway_admin_port, c->dir, c->gateway_admin_port);
	return 0;
}

static int generate(const struct hostcfg *c, const char *wg_priv, const char *wg_pub, const char *token,
		    struct err *e)
{
	_cleanup_buf_ struct buf b = BUF_INIT;
	hostcfg_render_kms(c, &b);
	if (write_file(c, "kms.toml", &b, 0644, e) < 0)
		return -1;
	buf_reset(&b);
	hostcfg_render_gateway(c, wg_priv, wg_pub, token, &b);
	int rc = write_file(c, "gateway.toml", &b, 0600, e);
	buf_free_secure(&b);
	if (rc < 0)
		return -1;
	_cleanup_free_ char *sv = hostcfg_find_program("supervisor", "../vmm/supervisor");
	hostcfg_render_vmm(c, sv, &b);
	if (write_file(c, "vmm.toml", &b, 0644, e) < 0)
		return -1;
	buf_reset(&b);
	hostcfg_render_auth(c, &b);
	if (write_file(c, "auth-config.json", &b, 0644, e) < 0)
		return -1;
	if (c->certbot_enabled && write_acme(c, e) < 0)
		return -1;
	return 0;
}

int cmd_hostcfg(int argc, char **argv)
{
	static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
					     {"force", no_argument, NULL, 'f'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *dir_arg = ".";
	bool force = false;
	struct err e = ERR_INIT;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			dir_arg = optarg;
			break;
		case 'f':
			force = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (mkdir_p(dir_arg, 0755, &e) < 0)
		return fail("output directory", &e);
	_cleanup_free_ char *dir = realpath(dir_arg, NULL);
	if (!dir)
		return fail(dir_arg, NULL);
	_cleanup_free_ char *script = NULL, *stamp = NULL;
	if (asprintf(&script, "%s/build-config.sh", dir) < 0 ||
	    asprintf(&stamp, "%s/.hostcfg-stamp", dir) < 0)
		return fail("out of memory", NULL);

	if (!file_exists(script)) {
		const char *t = hostcfg_default_script();
		if (file_write_atomic(script, t, strlen(t), 0600, &e) < 0)
			return fail(script, &e);
		printf("Wrote %s with local defaults.\n"
		       "Review it, then run `dstack hostcfg%s%s` again to generate the configs.\n",
		       script, strcmp(dir_arg, ".") ? " --dir " : "", strcmp(dir_arg, ".") ? dir_arg : "");
		return 0;
	}

	uint8_t *text = NULL;
	size_t len = 0;
	if (file_read_all(script, SCRIPT_MAX, &text, &len, &e) < 0)
		return fail(script, &e);
	uint8_t h[32];
	char hash_hex[65];
	sha256(text, len, h);
	hex_encode(h, sizeof h, hash_hex);
	struct hostcfg c;
	int rc = hostcfg_parse((const char *)text, len, dir, &c, &e);
	secure_zero(text, len); /* may hold CF_API_TOKEN */
	free(text);
	if (rc < 0)
		return fail(script, &e);

	char wg_priv[45] = "", wg_pub[45] = "", token[65] = "";
	rc = 1;
	printf("dstack hostcfg: %s\n", dir);
	if (make_dirs(&c, &e) < 0 || ensure_keys(&c, force, wg_priv, wg_pub, token, &e) < 0) {
		fail("key material", &e);
		goto out;
	}
	uint8_t *old = NULL;
	size_t old_len = 0;
	bool current = false;
	if (file_exists(stamp) && file_read_all(stamp, 128, &old, &old_len, NULL) == 0) {
		current = old_len >= 64 && !memcmp(old, hash_hex, 64);
		free(old);
	}
	if (current && !force && configs_exist(&c)) {
		printf("  configs up to date (build-config.sh unchanged; --force regenerates them)\n");
		rc = 0;
		goto out;
	}
	if (generate(&c, wg_priv, wg_pub, token, &e) < 0) {
		fail("generating configs", &e);
		goto out;
	}
	char line[66];
	snprintf(line, sizeof line, "%s\n", hash_hex);
	if (file_write_atomic(stamp, line, strlen(line), 0644, &e) < 0) {
		fail(stamp, &e);
		goto out;
	}
	printf("\nWireGuard public key of the gateway: %s\n"
	       "Next: `dstack dev up --dir %s` starts the stack (or start each program with -c <file>.toml,\n"
	       "see docs/dev-stack.md).\n",
	       wg_pub, dir);
	rc = 0;
out:
	secure_zero(wg_priv, sizeof wg_priv);
	secure_zero(token, sizeof token);
	hostcfg_free(&c);
	return rc;
}
