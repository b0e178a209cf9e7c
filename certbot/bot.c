/*
 * bot.c — account set-up, the renewal decision and the hook (see bot.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "acme/cert.h"
#include "bot.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "core/mem.h"
#include "dns/cloudflare.h"

static int load_or_create_account(struct bot *b, struct err *e)
{
	_cleanup_free_ char *json = NULL, *dump = NULL;
	struct acme_opts o = {
	    .ca_file = b->ca_file, .cancel = b->stop, .deadline_ms = acme_now_ms() + b->cfg.renew_timeout_ms};
	int have = workdir_read_credentials(&b->wd, &json, e);

	if (have < 0)
		return -1;
	if (have && acme_credentials_match(json, b->cfg.acme_url)) {
		int rc = acme_account_load(json, &b->account, e);

		secure_zero(json, strlen(json));
		if (rc < 0)
			return err_wrap(e, "%s", b->wd.credentials);
		log_info("using ACME account %s", b->account.account_url);
		return 0;
	}
	if (have) {
		secure_zero(json, strlen(json));
		log_warn(
		    "%s is for another ACME server than acme_url %s: creating a new account (the old file is "
		    "kept in %s)",
		    b->wd.credentials, b->cfg.acme_url, b->wd.backup_dir);
		if (workdir_backup_credentials(&b->wd, e) < 0)
			return -1;
	}
	log_info("creating an ACME account at %s", b->cfg.acme_url);
	if (acme_account_create(b->cfg.acme_url, &o, &b->account, e) < 0)
		return err_wrap(e, "creating an ACME account at %s", b->cfg.acme_url);
	dump = acme_account_dump(&b->account, e);
	if (!dump)
		return -1;
	/* Saved before CAA: a failure there must not lose the account. */
	if (workdir_write_credentials(&b->wd, dump, e) < 0) {
		secure_zero(dump, strlen(dump));
		return -1;
	}
	secure_zero(dump, strlen(dump));
	b->account_created = true;
	log_info("created ACME account %s (saved in %s)", b->account.account_url, b->wd.credentials);
	if (b->cfg.auto_set_caa && bot_set_caa(b, e) < 0)
		return err_wrap(e,
				"account %s created, but auto_set_caa failed (retry with `certbot set-caa`)",
				b->account.account_url);
	return 0;
}

int bot_open(struct bot *b, const char *config_path, const volatile sig_atomic_t *stop, struct err *e)
{
	memset(b, 0, sizeof(*b));
	b->stop = stop;
	b->dns_server = getenv("DSTACK_CERTBOT_DNS_SERVER");
	b->ca_file = getenv("DSTACK_CERTBOT_CA_FILE");
	if (b->ca_file && !*b->ca_file)
		b->ca_file = NULL;
	if (certbot_cfg_load(config_path, &b->cfg, e) < 0)
		return err_wrap(e, "%s", config_path);
	if (workdir_init(&b->wd, b->cfg.workdir, e) < 0)
		return -1;
	b->dns = dns_cloudflare_new(
	    &(struct cloudflare_opts){
		.api_token = b->cfg.cf_api_token,
		.api_url = b->cfg.cf_api_url,
		.ca_file = b->ca_file,
	    },
	    e);
	if (!b->dns)
		return -1;
	for (size_t i = 0; i < b->cfg.n_names; i++)
		if (dns_check(b->dns, b->cfg.names[i] + 2, e) < 0)
			return -1;
	return load_or_create_account(b, e);
}

void bot_close(struct bot *b)
{
	acme_account_clear(&b->account);
	dns_provider_free(b->dns);
	workdir_free(&b->wd);
	certbot_cfg_free(&b->cfg);
	memset(b, 0, sizeof(*b));
}

