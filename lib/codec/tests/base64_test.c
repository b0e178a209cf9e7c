/*
 * base64_test.c — RFC 4648 §10 vectors, the URL alphabet, and strictness
 * (padding, stray characters, non-zero trailing bits).
 */
#include <stdlib.h>
#include <string.h>

#include "codec/base64.h"
#include "core/tap.h"

static void roundtrip(const char *plain, const char *enc)
{
	char *got = base64_encode(plain, strlen(plain));
	uint8_t *dec = NULL;
	size_t n = 0;
	struct err e = ERR_INIT;

	is_str(got, enc, "base64(\"%s\")", plain);
	ok(base64_decode(enc, strlen(enc), &dec, &n, &e) == 0 && n == strlen(plain) &&
	       memcmp(dec, plain, n) == 0,
	   "decode %s", enc);
	free(got);
	free(dec);
}

static void reject(int url, const char *s, const char *why)
{
	uint8_t *dec = NULL;
	size_t n;
	struct err e = ERR_INIT;
	int rc =
	    url ? base64url_decode(s, strlen(s), &dec, &n, &e) : base64_decode(s, strlen(s), &dec, &n, &e);

	ok(rc < 0 && e.msg[0], "%s rejects '%s' (%s): %s", url ? "base64url" : "base64", s, why, e.msg);
	free(dec);
}

int main(void)
{
	static const uint8_t fbff[] = {0xfb, 0xff};
	uint8_t *dec = NULL;
	size_t n = 0;
	struct err e = ERR_INIT;
	char *s;

	roundtrip("", "");
	roundtrip("f", "Zg==");
	roundtrip("fo", "Zm8=");
	roundtrip("foo", "Zm9v");
	roundtrip("foob", "Zm9vYg==");
	roundtrip("fooba", "Zm9vYmE=");
	roundtrip("foobar", "Zm9vYmFy");

	s = base64_encode(fbff, 2);
	is_str(s, "+/8=", "standard alphabet");
	free(s);
	s = base64url_encode(fbff, 2);
	is_str(s, "-_8", "url alphabet, no padding");
	free(s);
	ok(base64url_decode("-_8", 3, &dec, &n, &e) == 0 && n == 2 && memcmp(dec, fbff, 2) == 0,
	   "url decode");
	free(dec);

	/* dip1 key string from guest.md §2.2: 32-byte ed25519 key. */
	ok(base64url_decode("5Pbre1Amf1hrp2V2bbfKlIfxpQb2pJAmrgmhxgVoG9s", 43, &dec, &n, &e) == 0 && n == 32,
	   "dip1 ed25519 key decodes to 32 bytes");
	s = base64url_encode(dec, n);
	is_str(s, "5Pbre1Amf1hrp2V2bbfKlIfxpQb2pJAmrgmhxgVoG9s", "and re-encodes identically");
	free(s);
	free(dec);

	reject(0, "Zg=", "length");
	reject(0, "Zg", "missing padding");
	reject(0, "Zh==", "trailing bits");
	reject(0, "Zm9=", "trailing bits");
	reject(0, "Zg==Zg==", "padding in the middle");
	reject(0, "Z===", "too much padding");
	reject(0, "Zm9v\n", "whitespace");
	reject(0, "-_8=", "url alphabet");
	reject(1, "Zg==", "padding");
	reject(1, "Z", "length");
	reject(1, "+/8", "standard alphabet");
	reject(1, "Zh", "trailing bits");
	return tap_done();
}
