/*
 * scale_test.c — compact-integer vectors across all four modes, canonical
 * form enforcement, bounds checks and the primitive types.
 */
#include <stdlib.h>
#include <string.h>

#include "codec/scale.h"
#include "core/hex.h"
#include "core/tap.h"

static void compact_vector(uint64_t v, const char *hex)
{
	struct buf b = BUF_INIT;
	struct scale_reader r;
	struct err e = ERR_INIT;
	uint64_t got = 0;

	scale_put_compact(&b, v);
	is_hex(b.data, b.len, hex, "compact(%llu)", (unsigned long long)v);
	scale_reader_init(&r, b.data, b.len);
	ok(scale_read_compact(&r, &got, &e) == 0 && got == v && scale_expect_end(&r, &e) == 0,
	   "decode compact(%llu)", (unsigned long long)v);
	buf_free(&b);
}

static int decode_hex_compact(const char *hex, uint64_t *v, struct err *e)
{
	uint8_t *p;
	size_t n;
	struct scale_reader r;
	int rc;

	if (hex_decode_alloc(hex, strlen(hex), &p, &n, e) < 0)
		return -1;
	scale_reader_init(&r, p, n);
	rc = scale_read_compact(&r, v, e);
	if (rc == 0)
		rc = scale_expect_end(&r, e);
	free(p);
	return rc;
}

static void reject_compact(const char *hex, const char *why)
{
	struct err e = ERR_INIT;
	uint64_t v;

	ok(decode_hex_compact(hex, &v, &e) < 0, "reject compact %s (%s): %s", hex, why, e.msg);
}

