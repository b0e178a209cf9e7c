/*
 * dev_cvm.c — the simulated TDX of `dstack dev` (its PKI, made once) and
 * the simulated CVMs the KMS and the gateway run in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/mem.h"
#include "dev.h"
#include "simtee/td.h"

/* The OS image hash in the vm_config of the KMS's and the gateway's
 * simulated CVMs: they run on the host, from no image. */
#define HOST_CVM_OS_IMAGE_HASH "0000000000000000000000000000000000000000000000000000000000000000"

int dev_ensure_simtee(const struct dev *d, struct err *e)
{
	_cleanup_free_ char *root = dev_pathf("%s/simtee/root_ca.pem", d->dir);
	if (file_exists(root))
		return 0;
	_cleanup_free_ char *sdir = dev_pathf("%s/simtee", d->dir);
	char *argv[] = {d->dstack, "simtee", "init", sdir, NULL};
	if (dev_run_wait(d, "simtee", argv) != 0)
		return err_set(e, "dstack simtee init failed; see %s/logs/simtee.log", d->dir);
	printf("  simtee       created the simulated-TDX PKI in %s\n", sdir);
	return 0;
}

/*
 * The KMS's and the gateway's own CVMs, simulated. Both attest themselves
 * through the guest agent of the CVM they run in: the KMS its RPC
 * certificate (CVMs only accept a KMS whose certificate carries that
 * attestation), the gateway gets its RPC certificate from the KMS through
 * its agent (CVMs only register with a gateway whose certificate chains to
 * the KMS root). On a dev host both run on the host, so each gets a guest
 * agent (components kms-agent and gateway-agent) over a boot of
 * `dstack-util setup` on the simulated TDX: key provider none for the KMS,
 * the KMS itself for the gateway.
 */
static int boot_sim_cvm(const struct dev *d, const char *name, const char *dir, const char *compose,
			const char *kms_urls_json, struct err *e)
{
	_cleanup_free_ char *shared = dev_pathf("%s/shared", dir), *work = dev_pathf("%s/work", dir);
	_cleanup_free_ char *td = dev_pathf("%s/td.json", dir), *rt = dev_pathf("%s/rt", dir);
	_cleanup_free_ char *rtlog = dev_pathf("%s/runtime_events.log", rt);
	_cleanup_free_ char *sdir = dev_pathf("%s/simtee", d->dir),
			    *root = dev_pathf("%s/simtee/root_ca.pem", d->dir);
	_cleanup_free_ char *pccs = dev_pathf("http://127.0.0.1:%u", d->c.simtee_port);
	_cleanup_free_ char *sys =
	    dev_pathf("{\"kms_urls\":%s,\"gateway_urls\":[],\"pccs_url\":\"%s\",\"vm_config\":"
		      "\"{\\\"os_image_hash\\\":\\\"%s\\\"}\"}\n",
		      kms_urls_json, pccs, HOST_CVM_OS_IMAGE_HASH);
	_cleanup_free_ char *p1 = dev_pathf("%s/app-compose.json", shared),
			    *p2 = dev_pathf("%s/.sys-config.json", shared);
	_cleanup_free_ char *util = hostcfg_find_program("dstack-util", "../guest/dstack-util");
	if (!util)
		return err_set(e, "%s: dstack-util not found beside %s or in $PATH", name, d->dstack);
	/* a fresh TD: its RTMRs and the runtime event log start over */
	unlink(rtlog);
	if (mkdir_p(shared, 0700, e) < 0 || file_write_atomic(p1, compose, strlen(compose), 0644, e) < 0 ||
	    file_write_atomic(p2, sys, strlen(sys), 0644, e) < 0 || simtee_td_create(td, NULL, e) < 0)
		return err_wrap(e, "%s: simulated CVM", name);
	char *argv[] = {util,
			"setup",
			"--work-dir",
			work,
			"--host-shared",
			shared,
			"--tee",
			"simtee",
			"--simtee-dir",
			sdir,
			"--simtee-state",
			td,
			"--runtime-events-dir",
			rt,
			"--pccs-url",
			pccs,
			"--dev-root-ca",
			root,
			"--no-wg-up",
			NULL};
	if (dev_run_wait(d, name, argv) != 0)
		return err_set(e, "%s: dstack-util setup of its simulated CVM failed; see %s/logs/%s.log",
			       name, d->dir, name);
	printf("  %-12s booted its simulated CVM in %s\n", name, dir);
	return 0;
}

int dev_ensure_kms_cvm(const struct dev *d, struct err *e)
{
	static const char compose[] = "{\"manifest_version\":2,\"name\":\"dstack-kms\",\"runner\":\"bash\","
				      "\"bash_script\":\"exec dstack-kms\",\"key_provider\":\"none\","
				      "\"storage_fs\":\"ext4\"}\n";
	_cleanup_free_ char *cvm = dev_pathf("%s/kms-cvm", d->dir),
			    *boot = dev_pathf("%s/kms-cvm/boot", d->dir);
	_cleanup_free_ char *keys = dev_pathf("%s/appkeys.json", cvm), *work = dev_pathf("%s/work", boot);
	if (file_exists(keys))
		return 0;
	if (boot_sim_cvm(d, "kms-agent", boot, compose, "[]", e) < 0)
		return -1;
	/* the agent's simulator mode serves these three files */
	static const char *const files[][2] = {{".sys-config.json", "sys-config.json"},
					       {"app-compose.json", "app-compose.json"},
					       {".appkeys.json", "appkeys.json"}};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		_cleanup_free_ char *from = dev_pathf("%s/%s", work, files[i][0]),
				    *to = dev_pathf("%s/%s", cvm, files[i][1]);
		uint8_t *t = NULL;
		size_t n;
		int rc = file_read_all(from, 1 << 20, &t, &n, e);
		if (rc == 0)
			rc = file_write_atomic(to, t, n, 0600, e);
		if (t)
			secure_zero(t, n);
		free(t);
		if (rc < 0)
			return err_wrap(e, "the KMS's simulated CVM");
	}
	return 0;
}

/* Booted at every start of its agent (the KMS must be up). */
int dev_boot_gateway_cvm(const struct dev *d, const json_t *platform, struct err *e)
{
	static const char compose[] =
	    "{\"manifest_version\":2,\"name\":\"dstack-gateway\",\"runner\":\"bash\","
	    "\"bash_script\":\"exec dstack-gateway\",\"kms_enabled\":true,"
	    "\"key_provider\":\"kms\",\"storage_fs\":\"ext4\"}\n";
	_cleanup_free_ char *dir = dev_pathf("%s/gateway-cvm", d->dir);
	_cleanup_free_ char *kms = dev_pathf("[\"https://%s:%u\"]", d->c.kms_domain, d->c.kms_rpc_port);
	if (platform) {
		/* its boot asks the KMS for its keys: bootAuth/app */
		_cleanup_json_ json_t *boot =
		    dev_app_boot_info(compose, strlen(compose), HOST_CVM_OS_IMAGE_HASH, platform);
		if (!boot)
			return err_set(e, "out of memory");
		if (dev_policy_allow(d, "the gateway's CVM", false, boot, e) < 0)
			return -1;
	}
	return boot_sim_cvm(d, "gateway-agent", dir, compose, kms, e);
}
