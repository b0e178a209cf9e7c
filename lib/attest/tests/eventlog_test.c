/*
 * eventlog_test.c — CCEL parsing of the reference sample, runtime-event
 * digests (V1 against the fixture's recorded digests, V2 preimage), event
 * JSON round trip with preimage checks, stripping and lookups.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "attest/attestation.h"
#include "attest/ccel.h"
#include "attest/cert_eventlog.h"
#include "attest/eventlog.h"
#include "core/hex.h"
#include "core/tap.h"
#include "test_util.h"

static void test_ccel(const char *dir)
{
	size_t len;
	uint8_t *data = load_fixture(dir, "ccel.bin", &len);
	struct event_log log = EVENT_LOG_INIT;
	struct err e = ERR_INIT;
	uint8_t rtmr[RTMR_COUNT][RTMR_LEN];
	json_t *js;

	ok(ccel_parse(data, len, &log, &e) == 0, "ccel.bin parses: %s", e.msg);
	is_int(log.n, 18, "18 boot events (PCR 0 and the Spec ID header excluded)");
	ok(log.ev[0].imr == 0 && log.ev[0].event_type == 0x8000000b && log.ev[0].digest_len == 48 &&
	       log.ev[0].payload_len == 42,
	   "first event: EV_EFI_HANDOFF_TABLES2 in IMR0");
	is_str(log.ev[8].event, "acpi-loader", "first ACPI DATA event renamed");
	is_str(log.ev[9].event, "acpi-rsdp", "second ACPI DATA event renamed");
	is_str(log.ev[10].event, "acpi-tables", "third ACPI DATA event renamed");
	ok(log.ev[8].payload_len == 9 && memcmp(log.ev[8].payload, "ACPI DATA", 9) == 0, "payload kept");
	is_str(log.ev[0].event, "", "other events have no name");
	ok(log.ev[11].imr == 1 && log.ev[11].event_type == 0x80000003, "PCR2 maps to IMR1");
	ok(log.ev[17].imr == 1 && log.ev[17].payload_len == 40 &&
	       memcmp(log.ev[17].payload, "Exit Boot Services Returned with Success", 40) == 0,
	   "last event before the 0xFFFFFFFF terminator");
	ok(event_log_replay(&log, rtmr, &e) == 0, "boot log replays");

	js = event_to_json(&log.ev[8]);
	ok(json_integer_value(json_object_get(js, "imr")) == 0 &&
	       json_integer_value(json_object_get(js, "event_type")) == 10 &&
	       strcmp(json_string_value(json_object_get(js, "event")), "acpi-loader") == 0 &&
	       json_string_length(json_object_get(js, "digest")) == 96,
	   "event JSON fields");
	is_str(json_string_value(json_object_get(js, "event_payload")), "414350492044415441",
	       "payload as hex");
	ok(json_object_get(js, "version") == NULL && json_object_get(js, "preimage") == NULL,
	   "boot events carry no version/preimage");
	json_decref(js);
	event_log_free(&log);

	ok(ccel_parse(data, 40, &log, &e) < 0, "truncated header rejected: %s", e.msg);
	event_log_free(&log);
	ok(ccel_parse(data, 200, &log, &e) < 0, "truncated event rejected: %s", e.msg);
	event_log_free(&log);
	data[32] ^= 1; /* "Spec ID Event03" signature */
	ok(ccel_parse(data, len, &log, &e) < 0, "bad Spec ID header rejected: %s", e.msg);
	event_log_free(&log);
	data[32] ^= 1;
	data[0x41 + 12] = 0x0b; /* first event's algorithm id: undeclared SHA-256 */
	ok(ccel_parse(data, len, &log, &e) < 0, "undeclared digest algorithm rejected: %s", e.msg);
	event_log_free(&log);
	free(data);
}

static void sha384_hex(const void *p, size_t n, char out[97])
{
	uint8_t d[48];

	EVP_Digest(p, n, d, NULL, EVP_sha384(), NULL);
	hex_encode(d, 48, out);
}

