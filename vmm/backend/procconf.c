/*
 * procconf.c — the process backend's settings: `[cvm] backend`,
 * `process_netns` and the `[cvm.process]` section (the simulated TDX the
 * guest programs run on, where they find collateral, and the guest
 * programs themselves), read from the same config layers as the rest of
 * vmm.toml; and the per-VM plan `<workdir>/process-vm.json` that hands
 * them to `dstack-vmm process-vm`, so the guest process needs no config
 * file of its own and keeps its settings across VMM restarts.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "hostcfg/hostcfg.h"
#include "vmm/backend/process.h"
#include "vmm/util.h"

#define PLAN_FILE "process-vm.json"

static const char *str_at(const struct config *c, const char *key)
{
	const char *v = json_string_value(config_get(c, key));

	return v && *v ? v : NULL;
}

/* "~/x" → $HOME/x, "x" → $PWD/x, absolute paths as they are. */
static char *abs_path(const char *p)
{
	const char *home = getenv("HOME");
	char cwd[4096];

	if (p[0] == '~' && p[1] == '/' && home)
		return path_join(home, p + 2);
	if (p[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		return xstrdup(p);
	return path_join(cwd, p);
}

static char *program(const struct config *c, const char *key, const char *name, const char *build_rel)
{
	const char *v = str_at(c, key);
	char *found;

	if (v)
		return abs_path(v);
	found = hostcfg_find_program(name, build_rel);
	return found ? found : xstrdup(name);
}

int vmm_proc_config_load(const char *file, struct vmm_proc_config *pc, struct err *e)
{
	struct config c = CONFIG_INIT;
	struct config_search s = {.name = "vmm", .file = file};
	const char *v;

	memset(pc, 0, sizeof(*pc));
	if (config_load(&c, &s, e) < 0)
		return -1;
	v = str_at(&c, "cvm.backend");
	pc->mode = xstrdup(v ? v : "auto");
	pc->shared_net = json_is_false(config_get(&c, "cvm.process_netns"));
	v = str_at(&c, "cvm.process.simtee_dir");
	pc->simtee_dir = abs_path(v ? v : "~/.dstack-vmm/simtee");
	v = str_at(&c, "cvm.process.dev_root_ca");
	pc->dev_root_ca = v ? abs_path(v) : path_join(pc->simtee_dir, "root_ca.pem");
	v = str_at(&c, "cvm.process.pccs_url");
	if (!v)
		v = str_at(&c, "cvm.pccs_url");
	if (!v)
		v = str_at(&c, "cvm.tee_simulator.collateral_base_url");
	pc->pccs_url = xstrdup(v ? v : "");
	pc->dstack_util = program(&c, "cvm.process.dstack_util", "dstack-util", "../guest/dstack-util");
	pc->guest_agent =
	    program(&c, "cvm.process.guest_agent", "dstack-guest-agent", "../guest/dstack-guest-agent");
	config_free(&c);
	if (strcmp(pc->mode, "auto") && strcmp(pc->mode, "process") && strcmp(pc->mode, "qemu")) {
		err_set(e, "cvm.backend: expected auto, process or qemu, got %s", pc->mode);
		vmm_proc_config_free(pc);
		return -1;
	}
	return 0;
}

void vmm_proc_config_free(struct vmm_proc_config *pc)
{
	free(pc->mode);
	free(pc->simtee_dir);
	free(pc->dev_root_ca);
	free(pc->pccs_url);
	free(pc->dstack_util);
	free(pc->guest_agent);
	memset(pc, 0, sizeof(*pc));
}

int vmm_proc_plan_write(const char *workdir, const struct vmm_proc_config *pc, unsigned agent_port,
			struct err *e)
{
	_cleanup_free_ char *path = path_join(workdir, PLAN_FILE), *text = NULL;
	_cleanup_json_ json_t *j =
	    json_pack("{s:s,s:s,s:s,s:s,s:s,s:i}", "dstack_util", pc->dstack_util, "guest_agent",
		      pc->guest_agent, "simtee_dir", pc->simtee_dir, "dev_root_ca", pc->dev_root_ca,
		      "pccs_url", pc->pccs_url, "agent_port", (int)agent_port);

	text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	if (!text)
		return err_set(e, "out of memory");
	return file_write_atomic(path, text, strlen(text), 0644, e);
}

json_t *vmm_proc_plan_read(const char *workdir, struct err *e)
{
	_cleanup_free_ char *path = path_join(workdir, PLAN_FILE);
	_cleanup_free_ uint8_t *raw = NULL;
	size_t len;
	json_t *j;

	if (file_read_all(path, 64 * 1024, &raw, &len, e) < 0)
		return NULL;
	j = json_loadb((const char *)raw, len, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return err_set(e, "%s is not a JSON object", path), NULL;
	}
	return j;
}
