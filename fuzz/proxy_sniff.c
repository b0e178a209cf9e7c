/*
 * proxy_sniff.c — libFuzzer harness for everything the proxy parses from an
 * unauthenticated client before routing: the ClientHello (SNI + ALPN), the
 * PROXY protocol header, the SNI sub-domain grammar, and TXT record values.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../gateway/proxy/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sni_info si;
	struct pp_addrs a;
	struct proxy_name n;
	size_t used;
	char id[PROXY_ID_MAX], s[512];
	uint16_t port;
	uint8_t out[256];

	if (size > 8192)
		return 0;
	if (sni_parse(data, size, &si) == SNI_FOUND) {
		const char *sub, *base;
		size_t sl;
		if (proxy_sni_split(si.host, &sub, &sl, &base) == 0)
			proxy_name_parse(sub, sl, &n, NULL);
	}
	if (pp_parse(data, size, &a, &used) == PP_OK && used <= size)
		pp_build(&a, out, sizeof(out));
	size_t l = size < sizeof(s) ? size : sizeof(s) - 1;
	memcpy(s, data, l);
	s[l] = '\0';
	proxy_name_parse(s, strlen(s), &n, NULL);
	txt_parse_value(s, strlen(s), id, sizeof(id), &port);
	return 0;
}
