/*
 * cmd_vmm.c — `dstack vmm <cmd>`: the operator client of dstack-vmm, the
 * subcommands of the reference vmm-cli.py (spec vmm.md §14). Every call is
 * `POST /prpc/<Method>?json` through lib/prpc; env encryption, the KMS
 * signature check and compose hashing come from lib/crypto. The VMM is found
 * from --url, DSTACK_VMM_URL, ~/.dstack-vmm/config.json or the discovery
 * files dstack-vmm writes. Tables for people, --json for scripts.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "cmd.h"
#include "codec/base64.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/mem.h"
#include "crypto/appkeys.h"
#include "crypto/envcrypt.h"
#include "crypto/envlist.h"
#include "crypto/hash.h"
#include "http/client.h"
#include "prpc/client.h"

#define FILE_MAX (16u << 20)

struct vmm_cli {
	char *url;         /* http(s)://host:port or unix:/path */
	const char *token; /* Bearer */
	const char *user, *password;
	bool json;
};

static char *xfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xfmt(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

static const char *js(const json_t *o, const char *k);

static int die(const char *what, const struct err *e)
{
	fprintf(stderr, "dstack vmm: %s%s%s\n", what, e ? ": " : "", e ? err_str(e) : "");
	return 1;
}

/* ---- finding the VMM (§14 URL resolution) -------------------------------- */

#define DEFAULT_URL "http://localhost:8080"

static char *discovery_dir(void)
{
	const char *x = getenv("XDG_RUNTIME_DIR");

	return x && *x ? xfmt("%s/dstack-vmm", x) : xfmt("/run/user/%u/dstack-vmm", getuid());
}

/* The URL of a discovery entry: unix sockets relative to its working_dir, 0.0.0.0 as loopback. */
static char *entry_url(const json_t *j)
{
	const char *addr = json_string_value(json_object_get(j, "address"));
	const char *wd = json_string_value(json_object_get(j, "working_dir"));
	const char *hp;

	if (!addr)
		return NULL;
	if (!strncmp(addr, "unix:", 5))
		return addr[5] == '/' ? xfmt("%s", addr) : xfmt("unix:%s/%s", wd ? wd : ".", addr + 5);
	hp = !strncmp(addr, "tcp:", 4) ? addr + 4 : addr;
	return !strncmp(hp, "0.0.0.0:", 8) ? xfmt("http://127.0.0.1:%s", hp + 8) : xfmt("http://%s", hp);
}

/* The discovery entries of VMMs that are alive (dead pids are skipped), with "url" added. */
static json_t *discovered(void)
{
	_cleanup_free_ char *dir = discovery_dir();
	json_t *all = json_array();
	DIR *d = opendir(dir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		_cleanup_free_ char *p = NULL, *url = NULL;
		_cleanup_free_ uint8_t *raw = NULL;
		size_t len;
		json_t *j;
		json_int_t pid;

		if (!strstr(de->d_name, ".json"))
			continue;
		p = xfmt("%s/%s", dir, de->d_name);
		if (file_read_all(p, 1 << 16, &raw, &len, NULL) < 0)
			continue;
		j = json_loadb((const char *)raw, len, 0, NULL);
		pid = json_integer_value(json_object_get(j, "pid"));
		url = entry_url(j);
		if (!json_is_object(j) || !url || pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno != EPERM)) {
			json_decref(j);
			continue;
		}
		json_object_set_new(j, "url", json_string(url));
		json_array_append_new(all, j);
	}
	if (d)
		closedir(d);
	return all;
}

static char *cli_config_path(void)
{
	const char *home = getenv("HOME");

	return xfmt("%s/.dstack-vmm/config.json", home ? home : ".");
}

/* ~/.dstack-vmm/config.json ({"url", "active_vmm"}), or an empty object. */
static json_t *cli_config_load(void)
{
	_cleanup_free_ char *p = cli_config_path();
	_cleanup_free_ uint8_t *raw = NULL;
	size_t len;
	json_t *j = NULL;

	if (file_read_all(p, 1 << 16, &raw, &len, NULL) == 0)
		j = json_loadb((const char *)raw, len, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		j = json_object();
	}
	return j;
}

/* Discovery entries whose id starts with prefix. */
static json_t *matching(const json_t *all, const char *prefix)
{
	json_t *out = json_array(), *j;
	size_t i;

	json_array_foreach(all, i, j) if (!strncmp(js(j, "id"), prefix, strlen(prefix)))
	    json_array_append(out, j);
	return out;
}

/*
 * First match wins: --url (unless it is the default), DSTACK_VMM_URL, `url`
 * in ~/.dstack-vmm/config.json, the running VMM whose id starts with
 * `active_vmm` there (`dstack vmm vmm switch`), the only running VMM, the
 * default.
 */
static char *resolve_url(const char *flag)
{
	const char *env = getenv("DSTACK_VMM_URL"), *v, *active;
	_cleanup_json_ json_t *cfg = NULL, *all = NULL;

	if (flag && strcmp(flag, DEFAULT_URL))
		return xfmt("%s", flag);
	if (env && *env)
		return xfmt("%s", env);
	cfg = cli_config_load();
	v = json_string_value(json_object_get(cfg, "url"));
	if (v && *v)
		return xfmt("%s", v);
	all = discovered();
	active = json_string_value(json_object_get(cfg, "active_vmm"));
	if (active && *active) {
		_cleanup_json_ json_t *m = matching(all, active);

		if (json_array_size(m) >= 1)
			return xfmt("%s", js(json_array_get(m, 0), "url"));
		fprintf(stderr, "dstack vmm: the active VMM %s is not running\n", active);
	}
	if (json_array_size(all) == 1)
		return xfmt("%s", js(json_array_get(all, 0), "url"));
	if (json_array_size(all) > 1)
		fprintf(stderr,
			"dstack vmm: %zu VMMs running here; pick one with `dstack vmm vmm switch <id>` or "
			"--url\n",
			json_array_size(all));
	return xfmt(DEFAULT_URL);
}

/* ---- calls --------------------------------------------------------------- */

static void client_for(const struct vmm_cli *c, struct prpc_client *pc, char **base, char **auth_hdr)
{
	memset(pc, 0, sizeof(*pc));
	if (!strncmp(c->url, "unix:", 5)) {
		pc->http.unix_socket = c->url + 5;
		*base = xfmt("http://localhost/prpc");
	} else {
		size_t n = strlen(c->url);

		*base = xfmt("%.*s/prpc", (int)(n && c->url[n - 1] == '/' ? n - 1 : n), c->url);
	}
	pc->base = *base;
	pc->http.timeout_ms = 120000;
	*auth_hdr = NULL;
}

/* The prpc client has no header hook, so authenticated calls go through http_fetch. */
static int call(const struct vmm_cli *c, const char *method, json_t *in, json_t **out, struct err *e)
{
	struct prpc_client pc;
	_cleanup_free_ char *base = NULL, *auth = NULL, *url = NULL, *body = NULL, *hdr = NULL;
	struct http_response r = {0};
	int rc;

	client_for(c, &pc, &base, &auth);
	if (!c->token && !c->user) {
		rc = prpc_client_call_json(&pc, method, in, out, e);
		json_decref(in);
		return rc < 0 ? err_wrap(e, "API call failed") : 0;
	}
	if (c->token) {
		hdr = xfmt("Authorization: Bearer %s", c->token);
	} else {
		_cleanup_free_ char *up = xfmt("%s:%s", c->user, c->password);
		struct buf b = BUF_INIT;

		base64_put(&b, up, strlen(up));
		buf_putc(&b, 0);
		hdr = xfmt("Authorization: Basic %s", (char *)b.data);
		buf_free(&b);
		secure_zero(up, strlen(up));
	}
	url = xfmt("%s/%s?json", base, method);
	body = in ? json_dumps(in, JSON_COMPACT) : xfmt("{}");
	json_decref(in);
	const char *hdrs[] = {"Content-Type: application/json", hdr, NULL};
	if (http_fetch(&pc.http, "POST", url, hdrs, body, strlen(body), &r, e) < 0)
		return err_wrap(e, "API call failed");
	if (r.status != 200) {
		_cleanup_json_ json_t *j = json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
		const char *msg = json_string_value(json_object_get(j, "error"));

		err_set(e, "API call failed: %s",
			msg ? msg : (r.status == 401 ? "unauthorized" : "HTTP error"));
		http_response_free(&r);
		return -1;
	}
	if (out)
		*out = r.body.len ? json_loadb((const char *)r.body.data, r.body.len, 0, NULL) : json_null();
	http_response_free(&r);
	return 0;
}

