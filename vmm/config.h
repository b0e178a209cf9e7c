/*
 * config.h — the parsed vmm.toml (spec §4) as a plain C struct.
 *
 * vmm_config_init() fills every default of §4; vmm_config_load() merges the
 * vmm.toml layers with lib/config and overlays the merged document with
 * vmm_config_apply_json(), which also serves tests and JSON callers.
 */
#ifndef DSTACK_VMM_CONFIG_H
#define DSTACK_VMM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "vmm/util.h"

/* [cvm.networking] and one resolved per-VM network (manifest `networks[]`). */
struct vmm_net {
	char *mode; /* "user" | "bridge" | "custom" */
	char *bridge;
	char *mac_prefix;
	char *net;
	char *dhcp_start;
	bool restrict_;
	char *netdev;
};

struct vmm_port_range {
	char protocol[4]; /* "tcp" | "udp" */
	uint16_t from, to;
};

/* SMBIOS strings of [cvm.product], in the order QEMU receives them. */
enum vmm_smbios_key {
	SMB_BIOS_VENDOR,
	SMB_BIOS_VERSION,
	SMB_BIOS_DATE,
	SMB_BIOS_RELEASE,
	SMB_SYS_VENDOR,
	SMB_PRODUCT_NAME,
	SMB_PRODUCT_VERSION,
	SMB_PRODUCT_SERIAL,
	SMB_PRODUCT_UUID,
	SMB_PRODUCT_FAMILY,
	SMB_PRODUCT_SKU,
	SMB_BOARD_VENDOR,
	SMB_BOARD_NAME,
	SMB_BOARD_VERSION,
	SMB_BOARD_SERIAL,
	SMB_BOARD_ASSET_TAG,
	SMB_CHASSIS_VENDOR,
	SMB_CHASSIS_VERSION,
	SMB_CHASSIS_SERIAL,
	SMB_CHASSIS_ASSET_TAG,
	SMB_COUNT
};

struct vmm_smbios_field {
	const char *config_key; /* key in [cvm.product] */
	int type;               /* SMBIOS type 0..3 */
	const char *qemu_key;   /* key on the -smbios line */
};
extern const struct vmm_smbios_field vmm_smbios_fields[SMB_COUNT];

struct vmm_config {
	/* top level */
	char *address;
	char *kms_url;
	uint32_t event_buffer_size;
	char *node_name;
	char *run_path;
	/* [image] */
	char *image_path;
	char *image_registry;

	struct {
		char *platform; /* auto | tdx | snp */
		char *qemu_path;
		char *accel; /* auto | kvm | tcg (extension; auto = kvm when /dev/kvm opens) */
		struct strv kms_urls, gateway_urls;
		char *pccs_url;
		char *nvidia_attestation_proxy_url; /* NULL = unset */
		char *docker_registry;
		char *volumes_dir;
		uint32_t cid_start, cid_pool_size;
		uint32_t max_allocable_vcpu, max_allocable_memory_in_mb;
		bool qmp_socket;
		char *user;
		char *instance_id;
		bool use_mrconfigid;
		int qemu_single_pass_add_pages; /* -1 unset, 0, 1 */
		int qemu_pic;                   /* -1 unset, 0, 1 */
		char *qemu_version;             /* NULL = unset */
		uint64_t qemu_pci_hole64_size;
		bool qemu_hotplug_off;
		char *tdx_attestation_variant; /* auto | legacy | lite */
		char *host_share_mode;         /* 9p | vhd | vvfat */
		bool has_qgs_port;
		uint32_t qgs_port;

		struct {
			bool present;
			char *platform;
			char *mock_attestation_seed;
			char *collateral_base_url;
		} tee_simulator;

		char *product[SMB_COUNT]; /* NULL/empty = not set */
		struct vmm_net networking;

		struct {
			bool enabled;
			char *address;
			struct vmm_port_range *ranges;
			size_t n_ranges;
		} port_mapping;

		struct {
			bool enabled;
			uint64_t interval, max_retries, initial_backoff, max_backoff, reset_window;
		} auto_restart;

		struct {
			uint64_t max_bytes;
			uint32_t max_backups;
			uint64_t check_interval_secs;
		} log;

		struct {
			bool enabled;
			struct strv listing, exclude, include;
			bool allow_attach_all;
		} gpu;
	} cvm;

	struct {
		char *base_domain;
		uint32_t port, agent_port;
	} gateway;

	struct {
		bool enabled;
		struct strv tokens;
		char *htpasswd_file;
	} auth;

	struct {
		char *exe, *sock, *pid_file, *log_file;
		bool detached, auto_start;
	} supervisor;

	struct {
		char *address;
		uint32_t port;
	} host_api;

	struct {
		bool enabled;
		char *address;
		uint32_t port;
	} key_provider;
};

/* Fill every §4 default. run_path/image_path default under $HOME. */
void vmm_config_init(struct vmm_config *c);
void vmm_config_free(struct vmm_config *c);
/* Overlay keys from a JSON object shaped like vmm.toml. Unknown keys are ignored. */
int vmm_config_apply_json(struct vmm_config *c, const json_t *doc, struct err *e);
/*
 * Full load: §4 defaults, then /etc/vmm/vmm.{toml,json}, ./vmm.{toml,json}
 * and `file` (-c) via lib/config; run_path and image path made absolute;
 * validated. etc_dir/cwd_dir NULL mean "/etc/vmm" and ".". On error the
 * struct still holds allocations: call vmm_config_free.
 */
int vmm_config_load(struct vmm_config *c, const char *file, const char *etc_dir, const char *cwd_dir,
		    struct err *e);
/* Cross-field checks (cid_start >= 3, pool > 0, auto_restart, host_api address). */
int vmm_config_validate(const struct vmm_config *c, struct err *e);

/* "4M", "0x1000", "2G", "512": K/M/G/T multiply by 1024^n. */
int vmm_parse_human_size(const char *s, uint64_t *out, struct err *e);

void vmm_net_free(struct vmm_net *n);
void vmm_net_copy(struct vmm_net *dst, const struct vmm_net *src);

/* Effective instance_id: config value, else "path-" + hex(sha256(run_path)[:8]). */
char *vmm_config_instance_id(const struct vmm_config *c);

#endif
