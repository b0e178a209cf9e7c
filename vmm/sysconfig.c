/*
 * sysconfig.c — see sysconfig.h. Documents are built with jansson in
 * insertion order and dumped compact, which matches serde_json's output for
 * these shapes (no spaces, "/" unescaped, UTF-8 kept).
 */
#include "vmm/sysconfig.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/mem.h"
#include "codec/jcs.h"
#include "crypto/compose.h"
#include "vmm/workdir.h"

int vmm_tdx_variant_resolve(const char *config_variant, int measure_acpi_tables, uint32_t memory_mb,
			    bool image_has_material, const char **out, struct err *e)
{
	const char *v = config_variant;

	if (measure_acpi_tables >= 0)
		v = measure_acpi_tables ? "legacy" : "lite";
	if (!strcmp(v, "auto")) {
		if (memory_mb < 3072 && memory_mb != 2048)
			v = "legacy";
		else
			v = image_has_material ? "lite" : "legacy";
	}
	if (!strcmp(v, "legacy")) {
		*out = "legacy";
		return 0;
	}
	if (strcmp(v, "lite"))
		return err_set(e, "invalid TDX attestation variant: %s", v);
	if (!image_has_material)
		return err_set(
		    e, "TDX attestation variant lite requires the image digest and measurement files");
	*out = "lite";
	return 0;
}

static json_t *file_b64(const char *path, struct err *e)
{
	_cleanup_free_ uint8_t *data = NULL;
	_cleanup_free_ char *b64 = NULL;
	size_t len;

	if (file_read_all(path, VMM_FILE_MAX, &data, &len, e) < 0)
		return NULL;
	b64 = base64_encode_alloc(data, len);
	return json_string(b64);
}

char *vmm_vm_config_string(const struct vmm_vm_config_in *in, struct err *e)
{
	const struct vmm_config *c = in->cfg;
	const struct vmm_manifest *m = in->m;
	const struct vmm_image *img = in->img;
	_cleanup_json_ json_t *o = json_object();
	uint32_t num_gpus = m->has_gpus ? (uint32_t)m->gpus.gpus.n : 0;
	uint32_t num_sw = m->has_gpus ? (uint32_t)m->gpus.bridges.n : 0;

	json_object_set_new(o, "os_image_hash", json_string(img->digest ? img->digest : ""));
	json_object_set_new(o, "cpu_count", json_integer(in->cpu_count));
	json_object_set_new(o, "memory_size", json_integer((json_int_t)in->memory_mb << 20));
	if (c->cvm.qemu_single_pass_add_pages >= 0)
		json_object_set_new(o, "qemu_single_pass_add_pages",
				    json_boolean(c->cvm.qemu_single_pass_add_pages));
	if (c->cvm.qemu_pic >= 0)
		json_object_set_new(o, "pic", json_boolean(c->cvm.qemu_pic));
	if (c->cvm.qemu_version)
		json_object_set_new(o, "qemu_version", json_string(c->cvm.qemu_version));
	json_object_set_new(o, "pci_hole64_size", json_integer((json_int_t)c->cvm.qemu_pci_hole64_size));
	json_object_set_new(o, "hugepages", json_boolean(m->hugepages));
	json_object_set_new(o, "num_gpus", json_integer(num_gpus));
	json_object_set_new(o, "num_nvswitches", json_integer(num_sw));
	if (in->num_nics != 1)
		json_object_set_new(o, "num_nics", json_integer((json_int_t)in->num_nics));
	if (m->volumes.n)
		json_object_set_new(o, "num_verity_volumes", json_integer((json_int_t)m->volumes.n));
	if (m->swtpm)
		json_object_set_new(o, "swtpm", json_true());
	json_object_set_new(o, "hotplug_off", json_boolean(c->cvm.qemu_hotplug_off));
	json_object_set_new(o, "image", json_string(m->image));
	json_object_set_new(o, "host_share_mode", json_string(c->cvm.host_share_mode));
	if (img->ovmf_variant)
		json_object_set_new(o, "ovmf_variant", json_string(img->ovmf_variant));
	if (in->tdx_variant && strcmp(in->tdx_variant, "legacy"))
		json_object_set_new(o, "tdx_attestation_variant", json_string(in->tdx_variant));
	if (img->sha256sum_path && img->measurement_tdx) {
		json_t *cs = file_b64(img->sha256sum_path, e),
		       *ms = cs ? file_b64(img->measurement_tdx, e) : NULL;

		if (!ms) {
			json_decref(cs);
			return NULL;
		}
		json_object_set_new(o, "tdx_measurement",
				    json_pack("{s:o,s:o}", "checksum_file", cs, "measurement", ms));
	}
	json_object_set_new(o, "spec_version", json_integer(1));
	return json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
}

