/*
 * kms.h — the state one dstack-kms process shares between its listeners:
 * parsed configuration, the key set (once bootstrapped), counters, and the
 * mutex that serialises Bootstrap/Onboard. Keys are written once before the
 * RPC listener starts and are read-only afterwards, so RPC handlers on pool
 * threads read them without locking.
 */
#ifndef DSTACK_KMS_KMS_H
#define DSTACK_KMS_KMS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <event2/event.h>

#include "cfg.h"
#include "http/server.h"
#include "keys.h"

struct ratls_verifier;

struct kms {
	struct kms_config cfg;
	struct event_base *base;
	struct ratls_verifier *verifier; /* NULL until lib/ratls is available */
	pthread_mutex_t lock;            /* Bootstrap / Onboard */
	pthread_mutex_t self_lock;       /* self boot-info memo */
	bool have_keys;
	struct kms_keys keys;
	struct http_server *onboard_srv;
	/* Metrics: key RPCs (GetAppKey, GetKmsKey, SignCert). */
	atomic_ulong attest_requests, attest_failures;
	atomic_bool self_auth_warned; /* dev mode without guest agent: warn once */
	/* Memoised own BootInfo webhook body (self-authorization). */
	char *self_boot_body;
};

/* Services (each file mounts its own). */
int kms_onboard_serve(struct kms *k, struct err *e); /* runs until Finish */
int kms_main_mount(struct kms *k, struct http_server *srv, struct err *e);
int kms_admin_mount(struct kms *k, struct http_server *srv, struct err *e);

/* Domain rule of §6: ASCII, 1–253 chars, labels 1–63 of [A-Za-z0-9-] not
 * starting or ending with '-'. */
bool kms_domain_valid(const char *d);

/* Attestation glue (attest.c). */
int kms_attest_init(struct kms *k, struct err *e); /* verifier from [core.attestation] */
void kms_attest_free(struct kms *k);
/* Own attestation from the guest agent; report_data 64 bytes. */
int kms_agent_attest(const uint8_t report_data[64], uint8_t **att, size_t *len, struct err *e);
/* Guest agent Info (AppInfo JSON). */
int kms_agent_info(json_t **out, struct err *e);
/* KMS self-authorization (no-op when disabled). Errors read "KMS self
 * authorization failed: ..." */
int kms_self_authorize(struct kms *k, struct err *e);
/* Attestation for rpc.crt: binding of rpc_key; NULL/0 if not configured. */
int kms_rpc_cert_attestation(struct kms *k, EVP_PKEY *rpc_key, uint8_t **att, size_t *len, struct err *e);

#endif
