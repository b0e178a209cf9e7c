/*
 * gpu.c — see gpu.h. A device block starts with an unindented line
 * "<slot> <class> [<code>]: <vendor and name> [<vvvv:dddd>] (rev xx)"; the
 * indented lines that follow hold "Control: ... BusMaster+|-".
 */
#include "vmm/gpu.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "vmm/util.h"

static void parse_head(const char *line, size_t len, struct vmm_gpu_dev *d)
{
	const char *sp = memchr(line, ' ', len), *colon, *end = line + len;
	const char *lb, *id = NULL;

	memset(d, 0, sizeof(*d));
	if (!sp)
		return;
	snprintf(d->pci.slot, sizeof(d->pci.slot), "%.*s", (int)(sp - line), line);
	colon = memchr(sp, ':', (size_t)(end - sp));
	if (!colon)
		return;
	/* class: text before " [xxxx]:" */
	lb = colon;
	while (lb > sp && *lb != '[')
		lb--;
	snprintf(d->pci.cls, sizeof(d->pci.cls), "%.*s", (int)((lb > sp ? lb - 1 : colon) - (sp + 1)),
		 sp + 1);
	/* product id: the last "[xxxx:xxxx]" on the line */
	for (const char *p = colon; p + 11 <= end; p++)
		if (p[0] == '[' && p[5] == ':' && p[10] == ']' && isxdigit((unsigned char)p[1]) &&
		    isxdigit((unsigned char)p[6]))
			id = p;
	if (id)
		snprintf(d->pci.product_id, sizeof(d->pci.product_id), "%.9s", id + 1);
	const char *desc = colon + 1;
	while (desc < end && *desc == ' ')
		desc++;
	const char *dend = id ? id : end;
	while (dend > desc && dend[-1] == ' ')
		dend--;
	snprintf(d->description, sizeof(d->description), "%.*s", (int)(dend - desc), desc);
	d->is_free = true;
}

int vmm_lspci_parse(const char *text, struct vmm_gpu_dev **out, size_t *n)
{
	struct vmm_gpu_dev *v = NULL;
	size_t cnt = 0;

	for (const char *line = text; *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);

		if (len && !isspace((unsigned char)line[0])) {
			v = realloc(v, (cnt + 1) * sizeof(*v));
			if (!v)
				abort();
			parse_head(line, len, &v[cnt++]);
		} else if (cnt && len) {
			const char *bm = NULL;

			for (const char *p = line; p + 10 <= line + len; p++)
				if (!memcmp(p, "BusMaster", 9))
					bm = p;
			if (bm && memmem(line, len, "Control:", 8))
				v[cnt - 1].is_free = bm[9] != '+';
		}
		line = nl ? nl + 1 : line + len;
	}
	*out = v;
	*n = cnt;
	return 0;
}

static bool in_list(const struct strv *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], s))
			return true;
	return false;
}

size_t vmm_gpu_filter(const struct vmm_config *c, struct vmm_gpu_dev *devs, size_t n)
{
	size_t j = 0;

	for (size_t i = 0; i < n; i++) {
		const struct vmm_gpu_dev *d = &devs[i];

		if (!in_list(&c->cvm.gpu.listing, d->pci.product_id) ||
		    in_list(&c->cvm.gpu.exclude, d->pci.slot))
			continue;
		if (c->cvm.gpu.include.n && !in_list(&c->cvm.gpu.include, d->pci.slot))
			continue;
		devs[j++] = *d;
	}
	return j;
}

json_t *vmm_gpu_list_json(const struct vmm_config *c, const struct vmm_gpu_dev *devs, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; c->cvm.gpu.enabled && i < n; i++)
		json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:b}", "slot", devs[i].pci.slot,
						   "product_id", devs[i].pci.product_id, "description",
						   devs[i].description, "is_free", devs[i].is_free));
	return json_pack("{s:o,s:b}", "gpus", a, "allow_attach_all", c->cvm.gpu.allow_attach_all);
}

int vmm_gpus_resolve(const struct vmm_config *c, const struct vmm_pci_dev *pci, size_t n_pci,
		     const struct vmm_gpu_req *g, struct vmm_manifest *m, struct err *e)
{
	const char *mode = g->attach_mode ? g->attach_mode : "";

	strv_free(&m->gpus.gpus);
	strv_free(&m->gpus.bridges);
	m->has_gpus = false;
	if (!strcmp(mode, "listed")) {
		if (g->n_slots && !c->cvm.gpu.enabled)
			return err_set(e, "GPU is not enabled");
		for (size_t i = 0; i < g->n_slots; i++)
			strv_push(&m->gpus.gpus, g->slots[i]);
	} else if (!strcmp(mode, "all")) {
		if (!c->cvm.gpu.enabled)
			return err_set(e, "GPU is not enabled");
		if (!c->cvm.gpu.allow_attach_all)
			return err_set(e, "Attaching all GPUs is not allowed");
		for (size_t i = 0; i < n_pci; i++) {
			if (strncmp(pci[i].product_id, "10de:", 5))
				continue;
			if (strstr(pci[i].cls, "3D controller"))
				strv_push(&m->gpus.gpus, pci[i].slot);
			else if (strstr(pci[i].cls, "Bridge"))
				strv_push(&m->gpus.bridges, pci[i].slot);
		}
	} else {
		return err_set(e, "Invalid GPU attach mode: %s", mode);
	}
	strcpy(m->gpus.attach_mode, mode);
	m->has_gpus = true;
	return 0;
}

int vmm_lspci_read(struct vmm_gpu_dev **out, size_t *n)
{
	struct buf text = BUF_INIT;
	char chunk[4096];
	size_t got;
	int rc = -1;
	FILE *p = popen("lspci -nn -vv 2>/dev/null", "r");

	*out = NULL;
	*n = 0;
	if (!p)
		return -1;
	while ((got = fread(chunk, 1, sizeof(chunk), p)) > 0)
		buf_append(&text, chunk, got);
	pclose(p);
	buf_append(&text, "", 1);
	rc = vmm_lspci_parse((const char *)text.data, out, n);
	buf_free(&text);
	return rc;
}
