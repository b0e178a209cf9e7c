/*
 * msgpack_test.c — encoder width selection against the MessagePack spec,
 * decoding of every family, named vs positional structs, byte vectors in
 * both serde shapes, and the limits (truncation, counts, depth).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codec/msgpack.h"
#include "core/hex.h"
#include "core/tap.h"

#define ENC(call, want)                                                                                      \
	do {                                                                                                 \
		struct buf _b = BUF_INIT;                                                                    \
		call;                                                                                        \
		is_hex(_b.data, _b.len, want, "%s", #call);                                                  \
		buf_free(&_b);                                                                               \
	} while (0)

static struct mp_reader reader_hex(const char *hex, uint8_t **hold)
{
	struct mp_reader r;
	size_t n;

	hex_decode_alloc(hex, strlen(hex), hold, &n, NULL);
	mp_reader_init(&r, *hold, n);
	return r;
}

int main(void)
{
	struct err e = ERR_INIT;
	struct mp_reader r;
	struct mp_obj o;
	uint8_t *hold, *bytes;
	size_t n;
	uint64_t u;
	int64_t i;
	uint32_t cnt;
	const char *s;
	double d;
	char big[40];

	ENC(mp_put_nil(&_b), "c0");
	ENC(mp_put_bool(&_b, true), "c3");
	ENC(mp_put_bool(&_b, false), "c2");
	ENC(mp_put_uint(&_b, 0), "00");
	ENC(mp_put_uint(&_b, 127), "7f");
	ENC(mp_put_uint(&_b, 128), "cc80");
	ENC(mp_put_uint(&_b, 256), "cd0100");
	ENC(mp_put_uint(&_b, 65536), "ce00010000");
	ENC(mp_put_uint(&_b, 1ull << 32), "cf0000000100000000");
	ENC(mp_put_int(&_b, 5), "05");
	ENC(mp_put_int(&_b, 200), "ccc8");
	ENC(mp_put_int(&_b, -1), "ff");
	ENC(mp_put_int(&_b, -32), "e0");
	ENC(mp_put_int(&_b, -33), "d0df");
	ENC(mp_put_int(&_b, -129), "d1ff7f");
	ENC(mp_put_int(&_b, -32769), "d2ffff7fff");
	ENC(mp_put_int(&_b, INT64_MIN), "d38000000000000000");
	ENC(mp_put_f32(&_b, 1.5f), "ca3fc00000");
	ENC(mp_put_f64(&_b, 1.5), "cb3ff8000000000000");
	ENC(mp_put_cstr(&_b, "a"), "a161");
	ENC(mp_put_bin(&_b, "\x01\x02", 2), "c4020102");
	ENC(mp_put_array(&_b, 3), "93");
	ENC(mp_put_array(&_b, 16), "dc0010");
	ENC(mp_put_array(&_b, 70000), "dd00011170");
	ENC(mp_put_map(&_b, 1), "81");
	ENC(mp_put_map(&_b, 16), "de0010");
	ENC(mp_put_byte_array(&_b, "\x01\xff", 2), "9201ccff");
	ENC(mp_put_ext(&_b, 5, "\xaa", 1), "d405aa");
	ENC(mp_put_ext(&_b, 5, "\xaa\xbb\xcc", 3), "c70305aabbcc");
	memset(big, 'x', 32);
	ENC(mp_put_str(&_b, big, 32), "d9207878787878787878787878787878787878787878787878787878787878787878");

	/* Decoding every integer width, including signed markers holding positive values. */
	r = reader_hex("cc80cd0100ce00010000cf0000000100000000d005d0dfd1ff7fd2ffff7fffd38000000000000000e0",
		       &hold);
	ok(mp_read_uint(&r, &u, &e) == 0 && u == 128, "uint8");
	ok(mp_read_uint(&r, &u, &e) == 0 && u == 256, "uint16");
	ok(mp_read_uint(&r, &u, &e) == 0 && u == 65536, "uint32");
	ok(mp_read_uint(&r, &u, &e) == 0 && u == 1ull << 32, "uint64");
	ok(mp_read_uint(&r, &u, &e) == 0 && u == 5, "int8 holding 5 reads as uint");
	ok(mp_read_int(&r, &i, &e) == 0 && i == -33, "int8");
	ok(mp_read_int(&r, &i, &e) == 0 && i == -129, "int16");
	ok(mp_read_int(&r, &i, &e) == 0 && i == -32769, "int32");
	ok(mp_read_int(&r, &i, &e) == 0 && i == INT64_MIN, "int64");
	ok(mp_read_uint(&r, &u, &e) < 0, "negative fixint is not a uint: %s", e.msg);
	ok(mp_read_int(&r, &i, &e) == 0 && i == -32, "negative fixint");
	ok(mp_expect_end(&r, &e) == 0, "all consumed");
	free(hold);

	r = reader_hex("ca3fc00000cb3ff8000000000000c0c3a3616263c403010203", &hold);
	ok(mp_read_double(&r, &d, &e) == 0 && d == 1.5, "float32");
	ok(mp_read_double(&r, &d, &e) == 0 && d == 1.5, "float64");
	ok(mp_read_nil(&r, &e) == 0, "nil");
	ok(mp_read(&r, &o, &e) == 0 && o.type == MP_BOOL && o.v.b, "true");
	ok(mp_read_str(&r, &s, &n, &e) == 0 && n == 3 && memcmp(s, "abc", 3) == 0, "fixstr");
	ok(mp_read_byte_vec(&r, &bytes, &n, &e) == 0 && n == 3 && memcmp(bytes, "\x01\x02\x03", 3) == 0,
	   "bin as byte vec");
	free(bytes);
	free(hold);

	/* A named struct {a: 1, b: "x"} and its positional form [1, "x"]. */
	r = reader_hex("82a16101a162a178", &hold);
	ok(mp_read_map(&r, &cnt, &e) == 0 && cnt == 2, "named struct is a map");
	ok(mp_read(&r, &o, &e) == 0 && mp_str_eq(&o, "a") && !mp_str_eq(&o, "ab"), "key a");
	ok(mp_read_uint(&r, &u, &e) == 0 && u == 1, "a = 1");
	ok(mp_read(&r, &o, &e) == 0 && mp_str_eq(&o, "b"), "key b");
	ok(mp_read_str(&r, &s, &n, &e) == 0 && n == 1 && s[0] == 'x', "b = x");
	free(hold);
	r = reader_hex("9201a178", &hold);
	ok(mp_read_array(&r, &cnt, &e) == 0 && cnt == 2 && mp_read_uint(&r, &u, &e) == 0 && u == 1 &&
	       mp_read_str(&r, &s, &n, &e) == 0,
	   "positional struct is an array");
	free(hold);

	/* Byte vectors as int arrays. */
	r = reader_hex("9301ccff00", &hold);
	ok(mp_read_byte_vec(&r, &bytes, &n, &e) == 0 && n == 3 && bytes[1] == 0xff, "int array as byte vec");
	free(bytes);
	free(hold);
	r = reader_hex("92cd0100", &hold);
	ok(mp_read_byte_vec(&r, &bytes, &n, &e) < 0 && r.pos == 0, "array element 256 rejected: %s", e.msg);
	free(hold);
	r = reader_hex("9201", &hold);
	ok(mp_read_byte_vec(&r, &bytes, &n, &e) < 0, "truncated int array rejected: %s", e.msg);
	free(hold);

	/* Limits. */
	r = reader_hex("a561", &hold);
	ok(mp_read(&r, &o, &e) < 0, "str longer than input: %s", e.msg);
	free(hold);
	r = reader_hex("ddffffffff00", &hold);
	ok(mp_read(&r, &o, &e) < 0, "array count larger than input: %s", e.msg);
	free(hold);
	r = reader_hex("df0000000300010203", &hold);
	ok(mp_read(&r, &o, &e) < 0, "map of 3 pairs with 4 bytes left: %s", e.msg);
	free(hold);
	r = reader_hex("c6ffffffff", &hold);
	ok(mp_read(&r, &o, &e) < 0, "bin32 of 4 GiB rejected: %s", e.msg);
	free(hold);
	r = reader_hex("c1", &hold);
	ok(mp_read(&r, &o, &e) < 0, "0xc1 is never used: %s", e.msg);
	free(hold);
	r = reader_hex("a2c328", &hold);
	ok(mp_read_str(&r, &s, &n, &e) < 0, "invalid UTF-8 str rejected");
	free(hold);
	r = reader_hex("0102", &hold);
	ok(mp_read_uint(&r, &u, &e) == 0 && mp_expect_end(&r, &e) < 0, "trailing bytes: %s", e.msg);
	free(hold);
	r = reader_hex("cc", &hold);
	ok(mp_read(&r, &o, &e) < 0, "truncated uint8");
	free(hold);

	{
		struct buf b = BUF_INIT;

		for (int k = 0; k < 70; k++)
			mp_put_array(&b, 1);
		mp_put_nil(&b);
		mp_reader_init(&r, b.data, b.len);
		ok(mp_skip(&r, &e) < 0, "70 nested arrays exceed the depth limit: %s", e.msg);
		buf_reset(&b);
		for (int k = 0; k < 10; k++)
			mp_put_array(&b, 1);
		mp_put_map(&b, 2);
		mp_put_cstr(&b, "k");
		mp_put_bin(&b, "zz", 2);
		mp_put_uint(&b, 1);
		mp_put_f64(&b, NAN);
		mp_put_uint(&b, 7);
		mp_reader_init(&r, b.data, b.len);
		ok(mp_skip(&r, &e) == 0 && mp_read_uint(&r, &u, &e) == 0 && u == 7 &&
		       mp_expect_end(&r, &e) == 0,
		   "skip walks a nested value exactly");
		r.max_depth = 5;
		r.pos = 0;
		ok(mp_skip(&r, &e) < 0, "configurable depth limit");
		buf_free(&b);
	}
	return tap_done();
}
