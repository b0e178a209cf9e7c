/*
 * jcs_test.c — RFC 8785 examples: §3.2.2 (literals, numbers, strings),
 * §3.2.3 (UTF-16 key order), Appendix B number serialization, and the
 * dstack V2 runtime-event preimage.
 */
#include <stdlib.h>
#include <string.h>

#include "codec/jcs.h"
#include "core/tap.h"

static void canon(const char *in, const char *want, const char *name)
{
	json_error_t jerr;
	json_t *v = json_loads(in, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	struct err e = ERR_INIT;
	char *got = v ? jcs_dumps(v, &e) : NULL;

	is_str(got, want, "%s", name);
	free(got);
	json_decref(v);
}

static void number(uint64_t bits, const char *want)
{
	union {
		uint64_t u;
		double d;
	} x = {.u = bits};
	struct buf b = BUF_INIT;
	struct err e = ERR_INIT;
	int rc = jcs_put_double(&b, x.d, &e);

	if (want)
		is_str(rc == 0 ? (char *)b.data : "(error)", want, "number %016llx",
		       (unsigned long long)bits);
	else
		ok(rc < 0, "number %016llx rejected: %s", (unsigned long long)bits, e.msg);
	buf_free(&b);
}

int main(void)
{
	canon("{\n  \"numbers\": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],\n"
	      "  \"string\": \"\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\\"\\/\",\n"
	      "  \"literals\": [null, true, false]\n}",
	      "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],"
	      "\"string\":\"\xe2\x82\xac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}",
	      "RFC 8785 §3.2.2 example");
	canon(
	    "{\"\\u20ac\":\"Euro Sign\",\"\\r\":\"Carriage Return\",\"\\ufb33\":\"Hebrew Letter Dalet With "
	    "Dagesh\",\"1\":\"One\",\"\\ud83d\\ude00\":\"Emoji: Grinning Face\",\"\\u0080\":\"Control\","
	    "\"\\u00f6\":\"Latin Small Letter O With Diaeresis\"}",
	    "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\xc2\x80\":\"Control\",\"\xc3\xb6\":\"Latin Small "
	    "Letter O With Diaeresis\",\"\xe2\x82\xac\":\"Euro Sign\",\"\xf0\x9f\x98\x80\":\"Emoji: Grinning "
	    "Face\",\"\xef\xac\xb3\":\"Hebrew Letter Dalet With Dagesh\"}",
	    "RFC 8785 §3.2.3 sorting by UTF-16 code units");
	canon("{\"type\":134217729,\"payload\":\"abcd\",\"name\":\"app-id\"}",
	      "{\"name\":\"app-id\",\"payload\":\"abcd\",\"type\":134217729}",
	      "dstack V2 runtime event preimage");
	canon("{\"b\":[],\"a\":{},\"c\":{\"y\":1,\"x\":[-1,0]}}",
	      "{\"a\":{},\"b\":[],\"c\":{\"x\":[-1,0],\"y\":1}}", "nested objects sorted, no whitespace");
	canon("\"\\u0000\\u001f\\u007f\\u2028\\b\\f\\t\"", "\"\\u0000\\u001f\x7f\xe2\x80\xa8\\b\\f\\t\"",
	      "control characters escaped, DEL and U+2028 literal");

	/* RFC 8785 Appendix B. */
	number(0x0000000000000000ull, "0");
	number(0x8000000000000000ull, "0");
	number(0x0000000000000001ull, "5e-324");
	number(0x8000000000000001ull, "-5e-324");
	number(0x7fefffffffffffffull, "1.7976931348623157e+308");
	number(0xffefffffffffffffull, "-1.7976931348623157e+308");
	number(0x4340000000000000ull, "9007199254740992");
	number(0xc340000000000000ull, "-9007199254740992");
	number(0x4430000000000000ull, "295147905179352830000");
	number(0x7fffffffffffffffull, NULL);
	number(0x7ff0000000000000ull, NULL);
	number(0x44b52d02c7e14af5ull, "9.999999999999997e+22");
	number(0x44b52d02c7e14af6ull, "1e+23");
	number(0x44b52d02c7e14af7ull, "1.0000000000000001e+23");
	number(0x444b1ae4d6e2ef4eull, "999999999999999700000");
	number(0x444b1ae4d6e2ef4full, "999999999999999900000");
	number(0x444b1ae4d6e2ef50ull, "1e+21");
	number(0x3eb0c6f7a0b5ed8cull, "9.999999999999997e-7");
	number(0x3eb0c6f7a0b5ed8dull, "0.000001");
	number(0x41b3de4355555553ull, "333333333.3333332");
	number(0x41b3de4355555554ull, "333333333.33333325");
	number(0x41b3de4355555555ull, "333333333.3333333");
	number(0x41b3de4355555556ull, "333333333.3333334");
	number(0x41b3de4355555557ull, "333333333.33333343");
	number(0xbecbf647612f3696ull, "-0.0000033333333333333333");
	number(0x43143ff3c1cb0959ull, "1424953923781206.2");
	return tap_done();
}
