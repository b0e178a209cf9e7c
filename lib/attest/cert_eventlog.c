/*
 * cert_eventlog.c — see cert_eventlog.h. zlib does the gzip framing
 * (windowBits 15 + 16).
 */
#include "attest/cert_eventlog.h"

#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "core/cleanup.h"

#define MAGIC_LEN (sizeof(CERT_EVENTLOG_GZIP_MAGIC) - 1)

static int gunzip_capped(const uint8_t *in, size_t len, struct buf *out, struct err *e)
{
	z_stream zs;
	uint8_t chunk[4096];
	int rc;

	memset(&zs, 0, sizeof(zs));
	if (len > UINT_MAX)
		return err_set(e, "compressed event log too large");
	if (inflateInit2(&zs, 15 + 16) != Z_OK)
		return err_set(e, "inflateInit2 failed");
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	do {
		zs.next_out = chunk;
		zs.avail_out = sizeof(chunk);
		rc = inflate(&zs, Z_NO_FLUSH);
		if (rc != Z_OK && rc != Z_STREAM_END) {
			inflateEnd(&zs);
			return err_set(e, "invalid gzip data in event log extension");
		}
		buf_append(out, chunk, sizeof(chunk) - zs.avail_out);
		if (out->len > CERT_EVENTLOG_MAX_SIZE) {
			inflateEnd(&zs);
			return err_set(e, "event log extension decompresses to more than %d bytes",
				       CERT_EVENTLOG_MAX_SIZE);
		}
		if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
			inflateEnd(&zs);
			return err_set(e, "truncated gzip data in event log extension");
		}
	} while (rc != Z_STREAM_END);
	if (zs.avail_in != 0) {
		inflateEnd(&zs);
		return err_set(e, "trailing bytes after gzip data in event log extension");
	}
	inflateEnd(&zs);
	return 0;
}

int cert_event_log_decode(const uint8_t *value, size_t len, struct event_log *out, struct err *e)
{
	struct buf plain = BUF_INIT;
	int rc;

	if (len >= MAGIC_LEN && memcmp(value, CERT_EVENTLOG_GZIP_MAGIC, MAGIC_LEN) == 0) {
		if (gunzip_capped(value + MAGIC_LEN, len - MAGIC_LEN, &plain, e) < 0) {
			buf_free(&plain);
			return -1;
		}
		rc = event_log_from_json_str((const char *)plain.data, plain.len, out, e);
		buf_free(&plain);
		return rc;
	}
	return event_log_from_json_str((const char *)value, len, out, e);
}

int cert_event_log_encode(const struct event_log *log, bool compress, struct buf *out, struct err *e)
{
	_cleanup_json_ json_t *arr = event_log_to_json(log);
	_cleanup_free_ char *text = json_dumps(arr, JSON_COMPACT);
	z_stream zs;
	size_t n, bound;
	int rc;

	if (!text)
		return err_set(e, "cannot serialize event log");
	n = strlen(text);
	if (!compress) {
		buf_append(out, text, n);
		return 0;
	}
	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return err_set(e, "deflateInit2 failed");
	bound = deflateBound(&zs, (uLong)n);
	buf_append(out, CERT_EVENTLOG_GZIP_MAGIC, MAGIC_LEN);
	buf_reserve(out, bound);
	zs.next_in = (Bytef *)text;
	zs.avail_in = (uInt)n;
	zs.next_out = out->data + out->len;
	zs.avail_out = (uInt)bound;
	rc = deflate(&zs, Z_FINISH);
	if (rc != Z_STREAM_END) {
		deflateEnd(&zs);
		return err_set(e, "gzip compression failed");
	}
	out->len += bound - zs.avail_out;
	out->data[out->len] = 0;
	deflateEnd(&zs);
	return 0;
}
