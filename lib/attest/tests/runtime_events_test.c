/*
 * runtime_events_test.c — boot event order checks on the reference
 * fixture and on broken sequences, and the runtime_events.log line format
 * (round trip through the parser, replay equal to the fixture's RTMR3).
 */
#include <stdlib.h>
#include <string.h>

#include "attest/appinfo.h"
#include "attest/attestation.h"
#include "attest/runtime_events.h"
#include "core/cleanup.h"
#include "core/tap.h"
#include "test_util.h"

static int check_names(const char *const *names, size_t n, const size_t *sizes, struct err *e)
{
	struct event_log log = EVENT_LOG_INIT;
	uint8_t zeros[64] = {0};
	int rc;

	for (size_t i = 0; i < n; i++)
		event_log_append_runtime(&log, names[i], zeros, sizes ? sizes[i] : 0, 1, NULL);
	rc = runtime_events_check_boot_order(&log, e);
	event_log_free(&log);
	return rc;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "../shared/testdata/dstack";
	size_t len;
	uint8_t *data = load_fixture(dir, "guest-agent-attestation.bin", &len);
	struct attestation a;
	struct err e = ERR_INIT;
	struct buf text = BUF_INIT;
	struct event_log parsed = EVENT_LOG_INIT;
	uint8_t want[48], got[48];

	ok(attestation_decode(data, len, &a, &e) == 0, "fixture decodes");
	ok(runtime_events_check_boot_order(&a.runtime_events, &e) == 0,
	   "fixture boot events are in order: %s", e.msg);
	ok(runtime_events_check_boot_order(&a.event_log, &e) == 0, "also in the full event log");

	{
		const char *ok_seq[] = {
		    "system-preparing", "app-id",      "compose-hash", "init-script-hash", "init-script-hash",
		    "gpu-policy-hash",  "instance-id", "boot-mr-done", "key-provider",     "storage-fs",
		    "system-ready",     "app-custom",  "app-id"};
		size_t sizes[] = {0, 20, 32, 32, 32, 32, 0, 0, 10, 3, 0, 5, 1};
		const char *swapped[] = {"system-preparing", "compose-hash", "app-id", "system-ready"};
		size_t swapped_sizes[] = {0, 32, 20, 0};
		const char *no_ready[] = {"system-preparing", "app-id"};
		size_t no_ready_sizes[] = {0, 20};
		const char *late_start[] = {"app-id", "system-preparing", "system-ready"};
		const char *twice[] = {"system-preparing", "boot-mr-done", "boot-mr-done", "system-ready"};
		const char *short_id[] = {"system-preparing", "app-id", "system-ready"};
		size_t short_sizes[] = {0, 19, 0};

		ok(check_names(ok_seq, ARRAY_SIZE(ok_seq), sizes, &e) == 0,
		   "full sequence with repeated init-script-hash, empty instance-id and app events: %s",
		   e.msg);
		ok(check_names(swapped, 4, swapped_sizes, &e) < 0, "swapped order rejected: %s", e.msg);
		ok(check_names(no_ready, 2, no_ready_sizes, &e) < 0, "missing system-ready rejected: %s",
		   e.msg);
		ok(check_names(late_start, 3, NULL, &e) < 0, "must start with system-preparing: %s", e.msg);
		ok(check_names(twice, 4, NULL, &e) < 0, "single events at most once: %s", e.msg);
		ok(check_names(short_id, 3, short_sizes, &e) < 0, "19-byte app-id rejected: %s", e.msg);

		/* os-image-hash carries what the KMS returned: 32 bytes, or nothing. */
		const char *os_hash[] = {"system-preparing", "boot-mr-done", "os-image-hash", "system-ready"};
		size_t os_full[] = {0, 0, 32, 0}, os_empty[] = {0, 0, 0, 0}, os_odd[] = {0, 0, 16, 0};

		ok(check_names(os_hash, 4, os_full, &e) == 0, "32-byte os-image-hash accepted: %s", e.msg);
		ok(check_names(os_hash, 4, os_empty, &e) == 0, "empty os-image-hash accepted: %s", e.msg);
		ok(check_names(os_hash, 4, os_odd, &e) < 0, "16-byte os-image-hash rejected: %s", e.msg);
	}

	runtime_event_log_line("app-id", a.runtime_events.ev[1].payload, a.runtime_events.ev[1].payload_len,
			       1, &text);
	is_str((char *)text.data, "{\"event\":\"app-id\",\"payload\":\"W7T/mjg3NX8Z3BdkB6VwnGLrbFY=\"}\n",
	       "log line format");
	buf_reset(&text);
	runtime_event_log_line("x", (const uint8_t *)"a", 1, 2, &text);
	is_str((char *)text.data, "{\"event\":\"x\",\"payload\":\"YQ==\",\"version\":2}\n", "V2 log line");
	buf_reset(&text);

	for (size_t i = 0; i < a.runtime_events.n; i++)
		runtime_event_log_line(a.runtime_events.ev[i].event, a.runtime_events.ev[i].payload,
				       a.runtime_events.ev[i].payload_len, 1, &text);
	buf_puts(&text, "\n");
	ok(runtime_events_parse_log((char *)text.data, text.len, &parsed, &e) == 0 && parsed.n == 9,
	   "log parses back to 9 events: %s", e.msg);
	attestation_replay_rtmr3(&a, false, want, &e);
	ok(event_log_replay_imr(&parsed, 3, NULL, got, &e) == 0 && memcmp(want, got, 48) == 0,
	   "parsed log replays to the fixture's RTMR3");
	event_log_free(&parsed);

	ok(runtime_events_parse_log("{\"event\":\"a\",\"payload\":\"\"}\nnot json\n", 37, &parsed, &e) < 0 &&
	       strstr(e.msg, "line 2"),
	   "malformed line reported with its number: %s", e.msg);
	event_log_free(&parsed);
	ok(runtime_events_parse_log("{\"event\":\"a\",\"payload\":\"Zg\"}", 28, &parsed, &e) < 0,
	   "unpadded base64 rejected: %s", e.msg);
	event_log_free(&parsed);
	ok(runtime_events_parse_log("{\"event\":\"a\",\"payload\":\"\",\"version\":3}", 39, &parsed, &e) < 0,
	   "unknown version rejected");
	event_log_free(&parsed);

	buf_free(&text);
	attestation_free(&a);
	free(data);
	return tap_done();
}