static void test_runtime_digests(const char *dir)
{
	size_t len;
	uint8_t *data = load_fixture(dir, "guest-agent-attestation.bin", &len);
	struct attestation a;
	struct err e = ERR_INIT;
	size_t checked = 0, matched = 0;
	uint8_t d[48];
	struct buf pre = BUF_INIT;
	char want[97];

	ok(attestation_decode(data, len, &a, &e) == 0, "fixture decodes: %s", e.msg);
	for (size_t i = 0; i < a.event_log.n; i++) {
		struct tdx_event *ev = &a.event_log.ev[i];

		if (!event_is_runtime(ev))
			continue;
		checked++;
		if (runtime_event_digest(1, ev->event, ev->payload, ev->payload_len, d, &e) == 0 &&
		    memcmp(d, ev->digest, 48) == 0)
			matched++;
	}
	ok(checked == 9 && matched == 9,
	   "V1 digests of all 9 runtime events match the recorded ones (%zu/%zu)", matched, checked);
	attestation_free(&a);
	free(data);

	runtime_event_preimage("app-id", (const uint8_t *)"\x5b\xb4", 2, &pre);
	is_str((char *)pre.data, "{\"name\":\"app-id\",\"payload\":\"5bb4\",\"type\":134217729}",
	       "V2 preimage is JCS");
	sha384_hex(pre.data, pre.len, want);
	ok(runtime_event_digest(2, "app-id", (const uint8_t *)"\x5b\xb4", 2, d, &e) == 0, "V2 digest");
	is_hex(d, 48, want, "V2 digest = SHA-384(preimage)");
	buf_reset(&pre);
	runtime_event_preimage("a\"b\n", NULL, 0, &pre);
	is_str((char *)pre.data, "{\"name\":\"a\\\"b\\n\",\"payload\":\"\",\"type\":134217729}",
	       "V2 preimage escapes the name");
	buf_free(&pre);
	{
		static const uint8_t v1_pre[] = "\x01\x00\x00\x08:boot-mr-done:";

		sha384_hex(v1_pre, sizeof(v1_pre) - 1, want);
		ok(runtime_event_digest(1, "boot-mr-done", NULL, 0, d, &e) == 0, "V1 digest");
		is_hex(d, 48, want, "V1 digest = SHA-384(u32le(type):name:payload)");
	}
	ok(runtime_event_digest(3, "x", NULL, 0, d, &e) < 0, "unknown version rejected: %s", e.msg);
}

