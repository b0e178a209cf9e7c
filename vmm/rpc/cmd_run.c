/*
 * cmd_run.c — `dstack-vmm run <vm.json> [--workdir D] [--dry-run]`: a
 * one-shot VM from a VmConfiguration JSON without the API server. The VM is
 * created in D (default ./vm-run) as run_path through the same code and the
 * same request conversion as CreateVm (every field: ports, GPUs, hugepages,
 * pin_numa, networks), started under the supervisor, and the command
 * returns. CIDs that running VMs hold (`guest-cid=` in any process's command
 * line, §1) are reserved first. With --dry-run the VM is validated and
 * written but not started, and its CID and the QEMU command line StartVm
 * would run are printed ("cid: N", then one argument per line after
 * "command:").
 */
#include <stdio.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "prpc/json.h"
#include "vmm/app.h"
#include "vmm/rpc/rpc.h"
#include "vmm/util.h"
#include "vmm_rpc.pb-c.h"

int vmm_cmd_run(struct vmm_config *cfg, int argc, char **argv)
{
	const char *file = NULL, *workdir = "./vm-run";
	bool dry = false;
	_cleanup_free_ uint8_t *raw = NULL;
	size_t len;
	struct err e = ERR_INIT;
	Vmm__VmConfiguration *vc;
	struct vmm_app app;
	struct vmm_create_conv conv = {0};
	struct vmm_create_req r;
	struct strv cmd = {0};
	uint32_t cid = 0;
	char *id = NULL;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--workdir") && i + 1 < argc)
			workdir = argv[++i];
		else if (!strcmp(argv[i], "--dry-run"))
			dry = true;
		else if (!file)
			file = argv[i];
		else {
			fprintf(stderr, "usage: dstack-vmm run VM.json [--workdir D] [--dry-run]\n");
			return 2;
		}
	}
	if (!file) {
		fprintf(stderr, "usage: dstack-vmm run VM.json [--workdir D] [--dry-run]\n");
		return 2;
	}
	if (file_read_all(file, 10 << 20, &raw, &len, &e) < 0 ||
	    !(vc = (Vmm__VmConfiguration *)prpc_json_decode_text(&vmm__vm_configuration__descriptor, raw, len,
								 &e))) {
		fprintf(stderr, "dstack-vmm run: %s\n", err_str(&e));
		return 1;
	}
	if (mkdir_p(workdir, 0755, &e) < 0) {
		fprintf(stderr, "dstack-vmm run: %s\n", err_str(&e));
		prpc_msg_free(&vc->base);
		return 1;
	}
	str_set(&cfg->run_path, workdir);
	vc->stopped = vc->stopped || dry;
	if (!dry &&
	    sv_client_ensure_running(&(struct sv_client){cfg->supervisor.sock, 10000}, cfg->supervisor.exe,
				     cfg->supervisor.pid_file, cfg->supervisor.log_file,
				     cfg->supervisor.detached, cfg->supervisor.auto_start, &e) < 0) {
		fprintf(stderr, "dstack-vmm run: supervisor: %s\n", err_str(&e));
		prpc_msg_free(&vc->base);
		return 1;
	}
	vmm_app_init(&app, cfg, cfg->supervisor.sock);
	{
		_cleanup_free_ uint32_t *used = NULL;
		size_t n_used = vmm_cids_in_use_scan("/proc", &used);

		for (size_t i = 0; i < n_used; i++)
			if (used[i] >= cfg->cvm.cid_start &&
			    used[i] - cfg->cvm.cid_start < cfg->cvm.cid_pool_size &&
			    !vmm_cid_is_used(&app.cids, used[i]))
				vmm_cid_occupy(&app.cids, used[i], NULL);
	}
	vmm_create_req_from_proto(vc, &conv, &r);
	rc = vmm_app_create(&app, &r, &id, &e);
	if (rc == 0 && dry)
		rc = vmm_app_qemu_command(&app, id, &cmd, &cid, &e);
	if (rc < 0) {
		fprintf(stderr, "dstack-vmm run: %s\n", err_str(&e));
	} else {
		printf("%s %s in %s/%s\n", dry ? "validated" : "started", id, workdir, id);
		if (dry) {
			printf("cid: %u\ncommand:\n", cid);
			for (size_t i = 0; i < cmd.n; i++)
				printf("%s\n", cmd.v[i]);
		}
	}
	strv_free(&cmd);
	vmm_create_conv_free(&conv);
	free(id);
	vmm_app_free(&app);
	prpc_msg_free(&vc->base);
	return rc < 0 ? 1 : 0;
}
