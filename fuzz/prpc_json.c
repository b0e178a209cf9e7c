/*
 * prpc_json.c — fuzz the prpc request decoders with the demo service's
 * descriptors: JSON body → message, query string → message, protobuf body
 * → UTF-8 check, and the re-encoding of whatever decoded (must not crash,
 * leak or overflow).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "prpc/json.h"
#include "prpc_demo.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(ProtobufCMessage *m)
{
	struct buf b = BUF_INIT;
	uint8_t *packed;
	size_t n;

	if (!m)
		return;
	prpc_json_encode(m, &b);
	n = protobuf_c_message_get_packed_size(m);
	packed = malloc(n + 1);
	protobuf_c_message_pack(m, packed);
	free(packed);
	buf_free(&b);
	prpc_msg_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err e = ERR_INIT;
	char *q;

	roundtrip(prpc_json_decode_text(&demo__echo_request__descriptor, data, size, &e));
	roundtrip(prpc_json_decode_text(&demo__node__descriptor, data, size, &e));
	ProtobufCMessage *pb = protobuf_c_message_unpack(&demo__echo_request__descriptor, NULL, size, data);

	if (pb && prpc_msg_check_utf8(pb, &e) == 0) {
		roundtrip(pb);
		pb = NULL;
	}
	prpc_msg_free(pb);
	q = malloc(size + 1);
	memcpy(q, data, size);
	q[size] = '\0';
	roundtrip(prpc_query_decode(&demo__echo_request__descriptor, q, &e));
	free(q);
	return 0;
}
