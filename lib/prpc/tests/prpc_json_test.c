/*
 * prpc_json_test.c — the descriptor-driven JSON codec on the demo protos:
 * output text byte for byte, input leniency and strictness, query strings,
 * proto3 optional presence, maps, enums, oneofs, floats, limits.
 */
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/tap.h"
#include "prpc/json.h"
#include "prpc/server.h"
#include "prpc_demo.pb-c.h"

static char *enc(const ProtobufCMessage *m)
{
	struct buf b = BUF_INIT;

	prpc_json_encode(m, &b);
	return (char *)buf_steal(&b, NULL);
}

/* Decode text with descriptor d, re-encode; returns the JSON or the error. */
static char *jround(const ProtobufCMessageDescriptor *d, const char *text)
{
	struct err e = ERR_INIT;
	ProtobufCMessage *m = prpc_json_decode_text(d, text, strlen(text), &e);
	char *out;

	if (!m) {
		out = malloc(strlen(e.msg) + 8);
		sprintf(out, "ERR: %s", e.msg);
		return out;
	}
	out = enc(m);
	prpc_msg_free(m);
	return out;
}

static char *qround(const ProtobufCMessageDescriptor *d, const char *q)
{
	struct err e = ERR_INIT;
	ProtobufCMessage *m = prpc_query_decode(d, q, &e);
	char *out;

	if (!m) {
		out = malloc(strlen(e.msg) + 8);
		sprintf(out, "ERR: %s", e.msg);
		return out;
	}
	out = enc(m);
	prpc_msg_free(m);
	return out;
}

#define ROUND(d, in, want, name)                                                                             \
	do {                                                                                                 \
		char *_o = jround(d, in);                                                                    \
		is_str(_o, want, name);                                                                      \
		free(_o);                                                                                    \
	} while (0)

#define QROUND(d, in, want, name)                                                                            \
	do {                                                                                                 \
		char *_o = qround(d, in);                                                                    \
		is_str(_o, want, name);                                                                      \
		free(_o);                                                                                    \
	} while (0)

#define STARTS(d, in, prefix, name)                                                                          \
	do {                                                                                                 \
		char *_o = jround(d, in);                                                                    \
		ok(strncmp(_o, prefix, strlen(prefix)) == 0, "%s (%s)", name, _o);                           \
		free(_o);                                                                                    \
	} while (0)

static const ProtobufCMessageDescriptor *K = &demo__kinds__descriptor;
static const ProtobufCMessageDescriptor *E = &demo__echo_request__descriptor;

static void test_kinds(void)
{
	const char *kd =
	    "{\"color\":0,\"names\":{},\"f\":0.0,\"nums\":[],\"z\":0,\"attestation\":\"\",\"inners\":{}}";

	ROUND(K, "", kd, "default Kinds: unset real oneof omitted, enum as number");
	ROUND(K, "{\"color\":\"GREEN\"}",
	      "{\"color\":1,\"names\":{},\"f\":0.0,\"nums\":[],\"z\":0,\"attestation\":\"\",\"inners\":{}}",
	      "enum accepted by name, emitted as number");
	STARTS(K, "{\"color\":\"BLUE\"}", "ERR: color: unknown variant `BLUE`", "unknown enum name rejected");
	ROUND(K, "{\"names\":{\"5\":\"five\",\"7\":\"seven\"},\"nums\":[1,18446744073709551615],\"z\":-3}",
	      "{\"color\":0,\"names\":{\"5\":\"five\",\"7\":\"seven\"},\"f\":0.0,\"nums\":[1,"
	      "18446744073709551615],"
	      "\"z\":-3,\"attestation\":\"\",\"inners\":{}}",
	      "map<uint32,string> keys as strings; repeated u64 full range; sint32");
	STARTS(K, "{\"names\":{\"x\":\"bad\"}}", "ERR: names: key `x`: invalid digit",
	       "non-numeric map key rejected");
	ROUND(K, "{\"b\":9}",
	      "{\"color\":0,\"names\":{},\"f\":0.0,\"nums\":[],\"z\":0,\"attestation\":\"\",\"inners\":{},"
	      "\"b\":9}",
	      "set member of a real oneof emitted last");
	STARTS(K, "{\"a\":\"x\",\"b\":9}", "ERR: b: more than one member of a oneof",
	       "two oneof members rejected");
	ROUND(K, "{\"inners\":{\"k\":{\"name\":\"v\"}}}",
	      "{\"color\":0,\"names\":{},\"f\":0.0,\"nums\":[],\"z\":0,\"attestation\":\"\",\"inners\":{"
	      "\"k\":{\"name\":\"v\",\"n\":0}}}",
	      "map of messages");
	ROUND(K, "{\"f\":0.1}",
	      "{\"color\":0,\"names\":{},\"f\":0.1,\"nums\":[],\"z\":0,\"attestation\":\"\",\"inners\":{}}",
	      "f32 0.1 printed shortest as f32");

	/* omit_if_empty */
	Demo__Kinds k = DEMO__KINDS__INIT;
	const char *const omit[] = {"attestation", "nums", NULL};
	struct buf b = BUF_INIT;

	prpc_json_encode_ex(&k.base, omit, &b);
	is_str((char *)b.data, "{\"color\":0,\"names\":{},\"f\":0.0,\"z\":0,\"inners\":{}}",
	       "omit_if_empty drops empty fields");
	buf_reset(&b);
	k.attestation.data = (uint8_t *)"\xab";
	k.attestation.len = 1;
	prpc_json_encode_ex(&k.base, omit, &b);
	ok(strstr((char *)b.data, "\"attestation\":\"ab\"") != NULL, "omit_if_empty keeps non-empty fields");
	buf_free(&b);
}

