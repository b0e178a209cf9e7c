/*
 * config.c — loading certbot.toml (see config.h).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "core/mem.h"

/* The defaults, and the template `certbot cfg` prints: the reference's
 * keys in its order, one comment line each. */
static const char template_toml[] =
    "# Path to the working directory\n"
    "workdir = \".\"\n"
    "# ACME server URL\n"
    "acme_url = \"https://acme-staging-v02.api.letsencrypt.org/directory\"\n"
    "# Cloudflare API token\n"
    "cf_api_token = \"\"\n"
    "# Cloudflare API URL\n"
    "cf_api_url = \"https://api.cloudflare.com/client/v4\"\n"
    "# TTL of the DNS TXT records of ACME challenges, in seconds (Cloudflare's minimum is 60)\n"
    "dns_txt_ttl = 60\n"
    "# Auto set CAA record\n"
    "auto_set_caa = true\n"
    "# Domains to issue certificates for\n"
    "domains = [\"example.com\"]\n"
    "# Renew interval in seconds\n"
    "renew_interval = 3600\n"
    "# Number of days before expiration to trigger renewal\n"
    "renew_days_before = 10\n"
    "# Renew timeout in seconds\n"
    "renew_timeout = 120\n"
    "# Maximum time to wait for the TXT records to be visible in DNS, in seconds\n"
    "max_dns_wait = 300\n"
    "# Command to run after renewal\n"
    "# renewed_hook = \"systemctl reload dstack-gateway\"\n";

/* Loaded under the file: everything but domains, which the file must give. */
static const char defaults_toml[] = "workdir = \".\"\n"
				    "acme_url = \"https://acme-staging-v02.api.letsencrypt.org/directory\"\n"
				    "cf_api_token = \"\"\n"
				    "cf_api_url = \"https://api.cloudflare.com/client/v4\"\n"
				    "dns_txt_ttl = 60\n"
				    "auto_set_caa = true\n"
				    "renew_interval = 3600\n"
				    "renew_days_before = 10\n"
				    "renew_timeout = 120\n"
				    "max_dns_wait = 300\n";

#define F(k, kind, m, ...) CFG_FIELD(struct certbot_cfg, k, kind, m, __VA_ARGS__)
static const struct cfg_field schema[] = {
    F("workdir", CFG_STRING, workdir, .flags = CFG_REQUIRED),
    F("acme_url", CFG_STRING, acme_url, .flags = CFG_REQUIRED),
    F("cf_api_token", CFG_STRING, cf_api_token, .flags = CFG_SECRET),
    F("cf_api_url", CFG_STRING, cf_api_url),
    F("dns_txt_ttl", CFG_UINT, dns_txt_ttl, .min = 1, .max = 86400),
    F("auto_set_caa", CFG_BOOL, auto_set_caa),
    F("domains", CFG_STRINGS, domains),
    F("domain", CFG_STRING, domain),
    F("renew_interval", CFG_DURATION, renew_interval_ms),
    F("renew_days_before", CFG_UINT, renew_days_before, .min = 0, .max = 36500),
    F("renew_timeout", CFG_DURATION, renew_timeout_ms),
    F("max_dns_wait", CFG_DURATION, max_dns_wait_ms),
    F("renewed_hook", CFG_STRING, renewed_hook),
    {.key = "cf_zone_id", .kind = CFG_IGNORE},
};
#undef F

const char *certbot_cfg_template(void)
{
	return template_toml;
}

/* "*.Example.COM." -> "example.com"; NULL if not a DNS name. */
static char *base_domain(const char *entry)
{
	const char *s = entry;
	size_t len;
	char *out;

	while (isspace((unsigned char)*s))
		s++;
	if (strncmp(s, "*.", 2) == 0)
		s += 2;
	len = strlen(s);
	while (len && (s[len - 1] == '.' || isspace((unsigned char)s[len - 1])))
		len--;
	if (len == 0 || len > 251 || s[0] == '.' || s[0] == '-')
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (!isalnum(ch) && ch != '-' && ch != '.' && ch != '_')
			return NULL;
		if (ch == '.' && (s[i + 1] == '.' || s[i + 1] == '-'))
			return NULL;
	}
	out = strndup(s, len);
	if (!out)
		abort();
	for (char *p = out; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return out;
}