static const char *host_api_cid(const struct vmm_config *c)
{
	const char *a = c->host_api.address;

	return strncmp(a, "vsock:", 6) == 0 ? a + 6 : "2";
}

json_t *vmm_sys_config_json(const struct vmm_config *cfg, const struct vmm_manifest *m, const char *vm_config,
			    const char *mr_config)
{
	json_t *o = json_object();
	const char *pccs = cfg->cvm.pccs_url ? cfg->cvm.pccs_url : "";

	json_object_set_new(o, "kms_urls", strv_to_json(m->kms_urls.n ? &m->kms_urls : &cfg->cvm.kms_urls));
	json_object_set_new(o, "gateway_urls",
			    strv_to_json(m->gateway_urls.n ? &m->gateway_urls : &cfg->cvm.gateway_urls));
	json_object_set_new(o, "pccs_url", json_string(pccs));
	json_object_set_new(o, "collateral_urls", json_pack("{s:s}", "pccs", pccs));
	json_object_set_new(o, "nvidia_attestation_proxy_url",
			    cfg->cvm.nvidia_attestation_proxy_url
				? json_string(cfg->cvm.nvidia_attestation_proxy_url)
				: json_null());
	json_object_set_new(o, "docker_registry",
			    json_string(cfg->cvm.docker_registry ? cfg->cvm.docker_registry : ""));
	json_object_set_new(o, "host_api_url",
			    json_sprintf("vsock://%s:%u/api", host_api_cid(cfg), cfg->host_api.port));
	json_object_set_new(o, "vm_config", json_string(vm_config));
	if (mr_config)
		json_object_set_new(o, "mr_config", json_string(mr_config));
	return o;
}

void vmm_mrconfigid_v1(const uint8_t compose_hash[32], uint8_t out[48])
{
	mr_config_id_v1(compose_hash, out);
}

void vmm_mrconfigid_v3(const char *document, uint8_t out[48])
{
	mr_config_id_v3(document, strlen(document), out);
}

static json_t *hex_json(const uint8_t *p, size_t len)
{
	_cleanup_free_ char *h = hex_encode_alloc(p ? p : (const uint8_t *)"", len);

	return json_string(h);
}

char *vmm_mr_config_v3_document(const struct vmm_mr_config_v3 *in)
{
	_cleanup_json_ json_t *o = json_object();

	json_object_set_new(o, "version", json_integer(3));
	json_object_set_new(o, "app_id", hex_json(in->app_id, in->app_id_len));
	json_object_set_new(o, "compose_hash", hex_json(in->compose_hash, 32));
	if (in->gpu_policy_hash)
		json_object_set_new(o, "gpu_policy_hash", hex_json(in->gpu_policy_hash, 32));
	json_object_set_new(o, "key_provider", json_string(in->key_provider));
	json_object_set_new(o, "key_provider_id", hex_json(in->key_provider_id, in->key_provider_id_len));
	json_object_set_new(o, "instance_id", hex_json(in->instance_id, in->instance_id_len));
	if (in->init_script_hashes)
		json_object_set_new(o, "init_script_hashes", strv_to_json(in->init_script_hashes));
	return jcs_dumps(o, NULL);
}

