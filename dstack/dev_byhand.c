/*
 * dev_byhand.c — the steps of `dstack dev up` that a walkthrough by hand
 * (docs/dev-stack.md) would otherwise spell out in a page of commands:
 *
 *   dstack dev cvm kms      boot the KMS's simulated CVM and start its guest
 *                           agent (with KMS_AUTH=webhook, allow the KMS in
 *                           auth-config.json)
 *   dstack dev cvm gateway  the same for the gateway (needs the KMS up)
 *   dstack dev allow        KMS_AUTH=webhook: allow an app in auth-config.json
 *
 * The KMS, the gateway and the VMM themselves are then started by hand with
 * their configs. The agents are components of the dev stack like any other
 * (pid file, log, health wait), so `dstack dev status` shows them and
 * `dstack dev down` stops them.
 */
#include <stdio.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "dev.h"

static const struct comp *comp_named(const char *name)
{
	for (size_t i = 0; i < dev_n_comps; i++)
		if (!strcmp(dev_comps[i].name, name))
			return &dev_comps[i];
	return NULL;
}

/* The component `name` answers its health check (waiting up to --timeout
 * for one just started in the background), else an error naming how to
 * start it. */
static int need_running(const struct dev *d, const char *name, const char *how, struct err *e)
{
	const struct comp *k = comp_named(name);
	for (double end = dev_now_s() + d->timeout_s; k;) {
		if (dev_healthy(d, k))
			return 0;
		if (dev_now_s() > end)
			break;
		dev_sleep_ms(250);
	}
	_cleanup_free_ char *url = k ? dev_health_url(d, k) : NULL;
	return err_set(e, "%s does not answer at %s: %s", name, url ? url : "?", how);
}

static int cvm_kms(struct dev *d, struct err *e)
{
	_cleanup_free_ char *serve = dev_pathf(
	    "dstack simtee serve --dir %s/simtee --listen tcp:127.0.0.1:%u &", d->dir, d->c.simtee_port);
	_cleanup_json_ json_t *platform = NULL;
	if (dev_ensure_simtee(d, e) < 0 || need_running(d, "simtee", serve, e) < 0 ||
	    dev_ensure_kms_cvm(d, e) < 0 || dev_start_comp(d, comp_named("kms-agent"), e) < 0)
		return -1;
	if (!strcmp(d->c.kms_auth, "webhook") &&
	    (dev_kms_boot_info(d, &platform, e) < 0 || dev_policy_allow(d, "the KMS", true, platform, e) < 0))
		return -1;
	printf("\nThe KMS's CVM runs; start the KMS in it:\n"
	       "  DSTACK_AGENT_ADDRESS=%s/kms-cvm/dstack.sock dstack-kms -c %s/kms.toml &\n",
	       d->dir, d->dir);
	return 0;
}

static int cvm_gateway(struct dev *d, struct err *e)
{
	_cleanup_free_ char *kms =
	    dev_pathf("start it first (dstack dev cvm kms --dir %s, then dstack-kms)", d->dir);
	_cleanup_json_ json_t *platform = NULL;
	const struct comp *agent = comp_named("gateway-agent");
	if (need_running(d, "kms", kms, e) < 0)
		return -1;
	if (!strcmp(d->c.kms_auth, "webhook") && dev_kms_boot_info(d, &platform, e) < 0)
		return -1;
	if (!(dev_read_pid(d, agent->name) > 0) && dev_boot_gateway_cvm(d, platform, e) < 0)
		return -1;
	if (dev_start_comp(d, agent, e) < 0)
		return -1;
	printf("\nThe gateway's CVM runs; start the gateway in it:\n"
	       "  DSTACK_AGENT_ADDRESS=%s/gateway-cvm/dstack.sock dstack-gateway -c %s/gateway.toml &\n",
	       d->dir, d->dir);
	return 0;
}

int dev_cvm(struct dev *d, const char *which)
{
	struct err e = ERR_INIT;
	int rc;
	if (strcmp(which, "kms") && strcmp(which, "gateway")) {
		fprintf(stderr, "dstack dev cvm: kms or gateway, not %s\n", which);
		return 2;
	}
	if (dev_load_config(d, false, &e) < 0 || dev_make_dirs(d, &e) < 0) {
		fprintf(stderr, "dstack dev cvm %s: %s\n", which, err_str(&e));
		return 1;
	}
	rc = !strcmp(which, "kms") ? cvm_kms(d, &e) : cvm_gateway(d, &e);
	if (rc < 0) {
		fprintf(stderr, "dstack dev cvm %s: %s\n", which, err_str(&e));
		return 1;
	}
	return 0;
}

int dev_allow(struct dev *d)
{
	struct err e = ERR_INIT;
	_cleanup_json_ json_t *platform = NULL;
	if (dev_load_config(d, false, &e) < 0)
		goto fail;
	if (strcmp(d->c.kms_auth, "webhook")) {
		printf("KMS_AUTH=%s: the KMS allows every app whose attestation verifies; nothing to add\n",
		       d->c.kms_auth);
		return 0;
	}
	if (!d->compose_path) {
		err_set(&e, "which app? --compose FILE");
		goto fail;
	}
	if ((d->image_arg && dev_resolve_image(d, d->image_arg, &e) < 0) ||
	    need_running(d, "kms-agent", "its identity comes from the KMS's CVM (dstack dev cvm kms)", &e) <
		0 ||
	    dev_kms_boot_info(d, &platform, &e) < 0 || dev_allow_app(d, platform, &e) < 0)
		goto fail;
	printf("auth-config.json allows %s (unchanged if it already did)\n", d->compose_path);
	return 0;
fail:
	fprintf(stderr, "dstack dev allow: %s\n", err_str(&e));
	return 1;
}
