/*
 * fuzz/guest_wg_reply.c — libFuzzer harness for the guest's rendering of a
 * gateway's RegisterCvm reply into WireGuard files (guest/gateway_reg.c).
 * The reply comes from the network, so whatever renders must hold exactly
 * one [Interface] section and one [Peer] per server: no value may start a
 * line or a section of its own.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../guest/gateway_reg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Lines of b that start with prefix. */
static size_t lines_starting(const struct buf *b, const char *prefix)
{
	size_t n = 0, pl = strlen(prefix);
	for (size_t i = 0; i < b->len; i++)
		if ((i == 0 || b->data[i - 1] == '\n') && b->len - i >= pl &&
		    !memcmp(b->data + i, prefix, pl))
			n++;
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *priv = "YHYr6nrTd9P8Kq9g1jVqg2bRrC3l8Dh3Qnq9xvJ0eG0=";
	json_t *reply = json_loadb((const char *)data, size, 0, NULL);
	struct buf quick = {0}, setconf = {0};

	if (!reply)
		return 0;
	int a = gw_wg_conf_render(priv, reply, &quick, NULL);
	int b = gw_wg_setconf_render(priv, reply, &setconf, NULL);
	if (a != b)
		abort(); /* both forms accept the same replies */
	if (a == 0) {
		size_t peers = json_array_size(json_object_get(json_object_get(reply, "wg"), "servers"));
		if (lines_starting(&quick, "[") != 1 + peers || lines_starting(&setconf, "[") != 1 + peers)
			abort();
		if (lines_starting(&quick, "Address = ") != 1 || lines_starting(&setconf, "Address") != 0)
			abort();
	}
	buf_free(&quick);
	buf_free(&setconf);
	json_decref(reply);
	return 0;
}
