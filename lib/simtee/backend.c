/*
 * backend.c — the simulated TDX behind tee.h, and tee_open(), which picks the
 * real or the simulated backend at run time. It lives here rather than in
 * lib/tdx because it is the one place that knows both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "simtee/td.h"

struct sim_ctx {
	char *pki_dir;
	char *state;
};

static int sim_quote(struct tee *t, const uint8_t rd[64], uint8_t **quote, size_t *len, struct err *e)
{
	struct sim_ctx *c = t->ctx;

	return simtee_td_quote(c->pki_dir, c->state, rd, quote, len, e);
}

static int sim_extend(struct tee *t, unsigned index, const uint8_t digest[48], struct err *e)
{
	struct sim_ctx *c = t->ctx;

	return simtee_td_extend(c->state, index, digest, e);
}

static int sim_event_log(struct tee *t, uint8_t **ccel, size_t *len, struct err *e)
{
	struct sim_ctx *c = t->ctx;

	return simtee_td_event_log(c->state, ccel, len, e);
}

static void sim_close(struct tee *t)
{
	struct sim_ctx *c = t->ctx;

	free(c->pki_dir);
	free(c->state);
	free(c);
	free(t);
}

static const struct tee_ops sim_ops = {
    .name = "simtee",
    .quote = sim_quote,
    .extend_rtmr = sim_extend,
    .event_log = sim_event_log,
    .close = sim_close,
};

int simtee_tee_open(struct tee **out, const char *pki_dir, const char *state_path, struct err *e)
{
	struct tee *t;
	struct sim_ctx *c;

	if (!pki_dir || !state_path)
		return err_set(e, "simtee backend needs a PKI directory and a TD state file");
	if (!file_exists(state_path))
		return err_set(e, "simulated TD state '%s' does not exist", state_path);
	t = calloc(1, sizeof(*t));
	c = calloc(1, sizeof(*c));
	if (!t || !c || !(c->pki_dir = strdup(pki_dir)) || !(c->state = strdup(state_path))) {
		if (c) {
			free(c->pki_dir);
			free(c);
		}
		free(t);
		return err_set(e, "out of memory");
	}
	t->ops = &sim_ops;
	t->ctx = c;
	*out = t;
	return 0;
}

static int real_tdx_present(const struct tee_tdx_paths *p)
{
	char probe[4096];
	const char *cfg = p->configfs_report ? p->configfs_report
			  : getenv("DCAP_TDX_QUOTE_CONFIGFS_PATH")
			      ? getenv("DCAP_TDX_QUOTE_CONFIGFS_PATH")
			      : "/sys/kernel/config/tsm/report/com.intel.dcap";

	snprintf(probe, sizeof(probe), "%s/provider", cfg);
	return file_exists(probe) || file_exists(p->tdx_guest_dev ? p->tdx_guest_dev : "/dev/tdx_guest");
}

int tee_open(struct tee **out, const struct tee_config *cfg, struct err *e)
{
	const char *b = cfg->backend && *cfg->backend ? cfg->backend : "auto";

	*out = NULL;
	if (strcmp(b, "auto") == 0)
		b = real_tdx_present(&cfg->tdx) ? "tdx" : "simtee";
	if (strcmp(b, "tdx") == 0)
		return tee_tdx_open(out, &cfg->tdx, e);
	if (strcmp(b, "simtee") == 0)
		return simtee_tee_open(out, cfg->simtee_dir, cfg->simtee_state, e);
	return err_set(e, "unknown TEE backend '%s' (tdx, simtee, auto)", b);
}
