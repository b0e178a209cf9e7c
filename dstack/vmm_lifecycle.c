/*
 * vmm_lifecycle.c — acting on one VM by id: start (StartVm), stop
 * (ShutdownVm through the guest agent; -f StopVm kills it), remove
 * (RemoveVm), resize (ResizeVm, stopped VMs) and logs (GET /logs, the one
 * call that is not prpc: it may follow the log as a stream).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "core/cleanup.h"
#include "vmm_cmds.h"

/* `<cmd> [flags] <vm-id>`: method {id}. */
static int id_call(struct vmm_cli *c, const char *method, int argc, char **argv)
{
	struct err e = ERR_INIT;

	if (argc < 2) {
		fprintf(stderr, "usage: dstack vmm %s <vm-id>\n", argv[0]);
		return 2;
	}
	if (vmm_call(c, method, json_pack("{s:s}", "id", argv[argc - 1]), NULL, &e) < 0)
		return vmm_die(argv[0], &e);
	if (!c->json)
		printf("%s: %s ok\n", argv[argc - 1], method);
	return 0;
}

int vmm_start(struct vmm_cli *c, int argc, char **argv)
{
	return id_call(c, "StartVm", argc, argv);
}

int vmm_remove(struct vmm_cli *c, int argc, char **argv)
{
	return id_call(c, "RemoveVm", argc, argv);
}

int vmm_stop(struct vmm_cli *c, int argc, char **argv)
{
	bool force = argc > 2 && (!strcmp(argv[1], "-f") || !strcmp(argv[1], "--force"));

	return id_call(c, force ? "StopVm" : "ShutdownVm", argc, argv);
}

int vmm_resize(struct vmm_cli *c, int argc, char **argv)
{
	static const struct option o[] = {{"vcpu", required_argument, NULL, 'c'},
					  {"memory", required_argument, NULL, 'm'},
					  {"disk", required_argument, NULL, 'd'},
					  {"image", required_argument, NULL, 'i'},
					  {0}};
	json_t *req = json_object();
	struct err e = ERR_INIT;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", o, NULL)) != -1) {
		if (!resize_flag(req, opt, optarg)) {
			json_decref(req);
			return 2;
		}
	}
	if (optind >= argc) {
		json_decref(req);
		fprintf(
		    stderr,
		    "usage: dstack vmm resize <vm-id> [--vcpu N] [--memory 2G] [--disk 40G] [--image I]\n");
		return 2;
	}
	json_object_set_new(req, "id", json_string(argv[optind]));
	if (vmm_call(c, "ResizeVm", req, NULL, &e) < 0)
		return vmm_die("resize", &e);
	if (!c->json)
		printf("resize: ok\n");
	return 0;
}

int vmm_logs(struct vmm_cli *c, int argc, char **argv)
{
	static const struct option o[] = {{"lines", required_argument, NULL, 'n'},
					  {"follow", no_argument, NULL, 'f'},
					  {"channel", required_argument, NULL, 'c'},
					  {0}};
	const char *lines = "20", *ch = "serial";
	bool follow = false;
	int opt;
	_cleanup_free_ char *path = NULL;
	struct http_response r = {0};
	struct err e = ERR_INIT;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "n:fc:", o, NULL)) != -1) {
		if (opt == 'n')
			lines = optarg;
		else if (opt == 'f')
			follow = true;
		else if (opt == 'c')
			ch = optarg;
		else
			return 2;
	}
	if (optind >= argc) {
		fprintf(stderr,
			"usage: dstack vmm logs <vm-id> [-n N] [-f] [--channel serial|stdout|stderr]\n");
		return 2;
	}
	path = xfmt("logs?id=%s&follow=%s&ansi=false&lines=%s&ch=%s", argv[optind], follow ? "true" : "false",
		    lines, ch);
	if (vmm_get(c, path, follow ? 0 : 60000, &r, &e) < 0)
		return vmm_die("logs", &e);
	if (r.status != 200) {
		fprintf(stderr, "dstack vmm: logs: %s\n", (char *)r.body.data);
		http_response_free(&r);
		return 1;
	}
	fwrite(r.body.data, 1, r.body.len, stdout);
	http_response_free(&r);
	return 0;
}
