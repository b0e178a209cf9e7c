/*
 * workdir.c — see workdir.h.
 */
#include "vmm/workdir.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/fileio.h"

bool vmm_id_valid(const char *id)
{
	size_t l = strlen(id);

	return l >= 1 && l <= 64 && str_charset_ok(id, "_-");
}

char *vmm_workdir_path(const char *run_path, const char *id, struct err *e)
{
	if (!vmm_id_valid(id)) {
		err_set(e, "Invalid VM id");
		return NULL;
	}
	return path_join(run_path, id);
}

int vmm_workdir_create(const char *run_path, const char *id, struct err *e)
{
	_cleanup_free_ char *dir = vmm_workdir_path(run_path, id, e);
	_cleanup_free_ char *shared = NULL;

	if (!dir)
		return -1;
	if (mkdir_p(run_path, 0755, e) < 0)
		return -1;
	if (mkdir(dir, 0755) < 0)
		return err_errno(e, "create %s", dir);
	shared = path_join(dir, VMM_SHARED_DIR);
	if (mkdir(shared, 0755) < 0)
		return err_errno(e, "create %s", shared);
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
	return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int vmm_workdir_remove(const char *dir, struct err *e)
{
	struct stat st;

	if (lstat(dir, &st) < 0)
		return errno == ENOENT ? 0 : err_errno(e, "stat %s", dir);
	if (nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
		return err_errno(e, "remove %s", dir);
	return 0;
}

static int write_json(const char *dir, const char *name, json_t *j, size_t flags, mode_t mode, struct err *e)
{
	_cleanup_free_ char *path = path_join(dir, name);
	_cleanup_free_ char *text = json_dumps(j, flags | JSON_PRESERVE_ORDER);

	if (!text)
		return err_set(e, "%s: cannot serialise", name);
	return file_write_atomic(path, text, strlen(text), mode, e);
}

static json_t *read_json(const char *dir, const char *name, struct err *e)
{
	_cleanup_free_ char *path = path_join(dir, name);
	_cleanup_free_ uint8_t *data = NULL;
	size_t len;
	json_error_t jerr;
	json_t *j;

	if (file_read_all(path, VMM_FILE_MAX, &data, &len, e) < 0)
		return NULL;
	j = json_loadb((const char *)data, len, 0, &jerr);
	if (!j)
		err_set(e, "%s: %s", name, jerr.text);
	return j;
}

int vmm_manifest_save(const char *dir, const struct vmm_manifest *m, struct err *e)
{
	_cleanup_json_ json_t *j = vmm_manifest_to_json(m);

	return write_json(dir, VMM_MANIFEST_FILE, j, JSON_INDENT(2), 0644, e);
}

int vmm_manifest_load(const char *dir, struct vmm_manifest *m, struct err *e)
{
	_cleanup_json_ json_t *j = read_json(dir, VMM_MANIFEST_FILE, e);

	if (!j)
		return -1;
	return vmm_manifest_from_json(j, m, e);
}

int vmm_state_save(const char *dir, bool started, struct err *e)
{
	_cleanup_json_ json_t *j = json_pack("{s:b}", "started", started);

	return write_json(dir, VMM_STATE_FILE, j, JSON_COMPACT, 0644, e);
}

int vmm_state_load(const char *dir, bool *started, struct err *e)
{
	_cleanup_free_ char *path = path_join(dir, VMM_STATE_FILE);
	_cleanup_json_ json_t *j = NULL;
	json_t *v;

	*started = false;
	if (!file_exists(path))
		return 0;
	j = read_json(dir, VMM_STATE_FILE, e);
	if (!j)
		return -1;
	v = json_object_get(j, "started");
	if (v && !json_is_boolean(v))
		return err_set(e, "vm-state.json: started: expected a boolean");
	*started = json_is_true(v);
	return 0;
}

static mode_t shared_mode(const char *name)
{
	if (!strcmp(name, VMM_ENCRYPTED_ENV_FILE) || !strcmp(name, VMM_INSTANCE_INFO_FILE))
		return 0600;
	return 0644;
}

int vmm_shared_write(const char *dir, const char *name, const void *data, size_t len, struct err *e)
{
	_cleanup_free_ char *shared = path_join(dir, VMM_SHARED_DIR);
	_cleanup_free_ char *path = path_join(shared, name);

	if (mkdir_p(shared, 0755, e) < 0)
		return -1;
	return file_write_atomic(path, data, len, shared_mode(name), e);
}

int vmm_shared_read(const char *dir, const char *name, uint8_t **data, size_t *len, bool *exists,
		    struct err *e)
{
	_cleanup_free_ char *shared = path_join(dir, VMM_SHARED_DIR);
	_cleanup_free_ char *path = path_join(shared, name);

	*exists = file_exists(path);
	*data = NULL;
	if (len)
		*len = 0;
	if (!*exists)
		return 0;
	return file_read_all(path, VMM_FILE_MAX, data, len, e);
}

bool vmm_shared_exists(const char *dir, const char *name)
{
	_cleanup_free_ char *shared = path_join(dir, VMM_SHARED_DIR);
	_cleanup_free_ char *path = path_join(shared, name);

	return file_exists(path);
}

int vmm_workdir_mark_removing(const char *dir, struct err *e)
{
	_cleanup_free_ char *path = path_join(dir, VMM_REMOVING_FILE);

	return file_write_atomic(path, "", 0, 0644, e);
}

bool vmm_workdir_is_removing(const char *dir)
{
	_cleanup_free_ char *path = path_join(dir, VMM_REMOVING_FILE);

	return file_exists(path);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int vmm_workdir_scan(const char *run_path, struct strv *ids, struct err *e)
{
	DIR *d = opendir(run_path);
	struct dirent *de;

	memset(ids, 0, sizeof(*ids));
	if (!d) {
		if (errno == ENOENT)
			return 0;
		return err_errno(e, "open %s", run_path);
	}
	while ((de = readdir(d))) {
		_cleanup_free_ char *p = NULL;
		struct stat st;

		if (!vmm_id_valid(de->d_name))
			continue;
		p = path_join(run_path, de->d_name);
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
			strv_push(ids, de->d_name);
	}
	closedir(d);
	if (ids->n)
		qsort(ids->v, ids->n, sizeof(char *), cmp_str);
	return 0;
}

int vmm_runtime_networks_save(const char *dir, const struct vmm_net *nets, size_t n, struct err *e)
{
	_cleanup_json_ json_t *a = NULL;

	if (n == 0) {
		_cleanup_free_ char *p = path_join(dir, VMM_RUNTIME_NETWORKS_FILE);

		if (unlink(p) < 0 && errno != ENOENT)
			return err_errno(e, "remove %s", p);
		return 0;
	}
	a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, vmm_net_to_json(&nets[i]));
	return write_json(dir, VMM_RUNTIME_NETWORKS_FILE, a, JSON_COMPACT, 0644, e);
}
