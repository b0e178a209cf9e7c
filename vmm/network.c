/*
 * network.c — see network.h.
 */
#include "vmm/network.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/hex.h"

void vmm_networks_free(struct vmm_net *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		vmm_net_free(&v[i]);
	free(v);
}

static int resolve_one(const struct vmm_config *c, const struct vmm_net_req *r, const char *sys_class_net,
		       struct vmm_net *out, struct err *e)
{
	const char *mode = r->mode ? r->mode : "";
	const char *br = r->bridge_name ? r->bridge_name : "";

	if (strcmp(mode, "user") && strcmp(mode, "bridge"))
		return err_set(e, "Unsupported network mode: %s", mode);
	if (*br && strcmp(mode, "bridge"))
		return err_set(e, "bridge_name is only allowed in bridge mode");
	vmm_net_copy(out, &c->cvm.networking);
	str_set(&out->mode, mode);
	if (*br)
		str_set(&out->bridge, br);
	if (!strcmp(mode, "bridge")) {
		_cleanup_free_ char *p = NULL;

		if (str_empty(out->bridge))
			return err_set(e, "Bridge mode requires a bridge name");
		if (strchr(out->bridge, '/') || !strcmp(out->bridge, ".") || !strcmp(out->bridge, ".."))
			return err_set(e, "Invalid bridge name: %s", out->bridge);
		p = path_join(sys_class_net, out->bridge);
		if (access(p, F_OK) < 0)
			return err_set(e, "Bridge %s does not exist", out->bridge);
	}
	return 0;
}

int vmm_networks_resolve(const struct vmm_config *c, const struct vmm_net_req *networks, size_t n_networks,
			 const struct vmm_net_req *single, const char *sys_class_net, struct vmm_net **out,
			 size_t *n_out, struct err *e)
{
	const struct vmm_net_req *src = networks;
	size_t n = n_networks;
	struct vmm_net *v;

	if (n == 0 && single) {
		src = single;
		n = 1;
	}
	*out = NULL;
	*n_out = 0;
	if (n == 0)
		return 0;
	v = calloc(n, sizeof(*v));
	if (!v)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (resolve_one(c, &src[i], sys_class_net, &v[i], e) < 0) {
			vmm_networks_free(v, n);
			return err_wrap(e, "networks[%zu]", i);
		}
	}
	*out = v;
	*n_out = n;
	return 0;
}

static int parse_prefix(const char *s, uint8_t out[3], size_t *len, struct err *e)
{
	char clean[16];
	size_t j = 0;
	_cleanup_free_ uint8_t *bytes = NULL;

	*len = 0;
	for (; s && *s; s++) {
		if (*s == ':' || *s == '-')
			continue;
		if (j >= sizeof(clean) - 1)
			return err_set(e, "mac_prefix too long");
		clean[j++] = *s;
	}
	clean[j] = '\0';
	if (hex_decode_alloc(clean, j, &bytes, len, e) < 0)
		return err_wrap(e, "invalid mac_prefix");
	if (*len > 3)
		return err_set(e, "mac_prefix must be at most 3 bytes");
	memcpy(out, bytes, *len);
	return 0;
}

int vmm_mac_address(const char *vm_id, size_t index, const char *mac_prefix, char out[18], struct err *e)
{
	uint8_t h[32], mac[6], prefix[3];
	size_t plen;

	if (parse_prefix(mac_prefix, prefix, &plen, e) < 0)
		return -1;
	if (index == 0) {
		sha256_buf(vm_id, strlen(vm_id), h);
	} else {
		_cleanup_free_ char *s = xasprintf("%s:%zu", vm_id, index);
		sha256_buf(s, strlen(s), h);
	}
	memcpy(mac, prefix, plen);
	memcpy(mac + plen, h, 6 - plen);
	mac[0] = (uint8_t)((mac[0] & 0xfe) | 0x02);
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
	return 0;
}

void vmm_tap_name(const char *instance_id, const char *vm_id, size_t index, char out[16])
{
	_cleanup_free_ char *idx = xasprintf("%zu", index);
	size_t a = strlen(instance_id), b = strlen(vm_id), c = strlen(idx);
	_cleanup_free_ char *buf = malloc(a + b + c + 2);
	uint8_t h[32];

	if (!buf)
		abort();
	memcpy(buf, instance_id, a);
	buf[a] = '\0';
	memcpy(buf + a + 1, vm_id, b);
	buf[a + 1 + b] = '\0';
	memcpy(buf + a + b + 2, idx, c);
	sha256_buf(buf, a + b + c + 2, h);
	memcpy(out, "dt", 2);
	hex_encode(h, 6, out + 2);
}
