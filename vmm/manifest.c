/*
 * manifest.c — see manifest.h.
 */
#include "vmm/manifest.h"

#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"

static void gpu_cfg_free(struct vmm_gpu_cfg *g)
{
	strv_free(&g->gpus);
	strv_free(&g->bridges);
	g->attach_mode[0] = '\0';
}

void vmm_manifest_set_networks(struct vmm_manifest *m, const struct vmm_net *nets, size_t n)
{
	struct vmm_net *v = n ? calloc(n, sizeof(*v)) : NULL;

	if (n && !v)
		abort();
	for (size_t i = 0; i < n; i++)
		vmm_net_copy(&v[i], &nets[i]);
	for (size_t i = 0; i < m->n_networks; i++)
		vmm_net_free(&m->networks[i]);
	free(m->networks);
	m->networks = v;
	m->n_networks = n;
}

void vmm_manifest_set_ports(struct vmm_manifest *m, const struct vmm_port_map *p, size_t n)
{
	struct vmm_port_map *v = n ? malloc(n * sizeof(*v)) : NULL;

	if (n && !v)
		abort();
	if (n)
		memcpy(v, p, n * sizeof(*v));
	free(m->ports);
	m->ports = v;
	m->n_ports = n;
}

void vmm_manifest_free(struct vmm_manifest *m)
{
	free(m->id);
	free(m->name);
	free(m->app_id);
	free(m->image);
	free(m->ports);
	gpu_cfg_free(&m->gpus);
	strv_free(&m->kms_urls);
	strv_free(&m->gateway_urls);
	free(m->simulated_tee);
	vmm_manifest_set_networks(m, NULL, 0);
	strv_free(&m->volumes);
	memset(m, 0, sizeof(*m));
}

void vmm_manifest_copy(struct vmm_manifest *dst, const struct vmm_manifest *src)
{
	struct vmm_manifest t = *src;

	t.id = xstrdup(src->id);
	t.name = xstrdup(src->name);
	t.app_id = xstrdup(src->app_id);
	t.image = xstrdup(src->image);
	t.ports = NULL;
	t.n_ports = 0;
	vmm_manifest_set_ports(&t, src->ports, src->n_ports);
	memset(&t.gpus.gpus, 0, sizeof(t.gpus.gpus));
	memset(&t.gpus.bridges, 0, sizeof(t.gpus.bridges));
	strv_copy(&t.gpus.gpus, &src->gpus.gpus);
	strv_copy(&t.gpus.bridges, &src->gpus.bridges);
	memset(&t.kms_urls, 0, sizeof(t.kms_urls));
	memset(&t.gateway_urls, 0, sizeof(t.gateway_urls));
	strv_copy(&t.kms_urls, &src->kms_urls);
	strv_copy(&t.gateway_urls, &src->gateway_urls);
	t.simulated_tee = xstrdup(src->simulated_tee);
	t.networks = NULL;
	t.n_networks = 0;
	vmm_manifest_set_networks(&t, src->networks, src->n_networks);
	memset(&t.volumes, 0, sizeof(t.volumes));
	strv_copy(&t.volumes, &src->volumes);
	vmm_manifest_free(dst);
	*dst = t;
}

static json_t *str_or_empty(const char *s)
{
	return json_string(s ? s : "");
}

json_t *vmm_net_to_json(const struct vmm_net *n)
{
	json_t *o = json_object();

	json_object_set_new(o, "mode", str_or_empty(n->mode));
	json_object_set_new(o, "bridge", str_or_empty(n->bridge));
	json_object_set_new(o, "mac_prefix", str_or_empty(n->mac_prefix));
	json_object_set_new(o, "net", str_or_empty(n->net));
	json_object_set_new(o, "dhcp_start", str_or_empty(n->dhcp_start));
	json_object_set_new(o, "restrict", json_boolean(n->restrict_));
	json_object_set_new(o, "netdev", str_or_empty(n->netdev));
	return o;
}

static json_t *slots_to_json(const struct strv *s)
{
	json_t *a = json_array();

	for (size_t i = 0; i < s->n; i++)
		json_array_append_new(a, json_pack("{s:s}", "slot", s->v[i]));
	return a;
}