static void print_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);

	puts(s ? s : "null");
	free(s);
}

static const char *js(const json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));

	return v ? v : "";
}

static int read_text(const char *path, char **out, size_t *len, struct err *e)
{
	uint8_t *d = NULL;

	if (file_read_all(path, FILE_MAX, &d, len, e) < 0)
		return err_wrap(e, "%s", path);
	d = realloc(d, *len + 1);
	if (!d)
		abort();
	d[*len] = 0;
	*out = (char *)d;
	return 0;
}

/* ---- subcommands ---------------------------------------------------------- */

static int lsvm(struct vmm_cli *c, int argc, char **argv)
{
	struct err e = ERR_INIT;
	_cleanup_json_ json_t *r = NULL;
	json_t *vm;
	size_t i;
	bool verbose = argc > 1 && !strcmp(argv[1], "-v");

	if (call(c, "Status", json_pack("{s:b}", "brief", !verbose && !c->json), &r, &e) < 0)
		return die("lsvm", &e);
	if (c->json) {
		print_json(json_object_get(r, "vms"));
		return 0;
	}
	printf("%-36s  %-40s  %-16s  %-10s  %-22s  %s\n", "VM ID", "App ID", "Name", "Status",
	       "Boot progress", "Uptime");
	json_array_foreach(json_object_get(r, "vms"), i, vm)
	{
		printf("%-36s  %-40s  %-16s  %-10s  %-22s  %s\n", js(vm, "id"), js(vm, "app_id"),
		       js(vm, "name"), js(vm, "status"), js(vm, "boot_progress"), js(vm, "uptime"));
		if (verbose) {
			json_t *cf = json_object_get(vm, "configuration"), *p;
			size_t k;

			printf("    image %s, %d vCPU, %d MB, %d GB", js(cf, "image"),
			       (int)json_integer_value(json_object_get(cf, "vcpu")),
			       (int)json_integer_value(json_object_get(cf, "memory")),
			       (int)json_integer_value(json_object_get(cf, "disk_size")));
			json_array_foreach(json_object_get(cf, "ports"), k, p)
			    printf(", %s:%s:%d->%d", js(p, "protocol"), js(p, "host_address"),
				   (int)json_integer_value(json_object_get(p, "host_port")),
				   (int)json_integer_value(json_object_get(p, "vm_port")));
			printf("\n");
		}
	}
	return 0;
}

static int lsimage(struct vmm_cli *c, int argc, char **argv)
{
	struct err e = ERR_INIT;
	_cleanup_json_ json_t *r = NULL;
	json_t *im;
	size_t i;

	(void)argc, (void)argv;
	if (call(c, "ListImages", NULL, &r, &e) < 0)
		return die("lsimage", &e);
	if (c->json) {
		print_json(json_object_get(r, "images"));
		return 0;
	}
	printf("%-32s  %-10s  %s\n", "Name", "Version", "Dev");
	json_array_foreach(json_object_get(r, "images"), i, im)
	    printf("%-32s  %-10s  %s\n", js(im, "name"), js(im, "version"),
		   json_is_true(json_object_get(im, "is_dev")) ? "yes" : "no");
	return 0;
}

static int id_call(struct vmm_cli *c, const char *method, int argc, char **argv)
{
	struct err e = ERR_INIT;

	if (argc < 2) {
		fprintf(stderr, "usage: dstack vmm %s <vm-id>\n", argv[0]);
		return 2;
	}
	if (call(c, method, json_pack("{s:s}", "id", argv[argc - 1]), NULL, &e) < 0)
		return die(argv[0], &e);
	if (!c->json)
		printf("%s: %s ok\n", argv[argc - 1], method);
	return 0;
}

static int info(struct vmm_cli *c, int argc, char **argv)
{
	struct err e = ERR_INIT;
	_cleanup_json_ json_t *r = NULL;
	json_t *i;

	if (argc < 2) {
		fprintf(stderr, "usage: dstack vmm info <vm-id>\n");
		return 2;
	}
	if (call(c, "GetInfo", json_pack("{s:s}", "id", argv[1]), &r, &e) < 0)
		return die("info", &e);
	if (!json_is_true(json_object_get(r, "found"))) {
		fprintf(stderr, "dstack vmm: VM %s not found\n", argv[1]);
		return 1;
	}
	i = json_object_get(r, "info");
	if (c->json) {
		print_json(i);
		return 0;
	}
	printf(
	    "ID:            %s\nName:          %s\nStatus:        %s\nBoot progress: %s\nBoot error:    %s\n"
	    "App ID:        %s\nInstance ID:   %s\nUptime:        %s\nApp URL:       %s\n",
	    js(i, "id"), js(i, "name"), js(i, "status"), js(i, "boot_progress"), js(i, "boot_error"),
	    js(i, "app_id"), js(i, "instance_id"), js(i, "uptime"), js(i, "app_url"));
	return 0;
}

static int logs(struct vmm_cli *c, int argc, char **argv)
{
	static const struct option o[] = {{"lines", required_argument, NULL, 'n'},
					  {"follow", no_argument, NULL, 'f'},
					  {"channel", required_argument, NULL, 'c'},
					  {0}};
	const char *lines = "20", *ch = "serial";
	bool follow = false;
	int opt;
	struct prpc_client pc;
	_cleanup_free_ char *base = NULL, *auth = NULL, *url = NULL, *hdr = NULL;
	struct http_response r = {0};
	struct err e = ERR_INIT;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "n:fc:", o, NULL)) != -1) {
		if (opt == 'n')
			lines = optarg;
		else if (opt == 'f')
			follow = true;
		else if (opt == 'c')
			ch = optarg;
		else
			return 2;
	}
	if (optind >= argc) {
		fprintf(stderr,
			"usage: dstack vmm logs <vm-id> [-n N] [-f] [--channel serial|stdout|stderr]\n");
		return 2;
	}
	client_for(c, &pc, &base, &auth);
	base[strlen(base) - 5] = 0; /* strip /prpc */
	url = xfmt("%s/logs?id=%s&follow=%s&ansi=false&lines=%s&ch=%s", base, argv[optind],
		   follow ? "true" : "false", lines, ch);
	if (c->token)
		hdr = xfmt("Authorization: Bearer %s", c->token);
	const char *hdrs[] = {hdr, NULL};
	pc.http.timeout_ms = follow ? 0 : 60000;
	if (http_fetch(&pc.http, "GET", url, hdr ? hdrs : NULL, NULL, 0, &r, &e) < 0)
		return die("logs", &e);
	if (r.status != 200) {
		fprintf(stderr, "dstack vmm: logs: %s\n", (char *)r.body.data);
		http_response_free(&r);
		return 1;
	}
	fwrite(r.body.data, 1, r.body.len, stdout);
	http_response_free(&r);
	return 0;
}

/* ---- env encryption with the KMS signature check ----------------------- */

static char *whitelist_path(void)
{
	const char *home = getenv("HOME");

	return xfmt("%s/.dstack-vmm/kms-whitelist.json", home ? home : ".");
}

