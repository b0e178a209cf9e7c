/*
 * admin.c — the Admin service on its own plain-HTTP listener
 * (core.admin): ClearImageCache behind a bearer token (`Authorization:
 * Bearer <t>` or `X-Admin-Token: <t>`, compared in constant time). Cache
 * keys must be lowercase/uppercase hex or "all", so no path can escape
 * <cache_dir>/images or <cache_dir>/measurements.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/mem.h"
#include "kms.h"
#include "kms_rpc.pb-c.h"
#include "prpc/server.h"

static int unlink_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static bool is_hex(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
			return false;
	return true;
}

/* Remove <cache>/<sub>/<key> (or the whole <cache>/<sub> for "all"). */
static int remove_cache(const char *cache, const char *sub, const char *key, struct err *e)
{
	char p[4096];

	if (!key || !*key)
		return 0;
	if (strcmp(key, "all") && !is_hex(key))
		return err_set(e, "invalid cache key '%.64s': expected hex or \"all\"", key);
	if (!strcmp(key, "all"))
		snprintf(p, sizeof(p), "%s/%s", cache, sub);
	else
		snprintf(p, sizeof(p), "%s/%s/%s", cache, sub, key);
	if (access(p, F_OK) < 0)
		return 0;
	if (nftw(p, unlink_cb, 16, FTW_DEPTH | FTW_PHYS) < 0)
		return err_errno(e, "remove %s", p);
	return 0;
}

static bool token_ok(struct kms *k, struct prpc_call *call)
{
	const char *auth = prpc_call_header(call, "Authorization");
	const char *x = prpc_call_header(call, "X-Admin-Token");
	const char *want = k->cfg.admin_token;
	const char *got = NULL;

	if (k->cfg.admin_insecure_no_auth && !*want)
		return true;
	if (!*want)
		return false;
	if (auth && !strncasecmp(auth, "Bearer ", 7))
		got = auth + 7;
	else if (x)
		got = x;
	return got && strlen(got) == strlen(want) && ct_memeq(got, want, strlen(want));
}

static int clear_image_cache(struct prpc_call *call, const void *in_, void *out, struct err *e)
{
	struct kms *k = prpc_call_arg(call);
	const Kms__ClearImageCacheRequest *in = in_;

	(void)out;
	if (!token_ok(k, call))
		return err_set(e, "Unauthorized");
	if (remove_cache(k->cfg.image_cache_dir, "images", in->image_hash, e) < 0 ||
	    remove_cache(k->cfg.image_cache_dir, "measurements", in->config_hash, e) < 0)
		return -1;
	return 0;
}

static const struct prpc_method admin_methods[] = {
    PRPC_METHOD_BLOCKING("ClearImageCache", kms__clear_image_cache_request, google__protobuf__empty,
			 clear_image_cache),
};
static const char *const admin_prefixes[] = {"Admin.", NULL};

int kms_admin_mount(struct kms *k, struct http_server *srv, struct err *e)
{
	static struct prpc_service svc = {"Admin", admin_prefixes, admin_methods, ARRAY_SIZE(admin_methods),
					  NULL};
	const struct prpc_service *svcs[] = {&svc};

	svc.arg = k;
	http_server_add_health(srv);
	return prpc_mount(srv, "/prpc/", svcs, 1, e);
}