static void test_floats(void)
{
	static const struct {
		double v;
		const char *want;
	} cases[] = {
	    {1.0, "1.0"},
	    {1.5, "1.5"},
	    {-2.25, "-2.25"},
	    {0.1, "0.1"},
	    {1e15, "1000000000000000.0"},
	    {1e16, "1e16"},
	    {1.5e17, "1.5e17"},
	    {0.001, "0.001"},
	    {1e-5, "0.00001"},
	    {1e-6, "1e-6"},
	    {1.25e-7, "1.25e-7"},
	    {123456.789, "123456.789"},
	    {0.0, "0.0"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		Demo__EchoRequest r = DEMO__ECHO_REQUEST__INIT;
		_cleanup_free_ char *o = NULL;
		char want[64];
		const char *p;

		r.d = cases[i].v;
		o = enc(&r.base);
		p = strstr(o, "\"d\":");
		snprintf(want, sizeof(want), "\"d\":%s,", cases[i].want);
		ok(p && strncmp(p, want, strlen(want)) == 0, "double %g → %s", cases[i].v, cases[i].want);
	}
}

static void test_strings(void)
{
	Demo__EchoRequest r = DEMO__ECHO_REQUEST__INIT;
	_cleanup_free_ char *o = NULL;

	r.s = "a\x01\x1f\x7f/\xc3\xa9\xff\xe2\x82";
	o = enc(&r.base);
	ok(strncmp(o, "{\"s\":\"a\\u0001\\u001f\x7f/\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"", 33) == 0,
	   "control chars \\u00xx lowercase, DEL and / raw, invalid UTF-8 → U+FFFD (%s)", o);
	STARTS(E, "{\"s\":\"a\\u0000b\"}", "ERR: s: string contains a NUL", "NUL in string rejected");
	STARTS(E, "{\"s\":\"\xff\"}", "ERR: ", "invalid UTF-8 input rejected");
	STARTS(E, "{\"s\":5}", "ERR: s: invalid type: integer, expected a string",
	       "type mismatch names field");
}

static void test_inputs(void)
{
	const char *dflt =
	    "{\"s\":\"\",\"b\":\"\",\"rb\":[],\"u\":0,\"ou\":null,\"os\":null,\"inner\":null,\"inners\":[],"
	    "\"flag\":false,\"i\":0,\"tags\":[],\"counts\":{},\"oinner\":null,\"i32\":0,\"d\":0.0,\"ob\":"
	    "null}";

	ROUND(E, "null", dflt, "null body = default message");
	ROUND(E, " \n", dflt, "blank body = default message");
	ROUND(E, "{\"s\":null,\"b\":null,\"rb\":null,\"inner\":null,\"zzz\":[1,{}]}", dflt,
	      "nulls and unknown keys");
	STARTS(E, "{\"ou\":0,\"os\":\"\",\"ob\":\"\",\"oinner\":{}}",
	       "{\"s\":\"\",\"b\":\"\",\"rb\":[],\"u\":0,\"ou\":0,\"os\":\"\",\"inner\":null,\"inners\":[],"
	       "\"flag\":false,"
	       "\"i\":0,\"tags\":[],\"counts\":{},\"oinner\":{\"name\":\"\",\"n\":0},\"i32\":0,\"d\":0.0,"
	       "\"ob\":\"\"}",
	       "proto3 optional set to zero values is present, not null");
	STARTS(E, "{\"b\":\"0XAbCd\",\"rb\":[\"0x\",\"FF\"]}",
	       "{\"s\":\"\",\"b\":\"abcd\",\"rb\":[\"\",\"ff\"]",
	       "hex input: 0x/0X prefix, either case; output lowercase");
	STARTS(E, "{\"b\":\"zz\"}", "ERR: b: ", "non-hex rejected");
	STARTS(E, "{\"rb\":[null]}", "ERR: rb: ", "null inside repeated rejected");
	STARTS(E, "{\"u\":1.0}", "ERR: u: invalid type: floating point, expected an integer",
	       "float for integer rejected");
	STARTS(E, "{\"i32\":2147483648}", "ERR: i32: invalid value", "i32 overflow rejected");
	STARTS(E, "{\"i\":-9223372036854775808}",
	       "{\"s\":\"\",\"b\":\"\",\"rb\":[],\"u\":0,\"ou\":null,\"os\":null,\"inner\":null,\"inners\":[]"
	       ",\"flag\":false,\"i\":-9223372036854775808",
	       "i64 min");
	STARTS(E, "{\"i\":9223372036854775808}",
	       "ERR: i: invalid value: integer `9223372036854775808`, expected i64",
	       "u64-range literal for an i64 rejected");
	STARTS(E, "{\"s\":\"9223372036854775808\"}", "{\"s\":\"9223372036854775808\"",
	       "big digits inside strings untouched");
	STARTS(E, "[]", "ERR: invalid type: sequence, expected struct EchoRequest", "array body rejected");
	STARTS(E, "{\"inner\":5}", "ERR: inner: invalid type: integer, expected struct Inner",
	       "scalar for message rejected");
	STARTS(E, "{\"s\":\"x\"", "ERR: ", "truncated JSON rejected");
	STARTS(E, "{\"flag\":\"true\"}", "ERR: flag: invalid type: string, expected a boolean",
	       "JSON bools are strict");

	/* Nesting limit. */
	struct buf b = BUF_INIT;

	for (int depth = PRPC_MAX_DEPTH; depth <= PRPC_MAX_DEPTH + 1; depth++) {
		buf_reset(&b);
		for (int i = 0; i < depth; i++)
			buf_puts(&b, "{\"child\":");
		buf_puts(&b, "{}");
		for (int i = 0; i < depth; i++)
			buf_putc(&b, '}');
		char *o = jround(&demo__node__descriptor, (char *)b.data);

		ok((strncmp(o, "ERR", 3) == 0) == (depth > PRPC_MAX_DEPTH), "nesting %d %s", depth + 1,
		   depth > PRPC_MAX_DEPTH ? "rejected" : "accepted");
		free(o);
	}
	buf_reset(&b);
	for (int i = 0; i < 100000; i++)
		buf_putc(&b, '[');
	STARTS(E, (char *)b.data, "ERR: ", "100k '[' rejected by the parser depth cap");
	buf_free(&b);
}

static void test_query(void)
{
	QROUND(E, "s=a%20b+c&u=18446744073709551615&i=-4&flag=false&d=2.5&b=0xAA&json",
	       "{\"s\":\"a b "
	       "c\",\"b\":\"aa\",\"rb\":[],\"u\":18446744073709551615,\"ou\":null,\"os\":null,\"inner\":null,"
	       "\"inners\":[],\"flag\":false,\"i\":-4,\"tags\":[],\"counts\":{},\"oinner\":null,\"i32\":0,"
	       "\"d\":2.5,"
	       "\"ob\":null}",
	       "query scalars parsed from text");
	char *o = qround(E, "tags=a&tags=b&rb[1]=bb&rb[0]=aa&inners[0][name]=x&inners[1][n]=2&counts[q]=3");

	ok(strstr(o, "\"tags\":[\"a\",\"b\"]") && strstr(o, "\"rb\":[\"aa\",\"bb\"]") &&
	       strstr(o, "\"inners\":[{\"name\":\"x\",\"n\":0},{\"name\":\"\",\"n\":2}]") &&
	       strstr(o, "\"counts\":{\"q\":3}"),
	   "query arrays: repeated key, indexed, nested messages, map (%s)", o);
	free(o);
	QROUND(
	    E, "",
	    "{\"s\":\"\",\"b\":\"\",\"rb\":[],\"u\":0,\"ou\":null,\"os\":null,\"inner\":null,\"inners\":[],"
	    "\"flag\":false,\"i\":0,\"tags\":[],\"counts\":{},\"oinner\":null,\"i32\":0,\"d\":0.0,\"ob\":"
	    "null}",
	    "empty query = default");
	QROUND(E, "s=%zz", "ERR: invalid percent-encoding in query string", "bad percent-encoding");
	QROUND(E, "s%00=1", "ERR: invalid query key", "NUL in key");
	QROUND(E, "a%ff[b]=1", "ERR: query key is not valid UTF-8", "invalid UTF-8 key (fuzzer find)");
	QROUND(E, "s=%ff", "ERR: query value is not valid UTF-8", "invalid UTF-8 value");
	QROUND(E, "u=-1", "ERR: u: invalid digit found in string", "negative for unsigned");
	QROUND(E, "flag=yes", "ERR: flag: provided string was not `true` or `false`", "bad bool");
	QROUND(E, "inner=x&inner[name]=y", "ERR: query key `inner` used both as a value and a map",
	       "value vs map");
}

static void test_empty(void)
{
	Google__Protobuf__Empty em = GOOGLE__PROTOBUF__EMPTY__INIT;
	_cleanup_free_ char *o = enc(&em.base);

	is_str(o, "null", "google.protobuf.Empty → null");
	ok(prpc_desc_is_empty(&google__protobuf__empty__descriptor), "Empty detected by name");
	ok(!prpc_desc_is_empty(&demo__inner__descriptor), "other messages are not Empty");
	struct buf b = BUF_INIT;

	prpc_error_json("a \"b\"\nc", &b);
	is_str((char *)b.data, "{\n  \"error\": \"a \\\"b\\\"\\nc\"\n}",
	       "error body pretty-printed like serde_json");
	buf_free(&b);
}

int main(void)
{
	test_kinds();
	test_floats();
	test_strings();
	test_inputs();
	test_query();
	test_empty();
	return tap_done();
}
