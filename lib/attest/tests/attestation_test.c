/*
 * attestation_test.c — the reference fixture end to end: V0 decode (33
 * events), event-log replay to the quote's RTMR0-3, mr_system and
 * mr_aggregated from the testdata README, byte-identical V0 re-encoding,
 * V1 round trip, AppInfo, and rejection of truncated or malformed input.
 */
#include <stdlib.h>
#include <string.h>

#include "attest/appinfo.h"
#include "attest/attestation.h"
#include "codec/msgpack.h"
#include "core/tap.h"
#include "test_util.h"

#define MR_SYSTEM "51ea38f8eee6dc72dbae9b74531ae6d6204295d265dabb4e6c34621a2a1a1197"
#define MR_AGGREGATED "85334a62c97d0f8bf82d0245d31b539d17a2d7c258e2a13efc928aaea0e107cb"

static bool same_log(const struct event_log *x, const struct event_log *y)
{
	if (x->n != y->n)
		return false;
	for (size_t i = 0; i < x->n; i++) {
		const struct tdx_event *a = &x->ev[i], *b = &y->ev[i];

		if (a->imr != b->imr || a->event_type != b->event_type || a->digest_len != b->digest_len ||
		    a->payload_len != b->payload_len || a->version != b->version ||
		    strcmp(a->event, b->event) || memcmp(a->digest, b->digest, a->digest_len) ||
		    memcmp(a->payload, b->payload, a->payload_len))
			return false;
	}
	return true;
}

static bool same_attestation(const struct attestation *a, const struct attestation *b)
{
	return a->quote_len == b->quote_len && memcmp(a->quote, b->quote, a->quote_len) == 0 &&
	       same_log(&a->event_log, &b->event_log) && same_log(&a->runtime_events, &b->runtime_events) &&
	       memcmp(a->report_data, b->report_data, 64) == 0 && strcmp(a->config, b->config) == 0 &&
	       a->stack == b->stack;
}

