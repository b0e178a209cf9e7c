/*
 * config_load.c — vmm.toml layering (spec §1) on top of lib/config: the
 * merged document is applied over the §4 defaults with the same overlay the
 * JSON path uses, then paths are made absolute and the result validated.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/cleanup.h"
#include "vmm/config.h"

static void make_absolute(char **p)
{
	char cwd[PATH_MAX];

	if (!*p || (*p)[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		return;
	char *abs = path_join(cwd, (*p)[0] == '.' && (*p)[1] == '/' ? *p + 2 : *p);
	free(*p);
	*p = abs;
}

int vmm_config_load(struct vmm_config *c, const char *file, const char *etc_dir, const char *cwd_dir,
		    struct err *e)
{
	struct config layers = CONFIG_INIT;
	struct config_search s = {.name = "vmm", .etc_dir = etc_dir, .cwd_dir = cwd_dir, .file = file};
	int r;

	vmm_config_init(c);
	if (config_load(&layers, &s, e) < 0)
		return -1;
	r = vmm_config_apply_json(c, layers.root, e);
	config_free(&layers);
	if (r < 0)
		return err_wrap(e, "Invalid configuration");
	make_absolute(&c->run_path);
	make_absolute(&c->image_path);
	if (vmm_config_validate(c, e) < 0)
		return err_wrap(e, "Invalid configuration");
	return 0;
}
