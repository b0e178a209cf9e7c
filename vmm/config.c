/*
 * config.c — §4 defaults, a JSON overlay with the same key layout as
 * vmm.toml, and the cross-field validation. Table-free on purpose: each key
 * is one line below, which keeps the default and its parser side by side.
 */
#include "vmm/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/hex.h"

const struct vmm_smbios_field vmm_smbios_fields[SMB_COUNT] = {
    [SMB_BIOS_VENDOR] = {"bios_vendor", 0, "vendor"},
    [SMB_BIOS_VERSION] = {"bios_version", 0, "version"},
    [SMB_BIOS_DATE] = {"bios_date", 0, "date"},
    [SMB_BIOS_RELEASE] = {"bios_release", 0, "release"},
    [SMB_SYS_VENDOR] = {"sys_vendor", 1, "manufacturer"},
    [SMB_PRODUCT_NAME] = {"product_name", 1, "product"},
    [SMB_PRODUCT_VERSION] = {"product_version", 1, "version"},
    [SMB_PRODUCT_SERIAL] = {"product_serial", 1, "serial"},
    [SMB_PRODUCT_UUID] = {"product_uuid", 1, "uuid"},
    [SMB_PRODUCT_FAMILY] = {"product_family", 1, "family"},
    [SMB_PRODUCT_SKU] = {"product_sku", 1, "sku"},
    [SMB_BOARD_VENDOR] = {"board_vendor", 2, "manufacturer"},
    [SMB_BOARD_NAME] = {"board_name", 2, "product"},
    [SMB_BOARD_VERSION] = {"board_version", 2, "version"},
    [SMB_BOARD_SERIAL] = {"board_serial", 2, "serial"},
    [SMB_BOARD_ASSET_TAG] = {"board_asset_tag", 2, "asset"},
    [SMB_CHASSIS_VENDOR] = {"chassis_vendor", 3, "manufacturer"},
    [SMB_CHASSIS_VERSION] = {"chassis_version", 3, "version"},
    [SMB_CHASSIS_SERIAL] = {"chassis_serial", 3, "serial"},
    [SMB_CHASSIS_ASSET_TAG] = {"chassis_asset_tag", 3, "asset"},
};

void vmm_net_free(struct vmm_net *n)
{
	free(n->mode);
	free(n->bridge);
	free(n->mac_prefix);
	free(n->net);
	free(n->dhcp_start);
	free(n->netdev);
	memset(n, 0, sizeof(*n));
}

void vmm_net_copy(struct vmm_net *dst, const struct vmm_net *src)
{
	struct vmm_net t = {
	    .mode = xstrdup(src->mode),
	    .bridge = xstrdup(src->bridge),
	    .mac_prefix = xstrdup(src->mac_prefix),
	    .net = xstrdup(src->net),
	    .dhcp_start = xstrdup(src->dhcp_start),
	    .restrict_ = src->restrict_,
	    .netdev = xstrdup(src->netdev),
	};

	vmm_net_free(dst);
	*dst = t;
}