static void test_json_and_strip(const char *dir)
{
	size_t len;
	uint8_t *data = load_fixture(dir, "guest-agent-attestation.bin", &len);
	struct attestation a;
	struct event_log back = EVENT_LOG_INIT, v2 = EVENT_LOG_INIT;
	struct err e = ERR_INIT;
	uint8_t full[RTMR_COUNT][RTMR_LEN], again[RTMR_COUNT][RTMR_LEN];
	json_t *js, *ev;
	char *text;
	const uint8_t *p;
	size_t n;

	attestation_decode(data, len, &a, &e);
	event_log_replay(&a.event_log, full, &e);

	js = event_log_to_json(&a.event_log);
	text = json_dumps(js, JSON_COMPACT);
	ok(event_log_from_json_str(text, strlen(text), &back, &e) == 0 && back.n == 33, "JSON round trip: %s",
	   e.msg);
	ok(event_log_replay(&back, again, &e) == 0 && memcmp(full, again, sizeof(full)) == 0,
	   "JSON round trip replays identically");
	free(text);
	json_decref(js);

	event_log_strip_for_quote(&back);
	ok(back.n == 33 && back.ev[0].payload_len == 0 && back.ev[0].digest_len == 48,
	   "quote strip: boot payload dropped");
	ok(back.ev[10].payload_len == 9, "quote strip: ACPI payload kept");
	ok(back.ev[25].digest_len == 0 && back.ev[25].payload_len == 20,
	   "quote strip: runtime digest dropped");
	ok(event_log_replay(&back, again, &e) == 0 && memcmp(full, again, sizeof(full)) == 0,
	   "stripped log still replays (runtime digests recomputed)");
	event_log_strip_for_cert(&back, false);
	ok(back.n == 9 && back.ev[0].imr == 3, "cert strip keeps the 9 runtime events");
	ok(event_log_replay_imr(&back, 3, NULL, again[3], &e) == 0 && memcmp(again[3], full[3], 48) == 0,
	   "cert-stripped log replays RTMR3");
	event_log_free(&back);
	event_log_copy(&a.event_log, &back, &e);
	event_log_strip_for_cert(&back, true);
	ok(back.n == 12 && back.ev[0].payload_len == 0 && back.ev[0].digest_len == 48,
	   "measurement-mode cert strip keeps the 3 ACPI digests");
	event_log_free(&back);

	{
		/* A firmware event in IMR3 is not a runtime event: its digest must survive. */
		struct event_log mixed = EVENT_LOG_INIT;
		uint8_t d48[48] = {1}, r[48];

		event_log_append(&mixed, 3, 0x1, d48, 48, "", (const uint8_t *)"x", 1, 0, &e);
		event_log_append_runtime(&mixed, "app-id", (const uint8_t *)"y", 1, 1, &e);
		event_log_strip_for_quote(&mixed);
		ok(mixed.ev[0].digest_len == 48 && mixed.ev[0].payload_len == 0 &&
		       mixed.ev[1].digest_len == 0,
		   "quote strip keys on the runtime event type, not the IMR");
		event_log_strip_for_cert(&mixed, false);
		ok(mixed.n == 2 && event_log_replay_imr(&mixed, 3, NULL, r, &e) == 0,
		   "mixed IMR3 log still replays");
		event_log_free(&mixed);
	}
	ok(event_log_find_payload(&a.event_log, "app-id", &p, &n, &e) == 0 && n == 20, "app-id lookup");
	is_hex(p, n, "5bb4ff9a3837357f19dc176407a5709c62eb6c56", "app-id payload");
	ok(event_log_find_payload(&a.event_log, "nope", &p, &n, &e) < 0, "missing event: %s", e.msg);

	/* V2 events: JSON carries version and preimage; tampering is caught. */
	event_log_append_runtime(&v2, "app-id", (const uint8_t *)"\x01\x02", 2, 2, &e);
	event_log_append_runtime(&v2, "system-ready", NULL, 0, 2, &e);
	event_log_append_runtime(&v2, "late", (const uint8_t *)"x", 1, 2, &e);
	ok(event_log_find_payload(&v2, "late", &p, &n, &e) < 0, "lookups stop at system-ready");
	js = event_log_to_json(&v2);
	ev = json_array_get(js, 0);
	ok(json_integer_value(json_object_get(ev, "version")) == 2, "V2 event JSON has version 2");
	{
		const char *pre = json_string_value(json_object_get(ev, "preimage"));
		uint8_t *raw = NULL;
		size_t rawn;

		ok(pre && hex_decode_alloc(pre, strlen(pre), &raw, &rawn, &e) == 0 && rawn == 51 &&
		       memcmp(raw, "{\"name\":\"app-id\",\"payload\":\"0102\",\"type\":134217729}", 51) == 0,
		   "preimage is the hex of the canonical JSON");
		free(raw);
	}
	text = json_dumps(js, JSON_COMPACT);
	ok(event_log_from_json_str(text, strlen(text), &back, &e) == 0 && back.n == 3 &&
	       back.ev[0].version == 2,
	   "V2 JSON parses");
	event_log_free(&back);
	free(text);
	json_object_set_new(ev, "event_payload", json_string("0103"));
	text = json_dumps(js, JSON_COMPACT);
	ok(event_log_from_json_str(text, strlen(text), &back, &e) < 0, "payload not matching preimage: %s",
	   e.msg);
	event_log_free(&back);
	free(text);
	json_object_set_new(ev, "event_payload", json_string("0102"));
	json_object_set_new(ev, "digest", json_string("00"));
	text = json_dumps(js, JSON_COMPACT);
	ok(event_log_from_json_str(text, strlen(text), &back, &e) < 0, "short digest rejected: %s", e.msg);
	event_log_free(&back);
	free(text);
	json_decref(js);
	{
		/* V1 event with the reference's "hash_input" naming. */
		const char *good = "[{\"imr\":3,\"event_type\":134217729,\"digest\":\"\",\"event\":\"a\","
				   "\"event_payload\":\"62\",\"hash_input\":\"010000083a613a62\"}]";
		const char *bad = "[{\"imr\":3,\"event_type\":134217729,\"digest\":\"\",\"event\":\"a\","
				  "\"event_payload\":\"62\",\"hash_input\":\"010000083a613a63\"}]";
		const char *nothex = "[{\"imr\":3,\"event_type\":134217729,\"event\":\"a\","
				     "\"event_payload\":\"62\",\"preimage\":\"{}\"}]";

		ok(event_log_from_json_str(good, strlen(good), &back, &e) == 0, "V1 hash_input accepted: %s",
		   e.msg);
		event_log_free(&back);
		ok(event_log_from_json_str(bad, strlen(bad), &back, &e) < 0,
		   "wrong V1 hash_input rejected: %s", e.msg);
		event_log_free(&back);
		ok(event_log_from_json_str(nothex, strlen(nothex), &back, &e) < 0,
		   "non-hex preimage rejected: %s", e.msg);
		event_log_free(&back);
	}
	ok(event_log_from_json_str("{}", 2, &back, &e) < 0, "non-array rejected");
	ok(event_log_from_json_str("[{\"imr\":9,\"event_type\":1}]", 27, &back, &e) < 0, "imr 9 rejected: %s",
	   e.msg);
	event_log_free(&back);

	event_log_free(&v2);
	attestation_free(&a);
	free(data);
}

