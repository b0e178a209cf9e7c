/*
 * bot.h — what the certbot subcommands do, on top of lib/acme:
 *
 *   bot_open     config → DNS provider (checked: the token works and a zone
 *                holds every domain) → the ACME account from
 *                credentials.json, created when missing or made for another
 *                acme_url (then CAA set if auto_set_caa)
 *   bot_renew    renew when forced, when live/ has no certificate, when it
 *                does not name the configured domains or when it expires
 *                within renew_days_before; the whole attempt is bounded by
 *                renew_timeout. Runs renewed_hook after a renewal.
 *   bot_set_caa  pin CAA for the domains to the account
 *
 * Two environment variables exist for tests only (documented in
 * docs/certbot.md): DSTACK_CERTBOT_DNS_SERVER points the TXT self-check at
 * one DNS server ("127.0.0.1:8053") instead of the system resolver, and
 * DSTACK_CERTBOT_CA_FILE is the CA bundle trusted for the ACME server and
 * the Cloudflare API instead of the system's.
 */
#ifndef DSTACK_CERTBOT_BOT_H
#define DSTACK_CERTBOT_BOT_H

#include <signal.h>
#include <stdbool.h>

#include "acme/acme.h"
#include "config.h"
#include "workdir.h"
#include "dns/provider.h"

struct bot {
	struct certbot_cfg cfg;
	struct workdir wd;
	struct dns_provider *dns;
	struct acme_account account;
	bool account_created;
	const char *dns_server; /* DSTACK_CERTBOT_DNS_SERVER */
	const char *ca_file;    /* DSTACK_CERTBOT_CA_FILE */
	const volatile sig_atomic_t *stop;
};

int bot_open(struct bot *b, const char *config_path, const volatile sig_atomic_t *stop, struct err *e);
void bot_close(struct bot *b);

/* *renewed tells whether live/ changed (the hook ran then). */
int bot_renew(struct bot *b, bool force, bool *renewed, struct err *e);
int bot_set_caa(struct bot *b, struct err *e);

#endif