json_t *vmm_manifest_to_json(const struct vmm_manifest *m)
{
	json_t *o = json_object(), *ports = json_array(), *nets = json_array(), *vols = json_array();

	json_object_set_new(o, "id", str_or_empty(m->id));
	json_object_set_new(o, "name", str_or_empty(m->name));
	json_object_set_new(o, "app_id", str_or_empty(m->app_id));
	json_object_set_new(o, "vcpu", json_integer(m->vcpu));
	json_object_set_new(o, "memory", json_integer(m->memory));
	json_object_set_new(o, "disk_size", json_integer(m->disk_size));
	json_object_set_new(o, "image", str_or_empty(m->image));
	for (size_t i = 0; i < m->n_ports; i++)
		json_array_append_new(ports, json_pack("{s:s,s:s,s:i,s:i}", "address", m->ports[i].address,
						       "protocol", m->ports[i].protocol, "from",
						       (int)m->ports[i].from, "to", (int)m->ports[i].to));
	json_object_set_new(o, "port_map", ports);
	json_object_set_new(o, "created_at_ms", json_integer((json_int_t)m->created_at_ms));
	json_object_set_new(o, "hugepages", json_boolean(m->hugepages));
	json_object_set_new(o, "pin_numa", json_boolean(m->pin_numa));
	if (m->has_gpus)
		json_object_set_new(o, "gpus",
				    json_pack("{s:s,s:o,s:o}", "attach_mode", m->gpus.attach_mode, "gpus",
					      slots_to_json(&m->gpus.gpus), "bridges",
					      slots_to_json(&m->gpus.bridges)));
	else
		json_object_set_new(o, "gpus", json_null());
	json_object_set_new(o, "kms_urls", strv_to_json(&m->kms_urls));
	json_object_set_new(o, "gateway_urls", strv_to_json(&m->gateway_urls));
	json_object_set_new(o, "no_tee", json_boolean(m->no_tee));
	json_object_set_new(o, "simulated_tee",
			    m->simulated_tee ? json_string(m->simulated_tee) : json_null());
	json_object_set_new(o, "swtpm", json_boolean(m->swtpm));
	for (size_t i = 0; i < m->n_networks; i++)
		json_array_append_new(nets, vmm_net_to_json(&m->networks[i]));
	json_object_set_new(o, "networks", nets);
	json_object_set_new(o, "networking", m->n_networks ? vmm_net_to_json(&m->networks[0]) : json_null());
	for (size_t i = 0; i < m->volumes.n; i++)
		json_array_append_new(vols, json_pack("{s:s}", "source", m->volumes.v[i]));
	json_object_set_new(o, "volumes", vols);
	return o;
}

/* ---- reading ------------------------------------------------------- */

static int rd_str(const json_t *o, const char *k, bool required, char **dst, struct err *e)
{
	json_t *v = json_object_get(o, k);

	if (!v || json_is_null(v)) {
		if (required)
			return err_set(e, "missing field %s", k);
		return 0;
	}
	if (!json_is_string(v))
		return err_set(e, "%s: expected a string", k);
	str_set(dst, json_string_value(v));
	return 0;
}

static int rd_bool(const json_t *o, const char *k, bool *dst, struct err *e)
{
	json_t *v = json_object_get(o, k);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return err_set(e, "%s: expected a boolean", k);
	*dst = json_is_true(v);
	return 0;
}

static int rd_u64(const json_t *o, const char *k, uint64_t max, uint64_t *dst, struct err *e)
{
	json_t *v = json_object_get(o, k);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
		return err_set(e, "%s: expected an integer in 0..%llu", k, (unsigned long long)max);
	*dst = (uint64_t)json_integer_value(v);
	return 0;
}

static int rd_u32(const json_t *o, const char *k, uint32_t *dst, struct err *e)
{
	uint64_t v = 0;

	if (rd_u64(o, k, UINT32_MAX, &v, e) < 0)
		return -1;
	*dst = (uint32_t)v;
	return 0;
}

int vmm_net_from_json(const json_t *j, struct vmm_net *n, struct err *e)
{
	struct vmm_net t = {0};

	if (!json_is_object(j))
		return err_set(e, "network: expected an object");
	if (rd_str(j, "mode", false, &t.mode, e) < 0 || rd_str(j, "bridge", false, &t.bridge, e) < 0 ||
	    rd_str(j, "mac_prefix", false, &t.mac_prefix, e) < 0 || rd_str(j, "net", false, &t.net, e) < 0 ||
	    rd_str(j, "dhcp_start", false, &t.dhcp_start, e) < 0 ||
	    rd_bool(j, "restrict", &t.restrict_, e) < 0 || rd_str(j, "netdev", false, &t.netdev, e) < 0) {
		vmm_net_free(&t);
		return -1;
	}
	/* Normalise absent strings to "". */
	char **fields[] = {&t.mode, &t.bridge, &t.mac_prefix, &t.net, &t.dhcp_start, &t.netdev};
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		if (!*fields[i])
			*fields[i] = xstrdup("");
	vmm_net_free(n);
	*n = t;
	return 0;
}

static int rd_slots(const json_t *a, struct strv *out, const char *what, struct err *e)
{
	size_t i;
	json_t *it;

	if (!a || json_is_null(a))
		return 0;
	if (!json_is_array(a))
		return err_set(e, "%s: expected an array", what);
	json_array_foreach(a, i, it)
	{
		const char *s = json_str(it, "slot");

		if (!s)
			return err_set(e, "%s[%zu]: missing slot", what, i);
		strv_push(out, s);
	}
	return 0;
}

static int rd_nets(const json_t *a, struct vmm_manifest *m, struct err *e)
{
	size_t i, n = json_array_size(a);
	json_t *it;
	struct vmm_net *v = calloc(n ? n : 1, sizeof(*v));

	if (!v)
		abort();
	json_array_foreach(a, i, it)
	{
		if (vmm_net_from_json(it, &v[i], e) < 0) {
			for (size_t k = 0; k < n; k++)
				vmm_net_free(&v[k]);
			free(v);
			return err_wrap(e, "networks[%zu]", i);
		}
	}
	vmm_manifest_set_networks(m, NULL, 0);
	m->networks = v;
	m->n_networks = n;
	return 0;
}