static json_t *whitelist_load(void)
{
	_cleanup_free_ char *p = whitelist_path();
	_cleanup_free_ uint8_t *raw = NULL;
	size_t len;
	json_t *j = NULL;

	if (file_read_all(p, 1 << 20, &raw, &len, NULL) == 0)
		j = json_loadb((const char *)raw, len, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		j = json_pack("{s:[]}", "trusted_signers");
	}
	return j;
}

static bool signer_trusted(const char *hex)
{
	_cleanup_json_ json_t *w = whitelist_load();
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(w, "trusted_signers"), i, v)
	{
		const char *s = json_string_value(v);

		if (s && !strcasecmp(s + (!strncmp(s, "0x", 2) ? 2 : 0), hex))
			return true;
	}
	return false;
}

/* GetAppEnvEncryptPubKey (from the VMM, or a KMS directly), verify the signer, encrypt the env file. */
static int encrypt_env_file(struct vmm_cli *c, const char *kms_url, const char *app_id_hex,
			    const char *env_file, char **hex_out, struct err *e)
{
	_cleanup_json_ json_t *r = NULL;
	uint8_t app_id[20], pub[32], sig[65], signer[33];
	char signer_hex[67];
	_cleanup_free_ char *text = NULL;
	size_t len;
	struct env_list env = ENV_LIST_INIT;
	struct buf plain = BUF_INIT, out = BUF_INIT;
	const char *sv1;
	int rc = -1;

	if (hex_decode_exact(app_id_hex, app_id, 20, e) < 0)
		return err_wrap(e, "app id");
	if (kms_url) {
		struct vmm_cli k = {.url = (char *)kms_url};
		if (call(&k, "GetAppEnvEncryptPubKey", json_pack("{s:s}", "app_id", app_id_hex), &r, e) < 0)
			return err_wrap(e, "KMS %s", kms_url);
	} else if (call(c, "GetAppEnvEncryptPubKey", json_pack("{s:s}", "app_id", app_id_hex), &r, e) < 0) {
		return -1;
	}
	if (hex_decode_exact(js(r, "public_key"), pub, 32, e) < 0)
		return err_wrap(e, "public_key");
	sv1 = js(r, "signature_v1");
	if (*sv1 ? hex_decode_exact(sv1, sig, 65, e) < 0
		 : hex_decode_exact(js(r, "signature"), sig, 65, e) < 0)
		return err_wrap(e, "KMS signature");
	if (kms_env_pubkey_recover(app_id, pub, *sv1 != 0,
				   (uint64_t)json_integer_value(json_object_get(r, "timestamp")), sig, signer,
				   e) < 0)
		return err_wrap(e, "KMS signature does not verify");
	hex_encode(signer, 33, signer_hex);
	if (!signer_trusted(signer_hex)) {
		char ans[8] = "";

		fprintf(stderr, "KMS public key signer %s is not in %s\n", signer_hex,
			"~/.dstack-vmm/kms-whitelist.json");
		if (!isatty(STDIN_FILENO))
			return err_set(e, "untrusted KMS signer %s (trust it with `dstack vmm kms add %s`)",
				       signer_hex, signer_hex);
		fprintf(stderr, "Continue anyway? [y/N] ");
		if (!fgets(ans, sizeof(ans), stdin) || (ans[0] != 'y' && ans[0] != 'Y'))
			return err_set(e, "aborted: untrusted KMS signer");
	}
	if (read_text(env_file, &text, &len, e) < 0)
		return -1;
	if (env_file_parse(text, len, &env, e) < 0 || env_list_validate(&env, e) < 0 ||
	    env_plaintext_build(&env, &plain, e) < 0 ||
	    env_envelope_encrypt(pub, plain.data, plain.len, &out, e) < 0)
		goto done;
	*hex_out = malloc(out.len * 2 + 1);
	if (!*hex_out)
		abort();
	hex_encode(out.data, out.len, *hex_out);
	rc = 0;
done:
	secure_zero(text, len);
	env_list_free(&env);
	buf_free_secure(&plain);
	buf_free(&out);
	return rc;
}

static void app_id_of(const char *compose, size_t len, char out[41])
{
	uint8_t h[32];

	sha256(compose, len, h);
	hex_encode(h, 20, out);
}

/* ---- compose / deploy / update ------------------------------------------------- */

static int compose(struct vmm_cli *c, int argc, char **argv)
{
	static const struct option o[] = {{"name", required_argument, NULL, 'N'},
					  {"docker-compose", required_argument, NULL, 'd'},
					  {"bash-script", required_argument, NULL, 'b'},
					  {"prelaunch-script", required_argument, NULL, 'p'},
					  {"kms", no_argument, NULL, 'k'},
					  {"gateway", no_argument, NULL, 'g'},
					  {"local-key-provider", no_argument, NULL, 'l'},
					  {"key-provider", required_argument, NULL, 'K'},
					  {"key-provider-id", required_argument, NULL, 'I'},
					  {"public-logs", no_argument, NULL, 'L'},
					  {"public-sysinfo", no_argument, NULL, 'S'},
					  {"env-file", required_argument, NULL, 'e'},
					  {"no-instance-id", no_argument, NULL, 'n'},
					  {"secure-time", no_argument, NULL, 't'},
					  {"swap", required_argument, NULL, 's'},
					  {"event-log-version", required_argument, NULL, 'v'},
					  {"output", required_argument, NULL, 'o'},
					  {0}};
	const char *name = NULL, *dc = NULL, *bash = NULL, *pre = NULL, *kp = NULL, *kpid = "", *envf = NULL,
		   *swap = NULL, *elv = NULL, *output = NULL;
	bool kms = false, gw = false, lkp = false, plogs = false, psys = false, noiid = false, stime = false;
	struct err e = ERR_INIT;
	_cleanup_free_ char *dtext = NULL, *ptext = NULL, *dump = NULL;
	_cleanup_json_ json_t *j = NULL;
	json_t *allowed = json_array();
	size_t len;
	int opt;
	char hex[65];
	uint8_t h[32];

	(void)c;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "o:", o, NULL)) != -1) {
		switch (opt) {
		case 'N':
			name = optarg;
			break;
		case 'd':
			dc = optarg;
			break;
		case 'b':
			bash = optarg;
			break;
		case 'p':
			pre = optarg;
			break;
		case 'k':
			kms = true;
			break;
		case 'g':
			gw = true;
			break;
		case 'l':
			lkp = true;
			break;
		case 'K':
			kp = optarg;
			break;
		case 'I':
			kpid = optarg;
			break;
		case 'L':
			plogs = true;
			break;
		case 'S':
			psys = true;
			break;
		case 'e':
			envf = optarg;
			break;
		case 'n':
			noiid = true;
			break;
		case 't':
			stime = true;
			break;
		case 's':
			swap = optarg;
			break;
		case 'v':
			elv = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		default:
			json_decref(allowed);
			return 2;
		}
	}
	if (!name || (!dc && !bash) || !output) {
		fprintf(
		    stderr,
		    "usage: dstack vmm compose --name N (--docker-compose F | --bash-script F) --output F "
		    "[--kms] [--gateway] [--env-file F] ...\n");
		json_decref(allowed);
		return 2;
	}
	if (envf && !kms) {
		json_decref(allowed);
		return die("compose: --env-file requires --kms", NULL);
	}
	if (read_text(dc ? dc : bash, &dtext, &len, &e) < 0 ||
	    (pre && read_text(pre, &ptext, &len, &e) < 0)) {
		json_decref(allowed);
		return die("compose", &e);
	}
	if (envf) {
		_cleanup_free_ char *t = NULL;
		struct env_list env = ENV_LIST_INIT;

		if (read_text(envf, &t, &len, &e) < 0 || env_file_parse(t, len, &env, &e) < 0) {
			json_decref(allowed);
			return die("compose", &e);
		}
		for (size_t i = 0; i < env.n; i++)
			json_array_append_new(allowed, json_string(env.items[i].key));
		env_list_free(&env);
		secure_zero(t, len);
	}
	j = json_pack("{s:i,s:s,s:s}", "manifest_version", 2, "name", name, "runner",
		      dc ? "docker-compose" : "bash");
	json_object_set_new(j, dc ? "docker_compose_file" : "bash_script", json_string(dtext));
	json_object_set_new(j, "kms_enabled", json_boolean(kms));
	json_object_set_new(j, "gateway_enabled", json_boolean(gw));
	json_object_set_new(j, "local_key_provider_enabled", json_boolean(lkp));
	json_object_set_new(j, "key_provider_id", json_string(kpid));
	json_object_set_new(j, "public_logs", json_boolean(plogs));
	json_object_set_new(j, "public_sysinfo", json_boolean(psys));
	json_object_set_new(j, "allowed_envs", allowed);
	json_object_set_new(j, "no_instance_id", json_boolean(noiid));
	json_object_set_new(j, "secure_time", json_boolean(stime));
	if (kp)
		json_object_set_new(j, "key_provider", json_string(kp));
	if (ptext)
		json_object_set_new(j, "pre_launch_script", json_string(ptext));
	if (swap)
		json_object_set_new(j, "swap_size", json_string(swap));
	if (elv)
		json_object_set_new(j, "event_log_version", json_integer(atoi(elv)));
	dump = json_dumps(j, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
	if (file_write_atomic(output, dump, strlen(dump), 0644, &e) < 0)
		return die("compose", &e);
	sha256(dump, strlen(dump), h);
	hex_encode(h, 32, hex);
	printf("Compose hash: %s\n", hex);
	return 0;
}

