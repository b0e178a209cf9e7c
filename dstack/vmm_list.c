/*
 * vmm_list.c — the read-only views of `dstack vmm`: lsvm [-v] (Status),
 * lsimage (ListImages), lsgpu (ListGpus) and info <id> (GetInfo). Each is a
 * call and a table; --json prints the reply's list as vmm-cli.py does.
 */
#include <stdio.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/mem.h"
#include "vmm_cmds.h"

/* Call method; with --json print the reply's json_key (all of it when NULL), else the table of rows_key. */
static int listing(struct vmm_cli *c, const char *cmd, const char *method, json_t *req, const char *json_key,
		   const char *rows_key, const struct vmm_column *cols, size_t ncols,
		   void (*after_row)(const json_t *row))
{
	struct err e = ERR_INIT;
	_cleanup_json_ json_t *r = NULL;

	if (vmm_call(c, method, req, &r, &e) < 0)
		return vmm_die(cmd, &e);
	if (c->json)
		print_json(json_key ? json_object_get(r, json_key) : r);
	else
		vmm_table(cols, ncols, json_object_get(r, rows_key), after_row);
	return 0;
}

static int int_of(const json_t *o, const char *k)
{
	return (int)json_integer_value(json_object_get(o, k));
}

/* lsvm -v: the VM's image, resources and port mappings under its row. */
static void vm_details(const json_t *vm)
{
	json_t *cf = json_object_get(vm, "configuration"), *p;
	size_t k;

	printf("    image %s, %d vCPU, %d MB, %d GB", js(cf, "image"), int_of(cf, "vcpu"),
	       int_of(cf, "memory"), int_of(cf, "disk_size"));
	json_array_foreach(json_object_get(cf, "ports"), k, p)
	    printf(", %s:%s:%d->%d", js(p, "protocol"), js(p, "host_address"), int_of(p, "host_port"),
		   int_of(p, "vm_port"));
	printf("\n");
}

int vmm_lsvm(struct vmm_cli *c, int argc, char **argv)
{
	static const struct vmm_column cols[] = {
	    {"VM ID", 36, "id", false},
	    {"App ID", 40, "app_id", false},
	    {"Name", 16, "name", false},
	    {"Status", 10, "status", false},
	    {"Boot progress", 22, "boot_progress", false},
	    {"Uptime", 0, "uptime", false},
	};
	bool verbose = argc > 1 && !strcmp(argv[1], "-v");

	return listing(c, "lsvm", "Status", json_pack("{s:b}", "brief", !verbose && !c->json), "vms", "vms",
		       cols, ARRAY_SIZE(cols), verbose ? vm_details : NULL);
}

int vmm_lsimage(struct vmm_cli *c, int argc, char **argv)
{
	static const struct vmm_column cols[] = {
	    {"Name", 32, "name", false}, {"Version", 10, "version", false}, {"Dev", 0, "is_dev", true}};

	(void)argc, (void)argv;
	return listing(c, "lsimage", "ListImages", NULL, "images", "images", cols, ARRAY_SIZE(cols), NULL);
}

int vmm_lsgpu(struct vmm_cli *c, int argc, char **argv)
{
	static const struct vmm_column cols[] = {{"Slot", 14, "slot", false},
						 {"Product", 10, "product_id", false},
						 {"Free", 5, "is_free", true},
						 {"Description", 0, "description", false}};

	(void)argc, (void)argv;
	return listing(c, "lsgpu", "ListGpus", NULL, NULL, "gpus", cols, ARRAY_SIZE(cols), NULL);
}

int vmm_info(struct vmm_cli *c, int argc, char **argv)
{
	struct err e = ERR_INIT;
	_cleanup_json_ json_t *r = NULL;
	json_t *i;

	if (argc < 2) {
		fprintf(stderr, "usage: dstack vmm info <vm-id>\n");
		return 2;
	}
	if (vmm_call(c, "GetInfo", json_pack("{s:s}", "id", argv[1]), &r, &e) < 0)
		return vmm_die("info", &e);
	if (!json_is_true(json_object_get(r, "found"))) {
		fprintf(stderr, "dstack vmm: VM %s not found\n", argv[1]);
		return 1;
	}
	i = json_object_get(r, "info");
	if (c->json) {
		print_json(i);
		return 0;
	}
	printf(
	    "ID:            %s\nName:          %s\nStatus:        %s\nBoot progress: %s\nBoot error:    %s\n"
	    "App ID:        %s\nInstance ID:   %s\nUptime:        %s\nApp URL:       %s\n",
	    js(i, "id"), js(i, "name"), js(i, "status"), js(i, "boot_progress"), js(i, "boot_error"),
	    js(i, "app_id"), js(i, "instance_id"), js(i, "uptime"), js(i, "app_url"));
	return 0;
}
