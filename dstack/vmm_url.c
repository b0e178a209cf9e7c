/*
 * vmm_url.c — which dstack-vmm `dstack vmm` talks to (spec vmm.md §14 URL
 * resolution). Every running dstack-vmm leaves a discovery file
 * <XDG_RUNTIME_DIR>/dstack-vmm/<id>.json {id, pid, address, working_dir};
 * ~/.dstack-vmm/config.json may pin a `url` or name an `active_vmm`
 * (`dstack vmm vmm switch`, vmm_switch.c). Entries of dead pids are ignored,
 * so a crashed VMM never captures the CLI.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "vmm_client.h"

static char *discovery_dir(void)
{
	const char *x = getenv("XDG_RUNTIME_DIR");

	return x && *x ? xfmt("%s/dstack-vmm", x) : xfmt("/run/user/%u/dstack-vmm", getuid());
}

/* The URL of a discovery entry: unix sockets relative to its working_dir, 0.0.0.0 as loopback. */
static char *entry_url(const json_t *j)
{
	const char *addr = json_string_value(json_object_get(j, "address"));
	const char *wd = json_string_value(json_object_get(j, "working_dir"));
	const char *hp;

	if (!addr)
		return NULL;
	if (!strncmp(addr, "unix:", 5))
		return addr[5] == '/' ? xfmt("%s", addr) : xfmt("unix:%s/%s", wd ? wd : ".", addr + 5);
	hp = !strncmp(addr, "tcp:", 4) ? addr + 4 : addr;
	return !strncmp(hp, "0.0.0.0:", 8) ? xfmt("http://127.0.0.1:%s", hp + 8) : xfmt("http://%s", hp);
}

json_t *vmm_discovered(void)
{
	_cleanup_free_ char *dir = discovery_dir();
	json_t *all = json_array();
	DIR *d = opendir(dir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		_cleanup_free_ char *p = NULL, *url = NULL;
		json_t *j;
		json_int_t pid;

		if (!strstr(de->d_name, ".json"))
			continue;
		p = xfmt("%s/%s", dir, de->d_name);
		j = json_file_load(p, 1 << 16);
		pid = json_integer_value(json_object_get(j, "pid"));
		url = entry_url(j);
		if (!j || !url || pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno != EPERM)) {
			json_decref(j);
			continue;
		}
		json_object_set_new(j, "url", json_string(url));
		json_array_append_new(all, j);
	}
	if (d)
		closedir(d);
	return all;
}

char *vmm_cli_config_path(void)
{
	const char *home = getenv("HOME");

	return xfmt("%s/.dstack-vmm/config.json", home ? home : ".");
}

json_t *vmm_cli_config_load(void)
{
	_cleanup_free_ char *p = vmm_cli_config_path();
	json_t *j = json_file_load(p, 1 << 16);

	return j ? j : json_object();
}

json_t *vmm_matching(const json_t *all, const char *prefix)
{
	json_t *out = json_array(), *j;
	size_t i;

	json_array_foreach(all, i, j) if (!strncmp(js(j, "id"), prefix, strlen(prefix)))
	    json_array_append(out, j);
	return out;
}

/*
 * First match wins: --url (unless it is the default), DSTACK_VMM_URL, `url`
 * in ~/.dstack-vmm/config.json, the running VMM whose id starts with
 * `active_vmm` there (`dstack vmm vmm switch`), the only running VMM, the
 * default.
 */
char *vmm_resolve_url(const char *flag)
{
	const char *env = getenv("DSTACK_VMM_URL"), *v, *active;
	_cleanup_json_ json_t *cfg = NULL, *all = NULL;

	if (flag && strcmp(flag, VMM_DEFAULT_URL))
		return xfmt("%s", flag);
	if (env && *env)
		return xfmt("%s", env);
	cfg = vmm_cli_config_load();
	v = json_string_value(json_object_get(cfg, "url"));
	if (v && *v)
		return xfmt("%s", v);
	all = vmm_discovered();
	active = json_string_value(json_object_get(cfg, "active_vmm"));
	if (active && *active) {
		_cleanup_json_ json_t *m = vmm_matching(all, active);

		if (json_array_size(m) >= 1)
			return xfmt("%s", js(json_array_get(m, 0), "url"));
		fprintf(stderr, "dstack vmm: the active VMM %s is not running\n", active);
	}
	if (json_array_size(all) == 1)
		return xfmt("%s", js(json_array_get(all, 0), "url"));
	if (json_array_size(all) > 1)
		fprintf(stderr,
			"dstack vmm: %zu VMMs running here; pick one with `dstack vmm vmm switch <id>` or "
			"--url\n",
			json_array_size(all));
	return xfmt(VMM_DEFAULT_URL);
}
