/*
 * cid_pool.c — see cid_pool.h. The /proc scan reads each cmdline once, up
 * to 64 KiB (QEMU command lines are a few KiB).
 */
#include "vmm/cid_pool.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void vmm_cid_pool_init(struct vmm_cid_pool *p, uint32_t start, uint32_t size)
{
	memset(p, 0, sizeof(*p));
	p->start = start;
	p->size = size;
}

void vmm_cid_pool_free(struct vmm_cid_pool *p)
{
	free(p->used);
	memset(p, 0, sizeof(*p));
}

void vmm_cid_pool_clear(struct vmm_cid_pool *p)
{
	p->n_used = 0;
}

/* Index of the first used entry >= cid. */
static size_t lower_bound(const struct vmm_cid_pool *p, uint32_t cid)
{
	size_t lo = 0, hi = p->n_used;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->used[mid] < cid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool vmm_cid_is_used(const struct vmm_cid_pool *p, uint32_t cid)
{
	size_t i = lower_bound(p, cid);

	return i < p->n_used && p->used[i] == cid;
}

static void insert_at(struct vmm_cid_pool *p, size_t i, uint32_t cid)
{
	p->used = realloc(p->used, (p->n_used + 1) * sizeof(*p->used));
	if (!p->used)
		abort();
	memmove(p->used + i + 1, p->used + i, (p->n_used - i) * sizeof(*p->used));
	p->used[i] = cid;
	p->n_used++;
}

int vmm_cid_occupy(struct vmm_cid_pool *p, uint32_t cid, struct err *e)
{
	size_t i;

	if (cid < p->start || cid - p->start >= p->size)
		return err_set(e, "CID %u is outside the pool", cid);
	i = lower_bound(p, cid);
	if (i < p->n_used && p->used[i] == cid)
		return err_set(e, "CID %u is already in use", cid);
	insert_at(p, i, cid);
	return 0;
}

int vmm_cid_alloc(struct vmm_cid_pool *p, uint32_t *cid, struct err *e)
{
	uint64_t want = p->start, end = (uint64_t)p->start + p->size;
	size_t i = lower_bound(p, p->start);

	/* Walk the used CIDs inside the range; the first gap is the answer. */
	for (; i < p->n_used && p->used[i] == want && want < end; i++)
		want++;
	if (want >= end)
		return err_set(e, "CID pool exhausted");
	insert_at(p, i, (uint32_t)want);
	*cid = (uint32_t)want;
	return 0;
}

void vmm_cid_release(struct vmm_cid_pool *p, uint32_t cid)
{
	size_t i = lower_bound(p, cid);

	if (i < p->n_used && p->used[i] == cid) {
		memmove(p->used + i, p->used + i + 1, (p->n_used - i - 1) * sizeof(*p->used));
		p->n_used--;
	}
}

/* Every guest-cid=<digits> in a NUL-separated command line. */
static void scan_cmdline(const char *d, size_t len, uint32_t **out, size_t *n)
{
	static const char key[] = "guest-cid=";

	for (size_t off = 0; off < len;) {
		const char *arg = d + off;
		size_t alen = strnlen(arg, len - off);

		for (const char *p = arg; (p = memmem(p, alen - (size_t)(p - arg), key, sizeof(key) - 1));) {
			unsigned long v = 0;
			const char *q = p + sizeof(key) - 1;
			bool digits = false;

			for (; q < arg + alen && *q >= '0' && *q <= '9' && v <= UINT32_MAX;
			     q++, digits = true)
				v = v * 10 + (unsigned long)(*q - '0');
			if (digits && v <= UINT32_MAX) {
				*out = realloc(*out, (*n + 1) * sizeof(**out));
				if (!*out)
					abort();
				(*out)[(*n)++] = (uint32_t)v;
			}
			p = q;
		}
		off += alen + 1;
	}
}

size_t vmm_cids_in_use_scan(const char *proc_root, uint32_t **out)
{
	DIR *d = opendir(proc_root);
	struct dirent *de;
	size_t n = 0;

	*out = NULL;
	while (d && (de = readdir(d))) {
		char path[512], buf[65536];
		ssize_t got;
		int fd;

		if (de->d_name[0] < '1' || de->d_name[0] > '9' ||
		    strspn(de->d_name, "0123456789") != strlen(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s/cmdline", proc_root, de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* exited meanwhile */
		got = read(fd, buf, sizeof(buf));
		close(fd);
		if (got > 0)
			scan_cmdline(buf, (size_t)got, out, &n);
	}
	if (d)
		closedir(d);
	return n;
}
