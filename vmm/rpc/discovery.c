/*
 * discovery.c — see discovery.h. Entries whose pid is gone are pruned on
 * every write and skipped on every read, so a crashed VMM leaves no trap.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "vmm/app.h"
#include "vmm/rpc/discovery.h"
#include "vmm/util.h"

char *vmm_discovery_dir(void)
{
	const char *x = getenv("XDG_RUNTIME_DIR");

	if (x && *x)
		return path_join(x, "dstack-vmm");
	return xasprintf("/run/user/%u/dstack-vmm", (unsigned)getuid());
}

static bool pid_alive(json_int_t pid)
{
	return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

static json_t *scan(bool prune)
{
	_cleanup_free_ char *dir = vmm_discovery_dir();
	json_t *out = json_array();
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return out;
	while ((de = readdir(d))) {
		_cleanup_free_ char *p = NULL;
		_cleanup_free_ uint8_t *raw = NULL;
		size_t len, n = strlen(de->d_name);
		json_t *j;

		if (n < 6 || strcmp(de->d_name + n - 5, ".json"))
			continue;
		p = path_join(dir, de->d_name);
		if (file_read_all(p, 1 << 16, &raw, &len, NULL) < 0)
			continue;
		j = json_loadb((const char *)raw, len, 0, NULL);
		if (!json_is_object(j) || !pid_alive(json_integer_value(json_object_get(j, "pid")))) {
			json_decref(j);
			if (prune)
				unlink(p);
			continue;
		}
		json_array_append_new(out, j);
	}
	closedir(d);
	return out;
}

int vmm_discovery_write(json_t *info, char **path_out, struct err *e)
{
	_cleanup_free_ char *dir = vmm_discovery_dir(), *text = NULL;
	json_t *dead = scan(true);
	char id[37];

	json_decref(dead);
	if (mkdir_p(dir, 0700, e) < 0)
		return -1;
	vmm_uuid_v4(id);
	json_object_set_new(info, "id", json_string(id));
	*path_out = xasprintf("%s/%s.json", dir, id);
	text = json_dumps(info, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	return file_write_atomic(*path_out, text, strlen(text), 0644, e);
}

json_t *vmm_discovery_list(void)
{
	return scan(false);
}
