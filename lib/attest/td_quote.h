/*
 * td_quote.h — the TD report fields the attestation code needs (MRTD,
 * RTMR0-3, MRCONFIGID, MROWNER, MROWNERCONFIG, REPORTDATA), taken from a
 * TDX quote parsed by lib/tdx/quote.h. A small value type so the derived
 * values (mr_system, mr_aggregated) can be computed and tested without a
 * whole quote.
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

/* Where the simulator patches report_data (v4 quotes, as the reference). */
#define TD_QUOTE_REPORT_DATA_OFFSET 568

/* Parse the quote (structure only, no signature check) and copy the fields;
 * fails for non-TDX quotes. */
int td_quote_read(const uint8_t *quote, size_t len, struct td_fields *out, struct err *e);

#endif
