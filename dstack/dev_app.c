/*
 * dev_app.c — the example app of `dstack dev`: its env encrypted to the
 * KMS's app env key, the VMM's CreateVm for each instance, waiting until it
 * answers through the gateway (saying which step is missing when it does
 * not), the curl commands that reach it, and removing its VMs on `down`.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/mem.h"
#include "crypto/compose.h"
#include "crypto/envcrypt.h"
#include "crypto/envlist.h"
#include "crypto/hash.h"
#include "dev.h"
#include "http/client.h"

#define COMPOSE_MAX (1024 * 1024)

int dev_rpc_json(const char *url, json_t *in, json_t **out, struct err *e)
{
	_cleanup_free_ char *body = json_dumps(in, JSON_COMPACT);
	const char *hdr[] = {"Content-Type: application/json", NULL};
	struct http_client_opts o = {.connect_timeout_ms = 3000, .timeout_ms = 60000, .insecure = true};
	struct http_response r = {0};
	if (!body)
		return err_set(e, "out of memory");
	if (http_fetch(&o, "POST", url, hdr, body, strlen(body), &r, e) < 0)
		return err_wrap(e, "%s", url);
	json_error_t je;
	json_t *j = json_loadb((const char *)r.body.data, r.body.len, JSON_DECODE_ANY, &je);
	if (r.status == 200 && !json_is_object(j)) {
		/* google.protobuf.Empty replies: whatever the body, success */
		json_decref(j);
		j = json_object();
	}
	if (r.status != 200 || !j || !json_is_object(j)) {
		json_t *msg = j ? json_object_get(j, "error") : NULL;
		err_set(e, "%s: HTTP %ld: %s", url, r.status,
			json_is_string(msg) ? json_string_value(msg) : (const char *)r.body.data);
		json_decref(j);
		http_response_free(&r);
		return -1;
	}
	http_response_free(&r);
	*out = j;
	return 0;
}

char *dev_state_file(const struct dev *d, const char *name)
{
	return dev_pathf("%s/run/%s", d->dir, name);
}

static int encrypt_env(const struct dev *d, const char *app_id_hex, struct buf *blob, struct err *e)
{
	_cleanup_free_ char *url =
	    dev_pathf("https://127.0.0.1:%u/prpc/GetAppEnvEncryptPubKey?json", d->c.kms_rpc_port);
	_cleanup_json_ json_t *req = json_pack("{s:s}", "app_id", app_id_hex), *resp = NULL;
	if (dev_rpc_json(url, req, &resp, e) < 0)
		return err_wrap(e, "KMS env public key");
	const char *pub_hex = json_string_value(json_object_get(resp, "public_key"));
	uint8_t pub[32];
	if (!pub_hex || hex_decode_exact(pub_hex, pub, 32, e) < 0)
		return err_set(e, "KMS env public key: no 32-byte public_key in the reply");
	uint8_t *text = NULL;
	size_t n;
	if (file_read_all(d->env_path, ENV_TOTAL_MAX, &text, &n, e) < 0)
		return err_wrap(e, "env file");
	struct env_list l = ENV_LIST_INIT;
	_cleanup_buf_ struct buf plain = BUF_INIT;
	int rc = env_file_parse((char *)text, n, &l, e);
	secure_zero(text, n);
	free(text);
	if (rc == 0)
		rc = env_list_validate(&l, e);
	if (rc == 0)
		rc = env_plaintext_build(&l, &plain, e);
	env_list_free(&l);
	if (rc == 0)
		rc = env_envelope_encrypt(pub, plain.data, plain.len, blob, e);
	secure_zero(plain.data, plain.len);
	return rc < 0 ? err_wrap(e, "%s", d->env_path) : 0;
}

/* The OS image hash the VMM gives CVMs of the image (its digest.txt), "" if
 * it has none; malloc'd. */
static char *image_digest(const struct dev *d)
{
	_cleanup_free_ char *p = dev_pathf("%s/vmm/image/%s/digest.txt", d->dir, d->image);
	uint8_t *t = NULL;
	size_t n;
	if (file_read_all(p, 4096, &t, &n, NULL) < 0)
		return strdup("");
	size_t s = 0;
	while (s < n && (t[s] == ' ' || t[s] == '\n' || t[s] == '\r' || t[s] == '\t'))
		s++;
	size_t l = strcspn((char *)t + s, " \t\r\n");
	char *r = strndup((char *)t + s, l);
	free(t);
	return r;
}

int dev_allow_app(const struct dev *d, const json_t *platform, struct err *e)
{
	uint8_t *compose = NULL;
	size_t n;
	if (file_read_all(d->compose_path, COMPOSE_MAX, &compose, &n, e) < 0)
		return err_wrap(e, "app compose");
	_cleanup_free_ char *os = image_digest(d);
	_cleanup_json_ json_t *boot = dev_app_boot_info((char *)compose, n, os ? os : "", platform);
	free(compose);
	if (!boot)
		return err_set(e, "out of memory");
	return dev_policy_allow(d, "the app", false, boot, e);
}