void vmm_config_init(struct vmm_config *c)
{
	const char *home = getenv("HOME");

	memset(c, 0, sizeof(*c));
	if (!home)
		home = "/root";
	c->address = xstrdup("unix:./vmm.sock");
	c->kms_url = xstrdup("http://127.0.0.1:8081");
	c->event_buffer_size = 20;
	c->node_name = xstrdup("");
	c->run_path = xasprintf("%s/.dstack-vmm/vm", home);
	c->image_path = xasprintf("%s/.dstack-vmm/image", home);
	c->image_registry = xstrdup("");

	c->cvm.platform = xstrdup("auto");
	c->cvm.qemu_path = xstrdup("");
	c->cvm.accel = xstrdup("auto");
	strv_push(&c->cvm.kms_urls, "http://127.0.0.1:8081");
	strv_push(&c->cvm.gateway_urls, "http://127.0.0.1:8082");
	c->cvm.pccs_url = xstrdup("");
	c->cvm.docker_registry = xstrdup("");
	c->cvm.volumes_dir = xstrdup("");
	c->cvm.cid_start = 1000;
	c->cvm.cid_pool_size = 1000;
	c->cvm.max_allocable_vcpu = 20;
	c->cvm.max_allocable_memory_in_mb = 100000;
	c->cvm.user = xstrdup("");
	c->cvm.instance_id = xstrdup("");
	c->cvm.use_mrconfigid = true;
	c->cvm.qemu_single_pass_add_pages = -1;
	c->cvm.qemu_pic = -1;
	c->cvm.tdx_attestation_variant = xstrdup("auto");
	c->cvm.host_share_mode = xstrdup("9p");
	c->cvm.has_qgs_port = true;
	c->cvm.qgs_port = 4050;
	c->cvm.product[SMB_SYS_VENDOR] = xstrdup("dstack");
	c->cvm.product[SMB_PRODUCT_NAME] = xstrdup("dstack");

	c->cvm.networking.mode = xstrdup("user");
	c->cvm.networking.bridge = xstrdup("");
	c->cvm.networking.mac_prefix = xstrdup("");
	c->cvm.networking.net = xstrdup("10.0.2.0/24");
	c->cvm.networking.dhcp_start = xstrdup("10.0.2.10");
	c->cvm.networking.netdev = xstrdup("");

	c->cvm.port_mapping.address = xstrdup("127.0.0.1");
	c->cvm.port_mapping.ranges = calloc(1, sizeof(struct vmm_port_range));
	if (!c->cvm.port_mapping.ranges)
		abort();
	strcpy(c->cvm.port_mapping.ranges[0].protocol, "tcp");
	c->cvm.port_mapping.ranges[0].from = 1;
	c->cvm.port_mapping.ranges[0].to = 20000;
	c->cvm.port_mapping.n_ranges = 1;

	c->cvm.auto_restart.enabled = true;
	c->cvm.auto_restart.interval = 20;
	c->cvm.auto_restart.max_retries = 5;
	c->cvm.auto_restart.initial_backoff = 5;
	c->cvm.auto_restart.max_backoff = 300;
	c->cvm.auto_restart.reset_window = 300;

	c->cvm.log.max_bytes = 4 << 20;
	c->cvm.log.max_backups = 3;
	c->cvm.log.check_interval_secs = 5;

	strv_push(&c->cvm.gpu.listing, "10de:2335");
	c->cvm.gpu.allow_attach_all = true;

	c->gateway.base_domain = xstrdup("localhost");
	c->gateway.port = 8082;
	c->gateway.agent_port = 8090;

	c->auth.htpasswd_file = xstrdup("");

	c->supervisor.exe = xstrdup("./supervisor");
	c->supervisor.sock = xstrdup("./run/supervisor.sock");
	c->supervisor.pid_file = xstrdup("./run/supervisor.pid");
	c->supervisor.log_file = xstrdup("./run/supervisor.log");
	c->supervisor.auto_start = true;

	c->host_api.address = xstrdup("vsock:2");
	c->host_api.port = 10000;

	c->key_provider.enabled = true;
	c->key_provider.address = xstrdup("127.0.0.1");
	c->key_provider.port = 3443;
}

void vmm_config_free(struct vmm_config *c)
{
	free(c->address);
	free(c->kms_url);
	free(c->node_name);
	free(c->run_path);
	free(c->image_path);
	free(c->image_registry);
	free(c->cvm.platform);
	free(c->cvm.qemu_path);
	free(c->cvm.accel);
	strv_free(&c->cvm.kms_urls);
	strv_free(&c->cvm.gateway_urls);
	free(c->cvm.pccs_url);
	free(c->cvm.nvidia_attestation_proxy_url);
	free(c->cvm.docker_registry);
	free(c->cvm.volumes_dir);
	free(c->cvm.user);
	free(c->cvm.instance_id);
	free(c->cvm.qemu_version);
	free(c->cvm.tdx_attestation_variant);
	free(c->cvm.host_share_mode);
	free(c->cvm.tee_simulator.platform);
	free(c->cvm.tee_simulator.mock_attestation_seed);
	free(c->cvm.tee_simulator.collateral_base_url);
	for (int i = 0; i < SMB_COUNT; i++)
		free(c->cvm.product[i]);
	vmm_net_free(&c->cvm.networking);
	free(c->cvm.port_mapping.address);
	free(c->cvm.port_mapping.ranges);
	strv_free(&c->cvm.gpu.listing);
	strv_free(&c->cvm.gpu.exclude);
	strv_free(&c->cvm.gpu.include);
	free(c->gateway.base_domain);
	strv_free(&c->auth.tokens);
	free(c->auth.htpasswd_file);
	free(c->supervisor.exe);
	free(c->supervisor.sock);
	free(c->supervisor.pid_file);
	free(c->supervisor.log_file);
	free(c->host_api.address);
	free(c->key_provider.address);
	memset(c, 0, sizeof(*c));
}

