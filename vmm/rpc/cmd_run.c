/*
 * cmd_run.c — `dstack-vmm run <vm.json> [--workdir D] [--dry-run]`: a
 * one-shot VM from a VmConfiguration JSON without the API server. The VM is
 * created in D (default ./vm-run) as run_path through the same code as
 * CreateVm, started under the supervisor, and the command returns; with
 * --dry-run it is only validated and written, not started.
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
	struct vmm_create_req r = {.name = vc->name,
				   .image = vc->image,
				   .compose_file = vc->compose_file,
				   .vcpu = vc->vcpu,
				   .memory = vc->memory,
				   .disk_size = vc->disk_size,
				   .encrypted_env = vc->encrypted_env.data,
				   .encrypted_env_len = vc->encrypted_env.len,
				   .app_id = vc->_app_id_case ? vc->app_id : NULL,
				   .user_config = vc->user_config,
				   .kms_urls = (const char *const *)vc->kms_urls,
				   .n_kms_urls = vc->n_kms_urls,
				   .gateway_urls = (const char *const *)vc->gateway_urls,
				   .n_gateway_urls = vc->n_gateway_urls,
				   .stopped = vc->stopped,
				   .no_tee = vc->no_tee,
				   .simulated_tee = vc->_simulated_tee_case ? vc->simulated_tee : NULL};
	rc = vmm_app_create(&app, &r, &id, &e);
	if (rc < 0)
		fprintf(stderr, "dstack-vmm run: %s\n", err_str(&e));
	else
		printf("%s %s in %s/%s\n", dry ? "validated" : "started", id, workdir, id);
	free(id);
	vmm_app_free(&app);
	prpc_msg_free(&vc->base);
	return rc < 0 ? 1 : 0;
}