static int app_id_cmd(struct vmm_cli *c, int argc, char **argv)
{
	_cleanup_free_ char *t = NULL;
	size_t len;
	struct err e = ERR_INIT;
	char id[41];

	(void)c;
	if (argc < 2) {
		fprintf(stderr, "usage: dstack vmm app-id <app-compose.json>\n");
		return 2;
	}
	if (read_text(argv[1], &t, &len, &e) < 0)
		return die("app-id", &e);
	app_id_of(t, len, id);
	printf("%s\n", id);
	return 0;
}

/* "tcp[:addr]:host:vm" → PortMapping */
static json_t *parse_port(const char *s, struct err *e)
{
	char proto[8], a[64] = "127.0.0.1";
	unsigned hp, vp;

	int n4 = sscanf(s, "%7[a-z]:%63[^:]:%u:%u", proto, a, &hp, &vp);

	if (n4 != 4)
		snprintf(a, sizeof(a), "127.0.0.1");
	if (n4 == 4 || sscanf(s, "%7[a-z]:%u:%u", proto, &hp, &vp) == 3) {
		if (hp > 65535 || vp > 65535)
			return err_set(e, "port out of range: %s", s), NULL;
		return json_pack("{s:s,s:i,s:i,s:s}", "protocol", proto, "host_port", (int)hp, "vm_port",
				 (int)vp, "host_address", a);
	}
	err_set(e, "bad --port %s (expected proto[:addr]:host:vm)", s);
	return NULL;
}

static uint32_t parse_size_mb(const char *s, bool disk)
{
	char *end;
	double v = strtod(s, &end);

	if (*end == 'T' || *end == 't')
		v *= disk ? 1024 : 1024 * 1024;
	else if (*end == 'G' || *end == 'g')
		v *= disk ? 1 : 1024;
	return (uint32_t)v;
}

/* --gpu SLOT (repeatable) | --gpu all | --ppcie (every GPU and NVSwitch: attach_mode all) | --no-gpus */
struct gpu_flags {
	bool set, all, none;
	json_t *slots;
};

static int gpu_flag(struct gpu_flags *g, const char *slot)
{
	if (!g->slots)
		g->slots = json_array();
	g->set = true;
	if (!slot || !strcmp(slot, "all"))
		g->all = true;
	else
		json_array_append_new(g->slots, json_pack("{s:s}", "slot", slot));
	if (g->all && json_array_size(g->slots)) {
		fprintf(stderr, "dstack vmm: --gpu all / --ppcie attach every GPU; do not list slots too\n");
		return -1;
	}
	return 0;
}

static void gpu_flags_free(struct gpu_flags *g)
{
	json_decref(g->slots);
}

/* GpuConfig; frees the slot list. */
static json_t *gpu_json(struct gpu_flags *g)
{
	json_t *slots = g->slots ? g->slots : json_array();

	g->slots = NULL;
	if (g->all) {
		json_decref(slots);
		return json_pack("{s:s,s:[]}", "attach_mode", "all", "gpus");
	}
	return json_pack("{s:s,s:o}", "attach_mode", "listed", "gpus", slots);
}

