/*
 * vmm_flags.c — flag values that several `dstack vmm` subcommands take
 * (deploy, update, update-ports, resize): port mappings, sizes with units,
 * the ResizeVm fields and the --gpu/--ppcie set. One parser each, so the
 * subcommands agree on what a flag means.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm_cmds.h"

bool flag_store(const struct flag_dest *dests, size_t n, int opt, const char *arg)
{
	for (size_t k = 0; k < n; k++) {
		if (dests[k].opt != opt)
			continue;
		if (dests[k].str)
			*dests[k].str = arg;
		else
			*dests[k].on = true;
		return true;
	}
	return false;
}

json_t *parse_port(const char *s, struct err *e)
{
	char proto[8], a[64] = "127.0.0.1";
	unsigned hp, vp;

	int n4 = sscanf(s, "%7[a-z]:%63[^:]:%u:%u", proto, a, &hp, &vp);

	if (n4 != 4)
		snprintf(a, sizeof(a), "127.0.0.1");
	if (n4 == 4 || sscanf(s, "%7[a-z]:%u:%u", proto, &hp, &vp) == 3) {
		if (hp > 65535 || vp > 65535)
			return err_set(e, "port out of range: %s", s), NULL;
		return json_pack("{s:s,s:i,s:i,s:s}", "protocol", proto, "host_port", (int)hp, "vm_port",
				 (int)vp, "host_address", a);
	}
	err_set(e, "bad --port %s (expected proto[:addr]:host:vm)", s);
	return NULL;
}

uint32_t parse_size_mb(const char *s, bool disk)
{
	char *end;
	double v = strtod(s, &end);

	if (*end == 'T' || *end == 't')
		v *= disk ? 1024 : 1024 * 1024;
	else if (*end == 'G' || *end == 'g')
		v *= disk ? 1 : 1024;
	return (uint32_t)v;
}

bool resize_flag(json_t *req, int opt, const char *arg)
{
	switch (opt) {
	case 'c':
		json_object_set_new(req, "vcpu", json_integer(atoi(arg)));
		return true;
	case 'm':
		json_object_set_new(req, "memory", json_integer(parse_size_mb(arg, false)));
		return true;
	case 'd':
		json_object_set_new(req, "disk_size", json_integer(parse_size_mb(arg, true)));
		return true;
	case 'i':
		json_object_set_new(req, "image", json_string(arg));
		return true;
	default:
		return false;
	}
}

int gpu_flag(struct gpu_flags *g, const char *slot)
{
	if (!g->slots)
		g->slots = json_array();
	g->set = true;
	if (!slot || !strcmp(slot, "all"))
		g->all = true;
	else
		json_array_append_new(g->slots, json_pack("{s:s}", "slot", slot));
	if (g->all && json_array_size(g->slots)) {
		fprintf(stderr, "dstack vmm: --gpu all / --ppcie attach every GPU; do not list slots too\n");
		return -1;
	}
	return 0;
}

void gpu_flags_free(struct gpu_flags *g)
{
	json_decref(g->slots);
}

json_t *gpu_json(struct gpu_flags *g)
{
	json_t *slots = g->slots ? g->slots : json_array();

	g->slots = NULL;
	if (g->all) {
		json_decref(slots);
		return json_pack("{s:s,s:[]}", "attach_mode", "all", "gpus");
	}
	return json_pack("{s:s,s:o}", "attach_mode", "listed", "gpus", slots);
}
