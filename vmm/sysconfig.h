/*
 * sysconfig.h — what the guest reads from shared/ at boot (spec §5.4):
 * .sys-config.json with its embedded `vm_config` string, MRCONFIGID (V1 or
 * V3) and the .instance_info / mr_config documents V3 needs.
 *
 * `vm_config` is measurement input: the verifier rebuilds the machine from
 * it, so its field set, order and omissions are fixed here in one function.
 */
#ifndef DSTACK_VMM_SYSCONFIG_H
#define DSTACK_VMM_SYSCONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "vmm/compose.h"
#include "vmm/config.h"
#include "vmm/image.h"
#include "vmm/manifest.h"

/* Everything vm_config depends on that is decided outside the manifest. */
struct vmm_vm_config_in {
	const struct vmm_config *cfg;
	const struct vmm_image *img;
	const struct vmm_manifest *m;
	uint32_t cpu_count;      /* effective (>=1, NUMA-rounded) */
	uint32_t memory_mb;      /* effective */
	size_t num_nics;         /* NICs QEMU gets */
	const char *tdx_variant; /* "legacy" | "lite" | NULL (not TDX) */
};

/*
 * TDX attestation variant (§5.4): compose requirement wins, then the config
 * value; "auto" picks legacy below 3072 MB (except exactly 2048), lite when
 * the image carries measurement material, else legacy. *out is static.
 */
int vmm_tdx_variant_resolve(const char *config_variant, int measure_acpi_tables, uint32_t memory_mb,
			    bool image_has_material, const char **out, struct err *e);

/* The compact JSON `vm_config` string. malloc'd. */
char *vmm_vm_config_string(const struct vmm_vm_config_in *in, struct err *e);

/* The .sys-config.json document. mr_config may be NULL. */
json_t *vmm_sys_config_json(const struct vmm_config *cfg, const struct vmm_manifest *m, const char *vm_config,
			    const char *mr_config);

/* MRCONFIGID V1: 0x01 || sha256(compose) || 15 zero bytes. */
void vmm_mrconfigid_v1(const uint8_t compose_hash[32], uint8_t out[48]);
/* V3 from the exact document bytes: 0x03 || sha256("dstack-mr-config-v3:" 0x00 doc) || zeros. */
void vmm_mrconfigid_v3(const char *document, uint8_t out[48]);

/* Inputs of the V3 document. */
struct vmm_mr_config_v3 {
	const uint8_t *app_id;
	size_t app_id_len;
	const uint8_t *compose_hash; /* 32 bytes */
	const char *key_provider;    /* none | kms | local | tpm */
	const uint8_t *key_provider_id;
	size_t key_provider_id_len;
	const uint8_t *instance_id;
	size_t instance_id_len;
	const uint8_t *gpu_policy_hash;        /* 32 bytes or NULL (only with GPUs) */
	const struct strv *init_script_hashes; /* hex strings, or NULL (manifest_version < 3) */
};
/* JCS-canonical (lib/codec) MrConfigV3 document, malloc'd. */
char *vmm_mr_config_v3_document(const struct vmm_mr_config_v3 *in);

/* Result of preparing shared/ for a start. */
struct vmm_boot_prep {
	char *mrconfigid_b64; /* NULL when MRCONFIGID is not used */
	char *vm_config;
	char *mr_config; /* NULL unless V3 */
};
void vmm_boot_prep_free(struct vmm_boot_prep *p);

/*
 * StartVm step 2: rewrite shared/.sys-config.json, and .instance_info (V3) or
 * .tee-simulator.json when they apply. `platform_tdx` is the resolved
 * platform. Reads shared/app-compose.json from workdir.
 */
int vmm_prepare_shared(const struct vmm_vm_config_in *in, const char *workdir, bool platform_tdx,
		       struct vmm_boot_prep *out, struct err *e);

#endif
