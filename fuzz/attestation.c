/*
 * fuzz/attestation.c — libFuzzer harness for the VersionedAttestation
 * decoder (V0 SCALE and V1 MessagePack). Whatever decodes must re-encode,
 * decode again to the same content, and survive the derived-value code.
 * The same bytes also go through the other event-log parsers of lib/attest
 * (CCEL, event-log JSON / certificate extension, runtime_events.log).
 */
#include <stdlib.h>
#include <string.h>

#include "attest/appinfo.h"
#include "attest/attestation.h"
#include "attest/ccel.h"
#include "attest/cert_eventlog.h"
#include "attest/runtime_events.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct attestation a, b;
	struct app_info ai;
	struct buf out = BUF_INIT;
	uint8_t rtmr3[48];

	{
		struct event_log log = EVENT_LOG_INIT;
		uint8_t rtmr[RTMR_COUNT][RTMR_LEN];

		if (ccel_parse(data, size, &log, NULL) == 0)
			(void)event_log_replay(&log, rtmr, NULL);
		event_log_free(&log);
		if (cert_event_log_decode(data, size, &log, NULL) == 0)
			(void)event_log_replay(&log, rtmr, NULL);
		event_log_free(&log);
		if (runtime_events_parse_log((const char *)data, size, &log, NULL) == 0)
			(void)runtime_events_check_boot_order(&log, NULL);
		event_log_free(&log);
	}
	if (attestation_decode(data, size, &a, NULL) < 0)
		return 0;
	if (attestation_encode(&a, &out, NULL) == 0) {
		if (attestation_decode(out.data, out.len, &b, NULL) < 0)
			abort(); /* our own encoding must decode */
		if (b.quote_len != a.quote_len || b.event_log.n != a.event_log.n ||
		    b.runtime_events.n != a.runtime_events.n || memcmp(b.report_data, a.report_data, 64) != 0)
			abort();
		attestation_free(&b);
	}
	(void)attestation_replay_rtmr3(&a, true, rtmr3, NULL);
	(void)attestation_check_event_log(&a, NULL);
	if (attestation_app_info(&a, false, NULL, NULL, 0, &ai, NULL) == 0)
		app_info_free(&ai);
	buf_free(&out);
	attestation_free(&a);
	return 0;
}