static void test_fixture(const uint8_t *data, size_t len)
{
	struct attestation a, b;
	struct err e = ERR_INIT;
	struct td_fields td;
	uint8_t rtmr[RTMR_COUNT][RTMR_LEN], boot[48];
	struct buf out = BUF_INIT;
	struct app_info ai, ai2;
	json_t *js;

	ok(attestation_decode(data, len, &a, &e) == 0, "guest-agent-attestation.bin decodes: %s", e.msg);
	ok(a.format == ATTESTATION_V0, "it is V0 (SCALE)");
	is_int(a.quote_len, 5010, "quote length");
	is_int(a.event_log.n, 33, "33 events in the TDX event log");
	is_int(a.runtime_events.n, 9, "9 runtime events");
	ok(strncmp(a.config, "{\"kms_urls\":", 12) == 0, "config is the sys-config JSON");

	ok(attestation_td_fields(&a, &td, &e) == 0, "quote TD fields");
	ok(event_log_replay(&a.event_log, rtmr, &e) == 0, "event log replays: %s", e.msg);
	for (int i = 0; i < 4; i++)
		ok(memcmp(rtmr[i], td.rtmr[i], 48) == 0, "replayed RTMR%d equals the quote's", i);
	ok(attestation_check_event_log(&a, &e) == 0, "attestation_check_event_log: %s", e.msg);

	ok(attestation_app_info(&a, false, NULL, NULL, 0, &ai, &e) == 0, "app info: %s", e.msg);
	is_hex(ai.mr_system.p, 32, MR_SYSTEM, "mr_system");
	is_hex(ai.mr_aggregated.p, 32, MR_AGGREGATED, "mr_aggregated");
	is_hex(ai.app_id.p, ai.app_id.len, "5bb4ff9a3837357f19dc176407a5709c62eb6c56", "app_id");
	is_int(ai.compose_hash.len, 32, "compose_hash is 32 bytes");
	is_int(ai.instance_id.len, 20, "instance_id is 20 bytes");
	is_hex(ai.device_id.p, 32, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	       "device_id without PPID = SHA-256(\"\")");
	ok(ai.key_provider_info.len > 0 && memcmp(ai.key_provider_info.p, "{\"name\":\"kms\"", 13) == 0,
	   "key_provider_info");
	is_int(ai.os_image_hash.len, 0, "os_image_hash: config has no top-level os_image_hash");

	/* AppInfo wire form and JSON. */
	app_info_encode(&ai, &out);
	ok(out.data[0] == 0x98 && out.data[1] == 0xc4 && out.data[2] == 20, "AppInfo = array of 8 bins");
	ok(app_info_decode(out.data, out.len, &ai2, &e) == 0 && ai2.mr_aggregated.len == 32 &&
	       memcmp(ai2.mr_aggregated.p, ai.mr_aggregated.p, 32) == 0 &&
	       ai2.key_provider_info.len == ai.key_provider_info.len,
	   "AppInfo round trip: %s", e.msg);
	app_info_free(&ai2);
	ok(app_info_decode(out.data, out.len - 1, &ai2, &e) < 0, "truncated AppInfo rejected: %s", e.msg);
	js = app_info_to_json(&ai);
	is_str(json_string_value(json_object_get(js, "mr_system")), MR_SYSTEM, "AppInfo JSON is hex");
	json_decref(js);
	buf_reset(&out);
	app_info_free(&ai);

	/* Boot-time mode (KMS SignCert): RTMR3' up to boot-mr-done, no key provider. */
	ok(attestation_replay_rtmr3(&a, true, boot, &e) == 0 && memcmp(boot, td.rtmr[3], 48) != 0,
	   "boot-time replay stops early");
	ok(attestation_app_info(&a, true, NULL, NULL, 0, &ai, &e) == 0 && ai.key_provider_info.len == 0,
	   "boot-time app info has no key-provider info");
	{
		uint8_t want[32];

		mr_system_compute(&td, NULL, 0, want);
		ok(memcmp(ai.mr_system.p, want, 32) == 0, "boot-time mr_system uses 32 zero bytes for kp");
		mr_aggregated_compute(&td, boot, want);
		ok(memcmp(ai.mr_aggregated.p, want, 32) == 0 && memcmp(want, ai.mr_system.p, 32) != 0,
		   "boot-time mr_aggregated uses the boot replay");
	}
	app_info_free(&ai);
	{
		uint8_t d[32];

		device_id_compute((const uint8_t *)"abc", 3, d);
		is_hex(d, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		       "device_id = SHA-256(PPID)");
	}

	/* V0 re-encodes byte for byte. */
	ok(attestation_encode_v0(&a, &out, &e) == 0 && out.len == len && memcmp(out.data, data, len) == 0,
	   "V0 re-encoding is byte-identical");
	buf_reset(&out);
	ok(attestation_encode(&a, &out, &e) == 0 && out.len == len && out.data[0] == 0,
	   "auto encoding picks V0");
	buf_reset(&out);

	/* V1 round trip. */
	ok(attestation_encode_v1(&a, &out, &e) == 0 && out.data[0] == 0x83, "V1 encoding is a 3-entry map");
	ok(attestation_decode(out.data, out.len, &b, &e) == 0, "V1 decodes: %s", e.msg);
	ok(b.format == ATTESTATION_V1 && same_attestation(&a, &b), "V1 round trip preserves everything");
	ok(attestation_check_event_log(&b, &e) == 0, "V1 copy still verifies against the quote");
	{
		struct buf again = BUF_INIT;

		ok(attestation_encode_v1(&b, &again, &e) == 0 && again.len == out.len &&
		       memcmp(again.data, out.data, out.len) == 0,
		   "V1 re-encoding is stable");
		buf_free(&again);
	}
	/* Trailing byte after a V1 map. */
	buf_putc(&out, 0xc0);
	attestation_free(&b);
	ok(attestation_decode(out.data, out.len, &b, &e) < 0, "V1 with trailing byte rejected: %s", e.msg);
	buf_reset(&out);

	/* V2 events force V1; V0 refuses them. */
	attestation_copy(&a, &b, &e);
	event_log_append_runtime(&b.runtime_events, "app-event", (const uint8_t *)"hi", 2, 2, &e);
	ok(attestation_encode_v0(&b, &out, &e) < 0, "V0 refuses V2 events: %s", e.msg);
	buf_reset(&out);
	ok(attestation_encode(&b, &out, &e) == 0 && out.data[0] == 0x83,
	   "auto encoding picks V1 for V2 events");
	attestation_free(&b);
	ok(attestation_decode(out.data, out.len, &b, &e) == 0 && b.runtime_events.n == 10 &&
	       b.runtime_events.ev[9].version == 2,
	   "V2 runtime event survives V1 round trip");
	{
		uint8_t r3[48];

		ok(attestation_replay_rtmr3(&b, false, r3, &e) == 0 && memcmp(r3, td.rtmr[3], 48) != 0,
		   "extra event changes the replay");
		ok(attestation_check_event_log(&b, &e) < 0, "and no longer matches the quote: %s", e.msg);
	}
	attestation_free(&b);
	buf_reset(&out);

	/* dstack-pod stack. */
	attestation_copy(&a, &b, &e);
	b.stack = ATTESTATION_STACK_DSTACK_POD;
	b.report_data_payload = strdup("{\"hello\":\"world\"}");
	ok(attestation_encode(&b, &out, &e) == 0 && out.data[0] == 0x83, "dstack-pod encodes as V1");
	attestation_free(&b);
	ok(attestation_decode(out.data, out.len, &b, &e) == 0 && b.stack == ATTESTATION_STACK_DSTACK_POD &&
	       strcmp(b.report_data_payload, "{\"hello\":\"world\"}") == 0,
	   "dstack-pod round trip");
	attestation_free(&b);
	buf_reset(&out);

	/* Stripping for certificates. */
	attestation_copy(&a, &b, &e);
	attestation_strip_for_cert(&b, &e);
	ok(b.event_log.n == 9 && b.event_log.ev[0].digest_len == 0, "cert strip keeps runtime events only");
	ok(attestation_encode(&b, &out, &e) == 0 && out.len < len, "stripped attestation is smaller");
	attestation_free(&b);
	ok(attestation_decode(out.data, out.len, &b, &e) == 0 && attestation_check_event_log(&b, &e) == 0,
	   "stripped attestation still verifies against the quote");
	attestation_free(&b);
	buf_reset(&out);

	/* report_data patching (simulator). */
	attestation_copy(&a, &b, &e);
	{
		uint8_t rd[64];

		memset(rd, 0xab, 64);
		attestation_set_report_data(&b, rd);
		ok(memcmp(b.report_data, rd, 64) == 0 && memcmp(b.quote + 568, rd, 64) == 0,
		   "report_data patched in stack and quote");
	}
	attestation_free(&b);

	/* Legacy quote + event log JSON (GetQuote shape: stripped log). */
	{
		struct event_log log = EVENT_LOG_INIT;
		json_t *arr;
		char *txt;
		struct app_info ai3;

		event_log_copy(&a.event_log, &log, &e);
		event_log_strip_for_quote(&log);
		arr = event_log_to_json(&log);
		txt = json_dumps(arr, JSON_COMPACT);
		ok(attestation_from_quote(a.quote, a.quote_len, txt, strlen(txt), &b, &e) == 0 &&
		       b.event_log.n == 33 && b.runtime_events.n == 9 &&
		       memcmp(b.report_data, a.report_data, 64) == 0,
		   "attestation from quote + stripped event log JSON: %s", e.msg);
		ok(attestation_check_event_log(&b, &e) == 0, "it verifies against the quote: %s", e.msg);
		ok(attestation_app_info(&b, false, NULL, NULL, 0, &ai3, &e) == 0,
		   "app info from the legacy pair");
		is_hex(ai3.mr_aggregated.p, 32, MR_AGGREGATED, "same mr_aggregated");
		app_info_free(&ai3);
		attestation_free(&b);
		ok(attestation_from_quote(a.quote, 100, txt, strlen(txt), &b, &e) < 0,
		   "short quote rejected: %s", e.msg);
		ok(attestation_from_quote(a.quote, a.quote_len, "[{", 2, &b, &e) < 0, "bad JSON rejected: %s",
		   e.msg);
		free(txt);
		json_decref(arr);
		event_log_free(&log);
	}

	/* Tampering with a runtime event payload breaks the replay. */
	attestation_copy(&a, &b, &e);
	b.runtime_events.ev[1].payload[0] ^= 1;
	b.runtime_events.ev[1].digest_len = 0;
	ok(attestation_check_event_log(&b, &e) < 0, "tampered runtime event detected: %s", e.msg);
	attestation_free(&b);

	buf_free(&out);
	attestation_free(&a);
}