static int from_json_inner(const json_t *j, struct vmm_manifest *m, struct err *e)
{
	json_t *v, *it;
	size_t i;

	if (!json_is_object(j))
		return err_set(e, "expected an object");
	if (rd_str(j, "id", true, &m->id, e) < 0 || rd_str(j, "name", false, &m->name, e) < 0 ||
	    rd_str(j, "app_id", true, &m->app_id, e) < 0 || rd_u32(j, "vcpu", &m->vcpu, e) < 0 ||
	    rd_u32(j, "memory", &m->memory, e) < 0 || rd_u32(j, "disk_size", &m->disk_size, e) < 0 ||
	    rd_str(j, "image", true, &m->image, e) < 0 ||
	    rd_u64(j, "created_at_ms", UINT64_MAX >> 1, &m->created_at_ms, e) < 0 ||
	    rd_bool(j, "hugepages", &m->hugepages, e) < 0 || rd_bool(j, "pin_numa", &m->pin_numa, e) < 0 ||
	    rd_bool(j, "no_tee", &m->no_tee, e) < 0 ||
	    rd_str(j, "simulated_tee", false, &m->simulated_tee, e) < 0 ||
	    rd_bool(j, "swtpm", &m->swtpm, e) < 0)
		return -1;
	if (!m->name)
		m->name = xstrdup("");
	v = json_object_get(j, "port_map");
	if (v && !json_is_null(v)) {
		if (!json_is_array(v))
			return err_set(e, "port_map: expected an array");
		m->ports = calloc(json_array_size(v) + 1, sizeof(*m->ports));
		if (!m->ports)
			abort();
		json_array_foreach(v, i, it)
		{
			struct vmm_port_map *p = &m->ports[i];
			const char *addr = json_str(it, "address"), *proto = json_str(it, "protocol");
			uint64_t from = 0, to = 0;

			if (!addr || strlen(addr) >= sizeof(p->address) || !proto ||
			    (strcmp(proto, "tcp") && strcmp(proto, "udp")) ||
			    rd_u64(it, "from", 65535, &from, e) < 0 || rd_u64(it, "to", 65535, &to, e) < 0)
				return err_set(e, "port_map[%zu]: invalid entry", i);
			strcpy(p->address, addr);
			strcpy(p->protocol, proto);
			p->from = (uint16_t)from;
			p->to = (uint16_t)to;
			m->n_ports++;
		}
	}
	v = json_object_get(j, "gpus");
	if (v && !json_is_null(v)) {
		const char *mode = json_str(v, "attach_mode");

		if (!json_is_object(v))
			return err_set(e, "gpus: expected an object");
		if (!mode)
			mode = "listed";
		if (strlen(mode) >= sizeof(m->gpus.attach_mode))
			return err_set(e, "gpus.attach_mode: invalid");
		m->has_gpus = true;
		strcpy(m->gpus.attach_mode, mode);
		if (rd_slots(json_object_get(v, "gpus"), &m->gpus.gpus, "gpus.gpus", e) < 0 ||
		    rd_slots(json_object_get(v, "bridges"), &m->gpus.bridges, "gpus.bridges", e) < 0)
			return -1;
	}
	if ((v = json_object_get(j, "kms_urls")) && !json_is_null(v) &&
	    strv_from_json(&m->kms_urls, v, "kms_urls", e) < 0)
		return -1;
	if ((v = json_object_get(j, "gateway_urls")) && !json_is_null(v) &&
	    strv_from_json(&m->gateway_urls, v, "gateway_urls", e) < 0)
		return -1;
	v = json_object_get(j, "networks");
	if (v && !json_is_null(v) && !json_is_array(v))
		return err_set(e, "networks: expected an array");
	if (json_array_size(v) > 0) {
		if (rd_nets(v, m, e) < 0)
			return -1;
	} else if ((v = json_object_get(j, "networking")) && !json_is_null(v)) {
		json_t *one = json_array();

		json_array_append(one, v);
		int r = rd_nets(one, m, e);
		json_decref(one);
		if (r < 0)
			return err_wrap(e, "networking");
	}
	v = json_object_get(j, "volumes");
	if (v && !json_is_null(v)) {
		if (!json_is_array(v))
			return err_set(e, "volumes: expected an array");
		json_array_foreach(v, i, it)
		{
			const char *s = json_str(it, "source");

			if (!s)
				return err_set(e, "volumes[%zu]: missing source", i);
			strv_push(&m->volumes, s);
		}
	}
	return 0;
}

int vmm_manifest_from_json(const json_t *j, struct vmm_manifest *m, struct err *e)
{
	memset(m, 0, sizeof(*m));
	if (from_json_inner(j, m, e) < 0) {
		vmm_manifest_free(m);
		return err_wrap(e, "vm-manifest.json");
	}
	return 0;
}