static int deploy(struct vmm_cli *c, int argc, char **argv)
{
	static const struct option o[] = {{"name", required_argument, NULL, 'N'},
					  {"image", required_argument, NULL, 'i'},
					  {"compose", required_argument, NULL, 'C'},
					  {"vcpu", required_argument, NULL, 'c'},
					  {"memory", required_argument, NULL, 'm'},
					  {"disk", required_argument, NULL, 'd'},
					  {"env-file", required_argument, NULL, 'e'},
					  {"user-config", required_argument, NULL, 'u'},
					  {"app-id", required_argument, NULL, 'a'},
					  {"port", required_argument, NULL, 'p'},
					  {"kms-url", required_argument, NULL, 'k'},
					  {"kms-encrypt-url", required_argument, NULL, 'K'},
					  {"gateway-url", required_argument, NULL, 'g'},
					  {"stopped", no_argument, NULL, 's'},
					  {"no-tee", no_argument, NULL, 'n'},
					  {"simulated-tee", required_argument, NULL, 'S'},
					  {"swap", required_argument, NULL, 'w'},
					  {"gpu", required_argument, NULL, 'G'},
					  {"ppcie", no_argument, NULL, 'P'},
					  {"pin-numa", no_argument, NULL, 'U'},
					  {"hugepages", no_argument, NULL, 'H'},
					  {"tee", no_argument, NULL, 'T'},
					  {"net", required_argument, NULL, 'W'},
					  {0}};
	const char *name = NULL, *image = NULL, *cf = NULL, *envf = NULL, *ucf = NULL, *app_id = NULL,
		   *enc_url = NULL, *sim = NULL, *swap = NULL, *net = NULL;
	uint32_t vcpu = 1, mem = 1024, disk = 20;
	bool stopped = false, no_tee = false, tee = false, pin_numa = false, hugepages = false;
	struct gpu_flags gpu __attribute__((cleanup(gpu_flags_free))) = {0};
	json_t *ports = json_array(), *kms = json_array(), *gws = json_array();
	_cleanup_json_ json_t *req = NULL, *r = NULL;
	_cleanup_free_ char *ctext = NULL, *utext = NULL, *env_hex = NULL;
	struct err e = ERR_INIT;
	char aid[41];
	size_t len;
	int opt;

	req = json_object();
	json_object_set_new(req, "ports", ports);
	json_object_set_new(req, "kms_urls", kms);
	json_object_set_new(req, "gateway_urls", gws);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", o, NULL)) != -1) {
		json_t *p;

		switch (opt) {
		case 'N':
			name = optarg;
			break;
		case 'i':
			image = optarg;
			break;
		case 'C':
			cf = optarg;
			break;
		case 'c':
			vcpu = (uint32_t)atoi(optarg);
			break;
		case 'm':
			mem = parse_size_mb(optarg, false);
			break;
		case 'd':
			disk = parse_size_mb(optarg, true);
			break;
		case 'e':
			envf = optarg;
			break;
		case 'u':
			ucf = optarg;
			break;
		case 'a':
			app_id = optarg;
			break;
		case 'p':
			if (!(p = parse_port(optarg, &e)))
				return die("deploy", &e);
			json_array_append_new(ports, p);
			break;
		case 'k':
			json_array_append_new(kms, json_string(optarg));
			break;
		case 'K':
			enc_url = optarg;
			break;
		case 'g':
			json_array_append_new(gws, json_string(optarg));
			break;
		case 's':
			stopped = true;
			break;
		case 'n':
			no_tee = true;
			break;
		case 'S':
			sim = optarg;
			break;
		case 'w':
			swap = optarg;
			break;
		case 'G':
		case 'P':
			if (gpu_flag(&gpu, opt == 'P' ? NULL : optarg) < 0)
				return 2;
			break;
		case 'U':
			pin_numa = true;
			break;
		case 'H':
			hugepages = true;
			break;
		case 'T':
			tee = true;
			break;
		case 'W':
			net = optarg;
			break;
		default:
			return 2;
		}
	}
	if (tee && no_tee)
		return die("deploy: --tee and --no-tee contradict each other", NULL);
	if (net && strcmp(net, "user") && strcmp(net, "bridge"))
		return die("deploy: --net takes user or bridge", NULL);
	if (!name || !image || !cf) {
		fprintf(stderr,
			"usage: dstack vmm deploy --name N --image I --compose F [--vcpu N] [--memory 1G] "
			"[--disk 20G] [--swap 4G] [--port tcp[:addr]:host:vm]... [--env-file F --kms-url U] "
			"[--user-config F] [--app-id HEX] [--gpu SLOT|all]... [--ppcie] [--pin-numa] "
			"[--hugepages] "
			"[--kms-url U]... [--kms-encrypt-url U] [--gateway-url U]... [--stopped] "
			"[--no-tee|--tee] "
			"[--simulated-tee V] [--net user|bridge]\n");
		return 2;
	}
	if (read_text(cf, &ctext, &len, &e) < 0 || (ucf && read_text(ucf, &utext, &len, &e) < 0))
		return die("deploy", &e);
	if (app_id) {
		snprintf(aid, sizeof(aid), "%s", app_id + (!strncmp(app_id, "0x", 2) ? 2 : 0));
	} else {
		app_id_of(ctext, strlen(ctext), aid);
	}
	if (envf) {
		_cleanup_json_ json_t *cj = json_loads(ctext, 0, NULL);

		if (!json_array_size(kms) && !enc_url)
			return die("deploy: --env-file requires --kms-url", NULL);
		if (!json_is_true(json_object_get(cj, "kms_enabled")) &&
		    strcmp(js(cj, "key_provider"), "kms"))
			return die(
			    "deploy: --env-file needs a compose with kms_enabled (the KMS decrypts the env)",
			    NULL);
		if (encrypt_env_file(c, enc_url ? enc_url : json_string_value(json_array_get(kms, 0)), aid,
				     envf, &env_hex, &e) < 0)
			return die("deploy: encrypting the environment", &e);
	}
	json_object_set_new(req, "name", json_string(name));
	json_object_set_new(req, "image", json_string(image));
	json_object_set_new(req, "compose_file", json_string(ctext));
	json_object_set_new(req, "vcpu", json_integer(vcpu));
	json_object_set_new(req, "memory", json_integer(mem));
	json_object_set_new(req, "disk_size", json_integer(disk));
	json_object_set_new(req, "encrypted_env", json_string(env_hex ? env_hex : ""));
	json_object_set_new(req, "user_config", json_string(utext ? utext : ""));
	if (app_id)
		json_object_set_new(req, "app_id", json_string(aid));
	json_object_set_new(req, "stopped", json_boolean(stopped));
	json_object_set_new(req, "no_tee", json_boolean(no_tee));
	if (sim)
		json_object_set_new(req, "simulated_tee", json_string(sim));
	json_object_set_new(req, "hugepages", json_boolean(hugepages));
	json_object_set_new(req, "pin_numa", json_boolean(pin_numa));
	if (gpu.set)
		json_object_set_new(req, "gpus", gpu_json(&gpu));
	if (net)
		json_object_set_new(req, "networking", json_pack("{s:s}", "mode", net));
	if (swap) /* as vmm-cli.py does: sent, and ignored by the server (swap is an app-compose setting) */
		json_object_set_new(req, "swap_size", json_integer(parse_size_mb(swap, false)));
	if (call(c, "CreateVm", json_incref(req), &r, &e) < 0)
		return die("deploy", &e);
	if (c->json) {
		json_object_set_new(r, "app_id", json_string(aid));
		print_json(r);
	} else {
		printf("App ID: %s\nCreated VM with ID: %s\n", aid, js(r, "id"));
	}
	return 0;
}

static int upgrade(struct vmm_cli *c, json_t *req, const char *what)
{
	struct err e = ERR_INIT;

	if (call(c, "UpgradeApp", req, NULL, &e) < 0)
		return die(what, &e);
	if (!c->json)
		printf("%s: ok\n", what);
	return 0;
}

/* The VM's current app-compose.json (GetInfo configuration.compose_file), parsed; its app id in aid. */
static json_t *vm_compose(struct vmm_cli *c, const char *id, char aid[41], struct err *e)
{
	_cleanup_json_ json_t *r = NULL;
	json_t *info, *j;

	if (call(c, "GetInfo", json_pack("{s:s}", "id", id), &r, e) < 0)
		return NULL;
	if (!json_is_true(json_object_get(r, "found")))
		return err_set(e, "VM %s not found", id), NULL;
	info = json_object_get(r, "info");
	if (aid)
		snprintf(aid, 41, "%s", js(info, "app_id"));
	j = json_loads(js(json_object_get(info, "configuration"), "compose_file"), 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return err_set(e, "VM %s: its app-compose.json is not a JSON object", id), NULL;
	}
	return j;
}

/*
 * What an env file changes in the compose: allowed_envs becomes its keys
 * (the guest drops every other variable), and APP_LAUNCH_TOKEN, when
 * present, sets launch_token_hash = sha256(token) hex. True when the compose
 * changed.
 */
static int env_compose_update(json_t *compose, const char *env_file, bool *changed, struct err *e)
{
	_cleanup_free_ char *t = NULL;
	size_t len;
	struct env_list env = ENV_LIST_INIT;
	json_t *keys = json_array();

	*changed = false;
	if (read_text(env_file, &t, &len, e) < 0 || env_file_parse(t, len, &env, e) < 0) {
		json_decref(keys);
		if (t)
			secure_zero(t, len);
		return -1;
	}
	for (size_t i = 0; i < env.n; i++) {
		json_array_append_new(keys, json_string(env.items[i].key));
		if (!strcmp(env.items[i].key, "APP_LAUNCH_TOKEN")) {
			uint8_t h[32];
			char hex[65];

			sha256(env.items[i].value, strlen(env.items[i].value), h);
			hex_encode(h, 32, hex);
			if (strcmp(js(compose, "launch_token_hash"), hex)) {
				json_object_set_new(compose, "launch_token_hash", json_string(hex));
				*changed = true;
			}
		}
	}
	if (!json_equal(json_object_get(compose, "allowed_envs"), keys)) {
		json_object_set(compose, "allowed_envs", keys);
		*changed = true;
	}
	json_decref(keys);
	env_list_free(&env);
	secure_zero(t, len);
	return 0;
}