void vmm_boot_prep_free(struct vmm_boot_prep *p)
{
	free(p->mrconfigid_b64);
	free(p->vm_config);
	free(p->mr_config);
	memset(p, 0, sizeof(*p));
}

/* Read the previous seed from .instance_info, if any. */
static int old_seed(const char *workdir, uint8_t **seed, size_t *len)
{
	_cleanup_free_ uint8_t *data = NULL;
	_cleanup_json_ json_t *j = NULL;
	size_t dlen;
	bool exists;
	const char *s;

	*seed = NULL;
	*len = 0;
	if (vmm_shared_read(workdir, VMM_INSTANCE_INFO_FILE, &data, &dlen, &exists, NULL) < 0 || !exists)
		return 0;
	j = json_loadb((const char *)data, dlen, 0, NULL);
	s = json_str(j, "instance_id_seed");
	if (!s || !*s)
		return 0;
	if (hex_decode_alloc(s, strlen(s), seed, len, NULL) < 0)
		return 0;
	return 0;
}

/* §5.4 V3: fix the seed, derive instance_id, write .instance_info, build the document. */
static char *prepare_v3(const struct vmm_manifest *m, const struct vmm_compose *cp, const char *workdir,
			struct err *e)
{
	_cleanup_free_ uint8_t *seed = NULL, *app_id = NULL;
	size_t seed_len = 0, app_id_len = 0;
	uint8_t inst[32], gph[32];
	size_t inst_len = 0;
	struct strv hashes = {0};
	char *doc;

	if (strcmp(cp->key_provider, "none"))
		old_seed(workdir, &seed, &seed_len);
	if (!seed) {
		seed = malloc(20);
		if (!seed || RAND_bytes(seed, 20) != 1)
			return err_ssl(e, "random seed"), NULL;
		seed_len = 20;
	}
	if (str_empty(m->app_id) ||
	    hex_decode_alloc(m->app_id, strlen(m->app_id), &app_id, &app_id_len, NULL) < 0) {
		free(app_id);
		app_id = malloc(20);
		if (!app_id)
			abort();
		memcpy(app_id, cp->hash, 20);
		app_id_len = 20;
	}
	if (!cp->no_instance_id) {
		_cleanup_free_ uint8_t *buf = malloc(seed_len + app_id_len);

		if (!buf)
			abort();
		memcpy(buf, seed, seed_len);
		memcpy(buf + seed_len, app_id, app_id_len);
		sha256_buf(buf, seed_len + app_id_len, inst);
		inst_len = 20;
	}
	{
		_cleanup_json_ json_t *info = json_object();
		_cleanup_free_ char *text = NULL;

		json_object_set_new(info, "instance_id_seed", hex_json(seed, seed_len));
		json_object_set_new(info, "instance_id", hex_json(inst, inst_len));
		json_object_set_new(info, "app_id", hex_json(app_id, app_id_len));
		text = json_dumps(info, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (vmm_shared_write(workdir, VMM_INSTANCE_INFO_FILE, text, strlen(text), e) < 0)
			return NULL;
	}
	if (m->has_gpus && m->gpus.gpus.n && cp->gpu_policy) {
		_cleanup_free_ char *pol = jcs_dumps(cp->gpu_policy, e);

		if (!pol)
			return NULL;
		sha256_buf(pol, strlen(pol), gph);
	}
	if (cp->manifest_version >= 3) {
		for (size_t i = 0; i < cp->init_scripts.n; i++) {
			uint8_t h[32];
			char hex[65];

			sha256_buf(cp->init_scripts.v[i], strlen(cp->init_scripts.v[i]), h);
			hex_encode(h, 32, hex);
			strv_push(&hashes, hex);
		}
	}
	struct vmm_mr_config_v3 in = {
	    .app_id = app_id,
	    .app_id_len = app_id_len,
	    .compose_hash = cp->hash,
	    .key_provider = cp->key_provider,
	    .key_provider_id = cp->key_provider_id,
	    .key_provider_id_len = cp->key_provider_id_len,
	    .instance_id = inst,
	    .instance_id_len = inst_len,
	    .gpu_policy_hash = (m->has_gpus && m->gpus.gpus.n && cp->gpu_policy) ? gph : NULL,
	    .init_script_hashes = cp->manifest_version >= 3 ? &hashes : NULL,
	};
	doc = vmm_mr_config_v3_document(&in);
	strv_free(&hashes);
	secure_zero(seed, seed_len);
	return doc;
}

static int write_tee_simulator(const struct vmm_config *c, const struct vmm_manifest *m, const char *workdir,
			       const char *vm_config, const char *mr_config, struct err *e)
{
	_cleanup_json_ json_t *o = json_object();
	_cleanup_free_ char *text = NULL;
	const char *seed = c->cvm.tee_simulator.mock_attestation_seed;
	const char *coll = c->cvm.tee_simulator.collateral_base_url;

	json_object_set_new(o, "platform", json_string(m->simulated_tee));
	json_object_set_new(o, "mock_attestation_seed", seed ? json_string(seed) : json_null());
	json_object_set_new(o, "collateral_base_url", coll ? json_string(coll) : json_null());
	json_object_set_new(o, "mr_config", mr_config ? json_string(mr_config) : json_null());
	json_object_set_new(o, "vm_config", json_string(vm_config));
	text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	return vmm_shared_write(workdir, VMM_TEE_SIMULATOR_FILE, text, strlen(text), e);
}

int vmm_prepare_shared(const struct vmm_vm_config_in *in, const char *workdir, bool platform_tdx,
		       struct vmm_boot_prep *out, struct err *e)
{
	const struct vmm_config *c = in->cfg;
	const struct vmm_manifest *m = in->m;
	_cleanup_free_ uint8_t *raw = NULL;
	_cleanup_free_ char *sys_text = NULL;
	_cleanup_json_ json_t *sys = NULL;
	size_t len;
	bool exists, use_mr;
	struct vmm_compose cp;
	uint8_t id[48];

