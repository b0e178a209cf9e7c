/*
 * td_quote.h — the few TD report fields the attestation code needs (MRTD,
 * RTMR0-3, MRCONFIGID, MROWNER, MROWNERCONFIG, REPORTDATA), read at the
 * fixed offsets of a v4 TD 1.0 quote (guest.md §4.1).
 *
 * Stop-gap until lib/tdx/quote.h (the full DCAP quote parser) is on main;
 * then td_quote_read() becomes a thin wrapper over quote_parse().
 */
#ifndef DSTACK_ATTEST_TD_QUOTE_H
#define DSTACK_ATTEST_TD_QUOTE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct td_fields {
	uint8_t mr_td[48];
	uint8_t mr_config_id[48];
	uint8_t mr_owner[48];
	uint8_t mr_owner_config[48];
	uint8_t rtmr[4][48];
	uint8_t report_data[64];
};

#define TD_QUOTE_REPORT_DATA_OFFSET 568

int td_quote_read(const uint8_t *quote, size_t len, struct td_fields *out, struct err *e);

#endif
