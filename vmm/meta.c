/*
 * meta.c — see meta.h.
 */
#include "vmm/meta.h"

#include <dirent.h>
#include <string.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "vmm/util.h"

static bool any_bridge(const struct vmm_config *c, const char *sys_class_net)
{
	DIR *d;
	struct dirent *de;
	bool found = false;

	if (!str_empty(c->cvm.networking.bridge)) {
		_cleanup_free_ char *p = path_join(sys_class_net, c->cvm.networking.bridge);

		if (access(p, F_OK) == 0)
			return true;
	}
	d = opendir(sys_class_net);
	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		_cleanup_free_ char *p = NULL;

		if (de->d_name[0] == '.')
			continue;
		p = xasprintf("%s/%s/bridge", sys_class_net, de->d_name);
		found = access(p, F_OK) == 0;
	}
	closedir(d);
	return found;
}

static json_t *first_or_empty(const struct strv *s)
{
	return json_string(s->n ? s->v[0] : "");
}

json_t *vmm_meta_json(const struct vmm_config *c, const char *sys_class_net)
{
	json_t *modes = json_array();

	json_array_append_new(modes, json_string("user"));
	if (any_bridge(c, sys_class_net))
		json_array_append_new(modes, json_string("bridge"));
	return json_pack("{s:{s:o,s:o},s:{s:o,s:s,s:i,s:i,s:o},s:{s:i,s:i,s:i},s:{s:o,s:s,s:s}}", "kms",
			 "url", first_or_empty(&c->cvm.kms_urls), "urls", strv_to_json(&c->cvm.kms_urls),
			 "gateway", "url", first_or_empty(&c->cvm.gateway_urls), "base_domain",
			 c->gateway.base_domain, "port", (int)c->gateway.port, "agent_port",
			 (int)c->gateway.agent_port, "urls", strv_to_json(&c->cvm.gateway_urls), "resources",
			 "max_cvm_number", (int)c->cvm.cid_pool_size, "max_allocable_vcpu",
			 (int)c->cvm.max_allocable_vcpu, "max_allocable_memory_in_mb",
			 (int)c->cvm.max_allocable_memory_in_mb, "networking", "supported_modes", modes,
			 "default_mode", c->cvm.networking.mode, "default_bridge",
			 c->cvm.networking.bridge ? c->cvm.networking.bridge : "");
}