int vmm_parse_human_size(const char *s, uint64_t *out, struct err *e)
{
	char *end;
	unsigned long long v;
	int shift = 0;
	size_t len;

	if (!s || !*s)
		return err_set(e, "invalid size: empty");
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		errno = 0;
		v = strtoull(s + 2, &end, 16);
		if (errno || end == s + 2 || *end)
			return err_set(e, "invalid size: %s", s);
		*out = v;
		return 0;
	}
	len = strlen(s);
	switch (toupper((unsigned char)s[len - 1])) {
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	case 'T':
		shift = 40;
		break;
	default:
		break;
	}
	if (!isdigit((unsigned char)s[0]))
		return err_set(e, "invalid size: %s", s);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || (size_t)(end - s) != len - (shift ? 1 : 0))
		return err_set(e, "invalid size: %s", s);
	if (shift && v > (UINT64_MAX >> shift))
		return err_set(e, "invalid size: %s", s);
	*out = (uint64_t)v << shift;
	return 0;
}

/* ---- JSON overlay -------------------------------------------------- */

static int get_str(const json_t *o, const char *k, char **dst, struct err *e)
{
	json_t *v = json_object_get(o, k);

	if (!v)
		return 0;
	if (!json_is_string(v))
		return err_set(e, "%s: expected a string", k);
	str_set(dst, json_string_value(v));
	return 0;
}

static int get_bool(const json_t *o, const char *k, bool *dst, struct err *e)
{
	json_t *v = json_object_get(o, k);

	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return err_set(e, "%s: expected a boolean", k);
	*dst = json_is_true(v);
	return 0;
}

static int get_u64(const json_t *o, const char *k, uint64_t *dst, struct err *e)
{
	json_t *v = json_object_get(o, k);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return err_set(e, "%s: expected a non-negative integer", k);
	*dst = (uint64_t)json_integer_value(v);
	return 0;
}

static int get_u32(const json_t *o, const char *k, uint32_t *dst, struct err *e)
{
	uint64_t v = *dst;

	if (get_u64(o, k, &v, e) < 0)
		return -1;
	if (v > UINT32_MAX)
		return err_set(e, "%s: out of range", k);
	*dst = (uint32_t)v;
	return 0;
}

static int get_tri(const json_t *o, const char *k, int *dst, struct err *e)
{
	bool b = false;
	json_t *v = json_object_get(o, k);

	if (!v || json_is_null(v))
		return 0;
	if (get_bool(o, k, &b, e) < 0)
		return -1;
	*dst = b;
	return 0;
}

static int get_size(const json_t *o, const char *k, uint64_t *dst, struct err *e)
{
	json_t *v = json_object_get(o, k);

	if (!v)
		return 0;
	if (json_is_string(v))
		return vmm_parse_human_size(json_string_value(v), dst, e) < 0 ? err_wrap(e, "%s", k) : 0;
	return get_u64(o, k, dst, e);
}

static int get_strv(const json_t *o, const char *k, struct strv *dst, struct err *e)
{
	json_t *v = json_object_get(o, k);

	return v ? strv_from_json(dst, v, k, e) : 0;
}

static int apply_net(struct vmm_net *n, const json_t *o, struct err *e)
{
	if (!o)
		return 0;
	if (get_str(o, "mode", &n->mode, e) < 0 || get_str(o, "bridge", &n->bridge, e) < 0 ||
	    get_str(o, "mac_prefix", &n->mac_prefix, e) < 0 || get_str(o, "net", &n->net, e) < 0 ||
	    get_str(o, "dhcp_start", &n->dhcp_start, e) < 0 ||
	    get_bool(o, "restrict", &n->restrict_, e) < 0 || get_str(o, "netdev", &n->netdev, e) < 0)
		return err_wrap(e, "cvm.networking");
	return 0;
}