static char *compose_dump(const json_t *compose)
{
	return json_dumps(compose, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
}

static int update_env(struct vmm_cli *c, int argc, char **argv)
{
	static const struct option o[] = {
	    {"env-file", required_argument, NULL, 'e'}, {"kms-url", required_argument, NULL, 'k'}, {0}};
	const char *envf = NULL, *kms = NULL;
	_cleanup_free_ char *hex = NULL;
	_cleanup_json_ json_t *compose = NULL;
	struct err e = ERR_INIT;
	json_t *req;
	bool changed;
	char aid[41];
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", o, NULL)) != -1) {
		if (opt == 'e')
			envf = optarg;
		else if (opt == 'k')
			kms = optarg;
		else
			return 2;
	}
	if (optind >= argc || !envf) {
		fprintf(stderr, "usage: dstack vmm update-env <vm-id> --env-file F [--kms-url U]\n");
		return 2;
	}
	if (!(compose = vm_compose(c, argv[optind], aid, &e)) ||
	    encrypt_env_file(c, kms, aid, envf, &hex, &e) < 0 ||
	    env_compose_update(compose, envf, &changed, &e) < 0)
		return die("update-env", &e);
	req = json_pack("{s:s,s:s}", "id", argv[optind], "encrypted_env", hex);
	if (changed) {
		_cleanup_free_ char *dump = compose_dump(compose);

		json_object_set_new(req, "compose_file", json_string(dump));
	}
	return upgrade(c, req, "update-env");
}

/* UpgradeApp with one field read from a file: `<cmd> <vm-id> <file>`. */
static int upgrade_from_file(struct vmm_cli *c, int argc, char **argv, const char *cmd, const char *field,
			     const char *file_desc)
{
	_cleanup_free_ char *t = NULL;
	size_t len;
	struct err e = ERR_INIT;

	if (argc < 3) {
		fprintf(stderr, "usage: dstack vmm %s <vm-id> <%s>\n", cmd, file_desc);
		return 2;
	}
	if (read_text(argv[2], &t, &len, &e) < 0)
		return die(cmd, &e);
	return upgrade(c, json_pack("{s:s,s:s}", "id", argv[1], field, t), cmd);
}

static int update_app_compose(struct vmm_cli *c, int argc, char **argv)
{
	return upgrade_from_file(c, argc, argv, "update-app-compose", "compose_file", "app-compose.json");
}

static int update_ports(struct vmm_cli *c, int argc, char **argv)
{
	static const struct option o[] = {{"port", required_argument, NULL, 'p'}, {0}};
	json_t *ports = json_array(), *p;
	struct err e = ERR_INIT;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", o, NULL)) != -1) {
		if (opt != 'p' || !(p = parse_port(optarg, &e))) {
			json_decref(ports);
			return opt == 'p' ? die("update-ports", &e) : 2;
		}
		json_array_append_new(ports, p);
	}
	if (optind >= argc) {
		json_decref(ports);
		fprintf(stderr, "usage: dstack vmm update-ports <vm-id> [--port tcp[:addr]:host:vm]...\n");
		return 2;
	}
	return upgrade(c, json_pack("{s:s,s:b,s:o}", "id", argv[optind], "update_ports", 1, "ports", ports),
		       "update-ports");
}

/*
 * `update <id>`: ResizeVm first when a resource flag is given, then one
 * UpgradeApp carrying only what the flags name. --compose replaces the
 * compose's docker_compose_file, --prelaunch-script its pre_launch_script,
 * --swap its swap_size, --env-file its allowed_envs (and launch_token_hash);
 * the rest of the VM's compose is kept.
 */
static int update(struct vmm_cli *c, int argc, char **argv)
{
	static const struct option o[] = {{"vcpu", required_argument, NULL, 'c'},
					  {"memory", required_argument, NULL, 'm'},
					  {"disk", required_argument, NULL, 'd'},
					  {"image", required_argument, NULL, 'i'},
					  {"compose", required_argument, NULL, 'C'},
					  {"prelaunch-script", required_argument, NULL, 'p'},
					  {"swap", required_argument, NULL, 'w'},
					  {"env-file", required_argument, NULL, 'e'},
					  {"user-config", required_argument, NULL, 'u'},
					  {"port", required_argument, NULL, 'o'},
					  {"no-ports", no_argument, NULL, 'O'},
					  {"gpu", required_argument, NULL, 'G'},
					  {"ppcie", no_argument, NULL, 'P'},
					  {"no-gpus", no_argument, NULL, 'X'},
					  {"no-tee", no_argument, NULL, 'n'},
					  {"tee", no_argument, NULL, 'T'},
					  {"kms-url", required_argument, NULL, 'k'},
					  {0}};
	_cleanup_json_ json_t *resize = json_object(), *req = NULL, *ports = json_array(),
			      *kms = json_array();
	_cleanup_json_ json_t *compose = NULL;
	struct gpu_flags gpu __attribute__((cleanup(gpu_flags_free))) = {0};
	const char *dc = NULL, *pre = NULL, *swap = NULL, *envf = NULL, *ucf = NULL;
	bool set_ports = false, no_ports = false, no_gpus = false, no_tee = false, tee = false;
	struct err e = ERR_INIT;
	const char *id;
	json_t *p;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", o, NULL)) != -1) {
		switch (opt) {
		case 'c':
			json_object_set_new(resize, "vcpu", json_integer(atoi(optarg)));
			break;
		case 'm':
			json_object_set_new(resize, "memory", json_integer(parse_size_mb(optarg, false)));
			break;
		case 'd':
			json_object_set_new(resize, "disk_size", json_integer(parse_size_mb(optarg, true)));
			break;
		case 'i':
			json_object_set_new(resize, "image", json_string(optarg));
			break;
		case 'C':
			dc = optarg;
			break;
		case 'p':
			pre = optarg;
			break;
		case 'w':
			swap = optarg;
			break;
		case 'e':
			envf = optarg;
			break;
		case 'u':
			ucf = optarg;
			break;
		case 'o':
			if (!(p = parse_port(optarg, &e)))
				return die("update", &e);
			json_array_append_new(ports, p);
			set_ports = true;
			break;
		case 'O':
			no_ports = true;
			break;
		case 'G':
		case 'P':
			if (gpu_flag(&gpu, opt == 'P' ? NULL : optarg) < 0)
				return 2;
			break;
		case 'X':
			no_gpus = true;
			break;
		case 'n':
			no_tee = true;
			break;
		case 'T':
			tee = true;
			break;
		case 'k':
			json_array_append_new(kms, json_string(optarg));
			break;
		default:
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr,
			"usage: dstack vmm update <vm-id> [--vcpu N] [--memory M] [--disk D] [--image I] "
			"[--compose F] [--prelaunch-script F] [--swap S] [--env-file F] [--user-config F] "
			"[--port P... | --no-ports] [--gpu SLOT|all... | --ppcie | --no-gpus] "
			"[--no-tee | --tee] [--kms-url U]...\n");
		return 2;
	}
	if ((set_ports && no_ports) || (gpu.set && no_gpus) || (tee && no_tee))
		return die("update: --port/--no-ports, --gpu/--ppcie/--no-gpus and --tee/--no-tee exclude "
			   "each other",
			   NULL);
	id = argv[optind];
	req = json_pack("{s:s}", "id", id);
	if (dc || pre || swap || envf) {
		char aid[41];
		bool changed = true;

		if (!(compose = vm_compose(c, id, aid, &e)))
			return die("update", &e);
		if (dc || pre) {
			_cleanup_free_ char *t = NULL;
			size_t len;

			if (read_text(dc ? dc : pre, &t, &len, &e) < 0)
				return die("update", &e);
			json_object_set_new(compose, dc ? "docker_compose_file" : "pre_launch_script",
					    json_string(t));
			if (dc && pre) {
				free(t);
				t = NULL;
				if (read_text(pre, &t, &len, &e) < 0)
					return die("update", &e);
				json_object_set_new(compose, "pre_launch_script", json_string(t));
			}
		}
		if (swap)
			json_object_set_new(compose, "swap_size", json_string(swap));
		if (envf) {
			_cleanup_free_ char *hex = NULL;
			bool env_changed;

			if (encrypt_env_file(c, json_string_value(json_array_get(kms, 0)), aid, envf, &hex,
					     &e) < 0 ||
			    env_compose_update(compose, envf, &env_changed, &e) < 0)
				return die("update: encrypting the environment", &e);
			json_object_set_new(req, "encrypted_env", json_string(hex));
			changed = dc || pre || swap || env_changed;
		}
		if (changed) {
			_cleanup_free_ char *dump = compose_dump(compose);

			json_object_set_new(req, "compose_file", json_string(dump));
		}
	}
	if (ucf) {
		_cleanup_free_ char *t = NULL;
		size_t len;

		if (read_text(ucf, &t, &len, &e) < 0)
			return die("update", &e);
		json_object_set_new(req, "user_config", json_string(t));
	}
	if (set_ports || no_ports) {
		json_object_set_new(req, "update_ports", json_true());
		json_object_set(req, "ports", ports);
	}
	if (gpu.set)
		json_object_set_new(req, "gpus", gpu_json(&gpu));
	else if (no_gpus)
		json_object_set_new(req, "gpus", json_pack("{s:s,s:[]}", "attach_mode", "listed", "gpus"));
	if (tee || no_tee)
		json_object_set_new(req, "no_tee", json_boolean(no_tee));
	if (json_array_size(kms)) {
		json_object_set_new(req, "update_kms_urls", json_true());
		json_object_set(req, "kms_urls", kms);
	}
	if (!json_object_size(resize) && json_object_size(req) == 1)
		return die("update: nothing to update (see `dstack vmm update` for the flags)", NULL);
	if (json_object_size(resize)) {
		json_object_set_new(resize, "id", json_string(id));
		if (call(c, "ResizeVm", json_incref(resize), NULL, &e) < 0)
			return die("update: resize", &e);
	}
	if (json_object_size(req) > 1 && call(c, "UpgradeApp", json_incref(req), NULL, &e) < 0)
		return die("update", &e);
	if (!c->json)
		printf("update: ok\n");
	return 0;
}

