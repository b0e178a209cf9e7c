/*
 * gpu_test.c — `lspci -nn -vv` parsing, [cvm.gpu] filtering, ListGpus JSON,
 * and attach_mode "all" picking 3D controllers and NVSwitch bridges.
 */
#include "core/cleanup.h"
#include "core/tap.h"
#include "vmm/gpu.h"

static const char LSPCI[] =
    "00:00.0 Host bridge [0600]: Intel Corporation Device [8086:09a2] (rev 04)\n"
    "\tControl: I/O- Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr+ Stepping- SERR+ FastB2B- "
    "DisINTx-\n"
    "\n"
    "05:00.0 Bridge [0680]: NVIDIA Corporation Device [10de:22a3] (rev a1)\n"
    "\tSubsystem: NVIDIA Corporation Device [10de:1796]\n"
    "\tControl: I/O- Mem+ BusMaster- SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- "
    "DisINTx-\n"
    "\n"
    "18:00.0 3D controller [0302]: NVIDIA Corporation GH100 [H100 SXM5 80GB] [10de:2335] (rev a1)\n"
    "\tControl: I/O- Mem+ BusMaster- SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- "
    "DisINTx+\n"
    "\n"
    "2a:00.0 3D controller [0302]: NVIDIA Corporation GH100 [H100 SXM5 80GB] [10de:2335] (rev a1)\n"
    "\tControl: I/O- Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- "
    "DisINTx+\n";

int main(void)
{
	struct vmm_gpu_dev *d;
	size_t n;
	struct vmm_config c;

	ok(vmm_lspci_parse(LSPCI, &d, &n) == 0 && n == 4, "four devices");
	is_str(d[2].pci.slot, "18:00.0", "slot");
	is_str(d[2].pci.cls, "3D controller", "class");
	is_str(d[2].pci.product_id, "10de:2335", "product id (last bracket)");
	is_str(d[2].description, "NVIDIA Corporation GH100 [H100 SXM5 80GB]", "description");
	ok(d[2].is_free && !d[3].is_free, "BusMaster+ means in use");
	is_str(d[1].pci.cls, "Bridge", "bridge class");
	is_str(d[1].pci.product_id, "10de:22a3", "bridge id, not the subsystem id");

	vmm_config_init(&c);
	c.cvm.gpu.enabled = true;
	struct vmm_gpu_dev *copy = malloc(n * sizeof(*d));
	memcpy(copy, d, n * sizeof(*d));
	size_t k = vmm_gpu_filter(&c, copy, n);
	ok(k == 2 && !strcmp(copy[0].pci.slot, "18:00.0"), "listing keeps the two H100s");
	strv_push(&c.cvm.gpu.exclude, "18:00.0");
	memcpy(copy, d, n * sizeof(*d));
	k = vmm_gpu_filter(&c, copy, n);
	ok(k == 1 && !strcmp(copy[0].pci.slot, "2a:00.0"), "exclude");
	strv_free(&c.cvm.gpu.exclude);
	strv_push(&c.cvm.gpu.include, "18:00.0");
	memcpy(copy, d, n * sizeof(*d));
	k = vmm_gpu_filter(&c, copy, n);
	ok(k == 1 && !strcmp(copy[0].pci.slot, "18:00.0"), "include");
	_cleanup_json_ json_t *j = vmm_gpu_list_json(&c, copy, k);
	_cleanup_free_ char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	is_str(s,
	       "{\"gpus\":[{\"slot\":\"18:00.0\",\"product_id\":\"10de:2335\",\"description\":\"NVIDIA "
	       "Corporation GH100 "
	       "[H100 SXM5 80GB]\",\"is_free\":true}],\"allow_attach_all\":true}",
	       "ListGpusResponse");
	c.cvm.gpu.enabled = false;
	_cleanup_json_ json_t *j2 = vmm_gpu_list_json(&c, copy, k);
	ok(json_array_size(json_object_get(j2, "gpus")) == 0, "empty unless enabled");

	/* attach_mode "all": 3D controllers -> gpus, bridges -> bridges */
	struct vmm_pci_dev pci[4];
	for (size_t i = 0; i < n; i++)
		pci[i] = d[i].pci;
	struct vmm_manifest m = {0};
	struct err e = ERR_INIT;
	struct vmm_gpu_req all = {"all", NULL, 0};
	c.cvm.gpu.enabled = true;
	ok(vmm_gpus_resolve(&c, pci, n, &all, &m, &e) == 0, "all");
	ok(m.has_gpus && m.gpus.gpus.n == 2 && m.gpus.bridges.n == 1 &&
	       !strcmp(m.gpus.bridges.v[0], "05:00.0") && !strcmp(m.gpus.attach_mode, "all"),
	   "two GPUs and one NVSwitch bridge");
	const char *slots[] = {"18:00.0"};
	struct vmm_gpu_req listed = {"listed", slots, 1};
	ok(vmm_gpus_resolve(&c, pci, n, &listed, &m, &e) == 0 && m.gpus.gpus.n == 1 && m.gpus.bridges.n == 0,
	   "listed");
	struct vmm_gpu_req bad = {"", NULL, 0};
	ok(vmm_gpus_resolve(&c, pci, n, &bad, &m, &e) < 0, "empty attach_mode rejected");
	is_str(e.msg, "Invalid GPU attach mode: ", "message");
	c.cvm.gpu.allow_attach_all = false;
	ok(vmm_gpus_resolve(&c, pci, n, &all, &m, &e) < 0, "all needs allow_attach_all");
	c.cvm.gpu.enabled = false;
	ok(vmm_gpus_resolve(&c, pci, n, &listed, &m, &e) < 0 && !strcmp(e.msg, "GPU is not enabled"),
	   "GPUs disabled");
	vmm_manifest_free(&m);
	free(copy);
	free(d);
	vmm_config_free(&c);
	return tap_done();
}