/* Why live/ needs a new certificate, or NULL. reason is filled. */
static const char *renew_reason(struct bot *b, bool force, char *reason, size_t size)
{
	_cleanup_free_ char *pem = NULL;
	struct acme_cert_info ci;
	struct err e = ERR_INIT;
	size_t len = 0;
	time_t now = time(NULL), threshold;
	char when[32];

	if (force)
		return snprintf(reason, size, "renewal forced"), reason;
	if (!workdir_has_live(&b->wd))
		return snprintf(reason, size, "no certificate in %s", b->wd.live_dir), reason;
	if (workdir_read_live_cert(&b->wd, &pem, &len, &e) < 0 || acme_cert_info_read(pem, len, &ci, &e) < 0)
		return snprintf(reason, size, "%s is unreadable (%s)", b->wd.cert, err_str(&e)), reason;
	threshold = now + (time_t)(b->cfg.renew_days_before * 86400);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&ci.not_after));
	if (!acme_cert_info_covers(&ci, (const char *const *)b->cfg.names, b->cfg.n_names))
		snprintf(reason, size, "%s does not name %s", b->wd.cert, b->cfg.names_label);
	else if (ci.not_after <= threshold)
		snprintf(reason, size, "%s expires %s, within renew_days_before (%llu days)", b->wd.cert,
			 when, (unsigned long long)b->cfg.renew_days_before);
	else
		reason = NULL;
	if (!reason)
		log_info("certificate %s is up to date (expires %s)", b->wd.cert, when);
	acme_cert_info_clear(&ci);
	return reason;
}

static void run_hook(const char *hook)
{
	pid_t pid;
	int status;

	log_info("running renewed_hook");
	pid = fork();
	if (pid < 0) {
		log_error("renewed_hook: fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", hook, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			log_error("renewed_hook: waitpid: %s", strerror(errno));
			return;
		}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		log_info("renewed_hook succeeded");
	else if (WIFEXITED(status))
		log_error("renewed_hook failed with exit status %d", WEXITSTATUS(status));
	else
		log_error("renewed_hook killed by signal %d", WTERMSIG(status));
}

int bot_renew(struct bot *b, bool force, bool *renewed, struct err *e)
{
	char reason_buf[1024];
	const char *reason = renew_reason(b, force, reason_buf, sizeof(reason_buf));
	struct acme_opts o = {
	    .ca_file = b->ca_file, .cancel = b->stop, .deadline_ms = acme_now_ms() + b->cfg.renew_timeout_ms};
	struct acme_issue_req req = {
	    .names = (const char *const *)b->cfg.names,
	    .n_names = b->cfg.n_names,
	    .dns = b->dns,
	    .txt_ttl = b->cfg.dns_txt_ttl,
	    .max_dns_wait_ms = b->cfg.max_dns_wait_ms,
	    .dns_server = b->dns_server,
	};
	struct acme_cert cert;
	_cleanup_free_ char *backup = NULL;
	int rc;

	*renewed = false;
	if (!reason)
		return 0;
	log_info("requesting a certificate for %s: %s", b->cfg.names_label, reason);
	if (acme_obtain(&b->account, &o, &req, &cert, e) < 0) {
		if (strcmp(err_str(e), "timed out") == 0 || strstr(err_str(e), ": timed out"))
			err_wrap(e, "renew_timeout (%llu s)",
				 (unsigned long long)(b->cfg.renew_timeout_ms / 1000));
		return err_wrap(e, "ACME order for %s failed", b->cfg.names_label);
	}
	rc = workdir_store(&b->wd, cert.chain_pem, cert.key_pem, &backup, e);
	acme_cert_clear(&cert);
	if (rc < 0)
		return -1;
	if (backup)
		log_info("previous certificate moved to %s", backup);
	log_info("new certificate for %s installed in %s", b->cfg.names_label, b->wd.live_dir);
	*renewed = true;
	if (b->cfg.renewed_hook && *b->cfg.renewed_hook)
		run_hook(b->cfg.renewed_hook);
	return 0;
}

int bot_set_caa(struct bot *b, struct err *e)
{
	return acme_set_caa(b->dns, b->account.account_url, (const char *const *)b->cfg.names, b->cfg.n_names,
			    e);
}