int main(void)
{
	struct buf b = BUF_INIT;
	struct scale_reader r;
	struct err e = ERR_INIT;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	bool flag;
	char *s;
	size_t n;
	const uint8_t *p;
	uint8_t *owned;

	compact_vector(0, "00");
	compact_vector(1, "04");
	compact_vector(42, "a8");
	compact_vector(63, "fc");
	compact_vector(64, "0101");
	compact_vector(69, "1501");
	compact_vector(16383, "fdff");
	compact_vector(16384, "02000100");
	compact_vector((1u << 30) - 1, "feffffff");
	compact_vector(1u << 30, "0300000040");
	compact_vector(0xffffffffu, "03ffffffff");
	compact_vector(1ull << 32, "070000000001");
	compact_vector(1ull << 40, "0b000000000001");
	compact_vector(1ull << 48, "0f00000000000001");
	compact_vector(UINT64_MAX, "13ffffffffffffffff");

	reject_compact("0100", "0 in two-byte mode");
	reject_compact("fd00", "63 in two-byte mode");
	reject_compact("02000000", "0 in four-byte mode");
	reject_compact("fdff0000", "16383 in four-byte mode");
	reject_compact("03ffffff3f", "2^30-1 in big mode");
	reject_compact("070000000000", "top byte zero");
	reject_compact("17000000000000000001", "more than 64 bits");
	reject_compact("01", "truncated two-byte");
	reject_compact("02ffff", "truncated four-byte");
	reject_compact("07000000", "truncated big mode");
	reject_compact("", "empty");

	/* Fixed-width little-endian integers and bool. */
	scale_put_u8(&b, 0xab);
	scale_put_u16(&b, 0x1234);
	scale_put_u32(&b, 0x12345678);
	scale_put_u64(&b, 0x0102030405060708ull);
	scale_put_bool(&b, true);
	scale_put_bool(&b, false);
	is_hex(b.data, b.len, "ab34127856341208070605040302010100", "fixed ints are little endian");
	scale_reader_init(&r, b.data, b.len);
	ok(scale_read_u8(&r, &u8, &e) == 0 && u8 == 0xab, "u8");
	ok(scale_read_u16(&r, &u16, &e) == 0 && u16 == 0x1234, "u16");
	ok(scale_read_u32(&r, &u32, &e) == 0 && u32 == 0x12345678, "u32");
	ok(scale_read_u64(&r, &u64, &e) == 0 && u64 == 0x0102030405060708ull, "u64");
	ok(scale_read_bool(&r, &flag, &e) == 0 && flag, "bool true");
	ok(scale_read_bool(&r, &flag, &e) == 0 && !flag, "bool false");
	ok(scale_read_u8(&r, &u8, &e) < 0, "read past end fails: %s", e.msg);
	buf_reset(&b);

	scale_put_u8(&b, 2);
	scale_reader_init(&r, b.data, b.len);
	ok(scale_read_bool(&r, &flag, &e) < 0, "bool 2 rejected: %s", e.msg);
	scale_reader_init(&r, b.data, b.len);
	ok(scale_read_option(&r, &flag, &e) < 0, "Option tag 2 rejected");
	scale_reader_init(&r, b.data, b.len);
	ok(scale_read_variant(&r, 2, &u8, &e) < 0, "variant out of range rejected");
	scale_reader_init(&r, b.data, b.len);
	ok(scale_read_variant(&r, 3, &u8, &e) == 0 && u8 == 2, "variant in range");
	buf_reset(&b);

	/* String, Vec<u8>, Option<u64>, round trip. */
	scale_put_str(&b, "please sign cert:");
	scale_put_bytes(&b, "\x01\x02\x03", 3);
	scale_put_option(&b, false);
	scale_put_option(&b, true);
	scale_put_u64(&b, 1700000000);
	is_hex(b.data, 18, "44706c65617365207369676e20636572743a", "String = compact length + UTF-8");
	scale_reader_init(&r, b.data, b.len);
	ok(scale_read_str(&r, &s, &n, &e) == 0 && n == 17 && strcmp(s, "please sign cert:") == 0,
	   "read String");
	free(s);
	ok(scale_read_bytes(&r, &p, &n, &e) == 0 && n == 3 && memcmp(p, "\x01\x02\x03", 3) == 0,
	   "read Vec<u8>");
	ok(scale_read_option(&r, &flag, &e) == 0 && !flag, "None");
	ok(scale_read_option(&r, &flag, &e) == 0 && flag && scale_read_u64(&r, &u64, &e) == 0 &&
	       u64 == 1700000000,
	   "Some(u64)");
	ok(scale_expect_end(&r, &e) == 0, "fully consumed");
	buf_reset(&b);

	/* Invalid UTF-8 and oversize length prefixes. */
	buf_append(&b, "\x08\xc3\x28", 3);
	scale_reader_init(&r, b.data, b.len);
	ok(scale_read_str(&r, &s, &n, &e) < 0 && r.pos == 0, "invalid UTF-8 rejected: %s", e.msg);
	buf_reset(&b);
	buf_append(&b, "\x06\xed\xa0\x80", 4); /* surrogate U+D800 */
	scale_reader_init(&r, b.data, b.len);
	ok(scale_read_str(&r, &s, &n, &e) < 0, "UTF-8 surrogate rejected");
	buf_reset(&b);
	buf_append(&b, "\xfe\xff\xff\xff\x00\x00", 6);
	scale_reader_init(&r, b.data, b.len);
	ok(scale_read_bytes_alloc(&r, &owned, &n, &e) < 0, "length 2^30-1 with 2 bytes left: %s", e.msg);
	buf_reset(&b);
	buf_append(&b, "\x10\x00\x00\x00\x00\x00\x00\x00\x00", 9); /* 4 elements */
	scale_reader_init(&r, b.data, b.len);
	ok(scale_read_len(&r, 2, &n, &e) == 0 && n == 4, "4 elements of >= 2 bytes fit in 8");
	scale_reader_init(&r, b.data, b.len);
	ok(scale_read_len(&r, 3, &n, &e) < 0, "4 elements of >= 3 bytes do not fit in 8");
	buf_reset(&b);
	buf_append(&b, "\x04\x00\x01", 3);
	scale_reader_init(&r, b.data, b.len);
	ok(scale_read_bytes(&r, &p, &n, &e) == 0 && scale_expect_end(&r, &e) < 0,
	   "trailing byte detected: %s", e.msg);
	buf_free(&b);
	return tap_done();
}