int dev_deploy_app(const struct dev *d, char app_id_hex[41], struct err *e)
{
	uint8_t *compose = NULL, hash[32], app_id[20];
	size_t n;
	if (file_read_all(d->compose_path, COMPOSE_MAX, &compose, &n, e) < 0)
		return err_wrap(e, "app compose");
	compose_hash(compose, n, hash);
	compose_default_app_id(hash, app_id);
	hex_encode(app_id, 20, app_id_hex);
	_cleanup_buf_ struct buf blob = BUF_INIT;
	if (encrypt_env(d, app_id_hex, &blob, e) < 0) {
		free(compose);
		return -1;
	}
	_cleanup_free_ char *blob_hex = hex_encode_alloc(blob.data, blob.len);
	_cleanup_free_ char *url = dev_pathf("http://127.0.0.1:%u/prpc/CreateVm?json", d->c.vmm_rpc_port);
	/* simulated CVMs resolve the domains to their loopback (relayed to the
	 * host's); QEMU guests reach the host at 10.0.2.2 */
	bool qemu = !strcmp(d->c.vmm_backend, "qemu");
	_cleanup_free_ char *kms = dev_pathf(
	    "https://%s:%u", qemu ? hostcfg_host_for_cvms(&d->c) : d->c.kms_domain, d->c.kms_rpc_port);
	_cleanup_free_ char *gw =
	    dev_pathf("https://%s:%u", qemu ? hostcfg_host_for_cvms(&d->c) : d->c.gateway_domain,
		      d->c.gateway_rpc_port);
	_cleanup_free_ char *ids_path = dev_state_file(d, "app-vms");
	struct buf ids = BUF_INIT;
	int rc = 0;
	for (int i = 1; i <= d->instances && rc == 0; i++) {
		char name[32];
		snprintf(name, sizeof name, "hello-%d", i);
		_cleanup_json_ json_t *req =
		    json_pack("{s:s, s:s, s:s%, s:i, s:i, s:i, s:s, s:s, s:[s], s:[s], s:s}", "name", name,
			      "image", d->image, "compose_file", (const char *)compose, n, "vcpu", 1,
			      "memory", 512, "disk_size", 1, "encrypted_env", blob_hex, "app_id", app_id_hex,
			      "kms_urls", kms, "gateway_urls", gw, "simulated_tee", "dstack-tdx");
		_cleanup_json_ json_t *resp = NULL;
		if (!req) {
			rc = err_set(e, "out of memory");
			break;
		}
		rc = dev_rpc_json(url, req, &resp, e);
		if (rc < 0) {
			err_wrap(e, "VMM CreateVm");
			break;
		}
		const char *id = json_string_value(json_object_get(resp, "id"));
		buf_printf(&ids, "%s\n", id ? id : "");
		printf("  app          instance %s: VM %s\n", name, id ? id : "?");
	}
	free(compose);
	if (ids.len && file_write_atomic(ids_path, ids.data, ids.len, 0644, NULL) < 0)
		rc = -1;
	buf_free(&ids);
	if (rc == 0) {
		_cleanup_free_ char *p = dev_state_file(d, "app-id");
		char line[42];
		snprintf(line, sizeof line, "%s\n", app_id_hex);
		rc = file_write_atomic(p, line, strlen(line), 0644, e);
	}
	return rc;
}

/* GET url through the gateway, resolving its host to 127.0.0.1 and trusting
 * the dev CA. Returns the HTTP status (0 on transport failure). */
static long gateway_get(const struct dev *d, const char *host, const char *url, struct buf *body)
{
	_cleanup_free_ char *ca = dev_pathf("%s/certs/dev-ca.crt", d->dir);
	_cleanup_free_ char *res = dev_pathf("%s:%u:127.0.0.1", host, d->c.gateway_serving_port);
	struct curl_slist *rl = curl_slist_append(NULL, res);
	CURL *h = curl_easy_init();
	long code = 0;
	if (!h || !rl)
		goto out;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_RESOLVE, rl);
	curl_easy_setopt(h, CURLOPT_CAINFO, ca);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	FILE *f = body ? open_memstream((char **)&body->data, &body->len) : fopen("/dev/null", "we");
	if (!f)
		goto out;
	curl_easy_setopt(h, CURLOPT_WRITEDATA, f);
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	fclose(f);
	if (body)
		body->cap = body->len + 1;
out:
	if (h)
		curl_easy_cleanup(h);
	curl_slist_free_all(rl);
	return code;
}