static int apply_port_mapping(struct vmm_config *c, const json_t *o, struct err *e)
{
	json_t *r, *it;
	size_t i;

	if (!o)
		return 0;
	if (get_bool(o, "enabled", &c->cvm.port_mapping.enabled, e) < 0 ||
	    get_str(o, "address", &c->cvm.port_mapping.address, e) < 0)
		return err_wrap(e, "cvm.port_mapping");
	r = json_object_get(o, "range");
	if (!r)
		return 0;
	if (!json_is_array(r))
		return err_set(e, "cvm.port_mapping.range: expected an array");
	struct vmm_port_range *ranges = calloc(json_array_size(r) + 1, sizeof(*ranges));
	if (!ranges)
		abort();
	json_array_foreach(r, i, it)
	{
		const char *p = json_str(it, "protocol");
		uint64_t from = 0, to = 0;

		if (!p || (strcmp(p, "tcp") && strcmp(p, "udp")) || get_u64(it, "from", &from, e) < 0 ||
		    get_u64(it, "to", &to, e) < 0 || from > 65535 || to > 65535) {
			free(ranges);
			return err_set(e, "cvm.port_mapping.range[%zu]: invalid entry", i);
		}
		strcpy(ranges[i].protocol, p);
		ranges[i].from = (uint16_t)from;
		ranges[i].to = (uint16_t)to;
	}
	free(c->cvm.port_mapping.ranges);
	c->cvm.port_mapping.ranges = ranges;
	c->cvm.port_mapping.n_ranges = json_array_size(r);
	return 0;
}

static int apply_cvm(struct vmm_config *c, const json_t *o, struct err *e)
{
	json_t *sub;

	if (!o)
		return 0;
	if (get_str(o, "platform", &c->cvm.platform, e) < 0 ||
	    get_str(o, "qemu_path", &c->cvm.qemu_path, e) < 0 || get_str(o, "accel", &c->cvm.accel, e) < 0 ||
	    get_strv(o, "kms_urls", &c->cvm.kms_urls, e) < 0 ||
	    get_strv(o, "tproxy_urls", &c->cvm.gateway_urls, e) < 0 ||
	    get_strv(o, "gateway_urls", &c->cvm.gateway_urls, e) < 0 ||
	    get_str(o, "pccs_url", &c->cvm.pccs_url, e) < 0 ||
	    get_str(o, "nvidia_attestation_proxy_url", &c->cvm.nvidia_attestation_proxy_url, e) < 0 ||
	    get_str(o, "docker_registry", &c->cvm.docker_registry, e) < 0 ||
	    get_str(o, "volumes_dir", &c->cvm.volumes_dir, e) < 0 ||
	    get_u32(o, "cid_start", &c->cvm.cid_start, e) < 0 ||
	    get_u32(o, "cid_pool_size", &c->cvm.cid_pool_size, e) < 0 ||
	    get_u32(o, "max_allocable_vcpu", &c->cvm.max_allocable_vcpu, e) < 0 ||
	    get_u32(o, "max_allocable_memory_in_mb", &c->cvm.max_allocable_memory_in_mb, e) < 0 ||
	    get_bool(o, "qmp_socket", &c->cvm.qmp_socket, e) < 0 || get_str(o, "user", &c->cvm.user, e) < 0 ||
	    get_str(o, "instance_id", &c->cvm.instance_id, e) < 0 ||
	    get_bool(o, "use_mrconfigid", &c->cvm.use_mrconfigid, e) < 0 ||
	    get_tri(o, "qemu_single_pass_add_pages", &c->cvm.qemu_single_pass_add_pages, e) < 0 ||
	    get_tri(o, "qemu_pic", &c->cvm.qemu_pic, e) < 0 ||
	    get_str(o, "qemu_version", &c->cvm.qemu_version, e) < 0 ||
	    get_size(o, "qemu_pci_hole64_size", &c->cvm.qemu_pci_hole64_size, e) < 0 ||
	    get_bool(o, "qemu_hotplug_off", &c->cvm.qemu_hotplug_off, e) < 0 ||
	    get_str(o, "tdx_attestation_variant", &c->cvm.tdx_attestation_variant, e) < 0 ||
	    get_str(o, "host_share_mode", &c->cvm.host_share_mode, e) < 0)
		return err_wrap(e, "cvm");
	sub = json_object_get(o, "qgs_port");
	if (sub && json_is_null(sub))
		c->cvm.has_qgs_port = false;
	else if (sub) {
		if (get_u32(o, "qgs_port", &c->cvm.qgs_port, e) < 0)
			return err_wrap(e, "cvm");
		c->cvm.has_qgs_port = true;
	}
	if ((sub = json_object_get(o, "tee_simulator"))) {
		c->cvm.tee_simulator.present = true;
		if (get_str(sub, "platform", &c->cvm.tee_simulator.platform, e) < 0 ||
		    get_str(sub, "mock_attestation_seed", &c->cvm.tee_simulator.mock_attestation_seed, e) <
			0 ||
		    get_str(sub, "collateral_base_url", &c->cvm.tee_simulator.collateral_base_url, e) < 0)
			return err_wrap(e, "cvm.tee_simulator");
	}
	if ((sub = json_object_get(o, "product"))) {
		for (int i = 0; i < SMB_COUNT; i++)
			if (get_str(sub, vmm_smbios_fields[i].config_key, &c->cvm.product[i], e) < 0)
				return err_wrap(e, "cvm.product");
	}
	if (apply_net(&c->cvm.networking, json_object_get(o, "networking"), e) < 0 ||
	    apply_port_mapping(c, json_object_get(o, "port_mapping"), e) < 0)
		return -1;
	if ((sub = json_object_get(o, "auto_restart"))) {
		if (get_bool(sub, "enabled", &c->cvm.auto_restart.enabled, e) < 0 ||
		    get_u64(sub, "interval", &c->cvm.auto_restart.interval, e) < 0 ||
		    get_u64(sub, "max_retries", &c->cvm.auto_restart.max_retries, e) < 0 ||
		    get_u64(sub, "initial_backoff", &c->cvm.auto_restart.initial_backoff, e) < 0 ||
		    get_u64(sub, "max_backoff", &c->cvm.auto_restart.max_backoff, e) < 0 ||
		    get_u64(sub, "reset_window", &c->cvm.auto_restart.reset_window, e) < 0)
			return err_wrap(e, "cvm.auto_restart");
	}
	if ((sub = json_object_get(o, "log"))) {
		if (get_size(sub, "max_bytes", &c->cvm.log.max_bytes, e) < 0 ||
		    get_u32(sub, "max_backups", &c->cvm.log.max_backups, e) < 0 ||
		    get_u64(sub, "check_interval_secs", &c->cvm.log.check_interval_secs, e) < 0)
			return err_wrap(e, "cvm.log");
	}
	if ((sub = json_object_get(o, "gpu"))) {
		if (get_bool(sub, "enabled", &c->cvm.gpu.enabled, e) < 0 ||
		    get_strv(sub, "listing", &c->cvm.gpu.listing, e) < 0 ||
		    get_strv(sub, "exclude", &c->cvm.gpu.exclude, e) < 0 ||
		    get_strv(sub, "include", &c->cvm.gpu.include, e) < 0 ||
		    get_bool(sub, "allow_attach_all", &c->cvm.gpu.allow_attach_all, e) < 0)
			return err_wrap(e, "cvm.gpu");
	}
	return 0;
}

