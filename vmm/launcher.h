/*
 * launcher.h — VMs with a software TPM (spec §11): QEMU needs a running
 * swtpm, so the supervisor runs `dstack-vmm vm-launcher --spec launch.json`,
 * which starts swtpm, waits for its socket, then starts QEMU. Both children
 * get their own process group and die with the launcher (PDEATHSIG). A
 * SIGTERM/SIGINT is passed to both groups, followed by SIGKILL after
 * shutdown_timeout_ms; when either child exits the other is stopped too.
 */
#ifndef DSTACK_VMM_LAUNCHER_H
#define DSTACK_VMM_LAUNCHER_H

#include <jansson.h>

#include "core/err.h"
#include "vmm/util.h"

/* <swtpm> socket --tpm2 --tpmstate dir=<wd>/swtpm --ctrl
 * type=unixio,path=<wd>/swtpm/swtpm.sock,mode=0600,uid=U,gid=G --flags not-need-init,startup-clear */
void vmm_swtpm_argv(const char *swtpm, const char *workdir, unsigned uid, unsigned gid, struct strv *argv);
/* {qemu:{command,args}, swtpm:{command,args}, swtpm_socket, startup_timeout_ms:5000,
 * shutdown_timeout_ms:10000} */
json_t *vmm_launch_spec(const struct strv *qemu_argv, const struct strv *swtpm_argv,
			const char *swtpm_socket);
/* Run a launch spec file; returns the exit code for the process. */
int vmm_launcher_run(const char *spec_path);

#endif
