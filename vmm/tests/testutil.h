/*
 * testutil.h — temp directories and small file helpers for the VMM tests
 * (test code only).
 */
#ifndef DSTACK_VMM_TESTUTIL_H
#define DSTACK_VMM_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/fileio.h"
#include "vmm/util.h"
#include "vmm/workdir.h"

static inline char *tu_tmpdir(void)
{
	char tmpl[] = "/tmp/vmmtest.XXXXXX";
	char *d = mkdtemp(tmpl);

	if (!d) {
		perror("mkdtemp");
		exit(2);
	}
	return xstrdup(d);
}

static inline void tu_write(const char *dir, const char *name, const char *content)
{
	char *p = path_join(dir, name);
	char *slash = strrchr(p, '/');

	*slash = '\0';
	mkdir_p(p, 0755, NULL);
	*slash = '/';
	if (file_write_atomic(p, content, strlen(content), 0644, NULL) < 0) {
		fprintf(stderr, "write %s failed\n", p);
		exit(2);
	}
	free(p);
}

static inline char *tu_read(const char *dir, const char *name)
{
	char *p = path_join(dir, name);
	uint8_t *d = NULL;

	if (file_read_all(p, 1 << 24, &d, NULL, NULL) < 0)
		d = NULL;
	free(p);
	return (char *)d;
}

/* Poll (10 ms steps) until dir/name contains needle; false on timeout. */
static inline bool tu_wait_contains(const char *dir, const char *name, const char *needle, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 10) {
		char *t = tu_read(dir, name);
		bool hit = t && strstr(t, needle);
		struct timespec ts = {0, 10 * 1000000L};

		free(t);
		if (hit)
			return true;
		nanosleep(&ts, NULL);
	}
	return false;
}

static inline void tu_rmrf(char *dir)
{
	vmm_workdir_remove(dir, NULL);
	free(dir);
}

#endif