int vmm_config_apply_json(struct vmm_config *c, const json_t *doc, struct err *e)
{
	json_t *sub;

	if (!json_is_object(doc))
		return err_set(e, "config: expected an object");
	if (get_str(doc, "address", &c->address, e) < 0 || get_str(doc, "kms_url", &c->kms_url, e) < 0 ||
	    get_u32(doc, "event_buffer_size", &c->event_buffer_size, e) < 0 ||
	    get_str(doc, "node_name", &c->node_name, e) < 0 ||
	    get_str(doc, "run_path", &c->run_path, e) < 0 ||
	    get_str(doc, "image_path", &c->image_path, e) < 0)
		return -1;
	if ((sub = json_object_get(doc, "image")) && (get_str(sub, "path", &c->image_path, e) < 0 ||
						      get_str(sub, "registry", &c->image_registry, e) < 0))
		return err_wrap(e, "image");
	if (apply_cvm(c, json_object_get(doc, "cvm"), e) < 0)
		return -1;
	if ((sub = json_object_get(doc, "gateway")) &&
	    (get_str(sub, "base_domain", &c->gateway.base_domain, e) < 0 ||
	     get_u32(sub, "port", &c->gateway.port, e) < 0 ||
	     get_u32(sub, "agent_port", &c->gateway.agent_port, e) < 0))
		return err_wrap(e, "gateway");
	if ((sub = json_object_get(doc, "auth")) &&
	    (get_bool(sub, "enabled", &c->auth.enabled, e) < 0 ||
	     get_strv(sub, "tokens", &c->auth.tokens, e) < 0 ||
	     get_str(sub, "htpasswd_file", &c->auth.htpasswd_file, e) < 0))
		return err_wrap(e, "auth");
	if ((sub = json_object_get(doc, "supervisor")) &&
	    (get_str(sub, "exe", &c->supervisor.exe, e) < 0 ||
	     get_str(sub, "sock", &c->supervisor.sock, e) < 0 ||
	     get_str(sub, "pid_file", &c->supervisor.pid_file, e) < 0 ||
	     get_str(sub, "log_file", &c->supervisor.log_file, e) < 0 ||
	     get_bool(sub, "detached", &c->supervisor.detached, e) < 0 ||
	     get_bool(sub, "auto_start", &c->supervisor.auto_start, e) < 0))
		return err_wrap(e, "supervisor");
	if ((sub = json_object_get(doc, "host_api")) &&
	    (get_str(sub, "address", &c->host_api.address, e) < 0 ||
	     get_u32(sub, "port", &c->host_api.port, e) < 0))
		return err_wrap(e, "host_api");
	if ((sub = json_object_get(doc, "key_provider")) &&
	    (get_bool(sub, "enabled", &c->key_provider.enabled, e) < 0 ||
	     get_str(sub, "address", &c->key_provider.address, e) < 0 ||
	     get_u32(sub, "port", &c->key_provider.port, e) < 0))
		return err_wrap(e, "key_provider");
	return 0;
}

