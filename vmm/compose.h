/*
 * compose.h — the few app-compose.json fields the VMM reads (spec §12).
 * The file itself is stored and hashed as raw bytes; this parse only checks
 * that it is an AppCompose and extracts key provider, gateway, instance-id,
 * init script and requirement fields. Everything else passes through.
 */
#ifndef DSTACK_VMM_COMPOSE_H
#define DSTACK_VMM_COMPOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "vmm/util.h"

struct vmm_compose {
	uint32_t manifest_version;
	char *raw_key_provider;   /* the "key_provider" string as written, NULL if absent */
	const char *key_provider; /* resolved: none | kms | local | tpm */
	uint8_t *key_provider_id;
	size_t key_provider_id_len;
	bool gateway_enabled;
	bool no_instance_id;
	struct strv init_scripts;
	int tdx_measure_acpi_tables; /* -1 unset, 0, 1 */
	json_t *gpu_policy;          /* requirements.gpu_policy or NULL */
	struct strv volume_sources;  /* verity_volumes[].source */
	struct strv volume_roots;    /* verity_volumes[].verity_root, same order */
	uint8_t hash[32];            /* sha256 of the raw bytes */
};

int vmm_compose_parse(const void *raw, size_t len, struct vmm_compose *c, struct err *e);
void vmm_compose_free(struct vmm_compose *c);
/* Hex sha256 of the raw bytes truncated to 40 chars (the default app_id). */
void vmm_compose_app_id(const void *raw, size_t len, char out[41]);

#endif
