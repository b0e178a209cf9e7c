/*
 * agent.h — the guest agent's state and the operations every RPC surface
 * (DstackGuest, Tappd, Worker, GuestApi) is built from: the loaded app keys,
 * compose file and system config, the TEE backend, and quote / attestation /
 * event-log / app-info production. The RPC files only translate messages.
 *
 * Quotes and event-log reads hold the runtime-event flock, so a quote's
 * RTMR3 always matches the log returned with it even while EmitEvent or
 * dstack-util emit concurrently.
 */
#ifndef DSTACK_GUEST_AGENT_H
#define DSTACK_GUEST_AGENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "appkeys_file.h"
#include "attest/appinfo.h"
#include "attest/attestation.h"
#include "config/config.h"
#include "core/err.h"
#include "http/server.h"
#include "kms_cert.h"
#include "prpc/server.h"
#include "tdx/tee.h"

struct agent_cfg {
	char *keys_file;
	char *compose_file;
	char *sys_config_file;
	char *runtime_events_file;
	char *runtime_events_lock;
	struct cfg_strings dstack_sockets; /* DstackGuest, bare /<Method> */
	struct cfg_strings tappd_sockets;  /* Tappd, /prpc/<Method> */
	char *external_listen;             /* Worker + dashboard; "" disables */
	char *guest_api_listen;            /* GuestApi (/api/<M>); "" disables */
	char *guest_api_fallback;          /* where GuestApi goes if that fails; "" none */
	char *tee_backend;                 /* tdx | simtee | auto */
	char *simtee_dir;
	char *simtee_state;
	char *gpu_attestation_file;
	char *dmi_dir;         /* /sys/class/dmi/id */
	char *data_disks_root; /* SysInfo disk usage */
	uint32_t event_log_version;
};

struct agent {
	struct agent_cfg cfg;
	bool simulator;
	struct app_keys keys;
	uint8_t *compose; /* raw app-compose.json */
	size_t compose_len;
	json_t *compose_json;
	json_t *sys_config;
	char *vm_config; /* sys-config vm_config string, "" if none */
	struct tee *tee;
	X509 *ca_cert;    /* app CA (all providers) */
	EVP_PKEY *ca_key; /* None/Local/Tpm: local signing key; KMS: NULL */
	pthread_mutex_t lock;
	/* RPC tables (the servers keep pointers to them). */
	struct prpc_service svc[3];
	const struct prpc_service *svc_list[3];
	struct http_server *servers[4]; /* for Shutdown */
	size_t n_servers;
};

void agent_cfg_defaults(struct agent_cfg *c);
/* Bind a loaded config (agent.json / .toml) over the defaults. */
int agent_cfg_bind(struct config *conf, struct agent_cfg *c, struct err *e);
void agent_cfg_free(struct agent_cfg *c);

/* Load keys, compose, sys-config, open the TEE. */
int agent_open(struct agent *a, struct err *e);
void agent_close(struct agent *a);

/* Compose-file flags (public_tcbinfo defaults to true, the others false). */
bool agent_compose_flag(const struct agent *a, const char *name, bool dflt);
const char *agent_app_name(const struct agent *a);

/* A full attestation over report_data: quote, boot + runtime event log,
 * runtime events, report_data, vm_config. */
int agent_attestation(struct agent *a, const uint8_t report_data[64], struct attestation *out, struct err *e);
/* GetQuote's event_log: the stripped log as compact JSON text (malloc'd). */
char *agent_quote_event_log(const struct attestation *att, struct err *e);
/* Extend RTMR3 and log (EmitEvent). */
int agent_emit_event(struct agent *a, const char *name, const uint8_t *payload, size_t len, struct err *e);

/* Everything Info reports. */
struct agent_info {
	struct app_info ai;
	struct td_fields td;
	char *tcb_info;          /* pretty JSON text */
	char *key_provider_info; /* JSON text */
};
int agent_info(struct agent *a, struct agent_info *out, struct err *e);
void agent_info_free(struct agent_info *i);
/* /sys/class/dmi/id/<name> trimmed, "" when absent (malloc'd). */
char *agent_dmi(const struct agent *a, const char *name);

/* GetTlsKey / DeriveKey: a certificate for `key` (struct tls_cert_req in
 * kms_cert.h) under the app CA: signed locally (None/Local/Tpm) or by the
 * KMS's SignCert (KMS provider). */
/* Issue the chain (PEMs, malloc'd array of malloc'd strings). */
int agent_issue_cert(struct agent *a, EVP_PKEY *key, const struct tls_cert_req *r, char ***chain, size_t *n,
		     struct err *e);

/* Simulator mode: lay out defaults under dir and make sure the simulated
 * TD exists with its boot events (first use). */
int agent_simulator_prepare(struct agent *a, const char *dir, struct err *e);

#endif
