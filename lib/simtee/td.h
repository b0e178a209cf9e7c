/*
 * td.h — a simulated trust domain: the measurement registers a TDX module
 * keeps for one VM, persisted in a state file, and quotes over them signed
 * with the development PKI (pki.h) exactly as the Intel QE would sign them.
 *
 * State file (JSON, 0600): mr_td, mr_config_id, mr_owner, mr_owner_config,
 * rtmr[4], td_attributes, xfam (hex) and ccel (hex of the boot event log).
 * Every read-modify-write holds an exclusive flock on "<state>.lock" (the
 * state itself is replaced atomically, so it cannot carry the lock), so
 * several processes of one VM can extend and quote concurrently.
 *
 * simtee_td_create writes a synthetic boot event log (TCG crypto-agile, as
 * ACPI CCEL) and sets RTMR0–2 to its replay, so a verifier that replays the
 * log finds the quote consistent. Like hardware, only RTMR2 and RTMR3 can be
 * extended afterwards.
 */
#ifndef DSTACK_SIMTEE_TD_H
#define DSTACK_SIMTEE_TD_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "tdx/tee.h"

struct simtee_td_init {
	const uint8_t *mr_td;        /* 48 B; NULL: 0x11 repeated (as the reference simulator) */
	const uint8_t *mr_config_id; /* 48 B; NULL: zero */
	const uint8_t *mr_owner;     /* 48 B; NULL: zero */
	const uint8_t *mr_owner_config;
	const char *kernel_cmdline; /* measured into RTMR2; NULL: a fixed dev cmdline */
};

struct simtee_td_state {
	uint8_t mr_td[48];
	uint8_t mr_config_id[48];
	uint8_t mr_owner[48];
	uint8_t mr_owner_config[48];
	uint8_t rtmr[4][48];
	uint8_t td_attributes[8];
	uint8_t xfam[8];
};

/* Create (or overwrite) a TD state file with a fresh boot log. */
int simtee_td_create(const char *state_path, const struct simtee_td_init *init, struct err *e);
int simtee_td_read(const char *state_path, struct simtee_td_state *out, struct err *e);
int simtee_td_extend(const char *state_path, unsigned index, const uint8_t digest[48], struct err *e);
/* The boot event log (CCEL bytes). */
int simtee_td_event_log(const char *state_path, uint8_t **ccel, size_t *len, struct err *e);
/* A v4 quote over the current state, signed with the PKI in pki_dir. */
int simtee_td_quote(const char *pki_dir, const char *state_path, const uint8_t report_data[64],
		    uint8_t **quote, size_t *len, struct err *e);

/* The simulated backend behind tee.h. */
int simtee_tee_open(struct tee **out, const char *pki_dir, const char *state_path, struct err *e);

/* Build a v4 quote from a TD state (exposed for tests and benchmarks). */
struct simtee_pki;
int simtee_build_quote(const struct simtee_pki *pki, const struct simtee_td_state *st,
		       const uint8_t report_data[64], struct buf *out, struct err *e);

#endif