	memset(out, 0, sizeof(*out));
	if (vmm_shared_read(workdir, VMM_APP_COMPOSE_FILE, &raw, &len, &exists, e) < 0)
		return -1;
	if (!exists)
		return err_set(e, "app-compose.json is missing");
	if (vmm_compose_parse(raw, len, &cp, e) < 0)
		return -1;
	if (cp.key_provider_id_len && !c->cvm.use_mrconfigid) {
		vmm_compose_free(&cp);
		return err_set(e, "key_provider_id requires cvm.use_mrconfigid");
	}
	use_mr = !m->no_tee && platform_tdx && c->cvm.use_mrconfigid && in->img->has_version &&
		 vmm_version_ge(&in->img->version, 0, 5, 2);
	if (cp.key_provider_id_len && (use_mr || m->simulated_tee)) {
		out->mr_config = prepare_v3(m, &cp, workdir, e);
		if (!out->mr_config)
			goto fail;
	}
	if (use_mr) {
		if (out->mr_config)
			vmm_mrconfigid_v3(out->mr_config, id);
		else
			vmm_mrconfigid_v1(cp.hash, id);
		out->mrconfigid_b64 = base64_encode_alloc(id, sizeof(id));
	}
	out->vm_config = vmm_vm_config_string(in, e);
	if (!out->vm_config)
		goto fail;
	sys = vmm_sys_config_json(c, m, out->vm_config, out->mr_config);
	sys_text = json_dumps(sys, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
	if (vmm_shared_write(workdir, VMM_SYS_CONFIG_FILE, sys_text, strlen(sys_text), e) < 0)
		goto fail;
	if (m->simulated_tee && write_tee_simulator(c, m, workdir, out->vm_config, out->mr_config, e) < 0)
		goto fail;
	vmm_compose_free(&cp);
	return 0;
fail:
	vmm_compose_free(&cp);
	vmm_boot_prep_free(out);
	return -1;
}