static int lsgpu(struct vmm_cli *c, int argc, char **argv)
{
	struct err e = ERR_INIT;
	_cleanup_json_ json_t *r = NULL;
	json_t *g;
	size_t i;

	(void)argc, (void)argv;
	if (call(c, "ListGpus", NULL, &r, &e) < 0)
		return die("lsgpu", &e);
	if (c->json) {
		print_json(r);
		return 0;
	}
	printf("%-14s  %-10s  %-5s  %s\n", "Slot", "Product", "Free", "Description");
	json_array_foreach(json_object_get(r, "gpus"), i, g)
	    printf("%-14s  %-10s  %-5s  %s\n", js(g, "slot"), js(g, "product_id"),
		   json_is_true(json_object_get(g, "is_free")) ? "yes" : "no", js(g, "description"));
	return 0;
}

static int resize(struct vmm_cli *c, int argc, char **argv)
{
	static const struct option o[] = {{"vcpu", required_argument, NULL, 'c'},
					  {"memory", required_argument, NULL, 'm'},
					  {"disk", required_argument, NULL, 'd'},
					  {"image", required_argument, NULL, 'i'},
					  {0}};
	json_t *req = json_object();
	struct err e = ERR_INIT;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", o, NULL)) != -1) {
		if (opt == 'c')
			json_object_set_new(req, "vcpu", json_integer(atoi(optarg)));
		else if (opt == 'm')
			json_object_set_new(req, "memory", json_integer(parse_size_mb(optarg, false)));
		else if (opt == 'd')
			json_object_set_new(req, "disk_size", json_integer(parse_size_mb(optarg, true)));
		else if (opt == 'i')
			json_object_set_new(req, "image", json_string(optarg));
		else {
			json_decref(req);
			return 2;
		}
	}
	if (optind >= argc) {
		json_decref(req);
		fprintf(
		    stderr,
		    "usage: dstack vmm resize <vm-id> [--vcpu N] [--memory 2G] [--disk 40G] [--image I]\n");
		return 2;
	}
	json_object_set_new(req, "id", json_string(argv[optind]));
	if (call(c, "ResizeVm", req, NULL, &e) < 0)
		return die("resize", &e);
	if (!c->json)
		printf("resize: ok\n");
	return 0;
}

static int update_user_config(struct vmm_cli *c, int argc, char **argv)
{
	return upgrade_from_file(c, argc, argv, "update-user-config", "user_config", "file");
}

/* `vmm ls` and `vmm switch <prefix>`: the running VMMs from their discovery files. */
static int vmm_cmd(struct vmm_cli *c, int argc, char **argv)
{
	_cleanup_json_ json_t *all = discovered(), *cfg = cli_config_load();
	const char *active = json_string_value(json_object_get(cfg, "active_vmm"));
	json_t *j;
	size_t i;

	if (argc >= 3 && !strcmp(argv[1], "switch")) {
		_cleanup_json_ json_t *m = matching(all, argv[2]);
		_cleanup_free_ char *p = cli_config_path(), *dir = NULL, *dump = NULL;
		struct err e = ERR_INIT;

		if (json_array_size(m) == 0) {
			fprintf(stderr,
				"dstack vmm: no running VMM has an id starting with %s (see `dstack vmm vmm "
				"ls`)\n",
				argv[2]);
			return 1;
		}
		if (json_array_size(m) > 1) {
			fprintf(
			    stderr,
			    "dstack vmm: %zu running VMMs have ids starting with %s; give more of the id\n",
			    json_array_size(m), argv[2]);
			return 1;
		}
		j = json_array_get(m, 0);
		json_object_set_new(cfg, "active_vmm", json_string(js(j, "id")));
		dir = xfmt("%s", p);
		*strrchr(dir, '/') = 0;
		dump = json_dumps(cfg, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (mkdir_p(dir, 0700, &e) < 0 || file_write_atomic(p, dump, strlen(dump), 0600, &e) < 0)
			return die("vmm switch", &e);
		printf("Active VMM: %s (%s)\n", js(j, "id"), js(j, "url"));
		if (json_string_value(json_object_get(cfg, "url")) ||
		    (getenv("DSTACK_VMM_URL") && *getenv("DSTACK_VMM_URL")))
			fprintf(stderr,
				"dstack vmm: note: DSTACK_VMM_URL or `url` in %s still takes precedence\n",
				p);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "ls")) {
		fprintf(stderr, "usage: dstack vmm vmm ls | vmm switch <id-prefix>\n");
		return 2;
	}
	if (c->json) {
		print_json(all);
		return 0;
	}
	printf("   %-36s  %-8s  %-32s  %s\n", "ID", "PID", "URL", "Working dir");
	json_array_foreach(all, i, j) printf(
	    "%s  %-36s  %-8d  %-32s  %s\n",
	    active && *active && !strncmp(js(j, "id"), active, strlen(active)) ? " *" : "  ", js(j, "id"),
	    (int)json_integer_value(json_object_get(j, "pid")), js(j, "url"), js(j, "working_dir"));
	return 0;
}

static int stop(struct vmm_cli *c, int argc, char **argv)
{
	bool force = argc > 2 && (!strcmp(argv[1], "-f") || !strcmp(argv[1], "--force"));

	return id_call(c, force ? "StopVm" : "ShutdownVm", argc, argv);
}

