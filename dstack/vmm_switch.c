/*
 * vmm_switch.c — `dstack vmm vmm ls` and `vmm switch <id-prefix>`: the
 * dstack-vmm instances running on this machine (their discovery files, see
 * vmm_url.c), and which one later commands talk to (`active_vmm` in
 * ~/.dstack-vmm/config.json). A prefix must name exactly one running VMM.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "vmm_cmds.h"

static int vmm_switch(const json_t *all, json_t *cfg, const char *prefix)
{
	_cleanup_json_ json_t *m = vmm_matching(all, prefix);
	_cleanup_free_ char *p = vmm_cli_config_path();
	const char *env = getenv("DSTACK_VMM_URL");
	struct err e = ERR_INIT;
	json_t *j;

	if (json_array_size(m) == 0) {
		fprintf(stderr,
			"dstack vmm: no running VMM has an id starting with %s (see `dstack vmm vmm ls`)\n",
			prefix);
		return 1;
	}
	if (json_array_size(m) > 1) {
		fprintf(stderr,
			"dstack vmm: %zu running VMMs have ids starting with %s; give more of the id\n",
			json_array_size(m), prefix);
		return 1;
	}
	j = json_array_get(m, 0);
	json_object_set_new(cfg, "active_vmm", json_string(js(j, "id")));
	if (json_file_save(p, cfg, &e) < 0)
		return vmm_die("vmm switch", &e);
	printf("Active VMM: %s (%s)\n", js(j, "id"), js(j, "url"));
	if (json_string_value(json_object_get(cfg, "url")) || (env && *env))
		fprintf(stderr, "dstack vmm: note: DSTACK_VMM_URL or `url` in %s still takes precedence\n",
			p);
	return 0;
}

int vmm_vmm(struct vmm_cli *c, int argc, char **argv)
{
	_cleanup_json_ json_t *all = vmm_discovered(), *cfg = vmm_cli_config_load();
	const char *active = json_string_value(json_object_get(cfg, "active_vmm"));
	json_t *j;
	size_t i;

	if (argc >= 3 && !strcmp(argv[1], "switch"))
		return vmm_switch(all, cfg, argv[2]);
	if (argc >= 2 && strcmp(argv[1], "ls")) {
		fprintf(stderr, "usage: dstack vmm vmm ls | vmm switch <id-prefix>\n");
		return 2;
	}
	if (c->json) {
		print_json(all);
		return 0;
	}
	printf("   %-36s  %-8s  %-32s  %s\n", "ID", "PID", "URL", "Working dir");
	json_array_foreach(all, i, j) printf(
	    "%s  %-36s  %-8d  %-32s  %s\n",
	    active && *active && !strncmp(js(j, "id"), active, strlen(active)) ? " *" : "  ", js(j, "id"),
	    (int)json_integer_value(json_object_get(j, "pid")), js(j, "url"), js(j, "working_dir"));
	return 0;
}