static int add_name(struct certbot_cfg *c, const char *entry, struct err *e)
{
	_cleanup_free_ char *base = base_domain(entry);
	char *name, **grown;

	if (!base)
		return err_set(e, "domains: \"%s\" is not a domain name", entry);
	if (asprintf(&name, "*.%s", base) < 0)
		abort();
	for (size_t i = 0; i < c->n_names; i++) {
		if (strcmp(c->names[i], name) == 0) {
			free(name);
			return 0;
		}
	}
	grown = realloc(c->names, (c->n_names + 1) * sizeof(*grown));
	if (!grown)
		abort();
	c->names = grown;
	c->names[c->n_names++] = name;
	return 0;
}

static int derive(struct certbot_cfg *c, struct err *e)
{
	_cleanup_buf_ struct buf label = BUF_INIT;

	for (size_t i = 0; i < c->domains.count; i++)
		if (add_name(c, c->domains.items[i], e) < 0)
			return -1;
	if (c->domain && *c->domain) {
		if (c->domains.count)
			log_warn("certbot.toml: both domains and the old domain key are set; using both");
		if (add_name(c, c->domain, e) < 0)
			return err_wrap(e, "domain");
	}
	if (c->n_names == 0)
		return err_set(e, "domains: no domain to issue a certificate for");
	for (size_t i = 0; i < c->n_names; i++)
		buf_printf(&label, "%s%s", i ? ", " : "", c->names[i]);
	c->names_label = (char *)buf_steal(&label, NULL);
	if (c->renew_timeout_ms == 0 || c->renew_timeout_ms == CFG_DURATION_NEVER)
		return err_set(e, "renew_timeout must be a positive number of seconds");
	if (c->renew_interval_ms == 0 || c->renew_interval_ms == CFG_DURATION_NEVER)
		return err_set(e, "renew_interval must be a positive number of seconds");
	if (c->max_dns_wait_ms == CFG_DURATION_NEVER)
		return err_set(e, "max_dns_wait must be a number of seconds");
	if (strncmp(c->acme_url, "https://", 8) != 0 && strncmp(c->acme_url, "http://", 7) != 0)
		return err_set(e, "acme_url must be an http(s) URL");
	return 0;
}

int certbot_cfg_load(const char *path, struct certbot_cfg *c, struct err *e)
{
	struct config cfg = CONFIG_INIT;
	json_t *token;
	struct stat st;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	if (config_add_toml(&cfg, defaults_toml, strlen(defaults_toml), "defaults", e) < 0 ||
	    config_add_file(&cfg, path, true, e) < 0)
		goto out;
	if (config_bind(&cfg, schema, ARRAY_SIZE(schema), c, e) < 0 || derive(c, e) < 0)
		goto out;
	token = config_get(&cfg, "cf_api_token");
	if (json_string_length(token) && stat(path, &st) == 0 && (st.st_mode & 077))
		log_warn(
		    "%s holds the Cloudflare API token but is readable by others (mode %03o); chmod 600 it",
		    path, st.st_mode & 0777);
	rc = 0;
out:
	/* The tree holds its own copy of the token. */
	token = config_get(&cfg, "cf_api_token");
	if (json_is_string(token))
		secure_zero((void *)json_string_value(token), json_string_length(token));
	config_free(&cfg);
	if (rc < 0)
		certbot_cfg_free(c);
	return rc;
}

void certbot_cfg_free(struct certbot_cfg *c)
{
	config_unbind(schema, ARRAY_SIZE(schema), c);
	for (size_t i = 0; i < c->n_names; i++)
		free(c->names[i]);
	free(c->names);
	free(c->names_label);
	memset(c, 0, sizeof(*c));
}