static void test_rejections(const uint8_t *data, size_t len)
{
	struct attestation a;
	struct err e = ERR_INIT;
	size_t accepted = 0;
	uint8_t *copy = malloc(len + 1);
	uint8_t *big;

	for (size_t cut = 0; cut < len; cut++) {
		if (attestation_decode(data, cut, &a, &e) == 0) {
			accepted++;
			attestation_free(&a);
		}
	}
	ok(accepted == 0, "every truncation of the fixture is rejected (%zu accepted)", accepted);
	attestation_decode(data, len - 7, &a, &e);
	ok(strncmp(e.msg, "invalid attestation: ", 21) == 0, "error names the problem: %s", e.msg);

	memcpy(copy, data, len);
	copy[len] = 0;
	ok(attestation_decode(copy, len + 1, &a, &e) < 0 && strstr(e.msg, "trailing"), "trailing byte: %s",
	   e.msg);
	{
		uint8_t *hit = memmem(copy, len, "system-preparing", 16);

		ok(hit != NULL, "fixture contains a system-preparing event");
		hit[6] = 0;
		ok(attestation_decode(copy, len, &a, &e) < 0 && strstr(e.msg, "NUL"),
		   "NUL in an event name: %s", e.msg);
		hit[6] = '-';
	}
	copy[0] = 0x01;
	ok(attestation_decode(copy, len, &a, &e) < 0, "unknown first byte: %s", e.msg);
	copy[0] = 0x00;
	copy[1] = 0x01;
	ok(attestation_decode(copy, len, &a, &e) < 0 && strstr(e.msg, "GcpTdx"), "non-TDX platform: %s",
	   e.msg);
	copy[1] = 0x07;
	ok(attestation_decode(copy, len, &a, &e) < 0, "unknown platform variant: %s", e.msg);
	copy[1] = 0x00;
	copy[2] = 0xff; /* quote length prefix becomes huge */
	copy[3] = 0xff;
	copy[4] = 0xff;
	copy[5] = 0xff;
	copy[2] = 0xfe;
	ok(attestation_decode(copy, len, &a, &e) < 0, "oversized length prefix: %s", e.msg);
	free(copy);

	big = calloc(ATTESTATION_MAX_LEN + 1, 1);
	ok(attestation_decode(big, ATTESTATION_MAX_LEN + 1, &a, &e) < 0 && strstr(e.msg, "limit"),
	   "over 10 MiB rejected: %s", e.msg);
	free(big);
	ok(attestation_decode(data, 0, &a, &e) < 0, "empty input rejected");

	/* V1 shapes. */
	{
		struct buf b = BUF_INIT;

		mp_put_map(&b, 1);
		mp_put_cstr(&b, "version");
		mp_put_uint(&b, 1);
		ok(attestation_decode(b.data, b.len, &a, &e) < 0, "V1 missing platform: %s", e.msg);
		buf_reset(&b);
		mp_put_map(&b, 3);
		mp_put_cstr(&b, "version");
		mp_put_uint(&b, 2);
		mp_put_cstr(&b, "platform");
		mp_put_nil(&b);
		mp_put_cstr(&b, "stack");
		mp_put_nil(&b);
		ok(attestation_decode(b.data, b.len, &a, &e) < 0 && strstr(e.msg, "version 2"),
		   "V1 version 2: %s", e.msg);
		buf_reset(&b);
		mp_put_map(&b, 3);
		mp_put_cstr(&b, "version");
		mp_put_uint(&b, 1);
		mp_put_cstr(&b, "platform");
		mp_put_map(&b, 2);
		mp_put_cstr(&b, "kind");
		mp_put_cstr(&b, "sev-snp");
		mp_put_cstr(&b, "data");
		mp_put_map(&b, 0);
		mp_put_cstr(&b, "stack");
		mp_put_map(&b, 2);
		mp_put_cstr(&b, "kind");
		mp_put_cstr(&b, "dstack");
		mp_put_cstr(&b, "data");
		mp_put_map(&b, 0);
		ok(attestation_decode(b.data, b.len, &a, &e) < 0 && strstr(e.msg, "sev-snp"),
		   "V1 unsupported platform: %s", e.msg);
		/* Hand-built V1: data before kind, event versions as int and as name,
		 * unknown keys skipped, byte vectors as bin or int arrays. */
		buf_reset(&b);
		mp_put_map(&b, 4);
		mp_put_cstr(&b, "stack");
		mp_put_map(&b, 2);
		mp_put_cstr(&b, "data");
		mp_put_map(&b, 4);
		mp_put_cstr(&b, "runtime_events");
		mp_put_array(&b, 2);
		mp_put_map(&b, 3);
		mp_put_cstr(&b, "event");
		mp_put_cstr(&b, "app-id");
		mp_put_cstr(&b, "payload");
		mp_put_byte_array(&b, "\x01\x02", 2);
		mp_put_cstr(&b, "version");
		mp_put_uint(&b, 1);
		mp_put_map(&b, 3);
		mp_put_cstr(&b, "event");
		mp_put_cstr(&b, "x");
		mp_put_cstr(&b, "payload");
		mp_put_bin(&b, "y", 1);
		mp_put_cstr(&b, "version");
		mp_put_cstr(&b, "V2");
		mp_put_cstr(&b, "report_data");
		{
			uint8_t rd[64] = {7};

			mp_put_bin(&b, rd, 64);
		}
		mp_put_cstr(&b, "config");
		mp_put_cstr(&b, "{}");
		mp_put_cstr(&b, "future");
		mp_put_nil(&b);
		mp_put_cstr(&b, "kind");
		mp_put_cstr(&b, "dstack");
		mp_put_cstr(&b, "platform");
		mp_put_map(&b, 2);
		mp_put_cstr(&b, "kind");
		mp_put_cstr(&b, "tdx");
		mp_put_cstr(&b, "data");
		mp_put_map(&b, 2);
		mp_put_cstr(&b, "quote");
		mp_put_bin(&b, "q", 1);
		mp_put_cstr(&b, "event_log");
		mp_put_array(&b, 0);
		mp_put_cstr(&b, "extra");
		mp_put_array(&b, 2);
		mp_put_uint(&b, 1);
		mp_put_map(&b, 0);
		mp_put_cstr(&b, "version");
		mp_put_uint(&b, 1);
		ok(attestation_decode(b.data, b.len, &a, &e) == 0 && a.runtime_events.n == 2 &&
		       a.runtime_events.ev[0].version == 1 && a.runtime_events.ev[1].version == 2 &&
		       a.runtime_events.ev[0].payload_len == 2 && a.report_data[0] == 7 && a.quote_len == 1 &&
		       strcmp(a.config, "{}") == 0,
		   "hand-built V1 in another key order decodes: %s", e.msg);
		attestation_free(&a);
		buf_free(&b);
	}
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "../shared/testdata/dstack";
	size_t len, len2;
	uint8_t *data = load_fixture(dir, "guest-agent-attestation.bin", &len);
	uint8_t *sim = load_fixture(dir, "simulator-attestation.bin", &len2);
	struct attestation a;
	struct err e = ERR_INIT;

	test_fixture(data, len);
	test_rejections(data, len);
	ok(attestation_decode(sim, len2, &a, &e) == 0 && a.event_log.n == 33,
	   "simulator-attestation.bin decodes");
	attestation_free(&a);
	free(sim);
	free(data);
	return tap_done();
}
