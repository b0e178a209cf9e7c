/*
 * qemu.h — the QEMU command line for one VM (spec §8), in its exact
 * argument order, plus the resource plan (vCPU/memory/NUMA rounding) that
 * both the command line and vm_config use, and the supervisor process
 * config that runs it. Host facts (sysfs, cpulists) are read through a
 * root path so tests can build a fake host tree.
 */
#ifndef DSTACK_VMM_QEMU_H
#define DSTACK_VMM_QEMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "vmm/config.h"
#include "vmm/image.h"
#include "vmm/manifest.h"
#include "vmm/util.h"

#define VMM_MAX_NUMA 16

struct vmm_host {
	const char *sysfs; /* "/sys" */
	const char *dev;   /* "/dev"; NULL means "/dev" */
};

struct vmm_plan {
	uint32_t vcpus;     /* effective -smp */
	uint32_t memory_mb; /* effective -m */
	bool numa;          /* hugepages layout */
	size_t n_nodes;
	int host_node[VMM_MAX_NUMA]; /* host NUMA node of guest node i */
	int gpu_node[64];            /* guest node index of each GPU, then each bridge */
	size_t n_devices;
};

/* Resolve "auto" from a cpuinfo file: sev_snp flag means SNP, else TDX. */
const char *vmm_platform_resolve(const char *platform, const char *cpuinfo_path);

int vmm_plan_resources(const struct vmm_manifest *m, const struct vmm_host *host, struct vmm_plan *p,
		       struct err *e);

/* Effective NICs: the manifest's, or the single [cvm.networking] one. */
const struct vmm_net *vmm_effective_networks(const struct vmm_config *c, const struct vmm_manifest *m,
					     size_t *n);

struct vmm_qemu_in {
	const struct vmm_config *cfg;
	const struct vmm_image *img;
	const struct vmm_manifest *m;
	const struct vmm_plan *plan;
	const struct vmm_host *host;
	const char *workdir;
	const char *qemu_path;
	uint32_t cid;
	bool tdx;                   /* TEE on and platform TDX (false = no-TEE) */
	const char *mrconfigid_b64; /* NULL = omit */
	/* Extensions for hosts without KVM or vhost-vsock (development, CI):
	 * accel NULL or "kvm" gives §8's `-accel kvm -cpu host`; "tcg" gives
	 * `-accel tcg -cpu max`. no_vsock drops step 13 (the guest then has no
	 * host API and its agent is unreachable from the VMM). */
	const char *accel;
	bool no_vsock;
};

/*
 * QEMU accelerator for a VM: "kvm" or "tcg". TEE VMs always get "kvm"; a
 * configured "kvm"/"tcg" is taken as is; "auto" is "kvm" when <dev>/kvm can
 * be opened read-write, else "tcg" (software emulation: slow, no TEE).
 */
const char *vmm_accel_resolve(const char *configured, bool tee, const struct vmm_host *host);
/* Can QEMU give guests a vsock device (<dev>/vhost-vsock opens read-write)? */
bool vmm_host_has_vhost_vsock(const struct vmm_host *host);

/* Full argv, including the taskset / sudo wrappers. */
int vmm_qemu_argv(const struct vmm_qemu_in *in, struct strv *argv, struct err *e);

/* `qemu-img create -f qcow2 [-o backing_file=<hda> -o backing_fmt=qcow2] hda.img <disk>G` */
void vmm_qemu_img_create_argv(const char *workdir, const char *backing, uint32_t disk_gb, struct strv *argv);

/* The supervisor ProcessConfig that runs argv for this VM. */
json_t *vmm_process_config(const struct vmm_manifest *m, const char *workdir, uint32_t cid,
			   const struct strv *argv);

/* "QEMU emulator version 8.2.2 (Debian 1:8.2.2+ds-0ubuntu1)" -> "8.2.2":
 * the word after "version" on the first line, cut at '+'. malloc'd or NULL. */
char *vmm_qemu_version_parse(const char *version_output);
/* Run `<qemu> --version` and parse it; NULL when that fails. */
char *vmm_qemu_version_detect(const char *qemu_path);
/*
 * Effective QEMU binary (§1): the configured path; else `[qemu] path` from
 * the INI file client_conf (normally /etc/dstack/client.conf) when it
 * exists; else "qemu-system-x86_64" (resolved through PATH at exec).
 */
char *vmm_qemu_path_resolve(const char *configured, const char *client_conf);

#endif
