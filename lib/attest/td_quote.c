/*
 * td_quote.c — see td_quote.h.
 */
#include "attest/td_quote.h"

#include <string.h>

int td_quote_read(const uint8_t *q, size_t len, struct td_fields *out, struct err *e)
{
	uint16_t version;
	uint32_t tee;

	if (len < 632)
		return err_set(e, "TDX quote too short (%zu bytes)", len);
	version = (uint16_t)(q[0] | q[1] << 8);
	tee = (uint32_t)q[4] | (uint32_t)q[5] << 8 | (uint32_t)q[6] << 16 | (uint32_t)q[7] << 24;
	if (version != 4 || tee != 0x81)
		return err_set(e, "unsupported quote (version %u, TEE type 0x%x): want a v4 TDX quote",
			       version, tee);
	memcpy(out->mr_td, q + 184, 48);
	memcpy(out->mr_config_id, q + 232, 48);
	memcpy(out->mr_owner, q + 280, 48);
	memcpy(out->mr_owner_config, q + 328, 48);
	for (int i = 0; i < 4; i++)
		memcpy(out->rtmr[i], q + 376 + 48 * i, 48);
	memcpy(out->report_data, q + TD_QUOTE_REPORT_DATA_OFFSET, 64);
	return 0;
}