void dev_print_urls(const struct dev *d, const char *app_id)
{
	static const struct {
		uint16_t port;
		char suffix;
		const char *what, *flags;
	} forms[] = {{0, 0, "basic (port 80 in the CVM)", ""},
		     {8080, 0, "custom port", ""},
		     {443, 's', "TLS passthrough (the app terminates TLS)", "-k "},
		     {50051, 'g', "HTTP/2 (gateway terminates TLS, h2 to the app)", "--http2 "}};
	printf("\nThe app (app id %s) through the gateway:\n", app_id);
	for (size_t i = 0; i < ARRAY_SIZE(forms); i++) {
		_cleanup_free_ char *url = hostcfg_app_url(&d->c, app_id, forms[i].port, forms[i].suffix);
		const char *host = url + strlen("https://");
		size_t hl = strcspn(host, ":/");
		if (forms[i].suffix == 's')
			printf("  # %s\n  curl %s--resolve %.*s:%u:127.0.0.1 %s\n", forms[i].what,
			       forms[i].flags, (int)hl, host, d->c.gateway_serving_port, url);
		else
			printf(
			    "  # %s\n  curl %s--cacert %s/certs/dev-ca.crt --resolve %.*s:%u:127.0.0.1 %s\n",
			    forms[i].what, forms[i].flags, d->dir, (int)hl, host, d->c.gateway_serving_port,
			    url);
	}
}

/* The VMs this run deployed (run/app-vms), as the VMM's Status reports
 * them: new reference to an array of its vms[] entries, NULL if the VMM did
 * not answer. A VM the VMM no longer knows is left out. */
