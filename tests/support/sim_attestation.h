/*
 * sim_attestation.h — test helper: a complete simulated-TDX
 * VersionedAttestation (dev PKI from lib/simtee, a TD whose RTMR3 holds
 * the dstack boot events, its CCEL boot log, and a quote over a chosen
 * report_data), the kind a guest produces, for the RA-TLS, verifier and
 * KMS tests and the KMS benchmark.
 */
#ifndef DSTACK_RATLS_TEST_SIM_ATTESTATION_H
#define DSTACK_RATLS_TEST_SIM_ATTESTATION_H

#include <stdio.h>
#include <string.h>

#include "attest/attestation.h"
#include "attest/ccel.h"
#include "core/cleanup.h"
#include "simtee/pki.h"
#include "simtee/td.h"

#define SIM_APP_ID "\x5b\xb4\xff\x9a\x38\x37\x35\x7f\x19\xdc\x17\x64\x07\xa5\x70\x9c\x62\xeb\x6c\x56"
#define SIM_KEY_PROVIDER "{\"name\":\"kms\",\"id\":\"3059301306072a8648ce3d020106082a8648ce3d03010703\"}"

/* Initialise a dev PKI in dir (deterministic seed, valid from now - 1 day). */
static inline int sim_pki(const char *dir, struct err *e)
{
	struct simtee_pki_opts o = {.seed = (const uint8_t *)"ratls-test", .seed_len = 10};
	return simtee_pki_init(dir, &o, e);
}

static inline int sim_event(const char *state, struct attestation *a, const char *name, const void *payload,
			    size_t len, uint32_t version, struct err *e)
{
	if (event_log_append_runtime(&a->runtime_events, name, payload, len, version, e) < 0)
		return -1;
	const struct tdx_event *ev = &a->runtime_events.ev[a->runtime_events.n - 1];
	if (event_log_append(&a->event_log, ev->imr, ev->event_type, ev->digest, ev->digest_len, ev->event,
			     ev->payload, ev->payload_len, ev->version, e) < 0)
		return -1;
	return simtee_td_extend(state, 3, ev->digest, e);
}

/* An attestation with report_data whose runtime events have the given
 * version (1 → V0 SCALE encoding, 2 → V1 MessagePack); the TD state lives
 * in `state`. */
static inline int sim_attestation_v(const char *pki_dir, const char *state, const uint8_t report_data[64],
				    const char *vm_config, uint32_t v, struct buf *out, struct err *e)
{
	struct attestation a;
	uint8_t compose[32], instance[20];
	_cleanup_free_ uint8_t *ccel = NULL;
	size_t ccel_len = 0;
	int rc = -1;

	memset(compose, 0xc0, sizeof(compose));
	memset(instance, 0x1d, sizeof(instance));
	attestation_init(&a);
	if (simtee_td_create(state, NULL, e) < 0 || simtee_td_event_log(state, &ccel, &ccel_len, e) < 0 ||
	    ccel_parse(ccel, ccel_len, &a.event_log, e) < 0)
		goto out;
	if (sim_event(state, &a, "system-preparing", "", 0, v, e) < 0 ||
	    sim_event(state, &a, "app-id", SIM_APP_ID, 20, v, e) < 0 ||
	    sim_event(state, &a, "compose-hash", compose, 32, v, e) < 0 ||
	    sim_event(state, &a, "instance-id", instance, 20, v, e) < 0 ||
	    sim_event(state, &a, "boot-mr-done", "", 0, v, e) < 0 ||
	    sim_event(state, &a, "key-provider", SIM_KEY_PROVIDER, strlen(SIM_KEY_PROVIDER), v, e) < 0 ||
	    sim_event(state, &a, "system-ready", "", 0, v, e) < 0)
		goto out;
	if (simtee_td_quote(pki_dir, state, report_data, &a.quote, &a.quote_len, e) < 0)
		goto out;
	memcpy(a.report_data, report_data, 64);
	a.config = strdup(vm_config ? vm_config : "");
	rc = attestation_encode(&a, out, e);
out:
	attestation_free(&a);
	return rc;
}

static inline int sim_attestation(const char *pki_dir, const char *state, const uint8_t report_data[64],
				  const char *vm_config, struct buf *out, struct err *e)
{
	return sim_attestation_v(pki_dir, state, report_data, vm_config, 1, out, e);
}

#endif