static void test_cert_ext(const char *dir)
{
	size_t len;
	uint8_t *data = load_fixture(dir, "guest-agent-attestation.bin", &len);
	struct attestation a;
	struct event_log log = EVENT_LOG_INIT, back = EVENT_LOG_INIT;
	struct buf plain = BUF_INIT, gz = BUF_INIT;
	struct err e = ERR_INIT;
	uint8_t r1[48], r2[48];

	attestation_decode(data, len, &a, &e);
	event_log_copy(&a.event_log, &log, &e);
	event_log_strip_for_cert(&log, false);
	ok(cert_event_log_encode(&log, false, &plain, &e) == 0 && plain.data[0] == '[',
	   "plain extension is JSON");
	ok(strncmp((char *)plain.data, "[{\"imr\":3,\"event_type\":134217729,\"digest\":\"\",", 45) == 0,
	   "field order imr, event_type, digest, event, event_payload");
	ok(cert_event_log_encode(&log, true, &gz, &e) == 0 && memcmp(gz.data, "ELGZv1\x1f\x8b", 8) == 0 &&
	       gz.len < plain.len,
	   "compressed extension is ELGZv1 + gzip");
	ok(cert_event_log_decode(plain.data, plain.len, &back, &e) == 0 && back.n == 9, "plain decodes");
	event_log_free(&back);
	ok(cert_event_log_decode(gz.data, gz.len, &back, &e) == 0 && back.n == 9, "gzip decodes: %s", e.msg);
	ok(event_log_replay_imr(&back, 3, NULL, r1, &e) == 0 &&
	       event_log_replay_imr(&a.event_log, 3, NULL, r2, &e) == 0 && memcmp(r1, r2, 48) == 0,
	   "decoded extension replays RTMR3");
	event_log_free(&back);
	ok(cert_event_log_decode(gz.data, gz.len - 4, &back, &e) < 0, "truncated gzip rejected: %s", e.msg);
	event_log_free(&back);
	buf_putc(&gz, 0);
	ok(cert_event_log_decode(gz.data, gz.len, &back, &e) < 0, "trailing byte rejected: %s", e.msg);
	event_log_free(&back);
	gz.data[10] ^= 0xff;
	ok(cert_event_log_decode(gz.data, gz.len, &back, &e) < 0, "corrupted gzip rejected: %s", e.msg);
	event_log_free(&back);

	/* A bomb: 64 events with 1 KiB payloads compress well beyond the cap. */
	event_log_free(&log);
	{
		uint8_t zeros[1024] = {0};

		for (int i = 0; i < 64; i++)
			event_log_append_runtime(&log, "pad", zeros, sizeof(zeros), 1, &e);
	}
	buf_reset(&gz);
	cert_event_log_encode(&log, true, &gz, &e);
	ok(gz.len < 4096 && cert_event_log_decode(gz.data, gz.len, &back, &e) < 0 && strstr(e.msg, "16384"),
	   "decompression capped at 16 KiB: %s", e.msg);
	event_log_free(&back);

	buf_free(&plain);
	buf_free(&gz);
	event_log_free(&log);
	attestation_free(&a);
	free(data);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "../shared/testdata/dstack";

	test_ccel(dir);
	test_runtime_digests(dir);
	test_json_and_strip(dir);
	test_cert_ext(dir);
	return tap_done();
}
