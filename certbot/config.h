/*
 * config.h — certbot.toml (gateway.md §8.4): the keys, their defaults, the
 * commented template `certbot cfg` prints, and the order names derived from
 * `domains`.
 *
 * Durations (renew_interval, renew_timeout, max_dns_wait) are seconds as in
 * the reference; "90s"/"1h" strings are accepted too. Each entry of
 * `domains` names a base domain, with or without a leading "*.": the
 * certificate is ordered for "*.<base>" (the gateway's wildcard). The old
 * single `domain` key is still read, and `cf_zone_id` is ignored (zones are
 * found by name).
 */
#ifndef DSTACK_CERTBOT_CONFIG_H
#define DSTACK_CERTBOT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config/config.h"
#include "core/err.h"

struct certbot_cfg {
	char *workdir;
	char *acme_url;
	char *cf_api_token; /* secret: wiped at free */
	char *cf_api_url;
	uint32_t dns_txt_ttl;
	bool auto_set_caa;
	struct cfg_strings domains;
	char *domain; /* the old single-domain key */
	uint64_t renew_interval_ms;
	uint64_t renew_days_before;
	uint64_t renew_timeout_ms;
	uint64_t max_dns_wait_ms;
	char *renewed_hook; /* NULL or "": none */

	/* Derived: "*.<base>" for each distinct base domain. */
	char **names;
	size_t n_names;
	char *names_label; /* "*.a.example, *.b.example" for messages */
};

/* Load certbot.toml from path on top of the defaults. Never logs the token. */
int certbot_cfg_load(const char *path, struct certbot_cfg *c, struct err *e);
void certbot_cfg_free(struct certbot_cfg *c);
/* The commented template of the defaults (`certbot cfg`). */
const char *certbot_cfg_template(void);

#endif