int vmm_config_validate(const struct vmm_config *c, struct err *e)
{
	const char *a = c->host_api.address;
	const char *hs = c->cvm.host_share_mode;
	const char *tv = c->cvm.tdx_attestation_variant;
	const char *nm = c->cvm.networking.mode;

	if (c->cvm.cid_start < 3)
		return err_set(e, "cvm.cid_start must be >= 3");
	if (c->cvm.cid_pool_size == 0)
		return err_set(e, "cvm.cid_pool_size must be > 0");
	if ((uint64_t)c->cvm.cid_start + c->cvm.cid_pool_size > UINT32_MAX)
		return err_set(e, "cvm.cid_start + cvm.cid_pool_size overflows");
	if (c->cvm.auto_restart.enabled) {
		if (c->cvm.auto_restart.interval == 0)
			return err_set(e, "cvm.auto_restart.interval must be > 0");
		if (c->cvm.auto_restart.initial_backoff == 0)
			return err_set(e, "cvm.auto_restart.initial_backoff must be > 0");
		if (c->cvm.auto_restart.initial_backoff > c->cvm.auto_restart.max_backoff)
			return err_set(e, "cvm.auto_restart.initial_backoff must be <= max_backoff");
	}
	if (strncmp(a, "vsock:", 6) != 0 || !a[6] || !str_charset_ok(a + 6, ""))
		return err_set(e, "host_api.address must be vsock:<cid>, got %s", a);
	if (strcmp(hs, "9p") && strcmp(hs, "vhd") && strcmp(hs, "vvfat"))
		return err_set(e, "invalid cvm.host_share_mode: %s", hs);
	if (strcmp(c->cvm.accel, "auto") && strcmp(c->cvm.accel, "kvm") && strcmp(c->cvm.accel, "tcg"))
		return err_set(e, "invalid cvm.accel: %s (expected auto, kvm or tcg)", c->cvm.accel);
	if (strcmp(tv, "auto") && strcmp(tv, "legacy") && strcmp(tv, "lite"))
		return err_set(e, "invalid cvm.tdx_attestation_variant: %s", tv);
	if (strcmp(nm, "user") && strcmp(nm, "bridge") && strcmp(nm, "custom"))
		return err_set(e, "invalid cvm.networking.mode: %s", nm);
	if (!strcmp(nm, "bridge") && str_empty(c->cvm.networking.bridge))
		return err_set(e, "cvm.networking.bridge is required in bridge mode");
	if (!strcmp(nm, "custom") && str_empty(c->cvm.networking.netdev))
		return err_set(e, "cvm.networking.netdev is required in custom mode");
	if (strlen(c->cvm.networking.mac_prefix ? c->cvm.networking.mac_prefix : "") > 0) {
		uint8_t *p = NULL;
		size_t plen = 0;
		const char *mp = c->cvm.networking.mac_prefix;
		char clean[32];
		size_t j = 0;

		for (size_t i = 0; mp[i] && j < sizeof(clean) - 1; i++)
			if (mp[i] != ':' && mp[i] != '-')
				clean[j++] = mp[i];
		clean[j] = '\0';
		if (hex_decode_alloc(clean, j, &p, &plen, NULL) < 0 || plen > 3) {
			free(p);
			return err_set(e, "cvm.networking.mac_prefix must be 0-3 hex bytes");
		}
		free(p);
	}
	return 0;
}

char *vmm_config_instance_id(const struct vmm_config *c)
{
	uint8_t h[32];
	char hex[17];

	if (!str_empty(c->cvm.instance_id))
		return xstrdup(c->cvm.instance_id);
	sha256_buf(c->run_path, strlen(c->run_path), h);
	hex_encode(h, 8, hex);
	return xasprintf("path-%s", hex);
}