static json_t *our_vms(const struct dev *d)
{
	_cleanup_free_ char *p = dev_state_file(d, "app-vms");
	_cleanup_free_ char *url = dev_pathf("http://127.0.0.1:%u/prpc/Status?json", d->c.vmm_rpc_port);
	_cleanup_json_ json_t *req = json_object(), *resp = NULL, *ids = json_object();
	struct err e = ERR_INIT;
	_cleanup_free_ uint8_t *text = NULL;
	size_t n;
	if (!req || !ids || file_read_all(p, 64 * 1024, &text, &n, NULL) < 0 ||
	    dev_rpc_json(url, req, &resp, &e) < 0)
		return NULL;
	for (char *save = NULL, *line = strtok_r((char *)text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		json_object_set_new(ids, line, json_true());
	json_t *mine = json_array(), *vms = json_object_get(resp, "vms"), *v;
	size_t i;
	json_array_foreach(vms, i, v)
	{
		const char *id = json_string_value(json_object_get(v, "id"));
		if (mine && id && json_object_get(ids, id))
			json_array_append(mine, v);
	}
	return mine;
}

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* A VM of ours whose boot failed (the VMM reports a boot error, or its
 * process exited), or NULL. */
static const json_t *failed_vm(const json_t *mine)
{
	size_t i;
	const json_t *v;
	json_array_foreach(mine, i, v)
	{
		if (*str(v, "boot_error") || !strcmp(str(v, "status"), "exited"))
			return v;
	}
	return NULL;
}

static int vm_failed(const struct dev *d, const json_t *v, struct err *e)
{
	const char *id = str(v, "id");
	_cleanup_free_ char *err_log = dev_pathf("%s/vmm/vm/%s/stderr.log", d->dir, id);
	_cleanup_free_ char *out_log = dev_pathf("%s/vmm/vm/%s/stdout.log", d->dir, id);
	_cleanup_free_ char *serial = dev_pathf("%s/vmm/vm/%s/serial.log", d->dir, id);
	const char *log = file_exists(serial) ? serial : out_log;
	dev_print_log_tail(log);
	if (strcmp(log, serial))
		dev_print_log_tail(err_log);
	return err_set(e,
		       "the app's VM %s (%s) did not boot: %s (status %s, boot progress \"%s\"); its logs "
		       "are in %s/vmm/vm/%s/",
		       str(v, "name"), id,
		       *str(v, "boot_error") ? str(v, "boot_error") : "its process exited", str(v, "status"),
		       str(v, "boot_progress"), d->dir, id);
}

/* Registrations in the gateway's admin Status of the instances in `mine`
 * (registrations left from earlier runs do not count), or -1. */
static int gateway_hosts(const struct dev *d, const json_t *mine)
{
	_cleanup_free_ char *tok_path = dev_pathf("%s/certs/gateway-admin.token", d->dir);
	_cleanup_free_ char *url = dev_pathf("http://127.0.0.1:%u/prpc/Status?json", d->c.gateway_admin_port);
	uint8_t *tok = NULL;
	size_t n;
	if (file_read_all(tok_path, 128, &tok, &n, NULL) < 0)
		return -1;
	tok[strcspn((char *)tok, "\r\n")] = '\0';
	char *auth = dev_pathf("Authorization: Bearer %s", (char *)tok);
	secure_zero(tok, n);
	free(tok);
	const char *hdr[] = {auth, NULL};
	struct http_client_opts o = {.connect_timeout_ms = 2000, .timeout_ms = 5000};
	struct http_response r = {0};
	int count = -1;
	if (http_fetch(&o, "GET", url, hdr, NULL, 0, &r, NULL) == 0 && r.status == 200) {
		json_t *j = json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
		json_t *h = json_object_get(j, "hosts"), *v, *m;
		size_t i, k;
		count = 0;
		json_array_foreach(h, i, v)
		{
			json_array_foreach(mine, k, m)
			{
				if (*str(m, "instance_id") &&
				    !strcmp(str(v, "instance_id"), str(m, "instance_id")))
					count++;
			}
		}
		json_decref(j);
	}
	http_response_free(&r);
	secure_zero(auth, strlen(auth));
	free(auth);
	return count;
}

int dev_wait_app(const struct dev *d, const char *app_id, struct err *e)
{
	_cleanup_free_ char *url = hostcfg_app_url(&d->c, app_id, 0, 0);
	_cleanup_free_ char *host = dev_pathf("%s.%s", app_id, d->c.gateway_public_domain);
	double deadline = dev_now_s() + d->app_timeout_s;
	while (dev_now_s() < deadline) {
		struct buf b = BUF_INIT;
		long code = gateway_get(d, host, url, &b);
		if (code == 200) {
			printf("  app          answers: %.*s", (int)b.len, b.data ? (char *)b.data : "");
			buf_free(&b);
			return 0;
		}
		buf_free(&b);
		/* a boot that failed will not succeed by waiting longer */
		_cleanup_json_ json_t *mine = our_vms(d);
		const json_t *bad = failed_vm(mine);
		if (bad)
			return vm_failed(d, bad, e);
		dev_sleep_ms(1000);
	}
	/* Say which step is missing: registration with the gateway, or the
	 * data path to a registered instance. */
	_cleanup_json_ json_t *mine = our_vms(d);
	size_t total = json_array_size(mine), i;
	json_t *v;
	json_array_foreach(mine, i, v)
	{
		/* a QEMU guest's console tells how far its boot got */
		_cleanup_free_ char *serial = dev_pathf("%s/vmm/vm/%s/serial.log", d->dir, str(v, "id"));
		if (file_exists(serial))
			dev_print_log_tail(serial);
	}
	int hosts = gateway_hosts(d, mine);
	if (!mine)
		return err_set(e,
			       "the app did not answer at %s within %d s, and the VMM did not answer "
			       "(see %s/logs/vmm.log)",
			       url, d->app_timeout_s, d->dir);
	if (hosts < 0)
		return err_set(
		    e,
		    "the app did not answer at %s within %d s, and the gateway admin API did not answer "
		    "(see %s/logs/gateway.log)",
		    url, d->app_timeout_s, d->dir);
	if (hosts == 0)
		return err_set(
		    e,
		    "the app did not answer at %s within %d s: none of its %zu instance(s) registered with "
		    "the gateway (the CVM's boot did not reach RegisterCvm; see the VM logs under "
		    "%s/vmm/vm/ and %s/logs/gateway.log)",
		    url, d->app_timeout_s, total, d->dir, d->dir);
	return err_set(
	    e,
	    "the app did not answer at %s within %d s although %d of its %zu instance(s) registered "
	    "with the gateway (WireGuard handshake? see %s/logs/gateway.log and the VM logs under "
	    "%s/vmm/vm/)",
	    url, d->app_timeout_s, hosts, total, d->dir, d->dir);
}

void dev_remove_vms(const struct dev *d)
{
	_cleanup_free_ char *p = dev_state_file(d, "app-vms");
	uint8_t *text = NULL;
	size_t n;
	if (file_read_all(p, 64 * 1024, &text, &n, NULL) < 0)
		return;
	if (dev_read_pid(d, "vmm") > 0) {
		_cleanup_free_ char *url =
		    dev_pathf("http://127.0.0.1:%u/prpc/RemoveVm?json", d->c.vmm_rpc_port);
		for (char *save = NULL, *id = strtok_r((char *)text, "\n", &save); id;
		     id = strtok_r(NULL, "\n", &save)) {
			_cleanup_json_ json_t *req = json_pack("{s:s}", "id", id), *resp = NULL;
			struct err e = ERR_INIT;
			if (dev_rpc_json(url, req, &resp, &e) < 0)
				fprintf(stderr, "  app          RemoveVm %s: %s\n", id, err_str(&e));
			else
				printf("  app          removed VM %s\n", id);
		}
	}
	free(text);
	unlink(p);
}
