/*
 * td_quote.c — see td_quote.h.
 */
#include "attest/td_quote.h"

#include <string.h>

#include "tdx/quote.h"

int td_quote_read(const uint8_t *data, size_t len, struct td_fields *out, struct err *e)
{
	struct quote q;

	if (quote_parse(&q, data, len, e) < 0)
		return err_wrap(e, "Failed to parse quote");
	if (!quote_is_tdx(&q)) {
		quote_free(&q);
		return err_set(e, "not a TDX quote");
	}
	memcpy(out->mr_td, q.td.mr_td, 48);
	memcpy(out->mr_config_id, q.td.mr_config_id, 48);
	memcpy(out->mr_owner, q.td.mr_owner, 48);
	memcpy(out->mr_owner_config, q.td.mr_owner_config, 48);
	memcpy(out->rtmr, q.td.rtmr, sizeof(out->rtmr));
	memcpy(out->report_data, q.td.report_data, 64);
	quote_free(&q);
	return 0;
}
