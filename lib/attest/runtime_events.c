/*
 * runtime_events.c — see runtime_events.h.
 */
#include "attest/runtime_events.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "codec/base64.h"
#include "codec/jcs.h"
#include "core/cleanup.h"

struct boot_step {
	const char *name;
	int repeat;           /* may occur more than once */
	long payload_len;     /* -1: any */
	long alt_payload_len; /* second accepted size, or -2 */
};

static const struct boot_step boot_steps[] = {
    {RT_SYSTEM_PREPARING, 0, 0, -2},  {RT_APP_ID, 0, 20, -2},          {RT_COMPOSE_HASH, 0, 32, -2},
    {RT_INIT_SCRIPT_HASH, 1, 32, -2}, {RT_GPU_POLICY_HASH, 0, 32, -2}, {RT_GPU_ATTESTATION, 0, -1, -2},
    {RT_INSTANCE_ID, 0, 20, 0},       {RT_BOOT_MR_DONE, 0, 0, -2},     {RT_OS_IMAGE_HASH, 0, 32, 0},
    {RT_KEY_PROVIDER, 0, -1, -2},     {RT_STORAGE_FS, 0, -1, -2},      {RT_SYSTEM_READY, 0, 0, -2},
};

int runtime_events_check_boot_order(const struct event_log *log, struct err *e)
{
	int last = -1;
	bool first = true;

	for (size_t i = 0; i < log->n; i++) {
		const struct tdx_event *ev = &log->ev[i];
		int k;

		if (!event_is_runtime(ev))
			continue;
		for (k = 0; k < (int)ARRAY_SIZE(boot_steps) && strcmp(boot_steps[k].name, ev->event); k++)
			;
		if (first && k != 0)
			return err_set(e, "first runtime event is '%s', want '%s'", ev->event,
				       RT_SYSTEM_PREPARING);
		first = false;
		if (k == (int)ARRAY_SIZE(boot_steps))
			continue;
		if (k < last || (k == last && !boot_steps[k].repeat))
			return err_set(e, "boot event '%s' out of order", ev->event);
		if (boot_steps[k].payload_len >= 0 && (long)ev->payload_len != boot_steps[k].payload_len &&
		    (long)ev->payload_len != boot_steps[k].alt_payload_len)
			return err_set(e, "boot event '%s' has a %zu-byte payload, want %ld", ev->event,
				       ev->payload_len, boot_steps[k].payload_len);
		last = k;
		if (k == (int)ARRAY_SIZE(boot_steps) - 1)
			return 0;
	}
	return err_set(e, "no '%s' event", RT_SYSTEM_READY);
}

void runtime_event_log_line(const char *name, const uint8_t *payload, size_t payload_len, uint32_t version,
			    struct buf *out)
{
	buf_puts(out, "{\"event\":");
	jcs_put_string(out, name, strlen(name));
	buf_puts(out, ",\"payload\":\"");
	base64_put(out, payload, payload_len);
	buf_putc(out, '"');
	if (version == 2)
		buf_puts(out, ",\"version\":2");
	buf_puts(out, "}\n");
}

static int parse_line(const char *line, size_t len, struct event_log *out, struct err *e)
{
	json_error_t jerr;
	_cleanup_json_ json_t *o = json_loadb(line, len, 0, &jerr);
	_cleanup_free_ uint8_t *payload = NULL;
	size_t payload_len;
	json_t *name, *b64, *ver;
	json_int_t version = 1;

	if (!json_is_object(o))
		return err_set(e, "not a JSON object%s%s", o ? "" : ": ", o ? "" : jerr.text);
	name = json_object_get(o, "event");
	b64 = json_object_get(o, "payload");
	ver = json_object_get(o, "version");
	if (!json_is_string(name) || !json_is_string(b64))
		return err_set(e, "event and payload must be strings");
	if (ver && !json_is_null(ver)) {
		if (!json_is_integer(ver) || (json_integer_value(ver) != 1 && json_integer_value(ver) != 2))
			return err_set(e, "unsupported version");
		version = json_integer_value(ver);
	}
	if (base64_decode(json_string_value(b64), json_string_length(b64), &payload, &payload_len, e) < 0)
		return err_wrap(e, "payload");
	return event_log_append_runtime(out, json_string_value(name), payload, payload_len, (uint32_t)version,
					e);
}

int runtime_events_parse_log(const char *text, size_t len, struct event_log *out, struct err *e)
{
	size_t pos = 0, lineno = 0;

	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len, n = end - pos;

		lineno++;
		while (n && (text[pos + n - 1] == '\r' || text[pos + n - 1] == ' '))
			n--;
		if (n && parse_line(text + pos, n, out, e) < 0)
			return err_wrap(e, "runtime event log line %zu", lineno);
		pos = end + 1;
	}
	return 0;
}