static int kms_cmd(struct vmm_cli *c, int argc, char **argv)
{
	_cleanup_json_ json_t *w = whitelist_load();
	json_t *arr = json_object_get(w, "trusted_signers"), *v;
	_cleanup_free_ char *p = whitelist_path(), *dump = NULL, *dir = NULL;
	struct err e = ERR_INIT;
	size_t i;
	uint8_t k[33];

	(void)c;
	if (argc < 2 || !strcmp(argv[1], "list")) {
		json_array_foreach(arr, i, v) printf("%s\n", json_string_value(v));
		return 0;
	}
	if (argc < 3 || (strcmp(argv[1], "add") && strcmp(argv[1], "remove"))) {
		fprintf(stderr, "usage: dstack vmm kms list | add <pubkey> | remove <pubkey>\n");
		return 2;
	}
	const char *key = argv[2] + (!strncmp(argv[2], "0x", 2) ? 2 : 0);
	if (hex_decode_exact(key, k, 33, &e) < 0)
		return die("kms: the signer key is 33 bytes of hex", &e);
	for (i = json_array_size(arr); i-- > 0;)
		if (!strcasecmp(json_string_value(json_array_get(arr, i)), key))
			json_array_remove(arr, i);
	if (!strcmp(argv[1], "add"))
		json_array_append_new(arr, json_string(key));
	dir = xfmt("%s", p);
	*strrchr(dir, '/') = 0;
	dump = json_dumps(w, JSON_INDENT(2));
	if (mkdir_p(dir, 0700, &e) < 0 || file_write_atomic(p, dump, strlen(dump), 0600, &e) < 0)
		return die("kms", &e);
	return 0;
}

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: dstack vmm [--url URL] [--token T | --auth-user U --auth-password P] [--json] <command>\n"
	    "commands:\n"
	    "  lsvm [-v]                        list VMs (--json: the vms array)\n"
	    "  info <id>                        one VM\n"
	    "  lsimage                          list images\n"
	    "  lsgpu                            list GPUs and whether they are free\n"
	    "  compose --name N (--docker-compose F | --bash-script F) --output F [--kms] [--gateway]\n"
	    "          [--local-key-provider] [--key-provider none|kms|local|tpm] [--key-provider-id HEX]\n"
	    "          [--public-logs] [--public-sysinfo] [--env-file F] [--no-instance-id] [--secure-time]\n"
	    "          [--prelaunch-script F] [--swap 4G] [--event-log-version 1|2]\n"
	    "  app-id <app-compose.json>        the default app id of a compose file\n"
	    "  deploy --name N --image I --compose F [--vcpu 1] [--memory 1G] [--disk 20G] [--swap 4G]\n"
	    "         [--port tcp[:addr]:host:vm]... [--env-file F] [--user-config F] [--app-id HEX]\n"
	    "         [--gpu SLOT|all]... [--ppcie] [--pin-numa] [--hugepages] [--kms-url U]...\n"
	    "         [--kms-encrypt-url U] [--gateway-url U]... [--stopped] [--no-tee|--tee]\n"
	    "         [--simulated-tee V] [--net user|bridge]\n"
	    "  start <id>                       start a stopped VM\n"
	    "  stop [-f] <id>                   graceful shutdown through the guest; -f kills it\n"
	    "  remove <id>                      remove a VM and its work directory\n"
	    "  resize <id> [--vcpu N] [--memory M] [--disk D] [--image I]   (stopped VMs)\n"
	    "  logs <id> [-n N] [-f] [--channel serial|stdout|stderr]\n"
	    "  update <id> [--vcpu N] [--memory M] [--disk D] [--image I] [--compose F]\n"
	    "         [--prelaunch-script F] [--swap S] [--env-file F] [--user-config F]\n"
	    "         [--port P... | --no-ports] [--gpu SLOT|all... | --ppcie | --no-gpus]\n"
	    "         [--no-tee | --tee] [--kms-url U]...   resize, then one UpgradeApp\n"
	    "  update-env <id> --env-file F [--kms-url U]\n"
	    "  update-app-compose <id> F\n"
	    "  update-user-config <id> F\n"
	    "  update-ports <id> [--port tcp[:addr]:host:vm]...\n"
	    "  kms list | add <key> | remove <key>   trusted KMS signers (~/.dstack-vmm/kms-whitelist.json)\n"
	    "  vmm ls                           running VMMs on this machine (* = active)\n"
	    "  vmm switch <id-prefix>           make one of them the active VMM\n"
	    "URL: --url, DSTACK_VMM_URL, `url` in ~/.dstack-vmm/config.json, the running VMM named by\n"
	    "`active_vmm` there (vmm switch), the only running VMM, else http://localhost:8080.\n"
	    "Credentials: prefer DSTACK_VMM_TOKEN or DSTACK_VMM_AUTH_USER/DSTACK_VMM_AUTH_PASSWORD;\n"
	    "--token and --auth-password put the secret in argv, readable by every user (ps).\n");
}

int cmd_vmm(int argc, char **argv)
{
	struct vmm_cli c = {0};
	const char *url = NULL, *argv_secret = NULL;
	int i = 1, rc;

	c.token = getenv("DSTACK_VMM_TOKEN");
	c.user = getenv("DSTACK_VMM_AUTH_USER");
	c.password = getenv("DSTACK_VMM_AUTH_PASSWORD");
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--json"))
			c.json = true;
		else if (!strcmp(argv[i], "--url") && i + 1 < argc)
			url = argv[++i];
		else if (!strcmp(argv[i], "--token") && i + 1 < argc)
			c.token = argv[++i], argv_secret = "--token";
		else if (!strcmp(argv[i], "--auth-user") && i + 1 < argc)
			c.user = argv[++i];
		else if (!strcmp(argv[i], "--auth-password") && i + 1 < argc)
			c.password = argv[++i], argv_secret = "--auth-password";
		else {
			usage();
			return !strcmp(argv[i], "-h") || !strcmp(argv[i], "--help") ? 0 : 2;
		}
	}
	if (i >= argc) {
		usage();
		return 2;
	}
	if (argv_secret)
		fprintf(stderr,
			"dstack vmm: warning: %s exposes the secret to other users; set DSTACK_VMM_TOKEN or "
			"DSTACK_VMM_AUTH_PASSWORD instead\n",
			argv_secret);
	if (!c.token && (!!c.user != !!c.password)) {
		fprintf(stderr, "dstack vmm: --auth-user and --auth-password go together\n");
		return 2;
	}
	/* --json may also follow the subcommand */
	for (int k = i + 1; k < argc; k++)
		if (!strcmp(argv[k], "--json")) {
			c.json = true;
			memmove(&argv[k], &argv[k + 1], (size_t)(argc - k - 1) * sizeof(*argv));
			argc--;
			k--;
		}
	argc -= i;
	argv += i;
	/* commands that never talk to a VMM do not look for one */
	if (strcmp(argv[0], "compose") && strcmp(argv[0], "app-id") && strcmp(argv[0], "kms") &&
	    strcmp(argv[0], "vmm"))
		c.url = resolve_url(url);
	static const struct {
		const char *name;
		int (*fn)(struct vmm_cli *, int, char **);
	} cmds[] = {{"lsvm", lsvm},
		    {"info", info},
		    {"lsimage", lsimage},
		    {"compose", compose},
		    {"app-id", app_id_cmd},
		    {"deploy", deploy},
		    {"logs", logs},
		    {"stop", stop},
		    {"update-env", update_env},
		    {"update-app-compose", update_app_compose},
		    {"update-ports", update_ports},
		    {"kms", kms_cmd},
		    {"lsgpu", lsgpu},
		    {"resize", resize},
		    {"update-user-config", update_user_config},
		    {"update", update},
		    {"vmm", vmm_cmd}};
	if (!strcmp(argv[0], "start") || !strcmp(argv[0], "remove")) {
		rc = id_call(&c, !strcmp(argv[0], "start") ? "StartVm" : "RemoveVm", argc, argv);
		free(c.url);
		return rc;
	}
	for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++) {
		if (!strcmp(argv[0], cmds[k].name)) {
			rc = cmds[k].fn(&c, argc, argv);
			free(c.url);
			return rc;
		}
	}
	free(c.url);
	fprintf(stderr, "dstack vmm: unknown command %s\n", argv[0]);
	usage();
	return 2;
}
